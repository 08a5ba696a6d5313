/* Tests of model references, the catalog, the store layout and header peek (downloads/dl_ref.c,
 * dl_catalog.c, dl_name.c, dl_peek.c). The parsing, catalog and store tests need no network;
 * the transfer tests run against nginx on 127.0.0.1 (tests/dlsrv.h). */
#include "tests/testutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <strings.h>
#include <jansson.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "downloads/dl.h"
#include "downloads/dl_ref_internal.h"
#include "engine/gguf.h"
#include "tests/dlsrv.h"

#define CATALOG_SRC "downloads/catalog.json"

/* ---- scratch folders ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_tmpdir(void)
{
    char *d = strdup("/tmp/sizeup-test-dlref-XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return d;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static bool exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* mkdir -p of path's folder. */
static void make_parents(const char *path)
{
    char *buf = strdup(path);
    assert_non_null(buf);
    for (char *p = buf + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        mkdir(buf, 0755);
        *p = '/';
    }
    free(buf);
}

/* A context on a scratch store with the source tree's catalog. */
typedef struct fixture {
    dl_ctx *c;
    char *tmp;
    char store[4096];
} fixture;

static int fx_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->tmp = make_tmpdir();
    snprintf(fx->store, sizeof fx->store, "%s/store", fx->tmp);
    fx->c = dl_open();
    assert_non_null(fx->c);
    dl_set_store_dir(fx->c, fx->store);
    dl_set_catalog_path(fx->c, CATALOG_SRC);
    dl_set_hf_endpoint(fx->c, "http://127.0.0.1:9");   /* never reached by these tests */
    dl_set_hf_token(fx->c, "");
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    fixture *fx = *state;
    dl_close(fx->c);
    rm_tree(fx->tmp);
    free(fx->tmp);
    free(fx);
    return 0;
}

/* ======================================================================================
 * Parsing
 * ====================================================================================== */

