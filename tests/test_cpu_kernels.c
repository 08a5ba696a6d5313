/* The CPU backend's dot kernels (engine/cpu_kernels): the plain C kernels against
 * dequantize-then-multiply in double precision (so the oracle itself is pinned to the layouts
 * engine/quant decodes), then every SIMD kernel this machine can run against the plain one, on
 * random rows of every weight type, for several lengths (one block, odd block counts, float rows
 * of any length). Also the activation quantizers and the instruction-set choice. Random data is
 * fresh each run; the seed is printed and SIZEUP_TEST_SEED=N repeats a run. */
#include "tests/testutil.h"

#include <math.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

#include "engine/cpu_kernels.h"
#include "engine/gguf.h"
#include "engine/quant.h"
#include "engine/quant_internal.h"

static uint64_t rng_state;

static void rng_seed(void)
{
    const char *s = getenv("SIZEUP_TEST_SEED");
    rng_state = s && *s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
    if (!rng_state)
        rng_state = 1;
    printf("# test_cpu_kernels: SIZEUP_TEST_SEED=%llu\n", (unsigned long long)rng_state);
}

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static float rng_sym(void) /* [-1, 1) */
{
    return (float)((double)(rng_next() >> 11) * 0x1p-52 - 1.0);
}

/* Where each type keeps its fp16 factors inside a block (random bytes there could be
 * infinities or NaNs; everywhere else any byte is a valid code). */
typedef struct type_case {
    uint32_t type;
    const char *name;
    size_t f16_at[2];
    int n_f16;
} type_case;

static const type_case types[] = {
    { GGUF_T_F32, "F32", { 0 }, 0 },
    { GGUF_T_F16, "F16", { 0 }, 0 },
    { GGUF_T_BF16, "BF16", { 0 }, 0 },
    { GGUF_T_Q4_0, "Q4_0", { offsetof(blk_q4_0, d) }, 1 },
    { GGUF_T_Q4_1, "Q4_1", { offsetof(blk_q4_1, d), offsetof(blk_q4_1, m) }, 2 },
    { GGUF_T_Q5_0, "Q5_0", { offsetof(blk_q5_0, d) }, 1 },
    { GGUF_T_Q5_1, "Q5_1", { offsetof(blk_q5_1, d), offsetof(blk_q5_1, m) }, 2 },
    { GGUF_T_Q8_0, "Q8_0", { offsetof(blk_q8_0, d) }, 1 },
    { GGUF_T_Q2_K, "Q2_K", { offsetof(blk_q2_k, d), offsetof(blk_q2_k, dmin) }, 2 },
    { GGUF_T_Q3_K, "Q3_K", { offsetof(blk_q3_k, d) }, 1 },
    { GGUF_T_Q4_K, "Q4_K", { offsetof(blk_q4_k, d), offsetof(blk_q4_k, dmin) }, 2 },
    { GGUF_T_Q5_K, "Q5_K", { offsetof(blk_q5_k, d), offsetof(blk_q5_k, dmin) }, 2 },
    { GGUF_T_Q6_K, "Q6_K", { offsetof(blk_q6_k, d) }, 1 },
};

/* A random row of n elements of tc's type (eng_row_bytes(type, n) bytes, caller frees). */
static uint8_t *random_row(const type_case *tc, int64_t n)
{
    const gguf_type_info *ti = gguf_type_get(tc->type);
    size_t bytes = eng_row_bytes(tc->type, n);
    uint8_t *row = malloc(bytes);
    for (size_t i = 0; i < bytes; i++)
        row[i] = (uint8_t)rng_next();
    for (int64_t i = 0; i < n && ti->block_elems == 1; i++) {
        float v = rng_sym() * 2;
        if (tc->type == GGUF_T_F32)
            memcpy(row + 4 * i, &v, 4);
        else {
            uint16_t h = tc->type == GGUF_T_F16 ? eng_f32_to_f16(v) : eng_f32_to_bf16(v);
            memcpy(row + 2 * i, &h, 2);
        }
    }
    for (int64_t b = 0; ti->block_elems > 1 && b < n / ti->block_elems; b++)
        for (int k = 0; k < tc->n_f16; k++) {
            uint16_t h = eng_f32_to_f16(rng_sym() * 0.05f);
            memcpy(row + b * ti->block_bytes + tc->f16_at[k], &h, 2);
        }
    return row;
}

