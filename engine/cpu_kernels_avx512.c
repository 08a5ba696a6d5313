/* AVX-512 VNNI dot kernels (see cpu_kernels.h): the 32-element block family, where vpdpbusd
 * does vpmaddubsw + vpmaddwd's work in one instruction and without the 16-bit intermediate.
 * They use 256-bit vectors (AVX-512VL): on the AMD EPYC (Zen 4) machines this project runs on, a
 * 512-bit operation is two 256-bit halves, so wider vectors would not add throughput here, and
 * 32 bytes is one block. Q4_K and Q6_K use vpdpwssd, which folds the multiply by a sub-block's
 * scale and the add into one instruction (vpmaddwd + vpaddd on AVX2); the other K types keep
 * their AVX2 kernels.
 * cpuk_isa_best selects this set only when avx512f/bw/vl/vnni are all present. */
#include "engine/cpu_kernels.h"

#include "engine/gguf.h"
#include "engine/quant_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#include <immintrin.h>

#include "engine/cpu_kernels_x86.inc"

/* 0x10 in byte i where bit i of qh is set: one mask move on AVX-512BW. */
static inline __m256i q5_bits32(const uint8_t qh[4])
{
    uint32_t bits;
    memcpy(&bits, qh, 4);
    return _mm256_maskz_mov_epi8((__mmask32)bits, _mm256_set1_epi8(0x10));
}

static inline __m256i xload(const cpuk_q8 *a)
{
    return _mm256_loadu_si256((const __m256i *)a->qs);
}

/* sum q*x over a block (q unsigned codes) minus off * (sum of x), in eight 32-bit lanes. */
static inline __m256 block_u(__m256i q, const cpuk_q8 *a, int off)
{
    __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, xload(a));
    s = _mm256_sub_epi32(s, _mm256_castsi128_si256(_mm_cvtsi32_si128(off * a->sum)));
    return _mm256_cvtepi32_ps(s);
}

/* One loop for the four 4- and 5-bit types: codes from code(), offset off (0 for the types
 * with a minimum, which add m * s instead). Two chains hide the FMA latency. */
#define DOT_BLOCKS(name, blk, code, off, has_min)                                                 \
    static float name(const void *w, const void *x, int64_t n)                                   \
    {                                                                                            \
        const blk *b = w;                                                                        \
        const cpuk_q8 *a = x;                                                                    \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                           \
        float mins = 0;                                                                          \
        int64_t nb = n / 32, i = 0;                                                              \
        for (; i + 2 <= nb; i += 2, b += 2, a += 2) {                                            \
            __m256 s0 = block_u(code(b), a, off), s1 = block_u(code((b + 1)), a + 1, off);       \
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(b[0].d) * a[0].d), s0, acc0);              \
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(b[1].d) * a[1].d), s1, acc1);              \
            if (has_min)                                                                         \
                mins += MIN_OF(b, a) + MIN_OF((b + 1), (a + 1));                                 \
        }                                                                                        \
        for (; i < nb; i++, b++, a++) {                                                          \
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(b->d) * a->d), block_u(code(b), a, off), acc0); \
            if (has_min)                                                                         \
                mins += MIN_OF(b, a);                                                            \
        }                                                                                        \
        return hsum_ps(_mm256_add_ps(acc0, acc1)) + mins;                                        \
    }

#define CODE4(b) nibbles32((b)->qs)
#define CODE5(b) _mm256_or_si256(nibbles32((b)->qs), q5_bits32((b)->qh))
#define NO_MIN(b, a) 0.0f
#define WITH_MIN(b, a) (f16((b)->m) * (a)->s)

#define MIN_OF NO_MIN
DOT_BLOCKS(dot_q4_0, blk_q4_0, CODE4, 8, 0)
DOT_BLOCKS(dot_q5_0, blk_q5_0, CODE5, 16, 0)
#undef MIN_OF
#define MIN_OF WITH_MIN
DOT_BLOCKS(dot_q4_1, blk_q4_1, CODE4, 0, 1)
DOT_BLOCKS(dot_q5_1, blk_q5_1, CODE5, 0, 1)
#undef MIN_OF

/* Both signed: |w| and x carrying w's sign. */
static inline __m256 block_s(const blk_q8_0 *b, const cpuk_q8 *a)
{
    __m256i w = _mm256_loadu_si256((const __m256i *)b->qs), x = xload(a);
    __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(w), _mm256_sign_epi8(x, w));
    return _mm256_cvtepi32_ps(s);
}

