/* The OpenAI-compatible client (see dl_remote.h): references, the model listing and streamed
 * answers over libcurl, chunks parsed with jansson.
 *
 * An answer is one POST with stream: true. libcurl runs it through a multi handle polled every
 * 50 ms, so a cancel is seen within that even when the server sends nothing; the write
 * callback feeds the SSE parser (dl_sse.c), whose events are the JSON chunks. While the
 * answer streams, a second handle on the same multi reads the server's Prometheus /metrics
 * once, for its KV-cache use. 429 and 503 are retried after their Retry-After (bounded, and
 * the wait itself cancellable); nothing else is retried, since a second POST would start the
 * answer over.
 *
 * The key travels only as CURLOPT_XOAUTH2_BEARER: libcurl sends it to the first host alone and
 * drops it when a redirect leads to another host or port (CURLOPT_UNRESTRICTED_AUTH stays off).
 * Every message goes through remote_fail, which also blanks the key should a server echo it.
 */
#include "downloads/dl_remote.h"
#include "downloads/dl_sse.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/strbuf.h" /* a leaf: the one growable buffer (docs/DESIGN.md) */
#include "engine/utf8.h"   /* a leaf too: strict UTF-8, terminal controls */

#define USER_AGENT "sizeup/0.1"
#define POLL_MS 50               /* a cancel is noticed within this */
#define ERR_BODY_MAX 16384       /* what is kept of a refusal's body, for its message */
#define LIST_BODY_MAX ((size_t)8 << 20)
#define METRICS_MAX ((size_t)4 << 20)
#define METRICS_TIMEOUT_S 5L
#define METRICS_GRACE_MS 1000.0
#define DEFAULT_MAX_LINE ((size_t)1 << 20)

#ifndef CURL_WRITEFUNC_ERROR
#define CURL_WRITEFUNC_ERROR 0xFFFFFFFF
#endif

struct dl_remote {
    char *base;               /* base URL as given, no trailing '/' (requests go here) */
    char *base_shown;         /* the same without user:password, for messages */
    char *root;               /* base without a final "/v1", where /metrics lives */
    char *model, *key_env, *key, *cacert;
    char host[300];
    const char *kind;
    dl_remote_opts o;
    char err[2048];
    atomic_int cancel;
    dl_remote_status_fn status_fn;
    void *status_user;
    dl_remote_stats st;
    strbuf answer, reasoning;
    bool metrics_absent;      /* asked once and found nothing: do not ask again */
};

/* ---- small helpers ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Append to b unless that would pass max bytes (an answer or a body larger than we keep). */
static bool buf_add(strbuf *b, const char *s, size_t n, size_t max)
{
    return b->len + n <= max && strbuf_put(b, s, n);
}

/* Blank every copy of the key in s (a server may echo the header it refused). */
static void scrub(char *s, const char *key)
{
    size_t k = key ? strlen(key) : 0;
    if (k < 4)
        return;
    for (char *p = strstr(s, key); p; p = strstr(p + k, key))
        memset(p, '*', k);
}

static dl_status remote_fail(dl_remote *r, dl_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static dl_status remote_fail(dl_remote *r, dl_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    scrub(r->err, r->key);
    return st;
}

/* Text from a server, fit for a message: each control character and each byte that is not
 * valid UTF-8 becomes '?', cut at cap - 1 bytes between characters. out may be s (it never
 * grows). Returns the length written. */
static size_t printable(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t len = utf8_seq_len(u, n - i);
        bool shown = len && !utf8_is_control(u, len);
        size_t w = shown ? len : 1;
        if (k + w >= cap)
            break;
        if (shown)
            memmove(out + k, u, len);
        else
            out[k] = '?';
        k += w;
        i += len ? len : 1;
    }
    out[k] = 0;
    return k;
}

void dl_remote_printable(char *s)
{
    size_t n = strlen(s);
    printable(s, n, s, n + 1);
}

/* ---- references ---- */

bool dl_remote_is_ref(const char *t)
{
    if (!t)
        return false;
    if (t[0] == '@')
        return true;
    return (!strncasecmp(t, "http://", 7) || !strncasecmp(t, "https://", 8)) && strchr(t, '#');
}

/* base_shown (userinfo dropped), host ("host:port") and root from r->base. */
static dl_status split_url(dl_remote *r)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *shown = NULL;
    dl_status st = DL_OK;
    if (!u)
        return remote_fail(r, DL_ERR_IO, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, r->base, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        st = DL_ERR_ARG;
    } else {
        curl_url_set(u, CURLUPART_USER, NULL, 0);
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
        if (curl_url_get(u, CURLUPART_URL, &shown, 0) != CURLUE_OK)
            st = DL_ERR_ARG;
        if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
            snprintf(r->host, sizeof r->host, "%s:%s", host, port);
        else
            snprintf(r->host, sizeof r->host, "%s", host);
    }
    if (!st) {
        size_t n = strlen(shown);
        while (n > 0 && shown[n - 1] == '/')
            shown[--n] = 0;
        r->base_shown = strdup(shown);
        size_t b = strlen(r->base);
        r->root = strdup(r->base);
        if (r->root && b >= 3 && !strcmp(r->base + b - 3, "/v1"))
            r->root[b - 3] = 0;
        if (!r->base_shown || !r->root)
            st = remote_fail(r, DL_ERR_IO, "out of memory");
    }
    curl_free(host);
    curl_free(port);
    curl_free(shown);
    curl_url_cleanup(u);
    return st;
}

