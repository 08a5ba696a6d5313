/* GGUF reader and writer.
 *
 * The reader maps a file (or borrows a caller's buffer) and validates everything in the header
 * before anything else touches it: every count, length and offset is checked against the bytes
 * that are really there, with overflow-safe arithmetic, so a truncated or hostile file yields an
 * error naming the key or tensor and the byte offset, never a read outside the mapping.
 * Values stay in the mapping; the reader only allocates small index tables.
 *
 * The writer assembles metadata and tensors and writes a file the reader (and llama.cpp)
 * accepts. Copying every KV and tensor of a reader into a writer gives a byte-identical file for
 * files laid out the usual way (gguf-py, llama.cpp).
 */
#ifndef SIZEUP_GGUF_H
#define SIZEUP_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gguf_status {
    GGUF_OK = 0,
    GGUF_ERR_IO,       /* open/stat/mmap/write failed; the message names the path */
    GGUF_ERR_FORMAT,   /* the bytes are not a valid GGUF; the message names key/tensor + offset */
    GGUF_ERR_NOMEM,
    GGUF_ERR_NOTFOUND, /* a getter's key or tensor is absent */
    GGUF_ERR_TYPE,     /* a getter's key has a type that cannot represent the request */
    GGUF_ERR_ARG,      /* caller error (bad type id, duplicate name given to the writer, ...) */
} gguf_status;

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum gguf_vtype {
    GGUF_VT_UINT8 = 0, GGUF_VT_INT8 = 1, GGUF_VT_UINT16 = 2, GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4, GGUF_VT_INT32 = 5, GGUF_VT_FLOAT32 = 6, GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8, GGUF_VT_ARRAY = 9, GGUF_VT_UINT64 = 10, GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12,
    GGUF_VT_COUNT
} gguf_vtype;

/* ggml tensor types, numbered as in ggml.h. Gaps are ids ggml retired; they are refused. */
typedef enum gguf_ttype {
    GGUF_T_F32 = 0, GGUF_T_F16 = 1, GGUF_T_Q4_0 = 2, GGUF_T_Q4_1 = 3,
    GGUF_T_Q5_0 = 6, GGUF_T_Q5_1 = 7, GGUF_T_Q8_0 = 8, GGUF_T_Q8_1 = 9,
    GGUF_T_Q2_K = 10, GGUF_T_Q3_K = 11, GGUF_T_Q4_K = 12, GGUF_T_Q5_K = 13,
    GGUF_T_Q6_K = 14, GGUF_T_Q8_K = 15, GGUF_T_IQ2_XXS = 16, GGUF_T_IQ2_XS = 17,
    GGUF_T_IQ3_XXS = 18, GGUF_T_IQ1_S = 19, GGUF_T_IQ4_NL = 20, GGUF_T_IQ3_S = 21,
    GGUF_T_IQ2_S = 22, GGUF_T_IQ4_XS = 23, GGUF_T_I8 = 24, GGUF_T_I16 = 25,
    GGUF_T_I32 = 26, GGUF_T_I64 = 27, GGUF_T_F64 = 28, GGUF_T_IQ1_M = 29,
    GGUF_T_BF16 = 30, GGUF_T_TQ1_0 = 34, GGUF_T_TQ2_0 = 35, GGUF_T_MXFP4 = 39,
    GGUF_T_COUNT = 40 /* one past the largest id */
} gguf_ttype;

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

/* Facts about a tensor type. Returns NULL for an id that is not a known type. */
typedef struct gguf_type_info {
    const char *name;        /* "Q4_K" */
    uint32_t block_elems;    /* values per block: 1, 32 or 256 */
    uint32_t block_bytes;    /* bytes per block */
} gguf_type_info;
const gguf_type_info *gguf_type_get(uint32_t type);
/* Type id for a name ("q8_0" or "Q8_0"); -1 when unknown. */
int gguf_type_from_name(const char *name);
const char *gguf_vtype_name(uint32_t vtype);
/* Bytes of one scalar of a value type; 0 for string, array and unknown types. */
uint32_t gguf_vtype_size(uint32_t vtype);

