/* Token sampler (see sampler.h for the chain and its exact definitions).
 *
 * Cost per token for a vocabulary of V tokens: one scan for the maximum (with a copy of the
 * logits only when NaN, inf or a penalty changes one, and a walk over the penalty history),
 * then, depending on the filters:
 *   greedy            the first token equal to the maximum;
 *   top_k = k         a bounded heap of k entries over the vocabulary: about one comparison
 *                     per token, plus k log k; top_p and min_p then work on those k, sorted;
 *   top_p without k   one exp per token (the normaliser needs all of them) and a histogram of
 *                     the weights; only the tokens of the bucket where top_p is crossed are
 *                     ordered (quickselect), never the whole vocabulary;
 *   otherwise         nothing: min_p is a threshold on the logits.
 * Without top_k the survivors are never gathered: they are the tokens ranking at or before a
 * cut token, and one pass weighs them (one exp per survivor) for the draw.
 * Every buffer is allocated by eng_sampler_new; sampling never allocates.
 */
#include "engine/sampler.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* See weight_key(). */
#define WEIGHT_KEY_SHIFT 19
#define WEIGHT_KEYS ((0x3f800000u >> WEIGHT_KEY_SHIFT) + 1) /* keys of weights in [0, 1] */

struct eng_sampler {
    eng_sampler_params par;
    int32_t n_vocab;
    float *fixed;         /* (n_vocab) this call's logits after sanitising and penalties, when
                             either had anything to change */
    float *weight;        /* (n_vocab) exp((logit - max) / T) by token id, or by position in
                             cand when sorted */
    eng_token_prob *cand; /* (n_vocab) the sorted candidate set, a selection heap, or the
                             tokens of one weight key */
    int32_t *count;       /* (n_vocab) occurrences of each token in the penalty history */
    int32_t *hist;        /* penalty_last_n > 0: ring of the last tokens (penalty_last_n);
                             -1: every distinct token once, as first seen (n_vocab); else NULL */
    size_t hist_len;      /* tokens in hist */
    size_t hist_head;     /* ring only: slot of the oldest token */
    uint64_t rng[4];      /* xoshiro256** state */

    /* Set by prepare() for the current call. */
    const float *logit; /* (n_vocab) the caller's logits when clean, else fixed */
    size_t n_valid;  /* tokens whose logit is not -inf */
    float max_logit; /* the highest logit; -inf when n_valid is 0 */
    /* Set by run_chain(). */
    bool sorted;        /* the survivors are cand[0..n), best first; else they are ... */
    eng_token_prob cut; /* ... the usable tokens ranking at or before this one */
    double key_mass[WEIGHT_KEYS]; /* top_p_vocab's histogram: total weight by weight_key */
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
    s->fixed = malloc((size_t)n_vocab * sizeof *s->fixed);
    s->weight = malloc((size_t)n_vocab * sizeof *s->weight);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    s->count = calloc((size_t)n_vocab, sizeof *s->count);
    if (!s->fixed || !s->weight || !s->cand || !s->count)
        goto fail;
    if (p->penalty_last_n != 0) {
        size_t cap = p->penalty_last_n > 0 ? (size_t)p->penalty_last_n : (size_t)n_vocab;
        s->hist = malloc(cap * sizeof *s->hist);
        if (!s->hist)
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
    free(s->hist);
    free(s->count);
    free(s->cand);
    free(s->weight);
    free(s->fixed);
    free(s);
}

const eng_sampler_params *eng_sampler_get_params(const eng_sampler *s)
{
    return s ? &s->par : NULL;
}

/* ---- penalty history ---- */

/* The penalties look at the history through count[]; hist says which counts are non-zero,
 * so neither accepting nor penalising walks the vocabulary. */
void eng_sampler_accept(eng_sampler *s, int32_t token)
{
    if (!s || token < 0 || token >= s->n_vocab || s->par.penalty_last_n == 0)
        return;
    if (s->par.penalty_last_n < 0) {
        if (s->count[token] == 0)
            s->hist[s->hist_len++] = token;
        if (s->count[token] < INT32_MAX)
            s->count[token]++;
        return;
    }
    size_t cap = (size_t)s->par.penalty_last_n;
    if (s->hist_len == cap) {
        /* The oldest token leaves the window as the new one enters. */
        s->count[s->hist[s->hist_head]]--;
        s->hist[s->hist_head] = token;
        s->hist_head = (s->hist_head + 1) % cap;
    } else {
        s->hist[(s->hist_head + s->hist_len) % cap] = token;
        s->hist_len++;
    }
    s->count[token]++;
}

void eng_sampler_reset(eng_sampler *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->hist_len; i++)
        s->count[s->hist[i]] = 0;
    s->hist_len = 0;
    s->hist_head = 0;
    rng_seed(s);
}

