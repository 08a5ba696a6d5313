/* NEON dot kernels for AArch64 (see cpu_kernels.h): every weight type, four-token kernels for
 * every quantized type, eight-row kernels for Q4_0 and Q8_0, and the f16 axpy and attention of
 * the fast path. Compiled to empty tables on other architectures; the build stays generic
 * armv8-a.
 *
 * Two tables come out of this file. The integer kernels (cpu_kernels_neon.inc) are compiled
 * twice: once with the base instruction set, where a 16-byte dot product is two widening
 * multiplies (smull) and pairwise accumulates (sadalp), and once for armv8.2-a with the dot product extension, where
 * it is one sdot. cpuk_isa_best picks the second only when the kernel reports the dot product
 * instructions (HWCAP_ASIMDDP). The float kernels need nothing beyond the base, so both tables
 * share them.
 *
 * Unlike x86's byte multiply-add, sdot and smull take two signed operands, so the weight codes
 * here carry their offset (Q4_0's -8, Q6_K's -32, ...) in the bytes themselves instead of
 * having it removed through the activations' block sums; the integer sums are the same. Every
 * integer sum of a block is exact, so the results agree with the plain C kernels to float
 * rounding (the K types' per-super-block float terms are even formed in the same order). */
#include "engine/cpu_kernels.h"

#include <math.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/quant_internal.h"

#if defined(__aarch64__) && defined(__GNUC__)

#include <arm_neon.h>

#define NEON_INLINE static inline __attribute__((always_inline))

NEON_INLINE float f16(const uint8_t h[2])
{
    __fp16 v;
    memcpy(&v, h, 2);
    return (float)v;
}

/* ---- float rows ---- */

static float dot_f32(const void *w, const void *x, int64_t n)
{
    const float *p = w, *v = x;
    float32x4_t acc[4] = { vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0) };
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++)
            acc[k] = vfmaq_f32(acc[k], vld1q_f32(p + i + 4 * k), vld1q_f32(v + i + 4 * k));
    for (; i + 4 <= n; i += 4)
        acc[0] = vfmaq_f32(acc[0], vld1q_f32(p + i), vld1q_f32(v + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    for (; i < n; i++)
        s += p[i] * v[i];
    return s;
}

/* Eight halves (f16 or bf16 by `bf`) as two float32x4. */
NEON_INLINE void load_half8(const uint16_t *p, bool bf, float32x4_t *lo, float32x4_t *hi)
{
    uint16x8_t u = vld1q_u16(p);
    if (bf) {
        *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(u), 16));
        *hi = vreinterpretq_f32_u32(vshll_high_n_u16(u, 16));
    } else {
        float16x8_t h = vreinterpretq_f16_u16(u);
        *lo = vcvt_f32_f16(vget_low_f16(h));
        *hi = vcvt_high_f32_f16(h);
    }
}

/* sum of k[i] * q[i], k in halves: the plain attention's order (cpu_kernels.c, dot_f16_lanes),
 * two chains of eight lanes over 16-element steps (each eight lanes as two vectors), the same
 * horizontal sum, then the tail in order. For f16 keys this is bit for bit the plain result. */
NEON_INLINE float dot_half_lanes(const uint16_t *k, const float *q, int64_t n, bool bf)
{
    float32x4_t a0l = vdupq_n_f32(0), a0h = a0l, a1l = a0l, a1h = a0l, lo, hi;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        load_half8(k + i, bf, &lo, &hi);
        a0l = vfmaq_f32(a0l, lo, vld1q_f32(q + i));
        a0h = vfmaq_f32(a0h, hi, vld1q_f32(q + i + 4));
        load_half8(k + i + 8, bf, &lo, &hi);
        a1l = vfmaq_f32(a1l, lo, vld1q_f32(q + i + 8));
        a1h = vfmaq_f32(a1h, hi, vld1q_f32(q + i + 12));
    }
    for (; i + 8 <= n; i += 8) {
        load_half8(k + i, bf, &lo, &hi);
        a0l = vfmaq_f32(a0l, lo, vld1q_f32(q + i));
        a0h = vfmaq_f32(a0h, hi, vld1q_f32(q + i + 4));
    }
    float32x4_t h = vaddq_f32(vaddq_f32(a0l, a1l), vaddq_f32(a0h, a1h)); /* v[l] + v[l+4] */
    float32x2_t p = vadd_f32(vget_low_f32(h), vget_high_f32(h));        /* h0+h2, h1+h3 */
    float s = vget_lane_f32(p, 0) + vget_lane_f32(p, 1);
    for (; i < n; i++)
        s += (bf ? eng_bf16_to_f32(k[i]) : eng_f16_to_f32(k[i])) * q[i];
    return s;
}

