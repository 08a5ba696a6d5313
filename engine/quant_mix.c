/* llama-quantize's per-tensor type choice (see quant_mix.h). Read from llama.cpp's
 * src/llama-quant.cpp at c392e50 and written anew; the branches keep llama.cpp's order, since
 * the first rule that matches a tensor's name decides. Only the rules that can apply without an
 * importance matrix, to the K mixes and the plain types, and to the architectures sizeup runs
 * are here: the IQ and ternary mixes, Falcon's and the 8-expert models' special cases are not. */
#include <string.h>

#include "engine/gguf.h"
#include "engine/quant_mix.h"

/* llama_ftype numbers (llama.h). */
enum {
    FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9,
    FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14,
    FT_Q4_K_M = 15, FT_Q5_K_S = 16, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_Q2_K_S = 21, FT_BF16 = 32,
};

bool eng_mix_base_type(uint32_t ftype, uint32_t *type)
{
    static const struct { uint32_t ftype, type; } map[] = {
        { FT_F32, GGUF_T_F32 },    { FT_F16, GGUF_T_F16 },    { FT_BF16, GGUF_T_BF16 },
        { FT_Q4_0, GGUF_T_Q4_0 },  { FT_Q4_1, GGUF_T_Q4_1 },  { FT_Q5_0, GGUF_T_Q5_0 },
        { FT_Q5_1, GGUF_T_Q5_1 },  { FT_Q8_0, GGUF_T_Q8_0 },  { FT_Q2_K, GGUF_T_Q2_K },
        { FT_Q2_K_S, GGUF_T_Q2_K }, { FT_Q3_K_S, GGUF_T_Q3_K }, { FT_Q3_K_M, GGUF_T_Q3_K },
        { FT_Q3_K_L, GGUF_T_Q3_K }, { FT_Q4_K_S, GGUF_T_Q4_K }, { FT_Q4_K_M, GGUF_T_Q4_K },
        { FT_Q5_K_S, GGUF_T_Q5_K }, { FT_Q5_K_M, GGUF_T_Q5_K }, { FT_Q6_K, GGUF_T_Q6_K },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].ftype == ftype) {
            *type = map[i].type;
            return true;
        }
    return false;
}

static bool has(const char *name, const char *part)
{
    return strstr(name, part) != NULL;
}

bool eng_mix_quantizes(const char *name, int n_dims)
{
    size_t len = strlen(name);
    if (n_dims < 2 || len < 6 || strcmp(name + len - 6, "weight"))
        return false;
    static const char *const keep[] = { "_norm.weight", "ffn_gate_inp.weight", "pos_embd",
                                        "token_types", "ssm_conv1d", "attn_rel_b.weight" };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (has(name, keep[i]))
            return false;
    return true;
}

/* llama.cpp's layers that get more bits in the _M mixes: the first and last eighth, and every
 * third layer in between. */
static bool use_more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* llama.cpp's LLM_TYPE_70B among sizeup's architectures: 80 layers of llama with grouped
 * attention (with n_head == n_head_kv it is the 65B) or of qwen2. */
static bool is_70b(const eng_mix_model *m)
{
    if (m->n_layer != 80)
        return false;
    return (!strcmp(m->arch, "llama") && m->n_head != m->n_head_kv) || !strcmp(m->arch, "qwen2");
}

/* The output matrix: Q8_0 when the base type's block does not divide its rows, else Q6_K unless
 * the file is Q8_0 (or a float type, which no mix touches). */
static uint32_t output_type(uint32_t base, int64_t ne0)
{
    if (ne0 % gguf_type_get(base)->block_elems)
        return GGUF_T_Q8_0;
    return base == GGUF_T_Q8_0 ? base : GGUF_T_Q6_K;
}

static uint32_t attn_v_type(uint32_t ft, const eng_mix_model *m, eng_mix_state *st, uint32_t t)
{
    int gqa = m->n_head_kv > 0 ? m->n_head / m->n_head_kv : 0;
    if (ft == FT_Q2_K)
        t = gqa >= 4 ? GGUF_T_Q4_K : GGUF_T_Q3_K;
    else if (ft == FT_Q2_K_S && gqa >= 4)
        t = GGUF_T_Q4_K;
    else if (ft == FT_Q3_K_M)
        t = st->i_attn_v < 2 ? GGUF_T_Q5_K : GGUF_T_Q4_K;
    else if (ft == FT_Q3_K_L)
        t = GGUF_T_Q5_K;
    else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(st->i_attn_v, m->n_attn_v))
        t = GGUF_T_Q6_K;
    else if (ft == FT_Q4_K_S && st->i_attn_v < 4)
        t = GGUF_T_Q5_K;
    /* a 70B's attn_v is 8 times smaller than its attn_q: more bits cost little */
    if (is_70b(m) && (t == GGUF_T_Q3_K || t == GGUF_T_Q4_K))
        t = GGUF_T_Q5_K;
    st->i_attn_v++;
    return t;
}

