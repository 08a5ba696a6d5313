/* `sizeup quantize` against llama-quantize: the BabyLlama F32 fixture quantized to Q8_0 and
 * Q4_0 by sizeup must hold the same tensors, of the same types, with the same bytes, as the
 * fixture files llama-quantize made from it (fixtures README section 12), including
 * llama-quantize's choice of Q8_0 for output.weight in the Q4_0 file. Compared through the
 * GGUF reader, tensor by tensor.
 *
 * The type mixes: the tiny F16 fixtures quantized by sizeup to every type sizeup writes that
 * has a llama-quantize counterpart in the fixtures (the K mixes, Q4_0, Q8_0, Q6_K) must give
 * every tensor the type llama-quantize gave it, and the same general.file_type. The bytes differ
 * there (llama-quantize started from F32 masters that are not shipped), so only types are
 * compared. */
#include <unistd.h>

#include "testutil.h"

#include "app/app.h"
#include "engine/gguf.h"
#include "engine/quant_mix.h"

static gguf_file *open_gguf(const char *path)
{
    gguf_file *f;
    char err[512];
    if (gguf_open(path, &f, err, sizeof err))
        fail_msg("%s", err);
    return f;
}

/* Quantize the F32 fixture to `type` in a temporary file and compare it with `ref_rel`. */
/* `sizeup quantize` of fixture in_rel to type into a fresh temporary file out (the caller's
 * "/tmp/...-XXXXXX" template; it unlinks it), opened. */
static gguf_file *quantize_to_tmp(const char *in_rel, const char *type, char *out)
{
    char in[4096];
    snprintf(in, sizeof in, "%s", fixture_path(in_rel));
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    char *argv[] = { "quantize", "--force", in, out, (char *)type, NULL };
    assert_int_equal(app_cmd_quantize(5, argv), 0);
    return open_gguf(out);
}

static void check_identical(const char *type, const char *ref_rel)
{
    char out[] = "/tmp/sizeup-qref-XXXXXX";
    gguf_file *mine = quantize_to_tmp("models/babyllama-930K-F32.gguf", type, out);
    gguf_file *ref = open_gguf(fixture_path(ref_rel));
    int64_t n = gguf_tensor_count(ref);
    assert_int_equal(gguf_tensor_count(mine), n);
    int quantized = 0, differ = 0;
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *r = gguf_tensor_at(ref, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)r->name.len, r->name.ptr);
        const gguf_tensor *t = gguf_find_tensor(mine, name);
        if (!t)
            fail_msg("%s: tensor %s missing from sizeup's file", type, name);
        if (t->type != r->type) {
            print_error("%s: %s is %s, llama-quantize made it %s\n", type, name,
                        gguf_type_get(t->type)->name, gguf_type_get(r->type)->name);
            differ++;
            continue;
        }
        assert_int_equal(t->nbytes, r->nbytes);
        if (memcmp(t->data, r->data, r->nbytes)) {
            size_t at = 0;
            while (((const uint8_t *)t->data)[at] == ((const uint8_t *)r->data)[at])
                at++;
            print_error("%s: %s (%s) differs from byte %zu of %llu\n", type, name,
                        gguf_type_get(r->type)->name, at, (unsigned long long)r->nbytes);
            differ++;
        }
        quantized += r->type == GGUF_T_Q8_0 || r->type == GGUF_T_Q4_0;
    }
    print_message("%s: %lld tensors, %d of them Q8_0/Q4_0, %d differ from %s\n", type,
                  (long long)n, quantized, differ, ref_rel);
    gguf_close(mine);
    gguf_close(ref);
    unlink(out);
    assert_int_equal(differ, 0);
    assert_true(quantized > 0);
}

/* Quantize fixture `in_rel` to `type` and compare every tensor's type and general.file_type
 * with `ref_rel`, the file llama-quantize made. */
