/* The writers of a comparison (app/compare.h): a side-by-side table for a terminal, a Markdown
 * report, JSON and CSV. Model text is untrusted: it is cleaned of control characters before it
 * reaches a terminal or a file, and escaped so it cannot end a Markdown table cell, a CSV field
 * or a JSON string early. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app/app.h"
#include "app/compare.h"
#include "engine/utf8.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

app_stat app_stat_of(const double *v, int n)
{
    app_stat s = { 0 };
    if (n <= 0)
        return s;
    double *t = malloc((size_t)n * sizeof *t), sum = 0, sq = 0;
    if (!t)
        return s;
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    s.median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
    s.min = t[0];
    s.max = t[n - 1];
    for (int i = 0; i < n; i++)
        sum += t[i];
    double mean = sum / n;
    for (int i = 0; i < n; i++)
        sq += (t[i] - mean) * (t[i] - mean);
    s.stddev = n > 1 ? sqrt(sq / (n - 1)) : 0;
    free(t);
    return s;
}

char *app_text_clean(const char *s, size_t len, bool keep_nl)
{
    char *out = malloc(len + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t k = utf8_seq_len(u, len - i);
        if (!k) { /* invalid byte: dropped */
            i++;
            continue;
        }
        /* C1 and the bidi embeddings, overrides and isolates are dropped */
        bool c1 = k > 1 && utf8_is_control(u, k);
        if (k == 1 && utf8_is_control(u, k)) {
            if (u[0] == '\t' || (u[0] == '\n' && !keep_nl) || u[0] == '\r')
                out[o++] = ' ';
            else if (u[0] == '\n')
                out[o++] = '\n';
        } else if (!c1) {
            memcpy(out + o, u, k);
            o += k;
        }
        i += k;
    }
    out[o] = 0;
    return out;
}

static const char *fmt_b(uint64_t b, char *buf)
{
    return b ? app_fmt_bytes(b, buf, 16) : "-";
}

/* ---- Markdown ---- */

/* A table cell: cleaned, newlines as <br>, Markdown and HTML specials escaped. */
static void md_cell(FILE *to, const char *s, size_t len)
{
    char *t = app_text_clean(s, len, true);
    for (const char *p = t; p && *p; p++) {
        switch (*p) {
        case '\n': fputs("<br>", to); break;
        case '<': fputs("&lt;", to); break;
        case '>': fputs("&gt;", to); break;
        case '&': fputs("&amp;", to); break;
        case '|': case '\\': case '`': case '*': case '_': case '[': case ']': case '#':
            fputc('\\', to);
            fputc(*p, to);
            break;
        default: fputc(*p, to);
        }
    }
    free(t);
}

static void md_row(FILE *to, const app_cmp *c, const char *label, int prompt,
                   void (*cell)(FILE *, const app_cmp *, int, int))
{
    fprintf(to, "| %s |", label);
    for (int j = 0; j < c->n_models; j++) {
        fputc(' ', to);
        cell(to, c, prompt, j);
        fputs(" |", to);
    }
    fputc('\n', to);
}

#define CELL(name, ...) \
    static void name(FILE *to, const app_cmp *c, int p, int j) \
    { \
        const app_cmp_model *m = &c->models[j]; \
        const app_cmp_cell *x = p >= 0 ? app_cmp_cell_at(c, p, j) : NULL; \
        char b[16]; \
        (void)m; (void)x; (void)b; \
        __VA_ARGS__; \
    }

