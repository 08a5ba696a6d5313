/* `sizeup compare`: several models on the same prompts, as a labelled experiment. Each model
 * gets one session; for every prompt the scheduler (app/sched.c) runs one generation per model
 * and repeat, fair (one at a time, shuffled, after a warm-up) or concurrent (all at once on
 * threads), recording when each ran. Greedy by default, so the answers repeat and equal
 * `sizeup run`'s. The report writers live in app/compare_report.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "app/compare.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/strbuf.h"

#define CMD "compare"
#define MAX_MODELS 16

typedef struct cmp_opts {
    const char *refs[MAX_MODELS];
    int n_refs;
    const char *prompt, *file, *format, *device, *cacert;
    eng_session_opts so;
    bool help;
} cmp_opts;

static void usage(FILE *to)
{
    fprintf(to,
        "usage: sizeup compare MODEL MODEL... (-p TEXT | -f PROMPTS.txt) [-n N] [-r N]\n"
        "                      [--mode fair|concurrent] [--seed S] [-o md|json|csv]\n"
        "                      [--ppl TEXT [--ppl-ctx N]] [run's sampling flags]\n"
        "                      [-c CTX] [--backend vulkan|cpu] [--device N] [-t N]\n\n"
        "Run every MODEL on the same prompts and report, per model and prompt: the answer,\n"
        "time to first token, prompt and generation tokens/s (median ± standard deviation\n"
        "over -r repeats), memory (weights, KV cache, scratch; on the device or the host),\n"
        "parameters and bits per weight. Every speed is labelled with the mode it was\n"
        "measured in:\n"
        "  fair         one model at a time with the machine to itself, after a warm-up\n"
        "               round, in an order shuffled for every repeat from --seed (default)\n"
        "  concurrent   all models generate at once, each on its own thread: the slowdown\n"
        "               they cause each other is part of the figure\n"
        "Sampling is greedy (--temp 0) unless asked otherwise, so a comparison repeats and\n"
        "each answer equals `sizeup run -m MODEL -p TEXT -n N --temp 0`'s.\n\n"
        "  -p, --prompt TEXT     one prompt\n"
        "  -f, --file FILE       prompts, one per line (empty lines skipped)\n"
        "  -n, --n-predict N     tokens to generate per answer (default 64)\n"
        "  -r, --repeats N       measured repeats per model and prompt (default 3)\n"
        "  --mode M              fair or concurrent (default fair)\n"
        "  --seed S              shuffle order and sampling seed (default 42)\n"
        "  -o, --output F        md (Markdown report), json or csv; default: a side-by-side\n"
        "                        table on a terminal, Markdown otherwise\n"
        "  --ppl TEXT            also measure perplexity and bits per byte on the text file\n"
        "                        TEXT, as `sizeup perplexity` does (see its --help)\n"
        "  --ppl-ctx N           window for --ppl, the same for every model (default 512,\n"
        "                        capped at the smallest context the models were trained\n"
        "                        with; a larger N is measured, with a warning)\n"
        "  --temp T, --top-k K, --top-p P, --min-p P, --repeat-penalty R: as for run\n"
        "  -c, --ctx N           context length (default: the model's, capped at 4096)\n"
        "  --backend B           vulkan or cpu (default: Vulkan on a GPU that can run it, else\n"
        "                        the CPU, which is faster than a CPU Vulkan driver)\n"
        "  --device N            Vulkan device (default: $SIZEUP_DEVICE, else the best one)\n"
        "  -t, --threads N       CPU threads per model (default: all cores)\n"
        "  --cacert FILE         CA certificates (PEM) for a download over HTTPS\n"
        "  -h, --help            show this help\n");
}

/* One option with a value; 0 handled, 2 bad value, -1 not an option of compare. */
static int value_opt(cmp_opts *o, app_cmp *c, const char *a, const char *v)
{
    long long i;
    /* sampling lives on the comparison (one setting for every model), the rest on the session */
    o->so.sampling = c->sampling;
    int rc = !strcmp(a, "--seed") ? -1 : app_session_opt(CMD, a, v, &o->so, NULL);
    c->sampling = o->so.sampling;
    if (rc != -1)
        return rc;
#define INT(lo, hi) if (app_parse_int(CMD, a, v, lo, hi, &i)) return 2
    if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = v;
    else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->file = v;
    else if (!strcmp(a, "--device")) o->device = v;
    else if (!strcmp(a, "--cacert")) o->cacert = v;
    else if (!strcmp(a, "--ppl")) c->ppl_file = v;
    else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) { INT(1, 1000000); c->n_predict = (int)i; }
    else if (!strcmp(a, "-r") || !strcmp(a, "--repeats")) { INT(1, 100); c->reps = (int)i; }
    else if (!strcmp(a, "--ppl-ctx")) { INT(8, 1 << 20); c->ppl_ctx = (uint32_t)i; }
    else if (!strcmp(a, "--seed")) { if (app_parse_u64(CMD, a, v, &c->seed)) return 2; }
    else if (!strcmp(a, "--mode")) {
        if (!app_sched_mode_parse(v, &c->mode))
            return app_fail(CMD, "--mode '%s': expected fair or concurrent", v) + 1;
    } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
        if (strcmp(v, "md") && strcmp(v, "json") && strcmp(v, "csv"))
            return app_fail(CMD, "-o '%s': expected md, json or csv", v) + 1;
        o->format = v;
    } else
        return -1;
