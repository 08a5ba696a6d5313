/* Remote models from the command line: `sizeup run -m URL#MODEL|@NAME[/MODEL]` streams an
 * answer from an OpenAI-compatible server the way run does for a local model (text on stdout,
 * the stats line on stderr in the same shape, marked remote and network-inclusive), and
 * `sizeup list --remote URL|@NAME` lists what an endpoint serves. downloads/dl_remote.c does
 * the HTTP; this file prints, and turns Ctrl-C into dl_remote_cancel.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "app/app.h"
#include "app/remote_conv.h"
#include "downloads/dl_remote.h"
#include "ui/sanitize.h"

#define CMD "run"

bool app_is_remote_ref(const char *ref)
{
    struct stat sb;
    return ref && dl_remote_is_ref(ref) && stat(ref, &sb) != 0;
}

/* ---- Ctrl-C: the handler only sets flags (dl_remote_cancel is async-signal-safe) ---- */

static dl_remote *volatile live;
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
    dl_remote *r = live;
    if (r)
        dl_remote_cancel(r);
}

/* ---- one answer ---- */

/* The server's text is untrusted: on a terminal it goes through ui_sanitize, as run's local
 * text does (cmd_run.c), each stream with its own decoder; into a pipe or file it is written
 * as sent, again as run does for a local model. */
typedef struct out_stream {
    FILE *f;
    bool tty;
    ui_sanitizer z;
} out_stream;

typedef struct out_state {
    bool in_reasoning;      /* reasoning text is being written to stderr */
    out_stream out, err;    /* the answer (stdout) and the reasoning (stderr) */
} out_state;

static void out_init(out_state *o)
{
    o->in_reasoning = false;
    o->out.f = stdout;
    o->out.tty = isatty(STDOUT_FILENO);
    o->err.f = stderr;
    o->err.tty = isatty(STDERR_FILENO);
    ui_sanitize_init(&o->out.z);
    ui_sanitize_init(&o->err.z);
}

static void out_write(out_stream *s, const char *text, size_t len)
{
    if (!s->tty) {
        fwrite(text, 1, len, s->f);
        return;
    }
    char buf[UI_SANITIZE_MAX(256)];
    for (size_t at = 0; at < len; at += 256) {
        size_t k = len - at < 256 ? len - at : 256;
        fwrite(buf, 1, ui_sanitize_feed(&s->z, text + at, k, buf), s->f);
    }
}

/* The end of a stream's text: a UTF-8 sequence it left incomplete shows as U+FFFD. */
static void out_flush(out_stream *s)
{
    char buf[8];
    if (s->tty)
        fwrite(buf, 1, ui_sanitize_flush(&s->z, buf), s->f);
}

static bool on_piece(void *user, dl_remote_part part, const char *text, size_t len,
                     const dl_remote_stats *st)
{
    out_state *o = user;
    (void)st;
    if (part == DL_REMOTE_REASONING) {
        /* apart from the answer: stderr, so stdout holds the answer alone */
        if (!o->in_reasoning)
            fputs("[thinking] ", stderr);
        o->in_reasoning = true;
        out_write(&o->err, text, len);
        return true;
    }
    if (o->in_reasoning) {
        out_flush(&o->err);
        fputs("\n", stderr);
        o->in_reasoning = false;
    }
    out_write(&o->out, text, len);
    return app_stdout_ok();
}

static void on_status(void *user, const char *line)
{
    (void)user;
    fprintf(stderr, "\n[sizeup] %s\n", line);
}

/* The stats line in run's shape; every figure in its fields is measured here, so it includes
 * the network ("-" where that cannot be done, as for the prompt's speed, or the server sent
 * nothing to count), and the server's own are added apart, labelled, when it sends them. */
static void print_stats(const dl_remote *r, dl_remote_finish why)
{
    dl_remote_stats st;
    app_rconv_figs f;
    dl_remote_stats_get(r, &st);
    app_rconv_figs_get(&st, &f);
    fprintf(stderr,
            "\n[sizeup] prompt %s tokens, %s tokens/s | first token %.1f ms | generated %s%u "
            "tokens, %.1f tokens/s | stop: %s%s | load 0 ms | memory: remote%s | remote: %s at "
            "%s, times include the network%s\n",
            f.n_prompt, f.prompt_tps, st.ttft_ms, st.gen_approx ? "~" : "", st.n_gen,
            st.gen_tps, dl_remote_finish_str(why), st.partial ? " (incomplete)" : "", f.kv,
            st.server, st.host, f.srv);
}

