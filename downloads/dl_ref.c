/* Model references: parse what the user typed (a path, a catalog name, hf.co/OWNER/REPO[:QUANT],
 * hf.co/OWNER/REPO/FILE.gguf, a URL), turn it into the files it names (dl_resolve), fetch them
 * (dl_pull), find them offline (dl_locate) and delete them (dl_store_remove).
 *
 * Store layout (dl.h): catalog and Hugging Face files live at STORE/OWNER/REPO/<path in repo>,
 * URL files at STORE/HOST/<url path>. A file counts as present when it and its .json record
 * (written by dl_fetch_file after verification) are both there. */
#include "downloads/dl_ref_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_PARTS 999   /* more split parts than any real model; bounds the arrays */
#define MAX_COMPONENTS 64

/* dl_fail for functions whose context may be NULL (dl_ref_parse). */
static dl_status ref_fail(dl_ctx *c, dl_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static dl_status ref_fail(dl_ctx *c, dl_status st, const char *fmt, ...)
{
    char buf[sizeof c->err];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return c ? dl_fail(c, st, "%s", buf) : st;
}

static dl_status oom(dl_ctx *c, const char *what)
{
    return ref_fail(c, DL_ERR_IO, "%s: out of memory", what);
}

static bool has_prefix_ci(const char *s, const char *prefix)
{
    return !strncasecmp(s, prefix, strlen(prefix));
}

static bool is_regular_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ======================================================================================
 * Parsing
 * ====================================================================================== */

void dl_ref_free(dl_ref *r)
{
    if (!r)
        return;
    free(r->text);
    free(r->name);
    free(r->repo);
    free(r->file);
    free(r->quant);
    free(r->url);
    free(r->path);
    memset(r, 0, sizeof *r);
}

/* A quant as typed ("q8_0") into r->quant in upper case; letters, digits and '_' only. */
static dl_status set_quant(dl_ctx *c, dl_ref *r, const char *q, size_t n)
{
    if (n == 0 || n > 31)
        return ref_fail(c, DL_ERR_ARG, "'%s': empty or overlong quant after ':'", r->text);
    if (!(r->quant = malloc(n + 1)))
        return oom(c, r->text);
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)q[i]) && q[i] != '_')
            return ref_fail(c, DL_ERR_ARG, "'%s': a quant is letters, digits and '_' "
                            "(like Q4_K_M), not '%.*s'", r->text, (int)n, q);
        r->quant[i] = (char)toupper((unsigned char)q[i]);
    }
    r->quant[n] = 0;
    return DL_OK;
}

/* Split a copy of path at '/' into comp[]; "", "." and ".." components are refused, since
 * the components become folder names in the store. */
static int split_components(char *path, char **comp, int max)
{
    int n = 0;
    for (char *p = path; n < max;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = 0;
        if (!*p || !strcmp(p, ".") || !strcmp(p, ".."))
            return -1;
        comp[n++] = p;
        if (!slash)
            return n;
        p = slash + 1;
    }
    return -1;
}

/* comp[from..n) joined with '/' (malloc'd). */
static char *join_components(char **comp, int from, int n)
{
    size_t len = 1;
    for (int i = from; i < n; i++)
        len += strlen(comp[i]) + 1;
    char *s = malloc(len), *o = s;
    if (!s)
        return NULL;
    for (int i = from; i < n; i++)
        o += sprintf(o, "%s%s", i > from ? "/" : "", comp[i]);
    *o = 0;
    return s;
}

/* OWNER/REPO[:QUANT] from comp[0..2) into r->repo (and r->quant). */
static dl_status set_repo(dl_ctx *c, dl_ref *r, char **comp, bool quant_ok)
{
    char *colon = strchr(comp[1], ':');
    if (colon && !quant_ok)
        return ref_fail(c, DL_ERR_ARG, "'%s': a quant (':Q8_0') goes after the repository, "
                        "not inside a file path", r->text);
    size_t repo_len = colon ? (size_t)(colon - comp[1]) : strlen(comp[1]);
    if (!(r->repo = dl_strfmt("%s/%.*s", comp[0], (int)repo_len, comp[1])))
        return oom(c, r->text);
    /* Checked only now that the quant is cut off: "a/..:Q4_K_M" passed split_components
     * as "..:Q4_K_M" but names the folder "..", which would reach another repository. */
    if (!dl_name_is_repo(r->repo))
        return ref_fail(c, DL_ERR_ARG, "'%s': '%s' is not a repository name (OWNER/REPO, "
                        "neither empty, '.' nor '..')", r->text, r->repo);
    return colon ? set_quant(c, r, colon + 1, strlen(colon + 1)) : DL_OK;
}

/* The part after "hf.co/" (or a Hugging Face URL's path): OWNER/REPO[:QUANT],
 * OWNER/REPO/tree/main, OWNER/REPO/PATH.gguf, OWNER/REPO/{blob,resolve,raw}/main/PATH.gguf
 * (the forms the Hugging Face web pages link to).
 * *other_rev is set (and nothing else) for a blob/resolve form on another revision, which
 * only a plain URL can express. */
static dl_status parse_hf_path(dl_ctx *c, dl_ref *r, const char *rest, bool *other_rev)
{
    char buf[PATH_MAX], *comp[MAX_COMPONENTS];
    size_t len = strcspn(rest, "?#");
    if (len >= sizeof buf)
        return ref_fail(c, DL_ERR_ARG, "'%s': reference too long", r->text);
    memcpy(buf, rest, len);
    buf[len] = 0;
    if (len > 0 && buf[len - 1] == '/')
        buf[--len] = 0;
    int n = split_components(buf, comp, MAX_COMPONENTS);
    if (n < 2)
        return ref_fail(c, DL_ERR_ARG, "'%s': expected hf.co/OWNER/REPO[:QUANT] or "
                        "hf.co/OWNER/REPO/FILE.gguf", r->text);
    int file_from = 2;
    if (n >= 3 && !strcmp(comp[2], "tree") && (n == 3 || (n == 4 && !strcmp(comp[3], "main"))))
        n = 2;
    else if (n >= 3 && (!strcmp(comp[2], "blob") || !strcmp(comp[2], "resolve") ||
                        !strcmp(comp[2], "raw"))) {
        if (n < 5)
            return ref_fail(c, DL_ERR_ARG, "'%s': expected .../%s/main/FILE.gguf", r->text,
                            comp[2]);
        if (strcmp(comp[3], "main")) {
            *other_rev = true;
            return DL_OK;
        }
        file_from = 4;
    }
    r->kind = n == 2 ? DL_REF_HF_REPO : DL_REF_HF_FILE;
    dl_status st = set_repo(c, r, comp, n == 2);
    if (st || n == 2)
        return st;
    if (!(r->file = join_components(comp, file_from, n)))
        return oom(c, r->text);
    if (!dl_name_ends_with(r->file, ".gguf"))
        return ref_fail(c, DL_ERR_ARG, "'%s': '%s' is not a .gguf file", r->text, r->file);
    return DL_OK;
}

