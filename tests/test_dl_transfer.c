/* Transfers (downloads/dl_http.c) and the store listing (downloads/dl_store.c) against real
 * servers on 127.0.0.1: Debian's nginx (plain and TLS with a fresh CA) and the fault-injecting
 * server of tests/dlsrv.h. Every case checks the end state on disk: a finished file is
 * byte-identical to its source with a record beside it and no part; a failed one leaves either
 * a resumable part with its sidecar, or nothing at all when the bytes failed verification. */
#include "tests/testutil.h"
#include "tests/dlsrv.h"

#include <dirent.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "downloads/dl.h"
#include "downloads/dl_internal.h"

#define STORIES "models/stories260K.gguf"
#define BABY_F32 "models/babyllama-930K-F32.gguf"
#define BABY_Q8 "models/babyllama-930K-Q8_0.gguf"

static uint8_t *stories, *baby;     /* fixture bytes, loaded once */
static size_t stories_len, baby_len;

/* ---- helpers ---- */

typedef struct env {
    char store[256];
    char dest[512];                 /* store/owner/repo/model.gguf */
    char path[700];                 /* scratch for dest + suffix */
    dl_ctx *c;
} env;

/* What a test has running, so the teardown can clean up after a failed assertion (which
 * leaves the test function half way). */
#define MAX_LIVE 4
static env *live_env[MAX_LIVE];
static dlsrv_nginx *live_nginx[MAX_LIVE];
static dlsrv_fault *live_fault[MAX_LIVE];

static void track(void **slots, void *p, bool add)
{
    for (int i = 0; i < MAX_LIVE; i++) {
        if (add ? slots[i] == NULL : slots[i] == p) {
            slots[i] = add ? p : NULL;
            return;
        }
    }
    if (add)
        fail_msg("more than %d live objects of one kind", MAX_LIVE);
}

static env *env_new(void)
{
    env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    track((void **)live_env, e, true);
    snprintf(e->store, sizeof e->store, "/tmp/sizeup-dltest-XXXXXX");
    assert_non_null(mkdtemp(e->store));
    snprintf(e->dest, sizeof e->dest, "%s/owner/repo/model.gguf", e->store);
    e->c = dl_open();
    assert_non_null(e->c);
    dl_set_store_dir(e->c, e->store);
    dl_set_retry(e->c, 3, 20);
    dl_set_connect_timeout(e->c, 5);
    return e;
}

static void env_free(env *e)
{
    track((void **)live_env, e, false);
    dl_close(e->c);
    dlsrv_rm_rf(e->store);
    free(e);
}

/* dest + suffix in e->path. */
static const char *with(env *e, const char *suffix)
{
    snprintf(e->path, sizeof e->path, "%s%s", e->dest, suffix);
    return e->path;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void assert_file_is(const char *path, const uint8_t *data, size_t len)
{
    size_t n = 0;
    uint8_t *got = read_file(path, &n);
    assert_int_equal(n, len);
    assert_memory_equal(got, data, len);
    free(got);
}

static int count_files_in(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            n += count_files_in(p);
        else
            n++;
    }
    closedir(d);
    return n;
}

static void sha256_hex(const uint8_t *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The finished state: identical bytes, a record naming url, size and hash, no part, sidecar
 * or lock. */
static void assert_finished(env *e, const char *url, const uint8_t *data, size_t len)
{
    assert_file_is(e->dest, data, len);
    assert_false(exists(with(e, ".part")));
    assert_false(exists(with(e, ".part.json")));
    assert_false(exists(with(e, ".lock")));
    dl_record r;
    assert_int_equal(dl_record_read(e->dest, &r), DL_OK);
    char sha[65];
    sha256_hex(data, len, sha);
    assert_int_equal(r.size, len);
    assert_string_equal(r.sha256, sha);
    if (url)
        assert_string_equal(r.url, url);
    assert_true(r.pulled_at > 1600000000);
    dl_record_free(&r);
}

/* Nothing of the file anywhere in the store. */
static void assert_store_empty(env *e)
{
    assert_int_equal(count_files_in(e->store), 0);
}

static void assert_msg_has(env *e, const char *needle)
{
    const char *m = dl_errmsg(e->c);
    if (!strstr(m, needle))
        fail_msg("message \"%s\" lacks \"%s\"", m, needle);
}

/* A sidecar whose url is url and a part of exactly n bytes (n < 0: any size > 0). */
static long assert_resumable(env *e, const char *url, long n)
{
    long size = file_size(with(e, ".part"));
    if (n >= 0)
        assert_int_equal(size, n);
    else
        assert_true(size > 0);
    assert_false(exists(e->dest));
    json_t *o = json_load_file(with(e, ".part.json"), 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "url")), url);
    json_decref(o);
    return size;
}

typedef struct prog {
    int calls, finished;
    uint64_t last_done, last_total, resumed_from, cancel_at;
    double max_speed;
    int max_attempt;
} prog;

static int on_progress(const dl_progress *p, void *user)
{
    prog *g = user;
    g->calls++;
    g->finished += p->finished;
    assert_true(p->done >= g->last_done || p->attempt > 1 || g->last_done == 0);
    g->last_done = p->done;
    g->last_total = p->total;
    g->resumed_from = p->resumed_from;
    if (p->bytes_per_s > g->max_speed)
        g->max_speed = p->bytes_per_s;
    if (p->attempt > g->max_attempt)
        g->max_attempt = p->attempt;
    assert_string_equal(p->name, "model.gguf");
    return g->cancel_at && p->done >= g->cancel_at;
}

/* A fault server on the heap (its thread must never see a dead stack frame). */
static dlsrv_fault *fault_new(const uint8_t *body, size_t len, const dlsrv_faults *f)
{
    dlsrv_fault *s = calloc(1, sizeof *s);
    assert_non_null(s);
    if (dlsrv_fault_start(s, body, len, f) != 0) {
        free(s);
        fail_msg("the fault server did not start");
    }
    track((void **)live_fault, s, true);
    return s;
}

static void fault_free(dlsrv_fault *s)
{
    track((void **)live_fault, s, false);
    dlsrv_fault_stop(s);
    free(s);
}

/* nginx with both fixtures under /files/. */
static dlsrv_nginx *nginx_new(const char *extra, bool tls)
{
    dlsrv_nginx *n = calloc(1, sizeof *n);
    assert_non_null(n);
    if (dlsrv_nginx_start(n, extra, tls) != 0) {
        free(n);
        fail_msg("nginx did not start");
    }
    track((void **)live_nginx, n, true);
    assert_int_equal(dlsrv_nginx_put(n, "files/stories260K.gguf", stories, stories_len), 0);
    assert_int_equal(dlsrv_nginx_put(n, "files/baby.gguf", baby, baby_len), 0);
    return n;
}