/* "@NAME[/MODEL]": the endpoint from the file. */
static dl_status named_ref(dl_remote *r, const char *ref)
{
    const char *slash = strchr(ref + 1, '/');
    size_t nlen = slash ? (size_t)(slash - ref - 1) : strlen(ref + 1);
    dl_endpoint *list;
    size_t n;
    char err[1024], path[4096];
    const char *conf = r->o.conf_path;
    if (!conf && dl_endpoints_default_path(path, sizeof path))
        conf = path;
    dl_status st = dl_endpoints_load(conf, &list, &n, err, sizeof err);
    if (st == DL_ERR_NOT_FOUND)
        return remote_fail(r, st, "%s: no endpoints file (%s); define [%.*s] there with url = "
                           "... and key_env = VARIABLE, or use the ad hoc form URL#MODEL",
                           ref, err, (int)nlen, ref + 1);
    if (st)
        return remote_fail(r, st, "%s", err);
    const dl_endpoint *e = NULL;
    char names[512] = "";
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strlen(list[i].name) == nlen && !strncmp(list[i].name, ref + 1, nlen))
            e = &list[i];
        if (k < sizeof names)
            k += (size_t)snprintf(names + k, sizeof names - k, "%s@%s", i ? ", " : "",
                                  list[i].name);
    }
    if (!e) {
        st = remote_fail(r, DL_ERR_NOT_FOUND, "%s: no endpoint [%.*s] in %s (it has: %s)", ref,
                         (int)nlen, ref + 1, conf, n ? names : "none");
    } else {
        r->base = strdup(e->url);
        r->key_env = e->key_env ? strdup(e->key_env) : NULL;
        const char *m = slash && slash[1] ? slash + 1 : e->model;
        r->model = m ? strdup(m) : NULL;
        if (!r->base || (e->key_env && !r->key_env) || (m && !r->model))
            st = remote_fail(r, DL_ERR_IO, "out of memory");
    }
    dl_endpoints_free(list, n);
    return st;
}

/* "http(s)://.../v1#MODEL" (or without '#', for a listing); the key from OPENAI_API_KEY, as
 * OpenAI's own clients read it. */
static dl_status adhoc_ref(dl_remote *r, const char *ref)
{
    if (strncasecmp(ref, "http://", 7) && strncasecmp(ref, "https://", 8))
        return remote_fail(r, DL_ERR_ARG, "'%s' is not a remote model reference (expected "
                           "http(s)://HOST:PORT/v1#MODEL or @NAME[/MODEL])", ref);
    const char *hash = strchr(ref, '#');
    size_t blen = hash ? (size_t)(hash - ref) : strlen(ref);
    if (hash && !hash[1])
        return remote_fail(r, DL_ERR_ARG, "no model after '#' (sizeup list --remote with the "
                           "URL before it lists what the endpoint serves)");
    r->base = strndup(ref, blen);
    r->model = hash ? strdup(hash + 1) : NULL;
    r->key_env = strdup("OPENAI_API_KEY");
    if (!r->base || (hash && !r->model) || !r->key_env)
        return remote_fail(r, DL_ERR_IO, "out of memory");
    return DL_OK;
}

static dl_status parse_ref(dl_remote *r, const char *ref)
{
    dl_status st = ref[0] == '@' ? named_ref(r, ref) : adhoc_ref(r, ref);
    if (st)
        return st;
    size_t n = strlen(r->base);
    while (n > 0 && r->base[n - 1] == '/')
        r->base[--n] = 0;
    if (split_url(r) != DL_OK)
        return remote_fail(r, DL_ERR_ARG, "%s: not a usable URL", ref[0] == '@' ? ref : "the "
                           "reference");
    return DL_OK;
}

dl_status dl_remote_open(const char *ref, const dl_remote_opts *o, dl_remote **out)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init);
    dl_remote *r = calloc(1, sizeof *r);
    if (!r)
        return DL_ERR_IO;
    *out = r;
    r->kind = "OpenAI-compatible";
    r->st.kv_usage = -1;
    atomic_init(&r->cancel, 0);
    if (o)
        r->o = *o;
    const char *ca = r->o.cacert ? r->o.cacert : getenv("CURL_CA_BUNDLE");
    if (ca && *ca && !(r->cacert = strdup(ca)))
        return remote_fail(r, DL_ERR_IO, "out of memory");
    r->o.cacert = NULL;    /* borrowed from the caller: only the copy is kept */
    r->o.conf_path = o && o->conf_path ? o->conf_path : NULL;
    if (!r->o.connect_s)
        r->o.connect_s = 10;
    if (!r->o.read_timeout_s)
        r->o.read_timeout_s = 60;
    if (!r->o.max_retries)
        r->o.max_retries = 3;
    else if (r->o.max_retries < 0)
        r->o.max_retries = 0;
    if (!r->o.max_wait_s)
        r->o.max_wait_s = 30;
    if (!r->o.max_line)
        r->o.max_line = DEFAULT_MAX_LINE;
    if (curl_init_rc != CURLE_OK)
        return remote_fail(r, DL_ERR_IO, "libcurl could not start: %s",
                           curl_easy_strerror(curl_init_rc));
    if (!ref || !*ref)
        return remote_fail(r, DL_ERR_ARG, "empty remote reference");
    dl_status st = parse_ref(r, ref);
    r->o.conf_path = NULL; /* only needed while parsing; the caller's string is not kept */
    if (st)
        return st;
    const char *key = r->key_env ? getenv(r->key_env) : NULL;
    if (key && *key && !(r->key = strdup(key)))
        return remote_fail(r, DL_ERR_IO, "out of memory");
    r->st.host = r->host;
    r->st.server = r->kind;
    return DL_OK;
}

void dl_remote_close(dl_remote *r)
{
    if (!r)
        return;
    if (r->key)   /* not left in freed memory for a later allocation to reveal */
        memset(r->key, 0, strlen(r->key));
    free(r->key);
    free(r->base);
    free(r->base_shown);
    free(r->root);
    free(r->model);
    free(r->key_env);
    free(r->cacert);
    strbuf_free(&r->answer);
    strbuf_free(&r->reasoning);
    free(r);
}

const char *dl_remote_errmsg(const dl_remote *r) { return r ? r->err : "out of memory"; }
const char *dl_remote_model(const dl_remote *r) { return r->model; }
const char *dl_remote_base_url(const dl_remote *r) { return r->base_shown; }
const char *dl_remote_host(const dl_remote *r) { return r->host; }
const char *dl_remote_key_env(const dl_remote *r) { return r->key_env; }
const char *dl_remote_server_kind(const dl_remote *r) { return r->kind; }
const char *dl_remote_answer(const dl_remote *r) { return r->answer.p ? r->answer.p : ""; }
const char *dl_remote_reasoning(const dl_remote *r)
{
    return r->reasoning.p ? r->reasoning.p : "";
}