/* Hugging Face's own hosts, and the configured endpoint's, carry repository paths. */
static bool is_hf_host(dl_ctx *c, const char *host, bool *endpoint_only)
{
    char ep[256];
    *endpoint_only = false;
    if (!strcmp(host, "huggingface.co") || !strcmp(host, "hf.co") ||
        !strcmp(host, "www.huggingface.co"))
        return true;
    if (c && dl_url_host(dl_hf_endpoint(c), ep, sizeof ep) && !strcmp(ep, host))
        return *endpoint_only = true;
    return false;
}

static dl_status parse_url(dl_ctx *c, dl_ref *r)
{
    char host[256];
    if (!dl_url_host(r->text, host, sizeof host))
        return ref_fail(c, DL_ERR_ARG, "'%s': URL without a host name", r->text);
    bool endpoint_only, other_rev = false;
    if (is_hf_host(c, host, &endpoint_only)) {
        const char *path = strstr(r->text, "://") + 3;
        path += strcspn(path, "/");
        path += *path == '/';
        char comp2[16] = "";
        sscanf(path, "%*[^/]/%*[^/]/%15[^/]", comp2);
        /* On a mirror endpoint only the unambiguous resolve/blob forms are repository paths. */
        if (!endpoint_only || !strcmp(comp2, "resolve") || !strcmp(comp2, "blob") ||
            !strcmp(comp2, "raw")) {
            dl_status st = parse_hf_path(c, r, path, &other_rev);
            if (st || !other_rev)
                return st;
        }
    }
    free(r->repo);
    free(r->file);
    free(r->quant);
    r->repo = r->file = r->quant = NULL;
    r->kind = DL_REF_URL;
    return (r->url = strdup(r->text)) ? DL_OK : oom(c, r->text);
}

/* "name", "name:QUANT" where name itself may hold a colon ("llama3.2:1b:Q8_0"). */
static dl_status parse_catalog(dl_ctx *c, dl_ref *r, bool *matched)
{
    const dl_cat_entry *e = dl_catalog_find(c, r->text);
    const char *colon = strrchr(r->text, ':');
    char name[256];
    *matched = false;
    if (!e && colon && (size_t)(colon - r->text) < sizeof name) {
        snprintf(name, sizeof name, "%.*s", (int)(colon - r->text), r->text);
        e = dl_catalog_find(c, name);
    }
    if (!e)
        return DL_OK;
    *matched = true;
    r->kind = DL_REF_CATALOG;
    if (!(r->name = strdup(e->name)) || !(r->repo = strdup(e->repo)))
        return oom(c, r->text);
    if (strcasecmp(e->name, r->text))
        return set_quant(c, r, colon + 1, strlen(colon + 1));
    return DL_OK;
}

/* Without a context: "a:b" or "a:b:QUANT" made of name characters is taken for a catalog
 * name, unchecked. */
static bool parse_catalog_syntax(dl_ref *r)
{
    const char *c1 = strchr(r->text, ':');
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || c1 == r->text || !c1[1] || (c2 && (strchr(c2 + 1, ':') || !c2[1] || c2 == c1 + 1)))
        return false;
    for (const char *p = r->text; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(":._-", *p))
            return false;
    size_t n = c2 ? (size_t)(c2 - r->text) : strlen(r->text);
    r->kind = DL_REF_CATALOG;
    r->name = dl_strfmt("%.*s", (int)n, r->text);
    return r->name && (!c2 || set_quant(NULL, r, c2 + 1, strlen(c2 + 1)) == DL_OK);
}

static dl_status set_local(dl_ctx *c, dl_ref *r)
{
    r->kind = DL_REF_LOCAL;
    return (r->path = strdup(r->text)) ? DL_OK : oom(c, r->text);
}

/* Local paths and catalog names, once the URL and hf.co forms are ruled out. */
static dl_status parse_plain(dl_ctx *c, dl_ref *r)
{
    const char *t = r->text;
    if (is_regular_file(t) || dl_name_ends_with(t, ".gguf") || strchr(t, '/') || t[0] == '~')
        return set_local(c, r);
    if (!c)
        return parse_catalog_syntax(r) ? DL_OK : set_local(c, r);
    dl_status st = dl_catalog_load(c);
    if (st)   /* a name:tag with no catalog to look in: say why, not "no such file" */
        return strchr(t, ':') ? st : set_local(c, r);
    bool matched;
    st = parse_catalog(c, r, &matched);
    return st || matched ? st : set_local(c, r);
}

/* The length of text's URL scheme ("ftp" in "ftp://..."), 0 when it does not start with one. */
static size_t url_scheme_len(const char *text)
{
    size_t n = 0;
    if (!isalpha((unsigned char)text[0]))
        return 0;
    while (isalnum((unsigned char)text[n]) || (text[n] && strchr("+.-", text[n])))
        n++;
    return strncmp(text + n, "://", 3) ? 0 : n;
}

dl_status dl_ref_parse(dl_ctx *c, const char *text, dl_ref *out)
{
    memset(out, 0, sizeof *out);
    if (!text || !*text)
        return ref_fail(c, DL_ERR_ARG, "empty model reference");
    if (!(out->text = strdup(text)))
        return oom(c, text);
    dl_status st;
    bool other_rev = false;
    if (has_prefix_ci(text, "https://") || has_prefix_ci(text, "http://"))
        st = parse_url(c, out);
    else if (has_prefix_ci(text, "hf.co/"))
        st = parse_hf_path(c, out, text + 6, &other_rev);
    else if (has_prefix_ci(text, "huggingface.co/"))
        st = parse_hf_path(c, out, text + 15, &other_rev);
    else if (url_scheme_len(text) && !is_regular_file(text))
        st = ref_fail(c, DL_ERR_ARG, "%s: unsupported URL scheme %.*s (sizeup downloads over "
                      "http and https)", text, (int)url_scheme_len(text), text);
    else
        st = parse_plain(c, out);
    if (!st && other_rev)
        st = ref_fail(c, DL_ERR_ARG, "'%s': only the main revision has a short form; give the "
                      "https://huggingface.co/.../resolve/REVISION/... URL instead", text);
    if (st) /* nothing to free on failure, whatever the caller does */
        dl_ref_free(out);
    return st;
}

/* ======================================================================================
 * Resolved file lists
 * ====================================================================================== */

void dl_resolved_free(dl_resolved *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_files; i++) {
        free(r->files[i].url);
        free(r->files[i].path);
        free(r->files[i].rel_name);
        free(r->files[i].sha256_hex);
        free(r->files[i].made_from);
    }
    free(r->files);
    free(r->repo);
    free(r->quant);
    memset(r, 0, sizeof *r);
}