static void check_types(const char *in_rel, const char *type, const char *ref_rel)
{
    char out[] = "/tmp/sizeup-qmix-XXXXXX";
    gguf_file *mine = quantize_to_tmp(in_rel, type, out);
    gguf_file *ref = open_gguf(fixture_path(ref_rel));
    int64_t n = gguf_tensor_count(ref);
    assert_int_equal(gguf_tensor_count(mine), n);
    int differ = 0;
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *r = gguf_tensor_at(ref, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)r->name.len, r->name.ptr);
        const gguf_tensor *t = gguf_find_tensor(mine, name);
        if (!t)
            fail_msg("%s: tensor %s missing from sizeup's file", type, name);
        if (t->type != r->type) {
            print_error("%s -> %s: %s is %s, llama-quantize made it %s\n", in_rel, type, name,
                        gguf_type_get(t->type)->name, gguf_type_get(r->type)->name);
            differ++;
        }
    }
    uint32_t ft_mine = 999, ft_ref = 998;
    assert_int_equal(gguf_get_u32(ref, "general.file_type", &ft_ref), GGUF_OK);
    assert_int_equal(gguf_get_u32(mine, "general.file_type", &ft_mine), GGUF_OK);
    if (ft_mine != ft_ref) {
        print_error("%s -> %s: general.file_type %u, llama-quantize wrote %u\n", in_rel, type,
                    ft_mine, ft_ref);
        differ++;
    }
    print_message("%s -> %s: %lld tensors, %d differ from %s\n", in_rel, type, (long long)n,
                  differ, ref_rel);
    gguf_close(mine);
    gguf_close(ref);
    unlink(out);
    assert_int_equal(differ, 0);
}

static void test_mix_q4_k_m(void **state)
{
    (void)state;
    static const char *const arch[] = { "llama", "qwen2", "qwen3", "phi3" };
    for (size_t i = 0; i < sizeof arch / sizeof arch[0]; i++) {
        char in[64], ref[64];
        snprintf(in, sizeof in, "models/tiny/%s-F16.gguf", arch[i]);
        snprintf(ref, sizeof ref, "models/tiny/%s-Q4_K_M.gguf", arch[i]);
        check_types(in, "Q4_K_M", ref);
    }
}

static void test_mix_q5_k_m(void **state)
{
    (void)state;
    check_types("models/tiny/llama-F16.gguf", "Q5_K_M", "models/tiny/llama-Q5_K_M.gguf");
}

/* The plain types: uniform but for the output matrix (Q6_K, or Q8_0 for Q8_0 files). */
static void test_mix_plain(void **state)
{
    (void)state;
    static const char *const arch[] = { "llama", "qwen2", "qwen3", "phi3" };
    static const char *const types[] = { "Q4_0", "Q8_0" };
    for (size_t i = 0; i < sizeof arch / sizeof arch[0]; i++)
        for (size_t j = 0; j < sizeof types / sizeof types[0]; j++) {
            char in[64], ref[64];
            snprintf(in, sizeof in, "models/tiny/%s-F16.gguf", arch[i]);
            snprintf(ref, sizeof ref, "models/tiny/%s-%s.gguf", arch[i], types[j]);
            check_types(in, types[j], ref);
        }
    check_types("models/tiny/llama-F16.gguf", "Q6_K", "models/tiny/llama-Q6_K.gguf");
}

/* The mixes sizeup cannot write (no Q2_K/Q3_K encoder) through the choice alone: the types
 * eng_mix_type gives the F16 file's tensors must be the fixture's. */