/* ---- the chain ---- */

static bool penalties_on(const eng_sampler_params *p)
{
    return p->penalty_last_n != 0 &&
           (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
}

/* Step 2 for one token seen c > 0 times. A usable logit stays usable: the result is clamped
 * to finite values, so a penalty can neither ban a token (-inf) nor force one (+inf).
 * Keeps max_logit an upper bound that is reached; returns true when it lowered the token
 * holding the maximum, which then has to be searched for again. */
static bool penalise(eng_sampler *s, int32_t t, int32_t c)
{
    const eng_sampler_params *p = &s->par;
    const float old = s->fixed[t];
    if (old == -INFINITY)
        return false;
    float l = old <= 0.0f ? old * p->repeat_penalty : old / p->repeat_penalty;
    l -= (float)c * p->frequency_penalty + p->presence_penalty;
    l = isnan(l) ? -FLT_MAX : l < -FLT_MAX ? -FLT_MAX : l > FLT_MAX ? FLT_MAX : l;
    s->fixed[t] = l;
    bool lowered_max = old == s->max_logit && l < old;
    if (l > s->max_logit)
        s->max_logit = l;
    return lowered_max;
}

/* Penalises every token in the history once; true when the maximum must be searched again. */
static bool apply_penalties(eng_sampler *s)
{
    const eng_sampler_params *p = &s->par;
    bool rescan = false;
    if (!penalties_on(p))
        return false;
    if (p->penalty_last_n < 0) { /* hist lists each token once */
        for (size_t i = 0; i < s->hist_len; i++)
            rescan |= penalise(s, s->hist[i], s->count[s->hist[i]]);
        return rescan;
    }
    /* The ring may hold a token several times: a negated count marks it as done. */
    for (size_t i = 0; i < s->hist_len; i++) {
        int32_t t = s->hist[i];
        if (s->count[t] > 0) {
            rescan |= penalise(s, t, s->count[t]);
            s->count[t] = -s->count[t];
        }
    }
    for (size_t i = 0; i < s->hist_len; i++)
        if (s->count[s->hist[i]] < 0)
            s->count[s->hist[i]] = -s->count[s->hist[i]];
    return rescan;
}

/* The largest of x[0..n) (NaN ignored, -inf when there is nothing else), and whether any
 * element is NaN or +-inf: x - x is 0 for finite x and NaN otherwise. Four independent chains,
 * because a single one waits for the previous compare and add at every element, which made
 * this the slowest pass of greedy sampling (it runs once per token over the vocabulary). */
static float scan_logits(const float *x, size_t n, bool *nonfinite)
{
    float m0 = -INFINITY, m1 = -INFINITY, m2 = -INFINITY, m3 = -INFINITY;
    float z0 = 0.0f, z1 = 0.0f, z2 = 0.0f, z3 = 0.0f;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        m0 = x[i] > m0 ? x[i] : m0;
        m1 = x[i + 1] > m1 ? x[i + 1] : m1;
        m2 = x[i + 2] > m2 ? x[i + 2] : m2;
        m3 = x[i + 3] > m3 ? x[i + 3] : m3;
        z0 += x[i] - x[i];
        z1 += x[i + 1] - x[i + 1];
        z2 += x[i + 2] - x[i + 2];
        z3 += x[i + 3] - x[i + 3];
    }
    for (; i < n; i++) {
        m0 = x[i] > m0 ? x[i] : m0;
        z0 += x[i] - x[i];
    }
    *nonfinite = isnan(z0 + z1 + z2 + z3);
    m0 = m1 > m0 ? m1 : m0;
    m2 = m3 > m2 ? m3 : m2;
    return m2 > m0 ? m2 : m0;
}

/* Step 1 in place: NaN -> -inf, +inf -> FLT_MAX. Returns how many tokens are usable. */
static size_t sanitise(float *x, size_t n)
{
    size_t nv = 0;
    for (size_t i = 0; i < n; i++) {
        float l = x[i];
        l = isnan(l) ? -INFINITY : l > FLT_MAX ? FLT_MAX : l;
        x[i] = l;
        nv += l > -INFINITY;
    }
    return nv;
}

