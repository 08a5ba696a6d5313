/* The non-matrix kernels of the Vulkan forward pass (engine/vk_ops.h): creating them with
 * shapes chosen for the device, and recording one dispatch per op after checking that every
 * operand the dispatch touches lies inside its buffer.
 *
 * Shapes (specialization constants; each shader's header comment lists its own):
 *   0  workgroup size            every kernel
 *   1  reduction mode            rms_norm, attn, argmax (shaders/reduce.glsl: RED_*)
 *   2  positions per tile        attn (tiled algorithm)
 *   3  query heads per group     attn (streams algorithm)
 *   4, 5  key / value words per invocation   attn (streams)
 * lavapipe runs a workgroup on one CPU thread, 8 lanes wide; every storage- or shared-buffer
 * load is a loop over the lanes (about 100 ns per 8-lane load on the development machine),
 * masked-off and unused unrolled code still runs, and a shader containing a workgroup barrier
 * runs as coroutines. So there the reducing kernels take exactly one subgroup (8 invocations,
 * RED_ONE_SG: subgroup operations, no barrier), the elementwise ones larger groups so fewer
 * are scheduled, and attention loads each key and value word once for all the query heads of
 * its KV head, with a kernel specialised to the model's exact head shape (created on first
 * use and kept; see attn_kernel). GPUs get wide workgroups reducing through subgroups and
 * shared memory (RED_SUBGROUP), or shared memory alone (RED_SHARED, the *_shmem shader
 * variants) where subgroup arithmetic is missing in compute shaders, since even declaring that
 * capability is invalid there.
 *
 * Per-token values come from the step buffer: rope, kv_store and attn skip the tokens
 * t >= step[1], so a sequence recorded for a batch of N tokens also replays smaller batches,
 * and they neither write nor read cache rows past the end of the cache buffer, whatever
 * step[0] holds (such a position is a caller's bug, but must not become a device fault).
 *
 * Shapes are a pure function of the device (op_shape_for), recomputed where needed. Kernels
 * are made on first use (vk_ops_lazy) or ahead for a model (vk_ops_prepare); the state beyond
 * struct vk_ops (the lock, the specialised attention kernels) lives in a larger struct whose
 * first member is the vk_ops that vk_ops_new hands out, so every vk_op_* but vk_op_mul_mat
 * needs a set made by vk_ops_new (tests/test_vk_matmul.c hand-builds one for the matrix
 * kernels alone).
 */
#include "engine/vk_ops.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/vk_internal.h"

/* shaders/reduce.glsl */
enum { RED_SHARED = 0, RED_SUBGROUP = 1, RED_ONE_SG = 2 };

/* shaders/attn.glsl: the largest head (q and one output row are staged in shared memory). */
#define ATTN_MAX_HD 256u

typedef struct op_shape {
    bool subgroups;       /* subgroup arithmetic in compute: the subgroup shader variants */
    uint32_t red_mode;    /* RED_* for rms_norm, attn, argmax */
    uint32_t norm_wg;     /* rms_norm */
    uint32_t attn_wg, attn_tile;
    uint32_t attn_heads;  /* most query heads one attention workgroup serves (streams) */
    uint32_t attn_sg;     /* subgroup size the streams' words per invocation assume */
    uint32_t argmax_wg;
    uint32_t rope_wg;
    uint32_t ew_wg;       /* kv_store, swiglu, add */
} op_shape;

static uint32_t div_up(uint32_t a, uint32_t b) { return a / b + (a % b != 0); }

static const vk_device_info *ops_device(const vk_ctx *ctx)
{
    return &ctx->devices[ctx->choice.index];
}

/* Largest power of two <= want that the device allows along x. */
static uint32_t fit_wg(const vk_device_info *d, uint32_t want)
{
    uint32_t cap = d->max_compute_workgroup_invocations;
    if (d->max_compute_workgroup_size[0] < cap)
        cap = d->max_compute_workgroup_size[0];
    uint32_t wg = 1;
    while (wg * 2 <= want && wg * 2 <= cap)
        wg *= 2;
    return wg;
}

