/* GGUF reader and writer: the fixture files parse to the values in the fixtures README,
 * rewriting them is byte-identical, and hostile inputs (truncations, corrupted counts, lengths,
 * types and offsets) are refused with a message instead of a crash or an out-of-bounds read.
 * Hostile inputs are parsed from exact-size heap buffers, so `make asan` sees any overread. */
#include "tests/testutil.h"

#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/gguf.h"

/* The fixtures README, section 5 (header summary). 0 / NULL stands for "—". */
typedef struct header_row {
    const char *file;
    uint64_t bytes, tensors, kvs;
    const char *arch, *tok_model, *tok_pre;
    uint64_t vocab;
    bool merges;
    uint32_t ctx, embd, blocks, heads, heads_kv, ff;
    bool chat_template;
} header_row;

static const header_row rows[] = {
    { "models/llama-2-tiny-random.gguf", 1750560, 12, 18, "llama", "llama", NULL, 32000, false, 4096, 8, 1, 2, 2, 32, false },
    { "models/stories260K.gguf", 1185376, 48, 19, "llama", "llama", NULL, 512, false, 2048, 64, 5, 8, 4, 172, false },
    { "vocab/ggml-vocab-bert-bge.gguf", 627549, 0, 20, "bert", "bert", "bert-bge", 30522, false, 512, 384, 12, 12, 0, 1536, false },
    { "vocab/ggml-vocab-deepseek-coder.gguf", 1156067, 0, 25, "llama", "gpt2", "deepseek-coder", 32256, true, 16384, 4096, 32, 32, 32, 11008, false },
    { "vocab/ggml-vocab-deepseek-llm.gguf", 3970167, 0, 23, "llama", "gpt2", "deepseek-llm", 102400, true, 4096, 4096, 30, 32, 32, 11008, false },
    { "vocab/ggml-vocab-falcon.gguf", 2287728, 0, 18, "falcon", "gpt2", "falcon", 65024, true, 2048, 4544, 32, 71, 1, 18176, false },
    { "vocab/ggml-vocab-gpt-2.gguf", 1766807, 0, 16, "gpt2", "gpt2", "gpt-2", 50257, true, 1024, 768, 12, 12, 0, 3072, false },
    { "vocab/ggml-vocab-llama-bpe.gguf", 7822177, 0, 26, "llama", "gpt2", "llama-bpe", 128256, true, 131072, 3072, 28, 24, 8, 8192, true },
    { "vocab/ggml-vocab-llama-spm.gguf", 723869, 0, 22, "llama", "llama", "default", 32000, false, 4096, 4096, 32, 32, 32, 11008, false },
    { "vocab/ggml-vocab-mpt.gguf", 1771393, 0, 17, "mpt", "gpt2", "mpt", 50432, true, 2048, 4096, 32, 32, 0, 16384, false },
    { "vocab/ggml-vocab-phi-3.gguf", 726019, 0, 26, "phi3", "llama", "default", 32064, false, 4096, 3072, 32, 32, 32, 8192, true },
    { "vocab/ggml-vocab-qwen2.gguf", 5933977, 0, 23, "qwen2", "gpt2", "qwen2", 152064, true, 32768, 3584, 28, 28, 4, 18944, true },
    { "vocab/ggml-vocab-refact.gguf", 1720710, 0, 18, "refact", "gpt2", "refact", 49216, true, 4096, 2048, 32, 32, 1, 5632, false },
    { "vocab/ggml-vocab-starcoder.gguf", 1719346, 0, 19, "starcoder2", "gpt2", "starcoder", 49152, true, 16384, 3072, 30, 24, 2, 12288, false },
};

