/* Download progress text (app/progress.c): the terminal bar at several widths, the plain
 * lines for pipes, when a plain line is due, and the time formats, each against the exact
 * string. Expected bars are worked out here by hand from the layout in app/progress.h: fields
 * padded to fixed widths, the bar takes the rest of width - 1 columns. */
#include "tests/testutil.h"

#include <math.h>

#include "app/app.h"
#include "app/progress.h"

#define MIB (1024.0 * 1024.0)

/* 220 MiB of 491 MiB at 12.3 MiB/s, 22 s left: the running example of app/progress.h. */
static dl_progress running(void)
{
    dl_progress p = {
        .name = "m.gguf", .part = 1, .n_parts = 1, .done = 220ull << 20, .total = 491ull << 20,
        .resumed_from = 0, .bytes_per_s = 12.3 * MIB, .eta_s = 22, .attempt = 1,
    };
    return p;
}

static char *bar(const dl_progress *p, int width)
{
    static char buf[1024];
    size_t n = app_progress_bar(p, width, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    return buf;
}

static char *plain(const dl_progress *p)
{
    static char buf[1024];
    size_t n = app_progress_plain(p, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    assert_null(strchr(buf, '\r'));
    assert_null(strchr(buf, '\n'));
    return buf;
}

static void test_eta(void **state)
{
    (void)state;
    char b[16];
    assert_string_equal(app_fmt_eta(-1, b, sizeof b), "--");
    assert_string_equal(app_fmt_eta(NAN, b, sizeof b), "--");
    assert_string_equal(app_fmt_eta(0, b, sizeof b), "0s");
    assert_string_equal(app_fmt_eta(42, b, sizeof b), "42s");
    assert_string_equal(app_fmt_eta(59.4, b, sizeof b), "59s");
    assert_string_equal(app_fmt_eta(59.6, b, sizeof b), "1m00s");   /* rounded, not 60s */
    assert_string_equal(app_fmt_eta(185, b, sizeof b), "3m05s");
    assert_string_equal(app_fmt_eta(3599, b, sizeof b), "59m59s");
    assert_string_equal(app_fmt_eta(3600, b, sizeof b), "1h00m");
    assert_string_equal(app_fmt_eta(2 * 3600 + 3 * 60 + 59, b, sizeof b), "2h03m");
    assert_string_equal(app_fmt_eta(99 * 3600 + 59 * 60, b, sizeof b), "99h59m");
    assert_string_equal(app_fmt_eta(100 * 3600, b, sizeof b), ">99h");
    assert_string_equal(app_fmt_eta(1e12, b, sizeof b), ">99h");
}

static void test_ago(void **state)
{
    (void)state;
    char b[32];
    const int64_t now = 1700000000;
    assert_string_equal(app_fmt_ago(now, 0, b, sizeof b), "never");
    assert_string_equal(app_fmt_ago(now, now, b, sizeof b), "just now");
    assert_string_equal(app_fmt_ago(now, now + 30, b, sizeof b), "just now"); /* clock skew */
    assert_string_equal(app_fmt_ago(now, now - 9, b, sizeof b), "just now");
    assert_string_equal(app_fmt_ago(now, now - 42, b, sizeof b), "42 s ago");
    assert_string_equal(app_fmt_ago(now, now - 180, b, sizeof b), "3 min ago");
    assert_string_equal(app_fmt_ago(now, now - 3599, b, sizeof b), "59 min ago");
    assert_string_equal(app_fmt_ago(now, now - 5 * 3600 - 10, b, sizeof b), "5 h ago");
    assert_string_equal(app_fmt_ago(now, now - 86400, b, sizeof b), "1 day ago");
    assert_string_equal(app_fmt_ago(now, now - 2 * 86400, b, sizeof b), "2 days ago");
    assert_string_equal(app_fmt_ago(now, now - 59 * 86400, b, sizeof b), "59 days ago");
    assert_string_equal(app_fmt_ago(now, now - 90 * 86400, b, sizeof b), "2023-08-16");
}

/* 80 columns: 79 usable; the fields take 49 ("  " + " 44%", "  " + " 220 MiB/491 MiB",
 * "  " + "12.3 MiB/s", "  " + "ETA 22s  ", two brackets), so the bar has 30 cells, of which
 * 30 * 220/491 = 13.4 -> 13 are full. */
static void test_bar_80(void **state)
{
    (void)state;
    dl_progress p = running();
    assert_string_equal(bar(&p, 80), "[#############-----------------]   44%   220 MiB/491 MiB"
                                     "  12.3 MiB/s  ETA 22s");
    /* the bar keeps its length as the numbers change width */
    p.done = 5ull << 20;
    p.eta_s = 3700;
    assert_string_equal(bar(&p, 80), "[------------------------------]    1%  5.00 MiB/491 MiB"
                                     "  12.3 MiB/s  ETA 1h01m");
    p.done = p.total;
    p.eta_s = 0;
    p.finished = true;
    assert_string_equal(bar(&p, 80), "[##############################]  100%   491 MiB/491 MiB"
                                     "  12.3 MiB/s  ETA 0s");
    /* a server that sends more than it announced does not push the bar past 100% */
    p.done = p.total + 4096;
    assert_string_equal(bar(&p, 80), "[##############################]  100%   491 MiB/491 MiB"
                                     "  12.3 MiB/s  ETA 0s");
    assert_true(strlen(bar(&p, 80)) <= 79);
}

/* 20 columns: only the percentage fits beside a bar of at least 10 cells: 19 - 6 - 2 = 11,
 * 11 * 220/491 = 4.9 -> 4 full. */
static void test_bar_20(void **state)
{
    (void)state;
    dl_progress p = running();
    assert_string_equal(bar(&p, 20), "[####-------]   44%");
    /* 60 columns: everything, with the shortest bar: 59 - 49 = 10 cells, 4.5 -> 4 */
    assert_string_equal(bar(&p, 60), "[####------]   44%   220 MiB/491 MiB  12.3 MiB/s  ETA 22s");
    /* 50 columns: the ETA goes first: 49 - 38 = 11 cells, 4.9 -> 4 */
    assert_string_equal(bar(&p, 50), "[####-------]   44%   220 MiB/491 MiB  12.3 MiB/s");
    /* 40 columns: then the speed: 39 - 26 = 13 cells, 5.8 -> 5 */
    assert_string_equal(bar(&p, 40), "[#####--------]   44%   220 MiB/491 MiB");
    /* too narrow for any bar: the numbers, cut to width - 1 */
    assert_string_equal(bar(&p, 12), " 44%   220");
    assert_string_equal(bar(&p, 1), "");
    /* a terminal that does not say its width gets 80 columns */
    assert_string_equal(bar(&p, 0), "[#############-----------------]   44%   220 MiB/491 MiB"
                                    "  12.3 MiB/s  ETA 22s");
}

/* A resumed transfer: '=' for what was on disk before, '#' for what came now. 40 MiB resumed,
 * 60 of 100 MiB done, no speed measured yet: 30 cells, 12 '=', 6 '#', 12 '-'. */
static void test_bar_resumed_and_zero_speed(void **state)
{
    (void)state;
    dl_progress p = running();
    p.total = 100ull << 20;
    p.resumed_from = 40ull << 20;
    p.done = 60ull << 20;
    p.bytes_per_s = 0;
    p.eta_s = -1;
    assert_string_equal(bar(&p, 80), "[============######------------]   60%  60.0 MiB/100 MiB"
                                     "        --/s  ETA --");
    /* 11 cells: 4 '=' (11 * 0.4), 2 '#' (to 11 * 0.6) */
    assert_string_equal(bar(&p, 20), "[====##-----]   60%");
    /* right after a resume nothing new has come yet: all '=' up to the resume point */
    p.done = p.resumed_from;
    assert_string_equal(bar(&p, 20), "[====-------]   40%");
}

/* Unknown total: no bar and no percentage, bytes and speed. Split files name the part. */
static void test_bar_unknown_total_and_parts(void **state)
{
    (void)state;
    dl_progress p = running();
    p.total = 0;
    p.done = 12ull << 20;
    p.bytes_per_s = 1.2 * MIB;
    p.eta_s = -1;
    assert_string_equal(bar(&p, 80), "12.0 MiB so far  1.20 MiB/s");
    assert_string_equal(bar(&p, 20), "12.0 MiB so far");
    p.bytes_per_s = 0;
    assert_string_equal(bar(&p, 80), "12.0 MiB so far  --/s");

    p = running();
    p.part = 2;
    p.n_parts = 3;
    /* "part 2/3 " takes 9 more columns: 79 - 58 = 21 cells, 9 full */
    assert_string_equal(bar(&p, 80), "part 2/3 [#########------------]   44%   220 MiB/491 MiB"
                                     "  12.3 MiB/s  ETA 22s");
}

static void test_plain(void **state)
{
    (void)state;
    dl_progress p = running();
    assert_string_equal(plain(&p), "m.gguf: 44% (220 MiB of 491 MiB), 12.3 MiB/s, ETA 22s");
    p.eta_s = 7380;
    assert_string_equal(plain(&p), "m.gguf: 44% (220 MiB of 491 MiB), 12.3 MiB/s, ETA 2h03m");
    /* no speed yet: nothing to say about speed or time */
    p.bytes_per_s = 0;
    p.eta_s = -1;
    p.done = 0;
    assert_string_equal(plain(&p), "m.gguf: 0% (0 B of 491 MiB)");
    p.done = p.total;
    p.finished = true;
    assert_string_equal(plain(&p), "m.gguf: 100% (491 MiB of 491 MiB), done");

    p = running();
    p.total = 100ull << 20;
    p.resumed_from = 40ull << 20;
    p.done = 60ull << 20;
    p.bytes_per_s = 2.5 * MIB;
    p.eta_s = 16;
    p.part = 2;
    p.n_parts = 3;
    p.attempt = 2;
    assert_string_equal(plain(&p), "m.gguf (part 2/3): 60% (60.0 MiB of 100 MiB, resumed at "
                                   "40.0 MiB), 2.50 MiB/s, ETA 16s, attempt 2");
    /* a retry that could not resume: it says so rather than look like a fresh start */
    p = running();
    p.total = 1185376;
    p.done = 0;
    p.bytes_per_s = 0;
    p.attempt = 2;
    p.restarted_from = 589824;
    assert_string_equal(plain(&p), "m.gguf: 0% (0 B of 1.13 MiB), attempt 2, from the beginning "
                                   "(576 KiB received before cannot be resumed: the server "
                                   "gives no ETag or Last-Modified)");

    p = running();
    p.total = 0;
    p.done = 12ull << 20;
    p.bytes_per_s = 1.2 * MIB;
    assert_string_equal(plain(&p), "m.gguf: 12.0 MiB of unknown size, 1.20 MiB/s");
    p.finished = true;
    assert_string_equal(plain(&p), "m.gguf: 12.0 MiB of unknown size, done");
}

/* One line when the size is known, one per tenth, none for the tenth tenth (the finish line
 * says it), one at the finish; a new part starts over. */
static void test_plain_due_known(void **state)
{
    (void)state;
    app_progress_pace pace = { 0 };
    dl_progress p = running();
    p.total = 1000;
    p.done = 0;
    p.total = 0; /* the first report may come before the answer's headers */
    assert_false(app_progress_plain_due(&pace, &p, 100.0));
    p.total = 1000;
    assert_true(app_progress_plain_due(&pace, &p, 100.1));
    p.done = 50;
    assert_false(app_progress_plain_due(&pace, &p, 100.2));
    p.done = 100;
    assert_true(app_progress_plain_due(&pace, &p, 100.3));
    p.done = 199;
    assert_false(app_progress_plain_due(&pace, &p, 100.4));
    p.done = 450; /* two tenths at once: one line */
    assert_true(app_progress_plain_due(&pace, &p, 100.5));
    assert_false(app_progress_plain_due(&pace, &p, 100.6));
    assert_true(app_progress_plain_due(&pace, &p, 110.6)); /* 10 s without a line */
    p.done = 1000;
    assert_false(app_progress_plain_due(&pace, &p, 110.7));
    p.finished = true;
    assert_true(app_progress_plain_due(&pace, &p, 110.8));

    /* part 2 of a split model starts with a line of its own */
    p.part = 2;
    p.finished = false;
    p.done = 0;
    assert_true(app_progress_plain_due(&pace, &p, 111.0));
    assert_false(app_progress_plain_due(&pace, &p, 111.1));
}

static void test_plain_due_unknown(void **state)
{
    (void)state;
    app_progress_pace pace = { 0 };
    dl_progress p = running();
    p.total = 0;
    p.done = 0;
    assert_false(app_progress_plain_due(&pace, &p, 5.0));
    p.done = 1 << 20;
    assert_false(app_progress_plain_due(&pace, &p, 6.0));
    assert_true(app_progress_plain_due(&pace, &p, 7.0)); /* 2 s without a size */
    p.done = 100 << 20;
    assert_false(app_progress_plain_due(&pace, &p, 16.9));
    assert_true(app_progress_plain_due(&pace, &p, 17.0));
    p.finished = true;
    assert_true(app_progress_plain_due(&pace, &p, 17.1));
    /* a file already complete reports only its finish: that line is due */
    app_progress_pace fresh = { 0 };
    p.total = p.done;
    assert_true(app_progress_plain_due(&fresh, &p, 0.0));
}

/* The display: plain lines into a file (no \r), the bar redrawn in place with \r and
 * erase-to-end-of-line, ended by a newline at the finish; stop cancels. */
static void test_display(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    volatile sig_atomic_t stop = 0;
    app_progress pr;
    app_progress_init(&pr, f, false, false, &stop);
    dl_progress p = running();
    assert_int_equal(app_progress_update(&p, &pr), 0);
    p.done = p.total;
    p.finished = true;
    assert_int_equal(app_progress_update(&p, &pr), 0);
    app_progress_end(&pr);
    fflush(f);
    assert_string_equal(text, "m.gguf: 44% (220 MiB of 491 MiB), 12.3 MiB/s, ETA 22s\n"
                              "m.gguf: 100% (491 MiB of 491 MiB), done\n");
    stop = 1;
    assert_int_not_equal(app_progress_update(&p, &pr), 0);
    assert_int_equal(pr.done, p.done);
    fclose(f);
    free(text);

    f = open_memstream(&text, &len);
    app_progress_init(&pr, f, true, false, NULL); /* not a real terminal: 80 columns */
    p = running();
    app_progress_update(&p, &pr);
    assert_true(pr.line_open);
    app_progress_end(&pr);
    app_progress_end(&pr); /* twice: one newline */
    fflush(f);
    assert_string_equal(text, "\r[#############-----------------]   44%   220 MiB/491 MiB"
                              "  12.3 MiB/s  ETA 22s\x1b[K\n");
    fclose(f);
    free(text);

    f = open_memstream(&text, &len);
    app_progress_init(&pr, f, true, true, NULL); /* quiet: nothing at all */
    app_progress_update(&p, &pr);
    app_progress_end(&pr);
    fflush(f);
    assert_int_equal(len, 0);
    fclose(f);
    free(text);
}

static void test_fmt_count(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(app_fmt_count(999, b, sizeof b), "999");
    assert_string_equal(app_fmt_count(292800, b, sizeof b), "292.8K");
    assert_string_equal(app_fmt_count(135000000, b, sizeof b), "135.0M");
    assert_string_equal(app_fmt_count(1240000000, b, sizeof b), "1.24B");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eta),
        cmocka_unit_test(test_ago),
        cmocka_unit_test(test_bar_80),
        cmocka_unit_test(test_bar_20),
        cmocka_unit_test(test_bar_resumed_and_zero_speed),
        cmocka_unit_test(test_bar_unknown_total_and_parts),
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_plain_due_known),
        cmocka_unit_test(test_plain_due_unknown),
        cmocka_unit_test(test_display),
        cmocka_unit_test(test_fmt_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
