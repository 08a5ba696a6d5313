/* Tests for the matrix-product kernels (engine/vk_matmul.c, shaders/mul_mat*.comp) against the
 * CPU reference: for every weight type, fresh random weights each run (the seed is printed, and
 * SIZEUP_TEST_SEED repeats a run), outputs poisoned with NaN before every dispatch, results
 * judged by NMSE = sum((gpu - ref)^2) / sum(ref^2) against the weights decoded by
 * eng_dequantize_row and summed in double (docs/DESIGN.md section 5.1):
 *   F32 1e-7, F16 1e-5, quantized types 1e-4,
 * and element by element: |gpu - ref| <= 1e-5 * sum |w x| (REL_TOL below), which one wrong or
 * missing column in a row of a few thousand would break where the averaged NMSE would not.
 * The kernels decode exactly the CPU's float weights and accumulate in fp32, so the measured
 * NMSE is 4e-14..6e-13 and the element error at most 3e-7 of sum |w x| (printed per run).
 *
 * Runs on whatever device the machine has (lavapipe in CI) and never skips; with
 * SIZEUP_VK_VALIDATE=1 every test also checks that its context saw no validation message.
 */
#include "tests/testutil.h"

#include <math.h>
#include <time.h>

#include "engine/gguf.h"
#include "engine/quant.h"
#include "engine/vk.h"
#include "engine/vk_ops.h"

static const uint32_t all_types[] = {
    GGUF_T_F32,  GGUF_T_F16,  GGUF_T_Q4_0, GGUF_T_Q4_1, GGUF_T_Q5_0, GGUF_T_Q5_1,
    GGUF_T_Q8_0, GGUF_T_Q2_K, GGUF_T_Q3_K, GGUF_T_Q4_K, GGUF_T_Q5_K, GGUF_T_Q6_K,
};
#define N_TYPES (sizeof all_types / sizeof all_types[0])

/* ---- random numbers (splitmix64), seeded once per run ---- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float rng_float(void)
{
    return (float)((double)(rng_next() >> 11) * 0x1p-53 * 2.0 - 1.0);
}

/* ---- fixture: one context and one kernel set for the whole file ---- */

typedef struct fixture {
    vk_ctx *ctx;
    vk_ops ops;
    vk_seq *seq;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    vk_open_opts o = { 0 };
    char err[1024] = "";
    rng_state = random_seed("test_vk_matmul");
    if (!f || vk_ctx_open(&o, &f->ctx, err, sizeof err)) {
        fprintf(stderr, "vk_ctx_open: %s\n", err);
        free(f);
        return -1;
    }
    f->ops.ctx = f->ctx;
    vk_status st = vk_ctx_start_device(f->ctx);
    if (!st)
        st = vk_ops_create_matmul(&f->ops, true); /* every variant, to compare them */
    if (!st)
        st = vk_seq_new(f->ctx, 8, &f->seq);
    if (st) {
        fprintf(stderr, "setup: %s: %s\n", vk_status_str(st), vk_ctx_errmsg(f->ctx));
        vk_ctx_close(f->ctx);
        free(f);
        return -1;
    }
    const vk_device_info *d = vk_ctx_device_info(f->ctx, vk_ctx_choice(f->ctx)->index);
    printf("# device: %s (%s), subgroup %u, validation %s\n", d->name,
           vk_device_type_str(d->type), d->subgroup_size,
           vk_ctx_validation_enabled(f->ctx) ? "on" : "off");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vk_seq_free(f->seq);
    vk_ops_free_matmul(&f->ops);
    unsigned n = vk_ctx_validation_count(f->ctx);
    if (n)
        fprintf(stderr, "%u validation messages, first: %s\n", n,
                vk_ctx_validation_first(f->ctx));
    vk_ctx_close(f->ctx);
    free(f);
    return n ? -1 : 0;
}

static void check_no_validation(fixture *f)
{
    unsigned n = vk_ctx_validation_count(f->ctx);
    if (n)
        fail_msg("%u validation messages, first: %s", n, vk_ctx_validation_first(f->ctx));
}

/* ---- random weights ---- */

