/* `sizeup logits`: decode a token sequence in one batch and print its logits as JSON, the tool
 * tests and people use to compare backends and engines position by position. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "engine/engine.h"

#define CMD "logits"

static void usage(FILE *to)
{
    fprintf(to,
        "usage: sizeup logits -m MODEL (--text T | --tokens 1,403,407) [--all-positions]\n"
        "                     [--backend vulkan|cpu] [--device N] [-c CTX] [--cacert FILE]\n\n"
        "Decode the tokens in one batch and print {\"tokens\": [...], \"logits\": [[...], ...]}:\n"
        "the logits of the last position, or of every position with --all-positions.\n"
        "-c is the context length, 8 to 16777216, at least the number of tokens (default:\n"
        "the number of tokens).\n"
        "--text is tokenized with the model's tokenizer, BOS added as the model asks.\n"
        "MODEL is a GGUF file or a model reference (qwen2.5:0.5b, hf.co/OWNER/REPO[:QUANT],\n"
        "a URL), downloaded first when it is not in the store (--cacert FILE for HTTPS).\n");
}

/* "1,403,407" -> ids; false names the bad element. */
static bool parse_ids(const char *s, int32_t **ids, size_t *n)
{
    size_t cap = 16;
    *n = 0;
    *ids = malloc(cap * sizeof **ids);
    while (*ids && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX || (*end && *end != ','))
            return false;
        if (*n == cap) {
            int32_t *p = realloc(*ids, (cap *= 2) * sizeof *p);
            if (!p)
                return false;
            *ids = p;
        }
        (*ids)[(*n)++] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
    return *ids && *n > 0;
}

static void print_json(const int32_t *ids, size_t n, const float *lg, size_t rows, uint32_t nv)
{
    printf("{\"tokens\": [");
    for (size_t i = 0; i < n; i++)
        printf("%s%d", i ? ", " : "", ids[i]);
    printf("], \"logits\": [");
    for (size_t r = 0; r < rows; r++) {
        printf("%s[", r ? ", " : "");
        for (uint32_t j = 0; j < nv; j++)
            printf("%s%.6g", j ? ", " : "", lg[r * nv + j]);
        printf("]");
    }
    printf("]}\n");
}

int app_cmd_logits(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *toks = NULL, *device = NULL, *cacert = NULL;
    bool all = false;
    eng_session_opts so = eng_session_defaults();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--all-positions")) {
            all = true;
        } else if (!v) {
            return app_fail(CMD, "%s: a value is missing, or the option is unknown", a) + 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            model = argv[++i];
        } else if (!strcmp(a, "--device")) {
            device = argv[++i];
        } else if (!strcmp(a, "--cacert")) {
            cacert = argv[++i];
        } else if (!strcmp(a, "--text")) {
            text = argv[++i];
        } else if (!strcmp(a, "--tokens")) {
            toks = argv[++i];
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            long long c;
            if (app_parse_int(CMD, a, argv[++i], 8, 1 << 24, &c))
                return 2;
            so.n_ctx = (uint32_t)c;
        } else if (!strcmp(a, "--backend")) {
            v = argv[++i];
            if (strcmp(v, "cpu") && strcmp(v, "vulkan"))
                return app_fail(CMD, "--backend '%s': expected cpu or vulkan", v) + 1;
            so.backend = strcmp(v, "cpu") ? ENG_BACKEND_VULKAN : ENG_BACKEND_CPU;
        } else {
            return app_fail(CMD, "unknown option '%s' (see sizeup logits --help)", a) + 1;
        }
    }
    if (!model || (!text == !toks))
        return app_fail(CMD, "give -m MODEL and exactly one of --text or --tokens") + 1;
    if (app_device_index(CMD, device, &so.device))
        return 2;
    eng_model *m;
    eng_session *s = NULL;
    char err[512], *path;
    int rc = app_model_path(CMD, model, cacert, &path);
    if (rc)
        return rc;
    rc = eng_model_open(path, &m, err, sizeof err) ? app_fail(CMD, "%s", err) : 0;
    free(path);
    if (rc)
        return rc;
    int32_t *ids = NULL;
    size_t n = 0;
    if (toks ? !parse_ids(toks, &ids, &n)
             : eng_tokenize(eng_model_vocab(m), text, strlen(text), true, false, &ids, &n) != ENG_TOK_OK) {
        rc = app_fail(CMD, "--tokens '%s': expected comma-separated token ids", toks ? toks : "") + 1;
    } else if (so.n_ctx && so.n_ctx < n) {
        rc = app_fail(CMD, "-c %u: the %zu tokens do not fit; give -c %zu or more, or leave -c "
                      "out (the context is then as long as the tokens)", so.n_ctx, n, n) + 1;
    } else {
        if (so.n_ctx == 0)
            so.n_ctx = (uint32_t)(n < 8 ? 8 : n);
        float *lg = NULL;
        if (eng_session_new(m, &so, &s, err, sizeof err))
            rc = app_fail(CMD, "%s", err);
        else if (eng_session_logits(s, ids, n, all, &lg))
            rc = app_fail(CMD, "%s", eng_session_errmsg(s));
        else
            print_json(ids, n, lg, all ? n : 1, eng_model_hparams(m)->n_vocab);
        free(lg);
    }
    free(ids);
    eng_session_free(s);
    eng_model_close(m);
    return rc;
}
