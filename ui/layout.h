/* Screen layout: pure rectangle maths from the terminal size, the number of panes, zoom and
 * focus. No curses here, so every size can be unit-tested.
 *
 *   row 0         global bar (devices, memory, broadcast/focus, key hints)  when rows >= 8
 *   rows 1..      panes: side by side when each gets >= 24 columns, else a grid (2x2, ...),
 *                 else stacked; when nothing fits, only the focused pane (degraded mode)
 *   bottom        input window, 1 to rows/3 lines
 *
 * Each pane: a header line, its transcript (body) and a status line (two when tall). Side-by-side
 * panes are separated by one column. Zoom gives the focused pane's body the whole screen but the
 * input line: plain text with no header, status or separators, so a terminal selection copies
 * just the text. */
#ifndef SIZEUP_UI_LAYOUT_H
#define SIZEUP_UI_LAYOUT_H

#include <stdbool.h>

#define UI_MAX_PANES 4

typedef struct ui_rect {
    int x, y, w, h;  /* w or h 0: not shown */
} ui_rect;

typedef struct ui_pane_rects {
    bool visible;
    ui_rect outer;   /* header + body + status */
    ui_rect header, body, status;
} ui_pane_rects;

typedef enum ui_layout_mode {
    UI_LAYOUT_GRID = 0,  /* all panes: side by side (one row), stacked (one column) or a grid */
    UI_LAYOUT_SINGLE,    /* too small for all: the focused pane only */
    UI_LAYOUT_ZOOM,
} ui_layout_mode;

typedef struct ui_layout {
    int cols, rows;
    ui_layout_mode mode;
    int grid_cols, grid_rows;
    ui_rect bar, input;
    ui_pane_rects pane[UI_MAX_PANES];
    ui_rect sep[UI_MAX_PANES];  /* vertical separators, left of a pane that has a neighbour */
} ui_layout;

/* Lay out n_panes (1..UI_MAX_PANES; clamped) on a cols x rows screen. input_lines is how many
 * lines the input wants (1 + its newlines); it gets at most a third of the screen. */
void ui_layout_compute(int cols, int rows, int n_panes, bool zoom, int focus, int input_lines,
                       ui_layout *out);

#endif
