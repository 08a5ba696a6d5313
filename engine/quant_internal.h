/* Shared between the quantization files (quant.c: float types, the 32-element block types and
 * the public entry points; quant_k.c: the 256-element "K" super-block types). Not part of the
 * public API.
 *
 * Blocks are described as structs of bytes only, so they have alignment 1 and exactly ggml's
 * sizes: a pointer into a mapped file at any offset may be cast to them. Half-precision fields
 * are two little-endian bytes read with quant_f16().
 */
#ifndef SIZEUP_QUANT_INTERNAL_H
#define SIZEUP_QUANT_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "engine/quant.h"

#define QUANT_QK 32    /* elements per block of the Q4_0 .. Q8_0 family */
#define QUANT_QK_K 256 /* elements per K super-block */

/* ggml's block layouts (ggml-common.h), byte for byte. */
typedef struct blk_q4_0 { uint8_t d[2]; uint8_t qs[16]; } blk_q4_0;
typedef struct blk_q4_1 { uint8_t d[2], m[2]; uint8_t qs[16]; } blk_q4_1;
typedef struct blk_q5_0 { uint8_t d[2]; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_0;
typedef struct blk_q5_1 { uint8_t d[2], m[2]; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_1;
typedef struct blk_q8_0 { uint8_t d[2]; int8_t qs[32]; } blk_q8_0;
_Static_assert(sizeof(blk_q4_0) == 18, "Q4_0 block");
_Static_assert(sizeof(blk_q4_1) == 20, "Q4_1 block");
_Static_assert(sizeof(blk_q5_0) == 22, "Q5_0 block");
_Static_assert(sizeof(blk_q5_1) == 24, "Q5_1 block");
_Static_assert(sizeof(blk_q8_0) == 34, "Q8_0 block");

/* The K super-blocks (256 elements; see quant_k.c for the element order). */
typedef struct blk_q2_k {
    uint8_t scales[16]; /* sub-block j of 16: scale in the low nibble, min in the high */
    uint8_t qs[64];     /* 2-bit quants */
    uint8_t d[2], dmin[2];
} blk_q2_k;
typedef struct blk_q3_k {
    uint8_t hmask[32];  /* bit 4h+s of byte l: the third bit of element 128h + 32s + l */
    uint8_t qs[64];     /* low 2 bits of each quant */
    uint8_t scales[12]; /* sixteen 6-bit scales, offset by 32 (see q3k_scales) */
    uint8_t d[2];
} blk_q3_k;
typedef struct blk_q4_k {
    uint8_t d[2], dmin[2];
    uint8_t scales[12]; /* eight 6-bit scales and eight 6-bit mins (see k4_scale_min) */
    uint8_t qs[128];
} blk_q4_k;
typedef struct blk_q5_k {
    uint8_t d[2], dmin[2];
    uint8_t scales[12];
    uint8_t qh[32];     /* bit 2c (2c+1) of byte l: bit 4 of element 64c + l (64c + 32 + l) */
    uint8_t qs[128];
} blk_q5_k;
typedef struct blk_q6_k {
    uint8_t ql[128];    /* low nibbles */
    uint8_t qh[64];     /* high 2 bits */
    int8_t scales[16];  /* one signed 8-bit scale per 16 elements */
    uint8_t d[2];
} blk_q6_k;
_Static_assert(sizeof(blk_q2_k) == 84, "Q2_K block");
_Static_assert(sizeof(blk_q3_k) == 110, "Q3_K block");
_Static_assert(sizeof(blk_q4_k) == 144, "Q4_K block");
_Static_assert(sizeof(blk_q5_k) == 176, "Q5_K block");
_Static_assert(sizeof(blk_q6_k) == 210, "Q6_K block");

/* Q4_K and Q5_K keep eight 6-bit scales and eight 6-bit mins in 12 bytes. Sub-blocks 0-3 use
 * the low 6 bits of bytes 0-3 (scale) and 4-7 (min). Sub-blocks 4-7 keep their low 4 bits in
 * the two nibbles of bytes 8-11 (scale low, min high) and their top 2 bits in the otherwise
 * spare top bits of bytes 0-3 (scale) and 4-7 (min). */
static inline void k4_scale_min(const uint8_t s[12], int j, int *sc, int *mn)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | (s[j - 4] >> 6) << 4;
        *mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* All eight scales and mins at once, as k4_scale_min gives them, without a branch (the SIMD
 * kernels' form): the 12 bytes as three words, the top bits of the last four moved into place
 * with masks. */
static inline void k4_unpack(const uint8_t s[12], uint8_t sc[8], uint8_t mn[8])
{
    uint32_t u[3], o[4];
    memcpy(u, s, 12);
    o[0] = u[0] & 0x3f3f3f3f;
    o[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    o[2] = u[1] & 0x3f3f3f3f;
    o[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    memcpy(sc, o, 8);
    memcpy(mn, o + 2, 8);
}

/* Q3_K's sixteen 6-bit scales: the low 4 bits of scale i are nibble i / 8 of byte i % 8, the
 * top 2 bits are bits 2(i / 4)..2(i / 4)+1 of byte 8 + i % 4; stored with an offset of 32. */
static inline void q3k_scales(const uint8_t s[12], int out[16])
{
    for (int i = 0; i < 16; i++) {
        int lo = (s[i % 8] >> (4 * (i / 8))) & 0x0f;
        int hi = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        out[i] = (lo | hi << 4) - 32;
    }
}

/* Decode nb consecutive blocks at src into dst (nb * block elements floats). */
typedef void (*quant_dequant_fn)(const void *src, float *dst, int64_t nb);
/* Encode nb blocks' worth of finite floats at src into dst. */
typedef void (*quant_encode_fn)(const float *src, void *dst, int64_t nb);

static inline float quant_f16(const uint8_t h[2])
{
    uint16_t u;
    memcpy(&u, h, 2); /* little-endian host, see quant.h */
    return eng_f16_to_f32(u);
}

static inline void quant_put_f16(uint8_t h[2], float v)
{
    uint16_t u = eng_f32_to_f16(v);
    memcpy(h, &u, 2);
}

/* Round to the nearest integer, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves the
 * integer in the low mantissa bits under the default rounding mode. This is the rounding ggml's
 * reference quantizers use (its nearest_int), and matching it keeps our files byte-identical to
 * llama-quantize's; it also never calls into libm per element. */
static inline int quant_round(float v)
{
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* K super-block decoders and encoders (quant_k.c). */
void quant_dequant_q2_k(const void *src, float *dst, int64_t nb);
void quant_dequant_q3_k(const void *src, float *dst, int64_t nb);
void quant_dequant_q4_k(const void *src, float *dst, int64_t nb);
void quant_dequant_q5_k(const void *src, float *dst, int64_t nb);
void quant_dequant_q6_k(const void *src, float *dst, int64_t nb);
void quant_encode_q4_k(const float *src, void *dst, int64_t nb);
void quant_encode_q5_k(const float *src, void *dst, int64_t nb);
void quant_encode_q6_k(const float *src, void *dst, int64_t nb);

#endif