static float dot_q8_0(const void *w, const void *x, int64_t n)
{
    const blk_q8_0 *b = w;
    const cpuk_q8 *a = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t nb = n / 32, i = 0;
    for (; i + 2 <= nb; i += 2, b += 2, a += 2) {
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(b[0].d) * a[0].d), block_s(b, a), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(b[1].d) * a[1].d), block_s(b + 1, a + 1), acc1);
    }
    for (; i < nb; i++, b++, a++)
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(b->d) * a->d), block_s(b, a), acc0);
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* Four tokens per weight block: the block is loaded and unpacked once for all four. Per token
 * and block that leaves an integer dot product, its conversion, a multiply by the token's
 * scale (broadcast straight from memory) and an FMA by the block's: the offset of the 4- and
 * 5-bit codes is taken off in float, offset * d_w * (d_x * sum_x), outside the vector path. */
static void dot4_q8_0(const void *w, const void *x, size_t stride, int64_t n, float out[4])
{
    const blk_q8_0 *b = w;
    const uint8_t *xb = x;
    __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
    for (int64_t i = 0; i < n / 32; i++, b++) {
        __m256i wv = _mm256_loadu_si256((const __m256i *)b->qs), aw = _mm256_abs_epi8(wv);
        __m256 dw = _mm256_set1_ps(f16(b->d));
        _Pragma("GCC unroll 4")
        for (int t = 0; t < 4; t++) {
            const cpuk_q8 *a = (const cpuk_q8 *)(xb + t * stride) + i;
            __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), aw, _mm256_sign_epi8(xload(a), wv));
            __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_broadcast_ss(&a->d));
            acc[t] = _mm256_fmadd_ps(f, dw, acc[t]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < 4; t++)
        out[t] = hsum_ps(acc[t]);
}

/* The 4- and 5-bit types: codes unsigned, offset off taken off in float, or (has_min) the
 * minimum m added as m * s. */
#define DOT4_BLOCKS(name, blk, code, off, has_min)                                               \
    static void name(const void *w, const void *x, size_t stride, int64_t n, float out[4])       \
    {                                                                                            \
        const blk *b = w;                                                                        \
        const uint8_t *xb = x;                                                                   \
        __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),         \
                          _mm256_setzero_ps() };                                                 \
        float corr[4] = { 0, 0, 0, 0 };                                                          \
        for (int64_t i = 0; i < n / 32; i++, b++) {                                              \
            __m256i q = code(b);                                                                 \
            float dws = f16(b->d), m = has_min ? MIN_OF(b) : 0.0f;                               \
            __m256 dw = _mm256_set1_ps(dws);                                                     \
            _Pragma("GCC unroll 4")                                                              \
            for (int t = 0; t < 4; t++) {                                                        \
                const cpuk_q8 *a = (const cpuk_q8 *)(xb + t * stride) + i;                       \
                __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, xload(a));            \
                __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_broadcast_ss(&a->d));     \
                acc[t] = _mm256_fmadd_ps(f, dw, acc[t]);                                         \
                corr[t] += has_min ? m * a->s : dws * a->ds;                                     \
            }                                                                                    \
        }                                                                                        \
        _Pragma("GCC unroll 4")                                                                  \
        for (int t = 0; t < 4; t++)                                                              \
            out[t] = hsum_ps(acc[t]) + (has_min ? corr[t] : -(float)(off) * corr[t]);            \
    }

#define MIN4_NONE(b) 0.0f
#define MIN4_M(b) f16((b)->m)
#define MIN_OF MIN4_NONE
DOT4_BLOCKS(dot4_q4_0, blk_q4_0, CODE4, 8, 0)
DOT4_BLOCKS(dot4_q5_0, blk_q5_0, CODE5, 16, 0)
#undef MIN_OF
#define MIN_OF MIN4_M
DOT4_BLOCKS(dot4_q4_1, blk_q4_1, CODE4, 0, 1)
DOT4_BLOCKS(dot4_q5_1, blk_q5_1, CODE5, 0, 1)
#undef MIN_OF

/* ---- K super-blocks, four tokens per weight row ----
 * vpdpwssd folds the multiply by a sub-block's scale and the add into the running sum
 * (vpmaddwd + vpaddd on AVX2), which is most of what a K block costs once its codes are
 * unpacked; the codes are unpacked once for four tokens. Sums are formed in the AVX2 kernels'
 * order, lane for lane, so the results are the same. */

/* One token: four independent sums (one per 64-element chunk) keep vpdpwssd's latency off the
 * critical path; generation reads each weight once, so this kernel has to keep up with memory. */
