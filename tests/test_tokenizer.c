/* Tokenizers against the Hugging Face ground truth shipped with the fixtures (the vocab .inp and
 * *.out, made by the original tokenizers with add_special_tokens=False): every vector must
 * match exactly, decode(encode(s)) must give s back, and streaming decode must equal whole
 * decode. Plus special-token parsing, BOS/EOS, EOG sets and refusal of unknown tokenizers. */
#include "tests/testutil.h"

#include <stdbool.h>
#include <time.h>

#include <jansson.h>
#include <unistd.h>

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

/* Whether s[0..k) ends inside a UTF-8 character: after a lead byte, or after a continuation
 * byte whose lead byte asks for more than the bytes that follow it. */
static bool ends_inside_char(const char *s, size_t k)
{
    for (size_t back = 1; back <= 4 && back <= k; back++) {
        unsigned c = (unsigned char)s[k - back];
        if ((c & 0xc0) == 0x80)
            continue; /* a continuation byte: look further back for its lead */
        size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        return back < need;
    }
    return false; /* only continuation bytes: not a character this check can judge */
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
        /* what has been released so far never ends inside a UTF-8 character: not after its
         * lead byte, nor after one of its continuation bytes */
        if (ends_inside_char(acc, k))
            fail_msg("streaming released part of a UTF-8 character after token %zu", i);
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

/* The real-vocab reference prompts (rendered chat, BOS text included) tokenized with
 * parse_special on, as llama.cpp did for reference/tiny: Llama 3 specials, Qwen2 specials and
 * Phi-3's quirk (whitespace after a special token swallowed, a space prefix after it). */
static void check_reference_prompt(const char *model, const char *ref)
{
    loaded l = load(model);
    size_t len;
    char *raw = (char *)read_file(fixture_path(ref), &len);
    json_error_t je;
    json_t *j = json_loadb(raw, len, 0, &je);
    if (!j)
        fail_msg("%s: %s", ref, je.text);
    const char *prompt = json_string_value(json_object_get(j, "prompt"));
    json_t *want = json_object_get(j, "prompt_tokens");
    assert_non_null(prompt);
    int32_t *ids;
    size_t n;
    assert_int_equal(eng_tokenize(l.v, prompt, strlen(prompt), false, true, &ids, &n), ENG_TOK_OK);
    assert_int_equal(n, json_array_size(want));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], json_integer_value(json_array_get(want, i)));
    /* without parse_special the control tokens are plain text and split into many tokens */
    int32_t *plain;
    size_t np;
    assert_int_equal(eng_tokenize(l.v, prompt, strlen(prompt), false, false, &plain, &np), ENG_TOK_OK);
    assert_true(np > n);
    free(plain);
    free(ids);
    json_decref(j);
    free(raw);
    unload(&l);
}

static void test_reference_prompts(void **state)
{
    check_reference_prompt("models/tiny/llama3vocab-Q8_0.gguf", "reference/tiny/llama3vocab-Q8_0.jsonl");
    check_reference_prompt("models/tiny/qwen2vocab-Q8_0.gguf", "reference/tiny/qwen2vocab-Q8_0.jsonl");
    check_reference_prompt("models/tiny/phi3vocab-Q8_0.gguf", "reference/tiny/phi3vocab-Q8_0.jsonl");
}

static void assert_ids(const eng_vocab *v, const char *text, bool add_special, bool parse_special,
                       const int32_t *want, size_t nwant)
{
    int32_t *ids;
    size_t n;
    assert_int_equal(eng_tokenize(v, text, strlen(text), add_special, parse_special, &ids, &n),
                     ENG_TOK_OK);
    if (n != nwant || (n && memcmp(ids, want, n * sizeof *ids) != 0)) {
        for (size_t i = 0; i < n; i++)
            print_error(" %d", ids[i]);
        fail_msg("\"%s\": %zu tokens, want %zu", text, n, nwant);
    }
    free(ids);
}

