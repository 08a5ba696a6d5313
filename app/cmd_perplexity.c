/* `sizeup perplexity`: how well a model predicts a text, as llama-perplexity measures it, plus
 * bits per byte (comparable across tokenizers) and, against a base model with the same
 * vocabulary, the KL divergence of the next-token distributions and how often the top token
 * agrees: the numbers behind "what does 4-bit cost". The method lives in app/ppl.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app/app.h"
#include "app/ppl.h"
#include "engine/engine.h"

#define CMD "perplexity"

typedef struct ppl_opts {
    const char *model, *file, *base, *device, *cacert;
    uint32_t n_ctx;
    bool json;
    eng_session_opts so;
} ppl_opts;

static void usage(FILE *to)
{
    fprintf(to,
        "usage: sizeup perplexity -m MODEL -f TEXT [-c CTX] [--kl-base MODEL] [--json]\n"
        "                         [--backend vulkan|cpu] [--device N] [-t N] [--cacert FILE]\n\n"
        "Perplexity of MODEL on the text file TEXT, computed as llama-perplexity does: the\n"
        "text is tokenized once (BOS first) and cut into non-overlapping windows of CTX\n"
        "tokens (a shorter tail is dropped); each window is decoded from an empty context\n"
        "with its first token replaced by BOS, and only its second half is scored: the\n"
        "tokens at positions CTX/2+1 .. CTX-1, each predicted from everything before it in\n"
        "the window. PPL = exp(mean -ln p) over the scored tokens, with its standard error.\n\n"
        "Bits per byte = sum over the scored tokens of -log2 p(token), divided by the\n"
        "number of UTF-8 bytes those same tokens decode to (each token's text as the\n"
        "model's detokenizer writes it: SentencePiece's '▁' is one space, a byte token its\n"
        "byte, control tokens nothing). Per-token perplexity depends on the tokenizer;\n"
        "bits per byte does not, so compare models with different vocabularies by it.\n\n"
        "--kl-base BASE decodes the same windows with BASE (same vocabulary required) and\n"
        "reports, over the scored positions, the mean and 99th percentile (linear\n"
        "interpolation between closest ranks) of KL(BASE || MODEL) =\n"
        "sum_v p_base(v) (ln p_base(v) - ln p_model(v)) in nats, and the share of positions\n"
        "where both models' most likely next token is the same.\n\n"
        "  -m, --model MODEL     a GGUF file or a model reference (see sizeup run --help)\n"
        "  -f, --file TEXT       the text ('-' for standard input)\n"
        "  -c, --ctx CTX         window size in tokens (default 512, as llama-perplexity,\n"
        "                        capped at the context MODEL and BASE were trained with;\n"
        "                        a larger CTX is measured, with a warning)\n"
        "  --kl-base MODEL       the reference model for KL divergence (e.g. the F32 file)\n"
        "  --json                print the figures as one JSON object\n"
        "  --backend B           vulkan or cpu (default: Vulkan on a GPU that can run it, else\n"
        "                        the CPU, which is faster than a CPU Vulkan driver)\n"
        "  --device N            Vulkan device (default: $SIZEUP_DEVICE, else the best one)\n"
        "  -t, --threads N       CPU threads (default: all cores)\n"
        "  --cacert FILE         CA certificates (PEM) for a download over HTTPS\n"
        "  -h, --help            show this help\n");
}

/* Returns 0 to go on, -1 after --help, or an exit status. */
static int parse_args(int argc, char **argv, ppl_opts *o)
{
    o->so = eng_session_defaults();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        }
        if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        }
        if (a[0] != '-')
            return app_fail(CMD, "unexpected argument '%s' (the text goes after -f)", a) + 1;
        if (i + 1 >= argc)
            return app_fail(CMD, "%s: a value is missing, or the option is unknown", a) + 1;
        const char *v = argv[++i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->file = v;
        else if (!strcmp(a, "--kl-base")) o->base = v;
        else if (!strcmp(a, "--device")) o->device = v;
        else if (!strcmp(a, "--cacert")) o->cacert = v;
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (app_parse_int(CMD, a, v, 8, 1 << 20, &x))
                return 2;
            o->n_ctx = (uint32_t)x;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads") || !strcmp(a, "--backend")) {
            if (app_session_opt(CMD, a, v, &o->so, NULL))
                return 2;
        } else
            return app_fail(CMD, "unknown option '%s' (see sizeup perplexity --help)", a) + 1;
    }
    if (!o->model)
        return app_fail(CMD, "no model given (-m MODEL)") + 1;
    if (!o->file)
        return app_fail(CMD, "no text given (-f TEXT)") + 1;
    return app_device_index(CMD, o->device, &o->so.device);
}

static int open_model(const ppl_opts *o, const char *ref, eng_model **m)
{
    char *path, err[512];
    int rc = app_model_path(CMD, ref, o->cacert, &path);
    if (rc)
        return rc;
    if (eng_model_open(path, m, err, sizeof err))
        rc = app_fail(CMD, "%s", err);
    free(path);
    return rc;
}