CELL(c_file, const char *s = m->remote ? NULL : strrchr(m->path, '/'); md_cell(to, s ? s + 1 : m->path, strlen(s ? s + 1 : m->path)))
/* A served model has no parameters, file or memory of ours: "-" and "remote", never a guess. */
#define LOCAL(...) if (m->remote) fputs("-", to); else { __VA_ARGS__; }
#define MEM(v) if (m->remote) fputs("remote", to); else fputs(fmt_b(v, b), to)
/* its times are measured here, over HTTP: marked so */
#define NET if (m->remote) fputs(" (net)", to)
CELL(c_params, LOCAL(fputs(app_fmt_count(m->n_params, b, sizeof b), to)))
CELL(c_quant, fputs(m->quant, to))
CELL(c_bpw, LOCAL(fprintf(to, "%.2f", m->bits_per_weight)))
CELL(c_fsize, LOCAL(fputs(fmt_b(m->file_bytes, b), to)))
CELL(c_mw, MEM(m->mem_weights))
CELL(c_mkv, MEM(m->mem_kv))
CELL(c_msc, MEM(m->mem_scratch))
CELL(c_mdev, MEM(m->mem_device))
CELL(c_mhost, MEM(m->mem_host))
CELL(c_backend, md_cell(to, m->backend, strlen(m->backend)))
/* a window past the model's trained context is marked where the figure is */
#define OVER(m) ((m)->has_ppl && (m)->ppl.over_train)
CELL(c_ppl, if (m->has_ppl) fprintf(to, "%.4f ± %.4f%s", m->ppl.ppl, m->ppl.ppl_err, OVER(m) ? " (past its trained context)" : ""); else fputs("-", to))
CELL(c_bpb, if (m->has_ppl) fprintf(to, "%.4f", m->ppl.bits_per_byte); else fputs("-", to))
CELL(c_answer, md_cell(to, x->answer, x->answer_len))
/* unknown figures are "-", never 0 */
CELL(c_ntok, if (x->has_n_prompt) fprintf(to, "%u", x->n_prompt); else fputs("-", to);
     fprintf(to, " / %s%u", x->approx ? "~" : "", x->n_gen))
CELL(c_stop, fputs(x->stop_str ? x->stop_str : "-", to))
CELL(c_ttft, if (!x->n_gen) fputs("-", to); else { fprintf(to, "%.1f ± %.1f", x->ttft.median, x->ttft.stddev); NET; })
/* a served model's prompt speed cannot be measured here: "-", and the server's own figure
 * beside it, labelled as the server's */
CELL(c_pp, if (x->has_pp) fprintf(to, "%.1f ± %.1f", x->pp.median, x->pp.stddev); else fputs("-", to);
     if (x->has_srv_pp) fprintf(to, " (server's own: %.1f)", x->srv_pp.median))
CELL(c_tg, if (!x->has_tg) fputs("-", to); else { fprintf(to, "%.1f ± %.1f", x->tg.median, x->tg.stddev); NET; })

/* Where served models take part, what their figures are. */
static void remote_sentence(const app_cmp *c, FILE *to)
{
    for (int j = 0; j < c->n_models; j++)
        if (c->models[j].remote) {
            fputs("\nRemote models (memory \"remote\", speeds marked (net)) answered over HTTP: "
                  "their times are measured here and include the network, their memory is the "
                  "server's and not shown, their prompt speed cannot be measured from here (\"-\"; "
                  "the server's own figure beside it when it sends one), and "
                  "a token count marked ~ was counted from the stream's chunks. In fair mode "
                  "their requests were serialised with the other models' like any job.\n", to);
            return;
        }
}

#define NET_S(j) (c->models[j].remote ? " (net)" : "")

static void mode_sentence(const app_cmp *c, FILE *to)
{
    if (c->mode == APP_SCHED_FAIR)
        fprintf(to, "**fair** mode: one model at a time with the machine to itself, after a "
                "warm-up round, in an order shuffled for every repeat (seed %llu)",
                (unsigned long long)c->seed);
    else
        fprintf(to, "**concurrent** mode: all models generating at once, one thread each, so "
                "each speed includes the slowdown the others cause");
}