#undef INT
    return 0;
}

static int parse_args(int argc, char **argv, cmp_opts *o, app_cmp *c)
{
    o->so = eng_session_defaults();
    c->sampling = o->so.sampling;
    c->sampling.temperature = 0; /* greedy unless asked: a comparison should repeat */
    c->n_predict = 64;
    c->reps = 3;
    c->seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            o->help = true;
            return 0;
        }
        if (a[0] != '-' || !a[1]) {
            if (o->n_refs == MAX_MODELS)
                return app_fail(CMD, "at most %d models", MAX_MODELS) + 1;
            o->refs[o->n_refs++] = a;
            continue;
        }
        if (i + 1 >= argc)
            return app_fail(CMD, "%s: a value is missing, or the option is unknown", a) + 1;
        int r = value_opt(o, c, a, argv[i + 1]);
        if (r < 0)
            return app_fail(CMD, "unknown option '%s' (see sizeup compare --help)", a) + 1;
        if (r)
            return r;
        i++;
    }
    if (o->n_refs < 1)
        return app_fail(CMD, "no models given (sizeup compare MODEL MODEL... -p TEXT)") + 1;
    if (!o->prompt == !o->file)
        return app_fail(CMD, "give the prompt with -p TEXT or the prompts with -f FILE (one)") + 1;
    o->so.sampling = c->sampling;
    o->so.sampling.seed = c->seed;
    return app_device_index(CMD, o->device, &o->so.device);
}

/* Prompts: -p as is, or the non-empty lines of -f. */
static int load_prompts(const cmp_opts *o, app_cmp *c)
{
    if (o->prompt) {
        c->prompts = malloc(sizeof *c->prompts);
        if (!c->prompts || !(c->prompts[0] = strdup(o->prompt)))
            return app_fail(CMD, "out of memory");
        c->n_prompts = 1;
        return 0;
    }
    char *text;
    size_t len;
    if (app_read_text(CMD, "-f", o->file, &text, &len))
        return 1;
    c->prompts = calloc(len / 2 + 1, sizeof *c->prompts);
    for (char *line = text, *nl; c->prompts && line < text + len; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(text + len - line));
        if (!nl)
            nl = text + len;
        size_t n = (size_t)(nl - line);
        if (n && line[n - 1] == '\r')
            n--;
        if (n && !(c->prompts[c->n_prompts++] = strndup(line, n)))
            break;
    }
    free(text);
    if (!c->prompts || (c->n_prompts && !c->prompts[c->n_prompts - 1]))
        return app_fail(CMD, "out of memory");
    if (!c->n_prompts)
        return app_fail(CMD, "%s holds no prompt (one per line)", o->file);
    return 0;
}

