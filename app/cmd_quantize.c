/* `sizeup quantize IN OUT TYPE`: rewrite a GGUF model with its weight matrices stored as TYPE.
 *
 * Every metadata key is copied, then general.file_type names the new type the way llama.cpp
 * numbers it. Matrices are decoded row by row from whatever type engine/quant reads and encoded
 * with ggml's reference quantizers (engine/quant), so the result loads in llama.cpp as well as
 * here. Norms, biases and other vectors keep their bytes, as llama-quantize keeps them. Each
 * matrix gets the type llama-quantize's mix gives it (engine/quant_mix: more bits for the output
 * matrix, for some attn_v/ffn_down layers in the _M mixes, fallbacks for rows that are not whole
 * 256-value blocks), so a Q4_K_M file has llama-quantize's tensor types, size and speed, and
 * Q8_0 and Q4_0 files come out byte-identical to llama-quantize's. general.file_type is the
 * mix's number unless fallbacks or kept matrices leave most weights in another type. OUT is
 * checked before any work (never the
 * input, never a device or folder, replaced only with --force); the new tensors stay in memory
 * until the writer puts the whole file down through a fresh temp file beside OUT and a rename,
 * so a failure at any point leaves no OUT behind (and an existing OUT untouched).
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
#include "engine/model_info.h"
#include "engine/quant.h"
#include "engine/quant_mix.h"

#define CMD "quantize"

/* The file types sizeup writes, by llama.cpp's number (llama_ftype, written to
 * general.file_type). Q4_K and Q5_K are llama-quantize's own aliases of the _M mixes. The Q2_K
 * and Q3_K mixes are missing because sizeup has no Q2_K/Q3_K encoder. */
typedef struct quant_choice {
    const char *name;
    uint32_t ftype;
} quant_choice;

static const quant_choice choices[] = {
    { "Q8_0", 7 },    { "Q6_K", 18 },   { "Q5_K_M", 17 }, { "Q5_K_S", 16 }, { "Q5_K", 17 },
    { "Q4_K_M", 15 }, { "Q4_K_S", 14 }, { "Q4_K", 15 },   { "Q4_0", 2 },    { "F16", 1 },
    { "BF16", 32 },   { "F32", 0 },
};
#define N_CHOICES (sizeof choices / sizeof choices[0])

/* ggml's quantization format version; llama-quantize writes it with every quantized file. */
#define QUANT_VERSION 2

static void usage(FILE *to)
{
    fprintf(to,
            "usage: sizeup quantize [--force] IN OUT TYPE\n\n"
            "Write a copy of the GGUF model IN to OUT with its weight matrices stored as TYPE.\n"
            "Every metadata key is kept; vectors (norms, biases) are copied unchanged.\n"
            "Each matrix gets the type llama-quantize gives it for TYPE:\n"
            "  - the output matrix (output.weight, or token_embd.weight when the model\n"
            "    reuses it): Q6_K for every quantized TYPE but Q8_0, Q8_0 when its rows\n"
            "    are not whole blocks of TYPE;\n"
            "  - Q4_K_M, Q5_K_M: Q6_K for attn_v and ffn_down in the first and last\n"
            "    eighth of the layers and every third layer between; phi3's attn_qkv\n"
            "    Q5_K (Q4_K_M) or Q6_K (Q5_K_M);\n"
            "  - Q4_K_S: Q5_K for the first 4 attn_v and the first eighth of ffn_down;\n"
            "  - Q4_0, Q8_0, Q6_K, Q5_K_S: every other matrix in TYPE;\n"
            "  - rows that are not whole 256-value blocks fall back as llama-quantize's do\n"
            "    (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, F16 if even 32 does not divide\n"
            "    them), with a line saying so; a matrix that fits no block of a plain\n"
            "    TYPE is kept as it is, with a note.\n"
            "general.file_type is TYPE's llama.cpp number (MOSTLY_Q4_K_M, ...) unless\n"
            "fallbacks leave most weights in another type. IN may hold any type sizeup can\n"
            "run.\n\n"
            "OUT must not be IN (under any name) and must be a regular file or not exist;\n"
            "it is written through a new temporary file beside it and renamed into place.\n\n"
            "TYPE: Q8_0, Q6_K, Q5_K_M (also Q5_K), Q5_K_S, Q4_K_M (also Q4_K), Q4_K_S,\n"
            "      Q4_0, F16, BF16, F32\n\n"
            "  --force       replace OUT if it exists\n"
            "  -h, --help    show this help\n");
}

static const quant_choice *find_choice(const char *name)
{
    for (size_t i = 0; i < N_CHOICES; i++)
        if (!strcasecmp(name, choices[i].name))
            return &choices[i];
    return NULL;
}

