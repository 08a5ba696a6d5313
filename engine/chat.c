/* Chat templates: family recognition from Jinja source and one hand-written formatter per
 * family (see chat.h for the families and the BOS convention).
 *
 * Where the model's own Hugging Face template and ollama's rendering disagree, the formatter
 * follows the format the model was trained on (the HF template, or the vendor's reference
 * code), and the difference is written next to the formatter. The goldens in
 * tests/test_chat.c name each one.
 */
#include "engine/chat.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/strbuf.h"

/* ---- spans of message text */

typedef struct span {
    const char *p;
    size_t n;
} span;

static span span_of(const char *s) { return (span){s, strlen(s)}; }
static void sb_span(strbuf *b, span s) { strbuf_put(b, s.p, s.n); }

/* Jinja's trim is Python's str.strip(); message text is treated as ASCII here, so the rarer
 * Unicode spaces it would also remove are kept. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static span rtrim(span s)
{
    while (s.n > 0 && is_space(s.p[s.n - 1]))
        s.n--;
    return s;
}

static span trim(span s)
{
    while (s.n > 0 && is_space(s.p[0])) {
        s.p++;
        s.n--;
    }
    return rtrim(s);
}

/* The text after the last "</think>" (content.split('</think>')[-1] in the templates), with
 * leading newlines removed when lstrip_nl (QwQ's .lstrip('\n')). */
static span after_think(span s, bool lstrip_nl)
{
    static const char tag[] = "</think>";
    const size_t tl = sizeof tag - 1;
    const char *hit = NULL, *p = s.p, *end = s.p + s.n;
    while ((p = memmem(p, (size_t)(end - p), tag, tl)) != NULL) {
        hit = p;
        p += tl;
    }
    if (hit) {
        s.p = hit + tl;
        s.n = (size_t)(end - s.p);
    }
    while (lstrip_nl && s.n > 0 && s.p[0] == '\n') {
        s.p++;
        s.n--;
    }
    return s;
}

/* ---- per-family facts */

static const char *const family_names[ENG_CHAT_FAMILY_COUNT] = {
    "chatml", "llama3", "llama2", "mistral", "phi3",
    "gemma", "gemma3", "zephyr", "deepseek-r1", "deepseek-v3",
};

static const char *const family_bos[ENG_CHAT_FAMILY_COUNT] = {
    NULL, "<|begin_of_text|>", "<s>", "<s>", "<s>",
    "<bos>", "<bos>", "<s>", "<｜begin▁of▁sentence｜>", "<｜begin▁of▁sentence｜>",
};

/* The turn terminator first, then the end-of-text token, then the opening of a next turn
 * (models that miss their terminator tend to run on into one). */
static const char *const stops_chatml[] = {"<|im_end|>", "<|endoftext|>", "<|im_start|>", NULL};
static const char *const stops_llama3[] = {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>",
                                           "<|start_header_id|>", NULL};
static const char *const stops_inst[] = {"</s>", "[INST]", NULL};
static const char *const stops_phi3[] = {"<|end|>", "<|endoftext|>", "<|user|>", NULL};
static const char *const stops_gemma[] = {"<end_of_turn>", "<eos>", "<start_of_turn>", NULL};
static const char *const stops_zephyr[] = {"</s>", "<|user|>", NULL};
static const char *const stops_deepseek[] = {"<｜end▁of▁sentence｜>", "<｜User｜>", NULL};
static const char *const stops_none[] = {NULL};

static const char *const *const family_stops[ENG_CHAT_FAMILY_COUNT] = {
    stops_chatml, stops_llama3, stops_inst, stops_inst, stops_phi3,
    stops_gemma, stops_gemma, stops_zephyr, stops_deepseek, stops_deepseek,
};