static float dot_q4_k(const void *w, const void *x, int64_t n)
{
    const blk_q4_k *b = w;
    const cpuk_q8k *a = x;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        uint8_t sc[8], mn[8];
        k4_unpack(b->scales, sc, mn);
        __m256i isum[4];
        _Pragma("GCC unroll 4")
        for (int c = 0; c < 4; c++) {
            __m256i qs = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
            __m256i lo = _mm256_and_si256(qs, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qs, 4), m4);
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c)));
            __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c + 32)));
            isum[c] = _mm256_dpwssd_epi32(_mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c])), phi,
                                          _mm256_set1_epi16(sc[2 * c + 1]));
        }
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(isum[0], isum[1]), _mm256_add_epi32(isum[2], isum[3]));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a->d * f16(b->d)), _mm256_cvtepi32_ps(s), acc);
        mins += a->d * f16(b->dmin) * (float)k4_minsum(mn, a->bsums);
    }
    return hsum_ps(acc) - mins;
}

static float dot_q6_k(const void *w, const void *x, int64_t n)
{
    const blk_q6_k *b = w;
    const cpuk_q8k *a = x;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        __m256i scv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
        __m256i bs = _mm256_madd_epi16(scv, _mm256_loadu_si256((const __m256i *)a->bsums));
        __m256i isum[4] = { _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(bs, 5)),
                            _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256() };
        _Pragma("GCC unroll 2")
        for (int h = 0; h < 2; h++) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
            __m256i q[4] = {
                _mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4),
                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
            };
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) {
                __m256i qk = _mm256_or_si256(q[k], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m2), 4));
                int j = 8 * h + 2 * k;
                __m256i sc = _mm256_set_m128i(_mm_set1_epi16(b->scales[j + 1]), _mm_set1_epi16(b->scales[j]));
                __m256i xv = _mm256_loadu_si256((const __m256i *)(a->qs + 128 * h + 32 * k));
                isum[k] = _mm256_dpwssd_epi32(isum[k], _mm256_maddubs_epi16(qk, xv), sc);
            }
        }
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(isum[0], isum[1]), _mm256_add_epi32(isum[2], isum[3]));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a->d * f16(b->d)), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum_ps(acc);
}

static void dot4_q4_k(const void *w, const void *x, size_t stride, int64_t n, float out[4])
{
    const blk_q4_k *b = w;
    const uint8_t *xb = x;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
    float mins[4] = { 0, 0, 0, 0 };
    for (int64_t i = 0; i < n / 256; i++, b++) {
        uint8_t sc[8], mn[8];
        k4_unpack(b->scales, sc, mn);
        const cpuk_q8k *a[4];
        __m256i isum[4];
        _Pragma("GCC unroll 4")
        for (int t = 0; t < 4; t++) {
            a[t] = (const cpuk_q8k *)(xb + t * stride) + i;
            isum[t] = _mm256_setzero_si256();
        }
        _Pragma("GCC unroll 4")
        for (int c = 0; c < 4; c++) {
            __m256i qs = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
            __m256i lo = _mm256_and_si256(qs, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qs, 4), m4);
            __m256i slo = _mm256_set1_epi16(sc[2 * c]), shi = _mm256_set1_epi16(sc[2 * c + 1]);
            _Pragma("GCC unroll 4")
            for (int t = 0; t < 4; t++) {
                __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(a[t]->qs + 64 * c)));
                __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(a[t]->qs + 64 * c + 32)));
                isum[t] = _mm256_dpwssd_epi32(_mm256_dpwssd_epi32(isum[t], plo, slo), phi, shi);
            }
        }
        float d = f16(b->d), dmin = f16(b->dmin);
        _Pragma("GCC unroll 4")
        for (int t = 0; t < 4; t++) {
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t]->d * d), _mm256_cvtepi32_ps(isum[t]), acc[t]);
            mins[t] += a[t]->d * dmin * (float)k4_minsum(mn, a[t]->bsums);
        }
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < 4; t++)
        out[t] = hsum_ps(acc[t]) - mins[t];
}

