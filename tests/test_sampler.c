/* The token sampler: exact candidate sets for each filter and for the chain (order included),
 * penalties with llama.cpp's semantics and their window, greedy ties, NaN/inf logits, seeds,
 * sampled frequencies against the softmax, the heap selection against a plain sort on a
 * 152k vocabulary, and parameter validation. Expected values are computed here in double from
 * the definitions in engine/sampler.h. */
#include "tests/testutil.h"

#include <math.h>

#include "engine/sampler.h"

static eng_sampler_params params_off(void)
{
    eng_sampler_params p = {
        .temperature = 1.0f,
        .top_k = 0,
        .top_p = 1.0f,
        .min_p = 0.0f,
        .repeat_penalty = 1.0f,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .penalty_last_n = 0,
        .seed = 1,
    };
    return p;
}

static eng_sampler *make(const eng_sampler_params *p, int32_t n_vocab)
{
    eng_sampler *s = NULL;
    char err[256];
    if (eng_sampler_new(p, n_vocab, &s, err, sizeof err) != ENG_SAMPLER_OK)
        fail_msg("eng_sampler_new: %s", err);
    return s;
}

/* Softmax of logits[ids[i]] / t over the k listed ids, in double. */
static void softmax_of(const float *logits, const int32_t *ids, size_t k, double t, double *p)
{
    double mx = -INFINITY, sum = 0.0;
    for (size_t i = 0; i < k; i++)
        mx = fmax(mx, logits[ids[i]]);
    for (size_t i = 0; i < k; i++)
        sum += p[i] = exp((logits[ids[i]] - mx) / t);
    for (size_t i = 0; i < k; i++)
        p[i] /= sum;
}

/* The candidates must be exactly ids (in this order) with probabilities p. */
static void expect_cands(eng_sampler *s, const float *logits, const int32_t *ids,
                         const double *p, size_t k)
{
    eng_token_prob out[64];
    size_t n = eng_sampler_candidates(s, logits, out, 64);
    assert_int_equal(n, k);
    for (size_t i = 0; i < k; i++) {
        if (out[i].id != ids[i])
            fail_msg("candidate %zu: id %d, expected %d", i, out[i].id, ids[i]);
        if (fabs(out[i].p - p[i]) > 1e-6)
            fail_msg("candidate %zu (id %d): p %.9f, expected %.9f", i, ids[i], out[i].p, p[i]);
    }
}

/* Like expect_cands with the probabilities computed from the logits at temperature t. */
static void expect_ids(eng_sampler *s, const float *logits, const int32_t *ids, size_t k,
                       double t)
{
    double p[64];
    softmax_of(logits, ids, k, t, p);
    expect_cands(s, logits, ids, p, k);
}

static const float L5[5] = { 1, 2, 3, 4, 5 };
static const int32_t DESC5[5] = { 4, 3, 2, 1, 0 };

static void test_top_k(void **state)
{
    eng_sampler_params p = params_off();
    p.top_k = 2;
    eng_sampler *s = make(&p, 5);
    double want[2] = { 1.0 / (1.0 + exp(-1.0)), exp(-1.0) / (1.0 + exp(-1.0)) };
    expect_cands(s, L5, DESC5, want, 2);
    eng_sampler_free(s);

    for (int32_t k = 1; k <= 7; k++) { /* k >= n_vocab keeps everything */
        p.top_k = k;
        s = make(&p, 5);
        expect_ids(s, L5, DESC5, k < 5 ? (size_t)k : 5, 1.0);
        eng_sampler_free(s);
    }
}

