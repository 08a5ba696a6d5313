/* Model downloads: references, catalog, resumable verified transfers, remote header peek, and
 * the local model store. Public header of downloads/.
 *
 * downloads/ knows nothing of the engine, curses or the command line. It never prints or exits;
 * every failure comes back as a dl_status with a message on the context (dl_errmsg) that names
 * the URL, file or value at fault. Progress is reported through a callback, so the command line
 * can draw a bar and the TUI can post events to its own thread.
 *
 * Threads: a dl_ctx is used by one thread at a time, except dl_cancel, which any thread (or a
 * signal handler) may call. Several contexts may transfer at once in one process; two processes
 * pulling the same file serialise on a lock file beside it, so neither corrupts the other.
 *
 * Files on disk (the store; docs/DESIGN.md section 4):
 *   STORE/OWNER/REPO/FILE.gguf          a verified model file (one folder per repository;
 *                                       URL references use STORE/HOST/DIR.../FILE.gguf)
 *   STORE/OWNER/REPO/FILE.gguf.part     bytes received so far
 *   STORE/OWNER/REPO/FILE.gguf.part.json  sidecar: URL, ETag, expected size and SHA-256
 *   STORE/OWNER/REPO/FILE.gguf.json     record of a finished file: source URL, ETag, size,
 *                                       SHA-256, pulled-at and last-used times
 *   STORE/OWNER/REPO/FILE.gguf.lock     flock()ed while a transfer of FILE runs
 * STORE is $SIZEUP_MODELS, else $XDG_CACHE_HOME/sizeup/models (an absolute XDG_CACHE_HOME only),
 * else $HOME/.cache/sizeup/models (an absolute HOME only); with none of them there is no store
 * (dl_store_ready), never a shared folder such as /tmp.
 */
#ifndef SIZEUP_DL_H
#define SIZEUP_DL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum dl_status {
    DL_OK = 0,
    DL_ERR_ARG,         /* a malformed reference, URL or option value */
    DL_ERR_OFFLINE,     /* the host could not be resolved or reached (DNS, refused, no route) */
    DL_ERR_NETWORK,     /* the transfer failed after retries (reset, timeout, too slow, 5xx) */
    DL_ERR_HTTP,        /* the server refused with a 4xx (not found, gated, unauthorised) */
    DL_ERR_NOT_FOUND,   /* no such catalog name / quant / file in the repository / store entry */
    DL_ERR_VERIFY,      /* size or SHA-256 mismatch: the part was deleted */
    DL_ERR_DISK_FULL,   /* not enough space: the message says how much is needed and free */
    DL_ERR_IO,          /* another local file-system failure (named in the message) */
    DL_ERR_CANCELLED,   /* dl_cancel was called: a resumable part is left behind */
    DL_ERR_FORMAT,      /* an answer that cannot be understood (JSON listing, catalog file) */
    DL_ERR_TLS,         /* certificate or TLS handshake failure */
    DL_ERR_DAMAGED,     /* a stored file no longer has the size its record says (truncated or
                         * changed since it was verified); pulling it again replaces it */
} dl_status;

/* What was compared when a stored file was downloaded (its record says). */
typedef enum dl_verified {
    DL_VERIFIED_UNKNOWN = 0, /* no record, or one written before records said */
    DL_VERIFIED_NONE,        /* nothing was known to compare against: neither size nor hash */
    DL_VERIFIED_SIZE,        /* the size was compared; no checksum was known */
    DL_VERIFIED_SHA256,      /* the SHA-256 was compared (and the size, when known) */
} dl_verified;

typedef struct dl_ctx dl_ctx;

/* A context with settings from the environment: SIZEUP_MODELS / XDG_CACHE_HOME (store),
 * HF_ENDPOINT (default https://huggingface.co, trailing slash dropped), HF_TOKEN (bearer token
 * sent to the HF endpoint only), CURL_CA_BUNDLE (CA file), SIZEUP_CATALOG (catalog file).
 * Returns NULL only when out of memory. Caller frees with dl_close; dl_close(NULL) is a no-op. */
