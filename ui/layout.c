/* Screen layout (see layout.h). */
#include "ui/layout.h"

#include <string.h>

#define MIN_PANE_H 4   /* header, two lines of text, status */

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Header, body and status inside a pane's outer rectangle. */
static void split_pane(ui_pane_rects *p, ui_rect r)
{
    p->visible = r.w > 0 && r.h > 0;
    p->outer = r;
    int head = r.h >= 2 ? 1 : 0;
    int stat = r.h >= 12 ? 2 : r.h >= 4 ? 1 : 0;
    p->header = (ui_rect){ r.x, r.y, r.w, head };
    p->body = (ui_rect){ r.x, r.y + head, r.w, r.h - head - stat };
    p->status = (ui_rect){ r.x, r.y + r.h - stat, r.w, stat };
}

/* The number of grid columns that gives every pane at least min_w columns and MIN_PANE_H rows,
 * preferring one row (side by side), then fewer columns; 0 when none does. */
static int pick_grid(int n, int w, int h, int min_w)
{
    for (int c = n; c >= 1; c--) {
        int r = (n + c - 1) / c;
        if (c > 1 && (c - 1) * r >= n)
            continue;  /* fewer columns fill the same rows better (2x2 rather than 3+1) */
        if ((w - (c - 1)) / c >= min_w && h / r >= MIN_PANE_H)
            return c;
    }
    return 0;
}

/* Place n panes in a grid of c columns over area a; a short last row spreads over the width. */
static void place_grid(ui_layout *L, int n, int c, ui_rect a)
{
    int r = (n + c - 1) / c;
    L->grid_cols = c;
    L->grid_rows = r;
    for (int row = 0, i = 0; row < r; row++) {
        int k = n - i < c ? n - i : c;  /* panes in this row */
        int y = a.y + row * (a.h / r) + (row < a.h % r ? row : a.h % r);
        int h = a.h / r + (row < a.h % r ? 1 : 0);
        int x = a.x, w_all = a.w - (k - 1);
        for (int j = 0; j < k; j++, i++) {
            int w = w_all / k + (j < w_all % k ? 1 : 0);
            if (j > 0) {
                L->sep[i] = (ui_rect){ x, y, 1, h };
                x++;
            }
            split_pane(&L->pane[i], (ui_rect){ x, y, w, h });
            x += w;
        }
    }
}

void ui_layout_compute(int cols, int rows, int n_panes, bool zoom, int focus, int input_lines,
                       ui_layout *out)
{
    memset(out, 0, sizeof *out);
    if (cols < 1 || rows < 1)
        return;
    int n = clampi(n_panes, 1, UI_MAX_PANES);
    focus = clampi(focus, 0, n - 1);
    out->cols = cols;
    out->rows = rows;
    int in_h = clampi(input_lines, 1, rows / 3 > 1 ? rows / 3 : 1);
    out->input = (ui_rect){ 0, rows - in_h, cols, in_h };
    if (zoom) {
        out->mode = UI_LAYOUT_ZOOM;
        ui_pane_rects *p = &out->pane[focus];
        p->visible = rows - in_h > 0;
        p->outer = p->body = (ui_rect){ 0, 0, cols, rows - in_h };
        return;
    }
    int bar = rows >= 8 && cols >= 20 ? 1 : 0;
    out->bar = (ui_rect){ 0, 0, cols, bar };
    ui_rect area = { 0, bar, cols, rows - bar - in_h };
    if (area.h <= 0)
        return;
    int c = pick_grid(n, area.w, area.h, 24);
    if (!c)
        c = pick_grid(n, area.w, area.h, 16);
    if (c) {
        out->mode = UI_LAYOUT_GRID;
        place_grid(out, n, c, area);
    } else {
        out->mode = UI_LAYOUT_SINGLE;
        out->grid_cols = out->grid_rows = 1;
        split_pane(&out->pane[focus], area);
    }
}