static op_shape op_shape_for(const vk_device_info *d)
{
    op_shape s;
    uint32_t sg = d->subgroup_size;
    s.subgroups = d->subgroup_in_compute && (d->subgroup_ops & VK_SGOP_BASIC) &&
                  (d->subgroup_ops & VK_SGOP_ARITHMETIC);
    bool pow2_sg = sg >= 4 && (sg & (sg - 1)) == 0 && fit_wg(d, sg) == sg;
    if (vk_device_is_lavapipe(d) && s.subgroups && pow2_sg) {
        /* lavapipe's subgroup size is fixed: a workgroup of that size is one subgroup */
        s.red_mode = RED_ONE_SG;
        s.norm_wg = s.attn_wg = s.argmax_wg = s.rope_wg = sg;
        s.attn_tile = 16 * sg;
        s.attn_heads = 8;
        s.attn_sg = sg;
        s.ew_wg = fit_wg(d, 64);
        return s;
    }
    s.red_mode = s.subgroups ? RED_SUBGROUP : RED_SHARED;
    s.norm_wg = fit_wg(d, 256);
    s.attn_wg = fit_wg(d, 256); /* streams: 8 subgroups of 32 share each head's positions */
    s.attn_tile = 2 * s.attn_wg;
    s.attn_heads = 1; /* a GPU wants many workgroups more than fewer loads */
    s.attn_sg = sg ? sg : 32; /* a smaller actual size makes the shader fall back to tiles */
    s.argmax_wg = fit_wg(d, 1024);
    s.rope_wg = fit_wg(d, 64);
    s.ew_wg = fit_wg(d, 256);
    /* q, two probability tiles, the merge row and the reduction scratch in shared memory */
    while (s.attn_tile > s.attn_wg &&
           4u * (2 * ATTN_MAX_HD + 2u * s.attn_tile + 2 * s.attn_wg) > d->max_compute_shared_memory)
        s.attn_tile /= 2;
    return s;
}

/* ---- private state ---- */

/* An attention kernel specialised to one head shape (streams algorithm). */
typedef struct attn_variant {
    uint32_t heads, kw, vw;
    vk_kernel *k;             /* created by vk_ops_lazy */
} attn_variant;

#define ATTN_VARIANTS 8
#define MAX_CREATING 32

typedef struct ops_impl {
    vk_ops pub;               /* first: vk_ops_new hands out &pub */
    op_shape shape;
    vk_kernel *attn_generic;  /* the tiled/shared-memory attention, where no variant is used */
    /* Kernel slots are filled on first use by whichever thread needs them: `lock` guards every
     * slot (pub's and these), `creating` lists the slots a thread is filling (outside the lock,
     * so different kernels compile in parallel) and `created` wakes those waiting for one. */
    pthread_mutex_t lock;
    pthread_cond_t created;
    vk_kernel **creating[MAX_CREATING];
    int n_creating;
    attn_variant attn_var[ATTN_VARIANTS];
    uint32_t n_attn_var;
} ops_impl;

static ops_impl *impl_of(vk_ops *ops)
{
    return (ops_impl *)((char *)ops - offsetof(ops_impl, pub));
}

static int creating_at(const ops_impl *im, vk_kernel **slot)
{
    for (int i = 0; i < im->n_creating; i++)
        if (im->creating[i] == slot)
            return i;
    return -1;
}

vk_status vk_ops_lazy(vk_ops *ops, vk_kernel **slot, vk_kernel_maker make, const void *arg,
                      vk_kernel **out)
{
    ops_impl *im = impl_of(ops);
    pthread_mutex_lock(&im->lock);
    while (!*slot && (creating_at(im, slot) >= 0 || im->n_creating == MAX_CREATING))
        pthread_cond_wait(&im->created, &im->lock);
    if (*slot) {
        *out = *slot;
        pthread_mutex_unlock(&im->lock);
        return VK_STATUS_OK;
    }
    im->creating[im->n_creating++] = slot;
    pthread_mutex_unlock(&im->lock);
    vk_kernel *k = NULL;
    vk_status st = make(ops, arg, &k); /* a failure leaves the slot empty: the next caller retries */
    pthread_mutex_lock(&im->lock);
    *slot = k;
    /* find it before shrinking the list: in one expression the decrement may come first (the
     * two sides are unsequenced), and the search would miss a slot that was the last entry */
    int at = creating_at(im, slot);
    im->creating[at] = im->creating[--im->n_creating];
    pthread_cond_broadcast(&im->created);
    pthread_mutex_unlock(&im->lock);
    *out = k;
    return st;
}

/* ---- lifecycle ---- */

