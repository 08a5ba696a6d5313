/* Sessions: one conversation on one model. Owns the backend context (KV cache), the sampler
 * and the running statistics; turns sampled tokens into text with the streaming detokenizer and
 * holds back text that might be the start of a stop string. The thread rules of engine.h hold
 * here: nothing in a session is shared with another session except the model (read-only, with
 * its reference count and its lock for the device upload) and the cancel flags (atomics). */
#include "engine/engine.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/cpu.h"
#include "engine/strbuf.h"
#include "engine/pool.h"
#include "engine/vk_backend.h"

#define FEED_BATCH 512

struct eng_session {
    eng_model *m;
    eng_session_opts o;
    eng_cpu *cpu;               /* exactly one of cpu and vk is set */
    eng_vk *vk;
    eng_sampler *smp;
    uint32_t n_ctx, n_past;
    float *logits;              /* (n_vocab) logits after the last decoded token */
    bool have_logits;
    int32_t unfed;              /* last emitted token, not yet in the KV cache; -1 if none */
    bool greedy_device;         /* greedy sampling done by the device: a token costs 4 bytes of
                                 * read-back instead of the logits */
    bool have_next;             /* next: the device's argmax after the last decode; the logits
                                 * then stay on the device (logits_on_device) until asked for */
    bool logits_on_device;
    int32_t next;
    double prompt_pending_ms;   /* prompt time since the last generate, for time to first token */
    eng_stats st;
    char backend[400];          /* "cpu", "vulkan: NAME (type)", "cpu (Vulkan unavailable: ...)" */
    char err[512];
};

/* ---- backend dispatch ---- */

/* Every failure leaves its own message in s->err, never an earlier one. */
static bool be_decode(eng_session *s, const int32_t *tok, int n, int pos, float *logits, bool all)
{
    if (s->vk) {
        bool ok = eng_vk_decode(s->vk, tok, n, pos, logits, all);
        if (!ok)
            snprintf(s->err, sizeof s->err, "Vulkan: %s", eng_vk_errmsg(s->vk));
        return ok;
    }
    bool ok = eng_cpu_decode(s->cpu, tok, n, pos, logits, all);
    if (!ok)
        snprintf(s->err, sizeof s->err, "decode of %d tokens at position %d failed", n, pos);
    return ok;
}

/* Either flag set: the session's own (opts) or this call's. Another thread may set them. */
static bool cancelled(const eng_session *s, const atomic_int *extra)
{
    return (s->o.cancel && atomic_load(s->o.cancel)) || (extra && atomic_load(extra));
}

static bool be_kv_shift(eng_session *s, int p0, int p1, int n_past)
{
    if (s->vk) {
        if (eng_vk_kv_shift(s->vk, p0, p1, n_past))
            return true;
        snprintf(s->err, sizeof s->err, "Vulkan: %s", eng_vk_errmsg(s->vk));
        return false;
    }
    eng_cpu_kv_shift(s->cpu, p0, p1, n_past);
    return true;
}

/* The model's weights on the device, uploaded once for all its sessions. They live on one
 * device: a session asking for another one is refused with both named, never given the other
 * device silently. A failed upload is not retried for the same device (it would fail again,
 * slowly), but is for another. */
static eng_vk_model *model_on_device(eng_model *m, int device, char *err, size_t errlen)
{
    pthread_mutex_lock(&m->vk_lock);
    if (!m->vk && (!m->vk_tried || device != m->vk_device)) {
        m->vk_tried = true;
        m->vk_device = device;
        if (!eng_vk_model_new(m, device, &m->vk, m->vk_err, sizeof m->vk_err))
            m->vk = NULL;
    }
    eng_vk_model *vm = m->vk;
    if (!vm) {
        snprintf(err, errlen, "%s", m->vk_err);
    } else if (device >= 0 && (uint32_t)device != eng_vk_model_device_index(vm)) {
        snprintf(err, errlen, "Vulkan: this session asks for device %d, but the model's weights "
                 "are on device %u, %s (where its first session put them); open the model "
                 "again to run it on a second device", device, eng_vk_model_device_index(vm),
                 eng_vk_model_device(vm));
        vm = NULL;
    }
    pthread_mutex_unlock(&m->vk_lock);
    return vm;
}

