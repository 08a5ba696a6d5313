/* One conversation with a model: the messages, how they become the prompt (a chat template, or
 * plain text continued in completion mode), the incremental feed that keeps what the context
 * already holds, and the stop strings of the template's family. Every front end (the readline
 * chat of `sizeup run`, the TUI, compare) uses this object, so none re-implements it.
 *
 * Modes: a model that carries a chat template chats with it; one without (base models, the tiny
 * demo models) is in completion mode: the text so far (user and model turns joined) is
 * continued. ENG_CONV_CHAT forces chatting (chatml when the model has no template) and a named
 * template forces that family.
 *
 * Owns its message copies; borrows the model and session (the caller keeps them alive and uses
 * the session through this object only, from one thread at a time). Never prints. */
#ifndef SIZEUP_ENGINE_CONV_H
#define SIZEUP_ENGINE_CONV_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/chat.h"
#include "engine/engine.h"

typedef enum eng_conv_mode {
    ENG_CONV_AUTO = 0,    /* chat when the model has a template, else completion */
    ENG_CONV_CHAT,        /* always chat: the model's template, or chatml */
    ENG_CONV_COMPLETION,  /* always continue the text */
} eng_conv_mode;

typedef struct eng_conv eng_conv;

/* template_name (NULL: none) forces a family by name (eng_chat_family_from_name) and chat mode.
 * ENG_ERR_ARG for an unknown name, ENG_ERR_NOMEM; err says which. Caller frees with
 * eng_conv_free. */
eng_status eng_conv_new(eng_model *m, eng_session *s, eng_conv_mode mode,
                        const char *template_name, eng_conv **out, char *err, size_t errlen);
void eng_conv_free(eng_conv *c);
const char *eng_conv_errmsg(const eng_conv *c);

bool eng_conv_is_chat(const eng_conv *c);
eng_model *eng_conv_model(const eng_conv *c);      /* the borrowed model and session */
eng_session *eng_conv_session(const eng_conv *c);
/* The template in use (meaningful in chat mode); borrowed until free. Its reason says why a
 * fallback was chosen. */
const eng_chat_template *eng_conv_template(const eng_conv *c);

/* Set or replace the system message (NULL or "" removes it). Completion mode puts it first in
 * the text. */
eng_status eng_conv_set_system(eng_conv *c, const char *text);
/* Append a message ("user" or "assistant"). */
eng_status eng_conv_add(eng_conv *c, const char *role, const char *content);
size_t eng_conv_count(const eng_conv *c);
/* Message i (the system message, when set, is message 0); borrowed until the next change. */
eng_chat_msg eng_conv_msg(const eng_conv *c, size_t i);
/* Drop the last message when it is the model's answer (for a regenerate); true when dropped. */
bool eng_conv_pop_answer(eng_conv *c);
/* Drop the last message when it is the user's (a turn whose answer was cancelled before it
 * began: Ctrl-C while the prompt was fed); true when dropped. */
bool eng_conv_pop_user(eng_conv *c);
/* Forget every message but the system one, and the context. */
void eng_conv_clear(eng_conv *c);

/* Continue the conversation on another session (new sampling settings, say): the next sync
 * feeds it the whole prompt. The old session stays the caller's. */
void eng_conv_set_session(eng_conv *c, eng_session *s);

/* Render the conversation and feed the session only what its context does not hold yet (the
 * common prefix is kept; a diverged context starts over). */
eng_status eng_conv_sync(eng_conv *c);

/* Sync, then generate the model's answer: o's max_tokens and cancel are used, the template's stop
 * strings added. Tokens reach fn as eng_session_generate gives them. The answer's text, partial
 * too when cancelled, joins the conversation as an assistant message. */
eng_status eng_conv_generate(eng_conv *c, const eng_generate_opts *o, eng_token_fn fn,
                             void *user, eng_stop_reason *why);

#endif
