/* The pane workers of `sizeup chat` (see chat.h): each owns one model and its conversation and
 * runs jobs from the UI thread one at a time; what it produces waits under its mutex until the
 * UI thread drains it, and a byte on the wake pipe says that it is there.
 *
 * What a pane runs sits behind a small seam, pane_ops: a local model (eng_session + eng_conv,
 * downloaded first when needed) or a served one (dl_remote, which is shaped like a session).
 * Queueing, events, figures, cancel and fair-mode turns are common to both. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "app/chat.h"
#include "app/remote_conv.h"
#include "downloads/dl_remote.h"

#define JOBS 16

/* EV_ANSWER starts the model's turn, EV_THINK a reasoning turn (shown apart, as a note); EV_TEXT
 * appends to whichever began last. */
typedef enum ev_kind { EV_ANSWER, EV_THINK, EV_TEXT, EV_ERROR, EV_INFO, EV_NOTE } ev_kind;

typedef struct ev {
    ev_kind k;
    char *text;
    size_t len, cap;
} ev;

typedef struct job {
    app_job k;
    char *text;
    long ticket;     /* a fair-mode turn of cfg.gate, or -1 (concurrent) */
} job;

/* What a pane runs: every hook but interrupt runs on the worker thread. */
typedef struct pane_ops {
    bool (*load)(app_worker *w);               /* false: the pane has no model (said why) */
    void (*send)(app_worker *w, const char *text);
    void (*regen)(app_worker *w);
    void (*clear)(app_worker *w);
    void (*system)(app_worker *w, const char *text);
    void (*set)(app_worker *w, const char *kv);
    void (*warmup)(app_worker *w);             /* before the first fair turn, or NULL */
    void (*interrupt)(app_worker *w);          /* UI thread, under mu: stop what runs now */
    void (*close)(app_worker *w);
} pane_ops;

struct app_worker {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wake_fd;
    /* guarded by mu */
    job jobs[JOBS];
    size_t jh, jt;
    bool quit, running, woken;
    ev *evs;
    size_t n_ev, cap_ev;
    ui_pane_status st;
    ui_pane_info info;
    bool st_new, info_new;
    atomic_int cancel;    /* set by the UI under mu, read by the engine between tokens and
                           * between prompt batches (the session's own cancel flag too) */
    dl_remote *r;         /* remote panes: set under mu once (interrupt reads it) */
    /* the worker thread's own */
    const pane_ops *ops;
    bool loaded, warm;
    const char *sched;   /* the mode of the turn being run: "fair" or "concurrent" */
    char *path;          /* NULL until ref is downloaded */
    char *ref;           /* a reference to download first (or the remote one), or NULL */
    app_chat_cfg cfg;
    eng_model *m;
    eng_session *s;
    eng_conv *conv;
    app_rconv *hist;     /* remote: the conversation (the system prompt in it) */
    int part;            /* remote: what the last piece was (0 none, 1 reasoning, 2 answer) */
    double t_send, t_prev, t_spark;
};

/* Under mu: make sure the UI thread will look (one byte per batch, not per token). */
static void wake_locked(app_worker *w)
{
    if (w->woken)
        return;
    w->woken = true;
    ssize_t r = write(w->wake_fd, "w", 1);  /* non-blocking; a full pipe wakes it anyway */
    (void)r;
}

/* Under mu: append an event, joining text to a text event before it (token batching). */
static void post_locked(app_worker *w, ev_kind k, const char *text, size_t len)
{
    ev *last = w->n_ev ? &w->evs[w->n_ev - 1] : NULL;
    if (!(k == EV_TEXT && last && last->k == EV_TEXT)) {
        if (w->n_ev == w->cap_ev) {
            size_t cap = w->cap_ev ? w->cap_ev * 2 : 16;
            ev *e = realloc(w->evs, cap * sizeof *e);
            if (!e)
                return;
            w->evs = e;
            w->cap_ev = cap;
        }
        last = &w->evs[w->n_ev++];
        *last = (ev){ k, NULL, 0, 0 };
    }
    if (last->len + len + 1 > last->cap) {
        size_t cap = (last->len + len + 1) * 2;
        char *t = realloc(last->text, cap);
        if (!t)
            return;
        last->text = t;
        last->cap = cap;
    }
    memcpy(last->text + last->len, text, len);
    last->len += len;
    last->text[last->len] = 0;
    wake_locked(w);
}

static void post(app_worker *w, ev_kind k, const char *text)
{
    pthread_mutex_lock(&w->mu);
    post_locked(w, k, text, strlen(text));
    pthread_mutex_unlock(&w->mu);
}

static void set_phase(app_worker *w, ui_phase ph, const char *stop)
{
    pthread_mutex_lock(&w->mu);
    w->st.phase = ph;
    w->st.stop = stop;
    w->st_new = true;
    wake_locked(w);
    pthread_mutex_unlock(&w->mu);
}

