/* Models served over the OpenAI-compatible HTTP API (vLLM, llama-server, Ollama, TGI, hosted
 * APIs): references, the endpoints file, the model listing, and streamed chat or completion
 * answers with their figures. Part of downloads/ (libcurl, jansson); knows nothing of the
 * engine, curses or the command line, and never prints.
 *
 * A dl_remote is shaped like an eng_session so a pane can drive either: open it from a
 * reference, call dl_remote_generate on a worker thread (tokens arrive through a callback as
 * the server sends them), read dl_remote_stats, stop it from any thread with dl_remote_cancel,
 * and read dl_remote_errmsg after a failure. One thread at a time uses a handle, except
 * dl_remote_cancel, which any thread or a signal handler may call.
 *
 * References:
 *   http://HOST:PORT/v1#MODEL    ad hoc: the base URL, '#', the model; the key (if any) from
 *                                the environment variable OPENAI_API_KEY
 *   @NAME, @NAME/MODEL           an endpoint of endpoints.conf (below); MODEL, else its model=
 *   http://HOST:PORT/v1, @NAME   without a model: enough to list what the endpoint serves
 *
 * endpoints.conf ($XDG_CONFIG_HOME/sizeup/endpoints.conf, else ~/.config/sizeup/...): INI, one
 * section per endpoint, "#" or ";" comment lines:
 *   [gpubox]
 *   url = http://gpubox:8000/v1
 *   key_env = GPUBOX_KEY          the NAME of the variable that holds the key, never the key
 *   model = meta-llama/Llama-3.3-70B-Instruct     optional default
 *
 * Keys: read from the named variable when the handle opens, sent as a bearer token to the
 * endpoint's own host only (libcurl drops it on a redirect to another host), and never put in
 * a message, a statistic or a URL this module hands out.
 */
#ifndef SIZEUP_DL_REMOTE_H
#define SIZEUP_DL_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "downloads/dl.h"

typedef struct dl_remote dl_remote;

/* True when text has the shape of a remote reference: "@..." or an http(s) URL with a '#'.
 * (A file of that name is the caller's to prefer: `run -m` checks the disk first.) */
bool dl_remote_is_ref(const char *text);

typedef struct dl_remote_opts {
    const char *cacert;      /* CA file (PEM); NULL: CURL_CA_BUNDLE, else libcurl's default.
                              * Certificates are always verified. */
    const char *conf_path;   /* endpoints file; NULL: the default place above */
    long connect_s;          /* connect timeout; 0: 10 s */
    long read_timeout_s;     /* a stream that sends nothing (not even a keep-alive) this long
                              * has stalled; 0: 60 s */
    int max_retries;         /* 429 and 503 are retried this often; 0: 3; < 0: never */
    long max_wait_s;         /* the longest Retry-After honoured per wait; 0: 30 s */
    size_t max_line;         /* the longest SSE line accepted; 0: 1 MiB */
    bool no_metrics;         /* never ask for /metrics */
} dl_remote_opts;

/* Parse ref (reading endpoints.conf for @NAME), read the key from its variable, and prepare a
 * handle; nothing goes over the network. *out is set whenever memory allows, failure included,
 * so dl_remote_errmsg can say what was wrong (a line-numbered message for endpoints.conf, an
 * unknown endpoint with the names the file has). DL_ERR_ARG: bad reference or file;
 * DL_ERR_NOT_FOUND: no such endpoint or no endpoints file. Free with dl_remote_close
 * (NULL-safe). o may be NULL. */
dl_status dl_remote_open(const char *ref, const dl_remote_opts *o, dl_remote **out);
void dl_remote_close(dl_remote *r);
/* The last failure's detail, or "" after success; borrowed until the next call on r. Never
 * holds the key; URLs in it have any user:password removed. */
const char *dl_remote_errmsg(const dl_remote *r);

/* Borrowed until close. The model (NULL when the reference named none); the base URL without
 * userinfo; "host:port" for a pane header; the variable the key comes from (NULL: none). */
const char *dl_remote_model(const dl_remote *r);
const char *dl_remote_base_url(const dl_remote *r);
const char *dl_remote_host(const dl_remote *r);
const char *dl_remote_key_env(const dl_remote *r);
/* "vLLM", "llama-server", "Ollama", or "OpenAI-compatible" until something tells: a listing's
 * owned_by, a Server header, llama-server's timings. Borrowed (static). */
