/* What the download module's files share: the context's fields and helpers between them.
 * Not for use outside downloads/. */
#ifndef SIZEUP_DL_INTERNAL_H
#define SIZEUP_DL_INTERNAL_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "downloads/dl.h"

struct dl_catalog;   /* dl_catalog.c */

struct dl_ctx {
    char *store_dir;         /* resolved store folder (no trailing slash), or NULL */
    const char *store_var;   /* the variable store_dir came from ("SIZEUP_MODELS"), or NULL */
    bool no_store;           /* store_dir is NULL because the environment names no safe
                              * place for it (dl_store_ready says which variable to set) */
    char *cacert;            /* CA bundle path or NULL (curl's default) */
    char *hf_endpoint;       /* base URL without trailing slash */
    char *hf_token;          /* or NULL */
    char *catalog_path;      /* explicit catalog file or NULL (search the default places) */
    char *builtin_dir;       /* explicit built-in models folder or NULL (search, as above) */
    int max_retries;
    long backoff_ms;
    long low_speed_bps, low_speed_s;
    long connect_s;
    dl_progress_fn progress;
    void *progress_user;
    volatile sig_atomic_t cancel;   /* set by dl_cancel; cleared by the call it stops, so a
                                     * Ctrl-C between two parts still stops the pull */
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
/* a followed by b in a new string (caller frees), or NULL when out of memory. */
char *dl_concat(const char *a, const char *b);

/* ---- data installed with the program (dl_ctx.c) ---- */

/* "host" or "host:port" (the port only where the URL names one) of url, in lower case, with any
 * user:password dropped: for messages and for comparing hosts. libcurl's URL parser does the
 * parsing. False, with out "", when url has no host or it does not fit cap. */
bool dl_url_host(const char *url, char *out, size_t cap);
/* Drop, in place, the "user:password@" of every URL in s (a message or a URL): dl_fail applies
 * it to every message, and records and sidecars keep URLs without it (dl_name.c). */
void dl_url_hide_userinfo(char *s);

/* Find NAME, a data file (want_dir false) or folder installed with the program: override when
 * set (a setting or environment variable: then nothing else is tried), else in order
 *   BINDIR/../share/sizeup/NAME   installed (make install), BINDIR from /proc/self/exe
 *   BINDIR/../downloads/NAME      the source tree, for build/sizeup
 *   BINDIR/../../downloads/NAME   the same for a build one level deeper (build/asan/sizeup)
 *   downloads/NAME                the current folder, for a binary run from the source tree
 * The catalog and the built-in models share this one search, so they are always found
 * together. Returns true with the path in found; else false with the places tried, comma
 * separated, in tried (for the message). */
bool dl_data_find(const char *override, const char *name, bool want_dir, char *found,
                  size_t found_len, char *tried, size_t tried_len);

/* ---- the store's records and folders (dl_store.c) ---- */

/* The record DEST.json of a finished file (dl.h, "Files on disk"). Strings are malloc'd (NULL
 * when the record lacks them); dl_record_free frees them, not the struct. */
typedef struct dl_record {
    char *url;
    char *etag;
    char *sha256;            /* the file's SHA-256 (64 lowercase hex digits), computed while it
                              * was received; compared with a known one only when verified
                              * says DL_VERIFIED_SHA256 */
    uint64_t size;
    int64_t pulled_at, last_used;  /* Unix seconds, 0 when unknown */
    dl_verified verified;    /* what was compared before the file was put in place */
} dl_record;
/* Read dest_path + ".json". DL_ERR_NOT_FOUND when there is none, DL_ERR_FORMAT when it does
 * not parse. Does not touch c's message (c is not needed). */
dl_status dl_record_read(const char *dest_path, dl_record *r);
void dl_record_free(dl_record *r);
/* Set the record's last_used to now (for dl_locate); rewritten atomically. DL_ERR_NOT_FOUND
 * when there is no record, DL_ERR_IO when it cannot be rewritten. */
dl_status dl_record_touch(const char *dest_path);
/* Write r as dest_path + ".json" (through a temporary file and rename, so a reader never sees
 * half a record). 0, or -1 with errno set. */
int dl_record_write(const char *dest_path, const dl_record *r);
/* ---- paths inside the store (dl_store.c): nothing below the store folder is followed ---- */

/* The part of path after "STORE/" (borrowed from path), or NULL when path is not written
 * under the store folder. */
const char *dl_store_rel(const dl_ctx *c, const char *path);
/* Open the folder of path (a file path under the store) by walking down from the store with
 * O_NOFOLLOW on every component. DL_OK with *dirfd open (caller closes), or with *dirfd = -1
 * when a folder on the way is not there; DL_ERR_ARG (message) when one is a symbolic link or
 * not a folder, or path is not a plain path under the store. */
dl_status dl_store_open_dir(dl_ctx *c, const char *path, int *dirfd);
/* DL_OK for a path outside the store (the caller's own destination), and for one inside
 * whose folders are real folders (or not there yet) and which is not itself a symbolic link;
 * else DL_ERR_ARG with a message naming the link. */
dl_status dl_store_check_path(dl_ctx *c, const char *path);
/* Write o as JSON to path through tmp (created afresh with O_EXCL | O_NOFOLLOW, so a link or
 * file planted at tmp is never written through) and rename. 0, or -1 with errno set. */
int dl_json_write_atomic(const char *path, const char *tmp, json_t *o, size_t flags);

/* ---- the transfer lock FILE.lock (dl_store.c), shared by transfers and removal ---- */

/* One try, without waiting, at the flock on lock_path (created if missing): 0 with *fd holding
 * the lock on the file that is at lock_path now, EWOULDBLOCK when another holds it, or another
 * errno (ENOENT: the folder is not there). The holder's pid is written into the file for
 * messages. Whoever holds it releases it with dl_lock_drop, which unlinks the file before
 * unlocking, so no lock files are left behind and a waiter that locked the unlinked inode
 * notices and tries again. */
int dl_lock_try(const char *lock_path, int *fd);
/* The pid written into lock_path by its holder, or 0 when unknown. */
long dl_lock_holder(const char *lock_path);
void dl_lock_drop(const char *lock_path, int fd);

/* mkdir -p dir (mode 0755 for what it creates); 0, or -1 with errno set. */
int dl_mkdir_parents(const char *dir);
/* What a file of mode m is, for a message: "a FIFO", "a character device", ... (static). */
const char *dl_file_kind(mode_t m);
/* rmdir the folders from path's folder up to, not including, root (a prefix of path), stopping
 * at the first that is not empty: only emptied folders go. */
void dl_prune_dirs(const char *root, const char *path);

#endif
