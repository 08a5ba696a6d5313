/* Model info and `sizeup inspect`: every model and vocab GGUF in the fixtures reads to the values
 * the fixtures README lists (sections 1, 2, 5, 8, 9, 12), the memory estimate matches numbers
 * worked out by hand, per-layer array hyperparameters and badly typed keys are handled, and the
 * binary ($SIZEUP_BIN, default build/sizeup) prints JSON and errors as documented. */
#include "tests/testutil.h"

#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/gguf.h"
#include "engine/model_info.h"

/* One file as the README describes it. kvs -1: not listed there. heads_kv 0: the key is absent
 * ("—"). types: the tensor type mix, "" for vocab-only files. ftype: general.file_type's
 * llama.cpp name, "-" when the key is absent, NULL when the README does not say. */
typedef struct model_row {
    const char *file;
    uint64_t bytes;
    int64_t kvs;
    const char *arch, *tok_model, *tok_pre;
    uint64_t vocab;
    bool merges;
    uint32_t ctx, embd, blocks, heads, heads_kv, ff;
    const char *types, *ftype;
    bool chat_template;
} model_row;

/* Section 9: the 512-vocab family shares every tokenizer KV of stories260K and one shape. */
#define TINY512(file, arch, ft, types, bytes) \
    { "models/tiny/" file, bytes, -1, arch, "llama", NULL, 512, false, 512, 256, 2, 4, 2, 512, \
      types, "MOSTLY_" ft, false }

