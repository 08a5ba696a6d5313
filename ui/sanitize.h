/* The untrusted-text filter: every byte a model (or a paste) produces passes through here before
 * it reaches a terminal, so model text can never move the cursor, set the title, write the
 * clipboard (OSC 52) or otherwise drive the terminal.
 *
 * Rule: printable UTF-8, '\n' and '\t' pass unchanged; every other control is made visible in
 * caret notation: C0 as ^@..^_ (ESC is "^["), DEL as "^?", and a C1 code point U+0080..U+009F
 * as "^[" followed by its 7-bit equivalent (U+009B CSI shows as "^[[", as the 7-bit CSI does).
 * The bidi embedding, override and isolate controls (U+202A..U+202E, U+2066..U+2069), which
 * reorder what follows them on screen (a right-to-left override makes "txt.exe" look like
 * "exe.txt"), show as their code point: "<U+202E>". The marks U+200E/U+200F pass: they
 * override nothing, and right-to-left text uses them.
 * Invalid UTF-8 (stray continuation bytes, overlongs, surrogates, > U+10FFFF, truncated
 * sequences) shows as U+FFFD, one per maximal invalid subpart as Unicode recommends.
 *
 * Why visible instead of parsing and dropping whole sequences: once its introducer (ESC or a
 * C1) and every control inside it are shown as text, no sequence of any class (CSI, OSC, DCS,
 * SOS/PM/APC, ESC x) can take effect, however it is terminated (BEL, ST, or never); a parser
 * that drops sequences would have to guess where an unterminated OSC ends and could swallow the
 * rest of an answer. The user also sees what the model really wrote.
 *
 * Streaming: a UTF-8 sequence may be split across feeds (tokens); the decoder keeps the
 * incomplete tail in the state until the next feed. Plain data, no allocation, any thread. */
#ifndef SIZEUP_UI_SANITIZE_H
#define SIZEUP_UI_SANITIZE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ui_sanitizer {
    uint8_t pend[4];  /* bytes of an incomplete UTF-8 sequence */
    uint8_t have;     /* how many are in pend */
    uint8_t need;     /* the sequence's full length (0: between characters) */
} ui_sanitizer;

/* Output space one feed of n bytes may need (incl. a tail carried from the previous feed). */
#define UI_SANITIZE_MAX(n) (3 * (size_t)(n) + 8)

void ui_sanitize_init(ui_sanitizer *z);
/* Filter in[0..n) into out (room for UI_SANITIZE_MAX(n) bytes, not NUL-terminated); returns the
 * number of bytes written. An incomplete UTF-8 tail is held back for the next feed. */
size_t ui_sanitize_feed(ui_sanitizer *z, const char *in, size_t n, char *out);
/* End of the stream: an incomplete tail becomes U+FFFD. out has room for 8 bytes. */
size_t ui_sanitize_flush(ui_sanitizer *z, char *out);
/* One-shot: a malloc'd NUL-terminated sanitized copy of s[0..n) (caller frees), NULL when out of
 * memory. */
char *ui_sanitize_dup(const char *s, size_t n);

#endif