static void test_top_p_boundaries(void **state)
{
    /* Full softmax of 1..5, sorted: cumulative sums cum[j] of the best j+1. */
    double all[5], cum[5], acc = 0.0;
    softmax_of(L5, DESC5, 5, 1.0, all);
    for (int j = 0; j < 5; j++)
        cum[j] = acc += all[j];
    for (int j = 0; j < 4; j++) {
        for (int side = 0; side < 2; side++) {
            eng_sampler_params p = params_off();
            p.top_p = (float)(side ? cum[j] + 1e-4 : cum[j] - 1e-4);
            eng_sampler *s = make(&p, 5);
            /* Just below cum[j]: j+1 tokens reach it; just above: one more is needed. */
            expect_ids(s, L5, DESC5, (size_t)j + 1 + (size_t)side, 1.0);
            eng_sampler_free(s);
        }
    }
    /* After top_k 4 the probabilities are renormalised over those four first. */
    double four[4];
    softmax_of(L5, DESC5, 4, 1.0, four);
    acc = 0.0;
    for (int j = 0; j < 3; j++) {
        acc += four[j];
        for (int side = 0; side < 2; side++) {
            eng_sampler_params p = params_off();
            p.top_k = 4;
            p.top_p = (float)(side ? acc + 1e-4 : acc - 1e-4);
            eng_sampler *s = make(&p, 5);
            expect_ids(s, L5, DESC5, (size_t)j + 1 + (size_t)side, 1.0);
            eng_sampler_free(s);
        }
    }
    /* Reaching p exactly is enough (>=): two of four equal weights make exactly 0.5, over the
     * whole vocabulary and after top_k alike. */
    static const float eq[5] = { 1, 1, 1, 1, 0 };
    static const int32_t eq_ids[2] = { 0, 1 };
    for (int32_t k = 0; k <= 4; k += 4) {
        eng_sampler_params p = params_off();
        p.top_k = k;
        p.top_p = 0.5f;
        eng_sampler *s = make(&p, k ? 5 : 4);
        expect_ids(s, eq, eq_ids, 2, 1.0);
        eng_sampler_free(s);
    }
}

