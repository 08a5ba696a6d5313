/* The model store from the command line: `sizeup pull`, `sizeup list`, `sizeup rm` and
 * `sizeup catalog`. downloads/ resolves, transfers and keeps the store; this file parses the
 * options and formats. It also holds the Vulkan "does it fit" probe that catalog and a remote
 * `sizeup inspect` share.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "app/app.h"
#include "app/progress.h"
#include "engine/gguf.h"
#include "engine/vk.h"

/* Fit estimate for catalog entries, from the file size alone (nothing is read): weights
 * + 10% + 256 MiB. At a 4096-token context the f16 KV cache of the catalog's models is 1-9% of
 * their default-quant weights (Qwen2.5 0.5B: 48 MiB of 398 MiB; Llama 3.1 8B: 512 MiB of
 * 4.6 GiB), and the compute buffers plus driver overhead stay under about 256 MiB.
 * `sizeup inspect` on a reference gives the precise figure from the model's header. */
#define FIT_MARGIN_PCT 10
#define FIT_FIXED_BYTES (256ull << 20)
#define FIT_FORMULA "file size + 10% + 256 MiB (weights, KV cache at 4096 tokens, scratch)"

static const char REF_FORMS[] =
    "REF is a local .gguf file, a catalog name with an optional quant (qwen2.5:0.5b,\n"
    "llama3.2:1b:Q8_0; see sizeup catalog), hf.co/OWNER/REPO[:QUANT] (the file is picked by\n"
    "quant from the repository's listing, Q4_K_M by default), hf.co/OWNER/REPO/FILE.gguf, or an\n"
    "https URL.\n";

/* ---- options shared by the four commands ---- */

enum { OPT_CACERT = 1, OPT_QUIET = 2, OPT_JSON = 4, OPT_DEVICE = 8, OPT_REFS = 16 };

typedef struct models_opts {
    const char **refs;   /* (n_refs) borrowed from argv; the array itself is malloc'd */
    int n_refs;
    const char *cacert, *device;
    bool json, quiet, help;
} models_opts;

/* --opt VALUE or --opt=VALUE; NULL when a is not opt. */
static const char *opt_value(const char *a, const char *opt, int argc, char **argv, int *i,
                             bool *missing)
{
    size_t n = strlen(opt);
    if (strncmp(a, opt, n))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n])
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* Returns 0, or 2 after a message; o->refs is freed by the caller (free(o->refs)). */
static int parse_opts(const char *cmd, int argc, char **argv, unsigned allowed, models_opts *o)
{
    memset(o, 0, sizeof *o);
    if (!(o->refs = calloc((size_t)argc + 1, sizeof *o->refs)))
        return app_fail(cmd, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            o->help = true;
        else if ((allowed & OPT_JSON) && !strcmp(a, "--json"))
            o->json = true;
        else if ((allowed & OPT_QUIET) && (!strcmp(a, "--quiet") || !strcmp(a, "-q")))
            o->quiet = true;
        else if ((allowed & OPT_CACERT) && (v = opt_value(a, "--cacert", argc, argv, &i, &missing)))
            o->cacert = v;
        else if ((allowed & OPT_DEVICE) && (v = opt_value(a, "--device", argc, argv, &i, &missing)))
            o->device = v;
        else if (missing)
            return app_fail(cmd, "%s needs a value", a) + 1;
        else if (a[0] == '-' && a[1])
            return app_fail(cmd, "unknown option '%s' (see sizeup %s --help)", a, cmd) + 1;
        else if (allowed & OPT_REFS)
            o->refs[o->n_refs++] = a;
        else
            return app_fail(cmd, "unexpected argument '%s' (see sizeup %s --help)", a, cmd) + 1;
    }
    if ((allowed & OPT_REFS) && !o->n_refs && !o->help)
        return app_fail(cmd, "no model reference given (see sizeup %s --help)", cmd) + 1;
    return 0;
}

