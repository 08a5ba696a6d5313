/* `sizeup devices`: list the Vulkan devices, say which one sizeup would use and why, and
 * optionally run the device self-check on it.
 *
 * The device index comes from --device N, else from the environment variable SIZEUP_DEVICE
 * (only app/ reads either; the engine gets an index and a name for its reason string).
 * Exit status: 0 ok, 1 no loader / no device / Vulkan failure / failed self-check,
 * 2 bad usage (unknown option, malformed or out-of-range index).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "engine/vk.h"

#define CMD "devices"
#define CHECK_FLOATS 4096u

typedef struct devices_opts {
    int json, check;
    int has_index;
    unsigned index;
    const char *origin; /* "--device" or "SIZEUP_DEVICE" */
} devices_opts;

static void usage(FILE *to)
{
    fprintf(to,
            "usage: sizeup devices [--device N] [--json] [--check] [--help]\n\n"
            "Lists every Vulkan device, marks with '*' the one sizeup would use, and says which\n"
            "backend --backend auto picks: Vulkan on a GPU, sizeup's CPU engine when the device\n"
            "is itself a CPU driver (lavapipe) that --device or SIZEUP_DEVICE did not name.\n\n"
            "  --device N  use device N (default: $SIZEUP_DEVICE, else the best device:\n"
            "              discrete > integrated > virtual GPU > CPU, then the larger\n"
            "              device-local heap, then the lower index)\n"
            "  --json      print the same information as JSON\n"
            "  --check     run a small compute self-check on the chosen device\n"
            "  --help      show this help\n\n"
            "SIZEUP_VK_VALIDATE=1 turns on the Khronos validation layer and reports its\n"
            "messages on stderr.\n");
}

/* Whole string is a decimal index; no sign, no trailing junk. */
static int parse_index(const char *s, unsigned *out)
{
    if (!s || *s < '0' || *s > '9')
        return 0;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > 0xffffffffUL)
        return 0;
    *out = (unsigned)v;
    return 1;
}

/* Returns -1 to go on, else the exit status (0 for --help). */
static int parse_args(int argc, char **argv, devices_opts *o)
{
    const char *index_text = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            o->json = 1;
        } else if (!strcmp(a, "--check")) {
            o->check = 1;
        } else if (!strcmp(a, "--device")) {
            if (i + 1 >= argc) {
                app_fail(CMD, "--device needs an index, e.g. --device 0");
                return 2;
            }
            index_text = argv[++i];
        } else if (!strncmp(a, "--device=", 9)) {
            index_text = a + 9;
        } else {
            app_fail(CMD, "unknown option '%s' (try 'sizeup devices --help')", a);
            return 2;
        }
    }
    o->origin = "--device";
    if (!index_text) {
        const char *env = getenv("SIZEUP_DEVICE");
        if (!env || !*env)
            return -1;
        index_text = env;
        o->origin = "SIZEUP_DEVICE";
    }
    if (!parse_index(index_text, &o->index)) {
        app_fail(CMD, "%s%s%s: not a device index (a number such as 0)", o->origin,
                 o->origin[0] == '-' ? " " : "=", index_text);
        return 2;
    }
    o->has_index = 1;
    return -1;
}

/* Validation messages go to stderr as they come; engine code never prints. */
static void on_validation(void *user, vk_msg_severity sev, const char *msg)
{
    (void)user;
    fprintf(stderr, "sizeup %s: validation %s: %s\n", CMD,
            sev == VK_MSG_ERROR ? "error" : "warning", msg);
}

/* ---- text ---- */

static const char *yes_no(int v) { return v ? "yes" : "no"; }

static void print_type(const vk_device_info *d)
{
    if (vk_device_is_lavapipe(d))
        printf("    type         CPU device (lavapipe: Mesa's software Vulkan on the CPU)\n");
    else if (d->type == VK_DEVTYPE_CPU)
        printf("    type         CPU device (software Vulkan on the CPU)\n");
    else
        printf("    type         %s\n", vk_device_type_str(d->type));
}

static void print_heaps(const vk_device_info *d)
{
    char b1[32], b2[32], b3[32];
    for (uint32_t h = 0; h < d->heap_count; h++) {
        const vk_heap_info *hp = &d->heaps[h];
        printf("    heap %-2u      %-10s %s%s", h, app_fmt_bytes(hp->size, b1, sizeof b1),
               hp->device_local ? "device-local" : "not device-local",
               hp->host_visible ? ", host-visible" : "");
        if (d->has_budget)
            printf(" (budget %s, used %s)", app_fmt_bytes(hp->budget, b2, sizeof b2),
                   app_fmt_bytes(hp->usage, b3, sizeof b3));
        printf("\n");
    }
}

