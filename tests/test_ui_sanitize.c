/* The untrusted-text filter: every sequence class comes out inert and visible, the result is the
 * same however the input is split across feeds (tokens), and random bytes never produce a
 * control byte, a C1 code point, a bidi override or invalid UTF-8. */
#include "tests/testutil.h"

#include "engine/utf8.h"
#include "ui/sanitize.h"

#define FFFD "\xEF\xBF\xBD"

typedef struct san_case {
    const char *name, *in;
    size_t in_len;  /* 0: strlen(in) */
    const char *want;
} san_case;

static const san_case cases[] = {
    { "plain", "hello\tworld\nline two", 0, "hello\tworld\nline two" },
    { "utf8", "h\xC3\xA9llo \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80", 0,
      "h\xC3\xA9llo \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80" },
    { "c0", "a\x01" "b\rc\x08" "d\x1f", 0, "a^Ab^Mc^Hd^_" },
    { "nul", "a\0b", 3, "a^@b" },
    { "del", "x\x7Fy", 0, "x^?y" },
    { "csi-sgr", "\x1b[31mred\x1b[0m", 0, "^[[31mred^[[0m" },
    { "csi-clear", "\x1b[2J\x1b[H\x1b[?1049h", 0, "^[[2J^[[H^[[?1049h" },
    { "osc-title-bel", "\x1b]0;pwned\x07", 0, "^[]0;pwned^G" },
    { "osc-title-st", "\x1b]2;t\x1b\\", 0, "^[]2;t^[\\" },
    { "osc52", "\x1b]52;c;aGVsbG8=\x07", 0, "^[]52;c;aGVsbG8=^G" },
    { "osc8-link", "\x1b]8;;http://x\x1b\\l\x1b]8;;\x1b\\", 0, "^[]8;;http://x^[\\l^[]8;;^[\\" },
    { "dcs", "\x1bP1$qm\x1b\\", 0, "^[P1$qm^[\\" },
    { "sos", "\x1bXsos\x1b\\", 0, "^[Xsos^[\\" },
    { "pm", "\x1b^pm\x1b\\", 0, "^[^pm^[\\" },
    { "apc", "\x1b_apc\x1b\\", 0, "^[_apc^[\\" },
    { "esc-2byte", "\x1b" "c\x1b" "7\x1b" "8\x1b=", 0, "^[c^[7^[8^[=" },
    { "c1-csi", "\xC2\x9B" "31m", 0, "^[[31m" },
    { "c1-osc-st", "\xC2\x9D" "0;t\xC2\x9C", 0, "^[]0;t^[\\" },
    { "c1-dcs-sos-pm-apc", "\xC2\x90\xC2\x98\xC2\x9E\xC2\x9F", 0, "^[P^[X^[^^[_" },
    { "c1-nel-first-last", "\xC2\x85\xC2\x80\xC2\x9F\xC2\xA0", 0, "^[E^[@^[_\xC2\xA0" },
    { "raw-8bit-csi", "\x9B" "31m", 0, FFFD "31m" },
    { "invalid-ff", "a\xFF" "b", 0, "a" FFFD "b" },
    { "overlong", "\xC0\xAF", 0, FFFD FFFD },
    { "overlong-e0", "\xE0\x80\xAF", 0, FFFD FFFD FFFD },
    { "surrogate", "\xED\xA0\x80", 0, FFFD FFFD FFFD },
    { "above-10ffff", "\xF4\x90\x80\x80", 0, FFFD FFFD FFFD FFFD },
    { "truncated-mid", "\xE6\x97" "A", 0, FFFD "A" },
    { "truncated-end", "ok\xF0\x9F\x98", 0, "ok" FFFD },
    { "esc-in-utf8", "\xE6\x1b[m", 0, FFFD "^[[m" },
    { "bidi-rlo", "txt\xE2\x80\xAE" "exe.doc", 0, "txt<U+202E>exe.doc" },
    { "bidi-embed-override", "\xE2\x80\xAA\xE2\x80\xAB\xE2\x80\xAC\xE2\x80\xAD", 0,
      "<U+202A><U+202B><U+202C><U+202D>" },
    { "bidi-isolates", "\xE2\x81\xA6" "a\xE2\x81\xA7\xE2\x81\xA8\xE2\x81\xA9", 0,
      "<U+2066>a<U+2067><U+2068><U+2069>" },
    { "bidi-neighbours-pass", "\xE2\x80\x8F\xE2\x80\xA9\xE2\x80\xAF\xE2\x81\xA5\xE2\x81\xAA", 0,
      "\xE2\x80\x8F\xE2\x80\xA9\xE2\x80\xAF\xE2\x81\xA5\xE2\x81\xAA" },
};

/* Feed in[0..n) split at `cut` (n: no split) and flush; returns a malloc'd NUL-terminated copy. */
static char *run_split(const char *in, size_t n, size_t cut)
{
    char *out = malloc(UI_SANITIZE_MAX(n) * 2 + 16);
    assert_non_null(out);
    ui_sanitizer z;
    ui_sanitize_init(&z);
    size_t o = ui_sanitize_feed(&z, in, cut, out);
    size_t o2 = ui_sanitize_feed(&z, in + cut, n - cut, out + o);
    assert_true(o <= UI_SANITIZE_MAX(cut));
    assert_true(o2 <= UI_SANITIZE_MAX(n - cut));
    o += o2;
    o += ui_sanitize_flush(&z, out + o);
    out[o] = 0;
    return out;
}