static void nginx_free(dlsrv_nginx *n)
{
    track((void **)live_nginx, n, false);
    dlsrv_nginx_stop(n);
    free(n);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_LIVE; i++) {
        if (live_fault[i])
            fault_free(live_fault[i]);
        if (live_nginx[i])
            nginx_free(live_nginx[i]);
        if (live_env[i])
            env_free(live_env[i]);
    }
    unsetenv("CURL_CA_BUNDLE");
    return 0;
}

static const char *nginx_url(const dlsrv_nginx *n, const char *path)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s%s", dlsrv_nginx_base(n), path);
    return buf;
}

/* ---- nginx ---- */

/* A plain pull: byte-identical, recorded, progress reported and finished once; a second call
 * needs no server at all. */
static void test_nginx_pull(void **state)
{
    (void)state;
    env *e = env_new();
    dlsrv_nginx *n = nginx_new(NULL, false);
    char url[512];
    snprintf(url, sizeof url, "%s", nginx_url(n, "/files/baby.gguf"));
    prog g = { 0 };
    dl_set_progress(e->c, on_progress, &g);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, baby, baby_len);
    assert_int_equal(g.finished, 1);
    assert_int_equal(g.last_done, baby_len);
    assert_int_equal(g.last_total, baby_len);
    assert_int_equal(g.resumed_from, 0);
    nginx_free(n);
    /* Complete with a matching record: no transfer (the server is gone). */
    memset(&g, 0, sizeof g);
    dl_expect exp = { .size = baby_len };
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, &exp), DL_OK);
    assert_int_equal(g.finished, 1);
    assert_int_equal(g.last_done, baby_len);
    env_free(e);
}

/* Hugging Face's shape: the resolve URL answers 302 with X-Linked-Etag (the LFS sha256,
 * quoted) and X-Linked-Size, the storage URL has the bytes. The linked hash is what is
 * checked: the right one passes, a wrong one fails and leaves nothing behind. */
static void test_linked_etag_redirect(void **state)
{
    (void)state;
    char sha[65], conf[2048];
    sha256_hex(baby, baby_len, sha);
    snprintf(conf, sizeof conf,
             "location /good/ { add_header X-Linked-Etag '\"%s\"' always;"
             " add_header X-Linked-Size %zu always; return 302 /files/baby.gguf; }\n"
             "location /bad/ { add_header X-Linked-Etag '\"%064d\"' always;"
             " return 302 /files/baby.gguf; }\n"
             "location /badsize/ { add_header X-Linked-Size %zu always;"
             " return 302 /files/baby.gguf; }\n"
             "location /hop/ { return 302 /good/x; }\n",
             sha, baby_len, 0, baby_len + 1);
    dlsrv_nginx *n = nginx_new(conf, false);
    env *e = env_new();
    char url[512];
    snprintf(url, sizeof url, "%s", nginx_url(n, "/hop/model.gguf"));
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, baby, baby_len);
    env_free(e);

    e = env_new();
    assert_int_equal(dl_fetch_file(e->c, nginx_url(n, "/bad/model.gguf"), e->dest, NULL),
                     DL_ERR_VERIFY);
    assert_msg_has(e, "SHA-256 mismatch");
    assert_msg_has(e, sha);                        /* what it got */
    assert_msg_has(e, "0000000000000000000000000000000000000000000000000000000000000000");
    assert_store_empty(e);
    env_free(e);

    e = env_new();
    assert_int_equal(dl_fetch_file(e->c, nginx_url(n, "/badsize/model.gguf"), e->dest, NULL),
                     DL_ERR_VERIFY);
    assert_msg_has(e, "size mismatch");
    assert_store_empty(e);
    env_free(e);
    nginx_free(n);
}

static void test_get_and_range(void **state)
{
    (void)state;
    dlsrv_nginx *n = nginx_new(NULL, false);
    const char *json = "{\"files\": [\"a.gguf\", \"b.gguf\"]}";
    assert_int_equal(dlsrv_nginx_put(n, "api/list.json", json, strlen(json)), 0);
    env *e = env_new();
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(dl_get(e->c, nginx_url(n, "/api/list.json"), &body, &len), DL_OK);
    assert_int_equal(len, strlen(json));
    assert_string_equal(body, json);
    free(body);
    assert_int_equal(dl_get(e->c, nginx_url(n, "/api/none.json"), &body, &len), DL_ERR_HTTP);
    assert_null(body);
    assert_msg_has(e, "404");
    assert_msg_has(e, "/api/none.json");

    uint8_t buf[4096];
    size_t got = 0;
    uint64_t total = 0;
    const char *url = nginx_url(n, "/files/baby.gguf");
    assert_int_equal(dl_get_range(e->c, url, 1000, sizeof buf, buf, &got, &total), DL_OK);
    assert_int_equal(got, sizeof buf);
    assert_int_equal(total, baby_len);
    assert_memory_equal(buf, baby + 1000, sizeof buf);
    /* The tail: fewer bytes than asked. */
    assert_int_equal(dl_get_range(e->c, url, baby_len - 100, sizeof buf, buf, &got, &total),
                     DL_OK);
    assert_int_equal(got, 100);
    assert_memory_equal(buf, baby + baby_len - 100, 100);
    /* Past the end: nothing, but the size is known (416 with Content-Range: bytes * /N). */
    assert_int_equal(dl_get_range(e->c, url, baby_len + 10, sizeof buf, buf, &got, &total),
                     DL_OK);
    assert_int_equal(got, 0);
    assert_int_equal(total, baby_len);
    env_free(e);
    nginx_free(n);
}

/* A server that ignores Range: dl_get_range skips to the offset, stops reading after len, and
 * takes the size from Content-Length. */
static void test_range_on_200(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.ignore_range = true;
    dlsrv_fault *s = fault_new(baby, baby_len, &f);
    env *e = env_new();
    uint8_t buf[3000];
    size_t got = 0;
    uint64_t total = 0;
    assert_int_equal(dl_get_range(e->c, dlsrv_fault_url(s, "/m.gguf"), 5000, sizeof buf, buf,
                                  &got, &total), DL_OK);
    assert_int_equal(got, sizeof buf);
    assert_memory_equal(buf, baby + 5000, sizeof buf);
    assert_int_equal(total, baby_len);
    assert_int_equal(dlsrv_fault_requests(s), 1);
    assert_int_equal(s->reqs[0].status, 200);
    env_free(e);
    fault_free(s);
}