void vk_ops_free(vk_ops *ops)
{
    if (!ops)
        return;
    ops_impl *im = impl_of(ops);
    for (uint32_t i = 0; i < im->n_attn_var; i++)
        vk_kernel_free(im->attn_var[i].k);
    vk_kernel_free(im->attn_generic);
    pthread_cond_destroy(&im->created);
    pthread_mutex_destroy(&im->lock);
    vk_kernel_free(ops->argmax);
    vk_kernel_free(ops->add);
    vk_kernel_free(ops->swiglu);
    vk_kernel_free(ops->attn);
    vk_kernel_free(ops->kv_store);
    vk_kernel_free(ops->rope);
    vk_kernel_free(ops->rms_norm);
    vk_ops_free_matmul(ops);
    free(im);
}

/* The non-matrix kernels, each made on first use with the shape of its device. */
typedef enum op_kind {
    OP_RMS_NORM, OP_ROPE, OP_KV_STORE, OP_ATTN, OP_SWIGLU, OP_ADD, OP_ARGMAX, OP_COUNT
} op_kind;

static vk_kernel **op_slot(vk_ops *ops, op_kind k)
{
    switch (k) {
    case OP_RMS_NORM: return &ops->rms_norm;
    case OP_ROPE: return &ops->rope;
    case OP_KV_STORE: return &ops->kv_store;
    case OP_ATTN: return &impl_of(ops)->attn_generic;
    case OP_SWIGLU: return &ops->swiglu;
    case OP_ADD: return &ops->add;
    default: return &ops->argmax;
    }
}

static vk_status make_op(vk_ops *ops, const void *arg, vk_kernel **out)
{
    const op_shape *sh = &impl_of(ops)->shape;
    bool sg = sh->subgroups;
    /* the generic attention: every head up to ATTN_MAX_HD in one subgroup's registers */
    uint32_t words = sg ? div_up(ATTN_MAX_HD / 2, sh->attn_sg) : 1;
    uint32_t spec[6] = { 0 };
    switch (*(const op_kind *)arg) {
    case OP_RMS_NORM:
        spec[0] = sh->norm_wg, spec[1] = sh->red_mode;
        return vk_kernel_create(ops->ctx, sg ? "rms_norm" : "rms_norm_shmem", 3,
                                sizeof(vk_push_rms_norm), spec, 2, out);
    case OP_ROPE:
        spec[0] = sh->rope_wg;
        return vk_kernel_create(ops->ctx, "rope", 4, sizeof(vk_push_rope), spec, 1, out);
    case OP_KV_STORE:
        spec[0] = sh->ew_wg;
        return vk_kernel_create(ops->ctx, "kv_store", 3, sizeof(vk_push_kv_store), spec, 1, out);
    case OP_ATTN: {
        const uint32_t attn[] = { sh->attn_wg, sh->red_mode, sh->attn_tile, sh->attn_heads,
                                  words, words };
        return vk_kernel_create(ops->ctx, sg ? "attn" : "attn_shmem", 5, sizeof(vk_push_attn),
                                attn, 6, out);
    }
    case OP_SWIGLU:
        spec[0] = sh->ew_wg;
        return vk_kernel_create(ops->ctx, "swiglu", 3, sizeof(vk_push_swiglu), spec, 1, out);
    case OP_ADD:
        spec[0] = sh->ew_wg;
        return vk_kernel_create(ops->ctx, "add", 2, sizeof(vk_push_add), spec, 1, out);
    default:
        spec[0] = sh->argmax_wg, spec[1] = sh->red_mode;
        return vk_kernel_create(ops->ctx, sg ? "argmax" : "argmax_shmem", 2,
                                sizeof(vk_push_argmax), spec, 2, out);
    }
}

static vk_status op_kernel(vk_ops *ops, op_kind k, vk_kernel **out)
{
    static const op_kind kinds[OP_COUNT] = { OP_RMS_NORM, OP_ROPE, OP_KV_STORE, OP_ATTN,
                                             OP_SWIGLU, OP_ADD, OP_ARGMAX };
    return vk_ops_lazy(ops, op_slot(ops, k), make_op, &kinds[k], out);
}

static vk_status make_attn_variant(vk_ops *ops, const void *arg, vk_kernel **out)
{
    const op_shape *sh = &impl_of(ops)->shape;
    const attn_variant *v = arg;
    const uint32_t spec[] = { sh->attn_wg, sh->red_mode, sh->attn_tile, v->heads, v->kw, v->vw };
    return vk_kernel_create(ops->ctx, "attn", 5, sizeof(vk_push_attn), spec, 6, out);
}