/* Under mu: the engine's figures into the pane's status. */
static void stats_locked(app_worker *w, const eng_stats *es)
{
    ui_pane_status *st = &w->st;
    st->tps_avg = es->gen_tps;
    st->prompt_tps = es->prompt_tps;
    st->prompt_srv = false;
    st->ttft_ms = es->ttft_ms;
    st->n_gen = es->n_gen;
    st->ctx_used = es->n_past;
    st->ctx_max = es->n_ctx;
    st->mem_weights = es->mem_weights;
    st->mem_kv = es->mem_kv;
    st->mem_scratch = es->mem_scratch;
    double wall = app_now_ms() - w->t_send;
    st->wall_tps = wall > 0 ? es->n_gen * 1e3 / wall : 0;
    st->sched = w->sched;
    w->st_new = true;
}

/* Under mu: a piece of the answer arrived at t: the phase, the recent speed, the sparkline. */
static void tick_locked(app_worker *w, double t)
{
    if (w->st.phase != UI_PHASE_GENERATING) {
        w->st.phase = UI_PHASE_GENERATING;
        w->st.tps_now = 0;
    } else if (t > w->t_prev) {  /* decode speed over the last few tokens */
        double inst = 1e3 / (t - w->t_prev);
        w->st.tps_now = w->st.tps_now > 0 ? 0.8 * w->st.tps_now + 0.2 * inst : inst;
    }
    w->t_prev = t;
    if (t - w->t_spark >= 100 && w->st.tps_now > 0) {
        ui_status_push_tps(&w->st, (float)w->st.tps_now);
        w->t_spark = t;
    }
}

static bool on_token(void *user, int32_t token, const char *text, size_t len,
                     const eng_stats *es)
{
    app_worker *w = user;
    (void)token;
    pthread_mutex_lock(&w->mu);
    tick_locked(w, app_now_ms());
    if (len)
        post_locked(w, EV_TEXT, text, len);
    stats_locked(w, es);
    wake_locked(w);
    bool go = !w->cancel;
    pthread_mutex_unlock(&w->mu);
    return go;
}

/* Header facts: name, parameters, main tensor type and bits per weight, file size, backend. */
/* ---- a local model: eng_session + eng_conv ---- */

/* Header facts: name, parameters, main tensor type and bits per weight, file size, backend. */
static void describe(app_worker *w)
{
    char p[32], sz[16], mode[48], ty[24];
    double bpw = 0;
    unsigned long long fsize = 0;
    app_model_brief(w->path, ty, sizeof ty, &bpw, &fsize);
    eng_stats es;
    eng_session_stats(w->s, &es);
    bool vk = es.backend && !strncmp(es.backend, "vulkan", 6);
    unsigned long long heap = vk ? app_vk_heap_bytes(w->cfg.so.device) : 0;
    if (eng_conv_is_chat(w->conv))
        snprintf(mode, sizeof mode, "chat (%s)",
                 eng_chat_family_name(eng_conv_template(w->conv)->family));
    else
        snprintf(mode, sizeof mode, "completion");
    pthread_mutex_lock(&w->mu);
    snprintf(w->info.name, sizeof w->info.name, "%s", eng_model_name(w->m));
    /* the type first: panes side by side cut the header, and the type is what differs */
    snprintf(w->info.detail, sizeof w->info.detail, "%s %.1f bpw | %s params | %s | %s", ty, bpw,
             app_fmt_count(eng_model_n_params(w->m), p, sizeof p),
             app_fmt_bytes(fsize, sz, sizeof sz), es.backend ? es.backend : "?");
    snprintf(w->info.mode, sizeof w->info.mode, "%s", mode);
    snprintf(w->info.backend, sizeof w->info.backend, "%s", es.backend ? es.backend : "?");
    w->info.dev_heap = heap;
    snprintf(w->info.quant, sizeof w->info.quant, "%s", ty);
    w->info.n_params = eng_model_n_params(w->m);
    w->info.file_bytes = fsize;
    w->info.remote = false;
    w->info_new = true;
    stats_locked(w, &es);
    w->st.sched = NULL;  /* the memory is known; nothing is measured before the first answer */
    pthread_mutex_unlock(&w->mu);
}
static int on_download(const dl_progress *p, void *user)
{
    app_worker *w = user;
    char a[16], b[16], c[16];
    pthread_mutex_lock(&w->mu);
    w->st.phase = UI_PHASE_DOWNLOADING;
    w->st.progress = p->total ? (double)p->done / (double)p->total : -1;
    snprintf(w->st.note, sizeof w->st.note, "%s of %s, %s/s", app_fmt_bytes(p->done, a, sizeof a),
             p->total ? app_fmt_bytes(p->total, b, sizeof b) : "?",
             app_fmt_bytes((unsigned long long)p->bytes_per_s, c, sizeof c));
    w->st_new = true;
    wake_locked(w);
    int stop = w->cancel;
    pthread_mutex_unlock(&w->mu);
    return stop;
}

