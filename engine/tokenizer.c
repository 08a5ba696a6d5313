/* Vocabulary loading, special tokens and decoding for both tokenizer kinds. The merge
 * algorithms live in tok_spm.c and tok_bpe.c; this file builds what they share (token texts,
 * the text -> id index, attributes, special ids) and cuts special tokens out of the input. */
#include "engine/tok_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static eng_tok_status tfail(char *err, size_t errlen, eng_tok_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static eng_tok_status tfail(char *err, size_t errlen, eng_tok_status st, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* ---- hashing and the text index ---- */

uint64_t tok_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix for the low bits */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

int32_t tok_find(const eng_vocab *v, const char *s, size_t len)
{
    for (uint64_t i = tok_hash(s, len) & v->index.mask;; i = (i + 1) & v->index.mask) {
        int32_t id = v->index.slot[i];
        if (id < 0)
            return ENG_TOKEN_NONE;
        if (v->len[id] == len && memcmp(v->arena + v->off[id], s, len) == 0)
            return id;
    }
}

int32_t eng_vocab_find(const eng_vocab *v, const char *text, size_t len)
{
    return tok_find(v, text, len);
}

static bool build_index(eng_vocab *v)
{
    uint64_t cap = 16;
    while (cap < (uint64_t)v->n * 2)
        cap *= 2;
    v->index.slot = malloc(cap * sizeof *v->index.slot);
    if (!v->index.slot)
        return false;
    memset(v->index.slot, 0xff, cap * sizeof *v->index.slot);
    v->index.mask = cap - 1;
    for (int32_t id = 0; id < v->n; id++) {
        const char *s = v->arena + v->off[id];
        uint64_t i = tok_hash(s, v->len[id]) & v->index.mask;
        for (;; i = (i + 1) & v->index.mask) {
            int32_t o = v->index.slot[i];
            if (o < 0 || (v->len[o] == v->len[id] && !memcmp(v->arena + v->off[o], s, v->len[id])))
                break;
        }
        v->index.slot[i] = id; /* a duplicate text takes over its slot: the last id wins */
    }
    return true;
}

void tok_out_push(tok_out *o, int32_t id)
{
    if (o->oom)
        return;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        int32_t *p = realloc(o->ids, cap * sizeof *p);
        if (!p) {
            o->oom = true;
            return;
        }
        o->ids = p;
        o->cap = cap;
    }
    o->ids[o->n++] = id;
}

/* ---- loading ---- */

/* Token texts, scores and types into the vocab's own arrays. */
static eng_tok_status load_tokens(eng_vocab *v, const gguf_file *f, char *err, size_t errlen)
{
    int64_t k = gguf_find_key(f, "tokenizer.ggml.tokens");
    gguf_value val;
    if (k < 0 || gguf_kv_value(f, k, &val) || val.v.arr.type != GGUF_VT_STRING || !val.v.arr.n)
        return tfail(err, errlen, ENG_TOK_ERR_FORMAT, "%s: tokenizer.ggml.tokens is missing or "
                     "not a list of strings", gguf_source(f));
    if (val.v.arr.n > INT32_MAX / 2)
        return tfail(err, errlen, ENG_TOK_ERR_FORMAT, "%s: %llu tokens is too many",
                     gguf_source(f), (unsigned long long)val.v.arr.n);
    v->n = (int32_t)val.v.arr.n;
    uint64_t total = 0;
    for (int32_t i = 0; i < v->n; i++) {
        gguf_value e;
        gguf_arr_get(f, k, (uint64_t)i, &e);
        total += e.v.s.len + 1;
    }
    v->arena = malloc(total);
    v->off = malloc((size_t)v->n * sizeof *v->off);
    v->len = malloc((size_t)v->n * sizeof *v->len);
    v->score = calloc((size_t)v->n, sizeof *v->score);
    v->attr = malloc((size_t)v->n);
    if (!v->arena || !v->off || !v->len || !v->score || !v->attr)
        return tfail(err, errlen, ENG_TOK_ERR_NOMEM, "out of memory loading %d tokens", v->n);
    uint64_t at = 0;
    for (int32_t i = 0; i < v->n; i++) {
        gguf_value e;
        gguf_arr_get(f, k, (uint64_t)i, &e);
        if (e.v.s.len > UINT32_MAX / 2)
            return tfail(err, errlen, ENG_TOK_ERR_FORMAT, "%s: token %d is too long",
                         gguf_source(f), i);
        memcpy(v->arena + at, e.v.s.ptr, (size_t)e.v.s.len);
        v->arena[at + e.v.s.len] = 0;
        v->off[i] = at;
        v->len[i] = (uint32_t)e.v.s.len;
        at += e.v.s.len + 1;
        v->attr[i] = ENG_TOKATTR_NORMAL;
    }
    return ENG_TOK_OK;
}