static void sampling_sentence(const app_cmp *c, FILE *to)
{
    if (c->sampling.temperature == 0)
        fprintf(to, "greedy (temperature 0)");
    else
        fprintf(to, "temperature %.2f, top-k %d, top-p %.2f, min-p %.2f, seed %llu",
                c->sampling.temperature, c->sampling.top_k, c->sampling.top_p,
                c->sampling.min_p, (unsigned long long)c->seed);
}

static void write_md(const app_cmp *c, FILE *to)
{
    char lab[96];
    const char *mode = app_sched_mode_name(c->mode);
    fprintf(to, "# sizeup compare\n\n%d models, %d prompt%s, ", c->n_models, c->n_prompts,
            c->n_prompts == 1 ? "" : "s");
    sampling_sentence(c, to);
    fprintf(to, ", up to %d tokens per answer, %d measured repeat%s; ", c->n_predict, c->reps,
            c->reps == 1 ? "" : "s");
    mode_sentence(c, to);
    fprintf(to, ". Speeds are median ± standard deviation over the repeats, measured in %s "
            "mode.\n\n## Models\n\n|  |", mode);
    for (int j = 0; j < c->n_models; j++) {
        fputc(' ', to);
        md_cell(to, c->models[j].name, strlen(c->models[j].name));
        fputs(" |", to);
    }
    fputs("\n| --- |", to);
    for (int j = 0; j < c->n_models; j++)
        fputs(" ---: |", to);
    fputc('\n', to);
    md_row(to, c, "file", -1, c_file);
    md_row(to, c, "parameters", -1, c_params);
    md_row(to, c, "quantization", -1, c_quant);
    md_row(to, c, "bits per weight", -1, c_bpw);
    md_row(to, c, "file size", -1, c_fsize);
    md_row(to, c, "memory: weights", -1, c_mw);
    md_row(to, c, "memory: KV cache", -1, c_mkv);
    md_row(to, c, "memory: scratch", -1, c_msc);
    md_row(to, c, "peak device memory", -1, c_mdev);
    md_row(to, c, "peak host memory", -1, c_mhost);
    if (c->ppl_file) {
        snprintf(lab, sizeof lab, "perplexity (c%u)", c->ppl_ctx);
        md_row(to, c, lab, -1, c_ppl);
        md_row(to, c, "bits per byte", -1, c_bpb);
    }
    md_row(to, c, "backend", -1, c_backend);
    char rss[16];
    fprintf(to, "\nDevice and host memory are what each model's session allocates (weights, "
            "KV cache, scratch: fixed for the session's life, so also its peak); the whole "
            "process peaked at %s resident, all models together.",
            app_fmt_bytes(c->peak_rss, rss, sizeof rss));
    remote_sentence(c, to);
    if (c->ppl_file) {
        fputs(" Perplexity and bits per byte on ", to);
        md_cell(to, c->ppl_file, strlen(c->ppl_file));
        fprintf(to, ", as `sizeup perplexity` computes them, in windows of %u tokens for every "
                "model", c->ppl_ctx);
        if (c->ppl_ctx_capped)
            fprintf(to, " (the shortest context one of them was trained with, not %d)",
                    APP_PPL_CTX_DEFAULT);
        fputs(".", to);
        for (int j = 0; j < c->n_models; j++)
            if (OVER(&c->models[j])) {
                fputs(" **Windows longer than a model's trained context** (marked \"past its "
                      "trained context\"): its perplexity there understates it.", to);
                break;
            }
        if (!c->same_vocab)
            fputs(" **The vocabularies differ**: per-token perplexities are not comparable "
                  "between these models; compare bits per byte.", to);
    }
    fputc('\n', to);
    for (int p = 0; p < c->n_prompts; p++) {
        fprintf(to, "\n## Prompt %d\n\n> ", p + 1);
        md_cell(to, c->prompts[p], strlen(c->prompts[p]));
        fputs("\n\n|  |", to);
        for (int j = 0; j < c->n_models; j++) {
            fputc(' ', to);
            md_cell(to, c->models[j].name, strlen(c->models[j].name));
            fputs(" |", to);
        }
        fputs("\n| --- |", to);
        for (int j = 0; j < c->n_models; j++)
            fputs(" --- |", to);
        fputc('\n', to);
        md_row(to, c, "answer", p, c_answer);
        md_row(to, c, "tokens: prompt / generated", p, c_ntok);
        md_row(to, c, "stop", p, c_stop);
        snprintf(lab, sizeof lab, "time to first token, ms (%s)", mode);
        md_row(to, c, lab, p, c_ttft);
        snprintf(lab, sizeof lab, "prompt tokens/s (%s)", mode);
        md_row(to, c, lab, p, c_pp);
        snprintf(lab, sizeof lab, "generation tokens/s (%s)", mode);
        md_row(to, c, lab, p, c_tg);
    }
}

