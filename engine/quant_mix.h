/* llama-quantize's tensor types for a file type: which type each weight matrix gets when a
 * model is quantized to, say, Q4_K_M, so that a file sizeup writes has the tensor types (and so
 * the size and speed) of the file llama-quantize writes from the same model.
 *
 * The rules are those of llama.cpp's src/llama-quant.cpp (llama_tensor_get_type) as of commit
 * c392e50, which made the shared fixtures, for the architectures sizeup runs (llama, qwen2, qwen3,
 * phi3) and the K mixes without an importance matrix: the output matrix gets more bits; the _M
 * mixes give attn_v and ffn_down Q6_K in the layers use_more_bits picks (the first and last
 * eighth, and every third layer between); and a row that is not whole 256-value blocks falls
 * back to a 32-value type. Pure functions of names and shapes: nothing here reads tensor data,
 * allocates or prints.
 */
#ifndef SIZEUP_QUANT_MIX_H
#define SIZEUP_QUANT_MIX_H

#include <stdbool.h>
#include <stdint.h>

/* What the rules need to know of a model (llama.cpp reads the same from its hyperparameters). */
typedef struct eng_mix_model {
    const char *arch;     /* general.architecture */
    int n_layer;          /* {arch}.block_count */
    int n_head, n_head_kv;
    bool has_output;      /* an output.weight exists; else token_embd.weight is the output */
    int n_attn_v;         /* tensors whose name holds attn_v.weight, attn_qkv.weight or
                           * attn_kv_b.weight (llama.cpp's n_attention_wv) */
} eng_mix_model;

/* Counters the rules advance as tensors go by, in the file's order (llama.cpp counts attn_v
 * and ffn_down tensors rather than parsing layer numbers). Zero it before the first tensor. */
typedef struct eng_mix_state {
    int i_attn_v, i_ffn_down;
} eng_mix_state;

/* The gguf_ttype most matrices of llama_ftype `ftype` get (Q4_K for Q4_K_M, ...); false for a
 * file type sizeup does not know. */
bool eng_mix_base_type(uint32_t ftype, uint32_t *type);

/* True when name is a weight matrix llama-quantize converts (2-D and up, ends in "weight", not
 * a norm, an expert router, a position or token-type embedding). */
bool eng_mix_quantizes(const char *name, int n_dims);

/* The type llama-quantize gives the matrix `name` with rows of ne0 values in a file of type
 * `ftype`, advancing *st. *fell_back (may be NULL) says the mix's choice did not fit ne0 and a
 * 32-value type (or F16) was taken instead. Call it only for tensors eng_mix_quantizes accepts,
 * once each, in file order. Float file types (F32, F16, BF16) give their own type to everything.
 * A plain type whose block does not divide ne0 is returned as is (llama-quantize refuses it). */
uint32_t eng_mix_type(uint32_t ftype, const eng_mix_model *m, eng_mix_state *st,
                      const char *name, int64_t ne0, bool *fell_back);

#endif
