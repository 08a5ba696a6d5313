/* Tests for the forward-pass kernels (engine/vk_ops.c; shaders rms_norm, rope, kv_store, attn,
 * swiglu, add, argmax) against plain-C references, on whatever Vulkan device the machine has
 * (lavapipe on CI); they do not skip.
 *
 * Every run draws fresh random data from a seed taken from the clock and printed first
 * (SIZEUP_TEST_SEED=N repeats a run). Every output buffer is poisoned (all bytes 0xff: NaN as
 * f32 and as f16) before its dispatch, so an element a kernel forgot shows up, and the
 * elements it must not touch (gaps between strided rows, cache rows of other positions) are
 * checked to still hold the poison. Results are judged by normalised mean squared error,
 * NMSE = sum((gpu - ref)^2) / sum(ref^2), against references computed in double:
 *     rms_norm, rope, swiglu                       1e-7  float32 arithmetic
 *     attention over a given f16 cache             1e-7  both sides read the same halves
 *     rope + cache store + attention, end to end   1e-5  keys rounded to f16 on each side
 *     add, argmax, kv_store, rope's cache rows     exact, bit for bit (rope's against the f16 of
 *                                                  its own float output)
 * The worst NMSE seen for each op is printed at the end. The reducing kernels (rms_norm,
 * attn, argmax) also run in every reduction mode of shaders/reduce.glsl, not only the one this
 * device is given, by swapping the kernel in struct vk_ops for one specialised here; for
 * attention that covers both algorithms of shaders/attn.glsl (streams with one or several
 * subgroups and one or several query heads per workgroup, tiles, and the fallback from streams
 * to tiles), besides the shape-specialised kernel vk_op_attn picks by itself.
 * Under the validation layer (SIZEUP_VK_VALIDATE=1) any validation message fails the test.
 */
#include "tests/testutil.h"

#include <math.h>
#include <pthread.h>
#include <time.h>

#include "engine/quant.h"
#include "engine/vk.h"
#include "engine/vk_ops.h"

/* ---- environment: one context, kernel set and sequence for the whole group ---- */

static vk_ctx *g_ctx;
static vk_ops *g_ops;
static vk_seq *g_seq;
static uint64_t g_rng;

#define OK(expr)                                                                           \
    do {                                                                                   \
        vk_status st_ = (expr);                                                            \
        if (st_)                                                                           \
            fail_msg("%s: %s: %s", #expr, vk_status_str(st_), vk_ctx_errmsg(g_ctx));       \
    } while (0)

static uint64_t rnd_u64(void)
{
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi) */
static float rnd_f(float lo, float hi)
{
    return lo + (hi - lo) * (float)((rnd_u64() >> 40) * (1.0 / 16777216.0));
}

static float *rnd_vec(size_t n, float lo, float hi)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = rnd_f(lo, hi);
    return v;
}

static void check_validation(void)
{
    unsigned n = vk_ctx_validation_count(g_ctx);
    if (n)
        fail_msg("%u validation messages, first: %s", n, vk_ctx_validation_first(g_ctx));
}

static int group_setup(void **state)
{
    (void)state;
    g_rng = random_seed("test_vk_ops");
    char err[1024] = "";
    vk_open_opts opts;
    memset(&opts, 0, sizeof opts);
    vk_status st = vk_ctx_open(&opts, &g_ctx, err, sizeof err);
    if (st) {
        fprintf(stderr, "vk_ctx_open: %s: %s\n", vk_status_str(st), err);
        return -1;
    }
    if ((st = vk_ctx_start_device(g_ctx)) || (st = vk_ops_new(g_ctx, &g_ops)) ||
        (st = vk_seq_new(g_ctx, 16, &g_seq))) {
        fprintf(stderr, "set-up: %s: %s\n", vk_status_str(st), vk_ctx_errmsg(g_ctx));
        return -1;
    }
    const vk_device_info *d = vk_ctx_device_info(g_ctx, vk_ctx_choice(g_ctx)->index);
    printf("[ vk_ops ] device %s, subgroup size %u, validation %s\n", d->name,
           g_ops->subgroup_size, vk_ctx_validation_enabled(g_ctx) ? "on" : "off");
    return 0;
}

/* ---- worst NMSE per op, printed by the group teardown ---- */

enum { ST_NORM, ST_ROPE, ST_ATTN, ST_CHAIN, ST_SWIGLU, ST_COUNT };
static const char *const st_name[ST_COUNT] = { "rms_norm", "rope", "attn (given f16 cache)",
                                               "rope+store+attn", "swiglu" };
static const double st_limit[ST_COUNT] = { 1e-7, 1e-7, 1e-7, 1e-5, 1e-7 };
static double st_worst[ST_COUNT];
static unsigned st_cases[ST_COUNT];

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < ST_COUNT; i++)
        printf("[ vk_ops ] %-24s worst NMSE %.3g over %u checks (limit %.0e)\n", st_name[i],
               st_worst[i], st_cases[i], st_limit[i]);
    unsigned n = vk_ctx_validation_count(g_ctx);
    if (n)
        fprintf(stderr, "%u validation messages, first: %s\n", n,
                vk_ctx_validation_first(g_ctx));
    vk_seq_free(g_seq);
    vk_ops_free(g_ops);
    vk_ctx_close(g_ctx);
    return n ? -1 : 0;
}

/* got (n floats) against want; every element must be finite (the poison is NaN). */
static void judge(int which, const char *what, const float *got, const double *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]))
            fail_msg("%s: element %zu is %g (want %g)", what, i, (double)got[i], want[i]);
        double d = got[i] - want[i];
        num += d * d;
        den += want[i] * want[i];
    }
    double e = den > 0 ? num / den : num;
    st_cases[which]++;
    if (e > st_worst[which])
        st_worst[which] = e;
    if (!(e <= st_limit[which]))
        fail_msg("%s: NMSE %.3g over the limit %.0e", what, e, st_limit[which]);
}

/* ---- buffers ---- */

static vk_buffer *buf_new(size_t bytes)
{
    vk_buffer *b = NULL;
    OK(vk_buffer_create(g_ctx, bytes, &b));
    return b;
}

static void buf_poison(vk_buffer *b)
{
    size_t n = vk_buffer_size(b);
    void *p = malloc(n);
    assert_non_null(p);
    memset(p, 0xff, n);
    OK(vk_buffer_upload(b, 0, p, n));
    free(p);
}

static vk_buffer *buf_from(const void *src, size_t bytes)
{
    vk_buffer *b = buf_new(bytes);
    OK(vk_buffer_upload(b, 0, src, bytes));
    return b;
}

static vk_buffer *buf_poisoned(size_t bytes)
{
    vk_buffer *b = buf_new(bytes);
    buf_poison(b);
    return b;
}

static void *buf_read(vk_buffer *b)
{
    size_t n = vk_buffer_size(b);
    void *p = malloc(n);
    assert_non_null(p);
    OK(vk_buffer_download(b, 0, p, n));
    return p;
}

static void set_step(vk_buffer *step, uint32_t pos, uint32_t n_tokens)
{
    uint32_t v[2] = { pos, n_tokens };
    OK(vk_buffer_upload(step, 0, v, sizeof v));
}

static void seq_begin(void) { OK(vk_seq_begin(g_seq)); }

static void seq_end_run(void)
{
    OK(vk_seq_end(g_seq));
    OK(vk_seq_submit(g_seq));
}

/* Elements of a 32-bit buffer outside [written] must still hold the poison. */
static void check_untouched(const char *what, const uint32_t *bits, const bool *written,
                            size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!written[i] && bits[i] != 0xffffffffu)
            fail_msg("%s: element %zu outside the operand was overwritten (0x%08x)", what, i,
                     bits[i]);
}