vk_status vk_ops_new(vk_ctx *ctx, vk_ops **out)
{
    *out = NULL;
    if (!ctx)
        return VK_STATUS_BAD_ARG;
    if (!ctx->dev)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "vk_ops_new before vk_ctx_start_device");
    ops_impl *im = calloc(1, sizeof *im);
    if (!im)
        return vk_set_error(ctx, VK_STATUS_NO_MEMORY, "out of memory for the kernel set");
    if (pthread_mutex_init(&im->lock, NULL)) {
        free(im);
        return vk_set_error(ctx, VK_STATUS_NO_MEMORY, "cannot create the kernel set's lock");
    }
    if (pthread_cond_init(&im->created, NULL)) {
        pthread_mutex_destroy(&im->lock);
        free(im);
        return vk_set_error(ctx, VK_STATUS_NO_MEMORY, "cannot create the kernel set's condition");
    }
    vk_ops *ops = &im->pub;
    ops->ctx = ctx;
    ops->lazy = true;
    ops->subgroup_size = ops_device(ctx)->subgroup_size;
    im->shape = op_shape_for(ops_device(ctx));
    *out = ops;
    return VK_STATUS_OK;
}

/* ---- argument checks ---- */

/* Handles and buffers present, and every buffer from the ops' context. */
static vk_status check_handles(vk_ops *ops, vk_seq *s, const char *op, const void *push,
                               vk_buffer *const *bufs, const char *const *names, int n)
{
    if (!ops)
        return VK_STATUS_BAD_ARG; /* no context to put a message on */
    if (!s || !push)
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG, "%s: %s is NULL", op,
                            !s ? "the sequence" : "the push-constant block");
    for (int i = 0; i < n; i++) {
        if (!bufs[i])
            return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG, "%s: buffer %s is NULL", op,
                                names[i]);
        if (bufs[i]->ctx != ops->ctx)
            return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG,
                                "%s: buffer %s belongs to another Vulkan context", op, names[i]);
    }
    return VK_STATUS_OK;
}

/* Operand `what`: `rows` rows of n elements of elem bytes, the first at element off, the next
 * ones stride elements apart, all inside buffer b. Output rows may not overlap (out). */
static vk_status check_rows(vk_ops *ops, const char *op, const char *what, const vk_buffer *b,
                            uint32_t elem, uint64_t off, uint64_t stride, uint64_t rows,
                            uint64_t n, bool out)
{
    uint64_t cap = vk_buffer_size(b) / elem;
    if (out && rows > 1 && stride < n)
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG,
                            "%s: %s rows of %llu elements are %llu apart, so they overlap", op,
                            what, (unsigned long long)n, (unsigned long long)stride);
    /* off, stride, rows and n are each below 2^32, so only the product can overflow */
    bool fits = off + n <= cap && (rows <= 1 || stride <= (cap - off - n) / (rows - 1));
    if (!fits)
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG,
                            "%s: %s spans elements %llu + (%llu rows - 1) x stride %llu + %llu, "
                            "past the end of its buffer (%llu elements of %u bytes)", op, what,
                            (unsigned long long)off, (unsigned long long)rows,
                            (unsigned long long)stride, (unsigned long long)n,
                            (unsigned long long)cap, elem);
    return VK_STATUS_OK;
}

/* The step buffer holds step[0] (first position) and step[1] (batch size). */
static vk_status check_step(vk_ops *ops, const char *op, const vk_buffer *step)
{
    if (vk_buffer_size(step) < 2 * sizeof(uint32_t))
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG,
                            "%s: the step buffer has %llu bytes; it needs 8 (position, tokens)",
                            op, (unsigned long long)vk_buffer_size(step));
    return VK_STATUS_OK;
}

static vk_status check_count(vk_ops *ops, const char *op, const char *what, uint32_t v,
                             uint32_t lo, uint32_t hi)
{
    if (v < lo || v > hi)
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG, "%s: %s = %u, allowed %u..%u", op,
                            what, v, lo, hi);
    return VK_STATUS_OK;
}

static vk_status check_even(vk_ops *ops, const char *op, const char *what, uint32_t v)
{
    if (v & 1u)
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG,
                            "%s: %s = %u is odd; f16 cache words hold two halves", op, what, v);
    return VK_STATUS_OK;
}

