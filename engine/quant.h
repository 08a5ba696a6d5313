/* Tensor element types on the CPU.
 *
 * Decodes every block layout the reference engine reads (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
 * Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) to float32 exactly as ggml lays them out, computes the dot
 * product of one stored row with a float32 vector without materialising the row (the inner loop
 * of the CPU matrix-vector product), and encodes float32 into the types `sizeup quantize` writes
 * (F16, BF16, Q8_0, Q5_0, Q4_0, Q4_K, Q5_K, Q6_K) with ggml's reference (no importance matrix) algorithms, so
 * a file we write holds the bytes llama-quantize would have written for the same input.
 *
 * Type ids are gguf_ttype (engine/gguf.h). Counts n are element counts and must be a multiple of
 * the type's block size (1, 32 or 256); a row of a tensor, or a whole contiguous tensor, can be
 * passed as one "row" because every block is coded on its own. Nothing here allocates, prints or
 * keeps state, so every function may be called from several threads at once. Rows are read as
 * little-endian bytes in place, so the host must be little-endian (checked at compile time).
 */
#ifndef SIZEUP_QUANT_H
#define SIZEUP_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "engine/quant reads tensor rows in place and needs a little-endian host"
#endif

/* True when eng_dequantize_row and eng_vec_dot_f32 handle `type`. */
bool eng_type_supported(uint32_t type);
/* True when eng_quantize_row can write `type`. */
bool eng_type_quantizable(uint32_t type);
/* Bytes of n elements of `type`; 0 for an unknown type, n < 0, or n not a multiple of the
 * block size. */
size_t eng_row_bytes(uint32_t type, int64_t n);

/* Decode n elements at src (eng_row_bytes(type, n) bytes, any alignment) into dst[0..n).
 * False, with dst untouched, when the type is not supported or n is not a whole number of
 * blocks. */
bool eng_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* sum over i of row[i] * x[i] for a stored row of n elements, accumulated in float32, one block
 * at a time. NaN when the type is not supported or n is not a whole number of blocks (check
 * eng_type_supported once when a model loads rather than testing every result). */
float eng_vec_dot_f32(uint32_t type, const void *row, const float *x, int64_t n);

/* Encode src[0..n) into dst (eng_row_bytes(type, n) bytes). False, with dst untouched, when the
 * type is not quantizable, n is not a whole number of blocks, or (for the block types) src holds
 * a NaN, an infinity, or a magnitude whose fp16 block scale would overflow (above 8 * 65504 for
 * Q4_0, 127 * 65504 for Q8_0, 32 * 65504 for Q4_K and Q5_K, 2048 * 65504 for Q6_K). F32, F16 and BF16
 * accept any input: values beyond their range become infinities, NaNs stay NaNs. */
bool eng_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* IEEE half precision to float32: exact for every finite input, subnormals included;
 * infinities stay infinities and NaNs come back quiet with their payload (as F16C's vcvtph2ps
 * does). Inline because the F16 dot product and the KV cache call it per element. The finite
 * case moves the exponent-and-mantissa bits into float position, which is the value times
 * 2^-112 (the bias difference 127 - 15), and multiplies that back; f16 subnormals become f32
 * subnormals first, so they need no separate branch. */
static inline float eng_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t em = h & 0x7fffu;
    uint32_t bits = em << 13, mant = (em & 0x3ffu) << 13;
    float f;
    memcpy(&f, &bits, 4);
    f *= 0x1p112f;
    memcpy(&bits, &f, 4);
    /* masks rather than branches, so loops over rows of halves vectorize */
    uint32_t special = 0x7f800000u | mant | (uint32_t)(mant != 0) << 22;
    uint32_t is_special = -(uint32_t)(em >= 0x7c00u);
    bits = (special & is_special) | (bits & ~is_special) | sign;
    memcpy(&f, &bits, 4);
    return f;
}

/* bfloat16 is the top half of a float32. */
static inline float eng_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* float32 to half precision, rounding to nearest with ties to even; values from 65520 up
 * become infinity, NaNs stay (quiet) NaNs with the sign and the top payload bits kept. */
uint16_t eng_f32_to_f16(float f);
/* float32 to bfloat16, rounding to nearest with ties to even; NaNs stay quiet NaNs. */
uint16_t eng_f32_to_bf16(float f);

#endif
