/* The engine's public face: models, sessions, generation with live statistics.
 *
 * Built for several models loaded and generating at once in one process. Nothing here prints,
 * exits or touches the terminal; every failure comes back as a status plus a message naming what
 * failed.
 *
 * Threads. The rules below hold for every function in this header; tests/test_concurrency.c runs
 * them (three sessions of two models on three threads, cancel from a fourth) and `make tsan`
 * checks them under ThreadSanitizer.
 *  - An eng_model is read-only after eng_model_open and may back any number of sessions on any
 *    threads at once; its accessors (hparams, vocab, name, ...) may be called from any thread.
 *    The first Vulkan session of a model uploads its weights under the model's own lock; the
 *    others share them.
 *  - An eng_session is used by one thread at a time: feed, generate, logits, stats, reset and
 *    free of one session must not overlap (the caller serialises them, e.g. one worker thread
 *    per pane). Different sessions, of the same model or not, run fully in parallel.
 *  - The token callback runs on the thread that called eng_session_generate, inside that call;
 *    it may read the session's stats argument but must not call into the same session.
 *  - A session's cancel flag (eng_session_opts.cancel, eng_generate_opts.cancel) is the one
 *    thing another thread may touch while the session works: it is a C11 atomic, and setting it
 *    stops generation before the next token and a long feed before its next batch.
 *  - eng_model_close while sessions of the model live is allowed and safe: models are
 *    reference-counted. Close gives up the caller's reference; the model is freed when its last
 *    session is freed (or at close, when it has none).
 *  - CPU sessions split matrix products into tasks for one process-wide thread pool
 *    (engine/pool.h, eng_pool_threads() threads: the cores, or SIZEUP_THREADS), so any number of
 *    sessions never run more CPU threads than that. Vulkan sessions share one device context per
 *    process and serialise only their queue submissions.
 */
#ifndef SIZEUP_ENGINE_H
#define SIZEUP_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/tokenizer.h"

typedef enum eng_status {
    ENG_OK = 0,
    ENG_ERR_IO,
    ENG_ERR_FORMAT,
    ENG_ERR_UNSUPPORTED,
    ENG_ERR_NOMEM,
    ENG_ERR_ARG,
    ENG_ERR_CONTEXT_FULL,  /* the prompt does not fit the context */
    ENG_ERR_BACKEND,       /* the compute backend failed (device lost, ...) */
    ENG_ERR_CANCELLED,     /* the session's cancel flag stopped a feed (nothing was consumed) */
} eng_status;

typedef enum eng_backend_kind { ENG_BACKEND_AUTO = 0, ENG_BACKEND_CPU, ENG_BACKEND_VULKAN } eng_backend_kind;

/* ---- models ---- */

/* Open a GGUF model file (weights stay in the file's mapping). Caller releases it with
 * eng_model_close. On failure *out is NULL and err names the file and the problem. */
eng_status eng_model_open(const char *path, eng_model **out, char *err, size_t errlen);
/* Give up the caller's reference: the model is freed now if no session uses it, else when the
 * last of its sessions is freed (those sessions keep working meanwhile). The caller must not use
 * m afterwards, not even to open a new session. NULL is a no-op. */
void eng_model_close(eng_model *m);
const eng_hparams *eng_model_hparams(const eng_model *m);
const eng_vocab *eng_model_vocab(const eng_model *m);   /* borrowed until close */
const char *eng_model_name(const eng_model *m);
uint64_t eng_model_weight_bytes(const eng_model *m);
uint64_t eng_model_n_params(const eng_model *m);

/* ---- sessions ---- */

typedef struct eng_session_opts {
    uint32_t n_ctx;             /* 0: the model's own, capped at 4096 */
    eng_backend_kind backend;   /* AUTO: Vulkan when a device runs every tensor type of the
                                 * model, else the CPU (the stats' backend string says why);
                                 * the CPU too when the automatic device is a CPU driver
                                 * (lavapipe) and device is -1 (vk_auto_backend_is_cpu) */
    int device;                 /* Vulkan device index, -1 = automatic choice */
    int n_threads;              /* CPU backend: products are split into this many tasks for the
                                 * process's pool; 0 (or more) = eng_pool_threads() */
    eng_sampler_params sampling;
    bool context_shift;         /* when the context fills: drop the oldest half of what follows
                                 * the first n_keep tokens instead of stopping */
    uint32_t n_keep;            /* tokens kept at the start on a shift (the system prompt) */
    const atomic_int *cancel;   /* NULL, or a flag any thread may set (nonzero = stop): checked
                                 * before each batch of a feed and before each generated token.
                                 * Borrowed: must outlive the session. The session never clears
                                 * it; the owner does before the next request. */
    /* NULL, or told how far eng_session_new has come (done 0..1, rising) and at what step
     * ("starting the backend", "weights to the device", "kernels", "warm-up"; static text), on
     * the calling thread, between steps: a front end shows loading as loading, not as a hang.
     * Must not call into this session. */
    void (*progress)(void *user, float done, const char *step);
    void *progress_user;
} eng_session_opts;

/* Defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalties, the model's
 * context capped at 4096, automatic backend and device, no context shift. */
eng_session_opts eng_session_defaults(void);

