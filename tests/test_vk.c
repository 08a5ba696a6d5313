/* Tests for the Vulkan device layer (engine/vk_*.c) and `sizeup devices`.
 *
 * They run on whatever Vulkan implementation the machine has and do not skip: on CI that is
 * Mesa's lavapipe; on a machine with a GPU the probe tests check the GPU's values instead,
 * and lavapipe's own facts wherever it is listed. The choice rules are tested on
 * synthetic device lists, the self-check shader against the CPU with a poisoned output
 * buffer, and validation is switched on for one self-check run that must stay silent (set
 * SIZEUP_VK_VALIDATE=1 to run every test under the validation layer; each test then checks
 * its context saw no validation message).
 */
#include "tests/testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include "engine/vk.h"
#include "engine/vk_internal.h" /* only to provoke the validation layer on purpose */
#include "engine/vk_push.h"

/* ---- helpers ---- */

static vk_ctx *open_default(void)
{
    char err[1024] = "";
    vk_ctx *ctx = NULL;
    vk_status st = vk_ctx_open(NULL, &ctx, err, sizeof err);
    if (st)
        fail_msg("vk_ctx_open: %s: %s", vk_status_str(st), err);
    return ctx;
}

/* Every test that had a context checks it saw no validation message (0 unless validating). */
static void close_clean(vk_ctx *ctx)
{
    unsigned n = vk_ctx_validation_count(ctx);
    if (n)
        fail_msg("%u validation messages, first: %s", n, vk_ctx_validation_first(ctx));
    vk_ctx_close(ctx);
}

/* Runs cmd through sh, output (stdout + whatever cmd redirects) into buf; returns the exit
 * status, or -1 when it did not exit normally. */
