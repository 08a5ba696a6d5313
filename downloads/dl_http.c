/* Transfers with libcurl (docs/DESIGN.md section 5.3): a model file into the store, resumable
 * and verified (dl_fetch_file); a small answer into memory (dl_get, for JSON listings); a byte
 * range into a buffer (dl_get_range, for header peeks).
 *
 * One attempt is one curl_easy_perform. Attempts that fail for a reason that may pass (reset,
 * timeout, too slow, 5xx) are retried after a doubling wait; 4xx, TLS and "host unreachable"
 * are not. A file transfer writes FILE.part and a sidecar FILE.part.json (URL, ETag, expected
 * size and SHA-256), so a later call resumes with a Range request guarded by If-Range. It hashes
 * while writing, checks size and SHA-256, renames the part into place and writes the record
 * FILE.json (dl_store.c). A flock on FILE.lock makes two processes pulling one file take turns.
 */
#include "downloads/dl_internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "engine/strbuf.h" /* a leaf: the one growable buffer (docs/DESIGN.md) */

#define USER_AGENT "sizeup/0.1"
#define MAX_REDIRECTS 10L
#define GET_LIMIT ((size_t)64 << 20)   /* dl_get: listings are kilobytes; refuse a runaway */
#define PROGRESS_EVERY_S 0.1
#define MAX_RESTARTS 3                 /* "the file changed under us" restarts per call */
#define MAX_BACKOFF_MS 60000L
#define HDR_VALUE 256

#ifndef CURL_WRITEFUNC_ERROR
#define CURL_WRITEFUNC_ERROR 0xFFFFFFFF
#endif

/* A failing curl_easy_setopt goes to the caller as DL_ERR_ARG naming the option. */
#define SETOPT(x, opt, val)                                                                    \
    do {                                                                                       \
        CURLcode rc_ = curl_easy_setopt((x)->h, opt, val);                                     \
        if (rc_ != CURLE_OK)                                                                   \
            return setopt_failed((x), #opt, rc_);                                              \
    } while (0)

/* ---- state of one call ---- */

/* The headers of one response; reset at each status line, so after a redirect chain they are
 * the final response's. */
typedef struct resp {
    long status;
    char etag[HDR_VALUE];
    char last_modified[HDR_VALUE];
    bool has_length;
    uint64_t length;            /* Content-Length */
    bool has_range;
    uint64_t range_start;       /* Content-Range: bytes START-END/TOTAL */
    uint64_t range_total;       /* TOTAL, also from "bytes * /TOTAL" (416); 0 when unknown */
} resp;

typedef enum sink_kind { SINK_FILE, SINK_MEM, SINK_RANGE } sink_kind;

/* Why one of our callbacks stopped the transfer (curl then reports a write/callback error). */
typedef enum stop_why {
    STOP_NONE,
    STOP_CANCEL,                /* dl_cancel, or the progress callback asked */
    STOP_FAILED,                /* a local failure: stop_status and the message are set */
    STOP_RESTART,               /* the part does not continue the server's file: from zero */
    STOP_ENOUGH,                /* dl_get_range has its bytes */
} stop_why;

typedef struct file_sink {
    const char *dest;
    char *part_path, *side_path;
    char *url_shown;            /* the URL without user:password: what the sidecar and the
                                 * record keep (the credentials are given again to resume) */
    int fd;
    EVP_MD_CTX *sha;            /* over the part's bytes [0, written) */
    uint64_t written;           /* bytes in the part */
    uint64_t resumed_from;      /* bytes there when this call started */
    uint64_t restarted_from;    /* bytes this attempt threw away: nothing guarded resuming */
    uint64_t total;             /* expected size, 0 when unknown */
    uint64_t want_size;         /* exp->size, 0 when not given */
    bool want_gguf;             /* exp->gguf: the file must start with the GGUF magic */
    uint64_t side_size;         /* expected size the sidecar remembered */
    char want_sha[65];          /* exp's, else X-Linked-Etag's, else the sidecar's; "" unknown */
    bool sha_from_exp;
    char etag[HDR_VALUE];       /* ETag of the bytes in the part, "" unknown */
    char last_mod[HDR_VALUE];   /* their Last-Modified date, "" unknown: the If-Range
                                 * validator when there is no strong ETag */
    char got_sha[65];
    uint64_t net;               /* bytes received over the network in this call */
    double t_start, t_report, t_sample, speed;
    uint64_t net_sample;
    int attempt;
} file_sink;

typedef struct xfer {
    dl_ctx *c;
    const char *url;
    CURL *h;
    struct curl_slist *headers;
    char errbuf[CURL_ERROR_SIZE];
    sink_kind kind;
    resp r;
    char linked_etag[HDR_VALUE];   /* X-Linked-Etag from any response of the chain */
    uint64_t linked_size;          /* X-Linked-Size likewise, 0 when none */
    bool begun;                    /* the final response's body has started */
    int connect_timeouts;          /* attempts that timed out before connecting */
    stop_why stop;
    dl_status stop_status;
    file_sink *f;                                  /* SINK_FILE */
    strbuf mem;                                    /* SINK_MEM */
    struct {
        uint64_t offset;
        size_t want, got;
        uint8_t *buf;
        uint64_t skip;          /* bytes still to skip of a 200 answer to reach offset */
    } rng;                                         /* SINK_RANGE */
} xfer;

/* ---- small helpers ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static dl_status ensure_curl(dl_ctx *c)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return dl_fail(c, DL_ERR_IO, "libcurl could not start: %s",
                       curl_easy_strerror(curl_init_rc));
    return DL_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Copy s into out (65 bytes) lower-cased when it is exactly 64 hex digits. */
static bool sha_hex_copy(const char *s, char out[65])
{
    size_t n = strlen(s);
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[64] = 0;
    return true;
}

/* True when url lies under base (a prefix ending at a path boundary), so the Hugging Face token
 * never goes to "https://huggingface.co.example" or elsewhere. */
static bool under_endpoint(const char *url, const char *base)
{
    size_t n = base ? strlen(base) : 0;
    return n > 0 && strncmp(url, base, n) == 0 &&
           (url[n] == 0 || url[n] == '/' || url[n] == '?');
}

static void fmt_size(uint64_t b, char *out, size_t cap)
{
    const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 6) {
        v /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", v, unit[i]);
}

/* Leading decimal digits of s; *end gets what follows them. */
static bool parse_u64_prefix(const char *s, uint64_t *out, const char **end)
{
    if (!isdigit((unsigned char)*s))
        return false;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno)
        return false;
    *out = v;
    *end = e;
    return true;
}

/* A whole header value that is a number: "123abc" is not 123 (a size read from it would
 * fail verification or, worse, pass a truncated file). */
static bool parse_u64(const char *s, uint64_t *out)
{
    const char *end;
    uint64_t v;
    if (!parse_u64_prefix(s, &v, &end) || *end)
        return false;
    *out = v;
    return true;
}

