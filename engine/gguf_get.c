/* Typed getters for GGUF metadata, written over the reader's public API (engine/gguf.h):
 * integers convert between widths when the value fits, floats accept float32 or float64, and
 * `ARCH.suffix` keys are built from general.architecture. */
#include "engine/gguf.h"

#include <stdio.h>
#include <string.h>

static bool vtype_is_int(uint32_t t)
{
    return t <= GGUF_VT_INT32 || t == GGUF_VT_UINT64 || t == GGUF_VT_INT64;
}

static bool vtype_is_signed(uint32_t t)
{
    return t == GGUF_VT_INT8 || t == GGUF_VT_INT16 || t == GGUF_VT_INT32 || t == GGUF_VT_INT64;
}

static gguf_status get_scalar(const gguf_file *f, const char *key, gguf_value *v)
{
    int64_t i = gguf_find_key(f, key);
    if (i < 0)
        return GGUF_ERR_NOTFOUND;
    return gguf_kv_value(f, i, v);
}

gguf_status gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out)
{
    gguf_value v;
    gguf_status s = get_scalar(f, key, &v);
    if (s)
        return s;
    if (!vtype_is_int(v.type) || (vtype_is_signed(v.type) && v.v.i < 0))
        return GGUF_ERR_TYPE;
    *out = vtype_is_signed(v.type) ? (uint64_t)v.v.i : v.v.u;
    return GGUF_OK;
}

gguf_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out)
{
    uint64_t u;
    gguf_status s = gguf_get_u64(f, key, &u);
    if (s)
        return s;
    if (u > UINT32_MAX)
        return GGUF_ERR_TYPE;
    *out = (uint32_t)u;
    return GGUF_OK;
}

gguf_status gguf_get_i64(const gguf_file *f, const char *key, int64_t *out)
{
    gguf_value v;
    gguf_status s = get_scalar(f, key, &v);
    if (s)
        return s;
    if (!vtype_is_int(v.type) || (!vtype_is_signed(v.type) && v.v.u > INT64_MAX))
        return GGUF_ERR_TYPE;
    *out = vtype_is_signed(v.type) ? v.v.i : (int64_t)v.v.u;
    return GGUF_OK;
}

gguf_status gguf_get_f64(const gguf_file *f, const char *key, double *out)
{
    gguf_value v;
    gguf_status s = get_scalar(f, key, &v);
    if (s)
        return s;
    if (v.type != GGUF_VT_FLOAT32 && v.type != GGUF_VT_FLOAT64)
        return GGUF_ERR_TYPE;
    *out = v.v.f;
    return GGUF_OK;
}

gguf_status gguf_get_f32(const gguf_file *f, const char *key, float *out)
{
    double d;
    gguf_status s = gguf_get_f64(f, key, &d);
    if (s == GGUF_OK)
        *out = (float)d;
    return s;
}

gguf_status gguf_get_bool(const gguf_file *f, const char *key, bool *out)
{
    gguf_value v;
    gguf_status s = get_scalar(f, key, &v);
    if (s)
        return s;
    if (v.type != GGUF_VT_BOOL)
        return GGUF_ERR_TYPE;
    *out = v.v.b;
    return GGUF_OK;
}

gguf_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out)
{
    gguf_value v;
    gguf_status s = get_scalar(f, key, &v);
    if (s)
        return s;
    if (v.type != GGUF_VT_STRING)
        return GGUF_ERR_TYPE;
    *out = v.v.s;
    return GGUF_OK;
}

gguf_status gguf_get_cstr(const gguf_file *f, const char *key, char *buf, size_t buflen)
{
    gguf_str s;
    gguf_status st = gguf_get_str(f, key, &s);
    if (st)
        return st;
    if (buflen) {
        size_t n = s.len < buflen - 1 ? (size_t)s.len : buflen - 1;
        memcpy(buf, s.ptr, n);
        buf[n] = 0;
    }
    return GGUF_OK;
}

gguf_status gguf_get_arr(const gguf_file *f, const char *key, uint32_t *elem_type, uint64_t *n)
{
    gguf_value v;
    gguf_status st = get_scalar(f, key, &v);
    if (st)
        return st;
    if (v.type != GGUF_VT_ARRAY)
        return GGUF_ERR_TYPE;
    *elem_type = v.v.arr.type;
    *n = v.v.arr.n;
    return GGUF_OK;
}

bool gguf_arch_key(const gguf_file *f, const char *suffix, char *buf, size_t buflen)
{
    gguf_str arch;
    if (gguf_get_str(f, "general.architecture", &arch) != GGUF_OK || arch.len > 256)
        return false;
    int n = snprintf(buf, buflen, "%.*s.%s", (int)arch.len, arch.ptr, suffix);
    return n > 0 && (size_t)n < buflen;
}

gguf_status gguf_get_arch_u32(const gguf_file *f, const char *suffix, uint32_t *out)
{
    char key[320];
    if (!gguf_arch_key(f, suffix, key, sizeof key))
        return GGUF_ERR_NOTFOUND;
    return gguf_get_u32(f, key, out);
}

gguf_status gguf_get_arch_f32(const gguf_file *f, const char *suffix, float *out)
{
    char key[320];
    if (!gguf_arch_key(f, suffix, key, sizeof key))
        return GGUF_ERR_NOTFOUND;
    return gguf_get_f32(f, key, out);
}

