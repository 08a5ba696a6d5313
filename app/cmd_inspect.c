/* `sizeup inspect`: a model card for a GGUF file, as aligned text or one JSON object.
 *
 * All the facts come from engine/model_info (eng_model_info_read and eng_model_mem_estimate);
 * this file only parses the command line, opens the file and formats. Text and JSON show the
 * same facts; JSON field names are stable (scripts and tests read them), absent metadata is
 * null rather than 0, and sizes are plain byte counts.
 *
 * MODEL may also be a model reference (catalog name, hf.co/..., URL). One in the store is read
 * from there; any other is peeked at: only the GGUF header is fetched, with Range requests
 * (dl_peek), and the card comes from it, with one more line saying how much was read and
 * whether the model would fit the memory of the backend `--backend auto` would run it on (the
 * Vulkan device, or the host's memory where that is the CPU backend). Nothing is stored.
 */
#include <errno.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app/app.h"
#include "engine/gguf.h"
#include "engine/model_info.h"

#define CMD "inspect"
#define PEEK_MAX_BYTES ((size_t)64 << 20) /* the largest header sizeup will fetch to read */

typedef struct inspect_opts {
    const char *model, *cacert, *device;
    uint32_t n_ctx;    /* 0: the model's default (eng_model_default_ctx) */
    bool json;
    bool tensors;
    bool help;
} inspect_opts;

static void usage(FILE *to)
{
    fprintf(to,
            "usage: sizeup inspect MODEL [-c N] [--json] [--tensors] [--device N]\n"
            "                      [--cacert FILE]\n\n"
            "Print a model card for a GGUF file: architecture, parameter count, tensor types,\n"
            "hyperparameters, RoPE, tokenizer, special tokens, and the memory needed to run it.\n"
            "MODEL may be a model reference (qwen2.5:0.5b, hf.co/OWNER/REPO[:QUANT],\n"
            "hf.co/OWNER/REPO/FILE.gguf, an https URL): one not downloaded yet is inspected from\n"
            "its GGUF header alone, fetched with Range requests, and a last line says how much\n"
            "was read and whether the model would fit the backend that would run it (the\n"
            "Vulkan device, or the host's memory for the CPU backend).\n\n"
            "  -c, --ctx N     context length for the memory estimate (default: the model's own,\n"
            "                  capped at %u)\n"
            "  --json          print one JSON object instead of text\n"
            "  --tensors       also list every tensor: name, type, shape, offset, bytes\n"
            "  --device N      the Vulkan device for the fit of a remote model (default:\n"
            "                  $SIZEUP_DEVICE, else the one sizeup would use)\n"
            "  --cacert FILE   CA certificates (PEM) for HTTPS (default: $CURL_CA_BUNDLE)\n"
            "  -h, --help      show this help\n",
            ENG_DEFAULT_CTX_CAP);
}

/* A context length: decimal digits only, 1 .. UINT32_MAX. */
static bool parse_ctx(const char *s, uint32_t *out)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v == 0 || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* Fills *o; returns 0, or 2 after printing one line naming the bad argument (app_fail returns 1;
 * usage errors exit 2, as with most command-line tools). */
static int parse_args(int argc, char **argv, inspect_opts *o)
{
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (only_pos || a[0] != '-' || !a[1]) {
            if (o->model)
                return app_fail(CMD, "unexpected argument '%s' (one MODEL only)", a) + 1;
            o->model = a;
            continue;
        }
        if (!strcmp(a, "--"))
            only_pos = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            o->help = true;
        else if (!strcmp(a, "--json"))
            o->json = true;
        else if (!strcmp(a, "--tensors"))
            o->tensors = true;
        else if (!strcmp(a, "--cacert") || !strcmp(a, "--device")) {
            if (i + 1 >= argc)
                return app_fail(CMD, "option '%s' needs a value", a) + 1;
            *(a[2] == 'c' ? &o->cacert : &o->device) = argv[++i];
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            if (i + 1 >= argc)
                return app_fail(CMD, "option '%s' needs a value (a context length)", a) + 1;
            val = argv[++i];
        } else if (!strncmp(a, "--ctx=", 6))
            val = a + 6;
        else if (!strncmp(a, "-c", 2))
            val = a + 2;
        else
            return app_fail(CMD, "unknown option '%s' (see 'sizeup inspect --help')", a) + 1;
        if (val && !parse_ctx(val, &o->n_ctx))
            return app_fail(CMD, "invalid context length '%s' (expected an integer from 1 to "
                            "%" PRIu32 ")", val, UINT32_MAX) + 1;
    }
    if (!o->model && !o->help)
        return app_fail(CMD, "missing MODEL (a .gguf file; see 'sizeup inspect --help')") + 1;
    return 0;
}