/* A completion of q->prompt, or with c the answer to that conversation. */
static int answer(dl_remote *r, const dl_remote_request *q, app_rconv *c)
{
    out_state o;
    out_init(&o);
    dl_remote_finish why;
    dl_status st = c ? app_rconv_generate(c, r, q->mode, &q->sampling, on_piece, &o, &why)
                     : dl_remote_generate(r, q, on_piece, &o, &why);
    out_flush(&o.out);
    if (o.in_reasoning) {
        out_flush(&o.err);
        fputs("\n", stderr);
    }
    fflush(stdout);
    if (st && *dl_remote_answer(r)) {
        fputs("\n", stdout);   /* the partial answer stays on screen, marked by the stats */
        fflush(stdout);
        print_stats(r, why);
    }
    if (st)
        return app_fail(CMD, "%s", dl_remote_errmsg(r));
    print_stats(r, why);
    return 0;
}

/* ---- chat ---- */

static int push(app_rconv *c, const char *role, const char *content)
{
    return app_rconv_add(c, role, content) ? 0 : app_fail(CMD, "out of memory");
}

static char *cb_line;
static bool cb_done;

static void on_line(char *line)
{
    cb_line = line;
    cb_done = true;
}

/* readline's callback interface, as cmd_run.c uses it, so Ctrl-C at the prompt ends the chat
 * with the terminal restored. */
static char *read_turn(void)
{
    cb_line = NULL;
    cb_done = false;
    interrupted = 0;
    rl_callback_handler_install(">>> ", on_line);
    int fd = fileno(rl_instream ? rl_instream : stdin);
    while (!cb_done) {
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(fd, &fds);
        int n = select(fd + 1, &fds, NULL, NULL, NULL);
        if (n < 0 && errno == EINTR && interrupted)
            break;
        if (n > 0)
            rl_callback_read_char();
    }
    rl_callback_handler_remove();
    return cb_line;
}

