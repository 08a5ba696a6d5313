/* Small helpers shared by the commands: error lines and human-readable sizes. */
#include <stdarg.h>
#include <stdio.h>

#include "app/app.h"

int app_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sizeup %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

const char *app_fmt_bytes(unsigned long long bytes, char *buf, size_t buflen)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, buflen, "%llu B", bytes);
    else
        snprintf(buf, buflen, v >= 100 ? "%.0f %s" : v >= 10 ? "%.1f %s" : "%.2f %s", v, units[u]);
    return buf;
}