static void expect_ref(dl_ctx *c, const char *text, dl_ref_kind kind, const char *name,
                       const char *repo, const char *file, const char *quant, const char *url)
{
    dl_ref r;
    dl_status st = dl_ref_parse(c, text, &r);
    if (st)
        fail_msg("parse '%s': %s (%s)", text, dl_status_name(st), c ? dl_errmsg(c) : "");
    if (r.kind != kind)
        fail_msg("parse '%s': kind %d, expected %d", text, r.kind, kind);
    assert_string_equal(r.text, text);
#define FIELD(f)                                                                            \
    if (f) {                                                                                \
        if (!r.f || strcmp(r.f, f))                                                         \
            fail_msg("parse '%s': " #f " '%s', expected '%s'", text, r.f ? r.f : "(null)", f); \
    } else if (r.f) {                                                                       \
        fail_msg("parse '%s': " #f " '%s', expected none", text, r.f);                      \
    }
    FIELD(name) FIELD(repo) FIELD(file) FIELD(quant) FIELD(url)
#undef FIELD
    if (kind == DL_REF_LOCAL)
        assert_string_equal(r.path, text);
    else
        assert_null(r.path);
    dl_ref_free(&r);
}

static void expect_bad(dl_ctx *c, const char *text, dl_status want)
{
    dl_ref r;
    dl_status st = dl_ref_parse(c, text, &r);
    if (st != want)
        fail_msg("parse '%s': %s, expected %s", text ? text : "(null)", dl_status_name(st),
                 dl_status_name(want));
    if (c && text && *text && !strstr(dl_errmsg(c), text))
        fail_msg("parse '%s': message does not name the reference: %s", text, dl_errmsg(c));
    dl_ref_free(&r);
}

static void test_parse_local(void **state)
{
    fixture *fx = *state;
    const char *fix = fixture_path("models/stories260K.gguf");
    expect_ref(fx->c, fix, DL_REF_LOCAL, NULL, NULL, NULL, NULL, NULL);
    expect_ref(fx->c, "missing-model.gguf", DL_REF_LOCAL, NULL, NULL, NULL, NULL, NULL);
    expect_ref(fx->c, "./some/dir/weights.bin", DL_REF_LOCAL, NULL, NULL, NULL, NULL, NULL);
    expect_ref(fx->c, "MODEL.GGUF", DL_REF_LOCAL, NULL, NULL, NULL, NULL, NULL);
    /* name:tag that the catalog does not know: a (missing) local file */
    expect_ref(fx->c, "nosuch:model", DL_REF_LOCAL, NULL, NULL, NULL, NULL, NULL);
    expect_ref(NULL, "plainword", DL_REF_LOCAL, NULL, NULL, NULL, NULL, NULL);
}

static void test_parse_catalog(void **state)
{
    fixture *fx = *state;
    expect_ref(fx->c, "qwen2.5:0.5b", DL_REF_CATALOG, "qwen2.5:0.5b",
               "Qwen/Qwen2.5-0.5B-Instruct-GGUF", NULL, NULL, NULL);
    expect_ref(fx->c, "llama3.2:1b:q8_0", DL_REF_CATALOG, "llama3.2:1b",
               "bartowski/Llama-3.2-1B-Instruct-GGUF", NULL, "Q8_0", NULL);
    expect_ref(fx->c, "LLAMA3.2:1B", DL_REF_CATALOG, "llama3.2:1b",
               "bartowski/Llama-3.2-1B-Instruct-GGUF", NULL, NULL, NULL);
    expect_ref(fx->c, "tinystories:15m:Q4_0", DL_REF_CATALOG, "tinystories:15m",
               "ggml-org/tiny-llamas", NULL, "Q4_0", NULL);
    /* without a context the shape alone decides */
    expect_ref(NULL, "foo:bar", DL_REF_CATALOG, "foo:bar", NULL, NULL, NULL, NULL);
    expect_ref(NULL, "foo:bar:q4_k_m", DL_REF_CATALOG, "foo:bar", NULL, NULL, "Q4_K_M", NULL);
    expect_bad(fx->c, "llama3.2:1b:Q8 0", DL_ERR_ARG);
}

static void test_parse_hf(void **state)
{
    fixture *fx = *state;
    dl_ctx *c = fx->c;
    expect_ref(c, "hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF", DL_REF_HF_REPO, NULL,
               "Qwen/Qwen2.5-0.5B-Instruct-GGUF", NULL, NULL, NULL);
    expect_ref(c, "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:q8_0", DL_REF_HF_REPO, NULL,
               "bartowski/Llama-3.2-1B-Instruct-GGUF", NULL, "Q8_0", NULL);
    expect_ref(c, "huggingface.co/a/b:IQ4_XS", DL_REF_HF_REPO, NULL, "a/b", NULL, "IQ4_XS",
               NULL);
    expect_ref(c, "https://huggingface.co/a/b", DL_REF_HF_REPO, NULL, "a/b", NULL, NULL, NULL);
    expect_ref(c, "https://huggingface.co/a/b/", DL_REF_HF_REPO, NULL, "a/b", NULL, NULL, NULL);
    expect_ref(c, "https://huggingface.co/a/b/tree/main", DL_REF_HF_REPO, NULL, "a/b", NULL,
               NULL, NULL);
    expect_ref(c, "hf.co/a/b/sub/dir/x-Q8_0.gguf", DL_REF_HF_FILE, NULL, "a/b",
               "sub/dir/x-Q8_0.gguf", NULL, NULL);
    expect_ref(c, "hf.co/a/b/blob/main/x.gguf", DL_REF_HF_FILE, NULL, "a/b", "x.gguf", NULL,
               NULL);
    expect_ref(c, "huggingface.co/a/b/resolve/main/Q4_K_M/x.gguf", DL_REF_HF_FILE, NULL, "a/b",
               "Q4_K_M/x.gguf", NULL, NULL);
    expect_ref(c, "https://huggingface.co/a/b/resolve/main/x.gguf?download=true",
               DL_REF_HF_FILE, NULL, "a/b", "x.gguf", NULL, NULL);
    expect_ref(c, "https://hf.co/a/b/blob/main/d/x.gguf", DL_REF_HF_FILE, NULL, "a/b",
               "d/x.gguf", NULL, NULL);
    /* another revision has no short form: kept as a plain URL */
    expect_ref(c, "https://huggingface.co/a/b/resolve/v1.0/x.gguf", DL_REF_URL, NULL, NULL,
               NULL, NULL, "https://huggingface.co/a/b/resolve/v1.0/x.gguf");
}

static void test_parse_url(void **state)
{
    fixture *fx = *state;
    expect_ref(fx->c, "https://example.com/models/x.gguf", DL_REF_URL, NULL, NULL, NULL, NULL,
               "https://example.com/models/x.gguf");
    expect_ref(fx->c, "HTTP://127.0.0.1:8080/a/b.gguf?x=1", DL_REF_URL, NULL, NULL, NULL, NULL,
               "HTTP://127.0.0.1:8080/a/b.gguf?x=1");
    /* the configured endpoint's resolve URLs are repository files; other paths stay URLs */
    dl_set_hf_endpoint(fx->c, "http://127.0.0.1:8123/");
    expect_ref(fx->c, "http://127.0.0.1:8123/o/r/resolve/main/f.gguf", DL_REF_HF_FILE, NULL,
               "o/r", "f.gguf", NULL, NULL);
    expect_ref(fx->c, "http://127.0.0.1:8123/storage/f.gguf", DL_REF_URL, NULL, NULL, NULL, NULL,
               "http://127.0.0.1:8123/storage/f.gguf");
}

static void test_parse_bad(void **state)
{
    fixture *fx = *state;
    expect_bad(fx->c, "", DL_ERR_ARG);
    expect_bad(fx->c, NULL, DL_ERR_ARG);
    expect_bad(NULL, "", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/onlyowner", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/a/../b", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/a//b", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/a/b/README.md", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/a/b:", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/a/b:Q4/K", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/a/b:Q4-K", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/a/b/resolve/dev/x.gguf", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/a/b/blob/main", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/a/b/x.gguf:Q8_0", DL_ERR_ARG);
    expect_bad(fx->c, "https:///x.gguf", DL_ERR_ARG);
    expect_bad(fx->c, "https://huggingface.co/a", DL_ERR_ARG);
    /* the quant is cut off before the names are checked: these must not name "a/.." */
    expect_bad(fx->c, "hf.co/a/..:Q4_K_M", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/own/.:Q4", DL_ERR_ARG);
    expect_bad(fx->c, "hf.co/a/:Q4", DL_ERR_ARG);
    expect_bad(fx->c, "huggingface.co/a/..:Q8_0", DL_ERR_ARG);
    expect_bad(fx->c, "https://huggingface.co/a/..:Q8_0", DL_ERR_ARG);
    expect_bad(NULL, "hf.co/a/..:Q4_K_M", DL_ERR_ARG);
    /* a scheme other than http(s) is refused by name, not taken for a missing local file */
    expect_bad(fx->c, "ftp://x/y.gguf", DL_ERR_ARG);
    assert_non_null(strstr(dl_errmsg(fx->c), "unsupported URL scheme ftp (sizeup downloads "
                                             "over http and https)"));
    expect_bad(NULL, "file:///tmp/m.gguf", DL_ERR_ARG);
    assert_true(dl_name_is_repo("o/r"));
    assert_true(dl_name_is_repo("o.x/r..y"));
    assert_false(dl_name_is_repo("o/.."));
    assert_false(dl_name_is_repo("../r"));
    assert_false(dl_name_is_repo("./r"));
    assert_false(dl_name_is_repo("o/."));
    assert_false(dl_name_is_repo("o/"));
    assert_false(dl_name_is_repo("/r"));
    assert_false(dl_name_is_repo("o/r/x"));
    assert_false(dl_name_is_repo("o/r\n"));
    assert_false(dl_name_is_repo(NULL));
}

/* ======================================================================================
 * File-name rules
 * ====================================================================================== */

static void test_quant_tokens(void **state)
{
    (void)state;
    assert_true(dl_name_has_quant("x-Q4_K_M.gguf", "Q4_K_M"));
    assert_true(dl_name_has_quant("x-q4_k_m.gguf", "Q4_K_M"));
    assert_true(dl_name_has_quant("Model_Q8_0.gguf", "Q8_0"));
    assert_true(dl_name_has_quant("Q4_K_M/x-00001-of-00002.gguf", "Q4_K_M"));
    assert_true(dl_name_has_quant("qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M"));
    assert_false(dl_name_has_quant("x-Q4_K_M.gguf", "Q4_K"));
    assert_false(dl_name_has_quant("x-IQ4_XS.gguf", "Q4_XS"));
    assert_false(dl_name_has_quant("x-BF16.gguf", "F16"));
    assert_false(dl_name_has_quant("x-Q8_0.gguf", "Q8"));
    assert_false(dl_name_has_quant("x.gguf", ""));

    char q[32];
    assert_true(dl_name_guess_quant("a/Qwen2.5-7B-Instruct-q4_k_m-00001-of-00002.gguf", q,
                                    sizeof q));
    assert_string_equal(q, "Q4_K_M");
    assert_true(dl_name_guess_quant("stories15M-q8_0.gguf", q, sizeof q));
    assert_string_equal(q, "Q8_0");
    assert_true(dl_name_guess_quant("Phi-3-mini-4k-instruct-fp16.gguf", q, sizeof q));
    assert_string_equal(q, "F16");
    assert_true(dl_name_guess_quant("m-IQ3_XS.gguf", q, sizeof q));
    assert_string_equal(q, "IQ3_XS");
    assert_true(dl_name_guess_quant("m.BF16.gguf", q, sizeof q));
    assert_string_equal(q, "BF16");
    assert_false(dl_name_guess_quant("stories15M.gguf", q, sizeof q));
    assert_false(dl_name_guess_quant("Qwen2.5-0.5B-Instruct.gguf", q, sizeof q));
}

static void test_split_names(void **state)
{
    (void)state;
    size_t prefix;
    int part, n;
    assert_true(dl_name_split("dir/m-q8_0-00002-of-00003.gguf", &prefix, &part, &n));
    assert_int_equal(prefix, strlen("dir/m-q8_0"));
    assert_int_equal(part, 2);
    assert_int_equal(n, 3);
    assert_false(dl_name_split("m-00004-of-00003.gguf", NULL, NULL, NULL));
    assert_false(dl_name_split("m-0001-of-0003.gguf", NULL, NULL, NULL));
    assert_false(dl_name_split("m-00001-of-00003.bin", NULL, NULL, NULL));
    assert_false(dl_name_split("-00001-of-00003.gguf", NULL, NULL, NULL));
    char *p = dl_name_split_part("http://h/x/m-00002-of-00003.GGUF", 3);
    assert_string_equal(p, "http://h/x/m-00003-of-00003.GGUF");
    free(p);
    assert_null(dl_name_split_part("m.gguf", 1));

    char *e = dl_url_escape_path("dir/a b+c%d~e.gguf");
    assert_string_equal(e, "dir/a%20b%2Bc%25d~e.gguf");
    free(e);
}

/* ======================================================================================
 * The catalog
 * ====================================================================================== */

static bool has_quant_file(const dl_cat_entry *e, const char *quant)
{
    for (size_t i = 0; i < e->n_files; i++)
        if (!strcasecmp(e->files[i].quant, quant))
            return true;
    return false;
}

/* Every family and size the issue asks for, with the quants each must offer. */
static void test_catalog_contents(void **state)
{
    fixture *fx = *state;
    dl_ctx *c = fx->c;
    static const struct { const char *name, *family, *params; bool kquants; } want[] = {
        { "tinystories:260k", "TinyStories", "260K", false },
        { "tinystories:15m", "TinyStories", "15M", false },
        { "tinystories:42m", "TinyStories", "42M", false },
        { "tinystories:110m", "TinyStories", "110M", false },
        { "smollm2:135m", "SmolLM2 Instruct", "135M", true },
        { "smollm2:360m", "SmolLM2 Instruct", "360M", true },
        { "smollm2:1.7b", "SmolLM2 Instruct", "1.7B", true },
        { "qwen2.5:0.5b", "Qwen2.5 Instruct", "0.5B", true },
        { "qwen2.5:1.5b", "Qwen2.5 Instruct", "1.5B", true },
        { "qwen2.5:3b", "Qwen2.5 Instruct", "3B", true },
        { "qwen2.5:7b", "Qwen2.5 Instruct", "7B", true },
        { "llama3.2:1b", "Llama 3.2 Instruct", "1B", true },
        { "llama3.2:3b", "Llama 3.2 Instruct", "3B", true },
        { "llama3.1:8b", "Llama 3.1 Instruct", "8B", true },
        { "phi3:3.8b", "Phi-3-mini Instruct (4k)", "3.8B", true },
    };
    assert_int_equal(dl_catalog_load(c), DL_OK);
    assert_true(dl_catalog_count(c) >= sizeof want / sizeof *want);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const dl_cat_entry *e = dl_catalog_find(c, want[i].name);
        if (!e)
            fail_msg("catalog has no %s", want[i].name);
        assert_string_equal(e->family, want[i].family);
        assert_string_equal(e->params, want[i].params);
        assert_true(e->n_params > 0);
        assert_non_null(e->license);
        assert_non_null(strchr(e->repo, '/'));
        assert_true(e->n_files > 0);
        assert_true(has_quant_file(e, e->default_quant));
        for (size_t k = 0; k < e->n_files; k++) {
            assert_true(e->files[k].size > 0);
            assert_true(dl_name_ends_with(e->files[k].file, ".gguf"));
            assert_true(!e->files[k].sha256_hex || strlen(e->files[k].sha256_hex) == 64);
        }
        if (want[i].kquants && (!has_quant_file(e, "Q4_K_M") || !has_quant_file(e, "Q8_0")))
            fail_msg("%s lacks Q4_K_M or Q8_0", e->name);
    }
    const char *small = NULL, *large = NULL;
    dl_catalog_default_pair(c, &small, &large);
    assert_non_null(dl_catalog_find(c, small));
    assert_non_null(dl_catalog_find(c, large));
    assert_true(dl_catalog_find(c, small)->n_params < dl_catalog_find(c, large)->n_params);
    assert_null(dl_catalog_find(c, "nosuch:model"));
    assert_null(dl_catalog_entry(c, dl_catalog_count(c)));
}

/* Catalog names resolve to store paths and resolve URLs without the network; a split quant
 * gives its parts in order; estimated sizes are not passed on as exact. */
static void test_catalog_resolve(void **state)
{
    fixture *fx = *state;
    dl_ctx *c = fx->c;
    dl_resolved r;
    char want[8192];
    assert_int_equal(dl_resolve(c, "qwen2.5:7b", false, &r), DL_OK);
    assert_int_equal(r.kind, DL_REF_CATALOG);
    assert_string_equal(r.repo, "Qwen/Qwen2.5-7B-Instruct-GGUF");
    assert_string_equal(r.quant, "Q4_K_M");
    assert_int_equal(r.n_files, 2);
    for (int k = 0; k < 2; k++) {
        snprintf(want, sizeof want, "http://127.0.0.1:9/Qwen/Qwen2.5-7B-Instruct-GGUF/resolve/"
                 "main/qwen2.5-7b-instruct-q4_k_m-0000%d-of-00002.gguf", k + 1);
        assert_string_equal(r.files[k].url, want);
        snprintf(want, sizeof want, "%s/Qwen/Qwen2.5-7B-Instruct-GGUF/qwen2.5-7b-instruct-"
                 "q4_k_m-0000%d-of-00002.gguf", fx->store, k + 1);
        assert_string_equal(r.files[k].path, want);
        assert_false(r.files[k].present);
    }
    assert_int_equal(r.files[0].size, 3993201344ull);
    assert_int_equal(r.files[1].size, 689872288ull);
    dl_resolved_free(&r);

    assert_int_equal(dl_resolve(c, "qwen2.5:7b:q8_0", false, &r), DL_OK);
    assert_int_equal(r.n_files, 3);
    assert_string_equal(r.quant, "Q8_0");
    assert_int_equal(r.files[0].size, 0);   /* size_approx in the catalog */
    dl_resolved_free(&r);

    assert_int_equal(dl_resolve(c, "tinystories:260k", false, &r), DL_OK);
    assert_int_equal(r.n_files, 1);
    assert_int_equal(r.files[0].size, 1185376);
    assert_string_equal(r.files[0].sha256_hex,
                        "047bf46455a544931cff6fef14d7910154c56afbc23ab1c5e56a72e69912c04b");
    dl_resolved_free(&r);

    assert_int_equal(dl_resolve(c, "qwen2.5:0.5b:Q5_K_S", false, &r), DL_ERR_NOT_FOUND);
    assert_non_null(strstr(dl_errmsg(c), "Q4_K_M, Q8_0"));
    assert_int_equal(dl_resolve(c, "qwen2.5:0.5b", true, &r), DL_ERR_NOT_FOUND);
    assert_non_null(strstr(dl_errmsg(c), "qwen2.5:0.5b"));
    assert_int_equal(r.n_files, 0);
}

/* Write a catalog file and expect its load to fail with status `want` and `needle` in the
 * message along with the file name. */
static void expect_bad_catalog(fixture *fx, const char *text, dl_status want, const char *needle)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/catalog-%d.json", fx->tmp, rand());
    write_text(path, text);
    dl_ctx *c = dl_open();
    assert_non_null(c);
    dl_set_catalog_path(c, path);
    dl_status st = dl_catalog_load(c);
    if (st != want || !strstr(dl_errmsg(c), path) || !strstr(dl_errmsg(c), needle))
        fail_msg("catalog %s: %s: %s (wanted %s, '%s')", text, dl_status_name(st),
                 dl_errmsg(c), dl_status_name(want), needle);
    assert_int_equal(dl_catalog_count(c), 0);
    dl_close(c);
}

/* The descriptive fields every entry needs, so that the malformed cases below fail on what
 * they mean to test. */
#define CAT_META "\"family\":\"F\",\"params\":\"1M\",\"n_params\":1,\"license\":\"mit\","

static void test_catalog_malformed(void **state)
{
    fixture *fx = *state;
    expect_bad_catalog(fx, "{ \"models\": [ {", DL_ERR_FORMAT, "line");
    expect_bad_catalog(fx, "[]", DL_ERR_FORMAT, "models");
    expect_bad_catalog(fx, "{\"models\":[{\"name\":\"a:b\"," CAT_META "\"files\":[{\"quant\":"
                       "\"Q8_0\",\"file\":\"a.gguf\",\"size\":1}],\"default_quant\":\"Q8_0\"}]}",
                       DL_ERR_FORMAT, "\"a:b\"");
    expect_bad_catalog(fx, "{\"models\":[{\"name\":\"a:b\",\"repo\":\"o/r\"," CAT_META
                       "\"default_quant\":\"Q8_0\"}]}", DL_ERR_FORMAT, "files");
    expect_bad_catalog(fx, "{\"models\":[{\"repo\":\"o/r\"," CAT_META "\"files\":[{\"quant\":"
                       "\"Q8_0\",\"file\":\"a.gguf\",\"size\":1}],\"default_quant\":\"Q8_0\"}]}",
                       DL_ERR_FORMAT, "entry 1");
    expect_bad_catalog(fx, "{\"models\":[{\"name\":\"a:b\",\"repo\":\"o/r\"," CAT_META
                       "\"files\":[{\"quant\":\"Q8_0\",\"file\":\"a.gguf\",\"size\":1}],"
                       "\"default_quant\":\"Q4_K_M\"}]}", DL_ERR_FORMAT, "default_quant");
    expect_bad_catalog(fx, "{\"models\":[{\"name\":\"a:b\",\"repo\":\"o/r\"," CAT_META
                       "\"files\":[{\"quant\":\"Q8_0\",\"file\":\"../a.gguf\",\"size\":1}],"
                       "\"default_quant\":\"Q8_0\"}]}", DL_ERR_FORMAT, "../a.gguf");
    expect_bad_catalog(fx, "{\"models\":[{\"name\":\"a:b\",\"repo\":\"o/r\"," CAT_META
                       "\"files\":[{\"quant\":\"Q8_0\",\"file\":\"a.gguf\",\"size\":1,"
                       "\"sha256\":\"ab\"}],\"default_quant\":\"Q8_0\"}]}", DL_ERR_FORMAT, "sha256");
    expect_bad_catalog(fx, "{\"default_pair\":{\"small\":\"x:y\",\"large\":\"a:b\"},"
                       "\"models\":[{\"name\":\"a:b\",\"repo\":\"o/r\"," CAT_META "\"files\":"
                       "[{\"quant\":\"Q8_0\",\"file\":\"a.gguf\",\"size\":1}],"
                       "\"default_quant\":\"Q8_0\"}]}", DL_ERR_FORMAT, "x:y");
    /* Each descriptive field missing in turn (the listings print them): the entry is named. */
    static const char *const missing[][2] = {
        { "\"params\":\"1M\",\"n_params\":1,\"license\":\"mit\",", "family" },
        { "\"family\":\"F\",\"n_params\":1,\"license\":\"mit\",", "params" },
        { "\"family\":\"F\",\"params\":\"1M\",\"n_params\":1,", "license" },
        { "\"family\":\"F\",\"params\":\"1M\",\"license\":\"mit\",", "n_params" },
        { "\"family\":\"\",\"params\":\"1M\",\"n_params\":1,\"license\":\"mit\",", "family" },
        { "\"family\":\"F\",\"params\":3,\"n_params\":1,\"license\":\"mit\",", "params" },
        { "\"family\":\"F\",\"params\":\"1M\",\"n_params\":\"1\",\"license\":\"mit\",",
          "n_params" },
    };
    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++) {
        char text[1024], needle[64];
        snprintf(text, sizeof text, "{\"models\":[{\"name\":\"ok:1\",\"repo\":\"o/r\"," CAT_META
                 "\"files\":[{\"quant\":\"Q8_0\",\"file\":\"a.gguf\",\"size\":1}],"
                 "\"default_quant\":\"Q8_0\"},{\"name\":\"m:1\",\"repo\":\"o/r\",%s"
                 "\"files\":[{\"quant\":\"Q8_0\",\"file\":\"a.gguf\",\"size\":1}],"
                 "\"default_quant\":\"Q8_0\"}]}", missing[i][0]);
        snprintf(needle, sizeof needle, "entry 2 (\"m:1\"): needs %s\"%s\"",
                 strcmp(missing[i][1], "n_params") ? "a non-empty " : "", missing[i][1]);
        expect_bad_catalog(fx, text, DL_ERR_FORMAT, needle);
    }

    dl_ctx *c = dl_open();
    assert_non_null(c);
    dl_set_catalog_path(c, "/nonexistent/sizeup-catalog.json");
    assert_int_equal(dl_catalog_load(c), DL_ERR_NOT_FOUND);
    assert_non_null(strstr(dl_errmsg(c), "/nonexistent/sizeup-catalog.json"));
    /* a name:tag with no catalog to check it against says so */
    dl_ref r;
    assert_int_equal(dl_ref_parse(c, "qwen2.5:0.5b", &r), DL_ERR_NOT_FOUND);
    dl_ref_free(&r);
    dl_close(c);
}

/* ======================================================================================
 * Local files and the store, without the network
 * ====================================================================================== */

static void test_resolve_local_split(void **state)
{
    fixture *fx = *state;
    char p1[4200], p2[4200];
    snprintf(p1, sizeof p1, "%s/m-q8_0-00001-of-00002.gguf", fx->tmp);
    snprintf(p2, sizeof p2, "%s/m-q8_0-00002-of-00002.gguf", fx->tmp);
    write_text(p1, "one");
    write_text(p2, "part two");
    dl_resolved r;
    assert_int_equal(dl_resolve(fx->c, p2, true, &r), DL_OK);
    assert_int_equal(r.kind, DL_REF_LOCAL);
    assert_int_equal(r.n_files, 2);
    assert_string_equal(r.files[0].path, p1);
    assert_string_equal(r.files[1].path, p2);
    assert_int_equal(r.files[1].size, 8);
    assert_true(r.files[0].present && r.files[1].present);
    assert_null(r.files[0].url);
    assert_string_equal(r.quant, "Q8_0");
    dl_resolved_free(&r);
    char *path = NULL;
    assert_int_equal(dl_locate(fx->c, p2, &path), DL_OK);
    assert_string_equal(path, p1);   /* the part to open */
    free(path);
    unlink(p2);
    assert_int_equal(dl_resolve(fx->c, p1, false, &r), DL_ERR_NOT_FOUND);
    assert_non_null(strstr(dl_errmsg(fx->c), "part 2 of 2"));
    assert_int_equal(dl_resolve(fx->c, "no-such-model.gguf", false, &r), DL_ERR_NOT_FOUND);
    assert_non_null(strstr(dl_errmsg(fx->c), "no-such-model.gguf"));
    assert_int_equal(dl_locate(fx->c, "nosuch:model", &path), DL_ERR_NOT_FOUND);
    assert_null(path);
}

static void test_url_store_paths(void **state)
{
    fixture *fx = *state;
    dl_resolved r;
    char want[4200];
    assert_int_equal(dl_resolve(fx->c, "https://Example.COM:8443//a//b/x-00001-of-00002.gguf?t=1",
                                false, &r), DL_OK);
    assert_int_equal(r.n_files, 2);
    assert_string_equal(r.files[1].url, "https://Example.COM:8443//a//b/x-00002-of-00002.gguf?t=1");
    snprintf(want, sizeof want, "%s/example.com:8443/a/b/x-00002-of-00002.gguf", fx->store);
    assert_string_equal(r.files[1].path, want);
    assert_string_equal(r.files[1].rel_name, "x-00002-of-00002.gguf");
    dl_resolved_free(&r);
    assert_int_equal(dl_resolve(fx->c, "https://example.com/../x.gguf", false, &r), DL_ERR_ARG);
    assert_int_equal(dl_resolve(fx->c, "https://example.com/a/./x.gguf", false, &r),
                     DL_ERR_ARG);
    assert_int_equal(dl_resolve(fx->c, "https://example.com/", false, &r), DL_ERR_ARG);
    assert_int_equal(dl_resolve(fx->c, "https://example.com/x.gguf", true, &r),
                     DL_ERR_NOT_FOUND);

    assert_int_equal(dl_resolve(fx->c, "hf.co/o/r/d/m-Q4_K_M.gguf", false, &r), DL_OK);
    assert_int_equal(r.kind, DL_REF_HF_FILE);
    assert_string_equal(r.files[0].url, "http://127.0.0.1:9/o/r/resolve/main/d/m-Q4_K_M.gguf");
    snprintf(want, sizeof want, "%s/o/r/d/m-Q4_K_M.gguf", fx->store);
    assert_string_equal(r.files[0].path, want);
    assert_string_equal(r.quant, "Q4_K_M");
    dl_resolved_free(&r);
}

/* Put a finished-looking file (and its record) into the store. */
static void fake_stored(fixture *fx, const char *rel, const char *content)
{
    char path[4200], rec[4300];
    snprintf(path, sizeof path, "%s/%s", fx->store, rel);
    snprintf(rec, sizeof rec, "%s.json", path);
    make_parents(path);
    write_text(path, content);
    char json[128];
    snprintf(json, sizeof json, "{\"url\": \"http://example/x\", \"size\": %zu, "
             "\"last_used\": 0}", strlen(content));
    write_text(rec, json);
}

static void test_store_offline(void **state)
{
    fixture *fx = *state;
    char path[4200], *got = NULL;
    fake_stored(fx, "test/tiny/tiny-Q8_0.gguf", "q8");
    fake_stored(fx, "test/tiny/split/tiny-F16-00001-of-00002.gguf", "f16 a");
    fake_stored(fx, "test/tiny/split/tiny-F16-00002-of-00002.gguf", "f16 b");
    /* no quant given, offline: the first of Q4_K_M, Q4_0, Q8_0, F16 that is stored */
    dl_resolved r;
    assert_int_equal(dl_resolve(fx->c, "hf.co/test/tiny", true, &r), DL_OK);
    assert_string_equal(r.quant, "Q8_0");
    assert_int_equal(r.n_files, 1);
    assert_true(r.files[0].present);
    dl_resolved_free(&r);
    assert_int_equal(dl_resolve(fx->c, "hf.co/test/tiny:f16", true, &r), DL_OK);
    assert_int_equal(r.n_files, 2);
    assert_non_null(strstr(r.files[1].path, "split/tiny-F16-00002-of-00002.gguf"));
    dl_resolved_free(&r);
    assert_int_equal(dl_resolve(fx->c, "hf.co/test/tiny:Q2_K", true, &r), DL_ERR_NOT_FOUND);
    assert_non_null(strstr(dl_errmsg(fx->c), "Q8_0"));

    assert_int_equal(dl_locate(fx->c, "hf.co/test/tiny:Q8_0", &got), DL_OK);
    snprintf(path, sizeof path, "%s/test/tiny/tiny-Q8_0.gguf", fx->store);
    assert_string_equal(got, path);
    free(got);
    strcat(path, ".json");
    json_t *rec = json_load_file(path, 0, NULL);
    assert_true(json_integer_value(json_object_get(rec, "last_used")) > 1600000000);
    json_decref(rec);

    size_t removed = 0;
    assert_int_equal(dl_store_remove(fx->c, "hf.co/test/tiny:Q8_0", &removed), DL_OK);
    assert_int_equal(removed, 1);
    assert_false(exists(path));
    assert_int_equal(dl_store_remove(fx->c, "hf.co/test/tiny:F16", &removed), DL_OK);
    assert_int_equal(removed, 2);
    snprintf(path, sizeof path, "%s/test", fx->store);
    assert_false(exists(path));          /* emptied folders are gone ... */
    assert_true(exists(fx->store));      /* ... up to the store itself */
    assert_int_equal(dl_store_remove(fx->c, "hf.co/test/tiny:F16", &removed),
                     DL_ERR_NOT_FOUND);

    /* a half-finished catalog pull: only the part and its sidecar are there */
    fake_stored(fx, "ggml-org/tiny-llamas/stories260K.gguf.part", "par");
    assert_int_equal(dl_store_remove(fx->c, "tinystories:260k", &removed), DL_OK);
    assert_int_equal(removed, 0);
    snprintf(path, sizeof path, "%s/ggml-org", fx->store);
    assert_false(exists(path));
    /* never outside the store */
    assert_int_equal(dl_store_remove(fx->c, fixture_path("models/stories260K.gguf"), &removed),
                     DL_ERR_ARG);
    assert_true(exists(fixture_path("models/stories260K.gguf")));
}

/* A stored file truncated (or grown) after it was verified was still "in the store" and
 * only failed when loaded. Its size is now checked against the record on every use: locate
 * and an offline resolve say it is damaged (naming the file and both sizes), list marks it,
 * and a pull is no longer satisfied by it. */
static void test_store_damaged(void **state)
{
    fixture *fx = *state;
    char path[4200], *got = NULL;
    fake_stored(fx, "test/tiny/tiny-Q8_0.gguf", "q8 bytes");
    snprintf(path, sizeof path, "%s/test/tiny/tiny-Q8_0.gguf", fx->store);
    assert_int_equal(dl_locate(fx->c, "hf.co/test/tiny:Q8_0", &got), DL_OK);
    free(got);
    for (int grow = 0; grow < 2; grow++) {
        assert_int_equal(truncate(path, grow ? 100 : 3), 0);
        got = NULL;
        assert_int_equal(dl_locate(fx->c, "hf.co/test/tiny:Q8_0", &got), DL_ERR_DAMAGED);
        assert_null(got);
        assert_non_null(strstr(dl_errmsg(fx->c), path));
        assert_non_null(strstr(dl_errmsg(fx->c), grow ? "100 bytes on disk" : "3 bytes on disk"));
        assert_non_null(strstr(dl_errmsg(fx->c), "but 8 when it was downloaded"));
        assert_int_equal(dl_locate(fx->c, "hf.co/test/tiny/tiny-Q8_0.gguf", &got),
                         DL_ERR_DAMAGED);
        dl_resolved r;
        assert_int_equal(dl_resolve(fx->c, "hf.co/test/tiny", true, &r), DL_ERR_DAMAGED);
        dl_stored *list = NULL;
        size_t n = 0;
        assert_int_equal(dl_store_list(fx->c, &list, &n), DL_OK);
        assert_int_equal(n, 1);
        assert_true(list[0].damaged);
        assert_int_equal(list[0].size, grow ? 100 : 3);
        assert_int_equal(list[0].recorded_size, 8);
        dl_stored_free(list, n);
    }
    /* rm still removes it */
    size_t removed = 0;
    assert_int_equal(dl_store_remove(fx->c, "hf.co/test/tiny:Q8_0", &removed), DL_OK);
    assert_int_equal(removed, 1);
}

/* rm by path takes models only: a record, part or lock alone would leave a model without its
 * record (no more size checks) and was counted as "1 model file removed"; the store itself and
 * its folders get a message that says what they are. Nothing is deleted. */
static void test_store_remove_models_only(void **state)
{
    fixture *fx = *state;
    char path[4200], rec[4300], arg[4300];
    size_t removed = 0;
    fake_stored(fx, "127.0.0.1:1/m/good.gguf", "good");
    snprintf(path, sizeof path, "%s/127.0.0.1:1/m/good.gguf", fx->store);
    snprintf(rec, sizeof rec, "%s.json", path);
    assert_int_equal(dl_store_remove(fx->c, rec, &removed), DL_ERR_ARG);
    assert_non_null(strstr(dl_errmsg(fx->c), "is not a model file"));
    assert_non_null(strstr(dl_errmsg(fx->c), path));
    assert_int_equal(removed, 0);
    assert_int_equal(dl_store_remove(fx->c, fx->store, &removed), DL_ERR_ARG);
    assert_non_null(strstr(dl_errmsg(fx->c), "is the model store itself"));
    assert_null(strstr(dl_errmsg(fx->c), "outside"));
    snprintf(arg, sizeof arg, "%s/127.0.0.1:1", fx->store);
    assert_int_equal(dl_store_remove(fx->c, arg, &removed), DL_ERR_ARG);
    assert_non_null(strstr(dl_errmsg(fx->c), "is a folder in the model store, not a model"));
    snprintf(arg, sizeof arg, "%s/127.0.0.1:1/m/notes.txt", fx->store);
    write_text(arg, "mine");
    assert_int_equal(dl_store_remove(fx->c, arg, &removed), DL_ERR_ARG);
    assert_non_null(strstr(dl_errmsg(fx->c), "is not a model file (.gguf)"));
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(stat(rec, &sb), 0);
    assert_int_equal(stat(arg, &sb), 0);
    assert_int_equal(dl_store_remove(fx->c, path, &removed), DL_OK);
    assert_int_equal(removed, 1);
    assert_int_not_equal(stat(rec, &sb), 0);
}

/* "hf.co/a/..:Q4_K_M" once named the folder a/.. (the store itself), so rm deleted another
 * repository's Q4_K_M; "own/.:Q4" named own/. the same way. Now refused, nothing deleted. */
static void test_store_remove_escape(void **state)
{
    fixture *fx = *state;
    char victim[4200], sub[4200], dir[4200];
    fake_stored(fx, "other/repo/m-Q4_K_M.gguf", "q4");
    fake_stored(fx, "own/sub/n-Q4_K_M.gguf", "q4");
    snprintf(victim, sizeof victim, "%s/other/repo/m-Q4_K_M.gguf", fx->store);
    snprintf(sub, sizeof sub, "%s/own/sub/n-Q4_K_M.gguf", fx->store);
    snprintf(dir, sizeof dir, "%s/a", fx->store);
    mkdir(dir, 0755);
    static const char *const refs[] = { "hf.co/a/..:Q4_K_M", "hf.co/own/.:Q4_K_M",
                                        "hf.co/other/..:Q4_K_M", "hf.co/a/..", "hf.co/own/." };
    for (size_t i = 0; i < sizeof refs / sizeof *refs; i++) {
        size_t removed = 99;
        dl_status st = dl_store_remove(fx->c, refs[i], &removed);
        if (st != DL_ERR_ARG)
            fail_msg("rm %s: %s (%s), expected %s", refs[i], dl_status_name(st),
                     dl_errmsg(fx->c), dl_status_name(DL_ERR_ARG));
        assert_int_equal(removed, 0);
        assert_true(exists(victim));
        assert_true(exists(sub));
    }
}

static void expect_content(const char *path, const char *want)
{
    char buf[256] = "";
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s is gone", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (strcmp(buf, want))
        fail_msg("%s holds '%s', expected '%s'", path, buf, want);
}

static void expect_refused_link(dl_ctx *c, dl_status st, const char *what)
{
    if (st != DL_ERR_ARG)
        fail_msg("%s: %s (%s), expected %s", what, dl_status_name(st), dl_errmsg(c),
                 dl_status_name(DL_ERR_ARG));
    if (!strstr(dl_errmsg(c), "symbolic link"))
        fail_msg("%s: the message does not name the link: %s", what, dl_errmsg(c));
}

/* A folder of the store that is a symbolic link (OWNER or OWNER/REPO) led rm to delete the
 * files it points to, outside the store. Now rm, resolve and fetch refuse it and touch
 * nothing there. */
static void test_store_linked_folder(void **state)
{
    fixture *fx = *state;
    char out[4200], victim[4300], link[4200], out2[4200], victim2[4300], path[4300];
    snprintf(out, sizeof out, "%s/outside", fx->tmp);
    snprintf(victim, sizeof victim, "%s/m-Q4_K_M.gguf", out);
    make_parents(victim);
    write_text(victim, "keep");
    strcat(strcpy(path, victim), ".json");
    write_text(path, "{\"url\": \"http://example/x\", \"size\": 4}");
    fake_stored(fx, "evil/placeholder", "x");     /* makes STORE/evil */
    snprintf(link, sizeof link, "%s/evil/repo", fx->store);
    assert_int_equal(symlink(out, link), 0);
    /* OWNER as a link: STORE/evil2 -> outside2, which holds repo/m-Q4_K_M.gguf */
    snprintf(out2, sizeof out2, "%s/outside2", fx->tmp);
    snprintf(victim2, sizeof victim2, "%s/repo/m-Q4_K_M.gguf", out2);
    make_parents(victim2);
    write_text(victim2, "keep");
    strcat(strcpy(path, victim2), ".json");
    write_text(path, "{\"url\": \"http://example/x\", \"size\": 4}");
    snprintf(link, sizeof link, "%s/evil2", fx->store);
    assert_int_equal(symlink(out2, link), 0);

    static const char *const refs[] = { "hf.co/evil/repo", "hf.co/evil/repo:Q4_K_M",
                                        "hf.co/evil/repo/m-Q4_K_M.gguf", "hf.co/evil2/repo",
                                        "hf.co/evil2/repo/m-Q4_K_M.gguf" };
    for (size_t i = 0; i < sizeof refs / sizeof *refs; i++) {
        size_t removed = 99;
        char what[128];
        snprintf(what, sizeof what, "rm %s", refs[i]);
        expect_refused_link(fx->c, dl_store_remove(fx->c, refs[i], &removed), what);
        assert_int_equal(removed, 0);
        expect_content(victim, "keep");
        expect_content(victim2, "keep");
        char *got = NULL;
        dl_status st = dl_locate(fx->c, refs[i], &got);
        if (st == DL_OK)
            fail_msg("locate %s: found %s through a link", refs[i], got);
    }
    dl_resolved r;
    expect_refused_link(fx->c, dl_resolve(fx->c, "hf.co/evil/repo", true, &r), "resolve");
    /* the local path through the link is outside the store once resolved */
    snprintf(path, sizeof path, "%s/evil/repo/m-Q4_K_M.gguf", fx->store);
    size_t removed;
    assert_int_equal(dl_store_remove(fx->c, path, &removed), DL_ERR_ARG);
    expect_content(victim, "keep");
    /* nothing is downloaded into the linked folder (refused before the network) */
    snprintf(path, sizeof path, "%s/evil/repo/new-Q8_0.gguf", fx->store);
    expect_refused_link(fx->c, dl_fetch_file(fx->c, "http://127.0.0.1:9/new-Q8_0.gguf", path,
                                             NULL), "fetch into a linked folder");
    snprintf(path, sizeof path, "%s/new-Q8_0.gguf.lock", out);
    assert_false(exists(path));
    path[strlen(path) - 5] = 0;
    strcat(path, ".part");
    assert_false(exists(path));
}

/* A file of the store that is a link: not a stored model (locate, list), rm deletes the link
 * and not its target, and a download neither writes through it nor through a linked part. */
static void test_store_linked_file(void **state)
{
    fixture *fx = *state;
    char victim[4200], link[4200], path[4300];
    snprintf(victim, sizeof victim, "%s/victim.gguf", fx->tmp);
    write_text(victim, "keep");
    fake_stored(fx, "test/tiny/tiny-Q8_0.gguf", "q8");
    snprintf(link, sizeof link, "%s/test/tiny/tiny-Q8_0.gguf", fx->store);
    assert_int_equal(unlink(link), 0);
    assert_int_equal(symlink(victim, link), 0);     /* the record beside it stays */

    char *got = NULL;
    dl_status st = dl_locate(fx->c, "hf.co/test/tiny:Q8_0", &got);
    if (st == DL_OK)
        fail_msg("locate found %s, a link to %s", got, victim);
    st = dl_locate(fx->c, "hf.co/test/tiny/tiny-Q8_0.gguf", &got);
    if (st == DL_OK)
        fail_msg("locate found %s, a link to %s", got, victim);
    dl_stored *list = NULL;
    size_t n = 99;
    assert_int_equal(dl_store_list(fx->c, &list, &n), DL_OK);
    assert_int_equal(n, 0);
    dl_stored_free(list, n);
    expect_refused_link(fx->c, dl_fetch_file(fx->c, "http://127.0.0.1:9/tiny-Q8_0.gguf", link,
                                             NULL), "fetch onto a link");
    expect_content(victim, "keep");

    /* a part that is a link: the download must not truncate or write its target */
    snprintf(path, sizeof path, "%s/test/tiny/other-Q8_0.gguf.part", fx->store);
    assert_int_equal(symlink(victim, path), 0);
    path[strlen(path) - 5] = 0;
    dl_set_retry(fx->c, 0, 0);
    assert_int_not_equal(dl_fetch_file(fx->c, "http://127.0.0.1:9/other-Q8_0.gguf", path, NULL),
                         DL_OK);
    expect_content(victim, "keep");

    size_t removed = 99;
    assert_int_equal(dl_store_remove(fx->c, "hf.co/test/tiny/tiny-Q8_0.gguf", &removed), DL_OK);
    struct stat sb;
    assert_int_not_equal(lstat(link, &sb), 0);      /* the link is gone ... */
    expect_content(victim, "keep");                  /* ... not what it pointed to */
}

/* The store settings, saved and restored around a test that changes them. */
typedef struct env_save {
    char *v[3];
} env_save;
static const char *const store_vars[3] = { "HOME", "XDG_CACHE_HOME", "SIZEUP_MODELS" };

static env_save env_take(void)
{
    env_save e;
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(store_vars[i]);
        e.v[i] = v ? strdup(v) : NULL;
    }
    return e;
}