/* Say what will be fetched (size first, and where), then fetch it into the store. */
static bool download(app_worker *w)
{
    char msg[1200], sz[16];
    dl_ctx *c = dl_open();
    if (!c) {
        post(w, EV_ERROR, "out of memory");
        return false;
    }
    if (w->cfg.cacert)
        dl_set_cacert(c, w->cfg.cacert);
    dl_resolved r;
    dl_status st = dl_resolve(c, w->ref, false, &r);
    if (!st) {
        uint64_t total = 0;
        for (size_t i = 0; i < r.n_files; i++)
            total += r.files[i].size;
        snprintf(msg, sizeof msg, "downloading %s: %s (%s) into %s. Esc cancels; the part "
                 "is kept, and the same /add resumes it.", w->ref,
                 r.n_files ? r.files[0].rel_name : "?",
                 total ? app_fmt_bytes(total, sz, sizeof sz) : "size unknown",
                 dl_store_dir(c) ? dl_store_dir(c) : "the store");
        post(w, EV_INFO, msg);
        dl_resolved_free(&r);
        dl_set_progress(c, on_download, w);
        st = dl_pull(c, w->ref, &w->path);
    }
    if (st == DL_ERR_CANCELLED)
        post(w, EV_INFO, "download cancelled; the part is kept for resuming");
    else if (st)
        post(w, EV_ERROR, dl_errmsg(c));
    dl_close(c);
    return st == DL_OK && w->path;
}

/* The load's progress in the pane's status line: opening the file is the first 5%, the
 * engine's eng_session_new (weights, kernels, warm-up) the rest. */
static void load_progress(app_worker *w, float done, const char *step)
{
    pthread_mutex_lock(&w->mu);
    w->st.phase = UI_PHASE_LOADING;
    w->st.progress = done;
    snprintf(w->st.note, sizeof w->st.note, "%s", step);
    w->st_new = true;
    wake_locked(w);
    pthread_mutex_unlock(&w->mu);
}

static void on_session_progress(void *user, float done, const char *step)
{
    load_progress(user, 0.05f + 0.95f * done, step);
}

static bool local_load(app_worker *w)
{
    if (!w->path && !download(w)) {
        set_phase(w, UI_PHASE_ERROR, NULL);
        return false;
    }
    char err[512];
    load_progress(w, 0, "opening the file");
    w->cfg.so.cancel = &w->cancel; /* Esc stops a prompt being fed too */
    eng_session_opts so = w->cfg.so; /* only the first session shows its load as such */
    so.progress = on_session_progress;
    so.progress_user = w;
    if (eng_model_open(w->path, &w->m, err, sizeof err) ||
        eng_session_new(w->m, &so, &w->s, err, sizeof err) ||
        eng_conv_new(w->m, w->s, ENG_CONV_AUTO, w->cfg.tmpl, &w->conv, err, sizeof err)) {
        post(w, EV_ERROR, err);
        pthread_mutex_lock(&w->mu);
        snprintf(w->info.name, sizeof w->info.name, "%s", w->path ? w->path : w->ref);
        snprintf(w->info.mode, sizeof w->info.mode, "not loaded");
        w->info_new = true;
        pthread_mutex_unlock(&w->mu);
        set_phase(w, UI_PHASE_ERROR, NULL);
        return false;
    }
    if (w->cfg.system)
        eng_conv_set_system(w->conv, w->cfg.system);
    pthread_mutex_lock(&w->mu);
    w->st.progress = -1;
    w->st.note[0] = 0;
    pthread_mutex_unlock(&w->mu);
    describe(w);
    if (!eng_conv_is_chat(w->conv))
        post(w, EV_INFO, "This model has no chat template: it continues your text "
                         "(completion mode).");
    set_phase(w, UI_PHASE_IDLE, NULL);
    return true;
}