/* Names a user may type. Aliases are ollama's format names and llama.cpp's variant names. */
static const struct {
    const char *name;
    eng_chat_family family;
    unsigned variant;
} chat_names[] = {
    {"chatml", ENG_CHAT_CHATML, 0},
    {"qwen", ENG_CHAT_CHATML, 0},
    {"llama3", ENG_CHAT_LLAMA3, 0},
    {"llama3-instruct", ENG_CHAT_LLAMA3, 0},
    {"llama3.1", ENG_CHAT_LLAMA3, ENG_CHAT_VAR_LLAMA31_SYSTEM},
    {"llama3.2", ENG_CHAT_LLAMA3, ENG_CHAT_VAR_LLAMA31_SYSTEM},
    {"llama3.3", ENG_CHAT_LLAMA3, ENG_CHAT_VAR_LLAMA31_SYSTEM},
    {"llama2", ENG_CHAT_LLAMA2, 0},
    {"llama2-chat", ENG_CHAT_LLAMA2, 0},
    {"mistral", ENG_CHAT_MISTRAL, 0},
    {"mistral-instruct", ENG_CHAT_MISTRAL, 0},
    {"mistral-v3", ENG_CHAT_MISTRAL, 0},
    {"mistral-v3-tekken", ENG_CHAT_MISTRAL, ENG_CHAT_VAR_MISTRAL_TEKKEN},
    {"mistral-nemo", ENG_CHAT_MISTRAL, ENG_CHAT_VAR_MISTRAL_TEKKEN},
    {"mistral-v7", ENG_CHAT_MISTRAL, ENG_CHAT_VAR_MISTRAL_SYSPROMPT},
    {"mistral-v7-tekken", ENG_CHAT_MISTRAL,
     ENG_CHAT_VAR_MISTRAL_SYSPROMPT | ENG_CHAT_VAR_MISTRAL_TEKKEN},
    {"mistral-small", ENG_CHAT_MISTRAL,
     ENG_CHAT_VAR_MISTRAL_SYSPROMPT | ENG_CHAT_VAR_MISTRAL_TEKKEN},
    {"phi3", ENG_CHAT_PHI3, 0},
    {"phi-3", ENG_CHAT_PHI3, 0},
    {"gemma", ENG_CHAT_GEMMA, 0},
    {"gemma2", ENG_CHAT_GEMMA, 0},
    {"gemma-instruct", ENG_CHAT_GEMMA, 0},
    {"gemma3", ENG_CHAT_GEMMA3, 0},
    {"gemma3-instruct", ENG_CHAT_GEMMA3, 0},
    {"zephyr", ENG_CHAT_ZEPHYR, 0},
    {"deepseek-r1", ENG_CHAT_DEEPSEEK_R1, ENG_CHAT_VAR_STRIP_THINK},
    {"deepseek-v3", ENG_CHAT_DEEPSEEK_V3, 0},
    {"deepseek-v3.1", ENG_CHAT_DEEPSEEK_V3, ENG_CHAT_VAR_THINK_CLOSED | ENG_CHAT_VAR_STRIP_THINK},
};

static bool family_ok(int f) { return f >= 0 && f < ENG_CHAT_FAMILY_COUNT; }

const char *eng_chat_family_name(eng_chat_family family)
{
    return family_ok((int)family) ? family_names[family] : "?";
}

const char *const *eng_chat_stop_strings(eng_chat_family family)
{
    return family_ok((int)family) ? family_stops[family] : stops_none;
}

const char *eng_chat_bos_text(eng_chat_family family)
{
    return family_ok((int)family) ? family_bos[family] : NULL;
}

int eng_chat_family_from_name(const char *name, unsigned *variant)
{
    if (variant)
        *variant = 0;
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof chat_names / sizeof chat_names[0]; i++) {
        if (strcasecmp(name, chat_names[i].name) == 0) {
            if (variant)
                *variant = chat_names[i].variant;
            return (int)chat_names[i].family;
        }
    }
    return -1;
}

void eng_chat_template_init(eng_chat_template *t, eng_chat_family family, unsigned variant)
{
    if (!t)
        return;
    memset(t, 0, sizeof *t);
    t->family = family_ok((int)family) ? family : ENG_CHAT_CHATML;
    t->variant = variant;
    t->bos_text = family_bos[t->family];
}

