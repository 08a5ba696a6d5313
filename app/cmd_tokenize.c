/* `sizeup tokenize`: text to token ids with a model's own tokenizer, for people and scripts
 * comparing tokenizers (ids as a JSON array, input from stdin byte for byte). Also a throughput
 * benchmark (--bench FILE) for docs/PERFORMANCE.md. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "app/app.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"

#define CMD "tokenize"

typedef enum out_mode { OUT_TABLE, OUT_IDS, OUT_PIECES, OUT_COUNT } out_mode;

typedef struct tok_opts {
    const char *model, *text, *bench, *cacert;
    out_mode mode;
    bool no_bos, special, help;
    int repeat;
} tok_opts;

static void usage(FILE *to)
{
    fprintf(to,
        "usage: sizeup tokenize -m MODEL [--ids|--pieces|--count] [--no-bos] [--special]\n"
        "                       [--cacert FILE] TEXT|-\n"
        "       sizeup tokenize -m MODEL --bench FILE [-r N]\n\n"
        "Tokenize TEXT (or standard input, read byte for byte, with '-') with the model's own\n"
        "tokenizer. Without an output option each token is printed as 'id -> 'piece''.\n\n"
        "  -m, --model MODEL  a GGUF file (a full model or a vocab-only file), or a model\n"
        "                     reference (qwen2.5:0.5b, hf.co/OWNER/REPO[:QUANT], a URL),\n"
        "                     downloaded first when it is not in the store\n"
        "  --cacert FILE      CA certificates (PEM) for a download over HTTPS\n"
        "  --ids              print the ids as one JSON array: [1, 403, 407]\n"
        "  --pieces           print the token texts as one JSON array of strings\n"
        "  --count            print the number of tokens\n"
        "  --no-bos           do not add BOS/EOS even when the model asks for them\n"
        "  --special          match control tokens written in the text (<|im_start|>, ...)\n"
        "  --bench FILE       measure tokenizer throughput on FILE (MB/s), -r N repeats\n"
        "  -h, --help         show this help\n");
}

static int parse_args(int argc, char **argv, tok_opts *o)
{
    o->repeat = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            o->help = true;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--bench") ||
                   !strcmp(a, "-r") || !strcmp(a, "--cacert")) {
            if (i + 1 >= argc)
                return app_fail(CMD, "%s needs a value", a) + 1;
            const char *val = argv[++i];
            if (a[1] == 'r') {
                char *end;
                long r = strtol(val, &end, 10);
                if (*end || r < 1 || r > 1000)
                    return app_fail(CMD, "-r '%s': expected a repeat count 1..1000", val) + 1;
                o->repeat = (int)r;
            } else if (!strcmp(a, "--bench")) {
                o->bench = val;
            } else if (!strcmp(a, "--cacert")) {
                o->cacert = val;
            } else {
                o->model = val;
            }
        } else if (!strcmp(a, "--ids")) {
            o->mode = OUT_IDS;
        } else if (!strcmp(a, "--pieces")) {
            o->mode = OUT_PIECES;
        } else if (!strcmp(a, "--count")) {
            o->mode = OUT_COUNT;
        } else if (!strcmp(a, "--no-bos")) {
            o->no_bos = true;
        } else if (!strcmp(a, "--special")) {
            o->special = true;
        } else if (a[0] == '-' && a[1]) {
            return app_fail(CMD, "unknown option '%s' (see sizeup tokenize --help)", a) + 1;
        } else if (o->text) {
            return app_fail(CMD, "unexpected argument '%s' (give the text as one argument, "
                            "quoted, or '-' for standard input)", a) + 1;
        } else {
            o->text = a;
        }
    }
    if (o->help)
        return 0;
    if (!o->model)
        return app_fail(CMD, "no model given (-m MODEL)") + 1;
    if (!o->text && !o->bench)
        return app_fail(CMD, "no text given (TEXT, or - to read standard input)") + 1;
    return 0;
}

/* A piece as JSON text: invalid UTF-8 (a lone byte token) becomes U+FFFD, as in the fixtures'
 * reference files, so the output always parses. */
static json_t *piece_json(const char *p, size_t n)
{
    json_t *s = app_json_text(p, n);
    return s ? s : json_string("");
}