static void local_answer(app_worker *w)
{
    eng_generate_opts go = { w->cfg.n_predict, NULL, 0, &w->cancel };
    eng_stop_reason why = ENG_STOP_NONE;
    w->t_send = w->t_prev = app_now_ms();
    set_phase(w, UI_PHASE_PREFILL, NULL);
    pthread_mutex_lock(&w->mu);
    post_locked(w, EV_ANSWER, "", 0);
    pthread_mutex_unlock(&w->mu);
    eng_status st = eng_conv_generate(w->conv, &go, on_token, w, &why);
    eng_stats es;
    eng_session_stats(w->s, &es);
    pthread_mutex_lock(&w->mu);
    stats_locked(w, &es);
    if (es.gen_tps > 0)
        ui_status_push_tps(&w->st, (float)es.gen_tps);
    pthread_mutex_unlock(&w->mu);
    if (st == ENG_ERR_CANCELLED) { /* Esc while the prompt was fed: the turn is not sent */
        eng_conv_pop_user(w->conv);
        post(w, EV_INFO, "stopped while reading the prompt; the message was not sent");
        set_phase(w, UI_PHASE_IDLE, NULL);
        return;
    }
    if (st) {
        /* a message that could not be read (too long for the context, say) leaves the
         * conversation as it was, or every later message would fail on it too */
        bool dropped = eng_conv_pop_user(w->conv);
        char msg[900], hint[200] = "";
        if (st == ENG_ERR_CONTEXT_FULL)  /* say what to do: /clear helps only if in use */
            snprintf(hint, sizeof hint, "; %s, or /set n_ctx N (N > %u) for a larger context%s",
                     es.n_past ? "/clear starts the conversation afresh" :
                     "send a shorter message", es.n_ctx, es.n_past ? ", the conversation kept" : "");
        snprintf(msg, sizeof msg, "%s%s%s", eng_conv_errmsg(w->conv),
                 dropped ? " (the message was not kept; the conversation goes on without it)" :
                 "", hint);
        post(w, EV_ERROR, msg);
        set_phase(w, UI_PHASE_ERROR, NULL);
        return;
    }
    char note[600], a[16], b[16], c[16];
    snprintf(note, sizeof note, "%u tokens, decode %.1f tokens/s (%s), wall %.1f tokens/s, "
             "prompt (all so far) %u tokens at %.1f tokens/s, first token %.0f ms, context %u "
             "of %u, memory weights %s + KV %s + scratch %s, %s, stop: %s", es.n_gen,
             es.gen_tps, w->sched, es.n_gen * 1e3 / (app_now_ms() - w->t_send), es.n_prompt,
             es.prompt_tps, es.ttft_ms, es.n_past, es.n_ctx,
             app_fmt_bytes(es.mem_weights, a, sizeof a), app_fmt_bytes(es.mem_kv, b, sizeof b),
             app_fmt_bytes(es.mem_scratch, c, sizeof c), es.backend ? es.backend : "?",
             eng_stop_reason_str(why));
    post(w, EV_NOTE, note);
    set_phase(w, UI_PHASE_IDLE, eng_stop_reason_str(why));
}

static void local_send(app_worker *w, const char *text)
{
    if (eng_conv_add(w->conv, "user", text))
        post(w, EV_ERROR, eng_conv_errmsg(w->conv));
    else
        local_answer(w);
}

static void local_regen(app_worker *w)
{
    if (!eng_conv_pop_answer(w->conv))
        post(w, EV_ERROR, "nothing to regenerate yet");
    else
        local_answer(w);
}

static void local_clear(app_worker *w)
{
    eng_conv_clear(w->conv);
}

static void local_system(app_worker *w, const char *text)
{
    eng_conv_set_system(w->conv, text);
    post(w, EV_INFO, text && *text ? "system prompt set" : "system prompt removed");
}

static bool warm_token(void *user, int32_t token, const char *text, size_t len,
                       const eng_stats *es)
{
    app_worker *w = user;
    (void)token, (void)text, (void)len, (void)es;
    return !w->cancel;
}

/* Fair mode's warm-up: a few tokens on a small scratch session of the same model, so that the
 * first measured turn does not pay for page faults, thread start-up or pipeline compiles. The
 * conversation's own session is left alone. */
static void local_warmup(app_worker *w)
{
    eng_session_opts so = w->cfg.so;
    so.n_ctx = 64;
    so.cancel = &w->cancel;
    eng_session *s;
    char err[256];
    int32_t *ids = NULL;
    size_t n = 0;
    if (eng_session_new(w->m, &so, &s, err, sizeof err))
        return;
    eng_stop_reason why;
    eng_generate_opts go = { 8, NULL, 0, &w->cancel };
    if (eng_tokenize(eng_model_vocab(w->m), "Once upon a time", 16, true, false, &ids, &n) ==
        ENG_TOK_OK && !eng_session_feed(s, ids, n))
        eng_session_generate(s, &go, warm_token, w, &why);
    free(ids);
    eng_session_free(s);
}

static void local_interrupt(app_worker *w)
{
    (void)w;  /* the engine reads w->cancel between tokens and prompt batches */
}

static void local_close(app_worker *w)
{
    eng_conv_free(w->conv);
    eng_session_free(w->s);
    eng_model_close(w->m);
}

/* ---- /set, for both kinds ---- */

/* /set KEY VALUE into cfg; NULL when valid, else why not (static text). "chat 0|1" is a remote
 * pane's choice of endpoint (a local model's follows its chat template). */
static const char *set_key(app_chat_cfg *cfg, const char *kv)
{
    char key[32];
    double v;
    if (sscanf(kv, "%31s %lf", key, &v) != 2)
        return "usage: /set temp|top_k|top_p|min_p|repeat_penalty|seed|n_predict|n_ctx|chat VALUE";
    eng_sampler_params *sp = &cfg->so.sampling;
    if (!strcmp(key, "temp") && v >= 0 && v <= 100) sp->temperature = (float)v;
    else if (!strcmp(key, "top_k") && v >= 0) sp->top_k = (int32_t)v;
    else if (!strcmp(key, "top_p") && v > 0 && v <= 1) sp->top_p = (float)v;
    else if (!strcmp(key, "min_p") && v >= 0 && v <= 1) sp->min_p = (float)v;
    else if (!strcmp(key, "repeat_penalty") && v > 0 && v <= 100) sp->repeat_penalty = (float)v;
    else if (!strcmp(key, "seed") && v >= 0) sp->seed = (uint64_t)v;
    else if (!strcmp(key, "n_predict") && v >= -1) cfg->n_predict = (int)v;
    else if (!strcmp(key, "n_ctx") && v >= 8 && v <= 1 << 24) cfg->so.n_ctx = (uint32_t)v;
    else if (!strcmp(key, "chat") && (v == 0 || v == 1)) cfg->completion = v == 0;
    else
        return "unknown setting or value out of range (see /help)";
    return NULL;
}