/* Workgroup counts within the device's limits. */
static vk_status check_grid(vk_ops *ops, const char *op, uint32_t gx, uint32_t gy)
{
    const vk_device_info *d = ops_device(ops->ctx);
    if (gx > d->max_compute_workgroup_count[0] || gy > d->max_compute_workgroup_count[1])
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG,
                            "%s: %u x %u workgroups; the device allows %u x %u", op, gx, gy,
                            d->max_compute_workgroup_count[0], d->max_compute_workgroup_count[1]);
    return VK_STATUS_OK;
}

/* ---- recording ---- */

vk_status vk_op_rms_norm(vk_ops *ops, vk_seq *s, vk_buffer *x, vk_buffer *w, vk_buffer *y,
                         const vk_push_rms_norm *p)
{
    static const char *names[] = { "x", "w", "y" };
    vk_buffer *bufs[] = { x, w, y };
    const char *op = "rms_norm";
    vk_status st = check_handles(ops, s, op, p, bufs, names, 3);
    if (st)
        return st;
    if (!isfinite(p->eps) || p->eps < 0)
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG, "%s: eps = %g", op, (double)p->eps);
    if ((st = check_count(ops, op, "n", p->n, 1, UINT32_MAX)) ||
        (st = check_count(ops, op, "rows", p->rows, 1, UINT32_MAX)) ||
        (st = check_rows(ops, op, "x", x, 4, p->x_off, p->x_stride, p->rows, p->n, false)) ||
        (st = check_rows(ops, op, "w", w, 4, p->w_off, 0, 1, p->n, false)) ||
        (st = check_rows(ops, op, "y", y, 4, p->y_off, p->y_stride, p->rows, p->n, true)))
        return st;
    /* one workgroup per row; rows beyond the x limit wrap into y (the shader unfolds them) */
    uint32_t max_x = ops_device(ops->ctx)->max_compute_workgroup_count[0];
    uint32_t gx = p->rows < max_x ? p->rows : max_x, gy = div_up(p->rows, gx);
    if ((st = check_grid(ops, op, gx, gy)))
        return st;
    vk_kernel *k;
    if ((st = op_kernel(ops, OP_RMS_NORM, &k)))
        return st;
    return vk_seq_dispatch(s, k, bufs, p, gx, gy, 1);
}

vk_status vk_op_rope(vk_ops *ops, vk_seq *s, vk_buffer *x, vk_buffer *factors, vk_buffer *step,
                     vk_buffer *cache, uint32_t n_tokens, const vk_push_rope *p)
{
    static const char *names[] = { "x", "factors", "step", "cache" };
    vk_buffer *bufs[] = { x, factors, step, cache };
    const char *op = "rope";
    vk_status st = check_handles(ops, s, op, p, bufs, names, 4);
    if (st)
        return st;
    if (p->flags & ~(uint32_t)(VK_ROPE_NEOX | VK_ROPE_FACTORS | VK_ROPE_STORE))
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG, "%s: unknown flags 0x%x", op, p->flags);
    if (!isfinite(p->freq_base) || p->freq_base <= 0 || !isfinite(p->freq_scale) ||
        p->freq_scale <= 0)
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG, "%s: freq_base = %g, freq_scale = %g; "
                            "both must be positive", op, (double)p->freq_base,
                            (double)p->freq_scale);
    if ((st = check_count(ops, op, "n_tokens", n_tokens, 1, UINT32_MAX)) ||
        (st = check_count(ops, op, "n_heads", p->n_heads, 1, UINT32_MAX)) ||
        (st = check_count(ops, op, "head_dim", p->head_dim, 2, 1u << 16)) ||
        (st = check_even(ops, op, "head_dim", p->head_dim)) ||
        (st = check_count(ops, op, "n_rot", p->n_rot, 2, p->head_dim)) ||
        (st = check_even(ops, op, "n_rot", p->n_rot)) ||
        (st = check_step(ops, op, step)))
        return st;
    uint64_t width = (uint64_t)p->n_heads * p->head_dim;
    if ((st = check_rows(ops, op, "x", x, 4, p->x_off, p->x_stride, n_tokens, width, true)))
        return st;
    if ((p->flags & VK_ROPE_FACTORS) &&
        (st = check_rows(ops, op, "factors", factors, 4, 0, 0, 1, p->n_rot / 2, false)))
        return st;
    /* the shader skips rows past the end of the cache; here at least rows 0..n_tokens-1 */
    if ((p->flags & VK_ROPE_STORE) &&
        ((st = check_even(ops, op, "cache_off", p->cache_off)) ||
         (st = check_rows(ops, op, "cache", cache, 2, p->cache_off, width, n_tokens, width,
                          true))))
        return st;
    if ((st = check_grid(ops, op, p->n_heads, n_tokens)))
        return st;
    vk_kernel *k;
    if ((st = op_kernel(ops, OP_ROPE, &k)))
        return st;
    return vk_seq_dispatch(s, k, bufs, p, p->n_heads, n_tokens, 1);
}