/* Every GGUF the fixtures hold, for the parse-all and rewrite tests. */
static const char *all_files[] = {
    "models/llama-2-tiny-random.gguf", "models/stories260K.gguf",
    "models/babyllama-930K-F32.gguf", "models/babyllama-930K-F16.gguf",
    "models/babyllama-930K-Q8_0.gguf", "models/babyllama-930K-Q4_0.gguf",
    "models/tiny/llama-F16.gguf", "models/tiny/llama-Q8_0.gguf", "models/tiny/llama-Q6_K.gguf",
    "models/tiny/llama-Q5_K_M.gguf", "models/tiny/llama-Q5_1.gguf", "models/tiny/llama-Q5_0.gguf",
    "models/tiny/llama-Q4_K_M.gguf", "models/tiny/llama-Q4_1.gguf", "models/tiny/llama-Q4_0.gguf",
    "models/tiny/llama-Q3_K_M.gguf", "models/tiny/llama-Q2_K.gguf", "models/tiny/qwen2-F16.gguf",
    "models/tiny/qwen2-Q8_0.gguf", "models/tiny/qwen2-Q4_K_M.gguf", "models/tiny/qwen2-Q4_0.gguf",
    "models/tiny/qwen3-F16.gguf", "models/tiny/qwen3-Q8_0.gguf", "models/tiny/qwen3-Q4_K_M.gguf",
    "models/tiny/qwen3-Q4_0.gguf", "models/tiny/phi3-F16.gguf", "models/tiny/phi3-Q8_0.gguf",
    "models/tiny/phi3-Q4_K_M.gguf", "models/tiny/phi3-Q4_0.gguf",
    "models/tiny/llama3vocab-Q8_0.gguf", "models/tiny/qwen2vocab-Q8_0.gguf",
    "models/tiny/phi3vocab-Q8_0.gguf",
    "vocab/ggml-vocab-bert-bge.gguf", "vocab/ggml-vocab-deepseek-coder.gguf",
    "vocab/ggml-vocab-deepseek-llm.gguf", "vocab/ggml-vocab-falcon.gguf",
    "vocab/ggml-vocab-gpt-2.gguf", "vocab/ggml-vocab-llama-bpe.gguf",
    "vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-mpt.gguf", "vocab/ggml-vocab-phi-3.gguf",
    "vocab/ggml-vocab-qwen2.gguf", "vocab/ggml-vocab-refact.gguf", "vocab/ggml-vocab-starcoder.gguf",
};
#define N_ALL (sizeof all_files / sizeof all_files[0])

static gguf_file *open_fixture(const char *rel)
{
    gguf_file *f = NULL;
    char err[512];
    gguf_status st = gguf_open(fixture_path(rel), &f, err, sizeof err);
    if (st != GGUF_OK)
        fail_msg("%s: %s", rel, err);
    return f;
}

static void assert_str_key(const gguf_file *f, const char *key, const char *want)
{
    char buf[256];
    gguf_status st = gguf_get_cstr(f, key, buf, sizeof buf);
    if (!want) {
        assert_int_equal(st, GGUF_ERR_NOTFOUND);
        return;
    }
    assert_int_equal(st, GGUF_OK);
    assert_string_equal(buf, want);
}

static void test_header_table(void **state)
{
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        const header_row *w = &rows[r];
        gguf_file *f = open_fixture(w->file);
        uint32_t u, et;
        uint64_t n;
        print_message("  %s\n", w->file);
        assert_int_equal(gguf_version(f), 3);
        assert_int_equal(gguf_file_size(f), w->bytes);
        assert_int_equal(gguf_tensor_count(f), w->tensors);
        assert_int_equal(gguf_kv_count(f), w->kvs);
        assert_str_key(f, "general.architecture", w->arch);
        assert_str_key(f, "tokenizer.ggml.model", w->tok_model);
        assert_str_key(f, "tokenizer.ggml.pre", w->tok_pre);
        assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n), GGUF_OK);
        assert_int_equal(et, GGUF_VT_STRING);
        assert_int_equal(n, w->vocab);
        assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.merges", &et, &n) == GGUF_OK, w->merges);
        assert_int_equal(gguf_find_key(f, "tokenizer.chat_template") >= 0, w->chat_template);
        assert_int_equal(gguf_get_arch_u32(f, "context_length", &u), GGUF_OK);
        assert_int_equal(u, w->ctx);
        assert_int_equal(gguf_get_arch_u32(f, "embedding_length", &u), GGUF_OK);
        assert_int_equal(u, w->embd);
        assert_int_equal(gguf_get_arch_u32(f, "block_count", &u), GGUF_OK);
        assert_int_equal(u, w->blocks);
        assert_int_equal(gguf_get_arch_u32(f, "attention.head_count", &u), GGUF_OK);
        assert_int_equal(u, w->heads);
        gguf_status st = gguf_get_arch_u32(f, "attention.head_count_kv", &u);
        if (w->heads_kv) {
            assert_int_equal(st, GGUF_OK);
            assert_int_equal(u, w->heads_kv);
        } else {
            assert_int_equal(st, GGUF_ERR_NOTFOUND);
        }
        assert_int_equal(gguf_get_arch_u32(f, "feed_forward_length", &u), GGUF_OK);
        assert_int_equal(u, w->ff);
        gguf_close(f);
    }
}

static void count_types(const gguf_file *f, int counts[GGUF_T_COUNT])
{
    memset(counts, 0, sizeof(int) * GGUF_T_COUNT);
    for (int64_t i = 0; i < gguf_tensor_count(f); i++)
        counts[gguf_tensor_at(f, i)->type]++;
}

