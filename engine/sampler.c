/* Token sampler (see sampler.h for the chain and its exact definitions).
 *
 * Cost per token for n_vocab V: one pass over the logits (sanitise, penalise, find the
 * maximum) plus, depending on the filters,
 *   greedy            nothing more;
 *   top_k = k         a bounded heap of k entries over the vocabulary, O(V + k log k) in
 *                     practice, since most logits lose against the heap's root at once;
 *   top_p without k   one exp per token for the normaliser, then the best 64, 512, 4096, ...
 *                     tokens by the same heap until their cumulative probability reaches p
 *                     (a peaked distribution stops at 64; a flat one may sort everything);
 *   neither           one filtering pass (min_p threshold), no sorting at all.
 * Every buffer is sized by n_vocab at eng_sampler_new.
 */
#include "engine/sampler.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* top_p without top_k first looks at this many of the best tokens, then 8 times more. */
#define TOP_P_FIRST_LOOK 64

struct eng_sampler {
    eng_sampler_params par;
    int32_t n_vocab;
    float *logit;         /* (n_vocab) this call's logits after sanitising and penalties */
    eng_token_prob *cand; /* (n_vocab) the candidate set, or the selection heap building it */
    int32_t *count;       /* (n_vocab) occurrences of each token in the penalty history */
    int32_t *window;      /* (penalty_last_n) ring of the history; NULL unless last_n > 0 */
    size_t win_len;       /* tokens in the ring */
    size_t win_head;      /* slot of the oldest token in the ring */
    uint64_t rng[4];      /* xoshiro256** state */

    /* Set by prepare() for the current call. */
    size_t n_valid;  /* tokens whose logit is not -inf */
    float max_logit; /* the highest logit; -inf when n_valid is 0 */
    int32_t argmax;  /* lowest id holding max_logit */
    /* Set by run_chain(). */
    bool sorted; /* cand is ordered best first; otherwise it is in id order ... */
    float thr;   /* ... and holds exactly the valid tokens with logit >= thr */
};

/* ---- random numbers: splitmix64 seeding, xoshiro256** (Blackman & Vigna, prng.di.unimi.it) */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void rng_seed(eng_sampler *s)
{
    /* splitmix64 never yields four zero words in a row, so the state is valid for any seed. */
    uint64_t x = s->par.seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
}

