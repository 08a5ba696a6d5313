/* `sizeup chat`: the TUI's app side. One worker thread per pane runs that pane's model
 * (eng_session + eng_conv); the UI thread sends it jobs and drains what it produced (answer
 * text, figures, errors) into the pane's ui_pane when the wake pipe says there is something.
 * Workers never touch curses or a ui_pane. */
#ifndef SIZEUP_APP_CHAT_H
#define SIZEUP_APP_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/conv.h"
#include "engine/engine.h"
#include "app/chat_models.h"
#include "downloads/dl_remote.h"
#include "app/sched.h"
#include "ui/pane.h"

/* What every pane starts with (the command line's options). */
typedef struct app_chat_cfg {
    eng_session_opts so;
    int n_predict;
    const char *tmpl;       /* --template: force a family (and chat mode) */
    const char *system;     /* --system */
    const char *banner;     /* shown above the panes (the demo's), or NULL */
    const char *cacert;     /* --cacert, for a model downloaded from inside the TUI or an HTTPS
                             * endpoint */
    bool completion;        /* remote panes: /completions rather than chat (/set chat 0) */
    app_sched_gate *gate;   /* fair-mode turns, shared by every pane (borrowed); NULL: none */
} app_chat_cfg;

typedef enum app_job {
    APP_JOB_SEND,    /* text: the user's message; answer it */
    APP_JOB_REGEN,   /* drop the last answer and answer again */
    APP_JOB_CLEAR,   /* forget the conversation */
    APP_JOB_SYSTEM,  /* text: the new system prompt */
    APP_JOB_SET,     /* text: "KEY VALUE" (checked by app_chat_set_check) */
} app_job;

typedef struct app_worker app_worker;

/* Start a worker that opens the model at path and reports to wake_fd (the write end of the
 * UI's wake pipe, non-blocking); with path NULL it talks to the served model ref names when ref
 * is a remote reference (URL#MODEL, @NAME/MODEL), else first downloads ref into the store, its
 * progress in the pane (Esc cancels, leaving the part for resuming). NULL when out of memory or
 * no thread could start. */
app_worker *app_worker_start(const char *path, const char *ref, const app_chat_cfg *cfg,
                             int wake_fd);
/* Cancel, finish and free (joins the thread). NULL is a no-op. */
void app_worker_stop(app_worker *w);
/* Queue a job (text copied; may be NULL). false when the queue is full. */
bool app_worker_post(app_worker *w, app_job job, const char *text);
/* The same for a turn that generates (SEND, REGEN) in fair mode: it runs when ticket (from
 * cfg.gate) comes up, and gives the ticket back however it ends; -1: concurrent. On false the
 * ticket is still the caller's. */
bool app_worker_post_turn(app_worker *w, app_job job, const char *text, long ticket);
/* Stop the running answer within one token (a remote stream within 100 ms) and drop queued
 * jobs; partial text is kept. */
void app_worker_cancel(app_worker *w);
bool app_worker_busy(app_worker *w);
/* Move what the worker produced into the pane (UI thread). true when anything changed. */
bool app_worker_drain(app_worker *w, ui_pane *p);
/* For /save and /stats: the last figures the worker reported (copied under its lock). */
void app_worker_status(app_worker *w, ui_pane_status *st);

/* "KEY VALUE" for /set: NULL when valid, else why not (static text). */
const char *app_chat_set_check(const char *kv);
/* The same, applied to cfg when valid: /set for every pane is also what panes opened later
 * start with. */
const char *app_chat_set_apply(app_chat_cfg *cfg, const char *kv);

/* The sampling options of cfg as a served model is sent them (the TUI's remote panes and the
 * line mode): the temperature and the answer's length always, the rest where they differ from
 * the engine's defaults, so the server's own defaults apply (app/chat_worker.c). */
dl_remote_sampling app_chat_remote_sampling(const app_chat_cfg *cfg);

/* The --plain line mode (app/chat_plain.c): model i is the file paths[i], or when that is NULL
 * the served model refs[i] names (URL#MODEL, @NAME/MODEL; refs may be NULL when every path is
 * given). Returns the exit status. */
int app_chat_plain(char **paths, const char *const *refs, size_t n, const app_chat_cfg *cfg);

/* The TUI (app/chat_tui.c): pane i opens paths[i], or downloads refs[i] first when paths[i] is
 * NULL (refs may be NULL when every path is given). */
int app_chat_tui(char **paths, const char *const *refs, size_t n, const app_chat_cfg *cfg);

#endif
