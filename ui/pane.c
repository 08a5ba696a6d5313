/* A pane's transcript, wrapped-line cache, scroll position and dirty rows (see pane.h). */
#include "ui/pane.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui/sanitize.h"
#include "ui/text.h"

typedef struct turn {
    ui_role role;
    char *note;
    char *text;
    size_t len, cap;
} turn;

typedef struct line {
    uint32_t turn;
    uint32_t off, len;  /* bytes of the turn's text */
    int cols;
} wline;

struct ui_pane {
    ui_pane_info info;
    ui_pane_status status;
    turn *turns;
    size_t n_turns, cap_turns;
    ui_sanitizer san;   /* of the last turn: a UTF-8 sequence may span appends */
    wline *lines;        /* the wrapped transcript at `width` */
    size_t n_lines, cap_lines;
    size_t tail;        /* first line that an append may change */
    int width;
    long scroll;        /* lines above the bottom */
    /* what the last frame showed, for ui_pane_dirty_rows */
    size_t dirty_from;  /* first line changed since; SIZE_MAX = none */
    size_t drawn_top, drawn_lines;
    int drawn_h;
    bool all_dirty;
    unsigned long wrapped;
};

ui_pane *ui_pane_new(void)
{
    ui_pane *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->width = 80;
    p->all_dirty = true;
    p->dirty_from = SIZE_MAX;
    p->status.progress = -1;
    return p;
}

void ui_pane_free(ui_pane *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_turns; i++) {
        free(p->turns[i].text);
        free(p->turns[i].note);
    }
    free(p->turns);
    free(p->lines);
    free(p);
}

ui_pane_info *ui_pane_info_of(ui_pane *p) { return &p->info; }
ui_pane_status *ui_pane_status_of(ui_pane *p) { return &p->status; }
size_t ui_pane_turn_count(const ui_pane *p) { return p->n_turns; }
size_t ui_pane_line_count(const ui_pane *p) { return p->n_lines; }
long ui_pane_scrolled(const ui_pane *p) { return p->scroll; }
unsigned long ui_pane_lines_wrapped(const ui_pane *p) { return p->wrapped; }
void ui_pane_touch(ui_pane *p) { p->all_dirty = true; }

const char *ui_pane_turn(const ui_pane *p, size_t i, ui_role *role, size_t *len)
{
    if (i >= p->n_turns)
        return NULL;
    if (role)
        *role = p->turns[i].role;
    if (len)
        *len = p->turns[i].len;
    return p->turns[i].text ? p->turns[i].text : "";
}

const char *ui_pane_line(const ui_pane *p, size_t i, size_t *len, int *cols, ui_role *role)
{
    const wline *l = &p->lines[i];
    const turn *t = &p->turns[l->turn];
    *len = l->len;
    *cols = l->cols;
    *role = t->role;
    return t->text ? t->text + l->off : "";
}

static int push_line(ui_pane *p, uint32_t t, size_t off, size_t len, int cols)
{
    if (p->n_lines == p->cap_lines) {
        size_t cap = p->cap_lines ? p->cap_lines * 2 : 256;
        wline *nl = realloc(p->lines, cap * sizeof *nl);
        if (!nl)
            return -1;
        p->lines = nl;
        p->cap_lines = cap;
    }
    p->lines[p->n_lines++] = (wline){ t, (uint32_t)off, (uint32_t)len, cols };
    p->wrapped++;
    return 0;
}

/* Wrap turn t from byte `from` (a line start) to its end, appending lines; the last one made
 * becomes the tail. */
static int wrap_from(ui_pane *p, uint32_t t, size_t from)
{
    const turn *tu = &p->turns[t];
    const char *s = tu->text ? tu->text : "";
    size_t pos = from;
    for (;;) {
        const char *nl = memchr(s + pos, '\n', tu->len - pos);
        size_t para_end = nl ? (size_t)(nl - s) : tu->len;
        size_t end;
        int cols;
        do {
            size_t start = pos;
            pos = ui_text_wrap_line(s, para_end, start, p->width, &end, &cols);
            p->tail = p->n_lines;
            if (push_line(p, t, start, end - start, cols))
                return -1;
        } while (pos < para_end);
        if (!nl)
            return 0;
        pos = para_end + 1;
    }
}

