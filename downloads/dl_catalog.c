/* The model catalog: a JSON data file installed with the app (downloads/catalog.json in the
 * source tree, PREFIX/share/sizeup/catalog.json once installed). Loaded once per context with
 * jansson and checked whole before anything uses it, so a hand-edited catalog with a missing
 * field fails at load with the file and entry named, not later in the middle of a pull.
 * Entry strings point into the jansson tree, which lives as long as the catalog. */
#include "downloads/dl_ref_internal.h"

#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct dl_catalog {
    char *path;               /* the file it was loaded from */
    json_t *root;             /* owns every string the entries point to */
    size_t n;
    dl_cat_entry *entries;    /* (n) */
    dl_cat_file *files;       /* every entry's files, entry by entry */
    bool *size_approx;        /* parallel to files */
    size_t n_files;
    const char *pair_small, *pair_large;
};

void dl_catalog_free(struct dl_catalog *cat)
{
    if (!cat)
        return;
    free(cat->size_approx);
    free(cat->files);
    free(cat->entries);
    json_decref(cat->root);
    free(cat->path);
    free(cat);
}

/* ---- validation ---- */

/* A failure inside entry i of the file, named by file, index and (when known) name. */
static dl_status entry_fail(dl_ctx *c, const char *path, size_t i, json_t *e, const char *what)
{
    const char *name = json_string_value(json_object_get(e, "name"));
    return dl_fail(c, DL_ERR_FORMAT, "catalog %s: entry %zu%s%s%s: %s", path, i + 1,
                   name ? " (\"" : "", name ? name : "", name ? "\")" : "", what);
}

static const char *opt_str(json_t *e, const char *key)
{
    return json_string_value(json_object_get(e, key));
}

static bool is_sha256_hex(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
            return false;
    return true;
}

/* A file path inside a repository: relative, no empty, "." or ".." component. */
static bool is_repo_path(const char *s)
{
    if (!s || !*s || *s == '/')
        return false;
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
        if (*p == '/' && !*++p)
            return false;
    }
    return true;
}

/* One element of an entry's "files" array into *f. */
static dl_status load_file(dl_ctx *c, const char *path, size_t i, json_t *e, json_t *jf,
                           dl_cat_file *f, bool *approx)
{
    char what[160];
    json_t *size = json_object_get(jf, "size");
    f->quant = opt_str(jf, "quant");
    f->file = opt_str(jf, "file");
    f->sha256_hex = opt_str(jf, "sha256");
    if (!json_is_object(jf) || !f->quant || !*f->quant || !f->file)
        return entry_fail(c, path, i, e, "every file needs \"quant\" and \"file\" strings");
    if (!is_repo_path(f->file) || !dl_name_ends_with(f->file, ".gguf")) {
        snprintf(what, sizeof what, "file \"%.100s\" is not a .gguf path inside the repository",
                 f->file);
        return entry_fail(c, path, i, e, what);
    }
    if (!json_is_integer(size) || json_integer_value(size) <= 0) {
        snprintf(what, sizeof what, "file \"%.100s\" needs a positive integer \"size\"", f->file);
        return entry_fail(c, path, i, e, what);
    }
    f->size = (uint64_t)json_integer_value(size);
    if (json_object_get(jf, "sha256") && !is_sha256_hex(f->sha256_hex)) {
        snprintf(what, sizeof what, "file \"%.100s\": sha256 must be 64 lowercase hex digits",
                 f->file);
        return entry_fail(c, path, i, e, what);
    }
    *approx = json_is_true(json_object_get(jf, "size_approx"));
    f->made_from = opt_str(jf, "made_from");
    return DL_OK;
}

/* A built-in entry's files are found by name in one folder (and made ones go to
 * STORE/builtin/ by name), so they are plain file names; made_from belongs to them alone. */
static dl_status check_builtin_file(dl_ctx *c, const char *path, size_t i, json_t *e,
                                    const dl_cat_entry *d, const dl_cat_file *f)
{
    char what[200];
    if (!d->builtin && f->made_from) {
        snprintf(what, sizeof what, "file \"%.100s\": made_from is only for built-in entries",
                 f->file);
        return entry_fail(c, path, i, e, what);
    }
    if (!d->builtin)
        return DL_OK;
    if (strchr(f->file, '/') || (f->made_from && (strchr(f->made_from, '/') ||
                                                  !dl_name_ends_with(f->made_from, ".gguf")))) {
        snprintf(what, sizeof what, "file \"%.100s\": a built-in file and what it is made from "
                 "are plain .gguf file names", f->file);
        return entry_fail(c, path, i, e, what);
    }
    return DL_OK;
}

