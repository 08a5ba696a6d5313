/* `sizeup run`: generate text with one model from the command line: a prompt (-p/-f) streamed
 * to stdout with a stats line on stderr, or an interactive chat (--chat without -p) read with
 * readline. Ctrl-C stops the answer being generated; at the prompt it ends the chat. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "app/app.h"
#include "engine/chat.h"
#include "engine/conv.h"
#include "engine/engine.h"
#include "ui/sanitize.h"

#define CMD "run"

typedef struct run_opts {
    const char *model, *prompt, *file, *system, *tmpl, *device, *cacert;
    int n_predict;             /* 0: none (the prompt is still processed); -1: until a stop */
    bool chat, ids, echo, help;
    bool seed_set;             /* --seed given (a remote model is sent one only then) */
    eng_session_opts so;
} run_opts;

/* Set by Ctrl-C, read by the engine (the session's cancel flag: a prompt feed stops between
 * batches, generation before the next token) and by the chat loop. A lock-free atomic, so the
 * handler may store to it (C11 7.14.1.1). */
static atomic_int cancel_flag;
/* Model text is untrusted: on a terminal it goes through the sanitizer so it cannot drive the
 * terminal (escape sequences shown as ^[...). Piped output stays byte-exact. */
static bool sanitize_out;
static ui_sanitizer out_san;

static void on_sigint(int sig)
{
    (void)sig;
    atomic_store(&cancel_flag, 1);
}

static void usage(FILE *to)
{
    fprintf(to,
        "usage: sizeup run -m MODEL [-p TEXT | -f FILE] [-n N] [--chat] [--system S]\n"
        "                  [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R]\n"
        "                  [--seed S] [-c CTX] [--backend vulkan|cpu] [--device N] [--ids]\n"
        "                  [--cacert FILE]\n\n"
        "Generate text with a model. Text goes to stdout as it is produced; one line of\n"
        "statistics goes to stderr at the end. --chat wraps the prompt in the model's chat\n"
        "template; --chat without -p/-f starts an interactive chat (Ctrl-D or /bye to leave).\n\n"
        "  -m, --model MODEL     a GGUF file, or a model reference (qwen2.5:0.5b,\n"
        "                        hf.co/OWNER/REPO[:QUANT], a URL): downloaded first if it is\n"
        "                        not in the store yet (see sizeup pull --help); or a model\n"
        "                        served over HTTP: http://HOST:PORT/v1#MODEL, @NAME[/MODEL]\n"
        "                        (see sizeup list --remote, and README \"Remote models\")\n"
        "  -p, --prompt TEXT     the prompt\n"
        "  -f, --file FILE       read the prompt from FILE ('-' for standard input); text of\n"
        "                        at most 64 MiB, no NUL bytes\n"
        "  -n, --n-predict N     generate at most N tokens (default 256; 0 = none, only the\n"
        "                        prompt is processed; -1 = until the model stops or the\n"
        "                        context is full)\n"
        "  --chat                use the chat template (the model's own, or chatml)\n"
        "  --system S            system prompt for --chat\n"
        "  --template NAME       force a chat template family for --chat (chatml, llama3,\n"
        "                        phi3, ...; a wrong name lists them all)\n"
        "  --temp T              temperature (default 0.8; 0 = greedy)\n"
        "  --top-k K             keep the K most likely tokens (default 40; 0 = off)\n"
        "  --top-p P             nucleus sampling (default 0.95; 1 = off)\n"
        "  --min-p P             drop tokens below P x the best one's probability (default 0.05)\n"
        "  --repeat-penalty R    penalise the last 64 tokens (default 1 = off)\n"
        "  --seed S              random seed (default: time-based; same seed, same text)\n"
        "  -c, --ctx N           context length (default: the model's, capped at 4096)\n"
        "  --backend B           vulkan or cpu (default: Vulkan when a GPU can run the model,\n"
        "                        else the CPU, also in place of a CPU Vulkan driver such as\n"
        "                        lavapipe; the stats line names the backend and why)\n"
        "  --device N            Vulkan device (default: $SIZEUP_DEVICE, else the best one)\n"
        "  -t, --threads N       CPU threads (default: all cores)\n"
        "  --ids                 print the generated token ids as a JSON array instead of text\n"
        "  --echo                print the prompt before the generated text\n"
        "  --cacert FILE         CA certificates (PEM) for a download over HTTPS\n"
        "  -h, --help            show this help\n");
}

