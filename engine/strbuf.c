/* The growable buffer (engine/strbuf.h): doubling growth, a sticky failure flag. */
#include "engine/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and the NUL. */
static bool grow(strbuf *b, size_t n)
{
    if (b->oom)
        return false;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

bool strbuf_reserve(strbuf *b, size_t n)
{
    if (!grow(b, n))
        return false;
    b->p[b->len] = '\0';
    return true;
}

void strbuf_clear(strbuf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

bool strbuf_put(strbuf *b, const void *src, size_t n)
{
    if (!grow(b, n))
        return false;
    if (n > 0)
        memcpy(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

bool strbuf_puts(strbuf *b, const char *s) { return strbuf_put(b, s, strlen(s)); }

bool strbuf_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !grow(b, (size_t)n)) {
        b->oom = true;
        return false;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

char *strbuf_take(strbuf *b)
{
    char *p = b->oom ? NULL : b->p;
    if (b->oom)
        free(b->p);
    *b = (strbuf){ 0 };
    return p;
}

void strbuf_free(strbuf *b)
{
    free(b->p);
    *b = (strbuf){ 0 };
}
