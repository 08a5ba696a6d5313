/* A conversation with a served model, kept on this side: an OpenAI-compatible server keeps no
 * state between requests, so each answer sends the system prompt and the whole history (chat)
 * or the history's text joined, to be continued (completion). One place for what `run -m REMOTE
 * --chat` (app/cmd_remote.c), the TUI's remote panes (app/chat_worker.c) and the line mode
 * (app/chat_plain.c) all need: the messages, the request built from them, the rule for what an
 * answer leaves in the history, and the figures a server may or may not send. Printing stays
 * with each caller. One thread at a time. */
#ifndef SIZEUP_APP_REMOTE_CONV_H
#define SIZEUP_APP_REMOTE_CONV_H

#include <stdbool.h>
#include <stddef.h>

#include "downloads/dl_remote.h"

typedef struct app_rconv app_rconv;

/* An empty conversation without a system prompt; NULL when out of memory. Free with
 * app_rconv_free (NULL-safe). */
app_rconv *app_rconv_new(void);
void app_rconv_free(app_rconv *c);

/* The system prompt (copied; NULL or "" removes it): sent first in chat mode, never part of a
 * completion's text. false when out of memory (the old one stays). */
bool app_rconv_set_system(app_rconv *c, const char *text);
/* Append a message (content copied; role is "user" or "assistant", a static string). false when
 * out of memory (nothing added). */
bool app_rconv_add(app_rconv *c, const char *role, const char *content);
/* Drop the last message (no-op when there is none); the system prompt stays. */
void app_rconv_pop(app_rconv *c);
/* Drop every message; the system prompt stays. */
void app_rconv_clear(app_rconv *c);
/* The role of the last message (static), or NULL when there is none. */
const char *app_rconv_last_role(const app_rconv *c);

/* Stream r's answer to the conversation as it stands (its last message is normally the
 * user's): chat sends the system prompt and the messages to /chat/completions, completion the
 * messages' text joined to /completions. s, fn, user, why and the result are as for
 * dl_remote_generate; the history is not changed (see app_rconv_settle). */
dl_status app_rconv_generate(app_rconv *c, dl_remote *r, dl_remote_mode mode,
                             const dl_remote_sampling *s, dl_remote_token_fn fn, void *user,
                             dl_remote_finish *why);

/* The chat TUI's and the line mode's rule after an answer that had status st: whatever arrived,
 * a partial answer included, goes into the history as the assistant's message; when the answer
 * failed with nothing received, the user's message is taken back out, so the next message does
 * not follow an unanswered one. false when out of memory. */
bool app_rconv_settle(app_rconv *c, const dl_remote *r, dl_status st);

/* The parts of a served answer's figures that a server may or may not send, as run's stats line
 * and the line mode's figures show them: prompt tokens/s as measured here, which is always "-"
 * (not measurable from the client: the first token's time mixes the prompt with the network
 * and the server's queue), the prompt's tokens (usage, else "-"), " (KV cache N% in use)"
 * (/metrics, else ""), and "; server's own: ..." (llama-server's timings, its prompt speed
 * included, else ""): a server's figure is shown only labelled as the server's. */
typedef struct app_rconv_figs {
    char prompt_tps[32], n_prompt[16], kv[48], srv[160];
} app_rconv_figs;
void app_rconv_figs_get(const dl_remote_stats *st, app_rconv_figs *f);

#endif
