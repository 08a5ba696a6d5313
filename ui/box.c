/* Overlay box layout (see box.h). */
#include "ui/box.h"

#include <string.h>

#include "ui/text.h"

#define MIN_WRAP 10  /* columns a hanging indent must leave for the text */

/* The wrapped lines of text at width, in order; stops at line `want` (its bounds in *s, *len,
 * *indent) or, with want < 0, counts them all. Returns the number of lines walked. */
static int walk(const char *text, int width, int want, const char **s, size_t *len, int *indent)
{
    int n = 0;
    for (const char *p = text;;) {
        const char *e = strchr(p, '\n');
        size_t plen = e ? (size_t)(e - p) : strlen(p);
        size_t lead = strspn(p, " ");
        lead = lead < plen ? lead : plen;
        int ind = (int)lead <= width - MIN_WRAP ? (int)lead : 0;
        int hang = ind + 2 <= width - MIN_WRAP ? ind + 2 : ind;
        const char *body = p + lead;
        size_t blen = plen - lead, pos = 0;
        do {
            int in = pos ? hang : ind, cols;
            size_t end;
            size_t next = blen ? ui_text_wrap_line(body, blen, pos, width - in, &end, &cols) : 0;
            if (n == want) {
                *s = body + pos;
                *len = blen ? end - pos : 0;
                *indent = in;
                return n + 1;
            }
            n++;
            pos = next;
        } while (pos < blen);
        if (!e)
            return n;
        p = e + 1;
    }
}

bool ui_box_line(const char *text, int width, int line, const char **s, size_t *len,
                 int *indent)
{
    if (width < 1 || line < 0)
        return false;
    return walk(text, width, line, s, len, indent) == line + 1;
}

void ui_box_compute(const char *text, int cols, int rows, int top, ui_box *out)
{
    memset(out, 0, sizeof *out);
    int wmax = 0;
    for (const char *l = text;;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        int w = ui_text_width(l, len);
        wmax = w > wmax ? w : wmax;
        if (!e)
            break;
        l = e + 1;
    }
    int bw = (wmax > 0 ? wmax : 1) + 4;  /* an empty text still gets a column */
    bw = bw < cols ? bw : cols;
    if (cols - bw < 4)  /* a margin of a column or so would show pane text at the box's edge */
        bw = cols;
    if (bw < 5 || rows < 3)
        return;
    const char *s;
    size_t len;
    int ind;
    int n = walk(text, bw - 4, -1, &s, &len, &ind);
    int bh = n + 2 < rows ? n + 2 : rows;
    out->outer = (ui_rect){ (cols - bw) / 2, (rows - bh) / 2, bw, bh };
    out->text = (ui_rect){ out->outer.x + 2, out->outer.y + 1, bw - 4, bh - 2 };
    out->n_lines = n;
    int max_top = n - out->text.h;
    out->top = top < 0 ? 0 : top > max_top ? max_top : top;
}

bool ui_box_more_below(const ui_box *b)
{
    return b->top + b->text.h < b->n_lines;
}

bool ui_box_more_above(const ui_box *b)
{
    return b->top > 0;
}