/* Marks rows of n elements from off, stride apart, in a mask of len elements. */
static bool *row_mask(size_t len, size_t off, size_t stride, size_t rows, size_t n)
{
    bool *m = calloc(len, sizeof *m);
    assert_non_null(m);
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < n; i++)
            m[off + r * stride + i] = true;
    return m;
}

/* A kernel of the set replaced by one with other specialization constants, to run the shader
 * variants and reduction modes this device would not pick (mirror of the spec constants in
 * engine/vk_ops.c: 0 = workgroup size, 1 = reduction mode, 2 = attention tile, 3 = query heads
 * per attention workgroup, 4 and 5 = key and value words per invocation; kernels ignore the
 * ones they do not declare). */
enum { RED_SHARED = 0, RED_SUBGROUP = 1, RED_ONE_SG = 2 };
typedef struct variant {
    const char *shader;
    uint32_t spec[6];
} variant;

static vk_kernel *swap_kernel(vk_kernel **slot, const variant *v, uint32_t n_buffers,
                              uint32_t push_size)
{
    vk_kernel *saved = *slot, *k = NULL;
    OK(vk_kernel_create(g_ctx, v->shader, n_buffers, push_size, v->spec, 6, &k));
    *slot = k;
    return saved;
}

static void restore_kernel(vk_kernel **slot, vk_kernel *saved)
{
    vk_kernel_free(*slot);
    *slot = saved;
}

/* The modes every reducing kernel runs in: this device's own pick first (no shader: no swap),
 * then one subgroup, several subgroups, the shared-memory tree, and the _shmem variant; for
 * attention also streams over several query heads (chunks of 3, and 8 wider than any group),
 * several subgroups merged per head, and words too few for a row (the fallback to tiles). */
static int variants_for(const char *base, variant *out)
{
    static char shmem[64]; /* used before the next call */
    snprintf(shmem, sizeof shmem, "%s_shmem", base);
    uint32_t sg = g_ops->subgroup_size, wide = sg ? 128 / sg : 16;
    int n = 0;
    out[n++] = (variant){ NULL, { 0 } };
    if (sg >= 4 && (sg & (sg - 1)) == 0) {
        out[n++] = (variant){ base, { sg, RED_ONE_SG, 16, 1, wide, wide } };
        if (!strcmp(base, "attn")) {
            out[n++] = (variant){ base, { sg, RED_ONE_SG, 16, 3, wide, wide } };
            out[n++] = (variant){ base, { sg, RED_ONE_SG, 16, 8, wide, wide } };
            out[n++] = (variant){ base, { sg, RED_ONE_SG, 16, 2, 1, 1 } };
        }
    }
    out[n++] = (variant){ base, { 64, RED_SUBGROUP, 128, 1, wide, wide } };
    if (!strcmp(base, "attn"))
        out[n++] = (variant){ base, { 64, RED_SUBGROUP, 128, 3, wide, wide } };
    out[n++] = (variant){ base, { 32, RED_SHARED, 32, 1, 1, 1 } };
    out[n++] = (variant){ shmem, { 128, RED_SHARED, 256, 1, 1, 1 } };
    out[n++] = (variant){ shmem, { 8, RED_SHARED, 8, 1, 1, 1 } };
    return n;
}

static void print_variant(const char *op, const variant *v)
{
    if (v->shader)
        printf("[ vk_ops ] %s as %s: workgroup %u, mode %u, tile %u, heads %u, words %u/%u\n",
               op, v->shader, v->spec[0], v->spec[1], v->spec[2], v->spec[3], v->spec[4],
               v->spec[5]);
}

/* ---- rms_norm ---- */

typedef struct norm_case {
    uint32_t n, rows, x_off, x_stride, y_off, y_stride, w_off;
    bool in_place;
} norm_case;

static void run_norm_case(const norm_case *c)
{
    size_t xn = c->x_off + (size_t)(c->rows - 1) * c->x_stride + c->n + 3;
    size_t yn = c->y_off + (size_t)(c->rows - 1) * c->y_stride + c->n + 2;
    size_t wn = c->w_off + c->n;
    float *x = rnd_vec(xn, -2, 2), *w = rnd_vec(wn, 0.5f, 1.5f);
    float eps = 1e-5f;
    vk_buffer *bx = buf_from(x, xn * 4), *bw = buf_from(w, wn * 4);
    vk_buffer *by = c->in_place ? bx : buf_poisoned(yn * 4);
    vk_push_rms_norm p = { c->n, c->rows, c->x_off, c->x_stride,
                           c->in_place ? c->x_off : c->y_off,
                           c->in_place ? c->x_stride : c->y_stride, c->w_off, eps };
    seq_begin();
    OK(vk_op_rms_norm(g_ops, g_seq, bx, bw, by, &p));
    seq_end_run();
    float *y = buf_read(by);
    size_t ylen = vk_buffer_size(by) / 4;
    double *want = malloc(c->n * sizeof *want);
    float *got = malloc(c->n * sizeof *got);
    char what[128];
    for (uint32_t r = 0; r < c->rows; r++) {
        const float *xr = x + c->x_off + (size_t)r * c->x_stride;
        double ss = 0;
        for (uint32_t i = 0; i < c->n; i++)
            ss += (double)xr[i] * xr[i];
        double s = 1.0 / sqrt(ss / c->n + eps);
        for (uint32_t i = 0; i < c->n; i++) {
            want[i] = xr[i] * s * w[c->w_off + i];
            got[i] = y[p.y_off + (size_t)r * p.y_stride + i];
        }
        snprintf(what, sizeof what, "rms_norm n %u rows %u: row %u", c->n, c->rows, r);
        judge(ST_NORM, what, got, want, c->n);
    }
    bool *m = row_mask(ylen, p.y_off, p.y_stride, c->rows, c->n);
    if (c->in_place) { /* the gaps still hold x */
        for (size_t i = 0; i < ylen; i++)
            if (!m[i] && memcmp(&y[i], &x[i], 4))
                fail_msg("rms_norm in place: element %zu outside the rows changed", i);
    } else {
        check_untouched("rms_norm y", (const uint32_t *)y, m, ylen);
    }
    free(m), free(got), free(want), free(y), free(x), free(w);
    if (by != bx)
        vk_buffer_free(by);
    vk_buffer_free(bx);
    vk_buffer_free(bw);
}

static const norm_case norm_cases[] = {
    { 1, 1, 0, 1, 0, 1, 0, false },
    { 7, 3, 2, 9, 1, 8, 3, false },
    { 100, 5, 3, 128, 1, 100, 0, false },
    { 576, 1, 0, 576, 0, 576, 0, false },
    { 896, 4, 0, 896, 0, 896, 0, true },
    { 4097, 2, 5, 4100, 0, 4097, 7, false },
    { 64, 14 * 3, 0, 64, 0, 64, 0, true },   /* per-head norm of 3 tokens x 14 heads */
    { 128, 9, 17, 130, 3, 131, 128, false },
};

static void test_rms_norm(void **state)
{
    (void)state;
    variant v[12];
    int nv = variants_for("rms_norm", v);
    for (int k = 0; k < nv; k++) {
        vk_kernel *saved = v[k].shader ? swap_kernel(&g_ops->rms_norm, &v[k], 3,
                                                     sizeof(vk_push_rms_norm)) : NULL;
        print_variant("rms_norm", &v[k]);
        for (size_t i = 0; i < sizeof norm_cases / sizeof *norm_cases; i++)
            run_norm_case(&norm_cases[i]);
        if (v[k].shader)
            restore_kernel(&g_ops->rms_norm, saved);
    }
    /* more rows than one grid axis holds (65535 on lavapipe): the grid wraps into y */
    norm_case many = { 8, 70001, 0, 8, 0, 8, 0, false };
    run_norm_case(&many);
    check_validation();
}

/* ---- rope ---- */