static float dot_f16(const void *w, const void *x, int64_t n)
{
    return dot_half_lanes(w, x, n, false);
}

static float dot_bf16(const void *w, const void *x, int64_t n)
{
    return dot_half_lanes(w, x, n, true);
}

void cpuk_neon_axpy_f16(float *o, float a, const uint16_t *v, int64_t n)
{
    float32x4_t lo, hi;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        load_half8(v + i, false, &lo, &hi);
        vst1q_f32(o + i, vfmaq_n_f32(vld1q_f32(o + i), lo, a));
        vst1q_f32(o + i + 4, vfmaq_n_f32(vld1q_f32(o + i + 4), hi, a));
    }
    for (; i < n; i++)
        o[i] += a * eng_f16_to_f32(v[i]);
}

/* Attention over the cached positions (cpuk_attend_fn), in the plain version's order
 * throughout: each q.k as dot_half_lanes forms it, the probabilities divided and rounded to
 * f16 four at a time (the conversion rounds to nearest even, as eng_f32_to_f16 does), and the
 * values summed 32 columns at a time in eight registers, one fused multiply-add per position
 * and column in position order. Bit for bit the plain result, whatever the head sizes. */
void cpuk_neon_attend(const float *q, const uint16_t *K, size_t kstride, const uint16_t *V,
                      size_t vstride, int hd, int hdv, int n, float scale, float *scores, float *o)
{
    float mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++) {
        scores[j] = dot_half_lanes(K + (size_t)j * kstride, q, hd, false) * scale;
        mx = scores[j] > mx ? scores[j] : mx;
    }
    for (int j = 0; j < n; j++) {
        scores[j] = expf(scores[j] - mx);
        sum += scores[j];
    }
    int j = 0;
    float32x4_t sv = vdupq_n_f32(sum);
    for (; j + 4 <= n; j += 4) {
        float32x4_t p = vdivq_f32(vld1q_f32(scores + j), sv);
        vst1q_f32(scores + j, vcvt_f32_f16(vcvt_f16_f32(p)));
    }
    for (; j < n; j++)
        scores[j] = eng_f16_to_f32(eng_f32_to_f16(scores[j] / sum));
    int c = 0;
    for (; c + 32 <= hdv; c += 32) {
        float32x4_t acc[8], lo, hi;
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++)
            acc[k] = vdupq_n_f32(0);
        for (int jj = 0; jj < n; jj++) {
            const uint16_t *vr = V + (size_t)jj * vstride + c;
            float32x4_t p = vdupq_n_f32(scores[jj]);
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
                load_half8(vr + 8 * k, false, &lo, &hi);
                acc[2 * k] = vfmaq_f32(acc[2 * k], p, lo);
                acc[2 * k + 1] = vfmaq_f32(acc[2 * k + 1], p, hi);
            }
        }
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++)
            vst1q_f32(o + c + 4 * k, acc[k]);
    }
    for (; c < hdv; c++) { /* the columns past the last 32, one at a time in the same order */
        float acc = 0;
        for (int jj = 0; jj < n; jj++)
            acc = fmaf(scores[jj], eng_f16_to_f32(V[(size_t)jj * vstride + c]), acc);
        o[c] = acc;
    }
}

/* ---- unpacking quantized blocks to signed codes (shared by both integer variants) ---- */

/* Bit 4 of a Q5 block's 32 codes as bytes (0x10 or 0), elements 0..15 and 16..31: byte j
 * takes qh[j / 8] and tests its bit j % 8. */
NEON_INLINE void q5_bits(const uint8_t qh[4], uint8x16_t *h0, uint8x16_t *h1)
{
    static const uint8_t bit[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
    const uint8x16_t sel = vld1q_u8(bit), b4 = vdupq_n_u8(0x10);
    *h0 = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1])), sel), b4);
    *h1 = vandq_u8(vtstq_u8(vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3])), sel), b4);
}