static uint64_t rng_next(eng_sampler *s)
{
    uint64_t *st = s->rng;
    uint64_t result = rotl(st[1] * 5, 7) * 9;
    uint64_t t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl(st[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_unit(eng_sampler *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* ---- parameters ---- */

eng_sampler_params eng_sampler_params_default(void)
{
    eng_sampler_params p = {
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .penalty_last_n = 64,
        .seed = 0,
    };
    return p;
}

static eng_sampler_status bad(char *err, size_t errlen, const char *field, double v,
                              const char *rule)
{
    if (err && errlen)
        snprintf(err, errlen, "sampler: %s = %g is invalid (%s)", field, v, rule);
    return ENG_SAMPLER_ERR_PARAM;
}

eng_sampler_status eng_sampler_params_check(const eng_sampler_params *p, char *err, size_t errlen)
{
    if (!p) {
        if (err && errlen)
            snprintf(err, errlen, "sampler: no parameters given");
        return ENG_SAMPLER_ERR_ARG;
    }
    /* Written as !(good) so that NaN, which fails every comparison, is caught too. */
    if (!(p->temperature >= 0.0f && isfinite(p->temperature)))
        return bad(err, errlen, "temperature", p->temperature, "must be finite and >= 0");
    if (p->top_k < 0)
        return bad(err, errlen, "top_k", p->top_k, "must be >= 0; 0 turns it off");
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return bad(err, errlen, "top_p", p->top_p, "must be in (0, 1]; 1 turns it off");
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return bad(err, errlen, "min_p", p->min_p, "must be in [0, 1]; 0 turns it off");
    if (!(p->repeat_penalty > 0.0f && isfinite(p->repeat_penalty)))
        return bad(err, errlen, "repeat_penalty", p->repeat_penalty,
                   "must be finite and > 0; 1 turns it off");
    if (!isfinite(p->frequency_penalty))
        return bad(err, errlen, "frequency_penalty", p->frequency_penalty, "must be finite");
    if (!isfinite(p->presence_penalty))
        return bad(err, errlen, "presence_penalty", p->presence_penalty, "must be finite");
    if (p->penalty_last_n < -1)
        return bad(err, errlen, "penalty_last_n", p->penalty_last_n,
                   "must be >= -1; 0 turns penalties off, -1 means the whole context");
    return ENG_SAMPLER_OK;
}

/* ---- lifecycle ---- */

eng_sampler_status eng_sampler_new(const eng_sampler_params *p, int32_t n_vocab, eng_sampler **out,
                                   char *err, size_t errlen)
{
    if (!out) {
        if (err && errlen)
            snprintf(err, errlen, "sampler: no output pointer given");
        return ENG_SAMPLER_ERR_ARG;
    }
    *out = NULL;
    eng_sampler_status st = eng_sampler_params_check(p, err, errlen);
    if (st != ENG_SAMPLER_OK)
        return st;
    if (n_vocab < 1) {
        if (err && errlen)
            snprintf(err, errlen, "sampler: n_vocab = %d, need at least 1 token", (int)n_vocab);
        return ENG_SAMPLER_ERR_ARG;
    }
    eng_sampler *s = calloc(1, sizeof *s);
    if (!s)
        goto fail;
    s->par = *p;
    s->n_vocab = n_vocab;
    s->logit = malloc((size_t)n_vocab * sizeof *s->logit);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->count = calloc((size_t)n_vocab, sizeof *s->count);
    if (!s->logit || !s->cand || !s->count)
        goto fail;
    if (p->penalty_last_n > 0) {
        s->window = malloc((size_t)p->penalty_last_n * sizeof *s->window);
        if (!s->window)
            goto fail;
    }
    rng_seed(s);
    *out = s;
    return ENG_SAMPLER_OK;
fail:
    eng_sampler_free(s);
    if (err && errlen)
        snprintf(err, errlen, "sampler: out of memory for n_vocab = %d, penalty_last_n = %d",
                 (int)n_vocab, (int)p->penalty_last_n);
    return ENG_SAMPLER_ERR_NOMEM;
}

void eng_sampler_free(eng_sampler *s)
{
    if (!s)
        return;
    free(s->window);
    free(s->count);
    free(s->cand);
    free(s->logit);
    free(s);
}

const eng_sampler_params *eng_sampler_get_params(const eng_sampler *s)
{
    return s ? &s->par : NULL;
}

/* ---- penalty history ---- */

void eng_sampler_accept(eng_sampler *s, int32_t token)
{
    if (!s || token < 0 || token >= s->n_vocab || s->par.penalty_last_n == 0)
        return;
    if (s->par.penalty_last_n < 0) {
        if (s->count[token] < INT32_MAX)
            s->count[token]++;
        return;
    }
    size_t cap = (size_t)s->par.penalty_last_n;
    if (s->win_len == cap) {
        /* The oldest token leaves the window as the new one enters. */
        s->count[s->window[s->win_head]]--;
        s->window[s->win_head] = token;
        s->win_head = (s->win_head + 1) % cap;
    } else {
        s->window[(s->win_head + s->win_len) % cap] = token;
        s->win_len++;
    }
    s->count[token]++;
}

void eng_sampler_reset(eng_sampler *s)
{
    if (!s)
        return;
    memset(s->count, 0, (size_t)s->n_vocab * sizeof *s->count);
    s->win_len = 0;
    s->win_head = 0;
    rng_seed(s);
}

/* ---- the chain ---- */

/* Step 1 and 2 of the chain into s->logit, plus the maximum, in one pass over the vocabulary. */
static void prepare(eng_sampler *s, const float *logits)
{
    const eng_sampler_params *p = &s->par;
    const bool pen = p->penalty_last_n != 0 && (p->repeat_penalty != 1.0f ||
                                                p->frequency_penalty != 0.0f ||
                                                p->presence_penalty != 0.0f);
    float mx = -INFINITY;
    int32_t arg = ENG_SAMPLER_NO_TOKEN;
    size_t nv = 0;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        float l = logits[i];
        if (isnan(l))
            l = -INFINITY;
        else if (l == INFINITY)
            l = FLT_MAX;
        if (pen && s->count[i] > 0 && l > -INFINITY) {
            l = l <= 0.0f ? l * p->repeat_penalty : l / p->repeat_penalty;
            l -= (float)s->count[i] * p->frequency_penalty + p->presence_penalty;
            /* A penalty must not turn a usable token into a banned (-inf) one or into +inf. */
            l = fminf(fmaxf(l, -FLT_MAX), FLT_MAX);
        }
        s->logit[i] = l;
        if (l > -INFINITY) {
            nv++;
            if (l > mx) {
                mx = l;
                arg = i;
            }
        }
    }
    s->n_valid = nv;
    s->max_logit = mx;
    s->argmax = arg;
}

/* a ranks before b: higher logit, or the same logit and a lower id. */
static bool better(const eng_token_prob *a, const eng_token_prob *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

/* Restores the heap property below slot i in h[0..n): every parent ranks after its children,
 * so h[0] is the worst token kept. */
static void sift_down(eng_token_prob *h, size_t n, size_t i)
{
    eng_token_prob x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && better(&h[c], &h[c + 1]))
            c++;
        if (!better(&x, &h[c]))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* The best m valid tokens with logit >= thr, best first, into s->cand; returns how many
 * (fewer than m when fewer qualify). A bounded heap: a token enters only when it beats the
 * worst one kept, so for small m nearly every token costs one comparison. */
static size_t select_top(eng_sampler *s, size_t m, float thr)
{
    eng_token_prob *h = s->cand;
    size_t n = 0;
    int32_t i = 0;
    if (m == 0)
        return 0;
    for (; i < s->n_vocab && n < m; i++) {
        float l = s->logit[i];
        if (l > -INFINITY && l >= thr)
            h[n++] = (eng_token_prob){ .id = i, .logit = l };
    }
    for (size_t j = n / 2; j-- > 0;)
        sift_down(h, n, j);
    for (; i < s->n_vocab; i++) {
        /* Ids rise, so a later token with the root's logit ranks after it: strict > is right. */
        float l = s->logit[i];
        if (l > h[0].logit && l >= thr) {
            h[0] = (eng_token_prob){ .id = i, .logit = l };
            sift_down(h, n, 0);
        }
    }
    /* Heapsort: moving the worst to the back each time leaves the array best first. */
    for (size_t k = n; k > 1; k--) {
        eng_token_prob t = h[0];
        h[0] = h[k - 1];
        h[k - 1] = t;
        sift_down(h, k - 1, 0);
    }
    return n;
}

/* Length of the shortest prefix of cand[0..n) (sorted best first) whose probabilities,
 * exp(l - mx) / sum, add up to >= p; 0 when even all n fall short. */
static size_t top_p_prefix(const eng_token_prob *cand, size_t n, float mx, double sum, float p)
{
    double cum = 0.0;
    for (size_t i = 0; i < n; i++) {
        cum += (double)expf(cand[i].logit - mx) / sum;
        if (cum >= (double)p)
            return i + 1;
    }
    return 0;
}

/* top_p over the whole vocabulary: the normaliser needs every token, but the prefix usually
 * lies within the best few, so sort only a growing head of the distribution. */
static size_t top_p_full(eng_sampler *s)
{
    const float mx = s->max_logit;
    double sum = 0.0;
    for (int32_t i = 0; i < s->n_vocab; i++)
        sum += (double)expf(s->logit[i] - mx); /* -inf gives 0 */
    for (size_t m = TOP_P_FIRST_LOOK;; m *= 8) {
        if (m > s->n_valid)
            m = s->n_valid;
        size_t n = select_top(s, m, -INFINITY);
        size_t cut = top_p_prefix(s->cand, n, mx, sum, s->par.top_p);
        if (cut)
            return cut;
        if (m == s->n_valid)
            return n; /* rounding kept the total just under p: keep everything */
    }
}

/* min_p on a candidate set sorted best first: a prefix, the best token always kept. */
static size_t min_p_prefix(const eng_sampler *s, size_t n)
{
    const float thr = s->cand[0].logit + logf(s->par.min_p);
    size_t k = 1;
    while (k < n && s->cand[k].logit >= thr)
        k++;
    return k;
}

/* Steps 3-5 of the chain: leaves the survivors in s->cand[0..n) and returns n (>= 1, given
 * n_valid >= 1). Sorting happens only when top_k or top_p asks for it. */
static size_t run_chain(eng_sampler *s)
{
    const eng_sampler_params *p = &s->par;
    const bool top_k = p->top_k > 0 && (size_t)p->top_k < s->n_valid;
    const bool top_p = p->top_p < 1.0f;
    const bool min_p = p->min_p > 0.0f;
    size_t n;
    if (top_k) {
        n = select_top(s, (size_t)p->top_k, -INFINITY);
        if (top_p) {
            double sum = 0.0;
            for (size_t i = 0; i < n; i++)
                sum += (double)expf(s->cand[i].logit - s->cand[0].logit);
            size_t cut = top_p_prefix(s->cand, n, s->cand[0].logit, sum, p->top_p);
            if (cut)
                n = cut;
        }
    } else if (top_p) {
        n = top_p_full(s);
    } else {
        /* No sorting filter: min_p (if on) is a threshold on the logits, kept in id order. */
        s->sorted = false;
        s->thr = min_p ? s->max_logit + logf(p->min_p) : -INFINITY;
        n = 0;
        for (int32_t i = 0; i < s->n_vocab; i++) {
            float l = s->logit[i];
            if (l > -INFINITY && l >= s->thr)
                s->cand[n++] = (eng_token_prob){ .id = i, .logit = l };
        }
        return n;
    }
    s->sorted = true;
    return min_p ? min_p_prefix(s, n) : n;
}

/* Step 6: the unnormalised weights exp((l - max) / T) into cand[i].p; returns their sum. The
 * best token survives every filter, so max_logit is the survivors' maximum too and the sum is
 * at least 1. Dividing rather than multiplying by 1/T keeps a tiny T from making inf * 0. */
static double weigh(eng_sampler *s, size_t n)
{
    const float mx = s->max_logit, t = s->par.temperature;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        float w = expf((s->cand[i].logit - mx) / t);
        s->cand[i].p = w;
        sum += (double)w;
    }
    return sum;
}

/* Step 7. The running sum adds the same weights in the same order as weigh(), so it ends at
 * exactly sum > u * sum: a token is always found, and a zero-weight one never is. */
static size_t draw(eng_sampler *s, size_t n, double sum)
{
    const double target = rng_unit(s) * sum;
    double cum = 0.0;
    for (size_t i = 0; i < n; i++) {
        cum += (double)s->cand[i].p;
        if (cum > target)
            return i;
    }
    for (size_t i = n; i-- > 0;) /* u * sum rounded up to sum: take the last possible one */
        if (s->cand[i].p > 0.0f)
            return i;
    return 0;
}

int32_t eng_sampler_sample(eng_sampler *s, const float *logits)
{
    if (!s || !logits)
        return ENG_SAMPLER_NO_TOKEN;
    prepare(s, logits);
    if (s->n_valid == 0)
        return ENG_SAMPLER_NO_TOKEN;
    if (s->par.temperature == 0.0f)
        return s->argmax;
    size_t n = run_chain(s);
    double sum = weigh(s, n);
    return s->cand[draw(s, n, sum)].id;
}

size_t eng_sampler_candidates(eng_sampler *s, const float *logits, eng_token_prob *out,
                              size_t max)
{
    if (!s || !logits || (!out && max))
        return 0;
    prepare(s, logits);
    if (s->n_valid == 0)
        return 0;
    if (s->par.temperature == 0.0f) {
        if (max)
            out[0] = (eng_token_prob){ s->argmax, s->max_logit, 1.0f };
        return 1;
    }
    size_t n = run_chain(s);
    double sum = weigh(s, n);
    size_t k = n < max ? n : max;
    /* An unsorted set is exactly the valid tokens >= thr, so its best k can be reselected. */
    if (!s->sorted && k > 0)
        select_top(s, k, s->thr);
    for (size_t i = 0; i < k; i++) {
        const eng_token_prob *c = &s->cand[i];
        float w = expf((c->logit - s->max_logit) / s->par.temperature);
        out[i] = (eng_token_prob){ c->id, c->logit, (float)((double)w / sum) };
    }
    return n;
}