/* Entry i: required fields, its files appended at cat->files[cat->n_files...]. */
static dl_status load_entry(dl_ctx *c, struct dl_catalog *cat, size_t i, json_t *e)
{
    dl_cat_entry *d = &cat->entries[i];
    json_t *files = json_object_get(e, "files"), *np = json_object_get(e, "n_params");
    if (!json_is_object(e))
        return entry_fail(c, cat->path, i, e, "not a JSON object");
    d->name = opt_str(e, "name");
    d->repo = opt_str(e, "repo");
    if (!d->name || !*d->name || strchr(d->name, '/') || strchr(d->name, ' '))
        return entry_fail(c, cat->path, i, e, "needs a \"name\" without '/' or spaces");
    if (!dl_name_is_repo(d->repo))
        return entry_fail(c, cat->path, i, e, "needs a \"repo\" of the form OWNER/REPO");
    if (!json_is_array(files) || json_array_size(files) == 0)
        return entry_fail(c, cat->path, i, e, "needs a non-empty \"files\" array");
    /* The listings print these columns unguarded, so a missing one must fail here. */
    static const char *const required[] = { "family", "params", "license" };
    for (size_t k = 0; k < sizeof required / sizeof *required; k++) {
        const char *v = opt_str(e, required[k]);
        if (!v || !*v) {
            char what[64];
            snprintf(what, sizeof what, "needs a non-empty \"%s\" string", required[k]);
            return entry_fail(c, cat->path, i, e, what);
        }
    }
    if (!json_is_integer(np) || json_integer_value(np) < 0)
        return entry_fail(c, cat->path, i, e, "needs \"n_params\", a non-negative integer");
    d->family = opt_str(e, "family");
    d->params = opt_str(e, "params");
    d->n_params = (uint64_t)json_integer_value(np);
    d->license = opt_str(e, "license");
    d->description = opt_str(e, "description");
    d->default_quant = opt_str(e, "default_quant");
    d->builtin = json_is_true(json_object_get(e, "builtin"));
    d->files = &cat->files[cat->n_files];
    d->n_files = json_array_size(files);
    for (size_t k = 0; k < d->n_files; k++) {
        dl_status st = load_file(c, cat->path, i, e, json_array_get(files, k),
                                 &cat->files[cat->n_files], &cat->size_approx[cat->n_files]);
        if (!st)
            st = check_builtin_file(c, cat->path, i, e, d, &cat->files[cat->n_files]);
        if (st)
            return st;
        cat->n_files++;
    }
    return DL_OK;
}

/* After every entry parsed: default quants exist, names are unique. */
static dl_status check_entry(dl_ctx *c, struct dl_catalog *cat, json_t *models, size_t i)
{
    const dl_cat_entry *d = &cat->entries[i];
    json_t *e = json_array_get(models, i);
    bool found = false;
    if (!d->default_quant)
        return entry_fail(c, cat->path, i, e, "needs a \"default_quant\"");
    for (size_t k = 0; k < d->n_files; k++)
        found |= !strcasecmp(d->files[k].quant, d->default_quant);
    if (!found)
        return entry_fail(c, cat->path, i, e, "its default_quant is not among its files");
    for (size_t j = 0; j < i; j++)
        if (!strcasecmp(cat->entries[j].name, d->name))
            return entry_fail(c, cat->path, i, e, "the name is used by an earlier entry too");
    return DL_OK;
}

static dl_status load_pair(dl_ctx *c, struct dl_catalog *cat)
{
    json_t *pair = json_object_get(cat->root, "default_pair");
    if (!pair)
        return DL_OK;
    cat->pair_small = opt_str(pair, "small");
    cat->pair_large = opt_str(pair, "large");
    const char *names[2] = { cat->pair_small, cat->pair_large };
    for (int k = 0; k < 2; k++) {
        bool found = false;
        for (size_t i = 0; names[k] && i < cat->n; i++)
            found |= !strcasecmp(cat->entries[i].name, names[k]);
        if (!found)
            return dl_fail(c, DL_ERR_FORMAT, "catalog %s: default_pair.%s (\"%s\") is not a "
                           "catalog entry", cat->path, k ? "large" : "small",
                           names[k] ? names[k] : "missing");
    }
    return DL_OK;
}

/* Size the arrays, then fill and check every entry. */
static dl_status load_models(dl_ctx *c, struct dl_catalog *cat)
{
    json_t *models = json_object_get(cat->root, "models");
    if (!json_is_object(cat->root) || !json_is_array(models))
        return dl_fail(c, DL_ERR_FORMAT, "catalog %s: expected an object with a \"models\" "
                       "array", cat->path);
    cat->n = json_array_size(models);
    size_t total = 0;
    for (size_t i = 0; i < cat->n; i++)
        total += json_array_size(json_object_get(json_array_get(models, i), "files"));
    cat->entries = calloc(cat->n + 1, sizeof *cat->entries);
    cat->files = calloc(total + 1, sizeof *cat->files);
    cat->size_approx = calloc(total + 1, sizeof *cat->size_approx);
    if (!cat->entries || !cat->files || !cat->size_approx)
        return dl_fail(c, DL_ERR_IO, "catalog %s: out of memory", cat->path);
    for (size_t i = 0; i < cat->n; i++) {
        dl_status st = load_entry(c, cat, i, json_array_get(models, i));
        if (st)
            return st;
    }
    for (size_t i = 0; i < cat->n; i++) {
        dl_status st = check_entry(c, cat, models, i);
        if (st)
            return st;
    }
    return load_pair(c, cat);
}