static uint32_t ffn_down_type(uint32_t ft, const eng_mix_model *m, eng_mix_state *st,
                              uint32_t t)
{
    int i = st->i_ffn_down, n = m->n_layer;
    if (ft == FT_Q2_K)
        t = GGUF_T_Q3_K;
    else if (ft == FT_Q2_K_S) {
        if (i < n / 8)
            t = GGUF_T_Q4_K;
    } else if (ft == FT_Q3_K_M)
        t = i < n / 16 ? GGUF_T_Q5_K : GGUF_T_Q4_K; /* (Falcon alone keeps some Q3_K) */
    else if (ft == FT_Q3_K_L)
        t = GGUF_T_Q5_K;
    else if (ft == FT_Q4_K_M) {
        if (use_more_bits(i, n))
            t = GGUF_T_Q6_K;
    } else if (ft == FT_Q5_K_M && use_more_bits(i, n))
        t = GGUF_T_Q6_K;
    else if (ft == FT_Q4_K_S && i < n / 8)
        t = GGUF_T_Q5_K;
    st->i_ffn_down++;
    return t;
}

/* The mix's choice for one matrix, before the row-length fallback. */
static uint32_t mix_choice(uint32_t ft, uint32_t base, const eng_mix_model *m,
                           eng_mix_state *st, const char *name, int64_t ne0)
{
    if (!strcmp(name, "output.weight") || (!m->has_output && !strcmp(name, "token_embd.weight")))
        return output_type(base, ne0);
    if (!strcmp(name, "token_embd.weight"))
        return base;
    if (has(name, "attn_v.weight"))
        return attn_v_type(ft, m, st, base);
    if (has(name, "ffn_down"))
        return ffn_down_type(ft, m, st, base);
    if (has(name, "attn_output.weight")) {
        if (ft == FT_Q2_K)
            return GGUF_T_Q3_K;
        if (ft == FT_Q3_K_M)
            return GGUF_T_Q4_K;
        if (ft == FT_Q3_K_L)
            return GGUF_T_Q5_K;
        return base;
    }
    if (has(name, "attn_qkv.weight")) {
        if (ft == FT_Q3_K_M || ft == FT_Q3_K_L)
            return GGUF_T_Q4_K;
        if (ft == FT_Q4_K_M)
            return GGUF_T_Q5_K;
        if (ft == FT_Q5_K_M)
            return GGUF_T_Q6_K;
    }
    return base;
}

/* llama.cpp's fallback for a 256-value type whose blocks do not divide a row: the 32-value type
 * of about the same size (IQ4_NL for Q2_K and Q3_K in c392e50), F16 when even 32 does not. */
static uint32_t fallback(uint32_t t, int64_t ne0)
{
    switch (t) {
    case GGUF_T_Q2_K:
    case GGUF_T_Q3_K: t = GGUF_T_IQ4_NL; break;
    case GGUF_T_Q4_K: t = GGUF_T_Q5_0; break;
    case GGUF_T_Q5_K: t = GGUF_T_Q5_1; break;
    case GGUF_T_Q6_K: t = GGUF_T_Q8_0; break;
    default: return t;
    }
    return ne0 % gguf_type_get(t)->block_elems ? GGUF_T_F16 : t;
}

uint32_t eng_mix_type(uint32_t ftype, const eng_mix_model *m, eng_mix_state *st,
                      const char *name, int64_t ne0, bool *fell_back)
{
    uint32_t base = GGUF_T_F32;
    if (fell_back)
        *fell_back = false;
    if (!eng_mix_base_type(ftype, &base) || gguf_type_get(base)->block_elems <= 1)
        return base;
    uint32_t t = mix_choice(ftype, base, m, st, name, ne0);
    if (ne0 % gguf_type_get(t)->block_elems == 0)
        return t;
    uint32_t f = fallback(t, ne0);
    if (fell_back)
        *fell_back = f != t;
    return f;
}
