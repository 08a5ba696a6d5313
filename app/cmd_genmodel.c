/* `sizeup gen-model`: random-weight GGUF files with the exact shapes of real models, written
 * through sizeup's own GGUF writer and quantizer, for benchmarks: speed does not depend on the
 * weight values, so these measure what the real model would, without downloading it. --seed
 * picks the weights (the same seed gives the same file byte for byte); -o is checked and written
 * as quantize's OUT is (app_check_output, then a fresh temp file and a rename). */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "engine/gguf.h"
#include "engine/quant.h"
#include "engine/quant_mix.h"

#define CMD "gen-model"

typedef struct shape {
    const char *name, *arch, *title;
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    float rope_base, eps;
    bool bias, tied;
} shape;

static const shape shapes[] = {
    { "smollm2-135m", "llama", "SmolLM2-135M shape (random weights)", 576, 30, 9, 3, 1536, 49152,
      8192, 100000.0f, 1e-5f, false, true },
    { "qwen2.5-0.5b", "qwen2", "Qwen2.5-0.5B shape (random weights)", 896, 24, 14, 2, 4864, 151936,
      32768, 1000000.0f, 1e-6f, true, true },
    { "llama3.2-1b", "llama", "Llama-3.2-1B shape (random weights)", 2048, 16, 32, 8, 8192, 128256,
      131072, 500000.0f, 1e-5f, false, true },
};

static void usage(FILE *to)
{
    fprintf(to, "usage: sizeup gen-model --shape NAME --type TYPE -o FILE [--seed S] [--force]\n\n"
                "Write a random-weight GGUF with the shapes of a real model, for benchmarks.\n"
                "  --shape   ");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        fprintf(to, "%s%s", i ? ", " : "", shapes[i].name);
    fprintf(to, "\n  --type    Q8_0, Q4_0 or Q4_K_M, each tensor of the type llama-quantize gives\n"
                "            it (as `sizeup quantize`): the output matrix Q6_K (Q8_0 in Q8_0\n"
                "            files and where rows are not whole 256-value blocks); for Q4_K_M\n"
                "            also attn_v/ffn_down Q6_K in the first and last eighth of the\n"
                "            layers and every third between, Q5_0/Q8_0 where rows are not\n"
                "            multiples of 256\n"
                "  -o FILE   output path: a regular file or a new name; it is written through a\n"
                "            new temporary file beside it and renamed into place\n"
                "  --seed S  seed for the random weights (a whole number; default fixed): the\n"
                "            same seed gives the same file, different seeds different weights\n"
                "  --force   replace FILE if it exists\n");
}

/* xorshift-based normal-ish numbers: speed does not depend on values, only finiteness and a
 * realistic scale do. */
static float rnd(uint64_t *s)
{
    float acc = 0;
    for (int i = 0; i < 4; i++) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        acc += (float)(*s >> 40) / (float)(1ull << 24) - 0.5f;
    }
    return acc * 0.035f; /* sum of 4 uniforms: std ~0.02 */
}

typedef struct gen {
    gguf_writer *w;
    const shape *sh;
    const char *mode;
    uint32_t ftype;    /* llama_ftype of mode */
    eng_mix_model mix; /* what llama-quantize's type rules need of the shape */
    eng_mix_state mix_state;
    uint64_t seed;
    void **blobs;
    size_t n_blobs;
    int failed;
} gen;

static void add(gen *g, const char *name, int64_t ne0, int64_t ne1, bool vector, float fill)
{
    uint32_t type = vector ? GGUF_T_F32
                           : eng_mix_type(g->ftype, &g->mix, &g->mix_state, name, ne0, NULL);
    size_t rb = eng_row_bytes(type, ne0);
    void *data = malloc(rb * (size_t)ne1);
    float *row = malloc((size_t)ne0 * sizeof *row);
    void **bl = realloc(g->blobs, (g->n_blobs + 1) * sizeof *bl);
    if (!data || !row || !bl || !eng_type_quantizable(type)) {
        fprintf(stderr, "sizeup %s: cannot make %s as %s\n", CMD, name, gguf_type_get(type)->name);
        g->failed = 1;
        free(data);
        free(row);
        if (bl)
            g->blobs = bl;
        return;
    }
    g->blobs = bl;
    g->blobs[g->n_blobs++] = data;
    for (int64_t r = 0; r < ne1; r++) {
        for (int64_t i = 0; i < ne0; i++)
            row[i] = vector ? fill : rnd(&g->seed);
        eng_quantize_row(type, row, (char *)data + (size_t)r * rb, ne0);
    }
    free(row);
    uint64_t ne[2] = { (uint64_t)ne0, (uint64_t)ne1 };
    if (gguf_writer_add_tensor(g->w, name, type, vector ? 1 : 2, ne, data))
        g->failed = 1;
}