NEON_INLINE int8x16_t s8(uint8x16_t v)
{
    return vreinterpretq_s8_u8(v);
}

NEON_INLINE size_t small_bytes(uint32_t type)
{
    switch (type) {
    case GGUF_T_Q4_0: return sizeof(blk_q4_0);
    case GGUF_T_Q4_1: return sizeof(blk_q4_1);
    case GGUF_T_Q5_0: return sizeof(blk_q5_0);
    case GGUF_T_Q5_1: return sizeof(blk_q5_1);
    default: return sizeof(blk_q8_0);
    }
}

/* A block of the 32-element family: its codes in element order as signed bytes (the offset of
 * Q4_0/Q5_0 taken off), its scale d and its minimum m (0 for the types without one). type is a
 * constant wherever this is inlined, so the switch folds away. */
NEON_INLINE void small_block(uint32_t type, const uint8_t *p, int8x16_t c[2], float *d, float *m)
{
    const uint8x16_t m4 = vdupq_n_u8(15);
    uint8x16_t v, h0, h1;
    switch (type) {
    case GGUF_T_Q4_0: {
        const blk_q4_0 *b = (const blk_q4_0 *)p;
        v = vld1q_u8(b->qs);
        c[0] = vsubq_s8(s8(vandq_u8(v, m4)), vdupq_n_s8(8));
        c[1] = vsubq_s8(s8(vshrq_n_u8(v, 4)), vdupq_n_s8(8));
        *d = f16(b->d);
        *m = 0;
        return;
    }
    case GGUF_T_Q4_1: {
        const blk_q4_1 *b = (const blk_q4_1 *)p;
        v = vld1q_u8(b->qs);
        c[0] = s8(vandq_u8(v, m4));
        c[1] = s8(vshrq_n_u8(v, 4));
        *d = f16(b->d);
        *m = f16(b->m);
        return;
    }
    case GGUF_T_Q5_0: {
        const blk_q5_0 *b = (const blk_q5_0 *)p;
        v = vld1q_u8(b->qs);
        q5_bits(b->qh, &h0, &h1);
        c[0] = vsubq_s8(s8(vorrq_u8(vandq_u8(v, m4), h0)), vdupq_n_s8(16));
        c[1] = vsubq_s8(s8(vorrq_u8(vshrq_n_u8(v, 4), h1)), vdupq_n_s8(16));
        *d = f16(b->d);
        *m = 0;
        return;
    }
    case GGUF_T_Q5_1: {
        const blk_q5_1 *b = (const blk_q5_1 *)p;
        v = vld1q_u8(b->qs);
        q5_bits(b->qh, &h0, &h1);
        c[0] = s8(vorrq_u8(vandq_u8(v, m4), h0));
        c[1] = s8(vorrq_u8(vshrq_n_u8(v, 4), h1));
        *d = f16(b->d);
        *m = f16(b->m);
        return;
    }
    default: {
        const blk_q8_0 *b = (const blk_q8_0 *)p;
        c[0] = vld1q_s8(b->qs);
        c[1] = vld1q_s8(b->qs + 16);
        *d = f16(b->d);
        *m = 0;
        return;
    }
    }
}

/* A K super-block unpacked: q[g] holds the codes of elements 16g..16g+15 as signed bytes (the
 * offsets of Q3_K and Q6_K taken off), sc[g] and mn[g] that group's scale and minimum (mn all
 * 0 for the types without minimums), d and dmin the block's factors. */
typedef struct kblock {
    int8x16_t q[16];
    int32_t sc[16];
    int16_t mn[16];
    float d, dmin;
} kblock;

NEON_INLINE size_t k_bytes(uint32_t type)
{
    switch (type) {
    case GGUF_T_Q2_K: return sizeof(blk_q2_k);
    case GGUF_T_Q3_K: return sizeof(blk_q3_k);
    case GGUF_T_Q4_K: return sizeof(blk_q4_k);
    case GGUF_T_Q5_K: return sizeof(blk_q5_k);
    default: return sizeof(blk_q6_k);
    }
}

/* Element 128h + 32s + l of Q2_K and Q3_K has its two low bits at bits 2s..2s+1 of byte
 * 32h + l: per h, two 16-byte loads shifted down two bits per s. */