const char *app_chat_set_check(const char *kv)
{
    app_chat_cfg scratch = { 0 };
    return set_key(&scratch, kv);
}

const char *app_chat_set_apply(app_chat_cfg *cfg, const char *kv)
{
    return set_key(cfg, kv);
}

/* Sampling lives in the session, so a new session takes over the conversation (the next answer
 * feeds the whole prompt again). */
static void local_set(app_worker *w, const char *kv)
{
    char err[512], msg[600];
    if (!strncmp(kv, "chat", 4)) {
        post(w, EV_ERROR, "a local model's mode follows its chat template (chat --template "
             "forces chat mode)");
        return;
    }
    if (set_key(&w->cfg, kv)) {
        post(w, EV_ERROR, set_key(&w->cfg, kv));
        return;
    }
    if (strncmp(kv, "n_predict", 9)) {
        eng_session *s;
        w->cfg.so.cancel = &w->cancel;
        if (eng_session_new(w->m, &w->cfg.so, &s, err, sizeof err)) {
            post(w, EV_ERROR, err);
            return;
        }
        eng_conv_set_session(w->conv, s);
        eng_session_free(w->s);
        w->s = s;
    }
    snprintf(msg, sizeof msg, "set %s", kv);
    post(w, EV_INFO, msg);
}

static const pane_ops local_ops = {
    local_load, local_send, local_regen, local_clear, local_system, local_set, local_warmup,
    local_interrupt, local_close,
};

/* ---- a served model: dl_remote, the conversation kept here ---- */

static void remote_describe(app_worker *w)
{
    const char *kind = dl_remote_server_kind(w->r), *host = dl_remote_host(w->r);
    pthread_mutex_lock(&w->mu);
    snprintf(w->info.name, sizeof w->info.name, "%s", dl_remote_model(w->r));
    snprintf(w->info.detail, sizeof w->info.detail, "remote: %s at %s | times include the "
             "network", kind, host);
    snprintf(w->info.mode, sizeof w->info.mode, "%s", w->cfg.completion ? "completion" :
             "chat (server's template)");
    snprintf(w->info.backend, sizeof w->info.backend, "remote %s", host);
    w->info.quant[0] = 0;
    w->info.n_params = w->info.file_bytes = 0;
    w->info.remote = true;
    w->info_new = true;
    w->st.remote = true;
    w->st_new = true;
    pthread_mutex_unlock(&w->mu);
}

static void on_remote_status(void *user, const char *line)
{
    post(user, EV_INFO, line);  /* a 429/503 wait: said in the pane */
}

/* Open the handle and ask what the endpoint serves (which also tells the server's kind). A
 * server that is down now is said in the pane, and each message tries again. */
static bool remote_load(app_worker *w)
{
    dl_remote_opts o = { .cacert = w->cfg.cacert };
    dl_remote *r = NULL;
    /* --system applies to a served model as to a local one */
    w->hist = app_rconv_new();
    if (w->hist && !app_rconv_set_system(w->hist, w->cfg.system)) {
        app_rconv_free(w->hist);
        w->hist = NULL;
    }
    if (!w->hist || dl_remote_open(w->ref, &o, &r) != DL_OK || !dl_remote_model(r)) {
        post(w, EV_ERROR, !r ? "out of memory" : *dl_remote_errmsg(r) ? dl_remote_errmsg(r) :
             "the reference names no model (URL#MODEL or @NAME/MODEL; sizeup list --remote "
             "lists them)");
        dl_remote_close(r);
        pthread_mutex_lock(&w->mu);
        app_chat_ref_label(w->ref, w->info.name, sizeof w->info.name);
        snprintf(w->info.mode, sizeof w->info.mode, "not loaded");
        w->info_new = true;
        pthread_mutex_unlock(&w->mu);
        set_phase(w, UI_PHASE_ERROR, NULL);
        return false;
    }
    dl_remote_set_status(r, on_remote_status, w);
    pthread_mutex_lock(&w->mu);
    w->r = r;
    pthread_mutex_unlock(&w->mu);
    dl_remote_model_info *l;
    size_t n;
    if (dl_remote_models(r, &l, &n) == DL_OK)
        dl_remote_models_free(l, n);
    else
        post(w, EV_ERROR, dl_remote_errmsg(r));
    remote_describe(w);
    char msg[400];
    snprintf(msg, sizeof msg, "Served by %s (%s); times include the network. %s", dl_remote_host(r),
             dl_remote_server_kind(r), w->cfg.completion ? "Completion mode: it continues your "
             "text." : "Chat mode: the server applies its chat template (/set chat 0: "
             "completion).");
    post(w, EV_INFO, msg);
    set_phase(w, UI_PHASE_IDLE, NULL);
    return true;
}

