/* The Vulkan backend's device side: the device contexts (one per device, opened on first use
 * and kept for the process), a model's weights on the device (uploaded once, shared by every
 * session of that model) and the device read-bandwidth benchmark. The forward pass of a
 * session, recorded from these weights, is engine/vk_forward.c. */
#include "engine/vk_backend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/vk.h"
#include "engine/vk_model.h"
#include "engine/vk_ops.h"
#include "engine/vk_push.h"

/* ---- the process's devices ---- */

/* One context per device a model asked for, opened on first use and kept until the process
 * ends: its kernels took a second or more each to create on lavapipe, and the next model (a
 * comparison opens several one after another) reuses them. A model asking for another device
 * than an earlier one gets that device, never silently the open one. */
#define VK_MAX_DEVICES 8

static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uint32_t index; /* vk_ctx_choice(ctx)->index */
    vk_ctx *ctx;
    vk_ops *ops;
} devs[VK_MAX_DEVICES];
static int n_devs;
static int auto_dev = -1; /* the slot the automatic choice (index < 0) resolved to */

static int find_dev(uint32_t index)
{
    for (int i = 0; i < n_devs; i++)
        if (devs[i].index == index)
            return i;
    return -1;
}

/* $XDG_CACHE_HOME/sizeup, else ~/.cache/sizeup (where downloads keep models too); 0 when
 * neither variable is set, or the path does not fit. */
static int cache_dir(char *out, size_t len)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n = xdg && *xdg == '/' ? snprintf(out, len, "%s/sizeup", xdg)
            : home && *home   ? snprintf(out, len, "%s/.cache/sizeup", home)
                              : -1;
    return n > 0 && (size_t)n < len;
}

/* Opens a context for device `index` (< 0: the automatic choice) and its kernel set. Caller
 * holds dev_lock. Returns the slot, or -1 with the reason in err. */
static int open_dev(int index, char *err, size_t errlen)
{
    vk_open_opts o = { 0 };
    if (index >= 0) {
        o.has_device_index = 1;
        o.device_index = (uint32_t)index;
        o.device_origin = "--device";
    }
    char e[512];
    vk_ctx *ctx = NULL;
    vk_ops *ops = NULL;
    vk_status st = vk_ctx_open(&o, &ctx, e, sizeof e);
    if (st) {
        snprintf(err, errlen, "Vulkan: %s", e);
        return -1;
    }
    uint32_t chosen = vk_ctx_choice(ctx)->index;
    int i = find_dev(chosen);
    if (i >= 0) { /* the automatic choice is a device already open */
        vk_ctx_close(ctx);
        return i;
    }
    if (n_devs == VK_MAX_DEVICES) {
        snprintf(err, errlen, "Vulkan: device %u would be the %d-th open device; at most %d",
                 chosen, VK_MAX_DEVICES + 1, VK_MAX_DEVICES);
        vk_ctx_close(ctx);
        return -1;
    }
    st = vk_ctx_start_device(ctx);
    if (!st)
        st = vk_ops_new(ctx, &ops);
    char dir[4096];
    if (!st && cache_dir(dir, sizeof dir))
        vk_ctx_pipeline_cache_open(ctx, dir); /* without it, kernels are made uncached */
    if (st) {
        snprintf(err, errlen, "Vulkan: %s", vk_ctx_errmsg(ctx));
        vk_ctx_close(ctx);
        return -1;
    }
    devs[n_devs].index = chosen;
    devs[n_devs].ctx = ctx;
    devs[n_devs].ops = ops;
    return n_devs++;
}

bool eng_vk_auto_prefers_cpu(char *why, size_t len)
{
    static int known = 0, cpu = 0;
    static char reason[256];
    pthread_mutex_lock(&dev_lock);
    if (!known) {
        vk_ctx *ctx = NULL;
        char e[512];
        if (vk_ctx_open(NULL, &ctx, e, sizeof e) == VK_STATUS_OK) {
            const vk_device_info *d = vk_ctx_device_info(ctx, vk_ctx_choice(ctx)->index);
            cpu = vk_auto_backend_is_cpu(d, 0, reason, sizeof reason);
            vk_ctx_close(ctx);
        } else {
            snprintf(reason, sizeof reason, "Vulkan: %.200s", e);
        }
        known = 1;
    }
    snprintf(why, len, "%s", reason);
    pthread_mutex_unlock(&dev_lock);
    return cpu;
}

