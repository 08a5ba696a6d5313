/* `sizeup chat --plain`: the accessible line mode (screen readers, logs, dumb terminals). No
 * curses and no escape sequences: a prompt is read (readline on a terminal, plain lines
 * otherwise), then each model's answer is printed whole, labelled, one after another, with its
 * figures. Model text is sanitized like everywhere else. Runs the models on this thread, one
 * after the other, through the same conversation object as the TUI. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "app/app.h"
#include "app/chat.h"
#include "engine/strbuf.h"
#include "ui/sanitize.h"

#define CMD "chat"

typedef struct plain_model {
    char label[160];
    eng_model *m;
    eng_session *s;
    eng_conv *conv;
} plain_model;

static atomic_int plain_cancel;

static void on_sigint(int sig)
{
    (void)sig;
    plain_cancel = 1;
}

typedef struct plain_answer {
    strbuf text;
} plain_answer;

static bool collect(void *user, int32_t token, const char *text, size_t len, const eng_stats *st)
{
    plain_answer *a = user;
    (void)token, (void)st;
    if (!strbuf_put(&a->text, text, len))
        return false;
    return !plain_cancel;
}

static void print_figures(const plain_model *pm, eng_stop_reason why)
{
    eng_stats st;
    char w[16], kv[16], sc[16];
    eng_session_stats(pm->s, &st);
    printf("[%s: %u tokens, decode %.1f tokens/s, prompt %.1f tokens/s, first token %.0f ms, "
           "context %u of %u, memory weights %s + KV %s + scratch %s, %s, stop: %s]\n",
           pm->label, st.n_gen, st.gen_tps, st.prompt_tps, st.ttft_ms, st.n_past, st.n_ctx,
           app_fmt_bytes(st.mem_weights, w, sizeof w), app_fmt_bytes(st.mem_kv, kv, sizeof kv),
           app_fmt_bytes(st.mem_scratch, sc, sizeof sc), st.backend ? st.backend : "?",
           eng_stop_reason_str(why));
}

static void plain_turn(plain_model *pm, const app_chat_cfg *cfg, const char *line)
{
    if (!pm->conv)
        return;
    if (eng_conv_add(pm->conv, "user", line)) {
        printf("[%s: error: %s]\n", pm->label, eng_conv_errmsg(pm->conv));
        return;
    }
    plain_answer a = { { 0 } };
    eng_generate_opts go = { cfg->n_predict, NULL, 0, &plain_cancel };
    eng_stop_reason why = ENG_STOP_NONE;
    atomic_store(&plain_cancel, 0);
    eng_status st = eng_conv_generate(pm->conv, &go, collect, &a, &why);
    char *safe = ui_sanitize_dup(a.text.p ? a.text.p : "", a.text.len);
    printf("[%s]\n%s\n", pm->label, safe ? safe : "");
    free(safe);
    strbuf_free(&a.text);
    if (st == ENG_ERR_CANCELLED) { /* Ctrl-C while the prompt was fed: the turn is not sent */
        eng_conv_pop_user(pm->conv);
        printf("[%s: stopped while reading the prompt]\n", pm->label);
    } else if (st) {
        printf("[%s: error: %s]\n", pm->label, eng_conv_errmsg(pm->conv));
    } else {
        print_figures(pm, why);
    }
    fflush(stdout);
}

/* The next line: readline on a terminal (its prompt and echo go to stderr when stdout is piped,
 * so stdout holds only answers; bracketed paste off, since its switch is an escape sequence),
 * getline otherwise. NULL at the end. Caller frees. */
static char *plain_read(bool tty)
{
    if (tty)
        return readline("> ");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = 0;
    return line;
}

static void plain_open(plain_model *pm, const char *path, const app_chat_cfg *cfg, int i)
{
    char err[512];
    eng_session_opts so = cfg->so;
    so.cancel = &plain_cancel; /* Ctrl-C stops a prompt being fed too */
    snprintf(pm->label, sizeof pm->label, "%d %s", i + 1, path);
    if (eng_model_open(path, &pm->m, err, sizeof err) ||
        eng_session_new(pm->m, &so, &pm->s, err, sizeof err) ||
        eng_conv_new(pm->m, pm->s, ENG_CONV_AUTO, cfg->tmpl, &pm->conv, err, sizeof err)) {
        printf("[%s: error: %s]\n", pm->label, err);
        return;
    }
    snprintf(pm->label, sizeof pm->label, "%d %s, %s", i + 1, eng_model_name(pm->m),
             eng_conv_is_chat(pm->conv) ? "chat" : "completion");
    if (cfg->system)
        eng_conv_set_system(pm->conv, cfg->system);
    printf("[%s: loaded]\n", pm->label);
}

int app_chat_plain(char **paths, size_t n, const app_chat_cfg *cfg)
{
    plain_model pm[4] = { 0 };
    bool tty = isatty(STDIN_FILENO);
    if (tty) {
        rl_catch_signals = 0;
        rl_variable_bind("enable-bracketed-paste", "off");
        if (!isatty(STDOUT_FILENO))
            rl_outstream = stderr;
    }
    if (!n)
        printf("No model is available: the store is empty and no model was named. Get one with "
               "'sizeup pull qwen2.5:0.5b' (see 'sizeup catalog'), or name a GGUF file: "
               "sizeup chat --plain ./model.gguf\n");
    if (cfg->banner)
        printf("%s\n", cfg->banner);
    for (size_t i = 0; i < n && i < 4; i++)
        plain_open(&pm[i], paths[i], cfg, (int)i);
    fflush(stdout);
    struct sigaction sa = { 0 };
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    char *line;
    while (n && (line = plain_read(tty)) != NULL) {
        if (!strcmp(line, "/quit") || !strcmp(line, "/bye")) {
            free(line);
            break;
        }
        if (*line && tty)
            add_history(line);
        for (size_t i = 0; *line && i < n && i < 4; i++)
            plain_turn(&pm[i], cfg, line);
        free(line);
    }
    signal(SIGINT, SIG_DFL);
    for (size_t i = 0; i < 4; i++) {
        eng_conv_free(pm[i].conv);
        eng_session_free(pm[i].s);
        eng_model_close(pm[i].m);
    }
    return 0;
}
