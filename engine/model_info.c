/* Model facts from a GGUF header (see model_info.h).
 *
 * Reading is one pass of optional lookups. The reader keeps a sticky status: after the first
 * failure every helper is a no-op, so the section readers run top to bottom without an error
 * check per key, and the first message (file, key, what was wrong) is the one reported.
 * Key names follow llama.cpp's (llama-arch.cpp) and gguf-py's constants, misspellings included
 * (tokenizer.ggml.seperator_token_id).
 */
#include "engine/model_info.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const gguf_file *f;
    eng_model_info *mi;
    gguf_status st;
    char key[320];  /* scratch for "ARCH.suffix" */
} reader;

static void fail(reader *r, gguf_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(reader *r, gguf_status st, const char *fmt, ...)
{
    if (r->st != GGUF_OK)
        return;
    r->st = st;
    int n = snprintf(r->mi->err, sizeof r->mi->err, "%s: ", gguf_source(r->f));
    if (n < 0 || (size_t)n >= sizeof r->mi->err)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->mi->err + n, sizeof r->mi->err - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Copy s into buf (NUL-terminated), cutting on a UTF-8 character boundary when it is too long
 * so that JSON output built from it stays valid. */
static void copy_str(char *buf, size_t buflen, gguf_str s)
{
    size_t n = s.len < buflen - 1 ? (size_t)s.len : buflen - 1;
    if (n < s.len)
        while (n > 0 && ((unsigned char)s.ptr[n] & 0xC0) == 0x80)
            n--;
    memcpy(buf, s.ptr, n);
    buf[n] = 0;
}

static const char *arch_key(reader *r, const char *suffix)
{
    snprintf(r->key, sizeof r->key, "%s.%s", r->mi->architecture, suffix);
    return r->key;
}

/* Report a getter's failure on key. NOTFOUND is not a failure: every key is optional. */
static bool check(reader *r, gguf_status st, const char *key, const char *wanted)
{
    if (st == GGUF_OK)
        return true;
    if (st != GGUF_ERR_NOTFOUND) {
        int64_t i = gguf_find_key(r->f, key);
        fail(r, st, "key '%s' has type %s, expected %s", key,
             i >= 0 ? gguf_vtype_name(gguf_kv_type(r->f, i)) : "?", wanted);
    }
    return false;
}

static bool opt_u32(reader *r, const char *key, uint32_t *out)
{
    return r->st == GGUF_OK && check(r, gguf_get_u32(r->f, key, out), key, "a uint32");
}

static bool opt_f64(reader *r, const char *key, double *out)
{
    return r->st == GGUF_OK && check(r, gguf_get_f64(r->f, key, out), key, "a float");
}

static bool opt_bool(reader *r, const char *key, bool *out)
{
    return r->st == GGUF_OK && check(r, gguf_get_bool(r->f, key, out), key, "a bool");
}

static bool opt_str(reader *r, const char *key, char *buf, size_t buflen)
{
    gguf_str s;
    if (r->st != GGUF_OK || !check(r, gguf_get_str(r->f, key, &s), key, "a string"))
        return false;
    copy_str(buf, buflen, s);
    return true;
}

/* An integer element of an array value as uint64; false for other types or negatives. */
static bool value_u64(const gguf_value *v, uint64_t *out)
{
    switch (v->type) {
    case GGUF_VT_UINT8: case GGUF_VT_UINT16: case GGUF_VT_UINT32: case GGUF_VT_UINT64:
        *out = v->v.u;
        return true;
    case GGUF_VT_INT8: case GGUF_VT_INT16: case GGUF_VT_INT32: case GGUF_VT_INT64:
        *out = (uint64_t)v->v.i;
        return v->v.i >= 0;
    default:
        return false;
    }
}

/* A hyperparameter that is a scalar or, in models with per-layer shapes (OpenELM, Gemma 3n, ...),
 * an array with one integer per layer; an array gives its largest element, the one that sizes
 * buffers. */
static bool opt_u32_max(reader *r, const char *key, uint32_t *out)
{
    int64_t i = gguf_find_key(r->f, key);
    if (r->st != GGUF_OK || i < 0)
        return false;
    if (gguf_kv_type(r->f, i) != GGUF_VT_ARRAY)
        return opt_u32(r, key, out);
    gguf_value arr, e;
    uint64_t max = 0, u;
    gguf_kv_value(r->f, i, &arr);
    for (uint64_t j = 0; j < arr.v.arr.n; j++) {
        if (gguf_arr_get(r->f, i, j, &e) != GGUF_OK || !value_u64(&e, &u) || u > UINT32_MAX) {
            fail(r, GGUF_ERR_TYPE, "key '%s': element %llu of the array is not a uint32 "
                 "(element type %s)", key, (unsigned long long)j, gguf_vtype_name(e.type));
            return false;
        }
        if (u > max)
            max = u;
    }
    *out = (uint32_t)max;
    return true;
}

static void read_general(reader *r)
{
    eng_model_info *mi = r->mi;
    mi->gguf_version = gguf_version(r->f);
    mi->n_tensors = gguf_tensor_count(r->f);
    mi->n_kv = gguf_kv_count(r->f);
    mi->file_size = gguf_file_size(r->f);
    opt_str(r, "general.architecture", mi->architecture, sizeof mi->architecture);
    opt_str(r, "general.name", mi->name, sizeof mi->name);
    mi->has_file_type = opt_u32(r, "general.file_type", &mi->file_type);
}

static int cmp_type_use(const void *a, const void *b)
{
    const eng_type_use *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return (x->type > y->type) - (x->type < y->type);
}

static void read_tensors(reader *r)
{
    eng_model_info *mi = r->mi;
    eng_type_use by_type[GGUF_T_COUNT] = { 0 };
    for (int64_t i = 0; i < mi->n_tensors; i++) {
        const gguf_tensor *t = gguf_tensor_at(r->f, i);
        eng_type_use *u = &by_type[t->type]; /* the reader refuses unknown type ids */
        u->type = t->type;
        u->count++;
        u->n_elems += t->n_elems;
        u->bytes += t->nbytes;
        mi->n_params += t->n_elems;
        mi->tensor_bytes += t->nbytes;
    }
    for (uint32_t t = 0; t < GGUF_T_COUNT; t++)
        if (by_type[t].count)
            mi->types[mi->n_types++] = by_type[t];
    qsort(mi->types, mi->n_types, sizeof mi->types[0], cmp_type_use);
    if (mi->n_params)
        mi->bits_per_weight = (double)mi->tensor_bytes * 8.0 / (double)mi->n_params;
    mi->has_rope_freqs = gguf_find_tensor(r->f, "rope_freqs.weight") != NULL;
    mi->tied_embeddings = gguf_find_tensor(r->f, "token_embd.weight") != NULL &&
                          gguf_find_tensor(r->f, "output.weight") == NULL;
}

static void read_hparams(reader *r)
{
    eng_model_info *mi = r->mi;
    if (!mi->architecture[0])
        return; /* every hyperparameter key is ARCH.something */
    opt_u32(r, arch_key(r, "context_length"), &mi->context_length);
    opt_u32(r, arch_key(r, "block_count"), &mi->n_layer);
    opt_u32(r, arch_key(r, "embedding_length"), &mi->n_embd);
    opt_u32_max(r, arch_key(r, "feed_forward_length"), &mi->n_ff);
    opt_u32_max(r, arch_key(r, "attention.head_count"), &mi->n_head);
    mi->head_kv_given = opt_u32_max(r, arch_key(r, "attention.head_count_kv"), &mi->n_head_kv);
    if (!mi->head_kv_given)
        mi->n_head_kv = mi->n_head;
    if (!opt_u32(r, arch_key(r, "attention.key_length"), &mi->head_dim) && mi->n_head)
        mi->head_dim = mi->n_embd / mi->n_head;
    if (!opt_u32(r, arch_key(r, "attention.value_length"), &mi->head_dim_v))
        mi->head_dim_v = mi->head_dim;
    opt_u32(r, arch_key(r, "expert_count"), &mi->n_expert);
    opt_u32(r, arch_key(r, "expert_used_count"), &mi->n_expert_used);
    opt_u32(r, arch_key(r, "attention.sliding_window"), &mi->sliding_window);

    if (opt_f64(r, arch_key(r, "attention.layer_norm_rms_epsilon"), &mi->norm_eps))
        mi->norm_kind = ENG_NORM_RMS;
    else if (opt_f64(r, arch_key(r, "attention.layer_norm_epsilon"), &mi->norm_eps))
        mi->norm_kind = ENG_NORM_LAYER;
}

static void read_rope(reader *r)
{
    eng_model_info *mi = r->mi;
    mi->rope_freq_base = ENG_ROPE_FREQ_BASE_DEFAULT;
    if (!mi->architecture[0])
        return;
    mi->rope_dim_given = opt_u32(r, arch_key(r, "rope.dimension_count"), &mi->rope_dim);
    if (!mi->rope_dim_given)
        mi->rope_dim = mi->head_dim;
    mi->rope_freq_base_given = opt_f64(r, arch_key(r, "rope.freq_base"), &mi->rope_freq_base);
    opt_str(r, arch_key(r, "rope.scaling.type"), mi->rope_scaling_type,
            sizeof mi->rope_scaling_type);
    opt_f64(r, arch_key(r, "rope.scaling.factor"), &mi->rope_scaling_factor);
    /* Older converters wrote the scale as rope.scale_linear. */
    if (!mi->rope_scaling_factor &&
        opt_f64(r, arch_key(r, "rope.scale_linear"), &mi->rope_scaling_factor) &&
        !mi->rope_scaling_type[0])
        snprintf(mi->rope_scaling_type, sizeof mi->rope_scaling_type, "linear");
    opt_u32(r, arch_key(r, "rope.scaling.original_context_length"), &mi->rope_scaling_orig_ctx);
}

/* Key suffixes (after "tokenizer.ggml.") in eng_special order. */
static const char *const special_keys[ENG_TOK_COUNT] = {
    "bos_token_id", "eos_token_id", "eot_token_id", "eom_token_id", "unknown_token_id",
    "padding_token_id", "seperator_token_id", "cls_token_id", "mask_token_id",
};

static void read_special(reader *r, int64_t tokens_kv)
{
    eng_model_info *mi = r->mi;
    char key[64];
    for (int s = 0; s < ENG_TOK_COUNT; s++) {
        eng_special_token *t = &mi->special[s];
        t->id = ENG_INFO_NO_TOKEN;
        snprintf(key, sizeof key, "tokenizer.ggml.%s", special_keys[s]);
        if (!opt_u32(r, key, &t->id) || t->id == ENG_INFO_NO_TOKEN || t->id >= mi->vocab_size)
            continue;
        gguf_value v;
        if (gguf_arr_get(r->f, tokens_kv, t->id, &v) != GGUF_OK || v.type != GGUF_VT_STRING) {
            fail(r, GGUF_ERR_FORMAT, "tokenizer.ggml.tokens[%u] (the %s token) is not a string",
                 t->id, eng_special_name((eng_special)s));
            return;
        }
        t->in_vocab = true;
        copy_str(t->text, sizeof t->text, v.v.s);
    }
}

static void read_tokenizer(reader *r)
{
    eng_model_info *mi = r->mi;
    uint32_t et = 0;
    int64_t tokens_kv = gguf_find_key(r->f, "tokenizer.ggml.tokens");
    if (check(r, gguf_get_arr(r->f, "tokenizer.ggml.tokens", &et, &mi->vocab_size),
              "tokenizer.ggml.tokens", "an array of strings") && et != GGUF_VT_STRING)
        fail(r, GGUF_ERR_TYPE, "key 'tokenizer.ggml.tokens' is an array of %s, expected strings",
             gguf_vtype_name(et));
    opt_str(r, "tokenizer.ggml.model", mi->tok_model, sizeof mi->tok_model);
    opt_str(r, "tokenizer.ggml.pre", mi->tok_pre, sizeof mi->tok_pre);
    if (r->st == GGUF_OK)
        mi->has_merges = check(r, gguf_get_arr(r->f, "tokenizer.ggml.merges", &et, &mi->n_merges),
                               "tokenizer.ggml.merges", "an array of strings");
    mi->add_bos_given = opt_bool(r, "tokenizer.ggml.add_bos_token", &mi->add_bos);
    mi->add_eos_given = opt_bool(r, "tokenizer.ggml.add_eos_token", &mi->add_eos);
    gguf_str tmpl;
    if (r->st == GGUF_OK &&
        check(r, gguf_get_str(r->f, "tokenizer.chat_template", &tmpl), "tokenizer.chat_template",
              "a string")) {
        mi->has_chat_template = true;
        mi->chat_template_len = tmpl.len;
    }
    if (r->st == GGUF_OK)
        read_special(r, tokens_kv);
}

gguf_status eng_model_info_read(const gguf_file *f, eng_model_info *out)
{
    reader r = { .f = f, .mi = out, .st = GGUF_OK };
    memset(out, 0, sizeof *out);
    read_general(&r);
    read_tensors(&r);
    read_hparams(&r);
    read_rope(&r);
    read_tokenizer(&r);
    return r.st;
}

const char *eng_ftype_name(uint32_t ft)
{
    /* llama.h's llama_ftype; the gaps are ids llama.cpp retired. */
    static const char *const names[] = {
        [0] = "ALL_F32", [1] = "MOSTLY_F16", [2] = "MOSTLY_Q4_0", [3] = "MOSTLY_Q4_1",
        [7] = "MOSTLY_Q8_0", [8] = "MOSTLY_Q5_0", [9] = "MOSTLY_Q5_1", [10] = "MOSTLY_Q2_K",
        [11] = "MOSTLY_Q3_K_S", [12] = "MOSTLY_Q3_K_M", [13] = "MOSTLY_Q3_K_L",
        [14] = "MOSTLY_Q4_K_S", [15] = "MOSTLY_Q4_K_M", [16] = "MOSTLY_Q5_K_S",
        [17] = "MOSTLY_Q5_K_M", [18] = "MOSTLY_Q6_K", [19] = "MOSTLY_IQ2_XXS",
        [20] = "MOSTLY_IQ2_XS", [21] = "MOSTLY_Q2_K_S", [22] = "MOSTLY_IQ3_XS",
        [23] = "MOSTLY_IQ3_XXS", [24] = "MOSTLY_IQ1_S", [25] = "MOSTLY_IQ4_NL",
        [26] = "MOSTLY_IQ3_S", [27] = "MOSTLY_IQ3_M", [28] = "MOSTLY_IQ2_S", [29] = "MOSTLY_IQ2_M",
        [30] = "MOSTLY_IQ4_XS", [31] = "MOSTLY_IQ1_M", [32] = "MOSTLY_BF16",
        [36] = "MOSTLY_TQ1_0", [37] = "MOSTLY_TQ2_0", [38] = "MOSTLY_MXFP4_MOE",
    };
    return ft < sizeof names / sizeof names[0] ? names[ft] : NULL;
}

const char *eng_special_name(eng_special which)
{
    static const char *const names[ENG_TOK_COUNT] = {
        "bos", "eos", "eot", "eom", "unk", "pad", "sep", "cls", "mask",
    };
    return (unsigned)which < ENG_TOK_COUNT ? names[which] : "?";
}

uint32_t eng_model_default_ctx(const eng_model_info *mi)
{
    if (mi->context_length == 0 || mi->context_length > ENG_DEFAULT_CTX_CAP)
        return ENG_DEFAULT_CTX_CAP;
    return mi->context_length;
}

const char *eng_mem_compute_formula(void)
{
    return "4 B x (n_batch x (2*n_embd + n_head*head_dim + n_head_kv*(head_dim+head_dim_v) + "
           "n_head*head_dim_v + 2*n_ff) + n_vocab + n_head x n_batch x n_ctx), n_batch = "
           "min(512, n_ctx)";
}

/* The compute figure models what a llama.cpp-style engine keeps alive while it processes one
 * batch: f32 activations of one layer at a time (buffers are reused across layers) for the hidden
 * state x and its normed copy, q, k, v, the attention output, the two FFN hidden vectors (gate,
 * up), the logits of the last position only, and one attention score tile n_head x n_batch x
 * n_ctx (no flash attention). It ignores scratch for dequantization, alignment padding and the
 * allocator's own overhead, so a real engine may need somewhat more. */
void eng_model_mem_estimate(const eng_model_info *mi, uint32_t n_ctx, eng_mem_estimate *out)
{
    uint64_t ctx = n_ctx, nb = n_ctx < ENG_COMPUTE_BATCH ? n_ctx : ENG_COMPUTE_BATCH;
    uint64_t hk = mi->head_dim, hv = mi->head_dim_v, nh = mi->n_head, nkv = mi->n_head_kv;
    uint64_t per_token = 2 * (uint64_t)mi->n_embd + nh * hk + nkv * (hk + hv) + nh * hv +
                         2 * (uint64_t)mi->n_ff;

    out->n_ctx = n_ctx;
    out->n_batch = (uint32_t)nb;
    out->weights = mi->tensor_bytes;
    /* K and V caches, f16 (2 bytes), every layer and position. */
    out->kv_cache = 2 * (uint64_t)mi->n_layer * ctx * nkv * (hk + hv);
    out->compute = 4 * (nb * per_token + mi->vocab_size + nh * nb * ctx);
    out->total = out->weights + out->kv_cache + out->compute;
}
