/* Perplexity, bits per byte and KL divergence in llama-perplexity's windows (see app/ppl.h for
 * the exact rules). Used by `sizeup perplexity` and `sizeup compare --ppl`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "app/ppl.h"

void app_ppl_free(app_ppl_result *r)
{
    if (r) {
        free(r->running);
        r->running = NULL;
    }
}

bool app_vocab_same(const eng_vocab *a, const eng_vocab *b)
{
    int32_t n = eng_vocab_n_tokens(a);
    if (n != eng_vocab_n_tokens(b))
        return false;
    for (int32_t i = 0; i < n; i++) {
        size_t la, lb;
        const char *ta = eng_vocab_text(a, i, &la), *tb = eng_vocab_text(b, i, &lb);
        if (la != lb || memcmp(ta, tb, la))
            return false;
    }
    return true;
}

int32_t app_log_softmax(const float *logits, int32_t n, double *lp)
{
    int32_t top = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[top])
            top = i;
    double mx = logits[top], sum = 0;
    for (int32_t i = 0; i < n; i++)
        sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    for (int32_t i = 0; i < n; i++)
        lp[i] = (double)logits[i] - lse;
    return top;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(double *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_d);
    double pos = p * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n)
        return v[n - 1];
    return v[lo] + (pos - (double)lo) * (v[lo + 1] - v[lo]);
}

/* What one run needs besides the result: sessions, scratch, the per-position KL values. */
typedef struct ppl_job {
    const char *cmd;
    eng_model *m;
    eng_session *s, *sb;      /* sb: the base model's, for KL */
    const eng_vocab *v;
    int32_t n_vocab;
    double *lp, *lpb;         /* (n_vocab) log-probabilities of one position */
    double *kl;               /* (n_scored) KL at every scored position */
    size_t n_kl, n_agree;
    double nll2;              /* sum of squared -ln p, for the standard error */
} ppl_job;

/* Decode one window (its first token already replaced by BOS) from an empty context. */
static int window_logits(ppl_job *j, eng_session *s, const int32_t *w, uint32_t n, float **lg)
{
    eng_session_reset(s);
    if (eng_session_logits(s, w, n, true, lg))
        return app_fail(j->cmd, "decoding a window of %u tokens failed: %s", n,
                        eng_session_errmsg(s));
    return 0;
}

/* Score one window: positions first .. n-2 predict the tokens at first+1 .. n-1. */
static int score_window(ppl_job *j, const int32_t *w, uint32_t n, app_ppl_result *r)
{
    float *lg = NULL, *lgb = NULL;
    if (window_logits(j, j->s, w, n, &lg) || (j->sb && window_logits(j, j->sb, w, n, &lgb))) {
        free(lg);
        return 1;
    }
    for (uint32_t p = n / 2; p + 1 < n; p++) {
        int32_t next = w[p + 1];
        int32_t top = app_log_softmax(lg + (size_t)p * (size_t)j->n_vocab, j->n_vocab, j->lp);
        double nll = -j->lp[next];
        r->nll += nll;
        j->nll2 += nll * nll;
        size_t len;
        eng_token_piece(j->v, next, false, &len);
        r->n_bytes += len;
        r->n_scored++;
        if (lgb) {
            int32_t topb = app_log_softmax(lgb + (size_t)p * (size_t)j->n_vocab, j->n_vocab, j->lpb);
            double kl = 0;
            for (int32_t i = 0; i < j->n_vocab; i++)
                kl += exp(j->lpb[i]) * (j->lpb[i] - j->lp[i]);
            j->kl[j->n_kl++] = kl;
            j->n_agree += top == topb;
        }
    }
    free(lg);
    free(lgb);
    return 0;
}

static int tokenize_text(const char *cmd, const eng_vocab *v, const char *text, size_t len,
                         int32_t **ids, size_t *n)
{
    if (eng_tokenize(v, text, len, true, false, ids, n) != ENG_TOK_OK)
        return app_fail(cmd, "out of memory tokenizing the text");
    return 0;
}

static void finish(ppl_job *j, app_ppl_result *r)
{
    double mean = r->n_scored ? r->nll / (double)r->n_scored : 0;
    r->ppl = exp(mean);
    double var = r->n_scored ? j->nll2 / (double)r->n_scored - mean * mean : 0;
    r->ppl_err = var > 0 && r->n_scored > 1 ? sqrt(var / (double)(r->n_scored - 1)) * r->ppl : 0;
    r->bits_per_byte = r->n_bytes ? r->nll / log(2.0) / (double)r->n_bytes : 0;
    if (j->sb) {
        double sum = 0;
        for (size_t i = 0; i < j->n_kl; i++)
            sum += j->kl[i];
        r->has_kl = true;
        r->kl_mean = j->n_kl ? sum / (double)j->n_kl : 0;
        r->kl_p99 = percentile(j->kl, j->n_kl, 0.99);
        r->top_agree = j->n_kl ? (double)j->n_agree / (double)j->n_kl : 0;
    }
}