static void test_type_mix_and_layout(void **state)
{
    int c[GGUF_T_COUNT];
    gguf_file *f = open_fixture("models/stories260K.gguf");
    count_types(f, c);
    assert_int_equal(c[GGUF_T_F32], 48);
    assert_int_equal(gguf_find_key(f, "general.file_type"), -1); /* README: no file_type */
    uint32_t u;
    assert_int_equal(gguf_get_u32(f, "tokenizer.ggml.seperator_token_id", &u), GGUF_OK);
    assert_int_equal(u, UINT32_MAX);
    assert_int_equal(gguf_get_arch_u32(f, "rope.dimension_count", &u), GGUF_OK);
    assert_int_equal(u, 8);
    const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 64);
    assert_int_equal(t->ne[1], 512);
    assert_int_equal(t->nbytes, 64 * 512 * 4);
    assert_non_null(gguf_find_tensor(f, "output.weight")); /* not tied */
    assert_null(gguf_find_tensor(f, "no.such.tensor"));
    assert_int_equal(gguf_alignment(f), 32);
    assert_int_equal(gguf_data_offset(f) % 32, 0);
    /* tensor data ends exactly at the end of the file */
    uint64_t end = 0;
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *x = gguf_tensor_at(f, i);
        if (x->offset + x->nbytes > end)
            end = x->offset + x->nbytes;
    }
    assert_int_equal(gguf_data_offset(f) + end, gguf_file_size(f));
    gguf_close(f);

    f = open_fixture("models/llama-2-tiny-random.gguf");
    count_types(f, c);
    assert_int_equal(c[GGUF_T_F16], 9);
    assert_int_equal(c[GGUF_T_F32], 3);
    gguf_close(f);

    f = open_fixture("models/tiny/llama-Q3_K_M.gguf"); /* F32×5, Q6_K×1, Q5_K×2, Q4_K×4, Q3_K×9 */
    count_types(f, c);
    assert_int_equal(c[GGUF_T_F32], 5);
    assert_int_equal(c[GGUF_T_Q6_K], 1);
    assert_int_equal(c[GGUF_T_Q5_K], 2);
    assert_int_equal(c[GGUF_T_Q4_K], 4);
    assert_int_equal(c[GGUF_T_Q3_K], 9);
    gguf_close(f);

    f = open_fixture("models/babyllama-930K-Q4_0.gguf"); /* every matrix Q4_0, output Q8_0 */
    t = gguf_find_tensor(f, "output.weight");
    assert_non_null(t);
    assert_int_equal(t->type, GGUF_T_Q8_0);
    assert_int_equal(gguf_find_tensor(f, "blk.0.ffn_down.weight")->type, GGUF_T_Q4_0);
    gguf_close(f);
}

static void test_type_table(void **state)
{
    /* block layouts from ggml-common.h, by bytes: d(2) + 16 bytes of nibbles, etc. */
    struct { uint32_t t; const char *name; uint32_t be, bb; } want[] = {
        { GGUF_T_F32, "F32", 1, 4 }, { GGUF_T_F16, "F16", 1, 2 }, { GGUF_T_BF16, "BF16", 1, 2 },
        { GGUF_T_Q4_0, "Q4_0", 32, 18 }, { GGUF_T_Q4_1, "Q4_1", 32, 20 },
        { GGUF_T_Q5_0, "Q5_0", 32, 22 }, { GGUF_T_Q5_1, "Q5_1", 32, 24 },
        { GGUF_T_Q8_0, "Q8_0", 32, 34 }, { GGUF_T_Q8_1, "Q8_1", 32, 36 },
        { GGUF_T_Q2_K, "Q2_K", 256, 84 }, { GGUF_T_Q3_K, "Q3_K", 256, 110 },
        { GGUF_T_Q4_K, "Q4_K", 256, 144 }, { GGUF_T_Q5_K, "Q5_K", 256, 176 },
        { GGUF_T_Q6_K, "Q6_K", 256, 210 }, { GGUF_T_Q8_K, "Q8_K", 256, 292 },
        { GGUF_T_IQ2_XXS, "IQ2_XXS", 256, 66 }, { GGUF_T_IQ4_NL, "IQ4_NL", 32, 18 },
        { GGUF_T_IQ4_XS, "IQ4_XS", 256, 136 }, { GGUF_T_TQ1_0, "TQ1_0", 256, 54 },
        { GGUF_T_TQ2_0, "TQ2_0", 256, 66 }, { GGUF_T_MXFP4, "MXFP4", 32, 17 },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const gguf_type_info *ti = gguf_type_get(want[i].t);
        assert_non_null(ti);
        assert_string_equal(ti->name, want[i].name);
        assert_int_equal(ti->block_elems, want[i].be);
        assert_int_equal(ti->block_bytes, want[i].bb);
        assert_int_equal(gguf_type_from_name(want[i].name), (int)want[i].t);
    }
    assert_null(gguf_type_get(4));  /* retired Q4_2 */
    assert_null(gguf_type_get(31)); /* retired Q4_0_4_4 */
    assert_null(gguf_type_get(1000));
    assert_int_equal(gguf_type_from_name("q6_k"), GGUF_T_Q6_K);
    assert_int_equal(gguf_type_from_name("Q9_9"), -1);
}