static void env_put_back(env_save *e)
{
    for (int i = 0; i < 3; i++) {
        if (e->v[i])
            setenv(store_vars[i], e->v[i], 1);
        else
            unsetenv(store_vars[i]);
        free(e->v[i]);
    }
}

/* No store: every store call fails with a message naming the variables to set. */
static void expect_no_store(dl_ctx *c, const char *why)
{
    dl_stored *list = NULL;
    size_t n = 0, removed = 99;
    dl_resolved r;
    if (dl_store_dir(c))
        fail_msg("%s: the store is %s, expected none", why, dl_store_dir(c));
    assert_int_equal(dl_store_list(c, &list, &n), DL_ERR_ARG);
    for (int i = 0; i < 3; i++)
        if (!strstr(dl_errmsg(c), store_vars[i]))
            fail_msg("%s: the message does not name %s: %s", why, store_vars[i], dl_errmsg(c));
    assert_int_equal(dl_resolve(c, "hf.co/test/tiny:Q8_0", true, &r), DL_ERR_ARG);
    assert_int_equal(dl_store_remove(c, "hf.co/test/tiny:Q8_0", &removed), DL_ERR_ARG);
    assert_int_equal(removed, 0);
    assert_int_equal(dl_store_partial_bytes(c), 0);
}