static void print_subgroup(const vk_device_info *d)
{
    if (!d->subgroup_size) {
        printf("    subgroup     unknown (Vulkan 1.0 device)\n");
        return;
    }
    printf("    subgroup     %u lanes%s:", d->subgroup_size,
           d->subgroup_in_compute ? "" : " (not in compute shaders)");
    for (unsigned i = 0; i < VK_SGOP_COUNT; i++)
        if (d->subgroup_ops & (1u << i))
            printf(" %s", vk_subgroup_op_name(i));
    printf("\n");
}

static void print_device(const vk_device_info *d, int chosen)
{
    char b1[32], b2[32];
    printf("%c device %u: %s\n", chosen ? '*' : ' ', d->index, d->name);
    print_type(d);
    if (d->driver_name[0])
        printf("    driver       %s %s (%s)\n", d->driver_name, d->driver_version,
               d->driver_info[0] ? d->driver_info : "no driver info");
    else
        printf("    driver       version %s\n", d->driver_version);
    printf("    api          Vulkan %s\n", d->api_version);
    print_heaps(d);
    print_subgroup(d);
    printf("    arithmetic   fp16 %s, int8 %s, integer dot product %s\n", yes_no(d->fp16),
           yes_no(d->int8), yes_no(d->int_dot));
    printf("    storage      16-bit %s, 8-bit %s\n", yes_no(d->storage16), yes_no(d->storage8));
    printf("    buffers      maxStorageBufferRange %s, maxMemoryAllocationSize %s\n",
           app_fmt_bytes(d->max_storage_buffer_range, b1, sizeof b1),
           d->max_memory_allocation_size
               ? app_fmt_bytes(d->max_memory_allocation_size, b2, sizeof b2)
               : "unknown");
    printf("    compute      workgroup %u x %u x %u, %u invocations, %s shared memory\n",
           d->max_compute_workgroup_size[0], d->max_compute_workgroup_size[1],
           d->max_compute_workgroup_size[2], d->max_compute_workgroup_invocations,
           app_fmt_bytes(d->max_compute_shared_memory, b1, sizeof b1));
}

/* What `--backend auto` runs on with these devices and this choice: "cpu" or "vulkan", and
 * why (the rule of vk_auto_backend_is_cpu; a device named by --device or SIZEUP_DEVICE is the
 * user's choice and runs on Vulkan). */
static const char *auto_backend(const vk_ctx *ctx, int named, char *why, size_t len)
{
    const vk_device_info *d = vk_ctx_device_info(ctx, vk_ctx_choice(ctx)->index);
    return vk_auto_backend_is_cpu(d, named, why, len) ? "cpu" : "vulkan";
}

static void print_text(const vk_ctx *ctx, int named)
{
    char v[24];
    uint32_t n = vk_ctx_device_count(ctx);
    const vk_choice *c = vk_ctx_choice(ctx);
    printf("Vulkan loader %s, %u device%s\n\n",
           vk_version_str(vk_ctx_loader_version(ctx), v, sizeof v), n, n == 1 ? "" : "s");
    for (uint32_t i = 0; i < n; i++) {
        print_device(vk_ctx_device_info(ctx, i), i == c->index);
        printf("\n");
    }
    printf("sizeup uses device %u (%s): %s\n", c->index, vk_ctx_device_info(ctx, c->index)->name,
           c->reason);
    char why[256];
    const char *be = auto_backend(ctx, named, why, sizeof why);
    printf("backend auto: %s (%s)\n", be, why);
}

/* ---- JSON ---- */

static json_t *device_json(const vk_device_info *d, int chosen)
{
    json_t *heaps = json_array(), *ops = json_array();
    for (uint32_t h = 0; h < d->heap_count; h++) {
        const vk_heap_info *hp = &d->heaps[h];
        json_t *o = json_pack("{s:I, s:b, s:b}", "size", (json_int_t)hp->size, "device_local",
                              hp->device_local, "host_visible", hp->host_visible);
        if (d->has_budget) {
            json_object_set_new(o, "budget", json_integer((json_int_t)hp->budget));
            json_object_set_new(o, "usage", json_integer((json_int_t)hp->usage));
        }
        json_array_append_new(heaps, o);
    }
    for (unsigned i = 0; i < VK_SGOP_COUNT; i++)
        if (d->subgroup_ops & (1u << i))
            json_array_append_new(ops, json_string(vk_subgroup_op_name(i)));
    return json_pack(
        "{s:i, s:s, s:s, s:b, s:b, s:b, s:i, s:i,"
        " s:{s:s, s:s, s:s, s:I, s:i}, s:s, s:o, s:b,"
        " s:{s:i, s:o, s:b}, s:{s:b, s:b, s:b, s:b, s:b},"
        " s:{s:I, s:I, s:[i,i,i], s:i, s:i}}",
        "index", (int)d->index, "name", d->name, "type", vk_device_type_str(d->type), "chosen",
        chosen, "cpu_device", d->type == VK_DEVTYPE_CPU, "lavapipe", vk_device_is_lavapipe(d),
        "vendor_id", (int)d->vendor_id, "device_id", (int)d->device_id,
        "driver", "name", d->driver_name, "info", d->driver_info, "version", d->driver_version,
        "version_raw", (json_int_t)d->driver_version_raw, "id", (int)d->driver_id,
        "api_version", d->api_version, "heaps", heaps, "memory_budget", d->has_budget,
        "subgroup", "size", (int)d->subgroup_size, "ops", ops, "in_compute",
        d->subgroup_in_compute,
        "features", "fp16", d->fp16, "int8", d->int8, "integer_dot_product", d->int_dot,
        "storage_16bit", d->storage16, "storage_8bit", d->storage8,
        "limits", "max_storage_buffer_range", (json_int_t)d->max_storage_buffer_range,
        "max_memory_allocation_size", (json_int_t)d->max_memory_allocation_size,
        "max_compute_workgroup_size", (int)d->max_compute_workgroup_size[0],
        (int)d->max_compute_workgroup_size[1], (int)d->max_compute_workgroup_size[2],
        "max_compute_workgroup_invocations", (int)d->max_compute_workgroup_invocations,
        "max_compute_shared_memory", (int)d->max_compute_shared_memory);
}

