/* A comparison of several models on the same prompts (`sizeup compare`; later the TUI's size
 * view): what was run, in which scheduling mode, and every figure measured, as plain structs,
 * plus the writers that turn it into a terminal table, a Markdown report, JSON or CSV. */
#ifndef SIZEUP_APP_COMPARE_H
#define SIZEUP_APP_COMPARE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "app/ppl.h"
#include "app/sched.h"
#include "downloads/dl_remote.h"
#include "engine/engine.h"

/* Median and spread of one figure over the repeats. */
typedef struct app_stat {
    double median, stddev, min, max;
} app_stat;
app_stat app_stat_of(const double *v, int n);

typedef struct app_cmp_model {
    const char *ref;          /* as given on the command line (borrowed from argv) */
    char *path;               /* local file; a remote model's base URL (no user:password) */
    dl_remote *r;             /* a served model (URL#MODEL, @NAME/MODEL), else NULL: no
                               * engine, memory "remote", times include the network */
    bool remote;
    eng_model *m;
    eng_session *s;
    char name[128], quant[32];
    char backend[256];
    uint64_t file_bytes, n_params, weight_bytes;
    double bits_per_weight;
    uint64_t mem_weights, mem_kv, mem_scratch;
    uint64_t mem_device, mem_host; /* device: the three above on Vulkan, else 0; host: the
                                    * three on the CPU backend (weights are the file mapping),
                                    * else the host copy the backend keeps (0) */
    bool has_ppl;
    app_ppl_result ppl;
} app_cmp_model;

/* One model on one prompt. */
typedef struct app_cmp_cell {
    char *answer;             /* the first repeat's text; malloc'd */
    size_t answer_len;
    uint32_t n_prompt, n_gen;
    eng_stop_reason stop;
    const char *stop_str;     /* why it stopped, in the words run and chat use for the same
                               * event (a served model's: dl_remote_finish_str); static */
    bool approx;              /* remote: n_gen counted from chunks (no usage sent) */
    /* Figures not measured are unknown, never 0: the reports show "-" (null in JSON, an empty
     * CSV field). A served model's prompt tokens are known when it sent usage; its prompt speed
     * cannot be measured from here at all (the first token's time mixes it with the network and
     * the queue), so pp is unknown and the server's own figure, when it sends one
     * (llama-server's timings), is kept apart in srv_pp. Generation speed needs two tokens. */
    bool has_n_prompt, has_pp, has_tg, has_srv_pp;
    double *ttft_ms, *pp_tps, *tg_tps;    /* (reps) measured here; remote: network included */
    double *srv_pp_tps;       /* (reps) the server's own prompt tokens/s (has_srv_pp) */
    app_stat ttft, pp, tg, srv_pp;
} app_cmp_cell;

typedef struct app_cmp {
    app_sched_mode mode;
    uint64_t seed;
    int n_predict, reps;
    eng_sampler_params sampling;
    uint32_t ppl_ctx;         /* the --ppl window, one for every model (fairness) */
    bool ppl_ctx_capped;      /* no --ppl-ctx: 512 capped at the smallest trained context */
    const char *ppl_file;     /* --ppl TEXT or NULL */
    bool same_vocab;          /* every model has the same vocabulary */
    int n_models, n_prompts;
    app_cmp_model *models;    /* (n_models) */
    char **prompts;           /* (n_prompts) */
    app_cmp_cell *cells;      /* (n_prompts * n_models): prompt p, model j at p * n_models + j */
    app_sched_span *spans;    /* (n_prompts * reps * n_models), prompt by prompt */
    size_t n_spans;
    double t0;                /* app_now_s() at the start; spans are reported relative */
    uint64_t peak_rss;        /* the process's, all models together (bytes) */
} app_cmp;

static inline app_cmp_cell *app_cmp_cell_at(const app_cmp *c, int prompt, int model)
{
    return &c->cells[(size_t)prompt * (size_t)c->n_models + (size_t)model];
}

typedef enum app_cmp_format { APP_CMP_TERM, APP_CMP_MD, APP_CMP_JSON, APP_CMP_CSV } app_cmp_format;

/* Write the report. width: the terminal's columns for APP_CMP_TERM. */
void app_cmp_write(const app_cmp *c, app_cmp_format fmt, int width, FILE *to);

/* Model text made safe to show: control characters (C0 but newline and tab, DEL, C1, the bidi
 * embeddings, overrides and isolates) and
 * invalid UTF-8 removed, tab as a space; newline kept when keep_nl, else a space. Never
 * NULL-terminated beyond len+1; caller frees. */
char *app_text_clean(const char *s, size_t len, bool keep_nl);

/* One row of the TUI's size view per model: the medians over every prompt of a comparison. */
typedef struct app_size_row {
    const char *name, *quant, *mode;      /* borrowed from the app_cmp */
    uint64_t n_params, file_bytes, mem_bytes;
    double bits_per_weight;
    double pp_tps, tg_tps, ttft_ms;       /* medians, measured in `mode` */
    double bits_per_byte;                 /* < 0: not measured */
    bool remote;                          /* mem_bytes unknown; times include the network */
} app_size_row;
/* rows: n_models entries, caller allocates. */
void app_cmp_size_rows(const app_cmp *c, app_size_row *rows);

#endif