typedef struct eng_session eng_session;
/* A session on m (which it keeps alive: see eng_model_close). Everything slow happens here,
 * timed as eng_stats.load_ms: see there. On failure *out is NULL and err says why. Caller frees
 * with eng_session_free. */
eng_status eng_session_new(eng_model *m, const eng_session_opts *o, eng_session **out,
                           char *err, size_t errlen);
void eng_session_free(eng_session *s);
/* The message of this session's last failed call (empty if none failed yet): always this
 * session's own, never another's. The text is stable until the next feed, generate, logits or
 * reset on this session (which may replace it) and the pointer until eng_session_free; copy it
 * to keep it longer. Read it on the thread that uses the session. */
const char *eng_session_errmsg(const eng_session *s);

/* Running statistics of a session, as shown in a stats line or a side-by-side pane. */
typedef struct eng_stats {
    uint32_t n_prompt;          /* prompt tokens processed (all feeds) */
    double prompt_ms;           /* time spent on them */
    double ttft_ms;             /* last generate: start of its prompt to first token out */
    uint32_t n_gen;             /* tokens generated by the last generate call */
    double gen_ms;              /* its generation time (first to last token) */
    double last_token_ms;
    double prompt_tps, gen_tps; /* tokens per second of each phase */
    uint32_t n_past, n_ctx;     /* context in use / size */
    uint32_t n_shifts;          /* context shifts so far */
    uint64_t mem_weights, mem_kv, mem_scratch;  /* bytes: this session's share, as allocated */
    uint64_t mem_host;          /* bytes: the whole process's resident memory (RSS, from
                                 * /proc/self/statm; 0 where unavailable) when the stats were
                                 * taken. Not this session's alone: shared weights, other
                                 * sessions and the program itself count too; weights of a
                                 * mapped file count once touched */
    double load_ms;             /* eng_session_new: starting the backend, the weights to the
                                 * device (the model's first session), pipeline creation and a
                                 * one-token warm-up decode (compiling what a driver compiles on
                                 * first use), so the figures above time only the tokens */
    const char *backend;        /* "vulkan: NAME (type)", "cpu", "cpu (Vulkan unavailable: why)";
                                 * borrowed until the session is freed */
} eng_stats;
void eng_session_stats(const eng_session *s, eng_stats *out);

/* Append prompt tokens to the context (processed in batches). ENG_ERR_CONTEXT_FULL when they do
 * not fit, ENG_ERR_CANCELLED when the session's cancel flag was set before a batch (nothing is
 * consumed then either; the logits of the last token before the feed are gone, so feed again
 * before generating). The time counts as prompt time. */
eng_status eng_session_feed(eng_session *s, const int32_t *tokens, size_t n);

typedef enum eng_stop_reason {
    ENG_STOP_NONE = 0,
    ENG_STOP_EOG,          /* the model ended its turn (EOS, EOT, ...) */
    ENG_STOP_STRING,       /* a stop string appeared (it is not emitted) */
    ENG_STOP_MAX_TOKENS,
    ENG_STOP_CANCELLED,    /* the cancel flag, or the callback returned false */
    ENG_STOP_CONTEXT_FULL, /* the context is full and context shift is off */
} eng_stop_reason;
const char *eng_stop_reason_str(eng_stop_reason r);

/* Called for each generated token, on the thread that called eng_session_generate: `text` is the
 * newly released text (complete UTF-8 only, stop strings held back until ruled out; may be
 * empty), `stats` the running figures (borrowed for the call). Return false to stop. */
typedef bool (*eng_token_fn)(void *user, int32_t token, const char *text, size_t len,
                             const eng_stats *stats);

typedef struct eng_generate_opts {
    int max_tokens;                  /* <= 0: until a stop */
    const char *const *stop_strings; /* extra stops (a chat template's), n_stop of them */
    size_t n_stop;
    const atomic_int *cancel;        /* NULL, or a flag any thread may set (nonzero = stop),
                                      * checked before each token as the session's is: at most one
                                      * token comes out after it is set */
} eng_generate_opts;

/* Sample and emit tokens after what has been fed, until a stop. Generated tokens join the
 * context (the next feed continues after them). A cancel (either flag, or the callback's false)
 * is a normal stop: ENG_OK with *why ENG_STOP_CANCELLED. */
eng_status eng_session_generate(eng_session *s, const eng_generate_opts *o, eng_token_fn fn,
                                void *user, eng_stop_reason *why);

/* Decode tokens at the end of the context and return their logits: n_vocab floats for the last
 * token, or n * n_vocab when all_positions. *logits is malloc'd (caller frees). */
eng_status eng_session_logits(eng_session *s, const int32_t *tokens, size_t n,
                              bool all_positions, float **logits);

/* Streaming-read bandwidth (GB/s) of the memory this session's backend reads weights from:
 * the host's with the session's thread count for the CPU backend, the device's measured by a
 * read kernel for Vulkan. Takes a fraction of a second; for benchmarks. */
double eng_session_read_bandwidth(eng_session *s);
double eng_host_read_gbps(int n_threads);

/* Forget the whole context (statistics of prompt/generation restart too; load_ms stays). */
void eng_session_reset(eng_session *s);

#endif
