/* `sizeup chat --plain`: the accessible line mode (screen readers, logs, dumb terminals). No
 * curses and no escape sequences: a prompt is read (readline on a terminal, plain lines
 * otherwise), then each model's answer is printed whole, labelled, one after another, with its
 * figures. Model text, a server's included, is sanitized like everywhere else. Runs the models
 * on this thread, one after the other: a local one through the same conversation object as the
 * TUI (eng_conv), a served one through the same as `run` and the TUI's remote panes (app_rconv
 * over a dl_remote). A served model's failure is a line of its own; the others go on. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "app/app.h"
#include "app/chat.h"
#include "app/remote_conv.h"
#include "downloads/dl_remote.h"
#include "engine/strbuf.h"
#include "ui/sanitize.h"

#define CMD "chat"

typedef struct plain_model {
    char label[UI_SANITIZE_MAX(160) + 1]; /* sanitized: a model's name is the model's text */
    eng_model *m;          /* a local model: m, s, conv */
    eng_session *s;
    eng_conv *conv;
    dl_remote *r;          /* a served one: r and rc (r NULL when its reference was bad) */
    app_rconv *rc;
} plain_model;

/* "N NAME, MODE": the name is general.name or a served model id, so it is sanitized like the
 * answers (set_label is the one writer of pm->label). */
