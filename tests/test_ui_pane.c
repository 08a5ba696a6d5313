/* Pane state: a 20,000-token transcript streams with constant work per token (only the last
 * line is re-wrapped, only the rows showing it are redrawn), the incremental wrap equals a
 * wrap from scratch, a scrolled-back view stays put, text is sanitized, status lines fit. */
#include "tests/testutil.h"

#include "ui/pane.h"
#include "ui/text.h"

#define WIDTH 60
#define ROWS 20

static const char *const toks[] = { "Once", " upon", " a", " time", ",", " there", " was",
                                    " a", " little", " \xE7\x8C\xAB", " girl", ".", "\n",
                                    " \xF0\x9F\x91\x8D", "\xF0\x9F\x8F\xBD", " e", "\xCC\x81",
                                    " supercalifragilisticexpialidocious-and-even-longer-word",
                                    "\t" };
#define N_TOKS (sizeof toks / sizeof toks[0])

static const char *tok(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return toks[(*seed >> 16) % N_TOKS];
}

static int setup(void **state)
{
    (void)state;
    return ui_text_locale() ? 0 : -1;
}

static ui_pane *long_transcript(unsigned *seed)
{
    ui_pane *p = ui_pane_new();
    assert_non_null(p);
    ui_pane_set_width(p, WIDTH);
    assert_int_equal(ui_pane_add_turn(p, UI_ROLE_USER, "Tell me a long story"), 0);
    assert_int_equal(ui_pane_begin_turn(p, UI_ROLE_MODEL), 0);
    for (int i = 0; i < 20000; i++) {
        const char *t = tok(seed);
        assert_int_equal(ui_pane_append(p, t, strlen(t)), 0);
    }
    return p;
}

static void test_one_more_token_touches_only_the_tail(void **state)
{
    (void)state;
    unsigned seed = 1;
    ui_pane *p = long_transcript(&seed);
    assert_true(ui_pane_line_count(p) > 1000);
    int from, to, one_row = 0;
    ui_pane_dirty_rows(p, ROWS, &from, &to);
    ui_pane_drawn(p, ROWS);
    for (int i = 0; i < 300; i++) {
        const char *t = tok(&seed);
        size_t lines_before = ui_pane_line_count(p);
        unsigned long wrapped = ui_pane_lines_wrapped(p), seen = ui_text_clusters_seen;
        assert_int_equal(ui_pane_append(p, t, strlen(t)), 0);
        /* work: the tail line and the few the token adds, never the transcript */
        assert_true(ui_pane_lines_wrapped(p) - wrapped <= 3);
        assert_true(ui_text_clusters_seen - seen <= 3 * WIDTH);
        bool dirty = ui_pane_dirty_rows(p, ROWS, &from, &to);
        if (ui_pane_line_count(p) == lines_before) {
            /* same lines: only the last row is redrawn (or nothing, e.g. half a character) */
            if (dirty) {
                assert_int_equal(from, ROWS - 1);
                assert_int_equal(to, ROWS);
                one_row++;
            }
        } else {
            assert_true(dirty);  /* the view moved up: the body, never more */
            assert_int_equal(to - from, ROWS);
        }
        ui_pane_drawn(p, ROWS);
        assert_false(ui_pane_dirty_rows(p, ROWS, &from, &to));
    }
    assert_true(one_row > 100);
    ui_pane_free(p);
}

/* Lines made one token at a time equal those of the same text wrapped at once. */
static void test_incremental_equals_batch(void **state)
{
    (void)state;
    unsigned seed = 2;
    ui_pane *p = long_transcript(&seed);
    ui_pane *q = ui_pane_new();
    ui_pane_set_width(q, WIDTH);
    for (size_t i = 0; i < ui_pane_turn_count(p); i++) {
        ui_role role;
        size_t len;
        const char *s = ui_pane_turn(p, i, &role, &len);
        ui_pane_begin_turn(q, role);
        ui_pane_append(q, s, len);
    }
    assert_int_equal(ui_pane_line_count(p), ui_pane_line_count(q));
    for (size_t i = 0; i < ui_pane_line_count(p); i++) {
        size_t l1, l2;
        int c1, c2;
        ui_role r1, r2;
        const char *a = ui_pane_line(p, i, &l1, &c1, &r1), *b = ui_pane_line(q, i, &l2, &c2, &r2);
        if (l1 != l2 || memcmp(a, b, l1) || c1 != c2 || r1 != r2)
            fail_msg("line %zu differs: '%.*s' vs '%.*s'", i, (int)l1, a, (int)l2, b);
        assert_true(c1 <= WIDTH);
    }
    /* a width change re-wraps everything and marks the whole body dirty */
    ui_pane_drawn(p, ROWS);
    ui_pane_set_width(p, 30);
    int from, to;
    assert_true(ui_pane_dirty_rows(p, ROWS, &from, &to));
    assert_int_equal(to - from, ROWS);
    assert_true(ui_pane_line_count(p) > ui_pane_line_count(q));
    ui_pane_free(p);
    ui_pane_free(q);
}

