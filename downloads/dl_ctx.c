/* The download context: settings taken from the environment and the caller, the last error
 * message, and the cancel flag. Transfers live in dl_http.c, references in dl_ref.c. */
#include "downloads/dl_internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_HF_ENDPOINT "https://huggingface.co"

char *dl_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *dl_concat(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s", a, b);
    return p;
}

dl_status dl_fail(dl_ctx *c, dl_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    /* Messages name URLs, and a URL may carry a password (README: dropped wherever shown). */
    dl_url_hide_userinfo(c->err);
    return st;
}

static void set_str(char **field, const char *value)
{
    free(*field);
    *field = (value && *value) ? strdup(value) : NULL;
}

static char *join_path(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* SIZEUP_MODELS, else $XDG_CACHE_HOME/sizeup/models, else $HOME/.cache/sizeup/models; NULL
 * (no store) when none is set. There is no fallback to /tmp: anyone can write there, so
 * another user could plant a model (or a link) in the store before we create it. A relative
 * XDG_CACHE_HOME is ignored, as the XDG Base Directory spec says, and a relative HOME too:
 * the store would move with the working directory. */
static char *default_store_dir(bool *none, const char **var)
{
    *none = false;
    const char *s = getenv("SIZEUP_MODELS");
    if (s && *s)
        return *var = "SIZEUP_MODELS", strdup(s);
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg == '/')
        return *var = "XDG_CACHE_HOME", join_path(xdg, "sizeup/models");
    const char *home = getenv("HOME");
    if (home && *home == '/')
        return *var = "HOME", join_path(home, ".cache/sizeup/models");
    *none = true;
    return NULL;
}

void dl_set_store_dir(dl_ctx *c, const char *dir)
{
    free(c->store_dir);
    bool none = false;
    c->store_var = NULL;
    c->store_dir = (dir && *dir) ? strdup(dir) : default_store_dir(&none, &c->store_var);
    c->no_store = none;
    size_t n = c->store_dir ? strlen(c->store_dir) : 0;
    while (n > 1 && c->store_dir[n - 1] == '/')
        c->store_dir[--n] = 0;
}

const char *dl_file_kind(mode_t m)
{
    return S_ISREG(m) ? "a regular file" : S_ISDIR(m) ? "a folder"
         : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
         : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket" : "of an unknown kind";
}

dl_status dl_store_ready(dl_ctx *c)
{
    struct stat st;
    /* A store that is a file (SIZEUP_MODELS=/dev/null) would read as empty and take no
     * download: say so. One that does not exist yet is made on the first pull. */
    if (c->store_dir && stat(c->store_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        if (c->store_var && !strcmp(c->store_var, "SIZEUP_MODELS"))
            return dl_fail(c, DL_ERR_ARG, "SIZEUP_MODELS=%s is not a folder (it is %s); set "
                           "it to the folder of the model store", c->store_dir,
                           dl_file_kind(st.st_mode));
        return dl_fail(c, DL_ERR_ARG, "the model store %s (from %s) is not a folder (it is %s)",
                       c->store_dir, c->store_var ? c->store_var : "the caller",
                       dl_file_kind(st.st_mode));
    }
    if (c->store_dir)
        return DL_OK;
    return dl_fail(c, c->no_store ? DL_ERR_ARG : DL_ERR_IO, "%s",
                   c->no_store ? "no place for the model store: HOME is not set (or not an "
                                 "absolute path); set HOME, XDG_CACHE_HOME or SIZEUP_MODELS "
                                 "(sizeup does not fall back to a shared folder such as /tmp)"
                               : "out of memory choosing the model store");
}

void dl_set_hf_endpoint(dl_ctx *c, const char *base_url)
{
    const char *v = (base_url && *base_url) ? base_url : getenv("HF_ENDPOINT");
    set_str(&c->hf_endpoint, (v && *v) ? v : DEFAULT_HF_ENDPOINT);
    size_t n = c->hf_endpoint ? strlen(c->hf_endpoint) : 0;
    while (n > 0 && c->hf_endpoint[n - 1] == '/')
        c->hf_endpoint[--n] = 0;
}

void dl_set_cacert(dl_ctx *c, const char *pem_path)
{
    set_str(&c->cacert, pem_path ? pem_path : getenv("CURL_CA_BUNDLE"));
}

void dl_set_hf_token(dl_ctx *c, const char *token)
{
    set_str(&c->hf_token, token ? token : getenv("HF_TOKEN"));
}

void dl_set_catalog_path(dl_ctx *c, const char *path)
{
    set_str(&c->catalog_path, path ? path : getenv("SIZEUP_CATALOG"));
}

void dl_set_builtin_dir(dl_ctx *c, const char *dir)
{
    set_str(&c->builtin_dir, dir ? dir : getenv("SIZEUP_BUILTIN"));
}

const char *dl_builtin_dir(dl_ctx *c, char *buf, size_t buflen)
{
    char tried[3 * PATH_MAX];
    if (dl_data_find(c->builtin_dir, "builtin", true, buf, buflen, tried, sizeof tried))
        return buf;
    dl_fail(c, DL_ERR_NOT_FOUND, "the built-in demo models were not found (tried %s); set "
            "SIZEUP_BUILTIN to the folder that holds them", tried);
    return NULL;
}

/* dir/rel, where dir is the folder of the running binary (Linux /proc/self/exe). */
static bool beside_exe(const char *rel, char *buf, size_t buflen)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash)
        return false;
    *slash = 0;
    return snprintf(buf, buflen, "%s/%s", exe, rel) < (int)buflen;
}

