/* Seed maker for the GGUF fuzzer: turns each fixture into a small VALID file with the same
 * keys, value types and tensor names/types (arrays cut to 16 elements, tensors to one block),
 * so the fuzzer starts from inputs that parse all the way instead of truncated headers.
 * usage: mkseeds OUTDIR FILE.gguf... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"

static void copy_kv_small(gguf_writer *w, const gguf_file *f, int64_t i)
{
    gguf_value v;
    gguf_kv_value(f, i, &v);
    gguf_str k = gguf_kv_key(f, i);
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)k.len, k.ptr);
    if (v.type != GGUF_VT_ARRAY || v.v.arr.n <= 16) {
        gguf_writer_copy_kv(w, f, i);
        return;
    }
    if (v.v.arr.type == GGUF_VT_STRING) {
        char *strs[16];
        for (int j = 0; j < 16; j++) {
            gguf_value e;
            gguf_arr_get(f, i, (uint64_t)j, &e);
            strs[j] = strndup(e.v.s.ptr, (size_t)e.v.s.len);
        }
        gguf_writer_set_arr_str(w, key, (const char *const *)strs, 16);
        for (int j = 0; j < 16; j++)
            free(strs[j]);
    } else if (gguf_vtype_size(v.v.arr.type)) {
        gguf_writer_set_arr(w, key, v.v.arr.type, v.v.arr.raw, 16);
    }
}

int main(int argc, char **argv)
{
    static uint8_t zeros[4096];
    for (int a = 2; a < argc; a++) {
        gguf_file *f;
        char err[512], out[4096];
        if (gguf_open(argv[a], &f, err, sizeof err) != GGUF_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        gguf_writer *w = gguf_writer_new();
        for (int64_t i = 0; i < gguf_kv_count(f); i++)
            copy_kv_small(w, f, i);
        for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            uint64_t ne[1] = { gguf_type_get(t->type)->block_elems };
            gguf_writer_add_tensor(w, name, t->type, 1, ne, zeros);
        }
        const char *base = strrchr(argv[a], '/');
        snprintf(out, sizeof out, "%s/small-%s", argv[1], base ? base + 1 : argv[a]);
        if (gguf_writer_write(w, out) != GGUF_OK) {
            fprintf(stderr, "%s\n", gguf_writer_errmsg(w));
            return 1;
        }
        gguf_writer_free(w);
        gguf_close(f);
    }
    return 0;
}