const char *eng_chat_status_str(eng_chat_status s)
{
    switch (s) {
    case ENG_CHAT_OK: return "ok";
    case ENG_CHAT_ERR_ARG: return "invalid argument";
    case ENG_CHAT_ERR_ROLE: return "unknown message role";
    case ENG_CHAT_ERR_NOMEM: return "out of memory";
    }
    return "unknown status";
}

/* ---- recognition
 *
 * Like llama.cpp's llm_chat_detect_template: each family is known by marker strings that only
 * it writes. Order matters where markers are shared: "[INST]" is Llama 2's and Mistral's
 * (<<SYS>> tells them apart), "<|assistant|>" Phi-3's and Zephyr's (Phi-3 ends turns with
 * <|end|>; gpt-oss has <|end|> but no <|assistant|>). */

typedef struct tmpl_text {
    const char *p;
    size_t n;
} tmpl_text;

static bool has(tmpl_text t, const char *needle)
{
    return memmem(t.p, t.n, needle, strlen(needle)) != NULL;
}

static const char REASON_NONE[] = "no chat template in the model; using chatml";
static const char REASON_UNKNOWN[] = "unrecognised chat template; using chatml";
static const char REASON_TOOLS[] =
    "tool-calling template: its function-calling instructions are not reproduced";
static const char REASON_DEFAULT_SYS[] =
    "the template's built-in default system prompt is not reproduced; give a system message";

/* Undo the escapes of a Jinja string literal body starting at p and ending at the quote q.
 * Returns the number of bytes written to dst (NUL-terminated), or -1 when the literal does not
 * end or does not fit. */
static long literal_body(const char *p, const char *end, char q, char *dst, size_t cap)
{
    size_t k = 0;
    for (; p < end && *p != q; p++) {
        char ch = *p;
        if (ch == '\\' && p + 1 < end) {
            p++;
            ch = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
        }
        if (k + 1 >= cap)
            return -1;
        dst[k++] = ch;
    }
    if (p >= end)
        return -1;
    dst[k] = '\0';
    return (long)k;
}

/* Qwen2.5 and SmolLM2 write a fixed system turn when the conversation opens without one, as
 * the literal '<|im_start|>system\nTEXT<|im_end|>\n'. Copy TEXT into dst, or leave dst "". */
static void chatml_default_system(tmpl_text t, char *dst, size_t cap)
{
    static const char open[] = "<|im_start|>system";
    static const char close[] = "<|im_end|>\n";
    const size_t ol = sizeof open - 1, cl = sizeof close - 1;
    const char *end = t.p + t.n, *p = t.p;
    dst[0] = '\0';
    while ((p = memmem(p, (size_t)(end - p), open, ol)) != NULL) {
        const char *at = p;
        p += ol;
        if (at == t.p || (at[-1] != '\'' && at[-1] != '"'))
            continue;
        long k = literal_body(at, end, at[-1], dst, cap);
        /* The body must be "<|im_start|>system\n" + non-empty text + close. */
        if (k > (long)(ol + 1 + cl) && dst[ol] == '\n' && strcmp(dst + k - cl, close) == 0) {
            size_t text = (size_t)k - ol - 1 - cl;
            memmove(dst, dst + ol + 1, text);
            dst[text] = '\0';
            return;
        }
        dst[0] = '\0';
    }
}

static bool detect_chatml(tmpl_text t, eng_chat_template *out)
{
    /* Phi-4 writes <|im_start|>role<|im_sep|>: not chatml, and not a family here. */
    if (!has(t, "<|im_start|>") || has(t, "<|im_sep|>"))
        return false;
    eng_chat_template_init(out, ENG_CHAT_CHATML, 0);
    chatml_default_system(t, out->default_system, sizeof out->default_system);
    if (has(t, "<|im_start|>assistant\\n<think>") || has(t, "<|im_start|>assistant\n<think>"))
        out->variant |= ENG_CHAT_VAR_THINK_OPEN;
    if (has(t, "</think>"))
        out->variant |= ENG_CHAT_VAR_STRIP_THINK;
    /* Hermes' tool_use templates always open with a function-calling system turn. */
    if (has(t, "You are a function calling AI model"))
        out->reason = REASON_TOOLS;
    return true;
}