/* The activations a quantized form stands for (d * q), so that the plain kernel's exact
 * answer can be computed independently. */
static void act_values(cpuk_act act, const void *xq, const float *x, float *out, int64_t n)
{
    if (act == CPUK_ACT_F32) {
        memcpy(out, x, (size_t)n * sizeof *out);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        if (act == CPUK_ACT_Q8) {
            const cpuk_q8 *b = (const cpuk_q8 *)xq + i / 32;
            out[i] = b->d * b->qs[i % 32];
        } else {
            const cpuk_q8k *b = (const cpuk_q8k *)xq + i / 256;
            out[i] = b->d * b->qs[i % 256];
        }
}

typedef struct row_case {
    const type_case *tc;
    int64_t n;
    uint8_t *w;
    float *x, *xv, *wf;
    void *xq;
    cpuk_kernel k;
    double exact, scale; /* the answer in double, and sum |w x| to judge errors by */
    double slack;        /* Q4_1/Q5_1: the fp16 rounding of the activations' d * sum */
} row_case;

static void row_case_new(row_case *rc, const type_case *tc, int64_t n)
{
    rc->tc = tc;
    rc->n = n;
    assert_true(cpuk_kernel_for(CPUK_GENERIC, tc->type, &rc->k));
    rc->w = random_row(tc, n);
    rc->x = malloc((size_t)n * sizeof(float));
    rc->xv = malloc((size_t)n * sizeof(float));
    rc->wf = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        rc->x[i] = rng_sym() * (i % 17 == 0 ? 8.0f : 1.0f); /* some outliers, as real ones have */
    rc->xq = malloc(cpuk_act_bytes(rc->k.act, n) + 1);
    cpuk_quantize(rc->k.act, rc->x, rc->xq, n);
    act_values(rc->k.act, rc->xq, rc->x, rc->xv, n);
    assert_true(eng_dequantize_row(tc->type, rc->w, rc->wf, n));
    rc->exact = rc->scale = 0;
    for (int64_t i = 0; i < n; i++) {
        rc->exact += (double)rc->wf[i] * rc->xv[i];
        rc->scale += fabs((double)rc->wf[i] * rc->xv[i]);
    }
    /* the types with a minimum m add m * s, s = d * sum rounded to fp16 as ggml's Q8_1 */
    rc->slack = 0;
    const gguf_type_info *ti = gguf_type_get(tc->type);
    for (int64_t b = 0; tc->n_f16 == 2 && rc->k.act == CPUK_ACT_Q8 && b < n / 32; b++) {
        const cpuk_q8 *a = (const cpuk_q8 *)rc->xq + b;
        rc->slack += fabs(quant_f16(rc->w + b * ti->block_bytes + tc->f16_at[1]) * a->d * a->sum) * 0x1p-10;
    }
}

static void row_case_free(row_case *rc)
{
    free(rc->w);
    free(rc->x);
    free(rc->xv);
    free(rc->wf);
    free(rc->xq);
}

static const int64_t lengths_blocks[] = { 1, 2, 3, 5, 7, 18, 70 }; /* 70: past G8_CHUNK */
static const int64_t lengths_float[] = { 1, 7, 8, 9, 15, 16, 17, 33, 100, 576 };

/* Run check(rc) over every type and length. */
static void each_row(void (*check)(row_case *rc))
{
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const gguf_type_info *ti = gguf_type_get(types[t].type);
        bool fl = ti->block_elems == 1;
        size_t nl = fl ? sizeof lengths_float / sizeof lengths_float[0]
                       : sizeof lengths_blocks / sizeof lengths_blocks[0];
        for (size_t l = 0; l < nl; l++) {
            row_case rc;
            row_case_new(&rc, &types[t], fl ? lengths_float[l] : lengths_blocks[l] * ti->block_elems);
            check(&rc);
            row_case_free(&rc);
        }
    }
}