static eng_tok_status load_scores_types(eng_vocab *v, const gguf_file *f, char *err, size_t errlen)
{
    uint32_t et;
    uint64_t n;
    if (gguf_get_arr(f, "tokenizer.ggml.scores", &et, &n) == GGUF_OK) {
        if (et != GGUF_VT_FLOAT32 || n != (uint64_t)v->n)
            return tfail(err, errlen, ENG_TOK_ERR_FORMAT, "%s: tokenizer.ggml.scores has %llu "
                         "%s values for %d tokens", gguf_source(f), (unsigned long long)n,
                         gguf_vtype_name(et), v->n);
        gguf_value a;
        gguf_kv_value(f, gguf_find_key(f, "tokenizer.ggml.scores"), &a);
        memcpy(v->score, a.v.arr.raw, (size_t)v->n * sizeof(float));
    }
    if (gguf_get_arr(f, "tokenizer.ggml.token_type", &et, &n) == GGUF_OK) {
        if (et != GGUF_VT_INT32 || n != (uint64_t)v->n)
            return tfail(err, errlen, ENG_TOK_ERR_FORMAT, "%s: tokenizer.ggml.token_type has "
                         "%llu %s values for %d tokens", gguf_source(f), (unsigned long long)n,
                         gguf_vtype_name(et), v->n);
        gguf_value a;
        gguf_kv_value(f, gguf_find_key(f, "tokenizer.ggml.token_type"), &a);
        static const uint8_t map[7] = { ENG_TOKATTR_NORMAL, ENG_TOKATTR_NORMAL,
            ENG_TOKATTR_UNKNOWN, ENG_TOKATTR_CONTROL, ENG_TOKATTR_USER_DEFINED,
            ENG_TOKATTR_UNUSED, ENG_TOKATTR_BYTE };
        for (int32_t i = 0; i < v->n; i++) {
            int32_t t;
            memcpy(&t, a.v.arr.raw + 4 * (size_t)i, 4);
            v->attr[i] = t >= 0 && t < 7 ? map[t] : ENG_TOKATTR_NORMAL;
        }
    }
    return ENG_TOK_OK;
}

static int32_t special_id(const eng_vocab *v, const gguf_file *f, const char *key, int32_t def)
{
    uint32_t u;
    if (gguf_get_u32(f, key, &u) != GGUF_OK)
        return def;
    return u < (uint32_t)v->n ? (int32_t)u : ENG_TOKEN_NONE; /* UINT32_MAX means "none" */
}

static bool get_flag(const gguf_file *f, const char *key, bool def)
{
    bool b;
    return gguf_get_bool(f, key, &b) == GGUF_OK ? b : def;
}

static int32_t find_cstr(const eng_vocab *v, const char *s)
{
    return tok_find(v, s, strlen(s));
}

static void add_eog(eng_vocab *v, int32_t id)
{
    if (id == ENG_TOKEN_NONE)
        return;
    for (size_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id)
            return;
    v->eog[v->n_eog++] = id;
}

/* Special ids from metadata, then the ones llama.cpp finds by their text when a converter did
 * not write them (EOT, EOM, FIM padding), and the end-of-generation set built from them. */