static void progress(const eng_session *s, float done, const char *step)
{
    if (s->o.progress)
        s->o.progress(s->o.progress_user, done, step);
}

/* Vulkan when asked or automatic (a CPU fallback then says why); the CPU when asked, or when
 * automatic and the automatic device is a CPU Vulkan driver, which the CPU engine outruns. */
static bool open_backend(eng_session *s, char *err, size_t errlen)
{
    eng_model *m = s->m;
    char why[512] = "";
    /* auto with the automatic device: the CPU engine when that device is a CPU driver */
    if (s->o.backend == ENG_BACKEND_AUTO && s->o.device < 0 &&
        eng_vk_auto_prefers_cpu(why, sizeof why)) {
        snprintf(s->backend, sizeof s->backend, "cpu (%.300s)", why);
    } else if (s->o.backend != ENG_BACKEND_CPU) {
        progress(s, 0.05f, "weights to the device");
        eng_vk_model *vm = model_on_device(m, s->o.device, why, sizeof why);
        progress(s, 0.6f, "kernels");
        if (vm)
            s->vk = eng_vk_new(vm, s->n_ctx, why, sizeof why);
        if (s->vk) {
            const eng_sampler_params *p = &s->o.sampling;
            s->greedy_device = p->temperature == 0 && p->repeat_penalty == 1 &&
                               p->frequency_penalty == 0 && p->presence_penalty == 0;
            snprintf(s->backend, sizeof s->backend, "vulkan: %s", eng_vk_model_device(vm));
            s->st.mem_weights = eng_vk_model_weight_bytes(vm);
            s->st.mem_kv = eng_vk_kv_bytes(s->vk);
            s->st.mem_scratch = eng_vk_scratch_bytes(s->vk);
            return true;
        }
        if (s->o.backend == ENG_BACKEND_VULKAN) {
            snprintf(err, errlen, "%s", why);
            return false;
        }
        snprintf(s->backend, sizeof s->backend, "cpu (Vulkan unavailable: %.300s)", why);
    } else {
        snprintf(s->backend, sizeof s->backend, "cpu");
    }
    progress(s, 0.1f, "weights (CPU)");
    s->cpu = eng_cpu_new(m, s->n_ctx, s->o.n_threads, err, errlen);
    if (!s->cpu)
        return false;
    s->st.mem_weights = m->weight_bytes;
    s->st.mem_kv = eng_cpu_kv_bytes(s->cpu);
    s->st.mem_scratch = eng_cpu_scratch_bytes(s->cpu);
    return true;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* ---- models ---- */

eng_status eng_model_open(const char *path, eng_model **out, char *err, size_t errlen)
{
    switch (eng_model_load(path, out, err, errlen)) {
    case ENG_MODEL_OK: return ENG_OK;
    case ENG_MODEL_ERR_IO: return ENG_ERR_IO;
    case ENG_MODEL_ERR_UNSUPPORTED: return ENG_ERR_UNSUPPORTED;
    case ENG_MODEL_ERR_NOMEM: return ENG_ERR_NOMEM;
    default: return ENG_ERR_FORMAT;
    }
}

/* The last reference (the opener's or a session's) frees the model, on whichever thread drops
 * it; fetch_sub orders every use of the model before the free. */
static void model_release(eng_model *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        eng_model_free(m);
}

void eng_model_close(eng_model *m) { model_release(m); }
const eng_hparams *eng_model_hparams(const eng_model *m) { return &m->hp; }
const eng_vocab *eng_model_vocab(const eng_model *m) { return m->vocab; }
const char *eng_model_name(const eng_model *m) { return m->name; }
uint64_t eng_model_weight_bytes(const eng_model *m) { return m->weight_bytes; }
uint64_t eng_model_n_params(const eng_model *m) { return m->n_params; }

/* ---- sessions ---- */

eng_session_opts eng_session_defaults(void)
{
    eng_session_opts o = { 0 };
    o.device = -1;
    o.sampling = eng_sampler_params_default();
    return o;
}

const char *eng_session_errmsg(const eng_session *s) { return s->err; }

/* One throw-away decode of token 0 at position 0, as llama.cpp warms up: lavapipe compiles a
 * pipeline's machine code at its first dispatch, and the decode step is recorded on first use,
 * which otherwise land in the first prompt's time (seconds, on larger models); the CPU backend
 * faults in the mapped weights. Position 0 is written again by the first real token, and
 * nothing reads a position before it is written, so the context stays empty. */
static bool warm_up(eng_session *s, char *err, size_t errlen)
{
    const int32_t tok = 0;
    if (be_decode(s, &tok, 1, 0, s->logits, false))
        return true;
    snprintf(err, errlen, "warm-up decode failed: %s", s->err[0] ? s->err : "backend error");
    return false;
}

eng_status eng_session_new(eng_model *m, const eng_session_opts *o, eng_session **out,
                           char *err, size_t errlen)
{
    *out = NULL;
    double t0 = now_ms();
    eng_session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return ENG_ERR_NOMEM;
    }
    s->m = m;
    s->o = o ? *o : eng_session_defaults();
    s->n_ctx = s->o.n_ctx ? s->o.n_ctx : (m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096);
    if (s->n_ctx < 8)
        s->n_ctx = 8;
    s->unfed = -1;
    char msg[256];
    if (eng_sampler_params_check(&s->o.sampling, msg, sizeof msg) != 0) {
        snprintf(err, errlen, "%s", msg);
        free(s);
        return ENG_ERR_ARG;
    }
    atomic_fetch_add(&m->refs, 1); /* given back by eng_session_free, on every path below */
    progress(s, 0.0f, "starting the backend");
    if (!open_backend(s, err, errlen)) {
        eng_status st = s->o.backend == ENG_BACKEND_VULKAN ? ENG_ERR_BACKEND : ENG_ERR_NOMEM;
        eng_session_free(s);
        return st;
    }
    eng_sampler_new(&s->o.sampling, (int32_t)m->hp.n_vocab, &s->smp, NULL, 0);
    s->logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
    if (!s->smp || !s->logits) {
        snprintf(err, errlen, "out of memory for a session");
        eng_session_free(s);
        return ENG_ERR_NOMEM;
    }
    progress(s, 0.8f, "warm-up");
    if (!warm_up(s, err, errlen)) {
        eng_session_free(s);
        return ENG_ERR_BACKEND;
    }
    progress(s, 1.0f, "ready");
    s->st.load_ms = now_ms() - t0;
    s->st.n_ctx = s->n_ctx;
    s->st.mem_scratch += (uint64_t)m->hp.n_vocab * 4;
    s->st.backend = s->backend;
    *out = s;
    return ENG_OK;
}

