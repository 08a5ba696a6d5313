/* SentencePiece BPE merging (tokenizer.ggml.model = "llama"), as llama.cpp does it: start from
 * one symbol per UTF-8 character, repeatedly merge the adjacent pair whose concatenation is the
 * vocabulary entry with the highest score (ties: the leftmost pair), and emit byte tokens
 * (<0xNN>) for characters that are not in the vocabulary. A binary heap of candidate pairs keeps
 * this O(n log n) in the input length. */
#include "engine/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct spm_sym {
    size_t start;    /* byte offset in the text */
    uint32_t n;      /* bytes; 0 once merged into its left neighbour */
    int32_t prev, next, id;
} spm_sym;

typedef struct spm_pair {
    float score;
    int32_t left, right, id;
    uint32_t size;   /* bytes of the merged text, to notice stale entries */
} spm_pair;

typedef struct spm_heap {
    spm_pair *a;
    size_t n, cap;
    bool oom;
} spm_heap;

static bool pair_before(const spm_pair *x, const spm_pair *y)
{
    return x->score > y->score || (x->score == y->score && x->left < y->left);
}

static void heap_push(spm_heap *h, spm_pair p)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        spm_pair *a = realloc(h->a, cap * sizeof *a);
        if (!a) {
            h->oom = true;
            return;
        }
        h->a = a;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && pair_before(&p, &h->a[(i - 1) / 2])) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = p;
}

static spm_pair heap_pop(spm_heap *h)
{
    spm_pair top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && pair_before(&h->a[c + 1], &h->a[c]))
            c++;
        if (!pair_before(&h->a[c], &last))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

static void try_pair(const eng_vocab *v, const char *text, const spm_sym *s, int32_t l,
                     int32_t r, spm_heap *h)
{
    if (l < 0 || r < 0)
        return;
    uint32_t size = s[l].n + s[r].n;
    int32_t id = tok_find(v, text + s[l].start, size);
    if (id == ENG_TOKEN_NONE)
        return;
    heap_push(h, (spm_pair){ v->score[id], l, r, id, size });
}

/* A symbol left without a vocabulary entry: its bytes as byte tokens, or <unk> for the whole
 * character when the vocabulary has no byte tokens (BabyLlama, for one). */
static void emit_bytes(const eng_vocab *v, const char *text, const spm_sym *s, tok_out *out)
{
    for (uint32_t j = 0; j < s->n; j++) {
        int32_t id = v->byte_tok[(uint8_t)text[s->start + j]];
        if (id == ENG_TOKEN_NONE) {
            if (v->sp.unk != ENG_TOKEN_NONE)
                tok_out_push(out, v->sp.unk);
            return;
        }
        tok_out_push(out, id);
    }
}

static void spm_segment(const eng_vocab *v, const char *text, size_t len, tok_out *out)
{
    spm_sym *s = malloc((len ? len : 1) * sizeof *s);
    spm_heap h = { 0 };
    if (!s) {
        out->oom = true;
        return;
    }
    int32_t n = 0;
    for (size_t off = 0; off < len; n++) {
        unsigned c = (unsigned char)text[off];
        size_t cl = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
        if (cl > len - off)
            cl = len - off;
        s[n] = (spm_sym){ off, (uint32_t)cl, n - 1, off + cl == len ? -1 : n + 1,
                          tok_find(v, text + off, cl) };
        off += cl;
    }
    for (int32_t i = 1; i < n; i++)
        try_pair(v, text, s, i - 1, i, &h);
    while (h.n && !h.oom) {
        spm_pair p = heap_pop(&h);
        spm_sym *l = &s[p.left], *r = &s[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size)
            continue; /* one side was merged elsewhere since this pair was queued */
        l->n += r->n;
        l->id = p.id;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            s[r->next].prev = p.left;
        try_pair(v, text, s, l->prev, p.left, &h);
        try_pair(v, text, s, p.left, l->next, &h);
    }
    if (h.oom)
        out->oom = true;
    for (int32_t i = 0; n > 0 && i != -1; i = s[i].next) {
        if (s[i].id != ENG_TOKEN_NONE)
            tok_out_push(out, s[i].id);
        else
            emit_bytes(v, text, &s[i], out);
    }
    free(h.a);
    free(s);
}

bool tok_spm_can_split_words(const eng_vocab *v)
{
    for (int32_t id = 0; id < v->n; id++) {
        const char *t = v->arena + v->off[id];
        for (uint32_t i = 1; i + 3 <= v->len[id]; i++)
            if (!memcmp(t + i, "\xe2\x96\x81", 3) &&
                (i < 3 || memcmp(t + i - 3, "\xe2\x96\x81", 3) != 0))
                return false;
    }
    return true;
}

/* Merging the whole text at once makes the candidate heap as large as the text. When no token
 * contains "▁" right after some other character, no merge can ever join a character to a "▁"
 * that follows it, so the text splits there into words that merge independently and in any
 * order, with exactly the same result, and the heap stays word-sized. */
void tok_spm_fragment(const eng_vocab *v, const char *text, size_t len, tok_out *out)
{
    if (!v->spm_word_split) {
        spm_segment(v, text, len, out);
        return;
    }
    size_t start = 0;
    for (size_t i = 3; i + 3 <= len; i++) {
        const unsigned char *u = (const unsigned char *)text + i;
        if (memcmp(u, "\xe2\x96\x81", 3) || !memcmp(u - 3, "\xe2\x96\x81", 3))
            continue;
        if (u[-1] >= 0xc0 || u[-2] >= 0xe0 || u[-3] >= 0xf0)
            continue; /* (invalid UTF-8) a lead byte before i claims bytes past it */
        spm_segment(v, text + start, i - start, out);
        start = i;
    }
    spm_segment(v, text + start, len - start, out);
}
