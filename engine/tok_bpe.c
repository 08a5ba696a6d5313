/* Byte-level BPE (tokenizer.ggml.model = "gpt2"): the text is first split by the model's
 * pre-tokenizer patterns (run with PCRE2, UTF + UCP, JIT), each piece's bytes become GPT-2's
 * printable stand-in characters, and adjacent tokens are merged lowest merge rank first (ties:
 * leftmost). Symbols carry token ids from the start, since every byte's stand-in character is
 * a token, so a merge is an integer-pair lookup rather than string concatenation. */
#include "engine/tok_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- GPT-2's byte <-> character mapping ---- */

/* Printable bytes stand for themselves; the other 68 get codepoints 256, 257, ... in order. */
static uint16_t byte_cp[256];
static int16_t cp_byte[256 + 68];
static pthread_once_t map_once = PTHREAD_ONCE_INIT;

static void init_map(void)
{
    uint32_t k = 0;
    for (int i = 0; i < 256 + 68; i++)
        cp_byte[i] = -1;
    for (unsigned b = 0; b < 256; b++) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        byte_cp[b] = (uint16_t)(printable ? b : 256 + k++);
        cp_byte[byte_cp[b]] = (int16_t)b;
    }
}

uint32_t tok_byte_cp(uint8_t b)
{
    pthread_once(&map_once, init_map);
    return byte_cp[b];
}

int tok_cp_byte(uint32_t cp)
{
    pthread_once(&map_once, init_map);
    return cp < 256 + 68 ? cp_byte[cp] : -1;
}

/* ---- pre-tokenizers (patterns as llama.cpp and the HF tokenizer.json files define them) ---- */

#define P_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define P_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?" \
    "\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define P_QWEN2 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?" \
    "\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define P_CJK "[一-龥ࠀ-一가-퟿]+"

typedef struct pre_def {
    const char *names;      /* tokenizer.ggml.pre values, '|'-separated */
    bool ignore_merges;
    const char *re[6];
} pre_def;

static const pre_def pre_defs[] = {
    { "default", false, { "[\\p{P}\\$\\+<=>\\^~\\|]+", P_GPT2, "\\p{N}+", "[0-9][0-9][0-9]" } },
    { "llama3|llama-v3|llama-bpe|falcon3", true, { P_LLAMA3 } },
    { "dbrx|smaug-bpe", false, { P_LLAMA3 } },
    /* Escapes stand for characters that Unicode normalisation would otherwise change in this
     * source (Kelvin sign, ohm sign, Greek extended letters): the ranges need the originals. */
    { "deepseek-llm", false, { "[\r\n]",
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚ"
        "Ḁ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳ"
        "Ꙁ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", P_CJK, "\\p{N}+" } },
    { "deepseek-coder", false, { "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", P_CJK, "\\p{N}" } },
    { "falcon", false, { "[\\p{P}\\$\\+<=>\\^~\\|`]+", P_GPT2, "[0-9][0-9][0-9]" } },
    { "starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", false,
      { "\\p{N}", P_GPT2 } },
    { "gpt-2|phi-2|mpt|olmo|jais|roberta-bpe|jina-es|jina-de|gigachat|jina-v1-en|jina-v2-es|"
      "jina-v2-de|jina-v2-code", false, { P_GPT2 } },
    { "qwen2|deepseek-r1-qwen|stablelm2|qwen2.5|qwen-2.5", false, { P_QWEN2 } },
};

static bool name_in(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == n && !memcmp(p, name, n))
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

/* The bytes a match of re can start with, from PCRE2's own analysis (a first code unit or a
 * start bitmap); all bytes when it found neither. A piece containing none of them cannot match,
 * so the pattern need not run on it (Deepseek's CJK pattern on ASCII text, say). */
static void start_bytes(const pcre2_code *re, uint8_t map[32])
{
    uint32_t first_type = 0, first = 0;
    const uint8_t *bitmap = NULL;
    pcre2_pattern_info(re, PCRE2_INFO_FIRSTCODETYPE, &first_type);
    /* (no pattern here is caseless, so a first code unit is exactly one byte) */
    if (first_type == 1 && pcre2_pattern_info(re, PCRE2_INFO_FIRSTCODEUNIT, &first) == 0) {
        memset(map, 0, 32);
        map[first >> 3] |= (uint8_t)(1u << (first & 7));
        return;
    }
    if (pcre2_pattern_info(re, PCRE2_INFO_FIRSTBITMAP, &bitmap) == 0 && bitmap) {
        memcpy(map, bitmap, 32);
        return;
    }
    memset(map, 0xff, 32);
}

