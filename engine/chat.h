/* Chat templates: turn a conversation into the prompt text a model was trained on.
 *
 * A GGUF model carries its template as Jinja source (tokenizer.chat_template). sizeup does not
 * interpret Jinja. Like llama.cpp's llama-chat.cpp, it recognises the template's family from
 * tell-tale strings in the source and renders with a hand-written formatter per family:
 *
 *   chatml       <|im_start|>role\n...<|im_end|>\n   Qwen2/2.5/3, QwQ, SmolLM, Hermes
 *   llama3       <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>   Llama 3.x
 *   llama2       [INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>   Llama 2 chat
 *   mistral      [INST] ...[/INST] ...</s>   Mistral v0.x, Nemo, Small 3.x, Devstral
 *   phi3         <|user|>\n...<|end|>\n   Phi-3, Phi-3.5
 *   gemma        <start_of_turn>user\n...<end_of_turn>\n   Gemma 1/2
 *   gemma3       as gemma; the system text opens the first user turn, "\n\n" after it
 *   zephyr       <|user|>\n...</s>\n
 *   deepseek-r1  <｜User｜>...<｜Assistant｜>...<｜end▁of▁sentence｜>, prompt opens <think>
 *   deepseek-v3  the same without the thinking prompt (V3; V3.1 adds "</think>")
 *
 * Details inside a family (Llama 3.1's "Cutting Knowledge Date" system turn, Mistral's
 * tekken spacing, Qwen2.5's default system prompt, ...) are variant bits found in the same
 * way. A model without a template, or with one not recognised, gets chatml, and the result
 * says so (fallback + reason) so the UI can show it; the user may force a family by name.
 *
 * BOS: the tokenizer adds BOS when asked (eng_tokenize(add_special=true)), so by default a
 * render holds no BOS text, as ollama's do. With ENG_CHAT_BOS_TEXT the template's BOS text
 * (eng_chat_template.bos_text) opens the render, as a Hugging Face Jinja render does; then
 * tokenize with add_special=false. Either way tokenize with parse_special=true, since the
 * turn markers are special tokens written as text. llama2 writes "<s>" before every later
 * [INST] as text in both modes, because the format has a BOS per exchange.
 *
 * Everything here is pure string work: no allocation survives a call except the render, no
 * global state, safe from any thread.
 */
#ifndef SIZEUP_CHAT_H
#define SIZEUP_CHAT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum eng_chat_status {
    ENG_CHAT_OK = 0,
    ENG_CHAT_ERR_ARG,   /* NULL output pointer, NULL message content, family out of range */
    ENG_CHAT_ERR_ROLE,  /* a role other than "system", "user" or "assistant" */
    ENG_CHAT_ERR_NOMEM,
} eng_chat_status;

typedef enum eng_chat_family {
    ENG_CHAT_CHATML = 0,
    ENG_CHAT_LLAMA3,
    ENG_CHAT_LLAMA2,
    ENG_CHAT_MISTRAL,
    ENG_CHAT_PHI3,
    ENG_CHAT_GEMMA,
    ENG_CHAT_GEMMA3,
    ENG_CHAT_ZEPHYR,
    ENG_CHAT_DEEPSEEK_R1,
    ENG_CHAT_DEEPSEEK_V3,
    ENG_CHAT_FAMILY_COUNT
} eng_chat_family;

/* Variant bits refining a family (eng_chat_template.variant). */
enum {
    /* llama3: a system turn is always written, opening with "Cutting Knowledge Date: December
     * 2023\nToday Date: <date>\n\n" (Llama 3.1, 3.2, 3.3). */
    ENG_CHAT_VAR_LLAMA31_SYSTEM = 1u << 0,
    /* mistral: no spaces around turn bodies, "[INST]x[/INST]y</s>" (Nemo, Small 3.x). */
    ENG_CHAT_VAR_MISTRAL_TEKKEN = 1u << 1,
    /* mistral: system text in [SYSTEM_PROMPT]...[/SYSTEM_PROMPT] where it stands (v7:
     * Small 3.x, Devstral) instead of inside the last user turn. */
    ENG_CHAT_VAR_MISTRAL_SYSPROMPT = 1u << 2,
    /* phi3: system messages are dropped, as the original Phi-3 template does. */
    ENG_CHAT_VAR_DROP_SYSTEM = 1u << 3,
    /* chatml: the generation prompt ends with "<think>\n" (QwQ). */
    ENG_CHAT_VAR_THINK_OPEN = 1u << 4,
    /* deepseek-v3: "</think>" follows every <｜Assistant｜> (V3.1 in non-thinking mode). */
    ENG_CHAT_VAR_THINK_CLOSED = 1u << 5,
    /* Assistant turns lose everything up to the last "</think>": in chatml all but the final
     * message (QwQ, Qwen3), in deepseek every one (R1, V3.1). */
    ENG_CHAT_VAR_STRIP_THINK = 1u << 6,
};