/* A regular file itself, not a link to one. */
static bool is_own_file(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Complete in the store: the file and the record dl_fetch_file writes after verifying it,
 * reached without a link (a linked file or folder is not the store's, dl_store_check_path). */
static bool is_complete(dl_ctx *c, const char *path)
{
    char rec[PATH_MAX];
    if (snprintf(rec, sizeof rec, "%s.json", path) >= (int)sizeof rec)
        return false;
    return is_own_file(path) && is_own_file(rec) && dl_store_check_path(c, path) == DL_OK;
}

/* Complete and still the size its record says (checked on every resolve, so a file truncated
 * or rewritten since it was verified is never used as if it were whole), or damaged: there,
 * with a record, at another size. A record that does not parse counts as absent. */
static void stored_state(dl_ctx *c, const char *path, bool *present, bool *damaged)
{
    struct stat st;
    dl_record r;
    *present = *damaged = false;
    if (!is_complete(c, path) || lstat(path, &st) != 0 || dl_record_read(path, &r) != DL_OK)
        return;
    *damaged = r.size != (uint64_t)st.st_size;
    *present = !*damaged;
    dl_record_free(&r);
}

/* Append one file; url may be NULL (local files). Takes ownership of nothing. */
static dl_status add_file(dl_ctx *c, dl_resolved *out, const char *url, const char *path,
                          const char *rel_name, uint64_t size, const char *sha)
{
    dl_file *f = realloc(out->files, (out->n_files + 1) * sizeof *f);
    if (!f)
        return oom(c, path);
    out->files = f;
    f = &out->files[out->n_files++];
    memset(f, 0, sizeof *f);
    f->url = dl_strdup(url);
    f->path = strdup(path);
    f->rel_name = strdup(rel_name);
    f->sha256_hex = dl_strdup(sha);
    f->size = size;
    stored_state(c, path, &f->present, &f->damaged);
    if ((url && !f->url) || !f->path || !f->rel_name || (sha && !f->sha256_hex))
        return oom(c, path);
    return DL_OK;
}

/* One file of an HF repository: resolve URL on the endpoint, STORE/OWNER/REPO/PATH. */
static dl_status add_repo_file(dl_ctx *c, dl_resolved *out, const char *repo, const char *rel,
                               uint64_t size, const char *sha)
{
    char *esc_repo = dl_url_escape_path(repo), *esc_rel = dl_url_escape_path(rel);
    char *url = esc_repo && esc_rel ? dl_strfmt("%s/%s/resolve/main/%s", dl_hf_endpoint(c),
                                                esc_repo, esc_rel) : NULL;
    char *path = dl_strfmt("%s/%s/%s", dl_store_dir(c), repo, rel);
    dl_status st = url && path ? add_file(c, out, url, path, rel, size, sha) : oom(c, rel);
    free(esc_repo);
    free(esc_rel);
    free(url);
    free(path);
    return st;
}

/* NOT_FOUND unless every file is complete on disk (the offline contract); DAMAGED first when
 * one is there at another size than its record says. */
static dl_status require_present(dl_ctx *c, const char *ref, const dl_resolved *r)
{
    for (size_t i = 0; i < r->n_files; i++) {
        struct stat st;
        dl_record rec;
        const char *path = r->files[i].path;
        if (!r->files[i].damaged || lstat(path, &st) != 0 || dl_record_read(path, &rec))
            continue;
        dl_status s = dl_fail(c, DL_ERR_DAMAGED, "%s: %s is damaged: %lld bytes on disk, but "
                              "%llu when it was downloaded (it was truncated or changed since)",
                              ref, path, (long long)st.st_size, (unsigned long long)rec.size);
        dl_record_free(&rec);
        return s;
    }
    for (size_t i = 0; i < r->n_files; i++)
        if (!r->files[i].present)
            return dl_fail(c, DL_ERR_NOT_FOUND, "%s is not in the model store (no complete %s); "
                           "pull it first, or give the path of a local .gguf file", ref,
                           r->files[i].path);
    return DL_OK;
}

/* The quant to record for a single file: the one its name shows, if any. */
static dl_status guess_quant(dl_ctx *c, dl_resolved *out, const char *name)
{
    char q[32];
    if (!dl_name_guess_quant(name, q, sizeof q))
        return DL_OK;
    return (out->quant = strdup(q)) ? DL_OK : oom(c, name);
}

/* ---- catalog ---- */

/* The quants an entry offers, "Q4_K_M, Q8_0", into buf. */
static void entry_quants(const dl_cat_entry *e, char *buf, size_t buflen)
{
    buf[0] = 0;
    for (size_t i = 0; i < e->n_files; i++) {
        if (i > 0 && !strcasecmp(e->files[i - 1].quant, e->files[i].quant))
            continue;   /* parts of one split set */
        size_t len = strlen(buf);
        snprintf(buf + len, buflen - len, "%s%s", len ? ", " : "", e->files[i].quant);
    }
}

/* A file of a built-in entry: a shipped one is read from the built-in folder and is present
 * when it has the size the catalog gives (a changed copy is not used); a made one lives at
 * STORE/builtin/FILE and is present, like a download, once it and its record are there. */
static dl_status add_builtin_file(dl_ctx *c, dl_resolved *out, const dl_cat_file *f)
{
    char dir[PATH_MAX];
    if (!dl_builtin_dir(c, dir, sizeof dir))
        return DL_ERR_NOT_FOUND;
    char *path = f->made_from ? dl_strfmt("%s/builtin/%s", dl_store_dir(c), f->file)
                              : dl_strfmt("%s/%s", dir, f->file);
    char *from = f->made_from ? dl_strfmt("%s/%s", dir, f->made_from) : NULL;
    dl_status st = path && (from || !f->made_from)
                       ? add_file(c, out, NULL, path, f->file, f->made_from ? 0 : f->size,
                                  f->sha256_hex)
                       : oom(c, f->file);
    if (!st) {
        dl_file *d = &out->files[out->n_files - 1];
        struct stat sb;
        if (!f->made_from)
            d->present = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
                         (uint64_t)sb.st_size == f->size;
        d->made_from = from;
        from = NULL;
    }
    free(path);
    free(from);
    return st;
}

static dl_status resolve_catalog(dl_ctx *c, const dl_ref *ref, dl_resolved *out)
{
    dl_status st = dl_catalog_load(c);
    if (st)
        return st;
    const dl_cat_entry *e = dl_catalog_find(c, ref->name);
    if (!e)
        return dl_fail(c, DL_ERR_NOT_FOUND, "%s: no model of that name in the catalog",
                       ref->text);
    const char *want = ref->quant ? ref->quant : e->default_quant, *chosen = NULL;
    for (size_t i = 0; i < e->n_files && !st; i++) {
        const dl_cat_file *f = &e->files[i];
        if (strcasecmp(f->quant, want))
            continue;
        chosen = f->quant;
        /* An estimated size would fail verification: let the server's length decide. */
        bool approx = dl_catalog_size_approx(c, f);
        st = e->builtin ? add_builtin_file(c, out, f)
                        : add_repo_file(c, out, e->repo, f->file, approx ? 0 : f->size,
                                        f->sha256_hex);
    }
    out->builtin = e->builtin;
    if (st)
        return st;
    if (!chosen) {
        char quants[256];
        entry_quants(e, quants, sizeof quants);
        return dl_fail(c, DL_ERR_NOT_FOUND, "%s: %s has no %s file; it offers %s", ref->text,
                       e->name, want, quants);
    }
    if (!(out->repo = strdup(e->repo)) || !(out->quant = strdup(chosen)))
        return oom(c, ref->text);
    return DL_OK;
}

/* ---- Hugging Face repositories: candidates from the API listing or the store ---- */

typedef struct cand {
    char *path;        /* path inside the repository */
    uint64_t size;     /* 0 when unknown */
    char *sha;         /* SHA-256 from the LFS pointer, or NULL */
} cand;

typedef struct cand_list {
    cand *v;
    size_t n;
} cand_list;

static void cands_free(cand_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].sha);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static bool cands_add(cand_list *l, const char *path, uint64_t size, const char *sha)
{
    cand *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return false;
    l->v = v;
    v[l->n] = (cand){ strdup(path), size, dl_strdup(sha) };
    if (!v[l->n].path || (sha && !v[l->n].sha)) {
        free(v[l->n].path);
        free(v[l->n].sha);
        return false;
    }
    l->n++;
    return true;
}

static int cand_cmp(const void *a, const void *b)
{
    return strcmp(((const cand *)a)->path, ((const cand *)b)->path);
}

/* Sorted by path, duplicates dropped (a store folder may hold FILE.gguf and FILE.gguf.part). */
static void cands_sort(cand_list *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, cand_cmp);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (k > 0 && !strcmp(l->v[k - 1].path, l->v[i].path)) {
            free(l->v[i].path);
            free(l->v[i].sha);
            continue;
        }
        l->v[k++] = l->v[i];
    }
    l->n = k;
}