/* ---- helpers ---- */

const char *app_fmt_count(uint64_t n, char *buf, size_t len)
{
    if (n < 1000)
        snprintf(buf, len, "%" PRIu64, n);
    else if (n < 1000000)
        snprintf(buf, len, "%.1fK", (double)n / 1e3);
    else if (n < 1000000000)
        snprintf(buf, len, "%.1fM", (double)n / 1e6);
    else if (n < 1000000000000ull)
        snprintf(buf, len, "%.2fB", (double)n / 1e9);
    else
        snprintf(buf, len, "%.2fT", (double)n / 1e12);
    return buf;
}

/* ---- sizeup pull ---- */

static void pull_usage(FILE *to)
{
    fprintf(to,
            "usage: sizeup pull REF... [--cacert FILE] [--quiet]\n\n"
            "Download models into the store (sizeup list shows it). A transfer resumes where it\n"
            "stopped (Ctrl-C, a crash, a lost connection) when the same command runs again; the\n"
            "size and SHA-256 are checked before the file is put in place. Progress goes to\n"
            "stderr (a bar on a terminal, plain lines otherwise); one line per file goes to\n"
            "stdout: its path, size and how it was verified.\n\n%s\n"
            "  --cacert FILE  CA certificates (PEM) for HTTPS (default: $CURL_CA_BUNDLE, else\n"
            "                 the system's)\n"
            "  -q, --quiet    no progress, only the final lines\n"
            "  -h, --help     show this help\n\n"
            "Environment: SIZEUP_MODELS (the store; default $XDG_CACHE_HOME/sizeup/models),\n"
            "HF_ENDPOINT, HF_TOKEN (gated repositories), CURL_CA_BUNDLE, SIZEUP_CATALOG.\n",
            REF_FORMS);
}

/* How a stored file was checked when it was downloaded, as its record says: sha256 only
 * when a hash was compared, size when only the size was. */
static const char *verified_text(const dl_stored *s, char *buf, size_t len)
{
    switch (s->verified) {
    case DL_VERIFIED_SHA256:
        snprintf(buf, len, "verified sha256 %s", s->sha256 ? s->sha256 : "?");
        break;
    case DL_VERIFIED_SIZE: snprintf(buf, len, "verified size"); break;
    case DL_VERIFIED_NONE: snprintf(buf, len, "not verified: no size or checksum was known"); break;
    default: snprintf(buf, len, "verification not recorded"); break;
    }
    return buf;
}

static void print_pulled(dl_ctx *c, const app_pulled *p, dl_ref_kind kind)
{
    for (size_t i = 0; i < p->n_files; i++) {
        char size[32], how[160], v[128];
        dl_stored *s = NULL;
        if (kind == DL_REF_LOCAL)
            snprintf(how, sizeof how, "a local file");
        else if (p->builtin && dl_store_stat(c, p->paths[i], &s) != DL_OK)
            snprintf(how, sizeof how, "built in, shipped with sizeup");
        else if (p->builtin)
            snprintf(how, sizeof how, "%smade by sizeup from a built-in model",
                     p->already ? "in the store, " : "");
        else if (dl_store_stat(c, p->paths[i], &s) == DL_OK)
            snprintf(how, sizeof how, "%s%s", p->already ? "in the store, " : "",
                     verified_text(s, v, sizeof v));
        else
            snprintf(how, sizeof how, "not in the store: %s", dl_errmsg(c));
        dl_stored_free(s, s ? 1 : 0);
        printf("%s (%s, %s)\n", p->paths[i], app_fmt_bytes(p->sizes[i], size, sizeof size), how);
    }
    fflush(stdout);
}