static const model_row rows[] = {
    /* section 5 (stories260K has no general.file_type: section 1) */
    { "models/llama-2-tiny-random.gguf", 1750560, 18, "llama", "llama", NULL, 32000, false, 4096, 8, 1, 2, 2, 32, "F16x9, F32x3", NULL, false },
    { "models/stories260K.gguf", 1185376, 19, "llama", "llama", NULL, 512, false, 2048, 64, 5, 8, 4, 172, "F32x48", "-", false },
    { "vocab/ggml-vocab-bert-bge.gguf", 627549, 20, "bert", "bert", "bert-bge", 30522, false, 512, 384, 12, 12, 0, 1536, "", NULL, false },
    { "vocab/ggml-vocab-deepseek-coder.gguf", 1156067, 25, "llama", "gpt2", "deepseek-coder", 32256, true, 16384, 4096, 32, 32, 32, 11008, "", NULL, false },
    { "vocab/ggml-vocab-deepseek-llm.gguf", 3970167, 23, "llama", "gpt2", "deepseek-llm", 102400, true, 4096, 4096, 30, 32, 32, 11008, "", NULL, false },
    { "vocab/ggml-vocab-falcon.gguf", 2287728, 18, "falcon", "gpt2", "falcon", 65024, true, 2048, 4544, 32, 71, 1, 18176, "", NULL, false },
    { "vocab/ggml-vocab-gpt-2.gguf", 1766807, 16, "gpt2", "gpt2", "gpt-2", 50257, true, 1024, 768, 12, 12, 0, 3072, "", NULL, false },
    { "vocab/ggml-vocab-llama-bpe.gguf", 7822177, 26, "llama", "gpt2", "llama-bpe", 128256, true, 131072, 3072, 28, 24, 8, 8192, "", "MOSTLY_F16", true },
    { "vocab/ggml-vocab-llama-spm.gguf", 723869, 22, "llama", "llama", "default", 32000, false, 4096, 4096, 32, 32, 32, 11008, "", NULL, false },
    { "vocab/ggml-vocab-mpt.gguf", 1771393, 17, "mpt", "gpt2", "mpt", 50432, true, 2048, 4096, 32, 32, 0, 16384, "", NULL, false },
    { "vocab/ggml-vocab-phi-3.gguf", 726019, 26, "phi3", "llama", "default", 32064, false, 4096, 3072, 32, 32, 32, 8192, "", NULL, true },
    { "vocab/ggml-vocab-qwen2.gguf", 5933977, 23, "qwen2", "gpt2", "qwen2", 152064, true, 32768, 3584, 28, 28, 4, 18944, "", "MOSTLY_F16", true },
    { "vocab/ggml-vocab-refact.gguf", 1720710, 18, "refact", "gpt2", "refact", 49216, true, 4096, 2048, 32, 32, 1, 5632, "", NULL, false },
    { "vocab/ggml-vocab-starcoder.gguf", 1719346, 19, "starcoder2", "gpt2", "starcoder", 49152, true, 16384, 3072, 30, 24, 2, 12288, "", NULL, false },
    /* section 9 */
    TINY512("llama-F16.gguf", "llama", "F16", "F32x5, F16x16", 2901504),
    TINY512("llama-Q8_0.gguf", "llama", "Q8_0", "F32x5, Q8_0x16", 1549824),
    TINY512("llama-Q6_K.gguf", "llama", "Q6_K", "F32x5, Q6_Kx16", 1200640),
    TINY512("llama-Q5_K_M.gguf", "llama", "Q5_K_M", "F32x5, Q6_Kx3, Q5_Kx13", 1048320),
    TINY512("llama-Q5_1.gguf", "llama", "Q5_1", "F32x5, Q6_Kx1, Q5_1x15", 1108480),
    TINY512("llama-Q5_0.gguf", "llama", "Q5_0", "F32x5, Q6_Kx1, Q5_0x15", 1026560),
    TINY512("llama-Q4_K_M.gguf", "llama", "Q4_K_M", "F32x5, Q6_Kx3, Q4_Kx13", 904960),
    TINY512("llama-Q4_1.gguf", "llama", "Q4_1", "F32x5, Q6_Kx1, Q4_1x15", 944640),
    TINY512("llama-Q4_0.gguf", "llama", "Q4_0", "F32x5, Q6_Kx1, Q4_0x15", 862720),
    TINY512("llama-Q3_K_M.gguf", "llama", "Q3_K_M", "F32x5, Q6_Kx1, Q5_Kx2, Q4_Kx4, Q3_Kx9", 757760),
    TINY512("llama-Q2_K.gguf", "llama", "Q2_K", "F32x5, Q6_Kx1, Q3_Kx6, Q2_Kx9", 602112),
    TINY512("qwen2-F16.gguf", "qwen2", "F16", "F32x11, F16x15", 2643616),
    TINY512("qwen2-Q8_0.gguf", "qwen2", "Q8_0", "F32x11, Q8_0x15", 1414816),
    TINY512("qwen2-Q4_K_M.gguf", "qwen2", "Q4_K_M", "F32x11, Q6_Kx3, Q4_Kx12", 835488),
    TINY512("qwen2-Q4_0.gguf", "qwen2", "Q4_0", "F32x11, Q6_Kx1, Q4_0x14", 793248),
    TINY512("qwen3-F16.gguf", "qwen3", "F16", "F32x9, F16x15", 2640576),
    TINY512("qwen3-Q8_0.gguf", "qwen3", "Q8_0", "F32x9, Q8_0x15", 1411776),
    TINY512("qwen3-Q4_K_M.gguf", "qwen3", "Q4_K_M", "F32x9, Q6_Kx3, Q4_Kx12", 832448),
    TINY512("qwen3-Q4_0.gguf", "qwen3", "Q4_0", "F32x9, Q6_Kx1, Q4_0x14", 790208),
    TINY512("phi3-F16.gguf", "phi3", "F16", "F32x5, F16x10", 2901216),
    TINY512("phi3-Q8_0.gguf", "phi3", "Q8_0", "F32x5, Q8_0x10", 1549536),
    TINY512("phi3-Q4_K_M.gguf", "phi3", "Q4_K_M", "F32x5, Q6_Kx2, Q5_Kx2, Q4_Kx6", 928992),
    TINY512("phi3-Q4_0.gguf", "phi3", "Q4_0", "F32x5, Q6_Kx1, Q4_0x9", 862432),
    /* section 9, real-vocab family: 1 layer, 2 heads, 1 KV head, n_ff 256; vocab as section 5 */
    { "models/tiny/llama3vocab-Q8_0.gguf", 12213312, -1, "llama", "gpt2", "llama-bpe", 128256, true, 2048, 32, 1, 2, 1, 256, "F32x4, Q8_0x8", "MOSTLY_Q8_0", true },
    { "models/tiny/qwen2vocab-Q8_0.gguf", 11135008, -1, "qwen2", "gpt2", "qwen2", 152064, true, 2048, 32, 1, 2, 1, 256, "F32x6, Q8_0x8", "MOSTLY_Q8_0", true },
    { "models/tiny/phi3vocab-Q8_0.gguf", 5153408, -1, "phi3", "llama", "default", 32064, false, 4096, 64, 1, 2, 1, 256, "F32x3, Q8_0x6", "MOSTLY_Q8_0", true },
    /* section 12: 5 layers x (2 norms + 7 matrices) + token_embd, output_norm, output = 48
     * tensors; norms stay F32; in Q4_0 output.weight is Q8_0. */
    { "models/babyllama-930K-F32.gguf", 3805248, -1, "llama", "llama", NULL, 105, false, 256, 128, 5, 8, 4, 352, "F32x48", NULL, false },
    { "models/babyllama-930K-F16.gguf", 1908384, -1, "llama", "llama", NULL, 105, false, 256, 128, 5, 8, 4, 352, "F32x11, F16x37", "MOSTLY_F16", false },
    { "models/babyllama-930K-Q8_0.gguf", 1019232, -1, "llama", "llama", NULL, 105, false, 256, 128, 5, 8, 4, 352, "F32x11, Q8_0x37", "MOSTLY_Q8_0", false },
    { "models/babyllama-930K-Q4_0.gguf", 551712, -1, "llama", "llama", NULL, 105, false, 256, 128, 5, 8, 4, 352, "F32x11, Q8_0x1, Q4_0x36", "MOSTLY_Q4_0", false },
};
#define N_ROWS (sizeof rows / sizeof rows[0])

