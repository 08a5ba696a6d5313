/* Download progress on the command line: a redrawn bar on a terminal, plain lines in a pipe or
 * a log file (no carriage returns there).
 *
 * The formatting is pure functions of a dl_progress (tests/test_progress.c checks their exact
 * output); app_progress is the small stateful part that decides when to write and keeps the
 * terminal tidy: a bar line is always ended (app_progress_end) before anything else is printed.
 */
#ifndef SIZEUP_APP_PROGRESS_H
#define SIZEUP_APP_PROGRESS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "downloads/dl.h"

/* ---- pure formatting ---- */

/* Time left: "42s", "3m05s", "2h03m", ">99h"; "--" when seconds < 0 (unknown). Returns buf. */
const char *app_fmt_eta(double seconds, char *buf, size_t len);
/* How long ago: "just now" (under 10 s), "42 s ago", "3 min ago", "5 h ago", "2 days ago", then
 * the date "2024-05-01" (UTC) from 60 days; "never" when then is 0 (unknown). Returns buf. */
const char *app_fmt_ago(int64_t now, int64_t then, char *buf, size_t len);

/* The terminal line for p, at most width - 1 columns (the last column is left free so that no
 * terminal wraps), without \r or a newline:
 *   "[=====#####----------]  45%  220 MiB/491 MiB  12.3 MiB/s  ETA 22s"
 * '=' is what an earlier, resumed transfer had already stored, '#' what this one received,
 * '-' what is left; a speed of 0 (none measured yet) shows as "--/s". Split files start with
 * "part 2/3 ". Narrow terminals drop the ETA, then the
 * speed, then the byte counts; an unknown total shows bytes and speed without a bar.
 * Returns the length written (buf is always NUL-terminated). */
size_t app_progress_bar(const dl_progress *p, int width, char *buf, size_t len);

/* One line for a pipe, without a newline (speed and ETA are left out while the speed is 0):
 *   "tiny.gguf: 45% (220 MiB of 491 MiB), 12.3 MiB/s, ETA 22s"
 *   "tiny.gguf (part 2/3): 45% (220 MiB of 491 MiB, resumed at 100 MiB), 12.3 MiB/s, ETA 22s"
 *   "tiny.gguf: 100% (491 MiB of 491 MiB), done"
 *   "tiny.gguf: 220 MiB of unknown size, 12.3 MiB/s"
 * A retry adds ", attempt N", and one that could not resume what came before (restarted_from)
 * ", from the beginning (576 KiB received before cannot be resumed: ...)". Returns the length
 * written. */
size_t app_progress_plain(const dl_progress *p, char *buf, size_t len);

/* When a plain line is due: once the file's size is known (or after
 * APP_PROGRESS_PLAIN_FIRST_S without it), at each tenth of the file crossed, every
 * APP_PROGRESS_PLAIN_EVERY_S seconds without a line (slow or unknown-size transfers), and at
 * the finish. A new part number, or a report after a finish, starts a new file. now_s is any
 * monotonic clock in seconds. */
#define APP_PROGRESS_PLAIN_FIRST_S 2.0
#define APP_PROGRESS_PLAIN_EVERY_S 10.0
typedef struct app_progress_pace {
    bool seen;          /* reports of the current file have come in */
    bool started;       /* a line was written for it */
    int part;           /* its part number */
    int decile;         /* tenths of it reported so far */
    double first_s;     /* when its first report came */
    double last_s;      /* when its last line was written */
} app_progress_pace;
bool app_progress_plain_due(app_progress_pace *pace, const dl_progress *p, double now_s);

/* ---- the display ---- */

typedef struct app_progress {
    FILE *out;                          /* stderr */
    bool tty;                           /* draw a bar (else plain lines) */
    bool quiet;                         /* draw nothing; still honours stop */
    bool line_open;                     /* a bar is on screen and its line not ended */
    const volatile sig_atomic_t *stop;  /* nonzero: cancel the transfer (Ctrl-C); may be NULL */
    app_progress_pace pace;
    uint64_t done, total;               /* last report, for the "N MiB of M kept" message */
    int restart_told;                   /* the attempt whose restart from zero was said */
} app_progress;

/* tty decides bar or plain lines (the caller passes isatty(fileno(out))). */
void app_progress_init(app_progress *pr, FILE *out, bool tty, bool quiet,
                       const volatile sig_atomic_t *stop);
/* A dl_progress_fn: user is the app_progress. Returns nonzero when *stop is set. */
int app_progress_update(const dl_progress *p, void *user);
/* End an open bar line so the next message starts on a fresh line. Safe to call twice. */
void app_progress_end(app_progress *pr);

#endif