int app_cmd_pull(int argc, char **argv)
{
    models_opts o;
    int rc = parse_opts("pull", argc, argv, OPT_CACERT | OPT_QUIET | OPT_REFS, &o);
    if (rc || o.help) {
        if (o.help)
            pull_usage(stdout);
        free(o.refs);
        return rc;
    }
    dl_ctx *c = app_dl_open("pull", o.cacert);
    for (int i = 0; c && i < o.n_refs && rc != 130; i++) {
        app_pulled p;
        dl_ref ref;
        dl_ref_kind kind = dl_ref_parse(c, o.refs[i], &ref) == DL_OK ? ref.kind : DL_REF_LOCAL;
        dl_ref_free(&ref);
        int r = app_pull("pull", c, o.refs[i], o.quiet, &p);
        if (!r)
            print_pulled(c, &p, kind);
        app_pulled_free(&p);
        if (r)
            rc = r;
    }
    dl_close(c);
    free(o.refs);
    return c ? rc : 1;
}

/* ---- sizeup list ---- */

static void list_usage(FILE *to)
{
    fprintf(to,
            "usage: sizeup list [--json]\n"
            "       sizeup list --remote URL|@NAME [--json]   (what an endpoint serves)\n\n"
            "List the models in the store: repository, quant, size, parameter count (from the\n"
            "GGUF header), when each was last used, and its path; then the bytes held by\n"
            "unfinished downloads, which the same pull resumes.\n\n"
            "  --json      print one JSON object\n"
            "  -h, --help  show this help\n");
}

/* Parameters from the header's tensor table (a mapping; no tensor data is read). 0 for the
 * parts of a split model, which hold only some of the tensors, and for unreadable files. */
static uint64_t file_params(const char *path)
{
    gguf_file *f;
    if (gguf_open(path, &f, NULL, 0) != GGUF_OK)
        return 0;
    uint64_t n = 0, split = 0;
    if (gguf_get_u64(f, "split.count", &split) != GGUF_OK || split <= 1)
        for (int64_t i = 0; i < gguf_tensor_count(f); i++)
            n += gguf_tensor_at(f, i)->n_elems;
    gguf_close(f);
    return n;
}

/* A reference that pulls a stored file again into the same place: hf.co/OWNER/REPO/PATH for
 * files fetched from a repository (the record's URL is .../resolve/main/PATH, and the URL
 * itself would name another folder if HF_ENDPOINT changed), else the URL it came from; the
 * path itself (for rm) when the record names none. */
void app_refetch_ref(const dl_ctx *c, const dl_stored *s, char *buf, size_t len)
{
    const char *store = dl_store_dir(c);
    size_t n = strlen(store);
    const char *rel = !strncmp(s->path, store, n) && s->path[n] == '/' ? s->path + n + 1 : NULL;
    size_t r = s->repo ? strlen(s->repo) : 0;
    if (rel && r && s->source_url && strstr(s->source_url, "/resolve/main/") &&
        !strncmp(rel, s->repo, r) && rel[r] == '/')
        snprintf(buf, len, "hf.co/%s", rel);
    else
        snprintf(buf, len, "%s", s->source_url ? s->source_url : s->path);
    char *shown = dl_url_shown(buf);   /* a record written before passwords were dropped */
    if (shown)
        snprintf(buf, len, "%s", shown);
    free(shown);
}

static const char *const verified_json[] = { NULL, "none", "size", "sha256" };

static json_t *list_json(const dl_ctx *c, const dl_stored *s, size_t n, uint64_t partial)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        uint64_t np = s[i].damaged ? 0 : file_params(s[i].path);
        const char *verified = verified_json[s[i].verified];
        /* a record written before passwords were dropped may hold one: never shown */
        char *url = s[i].source_url ? dl_url_shown(s[i].source_url) : NULL;
        json_array_append_new(
            arr, json_pack("{s:s?, s:s?, s:s?, s:I, s:o, s:s?, s:I, s:I, s:s?, s:I, s:b, s:s?, "
                           "s:s?}", "name", s[i].repo, "file", s[i].file, "quant", s[i].quant,
                           "size", (json_int_t)s[i].size, "n_params",
                           np ? json_integer((json_int_t)np) : json_null(), "path", s[i].path,
                           "pulled_at", (json_int_t)s[i].pulled_at, "last_used",
                           (json_int_t)s[i].last_used, "source_url", url,
                           "recorded_size", (json_int_t)s[i].recorded_size, "damaged",
                           (int)s[i].damaged, "verified", verified, "sha256", s[i].sha256));
        free(url);
    }
    return json_pack("{s:s, s:o, s:I}", "store", dl_store_dir(c), "models", arr,
                     "partial_bytes", (json_int_t)partial);
}

