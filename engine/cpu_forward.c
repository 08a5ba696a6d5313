/* The CPU reference forward pass, written to be read top to bottom like llama2.c's forward():
 * embed -> for each layer (RMSNorm, q/k/v, RoPE, f16 KV cache, causal attention, output
 * projection, RMSNorm, SwiGLU feed-forward) -> final norm -> logits. Prompts run in chunks of
 * up to CPU_CHUNK tokens so a weight row is dequantized once per chunk, not once per token;
 * each matrix product's rows are split into tasks for the process-wide pool (engine/pool.h).
 *
 * Two ways to multiply, chosen when the context is made. The exact path (SIZEUP_CPU_ISA=generic)
 * keeps float32 activations and dequantizes weight rows: the reference the Vulkan engine is
 * tested against. The fast path (the default where the CPU has AVX2) does what llama.cpp's CPU
 * backend does: each product's input rows are quantized once to 8 bits per element, and every
 * weight row is multiplied with them by the integer SIMD kernels of engine/cpu_kernels.h; a task
 * owns a range of weight rows and passes each row over all the chunk's tokens while it is in
 * L1, so a prompt reads the weights once per chunk. Attention runs as (token, head) tasks. */
#include "engine/cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu_kernels.h"
#include "engine/gguf.h"
#include "engine/pool.h"
#include "engine/quant.h"

#define CPU_CHUNK 32

struct eng_cpu {
    const eng_model *m;
    uint32_t n_ctx;
    int n_threads;                /* tasks a product is split into: <= eng_pool_threads() */
    uint16_t *k_cache, *v_cache;  /* (n_layer, n_ctx, n_head_kv*head_dim[_v]) f16 */
    float *x, *xb, *q, *k, *v;    /* (CPU_CHUNK, width) activations */
    float *att, *hb, *hb2, *qkv;  /* att (CPU_CHUNK, n_head*hd_v); hb/hb2 (CPU_CHUNK, n_ff) */
    float *scores;                /* (n_threads, n_ctx) one row per attention task */
    float *rope_inv;              /* (n_rot/2) inverse frequencies, factors applied */
    float *rowbuf;                /* (n_threads, row_max) dequantized weight rows, one per task */
    size_t row_max;
    cpuk_isa isa;                 /* CPUK_GENERIC: the exact path; else the fast one */
    cpuk_attend_fn attend;        /* attention on the fast path (f16 keys and values) */
    uint8_t *xq;                  /* (CPU_CHUNK, xq_stride) quantized product inputs */
    size_t xq_stride;
    cpuk_act xq_act;              /* the form xq holds now; CPUK_ACT_COUNT when stale */
};

/* ---- small numeric helpers ---- */

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float s = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++)
        o[i] = x[i] * s * w[i];
}

static float dot(const float *a, const float *b, int64_t n)
{
    float s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static const float *vec(const eng_weight *w)
{
    return (const float *)w->data; /* 1-D weights are F32 (checked at load) */
}

/* ---- y = W x for a chunk of tokens, rows split across the process's thread pool ---- */

typedef struct mm_job {
    eng_cpu *c;
    const eng_weight *w;
    const float *x;     /* (n, w->ne0) */
    float *y;           /* (n, ldy), written at columns [0, ne1) */
    int n, ldy;
} mm_job;

/* Rows [r0, r1) of one task. Each row's sum is computed the same way whatever the split, so the
 * result does not depend on the thread count. Scratch is the task's, not the thread's: a task
 * runs on whichever pool thread takes it. */
static void mm_part(void *arg, int task, int n_tasks)
{
    mm_job *j = arg;
    const eng_weight *w = j->w;
    int64_t r0 = w->ne1 * task / n_tasks, r1 = w->ne1 * (task + 1) / n_tasks;
    float *row = j->c->rowbuf + (size_t)task * j->c->row_max;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *src = w->data + (size_t)r * w->row_bytes;
        if (j->n == 1) {
            j->y[r] = eng_vec_dot_f32(w->type, src, j->x, w->ne0);
            continue;
        }
        eng_dequantize_row(w->type, src, row, w->ne0);
        for (int t = 0; t < j->n; t++)
            j->y[(size_t)t * j->ldy + r] = dot(row, j->x + (size_t)t * w->ne0, w->ne0);
    }
}

