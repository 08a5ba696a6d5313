/* The size view's layout (see sizeview.h): pure arithmetic, no curses. */
#include "ui/sizeview.h"

const char *ui_size_label(ui_size_fig f)
{
    static const char *const names[UI_SIZE_N] = {
        "parameters", "quant", "file size", "memory", "prompt t/s", "gen t/s",
        "measured in", "first token", "bits/byte",
    };
    return (unsigned)f < UI_SIZE_N ? names[f] : "?";
}

void ui_size_layout_compute(int w, int h, int n_models, ui_size_layout *L)
{
    *L = (ui_size_layout){ 0 };
    if (w < 8 || h < 2 || n_models < 1)
        return;
    L->label_w = w >= 36 ? 11 : w / 4;
    /* as many model columns as get 6 cells each, the first ones first */
    int n = n_models > UI_MAX_PANES ? UI_MAX_PANES : n_models;
    while (n > 1 && (w - L->label_w) / n - 1 < 6)
        n--;
    L->n_models = n;
    L->cell_w = (w - L->label_w) / n - 1;
    if (L->cell_w < 1) {
        L->n_models = 0;
        L->cell_w = 0;
        return;
    }
    L->text_w = L->cell_w < 10 ? L->cell_w : 10;
    L->bar_w = L->cell_w - L->text_w - 1;
    if (L->bar_w < 2)
        L->bar_w = 0;
    L->title = h >= UI_SIZE_N + 2;
    L->n_rows = h - 1 - L->title < UI_SIZE_N ? h - 1 - L->title : UI_SIZE_N;
}

int ui_size_bar_cells(double v, double max, int bar_w)
{
    if (v <= 0 || max <= 0 || bar_w <= 0)
        return 0;
    int n = (int)(v / max * bar_w + 0.5);
    return n < 1 ? 1 : n > bar_w ? bar_w : n;
}