static void test_every_class_every_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const san_case *c = &cases[i];
        size_t n = c->in_len ? c->in_len : strlen(c->in);
        for (size_t cut = 0; cut <= n; cut++) {
            char *got = run_split(c->in, n, cut);
            if (strcmp(got, c->want))
                fail_msg("%s split at %zu: got '%s', want '%s'", c->name, cut, got, c->want);
            free(got);
        }
    }
}

/* Byte by byte: every token is one byte. */
static void test_one_byte_feeds(void **state)
{
    (void)state;
    const char *in = "\x1b]52;c;QQ==\x07\xE2\x82\xAC\xC2\x9B" "2J\xF0\x9F\x91\x8D\xE2\x80\xAE";
    size_t n = strlen(in);
    char out[256];
    size_t o = 0;
    ui_sanitizer z;
    ui_sanitize_init(&z);
    for (size_t i = 0; i < n; i++)
        o += ui_sanitize_feed(&z, in + i, 1, out + o);
    o += ui_sanitize_flush(&z, out + o);
    out[o] = 0;
    assert_string_equal(out, "^[]52;c;QQ==^G\xE2\x82\xAC^[[2J\xF0\x9F\x91\x8D<U+202E>");
}

/* Whatever comes in, what goes out is valid UTF-8 without controls (other than \n \t), DEL or C1,
 * and within the size bound. */
static void check_safe(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c < 0x80) {
            assert_true(c >= 0x20 || c == '\n' || c == '\t');
            assert_true(c != 0x7F);
            i++;
            continue;
        }
        size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        assert_true(c >= 0xC2 && c <= 0xF4);
        assert_true(i + len <= n);
        for (size_t k = 1; k < len; k++)
            assert_true((s[i + k] & 0xC0) == 0x80);
        if (c == 0xC2)
            assert_true(s[i + 1] >= 0xA0);
        if (c == 0xE2 && s[i + 1] == 0x80)   /* no bidi embedding or override */
            assert_true(s[i + 2] < 0xAA || s[i + 2] > 0xAE);
        if (c == 0xE2 && s[i + 1] == 0x81)   /* no bidi isolate */
            assert_true(s[i + 2] < 0xA6 || s[i + 2] > 0xA9);
        i += len;
    }
}

static void test_random_bytes_are_safe(void **state)
{
    (void)state;
    unsigned seed = 12345;
    unsigned char in[64], out[UI_SANITIZE_MAX(64)];
    for (int round = 0; round < 20000; round++) {
        size_t n = 1 + (size_t)(round % 63);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            in[i] = (unsigned char)(seed >> 16);
        }
        ui_sanitizer z;
        ui_sanitize_init(&z);
        size_t cut = (size_t)round % (n + 1);
        size_t o = ui_sanitize_feed(&z, (const char *)in, cut, (char *)out);
        o += ui_sanitize_feed(&z, (const char *)in + cut, n - cut, (char *)out + o);
        o += ui_sanitize_flush(&z, (char *)out + o);
        assert_true(o <= UI_SANITIZE_MAX(n));
        check_safe(out, o);
    }
}

static void test_dup(void **state)
{
    (void)state;
    char *s = ui_sanitize_dup("t\x1b]0;x\x07", 7);
    assert_string_equal(s, "t^[]0;x^G");
    free(s);
}

/* engine/utf8: the strict sequence check and control test that the other filters of untrusted
 * text (app_escape, app_text_clean, the download module's messages) share. */
static void test_utf8_leaf(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n, len;  /* len: utf8_seq_len's answer */
        bool control;   /* when len > 0 */
        uint32_t cp;
    } c[] = {
        { "a", 1, 1, false, 'a' },          { "\x1b", 1, 1, true, 0x1b },
        { "\0", 1, 1, true, 0 },            { "\x7f", 1, 1, true, 0x7f },
        { "\xc3\xa9", 2, 2, false, 0xe9 },  { "\xc2\x9b", 2, 2, true, 0x9b },
        { "\xc2\xa0", 2, 2, false, 0xa0 },  { "\xc0\xaf", 2, 0, false, 0 }, /* overlong */
        { "\xe2\x80\xae", 3, 3, true, 0x202e }, { "\xe2\x81\xa9", 3, 3, true, 0x2069 },
        { "\xe2\x80\xaf", 3, 3, false, 0x202f }, { "\xe0\x80\xaf", 3, 0, false, 0 },
        { "\xed\xa0\x80", 3, 0, false, 0 }, /* a surrogate */
        { "\xf0\x9f\x98\x80", 4, 4, false, 0x1f600 },
        { "\xf4\x90\x80\x80", 4, 0, false, 0 }, /* above U+10FFFF */
        { "\xe6\x97", 2, 0, false, 0 },     /* cut short */
        { "\x80", 1, 0, false, 0 },          { "", 0, 0, false, 0 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        const unsigned char *u = (const unsigned char *)c[i].s;
        size_t k = utf8_seq_len(u, c[i].n);
        if (k != c[i].len)
            fail_msg("case %zu: length %zu, want %zu", i, k, c[i].len);
        if (k && (utf8_is_control(u, k) != c[i].control || utf8_decode(u, k) != c[i].cp))
            fail_msg("case %zu: control %d cp %#x, want %d %#x", i, utf8_is_control(u, k),
                     (unsigned)utf8_decode(u, k), c[i].control, (unsigned)c[i].cp);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_class_every_split),
        cmocka_unit_test(test_one_byte_feeds),
        cmocka_unit_test(test_random_bytes_are_safe),
        cmocka_unit_test(test_dup),
        cmocka_unit_test(test_utf8_leaf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
