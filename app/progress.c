/* Download progress on the command line (see app/progress.h). The formatters are pure so the
 * exact text is unit-tested; only app_progress_update and app_progress_end write. */
#include "app/progress.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"

#define MIN_BAR 10        /* narrower than this, a bar says nothing: drop it */
#define DEFAULT_WIDTH 80  /* when the terminal will not say */

const char *app_fmt_eta(double seconds, char *buf, size_t len)
{
    if (!(seconds >= 0)) { /* also NaN */
        snprintf(buf, len, "--");
        return buf;
    }
    double r = seconds + 0.5;
    if (r >= 100.0 * 3600) {
        snprintf(buf, len, ">99h");
        return buf;
    }
    long s = (long)r;
    if (s < 60)
        snprintf(buf, len, "%lds", s);
    else if (s < 3600)
        snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(buf, len, "%ldh%02ldm", s / 3600, s % 3600 / 60);
    return buf;
}

const char *app_fmt_ago(int64_t now, int64_t then, char *buf, size_t len)
{
    int64_t d = now - then;
    if (then == 0)
        snprintf(buf, len, "never");
    else if (d < 10) /* a clock a little behind counts as now too */
        snprintf(buf, len, "just now");
    else if (d < 60)
        snprintf(buf, len, "%lld s ago", (long long)d);
    else if (d < 3600)
        snprintf(buf, len, "%lld min ago", (long long)(d / 60));
    else if (d < 86400)
        snprintf(buf, len, "%lld h ago", (long long)(d / 3600));
    else if (d < 60 * 86400)
        snprintf(buf, len, "%lld day%s ago", (long long)(d / 86400), d < 2 * 86400 ? "" : "s");
    else {
        time_t t = (time_t)then;
        struct tm tm;
        if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d", &tm))
            snprintf(buf, len, "long ago");
    }
    return buf;
}

/* ---- the bar ---- */

/* Bytes per second as "12.3 MiB", or "--" before any speed is measured. */
static const char *fmt_speed(double bps, char *buf, size_t len)
{
    if (bps > 0)
        return app_fmt_bytes((unsigned long long)bps, buf, len);
    snprintf(buf, len, "--");
    return buf;
}

/* The text fields of a bar line, padded to fixed widths so that the bar keeps its length while
 * the numbers change. */
typedef struct bar_text {
    char prefix[32];  /* "part 2/3 " or "" */
    char pct[8];      /* " 45%" */
    char bytes[48];   /* "220 MiB/491 MiB", done right-aligned in 8 columns */
    char speed[32];   /* "12.3 MiB/s" in 10 columns */
    char eta[16];     /* "ETA 22s", the time left-aligned in 5 columns */
} bar_text;

static void bar_fields(const dl_progress *p, uint64_t done, bar_text *t)
{
    char a[24], b[24], s[24], e[16];
    t->prefix[0] = 0;
    if (p->n_parts > 1)
        snprintf(t->prefix, sizeof t->prefix, "part %d/%d ", p->part, p->n_parts);
    int pct = p->total ? (int)(done * 100 / p->total) : 0;
    snprintf(t->pct, sizeof t->pct, "%3d%%", pct);
    app_fmt_bytes(done, a, sizeof a);
    app_fmt_bytes(p->total, b, sizeof b);
    snprintf(t->bytes, sizeof t->bytes, "%8s/%s", a, b);
    snprintf(t->speed, sizeof t->speed, "%8s/s", fmt_speed(p->bytes_per_s, s, sizeof s));
    snprintf(t->eta, sizeof t->eta, "ETA %-5s", app_fmt_eta(p->eta_s, e, sizeof e));
}

/* "[====###----]": inner columns, '=' resumed bytes, '#' new ones, '-' the rest. */
static size_t draw_bar(const dl_progress *p, uint64_t done, int inner, char *out)
{
    int fill = (int)((double)inner * (double)done / (double)p->total);
    uint64_t res = p->resumed_from < done ? p->resumed_from : done;
    int old = (int)((double)inner * (double)res / (double)p->total);
    size_t n = 0;
    out[n++] = '[';
    for (int i = 0; i < inner; i++)
        out[n++] = i < old ? '=' : i < fill ? '#' : '-';
    out[n++] = ']';
    out[n] = 0;
    return n;
}

