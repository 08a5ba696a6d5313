/* The compute operations of the Vulkan forward pass: one kernel per op (per weight type for the
 * matrix products), created once per device context, and a recording function per op that
 * checks its arguments, fills the push constants and picks the workgroup counts.
 *
 * Conventions shared by every kernel (shaders/ops.glsl mirrors the push-constant structs below;
 * each struct's size is pinned with _Static_assert):
 *   - activations are float32 storage buffers addressed in elements: every operand has an
 *     offset (so one buffer can hold several tensors, and a matrix split in row ranges can be
 *     addressed piece by piece) and a stride between tokens (rows of a batch);
 *   - weights are rows as vk_mm_pack_rows writes them: GGUF's own block bytes, or for the
 *     types with an RGBA32 texel kernel on CPU devices, rows repacked so each block's quants are
 *     whole 16-byte texels; read as 32-bit words or texels (GGUF blocks are not 4-byte aligned:
 *     Q8_0 blocks are 34 bytes), each buffer at most maxStorageBufferRange;
 *   - the KV cache is f16, two values per 32-bit word, (n_ctx, width) per layer;
 *   - values that change per token (position, context length) are read from a small uint
 *     "step" buffer, not from push constants, so a recorded decode step can be replayed:
 *     step[0] = position of the first token of the batch, step[1] = number of tokens in the
 *     batch; a token t of the batch is at position step[0] + t and attends to 0..step[0] + t;
 *   - unused optional operands (bias, RoPE factors) are bound to any valid buffer and switched
 *     off with a flag.
 * The CPU reference (engine/cpu_forward.c) defines the semantics each kernel must match.
 */
#ifndef SIZEUP_VK_OPS_H
#define SIZEUP_VK_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "engine/vk.h"

/* ---- push constants (mirrored in shaders/ops.glsl) ---- */

enum {
    VK_MM_BIAS = 1u << 0,       /* y = W x + bias[row] */
    VK_MM_ACCUMULATE = 1u << 1, /* y += W x (residual added in place) */
};

/* Y[t][y_row0 + r] (op)= sum_k W[w_row0 + r][k] * X[t][k], r < M, t < N.
 * Bindings: 0 W (rows as vk_mm_pack_rows writes them), 1 X, 2 Y, 3 bias. */
typedef struct vk_push_mul_mat {
    uint32_t K, M, N;
    uint32_t w_row0;            /* first row used, counted from the start of the W buffer */
    uint32_t x_off, x_stride;
    uint32_t y_off, y_stride, y_row0;
    uint32_t b_off;             /* bias element of row 0 (with VK_MM_BIAS) */
    uint32_t flags;
    uint32_t pad;
} vk_push_mul_mat;
_Static_assert(sizeof(vk_push_mul_mat) == 48, "mirror of PushMulMat in shaders/ops.glsl");

/* Y[r] = X[r] / sqrt(mean(X[r]^2) + eps) * W[w_off + i], rows of n elements. In place allowed.
 * Bindings: 0 X, 1 W (f32), 2 Y. Per-head Q/K norms are rows = tokens x heads, stride head_dim. */
typedef struct vk_push_rms_norm {
    uint32_t n, rows;
    uint32_t x_off, x_stride, y_off, y_stride, w_off;
    float eps;
} vk_push_rms_norm;
_Static_assert(sizeof(vk_push_rms_norm) == 32, "mirror of PushRmsNorm in shaders/ops.glsl");

enum { VK_ROPE_NEOX = 1u << 0, VK_ROPE_FACTORS = 1u << 1, VK_ROPE_STORE = 1u << 2 };

/* Rotate the first n_rot dims of each of n_heads heads of each of the batch's tokens, in place:
 * pairs (2i, 2i+1), or (i, i + n_rot/2) with VK_ROPE_NEOX; theta = pos * freq_scale *
 * base^(-2i/n_rot) / factor[i] (factor with VK_ROPE_FACTORS). With VK_ROPE_STORE the rotated
 * vector is also written as f16 to the cache at row pos (layer offset cache_off, in f16
 * elements; rows of n_heads * head_dim). Bindings: 0 X, 1 factors, 2 step, 3 cache (words).
 * Grid: (n_heads, tokens). */
typedef struct vk_push_rope {
    uint32_t n_heads, head_dim, n_rot;
    uint32_t x_off, x_stride;
    uint32_t cache_off;
    uint32_t flags;
    float freq_base, freq_scale;
    uint32_t pad[3];
} vk_push_rope;
_Static_assert(sizeof(vk_push_rope) == 48, "mirror of PushRope in shaders/ops.glsl");