static bool load_special(eng_vocab *v, const gguf_file *f)
{
    bool spm = v->kind == ENG_VOCAB_SPM;
    eng_special_ids *s = &v->sp;
    s->bos = special_id(v, f, "tokenizer.ggml.bos_token_id", spm ? 1 : ENG_TOKEN_NONE);
    s->eos = special_id(v, f, "tokenizer.ggml.eos_token_id", spm ? 2 : ENG_TOKEN_NONE);
    s->eot = special_id(v, f, "tokenizer.ggml.eot_token_id", ENG_TOKEN_NONE);
    s->eom = special_id(v, f, "tokenizer.ggml.eom_token_id", ENG_TOKEN_NONE);
    s->unk = special_id(v, f, "tokenizer.ggml.unknown_token_id", spm ? 0 : ENG_TOKEN_NONE);
    s->pad = special_id(v, f, "tokenizer.ggml.padding_token_id", ENG_TOKEN_NONE);
    s->sep = special_id(v, f, "tokenizer.ggml.seperator_token_id", ENG_TOKEN_NONE);
    bool llama3 = !strcmp(v->pre_name, "llama-bpe") || !strcmp(v->pre_name, "llama3");
    s->add_bos = get_flag(f, "tokenizer.ggml.add_bos_token", spm || llama3);
    s->add_eos = get_flag(f, "tokenizer.ggml.add_eos_token", false);
    s->add_space_prefix = get_flag(f, "tokenizer.ggml.add_space_prefix", spm);

    static const char *eot_texts[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
        "<|endoftext|>", "<EOT>", "_<EOT>", "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>" };
    for (size_t i = 0; s->eot == ENG_TOKEN_NONE && i < sizeof eot_texts / sizeof *eot_texts; i++)
        s->eot = find_cstr(v, eot_texts[i]);
    if (s->eom == ENG_TOKEN_NONE)
        s->eom = find_cstr(v, "<|eom_id|>");
    if (s->eot != ENG_TOKEN_NONE)
        v->attr[s->eot] = (uint8_t)((v->attr[s->eot] & ~ENG_TOKATTR_NORMAL) | ENG_TOKATTR_CONTROL);

    v->eog = malloc(32 * sizeof *v->eog);
    if (!v->eog)
        return false;
    add_eog(v, s->eos);
    add_eog(v, s->eot);
    add_eog(v, s->eom);
    static const char *eog_texts[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
        "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|fim_pad|>", "<fim-pad>", "<PAD>",
        "<|repo_name|>", "<|fim_repo|>", "<fim-repo>", "<REPO>" };
    for (size_t i = 0; i < sizeof eog_texts / sizeof *eog_texts; i++) {
        int32_t id = find_cstr(v, eog_texts[i]);
        if (id != ENG_TOKEN_NONE && (v->attr[id] & (ENG_TOKATTR_CONTROL | ENG_TOKATTR_USER_DEFINED)))
            add_eog(v, id);
    }
    return true;
}


static int cmp_special(const void *a, const void *b, void *arg)
{
    const eng_vocab *v = arg;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (v->len[x] != v->len[y])
        return v->len[x] > v->len[y] ? -1 : 1; /* longest first, so "<|im_end|>" beats "<|" */
    return (x > y) - (x < y);
}

/* Index of the special tokens by their first two bytes, so one pass over a text finds which of
 * them occur at all (Deepseek has 2400 of them; searching the text for each would dominate). */
static bool build_special_buckets(eng_vocab *v)
{
    v->sp_bucket = calloc(65537, sizeof *v->sp_bucket);
    if (!v->sp_bucket)
        return false;
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < v->n_special; i++) {
            const unsigned char *t = (const unsigned char *)v->arena + v->off[v->special[i]];
            unsigned lo = v->len[v->special[i]] == 1 ? 0 : t[1];
            unsigned hi = v->len[v->special[i]] == 1 ? 255 : t[1];
            for (unsigned b = lo; b <= hi; b++) {
                if (pass == 0)
                    v->sp_bucket[(unsigned)t[0] << 8 | b]++, total++;
                else
                    v->sp_by_pair[--v->sp_bucket[(unsigned)t[0] << 8 | b]] = (uint32_t)i;
            }
        }
        if (pass == 0) {
            /* counts -> end offsets; the second pass fills each run backwards, so the
             * bucket ends up holding its start */
            for (size_t k = 1; k <= 65536; k++)
                v->sp_bucket[k] += v->sp_bucket[k - 1];
            v->sp_by_pair = malloc((total ? total : 1) * sizeof *v->sp_by_pair);
            if (!v->sp_by_pair)
                return false;
        }
    }
    return true;
}