static void dot4_q6_k(const void *w, const void *x, size_t stride, int64_t n, float out[4])
{
    const blk_q6_k *b = w;
    const uint8_t *xb = x;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3);
    __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
    for (int64_t i = 0; i < n / 256; i++, b++) {
        __m256i scv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
        const cpuk_q8k *a[4];
        __m256i isum[4];
        _Pragma("GCC unroll 4")
        for (int t = 0; t < 4; t++) { /* codes are stored as (q + 32): remove 32 * sum(sc * bsums) */
            a[t] = (const cpuk_q8k *)(xb + t * stride) + i;
            __m256i bs = _mm256_madd_epi16(scv, _mm256_loadu_si256((const __m256i *)a[t]->bsums));
            isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(bs, 5));
        }
        _Pragma("GCC unroll 4")
        for (int h = 0; h < 2; h++) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
            __m256i q[4] = {
                _mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4),
                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
            };
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) {
                q[k] = _mm256_or_si256(q[k], _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
                qh = _mm256_srli_epi16(qh, 2);
                int j = 8 * h + 2 * k;
                __m256i sc = _mm256_set_m128i(_mm_set1_epi16(b->scales[j + 1]), _mm_set1_epi16(b->scales[j]));
                _Pragma("GCC unroll 4")
                for (int t = 0; t < 4; t++) {
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(a[t]->qs + 128 * h + 32 * k));
                    isum[t] = _mm256_dpwssd_epi32(isum[t], _mm256_maddubs_epi16(q[k], xv), sc);
                }
            }
        }
        float d = f16(b->d);
        _Pragma("GCC unroll 4")
        for (int t = 0; t < 4; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a[t]->d * d), _mm256_cvtepi32_ps(isum[t]), acc[t]);
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < 4; t++)
        out[t] = hsum_ps(acc[t]);
}

/* ---- eight rows by n tokens: Q4_0 and Q8_0 prompt batches (cpu_kernels_gemm8.inc) ----
 * vpdpbusd does a lane's four products and their sum in one instruction; two chains of four,
 * so a block's sum is not eight dependent instructions long. */
#define G8_BLOCK_SUM(Wb, a, s0, s1)                                                              \
    do {                                                                                         \
        s0 = _mm256_dpbusd_epi32(s0, (Wb)[0], _mm256_set1_epi32(x4(a, 0)));                      \
        s1 = _mm256_dpbusd_epi32(s1, (Wb)[1], _mm256_set1_epi32(x4(a, 1)));                      \
        s0 = _mm256_dpbusd_epi32(s0, (Wb)[2], _mm256_set1_epi32(x4(a, 2)));                      \
        s1 = _mm256_dpbusd_epi32(s1, (Wb)[3], _mm256_set1_epi32(x4(a, 3)));                      \
        s0 = _mm256_dpbusd_epi32(s0, (Wb)[4], _mm256_set1_epi32(x4(a, 4)));                      \
        s1 = _mm256_dpbusd_epi32(s1, (Wb)[5], _mm256_set1_epi32(x4(a, 5)));                      \
        s0 = _mm256_dpbusd_epi32(s0, (Wb)[6], _mm256_set1_epi32(x4(a, 6)));                      \
        s1 = _mm256_dpbusd_epi32(s1, (Wb)[7], _mm256_set1_epi32(x4(a, 7)));                      \
    } while (0)
#include "engine/cpu_kernels_gemm8.inc"

static void gemm8_q8_0(const void *w, size_t row_bytes, int64_t n, const void *x, size_t stride,
                       int n_tok, float *y, size_t ldy)
{
    gemm8(w, row_bytes, n, x, stride, n_tok, y, ldy, true);
}

#pragma GCC pop_options

const cpuk_dot4_fn cpuk_avx512_dot4s[CPUK_MAX_TYPE] = {
    [GGUF_T_Q4_0] = dot4_q4_0, [GGUF_T_Q4_1] = dot4_q4_1, [GGUF_T_Q5_0] = dot4_q5_0,
    [GGUF_T_Q5_1] = dot4_q5_1, [GGUF_T_Q8_0] = dot4_q8_0, [GGUF_T_Q4_K] = dot4_q4_k,
    [GGUF_T_Q6_K] = dot4_q6_k,
};

const cpuk_dot_fn cpuk_avx512_dots[CPUK_MAX_TYPE] = {
    [GGUF_T_Q4_0] = dot_q4_0, [GGUF_T_Q4_1] = dot_q4_1, [GGUF_T_Q5_0] = dot_q5_0,
    [GGUF_T_Q5_1] = dot_q5_1, [GGUF_T_Q8_0] = dot_q8_0, [GGUF_T_Q4_K] = dot_q4_k,
    [GGUF_T_Q6_K] = dot_q6_k,
};

const cpuk_gemm8_fn cpuk_avx512_gemm8s[CPUK_MAX_TYPE] = {
    [GGUF_T_Q4_0] = gemm8_q4_0, [GGUF_T_Q8_0] = gemm8_q8_0,
};

#else /* not x86-64 */
const cpuk_dot_fn cpuk_avx512_dots[CPUK_MAX_TYPE];
const cpuk_gemm8_fn cpuk_avx512_gemm8s[CPUK_MAX_TYPE];
const cpuk_dot4_fn cpuk_avx512_dot4s[CPUK_MAX_TYPE];
#endif