static bool device_acquire(int index, vk_ctx **ctx, vk_ops **ops, char *err, size_t errlen)
{
    pthread_mutex_lock(&dev_lock);
    int i = index < 0 ? auto_dev : find_dev((uint32_t)index);
    if (i < 0)
        i = open_dev(index, err, errlen);
    if (i >= 0 && index < 0)
        auto_dev = i;
    if (i >= 0) {
        *ctx = devs[i].ctx;
        *ops = devs[i].ops;
    }
    pthread_mutex_unlock(&dev_lock);
    return i >= 0;
}

unsigned eng_vk_validation_messages(const char **first)
{
    unsigned n = 0;
    if (first)
        *first = "";
    pthread_mutex_lock(&dev_lock);
    for (int i = 0; i < n_devs; i++) {
        unsigned k = vk_ctx_validation_count(devs[i].ctx);
        if (first && k && !n)
            *first = vk_ctx_validation_first(devs[i].ctx);
        n += k;
    }
    pthread_mutex_unlock(&dev_lock);
    return n;
}

/* ---- weights ---- */

static void w_free(vk_w *w)
{
    for (int i = 0; i < w->n; i++)
        vk_buffer_free(w->buf[i]);
    memset(w, 0, sizeof *w);
}

/* Rows [r, r + n) of src into buf in the layout the matrix kernels read (vk_mm_pack_rows),
 * through a bounded bounce buffer. */
static bool w_pack_upload(eng_vk_model *vm, vk_buffer *buf, const eng_weight *src, int64_t r,
                          int64_t n, uint64_t out_row, char *err, size_t errlen)
{
    uint32_t K = (uint32_t)src->ne0;
    int64_t piece = (int64_t)((16u << 20) / out_row);
    piece = piece < 1 ? 1 : piece;
    size_t tmp_bytes = (size_t)((n < piece ? n : piece) * out_row);
    uint8_t *tmp = malloc(tmp_bytes);
    if (!tmp) {
        snprintf(err, errlen, "out of memory for a %zu-byte upload buffer", tmp_bytes);
        return false;
    }
    bool ok = true;
    for (int64_t i = 0; ok && i < n; i += piece) {
        int64_t k = n - i < piece ? n - i : piece;
        vk_mm_pack_rows(vm->ops, src->type, K, (uint32_t)k,
                        src->data + (size_t)(r + i) * src->row_bytes, tmp);
        ok = !vk_buffer_upload(buf, (uint64_t)i * out_row, tmp, (uint64_t)k * out_row);
    }
    if (!ok)
        snprintf(err, errlen, "%s", vk_ctx_errmsg(vm->ctx));
    free(tmp);
    return ok;
}