static void list_text(const dl_ctx *c, const dl_stored *s, size_t n, uint64_t partial)
{
    char a[32], b[32], when[32];
    uint64_t total = 0;
    int w = 4;
    for (size_t i = 0; i < n; i++) {
        total += s[i].size;
        if (s[i].repo && (int)strlen(s[i].repo) > w)
            w = (int)strlen(s[i].repo);
    }
    if (!n)
        printf("no models in %s (sizeup pull REF downloads one; sizeup catalog lists names)\n",
               dl_store_dir(c));
    else
        printf("%zu model file%s, %s, in %s\n\n%-*s  %-8s  %9s  %7s  %-11s  %s\n", n,
               n == 1 ? "" : "s", app_fmt_bytes(total, a, sizeof a), dl_store_dir(c), w, "NAME",
               "QUANT", "SIZE", "PARAMS", "LAST USED", "PATH");
    int64_t now = (int64_t)time(NULL);
    size_t damaged = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t np = s[i].damaged ? 0 : file_params(s[i].path);
        damaged += s[i].damaged;
        printf("%-*s  %-8s  %9s  %7s  %-11s  %s%s\n", w, s[i].repo ? s[i].repo : "?",
               s[i].quant ? s[i].quant : "-", app_fmt_bytes(s[i].size, a, sizeof a),
               np ? app_fmt_count(np, b, sizeof b) : "-",
               app_fmt_ago(now, s[i].last_used ? s[i].last_used : s[i].pulled_at, when,
                           sizeof when),
               s[i].path, s[i].damaged ? "  DAMAGED" : "");
    }
    if (damaged)
        printf("\n");
    for (size_t i = 0; i < n; i++) {
        char ref[4200];
        if (!s[i].damaged)
            continue;
        app_refetch_ref(c, &s[i], ref, sizeof ref);
        printf("DAMAGED: %s is %" PRIu64 " bytes, but was %" PRIu64 " when it was downloaded; "
               "%s %s\n", s[i].path, s[i].size, s[i].recorded_size,
               s[i].source_url ? "fetch it again with: sizeup pull" : "delete it with: sizeup rm",
               ref);
    }
    if (partial)
        printf("%sunfinished downloads hold %s (run the same pull again to resume them)\n",
               n ? "\n" : "", app_fmt_bytes(partial, a, sizeof a));
}

int app_cmd_list(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)   /* an endpoint's models: app/cmd_remote.c */
        if (!strcmp(argv[i], "--remote"))
            return app_cmd_list_remote(argc, argv);
    models_opts o;
    int rc = parse_opts("list", argc, argv, OPT_JSON, &o);
    free(o.refs);
    if (rc || o.help) {
        if (o.help)
            list_usage(stdout);
        return rc;
    }
    dl_ctx *c = app_dl_open("list", NULL);
    if (!c)
        return 1;
    dl_stored *s = NULL;
    size_t n = 0;
    dl_status st = dl_store_list(c, &s, &n);
    if (st) {
        rc = app_dl_fail("list", c, st, NULL);
    } else if (o.json) {
        json_t *j = list_json(c, s, n, dl_store_partial_bytes(c));
        if (!j || json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER))
            rc = app_fail("list", "could not write the JSON output");
        else
            putchar('\n');
        json_decref(j);
    } else {
        list_text(c, s, n, dl_store_partial_bytes(c));
    }
    dl_stored_free(s, n);
    dl_close(c);
    return rc;
}

