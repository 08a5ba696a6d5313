/* AVX2 dot kernels for every weight type (see cpu_kernels.h). The whole file is compiled for
 * AVX2 + FMA + F16C by a target pragma, so the rest of the build stays generic; these functions
 * are only reached through cpuk_kernel_for when the CPU reports those features.
 *
 * The pattern throughout: weight codes as unsigned bytes, activations as signed bytes,
 * vpmaddubsw to 16-bit pair sums (no saturation: codes are at most 63 and activations at most
 * 127 in magnitude), vpmaddwd by ones or by the sub-block scales to 32 bits, and the codes'
 * offsets removed with the activations' block sums, exactly as in the plain C versions. */
#include "engine/cpu_kernels.h"

#include <math.h>

#include "engine/gguf.h"
#include "engine/quant_internal.h"

#if defined(__x86_64__) && defined(__GNUC__)

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>

#include "engine/cpu_kernels_x86.inc"

static inline int hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* The 32 bits of qh as bytes: 0x10 where bit i is set (bit 4 of a Q5 code), else 0. Byte i
 * takes byte i / 8 of qh, is or-ed with every bit but i % 8, and is all ones only if bit i % 8
 * was set. */
static inline __m256i q5_bits32(const uint8_t qh[4])
{
    uint32_t bits;
    memcpy(&bits, qh, 4);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                    _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
                                                      0x0101010101010101ll, 0));
    v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfell));
    v = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(-1));
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* sum of q[i] * x[i] over 32 bytes, as eight 32-bit lanes (q unsigned, x signed). */
static inline __m256i dot32(__m256i q, __m256i x)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1));
}

/* v minus k in lane 0 only: removes an offset times a block sum from a lane-split sum. */
static inline __m256i sub_lane0(__m256i v, int k)
{
    return _mm256_sub_epi32(v, _mm256_castsi128_si256(_mm_cvtsi32_si128(k)));
}

/* ---- the 32-element family ---- */

static float dot_q4_0(const void *w, const void *x, int64_t n)
{
    const blk_q4_0 *b = w;
    const cpuk_q8 *a = x;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++, b++, a++) {
        __m256i s = dot32(nibbles32(b->qs), _mm256_loadu_si256((const __m256i *)a->qs));
        s = sub_lane0(s, 8 * a->sum);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(b->d) * a->d), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum_ps(acc);
}

static float dot_q4_1(const void *w, const void *x, int64_t n)
{
    const blk_q4_1 *b = w;
    const cpuk_q8 *a = x;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    for (int64_t i = 0; i < n / 32; i++, b++, a++) {
        __m256i s = dot32(nibbles32(b->qs), _mm256_loadu_si256((const __m256i *)a->qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(b->d) * a->d), _mm256_cvtepi32_ps(s), acc);
        mins += f16(b->m) * a->s;
    }
    return hsum_ps(acc) + mins;
}

static float dot_q5_0(const void *w, const void *x, int64_t n)
{
    const blk_q5_0 *b = w;
    const cpuk_q8 *a = x;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++, b++, a++) {
        __m256i q = _mm256_or_si256(nibbles32(b->qs), q5_bits32(b->qh));
        __m256i s = sub_lane0(dot32(q, _mm256_loadu_si256((const __m256i *)a->qs)), 16 * a->sum);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(b->d) * a->d), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum_ps(acc);
}

static float dot_q5_1(const void *w, const void *x, int64_t n)
{
    const blk_q5_1 *b = w;
    const cpuk_q8 *a = x;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    for (int64_t i = 0; i < n / 32; i++, b++, a++) {
        __m256i q = _mm256_or_si256(nibbles32(b->qs), q5_bits32(b->qh));
        __m256i s = dot32(q, _mm256_loadu_si256((const __m256i *)a->qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16(b->d) * a->d), _mm256_cvtepi32_ps(s), acc);
        mins += f16(b->m) * a->s;
    }
    return hsum_ps(acc) + mins;
}