static bool w_upload(eng_vk_model *vm, vk_w *dst, const eng_weight *src, char *err, size_t errlen)
{
    memset(dst, 0, sizeof *dst);
    if (!src->t)
        return true;
    dst->w = src;
    uint64_t range = vk_ctx_device_info(vm->ctx, vk_ctx_choice(vm->ctx)->index)->max_storage_buffer_range;
    /* the row stride the kernels read (packed rows are a few bytes longer than GGUF's) */
    uint64_t out_row = vk_mm_row_bytes(vm->ops, src->type, (uint32_t)src->ne0);
    uint64_t rows_per = out_row ? range / out_row : 0;
    if (rows_per == 0 || (uint64_t)src->ne1 > rows_per * VK_MAX_CHUNKS) {
        snprintf(err, errlen, "tensor '%.*s' (%.0f MiB) cannot be split into %d buffers of at "
                 "most %.0f MiB", (int)src->t->name.len, src->t->name.ptr,
                 src->t->nbytes / 1048576.0, VK_MAX_CHUNKS, range / 1048576.0);
        return false;
    }
    for (int64_t r = 0; r < src->ne1; r += (int64_t)rows_per) {
        int64_t n = src->ne1 - r < (int64_t)rows_per ? src->ne1 - r : (int64_t)rows_per;
        int i = dst->n;
        uint64_t bytes = (uint64_t)n * out_row;
        /* word-aligned size: shaders read 32-bit words past a block's last byte */
        char why[400];
        if (vk_buffer_create_device(vm->ctx, (bytes + 3) & ~3ull, &dst->buf[i])) {
            snprintf(err, errlen, "uploading '%.*s': %s", (int)src->t->name.len,
                     src->t->name.ptr, vk_ctx_errmsg(vm->ctx));
            return false;
        }
        dst->row0[i] = (uint32_t)r;
        dst->rows[i] = (uint32_t)n;
        dst->n++; /* counted now, so eng_vk_model_free frees it if the copy fails */
        if (!w_pack_upload(vm, dst->buf[i], src, r, n, out_row, why, sizeof why)) {
            snprintf(err, errlen, "uploading '%.*s': %s", (int)src->t->name.len,
                     src->t->name.ptr, why);
            return false;
        }
        vm->bytes += bytes;
    }
    /* the device has its copy: the file's pages would count the weights twice in RSS (on
     * lavapipe, where device memory is host memory, twice in fact) */
    gguf_release_pages(vm->m->file, src->data, (size_t)src->ne1 * src->row_bytes);
    return true;
}

void eng_vk_model_free(eng_vk_model *vm)
{
    if (!vm)
        return;
    for (uint32_t l = 0; vm->layers && l < vm->m->hp.n_layer; l++) {
        vk_w *f = (vk_w *)&vm->layers[l];
        for (size_t i = 0; i < sizeof(vk_layer_w) / sizeof(vk_w); i++)
            w_free(&f[i]);
    }
    free(vm->layers);
    w_free(&vm->output_norm);
    w_free(&vm->output);
    w_free(&vm->rope_freqs);
    w_free(&vm->rope_short);
    w_free(&vm->rope_long);
    free(vm);
}

/* Every matrix type needs a kernel, and the whole model must fit the device's memory. Notes
 * the kernels the model will use in *need. */
static bool check_fit(eng_vk_model *vm, vk_ops_need *need, char *err, size_t errlen)
{
    const eng_model *m = vm->m;
    const vk_device_info *d = vk_ctx_device_info(vm->ctx, vk_ctx_choice(vm->ctx)->index);
    *need = (vk_ops_need){ .n_head = m->hp.n_head, .n_head_kv = m->hp.n_head_kv,
                           .head_dim = m->hp.head_dim, .head_dim_v = m->hp.head_dim_v };
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const eng_weight *ws[] = { &m->layers[l].wq, &m->layers[l].wk, &m->layers[l].wv,
            &m->layers[l].wqkv, &m->layers[l].wo, &m->layers[l].w_gate, &m->layers[l].w_up,
            &m->layers[l].w_gate_up, &m->layers[l].w_down, &m->output };
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            if (ws[i]->t && !vk_ops_has_type(vm->ops, ws[i]->type)) {
                snprintf(err, errlen, "tensor '%.*s' has type %s, which the Vulkan engine cannot "
                         "compute yet (use --backend cpu)", (int)ws[i]->t->name.len,
                         ws[i]->t->name.ptr, gguf_type_get(ws[i]->type)->name);
                return false;
            } else if (ws[i]->t) {
                need->types[ws[i]->type] = true;
            }
    }
    uint64_t avail = 0;
    for (uint32_t h = 0; h < d->heap_count; h++)
        if (d->heaps[h].device_local) {
            uint64_t a = d->has_budget && d->heaps[h].budget ? d->heaps[h].budget : d->heaps[h].size;
            if (a > avail)
                avail = a;
        }
    if (avail && m->weight_bytes > avail) {
        snprintf(err, errlen, "the model needs %.2f GiB for its weights but device %u (%s) has "
                 "%.2f GiB available; nothing was uploaded", m->weight_bytes / 1073741824.0,
                 d->index, d->name, avail / 1073741824.0);
        return false;
    }
    return true;
}