/* With HOME unset the store used to be /tmp/.cache/sizeup/models, a folder any user can
 * write to (and plant models or links in). Now there is no store until HOME, an absolute
 * XDG_CACHE_HOME or SIZEUP_MODELS names one; a relative XDG_CACHE_HOME counts as unset. */
static void test_store_no_home(void **state)
{
    (void)state;
    env_save saved = env_take();
    unsetenv("HOME");
    unsetenv("XDG_CACHE_HOME");
    unsetenv("SIZEUP_MODELS");
    dl_ctx *c = dl_open();
    assert_non_null(c);
    expect_no_store(c, "HOME unset");
    dl_close(c);

    setenv("XDG_CACHE_HOME", "relative/cache", 1);
    c = dl_open();
    assert_non_null(c);
    expect_no_store(c, "HOME unset, XDG_CACHE_HOME relative");
    setenv("HOME", "relative-home", 1);
    dl_set_store_dir(c, NULL);
    expect_no_store(c, "HOME relative, XDG_CACHE_HOME relative");
    setenv("HOME", "/nonexistent-home", 1);
    dl_set_store_dir(c, NULL);
    assert_string_equal(dl_store_dir(c), "/nonexistent-home/.cache/sizeup/models");
    setenv("XDG_CACHE_HOME", "/nonexistent-cache", 1);
    dl_set_store_dir(c, NULL);
    assert_string_equal(dl_store_dir(c), "/nonexistent-cache/sizeup/models");
    dl_close(c);
    env_put_back(&saved);
}