void dl_remote_cancel(dl_remote *r)
{
    atomic_store(&r->cancel, 1);
}

void dl_remote_set_status(dl_remote *r, dl_remote_status_fn fn, void *user)
{
    r->status_fn = fn;
    r->status_user = user;
}

void dl_remote_stats_get(const dl_remote *r, dl_remote_stats *out)
{
    *out = r->st;
    out->server = r->kind;
}

dl_remote_sampling dl_remote_sampling_unset(void)
{
    return (dl_remote_sampling){ -1, -1, -1, -1, 0, 0, false, 0 };
}

const char *dl_remote_finish_str(dl_remote_finish f)
{
    switch (f) {
    case DL_REMOTE_FINISH_NONE: return "failed";
    case DL_REMOTE_FINISH_STOP: return "end of answer";
    case DL_REMOTE_FINISH_LENGTH: return "token limit"; /* as a local model's stop reads */
    case DL_REMOTE_FINISH_CANCELLED: return "cancelled";
    }
    return "?";
}

/* The server kind from a listing's owned_by or a Server header; unknown words change
 * nothing. */
static void note_kind(dl_remote *r, const char *word)
{
    if (!word)
        return;
    if (!strcasecmp(word, "vllm"))
        r->kind = "vLLM";
    else if (!strcasecmp(word, "llamacpp") || strstr(word, "llama.cpp"))
        r->kind = "llama-server";
    else if (!strcasecmp(word, "ollama") || !strcasecmp(word, "library"))
        r->kind = "Ollama";
    r->st.server = r->kind;
}

/* ---- one HTTP call ---- */

typedef enum call_kind { CALL_STREAM, CALL_LIST, CALL_METRICS } call_kind;

typedef struct call {
    dl_remote *r;
    call_kind kind;
    CURL *h;
    struct curl_slist *hdrs;
    char errbuf[CURL_ERROR_SIZE];
    long status;              /* of the latest response (headers reset at each status line) */
    long retry_after_s;       /* -1: none */
    strbuf body;              /* a refusal's body, a listing, the metrics */
    size_t body_max;
    /* CALL_STREAM */
    dl_sse *sse;
    dl_remote_mode mode;
    dl_remote_token_fn fn;
    void *user;
    double t0, t_first;
    uint32_t chunks;          /* chunks that carried text */
    bool started;             /* bytes of a 2xx stream arrived */
    bool got_text, done, finished, usage;
    bool cancelled, user_stop;
    bool stalled;             /* nothing arrived for the read timeout */
    double t_heard;           /* when the server last sent anything */
    dl_remote_finish why;
    dl_status fail;           /* a chunk handler stopped the stream: the message is set */
} call;

static void call_free(call *c)
{
    if (c->h)
        curl_easy_cleanup(c->h);
    curl_slist_free_all(c->hdrs);
    dl_sse_free(c->sse);
    strbuf_free(&c->body);
    memset(c, 0, sizeof *c);
}

/* Retry-After: seconds, or an HTTP date. */
static long retry_after(const char *v)
{
    char *end;
    long s = strtol(v, &end, 10);
    if (end != v && !*end)
        return s < 0 ? 0 : s;
    time_t t = curl_getdate(v, NULL);
    if (t < 0)
        return -1;
    time_t now = time(NULL);
    return t > now ? (long)(t - now) : 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user)
{
    call *c = user;
    size_t n = size * nitems;
    c->t_heard = now_ms();
    char line[512];
    size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, buf, k);
    line[k] = 0;
    while (k > 0 && isspace((unsigned char)line[k - 1]))
        line[--k] = 0;
    if (!strncmp(line, "HTTP/", 5)) {
        const char *sp = strchr(line, ' ');
        c->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        c->retry_after_s = -1;
        return n;
    }
    char *colon = strchr(line, ':');
    if (!colon)
        return n;
    *colon = 0;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!strcasecmp(line, "Retry-After"))
        c->retry_after_s = retry_after(v);
    else if (!strcasecmp(line, "Server") && c->kind != CALL_METRICS)
        note_kind(c->r, v);
    return n;
}

static bool ok_status(long s)
{
    return s >= 200 && s < 300;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *user)
{
    call *c = user;
    dl_remote *r = c->r;
    size_t n = size * nmemb;
    c->t_heard = now_ms();
    if (c->kind != CALL_METRICS && atomic_load(&r->cancel)) {
        c->cancelled = true;
        return CURL_WRITEFUNC_ERROR;
    }
    if (c->kind != CALL_STREAM || !ok_status(c->status)) {
        size_t max = ok_status(c->status) ? c->body_max : ERR_BODY_MAX;
        size_t room = max > c->body.len ? max - c->body.len : 0;
        if (ok_status(c->status) && n > room) {
            if (c->kind == CALL_LIST)
                c->fail = remote_fail(r, DL_ERR_FORMAT, "the model listing of %s is larger "
                                      "than %zu bytes", r->host, max);
            return CURL_WRITEFUNC_ERROR;
        }
        buf_add(&c->body, p, n < room ? n : room, max);   /* a refusal: its start will do */
        return n;
    }
    c->started = true;
    int rc = dl_sse_feed(c->sse, p, n);
    if (rc == DL_SSE_TOO_LONG)
        c->fail = remote_fail(r, DL_ERR_FORMAT, "a line of the stream from %s is longer than "
                              "%zu bytes: refused%s", r->host, r->o.max_line,
                              c->got_text ? "; the partial answer is kept" : "");
    else if (rc == DL_SSE_NOMEM)
        c->fail = remote_fail(r, DL_ERR_IO, "out of memory reading the stream from %s",
                              r->host);
    return rc ? CURL_WRITEFUNC_ERROR : n;
}

/* libcurl calls this often while a transfer runs; the multi loop below checks the flag too,
 * for the time between calls. */
static int on_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt; (void)dn; (void)ut; (void)un;
    call *c = user;
    if (c->kind != CALL_METRICS && atomic_load(&c->r->cancel)) {
        c->cancelled = true;
        return 1;
    }
    return 0;
}

