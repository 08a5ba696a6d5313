/* The built-in demo: tiny trained models shipped with sizeup (downloads/builtin, installed as
 * share/sizeup/builtin; catalog entries demo:*), so that it shows real text with no network and
 * no GPU, and the choice of models the TUI opens when it is given none.
 *
 * downloads/ finds the shipped files and knows where a made one lives (STORE/builtin/); the
 * one file that is made, BabyLlama in Q4_0, is made here because it needs the engine: with
 * app_quantize_file, the code behind `sizeup quantize`, written through dl_store_make so that a
 * crash never leaves a half file that counts as made.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "engine/gguf.h"

const char app_demo_banner[] =
    "Built-in demo: three tiny models (stories260K, and BabyLlama 930K in F32 and in 4-bit "
    "Q4_0) that run offline on the CPU. They continue children's stories; they cannot chat. "
    "Get a real model with /add qwen2.5:0.5b, or see what there is with sizeup catalog.";

const char *const app_demo_refs[APP_DEMO_N] = { "demo:stories260k", "demo:babyllama",
                                                "demo:babyllama-q4" };

bool app_is_builtin_ref(dl_ctx *c, const char *ref)
{
    dl_ref r;
    if (dl_ref_parse(c, ref, &r) != DL_OK)
        return false;
    const dl_cat_entry *e = r.kind == DL_REF_CATALOG ? dl_catalog_find(c, r.name) : NULL;
    dl_ref_free(&r);
    return e && e->builtin;
}

/* A made file is trusted only when it parses whole: its record guards the size, this the
 * structure (a file rewritten at the same size by something else fails here). */
static bool gguf_whole(const char *path)
{
    char err[256];
    gguf_file *f = NULL;
    bool ok = gguf_open(path, &f, err, sizeof err) == 0 && gguf_tensor_count(f) > 0;
    gguf_close(f);
    return ok;
}

typedef struct make_job {
    const char *from, *quant;
    char err[768];
} make_job;

/* dl_make_fn: quantize into the temporary file, then check that what was written parses. */
static int make_write(const char *tmp, void *user)
{
    make_job *j = user;
    if (app_quantize_file(j->from, tmp, j->quant, true, NULL, j->err, sizeof j->err))
        return 1;
    if (!gguf_whole(tmp)) {
        snprintf(j->err, sizeof j->err, "%s: the quantized file does not read back", tmp);
        return 1;
    }
    return 0;
}

/* Make f (its made_from quantized to quant) in the store, saying so on stderr unless quiet. */
static int make_file(const char *cmd, dl_ctx *c, const char *ref, const dl_file *f,
                     const char *quant, bool quiet)
{
    make_job j = { f->made_from, quant, "" };
    if (!quiet)
        fprintf(stderr, "making %s: %s from the built-in %s (%s, sizeup's own quantizer)\n",
                ref, f->path, f->made_from, quant);
    dl_status st = dl_store_make(c, f->path, ref, make_write, &j);
    if (st && j.err[0])
        return app_fail(cmd, "%s: making %s: %s", ref, f->path, j.err);
    return st ? app_dl_fail(cmd, c, st, ref) : 0;
}

int app_builtin_path(const char *cmd, dl_ctx *c, const char *ref, bool quiet, char **path_out)
{
    dl_resolved r;
    *path_out = NULL;
    /* Built-in entries resolve without the network whatever the flag says. */
    dl_status st = dl_resolve(c, ref, false, &r);
    if (st)
        return app_dl_fail(cmd, c, st, ref);
    int rc = 0;
    for (size_t i = 0; !rc && i < r.n_files; i++) {
        const dl_file *f = &r.files[i];
        if (f->made_from && (!f->present || !gguf_whole(f->path)))
            rc = make_file(cmd, c, ref, f, r.quant, quiet);
        else if (!f->made_from && !f->present)
            rc = app_fail(cmd, "%s: the built-in file %s is missing or not the one sizeup "
                          "shipped (%llu bytes); reinstall sizeup, or set SIZEUP_BUILTIN to the "
                          "folder that holds it", ref, f->path, (unsigned long long)f->size);
    }
    dl_resolved_free(&r);
    if (!rc && (st = dl_locate(c, ref, path_out)))   /* also marks a made file as used */
        rc = app_dl_fail(cmd, c, st, ref);
    return rc;
}