void eng_session_free(eng_session *s)
{
    if (!s)
        return;
    eng_sampler_free(s->smp);
    eng_cpu_free(s->cpu);
    eng_vk_free(s->vk);
    free(s->logits);
    model_release(s->m);
    free(s);
}

/* The process's resident set: /proc/self/statm's second field, in pages. One open and read,
 * a few microseconds: cheap enough for every token's stats. */
static uint64_t host_resident_bytes(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    unsigned long long size, resident;
    if (n <= 0)
        return 0;
    buf[n] = 0;
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

void eng_session_stats(const eng_session *s, eng_stats *out)
{
    *out = s->st;
    out->n_past = s->n_past;
    out->mem_host = host_resident_bytes();
}

void eng_session_reset(eng_session *s)
{
    s->n_past = 0;
    s->have_logits = false;
    s->have_next = false;
    s->logits_on_device = false;
    s->unfed = -1;
    s->prompt_pending_ms = 0;
    eng_sampler_reset(s->smp);
    uint64_t w = s->st.mem_weights, kv = s->st.mem_kv, sc = s->st.mem_scratch;
    const char *b = s->st.backend;
    double load = s->st.load_ms;
    memset(&s->st, 0, sizeof s->st);
    s->st.load_ms = load;
    s->st.n_ctx = s->n_ctx;
    s->st.mem_weights = w;
    s->st.mem_kv = kv;
    s->st.mem_scratch = sc;
    s->st.backend = b;
}

const char *eng_stop_reason_str(eng_stop_reason r)
{
    static const char *names[] = { "none", "end of turn", "stop string", "token limit",
                                   "cancelled", "context full" };
    return r <= ENG_STOP_CONTEXT_FULL ? names[r] : "unknown";
}

/* Make room for `need` more tokens: drop the oldest half of what follows the kept prefix.
 * ENG_ERR_CONTEXT_FULL when that cannot make room; ENG_ERR_BACKEND (s->err says why) when the
 * shift failed. */
static eng_status make_room(eng_session *s, uint32_t need)
{
    if (s->n_past + need <= s->n_ctx)
        return ENG_OK;
    if (!s->o.context_shift)
        return ENG_ERR_CONTEXT_FULL;
    uint32_t keep = s->o.n_keep < s->n_past ? s->o.n_keep : s->n_past;
    uint32_t discard = (s->n_past - keep) / 2;
    if (discard == 0 || s->n_past - discard + need > s->n_ctx)
        return ENG_ERR_CONTEXT_FULL;
    if (!be_kv_shift(s, (int)keep, (int)(keep + discard), (int)s->n_past)) {
        /* a partly shifted cache is no conversation: start over rather than decode garbage */
        s->n_past = 0;
        s->have_logits = false;
        s->have_next = false;
        s->logits_on_device = false;
        s->unfed = -1;
        return ENG_ERR_BACKEND;
    }
    s->n_past -= discard;
    s->st.n_shifts++;
    return ENG_OK;
}

/* Decode tokens at the end of the context in batches. A feed (cancellable) checks the cancel
 * flag before each batch: before the first nothing has changed; later, the batches already
 * decoded are dropped again (positions past n_past are simply overwritten by the next decode),
 * so a cancelled feed consumes nothing. */
static eng_status decode(eng_session *s, const int32_t *tok, uint32_t n, bool cancellable)
{
    if (cancellable && cancelled(s, NULL)) {
        snprintf(s->err, sizeof s->err, "cancelled: %u tokens not fed", n);
        return ENG_ERR_CANCELLED;
    }
    uint32_t past0 = s->n_past;
    s->have_next = false;
    s->logits_on_device = false;
    for (uint32_t done = 0; done < n; done += FEED_BATCH) {
        uint32_t cnt = n - done < FEED_BATCH ? n - done : FEED_BATCH;
        if (done && cancellable && cancelled(s, NULL)) {
            s->n_past = past0;
            s->have_logits = false; /* s->logits now hold a dropped batch's */
            snprintf(s->err, sizeof s->err, "cancelled after %u of %u tokens: none fed", done, n);
            return ENG_ERR_CANCELLED;
        }
        if (!be_decode(s, tok + done, (int)cnt, (int)s->n_past, s->logits, false))
            return ENG_ERR_BACKEND;
        s->n_past += cnt;
    }
    s->have_logits = true;
    return ENG_OK;
}

eng_status eng_session_feed(eng_session *s, const int32_t *tokens, size_t n)
{
    size_t total = n + (s->unfed >= 0);
    if (total == 0)
        return ENG_OK;
    int32_t *all = malloc(total * sizeof *all);
    if (!all) {
        snprintf(s->err, sizeof s->err, "out of memory for %zu prompt tokens", total);
        return ENG_ERR_NOMEM;
    }
    size_t k = 0;
    if (s->unfed >= 0)
        all[k++] = s->unfed;
    if (n)
        memcpy(all + k, tokens, n * sizeof *tokens);
    for (size_t i = 0; i < total; i++)
        if (all[i] < 0 || (uint32_t)all[i] >= s->m->hp.n_vocab) {
            snprintf(s->err, sizeof s->err, "token id %d is outside the vocabulary (0..%u)",
                     all[i], s->m->hp.n_vocab - 1);
            free(all);
            return ENG_ERR_ARG;
        }
    eng_status room = total > s->n_ctx ? ENG_ERR_CONTEXT_FULL : make_room(s, (uint32_t)total);
    if (room == ENG_ERR_BACKEND) {
        free(all);
        return room;
    }
    if (room != ENG_OK) {
        snprintf(s->err, sizeof s->err, "%zu prompt tokens do not fit the context: %u of %u "
                 "positions in use%s", total, s->n_past, s->n_ctx,
                 s->o.context_shift ? "" : " (context shift is off)");
        free(all);
        return ENG_ERR_CONTEXT_FULL;
    }
    double t0 = now_ms();
    eng_status st = decode(s, all, (uint32_t)total, true);
    double dt = now_ms() - t0;
    for (size_t i = 0; st == ENG_OK && i < total; i++)
        eng_sampler_accept(s->smp, all[i]);
    free(all);
    if (st)
        return st;
    s->unfed = -1;
    s->st.n_prompt += (uint32_t)total;
    s->st.prompt_ms += dt;
    s->prompt_pending_ms += dt;
    s->st.prompt_tps = s->st.prompt_ms > 0 ? s->st.n_prompt * 1e3 / s->st.prompt_ms : 0;
    return ENG_OK;
}

/* How much of the held text is safe to release: everything before the earliest position from
 * which the rest is a prefix of some stop string. *hit is set when a stop string is complete
 * (release stops right before it). */
static size_t releasable(const strbuf *h, const eng_generate_opts *o, bool *hit)
{
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < o->n_stop; i++) {
        size_t sl = strlen(o->stop_strings[i]);
        const char *m = sl ? memmem(h->p, h->len, o->stop_strings[i], sl) : NULL;
        if (m && (size_t)(m - h->p) < first)
            first = (size_t)(m - h->p);
    }
    *hit = first != SIZE_MAX;
    if (*hit)
        return first;
    size_t best = h->len;
    for (size_t i = 0; i < o->n_stop; i++) {
        const char *stop = o->stop_strings[i];
        size_t sl = strlen(stop);
        for (size_t at = h->len >= sl ? h->len - sl + 1 : 0; at < best; at++)
            if (!memcmp(h->p + at, stop, h->len - at)) {
                best = at;
                break;
            }
    }
    return best;
}