/* dl_peek's enough() for the test below: records what it was given, always satisfied. */
static int peek_take_all(const void *buf, size_t len, uint64_t file_size, void *user, char *msg,
                         size_t msglen)
{
    (void)buf, (void)msg, (void)msglen;
    uint64_t *seen = user;
    seen[0] = len;
    seen[1] = file_size;
    return 0;
}

/* A server that ignores Range and sends no Content-Length: the first bytes of a file of
 * unknown size must not pass for the whole file (inspect then said every tensor ran past its
 * end). dl_peek says the size is unknown instead; a short file that ends is whole. */
static void test_peek_unknown_size(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.ignore_range = true;
    f.no_length = true;
    dlsrv_fault *s = fault_new(baby, baby_len, &f);
    env *e = env_new();
    uint64_t seen[2] = { 0, 0 }, size = 0, net = 0;
    void *buf = NULL;
    size_t len = 0;
    const char *url = dlsrv_fault_url(s, "/m.gguf");
    assert_true(baby_len > (256 << 10));
    assert_int_equal(dl_peek(e->c, url, peek_take_all, seen, 0, &buf, &len, &size, &net),
                     DL_ERR_FORMAT);
    assert_null(buf);
    assert_msg_has(e, url);
    assert_msg_has(e, "size is unknown");
    assert_msg_has(e, "range requests");
    env_free(e);
    fault_free(s);

    static const uint8_t small[] = "GGUF and a few bytes";
    s = fault_new(small, sizeof small - 1, &f);
    e = env_new();
    url = dlsrv_fault_url(s, "/m.gguf");
    assert_int_equal(dl_peek(e->c, url, peek_take_all, seen, 0, &buf, &len, &size, &net), DL_OK);
    assert_int_equal(len, sizeof small - 1);
    assert_int_equal(seen[1], sizeof small - 1);
    assert_int_equal(size, sizeof small - 1);
    free(buf);
    env_free(e);
    fault_free(s);
}

static void test_tls(void **state)
{
    (void)state;
    dlsrv_nginx *n = nginx_new(NULL, true);
    char url[512];
    snprintf(url, sizeof url, "%s", nginx_url(n, "/files/stories260K.gguf"));
    assert_true(strncmp(url, "https://", 8) == 0);
    unsetenv("CURL_CA_BUNDLE");

    env *e = env_new();                            /* the system CAs only: refused */
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_ERR_TLS);
    assert_msg_has(e, "127.0.0.1");
    assert_store_empty(e);
    dl_set_cacert(e->c, n->ca_pem);                 /* --cacert */
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, stories, stories_len);
    env_free(e);

    setenv("CURL_CA_BUNDLE", n->ca_pem, 1);         /* picked up by dl_open */
    e = env_new();
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, stories, stories_len);
    unsetenv("CURL_CA_BUNDLE");
    env_free(e);
    nginx_free(n);
}

/* ---- the fault server ---- */

#define DROP_AT 1000000

/* A connection dropped after N bytes with no retries left: a part of exactly N bytes and its
 * sidecar stay; the next call asks for the rest only (206 from N) and finishes. */
static void test_resume_after_drop(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.drop_after = DROP_AT;
    dlsrv_fault *s = fault_new(baby, baby_len, &f);
    env *e = env_new();
    char url[512];
    snprintf(url, sizeof url, "%s", dlsrv_fault_url(s, "/m.gguf"));
    dl_set_retry(e->c, 0, 20);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_ERR_NETWORK);
    assert_resumable(e, url, DROP_AT);
    assert_int_equal(dlsrv_fault_requests(s), 1);

    dlsrv_fault_reset_counts(s);
    prog g = { 0 };
    dl_set_progress(e->c, on_progress, &g);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, baby, baby_len);
    assert_int_equal(dlsrv_fault_requests(s), 1);
    assert_int_equal(s->reqs[0].status, 206);
    assert_int_equal(s->reqs[0].range_start, DROP_AT);
    assert_string_equal(s->reqs[0].if_range, "\"v1\"");
    assert_int_equal(dlsrv_fault_bytes(s), baby_len - DROP_AT);
    assert_int_equal(g.resumed_from, DROP_AT);
    assert_int_equal(g.finished, 1);
    env_free(e);
    fault_free(s);
}

/* A URL with user:password: the credentials go to the server (Basic auth), but no message,
 * sidecar or record holds the password; the part resumes when the URL is given again, and the
 * record keeps the URL without them. */
static void test_url_password_hidden(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.drop_after = DROP_AT;
    dlsrv_fault *s = fault_new(baby, baby_len, &f);
    env *e = env_new();
    char url[512], plain[512];
    snprintf(plain, sizeof plain, "%s", dlsrv_fault_url(s, "/m.gguf"));
    snprintf(url, sizeof url, "http://user:secret@127.0.0.1:%d/m.gguf", s->port);
    dl_set_retry(e->c, 0, 20);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_ERR_NETWORK);
    assert_msg_has(e, plain);
    assert_null(strstr(dl_errmsg(e->c), "secret"));
    assert_resumable(e, plain, DROP_AT);
    assert_true(s->reqs[0].auth);

    dlsrv_fault_reset_counts(s);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, plain, baby, baby_len);
    assert_int_equal(s->reqs[0].status, 206);   /* resumed: the sidecar matched */
    assert_true(s->reqs[0].auth);
    size_t n = 0;
    char *rec = (char *)read_file(with(e, ".json"), &n);
    assert_non_null(rec);
    assert_null(memmem(rec, n, "secret", 6)); /* read_file adds no NUL */
    free(rec);

    /* A refusal names the URL without the password too. */
    dlsrv_faults nf = dlsrv_no_faults();
    nf.not_found = true;
    dlsrv_fault_set(s, &nf);
    snprintf(url, sizeof url, "http://user:secret@127.0.0.1:%d/gone.gguf", s->port);
    assert_int_equal(dl_fetch_file(e->c, url, with(e, "-2.gguf"), NULL), DL_ERR_HTTP);
    assert_msg_has(e, "404");
    assert_msg_has(e, "http://127.0.0.1:");
    assert_null(strstr(dl_errmsg(e->c), "secret"));
    assert_null(strstr(dl_errmsg(e->c), "user"));
    env_free(e);
    fault_free(s);
}

/* A model pull (exp.gguf) refuses a 200 answer that is not a GGUF file: the message names the
 * URL and what came, and nothing stays in the store. Without the flag the bytes are kept. */
