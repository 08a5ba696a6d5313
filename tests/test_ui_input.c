/* Keys -> actions: the TUI's own keys are taken from the byte stream (Tab, Shift-Tab, PgUp/PgDn,
 * F-keys in both encodings, SGR mouse wheel, Ctrl-C/Z/L, a lone Esc after its timeout), the rest
 * edits the line through readline (arrows, Ctrl-J and Alt-Enter newlines, Enter sends), and a
 * bracketed paste arrives whole in the line, its newlines kept, as one message. */
#include "tests/testutil.h"

#include "ui/input.h"

static int setup(void **state)
{
    (void)state;
    ui_input_open(NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ui_input_close();
    return 0;
}

/* The actions queued after feeding s, EDITED ones skipped; the last line (if any) in *line. */
static int actions(const char *s, ui_action *out, int cap, char **line)
{
    ui_input_feed(s, strlen(s));
    int n = 0;
    ui_action a;
    char *l;
    while ((a = ui_input_next(&l)) != UI_ACT_NONE) {
        if (a == UI_ACT_LINE) {
            free(*line);
            *line = l;
        }
        if (a != UI_ACT_EDITED && n < cap)
            out[n++] = a;
    }
    return n;
}

static void test_tui_keys(void **state)
{
    (void)state;
    static const struct { const char *in; ui_action want; } keys[] = {
        { "\t", UI_ACT_FOCUS_NEXT }, { "\033[Z", UI_ACT_FOCUS_PREV },
        { "\033[5~", UI_ACT_PAGE_UP }, { "\033[6~", UI_ACT_PAGE_DOWN },
        { "\033OP", UI_ACT_HELP }, { "\033[11~", UI_ACT_HELP }, { "\033OQ", UI_ACT_BROADCAST },
        { "\033[12~", UI_ACT_BROADCAST }, { "\033[15~", UI_ACT_ZOOM }, { "\033[17~", UI_ACT_PAGER },
        { "\033[18~", UI_ACT_COPY }, { "\003", UI_ACT_INTERRUPT }, { "\032", UI_ACT_SUSPEND },
        { "\014", UI_ACT_REDRAW }, { "\033[<64;10;5M", UI_ACT_WHEEL_UP },
        { "\033[<65;10;5M", UI_ACT_WHEEL_DOWN },
    };
    char *line = NULL;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        ui_action got[4];
        int n = actions(keys[i].in, got, 4, &line);
        if (n != 1 || got[0] != keys[i].want)
            fail_msg("key %zu: %d actions, first %d, want %d", i, n, n ? (int)got[0] : -1,
                     (int)keys[i].want);
    }
    ui_action got[4];
    assert_int_equal(actions("\033[<0;10;5M", got, 4, &line), 0);  /* a click: ignored */
    /* Esc alone becomes STOP only after the timeout; a sequence right after it does not */
    assert_int_equal(actions("\033", got, 4, &line), 0);
    assert_true(ui_input_esc_pending());
    ui_input_timeout();
    assert_int_equal(actions("", got, 4, &line), 1);
    assert_int_equal(got[0], UI_ACT_STOP);
    assert_false(ui_input_esc_pending());
}

/* While a box is open, Up, Down, Home and End scroll it (every encoding a terminal sends);
 * otherwise they are readline's (history, cursor), and no action but the edit. */
static void test_scroll_keys(void **state)
{
    (void)state;
    static const struct { const char *in; ui_action want; } keys[] = {
        { "\033[A", UI_ACT_UP }, { "\033OA", UI_ACT_UP }, { "\033[B", UI_ACT_DOWN },
        { "\033OB", UI_ACT_DOWN }, { "\033[H", UI_ACT_HOME }, { "\033OH", UI_ACT_HOME },
        { "\033[1~", UI_ACT_HOME }, { "\033[7~", UI_ACT_HOME }, { "\033[F", UI_ACT_END },
        { "\033OF", UI_ACT_END }, { "\033[4~", UI_ACT_END }, { "\033[8~", UI_ACT_END },
    };
    char *line = NULL;
    ui_action got[4];
    for (int grab = 1; grab >= 0; grab--) {
        ui_input_grab_scroll(grab);
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            int n = actions(keys[i].in, got, 4, &line);
            if (grab ? n != 1 || got[0] != keys[i].want : n != 0)
                fail_msg("key %zu, grab %d: %d actions, first %d", i, grab, n,
                         n ? (int)got[0] : -1);
        }
    }
    actions("\001\013", got, 4, &line);  /* Ctrl-A Ctrl-K: readline kept what it did not bind */
    assert_int_equal(actions("ab\033[D\033[Hx\r", got, 4, &line), 1);  /* Home: readline's */
    assert_string_equal(line, "xab");
    free(line);
}

static void test_editing_and_lines(void **state)
{
    (void)state;
    ui_action got[8];
    char *line = NULL;
    size_t len, cur;
    /* typing, Ctrl-A (home), a left arrow sequence, Ctrl-J and Alt-Enter newlines */
    actions("world\001hello \033[D", got, 8, &line);
    const char *t = ui_input_text(&len, &cur);
    assert_string_equal(t, "hello world");
    assert_int_equal(cur, 5);
    actions("\005\nsecond\033\rthird", got, 8, &line);
    t = ui_input_text(&len, &cur);
    assert_string_equal(t, "hello world\nsecond\nthird");
    int n = actions("\r", got, 8, &line);
    assert_int_equal(n, 1);
    assert_int_equal(got[0], UI_ACT_LINE);
    assert_string_equal(line, "hello world\nsecond\nthird");
    t = ui_input_text(&len, &cur);
    assert_int_equal(len, 0);
    /* a bracketed paste: CRLF and CR become newlines, Tab and Enter inside do not act */
    n = actions("\033[200~one\r\ntwo\rthree\tfour\033[201~", got, 8, &line);
    assert_int_equal(n, 0);
    t = ui_input_text(&len, &cur);
    assert_string_equal(t, "one\ntwo\nthree\tfour");
    n = actions("\r", got, 8, &line);
    assert_int_equal(n, 1);
    assert_string_equal(line, "one\ntwo\nthree\tfour");
    free(line);
    line = NULL;
    /* Ctrl-D on an empty line */
    n = actions("\004", got, 8, &line);
    assert_int_equal(n, 1);
    assert_int_equal(got[0], UI_ACT_EOF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tui_keys),
        cmocka_unit_test(test_scroll_keys),
        cmocka_unit_test(test_editing_and_lines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
