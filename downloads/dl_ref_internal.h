/* What the catalog, reference and peek files (dl_catalog.c, dl_ref.c, dl_name.c, dl_peek.c)
 * share beyond dl_internal.h. Not for use outside downloads/. */
#ifndef SIZEUP_DL_REF_INTERNAL_H
#define SIZEUP_DL_REF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "downloads/dl_internal.h"

/* True when the catalog wrote this file's size as an estimate (size_approx): a download must
 * then trust the server's length instead. f must come from dl_catalog_entry(c, ...). */
bool dl_catalog_size_approx(const dl_ctx *c, const dl_cat_file *f);

/* ---- names (dl_name.c) ---- */

/* "Q4_K_M" matches "x-q4_k_m.gguf" but "Q4_K" does not: the quant must stand as its own token,
 * with no letter, digit or '_' after it and no letter or digit before it. Case-insensitive. */
bool dl_name_has_quant(const char *name, const char *quant);
/* The last quant-looking token of a file name ("Q4_K_M", "IQ3_XS", "F16", "BF16"), upper case,
 * into buf; false when there is none. "fp16"/"fp32" read as F16/F32. */
bool dl_name_guess_quant(const char *name, char *buf, size_t buflen);
/* A split GGUF part name "PREFIX-00002-of-00005.gguf" (case-insensitive suffix): *part and
 * *n_parts get 2 and 5, *prefix_len the length of PREFIX. */
bool dl_name_split(const char *name, size_t *prefix_len, int *part, int *n_parts);
/* Part `part` of the split set `name` belongs to (malloc'd), or NULL (out of memory). */
char *dl_name_split_part(const char *name, int part);
/* "OWNER/REPO": exactly two components, neither empty, "." nor "..", without control
 * characters or '\\' (they become folder names in the store). The one check for catalog entries
 * and parsed references alike. */
bool dl_name_is_repo(const char *s);
/* The last path component (borrowed from path). */
const char *dl_name_base(const char *path);
/* True when name ends with suffix, ignoring case. */
bool dl_name_ends_with(const char *name, const char *suffix);
/* Percent-encode everything but unreserved characters and '/' (malloc'd; NULL out of memory). */
char *dl_url_escape_path(const char *path);
/* printf into a fresh malloc'd string; NULL when out of memory. */
char *dl_strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- references (dl_ref.c) ---- */

/* Resolve an already parsed reference (dl_resolve without the parse); used by dl_peek. */
dl_status dl_resolve_ref(dl_ctx *c, const dl_ref *ref, bool offline, dl_resolved *out);

#endif
