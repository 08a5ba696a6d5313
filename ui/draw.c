/* The drawing layer (see draw.h): every curses call and terminal write of sizeup's TUI. */
#define NCURSES_WIDECHAR 1
#include "ui/draw.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include "ui/box.h"
#include "ui/text.h"

/* Terminal modes turned on at open; the "off" string undoes all of them plus what curses may
 * have left (cursor hidden, alternate screen), so it is also the emergency restore. */
#define MODES_ON "\033[?2004h\033[?1000h\033[?1006h"
#define MODES_OFF "\033[?1000l\033[?1006l\033[?2004l\033[?25h\033[?1049l\033[0m"

enum { PAIR_USER = 1, PAIR_ERROR, PAIR_INFO, PAIR_STATUS, PAIR_FOCUS };

static struct {
    bool open, color;
    struct termios saved;
    bool have_saved;
} D;

static void raw_write(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(STDOUT_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void init_colors(void)
{
    const char *nc = getenv("NO_COLOR");
    D.color = has_colors() && !(nc && *nc);
    if (!D.color)
        return;
    start_color();
    use_default_colors();
    bool c256 = COLORS >= 256, c16 = COLORS >= 16;
    init_pair(PAIR_USER, (short)(c256 ? 75 : c16 ? COLOR_CYAN + 8 : COLOR_CYAN), -1);
    init_pair(PAIR_ERROR, (short)(c256 ? 203 : c16 ? COLOR_RED + 8 : COLOR_RED), -1);
    init_pair(PAIR_INFO, (short)(c256 ? 179 : COLOR_YELLOW), -1);
    init_pair(PAIR_STATUS, (short)(c256 ? 108 : COLOR_GREEN), -1);
    init_pair(PAIR_FOCUS, COLOR_BLACK, (short)(c256 ? 75 : COLOR_CYAN));
}

static attr_t color(int pair)
{
    return D.color ? (attr_t)COLOR_PAIR(pair) : 0;
}

bool ui_draw_open(void)
{
    D.have_saved = tcgetattr(STDIN_FILENO, &D.saved) == 0;
    if (!initscr())
        return false;
    D.open = true;
    raw();
    noecho();
    nonl();
    keypad(stdscr, FALSE);  /* keys are read as bytes by ui/input.c, not by curses */
    init_colors();
    refresh();
    raw_write(MODES_ON);
    return true;
}

void ui_draw_close(void)
{
    if (!D.open)
        return;
    D.open = false;
    raw_write("\033[?1000l\033[?1006l\033[?2004l");
    curs_set(1);
    endwin();
    raw_write("\033[?25h");
    if (D.have_saved)
        tcsetattr(STDIN_FILENO, TCSANOW, &D.saved);
}

void ui_draw_emergency(void)
{
    ui_draw_emergency_to(STDOUT_FILENO);
}

void ui_draw_emergency_to(int fd)
{
    static const char off[] = MODES_OFF "\r\n";
    ssize_t w = write(fd, off, sizeof off - 1);
    (void)w;
    if (D.have_saved)
        tcsetattr(STDIN_FILENO, TCSANOW, &D.saved);
}

void ui_draw_suspend(void)
{
    if (!D.open)
        return;
    raw_write("\033[?1000l\033[?1006l\033[?2004l");
    endwin();
}

void ui_draw_resume(void)
{
    if (!D.open)
        return;
    reset_prog_mode();
    raw_write(MODES_ON);
    clear();
    refresh();
}

void ui_draw_mouse(bool on)
{
    raw_write(on ? "\033[?1000h\033[?1006h" : "\033[?1000l\033[?1006l");
}

void ui_draw_size(int *cols, int *rows)
{
    *cols = COLS;
    *rows = LINES;
}

void ui_draw_resize(int *cols, int *rows)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0)
        resizeterm(ws.ws_row, ws.ws_col);
    clear();
    ui_draw_size(cols, rows);
}

