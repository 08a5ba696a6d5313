/* Sessions and the commands built on them: bad models refused by name, the context filling up
 * (error, stop, or shift), stop strings, cancel, seeded sampling, and `sizeup run` / `sizeup
 * logits` as a user sees them. */
#include "tests/testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <unistd.h>

#include "engine/engine.h"

static char tmpdir[] = "/tmp/sizeup-test-session-XXXXXX";

/* A copy of stories260K with one change: an architecture name, a dropped tensor, or a tensor
 * with its two dimensions swapped. */
static const char *variant(const char *arch, const char *drop, const char *swap)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/variant.gguf", tmpdir);
    gguf_file *f;
    char err[512];
    assert_int_equal(gguf_open(fixture_path("models/stories260K.gguf"), &f, err, sizeof err), GGUF_OK);
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_kv_count(f); i++)
        gguf_writer_copy_kv(w, f, i);
    if (arch)
        gguf_writer_set_str(w, "general.architecture", arch);
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (drop && !strcmp(name, drop))
            continue;
        uint64_t ne[4] = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] };
        if (swap && !strcmp(name, swap)) {
            ne[0] = t->ne[1];
            ne[1] = t->ne[0];
        }
        assert_int_equal(gguf_writer_add_tensor(w, name, t->type, t->n_dims, ne, t->data), GGUF_OK);
    }
    assert_int_equal(gguf_writer_write(w, path), GGUF_OK);
    gguf_writer_free(w);
    gguf_close(f);
    return path;
}

static void expect_refused(const char *path, eng_status want, const char *needle)
{
    eng_model *m = (eng_model *)1;
    char err[512] = "";
    assert_int_equal(eng_model_open(path, &m, err, sizeof err), want);
    assert_null(m);
    if (!strstr(err, needle))
        fail_msg("message \"%s\" does not name \"%s\"", err, needle);
}

static void test_bad_models(void **state)
{
    /* the same keys under another architecture: the arch-prefixed keys go missing too, but the
     * architecture is what the message must name */
    expect_refused(variant("mamba", NULL, NULL), ENG_ERR_UNSUPPORTED, "'mamba'");
    expect_refused(variant(NULL, "blk.0.attn_q.weight", NULL), ENG_ERR_FORMAT, "blk.0.attn_q.weight");
    expect_refused(variant(NULL, "output_norm.weight", NULL), ENG_ERR_FORMAT, "output_norm.weight");
    expect_refused(variant(NULL, NULL, "blk.3.ffn_up.weight"), ENG_ERR_FORMAT, "blk.3.ffn_up.weight");
    expect_refused("/nonexistent/model.gguf", ENG_ERR_IO, "/nonexistent/model.gguf");
    expect_refused(fixture_path("vocab/ggml-vocab-llama-spm.gguf"), ENG_ERR_FORMAT, "token_embd.weight");
}

typedef struct acc {
    char text[8192];
    size_t len;
    int32_t ids[4096];
    size_t n;
    size_t stop_after; /* return false after this many tokens (0 = never) */
} acc;

static bool collect(void *user, int32_t token, const char *text, size_t len, const eng_stats *st)
{
    acc *a = user;
    if (token >= 0 && a->n < 4096)
        a->ids[a->n++] = token;
    if (a->len + len < sizeof a->text) {
        memcpy(a->text + a->len, text, len);
        a->len += len;
        a->text[a->len] = 0;
    }
    return !a->stop_after || a->n < a->stop_after;
}

static eng_session *story_session(eng_model **m, uint32_t n_ctx, float temp, uint64_t seed,
                                  bool shift)
{
    char err[512];
    if (!*m)
        assert_int_equal(eng_model_open(fixture_path("models/stories260K.gguf"), m, err, sizeof err), ENG_OK);
    eng_session_opts o = eng_session_defaults();
    o.backend = ENG_BACKEND_CPU;
    o.n_ctx = n_ctx;
    o.sampling.temperature = temp;
    o.sampling.seed = seed;
    o.context_shift = shift;
    o.n_keep = 1;
    eng_session *s;
    assert_int_equal(eng_session_new(*m, &o, &s, err, sizeof err), ENG_OK);
    int32_t prompt[] = { 1, 403, 407, 261, 378 }; /* <s> Once upon a time */
    assert_int_equal(eng_session_feed(s, prompt, 5), ENG_OK);
    return s;
}