/* Hold path's transfer lock the way a running pull does: flock, pid inside. */
static int hold_lock(const char *path)
{
    char lock[4300], pid[32];
    snprintf(lock, sizeof lock, "%s.lock", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    assert_int_equal(write(fd, pid, (size_t)n), n);
    return fd;
}

/* rm while a pull holds the lock: refused, the part, its sidecar and the lock stay; a split
 * set is not half removed when only one part is locked; after the release rm works. */
static void test_store_remove_locked(void **state)
{
    fixture *fx = *state;
    char part[4200], side[4300], lock[4300], p1[4200], p2[4200], want[64];
    fake_stored(fx, "test/tiny/tiny-Q8_0.gguf.part", "par");
    snprintf(part, sizeof part, "%s/test/tiny/tiny-Q8_0.gguf.part", fx->store);
    snprintf(side, sizeof side, "%s.json", part);
    snprintf(lock, sizeof lock, "%s/test/tiny/tiny-Q8_0.gguf.lock", fx->store);
    fake_stored(fx, "test/split/s-F16-00001-of-00002.gguf", "a");
    fake_stored(fx, "test/split/s-F16-00002-of-00002.gguf", "b");
    snprintf(p1, sizeof p1, "%s/test/split/s-F16-00001-of-00002.gguf", fx->store);
    snprintf(p2, sizeof p2, "%s/test/split/s-F16-00002-of-00002.gguf", fx->store);
    snprintf(want, sizeof want, "being downloaded (pid %ld)", (long)getpid());
    size_t removed;

    char dest[4200];
    snprintf(dest, sizeof dest, "%s/test/tiny/tiny-Q8_0.gguf", fx->store);
    int fd = hold_lock(dest);
    removed = 99;
    assert_int_equal(dl_store_remove(fx->c, "hf.co/test/tiny:Q8_0", &removed), DL_ERR_IO);
    assert_non_null(strstr(dl_errmsg(fx->c), want));
    assert_non_null(strstr(dl_errmsg(fx->c), "try again when it finishes"));
    assert_int_equal(removed, 0);
    assert_true(exists(part));
    assert_true(exists(side));
    assert_true(exists(lock));
    close(fd);
    assert_int_equal(dl_store_remove(fx->c, "hf.co/test/tiny:Q8_0", &removed), DL_OK);
    assert_false(exists(part));
    assert_false(exists(side));
    assert_false(exists(lock));

    close(hold_lock(p1));   /* a lock file nobody holds (a crashed pull) does not block */
    fd = hold_lock(p2);
    assert_int_equal(dl_store_remove(fx->c, "hf.co/test/split:F16", &removed), DL_ERR_IO);
    assert_non_null(strstr(dl_errmsg(fx->c), "s-F16-00002-of-00002.gguf is being downloaded"));
    assert_true(exists(p1));
    assert_true(exists(p2));
    close(fd);
    assert_int_equal(dl_store_remove(fx->c, "hf.co/test/split:F16", &removed), DL_OK);
    assert_int_equal(removed, 2);
    assert_false(exists(p1));
}

/* ======================================================================================
 * Against nginx: listings, redirects, pulls, peek, tokens
 * ====================================================================================== */

/* One file the server offers: where it comes from and what it holds. */
typedef struct served {
    const char *rel;        /* path inside the repository test/tiny */
    uint8_t *data;
    size_t len;
    char sha[65];
} served;

enum { S_Q4KM, S_Q8, S_Q40, S_MMPROJ, S_F16A, S_F16B, S_F16C, N_SERVED };

typedef struct net_env {
    dlsrv_nginx s;
    served f[N_SERVED];
    uint8_t *gated;         /* stories260K.gguf, behind a bearer token */
    size_t gated_len;
} net_env;

static net_env *NET;

static void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void load_served(net_env *e)
{
    static const char *const rel[N_SERVED] = {
        "tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf", "tiny-Q4_0.gguf", "mmproj-tiny-Q8_0.gguf",
        "split/tiny-F16-00001-of-00003.gguf", "split/tiny-F16-00002-of-00003.gguf",
        "split/tiny-F16-00003-of-00003.gguf",
    };
    static const char *const src[] = { "models/tiny/llama-Q4_K_M.gguf",
                                       "models/tiny/llama-Q8_0.gguf",
                                       "models/tiny/llama-Q4_0.gguf" };
    for (int i = 0; i < 3; i++)
        e->f[i].data = read_file(fixture_path(src[i]), &e->f[i].len);
    e->f[S_MMPROJ].data = (uint8_t *)strdup("not a model: a vision projector");
    e->f[S_MMPROJ].len = strlen((char *)e->f[S_MMPROJ].data);
    /* three parts cut from one file, each starting with the GGUF magic as every part of a real
     * split does (a pull checks it): enough to test fetching a split set in order */
    size_t len;
    uint8_t *f16 = read_file(fixture_path("models/tiny/llama-F16.gguf"), &len);
    for (int k = 0; k < 3; k++) {
        size_t from = len * (size_t)k / 3, to = len * (size_t)(k + 1) / 3;
        e->f[S_F16A + k].data = malloc(to - from);
        assert_non_null(e->f[S_F16A + k].data);
        memcpy(e->f[S_F16A + k].data, f16 + from, to - from);
        memcpy(e->f[S_F16A + k].data, "GGUF", 4);
        e->f[S_F16A + k].len = to - from;
    }
    free(f16);
    for (int i = 0; i < N_SERVED; i++) {
        e->f[i].rel = rel[i];
        sha256_hex(e->f[i].data, e->f[i].len, e->f[i].sha);
    }
}

/* The HF tree API's answer for test/tiny, with a README, a folder and a hostile path to skip. */
static char *tree_json(const net_env *e)
{
    json_t *a = json_array();
    json_array_append_new(a, json_pack("{s:s,s:s,s:i}", "type", "file", "path", "README.md",
                                       "size", 12));
    json_array_append_new(a, json_pack("{s:s,s:s,s:i}", "type", "directory", "path", "split",
                                       "size", 0));
    /* a hostile entry: would sort first and match Q4_K_M, but leads out of the store */
    json_array_append_new(a, json_pack("{s:s,s:s,s:i}", "type", "file", "path",
                                       "../../escape-Q4_K_M.gguf", "size", 5));
    for (int i = 0; i < N_SERVED; i++)
        json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:{s:s,s:I,s:i}}", "type", "file",
                                           "path", e->f[i].rel, "size",
                                           (json_int_t)e->f[i].len, "lfs", "oid", e->f[i].sha,
                                           "size", (json_int_t)e->f[i].len, "pointerSize",
                                           134));
    char *text = json_dumps(a, JSON_INDENT(1));
    json_decref(a);
    return text;
}

