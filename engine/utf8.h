/* utf8: the strict UTF-8 sequence check and the "does a terminal act on this character" test
 * that every filter of untrusted text shares (ui/sanitize.c keeps its own streaming decoder;
 * app_escape, app_text_clean and the download module's messages use these).
 *
 * A leaf like strbuf: it depends on nothing but libc, so downloads/ may include it although it
 * lives in engine/ (docs/DESIGN.md section 1). Pure functions, any thread. */
#ifndef SIZEUP_UTF8_H
#define SIZEUP_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The length (1-4) of the valid UTF-8 sequence at s[0..n), 0 when it is not one (n == 0, a
 * stray continuation byte, an overlong form, a surrogate, a code point above U+10FFFF, or a
 * sequence cut short): Unicode's table 3-7. */
size_t utf8_seq_len(const unsigned char *s, size_t n);

/* The code point of the valid sequence s[0..k) (k from utf8_seq_len). */
uint32_t utf8_decode(const unsigned char *s, size_t k);

/* Whether the valid sequence s[0..k) is a character a terminal acts on instead of showing: C0,
 * DEL, C1 (U+0080..U+009F; U+009B is a CSI), or a bidi embedding, override or isolate
 * (U+202A..U+202E, U+2066..U+2069). */
bool utf8_is_control(const unsigned char *s, size_t k);

#endif