/* float32 rounding of a sum of n terms: a few ulps of the magnitude sum per block. */
static double tolerance(const row_case *rc)
{
    return 1e-5 * rc->scale + rc->slack + 1e-30;
}

static void check_generic(row_case *rc)
{
    double got = rc->k.dot(rc->w, rc->xq, rc->n);
    if (fabs(got - rc->exact) > tolerance(rc))
        fail_msg("generic %s n=%lld: %.9g, dequantized product %.9g (scale %.3g)", rc->tc->name,
                 (long long)rc->n, got, rc->exact, rc->scale);
}

/* The plain kernels compute what their layouts mean. */
static void test_generic_matches_dequantized(void **state)
{
    each_row(check_generic);
}

static cpuk_isa isa_now;

/* An eight-row kernel against the plain dot of every (row, token): eight rows made of the
 * case's blocks in eight rotations (each a valid row, no two alike), with 1 to 9 tokens (the
 * case's activations rotated), written into a wider output (ldy 11) whose other columns must
 * stay untouched. */
static void check_gemm8(row_case *rc, const cpuk_kernel *k)
{
    const gguf_type_info *ti = gguf_type_get(rc->tc->type);
    int64_t nb = rc->n / ti->block_elems;
    size_t rb = (size_t)nb * ti->block_bytes, row = cpuk_act_bytes(k->act, rc->n);
    uint8_t *w8 = malloc(8 * rb), *xs = malloc(9 * row);
    float *xt = malloc((size_t)rc->n * sizeof *xt), y[9 * 11];
    for (int r = 0; r < 8; r++)
        for (int64_t b = 0; b < nb; b++)
            memcpy(w8 + r * rb + b * ti->block_bytes, rc->w + ((b + r) % nb) * ti->block_bytes,
                   ti->block_bytes);
    for (int t = 0; t < 9; t++) {
        for (int64_t i = 0; i < rc->n; i++)
            xt[i] = rc->x[(i + 5 * t) % rc->n] * (t % 2 ? -1.0f : 1.0f);
        cpuk_quantize(k->act, xt, xs + t * row, rc->n);
    }
    for (int n_tok = 1; n_tok <= 9; n_tok++) {
        for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
            y[i] = -12345.0f;
        k->gemm8(w8, rb, rc->n, xs, row, n_tok, y + 2, 11);
        for (int t = 0; t < 9; t++)
            for (int c = 0; c < 11; c++) {
                float got = y[t * 11 + c];
                if (t >= n_tok || c < 2 || c >= 10) {
                    if (got != -12345.0f)
                        fail_msg("%s %s gemm8 n_tok=%d wrote outside its output (token %d, "
                                 "column %d)", cpuk_isa_name(isa_now), rc->tc->name, n_tok, t, c);
                    continue;
                }
                double want = rc->k.dot(w8 + (c - 2) * rb, xs + t * row, rc->n);
                if (!(fabs(got - want) <= tolerance(rc) * 4 + 1e-6 * fabs(want)))
                    fail_msg("%s %s gemm8 row %d token %d of %d, n=%lld: %.9g, plain C %.9g",
                             cpuk_isa_name(isa_now), rc->tc->name, c - 2, t, n_tok,
                             (long long)rc->n, got, want);
            }
    }
    free(w8);
    free(xs);
    free(xt);
}

