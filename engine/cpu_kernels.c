/* The plain C dot kernels (the fallback on any CPU, and the oracle of tests/test_cpu_kernels.c),
 * the activation quantizers every instruction set shares, and the run-time choice of
 * instruction set. See cpu_kernels.h.
 *
 * Quantized weights are handled as unsigned codes: Q4_0's value (q - 8) * d becomes
 * d * (sum q*x - 8 * sum x) with the activations' block sum, Q6_K's (q - 32) likewise with the
 * 16-element sums of Q8_K. The integer results are those of ggml's signed formulation, and the
 * SIMD files use the same identity because x86's byte multiply-add (vpmaddubsw, vpdpbusd)
 * wants one unsigned operand. */
#include "engine/cpu_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20) /* the kernel's bit for sdot/udot, for older headers */
#endif
#endif

#include "engine/gguf.h"
#include "engine/quant_internal.h"

/* ---- activation quantizers ---- */

/* ggml's x86 quantize_row_q8_0/q8_1: scale 127 / max|x|, round to nearest even, d kept at fp16
 * precision; s = d * sum in fp16 as Q8_1 keeps it. Matching llama.cpp here is what puts the fast
 * path next to its references. */
static void quantize_q8(const float *x, cpuk_q8 *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 32, y++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) /* not fmaxf: a libm call per element at -O2 */
            amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int q = quant_round(x[j] * id);
            y->qs[j] = (int8_t)q;
            sum += q;
        }
        y->d = eng_f16_to_f32(eng_f32_to_f16(d));
        y->s = eng_f16_to_f32(eng_f32_to_f16(d * (float)sum));
        y->sum = sum;
        y->ds = y->d * (float)sum;
    }
}

/* ggml's quantize_row_q8_K_ref: the element of largest magnitude maps to -127 (sign kept). */
static void quantize_q8k(const float *x, cpuk_q8k *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += 256, y++) {
        float amax = 0, max = 0;
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        memset(y->bsums, 0, sizeof y->bsums);
        if (amax == 0) {
            y->d = 0;
            memset(y->qs, 0, sizeof y->qs);
            continue;
        }
        float iscale = -127.0f / max;
        for (int j = 0; j < 256; j++) {
            int v = quant_round(iscale * x[j]);
            y->qs[j] = (int8_t)(v < 127 ? v : 127);
            y->bsums[j / 16] = (int16_t)(y->bsums[j / 16] + y->qs[j]);
        }
        y->d = 1.0f / iscale;
    }
}

size_t cpuk_act_bytes(cpuk_act act, int64_t n)
{
    switch (act) {
    case CPUK_ACT_Q8: return (size_t)(n / 32) * sizeof(cpuk_q8);
    case CPUK_ACT_Q8K: return (size_t)(n / 256) * sizeof(cpuk_q8k);
    default: return (size_t)n * sizeof(float);
    }
}

void cpuk_quantize(cpuk_act act, const float *x, void *dst, int64_t n)
{
    switch (act) {
    case CPUK_ACT_Q8: quantize_q8(x, dst, n / 32); break;
    case CPUK_ACT_Q8K: quantize_q8k(x, dst, n / 256); break;
    default: memcpy(dst, x, (size_t)n * sizeof(float)); break;
    }
}

/* ---- the 32-element family ---- */

static float dot_q4_0(const void *w, const void *x, int64_t n)
{
    const blk_q4_0 *b = w;
    const cpuk_q8 *a = x;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++, b++, a++) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += (b->qs[j] & 15) * a->qs[j] + (b->qs[j] >> 4) * a->qs[j + 16];
        sum += quant_f16(b->d) * a->d * (float)(s - 8 * a->sum);
    }
    return sum;
}

static float dot_q4_1(const void *w, const void *x, int64_t n)
{
    const blk_q4_1 *b = w;
    const cpuk_q8 *a = x;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++, b++, a++) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += (b->qs[j] & 15) * a->qs[j] + (b->qs[j] >> 4) * a->qs[j + 16];
        sum += quant_f16(b->d) * a->d * (float)s + quant_f16(b->m) * a->s;
    }
    return sum;
}

/* Bit 4 of element j of a Q5 block. */
static int q5_bit(const uint8_t qh[4], int j)
{
    return (qh[j / 8] >> (j % 8) & 1) << 4;
}

static float dot_q5_0(const void *w, const void *x, int64_t n)
{
    const blk_q5_0 *b = w;
    const cpuk_q8 *a = x;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++, b++, a++) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += ((b->qs[j] & 15) | q5_bit(b->qh, j)) * a->qs[j] +
                 ((b->qs[j] >> 4) | q5_bit(b->qh, j + 16)) * a->qs[j + 16];
        sum += quant_f16(b->d) * a->d * (float)(s - 16 * a->sum);
    }
    return sum;
}