/* Model weights, not the vision projectors (mmproj) that multimodal repositories ship. */
static bool is_model_gguf(const char *path)
{
    return dl_name_ends_with(path, ".gguf") && !strcasestr(dl_name_base(path), "mmproj");
}

static const char *lfs_sha(json_t *item)
{
    const char *oid = json_string_value(json_object_get(json_object_get(item, "lfs"), "oid"));
    if (oid && !strncmp(oid, "sha256:", 7))
        oid += 7;
    if (!oid || strlen(oid) != 64 || oid[strspn(oid, "0123456789abcdef")])
        return NULL;
    return oid;
}

/* A path a server named that may become part of a store path: relative, and no empty, "."
 * or ".." component, so no listing can place a file outside its repository's folder. */
static bool is_safe_rel_path(const char *path)
{
    char buf[PATH_MAX], *comp[MAX_COMPONENTS];
    if (!*path || *path == '/' || strlen(path) >= sizeof buf)
        return false;
    snprintf(buf, sizeof buf, "%s", path);
    return split_components(buf, comp, MAX_COMPONENTS) > 0;
}

/* The tree API's JSON array: [{"type":"file","path":..,"size":N,"lfs":{"oid":..}}, ...]. */
static dl_status parse_listing(dl_ctx *c, const char *url, const char *body, cand_list *out)
{
    json_error_t jerr;
    json_t *root = json_loads(body, 0, &jerr), *item;
    size_t i;
    if (!json_is_array(root)) {
        json_decref(root);
        return dl_fail(c, DL_ERR_FORMAT, "the file listing from %s is not a JSON array%s%s",
                       url, root ? "" : ": ", root ? "" : jerr.text);
    }
    json_array_foreach(root, i, item) {
        const char *type = json_string_value(json_object_get(item, "type"));
        const char *path = json_string_value(json_object_get(item, "path"));
        json_t *size = json_object_get(item, "size");
        if (!path || (type && strcmp(type, "file")) || !is_model_gguf(path) ||
            !is_safe_rel_path(path))
            continue;
        if (!json_is_integer(size))
            size = json_object_get(json_object_get(item, "lfs"), "size");
        uint64_t n = json_is_integer(size) && json_integer_value(size) > 0
                         ? (uint64_t)json_integer_value(size) : 0;
        if (!cands_add(out, path, n, lfs_sha(item))) {
            json_decref(root);
            return oom(c, url);
        }
    }
    json_decref(root);
    return DL_OK;
}

static dl_status fetch_listing(dl_ctx *c, const dl_ref *ref, cand_list *out)
{
    char *esc = dl_url_escape_path(ref->repo);
    char *url = esc ? dl_strfmt("%s/api/models/%s/tree/main?recursive=true",
                                dl_hf_endpoint(c), esc) : NULL;
    char *body = NULL;
    size_t len = 0;
    dl_status st = url ? dl_get(c, url, &body, &len) : oom(c, ref->text);
    if (!st)
        st = parse_listing(c, url, body, out);
    free(body);
    free(url);
    free(esc);
    return st;
}

/* Files under STORE/OWNER/REPO/rel: complete ones, and with with_parts unfinished ones too
 * (FILE.gguf.part counts as FILE.gguf), so that `rm` also clears interrupted pulls. */
static dl_status walk_store(dl_ctx *c, const char *root, const char *rel, int depth,
                            bool with_parts, cand_list *out)
{
    char dir[PATH_MAX], full[PATH_MAX], sub[PATH_MAX];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d)
        return DL_OK;   /* nothing stored for this repository */
    dl_status st = DL_OK;
    for (struct dirent *de; !st && (de = readdir(d));) {
        struct stat sb;
        if (de->d_name[0] == '.' && (!de->d_name[1] || !strcmp(de->d_name, "..")))
            continue;
        if (snprintf(full, sizeof full, "%s/%s", dir, de->d_name) >= (int)sizeof full ||
            snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name) >=
                (int)sizeof sub || lstat(full, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode) && depth < 8) {
            st = walk_store(c, root, sub, depth + 1, with_parts, out);
        } else if (S_ISREG(sb.st_mode) && is_model_gguf(sub)) {
            if ((is_complete(c, full) || with_parts) && !cands_add(out, sub, (uint64_t)sb.st_size,
                                                                NULL))
                st = oom(c, full);
        } else if (S_ISREG(sb.st_mode) && with_parts && dl_name_ends_with(sub, ".gguf.part")) {
            sub[strlen(sub) - 5] = 0;
            if (!cands_add(out, sub, 0, NULL))
                st = oom(c, full);
        }
    }
    closedir(d);
    return st;
}