static void describe(app_cmp_model *mm)
{
    const eng_model *m = mm->m;
    struct stat st;
    mm->file_bytes = stat(mm->path, &st) ? 0 : (uint64_t)st.st_size;
    mm->n_params = eng_model_n_params(m);
    mm->weight_bytes = eng_model_weight_bytes(m);
    mm->bits_per_weight = mm->n_params ? 8.0 * (double)mm->weight_bytes / (double)mm->n_params : 0;
    char name[128] = "";
    const char *base = strrchr(mm->path, '/');
    base = base ? base + 1 : mm->path;
    char arch[64] = "";
    gguf_get_cstr(m->file, "general.name", name, sizeof name);
    gguf_get_cstr(m->file, "general.architecture", arch, sizeof arch);
    /* Converters that know no better name the model after its architecture ("llama"): the
     * file name says more. */
    snprintf(mm->name, sizeof mm->name, "%s", *name && strcmp(name, arch) ? name : base);
    /* The quantization is the type most matrix weights are stored in (general.file_type is a
     * label a converter may have got wrong). */
    uint64_t by_type[GGUF_T_COUNT] = { 0 };
    uint32_t top = 0;
    for (int64_t i = 0; i < gguf_tensor_count(m->file); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->file, i);
        if (t->n_dims >= 2 && t->type < GGUF_T_COUNT && (by_type[t->type] += t->n_elems) > by_type[top])
            top = t->type;
    }
    snprintf(mm->quant, sizeof mm->quant, "%s", gguf_type_get(top)->name);
    eng_stats s;
    eng_session_stats(mm->s, &s);
    snprintf(mm->backend, sizeof mm->backend, "%s", s.backend);
    mm->mem_weights = s.mem_weights;
    mm->mem_kv = s.mem_kv;
    mm->mem_scratch = s.mem_scratch;
    uint64_t sum = s.mem_weights + s.mem_kv + s.mem_scratch;
    bool dev = !strncmp(s.backend, "vulkan", 6);
    mm->mem_device = dev ? sum : 0;
    mm->mem_host = dev ? 0 : sum;
}

/* A served model: its handle, and what the endpoint says about itself (the listing names the
 * server's kind); no engine, so no parameters, quantization or memory of ours. */
static int open_remote(const cmp_opts *o, app_cmp_model *mm)
{
    dl_remote_opts ro = { .cacert = o->cacert };
    if (dl_remote_open(mm->ref, &ro, &mm->r) != DL_OK || !dl_remote_model(mm->r))
        return app_fail(CMD, "%s", !mm->r ? "out of memory" : *dl_remote_errmsg(mm->r) ?
                        dl_remote_errmsg(mm->r) : "a remote model needs a name: URL#MODEL or "
                        "@NAME/MODEL (sizeup list --remote lists them)");
    mm->remote = true;
    dl_remote_model_info *l;
    size_t n;
    if (dl_remote_models(mm->r, &l, &n) == DL_OK)
        dl_remote_models_free(l, n);
    mm->path = strdup(dl_remote_base_url(mm->r));
    if (!mm->path)
        return app_fail(CMD, "out of memory");
    snprintf(mm->name, sizeof mm->name, "%s", dl_remote_model(mm->r));
    snprintf(mm->quant, sizeof mm->quant, "remote");
    snprintf(mm->backend, sizeof mm->backend, "remote: %s at %s", dl_remote_server_kind(mm->r),
             dl_remote_host(mm->r));
    return 0;
}

/* Two quantizations of one model share a general.name, and one served model may be asked of two
 * servers: every model whose name another one shares is labelled by its file name, or a served
 * one by host:port/model. All of them are found before any is renamed (renaming one would
 * leave its twin unique, and labelled by the shared name). Labels still equal after that (the
 * same file name in two folders) get " #N", N the model's place on the command line. */
static void label_duplicates(app_cmp *c)
{
    bool dup[MAX_MODELS] = { false };
    for (int j = 0; j < c->n_models; j++)
        for (int k = 0; k < c->n_models && !dup[j]; k++)
            dup[j] = j != k && !strcmp(c->models[j].name, c->models[k].name);
    for (int j = 0; j < c->n_models; j++) {
        app_cmp_model *mm = &c->models[j];
        const char *b = strrchr(mm->path, '/');
        if (dup[j] && mm->remote)
            snprintf(mm->name, sizeof mm->name, "%s/%s", dl_remote_host(mm->r),
                     dl_remote_model(mm->r));
        else if (dup[j])
            snprintf(mm->name, sizeof mm->name, "%s", b ? b + 1 : mm->path);
    }
    for (int j = 0; j < c->n_models; j++)
        for (int k = 0; k < j; k++)
            if (!strcmp(c->models[j].name, c->models[k].name)) {
                char tag[16];
                snprintf(tag, sizeof tag, " #%d", j + 1);
                size_t n = strlen(c->models[j].name), room = sizeof c->models[j].name - 1;
                size_t at = n + strlen(tag) <= room ? n : room - strlen(tag);
                memcpy(c->models[j].name + at, tag, strlen(tag) + 1);
                break;
            }
}

