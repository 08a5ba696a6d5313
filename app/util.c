/* Small helpers shared by the commands: error lines, human-readable sizes, integer options,
 * reading a whole input file, and the checks that stdout really received what was printed. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "app/app.h"
#include "engine/engine.h"
#include "engine/strbuf.h"
#include "engine/utf8.h"
#include "engine/vk.h"

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
    /* An index past the last device would otherwise make the automatic backend fall back to
     * the CPU, silently running somewhere the user did not ask for. Listing the devices costs
     * an instance, no logical device. Without a loader or any device the caller says so itself
     * (and --backend cpu still runs). */
    vk_open_opts vo = { .has_device_index = 1, .device_index = (uint32_t)v,
                        .device_origin = origin };
    char err[400];
    vk_ctx *ctx = NULL;
    vk_status st = vk_ctx_open(&vo, &ctx, err, sizeof err);
    if (st == VK_STATUS_OK)
        vk_ctx_close(ctx);
    else if (st == VK_STATUS_BAD_INDEX)
        return app_fail(cmd, "%s (see sizeup devices)", err) + 1;
    *out = (int)v;
    return 0;
}

/* strtoll/strtoull accept leading blanks, and strtoull a minus sign (wrapping it round): only
 * what a person would call a decimal integer gets through here. */
static bool plain_decimal(const char *text, bool sign_ok)
{
    const char *p = text;
    if (sign_ok && (*p == '-' || *p == '+'))
        p++;
    if (!*p)
        return false;
    for (; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

int app_parse_int(const char *cmd, const char *opt, const char *text, long long lo, long long hi,
                  long long *out)
{
    errno = 0;
    long long v = plain_decimal(text, true) ? strtoll(text, NULL, 10) : 0;
    if (!plain_decimal(text, true) || errno || v < lo || v > hi)
        return app_fail(cmd, "%s '%s': expected an integer from %lld to %lld", opt, text, lo,
                        hi) + 1;
    *out = v;
    return 0;
}

int app_parse_u64(const char *cmd, const char *opt, const char *text, uint64_t *out)
{
    errno = 0;
    unsigned long long v = plain_decimal(text, false) ? strtoull(text, NULL, 10) : 0;
    if (!plain_decimal(text, false) || errno)
        return app_fail(cmd, "%s '%s': expected an integer from 0 to %" PRIu64, opt, text,
                        UINT64_MAX) + 1;
    *out = v;
    return 0;
}

int app_parse_real(const char *cmd, const char *opt, const char *text, double lo, double hi,
                   double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno || !isfinite(v) || v < lo || v > hi)
        return app_fail(cmd, "%s '%s': expected a number from %g to %g", opt, text, lo, hi) + 1;
    *out = v;
    return 0;
}

int app_session_opt(const char *cmd, const char *opt, const char *val, struct eng_session_opts *so,
                    bool *seed_set)
{
    eng_sampler_params *sp = &so->sampling;
    double d;
    long long i;
#define REAL(lo, hi) if (app_parse_real(cmd, opt, val, lo, hi, &d)) return 2
#define INT(lo, hi) if (app_parse_int(cmd, opt, val, lo, hi, &i)) return 2
    if (!strcmp(opt, "--temp")) { REAL(0, 100); sp->temperature = (float)d; }
    else if (!strcmp(opt, "--top-k")) { INT(0, INT32_MAX); sp->top_k = (int32_t)i; }
    else if (!strcmp(opt, "--top-p")) { REAL(1e-6, 1); sp->top_p = (float)d; }
    else if (!strcmp(opt, "--min-p")) { REAL(0, 1); sp->min_p = (float)d; }
    else if (!strcmp(opt, "--repeat-penalty")) { REAL(1e-3, 100); sp->repeat_penalty = (float)d; }
    else if (!strcmp(opt, "--seed")) {
        if (app_parse_u64(cmd, opt, val, &sp->seed))
            return 2;
        if (seed_set)
            *seed_set = true;
    }
    else if (!strcmp(opt, "-c") || !strcmp(opt, "--ctx")) { INT(8, 1 << 24); so->n_ctx = (uint32_t)i; }
    else if (!strcmp(opt, "-t") || !strcmp(opt, "--threads")) { INT(1, 256); so->n_threads = (int)i; }
    else if (!strcmp(opt, "--backend")) {
        if (!strcmp(val, "cpu")) so->backend = ENG_BACKEND_CPU;
        else if (!strcmp(val, "vulkan")) so->backend = ENG_BACKEND_VULKAN;
        else return app_fail(cmd, "--backend '%s': expected cpu or vulkan", val) + 1;
    } else return -1;
#undef REAL
#undef INT
    return 0;
}

int app_backend_env(const char *cmd, struct eng_session_opts *so)
{
    const char *env = getenv("SIZEUP_BACKEND");
    if (!env || !*env || so->backend != ENG_BACKEND_AUTO)
        return 0;
    if (!strcmp(env, "cpu"))
        so->backend = ENG_BACKEND_CPU;
    else if (!strcmp(env, "vulkan"))
        so->backend = ENG_BACKEND_VULKAN;
    else  /* refused as --backend's value is: a typo must not silently mean "automatic" */
        return app_fail(cmd, "SIZEUP_BACKEND '%s': expected cpu or vulkan (or unset it)", env) + 1;
    return 0;
}

int app_read_input(const char *cmd, const char *what, const char *path, size_t max, char **buf,
                   size_t *len)
{
    *buf = NULL;
    *len = 0;
    bool is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return app_fail(cmd, "%s %s: %s", what, path, strerror(errno));
    /* fopen and fread on a directory "work" on Linux (the read fails with EISDIR, which a
     * loop that only counts bytes takes for an empty file) */
    struct stat sb;
    int rc = 0;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        rc = app_fail(cmd, "%s %s: is a directory, not a file", what, path);
        goto done;
    }
    strbuf b = { 0 };
    size_t r;
    /* read one byte past max, so "exactly max" and "more than max" can be told apart */
    do {
        size_t want = b.len + 65536 < max + 1 ? 65536 : max + 1 - b.len;
        if (!strbuf_reserve(&b, want)) {
            rc = app_fail(cmd, "%s %s: out of memory", what, path);
            goto done_buf;
        }
        r = fread(b.p + b.len, 1, want, f);
        b.len += r;
        b.p[b.len] = 0;
    } while (r > 0 && b.len <= max);
    if (b.len > max) {
        rc = app_fail(cmd, "%s %s: larger than %zu MiB, the most sizeup reads as text (no "
                      "model's context holds that much)", what, path, max >> 20);
        goto done_buf;
    }
    if (ferror(f)) {
        rc = app_fail(cmd, "%s %s: %s", what, path, strerror(errno));
        goto done_buf;
    }
    *len = b.len;
    *buf = strbuf_take(&b);
done_buf:
    strbuf_free(&b);
done:
    if (!is_stdin)
        fclose(f);
    return rc;
}