static void test_not_gguf_refused(void **state)
{
    (void)state;
    static const uint8_t page[] = "<html><body>Please log in</body></html>\n";
    dlsrv_fault *s = fault_new(page, sizeof page - 1, NULL);
    env *e = env_new();
    const char *url = dlsrv_fault_url(s, "/m.gguf");
    dl_expect exp = { .gguf = true };
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, &exp), DL_ERR_FORMAT);
    assert_msg_has(e, url);
    assert_msg_has(e, "not a GGUF file (it starts with 3c 68 74 6d: an HTML page?)");
    assert_store_empty(e);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, page, sizeof page - 1);
    env_free(e);
    fault_free(s);
    /* A real model passes. */
    s = fault_new(baby, baby_len, NULL);
    e = env_new();
    url = dlsrv_fault_url(s, "/m.gguf");
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, &exp), DL_OK);
    assert_finished(e, url, baby, baby_len);
    env_free(e);
    fault_free(s);
}

/* With retries, a drop is resumed within the same call. */
static void test_retry_resumes_in_call(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.drop_after = DROP_AT;
    f.drop_times = 2;
    dlsrv_fault *s = fault_new(baby, baby_len, &f);
    env *e = env_new();
    prog g = { 0 };
    dl_set_progress(e->c, on_progress, &g);
    const char *url = dlsrv_fault_url(s, "/m.gguf");
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, baby, baby_len);
    assert_int_equal(dlsrv_fault_requests(s), 3);
    assert_int_equal(s->reqs[0].range_start, -1);
    assert_int_equal(s->reqs[1].range_start, DROP_AT);
    assert_int_equal(s->reqs[2].range_start, 2 * DROP_AT);
    assert_int_equal(s->reqs[2].status, 206);
    assert_int_equal(dlsrv_fault_bytes(s), baby_len);   /* no byte twice */
    assert_int_equal(g.max_attempt, 3);
    env_free(e);
    fault_free(s);
}

/* Leave a part of DROP_AT bytes from url (retries off). */
static void make_part(env *e, dlsrv_fault *s, const char *url)
{
    dlsrv_faults f = dlsrv_no_faults();
    f.drop_after = DROP_AT;
    dlsrv_fault_set(s, &f);
    dl_set_retry(e->c, 0, 20);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_ERR_NETWORK);
    assert_resumable(e, url, DROP_AT);
    dl_set_retry(e->c, 3, 20);
    dlsrv_fault_reset_counts(s);
}

/* A 200 to the Range request: the part is truncated and the file taken whole. */
static void test_200_on_range_restarts(void **state)
{
    (void)state;
    dlsrv_fault *s = fault_new(baby, baby_len, NULL);
    env *e = env_new();
    char url[512];
    snprintf(url, sizeof url, "%s", dlsrv_fault_url(s, "/m.gguf"));
    make_part(e, s, url);
    dlsrv_faults f = dlsrv_no_faults();
    f.ignore_range = true;
    dlsrv_fault_set(s, &f);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, baby, baby_len);
    assert_int_equal(dlsrv_fault_requests(s), 1);
    assert_int_equal(s->reqs[0].range_start, DROP_AT);
    assert_int_equal(s->reqs[0].status, 200);
    assert_int_equal(s->reqs[0].body_sent, baby_len);
    env_free(e);
    fault_free(s);
}

/* The file changed on the server between two calls. A server that honours If-Range answers
 * 200 with the new file; one that ignores it answers 206 with a new ETag, which the client
 * catches and restarts from zero. Either way the result is the new file, whole. */
static void test_changed_etag_restarts(void **state)
{
    (void)state;
    for (int ignore_if_range = 0; ignore_if_range < 2; ignore_if_range++) {
        dlsrv_fault *s = fault_new(baby, baby_len, NULL);
        env *e = env_new();
        char url[512];
        snprintf(url, sizeof url, "%s", dlsrv_fault_url(s, "/m.gguf"));
        make_part(e, s, url);
        dlsrv_faults f = dlsrv_no_faults();
        f.change_after = 1;
        f.ignore_if_range = ignore_if_range;
        dlsrv_fault_set(s, &f);
        assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
        assert_finished(e, url, s->body2, baby_len);
        assert_int_equal(memcmp(s->body2, baby, 16) != 0, 1);
        assert_string_equal(s->reqs[0].if_range, "\"v1\"");
        if (!ignore_if_range) {
            assert_int_equal(dlsrv_fault_requests(s), 1);
            assert_int_equal(s->reqs[0].status, 200);
        } else {
            assert_int_equal(dlsrv_fault_requests(s), 2);
            assert_int_equal(s->reqs[0].status, 206);
            assert_int_equal(s->reqs[1].range_start, -1);
            assert_int_equal(s->reqs[1].status, 200);
        }
        dl_record r;
        assert_int_equal(dl_record_read(e->dest, &r), DL_OK);
        assert_string_equal(r.etag, "\"v2\"");
        dl_record_free(&r);
        env_free(e);
        fault_free(s);
    }
}

/* A body without Content-Length that stops short but cleanly (curl calls that a success) while
 * the size is known from elsewhere: the caller (a catalog size), X-Linked-Size, or the sidecar
 * of an earlier call. A broken transfer, resumed at once; never a verification failure that
 * deletes the part. */
static void test_close_delimited_short(void **state)
{
    (void)state;
    for (int how = 0; how < 3; how++) {
        dlsrv_fault *s = fault_new(baby, baby_len, NULL);
        env *e = env_new();
        char url[512];
        snprintf(url, sizeof url, "%s", dlsrv_fault_url(s, "/m.gguf"));
        if (how == 2)
            make_part(e, s, url);   /* the sidecar remembers the size */
        dlsrv_faults f = dlsrv_no_faults();
        f.no_length = true;
        f.drop_after = DROP_AT;
        f.linked_size = how == 1;
        dlsrv_fault_set(s, &f);
        dl_expect exp = { .size = baby_len };
        dl_status st = dl_fetch_file(e->c, url, e->dest, how == 0 ? &exp : NULL);
        if (st)
            fail_msg("size from %s: %s: %s", how == 0 ? "caller" : how == 1 ? "X-Linked-Size"
                     : "sidecar", dl_status_name(st), dl_errmsg(e->c));
        assert_finished(e, url, baby, baby_len);
        assert_int_equal(dlsrv_fault_requests(s), 2);
        assert_false(s->reqs[0].has_length);
        long first = how == 2 ? DROP_AT : 0;
        assert_int_equal(s->reqs[0].range_start, how == 2 ? DROP_AT : -1);
        assert_int_equal(s->reqs[1].range_start, first + DROP_AT);
        assert_int_equal(s->reqs[1].status, 206);
        env_free(e);
        fault_free(s);
    }
}

/* A header number with trailing garbage ("X-Linked-Size: 1000 bytes") is no number at all,
 * not 1000: the size comes from Content-Length instead of a misread that fails verification. */
