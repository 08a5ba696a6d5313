/* The OpenAI-compatible client (downloads/dl_remote.c, dl_sse.c, dl_endpoints.c) against the
 * test server tests/oaisrv.py on 127.0.0.1 and 127.0.0.2: streamed chat and completion in
 * vLLM's, llama-server's and Ollama's dialects, the figures, the SSE parser fed split at every
 * byte, endpoints.conf, every fault the issue lists (each ending in its message with the
 * partial answer intact), cancel within 100 ms, and the key: sent only to its own host, never
 * in a message. The TLS cases use Debian's nginx from tests/dlsrv.h. */
#include "tests/testutil.h"
#include "tests/dlsrv.h"

#include <jansson.h>

#include "downloads/dl_remote.h"
#include "engine/engine.h"
#include "downloads/dl_sse.h"

#define KEY_VAR "SIZEUP_TEST_REMOTE_KEY"
#define KEY "sk-test-7d1f0c55e2a94b8cb1e3-secret"

static pid_t srv_pid;
static int srv_port;
static char srv_dir[64], rec_path[128], conf_path[128];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the server, one per run ---- */

static int srv_start(void **state)
{
    (void)state;
    snprintf(srv_dir, sizeof srv_dir, "/tmp/sizeup-remote-XXXXXX");
    if (!mkdtemp(srv_dir))
        return -1;
    char port_file[128];
    snprintf(port_file, sizeof port_file, "%s/port", srv_dir);
    snprintf(rec_path, sizeof rec_path, "%s/record.jsonl", srv_dir);
    snprintf(conf_path, sizeof conf_path, "%s/endpoints.conf", srv_dir);
    setenv(KEY_VAR, KEY, 1);
    srv_pid = fork();
    if (srv_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execlp("python3", "python3", "tests/oaisrv.py", "--port-file", port_file, "--record",
               rec_path, "--key", KEY_VAR, (char *)NULL);
        perror("python3 tests/oaisrv.py");
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", &srv_port) == 1;
            fclose(f);
            if (ok)
                return 0;
        }
        dlsrv_sleep_ms(50);
    }
    fprintf(stderr, "test_remote: tests/oaisrv.py did not start (python3 installed? run from "
                    "the repository root)\n");
    return -1;
}

static int srv_stop(void **state)
{
    (void)state;
    if (srv_pid > 0) {
        kill(srv_pid, SIGTERM);
        waitpid(srv_pid, NULL, 0);
    }
    dlsrv_rm_rf(srv_dir);
    return 0;
}

/* The record of requests, emptied before each test that reads it. */
static void rec_clear(void)
{
    FILE *f = fopen(rec_path, "w");
    if (f)
        fclose(f);
}

/* The recorded requests as a JSON array (caller decrefs). */
static json_t *rec_read(void)
{
    json_t *a = json_array();
    FILE *f = fopen(rec_path, "r");
    char line[65536];
    while (f && fgets(line, sizeof line, f))
        json_array_append_new(a, json_loads(line, 0, NULL));
    if (f)
        fclose(f);
    return a;
}

/* ---- a client on the server ---- */

typedef struct got {
    char answer[4096], reasoning[1024];
    int n_answer, n_reasoning;
    int n_status;
    char status[512];
    int stop_after;          /* > 0: return false after that many answer pieces */
    dl_remote *cancel_at;    /* cancel from the callback's thread after stop_after pieces */
} got;

static bool on_token(void *user, dl_remote_part part, const char *text, size_t len,
                     const dl_remote_stats *st)
{
    got *g = user;
    (void)st;
    char *b = part == DL_REMOTE_ANSWER ? g->answer : g->reasoning;
    size_t cap = part == DL_REMOTE_ANSWER ? sizeof g->answer : sizeof g->reasoning;
    size_t n = strlen(b);
    snprintf(b + n, cap - n, "%.*s", (int)len, text);
    int k = part == DL_REMOTE_ANSWER ? ++g->n_answer : ++g->n_reasoning;
    return !(g->stop_after && part == DL_REMOTE_ANSWER && k >= g->stop_after);
}

static void on_status(void *user, const char *line)
{
    got *g = user;
    g->n_status++;
    snprintf(g->status, sizeof g->status, "%s", line);
}

static dl_remote *open_ref(const char *fmt, const dl_remote_opts *o)
{
    char ref[512];
    snprintf(ref, sizeof ref, fmt, srv_port);
    dl_remote *r;
    dl_status st = dl_remote_open(ref, o, &r);
    if (st)
        fail_msg("dl_remote_open(%s): %s", ref, dl_remote_errmsg(r));
    return r;
}

static const dl_remote_msg HISTORY[] = {
    { "system", "You are terse." },
    { "user", "Hi" },
    { "assistant", "Hello." },
    { "user", "Say hello again" },
};

static dl_status chat(dl_remote *r, got *g, dl_remote_finish *why)
{
    dl_remote_request q = { 0 };
    q.mode = DL_REMOTE_CHAT;
    q.msgs = HISTORY;
    q.n_msgs = 4;
    q.sampling = dl_remote_sampling_unset();
    dl_remote_set_status(r, on_status, g);
    return dl_remote_generate(r, &q, on_token, g, why);
}

/* Every message is checked for the key, whatever the test is about. */
static void assert_msg(const dl_remote *r, const char *want)
{
    const char *m = dl_remote_errmsg(r);
    if (!strstr(m, want))
        fail_msg("message '%s' does not say '%s'", m, want);
    if (strstr(m, KEY))
        fail_msg("message '%s' holds the key", m);
}