typedef struct rope_case {
    uint32_t n_heads, head_dim, n_rot, flags, n_tokens;
    float base, scale;
    uint32_t x_off, x_pad, cache_off;
} rope_case;

/* The CPU's angles (engine/cpu_forward.c rope_setup): inverse frequency rounded to float, the
 * product with the position exact. */
static void rope_ref(const rope_case *c, const float *factors, uint32_t pos, const float *in,
                     double *out)
{
    uint32_t half = c->n_rot / 2;
    for (uint32_t i = 0; i < c->head_dim; i++)
        out[i] = in[i];
    for (uint32_t i = 0; i < half; i++) {
        double inv = c->scale * pow(c->base, -2.0 * i / c->n_rot);
        if (c->flags & VK_ROPE_FACTORS)
            inv /= factors[i];
        double th = (double)pos * (float)inv;
        uint32_t a = (c->flags & VK_ROPE_NEOX) ? i : 2 * i;
        uint32_t b = (c->flags & VK_ROPE_NEOX) ? i + half : 2 * i + 1;
        out[a] = in[a] * cos(th) - in[b] * sin(th);
        out[b] = in[a] * sin(th) + in[b] * cos(th);
    }
}

/* One batch at pos0 through an already recorded rope dispatch; checks x and the cache. */
static void rope_batch(const rope_case *c, const float *factors, vk_buffer *bx, vk_buffer *bc,
                       vk_buffer *step, uint32_t n_ctx, uint32_t pos0)
{
    uint32_t width = c->n_heads * c->head_dim, stride = width + c->x_pad;
    size_t xn = vk_buffer_size(bx) / 4;
    float *x = rnd_vec(xn, -1, 1);
    OK(vk_buffer_upload(bx, 0, x, xn * 4));
    buf_poison(bc);
    set_step(step, pos0, c->n_tokens);
    OK(vk_seq_submit(g_seq));
    float *y = buf_read(bx);
    uint16_t *cache = buf_read(bc);
    double *want = malloc(width * sizeof *want);
    float *got = malloc(width * sizeof *got);
    char what[160];
    for (uint32_t t = 0; t < c->n_tokens; t++) {
        size_t xb = c->x_off + (size_t)t * stride;
        for (uint32_t h = 0; h < c->n_heads; h++)
            rope_ref(c, factors, pos0 + t, x + xb + h * c->head_dim, want + h * c->head_dim);
        memcpy(got, y + xb, width * sizeof *got);
        snprintf(what, sizeof what, "rope heads %u dim %u rot %u flags %u pos %u token %u",
                 c->n_heads, c->head_dim, c->n_rot, c->flags, pos0, t);
        judge(ST_ROPE, what, got, want, width);
        for (uint32_t h = 0; h < c->n_heads; h++) /* dims past n_rot: untouched */
            for (uint32_t i = c->n_rot; i < c->head_dim; i++)
                if (memcmp(&y[xb + h * c->head_dim + i], &x[xb + h * c->head_dim + i], 4))
                    fail_msg("%s: dim %u of head %u (past n_rot) changed", what, i, h);
    }
    for (size_t i = 0; i < xn; i++) { /* gaps between token rows: untouched */
        size_t rel = i - c->x_off;
        if ((i < c->x_off || rel % stride >= width || rel / stride >= c->n_tokens) &&
            memcmp(&y[i], &x[i], 4))
            fail_msg("rope: x element %zu outside the tokens changed", i);
    }
    /* the cache holds exactly the f16 of the rotated x in rows pos0.., poison elsewhere */
    size_t cn = vk_buffer_size(bc) / 2;
    for (size_t i = 0; i < cn; i++) {
        uint16_t expect = 0xffff;
        if (i >= c->cache_off && (c->flags & VK_ROPE_STORE)) {
            size_t row = (i - c->cache_off) / width, col = (i - c->cache_off) % width;
            if (row >= pos0 && row < pos0 + c->n_tokens && row < n_ctx)
                expect = eng_f32_to_f16(y[c->x_off + (row - pos0) * stride + col]);
        }
        if (cache[i] != expect)
            fail_msg("rope pos %u: cache half %zu is 0x%04x, want 0x%04x", pos0, i, cache[i],
                     expect);
    }
    free(got), free(want), free(cache), free(y), free(x);
}

static void run_rope_case(const rope_case *c, const uint32_t *positions, int n_pos)
{
    uint32_t width = c->n_heads * c->head_dim, stride = width + c->x_pad, n_ctx = 0;
    for (int i = 0; i < n_pos; i++)
        if (positions[i] + c->n_tokens > n_ctx)
            n_ctx = positions[i] + c->n_tokens;
    n_ctx += 2; /* rows nobody writes */
    size_t xn = c->x_off + (size_t)(c->n_tokens - 1) * stride + width + 5;
    float *factors = rnd_vec(c->n_rot / 2 + 1, 0.5f, 4.0f);
    vk_buffer *bx = buf_new(xn * 4), *bf = buf_from(factors, (c->n_rot / 2 + 1) * 4);
    vk_buffer *bc = buf_new(((size_t)c->cache_off + (size_t)n_ctx * width + 6) * 2);
    vk_buffer *step = buf_new(8);
    vk_push_rope p = { c->n_heads, c->head_dim, c->n_rot, c->x_off, stride, c->cache_off,
                       c->flags, c->base, c->scale, { 0, 0, 0 } };
    seq_begin();
    OK(vk_op_rope(g_ops, g_seq, bx, bf, step, bc, c->n_tokens, &p));
    OK(vk_seq_end(g_seq));
    for (int i = 0; i < n_pos; i++) /* one recording replayed at each position */
        rope_batch(c, factors, bx, bc, step, n_ctx, positions[i]);
    vk_buffer_free(step);
    vk_buffer_free(bc);
    vk_buffer_free(bf);
    vk_buffer_free(bx);
    free(factors);
}

static void test_rope(void **state)
{
    (void)state;
    enum { N = VK_ROPE_NEOX, F = VK_ROPE_FACTORS, S = VK_ROPE_STORE };
    static const rope_case cases[] = {
        { 1, 8, 8, 0, 1, 10000, 1, 0, 0, 0 },
        { 1, 8, 8, S, 1, 10000, 1, 3, 0, 4 },
        { 14, 64, 64, N | S, 3, 1e6f, 1, 0, 0, 0 },
        { 9, 64, 64, S, 7, 10000, 1, 5, 3, 2 },
        { 2, 128, 128, N | F, 2, 500000, 1, 0, 4, 0 },
        { 3, 16, 8, S, 4, 10000, 0.25f, 1, 0, 0 },       /* partial: dims 8..15 copied */
        { 5, 16, 12, N | S, 2, 10000, 1, 0, 1, 6 },      /* NeoX, n_rot/2 even, partial */
        { 4, 8, 6, N | S, 3, 10000, 1, 2, 0, 0 },        /* NeoX, n_rot/2 odd: chained */
        { 7, 64, 32, N | F | S, 2, 10000, 0.5f, 0, 0, 8 },
        { 2, 128, 128, F | S, 1, 1e6f, 1, 0, 0, 0 },
        { 3, 256, 256, N | S, 1, 10000, 1, 0, 0, 0 },
    };
    static const uint32_t positions[] = { 0, 37, 700, 5000, 8190 };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_rope_case(&cases[i], positions, 5);
    check_validation();
}

/* ---- kv_store ---- */

