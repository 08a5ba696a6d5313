/* `sizeup chat [MODEL...]` and `sizeup` with no arguments: the side-by-side chat TUI, or its
 * line mode (--plain, TERM=dumb, or when stdin/stdout is not a terminal). Models named on the
 * command line are resolved like run's -m (downloaded first, with progress, before the screen
 * is taken); with none, app_default_models picks them: the two most recent of the store, else
 * the built-in demo. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "app/chat.h"

#define CMD "chat"

static void usage(FILE *to)
{
    fprintf(to,
        "usage: sizeup chat [MODEL...] [--plain] [--template NAME] [--system S] [-n N]\n"
        "                   [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
        "                   [--repeat-penalty R] [--seed S] [-c CTX] [--backend vulkan|cpu]\n"
        "                   [--device N] [-t N] [--cacert FILE]\n\n"
        "Chat with 1 to 4 models side by side: one prompt goes to every pane, each answers\n"
        "with live tokens/s and memory. With no MODEL, the two most recently used models of\n"
        "the store. MODEL is a .gguf file or a model reference (see sizeup pull --help), or\n"
        "a served model, URL#MODEL or @NAME/MODEL (README \"Remote models\"), in both modes.\n"
        "A model without a chat template continues your text (completion mode).\n\n"
        "  --plain               line mode without curses or escape sequences (also when\n"
        "                        TERM=dumb or stdin/stdout is not a terminal)\n"
        "  --template NAME       force a chat template family (chatml, llama3, phi3, ...)\n"
        "  --system S            system prompt\n"
        "  -n, --n-predict N     at most N tokens per answer (default 512; -1 = no limit)\n"
        "  --temp, --top-k, --top-p, --min-p, --repeat-penalty, --seed   sampling, as run\n"
        "  -c, --ctx N           context length (default: the model's, capped at 4096)\n"
        "  --backend B           vulkan or cpu (default: $SIZEUP_BACKEND, else automatic)\n"
        "  --device N, -t N      Vulkan device; CPU threads\n"
        "  --cacert FILE         CA certificates for a download or a served model over HTTPS\n\n"
        "Keys: Enter send, Tab focus, F2 all/one pane, Esc stop, F1 help, /quit leaves.\n");
}

typedef struct chat_args {
    const char *refs[8], *device, *cacert;
    int n_refs;
    bool plain, help;
    app_chat_cfg cfg;
} chat_args;

/* An option with a value: 0 handled, 2 bad value (after a message), -1 not an option of ours. */
static int value_opt(chat_args *a, const char *o, const char *v)
{
    long long i;
    int rc = app_session_opt(CMD, o, v, &a->cfg.so, NULL);
    if (rc != -1)
        return rc;
    if (!strcmp(o, "--template")) a->cfg.tmpl = v;
    else if (!strcmp(o, "--system")) a->cfg.system = v;
    else if (!strcmp(o, "--device")) a->device = v;
    else if (!strcmp(o, "--cacert")) a->cacert = v;
    else if (!strcmp(o, "-n") || !strcmp(o, "--n-predict")) {
        if (app_parse_int(CMD, o, v, -1, 1000000000, &i))
            return 2;
        a->cfg.n_predict = (int)i;
    } else return -1;
    return 0;
}

static int parse_args(int argc, char **argv, chat_args *a)
{
    a->cfg.so = eng_session_defaults();
    a->cfg.n_predict = 512;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            a->help = true;
        } else if (!strcmp(o, "--plain")) {
            a->plain = true;
        } else if (o[0] == '-' && o[1]) {
            if (i + 1 >= argc)
                return app_fail(CMD, "%s: a value is missing, or the option is unknown (see "
                                "sizeup chat --help)", o) + 1;
            int r = value_opt(a, o, argv[i + 1]);
            if (r < 0)
                return app_fail(CMD, "unknown option '%s' (see sizeup chat --help)", o) + 1;
            if (r > 0)
                return r;
            i++;
        } else if (a->n_refs == 4) {
            return app_fail(CMD, "at most 4 models side by side ('%s' is a fifth)", o) + 1;
        } else {
            a->refs[a->n_refs++] = o;
        }
    }
    if (app_backend_env(CMD, &a->cfg.so))  /* the default of --backend, for scripts */
        return 2;
    a->cfg.cacert = a->cacert;
    return a->help ? 0 : app_device_index(CMD, a->device, &a->cfg.so.device);
}

/* The models named on the command line. The line mode resolves them as run's -m does (a
 * download with its progress on stderr); the TUI takes files and stored models as paths and
 * leaves the rest to download in their own panes (refs[i] with paths[i] NULL). In both, a
 * served model (URL#MODEL, @NAME/MODEL) is refs[i] with paths[i] NULL. */
static int resolve_named(const chat_args *a, bool plain, char **paths, const char **refs)
{
    for (int i = 0; i < a->n_refs; i++) {
        refs[i] = a->refs[i];
        if (plain && !app_is_remote_ref(a->refs[i])) {
            int rc = app_model_path(CMD, a->refs[i], a->cacert, &paths[i]);
            if (rc)
                return rc;
            continue;
        }
        if (plain)
            continue;
        char why[600];
        bool remote;
        paths[i] = app_chat_resolve_local(a->refs[i], &remote, why, sizeof why);
        if (!paths[i] && !remote)
            return app_fail(CMD, "%s", why);
    }
    return 0;
}

int app_cmd_chat(int argc, char **argv)
{
    chat_args a = { 0 };
    int rc = parse_args(argc, argv, &a);
    if (rc || a.help) {
        if (a.help)
            usage(stdout);
        return rc;
    }
    const char *term = getenv("TERM");
    bool plain = a.plain || !term || !strcmp(term, "dumb") || !isatty(STDIN_FILENO) ||
                 !isatty(STDOUT_FILENO);
    char **paths = NULL;
    const char *refs[8] = { 0 };
    size_t n = 0;
    if (a.n_refs) {
        n = (size_t)a.n_refs;
        paths = calloc(n, sizeof *paths);
        rc = paths ? resolve_named(&a, plain, paths, refs) : app_fail(CMD, "out of memory");
    } else {
        bool demo = false;
        /* A failure (said on stderr) still opens the TUI, whose pane says how to get a model;
         * the line mode has nothing more to say and exits with it (SIZEUP_MODELS=/dev/null). */
        int found = app_default_models(CMD, &paths, &n, &demo);
        if (found && plain)
            rc = found;
        else if (!found && demo) {
            a.cfg.banner = app_demo_banner;
            /* The demo's models (0.3M to 1M parameters) run faster on the CPU than on any
             * Vulkan device, a GPU included, where a token is all dispatch overhead (`auto`
             * already avoids lavapipe on its own; this covers machines with a GPU). */
            if (a.cfg.so.backend == ENG_BACKEND_AUTO)
                a.cfg.so.backend = ENG_BACKEND_CPU;
        }
    }
    if (!rc)
        rc = plain ? app_chat_plain(paths, refs, n, &a.cfg)
                   : app_chat_tui(paths, refs, n, &a.cfg);
    app_paths_free(paths, n);
    return rc;
}