static void near(double got, double want, double rel)
{
    if (fabs(got - want) > rel * fabs(want))
        fail_msg("got %.9g, want %.9g", got, want);
}

/* Open a fixture and read its info; fails the test on any error. */
static void load(const char *rel, eng_model_info *mi)
{
    char err[512];
    gguf_file *f = NULL;
    const char *path = fixture_path(rel);
    if (gguf_open(path, &f, err, sizeof err) != GGUF_OK)
        fail_msg("gguf_open: %s", err);
    gguf_status st = eng_model_info_read(f, mi);
    if (st != GGUF_OK)
        fail_msg("eng_model_info_read(%s) = %d: %s", path, st, mi->err);
    gguf_close(f);
}

static const eng_type_use *find_type(const eng_model_info *mi, const char *name)
{
    for (uint32_t i = 0; i < mi->n_types; i++)
        if (!strcmp(gguf_type_get(mi->types[i].type)->name, name))
            return &mi->types[i];
    return NULL;
}

/* "F32x5, Q6_Kx1, Q4_0x15" against the info's type mix, in any order; also that the mix is
 * sorted by bytes and its sums are the totals. */
static void check_types(const char *file, const eng_model_info *mi, const char *want)
{
    char buf[256];
    uint32_t n = 0;
    uint64_t tensors = 0, bytes = 0;
    snprintf(buf, sizeof buf, "%s", want);
    for (char *save, *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        char *x = strrchr(tok, 'x');
        assert_non_null(x);
        *x = 0;
        const eng_type_use *u = find_type(mi, tok);
        if (!u || u->count != (uint32_t)atoi(x + 1))
            fail_msg("%s: type %s: want %s tensors, got %u", file, tok, x + 1, u ? u->count : 0);
        n++;
    }
    assert_int_equal(mi->n_types, n);
    for (uint32_t i = 0; i < mi->n_types; i++) {
        tensors += mi->types[i].count;
        bytes += mi->types[i].bytes;
        if (i > 0)
            assert_true(mi->types[i - 1].bytes >= mi->types[i].bytes);
    }
    assert_int_equal(tensors, (uint64_t)mi->n_tensors);
    assert_int_equal(bytes, mi->tensor_bytes);
}

static void check_row(const model_row *r)
{
    eng_model_info mi;
    load(r->file, &mi);
    print_message("  %-40s %s\n", r->file, r->arch);
    assert_int_equal(mi.gguf_version, 3);
    assert_int_equal(mi.file_size, r->bytes);
    if (r->kvs >= 0)
        assert_int_equal(mi.n_kv, r->kvs);
    assert_string_equal(mi.architecture, r->arch);
    assert_string_equal(mi.tok_model, r->tok_model);
    assert_string_equal(mi.tok_pre, r->tok_pre ? r->tok_pre : "");
    assert_int_equal(mi.vocab_size, r->vocab);
    assert_int_equal(mi.has_merges, r->merges);
    assert_int_equal(mi.context_length, r->ctx);
    assert_int_equal(mi.n_embd, r->embd);
    assert_int_equal(mi.n_layer, r->blocks);
    assert_int_equal(mi.n_head, r->heads);
    assert_int_equal(mi.head_kv_given, r->heads_kv != 0);
    assert_int_equal(mi.n_head_kv, r->heads_kv ? r->heads_kv : r->heads);
    assert_int_equal(mi.n_ff, r->ff);
    assert_int_equal(mi.has_chat_template, r->chat_template);
    assert_int_equal(mi.has_chat_template, mi.chat_template_len > 0);
    check_types(r->file, &mi, r->types);
    if (r->ftype && !strcmp(r->ftype, "-"))
        assert_false(mi.has_file_type);
    else if (r->ftype) {
        assert_true(mi.has_file_type);
        assert_string_equal(eng_ftype_name(mi.file_type), r->ftype);
    }
    if (mi.n_tensors == 0) {
        assert_int_equal(mi.n_params, 0);
        assert_int_equal(mi.tensor_bytes, 0);
        assert_true(mi.bits_per_weight == 0.0);
    } else {
        near(mi.bits_per_weight, (double)mi.tensor_bytes * 8 / (double)mi.n_params, 1e-12);
        assert_true(mi.tensor_bytes < mi.file_size);
    }
}