/* ---- text ---- */

/* One aligned "key: value" line. */
static void line(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(const char *key, const char *fmt, ...)
{
    char k[64];
    snprintf(k, sizeof k, "%s:", key);
    printf("%-18s", k);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* Text from the file with control characters escaped (app_escape), so "\n" tokens cannot break
 * the layout and no name can drive the terminal. */
static const char *escape(const char *s, char *buf, size_t len)
{
    return app_escape(s, strlen(s), buf, len);
}

static void print_weights(const eng_model_info *mi)
{
    char a[32], b[32];
    if (mi->n_tensors == 0) {
        line("parameters", "0 (vocab-only file: no tensors)");
        line("weights", "0 B, bits per weight n/a");
        return;
    }
    line("parameters", "%s (%" PRIu64 ")", app_fmt_count(mi->n_params, a, sizeof a), mi->n_params);
    line("weights", "%s, %.2f bits per weight%s", app_fmt_bytes(mi->tensor_bytes, b, sizeof b),
         mi->bits_per_weight, mi->tied_embeddings ? ", output tied to token_embd" : "");
    for (uint32_t i = 0; i < mi->n_types; i++) {
        const eng_type_use *u = &mi->types[i];
        printf("%-18s%-7s x%-5" PRIu32 " %10s  %5.1f%%\n", i == 0 ? "tensor types:" : "",
               gguf_type_get(u->type)->name, u->count, app_fmt_bytes(u->bytes, a, sizeof a),
               100.0 * (double)u->bytes / (double)mi->tensor_bytes);
    }
}

static void print_hparams(const eng_model_info *mi)
{
    line("context length", "%" PRIu32, mi->context_length);
    line("layers", "%" PRIu32, mi->n_layer);
    line("embedding", "%" PRIu32, mi->n_embd);
    line("attention heads", "%" PRIu32 ", KV heads %" PRIu32 "%s, head dim %" PRIu32,
         mi->n_head, mi->n_head_kv, mi->head_kv_given ? "" : " (not given: = heads)",
         mi->head_dim);
    if (mi->head_dim_v != mi->head_dim)
        line("value head dim", "%" PRIu32, mi->head_dim_v);
    line("feed-forward", "%" PRIu32, mi->n_ff);
    if (mi->n_expert)
        line("experts", "%" PRIu32 ", %" PRIu32 " used per token", mi->n_expert,
             mi->n_expert_used);
    if (mi->sliding_window)
        line("sliding window", "%" PRIu32, mi->sliding_window);
    char dim[48];
    snprintf(dim, sizeof dim, "dim %" PRIu32 "%s", mi->rope_dim,
             mi->rope_dim_given ? "" : " (not given; head dim assumed)");
    /* Only the scaling parts the file gives: phi3 files carry just an original context. */
    char scaling[128] = "no scaling";
    int n = 0;
    if (mi->rope_scaling_type[0])
        n += snprintf(scaling + n, sizeof scaling - (size_t)n, "scaling %s",
                      mi->rope_scaling_type);
    if (mi->rope_scaling_factor)
        n += snprintf(scaling + n, sizeof scaling - (size_t)n, "%sfactor %g",
                      n ? ", " : "scaling ", mi->rope_scaling_factor);
    if (mi->rope_scaling_orig_ctx)
        snprintf(scaling + n, sizeof scaling - (size_t)n, "%soriginal context %" PRIu32,
                 n ? ", " : "scaling: ", mi->rope_scaling_orig_ctx);
    line("rope", "%s, freq base %.10g%s, %s%s", dim, mi->rope_freq_base,
         mi->rope_freq_base_given ? "" : " (default)", scaling,
         mi->has_rope_freqs ? ", rope_freqs tensor" : "");
    if (mi->norm_kind == ENG_NORM_NONE)
        line("norm eps", "not given");
    else
        line("norm eps", "%.6g (%s)", mi->norm_eps, mi->norm_kind == ENG_NORM_RMS ? "RMS norm"
                                                                             : "layer norm");
}

static void print_tokenizer(const eng_model_info *mi)
{
    char merges[48] = "no merges", esc[400];
    if (mi->has_merges)
        snprintf(merges, sizeof merges, "%" PRIu64 " merges", mi->n_merges);
    char model[160], pre[300];
    line("vocabulary", "%" PRIu64 " tokens, tokenizer %s, pre-tokenizer %s, %s", mi->vocab_size,
         mi->tok_model[0] ? escape(mi->tok_model, model, sizeof model) : "(not given)",
         mi->tok_pre[0] ? escape(mi->tok_pre, pre, sizeof pre) : "(not given)", merges);
    bool first = true;
    for (int s = 0; s < ENG_TOK_COUNT; s++) {
        const eng_special_token *t = &mi->special[s];
        if (t->id == ENG_INFO_NO_TOKEN)
            continue;
        printf("%-18s%-5s %-7" PRIu32 " %s%s%s\n", first ? "special tokens:" : "",
               eng_special_name((eng_special)s), t->id, t->in_vocab ? "\"" : "",
               t->in_vocab ? escape(t->text, esc, sizeof esc) : "(outside the vocabulary)",
               t->in_vocab ? "\"" : "");
        first = false;
    }
    if (first)
        line("special tokens", "none");
    line("add bos / eos", "%s / %s", !mi->add_bos_given ? "not given" : mi->add_bos ? "yes" : "no",
         !mi->add_eos_given ? "not given" : mi->add_eos ? "yes" : "no");
    if (mi->has_chat_template)
        line("chat template", "yes (%" PRIu64 " bytes)", mi->chat_template_len);
    else
        line("chat template", "no");
}

static void print_memory(const eng_model_info *mi, const eng_mem_estimate *me)
{
    char a[32];
    printf("\nmemory at n_ctx %" PRIu32 " (estimate", me->n_ctx);
    if (mi->context_length && me->n_ctx > mi->context_length)
        printf("; above the model's context length %" PRIu32, mi->context_length);
    printf("):\n");
    line("weights", "%s", app_fmt_bytes(me->weights, a, sizeof a));
    line("KV cache (f16)", "%s", app_fmt_bytes(me->kv_cache, a, sizeof a));
    line("compute", "%s", app_fmt_bytes(me->compute, a, sizeof a));
    line("total", "%s", app_fmt_bytes(me->total, a, sizeof a));
    line("compute counts", "%s", eng_mem_compute_formula());
}

static void print_card(const char *path, const eng_model_info *mi, const eng_mem_estimate *me)
{
    char a[32], esc[1100]; /* names come from the file: escaped, so they cannot drive the tty */
    line("file", "%s", path);
    line("format", "GGUF v%" PRIu32 ", %" PRId64 " tensors, %" PRId64 " metadata keys, %s",
         mi->gguf_version, mi->n_tensors, mi->n_kv, app_fmt_bytes(mi->file_size, a, sizeof a));
    line("architecture", "%s",
         mi->architecture[0] ? escape(mi->architecture, esc, sizeof esc) : "(not given)");
    line("name", "%s", mi->name[0] ? escape(mi->name, esc, sizeof esc) : "(not given)");
    if (!mi->has_file_type)
        line("file type", "not given");
    else
        line("file type", "%s (%" PRIu32 ")",
             eng_ftype_name(mi->file_type) ? eng_ftype_name(mi->file_type) : "unknown",
             mi->file_type);
    print_weights(mi);
    print_hparams(mi);
    print_tokenizer(mi);
    print_memory(mi, me);
}

static void shape_str(const gguf_tensor *t, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "[");
    for (uint32_t d = 0; d < t->n_dims && o < len; d++)
        o += (size_t)snprintf(buf + o, len - o, "%s%" PRIu64, d ? ", " : "", t->ne[d]);
    if (o < len)
        snprintf(buf + o, len - o, "]");
}

static void print_tensors(const gguf_file *f)
{
    int64_t n = gguf_tensor_count(f);
    int w = 4;
    char name[1100]; /* tensor names come from the file: escaped like the metadata */
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        int k = (int)strlen(app_escape(t->name.ptr, (size_t)t->name.len, name, sizeof name));
        w = k > w ? k : w;
    }
    printf("\ntensors (%" PRId64 "; offsets are relative to the data section at %" PRIu64 "):\n",
           n, gguf_data_offset(f));
    printf("%-*s  %-7s  %-24s  %12s  %12s\n", w, "name", "type", "shape", "offset", "bytes");
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char shape[96];
        shape_str(t, shape, sizeof shape);
        app_escape(t->name.ptr, (size_t)t->name.len, name, sizeof name);
        printf("%-*s  %-7s  %-24s  %12" PRIu64 "  %12" PRIu64 "\n", w, name,
               gguf_type_get(t->type)->name, shape, t->offset, t->nbytes);
    }
}