/* ---- sizeup rm ---- */

static void rm_usage(FILE *to)
{
    fprintf(to,
            "usage: sizeup rm REF...\n\n"
            "Delete models from the store: the file (every part of a split model), its record,\n"
            "and any unfinished download of it. Says what was removed and the space freed;\n"
            "exits with status 1 when a REF matches nothing. Files outside the store are never\n"
            "touched.\n\n"
            "%s\n  -h, --help  show this help\n",
            REF_FORMS);
}

/* What the store holds now: paths and sizes (for the before/after comparison). */
typedef struct store_snap {
    dl_stored *s;
    size_t n;
    uint64_t partial;
} store_snap;

static dl_status snap_take(dl_ctx *c, store_snap *sn)
{
    sn->partial = dl_store_partial_bytes(c);
    return dl_store_list(c, &sn->s, &sn->n);
}

static bool snap_has(const store_snap *sn, const char *path)
{
    for (size_t i = 0; i < sn->n; i++)
        if (!strcmp(sn->s[i].path, path))
            return true;
    return false;
}

/* Removes one reference and reports it; returns the exit status for it. */
static int rm_one(dl_ctx *c, const char *ref)
{
    store_snap before = { 0 }, after = { 0 };
    size_t removed = 0;
    char *shown = dl_url_shown(ref);   /* a URL's password is never shown */
    const char *name = shown ? shown : ref;
    dl_status st = snap_take(c, &before);
    if (!st)
        st = dl_store_remove(c, ref, &removed);
    int rc = 0;
    if (st == DL_ERR_NOT_FOUND) {
        bool named = strstr(dl_errmsg(c), name) != NULL;
        rc = app_fail("rm", "%s%s%s; nothing removed (sizeup list shows what the store holds)",
                      named ? "" : name, named ? "" : ": ", dl_errmsg(c));
    }
    else if (st || (st = snap_take(c, &after)) != DL_OK)
        rc = app_dl_fail("rm", c, st, ref);
    uint64_t freed = 0;
    for (size_t i = 0; !rc && i < before.n; i++)
        if (!snap_has(&after, before.s[i].path)) {
            printf("removed %s\n", before.s[i].path);
            freed += before.s[i].size;
        }
    if (!rc) {
        char a[32];
        freed += before.partial > after.partial ? before.partial - after.partial : 0;
        printf("%s: %zu model file%s removed, %s freed\n", name, removed, removed == 1 ? "" : "s",
               app_fmt_bytes(freed, a, sizeof a));
    }
    dl_stored_free(before.s, before.n);
    dl_stored_free(after.s, after.n);
    free(shown);
    return rc;
}

int app_cmd_rm(int argc, char **argv)
{
    models_opts o;
    int rc = parse_opts("rm", argc, argv, OPT_REFS, &o);
    if (rc || o.help) {
        if (o.help)
            rm_usage(stdout);
        free(o.refs);
        return rc;
    }
    dl_ctx *c = app_dl_open("rm", NULL);
    for (int i = 0; c && i < o.n_refs; i++)
        if (rm_one(c, o.refs[i]))
            rc = 1;
    dl_close(c);
    free(o.refs);
    return c ? rc : 1;
}

/* ---- the device a model should fit ---- */

/* The largest device-local heap, and its budget when the driver reports one. */
static uint64_t device_capacity(const vk_device_info *d)
{
    uint64_t best = 0, cap = 0;
    for (uint32_t h = 0; h < d->heap_count; h++) {
        const vk_heap_info *hp = &d->heaps[h];
        if (!hp->device_local || hp->size <= best)
            continue;
        best = hp->size;
        cap = d->has_budget && hp->budget ? hp->budget : hp->size;
    }
    return cap;
}

