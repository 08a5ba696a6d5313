/* Tensor element types on the CPU: the float types, the 32-element block types (Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0), one table of what each type can do, and the public entry points.
 *
 * Decoders compute each value with the same float operations, in the same order, as ggml's
 * dequantize_row_*, so our weights equal llama.cpp's bit for bit. Their loops have fixed trip
 * counts and restrict-qualified pointers because those are the loops GCC vectorizes at -O2.
 *
 * The dot product is written once for every type: it decodes up to 256 elements of the row into
 * a buffer on the stack with the type's own decoder (an aligned F32 row is read in place), then
 * accumulates into eight independent partial sums. Sharing the decoder means the dot product
 * cannot disagree with eng_dequantize_row about a layout, and the eight lanes let -O2 keep the
 * sums in vector registers without the reassociation -ffast-math would allow everywhere. The K
 * types live in quant_k.c.
 */
#include "engine/quant.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/quant_internal.h"

#define FP16_MAX 65504.0f

/* ---- half precision ---- */

uint16_t eng_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: keep the top payload bits, force the quiet bit */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* 65520 and up round to infinity (65520 is the tie, 0x3ff is odd) */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {
        /* Below 2^-14 the result is subnormal, in units of 2^-24. Scaling is exact, and adding
         * 2^23 rounds the scaled value to an integer (ties to even) in the float unit; a value
         * that rounds up to 1024 units is the smallest normal, which the same bits spell. */
        float a;
        memcpy(&a, &ax, 4);
        float t = a * 0x1p24f + 0x1p23f;
        uint32_t tb;
        memcpy(&tb, &t, 4);
        return (uint16_t)(sign | (tb & 0x7ffu));
    }
    /* Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to even;
     * a carry out of the mantissa correctly bumps the exponent. */
    uint32_t odd = (ax >> 13) & 1u;
    ax = ax - 0x38000000u + 0x0fffu + odd;
    return (uint16_t)(sign | (ax >> 13));
}

uint16_t eng_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x0040u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* ---- float types (block of one element) ---- */

static void dequant_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

/* The float rows go eight at a time: a loop with a fixed trip count is one -O2 vectorizes. */
static void dequant_f16(const void *restrict src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict p = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            dst[i + k] = quant_f16(p + 2 * (i + k));
    for (; i < n; i++)
        dst[i] = quant_f16(p + 2 * i);
}

static float bf16_at(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return eng_bf16_to_f32(h);
}

static void dequant_bf16(const void *restrict src, float *restrict dst, int64_t n)
{
    const uint8_t *restrict p = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            dst[i + k] = bf16_at(p + 2 * (i + k));
    for (; i < n; i++)
        dst[i] = bf16_at(p + 2 * i);
}

static void encode_f32(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void encode_f16(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++)
        quant_put_f16(p + 2 * i, src[i]);
}

static void encode_bf16(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t u = eng_f32_to_bf16(src[i]);
        memcpy(p + 2 * i, &u, 2);
    }
}

/* ---- 32-element blocks ----
 * Each packs element j (0..15) in the low nibble of qs[j] and element j + 16 in the high nibble;
 * the 5-bit types keep bit 4 of element i in bit i of the little-endian 32-bit qh. */

