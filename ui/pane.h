/* One pane's state: the transcript of a conversation with one model, kept as wrapped lines for
 * the current width, its scroll position, its header facts and its live status figures.
 *
 * Plain data owned by the UI thread (workers never touch it: they queue tokens that the UI
 * thread appends here). Every appended byte passes through the sanitizer, so nothing a pane
 * holds can drive the terminal.
 *
 * Incremental by construction: appending to the last turn re-wraps only the transcript's last
 * line (ui/text.h: lines before it never change on append), and the pane records which lines
 * changed, so the draw layer redraws only the screen rows that show them. A 20,000-token answer
 * costs per token what the first one did. */
#ifndef SIZEUP_UI_PANE_H
#define SIZEUP_UI_PANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum ui_role { UI_ROLE_USER = 0, UI_ROLE_MODEL, UI_ROLE_INFO, UI_ROLE_ERROR } ui_role;

typedef enum ui_phase {
    UI_PHASE_IDLE = 0,
    UI_PHASE_LOADING,     /* opening the model / creating the session */
    UI_PHASE_PREFILL,     /* processing the prompt */
    UI_PHASE_GENERATING,
    UI_PHASE_WAITING,     /* queued behind another pane's turn, or stopping */
    UI_PHASE_ERROR,
    UI_PHASE_DOWNLOADING, /* fetching the model into the store (progress, note) */
} ui_phase;
const char *ui_phase_name(ui_phase p);

#define UI_SPARK_N 24

/* Live figures of a pane, filled by the app from the engine's statistics. */
typedef struct ui_pane_status {
    ui_phase phase;
    double progress;            /* loading, downloading: 0..1, < 0 unknown */
    char note[64];              /* downloading: "12 MiB of 469 MiB, 5.1 MiB/s"; loading: the
                                 * step ("warm-up"), or "3 s" when there is no progress */
    double tps_now;             /* decode tokens/s over the last few tokens */
    double tps_avg;             /* decode tokens/s of the answer so far (first to last token) */
    double prompt_tps, ttft_ms; /* prompt tokens/s (<= 0: not known, shown as "-" or left
                                 * out); time to first token of the last answer */
    bool prompt_srv;            /* prompt_tps is the server's own figure (llama-server's
                                 * timings), not measured here: shown marked "srv" */
    double wall_tps;            /* tokens / wall time from send to last token */
    unsigned n_gen;             /* tokens of the last (current) answer */
    unsigned ctx_used, ctx_max;
    uint64_t mem_weights, mem_kv, mem_scratch, host_rss;  /* bytes */
    float spark[UI_SPARK_N];    /* tokens/s history, oldest first */
    int n_spark;
    const char *stop;           /* why the last answer ended (static), NULL while running */
    const char *sched;          /* the scheduling mode the speeds were measured in ("fair",
                                 * "concurrent"; static); NULL before any answer: nothing is
                                 * measured yet, and speeds, ttft and tokens are left out */
    bool remote;                /* served over the network: times include it, memory is the
                                 * server's ("remote"), no context figures */
    bool approx;                /* n_gen (and so tokens/s) counted from chunks: shown with ~ */
    bool has_kv;                /* kv_usage is the server's own figure */
    double kv_usage;            /* 0..1 of the server's KV cache in use */
} ui_pane_status;

/* Append a tokens/s sample to the sparkline history (drops the oldest when full). */
void ui_status_push_tps(ui_pane_status *st, float tps);
/* The sparkline as UTF-8 block characters (one column each), NUL-terminated; buf >= 4 * n + 1. */
void ui_status_sparkline(const ui_pane_status *st, int n, char *buf);
/* The status figures as text for a line `width` columns wide (line = 0 or 1; with one status
 * line everything goes on line 0, most important first). Pure ASCII plus the sparkline. */
void ui_status_format(const ui_pane_status *st, int line, int n_lines, int width, char *buf,
                      size_t cap);

/* What the header says about the model. */
typedef struct ui_pane_info {
    char name[96];
    char detail[160];  /* "292.8K params · F32 32.0 bpw · 1.1 MiB · cpu" */
    char mode[48];     /* "chat (chatml)" or "completion" */
    char backend[96];  /* "cpu", "vulkan: NAME (type)": for the global bar */
    unsigned long long dev_heap;  /* Vulkan: bytes of the device's memory (its largest
                                   * device-local heap) for the global bar; 0 otherwise */
    /* for the size view: 0 or "" when unknown (a remote model's) */
    unsigned long long n_params, file_bytes;
    char quant[24];
    bool remote;
} ui_pane_info;

typedef struct ui_pane ui_pane;

ui_pane *ui_pane_new(void);  /* NULL when out of memory */
void ui_pane_free(ui_pane *p);
ui_pane_info *ui_pane_info_of(ui_pane *p);
ui_pane_status *ui_pane_status_of(ui_pane *p);

/* Start a turn; later appends go to it. Returns 0, -1 when out of memory. */
int ui_pane_begin_turn(ui_pane *p, ui_role role);
/* Append untrusted bytes to the last turn (sanitized on the way in; UTF-8 may be split across
 * calls). Returns 0, -1 when out of memory (the text is dropped). */
int ui_pane_append(ui_pane *p, const char *text, size_t len);
/* A whole turn at once. */
int ui_pane_add_turn(ui_pane *p, ui_role role, const char *text);
void ui_pane_clear(ui_pane *p);
/* Index of the last turn with this role, SIZE_MAX when none. */
size_t ui_pane_last_turn(const ui_pane *p, ui_role role);
/* Remove turns first.. to the end (with their notes and lines): /regen replaces an answer. */
void ui_pane_drop_turns(ui_pane *p, size_t first);
/* A note kept with the last turn but not shown in the body (an answer's figures, for /save and
 * the pager). Copied; returns 0 or -1. */
int ui_pane_set_note(ui_pane *p, const char *note);
/* Turn i's note, NULL when none; borrowed like the text. */
const char *ui_pane_turn_note(const ui_pane *p, size_t i);

size_t ui_pane_turn_count(const ui_pane *p);
/* Turn i's role and sanitized text (borrowed until the next change to the pane). */
const char *ui_pane_turn(const ui_pane *p, size_t i, ui_role *role, size_t *len);

/* ---- the view ---- */

/* Wrap for this width (a change re-wraps everything once). */
void ui_pane_set_width(ui_pane *p, int width);
size_t ui_pane_line_count(const ui_pane *p);
/* Line i: its text (borrowed as above), length in bytes, width in columns and turn role. */
const char *ui_pane_line(const ui_pane *p, size_t i, size_t *len, int *cols, ui_role *role);

/* Scrollback: lines above the bottom. Clamped to what the transcript holds for a body of h rows;
 * while scrolled back, new text does not move the view. */
void ui_pane_scroll(ui_pane *p, long delta, int h);
void ui_pane_scroll_to_end(ui_pane *p);
long ui_pane_scrolled(const ui_pane *p);
/* The transcript line shown on body row 0 for a body of h rows. */
size_t ui_pane_top_line(const ui_pane *p, int h);
/* Body rows [*from, *to) that changed since ui_pane_drawn for a body of h rows; false when none
 * did. Everything is dirty after a width change, a scroll, a clear, or a ui_pane_touch. */
bool ui_pane_dirty_rows(const ui_pane *p, int h, int *from, int *to);
void ui_pane_drawn(ui_pane *p, int h);
void ui_pane_touch(ui_pane *p);

/* How many lines were (re)wrapped since the pane was made: a test hook for incremental work. */
unsigned long ui_pane_lines_wrapped(const ui_pane *p);

#endif