/* One cluster of cols columns at the cursor. curses measures cells with wcwidth per code point;
 * where that disagrees with the cluster's width (ZWJ sequences, VS16, flags) only the leading
 * code point and its zero-width marks are drawn and the rest of the width is padded, so columns
 * stay aligned whatever the terminal makes of the sequence. */
static void put_cluster(const char *s, size_t len, int cols, attr_t attr)
{
    wchar_t wch[CCHARW_MAX + 1];
    int n = 0, curses_w = 0;
    uint32_t cp;
    for (size_t pos = 0; pos < len && n < CCHARW_MAX;) {
        pos += ui_text_decode(s + pos, len - pos, &cp);
        int w = ui_text_cp_width(cp);
        if (n > 0 && (w > 0 || cp == 0x200D))
            break;
        if (n == 0 && w == 0) {  /* a mark with nothing to sit on: a dotted circle base */
            wch[n++] = 0x25CC;
            w = 1;
        }
        wch[n++] = (wchar_t)cp;
        curses_w += w;
    }
    wch[n] = 0;
    if (curses_w > cols) {  /* never spill: show a replacement of the right width */
        wch[0] = L'?';
        wch[1] = 0;
        curses_w = 1;
    }
    cchar_t cc;
    if (setcchar(&cc, wch, attr, 0, NULL) == OK)
        add_wch(&cc);
    for (int i = curses_w; i < cols; i++)
        addch(' ' | attr);
}

/* Text at (y, x) within w columns, padded with blanks; tabs expand from x. Bytes below 0x20
 * (only in the input line: pane text is sanitized) are shown as ^X. */
static void put_text(int y, int x, int w, const char *s, size_t len, attr_t attr)
{
    int col = 0, cw;
    move(y, x);
    for (size_t pos = 0; pos < len && col < w;) {
        unsigned char c = (unsigned char)s[pos];
        size_t n = ui_text_cluster(s, len, pos, col, &cw);
        if (col + cw > w)
            break;
        if (c == '\t') {
            for (int i = 0; i < cw; i++)
                addch(' ' | attr);
        } else if (c < 0x20 || c == 0x7F) {
            addch('^' | attr);
            if (col + 2 <= w)
                addch((chtype)(c == 0x7F ? '?' : c + 0x40) | attr);
            cw = 2;
            n = 1;
        } else if (c == 0xC2 && pos + 1 < len && (unsigned char)s[pos + 1] <= 0x9F) {
            /* a C1 control (U+0080..U+009F: 8-bit CSI, OSC, ...) as the sanitizer shows it */
            const char c1[3] = { '^', '[', (char)((unsigned char)s[pos + 1] - 0x40) };
            for (int i = 0; i < 3 && col + i < w; i++)
                addch((chtype)(unsigned char)c1[i] | attr);
            cw = col + 3 <= w ? 3 : w - col;
            n = 2;
        } else {
            put_cluster(s + pos, n, cw, attr);
        }
        col += cw;
        pos += n;
    }
    for (; col < w; col++)
        addch(' ' | attr);
}

static attr_t role_attr(ui_role r)
{
    switch (r) {
    case UI_ROLE_USER: return color(PAIR_USER) | A_BOLD;
    case UI_ROLE_ERROR: return color(PAIR_ERROR) | A_BOLD;
    case UI_ROLE_INFO: return D.color ? color(PAIR_INFO) : A_DIM;
    default: return A_NORMAL;
    }
}

static void draw_body(ui_pane *p, ui_rect r, bool full)
{
    if (r.w <= 0 || r.h <= 0)
        return;
    ui_pane_set_width(p, r.w);
    if (full)
        ui_pane_touch(p);
    int from, to;
    if (ui_pane_dirty_rows(p, r.h, &from, &to)) {
        size_t top = ui_pane_top_line(p, r.h), n = ui_pane_line_count(p);
        for (int row = from; row < to; row++) {
            size_t i = top + (size_t)row, len = 0;
            int cols;
            ui_role role = UI_ROLE_MODEL;
            const char *s = i < n ? ui_pane_line(p, i, &len, &cols, &role) : "";
            put_text(r.y + row, r.x, r.w, s, len, role_attr(role));
        }
    }
    ui_pane_drawn(p, r.h);
}