static void test_scrolled_back_view_stays(void **state)
{
    (void)state;
    unsigned seed = 3;
    ui_pane *p = long_transcript(&seed);
    ui_pane_scroll(p, 100, ROWS);
    size_t top = ui_pane_top_line(p, ROWS);
    ui_pane_drawn(p, ROWS);
    for (int i = 0; i < 200; i++) {
        const char *t = tok(&seed);
        ui_pane_append(p, t, strlen(t));
    }
    int from, to;
    assert_int_equal(ui_pane_top_line(p, ROWS), top);
    assert_false(ui_pane_dirty_rows(p, ROWS, &from, &to));
    ui_pane_scroll(p, -1000000, ROWS);  /* back to the end */
    assert_int_equal(ui_pane_scrolled(p), 0);
    assert_int_equal(ui_pane_top_line(p, ROWS), ui_pane_line_count(p) - ROWS);
    ui_pane_scroll(p, 1000000, ROWS);
    assert_int_equal(ui_pane_top_line(p, ROWS), 0);
    ui_pane_free(p);
}

static void test_sanitized_and_turns(void **state)
{
    (void)state;
    ui_pane *p = ui_pane_new();
    ui_pane_set_width(p, 20);
    ui_pane_add_turn(p, UI_ROLE_USER, "hi");
    ui_pane_begin_turn(p, UI_ROLE_MODEL);
    ui_pane_append(p, "a\x1b]0;", 5);
    ui_pane_append(p, "x\x07\xE2\x82", 4);  /* half a euro sign */
    ui_pane_append(p, "\xAC", 1);
    size_t len;
    ui_role role;
    const char *s = ui_pane_turn(p, 1, &role, &len);
    assert_int_equal(role, UI_ROLE_MODEL);
    assert_string_equal(s, "a^[]0;x^G\xE2\x82\xAC");
    /* user line, blank separator, model line */
    assert_int_equal(ui_pane_line_count(p), 3);
    int cols;
    ui_pane_line(p, 1, &len, &cols, &role);
    assert_int_equal(len, 0);
    ui_pane_clear(p);
    assert_int_equal(ui_pane_line_count(p), 0);
    ui_pane_free(p);
}

/* Lines of a pane as one string, for comparing two panes. */
static void pane_text(const ui_pane *p, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < ui_pane_line_count(p); i++) {
        size_t len;
        int cols;
        ui_role role;
        const char *l = ui_pane_line(p, i, &len, &cols, &role);
        n += (size_t)snprintf(buf + n, cap - n, "%d:%.*s|", (int)role, (int)len, l);
    }
}

/* /regen replaces the last answer: dropping it (and what follows) leaves the pane as if it had
 * never been there, and the new answer streams on as usual. */
static void test_drop_last_answer(void **state)
{
    (void)state;
    ui_pane *p = ui_pane_new(), *want = ui_pane_new();
    ui_pane_set_width(p, 12);
    ui_pane_set_width(want, 12);
    ui_pane_add_turn(p, UI_ROLE_USER, "Once upon a time");
    ui_pane_add_turn(p, UI_ROLE_MODEL, "there was a little girl named Lily");
    ui_pane_set_note(p, "40 tokens");
    ui_pane_add_turn(p, UI_ROLE_INFO, "set temp 1");
    ui_pane_begin_turn(p, UI_ROLE_MODEL);
    ui_pane_append(p, "half an escape \x1b[", 17);  /* an escape cut short: its state goes with it */
    assert_int_equal(ui_pane_last_turn(p, UI_ROLE_MODEL), 3);
    assert_int_equal(ui_pane_last_turn(p, UI_ROLE_ERROR), SIZE_MAX);
    ui_pane_drop_turns(p, ui_pane_last_turn(p, UI_ROLE_MODEL));
    ui_pane_begin_turn(p, UI_ROLE_MODEL);
    ui_pane_append(p, "a new answer", 12);
    ui_pane_add_turn(want, UI_ROLE_USER, "Once upon a time");
    ui_pane_add_turn(want, UI_ROLE_MODEL, "there was a little girl named Lily");
    ui_pane_add_turn(want, UI_ROLE_INFO, "set temp 1");
    ui_pane_add_turn(want, UI_ROLE_MODEL, "a new answer");
    char a[1024], b[1024];
    pane_text(p, a, sizeof a);
    pane_text(want, b, sizeof b);
    assert_string_equal(a, b);
    assert_int_equal(ui_pane_turn_count(p), 4);
    assert_string_equal(ui_pane_turn_note(p, 1), "40 tokens");
    assert_null(ui_pane_turn_note(p, 3));
    ui_pane_drop_turns(p, 0);
    assert_int_equal(ui_pane_line_count(p), 0);
    ui_pane_drop_turns(p, 5);  /* past the end: nothing */
    ui_pane_free(p);
    ui_pane_free(want);
}