static float dot_q5_1(const void *w, const void *x, int64_t n)
{
    const blk_q5_1 *b = w;
    const cpuk_q8 *a = x;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++, b++, a++) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += ((b->qs[j] & 15) | q5_bit(b->qh, j)) * a->qs[j] +
                 ((b->qs[j] >> 4) | q5_bit(b->qh, j + 16)) * a->qs[j + 16];
        sum += quant_f16(b->d) * a->d * (float)s + quant_f16(b->m) * a->s;
    }
    return sum;
}

static float dot_q8_0(const void *w, const void *x, int64_t n)
{
    const blk_q8_0 *b = w;
    const cpuk_q8 *a = x;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++, b++, a++) {
        int s = 0;
        for (int j = 0; j < 32; j++)
            s += b->qs[j] * a->qs[j];
        sum += quant_f16(b->d) * a->d * (float)s;
    }
    return sum;
}

/* ---- K super-blocks: every type's element e has its scale in group e / 16 (or e / 32) ---- */

static float dot_q2_k(const void *w, const void *x, int64_t n)
{
    const blk_q2_k *b = w;
    const cpuk_q8k *a = x;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        int isum = 0, msum = 0;
        for (int e = 0; e < 256; e++) {
            int h = e / 128, s = e % 128 / 32, l = e % 32;
            int q = b->qs[32 * h + l] >> (2 * s) & 3;
            isum += (b->scales[e / 16] & 15) * q * a->qs[e];
        }
        for (int j = 0; j < 16; j++)
            msum += (b->scales[j] >> 4) * a->bsums[j];
        sum += a->d * quant_f16(b->d) * (float)isum - a->d * quant_f16(b->dmin) * (float)msum;
    }
    return sum;
}

static float dot_q3_k(const void *w, const void *x, int64_t n)
{
    const blk_q3_k *b = w;
    const cpuk_q8k *a = x;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        int sc[16], isum = 0;
        q3k_scales(b->scales, sc);
        for (int j = 0; j < 16; j++) {
            int g = 0;
            for (int e = 16 * j; e < 16 * j + 16; e++) {
                int h = e / 128, s = e % 128 / 32, l = e % 32;
                int q = (b->qs[32 * h + l] >> (2 * s) & 3) | (b->hmask[l] >> (4 * h + s) & 1) << 2;
                g += q * a->qs[e];
            }
            isum += sc[j] * (g - 4 * a->bsums[j]);
        }
        sum += a->d * quant_f16(b->d) * (float)isum;
    }
    return sum;
}

static float dot_q4_k(const void *w, const void *x, int64_t n)
{
    const blk_q4_k *b = w;
    const cpuk_q8k *a = x;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            int sc, mn, g = 0;
            k4_scale_min(b->scales, j, &sc, &mn);
            const uint8_t *q = b->qs + 32 * (j / 2);
            for (int l = 0; l < 32; l++)
                g += (j % 2 ? q[l] >> 4 : q[l] & 15) * a->qs[32 * j + l];
            isum += sc * g;
            msum += mn * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
        }
        sum += a->d * quant_f16(b->d) * (float)isum - a->d * quant_f16(b->dmin) * (float)msum;
    }
    return sum;
}

static float dot_q5_k(const void *w, const void *x, int64_t n)
{
    const blk_q5_k *b = w;
    const cpuk_q8k *a = x;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            int sc, mn, g = 0;
            k4_scale_min(b->scales, j, &sc, &mn);
            const uint8_t *q = b->qs + 32 * (j / 2);
            for (int l = 0; l < 32; l++) {
                int v = (j % 2 ? q[l] >> 4 : q[l] & 15) | (b->qh[l] >> j & 1) << 4;
                g += v * a->qs[32 * j + l];
            }
            isum += sc * g;
            msum += mn * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
        }
        sum += a->d * quant_f16(b->d) * (float)isum - a->d * quant_f16(b->dmin) * (float)msum;
    }
    return sum;
}

static float dot_q6_k(const void *w, const void *x, int64_t n)
{
    const blk_q6_k *b = w;
    const cpuk_q8k *a = x;
    float sum = 0;
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        int isum = 0;
        for (int j = 0; j < 16; j++) {
            int g = 0;
            for (int e = 16 * j; e < 16 * j + 16; e++) {
                int h = e / 128, k = e % 128 / 32, l = e % 32;
                int lo = b->ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1)) & 15;
                int q = lo | (b->qh[32 * h + l] >> (2 * k) & 3) << 4;
                g += q * a->qs[e];
            }
            isum += b->scales[j] * (g - 32 * a->bsums[j]);
        }
        sum += a->d * quant_f16(b->d) * (float)isum;
    }
    return sum;
}

