/* GGUF reader: validates a whole header against the bytes present, then serves metadata and
 * tensor views straight out of the mapping.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv, n_kv records
 * (string key, u32 type, value), n_tensors infos (string name, u32 n_dims, u64 ne[n_dims],
 * u32 type, u64 offset), padding to the alignment, tensor data. A string is u64 length + bytes;
 * an array is u32 element type + u64 count + elements (arrays may nest).
 *
 * Every read goes through a cursor that checks the remaining length first, and every size
 * product is computed with overflow checks, so a hostile file cannot make the reader touch a
 * byte outside [base, base + size).
 */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAX_KEY_LEN   65535u        /* what the spec allows for a key */
#define GGUF_MAX_STR_LEN   (1ull << 30)  /* a value string longer than 1 GiB is not metadata */
#define GGUF_MAX_NEST      8             /* arrays of arrays of ...: deeper is refused */
#define GGUF_MAX_ALIGNMENT (1u << 20)

/* ---- type tables ---- */

static const gguf_type_info type_table[GGUF_T_COUNT] = {
    [GGUF_T_F32] = { "F32", 1, 4 },        [GGUF_T_F16] = { "F16", 1, 2 },
    [GGUF_T_Q4_0] = { "Q4_0", 32, 18 },    [GGUF_T_Q4_1] = { "Q4_1", 32, 20 },
    [GGUF_T_Q5_0] = { "Q5_0", 32, 22 },    [GGUF_T_Q5_1] = { "Q5_1", 32, 24 },
    [GGUF_T_Q8_0] = { "Q8_0", 32, 34 },    [GGUF_T_Q8_1] = { "Q8_1", 32, 36 },
    [GGUF_T_Q2_K] = { "Q2_K", 256, 84 },   [GGUF_T_Q3_K] = { "Q3_K", 256, 110 },
    [GGUF_T_Q4_K] = { "Q4_K", 256, 144 },  [GGUF_T_Q5_K] = { "Q5_K", 256, 176 },
    [GGUF_T_Q6_K] = { "Q6_K", 256, 210 },  [GGUF_T_Q8_K] = { "Q8_K", 256, 292 },
    [GGUF_T_IQ2_XXS] = { "IQ2_XXS", 256, 66 }, [GGUF_T_IQ2_XS] = { "IQ2_XS", 256, 74 },
    [GGUF_T_IQ3_XXS] = { "IQ3_XXS", 256, 98 }, [GGUF_T_IQ1_S] = { "IQ1_S", 256, 50 },
    [GGUF_T_IQ4_NL] = { "IQ4_NL", 32, 18 },    [GGUF_T_IQ3_S] = { "IQ3_S", 256, 110 },
    [GGUF_T_IQ2_S] = { "IQ2_S", 256, 82 },     [GGUF_T_IQ4_XS] = { "IQ4_XS", 256, 136 },
    [GGUF_T_I8] = { "I8", 1, 1 },          [GGUF_T_I16] = { "I16", 1, 2 },
    [GGUF_T_I32] = { "I32", 1, 4 },        [GGUF_T_I64] = { "I64", 1, 8 },
    [GGUF_T_F64] = { "F64", 1, 8 },        [GGUF_T_IQ1_M] = { "IQ1_M", 256, 56 },
    [GGUF_T_BF16] = { "BF16", 1, 2 },      [GGUF_T_TQ1_0] = { "TQ1_0", 256, 54 },
    [GGUF_T_TQ2_0] = { "TQ2_0", 256, 66 }, [GGUF_T_MXFP4] = { "MXFP4", 32, 17 },
};

const gguf_type_info *gguf_type_get(uint32_t type)
{
    if (type >= GGUF_T_COUNT || !type_table[type].name)
        return NULL;
    return &type_table[type];
}

int gguf_type_from_name(const char *name)
{
    for (int t = 0; t < GGUF_T_COUNT; t++)
        if (type_table[t].name && !strcasecmp(type_table[t].name, name))
            return t;
    return -1;
}

/* Bytes of one scalar of a value type; 0 for string and array. */
uint32_t gguf_vtype_size(uint32_t t)
{
    static const uint8_t sz[GGUF_VT_COUNT] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };
    return t < GGUF_VT_COUNT ? sz[t] : 0;
}