/* Values where rounding to f16 is delicate: ties, overflow, subnormals, NaN payloads. */
static void fill_f16_edges(float *x, size_t n)
{
    static const uint32_t bits[] = {
        0x00000000u, 0x80000000u, 0x477fe000u /* 65504 */, 0x477fefffu /* just below 65520 */,
        0x477ff000u /* 65520: tie -> inf */, 0x4e6e6b28u /* 1e9 */, 0x7f800000u, 0xff800000u,
        0x7fc12345u /* NaN with payload */, 0xffa00001u /* signalling NaN */,
        0x33800000u /* 2^-24: smallest subnormal */, 0x33000000u /* 2^-25: tie -> 0 */,
        0x33400000u /* 1.5 * 2^-25 -> 2^-24 */, 0x34400000u /* 3 * 2^-25: tie -> 2 units */,
        0x38800000u /* 2^-14: smallest normal */, 0x387fe000u /* just under it */,
        0x387ff000u /* tie between the largest subnormal and 2^-14 */,
        0x3f801000u /* 1 + 2^-11: tie -> 1 */, 0x3f803000u /* 1 + 3 * 2^-11: tie -> up */,
        0x00000001u /* f32 subnormal */, 0xb3800001u, 0x3f7fffffu,
    };
    for (size_t i = 0; i < n && i < sizeof bits / sizeof *bits; i++)
        memcpy(&x[i], &bits[i], 4);
}

static void run_kv_store_case(uint32_t n, uint32_t n_tokens, uint32_t x_off, uint32_t x_pad,
                              uint32_t cache_off)
{
    static const uint32_t positions[] = { 0, 1, 37, 700 };
    uint32_t stride = n + x_pad, n_ctx = 700 + n_tokens + 2;
    size_t xn = x_off + (size_t)(n_tokens - 1) * stride + n + 1;
    size_t cn = cache_off + (size_t)n_ctx * n + 4;
    vk_buffer *bx = buf_new(xn * 4), *bc = buf_new(cn * 2), *step = buf_new(8);
    vk_push_kv_store p = { n, x_off, stride, cache_off };
    seq_begin();
    OK(vk_op_kv_store(g_ops, g_seq, bx, step, bc, n_tokens, &p));
    OK(vk_seq_end(g_seq));
    for (int k = 0; k < 4; k++) {
        uint32_t pos0 = positions[k];
        float *x = rnd_vec(xn, -3, 3);
        fill_f16_edges(x + x_off, n);
        OK(vk_buffer_upload(bx, 0, x, xn * 4));
        buf_poison(bc);
        set_step(step, pos0, n_tokens);
        OK(vk_seq_submit(g_seq));
        uint16_t *c = buf_read(bc);
        for (size_t i = 0; i < cn; i++) {
            uint16_t expect = 0xffff;
            size_t row = (i - cache_off) / n, col = (i - cache_off) % n;
            if (i >= cache_off && row >= pos0 && row < pos0 + n_tokens)
                expect = eng_f32_to_f16(x[x_off + (row - pos0) * stride + col]);
            if (c[i] != expect)
                fail_msg("kv_store n %u pos %u: half %zu is 0x%04x, want 0x%04x", n, pos0, i,
                         c[i], expect);
        }
        free(c), free(x);
    }
    vk_buffer_free(step);
    vk_buffer_free(bc);
    vk_buffer_free(bx);
}

static void test_kv_store(void **state)
{
    (void)state;
    run_kv_store_case(2, 1, 0, 0, 0);
    run_kv_store_case(8, 3, 1, 2, 2);
    run_kv_store_case(22, 2, 0, 0, 0); /* every edge value */
    run_kv_store_case(100, 4, 3, 7, 10);
    run_kv_store_case(128, 1, 0, 0, 0);
    run_kv_store_case(4098, 2, 5, 1, 4);
    check_validation();
}

/* ---- attention over a given cache ---- */

typedef struct attn_case {
    uint32_t n_head, n_head_kv, head_dim, head_dim_v;
    uint32_t n_kv;     /* context of the last token: pos0 + n_tokens */
    uint32_t n_tokens;
    float scale;       /* 0: 1/sqrt(head_dim) */
    uint32_t k_pad;    /* extra halves before layer 1 of the K cache (misaligns it) */
} attn_case;

/* Reference: double throughout, over the same f16 cache the device reads. */
static void attn_ref(const attn_case *c, const float *q, const uint16_t *kc, const uint16_t *vc,
                     uint32_t pos, uint32_t h, float scale, double *out, double *sc)
{
    uint32_t kvh = h / (c->n_head / c->n_head_kv);
    size_t kw = (size_t)c->n_head_kv * c->head_dim, vw = (size_t)c->n_head_kv * c->head_dim_v;
    double mx = -INFINITY, sum = 0;
    for (uint32_t j = 0; j <= pos; j++) {
        double s = 0;
        for (uint32_t i = 0; i < c->head_dim; i++)
            s += (double)q[i] * eng_f16_to_f32(kc[j * kw + kvh * c->head_dim + i]);
        sc[j] = s * scale;
        mx = sc[j] > mx ? sc[j] : mx;
    }
    for (uint32_t i = 0; i < c->head_dim_v; i++)
        out[i] = 0;
    for (uint32_t j = 0; j <= pos; j++) {
        double p = exp(sc[j] - mx);
        sum += p;
        for (uint32_t i = 0; i < c->head_dim_v; i++)
            out[i] += p * eng_f16_to_f32(vc[j * vw + kvh * c->head_dim_v + i]);
    }
    for (uint32_t i = 0; i < c->head_dim_v; i++)
        out[i] /= sum;
}

/* Two layers of cache; the test reads layer 1. Rows from the batch's last position on hold
 * NaN, so a read past the causal limit cannot go unnoticed. */
static uint16_t *make_cache(uint32_t n_ctx, size_t width, uint32_t pad, uint32_t n_valid,
                            size_t *len)
{
    *len = pad + 2 * (size_t)n_ctx * width;
    uint16_t *c = malloc(*len * sizeof *c);
    assert_non_null(c);
    for (size_t i = 0; i < *len; i++)
        c[i] = eng_f32_to_f16(rnd_f(-1, 1));
    for (size_t i = pad + ((size_t)n_ctx + n_valid) * width; i < *len; i++)
        c[i] = 0x7e00;
    return c;
}

static void run_attn_case(const attn_case *c)
{
    uint32_t pos0 = c->n_kv - c->n_tokens, n_ctx = c->n_kv + 3;
    size_t kw = (size_t)c->n_head_kv * c->head_dim, vw = (size_t)c->n_head_kv * c->head_dim_v;
    uint32_t qw = c->n_head * c->head_dim, ow = c->n_head * c->head_dim_v;
    uint32_t q_off = 3, q_stride = qw + 2, o_off = 1, o_stride = ow + 3;
    float scale = c->scale ? c->scale : 1.0f / sqrtf((float)c->head_dim);
    size_t kl, vl, qn = q_off + (size_t)c->n_tokens * q_stride;
    size_t on = o_off + (size_t)c->n_tokens * o_stride;
    uint16_t *kc = make_cache(n_ctx, kw, c->k_pad, c->n_kv, &kl);
    uint16_t *vc = make_cache(n_ctx, vw, 2, c->n_kv, &vl);
    float *q = rnd_vec(qn, -1, 1);
    vk_buffer *bq = buf_from(q, qn * 4), *bk = buf_from(kc, kl * 2), *bv = buf_from(vc, vl * 2);
    vk_buffer *bo = buf_poisoned(on * 4), *step = buf_new(8);
    set_step(step, pos0, c->n_tokens);
    vk_push_attn p = { c->n_head, c->n_head_kv, c->head_dim, c->head_dim_v, q_off, q_stride,
                       o_off, o_stride, (uint32_t)(c->k_pad + n_ctx * kw),
                       (uint32_t)(2 + n_ctx * vw), scale, 0 };
    seq_begin();
    OK(vk_op_attn(g_ops, g_seq, bq, bk, bv, bo, step, c->n_tokens, &p));
    seq_end_run();
    float *o = buf_read(bo);
    double *want = malloc(c->head_dim_v * sizeof *want), *sc = malloc(c->n_kv * sizeof *sc);
    float *got = malloc(c->head_dim_v * sizeof *got);
    char what[160];
    for (uint32_t t = 0; t < c->n_tokens; t++)
        for (uint32_t h = 0; h < c->n_head; h++) {
            attn_ref(c, q + q_off + (size_t)t * q_stride + h * c->head_dim,
                     kc + p.k_off, vc + p.v_off, pos0 + t, h, scale, want, sc);
            memcpy(got, o + o_off + (size_t)t * o_stride + h * c->head_dim_v,
                   c->head_dim_v * sizeof *got);
            snprintf(what, sizeof what, "attn heads %u/%u dim %u/%u ctx %u token %u head %u",
                     c->n_head, c->n_head_kv, c->head_dim, c->head_dim_v, c->n_kv, t, h);
            judge(ST_ATTN, what, got, want, c->head_dim_v);
        }
    bool *m = row_mask(on, o_off, o_stride, c->n_tokens, ow);
    check_untouched("attn o", (const uint32_t *)o, m, on);
    free(m), free(got), free(sc), free(want), free(o), free(q), free(vc), free(kc);
    vk_buffer_free(step);
    vk_buffer_free(bo);
    vk_buffer_free(bv);
    vk_buffer_free(bk);
    vk_buffer_free(bq);
}