vk_status vk_op_kv_store(vk_ops *ops, vk_seq *s, vk_buffer *x, vk_buffer *step,
                         vk_buffer *cache, uint32_t n_tokens, const vk_push_kv_store *p)
{
    static const char *names[] = { "x", "step", "cache" };
    vk_buffer *bufs[] = { x, step, cache };
    const char *op = "kv_store";
    vk_status st = check_handles(ops, s, op, p, bufs, names, 3);
    if (st)
        return st;
    if ((st = check_count(ops, op, "n_tokens", n_tokens, 1, UINT32_MAX)) ||
        (st = check_count(ops, op, "n", p->n, 2, UINT32_MAX)) ||
        (st = check_even(ops, op, "n", p->n)) ||
        (st = check_even(ops, op, "cache_off", p->cache_off)) ||
        (st = check_step(ops, op, step)) ||
        (st = check_rows(ops, op, "x", x, 4, p->x_off, p->x_stride, n_tokens, p->n, false)) ||
        (st = check_rows(ops, op, "cache", cache, 2, p->cache_off, p->n, n_tokens, p->n, true)))
        return st;
    uint32_t gx = div_up(p->n / 2, op_shape_for(ops_device(ops->ctx)).ew_wg);
    if ((st = check_grid(ops, op, gx, n_tokens)))
        return st;
    vk_kernel *k;
    if ((st = op_kernel(ops, OP_KV_STORE, &k)))
        return st;
    return vk_seq_dispatch(s, k, bufs, p, gx, n_tokens, 1);
}

/* The attention kernel for a call: the caller's if it set ops->attn; else, on devices running
 * the streams algorithm, one specialised to this head shape (exact query heads per workgroup
 * and words per invocation, since lavapipe pays for every unused slot), made on first use and
 * kept until vk_ops_free; else the generic one, also made on first use. */
static vk_status attn_kernel(vk_ops *ops, uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim,
                             uint32_t head_dim_v, vk_kernel **out)
{
    ops_impl *im = impl_of(ops);
    const op_shape *sh = &im->shape;
    pthread_mutex_lock(&im->lock);
    *out = ops->attn;
    pthread_mutex_unlock(&im->lock);
    if (*out)
        return VK_STATUS_OK;
    if (!sh->subgroups)
        return op_kernel(ops, OP_ATTN, out);
    uint32_t group = n_head / n_head_kv, chunks = div_up(group, sh->attn_heads);
    uint32_t heads = div_up(group, chunks); /* equal chunks: 12 heads as 6 + 6, not 8 + 4 */
    uint32_t kw = div_up(head_dim / 2, sh->attn_sg), vw = div_up(head_dim_v / 2, sh->attn_sg);
    attn_variant *v = NULL;
    pthread_mutex_lock(&im->lock);
    for (uint32_t i = 0; i < im->n_attn_var && !v; i++)
        if (im->attn_var[i].heads == heads && im->attn_var[i].kw == kw && im->attn_var[i].vw == vw)
            v = &im->attn_var[i];
    if (!v && im->n_attn_var < ATTN_VARIANTS) /* past that (never, in practice): the generic */
        v = &im->attn_var[im->n_attn_var++], *v = (attn_variant){ heads, kw, vw, NULL };
    pthread_mutex_unlock(&im->lock);
    if (!v)
        return op_kernel(ops, OP_ATTN, out);
    return vk_ops_lazy(ops, &v->k, make_attn_variant, v, out);
}