/* Free space for an unprivileged writer on the file system holding path. */
static int free_space(const char *path, uint64_t *avail)
{
    struct statvfs v;
    if (statvfs(path, &v) != 0)
        return -1;
    *avail = (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
    return 0;
}

static dl_status disk_full(dl_ctx *c, const char *dest, uint64_t need, uint64_t avail)
{
    char a[32], b[32];
    fmt_size(need, a, sizeof a);
    fmt_size(avail, b, sizeof b);
    return dl_fail(c, DL_ERR_DISK_FULL,
                   "not enough disk space for %s: it needs %" PRIu64 " more bytes (%s), "
                   "%" PRIu64 " bytes (%s) are free; any partial download is kept for resuming",
                   dest, need, a, avail, b);
}

static dl_status setopt_failed(xfer *x, const char *opt, CURLcode rc)
{
    return dl_fail(x->c, DL_ERR_ARG, "libcurl refused %s for %s: %s", opt, x->url,
                   curl_easy_strerror(rc));
}

/* Sleep ms in short steps, so a cancel is noticed at once. False when cancelled. */
static bool backoff_sleep(dl_ctx *c, long ms)
{
    while (ms > 0 && !c->cancel) {
        long step = ms < 50 ? ms : 50;
        struct timespec ts = { 0, step * 1000000L };
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !c->cancel;
}

/* The cancel flag is consumed by the call it stops, so the context is usable afterwards and a
 * cancel that arrives between two calls still stops the next one. */
static dl_status cancelled(dl_ctx *c, const char *url, bool part_kept)
{
    c->cancel = 0;
    return dl_fail(c, DL_ERR_CANCELLED, "transfer of %s cancelled%s", url,
                   part_kept ? "; the partial download is kept and will resume" : "");
}

bool dl_url_host(const char *url, char *out, size_t cap)
{
    out[0] = 0;
    /* libcurl reads "https:///x" as host "x"; a URL whose authority is empty names no host */
    const char *auth = strstr(url, "://");
    if (!auth || !auth[3] || strchr("/?#", auth[3]))
        return false;
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0];
    if (ok) {
        int n = curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK
                    ? snprintf(out, cap, "%s:%s", host, port)
                    : snprintf(out, cap, "%s", host);
        ok = n > 0 && (size_t)n < cap;
        for (char *p = out; ok && *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    if (!ok)
        out[0] = 0;
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

/* ---- response headers ---- */

static void copy_value(const char *v, char *out, size_t cap)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = 0;
}

/* "bytes START-END/TOTAL", "bytes * /TOTAL" (416) or "bytes START-END/ *". */
static void parse_content_range(const char *v, resp *r)
{
    if (strncasecmp(v, "bytes ", 6) != 0)
        return;
    v += 6;
    const char *slash = strchr(v, '/');
    if (!slash)
        return;
    uint64_t start = 0, total = 0;
    const char *end;
    if (*v != '*') {
        if (!parse_u64_prefix(v, &start, &end) || *end != '-')
            return;
        r->has_range = true;
        r->range_start = start;
    }
    if (parse_u64(slash + 1, &total))
        r->range_total = total;
}

/* Called for every header line of every response, redirects included: X-Linked-Etag and
 * X-Linked-Size come on Hugging Face's 302, the length and ETag on the final answer. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *user)
{
    xfer *x = user;
    size_t n = size * nitems;
    char line[1024];
    size_t k = n < sizeof line - 1 ? n : sizeof line - 1;
    memcpy(line, buf, k);
    line[k] = 0;
    if (strncmp(line, "HTTP/", 5) == 0) {
        memset(&x->r, 0, sizeof x->r);
        const char *sp = strchr(line, ' ');
        x->r.status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return n;
    }
    char *colon = strchr(line, ':');
    if (!colon)
        return n;
    *colon = 0;
    char val[HDR_VALUE];
    copy_value(colon + 1, val, sizeof val);
    if (strcasecmp(line, "ETag") == 0)
        memcpy(x->r.etag, val, sizeof val);
    else if (strcasecmp(line, "Last-Modified") == 0)
        memcpy(x->r.last_modified, val, sizeof val);
    else if (strcasecmp(line, "Content-Length") == 0)
        x->r.has_length = parse_u64(val, &x->r.length);
    else if (strcasecmp(line, "Content-Range") == 0)
        parse_content_range(val, &x->r);
    else if (strcasecmp(line, "X-Linked-Etag") == 0)
        memcpy(x->linked_etag, val, sizeof val);
    else if (strcasecmp(line, "X-Linked-Size") == 0 && !parse_u64(val, &x->linked_size))
        x->linked_size = 0;
    return n;
}

/* ---- the file sink ---- */

static size_t stop_with(xfer *x, dl_status st)
{
    x->stop = STOP_FAILED;
    x->stop_status = st;
    return CURL_WRITEFUNC_ERROR;
}

/* A local failure on path; a full disk (or quota) gets its own status and the space free. */
static dl_status io_fail(dl_ctx *c, int err, const char *what, const char *path)
{
    uint64_t avail = 0;
    if (err == ENOSPC || err == EDQUOT) {
        char *slash = strrchr(path, '/');
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
        if (free_space(dir, &avail) != 0)
            avail = 0;
        return dl_fail(c, DL_ERR_DISK_FULL, "disk full: cannot %s %s (%s); %" PRIu64
                       " bytes free", what, path, strerror(err), avail);
    }
    return dl_fail(c, DL_ERR_IO, "cannot %s %s: %s", what, path, strerror(err));
}

/* Start the part over from zero: truncate it, restart the hash, forget what the sidecar said. */
static dl_status file_reset(xfer *x)
{
    file_sink *f = x->f;
    if (ftruncate(f->fd, 0) != 0)
        return io_fail(x->c, errno, "truncate", f->part_path);
    if (EVP_DigestInit_ex(f->sha, EVP_sha256(), NULL) != 1)
        return dl_fail(x->c, DL_ERR_IO, "SHA-256 could not start (OpenSSL)");
    unlink(f->side_path);
    f->written = f->resumed_from = 0;
    f->side_size = 0;
    f->etag[0] = 0;
    f->last_mod[0] = 0;
    if (!f->sha_from_exp)
        f->want_sha[0] = 0;
    return DL_OK;
}

/* Settle the expected size and SHA-256 once the headers are in: the caller's, else Hugging
 * Face's X-Linked-Size / X-Linked-Etag, else the sidecar's, else the server's length. */
static bool file_settle(xfer *x, uint64_t server_total)
{
    file_sink *f = x->f;
    char linked[HDR_VALUE];
    copy_value(x->linked_etag, linked, sizeof linked);
    size_t n = strlen(linked);
    if (n >= 2 && linked[0] == '"' && linked[n - 1] == '"') {
        memmove(linked, linked + 1, n - 2);
        linked[n - 2] = 0;
    }
    char sha[65];
    if (!f->sha_from_exp && sha_hex_copy(linked, sha))
        memcpy(f->want_sha, sha, sizeof sha);
    /* The sidecar's size is only what the file was when the part began: another length now
     * means the file changed (a server without ETags cannot say so otherwise), so the part
     * is stale and the transfer starts over rather than failing verification. */
    if (f->side_size && server_total && f->side_size != server_total) {
        x->stop = STOP_RESTART;
        return false;
    }
    uint64_t want = f->want_size ? f->want_size
                  : x->linked_size ? x->linked_size
                  : f->side_size ? f->side_size : server_total;
    if (want && server_total && want != server_total) {
        dl_fail(x->c, DL_ERR_VERIFY,
                "size mismatch for %s: expected %" PRIu64 " bytes, the server has %" PRIu64
                "; the partial download was deleted", x->url, want, server_total);
        stop_with(x, DL_ERR_VERIFY);
        return false;
    }
    f->total = want;
    return true;
}

static bool file_space_ok(xfer *x)
{
    file_sink *f = x->f;
    uint64_t avail;
    if (!f->total || f->total <= f->written || free_space(f->part_path, &avail) != 0)
        return true;
    if (avail >= f->total - f->written)
        return true;
    stop_with(x, disk_full(x->c, f->dest, f->total - f->written, avail));
    return false;
}

/* FILE.part.json: what the bytes in the part are, so a later call can resume them. Written
 * through a temporary name and rename, so it is never half there. */
static bool sidecar_write(xfer *x)
{
    file_sink *f = x->f;
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "url", f->url_shown, "etag", f->etag,
                          "last_modified", f->last_mod, "size", (json_int_t)f->total,
                          "sha256", f->want_sha);
    char *tmp = dl_concat(f->side_path, ".tmp");
    errno = 0;
    bool ok = o && tmp && dl_json_write_atomic(f->side_path, tmp, o, JSON_COMPACT) == 0;
    int err = errno ? errno : ENOMEM;
    json_decref(o);
    free(tmp);
    if (!ok)
        stop_with(x, io_fail(x->c, err, "write", f->side_path));
    return ok;
}

/* The final response's body starts: check that it continues the part (206 from the right
 * offset, same ETag) or start over (a 200 carries the whole file), then settle what to expect. */
static bool file_begin(xfer *x)
{
    file_sink *f = x->f;
    const resp *r = &x->r;
    if (r->status == 206) {
        bool same_start = r->has_range && r->range_start == f->written;
        bool same_etag = !f->etag[0] || !r->etag[0] || strcmp(f->etag, r->etag) == 0;
        bool same_date = !f->last_mod[0] || !r->last_modified[0] ||
                         strcmp(f->last_mod, r->last_modified) == 0;
        if (!same_start || !same_etag || !same_date) {
            x->stop = STOP_RESTART;
            return false;
        }
    } else if (f->written > 0) {
        dl_status st = file_reset(x);
        if (st != DL_OK) {
            stop_with(x, st);
            return false;
        }
    }
    uint64_t server_total = r->status == 206 ? r->range_total : r->has_length ? r->length : 0;
    memcpy(f->etag, r->etag, sizeof f->etag);
    memcpy(f->last_mod, r->last_modified, sizeof f->last_mod);
    if (f->t_start == 0)
        f->t_start = f->t_sample = now_s();
    return file_settle(x, server_total) && file_space_ok(x) && sidecar_write(x);
}

static size_t file_write_failed(xfer *x, int err)
{
    file_sink *f = x->f;
    uint64_t avail = 0;
    if ((err == ENOSPC || err == EDQUOT) && free_space(f->part_path, &avail) == 0) {
        uint64_t need = f->total > f->written ? f->total - f->written : 1;
        return stop_with(x, disk_full(x->c, f->dest, need, avail));
    }
    return stop_with(x, io_fail(x->c, err, "write", f->part_path));
}

static size_t file_write(xfer *x, const char *p, size_t n)
{
    file_sink *f = x->f;
    if (f->total && f->written + n > f->total) {
        dl_fail(x->c, DL_ERR_VERIFY,
                "size mismatch for %s: the server sent more than the expected %" PRIu64
                " bytes; the partial download was deleted", x->url, f->total);
        return stop_with(x, DL_ERR_VERIFY);
    }
    /* Hash exactly what reached the part, chunk by chunk, so hash and file never disagree
     * even when a write stops half way (a full disk). */
    for (size_t off = 0; off < n;) {
        ssize_t k = pwrite(f->fd, p + off, n - off, (off_t)f->written);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return file_write_failed(x, k < 0 ? errno : EIO);
        if (EVP_DigestUpdate(f->sha, p + off, (size_t)k) != 1)
            return stop_with(x, dl_fail(x->c, DL_ERR_IO, "SHA-256 failed (OpenSSL)"));
        off += (size_t)k;
        f->written += (uint64_t)k;
        f->net += (uint64_t)k;
    }
    return n;
}

/* ---- the memory and range sinks ---- */

static size_t mem_write(xfer *x, const char *p, size_t n)
{
    if (n > GET_LIMIT - x->mem.len)
        return stop_with(x, dl_fail(x->c, DL_ERR_FORMAT, "the answer from %s is larger than "
                                    "%zu MiB", x->url, GET_LIMIT >> 20));
    if (!strbuf_put(&x->mem, p, n))
        return stop_with(x, dl_fail(x->c, DL_ERR_IO, "out of memory reading %s", x->url));
    return n;
}

static bool range_begin(xfer *x)
{
    x->rng.got = 0;
    x->rng.skip = 0;
    if (x->r.status != 206) {
        x->rng.skip = x->rng.offset;  /* a 200 carries the whole file: skip to the offset */
        return true;
    }
    if (x->r.has_range && x->r.range_start == x->rng.offset)
        return true;
    dl_fail(x->c, DL_ERR_FORMAT, "%s answered a request for bytes from %" PRIu64
            " with bytes from %" PRIu64, x->url, x->rng.offset, x->r.range_start);
    stop_with(x, DL_ERR_FORMAT);
    return false;
}

static size_t range_write(xfer *x, const char *p, size_t n)
{
    size_t used = 0;
    if (x->rng.skip) {
        used = x->rng.skip < n ? (size_t)x->rng.skip : n;
        x->rng.skip -= used;
    }
    size_t k = n - used;
    if (k > x->rng.want - x->rng.got)
        k = x->rng.want - x->rng.got;
    memcpy(x->rng.buf + x->rng.got, p + used, k);
    x->rng.got += k;
    used += k;
    /* Enough: stop rather than read the rest of a 200 (the whole file) or an overlong 206. */
    if (used < n || (x->rng.got == x->rng.want && x->r.status != 206)) {
        x->stop = STOP_ENOUGH;
        return CURL_WRITEFUNC_ERROR;
    }
    return n;
}

/* ---- curl callbacks ---- */

static bool sink_begin(xfer *x)
{
    switch (x->kind) {
    case SINK_FILE: return file_begin(x);
    case SINK_MEM: x->mem.len = 0; return true; /* a retry starts the answer again */
    case SINK_RANGE: return range_begin(x);
    }
    return false;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *user)
{
    xfer *x = user;
    size_t n = size * nmemb;
    /* The bodies of redirects and error answers are not what was asked for. */
    if (x->r.status < 200 || x->r.status >= 300)
        return n;
    if (!x->begun) {
        x->begun = true;
        if (!sink_begin(x))
            return CURL_WRITEFUNC_ERROR;
    }
    switch (x->kind) {
    case SINK_FILE: return file_write(x, p, n);
    case SINK_MEM: return mem_write(x, p, n);
    case SINK_RANGE: return range_write(x, p, n);
    }
    return CURL_WRITEFUNC_ERROR;
}

/* Tell the caller how the file transfer goes, at most every PROGRESS_EVERY_S unless finished.
 * Speed counts network bytes only (not resumed ones), smoothed over half-second samples. */
static int report(xfer *x, bool finished)
{
    dl_ctx *c = x->c;
    file_sink *f = x->f;
    double t = now_s();
    if (!c->progress || (!finished && t - f->t_report < PROGRESS_EVERY_S))
        return 0;
    f->t_report = t;
    if (f->t_start > 0 && t - f->t_sample >= 0.5) {
        double inst = (double)(f->net - f->net_sample) / (t - f->t_sample);
        f->speed = f->speed > 0 ? 0.5 * f->speed + 0.5 * inst : inst;
        f->t_sample = t;
        f->net_sample = f->net;
    }
    double speed = f->speed;
    if (speed <= 0 && f->t_start > 0 && t > f->t_start)
        speed = (double)f->net / (t - f->t_start);
    const char *slash = strrchr(f->dest, '/');
    dl_progress p = {
        .name = slash ? slash + 1 : f->dest, .part = 1, .n_parts = 1,
        .done = f->written, .total = f->total, .resumed_from = f->resumed_from,
        .bytes_per_s = speed, .eta_s = -1, .attempt = f->attempt, .finished = finished,
        .restarted_from = f->restarted_from,
    };
    if (f->total && f->written >= f->total)
        p.eta_s = 0;
    else if (f->total && speed > 0)
        p.eta_s = (double)(f->total - f->written) / speed;
    return c->progress(&p, c->progress_user);
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    xfer *x = user;
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    if (x->c->cancel || (x->kind == SINK_FILE && report(x, false) != 0)) {
        x->stop = STOP_CANCEL;
        return 1;
    }
    return 0;
}

/* ---- one curl handle per call ---- */

static dl_status handle_setup(xfer *x)
{
    dl_ctx *c = x->c;
    x->h = curl_easy_init();
    if (!x->h)
        return dl_fail(c, DL_ERR_IO, "libcurl could not make a handle for %s", x->url);
    SETOPT(x, CURLOPT_URL, x->url);
    SETOPT(x, CURLOPT_ERRORBUFFER, x->errbuf);
    SETOPT(x, CURLOPT_NOSIGNAL, 1L);            /* threads: no SIGALRM around DNS timeouts */
    SETOPT(x, CURLOPT_FOLLOWLOCATION, 1L);
    SETOPT(x, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
    SETOPT(x, CURLOPT_PROTOCOLS_STR, "http,https");
    /* An https start never continues over plain http. */
    SETOPT(x, CURLOPT_REDIR_PROTOCOLS_STR,
           strncasecmp(x->url, "https:", 6) == 0 ? "https" : "http,https");
    SETOPT(x, CURLOPT_USERAGENT, USER_AGENT);
    SETOPT(x, CURLOPT_CONNECTTIMEOUT, c->connect_s);
    SETOPT(x, CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(x, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->cacert)
        SETOPT(x, CURLOPT_CAINFO, c->cacert);
    if (c->low_speed_bps > 0 && c->low_speed_s > 0) {
        SETOPT(x, CURLOPT_LOW_SPEED_LIMIT, c->low_speed_bps);
        SETOPT(x, CURLOPT_LOW_SPEED_TIME, c->low_speed_s);
    }
    SETOPT(x, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(x, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(x, CURLOPT_HEADERDATA, x);
    SETOPT(x, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(x, CURLOPT_WRITEDATA, x);
    SETOPT(x, CURLOPT_XFERINFOFUNCTION, on_progress);
    SETOPT(x, CURLOPT_XFERINFODATA, x);
    SETOPT(x, CURLOPT_NOPROGRESS, 0L);
    if (c->hf_token && under_endpoint(x->url, c->hf_endpoint)) {
        /* Credentials set this way go to the first host only: curl drops them when a redirect
         * leads elsewhere (CURLOPT_UNRESTRICTED_AUTH stays off), so the CDN never sees them. */
        SETOPT(x, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        SETOPT(x, CURLOPT_XOAUTH2_BEARER, c->hf_token);
    }
    return DL_OK;
}

/* The If-Range value that guards resuming the part into buf ("" when none): a strong ETag,
 * else the Last-Modified date (a weak ETag cannot guard a range, RFC 9110). False when nothing
 * can tell whether the server's file is still the one the part holds and no SHA-256 will
 * check the result either: then resuming would risk splicing two versions. */
static bool resume_guard(const file_sink *f, char *buf, size_t cap)
{
    buf[0] = 0;
    if (f->etag[0] && strncmp(f->etag, "W/", 2) != 0)
        snprintf(buf, cap, "If-Range: %s", f->etag);
    else if (f->last_mod[0])
        snprintf(buf, cap, "If-Range: %s", f->last_mod);
    return buf[0] || f->want_sha[0];
}

/* Per attempt: a file resumes from what the part holds, guarded by If-Range so a server whose
 * file changed answers 200 with the new one instead of a 206 that would splice two versions;
 * an unguarded part starts over. */
static dl_status attempt_prepare(xfer *x)
{
    memset(&x->r, 0, sizeof x->r);
    x->begun = false;
    x->stop = STOP_NONE;
    x->errbuf[0] = 0;
    if (x->kind != SINK_FILE)
        return DL_OK;
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    file_sink *f = x->f;
    char range[32], if_range[HDR_VALUE + 16];
    f->restarted_from = 0;
    if (f->written > 0 && !resume_guard(f, if_range, sizeof if_range)) {
        f->restarted_from = f->written;
        dl_status st = file_reset(x);
        if (st != DL_OK)
            return st;
    }
    snprintf(range, sizeof range, "%" PRIu64 "-", f->written);
    if (f->written > 0 && if_range[0]) {
        x->headers = curl_slist_append(NULL, if_range);
        if (!x->headers)
            return dl_fail(x->c, DL_ERR_IO, "out of memory");
    }
    SETOPT(x, CURLOPT_RANGE, f->written > 0 ? range : NULL);
    SETOPT(x, CURLOPT_HTTPHEADER, x->headers);
    return DL_OK;
}

/* ---- what went wrong ---- */

static bool is_tls_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR: case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED: case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION: case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED: case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED: case CURLE_SSL_CRL_BADFILE: case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
        return true;
    default:
        return false;
    }
}

/* Failures another attempt may cure: the connection broke or stalled. */
static bool is_transient(CURLcode rc)
{
    switch (rc) {
    case CURLE_PARTIAL_FILE: case CURLE_RECV_ERROR: case CURLE_SEND_ERROR:
    case CURLE_OPERATION_TIMEDOUT: case CURLE_GOT_NOTHING: case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: case CURLE_HTTP3: case CURLE_QUIC_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

/* A timeout before any connection was made (a connect time of zero) is a host that cannot be
 * reached, like a refused connection, not a transfer that stalled: a blackholed network or a
 * dead route. Worth one more try, not the whole ladder of backoffs. */
static bool never_connected(xfer *x, CURLcode rc)
{
    curl_off_t us = -1;
    return rc == CURLE_OPERATION_TIMEDOUT &&
           curl_easy_getinfo(x->h, CURLINFO_CONNECT_TIME_T, &us) == CURLE_OK && us == 0;
}

static dl_status curl_failure(xfer *x, CURLcode rc, bool *transient)
{
    dl_ctx *c = x->c;
    char host[300];
    char *eff = NULL;
    bool have_eff = curl_easy_getinfo(x->h, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff;
    if (!dl_url_host(have_eff ? eff : x->url, host, sizeof host))
        snprintf(host, sizeof host, "%s", have_eff ? eff : x->url);
    const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    bool timed_out = never_connected(x, rc);
    if (timed_out)
        *transient = ++x->connect_timeouts < 2;
    if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
        rc == CURLE_COULDNT_CONNECT || timed_out)
        return dl_fail(c, DL_ERR_OFFLINE, "cannot reach %s (%s): offline? check the network "
                       "connection, or name a local .gguf file instead", host, why);
    if (is_tls_error(rc))
        return dl_fail(c, DL_ERR_TLS, "TLS failure with %s: %s%s%s%s", host, why,
                       c->cacert ? " (CA file " : "", c->cacert ? c->cacert : "",
                       c->cacert ? ")" : "");
    if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL)
        return dl_fail(c, DL_ERR_ARG, "cannot fetch %s: %s", x->url, why);
    if (rc == CURLE_TOO_MANY_REDIRECTS)
        return dl_fail(c, DL_ERR_HTTP, "%s: %s", x->url, why);
    *transient = is_transient(rc);
    return dl_fail(c, DL_ERR_NETWORK, "transfer of %s from %s failed: %s", x->url, host, why);
}

static dl_status http_failure(xfer *x, long code, bool *transient)
{
    dl_ctx *c = x->c;
    if (code >= 500) {
        *transient = true;
        return dl_fail(c, DL_ERR_NETWORK, "HTTP %ld (server error) from %s", code, x->url);
    }
    const char *hint = code == 404 ? " (not found)" : "";
    if ((code == 401 || code == 403) && under_endpoint(x->url, c->hf_endpoint))
        hint = c->hf_token ? " (HF_TOKEN has no access: a gated repository needs its licence "
                             "accepted on the website first)"
                           : " (a gated or private repository: set HF_TOKEN)";
    return dl_fail(c, DL_ERR_HTTP, "HTTP %ld from %s%s", code, x->url, hint);
}

/* A 416 to a resume: the part may already hold the whole file (a crash before the rename). */
static dl_status file_416(xfer *x)
{
    file_sink *f = x->f;
    bool same_etag = !f->etag[0] || !x->r.etag[0] || strcmp(f->etag, x->r.etag) == 0;
    if (same_etag && x->r.range_total && x->r.range_total == f->written) {
        x->begun = true;
        if (file_settle(x, x->r.range_total))
            return DL_OK;
        return x->stop_status;
    }
    x->stop = STOP_RESTART;
    return DL_ERR_NETWORK;
}

/* Can the bytes in the part be resumed later? Only when an ETag or date guards a Range
 * request, or a checksum will catch a splice (resume_guard). */
static bool part_resumable(const file_sink *f)
{
    char buf[HDR_VALUE + 16];
    return resume_guard(f, buf, sizeof buf);
}

/* A body without Content-Length ends when the connection closes, so curl calls a connection
 * that broke cleanly a success. Short of a size known from elsewhere (the caller, X-Linked-Size,
 * the sidecar, Content-Range), that is a broken transfer to resume, not a file to verify. */
static dl_status file_ended(xfer *x, bool *transient)
{
    const file_sink *f = x->f;
    if (!f->total || f->written >= f->total)
        return DL_OK;
    *transient = true;
    return dl_fail(x->c, DL_ERR_NETWORK, "transfer of %s ended early: %" PRIu64 " of %" PRIu64
                   " bytes%s", x->url, f->written, f->total, part_resumable(f)
                   ? "; the partial download is kept and will resume" : "");
}

/* One attempt's outcome; *transient says whether another attempt may help. */
static dl_status attempt_status(xfer *x, CURLcode rc, bool *transient)
{
    *transient = false;
    switch (x->stop) {
    case STOP_CANCEL: return cancelled(x->c, x->url, x->kind == SINK_FILE);
    case STOP_FAILED: return x->stop_status;
    case STOP_RESTART: return DL_ERR_NETWORK;   /* run_attempts starts over */
    case STOP_ENOUGH: return DL_OK;
    case STOP_NONE: break;
    }
    if (rc != CURLE_OK)
        return curl_failure(x, rc, transient);
    long code = 0;
    CURLcode irc = curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    if (irc != CURLE_OK)
        return dl_fail(x->c, DL_ERR_NETWORK, "%s: %s", x->url, curl_easy_strerror(irc));
    if (code == 416 && x->kind == SINK_RANGE)
        return DL_OK;                           /* offset at or past the end: no bytes */
    if (code == 416 && x->kind == SINK_FILE && x->f->written > 0)
        return file_416(x);
    if (code < 200 || code >= 300)
        return http_failure(x, code, transient);
    if (!x->begun) {                            /* an empty body never reached on_body */
        x->begun = true;
        if (!sink_begin(x))
            return x->stop == STOP_FAILED ? x->stop_status : DL_ERR_NETWORK;
    }
    return x->kind == SINK_FILE ? file_ended(x, transient) : DL_OK;
}

/* An unreachable host stays DL_ERR_OFFLINE, so the caller can say so. */
static dl_status gave_up(dl_ctx *c, dl_status st, int attempts)
{
    char why[sizeof c->err];
    memcpy(why, c->err, sizeof why);
    return dl_fail(c, st == DL_ERR_OFFLINE ? st : DL_ERR_NETWORK,
                   "%s (gave up after %d attempts)", why, attempts);
}

/* Attempts until one succeeds, fails for good, or the retries are spent. A restart (the file
 * changed on the server) is not a failure and does not use up a retry. */
static dl_status run_attempts(xfer *x)
{
    dl_ctx *c = x->c;
    long wait_ms = c->backoff_ms;
    int restarts = 0;
    for (int attempt = 1;;) {
        if (x->f)
            x->f->attempt = attempt;
        dl_status st = attempt_prepare(x);
        if (st != DL_OK)
            return st;
        CURLcode rc = curl_easy_perform(x->h);
        bool transient = false;
        st = attempt_status(x, rc, &transient);
        if (x->stop == STOP_RESTART) {
            if (++restarts > MAX_RESTARTS)
                return dl_fail(c, DL_ERR_NETWORK, "%s keeps changing while it downloads; "
                               "giving up", x->url);
            st = file_reset(x);
            if (st != DL_OK)
                return st;
            continue;
        }
        if (st == DL_OK || !transient)
            return st;
        if (attempt > c->max_retries)
            return gave_up(c, st, attempt);
        if (!backoff_sleep(c, wait_ms))
            return cancelled(c, x->url, x->kind == SINK_FILE);
        wait_ms = wait_ms * 2 < MAX_BACKOFF_MS ? wait_ms * 2 : MAX_BACKOFF_MS;
        attempt++;
    }
}

/* ---- dl_fetch_file: the part, the sidecar, verification and installation ---- */

/* Does the sidecar describe the bytes in the part, for this URL and these expectations? Fills
 * in the ETag, size and hash it remembers when so. */
static bool sidecar_matches(file_sink *f)
{
    json_t *o = json_load_file(f->side_path, 0, NULL);
    const char *s_url = json_string_value(json_object_get(o, "url"));
    const char *s_etag = json_string_value(json_object_get(o, "etag"));
    const char *s_date = json_string_value(json_object_get(o, "last_modified"));
    const char *s_sha = json_string_value(json_object_get(o, "sha256"));
    json_int_t s_size = json_integer_value(json_object_get(o, "size"));
    char sha[65] = "";
    bool ok = s_url && strcmp(s_url, f->url_shown) == 0;
    if (ok && s_sha && *s_sha && !sha_hex_copy(s_sha, sha))
        ok = false;
    if (ok && f->want_size && s_size > 0 && (uint64_t)s_size != f->want_size)
        ok = false;                     /* the caller expects another version of the file */
    if (ok && f->sha_from_exp && sha[0] && strcmp(sha, f->want_sha) != 0)
        ok = false;
    if (ok) {
        snprintf(f->etag, sizeof f->etag, "%s", s_etag ? s_etag : "");
        snprintf(f->last_mod, sizeof f->last_mod, "%s", s_date ? s_date : "");
        f->side_size = s_size > 0 ? (uint64_t)s_size : 0;
        if (!f->sha_from_exp)
            memcpy(f->want_sha, sha, sizeof sha);
    }
    json_decref(o);
    return ok;
}

/* Hash the bytes already in the part, so the final digest covers the whole file. */
static dl_status hash_part(dl_ctx *c, file_sink *f, const char *url, uint64_t size)
{
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return dl_fail(c, DL_ERR_IO, "out of memory");
    dl_status st = DL_OK;
    for (uint64_t off = 0; off < size && st == DL_OK;) {
        size_t want = size - off < cap ? (size_t)(size - off) : cap;
        ssize_t k = pread(f->fd, buf, want, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            st = io_fail(c, k < 0 ? errno : EIO, "read", f->part_path);
        else if (EVP_DigestUpdate(f->sha, buf, (size_t)k) != 1)
            st = dl_fail(c, DL_ERR_IO, "SHA-256 failed (OpenSSL)");
        else if (c->cancel)
            st = cancelled(c, url, true);
        off += k > 0 ? (uint64_t)k : 0;
    }
    free(buf);
    if (st == DL_OK)
        f->written = size;
    return st;
}

static dl_status file_open(dl_ctx *c, file_sink *f, const char *url, const char *dest,
                           const dl_expect *exp, const char *want_sha)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->dest = dest;
    f->part_path = dl_concat(dest, ".part");
    f->side_path = dl_concat(dest, ".part.json");
    f->url_shown = dl_url_shown(url);
    f->sha = EVP_MD_CTX_new();
    if (!f->part_path || !f->side_path || !f->url_shown || !f->sha)
        return dl_fail(c, DL_ERR_IO, "out of memory");
    if (EVP_DigestInit_ex(f->sha, EVP_sha256(), NULL) != 1)
        return dl_fail(c, DL_ERR_IO, "SHA-256 could not start (OpenSSL)");
    f->want_size = exp ? exp->size : 0;
    f->want_gguf = exp && exp->gguf;
    f->total = f->want_size; /* known before the answer: the first progress report shows it */
    f->sha_from_exp = want_sha[0] != 0;
    memcpy(f->want_sha, want_sha, 65);
    /* In the store, a link planted at FILE.part would have us truncate and overwrite its
     * target (O_NOFOLLOW). A destination outside the store is the caller's own choice,
     * links included. */
    int nofollow = dl_store_rel(c, dest) ? O_NOFOLLOW : 0;
    f->fd = open(f->part_path, O_RDWR | O_CREAT | nofollow | O_CLOEXEC, 0644);
    struct stat st;
    if (f->fd < 0 || fstat(f->fd, &st) != 0)
        return io_fail(c, errno, "open", f->part_path);
    uint64_t size = (uint64_t)st.st_size;
    bool resume = size > 0 && sidecar_matches(f) &&
                  (!f->want_size || size <= f->want_size) &&
                  (!f->side_size || size <= f->side_size);
    if (resume) {
        dl_status s = hash_part(c, f, url, size);
        f->resumed_from = f->written;
        if (!f->total)
            f->total = f->side_size;
        return s;
    }
    /* No usable sidecar: the bytes cannot be trusted to belong to this file. */
    f->etag[0] = 0;
    f->last_mod[0] = 0;
    f->side_size = 0;
    if (!f->sha_from_exp)
        f->want_sha[0] = 0;
    unlink(f->side_path);
    if (size > 0 && ftruncate(f->fd, 0) != 0)
        return io_fail(c, errno, "truncate", f->part_path);
    return DL_OK;
}

static void file_close(file_sink *f)
{
    if (f->fd >= 0)
        close(f->fd);
    EVP_MD_CTX_free(f->sha);
    free(f->part_path);
    free(f->side_path);
    free(f->url_shown);
}

static dl_status file_verify(xfer *x)
{
    file_sink *f = x->f;
    if (f->total && f->written != f->total)
        return dl_fail(x->c, DL_ERR_VERIFY, "size mismatch for %s: expected %" PRIu64
                       " bytes, got %" PRIu64 "; the partial download was deleted",
                       x->url, f->total, f->written);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(f->sha, md, &len) != 1 || len != 32)
        return dl_fail(x->c, DL_ERR_IO, "SHA-256 failed (OpenSSL)");
    for (unsigned i = 0; i < len; i++)
        snprintf(f->got_sha + 2 * i, 3, "%02x", md[i]);
    if (f->want_sha[0] && strcmp(f->want_sha, f->got_sha) != 0)
        return dl_fail(x->c, DL_ERR_VERIFY, "SHA-256 mismatch for %s: expected %s, got %s; "
                       "the partial download was deleted", x->url, f->want_sha, f->got_sha);
    return DL_OK;
}

/* fsync a folder so a rename in it survives a crash (best effort: not every file system
 * allows it, and the file itself is already safe). */
static void sync_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = 0;
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* A model starts with "GGUF". Without this check a server that answers 200 with a login page
 * or an error text would have it stored, "verified" by its own length, and listed as a model.
 * The engine's full header check is not available here (downloads/ never links it). */
static dl_status file_check_gguf(xfer *x)
{
    file_sink *f = x->f;
    unsigned char b[4] = { 0 };
    ssize_t n = f->written >= 4 ? pread(f->fd, b, sizeof b, 0) : 0;
    if (n < 0)
        return io_fail(x->c, errno, "read", f->part_path);
    if (n == 4 && memcmp(b, "GGUF", 4) == 0)
        return DL_OK;
    if (f->written < 4)
        return dl_fail(x->c, DL_ERR_FORMAT, "%s is not a GGUF file (the server sent %" PRIu64
                       " bytes); nothing was stored", x->url, f->written);
    char why[64];
    return dl_fail(x->c, DL_ERR_FORMAT, "%s is not a GGUF file (%s); nothing was stored", x->url,
                   dl_not_gguf_why(b, why, sizeof why));
}

/* Verified bytes on stable storage, renamed into place, recorded; the sidecar goes last so a
 * crash in between leaves either a resumable part or a finished file. */
static dl_status file_install(xfer *x)
{
    file_sink *f = x->f;
    dl_status st = f->want_gguf ? file_check_gguf(x) : DL_OK;
    if (st == DL_OK)
        st = file_verify(x);
    if (st != DL_OK)
        return st;
    if (fsync(f->fd) != 0)
        return io_fail(x->c, errno, "flush", f->part_path);
    close(f->fd);
    f->fd = -1;
    if (rename(f->part_path, f->dest) != 0)
        return io_fail(x->c, errno, "rename the finished download to", f->dest);
    sync_parent(f->dest);
    int64_t now = (int64_t)time(NULL);
    /* Only what file_verify actually compared: a plain server gives neither a hash nor
     * always a length, and "verified" must not be claimed for what was not checked. */
    dl_record rec = {
        .url = f->url_shown, .etag = f->etag[0] ? f->etag : NULL, .sha256 = f->got_sha,
        .size = f->written, .pulled_at = now, .last_used = now,
        .verified = f->want_sha[0] ? DL_VERIFIED_SHA256 : f->total ? DL_VERIFIED_SIZE
                                                                   : DL_VERIFIED_NONE,
    };
    if (dl_record_write(f->dest, &rec) != 0)
        return io_fail(x->c, errno, "write the record for", f->dest);
    unlink(f->side_path);
    report(x, true);
    return DL_OK;
}

/* ---- dl_fetch_file: lock, checks, the transfer ---- */

/* flock DEST.lock (dl_lock_try has the protocol). Polls, so a cancel is noticed while
 * waiting. */
static dl_status lock_take(dl_ctx *c, const char *path, const char *url, int *out)
{
    int err;
    while ((err = dl_lock_try(path, out)) == EWOULDBLOCK)
        if (!backoff_sleep(c, 50))
            return cancelled(c, url, true);
    return err ? io_fail(c, err, "lock", path) : DL_OK;
}

/* DEST is there with a record that matches it and what the caller expects. */
static bool already_complete(const char *dest, const dl_expect *exp, const char *want_sha)
{
    struct stat st;
    dl_record r;
    if (lstat(dest, &st) != 0 || !S_ISREG(st.st_mode) || dl_record_read(dest, &r) != DL_OK)
        return false;
    bool ok = r.size == (uint64_t)st.st_size && (!exp || !exp->size || exp->size == r.size) &&
              (!want_sha[0] || (r.sha256 && strcasecmp(r.sha256, want_sha) == 0));
    dl_record_free(&r);
    return ok;
}

/* Nothing to transfer: still one finished progress call, so a caller's bar completes. */
static dl_status done_early(dl_ctx *c, const char *dest)
{
    struct stat st;
    if (c->progress && stat(dest, &st) == 0) {
        const char *slash = strrchr(dest, '/');
        uint64_t size = (uint64_t)st.st_size;
        dl_progress p = {
            .name = slash ? slash + 1 : dest, .part = 1, .n_parts = 1, .done = size,
            .total = size, .resumed_from = size, .eta_s = 0, .attempt = 1, .finished = true,
        };
        c->progress(&p, c->progress_user);
    }
    return DL_OK;
}

/* The deepest folder above dest that exists now, into out: what a failed fetch may prune down
 * to and never past (dl_prune_dirs), so a folder that was there before the call stays. */
static void deepest_folder(const char *dest, char *out, size_t len)
{
    struct stat st;
    snprintf(out, len, "%s", dest);
    for (char *slash; (slash = strrchr(out, '/')) && slash > out;) {
        *slash = 0;
        if (lstat(out, &st) == 0)
            return;
    }
    snprintf(out, len, "%s", *dest == '/' ? "/" : ".");
}

/* Create DEST's folder, and refuse early when the expected size cannot fit. */
static dl_status prepare_dest(dl_ctx *c, const char *dest, const dl_expect *exp)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", dest) >= (int)sizeof dir)
        return dl_fail(c, DL_ERR_ARG, "path too long: %s", dest);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    if (dl_mkdir_parents(dir) != 0)
        return io_fail(c, errno, "create the folder", dir);
    if (!exp || !exp->size)
        return DL_OK;
    char part[4200];
    snprintf(part, sizeof part, "%s.part", dest);
    struct stat st;
    uint64_t have = stat(part, &st) == 0 ? (uint64_t)st.st_size : 0;
    uint64_t avail;
    if (have < exp->size && free_space(dir, &avail) == 0 && avail < exp->size - have)
        return disk_full(c, dest, exp->size - have, avail);
    return DL_OK;
}

static void xfer_init(xfer *x, dl_ctx *c, const char *url, sink_kind kind)
{
    memset(x, 0, sizeof *x);
    x->c = c;
    x->url = url;
    x->kind = kind;
}

static dl_status fetch_locked(dl_ctx *c, const char *url, const char *dest,
                              const dl_expect *exp, const char *want_sha)
{
    file_sink f;
    xfer x;
    xfer_init(&x, c, url, SINK_FILE);
    x.f = &f;
    dl_status st = file_open(c, &f, url, dest, exp, want_sha);
    if (st == DL_OK)
        st = handle_setup(&x);
    if (st == DL_OK)
        st = run_attempts(&x);
    if (st == DL_OK)
        st = file_install(&x);
    /* Bytes that failed verification, or are no model at all, never stay where a later call
     * would resume them; an empty part (the server refused before sending anything) is just
     * clutter. */
    struct stat ps;
    bool empty = f.part_path && stat(f.part_path, &ps) == 0 && ps.st_size == 0;
    bool bad = st == DL_ERR_VERIFY || st == DL_ERR_FORMAT;
    /* Nor do bytes that no later call could resume: without an ETag, a date or a checksum to
     * guard a Range request, the next call starts from zero anyway. A cancel is no different:
     * keeping the part would only promise a resume that cannot happen. */
    bool stale = st != DL_OK && f.fd >= 0 && f.written > 0 && !part_resumable(&f);
    if (stale) {
        char why[sizeof c->err];
        memcpy(why, c->err, sizeof why);
        dl_fail(c, st, "%s; the %" PRIu64 " bytes received were deleted: the server gives no "
                "ETag or Last-Modified date, so they cannot be resumed", why, f.written);
    }
    if (f.part_path && (bad || stale || (st != DL_OK && empty))) {
        unlink(f.part_path);
        unlink(f.side_path);
    }
    curl_slist_free_all(x.headers);
    if (x.h)
        curl_easy_cleanup(x.h);
    file_close(&f);
    return st;
}

dl_status dl_fetch_file(dl_ctx *c, const char *url, const char *dest_path, const dl_expect *exp)
{
    if (!url || !*url || !dest_path || !*dest_path)
        return dl_fail(c, DL_ERR_ARG, "dl_fetch_file needs a URL and a destination path");
    char want_sha[65] = "";
    if (exp && exp->sha256_hex && !sha_hex_copy(exp->sha256_hex, want_sha))
        return dl_fail(c, DL_ERR_ARG, "the expected SHA-256 for %s is not 64 hex digits: %s",
                       url, exp->sha256_hex);
    /* Before anything is created: a link inside the store would lead the folders, the part
     * and the rename elsewhere. */
    dl_status st = dl_store_check_path(c, dest_path);
    if (st != DL_OK)
        return st;
    st = ensure_curl(c);
    if (st != DL_OK)
        return st;
    if (already_complete(dest_path, exp, want_sha))
        return done_early(c, dest_path);
    char existed[4096];
    deepest_folder(dest_path, existed, sizeof existed);
    st = prepare_dest(c, dest_path, exp);
    char *lock_path = st == DL_OK ? dl_concat(dest_path, ".lock") : NULL;
    if (st == DL_OK && !lock_path)
        st = dl_fail(c, DL_ERR_IO, "out of memory");
    if (st != DL_OK) {
        dl_prune_dirs(existed, dest_path);
        return st;
    }
    int lock_fd = -1;
    st = lock_take(c, lock_path, url, &lock_fd);
    if (st == DL_OK) {
        /* Whoever held the lock may just have finished this very file. */
        if (already_complete(dest_path, exp, want_sha))
            st = done_early(c, dest_path);
        else
            st = fetch_locked(c, url, dest_path, exp, want_sha);
        dl_lock_drop(lock_path, lock_fd);
    }
    /* A failed pull leaves no empty folders behind (models/example.com/...), only the ones it
     * made itself and only while empty: a kept part, or another pull's files, keep theirs. */
    if (st != DL_OK)
        dl_prune_dirs(existed, dest_path);
    free(lock_path);
    return st;
}

/* ---- dl_get and dl_get_range ---- */

dl_status dl_get(dl_ctx *c, const char *url, char **body, size_t *len)
{
    if (body)
        *body = NULL;
    if (len)
        *len = 0;
    if (!url || !*url || !body)
        return dl_fail(c, DL_ERR_ARG, "dl_get needs a URL and somewhere to put the answer");
    dl_status st = ensure_curl(c);
    if (st != DL_OK)
        return st;
    xfer x;
    xfer_init(&x, c, url, SINK_MEM);
    st = handle_setup(&x);
    /* Listings compress well; curl decodes, and the cap applies to the decoded size. */
    CURLcode rc = st == DL_OK ? curl_easy_setopt(x.h, CURLOPT_ACCEPT_ENCODING, "") : CURLE_OK;
    if (rc != CURLE_OK)
        st = setopt_failed(&x, "CURLOPT_ACCEPT_ENCODING", rc);
    if (st == DL_OK)
        st = run_attempts(&x);
    if (st == DL_OK && !strbuf_put(&x.mem, "", 0)) /* an empty answer is still a string */
        st = dl_fail(c, DL_ERR_IO, "out of memory");
    if (st == DL_OK) {
        if (len)
            *len = x.mem.len;
        *body = strbuf_take(&x.mem);
    }
    strbuf_free(&x.mem);
    if (x.h)
        curl_easy_cleanup(x.h);
    return st;
}

dl_status dl_get_range(dl_ctx *c, const char *url, uint64_t offset, size_t len, void *buf,
                       size_t *got, uint64_t *file_size)
{
    if (got)
        *got = 0;
    if (file_size)
        *file_size = 0;
    if (!url || !*url || !buf || !got || len == 0 || offset > UINT64_MAX - len)
        return dl_fail(c, DL_ERR_ARG, "dl_get_range needs a URL, a buffer and a length > 0");
    dl_status st = ensure_curl(c);
    if (st != DL_OK)
        return st;
    xfer x;
    xfer_init(&x, c, url, SINK_RANGE);
    x.rng.offset = offset;
    x.rng.want = len;
    x.rng.buf = buf;
    char range[64];
    snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, offset, offset + len - 1);
    st = handle_setup(&x);
    CURLcode rc = st == DL_OK ? curl_easy_setopt(x.h, CURLOPT_RANGE, range) : CURLE_OK;
    if (rc != CURLE_OK)
        st = setopt_failed(&x, "CURLOPT_RANGE", rc);
    if (st == DL_OK)
        st = run_attempts(&x);
    if (st == DL_OK) {
        *got = x.rng.got;
        if (file_size)
            *file_size = x.r.range_total ? x.r.range_total
                       : x.r.status == 200 && x.r.has_length ? x.r.length : 0;
    }
    if (x.h)
        curl_easy_cleanup(x.h);
    return st;
}
