/* The local model store on disk: the record written beside each finished file (FILE.gguf.json),
 * folder creation, and the listing behind `sizeup list`. The layout is described in dl.h
 * ("Files on disk"); transfers (dl_http.c) write into it, dl_ref.c removes from it. */
#include "downloads/dl_internal.h"
#include "downloads/dl_ref_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Deeper than any OWNER/REPO/sub/folder layout; stops a runaway walk (bind mounts). */
#define MAX_DEPTH 16

/* ---- paths inside the store: never through a link ----
 *
 * The store folder itself may be a link (a cache moved to another disk is the user's choice),
 * but nothing below it is followed: a folder or file there that is a symbolic link may lead
 * anywhere, and rm, pull and the records would then delete or overwrite files outside the
 * store. Folders are opened one component at a time with O_NOFOLLOW from the store's root, so
 * a link is refused even when it appears after a check. */

const char *dl_store_rel(const dl_ctx *c, const char *path)
{
    size_t n = c->store_dir ? strlen(c->store_dir) : 0;
    if (!n || strncmp(path, c->store_dir, n) || path[n] != '/')
        return NULL;
    return path + n + 1;
}

static dl_status link_refused(dl_ctx *c, const char *path, size_t len)
{
    return dl_fail(c, DL_ERR_ARG, "%.*s is a symbolic link (or not a folder) inside the model "
                   "store %s; sizeup never follows links there, so that it cannot touch files "
                   "outside the store (remove the link, or set SIZEUP_MODELS to the real folder)",
                   (int)len, path, c->store_dir);
}