/* Under mu: the client's running figures into the pane's status. */
static void remote_stats_locked(app_worker *w, const dl_remote_stats *rs)
{
    ui_pane_status *st = &w->st;
    st->remote = true;
    st->approx = rs->gen_approx;
    st->tps_avg = rs->gen_tps;
    /* no client can time a server's prompt apart from its generation: only llama-server's
     * own figure is known, and it is shown as the server's */
    st->prompt_tps = rs->has_timings ? rs->srv_prompt_tps : 0;
    st->prompt_srv = rs->has_timings;
    st->ttft_ms = rs->ttft_ms;
    st->n_gen = rs->n_gen;
    st->ctx_used = st->ctx_max = 0;
    st->mem_weights = st->mem_kv = st->mem_scratch = 0;
    st->has_kv = rs->kv_usage >= 0;
    st->kv_usage = rs->kv_usage;
    double wall = app_now_ms() - w->t_send;
    st->wall_tps = wall > 0 ? rs->n_gen * 1e3 / wall : 0;
    st->sched = w->sched;
    w->st_new = true;
}

static bool on_piece(void *user, dl_remote_part part, const char *text, size_t len,
                     const dl_remote_stats *rs)
{
    app_worker *w = user;
    pthread_mutex_lock(&w->mu);
    tick_locked(w, app_now_ms());
    if (part == DL_REMOTE_REASONING && w->part != 1) {
        post_locked(w, EV_THINK, "thinking: ", 10);
        w->part = 1;
    } else if (part == DL_REMOTE_ANSWER && w->part != 2) {
        post_locked(w, EV_ANSWER, "", 0);
        w->part = 2;
    }
    if (len)
        post_locked(w, EV_TEXT, text, len);
    remote_stats_locked(w, rs);
    wake_locked(w);
    bool go = !w->cancel;
    pthread_mutex_unlock(&w->mu);
    return go;
}

/* Sampling as the API names it: the temperature and the answer's length always, the rest only
 * where they differ from the engine's defaults (so the server's own defaults apply). */
dl_remote_sampling app_chat_remote_sampling(const app_chat_cfg *cfg)
{
    const eng_sampler_params *sp = &cfg->so.sampling;
    eng_sampler_params d = eng_session_defaults().sampling;
    dl_remote_sampling rs = dl_remote_sampling_unset();
    rs.temperature = sp->temperature;
    rs.max_tokens = cfg->n_predict > 0 ? cfg->n_predict : 0;
    if (sp->top_k != d.top_k) rs.top_k = sp->top_k;
    if (sp->top_p != d.top_p) rs.top_p = sp->top_p;
    if (sp->min_p != d.min_p) rs.min_p = sp->min_p;
    if (sp->repeat_penalty != d.repeat_penalty) rs.repeat_penalty = sp->repeat_penalty;
    if (sp->seed != d.seed) {
        rs.has_seed = true;
        rs.seed = sp->seed;
    }
    return rs;
}

static void remote_note(app_worker *w, dl_remote_finish why)
{
    dl_remote_stats rs;
    dl_remote_stats_get(w->r, &rs);
    char note[700], kv[48] = "", srv[160] = "", np[16] = "?";
    if (rs.kv_usage >= 0)
        snprintf(kv, sizeof kv, " (KV cache %.0f%% in use)", rs.kv_usage * 100);
    if (rs.n_prompt)
        snprintf(np, sizeof np, "%u", rs.n_prompt);
    if (rs.has_timings)
        snprintf(srv, sizeof srv, "; the server's own: prompt %.1f tokens/s, generation %.1f "
                 "tokens/s", rs.srv_prompt_tps, rs.srv_gen_tps);
    snprintf(note, sizeof note, "%s%u tokens, decode %s%.1f tokens/s (%s, network-inclusive), "
             "prompt %s tokens, first token %.0f ms (network-inclusive), memory: remote%s, "
             "%s at %s%s, stop: %s%s", rs.gen_approx ? "~" : "", rs.n_gen,
             rs.gen_approx ? "~" : "", rs.gen_tps, w->sched, np, rs.ttft_ms, kv, rs.server,
             rs.host, srv, dl_remote_finish_str(why), rs.partial ? " (incomplete)" : "");
    post(w, EV_NOTE, note);
}

