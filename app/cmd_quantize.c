/* `sizeup quantize IN OUT TYPE`: rewrite a GGUF model with its weight matrices stored as TYPE.
 *
 * Every metadata key is copied, then general.file_type names the new type the way llama.cpp
 * numbers it. Matrices are decoded row by row from whatever type engine/quant reads and encoded
 * with ggml's reference quantizers (engine/quant), so the result loads in llama.cpp as well as
 * here. Norms, biases and other vectors keep their bytes, as llama-quantize keeps them. The new
 * tensors stay in memory until the writer puts the whole file down through OUT.tmp and a
 * rename, so a failure at any point leaves no OUT behind (and an existing OUT untouched).
 *
 * The work itself is app_quantize_file, which prints nothing of its own (a log stream and an
 * error buffer are the caller's), so the built-in demo (app/demo.c) makes its Q4_0 file with
 * exactly this code, from a command or from the TUI.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "app/app.h"
#include "engine/gguf.h"
#include "engine/quant.h"

#define CMD "quantize"

/* llama.cpp's file type numbers (llama_ftype), written to general.file_type. */
typedef struct quant_choice {
    const char *name;
    uint32_t type;  /* gguf_ttype the matrices get */
    uint32_t ftype;
} quant_choice;

/* Q4_K_M is what llama.cpp calls a mostly-Q4_K file; ours puts every matrix in Q4_K (llama.cpp's
 * mix promotes a few to Q6_K), and readers treat the number as a label only. */
static const quant_choice choices[] = {
    { "Q8_0", GGUF_T_Q8_0, 7 },   { "Q6_K", GGUF_T_Q6_K, 18 }, { "Q4_K", GGUF_T_Q4_K, 15 },
    { "Q4_K_M", GGUF_T_Q4_K, 15 }, { "Q4_0", GGUF_T_Q4_0, 2 },  { "F16", GGUF_T_F16, 1 },
    { "BF16", GGUF_T_BF16, 32 },  { "F32", GGUF_T_F32, 0 },
};
#define N_CHOICES (sizeof choices / sizeof choices[0])

/* ggml's quantization format version; llama-quantize writes it with every quantized file. */
#define QUANT_VERSION 2

static void usage(FILE *to)
{
    fprintf(to,
            "usage: sizeup quantize IN OUT TYPE\n\n"
            "Write a copy of the GGUF model IN to OUT with its weight matrices stored as TYPE.\n"
            "Every metadata key is kept and general.file_type is set to TYPE. A matrix is\n"
            "converted when its rows are a whole number of TYPE's blocks (32 values, 256 for\n"
            "the K types); others are kept as they are, with a note. Vectors (norms, biases)\n"
            "are copied unchanged. IN may hold any type sizeup can run.\n\n"
            "TYPE: Q8_0, Q6_K, Q4_K (also spelt Q4_K_M), Q4_0, F16, BF16, F32\n\n"
            "  -h, --help    show this help\n");
}

static const quant_choice *find_choice(const char *name)
{
    for (size_t i = 0; i < N_CHOICES; i++)
        if (!strcasecmp(name, choices[i].name))
            return &choices[i];
    return NULL;
}

/* Tensors llama-quantize leaves alone even when they are matrices: mixture-of-experts routers
 * and position/token-type embeddings are small and sensitive. */
static bool kept_by_name(const char *name)
{
    static const char *const keep[] = { "_norm.weight", "ffn_gate_inp.weight", "pos_embd",
                                        "token_types" };
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (strstr(name, keep[i]))
            return true;
    return false;
}

typedef struct quant_totals {
    uint64_t elems, bytes_in, bytes_out;
    int converted, kept;
} quant_totals;

/* Where one app_quantize_file call reports: progress lines to log (NULL: none), the reason
 * for a failure to err. */
typedef struct quant_out {
    FILE *log;
    char *err;
    size_t errlen;
} quant_out;

static int qfail(const quant_out *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int qfail(const quant_out *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->err, q->errlen, fmt, ap);
    va_end(ap);
    return 1;
}

