/* A served model's conversation (see remote_conv.h). The messages sit in one array whose first
 * slot is kept for the system prompt, so a chat request points into it as it is, and the
 * completion text is kept joined as messages come and go: building a request allocates
 * nothing, and so cannot fail on its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/remote_conv.h"
#include "engine/strbuf.h"

struct app_rconv {
    dl_remote_msg *msg;   /* (cap) slots: [0] the system prompt when has_system, then the
                           * history, oldest first; contents malloc'd, roles static */
    size_t n, cap;        /* slots in use, the system's slot included */
    bool has_system;
    strbuf text;          /* the history's contents joined: a completion's prompt */
};

app_rconv *app_rconv_new(void)
{
    app_rconv *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cap = 8;
    c->msg = calloc(c->cap, sizeof *c->msg);
    if (!c->msg || !strbuf_put(&c->text, "", 0)) {
        app_rconv_free(c);
        return NULL;
    }
    c->n = 1;
    c->msg[0].role = "system";
    return c;
}

void app_rconv_free(app_rconv *c)
{
    if (!c)
        return;
    app_rconv_clear(c);
    if (c->msg)
        free((char *)c->msg[0].content);
    free(c->msg);
    strbuf_free(&c->text);
    free(c);
}

bool app_rconv_set_system(app_rconv *c, const char *text)
{
    char *dup = NULL;
    if (text && *text && !(dup = strdup(text)))
        return false;
    free((char *)c->msg[0].content);
    c->msg[0].content = dup;
    c->has_system = dup != NULL;
    return true;
}

bool app_rconv_add(app_rconv *c, const char *role, const char *content)
{
    if (c->n == c->cap) {
        dl_remote_msg *m = realloc(c->msg, 2 * c->cap * sizeof *m);
        if (!m)
            return false;
        c->msg = m;
        c->cap *= 2;
    }
    char *dup = strdup(content);
    if (!dup || !strbuf_puts(&c->text, content)) {
        free(dup);
        c->text.oom = false;   /* a failed append leaves the text as it was: keep using it */
        return false;
    }
    c->msg[c->n++] = (dl_remote_msg){ role, dup };
    return true;
}

void app_rconv_pop(app_rconv *c)
{
    if (c->n < 2)
        return;
    char *content = (char *)c->msg[--c->n].content;
    c->text.len -= strlen(content);
    c->text.p[c->text.len] = 0;
    free(content);
}

void app_rconv_clear(app_rconv *c)
{
    while (c->n > 1)
        app_rconv_pop(c);
}

const char *app_rconv_last_role(const app_rconv *c)
{
    return c->n > 1 ? c->msg[c->n - 1].role : NULL;
}

dl_status app_rconv_generate(app_rconv *c, dl_remote *r, dl_remote_mode mode,
                             const dl_remote_sampling *s, dl_remote_token_fn fn, void *user,
                             dl_remote_finish *why)
{
    dl_remote_request q = { 0 };
    q.mode = mode;
    q.msgs = c->msg + (c->has_system ? 0 : 1);
    q.n_msgs = c->n - (c->has_system ? 0 : 1);
    q.prompt = c->text.p;
    q.sampling = *s;
    return dl_remote_generate(r, &q, fn, user, why);
}

bool app_rconv_settle(app_rconv *c, const dl_remote *r, dl_status st)
{
    const char *answer = dl_remote_answer(r);
    if (st == DL_OK || (answer && *answer))
        return app_rconv_add(c, "assistant", answer ? answer : "");
    if (app_rconv_last_role(c) && !strcmp(app_rconv_last_role(c), "user"))
        app_rconv_pop(c);
    return true;
}

void app_rconv_figs_get(const dl_remote_stats *st, app_rconv_figs *f)
{
    snprintf(f->prompt_tps, sizeof f->prompt_tps, "-");
    snprintf(f->n_prompt, sizeof f->n_prompt, "-");
    f->kv[0] = f->srv[0] = 0;
    if (st->n_prompt)   /* from usage; a server that sends none leaves it unknown, not 0 */
        snprintf(f->n_prompt, sizeof f->n_prompt, "%u", st->n_prompt);
    /* prompt_tps stays "-": a prompt's speed cannot be measured from here (the first token's
     * time mixes it with the network and the server's queue); the server's own figure is only
     * ever shown as the server's, in srv */
    if (st->has_timings) {
        snprintf(f->srv, sizeof f->srv, "; server's own: prompt %u tokens, %.1f tokens/s, "
                 "generated %u tokens, %.1f tokens/s", st->srv_n_prompt, st->srv_prompt_tps,
                 st->srv_n_gen, st->srv_gen_tps);
    }
    if (st->kv_usage >= 0)
        snprintf(f->kv, sizeof f->kv, " (KV cache %.0f%% in use)", st->kv_usage * 100);
}
