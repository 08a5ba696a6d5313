/* Model choice and model facts for `sizeup chat` (see chat_models.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "app/chat_models.h"
#include "engine/gguf.h"
#include "engine/model_info.h"
#include "engine/vk.h"

char *app_chat_resolve_local(const char *ref, bool *remote, char *why, size_t whylen)
{
    struct stat sb;
    *remote = false;
    if (stat(ref, &sb) == 0) {  /* a file that exists is used as is, as app_model_path does */
        if (S_ISREG(sb.st_mode))
            return strdup(ref);
        if (S_ISDIR(sb.st_mode))
            snprintf(why, whylen, "%s is a directory, not a model file (give the path of a "
                     ".gguf file)", ref);
        else
            snprintf(why, whylen, "%s: not a regular file (%s)", ref, app_file_kind(sb.st_mode));
        return NULL;
    }
    if (app_is_remote_ref(ref)) {
        *remote = true;
        return NULL;
    }
    dl_ctx *c = dl_open();
    char *path = NULL;
    if (!c) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (app_is_builtin_ref(c, ref)) {
        if (app_builtin_path("chat", c, ref, true, &path))
            snprintf(why, whylen, "%s: the built-in model could not be found or made (see "
                     "the log)", ref);
    } else if (dl_locate(c, ref, &path) != DL_OK) {
        dl_ref r;
        if (dl_ref_parse(c, ref, &r) == DL_OK && r.kind != DL_REF_LOCAL)
            *remote = true;
        else if (r.kind == DL_REF_LOCAL && dl_ref_suggest(c, ref))
            snprintf(why, whylen, "%s", dl_errmsg(c));
        else
            snprintf(why, whylen, "%s: no such file, and not a model reference (a catalog "
                     "name, hf.co/OWNER/REPO, a URL; see sizeup catalog)", ref);
        dl_ref_free(&r);
    }
    dl_close(c);
    return path;
}

void app_chat_ref_label(const char *ref, char *buf, size_t len)
{
    const char *hash = strchr(ref, '#'), *slash = strrchr(ref, '/');
    if (app_is_remote_ref(ref))
        snprintf(buf, len, "%s", hash ? hash + 1 : ref[0] == '@' ? ref : "remote model");
    else
        snprintf(buf, len, "%s", slash && slash[1] ? slash + 1 : ref);
}

void app_model_brief(const char *path, char *type, size_t typelen, double *bpw,
                     unsigned long long *file_size)
{
    gguf_file *f;
    char err[256];
    snprintf(type, typelen, "?");
    *bpw = 0;
    *file_size = 0;
    if (gguf_open(path, &f, err, sizeof err) != GGUF_OK)
        return;
    eng_model_info *mi = malloc(sizeof *mi);
    if (mi && eng_model_info_read(f, mi) == GGUF_OK) {
        const gguf_type_info *ti = mi->n_types ? gguf_type_get(mi->types[0].type) : NULL;
        const char *ft = mi->has_file_type ? eng_ftype_name(mi->file_type) : NULL;
        if (ft && !strncmp(ft, "MOSTLY_", 7))  /* "Q4_0", as a pane header has little room */
            ft += 7;
        snprintf(type, typelen, "%s", ft ? ft : ti ? ti->name : "?");
        *bpw = mi->bits_per_weight;
        *file_size = mi->file_size;
    }
    free(mi);
    gguf_close(f);
}

unsigned long long app_host_rss(void)
{
    unsigned long long pages_total, pages_rss;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    int ok = fscanf(f, "%llu %llu", &pages_total, &pages_rss) == 2;
    fclose(f);
    return ok ? pages_rss * (unsigned long long)sysconf(_SC_PAGESIZE) : 0;
}

unsigned long long app_host_ram(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (unsigned long long)pages * (unsigned long long)size : 0;
}

unsigned long long app_vk_heap_bytes(int device)
{
    vk_open_opts o = { 0 };
    o.has_device_index = device >= 0;
    o.device_index = device >= 0 ? (uint32_t)device : 0;
    vk_ctx *ctx = NULL;
    if (vk_ctx_open(&o, &ctx, NULL, 0) != VK_STATUS_OK)
        return 0;
    const vk_device_info *d = vk_ctx_device_info(ctx, vk_ctx_choice(ctx)->index);
    unsigned long long heap = d ? vk_device_local_bytes(d) : 0;
    vk_ctx_close(ctx);
    return heap;
}