static int chat_loop(dl_remote *r, const dl_remote_request *q, app_rconv *c)
{
    fprintf(stderr, "[sizeup] chatting with %s on %s (remote). Ctrl-D or /bye to leave, Ctrl-C "
            "stops an answer.\n", dl_remote_model(r), dl_remote_host(r));
    rl_catch_signals = 0;
    for (;;) {
        char *line = read_turn();
        if (!line || !strcmp(line, "/bye")) {
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
        int rc = push(c, "user", line);
        free(line);
        if (rc)
            return rc;
        rc = answer(r, q, c);
        putchar('\n');
        /* a failed answer stays out of the history; a cancelled one goes in as far as it got */
        if (rc == 0 && (rc = push(c, "assistant", dl_remote_answer(r))) != 0)
            return rc;
        if (!app_stdout_ok())
            return 1;
    }
}

int app_run_remote(const app_remote_run *o)
{
    if (o->ids)
        return app_fail(CMD, "--ids: a remote model's token ids are not sent by the server");
    if (o->tmpl)
        return app_fail(CMD, "--template: a remote server applies its own chat template");
    dl_remote_opts ro = { .cacert = o->cacert };
    dl_remote *r;
    if (dl_remote_open(o->ref, &ro, &r) != DL_OK) {
        int rc = app_fail(CMD, "%s", r ? dl_remote_errmsg(r) : "out of memory");
        dl_remote_close(r);
        return rc;
    }
    dl_remote_set_status(r, on_status, NULL);
    dl_remote_request q = { 0 };
    q.sampling = o->sampling;
    app_rconv *c = NULL;
    int rc = 0;
    struct sigaction sa = { 0 }, old;
    sa.sa_handler = on_sigint; /* no SA_RESTART: select returns so the flag is seen */
    sigaction(SIGINT, &sa, &old);
    live = r;
    /* The listing says what kind of server this is, for the stats line. Servers without one
     * still answer, and a missing model is said by the answer's own 404. */
    dl_remote_model_info *l;
    size_t n;
    if (dl_remote_models(r, &l, &n) == DL_OK)
        dl_remote_models_free(l, n);
    if (!o->chat) {
        q.mode = DL_REMOTE_COMPLETION;
        q.prompt = o->prompt;
        if (o->echo)
            fputs(o->prompt, stdout);
        rc = answer(r, &q, NULL);
    } else {
        q.mode = DL_REMOTE_CHAT;
        if (!(c = app_rconv_new()) || !app_rconv_set_system(c, o->system))
            rc = app_fail(CMD, "out of memory");
        if (!rc && o->prompt && !(rc = push(c, "user", o->prompt)))
            rc = answer(r, &q, c);
        else if (!rc)
            rc = chat_loop(r, &q, c);
    }
    live = NULL;
    sigaction(SIGINT, &old, NULL);
    app_rconv_free(c);
    dl_remote_close(r);
    return rc;
}

/* ---- sizeup list --remote ---- */

static void list_usage(FILE *to)
{
    fprintf(to,
            "usage: sizeup list --remote URL|@NAME [--json] [--cacert FILE]\n\n"
            "List the models an OpenAI-compatible endpoint serves (GET URL/models), with the\n"
            "reference that runs each: sizeup run -m REFERENCE.\n\n"
            "  --remote URL|@NAME  a base URL (http://gpubox:8000/v1) or an endpoint of\n"
            "                      $XDG_CONFIG_HOME/sizeup/endpoints.conf\n"
            "  --json              print one JSON object\n"
            "  --cacert FILE       CA certificates (PEM) for an HTTPS endpoint\n"
            "  -h, --help          show this help\n");
}

/* The reference that runs model id on the endpoint named by ref. */
static void model_ref(const char *ref, const char *base, const char *id, char *out, size_t cap)
{
    if (ref[0] == '@') {
        size_t n = strcspn(ref, "/");
        snprintf(out, cap, "%.*s/%s", (int)n, ref, id);
    } else {
        snprintf(out, cap, "%s#%s", base, id);
    }
}

static void list_print(const char *ref, dl_remote *r, const dl_remote_model_info *l, size_t n,
                       bool json)
{
    char mref[1200];
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            model_ref(ref, dl_remote_base_url(r), l[i].id, mref, sizeof mref);
            json_array_append_new(arr, json_pack("{s:s, s:s?, s:I, s:s}", "id", l[i].id,
                                                 "owned_by", l[i].owned_by, "max_model_len",
                                                 (json_int_t)l[i].max_model_len, "ref", mref));
        }
        json_t *o = json_pack("{s:s, s:s, s:s, s:o}", "endpoint", dl_remote_base_url(r),
                              "host", dl_remote_host(r), "server", dl_remote_server_kind(r),
                              "models", arr);
        if (o)
            json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(o);
        return;
    }
    printf("%zu model%s served by %s (%s) at %s\n", n, n == 1 ? "" : "s", dl_remote_host(r),
           dl_remote_server_kind(r), dl_remote_base_url(r));
    int w = 5;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(l[i].id) > w)
            w = (int)strlen(l[i].id);
    if (n)
        printf("\n%-*s  %7s  %s\n", w, "MODEL", "CONTEXT", "RUN WITH");
    for (size_t i = 0; i < n; i++) {
        char ctx[24] = "-";
        if (l[i].max_model_len)
            snprintf(ctx, sizeof ctx, "%llu", (unsigned long long)l[i].max_model_len);
        model_ref(ref, dl_remote_base_url(r), l[i].id, mref, sizeof mref);
        printf("%-*s  %7s  sizeup run -m %s\n", w, l[i].id, ctx, mref);
    }
}

int app_cmd_list_remote(int argc, char **argv)
{
    const char *ref = NULL, *cacert = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            list_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if ((!strcmp(a, "--remote") || !strcmp(a, "--cacert")) && i + 1 < argc) {
            *(!strcmp(a, "--remote") ? &ref : &cacert) = argv[++i];
        } else {
            return app_fail("list", "%s: unknown option or missing value (see sizeup list "
                            "--help)", a) + 1;
        }
    }
    if (!ref)
        return app_fail("list", "--remote: a URL or @NAME is missing") + 1;
    dl_remote_opts ro = { .cacert = cacert };
    dl_remote *r;
    dl_status st = dl_remote_open(ref, &ro, &r);
    dl_remote_model_info *l = NULL;
    size_t n = 0;
    if (!st)
        st = dl_remote_models(r, &l, &n);
    for (size_t i = 0; i < n; i++) {  /* names from a server: no escape reaches the terminal */
        dl_remote_printable(l[i].id);
        if (l[i].owned_by)
            dl_remote_printable(l[i].owned_by);
    }
    int rc = 0;
    if (st)
        rc = app_fail("list", "%s", r ? dl_remote_errmsg(r) : "out of memory");
    else
        list_print(ref, r, l, n, json);
    dl_remote_models_free(l, n);
    dl_remote_close(r);
    return rc;
}