#define ENG_CHAT_DEFAULT_SYSTEM_MAX 512

/* A recognised template: plain data, copy freely. */
typedef struct eng_chat_template {
    eng_chat_family family;
    unsigned variant;  /* ENG_CHAT_VAR_* bits */
    /* True when no usable template was found and chatml was chosen instead. */
    bool fallback;
    /* Static text for the UI, NULL when the render is faithful: why chatml was chosen
     * ("no chat template in the model; using chatml"), or what a recognised template does
     * that the formatter does not (its tool instructions, its default system prompt). */
    const char *reason;
    /* Written first when ENG_CHAT_BOS_TEXT is asked; NULL = none. Detection sets the family's
     * usual BOS (static); a caller may point it at the vocabulary's own BOS text instead
     * (borrowed: must outlive the render calls). */
    const char *bos_text;
    /* llama3 with ENG_CHAT_VAR_LLAMA31_SYSTEM: the "Today Date" text, e.g. "05 Mar 2025";
     * NULL means "26 Jul 2024", the templates' own fallback. Borrowed, as bos_text. */
    const char *date;
    /* System text used when the conversation does not open with a system message (Qwen2.5's
     * "You are Qwen, ..."), copied out of the template; "" = none. Only chatml uses it. */
    char default_system[ENG_CHAT_DEFAULT_SYSTEM_MAX];
} eng_chat_template;

/* One message; both strings are NUL-terminated and borrowed for the call. */
typedef struct eng_chat_msg {
    const char *role;     /* "system", "user" or "assistant" */
    const char *content;
} eng_chat_msg;

/* Render flags. */
enum {
    ENG_CHAT_GEN_PROMPT = 1u << 0, /* end with the opening of an assistant turn */
    ENG_CHAT_BOS_TEXT = 1u << 1,   /* start with t->bos_text (see the file comment) */
};

/* Recognise a template's family from its Jinja source (len bytes, need not be NUL-terminated;
 * tmpl may be NULL). Always fills *out, falling back to chatml with fallback = true and a reason;
 * returns out->family. */
eng_chat_family eng_chat_detect(const char *tmpl, size_t len, eng_chat_template *out);

/* A template for a family chosen by hand: the family's BOS text, the given variant bits, no
 * default system prompt, fallback false. Families out of range give chatml. */
void eng_chat_template_init(eng_chat_template *t, eng_chat_family family, unsigned variant);

/* Family for a user-given name, case-insensitive: the canonical names of eng_chat_family_name,
 * ollama's format names ("llama3-instruct", "mistral-instruct", "phi-3", ...) and a few variant
 * names ("llama3.1", "mistral-nemo", "mistral-small", "deepseek-v3.1", "qwen"). *variant (when
 * not NULL) receives the variant bits the name implies. Returns -1 for an unknown name. */
int eng_chat_family_from_name(const char *name, unsigned *variant);

/* Canonical name ("chatml", "llama3", "deepseek-r1", ...); "?" out of range. Static. */
const char *eng_chat_family_name(eng_chat_family family);

/* Strings that end an assistant turn when they appear in the detokenized output (special tokens
 * written out), NULL-terminated, static. The vocabulary's end-of-generation tokens stop
 * generation by id as well; these catch models that spell the marker or run on into the next
 * turn. Never NULL: out-of-range families get an empty list. */
const char *const *eng_chat_stop_strings(eng_chat_family family);

/* The family's usual BOS text ("<|begin_of_text|>", "<s>", "<bos>", ...); NULL for chatml,
 * whose models differ (Qwen has none). Static. */
const char *eng_chat_bos_text(eng_chat_family family);

/* Render msgs[0..n) (msgs may be NULL when n is 0) with flags ENG_CHAT_*. On success *out is a
 * malloc'd NUL-terminated string (caller frees) and *out_len (when not NULL) its length. On
 * failure *out is NULL and err (when not NULL) names the message at fault. An empty
 * conversation is valid: it renders the parts that do not depend on messages. */
eng_chat_status eng_chat_render(const eng_chat_template *t, const eng_chat_msg *msgs, size_t n,
                                unsigned flags, char **out, size_t *out_len, char *err,
                                size_t errlen);

const char *eng_chat_status_str(eng_chat_status s);

#endif