/* ---- the input window ---- */

typedef struct in_walk {
    int rows, cur_row, cur_col;
} in_walk;

/* Lay out prompt + input over rows of `width` columns, breaking at '\n' and at the edge; with
 * draw set, draw the rows [first, first + h) at screen row y0. */
static void walk_input(const ui_screen *s, int width, bool draw, int first, int y0, int h,
                       in_walk *out)
{
    int row = 0, col = 0, cw;
    out->cur_row = out->cur_col = -1;
    for (int seg = 0; seg < 2; seg++) {
        const char *t = seg ? s->input : s->prompt;
        size_t len = seg ? s->input_len : strlen(t);
        attr_t attr = seg ? A_NORMAL : A_BOLD | color(PAIR_USER);
        for (size_t pos = 0; pos <= len;) {
            if (seg && pos == s->input_cursor && out->cur_row < 0) {
                if (col >= width)
                    row++, col = 0;
                out->cur_row = row;
                out->cur_col = col;
            }
            if (pos == len)
                break;
            unsigned char c = (unsigned char)t[pos];
            if (c == '\n') {
                row++, col = 0, pos++;
                continue;
            }
            size_t n = ui_text_cluster(t, len, pos, col, &cw);
            if (c < 0x20 || c == 0x7F)
                n = 1, cw = c == '\t' ? cw : 2;
            else if (c == 0xC2 && pos + 1 < len && (unsigned char)t[pos + 1] <= 0x9F)
                n = 2, cw = 3;  /* a C1 control, drawn as ^[X by put_text */
            if (col + cw > width && col > 0)
                row++, col = 0;
            if (draw && row >= first && row < first + h)
                put_text(y0 + row - first, col, cw < width ? cw : width, t + pos, n, attr);
            col += cw;
            pos += n;
        }
    }
    out->rows = row + 1;
}

int ui_draw_input_rows(const ui_screen *s, int width)
{
    in_walk w;
    walk_input(s, width > 0 ? width : 1, false, 0, 0, 0, &w);
    return w.rows;
}

static void draw_input(const ui_screen *s, ui_rect r, int *cy, int *cx)
{
    in_walk w;
    walk_input(s, r.w, false, 0, 0, 0, &w);
    int first = w.cur_row >= r.h ? w.cur_row - r.h + 1 : 0;
    for (int i = 0; i < r.h; i++)
        put_text(r.y + i, r.x, r.w, "", 0, A_NORMAL);
    walk_input(s, r.w, true, first, r.y, r.h, &w);
    *cy = r.y + w.cur_row - first;
    *cx = w.cur_col < r.w ? w.cur_col : r.w - 1;
}

/* ---- header, status, bar, overlay ---- */

static void draw_header(const ui_screen *s, int i, ui_rect r)
{
    if (r.h <= 0)
        return;
    ui_pane *p = s->panes[i];
    const ui_pane_info *in = ui_pane_info_of(p);
    char buf[512], more[32] = "";
    if (ui_pane_scrolled(p) > 0)
        snprintf(more, sizeof more, " [scrolled %ld]", ui_pane_scrolled(p));
    /* the weights' type (detail's first field) before the mode: panes side by side cut the
     * header, and the type is what tells two panes of one model apart */
    size_t k = strcspn(in->detail, "|");
    k = k && in->detail[k] ? k - 1 : k;
    const char *rest = in->detail[k] ? in->detail + k : "";
    snprintf(buf, sizeof buf, "%s%d %s | %.*s%s%s%s%s", i == s->focus ? ">" : " ", i + 1, in->name,
             (int)k, in->detail, k ? " | " : "", in->mode, rest, more);
    attr_t a = i == s->focus ? (D.color ? color(PAIR_FOCUS) : A_REVERSE) | A_BOLD : A_REVERSE;
    put_text(r.y, r.x, r.w, buf, strlen(buf), a);
}

