/* `sizeup compare` and app/sched: fair mode runs one model at a time (no two recorded
 * generation intervals overlap), concurrent mode runs them together (they overlap), greedy
 * answers are the same in both modes, and the JSON, CSV and Markdown reports are well formed
 * with every field, also when a model's name and a prompt carry table separators, HTML and
 * terminal escapes. Two fixture models, 64 tokens each, CPU backend. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <jansson.h>

#include "testutil.h"

#include "app/app.h"
#include "app/compare.h"
#include "app/sched.h"
#include "engine/gguf.h"

static char tmpdir[] = "/tmp/sizeup-cmp-XXXXXX";
static char small[4096], f32[4096];

/* Run `sizeup compare ARGS...` with stdout into path; returns its exit status. */
static int compare_to(const char *path, const char *const *args)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "compare";
    for (; args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int rc = app_cmd_compare(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    return rc;
}

static json_t *compare_json(const char *mode)
{
    char out[4200];
    snprintf(out, sizeof out, "%s/%s.json", tmpdir, mode);
    const char *args[] = { small, f32, "-p", "Once upon a time", "-n", "64", "-r", "2",
                           "--mode", mode, "--backend", "cpu", "-o", "json", NULL };
    assert_int_equal(compare_to(out, args), 0);
    json_error_t e;
    json_t *j = json_load_file(out, 0, &e);
    if (!j)
        fail_msg("%s: not JSON: %s (line %d)", out, e.text, e.line);
    return j;
}

static double num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_number(v))
        fail_msg("field %s missing or not a number", k);
    return json_number_value(v);
}

static bool overlap(json_t *a, json_t *b)
{
    return num(a, "start_ms") < num(b, "end_ms") && num(b, "start_ms") < num(a, "end_ms");
}

static void check_fields(json_t *j, const char *mode)
{
    assert_string_equal(json_string_value(json_object_get(j, "mode")), mode);
    json_t *r, *m;
    size_t i;
    json_array_foreach(json_object_get(j, "models"), i, m) {
        static const char *keys[] = { "n_params", "file_bytes", "bits_per_weight", "mem_weights",
                                      "mem_kv", "mem_scratch", "mem_device", "mem_host" };
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            num(m, keys[k]);
        assert_true(num(m, "n_params") > 0 && num(m, "mem_host") > 0);
    }
    assert_int_equal(i, 2);
    json_array_foreach(json_object_get(j, "results"), i, r) {
        assert_non_null(json_string_value(json_object_get(r, "answer")));
        assert_string_equal(json_string_value(json_object_get(r, "mode")), mode);
        assert_int_equal((int)num(r, "n_gen"), 64);
        assert_true(num(json_object_get(r, "gen_tps"), "median") > 0);
        assert_true(num(json_object_get(r, "prompt_tps"), "median") > 0);
        assert_true(num(json_object_get(r, "ttft_ms"), "median") > 0);
        assert_int_equal(json_array_size(json_object_get(json_object_get(r, "gen_tps"), "samples")), 2);
    }
    assert_int_equal(i, 2);
}

static json_t *fair_report;

static void test_fair_serialises(void **state)
{
    (void)state;
    json_t *j = fair_report = compare_json("fair");
    check_fields(j, "fair");
    json_t *spans = json_object_get(j, "spans");
    assert_int_equal(json_array_size(spans), 4); /* 2 models x 2 repeats */
    for (size_t a = 0; a < json_array_size(spans); a++)
        for (size_t b = a + 1; b < json_array_size(spans); b++)
            if (overlap(json_array_get(spans, a), json_array_get(spans, b)))
                fail_msg("fair mode: generations %zu and %zu overlap", a, b);
}

static void test_concurrent_overlaps(void **state)
{
    (void)state;
    json_t *j = compare_json("concurrent");
    check_fields(j, "concurrent");
    json_t *spans = json_object_get(j, "spans");
    assert_int_equal(json_array_size(spans), 4);
    for (size_t rep = 0; rep < 2; rep++) /* spans: repeat by repeat, model by model */
        if (!overlap(json_array_get(spans, rep * 2), json_array_get(spans, rep * 2 + 1)))
            fail_msg("concurrent mode: the two generations of repeat %zu do not overlap", rep);
    /* greedy: the same answers as in fair mode */
    assert_non_null(fair_report);
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(json_object_get(j, "results"), i), "answer")),
            json_string_value(json_object_get(json_array_get(json_object_get(fair_report, "results"), i), "answer")));
    json_decref(j);
    json_decref(fair_report);
}

