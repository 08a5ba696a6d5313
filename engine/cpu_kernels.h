/* Fast dot products for the CPU backend, as llama.cpp's CPU backend computes them: the
 * activation vector is quantized once per matrix product to 8 bits per element (blocks of 32
 * for the Q4_0 .. Q8_0 weight family, super-blocks of 256 with 16-element sums for the K
 * types), and each weight row is then multiplied with it in integer arithmetic, one float
 * multiply per block. F32, F16 and BF16 weights keep float32 activations.
 *
 * Each kernel exists in plain C (cpu_kernels.c: the fallback, and the oracle the SIMD versions
 * are tested against) and in SIMD versions compiled with target attributes, so the build stays
 * generic -O2 (x86-64, armv8-a) and the instruction set is chosen at run time from what the CPU
 * reports (cpuk_isa_best) or what SIZEUP_CPU_ISA asks for (for tests and benchmarks). On x86-64:
 * AVX2 (cpu_kernels_avx2.c) and AVX-512 (cpu_kernels_avx512.c); on AArch64: NEON, and NEON with
 * the ARMv8.2 dot product instructions (cpu_kernels_neon.c). Each file compiles to empty tables
 * on the other architecture, and an instruction set only ever falls back within its own family
 * (AVX-512 -> AVX2 -> plain C, NEON dotprod -> NEON -> plain C), so no table of one
 * architecture is handed out on the other.
 *
 * The integer sums of one block are exact in every version; only the order in which the
 * per-block float terms are added differs, so a SIMD kernel agrees with the plain one to float
 * rounding. Nothing here allocates or keeps state after the first cpuk_isa_best call. */
#ifndef SIZEUP_CPU_KERNELS_H
#define SIZEUP_CPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Two families after the plain C set; the order within a family is narrower first. The x86
 * values come first and keep their numbers; compare instruction sets with cpuk_isa_runs, not
 * with < (an ARM set is not "wider" than an x86 one). */
typedef enum cpuk_isa {
    CPUK_GENERIC = 0, /* plain C */
    CPUK_AVX2,        /* AVX2 + FMA + F16C */
    CPUK_AVX512,      /* AVX-512 F/BW/VL (+ VNNI where present), on top of AVX2 */
    CPUK_NEON,        /* AArch64 Advanced SIMD (baseline there) */
    CPUK_NEON_DOT,    /* NEON + the ARMv8.2 dot product instructions (sdot) */
    CPUK_ISA_COUNT
} cpuk_isa;

/* How a weight type wants its activations. */
typedef enum cpuk_act {
    CPUK_ACT_F32 = 0, /* float32 as they are (F32, F16, BF16 weights) */
    CPUK_ACT_Q8,      /* cpuk_q8 blocks of 32 (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) */
    CPUK_ACT_Q8K,     /* cpuk_q8k super-blocks of 256 (Q2_K .. Q6_K) */
    CPUK_ACT_COUNT
} cpuk_act;

/* 32 activations: x[i] ~ d * qs[i]. d is rounded to fp16 precision as ggml's Q8_0 stores it;
 * sum is the integer sum of qs (weights with an offset, Q4_0's -8 say, subtract offset * sum
 * rather than widening every quant to signed); s = d * sum rounded to fp16 (ggml's Q8_1, for
 * the weight types with a minimum); ds = d * sum in float32, for kernels that take the offset
 * off in float (the four-token kernels, once per token and block instead of in the integers). */
typedef struct cpuk_q8 {
    float d, s;
    int32_t sum;
    float ds;
    int8_t qs[32];
} cpuk_q8;

/* 256 activations: x[i] ~ d * qs[i]; bsums[j] = sum of qs[16j .. 16j+15] (ggml's Q8_K). */
typedef struct cpuk_q8k {
    float d;
    int16_t bsums[16];
    int8_t qs[256];
} cpuk_q8k;

/* sum over the row of w[i] * x[i]: w a stored row of n elements of the weight type, x the
 * activations in that type's cpuk_act form (n elements). */
typedef float (*cpuk_dot_fn)(const void *w, const void *x, int64_t n);

/* The same for four activation rows at once (x, x + stride, ...): a prompt's tokens share each
 * weight block while it is in registers. out[t] is row t's sum. */
typedef void (*cpuk_dot4_fn)(const void *w, const void *x, size_t stride, int64_t n, float out[4]);

/* Eight weight rows (w, w + row_bytes, ...) by n_tok activation rows (x, x + stride, ...) at
 * once, for prompt batches: y[t * ldy + r] = row r . token t for r < 8, t < n_tok. Kernels of
 * this shape keep the eight rows in vector lanes (one 256-bit vector on x86, two 128-bit ones
 * on NEON), so a token costs a few instructions per block for all eight rather than several
 * per row; they repack the rows' blocks once per call, which pays off from two tokens up. */
typedef void (*cpuk_gemm8_fn)(const void *w, size_t row_bytes, int64_t n, const void *x,
                              size_t stride, int n_tok, float *y, size_t ldy);

typedef struct cpuk_kernel {
    cpuk_act act;
    cpuk_dot_fn dot;
    cpuk_dot4_fn dot4;   /* NULL: call dot per row */
    cpuk_gemm8_fn gemm8; /* NULL: none for this type on this instruction set */
} cpuk_kernel;

