/* What the download module's files share: the context's fields and helpers between them.
 * Not for use outside downloads/. */
#ifndef SIZEUP_DL_INTERNAL_H
#define SIZEUP_DL_INTERNAL_H

#include <signal.h>

#include "downloads/dl.h"

struct dl_catalog;   /* dl_catalog.c */

struct dl_ctx {
    char *store_dir;         /* resolved store folder (no trailing slash) */
    char *cacert;            /* CA bundle path or NULL (curl's default) */
    char *hf_endpoint;       /* base URL without trailing slash */
    char *hf_token;          /* or NULL */
    char *catalog_path;      /* explicit catalog file or NULL (search the default places) */
    int max_retries;
    long backoff_ms;
    long low_speed_bps, low_speed_s;
    long connect_s;
    dl_progress_fn progress;
    void *progress_user;
    volatile sig_atomic_t cancel;   /* set by dl_cancel; cleared when a transfer starts */
    struct dl_catalog *cat;         /* loaded catalog or NULL; freed by dl_close */
    char err[1024];
};

/* Set c's message (printf-style) and return st, so callers can `return dl_fail(c, st, ...)`. */
dl_status dl_fail(dl_ctx *c, dl_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Free what dl_catalog_load allocated (NULL-safe); dl_close calls it. */
void dl_catalog_free(struct dl_catalog *cat);
/* strdup that tolerates NULL. */
char *dl_strdup(const char *s);

#endif