/* ---- JSON ---- */

static json_t *stat_json(app_stat s, const double *v, int n)
{
    if (!v)  /* not measured */
        return json_null();
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return json_pack("{s:f, s:f, s:f, s:f, s:o}", "median", s.median, "stddev", s.stddev, "min",
                     s.min, "max", s.max, "samples", a);
}

static json_t *model_json(const app_cmp *c, const app_cmp_model *m)
{
    if (m->remote)
        return json_pack("{s:s, s:s, s:s, s:b, s:b, s:s, s:s}", "ref", m->ref, "path", m->path,
                         "name", m->name, "remote", 1, "network_inclusive", 1, "backend",
                         m->backend, "memory", "remote");
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I}",
                          "ref", m->ref, "path", m->path, "name", m->name, "quant", m->quant,
                          "n_params", (json_int_t)m->n_params, "file_bytes",
                          (json_int_t)m->file_bytes, "bits_per_weight", m->bits_per_weight,
                          "weight_bytes", (json_int_t)m->weight_bytes, "mem_weights",
                          (json_int_t)m->mem_weights, "mem_kv", (json_int_t)m->mem_kv,
                          "mem_scratch", (json_int_t)m->mem_scratch, "mem_device",
                          (json_int_t)m->mem_device, "mem_host", (json_int_t)m->mem_host);
    if (!o)
        return NULL;
    json_object_set_new(o, "backend", json_string(m->backend));
    if (m->has_ppl)
        json_object_set_new(o, "perplexity", json_pack("{s:i, s:I, s:I, s:f, s:f, s:I, s:f, s:o, s:b}",
            "n_ctx", (int)c->ppl_ctx, "n_tokens", (json_int_t)m->ppl.n_tokens, "n_scored",
            (json_int_t)m->ppl.n_scored, "ppl", m->ppl.ppl, "ppl_err", m->ppl.ppl_err,
            "scored_bytes", (json_int_t)m->ppl.n_bytes, "bits_per_byte", m->ppl.bits_per_byte,
            "n_ctx_train", m->ppl.n_ctx_train ? json_integer(m->ppl.n_ctx_train) : json_null(),
            "ctx_over_train", m->ppl.over_train));
    return o;
}

