/* libFuzzer harness for the GGUF reader and writer (`make fuzz`). Parses the input from an
 * exact-size buffer and, when it is accepted, touches every value, array element and tensor byte
 * range the reader hands out, so that any overread or bad offset shows up under
 * AddressSanitizer; then round-trips it: writes every key and tensor back out through the writer
 * (to a file in /tmp), parses that file again and traps unless it holds the same keys, values,
 * tensor shapes and tensor bytes. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/gguf.h"

static volatile uint64_t sink;

static void touch_values(const gguf_file *f)
{
    for (int64_t i = 0; i < gguf_kv_count(f); i++) {
        gguf_value v;
        if (gguf_kv_value(f, i, &v) != GGUF_OK)
            __builtin_trap();
        if (v.type == GGUF_VT_STRING && v.v.s.len)
            sink += (uint8_t)v.v.s.ptr[v.v.s.len - 1];
        if (v.type != GGUF_VT_ARRAY)
            continue;
        for (uint64_t j = 0; j < v.v.arr.n && j < 4096; j++) {
            gguf_value e;
            if (gguf_arr_get(f, i, j, &e) != GGUF_OK)
                __builtin_trap();
            if (e.type == GGUF_VT_STRING && e.v.s.len)
                sink += (uint8_t)e.v.s.ptr[e.v.s.len - 1];
            if (e.type == GGUF_VT_ARRAY && e.v.arr.nbytes)
                sink += e.v.arr.raw[e.v.arr.nbytes - 1];
        }
    }
}

static bool same_str(gguf_str a, gguf_str b)
{
    return a.len == b.len && (!a.len || !memcmp(a.ptr, b.ptr, a.len));
}

/* Values equal as decoded: scalars by value (bitwise for floats), strings by bytes, arrays by
 * element type, count and every element. */
static bool same_value(const gguf_file *fa, int64_t ia, const gguf_value *a, const gguf_file *fb,
                       int64_t ib, const gguf_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case GGUF_VT_STRING:
        return same_str(a->v.s, b->v.s);
    case GGUF_VT_ARRAY:
        if (a->v.arr.type != b->v.arr.type || a->v.arr.n != b->v.arr.n)
            return false;
        if (a->v.arr.type != GGUF_VT_STRING && a->v.arr.type != GGUF_VT_ARRAY)
            return a->v.arr.nbytes == b->v.arr.nbytes &&
                   (!a->v.arr.nbytes || !memcmp(a->v.arr.raw, b->v.arr.raw, a->v.arr.nbytes));
        for (uint64_t j = 0; j < a->v.arr.n; j++) {
            gguf_value ea = { 0 }, eb = { 0 };
            if (gguf_arr_get(fa, ia, j, &ea) != GGUF_OK || gguf_arr_get(fb, ib, j, &eb) != GGUF_OK)
                return false;
            if (ea.type == GGUF_VT_ARRAY) { /* nested: same encoding, so the same bytes */
                if (ea.v.arr.type != eb.v.arr.type || ea.v.arr.n != eb.v.arr.n ||
                    ea.v.arr.nbytes != eb.v.arr.nbytes ||
                    (ea.v.arr.nbytes && memcmp(ea.v.arr.raw, eb.v.arr.raw, ea.v.arr.nbytes)))
                    return false;
            } else if (!same_value(fa, ia, &ea, fb, ib, &eb)) {
                return false;
            }
        }
        return true;
    case GGUF_VT_BOOL:
        return a->v.b == b->v.b;
    default: /* integers in u or i, floats in f: eight bytes either way */
        return !memcmp(&a->v, &b->v, sizeof a->v.u);
    }
}

static void mismatch(const char *what, int64_t i)
{
    if (i < 0)
        fprintf(stderr, "fuzz_gguf: round trip through the writer: %s\n", what);
    else
        fprintf(stderr, "fuzz_gguf: round trip through the writer changed %s %lld\n", what,
                (long long)i);
    __builtin_trap();
}

/* Parse -> write -> parse: the second parse must see what the first one did. */
static void round_trip(const gguf_file *f)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/fuzz_gguf-%d.gguf", (int)getpid());
    gguf_writer *w = gguf_writer_new();
    if (!w)
        return;
    bool ok = true; /* general.alignment, when present, is copied and sets the layout */
    for (int64_t i = 0; ok && i < gguf_kv_count(f); i++) {
        gguf_str k = gguf_kv_key(f, i);
        /* a key with a NUL byte is one the writer's C-string keys cannot express */
        ok = !(k.len && memchr(k.ptr, 0, k.len)) && gguf_writer_copy_kv(w, f, i) == GGUF_OK;
    }
    for (int64_t i = 0; ok && i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        if (t->name.len >= sizeof name || (t->name.len && memchr(t->name.ptr, 0, t->name.len)))
            ok = false; /* a name the writer's C-string API cannot express */
        else {
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            ok = gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data) == GGUF_OK;
        }
    }
    if (!ok || gguf_writer_write(w, path) != GGUF_OK) {
        gguf_writer_free(w);
        return; /* refused by the writer: nothing to compare */
    }
    gguf_writer_free(w);
    gguf_file *g = NULL;
    if (gguf_open(path, &g, NULL, 0) != GGUF_OK)
        mismatch("the writer wrote a file its own reader refuses", -1);
    if (gguf_kv_count(g) != gguf_kv_count(f) || gguf_tensor_count(g) != gguf_tensor_count(f))
        mismatch("the key or tensor count changed", -1);
    for (int64_t i = 0; i < gguf_kv_count(f); i++) {
        gguf_value a = { 0 }, b = { 0 };
        if (!same_str(gguf_kv_key(f, i), gguf_kv_key(g, i)) || gguf_kv_value(f, i, &a) != GGUF_OK ||
            gguf_kv_value(g, i, &b) != GGUF_OK || !same_value(f, i, &a, g, i, &b))
            mismatch("key", i);
    }
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *a = gguf_tensor_at(f, i), *b = gguf_tensor_at(g, i);
        if (!same_str(a->name, b->name) || a->type != b->type || a->n_dims != b->n_dims ||
            memcmp(a->ne, b->ne, sizeof a->ne) || a->nbytes != b->nbytes ||
            (a->nbytes && memcmp(a->data, b->data, a->nbytes)))
            mismatch("tensor", i);
    }
    gguf_close(g);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *f = NULL;
    char err[512];
    if (gguf_open_buffer(data, size, "fuzz", &f, err, sizeof err) != GGUF_OK)
        return 0;
    touch_values(f);
    uint32_t u;
    char s[64];
    gguf_get_arch_u32(f, "block_count", &u);
    gguf_get_cstr(f, "general.name", s, sizeof s);
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        const uint8_t *d = t->data;
        if (t->nbytes)
            sink += d[0] + d[t->nbytes - 1];
        gguf_str n = t->name;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n.len < 200 ? n.len : 200), n.ptr);
        if (gguf_find_tensor(f, name) == NULL && n.len < 200 && !memchr(n.ptr, 0, n.len))
            __builtin_trap();
    }
    round_trip(f);
    gguf_close(f);
    return 0;
}