static const char *const FULL = "Hello from the test server.";

/* ---- SSE parser ---- */

typedef struct events {
    char log[4096];
    int n;
} events;

static int log_event(void *user, const char *event, const char *data, size_t len)
{
    events *e = user;
    size_t n = strlen(e->log);
    assert_int_equal(strlen(data), len);
    snprintf(e->log + n, sizeof e->log - n, "[%s|%s]", event, data);
    e->n++;
    return 0;
}

static const char SSE_STREAM[] =
    ": comment at the start\r\n"
    "data: one\r\n\r\n"
    "data:two\n\n"
    "event: update\r"
    "data: three a\r"
    "data: three b\r\r"
    "id: 9\nretry: 100\n:\n\n"        /* no data: no event */
    "data\n\n"                          /* a field without a colon: empty data */
    "data: {\"a\":\r\ndata:  1}\r\n\r\n"
    "data: [DONE]\n\n"
    "data: never finished";

static const char SSE_WANT[] =
    "[message|one][message|two][update|three a\nthree b][message|][message|{\"a\":\n 1}]"
    "[message|[DONE]]";

static void test_sse_split_every_byte(void **state)
{
    (void)state;
    size_t n = sizeof SSE_STREAM - 1;
    for (size_t cut = 0; cut <= n; cut++) {
        events e = { "", 0 };
        dl_sse *p = dl_sse_new(64, log_event, &e);
        assert_int_equal(dl_sse_feed(p, SSE_STREAM, cut), 0);
        assert_int_equal(dl_sse_feed(p, SSE_STREAM + cut, n - cut), 0);
        assert_true(dl_sse_finish(p));   /* "never finished" was pending */
        dl_sse_free(p);
        if (strcmp(e.log, SSE_WANT))
            fail_msg("split at %zu: %s", cut, e.log);
    }
    events e = { "", 0 };
    dl_sse *p = dl_sse_new(64, log_event, &e);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(dl_sse_feed(p, SSE_STREAM + i, 1), 0);
    dl_sse_free(p);
    assert_string_equal(e.log, SSE_WANT);
}

static void test_sse_too_long(void **state)
{
    (void)state;
    char line[100];
    memset(line, 'x', sizeof line);
    for (size_t step = 1; step <= sizeof line; step *= 3) {
        events e = { "", 0 };
        dl_sse *p = dl_sse_new(32, log_event, &e);
        assert_int_equal(dl_sse_feed(p, "data: ok\n\n", 10), 0);
        int rc = 0;
        for (size_t i = 0; i < sizeof line && !rc; i += step)
            rc = dl_sse_feed(p, line + i, i + step <= sizeof line ? step : sizeof line - i);
        assert_int_equal(rc, DL_SSE_TOO_LONG);
        assert_int_equal(dl_sse_feed(p, "\n\n", 2), DL_SSE_TOO_LONG);   /* stays stopped */
        assert_int_equal(e.n, 1);
        dl_sse_free(p);
    }
    /* many short data lines cannot add up to an unbounded event either */
    events e = { "", 0 };
    dl_sse *p = dl_sse_new(32, log_event, &e);
    int rc = 0;
    for (int i = 0; i < 100 && !rc; i++)
        rc = dl_sse_feed(p, "data: 0123456789\n", 17);
    assert_int_equal(rc, DL_SSE_TOO_LONG);
    dl_sse_free(p);
}

/* ---- endpoints.conf and references ---- */

static void write_conf(const char *text)
{
    assert_int_equal(dlsrv_write_text(conf_path, text), 0);
}

static void test_conf_parse(void **state)
{
    (void)state;
    write_conf("# endpoints\n\n[gpubox]\nurl = http://gpubox:8000/v1\nkey_env = GPU_KEY\n"
               "model = meta-llama/Llama-3.3-70B-Instruct\n  ; indented comment\n"
               "[local]\n  url=http://localhost:8080/v1  \n");
    dl_endpoint *l;
    size_t n;
    char err[512];
    assert_int_equal(dl_endpoints_load(conf_path, &l, &n, err, sizeof err), DL_OK);
    assert_int_equal(n, 2);
    assert_string_equal(l[0].name, "gpubox");
    assert_string_equal(l[0].url, "http://gpubox:8000/v1");
    assert_string_equal(l[0].key_env, "GPU_KEY");
    assert_string_equal(l[0].model, "meta-llama/Llama-3.3-70B-Instruct");
    assert_int_equal(l[0].line, 3);
    assert_string_equal(l[1].url, "http://localhost:8080/v1");
    assert_null(l[1].key_env);
    assert_null(l[1].model);
    dl_endpoints_free(l, n);
}