/* One answer to the conversation as it stands (its last message is the user's). */
static void remote_answer(app_worker *w)
{
    dl_remote_mode mode = w->cfg.completion ? DL_REMOTE_COMPLETION : DL_REMOTE_CHAT;
    dl_remote_sampling sampling = app_chat_remote_sampling(&w->cfg);
    w->part = 0;
    w->t_send = w->t_prev = app_now_ms();
    set_phase(w, UI_PHASE_PREFILL, NULL);
    dl_remote_finish why = DL_REMOTE_FINISH_CANCELLED;
    /* generate clears the handle's cancel flag as it starts: an Esc that came before is ours */
    dl_status st = w->cancel ? DL_OK : app_rconv_generate(w->hist, w->r, mode, &sampling,
                                                           on_piece, w, &why);
    dl_remote_stats rs;
    dl_remote_stats_get(w->r, &rs);
    pthread_mutex_lock(&w->mu);
    remote_stats_locked(w, &rs);
    if (w->part != 2)
        post_locked(w, EV_ANSWER, "", 0);
    pthread_mutex_unlock(&w->mu);
    if (!app_rconv_settle(w->hist, w->r, st))  /* a partial answer stays in the history too */
        post(w, EV_ERROR, "out of memory");
    remote_note(w, why);
    if (st) {
        post(w, EV_ERROR, dl_remote_errmsg(w->r));
        set_phase(w, UI_PHASE_ERROR, NULL);
        return;
    }
    set_phase(w, UI_PHASE_IDLE, dl_remote_finish_str(why));
}

static void remote_send(app_worker *w, const char *text)
{
    if (!app_rconv_add(w->hist, "user", text))
        post(w, EV_ERROR, "out of memory");
    else
        remote_answer(w);
}

static void remote_regen(app_worker *w)
{
    const char *last = app_rconv_last_role(w->hist);
    if (!last || strcmp(last, "assistant")) {
        post(w, EV_ERROR, "nothing to regenerate yet");
        return;
    }
    app_rconv_pop(w->hist);
    remote_answer(w);
}

static void remote_clear(app_worker *w)
{
    app_rconv_clear(w->hist);
}

static void remote_system(app_worker *w, const char *text)
{
    if (!app_rconv_set_system(w->hist, text))
        post(w, EV_ERROR, "out of memory");
    else
        post(w, EV_INFO, text && *text ? "system prompt set" : "system prompt removed");
}

static void remote_set(app_worker *w, const char *kv)
{
    const char *why = set_key(&w->cfg, kv);
    char msg[600];
    if (why) {
        post(w, EV_ERROR, why);
        return;
    }
    snprintf(msg, sizeof msg, "set %s", kv);
    post(w, EV_INFO, msg);
    if (!strncmp(kv, "chat", 4))
        remote_describe(w);
}

static void remote_interrupt(app_worker *w)
{
    if (w->r)
        dl_remote_cancel(w->r);  /* closes the stream within 100 ms, the partial answer kept */
}

static void remote_close(app_worker *w)
{
    app_rconv_free(w->hist);
    dl_remote_close(w->r);
}

/* No warm-up: the server's warmth is not this machine's to buy, and a request would cost the
 * server's time. */
static const pane_ops remote_ops = {
    remote_load, remote_send, remote_regen, remote_clear, remote_system, remote_set, NULL,
    remote_interrupt, remote_close,
};

/* ---- the worker: jobs, turns, the thread ---- */

/* A turn that generates: in fair mode, wait for its ticket (the pane says it waits) and warm
 * the model up before its first measured turn. false: stopped while waiting. */
static bool take_turn(app_worker *w, long ticket)
{
    w->sched = ticket >= 0 ? "fair" : "concurrent";
    if (ticket < 0 || !w->cfg.gate)
        return true;
    pthread_mutex_lock(&w->mu);
    w->st.phase = UI_PHASE_WAITING;
    snprintf(w->st.note, sizeof w->st.note, "fair: for its turn");
    w->st_new = true;
    wake_locked(w);
    pthread_mutex_unlock(&w->mu);
    if (!app_sched_gate_wait(w->cfg.gate, ticket, &w->cancel)) {
        post(w, EV_INFO, "stopped before its turn; the message was not sent");
        set_phase(w, UI_PHASE_IDLE, "cancelled");
        return false;
    }
    if (!w->warm && w->ops->warmup) {
        pthread_mutex_lock(&w->mu);
        snprintf(w->st.note, sizeof w->st.note, "fair: warming up");
        w->st_new = true;
        wake_locked(w);
        pthread_mutex_unlock(&w->mu);
        w->ops->warmup(w);
    }
    w->warm = true;
    return true;
}

static void run_job(app_worker *w, const job *j)
{
    const char *text = j->text ? j->text : "";
    if (!w->loaded) {
        post(w, EV_ERROR, "this pane has no model (see the message above; /model N REF)");
        return;
    }
    switch (j->k) {
    case APP_JOB_SEND:
        if (take_turn(w, j->ticket))
            w->ops->send(w, text);
        break;
    case APP_JOB_REGEN:
        if (take_turn(w, j->ticket))
            w->ops->regen(w);
        break;
    case APP_JOB_CLEAR: w->ops->clear(w); break;
    case APP_JOB_SYSTEM: w->ops->system(w, j->text); break;
    case APP_JOB_SET: w->ops->set(w, text); break;
    }
}