/* Lines added at the end move a scrolled-back view's bottom, so keep its top where it was. */
static void note_change(ui_pane *p, size_t first_changed, size_t old_count)
{
    if (first_changed < p->dirty_from)
        p->dirty_from = first_changed;
    if (p->scroll > 0 && p->n_lines > old_count)
        p->scroll += (long)(p->n_lines - old_count);
}

int ui_pane_begin_turn(ui_pane *p, ui_role role)
{
    if (p->n_turns == p->cap_turns) {
        size_t cap = p->cap_turns ? p->cap_turns * 2 : 16;
        turn *nt = realloc(p->turns, cap * sizeof *nt);
        if (!nt)
            return -1;
        p->turns = nt;
        p->cap_turns = cap;
    }
    p->turns[p->n_turns++] = (turn){ role, NULL, NULL, 0, 0 };
    ui_sanitize_init(&p->san);
    size_t old = p->n_lines;
    /* a blank line between turns, then the turn's (empty) first line */
    if (p->n_turns > 1 && push_line(p, (uint32_t)(p->n_turns - 1), 0, 0, 0))
        return -1;
    if (wrap_from(p, (uint32_t)(p->n_turns - 1), 0))
        return -1;
    note_change(p, old, old);
    return 0;
}

static int turn_reserve(turn *t, size_t more)
{
    if (t->len + more + 1 <= t->cap)
        return 0;
    size_t cap = (t->len + more + 1) * 2;
    char *b = realloc(t->text, cap);
    if (!b)
        return -1;
    t->text = b;
    t->cap = cap;
    return 0;
}

int ui_pane_append(ui_pane *p, const char *text, size_t len)
{
    if (!p->n_turns && ui_pane_begin_turn(p, UI_ROLE_MODEL))
        return -1;
    turn *t = &p->turns[p->n_turns - 1];
    if (turn_reserve(t, UI_SANITIZE_MAX(len)))
        return -1;
    size_t n = ui_sanitize_feed(&p->san, text, len, t->text + t->len);
    if (!n)
        return 0;
    t->len += n;
    t->text[t->len] = 0;
    size_t old = p->n_lines, tail = p->tail;
    p->n_lines = tail;  /* only the last line can change: re-wrap from its start */
    if (wrap_from(p, (uint32_t)(p->n_turns - 1), p->lines[tail].off))
        return -1;
    note_change(p, tail, old);
    return 0;
}

int ui_pane_add_turn(ui_pane *p, ui_role role, const char *text)
{
    if (ui_pane_begin_turn(p, role))
        return -1;
    return ui_pane_append(p, text, strlen(text));
}

static void rewrap_all(ui_pane *p)
{
    p->n_lines = 0;
    p->tail = 0;
    for (size_t i = 0; i < p->n_turns; i++) {
        if (i > 0)
            push_line(p, (uint32_t)i, 0, 0, 0);
        wrap_from(p, (uint32_t)i, 0);
    }
    p->all_dirty = true;
}

int ui_pane_set_note(ui_pane *p, const char *note)
{
    if (!p->n_turns)
        return -1;
    char *n = ui_sanitize_dup(note, strlen(note));
    if (!n)
        return -1;
    free(p->turns[p->n_turns - 1].note);
    p->turns[p->n_turns - 1].note = n;
    return 0;
}

const char *ui_pane_turn_note(const ui_pane *p, size_t i)
{
    return i < p->n_turns ? p->turns[i].note : NULL;
}

void ui_pane_clear(ui_pane *p)
{
    for (size_t i = 0; i < p->n_turns; i++) {
        free(p->turns[i].text);
        free(p->turns[i].note);
    }
    p->n_turns = p->n_lines = p->tail = 0;
    p->scroll = 0;
    p->all_dirty = true;
}