/* Streaming with token boundaries inside multi-byte characters: SentencePiece byte tokens
 * (<0xE2> <0x82> <0xAC> for "€", four for an emoji) and byte-level BPE pieces of a rare
 * character. Nothing is released while a character is incomplete, and each character is
 * released whole as soon as its last byte arrives (not held until the flush). */
static void check_bytewise(const eng_vocab *v, const int32_t *ids, size_t n, const char *want)
{
    eng_detok *d = eng_detok_new(v, false, false);
    char got[64];
    size_t k = 0, len, wlen = strlen(want);
    for (size_t i = 0; i < n; i++) {
        const char *p = eng_detok_push(d, ids[i], &len);
        assert_true(k + len <= wlen);
        memcpy(got + k, p, len);
        k += len;
        if (ends_inside_char(got, k))
            fail_msg("token %zu of \"%s\" released part of a character", i, want);
    }
    if (k != wlen || memcmp(got, want, wlen))
        fail_msg("\"%s\": %zu bytes released before the flush, want all %zu", want, k, wlen);
    eng_detok_flush(d, &len);
    assert_int_equal(len, 0);
    eng_detok_free(d);
}

static int32_t byte_token(const eng_vocab *v, unsigned b)
{
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    int32_t id = eng_vocab_find(v, name, strlen(name));
    assert_true(id >= 0);
    return id;
}

static void test_stream_cut_inside_char(void **state)
{
    loaded l = load("vocab/ggml-vocab-llama-spm.gguf");
    const char *chars[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                            "a\xe2\x82\xac" "b\xf0\x9f\x98\x80" };
    for (size_t c = 0; c < sizeof chars / sizeof chars[0]; c++) {
        int32_t ids[16];
        size_t n = 0;
        for (const char *p = chars[c]; *p; p++)
            ids[n++] = byte_token(l.v, (unsigned char)*p);
        check_bytewise(l.v, ids, n, chars[c]);
    }
    unload(&l);
    /* byte-level BPE: a rare character is split into pieces that end inside it */
    l = load("vocab/ggml-vocab-qwen2.gguf");
    const char *rare = "\xf0\x9d\x94\x98\xf0\x90\x8c\xb0"; /* U+1D518 U+10330 */
    int32_t *ids;
    size_t n;
    assert_int_equal(eng_tokenize(l.v, rare, strlen(rare), false, false, &ids, &n), ENG_TOK_OK);
    size_t cuts = 0, at = 0, len;
    for (size_t i = 0; i + 1 < n; i++) {
        eng_token_piece(l.v, ids[i], false, &len);
        at += len;
        cuts += at % 4 != 0;
    }
    if (cuts == 0)
        fail_msg("the qwen2 tokens of the rare characters never end inside one (%zu tokens)", n);
    check_bytewise(l.v, ids, n, rare);
    free(ids);
    unload(&l);
}