/* A copy of stories260K whose general.name tries to break a table and drive a terminal. */
static const char *evil_model(void)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/evil.gguf", tmpdir);
    gguf_file *f;
    char err[512];
    assert_int_equal(gguf_open(small, &f, err, sizeof err), GGUF_OK);
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_kv_count(f); i++)
        assert_int_equal(gguf_writer_copy_kv(w, f, i), GGUF_OK);
    assert_int_equal(gguf_writer_set_str(w, "general.name",
                                         "evil | name <b>x</b>\x1b[2J\r\n| --- |\x07"), GGUF_OK);
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        assert_int_equal(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data), GGUF_OK);
    }
    assert_int_equal(gguf_writer_write(w, path), GGUF_OK);
    gguf_writer_free(w);
    gguf_close(f);
    return path;
}

static char *report(const char *fmt, const char *model, const char *prompts)
{
    char out[4200];
    snprintf(out, sizeof out, "%s/report.%s", tmpdir, fmt);
    const char *args[] = { model, small, "-f", prompts, "-n", "16", "-r", "1", "--backend",
                           "cpu", "-o", fmt, NULL };
    assert_int_equal(compare_to(out, args), 0);
    size_t len;
    char *s = (char *)read_file(out, &len);
    s = realloc(s, len + 1);
    s[len] = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\n') || s[i] == 0x7f)
            fail_msg("%s report: control byte 0x%02x at offset %zu", fmt, s[i], i);
    return s;
}

/* Unescaped '|' in a Markdown line. */
static int pipes(const char *l, const char *end)
{
    int n = 0;
    for (const char *p = l; p < end; p++) {
        if (*p == '\\' && p + 1 < end)
            p++;
        else if (*p == '|')
            n++;
    }
    return n;
}

static void check_md(const char *s)
{
    int want = -1, tables = 0;
    for (const char *l = s; *l;) {
        const char *e = strchr(l, '\n');
        e = e ? e : l + strlen(l);
        if (*l == '|') {
            int n = pipes(l, e);
            if (want < 0) {
                want = n;
                tables++;
            } else if (n != want)
                fail_msg("Markdown table row has %d cells separators, its header %d: %.*s", n,
                         want, (int)(e - l), l);
        } else
            want = -1;
        if (memmem(l, (size_t)(e - l), "<b>", 3))
            fail_msg("raw HTML from model text in the Markdown: %.*s", (int)(e - l), l);
        l = *e ? e + 1 : e;
    }
    assert_int_equal(tables, 3); /* models, and one per prompt */
}

/* RFC 4180: rows of fields, quoted fields may hold commas, quotes ("") and newlines. */
static void check_csv(const char *s)
{
    int fields = 0, header = -1, rows = 0;
    bool empty_field = false;
    const char *p = s;
    while (*p) {
        const char *start = p;
        if (*p == '"') {
            for (p++; *p && !(*p == '"' && p[1] != '"'); p += *p == '"' ? 2 : 1)
                ;
            assert_int_equal(*p, '"');
            p++;
        } else
            while (*p && *p != ',' && *p != '\n')
                p++;
        /* empty only where a figure is unknown: a local model has no server's own speed
         * (server_prompt_tps_median, the last but one column) */
        empty_field |= p == start && (header < 0 || fields != header - 2);
        fields++;
        if (*p == ',') {
            p++;
            continue;
        }
        assert_int_equal(*p, '\n');
        p++;
        if (header < 0)
            header = fields;
        else if (fields != header)
            fail_msg("CSV row %d has %d fields, the header %d", rows + 1, fields, header);
        assert_false(empty_field);
        rows++;
        fields = 0;
    }
    assert_int_equal(rows, 5); /* header + 2 prompts x 2 models */
}