static void test_readme_tables(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_ROWS; i++)
        check_row(&rows[i]);
}

static void check_special(const eng_model_info *mi, eng_special s, uint32_t id, const char *text)
{
    assert_int_equal(mi->special[s].id, id);
    assert_int_equal(mi->special[s].in_vocab, text != NULL);
    assert_string_equal(mi->special[s].text, text ? text : "");
}

/* Section 1: 5 layers, n_embd 64, 8/4 heads, n_ff 172, all F32, 512 tokens, head dim 8. */
static void test_stories260k(void **state)
{
    (void)state;
    eng_model_info mi;
    load("models/stories260K.gguf", &mi);
    /* Parameters from the shape: token_embd and the separate output (vocab x n_embd), the
     * output norm, and per layer two norms, q and o (n_embd^2), k and v (n_embd x kv_dim) and
     * the three FFN matrices. */
    uint64_t d = 64, kv = 4 * 8, ff = 172, v = 512;
    uint64_t params = 2 * v * d + d + 5 * (2 * d + 2 * d * d + 2 * d * kv + 3 * d * ff);
    assert_int_equal(mi.n_params, params); /* 292800 */
    assert_int_equal(mi.tensor_bytes, params * 4);
    near(mi.bits_per_weight, 32.0, 1e-12);
    assert_int_equal(mi.head_dim, 8);
    assert_int_equal(mi.head_dim_v, 8);
    assert_true(mi.rope_dim_given);
    assert_int_equal(mi.rope_dim, 8);
    assert_false(mi.rope_freq_base_given);
    near(mi.rope_freq_base, 10000.0, 0);
    assert_string_equal(mi.rope_scaling_type, "");
    assert_false(mi.has_rope_freqs);
    assert_false(mi.tied_embeddings); /* output.weight is stored separately */
    assert_int_equal(mi.norm_kind, ENG_NORM_RMS);
    near(mi.norm_eps, 1e-5, 1e-6);
    check_special(&mi, ENG_TOK_UNK, 0, "<unk>");
    check_special(&mi, ENG_TOK_BOS, 1, "<s>");
    check_special(&mi, ENG_TOK_EOS, 2, "</s>");
    check_special(&mi, ENG_TOK_PAD, ENG_INFO_NO_TOKEN, NULL); /* stored as UINT32_MAX */
    check_special(&mi, ENG_TOK_SEP, ENG_INFO_NO_TOKEN, NULL);
    check_special(&mi, ENG_TOK_EOT, ENG_INFO_NO_TOKEN, NULL);
    assert_false(mi.add_bos_given);
    assert_false(mi.add_eos_given);
}

/* Section 12: n_embd 128, 5 layers, 8/4 heads (head dim 16), n_ff 352, 105 pieces, about
 * 0.93M parameters, named by gguf-py. */
static void test_babyllama(void **state)
{
    (void)state;
    eng_model_info mi;
    load("models/babyllama-930K-Q4_0.gguf", &mi);
    uint64_t d = 128, kv = 4 * 16, ff = 352, v = 105;
    uint64_t params = 2 * v * d + d + 5 * (2 * d + 2 * d * d + 2 * d * kv + 3 * d * ff);
    assert_int_equal(mi.n_params, params);
    near((double)mi.n_params, 0.93e6, 0.03);
    assert_string_equal(mi.name, "BabyLlama 930K TinyStories");
    assert_int_equal(mi.head_dim, 16);
    assert_int_equal(mi.rope_dim, 16);
    /* Q4_0 is 18 bytes per 32 values, Q8_0 34: so a bits-per-weight between 4.5 and 8.5. */
    assert_true(mi.bits_per_weight > 4.5 && mi.bits_per_weight < 5.0);
    check_special(&mi, ENG_TOK_UNK, 0, "<unk>");
    check_special(&mi, ENG_TOK_BOS, 1, "<s>");
    check_special(&mi, ENG_TOK_EOS, 2, "</s>");
}

static uint64_t file_len(const char *rel)
{
    size_t n;
    free(read_file(fixture_path(rel), &n));
    return n;
}