static int open_models(const cmp_opts *o, app_cmp *c)
{
    c->models = calloc((size_t)o->n_refs, sizeof *c->models);
    if (!c->models)
        return app_fail(CMD, "out of memory");
    for (int j = 0; j < o->n_refs; j++) {
        app_cmp_model *mm = &c->models[j];
        char err[512];
        int rc;
        mm->ref = o->refs[j];
        c->n_models = j + 1;
        if (app_is_remote_ref(mm->ref)) {
            if ((rc = open_remote(o, mm)))
                return rc;
            continue;
        }
        if ((rc = app_model_path(CMD, mm->ref, o->cacert, &mm->path)))
            return rc;
        if (eng_model_open(mm->path, &mm->m, err, sizeof err))
            return app_fail(CMD, "%s", err);
        if (eng_session_new(mm->m, &o->so, &mm->s, err, sizeof err))
            return app_fail(CMD, "%s: %s", mm->ref, err);
        describe(mm);
    }
    label_duplicates(c);
    c->same_vocab = true;  /* a server's vocabulary is not known here */
    for (int j = 1; j < c->n_models; j++)
        c->same_vocab &= !c->models[0].remote && !c->models[j].remote &&
                         app_vocab_same(eng_model_vocab(c->models[0].m),
                                        eng_model_vocab(c->models[j].m));
    return 0;
}

/* ---- one generation: the scheduler's job ---- */

typedef struct gen_text {
    strbuf text;
    bool keep;
} gen_text;

static bool on_token(void *user, int32_t token, const char *text, size_t len, const eng_stats *st)
{
    gen_text *g = user;
    (void)token;
    (void)st;
    return !g->keep || !len || strbuf_put(&g->text, text, len);
}

typedef struct job_ctx {
    app_cmp *c;
    int prompt;
    int32_t **ids;    /* (n_models) the prompt tokenized by each model, BOS first */
    size_t *n_ids;
    char **errs;      /* (n_models) first failure of each job; malloc'd */
} job_ctx;

static eng_stop_reason remote_stop(dl_remote_finish f)
{
    return f == DL_REMOTE_FINISH_STOP ? ENG_STOP_EOG : f == DL_REMOTE_FINISH_LENGTH ?
           ENG_STOP_MAX_TOKENS : f == DL_REMOTE_FINISH_CANCELLED ? ENG_STOP_CANCELLED :
           ENG_STOP_NONE;
}

/* One answer from a served model: the prompt as a completion (as the local models get it, raw),
 * with the comparison's sampling. The scheduler serialises it with the rest in fair mode. */
static int run_remote_job(job_ctx *x, int j, int rep)
{
    app_cmp *c = x->c;
    app_cmp_model *mm = &c->models[j];
    app_cmp_cell *cell = app_cmp_cell_at(c, x->prompt, j);
    dl_remote_request q = { .mode = DL_REMOTE_COMPLETION, .prompt = c->prompts[x->prompt] };
    q.sampling = dl_remote_sampling_unset();
    q.sampling.temperature = c->sampling.temperature;
    q.sampling.max_tokens = c->n_predict;
    q.sampling.has_seed = true;
    q.sampling.seed = c->seed;
    dl_remote_finish why;
    if (dl_remote_generate(mm->r, &q, NULL, NULL, &why)) {
        x->errs[j] = strdup(dl_remote_errmsg(mm->r));
        return 1;
    }
    if (rep < 0)
        return 0;
    dl_remote_stats st;
    dl_remote_stats_get(mm->r, &st);
    cell->ttft_ms[rep] = st.ttft_ms;
    cell->srv_pp_tps[rep] = st.has_timings ? st.srv_prompt_tps : 0;
    cell->tg_tps[rep] = st.gen_tps;
    if (rep == 0) {
        const char *a = dl_remote_answer(mm->r);
        cell->answer = strdup(a ? a : "");
        cell->answer_len = cell->answer ? strlen(cell->answer) : 0;
        cell->n_prompt = st.n_prompt;
        cell->has_n_prompt = st.n_prompt > 0;  /* usage sent */
        cell->has_srv_pp = st.has_timings;
        cell->has_tg = st.n_gen >= 2;
        cell->n_gen = st.n_gen;
        cell->approx = st.gen_approx;
        cell->stop = remote_stop(why);
        cell->stop_str = dl_remote_finish_str(why);
    }
    return 0;
}