static void metadata(gen *g)
{
    const shape *s = g->sh;
    char k[96];
    gguf_writer *w = g->w;
    gguf_writer_set_str(w, "general.architecture", s->arch);
    gguf_writer_set_str(w, "general.name", s->title);
#define A(suffix) (snprintf(k, sizeof k, "%s." suffix, s->arch), k)
    gguf_writer_set_u32(w, A("context_length"), s->n_ctx);
    gguf_writer_set_u32(w, A("embedding_length"), s->n_embd);
    gguf_writer_set_u32(w, A("block_count"), s->n_layer);
    gguf_writer_set_u32(w, A("feed_forward_length"), s->n_ff);
    gguf_writer_set_u32(w, A("attention.head_count"), s->n_head);
    gguf_writer_set_u32(w, A("attention.head_count_kv"), s->n_head_kv);
    gguf_writer_set_f32(w, A("rope.freq_base"), s->rope_base);
    gguf_writer_set_f32(w, A("attention.layer_norm_rms_epsilon"), s->eps);
#undef A
    gguf_writer_set_u32(w, "general.file_type", g->ftype);
    /* A SentencePiece vocabulary of the right size: control tokens, 256 byte tokens, fillers. */
    char **toks = malloc(s->n_vocab * sizeof *toks);
    int32_t *types = malloc(s->n_vocab * sizeof *types);
    float *scores = calloc(s->n_vocab, sizeof *scores);
    for (uint32_t i = 0; toks && types && i < s->n_vocab; i++) {
        toks[i] = malloc(24);
        if (i < 3)
            snprintf(toks[i], 24, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 259)
            snprintf(toks[i], 24, "<0x%02X>", i - 3);
        else
            snprintf(toks[i], 24, "\xe2\x96\x81t%u", i);
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
    }
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, s->n_vocab);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, scores, s->n_vocab);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, s->n_vocab);
    for (uint32_t i = 0; toks && i < s->n_vocab; i++)
        free(toks[i]);
    free(toks);
    free(types);
    free(scores);
}

/* The generator state for a --seed value. splitmix64's finaliser spreads every bit of the seed
 * over the state, so nearby seeds give unrelated streams (the old `seed | 1` made seeds 2 and
 * 3 the same). A zero state would make xorshift return zeros forever, hence the fix-up. */
static uint64_t seed_state(uint64_t seed)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z ? z : 0x9e3779b97f4a7c15ull;
}

static void tensors(gen *g)
{
    const shape *s = g->sh;
    int64_t d = s->n_embd, hd = s->n_embd / s->n_head, nq = s->n_head * hd;
    int64_t nk = s->n_head_kv * hd, ff = s->n_ff;
    add(g, "token_embd.weight", d, s->n_vocab, false, 0);
    add(g, "output_norm.weight", d, 1, true, 1.0f);
    if (!s->tied)
        add(g, "output.weight", d, s->n_vocab, false, 0);
    for (uint32_t l = 0; l < s->n_layer && !g->failed; l++) {
        char n[96];
#define T(suffix, ne0, ne1, vec, fill) (snprintf(n, sizeof n, "blk.%u." suffix, l), add(g, n, ne0, ne1, vec, fill))
        T("attn_norm.weight", d, 1, true, 1.0f);
        T("attn_q.weight", d, nq, false, 0);
        T("attn_k.weight", d, nk, false, 0);
        T("attn_v.weight", d, nk, false, 0);
        if (s->bias) {
            T("attn_q.bias", nq, 1, true, 0.0f);
            T("attn_k.bias", nk, 1, true, 0.0f);
            T("attn_v.bias", nk, 1, true, 0.0f);
        }
        T("attn_output.weight", nq, d, false, 0);
        T("ffn_norm.weight", d, 1, true, 1.0f);
        T("ffn_gate.weight", d, ff, false, 0);
        T("ffn_up.weight", d, ff, false, 0);
        T("ffn_down.weight", ff, d, false, 0);
#undef T
    }
}