static void test_conf_errors(void **state)
{
    (void)state;
    static const struct { const char *text, *want; } cases[] = {
        { "url = http://x/v1\n", ":1: 'url' is outside any [endpoint] section" },
        { "[a]\nurl = http://x/v1\nurl = http://y/v1\n", ":3: 'url' is given twice in [a]" },
        { "[a]\nurl = http://x/v1\n[a]\nurl = http://y/v1\n", ":3: endpoint [a] is defined "
                                                              "twice (first on line 1)" },
        { "[a]\nurl = http://x/v1\nkey_env = sk-live-123\n", ":3: key_env names the "
                                                              "environment variable" },
        { "[a]\nurl = http://x/v1\nkey = sk-live-123\n", ":3: keys do not belong in this file" },
        { "[a]\nurl = http://x/v1\ncolour = blue\n", ":3: unknown key 'colour'" },
        { "[a]\nurl = ftp://x/v1\n", ":2: url must start with http:// or https://" },
        { "\n\n[a]\nmodel = m\n", ":3: endpoint [a] has no url" },
        { "[a b]\nurl = http://x\n", ":1: endpoint name 'a b'" },
        { "[a\nurl = http://x\n", ":1: a section header is [NAME]" },
        { "[a]\nurl http://x\n", ":2: expected 'key = value'" },
        { "[a]\nurl =\n", ":2: 'url' has no value" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_conf(cases[i].text);
        dl_endpoint *l = (dl_endpoint *)1;
        size_t n = 9;
        char err[512] = "";
        assert_int_equal(dl_endpoints_load(conf_path, &l, &n, err, sizeof err), DL_ERR_ARG);
        assert_null(l);
        assert_int_equal(n, 0);
        if (strncmp(err, conf_path, strlen(conf_path)) || !strstr(err, cases[i].want))
            fail_msg("case %zu: '%s' does not say '%s'", i, err, cases[i].want);
    }
    char err[512];
    dl_endpoint *l;
    size_t n;
    unlink(conf_path);
    assert_int_equal(dl_endpoints_load(conf_path, &l, &n, err, sizeof err), DL_ERR_NOT_FOUND);
}

static void test_ref_forms(void **state)
{
    (void)state;
    assert_true(dl_remote_is_ref("http://gpubox:8000/v1#meta-llama/Llama-3.3-70B-Instruct"));
    assert_true(dl_remote_is_ref("@gpubox"));
    assert_false(dl_remote_is_ref("https://h.example/x/y.gguf"));
    assert_false(dl_remote_is_ref("qwen2.5:0.5b"));
    dl_remote *r;
    setenv("OPENAI_API_KEY", KEY, 1);
    assert_int_equal(dl_remote_open("http://user:pw@gpubox:8000/v1/#meta-llama/Llama-3.3-70B",
                                    NULL, &r), DL_OK);
    assert_string_equal(dl_remote_model(r), "meta-llama/Llama-3.3-70B");
    assert_string_equal(dl_remote_base_url(r), "http://gpubox:8000/v1");   /* no user:pw */
    assert_string_equal(dl_remote_host(r), "gpubox:8000");
    assert_string_equal(dl_remote_key_env(r), "OPENAI_API_KEY");
    dl_remote_close(r);
    unsetenv("OPENAI_API_KEY");
    assert_int_equal(dl_remote_open("http://localhost:11434/v1", NULL, &r), DL_OK);
    assert_null(dl_remote_model(r));
    assert_string_equal(dl_remote_host(r), "localhost:11434");
    dl_remote_close(r);
    assert_int_equal(dl_remote_open("http://localhost:8080/v1#", NULL, &r), DL_ERR_ARG);
    assert_msg(r, "no model after '#'");
    dl_remote_close(r);

    write_conf("[gpubox]\nurl = http://gpubox:8000/v1\nkey_env = GPU_KEY\nmodel = big\n"
               "[ollama]\nurl = http://localhost:11434/v1\n");
    dl_remote_opts o = { .conf_path = conf_path };
    assert_int_equal(dl_remote_open("@gpubox", &o, &r), DL_OK);
    assert_string_equal(dl_remote_model(r), "big");
    assert_string_equal(dl_remote_key_env(r), "GPU_KEY");
    dl_remote_close(r);
    assert_int_equal(dl_remote_open("@gpubox/org/other-model", &o, &r), DL_OK);
    assert_string_equal(dl_remote_model(r), "org/other-model");
    dl_remote_close(r);
    assert_int_equal(dl_remote_open("@nope/x", &o, &r), DL_ERR_NOT_FOUND);
    assert_msg(r, "no endpoint [nope]");
    assert_msg(r, "@gpubox, @ollama");
    dl_remote_close(r);
    write_conf("[gpubox]\nurl = http://gpubox:8000/v1\nkey = sk-oops\n");
    assert_int_equal(dl_remote_open("@gpubox", &o, &r), DL_ERR_ARG);
    assert_msg(r, ":3: keys do not belong");
    dl_remote_close(r);
    unlink(conf_path);
    assert_int_equal(dl_remote_open("@gpubox", &o, &r), DL_ERR_NOT_FOUND);
    assert_msg(r, "no endpoints file");
    dl_remote_close(r);
    /* the default place: $XDG_CONFIG_HOME/sizeup/endpoints.conf */
    char dir[200], path[300];
    snprintf(dir, sizeof dir, "%s/xdg/sizeup", srv_dir);
    snprintf(path, sizeof path, "%s/endpoints.conf", dir);
    char xdg[200];
    snprintf(xdg, sizeof xdg, "%s/xdg", srv_dir);
    assert_int_equal(mkdir(xdg, 0700), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(dlsrv_write_text(path, "[x]\nurl = http://127.0.0.1:1/v1\n"), 0);
    snprintf(dir, sizeof dir, "%s/xdg", srv_dir);
    setenv("XDG_CONFIG_HOME", dir, 1);
    assert_int_equal(dl_remote_open("@x/m", NULL, &r), DL_OK);
    assert_string_equal(dl_remote_host(r), "127.0.0.1:1");
    dl_remote_close(r);
    unsetenv("XDG_CONFIG_HOME");
}

/* ---- streaming: the happy paths ---- */

static void test_chat_vllm(void **state)
{
    (void)state;
    rec_clear();
    dl_remote *r = open_ref("http://127.0.0.1:%d/v1#test-model", NULL);
    got g = { 0 };
    dl_remote_request q = { 0 };
    q.mode = DL_REMOTE_CHAT;
    q.msgs = HISTORY;
    q.n_msgs = 4;
    q.sampling = (dl_remote_sampling){ 0.5, 0.9, 40, 0.05, 1.1, 64, true, 42 };
    const char *stops[] = { "</s>" };
    q.stop = stops;
    q.n_stop = 1;
    dl_remote_finish why;
    assert_int_equal(dl_remote_generate(r, &q, on_token, &g, &why), DL_OK);
    assert_int_equal(why, DL_REMOTE_FINISH_STOP);
    /* a served and a local model's stops read the same in run, chat and compare */
    assert_string_equal(dl_remote_finish_str(DL_REMOTE_FINISH_LENGTH),
                        eng_stop_reason_str(ENG_STOP_MAX_TOKENS));
    assert_string_equal(dl_remote_finish_str(DL_REMOTE_FINISH_CANCELLED),
                        eng_stop_reason_str(ENG_STOP_CANCELLED));
    assert_string_equal(g.answer, FULL);
    assert_string_equal(dl_remote_answer(r), FULL);
    assert_int_equal(g.n_answer, 6);        /* one call per chunk, as they arrive */
    dl_remote_stats st;
    dl_remote_stats_get(r, &st);
    assert_int_equal(st.n_gen, 7);          /* usage.completion_tokens, not the 6 chunks */
    assert_false(st.gen_approx);
    assert_int_equal(st.n_prompt, 11);
    assert_true(st.ttft_ms > 0 && st.gen_ms >= 0 && st.total_ms >= st.ttft_ms);
    assert_false(st.partial);
    assert_false(st.has_timings);
    assert_true(st.kv_usage == 0.25);       /* vllm:gpu_cache_usage_perc from /metrics */
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", srv_port);
    assert_string_equal(st.host, host);
    /* what went over the wire, under the API's names */
    json_t *rec = rec_read();
    json_t *post = NULL;
    for (size_t i = 0; i < json_array_size(rec); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(rec, i), "method")),
                    "POST"))
            post = json_object_get(json_array_get(rec, i), "body");
    assert_non_null(post);
    assert_string_equal(json_string_value(json_object_get(post, "model")), "test-model");
    assert_true(json_is_true(json_object_get(post, "stream")));
    assert_true(json_is_true(json_object_get(json_object_get(post, "stream_options"),
                                             "include_usage")));
    json_t *msgs = json_object_get(post, "messages");
    assert_int_equal(json_array_size(msgs), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")),
                        "system");
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 3),
                                                          "content")), "Say hello again");
    assert_true(json_number_value(json_object_get(post, "temperature")) == 0.5);
    assert_true(json_number_value(json_object_get(post, "top_p")) == 0.9);
    assert_int_equal(json_integer_value(json_object_get(post, "top_k")), 40);
    assert_true(json_number_value(json_object_get(post, "min_p")) == 0.05);
    assert_true(json_number_value(json_object_get(post, "repeat_penalty")) == 1.1);
    assert_int_equal(json_integer_value(json_object_get(post, "max_tokens")), 64);
    assert_int_equal(json_integer_value(json_object_get(post, "seed")), 42);
    assert_string_equal(json_string_value(json_array_get(json_object_get(post, "stop"), 0)),
                        "</s>");
    json_decref(rec);
    /* unset settings are not sent: the server's defaults apply */
    rec_clear();
    memset(&g, 0, sizeof g);
    assert_int_equal(chat(r, &g, &why), DL_OK);
    rec = rec_read();
    for (size_t i = 0; i < json_array_size(rec); i++) {
        json_t *b = json_object_get(json_array_get(rec, i), "body");
        assert_null(json_object_get(b, "temperature"));
        assert_null(json_object_get(b, "seed"));
        assert_null(json_object_get(b, "top_k"));
    }
    json_decref(rec);
    /* the listing tells the kind */
    dl_remote_model_info *l;
    size_t n;
    assert_int_equal(dl_remote_models(r, &l, &n), DL_OK);
    assert_int_equal(n, 3);
    assert_string_equal(l[2].id, "other/model-70B");
    assert_int_equal(l[0].max_model_len, 4096);
    dl_remote_models_free(l, n);
    assert_string_equal(dl_remote_server_kind(r), "vLLM");
    dl_remote_close(r);
}

