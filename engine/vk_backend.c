/* The Vulkan backend: weights to the device, per-session buffers, and the forward pass recorded
 * as one command sequence of dispatches with barriers only where a dispatch reads what an
 * earlier one wrote (q, k and v products run together, so do gate and up).
 *
 * The token embedding is looked up on the host (dequantize one row into the mapped input
 * buffer): the host must read the sampled token anyway, and this needs no per-type gather
 * kernel. Residual adds are fused into the output projections (VK_MM_ACCUMULATE). */
#include "engine/vk_backend.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cpu.h"
#include "engine/quant.h"
#include "engine/vk.h"
#include "engine/vk_ops.h"
#include "engine/vk_push.h"

#define VK_MAX_CHUNKS 16
#define VK_BATCH 512

/* ---- the process-wide device ---- */

static pthread_mutex_t dev_lock = PTHREAD_MUTEX_INITIALIZER;
static vk_ctx *dev_ctx;
static vk_ops *dev_ops;
static int dev_users;

static bool device_acquire(int index, char *err, size_t errlen)
{
    pthread_mutex_lock(&dev_lock);
    bool ok = true;
    if (!dev_ctx) {
        vk_open_opts o = { 0 };
        if (index >= 0) {
            o.has_device_index = 1;
            o.device_index = (uint32_t)index;
            o.device_origin = "--device";
        }
        char e[512];
        vk_status st = vk_ctx_open(&o, &dev_ctx, e, sizeof e);
        if (!st)
            st = vk_ctx_start_device(dev_ctx);
        if (!st)
            st = vk_ops_new(dev_ctx, &dev_ops);
        if (st) {
            snprintf(err, errlen, "Vulkan: %s", dev_ctx ? vk_ctx_errmsg(dev_ctx) : e);
            vk_ops_free(dev_ops);
            vk_ctx_close(dev_ctx);
            dev_ops = NULL;
            dev_ctx = NULL;
            ok = false;
        }
    }
    if (ok)
        dev_users++;
    pthread_mutex_unlock(&dev_lock);
    return ok;
}

/* The context stays open when its last model goes: its pipelines took seconds to compile on
 * lavapipe (an LLVM build per kernel), and the next model (a comparison opens several one after
 * another) reuses them. It lives until the process ends. */
static void device_release(void)
{
    pthread_mutex_lock(&dev_lock);
    dev_users--;
    pthread_mutex_unlock(&dev_lock);
}

unsigned eng_vk_validation_messages(const char **first)
{
    pthread_mutex_lock(&dev_lock);
    unsigned n = dev_ctx ? vk_ctx_validation_count(dev_ctx) : 0;
    if (first)
        *first = dev_ctx && n ? vk_ctx_validation_first(dev_ctx) : "";
    pthread_mutex_unlock(&dev_lock);
    return n;
}

/* ---- weights ---- */

/* A weight on the device: one buffer, or row ranges when it exceeds maxStorageBufferRange. */
typedef struct vk_w {
    const eng_weight *w;
    int n;
    vk_buffer *buf[VK_MAX_CHUNKS];
    uint32_t row0[VK_MAX_CHUNKS], rows[VK_MAX_CHUNKS];
} vk_w;

typedef struct vk_layer_w {
    vk_w attn_norm, wq, wk, wv, wqkv, bq, bk, bv, q_norm, k_norm, wo;
    vk_w ffn_norm, w_gate, w_up, w_gate_up, w_down;
} vk_layer_w;

struct eng_vk_model {
    const eng_model *m;
    vk_ctx *ctx;
    vk_ops *ops;
    vk_w output_norm, output;
    vk_w rope_freqs, rope_short, rope_long;  /* RoPE frequency divisors (Llama 3; Phi-3) */
    vk_layer_w *layers;
    uint64_t bytes;
    char device[300];
};

static void w_free(vk_w *w)
{
    for (int i = 0; i < w->n; i++)
        vk_buffer_free(w->buf[i]);
    memset(w, 0, sizeof *w);
}