static void qlog(const quant_out *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void qlog(const quant_out *q, const char *fmt, ...)
{
    if (!q->log)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(q->log, fmt, ap);
    va_end(ap);
    fflush(q->log);
}

/* Decode t row by row and encode each row as `type` into a new buffer (*out, caller frees).
 * Returns 0, or 1 after naming the tensor and row that could not be stored. */
static int convert_tensor(const quant_out *q, const gguf_tensor *t, const char *name,
                          uint32_t type, void **out)
{
    int64_t ne0 = (int64_t)t->ne[0], rows = (int64_t)(t->n_elems / t->ne[0]);
    size_t in_row = eng_row_bytes(t->type, ne0), out_row = eng_row_bytes(type, ne0);
    uint8_t *dst = malloc(out_row * (size_t)rows);
    float *buf = malloc((size_t)ne0 * sizeof *buf);
    if (!dst || !buf) {
        free(dst);
        free(buf);
        return qfail(q, "out of memory converting %s (%" PRId64 " x %" PRId64 ")", name, ne0,
                     rows);
    }
    const uint8_t *src = t->data;
    /* The reader checked at open that ne0 is whole blocks of t->type, and keep_reason that the
     * type is readable, so decoding cannot fail. */
    for (int64_t r = 0; r < rows; r++) {
        eng_dequantize_row(t->type, src + (size_t)r * in_row, buf, ne0);
        if (!eng_quantize_row(type, buf, dst + (size_t)r * out_row, ne0)) {
            free(dst);
            free(buf);
            return qfail(q, "%s row %" PRId64 " holds a NaN, an infinity or a value too large "
                         "for %s; nothing was written", name, r, gguf_type_get(type)->name);
        }
    }
    free(buf);
    *out = dst;
    return 0;
}

/* Why tensor t is not converted to `type` (NULL: it is). */
static const char *keep_reason(const gguf_tensor *t, const char *name, uint32_t type)
{
    if (t->n_dims < 2)
        return "";
    if (t->type == type)
        return "already that type";
    if (kept_by_name(name))
        return "llama-quantize keeps it too";
    if (!eng_type_supported(t->type))
        return "sizeup cannot read its type";
    if (!eng_row_bytes(type, (int64_t)t->ne[0]))
        return "row length is not a multiple of the block size";
    return NULL;
}

/* Add tensor t (index i of n) to w, converted when it should be; a converted buffer goes to
 * *buf, which the caller frees after the write. */
static int add_tensor(const quant_out *q, gguf_writer *w, const gguf_tensor *t,
                      const char *name, int64_t i, int64_t n, uint32_t type, void **buf,
                      quant_totals *tot)
{
    const char *why = keep_reason(t, name, type);
    const void *data = t->data;
    uint32_t out_type = t->type;
    if (!why) {
        qlog(q, "[%3" PRId64 "/%3" PRId64 "] %-32s %-5s -> %s\n", i + 1, n, name,
             gguf_type_get(t->type)->name, gguf_type_get(type)->name);
        if (convert_tensor(q, t, name, type, buf))
            return 1;
        data = *buf;
        out_type = type;
        tot->converted++;
    } else {
        tot->kept++;
        if (*why)
            qlog(q, "note: %s kept as %s: %s\n", name, gguf_type_get(t->type)->name, why);
    }
    uint64_t nbytes = 0;
    gguf_tensor_nbytes(out_type, t->ne, t->n_dims, &nbytes);
    tot->elems += t->n_elems;
    tot->bytes_in += t->nbytes;
    tot->bytes_out += nbytes;
    if (gguf_writer_add_tensor(w, name, out_type, t->n_dims, t->ne, data))
        return qfail(q, "%s", gguf_writer_errmsg(w));
    return 0;
}

/* Add every tensor of f to w in the file's order; converted buffers go to bufs[i]. */
static int add_tensors(const quant_out *q, const gguf_file *f, gguf_writer *w, uint32_t type,
                       void **bufs, quant_totals *tot)
{
    int64_t n = gguf_tensor_count(f);
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char *name = strndup(t->name.ptr, (size_t)t->name.len);
        if (!name)
            return qfail(q, "out of memory");
        int rc = add_tensor(q, w, t, name, i, n, type, &bufs[i], tot);
        free(name);
        if (rc)
            return rc;
    }
    return 0;
}