static void test_llamacpp_timings(void **state)
{
    (void)state;
    dl_remote *r = open_ref("http://127.0.0.1:%d/llamacpp/v1#test-model", NULL);
    got g = { 0 };
    dl_remote_finish why;
    assert_int_equal(chat(r, &g, &why), DL_OK);
    assert_string_equal(g.answer, FULL);
    dl_remote_stats st;
    dl_remote_stats_get(r, &st);
    assert_true(st.has_timings);
    assert_int_equal(st.srv_n_prompt, 11);
    assert_int_equal(st.srv_n_gen, 6);
    assert_true(st.srv_gen_tps == 500.0 && st.srv_prompt_ms == 5.5);
    assert_true(st.kv_usage == 0.5);        /* llamacpp:kv_cache_usage_ratio */
    assert_string_equal(st.server, "llama-server");
    dl_remote_close(r);
}

static void test_ollama_counted(void **state)
{
    (void)state;
    dl_remote *r = open_ref("http://127.0.0.1:%d/ollama/v1#test-model", NULL);
    got g = { 0 };
    dl_remote_finish why;
    assert_int_equal(chat(r, &g, &why), DL_OK);
    assert_string_equal(g.answer, FULL);
    dl_remote_stats st;
    dl_remote_stats_get(r, &st);
    assert_true(st.gen_approx);              /* no usage: counted chunks, shown "~" */
    assert_int_equal(st.n_gen, 6);
    assert_int_equal(st.n_prompt, 0);
    assert_true(st.kv_usage < 0);            /* no /metrics: none, not guessed */
    dl_remote_model_info *l;
    size_t n;
    assert_int_equal(dl_remote_models(r, &l, &n), DL_OK);
    dl_remote_models_free(l, n);
    assert_string_equal(dl_remote_server_kind(r), "Ollama");
    dl_remote_close(r);
}