/* Rows [r, r + n) of src into buf in the layout the matrix kernels read (vk_mm_pack_rows),
 * through a bounded bounce buffer. */
static bool w_pack_upload(eng_vk_model *vm, vk_buffer *buf, const eng_weight *src, int64_t r,
                          int64_t n, uint64_t out_row)
{
    uint32_t K = (uint32_t)src->ne0;
    int64_t piece = (int64_t)((16u << 20) / out_row);
    piece = piece < 1 ? 1 : piece;
    uint8_t *tmp = malloc((size_t)((n < piece ? n : piece) * out_row));
    bool ok = tmp != NULL;
    for (int64_t i = 0; ok && i < n; i += piece) {
        int64_t k = n - i < piece ? n - i : piece;
        vk_mm_pack_rows(vm->ops, src->type, K, (uint32_t)k,
                        src->data + (size_t)(r + i) * src->row_bytes, tmp);
        ok = !vk_buffer_upload(buf, (uint64_t)i * out_row, tmp, (uint64_t)k * out_row);
    }
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
        if (vk_buffer_create_device(vm->ctx, (bytes + 3) & ~3ull, &dst->buf[i]) ||
            !w_pack_upload(vm, dst->buf[i], src, r, n, out_row)) {
            snprintf(err, errlen, "uploading '%.*s': %s", (int)src->t->name.len,
                     src->t->name.ptr, vk_ctx_errmsg(vm->ctx));
            return false;
        }
        dst->row0[i] = (uint32_t)r;
        dst->rows[i] = (uint32_t)n;
        dst->n++;
        vm->bytes += bytes;
    }
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
    if (vm->ctx)
        device_release();
    free(vm);
}