/* The host's available and total memory for the CPU backend: MemAvailable from /proc/meminfo
 * (it counts the page cache a mapped model can reuse), else sysinfo's free + buffer memory. */
static bool host_memory(uint64_t *avail, uint64_t *total)
{
    struct sysinfo si;
    *avail = *total = 0;
    if (sysinfo(&si) == 0) {
        *total = (uint64_t)si.totalram * si.mem_unit;
        *avail = ((uint64_t)si.freeram + si.bufferram) * si.mem_unit;
    }
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kb;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            *avail = (uint64_t)kb * 1024;
    if (f)
        fclose(f);
    return *avail > 0;
}

static void fit_on_cpu(const char *why, app_fit_device *out)
{
    out->cpu = true;
    snprintf(out->name, sizeof out->name, "host memory");
    snprintf(out->backend_why, sizeof out->backend_why, "%s", why);
    out->ok = host_memory(&out->capacity, &out->total);
    if (!out->ok)
        snprintf(out->why, sizeof out->why, "the CPU backend would run it (%s), but the host's "
                 "memory could not be read", why);
}

int app_fit_device_probe(const char *cmd, int index, app_fit_device *out)
{
    memset(out, 0, sizeof *out);
    vk_open_opts vo = { .has_device_index = index >= 0, .device_index = (uint32_t)index,
                        .device_origin = getenv("SIZEUP_DEVICE") ? "SIZEUP_DEVICE" : "--device" };
    char err[400];
    vk_ctx *ctx = NULL;
    vk_status st = vk_ctx_open(&vo, &ctx, err, sizeof err);
    if (st == VK_STATUS_BAD_INDEX)
        return app_fail(cmd, "%s (see sizeup devices)", err) + 1;
    if (st) { /* --backend auto runs on the CPU then */
        char why[256];
        snprintf(why, sizeof why, "no Vulkan device: %.200s", err);
        fit_on_cpu(why, out);
        return 0;
    }
    const vk_device_info *d = vk_ctx_device_info(ctx, vk_ctx_choice(ctx)->index);
    char why[256];
    if (vk_auto_backend_is_cpu(d, index >= 0, why, sizeof why)) {
        vk_ctx_close(ctx);
        fit_on_cpu(why, out);
        return 0;
    }
    out->index = d->index;
    snprintf(out->name, sizeof out->name, "%s", d->name);
    out->capacity = device_capacity(d);
    out->ok = out->capacity > 0;
    if (!out->ok)
        snprintf(out->why, sizeof out->why, "device %u (%s) reports no device-local memory",
                 d->index, d->name);
    vk_ctx_close(ctx);
    return 0;
}

json_t *app_fit_device_json(const app_fit_device *dev)
{
    if (!dev->ok)
        return json_null();
    if (dev->cpu)
        return json_pack("{s:s, s:s, s:s, s:I, s:I}", "backend", "cpu", "reason",
                         dev->backend_why, "name", dev->name, "capacity",
                         (json_int_t)dev->capacity, "total", (json_int_t)dev->total);
    return json_pack("{s:s, s:i, s:s, s:I}", "backend", "vulkan", "index", (int)dev->index,
                     "name", dev->name, "capacity", (json_int_t)dev->capacity);
}

/* ---- sizeup catalog ---- */

static void catalog_usage(FILE *to)
{
    fprintf(to,
            "usage: sizeup catalog [--json] [--device N]\n\n"
            "List the models sizeup knows by name: family, parameters, the default quant and its\n"
            "size, licence, which quants are already downloaded, and whether the default quant\n"
            "would fit the memory of the backend that would run it (the Vulkan device, or the\n"
            "host's available memory where `--backend auto` picks the CPU), estimated as\n  %s.\n"
            "Any of these names works as a model reference: sizeup run -m qwen2.5:0.5b.\n\n"
            "  --device N  judge the fit on device N (default: $SIZEUP_DEVICE, else the one\n"
            "              sizeup would use; see sizeup devices)\n"
            "  --json      print one JSON object\n"
            "  -h, --help  show this help\n\n"
            "The catalog file is downloads/catalog.json (installed as share/sizeup/catalog.json);\n"
            "SIZEUP_CATALOG names another.\n",
            FIT_FORMULA);
}