static void test_reasoning_apart(void **state)
{
    (void)state;
    dl_remote *r = open_ref("http://127.0.0.1:%d/v1#reasoner", NULL);
    got g = { 0 };
    dl_remote_finish why;
    assert_int_equal(chat(r, &g, &why), DL_OK);
    assert_string_equal(g.reasoning, "Let me think. The user greets.");
    assert_string_equal(g.answer, FULL);
    assert_string_equal(dl_remote_reasoning(r), "Let me think. The user greets.");
    assert_string_equal(dl_remote_answer(r), FULL);
    dl_remote_close(r);
}

/* "\u0000" is valid JSON: the answer goes on without the NULs instead of failing. */
static void test_nul_in_stream(void **state)
{
    (void)state;
    dl_remote *r = open_ref("http://127.0.0.1:%d/v1#nul", NULL);
    got g = { 0 };
    dl_remote_finish why;
    dl_status st = chat(r, &g, &why);
    if (st)
        fail_msg("nul: %s", dl_remote_errmsg(r));
    assert_int_equal(why, DL_REMOTE_FINISH_STOP);
    assert_string_equal(g.answer, "Hello world.");
    assert_string_equal(g.reasoning, "think");
    assert_string_equal(dl_remote_answer(r), "Hello world.");
    assert_string_equal(dl_remote_reasoning(r), "think");
    dl_remote_stats stats;
    dl_remote_stats_get(r, &stats);
    assert_int_equal(stats.answer_len, strlen("Hello world."));
    dl_remote_close(r);
}

static void test_completion_mode(void **state)
{
    (void)state;
    rec_clear();
    dl_remote *r = open_ref("http://127.0.0.1:%d/v1#test-model", NULL);
    got g = { 0 };
    dl_remote_request q = { 0 };
    q.mode = DL_REMOTE_COMPLETION;
    q.prompt = "Once upon a time";
    q.sampling = dl_remote_sampling_unset();
    dl_remote_finish why;
    assert_int_equal(dl_remote_generate(r, &q, on_token, &g, &why), DL_OK);
    assert_string_equal(g.answer, FULL);
    json_t *rec = rec_read();
    json_t *first = json_array_get(rec, 0);
    assert_string_equal(json_string_value(json_object_get(first, "path")), "/v1/completions");
    assert_string_equal(json_string_value(json_object_get(json_object_get(first, "body"),
                                                          "prompt")), "Once upon a time");
    json_decref(rec);
    dl_remote_close(r);
}

/* CRLF, lone CR, comments and keep-alives, multi-line data: one answer. */
static void test_stream_dialects(void **state)
{
    (void)state;
    const char *modes[] = { "crlf", "cr", "keepalive", "multiline" };
    for (size_t i = 0; i < 4; i++) {
        char ref[128];
        snprintf(ref, sizeof ref, "http://127.0.0.1:%%d/v1#%s", modes[i]);
        dl_remote *r = open_ref(ref, NULL);
        got g = { 0 };
        dl_remote_finish why;
        if (chat(r, &g, &why) != DL_OK)
            fail_msg("%s: %s", modes[i], dl_remote_errmsg(r));
        if (strcmp(g.answer, FULL))
            fail_msg("%s: answer '%s'", modes[i], g.answer);
        dl_remote_close(r);
    }
}

/* ---- faults: each a message, the partial answer kept ---- */

static void expect_fault(const char *model, dl_remote_opts *o, dl_status want_st,
                         const char *want_msg, const char *want_partial)
{
    char ref[128];
    snprintf(ref, sizeof ref, "http://127.0.0.1:%%d/v1#%s", model);
    dl_remote *r = open_ref(ref, o);
    got g = { 0 };
    dl_remote_finish why;
    dl_status st = chat(r, &g, &why);
    if (st != want_st)
        fail_msg("%s: status %d, want %d (%s)", model, st, want_st, dl_remote_errmsg(r));
    assert_msg(r, want_msg);
    assert_int_equal(why, DL_REMOTE_FINISH_NONE);
    assert_string_equal(dl_remote_answer(r), want_partial);
    assert_string_equal(g.answer, want_partial);
    dl_remote_stats stats;
    dl_remote_stats_get(r, &stats);
    assert_int_equal(stats.partial, *want_partial != 0);
    if (*want_partial)
        assert_msg(r, "partial answer");
    dl_remote_close(r);
}

static void test_fault_cut(void **state)
{
    (void)state;
    expect_fault("cut", NULL, DL_ERR_NETWORK, "ended before the answer was complete",
                 "Hello from the");
    expect_fault("reset", NULL, DL_ERR_NETWORK, "cut mid-answer", "Hello from the");
}