static char tmpdir[] = "/tmp/sizeup-test-gguf-XXXXXX";

static void test_rewrite_identical(void **state)
{
    char out[512];
    snprintf(out, sizeof out, "%s/rewrite.gguf", tmpdir);
    for (size_t k = 0; k < N_ALL; k++) {
        gguf_file *f = open_fixture(all_files[k]);
        gguf_writer *w = gguf_writer_new();
        assert_non_null(w);
        for (int64_t i = 0; i < gguf_kv_count(f); i++)
            assert_int_equal(gguf_writer_copy_kv(w, f, i), GGUF_OK);
        for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
            const gguf_tensor *t = gguf_tensor_at(f, i);
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            assert_int_equal(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data),
                             GGUF_OK);
        }
        if (gguf_writer_write(w, out) != GGUF_OK)
            fail_msg("%s", gguf_writer_errmsg(w));
        gguf_writer_free(w);
        size_t la, lb;
        uint8_t *a = read_file(fixture_path(all_files[k]), &la);
        uint8_t *b = read_file(out, &lb);
        if (la != lb || memcmp(a, b, la) != 0)
            fail_msg("%s: rewrite differs (%zu vs %zu bytes)", all_files[k], la, lb);
        free(a);
        free(b);
        gguf_close(f);
    }
    unlink(out);
}

/* Every value type through the writer and back, nested arrays included. */
static void test_writer_all_types(void **state)
{
    char path[512];
    snprintf(path, sizeof path, "%s/types.gguf", tmpdir);
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_u8(w, "t.u8", 200);
    gguf_writer_set_i8(w, "t.i8", -100);
    gguf_writer_set_u16(w, "t.u16", 60000);
    gguf_writer_set_i16(w, "t.i16", -30000);
    gguf_writer_set_u32(w, "t.u32", 4000000000u);
    gguf_writer_set_i32(w, "t.i32", -2000000000);
    gguf_writer_set_u64(w, "t.u64", 18000000000000000000ull);
    gguf_writer_set_i64(w, "t.i64", -9000000000000000000ll);
    gguf_writer_set_f32(w, "t.f32", 1.5f);
    gguf_writer_set_f64(w, "t.f64", -2.25e100);
    gguf_writer_set_bool(w, "t.bool", true);
    gguf_writer_set_str(w, "t.str", "héllo");
    gguf_writer_set_str(w, "t.replaced", "old");
    gguf_writer_set_str(w, "t.replaced", "new");
    int32_t ints[] = { 1, -2, 3 };
    gguf_writer_set_arr(w, "t.arr_i32", GGUF_VT_INT32, ints, 3);
    const char *strs[] = { "a", "", "ccc" };
    gguf_writer_set_arr_str(w, "t.arr_str", strs, 3);
    gguf_writer_set_u32(w, "general.alignment", 64);
    float data[64];
    for (int i = 0; i < 64; i++)
        data[i] = (float)i;
    uint64_t ne[2] = { 8, 8 }, ne1[1] = { 3 };
    assert_int_equal(gguf_writer_add_tensor(w, "m", GGUF_T_F32, 2, ne, data), GGUF_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "v", GGUF_T_F32, 1, ne1, data), GGUF_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "v", GGUF_T_F32, 1, ne1, data), GGUF_ERR_ARG);
    assert_int_equal(gguf_writer_add_tensor(w, "q", GGUF_T_Q8_0, 1, ne1, data), GGUF_ERR_ARG);
    assert_int_equal(gguf_writer_write(w, path), GGUF_OK);
    gguf_writer_free(w);

    gguf_file *f;
    char err[512];
    assert_int_equal(gguf_open(path, &f, err, sizeof err), GGUF_OK);
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    char s[64];
    assert_int_equal(gguf_get_u64(f, "t.u8", &u), GGUF_OK); assert_int_equal(u, 200);
    assert_int_equal(gguf_get_i64(f, "t.i8", &i), GGUF_OK); assert_int_equal(i, -100);
    assert_int_equal(gguf_get_u64(f, "t.u16", &u), GGUF_OK); assert_int_equal(u, 60000);
    assert_int_equal(gguf_get_i64(f, "t.i16", &i), GGUF_OK); assert_int_equal(i, -30000);
    assert_int_equal(gguf_get_u64(f, "t.u32", &u), GGUF_OK); assert_int_equal(u, 4000000000u);
    assert_int_equal(gguf_get_i64(f, "t.i32", &i), GGUF_OK); assert_int_equal(i, -2000000000);
    assert_int_equal(gguf_get_u64(f, "t.u64", &u), GGUF_OK);
    assert_true(u == 18000000000000000000ull);
    assert_int_equal(gguf_get_i64(f, "t.i64", &i), GGUF_OK);
    assert_true(i == -9000000000000000000ll);
    assert_int_equal(gguf_get_f64(f, "t.f32", &d), GGUF_OK); assert_true(d == 1.5);
    assert_int_equal(gguf_get_f64(f, "t.f64", &d), GGUF_OK); assert_true(d == -2.25e100);
    assert_int_equal(gguf_get_bool(f, "t.bool", &b), GGUF_OK); assert_true(b);
    assert_int_equal(gguf_get_cstr(f, "t.str", s, sizeof s), GGUF_OK);
    assert_string_equal(s, "héllo");
    assert_int_equal(gguf_get_cstr(f, "t.replaced", s, sizeof s), GGUF_OK);
    assert_string_equal(s, "new");
    /* conversions: negative into unsigned, too large for u32, wrong kind */
    uint32_t u32;
    assert_int_equal(gguf_get_u64(f, "t.i8", &u), GGUF_ERR_TYPE);
    assert_int_equal(gguf_get_u32(f, "t.u64", &u32), GGUF_ERR_TYPE);
    assert_int_equal(gguf_get_u32(f, "t.str", &u32), GGUF_ERR_TYPE);
    assert_int_equal(gguf_get_u32(f, "t.missing", &u32), GGUF_ERR_NOTFOUND);
    gguf_value v;
    int64_t k = gguf_find_key(f, "t.arr_i32");
    assert_int_equal(gguf_arr_get(f, k, 1, &v), GGUF_OK);
    assert_int_equal(v.v.i, -2);
    assert_int_equal(gguf_arr_get(f, k, 3, &v), GGUF_ERR_NOTFOUND);
    k = gguf_find_key(f, "t.arr_str");
    assert_int_equal(gguf_arr_get(f, k, 2, &v), GGUF_OK);
    assert_int_equal(v.v.s.len, 3);
    assert_memory_equal(v.v.s.ptr, "ccc", 3);
    assert_int_equal(gguf_arr_get(f, k, 1, &v), GGUF_OK);
    assert_int_equal(v.v.s.len, 0);
    assert_int_equal(gguf_alignment(f), 64);
    assert_int_equal(gguf_data_offset(f) % 64, 0);
    const gguf_tensor *t = gguf_find_tensor(f, "v");
    assert_int_equal(t->offset, 256); /* 64 floats, then aligned to 64 */
    assert_memory_equal(t->data, data, 12);
    assert_memory_equal(gguf_find_tensor(f, "m")->data, data, sizeof data);
    gguf_close(f);
    unlink(path);
}