#define SET(opt, val)                                                                          \
    do {                                                                                       \
        if (curl_easy_setopt(c->h, opt, val) != CURLE_OK)                                      \
            return remote_fail(r, DL_ERR_ARG, "libcurl refused %s", #opt);                     \
    } while (0)

static dl_status call_setup(call *c, dl_remote *r, call_kind kind, const char *url)
{
    memset(c, 0, sizeof *c);
    c->r = r;
    c->kind = kind;
    c->retry_after_s = -1;
    c->body_max = kind == CALL_METRICS ? METRICS_MAX : LIST_BODY_MAX;
    if (!(c->h = curl_easy_init()))
        return remote_fail(r, DL_ERR_IO, "libcurl could not make a handle");
    SET(CURLOPT_URL, url);
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, 5L);
    SET(CURLOPT_POSTREDIR, (long)CURL_REDIR_POST_ALL);   /* a 301/302 keeps the POST a POST */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, strncasecmp(url, "https:", 6) ? "http,https" : "https");
    SET(CURLOPT_USERAGENT, USER_AGENT);
    SET(CURLOPT_CONNECTTIMEOUT, r->o.connect_s);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (r->cacert)
        SET(CURLOPT_CAINFO, r->cacert);
    /* A stall (nothing for the read timeout) is timed by perform() itself: libcurl's
     * low-speed check averages over several seconds, so after a burst of text it would notice
     * a silent server only seconds late. */
    if (kind == CALL_METRICS)
        SET(CURLOPT_TIMEOUT, METRICS_TIMEOUT_S);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, c);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, c);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, c);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_UNRESTRICTED_AUTH, 0L);
    if (r->key) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        SET(CURLOPT_XOAUTH2_BEARER, r->key);
    }
    return DL_OK;
}

/* ---- /metrics: the server's KV-cache use ---- */

/* The largest value of the KV-cache gauges vLLM and llama-server export (a fraction, 0..1,
 * whatever "perc" says), or -1 when the text has none. */
static double metrics_kv(const char *text)
{
    static const char *const names[] = { "vllm:gpu_cache_usage_perc",
                                         "vllm:kv_cache_usage_perc",
                                         "llamacpp:kv_cache_usage_ratio" };
    double best = -1;
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (*l == '#')
            continue;
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            size_t k = strlen(names[i]);
            if (strncmp(l, names[i], k) || (l[k] != '{' && l[k] != ' '))
                continue;
            const char *v = l + k;
            if (*v == '{' && !(v = strchr(v, '}')))
                break;
            char *end;
            double d = strtod(v + 1, &end);
            if (end != v + 1 && d >= 0 && d <= 1 && d > best)
                best = d;
        }
    }
    return best;
}

static void metrics_done(call *m, CURLcode rc)
{
    dl_remote *r = m->r;
    double kv = rc == CURLE_OK && m->status == 200 && m->body.p ? metrics_kv(m->body.p) : -1;
    if (kv < 0)
        r->metrics_absent = true;
    else if (kv > r->st.kv_usage)
        r->st.kv_usage = kv;
}

static void metrics_start(dl_remote *r, CURLM *m, call *mc, bool *on)
{
    char *url = malloc(strlen(r->root) + 16);
    if (url) {
        sprintf(url, "%s/metrics", r->root);
        char keep[sizeof r->err];
        memcpy(keep, r->err, sizeof keep);  /* a setup failure here is nobody's business */
        if (call_setup(mc, r, CALL_METRICS, url) == DL_OK &&
            curl_multi_add_handle(m, mc->h) == CURLM_OK)
            *on = true;
        memcpy(r->err, keep, sizeof keep);
    }
    free(url);
    if (!*on)
        call_free(mc);
}

/* Finished transfers on m: c's result into *result (and *done), the metrics read used. */
static void reap(CURLM *m, call *c, call *mc, bool *metrics_on, bool *done, CURLcode *result)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        if (msg->easy_handle == c->h) {
            *result = msg->data.result;
            *done = true;
        } else if (*metrics_on) {
            metrics_done(mc, msg->data.result);
            curl_multi_remove_handle(m, mc->h);
            call_free(mc);
            *metrics_on = false;
        }
    }
}

/* Run c (and, for an answer, one /metrics read once text flows) until c is done, cancelled or
 * stalled. Polling in POLL_MS steps bounds how long a cancel waits on a silent server. A
 * metrics read still running when the answer ends gets METRICS_GRACE_MS more: a short answer
 * on a fast server is over before the read is. */
static CURLcode perform(call *c)
{
    dl_remote *r = c->r;
    CURLM *m = curl_multi_init();
    if (!m || curl_multi_add_handle(m, c->h) != CURLM_OK) {
        curl_multi_cleanup(m);
        return CURLE_OUT_OF_MEMORY;
    }
    c->t_heard = now_ms();   /* a server that accepts and then says nothing stalls too */
    call mc;
    memset(&mc, 0, sizeof mc);
    bool metrics_on = false, metrics_tried = r->metrics_absent || r->o.no_metrics;
    bool done = false;
    double t_done = 0;
    CURLcode result = CURLE_OK;
    for (;;) {
        int running = 0;
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            result = done ? result : CURLE_RECV_ERROR;
            break;
        }
        bool was_done = done;
        reap(m, c, &mc, &metrics_on, &done, &result);
        if (done && !was_done)
            t_done = now_ms();
        /* the first text may come with the end in one read: the grace below covers that */
        if (c->got_text && !metrics_tried) {
            metrics_tried = true;
            metrics_start(r, m, &mc, &metrics_on);
        }
        if (atomic_load(&r->cancel)) {
            if (!done) {
                c->cancelled = true;
                result = CURLE_ABORTED_BY_CALLBACK;
            }
            break;
        }
        if (done && (!metrics_on || now_ms() - t_done > METRICS_GRACE_MS))
            break;
        /* Keep-alive comments count as heard: a server that is thinking but alive stays. */
        if (!done && now_ms() - c->t_heard > r->o.read_timeout_s * 1e3) {
            c->stalled = true;
            result = CURLE_OPERATION_TIMEDOUT;
            break;
        }
        curl_multi_poll(m, NULL, 0, POLL_MS, NULL);
    }
    if (metrics_on) {
        curl_multi_remove_handle(m, mc.h);
        call_free(&mc);
    }
    curl_multi_remove_handle(m, c->h);
    curl_multi_cleanup(m);
    return result;
}