/* Both signed: |w| times x with w's sign moved onto x keeps vpmaddubsw's unsigned operand. */
static inline __m256i dot32_signed(__m256i w, __m256i x)
{
    return dot32(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

static float dot_q8_0(const void *w, const void *x, int64_t n)
{
    const blk_q8_0 *b = w;
    const cpuk_q8 *a = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t nb = n / 32, i = 0;
    for (; i + 2 <= nb; i += 2, b += 2, a += 2) { /* two chains hide the FMA latency */
        __m256i s0 = dot32_signed(_mm256_loadu_si256((const __m256i *)b[0].qs),
                                  _mm256_loadu_si256((const __m256i *)a[0].qs));
        __m256i s1 = dot32_signed(_mm256_loadu_si256((const __m256i *)b[1].qs),
                                  _mm256_loadu_si256((const __m256i *)a[1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(b[0].d) * a[0].d), _mm256_cvtepi32_ps(s0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(f16(b[1].d) * a[1].d), _mm256_cvtepi32_ps(s1), acc1);
    }
    for (; i < nb; i++, b++, a++) {
        __m256i s = dot32_signed(_mm256_loadu_si256((const __m256i *)b->qs),
                                 _mm256_loadu_si256((const __m256i *)a->qs));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(f16(b->d) * a->d), _mm256_cvtepi32_ps(s), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ---- K super-blocks ---- */

/* Pair sums of q*x (16 lanes of 16 bits) times one scale for elements 0..15 and another for
 * 16..31, summed in pairs to 32 bits. */
static inline __m256i scale16x2(__m256i p, int s0, int s1)
{
    __m256i sc = _mm256_set_m128i(_mm_set1_epi16((short)s1), _mm_set1_epi16((short)s0));
    return _mm256_madd_epi16(p, sc);
}

/* sum over j of sc[j] * bsums[j] for 16 scales and Q8_K's 16 block sums. */
static inline __m256i scaled_bsums(__m256i sc16, const int16_t bsums[16])
{
    return _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)bsums));
}

static float dot_q2_k(const void *w, const void *x, int64_t n)
{
    const blk_q2_k *b = w;
    const cpuk_q8k *a = x;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        __m128i sc8 = _mm_loadu_si128((const __m128i *)b->scales);
        __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(15)));
        __m256i msum = scaled_bsums(mins, a->bsums);
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i qs = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
            for (int s = 0; s < 4; s++) {
                __m256i q = _mm256_and_si256(qs, _mm256_set1_epi8(3));
                qs = _mm256_srli_epi16(qs, 2);
                __m256i xv = _mm256_loadu_si256((const __m256i *)(a->qs + 128 * h + 32 * s));
                int j = 8 * h + 2 * s;
                __m256i p = _mm256_maddubs_epi16(q, xv);
                isum = _mm256_add_epi32(isum, scale16x2(p, b->scales[j] & 15, b->scales[j + 1] & 15));
            }
        }
        float d = a->d * f16(b->d), dmin = a->d * f16(b->dmin);
        __m256 t = _mm256_mul_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(msum));
        acc = _mm256_add_ps(acc, _mm256_fmsub_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), t));
    }
    return hsum_ps(acc);
}

static float dot_q3_k(const void *w, const void *x, int64_t n)
{
    const blk_q3_k *b = w;
    const cpuk_q8k *a = x;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        int sc[16];
        q3k_scales(b->scales, sc);
        int16_t sc16[16];
        for (int j = 0; j < 16; j++)
            sc16[j] = (int16_t)sc[j];
        __m256i scv = _mm256_loadu_si256((const __m256i *)sc16);
        /* the codes are stored as (q + 4): remove 4 * sum(sc * bsums) */
        __m256i isum = _mm256_slli_epi32(scaled_bsums(scv, a->bsums), 2);
        isum = _mm256_sub_epi32(_mm256_setzero_si256(), isum);
        __m256i hm = _mm256_loadu_si256((const __m256i *)b->hmask);
        for (int h = 0; h < 2; h++) {
            __m256i qs = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
            for (int s = 0; s < 4; s++) {
                __m256i q = _mm256_and_si256(qs, _mm256_set1_epi8(3));
                qs = _mm256_srli_epi16(qs, 2);
                /* the third bit: bit 0 of hm, then hm moves down one bit per step */
                __m256i hb = _mm256_slli_epi16(_mm256_and_si256(hm, _mm256_set1_epi8(1)), 2);
                hm = _mm256_srli_epi16(hm, 1);
                q = _mm256_or_si256(q, hb);
                __m256i xv = _mm256_loadu_si256((const __m256i *)(a->qs + 128 * h + 32 * s));
                int j = 8 * h + 2 * s;
                isum = _mm256_add_epi32(isum, scale16x2(_mm256_maddubs_epi16(q, xv), sc[j], sc[j + 1]));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a->d * f16(b->d)), _mm256_cvtepi32_ps(isum), acc);
    }
    return hsum_ps(acc);
}

