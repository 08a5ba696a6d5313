/* File-name rules for model references: quant tokens in GGUF file names ("…-Q4_K_M.gguf"),
 * split GGUF part names ("…-00001-of-00003.gguf", llama.cpp's gguf-split format) and URL path
 * escaping. Pure string functions, kept apart from dl_ref.c so they are easy to test. */
#include "downloads/dl_ref_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *dl_strfmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

const char *dl_name_base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* One folder name of a repository: the store joins it into a path, so it must not climb
 * ("..") or stay put ("."), and control characters would corrupt messages and listings. */
static bool is_repo_component(const char *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\')
            return false;
    return true;
}

bool dl_name_is_repo(const char *s)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash || strchr(slash + 1, '/'))
        return false;
    return is_repo_component(s, (size_t)(slash - s)) &&
           is_repo_component(slash + 1, strlen(slash + 1));
}

bool dl_name_ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && !strcasecmp(name + n - k, suffix);
}

/* '_' belongs to a quant token ("Q4_K_M"), so it must not end one: that is what keeps "Q4_K"
 * from matching inside "Q4_K_M". Before the token '_' is a separator ("Model_Q8_0.gguf"). */
static bool token_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_';
}

bool dl_name_has_quant(const char *name, const char *quant)
{
    size_t k = strlen(quant);
    if (k == 0)
        return false;
    for (const char *p = name; *p; p++) {
        if (p > name && isalnum((unsigned char)p[-1]))
            continue;
        if (!strncasecmp(p, quant, k) && !token_char(p[k]))
            return true;
    }
    return false;
}

/* Length of a quant token at p: I?Q<digits>(_<alnum>+)*, or B?F16/F32, or FP16/FP32;
 * 0 when p does not start one. */
static size_t quant_token_len(const char *p)
{
    size_t i = 0;
    if (toupper((unsigned char)p[i]) == 'I')
        i++;
    if (toupper((unsigned char)p[i]) == 'Q' && isdigit((unsigned char)p[i + 1])) {
        i++;
        while (isdigit((unsigned char)p[i]))
            i++;
        while (p[i] == '_' && isalnum((unsigned char)p[i + 1])) {
            i++;
            while (isalnum((unsigned char)p[i]))
                i++;
        }
        return token_char(p[i]) ? 0 : i;
    }
    static const char *const floats[] = { "BF16", "FP16", "FP32", "F16", "F32" };
    for (size_t k = 0; k < sizeof floats / sizeof *floats; k++) {
        size_t n = strlen(floats[k]);
        if (!strncasecmp(p, floats[k], n) && !token_char(p[n]))
            return n;
    }
    return 0;
}

bool dl_name_guess_quant(const char *name, char *buf, size_t buflen)
{
    const char *best = NULL;
    size_t best_len = 0;
    name = dl_name_base(name);
    for (const char *p = name; *p; p++) {
        if (p > name && isalnum((unsigned char)p[-1]))
            continue;
        size_t n = quant_token_len(p);
        if (n) {
            best = p;
            best_len = n;
        }
    }
    if (!best || best_len >= buflen)
        return false;
    bool fp = !strncasecmp(best, "FP", 2);   /* FP16 -> F16, the name ggml uses */
    size_t j = 0;
    for (size_t i = 0; i < best_len; i++)
        if (!(fp && i == 1))
            buf[j++] = (char)toupper((unsigned char)best[i]);
    buf[j] = 0;
    return true;
}

/* Exactly five digits at p (llama.cpp writes "%05d"). */
static int five_digits(const char *p)
{
    int v = 0;
    for (int i = 0; i < 5; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

bool dl_name_split(const char *name, size_t *prefix_len, int *part, int *n_parts)
{
    static const char tail[] = "-00000-of-00000.gguf";
    size_t n = strlen(name), k = sizeof tail - 1;
    if (n <= k || !dl_name_ends_with(name, ".gguf"))
        return false;
    const char *s = name + n - k;
    if (s[0] != '-' || strncasecmp(s + 6, "-of-", 4))
        return false;
    int a = five_digits(s + 1), b = five_digits(s + 10);
    if (a < 1 || b < 1 || a > b)
        return false;
    if (prefix_len)
        *prefix_len = (size_t)(s - name);
    if (part)
        *part = a;
    if (n_parts)
        *n_parts = b;
    return true;
}

char *dl_name_split_part(const char *name, int part)
{
    size_t prefix;
    int n_parts;
    if (!dl_name_split(name, &prefix, NULL, &n_parts))
        return NULL;
    /* Keep the original ".gguf" spelling: the server's file names are case-sensitive. */
    return dl_strfmt("%.*s-%05d-of-%05d%s", (int)prefix, name, part, n_parts,
                     name + strlen(name) - 5);
}

char *dl_url_escape_path(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(path) * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (isalnum(*p) || strchr("-._~/", *p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = 0;
    return out;
}

/* Where the authority of a URL ends: userinfo never holds these (RFC 3986 section 3.2), and in
 * a message a URL is followed by a space, a quote or a bracket. */
static bool authority_end(char ch)
{
    return !ch || strchr("/?#\"'<>()[]", ch) || isspace((unsigned char)ch);
}

void dl_url_hide_userinfo(char *s)
{
    for (char *p = s ? strstr(s, "://") : NULL; p; p = strstr(p, "://")) {
        p += 3;
        char *end = p, *at = NULL;
        for (; !authority_end(*end); end++)
            if (*end == '@')
                at = end;
        if (at)
            memmove(p, at + 1, strlen(at + 1) + 1);
    }
}

char *dl_url_shown(const char *text)
{
    char *s = dl_strdup(text);
    dl_url_hide_userinfo(s);
    return s;
}

char *dl_not_gguf_why(const unsigned char b[4], char *buf, size_t n)
{
    size_t i = 0;
    while (i < 3 && isspace(b[i]))
        i++;
    const char *guess = b[i] == '<' ? ": an HTML page?" : b[i] == '{' || b[i] == '['
                      ? ": a JSON answer?" : "";
    snprintf(buf, n, "it starts with %02x %02x %02x %02x%s", b[0], b[1], b[2], b[3], guess);
    return buf;
}