typedef struct gen_state {
    eng_session *s;
    const eng_generate_opts *o;
    eng_token_fn fn;
    void *user;
    eng_detok *dt;
    strbuf hb;                  /* text waiting to be released: held while it could still
                                 * turn into a stop string */
    double t_start, t_first, t_prev;
} gen_state;

/* Release what is safe of the held text to the callback; false when the caller wants to stop
 * or a stop string completed (*hit). */
static bool emit(gen_state *g, int32_t tok, bool final, bool *hit)
{
    size_t n = final ? g->hb.len : releasable(&g->hb, g->o, hit);
    if (final)
        *hit = false;
    eng_session_stats(g->s, &g->s->st);
    bool go = g->fn ? g->fn(g->user, tok, g->hb.p ? g->hb.p : "", n, &g->s->st) : true;
    if (g->hb.p) /* the rest, with strbuf's NUL after it */
        memmove(g->hb.p, g->hb.p + n, g->hb.len - n + 1);
    g->hb.len -= n;
    return go && !*hit;
}

static void count_token(gen_state *g)
{
    eng_stats *st = &g->s->st;
    double t = now_ms();
    if (st->n_gen == 0) {
        g->t_first = t;
        st->ttft_ms = g->s->prompt_pending_ms + (t - g->t_start);
        g->s->prompt_pending_ms = 0;
    }
    st->n_gen++;
    st->last_token_ms = t - g->t_prev;
    g->t_prev = t;
    st->gen_ms = t - g->t_first;
    /* n tokens need n - 1 decodes after the first, which came with the prompt's logits */
    st->gen_tps = st->n_gen > 1 && st->gen_ms > 0 ? (st->n_gen - 1) * 1e3 / st->gen_ms : 0;
}

