/* The TUI's state on the UI thread, shared by its loop (chat_tui.c) and its slash commands
 * (chat_cmds.c). Private to app/. */
#ifndef SIZEUP_APP_CHAT_TUI_H
#define SIZEUP_APP_CHAT_TUI_H

#include "app/chat.h"
#include "app/sched.h"
#include "ui/box.h"
#include "ui/layout.h"
#include "ui/sizeview.h"

typedef struct chat_tui {
    int n;                           /* panes */
    app_worker *w[UI_MAX_PANES];     /* NULL: a pane without a model (its text says why) */
    ui_pane *p[UI_MAX_PANES];
    app_chat_cfg cfg;
    int focus;
    bool broadcast, zoom, quit, quit_armed, dirty, full;
    char *overlay;                   /* help / stats box, malloc'd */
    char *overlay_input;             /* the input line as the box found it (malloc'd): the key
                                      * that closes the box is undone, never typed */
    bool overlay_stats;              /* the box is /stats: laid out again to the width */
    int overlay_top;                 /* the box's first line shown (scrolled) */
    ui_box box;                      /* where the last frame put the box */
    char sets[12][64];               /* /set KEY VALUE made for every pane, one per key, in
                                      * t->cfg too: said in each pane opened later */
    int n_sets;
    char notice[200];
    double notice_until;
    int wake[2];                     /* workers write [1]; the loop polls [0] */
    double load_since[UI_MAX_PANES]; /* when each pane was first seen loading, 0: not loading */
    app_sched_mode mode;             /* what new turns run in (F3); concurrent at start */
    uint64_t rng;                    /* fair mode's shuffles */
    app_sched_gate *gate;            /* fair mode's turns (cfg.gate borrows it) */
    bool sizes;                      /* the size view (F4) is shown */
    ui_size_view size_view;
} chat_tui;

/* Run a line that starts with '/'. */
void app_chat_command(chat_tui *t, const char *line);
/* Lay the /stats box out again for a box width columns wide inside (the table where it
 * fits, else a block per pane) with the panes' latest figures. */
void app_chat_stats_refresh(chat_tui *t, int width);
/* A transient message in the bar. */
void app_chat_notice(chat_tui *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Open the model at path in pane i (new or replacing), or add a pane when i == t->n; with path
 * NULL, download ref first in that pane. */
bool app_chat_open_pane(chat_tui *t, int i, const char *path, const char *ref);
void app_chat_close_pane(chat_tui *t, int i);
/* Queue a turn that generates (SEND, REGEN) on every target pane; in fair mode in a shuffled
 * order, one pane at a time. */
void app_chat_post_turns(chat_tui *t, app_job job, const char *text);
/* The size view's table from the panes' facts and last figures. */
void app_chat_size_view(chat_tui *t, ui_size_view *v);
/* The panes a message goes to: all (broadcast) or the focused one. */
bool app_chat_targets(const chat_tui *t, int i);
/* The pane's transcript as Markdown with its figures (for the pager and /save); caller frees. */
char *app_chat_markdown(chat_tui *t, int first, int last);

#endif