/* Section 8: the two vocab files built with gguf-py. */
static void test_built_vocabs(void **state)
{
    (void)state;
    eng_model_info mi;
    load("vocab/ggml-vocab-qwen2.gguf", &mi);
    assert_string_equal(mi.name, "qwen2");
    assert_int_equal(mi.n_merges, 151387);
    check_special(&mi, ENG_TOK_EOS, 151645, "<|im_end|>");
    check_special(&mi, ENG_TOK_PAD, 151643, "<|endoftext|>");
    check_special(&mi, ENG_TOK_BOS, 151643, "<|endoftext|>");
    check_special(&mi, ENG_TOK_EOT, ENG_INFO_NO_TOKEN, NULL); /* "no eot_token_id key" */
    assert_true(mi.add_bos_given);
    assert_false(mi.add_bos);
    assert_int_equal(mi.chat_template_len, file_len("templates/llama.cpp/Qwen-Qwen2.5-7B-Instruct.jinja"));
    assert_int_equal(mi.head_dim, 3584 / 28);
    assert_false(mi.rope_dim_given); /* the converter writes none for qwen2 */
    assert_int_equal(mi.rope_dim, mi.head_dim);
    assert_true(mi.rope_freq_base_given);
    near(mi.rope_freq_base, 1e6, 0);
    near(mi.norm_eps, 1e-6, 1e-6);

    load("vocab/ggml-vocab-llama-bpe.gguf", &mi);
    assert_string_equal(mi.name, "llama-bpe");
    assert_int_equal(mi.n_merges, 280147);
    check_special(&mi, ENG_TOK_BOS, 128000, "<|begin_of_text|>");
    check_special(&mi, ENG_TOK_EOS, 128009, "<|eot_id|>");
    assert_true(mi.add_bos_given && mi.add_bos);
    assert_int_equal(mi.chat_template_len, file_len("templates/llama.cpp/meta-llama-Llama-3.2-3B-Instruct.jinja"));
    assert_int_equal(mi.head_dim, 128); /* key_length */
    assert_int_equal(mi.head_dim_v, 128);
    assert_int_equal(mi.rope_dim, 128);
    near(mi.rope_freq_base, 500000.0, 0);
}

/* Section 9 specifics and section 2's phi-3 tokens. */
static void test_tiny_specifics(void **state)
{
    (void)state;
    eng_model_info mi;
    load("models/tiny/qwen3-Q4_K_M.gguf", &mi);
    assert_int_equal(mi.head_dim, 64); /* attention.key_length */
    assert_true(mi.tied_embeddings);
    load("models/tiny/qwen2-Q8_0.gguf", &mi);
    assert_true(mi.tied_embeddings);
    assert_false(mi.rope_dim_given);
    assert_int_equal(mi.rope_dim, 64); /* n_embd / n_head */
    load("models/tiny/llama-Q4_0.gguf", &mi);
    assert_false(mi.tied_embeddings);
    assert_int_equal(mi.rope_dim, 64);
    check_special(&mi, ENG_TOK_BOS, 1, "<s>");
    load("models/tiny/phi3-Q4_0.gguf", &mi);
    assert_int_equal(mi.sliding_window, 2047);
    assert_int_equal(mi.rope_scaling_orig_ctx, 512);
    load("models/tiny/llama3vocab-Q8_0.gguf", &mi);
    assert_true(mi.has_rope_freqs);
    assert_true(mi.tied_embeddings);
    near(mi.rope_freq_base, 500000.0, 0);
    check_special(&mi, ENG_TOK_EOS, 128009, "<|eot_id|>");
    load("vocab/ggml-vocab-phi-3.gguf", &mi);
    check_special(&mi, ENG_TOK_EOS, 32000, "<|endoftext|>");
    /* deepseek-coder's linear RoPE scaling (the file's KVs, read with an independent parser). */
    load("vocab/ggml-vocab-deepseek-coder.gguf", &mi);
    assert_string_equal(mi.rope_scaling_type, "linear");
    near(mi.rope_scaling_factor, 4.0, 0);
    near(mi.rope_freq_base, 100000.0, 0);
}

/* Hand-worked memory estimates (see eng_mem_compute_formula). */
static void test_memory_estimate(void **state)
{
    (void)state;
    eng_model_info mi;
    eng_mem_estimate me;
    load("models/stories260K.gguf", &mi);
    assert_int_equal(eng_model_default_ctx(&mi), 2048); /* its own context, under the cap */
    eng_model_mem_estimate(&mi, 2048, &me);
    assert_int_equal(me.n_batch, 512);
    assert_int_equal(me.weights, 1171200);
    /* K+V f16: 2 B x 5 layers x 2048 positions x 4 KV heads x (8 + 8) */
    assert_int_equal(me.kv_cache, 1310720);
    /* per token 2*64 + 8*8 + 4*(8+8) + 8*8 + 2*172 = 664 floats; x512 = 339968; logits 512;
     * scores 8 x 512 x 2048 = 8388608; total 8729088 floats x 4 B */
    assert_int_equal(me.compute, 34916352);
    assert_int_equal(me.total, 1171200 + 1310720 + 34916352);
    eng_model_mem_estimate(&mi, 256, &me); /* a short context also shrinks the batch */
    assert_int_equal(me.n_batch, 256);
    assert_int_equal(me.kv_cache, 163840);
    assert_int_equal(me.compute, 4 * (256 * 664 + 512 + 8 * 256 * 256));

    load("vocab/ggml-vocab-qwen2.gguf", &mi);
    assert_int_equal(eng_model_default_ctx(&mi), 4096); /* 32768 capped */
    eng_model_mem_estimate(&mi, 4096, &me);
    assert_int_equal(me.weights, 0);
    assert_int_equal(me.kv_cache, 2ull * 28 * 4096 * 4 * 256); /* 224 MiB */
    load("models/tiny/llama-Q4_0.gguf", &mi);
    assert_int_equal(eng_model_default_ctx(&mi), 512);
}

