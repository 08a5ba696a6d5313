/* Small helpers shared by the commands: error lines and human-readable sizes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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

int app_device_index(const char *cmd, const char *flag_value, int *out)
{
    const char *text = flag_value, *origin = "--device";
    if (!text) {
        text = getenv("SIZEUP_DEVICE");
        origin = "SIZEUP_DEVICE";
        if (!text || !*text) {
            *out = -1;
            return 0;
        }
    }
    char *end;
    long v = strtol(text, &end, 10);
    if (!*text || *end || v < 0 || v > 255)
        return app_fail(cmd, "%s '%s': not a device index (see sizeup devices)", origin, text) + 1;
    *out = (int)v;
    return 0;
}