/* ---- JSON ---- */

static void put(json_t *o, const char *key, json_t *v)
{
    json_object_set_new(o, key, v ? v : json_null());
}

static json_t *jint(uint64_t v) { return json_integer((json_int_t)v); }
static json_t *jint_or_null(uint64_t v) { return v ? jint(v) : json_null(); }
/* Strings from the file: not always UTF-8; lossy-decoded (U+FFFD) by app_json_text rather
 * than dropped, so the output is valid JSON and says what is there. */
static json_t *jstr_n(const char *p, size_t len) { return app_json_text(p, len); }
static json_t *jstr_or_null(const char *s) { return s && *s ? jstr_n(s, strlen(s)) : json_null(); }

static void json_weights(json_t *o, const eng_model_info *mi)
{
    put(o, "n_params", jint(mi->n_params));
    put(o, "tensor_bytes", jint(mi->tensor_bytes));
    put(o, "bits_per_weight", mi->n_params ? json_real(mi->bits_per_weight) : json_null());
    put(o, "tied_embeddings", json_boolean(mi->tied_embeddings));
    json_t *types = json_array();
    for (uint32_t i = 0; i < mi->n_types; i++) {
        const eng_type_use *u = &mi->types[i];
        json_t *t = json_object();
        put(t, "type", json_string(gguf_type_get(u->type)->name));
        put(t, "count", jint(u->count));
        put(t, "n_elems", jint(u->n_elems));
        put(t, "bytes", jint(u->bytes));
        json_array_append_new(types, t);
    }
    put(o, "tensor_types", types);
}