/* Tokens cut out of the text before merging: control, user-defined and unknown ones. Phi-3
 * models get llama.cpp's rule that whitespace after a special token is swallowed. */
static bool build_special_list(eng_vocab *v, const gguf_file *f)
{
    v->special = malloc((size_t)v->n * sizeof *v->special);
    if (!v->special)
        return false;
    for (int32_t id = 0; id < v->n; id++)
        if ((v->attr[id] & (ENG_TOKATTR_CONTROL | ENG_TOKATTR_USER_DEFINED | ENG_TOKATTR_UNKNOWN))
            && v->len[id] > 0)
            v->special[v->n_special++] = id;
    qsort_r(v->special, v->n_special, sizeof *v->special, cmp_special, v);
    if (!build_special_buckets(v))
        return false;

    char name[256] = "";
    gguf_get_cstr(f, "general.name", name, sizeof name);
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (strstr(name, "phi3") || strstr(name, "phi-3")) {
        for (size_t i = 0; i < v->n_special; i++)
            v->attr[v->special[i]] |= ENG_TOKATTR_RSTRIP;
        static const char *keep[] = { "<unk>", "<s>", "<|endoftext|>" };
        for (size_t i = 0; i < 3; i++) {
            int32_t id = find_cstr(v, keep[i]);
            if (id != ENG_TOKEN_NONE)
                v->attr[id] &= (uint8_t)~ENG_TOKATTR_RSTRIP;
        }
        int32_t eos = find_cstr(v, "</s>");
        if (eos != ENG_TOKEN_NONE)
            v->attr[eos] |= ENG_TOKATTR_RSTRIP;
    }
    return true;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decode one UTF-8 sequence at s (n bytes left); invalid input yields the byte as is. */
static uint32_t get_utf8(const unsigned char *s, size_t n, size_t *used)
{
    unsigned c = s[0];
    size_t need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (need > n)
        need = 1;
    uint32_t cp = need == 1 ? c : need == 2 ? (c & 0x1f) : need == 3 ? (c & 0x0f) : (c & 0x07);
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *used = 1;
            return c;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *used = need;
    return cp;
}

static void init_byte_tokens(eng_vocab *v)
{
    for (int b = 0; b < 256; b++) {
        char buf[8];
        int32_t id;
        if (v->kind == ENG_VOCAB_SPM) {
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            id = find_cstr(v, buf);
            if (id == ENG_TOKEN_NONE) {
                buf[0] = (char)b;
                id = tok_find(v, buf, 1);
            }
        } else {
            id = tok_find(v, buf, put_utf8(buf, tok_byte_cp((uint8_t)b)));
        }
        v->byte_tok[b] = id;
    }
}

/* The bytes each token stands for (as with special = true), computed once so decoding is a
 * copy. SentencePiece: "▁" -> ' ', <0xNN> -> the byte. Byte-level BPE: mapped characters back
 * to bytes. Unknown tokens show as U+2585, as in llama.cpp. */
static bool build_pieces(eng_vocab *v)
{
    uint64_t total = 0;
    for (int32_t i = 0; i < v->n; i++)
        total += v->len[i] + 3;
    v->piece_arena = malloc(total ? total : 1);
    v->piece_off = malloc((size_t)v->n * sizeof *v->piece_off);
    v->piece_len = malloc((size_t)v->n * sizeof *v->piece_len);
    if (!v->piece_arena || !v->piece_off || !v->piece_len)
        return false;
    uint64_t at = 0;
    for (int32_t i = 0; i < v->n; i++) {
        const unsigned char *s = (const unsigned char *)v->arena + v->off[i];
        size_t n = v->len[i], k = 0, used;
        char *o = v->piece_arena + at;
        unsigned a = v->attr[i];
        unsigned hi, lo;
        if ((a & ENG_TOKATTR_BYTE) && n == 6 && sscanf((const char *)s, "<0x%1x%1x>", &hi, &lo) == 2) {
            o[k++] = (char)(hi << 4 | lo);
        } else if (a & ENG_TOKATTR_UNKNOWN) {
            memcpy(o, "\xe2\x96\x85", 3);
            k = 3;
        } else if (a & (ENG_TOKATTR_CONTROL | ENG_TOKATTR_UNUSED) ||
                   (v->kind == ENG_VOCAB_BPE && (a & ENG_TOKATTR_USER_DEFINED))) {
            memcpy(o, s, n);
            k = n;
        } else if (v->kind == ENG_VOCAB_SPM) {
            for (size_t j = 0; j < n;) {
                if (j + 3 <= n && !memcmp(s + j, "\xe2\x96\x81", 3)) {
                    o[k++] = ' ';
                    j += 3;
                } else {
                    o[k++] = (char)s[j++];
                }
            }
        } else {
            for (size_t j = 0; j < n; j += used) {
                uint32_t cp = get_utf8(s + j, n - j, &used);
                int b = tok_cp_byte(cp);
                if (b >= 0)
                    o[k++] = (char)b;
                else
                    k += put_utf8(o + k, cp);
            }
        }
        v->piece_off[i] = at;
        v->piece_len[i] = (uint32_t)k;
        at += k;
    }
    return true;
}

void eng_vocab_free(eng_vocab *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->n_re; i++)
        pcre2_code_free(v->re[i]);
    free(v->eog);
    free(v->special);
    free(v->sp_bucket);
    free(v->sp_by_pair);
    free(v->merges);
    free(v->index.slot);
    free(v->piece_len);
    free(v->piece_off);
    free(v->piece_arena);
    free(v->attr);
    free(v->score);
    free(v->len);
    free(v->off);
    free(v->arena);
    free(v);
}