static int run_job(void *user, int j, int rep)
{
    job_ctx *x = user;
    app_cmp_model *mm = &x->c->models[j];
    if (mm->remote)
        return run_remote_job(x, j, rep);
    app_cmp_cell *cell = app_cmp_cell_at(x->c, x->prompt, j);
    eng_session_reset(mm->s);
    gen_text g = { .keep = rep == 0 };
    eng_generate_opts go = { x->c->n_predict, NULL, 0, NULL };
    eng_stop_reason why = ENG_STOP_NONE;
    if (eng_session_feed(mm->s, x->ids[j], x->n_ids[j]) ||
        eng_session_generate(mm->s, &go, on_token, &g, &why)) {
        strbuf_free(&g.text);
        x->errs[j] = strdup(eng_session_errmsg(mm->s));
        return 1;
    }
    if (rep < 0) {
        strbuf_free(&g.text);
        return 0;
    }
    eng_stats st;
    eng_session_stats(mm->s, &st);
    cell->ttft_ms[rep] = st.ttft_ms;
    cell->pp_tps[rep] = st.prompt_tps;
    cell->tg_tps[rep] = st.gen_tps;
    if (rep == 0) {
        cell->answer_len = g.text.len;
        cell->answer = g.text.p ? strbuf_take(&g.text) : strdup("");
        cell->n_prompt = st.n_prompt;
        cell->has_n_prompt = cell->has_pp = true;
        cell->has_tg = st.n_gen >= 2;
        cell->n_gen = st.n_gen;
        cell->stop = why;
        cell->stop_str = eng_stop_reason_str(why);
    }
    return 0;
}

static int alloc_cells(app_cmp *c)
{
    c->cells = calloc((size_t)c->n_prompts * (size_t)c->n_models, sizeof *c->cells);
    c->spans = calloc((size_t)c->n_prompts * (size_t)c->reps * (size_t)c->n_models,
                      sizeof *c->spans);
    if (!c->cells || !c->spans)
        return app_fail(CMD, "out of memory");
    for (size_t i = 0; i < (size_t)c->n_prompts * (size_t)c->n_models; i++) {
        app_cmp_cell *cell = &c->cells[i];
        cell->ttft_ms = calloc((size_t)c->reps, sizeof(double));
        cell->pp_tps = calloc((size_t)c->reps, sizeof(double));
        cell->tg_tps = calloc((size_t)c->reps, sizeof(double));
        cell->srv_pp_tps = calloc((size_t)c->reps, sizeof(double));
        if (!cell->ttft_ms || !cell->pp_tps || !cell->tg_tps || !cell->srv_pp_tps)
            return app_fail(CMD, "out of memory");
    }
    return 0;
}

static int run_prompt(app_cmp *c, int p, uint64_t *rng)
{
    int n = c->n_models, rc = 0;
    int32_t *ids[MAX_MODELS] = { 0 };
    size_t n_ids[MAX_MODELS] = { 0 };
    char *errs[MAX_MODELS] = { 0 };
    for (int j = 0; j < n && !rc; j++)
        if (!c->models[j].remote && eng_tokenize(eng_model_vocab(c->models[j].m), c->prompts[p], strlen(c->prompts[p]),
                         true, false, &ids[j], &n_ids[j]) != ENG_TOK_OK)
            rc = app_fail(CMD, "out of memory tokenizing prompt %d", p + 1);
    job_ctx x = { c, p, ids, n_ids, errs };
    fprintf(stderr, "[sizeup] prompt %d/%d: %d model(s) x %d repeat(s), %s mode\n", p + 1,
            c->n_prompts, n, c->reps, app_sched_mode_name(c->mode));
    if (!rc && app_sched_run(c->mode, n, c->reps, p == 0, rng, run_job, &x,
                             c->spans + c->n_spans)) {
        rc = 1;
        bool said = false;
        for (int j = 0; j < n; j++)
            if (errs[j])
                said = app_fail(CMD, "%s: %s", c->models[j].ref, errs[j]);
        if (!said)
            app_fail(CMD, "could not start a thread per model (or out of memory)");
    }
    if (!rc)
        c->n_spans += (size_t)c->reps * (size_t)n;
    for (int j = 0; j < n; j++) {
        free(ids[j]);
        free(errs[j]);
    }
    return rc;
}

static void summarise(app_cmp *c)
{
    for (size_t i = 0; i < (size_t)c->n_prompts * (size_t)c->n_models; i++) {
        app_cmp_cell *cell = &c->cells[i];
        cell->ttft = app_stat_of(cell->ttft_ms, c->reps);
        cell->pp = app_stat_of(cell->pp_tps, c->reps);
        cell->tg = app_stat_of(cell->tg_tps, c->reps);
        cell->srv_pp = app_stat_of(cell->srv_pp_tps, c->reps);
    }
    struct rusage ru;
    if (!getrusage(RUSAGE_SELF, &ru))
        c->peak_rss = (uint64_t)ru.ru_maxrss * 1024;
}