NEON_INLINE void unpack_q2_k(const blk_q2_k *b, kblock *k)
{
    const uint8x16_t m2 = vdupq_n_u8(3);
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
        uint8x16_t v0 = vld1q_u8(b->qs + 32 * h), v1 = vld1q_u8(b->qs + 32 * h + 16);
        _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++) {
            k->q[8 * h + 2 * s] = s8(vandq_u8(v0, m2));
            k->q[8 * h + 2 * s + 1] = s8(vandq_u8(v1, m2));
            v0 = vshrq_n_u8(v0, 2);
            v1 = vshrq_n_u8(v1, 2);
        }
    }
    for (int g = 0; g < 16; g++) {
        k->sc[g] = b->scales[g] & 15;
        k->mn[g] = (int16_t)(b->scales[g] >> 4);
    }
    k->d = f16(b->d);
    k->dmin = f16(b->dmin);
}

/* Q3_K: the third bit of element 128h + 32s + l is bit 4h + s of hmask[l]; the codes are
 * stored as q + 4. */
NEON_INLINE void unpack_q3_k(const blk_q3_k *b, kblock *k)
{
    const uint8x16_t m2 = vdupq_n_u8(3), one = vdupq_n_u8(1);
    uint8x16_t hm0 = vld1q_u8(b->hmask), hm1 = vld1q_u8(b->hmask + 16);
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
        uint8x16_t v0 = vld1q_u8(b->qs + 32 * h), v1 = vld1q_u8(b->qs + 32 * h + 16);
        _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++) {
            uint8x16_t c0 = vorrq_u8(vandq_u8(v0, m2), vshlq_n_u8(vandq_u8(hm0, one), 2));
            uint8x16_t c1 = vorrq_u8(vandq_u8(v1, m2), vshlq_n_u8(vandq_u8(hm1, one), 2));
            k->q[8 * h + 2 * s] = vsubq_s8(s8(c0), vdupq_n_s8(4));
            k->q[8 * h + 2 * s + 1] = vsubq_s8(s8(c1), vdupq_n_s8(4));
            v0 = vshrq_n_u8(v0, 2);
            v1 = vshrq_n_u8(v1, 2);
            hm0 = vshrq_n_u8(hm0, 1);
            hm1 = vshrq_n_u8(hm1, 1);
        }
    }
    int sc[16];
    q3k_scales(b->scales, sc);
    for (int g = 0; g < 16; g++) {
        k->sc[g] = sc[g];
        k->mn[g] = 0;
    }
    k->d = f16(b->d);
    k->dmin = 0;
}

/* Q4_K (qh NULL) and Q5_K: sub-block j of 32 takes the low nibbles of qs[32(j/2) ..] for even
 * j, the high ones for odd j, and (Q5_K) bit j of qh[l] as bit 4. */
NEON_INLINE void unpack_q45_k(const uint8_t *qs, const uint8_t *qh, const uint8_t scales[12],
                              const uint8_t d[2], const uint8_t dmin[2], kblock *k)
{
    const uint8x16_t m4 = vdupq_n_u8(15), one = vdupq_n_u8(1);
    uint8x16_t h0 = vdupq_n_u8(0), h1 = h0;
    if (qh) {
        h0 = vld1q_u8(qh);
        h1 = vld1q_u8(qh + 16);
    }
    _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
        uint8x16_t v0 = vld1q_u8(qs + 32 * c), v1 = vld1q_u8(qs + 32 * c + 16);
        uint8x16_t l0 = vandq_u8(v0, m4), l1 = vandq_u8(v1, m4);
        uint8x16_t u0 = vshrq_n_u8(v0, 4), u1 = vshrq_n_u8(v1, 4);
        if (qh) {
            l0 = vorrq_u8(l0, vshlq_n_u8(vandq_u8(h0, one), 4));
            l1 = vorrq_u8(l1, vshlq_n_u8(vandq_u8(h1, one), 4));
            u0 = vorrq_u8(u0, vshlq_n_u8(vandq_u8(vshrq_n_u8(h0, 1), one), 4));
            u1 = vorrq_u8(u1, vshlq_n_u8(vandq_u8(vshrq_n_u8(h1, 1), one), 4));
            h0 = vshrq_n_u8(h0, 2);
            h1 = vshrq_n_u8(h1, 2);
        }
        k->q[4 * c] = s8(l0);
        k->q[4 * c + 1] = s8(l1);
        k->q[4 * c + 2] = s8(u0);
        k->q[4 * c + 3] = s8(u1);
    }
    uint8_t sc[8], mn[8];
    k4_unpack(scales, sc, mn);
    for (int g = 0; g < 16; g++) {
        k->sc[g] = sc[g / 2];
        k->mn[g] = mn[g / 2];
    }
    k->d = f16(d);
    k->dmin = f16(dmin);
}