eng_tok_status eng_vocab_load(const gguf_file *f, eng_vocab **out, char *err, size_t errlen)
{
    *out = NULL;
    char model[64] = "";
    if (gguf_get_cstr(f, "tokenizer.ggml.model", model, sizeof model) != GGUF_OK)
        return tfail(err, errlen, ENG_TOK_ERR_FORMAT, "%s: no tokenizer (tokenizer.ggml.model "
                     "is missing)", gguf_source(f));
    eng_vocab *v = calloc(1, sizeof *v);
    if (!v)
        return tfail(err, errlen, ENG_TOK_ERR_NOMEM, "out of memory");
    eng_tok_status st;
    if (!strcmp(model, "llama")) {
        v->kind = ENG_VOCAB_SPM;
    } else if (!strcmp(model, "gpt2")) {
        v->kind = ENG_VOCAB_BPE;
    } else {
        st = tfail(err, errlen, ENG_TOK_ERR_UNSUPPORTED, "%s: tokenizer model '%s' is not "
                   "supported (sizeup reads 'llama' SentencePiece and 'gpt2' byte-level BPE)",
                   gguf_source(f), model);
        goto fail;
    }
    if (gguf_get_cstr(f, "tokenizer.ggml.pre", v->pre_name, sizeof v->pre_name) != GGUF_OK)
        snprintf(v->pre_name, sizeof v->pre_name, "default");
    if ((st = load_tokens(v, f, err, errlen)) || (st = load_scores_types(v, f, err, errlen)))
        goto fail;
    st = ENG_TOK_ERR_NOMEM;
    if (!build_index(v) || !load_special(v, f) || !build_special_list(v, f)) {
        tfail(err, errlen, st, "out of memory building the tokenizer of %s", gguf_source(f));
        goto fail;
    }
    init_byte_tokens(v);
    v->spm_word_split = v->kind == ENG_VOCAB_SPM && tok_spm_can_split_words(v);
    if (v->kind == ENG_VOCAB_BPE && (st = tok_bpe_init(v, f, err, errlen)) != ENG_TOK_OK)
        goto fail;
    st = ENG_TOK_ERR_NOMEM;
    if (!build_pieces(v)) {
        tfail(err, errlen, st, "out of memory building the tokenizer of %s", gguf_source(f));
        goto fail;
    }
    v->sp.nl = v->kind == ENG_VOCAB_SPM ? v->byte_tok['\n'] : ENG_TOKEN_NONE;
    if (v->kind == ENG_VOCAB_BPE) {
        tok_out o = { 0 };
        tok_bpe_fragment(v, "\n", 1, &o);
        v->sp.nl = o.n ? o.ids[0] : ENG_TOKEN_NONE;
        free(o.ids);
    }
    *out = v;
    return ENG_TOK_OK;
fail:
    eng_vocab_free(v);
    return st;
}