static bool detect_inst(tmpl_text t, eng_chat_template *out)
{
    if (!has(t, "[INST]"))
        return false;
    if (has(t, "<<SYS>>")) {
        eng_chat_template_init(out, ENG_CHAT_LLAMA2, 0);
        return true;
    }
    unsigned v = 0;
    /* Nemo, Small 3.x and Devstral write '[INST]' + content: no space anywhere after it. */
    if (!has(t, "[INST] "))
        v |= ENG_CHAT_VAR_MISTRAL_TEKKEN;
    if (has(t, "[SYSTEM_PROMPT]"))
        v |= ENG_CHAT_VAR_MISTRAL_SYSPROMPT;
    eng_chat_template_init(out, ENG_CHAT_MISTRAL, v);
    if ((v & ENG_CHAT_VAR_MISTRAL_SYSPROMPT) && has(t, "default_system_message"))
        out->reason = REASON_DEFAULT_SYS;
    return true;
}

static bool detect_llama3(tmpl_text t, eng_chat_template *out)
{
    if (!has(t, "<|start_header_id|>") || !has(t, "<|end_header_id|>"))
        return false;
    /* Functionary v3.1 also writes "Cutting Knowledge Date", but no "Today Date". */
    unsigned v = has(t, "Cutting Knowledge Date: December 2023") && has(t, "Today Date: ")
                     ? ENG_CHAT_VAR_LLAMA31_SYSTEM
                     : 0;
    eng_chat_template_init(out, ENG_CHAT_LLAMA3, v);
    /* Firefunction (functools[...]) and Functionary (<function=...>, >>>recipient) wrap the
     * llama3 turns in their own tool instructions and answer formats. */
    if (has(t, "functools") || has(t, "<function=") || has(t, ">>>"))
        out->reason = REASON_TOOLS;
    return true;
}

static bool detect_deepseek(tmpl_text t, eng_chat_template *out)
{
    if (!has(t, "<｜User｜>") || !has(t, "<｜Assistant｜>"))
        return false;
    if (has(t, "<｜Assistant｜></think>"))
        eng_chat_template_init(out, ENG_CHAT_DEEPSEEK_V3,
                               ENG_CHAT_VAR_THINK_CLOSED | ENG_CHAT_VAR_STRIP_THINK);
    else if (has(t, "</think>") || has(t, "<think>"))
        eng_chat_template_init(out, ENG_CHAT_DEEPSEEK_R1, ENG_CHAT_VAR_STRIP_THINK);
    else
        eng_chat_template_init(out, ENG_CHAT_DEEPSEEK_V3, 0);
    return true;
}

static bool detect_other(tmpl_text t, eng_chat_template *out)
{
    if (has(t, "<|assistant|>") && has(t, "<|end|>")) {
        eng_chat_template_init(out, ENG_CHAT_PHI3,
                               has(t, "<|system|>") ? 0 : ENG_CHAT_VAR_DROP_SYSTEM);
        return true;
    }
    if (has(t, "<|user|>") && has(t, "<|assistant|>") && (has(t, "eos_token") || has(t, "</s>"))) {
        eng_chat_template_init(out, ENG_CHAT_ZEPHYR, 0);
        return true;
    }
    if (has(t, "<start_of_turn>")) {
        bool g3 = has(t, "<start_of_image>") || has(t, "first_user_prefix");
        eng_chat_template_init(out, g3 ? ENG_CHAT_GEMMA3 : ENG_CHAT_GEMMA, 0);
        return true;
    }
    return false;
}

eng_chat_family eng_chat_detect(const char *tmpl, size_t len, eng_chat_template *out)
{
    if (!out)
        return ENG_CHAT_CHATML;
    tmpl_text t = {tmpl ? tmpl : "", tmpl ? len : 0};
    span s = trim((span){t.p, t.n});
    if (s.n == 0) {
        eng_chat_template_init(out, ENG_CHAT_CHATML, 0);
        out->fallback = true;
        out->reason = REASON_NONE;
        return out->family;
    }
    if (detect_chatml(t, out) || detect_inst(t, out) || detect_other(t, out) ||
        detect_llama3(t, out) || detect_deepseek(t, out)) {
        /* A template that never writes BOS (Phi-3.5, Zephyr) renders without it in HF, so
         * ENG_CHAT_BOS_TEXT adds none either. */
        if (out->bos_text && !has(t, "bos_token") && !has(t, out->bos_text))
            out->bos_text = NULL;
        return out->family;
    }
    eng_chat_template_init(out, ENG_CHAT_CHATML, 0);
    out->fallback = true;
    out->reason = REASON_UNKNOWN;
    return out->family;
}