/* The widest instruction set this CPU runs. */
cpuk_isa cpuk_isa_best(void);
/* Whether this CPU runs isa: plain C, or cpuk_isa_best() and the narrower sets of its family. */
bool cpuk_isa_runs(cpuk_isa isa);
/* SIZEUP_CPU_ISA (generic, avx2, avx512, neon or neondot) when set and this CPU runs it; else
 * the best. */
cpuk_isa cpuk_isa_from_env(void);
const char *cpuk_isa_name(cpuk_isa isa);

/* The kernel for a weight type (gguf_ttype) on an instruction set: false when the type has
 * none. An instruction set that lacks a kernel for a type gets the next narrower one's in its
 * family, and finally the plain C one (always, for a set of the other architecture). */
bool cpuk_kernel_for(cpuk_isa isa, uint32_t type, cpuk_kernel *k);

/* Bytes of n activations in form act (n a multiple of 32 or 256 for the quantized forms). */
size_t cpuk_act_bytes(cpuk_act act, int64_t n);
/* Write x[0..n) in form act into dst (cpuk_act_bytes(act, n) bytes, 4-byte aligned). */
void cpuk_quantize(cpuk_act act, const float *x, void *dst, int64_t n);

/* o[i] += a * v[i] for i < n, v in f16: attention's weighted sum of cached values. */
typedef void (*cpuk_axpy_f16_fn)(float *o, float a, const uint16_t *v, int64_t n);
cpuk_axpy_f16_fn cpuk_axpy_f16_for(cpuk_isa isa);

/* One query's causal attention over n cached positions, as the fast path computes it (llama.cpp's
 * F16 K/V products): scores[j] = scale * (q . K_j) with q already rounded to f16 values,
 * softmax, then o[0..hdv) = sum over j of p_j * V_j with each p_j rounded to f16. K_j is
 * K + j * kstride (hd f16), V_j is V + j * vstride (hdv f16); scores is n floats of scratch.
 * Every version forms each sum in the same order, so they agree bit for bit. */
typedef void (*cpuk_attend_fn)(const float *q, const uint16_t *K, size_t kstride,
                               const uint16_t *V, size_t vstride, int hd, int hdv, int n,
                               float scale, float *scores, float *o);
cpuk_attend_fn cpuk_attend_for(cpuk_isa isa);

/* Per-ISA tables (internal to the cpu_kernels files): the dot kernel per weight type, indexed
 * by gguf_ttype up to CPUK_MAX_TYPE; NULL where that file has none. */
#define CPUK_MAX_TYPE 32
extern const cpuk_dot_fn cpuk_generic_dots[CPUK_MAX_TYPE];
extern const cpuk_dot_fn cpuk_avx2_dots[CPUK_MAX_TYPE];
extern const cpuk_dot_fn cpuk_avx512_dots[CPUK_MAX_TYPE];
extern const cpuk_dot4_fn cpuk_avx2_dot4s[CPUK_MAX_TYPE];
extern const cpuk_dot4_fn cpuk_avx512_dot4s[CPUK_MAX_TYPE];
extern const cpuk_gemm8_fn cpuk_avx2_gemm8s[CPUK_MAX_TYPE];   /* Q4_0 */
extern const cpuk_gemm8_fn cpuk_avx512_gemm8s[CPUK_MAX_TYPE]; /* Q4_0, Q8_0 */
extern const cpuk_dot_fn cpuk_neon_dots[CPUK_MAX_TYPE];
extern const cpuk_dot4_fn cpuk_neon_dot4s[CPUK_MAX_TYPE];
extern const cpuk_dot_fn cpuk_neondot_dots[CPUK_MAX_TYPE];
extern const cpuk_dot4_fn cpuk_neondot_dot4s[CPUK_MAX_TYPE];
extern const cpuk_gemm8_fn cpuk_neon_gemm8s[CPUK_MAX_TYPE];    /* Q4_0, Q8_0 */
extern const cpuk_gemm8_fn cpuk_neondot_gemm8s[CPUK_MAX_TYPE]; /* Q4_0, Q8_0 */
void cpuk_generic_axpy_f16(float *o, float a, const uint16_t *v, int64_t n);
void cpuk_avx2_axpy_f16(float *o, float a, const uint16_t *v, int64_t n); /* x86-64 only */
void cpuk_generic_attend(const float *q, const uint16_t *K, size_t kstride, const uint16_t *V,
                         size_t vstride, int hd, int hdv, int n, float scale, float *scores,
                         float *o);
void cpuk_avx2_attend(const float *q, const uint16_t *K, size_t kstride, const uint16_t *V,
                      size_t vstride, int hd, int hdv, int n, float scale, float *scores,
                      float *o); /* x86-64 only */
void cpuk_neon_axpy_f16(float *o, float a, const uint16_t *v, int64_t n); /* AArch64 only */
void cpuk_neon_attend(const float *q, const uint16_t *K, size_t kstride, const uint16_t *V,
                      size_t vstride, int hd, int hdv, int n, float scale, float *scores,
                      float *o); /* AArch64 only */

#endif