/* Every matrix type needs a kernel, and the whole model must fit the device's memory. */
static bool check_fit(eng_vk_model *vm, char *err, size_t errlen)
{
    const eng_model *m = vm->m;
    const vk_device_info *d = vk_ctx_device_info(vm->ctx, vk_ctx_choice(vm->ctx)->index);
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
    if (!vm->layers)
        return false;
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

bool eng_vk_model_new(const eng_model *m, int device_index, eng_vk_model **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    eng_vk_model *vm = calloc(1, sizeof *vm);
    if (!vm || !device_acquire(device_index, err, errlen)) {
        if (vm)
            snprintf(vm->device, 1, "%s", "");
        free(vm);
        return false;
    }
    vm->m = m;
    vm->ctx = dev_ctx;
    vm->ops = dev_ops;
    const vk_device_info *d = vk_ctx_device_info(vm->ctx, vk_ctx_choice(vm->ctx)->index);
    snprintf(vm->device, sizeof vm->device, "%s (%s)", d->name,
             vk_device_is_lavapipe(d) ? "lavapipe, CPU" : vk_device_type_str(d->type));
    if (!check_fit(vm, err, errlen) || !upload_layers(vm, err, errlen) ||
        !w_upload(vm, &vm->output_norm, &m->output_norm, err, errlen) ||
        !w_upload(vm, &vm->output, &m->output, err, errlen) ||
        !w_upload(vm, &vm->rope_freqs, &m->rope_freqs, err, errlen) ||
        !w_upload(vm, &vm->rope_short, &m->rope_short, err, errlen) ||
        !w_upload(vm, &vm->rope_long, &m->rope_long, err, errlen)) {
        eng_vk_model_free(vm);
        return false;
    }
    *out = vm;
    return true;
}

const char *eng_vk_model_device(const eng_vk_model *vm) { return vm->device; }
uint64_t eng_vk_model_weight_bytes(const eng_vk_model *vm) { return vm->bytes; }

/* ---- sessions ---- */

struct eng_vk {
    eng_vk_model *vm;
    uint32_t n_ctx, batch;          /* batch: tokens per recorded prompt pass */
    uint32_t logit_rows;            /* logits rows the logits buffer holds */
    vk_buffer **kc, **vc;           /* (n_layer) f16 caches, (n_ctx, kv width) each */
    vk_buffer *x, *xb, *q, *k, *v, *att, *hb, *hb2, *logits, *step, *amax;
    const vk_w *factors;            /* RoPE divisors for this context length, or NULL */
    vk_seq *seq_decode, *seq_batch;
    int batch_n, batch_all;         /* what seq_batch holds: -1 = nothing recorded */
    bool decode_recorded, decode_argmax;
    uint64_t kv_bytes, scratch_bytes;
    char err[512];
};

const char *eng_vk_errmsg(const eng_vk *v) { return v->err; }
uint64_t eng_vk_kv_bytes(const eng_vk *v) { return v->kv_bytes; }
uint64_t eng_vk_scratch_bytes(const eng_vk *v) { return v->scratch_bytes; }

void eng_vk_free(eng_vk *v)
{
    if (!v)
        return;
    vk_seq_free(v->seq_decode);
    vk_seq_free(v->seq_batch);
    for (uint32_t l = 0; l < v->vm->m->hp.n_layer; l++) {
        if (v->kc)
            vk_buffer_free(v->kc[l]);
        if (v->vc)
            vk_buffer_free(v->vc[l]);
    }
    free(v->kc);
    free(v->vc);
    vk_buffer *bufs[] = { v->x, v->xb, v->q, v->k, v->v, v->att, v->hb, v->hb2, v->logits,
                          v->step, v->amax };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        vk_buffer_free(bufs[i]);
    free(v);
}

/* Activations and caches live in device-local memory; only what the host writes or reads per
 * token (input embeddings, the step values, logits, the argmax) is host-visible. */
static bool buf(eng_vk *v, vk_buffer **b, uint64_t bytes, uint64_t *acct)
{
    *acct += bytes;
    return vk_buffer_create_device(v->vm->ctx, bytes ? bytes : 4, b) == VK_STATUS_OK;
}

static bool host_buf(eng_vk *v, vk_buffer **b, uint64_t bytes, uint64_t *acct)
{
    *acct += bytes;
    return vk_buffer_create(v->vm->ctx, bytes ? bytes : 4, b) == VK_STATUS_OK;
}

eng_vk *eng_vk_new(eng_vk_model *vm, uint32_t n_ctx, char *err, size_t errlen)
{
    const eng_hparams *hp = &vm->m->hp;
    eng_vk *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->vm = vm;
    v->n_ctx = n_ctx;
    v->batch = VK_BATCH;
    v->batch_n = -1;
    uint64_t range = vk_ctx_device_info(vm->ctx, vk_ctx_choice(vm->ctx)->index)->max_storage_buffer_range;
    v->logit_rows = (uint32_t)(range / ((uint64_t)hp->n_vocab * 4));
    if (v->logit_rows > v->batch)
        v->logit_rows = v->batch;
    uint64_t B = v->batch, kw = (uint64_t)hp->n_head_kv * hp->head_dim;
    uint64_t vw = (uint64_t)hp->n_head_kv * hp->head_dim_v;
    v->kc = calloc(hp->n_layer, sizeof *v->kc);
    v->vc = calloc(hp->n_layer, sizeof *v->vc);
    bool ok = v->kc && v->vc;
    for (uint32_t l = 0; ok && l < hp->n_layer; l++)
        ok = buf(v, &v->kc[l], (uint64_t)n_ctx * kw * 2, &v->kv_bytes) &&
             buf(v, &v->vc[l], (uint64_t)n_ctx * vw * 2, &v->kv_bytes);
    uint64_t *sc = &v->scratch_bytes;
    ok = ok && host_buf(v, &v->x, B * hp->n_embd * 4, sc) && buf(v, &v->xb, B * hp->n_embd * 4, sc) &&
         buf(v, &v->q, B * hp->n_head * hp->head_dim * 4, sc) && buf(v, &v->k, B * kw * 4, sc) &&
         buf(v, &v->v, B * vw * 4, sc) && buf(v, &v->att, B * hp->n_head * hp->head_dim_v * 4, sc) &&
         buf(v, &v->hb, B * hp->n_ff * 4, sc) && buf(v, &v->hb2, B * hp->n_ff * 4, sc) &&
         host_buf(v, &v->logits, (uint64_t)v->logit_rows * hp->n_vocab * 4, sc) &&
         host_buf(v, &v->step, 16, sc) && host_buf(v, &v->amax, 16, sc);
    uint32_t per_layer = 20, total = per_layer * hp->n_layer + 4 + 2 * VK_MAX_CHUNKS;
    ok = ok && !vk_seq_new(vm->ctx, total, &v->seq_decode) && !vk_seq_new(vm->ctx, total, &v->seq_batch);
    if (!ok) {
        snprintf(err, errlen, "Vulkan context of %u positions: %s", n_ctx, vk_ctx_errmsg(vm->ctx));
        eng_vk_free(v);
        return NULL;
    }
    v->factors = vm->rope_freqs.n ? &vm->rope_freqs : NULL;
    if (vm->rope_short.n)
        v->factors = n_ctx > hp->rope_orig_ctx && vm->rope_long.n ? &vm->rope_long : &vm->rope_short;
    return v;
}

/* ---- recording the forward pass ---- */

typedef struct mm_args {
    vk_buffer *x, *y;
    uint32_t x_off, x_stride, y_off, y_stride, n, flags;
    const vk_w *bias;
} mm_args;

/* Rows [from, from + count) of weight w, through every buffer chunk they touch, into Y rows
 * starting at 0. */
static bool mm(eng_vk *v, vk_seq *s, const vk_w *w, uint32_t from, uint32_t count,
               const mm_args *a)
{
    for (int c = 0; c < w->n; c++) {
        uint32_t lo = w->row0[c] > from ? w->row0[c] : from;
        uint32_t hi = w->row0[c] + w->rows[c] < from + count ? w->row0[c] + w->rows[c] : from + count;
        if (lo >= hi)
            continue;
        vk_push_mul_mat p = {
            .K = (uint32_t)w->w->ne0, .M = hi - lo, .N = a->n, .w_row0 = lo - w->row0[c],
            .x_off = a->x_off, .x_stride = a->x_stride, .y_off = a->y_off,
            .y_stride = a->y_stride, .y_row0 = lo - from, .b_off = lo - from,
            .flags = a->flags | (a->bias && a->bias->n ? VK_MM_BIAS : 0),
        };
        vk_buffer *b = a->bias && a->bias->n ? a->bias->buf[0] : a->y;
        if (vk_op_mul_mat(v->vm->ops, s, w->w->type, w->buf[c], a->x, a->y, b, &p)) {
            snprintf(v->err, sizeof v->err, "%s", vk_ctx_errmsg(v->vm->ctx));
            return false;
        }
    }
    return true;
}

static bool norm(eng_vk *v, vk_seq *s, vk_buffer *x, vk_buffer *y, const vk_w *w, uint32_t n,
                 uint32_t rows, uint32_t x_off, uint32_t stride)
{
    vk_push_rms_norm p = { n, rows, x_off, stride, 0, stride, 0, v->vm->m->hp.rms_eps };
    if (vk_op_rms_norm(v->vm->ops, s, x, w->buf[0], y, &p)) {
        snprintf(v->err, sizeof v->err, "%s", vk_ctx_errmsg(v->vm->ctx));
        return false;
    }
    return true;
}

/* q, k, v: separate matrices or phi3's fused one (three row ranges of one buffer). */
static bool rec_qkv(eng_vk *v, vk_seq *s, const vk_layer_w *L, uint32_t n)
{
    const eng_hparams *hp = &v->vm->m->hp;
    uint32_t d = hp->n_embd, nq = hp->n_head * hp->head_dim, nk = hp->n_head_kv * hp->head_dim;
    uint32_t nv = hp->n_head_kv * hp->head_dim_v;
    mm_args aq = { v->xb, v->q, 0, d, 0, nq, n, 0, &L->bq };
    mm_args ak = { v->xb, v->k, 0, d, 0, nk, n, 0, &L->bk };
    mm_args av = { v->xb, v->v, 0, d, 0, nv, n, 0, &L->bv };
    if (L->wqkv.n)
        return mm(v, s, &L->wqkv, 0, nq, &aq) && mm(v, s, &L->wqkv, nq, nk, &ak) &&
               mm(v, s, &L->wqkv, nq + nk, nv, &av);
    return mm(v, s, &L->wq, 0, nq, &aq) && mm(v, s, &L->wk, 0, nk, &ak) &&
           mm(v, s, &L->wv, 0, nv, &av);
}

static bool rec_attention(eng_vk *v, vk_seq *s, uint32_t l, uint32_t n)
{
    const eng_hparams *hp = &v->vm->m->hp;
    const vk_layer_w *L = &v->vm->layers[l];
    vk_ops *ops = v->vm->ops;
    uint32_t d = hp->n_embd, hd = hp->head_dim, nq = hp->n_head * hd, nk = hp->n_head_kv * hd;
    uint32_t nv = hp->n_head_kv * hp->head_dim_v;
    if (!norm(v, s, v->x, v->xb, &L->attn_norm, d, n, 0, d))
        return false;
    vk_seq_barrier(s);
    if (!rec_qkv(v, s, L, n))
        return false;
    vk_seq_barrier(s);
    if (L->q_norm.n && (!norm(v, s, v->q, v->q, &L->q_norm, hd, n * hp->n_head, 0, hd) ||
                        !norm(v, s, v->k, v->k, &L->k_norm, hd, n * hp->n_head_kv, 0, hd)))
        return false;
    if (L->q_norm.n)
        vk_seq_barrier(s);
    uint32_t fl = (hp->rope_neox ? VK_ROPE_NEOX : 0) | (v->factors ? VK_ROPE_FACTORS : 0);
    vk_buffer *fb = v->factors ? v->factors->buf[0] : v->q;
    vk_push_rope rq = { hp->n_head, hd, hp->n_rot, 0, nq, 0, fl, hp->rope_base, hp->rope_freq_scale, { 0 } };
    vk_push_rope rk = { hp->n_head_kv, hd, hp->n_rot, 0, nk, 0, fl | VK_ROPE_STORE, hp->rope_base,
                        hp->rope_freq_scale, { 0 } };
    vk_push_kv_store kv = { nv, 0, nv, 0 };
    vk_push_attn pa = { hp->n_head, hp->n_head_kv, hd, hp->head_dim_v, 0, nq,
                        0, hp->n_head * hp->head_dim_v, 0, 0, 1.0f / sqrtf((float)hd), 0 };
    if (vk_op_rope(ops, s, v->q, fb, v->step, v->kc[l], n, &rq) ||
        vk_op_rope(ops, s, v->k, fb, v->step, v->kc[l], n, &rk) ||
        vk_op_kv_store(ops, s, v->v, v->step, v->vc[l], n, &kv))
        goto fail;
    vk_seq_barrier(s);
    if (vk_op_attn(ops, s, v->q, v->kc[l], v->vc[l], v->att, v->step, n, &pa))
        goto fail;
    vk_seq_barrier(s);
    mm_args ao = { v->att, v->x, 0, hp->n_head * hp->head_dim_v, 0, d, n, VK_MM_ACCUMULATE, NULL };
    if (!mm(v, s, &L->wo, 0, d, &ao))
        return false;
    vk_seq_barrier(s);
    (void)nv;
    return true;
fail:
    snprintf(v->err, sizeof v->err, "%s", vk_ctx_errmsg(v->vm->ctx));
    return false;
}

static bool rec_ffn(eng_vk *v, vk_seq *s, uint32_t l, uint32_t n)
{
    const eng_hparams *hp = &v->vm->m->hp;
    const vk_layer_w *L = &v->vm->layers[l];
    uint32_t d = hp->n_embd, ff = hp->n_ff;
    if (!norm(v, s, v->x, v->xb, &L->ffn_norm, d, n, 0, d))
        return false;
    vk_seq_barrier(s);
    mm_args ag = { v->xb, v->hb, 0, d, 0, ff, n, 0, NULL };
    mm_args au = { v->xb, v->hb2, 0, d, 0, ff, n, 0, NULL };
    bool ok = L->w_gate_up.n ? mm(v, s, &L->w_gate_up, 0, ff, &ag) && mm(v, s, &L->w_gate_up, ff, ff, &au)
                             : mm(v, s, &L->w_gate, 0, ff, &ag) && mm(v, s, &L->w_up, 0, ff, &au);
    if (!ok)
        return false;
    vk_seq_barrier(s);
    vk_push_swiglu sw = { ff, n, 0, ff, 0, ff, 0, ff };
    if (vk_op_swiglu(v->vm->ops, s, v->hb, v->hb2, v->hb, &sw)) {
        snprintf(v->err, sizeof v->err, "%s", vk_ctx_errmsg(v->vm->ctx));
        return false;
    }
    vk_seq_barrier(s);
    mm_args ad = { v->hb, v->x, 0, ff, 0, d, n, VK_MM_ACCUMULATE, NULL };
    if (!mm(v, s, &L->w_down, 0, d, &ad))
        return false;
    vk_seq_barrier(s);
    return true;
}

static bool record(eng_vk *v, vk_seq *s, uint32_t n, bool all_logits)
{
    const eng_hparams *hp = &v->vm->m->hp;
    uint32_t d = hp->n_embd, rows = all_logits ? n : 1;
    if (vk_seq_begin(s))
        goto fail;
    for (uint32_t l = 0; l < hp->n_layer; l++)
        if (!rec_attention(v, s, l, n) || !rec_ffn(v, s, l, n))
            return false;
    if (!norm(v, s, v->x, v->xb, &v->vm->output_norm, d, rows, all_logits ? 0 : (n - 1) * d, d))
        return false;
    vk_seq_barrier(s);
    mm_args ao = { v->xb, v->logits, 0, d, 0, hp->n_vocab, rows, 0, NULL };
    if (!mm(v, s, &v->vm->output, 0, hp->n_vocab, &ao))
        return false;
    vk_seq_barrier(s);
    vk_push_argmax am = { hp->n_vocab, (rows - 1) * hp->n_vocab, { 0 } };
    if (vk_op_argmax(v->vm->ops, s, v->logits, v->amax, &am) || vk_seq_end(s))
        goto fail;
    return true;
fail:
    snprintf(v->err, sizeof v->err, "%s", vk_ctx_errmsg(v->vm->ctx));
    return false;
}

/* Embeddings of the batch into x (dequantized on the host) and the step values. */
static bool stage_inputs(eng_vk *v, const int32_t *tokens, uint32_t n, uint32_t pos)
{
    const eng_model *m = v->vm->m;
    uint32_t d = m->hp.n_embd;
    float *row = malloc((size_t)d * sizeof *row);
    if (!row)
        return false;
    bool ok = true;
    for (uint32_t t = 0; t < n && ok; t++) {
        int32_t id = tokens[t] >= 0 && (uint32_t)tokens[t] < m->hp.n_vocab ? tokens[t] : 0;
        eng_dequantize_row(m->tok_embd.type, m->tok_embd.data + (size_t)id * m->tok_embd.row_bytes,
                           row, d);
        ok = !vk_buffer_upload(v->x, (uint64_t)t * d * 4, row, (uint64_t)d * 4);
    }
    free(row);
    uint32_t step[4] = { pos, n, 0, 0 };
    return ok && !vk_buffer_upload(v->step, 0, step, sizeof step);
}

/* The recorded sequence for a batch of n (the decode one is kept for n = 1). */
static vk_seq *sequence_for(eng_vk *v, uint32_t n, bool all_logits)
{
    if (n == 1 && !all_logits) {
        if (!v->decode_recorded && !record(v, v->seq_decode, 1, false))
            return NULL;
        v->decode_recorded = true;
        return v->seq_decode;
    }
    if (v->batch_n != (int)n || v->batch_all != all_logits) {
        v->batch_n = -1;
        if (!record(v, v->seq_batch, n, all_logits))
            return NULL;
        v->batch_n = (int)n;
        v->batch_all = all_logits;
    }
    return v->seq_batch;
}

bool eng_vk_decode(eng_vk *v, const int32_t *tokens, int n, int pos, float *logits,
                   bool all_logits)
{
    uint32_t nv = v->vm->m->hp.n_vocab;
    if (n <= 0 || pos < 0 || (uint64_t)pos + (uint64_t)n > v->n_ctx)
        return false;
    uint32_t chunk = all_logits ? v->logit_rows : v->batch;
    for (uint32_t done = 0; done < (uint32_t)n; done += chunk) {
        uint32_t c = (uint32_t)n - done < chunk ? (uint32_t)n - done : chunk;
        bool last = done + c == (uint32_t)n;
        vk_seq *s = sequence_for(v, c, all_logits);
        if (!s || !stage_inputs(v, tokens + done, c, (uint32_t)pos + done) || vk_seq_submit(s)) {
            if (s)
                snprintf(v->err, sizeof v->err, "%s", vk_ctx_errmsg(v->vm->ctx));
            return false;
        }
        if (all_logits)
            vk_buffer_download(v->logits, 0, logits + (size_t)done * nv, (uint64_t)c * nv * 4);
        else if (last && logits)
            vk_buffer_download(v->logits, 0, logits, (uint64_t)nv * 4);
    }
    return true;
}

bool eng_vk_decode_argmax(eng_vk *v, int32_t token, int pos, int32_t *next)
{
    if (pos < 0 || (uint32_t)pos >= v->n_ctx)
        return false;
    vk_seq *s = sequence_for(v, 1, false);
    uint32_t id;
    if (!s || !stage_inputs(v, &token, 1, (uint32_t)pos) || vk_seq_submit(s) ||
        vk_buffer_download(v->amax, 0, &id, 4))
        return false;
    *next = (int32_t)id;
    return true;
}

bool eng_vk_last_logits(eng_vk *v, float *logits)
{
    return !vk_buffer_download(v->logits, 0, logits, (uint64_t)v->vm->m->hp.n_vocab * 4);
}

/* The caches are host-visible: shift them on the host with the CPU reference's code. */
void eng_vk_kv_shift(eng_vk *v, int p0, int p1, int n_past)
{
    const eng_hparams *hp = &v->vm->m->hp;
    size_t kb = (size_t)v->n_ctx * hp->n_head_kv * hp->head_dim * 2;
    size_t vb = (size_t)v->n_ctx * hp->n_head_kv * hp->head_dim_v * 2;
    uint16_t *K = malloc(kb), *V = malloc(vb);
    float *inv = malloc((hp->n_rot / 2 + 1) * sizeof *inv);
    float *tmp = malloc((size_t)hp->n_head_kv * hp->head_dim * sizeof *tmp);
    if (K && V && inv && tmp) {
        eng_rope_inv(v->vm->m, v->n_ctx, inv);
        for (uint32_t l = 0; l < hp->n_layer; l++) {
            vk_buffer_download(v->kc[l], 0, K, kb);
            vk_buffer_download(v->vc[l], 0, V, vb);
            eng_kv_shift_layer(hp, inv, K, V, p0, p1, n_past, tmp);
            vk_buffer_upload(v->kc[l], 0, K, kb);
            vk_buffer_upload(v->vc[l], 0, V, vb);
        }
    }
    free(tmp);
    free(inv);
    free(V);
    free(K);
}

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
double eng_vk_read_gbps(eng_vk *v)
{
    vk_ctx *ctx = v->vm->ctx;
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