/* ---- float rows: the reference path's own dot product ---- */

static float dot_f32(const void *w, const void *x, int64_t n)
{
    return eng_vec_dot_f32(GGUF_T_F32, w, x, n);
}

static float dot_f16(const void *w, const void *x, int64_t n)
{
    return eng_vec_dot_f32(GGUF_T_F16, w, x, n);
}

static float dot_bf16(const void *w, const void *x, int64_t n)
{
    return eng_vec_dot_f32(GGUF_T_BF16, w, x, n);
}

const cpuk_dot_fn cpuk_generic_dots[CPUK_MAX_TYPE] = {
    [GGUF_T_F32] = dot_f32,   [GGUF_T_F16] = dot_f16,   [GGUF_T_BF16] = dot_bf16,
    [GGUF_T_Q4_0] = dot_q4_0, [GGUF_T_Q4_1] = dot_q4_1, [GGUF_T_Q5_0] = dot_q5_0,
    [GGUF_T_Q5_1] = dot_q5_1, [GGUF_T_Q8_0] = dot_q8_0, [GGUF_T_Q2_K] = dot_q2_k,
    [GGUF_T_Q3_K] = dot_q3_k, [GGUF_T_Q4_K] = dot_q4_k, [GGUF_T_Q5_K] = dot_q5_k,
    [GGUF_T_Q6_K] = dot_q6_k,
};

void cpuk_generic_axpy_f16(float *o, float a, const uint16_t *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        o[i] += a * eng_f16_to_f32(v[i]);
}

/* The plain version of cpuk_attend_fn. Its q.k sum is the AVX2 kernel's order written out
 * (two chains over 16-element steps, eight lanes each, then the same horizontal sum), so the
 * SIMD version can be held to it exactly. */
static float dot_f16_lanes(const float *q, const uint16_t *k, int n)
{
    float a[2][8] = { { 0 } };
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int c = 0; c < 2; c++)
            for (int l = 0; l < 8; l++)
                a[c][l] = fmaf(eng_f16_to_f32(k[i + 8 * c + l]), q[i + 8 * c + l], a[c][l]);
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            a[0][l] = fmaf(eng_f16_to_f32(k[i + l]), q[i + l], a[0][l]);
    float v[8];
    for (int l = 0; l < 8; l++)
        v[l] = a[0][l] + a[1][l];
    float h[4]; /* hsum_ps: halves, then pairs, then the last two */
    for (int l = 0; l < 4; l++)
        h[l] = v[l] + v[l + 4];
    float s = (h[0] + h[2]) + (h[1] + h[3]);
    for (; i < n; i++)
        s += eng_f16_to_f32(k[i]) * q[i];
    return s;
}

void cpuk_generic_attend(const float *q, const uint16_t *K, size_t kstride, const uint16_t *V,
                         size_t vstride, int hd, int hdv, int n, float scale, float *scores,
                         float *o)
{
    float mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++) {
        scores[j] = dot_f16_lanes(q, K + (size_t)j * kstride, hd) * scale;
        mx = scores[j] > mx ? scores[j] : mx;
    }
    for (int j = 0; j < n; j++) {
        scores[j] = expf(scores[j] - mx);
        sum += scores[j];
    }
    memset(o, 0, (size_t)hdv * sizeof *o);
    for (int j = 0; j < n; j++) {
        float p = eng_f16_to_f32(eng_f32_to_f16(scores[j] / sum));
        for (int i = 0; i < hdv; i++)
            o[i] = fmaf(p, eng_f16_to_f32(V[(size_t)j * vstride + i]), o[i]);
    }
}

/* ---- choosing ---- */

cpuk_isa cpuk_isa_best(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return CPUK_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return CPUK_AVX2;
#elif defined(__aarch64__) && defined(__GNUC__)
    /* Advanced SIMD is part of the AArch64 base; sdot is optional until ARMv8.4. Without
     * getauxval (not Linux) the dot product instructions are not assumed. */
#if defined(__linux__)
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP)
        return CPUK_NEON_DOT;
#endif
    return CPUK_NEON;
#endif
    return CPUK_GENERIC;
}

/* The set an instruction set falls back to: the next narrower one of its family, then plain C. */
static cpuk_isa cpuk_isa_narrower(cpuk_isa isa)
{
    switch (isa) {
    case CPUK_AVX512: return CPUK_AVX2;
    case CPUK_NEON_DOT: return CPUK_NEON;
    default: return CPUK_GENERIC;
    }
}

