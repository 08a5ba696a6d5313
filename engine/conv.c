/* A conversation: messages, prompt rendering, incremental feed, stop strings (see conv.h). */
#include "engine/conv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/strbuf.h"

#include "engine/gguf.h"
#include "engine/model.h"

struct eng_conv {
    eng_model *m;
    eng_session *s;
    bool chat;
    eng_chat_template t;
    eng_chat_msg *msgs;  /* contents owned; roles static */
    size_t n_msgs, cap_msgs;
    int32_t *ctx;        /* tokens believed to be in the session's context */
    size_t n_ctx, cap_ctx;
    char err[512];
};

static eng_status fail(eng_conv *c, eng_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return st;
}

static const char *static_role(const char *role)
{
    if (!strcmp(role, "system"))
        return "system";
    if (!strcmp(role, "user"))
        return "user";
    if (!strcmp(role, "assistant"))
        return "assistant";
    return NULL;
}

eng_status eng_conv_new(eng_model *m, eng_session *s, eng_conv_mode mode,
                        const char *template_name, eng_conv **out, char *err, size_t errlen)
{
    *out = NULL;
    eng_conv *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return ENG_ERR_NOMEM;
    }
    c->m = m;
    c->s = s;
    gguf_str src = { 0 };
    bool has_template = gguf_get_str(m->file, "tokenizer.chat_template", &src) == GGUF_OK &&
                        src.len > 0;
    eng_chat_detect(src.ptr, (size_t)src.len, &c->t);
    c->chat = mode == ENG_CONV_CHAT || (mode == ENG_CONV_AUTO && has_template);
    if (template_name) {
        unsigned variant = 0;
        int fam = eng_chat_family_from_name(template_name, &variant);
        if (fam < 0) {
            snprintf(err, errlen, "unknown chat template '%s' (chatml, llama3, llama2, mistral, "
                     "phi3, gemma, gemma3, zephyr, deepseek-r1, deepseek-v3)", template_name);
            free(c);
            return ENG_ERR_ARG;
        }
        eng_chat_template_init(&c->t, (eng_chat_family)fam, variant);
        c->chat = true;
    }
    *out = c;
    return ENG_OK;
}

void eng_conv_free(eng_conv *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_msgs; i++)
        free((char *)c->msgs[i].content);
    free(c->msgs);
    free(c->ctx);
    free(c);
}

const char *eng_conv_errmsg(const eng_conv *c) { return c->err; }
bool eng_conv_is_chat(const eng_conv *c) { return c->chat; }
eng_model *eng_conv_model(const eng_conv *c) { return c->m; }
eng_session *eng_conv_session(const eng_conv *c) { return c->s; }
const eng_chat_template *eng_conv_template(const eng_conv *c) { return &c->t; }
size_t eng_conv_count(const eng_conv *c) { return c->n_msgs; }
eng_chat_msg eng_conv_msg(const eng_conv *c, size_t i) { return c->msgs[i]; }

static eng_status insert_msg(eng_conv *c, size_t at, const char *role, const char *content)
{
    if (c->n_msgs == c->cap_msgs) {
        size_t cap = c->cap_msgs ? c->cap_msgs * 2 : 8;
        eng_chat_msg *p = realloc(c->msgs, cap * sizeof *p);
        if (!p)
            return fail(c, ENG_ERR_NOMEM, "out of memory");
        c->msgs = p;
        c->cap_msgs = cap;
    }
    char *dup = strdup(content);
    if (!dup)
        return fail(c, ENG_ERR_NOMEM, "out of memory");
    memmove(c->msgs + at + 1, c->msgs + at, (c->n_msgs - at) * sizeof *c->msgs);
    c->msgs[at] = (eng_chat_msg){ role, dup };
    c->n_msgs++;
    return ENG_OK;
}

static void remove_msg(eng_conv *c, size_t at)
{
    free((char *)c->msgs[at].content);
    memmove(c->msgs + at, c->msgs + at + 1, (c->n_msgs - at - 1) * sizeof *c->msgs);
    c->n_msgs--;
}

eng_status eng_conv_set_system(eng_conv *c, const char *text)
{
    if (c->n_msgs && !strcmp(c->msgs[0].role, "system"))
        remove_msg(c, 0);
    if (!text || !*text)
        return ENG_OK;
    return insert_msg(c, 0, "system", text);
}

eng_status eng_conv_add(eng_conv *c, const char *role, const char *content)
{
    const char *r = static_role(role);
    if (!r || r[0] == 's' || !content)
        return fail(c, ENG_ERR_ARG, "a message's role must be user or assistant, not '%s'",
                    role ? role : "(null)");
    return insert_msg(c, c->n_msgs, r, content);
}

static bool pop_role(eng_conv *c, const char *role)
{
    if (!c->n_msgs || strcmp(c->msgs[c->n_msgs - 1].role, role))
        return false;
    remove_msg(c, c->n_msgs - 1);
    return true;
}

bool eng_conv_pop_answer(eng_conv *c) { return pop_role(c, "assistant"); }
bool eng_conv_pop_user(eng_conv *c) { return pop_role(c, "user"); }