const char *gguf_vtype_name(uint32_t t)
{
    static const char *names[GGUF_VT_COUNT] = { "uint8", "int8", "uint16", "int16", "uint32",
        "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64" };
    return t < GGUF_VT_COUNT ? names[t] : "unknown";
}

bool gguf_tensor_nbytes(uint32_t type, const uint64_t *ne, uint32_t n_dims, uint64_t *nbytes)
{
    const gguf_type_info *ti = gguf_type_get(type);
    if (!ti || n_dims == 0 || n_dims > GGUF_MAX_DIMS || ne[0] % ti->block_elems)
        return false;
    uint64_t n = ne[0] / ti->block_elems, bytes;
    for (uint32_t d = 1; d < n_dims; d++)
        if (__builtin_mul_overflow(n, ne[d], &n))
            return false;
    if (__builtin_mul_overflow(n, (uint64_t)ti->block_bytes, &bytes) || bytes > INT64_MAX)
        return false;
    *nbytes = bytes;
    return true;
}

/* ---- the handle ---- */

typedef struct kv_rec {
    gguf_str key;
    uint32_t type;
    uint64_t start, end;   /* whole record [start, end) */
    uint64_t val;          /* offset of the value bytes */
    uint32_t arr_type;     /* arrays: element type, count, first element, bytes of elements */
    uint64_t arr_n, arr_off, arr_bytes;
    uint64_t *elem_off;    /* arrays of strings/arrays: offset of each element (arr_n) */
} kv_rec;

struct gguf_file {
    const uint8_t *base;
    uint64_t size;
    bool mapped;
    char *source;
    uint32_t version, alignment;
    uint64_t data_off;
    int64_t n_kv, n_tensors;
    kv_rec *kv;                /* (n_kv) */
    gguf_tensor *tensors;      /* (n_tensors), file order */
    int64_t *by_name;          /* (n_tensors) tensor indices sorted by name */
    char err[512];
};

/* The parse cursor: all reads go through need(). */
typedef struct cur {
    gguf_file *f;
    uint64_t pos;
} cur;