/* Server blocks: the listing; resolve URLs that answer 302 to a storage path with the
 * X-Linked-Etag / X-Linked-Size headers Hugging Face sends; a token-protected file. */
static char *nginx_extra(const net_env *e)
{
    size_t cap = 16384, n = 0;
    char *x = malloc(cap);
    assert_non_null(x);
    n += (size_t)snprintf(x + n, cap - n,
        "location = /api/models/test/tiny/tree/main { default_type application/json; "
        "try_files /tree.json =404; }\n"
        "location = /test/gated/resolve/main/g.gguf {\n"
        "  if ($http_authorization != \"Bearer secret\") { return 401; }\n"
        "  rewrite ^ /gated/g.gguf break;\n}\n");
    for (int i = 0; i < N_SERVED; i++)
        n += (size_t)snprintf(x + n, cap - n,
            "location = /test/tiny/resolve/main/%s {\n"
            "  add_header X-Linked-Etag '\"%s\"';\n  add_header X-Linked-Size %zu;\n"
            "  return 302 /storage/test/tiny/%s;\n}\n",
            e->f[i].rel, e->f[i].sha, e->f[i].len, e->f[i].rel);
    assert_true(n < cap);
    return x;
}

static void put_file(const char *rel, const void *data, size_t len)
{
    if (dlsrv_nginx_put(&NET->s, rel, data, len) != 0)
        fail_msg("cannot put %s into %s", rel, NET->s.www);
}