/* Byte offsets of the fp16 scale fields in a block of the types without an encoder. */
static void scale_fields(uint32_t type, int off[2], int *n)
{
    *n = 0;
    switch (type) {
    case GGUF_T_Q4_1: case GGUF_T_Q5_1: case GGUF_T_Q5_K:
        off[0] = 0, off[1] = 2, *n = 2; break;
    case GGUF_T_Q5_0: off[0] = 0, *n = 1; break;
    case GGUF_T_Q2_K: off[0] = 80, off[1] = 82, *n = 2; break;
    case GGUF_T_Q3_K: off[0] = 108, *n = 1; break;
    default: break;
    }
}

/* rows x K weights of `type`: quantized random floats where an encoder exists, otherwise
 * random bytes with every block's scales set to small finite fp16 values. *bytes is rounded up
 * to whole words (vk_op_mul_mat requires it; the padding is random too). Caller frees. */
static uint8_t *random_weights(uint32_t type, uint32_t K, uint32_t rows, size_t *bytes)
{
    size_t row_bytes = eng_row_bytes(type, K);
    assert_true(row_bytes > 0);
    *bytes = (row_bytes * rows + 3) / 4 * 4;
    uint8_t *wb = malloc(*bytes);
    assert_non_null(wb);
    for (size_t i = 0; i < *bytes; i++)
        wb[i] = (uint8_t)rng_next();
    if (eng_type_quantizable(type)) {
        float *src = malloc(sizeof(float) * K);
        assert_non_null(src);
        for (uint32_t r = 0; r < rows; r++) {
            for (uint32_t k = 0; k < K; k++)
                src[k] = rng_float();
            assert_true(eng_quantize_row(type, src, wb + r * row_bytes, K));
        }
        free(src);
        return wb;
    }
    const gguf_type_info *ti = gguf_type_get(type);
    int off[2], n;
    scale_fields(type, off, &n);
    for (size_t b = 0; b < row_bytes * rows / ti->block_bytes; b++)
        for (int i = 0; i < n; i++) {
            uint16_t h = eng_f32_to_f16(rng_float() * 0.05f);
            wb[b * ti->block_bytes + off[i]] = (uint8_t)h;
            wb[b * ti->block_bytes + off[i] + 1] = (uint8_t)(h >> 8);
        }
    return wb;
}

/* ---- one product on the device ---- */

typedef struct mm_case {
    uint32_t type, K, M, N;
    uint32_t x_off, x_pad;   /* x_stride = K + x_pad */
    uint32_t y_off, y_pad;   /* y_stride = M + y_pad */
    uint32_t flags;
} mm_case;

typedef struct mm_data {
    uint8_t *w;
    size_t w_bytes;
    float *x, *bias, *y0;      /* y0: Y before the product (NaN, or values to accumulate on) */
    size_t x_len, y_len;
    uint32_t x_stride, y_stride;
} mm_data;

static void make_data(const mm_case *c, mm_data *d)
{
    d->w = random_weights(c->type, c->K, c->M, &d->w_bytes);
    d->x_stride = c->K + c->x_pad;
    d->y_stride = c->M + c->y_pad;
    d->x_len = c->x_off + (size_t)d->x_stride * c->N;
    d->y_len = c->y_off + (size_t)d->y_stride * c->N;
    d->x = malloc(sizeof(float) * d->x_len);
    d->y0 = malloc(sizeof(float) * d->y_len);
    d->bias = malloc(sizeof(float) * (c->M + 5));
    assert_true(d->x && d->y0 && d->bias);
    for (size_t i = 0; i < d->x_len; i++)
        d->x[i] = rng_float();
    for (size_t i = 0; i < d->y_len; i++)
        d->y0[i] = (c->flags & VK_MM_ACCUMULATE) ? rng_float() : NAN;
    for (uint32_t i = 0; i < c->M + 5; i++)
        d->bias[i] = rng_float();
}

static void free_data(mm_data *d)
{
    free(d->w);
    free(d->x);
    free(d->y0);
    free(d->bias);
}

static vk_buffer *upload(fixture *f, const void *src, size_t n)
{
    vk_buffer *b = NULL;
    vk_status st = vk_buffer_create(f->ctx, n, &b);
    if (st)
        fail_msg("buffer of %zu bytes: %s", n, vk_ctx_errmsg(f->ctx));
    assert_int_equal(vk_buffer_upload(b, 0, src, n), VK_STATUS_OK);
    return b;
}

/* Records the given pushes (several dispatches: one product split in row ranges) and submits;
 * Y starts as d->y0 and comes back in y_out (d->y_len floats). */
