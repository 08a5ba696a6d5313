/* Model references on the command line: wherever a command names a model (-m MODEL, inspect's
 * argument, pull), the text may be a local file, a catalog name, hf.co/OWNER/REPO[:QUANT],
 * hf.co/OWNER/REPO/FILE.gguf or a URL. downloads/ does the resolving and the transfers; this
 * file decides what to tell the user, draws the progress (app/progress.c) and turns Ctrl-C into
 * a clean cancel that leaves a resumable part.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "app/progress.h"

/* Ctrl-C during a transfer. The handler only sets flags (dl_cancel is async-signal-safe). The
 * progress callback returns the same flag, so a transfer stops at its next report whatever
 * became of the context's own flag (downloads/ consumes it in the call it stops). */
static volatile sig_atomic_t pull_stop;
static dl_ctx *volatile pull_ctx;

static void on_sigint(int sig)
{
    (void)sig;
    pull_stop = 1;
    dl_ctx *c = pull_ctx;
    if (c)
        dl_cancel(c);
}

/* SA_RESETHAND: a second Ctrl-C, if the transfer is slow to notice, ends the process at once
 * (the part on disk stays resumable either way). */
static void catch_sigint(dl_ctx *c, struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    pull_stop = 0;
    pull_ctx = c;
    sigaction(SIGINT, &sa, old);
}

static void release_sigint(const struct sigaction *old)
{
    sigaction(SIGINT, old, NULL);
    pull_ctx = NULL;
}

static int dl_fail_line(const char *cmd, const char *msg, dl_status st, const char *ref);

dl_ctx *app_dl_open(const char *cmd, const char *cacert)
{
    dl_ctx *c = dl_open();
    if (!c) {
        app_fail(cmd, "out of memory");
        return NULL;
    }
    if (cacert)
        dl_set_cacert(c, cacert);
    /* Every command that opens a context may use the store; with no safe place for it, say
     * which variable to set before anything is resolved or fetched. */
    if (dl_store_ready(c) != DL_OK) {
        app_fail(cmd, "%s", dl_errmsg(c));
        dl_close(c);
        return NULL;
    }
    return c;
}

int app_dl_fail(const char *cmd, const dl_ctx *c, dl_status st, const char *ref_given)
{
    const char *msg = *dl_errmsg(c) ? dl_errmsg(c) : dl_status_name(st);
    /* A URL's password is never shown (README); downloads/ already dropped it from msg. */
    char *shown = dl_url_shown(ref_given);
    const char *ref = shown ? shown : ref_given;
    int rc = dl_fail_line(cmd, msg, st, ref);
    free(shown);
    return rc;
}

static int dl_fail_line(const char *cmd, const char *msg, dl_status st, const char *ref)
{
    /* most messages already start with the reference or URL; do not say it twice */
    bool named = !ref || strstr(msg, ref);
    if (st == DL_ERR_DAMAGED && ref)
        return app_fail(cmd, "%s%s%s; fetch it again with: sizeup pull %s (it replaces the "
                        "damaged file)", named ? "" : ref, named ? "" : ": ", msg, ref);
    if (st != DL_ERR_OFFLINE)
        return app_fail(cmd, "%s%s%s", named ? "" : ref, named ? "" : ": ", msg);
    char hint[80];
    if (!strcmp(cmd, "inspect"))
        snprintf(hint, sizeof hint, "sizeup inspect ./model.gguf");
    else if (!strcmp(cmd, "pull"))
        snprintf(hint, sizeof hint, "sizeup run -m ./model.gguf");
    else
        snprintf(hint, sizeof hint, "sizeup %s -m ./model.gguf", cmd);
    return app_fail(cmd, "%s%s%s (for example: %s)", named ? "" : ref, named ? "" : ": ", msg,
                    hint);
}

void app_pulled_free(app_pulled *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_files; i++)
        free(p->paths[i]);
    free(p->paths);
    free(p->sizes);
    free(p->path);
    memset(p, 0, sizeof *p);
}

/* The catalog's size of the quant r chose, for a catalog entry whose exact sizes downloads/
 * leaves to the server (the catalog marks them approximate); 0 when not known. */