static void test_status_fits(void **state)
{
    (void)state;
    ui_pane_status st = { 0 };
    st.phase = UI_PHASE_GENERATING;
    st.tps_now = 123.4;
    st.tps_avg = 120.1;
    st.n_gen = 40;
    st.ctx_used = 100;
    st.ctx_max = 512;
    st.mem_weights = 1200000;
    for (int i = 0; i < 30; i++)
        ui_status_push_tps(&st, (float)i);
    assert_int_equal(st.n_spark, UI_SPARK_N);
    assert_true(st.spark[UI_SPARK_N - 1] == 29.0f);
    char buf[512];
    for (int w = 1; w < 200; w++)
        for (int n = 1; n <= 2; n++)
            for (int line = 0; line < n; line++) {
                ui_status_format(&st, line, n, w, buf, sizeof buf);
                assert_true(ui_text_width(buf, strlen(buf)) <= w);
            }
    ui_status_format(&st, 0, 1, 200, buf, sizeof buf);
    assert_non_null(strstr(buf, "123.4 t/s now"));
    assert_non_null(strstr(buf, "mem 1.1M"));
    /* why an answer ended survives a narrow pane: it stands for the phase ("idle" is implied),
     * and the mode the speeds were measured in comes with it; speeds of 100 t/s and more lose
     * their decimal, so the tokens still fit */
    st.phase = UI_PHASE_IDLE;
    st.stop = "cancelled";
    st.sched = "concurrent";
    ui_status_format(&st, 0, 2, 40, buf, sizeof buf);
    assert_string_equal(buf, "stop: cancelled [conc] | avg 120 t/s");
    /* a prompt speed is shown only when known, and the server's own says so */
    ui_status_format(&st, 0, 1, 200, buf, sizeof buf);
    assert_null(strstr(buf, "prompt"));
    st.prompt_tps = 300;
    ui_status_format(&st, 0, 1, 200, buf, sizeof buf);
    assert_non_null(strstr(buf, "prompt 300 t/s | "));
    st.remote = st.prompt_srv = true;
    ui_status_format(&st, 0, 1, 200, buf, sizeof buf);
    assert_non_null(strstr(buf, "prompt 300 t/s srv"));
    st.remote = st.prompt_srv = false;
    st.prompt_tps = 0;
    /* before any answer nothing is measured: no 0 t/s, 0 tok or 0 ms, and no mode label */
    st.sched = NULL;
    st.stop = NULL;
    st.tps_avg = 0;
    ui_status_format(&st, 0, 1, 200, buf, sizeof buf);
    assert_string_equal(buf, "idle | mem 1.1M+0B+0B | ctx 100/512 [##------] | rss 0B");
    st.remote = true;
    ui_status_format(&st, 0, 1, 200, buf, sizeof buf);
    assert_string_equal(buf, "idle | mem remote | ctx 100/512 [##------] | rss 0B");
    st.remote = false;
    /* a turn that failed before its first token (a message too long for the context) measured
     * no speed and no first token: its count is shown, not a 0 t/s or a 0 ms; one token has a
     * first-token time but no decode speed (that takes two) */
    st.sched = "concurrent";
    st.stop = "error";
    st.n_gen = 0;
    st.ttft_ms = 0;
    ui_status_format(&st, 0, 1, 200, buf, sizeof buf);
    assert_string_equal(buf, "stop: error [conc] | mem 1.1M+0B+0B | ctx 100/512 [##------] | 0 tok | rss 0B");
    st.n_gen = 1;
    st.ttft_ms = 12;
    ui_status_format(&st, 0, 1, 200, buf, sizeof buf);
    assert_null(strstr(buf, "avg"));
    assert_non_null(strstr(buf, "ttft 12 ms"));
    st.sched = NULL;
    st.stop = NULL;
    st.n_gen = 0;
    /* loading is shown as such, with a bar and the step, not as a slow model */
    st.phase = UI_PHASE_LOADING;
    st.progress = 0.6;
    snprintf(st.note, sizeof st.note, "warm-up");
    ui_status_format(&st, 0, 2, 80, buf, sizeof buf);
    assert_string_equal(buf, "loading [######----] 60%: warm-up");
    ui_status_format(&st, 0, 2, 12, buf, sizeof buf);
    assert_string_equal(buf, "loading 60%");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_more_token_touches_only_the_tail),
        cmocka_unit_test(test_incremental_equals_batch),
        cmocka_unit_test(test_scrolled_back_view_stays),
        cmocka_unit_test(test_sanitized_and_turns),
        cmocka_unit_test(test_status_fits),
        cmocka_unit_test(test_drop_last_answer),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