dl_status dl_store_open_dir(dl_ctx *c, const char *path, int *dirfd)
{
    *dirfd = -1;
    const char *rel = dl_store_rel(c, path);
    if (!rel)
        return dl_fail(c, DL_ERR_ARG, "%s is outside the model store %s", path,
                       c->store_dir ? c->store_dir : "(none)");
    int fd = open(c->store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? DL_OK : dl_fail(c, DL_ERR_IO, "cannot open the model store %s: "
                                                 "%s", c->store_dir, strerror(errno));
    for (const char *p = rel, *slash; (slash = strchr(p, '/')); p = slash + 1) {
        char comp[NAME_MAX + 1];
        size_t n = (size_t)(slash - p);
        if (n == 0 || n > NAME_MAX || (p[0] == '.' && (n == 1 || (n == 2 && p[1] == '.')))) {
            close(fd);
            return dl_fail(c, DL_ERR_ARG, "%s: not a plain path inside the model store", path);
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        int sub = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        close(fd);
        if (sub < 0 && err == ENOENT)
            return DL_OK;               /* not there: nothing stored, nothing to follow */
        if (sub < 0 && (err == ELOOP || err == ENOTDIR))
            return link_refused(c, path, (size_t)(slash - path));
        if (sub < 0)
            return dl_fail(c, DL_ERR_IO, "cannot open %.*s: %s", (int)(slash - path), path,
                           strerror(err));
        fd = sub;
    }
    *dirfd = fd;
    return DL_OK;
}

dl_status dl_store_check_path(dl_ctx *c, const char *path)
{
    if (!dl_store_rel(c, path))
        return DL_OK;
    int fd;
    dl_status st = dl_store_open_dir(c, path, &fd);
    if (st || fd < 0)
        return st;
    struct stat sb;
    bool link = fstatat(fd, dl_name_base(path), &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(sb.st_mode);
    close(fd);
    return link ? link_refused(c, path, strlen(path)) : DL_OK;
}

/* ---- the transfer lock (dl.h: FILE.gguf.lock) ---- */

int dl_lock_try(const char *lock_path, int *out)
{
    for (;;) {
        int fd = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
            return errno;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            close(fd);
            if (err == EINTR)
                continue;
            return err == EAGAIN ? EWOULDBLOCK : err;
        }
        /* The holder before us unlinks the file before it unlocks: a lock on an inode that is
         * no longer at the path protects nothing, so lock the file there now. */
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(lock_path, &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev) {
            /* Best effort: only a message that names the holder depends on it. */
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n)
                (void)ftruncate(fd, 0);
            *out = fd;
            return 0;
        }
        close(fd);
    }
}

long dl_lock_holder(const char *lock_path)
{
    char buf[32];
    int fd = open(lock_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 0 && end != buf && (*end == '\n' || !*end) ? pid : 0;
}

void dl_lock_drop(const char *lock_path, int fd)
{
    unlink(lock_path);
    close(fd);
}

/* ---- records ---- */

static char *json_str_dup(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return (s && *s) ? strdup(s) : NULL;
}

static int64_t json_int_or0(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* The record's "verified" value: what was compared before the file was put in place. */
static const char *const verified_names[] = { "", "none", "size", "sha256" };

static dl_verified verified_parse(const char *s)
{
    for (int v = DL_VERIFIED_NONE; s && v <= DL_VERIFIED_SHA256; v++)
        if (!strcmp(s, verified_names[v]))
            return (dl_verified)v;
    return DL_VERIFIED_UNKNOWN;
}

dl_status dl_record_read(const char *dest_path, dl_record *r)
{
    memset(r, 0, sizeof *r);
    char *path = dl_concat(dest_path, ".json");
    if (!path)
        return DL_ERR_IO;
    /* A record that is a link is not ours: read as missing rather than followed. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    bool missing = fd < 0 && (errno == ENOENT || errno == ELOOP);
    free(path);
    if (fd < 0)
        return missing ? DL_ERR_NOT_FOUND : DL_ERR_FORMAT;
    json_error_t jerr;
    json_t *o = json_loadfd(fd, 0, &jerr);
    close(fd);
    if (!json_is_object(o) || !json_is_integer(json_object_get(o, "size"))) {
        json_decref(o);
        return DL_ERR_FORMAT;
    }
    r->url = json_str_dup(o, "url");
    r->etag = json_str_dup(o, "etag");
    r->sha256 = json_str_dup(o, "sha256");
    int64_t size = json_int_or0(o, "size");
    r->size = size > 0 ? (uint64_t)size : 0;
    r->pulled_at = json_int_or0(o, "pulled_at");
    r->last_used = json_int_or0(o, "last_used");
    r->verified = verified_parse(json_string_value(json_object_get(o, "verified")));
    json_decref(o);
    return DL_OK;
}

void dl_record_free(dl_record *r)
{
    if (!r)
        return;
    free(r->url);
    free(r->etag);
    free(r->sha256);
    memset(r, 0, sizeof *r);
}

int dl_record_write(const char *dest_path, const dl_record *r)
{
    json_t *o = json_object();
    if (!o)
        return errno = ENOMEM, -1;
    int bad = 0;
    bad |= json_object_set_new(o, "url", json_string(r->url ? r->url : ""));
    bad |= json_object_set_new(o, "etag", json_string(r->etag ? r->etag : ""));
    bad |= json_object_set_new(o, "size", json_integer((json_int_t)r->size));
    bad |= json_object_set_new(o, "sha256", json_string(r->sha256 ? r->sha256 : ""));
    bad |= json_object_set_new(o, "pulled_at", json_integer((json_int_t)r->pulled_at));
    bad |= json_object_set_new(o, "last_used", json_integer((json_int_t)r->last_used));
    if (r->verified != DL_VERIFIED_UNKNOWN)
        bad |= json_object_set_new(o, "verified", json_string(verified_names[r->verified]));
    /* A temporary name of our own: two processes may rewrite one record (dl_locate) at once. */
    static atomic_uint seq;
    char suffix[64];
    snprintf(suffix, sizeof suffix, ".json.%ld.%u.tmp", (long)getpid(), atomic_fetch_add(&seq, 1));
    char *path = dl_concat(dest_path, ".json");
    char *tmp = dl_concat(dest_path, suffix);
    int rc = -1;
    if (bad || !path || !tmp)
        errno = ENOMEM;
    else
        rc = dl_json_write_atomic(path, tmp, o, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(o);
    free(path);
    free(tmp);
    return rc;
}

int dl_json_write_atomic(const char *path, const char *tmp, json_t *o, size_t flags)
{
    if (unlink(tmp) != 0 && errno != ENOENT)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    errno = 0;
    int rc = json_dumpfd(o, fd, flags);
    int e = errno ? errno : EIO;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc == 0 && (rc = rename(tmp, path)) != 0)
        e = errno;
    if (rc != 0) {
        unlink(tmp);
        errno = e;
    }
    return rc;
}

dl_status dl_record_touch(const char *dest_path)
{
    dl_record r;
    dl_status st = dl_record_read(dest_path, &r);
    if (st != DL_OK)
        return st;
    r.last_used = (int64_t)time(NULL);
    int rc = dl_record_write(dest_path, &r);
    dl_record_free(&r);
    return rc == 0 ? DL_OK : DL_ERR_IO;
}

int dl_mkdir_parents(const char *dir)
{
    if (!dir || !*dir)
        return errno = EINVAL, -1;
    char *p = strdup(dir);
    if (!p)
        return errno = ENOMEM, -1;
    /* Create each prefix in turn; EEXIST is fine as long as the last one is a folder. */
    for (char *s = p + 1; ; s++) {
        if (*s != '/' && *s != 0)
            continue;
        char keep = *s;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = keep;
        if (!keep)
            break;
    }
    free(p);
    struct stat st;
    if (stat(dir, &st) != 0)
        return -1;
    return S_ISDIR(st.st_mode) ? 0 : (errno = ENOTDIR, -1);
}

/* rmdir the emptied folders from path's folder up to, not including, root. */
void dl_prune_dirs(const char *root, const char *path)
{
    char dir[PATH_MAX];
    size_t n = strlen(root);
    snprintf(dir, sizeof dir, "%s", path);
    for (char *slash; (slash = strrchr(dir, '/')) && (size_t)(slash - dir) > n;) {
        *slash = 0;
        if (strncmp(dir, root, n) || dir[n] != '/' || rmdir(dir) != 0)
            return;
    }
}

/* ---- walking the store ---- */

/* Called for every regular file: its full path, its folder relative to the store ("" at the
 * top), its name and stat. Nonzero stops the walk. */
typedef int (*walk_fn)(const char *path, const char *rel_dir, const char *name,
                       const struct stat *st, void *user);

/* Depth-first over root/rel. Symbolic links are not followed (no loops, and a link to a file
 * elsewhere is not the store's to list). 0, or the callback's nonzero / -1 on no memory. */
static int walk(const char *root, const char *rel, int depth, walk_fn fn, void *user)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d)
        return 0;                     /* missing or unreadable folder: nothing stored there */
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;                 /* ".", "..", and hidden temporary files */
        char path[4096], sub[4096];
        int n1 = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int n2 = snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        struct stat st;
        if (n1 >= (int)sizeof path || n2 >= (int)sizeof sub || lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < MAX_DEPTH)
            rc = walk(root, sub, depth + 1, fn, user);
        else if (S_ISREG(st.st_mode))
            rc = fn(path, rel, e->d_name, &st, user);
    }
    closedir(d);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The repository of a stored file: the first two folders under the store (OWNER/REPO, or
 * HOST/DIR for URL references); deeper folders are inside the repository (split parts often
 * sit in a folder per quant). */
static char *repo_of(const char *rel_dir)
{
    const char *p = strchr(rel_dir, '/');
    if (p)
        p = strchr(p + 1, '/');
    return strndup(rel_dir, p ? (size_t)(p - rel_dir) : strlen(rel_dir));
}

typedef struct list_acc {
    dl_stored *items;
    size_t n, cap;
} list_acc;

static int fill_stored(dl_stored *s, const char *path, const char *rel_dir, const char *name,
                       const struct stat *st)
{
    memset(s, 0, sizeof *s);
    s->path = strdup(path);
    s->repo = repo_of(rel_dir);
    s->file = strdup(name);
    char q[32];
    if (dl_name_guess_quant(name, q, sizeof q))
        s->quant = strdup(q);
    s->size = (uint64_t)st->st_size;
    dl_record r;
    if (dl_record_read(path, &r) == DL_OK) {
        s->pulled_at = r.pulled_at;
        s->last_used = r.last_used;
        s->source_url = r.url;
        s->recorded_size = r.size;
        s->damaged = r.size != s->size;
        s->verified = r.verified;
        if (r.verified == DL_VERIFIED_SHA256)
            s->sha256 = r.sha256;
        else
            free(r.sha256);
        r.url = r.sha256 = NULL;
        dl_record_free(&r);
    } else {
        s->pulled_at = (int64_t)st->st_mtime;
    }
    return (s->path && s->repo && s->file) ? 0 : -1;
}

static int list_one(const char *path, const char *rel_dir, const char *name,
                    const struct stat *st, void *user)
{
    list_acc *a = user;
    size_t n = strlen(name);
    /* Only finished model files: "x.gguf", never "x.gguf.part" or records. */
    if (n < 6 || strcasecmp(name + n - 5, ".gguf") != 0)
        return 0;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        dl_stored *p = realloc(a->items, cap * sizeof *p);
        if (!p)
            return -1;
        a->items = p;
        a->cap = cap;
    }
    int rc = fill_stored(&a->items[a->n], path, rel_dir, name, st);
    a->n++;                           /* counted even when partly filled, so it gets freed */
    return rc;
}