/* ---- what went wrong ---- */

static bool is_tls_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR: case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR: case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS: case CURLE_SSL_CLIENTCERT: case CURLE_USE_SSL_FAILED:
        return true;
    default:
        return false;
    }
}

/* "; the N tokens received are kept (incomplete)" when text arrived before a failure. */
static const char *partial_note(const call *c, char *buf, size_t cap)
{
    if (!c->got_text)
        return "";
    snprintf(buf, cap, "; the partial answer (%s%u tokens) is kept, marked incomplete",
             c->usage ? "" : "~", c->r->st.n_gen);
    return buf;
}

static dl_status curl_fault(call *c, CURLcode rc)
{
    dl_remote *r = c->r;
    const char *why = c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc);
    char note[128];
    const char *part = partial_note(c, note, sizeof note);
    curl_off_t connect_us = -1;
    curl_easy_getinfo(c->h, CURLINFO_CONNECT_TIME_T, &connect_us);
    if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY)
        return remote_fail(r, DL_ERR_OFFLINE, "cannot resolve %s (DNS): %s", r->host, why);
    if (rc == CURLE_COULDNT_CONNECT)
        return remote_fail(r, DL_ERR_OFFLINE, "cannot connect to %s: %s (is the server "
                           "running, and is the port right?)", r->host, why);
    if (rc == CURLE_OPERATION_TIMEDOUT && connect_us == 0 && !c->stalled)
        return remote_fail(r, DL_ERR_OFFLINE, "cannot reach %s: no connection within %ld s",
                           r->host, r->o.connect_s);
    if (rc == CURLE_OPERATION_TIMEDOUT || c->stalled)
        return remote_fail(r, DL_ERR_NETWORK, "%s stalled: nothing received for %ld s (read "
                           "timeout)%s", r->host, r->o.read_timeout_s, part);
    if (is_tls_error(rc))
        return remote_fail(r, DL_ERR_TLS, "TLS failure with %s: %s (certificates are always "
                           "checked; --cacert FILE names the CA of a private server)%s%s%s",
                           r->host, why, r->cacert ? " (CA file " : "",
                           r->cacert ? r->cacert : "", r->cacert ? ")" : "");
    if (rc == CURLE_TOO_MANY_REDIRECTS)
        return remote_fail(r, DL_ERR_HTTP, "%s: too many redirects", r->host);
    if (c->started)
        return remote_fail(r, DL_ERR_NETWORK, "the stream from %s was cut mid-answer (%s)%s",
                           r->host, why, part);
    return remote_fail(r, DL_ERR_NETWORK, "request to %s failed: %s", r->host, why);
}

/* The server's own words from an error body: OpenAI's {"error": {"message"}}, {"error": "..."}
 * (llama-server, Ollama), FastAPI's {"detail"}, else the start of the text. */