static void write_json(const app_cmp *c, FILE *to)
{
    json_t *root = json_object(), *models = json_array(), *results = json_array(),
           *spans = json_array(), *prompts = json_array();
    json_object_set_new(root, "mode", json_string(app_sched_mode_name(c->mode)));
    json_object_set_new(root, "seed", json_integer((json_int_t)c->seed));
    json_object_set_new(root, "n_predict", json_integer(c->n_predict));
    json_object_set_new(root, "repeats", json_integer(c->reps));
    json_object_set_new(root, "temperature", json_real(c->sampling.temperature));
    json_object_set_new(root, "same_vocabulary", json_boolean(c->same_vocab));
    json_object_set_new(root, "peak_rss_bytes", json_integer((json_int_t)c->peak_rss));
    if (c->ppl_file) {
        json_object_set_new(root, "ppl_text", json_string(c->ppl_file));
        json_object_set_new(root, "ppl_ctx", json_integer(c->ppl_ctx));
        json_object_set_new(root, "ppl_ctx_capped", json_boolean(c->ppl_ctx_capped));
    }
    for (int j = 0; j < c->n_models; j++)
        json_array_append_new(models, model_json(c, &c->models[j]));
    for (int p = 0; p < c->n_prompts; p++) {
        json_array_append_new(prompts, json_string(c->prompts[p]));
        for (int j = 0; j < c->n_models; j++) {
            const app_cmp_cell *x = app_cmp_cell_at(c, p, j);
            char *ans = app_text_clean(x->answer, x->answer_len, true);
            json_array_append_new(results, json_pack(
                "{s:i, s:i, s:s, s:o, s:i, s:b, s:b, s:s, s:s, s:o, s:o, s:o, s:o}", "prompt", p,
                "model", j, "answer", ans ? ans : "", "n_prompt", x->has_n_prompt ?
                json_integer(x->n_prompt) : json_null(), "n_gen",
                (int)x->n_gen, "n_gen_approximate", x->approx, "network_inclusive",
                c->models[j].remote, "stop", x->stop_str ? x->stop_str : "", "mode",
                app_sched_mode_name(c->mode),
                "ttft_ms", stat_json(x->ttft, x->n_gen ? x->ttft_ms : NULL, c->reps),
                "prompt_tps", stat_json(x->pp, x->has_pp ? x->pp_tps : NULL, c->reps),
                "gen_tps", stat_json(x->tg, x->has_tg ? x->tg_tps : NULL, c->reps),
                "server_prompt_tps", stat_json(x->srv_pp, x->has_srv_pp ? x->srv_pp_tps : NULL,
                                               c->reps)));
            free(ans);
        }
    }
    for (size_t i = 0; i < c->n_spans; i++)
        json_array_append_new(spans, json_pack("{s:i, s:i, s:i, s:f, s:f}", "prompt",
            (int)(i / ((size_t)c->reps * (size_t)c->n_models)), "model", c->spans[i].job, "rep",
            c->spans[i].rep, "start_ms", (c->spans[i].start - c->t0) * 1e3, "end_ms",
            (c->spans[i].end - c->t0) * 1e3));
    json_object_set_new(root, "prompts", prompts);
    json_object_set_new(root, "models", models);
    json_object_set_new(root, "results", results);
    json_object_set_new(root, "spans", spans);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
    if (s)
        fprintf(to, "%s\n", s);
    free(s);
    json_decref(root);
}

/* ---- CSV (RFC 4180) ---- */

static void csv_str(FILE *to, const char *s, size_t len)
{
    char *t = app_text_clean(s, len, true);
    fputc('"', to);
    for (const char *p = t; p && *p; p++) {
        if (*p == '"')
            fputc('"', to);
        fputc(*p, to);
    }
    fputc('"', to);
    free(t);
}

/* fmt with v when known, else only what follows the conversion (the separator) */
static void csv_fig(FILE *to, bool known, const char *fmt, double v)
{
    if (known)
        fprintf(to, fmt, v);
    else
        fputs(strchr(fmt, 'f') + 1, to);
}