vk_status vk_op_attn(vk_ops *ops, vk_seq *s, vk_buffer *q, vk_buffer *k, vk_buffer *v,
                     vk_buffer *o, vk_buffer *step, uint32_t n_tokens, const vk_push_attn *p)
{
    static const char *names[] = { "q", "k", "v", "o", "step" };
    vk_buffer *bufs[] = { q, k, v, o, step };
    const char *op = "attn";
    vk_status st = check_handles(ops, s, op, p, bufs, names, 5);
    if (st)
        return st;
    if (!isfinite(p->scale))
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG, "%s: scale = %g", op, (double)p->scale);
    if ((st = check_count(ops, op, "n_tokens", n_tokens, 1, UINT32_MAX)) ||
        (st = check_count(ops, op, "n_head_kv", p->n_head_kv, 1, UINT32_MAX)) ||
        (st = check_count(ops, op, "n_head", p->n_head, p->n_head_kv, UINT32_MAX)) ||
        (st = check_count(ops, op, "head_dim", p->head_dim, 2, ATTN_MAX_HD)) ||
        (st = check_even(ops, op, "head_dim", p->head_dim)) ||
        (st = check_count(ops, op, "head_dim_v", p->head_dim_v, 2, ATTN_MAX_HD)) ||
        (st = check_even(ops, op, "head_dim_v", p->head_dim_v)) ||
        (st = check_even(ops, op, "k_off", p->k_off)) ||
        (st = check_even(ops, op, "v_off", p->v_off)) ||
        (st = check_step(ops, op, step)))
        return st;
    if (p->n_head % p->n_head_kv)
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG,
                            "%s: n_head = %u is not a multiple of n_head_kv = %u", op, p->n_head,
                            p->n_head_kv);
    uint64_t kw = (uint64_t)p->n_head_kv * p->head_dim, vw = (uint64_t)p->n_head_kv * p->head_dim_v;
    /* the shader clamps the context to the rows the caches hold; here at least n_tokens */
    if ((st = check_rows(ops, op, "q", q, 4, p->q_off, p->q_stride, n_tokens,
                         (uint64_t)p->n_head * p->head_dim, false)) ||
        (st = check_rows(ops, op, "o", o, 4, p->o_off, p->o_stride, n_tokens,
                         (uint64_t)p->n_head * p->head_dim_v, true)) ||
        (st = check_rows(ops, op, "k cache", k, 2, p->k_off, kw, n_tokens, kw, false)) ||
        (st = check_rows(ops, op, "v cache", v, 2, p->v_off, vw, n_tokens, vw, false)) ||
        (st = check_grid(ops, op, p->n_head, n_tokens)))
        return st;
    vk_kernel *kernel;
    if ((st = attn_kernel(ops, p->n_head, p->n_head_kv, p->head_dim, p->head_dim_v, &kernel)))
        return st;
    return vk_seq_dispatch(s, kernel, bufs, p, p->n_head, n_tokens, 1);
}

vk_status vk_op_swiglu(vk_ops *ops, vk_seq *s, vk_buffer *g, vk_buffer *u, vk_buffer *o,
                       const vk_push_swiglu *p)
{
    static const char *names[] = { "g", "u", "o" };
    vk_buffer *bufs[] = { g, u, o };
    const char *op = "swiglu";
    vk_status st = check_handles(ops, s, op, p, bufs, names, 3);
    if (st)
        return st;
    if ((st = check_count(ops, op, "n", p->n, 1, UINT32_MAX)) ||
        (st = check_count(ops, op, "rows", p->rows, 1, UINT32_MAX)) ||
        (st = check_rows(ops, op, "g", g, 4, p->g_off, p->g_stride, p->rows, p->n, false)) ||
        (st = check_rows(ops, op, "u", u, 4, p->u_off, p->u_stride, p->rows, p->n, false)) ||
        (st = check_rows(ops, op, "o", o, 4, p->o_off, p->o_stride, p->rows, p->n, true)))
        return st;
    uint32_t gx = div_up(p->n, op_shape_for(ops_device(ops->ctx)).ew_wg);
    if ((st = check_grid(ops, op, gx, p->rows)))
        return st;
    vk_kernel *k;
    if ((st = op_kernel(ops, OP_SWIGLU, &k)))
        return st;
    return vk_seq_dispatch(s, k, bufs, p, gx, p->rows, 1);
}

vk_status vk_op_add(vk_ops *ops, vk_seq *s, vk_buffer *x, vk_buffer *y, const vk_push_add *p)
{
    static const char *names[] = { "x", "y" };
    vk_buffer *bufs[] = { x, y };
    const char *op = "add";
    vk_status st = check_handles(ops, s, op, p, bufs, names, 2);
    if (st)
        return st;
    if ((st = check_count(ops, op, "n", p->n, 1, UINT32_MAX)) ||
        (st = check_count(ops, op, "rows", p->rows, 1, UINT32_MAX)) ||
        (st = check_rows(ops, op, "x", x, 4, p->x_off, p->x_stride, p->rows, p->n, false)) ||
        (st = check_rows(ops, op, "y", y, 4, p->y_off, p->y_stride, p->rows, p->n, true)))
        return st;
    uint32_t gx = div_up(p->n, op_shape_for(ops_device(ops->ctx)).ew_wg);
    if ((st = check_grid(ops, op, gx, p->rows)))
        return st;
    vk_kernel *k;
    if ((st = op_kernel(ops, OP_ADD, &k)))
        return st;
    return vk_seq_dispatch(s, k, bufs, p, gx, p->rows, 1);
}