size_t ui_pane_last_turn(const ui_pane *p, ui_role role)
{
    for (size_t i = p->n_turns; i-- > 0;)
        if (p->turns[i].role == role)
            return i;
    return SIZE_MAX;
}

void ui_pane_drop_turns(ui_pane *p, size_t first)
{
    if (first >= p->n_turns)
        return;
    for (size_t i = first; i < p->n_turns; i++) {
        free(p->turns[i].text);
        free(p->turns[i].note);
    }
    p->n_turns = first;
    size_t n = 0;  /* a turn's lines, its blank separator first, follow the turns before it */
    while (n < p->n_lines && p->lines[n].turn < first)
        n++;
    p->n_lines = n;
    p->tail = n ? n - 1 : 0;
    ui_sanitize_init(&p->san);
    p->scroll = 0;
    p->all_dirty = true;
}

void ui_pane_set_width(ui_pane *p, int width)
{
    if (width < 1)
        width = 1;
    if (width == p->width)
        return;
    p->width = width;
    rewrap_all(p);
}

/* ---- the view ---- */

size_t ui_pane_top_line(const ui_pane *p, int h)
{
    size_t rows = h > 0 ? (size_t)h : 0;
    if (p->n_lines <= rows)
        return 0;
    size_t max_scroll = p->n_lines - rows;
    size_t s = (size_t)p->scroll < max_scroll ? (size_t)p->scroll : max_scroll;
    return p->n_lines - rows - s;
}

void ui_pane_scroll(ui_pane *p, long delta, int h)
{
    long max = (long)p->n_lines - h;
    p->scroll += delta;
    if (p->scroll > max)
        p->scroll = max;
    if (p->scroll < 0)
        p->scroll = 0;
}

void ui_pane_scroll_to_end(ui_pane *p)
{
    p->scroll = 0;
}

bool ui_pane_dirty_rows(const ui_pane *p, int h, int *from, int *to)
{
    size_t top = ui_pane_top_line(p, h);
    *from = *to = 0;
    if (h <= 0)
        return false;
    if (p->all_dirty || top != p->drawn_top || h != p->drawn_h) {
        *to = h;
        return true;
    }
    if (p->dirty_from == SIZE_MAX)
        return false;
    size_t lo = p->dirty_from > top ? p->dirty_from - top : 0;
    size_t end = p->n_lines > p->drawn_lines ? p->n_lines : p->drawn_lines;
    size_t hi = end > top ? end - top : 0;
    if (hi > (size_t)h)
        hi = (size_t)h;
    if (lo >= hi)
        return false;
    *from = (int)lo;
    *to = (int)hi;
    return true;
}

void ui_pane_drawn(ui_pane *p, int h)
{
    p->drawn_top = ui_pane_top_line(p, h);
    p->drawn_lines = p->n_lines;
    p->drawn_h = h;
    p->dirty_from = SIZE_MAX;
    p->all_dirty = false;
}

/* ---- status ---- */

const char *ui_phase_name(ui_phase ph)
{
    static const char *const names[] = { "idle", "loading", "prefill", "generating", "waiting",
                                         "error", "downloading" };
    return (unsigned)ph < sizeof names / sizeof names[0] ? names[ph] : "?";
}

void ui_status_push_tps(ui_pane_status *st, float tps)
{
    if (st->n_spark == UI_SPARK_N) {
        memmove(st->spark, st->spark + 1, (UI_SPARK_N - 1) * sizeof st->spark[0]);
        st->n_spark--;
    }
    st->spark[st->n_spark++] = tps;
}

void ui_status_sparkline(const ui_pane_status *st, int n, char *buf)
{
    float max = 0;
    int first = st->n_spark > n ? st->n_spark - n : 0;
    for (int i = first; i < st->n_spark; i++)
        if (st->spark[i] > max)
            max = st->spark[i];
    char *o = buf;
    for (int i = first; i < st->n_spark; i++) {
        int level = max > 0 ? (int)(st->spark[i] / max * 7.0f + 0.5f) : 0;
        level = level < 0 ? 0 : level > 7 ? 7 : level;
        /* U+2581..U+2588, lower one eighth block .. full block */
        *o++ = (char)0xE2;
        *o++ = (char)0x96;
        *o++ = (char)(0x81 + level);
    }
    *o = 0;
}