static void write_csv(const app_cmp *c, FILE *to)
{
    fputs("mode,prompt_index,prompt,model,path,parameters,quant,bits_per_weight,file_bytes,"
          "backend,mem_weights,mem_kv,mem_scratch,mem_device,mem_host,n_prompt,n_gen,stop,"
          "answer,ttft_ms_median,ttft_ms_stddev,prompt_tps_median,prompt_tps_stddev,"
          "gen_tps_median,gen_tps_stddev,repeats,ppl,bits_per_byte,ppl_ctx,ppl_ctx_over_train,"
          "server_prompt_tps_median,network_inclusive\n", to);
    for (int p = 0; p < c->n_prompts; p++)
        for (int j = 0; j < c->n_models; j++) {
            const app_cmp_model *m = &c->models[j];
            const app_cmp_cell *x = app_cmp_cell_at(c, p, j);
            fprintf(to, "%s,%d,", app_sched_mode_name(c->mode), p + 1);
            csv_str(to, c->prompts[p], strlen(c->prompts[p]));
            fputc(',', to);
            csv_str(to, m->name, strlen(m->name));
            fputc(',', to);
            csv_str(to, m->path, strlen(m->path));
            fprintf(to, ",%llu,%s,%.4f,%llu,", (unsigned long long)m->n_params, m->quant,
                    m->bits_per_weight, (unsigned long long)m->file_bytes);
            csv_str(to, m->backend, strlen(m->backend));
            fprintf(to, ",%llu,%llu,%llu,%llu,%llu,",
                    (unsigned long long)m->mem_weights, (unsigned long long)m->mem_kv,
                    (unsigned long long)m->mem_scratch, (unsigned long long)m->mem_device,
                    (unsigned long long)m->mem_host);
            /* an unknown figure is an empty field, never 0 */
            csv_fig(to, x->has_n_prompt, "%.0f,", x->n_prompt);
            fprintf(to, "%u,%s,", x->n_gen, x->stop_str ? x->stop_str : "");
            csv_str(to, x->answer, x->answer_len);
            fputc(',', to);
            csv_fig(to, x->n_gen > 0, "%.3f,", x->ttft.median);
            csv_fig(to, x->n_gen > 0, "%.3f,", x->ttft.stddev);
            csv_fig(to, x->has_pp, "%.3f,", x->pp.median);
            csv_fig(to, x->has_pp, "%.3f,", x->pp.stddev);
            csv_fig(to, x->has_tg, "%.3f,", x->tg.median);
            csv_fig(to, x->has_tg, "%.3f,", x->tg.stddev);
            fprintf(to, "%d,", c->reps);
            if (m->has_ppl)
                fprintf(to, "%.6f,%.6f,", m->ppl.ppl, m->ppl.bits_per_byte);
            else
                fputs("NA,NA,", to);
            if (m->has_ppl)
                fprintf(to, "%u,%s,", c->ppl_ctx, m->ppl.over_train ? "true" : "false");
            else
                fputs("NA,NA,", to);
            csv_fig(to, x->has_srv_pp, "%.3f,", x->srv_pp.median);
            fputs(m->remote ? "true\n" : "false\n", to);
        }
}

/* ---- terminal ---- */

/* Print up to `cols` characters of s starting at *pos (a byte offset), breaking at a space or a
 * newline when one is near, padded to cols; *pos moves past what was printed. */
static void term_piece(FILE *to, const char *s, size_t *pos, int cols)
{
    size_t i = *pos, end = i, brk = 0;
    int n = 0;
    while (s[i] == ' ')
        i++;
    end = i;
    while (s[end] && s[end] != '\n' && n < cols) {
        size_t k = utf8_seq_len((const unsigned char *)s + end, strlen(s + end));
        k = k ? k : 1;
        if (s[end] == ' ')
            brk = end;
        end += k;
        n++;
    }
    if (s[end] && s[end] != '\n' && brk > i) { /* cut at the last space */
        for (size_t q = brk; q < end; q++)
            n -= ((unsigned char)s[q] & 0xc0) != 0x80;
        end = brk;
    }
    fwrite(s + i, 1, end - i, to);
    fprintf(to, "%*s", cols - n, "");
    *pos = s[end] == '\n' ? end + 1 : end;
}

static void term_row(FILE *to, const char *label, char **vals, int n, int lw, int cw)
{
    size_t pos[32] = { 0 };
    bool more = true;
    for (int line = 0; more; line++) {
        fprintf(to, "%-*s", lw, line ? "" : label);
        more = false;
        for (int j = 0; j < n; j++) {
            fputs("  ", to);
            term_piece(to, vals[j], &pos[j], cw);
            more |= vals[j][pos[j]] != 0;
        }
        fputc('\n', to);
    }
}