/* Every prefix of a header must be refused (never accepted, never a crash). */
static void check_truncations(const char *rel, size_t upto, size_t step)
{
    size_t len;
    uint8_t *full = read_file(fixture_path(rel), &len);
    if (upto > len - 1)
        upto = len - 1;
    for (size_t n = 0; n <= upto; n += step) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, full, n);
        gguf_file *f = NULL;
        char err[512] = "";
        gguf_status st = gguf_open_buffer(p, n, rel, &f, err, sizeof err);
        if (st != GGUF_ERR_FORMAT)
            fail_msg("%s truncated to %zu bytes: status %d, expected a format error", rel, n, st);
        assert_null(f);
        assert_true(strstr(err, rel) != NULL); /* the message names the source */
        free(p);
    }
    free(full);
}

static void test_truncations(void **state)
{
    check_truncations("models/stories260K.gguf", 4096, 1);
    check_truncations("vocab/ggml-vocab-llama-spm.gguf", 4096, 1);
    check_truncations("models/tiny/qwen3-Q4_K_M.gguf", 4096, 1);
    /* deeper cuts: inside the vocabulary, the tensor infos and the tensor data */
    check_truncations("models/stories260K.gguf", SIZE_MAX, 4093);
    check_truncations("vocab/ggml-vocab-llama-spm.gguf", SIZE_MAX, 7919);
}

/* ---- hand-built hostile files ---- */

typedef struct bb {
    uint8_t p[8192];
    size_t n;
} bb;

static void b_raw(bb *b, const void *s, size_t n) { memcpy(b->p + b->n, s, n); b->n += n; }
static void b_u32(bb *b, uint32_t v) { b_raw(b, &v, 4); }
static void b_u64(bb *b, uint64_t v) { b_raw(b, &v, 8); }
static void b_strl(bb *b, const char *s, uint64_t len) { b_u64(b, len); b_raw(b, s, strlen(s)); }
static void b_str(bb *b, const char *s) { b_strl(b, s, strlen(s)); }