static int net_group_setup(void **state)
{
    (void)state;
    NET = calloc(1, sizeof *NET);
    assert_non_null(NET);
    load_served(NET);
    char *extra = nginx_extra(NET);
    int rc = dlsrv_nginx_start(&NET->s, extra, false);
    free(extra);
    if (rc != 0)
        fail_msg("nginx did not start");
    char rel[256];
    for (int i = 0; i < N_SERVED; i++) {
        snprintf(rel, sizeof rel, "storage/test/tiny/%s", NET->f[i].rel);
        put_file(rel, NET->f[i].data, NET->f[i].len);
    }
    char *tree = tree_json(NET);
    put_file("tree.json", tree, strlen(tree));
    free(tree);
    NET->gated = read_file(fixture_path("models/stories260K.gguf"), &NET->gated_len);
    put_file("gated/g.gguf", NET->gated, NET->gated_len);
    size_t len;
    uint8_t *d = read_file(fixture_path("models/babyllama-930K-F32.gguf"), &len);
    put_file("storage/baby.gguf", d, len);
    free(d);
    d = read_file(fixture_path("models/llama-2-tiny-random.gguf"), &len);
    put_file("storage/random.gguf", d, len);
    free(d);
    return 0;
}

static int net_group_teardown(void **state)
{
    (void)state;
    dlsrv_nginx_stop(&NET->s);
    for (int i = 0; i < N_SERVED; i++)
        free(NET->f[i].data);
    free(NET->gated);
    free(NET);
    NET = NULL;
    return 0;
}

/* A fresh store and a context pointed at the server, quick to give up on errors. */
static int net_setup(void **state)
{
    fx_setup(state);
    fixture *fx = *state;
    dl_set_hf_endpoint(fx->c, dlsrv_nginx_base(&NET->s));
    dl_set_retry(fx->c, 0, 0);
    dl_set_connect_timeout(fx->c, 5);
    return 0;
}

static void expect_same_file(const char *path, const served *f)
{
    size_t len;
    uint8_t *got = read_file(path, &len);
    if (len != f->len || memcmp(got, f->data, len))
        fail_msg("%s differs from the served %s", path, f->rel);
    free(got);
}

static void test_hf_quant_select(void **state)
{
    fixture *fx = *state;
    dl_resolved r;
    char want[8192];
    assert_int_equal(dl_resolve(fx->c, "hf.co/test/tiny", false, &r), DL_OK);
    assert_int_equal(r.kind, DL_REF_HF_REPO);
    assert_string_equal(r.quant, "Q4_K_M");
    assert_string_equal(r.repo, "test/tiny");
    assert_int_equal(r.n_files, 1);
    snprintf(want, sizeof want, "%s/test/tiny/resolve/main/tiny-Q4_K_M.gguf",
             dlsrv_nginx_base(&NET->s));
    assert_string_equal(r.files[0].url, want);
    snprintf(want, sizeof want, "%s/test/tiny/tiny-Q4_K_M.gguf", fx->store);
    assert_string_equal(r.files[0].path, want);
    assert_int_equal(r.files[0].size, NET->f[S_Q4KM].len);
    assert_string_equal(r.files[0].sha256_hex, NET->f[S_Q4KM].sha);
    assert_false(r.files[0].present);
    dl_resolved_free(&r);

    /* explicit quant, any case; the vision projector with the same quant is never picked */
    assert_int_equal(dl_resolve(fx->c, "hf.co/test/tiny:q8_0", false, &r), DL_OK);
    assert_string_equal(r.quant, "Q8_0");
    assert_int_equal(r.n_files, 1);
    assert_string_equal(r.files[0].rel_name, "tiny-Q8_0.gguf");
    dl_resolved_free(&r);

    /* a split set: every part, in order */
    assert_int_equal(dl_resolve(fx->c, "huggingface.co/test/tiny:F16", false, &r), DL_OK);
    assert_int_equal(r.n_files, 3);
    for (int k = 0; k < 3; k++) {
        assert_string_equal(r.files[k].rel_name, NET->f[S_F16A + k].rel);
        assert_int_equal(r.files[k].size, NET->f[S_F16A + k].len);
    }
    dl_resolved_free(&r);

    /* "Q4_K" is not "Q4_K_M": not found, and the message lists what there is */
    assert_int_equal(dl_resolve(fx->c, "hf.co/test/tiny:Q4_K", false, &r), DL_ERR_NOT_FOUND);
    const char *msg = dl_errmsg(fx->c);
    assert_non_null(strstr(msg, "hf.co/test/tiny:Q4_K"));
    assert_non_null(strstr(msg, "Q4_K_M"));
    assert_non_null(strstr(msg, "Q8_0"));
    assert_non_null(strstr(msg, "Q4_0"));
    assert_non_null(strstr(msg, "F16"));
    assert_int_equal(r.n_files, 0);

    /* a repository the server does not know */
    assert_int_equal(dl_resolve(fx->c, "hf.co/test/none", false, &r), DL_ERR_HTTP);
    /* offline never asks the server */
    assert_int_equal(dl_resolve(fx->c, "hf.co/test/tiny", true, &r), DL_ERR_NOT_FOUND);
}

typedef struct prog_rec {
    int calls, max_part, n_parts, finished;
} prog_rec;

static int record_progress(const dl_progress *p, void *user)
{
    prog_rec *pr = user;
    pr->calls++;
    if (p->part > pr->max_part)
        pr->max_part = p->part;
    pr->n_parts = p->n_parts;
    pr->finished += p->finished;
    return 0;
}