/* W in the layout the kernels of f->ops read (vk_mm_pack_rows). */
static vk_buffer *upload_w(fixture *f, const mm_case *c, const mm_data *d)
{
    uint64_t row = vk_mm_row_bytes(&f->ops, c->type, c->K);
    size_t n = (size_t)((row * c->M + 3) / 4 * 4);
    uint8_t *packed = calloc(1, n);
    assert_non_null(packed);
    vk_mm_pack_rows(&f->ops, c->type, c->K, c->M, d->w, packed);
    vk_buffer *w = upload(f, packed, n);
    free(packed);
    return w;
}

static void run_device(fixture *f, const mm_case *c, const mm_data *d,
                       const vk_push_mul_mat *push, int n_push, float *y_out)
{
    vk_buffer *w = upload_w(f, c, d);
    vk_buffer *x = upload(f, d->x, sizeof(float) * d->x_len);
    vk_buffer *y = upload(f, d->y0, sizeof(float) * d->y_len);
    vk_buffer *b = upload(f, d->bias, sizeof(float) * (c->M + 5));
    assert_int_equal(vk_seq_begin(f->seq), VK_STATUS_OK);
    for (int i = 0; i < n_push; i++) {
        vk_status st = vk_op_mul_mat(&f->ops, f->seq, c->type, w, x, y, b, &push[i]);
        if (st)
            fail_msg("vk_op_mul_mat: %s: %s", vk_status_str(st), vk_ctx_errmsg(f->ctx));
    }
    assert_int_equal(vk_seq_end(f->seq), VK_STATUS_OK);
    vk_status st = vk_seq_submit(f->seq);
    if (st)
        fail_msg("submit: %s", vk_ctx_errmsg(f->ctx));
    assert_int_equal(vk_buffer_download(y, 0, y_out, sizeof(float) * d->y_len), VK_STATUS_OK);
    vk_buffer_free(b);
    vk_buffer_free(y);
    vk_buffer_free(x);
    vk_buffer_free(w);
    check_no_validation(f);
}

static vk_push_mul_mat whole_push(const mm_case *c, const mm_data *d)
{
    return (vk_push_mul_mat){ .K = c->K, .M = c->M, .N = c->N, .x_off = c->x_off,
                              .x_stride = d->x_stride, .y_off = c->y_off,
                              .y_stride = d->y_stride, .b_off = 3, .flags = c->flags };
}

/* ---- the reference ---- */

/* Y as the CPU computes it: decoded weights, sums in double. ref has d->y_len entries and
 * holds y0 outside the product's elements; mag (may be NULL) gets sum |w x| per element (0
 * outside), the scale of the rounding error an fp32 sum may make. */
static void reference(const mm_case *c, const mm_data *d, double *ref, double *mag)
{
    size_t row_bytes = eng_row_bytes(c->type, c->K);
    float *wr = malloc(sizeof(float) * c->K);
    assert_non_null(wr);
    for (size_t i = 0; i < d->y_len; i++) {
        ref[i] = d->y0[i];
        if (mag)
            mag[i] = 0;
    }
    for (uint32_t r = 0; r < c->M; r++) {
        assert_true(eng_dequantize_row(c->type, d->w + r * row_bytes, wr, c->K));
        for (uint32_t t = 0; t < c->N; t++) {
            const float *xt = d->x + c->x_off + (size_t)t * d->x_stride;
            double s = 0, m = 0;
            for (uint32_t k = 0; k < c->K; k++) {
                s += (double)wr[k] * xt[k];
                m += fabs((double)wr[k] * xt[k]);
            }
            if (c->flags & VK_MM_BIAS)
                s += d->bias[3 + r];
            size_t yi = c->y_off + (size_t)t * d->y_stride + r;
            if (mag) /* bias and the accumulated value add their own rounding */
                mag[yi] = m + fabs(s) + ((c->flags & VK_MM_ACCUMULATE) ? fabs(ref[yi]) : 0);
            ref[yi] = (c->flags & VK_MM_ACCUMULATE) ? ref[yi] + s : s;
        }
    }
    free(wr);
}

static double threshold(uint32_t type)
{
    return type == GGUF_T_F32 ? 1e-7 : type == GGUF_T_F16 ? 1e-5 : 1e-4;
}

static double worst_nmse[GGUF_T_COUNT], worst_rel[GGUF_T_COUNT];