static bool upload_layers(eng_vk_model *vm, char *err, size_t errlen)
{
    const eng_model *m = vm->m;
    vm->layers = calloc(m->hp.n_layer, sizeof *vm->layers);
    if (!vm->layers) {
        snprintf(err, errlen, "out of memory for %u layers' weight handles", m->hp.n_layer);
        return false;
    }
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const eng_layer *L = &m->layers[l];
        vk_layer_w *V = &vm->layers[l];
        const eng_weight *src[] = { &L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wqkv, &L->bq,
            &L->bk, &L->bv, &L->q_norm, &L->k_norm, &L->wo, &L->ffn_norm, &L->w_gate, &L->w_up,
            &L->w_gate_up, &L->w_down };
        vk_w *dst[] = { &V->attn_norm, &V->wq, &V->wk, &V->wv, &V->wqkv, &V->bq, &V->bk,
            &V->bv, &V->q_norm, &V->k_norm, &V->wo, &V->ffn_norm, &V->w_gate, &V->w_up,
            &V->w_gate_up, &V->w_down };
        for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
            if (!w_upload(vm, dst[i], src[i], err, errlen))
                return false;
    }
    return true;
}

/* The model's kernels (vk_ops_prepare), on a thread of their own beside the upload. */
typedef struct kernels_job {
    eng_vk_model *vm;
    vk_ops_need need;
    pthread_t thread;
    vk_status st;
    char err[512]; /* the message is per thread: this one's, for the caller */
} kernels_job;

static void *make_kernels(void *arg)
{
    kernels_job *kj = arg;
    kj->st = vk_ops_prepare(kj->vm->ops, &kj->need);
    if (kj->st)
        snprintf(kj->err, sizeof kj->err, "%s", vk_ctx_errmsg(kj->vm->ctx));
    else /* ignored when it fails: the next start just compiles again */
        vk_ctx_pipeline_cache_save(kj->vm->ctx);
    return NULL;
}

bool eng_vk_model_new(const eng_model *m, int device_index, eng_vk_model **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    eng_vk_model *vm = calloc(1, sizeof *vm);
    if (!vm) {
        snprintf(err, errlen, "out of memory for the Vulkan model");
        return false;
    }
    if (!device_acquire(device_index, &vm->ctx, &vm->ops, err, errlen)) {
        free(vm);
        return false;
    }
    vm->m = m;
    const vk_device_info *d = vk_ctx_device_info(vm->ctx, vk_ctx_choice(vm->ctx)->index);
    snprintf(vm->device, sizeof vm->device, "%s (%s)", d->name,
             vk_device_is_lavapipe(d) ? "lavapipe, CPU" : vk_device_type_str(d->type));
    kernels_job kj = { .vm = vm };
    if (!check_fit(vm, &kj.need, err, errlen))
        goto fail;
    /* The kernels are made while the weights upload: both are CPU work on lavapipe, and the
     * kernels alone take most of a small model's start. Without a thread, one after the
     * other. */
    bool threaded = !pthread_create(&kj.thread, NULL, make_kernels, &kj);
    if (!threaded)
        make_kernels(&kj);
    bool up = upload_layers(vm, err, errlen) &&
              w_upload(vm, &vm->output_norm, &m->output_norm, err, errlen) &&
              w_upload(vm, &vm->output, &m->output, err, errlen) &&
              w_upload(vm, &vm->rope_freqs, &m->rope_freqs, err, errlen) &&
              w_upload(vm, &vm->rope_short, &m->rope_short, err, errlen) &&
              w_upload(vm, &vm->rope_long, &m->rope_long, err, errlen);
    if (threaded)
        pthread_join(kj.thread, NULL);
    if (kj.st) /* a model that cannot run here says so, whatever else failed */
        snprintf(err, errlen, "Vulkan kernels for this model: %s", kj.err);
    if (kj.st || !up)
        goto fail;
    *out = vm;
    return true;
fail:
    eng_vk_model_free(vm);
    return false;
}

const char *eng_vk_model_device(const eng_vk_model *vm) { return vm->device; }
uint32_t eng_vk_model_device_index(const eng_vk_model *vm) { return vk_ctx_choice(vm->ctx)->index; }
uint64_t eng_vk_model_weight_bytes(const eng_vk_model *vm) { return vm->bytes; }