static void check_choice(const char *in_rel, uint32_t ftype, const char *ref_rel)
{
    gguf_file *in = open_gguf(fixture_path(in_rel)), *ref = open_gguf(fixture_path(ref_rel));
    uint32_t v;
    eng_mix_model m = { .arch = "llama", .has_output = gguf_find_tensor(in, "output.weight") };
    eng_mix_state st = { 0 };
    assert_int_equal(gguf_get_arch_u32(in, "block_count", &v), GGUF_OK);
    m.n_layer = (int)v;
    assert_int_equal(gguf_get_arch_u32(in, "attention.head_count", &v), GGUF_OK);
    m.n_head = (int)v;
    assert_int_equal(gguf_get_arch_u32(in, "attention.head_count_kv", &v), GGUF_OK);
    m.n_head_kv = (int)v;
    m.n_attn_v = m.n_layer;
    int differ = 0;
    for (int64_t i = 0; i < gguf_tensor_count(in); i++) {
        const gguf_tensor *t = gguf_tensor_at(in, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (!eng_mix_quantizes(name, (int)t->n_dims))
            continue;
        uint32_t got = eng_mix_type(ftype, &m, &st, name, (int64_t)t->ne[0], NULL);
        uint32_t want = gguf_find_tensor(ref, name)->type;
        if (got != want) {
            print_error("%s: %s gets %s, llama-quantize made it %s\n", ref_rel, name,
                        gguf_type_get(got)->name, gguf_type_get(want)->name);
            differ++;
        }
    }
    gguf_close(in);
    gguf_close(ref);
    assert_int_equal(differ, 0);
}

static void test_mix_choice_q3_k_m_q2_k(void **state)
{
    (void)state;
    check_choice("models/tiny/llama-F16.gguf", 12, "models/tiny/llama-Q3_K_M.gguf");
    check_choice("models/tiny/llama-F16.gguf", 10, "models/tiny/llama-Q2_K.gguf");
}

/* gen-model's smollm2-135m shape in Q4_K_M (30 layers, n_embd 576, n_ff 1536): attn_v and
 * ffn_down get Q6_K in layers 0-2, 26-29 and every third from 5, and 576-value rows fall back
 * (Q4_K -> Q5_0, Q6_K -> Q8_0), as in llama-quantize's SmolLM2-135M Q4_K_M files. */
static void test_mix_smollm2_shape(void **state)
{
    (void)state;
    eng_mix_model m = { .arch = "llama", .n_layer = 30, .n_head = 9, .n_head_kv = 3,
                        .has_output = false, .n_attn_v = 30 };
    eng_mix_state st = { 0 };
    assert_int_equal(eng_mix_type(15, &m, &st, "token_embd.weight", 576, NULL), GGUF_T_Q8_0);
    static const int more[] = { 0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29 };
    for (int l = 0; l < 30; l++) {
        bool up = false;
        for (size_t k = 0; k < sizeof more / sizeof more[0]; k++)
            up |= more[k] == l;
        char n[64];
        snprintf(n, sizeof n, "blk.%d.attn_q.weight", l);
        assert_int_equal(eng_mix_type(15, &m, &st, n, 576, NULL), GGUF_T_Q5_0);
        snprintf(n, sizeof n, "blk.%d.attn_v.weight", l);
        assert_int_equal(eng_mix_type(15, &m, &st, n, 576, NULL), up ? GGUF_T_Q8_0 : GGUF_T_Q5_0);
        snprintf(n, sizeof n, "blk.%d.ffn_down.weight", l);
        assert_int_equal(eng_mix_type(15, &m, &st, n, 1536, NULL), up ? GGUF_T_Q6_K : GGUF_T_Q4_K);
    }
}

static void test_q8_0(void **state)
{
    (void)state;
    check_identical("Q8_0", "models/babyllama-930K-Q8_0.gguf");
}

static void test_q4_0(void **state)
{
    (void)state;
    check_identical("Q4_0", "models/babyllama-930K-Q4_0.gguf");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0),
        cmocka_unit_test(test_mix_q4_k_m),
        cmocka_unit_test(test_mix_q5_k_m),
        cmocka_unit_test(test_mix_plain),
        cmocka_unit_test(test_mix_choice_q3_k_m_q2_k),
        cmocka_unit_test(test_mix_smollm2_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