static void test_fault_malformed(void **state)
{
    (void)state;
    expect_fault("badjson", NULL, DL_ERR_FORMAT, "malformed JSON in the stream from 127.0.0.1",
                 "Hello from");
    expect_fault("longline", NULL, DL_ERR_FORMAT, "is longer than 1048576 bytes: refused",
                 "Hello from");
    expect_fault("midstream-error", NULL, DL_ERR_NETWORK,
                 "reported an error mid-answer: CUDA out of memory", "Hello from");
}

static void test_fault_stall(void **state)
{
    (void)state;
    dl_remote_opts o = { .read_timeout_s = 1 };
    double t0 = now_ms();
    expect_fault("stall", &o, DL_ERR_NETWORK, "stalled: nothing received for 1 s (read timeout)",
                 "Hello from");
    assert_true(now_ms() - t0 < 5000);
}

static void test_fault_http(void **state)
{
    (void)state;
    expect_fault("err500", NULL, DL_ERR_NETWORK, "HTTP 500 (server error) from 127.0.0.1", "");
    expect_fault("err500", NULL, DL_ERR_NETWORK, "test refusal 500", "");
    expect_fault("err400", NULL, DL_ERR_HTTP, "HTTP 400 from 127.0.0.1", "");
    expect_fault("nope", NULL, DL_ERR_NOT_FOUND,
                 "model 'nope' is not served by 127.0.0.1", "");
    expect_fault("nope", NULL, DL_ERR_NOT_FOUND, "it serves: test-model, reasoner, "
                 "other/model-70B", "");
    unsetenv("OPENAI_API_KEY");
    expect_fault("err401", NULL, DL_ERR_HTTP, "no key was sent; set the environment variable "
                 "OPENAI_API_KEY", "");
    setenv("OPENAI_API_KEY", KEY, 1);
    expect_fault("err403", NULL, DL_ERR_HTTP, "HTTP 403 from 127.0.0.1", "");
    expect_fault("err403", NULL, DL_ERR_HTTP, "the key in $OPENAI_API_KEY was refused", "");
    unsetenv("OPENAI_API_KEY");
}

/* No control character, C1 included, and no invalid UTF-8 in a message from a server's words. */
static void assert_inert(const char *m)
{
    for (const unsigned char *p = (const unsigned char *)m; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0))
            fail_msg("message '%s' holds control byte 0x%02x at %zu", m, *p,
                     (size_t)(p - (const unsigned char *)m));
}

static void test_hostile_server_words(void **state)
{
    (void)state;
    expect_fault("err500c1", NULL, DL_ERR_NETWORK, "bad ?[2J ?31m ?]0;pwned? end", "");
    dl_remote *r = open_ref("http://127.0.0.1:%d/evil/v1#nonexist", NULL);
    got g = { 0 };
    dl_remote_finish why;
    assert_int_equal(chat(r, &g, &why), DL_ERR_NOT_FOUND);
    assert_msg(r, "it serves: good, evil?[2J?31m?]0;pwned?");
    assert_inert(dl_remote_errmsg(r));
    dl_remote_close(r);

    char t[] = "a\x1b[2J\xc2\x9b" "1m\xe2\x80\xae" "b\xe2\x81\xa9\xff\xc3\xa9\xe2\x82\xac\xf0\x9f\x98";
    dl_remote_printable(t);
    assert_string_equal(t, "a?[2J?1m?b??\xc3\xa9\xe2\x82\xac???");
}

/* A refused key through a named endpoint: the message names the variable, never the key,
 * even though this server echoes the Authorization header it refused. */
static void test_fault_auth_named(void **state)
{
    (void)state;
    char text[256];
    snprintf(text, sizeof text, "[box]\nurl = http://127.0.0.1:%d/auth/v1\nkey_env = WRONG_KEY\n"
             "model = test-model\n", srv_port);
    write_conf(text);
    setenv("WRONG_KEY", "sk-not-the-right-one-0123456789", 1);
    dl_remote_opts o = { .conf_path = conf_path };
    dl_remote *r;
    assert_int_equal(dl_remote_open("@box", &o, &r), DL_OK);
    got g = { 0 };
    dl_remote_finish why;
    assert_int_equal(chat(r, &g, &why), DL_ERR_HTTP);
    assert_msg(r, "HTTP 401 from 127.0.0.1");
    assert_msg(r, "the key in $WRONG_KEY was refused");
    assert_null(strstr(dl_remote_errmsg(r), "sk-not-the-right-one"));
    assert_non_null(strstr(dl_remote_errmsg(r), "Bearer ****"));
    dl_remote_close(r);
    unsetenv("WRONG_KEY");
    assert_int_equal(dl_remote_open("@box", &o, &r), DL_OK);
    assert_int_equal(chat(r, &g, &why), DL_ERR_HTTP);
    assert_msg(r, "no key was sent; set the environment variable WRONG_KEY");
    dl_remote_close(r);
}