/* Pull through the resolve -> storage redirect, find it offline, remove it. */
static void test_hf_pull_locate_remove(void **state)
{
    fixture *fx = *state;
    char *path = NULL, want[8192];
    prog_rec pr = { 0 };
    dl_set_progress(fx->c, record_progress, &pr);
    dl_status st = dl_pull(fx->c, "hf.co/test/tiny:Q8_0", &path);
    if (st)
        fail_msg("pull: %s: %s", dl_status_name(st), dl_errmsg(fx->c));
    snprintf(want, sizeof want, "%s/test/tiny/tiny-Q8_0.gguf", fx->store);
    assert_string_equal(path, want);
    expect_same_file(path, &NET->f[S_Q8]);
    strcat(want, ".json");
    assert_true(exists(want));
    /* truncated since: damaged for locate, fetched again whole by pull */
    assert_int_equal(truncate(path, 1000), 0);
    char *got = NULL;
    assert_int_equal(dl_locate(fx->c, "hf.co/test/tiny:Q8_0", &got), DL_ERR_DAMAGED);
    free(path);
    st = dl_pull(fx->c, "hf.co/test/tiny:Q8_0", &path);
    if (st)
        fail_msg("pull of a damaged file: %s: %s", dl_status_name(st), dl_errmsg(fx->c));
    expect_same_file(path, &NET->f[S_Q8]);
    assert_int_equal(dl_locate(fx->c, "hf.co/test/tiny:Q8_0", &got), DL_OK);
    free(got);
    free(path);

    memset(&pr, 0, sizeof pr);
    st = dl_pull(fx->c, "hf.co/test/tiny/split/tiny-F16-00002-of-00003.gguf", &path);
    if (st)
        fail_msg("split pull: %s: %s", dl_status_name(st), dl_errmsg(fx->c));
    snprintf(want, sizeof want, "%s/test/tiny/split/tiny-F16-00001-of-00003.gguf", fx->store);
    assert_string_equal(path, want);   /* the part to open */
    free(path);
    for (int k = 0; k < 3; k++) {
        snprintf(want, sizeof want, "%s/test/tiny/%s", fx->store, NET->f[S_F16A + k].rel);
        expect_same_file(want, &NET->f[S_F16A + k]);
    }
    assert_true(pr.calls > 0);
    assert_int_equal(pr.max_part, 3);
    assert_int_equal(pr.n_parts, 3);

    /* from here on the server is unreachable: everything comes from the store */
    dl_set_hf_endpoint(fx->c, "http://127.0.0.1:9");
    assert_int_equal(dl_locate(fx->c, "hf.co/test/tiny:Q8_0", &path), DL_OK);
    snprintf(want, sizeof want, "%s/test/tiny/tiny-Q8_0.gguf", fx->store);
    assert_string_equal(path, want);
    free(path);
    assert_int_equal(dl_locate(fx->c, "hf.co/test/tiny:F16", &path), DL_OK);
    free(path);
    dl_resolved r;
    assert_int_equal(dl_resolve(fx->c, "hf.co/test/tiny:Q8_0", false, &r), DL_OK);
    assert_true(r.files[0].present);
    dl_resolved_free(&r);
    assert_int_equal(dl_locate(fx->c, "hf.co/test/tiny:Q4_K_M", &path), DL_ERR_NOT_FOUND);

    size_t removed = 0;
    assert_int_equal(dl_store_remove(fx->c, "hf.co/test/tiny:Q8_0", &removed), DL_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(dl_store_remove(fx->c, "hf.co/test/tiny/split/tiny-F16-00001-of-00003.gguf",
                                     &removed), DL_OK);
    assert_int_equal(removed, 3);
    snprintf(want, sizeof want, "%s/test", fx->store);
    assert_false(exists(want));
    assert_true(exists(fx->store));
    assert_int_equal(dl_locate(fx->c, "hf.co/test/tiny:Q8_0", &path), DL_ERR_NOT_FOUND);
}

/* A catalog of our own whose repository lives on the test server. */
static void test_catalog_pull(void **state)
{
    fixture *fx = *state;
    char cat[4200], *path = NULL;
    char *text = dl_strfmt(
        "{\"default_pair\": {\"small\": \"tiny:test\", \"large\": \"tiny:test\"},\n"
        " \"models\": [\n"
        "  {\"name\": \"tiny:test\", \"family\": \"Test\", \"params\": \"1M\", \"n_params\": 1,"
        "   \"license\": \"mit\", \"repo\": \"test/tiny\", \"default_quant\": \"Q8_0\","
        "   \"files\": [{\"quant\": \"Q8_0\", \"file\": \"tiny-Q8_0.gguf\", \"size\": %zu,"
        "                \"sha256\": \"%s\"},"
        "               {\"quant\": \"Q4_0\", \"file\": \"tiny-Q4_0.gguf\", \"size\": 5,"
        "                \"size_approx\": true}]},\n"
        "  {\"name\": \"bad:sha\", \"family\": \"Test\", \"params\": \"1M\", \"n_params\": 1,"
        "   \"license\": \"mit\", \"repo\": \"test/tiny\", \"default_quant\": \"Q4_K_M\","
        "   \"files\": [{\"quant\": \"Q4_K_M\", \"file\": \"tiny-Q4_K_M.gguf\", \"size\": %zu,"
        "                \"sha256\": \"%064d\"}]}\n"
        " ]}\n", NET->f[S_Q8].len, NET->f[S_Q8].sha, NET->f[S_Q4KM].len, 0);
    snprintf(cat, sizeof cat, "%s/test-catalog.json", fx->tmp);
    write_text(cat, text);
    free(text);
    dl_set_catalog_path(fx->c, cat);
    dl_status st = dl_pull(fx->c, "tiny:test", &path);
    if (st)
        fail_msg("pull tiny:test: %s: %s", dl_status_name(st), dl_errmsg(fx->c));
    expect_same_file(path, &NET->f[S_Q8]);
    free(path);
    /* an estimated size is not held against the real file */
    st = dl_pull(fx->c, "tiny:test:q4_0", &path);
    if (st)
        fail_msg("pull tiny:test:q4_0: %s: %s", dl_status_name(st), dl_errmsg(fx->c));
    expect_same_file(path, &NET->f[S_Q40]);
    free(path);
    /* a wrong checksum: refused, and nothing left under the final name */
    assert_int_equal(dl_pull(fx->c, "bad:sha", &path), DL_ERR_VERIFY);
    assert_null(path);
    char p[4200];
    snprintf(p, sizeof p, "%s/test/tiny/tiny-Q4_K_M.gguf", fx->store);
    assert_false(exists(p));
    assert_int_equal(dl_locate(fx->c, "tiny:test", &path), DL_OK);
    free(path);
}

typedef struct peek_check {
    int64_t n_tensors;
    int calls;
} peek_check;

/* Enough once the project's GGUF reader parses the whole header from the bytes so far: the
 * head is copied into a zeroed buffer of the file's size, and accepted only if the tensor data
 * starts within the bytes really read. */
static int peek_enough(const void *buf, size_t len, uint64_t file_size, void *user, char *msg,
                       size_t msglen)
{
    peek_check *pc = user;
    pc->calls++;
    if (len >= 4 && memcmp(buf, "GGUF", 4)) {
        snprintf(msg, msglen, "no GGUF magic");
        return -1;
    }
    if (file_size == 0 || file_size > ((uint64_t)64 << 20))
        return 1;
    uint8_t *copy = calloc(1, (size_t)file_size);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    gguf_file *f = NULL;
    char err[256];
    int r = 1;
    if (gguf_open_buffer(copy, (size_t)file_size, "peek", &f, err, sizeof err) == GGUF_OK) {
        if (gguf_data_offset(f) <= len) {
            pc->n_tensors = gguf_tensor_count(f);
            r = 0;
        }
        gguf_close(f);
    } else {
        snprintf(msg, msglen, "%s", err);
    }
    free(copy);
    return r;
}

static int64_t local_tensor_count(const char *path)
{
    gguf_file *f;
    char err[256];
    if (gguf_open(path, &f, err, sizeof err) != GGUF_OK)
        fail_msg("%s", err);
    int64_t n = gguf_tensor_count(f);
    gguf_close(f);
    return n;
}

static void test_peek(void **state)
{
    fixture *fx = *state;
    char url[512];
    void *buf = NULL;
    size_t len = 0;
    uint64_t size = 0, moved = 0;
    peek_check pc = { 0 };
    char *baby = strdup(fixture_path("models/babyllama-930K-F32.gguf"));
    int64_t want = local_tensor_count(baby);

    snprintf(url, sizeof url, "%s/storage/baby.gguf", dlsrv_nginx_base(&NET->s));
    dl_status st = dl_peek(fx->c, url, peek_enough, &pc, 0, &buf, &len, &size, &moved);
    if (st)
        fail_msg("peek %s: %s: %s", url, dl_status_name(st), dl_errmsg(fx->c));
    assert_int_equal(pc.n_tensors, want);
    assert_int_equal(size, 3805248);
    assert_true(moved > 0 && moved < size / 4);
    assert_true(len >= moved);
    free(buf);

    /* a header bigger than the first range (a 32000-token vocabulary): the range grows */
    want = local_tensor_count(fixture_path("models/llama-2-tiny-random.gguf"));
    memset(&pc, 0, sizeof pc);
    snprintf(url, sizeof url, "%s/storage/random.gguf", dlsrv_nginx_base(&NET->s));
    st = dl_peek(fx->c, url, peek_enough, &pc, 0, &buf, &len, &size, &moved);
    if (st)
        fail_msg("peek %s: %s: %s", url, dl_status_name(st), dl_errmsg(fx->c));
    assert_int_equal(pc.n_tensors, want);
    assert_true(pc.calls >= 2);
    assert_true(moved > (256 << 10) && moved < size);
    free(buf);
    /* ... but not past max_bytes */
    st = dl_peek(fx->c, url, peek_enough, &pc, 300000, &buf, &len, &size, &moved);
    assert_int_equal(st, DL_ERR_FORMAT);
    assert_null(buf);
    assert_non_null(strstr(dl_errmsg(fx->c), url));

    /* a local file costs no network */
    memset(&pc, 0, sizeof pc);
    assert_int_equal(dl_peek(fx->c, baby, peek_enough, &pc, 0, &buf, &len, &size, &moved),
                     DL_OK);
    assert_int_equal(moved, 0);
    assert_int_equal(size, 3805248);
    assert_int_equal(pc.n_tensors, local_tensor_count(baby));
    free(buf);
    free(baby);
}

/* HF_TOKEN goes to the endpoint as a bearer token; without it a gated file is refused. */
static void test_hf_token(void **state)
{
    fixture *fx = *state;
    char *path = NULL;
    assert_int_equal(dl_pull(fx->c, "hf.co/test/gated/g.gguf", &path), DL_ERR_HTTP);
    assert_null(path);
    dl_set_hf_token(fx->c, "secret");
    dl_status st = dl_pull(fx->c, "hf.co/test/gated/g.gguf", &path);
    if (st)
        fail_msg("pull with token: %s: %s", dl_status_name(st), dl_errmsg(fx->c));
    size_t len;
    uint8_t *got = read_file(path, &len);
    assert_true(len == NET->gated_len && !memcmp(got, NET->gated, len));
    free(got);
    free(path);
}

int main(void)
{
    const struct CMUnitTest offline[] = {
        cmocka_unit_test_setup_teardown(test_parse_local, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_parse_catalog, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_parse_hf, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_parse_url, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_parse_bad, fx_setup, fx_teardown),
        cmocka_unit_test(test_quant_tokens),
        cmocka_unit_test(test_split_names),
        cmocka_unit_test_setup_teardown(test_catalog_contents, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_catalog_resolve, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_catalog_malformed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_store_remove_escape, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_store_remove_models_only, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_store_remove_locked, fx_setup, fx_teardown),
        cmocka_unit_test(test_store_no_home),
        cmocka_unit_test_setup_teardown(test_store_linked_folder, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_store_linked_file, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_local_split, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_url_store_paths, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_store_offline, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_store_damaged, fx_setup, fx_teardown),
    };
    const struct CMUnitTest net[] = {
        cmocka_unit_test_setup_teardown(test_hf_quant_select, net_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_hf_pull_locate_remove, net_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_catalog_pull, net_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_peek, net_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_hf_token, net_setup, fx_teardown),
    };
    int failed = cmocka_run_group_tests_name("references, catalog, store", offline, NULL, NULL);
    failed += cmocka_run_group_tests_name("against nginx", net, net_group_setup,
                                          net_group_teardown);
    return failed;
}
