/* Width-correct wrapping: clusters (combining marks, VS16, ZWJ sequences, flags, skin tones) are
 * one unit, CJK is two columns, tabs go to the next multiple of 8, words wrap at blanks and
 * over-long ones are cut; and appending text never changes a paragraph's lines but its last. */
#include "tests/testutil.h"

#include <locale.h>

#include "ui/text.h"

#define E_ACUTE "e\xCC\x81"                                           /* e + U+0301 */
#define GRIN "\xF0\x9F\x98\x80"                                       /* U+1F600 */
#define HEART_VS16 "\xE2\x9D\xA4\xEF\xB8\x8F"                         /* U+2764 U+FE0F */
#define FAMILY "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7"
#define FLAG_US "\xF0\x9F\x87\xBA\xF0\x9F\x87\xB8"
#define FLAG_FR "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7"
#define THUMB_TONE "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD"
#define NIHONGO "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"               /* 日本語 */

static int setup(void **state)
{
    (void)state;
    return ui_text_locale() ? 0 : -1;
}

static size_t clusters(const char *s)
{
    size_t n = 0, len = strlen(s);
    int w, col = 0;
    for (size_t pos = 0; pos < len; n++) {
        pos += ui_text_cluster(s, len, pos, col, &w);
        col += w;
    }
    return n;
}

static void test_widths_and_clusters(void **state)
{
    (void)state;
    static const struct { const char *s; int cols; size_t clusters; } t[] = {
        { "abc", 3, 3 },
        { NIHONGO, 6, 3 },
        { E_ACUTE E_ACUTE, 2, 2 },
        { "a\xCC\x81\xCC\xA7", 1, 1 },  /* two combining marks on one base */
        { GRIN, 2, 1 },
        { HEART_VS16, 2, 1 },
        { "\xE2\x9D\xA4", 1, 1 },  /* the same heart in text presentation */
        { FAMILY, 2, 1 },
        { FLAG_US FLAG_FR, 4, 2 },
        { THUMB_TONE, 2, 1 },
        { "a\tb", 9, 3 },
        { "\t", 8, 1 },
        { "abcdefg\tx", 9, 9 },
        { "\xEF\xBC\xA1", 2, 1 },  /* fullwidth A */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int w = ui_text_width(t[i].s, strlen(t[i].s));
        if (w != t[i].cols || clusters(t[i].s) != t[i].clusters)
            fail_msg("case %zu: width %d (want %d), clusters %zu (want %zu)", i, w, t[i].cols,
                     clusters(t[i].s), t[i].clusters);
    }
}

/* All lines of a paragraph, joined with '|'. */
static void wrap_all(const char *s, int width, char *out, size_t cap)
{
    size_t len = strlen(s), pos = 0, end, o = 0;
    int cols;
    out[0] = 0;
    do {
        size_t start = pos;
        pos = ui_text_wrap_line(s, len, start, width, &end, &cols);
        assert_true(cols <= width || end - start <= 18);  /* only a lone too-wide cluster */
        assert_int_equal(cols, ui_text_width(s + start, end - start));
        o += (size_t)snprintf(out + o, cap - o, "%s%.*s", o ? "|" : "", (int)(end - start),
                              s + start);
    } while (pos < len);
}

static void test_wrap(void **state)
{
    (void)state;
    static const struct { const char *s; int width; const char *want; } t[] = {
        { "hello world", 5, "hello|world" },
        { "hello world", 11, "hello world" },
        { "aaa bbbbbbb", 5, "aaa|bbbbb|bb" },
        { "a   b", 2, "a|b" },
        { "", 10, "" },
        { "the quick brown fox", 9, "the quick|brown fox" },
        { NIHONGO NIHONGO, 5, "\xE6\x97\xA5\xE6\x9C\xAC|\xE8\xAA\x9E\xE6\x97\xA5|"
                              "\xE6\x9C\xAC\xE8\xAA\x9E" },
        { E_ACUTE E_ACUTE E_ACUTE E_ACUTE E_ACUTE E_ACUTE, 4,
          E_ACUTE E_ACUTE E_ACUTE E_ACUTE "|" E_ACUTE E_ACUTE },
        { "a" FAMILY "b", 3, "a" FAMILY "|b" },
        { "ab" FLAG_US FLAG_FR, 4, "ab" FLAG_US "|" FLAG_FR },
        { "x" HEART_VS16 "y", 2, "x|" HEART_VS16 "|y" },
        { GRIN, 1, GRIN },  /* wider than the line: alone on it */
        { "ab\tcd", 10, "ab\tcd" },
        { "ab\tcd", 9, "ab|cd" },
        { "word " GRIN GRIN GRIN, 6, "word|" GRIN GRIN GRIN },
    };
    char got[512];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        wrap_all(t[i].s, t[i].width, got, sizeof got);
        if (strcmp(got, t[i].want))
            fail_msg("case %zu at width %d: got '%s', want '%s'", i, t[i].width, got, t[i].want);
    }
    assert_int_equal(ui_text_wrap_count("hello world", 11, 5), 2);
    assert_int_equal(ui_text_wrap_count("", 0, 5), 1);
}

/* The pane re-wraps only a paragraph's last line when text is appended: check that every line
 * but the last of each prefix is a line of the whole text. */
static void test_prefix_lines_are_stable(void **state)
{
    (void)state;
    static const char *const words[] = { "a", "tiny", " ", "  ", NIHONGO, E_ACUTE, FAMILY,
                                         "\t", "supercalifragilistic", GRIN, FLAG_US, "xy " };
    char text[4096];
    unsigned seed = 7;
    for (int round = 0; round < 200; round++) {
        size_t len = 0;
        while (len < 600) {
            seed = seed * 1103515245u + 12345u;
            const char *w = words[(seed >> 16) % (sizeof words / sizeof words[0])];
            memcpy(text + len, w, strlen(w));
            len += strlen(w);
        }
        int width = 3 + round % 30;
        for (size_t cut = 1; cut < len; cut += 5) {
            while (cut < len && (text[cut] & 0xC0) == 0x80)
                cut++;  /* tokens end on code points (the engine releases whole UTF-8) */
            size_t pos = 0, full_pos = 0, end, fend;
            int c1, c2;
            for (;;) {
                size_t next = ui_text_wrap_line(text, cut, pos, width, &end, &c1);
                if (next >= cut)
                    break;  /* the prefix's last line may change */
                size_t fnext = ui_text_wrap_line(text, len, full_pos, width, &fend, &c2);
                assert_int_equal(pos, full_pos);
                if (end != fend)
                    fail_msg("width %d cut %zu: the line at %zu ends at %zu, in the whole text "
                             "at %zu", width, cut, pos, end, fend);
                assert_int_equal(next, fnext);
                pos = next;
                full_pos = fnext;
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_widths_and_clusters),
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_prefix_lines_are_stable),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
