/* Shared by the cmocka test programs: where the fixtures are, and reading whole files. */
#ifndef SIZEUP_TESTUTIL_H
#define SIZEUP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

/* The seed of a test's random data: SIZEUP_TEST_SEED when set (to repeat a run), else fresh
 * from the clock and the process id. Printed, so every failure can be reproduced. */
static inline uint64_t random_seed(const char *what)
{
    const char *s = getenv("SIZEUP_TEST_SEED");
    uint64_t seed = s && *s ? strtoull(s, NULL, 0)
                            : (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20 ^ (uint64_t)clock() << 40;
    if (!seed)
        seed = 1;
    printf("# %s: random seed %llu (SIZEUP_TEST_SEED=%llu repeats this run)\n", what,
           (unsigned long long)seed, (unsigned long long)seed);
    fflush(stdout);
    return seed;
}

/* $SIZEUP_FIXTURES/rel, in a static buffer (one at a time). Fails the test loudly, naming the
 * path, when the fixtures folder is missing. */
static inline const char *fixture_path(const char *rel)
{
    static char buf[4096];
    const char *dir = getenv("SIZEUP_FIXTURES");
    if (!dir || !*dir)
        dir = "../shared/fixtures";
    snprintf(buf, sizeof buf, "%s/%s", dir, rel);
    FILE *f = fopen(buf, "rb");
    if (!f)
        fail_msg("fixture missing: %s (set SIZEUP_FIXTURES to the fixtures folder)", buf);
    fclose(f);
    return buf;
}

/* Whole file into a malloc'd buffer; caller frees. Fails the test when unreadable. */
static inline uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(p);
    if (n > 0 && fread(p, 1, (size_t)n, f) != (size_t)n)
        fail_msg("short read on %s", path);
    fclose(f);
    *len = (size_t)n;
    return p;
}

#endif