static void test_linked_size_junk(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.linked_size = true;
    f.linked_text = "1000 bytes";
    dlsrv_fault *s = fault_new(baby, baby_len, &f);
    env *e = env_new();
    const char *url = dlsrv_fault_url(s, "/m.gguf");
    dl_status st = dl_fetch_file(e->c, url, e->dest, NULL);
    if (st)
        fail_msg("%s: %s", dl_status_name(st), dl_errmsg(e->c));
    assert_finished(e, url, baby, baby_len);
    env_free(e);
    fault_free(s);
}

/* Leave a part of DROP_AT bytes from a server without ETags; with dates when `dated`. */
static void make_undated_part(env *e, dlsrv_fault *s, const char *url, bool dated)
{
    dlsrv_faults f = dlsrv_no_faults();
    f.no_etag = true;
    f.last_modified = dated;
    f.drop_after = DROP_AT;
    dlsrv_fault_set(s, &f);
    dl_set_retry(e->c, 0, 20);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_ERR_NETWORK);
    assert_resumable(e, url, DROP_AT);
    dl_set_retry(e->c, 3, 20);
    dlsrv_fault_reset_counts(s);
}

/* Without an ETag the part is guarded by the Last-Modified date the sidecar recorded. The file
 * unchanged: resumed with If-Range: DATE. Changed: a server that honours If-Range sends the new
 * file whole; one that ignores it (and now sends no date to compare) answers 206 with another
 * total than the sidecar's size, so the transfer starts over instead of failing verification
 * and deleting the part. */
static void test_no_etag_dated(void **state)
{
    (void)state;
    for (int change = 0; change < 3; change++) {
        dlsrv_fault *s = fault_new(baby, baby_len, NULL);
        env *e = env_new();
        char url[512];
        snprintf(url, sizeof url, "%s", dlsrv_fault_url(s, "/m.gguf"));
        make_undated_part(e, s, url, true);
        json_t *o = json_load_file(with(e, ".part.json"), 0, NULL);
        assert_string_equal(json_string_value(json_object_get(o, "last_modified")),
                            DLSRV_DATE_V1);
        json_decref(o);
        dlsrv_faults f = dlsrv_no_faults();
        f.no_etag = true;
        f.last_modified = change < 2;   /* 2: a server that now sends no date at all */
        f.change_after = change ? 1 : 0;
        f.v2_len = baby_len - 4096;
        f.ignore_if_range = change == 2;
        dlsrv_fault_set(s, &f);
        dl_status st = dl_fetch_file(e->c, url, e->dest, NULL);
        if (st)
            fail_msg("change %d: %s: %s", change, dl_status_name(st), dl_errmsg(e->c));
        assert_string_equal(s->reqs[0].if_range, DLSRV_DATE_V1);
        assert_int_equal(s->reqs[0].range_start, DROP_AT);
        if (change == 0) {
            assert_finished(e, url, baby, baby_len);
            assert_int_equal(dlsrv_fault_requests(s), 1);
            assert_int_equal(s->reqs[0].status, 206);
        } else {
            assert_finished(e, url, s->body2, baby_len - 4096);
            assert_int_equal(dlsrv_fault_requests(s), change == 2 ? 2 : 1);
            assert_int_equal(s->reqs[change - 1].status, 200);
        }
        env_free(e);
        fault_free(s);
    }
}

/* Progress for test_no_validator_restarts: what the retry said about where it starts. */
typedef struct restart_seen {
    int max_attempt;
    uint64_t restarted_from;   /* as the first report of the last attempt said */
} restart_seen;

static int on_restart_progress(const dl_progress *p, void *user)
{
    restart_seen *r = user;
    if (p->attempt > r->max_attempt) {
        r->max_attempt = p->attempt;
        r->restarted_from = p->restarted_from;
    }
    return 0;
}

/* Neither ETag nor date nor a known SHA-256: nothing could tell a changed file from the same
 * one, so the part is not resumed blindly; the transfer starts over, the retry's progress says
 * so (restarted_from), and a failed call leaves no part that could never be resumed. With a
 * SHA-256 to check the result, resuming is safe again and the part is kept. */
static void test_no_validator_restarts(void **state)
{
    (void)state;
    {
        dlsrv_faults f = dlsrv_no_faults();
        f.no_etag = true;
        f.drop_after = DROP_AT;
        f.drop_times = 1;
        dlsrv_fault *s = fault_new(baby, baby_len, &f);
        env *e = env_new();
        restart_seen r = { 0 };
        dl_set_progress(e->c, on_restart_progress, &r);
        assert_int_equal(dl_fetch_file(e->c, dlsrv_fault_url(s, "/m.gguf"), e->dest, NULL),
                         DL_OK);
        assert_int_equal(r.max_attempt, 2);
        assert_int_equal(r.restarted_from, DROP_AT);
        env_free(e);
        fault_free(s);
    }
    for (int with_sha = 0; with_sha < 2; with_sha++) {
        dlsrv_fault *s = fault_new(baby, baby_len, NULL);
        env *e = env_new();
        char url[512], sha[65];
        snprintf(url, sizeof url, "%s", dlsrv_fault_url(s, "/m.gguf"));
        sha256_hex(baby, baby_len, sha);
        dl_expect exp = { .size = 0, .sha256_hex = sha };
        dlsrv_faults f = dlsrv_no_faults();
        f.no_etag = true;
        f.drop_after = DROP_AT;
        dlsrv_fault_set(s, &f);
        dl_set_retry(e->c, 0, 20);
        assert_int_equal(dl_fetch_file(e->c, url, e->dest, with_sha ? &exp : NULL),
                         DL_ERR_NETWORK);
        if (with_sha) {
            assert_resumable(e, url, DROP_AT);
        } else {
            assert_store_empty(e);
            assert_msg_has(e, "cannot be resumed");
        }
        dl_set_retry(e->c, 3, 20);
        dlsrv_fault_reset_counts(s);
        f.drop_after = 0;
        dlsrv_fault_set(s, &f);
        assert_int_equal(dl_fetch_file(e->c, url, e->dest, with_sha ? &exp : NULL), DL_OK);
        assert_finished(e, url, baby, baby_len);
        assert_int_equal(dlsrv_fault_requests(s), 1);
        assert_int_equal(s->reqs[0].range_start, with_sha ? DROP_AT : -1);
        assert_int_equal(s->reqs[0].status, with_sha ? 206 : 200);
        assert_string_equal(s->reqs[0].if_range, "");
        env_free(e);
        fault_free(s);
    }
}