dl_ctx *dl_open(void);
void dl_close(dl_ctx *c);
/* The detail of the last failure on this context; borrowed until the next call on it. */
const char *dl_errmsg(const dl_ctx *c);
/* text with the "user:password@" of every URL in it dropped, for showing it (a reference, a
 * URL, a message); other text comes back unchanged. The credentials still go to the server
 * with a transfer, but no message, record or sidecar of downloads/ holds them. Caller frees;
 * NULL only when text is NULL or out of memory. */
char *dl_url_shown(const char *text);
/* Why a file that should be a GGUF model is not one, from its first four bytes b (which do not
 * read "GGUF"): "it starts with 3c 68 74 6d: an HTML page?" (a guess for HTML and JSON, the
 * usual answers of a server that sends a page instead of a file). Writes a NUL-terminated
 * string into buf (n bytes) and returns buf. */
char *dl_not_gguf_why(const unsigned char b[4], char *buf, size_t n);
/* "offline", "network error", ... for a status. Static string. */
const char *dl_status_name(dl_status s);

/* ---- settings (each copies its string; NULL restores the default) ---- */
void dl_set_store_dir(dl_ctx *c, const char *dir);
void dl_set_cacert(dl_ctx *c, const char *pem_path);     /* overrides CURL_CA_BUNDLE */
void dl_set_hf_endpoint(dl_ctx *c, const char *base_url);
void dl_set_hf_token(dl_ctx *c, const char *token);
void dl_set_catalog_path(dl_ctx *c, const char *path);
/* The folder of the built-in demo models (catalog entries marked builtin); NULL: SIZEUP_BUILTIN,
 * else searched as the catalog is (dl_catalog_load), with "builtin" for "catalog.json". */
void dl_set_builtin_dir(dl_ctx *c, const char *dir);
/* That folder, found now, into buf (returned); NULL with a message naming the places tried. */
const char *dl_builtin_dir(dl_ctx *c, char *buf, size_t buflen);
/* Transient failures are retried max_retries times, waiting backoff_ms, then twice that, ...
 * (defaults 5 and 1000). A transfer slower than low_speed_bps for low_speed_s seconds is a
 * transient failure (defaults 1024 B/s for 30 s). connect_s: connect timeout (default 15). */
void dl_set_retry(dl_ctx *c, int max_retries, long backoff_ms);
void dl_set_low_speed(dl_ctx *c, long low_speed_bps, long low_speed_s);
void dl_set_connect_timeout(dl_ctx *c, long connect_s);
const char *dl_store_dir(const dl_ctx *c);               /* borrowed; NULL: no store */
/* DL_OK when c has a store folder; else DL_ERR_ARG with a message naming the variables to
 * set (HOME, XDG_CACHE_HOME, SIZEUP_MODELS). Every function below that touches the store
 * fails the same way when there is none. */
dl_status dl_store_ready(dl_ctx *c);
const char *dl_hf_endpoint(const dl_ctx *c);             /* borrowed */

/* ---- progress and cancel ---- */
typedef struct dl_progress {
    const char *name;        /* file being transferred (base name); borrowed for the call */
    int part, n_parts;       /* 1-based file index and count (split GGUFs), 1 and 1 otherwise */
    uint64_t done;           /* bytes of this file on disk so far, resumed bytes included */
    uint64_t total;          /* expected size of this file, 0 when unknown */
    uint64_t resumed_from;   /* bytes already there when this transfer started */
    double bytes_per_s;      /* recent transfer speed (not counting resumed bytes) */
    double eta_s;            /* seconds left, < 0 when unknown */
    int attempt;             /* 1 for the first try, 2.. for retries */
    uint64_t restarted_from; /* > 0: this attempt threw away that many bytes of an earlier one
                              * and starts from the beginning, because neither an ETag nor a
                              * Last-Modified date (nor a checksum) could show that the server's
                              * file is still the one they came from */
    bool finished;           /* last call for this file (verified and renamed) */
} dl_progress;
/* Called from the transferring thread, at most about ten times a second and once with
 * finished = true. Return nonzero to cancel (same effect as dl_cancel). */
typedef int (*dl_progress_fn)(const dl_progress *p, void *user);
void dl_set_progress(dl_ctx *c, dl_progress_fn fn, void *user);
/* Ask the running transfer on c to stop soon; it returns DL_ERR_CANCELLED and leaves a
 * resumable part. Async-signal-safe (sets a flag). */
void dl_cancel(dl_ctx *c);

