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
void quant_encode_q6_k(const float *src, void *dst, int64_t nb);

#endif
