/* An overlay box (the help, /stats) over the panes: where it goes, its text wrapped to it, and
 * which lines show when the text is taller than the screen. Pure; no curses (draw.c draws it,
 * the app scrolls it), so every size can be unit-tested.
 *
 * The box is the text's width plus a border of 2 columns each side and a row above and below,
 * centred, never larger than the area. Lines too long for it wrap at blanks; a wrapped line
 * keeps its paragraph's indent and two columns more (a hanging indent), where that leaves room.
 * A text taller than the box scrolls: top is the first wrapped line shown. */
#ifndef SIZEUP_UI_BOX_H
#define SIZEUP_UI_BOX_H

#include <stdbool.h>
#include <stddef.h>

#include "ui/layout.h"

typedef struct ui_box {
    ui_rect outer;    /* border included; w and h 0: the area is too small for a box */
    ui_rect text;     /* where the lines go, inside the border */
    int n_lines;      /* the text's lines wrapped to text.w */
    int top;          /* the first line shown: 0 .. n_lines - text.h (0 when all fit) */
} ui_box;

/* Lay text (UTF-8, lines separated by '\n') out on an area of cols x rows (from 0,0), scrolled
 * to show line top first (clamped). */
void ui_box_compute(const char *text, int cols, int rows, int top, ui_box *out);

/* Wrapped line `line` (0-based) of text at width: *s, *len (borrowed from text) and *indent
 * (columns to leave blank before it). false past the last line. */
bool ui_box_line(const char *text, int width, int line, const char **s, size_t *len,
                 int *indent);

/* More lines below or above those shown. */
bool ui_box_more_below(const ui_box *b);
bool ui_box_more_above(const ui_box *b);

#endif