static void draw_status(ui_pane *p, ui_rect r)
{
    char buf[512];
    for (int line = 0; line < r.h; line++) {
        ui_status_format(ui_pane_status_of(p), line, r.h, r.w, buf, sizeof buf);
        ui_phase ph = ui_pane_status_of(p)->phase;
        attr_t a = ph == UI_PHASE_ERROR ? color(PAIR_ERROR) : D.color ? color(PAIR_STATUS) : A_DIM;
        put_text(r.y + line, r.x, r.w, buf, strlen(buf), a);
    }
}

static void draw_bar(const ui_screen *s, ui_rect r)
{
    if (r.h <= 0)
        return;
    char buf[768], target[32];
    if (s->broadcast)
        snprintf(target, sizeof target, "to all panes");
    else
        snprintf(target, sizeof target, "to pane %d", s->focus + 1);
    if (s->notice)  /* first, so that a narrow terminal still shows it whole */
        snprintf(buf, sizeof buf, " %s | %s | %s", s->notice, target, s->bar ? s->bar : "");
    else
        snprintf(buf, sizeof buf, " sizeup | %s | %s | %s", target, s->bar ? s->bar : "",
                 "Tab focus  F2 all/one  F3 fair/concurrent  F4 sizes  Esc stop  F5 zoom  "
                 "F6 pager  F7 copy  F1 help  /quit");
    put_text(r.y, r.x, r.w, buf, strlen(buf), A_REVERSE | (s->notice ? A_BOLD : 0));
}

/* The first of the candidates (NULL-ended) that fits w columns, else "". */
static const char *fitting(const char *const *cand, int w)
{
    for (; *cand; cand++)
        if (ui_text_width(*cand, strlen(*cand)) <= w)
            return *cand;
    return "";
}

/* The borders of a box whose text scrolls say where it stands and which keys move it. */
static void draw_box_borders(const ui_box *b)
{
    attr_t a = A_REVERSE;
    ui_rect o = b->outer;
    char pos[96], mid[96], shrt[32];
    const char *top[] = { " more above (Up, PgUp, Home) ", " more above ", NULL };
    const char *bottom[] = { pos, mid, shrt, NULL };
    bool scrolls = b->n_lines > b->text.h, below = ui_box_more_below(b);
    int first = b->top + 1, last = b->top + b->text.h;
    snprintf(pos, sizeof pos, " lines %d-%d of %d, %s ", first, last, b->n_lines,
             below ? "more below (Down, PgDn, End)" : "the end");
    snprintf(mid, sizeof mid, " %d-%d/%d, %s ", first, last, b->n_lines,
             below ? "more below" : "end");
    snprintf(shrt, sizeof shrt, " %d-%d/%d ", first, last, b->n_lines);
    const char *t = ui_box_more_above(b) ? fitting(top, o.w - 2) : "";
    const char *u = scrolls ? fitting(bottom, o.w - 2) : "";
    put_text(o.y, o.x, 1, "", 0, a);
    put_text(o.y, o.x + 1, o.w - 1, t, strlen(t), a | A_BOLD);
    put_text(o.y + o.h - 1, o.x, 1, "", 0, a);
    put_text(o.y + o.h - 1, o.x + 1, o.w - 1, u, strlen(u), a | A_BOLD);
}

/* The help or /stats box over the panes, scrolled to s->overlay_top (see ui/box.h). */
static void draw_overlay(const ui_screen *s, int cols, int rows)
{
    ui_box b;
    ui_box_compute(s->overlay, cols, rows, s->overlay_top, &b);
    if (!b.outer.w)
        return;
    draw_box_borders(&b);
    attr_t a = A_REVERSE;
    for (int i = 0; i < b.text.h; i++) {
        int y = b.text.y + i, ind = 0;
        const char *l = "";
        size_t len = 0;
        ui_box_line(s->overlay, b.text.w, b.top + i, &l, &len, &ind);
        put_text(y, b.outer.x, 2, "", 0, a);
        put_text(y, b.text.x, ind, "", 0, A_NORMAL);
        put_text(y, b.text.x + ind, b.text.w - ind, l, len, A_NORMAL);
        put_text(y, b.text.x + b.text.w, 2, "", 0, a);
    }
}