/* ---- one file ---- */
typedef struct dl_expect {
    uint64_t size;           /* 0: unknown (then the server's length or X-Linked-Size is used) */
    const char *sha256_hex;  /* 64 lowercase hex digits, or NULL: then X-Linked-ETag is used when
                              * the server sends one, else the file is verified by size only */
    bool gguf;               /* a model: refuse (DL_ERR_FORMAT, part deleted, nothing stored) a
                              * file that does not start with the GGUF magic, such as a login
                              * page a server answered 200 with */
} dl_expect;
/* Transfer url to dest_path: dest_path.part plus sidecar, resumed with a Range request when a
 * part with a matching sidecar exists (206 required; a 200 restarts from zero; a changed ETag
 * restarts), retried on transient failures, verified, renamed atomically, and recorded in
 * dest_path.json. Returns DL_OK at once if dest_path exists with a matching record. exp may be
 * NULL. Creates dest_path's folders. */
dl_status dl_fetch_file(dl_ctx *c, const char *url, const char *dest_path, const dl_expect *exp);
/* GET url into memory (for JSON listings): *body is NUL-terminated, caller frees with free(). */
dl_status dl_get(dl_ctx *c, const char *url, char **body, size_t *len);
/* Bytes [offset, offset+len) of url into buf; *got may be less than len at the end of the file.
 * *file_size gets the whole size from Content-Range when known (may be NULL). */
dl_status dl_get_range(dl_ctx *c, const char *url, uint64_t offset, size_t len, void *buf,
                       size_t *got, uint64_t *file_size);

/* ---- references ---- */
typedef enum dl_ref_kind {
    DL_REF_LOCAL,            /* a path to an existing file (or any text that is not one of the
                              * forms below: then it is a missing local file) */
    DL_REF_CATALOG,          /* "qwen2.5:0.5b", "llama3.2:1b:Q8_0" */
    DL_REF_HF_REPO,          /* "hf.co/OWNER/REPO[:QUANT]" (also huggingface.co/...) */
    DL_REF_HF_FILE,          /* "hf.co/OWNER/REPO/PATH/FILE.gguf" */
    DL_REF_URL,              /* "https://..." or "http://..." */
} dl_ref_kind;

typedef struct dl_ref {
    dl_ref_kind kind;
    char *text;              /* the reference as given */
    char *name;              /* catalog name ("qwen2.5:0.5b") or NULL */
    char *repo;              /* "OWNER/REPO" (catalog and hf forms) or NULL */
    char *file;              /* path inside the repository (HF_FILE), or NULL */
    char *quant;             /* requested quant, upper case ("Q4_K_M"), or NULL for the default */
    char *url;               /* URL form, or NULL */
    char *path;              /* local path (LOCAL), or NULL */
} dl_ref;
/* Parse text without touching the network or the disk (LOCAL is chosen for anything that is not
 * a catalog name, hf.co/... or URL form; a catalog name needs the catalog loaded, so
 * "name:tag" forms are classified CATALOG only when c's catalog has the name; c may be NULL to
 * skip that). Free with dl_ref_free (NULL-safe; frees the strings, not the struct); on failure
 * *out holds nothing to free (dl_ref_free on it is still safe). */
dl_status dl_ref_parse(dl_ctx *c, const char *text, dl_ref *out);
/* For text that parsed as a local path naming no file: true, with c's message "TEXT is not a
 * file or a catalog name; did you mean A, B? (sizeup catalog lists them)", when text is a bare
 * word (no '/', no .gguf) and catalog names are close to it (dl_catalog_suggest); false, with
 * c's message as it was, otherwise. */
bool dl_ref_suggest(dl_ctx *c, const char *text);
void dl_ref_free(dl_ref *r);

/* One file of a resolved reference. */
typedef struct dl_file {
    char *url;               /* where to fetch it */
    char *path;              /* where it lives (or will live) in the store, or the local path */
    char *rel_name;          /* file name inside its repository ("Qwen2.5-0.5B-Q4_K_M.gguf") */
    uint64_t size;           /* expected bytes, 0 when unknown */
    char *sha256_hex;        /* expected SHA-256 or NULL */
    bool present;            /* already complete on disk, at the size its record says */
    bool damaged;            /* on disk with a record, but another size: not present */
    char *made_from;         /* a file sizeup makes itself rather than downloads (url is NULL):
                              * the built-in file it is made from, with the quantizer, as the
                              * quant of dl_resolved says; NULL for every other file */
} dl_file;