static void test_context_limits(void **state)
{
    eng_model *m = NULL;
    eng_stop_reason why;
    /* a prompt longer than the context is refused and consumes nothing */
    eng_session *s = story_session(&m, 16, 0, 1, false);
    int32_t many[20] = { 0 };
    for (int i = 0; i < 20; i++)
        many[i] = 300 + i;
    assert_int_equal(eng_session_feed(s, many, 20), ENG_ERR_CONTEXT_FULL);
    assert_non_null(strstr(eng_session_errmsg(s), "do not fit"));
    /* generation stops when the context is full and shift is off */
    acc *a = calloc(1, sizeof *a);
    eng_generate_opts go = { 100, NULL, 0, NULL };
    assert_int_equal(eng_session_generate(s, &go, collect, a, &why), ENG_OK);
    assert_int_equal(why, ENG_STOP_CONTEXT_FULL);
    assert_int_equal(a->n, 16 - 5 + 1); /* 11 decoded after the prompt, then one that no longer fits */
    eng_session_free(s);
    /* with context shift on, generation runs past the context length */
    s = story_session(&m, 16, 0, 1, true);
    memset(a, 0, sizeof *a);
    go.max_tokens = 40;
    assert_int_equal(eng_session_generate(s, &go, collect, a, &why), ENG_OK);
    assert_int_equal(why, ENG_STOP_MAX_TOKENS);
    assert_int_equal(a->n, 40);
    eng_stats st;
    eng_session_stats(s, &st);
    assert_true(st.n_shifts >= 3);
    assert_true(st.n_past <= 16);
    eng_session_free(s);
    free(a);
    eng_model_close(m);
}

/* stories260K cut to its first layer. With one layer, a token's K and V depend only on the token
 * and its position, so after a context shift the cache must hold exactly what a fresh session
 * fed the kept tokens would hold (K re-roped to the new positions, V moved): the oracle for the
 * shift. With more layers, later tokens' K/V also carry what they saw of the dropped ones. */
static const char *one_layer_model(void)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/one-layer.gguf", tmpdir);
    gguf_file *f;
    char err[512];
    assert_int_equal(gguf_open(fixture_path("models/stories260K.gguf"), &f, err, sizeof err), GGUF_OK);
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_kv_count(f); i++)
        gguf_writer_copy_kv(w, f, i);
    assert_int_equal(gguf_writer_set_u32(w, "llama.block_count", 1), GGUF_OK);
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (!strncmp(name, "blk.", 4) && strncmp(name, "blk.0.", 6))
            continue;
        assert_int_equal(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data), GGUF_OK);
    }
    assert_int_equal(gguf_writer_write(w, path), GGUF_OK);
    gguf_writer_free(w);
    gguf_close(f);
    return path;
}

static eng_session *cpu_session(eng_model *m, uint32_t n_ctx, bool shift)
{
    eng_session_opts o = eng_session_defaults();
    o.backend = ENG_BACKEND_CPU;
    o.n_ctx = n_ctx;
    o.sampling.temperature = 0;
    o.context_shift = shift;
    o.n_keep = 1;
    eng_session *s;
    char err[512];
    assert_int_equal(eng_session_new(m, &o, &s, err, sizeof err), ENG_OK);
    return s;
}

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float d = 0;
    for (size_t i = 0; i < n; i++)
        d = fabsf(a[i] - b[i]) > d ? fabsf(a[i] - b[i]) : d;
    return d;
}

/* After a shift, the logits and the greedy tokens that follow equal those of a session that
 * never shifted and was fed only the kept tokens; and they differ clearly from a session that
 * kept everything, so the comparison can tell the two apart. */