/* ---- device read bandwidth ---- */

static double time_kernel(vk_kernel *k, vk_buffer *src, vk_buffer *dst, const vk_push_bw *p,
                          uint32_t groups, uint64_t bytes)
{
    vk_buffer *b[2] = { src, dst };
    uint32_t g[3] = { groups, 1, 1 };
    double best = 0;
    for (int rep = 0; rep < 4; rep++) {
        struct timespec a, c;
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (vk_kernel_run(k, b, p, g))
            return 0;
        clock_gettime(CLOCK_MONOTONIC, &c);
        double s = (double)(c.tv_sec - a.tv_sec) + (c.tv_nsec - a.tv_nsec) * 1e-9;
        double gbps = (double)bytes / s / 1e9;
        if (rep && gbps > best) /* the first run pays for page faults and pipeline start */
            best = gbps;
    }
    return best;
}

/* The best of several access patterns (contiguous ranges per invocation, as a CPU driver
 * streams; interleaved, as a GPU coalesces) and two ways of loading (storage buffer; texel
 * buffer, which the matrix kernels use on CPU devices) over the largest buffer the device
 * allows, up to 128 MiB, filled with data first (untouched pages would all read the one zero
 * page). */
double eng_vk_read_gbps(eng_vk_model *vm)
{
    vk_ctx *ctx = vm->ctx;
    const vk_device_info *d = vk_ctx_device_info(ctx, vk_ctx_choice(ctx)->index);
    uint64_t bytes = d->max_storage_buffer_range < (128u << 20) ? d->max_storage_buffer_range : (128u << 20);
    bytes &= ~(uint64_t)((1u << 20) - 1);
    uint32_t sg = d->subgroup_size ? d->subgroup_size : 32;
    vk_buffer *src = NULL, *dst = NULL;
    double best = 0;
    if (vk_buffer_create(ctx, bytes, &src) || vk_buffer_create(ctx, 1u << 22, &dst))
        goto done;
    {
        static uint8_t fill[1 << 16];
        for (size_t i = 0; i < sizeof fill; i++)
            fill[i] = (uint8_t)(i * 131u + 7u);
        for (uint64_t off = 0; off < bytes; off += sizeof fill)
            if (vk_buffer_upload(src, off, fill, sizeof fill))
                goto done;
    }
    /* Every loop stays under 65536 iterations per invocation: lavapipe silently ends longer
     * loops, which once made a 2-workgroup variant "read" 19 GB/s here. */
    /* texel: 0 storage buffer (uvec4), 1 R32 texels, 2 RGBA32 texels */
    struct { uint32_t wg, mode, groups, texel; } cfg[] = {
        { sg, 0, 1024, 0 }, { 256, 1, 1024, 0 }, { 64, 1, 4096, 0 },
        { sg, 0, 1024, 1 }, { sg, 0, 4096, 1 }, { 256, 1, 1024, 1 },
        { sg, 0, 1024, 2 }, { sg, 0, 4096, 2 }, { 256, 1, 1024, 2 },
    };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        uint32_t spec[2] = { cfg[i].wg, cfg[i].mode }, t = cfg[i].texel;
        vk_kernel *k;
        if (t && !vk_buffer_has_texel_view(src, t == 2))
            continue;
        uint32_t mask = t == 1 ? VK_TEXEL_R32(0) : t == 2 ? VK_TEXEL_RGBA32(0) : 0;
        if (vk_kernel_create_texel(ctx, t ? "bw_read_tex" : "bw_read", 2, mask,
                                   sizeof(vk_push_bw), spec, 2, &k))
            continue;
        vk_push_bw p = { (uint32_t)(bytes / (t == 1 ? 4 : 16)), cfg[i].wg * cfg[i].groups };
        double g = time_kernel(k, src, dst, &p, cfg[i].groups, bytes);
        best = g > best ? g : best;
        vk_kernel_free(k);
    }
done:
    vk_buffer_free(src);
    vk_buffer_free(dst);
    return best;
}