/* The size view over the panes' area: a title when there is room, the models' names, then a row
 * per figure with each cell's value and its bar (scaled to the row's largest value). */
static void draw_size_view(const ui_size_view *v, ui_rect r)
{
    ui_size_layout S;
    ui_size_layout_compute(r.w, r.h, v->n, &S);
    for (int i = 0; i < r.h; i++)
        put_text(r.y + i, r.x, r.w, "", 0, A_NORMAL);
    if (!S.n_models)
        return;
    static const char title[] = "Model sizes and speeds (F4: back to the panes); bars: against "
                                "the row's largest";
    int y = r.y;
    if (S.title)
        put_text(y++, r.x, r.w, title, sizeof title - 1, A_BOLD);
    for (int m = 0; m < S.n_models; m++)
        put_text(y, r.x + S.label_w + m * (S.cell_w + 1) + 1, S.cell_w, v->name[m],
                 strlen(v->name[m]), A_BOLD | A_UNDERLINE);
    y++;
    char bar[4 * 64 + 1];
    for (int f = 0; f < S.n_rows; f++, y++) {
        const char *label = ui_size_label((ui_size_fig)f);
        put_text(y, r.x, S.label_w, label, strlen(label), A_BOLD);
        double max = 0;
        for (int m = 0; m < v->n; m++)
            max = v->value[m][f] > max ? v->value[m][f] : max;
        for (int m = 0; m < S.n_models; m++) {
            int x = r.x + S.label_w + m * (S.cell_w + 1) + 1;
            const char *t = v->text[m][f];
            put_text(y, x, S.text_w, t, strlen(t), A_NORMAL);
            int n = ui_size_bar_cells(v->value[m][f], max, S.bar_w < 64 ? S.bar_w : 64);
            for (int i = 0; i < n; i++)
                memcpy(bar + 3 * i, "\xE2\x96\x88", 3);  /* U+2588 full block */
            if (S.bar_w)
                put_text(y, x + S.text_w + 1, S.bar_w, bar, 3 * (size_t)n, color(PAIR_STATUS));
        }
    }
}

void ui_draw_frame(const ui_screen *s, const ui_layout *L, bool full)
{
    if (!D.open)
        return;
    if (full)
        erase();
    draw_bar(s, L->bar);
    if (s->size) {
        int top = L->bar.y + L->bar.h;
        draw_size_view(s->size, (ui_rect){ 0, top, L->cols, L->input.y - top });
    }
    for (int i = 0; i < s->n_panes && i < UI_MAX_PANES && !s->size; i++) {
        const ui_pane_rects *pr = &L->pane[i];
        if (!pr->visible)
            continue;
        draw_header(s, i, pr->header);
        draw_body(s->panes[i], pr->body, full);
        draw_status(s->panes[i], pr->status);
        const ui_rect *sep = &L->sep[i];
        for (int y = 0; y < sep->h; y++)
            put_text(sep->y + y, sep->x, 1, "\xE2\x94\x82", 3, A_NORMAL);  /* U+2502 */
    }
    if (s->overlay)
        draw_overlay(s, L->cols, L->rows - L->input.h);
    int cy = L->input.y, cx = 0;
    if (L->input.h > 0)
        draw_input(s, L->input, &cy, &cx);
    move(cy, cx);
    curs_set(1);
    refresh();
}

void ui_draw_osc52(const char *text, size_t len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(len / 3 * 4 + 16);
    if (!out)
        return;
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)text;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)u[i] << 16 | (i + 1 < len ? (unsigned)u[i + 1] << 8 : 0) |
                     (i + 2 < len ? u[i + 2] : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < len ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? b64[v & 63] : '=';
    }
    out[o] = 0;
    raw_write("\033]52;c;");
    raw_write(out);
    raw_write("\a");
    free(out);
}
