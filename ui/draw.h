/* The drawing layer: the only code that calls curses (ncursesw) or writes to the terminal.
 *
 * It renders a plain-struct picture of the screen (ui_screen: panes, focus, input line, bar
 * text) over a layout (ui/layout.h). Pane bodies are drawn incrementally: only the rows a pane
 * reports dirty are re-rendered into curses' screen, and curses sends only what differs. All of
 * it runs on the UI thread.
 *
 * Terminal modes it owns: the alternate screen (curses), bracketed paste and mouse-wheel
 * reporting (SGR). Every exit path must leave the terminal as it was: ui_draw_close normally,
 * ui_draw_emergency from a signal handler (async-signal-safe writes and tcsetattr only). */
#ifndef SIZEUP_UI_DRAW_H
#define SIZEUP_UI_DRAW_H

#include <stdbool.h>
#include <stddef.h>

#include "ui/layout.h"
#include "ui/pane.h"
#include "ui/sizeview.h"

typedef struct ui_screen {
    ui_pane *panes[UI_MAX_PANES];
    int n_panes, focus;
    bool zoom, broadcast;
    const char *bar;        /* left part of the global bar (devices, memory) */
    const char *notice;     /* a transient line over the key hints, or NULL */
    const char *prompt;     /* shown before the input */
    const char *input;      /* the line being edited (UTF-8, may hold '\n') */
    size_t input_len, input_cursor;  /* bytes */
    const char *overlay;    /* help or stats text shown in a box over the panes, or NULL */
    int overlay_top;        /* its first line shown (ui/box.h: clamped when drawn) */
    const ui_size_view *size;  /* the size view, shown instead of the panes, or NULL */
} ui_screen;

/* Start curses on the terminal: raw keys, no echo, colours unless NO_COLOR or the terminal has
 * none, bracketed paste and mouse wheel on. false when the terminal cannot be driven. */
bool ui_draw_open(void);
/* Restore the terminal (modes off, cursor shown, normal screen). Safe to call twice. */
void ui_draw_close(void);
/* From a signal handler: the same restore using only async-signal-safe calls. */
void ui_draw_emergency(void);
/* The same, the terminal's modes written to fd (a dup of the terminal, when stdout was just
 * pointed elsewhere so another thread's frames cannot follow the restore). */
void ui_draw_emergency_to(int fd);
/* Give the terminal back for a while (Ctrl-Z, the pager) and take it again. */
void ui_draw_suspend(void);
void ui_draw_resume(void);
/* Follow a new terminal size (after SIGWINCH); it is stored in *cols and *rows. */
void ui_draw_resize(int *cols, int *rows);
void ui_draw_size(int *cols, int *rows);
/* Mouse reporting off lets the terminal select text (zoom mode). */
void ui_draw_mouse(bool on);
/* Draw a frame; full redraws everything (after a resize, an overlay, a resume). */
void ui_draw_frame(const ui_screen *s, const ui_layout *L, bool full);
/* How many rows the input (prompt + text, '\n' and wrapping) wants at this width; pure. */
int ui_draw_input_rows(const ui_screen *s, int width);
/* Copy text to the clipboard with OSC 52 (the terminal may refuse; nothing says whether). */
void ui_draw_osc52(const char *text, size_t len);

#endif