static eng_tok_status compile_pre(eng_vocab *v, const pre_def *d, char *err, size_t errlen)
{
    v->ignore_merges = d->ignore_merges;
    for (int i = 0; i < 6 && d->re[i]; i++) {
        int code;
        PCRE2_SIZE at;
        /* $ means end of the piece only (as in the HF regex engine), not "before a final \n" */
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)d->re[i], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF |
                                       PCRE2_DOLLAR_ENDONLY, &code, &at, NULL);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            snprintf(err, errlen, "pre-tokenizer '%s': pattern %d: %s at %zu", v->pre_name, i,
                     (const char *)msg, (size_t)at);
            return ENG_TOK_ERR_FORMAT;
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if absent */
        start_bytes(re, v->re_first[v->n_re]);
        v->re[v->n_re++] = re;
    }
    return ENG_TOK_OK;
}

/* ---- merges ---- */

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static tok_merge *merge_slot(const eng_vocab *v, uint64_t key)
{
    for (uint64_t i = mix64(key) & v->merge_mask;; i = (i + 1) & v->merge_mask)
        if (v->merges[i].key == key || v->merges[i].key == UINT64_MAX)
            return &v->merges[i];
}

/* Each merge line "A B" becomes (id A, id B) -> (rank, id AB). The first line wins for a
 * repeated pair, as in llama.cpp; a merge whose result is not a token can never produce a
 * valid token and is left out. */
static eng_tok_status load_merges(eng_vocab *v, const gguf_file *f, char *err, size_t errlen)
{
    int64_t k = gguf_find_key(f, "tokenizer.ggml.merges");
    gguf_value a;
    if (k < 0 || gguf_kv_value(f, k, &a) || a.v.arr.type != GGUF_VT_STRING) {
        snprintf(err, errlen, "%s: byte-level BPE vocabulary without tokenizer.ggml.merges",
                 gguf_source(f));
        return ENG_TOK_ERR_FORMAT;
    }
    uint64_t cap = 16;
    while (cap < a.v.arr.n * 2)
        cap *= 2;
    v->merges = malloc(cap * sizeof *v->merges);
    char *buf = malloc(1024);
    if (!v->merges || !buf) {
        free(buf);
        snprintf(err, errlen, "out of memory for %llu merges", (unsigned long long)a.v.arr.n);
        return ENG_TOK_ERR_NOMEM;
    }
    for (uint64_t i = 0; i < cap; i++)
        v->merges[i].key = UINT64_MAX;
    v->merge_mask = cap - 1;
    for (uint64_t r = 0; r < a.v.arr.n && r < INT32_MAX; r++) {
        gguf_value e;
        gguf_arr_get(f, k, r, &e);
        const char *s = e.v.s.ptr;
        size_t n = (size_t)e.v.s.len, sp = 1;
        while (sp < n && s[sp] != ' ')
            sp++;
        if (sp >= n || n > 1023)
            continue;
        int32_t l = tok_find(v, s, sp), rt = tok_find(v, s + sp + 1, n - sp - 1);
        memcpy(buf, s, sp);
        memcpy(buf + sp, s + sp + 1, n - sp - 1);
        int32_t m = tok_find(v, buf, n - 1);
        if (l < 0 || rt < 0 || m < 0)
            continue;
        uint64_t key = (uint64_t)l << 32 | (uint32_t)rt;
        tok_merge *slot = merge_slot(v, key);
        if (slot->key == UINT64_MAX)
            *slot = (tok_merge){ key, (int32_t)r, m };
    }
    free(buf);
    return ENG_TOK_OK;
}

eng_tok_status tok_bpe_init(eng_vocab *v, const gguf_file *f, char *err, size_t errlen)
{
    const pre_def *d = NULL;
    for (size_t i = 0; i < sizeof pre_defs / sizeof pre_defs[0] && !d; i++)
        if (name_in(pre_defs[i].names, v->pre_name))
            d = &pre_defs[i];
    if (!d) {
        snprintf(err, errlen, "%s: pre-tokenizer '%s' (tokenizer.ggml.pre) is not supported; "
                 "sizeup will not guess, since a wrong split gives wrong tokens", gguf_source(f),
                 v->pre_name);
        return ENG_TOK_ERR_UNSUPPORTED;
    }
    eng_tok_status st = compile_pre(v, d, err, errlen);
    return st ? st : load_merges(v, f, err, errlen);
}

/* ---- splitting and merging ---- */

typedef struct span {
    size_t off, len;
} span;

typedef struct span_list {
    span *s;
    size_t n, cap;
    bool oom;
} span_list;

static void span_push(span_list *l, size_t off, size_t len)
{
    if (!len || l->oom)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        span *p = realloc(l->s, cap * sizeof *p);
        if (!p) {
            l->oom = true;
            return;
        }
        l->s = p;
        l->cap = cap;
    }
    l->s[l->n++] = (span){ off, len };
}