static void check_isa(row_case *rc)
{
    cpuk_kernel k;
    assert_true(cpuk_kernel_for(isa_now, rc->tc->type, &k));
    assert_int_equal(k.act, rc->k.act);
    double want = rc->k.dot(rc->w, rc->xq, rc->n), got = k.dot(rc->w, rc->xq, rc->n);
    if (!(fabs(got - want) <= tolerance(rc)))
        fail_msg("%s %s n=%lld: %.9g, plain C %.9g (scale %.3g)", cpuk_isa_name(isa_now),
                 rc->tc->name, (long long)rc->n, got, want, rc->scale);
    if (!k.dot4)
        return;
    /* four activation rows: the case's x rotated by 0, 7, 14 and 21 elements */
    size_t row = cpuk_act_bytes(k.act, rc->n);
    uint8_t *x4 = malloc(4 * row);
    float *xt = malloc((size_t)rc->n * sizeof *xt), out[4];
    for (int t = 0; t < 4; t++) {
        for (int64_t i = 0; i < rc->n; i++)
            xt[i] = rc->x[(i + 7 * t) % rc->n];
        cpuk_quantize(k.act, xt, x4 + t * row, rc->n);
    }
    free(xt);
    k.dot4(rc->w, x4, row, rc->n, out);
    for (int t = 0; t < 4; t++) {
        double w4 = rc->k.dot(rc->w, x4 + t * row, rc->n);
        if (!(fabs(out[t] - w4) <= tolerance(rc) * 4 + 1e-6 * fabs(w4)))
            fail_msg("%s %s dot4 row %d n=%lld: %.9g, plain C %.9g", cpuk_isa_name(isa_now),
                     rc->tc->name, t, (long long)rc->n, out[t], w4);
    }
    free(x4);
    if (k.gemm8)
        check_gemm8(rc, &k);
}

/* Every SIMD kernel this CPU runs agrees with the plain one: each instruction set of this
 * architecture the CPU has (x86-64: avx2, avx512; AArch64: neon, neondot). */
static void test_simd_matches_generic(void **state)
{
    cpuk_isa best = cpuk_isa_best();
    printf("# best instruction set here: %s\n", cpuk_isa_name(best));
    /* make test-neon says which set each emulated CPU must give, so none is skipped unseen */
    const char *want = getenv("SIZEUP_TEST_EXPECT_ISA");
    if (want && *want && strcmp(want, cpuk_isa_name(best)) != 0)
        fail_msg("best instruction set %s, SIZEUP_TEST_EXPECT_ISA wants %s", cpuk_isa_name(best), want);
    for (int i = CPUK_GENERIC + 1; i < CPUK_ISA_COUNT; i++) {
        if (!cpuk_isa_runs((cpuk_isa)i))
            continue;
        isa_now = (cpuk_isa)i;
        /* the four-token kernels prompts rely on are there (and so are checked below) */
        static const uint32_t tiled[] = { GGUF_T_Q4_0, GGUF_T_Q4_1, GGUF_T_Q5_0, GGUF_T_Q5_1,
                                          GGUF_T_Q8_0, GGUF_T_Q4_K, GGUF_T_Q6_K };
        cpuk_kernel k;
        for (size_t j = 0; j < sizeof tiled / sizeof tiled[0]; j++)
            assert_true(cpuk_kernel_for(isa_now, tiled[j], &k) && k.dot4);
        /* and so are the eight-row ones (checked by check_isa through check_gemm8): Q4_0
         * everywhere, Q8_0 where vpdpbusd or sdot/smull take its signed codes; neondot's are
         * its own sdot ones, not neon's through the fallback */
        static const uint32_t g8types[] = { GGUF_T_Q4_0, GGUF_T_Q8_0 };
        bool has_q8 = false;
        for (size_t j = 0; j < 2; j++) {
            cpuk_kernel kn;
            assert_true(cpuk_kernel_for(isa_now, g8types[j], &k));
            assert_true(k.gemm8 || (g8types[j] == GGUF_T_Q8_0 && isa_now == CPUK_AVX2));
            if (isa_now == CPUK_NEON_DOT)
                assert_true(cpuk_kernel_for(CPUK_NEON, g8types[j], &kn) && k.gemm8 != kn.gemm8);
            has_q8 = g8types[j] == GGUF_T_Q8_0 && k.gemm8;
        }
        each_row(check_isa);
        printf("#   %s kernels agree with plain C for %zu types (gemm8: q4_0%s)\n",
               cpuk_isa_name(isa_now), sizeof types / sizeof types[0], has_q8 ? ", q8_0" : "");
    }
}

/* The quantizers: every value within half a step of its code (the fp16 rounding of Q8's d
 * adds up to |q| * 2^-11 steps), the extreme element at +-127, and the sums consistent. */