bool cpuk_isa_runs(cpuk_isa isa)
{
    for (cpuk_isa i = cpuk_isa_best();; i = cpuk_isa_narrower(i)) {
        if (i == isa)
            return true;
        if (i == CPUK_GENERIC)
            return false;
    }
}

const char *cpuk_isa_name(cpuk_isa isa)
{
    static const char *const names[CPUK_ISA_COUNT] = { "generic", "avx2", "avx512", "neon",
                                                       "neondot" };
    return isa < CPUK_ISA_COUNT ? names[isa] : "?";
}

cpuk_isa cpuk_isa_from_env(void)
{
    cpuk_isa best = cpuk_isa_best();
    const char *e = getenv("SIZEUP_CPU_ISA");
    if (!e || !*e)
        return best;
    for (int i = 0; i < CPUK_ISA_COUNT; i++)
        if (strcasecmp(e, cpuk_isa_name((cpuk_isa)i)) == 0)
            return cpuk_isa_runs((cpuk_isa)i) ? (cpuk_isa)i : best;
    return best;
}

cpuk_axpy_f16_fn cpuk_axpy_f16_for(cpuk_isa isa)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa == CPUK_AVX2 || isa == CPUK_AVX512)
        return cpuk_avx2_axpy_f16;
#elif defined(__aarch64__) && defined(__GNUC__)
    if (isa == CPUK_NEON || isa == CPUK_NEON_DOT)
        return cpuk_neon_axpy_f16;
#endif
    (void)isa;
    return cpuk_generic_axpy_f16;
}

cpuk_attend_fn cpuk_attend_for(cpuk_isa isa)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa == CPUK_AVX2 || isa == CPUK_AVX512)
        return cpuk_avx2_attend;
#elif defined(__aarch64__) && defined(__GNUC__)
    if (isa == CPUK_NEON || isa == CPUK_NEON_DOT)
        return cpuk_neon_attend;
#endif
    (void)isa;
    return cpuk_generic_attend;
}

static cpuk_act act_of(uint32_t type)
{
    switch (type) {
    case GGUF_T_Q4_0: case GGUF_T_Q4_1: case GGUF_T_Q5_0: case GGUF_T_Q5_1: case GGUF_T_Q8_0:
        return CPUK_ACT_Q8;
    case GGUF_T_Q2_K: case GGUF_T_Q3_K: case GGUF_T_Q4_K: case GGUF_T_Q5_K: case GGUF_T_Q6_K:
        return CPUK_ACT_Q8K;
    default:
        return CPUK_ACT_F32;
    }
}

bool cpuk_kernel_for(cpuk_isa isa, uint32_t type, cpuk_kernel *k)
{
    static const cpuk_dot_fn *const tables[CPUK_ISA_COUNT] = {
        cpuk_generic_dots, cpuk_avx2_dots, cpuk_avx512_dots, cpuk_neon_dots, cpuk_neondot_dots
    };
    static const cpuk_dot4_fn *const tables4[CPUK_ISA_COUNT] = {
        NULL, cpuk_avx2_dot4s, cpuk_avx512_dot4s, cpuk_neon_dot4s, cpuk_neondot_dot4s
    };
    static const cpuk_gemm8_fn *const tables8[CPUK_ISA_COUNT] = {
        NULL, cpuk_avx2_gemm8s, cpuk_avx512_gemm8s, cpuk_neon_gemm8s, cpuk_neondot_gemm8s
    };
    if (type >= CPUK_MAX_TYPE || isa >= CPUK_ISA_COUNT)
        return false;
    /* along isa's own family down to plain C, the first table that has the type (the
     * eight-row kernels: AVX-512 Q4_0 and Q8_0, else AVX2's Q4_0; NEON's Q4_0 and Q8_0) */
    k->dot4 = NULL;
    k->gemm8 = NULL;
    for (cpuk_isa i = isa; i != CPUK_GENERIC && !k->dot4; i = cpuk_isa_narrower(i))
        k->dot4 = tables4[i][type];
    for (cpuk_isa i = isa; i != CPUK_GENERIC && !k->gemm8; i = cpuk_isa_narrower(i))
        k->gemm8 = tables8[i][type];
    for (cpuk_isa i = isa;; i = cpuk_isa_narrower(i)) {
        if (tables[i][type]) {
            k->act = act_of(type);
            k->dot = tables[i][type];
            return true;
        }
        if (i == CPUK_GENERIC)
            return false;
    }
}
