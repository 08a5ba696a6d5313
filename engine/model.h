/* A loaded model: hyperparameters and weight views for one of the supported architectures
 * (llama, qwen2, qwen3, phi3), taken from a GGUF file. Backends (the CPU reference, Vulkan) read
 * this description; the file's mapping holds the weight bytes, so a model costs no copy until a
 * backend uploads it. One model may serve several sessions; it is read-only after load.
 */
#ifndef SIZEUP_MODEL_H
#define SIZEUP_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "engine/tokenizer.h"

typedef struct eng_model eng_model;

typedef enum eng_arch {
    ENG_ARCH_LLAMA = 1, /* Llama 1/2/3, SmolLM, TinyLlama, Mistral */
    ENG_ARCH_QWEN2,     /* q/k/v biases */
    ENG_ARCH_QWEN3,     /* RMS norm of each q and k head before RoPE */
    ENG_ARCH_PHI3,      /* fused qkv and gate/up matrices */
} eng_arch;

typedef struct eng_hparams {
    eng_arch arch;
    char arch_name[32];
    uint32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv;
    uint32_t head_dim, head_dim_v;   /* key/value length per head */
    uint32_t n_ff, n_rot;            /* n_rot: dimensions RoPE turns, <= head_dim */
    float rope_base, rope_freq_scale, rms_eps;
    bool rope_neox;                  /* pairs (i, i + n_rot/2) instead of (2i, 2i+1) */
    uint32_t rope_orig_ctx;          /* phi3: long/short factor switch point */
} eng_hparams;

/* A view of one weight tensor in the mapping. A matrix has rows of ne0 values, ne1 rows. */
typedef struct eng_weight {
    const gguf_tensor *t;   /* NULL when the tensor is absent (optional weights) */
    uint32_t type;
    int64_t ne0, ne1;
    size_t row_bytes;
    const uint8_t *data;
} eng_weight;

typedef struct eng_layer {
    eng_weight attn_norm;            /* (n_embd) */
    eng_weight wq, wk, wv;           /* (n_embd) -> n_head*hd, n_head_kv*hd, n_head_kv*hd_v */
    eng_weight wqkv;                 /* phi3: the three stacked, in that order */
    eng_weight bq, bk, bv;           /* qwen2 biases */
    eng_weight q_norm, k_norm;       /* qwen3: (head_dim) */
    eng_weight wo;                   /* n_head*hd_v -> n_embd */
    eng_weight ffn_norm;             /* (n_embd) */
    eng_weight w_gate, w_up;         /* n_embd -> n_ff */
    eng_weight w_gate_up;            /* phi3: n_embd -> 2*n_ff, gate rows first */
    eng_weight w_down;               /* n_ff -> n_embd */
} eng_layer;

struct eng_model {
    gguf_file *file;                 /* owned; weights point into its mapping */
    eng_vocab *vocab;                /* owned */
    eng_hparams hp;
    char name[128];
    eng_weight tok_embd;             /* (n_vocab rows of n_embd) */
    eng_weight output_norm;
    eng_weight output;               /* tok_embd when the embedding is tied */
    bool tied_output;
    eng_weight rope_freqs;           /* Llama 3: divisors of each RoPE frequency (n_rot/2) */
    eng_weight rope_long, rope_short;/* phi3 */
    eng_layer *layers;               /* (n_layer) */
    uint64_t weight_bytes;           /* bytes of all tensors the forward pass reads */
    uint64_t n_params;
    /* The weights on the Vulkan device, uploaded by the first session that asks and shared by
     * the rest (guarded by vk_lock); vk_err says why not when that failed. */
    struct eng_vk_model *vk;
    bool vk_tried;
    int vk_device;                   /* the device index that upload asked for (< 0: automatic) */
    char vk_err[512];
    pthread_mutex_t vk_lock;
};

typedef enum eng_model_status {
    ENG_MODEL_OK = 0,
    ENG_MODEL_ERR_IO,
    ENG_MODEL_ERR_FORMAT,      /* missing/misshapen tensor or key; the message names it */
    ENG_MODEL_ERR_UNSUPPORTED, /* architecture or tensor type sizeup does not run */
    ENG_MODEL_ERR_NOMEM,
} eng_model_status;

/* Load path. On failure *out is NULL and err names the file and the tensor/key at fault.
 * Caller frees with eng_model_free. */
eng_model_status eng_model_load(const char *path, eng_model **out, char *err, size_t errlen);
void eng_model_free(eng_model *m);


#endif