/* ---- rendering */

enum { R_SYSTEM, R_USER, R_ASSISTANT };

static int role_of(const char *r)
{
    if (!r)
        return -1;
    if (strcmp(r, "system") == 0)
        return R_SYSTEM;
    if (strcmp(r, "user") == 0)
        return R_USER;
    if (strcmp(r, "assistant") == 0)
        return R_ASSISTANT;
    return -1;
}

typedef struct rctx {
    const eng_chat_template *t;
    const eng_chat_msg *m;
    size_t n;
    bool gen; /* ENG_CHAT_GEN_PROMPT */
    bool bos; /* ENG_CHAT_BOS_TEXT */
    strbuf out;
    strbuf sys; /* system text waiting for the turn it is merged into */
} rctx;

static int role(const rctx *c, size_t i) { return role_of(c->m[i].role); }
static span content(const rctx *c, size_t i) { return span_of(c->m[i].content); }

static void put_bos(rctx *c)
{
    if (c->bos && c->t->bos_text)
        strbuf_puts(&c->out, c->t->bos_text);
}

/* Families without a system slot merge system text into a user turn; several system
 * messages before it are joined by a blank line. */
static bool sys_held(const rctx *c) { return c->sys.p != NULL; }

static void hold_system(rctx *c, size_t i)
{
    if (sys_held(c))
        strbuf_puts(&c->sys, "\n\n");
    sb_span(&c->sys, content(c, i));
}

static void drop_system(rctx *c)
{
    c->out.oom |= c->sys.oom; /* a failed append must not be forgotten with the buffer */
    strbuf_free(&c->sys);
}

/* chatml follows Qwen2.5's template, which equals ollama's chatml when a system message is
 * given; the default system turn comes only from a detected template. Qwen3 also wraps a final
 * assistant message in "<think>\n\n</think>\n\n"; that is left out, since it only matters
 * when continuing an answer, and there the model's own text should stand as written. */
static void fmt_chatml(rctx *c)
{
    const eng_chat_template *t = c->t;
    strbuf *o = &c->out;
    put_bos(c);
    if (t->default_system[0] && (c->n == 0 || role(c, 0) != R_SYSTEM)) {
        strbuf_puts(o, "<|im_start|>system\n");
        strbuf_puts(o, t->default_system);
        strbuf_puts(o, "<|im_end|>\n");
    }
    for (size_t i = 0; i < c->n; i++) {
        span s = content(c, i);
        if (role(c, i) == R_ASSISTANT && (t->variant & ENG_CHAT_VAR_STRIP_THINK) && i + 1 < c->n)
            s = after_think(s, true);
        strbuf_puts(o, "<|im_start|>");
        strbuf_puts(o, c->m[i].role);
        strbuf_puts(o, "\n");
        sb_span(o, s);
        strbuf_puts(o, "<|im_end|>\n");
    }
    if (c->gen) {
        strbuf_puts(o, "<|im_start|>assistant\n");
        if (t->variant & ENG_CHAT_VAR_THINK_OPEN)
            strbuf_puts(o, "<think>\n");
    }
}

static void llama3_header(strbuf *o, const char *role_name)
{
    strbuf_puts(o, "<|start_header_id|>");
    strbuf_puts(o, role_name);
    strbuf_puts(o, "<|end_header_id|>\n\n");
}