static int run_cmd(const char *cmd, char *buf, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        fail_msg("popen failed: %s", cmd);
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *sizeup_bin(void)
{
    const char *b = getenv("SIZEUP_BIN");
    return b && *b ? b : "build/sizeup";
}

/* ---- probe on this machine ---- */

/* The device sizeup chooses, whatever it is: its reported properties are real values (the
 * minimums Vulkan requires, heaps with sizes, a compute queue). Lavapipe, which CI has, also
 * gets the facts only it has; a machine with a GPU passes on the GPU's own values. */
static void test_probe_chosen_device(void **state)
{
    (void)state;
    vk_ctx *ctx = open_default();
    assert_true(vk_ctx_device_count(ctx) >= 1);
    assert_true(vk_ctx_loader_version(ctx) >= ((1u << 22) | (1u << 12))); /* >= 1.1 */
    uint32_t chosen = vk_ctx_choice(ctx)->index;
    assert_true(chosen < vk_ctx_device_count(ctx));
    const vk_device_info *d = vk_ctx_device_info(ctx, chosen);
    assert_int_equal(d->index, chosen);
    assert_true(d->name[0] && d->driver_name[0]);
    assert_true(d->type >= VK_DEVTYPE_OTHER && d->type <= VK_DEVTYPE_CPU);
    assert_true(d->max_storage_buffer_range >= 1u << 27); /* Vulkan's required minimum */
    assert_true(d->max_memory_allocation_size > 0);
    assert_true(d->subgroup_size > 0 && (d->subgroup_size & (d->subgroup_size - 1)) == 0);
    assert_true(d->subgroup_ops & VK_SGOP_BASIC);
    assert_true(d->heap_count > 0);
    for (uint32_t h = 0; h < d->heap_count; h++)
        assert_true(d->heaps[h].size > 0);
    assert_true(vk_device_local_bytes(d) > 0);
    assert_true(d->has_compute_queue);
    assert_true(d->max_compute_workgroup_invocations >= 128); /* Vulkan's required minimum */
    assert_true(d->max_compute_shared_memory >= 16384);
    assert_true(d->max_compute_workgroup_size[0] >= 128);
    assert_int_equal(strncmp(d->api_version, "1.", 2), 0);
    assert_true(vk_ctx_choice(ctx)->reason[0]);
    /* lavapipe is recognised as such wherever it is listed, and described by its real values */
    for (uint32_t i = 0; i < vk_ctx_device_count(ctx); i++) {
        const vk_device_info *l = vk_ctx_device_info(ctx, i);
        bool named = !strcmp(l->driver_name, "llvmpipe") || strstr(l->name, "llvmpipe");
        assert_int_equal(vk_device_is_lavapipe(l), named);
        if (!named)
            continue;
        assert_int_equal(l->type, VK_DEVTYPE_CPU);
        assert_int_equal(l->driver_id, 13); /* VK_DRIVER_ID_MESA_LLVMPIPE */
        assert_non_null(strstr(l->driver_info, "Mesa"));
        assert_true(l->heaps[0].host_visible); /* lavapipe memory is all host memory */
    }
    /* only one device: it is the choice, and the reason says so in the words of its type */
    if (vk_ctx_device_count(ctx) == 1 && vk_device_is_lavapipe(d))
        assert_string_equal(vk_ctx_choice(ctx)->reason, "CPU device (lavapipe): no GPU found");
    close_clean(ctx);
}

static void test_open_explicit_index(void **state)
{
    (void)state;
    vk_open_opts o = { .has_device_index = 1, .device_index = 0, .device_origin = "SIZEUP_DEVICE" };
    char err[512] = "";
    vk_ctx *ctx = NULL;
    assert_int_equal(vk_ctx_open(&o, &ctx, err, sizeof err), VK_STATUS_OK);
    assert_int_equal(vk_ctx_choice(ctx)->index, 0);
    assert_string_equal(vk_ctx_choice(ctx)->reason, "chosen by SIZEUP_DEVICE=0");
    uint32_t n = vk_ctx_device_count(ctx);
    close_clean(ctx);

    o.device_index = n + 4;
    o.device_origin = "--device";
    ctx = (vk_ctx *)&o; /* must be reset to NULL on failure */
    assert_int_equal(vk_ctx_open(&o, &ctx, err, sizeof err), VK_STATUS_BAD_INDEX);
    assert_null(ctx);
    char want[128];
    snprintf(want, sizeof want, "device index %u is out of range: %u device", n + 4, n);
    if (!strstr(err, want))
        fail_msg("error '%s' lacks '%s'", err, want);
    assert_non_null(strstr(err, "--device"));
}

static void test_no_loader(void **state)
{
    (void)state;
    vk_open_opts o = { .loader_path = "/nonexistent/libvulkan.so.1" };
    char err[512] = "";
    vk_ctx *ctx = (vk_ctx *)&o;
    assert_int_equal(vk_ctx_open(&o, &ctx, err, sizeof err), VK_STATUS_NO_LOADER);
    assert_null(ctx);
    assert_non_null(strstr(err, "/nonexistent/libvulkan.so.1"));
    assert_non_null(strstr(err, "Vulkan loader"));
    vk_ctx_close(NULL); /* no-op */
    vk_buffer_free(NULL);
    vk_kernel_free(NULL);
}

/* ---- choice rules on synthetic lists ---- */

static vk_device_info fake(uint32_t index, vk_device_type type, uint64_t local_mib)
{
    vk_device_info d;
    memset(&d, 0, sizeof d);
    d.index = index;
    d.type = type;
    snprintf(d.name, sizeof d.name, "fake %u", index);
    d.heap_count = 2;
    d.heaps[0] = (vk_heap_info){ .size = local_mib << 20, .device_local = local_mib > 0 };
    d.heaps[1] = (vk_heap_info){ .size = 64ull << 30, .host_visible = 1 }; /* host RAM */
    return d;
}

static uint32_t choose(const vk_device_info *devs, uint32_t n, vk_choice *c)
{
    char err[256] = "";
    vk_status st = vk_choose_device(devs, n, 0, 0, NULL, c, err, sizeof err);
    if (st)
        fail_msg("vk_choose_device: %s", err);
    return c->index;
}

static void test_choice_type_order(void **state)
{
    (void)state;
    vk_choice c;
    /* Worst first, so index order cannot be what decides. */
    vk_device_info devs[5] = {
        fake(0, VK_DEVTYPE_OTHER, 1 << 20), fake(1, VK_DEVTYPE_CPU, 1 << 16),
        fake(2, VK_DEVTYPE_VIRTUAL, 1024), fake(3, VK_DEVTYPE_INTEGRATED, 512),
        fake(4, VK_DEVTYPE_DISCRETE, 256),
    };
    assert_int_equal(choose(devs, 5, &c), 4);
    assert_string_equal(c.reason, "discrete GPU preferred");
    assert_int_equal(choose(devs, 4, &c), 3);
    assert_string_equal(c.reason, "integrated GPU preferred: no discrete GPU");
    assert_int_equal(choose(devs, 3, &c), 2);
    assert_string_equal(c.reason, "virtual GPU preferred: no discrete or integrated GPU");
    assert_int_equal(choose(devs, 2, &c), 1);
    assert_string_equal(c.reason, "CPU device: no GPU found");
    /* Best first as well. */
    vk_device_info rev[4] = {
        fake(0, VK_DEVTYPE_DISCRETE, 256), fake(1, VK_DEVTYPE_INTEGRATED, 512),
        fake(2, VK_DEVTYPE_VIRTUAL, 1024), fake(3, VK_DEVTYPE_CPU, 4096),
    };
    assert_int_equal(choose(rev, 4, &c), 0);
    assert_int_equal(choose(rev + 1, 3, &c), 0); /* index field is 1: position is what counts */
    assert_int_equal(rev[1 + c.index].type, VK_DEVTYPE_INTEGRATED);
}

static void test_choice_single_and_lavapipe(void **state)
{
    (void)state;
    vk_choice c;
    vk_device_info one = fake(0, VK_DEVTYPE_DISCRETE, 8192);
    assert_int_equal(choose(&one, 1, &c), 0);
    assert_string_equal(c.reason, "only device");
    vk_device_info lvp = fake(0, VK_DEVTYPE_CPU, 2048);
    snprintf(lvp.driver_name, sizeof lvp.driver_name, "llvmpipe");
    assert_int_equal(choose(&lvp, 1, &c), 0);
    assert_string_equal(c.reason, "CPU device (lavapipe): no GPU found");
}

/* What --backend auto runs on: the CPU engine when the automatic choice is a CPU driver, unless
 * the user named that device; Vulkan on any GPU. */
static void test_auto_backend_rule(void **state)
{
    (void)state;
    vk_choice c;
    char why[256];
    vk_device_info lvp = fake(0, VK_DEVTYPE_CPU, 2048);
    snprintf(lvp.driver_name, sizeof lvp.driver_name, "llvmpipe");
    /* lavapipe only */
    assert_int_equal(vk_auto_backend_is_cpu(&lvp, 0, why, sizeof why), 1);
    assert_string_equal(why, "faster than lavapipe, a CPU Vulkan driver; --backend vulkan to use it");
    /* lavapipe named by --device / SIZEUP_DEVICE: the user asked for it */
    assert_int_equal(vk_auto_backend_is_cpu(&lvp, 1, why, sizeof why), 0);
    assert_non_null(strstr(why, "lavapipe named by"));
    /* another CPU driver, recognised by its type alone */
    vk_device_info swr = fake(0, VK_DEVTYPE_CPU, 1024);
    assert_int_equal(vk_auto_backend_is_cpu(&swr, 0, why, sizeof why), 1);
    assert_string_equal(why, "faster than fake 0, a CPU Vulkan driver; --backend vulkan to use it");
    /* lavapipe recognised by its driver even when it reports another type */
    vk_device_info odd = lvp;
    odd.type = VK_DEVTYPE_OTHER;
    assert_int_equal(vk_auto_backend_is_cpu(&odd, 0, why, sizeof why), 1);
    /* a discrete GPU beside lavapipe: chosen, and run on Vulkan */
    vk_device_info two[2] = { lvp, fake(1, VK_DEVTYPE_DISCRETE, 8192) };
    assert_int_equal(choose(two, 2, &c), 1);
    assert_int_equal(vk_auto_backend_is_cpu(&two[c.index], 0, why, sizeof why), 0);
    assert_string_equal(why, "fake 1 is a discrete GPU");
    vk_device_info igpu = fake(0, VK_DEVTYPE_INTEGRATED, 0);
    assert_int_equal(vk_auto_backend_is_cpu(&igpu, 0, why, sizeof why), 0);
    assert_string_equal(why, "fake 0 is an integrated GPU");
    /* no device at all */
    assert_int_equal(vk_auto_backend_is_cpu(NULL, 0, why, sizeof why), 1);
    assert_string_equal(why, "no Vulkan device");
}

static void test_choice_ties(void **state)
{
    (void)state;
    vk_choice c;
    /* Same type: the larger device-local heap wins, wherever it sits. */
    vk_device_info a[3] = { fake(0, VK_DEVTYPE_DISCRETE, 8192), fake(1, VK_DEVTYPE_DISCRETE, 24576),
                            fake(2, VK_DEVTYPE_INTEGRATED, 65536) };
    assert_int_equal(choose(a, 3, &c), 1);
    assert_string_equal(c.reason,
                        "discrete GPU preferred; largest device-local heap (24.0 GiB) of 2");
    /* A big host (not device-local) heap does not count. */
    a[0].heaps[1].size = 1ull << 40;
    assert_int_equal(choose(a, 3, &c), 1);
    /* Equal heaps: the lower index. */
    vk_device_info b[3] = { fake(0, VK_DEVTYPE_CPU, 100), fake(1, VK_DEVTYPE_DISCRETE, 16384),
                            fake(2, VK_DEVTYPE_DISCRETE, 16384) };
    assert_int_equal(choose(b, 3, &c), 1);
    assert_string_equal(c.reason,
                        "discrete GPU preferred; lowest index of 2 with equal device-local heaps");
    assert_int_equal(vk_device_local_bytes(&b[1]), 16384ull << 20);
}

static void test_choice_explicit_index(void **state)
{
    (void)state;
    vk_device_info devs[3] = { fake(0, VK_DEVTYPE_CPU, 2048), fake(1, VK_DEVTYPE_DISCRETE, 8192),
                               fake(2, VK_DEVTYPE_INTEGRATED, 1024) };
    vk_choice c;
    char err[256] = "";
    /* An explicit index beats the ranking, even towards the worst device. */
    assert_int_equal(vk_choose_device(devs, 3, 1, 0, "SIZEUP_DEVICE", &c, err, sizeof err),
                     VK_STATUS_OK);
    assert_int_equal(c.index, 0);
    assert_string_equal(c.reason, "chosen by SIZEUP_DEVICE=0");
    assert_int_equal(vk_choose_device(devs, 3, 1, 2, "--device", &c, err, sizeof err),
                     VK_STATUS_OK);
    assert_int_equal(c.index, 2);
    assert_string_equal(c.reason, "chosen by --device 2");
    assert_int_equal(vk_choose_device(devs, 3, 1, 1, NULL, &c, err, sizeof err), VK_STATUS_OK);
    assert_string_equal(c.reason, "chosen by explicit index 1");
}

static void test_choice_errors(void **state)
{
    (void)state;
    vk_device_info devs[2] = { fake(0, VK_DEVTYPE_CPU, 2048), fake(1, VK_DEVTYPE_DISCRETE, 8192) };
    vk_choice c;
    char err[256] = "";
    assert_int_equal(vk_choose_device(devs, 2, 1, 5, "SIZEUP_DEVICE", &c, err, sizeof err),
                     VK_STATUS_BAD_INDEX);
    assert_string_equal(err, "SIZEUP_DEVICE=5: device index 5 is out of range: 2 devices found "
                             "(0..1)");
    assert_int_equal(vk_choose_device(devs, 2, 1, 2, NULL, &c, err, sizeof err),
                     VK_STATUS_BAD_INDEX);
    assert_string_equal(err, "device index 2 is out of range: 2 devices found (0..1)");
    assert_int_equal(vk_choose_device(devs, 0, 0, 0, NULL, &c, err, sizeof err),
                     VK_STATUS_NO_DEVICE);
    assert_non_null(strstr(err, "no Vulkan devices"));
}

/* ---- version decoding ---- */

static void test_versions(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(vk_version_str((1u << 22) | (3u << 12) | 230u, buf, sizeof buf),
                        "1.3.230");
    /* NVIDIA 535.104.05: 10.8.8.6 bits, whether the driver id or only the vendor id says so. */
    uint32_t nv = (535u << 22) | (104u << 14) | (5u << 6) | 0u;
    assert_string_equal(vk_driver_version_str(VK_DRIVER_ID_NVIDIA_PROPRIETARY, 0x10de, nv, buf,
                                              sizeof buf),
                        "535.104.5.0");
    assert_string_equal(vk_driver_version_str(0, 0x10de, nv, buf, sizeof buf), "535.104.5.0");
    /* Mesa (standard VK_MAKE_VERSION), also for an open driver on NVIDIA hardware. */
    uint32_t mesa = (22u << 22) | (3u << 12) | 6u;
    assert_string_equal(vk_driver_version_str(VK_DRIVER_ID_MESA_RADV, 0x1002, mesa, buf,
                                              sizeof buf),
                        "22.3.6");
    assert_string_equal(vk_driver_version_str(VK_DRIVER_ID_MESA_RADV, 0x10de, mesa, buf,
                                              sizeof buf),
                        "22.3.6");
    assert_string_equal(vk_driver_version_str(VK_DRIVER_ID_MESA_LLVMPIPE, 0x10005, 1, buf,
                                              sizeof buf),
                        "0.0.1");
    assert_string_equal(vk_device_type_str(VK_DEVTYPE_CPU), "CPU");
    assert_string_equal(vk_subgroup_op_name(5), "shuffle-relative");
    assert_null(vk_subgroup_op_name(VK_SGOP_COUNT));
}

/* ---- compute on the device ---- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static float rnd(float lo, float hi)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 2685821657736338717ull;
    return lo + (hi - lo) * (float)(r >> 40) / 16777216.0f;
}

/* Dispatches selfcheck over n_run of the n elements with workgroup size wg. */
static void run_selfcheck_kernel(vk_ctx *ctx, vk_buffer *bx, vk_buffer *by, uint32_t n_run,
                                 uint32_t wg, float a, float b)
{
    vk_kernel *k = NULL;
    vk_status st = vk_kernel_create(ctx, "selfcheck", 2, sizeof(vk_push_selfcheck), &wg, 1, &k);
    if (st)
        fail_msg("vk_kernel_create: %s", vk_ctx_errmsg(ctx));
    vk_push_selfcheck push = { .n = n_run, .a = a, .b = b };
    vk_buffer *bufs[2] = { bx, by };
    uint32_t groups[3] = { (n_run + wg - 1) / wg, 1, 1 };
    st = vk_kernel_run(k, bufs, &push, groups);
    vk_kernel_free(k);
    if (st)
        fail_msg("vk_kernel_run: %s", vk_ctx_errmsg(ctx));
}

static void test_selfcheck_shader_matches_cpu(void **state)
{
    (void)state;
    enum { N = 3001 }; /* not a multiple of any workgroup size: exercises the bounds check */
    vk_ctx *ctx = open_default();
    assert_int_equal(vk_ctx_start_device(ctx), VK_STATUS_OK);
    assert_int_equal(vk_ctx_start_device(ctx), VK_STATUS_OK); /* idempotent */
    rng_state ^= (uint64_t)time(NULL); /* fresh data each run */
    static float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = rnd(-8.0f, 8.0f);
    float a = rnd(-3.0f, 3.0f), b = rnd(-2.0f, 2.0f);
    vk_buffer *bx = NULL, *by = NULL;
    assert_int_equal(vk_buffer_create(ctx, sizeof x, &bx), VK_STATUS_OK);
    assert_int_equal(vk_buffer_create(ctx, sizeof y, &by), VK_STATUS_OK);
    assert_int_equal(vk_buffer_size(by), sizeof y);
    assert_int_equal(vk_buffer_upload(bx, 0, x, sizeof x), VK_STATUS_OK);
    const uint32_t wgs[2] = { 64, 8 };
    for (int w = 0; w < 2; w++) {
        uint32_t n_run = w == 0 ? N : N - 1000;
        memset(y, 0xff, sizeof y); /* poison: NaN everywhere */
        assert_int_equal(vk_buffer_upload(by, 0, y, sizeof y), VK_STATUS_OK);
        run_selfcheck_kernel(ctx, bx, by, n_run, wgs[w], a, b);
        assert_int_equal(vk_buffer_download(by, 0, y, sizeof y), VK_STATUS_OK);
        for (uint32_t i = 0; i < n_run; i++) {
            float prod = a * x[i];
            float ref = prod + b;
            /* Vulkan requires correctly rounded fp32 add and mul, and `precise` forbids fma,
             * so any conformant device matches bit for bit (inputs are never denormal). */
            if (y[i] != ref)
                fail_msg("wg %u: y[%u] = %.9g, cpu %.9g", wgs[w], i, (double)y[i], (double)ref);
        }
        for (uint32_t i = n_run; i < N; i++) /* past n: untouched poison */
            assert_true(isnan(y[i]));
    }
    vk_buffer_free(by);
    vk_buffer_free(bx);

    vk_selfcheck_result r;
    assert_int_equal(vk_selfcheck(ctx, 4096, 12345, &r), VK_STATUS_OK);
    assert_int_equal(r.n, 4096);
    assert_int_equal(r.mismatches, 0);
    assert_true(r.max_abs_err <= VK_SELFCHECK_TOL);
    assert_true(r.pass);
    close_clean(ctx);
}

static void test_compute_argument_errors(void **state)
{
    (void)state;
    vk_ctx *ctx = open_default();
    vk_buffer *buf = (vk_buffer *)ctx;
    assert_int_equal(vk_buffer_create(ctx, 16, &buf), VK_STATUS_BAD_ARG); /* no device yet */
    assert_null(buf);
    assert_int_equal(vk_ctx_start_device(ctx), VK_STATUS_OK);
    const vk_device_info *d = vk_ctx_device_info(ctx, vk_ctx_choice(ctx)->index);
    assert_int_equal(vk_buffer_create(ctx, d->max_storage_buffer_range + 1, &buf),
                     VK_STATUS_BAD_ARG);
    assert_non_null(strstr(vk_ctx_errmsg(ctx), "maxStorageBufferRange"));
    assert_int_equal(vk_buffer_create(ctx, 64, &buf), VK_STATUS_OK);
    char tmp[65] = { 0 };
    assert_int_equal(vk_buffer_upload(buf, 1, tmp, 64), VK_STATUS_BAD_ARG);
    assert_int_equal(vk_buffer_download(buf, UINT64_MAX, tmp, 2), VK_STATUS_BAD_ARG);
    assert_int_equal(vk_buffer_download(buf, 0, tmp, 64), VK_STATUS_OK);
    vk_kernel *k = (vk_kernel *)ctx;
    assert_int_equal(vk_kernel_create(ctx, "no_such_shader", 1, 0, NULL, 0, &k),
                     VK_STATUS_NO_SHADER);
    assert_null(k);
    assert_non_null(strstr(vk_ctx_errmsg(ctx), "no_such_shader"));
    assert_int_equal(vk_kernel_create(ctx, "selfcheck", 2, 10, NULL, 0, &k), VK_STATUS_BAD_ARG);
    vk_buffer_free(buf);
    close_clean(ctx);
}

/* Two threads failing on one ctx at the same time each read their own message: the detail
 * is kept per thread, not on the shared ctx (where one would overwrite the other's between
 * its failing call and its read). */
typedef struct err_thread {
    vk_ctx *ctx;
    int which;     /* 0: buffer too big; 1: unknown shader */
    int mismatches;
} err_thread;

static void *fail_repeatedly(void *arg)
{
    err_thread *t = arg;
    const vk_device_info *d = vk_ctx_device_info(t->ctx, vk_ctx_choice(t->ctx)->index);
    for (int i = 0; i < 20000; i++) {
        vk_buffer *b;
        vk_kernel *k;
        if (t->which == 0)
            vk_buffer_create(t->ctx, d->max_storage_buffer_range + 1, &b);
        else
            vk_kernel_create(t->ctx, "no_such_shader", 1, 0, NULL, 0, &k);
        const char *want = t->which == 0 ? "maxStorageBufferRange" : "no_such_shader";
        if (!strstr(vk_ctx_errmsg(t->ctx), want))
            t->mismatches++;
    }
    return NULL;
}

static void test_errors_per_thread(void **state)
{
    (void)state;
    vk_ctx *ctx = open_default();
    assert_int_equal(vk_ctx_start_device(ctx), VK_STATUS_OK);
    err_thread t[2] = { { ctx, 0, 0 }, { ctx, 1, 0 } };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fail_repeatedly, &t[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    if (t[0].mismatches || t[1].mismatches)
        fail_msg("a thread read the other's message: %d and %d times in 20000", t[0].mismatches,
                 t[1].mismatches);
    close_clean(ctx);
}

/* ---- pipeline cache file ---- */

static void write_file(const char *path, const void *data, size_t n)
{
    unlink(path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static size_t read_bytes(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

/* A version-one header for d (the one a cache of d starts with). */
static void make_header(const vk_device_info *d, uint8_t h[32])
{
    const uint32_t w[4] = { 32, 1, d->vendor_id, d->device_id }; /* little-endian host */
    memcpy(h, w, 16);
    memcpy(h + 16, d->pipeline_cache_uuid, 16);
}

/* Opens a context on dir's cache file, runs the self-check through the cache (so the model's
 * kernels would run), saves, and returns the bytes it took from the file. */
static size_t open_run_save(const char *dir, char *path, size_t path_len)
{
    vk_ctx *ctx = open_default();
    assert_int_equal(vk_ctx_start_device(ctx), VK_STATUS_OK);
    const vk_device_info *d = vk_ctx_device_info(ctx, vk_ctx_choice(ctx)->index);
    assert_true(vk_pipeline_cache_path(d, dir, path, path_len));
    if (vk_ctx_pipeline_cache_open(ctx, dir))
        fail_msg("pipeline cache open: %s", vk_ctx_errmsg(ctx));
    size_t loaded = vk_ctx_pipeline_cache_loaded(ctx);
    vk_selfcheck_result r;
    assert_int_equal(vk_selfcheck(ctx, 1000, 7, &r), VK_STATUS_OK);
    assert_true(r.pass);
    if (vk_ctx_pipeline_cache_save(ctx))
        fail_msg("pipeline cache save: %s", vk_ctx_errmsg(ctx));
    close_clean(ctx);
    return loaded;
}

/* A cache file with wrong contents is ignored (nothing of it reaches the driver) and replaced
 * by a valid one: random bytes, a valid header naming another device's UUID, a header cut
 * short, a header claiming more bytes than the file has, and a symlink (not followed: its
 * target, although valid, is neither read nor written). A valid file is then taken whole. */
static void test_pipeline_cache_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/sizeup-vkcache-XXXXXX", path[4200], target[4200];
    assert_non_null(mkdtemp(dir));
    vk_ctx *ctx = open_default();
    assert_int_equal(vk_ctx_start_device(ctx), VK_STATUS_OK);
    vk_device_info d = *vk_ctx_device_info(ctx, vk_ctx_choice(ctx)->index);
    vk_ctx_close(ctx);
    assert_true(vk_pipeline_cache_path(&d, dir, path, sizeof path));
    snprintf(target, sizeof target, "%s/target.bin", dir);
    uint8_t good[32], bad[4096], got[8192];
    make_header(&d, good);
    for (int c = 0; c < 5; c++) {
        memcpy(bad, good, sizeof good);
        size_t n = sizeof bad;
        if (c == 0)
            for (size_t i = 0; i < n; i++)
                bad[i] = (uint8_t)rnd(0.0f, 256.0f);
        else if (c == 1)
            bad[20] ^= 0x5a, n = 64; /* another device's UUID */
        else if (c == 2)
            n = 20; /* truncated inside the header */
        else if (c == 3)
            bad[0] = 200, n = 64; /* headerSize past the end */
        if (c == 4) {
            write_file(target, good, sizeof good);
            unlink(path);
            assert_int_equal(symlink(target, path), 0);
        } else {
            write_file(path, bad, n);
        }
        if (open_run_save(dir, path, sizeof path) != 0)
            fail_msg("case %d: the cache file was used", c);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode)); /* replaced, a link included */
        size_t m = read_bytes(path, got, sizeof got);
        if (m < 32 || memcmp(got, good, 32))
            fail_msg("case %d: the file was not replaced by a valid cache (%zu bytes)", c, m);
        if (c == 4)
            assert_int_equal(read_bytes(target, got, sizeof got), sizeof good);
    }
    size_t m = read_bytes(path, got, sizeof got);
    assert_int_equal(open_run_save(dir, path, sizeof path), m); /* a valid file is taken */
    unlink(target);
    unlink(path);
    rmdir(dir);
}

/* ---- validation ---- */

typedef struct msg_log {
    unsigned n;
    char first[512];
} msg_log;

static void log_message(void *user, vk_msg_severity sev, const char *msg)
{
    (void)sev;
    msg_log *l = user;
    if (l->n++ == 0)
        snprintf(l->first, sizeof l->first, "%s", msg);
}

/* Device-local buffers the host cannot map (discrete GPUs) are filled and read through staging
 * copies. lavapipe maps everything, so the mapping is dropped here to take that path. */
static void test_staged_transfers(void **state)
{
    (void)state;
    vk_ctx *ctx = open_default();
    assert_int_equal(vk_ctx_start_device(ctx), VK_STATUS_OK);
    vk_buffer *b;
    size_t n = (size_t)(70u << 20) + 12; /* more than one 64 MiB staging chunk */
    assert_int_equal(vk_buffer_create_device(ctx, n, &b), VK_STATUS_OK);
    if (b->map) {
        ctx->fn.UnmapMemory(ctx->dev, b->mem);
        b->map = NULL;
    }
    uint8_t *src = malloc(n), *dst = malloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (uint8_t)(i * 2654435761u >> 13);
    memset(dst, 0xee, n);
    assert_int_equal(vk_buffer_upload(b, 0, src, n), VK_STATUS_OK);
    assert_int_equal(vk_buffer_download(b, 0, dst, n), VK_STATUS_OK);
    assert_memory_equal(src, dst, n);
    assert_int_equal(vk_buffer_download(b, 1000, dst, 16), VK_STATUS_OK); /* an inner range */
    assert_memory_equal(src + 1000, dst, 16);
    free(src);
    free(dst);
    vk_buffer_free(b);
    vk_ctx_close(ctx);
}

static void test_validation_selfcheck_silent(void **state)
{
    (void)state;
    msg_log log = { 0 };
    vk_open_opts o = { .validate = 1, .on_validation = log_message, .user = &log };
    char err[512] = "";
    vk_ctx *ctx = NULL;
    vk_status st = vk_ctx_open(&o, &ctx, err, sizeof err);
    if (st)
        fail_msg("vk_ctx_open with validation: %s: %s", vk_status_str(st), err);
    assert_true(vk_ctx_validation_enabled(ctx));
    vk_selfcheck_result r;
    assert_int_equal(vk_selfcheck(ctx, 4096, 777, &r), VK_STATUS_OK);
    assert_true(r.pass);
    vk_ctx_close(ctx);
    /* After close too: leaked objects are reported when the device/instance is destroyed. */
    if (log.n)
        fail_msg("%u validation messages, first: %s", log.n, log.first);
}

/* The silence above means something only if the layer is live: make it complain once. */
static void test_validation_layer_is_live(void **state)
{
    (void)state;
    msg_log log = { 0 };
    vk_open_opts o = { .validate = 1, .on_validation = log_message, .user = &log };
    char err[512] = "";
    vk_ctx *ctx = NULL;
    assert_int_equal(vk_ctx_open(&o, &ctx, err, sizeof err), VK_STATUS_OK);
    assert_int_equal(vk_ctx_start_device(ctx), VK_STATUS_OK);
    VkBufferCreateInfo bad = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 64,
                               .usage = 0 /* invalid: must not be 0 */ };
    VkBuffer buf = VK_NULL_HANDLE;
    VkResult r = ctx->fn.CreateBuffer(ctx->dev, &bad, NULL, &buf);
    if (r == VK_SUCCESS) /* the layer let it through to the driver: do not leak it */
        ctx->fn.DestroyBuffer(ctx->dev, buf, NULL);
    assert_true(vk_ctx_validation_count(ctx) >= 1);
    assert_non_null(strstr(vk_ctx_validation_first(ctx), "VUID-VkBufferCreateInfo-usage"));
    vk_ctx_close(ctx);
    assert_true(log.n >= 1);
}

/* ---- the command ---- */

/* `sizeup devices` marks exactly one device, the one the JSON calls chosen, and its --check
 * passes on it, whatever device that is. */
static void test_cli_devices(void **state)
{
    (void)state;
    static char out[1 << 16], text[1 << 16];
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' devices --json --check", sizeup_bin());
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    json_error_t jerr;
    json_t *root = json_loads(out, 0, &jerr);
    if (!root)
        fail_msg("devices --json: %s in:\n%s", jerr.text, out);
    json_t *dev = json_array_get(json_object_get(root, "devices"),
                                 (size_t)json_integer_value(json_object_get(root, "chosen")));
    assert_non_null(dev);
    assert_true(json_is_true(json_object_get(dev, "chosen")));
    const char *name = json_string_value(json_object_get(dev, "name"));
    assert_non_null(name);
    bool lavapipe = json_is_true(json_object_get(dev, "lavapipe"));
    if (lavapipe)
        assert_string_equal(json_string_value(json_object_get(dev, "type")), "CPU");
    assert_true(json_is_true(json_object_get(json_object_get(root, "check"), "pass")));
    /* which backend auto picks: the CPU engine when the chosen device is a CPU driver */
    json_t *ab = json_object_get(root, "auto_backend");
    bool cpu_dev = lavapipe || json_is_true(json_object_get(dev, "cpu_device"));
    assert_string_equal(json_string_value(json_object_get(ab, "backend")), cpu_dev ? "cpu" : "vulkan");
    assert_non_null(json_string_value(json_object_get(ab, "reason")));

    snprintf(cmd, sizeof cmd, "'%s' devices 2>&1", sizeup_bin());
    assert_int_equal(run_cmd(cmd, text, sizeof text), 0);
    /* Exactly one device line is marked '*', and it names the chosen device. */
    static char copy[sizeof text];
    memcpy(copy, text, sizeof text);
    int marked = 0, marked_chosen = 0;
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (!strncmp(line, "* device ", 9)) {
            marked++;
            marked_chosen += strstr(line, name) != NULL;
        }
    if (marked != 1 || marked_chosen != 1)
        fail_msg("want one '* device ... %s' line in:\n%s", name, text);
    if (lavapipe)
        assert_non_null(strstr(text, "CPU device (lavapipe"));
    assert_non_null(strstr(text, "sizeup uses device"));
    assert_non_null(strstr(text, cpu_dev ? "backend auto: cpu (faster than " : "backend auto: vulkan ("));
    assert_non_null(strstr(text, "maxStorageBufferRange"));
    json_decref(root);
}

static void test_cli_errors(void **state)
{
    (void)state;
    static char out[1 << 14];
    char cmd[1024];
    /* No driver at all: the loader finds no manifest. */
    snprintf(cmd, sizeof cmd,
             "VK_DRIVER_FILES=/nonexistent.json VK_ICD_FILENAMES=/nonexistent.json '%s' devices "
             "2>&1",
             sizeup_bin());
    assert_int_equal(run_cmd(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "no Vulkan"));
    snprintf(cmd, sizeof cmd, "'%s' devices --bogus 2>&1", sizeup_bin());
    assert_int_equal(run_cmd(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "--bogus"));
    snprintf(cmd, sizeof cmd, "'%s' devices --device 99 2>&1", sizeup_bin());
    assert_int_equal(run_cmd(cmd, out, sizeof out), 2);
    assert_non_null(strstr(out, "device index 99 is out of range"));
    snprintf(cmd, sizeof cmd, "SIZEUP_DEVICE=0 '%s' devices 2>&1", sizeup_bin());
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "chosen by SIZEUP_DEVICE=0"));
    assert_non_null(strstr(out, "backend auto: vulkan ")); /* a device the user named */
    snprintf(cmd, sizeof cmd, "'%s' devices --help", sizeup_bin());
    assert_int_equal(run_cmd(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "usage: sizeup devices"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_chosen_device),
        cmocka_unit_test(test_open_explicit_index),
        cmocka_unit_test(test_no_loader),
        cmocka_unit_test(test_choice_type_order),
        cmocka_unit_test(test_choice_single_and_lavapipe),
        cmocka_unit_test(test_auto_backend_rule),
        cmocka_unit_test(test_choice_ties),
        cmocka_unit_test(test_choice_explicit_index),
        cmocka_unit_test(test_choice_errors),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_selfcheck_shader_matches_cpu),
        cmocka_unit_test(test_compute_argument_errors),
        cmocka_unit_test(test_errors_per_thread),
        cmocka_unit_test(test_pipeline_cache_file),
        cmocka_unit_test(test_staged_transfers),
        cmocka_unit_test(test_validation_selfcheck_silent),
        cmocka_unit_test(test_validation_layer_is_live),
        cmocka_unit_test(test_cli_devices),
        cmocka_unit_test(test_cli_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
