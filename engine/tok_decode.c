/* Decoding token ids back to text: the per-token pieces (precomputed at load by tokenizer.c),
 * whole-sequence decode, and the streaming decoder that releases only complete UTF-8
 * characters. */
#include "engine/tok_internal.h"

#include <stdlib.h>
#include <string.h>

const char *eng_token_piece(const eng_vocab *v, int32_t id, bool special, size_t *len)
{
    if (id < 0 || id >= v->n || (!special && (v->attr[id] & ENG_TOKATTR_CONTROL)) ||
        (v->attr[id] & ENG_TOKATTR_UNUSED)) {
        *len = 0;
        return "";
    }
    *len = v->piece_len[id];
    return v->piece_arena + v->piece_off[id];
}

struct eng_detok {
    const eng_vocab *v;
    bool special, strip_space; /* strip_space: the next text-bearing token drops one ' ' */
    char *buf;                 /* held bytes (an incomplete UTF-8 sequence), then the output */
    size_t held, cap;
};

eng_detok *eng_detok_new(const eng_vocab *v, bool special, bool at_start)
{
    eng_detok *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->v = v;
    d->special = special;
    d->strip_space = at_start && v->sp.add_space_prefix;
    return d;
}

void eng_detok_free(eng_detok *d)
{
    if (!d)
        return;
    free(d->buf);
    free(d);
}

/* Length of the complete prefix of p[0..n): a trailing lead byte whose continuation bytes have
 * not all arrived yet is held back; anything invalid is released as it is. */
static size_t complete_prefix(const unsigned char *p, size_t n)
{
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned c = p[n - back];
        if ((c & 0xc0) == 0x80)
            continue; /* a continuation byte: keep looking for its lead */
        size_t need = c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (c >= 0xf8)
            need = 1;
        return need > back ? n - back : n;
    }
    return n;
}

const char *eng_detok_push(eng_detok *d, int32_t id, size_t *len)
{
    size_t pl;
    const char *piece = eng_token_piece(d->v, id, d->special, &pl);
    if (d->strip_space && pl) {
        if (piece[0] == ' ') {
            piece++;
            pl--;
        }
        d->strip_space = false;
    }
    if (d->held + pl + 1 > d->cap) {
        size_t cap = (d->held + pl + 1) * 2;
        char *b = realloc(d->buf, cap);
        if (!b) {
            *len = 0;
            return "";
        }
        d->buf = b;
        d->cap = cap;
    }
    memcpy(d->buf + d->held, piece, pl);
    size_t total = d->held + pl, done = complete_prefix((unsigned char *)d->buf, total);
    /* Return the complete part; move the held tail to the front for the next call. Both
     * live in buf, so the returned text is copied out first into the space after it. */
    static const char empty[1];
    if (done == 0) {
        d->held = total;
        *len = 0;
        return empty;
    }
    if (d->cap < total + done + 1) {
        char *b = realloc(d->buf, total + done + 1);
        if (!b) {
            *len = 0;
            return empty;
        }
        d->buf = b;
        d->cap = total + done + 1;
    }
    memcpy(d->buf + total, d->buf, done);
    memmove(d->buf, d->buf + done, total - done);
    d->held = total - done;
    *len = done;
    return d->buf + total;
}

const char *eng_detok_flush(eng_detok *d, size_t *len)
{
    *len = d->held;
    d->held = 0;
    return d->buf ? d->buf : "";
}

eng_tok_status eng_detokenize(const eng_vocab *v, const int32_t *ids, size_t n, bool special,
                              char **text, size_t *len)
{
    size_t total = 1, pl;
    for (size_t i = 0; i < n; i++) {
        eng_token_piece(v, ids[i], special, &pl);
        total += pl;
    }
    char *out = malloc(total);
    if (!out)
        return ENG_TOK_ERR_NOMEM;
    size_t k = 0;
    bool strip = v->sp.add_space_prefix;
    for (size_t i = 0; i < n; i++) {
        const char *p = eng_token_piece(v, ids[i], special, &pl);
        if (strip && pl) {
            if (p[0] == ' ') {
                p++;
                pl--;
            }
            strip = false;
        }
        memcpy(out + k, p, pl);
        k += pl;
    }
    out[k] = 0;
    *text = out;
    *len = k;
    return ENG_TOK_OK;
}