typedef struct dl_resolved {
    dl_ref_kind kind;
    char *repo;              /* "OWNER/REPO" or NULL */
    char *quant;             /* quant chosen ("Q4_K_M") or NULL when unknown */
    size_t n_files;          /* > 1 for split GGUFs, in part order */
    dl_file *files;
    bool builtin;            /* a built-in demo model: its files are in the built-in folder
                              * (dl_builtin_dir) or made into STORE/builtin/; never fetched */
} dl_resolved;
/* Turn a reference into the files to fetch: a catalog entry's file per quant; an HF repository's
 * file listing ({endpoint}/api/models/OWNER/REPO/tree/main?recursive=true) filtered by quant
 * (default Q4_K_M; the message lists the quants there when the one asked for is missing); the
 * other parts of a split GGUF; resolve URLs {endpoint}/OWNER/REPO/resolve/main/PATH. Local
 * references resolve without the network; others need it only when not already in the store
 * (offline=true: never touch the network, DL_ERR_NOT_FOUND if not stored). Built-in
 * entries never touch the network; a file made_from another is present once made and recorded
 * (dl_store_record_made).
 * Free with dl_resolved_free (NULL-safe). */
dl_status dl_resolve(dl_ctx *c, const char *ref, bool offline, dl_resolved *out);
void dl_resolved_free(dl_resolved *r);

/* Resolve and fetch every file of ref; *path_out (caller frees) is the local path of the first
 * file (the one to open). A local reference returns its own path. A built-in file that is
 * made, not fetched, and not made yet is DL_ERR_NOT_FOUND: the caller makes it (app/). */
dl_status dl_pull(dl_ctx *c, const char *ref, char **path_out);
/* The local path for ref if it is a local file or complete in the store, without the network;
 * DL_ERR_NOT_FOUND otherwise, DL_ERR_DAMAGED when a file is there at another size than its
 * record says (checked on every call). Updates the record's last-used time. Caller frees
 * *path_out. */
dl_status dl_locate(dl_ctx *c, const char *ref, char **path_out);

/* ---- remote peek: read only the head of a remote file ---- */
/* Called with the bytes read so far (from offset 0) and the file size: return 0 when they are
 * enough (e.g. the GGUF header and tensor table parse), 1 to ask for more, -1 to give up
 * (then dl_peek returns DL_ERR_FORMAT with msg, if set, in the message). */
typedef int (*dl_peek_enough_fn)(const void *buf, size_t len, uint64_t file_size, void *user,
                                 char *msg, size_t msglen);
/* Resolve ref (first file) and read its first bytes with Range requests, starting at 256 KiB and
 * doubling until enough() is satisfied or max_bytes is reached. *buf (caller frees) holds *len
 * bytes from offset 0; *file_size the whole file's size; *transferred the bytes actually received
 * over the network (for the "read 512 KiB of 2.1 GiB" line). */
dl_status dl_peek(dl_ctx *c, const char *ref, dl_peek_enough_fn enough, void *user,
                  size_t max_bytes, void **buf, size_t *len, uint64_t *file_size,
                  uint64_t *transferred);

/* ---- catalog ---- */
typedef struct dl_cat_file {
    const char *quant;       /* "Q4_K_M" */
    const char *file;        /* path inside the repository */
    uint64_t size;           /* bytes (approximate where the catalog says so) */
    const char *sha256_hex;  /* or NULL */
    const char *made_from;   /* built-in entries: the built-in file this one is made from on
                              * first use ("made_from" in the catalog), else NULL */
} dl_cat_file;

typedef struct dl_cat_entry {
    const char *name;        /* "qwen2.5:0.5b" */
    const char *family;      /* "Qwen2.5 Instruct" */
    const char *params;      /* "0.5B" as written */
    uint64_t n_params;       /* parameter count */
    const char *license;
    const char *repo;        /* "OWNER/REPO" */
    const char *default_quant;
    const char *description; /* one line, may be NULL */
    bool builtin;            /* shipped with sizeup ("builtin": true): its files are in the
                              * built-in folder, or made from one into STORE/builtin/ */
    size_t n_files;
    const dl_cat_file *files;
} dl_cat_entry;
/* Load the catalog (SIZEUP_CATALOG, dl_set_catalog_path, else the installed file
 * PREFIX/share/sizeup/catalog.json next to the binary's ../share, else downloads/catalog.json in
 * the source tree beside the binary's folder, else in the current folder). Entries are borrowed
 * until dl_close. */