/* "1.1M", "132K", "17B": compact binary units for a crowded status line. */
static const char *fmt_bytes(uint64_t b, char *buf, size_t cap)
{
    static const char units[] = "BKMGT";
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4)
        v /= 1024, u++;
    snprintf(buf, cap, v < 10 && u ? "%.1f%c" : "%.0f%c", v, units[u]);
    return buf;
}

/* Append seg (with a separator) when it still fits in width columns. */
static void add_seg(char *buf, size_t cap, int width, const char *seg)
{
    size_t n = strlen(buf), k = strlen(seg), sep = n ? 3 : 0;
    if (n + sep + k + 1 > cap)
        return;
    if (ui_text_width(buf, n) + (int)sep + ui_text_width(seg, k) > width)
        return;
    memcpy(buf + n, " | ", sep);
    memcpy(buf + n + sep, seg, k + 1);
}

static void phase_seg(const ui_pane_status *st, char *seg, size_t cap)
{
    if (st->phase == UI_PHASE_DOWNLOADING && st->progress >= 0)
        snprintf(seg, cap, "downloading %d%% (%s)", (int)(st->progress * 100), st->note);
    else if (st->phase == UI_PHASE_DOWNLOADING)
        snprintf(seg, cap, "downloading (%s)", st->note);
    else if (st->phase == UI_PHASE_LOADING && st->progress >= 0) {
        int fill = (int)(st->progress * 10 + 0.5);
        fill = fill < 0 ? 0 : fill > 10 ? 10 : fill;
        snprintf(seg, cap, "loading [%.*s%.*s] %d%%%s%.40s", fill, "##########", 10 - fill,
                 "----------", (int)(st->progress * 100 + 0.5), st->note[0] ? ": " : "",
                 st->note);
    }
    else if (st->phase == UI_PHASE_LOADING)
        snprintf(seg, cap, "loading the model...%s%s", st->note[0] ? " " : "", st->note);
    else if (st->phase == UI_PHASE_WAITING && st->note[0])
        snprintf(seg, cap, "waiting (%s)", st->note);
    else
        snprintf(seg, cap, "%s", ui_phase_name(st->phase));
}