/* Largest |gpu - ref| / sum |w x| allowed per element. An fp32 sum of K terms is off by about
 * sqrt(K) * 2^-24 of that (1e-5 would be K = 28000); a weight decoded wrong or skipped is off
 * by about 1 / K of it, so this catches one bad column in rows up to a few thousand long,
 * which the NMSE thresholds (an average over every output) would not. */
#define REL_TOL 1e-5

/* NMSE over the product's elements; every other element must still hold y0 bit for bit.
 * With mag, each element's error must also stay under REL_TOL * mag. */
static double compare(const mm_case *c, const mm_data *d, const float *got, const double *ref,
                      const double *mag)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < d->y_len; i++) {
        size_t rel = i >= c->y_off ? i - c->y_off : 0;
        int inside = i >= c->y_off && rel % d->y_stride < c->M && rel / d->y_stride < c->N;
        if (!inside) {
            if (memcmp(&got[i], &d->y0[i], sizeof(float)))
                fail_msg("%s K=%u M=%u N=%u: Y[%zu] outside the product was written (%g)",
                         gguf_type_get(c->type)->name, c->K, c->M, c->N, i, got[i]);
            continue;
        }
        double e = got[i] - ref[i];
        if (mag) {
            double q = fabs(e) / (mag[i] > 0 ? mag[i] : 1);
            if (!(q <= REL_TOL))
                fail_msg("%s K=%u M=%u N=%u flags=%u: row %zu token %zu is %.9g, want %.9g "
                         "(error %.3g of sum |w x|)", gguf_type_get(c->type)->name, c->K, c->M,
                         c->N, c->flags, rel % d->y_stride, rel / d->y_stride, got[i], ref[i],
                         q);
            if (q > worst_rel[c->type])
                worst_rel[c->type] = q;
        }
        num += e * e;
        den += ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

/* One case end to end: device vs reference, NMSE under the type's threshold. */
static void check_case(fixture *f, const mm_case *c)
{
    mm_data d;
    make_data(c, &d);
    float *got = malloc(sizeof(float) * d.y_len);
    double *ref = malloc(sizeof(double) * d.y_len), *mag = malloc(sizeof(double) * d.y_len);
    assert_true(got && ref && mag);
    vk_push_mul_mat p = whole_push(c, &d);
    run_device(f, c, &d, &p, 1, got);
    reference(c, &d, ref, mag);
    double nmse = compare(c, &d, got, ref, mag);
    const char *name = gguf_type_get(c->type)->name;
    if (!(nmse <= threshold(c->type)))
        fail_msg("%s K=%u M=%u N=%u flags=%u: NMSE %.3g over %.0e", name, c->K, c->M, c->N,
                 c->flags, nmse, threshold(c->type));
    if (nmse > worst_nmse[c->type])
        worst_nmse[c->type] = nmse;
    free(mag);
    free(ref);
    free(got);
    free_data(&d);
}

/* ---- tests ---- */

/* K in blocks (float types: 32-column groups plus a ragged tail), M, N: shapes that are not
 * multiples of any workgroup, rows of both 4-byte alignments (an odd number of 34-, 18-, 22-,
 * 110- or 210-byte blocks leaves every other row 2 bytes off), decode and batches. */
static const struct { uint32_t kb, M, N; } shapes[] = {
    { 1, 37, 1 }, { 2, 257, 3 }, { 3, 1000, 17 }, { 2, 37, 64 }, { 5, 257, 1 }, { 1, 1000, 64 },
};

static uint32_t case_k(uint32_t type, uint32_t kb)
{
    uint32_t be = gguf_type_get(type)->block_elems;
    return be == 1 ? 32 * kb + 5 : be * kb;
}

static void test_all_types_shapes(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < N_TYPES; i++) {
        assert_true(vk_ops_has_type(&f->ops, all_types[i]));
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            mm_case c = { .type = all_types[i], .K = case_k(all_types[i], shapes[s].kb),
                          .M = shapes[s].M, .N = shapes[s].N };
            check_case(f, &c);
        }
    }
    printf("# worst NMSE, worst |error| / sum |w x| per type:\n");
    for (size_t i = 0; i < N_TYPES; i++)
        printf("#   %-5s %.2g %.2g\n", gguf_type_get(all_types[i])->name,
               worst_nmse[all_types[i]], worst_rel[all_types[i]]);
}