static int cmp_stored(const void *pa, const void *pb)
{
    const dl_stored *a = pa, *b = pb;
    int r = strcmp(a->repo, b->repo);
    return r ? r : strcmp(a->file, b->file);
}

dl_status dl_store_list(dl_ctx *c, dl_stored **list, size_t *n)
{
    *list = NULL;
    *n = 0;
    list_acc a = { 0 };
    dl_status st = dl_store_ready(c);
    if (st)
        return st;
    if (walk(c->store_dir, "", 0, list_one, &a) != 0) {
        dl_stored_free(a.items, a.n);
        return dl_fail(c, DL_ERR_IO, "out of memory listing the store %s", c->store_dir);
    }
    if (a.n > 1)
        qsort(a.items, a.n, sizeof *a.items, cmp_stored);
    *list = a.items;
    *n = a.n;
    return DL_OK;
}

void dl_stored_free(dl_stored *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++) {
        free(list[i].path);
        free(list[i].repo);
        free(list[i].file);
        free(list[i].quant);
        free(list[i].source_url);
        free(list[i].sha256);
    }
    free(list);
}

dl_status dl_store_stat(dl_ctx *c, const char *path, dl_stored **out)
{
    *out = NULL;
    struct stat st;
    const char *rel = dl_store_rel(c, path);
    if (!rel || lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return dl_fail(c, DL_ERR_NOT_FOUND, "%s is not a file in the model store", path);
    size_t dir_len = (size_t)(dl_name_base(rel) - rel);
    char *dir = strndup(rel, dir_len ? dir_len - 1 : 0);   /* without the last '/' */
    dl_stored *s = calloc(1, sizeof *s);
    int rc = dir && s ? fill_stored(s, path, dir, dl_name_base(path), &st) : -1;
    free(dir);
    if (rc != 0) {
        dl_stored_free(s, s ? 1 : 0);
        return dl_fail(c, DL_ERR_IO, "%s: out of memory", path);
    }
    *out = s;
    return DL_OK;
}

static int sum_part(const char *path, const char *rel_dir, const char *name,
                    const struct stat *st, void *user)
{
    (void)path;
    (void)rel_dir;
    if (ends_with(name, ".part"))
        *(uint64_t *)user += (uint64_t)st->st_size;
    return 0;
}

uint64_t dl_store_partial_bytes(dl_ctx *c)
{
    uint64_t total = 0;
    if (c->store_dir)
        walk(c->store_dir, "", 0, sum_part, &total);
    return total;
}

/* ---- files sizeup made itself ---- */

/* The SHA-256 of the file open on fd, as 64 hex digits into hex. */
static bool sha256_fd(int fd, char hex[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char buf[65536], sum[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    for (ssize_t k; ok && (k = read(fd, buf, sizeof buf)) != 0;)
        ok = k > 0 && EVP_DigestUpdate(md, buf, (size_t)k) == 1;
    ok = ok && EVP_DigestFinal_ex(md, sum, &len) == 1 && len == 32;
    EVP_MD_CTX_free(md);
    for (unsigned i = 0; ok && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    return ok;
}

dl_status dl_store_record_made(dl_ctx *c, const char *path, const char *source)
{
    dl_status st = dl_store_check_path(c, path);
    if (st)
        return st;
    if (!dl_store_rel(c, path))
        return dl_fail(c, DL_ERR_ARG, "%s is not in the model store (%s)", path,
                       dl_store_dir(c));
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    char hex[65];
    if (fd < 0 || fstat(fd, &sb) != 0 || !sha256_fd(fd, hex)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return dl_fail(c, DL_ERR_IO, "cannot read %s: %s", path, strerror(e));
    }
    close(fd);
    int64_t now = (int64_t)time(NULL);
    dl_record r = { .url = (char *)source, .sha256 = hex, .size = (uint64_t)sb.st_size,
                    .pulled_at = now, .last_used = now, .verified = DL_VERIFIED_NONE };
    if (dl_record_write(path, &r) != 0)
        return dl_fail(c, DL_ERR_IO, "cannot write the record %s.json: %s", path,
                       strerror(errno));
    return DL_OK;
}

/* Flush what was written under path (a file or a folder) to the disk. */
static int sync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* The file is written under a fresh name of its own (mkstemp), flushed, and only then renamed
 * to path and recorded: a crash leaves no half file under the final name, and a file there
 * without its record (a crash between the two) is not present, so it is made again. Two
 * processes making it at once write separate temporary files; the last rename wins. */
dl_status dl_store_make(dl_ctx *c, const char *path, const char *source, dl_make_fn write_fn,
                        void *user)
{
    char dir[PATH_MAX], tmp[PATH_MAX];
    const char *base = dl_name_base(path);
    if (!dl_store_rel(c, path) || base == path ||
        snprintf(dir, sizeof dir, "%.*s", (int)(base - path - 1), path) >= (int)sizeof dir ||
        snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, base) >= (int)sizeof tmp)
        return dl_fail(c, DL_ERR_ARG, "%s is not a file path in the model store (%s)", path,
                       dl_store_dir(c));
    dl_status st = dl_store_check_path(c, path);
    if (st)
        return st;
    if (dl_mkdir_parents(dir) != 0)
        return dl_fail(c, DL_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    if ((st = dl_store_check_path(c, path)))   /* again: a link may have appeared meanwhile */
        return st;
    int fd = mkstemp(tmp);
    if (fd < 0)
        return dl_fail(c, DL_ERR_IO, "cannot create a file in %s: %s", dir, strerror(errno));
    close(fd);
    if (write_fn(tmp, user) != 0) {
        unlink(tmp);
        return dl_fail(c, DL_ERR_IO, "%s could not be made", path);
    }
    if (sync_path(tmp, 0) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return dl_fail(c, DL_ERR_IO, "cannot put %s in place: %s", path, strerror(e));
    }
    sync_path(dir, O_DIRECTORY);   /* best effort: the record below is the commit point */
    return dl_store_record_made(c, path, source);
}
