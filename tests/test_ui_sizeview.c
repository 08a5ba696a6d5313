/* The size view's layout (ui/sizeview.c) at every size from 1x1 to 220x60 with 1-4 models:
 * everything inside the rectangle, text and bar inside their cell, the first model always
 * there from 8 columns; and the shapes at 80x24 and 40x10 (the sizes looked at in tmux). */
#include "tests/testutil.h"

#include "ui/sizeview.h"

static void test_every_size(void **state)
{
    (void)state;
    for (int w = 1; w <= 220; w++)
        for (int h = 1; h <= 60; h++)
            for (int n = 1; n <= UI_MAX_PANES; n++) {
                ui_size_layout L;
                ui_size_layout_compute(w, h, n, &L);
                assert_true(L.n_models >= 0 && L.n_models <= n);
                assert_true(L.label_w + L.n_models * (L.cell_w + 1) <= w);
                assert_true(L.title + 1 + L.n_rows <= h || L.n_models == 0);
                assert_true(L.n_rows <= UI_SIZE_N);
                assert_true(L.text_w <= L.cell_w);
                if (L.bar_w)
                    assert_true(L.text_w + 1 + L.bar_w <= L.cell_w);
                if (w >= 8 && h >= 2)
                    assert_true(L.n_models >= 1);
            }
}

static void test_shapes(void **state)
{
    (void)state;
    ui_size_layout L;
    /* 80x24 less the bar and the input line: two models, every row, a title, wide bars */
    ui_size_layout_compute(80, 22, 2, &L);
    assert_int_equal(L.n_models, 2);
    assert_int_equal(L.n_rows, UI_SIZE_N);
    assert_int_equal(L.title, 1);
    assert_true(L.bar_w >= 16);
    /* four models at 80 columns still get bars */
    ui_size_layout_compute(80, 22, 4, &L);
    assert_int_equal(L.n_models, 4);
    assert_true(L.bar_w >= 2);
    /* 40x10 less the bar and the input line: both models, short bars, the speeds and the mode
     * they were measured in kept, no title */
    ui_size_layout_compute(40, 8, 2, &L);
    assert_int_equal(L.n_models, 2);
    assert_int_equal(L.title, 0);
    assert_int_equal(L.n_rows, 7);
    assert_true(UI_SIZE_MODE < L.n_rows && UI_SIZE_TG < L.n_rows);
    assert_true(L.bar_w >= 2);
    /* four models at 40 columns: all four in narrow cells, no room for bars */
    ui_size_layout_compute(40, 8, 4, &L);
    assert_int_equal(L.n_models, 4);
    assert_true(L.cell_w >= 6);
    assert_int_equal(L.bar_w, 0);
}

static void test_bars(void **state)
{
    (void)state;
    assert_int_equal(ui_size_bar_cells(10, 10, 20), 20);
    assert_int_equal(ui_size_bar_cells(5, 10, 20), 10);
    assert_int_equal(ui_size_bar_cells(0.001, 10, 20), 1);   /* tiny but there */
    assert_int_equal(ui_size_bar_cells(0, 10, 20), 0);
    assert_int_equal(ui_size_bar_cells(-1, 10, 20), 0);      /* not measured */
    assert_int_equal(ui_size_bar_cells(30, 10, 20), 20);     /* never past the cell */
    assert_int_equal(ui_size_bar_cells(5, 10, 0), 0);
    assert_string_equal(ui_size_label(UI_SIZE_MODE), "measured in");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_size),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_bars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