/* Q6_K: element 128h + 32k + l has its low nibble in ql[64h + 32(k & 1) + l] (low nibbles for
 * k < 2, high for k >= 2) and its top two bits at bits 2k..2k+1 of qh[32h + l]; the codes are
 * stored as q + 32. */
NEON_INLINE void unpack_q6_k(const blk_q6_k *b, kblock *k)
{
    const uint8x16_t m4 = vdupq_n_u8(15), m2 = vdupq_n_u8(3);
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h;
        uint8x16_t l[4] = { vld1q_u8(ql), vld1q_u8(ql + 16), vld1q_u8(ql + 32), vld1q_u8(ql + 48) };
        uint8x16_t qh0 = vld1q_u8(b->qh + 32 * h), qh1 = vld1q_u8(b->qh + 32 * h + 16);
        _Pragma("GCC unroll 4") for (int kk = 0; kk < 4; kk++) {
            uint8x16_t c0 = l[2 * (kk & 1)], c1 = l[2 * (kk & 1) + 1];
            c0 = kk < 2 ? vandq_u8(c0, m4) : vshrq_n_u8(c0, 4);
            c1 = kk < 2 ? vandq_u8(c1, m4) : vshrq_n_u8(c1, 4);
            c0 = vorrq_u8(c0, vshlq_n_u8(vandq_u8(qh0, m2), 4));
            c1 = vorrq_u8(c1, vshlq_n_u8(vandq_u8(qh1, m2), 4));
            qh0 = vshrq_n_u8(qh0, 2);
            qh1 = vshrq_n_u8(qh1, 2);
            k->q[8 * h + 2 * kk] = vsubq_s8(s8(c0), vdupq_n_s8(32));
            k->q[8 * h + 2 * kk + 1] = vsubq_s8(s8(c1), vdupq_n_s8(32));
        }
    }
    for (int g = 0; g < 16; g++) {
        k->sc[g] = b->scales[g];
        k->mn[g] = 0;
    }
    k->d = f16(b->d);
    k->dmin = 0;
}

NEON_INLINE void k_unpack(uint32_t type, const uint8_t *p, kblock *k)
{
    switch (type) {
    case GGUF_T_Q2_K: unpack_q2_k((const blk_q2_k *)p, k); return;
    case GGUF_T_Q3_K: unpack_q3_k((const blk_q3_k *)p, k); return;
    case GGUF_T_Q4_K: {
        const blk_q4_k *b = (const blk_q4_k *)p;
        unpack_q45_k(b->qs, NULL, b->scales, b->d, b->dmin, k);
        return;
    }
    case GGUF_T_Q5_K: {
        const blk_q5_k *b = (const blk_q5_k *)p;
        unpack_q45_k(b->qs, b->qh, b->scales, b->d, b->dmin, k);
        return;
    }
    default: unpack_q6_k((const blk_q6_k *)p, k); return;
    }
}

/* sum over the 16 groups of mn[g] * bsums[g] (0 for the types without minimums). */
NEON_INLINE int32_t k_minsum(const kblock *k, const int16_t bsums[16])
{
    int16x8_t m0 = vld1q_s16(k->mn), m1 = vld1q_s16(k->mn + 8);
    int16x8_t b0 = vld1q_s16(bsums), b1 = vld1q_s16(bsums + 8);
    int32x4_t p = vmull_s16(vget_low_s16(m0), vget_low_s16(b0));
    p = vmlal_high_s16(p, m0, b0);
    p = vmlal_s16(p, vget_low_s16(m1), vget_low_s16(b1));
    p = vmlal_high_s16(p, m1, b1);
    return vaddvq_s32(p);
}

/* The 16-byte signed dot product without the dot product instructions: widening multiplies,
 * then pairwise adds into acc's lanes (products are at most 128 * 127, so 16 bits hold them). */
NEON_INLINE int32x4_t dot16_mull(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}