static void server_words(const call *c, char *out, size_t cap)
{
    out[0] = 0;
    if (!c->body.len)
        return;
    json_t *j = json_loadb(c->body.p, c->body.len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    const char *s = json_string_value(json_object_get(e, "message"));
    if (!s)
        s = json_string_value(e);
    if (!s)
        s = json_string_value(json_object_get(j, "detail"));
    if (!s)
        s = json_string_value(json_object_get(j, "message"));
    if (s)
        printable(s, strlen(s), out, cap);
    else if (!j)
        printable(c->body.p, c->body.len < 200 ? c->body.len : 200, out, cap);
    json_decref(j);
}

/* Where a redirect led, when that is another host than the endpoint's. */
static void redirected_host(const call *c, char *out, size_t cap)
{
    out[0] = 0;
    char *eff = NULL;
    if (curl_easy_getinfo(c->h, CURLINFO_EFFECTIVE_URL, &eff) != CURLE_OK || !eff)
        return;
    dl_remote tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.base = eff;
    if (split_url(&tmp) == DL_OK && strcmp(tmp.host, c->r->host))
        snprintf(out, cap, "%s", tmp.host);
    free(tmp.base_shown);
    free(tmp.root);
}

static dl_status auth_fault(call *c, const char *words)
{
    dl_remote *r = c->r;
    char other[300];
    redirected_host(c, other, sizeof other);
    const char *sep = *words ? ": " : "";
    if (*other)
        return remote_fail(r, DL_ERR_HTTP, "HTTP %ld from %s, where %s redirected: the key is "
                           "not sent to another host%s%s", c->status, other, r->host, sep,
                           words);
    if (r->key)
        return remote_fail(r, DL_ERR_HTTP, "HTTP %ld from %s: the key in $%s was refused%s%s",
                           c->status, r->host, r->key_env, sep, words);
    if (r->key_env)
        return remote_fail(r, DL_ERR_HTTP, "HTTP %ld from %s: no key was sent; set the "
                           "environment variable %s to the endpoint's key%s%s", c->status,
                           r->host, r->key_env, sep, words);
    return remote_fail(r, DL_ERR_HTTP, "HTTP %ld from %s: the endpoint wants a key; name the "
                       "variable holding it with key_env = VARIABLE in endpoints.conf%s%s",
                       c->status, r->host, sep, words);
}

/* A 404 to an answer: usually a model the server does not have, so list what it has. */
static dl_status model_fault(call *c, const char *words)
{
    dl_remote *r = c->r;
    dl_remote_model_info *list;
    size_t n;
    char names[1024] = "";
    bool served = false;
    if (dl_remote_models(r, &list, &n) == DL_OK) {
        size_t k = 0;
        for (size_t i = 0; i < n && k < sizeof names; i++) {
            served = served || !strcmp(list[i].id, r->model);
            k += (size_t)snprintf(names + k, sizeof names - k, "%s", i ? ", " : "");
            if (k < sizeof names)
                k += printable(list[i].id, strlen(list[i].id), names + k, sizeof names - k);
        }
        dl_remote_models_free(list, n);
        if (!served)
            return remote_fail(r, DL_ERR_NOT_FOUND, "model '%s' is not served by %s; it "
                               "serves: %s", r->model, r->host, n ? names : "nothing");
    }
    return remote_fail(r, DL_ERR_HTTP, "HTTP 404 from %s for %s%s%s (is the base URL right? "
                       "OpenAI-compatible servers usually end it in /v1)", r->host,
                       r->base_shown, *words ? ": " : "", words);
}

static dl_status http_fault(call *c)
{
    dl_remote *r = c->r;
    char words[400];
    server_words(c, words, sizeof words);
    const char *sep = *words ? ": " : "";
    long s = c->status;
    if (s == 401 || s == 403)
        return auth_fault(c, words);
    if (s == 404 && c->kind == CALL_STREAM)
        return model_fault(c, words);
    if (s == 429 || s == 503)
        return remote_fail(r, DL_ERR_NETWORK, "HTTP %ld from %s (%s): gave up after %d "
                           "retr%s%s%s", s, r->host, s == 429 ? "too many requests" : "busy",
                           r->st.retries, r->st.retries == 1 ? "y" : "ies", sep, words);
    if (s >= 500)
        return remote_fail(r, DL_ERR_NETWORK, "HTTP %ld (server error) from %s%s%s", s,
                           r->host, sep, words);
    if (s == 404)
        return remote_fail(r, DL_ERR_HTTP, "HTTP 404 from %s for %s/models (is the base URL "
                           "right? OpenAI-compatible servers usually end it in /v1)", r->host,
                           r->base_shown);
    return remote_fail(r, DL_ERR_HTTP, "HTTP %ld from %s%s%s", s, r->host, sep, words);
}

/* The outcome of one call. */
static dl_status call_status(call *c, CURLcode rc)
{
    dl_remote *r = c->r;
    if (c->cancelled || c->user_stop) {
        c->why = DL_REMOTE_FINISH_CANCELLED;
        r->st.partial = !c->done && !c->finished;
        return DL_OK;
    }
    dl_status st = c->fail;
    if (!st && rc != CURLE_OK)
        st = curl_fault(c, rc);
    else if (!st && !ok_status(c->status))
        st = http_fault(c);
    if (!st && c->kind == CALL_STREAM && !c->done && !c->finished) {
        char note[128];
        bool mid = c->sse && dl_sse_finish(c->sse);
        st = remote_fail(r, DL_ERR_NETWORK, "the stream from %s ended before the answer was "
                         "complete (no [DONE]%s)%s", r->host, mid ? ", cut mid-line" : "",
                         partial_note(c, note, sizeof note));
    }
    if (st) {
        c->why = DL_REMOTE_FINISH_NONE;
        r->st.partial = c->kind == CALL_STREAM && c->got_text;
    }
    return st;
}

/* ---- the answer's chunks ---- */

static void update_rates(dl_remote *r)
{
    dl_remote_stats *st = &r->st;
    st->gen_tps = st->n_gen > 1 && st->gen_ms > 0 ? (st->n_gen - 1) * 1e3 / st->gen_ms : 0;
}

/* One piece of generated text: kept, timed, counted and handed on. */
/* s[0..n) without its NUL bytes (a "\u0000" in the JSON), in *tmp when it has any: the text
 * is kept and passed on as C strings, and a NUL is nothing anyone should see. NULL when out of
 * memory. */
static const char *drop_nuls(const char *s, size_t *n, char **tmp)
{
    *tmp = NULL;
    if (!memchr(s, 0, *n))
        return s;
    if (!(*tmp = malloc(*n)))
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        if (s[i])
            (*tmp)[k++] = s[i];
    *n = k;
    return *tmp;
}

static int deliver_text(call *c, dl_remote_part part, const char *s, size_t n)
{
    dl_remote *r = c->r;
    if (!n)
        return 0;   /* a role-only or empty delta is no token */
    double t = now_ms();
    if (!c->got_text) {
        c->got_text = true;
        c->t_first = t;
        r->st.ttft_ms = t - c->t0;
    }
    c->chunks++;
    r->st.gen_ms = t - c->t_first;
    if (!c->usage) {
        r->st.n_gen = c->chunks;
        r->st.gen_approx = true;
    }
    update_rates(r);
    strbuf *b = part == DL_REMOTE_ANSWER ? &r->answer : &r->reasoning;
    if (!buf_add(b, s, n, (size_t)1 << 30)) {
        c->fail = remote_fail(r, DL_ERR_IO, "out of memory keeping the answer from %s",
                              r->host);
        return 1;
    }
    if (part == DL_REMOTE_ANSWER)
        r->st.answer_len = b->len;
    else
        r->st.reasoning_len = b->len;
    if (c->fn && !c->fn(c->user, part, s, n, &r->st)) {
        c->user_stop = true;
        return 2;
    }
    return 0;
}

static int deliver(call *c, dl_remote_part part, const char *s, size_t n)
{
    char *tmp;
    const char *t = drop_nuls(s, &n, &tmp);
    if (!t) {
        c->fail = remote_fail(c->r, DL_ERR_IO, "out of memory keeping the answer from %s",
                              c->r->host);
        return 1;
    }
    int rc = deliver_text(c, part, t, n);
    free(tmp);
    return rc;
}

static uint32_t json_u32(json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 && v <= UINT32_MAX ? (uint32_t)v : 0;
}

static double json_num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* usage (the last chunk, with include_usage) and llama-server's timings. */
static void chunk_figures(call *c, json_t *j)
{
    dl_remote *r = c->r;
    json_t *u = json_object_get(j, "usage");
    if (json_is_object(u) && json_is_integer(json_object_get(u, "completion_tokens"))) {
        c->usage = true;
        r->st.n_gen = json_u32(u, "completion_tokens");
        r->st.n_prompt = json_u32(u, "prompt_tokens");
        r->st.gen_approx = false;
        update_rates(r);
    }
    json_t *t = json_object_get(j, "timings");
    if (json_is_object(t)) {
        r->kind = "llama-server";
        r->st.has_timings = true;
        r->st.srv_n_prompt = json_u32(t, "prompt_n");
        r->st.srv_prompt_ms = json_num(t, "prompt_ms");
        r->st.srv_prompt_tps = json_num(t, "prompt_per_second");
        r->st.srv_n_gen = json_u32(t, "predicted_n");
        r->st.srv_gen_ms = json_num(t, "predicted_ms");
        r->st.srv_gen_tps = json_num(t, "predicted_per_second");
    }
}

static int on_chunk(call *c, json_t *j, const char *event)
{
    dl_remote *r = c->r;
    json_t *e = json_object_get(j, "error");
    if (e || !strcmp(event, "error")) {
        const char *m = json_string_value(json_object_get(e, "message"));
        if (!m)
            m = json_string_value(e);
        char words[300], note[128];
        printable(m ? m : "(no message)", strlen(m ? m : "(no message)"), words, sizeof words);
        c->fail = remote_fail(r, DL_ERR_NETWORK, "%s reported an error mid-answer: %s%s",
                              r->host, words, partial_note(c, note, sizeof note));
        return 1;
    }
    chunk_figures(c, j);
    json_t *ch = json_array_get(json_object_get(j, "choices"), 0);
    if (!ch)
        return 0;
    json_t *text = NULL, *reason = NULL;
    if (c->mode == DL_REMOTE_CHAT) {
        json_t *d = json_object_get(ch, "delta");
        text = json_object_get(d, "content");
        reason = json_object_get(d, "reasoning_content");
        if (!json_is_string(reason))   /* newer vLLM names it "reasoning" */
            reason = json_object_get(d, "reasoning");
    } else {
        text = json_object_get(ch, "text");
    }
    int rc = 0;
    if (json_is_string(reason))
        rc = deliver(c, DL_REMOTE_REASONING, json_string_value(reason), json_string_length(reason));
    if (!rc && json_is_string(text))
        rc = deliver(c, DL_REMOTE_ANSWER, json_string_value(text), json_string_length(text));
    const char *fin = json_string_value(json_object_get(ch, "finish_reason"));
    if (fin) {
        c->finished = true;
        c->why = !strcmp(fin, "length") ? DL_REMOTE_FINISH_LENGTH : DL_REMOTE_FINISH_STOP;
    }
    return rc;
}

static int on_event(void *user, const char *event, const char *data, size_t len)
{
    call *c = user;
    dl_remote *r = c->r;
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        c->done = true;
        return 0;
    }
    json_error_t je;
    /* "\u0000" is valid JSON; deliver drops the NULs from the text */
    json_t *j = json_loadb(data, len, JSON_ALLOW_NUL, &je);
    if (!json_is_object(j)) {
        char snip[64], note[128];
        printable(data, len < 40 ? len : 40, snip, sizeof snip);
        c->fail = remote_fail(r, DL_ERR_FORMAT, "malformed JSON in the stream from %s (%s, "
                              "in '%s%s')%s", r->host, j ? "not an object" : je.text, snip,
                              len > 40 ? "..." : "", partial_note(c, note, sizeof note));
        json_decref(j);
        return 1;
    }
    int rc = on_chunk(c, j, event);
    json_decref(j);
    return rc;
}