/* Meta's templates trim every message (ollama's do not; the goldens have nothing to trim). */
static void fmt_llama3(rctx *c)
{
    strbuf *o = &c->out;
    size_t i = 0;
    put_bos(c);
    if (c->t->variant & ENG_CHAT_VAR_LLAMA31_SYSTEM) {
        span sys = {"", 0};
        if (c->n > 0 && role(c, 0) == R_SYSTEM)
            sys = trim(content(c, i++));
        llama3_header(o, "system");
        strbuf_puts(o, "Cutting Knowledge Date: December 2023\nToday Date: ");
        strbuf_puts(o, c->t->date ? c->t->date : "26 Jul 2024");
        strbuf_puts(o, "\n\n");
        sb_span(o, sys);
        strbuf_puts(o, "<|eot_id|>");
    }
    for (; i < c->n; i++) {
        llama3_header(o, c->m[i].role);
        sb_span(o, trim(content(c, i)));
        strbuf_puts(o, "<|eot_id|>");
    }
    if (c->gen)
        llama3_header(o, "assistant");
}

/* One [INST] turn of Llama 2: the HF template's bos + '[INST] ' + (sys block + content).strip()
 * + ' [/INST]'. The first BOS is the tokenizer's (or put_bos's); later ones are text. */
static void llama2_inst(rctx *c, span user, size_t start)
{
    strbuf *o = &c->out;
    if (o->len > start)
        strbuf_puts(o, c->t->bos_text ? c->t->bos_text : "<s>");
    strbuf_puts(o, "[INST] ");
    if (sys_held(c)) {
        strbuf_puts(o, "<<SYS>>\n");
        strbuf_put(o, c->sys.p, c->sys.len);
        strbuf_puts(o, "\n<</SYS>>");
        user = rtrim(user);
        if (user.n > 0)
            strbuf_puts(o, "\n\n");
        drop_system(c);
    } else {
        user = trim(user);
    }
    sb_span(o, user);
    strbuf_puts(o, " [/INST]");
}

/* Llama 2 as Meta wrote it (llama/generation.py, the HF template): "[INST] q [/INST] a </s>",
 * BOS before every [INST], <<SYS>> only where a system prompt is given. ollama differs: it
 * writes an empty "<<SYS>><</SYS>>\n\n" into turns without one and no space before </s>. */
static void fmt_llama2(rctx *c)
{
    put_bos(c);
    size_t start = c->out.len;
    for (size_t i = 0; i < c->n; i++) {
        switch (role(c, i)) {
        case R_SYSTEM:
            hold_system(c, i);
            break;
        case R_USER:
            llama2_inst(c, content(c, i), start);
            break;
        default:
            strbuf_puts(&c->out, " ");
            sb_span(&c->out, trim(content(c, i)));
            strbuf_puts(&c->out, " </s>");
        }
    }
    if (sys_held(c)) /* no user turn followed: the system text gets one of its own */
        llama2_inst(c, (span){"", 0}, start);
}

/* Mistral. The system text goes into the last user turn, as mistral-common (Mistral's
 * reference tokenizer) and the HF v0.3 and Nemo templates do; ollama's golden puts it into the
 * first. v7 templates give it its own [SYSTEM_PROMPT] block where it stands instead. Spaced
 * (v3): "[INST] q[/INST] a</s>"; tekken: "[INST]q[/INST]a</s>". The v0.1/v0.2 templates
 * ("[INST] q [/INST]a</s>") are rendered in v3 spacing too (ollama's mistral-instruct). */