static void json_hparams(json_t *o, const eng_model_info *mi)
{
    put(o, "context_length", jint_or_null(mi->context_length));
    put(o, "n_layer", jint_or_null(mi->n_layer));
    put(o, "n_embd", jint_or_null(mi->n_embd));
    put(o, "n_head", jint_or_null(mi->n_head));
    put(o, "n_head_kv", jint_or_null(mi->n_head_kv));
    put(o, "head_dim", jint_or_null(mi->head_dim));
    put(o, "head_dim_v", jint_or_null(mi->head_dim_v));
    put(o, "n_ff", jint_or_null(mi->n_ff));
    put(o, "n_expert", jint_or_null(mi->n_expert));
    put(o, "n_expert_used", jint_or_null(mi->n_expert_used));
    put(o, "sliding_window", jint_or_null(mi->sliding_window));
    json_t *rope = json_object(), *scaling = json_null();
    put(rope, "dimension_count", jint_or_null(mi->rope_dim));
    put(rope, "dimension_count_given", json_boolean(mi->rope_dim_given));
    put(rope, "freq_base", json_real(mi->rope_freq_base));
    put(rope, "freq_base_default", json_boolean(!mi->rope_freq_base_given));
    if (mi->rope_scaling_type[0] || mi->rope_scaling_factor || mi->rope_scaling_orig_ctx) {
        scaling = json_object();
        put(scaling, "type", jstr_or_null(mi->rope_scaling_type));
        put(scaling, "factor", mi->rope_scaling_factor ? json_real(mi->rope_scaling_factor)
                                                       : json_null());
        put(scaling, "original_context_length", jint_or_null(mi->rope_scaling_orig_ctx));
    }
    put(rope, "scaling", scaling);
    put(rope, "freqs_tensor", json_boolean(mi->has_rope_freqs));
    put(o, "rope", rope);
    json_t *norm = json_object();
    put(norm, "kind", mi->norm_kind == ENG_NORM_RMS     ? json_string("rms")
                      : mi->norm_kind == ENG_NORM_LAYER ? json_string("layer")
                                                        : json_null());
    put(norm, "eps", mi->norm_kind ? json_real(mi->norm_eps) : json_null());
    put(o, "norm", norm);
}