/* Copy X (f32, rows of n) to the f16 cache at row step[0] + t (layer offset cache_off).
 * Bindings: 0 X, 1 step, 2 cache (words). Used for V (K is stored by rope). */
typedef struct vk_push_kv_store {
    uint32_t n;
    uint32_t x_off, x_stride;
    uint32_t cache_off;
} vk_push_kv_store;
_Static_assert(sizeof(vk_push_kv_store) == 16, "mirror of PushKvStore in shaders/ops.glsl");

/* Causal attention: for token t and head h, O = softmax(scale * Q K^T) V over cache rows
 * 0..step[0] + t, with K/V head h / (n_head / n_head_kv). Bindings: 0 Q, 1 K cache, 2 V cache,
 * 3 O, 4 step. */
typedef struct vk_push_attn {
    uint32_t n_head, n_head_kv, head_dim, head_dim_v;
    uint32_t q_off, q_stride, o_off, o_stride;
    uint32_t k_off, v_off;      /* layer offsets in the caches, in f16 elements */
    float scale;
    uint32_t pad;
} vk_push_attn;
_Static_assert(sizeof(vk_push_attn) == 48, "mirror of PushAttn in shaders/ops.glsl");

/* O[t][i] = silu(G[t][i]) * U[t][i], i < n. In place (O = G) allowed.
 * Bindings: 0 G, 1 U, 2 O. */
typedef struct vk_push_swiglu {
    uint32_t n, rows;
    uint32_t g_off, g_stride, u_off, u_stride, o_off, o_stride;
} vk_push_swiglu;
_Static_assert(sizeof(vk_push_swiglu) == 32, "mirror of PushSwiglu in shaders/ops.glsl");

/* Y[r][i] += X[r][i]. Bindings: 0 X, 1 Y. */
typedef struct vk_push_add {
    uint32_t n, rows;
    uint32_t x_off, x_stride, y_off, y_stride;
    uint32_t pad[2];
} vk_push_add;
_Static_assert(sizeof(vk_push_add) == 32, "mirror of PushAdd in shaders/ops.glsl");

/* out[0] = index of the largest of X[x_off .. x_off + n) (ties: lowest index), for greedy
 * decoding without reading the logits back. Bindings: 0 X, 1 out (uint). */
typedef struct vk_push_argmax {
    uint32_t n, x_off;
    uint32_t pad[2];
} vk_push_argmax;
_Static_assert(sizeof(vk_push_argmax) == 16, "mirror of PushArgmax in shaders/ops.glsl");

/* ---- the kernel set of one device context ---- */

/* Kernels are made when first needed, not all at start: each costs lavapipe 0.3-1.8 s of NIR
 * and LLVM work, and a model uses a few of the 40 or so. A slot is NULL until its kernel is
 * made; every slot is read and filled under the set's lock (vk_ops_lazy), so sessions on
 * several threads share one set. vk_ops_prepare makes a model's kernels ahead, in parallel. A
 * test may put its own kernel in an op slot (rms_norm, attn, ...) to have the op use it. */
typedef struct vk_ops {
    vk_ctx *ctx;
    bool lazy;                         /* made by vk_ops_new; false in a hand-built set (the
                                        * matrix tests), whose filled matrix slots decide */
    uint32_t subgroup_size;
    vk_kernel *mul_mat[GGUF_T_COUNT];  /* storage-buffer W; NULL where unused or no kernel */
    vk_kernel *mul_mat_tex[GGUF_T_COUNT]; /* W through a texel buffer (CPU devices), or NULL:
                                           * used when set and W has a texel view */
    vk_kernel *mul_mat_t4[GGUF_T_COUNT];  /* W read as 16-byte texels (CPU devices: Q4_0, Q5_0
                                           * and Q8_0 on packed rows, see vk_mm_pack_rows;
                                           * Q4_K and Q5_K on GGUF rows), or NULL */
    vk_kernel *rms_norm, *rope, *kv_store, *swiglu, *add, *argmax;
    vk_kernel *attn;                   /* NULL: vk_op_attn picks its own (a caller may set one) */
} vk_ops;

/* A kernel set for ctx (device started), with no kernel made yet. Caller frees with
 * vk_ops_free. */
vk_status vk_ops_new(vk_ctx *ctx, vk_ops **out);
void vk_ops_free(vk_ops *ops);