static bool may_match(const uint8_t first[32], const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        if (first[b >> 3] & (1u << (b & 7)))
            return true;
    }
    return false;
}

/* Refine every span with one pattern: matches and the gaps between them both become spans. */
static void split_with(const pcre2_code *re, const uint8_t first[32], pcre2_match_data *md,
                       const char *text, const span_list *in, span_list *out)
{
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const char *sub = text + in->s[i].off;
        size_t len = in->s[i].len, at = 0;
        if (!may_match(first, sub, len)) {
            span_push(out, in->s[i].off, len);
            continue;
        }
        while (at < len) {
            int rc = pcre2_match(re, (PCRE2_SPTR)sub, len, at, 0, md, NULL);
            if (rc < 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            span_push(out, in->s[i].off + at, ms - at);
            if (me == ms) { /* an empty match cannot advance: take one byte as a gap */
                me = ms + 1;
                span_push(out, in->s[i].off + ms, 1);
            } else {
                span_push(out, in->s[i].off + ms, me - ms);
            }
            at = me;
        }
        span_push(out, in->s[i].off + at, len - at);
    }
}

typedef struct bpe_sym {
    int32_t id, prev, next;
    uint32_t n;     /* bytes covered; 0 once merged into the left neighbour */
} bpe_sym;

typedef struct bpe_pair {
    int32_t rank, left, right, lid, rid, merged;
} bpe_pair;

static bool bpair_before(const bpe_pair *x, const bpe_pair *y)
{
    return x->rank < y->rank || (x->rank == y->rank && x->left < y->left);
}

typedef struct bpe_ctx {
    bpe_sym *sym;
    bpe_pair *heap;
    size_t nh, cap;   /* cap: symbols and heap entries this context can hold */
    char *mapped;     /* a piece in GPT-2 characters, for ignore_merges lookups */
} bpe_ctx;

static void bheap_push(bpe_ctx *c, bpe_pair p)
{
    size_t i = c->nh++;
    while (i > 0 && bpair_before(&p, &c->heap[(i - 1) / 2])) {
        c->heap[i] = c->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    c->heap[i] = p;
}

static bpe_pair bheap_pop(bpe_ctx *c)
{
    bpe_pair top = c->heap[0], last = c->heap[--c->nh];
    size_t i = 0;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= c->nh)
            break;
        if (k + 1 < c->nh && bpair_before(&c->heap[k + 1], &c->heap[k]))
            k++;
        if (!bpair_before(&c->heap[k], &last))
            break;
        c->heap[i] = c->heap[k];
        i = k;
    }
    if (c->nh)
        c->heap[i] = last;
    return top;
}

static void add_pair(const eng_vocab *v, bpe_ctx *c, int32_t l, int32_t r)
{
    if (l < 0 || r < 0 || c->sym[l].id < 0 || c->sym[r].id < 0)
        return;
    uint64_t key = (uint64_t)c->sym[l].id << 32 | (uint32_t)c->sym[r].id;
    const tok_merge *m = merge_slot(v, key);
    if (m->key != key)
        return;
    bheap_push(c, (bpe_pair){ m->rank, l, r, c->sym[l].id, c->sym[r].id, m->merged });
}

/* Merge one pre-token (raw bytes p[0..n)). */
static void bpe_piece(const eng_vocab *v, bpe_ctx *c, const unsigned char *p, size_t n,
                      tok_out *out)
{
    if (v->ignore_merges) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t cp = tok_byte_cp(p[i]);
            if (cp < 0x80) {
                c->mapped[k++] = (char)cp;
            } else {
                c->mapped[k++] = (char)(0xc0 | cp >> 6);
                c->mapped[k++] = (char)(0x80 | (cp & 0x3f));
            }
        }
        int32_t id = tok_find(v, c->mapped, k);
        if (id != ENG_TOKEN_NONE) {
            tok_out_push(out, id);
            return;
        }
    }
    for (size_t i = 0; i < n; i++)
        c->sym[i] = (bpe_sym){ v->byte_tok[p[i]], (int32_t)i - 1, i + 1 == n ? -1 : (int32_t)i + 1, 1 };
    c->nh = 0;
    for (size_t i = 1; i < n; i++)
        add_pair(v, c, (int32_t)i - 1, (int32_t)i);
    while (c->nh) {
        bpe_pair q = bheap_pop(c);
        bpe_sym *l = &c->sym[q.left], *r = &c->sym[q.right];
        if (!l->n || !r->n || l->id != q.lid || r->id != q.rid)
            continue; /* stale: a side has changed since the pair was queued */
        l->id = q.merged;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            c->sym[r->next].prev = q.left;
        add_pair(v, c, l->prev, q.left);
        add_pair(v, c, q.left, l->next);
    }
    for (int32_t i = 0; i != -1; i = c->sym[i].next) {
        if (c->sym[i].id >= 0)
            tok_out_push(out, c->sym[i].id);
        else if (v->sp.unk != ENG_TOKEN_NONE)
            tok_out_push(out, v->sp.unk);
    }
}