static void test_500_then_ok(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.fail_500 = 2;
    dlsrv_fault *s = fault_new(stories, stories_len, &f);
    env *e = env_new();
    const char *url = dlsrv_fault_url(s, "/m.gguf");
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, stories, stories_len);
    assert_int_equal(dlsrv_fault_requests(s), 3);
    assert_int_equal(s->reqs[0].status, 500);
    assert_int_equal(s->reqs[1].status, 500);
    assert_int_equal(s->reqs[2].status, 200);
    env_free(e);

    /* 500 for ever: max_retries + 1 attempts, then a network error and an empty store. */
    f.fail_500 = 1000;
    dlsrv_fault_set(s, &f);
    dlsrv_fault_reset_counts(s);
    e = env_new();
    dl_set_retry(e->c, 2, 10);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_ERR_NETWORK);
    assert_int_equal(dlsrv_fault_requests(s), 3);
    assert_msg_has(e, "500");
    assert_msg_has(e, "3 attempts");
    assert_store_empty(e);
    env_free(e);
    fault_free(s);
}

static void test_404_no_retry(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.not_found = true;
    dlsrv_fault *s = fault_new(stories, stories_len, &f);
    env *e = env_new();
    const char *url = dlsrv_fault_url(s, "/missing.gguf");
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_ERR_HTTP);
    assert_int_equal(dlsrv_fault_requests(s), 1);
    assert_msg_has(e, "404");
    assert_msg_has(e, "/missing.gguf");
    assert_store_empty(e);
    env_free(e);
    fault_free(s);
}

/* Slower than the low-speed limit: each attempt is cut after low_speed_s, retried, then a
 * network error; the bytes that did come form a resumable part, and the next call resumes. */
static void test_trickle(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.rate_bps = 400;
    dlsrv_fault *s = fault_new(stories, stories_len, &f);
    env *e = env_new();
    char url[512];
    snprintf(url, sizeof url, "%s", dlsrv_fault_url(s, "/m.gguf"));
    dl_set_retry(e->c, 1, 20);
    dl_set_low_speed(e->c, 2000, 2);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_ERR_NETWORK);
    assert_msg_has(e, "2 attempts");
    assert_int_equal(dlsrv_fault_requests(s), 2);
    assert_int_equal(s->reqs[1].status, 206);
    long part = assert_resumable(e, url, -1);
    assert_true(part < 10000);

    dlsrv_faults ok = dlsrv_no_faults();
    dlsrv_fault_set(s, &ok);
    dlsrv_fault_reset_counts(s);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, stories, stories_len);
    assert_int_equal(s->reqs[0].range_start, part);
    assert_int_equal(dlsrv_fault_bytes(s), stories_len - (size_t)part);
    env_free(e);
    fault_free(s);
}

/* A flipped byte with the right hash expected: refused, and nothing stays (no file, no part,
 * no sidecar, no record). A retry would not help, so there is one request. */
static void test_corrupt_sha(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.corrupt_at = 123457;
    dlsrv_fault *s = fault_new(baby, baby_len, &f);
    env *e = env_new();
    char sha[65];
    sha256_hex(baby, baby_len, sha);
    dl_expect exp = { .size = baby_len, .sha256_hex = sha };
    assert_int_equal(dl_fetch_file(e->c, dlsrv_fault_url(s, "/m.gguf"), e->dest, &exp),
                     DL_ERR_VERIFY);
    assert_msg_has(e, "SHA-256 mismatch");
    assert_msg_has(e, sha);
    assert_int_equal(dlsrv_fault_requests(s), 1);
    assert_store_empty(e);
    env_free(e);
    fault_free(s);
}

static void test_size_mismatch(void **state)
{
    (void)state;
    dlsrv_fault *s = fault_new(stories, stories_len, NULL);
    const char *url = dlsrv_fault_url(s, "/m.gguf");
    for (int d = -1; d <= 1; d += 2) {
        env *e = env_new();
        dl_expect exp = { .size = stories_len + (size_t)(d * 10) };
        assert_int_equal(dl_fetch_file(e->c, url, e->dest, &exp), DL_ERR_VERIFY);
        assert_msg_has(e, "size mismatch");
        assert_store_empty(e);
        env_free(e);
    }
    fault_free(s);
}

/* Cancel from the progress callback, then from another thread with dl_cancel: each leaves a
 * resumable part, the context stays usable, and the last call resumes and finishes. */
typedef struct canceller {
    dl_ctx *c;
    long after_ms;
} canceller;

static void *cancel_later(void *arg)
{
    canceller *k = arg;
    dlsrv_sleep_ms(k->after_ms);
    dl_cancel(k->c);
    return NULL;
}

static void test_cancel(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.rate_bps = 1000000;
    dlsrv_fault *s = fault_new(baby, baby_len, &f);
    env *e = env_new();
    char url[512];
    snprintf(url, sizeof url, "%s", dlsrv_fault_url(s, "/m.gguf"));
    prog g = { .cancel_at = 200000 };
    dl_set_progress(e->c, on_progress, &g);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_ERR_CANCELLED);
    long part1 = assert_resumable(e, url, -1);
    assert_true(part1 >= 200000 && (size_t)part1 < baby_len);
    assert_int_equal(g.finished, 0);
    assert_true(g.max_speed > 0);
    assert_int_equal(g.last_total, baby_len);

    pthread_t t;
    canceller k = { e->c, 300 };
    g.cancel_at = 0;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &k), 0);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_ERR_CANCELLED);
    pthread_join(t, NULL);
    long part2 = assert_resumable(e, url, -1);
    assert_true(part2 > part1);
    assert_int_equal(g.resumed_from, part1);

    dlsrv_faults ok = dlsrv_no_faults();
    dlsrv_fault_set(s, &ok);
    dlsrv_fault_reset_counts(s);
    memset(&g, 0, sizeof g);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, baby, baby_len);
    assert_int_equal(dlsrv_fault_requests(s), 1);
    assert_int_equal(s->reqs[0].range_start, part2);
    assert_int_equal(g.resumed_from, part2);
    assert_int_equal(g.finished, 1);
    env_free(e);
    fault_free(s);
}