static eng_stop_reason gen_loop(gen_state *g)
{
    eng_session *s = g->s;
    for (;;) {
        /* the one check per token that bounds what comes out after a cancel: at most the
         * token sampled right after it */
        if (cancelled(s, g->o->cancel))
            return ENG_STOP_CANCELLED;
        int32_t tok = s->have_next ? s->next : eng_sampler_sample(s->smp, s->logits);
        s->have_next = false;
        if (tok == ENG_SAMPLER_NO_TOKEN) {
            snprintf(s->err, sizeof s->err, "every logit is NaN or -inf: the model produced "
                     "no usable output at position %u", s->n_past);
            return ENG_STOP_NONE;
        }
        eng_sampler_accept(s->smp, tok);
        s->unfed = tok; /* in the context from the next decode on */
        count_token(g);
        if (eng_vocab_is_eog(s->m->vocab, tok))
            return ENG_STOP_EOG;
        size_t len;
        const char *p = eng_detok_push(g->dt, tok, &len);
        bool hit = false;
        if (!strbuf_put(&g->hb, p, len)) {
            snprintf(s->err, sizeof s->err, "out of memory for the generated text");
            return ENG_STOP_NONE;
        }
        if (!emit(g, tok, false, &hit))
            return hit ? ENG_STOP_STRING : ENG_STOP_CANCELLED;
        if (g->o->max_tokens > 0 && s->st.n_gen >= (uint32_t)g->o->max_tokens)
            return ENG_STOP_MAX_TOKENS;
        eng_status room = make_room(s, 1);
        if (room != ENG_OK)
            return room == ENG_ERR_BACKEND ? ENG_STOP_NONE : ENG_STOP_CONTEXT_FULL;
        s->unfed = -1;
        if (s->greedy_device) {
            if (!eng_vk_decode_argmax(s->vk, tok, (int)s->n_past, &s->next)) {
                snprintf(s->err, sizeof s->err, "Vulkan: %s", eng_vk_errmsg(s->vk));
                return ENG_STOP_NONE;
            }
            s->n_past++;
            s->have_next = true;
            s->logits_on_device = true;
            s->have_logits = false;
        } else if (decode(s, &tok, 1, false) != ENG_OK) {
            return ENG_STOP_NONE;
        }
    }
}