/* Steps 1 and 2, setting logit, max_logit and n_valid. Clean logits without penalties (the
 * usual case) cost one scan and are read in place; otherwise they are copied into fixed, and
 * sanitised only when the scan saw NaN or inf. */
static void prepare(eng_sampler *s, const float *logits)
{
    const size_t n = (size_t)s->n_vocab;
    bool nonfinite;
    s->max_logit = scan_logits(logits, n, &nonfinite);
    s->n_valid = n;
    s->logit = logits;
    if (!nonfinite && !penalties_on(&s->par))
        return;
    memcpy(s->fixed, logits, n * sizeof *s->fixed);
    s->logit = s->fixed;
    if (nonfinite) {
        s->n_valid = sanitise(s->fixed, n);
        if (s->max_logit == INFINITY)
            s->max_logit = FLT_MAX;
    }
    if (apply_penalties(s))
        s->max_logit = scan_logits(s->fixed, n, &nonfinite);
}

/* Greedy's pick: the lowest id holding the maximum (needs n_valid > 0). */
static int32_t argmax(const eng_sampler *s)
{
    int32_t i = 0;
    while (s->logit[i] != s->max_logit)
        i++;
    return i;
}

/* a ranks before b: higher logit, or the same logit and a lower id. Ids are unique, so two
 * tokens never rank equal and every filter below keeps a prefix of this order. */