/* ---- requests ---- */

static json_t *request_json(const dl_remote *r, const dl_remote_request *q)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(r->model));
    if (q->mode == DL_REMOTE_CHAT) {
        json_t *msgs = json_array();
        for (size_t i = 0; i < q->n_msgs; i++)
            json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", q->msgs[i].role,
                                                  "content", q->msgs[i].content));
        json_object_set_new(o, "messages", msgs);
    } else {
        json_object_set_new(o, "prompt", json_string(q->prompt ? q->prompt : ""));
    }
    json_object_set_new(o, "stream", json_true());
    json_object_set_new(o, "stream_options", json_pack("{s:b}", "include_usage", 1));
    const dl_remote_sampling *s = &q->sampling;
    if (s->temperature >= 0)
        json_object_set_new(o, "temperature", json_real(s->temperature));
    if (s->top_p >= 0)
        json_object_set_new(o, "top_p", json_real(s->top_p));
    if (s->top_k >= 0)
        json_object_set_new(o, "top_k", json_integer(s->top_k));
    if (s->min_p >= 0)
        json_object_set_new(o, "min_p", json_real(s->min_p));
    if (s->repeat_penalty > 0)
        json_object_set_new(o, "repeat_penalty", json_real(s->repeat_penalty));
    if (s->max_tokens > 0)
        json_object_set_new(o, "max_tokens", json_integer(s->max_tokens));
    if (s->has_seed)   /* JSON integers are signed: a seed past INT64_MAX wraps, still fixed */
        json_object_set_new(o, "seed", json_integer((json_int_t)s->seed));
    if (q->n_stop) {
        json_t *a = json_array();
        for (size_t i = 0; i < q->n_stop; i++)
            json_array_append_new(a, json_string(q->stop[i]));
        json_object_set_new(o, "stop", a);
    }
    return o;
}

