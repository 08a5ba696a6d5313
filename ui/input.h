/* Keys -> actions, and the line editor: GNU readline through its callback interface.
 *
 * Bytes read from the terminal (the app reads stdin in its poll loop) are fed here. A small
 * decoder takes the keys that belong to the TUI (Tab, Esc, PgUp/PgDn, the mouse wheel, F-keys,
 * Ctrl-C, Ctrl-Z, Ctrl-L, bracketed paste) and hands every other byte to readline, which never
 * touches the terminal: no signal handlers, no terminal modes (no-op prep/deprep), input through
 * rl_getc_function + rl_input_available_hook from our queue, output only through
 * rl_redisplay_function, which just says the line changed (the draw layer shows rl_line_buffer
 * and computes the cursor column itself). Emacs keys, Ctrl-R search and history come from
 * readline; Ctrl-J and Alt-Enter insert a newline; a bracketed paste is inserted whole, so a
 * pasted block becomes one message.
 *
 * UI thread only (readline is global state). */
#ifndef SIZEUP_UI_INPUT_H
#define SIZEUP_UI_INPUT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum ui_action {
    UI_ACT_NONE = 0,
    UI_ACT_LINE,        /* Enter: a line to send (ui_input_next's *line) */
    UI_ACT_EOF,         /* Ctrl-D on an empty line */
    UI_ACT_EDITED,      /* the input line changed: redraw it */
    UI_ACT_FOCUS_NEXT,  /* Tab */
    UI_ACT_FOCUS_PREV,  /* Shift-Tab */
    UI_ACT_BROADCAST,   /* F2: toggle sending to all panes / the focused one */
    UI_ACT_STOP,        /* Esc */
    UI_ACT_INTERRUPT,   /* Ctrl-C */
    UI_ACT_SUSPEND,     /* Ctrl-Z */
    UI_ACT_REDRAW,      /* Ctrl-L */
    UI_ACT_PAGE_UP,
    UI_ACT_PAGE_DOWN,
    UI_ACT_WHEEL_UP,
    UI_ACT_WHEEL_DOWN,
    UI_ACT_HELP,        /* F1 */
    UI_ACT_ZOOM,        /* F5 */
    UI_ACT_PAGER,       /* F6 */
    UI_ACT_COPY,        /* F7 */
    UI_ACT_SCHED,       /* F3: scheduling mode fair / concurrent */
    UI_ACT_SIZES,       /* F4: the size view */
    UI_ACT_UP,          /* Up, Down, Home, End: only while ui_input_grab_scroll is on */
    UI_ACT_DOWN,
    UI_ACT_HOME,
    UI_ACT_END,
} ui_action;

/* Set readline up for the TUI; history_path (may be NULL) is read now and appended to per
 * line. */
void ui_input_open(const char *history_path);
void ui_input_close(void);
void ui_input_feed(const char *bytes, size_t n);
/* An Esc arrived alone: if nothing follows within a few tens of milliseconds the caller calls
 * ui_input_timeout and it becomes UI_ACT_STOP (a sequence would have followed at once). */
bool ui_input_esc_pending(void);
void ui_input_timeout(void);
/* While on, Up, Down, Home and End are actions (they scroll a box) instead of readline's
 * history and cursor keys; bytes fed later are decoded so. */
void ui_input_grab_scroll(bool on);
/* The next queued action; for UI_ACT_LINE *line is malloc'd (caller frees), else NULL. */
ui_action ui_input_next(char **line);
/* The line being edited and the cursor (bytes), borrowed until the next feed. */
const char *ui_input_text(size_t *len, size_t *cursor);
/* Replace the line being edited (copied), the cursor at its end: the app undoes what a key
 * typed when that key only closed a box. */
void ui_input_set_text(const char *text);
/* The prompt readline shows now ("> " or its reverse-i-search prompt). */
const char *ui_input_prompt(void);
void ui_input_set_prompt(const char *prompt);

#endif