static void test_offline(void **state)
{
    (void)state;
    env *e = env_new();
    int port = dlsrv_free_port();
    char url[128], host[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/m.gguf", port);
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_ERR_OFFLINE);
    assert_msg_has(e, host);
    assert_msg_has(e, "local");
    assert_store_empty(e);
    char *body = NULL;
    assert_int_equal(dl_get(e->c, url, &body, NULL), DL_ERR_OFFLINE);
    assert_null(body);
    env_free(e);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A host that never answers the connect (a blackholed route): offline after at most one
 * retry, not a network error after the whole ladder of backoffs. */
static void test_connect_timeout_offline(void **state)
{
    (void)state;
    dlsrv_blackhole b = { 0 };
    if (dlsrv_blackhole_start(&b) != 0)
        fail_msg("could not make a port that never answers: %s", strerror(errno));
    env *e = env_new();
    char url[128], host[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/m.gguf", b.port);
    snprintf(host, sizeof host, "127.0.0.1:%d", b.port);
    dl_set_connect_timeout(e->c, 1);
    dl_set_retry(e->c, 5, 20);
    double t0 = mono_s();
    dl_status st = dl_fetch_file(e->c, url, e->dest, NULL);
    double took = mono_s() - t0;
    dlsrv_blackhole_stop(&b);
    if (st != DL_ERR_OFFLINE)
        fail_msg("%s: %s (after %.1f s)", dl_status_name(st), dl_errmsg(e->c), took);
    assert_msg_has(e, host);
    assert_msg_has(e, "offline");
    assert_true(took < 3.5);   /* two 1 s attempts; the full ladder takes 6 */
    assert_store_empty(e);
    env_free(e);
}

/* Two threads with their own contexts pull the same file at once: the lock makes one wait,
 * and it then finds the file complete, so the server sees a single request. */
typedef struct puller {
    const char *url, *store, *dest;
    dl_status st;
} puller;

static void *pull_thread(void *arg)
{
    puller *p = arg;
    dl_ctx *c = dl_open();
    if (!c) {
        p->st = DL_ERR_IO;
        return NULL;
    }
    dl_set_store_dir(c, p->store);
    p->st = dl_fetch_file(c, p->url, p->dest, NULL);
    dl_close(c);
    return NULL;
}

static void test_concurrent_same_file(void **state)
{
    (void)state;
    dlsrv_faults f = dlsrv_no_faults();
    f.rate_bps = 3000000;
    dlsrv_fault *s = fault_new(stories, stories_len, &f);
    env *e = env_new();
    const char *url = dlsrv_fault_url(s, "/m.gguf");
    puller p[2] = { { url, e->store, e->dest, DL_ERR_ARG },
                    { url, e->store, e->dest, DL_ERR_ARG } };
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, pull_thread, &p[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(p[0].st, DL_OK);
    assert_int_equal(p[1].st, DL_OK);
    assert_finished(e, url, stories, stories_len);
    assert_int_equal(dlsrv_fault_requests(s), 1);
    assert_int_equal(count_files_in(e->store), 2);   /* the file and its record */
    env_free(e);
    fault_free(s);
}

/* More expected than the disk has free: refused before any request, nothing written. */
static void test_disk_full(void **state)
{
    (void)state;
    dlsrv_fault *s = fault_new(stories, stories_len, NULL);
    env *e = env_new();
    dl_expect exp = { .size = (uint64_t)1 << 60 };
    assert_int_equal(dl_fetch_file(e->c, dlsrv_fault_url(s, "/m.gguf"), e->dest, &exp),
                     DL_ERR_DISK_FULL);
    assert_msg_has(e, "needs 1152921504606846976 more bytes");
    assert_msg_has(e, "free");
    assert_int_equal(dlsrv_fault_requests(s), 0);
    assert_store_empty(e);
    env_free(e);
    fault_free(s);
}

/* A write that fails with ENOSPC: the part is a link to /dev/full, which refuses every write
 * that way (no root or tiny file system needed). The message gives the bytes needed. The
 * destination is outside the context's store: inside it a linked part is refused, never
 * written through (test_dl_ref's test_store_linked_file). */
static void test_disk_full_on_write(void **state)
{
    (void)state;
    dlsrv_fault *s = fault_new(stories, stories_len, NULL);
    env *e = env_new();
    dl_set_store_dir(e->c, "/nonexistent-sizeup-store");
    assert_int_equal(dl_mkdir_parents(e->store), 0);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/owner/repo", e->store);
    assert_int_equal(dl_mkdir_parents(dir), 0);
    assert_int_equal(symlink("/dev/full", with(e, ".part")), 0);
    assert_int_equal(dl_fetch_file(e->c, dlsrv_fault_url(s, "/m.gguf"), e->dest, NULL),
                     DL_ERR_DISK_FULL);
    char needs[64];
    snprintf(needs, sizeof needs, "needs %zu more bytes", stories_len);
    assert_msg_has(e, needs);
    assert_int_equal(dlsrv_fault_requests(s), 1);      /* no retry: a full disk stays full */
    assert_false(exists(e->dest));
    env_free(e);
    fault_free(s);
}

/* HF_TOKEN goes to the HF endpoint only, and not on to a host it redirects to. */
static void test_hf_token_scope(void **state)
{
    (void)state;
    dlsrv_fault *s = fault_new(stories, stories_len, NULL);
    env *e = env_new();
    char base[128];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", s->port);
    dl_set_hf_endpoint(e->c, base);
    dl_set_hf_token(e->c, "tok123");
    assert_int_equal(dl_fetch_file(e->c, dlsrv_fault_url(s, "/a.gguf"), e->dest, NULL), DL_OK);
    assert_true(s->reqs[0].auth);
    assert_string_equal(s->reqs[0].authorization, "Bearer tok123");
    env_free(e);

    /* The endpoint is nginx; it redirects to another host name (localhost) for the bytes. */
    char conf[512];
    snprintf(conf, sizeof conf, "location /hf/ { return 302 http://localhost:%d/b.gguf; }",
             s->port);
    dlsrv_nginx *n = nginx_new(conf, false);
    dlsrv_fault_reset_counts(s);
    e = env_new();
    dl_set_hf_endpoint(e->c, dlsrv_nginx_base(n));
    dl_set_hf_token(e->c, "tok123");
    assert_int_equal(dl_fetch_file(e->c, nginx_url(n, "/hf/x.gguf"), e->dest, NULL), DL_OK);
    assert_finished(e, NULL, stories, stories_len);
    assert_int_equal(dlsrv_fault_requests(s), 1);
    assert_false(s->reqs[0].auth);
    env_free(e);
    nginx_free(n);
    fault_free(s);
}

/* The listing after pulls: both files with sizes, quants and sources, sorted by repository;
 * parts not listed but counted. */
static void test_store_list(void **state)
{
    (void)state;
    dlsrv_nginx *n = nginx_new(NULL, false);
    size_t q8_len;
    uint8_t *q8 = read_file(fixture_path(BABY_Q8), &q8_len);
    assert_int_equal(dlsrv_nginx_put(n, "files/babyllama-930K-Q8_0.gguf", q8, q8_len), 0);
    env *e = env_new();
    char d1[600], d2[600], d3[600];
    snprintf(d1, sizeof d1, "%s/zed/tiny/babyllama-930K-Q8_0.gguf", e->store);
    snprintf(d2, sizeof d2, "%s/acme/stories/stories260K-F32.gguf", e->store);
    snprintf(d3, sizeof d3, "%s/acme/stories/other.gguf.part", e->store);
    char u1[512];
    snprintf(u1, sizeof u1, "%s", nginx_url(n, "/files/babyllama-930K-Q8_0.gguf"));
    assert_int_equal(dl_fetch_file(e->c, u1, d1, NULL), DL_OK);
    assert_int_equal(dl_fetch_file(e->c, nginx_url(n, "/files/stories260K.gguf"), d2, NULL),
                     DL_OK);
    assert_int_equal(dlsrv_write_text(d3, "12345"), 0);
    dl_stored *list = NULL;
    size_t count = 0;
    assert_int_equal(dl_store_list(e->c, &list, &count), DL_OK);
    assert_int_equal(count, 2);
    assert_string_equal(list[0].repo, "acme/stories");
    assert_string_equal(list[0].file, "stories260K-F32.gguf");
    assert_string_equal(list[0].path, d2);
    assert_string_equal(list[0].quant, "F32");
    assert_int_equal(list[0].size, stories_len);
    assert_string_equal(list[1].repo, "zed/tiny");
    assert_string_equal(list[1].quant, "Q8_0");
    assert_int_equal(list[1].size, q8_len);
    assert_string_equal(list[1].source_url, u1);
    assert_true(list[1].pulled_at > 1600000000 && list[1].last_used >= list[1].pulled_at);
    dl_stored_free(list, count);
    assert_int_equal(dl_store_partial_bytes(e->c), 5);
    free(q8);
    env_free(e);
    nginx_free(n);
}

/* The record's "verified", read as JSON (what `sizeup pull` reports from it). */
static void assert_verified(env *e, const char *want)
{
    json_t *o = json_load_file(with(e, ".json"), 0, NULL);
    const char *got = json_string_value(json_object_get(o, "verified"));
    if (!got || strcmp(got, want))
        fail_msg("%s: verified is '%s', expected '%s'", e->dest, got ? got : "(none)", want);
    json_decref(o);
}

/* Only what was compared is recorded as verified: a plain server without a checksum gives a
 * size check, no length at all gives nothing, and sha256 only when a hash was known. The
 * record used to carry the hash computed on receipt either way, and pull printed "verified
 * sha256" for it. */
static void test_verified_record(void **state)
{
    (void)state;
    dlsrv_nginx *n = nginx_new(NULL, false);
    char url[512], sha[65];
    snprintf(url, sizeof url, "%s", nginx_url(n, "/files/baby.gguf"));
    env *e = env_new();
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, NULL), DL_OK);
    assert_finished(e, url, baby, baby_len);
    assert_verified(e, "size");
    env_free(e);

    e = env_new();
    sha256_hex(baby, baby_len, sha);
    dl_expect exp = { .sha256_hex = sha };
    assert_int_equal(dl_fetch_file(e->c, url, e->dest, &exp), DL_OK);
    assert_verified(e, "sha256");
    env_free(e);
    nginx_free(n);

    dlsrv_faults f = dlsrv_no_faults();
    f.no_length = true;
    dlsrv_fault *s = fault_new(baby, baby_len, &f);
    e = env_new();
    snprintf(url, sizeof url, "%s", dlsrv_fault_url(s, "/m.gguf"));
    dl_status st = dl_fetch_file(e->c, url, e->dest, NULL);
    if (st)
        fail_msg("no length: %s: %s", dl_status_name(st), dl_errmsg(e->c));
    assert_finished(e, url, baby, baby_len);
    assert_verified(e, "none");
    env_free(e);
    fault_free(s);
}

static int load_fixtures(void **state)
{
    (void)state;
    stories = read_file(fixture_path(STORIES), &stories_len);
    baby = read_file(fixture_path(BABY_F32), &baby_len);
    return 0;
}

static int free_fixtures(void **state)
{
    (void)state;
    free(stories);
    free(baby);
    return 0;
}

int main(void)
{
    /* The user's own settings must not leak into the servers the tests start. */
    unsetenv("HF_TOKEN");
    unsetenv("HF_ENDPOINT");
    unsetenv("CURL_CA_BUNDLE");
    unsetenv("SIZEUP_MODELS");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_nginx_pull, teardown),
        cmocka_unit_test_teardown(test_linked_etag_redirect, teardown),
        cmocka_unit_test_teardown(test_get_and_range, teardown),
        cmocka_unit_test_teardown(test_range_on_200, teardown),
        cmocka_unit_test_teardown(test_peek_unknown_size, teardown),
        cmocka_unit_test_teardown(test_tls, teardown),
        cmocka_unit_test_teardown(test_resume_after_drop, teardown),
        cmocka_unit_test_teardown(test_url_password_hidden, teardown),
        cmocka_unit_test_teardown(test_not_gguf_refused, teardown),
        cmocka_unit_test_teardown(test_retry_resumes_in_call, teardown),
        cmocka_unit_test_teardown(test_200_on_range_restarts, teardown),
        cmocka_unit_test_teardown(test_changed_etag_restarts, teardown),
        cmocka_unit_test_teardown(test_close_delimited_short, teardown),
        cmocka_unit_test_teardown(test_no_etag_dated, teardown),
        cmocka_unit_test_teardown(test_linked_size_junk, teardown),
        cmocka_unit_test_teardown(test_no_validator_restarts, teardown),
        cmocka_unit_test_teardown(test_500_then_ok, teardown),
        cmocka_unit_test_teardown(test_404_no_retry, teardown),
        cmocka_unit_test_teardown(test_trickle, teardown),
        cmocka_unit_test_teardown(test_corrupt_sha, teardown),
        cmocka_unit_test_teardown(test_size_mismatch, teardown),
        cmocka_unit_test_teardown(test_cancel, teardown),
        cmocka_unit_test_teardown(test_offline, teardown),
        cmocka_unit_test_teardown(test_connect_timeout_offline, teardown),
        cmocka_unit_test_teardown(test_concurrent_same_file, teardown),
        cmocka_unit_test_teardown(test_disk_full, teardown),
        cmocka_unit_test_teardown(test_disk_full_on_write, teardown),
        cmocka_unit_test_teardown(test_hf_token_scope, teardown),
        cmocka_unit_test_teardown(test_store_list, teardown),
        cmocka_unit_test_teardown(test_verified_record, teardown),
    };
    return cmocka_run_group_tests(tests, load_fixtures, free_fixtures);
}