static void fmt_mistral(rctx *c)
{
    const unsigned v = c->t->variant;
    const bool sysprompt = v & ENG_CHAT_VAR_MISTRAL_SYSPROMPT;
    const char *sp = (v & ENG_CHAT_VAR_MISTRAL_TEKKEN) ? "" : " ";
    strbuf *o = &c->out;
    size_t last_user = SIZE_MAX;
    put_bos(c);
    for (size_t i = 0; i < c->n; i++) {
        if (role(c, i) == R_USER)
            last_user = i;
        else if (role(c, i) == R_SYSTEM && !sysprompt)
            hold_system(c, i);
    }
    for (size_t i = 0; i < c->n; i++) {
        int r = role(c, i);
        if (r == R_SYSTEM && sysprompt) {
            strbuf_puts(o, "[SYSTEM_PROMPT]");
            sb_span(o, content(c, i));
            strbuf_puts(o, "[/SYSTEM_PROMPT]");
        } else if (r == R_USER) {
            strbuf_puts(o, "[INST]");
            strbuf_puts(o, sp);
            if (i == last_user && c->sys.len > 0) {
                strbuf_put(o, c->sys.p, c->sys.len);
                strbuf_puts(o, "\n\n");
            }
            sb_span(o, content(c, i));
            strbuf_puts(o, "[/INST]");
        } else if (r == R_ASSISTANT) {
            /* Only the spaced v3 template trims answers. */
            span a = (*sp && !sysprompt) ? trim(content(c, i)) : content(c, i);
            strbuf_puts(o, sp);
            sb_span(o, a);
            strbuf_puts(o, "</s>");
        }
    }
    if (last_user == SIZE_MAX && c->sys.len > 0) { /* nowhere to merge it: a turn of its own */
        strbuf_puts(o, "[INST]");
        strbuf_puts(o, sp);
        strbuf_put(o, c->sys.p, c->sys.len);
        strbuf_puts(o, "[/INST]");
    }
}

/* Phi-3.5's template (= ollama's phi-3). Empty system messages are skipped, as there. Without a
 * generation prompt that template appends <|endoftext|>; we do not, so that a render ending in
 * an assistant message can be continued. */
static void fmt_phi3(rctx *c)
{
    strbuf *o = &c->out;
    put_bos(c);
    for (size_t i = 0; i < c->n; i++) {
        span s = content(c, i);
        if (role(c, i) == R_SYSTEM &&
            ((c->t->variant & ENG_CHAT_VAR_DROP_SYSTEM) || s.n == 0))
            continue;
        strbuf_puts(o, "<|");
        strbuf_puts(o, c->m[i].role);
        strbuf_puts(o, "|>\n");
        sb_span(o, s);
        strbuf_puts(o, "<|end|>\n");
    }
    if (c->gen)
        strbuf_puts(o, "<|assistant|>\n");
}

/* Zephyr's template: every turn "<|role|>\n" + content + eos + "\n". */
static void fmt_zephyr(rctx *c)
{
    strbuf *o = &c->out;
    put_bos(c);
    for (size_t i = 0; i < c->n; i++) {
        strbuf_puts(o, "<|");
        strbuf_puts(o, c->m[i].role);
        strbuf_puts(o, "|>\n");
        sb_span(o, content(c, i));
        strbuf_puts(o, "</s>\n");
    }
    if (c->gen)
        strbuf_puts(o, "<|assistant|>\n");
}

static void gemma_user(rctx *c, span s, const char *sep)
{
    strbuf *o = &c->out;
    strbuf_puts(o, "<start_of_turn>user\n");
    if (sys_held(c)) {
        strbuf_put(o, c->sys.p, c->sys.len);
        strbuf_puts(o, sep);
        drop_system(c);
    }
    sb_span(o, trim(s));
    strbuf_puts(o, "<end_of_turn>\n");
}

/* Gemma has no system role; its text opens the next user turn. Gemma 1/2 templates refuse a
 * system message outright, so the separator is ollama's "\n"; Gemma 3's template uses "\n\n".
 * Google's templates trim messages (ollama's do not). */
static void fmt_gemma(rctx *c)
{
    const char *sep = c->t->family == ENG_CHAT_GEMMA3 ? "\n\n" : "\n";
    strbuf *o = &c->out;
    put_bos(c);
    for (size_t i = 0; i < c->n; i++) {
        int r = role(c, i);
        if (r == R_SYSTEM) {
            hold_system(c, i);
        } else if (r == R_USER) {
            gemma_user(c, content(c, i), sep);
        } else {
            strbuf_puts(o, "<start_of_turn>model\n");
            sb_span(o, trim(content(c, i)));
            strbuf_puts(o, "<end_of_turn>\n");
        }
    }
    if (sys_held(c))
        gemma_user(c, (span){"", 0}, sep);
    if (c->gen)
        strbuf_puts(o, "<start_of_turn>model\n");
}