/* Logits left on the device by the greedy path, fetched when something needs them. */
static bool fetch_device_logits(eng_session *s)
{
    if (!s->logits_on_device)
        return true;
    if (!eng_vk_last_logits(s->vk, s->logits)) {
        snprintf(s->err, sizeof s->err, "Vulkan: %s", eng_vk_errmsg(s->vk));
        return false;
    }
    s->have_logits = true;
    s->logits_on_device = false;
    return true;
}

eng_status eng_session_generate(eng_session *s, const eng_generate_opts *o, eng_token_fn fn,
                                void *user, eng_stop_reason *why)
{
    static const eng_generate_opts none = { 0 };
    *why = ENG_STOP_NONE;
    if (cancelled(s, o ? o->cancel : NULL)) {
        *why = ENG_STOP_CANCELLED;
        return ENG_OK;
    }
    if (!fetch_device_logits(s))
        return ENG_ERR_BACKEND;
    if (!s->have_logits || s->unfed >= 0) {
        /* nothing fed since the last generate: continue from the token it ended on */
        if (s->unfed < 0) {
            snprintf(s->err, sizeof s->err, "nothing to continue from: feed a prompt first");
            return ENG_ERR_ARG;
        }
        eng_status st = eng_session_feed(s, NULL, 0);
        if (st == ENG_ERR_CANCELLED)
            *why = ENG_STOP_CANCELLED;
        if (st)
            return st == ENG_ERR_CANCELLED ? ENG_OK : st;
    }
    gen_state g = { s, o ? o : &none, fn, user, eng_detok_new(s->m->vocab, false, false),
                    { 0 }, now_ms(), 0, 0 };
    if (!g.dt) {
        snprintf(s->err, sizeof s->err, "out of memory for the detokenizer");
        return ENG_ERR_NOMEM;
    }
    g.t_prev = g.t_start;
    s->st.n_gen = 0;
    s->st.gen_ms = 0;
    s->st.gen_tps = 0;
    eng_stop_reason r = gen_loop(&g);
    size_t len;
    const char *rest = eng_detok_flush(g.dt, &len);
    bool hit = false;
    if (r != ENG_STOP_STRING && r != ENG_STOP_NONE && strbuf_put(&g.hb, rest, len) && g.hb.len) {
        size_t n = releasable(&g.hb, g.o, &hit);
        if (hit) { /* a stop string completed by the flush is dropped too */
            g.hb.len = n;
            g.hb.p[n] = 0;
        }
        emit(&g, -1, true, &hit);
    }
    strbuf_free(&g.hb);
    eng_detok_free(g.dt);
    *why = r;
    return r == ENG_STOP_NONE ? ENG_ERR_BACKEND : ENG_OK;
}