/* One matrix of a fast product: its rows' kernels and where its outputs go. */
typedef struct fast_mat {
    const eng_weight *w;
    cpuk_dot_fn dot;
    cpuk_dot4_fn dot4;
    cpuk_gemm8_fn gemm8;
    float *y;           /* (n, ldy), written at columns [0, w->ne1) */
    int ldy;
} fast_mat;

/* Up to three matrices with the same input (q, k, v; gate, up) in one job: their rows are split
 * across the tasks as one list, so a token's three products cost one hand-off to the pool, not
 * three (generation makes ~200 of them a token). */
typedef struct fast_job {
    fast_mat mat[3];
    int n_mat;
    int64_t rows;       /* the matrices' rows together */
    cpuk_act act;       /* the input form every matrix's kernel takes */
    const float *x;     /* (n, ne0) */
    const uint8_t *xq;  /* (n, stride) x in that form */
    size_t stride;
    int n;
} fast_job;

static void fast_quantize_part(void *arg, int task, int n_tasks)
{
    fast_job *j = arg;
    int64_t ne0 = j->mat[0].w->ne0;
    for (int t = j->n * task / n_tasks; t < j->n * (task + 1) / n_tasks; t++)
        cpuk_quantize(j->act, j->x + (size_t)t * ne0, (uint8_t *)j->xq + t * j->stride, ne0);
}

/* Rows [r0, r1) of one matrix: each weight row meets every token while it is in L1. */
static void fast_rows(const fast_job *j, const fast_mat *m, int64_t r0, int64_t r1)
{
    const eng_weight *w = m->w;
    /* eight rows at a time where the type has such a kernel and there are tokens to share it */
    for (; m->gemm8 && j->n >= 2 && r0 + 8 <= r1; r0 += 8)
        m->gemm8(w->data + (size_t)r0 * w->row_bytes, w->row_bytes, w->ne0, j->xq, j->stride,
                 j->n, m->y + r0, (size_t)m->ldy);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = w->data + (size_t)r * w->row_bytes;
        int t = 0;
        for (float o[4]; m->dot4 && t + 4 <= j->n; t += 4) {
            m->dot4(row, j->xq + t * j->stride, j->stride, w->ne0, o);
            for (int i = 0; i < 4; i++)
                m->y[(size_t)(t + i) * m->ldy + r] = o[i];
        }
        for (; t < j->n; t++)
            m->y[(size_t)t * m->ldy + r] = m->dot(row, j->xq + t * j->stride, w->ne0);
    }
}

/* A task's share of the rows of all the job's matrices. A row's sum does not depend on which
 * task computes it, so neither does the result on the split. */
static void fast_part(void *arg, int task, int n_tasks)
{
    fast_job *j = arg;
    int64_t g0 = j->rows * task / n_tasks, g1 = j->rows * (task + 1) / n_tasks, base = 0;
    for (int i = 0; i < j->n_mat; base += j->mat[i++].w->ne1) {
        int64_t a = g0 > base ? g0 : base, b = g1 < base + j->mat[i].w->ne1 ? g1 : base + j->mat[i].w->ne1;
        if (a < b)
            fast_rows(j, &j->mat[i], a - base, b - base);
    }
}

/* The fast product of n_mat matrices with input x (n rows). same_input: x is the input of the
 * previous product too, so its quantized form can be reused when the kernels want the same form.
 * Returns false (nothing done) when the matrices' kernels want different input forms. */