const char *dl_remote_server_kind(const dl_remote *r);

/* ---- what the endpoint serves: GET BASE/models ---- */
typedef struct dl_remote_model_info {
    char *id;                /* the name to put after '#' */
    char *owned_by;          /* or NULL */
    uint64_t max_model_len;  /* vLLM's context length, 0 when not said */
} dl_remote_model_info;
/* *list (free with dl_remote_models_free(list, n)) in the server's order. Sets the server
 * kind. Faults as for dl_remote_generate. */
dl_status dl_remote_models(dl_remote *r, dl_remote_model_info **list, size_t *n);
void dl_remote_models_free(dl_remote_model_info *list, size_t n);

/* Text from a server made fit for a message or a listing, in place (it never grows): each
 * control character (C0, DEL, C1, bidi embeddings/overrides/isolates) and each byte that is not
 * valid UTF-8 becomes '?'. Every message of dl_remote_errmsg that quotes a server is already
 * made so. */
void dl_remote_printable(char *s);

/* ---- one answer ---- */
typedef struct dl_remote_msg {
    const char *role;        /* "system", "user", "assistant" */
    const char *content;
} dl_remote_msg;

/* Sent under the API's names; a field at its "unset" value is not sent, so the server's own
 * default applies. top_k, min_p and repeat_penalty are llama-server / vLLM extensions (OpenAI
 * itself ignores or refuses them). */
typedef struct dl_remote_sampling {
    double temperature;      /* < 0: unset */
    double top_p;            /* < 0: unset */
    int top_k;               /* < 0: unset */
    double min_p;            /* < 0: unset */
    double repeat_penalty;   /* <= 0: unset */
    int max_tokens;          /* <= 0: unset */
    bool has_seed;
    uint64_t seed;
} dl_remote_sampling;
/* Every field unset. */
dl_remote_sampling dl_remote_sampling_unset(void);

typedef enum dl_remote_mode {
    DL_REMOTE_CHAT = 0,      /* POST BASE/chat/completions with messages */
    DL_REMOTE_COMPLETION,    /* POST BASE/completions with a raw prompt */
} dl_remote_mode;

typedef struct dl_remote_request {
    dl_remote_mode mode;
    const dl_remote_msg *msgs;   /* chat: the system prompt and the history, oldest first */
    size_t n_msgs;
    const char *prompt;          /* completion */
    dl_remote_sampling sampling;
    const char *const *stop;     /* stop strings, n_stop of them (sent as "stop") */
    size_t n_stop;
} dl_remote_request;

/* Figures of the last answer, defined as in the pane and the stats line. Times are measured
 * here, so they include the network. */
typedef struct dl_remote_stats {
    double ttft_ms;          /* request sent to the first generated text (answer or reasoning) */
    uint32_t n_gen;          /* tokens generated: usage.completion_tokens when the server sent
                              * usage, else the content chunks counted (gen_approx) */
    bool gen_approx;         /* n_gen is a count of chunks, shown with "~" */
    double gen_ms;           /* first to last chunk of generated text */
    double gen_tps;          /* (n_gen - 1) / gen_ms, as the engine defines it; 0 when < 2 */
    uint32_t n_prompt;       /* usage.prompt_tokens, 0 when not sent */
    double total_ms;         /* the whole request, retries and waits included */
    bool has_timings;        /* llama-server's own figures (its "timings" object) */
    uint32_t srv_n_prompt, srv_n_gen;
    double srv_prompt_ms, srv_prompt_tps, srv_gen_ms, srv_gen_tps;
    double kv_usage;         /* 0..1 from the server's Prometheus /metrics, read while the
                              * answer streams (the highest value seen); < 0: not exposed */
    size_t answer_len, reasoning_len;   /* bytes received */
    int retries;             /* 429/503 waits taken */
    bool partial;            /* the answer stopped before the server finished it */
    const char *host;        /* "host:port"; borrowed until close */
    const char *server;      /* dl_remote_server_kind at the time */
} dl_remote_stats;
/* From the generating thread, or after generate returned; another thread (the UI) takes the
 * copy each token callback is handed instead, since generate updates these as it runs. */