static void set_label(plain_model *pm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_label(plain_model *pm, const char *fmt, ...)
{
    char raw[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1;
    ui_sanitizer z;
    ui_sanitize_init(&z);
    size_t o = ui_sanitize_feed(&z, raw, len, pm->label);
    o += ui_sanitize_flush(&z, pm->label + o);
    pm->label[o] = 0;
}

/* An error from the engine: it may quote the file (a tensor's name), so sanitized too. */
static void print_local_error(const plain_model *pm, const char *msg)
{
    char *safe = ui_sanitize_dup(msg, strlen(msg));
    printf("[%s: error: %s]\n", pm->label, safe ? safe : "out of memory");
    free(safe);
}

static atomic_int plain_cancel;
static dl_remote *volatile plain_live;   /* the served model answering now, for Ctrl-C */

/* Only flags: dl_remote_cancel is async-signal-safe and closes the stream within 100 ms. */
static void on_sigint(int sig)
{
    (void)sig;
    plain_cancel = 1;
    dl_remote *r = plain_live;
    if (r)
        dl_remote_cancel(r);
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
        print_local_error(pm, eng_conv_errmsg(pm->conv));
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
        print_local_error(pm, eng_conv_errmsg(pm->conv));
    } else {
        print_figures(pm, why);
    }
    fflush(stdout);
}

/* ---- a served model ---- */

/* The figures line of a served answer: the local one's order, with `remote` for memory (and the
 * server's KV-cache use when it says), where it runs, and the server's own figures when it sends
 * them, as run's stats line has them. Every time includes the network. */
static void print_remote_figures(const plain_model *pm, dl_remote_finish why)
{
    dl_remote_stats st;
    app_rconv_figs f;
    dl_remote_stats_get(pm->r, &st);
    app_rconv_figs_get(&st, &f);
    printf("[%s: %s%u tokens, decode %.1f tokens/s, prompt %s tokens/s, first token %.0f ms, "
           "prompt %s tokens, memory: remote%s, %s at %s, times include the network%s, "
           "stop: %s%s]\n", pm->label, st.gen_approx ? "~" : "", st.n_gen, st.gen_tps,
           f.prompt_tps, st.ttft_ms, f.n_prompt, f.kv, st.server, st.host, f.srv,
           dl_remote_finish_str(why), st.partial ? " (incomplete)" : "");
}

/* A message from the client (it may quote the server) on one line, sanitized. */
static void print_remote_error(const plain_model *pm, const char *msg)
{
    char *safe = ui_sanitize_dup(msg, strlen(msg));
    printf("[%s: error: %s]\n", pm->label, safe ? safe : "out of memory");
    free(safe);
}

/* Text arrives whole in dl_remote_answer / dl_remote_reasoning; the callback only says stop. */
static bool remote_piece(void *user, dl_remote_part part, const char *text, size_t len,
                         const dl_remote_stats *st)
{
    (void)user, (void)part, (void)text, (void)len, (void)st;
    return !plain_cancel;
}

static void remote_turn(plain_model *pm, const app_chat_cfg *cfg, const char *line)
{
    if (!app_rconv_add(pm->rc, "user", line)) {
        print_remote_error(pm, "out of memory");
        return;
    }
    dl_remote_mode mode = cfg->completion ? DL_REMOTE_COMPLETION : DL_REMOTE_CHAT;
    dl_remote_sampling sampling = app_chat_remote_sampling(cfg);
    dl_remote_finish why = DL_REMOTE_FINISH_CANCELLED;
    atomic_store(&plain_cancel, 0);
    plain_live = pm->r;
    dl_status st = app_rconv_generate(pm->rc, pm->r, mode, &sampling, remote_piece, NULL, &why);
    plain_live = NULL;
    const char *answer = dl_remote_answer(pm->r), *thought = dl_remote_reasoning(pm->r);
    if (st == DL_OK || *answer || *thought) {  /* what arrived stays on screen, a cut included */
        char *a = ui_sanitize_dup(answer, strlen(answer));
        printf("[%s]\n", pm->label);
        if (*thought) {   /* apart from the answer, as run and the TUI show it */
            char *t = ui_sanitize_dup(thought, strlen(thought));
            printf("[thinking] %s\n", t ? t : "");
            free(t);
        }
        printf("%s\n", a ? a : "");
        free(a);
        print_remote_figures(pm, why);
    }
    if (!app_rconv_settle(pm->rc, pm->r, st))
        print_remote_error(pm, "out of memory");
    if (st)
        print_remote_error(pm, dl_remote_errmsg(pm->r));
    fflush(stdout);
}

static void on_remote_status(void *user, const char *line)
{
    const plain_model *pm = user;
    printf("[%s: %s]\n", pm->label, line);   /* a 429/503 wait */
    fflush(stdout);
}

/* Open the handle and ask what the endpoint serves (which also tells the server's kind). A
 * server that is down now is said, and each message tries again, as in the TUI. */
static void remote_open(plain_model *pm, const char *ref, const app_chat_cfg *cfg, int i)
{
    dl_remote_opts o = { .cacert = cfg->cacert };
    char name[120];
    app_chat_ref_label(ref, name, sizeof name);
    set_label(pm, "%d %s", i + 1, name);
    if (!(pm->rc = app_rconv_new()) || !app_rconv_set_system(pm->rc, cfg->system)) {
        print_remote_error(pm, "out of memory");
        return;
    }
    if (dl_remote_open(ref, &o, &pm->r) != DL_OK || !dl_remote_model(pm->r)) {
        print_remote_error(pm, !pm->r ? "out of memory" : *dl_remote_errmsg(pm->r) ?
                           dl_remote_errmsg(pm->r) : "the reference names no model (URL#MODEL "
                           "or @NAME/MODEL; sizeup list --remote lists them)");
        dl_remote_close(pm->r);
        pm->r = NULL;
        return;
    }
    set_label(pm, "%d %s, %s", i + 1, dl_remote_model(pm->r),
              cfg->completion ? "completion" : "chat");
    dl_remote_set_status(pm->r, on_remote_status, pm);
    dl_remote_model_info *l;
    size_t n;
    plain_live = pm->r;
    dl_status st = dl_remote_models(pm->r, &l, &n);
    plain_live = NULL;
    if (st != DL_OK) {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s (each message tries again)", dl_remote_errmsg(pm->r));
        print_remote_error(pm, msg);
        return;
    }
    dl_remote_models_free(l, n);
    printf("[%s: loaded: remote, %s at %s, times include the network]\n", pm->label,
           dl_remote_server_kind(pm->r), dl_remote_host(pm->r));
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

static void local_open(plain_model *pm, const char *path, const app_chat_cfg *cfg, int i)
{
    char err[512];
    eng_session_opts so = cfg->so;
    so.cancel = &plain_cancel; /* Ctrl-C stops a prompt being fed too */
    set_label(pm, "%d %s", i + 1, path);
    if (eng_model_open(path, &pm->m, err, sizeof err) ||
        eng_session_new(pm->m, &so, &pm->s, err, sizeof err) ||
        eng_conv_new(pm->m, pm->s, ENG_CONV_AUTO, cfg->tmpl, &pm->conv, err, sizeof err)) {
        print_local_error(pm, err);
        return;
    }
    set_label(pm, "%d %s, %s", i + 1, eng_model_name(pm->m),
              eng_conv_is_chat(pm->conv) ? "chat" : "completion");
    if (cfg->system)
        eng_conv_set_system(pm->conv, cfg->system);
    printf("[%s: loaded]\n", pm->label);
}

int app_chat_plain(char **paths, const char *const *refs, size_t n, const app_chat_cfg *cfg)
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
    /* Ctrl-C from here on: a listing that hangs is stopped as an answer is */
    struct sigaction sa = { 0 };
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    for (size_t i = 0; i < n && i < 4; i++) {
        if (paths[i])
            local_open(&pm[i], paths[i], cfg, (int)i);
        else
            remote_open(&pm[i], refs ? refs[i] : "", cfg, (int)i);
        fflush(stdout);
    }
    /* Some models open: chat with those (each failure was said). None: nothing can answer, so
     * stop now with a failure status instead of reading lines no model will see. */
    size_t opened = 0;
    for (size_t i = 0; i < n && i < 4; i++)
        opened += pm[i].conv || pm[i].r;
    int rc = n && !opened ? 1 : 0;
    char *line;
    while (n && !rc && (line = plain_read(tty)) != NULL) {
        if (!strcmp(line, "/quit") || !strcmp(line, "/bye")) {
            free(line);
            break;
        }
        if (*line && tty)
            add_history(line);
        for (size_t i = 0; *line && i < n && i < 4; i++) {
            if (pm[i].r)
                remote_turn(&pm[i], cfg, line);
            else
                plain_turn(&pm[i], cfg, line);
        }
        free(line);
    }
    signal(SIGINT, SIG_DFL);
    for (size_t i = 0; i < 4; i++) {
        eng_conv_free(pm[i].conv);
        eng_session_free(pm[i].s);
        eng_model_close(pm[i].m);
        app_rconv_free(pm[i].rc);
        dl_remote_close(pm[i].r);
    }
    return rc;
}
