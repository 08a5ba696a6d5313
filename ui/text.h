/* Width-correct text: grapheme clusters, terminal columns and word wrapping.
 *
 * A cluster is what a terminal draws as one glyph: a base character with its combining marks,
 * variation selectors and emoji modifiers, a ZWJ sequence (family emoji), or a pair of regional
 * indicators (a flag). Columns come from wcwidth(3) (glibc 2.36 carries Unicode 14 widths: CJK
 * and emoji 2, combining 0), which needs a UTF-8 LC_CTYPE: ui_text_locale() sets one. Fix-ups
 * where wcwidth and terminals disagree: VS16 (emoji presentation) widens a 1-column base to 2;
 * a flag is 2; code points wcwidth does not know (-1: newer than its tables) count 2 in the
 * emoji blocks and 1 elsewhere. A tab advances to the next multiple of 8 from the line start.
 *
 * Text is expected to be sanitized (ui/sanitize.h) valid UTF-8; a stray invalid byte counts as
 * one column so wrapping always makes progress. Pure functions, any thread. */
#ifndef SIZEUP_UI_TEXT_H
#define SIZEUP_UI_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Make LC_CTYPE UTF-8: the user's locale when it is UTF-8, else C.UTF-8. Returns false when no
 * UTF-8 locale is available (widths then fall back to 1 per code point). */
bool ui_text_locale(void);

/* Decode one code point at s[0..len); returns its byte length (1 for an invalid byte, with
 * *cp = U+FFFD). len > 0. */
size_t ui_text_decode(const char *s, size_t len, uint32_t *cp);

/* Columns of a code point alone (0 for combining marks, 2 for wide). */
int ui_text_cp_width(uint32_t cp);

/* The grapheme cluster starting at s[pos] (pos < len): returns its byte length and sets *cols to
 * its width at column col (only a tab depends on the column). Counts each call in
 * ui_text_clusters_seen (a test hook for "how much text was looked at"). */
size_t ui_text_cluster(const char *s, size_t len, size_t pos, int col, int *cols);
extern unsigned long ui_text_clusters_seen;

/* Width of s[0..len) on one line starting at column 0. */
int ui_text_width(const char *s, size_t len);

/* Wrap one paragraph (no '\n' inside) to `width` columns (>= 1): the line starting at byte
 * `start`. Words break at spaces and tabs (the breaking blanks belong to no line); a word longer
 * than the line is cut at a cluster boundary; a cluster wider than the whole line still gets a
 * line of its own. Sets *end (the line is s[start..*end)) and *cols (its width), and returns
 * where the next line starts (len when this is the last line). Lines before the last depend only
 * on text already present, so appending to the paragraph only ever changes its last line. */
size_t ui_text_wrap_line(const char *s, size_t len, size_t start, int width, size_t *end,
                         int *cols);

/* Number of lines a paragraph wraps to (an empty one is one line). */
size_t ui_text_wrap_count(const char *s, size_t len, int width);

#endif