static void test_reports_are_well_formed(void **state)
{
    (void)state;
    const char *evil = evil_model();
    char prompts[4200];
    snprintf(prompts, sizeof prompts, "%s/prompts.txt", tmpdir);
    FILE *f = fopen(prompts, "w");
    fputs("Once upon a time | <i>there</i>\x1b[31m\n\nThe dog \"ran\", fast\n", f);
    fclose(f);
    char *md = report("md", evil, prompts);
    check_md(md);
    assert_non_null(strstr(md, "evil \\| name &lt;b&gt;x&lt;/b&gt;"));
    free(md);
    char *csv = report("csv", evil, prompts);
    check_csv(csv);
    free(csv);
    char *js = report("json", evil, prompts);
    json_error_t e;
    json_t *j = json_loads(js, 0, &e);
    if (!j)
        fail_msg("not JSON: %s", e.text);
    assert_int_equal(json_array_size(json_object_get(j, "results")), 4);
    assert_int_equal(json_array_size(json_object_get(j, "prompts")), 2);
    json_decref(j);
    free(js);
}

static void test_mode_names(void **state)
{
    (void)state;
    app_sched_mode m;
    assert_true(app_sched_mode_parse("fair", &m) && m == APP_SCHED_FAIR);
    assert_true(app_sched_mode_parse("concurrent", &m) && m == APP_SCHED_CONCURRENT);
    assert_false(app_sched_mode_parse("both", &m));
    assert_string_equal(app_sched_mode_name(APP_SCHED_CONCURRENT), "concurrent");
}

/* The TUI's size view rows: per model, the medians over prompts, the mode, bits per byte only
 * when measured. Built from a hand-made comparison. */
static void test_size_rows(void **state)
{
    (void)state;
    app_cmp_model models[2] = { { .n_params = 100, .quant = "Q4_0", .mem_weights = 10,
                                  .mem_kv = 5, .mem_scratch = 1, .has_ppl = true },
                                { .n_params = 400, .quant = "F32" } };
    snprintf(models[0].name, sizeof models[0].name, "a");
    snprintf(models[1].name, sizeof models[1].name, "b");
    models[0].ppl.bits_per_byte = 1.25;
    app_cmp_cell cells[6] = { 0 }; /* 3 prompts x 2 models */
    for (int p = 0; p < 3; p++)
        for (int j = 0; j < 2; j++) {
            cells[p * 2 + j].tg.median = 10.0 * (j + 1) + p;       /* a: 10 11 12, b: 20 21 22 */
            cells[p * 2 + j].pp.median = 100.0 * (j + 1) + 3 * p;
            cells[p * 2 + j].ttft.median = (p == 2) ? 50 : 5;     /* median 5 */
        }
    app_cmp c = { .mode = APP_SCHED_CONCURRENT, .n_models = 2, .n_prompts = 3, .models = models,
                  .cells = cells };
    app_size_row r[2];
    app_cmp_size_rows(&c, r);
    assert_string_equal(r[0].name, "a");
    assert_string_equal(r[0].quant, "Q4_0");
    assert_string_equal(r[1].mode, "concurrent");
    assert_true(r[0].tg_tps == 11 && r[1].tg_tps == 21);
    assert_true(r[0].pp_tps == 103 && r[1].pp_tps == 203);
    assert_true(r[0].ttft_ms == 5);
    assert_int_equal(r[0].mem_bytes, 16);
    assert_true(r[0].bits_per_byte == 1.25 && r[1].bits_per_byte < 0);
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(tmpdir));
    snprintf(small, sizeof small, "%s", fixture_path("models/stories260K.gguf"));
    snprintf(f32, sizeof f32, "%s", fixture_path("models/babyllama-930K-F32.gguf"));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}


/* The TUI's fair turns (app_sched_gate): tickets run one at a time in the order they were
 * taken, whatever order the threads start in; a ticket given up unrun (a dropped job) and one
 * whose wait is cancelled do not hold the others back. */
typedef struct gate_job {
    app_sched_gate *g;
    long ticket;
    atomic_int cancel;
    bool turn;
    double start, end;
    pthread_t th;
} gate_job;