static float dot_q4_k(const void *w, const void *x, int64_t n)
{
    const blk_q4_k *b = w;
    const cpuk_q8k *a = x;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        uint8_t sc[8], mn[8];
        k4_unpack(b->scales, sc, mn);
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i qs = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
            __m256i lo = _mm256_and_si256(qs, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qs, 4), m4);
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c)));
            __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c + 32)));
            plo = _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c]));
            phi = _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1]));
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(plo, phi));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a->d * f16(b->d)), _mm256_cvtepi32_ps(isum), acc);
        mins += a->d * f16(b->dmin) * (float)k4_minsum(mn, a->bsums);
    }
    return hsum_ps(acc) - mins;
}

static float dot_q5_k(const void *w, const void *x, int64_t n)
{
    const blk_q5_k *b = w;
    const cpuk_q8k *a = x;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        uint8_t sc[8], mn[8];
        k4_unpack(b->scales, sc, mn);
        __m256i isum = _mm256_setzero_si256();
        __m256i qh = _mm256_loadu_si256((const __m256i *)b->qh);
        for (int c = 0; c < 4; c++) {
            __m256i qs = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
            __m256i lo = _mm256_and_si256(qs, m4), hi = _mm256_and_si256(_mm256_srli_epi16(qs, 4), m4);
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
            qh = _mm256_srli_epi16(qh, 2);
            __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c)));
            __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(a->qs + 64 * c + 32)));
            plo = _mm256_madd_epi16(plo, _mm256_set1_epi16(sc[2 * c]));
            phi = _mm256_madd_epi16(phi, _mm256_set1_epi16(sc[2 * c + 1]));
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(plo, phi));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a->d * f16(b->d)), _mm256_cvtepi32_ps(isum), acc);
        mins += a->d * f16(b->dmin) * (float)k4_minsum(mn, a->bsums);
    }
    return hsum_ps(acc) - mins;
}

static float dot_q6_k(const void *w, const void *x, int64_t n)
{
    const blk_q6_k *b = w;
    const cpuk_q8k *a = x;
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < n / 256; i++, b++, a++) {
        __m256i scv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
        /* codes are stored as (q + 32): remove 32 * sum(sc * bsums) */
        __m256i isum = _mm256_sub_epi32(_mm256_setzero_si256(),
                                        _mm256_slli_epi32(scaled_bsums(scv, a->bsums), 5));
        for (int h = 0; h < 2; h++) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
            __m256i q[4] = {
                _mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4),
                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
            };
            for (int k = 0; k < 4; k++) {
                __m256i hb = _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4);
                qh = _mm256_srli_epi16(qh, 2);
                __m256i xv = _mm256_loadu_si256((const __m256i *)(a->qs + 128 * h + 32 * k));
                __m256i p = _mm256_maddubs_epi16(_mm256_or_si256(q[k], hb), xv);
                int j = 8 * h + 2 * k;
                isum = _mm256_add_epi32(isum, scale16x2(p, b->scales[j], b->scales[j + 1]));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a->d * f16(b->d)), _mm256_cvtepi32_ps(isum), acc);
    }
    return hsum_ps(acc);
}

/* ---- four tokens per weight row (prompts): the 32-element family ----
 * The block's codes are unpacked once for four tokens; per token and block an integer dot
 * product, its conversion, a multiply by the token's scale (from memory) and an FMA by the
 * block's. Offsets of unsigned codes come off in float (offset * d_w * (d_x * sum_x)). */