/* ---- synthetic files: per-layer arrays and bad types ---- */

static char tmp_path[64];

static gguf_writer *synthetic_base(void)
{
    gguf_writer *w = gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "toy"), GGUF_OK);
    assert_int_equal(gguf_writer_set_u32(w, "toy.embedding_length", 64), GGUF_OK);
    assert_int_equal(gguf_writer_set_u32(w, "toy.block_count", 3), GGUF_OK);
    return w;
}

/* Write w to a temporary file, open it, read the info; returns the status. */
static gguf_status synthetic_read(gguf_writer *w, eng_model_info *mi)
{
    char err[512];
    gguf_file *f = NULL;
    snprintf(tmp_path, sizeof tmp_path, "/tmp/test_inspect_%d.gguf", (int)getpid());
    if (gguf_writer_write(w, tmp_path) != GGUF_OK)
        fail_msg("write: %s", gguf_writer_errmsg(w));
    gguf_writer_free(w);
    if (gguf_open(tmp_path, &f, err, sizeof err) != GGUF_OK)
        fail_msg("open: %s", err);
    gguf_status st = eng_model_info_read(f, mi);
    gguf_close(f);
    unlink(tmp_path);
    return st;
}

static void test_per_layer_arrays(void **state)
{
    (void)state;
    eng_model_info mi;
    gguf_writer *w = synthetic_base();
    uint32_t heads[3] = { 4, 8, 8 }, ff[3] = { 128, 384, 256 };
    int32_t kv[3] = { 0, 2, 4 };
    assert_int_equal(gguf_writer_set_arr(w, "toy.attention.head_count", GGUF_VT_UINT32, heads, 3), GGUF_OK);
    assert_int_equal(gguf_writer_set_arr(w, "toy.attention.head_count_kv", GGUF_VT_INT32, kv, 3), GGUF_OK);
    assert_int_equal(gguf_writer_set_arr(w, "toy.feed_forward_length", GGUF_VT_UINT32, ff, 3), GGUF_OK);
    assert_int_equal(synthetic_read(w, &mi), GGUF_OK);
    assert_int_equal(mi.n_head, 8);
    assert_int_equal(mi.n_head_kv, 4);
    assert_int_equal(mi.n_ff, 384);
    assert_int_equal(mi.head_dim, 8); /* 64 / 8 */
    assert_int_equal(mi.context_length, 0);
    assert_int_equal(eng_model_default_ctx(&mi), ENG_DEFAULT_CTX_CAP);
    assert_int_equal(mi.vocab_size, 0);
    for (int s = 0; s < ENG_TOK_COUNT; s++)
        assert_int_equal(mi.special[s].id, ENG_INFO_NO_TOKEN);

    /* Scalar head count, no head_count_kv: KV heads = heads. */
    w = synthetic_base();
    assert_int_equal(gguf_writer_set_u32(w, "toy.attention.head_count", 16), GGUF_OK);
    assert_int_equal(synthetic_read(w, &mi), GGUF_OK);
    assert_int_equal(mi.n_head_kv, 16);
    assert_false(mi.head_kv_given);
    assert_int_equal(mi.head_dim, 4);
}