bool dl_data_find(const char *override, const char *name, bool want_dir, char *found,
                  size_t found_len, char *tried, size_t tried_len)
{
    char paths[4][PATH_MAX];
    int n = 0;
    if (override && *override)
        snprintf(paths[n++], PATH_MAX, "%s", override);
    else {
        char rel[PATH_MAX];
        snprintf(rel, sizeof rel, "../share/sizeup/%s", name);
        n += beside_exe(rel, paths[n], PATH_MAX);
        snprintf(rel, sizeof rel, "../downloads/%s", name);
        n += beside_exe(rel, paths[n], PATH_MAX);
        /* a build folder one level deeper (build/asan/sizeup, build/tsan/...) */
        snprintf(rel, sizeof rel, "../../downloads/%s", name);
        n += beside_exe(rel, paths[n], PATH_MAX);
        snprintf(paths[n++], PATH_MAX, "downloads/%s", name);
    }
    tried[0] = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && (want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)))
            return snprintf(found, found_len, "%s", paths[i]) < (int)found_len;
        size_t len = strlen(tried);
        snprintf(tried + len, tried_len - len, "%s%s", i ? ", " : "", paths[i]);
    }
    return false;
}

void dl_set_retry(dl_ctx *c, int max_retries, long backoff_ms)
{
    c->max_retries = max_retries < 0 ? 0 : max_retries;
    c->backoff_ms = backoff_ms < 0 ? 0 : backoff_ms;
}

void dl_set_low_speed(dl_ctx *c, long low_speed_bps, long low_speed_s)
{
    c->low_speed_bps = low_speed_bps;
    c->low_speed_s = low_speed_s;
}

void dl_set_connect_timeout(dl_ctx *c, long connect_s)
{
    c->connect_s = connect_s > 0 ? connect_s : 15;
}

void dl_set_progress(dl_ctx *c, dl_progress_fn fn, void *user)
{
    c->progress = fn;
    c->progress_user = user;
}

void dl_cancel(dl_ctx *c)
{
    c->cancel = 1;
}

const char *dl_store_dir(const dl_ctx *c) { return c->store_dir; }
const char *dl_hf_endpoint(const dl_ctx *c) { return c->hf_endpoint; }
const char *dl_errmsg(const dl_ctx *c) { return c->err; }

dl_ctx *dl_open(void)
{
    dl_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    dl_set_store_dir(c, NULL);
    dl_set_hf_endpoint(c, NULL);
    dl_set_cacert(c, NULL);
    dl_set_hf_token(c, NULL);
    dl_set_catalog_path(c, NULL);
    dl_set_builtin_dir(c, NULL);
    dl_set_retry(c, 5, 1000);
    dl_set_low_speed(c, 1024, 30);
    dl_set_connect_timeout(c, 15);
    if ((!c->store_dir && !c->no_store) || !c->hf_endpoint) {
        dl_close(c);
        return NULL;
    }
    return c;
}

void dl_close(dl_ctx *c)
{
    if (!c)
        return;
    dl_catalog_free(c->cat);
    free(c->store_dir);
    free(c->cacert);
    free(c->hf_endpoint);
    free(c->hf_token);
    free(c->catalog_path);
    free(c->builtin_dir);
    free(c);
}

const char *dl_status_name(dl_status s)
{
    switch (s) {
    case DL_OK: return "ok";
    case DL_ERR_ARG: return "bad argument";
    case DL_ERR_OFFLINE: return "offline";
    case DL_ERR_NETWORK: return "network error";
    case DL_ERR_HTTP: return "refused by the server";
    case DL_ERR_NOT_FOUND: return "not found";
    case DL_ERR_VERIFY: return "verification failed";
    case DL_ERR_DISK_FULL: return "disk full";
    case DL_ERR_IO: return "file error";
    case DL_ERR_CANCELLED: return "cancelled";
    case DL_ERR_FORMAT: return "unreadable answer";
    case DL_ERR_TLS: return "TLS error";
    case DL_ERR_DAMAGED: return "damaged file in the store";
    }
    return "unknown error";
}