static bool better(const eng_token_prob *a, const eng_token_prob *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static void swap_at(eng_token_prob *a, size_t i, size_t j)
{
    eng_token_prob t = a[i];
    a[i] = a[j];
    a[j] = t;
}

/* Restores the heap property below slot i in h[0..n): every parent ranks after its children,
 * so h[0] is the worst entry. */
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

static void heapify(eng_token_prob *h, size_t n)
{
    for (size_t j = n / 2; j-- > 0;)
        sift_down(h, n, j);
}

/* Turns a heap into an array ordered best first: the worst goes to the back each time. */
static void heap_unwind(eng_token_prob *h, size_t n)
{
    for (size_t k = n; k > 1; k--) {
        swap_at(h, 0, k - 1);
        sift_down(h, k - 1, 0);
    }
}

/* Step 3: the best m usable tokens of the vocabulary into s->cand, best first; returns how
 * many (m <= n_valid). A bounded heap: a token enters only when it beats the worst one kept,
 * so for small m nearly every token costs one comparison and nothing is copied. */
static size_t select_top(eng_sampler *s, size_t m)
{
    eng_token_prob *h = s->cand;
    size_t n = 0;
    int32_t i = 0;
    for (; i < s->n_vocab && n < m; i++)
        if (s->logit[i] > -INFINITY)
            h[n++] = (eng_token_prob){ .id = i, .logit = s->logit[i] };
    heapify(h, n);
    for (; n > 0 && i < s->n_vocab; i++) {
        /* Ids rise, so a later token with the root's logit ranks after it: strict > is right. */
        if (s->logit[i] > h[0].logit) {
            h[0] = (eng_token_prob){ .id = i, .logit = s->logit[i] };
            sift_down(h, n, 0);
        }
    }
    heap_unwind(h, n);
    return n;
}

/* Step 4 after top_k: cand[0..n) is sorted; weights at temperature 1 in .p, then the shortest
 * prefix whose weight reaches top_p of the total. */
static size_t top_p_sorted(eng_sampler *s, size_t n)
{
    double sum = 0.0, acc = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += s->cand[i].p = expf(s->cand[i].logit - s->max_logit);
    const double target = (double)s->par.top_p * sum;
    for (size_t i = 0; i < n; i++) {
        acc += s->cand[i].p;
        if (acc >= target)
            return i + 1;
    }
    return n; /* rounding kept the total just under the target: keep everything */
}

/* Lomuto partition of a[lo..hi) (at least 3 entries) around the median of its first, middle and
 * last entries: afterwards a[lo..k) rank before a[k] and a[k+1..hi) after it. Returns k, and
 * in *mass the weight (.p) of a[lo..k). */
static size_t partition(eng_token_prob *a, size_t lo, size_t hi, double *mass)
{
    const size_t mid = lo + (hi - lo) / 2, last = hi - 1;
    if (better(&a[mid], &a[lo]))
        swap_at(a, mid, lo);
    if (better(&a[last], &a[lo]))
        swap_at(a, last, lo);
    if (better(&a[mid], &a[last]))
        swap_at(a, mid, last);
    const eng_token_prob pivot = a[last];
    size_t k = lo;
    double m = 0.0;
    for (size_t i = lo; i < last; i++) {
        if (better(&a[i], &pivot)) {
            m += a[i].p;
            swap_at(a, i, k++);
        }
    }
    swap_at(a, k, last);
    *mass = m;
    return k;
}

/* The shortest rank prefix of a[0..n) whose weight reaches target, moved to the front of a,
 * without sorting a: quickselect on rank, carrying the weight of the part known to be in.
 * Only the last small slice is sorted. After 64 rounds (a pathological order) that slice is
 * whatever is left, so the worst case stays O(n log n). Returns the prefix length. */
static size_t top_p_cut(eng_token_prob *a, size_t n, double target)
{
    size_t lo = 0, hi = n; /* a[0..lo) is in; the cut lies in a[lo..hi); a[hi..n) is out */
    double acc = 0.0;      /* weight of a[0..lo) */
    for (int round = 0; hi - lo > 16 && round < 64; round++) {
        double m;
        size_t k = partition(a, lo, hi, &m);
        if (acc + m >= target) {
            hi = k;
        } else if (acc + m + a[k].p >= target) {
            return k + 1;
        } else {
            acc += m + a[k].p;
            lo = k + 1;
        }
    }
    heapify(a + lo, hi - lo);
    heap_unwind(a + lo, hi - lo);
    for (size_t i = lo; i < hi; i++) {
        acc += a[i].p;
        if (acc >= target)
            return i + 1;
    }
    return hi;
}

/* A weight in (0, 1] keyed by its float bits >> 19: the exponent and 4 mantissa bits, so a key
 * spans 1/16 of a binade (0.043 in logit) and a larger key means a larger weight. */
static unsigned weight_key(float w)
{
    uint32_t u;
    memcpy(&u, &w, sizeof u);
    return u >> WEIGHT_KEY_SHIFT;
}

/* Step 4 without top_k, without sorting the vocabulary. One pass computes every weight at
 * temperature 1 (the normaliser needs them all) and a histogram of weight by key. Walking the
 * keys from the top finds the one whose tokens cross top_p of the total: the tokens above are
 * all in, those below all out. Only the crossing key's tokens are gathered and ordered, by a
 * quickselect on rank (top_p_cut). Returns the last token of the prefix. */
static eng_token_prob top_p_vocab(eng_sampler *s)
{
    double sum = 0.0, above = 0.0;
    memset(s->key_mass, 0, sizeof s->key_mass);
    for (int32_t i = 0; i < s->n_vocab; i++)
        sum += s->weight[i] = expf(s->logit[i] - s->max_logit); /* 0 for -inf */
    /* A separate pass: next to the exp calls, the read-modify-write of key_mass ran 2-3x slower
     * (loads of key_mass issued before the previous token's store to the same key resolved). */
    for (int32_t i = 0; i < s->n_vocab; i++)
        s->key_mass[weight_key(s->weight[i])] += s->weight[i];
    const double target = (double)s->par.top_p * sum;
    unsigned key = WEIGHT_KEYS - 1;
    for (; key > 0 && above + s->key_mass[key] < target; key--)
        above += s->key_mass[key];
    size_t n = 0;
    for (int32_t i = 0; i < s->n_vocab; i++)
        if (s->logit[i] > -INFINITY && weight_key(s->weight[i]) == key)
            s->cand[n++] = (eng_token_prob){ i, s->logit[i], s->weight[i] };
    if (n == 0) /* only when rounding walked down to key 0 with nothing usable in it */
        return (eng_token_prob){ .id = INT32_MAX, .logit = -FLT_MAX };
    return s->cand[top_p_cut(s->cand, n, target - above) - 1];
}

/* Step 5 on the sorted cand[0..n): a prefix, since the best token is the maximum. */
static size_t min_p_prefix(eng_sampler *s, size_t n)
{
    const float thr = s->max_logit + logf(s->par.min_p);
    size_t k = 1;
    while (k < n && s->cand[k].logit >= thr)
        k++;
    return k;
}

/* Steps 3-5. With top_k, the survivors are cand[0..n), sorted (returns n). Without it, nothing
 * is sorted or gathered: the survivors are the usable tokens ranking at or before s->cut, a
 * prefix of the rank order as every filter keeps one (returns 0; weigh_vocab counts them). */
static size_t run_chain(eng_sampler *s)
{
    const eng_sampler_params *p = &s->par;
    s->sorted = p->top_k > 0 && (size_t)p->top_k < s->n_valid;
    if (s->sorted) {
        size_t n = select_top(s, (size_t)p->top_k);
        if (p->top_p < 1.0f)
            n = top_p_sorted(s, n);
        return p->min_p > 0.0f ? min_p_prefix(s, n) : n;
    }
    /* All usable tokens rank at or before (-FLT_MAX, INT32_MAX). */
    s->cut = (eng_token_prob){ .id = INT32_MAX, .logit = -FLT_MAX };
    if (p->top_p < 1.0f)
        s->cut = top_p_vocab(s);
    if (p->min_p > 0.0f) {
        /* min_p keeps logit >= thr whatever the id; the tighter of the two cuts wins. */
        eng_token_prob m = { .id = INT32_MAX, .logit = s->max_logit + logf(p->min_p) };
        if (better(&m, &s->cut))
            s->cut = m;
    }
    return 0;
}

/* Step 6 for the sorted set: weights exp((l - max) / T) into weight[0..n); returns their sum.
 * The best token survives every filter, so max_logit is the survivors' maximum and the sum is
 * at least 1. Dividing rather than multiplying by 1/T keeps a tiny T from making inf * 0. */
static double weigh_cand(eng_sampler *s, size_t n)
{
    const float mx = s->max_logit, t = s->par.temperature;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += s->weight[i] = expf((s->cand[i].logit - mx) / t);
    return sum;
}

/* Step 6 for the unsorted set: weight[i] for every token (0 outside the cut); *n gets the
 * number of survivors. */
static double weigh_vocab(eng_sampler *s, size_t *n)
{
    const float mx = s->max_logit, t = s->par.temperature;
    const float cl = s->cut.logit;
    const int32_t cid = s->cut.id;
    double sum = 0.0;
    size_t k = 0;
    for (int32_t i = 0; i < s->n_vocab; i++) {
        const float l = s->logit[i];
        float w = 0.0f;
        if (l > cl || (l == cl && i <= cid)) { /* -inf never passes: cl >= -FLT_MAX */
            w = expf((l - mx) / t);
            sum += w;
            k++;
        }
        s->weight[i] = w;
    }
    *n = k;
    return sum;
}

/* Step 7 over weight[0..n). The running sum adds the same non-zero weights in the same order
 * as the weigh functions, so it ends at exactly sum > u * sum: an index is always found, and a
 * zero-weight one never is. Skipping zeros keeps a mostly filtered vocabulary from costing a
 * dependent add per token. */
static size_t draw(eng_sampler *s, size_t n, double sum)
{
    const double target = rng_unit(s) * sum;
    double cum = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (s->weight[i] != 0.0f) {
            cum += s->weight[i];
            if (cum > target)
                return i;
        }
    }
    for (size_t i = n; i-- > 0;) /* u * sum rounded up to sum: take the last possible one */
        if (s->weight[i] > 0.0f)
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
        return argmax(s);
    size_t n = run_chain(s);
    if (s->sorted)
        return s->cand[draw(s, n, weigh_cand(s, n))].id;
    double sum = weigh_vocab(s, &n);
    return (int32_t)draw(s, (size_t)s->n_vocab, sum);
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
            out[0] = (eng_token_prob){ argmax(s), s->max_logit, 1.0f };
        return 1;
    }
    size_t n = run_chain(s);
    const double sum = s->sorted ? weigh_cand(s, n) : weigh_vocab(s, &n);
    const size_t k = n < max ? n : max;
    /* The survivors are a rank prefix, so the best k of the vocabulary are the best k of them. */
    if (!s->sorted)
        select_top(s, k);
    for (size_t i = 0; i < k; i++) {
        const eng_token_prob *c = &s->cand[i];
        const float w = s->weight[s->sorted ? (int32_t)i : c->id];
        out[i] = (eng_token_prob){ c->id, c->logit, (float)((double)w / sum) };
    }
    return n;
}