/* DeepSeek R1 / V3 / V3.1: system text right after BOS with no marker (several joined by a
 * blank line, as V3.1 does), then <｜User｜>q<｜Assistant｜>a<｜end▁of▁sentence｜>. */
static void fmt_deepseek(rctx *c)
{
    const unsigned v = c->t->variant;
    const char *think = c->t->family == ENG_CHAT_DEEPSEEK_R1 ? "<think>\n"
                        : (v & ENG_CHAT_VAR_THINK_CLOSED) ? "</think>"
                                                            : "";
    strbuf *o = &c->out;
    put_bos(c);
    for (size_t i = 0; i < c->n; i++)
        if (role(c, i) == R_SYSTEM)
            hold_system(c, i);
    strbuf_put(o, c->sys.p, c->sys.len);
    for (size_t i = 0; i < c->n; i++) {
        int r = role(c, i);
        if (r == R_USER) {
            strbuf_puts(o, "<｜User｜>");
            sb_span(o, content(c, i));
        } else if (r == R_ASSISTANT) {
            span a = content(c, i);
            if (v & ENG_CHAT_VAR_STRIP_THINK)
                a = after_think(a, false);
            strbuf_puts(o, "<｜Assistant｜>");
            if (v & ENG_CHAT_VAR_THINK_CLOSED)
                strbuf_puts(o, "</think>");
            sb_span(o, a);
            strbuf_puts(o, "<｜end▁of▁sentence｜>");
        }
    }
    if (c->gen) {
        strbuf_puts(o, "<｜Assistant｜>");
        strbuf_puts(o, think);
    }
}

typedef void (*formatter)(rctx *c);

static const formatter formatters[ENG_CHAT_FAMILY_COUNT] = {
    fmt_chatml, fmt_llama3, fmt_llama2, fmt_mistral, fmt_phi3,
    fmt_gemma, fmt_gemma, fmt_zephyr, fmt_deepseek, fmt_deepseek,
};

static eng_chat_status fail(eng_chat_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static eng_chat_status fail(eng_chat_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

static eng_chat_status check_messages(const eng_chat_msg *msgs, size_t n, char *err,
                                      size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role)
            return fail(ENG_CHAT_ERR_ROLE, err, errlen, "message %zu: role is NULL", i);
        if (role_of(msgs[i].role) < 0)
            return fail(ENG_CHAT_ERR_ROLE, err, errlen,
                        "message %zu: unknown role \"%.40s\" (expected system, user or "
                        "assistant)", i, msgs[i].role);
        if (!msgs[i].content)
            return fail(ENG_CHAT_ERR_ARG, err, errlen, "message %zu: content is NULL", i);
    }
    return ENG_CHAT_OK;
}

eng_chat_status eng_chat_render(const eng_chat_template *t, const eng_chat_msg *msgs, size_t n,
                                unsigned flags, char **out, size_t *out_len, char *err,
                                size_t errlen)
{
    if (out)
        *out = NULL;
    if (out_len)
        *out_len = 0;
    if (err && errlen > 0)
        err[0] = '\0';
    if (!t || !out || (n > 0 && !msgs) || !family_ok((int)t->family))
        return fail(ENG_CHAT_ERR_ARG, err, errlen, "chat render: invalid argument");
    eng_chat_status st = check_messages(msgs, n, err, errlen);
    if (st != ENG_CHAT_OK)
        return st;

    rctx c = {.t = t, .m = msgs, .n = n};
    c.gen = flags & ENG_CHAT_GEN_PROMPT;
    c.bos = flags & ENG_CHAT_BOS_TEXT;
    formatters[t->family](&c);
    strbuf_put(&c.out, "", 0); /* an empty render is still a string */
    bool oom = c.out.oom || c.sys.oom;
    strbuf_free(&c.sys);
    if (oom) {
        strbuf_free(&c.out);
        return fail(ENG_CHAT_ERR_NOMEM, err, errlen, "chat render: out of memory");
    }
    *out = c.out.p;
    if (out_len)
        *out_len = c.out.len;
    return ENG_CHAT_OK;
}