static bool matmul_fast_group(eng_cpu *c, const eng_weight *const *ws, float *const *ys,
                              const int *ldys, int n_mat, const float *x, int n, bool same_input)
{
    fast_job job = { .n_mat = n_mat, .x = x, .xq = c->xq, .stride = c->xq_stride, .n = n };
    for (int i = 0; i < n_mat; i++) {
        cpuk_kernel k;
        cpuk_kernel_for(c->isa, ws[i]->type, &k); /* every loaded type has one (checked at load) */
        if (i > 0 && k.act != job.act)
            return false;
        job.act = k.act;
        job.mat[i] = (fast_mat){ ws[i], k.dot, k.dot4, k.gemm8, ys[i], ldys[i] };
        job.rows += ws[i]->ne1;
    }
    if (job.act == CPUK_ACT_F32) {
        job.xq = (const uint8_t *)x;
        job.stride = (size_t)ws[0]->ne0 * sizeof(float);
    } else if (!same_input || c->xq_act != job.act) {
        eng_pool_run(fast_quantize_part, &job, n > 1 ? c->n_threads : 1);
        c->xq_act = job.act;
    }
    int64_t work = ws[0]->ne0 * job.rows * n;
    /* more tasks than threads: the pool hands them out as threads free up, which evens out a
     * core that is busy with something else */
    int n_tasks = work < (1 << 16) ? 1 : c->n_threads * (work < (1 << 20) ? 1 : 4);
    eng_pool_run(fast_part, &job, n_tasks);
    return true;
}

static void matmul_fast(eng_cpu *c, const eng_weight *w, const float *x, float *y, int n, int ldy,
                        bool same_input)
{
    matmul_fast_group(c, &w, &y, &ldy, 1, x, n, same_input);
}

static void matmul(eng_cpu *c, const eng_weight *w, const float *x, float *y, int n, int ldy)
{
    if (c->isa != CPUK_GENERIC) {
        matmul_fast(c, w, x, y, n, ldy, false);
        return;
    }
    mm_job job = { c, w, x, y, n, ldy };
    /* splitting only pays off when there is enough work per call */
    int n_tasks = (int64_t)w->ne0 * w->ne1 * n >= (1 << 16) ? c->n_threads : 1;
    eng_pool_run(mm_part, &job, n_tasks);
}

/* A product whose input is the previous product's input. */
static void matmul_again(eng_cpu *c, const eng_weight *w, const float *x, float *y, int n, int ldy)
{
    if (c->isa != CPUK_GENERIC)
        matmul_fast(c, w, x, y, n, ldy, true);
    else
        matmul(c, w, x, y, n, ldy);
}

/* Products sharing the input x, which rmsnorm_rows may have quantized already: one pool job on
 * the fast path where the kernels take the same input form, else one product after another. */
static void matmul_same_input(eng_cpu *c, const eng_weight *const *ws, float *const *ys,
                              const int *ldys, int n_mat, const float *x, int n)
{
    if (c->isa != CPUK_GENERIC && matmul_fast_group(c, ws, ys, ldys, n_mat, x, n, true))
        return;
    for (int i = 0; i < n_mat; i++)
        matmul_again(c, ws[i], x, ys[i], n, ldys[i]);
}

/* ---- the row-wise steps before a product, fused with its input's quantization ----
 * RMSNorm and SwiGLU write a product's input one token row at a time; on the fast path the same
 * task quantizes that row for the product's weight type while it is in L1, so the product
 * finds its input ready (matmul_again) instead of passing over it once more. Tokens are split
 * across the pool. */

typedef struct rows_job {
    eng_cpu *c;
    bool swiglu;        /* else RMSNorm */
    const float *x;     /* RMSNorm: (n, d) input, w its (d) scale */
    const float *w;
    const float *g, *u; /* SwiGLU: gate and up rows, ldg apart */
    int ldg;
    float *o;           /* (n, d) */
    int n, d;
    cpuk_act act;       /* quantize o into c->xq in this form; CPUK_ACT_F32: leave it */
} rows_job;