static void test_quantizers(void **state)
{
    enum { N = 256 * 3 };
    float x[N];
    for (int i = 0; i < N; i++)
        x[i] = rng_sym() * (i % 13 == 0 ? 10.0f : 1.0f);
    x[40] = 0;
    memset(x + 64, 0, 32 * sizeof(float)); /* an all-zero block */
    cpuk_q8 q8[N / 32];
    cpuk_quantize(CPUK_ACT_Q8, x, q8, N);
    for (int b = 0; b < N / 32; b++) {
        int sum = 0, amax = 0;
        for (int j = 0; j < 32; j++) {
            float v = x[32 * b + j];
            int q = q8[b].qs[j];
            sum += q;
            amax = abs(q) > amax ? abs(q) : amax;
            assert_true(fabsf(v - q8[b].d * q) <= q8[b].d * (0.5f + 127 * 0x1p-11f) + 1e-12f);
        }
        assert_int_equal(sum, q8[b].sum);
        assert_int_equal(amax, b == 2 ? 0 : 127);
        assert_float_equal(q8[b].s, q8[b].d * sum, fabsf(q8[b].d * sum) * 1e-3f + 1e-12f);
    }
    static cpuk_q8k q8k[N / 256];
    cpuk_quantize(CPUK_ACT_Q8K, x, q8k, N);
    for (int b = 0; b < N / 256; b++) {
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++)
                sum += q8k[b].qs[16 * g + j];
            assert_int_equal(sum, q8k[b].bsums[g]);
        }
        for (int j = 0; j < 256; j++)
            assert_true(fabsf(x[256 * b + j] - q8k[b].d * q8k[b].qs[j]) <= fabsf(q8k[b].d) * 0.5001f);
    }
}

/* Attention over f16 keys and values: the plain version against softmax in double (within the
 * f16 rounding of the probabilities), and every SIMD version against the plain one, bit for bit
 * where the head sizes are multiples of 8 (every model's are). Strided rows, odd lengths. */
static void test_attend(void **state)
{
    (void)state;
    static const int dims[][2] = { { 64, 64 }, { 128, 128 }, { 64, 128 }, { 24, 8 }, { 80, 72 },
                                   { 20, 12 } };
    static const int lens[] = { 1, 2, 7, 8, 9, 33, 100 };
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            int hd = dims[d][0], hdv = dims[d][1], n = lens[l];
            size_t ks = (size_t)hd + 3, vs = (size_t)hdv + 5; /* rows of other heads between */
            uint16_t *K = malloc((size_t)n * ks * 2), *V = malloc((size_t)n * vs * 2);
            float q[128], sc[100], o[128], ref[128];
            for (size_t i = 0; i < (size_t)n * ks; i++)
                K[i] = eng_f32_to_f16(rng_sym() * 2);
            for (size_t i = 0; i < (size_t)n * vs; i++)
                V[i] = eng_f32_to_f16(rng_sym());
            for (int i = 0; i < hd; i++)
                q[i] = eng_f16_to_f32(eng_f32_to_f16(rng_sym() * 2));
            float scale = 1.0f / sqrtf((float)hd);
            cpuk_generic_attend(q, K, ks, V, vs, hd, hdv, n, scale, sc, ref);
            double s[100], mx = -1e300, sum = 0;
            for (int j = 0; j < n; j++) {
                s[j] = 0;
                for (int i = 0; i < hd; i++)
                    s[j] += (double)q[i] * eng_f16_to_f32(K[j * ks + i]);
                s[j] *= scale;
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int j = 0; j < n; j++)
                sum += s[j] = exp(s[j] - mx);
            for (int i = 0; i < hdv; i++) {
                double want = 0;
                for (int j = 0; j < n; j++)
                    want += s[j] / sum * eng_f16_to_f32(V[j * vs + i]);
                if (fabs(ref[i] - want) > 1e-3)
                    fail_msg("generic attend hd %d hdv %d n %d col %d: %.7g, softmax in double %.7g",
                             hd, hdv, n, i, ref[i], want);
            }
            for (int isa = CPUK_GENERIC + 1; isa < CPUK_ISA_COUNT; isa++) {
                if (!cpuk_isa_runs((cpuk_isa)isa))
                    continue;
                cpuk_attend_fn f = cpuk_attend_for((cpuk_isa)isa);
                memset(o, 0xff, sizeof o); /* NaN: every column must be written */
                f(q, K, ks, V, vs, hd, hdv, n, scale, sc, o);
                bool exact = hd % 8 == 0 && hdv % 8 == 0;
                for (int i = 0; i < hdv; i++)
                    if (exact ? memcmp(&o[i], &ref[i], sizeof o[i]) != 0
                              : !(fabs(o[i] - ref[i]) <= 1e-6))
                        fail_msg("%s attend hd %d hdv %d n %d col %d: %.9g, plain C %.9g",
                                 cpuk_isa_name((cpuk_isa)isa), hd, hdv, n, i, o[i], ref[i]);
            }
            free(K);
            free(V);
        }
}