static void test_special_and_bos(void **state)
{
    loaded l = load("models/stories260K.gguf");
    const eng_special_ids *sp = eng_vocab_special(l.v);
    assert_int_equal(sp->bos, 1);
    assert_int_equal(sp->eos, 2);
    assert_true(sp->add_bos);
    assert_true(eng_vocab_is_eog(l.v, 2));
    assert_false(eng_vocab_is_eog(l.v, 1));
    /* fixtures README: "Once upon a time" -> [1, 403, 407, 261, 378] */
    assert_ids(l.v, "Once upon a time", true, false, (int32_t[]){ 1, 403, 407, 261, 378 }, 5);
    assert_ids(l.v, "Once upon a time", false, false, (int32_t[]){ 403, 407, 261, 378 }, 4);
    assert_ids(l.v, "", true, false, (int32_t[]){ 1 }, 1);
    assert_ids(l.v, "", false, false, NULL, 0);
    unload(&l);

    l = load("vocab/ggml-vocab-llama-bpe.gguf");
    sp = eng_vocab_special(l.v);
    assert_int_equal(sp->bos, 128000);
    assert_int_equal(sp->eos, 128009);
    assert_int_equal(sp->eot, 128009);
    assert_int_equal(sp->eom, 128008);
    assert_true(sp->add_bos);
    assert_true(eng_vocab_is_eog(l.v, 128009) && eng_vocab_is_eog(l.v, 128008));
    assert_false(eng_vocab_is_eog(l.v, 128001)); /* <|end_of_text|> is not in llama.cpp's set */
    /* fixtures README section 8, llama.cpp with special parsing */
    assert_ids(l.v, "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", false, true,
               (int32_t[]){ 128006, 882, 128007, 271, 13347, 128009 }, 6);
    unload(&l);

    l = load("vocab/ggml-vocab-qwen2.gguf");
    sp = eng_vocab_special(l.v);
    assert_int_equal(sp->bos, 151643);
    assert_int_equal(sp->eos, 151645);
    assert_int_equal(sp->eot, 151645);
    assert_false(sp->add_bos);
    int32_t eog[] = { 151643, 151645, 151662, 151663 };
    for (size_t i = 0; i < 4; i++)
        assert_true(eng_vocab_is_eog(l.v, eog[i]));
    assert_false(eng_vocab_is_eog(l.v, 151664));
    assert_ids(l.v, "<|im_start|>user\nHi<|im_end|><tool_call>", true, true,
               (int32_t[]){ 151644, 872, 198, 13048, 151645, 151657 }, 6);
    /* <tool_call> is user-defined: matched even with special parsing off, as in llama.cpp */
    int32_t *ids;
    size_t n;
    assert_int_equal(eng_tokenize(l.v, "a<tool_call>", 12, false, false, &ids, &n), ENG_TOK_OK);
    assert_int_equal(ids[n - 1], 151657);
    free(ids);
    unload(&l);
}

/* A copy of a vocab with one key changed, to see unknown tokenizers refused. */
static eng_tok_status load_modified(const char *rel, const char *key, const char *val, char *err)
{
    gguf_file *f, *g;
    char e2[512], path[] = "/tmp/sizeup-tok-XXXXXX";
    assert_int_equal(gguf_open(fixture_path(rel), &f, e2, sizeof e2), GGUF_OK);
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_kv_count(f); i++)
        gguf_writer_copy_kv(w, f, i);
    gguf_writer_set_str(w, key, val);
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(gguf_writer_write(w, path), GGUF_OK);
    gguf_writer_free(w);
    gguf_close(f);
    assert_int_equal(gguf_open(path, &g, e2, sizeof e2), GGUF_OK);
    eng_vocab *v = NULL;
    eng_tok_status st = eng_vocab_load(g, &v, err, 512);
    eng_vocab_free(v);
    gguf_close(g);
    unlink(path);
    return st;
}

static void test_unknown_refused(void **state)
{
    char err[512];
    assert_int_equal(load_modified("vocab/ggml-vocab-gpt-2.gguf", "tokenizer.ggml.pre", "klingon", err),
                     ENG_TOK_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "'klingon'"));
    assert_int_equal(load_modified("vocab/ggml-vocab-gpt-2.gguf", "tokenizer.ggml.model", "t5", err),
                     ENG_TOK_ERR_UNSUPPORTED);
    assert_non_null(strstr(err, "'t5'"));
    /* bert (WordPiece) is not a tokenizer sizeup runs: refused by name, never guessed */
    gguf_file *f;
    eng_vocab *v;
    assert_int_equal(gguf_open(fixture_path("vocab/ggml-vocab-bert-bge.gguf"), &f, err, sizeof err), GGUF_OK);
    assert_int_equal(eng_vocab_load(f, &v, err, sizeof err), ENG_TOK_ERR_UNSUPPORTED);
    assert_null(v);
    assert_non_null(strstr(err, "'bert'"));
    gguf_close(f);
}