/* ---- stdout ---- */

/* The first write error seen on stdout: stdio keeps only the error flag, and after a failed
 * flush it drops the buffer, so a later flush "succeeds" and errno is long gone by exit. */
static int stdout_errno;

bool app_stdout_ok(void)
{
    if (fflush(stdout) == EOF && !stdout_errno)
        stdout_errno = errno;
    return !ferror(stdout);
}

int app_stdout_close(const char *cmd)
{
    bool ok = app_stdout_ok();
    if (fclose(stdout) == EOF && ok) {
        ok = false;
        stdout_errno = errno;
    }
    if (ok)
        return 0;
    /* a reader that went away (sizeup run ... | head) is not worth a message */
    if (stdout_errno != EPIPE)
        app_fail(cmd, "cannot write to stdout: %s", stdout_errno ? strerror(stdout_errno)
                                                                 : "a write failed");
    return 1;
}

int app_read_text(const char *cmd, const char *what, const char *path, char **text, size_t *len)
{
    int rc = app_read_input(cmd, what, path, APP_MAX_INPUT, text, len);
    if (rc)
        return rc;
    const char *nul = memchr(*text, 0, *len);
    if (nul) {
        rc = app_fail(cmd, "%s %s: NUL byte at offset %zu; the input must be text", what, path,
                      (size_t)(nul - *text));
        free(*text);
        *text = NULL;
    }
    return rc;
}

double app_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double app_now_ms(void) { return app_now_s() * 1e3; }

/* ---- text from model files ---- */

const char *app_escape(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t k = utf8_seq_len(u, n - i);
        unsigned cp = k > 1 && utf8_is_control(u, k) ? utf8_decode(u, k) : 0;
        char e[8];
        const char *put = e;
        size_t w;
        if (!k || (k == 1 && (u[0] < 0x20 || u[0] == 0x7f || u[0] == '"' || u[0] == '\\'))) {
            const char *named = !k ? NULL : u[0] == '\n' ? "\\n" : u[0] == '\t' ? "\\t"
                              : u[0] == '\r' ? "\\r" : u[0] == '"' ? "\\\"" : u[0] == '\\' ? "\\\\"
                              : NULL;
            w = named ? (size_t)snprintf(e, sizeof e, "%s", named)
                      : (size_t)snprintf(e, sizeof e, "\\x%02x", u[0]);
            k = 1;
        } else if (cp) {
            w = (size_t)snprintf(e, sizeof e, "\\u%04x", cp);
        } else {
            put = (const char *)u;
            w = k;
        }
        if (o + w >= cap)
            break;
        memcpy(buf + o, put, w);
        o += w;
        i += k;
    }
    if (cap)
        buf[o] = 0;
    return buf;
}

json_t *app_json_text(const char *s, size_t n)
{
    char *buf = malloc(3 * n + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k) {
            memcpy(buf + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    json_t *j = json_stringn(buf, o);
    free(buf);
    return j;
}

uint32_t app_ctx_train(const eng_model *m)
{
    return eng_model_hparams(m)->n_ctx_train;
}

bool app_ctx_warn(const char *cmd, const eng_model *m, uint32_t n_ctx, const char *what)
{
    uint32_t train = app_ctx_train(m);
    if (!train || n_ctx <= train)
        return false;
    fprintf(stderr, "sizeup %s: warning: %s is longer than the %u tokens %s was trained with: "
            "positions past %u are ones it never learnt, so what it predicts there (and a "
            "perplexity measured there) says less of it than it should\n", cmd, what, train,
            eng_model_name(m), train);
    return true;
}