/* SIZEUP_CPU_ISA picks the instruction set, never one the CPU lacks, and a set of the other
 * architecture (or one this CPU lacks) hands out only its own family's kernels or plain C. */
static void test_isa_choice(void **state)
{
    cpuk_kernel k, g; /* the plain C set has no four-token kernels: one dot per token */
    assert_true(cpuk_kernel_for(CPUK_GENERIC, GGUF_T_Q4_K, &k) && !k.dot4);
    cpuk_isa best = cpuk_isa_best();
    assert_true(cpuk_isa_runs(best) && cpuk_isa_runs(CPUK_GENERIC));
    setenv("SIZEUP_CPU_ISA", "generic", 1);
    assert_int_equal(cpuk_isa_from_env(), CPUK_GENERIC);
    setenv("SIZEUP_CPU_ISA", "avx512", 1);
    assert_int_equal(cpuk_isa_from_env(), best);
    for (int i = CPUK_GENERIC + 1; i < CPUK_ISA_COUNT; i++) {
        char upper[16];
        const char *name = cpuk_isa_name((cpuk_isa)i);
        for (size_t c = 0; c <= strlen(name); c++)
            upper[c] = (char)(name[c] >= 'a' && name[c] <= 'z' ? name[c] - 32 : name[c]);
        setenv("SIZEUP_CPU_ISA", upper, 1);
        assert_int_equal(cpuk_isa_from_env(), cpuk_isa_runs((cpuk_isa)i) ? (cpuk_isa)i : best);
    }
#if defined(__x86_64__)
    assert_false(cpuk_isa_runs(CPUK_NEON) || cpuk_isa_runs(CPUK_NEON_DOT));
#elif defined(__aarch64__)
    assert_true(cpuk_isa_runs(CPUK_NEON));
    assert_false(cpuk_isa_runs(CPUK_AVX2) || cpuk_isa_runs(CPUK_AVX512));
#endif
    unsetenv("SIZEUP_CPU_ISA");
    assert_int_equal(cpuk_isa_from_env(), best);
    assert_false(cpuk_kernel_for(best, GGUF_T_IQ2_XXS, &k));
    assert_true(cpuk_kernel_for(best, GGUF_T_Q4_K, &k) && k.act == CPUK_ACT_Q8K);
    /* the other architecture's sets give the plain kernels: their tables are empty here */
#if defined(__x86_64__)
    static const cpuk_isa foreign[] = { CPUK_NEON, CPUK_NEON_DOT };
#else
    static const cpuk_isa foreign[] = { CPUK_AVX2, CPUK_AVX512 };
#endif
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        for (uint32_t t = 0; t < CPUK_MAX_TYPE; t++) {
            bool have = cpuk_kernel_for(foreign[i], t, &k);
            assert_int_equal(have, cpuk_kernel_for(CPUK_GENERIC, t, &g));
            if (have && (k.dot != g.dot || k.dot4))
                fail_msg("%s gives a kernel of its own for type %u on this architecture",
                         cpuk_isa_name(foreign[i]), t);
        }
}

int main(void)
{
    rng_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generic_matches_dequantized),
        cmocka_unit_test(test_simd_matches_generic),
        cmocka_unit_test(test_quantizers),
        cmocka_unit_test(test_attend),
        cmocka_unit_test(test_isa_choice),
    };
    return cmocka_run_group_tests_name("cpu_kernels", tests, NULL, NULL);
}
