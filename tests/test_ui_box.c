/* The overlay box (ui/box.h) at every size from 1x1 to 130x50: on the screen, its lines within
 * it, the scroll clamped and every line reachable; a text taller than the screen scrolls and
 * says so, one that fits does not; wrapping keeps words whole and indents what it wraps. */
#include "tests/testutil.h"

#include <string.h>

#include "ui/box.h"
#include "ui/text.h"

/* A help-like text: 31 lines, indented, the longest 75 columns. */
static const char tall[] =
    "Keys\n"
    "  Enter send (to every pane, or the focused one: F2 switches)\n"
    "  F3 scheduling: concurrent (all panes generate at once) or fair (one pane\n"
    "     at a time with the machine to itself, after a warm-up, shuffled order)\n"
    "  F4 size view\n  5\n  6\n  7\n  8\n  9\n  10\n  11\n  12\n  13\n  14\n  15\n  16\n"
    "  17\n  18\n  19\n  20\n  21\n  22\n  23\n  24\n  25\n  26\n  27\n  28\n"
    "\n"
    "Any other key closes this box.";

static void check_box(const char *text, int cols, int rows, int top)
{
    ui_box b;
    ui_box_compute(text, cols, rows, top, &b);
    if (!b.outer.w) {
        assert_int_equal(b.outer.h, 0);
        assert_true(cols < 5 || rows < 3);
        return;
    }
    assert_true(b.outer.x >= 0 && b.outer.y >= 0);
    assert_true(b.outer.x + b.outer.w <= cols && b.outer.y + b.outer.h <= rows);
    assert_int_equal(b.text.x, b.outer.x + 2);
    assert_int_equal(b.text.y, b.outer.y + 1);
    assert_int_equal(b.text.w, b.outer.w - 4);
    assert_int_equal(b.text.h, b.outer.h - 2);
    assert_true(b.text.w >= 1 && b.text.h >= 1);
    assert_true(b.top >= 0 && b.top + b.text.h <= b.n_lines);
    if (top <= 0)
        assert_int_equal(b.top, 0);
    if (top >= b.n_lines)  /* End: the last line is on screen */
        assert_int_equal(b.top + b.text.h, b.n_lines);
    assert_int_equal(ui_box_more_above(&b), b.top > 0);
    assert_int_equal(ui_box_more_below(&b), b.top + b.text.h < b.n_lines);
    for (int i = 0; i < b.text.h; i++) {
        const char *s;
        size_t len;
        int ind;
        assert_true(ui_box_line(text, b.text.w, b.top + i, &s, &len, &ind));
        assert_true(ind >= 0 && ind + ui_text_width(s, len) <= b.text.w);
    }
}

static void test_every_size(void **state)
{
    (void)state;
    for (int cols = 0; cols <= 130; cols++)
        for (int rows = 0; rows <= 50; rows++) {
            check_box(tall, cols, rows, 0);
            check_box(tall, cols, rows, 7);
            check_box(tall, cols, rows, 100000);
            check_box("x", cols, rows, -3);
            check_box("", cols, rows, 0);
        }
}

/* 80x24 with one input line: the box has 23 rows, so 21 of the 31 lines show. */
static void test_scrolls_at_80x24(void **state)
{
    (void)state;
    ui_box b;
    ui_box_compute(tall, 80, 23, 0, &b);
    assert_int_equal(b.n_lines, 31);  /* 75 columns fit the 76 inside: nothing wraps */
    assert_int_equal(b.outer.w, 80);
    assert_int_equal(b.outer.h, 23);
    assert_int_equal(b.text.h, 21);
    assert_true(ui_box_more_below(&b) && !ui_box_more_above(&b));
    ui_box_compute(tall, 80, 23, 1000, &b);
    assert_int_equal(b.top, 10);
    assert_true(!ui_box_more_below(&b) && ui_box_more_above(&b));
    const char *s;
    size_t len;
    int ind;
    assert_true(ui_box_line(tall, b.text.w, 30, &s, &len, &ind));
    assert_int_equal(len, strlen("Any other key closes this box."));
    assert_memory_equal(s, "Any other key closes this box.", len);
    assert_false(ui_box_line(tall, b.text.w, 31, &s, &len, &ind));
    /* a tall screen shows it all, centred, as wide as the text and its border */
    ui_box_compute(tall, 200, 39, 5, &b);
    assert_int_equal(b.top, 0);
    assert_int_equal(b.outer.w, 75 + 4);
    assert_int_equal(b.outer.h, 33);
    assert_int_equal(b.outer.x, (200 - 79) / 2);
    assert_false(ui_box_more_below(&b) || ui_box_more_above(&b));
}

static void test_wrap(void **state)
{
    (void)state;
    static const char text[] = "  alpha beta gamma delta\n\nsupercalifragilistic";
    const char *s;
    size_t len;
    int ind;
    /* 22 columns: 20 after the indent of 2, then the rest with 4 (a hanging indent) */
    assert_true(ui_box_line(text, 22, 0, &s, &len, &ind));
    assert_int_equal(ind, 2);
    assert_true(len == 16 && !memcmp(s, "alpha beta gamma", len));
    assert_true(ui_box_line(text, 22, 1, &s, &len, &ind));
    assert_int_equal(ind, 4);
    assert_true(len == 5 && !memcmp(s, "delta", len));
    assert_true(ui_box_line(text, 22, 2, &s, &len, &ind));  /* the empty line stays */
    assert_int_equal(len, 0);
    assert_true(ui_box_line(text, 22, 3, &s, &len, &ind));
    assert_true(len == 20 && !memcmp(s, "supercalifragilistic", len));
    assert_false(ui_box_line(text, 22, 4, &s, &len, &ind));
    /* a word longer than the line is cut */
    assert_true(ui_box_line("supercalifragilistic", 10, 1, &s, &len, &ind));
    assert_true(ind == 0 && len == 10 && !memcmp(s, "ragilistic", len));
    /* too narrow for an indent: none, so the text keeps its columns */
    assert_true(ui_box_line(text, 8, 0, &s, &len, &ind));
    assert_int_equal(ind, 0);
    ui_box b;
    ui_box_compute(text, 26, 10, 0, &b);  /* 22 columns inside */
    assert_int_equal(b.text.w, 22);
    assert_int_equal(b.n_lines, 4);
}

static int setup(void **state)
{
    (void)state;
    return ui_text_locale() ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_size),
        cmocka_unit_test(test_scrolls_at_80x24),
        cmocka_unit_test(test_wrap),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