static void test_context_shift_matches_fresh(void **state)
{
    eng_model *m = NULL;
    char err[512];
    assert_int_equal(eng_model_open(one_layer_model(), &m, err, sizeof err), ENG_OK);
    const size_t nv = 512;
    int32_t t[18];
    for (int i = 0; i < 18; i++) /* <s> then ordinary tokens, none repeated */
        t[i] = i ? 300 + 7 * i : 1;
    /* A: 16 tokens fill the context; the 17th shifts: keep t[0], drop t[1..7], keep t[8..15] */
    eng_session *a = cpu_session(m, 16, true);
    assert_int_equal(eng_session_feed(a, t, 16), ENG_OK);
    assert_int_equal(eng_session_feed(a, t + 16, 1), ENG_OK);
    eng_stats st;
    eng_session_stats(a, &st);
    assert_int_equal(st.n_shifts, 1);
    assert_int_equal(st.n_past, 10);
    float *la, *lb, *lc;
    assert_int_equal(eng_session_logits(a, t + 17, 1, false, &la), ENG_OK);
    /* B: never shifted, fed the kept tokens at the positions they have after the shift */
    int32_t kept[11] = { t[0] };
    memcpy(kept + 1, t + 8, 10 * sizeof *t);
    eng_session *b = cpu_session(m, 16, false);
    assert_int_equal(eng_session_logits(b, kept, 11, false, &lb), ENG_OK);
    /* C: never shifted, everything still in its context */
    eng_session *c = cpu_session(m, 32, false);
    assert_int_equal(eng_session_logits(c, t, 18, false, &lc), ENG_OK);
    float dab = max_abs_diff(la, lb, nv), dac = max_abs_diff(la, lc, nv);
    print_message("  logits after a shift: max |shifted - fresh| %.2g, |shifted - unshifted| %.2g\n",
                  dab, dac);
    if (dab > 0.02f)
        fail_msg("logits after a shift differ from a fresh session's by %g", dab);
    if (dac < 0.1f)
        fail_msg("logits after a shift are those of a session that dropped nothing (%g)", dac);
    /* the greedy tokens that follow are the same too */
    acc *ga = calloc(1, sizeof *ga), *gb = calloc(1, sizeof *gb);
    eng_generate_opts go = { 5, NULL, 0, NULL };
    eng_stop_reason why;
    assert_int_equal(eng_session_generate(a, &go, collect, ga, &why), ENG_OK);
    assert_int_equal(eng_session_generate(b, &go, collect, gb, &why), ENG_OK);
    assert_int_equal(ga->n, 5);
    assert_int_equal(gb->n, 5);
    assert_memory_equal(ga->ids, gb->ids, 5 * sizeof ga->ids[0]);
    free(ga);
    free(gb);
    free(la);
    free(lb);
    free(lc);
    eng_session_free(a);
    eng_session_free(b);
    eng_session_free(c);
    eng_model_close(m);
}

static void test_stops_and_cancel(void **state)
{
    eng_model *m = NULL;
    eng_stop_reason why;
    acc *a = calloc(1, sizeof *a);
    /* greedy: ", there was a little girl named Lily. ..."; the stop string is not emitted */
    eng_session *s = story_session(&m, 256, 0, 1, false);
    const char *stops[] = { "Lily", "never appears" };
    eng_generate_opts go = { 64, stops, 2, NULL };
    assert_int_equal(eng_session_generate(s, &go, collect, a, &why), ENG_OK);
    assert_int_equal(why, ENG_STOP_STRING);
    assert_string_equal(a->text, ", there was a little girl named ");
    eng_session_free(s);
    /* the callback stops generation */
    memset(a, 0, sizeof *a);
    a->stop_after = 3;
    s = story_session(&m, 256, 0, 1, false);
    go = (eng_generate_opts){ 64, NULL, 0, NULL };
    assert_int_equal(eng_session_generate(s, &go, collect, a, &why), ENG_OK);
    assert_int_equal(why, ENG_STOP_CANCELLED);
    assert_int_equal(a->n, 3);
    /* the cancel flag, checked before each token */
    atomic_int cancel = 1;
    go.cancel = &cancel;
    memset(a, 0, sizeof *a);
    assert_int_equal(eng_session_generate(s, &go, collect, a, &why), ENG_OK);
    assert_int_equal(why, ENG_STOP_CANCELLED);
    assert_int_equal(a->n, 0);
    eng_session_free(s);
    free(a);
    eng_model_close(m);
}

/* The session's own flag stops a feed before a batch: ENG_ERR_CANCELLED, nothing consumed, and
 * the session goes on as if the feed had not been tried. (Mid-feed, from another thread:
 * tests/test_concurrency.c.) */