enum corrupt {
    C_NONE, C_MAGIC, C_BIGENDIAN, C_VERSION1, C_VERSION9, C_NKV_HUGE, C_NT_HUGE, C_KEYLEN_HUGE,
    C_STRLEN_HUGE, C_STRLEN_PAST_END, C_ARRLEN_HUGE, C_ARRLEN_STR_HUGE, C_ARR_ELEMTYPE,
    C_VALTYPE, C_NEST_DEEP, C_DUP_KEY, C_EMPTY_KEY, C_ALIGN_BAD, C_ALIGN_TYPE, C_NDIMS,
    C_NE_ZERO, C_NE_OVERFLOW, C_TTYPE, C_TTYPE_RETIRED, C_BLOCK_MISFIT, C_MISALIGNED,
    C_PAST_END, C_OVERLAP, C_DUP_TENSOR, C_OFFSET_HUGE, C_COUNT
};

/* The same small valid file each time, with one field corrupted. */
static void build(bb *b, enum corrupt c)
{
    b->n = 0;
    b_raw(b, c == C_MAGIC ? "GGUG" : "GGUF", 4);
    b_u32(b, c == C_BIGENDIAN ? 0x03000000u : c == C_VERSION1 ? 1 : c == C_VERSION9 ? 9 : 3);
    b_u64(b, c == C_NT_HUGE ? (1ull << 60) : 2);
    b_u64(b, c == C_NKV_HUGE ? UINT64_MAX : 4);
    /* KV 0: a string */
    if (c == C_KEYLEN_HUGE)
        b_strl(b, "general.architecture", UINT64_MAX - 3);
    else
        b_str(b, c == C_EMPTY_KEY ? "" : "general.architecture");
    b_u32(b, c == C_VALTYPE ? 13 : GGUF_VT_STRING);
    b_strl(b, "llama", c == C_STRLEN_HUGE ? (1ull << 62) : c == C_STRLEN_PAST_END ? 5000 : 5);
    /* KV 1: an array of strings */
    b_str(b, c == C_DUP_KEY ? "general.architecture" : "tok.list");
    b_u32(b, GGUF_VT_ARRAY);
    b_u32(b, c == C_ARR_ELEMTYPE ? 77 : GGUF_VT_STRING);
    b_u64(b, c == C_ARRLEN_STR_HUGE ? (1ull << 59) : 2);
    b_str(b, "ab");
    b_str(b, "c");
    /* KV 2: nested arrays, 1 level (or 64 with C_NEST_DEEP) */
    b_str(b, "nested");
    b_u32(b, GGUF_VT_ARRAY);
    int depth = c == C_NEST_DEEP ? 64 : 1;
    for (int d = 0; d < depth; d++) {
        b_u32(b, GGUF_VT_ARRAY);
        b_u64(b, 1);
    }
    b_u32(b, GGUF_VT_UINT8);
    b_u64(b, c == C_ARRLEN_HUGE ? (1ull << 62) : 2);
    b_raw(b, "\x01\x02", 2);
    /* KV 3: alignment */
    b_str(b, "general.alignment");
    b_u32(b, c == C_ALIGN_TYPE ? GGUF_VT_UINT64 : GGUF_VT_UINT32);
    if (c == C_ALIGN_TYPE)
        b_u64(b, 32);
    else
        b_u32(b, c == C_ALIGN_BAD ? 24 : 32);
    /* tensor 0: F32 [8] at 0 */
    b_str(b, "a");
    b_u32(b, c == C_NDIMS ? 5 : 1);
    b_u64(b, c == C_NE_ZERO ? 0 : 8);
    b_u32(b, c == C_TTYPE ? 250 : c == C_TTYPE_RETIRED ? 4 : GGUF_T_F32);
    b_u64(b, c == C_MISALIGNED ? 4 : c == C_OFFSET_HUGE ? (UINT64_MAX & ~31ull) : 0);
    /* tensor 1: Q8_0 [32, 2] = 68 bytes at 32 */
    b_str(b, c == C_DUP_TENSOR ? "a" : "b");
    b_u32(b, 2);
    b_u64(b, c == C_BLOCK_MISFIT ? 33 : 32);
    b_u64(b, c == C_NE_OVERFLOW ? (1ull << 62) : 2);
    b_u32(b, GGUF_T_Q8_0);
    b_u64(b, c == C_OVERLAP ? 0 : c == C_PAST_END ? 64 : 32);
    while (b->n % 32)
        b->p[b->n++] = 0;
    memset(b->p + b->n, 0x11, 128); /* 32 + 68, padded */
    b->n += 128;
}