void dl_remote_stats_get(const dl_remote *r, dl_remote_stats *out);

typedef enum dl_remote_part {
    DL_REMOTE_ANSWER = 0,    /* delta.content (chat) or text (completion) */
    DL_REMOTE_REASONING,     /* delta.reasoning_content (or delta.reasoning): shown apart */
} dl_remote_part;
/* Called on the generating thread for each piece of text as it arrives (valid UTF-8 as the
 * server sent it; may be empty). stats are the running figures. Return false to stop (as
 * dl_remote_cancel does). */
typedef bool (*dl_remote_token_fn)(void *user, dl_remote_part part, const char *text,
                                   size_t len, const dl_remote_stats *stats);
/* Called on the generating thread with one line about a wait ("HTTP 429 from HOST (busy):
 * waiting 2 s, then retry 1 of 3"). */
typedef void (*dl_remote_status_fn)(void *user, const char *line);
void dl_remote_set_status(dl_remote *r, dl_remote_status_fn fn, void *user);

typedef enum dl_remote_finish {
    DL_REMOTE_FINISH_NONE = 0,   /* failed before or while streaming (see the status) */
    DL_REMOTE_FINISH_STOP,       /* the model ended its answer, or a stop string */
    DL_REMOTE_FINISH_LENGTH,     /* max_tokens or the context was reached */
    DL_REMOTE_FINISH_CANCELLED,  /* dl_remote_cancel or the callback */
} dl_remote_finish;
const char *dl_remote_finish_str(dl_remote_finish f);

/* Stream one answer. DL_OK when the server finished it or it was cancelled (*why says which;
 * the partial answer stays). Failures, each with a message naming the host: DL_ERR_OFFLINE
 * (refused, DNS, connect timeout), DL_ERR_TLS, DL_ERR_HTTP (401/403 naming the key's variable,
 * other 4xx), DL_ERR_NOT_FOUND (404 model: the message lists what the endpoint serves),
 * DL_ERR_NETWORK (5xx, 429/503 after the retries, a stream cut mid-answer, a stall),
 * DL_ERR_FORMAT (malformed JSON in a chunk, an over-long line), DL_ERR_ARG (no model). Text
 * that arrived before a failure is kept (dl_remote_answer) and stats.partial says so. */
dl_status dl_remote_generate(dl_remote *r, const dl_remote_request *q, dl_remote_token_fn fn,
                             void *user, dl_remote_finish *why);
/* The answer (and reasoning) text of the last generate, NUL-terminated; borrowed until the
 * next generate or close. */
const char *dl_remote_answer(const dl_remote *r);
const char *dl_remote_reasoning(const dl_remote *r);
/* Stop the running generate (or the Retry-After wait inside it) within 100 ms: the stream is
 * closed, the partial answer kept, *why = DL_REMOTE_FINISH_CANCELLED. Async-signal-safe (an
 * atomic flag). Each generate (and listing) clears the flag as it starts, so an Esc pressed
 * after an answer ended does not stop the next one; a caller that starts a generate on a
 * worker thread and may cancel it at once should have the worker check its own flag first. */
void dl_remote_cancel(dl_remote *r);

/* ---- endpoints.conf, for `list` and the TUI's /add ---- */
typedef struct dl_endpoint {
    char *name, *url, *key_env, *model;   /* key_env and model may be NULL */
    int line;                             /* where its section starts */
} dl_endpoint;
/* Parse path strictly (NULL: the default place). DL_OK with *list (free with
 * dl_endpoints_free(list, n)); DL_ERR_NOT_FOUND when the file does not exist; DL_ERR_ARG with
 * "PATH:LINE: what is wrong" in err; DL_ERR_IO when it cannot be read. */
dl_status dl_endpoints_load(const char *path, dl_endpoint **list, size_t *n, char *err,
                            size_t errlen);
void dl_endpoints_free(dl_endpoint *list, size_t n);
/* The default endpoints file path into buf; false when neither XDG_CONFIG_HOME nor HOME is an
 * absolute path. */
bool dl_endpoints_default_path(char *buf, size_t len);

#endif