static void print_tokens(const eng_vocab *v, const int32_t *ids, size_t n, out_mode mode)
{
    if (mode == OUT_COUNT) {
        printf("%zu\n", n);
        return;
    }
    if (mode == OUT_TABLE) {
        /* pieces come from the vocabulary and the user's bytes: escaped (app_escape), so a
         * piece holding ESC or a byte token of the text cannot drive the terminal */
        char *esc = NULL;
        size_t cap = 0;
        for (size_t i = 0; i < n; i++) {
            size_t pl;
            const char *p = eng_token_piece(v, ids[i], true, &pl);
            if (APP_ESCAPE_MAX(pl) > cap) {
                free(esc);
                cap = APP_ESCAPE_MAX(pl);
                if (!(esc = malloc(cap))) {
                    cap = 0;
                    printf("%7d -> (out of memory)\n", ids[i]);
                    continue;
                }
            }
            printf("%7d -> '%s'\n", ids[i], app_escape(p, pl, esc, cap));
        }
        free(esc);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        size_t pl;
        const char *p = eng_token_piece(v, ids[i], true, &pl);
        json_array_append_new(arr, mode == OUT_IDS ? json_integer(ids[i]) : piece_json(p, pl));
    }
    char *s = json_dumps(arr, JSON_COMPACT);
    /* jansson's compact form has no spaces; the documented form is "[1, 403, 407]" */
    for (char *c = s; c && *c; c++) {
        putchar(*c);
        if (*c == ',' && mode == OUT_IDS)
            putchar(' ');
    }
    putchar('\n');
    free(s);
    json_decref(arr);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and spread of repeated runs after one warm-up, like the model benchmarks. */
static int bench(const eng_vocab *v, const char *path, int repeat, bool special)
{
    size_t len;
    char *text;
    if (app_read_input(CMD, "--bench", path, APP_MAX_INPUT, &text, &len))
        return 1;
    double t[1001];
    size_t ntok = 0;
    for (int r = -1; r < repeat; r++) {
        int32_t *ids;
        double t0 = app_now_s();
        if (eng_tokenize(v, text, len, false, special, &ids, &ntok) != ENG_TOK_OK) {
            free(text);
            return app_fail(CMD, "tokenizing %s failed (out of memory)", path);
        }
        double dt = app_now_s() - t0;
        free(ids);
        if (r >= 0)
            t[r] = dt;
    }
    qsort(t, (size_t)repeat, sizeof t[0], cmp_double);
    double med = t[repeat / 2];
    printf("tokenizer %s (%s): %zu bytes -> %zu tokens, median %.1f ms over %d runs "
           "(min %.1f, max %.1f): %.1f MB/s, %.0f tokens/s\n",
           eng_vocab_kind_of(v) == ENG_VOCAB_SPM ? "SentencePiece" : "byte-level BPE",
           eng_vocab_pre_name(v), len, ntok, med * 1e3, repeat, t[0] * 1e3,
           t[repeat - 1] * 1e3, len / med / 1e6, ntok / med);
    free(text);
    return 0;
}

int app_cmd_tokenize(int argc, char **argv)
{
    tok_opts o = { 0 };
    int rc = parse_args(argc, argv, &o);
    if (rc || o.help) {
        if (o.help)
            usage(stdout);
        return rc;
    }
    gguf_file *f;
    eng_vocab *v;
    char err[512], *path;
    if ((rc = app_model_path(CMD, o.model, o.cacert, &path)) != 0)
        return rc;
    gguf_status gst = gguf_open(path, &f, err, sizeof err);
    free(path);
    if (gst != GGUF_OK)
        return app_fail(CMD, "%s", err);
    if (eng_vocab_load(f, &v, err, sizeof err) != ENG_TOK_OK) {
        gguf_close(f);
        return app_fail(CMD, "%s", err);
    }
    gguf_close(f); /* the vocabulary keeps its own copies */
    if (o.bench) {
        rc = bench(v, o.bench, o.repeat, o.special);
        eng_vocab_free(v);
        return rc;
    }
    size_t len = 0;
    char *text = NULL;
    if (!strcmp(o.text, "-")) {
        if (app_read_input(CMD, "standard input", "-", APP_MAX_INPUT, &text, &len)) {
            eng_vocab_free(v);
            return 1;
        }
    } else if ((text = strdup(o.text)) != NULL) {
        len = strlen(text);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (!text || eng_tokenize(v, text, len, !o.no_bos, o.special, &ids, &n) != ENG_TOK_OK)
        rc = app_fail(CMD, "out of memory");
    else
        print_tokens(v, ids, n, o.mode);
    free(ids);
    free(text);
    eng_vocab_free(v);
    return rc;
}