static void test_corruptions(void **state)
{
    /* what each message must mention (the key/tensor concerned, or the problem) */
    static const char *expect[C_COUNT] = {
        [C_MAGIC] = "not a GGUF", [C_BIGENDIAN] = "big-endian", [C_VERSION1] = "version 1",
        [C_VERSION9] = "version 9", [C_NKV_HUGE] = "metadata count", [C_NT_HUGE] = "tensor count",
        [C_KEYLEN_HUGE] = "string length", [C_STRLEN_HUGE] = "general.architecture",
        [C_STRLEN_PAST_END] = "general.architecture", [C_ARRLEN_HUGE] = "nested",
        [C_ARRLEN_STR_HUGE] = "tok.list", [C_ARR_ELEMTYPE] = "tok.list",
        [C_VALTYPE] = "unknown value type", [C_NEST_DEEP] = "nested deeper",
        [C_DUP_KEY] = "duplicate key 'general.architecture'", [C_EMPTY_KEY] = "empty key",
        [C_ALIGN_BAD] = "general.alignment", [C_ALIGN_TYPE] = "general.alignment",
        [C_NDIMS] = "tensor 'a'", [C_NE_ZERO] = "tensor 'a'", [C_NE_OVERFLOW] = "tensor 'b'",
        [C_TTYPE] = "unknown tensor type 250", [C_TTYPE_RETIRED] = "unknown tensor type 4",
        [C_BLOCK_MISFIT] = "block size", [C_MISALIGNED] = "alignment",
        [C_PAST_END] = "past the end", [C_OVERLAP] = "overlaps",
        [C_DUP_TENSOR] = "duplicate tensor name 'a'", [C_OFFSET_HUGE] = "past the end",
    };
    static bb b;
    for (int c = 0; c < C_COUNT; c++) {
        build(&b, (enum corrupt)c);
        uint8_t *p = malloc(b.n);
        memcpy(p, b.p, b.n);
        gguf_file *f = NULL;
        char err[512] = "";
        gguf_status st = gguf_open_buffer(p, b.n, "case", &f, err, sizeof err);
        if (c == C_NONE) {
            if (st != GGUF_OK)
                fail_msg("valid file refused: %s", err);
            assert_int_equal(gguf_tensor_count(f), 2);
            gguf_value v;
            int64_t k = gguf_find_key(f, "nested");
            assert_int_equal(gguf_kv_value(f, k, &v), GGUF_OK);
            assert_int_equal(v.v.arr.type, GGUF_VT_ARRAY);
            assert_int_equal(gguf_arr_get(f, k, 0, &v), GGUF_OK);
            assert_int_equal(v.v.arr.type, GGUF_VT_UINT8);
            assert_int_equal(v.v.arr.n, 2);
            assert_int_equal(v.v.arr.raw[1], 2);
            gguf_close(f);
        } else {
            if (st != GGUF_ERR_FORMAT || f)
                fail_msg("case %d accepted (status %d)", c, st);
            print_message("  case %2d: %s\n", c, err);
            if (!strstr(err, expect[c]))
                fail_msg("case %d: message \"%s\" does not mention \"%s\"", c, err, expect[c]);
            if (c != C_MAGIC && c != C_VERSION1 && !strstr(err, "offset") && !strstr(err, "'"))
                fail_msg("case %d: message \"%s\" names no offset or name", c, err);
        }
        free(p);
    }
}

/* Random byte changes in a real header: anything may happen but a crash or an overread. */
static void test_random_mutations(void **state)
{
    size_t len;
    uint8_t *orig = read_file(fixture_path("models/stories260K.gguf"), &len);
    size_t hdr = 16384 < len ? 16384 : len;
    uint8_t *p = malloc(len);
    unsigned seed = (unsigned)random_seed("test_gguf random mutations"), accepted = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(p, orig, len);
        int flips = 1 + rand_r(&seed) % 8;
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)rand_r(&seed) % hdr;
            p[at] = (uint8_t)(rand_r(&seed) % 3 == 0 ? 0xff : rand_r(&seed));
        }
        gguf_file *f = NULL;
        if (gguf_open_buffer(p, len, "mutant", &f, NULL, 0) == GGUF_OK) {
            accepted++;
            for (int64_t i = 0; i < gguf_kv_count(f); i++) {
                gguf_value v;
                assert_int_equal(gguf_kv_value(f, i, &v), GGUF_OK);
                if (v.type == GGUF_VT_ARRAY && v.v.arr.n)
                    assert_int_equal(gguf_arr_get(f, i, v.v.arr.n - 1, &v), GGUF_OK);
            }
            for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
                const gguf_tensor *t = gguf_tensor_at(f, i);
                const uint8_t *d = t->data;
                assert_true(d >= p && d + t->nbytes <= p + len);
            }
            gguf_close(f);
        }
    }
    print_message("  %u of 3000 mutants still valid (flips in string bytes)\n", accepted);
    free(p);
    free(orig);
}

/* Names in tmpdir ending in ".tmp" other than `except`: temp files the writer left behind. */
static int stray_temps(const char *except)
{
    DIR *d = opendir(tmpdir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".tmp") && strcmp(e->d_name, except))
            n++;
    }
    closedir(d);
    return n;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void assert_file_text(const char *path, const char *text)
{
    size_t len;
    uint8_t *got = read_file(path, &len);
    assert_non_null(got);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(got, text, len);
    free(got);
}