static void write_term(const app_cmp *c, int width, FILE *to)
{
    int n = c->n_models < 32 ? c->n_models : 32, lw = 28;
    int cw = (width - lw) / n - 2;
    cw = cw < 12 ? 12 : cw;
    char *v[32], buf[32][300], lab[96];
    for (int j = 0; j < n; j++)
        v[j] = buf[j];
    const char *mode = app_sched_mode_name(c->mode);
    fprintf(to, "sizeup compare: %d models, %s mode, %d repeats, ", c->n_models, mode, c->reps);
    sampling_sentence(c, to);
    fputs("\n\n", to);
#define ROW(label, ...) do { for (int j = 0; j < n; j++) { const app_cmp_model *m = &c->models[j]; \
        char b[16], b2[16]; (void)b; (void)b2; (void)m; snprintf(buf[j], sizeof buf[j], __VA_ARGS__); } \
        term_row(to, label, v, n, lw, cw); } while (0)
    /* the name (general.name, a served id) and the backend string come from the model or the
     * server: cleaned like every other cell's text */
#define CLEAN(s) app_text_clean((s), strlen(s), false)
#define CLEAN_ROW(label, field) do { for (int j = 0; j < n; j++) { \
        char *t = CLEAN(c->models[j].field); snprintf(buf[j], sizeof buf[j], "%s", t ? t : ""); \
        free(t); } term_row(to, label, v, n, lw, cw); } while (0)
    CLEAN_ROW("", name);
    ROW("parameters", "%s", m->remote ? "-" : app_fmt_count(m->n_params, b, sizeof b));
    ROW("quantization, bits/weight", "%s, %.2f", m->quant, m->bits_per_weight);
    ROW("file size", "%s", m->remote ? "-" : fmt_b(m->file_bytes, b));
    ROW("weights + KV + scratch", "%s", m->remote ? "remote" :
        fmt_b(m->mem_weights + m->mem_kv + m->mem_scratch, b));
    ROW("device / host memory", "%s / %s", m->remote ? "remote" : fmt_b(m->mem_device, b),
        m->remote ? "remote" : fmt_b(m->mem_host, b2));
    if (c->ppl_file) {
        snprintf(lab, sizeof lab, "perplexity (c%u)", c->ppl_ctx);
        ROW(lab, "%s%s", m->has_ppl ? (snprintf(b, sizeof b, "%.4f", m->ppl.ppl), b) : "-",
            OVER(m) ? " (past its trained context)" : "");
        ROW("bits per byte", "%s", m->has_ppl ? (snprintf(b, sizeof b, "%.4f",
                                                          m->ppl.bits_per_byte), b) : "-");
    }
    CLEAN_ROW("backend", backend);
    for (int p = 0; p < c->n_prompts; p++) {
        char *clean = app_text_clean(c->prompts[p], strlen(c->prompts[p]), false);
        fprintf(to, "\nprompt %d: %s\n", p + 1, clean ? clean : "");
        free(clean);
        char *ans[32];
        for (int j = 0; j < n; j++) {
            const app_cmp_cell *x = app_cmp_cell_at(c, p, j);
            ans[j] = app_text_clean(x->answer, x->answer_len, true);
            if (!ans[j])
                ans[j] = strdup("");
        }
        term_row(to, "answer", ans, n, lw, cw);
        for (int j = 0; j < n; j++)
            free(ans[j]);
#define CROW(label, ...) do { for (int j = 0; j < n; j++) { const app_cmp_cell *x = app_cmp_cell_at(c, p, j); \
        snprintf(buf[j], sizeof buf[j], __VA_ARGS__); } term_row(to, label, v, n, lw, cw); } while (0)
        /* unknown figures are "-", never 0 */
        char f1[48];