/* One entry's facts for both outputs. */
typedef struct cat_row {
    uint64_t size;          /* default quant, all parts */
    char have[128];         /* quants complete in the store, "Q8_0, F32"; "" when none */
    uint64_t need;          /* fit estimate */
    int fits;               /* 1, 0, or -1 unknown */
} cat_row;

static void cat_row_fill(dl_ctx *c, const dl_cat_entry *e, const app_fit_device *dev,
                         cat_row *row)
{
    memset(row, 0, sizeof *row);
    size_t n = 0;
    for (size_t i = 0; i < e->n_files; i++) {
        const dl_cat_file *f = &e->files[i];
        if (e->default_quant && f->quant && !strcmp(f->quant, e->default_quant))
            row->size += f->size;
        bool seen = false; /* a split quant has several files: look at it once */
        for (size_t j = 0; j < i; j++)
            seen = seen || !strcmp(e->files[j].quant, f->quant);
        char ref[300];
        dl_resolved r;
        snprintf(ref, sizeof ref, "%s:%s", e->name, f->quant);
        if (seen || dl_resolve(c, ref, true, &r) != DL_OK) /* offline: only looks at the disk */
            continue;
        dl_resolved_free(&r);
        n += (size_t)snprintf(row->have + n, n < sizeof row->have ? sizeof row->have - n : 0,
                              "%s%s", n ? "," : "", f->quant);
    }
    /* Shipped, or made on first use without the network: there is nothing to download. */
    if (e->builtin)
        snprintf(row->have, sizeof row->have, "built-in");
    row->need = row->size + row->size / 100 * FIT_MARGIN_PCT + FIT_FIXED_BYTES;
    row->fits = dev->ok ? row->need <= dev->capacity : -1;
}

/* The catalog loader requires these fields, but a listing is no place to crash if a future
 * loader lets one through: an absent string prints as "-". */
static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

static int max_len(int w, const char *s)
{
    int n = (int)strlen(or_dash(s));
    return n > w ? n : w;
}

/* Column widths that fit the longest name, family and licence. */
typedef struct cat_widths {
    int name, family, license;
} cat_widths;

static cat_widths catalog_widths(const dl_ctx *c)
{
    cat_widths w = { 4, 6, 7 };
    for (size_t i = 0; i < dl_catalog_count(c); i++) {
        const dl_cat_entry *e = dl_catalog_entry(c, i);
        w.name = max_len(w.name, e->name);
        w.family = max_len(w.family, e->family);
        w.license = max_len(w.license, e->license);
    }
    return w;
}