static void test_bad_types(void **state)
{
    (void)state;
    eng_model_info mi;
    gguf_writer *w = synthetic_base();
    assert_int_equal(gguf_writer_set_str(w, "toy.context_length", "lots"), GGUF_OK);
    assert_int_equal(synthetic_read(w, &mi), GGUF_ERR_TYPE);
    assert_non_null(strstr(mi.err, "toy.context_length"));
    assert_non_null(strstr(mi.err, tmp_path));
    assert_non_null(strstr(mi.err, "string"));

    int32_t neg[2] = { 4, -1 };
    w = synthetic_base();
    assert_int_equal(gguf_writer_set_arr(w, "toy.attention.head_count", GGUF_VT_INT32, neg, 2), GGUF_OK);
    assert_int_equal(synthetic_read(w, &mi), GGUF_ERR_TYPE);
    assert_non_null(strstr(mi.err, "toy.attention.head_count"));

    uint32_t ids[2] = { 1, 2 };
    w = synthetic_base();
    assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.tokens", GGUF_VT_UINT32, ids, 2), GGUF_OK);
    assert_int_equal(synthetic_read(w, &mi), GGUF_ERR_TYPE);
    assert_non_null(strstr(mi.err, "tokenizer.ggml.tokens"));

    /* A special id past the vocabulary is kept, without text. */
    const char *toks[2] = { "a", "b" };
    w = synthetic_base();
    assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 2), GGUF_OK);
    assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 7), GGUF_OK);
    assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1), GGUF_OK);
    assert_int_equal(synthetic_read(w, &mi), GGUF_OK);
    check_special(&mi, ENG_TOK_EOS, 7, NULL);
    check_special(&mi, ENG_TOK_BOS, 1, "b");
}

/* ---- the binary ---- */

/* Run `$SIZEUP_BIN inspect ARGS`; *out gets stdout (and stderr too when merge). Returns the exit
 * status. */
static int run_inspect(const char *args, bool merge, char **out)
{
    const char *bin = getenv("SIZEUP_BIN");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' inspect %s%s", bin && *bin ? bin : "build/sizeup", args,
             merge ? " 2>&1" : "");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, len = 0, n;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 4096) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
    }
    buf[len] = 0;
    int status = pclose(p);
    if (!WIFEXITED(status))
        fail_msg("'%s' did not exit normally (status %d)", cmd, status);
    *out = buf;
    return WEXITSTATUS(status);
}

static json_t *inspect_json(const char *args)
{
    char *out;
    int rc = run_inspect(args, false, &out);
    if (rc != 0)
        fail_msg("inspect %s: exit %d", args, rc);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    if (!j)
        fail_msg("inspect %s: bad JSON at line %d: %s\n%s", args, e.line, e.text, out);
    free(out);
    return j;
}

static json_int_t jget_int(json_t *o, const char *path)
{
    json_t *v = json_object_get(o, path);
    if (!json_is_integer(v))
        fail_msg("field '%s' is not an integer", path);
    return json_integer_value(v);
}

static void test_cli_json(void **state)
{
    (void)state;
    char args[4200];
    snprintf(args, sizeof args, "--json '%s'", fixture_path("models/stories260K.gguf"));
    json_t *j = inspect_json(args);
    assert_string_equal(json_string_value(json_object_get(j, "architecture")), "llama");
    assert_int_equal(jget_int(j, "gguf_version"), 3);
    assert_int_equal(jget_int(j, "n_tensors"), 48);
    assert_int_equal(jget_int(j, "n_kv"), 19);
    assert_int_equal(jget_int(j, "file_size"), 1185376);
    assert_int_equal(jget_int(j, "n_params"), 292800);
    assert_int_equal(jget_int(j, "n_head_kv"), 4);
    assert_int_equal(jget_int(j, "head_dim"), 8);
    assert_int_equal(jget_int(j, "vocab_size"), 512);
    assert_true(json_is_null(json_object_get(j, "file_type")));
    near(json_real_value(json_object_get(j, "bits_per_weight")), 32.0, 1e-12);
    json_t *types = json_object_get(j, "tensor_types");
    assert_int_equal(json_array_size(types), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(types, 0), "type")), "F32");
    assert_int_equal(jget_int(json_array_get(types, 0), "count"), 48);
    json_t *sp = json_object_get(j, "special_tokens");
    assert_int_equal(jget_int(json_object_get(sp, "bos"), "id"), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(sp, "bos"), "text")), "<s>");
    assert_true(json_is_null(json_object_get(sp, "sep")));
    assert_true(json_is_false(json_object_get(j, "chat_template")));
    json_t *mem = json_object_get(j, "memory");
    assert_int_equal(jget_int(mem, "n_ctx"), 2048);
    assert_int_equal(jget_int(mem, "kv_cache"), 1310720);
    assert_int_equal(jget_int(mem, "total"), 1171200 + 1310720 + 34916352);
    assert_null(json_object_get(j, "tensors"));
    json_decref(j);

    snprintf(args, sizeof args, "--json -c 256 '%s'", fixture_path("vocab/ggml-vocab-qwen2.gguf"));
    j = inspect_json(args);
    assert_int_equal(jget_int(j, "n_params"), 0);
    assert_true(json_is_null(json_object_get(j, "bits_per_weight")));
    assert_int_equal(json_array_size(json_object_get(j, "tensor_types")), 0);
    json_t *tok = json_object_get(j, "tokenizer");
    assert_string_equal(json_string_value(json_object_get(tok, "model")), "gpt2");
    assert_string_equal(json_string_value(json_object_get(tok, "pre")), "qwen2");
    assert_true(json_is_true(json_object_get(tok, "merges")));
    assert_true(json_is_false(json_object_get(tok, "add_bos")));
    assert_true(json_is_true(json_object_get(j, "chat_template")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(j, "special_tokens"), "eos"), "text")), "<|im_end|>");
    mem = json_object_get(j, "memory");
    assert_int_equal(jget_int(mem, "n_ctx"), 256);
    assert_int_equal(jget_int(mem, "weights"), 0);
    assert_int_equal(jget_int(mem, "kv_cache"), 2 * 28 * 256 * 4 * 256);
    json_decref(j);
}