static void test_min_p(void **state)
{
    /* p_i / p_max = e^(l_i - 5): 1, 0.368, 0.135, 0.0498, 0.0183 */
    static const struct { float min_p; size_t keep; } cases[] = {
        { 1.0f, 1 }, { 0.37f, 1 }, { 0.36f, 2 }, { 0.14f, 2 }, { 0.13f, 3 },
        { 0.05f, 3 }, { 0.049f, 4 }, { 0.019f, 4 }, { 0.018f, 5 }, { 1e-6f, 5 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        eng_sampler_params p = params_off();
        p.min_p = cases[c].min_p;
        eng_sampler *s = make(&p, 5);
        expect_ids(s, L5, DESC5, cases[c].keep, 1.0);
        eng_sampler_free(s);
    }
    /* Ties at the maximum all stay with min_p = 1. */
    static const float tie[3] = { 5, 5, 1 };
    static const int32_t tie_ids[2] = { 0, 1 };
    for (int32_t k = 0; k <= 2; k += 2) { /* without and with top_k */
        eng_sampler_params p = params_off();
        p.min_p = 1.0f;
        p.top_k = k;
        eng_sampler *s = make(&p, 3);
        expect_ids(s, tie, tie_ids, 2, 1.0);
        eng_sampler_free(s);
    }
}

static void test_chain_order(void **state)
{
    /* top_k 4 -> {4,3,2,1}; top_p 0.9 at T=1 over those: 0.644, 0.881, 0.968 -> {4,3,2};
     * min_p 0.2: e^-2 = 0.135 < 0.2 -> {4,3}; then T = 0.5. Had temperature come first, top_p
     * would keep {4,3} and min_p only {4}. */
    eng_sampler_params p = params_off();
    p.top_k = 4;
    p.top_p = 0.9f;
    p.min_p = 0.2f;
    p.temperature = 0.5f;
    eng_sampler *s = make(&p, 5);
    double want[2] = { 1.0 / (1.0 + exp(-2.0)), exp(-2.0) / (1.0 + exp(-2.0)) };
    expect_cands(s, L5, DESC5, want, 2);
    eng_sampler_free(s);

    /* The same without top_k (top_p over the whole vocabulary): at T=1 the cumulative sums are
     * 0.636, 0.870, 0.956, so 0.9 keeps {4,3,2}; at T=0.5 they would be 0.865, 0.982. */
    p.top_k = 0;
    p.min_p = 0.0f;
    s = make(&p, 5);
    expect_ids(s, L5, DESC5, 3, 0.5);
    eng_sampler_free(s);

    /* top_p before min_p: over the whole vocabulary the best three hold only 17% of the mass,
     * so top_p keeps many and min_p 0.5 then cuts to {0,1,2}. Had min_p come first, top_p
     * renormalised over {0,1,2} (0.367, 0.332) would stop at two. */
    float l[103];
    l[0] = 1.0f, l[1] = 0.9f, l[2] = 0.8f;
    for (int i = 3; i < 103; i++)
        l[i] = -1.0f;
    static const int32_t ids[3] = { 0, 1, 2 };
    p = params_off();
    p.top_p = 0.5f;
    p.min_p = 0.5f;
    s = make(&p, 103);
    expect_ids(s, l, ids, 3, 1.0);
    eng_sampler_free(s);
}

/* The penalised logit of every token, read back through the candidates (filters off). */
static void penalised(eng_sampler *s, const float *logits, int32_t n, float *got)
{
    eng_token_prob out[16];
    assert_true(n <= 16);
    assert_int_equal(eng_sampler_candidates(s, logits, out, 16), (size_t)n);
    for (int32_t i = 0; i < n; i++)
        got[out[i].id] = out[i].logit;
}

static void expect_logits(eng_sampler *s, const float *logits, int32_t n, const float *want)
{
    float got[16];
    penalised(s, logits, n, got);
    for (int32_t i = 0; i < n; i++)
        if (fabsf(got[i] - want[i]) > 1e-6f)
            fail_msg("token %d: logit %.7f, expected %.7f", i, got[i], want[i]);
}

static void test_penalties(void **state)
{
    static const float l[6] = { 1, 2, -1, 3, 0.5f, 0 };
    eng_sampler_params p = params_off();
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.1f;
    p.presence_penalty = 0.5f;
    p.penalty_last_n = -1;
    eng_sampler *s = make(&p, 6);
    static const int32_t hist[5] = { 0, 2, 2, 4, 5 };
    for (int i = 0; i < 5; i++)
        eng_sampler_accept(s, hist[i]);
    /* positive: divided; negative and zero: multiplied; then - count*freq - presence */
    const float want[6] = {
        1.0f / 2 - (1 * 0.1f + 0.5f), 2, -1.0f * 2 - (2 * 0.1f + 0.5f), 3,
        0.5f / 2 - (1 * 0.1f + 0.5f), 0.0f * 2 - (1 * 0.1f + 0.5f),
    };
    expect_logits(s, l, 6, want);
    /* ... and the probabilities are the softmax of exactly those logits, best first. */
    static const int32_t order[6] = { 3, 1, 0, 4, 5, 2 };
    double pw[6];
    softmax_of(want, order, 6, 1.0, pw);
    expect_cands(s, l, order, pw, 6);
    /* Greedy sees the penalties too: token 3 at 3 beats 1 at 2 until 3 is penalised. */
    eng_sampler_free(s);
    p.temperature = 0.0f;
    p.repeat_penalty = 1.0f;
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 1.5f;
    s = make(&p, 6);
    assert_int_equal(eng_sampler_sample(s, l), 3);
    eng_sampler_accept(s, 3);
    assert_int_equal(eng_sampler_sample(s, l), 1);
    eng_sampler_free(s);
    /* A negative presence penalty raises a token above the old maximum. */
    p.presence_penalty = -2.5f;
    s = make(&p, 6);
    eng_sampler_accept(s, 0);
    assert_int_equal(eng_sampler_sample(s, l), 0); /* 1 + 2.5 > 3 */
    eng_sampler_free(s);
}

static void test_penalty_window(void **state)
{
    static const float zero[4] = { 0, 0, 0, 0 };
    eng_sampler_params p = params_off();
    p.frequency_penalty = 0.25f;
    p.presence_penalty = 1.0f;
    p.penalty_last_n = 2;
    eng_sampler *s = make(&p, 4);
    eng_sampler_accept(s, 0);
    eng_sampler_accept(s, 1);
    eng_sampler_accept(s, 2); /* window {1, 2}: token 0 has left it */
    expect_logits(s, zero, 4, (const float[]){ 0, -1.25f, -1.25f, 0 });
    eng_sampler_accept(s, 2); /* window {2, 2} */
    expect_logits(s, zero, 4, (const float[]){ 0, 0, -1.5f, 0 });
    eng_sampler_accept(s, -1); /* ignored, as are ids past the vocabulary */
    eng_sampler_accept(s, 4);
    expect_logits(s, zero, 4, (const float[]){ 0, 0, -1.5f, 0 });
    eng_sampler_accept(s, 1); /* window {2, 1}: token 1 counts once, not twice */
    expect_logits(s, zero, 4, (const float[]){ 0, -1.25f, -1.25f, 0 });
    eng_sampler_reset(s);
    expect_logits(s, zero, 4, zero);
    eng_sampler_free(s);

    p.penalty_last_n = -1; /* everything since new/reset */
    s = make(&p, 4);
    for (int i = 0; i < 3; i++)
        eng_sampler_accept(s, i);
    eng_sampler_accept(s, 2);
    expect_logits(s, zero, 4, (const float[]){ -1.25f, -1.25f, -1.5f, 0 });
    eng_sampler_free(s);

    p.penalty_last_n = 0; /* off */
    s = make(&p, 4);
    for (int i = 0; i < 4; i++)
        eng_sampler_accept(s, i);
    expect_logits(s, zero, 4, zero);
    eng_sampler_free(s);
}

static void test_greedy(void **state)
{
    eng_sampler_params p = params_off();
    p.temperature = 0.0f;
    p.top_k = 1; /* filters cannot change a greedy pick */
    p.top_p = 0.1f;
    p.min_p = 0.9f;
    eng_sampler *s = make(&p, 4);
    static const float tie[4] = { 1, 5, 5, 2 };
    for (int i = 0; i < 3; i++)
        assert_int_equal(eng_sampler_sample(s, tie), 1);
    eng_token_prob out[4];
    assert_int_equal(eng_sampler_candidates(s, tie, out, 4), 1);
    assert_int_equal(out[0].id, 1);
    assert_true(out[0].p == 1.0f && out[0].logit == 5.0f);
    const float nan_tie[4] = { NAN, 3, NAN, 3 };
    assert_int_equal(eng_sampler_sample(s, nan_tie), 1);
    const float pinf[4] = { 1, INFINITY, 2, INFINITY };
    assert_int_equal(eng_sampler_sample(s, pinf), 1);
    eng_sampler_free(s);
}

static void test_nonfinite(void **state)
{
    eng_sampler_params p = params_off();
    p.seed = 7;
    eng_sampler *s = make(&p, 5);
    const float l[5] = { NAN, -INFINITY, 0, NAN, 1 };
    static const int32_t ids[2] = { 4, 2 };
    expect_ids(s, l, ids, 2, 1.0);
    for (int i = 0; i < 2000; i++) {
        int32_t t = eng_sampler_sample(s, l);
        assert_true(t == 2 || t == 4);
    }
    /* Every +inf token shares the mass equally; finite ones stay candidates with p = 0. */
    const float inf2[5] = { 0, INFINITY, 5, INFINITY, NAN };
    static const int32_t inf_ids[4] = { 1, 3, 2, 0 };
    static const double half[4] = { 0.5, 0.5, 0, 0 };
    expect_cands(s, inf2, inf_ids, half, 4);
    int seen[5] = { 0 };
    for (int i = 0; i < 2000; i++)
        seen[eng_sampler_sample(s, inf2)]++;
    assert_true(seen[1] > 800 && seen[3] > 800 && seen[1] + seen[3] == 2000);
    /* Nothing usable: no token, for sampling, greedy and the candidate list alike. */
    const float none[5] = { NAN, -INFINITY, -INFINITY, NAN, -INFINITY };
    assert_int_equal(eng_sampler_sample(s, none), ENG_SAMPLER_NO_TOKEN);
    assert_int_equal(eng_sampler_candidates(s, none, NULL, 0), 0);
    eng_sampler_free(s);
    p.temperature = 0.0f;
    s = make(&p, 5);
    assert_int_equal(eng_sampler_sample(s, none), ENG_SAMPLER_NO_TOKEN);
    eng_sampler_free(s);
    /* Penalties never revive a NaN or -inf token, however negative. */
    p.temperature = 1.0f;
    p.presence_penalty = -100.0f;
    p.penalty_last_n = -1;
    s = make(&p, 5);
    for (int32_t t = 0; t < 5; t++)
        eng_sampler_accept(s, t);
    expect_ids(s, l, (const int32_t[]){ 4, 2 }, 2, 1.0);
    eng_sampler_free(s);
}

static void run_seq(uint64_t seed, const float *l, int32_t n_vocab, int32_t *seq, int n)
{
    eng_sampler_params p = params_off();
    p.seed = seed;
    eng_sampler *s = make(&p, n_vocab);
    for (int i = 0; i < n; i++)
        seq[i] = eng_sampler_sample(s, l);
    eng_sampler_free(s);
}

static void test_seed(void **state)
{
    float l[50];
    for (int i = 0; i < 50; i++)
        l[i] = (float)(i % 7) * 0.3f;
    int32_t a[200], b[200], c[200];
    run_seq(42, l, 50, a, 200);
    run_seq(42, l, 50, b, 200);
    run_seq(43, l, 50, c, 200);
    assert_memory_equal(a, b, sizeof a);
    int differ = 0;
    for (int i = 0; i < 200; i++)
        differ += a[i] != c[i];
    assert_true(differ > 100); /* ~97% of positions for independent streams */
    /* reset restarts the same sequence */
    eng_sampler_params p = params_off();
    p.seed = 42;
    eng_sampler *s = make(&p, 50);
    for (int i = 0; i < 37; i++)
        eng_sampler_sample(s, l);
    eng_sampler_reset(s);
    for (int i = 0; i < 200; i++)
        assert_int_equal(eng_sampler_sample(s, l), a[i]);
    eng_sampler_free(s);
}

/* 20000 draws; every bucket within 4 sigma of N * p from the candidate list (which the
 * exact-set tests pin to the definitions), and nothing outside the list ever drawn. */
static void check_frequencies(const eng_sampler_params *p, const float *l, int32_t n_vocab)
{
    enum { N = 20000 };
    eng_sampler *s = make(p, n_vocab);
    eng_token_prob c[16];
    size_t k = eng_sampler_candidates(s, l, c, 16);
    assert_true(k >= 2 && k <= 16);
    int counts[16] = { 0 };
    for (int i = 0; i < N; i++) {
        int32_t t = eng_sampler_sample(s, l);
        size_t j = 0;
        while (j < k && c[j].id != t)
            j++;
        if (j == k)
            fail_msg("drew token %d, which is not a candidate", t);
        counts[j]++;
    }
    for (size_t j = 0; j < k; j++) {
        double e = N * (double)c[j].p, sd = sqrt(N * (double)c[j].p * (1.0 - c[j].p));
        if (fabs(counts[j] - e) > 4.0 * sd + 1e-9)
            fail_msg("token %d: %d draws, expected %.1f +- %.1f", c[j].id, counts[j], e, sd);
    }
    eng_sampler_free(s);
}

static void test_frequencies(void **state)
{
    static const float l[8] = { 0, 1, 2, 0.5f, -1, 1.5f, -0.5f, 0.2f };
    eng_sampler_params p = params_off(); /* unsorted path: draw in id order */
    p.seed = 1234;
    check_frequencies(&p, l, 8);
    p.top_k = 4; /* sorted path, with temperature */
    p.temperature = 0.7f;
    check_frequencies(&p, l, 8);
    p.top_k = 0; /* top_p over the whole vocabulary, then min_p */
    p.top_p = 0.9f;
    p.min_p = 0.1f;
    p.temperature = 1.3f;
    check_frequencies(&p, l, 8);
}

/* Reference order: logit descending, id ascending. */
static int by_rank(const void *a, const void *b)
{
    const eng_token_prob *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : 1;
}

static uint64_t xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void test_large_vocab(void **state)
{
    enum { V = 152064 };
    float *l = malloc(V * sizeof *l);
    eng_token_prob *ref = malloc(V * sizeof *ref), *out = malloc(V * sizeof *out);
    assert_true(l && ref && out);
    uint64_t x = random_seed("test_sampler large vocabulary");
    for (int i = 0; i < V; i++) /* coarse values: many ties, ranked by id */
        ref[i] = (eng_token_prob){ i, l[i] = (float)(xorshift(&x) % 2048) / 64.0f - 16.0f, 0 };
    qsort(ref, V, sizeof *ref, by_rank);

    eng_sampler_params p = params_off();
    p.top_k = 500;
    eng_sampler *s = make(&p, V);
    assert_int_equal(eng_sampler_candidates(s, l, out, V), 500);
    for (int i = 0; i < 500; i++)
        assert_int_equal(out[i].id, ref[i].id);
    eng_sampler_free(s);

    /* top_p without top_k, with the cut far past the first looks (64, 512): p halfway between
     * the cumulative sums of the best 3000 and 3001 keeps exactly 3001. */
    double sum = 0.0, cum = 0.0, mx = ref[0].logit;
    for (int i = 0; i < V; i++)
        sum += exp(ref[i].logit - mx);
    for (int i = 0; i < 3000; i++)
        cum += exp(ref[i].logit - mx) / sum;
    p = params_off();
    p.top_p = (float)(cum + 0.5 * exp(ref[3000].logit - mx) / sum);
    s = make(&p, V);
    assert_int_equal(eng_sampler_candidates(s, l, out, V), 3001);
    for (int i = 0; i < 3001; i++)
        assert_int_equal(out[i].id, ref[i].id);
    eng_sampler_free(s);

    /* min_p alone never sorts; the listed head must still come out in rank order. */
    p = params_off();
    p.min_p = expf(-0.51f); /* between grid steps (1/64), away from rounding ties */
    size_t keep = 0;
    while (ref[keep].logit >= ref[0].logit - 0.51f)
        keep++;
    s = make(&p, V);
    assert_int_equal(eng_sampler_candidates(s, l, out, 20), keep);
    for (int i = 0; i < 20; i++)
        assert_int_equal(out[i].id, ref[i].id);
    eng_sampler_free(s);
    free(out);
    free(ref);
    free(l);
}

/* top_p without top_k where most tokens share one histogram bucket: five distinct logits
 * within 0.004 over 20000 tokens, so the cut falls among thousands of exact ties (ranked by
 * id); and a vocabulary of equal logits, where top_p keeps exactly the lowest ids. */
static void test_top_p_crowded(void **state)
{
    enum { V = 20000, K = 7777 };
    float *l = malloc(V * sizeof *l);
    eng_token_prob *ref = malloc(V * sizeof *ref), *out = malloc(V * sizeof *out);
    assert_true(l && ref && out);
    for (int i = 0; i < V; i++)
        ref[i] = (eng_token_prob){ i, l[i] = (float)((i * 7919) % 5) * 1e-3f, 0 };
    qsort(ref, V, sizeof *ref, by_rank);
    double sum = 0.0, cum = 0.0;
    for (int i = 0; i < V; i++)
        sum += exp(ref[i].logit - ref[0].logit);
    for (int i = 0; i < K; i++)
        cum += exp(ref[i].logit - ref[0].logit) / sum;
    eng_sampler_params p = params_off();
    p.top_p = (float)(cum + 0.5 * exp(ref[K].logit - ref[0].logit) / sum);
    eng_sampler *s = make(&p, V);
    assert_int_equal(eng_sampler_candidates(s, l, out, V), K + 1);
    for (int i = 0; i <= K; i++)
        assert_int_equal(out[i].id, ref[i].id);
    eng_sampler_free(s);

    for (int i = 0; i < 1000; i++)
        l[i] = 0.5f;
    p.top_p = 0.5f; /* 500 of 1000 equal weights reach exactly half */
    s = make(&p, 1000);
    assert_int_equal(eng_sampler_candidates(s, l, out, 1000), 500);
    for (int i = 0; i < 500; i++)
        assert_true(out[i].id == i && fabsf(out[i].p - 1.0f / 500) < 1e-7f);
    for (int i = 0; i < 3000; i++) {
        int32_t t = eng_sampler_sample(s, l);
        assert_true(t >= 0 && t < 500);
    }
    eng_sampler_free(s);
    /* Small equal vocabularies put the exact boundary on a quickselect pivot now and then. */
    for (int32_t v = 17; v <= 200; v++) {
        s = make(&p, v);
        assert_int_equal(eng_sampler_candidates(s, l, NULL, 0), (size_t)(v + 1) / 2);
        eng_sampler_free(s);
    }
    free(out);
    free(ref);
    free(l);
}

static void test_candidates_api(void **state)
{
    eng_sampler_params p = params_off();
    eng_sampler *s = make(&p, 5);
    assert_int_equal(eng_sampler_candidates(s, L5, NULL, 0), 5);
    eng_token_prob out[2];
    assert_int_equal(eng_sampler_candidates(s, L5, out, 2), 5);
    double all[5];
    softmax_of(L5, DESC5, 5, 1.0, all); /* probabilities over all survivors, not just those shown */
    assert_int_equal(out[0].id, 4);
    assert_int_equal(out[1].id, 3);
    assert_true(fabs(out[0].p - all[0]) < 1e-6 && fabs(out[1].p - all[1]) < 1e-6);

    /* The caller's logits are never written, penalties or not. */
    eng_sampler_free(s);
    p.repeat_penalty = 1.3f;
    p.presence_penalty = 0.2f;
    p.penalty_last_n = 8;
    s = make(&p, 5);
    eng_sampler_accept(s, 4);
    float l[5];
    memcpy(l, L5, sizeof l);
    eng_sampler_sample(s, l);
    eng_sampler_candidates(s, l, out, 2);
    assert_memory_equal(l, L5, sizeof l);
    const eng_sampler_params *got = eng_sampler_get_params(s);
    assert_true(got->repeat_penalty == 1.3f && got->penalty_last_n == 8);
    eng_sampler_free(s);
    eng_sampler_free(NULL);
}

static void expect_bad(const eng_sampler_params *p, const char *field)
{
    char err[256] = "";
    assert_int_equal(eng_sampler_params_check(p, err, sizeof err), ENG_SAMPLER_ERR_PARAM);
    if (!strstr(err, field))
        fail_msg("message \"%s\" does not name %s", err, field);
    eng_sampler *s = (eng_sampler *)1;
    assert_int_equal(eng_sampler_new(p, 10, &s, NULL, 0), ENG_SAMPLER_ERR_PARAM);
    assert_null(s);
}

static void test_params_check(void **state)
{
    eng_sampler_params d = eng_sampler_params_default();
    assert_int_equal(eng_sampler_params_check(&d, NULL, 0), ENG_SAMPLER_OK);
    assert_true(d.temperature == 0.8f && d.top_k == 40 && d.top_p == 0.95f && d.min_p == 0.05f);
#define BAD(fieldname, value)                                                                      \
    do {                                                                                           \
        eng_sampler_params q = d;                                                                  \
        q.fieldname = value;                                                                       \
        expect_bad(&q, #fieldname);                                                                \
    } while (0)
    BAD(temperature, -0.1f);
    BAD(temperature, NAN);
    BAD(temperature, INFINITY);
    BAD(top_k, -1);
    BAD(top_p, 0.0f);
    BAD(top_p, 1.01f);
    BAD(top_p, NAN);
    BAD(min_p, -0.01f);
    BAD(min_p, 1.5f);
    BAD(min_p, NAN);
    BAD(repeat_penalty, 0.0f);
    BAD(repeat_penalty, -1.0f);
    BAD(repeat_penalty, NAN);
    BAD(frequency_penalty, NAN);
    BAD(presence_penalty, -INFINITY);
    BAD(penalty_last_n, -2);
#undef BAD
    char err[256];
    eng_sampler *s = NULL;
    assert_int_equal(eng_sampler_new(&d, 0, &s, err, sizeof err), ENG_SAMPLER_ERR_ARG);
    assert_non_null(strstr(err, "n_vocab"));
    assert_int_equal(eng_sampler_new(NULL, 5, &s, err, sizeof err), ENG_SAMPLER_ERR_ARG);
    /* Edge values that are valid. */
    d.top_p = 1.0f, d.min_p = 1.0f, d.temperature = 0.0f, d.top_k = 0, d.penalty_last_n = -1;
    d.frequency_penalty = -2.0f, d.presence_penalty = -2.0f;
    assert_int_equal(eng_sampler_params_check(&d, NULL, 0), ENG_SAMPLER_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p_boundaries),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_chain_order),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_penalty_window),
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_seed),
        cmocka_unit_test(test_frequencies),
        cmocka_unit_test(test_large_vocab),
        cmocka_unit_test(test_top_p_crowded),
        cmocka_unit_test(test_candidates_api),
        cmocka_unit_test(test_params_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