static void catalog_text(dl_ctx *c, const app_fit_device *dev)
{
    cat_widths w = catalog_widths(c);
    char a[32];
    printf("%-*s  %-*s  %-6s  %-7s  %9s  %-*s  %-12s  %s\n", w.name, "NAME", w.family, "FAMILY",
           "PARAMS", "QUANT", "SIZE", w.license, "LICENCE", "DOWNLOADED", "FITS");
    for (size_t i = 0; i < dl_catalog_count(c); i++) {
        const dl_cat_entry *e = dl_catalog_entry(c, i);
        cat_row row;
        cat_row_fill(c, e, dev, &row);
        printf("%-*s  %-*s  %-6s  %-7s  %9s  %-*s  %-12s  %s\n", w.name, or_dash(e->name),
               w.family, or_dash(e->family), or_dash(e->params), or_dash(e->default_quant),
               app_fmt_bytes(row.size, a, sizeof a), w.license, or_dash(e->license),
               row.have[0] ? row.have : "-",
               row.fits < 0 ? "?" : row.fits ? "yes" : "no");
    }
    const char *small = NULL, *large = NULL;
    dl_catalog_default_pair(c, &small, &large);
    if (small && large)
        printf("\ndefault pair: %s (small) and %s (large)\n", small, large);
    char t[32];
    if (dev->ok && dev->cpu)
        printf("fit: the CPU backend (%s), host memory %s available of %s; a model needs %s\n",
               dev->backend_why, app_fmt_bytes(dev->capacity, a, sizeof a),
               app_fmt_bytes(dev->total, t, sizeof t), FIT_FORMULA);
    else if (dev->ok)
        printf("fit: device %u (%s), %s usable; a model needs %s\n", dev->index, dev->name,
               app_fmt_bytes(dev->capacity, a, sizeof a), FIT_FORMULA);
    else
        printf("fit: unknown (%s)\n", dev->why);
}

static json_t *catalog_entry_json(dl_ctx *c, const dl_cat_entry *e, const app_fit_device *dev)
{
    cat_row row;
    cat_row_fill(c, e, dev, &row);
    json_t *have = json_array();
    for (char *q = e->builtin ? "" : row.have, *end; *q; q = *end ? end + 1 : end) {
        end = q + strcspn(q, ",");
        json_array_append_new(have, json_stringn(q, (size_t)(end - q)));
    }
    /* s? writes null for an absent string where json_pack would fail on s. */
    return json_pack("{s:s?, s:s?, s:s?, s:I, s:s?, s:s?, s:s?, s:s?, s:b, s:I, s:o, s:I, s:o}",
                     "name", e->name, "family", e->family, "params", e->params, "n_params",
                     (json_int_t)e->n_params, "license", e->license, "repo", e->repo,
                     "default_quant", e->default_quant, "description", e->description,
                     "builtin", e->builtin, "size", (json_int_t)row.size, "downloaded", have,
                     "need_bytes", (json_int_t)row.need, "fits",
                     row.fits < 0 ? json_null() : json_boolean(row.fits));
}

static int catalog_json(dl_ctx *c, const app_fit_device *dev)
{
    json_t *models = json_array();
    for (size_t i = 0; i < dl_catalog_count(c); i++)
        json_array_append_new(models, catalog_entry_json(c, dl_catalog_entry(c, i), dev));
    const char *small = NULL, *large = NULL;
    dl_catalog_default_pair(c, &small, &large);
    json_t *d = app_fit_device_json(dev);
    json_t *o = json_pack("{s:o, s:s?, s:s, s:{s:s?, s:s?}, s:o}", "device", d, "fit_unknown_why",
                          dev->ok ? NULL : dev->why, "fit_formula", FIT_FORMULA, "default_pair",
                          "small", small, "large", large, "models", models);
    int rc = !o || json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (rc)
        return app_fail("catalog", "could not write the JSON output");
    putchar('\n');
    return 0;
}

int app_cmd_catalog(int argc, char **argv)
{
    models_opts o;
    int rc = parse_opts("catalog", argc, argv, OPT_JSON | OPT_DEVICE, &o);
    free(o.refs);
    if (rc || o.help) {
        if (o.help)
            catalog_usage(stdout);
        return rc;
    }
    int index;
    app_fit_device dev;
    if (app_device_index("catalog", o.device, &index) ||
        app_fit_device_probe("catalog", index, &dev))
        return 2;
    dl_ctx *c = app_dl_open("catalog", NULL);
    if (!c)
        return 1;
    dl_status st = dl_catalog_load(c);
    if (st)
        rc = app_dl_fail("catalog", c, st, NULL);
    else if (o.json)
        rc = catalog_json(c, &dev);
    else
        catalog_text(c, &dev);
    dl_close(c);
    return rc;
}