/* A job that will not run gives its fair turn up, so the panes after it are not kept waiting. */
static void drop_job(app_worker *w, job *j)
{
    app_sched_gate_done(w->cfg.gate, j->ticket);
    free(j->text);
}

static void *worker_main(void *arg)
{
    app_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    w->running = true;  /* so Esc reaches a download */
    pthread_mutex_unlock(&w->mu);
    w->loaded = w->ops->load(w);
    pthread_mutex_lock(&w->mu);
    w->running = false;
    w->cancel = 0;
    wake_locked(w);
    pthread_mutex_unlock(&w->mu);
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (w->jh == w->jt && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->quit) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        job j = w->jobs[w->jh++ % JOBS];
        w->running = true;
        w->cancel = 0;  /* under mu: a cancel from now on stops this job */
        pthread_mutex_unlock(&w->mu);
        run_job(w, &j);
        drop_job(w, &j);
        pthread_mutex_lock(&w->mu);
        w->running = false;
        wake_locked(w);
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

app_worker *app_worker_start(const char *path, const char *ref, const app_chat_cfg *cfg,
                             int wake_fd)
{
    app_worker *w = calloc(1, sizeof *w);
    if (!w || (path && !(w->path = strdup(path))) || (!path && !(w->ref = strdup(ref)))) {
        if (w)
            free(w->path);
        free(w);
        return NULL;
    }
    w->ops = !path && app_is_remote_ref(ref) ? &remote_ops : &local_ops;
    w->sched = "concurrent";
    w->cfg = *cfg;
    w->wake_fd = wake_fd;
    w->st.progress = -1;
    w->st.phase = UI_PHASE_LOADING;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->th, NULL, worker_main, w)) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w->path);
        free(w->ref);
        free(w);
        return NULL;
    }
    return w;
}

void app_worker_stop(app_worker *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    w->cancel = 1;
    w->ops->interrupt(w);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    while (w->jh != w->jt)
        drop_job(w, &w->jobs[w->jh++ % JOBS]);
    for (size_t i = 0; i < w->n_ev; i++)
        free(w->evs[i].text);
    free(w->evs);
    w->ops->close(w);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->path);
    free(w->ref);
    free(w);
}

bool app_worker_post_turn(app_worker *w, app_job k, const char *text, long ticket)
{
    char *t = text ? strdup(text) : NULL;
    if (text && !t)
        return false;
    pthread_mutex_lock(&w->mu);
    bool ok = w->jt - w->jh < JOBS;
    if (ok) {
        w->jobs[w->jt++ % JOBS] = (job){ k, t, ticket };
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    if (!ok)
        free(t);
    return ok;
}

bool app_worker_post(app_worker *w, app_job k, const char *text)
{
    return app_worker_post_turn(w, k, text, -1);
}

void app_worker_cancel(app_worker *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->jh != w->jt)
        drop_job(w, &w->jobs[w->jh++ % JOBS]);
    if (w->running) {
        w->cancel = 1;
        w->ops->interrupt(w);
    }
    pthread_mutex_unlock(&w->mu);
}

bool app_worker_busy(app_worker *w)
{
    pthread_mutex_lock(&w->mu);
    bool busy = w->running || w->jh != w->jt;
    pthread_mutex_unlock(&w->mu);
    return busy;
}

void app_worker_status(app_worker *w, ui_pane_status *st)
{
    pthread_mutex_lock(&w->mu);
    *st = w->st;
    pthread_mutex_unlock(&w->mu);
}

bool app_worker_drain(app_worker *w, ui_pane *p)
{
    pthread_mutex_lock(&w->mu);
    ev *evs = w->evs;
    size_t n = w->n_ev;
    w->evs = NULL;
    w->n_ev = w->cap_ev = 0;
    bool changed = n || w->st_new || w->info_new;
    if (w->st_new) {
        ui_pane_status *st = ui_pane_status_of(p);
        unsigned long long rss = st->host_rss;
        *st = w->st;
        st->host_rss = rss;
    }
    if (w->info_new)
        *ui_pane_info_of(p) = w->info;
    w->st_new = w->info_new = w->woken = false;
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < n; i++) {
        ev *e = &evs[i];
        const char *t = e->text ? e->text : "";
        if (e->k == EV_ANSWER)
            ui_pane_begin_turn(p, UI_ROLE_MODEL);
        else if (e->k == EV_THINK && !ui_pane_begin_turn(p, UI_ROLE_INFO))
            ui_pane_append(p, t, e->len);
        else if (e->k == EV_TEXT)
            ui_pane_append(p, t, e->len);
        else if (e->k == EV_NOTE)
            ui_pane_set_note(p, t);
        else
            ui_pane_add_turn(p, e->k == EV_ERROR ? UI_ROLE_ERROR : UI_ROLE_INFO, t);
        free(e->text);
    }
    free(evs);
    return changed;
}