static void test_fault_busy(void **state)
{
    (void)state;
    /* 429 twice with Retry-After: 1, then an answer; each wait said through the callback */
    dl_remote *r = open_ref("http://127.0.0.1:%d/v1#busy429-2", NULL);
    got g = { 0 };
    dl_remote_finish why;
    double t0 = now_ms();
    if (chat(r, &g, &why) != DL_OK)
        fail_msg("%s", dl_remote_errmsg(r));
    assert_true(now_ms() - t0 >= 1900);
    assert_string_equal(g.answer, FULL);
    assert_int_equal(g.n_status, 2);
    assert_non_null(strstr(g.status, "HTTP 429 from 127.0.0.1"));
    assert_non_null(strstr(g.status, "waiting 1 s as its Retry-After says, then retry 2 of 3"));
    dl_remote_stats st;
    dl_remote_stats_get(r, &st);
    assert_int_equal(st.retries, 2);
    dl_remote_close(r);
    /* bounded: 503 more often than the retries allow */
    dl_remote_opts o = { .max_retries = 1 };
    expect_fault("busy503-5", &o, DL_ERR_NETWORK, "HTTP 503 from 127.0.0.1", "");
    expect_fault("busy503-5", &o, DL_ERR_NETWORK, "(busy): gave up after 1 retry", "");
    /* a wait longer than sizeup's limit is not taken */
    t0 = now_ms();
    expect_fault("busy429-long", NULL, DL_ERR_NETWORK, "asks to wait 3600 s (Retry-After), "
                 "longer than the 30 s sizeup waits", "");
    assert_true(now_ms() - t0 < 1000);
}

static void *cancel_later(void *arg)
{
    dlsrv_sleep_ms(300);
    dl_remote_cancel(arg);
    return NULL;
}

/* The Retry-After wait is itself cancellable. */
static void test_cancel_busy_wait(void **state)
{
    (void)state;
    dl_remote *r = open_ref("http://127.0.0.1:%d/v1#busy503-99", NULL);
    got g = { 0 };
    dl_remote_finish why;
    pthread_t t;
    pthread_create(&t, NULL, cancel_later, r);
    double t0 = now_ms();
    assert_int_equal(chat(r, &g, &why), DL_OK);
    pthread_join(t, NULL);
    assert_int_equal(why, DL_REMOTE_FINISH_CANCELLED);
    assert_true(now_ms() - t0 < 800);
    dl_remote_close(r);
}

typedef struct canceller {
    dl_remote *r;
    atomic_int *pieces;
    double t_cancel;
} canceller;

static bool count_piece(void *user, dl_remote_part part, const char *text, size_t len,
                        const dl_remote_stats *st)
{
    (void)part; (void)text; (void)len; (void)st;
    atomic_fetch_add((atomic_int *)user, 1);
    return true;
}

static void *cancel_after_pieces(void *arg)
{
    canceller *c = arg;
    while (atomic_load(c->pieces) < 2)
        dlsrv_sleep_ms(5);
    dlsrv_sleep_ms(150);
    c->t_cancel = now_ms();
    dl_remote_cancel(c->r);
    return NULL;
}

/* Stop from another thread (the TUI's Esc): back within 100 ms, the partial answer kept. Once
 * while chunks flow (slow) and once while the server is silent (stall), where only the poll
 * interval, not a byte from the server, can notice. */
static void test_cancel_within_100ms(void **state)
{
    (void)state;
    const char *models[] = { "slow", "stall" };
    for (int i = 0; i < 2; i++) {
        char ref[128];
        snprintf(ref, sizeof ref, "http://127.0.0.1:%%d/v1#%s", models[i]);
        dl_remote *r = open_ref(ref, NULL);
        atomic_int pieces = 0;
        canceller c = { r, &pieces, 0 };
        pthread_t t;
        pthread_create(&t, NULL, cancel_after_pieces, &c);
        dl_remote_request q = { .mode = DL_REMOTE_CHAT, .msgs = HISTORY, .n_msgs = 2,
                                .sampling = dl_remote_sampling_unset() };
        dl_remote_finish why;
        assert_int_equal(dl_remote_generate(r, &q, count_piece, &pieces, &why), DL_OK);
        double t_back = now_ms();
        pthread_join(t, NULL);
        assert_int_equal(why, DL_REMOTE_FINISH_CANCELLED);
        if (t_back - c.t_cancel >= 100)
            fail_msg("%s: back %.0f ms after the cancel", models[i], t_back - c.t_cancel);
        dl_remote_stats st;
        dl_remote_stats_get(r, &st);
        assert_true(st.partial);
        assert_true(strlen(dl_remote_answer(r)) > 0);
        assert_int_equal(strlen(dl_remote_answer(r)), st.answer_len);
        dl_remote_close(r);
    }
    /* the callback returning false stops it too */
    dl_remote *r = open_ref("http://127.0.0.1:%d/v1#slow", NULL);
    got g = { .stop_after = 3 };
    dl_remote_finish why;
    assert_int_equal(chat(r, &g, &why), DL_OK);
    assert_int_equal(why, DL_REMOTE_FINISH_CANCELLED);
    assert_string_equal(dl_remote_answer(r), "w0 w1 w2 ");
    dl_remote_close(r);
}

static void test_fault_offline(void **state)
{
    (void)state;
    int port = dlsrv_free_port();
    char ref[128];
    snprintf(ref, sizeof ref, "http://127.0.0.1:%d/v1#m", port);
    dl_remote *r;
    assert_int_equal(dl_remote_open(ref, NULL, &r), DL_OK);
    got g = { 0 };
    dl_remote_finish why;
    assert_int_equal(chat(r, &g, &why), DL_ERR_OFFLINE);
    assert_msg(r, "cannot connect to 127.0.0.1:");
    assert_msg(r, "is the server running");
    dl_remote_model_info *l;
    size_t n;
    assert_int_equal(dl_remote_models(r, &l, &n), DL_ERR_OFFLINE);
    dl_remote_close(r);
    /* DNS: a label longer than 63 bytes fails inside the resolver library, so no query
     * leaves the machine */
    char host[80];
    memset(host, 'a', 70);
    host[70] = 0;
    snprintf(ref, sizeof ref, "http://%s.invalid/v1#m", host);
    assert_int_equal(dl_remote_open(ref, NULL, &r), DL_OK);
    assert_int_equal(chat(r, &g, &why), DL_ERR_OFFLINE);
    assert_msg(r, "cannot resolve");
    assert_msg(r, "(DNS)");
    dl_remote_close(r);
}