static bool failf(gguf_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool failf(gguf_file *f, const char *fmt, ...)
{
    int n = snprintf(f->err, sizeof f->err, "%s: ", f->source ? f->source : "(buffer)");
    if (n < 0 || (size_t)n >= sizeof f->err)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->err + n, sizeof f->err - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static bool need(cur *c, uint64_t n, const char *what, const char *name)
{
    if (n <= c->f->size - c->pos)
        return true;
    return failf(c->f, "truncated: %s%s%s%s needs %llu bytes at offset %llu, file has %llu",
                 what, name ? " '" : "", name ? name : "", name ? "'" : "",
                 (unsigned long long)n, (unsigned long long)c->pos,
                 (unsigned long long)c->f->size);
}

static uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld_u64(const uint8_t *p)
{
    return (uint64_t)ld_u32(p) | (uint64_t)ld_u32(p + 4) << 32;
}

static bool rd_u32(cur *c, uint32_t *v, const char *what, const char *name)
{
    if (!need(c, 4, what, name))
        return false;
    *v = ld_u32(c->f->base + c->pos);
    c->pos += 4;
    return true;
}

static bool rd_u64(cur *c, uint64_t *v, const char *what, const char *name)
{
    if (!need(c, 8, what, name))
        return false;
    *v = ld_u64(c->f->base + c->pos);
    c->pos += 8;
    return true;
}

static bool rd_str(cur *c, gguf_str *s, uint64_t maxlen, const char *what, const char *name)
{
    uint64_t at = c->pos, len;
    if (!rd_u64(c, &len, what, name))
        return false;
    if (len > maxlen)
        return failf(c->f, "%s%s%s%s: string length %llu at offset %llu exceeds the limit %llu",
                     what, name ? " '" : "", name ? name : "", name ? "'" : "",
                     (unsigned long long)len, (unsigned long long)at, (unsigned long long)maxlen);
    if (!need(c, len, what, name))
        return false;
    s->ptr = (const char *)c->f->base + c->pos;
    s->len = len;
    c->pos += len;
    return true;
}

/* Key text for messages: NUL-terminated copy, truncated. */
static const char *keyname(gguf_str k, char *buf, size_t n)
{
    size_t len = k.len < n - 1 ? (size_t)k.len : n - 1;
    memcpy(buf, k.ptr, len);
    buf[len] = 0;
    return buf;
}

/* Skip one value of type t, checking every length. Arrays record nothing here. */
static bool skip_value(cur *c, uint32_t t, int depth, const char *key);

static bool skip_array_body(cur *c, uint32_t et, uint64_t n, int depth, const char *key,
                            uint64_t *elem_off)
{
    uint64_t at = c->pos, esz = gguf_vtype_size(et);
    if (et >= GGUF_VT_COUNT)
        return failf(c->f, "key '%s': unknown array element type %u at offset %llu", key, et,
                     (unsigned long long)at - 12);
    if (esz) {
        if (n > (c->f->size - c->pos) / esz)
            return failf(c->f, "key '%s': array of %llu %s at offset %llu runs past the end of "
                         "the file (%llu bytes)", key, (unsigned long long)n, gguf_vtype_name(et),
                         (unsigned long long)at, (unsigned long long)c->f->size);
        c->pos += n * esz;
        return true;
    }
    /* Strings take at least 8 bytes, arrays 12: a count the file cannot hold is refused
     * before any loop or allocation is sized by it. */
    uint64_t min = et == GGUF_VT_STRING ? 8 : 12;
    if (n > (c->f->size - c->pos) / min)
        return failf(c->f, "key '%s': array of %llu %s at offset %llu cannot fit in the file "
                     "(%llu bytes)", key, (unsigned long long)n, gguf_vtype_name(et),
                     (unsigned long long)at, (unsigned long long)c->f->size);
    for (uint64_t j = 0; j < n; j++) {
        if (elem_off)
            elem_off[j] = c->pos;
        if (!skip_value(c, et, depth + 1, key))
            return false;
    }
    return true;
}

static bool skip_value(cur *c, uint32_t t, int depth, const char *key)
{
    if (t == GGUF_VT_STRING) {
        gguf_str s;
        return rd_str(c, &s, GGUF_MAX_STR_LEN, "string value of key", key);
    }
    if (t == GGUF_VT_ARRAY) {
        uint32_t et;
        uint64_t n;
        if (depth >= GGUF_MAX_NEST)
            return failf(c->f, "key '%s': arrays nested deeper than %d at offset %llu", key,
                         GGUF_MAX_NEST, (unsigned long long)c->pos);
        if (!rd_u32(c, &et, "array type of key", key) || !rd_u64(c, &n, "array length of key", key))
            return false;
        return skip_array_body(c, et, n, depth, key, NULL);
    }
    uint64_t sz = gguf_vtype_size(t);
    if (!sz)
        return failf(c->f, "key '%s': unknown value type %u at offset %llu", key, t,
                     (unsigned long long)c->pos - 4);
    if (!need(c, sz, "value of key", key))
        return false;
    c->pos += sz;
    return true;
}

static bool parse_kv(cur *c, int64_t i)
{
    gguf_file *f = c->f;
    kv_rec *r = &f->kv[i];
    char kb[128];
    r->start = c->pos;
    if (!rd_str(c, &r->key, GGUF_MAX_KEY_LEN, "key", NULL))
        return false;
    if (r->key.len == 0)
        return failf(f, "metadata entry %lld has an empty key at offset %llu", (long long)i,
                     (unsigned long long)r->start);
    keyname(r->key, kb, sizeof kb);
    if (!rd_u32(c, &r->type, "value type of key", kb))
        return false;
    r->val = c->pos;
    if (r->type == GGUF_VT_ARRAY) {
        if (!rd_u32(c, &r->arr_type, "array type of key", kb) ||
            !rd_u64(c, &r->arr_n, "array length of key", kb))
            return false;
        r->arr_off = c->pos;
        if (r->arr_type == GGUF_VT_STRING || r->arr_type == GGUF_VT_ARRAY) {
            uint64_t min = r->arr_type == GGUF_VT_STRING ? 8 : 12;
            if (r->arr_n > (f->size - c->pos) / min)
                return failf(f, "key '%s': array of %llu %s at offset %llu cannot fit in the "
                             "file (%llu bytes)", kb, (unsigned long long)r->arr_n,
                             gguf_vtype_name(r->arr_type), (unsigned long long)c->pos,
                             (unsigned long long)f->size);
            r->elem_off = malloc((r->arr_n ? r->arr_n : 1) * sizeof *r->elem_off);
            if (!r->elem_off)
                return failf(f, "out of memory indexing key '%s'", kb);
        }
        if (!skip_array_body(c, r->arr_type, r->arr_n, 1, kb, r->elem_off))
            return false;
        r->arr_bytes = c->pos - r->arr_off;
    } else if (!skip_value(c, r->type, 0, kb)) {
        return false;
    }
    r->end = c->pos;
    return true;
}

static int cmp_str(gguf_str a, gguf_str b)
{
    size_t n = a.len < b.len ? (size_t)a.len : (size_t)b.len;
    int r = memcmp(a.ptr, b.ptr, n);
    return r ? r : (a.len > b.len) - (a.len < b.len);
}

/* glibc's qsort_r passes the handle through, so concurrent opens share nothing. */
static int cmp_kv_idx(const void *a, const void *b, void *arg)
{
    const gguf_file *f = arg;
    return cmp_str(f->kv[*(const int64_t *)a].key, f->kv[*(const int64_t *)b].key);
}

static int cmp_tensor_name(const void *a, const void *b, void *arg)
{
    const gguf_file *f = arg;
    return cmp_str(f->tensors[*(const int64_t *)a].name, f->tensors[*(const int64_t *)b].name);
}

static int cmp_tensor_off(const void *a, const void *b, void *arg)
{
    const gguf_file *f = arg;
    uint64_t x = f->tensors[*(const int64_t *)a].offset, y = f->tensors[*(const int64_t *)b].offset;
    return (x > y) - (x < y);
}

static bool parse_header(cur *c)
{
    gguf_file *f = c->f;
    if (f->size < 4 || memcmp(f->base, "GGUF", 4) != 0) {
        char m[9] = "";
        for (uint64_t i = 0; i < 4 && i < f->size; i++)
            snprintf(m + 2 * i, 3, "%02x", f->base[i]);
        return failf(f, "not a GGUF file (first bytes %s, expected 47475546 \"GGUF\")",
                     f->size ? m : "(empty file)");
    }
    c->pos = 4;
    if (!rd_u32(c, &f->version, "version", NULL))
        return false;
    uint32_t swapped = __builtin_bswap32(f->version);
    if ((f->version & 0xffff) == 0 && swapped >= 1 && swapped <= 3)
        return failf(f, "big-endian GGUF (version field 0x%08x at offset 4); sizeup reads "
                     "little-endian files only", f->version);
    if (f->version == 1)
        return failf(f, "GGUF version 1 (from 2023) is not supported; convert the model again "
                     "with a current llama.cpp");
    if (f->version < 2 || f->version > 3)
        return failf(f, "unsupported GGUF version %u at offset 4 (sizeup reads 2 and 3)",
                     f->version);
    uint64_t nt, nkv;
    if (!rd_u64(c, &nt, "tensor count", NULL) || !rd_u64(c, &nkv, "metadata count", NULL))
        return false;
    /* A KV takes at least 13 bytes and a tensor info at least 24: counts the file cannot hold
     * are refused before anything is allocated from them. */
    uint64_t left = f->size - c->pos;
    if (nkv > left / 13)
        return failf(f, "metadata count %llu at offset 16 cannot fit in %llu bytes",
                     (unsigned long long)nkv, (unsigned long long)f->size);
    if (nt > left / 24)
        return failf(f, "tensor count %llu at offset 8 cannot fit in %llu bytes",
                     (unsigned long long)nt, (unsigned long long)f->size);
    f->n_kv = (int64_t)nkv;
    f->n_tensors = (int64_t)nt;
    f->kv = calloc(nkv ? nkv : 1, sizeof *f->kv);
    f->tensors = calloc(nt ? nt : 1, sizeof *f->tensors);
    f->by_name = calloc(nt ? nt : 1, sizeof *f->by_name);
    if (!f->kv || !f->tensors || !f->by_name)
        return failf(f, "out of memory for %llu keys and %llu tensors", (unsigned long long)nkv,
                     (unsigned long long)nt);
    return true;
}

static bool check_keys(gguf_file *f)
{
    int64_t *idx = malloc((f->n_kv ? f->n_kv : 1) * sizeof *idx);
    if (!idx)
        return failf(f, "out of memory");
    for (int64_t i = 0; i < f->n_kv; i++)
        idx[i] = i;
    qsort_r(idx, (size_t)f->n_kv, sizeof *idx, cmp_kv_idx, f);
    for (int64_t i = 1; i < f->n_kv; i++) {
        const kv_rec *r = &f->kv[idx[i]];
        if (cmp_str(f->kv[idx[i - 1]].key, r->key) == 0) {
            char kb[128];
            free(idx);
            return failf(f, "duplicate key '%s' at offset %llu", keyname(r->key, kb, sizeof kb),
                         (unsigned long long)r->start);
        }
    }
    free(idx);

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t a = gguf_find_key(f, "general.alignment");
    if (a >= 0) {
        const kv_rec *r = &f->kv[a];
        uint32_t v = r->type == GGUF_VT_UINT32 ? ld_u32(f->base + r->val) : 0;
        if (r->type != GGUF_VT_UINT32 || v == 0 || (v & (v - 1)) || v > GGUF_MAX_ALIGNMENT)
            return failf(f, "key 'general.alignment' at offset %llu must be a uint32 power of "
                         "two up to %u (type %s, value %u)", (unsigned long long)r->start,
                         GGUF_MAX_ALIGNMENT, gguf_vtype_name(r->type), v);
        f->alignment = v;
    }
    return true;
}

static bool parse_tensor_info(cur *c, int64_t i)
{
    gguf_file *f = c->f;
    gguf_tensor *t = &f->tensors[i];
    char nb[128];
    t->info_offset = c->pos;
    if (!rd_str(c, &t->name, GGUF_MAX_KEY_LEN, "tensor name", NULL))
        return false;
    if (t->name.len == 0)
        return failf(f, "tensor %lld has an empty name at offset %llu", (long long)i,
                     (unsigned long long)t->info_offset);
    keyname(t->name, nb, sizeof nb);
    if (!rd_u32(c, &t->n_dims, "dimension count of tensor", nb))
        return false;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return failf(f, "tensor '%s': %u dimensions at offset %llu (1 to %d allowed)", nb,
                     t->n_dims, (unsigned long long)c->pos - 4, GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (!rd_u64(c, &t->ne[d], "shape of tensor", nb))
            return false;
        if (t->ne[d] == 0 || t->ne[d] > INT64_MAX)
            return failf(f, "tensor '%s': dimension %u is %llu at offset %llu", nb, d,
                         (unsigned long long)t->ne[d], (unsigned long long)c->pos - 8);
    }
    if (!rd_u32(c, &t->type, "type of tensor", nb))
        return false;
    const gguf_type_info *ti = gguf_type_get(t->type);
    if (!ti)
        return failf(f, "tensor '%s': unknown tensor type %u at offset %llu", nb, t->type,
                     (unsigned long long)c->pos - 4);
    if (t->ne[0] % ti->block_elems)
        return failf(f, "tensor '%s': row length %llu is not a multiple of the %s block size %u",
                     nb, (unsigned long long)t->ne[0], ti->name, ti->block_elems);
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if (__builtin_mul_overflow(n, t->ne[d], &n))
            n = UINT64_MAX;
    if (n > INT64_MAX || !gguf_tensor_nbytes(t->type, t->ne, t->n_dims, &t->nbytes))
        return failf(f, "tensor '%s': shape overflows (offset %llu)", nb,
                     (unsigned long long)t->info_offset);
    t->n_elems = n;
    if (!rd_u64(c, &t->offset, "data offset of tensor", nb))
        return false;
    if (t->offset % f->alignment)
        return failf(f, "tensor '%s': data offset %llu (info at %llu) is not a multiple of the "
                     "alignment %u", nb, (unsigned long long)t->offset,
                     (unsigned long long)c->pos - 8, f->alignment);
    return true;
}

/* Tensor data must lie inside the file, not overlap, and names must be unique. */
static bool place_tensors(gguf_file *f, uint64_t end_of_infos)
{
    uint64_t a = f->alignment;
    f->data_off = (end_of_infos + a - 1) / a * a; /* end_of_infos <= size, so no overflow */
    if (f->n_tensors == 0)
        return true; /* vocab-only files may end right after the last KV, without padding */
    if (f->data_off > f->size)
        return failf(f, "truncated: tensor data would start at offset %llu, file has %llu",
                     (unsigned long long)f->data_off, (unsigned long long)f->size);
    uint64_t room = f->size - f->data_off;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        char nb[128];
        if (t->offset > room || t->nbytes > room - t->offset)
            return failf(f, "tensor '%s': data [%llu, +%llu) runs past the end of the file "
                         "(data section starts at %llu, file has %llu bytes)",
                         keyname(t->name, nb, sizeof nb), (unsigned long long)t->offset,
                         (unsigned long long)t->nbytes, (unsigned long long)f->data_off,
                         (unsigned long long)f->size);
        t->data = f->base + f->data_off + t->offset;
        f->by_name[i] = i;
    }
    int64_t *idx = malloc((size_t)f->n_tensors * sizeof *idx);
    if (!idx)
        return failf(f, "out of memory");
    for (int64_t i = 0; i < f->n_tensors; i++)
        idx[i] = i;
    qsort_r(idx, (size_t)f->n_tensors, sizeof *idx, cmp_tensor_off, f);
    bool ok = true;
    for (int64_t i = 1; i < f->n_tensors && ok; i++) {
        const gguf_tensor *p = &f->tensors[idx[i - 1]], *t = &f->tensors[idx[i]];
        if (t->offset < p->offset + p->nbytes) {
            char n1[128], n2[128];
            ok = failf(f, "tensor '%s' (data offset %llu) overlaps tensor '%s' (data [%llu, "
                       "+%llu))", keyname(t->name, n1, sizeof n1), (unsigned long long)t->offset,
                       keyname(p->name, n2, sizeof n2), (unsigned long long)p->offset,
                       (unsigned long long)p->nbytes);
        }
    }
    free(idx);
    if (!ok)
        return false;
    qsort_r(f->by_name, (size_t)f->n_tensors, sizeof *f->by_name, cmp_tensor_name, f);
    for (int64_t i = 1; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[f->by_name[i]];
        if (cmp_str(f->tensors[f->by_name[i - 1]].name, t->name) == 0) {
            char nb[128];
            return failf(f, "duplicate tensor name '%s' (info at offset %llu)",
                         keyname(t->name, nb, sizeof nb), (unsigned long long)t->info_offset);
        }
    }
    return true;
}

static bool parse_all(gguf_file *f)
{
    cur c = { f, 0 };
    if (!parse_header(&c))
        return false;
    for (int64_t i = 0; i < f->n_kv; i++)
        if (!parse_kv(&c, i))
            return false;
    if (!check_keys(f))
        return false;
    for (int64_t i = 0; i < f->n_tensors; i++)
        if (!parse_tensor_info(&c, i))
            return false;
    return place_tensors(f, c.pos);
}

static void copy_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static gguf_status finish_open(gguf_file *f, gguf_file **out, char *err, size_t errlen)
{
    if (parse_all(f)) {
        f->err[0] = 0;
        *out = f;
        return GGUF_OK;
    }
    copy_err(err, errlen, f->err);
    gguf_close(f);
    return GGUF_ERR_FORMAT;
}

gguf_status gguf_open_buffer(const void *data, size_t size, const char *what, gguf_file **out,
                             char *err, size_t errlen)
{
    *out = NULL;
    gguf_file *f = calloc(1, sizeof *f);
    if (f)
        f->source = strdup(what ? what : "(buffer)");
    if (!f || !f->source) {
        free(f);
        copy_err(err, errlen, "out of memory");
        return GGUF_ERR_NOMEM;
    }
    static const uint8_t empty[1];
    f->base = size ? data : empty;
    f->size = size;
    return finish_open(f, out, err, errlen);
}

/* ---- the table of mapped files, for a SIGBUS handler ----
 * A file truncated while mapped makes a read of its lost pages raise SIGBUS (llama.cpp maps
 * weights the same way and dies the same way). The handler may only read plain memory and call
 * async-signal-safe functions, so the mapped files are kept in a fixed table without locks:
 * a slot is claimed (FREE -> BUSY) by compare-and-swap, filled, then published (READY); a
 * reader looks only at READY slots. A file opened while the table is full is simply not named. */
enum { MAP_FREE, MAP_BUSY, MAP_READY, MAP_SLOTS = 64 };
static struct {
    atomic_int state;
    const char *base;
    size_t size;
    char path[256];  /* cut to 255 bytes */
} maps[MAP_SLOTS];

static void map_register(const void *base, size_t size, const char *path)
{
    for (int i = 0; i < MAP_SLOTS; i++) {
        int expect = MAP_FREE;
        if (!atomic_compare_exchange_strong(&maps[i].state, &expect, MAP_BUSY))
            continue;
        maps[i].base = base;
        maps[i].size = size;
        snprintf(maps[i].path, sizeof maps[i].path, "%s", path);
        atomic_store(&maps[i].state, MAP_READY);
        return;
    }
}

static void map_unregister(const void *base)
{
    for (int i = 0; i < MAP_SLOTS; i++)
        if (atomic_load(&maps[i].state) == MAP_READY && maps[i].base == base) {
            atomic_store(&maps[i].state, MAP_BUSY);
            maps[i].base = NULL;
            atomic_store(&maps[i].state, MAP_FREE);
            return;
        }
}

const char *gguf_mapped_path_at(const void *addr)
{
    const char *a = addr;
    for (int i = 0; a && i < MAP_SLOTS; i++)
        if (atomic_load(&maps[i].state) == MAP_READY && a >= maps[i].base &&
            (size_t)(a - maps[i].base) < maps[i].size)
            return maps[i].path;
    /* No address (or one outside every map): a file now shorter than its mapping is the one. */
    for (int i = 0; i < MAP_SLOTS; i++) {
        struct stat st;
        if (atomic_load(&maps[i].state) == MAP_READY && stat(maps[i].path, &st) == 0 &&
            (size_t)st.st_size < maps[i].size)
            return maps[i].path;
    }
    return NULL;
}

gguf_status gguf_open(const char *path, gguf_file **out, char *err, size_t errlen)
{
    char msg[512];
    *out = NULL;
    /* O_NONBLOCK: a FIFO (or a device that waits) is refused below instead of blocking in
     * open() until some writer appears; regular files and mmap do not notice the flag. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(msg, sizeof msg, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        copy_err(err, errlen, msg);
        return GGUF_ERR_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(msg, sizeof msg, "%s: not a regular file", path);
        copy_err(err, errlen, msg);
        return GGUF_ERR_IO;
    }
    void *map = NULL;
    if (st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            snprintf(msg, sizeof msg, "%s: mmap: %s", path, strerror(errno));
            close(fd);
            copy_err(err, errlen, msg);
            return GGUF_ERR_IO;
        }
    }
    close(fd); /* the mapping keeps the file alive */
    gguf_status st2 = gguf_open_buffer(map, (size_t)st.st_size, path, out, err, errlen);
    if (st2 != GGUF_OK) {
        if (map)
            munmap(map, (size_t)st.st_size);
        return st2;
    }
    (*out)->mapped = map != NULL;
    if (map)
        map_register(map, (size_t)st.st_size, path);
    return GGUF_OK;
}

void gguf_close(gguf_file *f)
{
    if (!f)
        return;
    if (f->mapped) {
        map_unregister(f->base);
        munmap((void *)f->base, (size_t)f->size);
    }
    for (int64_t i = 0; f->kv && i < f->n_kv; i++)
        free(f->kv[i].elem_off);
    free(f->kv);
    free(f->tensors);
    free(f->by_name);
    free(f->source);
    free(f);
}

uint32_t gguf_version(const gguf_file *f) { return f->version; }

void gguf_release_pages(const gguf_file *f, const void *p, size_t n)
{
    uintptr_t base = (uintptr_t)f->base, a = (uintptr_t)p;
    if (!f->mapped || !n || a < base || a - base > f->size || n > f->size - (a - base))
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = a & ~(page - 1), hi = (a + n + page - 1) & ~(page - 1);
    /* bytes of neighbouring tensors in the edge pages go too: they fault back in on use.
     * Only advice: a failure leaves the pages resident, which is merely what it was. */
    madvise((void *)lo, (size_t)(hi - lo), MADV_DONTNEED);
}
uint64_t gguf_file_size(const gguf_file *f) { return f->size; }
uint32_t gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_off; }
const char *gguf_source(const gguf_file *f) { return f->source; }
const char *gguf_errmsg(const gguf_file *f) { return f->err; }
int64_t gguf_kv_count(const gguf_file *f) { return f->n_kv; }
int64_t gguf_tensor_count(const gguf_file *f) { return f->n_tensors; }