static dl_status load_file_at(dl_ctx *c, const char *path, struct dl_catalog **out)
{
    json_error_t jerr;
    struct dl_catalog *cat = calloc(1, sizeof *cat);
    if (!cat || !(cat->path = strdup(path))) {
        free(cat);
        return dl_fail(c, DL_ERR_IO, "catalog %s: out of memory", path);
    }
    cat->root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    dl_status st = cat->root ? load_models(c, cat)
                             : dl_fail(c, DL_ERR_FORMAT, "catalog %s: line %d column %d: %s",
                                       path, jerr.line, jerr.column, jerr.text);
    if (st) {
        dl_catalog_free(cat);
        return st;
    }
    *out = cat;
    return DL_OK;
}

/* ---- finding the file ---- */

/* Loads on first use; a changed dl_set_catalog_path makes the next call read the new file. */
dl_status dl_catalog_load(dl_ctx *c)
{
    if (c->cat && (!c->catalog_path || !strcmp(c->catalog_path, c->cat->path)))
        return DL_OK;
    dl_catalog_free(c->cat);
    c->cat = NULL;
    char path[PATH_MAX], tried[3 * PATH_MAX];
    struct stat st;
    /* stat, never open: a FIFO would block the open, /dev/zero would feed the parser forever */
    if (c->catalog_path && *c->catalog_path && stat(c->catalog_path, &st) == 0 &&
        !S_ISREG(st.st_mode))
        return dl_fail(c, DL_ERR_ARG, "catalog %s (%s) is not a regular file (it is %s); set "
                       "SIZEUP_CATALOG to a catalog.json", c->catalog_path,
                       getenv("SIZEUP_CATALOG") && !strcmp(getenv("SIZEUP_CATALOG"),
                                                           c->catalog_path)
                           ? "SIZEUP_CATALOG" : "the catalog path given",
                       dl_file_kind(st.st_mode));
    if (dl_data_find(c->catalog_path, "catalog.json", false, path, sizeof path, tried,
                     sizeof tried))
        return load_file_at(c, path, &c->cat);
    return dl_fail(c, DL_ERR_NOT_FOUND, "model catalog not found (tried %s); set "
                   "SIZEUP_CATALOG to its path", tried);
}

/* ---- queries ---- */

size_t dl_catalog_count(const dl_ctx *c)
{
    return c->cat ? c->cat->n : 0;
}

const dl_cat_entry *dl_catalog_entry(const dl_ctx *c, size_t i)
{
    return c->cat && i < c->cat->n ? &c->cat->entries[i] : NULL;
}

const dl_cat_entry *dl_catalog_find(const dl_ctx *c, const char *name)
{
    for (size_t i = 0; name && c->cat && i < c->cat->n; i++)
        if (!strcasecmp(c->cat->entries[i].name, name))
            return &c->cat->entries[i];
    return NULL;
}

void dl_catalog_default_pair(const dl_ctx *c, const char **small, const char **large)
{
    if (small)
        *small = c->cat ? c->cat->pair_small : NULL;
    if (large)
        *large = c->cat ? c->cat->pair_large : NULL;
}

bool dl_catalog_size_approx(const dl_ctx *c, const dl_cat_file *f)
{
    if (!c->cat || f < c->cat->files || f >= c->cat->files + c->cat->n_files)
        return false;
    return c->cat->size_approx[f - c->cat->files];
}

/* Names that start with prefix (case-insensitive), appended to buf as "a, b"; how many. */
static size_t names_with_prefix(const struct dl_catalog *cat, const char *prefix, size_t n_prefix,
                                char *buf, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < cat->n; i++) {
        const char *name = cat->entries[i].name;
        if (strncasecmp(name, prefix, n_prefix))
            continue;
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", n ? ", " : "", name);
        n++;
    }
    return n;
}

size_t dl_catalog_suggest(dl_ctx *c, const char *word, char *buf, size_t len)
{
    if (len)
        *buf = 0;
    if (!word || !*word || !len || !c->cat)
        return 0;
    size_t n = names_with_prefix(c->cat, word, strlen(word), buf, len);
    const char *colon = strchr(word, ':');
    if (!n && colon && colon > word)   /* "qwen2.5:9b": the qwen2.5 family */
        n = names_with_prefix(c->cat, word, (size_t)(colon - word + 1), buf, len);
    return n;
}
