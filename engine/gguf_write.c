/* GGUF writer: metadata records are kept serialised (key, type, value bytes), so copying a KV
 * from a reader is a byte copy and nested arrays need no model of their own. Tensors are
 * borrowed until the write and laid out in the order added, each padded to the alignment, as
 * gguf-py and llama.cpp do; that is what makes read -> write byte-identical for their files.
 */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/strbuf.h"

typedef struct wkv {
    char *key;
    uint8_t *rec;   /* the whole record: key, type, value */
    size_t len;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
    const void *data;
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    char err[512];
};

/* Records are built in a strbuf (engine/strbuf.h); a failed append is sticky and checked once,
 * when the record is stored. */

static void put_u32(strbuf *b, uint32_t v)
{
    uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    strbuf_put(b, x, 4);
}

static void put_u64(strbuf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(strbuf *b, const char *s, size_t n)
{
    put_u64(b, n);
    strbuf_put(b, s, n);
}

static gguf_status wfail(gguf_writer *w, gguf_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static gguf_status wfail(gguf_writer *w, gguf_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    return st;
}

gguf_writer *gguf_writer_new(void)
{
    return calloc(1, sizeof(gguf_writer));
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].rec);
    }
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

const char *gguf_writer_errmsg(const gguf_writer *w) { return w->err; }

/* Store a finished record under key, replacing an existing one in place. Takes b's memory. */
static gguf_status store(gguf_writer *w, const char *key, strbuf *b)
{
    if (b->oom) {
        strbuf_free(b);
        return wfail(w, GGUF_ERR_NOMEM, "out of memory for key '%s'", key);
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].rec);
            w->kv[i].rec = (uint8_t *)b->p;
            w->kv[i].len = b->len;
            return GGUF_OK;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        wkv *kv = realloc(w->kv, cap * sizeof *kv);
        if (!kv) {
            strbuf_free(b);
            return wfail(w, GGUF_ERR_NOMEM, "out of memory for key '%s'", key);
        }
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        strbuf_free(b);
        return wfail(w, GGUF_ERR_NOMEM, "out of memory for key '%s'", key);
    }
    w->kv[w->n_kv++] = (wkv){ k, (uint8_t *)b->p, b->len };
    return GGUF_OK;
}

static void begin(strbuf *b, const char *key, uint32_t type)
{
    put_str(b, key, strlen(key));
    put_u32(b, type);
}

static gguf_status set_scalar(gguf_writer *w, const char *key, uint32_t type, const void *le,
                              size_t n)
{
    strbuf b = { 0 };
    begin(&b, key, type);
    strbuf_put(&b, le, n);
    return store(w, key, &b);
}

/* Scalars are written little-endian; this project only builds for little-endian hosts
 * (checked in gguf.c's reader by the file format, and x86-64/arm64 in practice). */
gguf_status gguf_writer_set_u8(gguf_writer *w, const char *k, uint8_t v) { return set_scalar(w, k, GGUF_VT_UINT8, &v, 1); }
gguf_status gguf_writer_set_i8(gguf_writer *w, const char *k, int8_t v) { return set_scalar(w, k, GGUF_VT_INT8, &v, 1); }
gguf_status gguf_writer_set_u16(gguf_writer *w, const char *k, uint16_t v) { return set_scalar(w, k, GGUF_VT_UINT16, &v, 2); }
gguf_status gguf_writer_set_i16(gguf_writer *w, const char *k, int16_t v) { return set_scalar(w, k, GGUF_VT_INT16, &v, 2); }
gguf_status gguf_writer_set_u32(gguf_writer *w, const char *k, uint32_t v) { return set_scalar(w, k, GGUF_VT_UINT32, &v, 4); }
gguf_status gguf_writer_set_i32(gguf_writer *w, const char *k, int32_t v) { return set_scalar(w, k, GGUF_VT_INT32, &v, 4); }
gguf_status gguf_writer_set_u64(gguf_writer *w, const char *k, uint64_t v) { return set_scalar(w, k, GGUF_VT_UINT64, &v, 8); }
gguf_status gguf_writer_set_i64(gguf_writer *w, const char *k, int64_t v) { return set_scalar(w, k, GGUF_VT_INT64, &v, 8); }
gguf_status gguf_writer_set_f32(gguf_writer *w, const char *k, float v) { return set_scalar(w, k, GGUF_VT_FLOAT32, &v, 4); }
gguf_status gguf_writer_set_f64(gguf_writer *w, const char *k, double v) { return set_scalar(w, k, GGUF_VT_FLOAT64, &v, 8); }

gguf_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, GGUF_VT_BOOL, &b, 1);
}

gguf_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v)
{
    strbuf b = { 0 };
    begin(&b, key, GGUF_VT_STRING);
    put_str(&b, v, strlen(v));
    return store(w, key, &b);
}

void gguf_writer_set_alignment(gguf_writer *w, uint32_t alignment)
{
    gguf_writer_set_u32(w, "general.alignment", alignment);
}