typedef struct gguf_file gguf_file;

typedef struct gguf_str {
    const char *ptr; /* borrowed from the mapping; NOT NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t type;                    /* gguf_ttype */
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];       /* ne[0] is the contiguous (row) dimension; unused = 1 */
    uint64_t n_elems;
    uint64_t offset;                  /* relative to the start of the data section */
    uint64_t nbytes;
    const void *data;                 /* borrowed from the mapping until gguf_close */
    uint64_t info_offset;             /* file offset of this tensor's info record */
} gguf_tensor;

/* Open a file: mmap it read-only and parse it. On failure *out is NULL and, when err is not
 * NULL, a message naming the file and the problem is written to err (errlen bytes).
 * Caller frees with gguf_close. */
gguf_status gguf_open(const char *path, gguf_file **out, char *err, size_t errlen);
/* Parse a caller's buffer, which must stay valid and unchanged until gguf_close.
 * `what` names the source in messages (a path or a URL). */
gguf_status gguf_open_buffer(const void *data, size_t size, const char *what,
                             gguf_file **out, char *err, size_t errlen);
void gguf_close(gguf_file *f);
/* For a SIGBUS handler (a mapped file truncated or changed while in use): the path of the file
 * opened with gguf_open whose mapping holds addr; when addr is NULL or in no mapping, the path of
 * a mapped file that is now shorter than its mapping (stat). NULL when none. Async-signal-safe
 * (a fixed table, no locks, no allocation); the string is borrowed, cut to 255 bytes. */
const char *gguf_mapped_path_at(const void *addr);

uint32_t gguf_version(const gguf_file *f);

/* Gives back the memory of bytes [p, p + n) of a file opened with gguf_open, widened to whole
 * pages: a copy of them lives elsewhere now (on a Vulkan device). Safe whatever reads them
 * later: the mapping is private and read-only, so a later read faults the page in again from
 * the file (a CPU session of the same model just pays that once). No-op for a file opened from
 * a caller's buffer, or a range outside the mapping. */
void gguf_release_pages(const gguf_file *f, const void *p, size_t n);
uint64_t gguf_file_size(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f);  /* file offset of the tensor data section */
const char *gguf_source(const gguf_file *f);    /* the path or name given at open */

/* ---- metadata ---- */
int64_t gguf_kv_count(const gguf_file *f);
int64_t gguf_find_key(const gguf_file *f, const char *key); /* index or -1 */
gguf_str gguf_kv_key(const gguf_file *f, int64_t i);
uint32_t gguf_kv_type(const gguf_file *f, int64_t i);
/* Byte range [start, end) of the whole KV record (key, type, value) in the file. */
void gguf_kv_span(const gguf_file *f, int64_t i, uint64_t *start, uint64_t *end);
/* The bytes of that record, borrowed from the mapping. */
const void *gguf_kv_raw(const gguf_file *f, int64_t i);

/* A value: scalars decoded, strings and arrays borrowed from the mapping. */
typedef struct gguf_value {
    uint32_t type;
    union {
        uint64_t u; int64_t i; double f; bool b;
        gguf_str s;
        struct {
            uint32_t type;       /* element type */
            uint64_t n;          /* element count */
            const uint8_t *raw;  /* first element's bytes in the mapping */
            uint64_t nbytes;     /* bytes of all elements */
        } arr;
    } v;
} gguf_value;
gguf_status gguf_kv_value(const gguf_file *f, int64_t i, gguf_value *out);
/* Element j of an array value; for arrays of strings or arrays this uses an index built at
 * open, so it is O(1). */
gguf_status gguf_arr_get(const gguf_file *f, int64_t kv, uint64_t j, gguf_value *out);

/* Typed getters by key. Integers convert between widths when the value fits (else
 * GGUF_ERR_TYPE); floats accept float32 or float64. Strings come back NUL-terminated in a
 * caller buffer (truncated to buflen-1, still NUL-terminated). */
