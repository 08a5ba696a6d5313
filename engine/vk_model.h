/* What the two halves of the Vulkan backend share (engine/vk_backend.c uploads a model,
 * engine/vk_forward.c records its forward pass): a model's weights on the device. Only those two
 * files include this. */
#ifndef SIZEUP_VK_MODEL_H
#define SIZEUP_VK_MODEL_H

#include "engine/model.h"
#include "engine/vk.h"
#include "engine/vk_ops.h"

#define VK_MAX_CHUNKS 16


/* A weight on the device: one buffer, or row ranges when it exceeds maxStorageBufferRange. */
typedef struct vk_w {
    const eng_weight *w;
    int n;
    vk_buffer *buf[VK_MAX_CHUNKS];
    uint32_t row0[VK_MAX_CHUNKS], rows[VK_MAX_CHUNKS];
} vk_w;

typedef struct vk_layer_w {
    vk_w attn_norm, wq, wk, wv, wqkv, bq, bk, bv, q_norm, k_norm, wo;
    vk_w ffn_norm, w_gate, w_up, w_gate_up, w_down;
} vk_layer_w;

struct eng_vk_model {
    const eng_model *m;
    vk_ctx *ctx;
    vk_ops *ops;
    vk_w output_norm, output;
    vk_w rope_freqs, rope_short, rope_long;  /* RoPE frequency divisors (Llama 3; Phi-3) */
    vk_layer_w *layers;
    uint64_t bytes;
    char device[300];
};

#endif
