/* Reading a whole text file (a prompt, a perplexity text) into memory, for the commands that
 * take one with -f. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"

int app_read_text(const char *cmd, const char *path, char **text, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return app_fail(cmd, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0, r;
    char *buf = malloc(cap);
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    int bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (!buf)
        return app_fail(cmd, "out of memory reading %s", path);
    if (bad) {
        free(buf);
        return app_fail(cmd, "cannot read %s", path);
    }
    buf[n] = 0;
    *text = buf;
    *len = n;
    return 0;
}