static void test_feed_cancel(void **state)
{
    eng_model *m = NULL;
    char err[512];
    assert_int_equal(eng_model_open(fixture_path("models/stories260K.gguf"), &m, err, sizeof err), ENG_OK);
    atomic_int cancel = 1;
    eng_session_opts o = eng_session_defaults();
    o.backend = ENG_BACKEND_CPU;
    o.sampling.temperature = 0;
    o.cancel = &cancel;
    eng_session *s;
    assert_int_equal(eng_session_new(m, &o, &s, err, sizeof err), ENG_OK);
    int32_t prompt[] = { 1, 403, 407, 261, 378 };
    assert_int_equal(eng_session_feed(s, prompt, 5), ENG_ERR_CANCELLED);
    assert_non_null(strstr(eng_session_errmsg(s), "cancelled"));
    eng_stats st;
    eng_session_stats(s, &st);
    assert_int_equal(st.n_past, 0);
    eng_stop_reason why;
    acc *a = calloc(1, sizeof *a);
    eng_generate_opts go = { 8, NULL, 0, NULL };
    assert_int_equal(eng_session_generate(s, &go, collect, a, &why), ENG_OK);
    assert_int_equal(why, ENG_STOP_CANCELLED);
    assert_int_equal(a->n, 0);
    atomic_store(&cancel, 0);
    assert_int_equal(eng_session_feed(s, prompt, 5), ENG_OK);
    assert_int_equal(eng_session_generate(s, &go, collect, a, &why), ENG_OK);
    assert_string_equal(a->text, ", there was a little girl");
    eng_session_free(s);
    free(a);
    eng_model_close(m);
}

typedef struct load_steps {
    int n;
    float last;
    bool rising;
    char first[64], final[64];
} load_steps;

static void on_load_progress(void *user, float done, const char *step)
{
    load_steps *l = user;
    if (l->n && done < l->last)
        l->rising = false;
    if (!l->n++)
        snprintf(l->first, sizeof l->first, "%s", step);
    snprintf(l->final, sizeof l->final, "%s", step);
    l->last = done;
}

/* eng_session_new says how far it is, rising from 0 to 1, on both backends (the TUI's load bar),
 * and a session made without a callback never calls one. */
static void test_load_progress(void **state)
{
    (void)state;
    eng_model *m = NULL;
    char err[512];
    assert_int_equal(eng_model_open(fixture_path("models/stories260K.gguf"), &m, err, sizeof err), ENG_OK);
    for (int b = 0; b < 2; b++) {
        load_steps l = { 0, 0, true, "", "" };
        eng_session_opts o = eng_session_defaults();
        o.backend = b ? ENG_BACKEND_VULKAN : ENG_BACKEND_CPU;
        o.progress = on_load_progress;
        o.progress_user = &l;
        eng_session *s;
        assert_int_equal(eng_session_new(m, &o, &s, err, sizeof err), ENG_OK);
        assert_true(l.n >= 3);
        assert_true(l.rising);
        assert_true(l.last == 1.0f);
        assert_string_equal(l.first, "starting the backend");
        assert_string_equal(l.final, "ready");
        eng_session_free(s);
    }
    eng_model_close(m);
}

/* eng_model_close with a session alive: the session keeps the model (engine.h), generates the
 * same text as before, and the model goes with the session (ASan/LSan see a leak or a use after
 * free otherwise). */
static void test_close_model_first(void **state)
{
    eng_model *m = NULL;
    eng_stop_reason why;
    acc *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    eng_generate_opts go = { 24, NULL, 0, NULL };
    eng_session *s = story_session(&m, 256, 0, 1, false);
    assert_int_equal(eng_session_generate(s, &go, collect, a, &why), ENG_OK);
    eng_session_free(s);
    s = story_session(&m, 256, 0, 1, false);
    eng_session *s2 = story_session(&m, 256, 0, 1, false);
    eng_model_close(m);
    eng_session_free(s2);
    /* allocations made now would reuse a freed model's memory and overwrite it */
    void *junk[64];
    for (int i = 0; i < 64; i++)
        memset(junk[i] = malloc(4096), 0xA5, 4096);
    assert_int_equal(eng_session_generate(s, &go, collect, b, &why), ENG_OK);
    for (int i = 0; i < 64; i++)
        free(junk[i]);
    eng_session_free(s);
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->ids, b->ids, a->n * sizeof a->ids[0]);
    free(a);
    free(b);
}

