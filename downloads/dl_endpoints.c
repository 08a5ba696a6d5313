/* endpoints.conf: named OpenAI-compatible endpoints (see dl_remote.h). Parsed by hand (INI is
 * a few line shapes) and strictly: anything the file does not mean to say (an unknown key, a
 * key outside a section, a section twice, a key given twice) is an error naming the line, so a
 * typo never silently sends requests, or a key, somewhere else. */
#include "downloads/dl_remote.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define MAX_CONF_LINE 4096

bool dl_endpoints_default_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && *xdg == '/')   /* the XDG spec: a relative value is ignored */
        n = snprintf(buf, len, "%s/sizeup/endpoints.conf", xdg);
    else if (home && *home == '/')
        n = snprintf(buf, len, "%s/.config/sizeup/endpoints.conf", home);
    else
        return false;
    return n > 0 && (size_t)n < len;
}

void dl_endpoints_free(dl_endpoint *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++) {
        free(list[i].name);
        free(list[i].url);
        free(list[i].key_env);
        free(list[i].model);
    }
    free(list);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* Endpoint names appear in references (@NAME/MODEL), so they cannot hold '/' or spaces. */
static bool valid_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

/* A POSIX environment variable name; a key pasted here by mistake ("sk-...") is not one. */
static bool valid_env_name(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

typedef struct conf_parse {
    const char *path;
    int line;
    char *err;
    size_t errlen;
    dl_endpoint *list;
    size_t n;
} conf_parse;

static dl_status bad(conf_parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static dl_status bad(conf_parse *p, const char *fmt, ...)
{
    int k = snprintf(p->err, p->errlen, "%s:%d: ", p->path, p->line);
    if (k >= 0 && (size_t)k < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return DL_ERR_ARG;
}

static dl_status section(conf_parse *p, char *s)
{
    char *end = strchr(s, ']');
    if (!end || trim(end + 1)[0])
        return bad(p, "a section header is [NAME] alone on its line");
    *end = 0;
    char *name = trim(s + 1);
    if (!valid_name(name))
        return bad(p, "endpoint name '%s': use letters, digits, '_', '-' and '.'", name);
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->list[i].name, name))
            return bad(p, "endpoint [%s] is defined twice (first on line %d)", name,
                       p->list[i].line);
    dl_endpoint *l = realloc(p->list, (p->n + 1) * sizeof *l);
    if (!l)
        return bad(p, "out of memory");
    p->list = l;
    memset(&l[p->n], 0, sizeof l[p->n]);
    l[p->n].line = p->line;
    if (!(l[p->n++].name = strdup(name)))
        return bad(p, "out of memory");
    return DL_OK;
}

static dl_status assign(conf_parse *p, char *s)
{
    char *eq = strchr(s, '=');
    if (!eq)
        return bad(p, "expected 'key = value', a [section] or a comment");
    *eq = 0;
    char *key = trim(s), *val = trim(eq + 1);
    if (!p->n)
        return bad(p, "'%s' is outside any [endpoint] section", key);
    dl_endpoint *e = &p->list[p->n - 1];
    char **field = !strcmp(key, "url") ? &e->url : !strcmp(key, "key_env") ? &e->key_env
                 : !strcmp(key, "model") ? &e->model : NULL;
    if (!strcmp(key, "key") || !strcmp(key, "api_key"))
        return bad(p, "keys do not belong in this file: put the key in an environment "
                   "variable and name that variable with key_env = VARIABLE");
    if (!field)
        return bad(p, "unknown key '%s' (expected url, key_env or model)", key);
    if (*field)
        return bad(p, "'%s' is given twice in [%s]", key, e->name);
    if (!*val)
        return bad(p, "'%s' has no value", key);
    if (field == &e->url && strncmp(val, "http://", 7) && strncmp(val, "https://", 8))
        return bad(p, "url must start with http:// or https://");
    if (field == &e->key_env && !valid_env_name(val))
        return bad(p, "key_env names the environment variable that holds the key (letters, "
                   "digits and '_'), not the key itself");
    if (!(*field = strdup(val)))
        return bad(p, "out of memory");
    return DL_OK;
}

/* Every section needs a url; said at the section's own line. */
static dl_status check_sections(conf_parse *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (!p->list[i].url) {
            p->line = p->list[i].line;
            return bad(p, "endpoint [%s] has no url", p->list[i].name);
        }
    }
    return DL_OK;
}

static dl_status parse_lines(conf_parse *p, FILE *f)
{
    char *buf = NULL;
    size_t cap = 0;
    ssize_t got;
    dl_status st = DL_OK;
    errno = 0;
    while (!st && (got = getline(&buf, &cap, f)) >= 0) {
        p->line++;
        if (got > MAX_CONF_LINE)
            st = bad(p, "line longer than %d bytes", MAX_CONF_LINE);
        else if (memchr(buf, 0, (size_t)got))
            st = bad(p, "NUL byte in the line: is this a text file?");
        char *s = st ? NULL : trim(buf);
        if (!s || !*s || *s == '#' || *s == ';')
            continue;
        st = *s == '[' ? section(p, s) : assign(p, s);
    }
    free(buf);
    if (!st && ferror(f))
        st = bad(p, "read error: %s", strerror(errno));
    return st ? st : check_sections(p);
}

dl_status dl_endpoints_load(const char *path, dl_endpoint **list, size_t *n, char *err,
                            size_t errlen)
{
    char def[4096];
    *list = NULL;
    *n = 0;
    if (!path) {
        if (!dl_endpoints_default_path(def, sizeof def)) {
            snprintf(err, errlen, "no endpoints file: neither XDG_CONFIG_HOME nor HOME is set "
                     "to an absolute path");
            return DL_ERR_NOT_FOUND;
        }
        path = def;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? DL_ERR_NOT_FOUND : DL_ERR_IO;
    }
    conf_parse p = { path, 0, err, errlen, NULL, 0 };
    dl_status st = parse_lines(&p, f);
    fclose(f);
    if (st) {
        dl_endpoints_free(p.list, p.n);
        return st;
    }
    *list = p.list;
    *n = p.n;
    return DL_OK;
}
