/* app/ppl: perplexity against llama-perplexity's figures (fixtures README section 12), bits per
 * byte against a computation done here from the raw logits, KL divergence properties, and the
 * refusal of KL across vocabularies. */
#include <math.h>

#include "testutil.h"

#include "app/ppl.h"
#include "engine/engine.h"

static eng_model *open_model(const char *rel)
{
    eng_model *m;
    char err[512];
    if (eng_model_open(fixture_path(rel), &m, err, sizeof err))
        fail_msg("%s", err);
    return m;
}

static char *story(size_t *len)
{
    return (char *)read_file(fixture_path("reference/ppl/story-flat.txt"), len);
}

static eng_session_opts cpu_opts(void)
{
    eng_session_opts so = eng_session_defaults();
    so.backend = ENG_BACKEND_CPU;
    return so;
}

/* Perplexity of `rel` at window c, with `base` (or NULL) for KL; fails the test on error. */
static app_ppl_result ppl_of(const char *rel, const char *base_rel, uint32_t c, eng_backend_kind be)
{
    size_t len;
    char *text = story(&len);
    eng_model *m = open_model(rel), *base = base_rel ? open_model(base_rel) : NULL;
    eng_session_opts so = cpu_opts();
    so.backend = be;
    app_ppl_result r;
    assert_int_equal(app_ppl_run("test", m, base, text, len, c, &so, &r), 0);
    eng_model_close(base);
    eng_model_close(m);
    free(text);
    return r;
}

static void expect_ppl(const app_ppl_result *r, double want, const char *what)
{
    double rel = fabs(r->ppl - want) / want;
    print_message("%-28s c%-3u ppl %.4f, llama-perplexity %.4f (%.3f%%)\n", what, r->n_ctx,
                  r->ppl, want, 100 * rel);
    if (rel > 0.01)
        fail_msg("%s c%u: perplexity %.4f, llama-perplexity says %.4f", what, r->n_ctx, r->ppl, want);
}

/* The table of the fixtures README, section 12 (story-flat.txt, windows of 64 and 128). */
static const struct { const char *file; double c64, c128; } table[] = {
    { "models/stories260K.gguf", 5.1055, 4.8070 },
    { "models/babyllama-930K-F32.gguf", 2.2283, 2.2851 },
    { "models/babyllama-930K-F16.gguf", 2.2284, 2.2851 },
    { "models/babyllama-930K-Q8_0.gguf", 2.2288, 2.2830 },
    { "models/babyllama-930K-Q4_0.gguf", 2.4031, 2.4735 },
};

#define F32 "models/babyllama-930K-F32.gguf"

static void test_reference_table_cpu(void **state)
{
    (void)state;
    double kl_q8 = -1, kl_q4 = -1;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        for (uint32_t c = 64; c <= 128; c *= 2) {
            /* The BabyLlama files also measure KL against F32 on the way (one decode more). */
            bool kl = strstr(table[i].file, "babyllama") && !strstr(table[i].file, "F16");
            app_ppl_result r = ppl_of(table[i].file, kl ? F32 : NULL, c, ENG_BACKEND_CPU);
            expect_ppl(&r, c == 64 ? table[i].c64 : table[i].c128, table[i].file);
            assert_int_equal(r.n_chunks, r.n_tokens / c);
            assert_int_equal(r.n_scored, r.n_chunks * (c - c / 2 - 1));
            if (kl) {
                print_message("    KL vs F32: mean %.6f p99 %.6f agree %.4f\n", r.kl_mean,
                              r.kl_p99, r.top_agree);
                if (strstr(table[i].file, "F32")) {
                    assert_true(fabs(r.kl_mean) < 1e-9 && fabs(r.kl_p99) < 1e-9);
                    assert_true(r.top_agree == 1.0);
                } else if (strstr(table[i].file, "Q8_0")) {
                    assert_true(r.kl_mean > 0 && r.kl_mean < 0.01);
                    assert_true(r.top_agree > 0.95 && r.top_agree < 1.0);
                } else {
                    assert_true(r.kl_mean > 0.01);      /* far above Q8_0's bound */
                    assert_true(r.kl_p99 > r.kl_mean);
                }
                if (c == 128 && strstr(table[i].file, "Q8_0"))
                    kl_q8 = r.kl_mean;
                if (c == 128 && strstr(table[i].file, "Q4_0"))
                    kl_q4 = r.kl_mean;
            }
            app_ppl_free(&r);
        }
    }
    /* KL F32 vs Q4_0 > KL F32 vs Q8_0 > 0 (= KL F32 vs itself, checked above) */
    assert_true(kl_q4 > kl_q8 && kl_q8 > 0);
}

static void test_reference_vulkan(void **state)
{
    (void)state;
    app_ppl_result r = ppl_of("models/stories260K.gguf", NULL, 128, ENG_BACKEND_VULKAN);
    assert_non_null(strstr(r.backend, "vulkan"));
    expect_ppl(&r, 4.8070, "stories260K (vulkan)");
    app_ppl_free(&r);
}

/* Bits per byte from first principles: decode each window here, take -log2 of the softmax of
 * the raw logits at the scored positions, and count the scored bytes as the growth of the
 * whole-sequence detokenization (not per-token pieces, as app/ppl.c counts them). */