/* Offsets and strides into larger X and Y buffers, bias, accumulate, both together. */
static void test_offsets_bias_accumulate(void **state)
{
    fixture *f = *state;
    static const uint32_t flag_sets[] = { VK_MM_BIAS, VK_MM_ACCUMULATE,
                                          VK_MM_BIAS | VK_MM_ACCUMULATE };
    for (size_t i = 0; i < N_TYPES; i++)
        for (size_t j = 0; j < 3; j++) {
            mm_case c = { .type = all_types[i], .K = case_k(all_types[i], 2), .M = 45,
                          .N = j == 1 ? 1 : 11, .x_off = 7, .x_pad = 3, .y_off = 5,
                          .y_pad = 6, .flags = flag_sets[j] };
            check_case(f, &c);
        }
}

/* A matrix computed in two row ranges (w_row0 / y_row0) equals one dispatch bit for bit. */
static void test_row_ranges(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < N_TYPES; i++)
        for (uint32_t N = 1; N <= 9; N += 8) {
            mm_case c = { .type = all_types[i], .K = case_k(all_types[i], 3), .M = 203, .N = N,
                          .y_off = 2, .y_pad = 1, .flags = VK_MM_BIAS };
            mm_data d;
            make_data(&c, &d);
            float *one = malloc(sizeof(float) * d.y_len), *two = malloc(sizeof(float) * d.y_len);
            assert_true(one && two);
            vk_push_mul_mat p = whole_push(&c, &d);
            run_device(f, &c, &d, &p, 1, one);
            vk_push_mul_mat halves[2] = { p, p };
            halves[0].M = 77;
            halves[1].M = c.M - 77;
            halves[1].w_row0 = halves[1].y_row0 = 77;
            halves[1].b_off = p.b_off + 77;
            run_device(f, &c, &d, halves, 2, two);
            for (size_t k = 0; k < d.y_len; k++)
                if (memcmp(&one[k], &two[k], sizeof(float)))
                    fail_msg("%s N=%u: Y[%zu] is %g in one dispatch, %g in two",
                             gguf_type_get(c.type)->name, N, k, one[k], two[k]);
            double *ref = malloc(sizeof(double) * d.y_len);
            assert_non_null(ref);
            reference(&c, &d, ref, NULL);
            assert_true(compare(&c, &d, one, ref, NULL) <= threshold(c.type));
            free(ref);
            free(one);
            free(two);
            free_data(&d);
        }
}

/* More row tiles than a grid row holds (maxComputeWorkGroupCount[0] is 65535 on most devices):
 * the tiles wrap into z, and every row is still computed once. */
static void test_many_rows(void **state)
{
    fixture *f = *state;
    mm_case c = { .type = GGUF_T_Q4_0, .K = 32, .M = 1100000, .N = 1 };
    check_case(f, &c);
}

/* A longer K (more items per row than lanes in any row group) in decode and a batch. */
static void test_long_rows(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < N_TYPES; i++) {
        mm_case c = { .type = all_types[i], .K = 4096 + (i < 2 ? 3 : 0), .M = 67, .N = 1 };
        check_case(f, &c);
        c.N = 20;
        check_case(f, &c);
    }
}

/* The work splits vk_ops_create_matmul picks for other devices, run here: the kernels are made
 * with explicit specialization constants (ids 0..7 as documented in shaders/mul_mat.glsl:
 * workgroup size, lanes per row group, rows per row group, tokens per invocation, subgroup size,
 * X broadcast, reduction, rows per row group when decoding) and dispatched with the grid
 * vk_op_mul_mat would compute for them. */
typedef struct split { uint32_t wg, lpr, rpg, nt, sgs, xbc, red, rpd; const char *what; } split;