/* What a model will record: its matrix types and its attention head shape. */
typedef struct vk_ops_need {
    bool types[GGUF_T_COUNT];
    uint32_t n_head, n_head_kv, head_dim, head_dim_v;
} vk_ops_need;

/* Makes every kernel a model with `need` will use, those not made yet, in parallel on up to as
 * many threads as there are CPUs (pipeline creation is CPU work for the driver, and drivers
 * allow it from several threads). Kernels this device will not use are never made (the add
 * kernel, the generic attention where a specialised one runs, storage kernels where texel ones
 * do). Safe to call from several threads; the first failure's message is the caller's. */
vk_status vk_ops_prepare(vk_ops *ops, const vk_ops_need *need);

/* Fills *slot (one of ops' kernel slots) with make(ops, arg) unless it is set, and returns it
 * in *out. One thread makes a given kernel while others needing it wait; different kernels
 * are made at once. A failed make leaves the slot empty for the next caller to retry. Needs a
 * set from vk_ops_new. */
typedef vk_status (*vk_kernel_maker)(vk_ops *ops, const void *arg, vk_kernel **out);
vk_status vk_ops_lazy(vk_ops *ops, vk_kernel **slot, vk_kernel_maker make, const void *arg,
                      vk_kernel **out);
/* The matrix kernel vk_op_mul_mat uses for type (and W, when given), made if needed. */
vk_status vk_mm_kernel(vk_ops *ops, uint32_t type, const vk_buffer *w, vk_kernel **out);
/* Matrix kernels (engine/vk_matmul.c) for a hand-built set (the matrix tests): per type the one
 * kernel this device will use, or every variant it can run with all_variants. */
vk_status vk_ops_create_matmul(vk_ops *ops, bool all_variants);
/* Frees the matrix kernels and sets their slots to NULL. */
void vk_ops_free_matmul(vk_ops *ops);
/* Weight rows as vk_op_mul_mat reads them: GGUF's own rows, except for Q4_0, Q5_0 and Q8_0 when
 * they use a texel-4 kernel (mul_mat_t4; known from the device before it is made), whose rows hold the K/32 f16 scales, then (Q5_0) the
 * K/32 high-bit words, each run padded to 16 bytes, then the quant bytes of every block, so
 * each block's quants are whole 16-byte texels.
 * vk_mm_row_bytes is the row stride in W buffers; vk_mm_pack_rows writes `rows` such rows to
 * dst (rows * vk_mm_row_bytes bytes) from GGUF rows at src. */
uint64_t vk_mm_row_bytes(const vk_ops *ops, uint32_t type, uint32_t K);
void vk_mm_pack_rows(const vk_ops *ops, uint32_t type, uint32_t K, uint32_t rows,
                     const void *src, void *dst);
bool vk_ops_has_type(const vk_ops *ops, uint32_t type);

/* Recording functions: one dispatch each (barriers are the caller's: add vk_seq_barrier
 * between a producer and its consumer). `n_tokens` is the batch size the dispatch covers. */
vk_status vk_op_mul_mat(vk_ops *ops, vk_seq *s, uint32_t type, vk_buffer *w, vk_buffer *x,
                        vk_buffer *y, vk_buffer *bias, const vk_push_mul_mat *p);
vk_status vk_op_rms_norm(vk_ops *ops, vk_seq *s, vk_buffer *x, vk_buffer *w, vk_buffer *y,
                         const vk_push_rms_norm *p);
vk_status vk_op_rope(vk_ops *ops, vk_seq *s, vk_buffer *x, vk_buffer *factors, vk_buffer *step,
                     vk_buffer *cache, uint32_t n_tokens, const vk_push_rope *p);
vk_status vk_op_kv_store(vk_ops *ops, vk_seq *s, vk_buffer *x, vk_buffer *step,
                         vk_buffer *cache, uint32_t n_tokens, const vk_push_kv_store *p);
vk_status vk_op_attn(vk_ops *ops, vk_seq *s, vk_buffer *q, vk_buffer *k, vk_buffer *v,
                     vk_buffer *o, vk_buffer *step, uint32_t n_tokens, const vk_push_attn *p);
vk_status vk_op_swiglu(vk_ops *ops, vk_seq *s, vk_buffer *g, vk_buffer *u, vk_buffer *o,
                       const vk_push_swiglu *p);
vk_status vk_op_add(vk_ops *ops, vk_seq *s, vk_buffer *x, vk_buffer *y, const vk_push_add *p);
vk_status vk_op_argmax(vk_ops *ops, vk_seq *s, vk_buffer *x, vk_buffer *out,
                       const vk_push_argmax *p);

#endif