typedef struct quant_totals {
    uint64_t elems, bytes_in, bytes_out;
    int converted, kept, fell_back;
    uint64_t matrix_elems[GGUF_T_COUNT]; /* elements of 2-D+ tensors by their type in OUT */
    uint64_t as_mixed; /* elements of matrices stored in the type the mix chose for them */
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
    /* stdout through app_stdout_ok, which keeps a failed flush's errno for the exit message
     * (a plain fflush would lose it: the next flush of the emptied buffer succeeds) */
    if (q->log == stdout)
        app_stdout_ok();
    else
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

/* Why tensor t is not converted (NULL: it is, to *to, the type llama-quantize's mix for ftype
 * gives it, with *fell_back set when that is a fallback for rows that do not fit). An empty
 * reason is one not worth a note. */
static const char *keep_reason(const gguf_tensor *t, const char *name, uint32_t ftype,
                               const eng_mix_model *m, eng_mix_state *st, uint32_t *to,
                               bool *fell_back)
{
    *to = t->type;
    *fell_back = false;
    if (t->n_dims < 2)
        return "";
    if (!eng_mix_quantizes(name, (int)t->n_dims))
        return "llama-quantize keeps it too";
    *to = eng_mix_type(ftype, m, st, name, (int64_t)t->ne[0], fell_back);
    if (t->type == *to)
        return *fell_back ? "already the fallback type for its row length" : "already that type";
    if (!eng_type_supported(t->type))
        return "sizeup cannot read its type";
    if (!eng_row_bytes(*to, (int64_t)t->ne[0]))
        return "row length is not a multiple of the block size";
    return NULL;
}

/* Add tensor t (index i of n) to w, converted when it should be; a converted buffer goes to
 * *buf, which the caller frees after the write. */
static int add_tensor(const quant_out *q, gguf_writer *w, const gguf_tensor *t,
                      const char *name, int64_t i, int64_t n, const quant_choice *c,
                      const eng_mix_model *m, eng_mix_state *st, void **buf, quant_totals *tot)
{
    uint32_t to, base = GGUF_T_F32;
    eng_mix_base_type(c->ftype, &base);
    bool fell_back;
    const char *why = keep_reason(t, name, c->ftype, m, st, &to, &fell_back);
    const void *data = t->data;
    uint32_t out_type = t->type;
    if (!why && !eng_type_quantizable(to))
        return qfail(q, "llama-quantize stores %s as %s in a %s file (rows of %" PRIu64
                     " values), and sizeup cannot write %s; nothing was written", name,
                     gguf_type_get(to)->name, c->name, t->ne[0], gguf_type_get(to)->name);
    if (!why) {
        qlog(q, "[%3" PRId64 "/%3" PRId64 "] %-32s %-5s -> %s", i + 1, n, name,
             gguf_type_get(t->type)->name, gguf_type_get(to)->name);
        if (fell_back)
            qlog(q, " (fallback: rows of %" PRIu64 " values are not whole 256-value blocks)",
                 t->ne[0]);
        else if (to != base)
            qlog(q, " (llama-quantize's %s mix)", c->name);
        qlog(q, "\n");
        if (convert_tensor(q, t, name, to, buf))
            return 1;
        data = *buf;
        out_type = to;
        tot->converted++;
        tot->fell_back += fell_back;
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
    if (t->n_dims >= 2 && out_type < GGUF_T_COUNT)
        tot->matrix_elems[out_type] += t->n_elems;
    if (t->n_dims >= 2 && out_type == to && !fell_back)
        tot->as_mixed += t->n_elems;
    if (gguf_writer_add_tensor(w, name, out_type, t->n_dims, t->ne, data))
        return qfail(q, "%s", gguf_writer_errmsg(w));
    return 0;
}

/* What the mix rules need of f: architecture, layer and head counts, whether output.weight
 * exists, how many attn_v-like tensors there are. */
static void mix_model(const gguf_file *f, eng_mix_model *m, char *arch, size_t archlen)
{
    uint32_t v;
    memset(m, 0, sizeof *m);
    if (gguf_get_cstr(f, "general.architecture", arch, archlen))
        arch[0] = 0;
    m->arch = arch;
    m->n_layer = gguf_get_arch_u32(f, "block_count", &v) ? 0 : (int)v;
    m->n_head = gguf_get_arch_u32(f, "attention.head_count", &v) ? 0 : (int)v;
    m->n_head_kv = gguf_get_arch_u32(f, "attention.head_count_kv", &v) ? m->n_head : (int)v;
    m->has_output = gguf_find_tensor(f, "output.weight") != NULL;
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        m->n_attn_v += strstr(name, "attn_v.weight") || strstr(name, "attn_qkv.weight") ||
                       strstr(name, "attn_kv_b.weight");
    }
}

/* Add every tensor of f to w in the file's order; converted buffers go to bufs[i]. */
static int add_tensors(const quant_out *q, const gguf_file *f, gguf_writer *w,
                       const quant_choice *c, void **bufs, quant_totals *tot)
{
    int64_t n = gguf_tensor_count(f);
    char arch[64];
    eng_mix_model m;
    eng_mix_state st = { 0 };
    mix_model(f, &m, arch, sizeof arch);
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char *name = strndup(t->name.ptr, (size_t)t->name.len);
        if (!name)
            return qfail(q, "out of memory");
        int rc = add_tensor(q, w, t, name, i, n, c, &m, &st, &bufs[i], tot);
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
        (c->ftype != 0 && c->ftype != 1 && c->ftype != 32 &&
         gguf_writer_set_u32(w, "general.quantization_version", QUANT_VERSION)))
        return qfail(q, "%s", gguf_writer_errmsg(w));
    return 0;
}