gguf_status gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
gguf_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
gguf_status gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
gguf_status gguf_get_f64(const gguf_file *f, const char *key, double *out);
gguf_status gguf_get_f32(const gguf_file *f, const char *key, float *out);
gguf_status gguf_get_bool(const gguf_file *f, const char *key, bool *out);
gguf_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
gguf_status gguf_get_cstr(const gguf_file *f, const char *key, char *buf, size_t buflen);
gguf_status gguf_get_arr(const gguf_file *f, const char *key, uint32_t *elem_type, uint64_t *n);

/* "ARCH.suffix" with ARCH from general.architecture: gguf_arch_key(f, "block_count", ...)
 * gives "llama.block_count". Returns false when the architecture is absent or buf is short. */
bool gguf_arch_key(const gguf_file *f, const char *suffix, char *buf, size_t buflen);
gguf_status gguf_get_arch_u32(const gguf_file *f, const char *suffix, uint32_t *out);
gguf_status gguf_get_arch_f32(const gguf_file *f, const char *suffix, float *out);

/* ---- tensors ---- */
int64_t gguf_tensor_count(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i);    /* borrowed */
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Message of the failure that ended an open (empty on a good handle). Getters report by
 * status only, so one handle can be read from several threads. */
const char *gguf_errmsg(const gguf_file *f);

/* Bytes for n_elems values of a type; false when ne0 is not a multiple of the block size or
 * the product overflows. */
bool gguf_tensor_nbytes(uint32_t type, const uint64_t *ne, uint32_t n_dims, uint64_t *nbytes);

/* ---- writer ---- */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void);   /* NULL on out of memory; free with gguf_writer_free */
void gguf_writer_free(gguf_writer *w);
void gguf_writer_set_alignment(gguf_writer *w, uint32_t alignment); /* power of two */

/* Setting a key that exists replaces its value in place (its position is kept). */
gguf_status gguf_writer_set_u8(gguf_writer *w, const char *key, uint8_t v);
gguf_status gguf_writer_set_i8(gguf_writer *w, const char *key, int8_t v);
gguf_status gguf_writer_set_u16(gguf_writer *w, const char *key, uint16_t v);
gguf_status gguf_writer_set_i16(gguf_writer *w, const char *key, int16_t v);
gguf_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
gguf_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
gguf_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
gguf_status gguf_writer_set_i64(gguf_writer *w, const char *key, int64_t v);
gguf_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
gguf_status gguf_writer_set_f64(gguf_writer *w, const char *key, double v);
gguf_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
gguf_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* An array of a scalar type; `data` holds n little-endian elements of that type. */
gguf_status gguf_writer_set_arr(gguf_writer *w, const char *key, uint32_t elem_type,
                                const void *data, uint64_t n);
gguf_status gguf_writer_set_arr_str(gguf_writer *w, const char *key,
                                    const char *const *strs, uint64_t n);
/* Copy KV i of a reader verbatim (any type, nested arrays included). */
gguf_status gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, int64_t i);
gguf_status gguf_writer_remove_kv(gguf_writer *w, const char *key);

/* Add a tensor. `data` (nbytes as implied by type and shape) is borrowed until the file is
 * written. Tensors are laid out in the order added, each aligned. */
gguf_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type,
                                   uint32_t n_dims, const uint64_t *ne, const void *data);

/* Write the file to path: into a new temp file beside it (PATH.XXXXXX.tmp, with the start of
 * PATH's name only when the whole would pass NAME_MAX; created with O_EXCL, so an existing
 * file or symlink of that name is never opened or lost, and concurrent writers never share
 * one), fsync, then rename over path. On any failure the temp file is
 * removed and path is untouched. A symlink at path itself is replaced, not followed. */
gguf_status gguf_writer_write(gguf_writer *w, const char *path);
/* gguf_writer_write with flags: GGUF_WRITE_NO_REPLACE fails (GGUF_ERR_IO, nothing changed)
 * when path exists at the moment of the rename, so a caller's "does OUT exist" check cannot be
 * raced into an overwrite. */
#define GGUF_WRITE_NO_REPLACE 1u
gguf_status gguf_writer_write_ex(gguf_writer *w, const char *path, unsigned flags);
const char *gguf_writer_errmsg(const gguf_writer *w);

#endif