static void json_tokenizer(json_t *o, const eng_model_info *mi)
{
    put(o, "vocab_size", jint(mi->vocab_size));
    json_t *tok = json_object();
    put(tok, "model", jstr_or_null(mi->tok_model));
    put(tok, "pre", jstr_or_null(mi->tok_pre));
    put(tok, "merges", json_boolean(mi->has_merges));
    put(tok, "n_merges", jint(mi->n_merges));
    put(tok, "add_bos", mi->add_bos_given ? json_boolean(mi->add_bos) : json_null());
    put(tok, "add_eos", mi->add_eos_given ? json_boolean(mi->add_eos) : json_null());
    put(o, "tokenizer", tok);
    json_t *sp = json_object();
    for (int s = 0; s < ENG_TOK_COUNT; s++) {
        const eng_special_token *t = &mi->special[s];
        json_t *v = json_null();
        if (t->id != ENG_INFO_NO_TOKEN) {
            v = json_object();
            put(v, "id", jint(t->id));
            put(v, "text", t->in_vocab ? jstr_n(t->text, strlen(t->text)) : json_null());
        }
        put(sp, eng_special_name((eng_special)s), v);
    }
    put(o, "special_tokens", sp);
    put(o, "chat_template", json_boolean(mi->has_chat_template));
    put(o, "chat_template_length", jint(mi->chat_template_len));
}

static json_t *json_memory(const eng_mem_estimate *me)
{
    json_t *m = json_object();
    put(m, "n_ctx", jint(me->n_ctx));
    put(m, "n_batch", jint(me->n_batch));
    put(m, "weights", jint(me->weights));
    put(m, "kv_cache", jint(me->kv_cache));
    put(m, "kv_cache_type", json_string("f16"));
    put(m, "compute", jint(me->compute));
    put(m, "total", jint(me->total));
    put(m, "compute_formula", json_string(eng_mem_compute_formula()));
    return m;
}