static void dot4_q8_0(const void *w, const void *x, size_t stride, int64_t n, float out[4])
{
    const blk_q8_0 *b = w;
    const uint8_t *xb = x;
    __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
    for (int64_t i = 0; i < n / 32; i++, b++) {
        __m256i wv = _mm256_loadu_si256((const __m256i *)b->qs), aw = _mm256_sign_epi8(wv, wv);
        __m256 dw = _mm256_set1_ps(f16(b->d));
        _Pragma("GCC unroll 4")
        for (int t = 0; t < 4; t++) {
            const cpuk_q8 *a = (const cpuk_q8 *)(xb + t * stride) + i;
            __m256i s = dot32(aw, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)a->qs), wv));
            __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_broadcast_ss(&a->d));
            acc[t] = _mm256_fmadd_ps(f, dw, acc[t]);
        }
    }
    _Pragma("GCC unroll 4")
    for (int t = 0; t < 4; t++)
        out[t] = hsum_ps(acc[t]);
}

#define DOT4_BLOCKS(name, blk, code, off, has_min, minf)                                         \
    static void name(const void *w, const void *x, size_t stride, int64_t n, float out[4])       \
    {                                                                                            \
        const blk *b = w;                                                                        \
        const uint8_t *xb = x;                                                                   \
        __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),         \
                          _mm256_setzero_ps() };                                                 \
        float corr[4] = { 0, 0, 0, 0 };                                                          \
        for (int64_t i = 0; i < n / 32; i++, b++) {                                              \
            __m256i q = code(b);                                                                 \
            float dws = f16(b->d), m = minf(b);                                                  \
            __m256 dw = _mm256_set1_ps(dws);                                                     \
            _Pragma("GCC unroll 4")                                                              \
            for (int t = 0; t < 4; t++) {                                                        \
                const cpuk_q8 *a = (const cpuk_q8 *)(xb + t * stride) + i;                       \
                __m256i s = dot32(q, _mm256_loadu_si256((const __m256i *)a->qs));                \
                __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(s), _mm256_broadcast_ss(&a->d));     \
                acc[t] = _mm256_fmadd_ps(f, dw, acc[t]);                                         \
                corr[t] += has_min ? m * a->s : dws * a->ds;                                     \
            }                                                                                    \
        }                                                                                        \
        _Pragma("GCC unroll 4")                                                                  \
        for (int t = 0; t < 4; t++)                                                              \
            out[t] = hsum_ps(acc[t]) + (has_min ? corr[t] : -(float)(off) * corr[t]);            \
    }

#define CODE4(b) nibbles32((b)->qs)
#define CODE5(b) _mm256_or_si256(nibbles32((b)->qs), q5_bits32((b)->qh))
#define NO_MIN(b) 0.0f
#define MIN_M(b) f16((b)->m)
DOT4_BLOCKS(dot4_q4_0, blk_q4_0, CODE4, 8, 0, NO_MIN)
DOT4_BLOCKS(dot4_q5_0, blk_q5_0, CODE5, 16, 0, NO_MIN)
DOT4_BLOCKS(dot4_q4_1, blk_q4_1, CODE4, 0, 1, MIN_M)
DOT4_BLOCKS(dot4_q5_1, blk_q5_1, CODE5, 0, 1, MIN_M)

/* ---- four tokens per weight row (prompts): K super-blocks ----
 * A K super-block's codes and scales are unpacked once and met by four tokens' activations, so
 * the unpacking and the weight loads are paid once per four products. Each token's sum is
 * formed in the order its dot kernel above forms it, so the results are the same bit for bit. */

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
                plo = _mm256_madd_epi16(plo, slo);
                phi = _mm256_madd_epi16(phi, shi);
                isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(plo, phi));
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
        for (int t = 0; t < 4; t++) {
            a[t] = (const cpuk_q8k *)(xb + t * stride) + i;
            isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                       _mm256_slli_epi32(scaled_bsums(scv, a[t]->bsums), 5));
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
                    __m256i p = _mm256_maddubs_epi16(q[k], xv);
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p, sc));
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

/* ---- float rows: eight lanes, four chains ---- */

static float dot_f32(const void *w, const void *x, int64_t n)
{
    const float *p = w, *v = x;
    __m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(p + i + 8 * k), _mm256_loadu_ps(v + i + 8 * k), acc[k]);
    for (; i + 8 <= n; i += 8)
        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(p + i), _mm256_loadu_ps(v + i), acc[0]);
    float s = hsum_ps(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    for (; i < n; i++)
        s += p[i] * v[i];
    return s;
}