/* ---- eight rows by n tokens (cpuk_gemm8_fn): the repacking both integer variants share ----
 * A vector's four 32-bit lanes are four rows here: lane r of a vector holds row r's elements
 * 4g..4g+3, so one lane-indexed dot product (sdot's by-element form, each lane's four bytes
 * against one chosen group of four activation bytes) does a group of four elements for four
 * rows, and eight rows are two vectors. The codes are signed (Q4_0's with its 8 taken off, as
 * small_block gives them), like the activations, so the integer sum needs no offset term. The
 * rows' blocks are repacked G8_CHUNK at a time (8 KiB of codes) and shared by every token. */
#define G8_CHUNK 32

/* Four vectors of four words each into t[j] = (r[0][j], r[1][j], r[2][j], r[3][j]). */
NEON_INLINE void transpose4x4_s32(const int32x4_t r[4], int32x4_t t[4])
{
    int32x4_t a0 = vtrn1q_s32(r[0], r[1]), a1 = vtrn2q_s32(r[0], r[1]);
    int32x4_t a2 = vtrn1q_s32(r[2], r[3]), a3 = vtrn2q_s32(r[2], r[3]);
    t[0] = vreinterpretq_s32_s64(vtrn1q_s64(vreinterpretq_s64_s32(a0), vreinterpretq_s64_s32(a2)));
    t[1] = vreinterpretq_s32_s64(vtrn1q_s64(vreinterpretq_s64_s32(a1), vreinterpretq_s64_s32(a3)));
    t[2] = vreinterpretq_s32_s64(vtrn2q_s64(vreinterpretq_s64_s32(a0), vreinterpretq_s64_s32(a2)));
    t[3] = vreinterpretq_s32_s64(vtrn2q_s64(vreinterpretq_s64_s32(a1), vreinterpretq_s64_s32(a3)));
}

/* Blocks [b0, b0 + nb) of 8 rows (row_bytes apart) of a Q4_0 or Q8_0 matrix: block b's codes
 * into W[16b .. 16b + 16), W[16b + 2g + h] holding elements 4g..4g+3 of rows 4h..4h+3 (one row
 * a lane), and its eight scales into D[2b] (rows 0..3) and D[2b + 1] (rows 4..7). */
NEON_INLINE void g8_repack(uint32_t type, const uint8_t *w, size_t row_bytes, int64_t b0, int nb,
                           int8x16_t *W, float32x4_t *D)
{
    const size_t bytes = small_bytes(type);
    for (int b = 0; b < nb; b++) {
        int8x16_t c[8][2];
        float d[8], m;
        for (int i = 0; i < 8; i++)
            small_block(type, w + i * row_bytes + (size_t)(b0 + b) * bytes, c[i], &d[i], &m);
        int8x16_t *Wb = W + 16 * b;
        _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++)
            _Pragma("GCC unroll 2") for (int q = 0; q < 2; q++) {
                int32x4_t r[4], t[4];
                for (int k = 0; k < 4; k++)
                    r[k] = vreinterpretq_s32_s8(c[4 * h + k][q]);
                transpose4x4_s32(r, t);
                for (int j = 0; j < 4; j++)
                    Wb[2 * (4 * q + j) + h] = vreinterpretq_s8_s32(t[j]);
            }
        D[2 * b] = vld1q_f32(d);
        D[2 * b + 1] = vld1q_f32(d + 4);
    }
}

/* The lane-indexed dot product without the dot product instructions: each lane of acc gets
 * the four products of w's lane with x's 32-bit lane l (broadcast); two widening multiplies,
 * a pairwise add in 16 bits (two products are at most 2 * 128 * 127 in magnitude, which fits)
 * and a pairwise accumulate. */
NEON_INLINE int32x4_t dot_lane_mull(int32x4_t acc, int8x16_t w, int8x16_t xl)
{
    int16x8_t p = vpaddq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(xl)), vmull_high_s8(w, xl));
    return vpadalq_s16(acc, p);
}

#define NEON_DOT16(acc, a, b) dot16_mull(acc, a, b)
#define NEON_DOT_LANE(acc, w, x, l)                                                              \
    dot_lane_mull(acc, w, vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x), l)))
#define NEON_FN(name) name##_neon
#include "engine/cpu_kernels_neon.inc"
#undef NEON_DOT16
#undef NEON_DOT_LANE
#undef NEON_FN