static dl_status scan_store(dl_ctx *c, const char *repo, bool with_parts, cand_list *out)
{
    char root[PATH_MAX];
    if (snprintf(root, sizeof root, "%s/%s/", dl_store_dir(c), repo) >= (int)sizeof root)
        return dl_fail(c, DL_ERR_ARG, "%s: store path too long", repo);
    /* OWNER or REPO as a link would list (and let rm delete) files outside the store; below
     * them walk_store follows no links. */
    int fd;
    dl_status st = dl_store_open_dir(c, root, &fd);
    if (st || fd < 0)
        return st;
    close(fd);
    root[strlen(root) - 1] = 0;
    return walk_store(c, root, "", 0, with_parts, out);
}

/* ---- choosing the files of one quant ---- */

/* Quants to try, in order, when none was asked for: Ollama's default first. */
static const char *const default_quants[] = { "Q4_K_M", "Q4_0", "Q8_0", "F16" };

/* The distinct quants the candidates show, "Q4_K_M, Q8_0", into buf. */
static void list_quants(const cand_list *l, char *buf, size_t buflen)
{
    buf[0] = 0;
    for (size_t i = 0; i < l->n; i++) {
        char q[32], needle[40];
        if (!dl_name_guess_quant(l->v[i].path, q, sizeof q))
            continue;
        snprintf(needle, sizeof needle, ", %s,", q);
        char *have = dl_strfmt(", %s,", buf);
        bool dup = have && strstr(have, needle);
        free(have);
        size_t len = strlen(buf);
        if (!dup)
            snprintf(buf + len, buflen - len, "%s%s", len ? ", " : "", q);
    }
}

static size_t find_quant(const cand_list *l, const char *quant)
{
    for (size_t i = 0; i < l->n; i++)
        if (dl_name_has_quant(l->v[i].path, quant))
            return i;
    return SIZE_MAX;
}

/* All candidates are one model: a single file, or the parts of one split set. */
static bool one_model(const cand_list *l)
{
    size_t p0, p;
    int n0, n;
    if (l->n == 1)
        return true;
    if (!l->n || !dl_name_split(l->v[0].path, &p0, NULL, &n0))
        return false;
    for (size_t i = 1; i < l->n; i++)
        if (!dl_name_split(l->v[i].path, &p, NULL, &n) || p != p0 || n != n0 ||
            strncmp(l->v[i].path, l->v[0].path, p0))
            return false;
    return true;
}

/* First candidate of the quant `want` (NULL: the default_quants in order, then the only model
 * there is). *quant gets the quant chosen. `where` names the place for messages. */
