/* libFuzzer harness for the GGUF reader (`make fuzz`). Parses the input from an exact-size
 * buffer and, when it is accepted, touches every value, array element and tensor byte range the
 * reader hands out, and writes it back out through the writer, so that any overread or bad
 * offset shows up under AddressSanitizer. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
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
    gguf_close(f);
    return 0;
}