static const attn_case attn_cases[] = {
    { 1, 1, 8, 8, 1, 1, 0, 0 },
    { 2, 1, 16, 16, 37, 1, 0, 0 },
    { 2, 1, 16, 16, 37, 37, 0, 0 },      /* a whole prompt from position 0 */
    { 14, 2, 64, 64, 700, 1, 0, 0 },
    { 14, 2, 64, 64, 700, 5, 0, 2 },     /* K rows not 8-half aligned: the word path */
    { 9, 3, 64, 64, 5000, 1, 0, 0 },
    { 9, 3, 64, 64, 5000, 3, 0, 0 },
    { 7, 1, 128, 128, 700, 2, 0, 0 },    /* GQA 7 */
    { 4, 4, 128, 128, 5000, 1, 0, 6 },
    { 6, 2, 16, 8, 37, 4, 0, 0 },        /* value heads narrower than key heads */
    { 3, 3, 256, 256, 100, 1, 0, 0 },
    { 2, 2, 64, 64, 700, 2, 4.0f, 0 },   /* peaked softmax: most weights underflow */
    { 1, 1, 8, 8, 37, 1, 20.0f, 0 },
    { 3, 1, 64, 64, 700, 2, 60.0f, 0 },  /* scores in the hundreds: exp overflows unless the */
    { 1, 1, 8, 8, 300, 1, 400.0f, 0 },   /* true maximum is subtracted */
};

static void test_attn(void **state)
{
    (void)state;
    variant v[12];
    int nv = variants_for("attn", v);
    for (int k = 0; k < nv; k++) {
        vk_kernel *saved = v[k].shader ? swap_kernel(&g_ops->attn, &v[k], 5,
                                                     sizeof(vk_push_attn)) : NULL;
        print_variant("attn", &v[k]);
        for (size_t i = 0; i < sizeof attn_cases / sizeof *attn_cases; i++)
            if (k == 0 || attn_cases[i].n_kv < 5000 || attn_cases[i].n_tokens == 1)
                run_attn_case(&attn_cases[i]);
        if (v[k].shader)
            restore_kernel(&g_ops->attn, saved);
    }
    check_validation();
}

/* ---- rope + cache store + attention, one recording replayed over a sequence of batches ---- */

typedef struct chain {
    uint32_t n_head, n_head_kv, hd, max_tokens, n_ctx;
    vk_buffer *q, *k, *v, *o, *kc, *vc, *step, *factors;
    uint16_t *ref_k, *ref_v; /* the CPU's cache */
} chain;

static void chain_record(chain *ch, float base)
{
    vk_push_rope rq = { ch->n_head, ch->hd, ch->hd, 0, ch->n_head * ch->hd, 0, VK_ROPE_NEOX,
                        base, 1, { 0, 0, 0 } };
    vk_push_rope rk = { ch->n_head_kv, ch->hd, ch->hd, 0, ch->n_head_kv * ch->hd, 0,
                        VK_ROPE_NEOX | VK_ROPE_STORE, base, 1, { 0, 0, 0 } };
    vk_push_kv_store kv = { ch->n_head_kv * ch->hd, 0, ch->n_head_kv * ch->hd, 0 };
    vk_push_attn at = { ch->n_head, ch->n_head_kv, ch->hd, ch->hd, 0, ch->n_head * ch->hd, 0,
                        ch->n_head * ch->hd, 0, 0, 1.0f / sqrtf((float)ch->hd), 0 };
    seq_begin();
    OK(vk_op_rope(g_ops, g_seq, ch->q, ch->factors, ch->step, ch->kc, ch->max_tokens, &rq));
    OK(vk_op_rope(g_ops, g_seq, ch->k, ch->factors, ch->step, ch->kc, ch->max_tokens, &rk));
    OK(vk_op_kv_store(g_ops, g_seq, ch->v, ch->step, ch->vc, ch->max_tokens, &kv));
    vk_seq_barrier(g_seq);
    OK(vk_op_attn(g_ops, g_seq, ch->q, ch->kc, ch->vc, ch->o, ch->step, ch->max_tokens, &at));
    OK(vk_seq_end(g_seq));
}

/* One batch of n tokens at pos0: device and CPU side by side. */
static void chain_batch(chain *ch, float base, uint32_t pos0, uint32_t n)
{
    uint32_t qw = ch->n_head * ch->hd, kw = ch->n_head_kv * ch->hd;
    float *q = rnd_vec((size_t)ch->max_tokens * qw, -1, 1);
    float *k = rnd_vec((size_t)ch->max_tokens * kw, -1, 1);
    float *v = rnd_vec((size_t)ch->max_tokens * kw, -1, 1);
    OK(vk_buffer_upload(ch->q, 0, q, (size_t)ch->max_tokens * qw * 4));
    OK(vk_buffer_upload(ch->k, 0, k, (size_t)ch->max_tokens * kw * 4));
    OK(vk_buffer_upload(ch->v, 0, v, (size_t)ch->max_tokens * kw * 4));
    buf_poison(ch->o);
    set_step(ch->step, pos0, n); /* step[1] < max_tokens: the tokens after it are skipped */
    OK(vk_seq_submit(g_seq));
    rope_case rc = { 1, ch->hd, ch->hd, VK_ROPE_NEOX, 1, base, 1, 0, 0, 0 };
    double *r = malloc(ch->hd * sizeof *r), *out = malloc(ch->hd * sizeof *out);
    double *sc = malloc(ch->n_ctx * sizeof *sc);
    float *qr = malloc(qw * sizeof *qr), *got = malloc(ch->hd * sizeof *got);
    float *o = buf_read(ch->o);
    attn_case ac = { ch->n_head, ch->n_head_kv, ch->hd, ch->hd, 0, 0, 0, 0 };
    char what[128];
    for (uint32_t t = 0; t < n; t++) { /* the CPU's cache rows for this batch */
        for (uint32_t i = 0; i < kw; i += ch->hd) {
            rope_ref(&rc, NULL, pos0 + t, k + (size_t)t * kw + i, r);
            for (uint32_t d = 0; d < ch->hd; d++) {
                ch->ref_k[(size_t)(pos0 + t) * kw + i + d] = eng_f32_to_f16((float)r[d]);
                ch->ref_v[(size_t)(pos0 + t) * kw + i + d] =
                    eng_f32_to_f16(v[(size_t)t * kw + i + d]);
            }
        }
    }
    for (uint32_t t = 0; t < n; t++)
        for (uint32_t h = 0; h < ch->n_head; h++) {
            rope_ref(&rc, NULL, pos0 + t, q + (size_t)t * qw + h * ch->hd, r);
            for (uint32_t d = 0; d < ch->hd; d++)
                qr[h * ch->hd + d] = (float)r[d];
            attn_ref(&ac, qr + h * ch->hd, ch->ref_k, ch->ref_v, pos0 + t, h,
                     1.0f / sqrtf((float)ch->hd), out, sc);
            memcpy(got, o + (size_t)t * qw + h * ch->hd, ch->hd * sizeof *got);
            snprintf(what, sizeof what, "rope+store+attn pos %u token %u head %u", pos0, t, h);
            judge(ST_CHAIN, what, got, out, ch->hd);
        }
    for (size_t i = (size_t)n * qw; i < (size_t)ch->max_tokens * qw; i++)
        if (((uint32_t *)o)[i] != 0xffffffffu)
            fail_msg("batch of %u at %u: output element %zu of a token past step[1] written", n,
                     pos0, i);
    free(o), free(got), free(qr), free(sc), free(out), free(r), free(v), free(k), free(q);
}

