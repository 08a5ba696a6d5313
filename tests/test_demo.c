/* The built-in demo and the TUI's default models (app/demo.c): with an empty store the demo's
 * three paths, the Q4_0 made by sizeup's quantizer (valid, the fixture's tensor count, and its
 * Q4_0 tensors byte for byte those llama-quantize wrote into the fixture) and made only once;
 * with models in the store, the two most recently used, the demo's own file and damaged files
 * not counted. Run from the source tree (the built-in folder is found as downloads/builtin). */
#include "testutil.h"

#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "downloads/dl.h"
#include "engine/gguf.h"

static char store[64];

static int setup(void **state)
{
    (void)state;
    snprintf(store, sizeof store, "/tmp/sizeup-test-demo-XXXXXX");
    if (!mkdtemp(store))
        return -1;
    setenv("SIZEUP_MODELS", store, 1);
    setenv("HF_ENDPOINT", "http://127.0.0.1:9", 1);   /* nothing here may use the network */
    unsetenv("SIZEUP_BUILTIN");
    unsetenv("SIZEUP_CATALOG");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", store);
    return system(cmd) == 0 ? 0 : -1;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static const gguf_tensor *find_tensor(const gguf_file *f, const gguf_tensor *like)
{
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        if (t->name.len == like->name.len && !memcmp(t->name.ptr, like->name.ptr, t->name.len))
            return t;
    }
    return NULL;
}

/* The made file against the fixture llama-quantize wrote: same tensors; every tensor the
 * fixture holds as Q4_0 is Q4_0 here with the same bytes. (The fixture's output.weight is
 * Q8_0, llama-quantize's choice for rows too short for Q6_K; ours is Q4_0.) */
static void check_q4(const char *path)
{
    char err[256];
    gguf_file *ours = NULL, *ref = NULL;
    assert_int_equal(gguf_open(path, &ours, err, sizeof err), 0);
    assert_int_equal(gguf_open(fixture_path("models/babyllama-930K-Q4_0.gguf"), &ref, err,
                               sizeof err), 0);
    assert_int_equal(gguf_tensor_count(ours), gguf_tensor_count(ref));
    int q4 = 0;
    for (int64_t i = 0; i < gguf_tensor_count(ref); i++) {
        const gguf_tensor *r = gguf_tensor_at(ref, i), *o = find_tensor(ours, r);
        assert_non_null(o);
        if (r->type != GGUF_T_Q4_0)
            continue;
        assert_int_equal(o->type, GGUF_T_Q4_0);
        assert_int_equal(o->nbytes, r->nbytes);
        if (memcmp(o->data, r->data, r->nbytes))
            fail_msg("tensor %.*s differs from the fixture's", (int)r->name.len, r->name.ptr);
        q4++;
    }
    assert_true(q4 >= 30);   /* every matrix but output.weight */
    gguf_close(ours);
    gguf_close(ref);
}

static void empty_store_opens_the_demo(void **state)
{
    (void)state;
    char **paths = NULL, q4[256];
    size_t n = 0;
    bool demo = false;
    assert_int_equal(app_default_models("test", &paths, &n, &demo), 0);
    assert_true(demo);
    assert_int_equal(n, 3);
    assert_true(ends_with(paths[0], "/stories260K.gguf"));
    assert_true(ends_with(paths[1], "/babyllama-930K-F32.gguf"));
    snprintf(q4, sizeof q4, "%s/builtin/babyllama-930K-Q4_0.gguf", store);
    assert_string_equal(paths[2], q4);
    check_q4(paths[2]);
    app_paths_free(paths, n);

    /* Made once: a second call keeps the same file (inode and mtime). */
    struct stat a, b;
    assert_int_equal(stat(q4, &a), 0);
    sleep(1);
    assert_int_equal(app_default_models("test", &paths, &n, &demo), 0);
    assert_true(demo);
    assert_int_equal(stat(q4, &b), 0);
    assert_true(a.st_ino == b.st_ino && a.st_mtime == b.st_mtime);
    app_paths_free(paths, n);
}

/* STORE/o/r/NAME.gguf with a record saying when it was last used (and its size, or another). */
static void put_model(const char *name, long last_used, bool damaged)
{
    char dir[256], path[320], rec[340];
    snprintf(dir, sizeof dir, "%s/o/r", store);
    mkdir(store, 0755);
    snprintf(path, sizeof path, "%s/o", store);
    mkdir(path, 0755);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
    snprintf(rec, sizeof rec, "%s.json", path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("0123456789", f);
    fclose(f);
    f = fopen(rec, "w");
    assert_non_null(f);
    fprintf(f, "{\"url\": \"x\", \"size\": %d, \"pulled_at\": 1, \"last_used\": %ld}\n",
            damaged ? 11 : 10, last_used);
    fclose(f);
}

static void store_gives_the_two_most_recent(void **state)
{
    (void)state;
    /* The demo's Q4_0 from the test above is there too, used just now: it must not count. */
    put_model("old", 100, false);
    put_model("newest", 300, false);
    put_model("middle", 200, false);
    put_model("damaged", 999, true);
    char **paths = NULL, want[2][320];
    size_t n = 0;
    bool demo = true;
    assert_int_equal(app_default_models("test", &paths, &n, &demo), 0);
    assert_false(demo);
    assert_int_equal(n, 2);
    snprintf(want[0], sizeof want[0], "%s/o/r/newest.gguf", store);
    snprintf(want[1], sizeof want[1], "%s/o/r/middle.gguf", store);
    assert_string_equal(paths[0], want[0]);
    assert_string_equal(paths[1], want[1]);
    app_paths_free(paths, n);
}

/* The catalog's sizes of the demo (what `sizeup catalog` and the README quote) are those of
 * the files: the two shipped ones and the Q4_0 the first test made. */
static void catalog_sizes_are_the_files(void **state)
{
    (void)state;
    static const char *const names[] = { "demo:stories260k", "demo:babyllama",
                                         "demo:babyllama-q4" };
    dl_ctx *c = dl_open();
    assert_non_null(c);
    assert_int_equal(dl_catalog_load(c), DL_OK);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const dl_cat_entry *e = dl_catalog_find(c, names[i]);
        dl_resolved r;
        assert_non_null(e);
        assert_int_equal(dl_resolve(c, names[i], false, &r), DL_OK);
        assert_int_equal(r.n_files, 1);
        assert_int_equal(e->n_files, 1);
        struct stat sb;
        assert_int_equal(stat(r.files[0].path, &sb), 0);
        if ((uint64_t)sb.st_size != e->files[0].size)
            fail_msg("%s: the catalog says %llu bytes, %s has %lld", names[i],
                     (unsigned long long)e->files[0].size, r.files[0].path,
                     (long long)sb.st_size);
        dl_resolved_free(&r);
    }
    dl_close(c);
}

static void banner_names_the_way_out(void **state)
{
    (void)state;
    assert_non_null(strstr(app_demo_banner, "/add qwen2.5:0.5b"));
    assert_non_null(strstr(app_demo_banner, "sizeup catalog"));
    for (const char *p = app_demo_banner; *p; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
}

int main(void)
{
    /* In this order: the second and third count on the store the first one left. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_store_opens_the_demo),
        cmocka_unit_test(store_gives_the_two_most_recent),
        cmocka_unit_test(catalog_sizes_are_the_files),
        cmocka_unit_test(banner_names_the_way_out),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
