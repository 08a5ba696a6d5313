/* strbuf: the project's one growable byte buffer (chat renders, GGUF records, held-back text,
 * HTTP answers in memory, transcripts).
 *
 * Bytes are appended; the buffer always holds a NUL after its len bytes, so text can be read as
 * a C string (binary data may contain NULs of its own: len is the truth). An allocation failure
 * is sticky: later appends do nothing and `oom` stays set, so a builder checks once at the end
 * instead of after every append. A zero-initialised strbuf is empty and valid; the first append,
 * even of zero bytes, allocates, so a buffer that was written to is non-NULL.
 *
 * A leaf: it depends on nothing but libc, which is why downloads/ may include it although it
 * lives in engine/ (docs/DESIGN.md section 1). One owner, one thread at a time.
 */
#ifndef SIZEUP_STRBUF_H
#define SIZEUP_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf {
    char *p;      /* (cap) bytes, owned; NULL until the first append */
    size_t len;   /* bytes in use, p[len] == '\0' */
    size_t cap;
    bool oom;     /* an append failed (out of memory, or a size past SIZE_MAX / 2) */
} strbuf;

/* Append n bytes of src (src may be NULL when n is 0). Returns false once oom is set. */
bool strbuf_put(strbuf *b, const void *src, size_t n);
bool strbuf_puts(strbuf *b, const char *s);
bool strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Room for n more bytes (and the NUL) without changing the contents, for a caller that writes
 * into p + len itself (fread) and then adds to len, keeping p[len] == '\0'. Returns false once
 * oom is set. */
bool strbuf_reserve(strbuf *b, size_t n);
/* Empty the buffer but keep its memory (a line parser reusing one buffer per line). */
void strbuf_clear(strbuf *b);
/* Hand the bytes to the caller (free() them; NULL when nothing was ever appended or oom is set)
 * and leave b empty. */
char *strbuf_take(strbuf *b);
/* Free the bytes and leave b empty; b itself is the caller's. */
void strbuf_free(strbuf *b);

#endif