/* --template: a name eng_chat_family_from_name knows, else an error listing the families. */
static int template_opt(const char *v)
{
    if (eng_chat_family_from_name(v, NULL) >= 0)
        return 0;
    char names[256] = "";
    size_t n = 0;
    for (int f = 0; f < ENG_CHAT_FAMILY_COUNT && n < sizeof names; f++)
        n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", f ? ", " : "",
                              eng_chat_family_name((eng_chat_family)f));
    return app_fail(CMD, "--template '%s': unknown chat template; expected one of %s (or an "
                    "ollama format name such as llama3-instruct)", v, names) + 1;
}

/* One option with a value; returns 0 when handled, 2 on a bad value, -1 when not ours. */
static int value_opt(run_opts *o, const char *a, const char *v)
{
    long long i;
    int rc = app_session_opt(CMD, a, v, &o->so, &o->seed_set);
    if (rc != -1)
        return rc;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
    else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
    else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->file = v;
    else if (!strcmp(a, "--system")) o->system = v;
    else if (!strcmp(a, "--template")) { if (template_opt(v)) return 2; o->tmpl = v; }
    else if (!strcmp(a, "--device")) o->device = v;
    else if (!strcmp(a, "--cacert")) o->cacert = v;
    else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
        if (app_parse_int(CMD, a, v, -1, 1000000000, &i))
            return 2;
        o->n_predict = (int)i;
    } else return -1;
    return 0;
}

static int parse_args(int argc, char **argv, run_opts *o)
{
    o->n_predict = 256;
    o->so = eng_session_defaults();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) o->help = true;
        else if (!strcmp(a, "--chat")) o->chat = true;
        else if (!strcmp(a, "--ids")) o->ids = true;
        else if (!strcmp(a, "--echo")) o->echo = true;
        else if (a[0] == '-' && a[1]) {
            if (i + 1 >= argc)
                return app_fail(CMD, "%s: a value is missing, or the option is unknown (see "
                                "sizeup run --help)", a) + 1;
            int r = value_opt(o, a, argv[i + 1]);
            if (r < 0)
                return app_fail(CMD, "unknown option '%s' (see sizeup run --help)", a) + 1;
            if (r > 0)
                return r;
            i++;
        } else {
            return app_fail(CMD, "unexpected argument '%s' (the prompt goes after -p)", a) + 1;
        }
    }
    if (o->help)
        return 0;
    if (!o->model)
        return app_fail(CMD, "no model given (-m MODEL)") + 1;
    if (app_device_index(CMD, o->device, &o->so.device))
        return 2;
    if (o->prompt && o->file)
        return app_fail(CMD, "give the prompt with -p or -f, not both") + 1;
    if (!o->prompt && !o->file && !o->chat)
        return app_fail(CMD, "no prompt given (-p TEXT, -f FILE, or --chat for a conversation)") + 1;
    return 0;
}

/* ---- output ---- */

typedef struct out_ctx {
    bool ids;
    size_t n_ids;
} out_ctx;

static bool on_token(void *user, int32_t token, const char *text, size_t len, const eng_stats *st)
{
    out_ctx *oc = user;
    (void)st;
    if (oc->ids) {
        if (token >= 0)
            printf("%s%d", oc->n_ids++ ? ", " : "[", token);
    } else if (len && sanitize_out) {
        char buf[UI_SANITIZE_MAX(256)];
        for (size_t at = 0; at < len; at += 256) {
            size_t k = len - at < 256 ? len - at : 256;
            fwrite(buf, 1, ui_sanitize_feed(&out_san, text + at, k, buf), stdout);
        }
    } else if (len) {
        fwrite(text, 1, len, stdout);
    }
    /* a full disk or a closed pipe ends generation: nobody would see the rest */
    return app_stdout_ok() && !atomic_load(&cancel_flag);
}