static int open_sessions(ppl_job *j, eng_model *base, uint32_t n_ctx, const eng_session_opts *so,
                         char *backend)
{
    char err[512];
    eng_session_opts o = *so;
    o.n_ctx = n_ctx;
    o.context_shift = false;
    if (eng_session_new(j->m, &o, &j->s, err, sizeof err))
        return app_fail(j->cmd, "%s", err);
    eng_stats st;
    eng_session_stats(j->s, &st);
    snprintf(backend, 256, "%s", st.backend);
    if (base && eng_session_new(base, &o, &j->sb, err, sizeof err))
        return app_fail(j->cmd, "%s (the --kl-base model)", err);
    return 0;
}

uint32_t app_ppl_default_ctx(const eng_model *const *models, int n, bool *capped)
{
    uint32_t c = APP_PPL_CTX_DEFAULT;
    for (int i = 0; i < n; i++) {
        uint32_t t = models[i] ? app_ctx_train(models[i]) : 0;
        if (t && t < c)
            c = t < 8 ? 8 : t;
    }
    if (capped)
        *capped = c < APP_PPL_CTX_DEFAULT;
    return c;
}

int app_ppl_run(const char *cmd, eng_model *m, eng_model *base, const char *text, size_t len,
                uint32_t n_ctx, const eng_session_opts *so, app_ppl_result *out)
{
    memset(out, 0, sizeof *out);
    out->n_ctx = n_ctx;
    out->n_ctx_train = app_ctx_train(m);
    out->over_train = out->n_ctx_train && n_ctx > out->n_ctx_train;
    ppl_job j = { .cmd = cmd, .m = m, .v = eng_model_vocab(m) };
    j.n_vocab = eng_vocab_n_tokens(j.v);
    if (base && !app_vocab_same(j.v, eng_model_vocab(base)))
        return app_fail(cmd, "%s and the base model %s have different vocabularies (%d and %d "
                        "tokens, or different token texts): KL divergence compares distributions "
                        "over the same tokens", eng_model_name(m), eng_model_name(base), j.n_vocab,
                        eng_vocab_n_tokens(eng_model_vocab(base)));
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = 1;
    if (n_ctx < 8)
        return app_fail(cmd, "-c %u: a window needs at least 8 tokens", n_ctx);
    if (tokenize_text(cmd, j.v, text, len, &ids, &n_ids))
        return 1;
    out->n_tokens = n_ids;
    out->n_chunks = n_ids / n_ctx;
    if (!out->n_chunks) {
        app_fail(cmd, "the text is %zu tokens long for %s, fewer than one window of %u (-c)",
                 n_ids, eng_model_name(m), n_ctx);
        goto done;
    }
    size_t per = n_ctx - n_ctx / 2 - 1;
    j.lp = malloc((size_t)j.n_vocab * sizeof *j.lp);
    j.lpb = malloc((size_t)j.n_vocab * sizeof *j.lpb);
    j.kl = malloc((out->n_chunks * per + 1) * sizeof *j.kl);
    out->running = malloc(out->n_chunks * sizeof *out->running);
    if (!j.lp || !j.lpb || !j.kl || !out->running) {
        app_fail(cmd, "out of memory");
        goto done;
    }
    if (open_sessions(&j, base, n_ctx, so, out->backend))
        goto done;
    const eng_special_ids *sp = eng_vocab_special(j.v);
    double t0 = app_now_s();
    for (size_t c = 0; c < out->n_chunks; c++) {
        int32_t *w = ids + c * n_ctx, saved = w[0];
        if (sp->add_bos && sp->bos != ENG_TOKEN_NONE)
            w[0] = sp->bos;
        int bad = score_window(&j, w, n_ctx, out);
        w[0] = saved;
        if (bad)
            goto done;
        out->running[c] = exp(out->nll / (double)out->n_scored);
    }
    out->seconds = app_now_s() - t0;
    finish(&j, out);
    rc = 0;
done:
    eng_session_free(j.sb);
    eng_session_free(j.s);
    free(j.lp);
    free(j.lpb);
    free(j.kl);
    free(ids);
    if (rc)
        app_ppl_free(out);
    return rc;
}