void eng_conv_set_session(eng_conv *c, eng_session *s)
{
    c->s = s;
    c->n_ctx = 0;
}

void eng_conv_clear(eng_conv *c)
{
    size_t keep = c->n_msgs && !strcmp(c->msgs[0].role, "system") ? 1 : 0;
    while (c->n_msgs > keep)
        remove_msg(c, c->n_msgs - 1);
    eng_session_reset(c->s);
    c->n_ctx = 0;
}

/* Completion mode's text: every message joined as is (the model's continuation must read back
 * as the tokens it produced), and a space before a user's text that would otherwise run into
 * the words before it. Caller frees. */
static char *render_plain(const eng_conv *c)
{
    size_t cap = 1;
    for (size_t i = 0; i < c->n_msgs; i++)
        cap += strlen(c->msgs[i].content) + 1;
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < c->n_msgs; i++) {
        const char *s = c->msgs[i].content;
        if (o > out && *s && c->msgs[i].role[0] == 'u' && !strchr(" \t\n", o[-1]) &&
            !strchr(" \t\n", *s))
            *o++ = ' ';
        size_t n = strlen(s);
        memcpy(o, s, n);
        o += n;
    }
    *o = 0;
    return out;
}

/* The prompt as tokens; *ids malloc'd. */
static eng_status render_tokens(eng_conv *c, int32_t **ids, size_t *n)
{
    char *text, err[256];
    if (c->chat) {
        eng_chat_status cs = eng_chat_render(&c->t, c->msgs, c->n_msgs, ENG_CHAT_GEN_PROMPT,
                                             &text, NULL, err, sizeof err);
        if (cs != ENG_CHAT_OK)
            return fail(c, cs == ENG_CHAT_ERR_NOMEM ? ENG_ERR_NOMEM : ENG_ERR_ARG,
                        "chat template: %s", err);
    } else if (!(text = render_plain(c))) {
        return fail(c, ENG_ERR_NOMEM, "out of memory");
    }
    eng_tok_status ts = eng_tokenize(eng_model_vocab(c->m), text, strlen(text), true, c->chat,
                                     ids, n);
    free(text);
    if (ts != ENG_TOK_OK)
        return fail(c, ENG_ERR_NOMEM, "out of memory tokenizing the conversation");
    return ENG_OK;
}

eng_status eng_conv_sync(eng_conv *c)
{
    int32_t *ids;
    size_t n;
    eng_status st = render_tokens(c, &ids, &n);
    if (st)
        return st;
    size_t same = 0;
    while (same < c->n_ctx && same < n && c->ctx[same] == ids[same])
        same++;
    if (same < c->n_ctx) {
        /* the model's tokens for its own answer differ from a fresh tokenization: start over */
        eng_session_reset(c->s);
        same = 0;
    }
    st = eng_session_feed(c->s, ids + same, n - same);
    free(c->ctx);
    c->ctx = ids;
    c->n_ctx = c->cap_ctx = n;
    if (st) {
        c->n_ctx = same;
        return fail(c, st, "%s", eng_session_errmsg(c->s));
    }
    return ENG_OK;
}

typedef struct answer {
    eng_conv *c;
    strbuf text;
    eng_token_fn fn;
    void *user;
} answer;

static bool on_token(void *user, int32_t token, const char *text, size_t len, const eng_stats *st)
{
    answer *a = user;
    eng_conv *c = a->c;
    if (token >= 0 && c->n_ctx == c->cap_ctx) {
        size_t cap = c->cap_ctx ? c->cap_ctx * 2 : 64;
        int32_t *p = realloc(c->ctx, cap * sizeof *p);
        if (p) {
            c->ctx = p;
            c->cap_ctx = cap;
        }
    }
    if (token >= 0 && c->n_ctx < c->cap_ctx)
        c->ctx[c->n_ctx++] = token;
    strbuf_put(&a->text, text, len); /* a failure is sticky: reported after generation */
    return a->fn ? a->fn(a->user, token, text, len, st) : true;
}

eng_status eng_conv_generate(eng_conv *c, const eng_generate_opts *o, eng_token_fn fn,
                             void *user, eng_stop_reason *why)
{
    eng_status st = eng_conv_sync(c);
    if (st)
        return st;
    eng_generate_opts go = *o;
    const char *const *stops = c->chat ? eng_chat_stop_strings(c->t.family) : NULL;
    size_t n_stop = 0;
    while (stops && stops[n_stop])
        n_stop++;
    if (!go.n_stop) {
        go.stop_strings = stops;
        go.n_stop = n_stop;
    }
    answer a = { c, { 0 }, fn, user };
    st = eng_session_generate(c->s, &go, on_token, &a, why);
    if (st) {
        strbuf_free(&a.text);
        return fail(c, st, "%s", eng_session_errmsg(c->s));
    }
    bool oom = a.text.oom;
    eng_status add = eng_conv_add(c, "assistant", a.text.p && !oom ? a.text.p : "");
    strbuf_free(&a.text);
    if (!add && oom)
        return fail(c, ENG_ERR_NOMEM, "out of memory keeping the answer");
    return add;
}