static void rows_part(void *arg, int task, int n_tasks)
{
    rows_job *j = arg;
    eng_cpu *c = j->c;
    for (int t = j->n * task / n_tasks; t < j->n * (task + 1) / n_tasks; t++) {
        float *o = j->o + (size_t)t * j->d;
        if (!j->swiglu) {
            rmsnorm(o, j->x + (size_t)t * j->d, j->w, j->d, c->m->hp.rms_eps);
        } else {
            const float *g = j->g + (size_t)t * j->ldg, *u = j->u + (size_t)t * j->ldg;
            for (int i = 0; i < j->d; i++)
                o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
        }
        if (j->act != CPUK_ACT_F32)
            cpuk_quantize(j->act, o, c->xq + (size_t)t * c->xq_stride, j->d);
    }
}

/* Run j for its n rows, quantizing them for a product with weight next (NULL: none). The
 * product must then be called with matmul_again. */
static void rows_run(eng_cpu *c, rows_job *j, const eng_weight *next)
{
    cpuk_kernel k;
    j->c = c;
    j->act = CPUK_ACT_F32;
    if (next && c->isa != CPUK_GENERIC && cpuk_kernel_for(c->isa, next->type, &k))
        j->act = k.act;
    eng_pool_run(rows_part, j, j->n > 1 ? c->n_threads : 1);
    c->xq_act = j->act == CPUK_ACT_F32 ? CPUK_ACT_COUNT : j->act;
}

static void rmsnorm_rows(eng_cpu *c, float *o, const float *x, const eng_weight *w, int n,
                         const eng_weight *next)
{
    rows_job j = { .x = x, .w = vec(w), .o = o, .n = n, .d = (int)c->m->hp.n_embd };
    rows_run(c, &j, next);
}

/* ---- set-up ---- */

void eng_rope_inv(const eng_model *m, uint32_t n_ctx, float *inv)
{
    const eng_hparams *hp = &m->hp;
    const eng_weight *ff = m->rope_freqs.t ? &m->rope_freqs : NULL;
    if (hp->arch == ENG_ARCH_PHI3 && m->rope_long.t)
        ff = n_ctx > hp->rope_orig_ctx ? &m->rope_long : &m->rope_short;
    for (uint32_t i = 0; i < hp->n_rot / 2; i++) {
        double v = hp->rope_freq_scale * pow(hp->rope_base, -2.0 * i / hp->n_rot);
        if (ff && ff->t)
            v /= vec(ff)[i];
        inv[i] = (float)v;
    }
}

eng_cpu *eng_cpu_new(const eng_model *m, uint32_t n_ctx, int n_threads, char *err, size_t errlen)
{
    const eng_hparams *hp = &m->hp;
    eng_cpu *c = calloc(1, sizeof *c);
    if (!c)
        goto oom;
    c->m = m;
    c->n_ctx = n_ctx;
    /* more tasks than pool threads would only add hand-offs */
    int pool = eng_pool_threads();
    c->n_threads = n_threads > 0 && n_threads < pool ? n_threads : pool;
    size_t kw = (size_t)hp->n_head_kv * hp->head_dim, vw = (size_t)hp->n_head_kv * hp->head_dim_v;
    size_t qw = (size_t)hp->n_head * hp->head_dim, aw = (size_t)hp->n_head * hp->head_dim_v;
    size_t cells = (size_t)hp->n_layer * n_ctx;
    c->k_cache = malloc(cells * kw * sizeof(uint16_t));
    c->v_cache = malloc(cells * vw * sizeof(uint16_t));
    c->x = malloc(CPU_CHUNK * hp->n_embd * sizeof(float));
    c->xb = malloc(CPU_CHUNK * hp->n_embd * sizeof(float));
    c->q = malloc(CPU_CHUNK * qw * sizeof(float));
    c->k = malloc(CPU_CHUNK * kw * sizeof(float));
    c->v = malloc(CPU_CHUNK * vw * sizeof(float));
    c->qkv = malloc(CPU_CHUNK * (qw + kw + vw) * sizeof(float));
    c->att = malloc(CPU_CHUNK * aw * sizeof(float));
    c->hb = malloc(CPU_CHUNK * 2 * (size_t)hp->n_ff * sizeof(float));
    c->hb2 = malloc(CPU_CHUNK * (size_t)hp->n_ff * sizeof(float));
    c->scores = malloc((size_t)c->n_threads * n_ctx * sizeof(float));
    c->rope_inv = malloc((hp->n_rot / 2 + 1) * sizeof(float));
    c->row_max = hp->n_embd > hp->n_ff ? hp->n_embd : hp->n_ff;
    if (aw > c->row_max)
        c->row_max = aw;
    c->rowbuf = malloc((size_t)c->n_threads * c->row_max * sizeof(float));
    c->isa = cpuk_isa_from_env();
    c->attend = cpuk_attend_for(c->isa);
    c->xq_stride = cpuk_act_bytes(CPUK_ACT_Q8, (int64_t)(c->row_max / 32 + 1) * 32);
    c->xq_act = CPUK_ACT_COUNT;
    c->xq = malloc(CPU_CHUNK * c->xq_stride);
    if (!c->k_cache || !c->v_cache || !c->x || !c->xb || !c->q || !c->k || !c->v || !c->qkv ||
        !c->att || !c->hb || !c->hb2 || !c->scores || !c->rope_inv || !c->rowbuf || !c->xq)
        goto oom;
    eng_rope_inv(m, n_ctx, c->rope_inv);
    return c;
oom:
    snprintf(err, errlen, "out of memory for a %u-token CPU context (KV cache %.1f MiB)", n_ctx,
             (double)hp->n_layer * n_ctx * hp->n_head_kv * (hp->head_dim + hp->head_dim_v) * 2 / 1048576);
    eng_cpu_free(c);
    return NULL;
}

