/* Strict UTF-8 and terminal controls (see utf8.h). */
#include "engine/utf8.h"

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    if (!n)
        return 0;
    unsigned char c = s[0];
    size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!k || k > n)
        return 0;
    /* the second byte's range is narrower after E0 (overlong), ED (surrogates), F0 (overlong)
     * and F4 (above U+10FFFF) */
    unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    for (size_t i = 1; i < k; i++, lo = 0x80, hi = 0xBF)
        if (s[i] < lo || s[i] > hi)
            return 0;
    return k;
}

uint32_t utf8_decode(const unsigned char *s, size_t k)
{
    static const unsigned char lead_mask[5] = { 0, 0x7F, 0x1F, 0x0F, 0x07 };
    if (k < 1 || k > 4)
        return 0;
    uint32_t cp = s[0] & lead_mask[k];
    for (size_t i = 1; i < k; i++)
        cp = cp << 6 | (s[i] & 0x3F);
    return cp;
}

bool utf8_is_control(const unsigned char *s, size_t k)
{
    uint32_t cp = utf8_decode(s, k);
    return (k == 1 && (cp < 0x20 || cp == 0x7F)) || (cp >= 0x80 && cp <= 0x9F) ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}