/* Wait ms in short steps; false when cancelled meanwhile. */
static bool wait_ms(dl_remote *r, long ms)
{
    while (ms > 0 && !atomic_load(&r->cancel)) {
        long step = ms < 20 ? ms : 20;
        struct timespec ts = { 0, step * 1000000L };
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !atomic_load(&r->cancel);
}

/* One POST of the answer. *status and *retry get the response's code and Retry-After. */
static dl_status answer_once(dl_remote *r, const char *url, const char *body,
                             const dl_remote_request *q, dl_remote_token_fn fn, void *user,
                             dl_remote_finish *why, long *status, long *retry, bool *got)
{
    call c;
    dl_status st = call_setup(&c, r, CALL_STREAM, url);
    if (!st) {
        c.mode = q->mode;
        c.fn = fn;
        c.user = user;
        c.sse = dl_sse_new(r->o.max_line, on_event, &c);
        c.hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        struct curl_slist *h2 = c.hdrs ? curl_slist_append(c.hdrs, "Accept: text/event-stream")
                                       : NULL;
        if (!c.sse || !h2)
            st = remote_fail(r, DL_ERR_IO, "out of memory");
        else
            c.hdrs = h2;
    }
    if (!st && (curl_easy_setopt(c.h, CURLOPT_HTTPHEADER, c.hdrs) != CURLE_OK ||
                curl_easy_setopt(c.h, CURLOPT_COPYPOSTFIELDS, body) != CURLE_OK))
        st = remote_fail(r, DL_ERR_ARG, "libcurl refused the request");
    if (!st) {
        c.t0 = now_ms();
        CURLcode rc = perform(&c);
        st = call_status(&c, rc);
        *why = c.why;
    }
    *status = c.status;
    *retry = c.retry_after_s;
    *got = c.got_text;
    call_free(&c);
    return st;
}

static void reset_answer(dl_remote *r)
{
    r->answer.len = r->reasoning.len = 0;
    if (r->answer.p)
        r->answer.p[0] = 0;
    if (r->reasoning.p)
        r->reasoning.p[0] = 0;
    memset(&r->st, 0, sizeof r->st);
    r->st.kv_usage = -1;   /* read afresh during each answer */
    r->st.host = r->host;
    r->st.server = r->kind;
    r->err[0] = 0;
}

/* Whether to wait and try again after a refusal; false (with the message set) otherwise. */
static bool retry_wait(dl_remote *r, long status, long retry, int attempt, bool *cancelled)
{
    if ((status != 429 && status != 503) || attempt >= r->o.max_retries)
        return false;
    if (retry > r->o.max_wait_s) {
        remote_fail(r, DL_ERR_NETWORK, "HTTP %ld from %s: it asks to wait %ld s (Retry-After), "
                    "longer than the %ld s sizeup waits; try again later", status, r->host,
                    retry, r->o.max_wait_s);
        return false;
    }
    long wait = retry >= 0 ? retry : 1L << attempt;
    char line[600];
    snprintf(line, sizeof line, "HTTP %ld from %s (%s): waiting %ld s%s, then retry %d of %d",
             status, r->host, status == 429 ? "too many requests" : "busy", wait,
             retry >= 0 ? " as its Retry-After says" : "", attempt + 1, r->o.max_retries);
    if (r->status_fn)
        r->status_fn(r->status_user, line);
    r->st.retries++;
    *cancelled = !wait_ms(r, wait * 1000);
    return !*cancelled;
}

dl_status dl_remote_generate(dl_remote *r, const dl_remote_request *q, dl_remote_token_fn fn,
                             void *user, dl_remote_finish *why)
{
    *why = DL_REMOTE_FINISH_NONE;
    atomic_store(&r->cancel, 0);
    reset_answer(r);
    if (!r->model)
        return remote_fail(r, DL_ERR_ARG, "no model named for %s: add #MODEL to the URL or "
                           "model = ... to its endpoints.conf section (sizeup list --remote "
                           "%s lists them)", r->host, r->base_shown);
    json_t *j = request_json(r, q);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    const char *tail = q->mode == DL_REMOTE_CHAT ? "/chat/completions" : "/completions";
    char *url = malloc(strlen(r->base) + strlen(tail) + 1);
    if (!body || !url) {
        free(body);
        free(url);
        return remote_fail(r, DL_ERR_IO, "out of memory");
    }
    sprintf(url, "%s%s", r->base, tail);
    double t0 = now_ms();
    dl_status st;
    for (int attempt = 0;; attempt++) {
        long status = 0, retry = -1;
        bool got = false, cancelled = false;
        st = answer_once(r, url, body, q, fn, user, why, &status, &retry, &got);
        if (!st || got)
            break;
        if (!retry_wait(r, status, retry, attempt, &cancelled)) {
            if (cancelled) {
                *why = DL_REMOTE_FINISH_CANCELLED;
                st = DL_OK;
            }
            break;
        }
    }
    r->st.total_ms = now_ms() - t0;
    free(body);
    free(url);
    return st;
}

/* ---- the listing ---- */

void dl_remote_models_free(dl_remote_model_info *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) {
        free(list[i].id);
        free(list[i].owned_by);
    }
    free(list);
}

static dl_status parse_models(dl_remote *r, const char *text, size_t len,
                              dl_remote_model_info **list, size_t *n)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    json_t *data = json_object_get(j, "data");
    if (!json_is_array(data)) {
        json_decref(j);
        return remote_fail(r, DL_ERR_FORMAT, "%s/models is not an OpenAI model listing (%s)",
                           r->base_shown, j ? "no \"data\" array" : je.text);
    }
    size_t k = json_array_size(data);
    dl_remote_model_info *l = calloc(k ? k : 1, sizeof *l);
    size_t got = 0;
    for (size_t i = 0; l && i < k; i++) {
        json_t *e = json_array_get(data, i);
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *own = json_string_value(json_object_get(e, "owned_by"));
        if (!id)
            continue;
        l[got].id = strdup(id);
        l[got].owned_by = own ? strdup(own) : NULL;
        json_int_t ml = json_integer_value(json_object_get(e, "max_model_len"));
        l[got].max_model_len = ml > 0 ? (uint64_t)ml : 0;
        if (!l[got++].id) {
            dl_remote_models_free(l, got);
            l = NULL;
        }
        if (own && i == 0)
            note_kind(r, own);
    }
    json_decref(j);
    if (!l)
        return remote_fail(r, DL_ERR_IO, "out of memory");
    *list = l;
    *n = got;
    return DL_OK;
}

dl_status dl_remote_models(dl_remote *r, dl_remote_model_info **list, size_t *n)
{
    *list = NULL;
    *n = 0;
    atomic_store(&r->cancel, 0);
    r->err[0] = 0;
    char *url = malloc(strlen(r->base) + 8);
    if (!url)
        return remote_fail(r, DL_ERR_IO, "out of memory");
    sprintf(url, "%s/models", r->base);
    call c;
    dl_status st = call_setup(&c, r, CALL_LIST, url);
    if (!st) {
        CURLcode rc = perform(&c);
        if (c.cancelled)
            st = remote_fail(r, DL_ERR_CANCELLED, "listing %s cancelled", r->host);
        else
            st = call_status(&c, rc);
    }
    if (!st)
        st = parse_models(r, c.body.p ? c.body.p : "", c.body.len, list, n);
    call_free(&c);
    free(url);
    return st;
}