void ui_status_format(const ui_pane_status *st, int line, int n_lines, int width, char *buf,
                      size_t cap)
{
    /* Segments in order of importance; with two lines, speed on the first, sizes on the
     * second. One that does not fit is left out and the next ones still get their chance. */
    enum { N_SEG = 11 };
    char seg[N_SEG][96], a[16], b[16], c[16], spark[4 * 8 + 1];
    int on_line[N_SEG] = { 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1 };
    phase_seg(st, seg[0], sizeof seg[0]);
    bool stopped = st->phase == UI_PHASE_IDLE && st->stop;
    if (stopped) /* "stop: why" says idle too: the word would only cost a narrow pane a figure */
        snprintf(seg[0], sizeof seg[0], "stop: %s", st->stop);
    if (st->sched) {  /* the mode every speed on the line was measured in, never left out;
                       * short, so a narrow pane keeps its speeds too (/help spells it out) */
        size_t n = strlen(seg[0]);
        snprintf(seg[0] + n, sizeof seg[0] - n, " [%s]",
                 strcmp(st->sched, "concurrent") ? st->sched : "conc");
    }
    if (st->phase == UI_PHASE_GENERATING)  /* a live figure: stale once the answer ends */
        snprintf(seg[1], sizeof seg[1], "%.1f t/s now", st->tps_now);
    else
        seg[1][0] = 0;
    /* every speed says the mode it was measured in; a remote one that it includes the network
     * ("net") and, when its token count was counted from chunks, that it is approximate */
    const char *ap = st->approx ? "~" : "";
    bool measured = st->sched != NULL;  /* before any answer a 0 would read as a figure */
    /* a decode speed takes two tokens and a first-token time one: a turn that failed before
     * its first token (a message too long for the context) has its count and nothing else */
    if (measured && st->n_gen >= 2)
        snprintf(seg[2], sizeof seg[2], st->tps_avg < 100 ? "avg %s%.1f t/s%s" :
                 "avg %s%.0f t/s%s", ap, st->tps_avg, st->remote ? " net" : "");
    else
        seg[2][0] = 0;
    if (st->remote && st->has_kv)
        snprintf(seg[3], sizeof seg[3], "mem remote, KV %.0f%%", st->kv_usage * 100);
    else if (st->remote)
        snprintf(seg[3], sizeof seg[3], "mem remote");
    else
        snprintf(seg[3], sizeof seg[3], "mem %s+%s+%s", fmt_bytes(st->mem_weights, a, sizeof a),
                 fmt_bytes(st->mem_kv, b, sizeof b), fmt_bytes(st->mem_scratch, c, sizeof c));
    int fill = st->ctx_max ? (int)((double)st->ctx_used / st->ctx_max * 8 + 0.999) : 0;
    fill = fill > 8 ? 8 : fill;
    if (st->ctx_max)
        snprintf(seg[4], sizeof seg[4], "ctx %u/%u [%.*s%.*s]", st->ctx_used, st->ctx_max, fill,
                 "########", 8 - fill, "--------");
    else
        seg[4][0] = 0;
    seg[5][0] = seg[6][0] = seg[7][0] = seg[8][0] = 0;  /* seg 6: the stop reason, now in 0 */
    if (measured)
        snprintf(seg[5], sizeof seg[5], "%s%u tok", ap, st->n_gen);
    if (measured && st->n_gen >= 1)
        snprintf(seg[7], sizeof seg[7], "ttft %.0f ms%s", st->ttft_ms, st->remote ? " net" : "");
    /* a prompt speed nobody measured (a server that sends no timings) is left out; the
     * server's own figure says so, for it is not measured here as the others are */
    if (measured && st->prompt_tps > 0)
        snprintf(seg[8], sizeof seg[8], "prompt %.0f t/s%s", st->prompt_tps,
                 st->prompt_srv ? " srv" : "");
    ui_status_sparkline(st, 8, spark);
    snprintf(seg[9], sizeof seg[9], "%s", measured && st->n_gen ? spark : "");
    snprintf(seg[10], sizeof seg[10], "rss %s", fmt_bytes(st->host_rss, a, sizeof a));
    buf[0] = 0;
    /* no figures yet: loading is not slowness */
    bool loading = st->phase == UI_PHASE_LOADING || st->phase == UI_PHASE_DOWNLOADING;
    /* after an answer, why it ended comes before the speeds (a narrow pane keeps it); a speed
     * is shown only with its mode: on line 0 when the label fitted there; the second line only
     * ever holds sizes */
    static const int order[N_SEG] = { 0, 6, 1, 2, 3, 4, 5, 7, 8, 9, 10 };
    bool labelled = !st->sched || line > 0;
    for (int k = 0; k < N_SEG; k++) {
        int i = order[k];
        bool speed = i == 1 || i == 2 || i == 7 || i == 8 || i == 9;
        if (seg[i][0] && (n_lines < 2 || on_line[i] == line) && (!loading || i == 0 || i == 10) &&
            (!speed || labelled))
            add_seg(buf, cap, width, seg[i]);
        if (i == 0 && st->sched && strstr(buf, " ["))
            labelled = true;
        if (i == 0 && line == 0 && !buf[0]) {  /* too narrow for the details: the word alone */
            if (st->progress >= 0 && loading)
                snprintf(seg[0], sizeof seg[0], "%s %d%%", ui_phase_name(st->phase),
                         (int)(st->progress * 100));
            else
                snprintf(seg[0], sizeof seg[0], "%s", ui_phase_name(st->phase));
            add_seg(buf, cap, width, seg[0]);
        }
    }
}
