/* Commands of the sizeup binary. Each takes the arguments after its own name (argv[0] is the
 * command name) and returns the process exit status; only app/ parses arguments and exits. */
#ifndef SIZEUP_APP_H
#define SIZEUP_APP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "downloads/dl.h"
#include "downloads/dl_remote.h"

int app_cmd_inspect(int argc, char **argv);
int app_cmd_devices(int argc, char **argv);
int app_cmd_tokenize(int argc, char **argv);
int app_cmd_run(int argc, char **argv);
int app_cmd_logits(int argc, char **argv);
int app_cmd_gen_model(int argc, char **argv);
int app_cmd_bench(int argc, char **argv);
int app_cmd_quantize(int argc, char **argv);
int app_cmd_pull(int argc, char **argv);
int app_cmd_list(int argc, char **argv);
int app_cmd_rm(int argc, char **argv);
int app_cmd_catalog(int argc, char **argv);
int app_cmd_chat(int argc, char **argv);
int app_cmd_perplexity(int argc, char **argv);
int app_cmd_compare(int argc, char **argv);

/* Fixture-free helpers shared by commands. */
/* SIGBUS (app/fatal.c): a model file truncated or changed while mapped ends sizeup with
 * "sizeup: the model file PATH was truncated or changed while in use; stopping" and exit status
 * 1, the terminal restored. main installs it once for every command; the TUI sets restore (an
 * async-signal-safe terminal restore) while it holds the terminal, NULL after. */
void app_fatal_install(void);
void app_fatal_set_restore(void (*restore)(void));

/* Print "sizeup CMD: MESSAGE\n" to stderr; returns 1 so callers can `return app_fail(...)`. */
int app_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The monotonic clock, in seconds and in milliseconds: every timing in app/ reads this one. */
double app_now_s(void);
double app_now_ms(void);
/* "1.23 GiB", "512 KiB", "17 B": binary units, 3 significant digits. buf >= 16 bytes. */
const char *app_fmt_bytes(unsigned long long bytes, char *buf, size_t buflen);
/* Text from a model file shown on one line: '\n' '\t' '\r' '"' '\\' as backslash escapes, other
 * C0 and DEL as \xNN, C1 (U+0080..U+009F) and the bidi controls (U+202A..U+202E,
 * U+2066..U+2069) as \u and four hex digits, each byte that is not valid UTF-8 as \xNN; printable
 * UTF-8 as is.
 * So nothing in it can drive a terminal, and every byte stays visible. Writes at most cap - 1
 * bytes (whole escapes only) and a NUL into buf; returns buf. APP_ESCAPE_MAX(n) never cuts. */
#define APP_ESCAPE_MAX(n) (4 * (size_t)(n) + 1)
const char *app_escape(const char *s, size_t n, char *buf, size_t cap);
/* A JSON string of s[0..n) when it is not valid UTF-8: each invalid byte becomes U+FFFD (as
 * tokenize --pieces and the fixtures' reference files have it), so output never says null for
 * text that is there. NULL only when out of memory. Caller owns the reference. */
struct json_t;
struct json_t *app_json_text(const char *s, size_t n);
/* The Vulkan device index from a --device value, else from SIZEUP_DEVICE, else -1 (automatic).
 * Returns 0, or 2 after a message naming a bad value or an index past the last Vulkan device
 * (with how many there are). */
int app_device_index(const char *cmd, const char *flag_value, int *out);

/* Before any work, check that a command may write its output file `out`: not the file `in`
 * (NULL: no input) under any name, not a directory, device, FIFO or socket, and not existing
 * unless force. A symlink at out is replaced by the new file, never written through. Returns 0,
 * or 1 after one line naming the path and the reason. Pass GGUF_WRITE_NO_REPLACE to the writer
 * when force is false. */
int app_check_output(const char *cmd, const char *out, const char *in, bool force);
/* What a non-regular file is, for messages: "a directory", "a device", "a FIFO", "a socket" or
 * "not a regular file" (st_mode of stat(2)). A static string. */