void eng_cpu_free(eng_cpu *c)
{
    if (!c)
        return;
    free(c->xq);
    free(c->rowbuf);
    free(c->rope_inv);
    free(c->scores);
    free(c->hb2);
    free(c->hb);
    free(c->att);
    free(c->qkv);
    free(c->v);
    free(c->k);
    free(c->q);
    free(c->xb);
    free(c->x);
    free(c->v_cache);
    free(c->k_cache);
    free(c);
}

uint64_t eng_cpu_kv_bytes(const eng_cpu *c)
{
    const eng_hparams *hp = &c->m->hp;
    return (uint64_t)hp->n_layer * c->n_ctx * hp->n_head_kv * (hp->head_dim + hp->head_dim_v) * 2;
}

uint64_t eng_cpu_scratch_bytes(const eng_cpu *c)
{
    const eng_hparams *hp = &c->m->hp;
    uint64_t w = 2ull * hp->n_embd + 2ull * (hp->n_head * hp->head_dim + hp->n_head_kv *
                 (hp->head_dim + hp->head_dim_v)) + hp->n_head * hp->head_dim_v + 3ull * hp->n_ff;
    return 4 * (CPU_CHUNK * w + (uint64_t)c->n_threads * (c->n_ctx + c->row_max)) +
           CPU_CHUNK * c->xq_stride;
}

/* ---- the layer ---- */

/* Rotate the first n_rot dims of each head: pairs (2i, 2i+1), or (i, i + n_rot/2) for NeoX. */
static void rope_heads(const eng_hparams *hp, const float *inv, float *v, int n_heads, int hd,
                       int pos)
{
    int half = (int)hp->n_rot / 2;
    for (int i = 0; i < half; i++) {
        double th = (double)pos * inv[i];
        float cs = (float)cos(th), sn = (float)sin(th);
        for (int h = 0; h < n_heads; h++) {
            float *p = v + (size_t)h * hd;
            int a = hp->rope_neox ? i : 2 * i, b = hp->rope_neox ? i + half : 2 * i + 1;
            float x0 = p[a], x1 = p[b];
            p[a] = x0 * cs - x1 * sn;
            p[b] = x0 * sn + x1 * cs;
        }
    }
}

static void rope(const eng_cpu *c, float *v, int n_heads, int hd, int pos)
{
    rope_heads(&c->m->hp, c->rope_inv, v, n_heads, hd, pos);
}

/* Causal attention of token t (at position pos), head h, over cache positions 0..pos of layer
 * l, with scores[0..pos] as scratch. The exact path keeps its plain loops; the fast path takes
 * cpuk_attend_fn (same sums, llama.cpp's f16 roundings, another order). */