static uint64_t catalog_size(dl_ctx *c, const char *ref, const dl_resolved *r)
{
    dl_ref parsed;
    uint64_t total = 0;
    if (r->kind != DL_REF_CATALOG || !r->quant || dl_ref_parse(c, ref, &parsed) != DL_OK)
        return 0;
    const dl_cat_entry *e = parsed.name ? dl_catalog_find(c, parsed.name) : NULL;
    for (size_t i = 0; e && i < e->n_files; i++)
        if (!strcmp(e->files[i].quant, r->quant))
            total += e->files[i].size;
    dl_ref_free(&parsed);
    return total;
}

/* s with control characters as '?', in a fresh string (NULL when out of memory): names come
 * from a server's listing, and an escape sequence in one must not reach the terminal. */
static char *printable(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    for (size_t i = 0; out && i < n; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (out)
        out[n] = 0;
    return out;
}

/* "pulling REF: FILE (491 MiB) into DIR", or "FILE and 2 more parts (...)" for a split model. */
static void announce(dl_ctx *c, const char *ref, const dl_resolved *r)
{
    uint64_t total = 0, approx = 0;
    bool known = true;
    for (size_t i = 0; i < r->n_files; i++) {
        total += r->files[i].size;
        known = known && r->files[i].size;
    }
    if (!known)
        approx = catalog_size(c, ref, r);
    const dl_file *f = &r->files[0];
    const char *slash = strrchr(f->path, '/');
    const char *base = slash ? slash + 1 : f->path;
    int dir_len = slash ? (int)(slash - f->path) : 1;
    char size[48], tmp[32], more[48] = "";
    if (r->n_files > 1)
        snprintf(more, sizeof more, " and %zu more part%s", r->n_files - 1,
                 r->n_files > 2 ? "s" : "");
    if (known)
        app_fmt_bytes(total, size, sizeof size);
    else if (approx)
        snprintf(size, sizeof size, "about %s", app_fmt_bytes(approx, tmp, sizeof tmp));
    char *pbase = printable(base, strlen(base));
    char *pdir = printable(slash ? f->path : ".", (size_t)dir_len);
    char *shown = dl_url_shown(ref);
    fprintf(stderr, "pulling %s: %s%s (%s%s) into %s\n", shown ? shown : "?",
            pbase ? pbase : "?", more, known || approx ? size : "size unknown",
            r->n_files > 1 ? " in all" : "",
            pdir ? pdir : "?");
    free(shown);
    free(pbase);
    free(pdir);
}

/* Copies the resolved file list into out, with the sizes now on disk. */
static int fill_pulled(const char *cmd, const dl_resolved *r, app_pulled *out)
{
    out->paths = calloc(r->n_files, sizeof *out->paths);
    out->sizes = calloc(r->n_files, sizeof *out->sizes);
    out->path = strdup(r->files[0].path);
    if (!out->paths || !out->sizes || !out->path)
        return app_fail(cmd, "out of memory");
    out->n_files = r->n_files;
    for (size_t i = 0; i < r->n_files; i++) {
        struct stat sb;
        if (!(out->paths[i] = strdup(r->files[i].path)))
            return app_fail(cmd, "out of memory");
        out->sizes[i] = stat(r->files[i].path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    }
    return 0;
}

/* Whether a part of r's files stays on disk to resume from (downloads/ deletes one that no
 * ETag, date or checksum guards: README, rule 3 of docs/DESIGN.md). */
static bool part_kept(const dl_resolved *r)
{
    struct stat sb;
    char part[PATH_MAX];
    for (size_t i = 0; i < r->n_files; i++)
        if (snprintf(part, sizeof part, "%s.part", r->files[i].path) < (int)sizeof part &&
            stat(part, &sb) == 0 && sb.st_size > 0)
            return true;
    return false;
}

static int cancelled(const char *cmd, const app_progress *pr, const dl_resolved *r)
{
    char a[32], b[32];
    app_fmt_bytes(pr->done, a, sizeof a);
    if (pr->done && !part_kept(r))
        app_fail(cmd, "cancelled; the download cannot be resumed (the server gives no ETag or "
                 "Last-Modified date), so the %s received were deleted", a);
    else if (pr->total)
        app_fail(cmd, "cancelled; run the same command again to resume (%s of %s kept)", a,
                 app_fmt_bytes(pr->total, b, sizeof b));
    else
        app_fail(cmd, "cancelled; run the same command again to resume (%s kept)", a);
    return 130; /* 128 + SIGINT, what a shell reports for a process Ctrl-C ended */
}

/* The transfer itself, with the display and Ctrl-C handling around it. */
static int transfer(const char *cmd, dl_ctx *c, const char *ref, bool quiet,
                    const dl_resolved *r)
{
    app_progress pr;
    app_progress_init(&pr, stderr, isatty(STDERR_FILENO), quiet, &pull_stop);
    dl_set_progress(c, app_progress_update, &pr);
    char *first = NULL;
    dl_status st = dl_pull(c, ref, &first);
    free(first);
    dl_set_progress(c, NULL, NULL);
    app_progress_end(&pr);
    if (st == DL_ERR_CANCELLED || (st && pull_stop))
        return cancelled(cmd, &pr, r);
    return st ? app_dl_fail(cmd, c, st, ref) : 0;
}

/* A built-in demo model "pulled": found, or made in the store (app/demo.c), never fetched. */
static int pull_builtin(const char *cmd, dl_ctx *c, const char *ref, bool quiet,
                        app_pulled *out)
{
    dl_resolved r;
    out->builtin = true;
    if (dl_resolve(c, ref, false, &r) == DL_OK) {   /* no network for built-in entries */
        out->already = true;
        for (size_t i = 0; i < r.n_files; i++)
            out->already = out->already && r.files[i].present;
        dl_resolved_free(&r);
    }
    char *path = NULL;
    int rc = app_builtin_path(cmd, c, ref, quiet, &path);
    if (rc)
        return rc;
    r = (dl_resolved){ .n_files = 1, .files = &(dl_file){ .path = path } };
    rc = fill_pulled(cmd, &r, out);
    free(path);
    if (rc)
        app_pulled_free(out);
    return rc;
}

int app_pull(const char *cmd, dl_ctx *c, const char *ref, bool quiet, app_pulled *out)
{
    memset(out, 0, sizeof *out);
    if (app_is_remote_ref(ref)) {   /* nothing to fetch: the server holds the weights */
        char *shown = dl_url_shown(ref);
        int rc = app_fail(cmd, "%s is a model served over HTTP (URL#MODEL or @NAME): it cannot "
                          "be pulled, it runs where it is served (sizeup run -m %s)",
                          shown ? shown : "?", shown ? shown : "REF");
        free(shown);
        return rc;
    }
    if (app_is_builtin_ref(c, ref))
        return pull_builtin(cmd, c, ref, quiet, out);
    struct sigaction old;
    catch_sigint(c, &old); /* resolving may fetch a file listing: Ctrl-C works there too */
    dl_resolved r;
    dl_status st = dl_resolve(c, ref, false, &r);
    int rc = 0;
    if (st && (st == DL_ERR_CANCELLED || pull_stop))
        rc = app_fail(cmd, "cancelled") + 129;
    else if (st)
        rc = app_dl_fail(cmd, c, st, ref);
    if (rc) {
        release_sigint(&old);
        return rc;
    }
    out->already = true;
    for (size_t i = 0; i < r.n_files; i++)
        out->already = out->already && (r.files[i].present || r.kind == DL_REF_LOCAL);
    for (size_t i = 0; i < r.n_files; i++)
        if (r.files[i].damaged)   /* said even with --quiet: a file in the store is replaced */
            fprintf(stderr, "sizeup %s: %s is damaged (not the size it had when it was "
                    "downloaded); fetching it again\n", cmd, r.files[i].path);
    if (!out->already) {
        if (!quiet)
            announce(c, ref, &r);
        rc = transfer(cmd, c, ref, quiet, &r);
    }
    release_sigint(&old);
    if (!rc)
        rc = fill_pulled(cmd, &r, out);
    dl_resolved_free(&r);
    if (rc)
        app_pulled_free(out);
    return rc;
}

/* The engine opens one file and does not read split.count yet, so the other parts of a split
 * GGUF would never be loaded: refuse it here, before gigabytes are fetched for nothing. */
static int refuse_split(const char *cmd, const char *ref, const dl_resolved *r)
{
    if (r->n_files < 2)
        return 0;
    char *shown = dl_url_shown(ref);
    int rc = app_fail(cmd, "%s is a split GGUF (%zu parts); sizeup pull fetches it, but loading "
                      "split models is not supported yet", shown ? shown : "?", r->n_files);
    free(shown);
    return rc;
}

/* A reference that is not a local file: from the store without the network, else pulled. The
 * file list is resolved first (from the store, else the listing alone), so a split model is
 * refused before any of it is downloaded. */
static int locate_or_pull(const char *cmd, dl_ctx *c, const char *ref, char **path_out)
{
    dl_resolved r;
    dl_status st = dl_resolve(c, ref, true, &r);
    bool stored = st == DL_OK;
    if (st == DL_ERR_NOT_FOUND)
        st = dl_resolve(c, ref, false, &r);
    if (st)
        return app_dl_fail(cmd, c, st, ref);
    int rc = refuse_split(cmd, ref, &r);
    dl_resolved_free(&r);
    if (rc)
        return rc;
    if (stored && (st = dl_locate(c, ref, path_out)) == DL_OK)
        return 0;
    if (stored && st != DL_ERR_NOT_FOUND)   /* gone since: pull it again below */
        return app_dl_fail(cmd, c, st, ref);
    app_pulled p;
    rc = app_pull(cmd, c, ref, false, &p);
    *path_out = p.path;
    p.path = NULL;
    app_pulled_free(&p);
    return rc;
}

/* A file named by its path that lies in the store is checked against its record as a
 * reference to it is (README: a damaged file is never loaded, and the message says how to
 * replace it). 0 for a file outside the store, one without a record, or no store at all. */
static int check_store_file(const char *cmd, const char *path)
{
    char real[PATH_MAX], root[PATH_MAX];
    dl_ctx *c = dl_open();
    const char *store = c ? dl_store_dir(c) : NULL;
    int rc = 0;
    if (store && realpath(store, root) && realpath(path, real)) {
        size_t n = strlen(root);
        char *in = NULL;
        dl_stored *s = NULL;
        if (!strncmp(real, root, n) && real[n] == '/' &&
            asprintf(&in, "%s%s", store, real + n) > 0 && dl_store_stat(c, in, &s) == DL_OK &&
            s->damaged) {
            char again[4200];
            app_refetch_ref(c, s, again, sizeof again);
            rc = app_fail(cmd, "%s is damaged: %llu bytes on disk, but %llu when it was "
                          "downloaded (it was truncated or changed since); %s %s", path,
                          (unsigned long long)s->size, (unsigned long long)s->recorded_size,
                          s->source_url ? "fetch it again with: sizeup pull"
                                        : "delete it with: sizeup rm", again);
        }
        dl_stored_free(s, s ? 1 : 0);
        free(in);
    }
    dl_close(c);
    return rc;
}

int app_model_path(const char *cmd, const char *ref, const char *cacert, char **path_out)
{
    struct stat sb;
    *path_out = NULL;
    if (stat(ref, &sb) == 0) { /* a file that exists is used as is, with no network */
        if (S_ISDIR(sb.st_mode))
            return app_fail(cmd, "%s is a directory, not a model file (give the path of a "
                            ".gguf file)", ref);
        if (check_store_file(cmd, ref))
            return 1;
        *path_out = strdup(ref);
        return *path_out ? 0 : app_fail(cmd, "out of memory");
    }
    if (app_is_remote_ref(ref))
        return app_fail(cmd, "-m names a model served over HTTP (URL#MODEL or @NAME); sizeup %s "
                        "needs a GGUF file (sizeup run -m works with a served model)", cmd);
    dl_ctx *c = app_dl_open(cmd, cacert);
    if (!c)
        return 1;
    dl_ref r;
    int rc = 0;
    dl_status st = dl_ref_parse(c, ref, &r);
    if (st)
        rc = app_dl_fail(cmd, c, st, ref);
    else if (r.kind == DL_REF_LOCAL && dl_ref_suggest(c, ref))
        rc = app_fail(cmd, "%s", dl_errmsg(c));
    else if (r.kind == DL_REF_LOCAL)
        rc = app_fail(cmd, "%s: %s (nor is it a model reference: a catalog name such as "
                      "qwen2.5:0.5b, hf.co/OWNER/REPO[:QUANT] or a URL; see sizeup catalog)",
                      ref, strerror(ENOENT));
    else if (app_is_builtin_ref(c, ref))   /* the demo: no network, made on first use */
        rc = app_builtin_path(cmd, c, ref, false, path_out);
    else
        rc = locate_or_pull(cmd, c, ref, path_out);
    dl_ref_free(&r);
    dl_close(c);
    return rc;
}
