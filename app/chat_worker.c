/* The pane workers of `sizeup chat` (see chat.h): each owns one model, session and conversation
 * and runs jobs from the UI thread one at a time; what it produces waits under its mutex until
 * the UI thread drains it, and a byte on the wake pipe says that it is there. */
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

#define JOBS 16

typedef enum ev_kind { EV_ANSWER, EV_TEXT, EV_ERROR, EV_INFO, EV_NOTE } ev_kind;

typedef struct ev {
    ev_kind k;
    char *text;
    size_t len, cap;
} ev;

typedef struct job {
    app_job k;
    char *text;
} job;

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
    /* the worker thread's own */
    char *path;          /* NULL until ref is downloaded */
    char *ref;           /* a reference to download first, or NULL */
    app_chat_cfg cfg;
    eng_model *m;
    eng_session *s;
    eng_conv *conv;
    double t_send, t_prev, t_spark;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

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
    st->ttft_ms = es->ttft_ms;
    st->n_gen = es->n_gen;
    st->ctx_used = es->n_past;
    st->ctx_max = es->n_ctx;
    st->mem_weights = es->mem_weights;
    st->mem_kv = es->mem_kv;
    st->mem_scratch = es->mem_scratch;
    double wall = now_ms() - w->t_send;
    st->wall_tps = wall > 0 ? es->n_gen * 1e3 / wall : 0;
    w->st_new = true;
}

static bool on_token(void *user, int32_t token, const char *text, size_t len,
                     const eng_stats *es)
{
    app_worker *w = user;
    double t = now_ms();
    (void)token;
    pthread_mutex_lock(&w->mu);
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
    if (len)
        post_locked(w, EV_TEXT, text, len);
    stats_locked(w, es);
    wake_locked(w);
    bool go = !w->cancel;
    pthread_mutex_unlock(&w->mu);
    return go;
}

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
    w->info_new = true;
    stats_locked(w, &es);
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

static bool load(app_worker *w)
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

static void answer(app_worker *w)
{
    eng_generate_opts go = { w->cfg.n_predict, NULL, 0, &w->cancel };
    eng_stop_reason why = ENG_STOP_NONE;
    w->t_send = w->t_prev = now_ms();
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
        char msg[700];
        snprintf(msg, sizeof msg, "%s%s", eng_conv_errmsg(w->conv),
                 dropped ? " (the message was not kept; the conversation goes on without it)" :
                 "");
        post(w, EV_ERROR, msg);
        set_phase(w, UI_PHASE_ERROR, NULL);
        return;
    }
    char note[512], a[16], b[16], c[16];
    snprintf(note, sizeof note, "%u tokens, decode %.1f tokens/s, wall %.1f tokens/s, prompt "
             "(all so far) %u tokens at %.1f tokens/s, first token %.0f ms, context %u of %u, "
             "memory weights %s + KV %s + scratch %s, %s, stop: %s", es.n_gen, es.gen_tps,
             es.n_gen * 1e3 / (now_ms() - w->t_send), es.n_prompt, es.prompt_tps, es.ttft_ms,
             es.n_past, es.n_ctx, app_fmt_bytes(es.mem_weights, a, sizeof a),
             app_fmt_bytes(es.mem_kv, b, sizeof b), app_fmt_bytes(es.mem_scratch, c, sizeof c),
             es.backend ? es.backend : "?", eng_stop_reason_str(why));
    post(w, EV_NOTE, note);
    set_phase(w, UI_PHASE_IDLE, eng_stop_reason_str(why));
}

/* /set KEY VALUE: sampling lives in the session, so a new session takes over the conversation
 * (the next answer feeds the whole prompt again). */
static const char *set_key(app_chat_cfg *cfg, const char *kv)
{
    char key[32];
    double v;
    if (sscanf(kv, "%31s %lf", key, &v) != 2)
        return "usage: /set temp|top_k|top_p|min_p|repeat_penalty|seed|n_predict|n_ctx VALUE";
    eng_sampler_params *sp = &cfg->so.sampling;
    if (!strcmp(key, "temp") && v >= 0 && v <= 100) sp->temperature = (float)v;
    else if (!strcmp(key, "top_k") && v >= 0) sp->top_k = (int32_t)v;
    else if (!strcmp(key, "top_p") && v > 0 && v <= 1) sp->top_p = (float)v;
    else if (!strcmp(key, "min_p") && v >= 0 && v <= 1) sp->min_p = (float)v;
    else if (!strcmp(key, "repeat_penalty") && v > 0 && v <= 100) sp->repeat_penalty = (float)v;
    else if (!strcmp(key, "seed") && v >= 0) sp->seed = (uint64_t)v;
    else if (!strcmp(key, "n_predict") && v >= -1) cfg->n_predict = (int)v;
    else if (!strcmp(key, "n_ctx") && v >= 8 && v <= 1 << 24) cfg->so.n_ctx = (uint32_t)v;
    else
        return "unknown setting or value out of range (see /help)";
    return NULL;
}

const char *app_chat_set_check(const char *kv)
{
    app_chat_cfg scratch = { 0 };
    return set_key(&scratch, kv);
}

static void apply_set(app_worker *w, const char *kv)
{
    char err[512], msg[600];
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

static void run_job(app_worker *w, const job *j)
{
    if (!w->conv) {
        post(w, EV_ERROR, "this pane has no model (see the message above; /model N REF)");
        return;
    }
    switch (j->k) {
    case APP_JOB_SEND:
        if (eng_conv_add(w->conv, "user", j->text ? j->text : ""))
            post(w, EV_ERROR, eng_conv_errmsg(w->conv));
        else
            answer(w);
        break;
    case APP_JOB_REGEN:
        if (!eng_conv_pop_answer(w->conv))
            post(w, EV_ERROR, "nothing to regenerate yet");
        else
            answer(w);
        break;
    case APP_JOB_CLEAR:
        eng_conv_clear(w->conv);
        break;
    case APP_JOB_SYSTEM:
        eng_conv_set_system(w->conv, j->text);
        post(w, EV_INFO, j->text && *j->text ? "system prompt set" : "system prompt removed");
        break;
    case APP_JOB_SET:
        apply_set(w, j->text ? j->text : "");
        break;
    }
}

static void *worker_main(void *arg)
{
    app_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    w->running = true;  /* so Esc reaches a download */
    pthread_mutex_unlock(&w->mu);
    load(w);
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
        free(j.text);
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
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    while (w->jh != w->jt)
        free(w->jobs[w->jh++ % JOBS].text);
    for (size_t i = 0; i < w->n_ev; i++)
        free(w->evs[i].text);
    free(w->evs);
    eng_conv_free(w->conv);
    eng_session_free(w->s);
    eng_model_close(w->m);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->path);
    free(w->ref);
    free(w);
}

bool app_worker_post(app_worker *w, app_job k, const char *text)
{
    char *t = text ? strdup(text) : NULL;
    if (text && !t)
        return false;
    pthread_mutex_lock(&w->mu);
    bool ok = w->jt - w->jh < JOBS;
    if (ok) {
        w->jobs[w->jt++ % JOBS] = (job){ k, t };
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    if (!ok)
        free(t);
    return ok;
}

void app_worker_cancel(app_worker *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->jh != w->jt)
        free(w->jobs[w->jh++ % JOBS].text);
    if (w->running)
        w->cancel = 1;
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