static void attend_head(eng_cpu *c, int l, int t, int pos, int h, float *scores)
{
    const eng_hparams *hp = &c->m->hp;
    int hd = (int)hp->head_dim, hdv = (int)hp->head_dim_v, group = (int)(hp->n_head / hp->n_head_kv);
    size_t kw = (size_t)hp->n_head_kv * hd, vw = (size_t)hp->n_head_kv * hdv;
    int kvh = h / group;
    const uint16_t *K = c->k_cache + (size_t)l * c->n_ctx * kw + (size_t)kvh * hd;
    const uint16_t *V = c->v_cache + (size_t)l * c->n_ctx * vw + (size_t)kvh * hdv;
    const float *q = c->q + (size_t)t * hp->n_head * hd + (size_t)h * hd;
    float scale = 1.0f / sqrtf((float)hd), mx = -INFINITY;
    float *o = c->att + (size_t)t * hp->n_head * hdv + (size_t)h * hdv;
    float q16[512];
    if (c->isa != CPUK_GENERIC && hd <= 512) {
        /* llama.cpp multiplies f16 keys by q rounded to f16, and f16 values by the
         * probabilities rounded to f16 (cpuk_attend_fn) */
        for (int i = 0; i < hd; i++)
            q16[i] = eng_f16_to_f32(eng_f32_to_f16(q[i]));
        c->attend(q16, K, kw, V, vw, hd, hdv, pos + 1, scale, scores, o);
        return;
    }
    for (int j = 0; j <= pos; j++) {
        const uint16_t *kr = K + (size_t)j * kw;
        float s = 0;
        for (int i = 0; i < hd; i++)
            s += q[i] * eng_f16_to_f32(kr[i]);
        scores[j] = s * scale;
        if (scores[j] > mx)
            mx = scores[j];
    }
    float sum = 0;
    for (int j = 0; j <= pos; j++) {
        scores[j] = expf(scores[j] - mx);
        sum += scores[j];
    }
    memset(o, 0, (size_t)hdv * sizeof *o);
    for (int j = 0; j <= pos; j++) {
        const uint16_t *vr = V + (size_t)j * vw;
        float p = scores[j] / sum;
        for (int i = 0; i < hdv; i++)
            o[i] += p * eng_f16_to_f32(vr[i]);
    }
}

typedef struct att_job {
    eng_cpu *c;
    int l, n, pos0;
} att_job;

/* A task takes a range of the chunk's (token, head) pairs; the result of each pair does not
 * depend on the split. */
static void attend_part(void *arg, int task, int n_tasks)
{
    att_job *j = arg;
    int nh = (int)j->c->m->hp.n_head, pairs = j->n * nh;
    float *scores = j->c->scores + (size_t)task * j->c->n_ctx;
    for (int p = pairs * task / n_tasks; p < pairs * (task + 1) / n_tasks; p++)
        attend_head(j->c, j->l, p / nh, j->pos0 + p / nh, p % nh, scores);
}

static void attend(eng_cpu *c, int l, int n, int pos0)
{
    att_job job = { c, l, n, pos0 };
    /* a single short attention is not worth a hand-off */
    int64_t work = (int64_t)n * c->m->hp.n_head * (pos0 + n);
    eng_pool_run(attend_part, &job, work < 4096 ? 1 : c->n_threads);
}