/* HTTPS against nginx with a fresh test CA: refused without the CA, fine with it. The listing
 * is a static file there, which is all /v1/models needs to be. */
static void test_tls(void **state)
{
    (void)state;
    dlsrv_nginx s;
    assert_int_equal(dlsrv_nginx_start(&s, "", true), 0);
    const char *list = "{\"object\":\"list\",\"data\":[{\"id\":\"tls-model\","
                       "\"owned_by\":\"vllm\"}]}";
    assert_int_equal(dlsrv_nginx_put(&s, "v1/models", list, strlen(list)), 0);
    char ref[200];
    snprintf(ref, sizeof ref, "https://127.0.0.1:%d/v1", s.port);
    unsetenv("CURL_CA_BUNDLE");
    dl_remote *r;
    assert_int_equal(dl_remote_open(ref, NULL, &r), DL_OK);
    dl_remote_model_info *l;
    size_t n;
    assert_int_equal(dl_remote_models(r, &l, &n), DL_ERR_TLS);
    assert_msg(r, "TLS failure with 127.0.0.1");
    assert_msg(r, "--cacert");
    dl_remote_close(r);
    dl_remote_opts o = { .cacert = s.ca_pem };
    assert_int_equal(dl_remote_open(ref, &o, &r), DL_OK);
    assert_int_equal(dl_remote_models(r, &l, &n), DL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(l[0].id, "tls-model");
    dl_remote_models_free(l, n);
    dl_remote_close(r);
    dlsrv_nginx_stop(&s);
}

/* ---- the key goes to its own host only ---- */

static void test_key_not_sent_cross_host(void **state)
{
    (void)state;
    char text[300];
    snprintf(text, sizeof text, "[box]\nurl = http://127.0.0.1:%d/auth/v1\nkey_env = %s\n",
             srv_port, KEY_VAR);
    write_conf(text);
    dl_remote_opts o = { .conf_path = conf_path };
    dl_remote *r;
    /* same host: the key follows the redirect, and the answer comes */
    rec_clear();
    assert_int_equal(dl_remote_open("@box/redirect-same", &o, &r), DL_OK);
    got g = { 0 };
    dl_remote_finish why;
    assert_int_equal(chat(r, &g, &why), DL_OK);
    assert_string_equal(g.answer, FULL);
    dl_remote_close(r);
    json_t *rec = rec_read();
    assert_true(json_array_size(rec) >= 2);   /* the POST, its redirect, maybe /metrics */
    for (size_t i = 0; i < json_array_size(rec); i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(rec, i), "auth")),
                            "Bearer " KEY);
    json_decref(rec);
    /* another host (127.0.0.2): followed, but without the key, and the refusal says why */
    rec_clear();
    assert_int_equal(dl_remote_open("@box/redirect", &o, &r), DL_OK);
    memset(&g, 0, sizeof g);
    assert_int_equal(chat(r, &g, &why), DL_ERR_HTTP);
    assert_msg(r, "HTTP 401 from 127.0.0.2:");
    assert_msg(r, "the key is not sent to another host");
    dl_remote_close(r);
    rec = rec_read();
    int first = 0, second = 0;
    for (size_t i = 0; i < json_array_size(rec); i++) {
        json_t *e = json_array_get(rec, i);
        const char *host = json_string_value(json_object_get(e, "host"));
        const char *auth = json_string_value(json_object_get(e, "auth"));
        if (!strcmp(host, "127.0.0.1")) {
            first++;
            assert_string_equal(auth, "Bearer " KEY);
        } else {
            second++;
            assert_null(auth);
        }
    }
    assert_int_equal(first, 1);
    assert_true(second >= 1);
    json_decref(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_split_every_byte),
        cmocka_unit_test(test_sse_too_long),
        cmocka_unit_test(test_conf_parse),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_ref_forms),
        cmocka_unit_test(test_chat_vllm),
        cmocka_unit_test(test_llamacpp_timings),
        cmocka_unit_test(test_ollama_counted),
        cmocka_unit_test(test_reasoning_apart),
        cmocka_unit_test(test_nul_in_stream),
        cmocka_unit_test(test_hostile_server_words),
        cmocka_unit_test(test_completion_mode),
        cmocka_unit_test(test_stream_dialects),
        cmocka_unit_test(test_fault_cut),
        cmocka_unit_test(test_fault_malformed),
        cmocka_unit_test(test_fault_stall),
        cmocka_unit_test(test_fault_http),
        cmocka_unit_test(test_fault_auth_named),
        cmocka_unit_test(test_fault_busy),
        cmocka_unit_test(test_cancel_busy_wait),
        cmocka_unit_test(test_cancel_within_100ms),
        cmocka_unit_test(test_fault_offline),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_key_not_sent_cross_host),
    };
    return cmocka_run_group_tests(tests, srv_start, srv_stop);
}