static void check_split(fixture *f, const split *sp, const mm_case *c)
{
    static const char *names[GGUF_T_COUNT] = {
        [GGUF_T_F16] = "mul_mat_f16", [GGUF_T_Q8_0] = "mul_mat_q8_0",
        [GGUF_T_Q4_K] = "mul_mat_q4_k", [GGUF_T_Q6_K] = "mul_mat_q6_k",
        [GGUF_T_Q3_K] = "mul_mat_q3_k", [GGUF_T_Q4_1] = "mul_mat_q4_1",
    };
    uint32_t spec[8] = { sp->wg, sp->lpr, sp->rpg, sp->nt, sp->sgs, sp->xbc, sp->red, sp->rpd };
    vk_kernel *k = NULL;
    if (vk_kernel_create(f->ctx, names[c->type], 4, sizeof(vk_push_mul_mat), spec, 8, &k))
        fail_msg("%s: %s", sp->what, vk_ctx_errmsg(f->ctx));
    mm_data d;
    make_data(c, &d);
    float *got = malloc(sizeof(float) * d.y_len);
    double *ref = malloc(sizeof(double) * d.y_len), *mag = malloc(sizeof(double) * d.y_len);
    assert_true(got && ref && mag);
    vk_buffer *w = upload(f, d.w, d.w_bytes), *x = upload(f, d.x, sizeof(float) * d.x_len);
    vk_buffer *y = upload(f, d.y0, sizeof(float) * d.y_len);
    vk_buffer *b = upload(f, d.bias, sizeof(float) * (c->M + 5));
    vk_push_mul_mat p = whole_push(c, &d);
    uint32_t rows_per_wg = sp->wg / sp->lpr * (c->N == 1 ? sp->rpd : sp->rpg);
    uint32_t gy = c->N == 1 ? 1 : (c->N + sp->nt - 1) / sp->nt;
    vk_buffer *bufs[4] = { w, x, y, b };
    assert_int_equal(vk_seq_begin(f->seq), VK_STATUS_OK);
    assert_int_equal(vk_seq_dispatch(f->seq, k, bufs, &p, (c->M + rows_per_wg - 1) / rows_per_wg,
                                     gy, 1), VK_STATUS_OK);
    assert_int_equal(vk_seq_end(f->seq), VK_STATUS_OK);
    assert_int_equal(vk_seq_submit(f->seq), VK_STATUS_OK);
    assert_int_equal(vk_buffer_download(y, 0, got, sizeof(float) * d.y_len), VK_STATUS_OK);
    reference(c, &d, ref, mag);
    double nmse = compare(c, &d, got, ref, mag);
    if (!(nmse <= threshold(c->type)))
        fail_msg("%s, %s K=%u M=%u N=%u: NMSE %.3g", sp->what, gguf_type_get(c->type)->name,
                 c->K, c->M, c->N, nmse);
    vk_buffer_free(b);
    vk_buffer_free(y);
    vk_buffer_free(x);
    vk_buffer_free(w);
    vk_kernel_free(k);
    free(mag);
    free(ref);
    free(got);
    free_data(&d);
    check_no_validation(f);
}

static void test_other_work_splits(void **state)
{
    fixture *f = *state;
    uint32_t sg = vk_ctx_device_info(f->ctx, vk_ctx_choice(f->ctx)->index)->subgroup_size;
    if (!sg)
        sg = 32;
    const split splits[] = {
        { 4 * sg, sg, 2, 4, sg, 0, 1, 2, "subgroup per row group, subgroupAdd" },
        { 4 * sg, 2 * sg, 1, 2, sg, 0, 2, 3, "two subgroups per row group, shared memory" },
        { 2 * sg, sg / 2, 2, 3, sg, 0, 1, 1, "subgroupAdd asked for, subgroup != row group" },
        { sg, 1, 3, 3, sg, 0, 0, 5, "invocation per row, X loaded by every lane" },
    };
    /* two types per split (each pipeline costs lavapipe seconds to compile): a 32-element
     * block type and a K type, every split a different pair */
    static const uint32_t types[4][2] = { { GGUF_T_F16, GGUF_T_Q4_K },
                                          { GGUF_T_Q8_0, GGUF_T_Q6_K },
                                          { GGUF_T_Q4_1, GGUF_T_Q3_K },
                                          { GGUF_T_Q8_0, GGUF_T_Q6_K } };
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++)
        for (size_t j = 0; j < 2; j++) {
            uint32_t type = types[i][j];
            mm_case c = { .type = type, .K = case_k(type, 3), .M = 75, .N = 1, .x_off = 1,
                          .y_off = 2, .y_pad = 3, .flags = VK_MM_BIAS };
            check_split(f, &splits[i], &c);
            c.N = 7;
            c.flags = VK_MM_ACCUMULATE;
            check_split(f, &splits[i], &c);
        }
}

/* On a CPU device every type has a texel-buffer kernel and Q4_0/Q5_0/Q8_0/Q4_K/Q5_K an RGBA32 one (what
 * the tests above ran); with those switched off, the texel kernels on GGUF rows and then the
 * storage-buffer kernels with the same work split (used where a weight buffer has no texel
 * view, and on GPUs) give the same products. */