static void test_chain_replayed(void **state)
{
    (void)state;
    chain ch = { .n_head = 6, .n_head_kv = 2, .hd = 64, .max_tokens = 6, .n_ctx = 800 };
    float base = 10000;
    uint32_t qw = ch.n_head * ch.hd, kw = ch.n_head_kv * ch.hd;
    ch.q = buf_new((size_t)ch.max_tokens * qw * 4);
    ch.k = buf_new((size_t)ch.max_tokens * kw * 4);
    ch.v = buf_new((size_t)ch.max_tokens * kw * 4);
    ch.o = buf_new((size_t)ch.max_tokens * qw * 4);
    ch.kc = buf_poisoned((size_t)ch.n_ctx * kw * 2);
    ch.vc = buf_poisoned((size_t)ch.n_ctx * kw * 2);
    ch.step = buf_new(8);
    ch.factors = buf_new(4);
    ch.ref_k = calloc((size_t)ch.n_ctx * kw, 2);
    ch.ref_v = calloc((size_t)ch.n_ctx * kw, 2);
    assert_true(ch.ref_k && ch.ref_v);
    chain_record(&ch, base);
    /* a prompt, decode steps, and chunks smaller than the recorded batch */
    static const uint32_t batches[][2] = { { 0, 6 }, { 6, 1 }, { 7, 1 }, { 8, 3 }, { 11, 6 },
                                           { 17, 1 }, { 18, 2 } };
    for (size_t i = 0; i < sizeof batches / sizeof *batches; i++)
        chain_batch(&ch, base, batches[i][0], batches[i][1]);
    uint16_t *kc = buf_read(ch.kc), *vc = buf_read(ch.vc);
    for (size_t i = 0; i < (size_t)20 * kw; i++) { /* same keys, to the f16 rounding */
        float a = eng_f16_to_f32(kc[i]), b = eng_f16_to_f32(ch.ref_k[i]);
        if (fabsf(a - b) > 1e-3f * (fabsf(b) + 1e-3f))
            fail_msg("k cache half %zu: device %g, CPU %g", i, (double)a, (double)b);
        if (vc[i] != ch.ref_v[i])
            fail_msg("v cache half %zu: device 0x%04x, CPU 0x%04x", i, vc[i], ch.ref_v[i]);
    }
    /* rows past the last position: the recorded batch is wider than the last step[1] */
    for (size_t i = (size_t)20 * kw; i < (size_t)ch.n_ctx * kw; i++)
        if (kc[i] != 0xffff || vc[i] != 0xffff)
            fail_msg("cache half %zu (row %zu) written for a token past step[1]", i, i / kw);
    free(vc), free(kc), free(ch.ref_k), free(ch.ref_v);
    vk_buffer *bufs[] = { ch.q, ch.k, ch.v, ch.o, ch.kc, ch.vc, ch.step, ch.factors };
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        vk_buffer_free(bufs[i]);
    check_validation();
}

/* A position in step past the end of the cache: nothing is written out of bounds, attention
 * reads only the rows the cache holds. */
static void test_step_past_cache(void **state)
{
    (void)state;
    uint32_t hd = 16, n_ctx = 10;
    float *xv = rnd_vec(hd, -1, 1);
    vk_buffer *x = buf_from(xv, hd * 4);
    free(xv);
    vk_buffer *kc = buf_poisoned(n_ctx * hd * 2), *vc = buf_poisoned(n_ctx * hd * 2);
    vk_buffer *o = buf_poisoned(hd * 4), *step = buf_new(8), *f = buf_new(4);
    vk_push_rope rp = { 1, hd, hd, 0, hd, 0, VK_ROPE_STORE, 10000, 1, { 0, 0, 0 } };
    vk_push_kv_store kv = { hd, 0, hd, 0 };
    vk_push_attn at = { 1, 1, hd, hd, 0, hd, 0, hd, 0, 0, 0.25f, 0 };
    set_step(step, n_ctx + 5, 1);
    seq_begin();
    OK(vk_op_rope(g_ops, g_seq, x, f, step, kc, 1, &rp));
    OK(vk_op_kv_store(g_ops, g_seq, x, step, vc, 1, &kv));
    vk_seq_barrier(g_seq);
    OK(vk_op_attn(g_ops, g_seq, x, kc, vc, o, step, 1, &at));
    seq_end_run();
    uint16_t *k = buf_read(kc), *v = buf_read(vc);
    for (uint32_t i = 0; i < n_ctx * hd; i++)
        if (k[i] != 0xffff || v[i] != 0xffff)
            fail_msg("cache half %u written for a position past the cache", i);
    free(k), free(v);
    vk_buffer *bufs[] = { x, kc, vc, o, step, f };
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        vk_buffer_free(bufs[i]);
    check_validation();
}

/* ---- swiglu, add ---- */

static void run_swiglu_case(uint32_t n, uint32_t rows, uint32_t pad, bool in_place)
{
    uint32_t g_off = 1, u_off = 2, o_off = in_place ? g_off : 3;
    uint32_t gs = n + pad, us = n + 2 * pad, os = in_place ? gs : n + pad + 1;
    size_t gn = g_off + (size_t)rows * gs, un = u_off + (size_t)rows * us;
    size_t on = o_off + (size_t)rows * os;
    float *g = rnd_vec(gn, -8, 8), *u = rnd_vec(un, -2, 2);
    if (n >= 4) { /* exp(-g) overflowing, and large positive g */
        g[g_off] = -100, g[g_off + 1] = 100, g[g_off + 2] = -88.5f, g[g_off + 3] = 0;
    }
    vk_buffer *bg = buf_from(g, gn * 4), *bu = buf_from(u, un * 4);
    vk_buffer *bo = in_place ? bg : buf_poisoned(on * 4);
    vk_push_swiglu p = { n, rows, g_off, gs, u_off, us, o_off, os };
    seq_begin();
    OK(vk_op_swiglu(g_ops, g_seq, bg, bu, bo, &p));
    seq_end_run();
    float *o = buf_read(bo), *got = malloc(n * sizeof *got);
    double *want = malloc(n * sizeof *want);
    char what[96];
    for (uint32_t r = 0; r < rows; r++) {
        for (uint32_t i = 0; i < n; i++) {
            double gv = g[g_off + (size_t)r * gs + i];
            want[i] = gv / (1.0 + exp(-gv)) * u[u_off + (size_t)r * us + i];
            got[i] = o[o_off + (size_t)r * os + i];
        }
        snprintf(what, sizeof what, "swiglu n %u rows %u%s: row %u", n, rows,
                 in_place ? " in place" : "", r);
        judge(ST_SWIGLU, what, got, want, n);
    }
    if (!in_place) {
        bool *m = row_mask(on, o_off, os, rows, n);
        check_untouched("swiglu o", (const uint32_t *)o, m, on);
        free(m);
        vk_buffer_free(bo);
    }
    free(want), free(got), free(o), free(g), free(u);
    vk_buffer_free(bg);
    vk_buffer_free(bu);
}