vk_status vk_op_argmax(vk_ops *ops, vk_seq *s, vk_buffer *x, vk_buffer *out,
                       const vk_push_argmax *p)
{
    static const char *names[] = { "x", "out" };
    vk_buffer *bufs[] = { x, out };
    const char *op = "argmax";
    vk_status st = check_handles(ops, s, op, p, bufs, names, 2);
    if (st)
        return st;
    if ((st = check_count(ops, op, "n", p->n, 1, UINT32_MAX)) ||
        (st = check_rows(ops, op, "x", x, 4, p->x_off, 0, 1, p->n, false)) ||
        (st = check_rows(ops, op, "out", out, 4, 0, 0, 1, 1, true)))
        return st;
    vk_kernel *k;
    if ((st = op_kernel(ops, OP_ARGMAX, &k)))
        return st;
    return vk_seq_dispatch(s, k, bufs, p, 1, 1, 1);
}

/* ---- a model's kernels, ahead and in parallel ---- */

/* Tasks: op_kind values, then OP_COUNT (the attention for need's shape), then OP_COUNT + 1 +
 * type (a matrix kernel). */
#define PREP_MAX (OP_COUNT + 1 + GGUF_T_COUNT)

typedef struct prep_run {
    vk_ops *ops;
    const vk_ops_need *need;
    int task[PREP_MAX];
    int n;
    atomic_int next;
    pthread_mutex_t lock; /* guards st and err */
    vk_status st;
    char err[1024];
} prep_run;

static void *prep_worker(void *arg)
{
    prep_run *r = arg;
    const vk_ops_need *nd = r->need;
    for (int i; (i = atomic_fetch_add(&r->next, 1)) < r->n;) {
        int t = r->task[i];
        vk_kernel *k;
        vk_status st = t < OP_COUNT ? op_kernel(r->ops, (op_kind)t, &k)
                       : t == OP_COUNT ? attn_kernel(r->ops, nd->n_head, nd->n_head_kv,
                                                     nd->head_dim, nd->head_dim_v, &k)
                                       : vk_mm_kernel(r->ops, (uint32_t)(t - OP_COUNT - 1), NULL, &k);
        if (st) { /* the message is this thread's: hand it to the caller's */
            pthread_mutex_lock(&r->lock);
            if (!r->st) {
                r->st = st;
                snprintf(r->err, sizeof r->err, "%s", vk_ctx_errmsg(r->ops->ctx));
            }
            pthread_mutex_unlock(&r->lock);
        }
    }
    return NULL;
}

vk_status vk_ops_prepare(vk_ops *ops, const vk_ops_need *need)
{
    if (need->n_head_kv == 0 || need->n_head % need->n_head_kv)
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG, "vk_ops_prepare: n_head = %u, "
                            "n_head_kv = %u", need->n_head, need->n_head_kv);
    prep_run r = { .ops = ops, .need = need };
    /* the matrix kernels first: they take longest, so they start while the rest fill in */
    for (uint32_t t = 0; t < GGUF_T_COUNT; t++)
        if (need->types[t])
            r.task[r.n++] = OP_COUNT + 1 + (int)t;
    r.task[r.n++] = OP_COUNT;
    const op_kind used[] = { OP_RMS_NORM, OP_ROPE, OP_KV_STORE, OP_SWIGLU, OP_ARGMAX };
    for (size_t i = 0; i < sizeof used / sizeof used[0]; i++)
        r.task[r.n++] = used[i];
    atomic_init(&r.next, 0);
    pthread_mutex_init(&r.lock, NULL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n_threads = cpus < 1 ? 1 : cpus > r.n ? r.n : (int)cpus;
    pthread_t th[PREP_MAX];
    int started = 0;
    while (started < n_threads - 1 && !pthread_create(&th[started], NULL, prep_worker, &r))
        started++; /* a thread that cannot start leaves its share to the others */
    prep_worker(&r);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&r.lock);
    if (r.st)
        return vk_set_error(ops->ctx, r.st, "%s", r.err);
    return VK_STATUS_OK;
}