const char *app_file_kind(unsigned mode);

/* An integer option value: decimal digits, an optional sign, lo <= value <= hi. Returns 0 with
 * *out set, or 2 after "sizeup CMD: OPT 'TEXT': expected an integer from LO to HI". */
int app_parse_int(const char *cmd, const char *opt, const char *text, long long lo, long long hi,
                  long long *out);
/* The same for 0 .. UINT64_MAX (seeds). */
int app_parse_u64(const char *cmd, const char *opt, const char *text, uint64_t *out);
/* A real option value: a finite number, lo <= value <= hi. Returns 0 with *out set, or 2 after
 * "sizeup CMD: OPT 'TEXT': expected a number from LO to HI". */
int app_parse_real(const char *cmd, const char *opt, const char *text, double lo, double hi,
                   double *out);
/* The options every command that opens sessions shares, in one place so they are spelt and
 * checked alike: sampling (--temp, --top-k, --top-p, --min-p, --repeat-penalty, --seed),
 * -c/--ctx, -t/--threads and --backend. Returns 0 when `opt` was one of them (so updated;
 * *seed_set, when not NULL, set for --seed), 2 after a message for a bad value, -1 when opt is
 * none of them. */
struct eng_session_opts; /* engine/engine.h */
int app_session_opt(const char *cmd, const char *opt, const char *val, struct eng_session_opts *so,
                    bool *seed_set);
/* The default of --backend from $SIZEUP_BACKEND ("cpu" or "vulkan"; unset or empty: none),
 * applied when so->backend is still automatic (the option wins). Any other value is refused as
 * --backend's is: returns 2 after one line naming it, else 0. */
int app_backend_env(const char *cmd, struct eng_session_opts *so);

/* The context a model was trained with (general's context_length; 0 when the file does not
 * say). */
struct eng_model; /* engine/engine.h */
uint32_t app_ctx_train(const struct eng_model *m);
/* When n_ctx is larger than m's trained context, one warning line on stderr ("sizeup CMD:
 * warning: ...", `what` naming the setting, e.g. "-c 1024") and true: past its trained length a
 * model's positions are ones it never learnt, and its predictions (perplexity included) are
 * worse in ways that say nothing about its quality. Never refuses: llama.cpp warns too. */
bool app_ctx_warn(const char *cmd, const struct eng_model *m, uint32_t n_ctx, const char *what);

/* Inputs larger than this are refused: no prompt or text to tokenize is near it, and reading
 * /dev/zero or a runaway pipe must not eat the machine's memory. */
#define APP_MAX_INPUT ((size_t)64 << 20)
/* The whole of path ('-': standard input) in a malloc'd buffer with a NUL after its len bytes
 * (the data itself may hold NULs; caller frees). Refuses a directory and more than max bytes.
 * Returns 0, or 1 after "sizeup CMD: WHAT PATH: problem". */
int app_read_input(const char *cmd, const char *what, const char *path, size_t max, char **buf,
                   size_t *len);
/* app_read_input up to APP_MAX_INPUT for text (a prompt, a perplexity text): a NUL byte is
 * refused with its offset rather than silently cutting the text there, which every C string
 * after this point would do. Returns 0, or 1 after one line. */
int app_read_text(const char *cmd, const char *what, const char *path, char **text, size_t *len);

/* Flushes stdout; false once any write to it has failed (the first error is kept for
 * app_stdout_close). Long output (generation) checks it to stop instead of running on. */
bool app_stdout_ok(void);
/* At exit (app/main.c, after the command): flush and close stdout. Returns 0, or 1 after
 * "sizeup CMD: cannot write to stdout: ERROR" (silently for a closed pipe). */
int app_stdout_close(const char *cmd);


/* "292.8K", "135.0M", "1.24B": parameter counts the way model names spell them. Returns buf. */
const char *app_fmt_count(uint64_t n, char *buf, size_t len);