static void test_storage_and_texel_kernels(void **state)
{
    fixture *f = *state;
    const vk_device_info *d = vk_ctx_device_info(f->ctx, vk_ctx_choice(f->ctx)->index);
    bool cpu = d->type == VK_DEVTYPE_CPU;
    for (size_t i = 0; i < N_TYPES; i++) {
        uint32_t t = all_types[i];
        bool packed = t == GGUF_T_Q4_0 || t == GGUF_T_Q5_0 || t == GGUF_T_Q8_0 ||
                      t == GGUF_T_Q4_K || t == GGUF_T_Q5_K;
        if (!f->ops.mul_mat_tex[t] != !cpu || !f->ops.mul_mat_t4[t] != !(cpu && packed))
            fail_msg("%s on a %s: texel kernel %s, packed kernel %s", gguf_type_get(t)->name,
                     vk_device_type_str(d->type), f->ops.mul_mat_tex[t] ? "yes" : "no",
                     f->ops.mul_mat_t4[t] ? "yes" : "no");
    }
    vk_kernel *tex[GGUF_T_COUNT], *t4[GGUF_T_COUNT];
    memcpy(tex, f->ops.mul_mat_tex, sizeof tex);
    memcpy(t4, f->ops.mul_mat_t4, sizeof t4);
    for (int variant = 0; variant < 2; variant++) {
        memset(f->ops.mul_mat_t4, 0, sizeof f->ops.mul_mat_t4);
        if (variant == 1)
            memset(f->ops.mul_mat_tex, 0, sizeof f->ops.mul_mat_tex);
        for (size_t i = 0; i < N_TYPES; i++) {
            mm_case c = { .type = all_types[i], .K = case_k(all_types[i], 2), .M = 37, .N = 1,
                          .x_off = 3, .y_off = 1, .flags = VK_MM_BIAS };
            check_case(f, &c);
            c.N = 6;
            check_case(f, &c);
        }
    }
    memcpy(f->ops.mul_mat_tex, tex, sizeof tex);
    memcpy(f->ops.mul_mat_t4, t4, sizeof t4);
}

/* Packed rows: the scales first, padded to 16 bytes, then each block's quant bytes. */
static void test_packed_layout(void **state)
{
    fixture *f = *state;
    if (!f->ops.mul_mat_t4[GGUF_T_Q8_0])
        skip(); /* GPUs read GGUF rows; nothing is packed there */
    uint8_t src[2 * 3 * 34], dst[2 * 144];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(vk_mm_row_bytes(&f->ops, GGUF_T_Q8_0, 96), 16 + 96);
    assert_int_equal(vk_mm_row_bytes(&f->ops, GGUF_T_Q4_0, 96), 16 + 48);
    assert_int_equal(vk_mm_row_bytes(&f->ops, GGUF_T_Q4_0, 288), 32 + 144);
    assert_int_equal(vk_mm_row_bytes(&f->ops, GGUF_T_Q6_K, 256), 210);
    assert_int_equal(vk_mm_row_bytes(&f->ops, GGUF_T_Q4_K, 512), 288); /* not packed */
    assert_int_equal(vk_mm_row_bytes(&f->ops, GGUF_T_Q5_0, 96), 16 + 16 + 48);
    assert_int_equal(vk_mm_row_bytes(&f->ops, GGUF_T_Q5_0, 160), 16 + 32 + 80);
    memset(dst, 0xee, sizeof dst);
    vk_mm_pack_rows(&f->ops, GGUF_T_Q8_0, 96, 2, src, dst);
    for (int r = 0; r < 2; r++) {
        const uint8_t *row = dst + r * 112, *in = src + r * 102;
        for (int b = 0; b < 3; b++) {
            assert_memory_equal(row + 2 * b, in + 34 * b, 2);
            assert_memory_equal(row + 16 + 32 * b, in + 34 * b + 2, 32);
        }
        for (int i = 6; i < 16; i++)
            assert_int_equal(row[i], 0);
    }
}