int app_demo_models(const char *cmd, char *paths[APP_DEMO_N])
{
    for (int i = 0; i < APP_DEMO_N; i++)
        paths[i] = NULL;
    dl_ctx *c = app_dl_open(cmd, NULL);
    if (!c)
        return 1;
    int rc = 0;
    for (int i = 0; !rc && i < APP_DEMO_N; i++)
        rc = app_builtin_path(cmd, c, app_demo_refs[i], true, &paths[i]);
    dl_close(c);
    for (int i = 0; rc && i < APP_DEMO_N; i++) {
        free(paths[i]);
        paths[i] = NULL;
    }
    return rc;
}

/* ---- what the TUI opens with no arguments ---- */

/* When a stored model was last used, or else pulled: the one to open first is the newest. */
static int64_t recency(const dl_stored *s)
{
    return s->last_used > s->pulled_at ? s->last_used : s->pulled_at;
}

static int by_recency(const void *a, const void *b)
{
    const dl_stored *x = *(const dl_stored *const *)a, *y = *(const dl_stored *const *)b;
    int64_t rx = recency(x), ry = recency(y);
    return rx != ry ? (rx < ry ? 1 : -1) : strcmp(x->path, y->path);
}

/* The store's own models: not damaged, and not the demo's Q4_0 (STORE/builtin/), which is
 * there only because the demo ran and must not stop an otherwise empty store opening it. */
static bool is_user_model(const dl_stored *s)
{
    return !s->damaged && s->repo && strcmp(s->repo, "builtin") != 0;
}

/* Up to APP_DEFAULT_MAX of the store's models, newest first, into *paths. */
static int recent_models(const char *cmd, dl_ctx *c, char ***paths, size_t *n)
{
    dl_stored *list = NULL;
    size_t nl = 0;
    dl_status st = dl_store_list(c, &list, &nl);
    if (st)
        return app_dl_fail(cmd, c, st, NULL);
    const dl_stored **v = calloc(nl + 1, sizeof *v);
    char **out = calloc(APP_DEFAULT_MAX, sizeof *out);
    int rc = v && out ? 0 : app_fail(cmd, "out of memory");
    size_t k = 0;
    for (size_t i = 0; !rc && i < nl; i++)
        if (is_user_model(&list[i]))
            v[k++] = &list[i];
    if (k > 1)
        qsort(v, k, sizeof *v, by_recency);
    for (*n = 0; !rc && *n < k && *n < APP_DEFAULT_MAX; (*n)++)
        if (!(out[*n] = strdup(v[*n]->path)))
            rc = app_fail(cmd, "out of memory");
    if (rc || !*n) {
        app_paths_free(out, APP_DEFAULT_MAX);
        out = NULL;
        *n = 0;
    }
    *paths = out;
    free(v);
    dl_stored_free(list, nl);
    return rc;
}

int app_default_models(const char *cmd, char ***paths, size_t *n, bool *is_demo)
{
    *paths = NULL;
    *n = 0;
    *is_demo = false;
    dl_ctx *c = app_dl_open(cmd, NULL);
    if (!c)
        return 1;
    int rc = recent_models(cmd, c, paths, n);
    dl_close(c);
    if (rc || *n)
        return rc;
    char **demo = calloc(APP_DEMO_N, sizeof *demo);
    if (!demo)
        return app_fail(cmd, "out of memory");
    if ((rc = app_demo_models(cmd, demo))) {
        free(demo);
        return rc;
    }
    *paths = demo;
    *n = APP_DEMO_N;
    *is_demo = true;
    return 0;
}

void app_paths_free(char **paths, size_t n)
{
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
}