/* llama_ftype for a file whose matrices are mostly `type` (the _M mixes for the K types, as
 * llama-quantize names its defaults). False for types llama.cpp has no file type for. */
static bool ftype_of(uint32_t type, uint32_t *ftype)
{
    static const struct { uint32_t type, ftype; } map[] = {
        { GGUF_T_F32, 0 },   { GGUF_T_F16, 1 },   { GGUF_T_Q4_0, 2 },  { GGUF_T_Q4_1, 3 },
        { GGUF_T_Q8_0, 7 },  { GGUF_T_Q5_0, 8 },  { GGUF_T_Q5_1, 9 },  { GGUF_T_Q2_K, 10 },
        { GGUF_T_Q3_K, 12 }, { GGUF_T_Q4_K, 15 }, { GGUF_T_Q5_K, 17 }, { GGUF_T_Q6_K, 18 },
        { GGUF_T_BF16, 32 },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].type == type) {
            *ftype = map[i].ftype;
            return true;
        }
    return false;
}

/* general.file_type says what most weights are. copy_metadata wrote TYPE's number, which
 * stands while most matrix elements are stored as the mix chose (a Q4_K_M file's Q6_K tensors
 * are part of its mix); when fallbacks or kept matrices leave most weights in another type, the
 * label follows them (a "MOSTLY_Q4_K_M" file with no Q4_K tensor would mislead every reader). */
static int label_file(const quant_out *q, gguf_writer *w, const quant_choice *c,
                      const quant_totals *tot)
{
    uint32_t base = GGUF_T_F32, top = 0;
    eng_mix_base_type(c->ftype, &base);
    uint64_t all = 0;
    for (uint32_t ty = 0; ty < GGUF_T_COUNT; ty++) {
        all += tot->matrix_elems[ty];
        if (tot->matrix_elems[ty] > tot->matrix_elems[top])
            top = ty;
    }
    if (2 * tot->as_mixed >= all || top == base || !tot->matrix_elems[top])
        return 0;
    uint32_t ftype;
    if (!ftype_of(top, &ftype)) {
        gguf_writer_remove_kv(w, "general.file_type");
        qlog(q, "note: most weights are %s, which has no llama.cpp file type; "
             "general.file_type left out\n", gguf_type_get(top)->name);
        return 0;
    }
    if (gguf_writer_set_u32(w, "general.file_type", ftype))
        return qfail(q, "%s", gguf_writer_errmsg(w));
    qlog(q, "note: most weights are %s, not %s, so general.file_type is %s\n",
         gguf_type_get(top)->name, gguf_type_get(base)->name, eng_ftype_name(ftype));
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
    if (tot->fell_back)
        qlog(q, "%d of %d converted tensors used a fallback type (rows not whole %s blocks)\n",
             tot->fell_back, tot->converted, c->name);
    qlog(q, "file:    %s -> %s\n", app_fmt_bytes(gguf_file_size(f), a, sizeof a),
         app_fmt_bytes(out_size, b, sizeof b));
    qlog(q, "weights: %s -> %s, %.2f -> %.2f bits per weight\n",
         app_fmt_bytes(tot->bytes_in, x, sizeof x), app_fmt_bytes(tot->bytes_out, y, sizeof y),
         bpw_in, bpw_out);
}

int app_quantize_file(const char *in, const char *out, const char *type, bool replace,
                      FILE *log, char *err, size_t errlen)
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
    if (copy_metadata(q, f, w, c) || add_tensors(q, f, w, c, bufs, &tot) ||
        label_file(q, w, c, &tot))
        goto fail;
    if (gguf_writer_write_ex(w, out, replace ? 0 : GGUF_WRITE_NO_REPLACE)) {
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
    bool only_pos = false, force = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = true;
        } else if (!only_pos && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            usage(stdout);
            return 0;
        } else if (!only_pos && !strcmp(a, "--force")) {
            force = true;
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
    if (app_check_output(CMD, pos[1], pos[0], force))
        return 1;
    char err[768];
    if (app_quantize_file(pos[0], pos[1], c->name, force, stdout, err, sizeof err))
        return app_fail(CMD, "%s", err);
    return 0;
}