/* CPU seconds of one tokenization of text[0..n) (checked to round-trip). */
static double tokenize_seconds(const eng_vocab *v, const char *text, size_t n)
{
    struct timespec t0, t1;
    int32_t *ids;
    size_t nids;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    assert_int_equal(eng_tokenize(v, text, n, false, false, &ids, &nids), ENG_TOK_OK);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    char *back;
    size_t blen;
    assert_int_equal(eng_detokenize(v, ids, nids, false, &back, &blen), ENG_TOK_OK);
    assert_int_equal(blen, n);
    assert_memory_equal(back, text, n);
    free(back);
    free(ids);
    return (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
}

/* SentencePiece merging is n log n: 64x more text (16 KiB, then 1 MiB) must take about 64x
 * longer (n log n: 92x), far from the 4096x of a quadratic merge. Measured in CPU time of this
 * process, the small size as the best of five runs; the bound, 640x, leaves room for noise and
 * cache effects but not for a quadratic step. Both outputs must be complete and right. */
static void test_long_inputs(void **state)
{
    loaded l = load("vocab/ggml-vocab-llama-spm.gguf");
    size_t n = 1 << 20, small = n / 64;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = "ab cd\xc3\xa9" "f "[i % 10];
    big[n] = 0;
    double t_small = 1e9;
    for (int r = 0; r < 5; r++) {
        double t = tokenize_seconds(l.v, big, small);
        t_small = t < t_small ? t : t_small;
    }
    double t_big = tokenize_seconds(l.v, big, n);
    double ratio = t_big / (t_small > 1e-6 ? t_small : 1e-6);
    print_message("  tokenize 16 KiB: %.2f ms, 1 MiB: %.1f ms: %.0fx for 64x the text\n",
                  t_small * 1e3, t_big * 1e3, ratio);
    if (ratio > 640)
        fail_msg("64x more text took %.0fx longer (n log n: about 92x)", ratio);
    int32_t *ids;
    size_t nids;
    char *back;
    size_t blen;
    /* invalid UTF-8 and NUL bytes survive a round trip through byte fallback (a truncated
     * sequence right before a space would swallow part of the "▁" that stands for it, as in
     * llama.cpp, so the cut sequence is at the end here) */
    const char junk[] = "\xff\xfe\x00a b\xc3\xe2\x96";
    assert_int_equal(eng_tokenize(l.v, junk, sizeof junk - 1, false, false, &ids, &nids), ENG_TOK_OK);
    assert_int_equal(eng_detokenize(l.v, ids, nids, false, &back, &blen), ENG_TOK_OK);
    assert_int_equal(blen, sizeof junk - 1);
    assert_memory_equal(back, junk, blen);
    free(back);
    free(ids);
    free(big);
    unload(&l);
}

/* `sizeup tokenize`: ids as a JSON array, stdin read byte for byte (no trimming). */
static void test_command(void **state)
{
    const char *bin = getenv("SIZEUP_BIN") ? getenv("SIZEUP_BIN") : "build/sizeup";
    char cmd[8400], out[4096];
    snprintf(cmd, sizeof cmd, "printf 'Once upon a time' | %s tokenize -m %s --ids -", bin,
             fixture_path("models/stories260K.gguf"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    assert_int_equal(pclose(p), 0);
    assert_string_equal(out, "[1, 403, 407, 261, 378]\n");
    snprintf(cmd, sizeof cmd, "printf ' Hello\\n\\n' | %s tokenize -m %s --count --no-bos -", bin,
             fixture_path("vocab/ggml-vocab-qwen2.gguf"));
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    assert_int_equal(pclose(p), 0);
    assert_string_equal(out, "2\n"); /* " Hello" and "\n\n": trailing newlines were kept */
    snprintf(cmd, sizeof cmd, "%s tokenize -m /nonexistent.gguf hi 2>&1", bin);
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    assert_int_not_equal(pclose(p), 0);
    assert_non_null(strstr(out, "/nonexistent.gguf"));
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
        cmocka_unit_test(test_reference_prompts), cmocka_unit_test(test_special_and_bos),
        cmocka_unit_test(test_unknown_refused), cmocka_unit_test(test_long_inputs),
        cmocka_unit_test(test_stream_cut_inside_char),
        cmocka_unit_test(test_command),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, NULL, NULL);
}
