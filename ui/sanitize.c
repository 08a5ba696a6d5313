/* The untrusted-text filter (see sanitize.h for the rule and why it shows instead of drops). */
#include "ui/sanitize.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "engine/utf8.h" /* a libc-only leaf: the terminal-control test */

static const char fffd[3] = { (char)0xEF, (char)0xBF, (char)0xBD };

static size_t put_fffd(char *out)
{
    out[0] = fffd[0];
    out[1] = fffd[1];
    out[2] = fffd[2];
    return 3;
}

/* An ASCII byte: printable, '\n' and '\t' as is; C0 as ^X, DEL as ^?. */
static size_t put_ascii(uint8_t c, char *out)
{
    if ((c >= 0x20 && c < 0x7F) || c == '\n' || c == '\t') {
        out[0] = (char)c;
        return 1;
    }
    out[0] = '^';
    out[1] = c == 0x7F ? '?' : (char)(c + 0x40);
    return 2;
}

/* Lowest and highest allowed second byte after a lead (Unicode table 3-7): excludes overlongs,
 * surrogates and code points above U+10FFFF. */
static void second_range(uint8_t lead, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (lead == 0xE0)
        *lo = 0xA0;
    else if (lead == 0xED)
        *hi = 0x9F;
    else if (lead == 0xF0)
        *lo = 0x90;
    else if (lead == 0xF4)
        *hi = 0x8F;
}

/* A complete, valid sequence in z->pend: C1 controls become ^[ + their 7-bit form, the bidi
 * controls (the three-byte ones engine/utf8's test names) "<U+" + four hex digits + ">". */
static size_t put_complete(ui_sanitizer *z, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = z->need;
    z->have = z->need = 0;
    if (n == 2 && z->pend[0] == 0xC2 && z->pend[1] < 0xA0) {
        out[0] = '^';
        out[1] = '[';
        out[2] = (char)(z->pend[1] - 0x40);
        return 3;
    }
    if (n == 3 && utf8_is_control(z->pend, n)) {
        uint32_t cp = utf8_decode(z->pend, n);
        memcpy(out, "<U+", 3);
        for (int i = 0; i < 4; i++)
            out[3 + i] = hex[(cp >> (12 - 4 * i)) & 0xF];
        out[7] = '>';
        return 8;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)z->pend[i];
    return n;
}

/* A byte between characters. */
static size_t put_lead(ui_sanitizer *z, uint8_t c, char *out)
{
    if (c < 0x80)
        return put_ascii(c, out);
    if (c >= 0xC2 && c <= 0xDF)
        z->need = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        z->need = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        z->need = 4;
    else
        return put_fffd(out);  /* stray continuation, C0/C1 overlong leads, F5..FF */
    z->pend[0] = c;
    z->have = 1;
    return 0;
}

size_t ui_sanitize_feed(ui_sanitizer *z, const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)in[i];
        if (!z->need) {
            o += put_lead(z, c, out + o);
            continue;
        }
        uint8_t lo = 0x80, hi = 0xBF;
        if (z->have == 1)
            second_range(z->pend[0], &lo, &hi);
        if (c < lo || c > hi) {
            /* the sequence so far is one invalid subpart; c starts afresh */
            z->have = z->need = 0;
            o += put_fffd(out + o);
            o += put_lead(z, c, out + o);
            continue;
        }
        z->pend[z->have++] = c;
        if (z->have == z->need)
            o += put_complete(z, out + o);
    }
    return o;
}

size_t ui_sanitize_flush(ui_sanitizer *z, char *out)
{
    if (!z->need)
        return 0;
    z->have = z->need = 0;
    return put_fffd(out);
}

void ui_sanitize_init(ui_sanitizer *z)
{
    z->have = z->need = 0;
}

char *ui_sanitize_dup(const char *s, size_t n)
{
    char *out = malloc(UI_SANITIZE_MAX(n) + 1);
    if (!out)
        return NULL;
    ui_sanitizer z;
    ui_sanitize_init(&z);
    size_t o = ui_sanitize_feed(&z, s, n, out);
    o += ui_sanitize_flush(&z, out + o);
    out[o] = 0;
    return out;
}