/* Trailing padding (of the ETA field) is for the bar's sake only. */
static size_t rtrim(char *buf)
{
    size_t n = strlen(buf);
    while (n && buf[n - 1] == ' ')
        buf[--n] = 0;
    return n;
}

/* Richest layout that fits `usable` columns with a bar of at least MIN_BAR; -1 if none. */
static int bar_layout(const bar_text *t, int usable, const char *const *fields, int *inner)
{
    for (int level = 4; level >= 1; level--) {
        int rest = (int)strlen(t->prefix) + 2; /* brackets */
        for (int f = 0; f < level; f++)
            rest += 2 + (int)strlen(fields[f]);
        if (usable - rest >= MIN_BAR) {
            *inner = usable - rest;
            return level;
        }
    }
    return -1;
}

static size_t bar_known(const dl_progress *p, int usable, char *buf, size_t len)
{
    uint64_t done = p->done < p->total ? p->done : p->total;
    bar_text t;
    bar_fields(p, done, &t);
    const char *fields[4] = { t.pct, t.bytes, t.speed, t.eta };
    int inner = 0, level = bar_layout(&t, usable, fields, &inner);
    char line[1024];
    if (level < 0) { /* too narrow for a bar: the numbers, cut to fit */
        snprintf(line, sizeof line, "%s%s  %s", t.prefix, t.pct, t.bytes);
    } else {
        char bar[512];
        if (inner > (int)sizeof bar - 3)
            inner = (int)sizeof bar - 3;
        draw_bar(p, done, inner, bar);
        size_t n = (size_t)snprintf(line, sizeof line, "%s%s", t.prefix, bar);
        for (int f = 0; f < level && n < sizeof line; f++)
            n += (size_t)snprintf(line + n, sizeof line - n, "  %s", fields[f]);
    }
    snprintf(buf, len, "%.*s", usable, line);
    return rtrim(buf);
}

size_t app_progress_bar(const dl_progress *p, int width, char *buf, size_t len)
{
    if (!len)
        return 0;
    if (width <= 0)
        width = DEFAULT_WIDTH;
    int usable = width - 1;
    if (p->total)
        return bar_known(p, usable, buf, len);
    char done[24], speed[24], line[256], prefix[32] = "";
    if (p->n_parts > 1)
        snprintf(prefix, sizeof prefix, "part %d/%d ", p->part, p->n_parts);
    app_fmt_bytes(p->done, done, sizeof done);
    snprintf(line, sizeof line, "%s%s so far  %s/s", prefix, done,
             fmt_speed(p->bytes_per_s, speed, sizeof speed));
    if ((int)strlen(line) > usable)
        snprintf(line, sizeof line, "%s%s so far", prefix, done);
    snprintf(buf, len, "%.*s", usable, line);
    return strlen(buf);
}

/* ---- plain lines ---- */

/* name with control characters as '?': a file name comes from a server's listing, and an
 * escape sequence in it must not reach the terminal. */
static const char *printable_name(const char *name, char *buf, size_t len)
{
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++)
        buf[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
    buf[i] = 0;
    return buf;
}

