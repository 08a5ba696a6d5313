/* Layout at every size from 1x1 to 220x60, 1-4 panes, each focus, zoomed or not: every
 * rectangle inside the screen, none overlapping, the focused pane always there; every pane
 * usable (header, 2+ text lines, status) from 40x10 up; sensible shapes at common sizes. */
#include "tests/testutil.h"

#include "ui/layout.h"

/* Every rectangle the layout hands out, for the overlap check. */
static int collect(const ui_layout *L, ui_rect *r)
{
    int n = 0;
    r[n++] = L->bar;
    r[n++] = L->input;
    for (int i = 0; i < UI_MAX_PANES; i++) {
        r[n++] = L->sep[i];
        if (L->pane[i].visible) {
            r[n++] = L->pane[i].header;
            r[n++] = L->pane[i].body;
            r[n++] = L->pane[i].status;
        }
    }
    return n;
}

static bool overlap(ui_rect a, ui_rect b)
{
    if (a.w <= 0 || a.h <= 0 || b.w <= 0 || b.h <= 0)
        return false;
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

static void check_one(int cols, int rows, int n, bool zoom, int focus, int input_lines)
{
    ui_layout L;
    ui_layout_compute(cols, rows, n, zoom, focus, input_lines, &L);
    ui_rect r[3 + 4 * UI_MAX_PANES];
    int k = collect(&L, r);
    for (int i = 0; i < k; i++) {
        if (r[i].w < 0 || r[i].h < 0 || (r[i].w && r[i].h &&
            (r[i].x < 0 || r[i].y < 0 || r[i].x + r[i].w > cols || r[i].y + r[i].h > rows)))
            fail_msg("%dx%d n=%d zoom=%d focus=%d: rect %d (%d,%d %dx%d) off screen", cols, rows,
                     n, zoom, focus, i, r[i].x, r[i].y, r[i].w, r[i].h);
        for (int j = 0; j < i; j++)
            if (overlap(r[i], r[j]))
                fail_msg("%dx%d n=%d zoom=%d focus=%d: rects %d and %d overlap", cols, rows, n,
                         zoom, focus, i, j);
    }
    assert_true(L.input.h >= 1 && L.input.w == cols);
    if (rows >= 2) {
        const ui_pane_rects *p = &L.pane[focus];
        if (!p->visible || p->body.h < 1)
            fail_msg("%dx%d n=%d zoom=%d: focused pane %d has no text rows", cols, rows, n, zoom,
                     focus);
    }
    /* a multi-line input may take rows from the panes for as long as it is being typed */
    if (cols >= 40 && rows >= 10 && !zoom && input_lines == 1) {
        if (L.mode != UI_LAYOUT_GRID)
            fail_msg("%dx%d n=%d: not every pane shown", cols, rows, n);
        assert_int_equal(L.bar.h, 1);
        for (int i = 0; i < n; i++) {
            const ui_pane_rects *p = &L.pane[i];
            if (!p->visible || p->header.h != 1 || p->status.h < 1 || p->body.h < 2 ||
                p->body.w < 16)
                fail_msg("%dx%d n=%d: pane %d too small (body %dx%d)", cols, rows, n, i,
                         p->body.w, p->body.h);
        }
    }
    if (zoom) {
        assert_int_equal(L.pane[focus].header.h, 0);
        assert_int_equal(L.pane[focus].status.h, 0);
        assert_int_equal(L.pane[focus].body.w, cols);
    }
}

static void test_every_size(void **state)
{
    (void)state;
    for (int cols = 1; cols <= 220; cols += (cols < 50 ? 1 : 7))
        for (int rows = 1; rows <= 60; rows += (rows < 16 ? 1 : 5))
            for (int n = 1; n <= UI_MAX_PANES; n++)
                for (int focus = 0; focus < n; focus++) {
                    for (int in = 1; in <= 4; in++) {
                        check_one(cols, rows, n, false, focus, in);
                        check_one(cols, rows, n, true, focus, in);
                    }
                }
}

static void test_shapes(void **state)
{
    (void)state;
    ui_layout L;
    ui_layout_compute(200, 50, 2, false, 0, 1, &L);  /* side by side, halves */
    assert_int_equal(L.grid_cols, 2);
    assert_int_equal(L.pane[0].outer.w + L.pane[1].outer.w + 1, 200);
    assert_int_equal(L.pane[1].outer.x, L.pane[0].outer.w + 1);
    assert_int_equal(L.pane[0].status.h, 2);
    ui_layout_compute(80, 24, 3, false, 0, 1, &L);  /* three of 26 columns */
    assert_int_equal(L.grid_cols, 3);
    ui_layout_compute(80, 24, 4, false, 0, 1, &L);  /* 2x2 rather than 3+1 */
    assert_int_equal(L.grid_cols, 2);
    assert_int_equal(L.grid_rows, 2);
    ui_layout_compute(40, 30, 2, false, 0, 1, &L);  /* narrow: stacked */
    assert_int_equal(L.grid_cols, 1);
    assert_int_equal(L.pane[1].outer.y, L.pane[0].outer.y + L.pane[0].outer.h);
    ui_layout_compute(20, 5, 2, false, 1, 1, &L);   /* degraded: the focused pane + input */
    assert_int_equal(L.mode, UI_LAYOUT_SINGLE);
    assert_true(L.pane[1].visible && !L.pane[0].visible);
    assert_int_equal(L.bar.h, 0);
    assert_int_equal(L.input.y, 4);
    ui_layout_compute(80, 24, 2, false, 0, 20, &L);  /* a long input gets a third at most */
    assert_int_equal(L.input.h, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_size),
        cmocka_unit_test(test_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