/* Bad arguments come back as errors naming the values, and record nothing. */
static void test_argument_errors(void **state)
{
    fixture *f = *state;
    /* GGUF rows, so the byte counts below are Q8_0's own (packed rows are longer) */
    vk_kernel *t4[GGUF_T_COUNT];
    memcpy(t4, f->ops.mul_mat_t4, sizeof t4);
    memset(f->ops.mul_mat_t4, 0, sizeof f->ops.mul_mat_t4);
    uint8_t zeros[4096] = { 0 };
    vk_buffer *w = upload(f, zeros, 34 * 4);   /* 4 rows of one Q8_0 block */
    vk_buffer *w34 = upload(f, zeros, 34);     /* 1 row, not a whole number of words */
    vk_buffer *x = upload(f, zeros, 4 * 64);
    vk_buffer *y = upload(f, zeros, 4 * 8);
    vk_push_mul_mat ok = { .K = 32, .M = 4, .N = 2, .x_stride = 32, .y_stride = 4 };
    struct { vk_push_mul_mat p; uint32_t type; vk_status st; const char *msg; } bad[] = {
        { ok, GGUF_T_Q8_0, VK_STATUS_OK, NULL },
        { ok, GGUF_T_Q8_0, VK_STATUS_BAD_ARG, "K=48 is not a multiple of the block size 32" },
        { ok, GGUF_T_Q8_0, VK_STATUS_BAD_ARG, "need 172 bytes (rounded up to whole 4-byte "
                                              "words), the buffer has 136" },
        { ok, GGUF_T_Q8_0, VK_STATUS_BAD_ARG, "need 36 bytes (rounded" },
        { ok, GGUF_T_Q8_0, VK_STATUS_BAD_ARG, "X needs floats up to 96" },
        { ok, GGUF_T_Q8_0, VK_STATUS_BAD_ARG, "Y needs floats up to 9" },
        { ok, GGUF_T_Q8_0, VK_STATUS_BAD_ARG, "bias needs floats up to 65" },
        { ok, GGUF_T_Q8_0, VK_STATUS_BAD_ARG, "empty product" },
        { ok, GGUF_T_Q8_0, VK_STATUS_BAD_ARG, "unknown flags 0x10" },
        { ok, GGUF_T_Q8_0, VK_STATUS_BAD_ARG, "K=2097152 exceeds 2097120" },
        { ok, GGUF_T_BF16, VK_STATUS_UNSUPPORTED, "no matrix kernel for type 30 (BF16)" },
        { ok, 77, VK_STATUS_UNSUPPORTED, "no matrix kernel for type 77" },
    };
    bad[1].p.K = 48;
    bad[2].p.w_row0 = 1;
    bad[3].p.M = 1; /* in w34: the row ends at byte 34, its last word at byte 36 */
    bad[4].p.x_stride = 64;
    bad[5].p.y_off = 1;
    bad[6].p.flags = VK_MM_BIAS;
    bad[6].p.b_off = 61; /* bias = X (64 floats) */
    bad[7].p.N = 0;
    bad[8].p.flags = 0x10;
    bad[9].p.K = 1u << 21;
    assert_int_equal(vk_seq_begin(f->seq), VK_STATUS_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vk_buffer *bias = bad[i].p.flags & VK_MM_BIAS ? x : NULL;
        vk_status st = vk_op_mul_mat(&f->ops, f->seq, bad[i].type, i == 3 ? w34 : w, x, y, bias,
                                     &bad[i].p);
        if (st != bad[i].st)
            fail_msg("case %zu: status %s, want %s (%s)", i, vk_status_str(st),
                     vk_status_str(bad[i].st), vk_ctx_errmsg(f->ctx));
        if (bad[i].msg && !strstr(vk_ctx_errmsg(f->ctx), bad[i].msg))
            fail_msg("case %zu: message '%s' lacks '%s'", i, vk_ctx_errmsg(f->ctx), bad[i].msg);
    }
    assert_int_equal(vk_seq_dispatch_count(f->seq), 1); /* only the valid one */
    assert_int_equal(vk_seq_end(f->seq), VK_STATUS_OK);
    assert_int_equal(vk_seq_submit(f->seq), VK_STATUS_OK);
    vk_buffer_free(y);
    vk_buffer_free(x);
    vk_buffer_free(w34);
    vk_buffer_free(w);
    memcpy(f->ops.mul_mat_t4, t4, sizeof t4);
    check_no_validation(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_types_shapes),
        cmocka_unit_test(test_offsets_bias_accumulate),
        cmocka_unit_test(test_row_ranges),
        cmocka_unit_test(test_long_rows),
        cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_other_work_splits),
        cmocka_unit_test(test_storage_and_texel_kernels),
        cmocka_unit_test(test_packed_layout),
        cmocka_unit_test(test_argument_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