/* ---- accessors ---- */

eng_vocab_kind eng_vocab_kind_of(const eng_vocab *v) { return v->kind; }
const char *eng_vocab_pre_name(const eng_vocab *v) { return v->pre_name; }
int32_t eng_vocab_n_tokens(const eng_vocab *v) { return v->n; }
const eng_special_ids *eng_vocab_special(const eng_vocab *v) { return &v->sp; }

const char *eng_vocab_text(const eng_vocab *v, int32_t id, size_t *len)
{
    if (id < 0 || id >= v->n) {
        if (len)
            *len = 0;
        return "";
    }
    if (len)
        *len = v->len[id];
    return v->arena + v->off[id];
}

unsigned eng_vocab_attr(const eng_vocab *v, int32_t id)
{
    return id >= 0 && id < v->n ? v->attr[id] : 0;
}

bool eng_vocab_is_eog(const eng_vocab *v, int32_t id)
{
    for (size_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id)
            return true;
    return false;
}

/* ---- tokenizing ---- */

typedef struct frag_list {
    tok_frag *f;
    size_t n, cap;
    bool oom;
} frag_list;

static void frag_push(frag_list *l, tok_frag fr)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        tok_frag *p = realloc(l->f, cap * sizeof *p);
        if (!p) {
            l->oom = true;
            return;
        }
        l->f = p;
        l->cap = cap;
    }
    l->f[l->n++] = fr;
}

/* Split raw fragment fr at every occurrence of special token id, honouring its lstrip/rstrip
 * attributes (whitespace next to it is dropped from the neighbouring text). */
static void split_on(const eng_vocab *v, const char *text, tok_frag fr, int32_t id, frag_list *out)
{
    const char *tt = v->arena + v->off[id];
    size_t tl = v->len[id], off = fr.off, len = fr.len;
    unsigned a = v->attr[id];
    for (;;) {
        const char *m = len >= tl ? memmem(text + off, len, tt, tl) : NULL;
        if (!m) {
            if (len)
                frag_push(out, (tok_frag){ false, ENG_TOKEN_NONE, off, len });
            return;
        }
        size_t at = (size_t)(m - text), left = at - off;
        if (a & ENG_TOKATTR_LSTRIP)
            while (left && isspace((unsigned char)text[off + left - 1]))
                left--;
        if (left)
            frag_push(out, (tok_frag){ false, ENG_TOKEN_NONE, off, left });
        frag_push(out, (tok_frag){ true, id, 0, 0 });
        size_t roff = at + tl, rlen = off + len - roff;
        if (a & ENG_TOKATTR_RSTRIP)
            while (rlen && isspace((unsigned char)text[roff])) {
                roff++;
                rlen--;
            }
        off = roff;
        len = rlen;
    }
}