#define FIG(known, st) (!(known) ? "-" : (snprintf(f1, sizeof f1, "%.1f ± %.1f", (st).median, \
                                                   (st).stddev), f1))
        CROW("tokens prompt / generated", "%s / %s%u", x->has_n_prompt ?
             (snprintf(f1, sizeof f1, "%u", x->n_prompt), f1) : "-", x->approx ? "~" : "",
             x->n_gen);
        CROW("stop", "%s", x->stop_str ? x->stop_str : "-");
        snprintf(lab, sizeof lab, "first token ms [%s]", mode);
        CROW(lab, "%s%s", FIG(x->n_gen > 0, x->ttft), x->n_gen ? NET_S(j) : "");
        snprintf(lab, sizeof lab, "prompt tok/s [%s]", mode);
        CROW(lab, "%s", FIG(x->has_pp, x->pp));
        bool any_srv = false;
        for (int k = 0; k < n; k++)
            any_srv |= app_cmp_cell_at(c, p, k)->has_srv_pp;
        if (any_srv)
            CROW("prompt tok/s, server's own", "%s", FIG(x->has_srv_pp, x->srv_pp));
        snprintf(lab, sizeof lab, "generation tok/s [%s]", mode);
        CROW(lab, "%s%s", FIG(x->has_tg, x->tg), x->has_tg ? NET_S(j) : "");
#undef FIG
    }
    if (c->ppl_file && c->ppl_ctx_capped)
        fprintf(to, "\nPerplexity in windows of %u tokens for every model: the shortest context one "
                "of them was trained with (not %d).\n", c->ppl_ctx, APP_PPL_CTX_DEFAULT);
    for (int j = 0; c->ppl_file && j < c->n_models; j++)
        if (OVER(&c->models[j])) {
            fputs("\nA perplexity marked \"past its trained context\" was measured in windows "
                  "longer than the model learnt: it understates the model.\n", to);
            break;
        }
    if (c->ppl_file && !c->same_vocab)
        fputs("\nThe vocabularies differ: compare bits per byte, not per-token perplexity.\n", to);
    remote_sentence(c, to);
#undef ROW
#undef CROW
#undef CLEAN_ROW
#undef CLEAN
}

void app_cmp_write(const app_cmp *c, app_cmp_format fmt, int width, FILE *to)
{
    switch (fmt) {
    case APP_CMP_TERM: write_term(c, width, to); break;
    case APP_CMP_MD: write_md(c, to); break;
    case APP_CMP_JSON: write_json(c, to); break;
    case APP_CMP_CSV: write_csv(c, to); break;
    }
}

void app_cmp_size_rows(const app_cmp *c, app_size_row *rows)
{
    for (int j = 0; j < c->n_models; j++) {
        const app_cmp_model *m = &c->models[j];
        double pp[c->n_prompts > 0 ? c->n_prompts : 1], tg[c->n_prompts > 0 ? c->n_prompts : 1],
               tt[c->n_prompts > 0 ? c->n_prompts : 1];
        for (int p = 0; p < c->n_prompts; p++) {
            const app_cmp_cell *x = app_cmp_cell_at(c, p, j);
            pp[p] = x->pp.median;
            tg[p] = x->tg.median;
            tt[p] = x->ttft.median;
        }
        rows[j] = (app_size_row){
            .name = m->name, .quant = m->quant, .mode = app_sched_mode_name(c->mode),
            .n_params = m->n_params, .file_bytes = m->file_bytes,
            .mem_bytes = m->mem_weights + m->mem_kv + m->mem_scratch,
            .bits_per_weight = m->bits_per_weight,
            .pp_tps = app_stat_of(pp, c->n_prompts).median,
            .tg_tps = app_stat_of(tg, c->n_prompts).median,
            .ttft_ms = app_stat_of(tt, c->n_prompts).median,
            .bits_per_byte = m->has_ppl ? m->ppl.bits_per_byte : -1,
            .remote = m->remote,
        };
    }
}