/* -c, or the default capped at the trained contexts; a -c past them is measured, with a
 * warning. */
static uint32_t window(const ppl_opts *o, const eng_model *m, const eng_model *base)
{
    const eng_model *both[2] = { m, base };
    bool capped;
    if (!o->n_ctx) {
        uint32_t c = app_ppl_default_ctx(both, 2, &capped);
        if (capped)
            fprintf(stderr, "sizeup %s: windows of %u tokens, the context the model%s trained "
                    "with (not %d, past it)\n", CMD, c, base ? "s were" : " was",
                    APP_PPL_CTX_DEFAULT);
        return c;
    }
    char what[32];
    snprintf(what, sizeof what, "-c %u", o->n_ctx);
    app_ctx_warn(CMD, m, o->n_ctx, what);
    if (base)
        app_ctx_warn(CMD, base, o->n_ctx, what);
    return o->n_ctx;
}

static void print_text(const ppl_opts *o, const eng_model *m, const eng_model *base, size_t len,
                       const app_ppl_result *r)
{
    printf("model:       %s (%s)\n", eng_model_name(m), o->model);
    printf("text:        %s: %zu bytes, %zu tokens with BOS (vocabulary of %d)\n", o->file, len,
           r->n_tokens, eng_vocab_n_tokens(eng_model_vocab(m)));
    printf("windows:     %zu of %u tokens; scored %zu tokens (the second half of each window), "
           "%llu bytes\n", r->n_chunks, r->n_ctx, r->n_scored, (unsigned long long)r->n_bytes);
    if (r->over_train)
        printf("warning:     windows of %u tokens are longer than the %u the model was trained "
               "with: this perplexity understates the model\n", r->n_ctx, r->n_ctx_train);
    printf("running:     ");
    for (size_t c = 0; c < r->n_chunks; c++)
        printf("[%zu]%.4f%s", c + 1, r->running[c], c + 1 < r->n_chunks ? "," : "\n");
    printf("perplexity:  %.4f ± %.4f per token (comparable only between models with the same "
           "vocabulary)\n", r->ppl, r->ppl_err);
    printf("bits/byte:   %.4f (comparable across vocabularies)\n", r->bits_per_byte);
    if (r->has_kl)
        printf("KL vs base:  mean %.6f, 99th percentile %.6f nats; same top token at %.2f%% of "
               "%zu positions (base %s, %s)\n", r->kl_mean, r->kl_p99, 100 * r->top_agree,
               r->n_scored, eng_model_name(base), o->base);
}

static void print_json(const ppl_opts *o, size_t len, const app_ppl_result *r, const char *be)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:s, s:f}",
                          "model", o->model, "text", o->file, "text_bytes", (json_int_t)len,
                          "n_ctx", (json_int_t)r->n_ctx, "n_tokens", (json_int_t)r->n_tokens,
                          "n_chunks", (json_int_t)r->n_chunks, "n_scored", (json_int_t)r->n_scored,
                          "scored_bytes", (json_int_t)r->n_bytes, "ppl", r->ppl,
                          "ppl_err", r->ppl_err, "bits_per_byte", r->bits_per_byte, "backend", be,
                          "seconds", r->seconds);
    if (j) {
        json_object_set_new(j, "n_ctx_train", r->n_ctx_train ? json_integer(r->n_ctx_train)
                                                             : json_null());
        json_object_set_new(j, "ctx_over_train", json_boolean(r->over_train));
    }
    if (j && r->has_kl)
        json_object_update_new(j, json_pack("{s:s, s:f, s:f, s:f}", "kl_base", o->base, "kl_mean",
                                            r->kl_mean, "kl_p99", r->kl_p99, "top_agree",
                                            r->top_agree));
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(j);
}

int app_cmd_perplexity(int argc, char **argv)
{
    ppl_opts o = { 0 };
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    char *text;
    size_t len;
    eng_model *m = NULL, *base = NULL;
    if (app_read_text(CMD, "-f", o.file, &text, &len))
        return 1;
    if ((rc = open_model(&o, o.model, &m)) || (o.base && (rc = open_model(&o, o.base, &base)))) {
        eng_model_close(m);
        free(text);
        return rc;
    }
    app_ppl_result r;
    uint32_t n_ctx = window(&o, m, base);
    rc = app_ppl_run(CMD, m, base, text, len, n_ctx, &o.so, &r);
    if (!rc) {
        if (o.json)
            print_json(&o, len, &r, r.backend);
        else {
            print_text(&o, m, base, len, &r);
            printf("backend:     %s, %.2f s\n", r.backend, r.seconds);
        }
        app_ppl_free(&r);
    }
    eng_model_close(base);
    eng_model_close(m);
    free(text);
    return rc;
}