/* ---- model references (app/model_ref.c) ---- */

/* The local path of the model that ref names, for -m MODEL and inspect: an existing file as is
 * (no network); else a model complete in the store (no network); else it is downloaded into
 * the store with a progress display on stderr, after a line saying what and where. cacert is
 * --cacert or NULL. Returns 0 with *path_out set (caller frees), or the exit status after one
 * line on stderr: 1 for a failure, 130 when Ctrl-C cancelled the download. */
int app_model_path(const char *cmd, const char *ref, const char *cacert, char **path_out);

/* A download context with --cacert applied (NULL: CURL_CA_BUNDLE or curl's default), or NULL
 * after a message (out of memory, or no place for the store: HOME, XDG_CACHE_HOME and
 * SIZEUP_MODELS all unset). Caller frees with dl_close. */
dl_ctx *app_dl_open(const char *cmd, const char *cacert);
/* One line for a failed dl_* call about ref: the context's message, and for DL_ERR_OFFLINE how
 * to use a local file instead. Returns 1. */
int app_dl_fail(const char *cmd, const dl_ctx *c, dl_status st, const char *ref);
/* A reference that pulls the stored file s again into the same place (hf.co/OWNER/REPO/PATH
 * for a repository's file, else the URL it came from, without any password), or its path when
 * the record names no source; into buf (app/cmd_models.c). */
void app_refetch_ref(const dl_ctx *c, const dl_stored *s, char *buf, size_t len);

/* What app_pull fetched: one entry per file (several for a split model). */
typedef struct app_pulled {
    char *path;          /* local path of the first file; caller frees with app_pulled_free */
    size_t n_files;
    char **paths;        /* (n_files) */
    uint64_t *sizes;     /* (n_files) bytes on disk */
    bool already;        /* every file was in the store before */
    bool builtin;        /* a built-in demo model: shipped, or made by sizeup, not fetched */
} app_pulled;
void app_pulled_free(app_pulled *p);
/* Resolve ref, say on stderr what will be fetched from where (unless quiet), fetch it with the
 * progress display (Ctrl-C cancels, leaving a resumable part), and fill *out. Returns 0, or the
 * exit status after one line (1, or 130 when cancelled). */
int app_pull(const char *cmd, dl_ctx *c, const char *ref, bool quiet, app_pulled *out);

/* ---- quantizing a file (app/cmd_quantize.c) ---- */

/* Write a copy of the GGUF model `in` to `out` with its weight matrices stored as `type`
 * ("Q8_0", "Q6_K", "Q4_K", "Q4_K_M", "Q4_0", "F16", "BF16", "F32", any case): the code behind
 * `sizeup quantize`. log: where the per-tensor lines and the summary go (that command gives
 * stdout), or NULL for none; nothing else is printed. An existing out is replaced only when
 * replace is true (the writer's GGUF_WRITE_NO_REPLACE otherwise). Returns 0, or 1 with the
 * reason in err (naming the file, tensor or row); out is then left as it was. */
int app_quantize_file(const char *in, const char *out, const char *type, bool replace,
                      FILE *log, char *err, size_t errlen);

/* ---- the built-in demo and the TUI's default models (app/demo.c) ---- */

/* The demo's models, in the order of the demo's panes: stories260K | BabyLlama F32 | BabyLlama
 * Q4_0. Catalog references; the files ship with sizeup (downloads/builtin, installed as
 * PREFIX/share/sizeup/builtin) except the Q4_0, which is made on first use. */
#define APP_DEMO_N 3
extern const char *const app_demo_refs[APP_DEMO_N];
/* One paragraph for the TUI to show above the demo's panes: these are tiny demo models, and how
 * to get real ones (/add qwen2.5:0.5b, sizeup catalog). No newline, no escape sequences. */
extern const char app_demo_banner[];