/* q, k, v for the chunk: separate or fused matrices, biases, qwen3's per-head norms, RoPE. */
static void qkv(eng_cpu *c, const eng_layer *L, int n, int pos0)
{
    const eng_hparams *hp = &c->m->hp;
    int hd = (int)hp->head_dim;
    size_t nq = (size_t)hp->n_head * hd, nk = (size_t)hp->n_head_kv * hd;
    size_t nv = (size_t)hp->n_head_kv * hp->head_dim_v;
    if (L->wqkv.t) {
        matmul_again(c, &L->wqkv, c->xb, c->qkv, n, (int)(nq + nk + nv));
        for (int t = 0; t < n; t++) {
            const float *src = c->qkv + (size_t)t * (nq + nk + nv);
            memcpy(c->q + t * nq, src, nq * sizeof(float));
            memcpy(c->k + t * nk, src + nq, nk * sizeof(float));
            memcpy(c->v + t * nv, src + nq + nk, nv * sizeof(float));
        }
    } else {
        const eng_weight *ws[3] = { &L->wq, &L->wk, &L->wv };
        float *ys[3] = { c->q, c->k, c->v };
        int ldys[3] = { (int)nq, (int)nk, (int)nv };
        matmul_same_input(c, ws, ys, ldys, 3, c->xb, n);
    }
    for (int t = 0; t < n; t++) {
        float *q = c->q + t * nq, *k = c->k + t * nk, *v = c->v + t * nv;
        for (size_t i = 0; L->bq.t && i < nq; i++)
            q[i] += vec(&L->bq)[i];
        for (size_t i = 0; L->bk.t && i < nk; i++)
            k[i] += vec(&L->bk)[i];
        for (size_t i = 0; L->bv.t && i < nv; i++)
            v[i] += vec(&L->bv)[i];
        for (uint32_t h = 0; L->q_norm.t && h < hp->n_head; h++)
            rmsnorm(q + h * hd, q + h * hd, vec(&L->q_norm), hd, hp->rms_eps);
        for (uint32_t h = 0; L->k_norm.t && h < hp->n_head_kv; h++)
            rmsnorm(k + h * hd, k + h * hd, vec(&L->k_norm), hd, hp->rms_eps);
        rope(c, q, (int)hp->n_head, hd, pos0 + t);
        rope(c, k, (int)hp->n_head_kv, hd, pos0 + t);
    }
}

static void layer(eng_cpu *c, int l, int n, int pos0)
{
    const eng_hparams *hp = &c->m->hp;
    const eng_layer *L = &c->m->layers[l];
    int d = (int)hp->n_embd, ff = (int)hp->n_ff;
    size_t kw = (size_t)hp->n_head_kv * hp->head_dim, vw = (size_t)hp->n_head_kv * hp->head_dim_v;

    /* 1. attention block (qkv's first product takes the input rmsnorm_rows quantized) */
    rmsnorm_rows(c, c->xb, c->x, &L->attn_norm, n, L->wqkv.t ? &L->wqkv : &L->wq);
    qkv(c, L, n, pos0);
    for (int t = 0; t < n; t++) { /* the cache holds f16, as llama.cpp's and the GPU's do */
        uint16_t *kc = c->k_cache + ((size_t)l * c->n_ctx + pos0 + t) * kw;
        uint16_t *vc = c->v_cache + ((size_t)l * c->n_ctx + pos0 + t) * vw;
        for (size_t i = 0; i < kw; i++)
            kc[i] = eng_f32_to_f16(c->k[t * kw + i]);
        for (size_t i = 0; i < vw; i++)
            vc[i] = eng_f32_to_f16(c->v[t * vw + i]);
    }
    attend(c, l, n, pos0);
    matmul(c, &L->wo, c->att, c->xb, n, d);
    for (size_t i = 0; i < (size_t)n * d; i++)
        c->x[i] += c->xb[i];

    /* 2. feed-forward block: down(silu(gate(x)) * up(x)) */
    const eng_weight *first = L->w_gate_up.t ? &L->w_gate_up : &L->w_gate;
    rmsnorm_rows(c, c->xb, c->x, &L->ffn_norm, n, first);
    int ldg = ff;
    const float *up = c->hb2;
    if (L->w_gate_up.t) { /* phi3: one matrix, gate rows then up rows */
        ldg = 2 * ff;
        matmul_again(c, &L->w_gate_up, c->xb, c->hb, n, ldg);
        up = c->hb + ff;
    } else {
        const eng_weight *ws[2] = { &L->w_gate, &L->w_up };
        float *ys[2] = { c->hb, c->hb2 };
        int ldys[2] = { ff, ff };
        matmul_same_input(c, ws, ys, ldys, 2, c->xb, n);
    }
    /* SwiGLU into hb2 (over the up rows themselves when they are there: each element is read
     * before it is written), quantized for w_down */
    rows_job sw = { .swiglu = true, .g = c->hb, .u = up, .ldg = ldg, .o = c->hb2, .n = n, .d = ff };
    rows_run(c, &sw, &L->w_down);
    matmul_again(c, &L->w_down, c->hb2, c->xb, n, d);
    for (size_t i = 0; i < (size_t)n * d; i++)
        c->x[i] += c->xb[i];
}