static void dequant_q4_0(const void *restrict src, float *restrict y, int64_t nb)
{
    const blk_q4_0 *restrict b = src;
    for (int64_t i = 0; i < nb; i++, b++, y += QUANT_QK) {
        float d = quant_f16(b->d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b->qs[j] & 0x0f) - 8) * d;
            y[j + 16] = (float)((b->qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q4_1(const void *restrict src, float *restrict y, int64_t nb)
{
    const blk_q4_1 *restrict b = src;
    for (int64_t i = 0; i < nb; i++, b++, y += QUANT_QK) {
        float d = quant_f16(b->d), m = quant_f16(b->m);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(b->qs[j] & 0x0f) * d + m;
            y[j + 16] = (float)(b->qs[j] >> 4) * d + m;
        }
    }
}

/* Bit 4 of each of the 32 elements (0 or 16) from qh, spelt out first so that the main loop
 * has no per-element shift by a varying amount and vectorizes. Each byte of qh is copied into
 * all eight bytes of a word, byte j keeps only bit j, and adding 0x7f moves any set bit to bit 7
 * without carrying into the next byte. */
static void q5_high_bits(const uint8_t qh[4], uint8_t hb[32])
{
    for (int k = 0; k < 4; k++) {
        uint64_t sel = (uint64_t)qh[k] * 0x0101010101010101ull & 0x8040201008040201ull;
        uint64_t set = ((sel + 0x7f7f7f7f7f7f7f7full) >> 7 & 0x0101010101010101ull) << 4;
        memcpy(hb + 8 * k, &set, 8); /* little-endian: byte j of the word is element 8k + j */
    }
}

static void dequant_q5_0(const void *restrict src, float *restrict y, int64_t nb)
{
    const blk_q5_0 *restrict b = src;
    for (int64_t i = 0; i < nb; i++, b++, y += QUANT_QK) {
        float d = quant_f16(b->d);
        uint8_t hb[32];
        q5_high_bits(b->qh, hb);
        for (int j = 0; j < 16; j++) {
            int lo = (b->qs[j] & 0x0f) | hb[j];
            int hi = (b->qs[j] >> 4) | hb[j + 16];
            y[j] = (float)(lo - 16) * d;
            y[j + 16] = (float)(hi - 16) * d;
        }
    }
}

static void dequant_q5_1(const void *restrict src, float *restrict y, int64_t nb)
{
    const blk_q5_1 *restrict b = src;
    for (int64_t i = 0; i < nb; i++, b++, y += QUANT_QK) {
        float d = quant_f16(b->d), m = quant_f16(b->m);
        uint8_t hb[32];
        q5_high_bits(b->qh, hb);
        for (int j = 0; j < 16; j++) {
            int lo = (b->qs[j] & 0x0f) | hb[j];
            int hi = (b->qs[j] >> 4) | hb[j + 16];
            y[j] = (float)lo * d + m;
            y[j + 16] = (float)hi * d + m;
        }
    }
}

static void dequant_q8_0(const void *restrict src, float *restrict y, int64_t nb)
{
    const blk_q8_0 *restrict b = src;
    for (int64_t i = 0; i < nb; i++, b++, y += QUANT_QK) {
        float d = quant_f16(b->d);
        for (int j = 0; j < QUANT_QK; j++)
            y[j] = (float)b->qs[j] * d;
    }
}

/* ggml's quantize_row_q8_0_ref: scale by the largest magnitude, round half away from zero.
 * The quants use the unrounded 1/d while the block stores d in fp16, so an element may be off
 * by d/2 plus |q| times the fp16 rounding of d. */
static void encode_q8_0(const float *x, void *dst, int64_t nb)
{
    blk_q8_0 *b = dst;
    for (int64_t i = 0; i < nb; i++, b++, x += QUANT_QK) {
        float amax = 0.0f;
        for (int j = 0; j < QUANT_QK; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        quant_put_f16(b->d, d);
        for (int j = 0; j < QUANT_QK; j++)
            b->qs[j] = (int8_t)roundf(x[j] * id);
    }
}

/* The element of largest magnitude in a 32-value block, its sign kept (the first one on ties),
 * which Q4_0 and Q5_0 map to their most negative code. */
static float signed_absmax(const float *x)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QUANT_QK; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

/* ggml's quantize_row_q4_0_ref: the element of largest magnitude, `max` (sign kept), maps to
 * code 0 through d = max / -8, so it is reproduced exactly; the codes run 0..15 = -8..7 times
 * d, and an element near -max, which would need code 16, is clamped to 15 (an error up to |d|
 * instead of |d|/2). */
static void encode_q4_0(const float *x, void *dst, int64_t nb)
{
    blk_q4_0 *b = dst;
    for (int64_t i = 0; i < nb; i++, b++, x += QUANT_QK) {
        float max = signed_absmax(x);
        float d = max / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        quant_put_f16(b->d, d);
        for (int j = 0; j < 16; j++) {
            /* x * id + 8.5 lies in [0.5, 16.5]; truncation is floor there */
            int lo = (int)(x[j] * id + 8.5f), hi = (int)(x[j + 16] * id + 8.5f);
            lo = lo > 15 ? 15 : lo;
            hi = hi > 15 ? 15 : hi;
            b->qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

/* ggml's quantize_row_q5_0_ref: as Q4_0 with a fifth bit, d = max / -16 and codes 0..31 =
 * -16..15 times d; bit 4 of element j goes to bit j of qh (little-endian). Needed by llama.cpp's
 * Q4_K_M recipe for matrices whose rows are not a multiple of 256. */
static void encode_q5_0(const float *x, void *dst, int64_t nb)
{
    blk_q5_0 *b = dst;
    for (int64_t i = 0; i < nb; i++, b++, x += QUANT_QK) {
        float max = signed_absmax(x);
        float d = max / -16.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        quant_put_f16(b->d, d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int lo = (int)(x[j] * id + 16.5f), hi = (int)(x[j + 16] * id + 16.5f);
            lo = lo > 31 ? 31 : lo;
            hi = hi > 31 ? 31 : hi;
            b->qs[j] = (uint8_t)((lo & 0x0f) | (hi & 0x0f) << 4);
            qh |= (uint32_t)(lo >> 4 & 1) << j | (uint32_t)(hi >> 4 & 1) << (j + 16);
        }
        for (int k = 0; k < 4; k++)
            b->qh[k] = (uint8_t)(qh >> (8 * k));
    }
}

/* ---- the table ---- */

typedef struct quant_ops {
    quant_dequant_fn dequant; /* NULL: not supported */
    quant_encode_fn encode;   /* NULL: not quantizable */
    float max_abs;            /* encode refuses inputs beyond this: the block scale must stay
                               * finite in fp16 (the float types have no limit) */
} quant_ops;

static const quant_ops *ops_for(uint32_t type)
{
    static const quant_ops f32 = { dequant_f32, encode_f32, INFINITY };
    static const quant_ops f16 = { dequant_f16, encode_f16, INFINITY };
    static const quant_ops bf16 = { dequant_bf16, encode_bf16, INFINITY };
    static const quant_ops q4_0 = { dequant_q4_0, encode_q4_0, 8.0f * FP16_MAX };
    static const quant_ops q4_1 = { dequant_q4_1, NULL, 0 };
    static const quant_ops q5_0 = { dequant_q5_0, encode_q5_0, 16.0f * FP16_MAX };
    static const quant_ops q5_1 = { dequant_q5_1, NULL, 0 };
    static const quant_ops q8_0 = { dequant_q8_0, encode_q8_0, 127.0f * FP16_MAX };
    static const quant_ops q2_k = { quant_dequant_q2_k, NULL, 0 };
    static const quant_ops q3_k = { quant_dequant_q3_k, NULL, 0 };
    /* Q4_K: the min scale is at most max|x| / 63 in fp16; keep a factor 2 of headroom. */
    static const quant_ops q4_k = { quant_dequant_q4_k, quant_encode_q4_k, 32.0f * FP16_MAX };
    /* Q5_K: as Q4_K, the min scale is at most max|x| / 63 in fp16. */
    static const quant_ops q5_k = { quant_dequant_q5_k, quant_encode_q5_k, 32.0f * FP16_MAX };
    /* Q6_K: d is about max|x| / (32 * 128); keep a factor 2 of headroom. */
    static const quant_ops q6_k = { quant_dequant_q6_k, quant_encode_q6_k, 2048.0f * FP16_MAX };
    switch (type) {
    case GGUF_T_F32: return &f32;
    case GGUF_T_F16: return &f16;
    case GGUF_T_BF16: return &bf16;
    case GGUF_T_Q4_0: return &q4_0;
    case GGUF_T_Q4_1: return &q4_1;
    case GGUF_T_Q5_0: return &q5_0;
    case GGUF_T_Q5_1: return &q5_1;
    case GGUF_T_Q8_0: return &q8_0;
    case GGUF_T_Q2_K: return &q2_k;
    case GGUF_T_Q3_K: return &q3_k;
    case GGUF_T_Q4_K: return &q4_k;
    case GGUF_T_Q5_K: return &q5_k;
    case GGUF_T_Q6_K: return &q6_k;
    default: return NULL;
    }
}

/* ---- public entry points ---- */

bool eng_type_supported(uint32_t type)
{
    return ops_for(type) != NULL;
}

bool eng_type_quantizable(uint32_t type)
{
    const quant_ops *ops = ops_for(type);
    return ops && ops->encode;
}

size_t eng_row_bytes(uint32_t type, int64_t n)
{
    const gguf_type_info *ti = gguf_type_get(type);
    if (!ti || n < 0 || n % ti->block_elems)
        return 0;
    return (size_t)(n / ti->block_elems) * ti->block_bytes;
}

/* The type's operations and block facts when n is a whole number of blocks, else NULL. */
static const quant_ops *checked(uint32_t type, int64_t n, const gguf_type_info **ti)
{
    const quant_ops *ops = ops_for(type);
    *ti = gguf_type_get(type);
    if (!ops || !*ti || n < 0 || n % (*ti)->block_elems)
        return NULL;
    return ops;
}

bool eng_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n)
{
    const gguf_type_info *ti;
    const quant_ops *ops = checked(type, n, &ti);
    if (!ops)
        return false;
    ops->dequant(src, dst, n / ti->block_elems);
    return true;
}

/* acc[k] += w[i + k] * x[i + k] over n elements, n a multiple of 8 (see the file comment). */
static void dot_lanes(float acc[8], const float *w, const float *x, int n)
{
    for (int i = 0; i < n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += w[i + k] * x[i + k];
}

static float lanes_sum(const float acc[8])
{
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

#define DOT_CHUNK 256 /* elements decoded at a time: one K super-block, eight 32-blocks */

float eng_vec_dot_f32(uint32_t type, const void *row, const float *x, int64_t n)
{
    const gguf_type_info *ti;
    const quant_ops *ops = checked(type, n, &ti);
    if (!ops)
        return NAN;
    float acc[8] = { 0 };
    int64_t i = 0, tail = n % 8;
    /* Block sizes are 1, 32 or 256, so every chunk is a whole number of blocks. An aligned
     * F32 row needs no decoding and is read in place. */
    const uint8_t *p = row;
    float buf[DOT_CHUNK];
    bool in_place = type == GGUF_T_F32 && (uintptr_t)row % sizeof(float) == 0;
    for (; i < n - tail; i += DOT_CHUNK) {
        int64_t len = n - tail - i < DOT_CHUNK ? n - tail - i : DOT_CHUNK;
        const float *w = buf;
        if (in_place)
            w = (const float *)row + i;
        else
            ops->dequant(p + (size_t)(i / ti->block_elems) * ti->block_bytes, buf,
                         len / ti->block_elems);
        dot_lanes(acc, w, x + i, (int)len);
    }
    float sum = lanes_sum(acc);
    if (tail) { /* only the float types have rows that are not a multiple of 8 */
        ops->dequant(p + (size_t)(n - tail) * ti->block_bytes, buf, tail);
        for (int64_t k = 0; k < tail; k++)
            sum += buf[k] * x[n - tail + k];
    }
    return sum;
}

bool eng_quantize_row(uint32_t type, const float *src, void *dst, int64_t n)
{
    const gguf_type_info *ti;
    const quant_ops *ops = checked(type, n, &ti);
    if (!ops || !ops->encode)
        return false;
    if (ops->max_abs != INFINITY)
        for (int64_t i = 0; i < n; i++)
            if (!(fabsf(src[i]) <= ops->max_abs)) /* also false for NaN */
                return false;
    ops->encode(src, dst, n / ti->block_elems);
    return true;
}