static dl_status pick_first(dl_ctx *c, const char *ref, const char *where, const cand_list *l,
                            const char *want, size_t *first, char *quant, size_t qlen)
{
    *first = want ? find_quant(l, want) : SIZE_MAX;
    for (size_t k = 0; !want && *first == SIZE_MAX && k < 4; k++)
        if ((*first = find_quant(l, default_quants[k])) != SIZE_MAX)
            want = default_quants[k];
    if (*first != SIZE_MAX) {
        snprintf(quant, qlen, "%s", want);
        for (char *p = quant; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        return DL_OK;
    }
    if (!want && one_model(l)) {
        *first = 0;
        if (!dl_name_guess_quant(l->v[0].path, quant, qlen))
            quant[0] = 0;
        return DL_OK;
    }
    char quants[512];
    list_quants(l, quants, sizeof quants);
    if (!l->n)
        return dl_fail(c, DL_ERR_NOT_FOUND, "%s: no .gguf model files %s", ref, where);
    return dl_fail(c, DL_ERR_NOT_FOUND, "%s: no %s file %s; quants there: %s", ref,
                   want ? want : "Q4_K_M, Q4_0, Q8_0 or F16", where,
                   *quants ? quants : "none recognisable in the file names");
}

/* The chosen file, or every part of its split set in order; *n_idx indexes into l. */
static dl_status pick(dl_ctx *c, const char *ref, const char *where, const cand_list *l,
                      const char *want, size_t *idx, size_t *n_idx, char *quant, size_t qlen)
{
    size_t first;
    int n_parts;
    dl_status st = pick_first(c, ref, where, l, want, &first, quant, qlen);
    if (st)
        return st;
    if (!dl_name_split(l->v[first].path, NULL, NULL, &n_parts) || n_parts > MAX_PARTS) {
        idx[0] = first;
        *n_idx = 1;
        return DL_OK;
    }
    for (int k = 1; k <= n_parts; k++) {
        char *name = dl_name_split_part(l->v[first].path, k);
        size_t i = 0;
        while (name && i < l->n && strcmp(l->v[i].path, name))
            i++;
        if (!name || i == l->n) {
            st = name ? dl_fail(c, DL_ERR_NOT_FOUND, "%s: split model %s has no part %d of %d "
                                "%s", ref, l->v[first].path, k, n_parts, where) : oom(c, ref);
            free(name);
            return st;
        }
        free(name);
        idx[k - 1] = i;
    }
    *n_idx = (size_t)n_parts;
    return DL_OK;
}

/* Turn the chosen candidates into files of out. */
static dl_status add_picked(dl_ctx *c, dl_resolved *out, const char *repo, const cand_list *l,
                            const size_t *idx, size_t n, const char *quant)
{
    dl_status st = DL_OK;
    for (size_t i = 0; i < n && !st; i++)
        st = add_repo_file(c, out, repo, l->v[idx[i]].path, l->v[idx[i]].size,
                           l->v[idx[i]].sha);
    if (!st && ((!(out->repo = strdup(repo))) || (*quant && !(out->quant = strdup(quant)))))
        st = oom(c, repo);
    return st;
}

/* hf.co/OWNER/REPO[:QUANT]: from the store when the file is there (online only when it is the
 * quant that would be picked anyway), else from the repository's file listing. */
static dl_status resolve_hf_repo(dl_ctx *c, const dl_ref *ref, bool offline, dl_resolved *out)
{
    size_t idx[MAX_PARTS];
    char quant[32], where[PATH_MAX + 32];
    size_t n;
    cand_list l = { 0 };
    const char *want = ref->quant ? ref->quant : offline ? NULL : default_quants[0];
    snprintf(where, sizeof where, "in the store folder %s/%s", dl_store_dir(c), ref->repo);
    dl_status st = scan_store(c, ref->repo, false, &l);
    cands_sort(&l);
    if (!st)
        st = pick(c, ref->text, where, &l, want, idx, &n, quant, sizeof quant);
    if (!st)
        st = add_picked(c, out, ref->repo, &l, idx, n, quant);
    /* A damaged file is fetched again: the listing gives its size and hash to check. */
    bool damaged = false;
    for (size_t i = 0; !st && i < out->n_files; i++)
        damaged |= out->files[i].damaged;
    if ((!st && !damaged) || offline) {
        cands_free(&l);
        return st;
    }
    cands_free(&l);
    dl_resolved_free(out);
    out->kind = ref->kind;
    snprintf(where, sizeof where, "in %s", ref->repo);
    st = fetch_listing(c, ref, &l);
    cands_sort(&l);
    if (!st)
        st = pick(c, ref->text, where, &l, ref->quant, idx, &n, quant, sizeof quant);
    if (!st)
        st = add_picked(c, out, ref->repo, &l, idx, n, quant);
    cands_free(&l);
    return st;
}

/* ---- single files: hf.co/OWNER/REPO/FILE.gguf, URLs, local paths ---- */

/* How many files `name` stands for: N for a part of a split set, else 1. */
static int parts_of(const char *name)
{
    int n;
    return dl_name_split(name, NULL, NULL, &n) && n <= MAX_PARTS ? n : 1;
}

/* name itself, or part k of its split set (malloc'd). */
static char *part_name(const char *name, int n_parts, int k)
{
    return n_parts > 1 ? dl_name_split_part(name, k) : strdup(name);
}

static dl_status resolve_hf_file(dl_ctx *c, const dl_ref *ref, dl_resolved *out)
{
    int n = parts_of(ref->file);
    dl_status st = DL_OK;
    for (int k = 1; k <= n && !st; k++) {
        char *name = part_name(ref->file, n, k);
        st = name ? add_repo_file(c, out, ref->repo, name, 0, NULL) : oom(c, ref->text);
        free(name);
    }
    return st ? st : guess_quant(c, out, ref->file);
}

/* STORE/HOST/<url path>, with empty components dropped and "." or ".." refused, so that no
 * URL can name a file outside the store. */
static dl_status url_store_path(dl_ctx *c, const char *ref, const char *url, char **out)
{
    char host[256], buf[PATH_MAX], *comp[MAX_COMPONENTS];
    const char *p = strstr(url, "://");
    if (!dl_url_host(url, host, sizeof host) || !p || !strcmp(host, ".") || !strcmp(host, ".."))
        return dl_fail(c, DL_ERR_ARG, "%s: URL without a usable host name", ref);
    p += 3;
    p += strcspn(p, "/?#");
    size_t len = 0;
    for (; *p && *p != '?' && *p != '#' && len + 1 < sizeof buf; p++)
        if (*p != '/' || (len > 0 && buf[len - 1] != '/'))
            buf[len++] = *p;
    if (len > 0 && buf[len - 1] == '/')
        len--;
    buf[len] = 0;
    int n = len ? split_components(buf, comp, MAX_COMPONENTS) : 0;
    if (n <= 0)
        return dl_fail(c, DL_ERR_ARG, "%s: the URL path names no file (or holds '.' or '..')",
                       ref);
    char *joined = join_components(comp, 0, n);
    *out = joined ? dl_strfmt("%s/%s/%s", dl_store_dir(c), host, joined) : NULL;
    free(joined);
    return *out ? DL_OK : oom(c, ref);
}

static dl_status resolve_url(dl_ctx *c, const dl_ref *ref, dl_resolved *out)
{
    size_t base_len = strcspn(ref->url, "?#");
    char *base = dl_strfmt("%.*s", (int)base_len, ref->url);
    if (!base)
        return oom(c, ref->text);
    int n = parts_of(dl_name_base(base));
    dl_status st = DL_OK;
    for (int k = 1; k <= n && !st; k++) {
        char *name = part_name(base, n, k);
        char *url = name ? dl_strfmt("%s%s", name, ref->url + base_len) : NULL;
        char *path = NULL;
        st = url ? url_store_path(c, ref->text, url, &path) : oom(c, ref->text);
        if (!st)
            st = add_file(c, out, url, path, dl_name_base(path), 0, NULL);
        free(path);
        free(url);
        free(name);
    }
    if (!st)
        st = guess_quant(c, out, base);
    free(base);
    return st;
}

bool dl_ref_suggest(dl_ctx *c, const char *text)
{
    char was[sizeof c->err], names[512];
    if (!text || strchr(text, '/') || dl_name_ends_with(text, ".gguf") || text[0] == '~')
        return false;
    memcpy(was, c->err, sizeof was);
    if (dl_catalog_load(c) != DL_OK || !dl_catalog_suggest(c, text, names, sizeof names)) {
        memcpy(c->err, was, sizeof was);   /* a missing catalog is not this reference's fault */
        return false;
    }
    dl_fail(c, DL_ERR_NOT_FOUND, "%s is not a file or a catalog name; did you mean %s? "
            "(sizeup catalog lists them)", text, names);
    return true;
}

static dl_status resolve_local(dl_ctx *c, const dl_ref *ref, dl_resolved *out)
{
    if (!is_regular_file(ref->path)) {
        if (dl_ref_suggest(c, ref->path))
            return DL_ERR_NOT_FOUND;
        bool name_like = strchr(ref->path, ':') && !strchr(ref->path, '/');
        return dl_fail(c, DL_ERR_NOT_FOUND, "%s: no such file%s", ref->path,
                       name_like ? ", and no catalog model of that name (see `sizeup catalog`)"
                                 : "");
    }
    int n = parts_of(dl_name_base(ref->path));
    dl_status st = DL_OK;
    for (int k = 1; k <= n && !st; k++) {
        char *path = part_name(ref->path, n, k);
        struct stat sb;
        if (!path)
            st = oom(c, ref->path);
        else if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            st = dl_fail(c, DL_ERR_NOT_FOUND, "%s: part %d of %d of this split model (%s) is "
                         "missing", ref->path, k, n, path);
        else if (!(st = add_file(c, out, NULL, path, dl_name_base(path), (uint64_t)sb.st_size,
                                 NULL)))
            out->files[out->n_files - 1].present = true;
        free(path);
    }
    return st ? st : guess_quant(c, out, ref->path);
}

/* ---- dispatch ---- */

dl_status dl_resolve_ref(dl_ctx *c, const dl_ref *ref, bool offline, dl_resolved *out)
{
    dl_status st;
    memset(out, 0, sizeof *out);
    out->kind = ref->kind;
    if (ref->kind != DL_REF_LOCAL && (st = dl_store_ready(c)) != DL_OK)
        return st;
    switch (ref->kind) {
    case DL_REF_LOCAL: st = resolve_local(c, ref, out); break;
    case DL_REF_CATALOG: st = resolve_catalog(c, ref, out); break;
    case DL_REF_HF_REPO: st = resolve_hf_repo(c, ref, offline, out); break;
    case DL_REF_HF_FILE: st = resolve_hf_file(c, ref, out); break;
    case DL_REF_URL: st = resolve_url(c, ref, out); break;
    default: st = dl_fail(c, DL_ERR_ARG, "%s: unknown reference kind", ref->text); break;
    }
    if (!st && !out->repo && ref->repo && !(out->repo = strdup(ref->repo)))
        st = oom(c, ref->text);
    if (!st && offline && ref->kind != DL_REF_LOCAL)
        st = require_present(c, ref->text, out);
    if (st) {
        dl_resolved_free(out);
        out->kind = ref->kind;
    }
    return st;
}

dl_status dl_resolve(dl_ctx *c, const char *text, bool offline, dl_resolved *out)
{
    dl_ref ref;
    memset(out, 0, sizeof *out);
    dl_status st = dl_ref_parse(c, text, &ref);
    if (!st)
        st = dl_resolve_ref(c, &ref, offline, out);
    dl_ref_free(&ref);
    return st;
}

/* ======================================================================================
 * Pull, locate, remove
 * ====================================================================================== */

/* dl_fetch_file reports each file as 1 of 1; this relays its progress with the part number
 * of a split model filled in. */
typedef struct part_progress {
    dl_progress_fn fn;
    void *user;
    int part, n_parts;
} part_progress;

static int relay_progress(const dl_progress *p, void *user)
{
    const part_progress *pp = user;
    dl_progress q = *p;
    q.part = pp->part;
    q.n_parts = pp->n_parts;
    return pp->fn(&q, pp->user);
}

dl_status dl_pull(dl_ctx *c, const char *ref, char **path_out)
{
    dl_resolved r;
    *path_out = NULL;
    dl_status st = dl_resolve(c, ref, false, &r);
    if (st)
        return st;
    part_progress pp = { c->progress, c->progress_user, 1, (int)r.n_files };
    if (pp.fn)
        dl_set_progress(c, relay_progress, &pp);
    for (size_t i = 0; i < r.n_files && !st; i++) {
        const dl_file *f = &r.files[i];
        dl_expect exp = { f->size, f->sha256_hex, .gguf = true };
        pp.part = (int)i + 1;
        if (!f->present && r.kind != DL_REF_LOCAL && !f->url)   /* built-in: nothing to fetch */
            st = dl_fail(c, DL_ERR_NOT_FOUND, f->made_from
                             ? "%s: %s is made by sizeup from the built-in %s, not downloaded"
                             : "%s: the built-in file %s is missing or changed; reinstall "
                               "sizeup%s", ref, f->path, f->made_from ? f->made_from : "");
        else if (!f->present && r.kind != DL_REF_LOCAL)
            st = dl_fetch_file(c, f->url, f->path, &exp);
    }
    if (pp.fn)
        dl_set_progress(c, pp.fn, pp.user);
    if (!st && !(*path_out = strdup(r.files[0].path)))
        st = oom(c, ref);
    dl_resolved_free(&r);
    return st;
}

dl_status dl_locate(dl_ctx *c, const char *ref, char **path_out)
{
    dl_resolved r;
    *path_out = NULL;
    dl_status st = dl_resolve(c, ref, true, &r);
    if (st)
        return st;
    /* Best effort: a record that cannot be rewritten only loses the time `sizeup list` shows. */
    for (size_t i = 0; r.kind != DL_REF_LOCAL && i < r.n_files; i++)
        if (dl_store_rel(c, r.files[i].path))   /* never the built-in folder's files */
            dl_record_touch(r.files[i].path);
    if (!(*path_out = strdup(r.files[0].path)))
        st = oom(c, ref);
    dl_resolved_free(&r);
    return st;
}

/* ---- remove ---- */

typedef struct path_list {
    char **v;
    size_t n;
} path_list;

static void paths_free(path_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Takes ownership of p (NULL means out of memory). */
static bool paths_add(path_list *l, char *p)
{
    char **v = p ? realloc(l->v, (l->n + 1) * sizeof *v) : NULL;
    if (!v) {
        free(p);
        return false;
    }
    l->v = v;
    l->v[l->n++] = p;
    return true;
}

/* A path in the store that rm takes: a model file. A record, part or lock goes with its model
 * and never alone (a model without its record escapes every size check), and a folder is not
 * removed wholesale. */
static dl_status only_models(dl_ctx *c, const char *given, const char *real)
{
    static const char *const beside[] = { ".json", ".part", ".part.json", ".lock" };
    struct stat st;
    if (stat(real, &st) == 0 && S_ISDIR(st.st_mode))
        return dl_fail(c, DL_ERR_ARG, "%s is a folder in the model store, not a model; give a "
                       "model's .gguf path or reference (sizeup list shows them)", given);
    if (dl_name_ends_with(real, ".gguf"))
        return DL_OK;
    for (size_t k = 0; k < sizeof beside / sizeof *beside; k++) {
        size_t n = strlen(given), m = strlen(beside[k]);
        if (n >= m + 5 && !strcmp(given + n - m, beside[k]) &&
            !strncasecmp(given + n - m - 5, ".gguf", 5))
            return dl_fail(c, DL_ERR_ARG, "%s is not a model file: it belongs to %.*s, and sizeup "
                           "rm deletes a model together with its record and parts (sizeup rm "
                           "%.*s)", given, (int)(n - m), given, (int)(n - m), given);
    }
    return dl_fail(c, DL_ERR_ARG, "%s is not a model file (.gguf); sizeup rm deletes only "
                   "models from the store, each with its record and parts", given);
}

/* A local path to remove: only inside the store, named through its real path so that a
 * symlink cannot lead outside. The paths added are written under the store folder as
 * configured (which may itself be a link), like every other path removal handles. */
static dl_status local_paths(dl_ctx *c, const dl_ref *ref, path_list *out)
{
    char real[PATH_MAX], root[PATH_MAX];
    if (!realpath(dl_store_dir(c), root))
        return dl_fail(c, DL_ERR_NOT_FOUND, "%s: the model store %s does not exist", ref->text,
                       dl_store_dir(c));
    if (!realpath(ref->path, real))
        return dl_fail(c, DL_ERR_NOT_FOUND, "%s: no such file", ref->path);
    size_t n = strlen(root);
    if (!strcmp(real, root))
        return dl_fail(c, DL_ERR_ARG, "%s is the model store itself; sizeup rm deletes models "
                       "in it one at a time (sizeup list shows them)", ref->path);
    if (strncmp(real, root, n) || real[n] != '/')
        return dl_fail(c, DL_ERR_ARG, "%s is outside the model store (%s); sizeup rm only "
                       "deletes what it downloaded", ref->path, root);
    dl_status st = only_models(c, ref->path, real);
    if (st)
        return st;
    int parts = parts_of(dl_name_base(real));
    for (int k = 1; k <= parts; k++) {
        char *part = part_name(real + n, parts, k);
        if (!paths_add(out, part ? dl_strfmt("%s%s", dl_store_dir(c), part) : NULL)) {
            free(part);
            return oom(c, ref->text);
        }
        free(part);
    }
    return DL_OK;
}

/* What an hf.co/OWNER/REPO[:QUANT] reference names in the store, finished or not. */
static dl_status repo_paths(dl_ctx *c, const dl_ref *ref, path_list *out)
{
    size_t idx[MAX_PARTS], n;
    char quant[32], where[PATH_MAX + 32];
    cand_list l = { 0 };
    snprintf(where, sizeof where, "in the store folder %s/%s", dl_store_dir(c), ref->repo);
    dl_status st = scan_store(c, ref->repo, true, &l);
    cands_sort(&l);
    if (!st)
        st = pick(c, ref->text, where, &l, ref->quant, idx, &n, quant, sizeof quant);
    for (size_t i = 0; !st && i < n; i++)
        if (!paths_add(out, dl_strfmt("%s/%s/%s", dl_store_dir(c), ref->repo, l.v[idx[i]].path)))
            st = oom(c, ref->text);
    cands_free(&l);
    return st;
}

/* The other kinds name their paths without the network. */
static dl_status named_paths(dl_ctx *c, const dl_ref *ref, path_list *out)
{
    dl_resolved r;
    dl_status st = dl_resolve_ref(c, ref, false, &r);
    /* A built-in entry's shipped files are not the store's to delete; what it made there is. */
    for (size_t i = 0; !st && i < r.n_files; i++)
        if (dl_store_rel(c, r.files[i].path) && !paths_add(out, strdup(r.files[i].path)))
            st = oom(c, ref->text);
    dl_resolved_free(&r);
    return st;
}

/* Hold FILE.lock for the removal, so that no transfer of FILE is running or can start while
 * its part goes; a lock held now means one is running, and its part must stay. *fd is -1 when
 * the folder is not there (nothing to remove, nothing to lock). */
static dl_status remove_lock(dl_ctx *c, const char *lock_path, const char *path, int *fd)
{
    *fd = -1;
    int err = dl_lock_try(lock_path, fd);
    if (err == 0 || err == ENOENT)
        return DL_OK;
    if (err != EWOULDBLOCK)
        return dl_fail(c, DL_ERR_IO, "cannot lock %s: %s", lock_path, strerror(err));
    long pid = dl_lock_holder(lock_path);
    char who[48] = "";
    if (pid > 0)
        snprintf(who, sizeof who, " (pid %ld)", pid);
    return dl_fail(c, DL_ERR_IO, "%s is being downloaded%s \u2014 try again when it finishes",
                   path, who);
}

/* Delete path and everything a transfer keeps beside it (its lock is the caller's), by name
 * in its folder dirfd (opened without following links; -1: the folder is not there).
 * *model: the finished file was there; *any: something was. */
static dl_status remove_one(dl_ctx *c, int dirfd, const char *path, bool *model, bool *any)
{
    static const char *const suffix[] = { "", ".json", ".part", ".part.json" };
    char name[NAME_MAX + 16];
    *model = *any = false;
    for (size_t k = 0; dirfd >= 0 && k < sizeof suffix / sizeof *suffix; k++) {
        snprintf(name, sizeof name, "%s%s", dl_name_base(path), suffix[k]);
        if (unlinkat(dirfd, name, 0) == 0) {
            *any = true;
            *model |= k == 0;
        } else if (errno != ENOENT) {
            return dl_fail(c, DL_ERR_IO, "cannot remove %s%s: %s", path, suffix[k],
                           strerror(errno));
        }
    }
    return DL_OK;
}

/* Open the folder of every path before anything is deleted, so one link among them refuses
 * the whole removal (dl_store_open_dir); dirs[i] is -1 where the folder is not there. */
static dl_status remove_dirs(dl_ctx *c, const path_list *l, int *dirs)
{
    dl_status st = DL_OK;
    for (size_t i = 0; i < l->n; i++)
        dirs[i] = -1;
    for (size_t i = 0; !st && i < l->n; i++)
        st = dl_store_open_dir(c, l->v[i], &dirs[i]);
    return st;
}

/* Lock every file's FILE.lock before deleting any, so a split set is never left half
 * removed because one part is being downloaded. fds[i] is -1 where nothing was locked. */
static dl_status remove_locks(dl_ctx *c, const path_list *l, int *fds)
{
    char lock_path[PATH_MAX];
    dl_status st = DL_OK;
    for (size_t i = 0; i < l->n; i++)
        fds[i] = -1;
    for (size_t i = 0; !st && i < l->n; i++) {
        snprintf(lock_path, sizeof lock_path, "%s.lock", l->v[i]);
        st = remove_lock(c, lock_path, l->v[i], &fds[i]);
    }
    return st;
}

static void remove_unlock(const path_list *l, int *fds)
{
    char lock_path[PATH_MAX];
    for (size_t i = 0; i < l->n; i++) {
        snprintf(lock_path, sizeof lock_path, "%s.lock", l->v[i]);
        if (fds[i] >= 0)
            dl_lock_drop(lock_path, fds[i]);
    }
}

/* Every file of l deleted under its lock; emptied folders pruned up to root. */
static dl_status remove_all(dl_ctx *c, const char *root, const path_list *l, size_t *removed,
                            bool *any_removed)
{
    int *fds = malloc((2 * l->n + 1) * sizeof *fds);
    if (!fds)
        return oom(c, root);
    int *dirs = fds + l->n;
    dl_status st = remove_dirs(c, l, dirs);
    bool safe = st == DL_OK;    /* no link on the way: pruning by path stays in the store */
    if (safe)
        st = remove_locks(c, l, fds);
    else
        for (size_t i = 0; i < l->n; i++)
            fds[i] = -1;
    for (size_t i = 0; !st && i < l->n; i++) {
        bool model, any;
        st = remove_one(c, dirs[i], l->v[i], &model, &any);
        *removed += model;
        *any_removed |= any;
    }
    remove_unlock(l, fds);
    for (size_t i = 0; i < l->n; i++)
        if (dirs[i] >= 0)
            close(dirs[i]);
    free(fds);
    for (size_t i = 0; safe && i < l->n; i++)
        dl_prune_dirs(root, l->v[i]);
    return st;
}

dl_status dl_store_remove(dl_ctx *c, const char *text, size_t *removed)
{
    dl_ref ref;
    path_list l = { 0 };
    char root[PATH_MAX];
    bool any_removed = false;
    *removed = 0;
    dl_status st = dl_store_ready(c);
    if (st)
        return st;
    st = dl_ref_parse(c, text, &ref);
    snprintf(root, sizeof root, "%s", dl_store_dir(c));
    if (!st)
        st = ref.kind == DL_REF_LOCAL     ? local_paths(c, &ref, &l)
             : ref.kind == DL_REF_HF_REPO ? repo_paths(c, &ref, &l)
                                          : named_paths(c, &ref, &l);
    if (!st)
        st = remove_all(c, root, &l, removed, &any_removed);
    if (!st && !any_removed)
        st = dl_fail(c, DL_ERR_NOT_FOUND, "%s: nothing of it is in the model store (%s)", text,
                     dl_store_dir(c));
    paths_free(&l);
    dl_ref_free(&ref);
    return st;
}