gguf_status gguf_writer_set_arr(gguf_writer *w, const char *key, uint32_t elem_type,
                                const void *data, uint64_t n)
{
    uint32_t esz = gguf_vtype_size(elem_type);
    if (!esz || n > SIZE_MAX / esz)
        return wfail(w, GGUF_ERR_ARG, "key '%s': element type %u is not a scalar type", key,
                     elem_type);
    strbuf b = { 0 };
    begin(&b, key, GGUF_VT_ARRAY);
    put_u32(&b, elem_type);
    put_u64(&b, n);
    strbuf_put(&b, data, (size_t)n * esz);
    return store(w, key, &b);
}

gguf_status gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                                    uint64_t n)
{
    strbuf b = { 0 };
    begin(&b, key, GGUF_VT_ARRAY);
    put_u32(&b, GGUF_VT_STRING);
    put_u64(&b, n);
    for (uint64_t i = 0; i < n; i++)
        put_str(&b, strs[i], strlen(strs[i]));
    return store(w, key, &b);
}

gguf_status gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, int64_t i)
{
    if (i < 0 || i >= gguf_kv_count(f))
        return wfail(w, GGUF_ERR_ARG, "no metadata entry %lld in %s", (long long)i,
                     gguf_source(f));
    uint64_t start, end;
    gguf_str k = gguf_kv_key(f, i);
    gguf_kv_span(f, i, &start, &end);
    char *key = strndup(k.ptr, (size_t)k.len);
    if (!key)
        return wfail(w, GGUF_ERR_NOMEM, "out of memory");
    strbuf b = { 0 };
    strbuf_put(&b, gguf_kv_raw(f, i), (size_t)(end - start));
    gguf_status st = store(w, key, &b);
    free(key);
    return st;
}

gguf_status gguf_writer_remove_kv(gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].key);
            free(w->kv[i].rec);
            memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof *w->kv);
            w->n_kv--;
            return GGUF_OK;
        }
    return GGUF_ERR_NOTFOUND;
}

gguf_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                                   uint32_t n_dims, const uint64_t *ne, const void *data)
{
    wtensor t = { 0 };
    if (!*name)
        return wfail(w, GGUF_ERR_ARG, "tensor with an empty name");
    if (!gguf_tensor_nbytes(type, ne, n_dims, &t.nbytes))
        return wfail(w, GGUF_ERR_ARG, "tensor '%s': type %u and shape do not make a valid "
                     "tensor (row length must be a multiple of the block size)", name, type);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return wfail(w, GGUF_ERR_ARG, "duplicate tensor name '%s'", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *p = realloc(w->t, cap * sizeof *p);
        if (!p)
            return wfail(w, GGUF_ERR_NOMEM, "out of memory");
        w->t = p;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name)
        return wfail(w, GGUF_ERR_NOMEM, "out of memory");
    t.type = type;
    t.n_dims = n_dims;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t.ne[d] = d < n_dims ? ne[d] : 1;
    t.data = data;
    w->t[w->n_t++] = t;
    return GGUF_OK;
}

/* The alignment in force: general.alignment when set (as a uint32), else the default. */
static uint64_t writer_alignment(const gguf_writer *w)
{
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        size_t klen = strlen(kv->key), at = 8 + klen;
        if (strcmp(kv->key, "general.alignment") || kv->len < at + 8)
            continue;
        const uint8_t *p = kv->rec + at;
        uint32_t type = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
        uint32_t v = p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24;
        if (type == GGUF_VT_UINT32 && v && !(v & (v - 1)))
            return v;
    }
    return GGUF_DEFAULT_ALIGNMENT;
}

static bool write_all(FILE *fp, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, fp) == n;
}

static bool write_zeros(FILE *fp, uint64_t n)
{
    static const uint8_t z[256];
    while (n) {
        size_t k = n < sizeof z ? (size_t)n : sizeof z;
        if (!write_all(fp, z, k))
            return false;
        n -= k;
    }
    return true;
}

/* Header, KVs and tensor infos into one buffer; offsets assigned in order, each aligned. */
static bool build_header(const gguf_writer *w, uint64_t align, strbuf *b)
{
    strbuf_put(b, "GGUF", 4);
    put_u32(b, 3);
    put_u64(b, w->n_t);
    put_u64(b, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++)
        strbuf_put(b, w->kv[i].rec, w->kv[i].len);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(b, t->name, strlen(t->name));
        put_u32(b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(b, t->ne[d]);
        put_u32(b, t->type);
        put_u64(b, off);
        off += (t->nbytes + align - 1) / align * align;
    }
    return !b->oom;
}

static bool write_body(const gguf_writer *w, FILE *fp, const strbuf *hdr, uint64_t align)
{
    if (!write_all(fp, hdr->p, hdr->len))
        return false;
    if (w->n_t == 0)
        return true; /* like llama.cpp's vocab files: no padding after the last KV */
    if (!write_zeros(fp, (align - hdr->len % align) % align))
        return false;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        if (!write_all(fp, t->data, (size_t)t->nbytes) ||
            !write_zeros(fp, (align - t->nbytes % align) % align))
            return false;
    }
    return true;
}