/* Milliseconds eng_model_open took, added to the session's own load time in the stats line. */
static double open_ms;

/* Load (opening the file, starting the backend, weights to the device, pipelines) is its own
 * figure: on lavapipe it takes seconds and would otherwise swamp the prompt's speed and the
 * first token's time. It comes after the token figures, so the line still starts with
 * "[sizeup] prompt", which scripts (tests/e2e/chat_tmux.sh) wait for. */
static void print_stats(const eng_session *s, eng_stop_reason why)
{
    eng_stats st;
    eng_session_stats(s, &st);
    char w[16], kv[16], sc[16], pp[32] = "-", ttft[32] = "-", tg[32] = "-";
    /* a figure not measured is "-", not 0: no prompt fed, no token generated (-n 0), or fewer
     * than two tokens for a generation speed */
    if (st.n_prompt)
        snprintf(pp, sizeof pp, "%.1f", st.prompt_tps);
    if (st.n_gen)
        snprintf(ttft, sizeof ttft, "%.1f", st.ttft_ms);
    if (st.n_gen >= 2)
        snprintf(tg, sizeof tg, "%.1f", st.gen_tps);
    fprintf(stderr,
            "\n[sizeup] prompt %u tokens, %s tokens/s | first token %s ms | generated %u "
            "tokens, %s tokens/s | stop: %s | load %.0f ms | memory: weights %s + KV %s + "
            "scratch %s | %s\n",
            st.n_prompt, pp, ttft, st.n_gen, tg,
            eng_stop_reason_str(why), open_ms + st.load_ms, app_fmt_bytes(st.mem_weights, w, sizeof w),
            app_fmt_bytes(st.mem_kv, kv, sizeof kv), app_fmt_bytes(st.mem_scratch, sc, sizeof sc),
            st.backend);
}

/* Tokenize and feed text; chat renders include their special tokens as text. */
static int feed_text(eng_session *s, const eng_model *m, const char *text, bool bos, bool special)
{
    int32_t *ids;
    size_t n;
    if (eng_tokenize(eng_model_vocab(m), text, strlen(text), bos, special, &ids, &n) != ENG_TOK_OK)
        return app_fail(CMD, "out of memory tokenizing the prompt");
    eng_status st = eng_session_feed(s, ids, n);
    free(ids);
    if (st == ENG_ERR_CANCELLED)
        return app_fail(CMD, "cancelled while reading the prompt") + 129;
    if (st)
        return app_fail(CMD, "%s", eng_session_errmsg(s));
    return 0;
}

/* eng_session_generate, except that -n 0 generates nothing, as llama.cpp's does (the engine's
 * max_tokens 0 means "no limit"): the prompt has been processed, and the stats say so. */
static eng_status generate_tokens(eng_session *s, const eng_generate_opts *go, eng_token_fn fn,
                                  void *user, eng_stop_reason *why)
{
    if (go->max_tokens == 0) {
        *why = ENG_STOP_MAX_TOKENS;
        return ENG_OK;
    }
    return eng_session_generate(s, go, fn, user, why);
}

static int generate(eng_session *s, const run_opts *o, const char *const *stops, size_t n_stop,
                    bool quiet_stats)
{
    out_ctx oc = { o->ids, 0 };
    eng_generate_opts go = { o->n_predict, stops, n_stop, &cancel_flag };
    eng_stop_reason why;
    eng_status st = generate_tokens(s, &go, on_token, &oc, &why);
    if (o->ids)
        printf("%s]\n", oc.n_ids ? "" : "[");
    else
        fflush(stdout);
    if (st)
        return app_fail(CMD, "generation failed: %s", eng_session_errmsg(s));
    if (!quiet_stats)
        print_stats(s, why);
    return 0;
}

static int read_prompt_file(const char *path, char **out)
{
    size_t len;
    return app_read_text(CMD, "-f", path, out, &len);
}