static inline __m256 load_f16x8(const uint8_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline __m256 load_bf16x8(const uint8_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

#define DOT_HALF(name, load, scalar)                                                              \
    static float name(const void *w, const void *x, int64_t n)                                   \
    {                                                                                            \
        const uint8_t *p = w;                                                                    \
        const float *v = x;                                                                      \
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();                               \
        int64_t i = 0;                                                                           \
        for (; i + 16 <= n; i += 16) {                                                           \
            a0 = _mm256_fmadd_ps(load(p + 2 * i), _mm256_loadu_ps(v + i), a0);                  \
            a1 = _mm256_fmadd_ps(load(p + 2 * i + 16), _mm256_loadu_ps(v + i + 8), a1);         \
        }                                                                                        \
        for (; i + 8 <= n; i += 8)                                                               \
            a0 = _mm256_fmadd_ps(load(p + 2 * i), _mm256_loadu_ps(v + i), a0);                   \
        float s = hsum_ps(_mm256_add_ps(a0, a1));                                                \
        for (; i < n; i++) {                                                                     \
            uint16_t h;                                                                          \
            memcpy(&h, p + 2 * i, 2);                                                            \
            s += scalar(h) * v[i];                                                               \
        }                                                                                        \
        return s;                                                                                \
    }
DOT_HALF(dot_f16, load_f16x8, eng_f16_to_f32)
DOT_HALF(dot_bf16, load_bf16x8, eng_bf16_to_f32)

void cpuk_avx2_axpy_f16(float *o, float a, const uint16_t *v, int64_t n)
{
    __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(o + i, _mm256_fmadd_ps(av, load_f16x8((const uint8_t *)(v + i)),
                                                _mm256_loadu_ps(o + i)));
    for (; i < n; i++)
        o[i] += a * _cvtsh_ss(v[i]);
}

/* Attention over the cached positions (cpuk_attend_fn): keys and values converted with F16C,
 * each q.k formed as dot_f16 forms it, the probabilities divided and rounded to f16 eight at a
 * time, and the values summed 64 columns at a time in eight registers, one FMA per position
 * and vector, in position order (as one axpy per position would add them). */
void cpuk_avx2_attend(const float *q, const uint16_t *K, size_t kstride, const uint16_t *V,
                      size_t vstride, int hd, int hdv, int n, float scale, float *scores, float *o)
{
    float mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++) {
        scores[j] = dot_f16(K + (size_t)j * kstride, q, hd) * scale;
        mx = scores[j] > mx ? scores[j] : mx;
    }
    for (int j = 0; j < n; j++) {
        scores[j] = expf(scores[j] - mx);
        sum += scores[j];
    }
    int j = 0;
    __m256 sv = _mm256_set1_ps(sum);
    for (; j + 8 <= n; j += 8) {
        __m256 p = _mm256_div_ps(_mm256_loadu_ps(scores + j), sv);
        _mm256_storeu_ps(scores + j, _mm256_cvtph_ps(_mm256_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT)));
    }
    for (; j < n; j++)
        scores[j] = _cvtsh_ss(_cvtss_sh(scores[j] / sum, _MM_FROUND_TO_NEAREST_INT));
    int c = 0;
    for (; c + 64 <= hdv; c += 64) {
        __m256 acc[8];
        _Pragma("GCC unroll 8")
        for (int k = 0; k < 8; k++)
            acc[k] = _mm256_setzero_ps();
        for (int jj = 0; jj < n; jj++) {
            const uint8_t *vr = (const uint8_t *)(V + (size_t)jj * vstride + c);
            __m256 p = _mm256_broadcast_ss(scores + jj);
            _Pragma("GCC unroll 8")
            for (int k = 0; k < 8; k++)
                acc[k] = _mm256_fmadd_ps(p, load_f16x8(vr + 16 * k), acc[k]);
        }
        _Pragma("GCC unroll 8")
        for (int k = 0; k < 8; k++)
            _mm256_storeu_ps(o + c + 8 * k, acc[k]);
    }
    if (c < hdv) { /* the columns past the last 64 */
        memset(o + c, 0, (size_t)(hdv - c) * sizeof *o);
        for (int jj = 0; jj < n; jj++)
            cpuk_avx2_axpy_f16(o + c, scores[jj], V + (size_t)jj * vstride + c, hdv - c);
    }
}