/* The local paths of the demo's three models, in app_demo_refs order, with no network: the
 * shipped files where they were found (dl_builtin_dir), and BabyLlama Q4_0 from the store,
 * made there first (STORE/builtin/babyllama-930K-Q4_0.gguf, with a record) when it is not
 * there yet, or is damaged or does not parse: about a second, once. Prints nothing on success
 * (call it before the terminal is taken over); on failure one line on stderr and returns the
 * exit status (1), with every paths[i] NULL. On success the caller frees each paths[i]. */
int app_demo_models(const char *cmd, char *paths[APP_DEMO_N]);

/* The models the TUI opens when given none: the two most recently used (or pulled) models of
 * the store, newest first (one when the store holds one; damaged files and the demo's own Q4_0
 * do not count); when there are none, the built-in demo (app_demo_models, *is_demo true).
 * *paths is an array of *n paths; the caller frees it with app_paths_free(*paths, *n). Returns
 * 0, or the exit status after one line on stderr (then *paths is NULL and *n is 0). */
#define APP_DEFAULT_MAX 2
int app_default_models(const char *cmd, char ***paths, size_t *n, bool *is_demo);
void app_paths_free(char **paths, size_t n);

/* Whether ref names a built-in catalog entry (demo:...); c's catalog is loaded on demand. */
bool app_is_builtin_ref(dl_ctx *c, const char *ref);
/* The local path of a built-in entry's model, made first when it is one sizeup makes (with a
 * line on stderr saying so, unless quiet); never touches the network. Returns 0 with
 * *path_out set (caller frees), or 1 after one line on stderr. */
int app_builtin_path(const char *cmd, dl_ctx *c, const char *ref, bool quiet, char **path_out);

/* ---- remote models (app/cmd_remote.c) ---- */

/* True when ref is a remote reference (URL#MODEL, @NAME[/MODEL]) and no file of that name
 * exists. */
bool app_is_remote_ref(const char *ref);
/* What `sizeup run` passes on for a remote model. */
typedef struct app_remote_run {
    const char *ref, *prompt, *system, *cacert, *tmpl;
    bool chat, echo, ids;
    dl_remote_sampling sampling;
} app_remote_run;
/* `sizeup run -m REMOTE`: a completion (-p/-f), a chat answer (--chat -p) or an interactive
 * chat (--chat); the answer on stdout, the stats line on stderr. Returns the exit status. */
int app_run_remote(const app_remote_run *o);
/* `sizeup list --remote URL|@NAME [--json] [--cacert FILE]`. */
int app_cmd_list_remote(int argc, char **argv);

/* What a fit estimate is made against (app/cmd_models.c): the memory of the backend that would
 * run the model, a Vulkan device or the host for the CPU backend. */
typedef struct app_fit_device {
    bool ok;             /* a capacity is known; else why says what went wrong */
    bool cpu;            /* the CPU backend would run it: capacity is the host's memory */
    uint32_t index;      /* the Vulkan device (not cpu) */
    char name[256];      /* the device's name, or "host memory" */
    uint64_t capacity;   /* bytes: the budget of the device's largest device-local heap when the
                          * driver reports one (VK_EXT_memory_budget), else that heap's size; for
                          * the CPU, the host's available memory (MemAvailable) */
    uint64_t total;      /* cpu: the host's physical memory */
    char backend_why[256]; /* cpu: why `--backend auto` runs on the CPU */
    char why[512];
} app_fit_device;
/* Describe what `--backend auto` would run a model on: device `index` (-1: the automatic
 * choice), or the host's memory when the automatic choice is a CPU driver (lavapipe) or no
 * Vulkan device is usable. Never fails otherwise: when nothing is known, out->ok is false.
 * Returns 0, or 2 after a message when an explicit index is out of range. */
int app_fit_device_probe(const char *cmd, int index, app_fit_device *out);
/* The same as a JSON object (null when !ok): {"backend": "vulkan", "index", "name", "capacity"}
 * or {"backend": "cpu", "reason", "name", "capacity", "total"}. Caller owns the reference. */
struct json_t *app_fit_device_json(const app_fit_device *dev);

#endif