static void decode_chunk(eng_cpu *c, const int32_t *tokens, int n, int pos0, float *logits,
                         bool all_logits)
{
    const eng_model *m = c->m;
    const eng_hparams *hp = &m->hp;
    int d = (int)hp->n_embd;
    for (int t = 0; t < n; t++) {
        int32_t id = tokens[t] >= 0 && (uint32_t)tokens[t] < hp->n_vocab ? tokens[t] : 0;
        eng_dequantize_row(m->tok_embd.type, m->tok_embd.data + (size_t)id * m->tok_embd.row_bytes,
                           c->x + (size_t)t * d, d);
    }
    for (uint32_t l = 0; l < hp->n_layer; l++)
        layer(c, (int)l, n, pos0);
    if (!logits)
        return;
    int first = all_logits ? 0 : n - 1, cnt = n - first;
    rmsnorm_rows(c, c->xb, c->x + (size_t)first * d, &m->output_norm, cnt, &m->output);
    matmul_again(c, &m->output, c->xb, logits, cnt, (int)hp->n_vocab);
}

bool eng_cpu_decode(eng_cpu *c, const int32_t *tokens, int n, int pos, float *logits,
                    bool all_logits)
{
    if (n <= 0 || pos < 0 || (uint64_t)pos + (uint64_t)n > c->n_ctx)
        return false;
    for (int done = 0; done < n; done += CPU_CHUNK) {
        int cnt = n - done < CPU_CHUNK ? n - done : CPU_CHUNK;
        bool last = done + cnt == n;
        float *out = all_logits ? logits + (size_t)done * c->m->hp.n_vocab : logits;
        decode_chunk(c, tokens + done, cnt, pos + done, (all_logits || last) ? out : NULL,
                     all_logits);
    }
    return true;
}

/* Keys carry their position through RoPE, so moving a key from position p to p - delta means
 * rotating it back by delta (rotations compose); values move as they are. */
void eng_kv_shift_layer(const eng_hparams *hp, const float *inv, uint16_t *K, uint16_t *V,
                        int p0, int p1, int n_past, float *tmp)
{
    int delta = p1 - p0, hd = (int)hp->head_dim;
    size_t kw = (size_t)hp->n_head_kv * hd, vw = (size_t)hp->n_head_kv * hp->head_dim_v;
    for (int p = p1; p < n_past; p++) {
        const uint16_t *src = K + (size_t)p * kw;
        uint16_t *dst = K + (size_t)(p - delta) * kw;
        for (size_t i = 0; i < kw; i++)
            tmp[i] = eng_f16_to_f32(src[i]);
        rope_heads(hp, inv, tmp, (int)hp->n_head_kv, hd, -delta);
        for (size_t i = 0; i < kw; i++)
            dst[i] = eng_f32_to_f16(tmp[i]);
        memmove(V + (size_t)(p - delta) * vw, V + (size_t)p * vw, vw * sizeof(uint16_t));
    }
}

void eng_cpu_kv_shift(eng_cpu *c, int p0, int p1, int n_past)
{
    const eng_hparams *hp = &c->m->hp;
    size_t kw = (size_t)hp->n_head_kv * hp->head_dim, vw = (size_t)hp->n_head_kv * hp->head_dim_v;
    for (uint32_t l = 0; l < hp->n_layer; l++)
        eng_kv_shift_layer(hp, c->rope_inv, c->k_cache + (size_t)l * c->n_ctx * kw,
                           c->v_cache + (size_t)l * c->n_ctx * vw, p0, p1, n_past, c->k);
}
