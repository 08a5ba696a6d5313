/* Grapheme clusters, columns and word wrap (see text.h for the rules and the wcwidth fix-ups). */
#include "ui/text.h"

#include <langinfo.h>
#include <locale.h>
#include <string.h>
#include <wchar.h>

unsigned long ui_text_clusters_seen;

bool ui_text_locale(void)
{
    const char *cs;
    if (setlocale(LC_ALL, "") && (cs = nl_langinfo(CODESET)) && !strcmp(cs, "UTF-8"))
        return true;
    return setlocale(LC_CTYPE, "C.UTF-8") != NULL;
}

size_t ui_text_decode(const char *s, size_t len, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[0];
    size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 1) {
        *cp = c;
        return 1;
    }
    if (!n || n > len || c > 0xF4)
        goto bad;
    uint32_t v = c & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80)
            goto bad;
        v = (v << 6) | (u[i] & 0x3F);
    }
    *cp = v;
    return n;
bad:
    *cp = 0xFFFD;
    return 1;
}

static bool is_regional(uint32_t cp)
{
    return cp >= 0x1F1E6 && cp <= 0x1F1FF;
}

int ui_text_cp_width(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
        return 1;  /* sanitized text has none of these; count them so wrapping progresses */
    int w = wcwidth((wchar_t)cp);
    if (w >= 0)
        return w;
    return (cp >= 0x1F300 && cp <= 0x1FAFF) ? 2 : 1;  /* newer than glibc's tables */
}

/* Marks that attach to the cluster before them: combining marks and other zero-width code
 * points, variation selectors, emoji skin-tone modifiers, tag characters. */
static bool is_extender(uint32_t cp)
{
    if (cp >= 0x1F3FB && cp <= 0x1F3FF)
        return true;
    if ((cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xE0020 && cp <= 0xE007F) ||
        (cp >= 0xE0100 && cp <= 0xE01EF))
        return true;
    return cp >= 0x300 && ui_text_cp_width(cp) == 0;
}

size_t ui_text_cluster(const char *s, size_t len, size_t pos, int col, int *cols)
{
    uint32_t cp, c;
    ui_text_clusters_seen++;
    size_t at = pos + ui_text_decode(s + pos, len - pos, &cp);
    if (cp == '\t') {
        *cols = 8 - col % 8;
        return at - pos;
    }
    int w = ui_text_cp_width(cp);
    if (w == 0)
        w = 1;  /* a mark with nothing to sit on: the draw layer gives it a base */
    if (is_regional(cp) && at < len) {
        size_t k = ui_text_decode(s + at, len - at, &c);
        if (is_regional(c)) {
            at += k;
            w = 2;
        }
    }
    while (at < len) {
        size_t k = ui_text_decode(s + at, len - at, &c);
        if (c == 0x200D) {  /* ZWJ: the next code point joins this cluster */
            at += k;
            if (at < len)
                at += ui_text_decode(s + at, len - at, &c);
        } else if (is_extender(c)) {
            if (c == 0xFE0F && w == 1)
                w = 2;
            at += k;
        } else {
            break;
        }
    }
    *cols = w;
    return at - pos;
}

int ui_text_width(const char *s, size_t len)
{
    int col = 0, w;
    for (size_t pos = 0; pos < len; col += w)
        pos += ui_text_cluster(s, len, pos, col, &w);
    return col;
}

size_t ui_text_wrap_line(const char *s, size_t len, size_t start, int width, size_t *end,
                         int *cols)
{
    size_t pos = start, brk_end = start, brk_next = start;
    int col = 0, brk_col = 0, w;
    bool in_blanks = false, have_brk = false;
    while (pos < len) {
        size_t n = ui_text_cluster(s, len, pos, col, &w);
        bool blank = s[pos] == ' ' || s[pos] == '\t';
        if (col + w > width) {
            if (blank) {  /* the line ends at this run of blanks; skip them */
                *end = in_blanks ? brk_end : pos;
                *cols = in_blanks ? brk_col : col;
                while (pos < len && (s[pos] == ' ' || s[pos] == '\t'))
                    pos++;
                return pos;
            }
            if (have_brk && brk_end > start) {  /* word wrap at the last blank run */
                *end = brk_end;
                *cols = brk_col;
                return brk_next;
            }
            if (col == 0)  /* wider than the whole line: alone on it */
                pos += n, col = w;
            *end = pos;  /* hard break inside an over-long word */
            *cols = col;
            return pos;
        }
        if (blank && !in_blanks) {
            brk_end = pos;
            brk_col = col;
        }
        in_blanks = blank;
        if (blank) {
            have_brk = true;
            brk_next = pos + n;
        }
        col += w;
        pos += n;
    }
    *end = len;
    *cols = col;
    return len;
}

size_t ui_text_wrap_count(const char *s, size_t len, int width)
{
    size_t n = 0, pos = 0, end;
    int cols;
    do {
        pos = ui_text_wrap_line(s, len, pos, width, &end, &cols);
        n++;
    } while (pos < len);
    return n;
}
