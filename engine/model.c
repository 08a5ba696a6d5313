/* Loading a model by architecture: hyperparameters from the arch-prefixed keys, then every
 * tensor the forward pass needs, checked for presence, shape and a computable type, so that a
 * backend never meets a surprise. Errors name the file and the tensor or key. */
#include "engine/model.h"

#include "engine/quant.h"
#include "engine/vk_backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct loader {
    eng_model *m;
    char *err;
    size_t errlen;
} loader;

static eng_model_status lfail(loader *l, eng_model_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static eng_model_status lfail(loader *l, eng_model_status st, const char *fmt, ...)
{
    if (l->err && l->errlen) {
        int n = snprintf(l->err, l->errlen, "%s: ", gguf_source(l->m->file));
        va_list ap;
        va_start(ap, fmt);
        if (n >= 0 && (size_t)n < l->errlen)
            vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* Find a tensor and check it is [ne0] (ne1 == 0) or [ne0, ne1]. */
static eng_model_status get_w(loader *l, eng_weight *w, const char *name, int64_t ne0,
                              int64_t ne1, bool required)
{
    const gguf_tensor *t = gguf_find_tensor(l->m->file, name);
    memset(w, 0, sizeof *w);
    if (!t)
        return required ? lfail(l, ENG_MODEL_ERR_FORMAT, "tensor '%s' is missing", name)
                        : ENG_MODEL_OK;
    uint32_t want_dims = ne1 ? 2 : 1;
    bool ok = t->ne[0] == (uint64_t)ne0 && (ne1 ? t->ne[1] == (uint64_t)ne1 : true) &&
              t->ne[2] == 1 && t->ne[3] == 1 && (t->n_dims == want_dims || (ne1 == 0 && t->ne[1] == 1));
    if (!ok)
        return lfail(l, ENG_MODEL_ERR_FORMAT, "tensor '%s' has shape [%llu, %llu, %llu], "
                     "expected [%lld, %lld]", name, (unsigned long long)t->ne[0],
                     (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                     (long long)ne0, (long long)(ne1 ? ne1 : 1));
    if (!eng_type_supported(t->type))
        return lfail(l, ENG_MODEL_ERR_UNSUPPORTED, "tensor '%s' has type %s, which sizeup "
                     "cannot compute yet", name, gguf_type_get(t->type)->name);
    if (ne1 == 0 && t->type != GGUF_T_F32)
        return lfail(l, ENG_MODEL_ERR_UNSUPPORTED, "vector '%s' has type %s (F32 expected)",
                     name, gguf_type_get(t->type)->name);
    w->t = t;
    w->type = t->type;
    w->ne0 = ne0;
    w->ne1 = ne1 ? ne1 : 1;
    w->row_bytes = (size_t)(t->nbytes / (uint64_t)w->ne1);
    w->data = t->data;
    l->m->weight_bytes += t->nbytes;
    l->m->n_params += t->n_elems;
    return ENG_MODEL_OK;
}

static eng_model_status get_u32(loader *l, const char *suffix, uint32_t *v, bool required)
{
    gguf_status st = gguf_get_arch_u32(l->m->file, suffix, v);
    if (st == GGUF_OK || (st == GGUF_ERR_NOTFOUND && !required))
        return ENG_MODEL_OK;
    char key[160];
    gguf_arch_key(l->m->file, suffix, key, sizeof key);
    return lfail(l, ENG_MODEL_ERR_FORMAT, st == GGUF_ERR_NOTFOUND ? "key '%s' is missing"
                 : "key '%s' is not a usable integer (or is a per-layer array)", key);
}

static eng_model_status read_hparams(loader *l)
{
    eng_hparams *hp = &l->m->hp;
    gguf_file *f = l->m->file;
    if (gguf_get_cstr(f, "general.architecture", hp->arch_name, sizeof hp->arch_name))
        return lfail(l, ENG_MODEL_ERR_FORMAT, "general.architecture is missing");
    static const struct { const char *name; eng_arch arch; bool neox; } archs[] = {
        { "llama", ENG_ARCH_LLAMA, false }, { "qwen2", ENG_ARCH_QWEN2, true },
        { "qwen3", ENG_ARCH_QWEN3, true }, { "phi3", ENG_ARCH_PHI3, true },
    };
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(hp->arch_name, archs[i].name)) {
            hp->arch = archs[i].arch;
            hp->rope_neox = archs[i].neox;
        }
    if (!hp->arch)
        return lfail(l, ENG_MODEL_ERR_UNSUPPORTED, "architecture '%s' is not supported (sizeup "
                     "runs llama, qwen2, qwen3 and phi3)", hp->arch_name);
    eng_model_status st;
    if ((st = get_u32(l, "context_length", &hp->n_ctx_train, true)) ||
        (st = get_u32(l, "embedding_length", &hp->n_embd, true)) ||
        (st = get_u32(l, "block_count", &hp->n_layer, true)) ||
        (st = get_u32(l, "feed_forward_length", &hp->n_ff, true)) ||
        (st = get_u32(l, "attention.head_count", &hp->n_head, true)))
        return st;
    hp->n_head_kv = hp->n_head;
    if ((st = get_u32(l, "attention.head_count_kv", &hp->n_head_kv, false)))
        return st;
    if (!hp->n_embd || !hp->n_layer || !hp->n_head || !hp->n_head_kv || !hp->n_ff ||
        hp->n_head % hp->n_head_kv || hp->n_layer > 4096 || hp->n_embd > (1u << 20))
        return lfail(l, ENG_MODEL_ERR_FORMAT, "inconsistent shape: n_embd %u, layers %u, heads "
                     "%u/%u, n_ff %u", hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->n_ff);
    hp->head_dim = hp->n_embd / hp->n_head;
    if ((st = get_u32(l, "attention.key_length", &hp->head_dim, false)))
        return st;
    hp->head_dim_v = hp->head_dim;
    if ((st = get_u32(l, "attention.value_length", &hp->head_dim_v, false)))
        return st;
    hp->n_rot = hp->head_dim;
    if ((st = get_u32(l, "rope.dimension_count", &hp->n_rot, false)))
        return st;
    if (!hp->head_dim || hp->head_dim > 1024 || hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return lfail(l, ENG_MODEL_ERR_FORMAT, "head size %u with %u RoPE dimensions is not "
                     "usable", hp->head_dim, hp->n_rot);
    hp->rope_base = 10000.0f;
    gguf_get_arch_f32(f, "rope.freq_base", &hp->rope_base);
    hp->rope_freq_scale = 1.0f;
    float factor;
    char type[32] = "";
    char key[160];
    if (gguf_arch_key(f, "rope.scaling.type", key, sizeof key))
        gguf_get_cstr(f, key, type, sizeof type);
    if (!strcmp(type, "linear") && gguf_get_arch_f32(f, "rope.scaling.factor", &factor) == 0 &&
        factor > 0)
        hp->rope_freq_scale = 1.0f / factor;
    hp->rms_eps = 1e-5f;
    gguf_get_arch_f32(f, "attention.layer_norm_rms_epsilon", &hp->rms_eps);
    hp->rope_orig_ctx = hp->n_ctx_train;
    get_u32(l, "rope.scaling.original_context_length", &hp->rope_orig_ctx, false);
    return ENG_MODEL_OK;
}

/* Attention weights: separate q/k/v (+ biases, + q/k norms) or phi3's fused matrix. */
static eng_model_status load_attn(loader *l, eng_layer *L, int i)
{
    const eng_hparams *hp = &l->m->hp;
    int64_t d = hp->n_embd, nq = (int64_t)hp->n_head * hp->head_dim;
    int64_t nk = (int64_t)hp->n_head_kv * hp->head_dim, nv = (int64_t)hp->n_head_kv * hp->head_dim_v;
    char n[96];
    eng_model_status st;
#define W(field, fmt, a, b, req) \
    do { snprintf(n, sizeof n, fmt, i); if ((st = get_w(l, &L->field, n, a, b, req))) return st; } while (0)
    W(attn_norm, "blk.%d.attn_norm.weight", d, 0, true);
    if (hp->arch == ENG_ARCH_PHI3) {
        W(wqkv, "blk.%d.attn_qkv.weight", d, nq + nk + nv, true);
    } else {
        W(wq, "blk.%d.attn_q.weight", d, nq, true);
        W(wk, "blk.%d.attn_k.weight", d, nk, true);
        W(wv, "blk.%d.attn_v.weight", d, nv, true);
    }
    bool bias = hp->arch == ENG_ARCH_QWEN2;
    W(bq, "blk.%d.attn_q.bias", nq, 0, bias);
    W(bk, "blk.%d.attn_k.bias", nk, 0, bias);
    W(bv, "blk.%d.attn_v.bias", nv, 0, bias);
    bool qk_norm = hp->arch == ENG_ARCH_QWEN3;
    W(q_norm, "blk.%d.attn_q_norm.weight", hp->head_dim, 0, qk_norm);
    W(k_norm, "blk.%d.attn_k_norm.weight", hp->head_dim, 0, qk_norm);
    W(wo, "blk.%d.attn_output.weight", (int64_t)hp->n_head * hp->head_dim_v, d, true);
    return ENG_MODEL_OK;
}

static eng_model_status load_ffn(loader *l, eng_layer *L, int i)
{
    const eng_hparams *hp = &l->m->hp;
    int64_t d = hp->n_embd, ff = hp->n_ff;
    char n[96];
    eng_model_status st;
    W(ffn_norm, "blk.%d.ffn_norm.weight", d, 0, true);
    if (hp->arch == ENG_ARCH_PHI3) {
        W(w_gate_up, "blk.%d.ffn_up.weight", d, 2 * ff, true);
    } else {
        W(w_gate, "blk.%d.ffn_gate.weight", d, ff, true);
        W(w_up, "blk.%d.ffn_up.weight", d, ff, true);
    }
    W(w_down, "blk.%d.ffn_down.weight", ff, d, true);
#undef W
    return ENG_MODEL_OK;
}

static eng_model_status load_tensors(loader *l)
{
    eng_model *m = l->m;
    const eng_hparams *hp = &m->hp;
    eng_model_status st;
    uint32_t et;
    uint64_t nv;
    if (gguf_get_arr(m->file, "tokenizer.ggml.tokens", &et, &nv) || nv == 0 || nv > INT32_MAX)
        return lfail(l, ENG_MODEL_ERR_FORMAT, "no vocabulary (tokenizer.ggml.tokens)");
    m->hp.n_vocab = (uint32_t)nv;
    const gguf_tensor *te = gguf_find_tensor(m->file, "token_embd.weight");
    if (te && te->ne[1] != nv) /* some files pad the embedding past the vocabulary */
        m->hp.n_vocab = (uint32_t)te->ne[1];
    if ((st = get_w(l, &m->tok_embd, "token_embd.weight", hp->n_embd, hp->n_vocab, true)) ||
        (st = get_w(l, &m->output_norm, "output_norm.weight", hp->n_embd, 0, true)) ||
        (st = get_w(l, &m->output, "output.weight", hp->n_embd, hp->n_vocab, hp->arch == ENG_ARCH_PHI3)) ||
        (st = get_w(l, &m->rope_freqs, "rope_freqs.weight", hp->n_rot / 2, 0, false)) ||
        (st = get_w(l, &m->rope_long, "rope_factors_long.weight", hp->n_rot / 2, 0, false)) ||
        (st = get_w(l, &m->rope_short, "rope_factors_short.weight", hp->n_rot / 2, 0, false)))
        return st;
    if (!m->output.t) {
        m->output = m->tok_embd;
        m->tied_output = true;
    }
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return lfail(l, ENG_MODEL_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < hp->n_layer; i++)
        if ((st = load_attn(l, &m->layers[i], (int)i)) || (st = load_ffn(l, &m->layers[i], (int)i)))
            return st;
    return ENG_MODEL_OK;
}

eng_model_status eng_model_load(const char *path, eng_model **out, char *err, size_t errlen)
{
    *out = NULL;
    eng_model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return ENG_MODEL_ERR_NOMEM;
    }
    if (gguf_open(path, &m->file, err, errlen) != GGUF_OK) {
        free(m);
        return ENG_MODEL_ERR_IO;
    }
    pthread_mutex_init(&m->vk_lock, NULL);
    atomic_init(&m->refs, 1);
    loader l = { m, err, errlen };
    eng_model_status st = read_hparams(&l);
    if (!st)
        st = load_tensors(&l);
    if (!st && eng_vocab_load(m->file, &m->vocab, err, errlen) != ENG_TOK_OK)
        st = ENG_MODEL_ERR_FORMAT;
    if (st) {
        eng_model_free(m);
        return st;
    }
    if (gguf_get_cstr(m->file, "general.name", m->name, sizeof m->name) != GGUF_OK)
        snprintf(m->name, sizeof m->name, "%s", m->hp.arch_name);
    *out = m;
    return ENG_MODEL_OK;
}

void eng_model_free(eng_model *m)
{
    if (!m)
        return;
    eng_vk_model_free(m->vk);
    pthread_mutex_destroy(&m->vk_lock);
    free(m->layers);
    eng_vocab_free(m->vocab);
    gguf_close(m->file);
    free(m);
}
