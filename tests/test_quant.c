/* Tensor element types (engine/quant) and `sizeup quantize` (app/cmd_quantize.c).
 *
 * Layouts are pinned by blocks built byte by byte here from the ggml-common.h descriptions, with
 * a few positions decoded by hand in the comments; conversions by their IEEE edge cases; the
 * quantizers by error bounds on fresh random data and by reproducing llama-quantize's bytes for
 * BabyLlama; the dot product against dequantize-then-dot; and every fixture model's tensors by
 * their statistics (a wrong layout scrambles them loudly). Random data is fresh each run; the
 * seed is printed, and SIZEUP_TEST_SEED=N repeats a run.
 */
#include "tests/testutil.h"

#include <math.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/quant.h"
#include "engine/quant_mix.h"

/* The command under test; app/app.h declares it once the lead adds it there. */
#include "app/app.h"

/* ---- helpers ---- */

static uint64_t rng_state;

static void rng_seed(void)
{
    rng_state = random_seed("test_quant");
}

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double rng_unif(void) /* [0, 1) */
{
    return (double)(rng_next() >> 11) * 0x1p-53;
}

static float rng_gauss(void)
{
    double u = rng_unif() + 0x1p-60, v = rng_unif();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static void put16(uint8_t *p, uint16_t h)
{
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Decode n elements of a hand-built row, refusing failure. */
static void decode(uint32_t type, const uint8_t *src, float *y, int64_t n)
{
    assert_true(eng_dequantize_row(type, src, y, n));
}

static void expect_at(const float *y, int i, double want)
{
    if (fabs((double)y[i] - want) > 1e-6 * fabs(want) + 1e-9)
        fail_msg("element %d: got %.9g, want %.9g", i, (double)y[i], want);
}

/* ---- the type table ---- */

static const uint32_t supported[] = {
    GGUF_T_F32, GGUF_T_F16, GGUF_T_BF16, GGUF_T_Q4_0, GGUF_T_Q4_1, GGUF_T_Q5_0, GGUF_T_Q5_1,
    GGUF_T_Q8_0, GGUF_T_Q2_K, GGUF_T_Q3_K, GGUF_T_Q4_K, GGUF_T_Q5_K, GGUF_T_Q6_K,
};
#define N_SUPPORTED (sizeof supported / sizeof supported[0])

static void test_type_table(void **state)
{
    for (size_t i = 0; i < N_SUPPORTED; i++) {
        const gguf_type_info *ti = gguf_type_get(supported[i]);
        assert_true(eng_type_supported(supported[i]));
        assert_int_equal(eng_row_bytes(supported[i], 3 * ti->block_elems), 3 * ti->block_bytes);
        if (ti->block_elems > 1) {
            float y[256] = { 0 };
            uint8_t z[512] = { 0 };
            assert_int_equal(eng_row_bytes(supported[i], ti->block_elems + 1), 0);
            assert_false(eng_dequantize_row(supported[i], z, y, ti->block_elems / 2));
            assert_true(isnan(eng_vec_dot_f32(supported[i], z, y, ti->block_elems / 2)));
        }
    }
    static const uint32_t writable[] = { GGUF_T_F32, GGUF_T_F16, GGUF_T_BF16, GGUF_T_Q8_0,
                                         GGUF_T_Q4_0, GGUF_T_Q5_0, GGUF_T_Q4_K, GGUF_T_Q5_K,
                                         GGUF_T_Q6_K };
    for (size_t i = 0; i < sizeof writable / sizeof writable[0]; i++)
        assert_true(eng_type_quantizable(writable[i]));
    assert_false(eng_type_quantizable(GGUF_T_Q3_K));
    assert_false(eng_type_supported(GGUF_T_IQ2_XXS));
    assert_false(eng_type_supported(GGUF_T_Q8_1));
    assert_false(eng_type_supported(4)); /* ids 4 and 5 were retired by ggml */
    assert_false(eng_type_supported(5));
    assert_false(eng_type_supported(1000));
    assert_int_equal(eng_row_bytes(GGUF_T_Q8_0, -32), 0);
    assert_int_equal(eng_row_bytes(1000, 32), 0);
    float x[32] = { 0 };
    uint8_t out[64];
    assert_false(eng_quantize_row(GGUF_T_Q3_K, x, out, 256));
    assert_true(isnan(eng_vec_dot_f32(GGUF_T_IQ2_XXS, out, x, 256)));
    assert_true(eng_vec_dot_f32(GGUF_T_Q8_0, out, x, 0) == 0.0f);
}

/* ---- half precision and bfloat16 ---- */

static void test_f16_to_f32_edges(void **state)
{
    assert_true(eng_f16_to_f32(0x0000) == 0.0f && !signbit(eng_f16_to_f32(0x0000)));
    assert_true(eng_f16_to_f32(0x8000) == 0.0f && signbit(eng_f16_to_f32(0x8000)));
    assert_true(eng_f16_to_f32(0x0001) == 0x1p-24f);         /* smallest subnormal */
    assert_true(eng_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);  /* largest subnormal */
    assert_true(eng_f16_to_f32(0x8200) == -0x1p-15f);
    assert_true(eng_f16_to_f32(0x0400) == 0x1p-14f);         /* smallest normal */
    assert_true(eng_f16_to_f32(0x3c00) == 1.0f);
    assert_true(eng_f16_to_f32(0x3555) == 0.333251953125f);
    assert_true(eng_f16_to_f32(0xc000) == -2.0f);
    assert_true(eng_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(isinf(eng_f16_to_f32(0x7c00)) && eng_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(eng_f16_to_f32(0xfc00)) && eng_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(eng_f16_to_f32(0x7e00)));
    /* a signalling NaN comes back quiet with its payload, as the F16C instruction does */
    assert_int_equal(f32_bits(eng_f16_to_f32(0x7c01)), 0x7fc02000u);
    assert_int_equal(f32_bits(eng_f16_to_f32(0xfe01)), 0xffc02000u);
}

static void test_f32_to_f16_edges(void **state)
{
    assert_int_equal(eng_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(eng_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(eng_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(eng_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(eng_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(eng_f32_to_f16(65519.996f), 0x7bff);   /* just below the tie */
    assert_int_equal(eng_f32_to_f16(65520.0f), 0x7c00);     /* tie; 0x7bff is odd: to inf */
    assert_int_equal(eng_f32_to_f16(1e9f), 0x7c00);
    assert_int_equal(eng_f32_to_f16(-INFINITY), 0xfc00);
    uint16_t n = eng_f32_to_f16(NAN);
    assert_true((n & 0x7c00) == 0x7c00 && (n & 0x03ff) != 0);
    assert_int_equal(eng_f32_to_f16(bits_f32(0x7f800001u)) & 0x7e00, 0x7e00); /* sNaN quiets */
    /* ties to even in the normal range: 1 + 2^-11 sits between 0x3c00 and 0x3c01 */
    assert_int_equal(eng_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);
    assert_int_equal(eng_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);
    assert_int_equal(eng_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    /* mantissa carry into the exponent: 2 - 2^-12 rounds up to 2 */
    assert_int_equal(eng_f32_to_f16(2.0f - 0x1p-12f), 0x4000);
    /* subnormal results, in units of 2^-24 */
    assert_int_equal(eng_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(eng_f32_to_f16(0x1p-25f), 0x0000);            /* tie to even 0 */
    assert_int_equal(eng_f32_to_f16(0x1p-25f * 1.0001f), 0x0001);
    assert_int_equal(eng_f32_to_f16(3 * 0x1p-25f), 0x0002);        /* 1.5 units: tie to 2 */
    assert_int_equal(eng_f32_to_f16(-5 * 0x1p-25f), 0x8002);       /* 2.5 units: tie to 2 */
    assert_int_equal(eng_f32_to_f16(0x1p-14f - 0x1p-25f), 0x0400); /* rounds up to normal */
    assert_int_equal(eng_f32_to_f16(1e-10f), 0x0000);
    assert_int_equal(eng_f32_to_f16(bits_f32(1)), 0x0000);           /* f32 subnormal */
    /* every finite half survives the round trip */
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = eng_f16_to_f32((uint16_t)h);
        if (!isnan(f) && eng_f32_to_f16(f) != h)
            fail_msg("half 0x%04x -> %g -> 0x%04x", h, (double)f, eng_f32_to_f16(f));
    }
}

static void test_bf16_edges(void **state)
{
    assert_true(eng_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(eng_bf16_to_f32(0xc040) == -3.0f);
    assert_true(eng_bf16_to_f32(0x0001) == bits_f32(0x00010000u)); /* subnormal */
    assert_int_equal(eng_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(eng_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);     /* tie to even */
    assert_int_equal(eng_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82); /* tie to even (up) */
    assert_int_equal(eng_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    assert_int_equal(eng_f32_to_bf16(bits_f32(0x7f7fffffu)), 0x7f80); /* FLT_MAX: to inf */
    assert_int_equal(eng_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(eng_f32_to_bf16(-0.0f), 0x8000);
    assert_int_equal(eng_f32_to_bf16(bits_f32(0x00080000u)), 0x0008);
    uint16_t n = eng_f32_to_bf16(bits_f32(0x7f800001u)); /* payload only in the low bits */
    assert_true((n & 0x7f80) == 0x7f80 && (n & 0x7f) != 0);
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = eng_bf16_to_f32((uint16_t)h);
        if (!isnan(f))
            assert_int_equal(eng_f32_to_bf16(f), h);
    }
}

/* ---- hand-built blocks, one per type; each starts at an odd address ---- */

static void test_block_float_types(void **state)
{
    uint8_t raw[1 + 4 * 4];
    uint8_t *p = raw + 1;
    float y[4], in[4] = { 1.5f, -0.0f, 65504.0f, 3e-8f };
    memcpy(p, in, sizeof in);
    decode(GGUF_T_F32, p, y, 4);
    assert_memory_equal(y, in, sizeof in);
    put16(p, 0x3c00), put16(p + 2, 0xc200), put16(p + 4, 0x0001), put16(p + 6, 0x7bff);
    decode(GGUF_T_F16, p, y, 4);
    expect_at(y, 0, 1.0), expect_at(y, 1, -3.0), expect_at(y, 2, 0x1p-24), expect_at(y, 3, 65504);
    put16(p, 0x3f80), put16(p + 2, 0xc040), put16(p + 4, 0x4049), put16(p + 6, 0x0000);
    decode(GGUF_T_BF16, p, y, 4);
    expect_at(y, 0, 1.0), expect_at(y, 1, -3.0), expect_at(y, 2, 3.140625), expect_at(y, 3, 0);
}

/* Q4_0: fp16 d, then 16 bytes; element j < 16 is the low nibble of byte j, element j + 16 the
 * high nibble; value (q - 8) * d. */
static void test_block_q4_0(void **state)
{
    uint8_t raw[1 + 18];
    uint8_t *b = raw + 1;
    put16(b, 0x3800); /* d = 0.5 */
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    decode(GGUF_T_Q4_0, b, y, 32);
    for (int j = 0; j < 16; j++) {
        expect_at(y, j, (j - 8) * 0.5);
        expect_at(y, j + 16, (7 - j) * 0.5);
    }
    expect_at(y, 0, -4.0);  /* byte 0 = 0xf0: low nibble 0 -> (0 - 8) * 0.5 */
    expect_at(y, 16, 3.5);  /* its high nibble 15 -> (15 - 8) * 0.5 */
    expect_at(y, 31, -4.0); /* byte 15 = 0x0f: high nibble 0 */
}

/* Q4_1: fp16 d, fp16 m, 16 nibble bytes as Q4_0; value q * d + m. */
static void test_block_q4_1(void **state)
{
    uint8_t raw[1 + 20];
    uint8_t *b = raw + 1;
    put16(b, 0x3400);     /* d = 0.25 */
    put16(b + 2, 0xbc00); /* m = -1 */
    for (int j = 0; j < 16; j++)
        b[4 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    decode(GGUF_T_Q4_1, b, y, 32);
    for (int j = 0; j < 16; j++) {
        expect_at(y, j, j * 0.25 - 1);
        expect_at(y, j + 16, (15 - j) * 0.25 - 1);
    }
    expect_at(y, 5, 0.25);  /* 5 * 0.25 - 1 */
    expect_at(y, 16, 2.75); /* 15 * 0.25 - 1 */
}

/* Q5_0 / Q5_1: fp16 d (and m), a little-endian 32-bit qh whose bit i is bit 4 of element i,
 * then the nibbles as Q4_0. Q5_0: (q - 16) * d; Q5_1: q * d + m. qh = 0xff008001 sets bit 4
 * for elements 0, 15 and 24..31. */
static const uint8_t q5_qh[4] = { 0x01, 0x80, 0x00, 0xff };

static int q5_code(int i)
{
    uint32_t qh = 0xff008001u;
    int nib = i < 16 ? (i | (15 - i) << 4) & 15 : ((i - 16) | (15 - (i - 16)) << 4) >> 4;
    return nib | (int)((qh >> i) & 1) << 4;
}

static void test_block_q5_0(void **state)
{
    uint8_t raw[1 + 22];
    uint8_t *b = raw + 1;
    put16(b, 0x3800); /* d = 0.5 */
    memcpy(b + 2, q5_qh, 4);
    for (int j = 0; j < 16; j++)
        b[6 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    decode(GGUF_T_Q5_0, b, y, 32);
    for (int i = 0; i < 32; i++)
        expect_at(y, i, (q5_code(i) - 16) * 0.5);
    expect_at(y, 0, 0.0);   /* nibble 0 | 16 = 16 -> 0 */
    expect_at(y, 1, -7.5);  /* nibble 1, no high bit: 1 - 16 = -15 */
    expect_at(y, 15, 7.5);  /* nibble 15 | 16 = 31 -> 15 */
    expect_at(y, 16, -0.5); /* high nibble of byte 0 is 15, bit 16 clear: 15 - 16 */
    expect_at(y, 24, 3.5);  /* high nibble of byte 8 is 7, bit 24 set: 23 - 16 */
    expect_at(y, 31, 0.0);  /* high nibble of byte 15 is 0, bit 31 set: 16 - 16 */
}

static void test_block_q5_1(void **state)
{
    uint8_t raw[1 + 24];
    uint8_t *b = raw + 1;
    put16(b, 0x3400);     /* d = 0.25 */
    put16(b + 2, 0x3c00); /* m = 1 */
    memcpy(b + 4, q5_qh, 4);
    for (int j = 0; j < 16; j++)
        b[8 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    decode(GGUF_T_Q5_1, b, y, 32);
    for (int i = 0; i < 32; i++)
        expect_at(y, i, q5_code(i) * 0.25 + 1);
    expect_at(y, 1, 1.25);  /* 1 * 0.25 + 1 */
    expect_at(y, 15, 8.75); /* 31 * 0.25 + 1 */
    expect_at(y, 24, 6.75); /* 23 * 0.25 + 1 */
}

/* Q8_0: fp16 d then 32 signed bytes; value q * d. */
static void test_block_q8_0(void **state)
{
    uint8_t raw[1 + 34];
    uint8_t *b = raw + 1;
    put16(b, 0x3000); /* d = 0.125 */
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)(4 * j - 64);
    b[2] = 0x80;  /* -128 */
    b[33] = 0x7f; /* 127 */
    float y[32];
    decode(GGUF_T_Q8_0, b, y, 32);
    for (int j = 1; j < 31; j++)
        expect_at(y, j, (4 * j - 64) * 0.125);
    expect_at(y, 0, -16.0);
    expect_at(y, 31, 15.875);
}

/* Q2_K (84 bytes): scales[16] (sub-block of 16: scale low nibble, min high nibble), qs[64],
 * fp16 d, fp16 dmin. Element 128h + 32s + l takes bits 2s..2s+1 of qs[32h + l] and sub-block
 * 8h + 2s + l/16; value d * scale * q - dmin * min. Here scale k = k % 15 + 1, min k = k,
 * qs[i] = i, d = 1, dmin = 0.5. */
static void test_block_q2_k(void **state)
{
    uint8_t raw[1 + 84];
    uint8_t *b = raw + 1;
    for (int k = 0; k < 16; k++)
        b[k] = (uint8_t)((k % 15 + 1) | k << 4);
    for (int i = 0; i < 64; i++)
        b[16 + i] = (uint8_t)i;
    put16(b + 80, 0x3c00);
    put16(b + 82, 0x3800);
    float y[256];
    decode(GGUF_T_Q2_K, b, y, 256);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, s = (e % 128) / 32, l = e % 32, sb = 8 * h + 2 * s + l / 16;
        int q = (b[16 + 32 * h + l] >> (2 * s)) & 3;
        expect_at(y, e, (sb % 15 + 1) * q - 0.5 * sb);
    }
    expect_at(y, 1, 1.0);    /* qs[1] = 1: q 1, sub-block 0 (scale 1, min 0) */
    expect_at(y, 17, 1.5);   /* qs[17] = 0b010001: q 1, sub-block 1: 2 * 1 - 0.5 * 1 */
    expect_at(y, 35, -1.0);  /* s 1: qs[3] >> 2 = 0, sub-block 2: 0 - 0.5 * 2 */
    expect_at(y, 174, 28.0); /* h 1, s 1, l 14: qs[46] = 0b101110 >> 2 & 3 = 3; sub 10:
                              * 11 * 3 - 0.5 * 10 */
    expect_at(y, 255, -7.5); /* qs[63] >> 6 = 0; sub 15 (scale 1, min 15): -7.5 */
}

/* Q3_K (110 bytes): hmask[32], qs[64], scales[12], fp16 d. Element 128h + 32s + l: low 2 bits
 * from bits 2s of qs[32h + l], third bit from bit 4h + s of hmask[l] (clear means subtract 4),
 * scale 8h + 2s + l/16. The sixteen 6-bit scales (stored + 32) are v_i = 32 + 3(i - 8), i.e.
 * -24, -21, .., 21: low nibbles in bytes 0-7 (scale i in nibble i/8 of byte i%8), top 2 bits in
 * bytes 8-11 (bits 2(i/4) of byte 8 + i%4). Scale 9: v = 35 = 0b100011, so nibble 3 is the high
 * nibble of byte 1 (0x3b) and 0b10 sits in bits 4-5 of byte 9 (0xa4). */
static const uint8_t q3k_scale_bytes[12] = { 0x08, 0x3b, 0x6e, 0x91, 0xc4, 0xf7,
                                             0x2a, 0x5d, 0xa4, 0xa4, 0xe4, 0xe5 };

static void test_block_q3_k(void **state)
{
    uint8_t raw[1 + 110];
    uint8_t *b = raw + 1;
    for (int l = 0; l < 32; l++)
        b[l] = (uint8_t)(l * 37);
    for (int i = 0; i < 64; i++)
        b[32 + i] = (uint8_t)(i * 29 + 7);
    memcpy(b + 96, q3k_scale_bytes, 12);
    put16(b + 108, 0x3800); /* d = 0.5 */
    float y[256];
    decode(GGUF_T_Q3_K, b, y, 256);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, s = (e % 128) / 32, l = e % 32;
        int q = ((b[32 + 32 * h + l] >> (2 * s)) & 3) - ((b[l] >> (4 * h + s)) & 1 ? 0 : 4);
        expect_at(y, e, 0.5 * (3 * (8 * h + 2 * s + l / 16 - 8)) * q);
    }
    expect_at(y, 0, 12.0);    /* qs[0] = 7: low bits 3; hmask[0] = 0: 3 - 4 = -1; scale -24 */
    expect_at(y, 40, 9.0);    /* s 1, l 8: qs[8] = 0xef >> 2 & 3 = 3; hmask[8] = 0x28 bit 1
                               * clear: -1; scale 2 = -18: 0.5 * -18 * -1 */
    expect_at(y, 200, -24.0); /* h 1, s 2, l 8: qs[40] = 0x8f >> 4 & 3 = 0; bit 6 of 0x28
                               * clear: -4; scale 12 = +12: 0.5 * 12 * -4 */
    expect_at(y, 255, -42.0); /* h 1, s 3, l 31: qs[63] = 0x2a >> 6 = 0; bit 7 of hmask[31]
                               * = 0x7b clear: -4; scale 15 = +21 */
}

/* Q4_K (144 bytes): fp16 d, fp16 dmin, scales[12], qs[128]. Chunk c of 64: element 64c + l
 * is the low nibble of qs[32c + l] (sub-block 2c), element 64c + 32 + l its high nibble
 * (sub-block 2c + 1); value d * scale * q - dmin * min. Scales 10 + 7j, mins 60 - 5j, packed:
 * bytes 0-3 scale j (j < 4) | top bits of scale j + 4 in bits 6-7; bytes 4-7 the same for the
 * mins; bytes 8-11 low nibbles of scale j + 4 | min j + 4 << 4. Sub-block 4: scale 38 =
 * 0b100110, min 40 = 0b101000: byte 8 = 0x86, byte 0 = 10 | 0b10 << 6 = 0x8a, byte 4 = 60 |
 * 0b10 << 6 = 0xbc. Q5_K adds qh[32]: bit k of qh[l] is bit 4 of element 32k + l. */
static const uint8_t q4k_scale_bytes[12] = { 0x8a, 0x91, 0xd8, 0xdf, 0xbc, 0xb7,
                                             0x72, 0x6d, 0x86, 0x3d, 0xe4, 0x9b };

static double k4_expect(const uint8_t *qs, const uint8_t *qh, int e)
{
    int c = e / 64, r = e % 64, sub = 2 * c + r / 32, l = r % 32;
    int q = r < 32 ? qs[32 * c + l] & 15 : qs[32 * c + l] >> 4;
    if (qh)
        q |= ((qh[l] >> sub) & 1) << 4;
    return 0.5 * (10 + 7 * sub) * q - 0.25 * (60 - 5 * sub);
}

static void test_block_q4_k(void **state)
{
    uint8_t raw[1 + 144];
    uint8_t *b = raw + 1;
    put16(b, 0x3800);     /* d = 0.5 */
    put16(b + 2, 0x3400); /* dmin = 0.25 */
    memcpy(b + 4, q4k_scale_bytes, 12);
    for (int i = 0; i < 128; i++)
        b[16 + i] = (uint8_t)(i * 13 + 5);
    float y[256];
    decode(GGUF_T_Q4_K, b, y, 256);
    for (int e = 0; e < 256; e++)
        expect_at(y, e, k4_expect(b + 16, NULL, e));
    expect_at(y, 0, 10.0);    /* qs[0] = 0x05: 0.5 * 10 * 5 - 0.25 * 60 */
    expect_at(y, 33, -5.25);  /* high nibble of qs[1] = 0x12 is 1; sub 1: 8.5 - 13.75 */
    expect_at(y, 150, 47.0);  /* c 2, l 22: qs[86] = 0x63 low 3; sub 4: 0.5*38*3 - 0.25*40 */
    expect_at(y, 255, 200.25);/* qs[127] = 0x78 high 7; sub 7 (59, 25): 206.5 - 6.25 */
}

static void test_block_q5_k(void **state)
{
    uint8_t raw[1 + 176];
    uint8_t *b = raw + 1;
    put16(b, 0x3800);
    put16(b + 2, 0x3400);
    memcpy(b + 4, q4k_scale_bytes, 12);
    for (int l = 0; l < 32; l++)
        b[16 + l] = (uint8_t)(l * 53 + 11);
    for (int i = 0; i < 128; i++)
        b[48 + i] = (uint8_t)(i * 13 + 5);
    float y[256];
    decode(GGUF_T_Q5_K, b, y, 256);
    for (int e = 0; e < 256; e++)
        expect_at(y, e, k4_expect(b + 48, b + 16, e));
    expect_at(y, 0, 90.0);   /* qh[0] = 0x0b bit 0 set: q 5 + 16: 0.5 * 10 * 21 - 15 */
    expect_at(y, 150, 351.0);/* qh[22] = 0x99 bit 4 set: q 19: 0.5 * 38 * 19 - 10 */
    expect_at(y, 255, 200.25);/* qh[31] = 0x76 bit 7 clear: as Q4_K */
}

/* Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], fp16 d. Half h, quarter k, l < 32:
 * element 128h + 32k + l has low nibble from ql[64h + l + 32(k & 1)] (low nibble for k < 2,
 * high for k >= 2), high 2 bits from bits 2k of qh[32h + l], scale 8h + l/16 + 2k; value
 * d * scale * (q - 32). */
static void test_block_q6_k(void **state)
{
    uint8_t raw[1 + 210];
    uint8_t *b = raw + 1;
    for (int i = 0; i < 128; i++)
        b[i] = (uint8_t)(i * 7 + 3);
    for (int i = 0; i < 64; i++)
        b[128 + i] = (uint8_t)(i * 11 + 1);
    for (int i = 0; i < 16; i++)
        b[192 + i] = (uint8_t)(int8_t)(i * 9 - 70);
    put16(b + 208, 0x3400); /* d = 0.25 */
    float y[256];
    decode(GGUF_T_Q6_K, b, y, 256);
    for (int e = 0; e < 256; e++) {
        int h = e / 128, k = (e % 128) / 32, l = e % 32;
        int byte = b[64 * h + l + ((k & 1) ? 32 : 0)];
        int q = ((k >= 2 ? byte >> 4 : byte & 15) | ((b[128 + 32 * h + l] >> (2 * k)) & 3) << 4);
        expect_at(y, e, 0.25 * ((8 * h + l / 16 + 2 * k) * 9 - 70) * (q - 32));
    }
    expect_at(y, 0, 227.5);  /* ql[0] = 0x03, qh[0] = 0x01: q 3 | 1 << 4 = 19 - 32 = -13;
                              * scale 0 = -70: 0.25 * -70 * -13 */
    expect_at(y, 70, 255.0); /* k 2, l 6: ql[6] = 0x2d high 2, qh[6] = 0x43 bits 4-5 = 0:
                              * 2 - 32 = -30; scale 4 = -34 */
    expect_at(y, 255, 113.75); /* h 1, k 3, l 31: ql[127] = 0x7c high 7, qh[63] = 0xb6 >> 6 =
                                * 2: 39 - 32 = 7; scale 15 = 65 */
}

/* ---- quantize -> dequantize round trips ---- */

static void fill_random(float *x, int64_t n, int kind)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = kind == 0 ? rng_gauss() : kind == 1 ? (float)(2 * rng_unif() - 1)
                                       : 0.02f * rng_gauss() + (rng_next() % 64 ? 0 : 0.3f);
}

/* Q8_0: per block of 32, |x - y| <= amax / 254 (rounding to d = amax / 127) + amax / 2048 (d is
 * stored as fp16, relative error 2^-11, times |q| <= 127). */
static double q8_0_bound(const float *x)
{
    float amax = 0;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    return amax * (1.0 / 254 + 1.0 / 2048) * (1 + 1e-6) + 1e-30;
}

/* Q4_0 for element j of a block: d = max / -8 (max the element of largest magnitude); codes are
 * clamped to 0..15, so an element with x/d + 8.5 >= 16 (near -max) may be off by |d|, others by
 * |d|/2; plus 8 |d| 2^-11 for the fp16 rounding of d. */
static double q4_0_bound(const float *x, int j)
{
    float amax = 0, max = 0;
    for (int k = 0; k < 32; k++)
        if (fabsf(x[k]) > amax) {
            amax = fabsf(x[k]);
            max = x[k];
        }
    double d = max / -8.0;
    if (d == 0)
        return 1e-30;
    bool clamped = x[j] / d + 8.5 >= 16;
    return fabs(d) * ((clamped ? 1.0 : 0.5) + 8 * 0x1p-11) * (1 + 1e-6);
}

static void test_roundtrip_q8_0_q4_0(void **state)
{
    enum { N = 32 * 2048 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(eng_row_bytes(GGUF_T_Q8_0, N));
    for (int kind = 0; kind < 3; kind++) {
        fill_random(x, N, kind);
        memset(x, 0, 32 * sizeof *x); /* an all-zero block must decode to zeros */
        double worst8 = 0, worst4 = 0;
        assert_true(eng_quantize_row(GGUF_T_Q8_0, x, q, N));
        decode(GGUF_T_Q8_0, q, y, N);
        for (int i = 0; i < N; i++) {
            double bound = q8_0_bound(x + i / 32 * 32), err = fabs((double)y[i] - x[i]);
            if (err > bound)
                fail_msg("Q8_0 element %d: %g vs %g, error %g > bound %g", i, (double)y[i],
                         (double)x[i], err, bound);
            worst8 = fmax(worst8, err / bound);
        }
        assert_true(eng_quantize_row(GGUF_T_Q4_0, x, q, N));
        decode(GGUF_T_Q4_0, q, y, N);
        for (int i = 0; i < N; i++) {
            double bound = q4_0_bound(x + i / 32 * 32, i % 32), err = fabs((double)y[i] - x[i]);
            if (err > bound)
                fail_msg("Q4_0 element %d: %g vs %g, error %g > bound %g", i, (double)y[i],
                         (double)x[i], err, bound);
            worst4 = fmax(worst4, err / bound);
        }
        print_message("data kind %d: worst error / bound: Q8_0 %.3f, Q4_0 %.3f\n", kind, worst8,
                      worst4);
    }
    free(x), free(y), free(q);
}

/* Q4_K and Q6_K: relative RMSE (sqrt(sum (y - x)^2 / sum x^2)) on N(0,1) and U(-1,1) data.
 * ggml's reference quantizers give 0.0713 and 0.0177 on N(0,1), 0.0546 and 0.0133 on U(-1,1)
 * (measured with ggml-quants.c, whose bytes these quantizers reproduce); the bounds leave ~10%.
 * Q5_K's bounds are ours (0.0361 and 0.0276 measured here, not against ggml), ~10% above.
 * Q6_K is also bounded per sub-block of 16: |x - y| <= amax / 31 (the codes are -32..31 with
 * the largest magnitude at -32, the stored 8-bit sub-block scale may be off by half a step). */
static void test_roundtrip_k(void **state)
{
    enum { N = 256 * 512 };
    static const uint32_t types[3] = { GGUF_T_Q4_K, GGUF_T_Q6_K, GGUF_T_Q5_K };
    static const double bound[3][2] = { { 0.078, 0.060 }, { 0.0195, 0.0146 }, { 0.040, 0.031 } };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint8_t *q = malloc(eng_row_bytes(GGUF_T_Q6_K, N));
    for (int kind = 0; kind < 2; kind++) {
        fill_random(x, N, kind);
        memset(x + 256, 0, 256 * sizeof *x); /* one all-zero super-block */
        for (int t = 0; t < 3; t++) {
            assert_true(eng_quantize_row(types[t], x, q, N));
            decode(types[t], q, y, N);
            double se = 0, sx = 0;
            for (int i = 0; i < N; i++) {
                se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
                sx += (double)x[i] * x[i];
            }
            for (int i = 256; i < 512; i++)
                assert_true(y[i] == 0.0f);
            double rel = sqrt(se / sx);
            print_message("%s relative RMSE on %s data: %.5f (bound %.4f)\n",
                          gguf_type_get(types[t])->name, kind ? "U(-1,1)" : "N(0,1)", rel,
                          bound[t][kind]);
            assert_true(rel <= bound[t][kind]);
            for (int s = 0; types[t] == GGUF_T_Q6_K && s < N; s += 16) {
                float amax = 0;
                for (int j = 0; j < 16; j++)
                    amax = fmaxf(amax, fabsf(x[s + j]));
                for (int j = 0; j < 16; j++)
                    if (fabsf(y[s + j] - x[s + j]) > amax / 31 + 1e-30)
                        fail_msg("Q6_K element %d: error %g > %g", s + j,
                                 (double)fabsf(y[s + j] - x[s + j]), (double)amax / 31);
            }
        }
    }
    free(x), free(y), free(q);
}

/* A test signal that is the same on every IEEE platform (integer arithmetic, then one float
 * rounding per value): super-blocks cycling through small Gaussian-like weights, unit
 * scale, all-positive values, and a block with a zero sub-block and a few large outliers. */
static void golden_input(float *x, int n)
{
    uint32_t s = 20240601u;
    for (int i = 0; i < n; i++) {
        int32_t sum = 0;
        for (int k = 0; k < 3; k++) {
            s = s * 1664525u + 1013904223u;
            sum += (int32_t)(s >> 16);
        }
        float v = (float)(sum - 3 * 32768) * 0x1p-15f;
        switch (i / 256 % 4) {
        case 0: x[i] = v * 0.02f; break;
        case 1: x[i] = v; break;
        case 2: x[i] = v * 0.01f + 0.05f; break;
        default: x[i] = i % 256 < 32 ? 0.0f : i % 97 == 0 ? v * 8.0f : v * 0.1f; break;
        }
    }
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Our quantizers write the bytes ggml's reference quantizers write. The hashes come from
 * ggml-org/ggml d99724f2's quantize_row_{q8_0,q4_0,q4_K,q6_K}_ref on golden_input, compiled
 * with -O2 and no floating-point contraction (a build that fuses multiply-adds into FMAs, as
 * -march=native with GNU C does, changes a few percent of ggml's own Q4_K/Q6_K blocks; Q8_0
 * and Q4_0 do not depend on it). */
static void test_quantize_matches_ggml(void **state)
{
    enum { N = 256 * 1024 }; /* enough blocks that every search step of the fits matters */
    static const struct { uint32_t type; uint64_t hash; } want[] = {
        { GGUF_T_Q8_0, 0x63b7be18ced1786cull },
        { GGUF_T_Q4_0, 0x484a414a845bad40ull },
        { GGUF_T_Q4_K, 0xc68228b38d2f773bull },
        { GGUF_T_Q6_K, 0xbf2f3b86d2022b7cull },
    };
    float *x = malloc(N * sizeof *x);
    uint8_t *q = malloc(eng_row_bytes(GGUF_T_Q8_0, N));
    golden_input(x, N);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t bytes = eng_row_bytes(want[i].type, N);
        assert_true(eng_quantize_row(want[i].type, x, q, N));
        uint64_t h = fnv1a(q, bytes);
        if (h != want[i].hash)
            fail_msg("%s bytes hash to 0x%016llx, ggml's to 0x%016llx",
                     gguf_type_get(want[i].type)->name, (unsigned long long)h,
                     (unsigned long long)want[i].hash);
    }
    free(x), free(q);
}

static void test_roundtrip_f16_bf16(void **state)
{
    enum { N = 4096 };
    float x[N], y[N];
    uint8_t q[2 * N];
    for (int i = 0; i < N; i++)
        x[i] = rng_gauss() * (float)pow(2.0, (double)(rng_next() % 36) - 24); /* < 65504 */
    assert_true(eng_quantize_row(GGUF_T_F16, x, q, N));
    decode(GGUF_T_F16, q, y, N);
    for (int i = 0; i < N; i++) /* half an ulp: relative 2^-11, absolute 2^-25 below 2^-14 */
        assert_true(fabsf(y[i] - x[i]) <= fmaxf(fabsf(x[i]) * 0x1p-11f, 0x1p-25f));
    assert_true(eng_quantize_row(GGUF_T_BF16, x, q, N));
    decode(GGUF_T_BF16, q, y, N);
    for (int i = 0; i < N; i++)
        assert_true(fabsf(y[i] - x[i]) <= fabsf(x[i]) * 0x1p-8f);
    float big[2] = { 1e6f, NAN };
    assert_true(eng_quantize_row(GGUF_T_F16, big, q, 2)); /* becomes inf / NaN, as documented */
    decode(GGUF_T_F16, q, y, 2);
    assert_true(isinf(y[0]) && isnan(y[1]));
}

static void test_quantize_refuses(void **state)
{
    static const uint32_t types[] = { GGUF_T_Q8_0, GGUF_T_Q4_0, GGUF_T_Q4_K, GGUF_T_Q5_K,
                                      GGUF_T_Q6_K };
    float x[512];
    uint8_t q[1024];
    for (size_t t = 0; t < 5; t++) {
        uint32_t n = gguf_type_get(types[t])->block_elems;
        for (int bad = 0; bad < 3; bad++) {
            for (uint32_t i = 0; i < n; i++)
                x[i] = 0.1f * (float)i;
            x[n / 2] = bad == 0 ? NAN : bad == 1 ? -INFINITY : 1e12f;
            memset(q, 0xa5, sizeof q);
            assert_false(eng_quantize_row(types[t], x, q, n));
            for (size_t i = 0; i < sizeof q; i++)
                assert_int_equal(q[i], 0xa5); /* dst untouched */
        }
        assert_false(eng_quantize_row(types[t], x, q, n + 16));
    }
}

/* ---- the dot product ---- */

/* Offsets of the fp16 scale fields inside a block, so random blocks get sane scales (random
 * bytes there would be infinities and NaNs half the time). */
static void sane_scales(uint32_t type, uint8_t *b, size_t nblocks, size_t bbytes)
{
    static const struct { uint32_t type; int off[2]; } f[] = {
        { GGUF_T_Q4_0, { 0, -1 } }, { GGUF_T_Q4_1, { 0, 2 } },  { GGUF_T_Q5_0, { 0, -1 } },
        { GGUF_T_Q5_1, { 0, 2 } },  { GGUF_T_Q8_0, { 0, -1 } }, { GGUF_T_Q2_K, { 80, 82 } },
        { GGUF_T_Q3_K, { 108, -1 } }, { GGUF_T_Q4_K, { 0, 2 } }, { GGUF_T_Q5_K, { 0, 2 } },
        { GGUF_T_Q6_K, { 208, -1 } },
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
        if (f[k].type == type)
            for (size_t i = 0; i < nblocks; i++)
                for (int j = 0; j < 2; j++)
                    if (f[k].off[j] >= 0)
                        put16(b + i * bbytes + f[k].off[j],
                              eng_f32_to_f16((float)(0.02 * (2 * rng_unif() - 1))));
}

/* eng_vec_dot_f32 against dequantize-then-dot: |dot - ref| <= 1e-5 * sum |w_i x_i| (the error
 * scale of a float32 sum; a plain relative error is meaningless when the terms cancel), with
 * ref in double; also against the same dot summed in float32 one element at a time. */
static void test_vec_dot(void **state)
{
    enum { NMAX = 256 * 17 + 7 };
    float *x = malloc(NMAX * sizeof *x), *w = malloc(NMAX * sizeof *w);
    uint8_t *raw = malloc(NMAX * 4 + 1);
    double worst = 0;
    for (size_t t = 0; t < N_SUPPORTED; t++) {
        const gguf_type_info *ti = gguf_type_get(supported[t]);
        int64_t sizes[3] = { ti->block_elems == 1 ? 1003 : 256 * 17, 256, ti->block_elems * 3 };
        for (int s = 0; s < 3; s++) {
            int64_t n = sizes[s];
            uint8_t *row = raw + (s == 0 ? 1 : 4); /* odd, then float-aligned */
            size_t bytes = eng_row_bytes(supported[t], n);
            if (ti->block_elems == 1) {
                for (int64_t i = 0; i < n; i++)
                    w[i] = rng_gauss();
                assert_true(eng_quantize_row(supported[t], w, row, n));
            } else {
                for (size_t i = 0; i < bytes; i++)
                    row[i] = (uint8_t)rng_next();
                sane_scales(supported[t], row, bytes / ti->block_bytes, ti->block_bytes);
            }
            for (int64_t i = 0; i < n; i++)
                x[i] = rng_gauss();
            decode(supported[t], row, w, n);
            double ref = 0, mag = 0;
            float fdot = 0;
            for (int64_t i = 0; i < n; i++) {
                ref += (double)w[i] * x[i];
                mag += fabs((double)w[i] * x[i]);
                fdot += w[i] * x[i];
            }
            float got = eng_vec_dot_f32(supported[t], row, x, n);
            double err = fabs(got - ref) / mag, err_f = fabs((double)got - fdot) / mag;
            if (err > 1e-5 || err_f > 1e-5)
                fail_msg("%s n=%lld: dot %.9g, reference %.9g, float %.9g (scale %g)", ti->name,
                         (long long)n, (double)got, ref, (double)fdot, mag);
            worst = fmax(worst, err);
        }
    }
    print_message("vec_dot: worst |dot - ref| / sum|w x| over all types: %.2e\n", worst);
    free(x), free(w), free(raw);
}

/* ---- fixture models ---- */

typedef struct moments { double mean, std; bool finite; } moments;

static moments stats(const float *y, uint64_t n)
{
    moments m = { 0, 0, true };
    for (uint64_t i = 0; i < n; i++) {
        m.finite &= isfinite(y[i]) != 0;
        m.mean += y[i];
    }
    m.mean /= (double)n;
    for (uint64_t i = 0; i < n; i++)
        m.std += ((double)y[i] - m.mean) * ((double)y[i] - m.mean);
    m.std = sqrt(m.std / (double)n);
    return m;
}

static gguf_file *open_fixture(const char *rel)
{
    char err[512];
    gguf_file *f = NULL;
    if (gguf_open(fixture_path(rel), &f, err, sizeof err))
        fail_msg("%s", err);
    return f;
}

static float *dequant_tensor(const gguf_tensor *t)
{
    float *y = malloc(t->n_elems * sizeof *y);
    assert_non_null(y);
    if (!eng_dequantize_row(t->type, t->data, y, (int64_t)t->n_elems))
        fail_msg("cannot decode %.*s (type %u)", (int)t->name.len, t->name.ptr, t->type);
    return y;
}

static void tensor_name(const gguf_tensor *t, char *buf, size_t len)
{
    snprintf(buf, len, "%.*s", (int)t->name.len, t->name.ptr);
}

/* Ceiling of the relative RMSE between a tiny model's tensor in `type` and the same tensor in
 * llama-F16.gguf (both quantized from one F32 master). Measured worst over the llama files:
 * Q8_0 .0054, Q6_K .0178, Q5_K .0362, Q5_1 .0379, Q5_0 .0429, Q4_K .0715, Q4_1 .0784,
 * Q4_0 .0863, Q3_K .1517, Q2_K .2978. A wrong layout gives about 1.4. */
static double vs_f16_ceiling(uint32_t type)
{
    switch (type) {
    case GGUF_T_F16: return 1e-9;
    case GGUF_T_Q8_0: return 0.008;
    case GGUF_T_Q6_K: return 0.025;
    case GGUF_T_Q5_K: case GGUF_T_Q5_1: case GGUF_T_Q5_0: return 0.055;
    case GGUF_T_Q4_K: case GGUF_T_Q4_1: case GGUF_T_Q4_0: return 0.11;
    case GGUF_T_Q3_K: return 0.20;
    case GGUF_T_Q2_K: return 0.38;
    default: return 0;
    }
}

/* Every tensor of every tiny llama file decodes to finite values with the statistics the
 * fixtures README (section 9) gives: matrices N(0, 0.02^2), attn_q / attn_k std 0.08, norms
 * 1 + 0.1 N(0,1); std within 15%. Each also matches llama-F16's tensor within its type's
 * ceiling. */
static void test_fixture_tiny(void **state)
{
    static const char *files[] = { "llama-F16", "llama-Q8_0", "llama-Q6_K", "llama-Q5_K_M",
                                   "llama-Q5_1", "llama-Q5_0", "llama-Q4_K_M", "llama-Q4_1",
                                   "llama-Q4_0", "llama-Q3_K_M", "llama-Q2_K" };
    gguf_file *ref = open_fixture("models/tiny/llama-F16.gguf");
    bool seen[GGUF_T_COUNT] = { false };
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        char rel[128], name[128];
        snprintf(rel, sizeof rel, "models/tiny/%s.gguf", files[fi]);
        gguf_file *f = open_fixture(rel);
        for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            tensor_name(t, name, sizeof name);
            seen[t->type] = true;
            float *y = dequant_tensor(t);
            moments m = stats(y, t->n_elems);
            bool norm = strstr(name, "_norm.weight") != NULL;
            double want = norm ? 0.1 : (strstr(name, "attn_q.") || strstr(name, "attn_k.")) ? 0.08
                                                                                             : 0.02;
            if (!m.finite || fabs(m.std / want - 1) > 0.15 ||
                fabs(m.mean - (norm ? 1.0 : 0.0)) > (norm ? 0.03 : 0.1 * want))
                fail_msg("%s %s (%s): mean %g std %g, want mean %g std %g", files[fi], name,
                         gguf_type_get(t->type)->name, m.mean, m.std, norm ? 1.0 : 0.0, want);
            const gguf_tensor *r = gguf_find_tensor(ref, name);
            assert_non_null(r);
            float *yr = dequant_tensor(r);
            double se = 0, s2 = 0;
            for (uint64_t k = 0; k < t->n_elems; k++) {
                se += ((double)y[k] - yr[k]) * ((double)y[k] - yr[k]);
                s2 += (double)yr[k] * yr[k];
            }
            if (t->type != GGUF_T_F32 && sqrt(se / s2) > vs_f16_ceiling(t->type))
                fail_msg("%s %s (%s): relative RMSE vs F16 %.4f > %.4f", files[fi], name,
                         gguf_type_get(t->type)->name, sqrt(se / s2), vs_f16_ceiling(t->type));
            if (t->type == GGUF_T_F32)
                assert_memory_equal(y, yr, t->n_elems * sizeof *y);
            free(y), free(yr);
        }
        gguf_close(f);
    }
    for (size_t i = 0; i < N_SUPPORTED; i++) /* the files cover every type but BF16 */
        assert_true(seen[supported[i]] || supported[i] == GGUF_T_BF16);
    gguf_close(ref);
}

/* Check a decoded tensor against the F32 original within the bound of its type. */
static void check_against_f32(const char *what, const char *name, uint32_t type, const float *y,
                              const float *x, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        double err = fabs((double)y[i] - x[i]), bound;
        switch (type) {
        case GGUF_T_F32: bound = 0; break;
        case GGUF_T_F16: bound = fmax(fabs(x[i]) * 0x1p-11, 0x1p-25); break;
        case GGUF_T_Q8_0: bound = q8_0_bound(x + i / 32 * 32); break;
        case GGUF_T_Q4_0: bound = q4_0_bound(x + i / 32 * 32, (int)(i % 32)); break;
        default: fail_msg("%s %s: unexpected type %u", what, name, type); return;
        }
        if (err > bound)
            fail_msg("%s %s (%s) element %llu: %.9g vs F32 %.9g, error %g > %g", what, name,
                     gguf_type_get(type)->name, (unsigned long long)i, (double)y[i],
                     (double)x[i], err, bound);
    }
}

/* BabyLlama F16/Q8_0/Q4_0 were made from the F32 file by llama-quantize: each decoded tensor is
 * within its format's bound of the F32 one, and quantizing the F32 tensor here reproduces the
 * file's bytes exactly (we follow ggml's reference quantizers operation for operation). */
static void test_fixture_babyllama(void **state)
{
    static const char *files[] = { "models/babyllama-930K-F16.gguf",
                                   "models/babyllama-930K-Q8_0.gguf",
                                   "models/babyllama-930K-Q4_0.gguf" };
    gguf_file *src = open_fixture("models/babyllama-930K-F32.gguf");
    for (size_t fi = 0; fi < 3; fi++) {
        gguf_file *f = open_fixture(files[fi]);
        assert_int_equal(gguf_tensor_count(f), gguf_tensor_count(src));
        for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            char name[128];
            tensor_name(t, name, sizeof name);
            const gguf_tensor *s = gguf_find_tensor(src, name);
            assert_non_null(s);
            assert_int_equal(s->type, GGUF_T_F32);
            assert_int_equal(s->n_elems, t->n_elems);
            float *y = dequant_tensor(t);
            assert_true(stats(y, t->n_elems).finite);
            check_against_f32(files[fi], name, t->type, y, s->data, t->n_elems);
            uint8_t *mine = malloc(t->nbytes);
            assert_true(eng_quantize_row(t->type, s->data, mine, (int64_t)t->n_elems));
            if (memcmp(mine, t->data, t->nbytes))
                fail_msg("%s %s: our %s bytes differ from llama-quantize's", files[fi], name,
                         gguf_type_get(t->type)->name);
            free(mine);
            free(y);
        }
        gguf_close(f);
    }
    gguf_close(src);
}

/* The other fixture models decode to finite values everywhere. */
static void test_fixture_others_finite(void **state)
{
    static const char *files[] = { "models/stories260K.gguf", "models/llama-2-tiny-random.gguf",
                                   "models/tiny/qwen2-Q4_K_M.gguf", "models/tiny/phi3-Q4_K_M.gguf",
                                   "models/tiny/qwen3-Q4_0.gguf" };
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        gguf_file *f = open_fixture(files[fi]);
        for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
            float *y = dequant_tensor(gguf_tensor_at(f, i));
            assert_true(stats(y, gguf_tensor_at(f, i)->n_elems).finite);
            free(y);
        }
        gguf_close(f);
    }
}

/* ---- sizeup quantize ---- */

static char tmp_dir[64];

static int setup_tmp(void **state)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/sizeup-quant-XXXXXX");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    static const char *names[] = { "q8.gguf", "q4.gguf", "q4k.gguf", "q6k.gguf", "bad.gguf",
                                   "q8.gguf.tmp", "bad.gguf.tmp", "in.gguf", "link.gguf" };
    char p[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", tmp_dir, names[i]);
        unlink(p);
    }
    return rmdir(tmp_dir);
}

static int run_quantize(const char *in, const char *out, const char *type)
{
    char a0[] = "quantize";
    char *argv[] = { a0, (char *)in, (char *)out, (char *)type, NULL };
    return app_cmd_quantize(type ? 4 : 3, argv);
}

/* KV i of `in` appears in `out` with the same bytes, except the two keys the command sets. */
static void check_metadata(const gguf_file *in, const gguf_file *out, uint32_t ftype)
{
    for (int64_t i = 0; i < gguf_kv_count(in); i++) {
        gguf_str k = gguf_kv_key(in, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)k.len, k.ptr);
        int64_t j = gguf_find_key(out, key);
        if (j < 0)
            fail_msg("key %s missing from the output", key);
        if (!strcmp(key, "general.file_type") || !strcmp(key, "general.quantization_version"))
            continue;
        uint64_t s0, e0, s1, e1;
        gguf_kv_span(in, i, &s0, &e0);
        gguf_kv_span(out, j, &s1, &e1);
        if (e0 - s0 != e1 - s1 || memcmp(gguf_kv_raw(in, i), gguf_kv_raw(out, j), e0 - s0))
            fail_msg("key %s changed", key);
    }
    assert_true(gguf_kv_count(out) <= gguf_kv_count(in) + 2);
    uint32_t ft = 99;
    assert_int_equal(gguf_get_u32(out, "general.file_type", &ft), GGUF_OK);
    assert_int_equal(ft, ftype);
}

/* llama_ftype of a TYPE name quantize takes (the file type asked, before any relabelling). */
static uint32_t ftype_asked(const char *name)
{
    static const struct { const char *name; uint32_t ftype; } map[] = {
        { "Q8_0", 7 }, { "Q6_K", 18 }, { "Q5_K_M", 17 }, { "Q5_K_S", 16 }, { "Q4_K_M", 15 },
        { "Q4_K_S", 14 }, { "Q4_K", 15 }, { "Q4_0", 2 }, { "F16", 1 }, { "BF16", 32 }, { "F32", 0 },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcasecmp(name, map[i].name))
            return map[i].ftype;
    fail_msg("no file type for %s", name);
    return 0;
}

/* What llama-quantize's type rules need of model f (engine/quant_mix.h), read as quantize
 * reads it. */
static eng_mix_model mix_model_of(const gguf_file *f, char *arch, size_t archlen)
{
    eng_mix_model m = { .arch = arch, .has_output = gguf_find_tensor(f, "output.weight") };
    uint32_t v;
    if (gguf_get_cstr(f, "general.architecture", arch, archlen))
        arch[0] = 0;
    m.n_layer = gguf_get_arch_u32(f, "block_count", &v) ? 0 : (int)v;
    m.n_head = gguf_get_arch_u32(f, "attention.head_count", &v) ? 0 : (int)v;
    m.n_head_kv = gguf_get_arch_u32(f, "attention.head_count_kv", &v) ? m.n_head : (int)v;
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        char name[128];
        tensor_name(gguf_tensor_at(f, i), name, sizeof name);
        m.n_attn_v += strstr(name, "attn_v.weight") || strstr(name, "attn_qkv.weight");
    }
    return m;
}

/* Quantize `in` to `type` through the command and check the result: matrices in the new type
 * (as llama-quantize's mix chooses, engine/quant_mix), everything else unchanged, values within the format's
 * bound (or relative RMSE under rmse_max). general.file_type must be ftype. Returns the
 * output, still open. */
static gguf_file *check_quantized(const char *in_rel, const char *out_name, const char *type_name,
                                  uint32_t type, uint32_t ftype, double rmse_max)
{
    char out_path[128], err[512];
    snprintf(out_path, sizeof out_path, "%s/%s", tmp_dir, out_name);
    const char *in_path = fixture_path(in_rel);
    char in_copy[4096];
    snprintf(in_copy, sizeof in_copy, "%s", in_path);
    unlink(out_path); /* an existing OUT needs --force; test_cmd_refusals covers that */
    assert_int_equal(run_quantize(in_copy, out_path, type_name), 0);
    gguf_file *in = open_fixture(in_rel), *out = NULL;
    if (gguf_open(out_path, &out, err, sizeof err))
        fail_msg("%s", err);
    check_metadata(in, out, ftype);
    assert_int_equal(gguf_tensor_count(out), gguf_tensor_count(in));
    char arch[64];
    eng_mix_model m = mix_model_of(in, arch, sizeof arch);
    eng_mix_state st = { 0 };
    (void)type; /* the mix decides each matrix's type; test_quantize_ref holds it to the fixtures */
    for (int64_t i = 0; i < gguf_tensor_count(in); i++) {
        const gguf_tensor *a = gguf_tensor_at(in, i), *b = gguf_tensor_at(out, i);
        char name[128];
        tensor_name(a, name, sizeof name);
        assert_int_equal(b->n_dims, a->n_dims);
        assert_memory_equal(b->ne, a->ne, sizeof a->ne);
        uint32_t want = UINT32_MAX;
        if (eng_mix_quantizes(name, (int)a->n_dims))
            want = eng_mix_type(ftype_asked(type_name), &m, &st, name, (int64_t)a->ne[0], NULL);
        if (want != UINT32_MAX && (!eng_row_bytes(want, (int64_t)a->ne[0]) || want == a->type))
            want = UINT32_MAX;
        bool convert = a->n_dims == 2 && want != UINT32_MAX;
        if (!convert) {
            assert_int_equal(b->type, a->type);
            assert_memory_equal(b->data, a->data, a->nbytes);
            if (a->n_dims == 1)
                assert_int_equal(b->type, GGUF_T_F32);
            continue;
        }
        if (b->type != want)
            fail_msg("%s is %s, want %s", name, gguf_type_get(b->type)->name,
                     gguf_type_get(want)->name);
        float *x = dequant_tensor(a), *y = dequant_tensor(b);
        if (rmse_max > 0) {
            double se = 0, s2 = 0;
            for (uint64_t k = 0; k < a->n_elems; k++) {
                se += ((double)y[k] - x[k]) * ((double)y[k] - x[k]);
                s2 += (double)x[k] * x[k];
            }
            if (sqrt(se / s2) > rmse_max)
                fail_msg("%s: relative RMSE %.4f > %.4f", name, sqrt(se / s2), rmse_max);
        } else {
            check_against_f32(out_name, name, want, y, x, a->n_elems);
        }
        free(x), free(y);
    }
    gguf_close(in);
    return out;
}

static void test_cmd_q8_0_q4_0(void **state)
{
    gguf_file *q8 = check_quantized("models/babyllama-930K-F32.gguf", "q8.gguf", "Q8_0",
                                    GGUF_T_Q8_0, 7, 0);
    gguf_file *q4 = check_quantized("models/babyllama-930K-F32.gguf", "q4.gguf", "q4_0",
                                    GGUF_T_Q4_0, 2, 0);
    /* Same bytes as llama-quantize's files, tensor by tensor (its Q4_0 file keeps output.weight
     * in Q8_0; ours puts every matrix in Q4_0). */
    gguf_file *ref8 = open_fixture("models/babyllama-930K-Q8_0.gguf");
    gguf_file *ref4 = open_fixture("models/babyllama-930K-Q4_0.gguf");
    for (int64_t i = 0; i < gguf_tensor_count(q8); i++) {
        const gguf_tensor *a = gguf_tensor_at(q8, i), *b = gguf_tensor_at(q4, i);
        char name[128];
        tensor_name(a, name, sizeof name);
        const gguf_tensor *r = gguf_find_tensor(ref8, name), *r4 = gguf_find_tensor(ref4, name);
        assert_non_null(r);
        assert_non_null(r4);
        assert_int_equal(a->type, r->type);
        assert_memory_equal(a->data, r->data, a->nbytes);
        if (b->type == r4->type)
            assert_memory_equal(b->data, r4->data, b->nbytes);
    }
    uint32_t qv = 0;
    assert_int_equal(gguf_get_u32(q4, "general.quantization_version", &qv), GGUF_OK);
    assert_int_equal(qv, 2);
    gguf_close(ref8), gguf_close(ref4), gguf_close(q8), gguf_close(q4);
}

/* The K types: the tiny llama F16 model's rows (256, 512) are whole super-blocks; BabyLlama's
 * (128, 352) are not, so its matrices fall back as llama-quantize's do (Q4_K -> Q5_0,
 * Q6_K -> Q8_0) and the file is labelled with what it holds (issue 18.3: it used to keep every
 * matrix in F32 and say MOSTLY_Q4_K_M). Also a quantized input converted again. */
static void test_cmd_k_types(void **state)
{
    gguf_file *f = check_quantized("models/tiny/llama-F16.gguf", "q4k.gguf", "q4_k",
                                   GGUF_T_Q4_K, 15, 0.080);
    gguf_close(f);
    f = check_quantized("models/babyllama-930K-F32.gguf", "q4k.gguf", "Q4_K_M", GGUF_T_Q4_K, 8,
                        0.06);
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        bool is_output = t->name.len == 13 && !memcmp(t->name.ptr, "output.weight", 13);
        /* the output matrix and the mix's Q6_K attn_v/ffn_down fall back to Q8_0, the rest
         * from Q4_K to Q5_0, as llama-quantize stores them */
        if (t->n_dims == 2 && is_output)
            assert_int_equal(t->type, GGUF_T_Q8_0);
        else if (t->n_dims == 2)
            assert_true(t->type == GGUF_T_Q5_0 || t->type == GGUF_T_Q8_0);
    }
    gguf_close(f);
    f = check_quantized("models/tiny/llama-F16.gguf", "q6k.gguf", "Q6_K", GGUF_T_Q6_K, 18, 0.020);
    gguf_close(f);
    /* any readable input type: a K-quant mix requantized to Q8_0 */
    f = check_quantized("models/tiny/llama-Q4_K_M.gguf", "q8.gguf", "Q8_0", GGUF_T_Q8_0, 7, 0);
    gguf_close(f);
    f = check_quantized("models/babyllama-930K-F32.gguf", "q6k.gguf", "Q6_K", GGUF_T_Q6_K, 7, 0);
    for (int64_t i = 0; i < gguf_tensor_count(f); i++)
        assert_int_equal(gguf_tensor_at(f, i)->type,
                         gguf_tensor_at(f, i)->n_dims == 2 ? GGUF_T_Q8_0 : GGUF_T_F32);
    gguf_close(f);
}

static void test_cmd_refusals(void **state)
{
    char out[128], in[4096];
    struct stat st;
    snprintf(out, sizeof out, "%s/bad.gguf", tmp_dir);
    snprintf(in, sizeof in, "%s", fixture_path("models/babyllama-930K-F32.gguf"));
    assert_int_equal(run_quantize(in, out, "Q3_K"), 2); /* not a type we write */
    assert_int_equal(run_quantize(in, out, "Q9"), 2);
    assert_int_equal(run_quantize(in, out, NULL), 2);   /* TYPE missing */
    assert_int_equal(run_quantize("/nonexistent/model.gguf", out, "Q8_0"), 1);
    assert_int_equal(stat(out, &st), -1);
    /* a folder that does not exist: the writer fails and leaves nothing behind */
    char deep[160];
    snprintf(deep, sizeof deep, "%s/no/such/dir/out.gguf", tmp_dir);
    assert_int_equal(run_quantize(in, deep, "Q8_0"), 1);
    snprintf(deep, sizeof deep, "%s/no", tmp_dir);
    assert_int_equal(stat(deep, &st), -1);
    char a0[] = "quantize", help[] = "--help";
    char *argv[] = { a0, help, NULL };
    assert_int_equal(app_cmd_quantize(2, argv), 0);

    /* Issue 18.2: OUT that is IN (by name, through a symlink, as a hard link) is refused even
     * with --force, and IN keeps its bytes; an existing OUT needs --force. */
    char copy[160], link_path[160];
    snprintf(copy, sizeof copy, "%s/in.gguf", tmp_dir);
    snprintf(link_path, sizeof link_path, "%s/link.gguf", tmp_dir);
    size_t n_orig, n_now;
    uint8_t *orig = read_file(in, &n_orig), *now;
    assert_non_null(orig);
    FILE *fp = fopen(copy, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(orig, 1, n_orig, fp), n_orig);
    assert_int_equal(fclose(fp), 0);
    char force[] = "--force", q8[] = "Q8_0";
    char *fargv[] = { a0, force, copy, link_path, q8, NULL };
    assert_int_equal(run_quantize(copy, copy, "Q8_0"), 1);
    assert_int_equal(symlink(copy, link_path), 0);
    assert_int_equal(app_cmd_quantize(5, fargv), 1);
    unlink(link_path);
    assert_int_equal(link(copy, link_path), 0);
    assert_int_equal(app_cmd_quantize(5, fargv), 1);
    unlink(link_path);
    now = read_file(copy, &n_now);
    assert_non_null(now);
    assert_int_equal(n_now, n_orig);
    assert_memory_equal(now, orig, n_orig);
    free(now);
    free(orig);
    /* link.gguf is now a plain file of someone's: kept without --force, replaced with it */
    fp = fopen(link_path, "wb");
    assert_non_null(fp);
    fputs("mine", fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(run_quantize(copy, link_path, "Q8_0"), 1);
    assert_int_equal(stat(link_path, &st), 0);
    assert_int_equal(st.st_size, 4);
    assert_int_equal(app_cmd_quantize(5, fargv), 0);
    assert_int_equal(stat(link_path, &st), 0);
    assert_true(st.st_size > 4);
}

/* Q5_0 encoding (for llama.cpp's Q4_K_M recipe on rows that are not multiples of 256): values
 * on the grid k * d with d = max / -16 come back exactly, and random data within |d| (the
 * element near -max may be clamped, as in Q4_0) and mostly within d/2. */
static void test_q5_0_encode(void **state)
{
    float x[64], y[64];
    uint8_t b[2 * 22];
    for (int i = 0; i < 64; i++)
        x[i] = (float)((i * 7) % 31 - 15) * 0.25f; /* codes -15..15 of d = 0.25 ... */
    x[5] = 4.0f;                                   /* ... with max = 4 -> d = -0.25 */
    x[37] = 4.0f;
    assert_true(eng_quantize_row(GGUF_T_Q5_0, x, b, 64));
    assert_true(eng_dequantize_row(GGUF_T_Q5_0, b, y, 64));
    for (int i = 0; i < 64; i++)
        assert_true(x[i] == y[i]);
    unsigned seed = 7;
    int within_half = 0, total = 0;
    for (int r = 0; r < 200; r++) {
        for (int i = 0; i < 64; i++)
            x[i] = (float)rand_r(&seed) / RAND_MAX * 2.0f - 1.0f;
        assert_true(eng_quantize_row(GGUF_T_Q5_0, x, b, 64));
        assert_true(eng_dequantize_row(GGUF_T_Q5_0, b, y, 64));
        for (int k = 0; k < 2; k++) {
            float amax = 0;
            for (int j = 0; j < 32; j++)
                amax = fmaxf(amax, fabsf(x[32 * k + j]));
            float d = amax / 16.0f;
            for (int j = 0; j < 32; j++) {
                float e = fabsf(x[32 * k + j] - y[32 * k + j]);
                assert_true(e <= d * 1.01f);
                within_half += e <= d * (0.5f + 16.0f / 2048.0f) + 1e-7f;
                total++;
            }
        }
    }
    assert_true(within_half >= total * 97 / 100);
}

int main(void)
{
    rng_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_q5_0_encode),
        cmocka_unit_test(test_f16_to_f32_edges),
        cmocka_unit_test(test_f32_to_f16_edges),
        cmocka_unit_test(test_bf16_edges),
        cmocka_unit_test(test_block_float_types),
        cmocka_unit_test(test_block_q4_0),
        cmocka_unit_test(test_block_q4_1),
        cmocka_unit_test(test_block_q5_0),
        cmocka_unit_test(test_block_q5_1),
        cmocka_unit_test(test_block_q8_0),
        cmocka_unit_test(test_block_q2_k),
        cmocka_unit_test(test_block_q3_k),
        cmocka_unit_test(test_block_q4_k),
        cmocka_unit_test(test_block_q5_k),
        cmocka_unit_test(test_block_q6_k),
        cmocka_unit_test(test_roundtrip_q8_0_q4_0),
        cmocka_unit_test(test_roundtrip_k),
        cmocka_unit_test(test_quantize_matches_ggml),
        cmocka_unit_test(test_roundtrip_f16_bf16),
        cmocka_unit_test(test_quantize_refuses),
        cmocka_unit_test(test_vec_dot),
        cmocka_unit_test(test_fixture_tiny),
        cmocka_unit_test(test_fixture_babyllama),
        cmocka_unit_test(test_fixture_others_finite),
        cmocka_unit_test_setup_teardown(test_cmd_q8_0_q4_0, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_cmd_k_types, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_cmd_refusals, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