static json_t *ctx_json(const vk_ctx *ctx, int named)
{
    char v[24], why[256];
    const char *be = auto_backend(ctx, named, why, sizeof why);
    const vk_choice *c = vk_ctx_choice(ctx);
    json_t *devs = json_array();
    for (uint32_t i = 0; i < vk_ctx_device_count(ctx); i++)
        json_array_append_new(devs, device_json(vk_ctx_device_info(ctx, i), i == c->index));
    return json_pack("{s:s, s:i, s:s, s:{s:s, s:s}, s:o}", "loader_version",
                     vk_version_str(vk_ctx_loader_version(ctx), v, sizeof v), "chosen",
                     (int)c->index, "reason", c->reason, "auto_backend", "backend", be,
                     "reason", why, "devices", devs);
}

/* ---- self-check ---- */

/* Runs the check; prints its line (text mode) or adds "check" to root (JSON). Returns the
 * exit status contribution: 0 pass, 1 fail or could not run. */
static int run_check(vk_ctx *ctx, json_t *root)
{
    vk_selfcheck_result r;
    /* Fresh data each run; 63 bits so the JSON integer shows the same seed as the text. */
    uint64_t seed = ((uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid()) >> 1;
    vk_status st = vk_selfcheck(ctx, CHECK_FLOATS, seed, &r);
    uint32_t idx = vk_ctx_choice(ctx)->index;
    if (st)
        return app_fail(CMD, "self-check on device %u could not run: %s: %s", idx,
                        vk_status_str(st), vk_ctx_errmsg(ctx));
    unsigned nval = vk_ctx_validation_count(ctx);
    int pass = r.pass && nval == 0;
    if (root) {
        json_object_set_new(root, "check",
                            json_pack("{s:b, s:i, s:i, s:o, s:f, s:I, s:i}", "pass", pass, "n",
                                      (int)r.n, "mismatches", (int)r.mismatches, "max_abs_err",
                                      /* JSON has no infinity: a NaN output reads as null */
                                      isfinite(r.max_abs_err) ? json_real(r.max_abs_err)
                                                              : json_null(),
                                      "tolerance", VK_SELFCHECK_TOL, "seed",
                                      (json_int_t)seed,
                                      "validation_messages", (int)nval));
    } else {
        printf("\nself-check on device %u: %s: y = a*x + b on %u floats, max error %g "
               "(tolerance %g), %u mismatches, seed %llu%s\n",
               idx, pass ? "pass" : "FAIL", r.n, r.max_abs_err, VK_SELFCHECK_TOL, r.mismatches,
               (unsigned long long)seed, nval ? ", validation messages on stderr" : "");
    }
    return pass ? 0 : 1;
}

int app_cmd_devices(int argc, char **argv)
{
    devices_opts o = { 0 };
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    vk_open_opts vo = {
        .has_device_index = o.has_index,
        .device_index = o.index,
        .device_origin = o.origin,
        .on_validation = on_validation,
    };
    char err[1024];
    vk_ctx *ctx = NULL;
    vk_status st = vk_ctx_open(&vo, &ctx, err, sizeof err);
    if (st) {
        app_fail(CMD, "%s: %s (backend auto runs on the CPU)", vk_status_str(st), err);
        return st == VK_STATUS_BAD_INDEX ? 2 : 1;
    }
    json_t *root = o.json ? ctx_json(ctx, o.has_index) : NULL;
    if (o.json && !root) {
        vk_ctx_close(ctx);
        return app_fail(CMD, "could not build the JSON document");
    }
    if (!o.json)
        print_text(ctx, o.has_index);
    rc = o.check ? run_check(ctx, root) : 0;
    if (root) {
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        printf("\n");
        json_decref(root);
    }
    vk_ctx_close(ctx);
    return rc;
}
