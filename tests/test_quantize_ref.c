/* `sizeup quantize` against llama-quantize: the BabyLlama F32 fixture quantized to Q8_0 and
 * Q4_0 by sizeup must hold the same tensors, of the same types, with the same bytes, as the
 * fixture files llama-quantize made from it (fixtures README section 12), including
 * llama-quantize's choice of Q8_0 for output.weight in the Q4_0 file. Compared through the
 * GGUF reader, tensor by tensor. */
#include <unistd.h>

#include "testutil.h"

#include "app/app.h"
#include "engine/gguf.h"

static gguf_file *open_gguf(const char *path)
{
    gguf_file *f;
    char err[512];
    if (gguf_open(path, &f, err, sizeof err))
        fail_msg("%s", err);
    return f;
}

/* Quantize the F32 fixture to `type` in a temporary file and compare it with `ref_rel`. */
static void check_identical(const char *type, const char *ref_rel)
{
    char in[4096], out[] = "/tmp/sizeup-qref-XXXXXX";
    snprintf(in, sizeof in, "%s", fixture_path("models/babyllama-930K-F32.gguf"));
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    char *argv[] = { "quantize", "--force", in, out, (char *)type, NULL };
    assert_int_equal(app_cmd_quantize(5, argv), 0);
    gguf_file *mine = open_gguf(out), *ref = open_gguf(fixture_path(ref_rel));
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