/* Mark the special tokens that occur anywhere in the text (one pass, by first two bytes). */
static void find_specials(const eng_vocab *v, const char *text, size_t len, bool parse_special,
                          uint8_t *found)
{
    const unsigned char *u = (const unsigned char *)text;
    for (size_t i = 0; i < len; i++) {
        unsigned key = (unsigned)u[i] << 8 | (i + 1 < len ? u[i + 1] : 0);
        for (uint32_t k = v->sp_bucket[key]; k < v->sp_bucket[key + 1]; k++) {
            uint32_t s = v->sp_by_pair[k];
            int32_t id = v->special[s];
            if (found[s] || v->len[id] > len - i ||
                (!parse_special && (v->attr[id] & (ENG_TOKATTR_CONTROL | ENG_TOKATTR_UNKNOWN))))
                continue;
            found[s] = memcmp(text + i, v->arena + v->off[id], v->len[id]) == 0;
        }
    }
}

/* llama.cpp's order: for each special token, longest first, split every raw fragment. Tokens
 * absent from the whole text cannot be in any fragment of it and are skipped. */
static bool partition(const eng_vocab *v, const char *text, size_t len, bool parse_special,
                      frag_list *frags)
{
    frag_push(frags, (tok_frag){ false, ENG_TOKEN_NONE, 0, len });
    uint8_t *found = calloc(v->n_special ? v->n_special : 1, 1);
    if (!found)
        return false;
    find_specials(v, text, len, parse_special, found);
    for (size_t s = 0; s < v->n_special && !frags->oom; s++) {
        int32_t id = v->special[s];
        if (!found[s])
            continue;
        frag_list next = { 0 };
        for (size_t i = 0; i < frags->n; i++) {
            if (frags->f[i].is_token)
                frag_push(&next, frags->f[i]);
            else
                split_on(v, text, frags->f[i], id, &next);
        }
        free(frags->f);
        *frags = next;
    }
    free(found);
    return !frags->oom;
}

/* SentencePiece: spaces become "▁", and text that starts the input or follows a special token
 * gets one "▁" in front when add_space_prefix is set. */
static void spm_raw(const eng_vocab *v, const char *s, size_t n, bool prefix, tok_out *out)
{
    size_t cap = 3 * n + 4, k = 0;
    char *buf = malloc(cap);
    if (!buf) {
        out->oom = true;
        return;
    }
    if (prefix) {
        memcpy(buf, "\xe2\x96\x81", 3);
        k = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(buf + k, "\xe2\x96\x81", 3);
            k += 3;
        } else {
            buf[k++] = s[i];
        }
    }
    tok_spm_fragment(v, buf, k, out);
    free(buf);
}

eng_tok_status eng_tokenize(const eng_vocab *v, const char *text, size_t len, bool add_special,
                            bool parse_special, int32_t **ids, size_t *n)
{
    tok_out out = { 0 };
    frag_list frags = { 0 };
    *ids = NULL;
    *n = 0;
    if (add_special && v->sp.add_bos && v->sp.bos != ENG_TOKEN_NONE)
        tok_out_push(&out, v->sp.bos);
    if (len && !partition(v, text, len, parse_special, &frags)) {
        free(frags.f);
        free(out.ids);
        return ENG_TOK_ERR_NOMEM;
    }
    bool prev_special = true;
    for (size_t i = 0; i < frags.n; i++) {
        const tok_frag *fr = &frags.f[i];
        if (fr->is_token) {
            tok_out_push(&out, fr->id);
            prev_special = true;
        } else if (v->kind == ENG_VOCAB_SPM) {
            spm_raw(v, text + fr->off, fr->len, v->sp.add_space_prefix && prev_special, &out);
            prev_special = false;
        } else {
            tok_bpe_fragment(v, text + fr->off, fr->len, &out);
        }
    }
    free(frags.f);
    if (add_special && v->sp.add_eos && v->sp.eos != ENG_TOKEN_NONE)
        tok_out_push(&out, v->sp.eos);
    if (out.oom) {
        free(out.ids);
        return ENG_TOK_ERR_NOMEM;
    }
    *ids = out.ids;
    *n = out.n;
    return ENG_TOK_OK;
}
