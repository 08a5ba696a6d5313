/* Server-Sent Events, parsed as bytes arrive (see dl_sse.h). A line is gathered in `line`
 * until its end is seen, then interpreted; nothing is kept of a line once it is handled, so
 * memory stays at one line plus one event's data whatever the stream's length. */
#include "downloads/dl_sse.h"

#include <stdlib.h>
#include <string.h>

#include "engine/strbuf.h" /* a leaf: the one growable buffer (docs/DESIGN.md) */

struct dl_sse {
    dl_sse_event_fn fn;
    void *user;
    size_t max_line;
    strbuf line;            /* the line so far, without its end */
    strbuf data;            /* data of the event so far ("\n" between data lines) */
    bool has_data;          /* a data: line was seen (an empty one counts) */
    char event[64];         /* event: name, "" for the default */
    bool after_cr;          /* the last byte was a CR: a LF right after it ends nothing */
    int stopped;            /* nonzero: what every later feed returns */
};

dl_sse *dl_sse_new(size_t max_line, dl_sse_event_fn fn, void *user)
{
    dl_sse *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->fn = fn;
    p->user = user;
    p->max_line = max_line ? max_line : 1;
    return p;
}

void dl_sse_free(dl_sse *p)
{
    if (!p)
        return;
    strbuf_free(&p->line);
    strbuf_free(&p->data);
    free(p);
}

static void reset_event(dl_sse *p)
{
    strbuf_clear(&p->data);
    p->has_data = false;
    p->event[0] = 0;
}

/* A blank line: hand over the event, if it has data (an event without data is no event). */
static int dispatch(dl_sse *p)
{
    if (!p->has_data) {
        reset_event(p);
        return 0;
    }
    if (!strbuf_put(&p->data, "", 0)) /* an empty data: line still hands over a string */
        return DL_SSE_NOMEM;
    int r = p->fn(p->user, p->event[0] ? p->event : "message", p->data.p, p->data.len);
    reset_event(p);
    return r;
}

/* One complete line (without its end). */
static int handle_line(dl_sse *p, const char *s, size_t n)
{
    if (n == 0)
        return dispatch(p);
    if (s[0] == ':')
        return 0;                                   /* a comment: keep-alive */
    const char *colon = memchr(s, ':', n);
    size_t name_len = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = (size_t)(s + n - v);
    if (vlen && *v == ' ') {                        /* one space after the colon is syntax */
        v++;
        vlen--;
    }
    if (name_len == 4 && !memcmp(s, "data", 4)) {
        size_t need = p->data.len + (p->has_data ? 1 : 0) + vlen;
        if (need > 4 * p->max_line)
            return DL_SSE_TOO_LONG;
        if ((p->has_data && !strbuf_put(&p->data, "\n", 1)) || !strbuf_put(&p->data, v, vlen))
            return DL_SSE_NOMEM;
        p->has_data = true;
    } else if (name_len == 5 && !memcmp(s, "event", 5)) {
        size_t k = vlen < sizeof p->event - 1 ? vlen : sizeof p->event - 1;
        memcpy(p->event, v, k);
        p->event[k] = 0;
    }
    /* id:, retry: and unknown fields mean nothing to a one-shot answer stream */
    return 0;
}

int dl_sse_feed(dl_sse *p, const char *buf, size_t n)
{
    if (p->stopped)
        return p->stopped;
    size_t i = 0;
    while (i < n) {
        if (p->after_cr && buf[i] == '\n') {       /* the LF of a CRLF split across feeds */
            p->after_cr = false;
            i++;
            continue;
        }
        p->after_cr = false;
        size_t j = i;
        while (j < n && buf[j] != '\n' && buf[j] != '\r')
            j++;
        size_t piece = j - i;
        if (p->line.len + piece > p->max_line)
            return p->stopped = DL_SSE_TOO_LONG;
        int r = 0;
        if (j < n && p->line.len == 0) {
            r = handle_line(p, buf + i, piece);   /* a whole line in this feed: no copy */
        } else {
            if (!strbuf_put(&p->line, buf + i, piece))
                return p->stopped = DL_SSE_NOMEM;
            if (j < n) {
                r = handle_line(p, p->line.p, p->line.len);
                strbuf_clear(&p->line);
            }
        }
        if (r)
            return p->stopped = r;
        if (j < n) {
            p->after_cr = buf[j] == '\r';
            j++;
        }
        i = j;
    }
    return 0;
}

bool dl_sse_finish(dl_sse *p)
{
    bool pending = p->line.len > 0 || p->has_data;
    p->line.len = 0;
    reset_event(p);
    return pending;
}
