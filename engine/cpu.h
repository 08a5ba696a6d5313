/* The CPU reference backend: a plain-C forward pass (float32 activations and accumulation,
 * weights dequantized row by row, K/V cached in f16 as llama.cpp and the Vulkan backend keep
 * them). It is the oracle the Vulkan engine is tested against, and the fallback for machines
 * without any Vulkan device. One eng_cpu per session: it owns that session's KV cache. */
#ifndef SIZEUP_CPU_H
#define SIZEUP_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/model.h"

typedef struct eng_cpu eng_cpu;

/* A context of n_ctx positions on model m (borrowed; must outlive the context). Returns NULL
 * with a message on failure. Matrix products are split into n_threads tasks for the process's
 * pool (engine/pool.h); 0 or more than eng_pool_threads() means eng_pool_threads(). Caller frees
 * with eng_cpu_free. */
eng_cpu *eng_cpu_new(const eng_model *m, uint32_t n_ctx, int n_threads, char *err, size_t errlen);
void eng_cpu_free(eng_cpu *c);

/* Run tokens[0..n) at positions pos..pos+n-1 (pos + n <= n_ctx; earlier positions must already
 * be in the cache). logits receives n_vocab floats for the last token, or n * n_vocab (row per
 * token) when all_logits. Returns false only for bad arguments. */
bool eng_cpu_decode(eng_cpu *c, const int32_t *tokens, int n, int pos, float *logits,
                    bool all_logits);

/* Drop cache positions [p0, p1) and move the ones after them down by p1 - p0, re-rotating
 * their keys for the new positions (context shift). */
void eng_cpu_kv_shift(eng_cpu *c, int p0, int p1, int n_past);

/* Shared with the Vulkan backend: RoPE inverse frequencies (n_rot/2) for a context length, and
 * the shift of one layer's f16 K/V rows [p1, n_past) down to p0 (tmp: head_dim * n_head_kv). */
void eng_rope_inv(const eng_model *m, uint32_t n_ctx, float *inv);
void eng_kv_shift_layer(const eng_hparams *hp, const float *inv, uint16_t *K, uint16_t *V,
                        int p0, int p1, int n_past, float *tmp);

uint64_t eng_cpu_kv_bytes(const eng_cpu *c);
uint64_t eng_cpu_scratch_bytes(const eng_cpu *c);

#endif