static void test_swiglu(void **state)
{
    (void)state;
    run_swiglu_case(1, 1, 0, false);
    run_swiglu_case(7, 3, 2, false);
    run_swiglu_case(100, 2, 5, true);
    run_swiglu_case(1536, 1, 0, false);
    run_swiglu_case(4864, 2, 0, true);
    run_swiglu_case(4097, 3, 3, false);
    check_validation();
}

static void run_add_case(uint32_t n, uint32_t rows, uint32_t x_off, uint32_t x_stride,
                         uint32_t y_off, uint32_t y_stride)
{
    size_t xn = x_off + (size_t)(rows - 1) * x_stride + n;
    size_t yn = y_off + (size_t)(rows - 1) * y_stride + n + 2;
    float *x = rnd_vec(xn, -4, 4), *y = rnd_vec(yn, -4, 4);
    vk_buffer *bx = buf_from(x, xn * 4), *by = buf_from(y, yn * 4);
    vk_push_add p = { n, rows, x_off, x_stride, y_off, y_stride, { 0, 0 } };
    seq_begin();
    OK(vk_op_add(g_ops, g_seq, bx, by, &p));
    seq_end_run();
    float *got = buf_read(by);
    bool *m = row_mask(yn, y_off, y_stride, rows, n);
    for (size_t i = 0; i < yn; i++) {
        float want = y[i];
        if (m[i]) {
            size_t r = (i - y_off) / y_stride, c = (i - y_off) % y_stride;
            want = y[i] + x[x_off + r * x_stride + c];
        }
        if (memcmp(&got[i], &want, 4)) /* one rounding, as on the CPU: exact */
            fail_msg("add n %u rows %u: y[%zu] = %g, want %g", n, rows, i, (double)got[i],
                     (double)want);
    }
    free(m), free(got), free(x), free(y);
    vk_buffer_free(bx);
    vk_buffer_free(by);
}

static void test_add(void **state)
{
    (void)state;
    run_add_case(1, 1, 0, 1, 0, 1);
    run_add_case(7, 4, 3, 10, 1, 9);
    run_add_case(100, 1, 0, 100, 5, 100);
    run_add_case(576, 3, 0, 576, 0, 576);
    run_add_case(4097, 2, 1, 4099, 2, 4100);
    check_validation();
}

/* ---- argmax ---- */

static uint32_t argmax_ref(const float *x, uint32_t n)
{
    uint32_t best = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++)
        if (!isnan(x[i]) && (best == UINT32_MAX || x[i] > x[best]))
            best = i;
    return best == UINT32_MAX ? 0 : best;
}

static void run_argmax(const float *x, uint32_t n, uint32_t x_off, const char *what)
{
    float *buf = malloc(((size_t)x_off + n) * sizeof *buf);
    for (uint32_t i = 0; i < x_off; i++)
        buf[i] = INFINITY; /* before the operand: must be ignored */
    memcpy(buf + x_off, x, (size_t)n * sizeof *x);
    vk_buffer *bx = buf_from(buf, ((size_t)x_off + n) * 4), *bo = buf_poisoned(4);
    vk_push_argmax p = { n, x_off, { 0, 0 } };
    seq_begin();
    OK(vk_op_argmax(g_ops, g_seq, bx, bo, &p));
    seq_end_run();
    uint32_t got;
    OK(vk_buffer_download(bo, 0, &got, 4));
    uint32_t want = argmax_ref(x, n);
    if (got != want)
        fail_msg("argmax %s (n %u): got %u, want %u", what, n, got, want);
    free(buf);
    vk_buffer_free(bx);
    vk_buffer_free(bo);
}

static void argmax_cases(void)
{
    static const uint32_t sizes[] = { 1, 7, 100, 4097, 151936, 262144 };
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        uint32_t n = sizes[s];
        float *x = rnd_vec(n, -10, 10);
        run_argmax(x, n, 0, "random");
        run_argmax(x, n, 3, "random, offset");
        if (n > 2) { /* ties: the lowest index of the maximum */
            uint32_t a = (uint32_t)(rnd_u64() % (n / 2));
            uint32_t b = n / 2 + (uint32_t)(rnd_u64() % (n / 2));
            x[a] = x[b] = x[n - 1] = 20;
            run_argmax(x, n, 1, "ties");
        }
        x[n - 1] = 30;
        run_argmax(x, n, 0, "maximum last");
        for (uint32_t i = 0; i < n; i++)
            x[i] = -INFINITY;
        run_argmax(x, n, 0, "all -inf");
        x[n / 3] = -1e30f;
        run_argmax(x, n, 0, "-inf but one");
        for (uint32_t i = 0; i < n; i++)
            x[i] = i % 3 ? NAN : 1.0f;
        x[n - 1] = n > 1 ? 2.0f : x[n - 1];
        run_argmax(x, n, 0, "NaNs skipped");
        for (uint32_t i = 0; i < n; i++)
            x[i] = 5;
        run_argmax(x, n, 0, "all equal");
        free(x);
    }
}

static void test_argmax(void **state)
{
    (void)state;
    variant v[12];
    int nv = variants_for("argmax", v);
    for (int k = 0; k < nv; k++) {
        vk_kernel *saved = v[k].shader ? swap_kernel(&g_ops->argmax, &v[k], 2,
                                                     sizeof(vk_push_argmax)) : NULL;
        print_variant("argmax", &v[k]);
        argmax_cases();
        if (v[k].shader)
            restore_kernel(&g_ops->argmax, saved);
    }
    check_validation();
}

/* ---- argument errors: a status and a message naming the values, nothing recorded ---- */

static void expect_bad(vk_status st, const char *needle, const char *call)
{
    if (st != VK_STATUS_BAD_ARG)
        fail_msg("%s: status %s, want bad argument", call, vk_status_str(st));
    if (!strstr(vk_ctx_errmsg(g_ctx), needle))
        fail_msg("%s: message '%s' lacks '%s'", call, vk_ctx_errmsg(g_ctx), needle);
}

#define BAD(call, needle) expect_bad((call), (needle), #call)