/* ---- chat: the conversation logic is engine/conv.h's; this is the terminal around it ---- */

typedef struct chat {
    eng_conv *conv;
    const run_opts *o;
} chat;

/* One assistant answer, streamed to stdout; the text joins the conversation. */
static int chat_answer(chat *c, bool quiet_stats)
{
    out_ctx oc = { c->o->ids, 0 };
    eng_generate_opts go = { c->o->n_predict, NULL, 0, &cancel_flag };
    eng_stop_reason why;
    eng_status st;
    if (go.max_tokens == 0) {  /* -n 0, as generate_tokens: the prompt only, an empty answer */
        why = ENG_STOP_MAX_TOKENS;
        st = eng_conv_sync(c->conv);
        if (!st)
            st = eng_conv_add(c->conv, "assistant", "");
    } else {
        st = eng_conv_generate(c->conv, &go, on_token, &oc, &why);
    }
    printf(c->o->ids ? "%s]\n" : "%s\n", c->o->ids && !oc.n_ids ? "[" : "");
    fflush(stdout);
    if (st == ENG_ERR_CANCELLED) { /* Ctrl-C while the prompt was fed: as if never sent */
        eng_conv_pop_user(c->conv);
        fprintf(stderr, "[sizeup] cancelled\n");
        return 0;
    }
    if (st)
        return app_fail(CMD, "%s", eng_conv_errmsg(c->conv));
    if (!quiet_stats)
        print_stats(eng_conv_session(c->conv), why);
    return 0;
}

/* readline's callback interface, so Ctrl-C at the prompt ends the chat cleanly (the terminal
 * is restored by removing the handler) instead of being swallowed by readline. */
static char *cb_line;
static bool cb_done;

static void on_line(char *line)
{
    cb_line = line;
    cb_done = true;
}

static char *read_turn(bool *interrupted)
{
    cb_line = NULL;
    cb_done = false;
    atomic_store(&cancel_flag, 0);
    rl_callback_handler_install(">>> ", on_line);
    while (!cb_done) {
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(fileno(rl_instream ? rl_instream : stdin), &fds);
        int r = select(fileno(rl_instream ? rl_instream : stdin) + 1, &fds, NULL, NULL, NULL);
        if (r < 0 && errno == EINTR && atomic_load(&cancel_flag)) {
            *interrupted = true;
            break;
        }
        if (r > 0)
            rl_callback_read_char();
    }
    rl_callback_handler_remove();
    return cb_line;
}

static int chat_interactive(chat *c)
{
    fprintf(stderr, "[sizeup] chatting with %s (template %s). Ctrl-D or /bye to leave, "
            "Ctrl-C stops an answer.\n", eng_model_name(eng_conv_model(c->conv)),
            eng_chat_family_name(eng_conv_template(c->conv)->family));
    rl_catch_signals = 0;
    for (;;) {
        bool interrupted = false;
        char *line = read_turn(&interrupted);
        if (interrupted || !line || !strcmp(line, "/bye")) {
            if (!line)
                putchar('\n');
            free(line);
            return 0;
        }
        if (!*line) {
            free(line);
            continue;
        }
        add_history(line);
        eng_status st = eng_conv_add(c->conv, "user", line);
        free(line);
        if (st)
            return app_fail(CMD, "%s", eng_conv_errmsg(c->conv));
        int rc = chat_answer(c, false);
        if (rc)
            return rc;
        if (!app_stdout_ok())
            return 1; /* app/main.c says why */
    }
}