static void test_bits_per_byte_by_hand(void **state)
{
    (void)state;
    const char *text = "Once upon a time, there was a little girl named Lily. She liked to play "
                       "in the park with her red ball every day.";
    const uint32_t c = 16;
    eng_model *m = open_model("models/stories260K.gguf");
    const eng_vocab *v = eng_model_vocab(m);
    int32_t nv = eng_vocab_n_tokens(v), *ids;
    size_t n;
    assert_int_equal(eng_tokenize(v, text, strlen(text), true, false, &ids, &n), ENG_TOK_OK);
    assert_true(n >= 2 * c);
    eng_session_opts so = cpu_opts();
    so.n_ctx = c;
    eng_session *s;
    char err[256];
    assert_int_equal(eng_session_new(m, &so, &s, err, sizeof err), ENG_OK);
    double bits = 0;
    size_t bytes = 0, scored = 0;
    for (size_t w = 0; w < n / c; w++) {
        int32_t win[16];
        memcpy(win, ids + w * c, sizeof win);
        win[0] = eng_vocab_special(v)->bos;
        float *lg;
        eng_session_reset(s);
        assert_int_equal(eng_session_logits(s, win, c, true, &lg), ENG_OK);
        for (uint32_t p = c / 2; p + 1 < c; p++) {
            double mx = -INFINITY, sum = 0;
            for (int32_t k = 0; k < nv; k++)
                mx = fmax(mx, lg[p * nv + k]);
            for (int32_t k = 0; k < nv; k++)
                sum += exp(lg[p * nv + k] - mx);
            bits += -(lg[p * nv + win[p + 1]] - mx - log(sum)) / log(2.0);
            scored++;
        }
        free(lg);
        char *a, *b;
        size_t la, lb;
        size_t from = w * c + c / 2 + 1, to = w * c + c; /* scored: ids[from .. to-1] */
        assert_int_equal(eng_detokenize(v, ids, from, false, &a, &la), ENG_TOK_OK);
        assert_int_equal(eng_detokenize(v, ids, to, false, &b, &lb), ENG_TOK_OK);
        bytes += lb - la;
        free(a);
        free(b);
    }
    eng_session_free(s);
    app_ppl_result r;
    eng_session_opts so2 = cpu_opts();
    assert_int_equal(app_ppl_run("test", m, NULL, text, strlen(text), c, &so2, &r), 0);
    print_message("by hand: %.6f bits / %zu bytes = %.6f; app_ppl_run: %.6f (%llu bytes)\n", bits,
                  bytes, bits / (double)bytes, r.bits_per_byte, (unsigned long long)r.n_bytes);
    assert_int_equal(r.n_scored, scored);
    assert_int_equal(r.n_bytes, bytes);
    assert_true(fabs(r.bits_per_byte - bits / (double)bytes) < 1e-6);
    /* and the per-token figure from the same sum */
    assert_true(fabs(r.ppl - pow(2.0, bits / (double)scored)) < 1e-6 * r.ppl);
    app_ppl_free(&r);
    free(ids);
    eng_model_close(m);
}

static void test_refusals(void **state)
{
    (void)state;
    size_t len;
    char *text = story(&len);
    eng_model *a = open_model(F32), *b = open_model("models/stories260K.gguf");
    eng_session_opts so = cpu_opts();
    app_ppl_result r;
    assert_false(app_vocab_same(eng_model_vocab(a), eng_model_vocab(b)));
    assert_int_equal(app_ppl_run("test", a, b, text, len, 64, &so, &r), 1); /* KL across vocabs */
    assert_int_equal(app_ppl_run("test", b, NULL, "Once upon", 9, 64, &so, &r), 1); /* < 1 window */
    eng_model_close(a);
    eng_model_close(b);
    free(text);
}

/* The default window is 512 capped at the smallest trained context (BabyLlama: 256), and a
 * window past a model's trained context is flagged on the result. */
static void test_trained_context(void **state)
{
    (void)state;
    eng_model *baby = open_model("models/babyllama-930K-F32.gguf"),
              *s260 = open_model("models/stories260K.gguf");
    const eng_model *both[2] = { s260, baby };
    bool capped = true;
    assert_int_equal(app_ppl_default_ctx(both, 1, &capped), 512);
    assert_false(capped);
    assert_int_equal(app_ppl_default_ctx(both, 2, &capped), 256);
    assert_true(capped);
    eng_model_close(s260);
    eng_model_close(baby);
    app_ppl_result r = ppl_of("models/babyllama-930K-F32.gguf", NULL, 512, ENG_BACKEND_CPU);
    assert_int_equal(r.n_ctx_train, 256);
    assert_true(r.over_train);
    app_ppl_free(&r);
    r = ppl_of("models/babyllama-930K-F32.gguf", NULL, 256, ENG_BACKEND_CPU);
    assert_false(r.over_train);
    app_ppl_free(&r);
}

int main(int argc, char **argv)
{
    if (argc > 1) /* a test name (glob) to run alone */
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bits_per_byte_by_hand),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_trained_context),
        cmocka_unit_test(test_reference_table_cpu),
        cmocka_unit_test(test_reference_vulkan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
