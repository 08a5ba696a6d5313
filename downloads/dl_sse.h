/* An incremental parser for Server-Sent Events (the WHATWG "text/event-stream" format), as
 * OpenAI-compatible servers stream answers. Internal to downloads/ (dl_remote.c feeds it from
 * libcurl's write callback); its own header so tests can feed it byte by byte.
 *
 * Bytes arrive in pieces of any size, split anywhere (inside a line, between CR and LF). Lines
 * end with CRLF, LF or a lone CR. "data:" lines accumulate (joined by "\n"), a blank line
 * dispatches the event, ":" lines are comments (keep-alives), "event:" names the event, other
 * fields are ignored. A line longer than the limit is refused rather than buffered without end:
 * a server that never sends a newline must not eat the memory.
 */
#ifndef SIZEUP_DL_SSE_H
#define SIZEUP_DL_SSE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct dl_sse dl_sse;

/* One dispatched event: event is its "event:" name ("message" when none was given), data the
 * joined "data:" lines, NUL-terminated at data[len]. Both borrowed for the call. Return 0 to go
 * on; any other value stops the parser, and dl_sse_feed returns it. */
typedef int (*dl_sse_event_fn)(void *user, const char *event, const char *data, size_t len);

typedef enum dl_sse_result {
    DL_SSE_OK = 0,
    DL_SSE_TOO_LONG = -1,   /* a line (or an event's data) passed max_line bytes */
    DL_SSE_NOMEM = -2,
} dl_sse_result;

/* A parser that calls fn for each event; lines longer than max_line bytes (and an event whose
 * data passes 4 * max_line) are refused. NULL when out of memory. Free with dl_sse_free
 * (NULL-safe). */
dl_sse *dl_sse_new(size_t max_line, dl_sse_event_fn fn, void *user);
void dl_sse_free(dl_sse *p);
/* Parse n more bytes. DL_SSE_OK, a dl_sse_result, or the callback's nonzero value; after a
 * nonzero result the parser is stopped and further feeds return the same value. */
int dl_sse_feed(dl_sse *p, const char *buf, size_t n);
/* The stream ended: an event not yet closed by a blank line is dropped, as the format says
 * (a server that was cut off mid-event did not finish it). True when bytes of an unfinished
 * line or event were pending, i.e. the stream stopped in the middle of something. */
bool dl_sse_finish(dl_sse *p);

#endif