/* Pieces repeat a lot in real text ("the", " and", "\n"), so the merge result of each distinct
 * piece (up to CACHE_MAX_PIECE bytes) is kept for the rest of the call: a hash of the piece's
 * bytes to where its ids sit in the output. Results cannot differ between occurrences, since a
 * piece is merged on its own. */
#define CACHE_MAX_PIECE 48

typedef struct piece_cache {
    struct { uint64_t hash; size_t off, len; uint32_t ids_at, n_ids; } *slot;
    size_t mask, used;
} piece_cache;

static bool cache_init(piece_cache *c)
{
    c->mask = 4095;
    c->used = 0;
    c->slot = calloc(c->mask + 1, sizeof *c->slot);
    return c->slot != NULL;
}

/* The slot for piece (text + off, len): a match, or the empty slot where it belongs. */
static size_t cache_find(const piece_cache *c, const char *text, size_t off, size_t len, uint64_t h)
{
    for (size_t i = h & c->mask;; i = (i + 1) & c->mask) {
        if (!c->slot[i].len)
            return i;
        if (c->slot[i].hash == h && c->slot[i].len == len &&
            !memcmp(text + c->slot[i].off, text + off, len))
            return i;
    }
}

static void cache_grow(piece_cache *c)
{
    piece_cache n = { calloc(2 * (c->mask + 1), sizeof *c->slot), 2 * c->mask + 1, c->used };
    if (!n.slot)
        return;
    for (size_t i = 0; i <= c->mask; i++)
        if (c->slot[i].len) {
            size_t j = c->slot[i].hash & n.mask;
            while (n.slot[j].len)
                j = (j + 1) & n.mask;
            n.slot[j] = c->slot[i];
        }
    free(c->slot);
    *c = n;
}

/* Merge a piece, or copy the ids of an earlier identical piece from the output. */
static void cached_piece(const eng_vocab *v, bpe_ctx *ctx, piece_cache *c, const char *text,
                         size_t off, size_t len, tok_out *out)
{
    if (len > CACHE_MAX_PIECE || !c->slot) {
        bpe_piece(v, ctx, (const unsigned char *)text + off, len, out);
        return;
    }
    uint64_t h = tok_hash(text + off, len);
    size_t i = cache_find(c, text, off, len, h);
    if (c->slot[i].len) {
        for (uint32_t k = 0; k < c->slot[i].n_ids; k++)
            tok_out_push(out, out->ids[c->slot[i].ids_at + k]);
        return;
    }
    size_t before = out->n;
    bpe_piece(v, ctx, (const unsigned char *)text + off, len, out);
    if (out->oom || out->n - before > UINT32_MAX || before > UINT32_MAX)
        return;
    c->slot[i].hash = h;
    c->slot[i].off = off;
    c->slot[i].len = len;
    c->slot[i].ids_at = (uint32_t)before;
    c->slot[i].n_ids = (uint32_t)(out->n - before);
    if (++c->used * 2 > c->mask)
        cache_grow(c);
}

void tok_bpe_fragment(const eng_vocab *v, const char *text, size_t len, tok_out *out)
{
    span_list a = { 0 }, b = { 0 };
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    bpe_ctx c = { 0 };
    span_push(&a, 0, len);
    for (int i = 0; i < v->n_re && md && !a.oom && !b.oom; i++) {
        split_with(v->re[i], v->re_first[i], md, text, &a, &b);
        span_list t = a;
        a = b;
        b = t;
    }
    size_t longest = 0;
    for (size_t i = 0; i < a.n; i++)
        if (a.s[i].len > longest)
            longest = a.s[i].len;
    /* each merge queues at most two pairs, so 3n heap entries always suffice */
    c.sym = malloc((longest + 1) * sizeof *c.sym);
    c.heap = malloc((3 * longest + 1) * sizeof *c.heap);
    c.mapped = malloc(2 * longest + 1);
    piece_cache pc;
    cache_init(&pc); /* without it (no memory) every piece is merged afresh */
    if (!md || a.oom || b.oom || !c.sym || !c.heap || !c.mapped)
        out->oom = true;
    else
        for (size_t i = 0; i < a.n; i++)
            cached_piece(v, &c, &pc, text, a.s[i].off, a.s[i].len, out);
    free(pc.slot);
    free(c.sym);
    free(c.heap);
    free(c.mapped);
    free(a.s);
    free(b.s);
    pcre2_match_data_free(md);
}