size_t app_progress_plain(const dl_progress *p, char *buf, size_t len)
{
    char a[24], b[24], r[24], s[24], e[16], part[32] = "", what[128], resumed[64] = "";
    char name[256];
    if (p->n_parts > 1)
        snprintf(part, sizeof part, " (part %d/%d)", p->part, p->n_parts);
    uint64_t done = p->total && p->done > p->total ? p->total : p->done;
    app_fmt_bytes(done, a, sizeof a);
    if (p->resumed_from)
        snprintf(resumed, sizeof resumed, ", resumed at %s",
                 app_fmt_bytes(p->resumed_from, r, sizeof r));
    if (p->total)
        snprintf(what, sizeof what, "%d%% (%s of %s%s)", (int)(done * 100 / p->total), a,
                 app_fmt_bytes(p->total, b, sizeof b), resumed);
    else
        snprintf(what, sizeof what, "%s of unknown size%s", a, resumed);
    int n = snprintf(buf, len, "%s%s: %s",
                     p->name ? printable_name(p->name, name, sizeof name) : "download", part,
                     what);
    if (n < 0 || (size_t)n >= len)
        return strlen(buf);
    size_t k = (size_t)n;
    if (p->finished)
        k += (size_t)snprintf(buf + k, len - k, ", done");
    else if (p->bytes_per_s > 0)
        k += (size_t)snprintf(buf + k, len - k, ", %s/s%s%s",
                              fmt_speed(p->bytes_per_s, s, sizeof s), p->total ? ", ETA " : "",
                              p->total ? app_fmt_eta(p->eta_s, e, sizeof e) : "");
    if (p->attempt > 1 && k < len)
        k += (size_t)snprintf(buf + k, len - k, ", attempt %d", p->attempt);
    if (p->restarted_from && k < len)
        snprintf(buf + k, len - k, ", from the beginning (%s received before cannot be "
                 "resumed: the server gives no ETag or Last-Modified)",
                 app_fmt_bytes(p->restarted_from, r, sizeof r));
    return strlen(buf);
}

bool app_progress_plain_due(app_progress_pace *pace, const dl_progress *p, double now_s)
{
    if (!pace->seen || pace->part != p->part) {
        memset(pace, 0, sizeof *pace);
        pace->seen = true;
        pace->part = p->part;
        pace->first_s = now_s;
    }
    uint64_t done = p->total && p->done > p->total ? p->total : p->done;
    int decile = p->total ? (int)(done * 10 / p->total) : 0;
    bool due;
    if (p->finished)
        due = true;
    else if (!pace->started) /* a first line that knows the size says more */
        due = p->total || now_s - pace->first_s >= APP_PROGRESS_PLAIN_FIRST_S;
    else /* the tenth tenth is the finish line's */
        due = (decile > pace->decile && decile < 10) ||
              now_s - pace->last_s >= APP_PROGRESS_PLAIN_EVERY_S;
    if (due) {
        pace->started = true;
        pace->decile = decile;
        pace->last_s = now_s;
    }
    if (p->finished)
        pace->seen = false;
    return due;
}

/* ---- the display ---- */

void app_progress_init(app_progress *pr, FILE *out, bool tty, bool quiet,
                       const volatile sig_atomic_t *stop)
{
    memset(pr, 0, sizeof *pr);
    pr->out = out;
    pr->tty = tty;
    pr->quiet = quiet;
    pr->stop = stop;
}

/* Asked at every draw, so a resized terminal gets a bar that fits. */
static int term_width(FILE *f)
{
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return DEFAULT_WIDTH;
}

int app_progress_update(const dl_progress *p, void *user)
{
    app_progress *pr = user;
    char line[1024];
    pr->done = p->done;
    pr->total = p->total;
    if (pr->stop && *pr->stop)
        return 1;
    if (pr->quiet)
        return 0;
    if (pr->tty && p->restarted_from && pr->restart_told != p->attempt) {
        /* the bar alone would show a retry at 0% as if nothing had come before */
        char a[24];
        pr->restart_told = p->attempt;
        fprintf(pr->out, "\r\x1b[Kattempt %d starts from the beginning: the %s received before "
                "cannot be resumed (the server gives no ETag or Last-Modified)\n", p->attempt,
                app_fmt_bytes(p->restarted_from, a, sizeof a));
    }
    if (pr->tty) {
        app_progress_bar(p, term_width(pr->out), line, sizeof line);
        /* \r and erase-to-end-of-line: the new text may be shorter than the old */
        fprintf(pr->out, "\r%s\x1b[K%s", line, p->finished ? "\n" : "");
        pr->line_open = !p->finished;
    } else if (app_progress_plain_due(&pr->pace, p, app_now_s())) {
        app_progress_plain(p, line, sizeof line);
        fprintf(pr->out, "%s\n", line);
    }
    fflush(pr->out);
    return 0;
}

void app_progress_end(app_progress *pr)
{
    if (pr->line_open) {
        fputc('\n', pr->out);
        fflush(pr->out);
    }
    pr->line_open = false;
}
