/* The size view (F4): the panes' models in one table, a column per model and a row per figure
 * (parameters, quantization, file size, memory, prompt and generation speed, time to first
 * token, bits per byte, and the scheduling mode the speeds were measured in), each numeric cell
 * with a bar scaled to the largest value of its row, so sizes and speeds compare at a glance.
 *
 * Plain data filled by the app (texts already formatted, values for the bars); the layout here
 * is pure arithmetic from the rectangle it gets (unit-tested); ui/draw.c draws it. */
#ifndef SIZEUP_UI_SIZEVIEW_H
#define SIZEUP_UI_SIZEVIEW_H

#include "ui/layout.h"

typedef enum ui_size_fig {
    /* in the order shown, which is the order rows are given up in when space is short */
    UI_SIZE_PARAMS = 0, UI_SIZE_QUANT, UI_SIZE_FILE, UI_SIZE_MEM, UI_SIZE_PP, UI_SIZE_TG,
    UI_SIZE_MODE, UI_SIZE_TTFT, UI_SIZE_BPB, UI_SIZE_N
} ui_size_fig;

typedef struct ui_size_view {
    int n;                                        /* models (panes) */
    char name[UI_MAX_PANES][64];
    char text[UI_MAX_PANES][UI_SIZE_N][24];       /* "-" when not known or not measured */
    double value[UI_MAX_PANES][UI_SIZE_N];        /* the bar's length source; <= 0: no bar */
} ui_size_view;

/* The row's name: "parameters", "quant", ... (static). */
const char *ui_size_label(ui_size_fig f);

typedef struct ui_size_layout {
    int label_w;     /* the figure names' column */
    int cell_w;      /* each model's column; one blank column goes before each */
    int text_w;      /* the value's part of a cell */
    int bar_w;       /* the bar's part after one blank (0: no room for bars) */
    int n_models;    /* model columns shown (the first ones; the rest do not fit) */
    int title;       /* 1: a title row first (when every figure row fits with it), else 0 */
    int n_rows;      /* figure rows shown under the title and the names row */
} ui_size_layout;

/* Lay out n_models columns and every figure row in w x h cells. */
void ui_size_layout_compute(int w, int h, int n_models, ui_size_layout *L);
/* Cells of a bar for v when the row's largest value is max: 0..bar_w, at least 1 for v > 0. */
int ui_size_bar_cells(double v, double max, int bar_w);

#endif