/* Create a new, empty file beside `path` (same folder, so the final rename stays on one file
 * system) named PATH.XXXXXX.tmp, with O_CREAT|O_EXCL: an existing file or a symlink of that name
 * is never opened, so nothing planted there can redirect or lose data, and two writers never
 * share a temp file. mkstemp would do the same but creates mode 0600; open with 0666 keeps the
 * umask's say over the final file's mode, as a plain fopen would. *tmp_out: caller frees. */
static gguf_status create_temp(gguf_writer *w, const char *path, int *fd_out, char **tmp_out)
{
    static const char digits[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    /* The suffix must not push a name that is itself as long as a name may be past NAME_MAX:
     * then the temp name keeps only the start of it (cut at a character, not inside one). */
    const char *slash = strrchr(path, '/');
    size_t dlen = slash ? (size_t)(slash + 1 - path) : 0, plen = strlen(path);
    size_t room = NAME_MAX - (sizeof ".XXXXXX.tmp" - 1);
    if (plen - dlen > room) {
        plen = dlen + room;
        while (plen > dlen && ((unsigned char)path[plen] & 0xC0) == 0x80)
            plen--;
    }
    char *tmp = malloc(plen + sizeof ".XXXXXX.tmp");
    if (!tmp)
        return wfail(w, GGUF_ERR_NOMEM, "out of memory");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec << 20 ^
                 (uint64_t)getpid() << 40;
    for (int attempt = 0; attempt < 100; attempt++) {
        /* Varied (time, pid, attempt) so collisions are rare; O_EXCL, not the name, is what
         * makes it safe. */
        x += 0x9e3779b97f4a7c15ull * (uint64_t)(attempt + 1);
        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 29;
        char suffix[8] = ".";
        uint64_t r = x;
        for (int i = 1; i <= 6; i++, r /= 62)
            suffix[i] = digits[r % 62];
        memcpy(tmp, path, plen);
        memcpy(tmp + plen, suffix, 7);
        memcpy(tmp + plen + 7, ".tmp", 5);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd >= 0) {
            *fd_out = fd;
            *tmp_out = tmp;
            return GGUF_OK;
        }
        if (errno != EEXIST) {
            gguf_status st = wfail(w, GGUF_ERR_IO, "cannot create a temporary file beside %s "
                                   "(%s): %s", path, tmp, strerror(errno));
            free(tmp);
            return st;
        }
    }
    free(tmp);
    return wfail(w, GGUF_ERR_IO, "cannot create a temporary file beside %s: every name tried "
                 "exists", path);
}

/* Move the finished temp file to path. GGUF_WRITE_NO_REPLACE asks the kernel to refuse when
 * path exists by then (renameat2), so a file that appeared after the caller's check is still
 * not overwritten; file systems without RENAME_NOREPLACE get the same through link(). */
static gguf_status place_file(gguf_writer *w, const char *tmp, const char *path, unsigned flags)
{
    if (!(flags & GGUF_WRITE_NO_REPLACE)) {
        if (rename(tmp, path) != 0)
            return wfail(w, GGUF_ERR_IO, "renaming %s to %s: %s", tmp, path, strerror(errno));
        return GGUF_OK;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return GGUF_OK;
    int e = errno;
    if (e == EINVAL || e == ENOSYS || e == ENOTSUP) {
        if (link(tmp, path) == 0) {
            unlink(tmp);
            return GGUF_OK;
        }
        e = errno;
    }
    if (e == EEXIST)
        return wfail(w, GGUF_ERR_IO, "%s exists (it appeared while the file was written); "
                     "nothing was replaced", path);
    return wfail(w, GGUF_ERR_IO, "renaming %s to %s: %s", tmp, path, strerror(e));
}

/* The folder holding path, synced so the rename itself survives a crash. Best effort: some
 * file systems refuse fsync on a directory, and the data is already safe in the file. */
static void sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

gguf_status gguf_writer_write_ex(gguf_writer *w, const char *path, unsigned flags)
{
    uint64_t align = writer_alignment(w);
    strbuf hdr = { 0 };
    if (!build_header(w, align, &hdr)) {
        strbuf_free(&hdr);
        return wfail(w, GGUF_ERR_NOMEM, "out of memory building the header of %s", path);
    }
    int fd = -1;
    char *tmp = NULL;
    gguf_status st = create_temp(w, path, &fd, &tmp);
    if (st != GGUF_OK) {
        strbuf_free(&hdr);
        return st;
    }
    FILE *fp = fdopen(fd, "wb");
    bool ok = fp && write_body(w, fp, &hdr, align) && fflush(fp) == 0 && fsync(fd) == 0;
    int e = errno;
    if (fp ? fclose(fp) != 0 : close(fd) != 0) {
        if (ok)
            e = errno;
        ok = false;
    }
    if (!ok)
        st = wfail(w, GGUF_ERR_IO, "writing %s: %s", tmp, strerror(e));
    else
        st = place_file(w, tmp, path, flags);
    if (st != GGUF_OK)
        unlink(tmp);
    else
        sync_parent(path);
    free(tmp);
    strbuf_free(&hdr);
    return st;
}

gguf_status gguf_writer_write(gguf_writer *w, const char *path)
{
    return gguf_writer_write_ex(w, path, 0);
}