/* ---- metadata access ---- */

static bool str_eq(gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

int64_t gguf_find_key(const gguf_file *f, const char *key)
{
    for (int64_t i = 0; i < f->n_kv; i++)
        if (str_eq(f->kv[i].key, key))
            return i;
    return -1;
}

gguf_str gguf_kv_key(const gguf_file *f, int64_t i) { return f->kv[i].key; }
uint32_t gguf_kv_type(const gguf_file *f, int64_t i) { return f->kv[i].type; }

void gguf_kv_span(const gguf_file *f, int64_t i, uint64_t *start, uint64_t *end)
{
    *start = f->kv[i].start;
    *end = f->kv[i].end;
}

const void *gguf_kv_raw(const gguf_file *f, int64_t i)
{
    return f->base + f->kv[i].start;
}

/* Decode the value of type t stored at offset off (already validated by the parse). */
static void decode_at(const gguf_file *f, uint32_t t, uint64_t off, gguf_value *out)
{
    const uint8_t *p = f->base + off;
    memset(out, 0, sizeof *out);
    out->type = t;
    switch (t) {
    case GGUF_VT_UINT8: out->v.u = p[0]; break;
    case GGUF_VT_INT8: out->v.i = (int8_t)p[0]; break;
    case GGUF_VT_UINT16: out->v.u = (uint16_t)(p[0] | p[1] << 8); break;
    case GGUF_VT_INT16: out->v.i = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
    case GGUF_VT_UINT32: out->v.u = ld_u32(p); break;
    case GGUF_VT_INT32: out->v.i = (int32_t)ld_u32(p); break;
    case GGUF_VT_UINT64: out->v.u = ld_u64(p); break;
    case GGUF_VT_INT64: out->v.i = (int64_t)ld_u64(p); break;
    case GGUF_VT_BOOL: out->v.b = p[0] != 0; break;
    case GGUF_VT_FLOAT32: {
        uint32_t u = ld_u32(p);
        float x;
        memcpy(&x, &u, 4);
        out->v.f = x;
        break;
    }
    case GGUF_VT_FLOAT64: {
        uint64_t u = ld_u64(p);
        memcpy(&out->v.f, &u, 8);
        break;
    }
    case GGUF_VT_STRING:
        out->v.s.len = ld_u64(p);
        out->v.s.ptr = (const char *)p + 8;
        break;
    case GGUF_VT_ARRAY: {
        /* Element bytes of a nested array: re-walk it (it was validated at open). */
        cur c = { (gguf_file *)f, off + 12 };
        out->v.arr.type = ld_u32(p);
        out->v.arr.n = ld_u64(p + 4);
        out->v.arr.raw = p + 12;
        skip_array_body(&c, out->v.arr.type, out->v.arr.n, 0, "", NULL);
        out->v.arr.nbytes = c.pos - (off + 12);
        break;
    }
    }
}

gguf_status gguf_kv_value(const gguf_file *f, int64_t i, gguf_value *out)
{
    if (i < 0 || i >= f->n_kv)
        return GGUF_ERR_NOTFOUND;
    const kv_rec *r = &f->kv[i];
    if (r->type != GGUF_VT_ARRAY) {
        decode_at(f, r->type, r->val, out);
        return GGUF_OK;
    }
    memset(out, 0, sizeof *out);
    out->type = GGUF_VT_ARRAY;
    out->v.arr.type = r->arr_type;
    out->v.arr.n = r->arr_n;
    out->v.arr.raw = f->base + r->arr_off;
    out->v.arr.nbytes = r->arr_bytes;
    return GGUF_OK;
}

gguf_status gguf_arr_get(const gguf_file *f, int64_t i, uint64_t j, gguf_value *out)
{
    if (i < 0 || i >= f->n_kv || f->kv[i].type != GGUF_VT_ARRAY)
        return GGUF_ERR_TYPE;
    const kv_rec *r = &f->kv[i];
    if (j >= r->arr_n)
        return GGUF_ERR_NOTFOUND;
    uint64_t off = r->elem_off ? r->elem_off[j] : r->arr_off + j * gguf_vtype_size(r->arr_type);
    decode_at(f, r->arr_type, off, out);
    return GGUF_OK;
}

/* ---- tensors ---- */

const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i)
{
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    gguf_str key = { name, strlen(name) };
    int64_t lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const gguf_tensor *t = &f->tensors[f->by_name[mid]];
        int c = cmp_str(t->name, key);
        if (c == 0)
            return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}