static void test_cli_tensors(void **state)
{
    (void)state;
    char args[4200];
    snprintf(args, sizeof args, "--json --tensors '%s'", fixture_path("models/tiny/llama-Q4_0.gguf"));
    json_t *j = inspect_json(args);
    json_t *ts = json_object_get(j, "tensors");
    assert_int_equal(json_array_size(ts), 21);
    json_int_t sum = 0;
    bool saw_output = false;
    for (size_t i = 0; i < json_array_size(ts); i++) {
        json_t *t = json_array_get(ts, i);
        sum += jget_int(t, "bytes");
        if (strcmp(json_string_value(json_object_get(t, "name")), "output.weight"))
            continue;
        saw_output = true; /* section 9: output.weight is Q6_K, {n_embd, n_vocab} */
        assert_string_equal(json_string_value(json_object_get(t, "type")), "Q6_K");
        json_t *shape = json_object_get(t, "shape");
        assert_int_equal(json_array_size(shape), 2);
        assert_int_equal(json_integer_value(json_array_get(shape, 0)), 256);
        assert_int_equal(json_integer_value(json_array_get(shape, 1)), 512);
    }
    assert_true(saw_output);
    assert_int_equal(sum, jget_int(j, "tensor_bytes"));
    json_decref(j);

    char *out;
    snprintf(args, sizeof args, "--tensors '%s'", fixture_path("models/stories260K.gguf"));
    assert_int_equal(run_inspect(args, false, &out), 0);
    assert_non_null(strstr(out, "292.8K (292800)"));
    assert_non_null(strstr(out, "tensors (48;"));
    assert_non_null(strstr(out, "blk.4.ffn_down.weight"));
    free(out);
}

static void test_cli_errors(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(run_inspect("/nonexistent/dir/model.gguf", true, &out), 1);
    assert_non_null(strstr(out, "/nonexistent/dir/model.gguf"));
    assert_non_null(strstr(out, "No such file"));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1); /* exactly one line */
    free(out);

    char args[4200];
    const char *inp = fixture_path("vocab/ggml-vocab-qwen2.gguf.inp");
    snprintf(args, sizeof args, "'%s'", inp);
    assert_int_equal(run_inspect(args, true, &out), 1);
    assert_non_null(strstr(out, inp));
    assert_non_null(strstr(out, "not a GGUF file"));
    free(out);

    snprintf(args, sizeof args, "-c abc '%s'", fixture_path("models/stories260K.gguf"));
    assert_int_equal(run_inspect(args, true, &out), 2);
    assert_non_null(strstr(out, "'abc'"));
    free(out);
    snprintf(args, sizeof args, "'%s' -c 0", fixture_path("models/stories260K.gguf"));
    assert_int_equal(run_inspect(args, true, &out), 2);
    assert_non_null(strstr(out, "'0'"));
    free(out);
    assert_int_equal(run_inspect("--frobnicate x.gguf", true, &out), 2);
    assert_non_null(strstr(out, "'--frobnicate'"));
    free(out);
    assert_int_equal(run_inspect("", true, &out), 2);
    assert_non_null(strstr(out, "missing MODEL"));
    free(out);
    assert_int_equal(run_inspect("--help", true, &out), 0);
    assert_non_null(strstr(out, "usage: sizeup inspect MODEL"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_tables),
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_babyllama),
        cmocka_unit_test(test_built_vocabs),
        cmocka_unit_test(test_tiny_specifics),
        cmocka_unit_test(test_memory_estimate),
        cmocka_unit_test(test_per_layer_arrays),
        cmocka_unit_test(test_bad_types),
        cmocka_unit_test(test_cli_json),
        cmocka_unit_test(test_cli_tensors),
        cmocka_unit_test(test_cli_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