/* arm_neon.h declares sdot for armv8.2-a+dotprod, so that is the target (a plain "+dotprod" on
 * the armv8-a base is not a superset of it and GCC refuses to inline the intrinsic); every CPU
 * reporting the dot product instructions implements ARMv8.2. */
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#define NEON_DOT16(acc, a, b) vdotq_s32(acc, a, b)
#define NEON_DOT_LANE(acc, w, x, l) vdotq_laneq_s32(acc, w, x, l)
#define NEON_FN(name) name##_dot
#include "engine/cpu_kernels_neon.inc"
#undef NEON_DOT16
#undef NEON_DOT_LANE
#undef NEON_FN
#pragma GCC pop_options

#define NEON_TABLE(sfx)                                                                          \
    {                                                                                            \
        [GGUF_T_F32] = dot_f32, [GGUF_T_F16] = dot_f16, [GGUF_T_BF16] = dot_bf16,                \
        [GGUF_T_Q4_0] = dot_q4_0_##sfx, [GGUF_T_Q4_1] = dot_q4_1_##sfx,                          \
        [GGUF_T_Q5_0] = dot_q5_0_##sfx, [GGUF_T_Q5_1] = dot_q5_1_##sfx,                          \
        [GGUF_T_Q8_0] = dot_q8_0_##sfx, [GGUF_T_Q2_K] = dot_q2_k_##sfx,                          \
        [GGUF_T_Q3_K] = dot_q3_k_##sfx, [GGUF_T_Q4_K] = dot_q4_k_##sfx,                          \
        [GGUF_T_Q5_K] = dot_q5_k_##sfx, [GGUF_T_Q6_K] = dot_q6_k_##sfx,                          \
    }
#define NEON_TABLE4(sfx)                                                                         \
    {                                                                                            \
        [GGUF_T_Q4_0] = dot4_q4_0_##sfx, [GGUF_T_Q4_1] = dot4_q4_1_##sfx,                        \
        [GGUF_T_Q5_0] = dot4_q5_0_##sfx, [GGUF_T_Q5_1] = dot4_q5_1_##sfx,                        \
        [GGUF_T_Q8_0] = dot4_q8_0_##sfx, [GGUF_T_Q2_K] = dot4_q2_k_##sfx,                        \
        [GGUF_T_Q3_K] = dot4_q3_k_##sfx, [GGUF_T_Q4_K] = dot4_q4_k_##sfx,                        \
        [GGUF_T_Q5_K] = dot4_q5_k_##sfx, [GGUF_T_Q6_K] = dot4_q6_k_##sfx,                        \
    }
const cpuk_dot_fn cpuk_neon_dots[CPUK_MAX_TYPE] = NEON_TABLE(neon);
const cpuk_dot4_fn cpuk_neon_dot4s[CPUK_MAX_TYPE] = NEON_TABLE4(neon);
const cpuk_dot_fn cpuk_neondot_dots[CPUK_MAX_TYPE] = NEON_TABLE(dot);
const cpuk_dot4_fn cpuk_neondot_dot4s[CPUK_MAX_TYPE] = NEON_TABLE4(dot);
const cpuk_gemm8_fn cpuk_neon_gemm8s[CPUK_MAX_TYPE] = {
    [GGUF_T_Q4_0] = gemm8_q4_0_neon, [GGUF_T_Q8_0] = gemm8_q8_0_neon,
};
const cpuk_gemm8_fn cpuk_neondot_gemm8s[CPUK_MAX_TYPE] = {
    [GGUF_T_Q4_0] = gemm8_q4_0_dot, [GGUF_T_Q8_0] = gemm8_q8_0_dot,
};

#else /* not AArch64: no NEON kernels */
const cpuk_dot_fn cpuk_neon_dots[CPUK_MAX_TYPE];
const cpuk_dot4_fn cpuk_neon_dot4s[CPUK_MAX_TYPE];
const cpuk_dot_fn cpuk_neondot_dots[CPUK_MAX_TYPE];
const cpuk_dot4_fn cpuk_neondot_dot4s[CPUK_MAX_TYPE];
const cpuk_gemm8_fn cpuk_neon_gemm8s[CPUK_MAX_TYPE];
const cpuk_gemm8_fn cpuk_neondot_gemm8s[CPUK_MAX_TYPE];
#endif