static void test_argument_errors(void **state)
{
    (void)state;
    vk_buffer *b64 = buf_new(64), *b4k = buf_new(4096), *b4 = buf_new(4);
    vk_ops *o = g_ops;
    vk_seq *s = g_seq;
    seq_begin();
    vk_push_rms_norm rn = { 8, 2, 0, 8, 0, 8, 0, 1e-5f };
    BAD(vk_op_rms_norm(o, s, NULL, b64, b64, &rn), "buffer x is NULL");
    BAD(vk_op_rms_norm(o, s, b64, b64, b64, NULL), "push-constant");
    rn.rows = 3; /* 3 rows of 8 floats need 96 bytes */
    BAD(vk_op_rms_norm(o, s, b64, b64, b4k, &rn), "x spans elements 0 + (3 rows - 1) x stride 8");
    rn.rows = 2, rn.y_stride = 4;
    BAD(vk_op_rms_norm(o, s, b64, b64, b4k, &rn), "are 4 apart");
    rn.y_stride = 8, rn.n = 0;
    BAD(vk_op_rms_norm(o, s, b64, b64, b4k, &rn), "n = 0");
    rn.n = 8, rn.eps = NAN;
    BAD(vk_op_rms_norm(o, s, b64, b64, b4k, &rn), "eps = nan");

    vk_push_rope rp = { 2, 64, 66, 0, 128, 0, 0, 10000, 1, { 0, 0, 0 } };
    BAD(vk_op_rope(o, s, b4k, b4k, b64, b4k, 1, &rp), "n_rot = 66, allowed 2..64");
    rp.n_rot = 64, rp.head_dim = 63;
    BAD(vk_op_rope(o, s, b4k, b4k, b64, b4k, 1, &rp), "head_dim = 63");
    rp.head_dim = 64, rp.flags = 8;
    BAD(vk_op_rope(o, s, b4k, b4k, b64, b4k, 1, &rp), "unknown flags 0x8");
    rp.flags = 0, rp.freq_base = 0;
    BAD(vk_op_rope(o, s, b4k, b4k, b64, b4k, 1, &rp), "freq_base = 0");
    rp.freq_base = 10000;
    BAD(vk_op_rope(o, s, b4k, b4k, b4, b4k, 1, &rp), "step buffer has 4 bytes");
    BAD(vk_op_rope(o, s, b4k, b4k, b64, b4k, 0, &rp), "n_tokens = 0");
    BAD(vk_op_rope(o, s, b4k, b4k, b64, b4k, 9, &rp), "x spans");
    rp.flags = VK_ROPE_FACTORS;
    BAD(vk_op_rope(o, s, b4k, b4, b64, b4k, 1, &rp), "factors spans");
    rp.flags = VK_ROPE_STORE, rp.cache_off = 3;
    BAD(vk_op_rope(o, s, b4k, b4k, b64, b4k, 1, &rp), "cache_off = 3 is odd");
    rp.cache_off = 2000;
    BAD(vk_op_rope(o, s, b4k, b4k, b64, b4k, 1, &rp), "cache spans");

    vk_push_kv_store kv = { 7, 0, 7, 0 };
    BAD(vk_op_kv_store(o, s, b4k, b64, b4k, 1, &kv), "n = 7 is odd");
    kv.n = 8;
    BAD(vk_op_kv_store(o, s, b4k, b64, b4, 1, &kv), "cache spans");

    vk_push_attn at = { 6, 4, 64, 64, 0, 384, 0, 384, 0, 0, 0.125f, 0 };
    BAD(vk_op_attn(o, s, b4k, b4k, b4k, b4k, b64, 1, &at),
        "n_head = 6 is not a multiple of n_head_kv = 4");
    at.n_head_kv = 2, at.head_dim = 512;
    BAD(vk_op_attn(o, s, b4k, b4k, b4k, b4k, b64, 1, &at), "head_dim = 512, allowed 2..256");
    at.head_dim = 64, at.head_dim_v = 9;
    BAD(vk_op_attn(o, s, b4k, b4k, b4k, b4k, b64, 1, &at), "head_dim_v = 9 is odd");
    at.head_dim_v = 64, at.k_off = 1;
    BAD(vk_op_attn(o, s, b4k, b4k, b4k, b4k, b64, 1, &at), "k_off = 1 is odd");
    at.k_off = 0, at.scale = INFINITY;
    BAD(vk_op_attn(o, s, b4k, b4k, b4k, b4k, b64, 1, &at), "scale = inf");
    at.scale = 0.125f, at.n_head = 1, at.n_head_kv = 2;
    BAD(vk_op_attn(o, s, b4k, b4k, b4k, b4k, b64, 1, &at), "n_head = 1, allowed 2..");
    at.n_head = 6;
    BAD(vk_op_attn(o, s, b4k, b4k, b4k, b64, b64, 1, &at), "o spans");
    BAD(vk_op_attn(o, s, b4k, b64, b4k, b4k, b64, 1, &at), "k cache spans");

    vk_push_swiglu sw = { 16, 2, 0, 16, 0, 16, 0, 16 };
    BAD(vk_op_swiglu(o, s, b4k, b64, b4k, &sw), "u spans");
    vk_push_add ad = { 16, 0, 0, 16, 0, 16, { 0, 0 } };
    BAD(vk_op_add(o, s, b4k, b4k, &ad), "rows = 0");
    vk_push_argmax am = { 17, 0, { 0, 0 } };
    BAD(vk_op_argmax(o, s, b64, b4k, &am), "x spans elements 0 + (1 rows - 1) x stride 0 + 17");
    am.n = 16;
    BAD(vk_op_argmax(o, s, b64, NULL, &am), "buffer out is NULL");
    assert_int_equal(vk_op_argmax(NULL, s, b64, b4, &am), VK_STATUS_BAD_ARG);

    assert_int_equal(vk_seq_dispatch_count(s), 0);
    OK(vk_seq_end(s));
    vk_buffer_free(b4);
    vk_buffer_free(b4k);
    vk_buffer_free(b64);
    check_validation();
}

/* Kernels are made when a model needs them, once, whichever thread asks first: a new set has
 * none; preparing an F32 + Q8_0 model from two threads at once makes those types' kernels (the
 * one variant the device uses) and the ops the forward pass records, and nothing else: no
 * other type, no add kernel, no storage-buffer variant where texel kernels run. */
typedef struct prep_arg {
    vk_ops *ops;
    vk_ops_need need;
    vk_status st;
} prep_arg;

static void *prepare_thread(void *arg)
{
    prep_arg *a = arg;
    a->st = vk_ops_prepare(a->ops, &a->need);
    return NULL;
}

static void test_kernels_made_on_demand(void **state)
{
    (void)state;
    vk_ops *ops;
    OK(vk_ops_new(g_ctx, &ops));
    for (int t = 0; t < GGUF_T_COUNT; t++)
        assert_true(!ops->mul_mat[t] && !ops->mul_mat_tex[t] && !ops->mul_mat_t4[t]);
    assert_true(!ops->rms_norm && !ops->rope && !ops->kv_store && !ops->attn && !ops->swiglu &&
                !ops->add && !ops->argmax);
    prep_arg a[2] = { { .ops = ops }, { .ops = ops } };
    a[0].need = (vk_ops_need){ .n_head = 8, .n_head_kv = 4, .head_dim = 8, .head_dim_v = 8 };
    a[0].need.types[GGUF_T_F32] = a[0].need.types[GGUF_T_Q8_0] = true;
    a[1].need = a[0].need;
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, prepare_thread, &a[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    OK(a[0].st);
    OK(a[1].st);
    const vk_device_info *d = vk_ctx_device_info(g_ctx, vk_ctx_choice(g_ctx)->index);
    bool cpu = d->type == VK_DEVTYPE_CPU;
    for (int t = 0; t < GGUF_T_COUNT; t++) {
        int made = !!ops->mul_mat[t] + !!ops->mul_mat_tex[t] + !!ops->mul_mat_t4[t];
        if (made != (t == GGUF_T_F32 || t == GGUF_T_Q8_0))
            fail_msg("type %s: %d matrix kernels made", gguf_type_get((uint32_t)t) ?
                     gguf_type_get((uint32_t)t)->name : "?", made);
    }
    if (cpu) /* lavapipe: texel kernels, RGBA32 for Q8_0; no storage-buffer variant */
        assert_true(ops->mul_mat_tex[GGUF_T_F32] && ops->mul_mat_t4[GGUF_T_Q8_0] &&
                    !ops->mul_mat[GGUF_T_F32] && !ops->mul_mat[GGUF_T_Q8_0]);
    assert_true(ops->rms_norm && ops->rope && ops->kv_store && ops->swiglu && ops->argmax);
    assert_null(ops->add);
    assert_null(ops->attn); /* the caller's slot: vk_op_attn keeps its own */
    vk_ops_free(ops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rms_norm),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_kv_store),
        cmocka_unit_test(test_attn),
        cmocka_unit_test(test_chain_replayed),
        cmocka_unit_test(test_step_past_cache),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_argmax),
        cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_kernels_made_on_demand),
    };
    return cmocka_run_group_tests_name("vk_ops", tests, group_setup, group_teardown);
}