dl_status dl_catalog_load(dl_ctx *c);
size_t dl_catalog_count(const dl_ctx *c);
const dl_cat_entry *dl_catalog_entry(const dl_ctx *c, size_t i);
const dl_cat_entry *dl_catalog_find(const dl_ctx *c, const char *name);
/* Catalog names close to word, which is not one: those that start with it ("qwen2.5" gives
 * "qwen2.5:0.5b, qwen2.5:1.5b, ..."), else those of its family (the part before its first ':'),
 * written into buf joined by ", " (cut short to fit len); how many (0 with no catalog loaded). */
size_t dl_catalog_suggest(dl_ctx *c, const char *word, char *buf, size_t len);
/* The default small/large comparison pair (catalog names), borrowed. */
void dl_catalog_default_pair(const dl_ctx *c, const char **small, const char **large);

/* ---- the store ---- */
typedef struct dl_stored {
    char *path;              /* full path of the .gguf */
    char *repo;              /* "OWNER/REPO" (or "HOST/DIR") from the folder */
    char *file;              /* base name */
    char *quant;             /* guessed from the file name ("Q4_K_M"), or NULL */
    uint64_t size;           /* on disk now */
    int64_t pulled_at, last_used;  /* Unix seconds, 0 when unknown */
    char *source_url;        /* from the record, or NULL */
    uint64_t recorded_size;  /* what the record says, 0 without a record */
    bool damaged;            /* size != recorded_size (the file changed since it was verified) */
    dl_verified verified;    /* what was compared when it was downloaded */
    char *sha256;            /* the SHA-256 it was compared against (DL_VERIFIED_SHA256), or NULL */
} dl_stored;
/* Every finished .gguf in the store, sorted by repo then file. Parts are not listed.
 * Free with dl_stored_free(list, n). */
dl_status dl_store_list(dl_ctx *c, dl_stored **list, size_t *n);
void dl_stored_free(dl_stored *list, size_t n);
/* The same facts for one file of the store (as dl_pull left it): *out is a list of one,
 * freed with dl_stored_free(*out, 1). DL_ERR_NOT_FOUND when path is not a file there. */
dl_status dl_store_stat(dl_ctx *c, const char *path, dl_stored **out);
/* Record path, a file under the store that sizeup made itself (the built-in demo's Q4_0), the
 * way dl_fetch_file records a download: path.json with its size, SHA-256, `source` (the
 * reference that makes it again, "demo:babyllama-q4") as its URL, and "verified": "none".
 * Call it only once the file is complete and in place: from then on it is present. */
dl_status dl_store_record_made(dl_ctx *c, const char *path, const char *source);
/* Writes a whole file to tmp (it exists, empty); 0, or nonzero when it could not (the caller
 * keeps its own message). */
typedef int (*dl_make_fn)(const char *tmp, void *user);
/* Make path, a file under the store that sizeup produces itself: creates its folder (no link
 * below the store followed), calls write_fn() on a fresh temporary name in that folder, flushes
 * it to disk, renames it to path and records it (dl_store_record_made). A failure at any point
 * leaves nothing under path that counts as present. DL_ERR_IO with "PATH could not be made"
 * when write_fn() failed. */
dl_status dl_store_make(dl_ctx *c, const char *path, const char *source, dl_make_fn write_fn,
                        void *user);
/* Bytes in unfinished parts under the store (shown by `sizeup list`). */
uint64_t dl_store_partial_bytes(dl_ctx *c);
/* Remove what ref names from the store: the file(s), record(s), part and sidecar. *removed gets
 * the number of model files removed. DL_ERR_NOT_FOUND when nothing matches. Refuses (DL_ERR_ARG)
 * a local path outside the store. */
dl_status dl_store_remove(dl_ctx *c, const char *ref, size_t *removed);

#endif