/* One window for every model, or the figures would not compare: --ppl-ctx, else 512 capped at
 * the smallest trained context among the local models. A --ppl-ctx past a model's trained
 * context is measured, with a warning (and the reports mark that model's perplexity). */
static void ppl_window(app_cmp *c)
{
    const eng_model *ms[MAX_MODELS];
    int n = 0;
    for (int j = 0; j < c->n_models; j++)
        if (!c->models[j].remote)
            ms[n++] = c->models[j].m;
    if (!c->ppl_ctx) {
        c->ppl_ctx = app_ppl_default_ctx(ms, n, &c->ppl_ctx_capped);
        if (c->ppl_ctx_capped)
            fprintf(stderr, "[sizeup] perplexity windows of %u tokens for every model: the "
                    "shortest context one of them was trained with (not %d)\n", c->ppl_ctx,
                    APP_PPL_CTX_DEFAULT);
        return;
    }
    char what[40];
    snprintf(what, sizeof what, "--ppl-ctx %u", c->ppl_ctx);
    for (int j = 0; j < n; j++)
        app_ctx_warn(CMD, ms[j], c->ppl_ctx, what);
}

static int measure_ppl(app_cmp *c, const eng_session_opts *so)
{
    char *text;
    size_t len;
    if (!c->ppl_file)
        return 0;
    if (app_read_text(CMD, "--ppl", c->ppl_file, &text, &len))
        return 1;
    ppl_window(c);
    int rc = 0;
    for (int j = 0; j < c->n_models && !rc; j++) {
        app_cmp_model *mm = &c->models[j];
        if (mm->remote) {  /* a server sends no logits for the text: nothing to score */
            fprintf(stderr, "[sizeup] %s: a remote model has no perplexity here\n", mm->ref);
            continue;
        }
        fprintf(stderr, "[sizeup] perplexity of %s on %s (windows of %u)\n", mm->ref,
                c->ppl_file, c->ppl_ctx);
        rc = app_ppl_run(CMD, mm->m, NULL, text, len, c->ppl_ctx, so, &mm->ppl);
        mm->has_ppl = !rc;
    }
    free(text);
    return rc;
}

static void free_cmp(app_cmp *c)
{
    for (int j = 0; c->models && j < c->n_models; j++) {
        app_cmp_model *mm = &c->models[j];
        app_ppl_free(&mm->ppl);
        eng_session_free(mm->s);
        eng_model_close(mm->m);
        dl_remote_close(mm->r);
        free(mm->path);
    }
    for (size_t i = 0; c->cells && i < (size_t)c->n_prompts * (size_t)c->n_models; i++) {
        free(c->cells[i].answer);
        free(c->cells[i].ttft_ms);
        free(c->cells[i].pp_tps);
        free(c->cells[i].tg_tps);
        free(c->cells[i].srv_pp_tps);
    }
    for (int p = 0; c->prompts && p < c->n_prompts; p++)
        free(c->prompts[p]);
    free(c->prompts);
    free(c->cells);
    free(c->spans);
    free(c->models);
}

int app_cmd_compare(int argc, char **argv)
{
    cmp_opts o = { 0 };
    app_cmp c = { 0 };
    int rc = parse_args(argc, argv, &o, &c);
    if (rc || o.help) {
        if (o.help)
            usage(stdout);
        return rc;
    }
    app_cmp_format fmt = !o.format ? (isatty(STDOUT_FILENO) ? APP_CMP_TERM : APP_CMP_MD)
                         : !strcmp(o.format, "json") ? APP_CMP_JSON
                         : !strcmp(o.format, "csv") ? APP_CMP_CSV : APP_CMP_MD;
    uint64_t rng = c.seed;
    if (!(rc = load_prompts(&o, &c)) && !(rc = open_models(&o, &c)) && !(rc = alloc_cells(&c))) {
        c.t0 = app_now_s();
        for (int p = 0; p < c.n_prompts && !rc; p++)
            rc = run_prompt(&c, p, &rng);
        summarise(&c);
        if (!rc && !(rc = measure_ppl(&c, &o.so))) {
            int width = 100;
            struct winsize ws;
            if (!ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_col >= 40)
                width = ws.ws_col;
            app_cmp_write(&c, fmt, width, stdout);
        }
    }
    free_cmp(&c);
    return rc;
}