/* ---- eight rows by n tokens: Q4_0 prompt batches (cpu_kernels_gemm8.inc) ----
 * vpmaddubsw forms each lane's two pair sums in 16 bits (a Q4_0 code is at most 15, an
 * activation at most 127 in magnitude: 3810 a pair), so the eight products of a block add up
 * in 16 bits (at most 30480) before one vpmaddwd by ones widens them. Q8_0's codes (255 when
 * stored unsigned) would saturate vpmaddubsw: it keeps its four-token kernel here. */
#define G8_BLOCK_SUM(Wb, a, s0, s1)                                                              \
    do {                                                                                         \
        __m256i p0_ = _mm256_maddubs_epi16((Wb)[0], _mm256_set1_epi32(x4(a, 0)));                \
        __m256i p1_ = _mm256_maddubs_epi16((Wb)[1], _mm256_set1_epi32(x4(a, 1)));                \
        p0_ = _mm256_add_epi16(p0_, _mm256_maddubs_epi16((Wb)[2], _mm256_set1_epi32(x4(a, 2)))); \
        p1_ = _mm256_add_epi16(p1_, _mm256_maddubs_epi16((Wb)[3], _mm256_set1_epi32(x4(a, 3)))); \
        p0_ = _mm256_add_epi16(p0_, _mm256_maddubs_epi16((Wb)[4], _mm256_set1_epi32(x4(a, 4)))); \
        p1_ = _mm256_add_epi16(p1_, _mm256_maddubs_epi16((Wb)[5], _mm256_set1_epi32(x4(a, 5)))); \
        p0_ = _mm256_add_epi16(p0_, _mm256_maddubs_epi16((Wb)[6], _mm256_set1_epi32(x4(a, 6)))); \
        p1_ = _mm256_add_epi16(p1_, _mm256_maddubs_epi16((Wb)[7], _mm256_set1_epi32(x4(a, 7)))); \
        s1 = _mm256_madd_epi16(_mm256_add_epi16(p0_, p1_), _mm256_set1_epi16(1));               \
    } while (0)
#include "engine/cpu_kernels_gemm8.inc"

#pragma GCC pop_options

const cpuk_dot_fn cpuk_avx2_dots[CPUK_MAX_TYPE] = {
    [GGUF_T_F32] = dot_f32,   [GGUF_T_F16] = dot_f16,   [GGUF_T_BF16] = dot_bf16,
    [GGUF_T_Q4_0] = dot_q4_0, [GGUF_T_Q4_1] = dot_q4_1, [GGUF_T_Q5_0] = dot_q5_0,
    [GGUF_T_Q5_1] = dot_q5_1, [GGUF_T_Q8_0] = dot_q8_0, [GGUF_T_Q2_K] = dot_q2_k,
    [GGUF_T_Q3_K] = dot_q3_k, [GGUF_T_Q4_K] = dot_q4_k, [GGUF_T_Q5_K] = dot_q5_k,
    [GGUF_T_Q6_K] = dot_q6_k,
};

const cpuk_dot4_fn cpuk_avx2_dot4s[CPUK_MAX_TYPE] = {
    [GGUF_T_Q4_0] = dot4_q4_0, [GGUF_T_Q4_1] = dot4_q4_1, [GGUF_T_Q5_0] = dot4_q5_0,
    [GGUF_T_Q5_1] = dot4_q5_1, [GGUF_T_Q8_0] = dot4_q8_0, [GGUF_T_Q4_K] = dot4_q4_k,
    [GGUF_T_Q6_K] = dot4_q6_k,
};

const cpuk_gemm8_fn cpuk_avx2_gemm8s[CPUK_MAX_TYPE] = { [GGUF_T_Q4_0] = gemm8_q4_0 };

#else /* not x86-64: no AVX2 kernels */
const cpuk_gemm8_fn cpuk_avx2_gemm8s[CPUK_MAX_TYPE];
const cpuk_dot_fn cpuk_avx2_dots[CPUK_MAX_TYPE];
const cpuk_dot4_fn cpuk_avx2_dot4s[CPUK_MAX_TYPE];
#endif
