/* The Vulkan forward pass of a session, read top to bottom as engine/cpu_forward.c reads: per
 * layer the attention block (norm, q/k/v products, RoPE with the K cache write, V cache write,
 * attention, output product with the residual added), then the feed-forward block (norm,
 * gate/up products, SwiGLU, down product with the residual added), then the output norm, the
 * logits product and the device argmax. The whole pass is recorded once as one command
 * sequence, with barriers only where a dispatch reads what an earlier one wrote (q, k and v
 * products run together, so do gate and up), and replayed per token with the position in a
 * small step buffer.
 *
 * The token embedding is looked up on the host (dequantize one row into the mapped input
 * buffer): the host must read the sampled token anyway, and this needs no per-type gather
 * kernel. Residual adds are fused into the output projections (VK_MM_ACCUMULATE). */
#include "engine/vk_backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/quant.h"
#include "engine/vk.h"
#include "engine/vk_model.h"
#include "engine/vk_ops.h"
#include "engine/vk_push.h"

#define VK_BATCH 512

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
eng_vk_model *eng_vk_model_of(const eng_vk *v) { return v->vm; }

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
    if (!v) {
        snprintf(err, errlen, "out of memory for a Vulkan context");
        return NULL;
    }
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
    if (!row) {
        snprintf(v->err, sizeof v->err, "out of memory for an embedding row");
        return false;
    }
    bool ok = true;
    for (uint32_t t = 0; t < n && ok; t++) {
        int32_t id = tokens[t] >= 0 && (uint32_t)tokens[t] < m->hp.n_vocab ? tokens[t] : 0;
        eng_dequantize_row(m->tok_embd.type, m->tok_embd.data + (size_t)id * m->tok_embd.row_bytes,
                           row, d);
        ok = !vk_buffer_upload(v->x, (uint64_t)t * d * 4, row, (uint64_t)d * 4);
    }
    free(row);
    uint32_t step[4] = { pos, n, 0, 0 };
    if (!ok || vk_buffer_upload(v->step, 0, step, sizeof step)) {
        snprintf(v->err, sizeof v->err, "%s", vk_ctx_errmsg(v->vm->ctx));
        return false;
    }
    return true;
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
    if (n <= 0 || pos < 0 || (uint64_t)pos + (uint64_t)n > v->n_ctx) {
        snprintf(v->err, sizeof v->err, "decode of %d tokens at position %d: the context holds "
                 "%u positions", n, pos, v->n_ctx);
        return false;
    }
    uint32_t chunk = all_logits ? v->logit_rows : v->batch;
    for (uint32_t done = 0; done < (uint32_t)n; done += chunk) {
        uint32_t c = (uint32_t)n - done < chunk ? (uint32_t)n - done : chunk;
        bool last = done + c == (uint32_t)n;
        vk_seq *s = sequence_for(v, c, all_logits); /* sets v->err when it fails */
        if (!s || !stage_inputs(v, tokens + done, c, (uint32_t)pos + done))
            return false;
        vk_status st = vk_seq_submit(s);
        if (!st && all_logits)
            st = vk_buffer_download(v->logits, 0, logits + (size_t)done * nv, (uint64_t)c * nv * 4);
        else if (!st && last && logits)
            st = vk_buffer_download(v->logits, 0, logits, (uint64_t)nv * 4);
        if (st) {
            snprintf(v->err, sizeof v->err, "%s", vk_ctx_errmsg(v->vm->ctx));
            return false;
        }
    }
    return true;
}

bool eng_vk_decode_argmax(eng_vk *v, int32_t token, int pos, int32_t *next)
{
    if (pos < 0 || (uint32_t)pos >= v->n_ctx) {
        snprintf(v->err, sizeof v->err, "decode at position %d: the context holds %u positions",
                 pos, v->n_ctx);
        return false;
    }
    vk_seq *s = sequence_for(v, 1, false);
    uint32_t id;
    if (!s || !stage_inputs(v, &token, 1, (uint32_t)pos))
        return false;
    if (vk_seq_submit(s) || vk_buffer_download(v->amax, 0, &id, 4)) {
        snprintf(v->err, sizeof v->err, "%s", vk_ctx_errmsg(v->vm->ctx));
        return false;
    }
    *next = (int32_t)id;
    return true;
}

bool eng_vk_last_logits(eng_vk *v, float *logits)
{
    if (vk_buffer_download(v->logits, 0, logits, (uint64_t)v->vm->m->hp.n_vocab * 4)) {
        snprintf(v->err, sizeof v->err, "%s", vk_ctx_errmsg(v->vm->ctx));
        return false;
    }
    return true;
}

/* The caches are device-local buffers (mapped on devices that share memory with the host,
 * reached through staging copies elsewhere): read each layer's back, shift it on the host with
 * the CPU reference's code and write it again. Rare (a full context), so simplicity wins over
 * a shift kernel. */
bool eng_vk_kv_shift(eng_vk *v, int p0, int p1, int n_past)
{
    const eng_hparams *hp = &v->vm->m->hp;
    size_t kb = (size_t)v->n_ctx * hp->n_head_kv * hp->head_dim * 2;
    size_t vb = (size_t)v->n_ctx * hp->n_head_kv * hp->head_dim_v * 2;
    uint16_t *K = malloc(kb), *V = malloc(vb);
    float *inv = malloc((hp->n_rot / 2 + 1) * sizeof *inv);
    float *tmp = malloc((size_t)hp->n_head_kv * hp->head_dim * sizeof *tmp);
    bool ok = K && V && inv && tmp;
    if (!ok)
        snprintf(v->err, sizeof v->err, "out of memory for a context shift (%zu bytes of cache "
                 "per layer)", kb + vb);
    if (ok)
        eng_rope_inv(v->vm->m, v->n_ctx, inv);
    for (uint32_t l = 0; ok && l < hp->n_layer; l++) {
        ok = !vk_buffer_download(v->kc[l], 0, K, kb) && !vk_buffer_download(v->vc[l], 0, V, vb);
        if (ok)
            eng_kv_shift_layer(hp, inv, K, V, p0, p1, n_past, tmp);
        ok = ok && !vk_buffer_upload(v->kc[l], 0, K, kb) && !vk_buffer_upload(v->vc[l], 0, V, vb);
        if (!ok) /* the cache is now partly shifted: the session must start over */
            snprintf(v->err, sizeof v->err, "context shift, layer %u: %s", l,
                     vk_ctx_errmsg(v->vm->ctx));
    }
    free(tmp);
    free(inv);
    free(V);
    free(K);
    return ok;
}