static int run_chat(eng_model *m, eng_session *s, const run_opts *o, const char *prompt)
{
    chat c = { NULL, o };
    char err[512];
    if (eng_conv_new(m, s, ENG_CONV_CHAT, o->tmpl, &c.conv, err, sizeof err))
        return app_fail(CMD, "%s", err);
    const eng_chat_template *t = eng_conv_template(c.conv);
    if (!o->tmpl && (t->fallback || t->reason))
        fprintf(stderr, "[sizeup] chat template: %s\n",
                t->reason ? t->reason : "not recognised; using chatml");
    int rc = 0;
    if (o->system && eng_conv_set_system(c.conv, o->system))
        rc = app_fail(CMD, "%s", eng_conv_errmsg(c.conv));
    if (!rc && prompt) {
        if (eng_conv_add(c.conv, "user", prompt))
            rc = app_fail(CMD, "%s", eng_conv_errmsg(c.conv));
        else
            rc = chat_answer(&c, false);
    } else if (!rc) {
        rc = chat_interactive(&c);
    }
    eng_conv_free(c.conv);
    return rc;
}

/* A model served over HTTP (app/cmd_remote.c), sent the same sampling settings a local one
 * would use, so the two compare. */
static int run_remote(const run_opts *o, const char *prompt)
{
    const eng_sampler_params *sp = &o->so.sampling;
    if (o->n_predict == 0)
        return app_fail(CMD, "-n 0: a remote model has no prompt-only run");
    app_remote_run rr = { o->model, prompt, o->system, o->cacert, o->tmpl, o->chat, o->echo,
                          o->ids, dl_remote_sampling_unset() };
    rr.sampling.temperature = sp->temperature;
    rr.sampling.top_k = sp->top_k;
    rr.sampling.top_p = sp->top_p;
    rr.sampling.min_p = sp->min_p;
    rr.sampling.repeat_penalty = sp->repeat_penalty != 1.0f ? sp->repeat_penalty : 0;
    rr.sampling.max_tokens = o->n_predict;   /* -1: unset, until the model stops */
    rr.sampling.has_seed = o->seed_set;
    rr.sampling.seed = sp->seed;
    return app_run_remote(&rr);
}

int app_cmd_run(int argc, char **argv)
{
    run_opts o = { 0 };
    int rc = parse_args(argc, argv, &o);
    if (rc || o.help) {
        if (o.help)
            usage(stdout);
        return rc;
    }
    char *prompt = NULL;
    if (o.file && (rc = read_prompt_file(o.file, &prompt)) != 0)
        return rc;
    if (o.prompt && !(prompt = strdup(o.prompt)))
        return app_fail(CMD, "out of memory");
    if (app_is_remote_ref(o.model)) {
        rc = run_remote(&o, prompt);
        free(prompt);
        return rc;
    }
    eng_model *m;
    eng_session *s;
    char err[512], *path;
    if ((rc = app_model_path(CMD, o.model, o.cacert, &path)) != 0) {
        free(prompt);
        return rc;
    }
    double t0 = app_now_ms();
    if (eng_model_open(path, &m, err, sizeof err)) {
        free(path);
        free(prompt);
        return app_fail(CMD, "%s", err);
    }
    free(path);
    open_ms = app_now_ms() - t0;
    if (o.so.n_ctx) {  /* the default is the trained context already; a longer -c is the user's */
        char what[32];
        snprintf(what, sizeof what, "-c %u", o.so.n_ctx);
        app_ctx_warn(CMD, m, o.so.n_ctx, what);
    }
    o.so.cancel = &cancel_flag;
    if (eng_session_new(m, &o.so, &s, err, sizeof err)) {
        eng_model_close(m);
        free(prompt);
        return app_fail(CMD, "%s", err);
    }
    struct sigaction sa = { 0 };
    sa.sa_handler = on_sigint; /* no SA_RESTART: a blocked read returns so the flag is seen */
    sigaction(SIGINT, &sa, NULL);
    sanitize_out = isatty(STDOUT_FILENO);
    ui_sanitize_init(&out_san);
    if (o.chat) {
        rc = run_chat(m, s, &o, prompt);
    } else {
        if (o.echo && !o.ids)
            fputs(prompt, stdout);
        rc = feed_text(s, m, prompt, true, false);
        if (!rc)
            rc = generate(s, &o, NULL, 0, false);
    }
    signal(SIGINT, SIG_DFL);
    eng_session_free(s);
    eng_model_close(m);
    free(prompt);
    return rc;
}