static void *gate_worker(void *arg)
{
    gate_job *j = arg;
    j->turn = app_sched_gate_wait(j->g, j->ticket, &j->cancel);
    j->start = app_now_s();
    if (j->turn)
        usleep(20000);
    j->end = app_now_s();
    app_sched_gate_done(j->g, j->ticket);
    return NULL;
}

static void test_gate_turns(void **state)
{
    (void)state;
    app_sched_gate *g = app_sched_gate_new();
    assert_non_null(g);
    enum { N = 5 };
    gate_job j[N];
    int order[N] = { 3, 0, 4, 1, 2 };  /* the poster's (shuffled) order of turns */
    for (int k = 0; k < N; k++) {
        j[order[k]] = (gate_job){ .g = g };
        j[order[k]].ticket = app_sched_gate_ticket(g);
    }
    long dropped = app_sched_gate_ticket(g);  /* a job that never runs */
    gate_job last = { .g = g, .ticket = app_sched_gate_ticket(g) };
    atomic_store(&j[4].cancel, 1);            /* Esc before its turn */
    for (int k = N - 1; k >= 0; k--)          /* threads start in yet another order */
        assert_int_equal(pthread_create(&j[k].th, NULL, gate_worker, &j[k]), 0);
    assert_int_equal(pthread_create(&last.th, NULL, gate_worker, &last), 0);
    usleep(30000);
    app_sched_gate_done(g, dropped);
    for (int k = 0; k < N; k++)
        pthread_join(j[k].th, NULL);
    pthread_join(last.th, NULL);
    assert_false(j[4].turn);                  /* cancelled: not its turn, and no one waited */
    assert_true(last.turn);
    for (int k = 1; k < N; k++) {
        gate_job *a = &j[order[k - 1]], *b = &j[order[k]];
        if (!a->turn || !b->turn)
            continue;
        assert_true(b->start >= a->end);      /* in ticket order, never overlapping */
    }
    assert_true(last.start >= j[order[N - 1]].end);
    assert_int_equal(app_sched_gate_pending(g), 0);
    app_sched_gate_free(g);
}

/* Two quantizations of one model (one general.name) are both labelled by their file names, in
 * the JSON and as the Markdown's column headings; the same file twice gets " #N" to stay
 * unique. */
static void test_duplicate_names(void **state)
{
    (void)state;
    char q4[4096], out[4200];
    snprintf(q4, sizeof q4, "%s", fixture_path("models/babyllama-930K-Q4_0.gguf"));
    snprintf(out, sizeof out, "%s/dups.json", tmpdir);
    const char *args[] = { f32, q4, q4, "-p", "Once", "-n", "1", "-r", "1", "--backend", "cpu",
                           "-o", "json", NULL };
    assert_int_equal(compare_to(out, args), 0);
    json_error_t e;
    json_t *j = json_load_file(out, 0, &e), *models = json_object_get(j, "models");
    assert_non_null(j);
    const char *want[] = { "babyllama-930K-F32.gguf", "babyllama-930K-Q4_0.gguf",
                           "babyllama-930K-Q4_0.gguf #3" };
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(models, i), "name")),
                            want[i]);
    json_decref(j);
    snprintf(out, sizeof out, "%s/dups.md", tmpdir);
    const char *md_args[] = { f32, q4, "-p", "Once", "-n", "1", "-r", "1", "--backend", "cpu",
                              "-o", "md", NULL };
    assert_int_equal(compare_to(out, md_args), 0);
    size_t len;
    char *md = (char *)read_file(out, &len);
    md = realloc(md, len + 1);
    md[len] = 0;
    assert_non_null(strstr(md, "\n|  | babyllama-930K-F32.gguf | babyllama-930K-Q4\\_0.gguf |\n"));
    assert_null(strstr(md, "BabyLlama 930K TinyStories"));
    free(md);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_names),
        cmocka_unit_test(test_size_rows),
        cmocka_unit_test(test_fair_serialises),
        cmocka_unit_test(test_concurrent_overlaps),
        cmocka_unit_test(test_gate_turns),
        cmocka_unit_test(test_reports_are_well_formed),
        cmocka_unit_test(test_duplicate_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