static void test_seeded_sampling(void **state)
{
    eng_model *m = NULL;
    eng_stop_reason why;
    acc *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b), *c = calloc(1, sizeof *c);
    eng_generate_opts go = { 48, NULL, 0, NULL };
    eng_session *s = story_session(&m, 256, 1.0f, 42, false);
    assert_int_equal(eng_session_generate(s, &go, collect, a, &why), ENG_OK);
    eng_session_free(s);
    s = story_session(&m, 256, 1.0f, 42, false);
    assert_int_equal(eng_session_generate(s, &go, collect, b, &why), ENG_OK);
    eng_session_free(s);
    s = story_session(&m, 256, 1.0f, 43, false);
    assert_int_equal(eng_session_generate(s, &go, collect, c, &why), ENG_OK);
    eng_session_free(s);
    assert_int_equal(a->n, b->n);
    assert_memory_equal(a->ids, b->ids, a->n * sizeof a->ids[0]);
    assert_string_equal(a->text, b->text);
    assert_true(a->n != c->n || memcmp(a->ids, c->ids, a->n * sizeof a->ids[0]) != 0);
    free(a);
    free(b);
    free(c);
    eng_model_close(m);
}

/* ---- the commands ---- */

static char *run_cmd(const char *args, int *status)
{
    const char *bin = getenv("SIZEUP_BIN") ? getenv("SIZEUP_BIN") : "build/sizeup";
    char cmd[10000];
    snprintf(cmd, sizeof cmd, "%s %s", bin, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0, r;
    char *out = malloc(cap);
    while ((r = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 == cap)
            out = realloc(out, cap *= 2);
    }
    out[n] = 0;
    *status = pclose(p);
    return out;
}

static json_t *reference_line(const char *rel, int line)
{
    size_t len;
    char *raw = (char *)read_file(fixture_path(rel), &len), *p = raw;
    for (int i = 0; i < line; i++)
        p = strchr(p, '\n') + 1;
    json_error_t je;
    json_t *j = json_loads(p, JSON_DISABLE_EOF_CHECK, &je);
    free(raw);
    assert_non_null(j);
    return j;
}

static void test_run_command(void **state)
{
    char args[8192];
    int st;
    json_t *ref = reference_line("reference/stories260K.greedy.jsonl", 0);
    const char *model = fixture_path("models/stories260K.gguf");
    snprintf(args, sizeof args, "run -m %s -p 'Once upon a time' -n 64 --temp 0 --backend cpu "
             "2>%s/stats.txt", model, tmpdir);
    char *out = run_cmd(args, &st);
    assert_int_equal(st, 0);
    assert_string_equal(out, json_string_value(json_object_get(ref, "text")));
    free(out);
    char path[600];
    snprintf(path, sizeof path, "%s/stats.txt", tmpdir);
    size_t len;
    char *stats = (char *)read_file(path, &len);
    assert_non_null(strstr(stats, "prompt 5 tokens"));
    assert_non_null(strstr(stats, "generated 64 tokens"));
    assert_non_null(strstr(stats, "tokens/s"));
    assert_non_null(strstr(stats, "first token"));
    assert_non_null(strstr(stats, "memory: weights 1.12 MiB"));
    free(stats);
    /* --ids: the generated ids as a JSON array, equal to the reference steps */
    snprintf(args, sizeof args, "run -m %s -p 'Once upon a time' -n 16 --temp 0 --ids "
             "--backend cpu 2>/dev/null", model);
    out = run_cmd(args, &st);
    assert_int_equal(st, 0);
    json_error_t je;
    json_t *ids = json_loads(out, 0, &je);
    assert_non_null(ids);
    assert_int_equal(json_array_size(ids), 16);
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(json_integer_value(json_array_get(ids, i)),
                         json_integer_value(json_object_get(json_array_get(json_object_get(ref, "steps"), i), "token")));
    json_decref(ids);
    free(out);
    /* errors: exit 2 for usage, 1 for a bad file, each with one line naming the problem */
    out = run_cmd("run -m /nonexistent.gguf -p hi 2>&1", &st);
    assert_int_equal(WEXITSTATUS(st), 1);
    assert_non_null(strstr(out, "/nonexistent.gguf"));
    free(out);
    out = run_cmd("run -p hi 2>&1", &st);
    assert_int_equal(WEXITSTATUS(st), 2);
    free(out);
    snprintf(args, sizeof args, "run -m %s -p hi --temp banana 2>&1", model);
    out = run_cmd(args, &st);
    assert_int_equal(WEXITSTATUS(st), 2);
    assert_non_null(strstr(out, "banana"));
    free(out);
    json_decref(ref);
}

static void test_logits_command(void **state)
{
    char args[8192];
    int st;
    json_t *ref = reference_line("reference/stories260K.greedy.jsonl", 0);
    snprintf(args, sizeof args, "logits -m %s --tokens 1,403,407,261,378 --backend cpu",
             fixture_path("models/stories260K.gguf"));
    char *out = run_cmd(args, &st);
    assert_int_equal(st, 0);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    assert_non_null(j);
    json_t *rows = json_object_get(j, "logits"), *want = json_object_get(json_array_get(json_object_get(ref, "steps"), 0), "logits");
    assert_int_equal(json_array_size(rows), 1);
    assert_int_equal(json_array_size(json_array_get(rows, 0)), 512);
    for (size_t i = 0; i < 512; i++) {
        double d = json_number_value(json_array_get(json_array_get(rows, 0), i)) -
                   json_number_value(json_array_get(want, i));
        assert_true(d < 0.02 && d > -0.02);
    }
    json_decref(j);
    free(out);
    snprintf(args, sizeof args, "logits -m %s --text 'Once upon' --all-positions --backend cpu",
             fixture_path("models/stories260K.gguf"));
    out = run_cmd(args, &st);
    assert_int_equal(st, 0);
    j = json_loads(out, 0, &je);
    assert_non_null(j);
    json_t *toks = json_object_get(j, "tokens");
    rows = json_object_get(j, "logits");
    assert_int_equal(json_array_size(toks), 3);
    assert_int_equal(json_array_size(rows), 3);
    free(out);
    /* row i holds the values a run over the first i+1 tokens gives for its last position */
    for (size_t i = 0; i < 3; i++) {
        char list[64] = "";
        for (size_t k = 0; k <= i; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%lld", k ? "," : "",
                     (long long)json_integer_value(json_array_get(toks, k)));
        snprintf(args, sizeof args, "logits -m %s --tokens %s --backend cpu",
                 fixture_path("models/stories260K.gguf"), list);
        out = run_cmd(args, &st);
        assert_int_equal(st, 0);
        json_t *one = json_loads(out, 0, &je);
        assert_non_null(one);
        json_t *row = json_array_get(json_object_get(one, "logits"), 0), *all = json_array_get(rows, i);
        assert_int_equal(json_array_size(row), 512);
        assert_int_equal(json_array_size(all), 512);
        double worst = 0;
        for (size_t v = 0; v < 512; v++) {
            double d = fabs(json_number_value(json_array_get(all, v)) -
                            json_number_value(json_array_get(row, v)));
            worst = d > worst ? d : worst;
        }
        if (worst > 1e-3)
            fail_msg("--all-positions row %zu differs from a run over tokens %s by %g", i, list, worst);
        json_decref(one);
        free(out);
    }
    json_decref(j);
    json_decref(ref);
}

int main(void)
{
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_models), cmocka_unit_test(test_context_limits),
        cmocka_unit_test(test_context_shift_matches_fresh),
        cmocka_unit_test(test_stops_and_cancel), cmocka_unit_test(test_feed_cancel),
        cmocka_unit_test(test_load_progress),
        cmocka_unit_test(test_close_model_first), cmocka_unit_test(test_seeded_sampling),
        cmocka_unit_test(test_run_command), cmocka_unit_test(test_logits_command),
    };
    int rc = cmocka_run_group_tests_name("session", tests, NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) { /* best effort */ }
    return rc;
}