static json_t *json_tensors(const gguf_file *f)
{
    json_t *arr = json_array();
    for (int64_t i = 0; i < gguf_tensor_count(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        json_t *o = json_object(), *shape = json_array();
        for (uint32_t d = 0; d < t->n_dims; d++)
            json_array_append_new(shape, jint(t->ne[d]));
        put(o, "name", jstr_n(t->name.ptr, (size_t)t->name.len));
        put(o, "type", json_string(gguf_type_get(t->type)->name));
        put(o, "shape", shape);
        put(o, "offset", jint(t->offset));
        put(o, "bytes", jint(t->nbytes));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* What a remote inspect adds to the card: how much was read and the fit on a device. */
typedef struct remote_info {
    uint64_t transferred;    /* bytes received over the network */
    uint64_t header_len;     /* bytes from offset 0 the card was read from */
    uint64_t file_size;      /* the whole file */
    size_t n_parts;          /* > 1: a split GGUF, the card read from part 1 only */
    uint64_t parts_size;     /* bytes of all parts (0 when a size is unknown) */
    app_fit_device dev;
} remote_info;

static json_t *json_remote(const remote_info *r, const eng_mem_estimate *me)
{
    json_t *dev = app_fit_device_json(&r->dev);
    return json_pack("{s:I, s:I, s:I, s:o, s:o}", "bytes_read", (json_int_t)r->transferred,
                     "header_bytes", (json_int_t)r->header_len, "file_size",
                     (json_int_t)r->file_size, "device", dev, "fits",
                     r->dev.ok ? json_boolean(me->total <= r->dev.capacity) : json_null());
}

static int print_json(const char *path, const gguf_file *f, const eng_model_info *mi,
                      const eng_mem_estimate *me, bool tensors, const remote_info *rem)
{
    json_t *o = json_object();
    put(o, "file", jstr_n(path, strlen(path)));
    put(o, "gguf_version", jint(mi->gguf_version));
    put(o, "n_tensors", jint((uint64_t)mi->n_tensors));
    put(o, "n_kv", jint((uint64_t)mi->n_kv));
    put(o, "file_size", jint(mi->file_size));
    put(o, "architecture", jstr_or_null(mi->architecture));
    put(o, "name", jstr_or_null(mi->name));
    put(o, "file_type", mi->has_file_type ? jint(mi->file_type) : json_null());
    put(o, "file_type_name", mi->has_file_type ? jstr_or_null(eng_ftype_name(mi->file_type))
                                               : json_null());
    json_weights(o, mi);
    json_hparams(o, mi);
    json_tokenizer(o, mi);
    put(o, "memory", json_memory(me));
    if (tensors)
        put(o, "tensors", json_tensors(f));
    if (rem)
        put(o, "remote", json_remote(rem, me));
    int rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (rc != 0)
        return app_fail(CMD, "could not write the JSON output (out of memory?)");
    putchar('\n');
    return 0;
}

static void print_remote(const remote_info *r, const eng_mem_estimate *me)
{
    char a[32], b[32], t[32];
    printf("\nremote: read %s of %s (%s); memory estimate %s; ",
           app_fmt_bytes(r->transferred, a, sizeof a), app_fmt_bytes(r->file_size, b, sizeof b),
           r->header_len < r->file_size ? "header only" : "the whole file",
           app_fmt_bytes(me->total, t, sizeof t));
    if (r->dev.ok && r->dev.cpu)
        printf("fits the CPU backend's %s available: %s\n",
               app_fmt_bytes(r->dev.capacity, t, sizeof t), me->total <= r->dev.capacity ? "yes" : "no");
    else if (r->dev.ok)
        printf("fits device %u (%s): %s\n", r->dev.index, r->dev.name,
               me->total <= r->dev.capacity ? "yes" : "no");
    else
        printf("fit: unknown (%s)\n", r->dev.why);
    if (r->n_parts > 1)
        printf("split GGUF: %zu parts, %s in all; the card, the estimate and the fit above "
               "count part 1's tensors only (loading split models is not supported yet)\n",
               r->n_parts, r->parts_size ? app_fmt_bytes(r->parts_size, a, sizeof a) : "size unknown");
}

/* Parts of a split reference (the listing was just read by dl_peek; a failure here only
 * leaves the split line out). */
static void remote_parts(dl_ctx *c, const char *ref, remote_info *r)
{
    dl_resolved res;
    if (dl_resolve(c, ref, false, &res) != DL_OK)
        return;
    r->n_parts = res.n_files;
    for (size_t i = 0; i < res.n_files; i++)
        r->parts_size = res.files[i].size && (i == 0 || r->parts_size)
                            ? r->parts_size + res.files[i].size : 0;
    dl_resolved_free(&res);
}

/* The card (or JSON) for an open file; what names it in the output. */
static int show(const inspect_opts *o, const char *what, const gguf_file *f,
                const remote_info *rem)
{
    eng_model_info mi;
    if (eng_model_info_read(f, &mi) != GGUF_OK)
        return app_fail(CMD, "%s", mi.err);
    eng_mem_estimate me;
    eng_model_mem_estimate(&mi, o->n_ctx ? o->n_ctx : eng_model_default_ctx(&mi), &me);
    int rc = 0;
    if (o->json) {
        rc = print_json(what, f, &mi, &me, o->tensors, rem);
    } else {
        print_card(what, &mi, &me);
        if (rem)
            print_remote(rem, &me);
        if (o->tensors)
            print_tensors(f);
    }
    return rc; /* a failed write to stdout is reported by app/main.c */
}

static int inspect_file(const inspect_opts *o, const char *path)
{
    char err[512];
    gguf_file *f = NULL;
    if (gguf_open(path, &f, err, sizeof err) != GGUF_OK)
        return app_fail(CMD, "%s", err);
    int rc = show(o, path, f, NULL);
    gguf_close(f);
    return rc;
}

/* ---- remote: the header alone ---- */

/* The parsed header of a remote file. The GGUF reader checks that every tensor's data lies
 * inside the file, so the header bytes are copied to the front of a zero-filled anonymous
 * mapping as large as the whole file: MAP_NORESERVE, and pages never written cost no memory,
 * so a 5 GiB model needs only its header's worth. */
typedef struct peek_state {
    const char *what;
    void *map;
    size_t map_len;
    gguf_file *f;            /* open on map once the header is complete */
} peek_state;

static void peek_state_free(peek_state *ps)
{
    gguf_close(ps->f);
    if (ps->map)
        munmap(ps->map, ps->map_len);
    ps->f = NULL;
    ps->map = NULL;
}

/* dl_peek's enough(): 0 when the header and tensor table parse from the bytes so far, 1 for
 * more, -1 when they never will. A parse that succeeds with the tensor table ending past the
 * bytes read read zeros from the mapping, not the file, so it too asks for more. */
static int header_enough(const void *buf, size_t len, uint64_t file_size, void *user, char *msg,
                         size_t msglen)
{
    peek_state *ps = user;
    const uint8_t *b = buf;
    if (len >= 4 && memcmp(b, "GGUF", 4)) {
        char why[64];
        snprintf(msg, msglen, "not a GGUF file (%s)", dl_not_gguf_why(b, why, sizeof why));
        return -1;
    }
    uint64_t size = file_size > len ? file_size : len;
    size_t map_len = size > SIZE_MAX / 2 ? 0 : size ? (size_t)size : 1;
    void *m = map_len ? mmap(NULL, map_len, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                      : MAP_FAILED;
    if (m == MAP_FAILED) {
        snprintf(msg, msglen, "cannot map %" PRIu64 " bytes: %s", size, strerror(errno));
        return -1;
    }
    memcpy(m, buf, len);
    char err[512] = "";
    gguf_file *f = NULL;
    bool whole = len >= size;
    if (gguf_open_buffer(m, (size_t)size, ps->what, &f, err, sizeof err) == GGUF_OK &&
        (whole || gguf_data_offset(f) <= len)) {
        ps->map = m;
        ps->map_len = map_len;
        ps->f = f;
        return 0;
    }
    gguf_close(f);
    munmap(m, map_len);
    /* dl_peek puts the URL in front of msg already: not twice ("URL: URL: ...") */
    size_t wl = strlen(ps->what);
    const char *e = err;
    if (!strncmp(e, ps->what, wl) && e[wl] == ':' && e[wl + 1] == ' ')
        e += wl + 2;
    snprintf(msg, msglen, "%s", e[0] ? e : "the tensor table goes on past the bytes read");
    return whole ? -1 : 1;
}

static int inspect_remote(const inspect_opts *o, dl_ctx *c)
{
    remote_info rem = { 0 };
    int idx;
    if (app_device_index(CMD, o->device, &idx))
        return 2;
    char *shown = dl_url_shown(o->model);   /* never a URL's password (README) */
    if (!shown)
        return app_fail(CMD, "out of memory");
    peek_state ps = { shown, NULL, 0, NULL };
    void *buf = NULL;
    size_t len = 0;
    dl_status st = dl_peek(c, o->model, header_enough, &ps, PEEK_MAX_BYTES, &buf, &len,
                           &rem.file_size, &rem.transferred);
    free(buf); /* the card is read from ps's copy */
    rem.header_len = len;
    int rc;
    if (st)
        rc = app_dl_fail(CMD, c, st, o->model);
    else if (app_fit_device_probe(CMD, idx, &rem.dev))
        rc = 2;
    else {
        remote_parts(c, o->model, &rem);
        rc = show(o, shown, ps.f, &rem);
    }
    peek_state_free(&ps);
    free(shown);
    return rc;
}

/* MODEL is not a file here: a reference, read from the store when it is there. */
static int inspect_ref(const inspect_opts *o)
{
    dl_ctx *c = app_dl_open(CMD, o->cacert);
    if (!c)
        return 1;
    dl_ref r;
    char *path = NULL;
    int rc;
    dl_status st = dl_ref_parse(c, o->model, &r);
    if (st)
        rc = app_dl_fail(CMD, c, st, o->model);
    else if (r.kind == DL_REF_LOCAL && dl_ref_suggest(c, o->model))
        rc = app_fail(CMD, "%s", dl_errmsg(c));
    else if (r.kind == DL_REF_LOCAL)
        rc = inspect_file(o, o->model); /* a missing file: the reader names it */
    else if ((st = dl_locate(c, o->model, &path)) == DL_OK)
        rc = inspect_file(o, path);
    else if (st == DL_ERR_NOT_FOUND)
        rc = inspect_remote(o, c);
    else
        rc = app_dl_fail(CMD, c, st, o->model);
    free(path);
    dl_ref_free(&r);
    dl_close(c);
    return rc;
}

int app_cmd_inspect(int argc, char **argv)
{
    inspect_opts o = { 0 };
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    if (o.help) {
        usage(stdout);
        return 0;
    }
    struct stat sb;
    if (stat(o.model, &sb) == 0) /* an existing file: no download context, no network */
        return inspect_file(&o, o.model);
    return inspect_ref(&o);
}