eng_status eng_session_logits(eng_session *s, const int32_t *tokens, size_t n,
                              bool all_positions, float **logits)
{
    *logits = NULL;
    uint32_t nv = s->m->hp.n_vocab;
    if (n == 0 || s->unfed >= 0 || s->n_past + n > s->n_ctx) {
        snprintf(s->err, sizeof s->err, "%zu tokens do not fit the context (%u of %u in use)",
                 n, s->n_past, s->n_ctx);
        return n == 0 ? ENG_ERR_ARG : ENG_ERR_CONTEXT_FULL;
    }
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= nv) {
            snprintf(s->err, sizeof s->err, "token id %d is outside the vocabulary (0..%u)",
                     tokens[i], nv - 1);
            return ENG_ERR_ARG;
        }
    float *out = malloc((all_positions ? n : 1) * (size_t)nv * sizeof *out);
    if (!out) {
        snprintf(s->err, sizeof s->err, "out of memory for the logits of %zu tokens", n);
        return ENG_ERR_NOMEM;
    }
    double t0 = now_ms();
    if (!be_decode(s, tokens, (int)n, (int)s->n_past, out, all_positions)) {
        free(out);
        return ENG_ERR_BACKEND;
    }
    s->st.prompt_ms += now_ms() - t0;
    s->st.n_prompt += (uint32_t)n;
    s->n_past += (uint32_t)n;
    memcpy(s->logits, out + (all_positions ? (n - 1) * (size_t)nv : 0), nv * sizeof(float));
    s->have_logits = true;
    s->have_next = false;
    s->logits_on_device = false;
    *logits = out;
    return ENG_OK;
}

double eng_session_read_bandwidth(eng_session *s)
{
    if (s->vk)
        return eng_vk_read_gbps(eng_vk_model_of(s->vk));
    int nt = s->o.n_threads, pool = eng_pool_threads();
    return eng_host_read_gbps(nt > 0 && nt < pool ? nt : pool);
}