/* Copy every KV of f, then label the file with the new type. */
static int copy_metadata(const quant_out *q, const gguf_file *f, gguf_writer *w,
                         const quant_choice *c)
{
    for (int64_t i = 0; i < gguf_kv_count(f); i++)
        if (gguf_writer_copy_kv(w, f, i))
            return qfail(q, "%s", gguf_writer_errmsg(w));
    if (gguf_writer_set_u32(w, "general.file_type", c->ftype) ||
        (gguf_type_get(c->type)->block_elems > 1 &&
         gguf_writer_set_u32(w, "general.quantization_version", QUANT_VERSION)))
        return qfail(q, "%s", gguf_writer_errmsg(w));
    return 0;
}

static void report(const quant_out *q, const char *in, const char *out, const gguf_file *f,
                   const quant_choice *c, const quant_totals *tot)
{
    if (!q->log)
        return;
    char a[32], b[32], x[32], y[32];
    struct stat st;
    unsigned long long out_size = stat(out, &st) == 0 ? (unsigned long long)st.st_size : 0;
    double bpw_in = tot->elems ? 8.0 * (double)tot->bytes_in / (double)tot->elems : 0;
    double bpw_out = tot->elems ? 8.0 * (double)tot->bytes_out / (double)tot->elems : 0;
    qlog(q, "%s -> %s as %s: %d tensors converted, %d kept\n", in, out, c->name, tot->converted,
         tot->kept);
    qlog(q, "file:    %s -> %s\n", app_fmt_bytes(gguf_file_size(f), a, sizeof a),
         app_fmt_bytes(out_size, b, sizeof b));
    qlog(q, "weights: %s -> %s, %.2f -> %.2f bits per weight\n",
         app_fmt_bytes(tot->bytes_in, x, sizeof x), app_fmt_bytes(tot->bytes_out, y, sizeof y),
         bpw_in, bpw_out);
}

int app_quantize_file(const char *in, const char *out, const char *type, FILE *log, char *err,
                      size_t errlen)
{
    const quant_out qo = { log, err, errlen }, *q = &qo;
    const quant_choice *c = find_choice(type);
    if (!c)
        return qfail(q, "unknown quantization type '%s'", type);
    gguf_file *f = NULL;
    gguf_writer *w = NULL;
    void **bufs = NULL;
    quant_totals tot = { 0 };
    int rc = 1;
    if (gguf_open(in, &f, err, errlen))
        return 1;
    int64_t n = gguf_tensor_count(f);
    w = gguf_writer_new();
    bufs = calloc(n > 0 ? (size_t)n : 1, sizeof *bufs);
    if (!w || !bufs) {
        qfail(q, "out of memory");
        goto fail;
    }
    if (copy_metadata(q, f, w, c) || add_tensors(q, f, w, c->type, bufs, &tot))
        goto fail;
    if (gguf_writer_write(w, out)) {
        qfail(q, "%s", gguf_writer_errmsg(w));
        goto fail;
    }
    report(q, in, out, f, c, &tot);
    rc = 0;
fail:
    for (int64_t i = 0; bufs && i < n; i++)
        free(bufs[i]);
    free(bufs);
    gguf_writer_free(w);
    gguf_close(f);
    return rc;
}

int app_cmd_quantize(int argc, char **argv)
{
    const char *pos[3];
    int n_pos = 0;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = true;
        } else if (!only_pos && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            usage(stdout);
            return 0;
        } else if (!only_pos && a[0] == '-' && a[1]) {
            return app_fail(CMD, "unknown option '%s' (see 'sizeup quantize --help')", a) + 1;
        } else if (n_pos == 3) {
            return app_fail(CMD, "unexpected argument '%s' (expected IN OUT TYPE)", a) + 1;
        } else {
            pos[n_pos++] = a;
        }
    }
    if (n_pos < 3) {
        usage(stderr);
        return 2;
    }
    const quant_choice *c = find_choice(pos[2]);
    if (!c) {
        char list[128] = "";
        for (size_t i = 0; i < N_CHOICES; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     choices[i].name);
        return app_fail(CMD, "unknown type '%s' (valid types: %s)", pos[2], list) + 1;
    }
    char err[768];
    if (app_quantize_file(pos[0], pos[1], c->name, stdout, err, sizeof err))
        return app_fail(CMD, "%s", err);
    return 0;
}