/* Issue 18.1: the write goes through a fresh O_EXCL temp file beside the output, so a symlink
 * at OUT.tmp redirects nothing, GGUF_WRITE_NO_REPLACE keeps an existing file, and a failed write
 * (here: the file size limit) leaves neither a temp file nor a changed OUT. */
static void test_writer_temp_file(void **state)
{
    (void)state;
    char out[512], tmp[520], victim[512];
    snprintf(out, sizeof out, "%s/safe.gguf", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    snprintf(victim, sizeof victim, "%s/victim", tmpdir);
    write_text(victim, "not ours");
    assert_int_equal(symlink(victim, tmp), 0);
    static float data[16384];
    uint64_t ne[2] = { 128, 128 };
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    gguf_writer_set_str(w, "general.architecture", "llama");
    assert_int_equal(gguf_writer_add_tensor(w, "m", GGUF_T_F32, 2, ne, data), GGUF_OK);

    assert_int_equal(gguf_writer_write(w, out), GGUF_OK);
    assert_file_text(victim, "not ours");
    struct stat st;
    assert_int_equal(lstat(out, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(lstat(tmp, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(stray_temps("safe.gguf.tmp"), 0);

    write_text(out, "kept");
    assert_int_equal(gguf_writer_write_ex(w, out, GGUF_WRITE_NO_REPLACE), GGUF_ERR_IO);
    assert_non_null(strstr(gguf_writer_errmsg(w), out));
    assert_file_text(out, "kept");
    assert_int_equal(stray_temps("safe.gguf.tmp"), 0);

    /* 64 KiB of tensor data against a 4 KiB limit: fwrite fails with EFBIG, not SIGXFSZ. */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    gguf_status st_write = gguf_writer_write(w, out);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(st_write, GGUF_ERR_IO);
    assert_file_text(out, "kept");
    assert_int_equal(stray_temps("safe.gguf.tmp"), 0);

    gguf_writer_free(w);
    unlink(out);
    unlink(tmp);
    unlink(victim);
}

/* A valid output name as long as a file name may be (NAME_MAX bytes) is written: the temp
 * name beside it, which adds a suffix, must not be the reason it fails. */
static void test_writer_long_name(void **state)
{
    (void)state;
    char name[NAME_MAX + 1], out[PATH_MAX];
    memset(name, 'n', NAME_MAX - 5);
    memcpy(name + NAME_MAX - 5, ".gguf", 6);
    snprintf(out, sizeof out, "%s/%s", tmpdir, name);
    static float data[64];
    uint64_t ne[2] = { 8, 8 };
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    gguf_writer_set_str(w, "general.architecture", "llama");
    assert_int_equal(gguf_writer_add_tensor(w, "m", GGUF_T_F32, 2, ne, data), GGUF_OK);
    gguf_status st = gguf_writer_write_ex(w, out, GGUF_WRITE_NO_REPLACE);
    if (st != GGUF_OK)
        fail_msg("%s", gguf_writer_errmsg(w));
    struct stat sb;
    assert_int_equal(lstat(out, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(stray_temps(""), 0);
    gguf_writer_free(w);
    unlink(out);
}

static void test_open_errors(void **state)
{
    gguf_file *f = (gguf_file *)1;
    char err[512];
    assert_int_equal(gguf_open("/nonexistent/x.gguf", &f, err, sizeof err), GGUF_ERR_IO);
    assert_null(f);
    assert_non_null(strstr(err, "/nonexistent/x.gguf"));
    assert_int_equal(gguf_open("/tmp", &f, err, sizeof err), GGUF_ERR_IO);
    assert_non_null(strstr(err, "not a regular file"));
    char path[512];
    /* A FIFO with no writer: refused at once, not a wait in open() for a writer that never
     * comes (quantize, inspect and run -m all hung on one). The alarm turns a hang into a
     * failure. */
    snprintf(path, sizeof path, "%s/fifo.gguf", tmpdir);
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(10);
    assert_int_equal(gguf_open(path, &f, err, sizeof err), GGUF_ERR_IO);
    alarm(0);
    assert_null(f);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(path);
    snprintf(path, sizeof path, "%s/empty.gguf", tmpdir);
    FILE *fp = fopen(path, "wb");
    fclose(fp);
    assert_int_equal(gguf_open(path, &f, err, sizeof err), GGUF_ERR_FORMAT);
    assert_non_null(strstr(err, "empty file"));
    unlink(path);
    gguf_close(NULL);
    gguf_writer_free(NULL);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_table),
        cmocka_unit_test(test_type_mix_and_layout),
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_rewrite_identical),
        cmocka_unit_test(test_writer_all_types),
        cmocka_unit_test(test_writer_temp_file),
        cmocka_unit_test(test_writer_long_name),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_corruptions),
        cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_open_errors),
    };
    int rc = cmocka_run_group_tests_name("gguf", tests, NULL, NULL);
    rmdir(tmpdir);
    return rc;
}