int app_cmd_gen_model(int argc, char **argv)
{
    const char *shape_name = NULL, *mode = NULL, *out = NULL;
    gen g = { 0 };
    bool force = false;
    g.seed = 0x9e3779b97f4a7c15ull; /* without --seed: the files this command always wrote */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--force")) {
            force = true;
            continue;
        }
        if (i + 1 >= argc)
            return app_fail(CMD, "%s: a value is missing, or the option is unknown", argv[i]) + 1;
        if (!strcmp(argv[i], "--shape")) shape_name = argv[++i];
        else if (!strcmp(argv[i], "--type")) mode = argv[++i];
        else if (!strcmp(argv[i], "-o")) out = argv[++i];
        else if (!strcmp(argv[i], "--seed")) {
            const char *v = argv[++i];
            char *end;
            errno = 0;
            unsigned long long seed = strtoull(v, &end, 10);
            /* strtoull alone takes " 7", "+7" and "-7" (as 2^64 - 7) */
            if (!isdigit((unsigned char)v[0]) || *end || errno)
                return app_fail(CMD, "--seed '%s': not a whole number from 0 to %llu", v,
                                (unsigned long long)UINT64_MAX) + 1;
            g.seed = seed_state(seed);
        }
        else return app_fail(CMD, "unknown option '%s' (see sizeup gen-model --help)", argv[i]) + 1;
    }
    for (size_t i = 0; shape_name && i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, shape_name))
            g.sh = &shapes[i];
    /* A wrong value is named with the valid ones; a missing option gets the whole line. */
    if (shape_name && !g.sh)
        return app_fail(CMD, "--shape '%s': not a known shape (smollm2-135m, qwen2.5-0.5b, "
                        "llama3.2-1b)", shape_name) + 1;
    if (mode && strcmp(mode, "Q8_0") && strcmp(mode, "Q4_0") && strcmp(mode, "Q4_K_M"))
        return app_fail(CMD, "--type '%s': gen-model writes Q8_0, Q4_0 or Q4_K_M", mode) + 1;
    if (!g.sh || !out || !mode)
        return app_fail(CMD, "need --shape (smollm2-135m, qwen2.5-0.5b, llama3.2-1b), --type "
                        "(Q8_0, Q4_0, Q4_K_M) and -o FILE") + 1;
    if (app_check_output(CMD, out, NULL, force))
        return 1;
    g.mode = mode;
    g.ftype = !strcmp(mode, "Q8_0") ? 7 : !strcmp(mode, "Q4_0") ? 2 : 15;
    g.mix = (eng_mix_model){ .arch = g.sh->arch, .n_layer = (int)g.sh->n_layer,
                             .n_head = (int)g.sh->n_head, .n_head_kv = (int)g.sh->n_head_kv,
                             .has_output = !g.sh->tied, .n_attn_v = (int)g.sh->n_layer };
    g.w = gguf_writer_new();
    metadata(&g);
    tensors(&g);
    int rc = 0;
    if (g.failed)
        rc = 1;
    else if (gguf_writer_write_ex(g.w, out, force ? 0 : GGUF_WRITE_NO_REPLACE))
        rc = app_fail(CMD, "%s", gguf_writer_errmsg(g.w));
    else
        fprintf(stderr, "wrote %s (%s, %s)\n", out, g.sh->title, mode);
    for (size_t i = 0; i < g.n_blobs; i++)
        free(g.blobs[i]);
    free(g.blobs);
    gguf_writer_free(g.w);
    return rc;
}
