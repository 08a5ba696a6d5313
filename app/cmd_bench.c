/* `sizeup bench`: prompt processing (pp) and generation (tg) speed of a model, as median and
 * spread over repeats after a warm-up, like llama-bench; for tg also the weight bytes read per
 * second and that figure as a share of the device's own streaming-read bandwidth, measured here
 * too. Output as a markdown table, JSON (llama-bench's field names plus sizeup's) or CSV. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "app/app.h"
#include "engine/engine.h"
#include "engine/gguf.h"
#include "engine/model_info.h"
#include "engine/pool.h"

#define CMD "bench"
#define MAX_TESTS 16
#define MAX_REPS 100

typedef struct bench_opts {
    const char *model, *format, *device, *cacert;
    int pp[MAX_TESTS], n_pp, tg, reps;
    eng_session_opts so;
} bench_opts;

typedef struct result {
    int n_prompt, n_gen;
    double samples[MAX_REPS];   /* tokens per second of each repeat */
    int n;
    double median, avg, stddev;
} result;

static void usage(FILE *to)
{
    fprintf(to,
        "usage: sizeup bench -m MODEL [-p 128,512] [-n 64] [-r 5] [--backend vulkan|cpu]\n"
        "                    [-o md|json|csv] [-t THREADS] [--device N] [--cacert FILE]\n\n"
        "Measure prompt processing (pp: N prompt tokens in batches) and generation (tg: N\n"
        "tokens one at a time) in tokens/s: median and spread of -r repeats after a warm-up.\n"
        "tg also reports the weight bytes read per second and their share of the device's\n"
        "streaming-read bandwidth, measured by sizeup on the same device.\n\n"
        "The options are llama-bench's: -p 0 or -n 0 leaves that test out, -t is the CPU\n"
        "thread count, -r the repeats, and -o json rows carry its fields (model_filename,\n"
        "model_type, model_size, model_n_params, backends, n_threads, n_prompt, n_gen,\n"
        "avg_ns, stddev_ns, avg_ts, stddev_ts, samples_ns, samples_ts) and a test name.\n\n"
        "MODEL is a GGUF file or a model reference (qwen2.5:0.5b, hf.co/OWNER/REPO[:QUANT],\n"
        "a URL), downloaded first when it is not in the store (--cacert FILE for HTTPS).\n");
}

/* "128,512": the prompt sizes; 0 in the list is no test (llama-bench's -p 0). */
static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 100000 || (*end && *end != ',') || n == max)
            return -1;
        if (v > 0)
            out[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    o->pp[0] = 128;
    o->pp[1] = 512;
    o->n_pp = 2;
    o->tg = 64;
    o->reps = 5;
    o->format = "md";
    o->so = eng_session_defaults();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return -1;
        }
        if (i + 1 >= argc)
            return app_fail(CMD, "%s: a value is missing, or the option is unknown", a) + 1;
        const char *v = argv[++i];
        long long n;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "-p") && (o->n_pp = parse_list(v, o->pp, MAX_TESTS)) < 0)
            return app_fail(CMD, "-p '%s': expected token counts like 128,512", v) + 1;
        else if (!strcmp(a, "-n")) {
            if (app_parse_int(CMD, a, v, 0, 100000, &n))
                return 2;
            o->tg = (int)n;
        } else if (!strcmp(a, "-r")) {
            if (app_parse_int(CMD, a, v, 1, MAX_REPS, &n))
                return 2;
            o->reps = (int)n;
        } else if (!strcmp(a, "-t")) {
            if (app_parse_int(CMD, a, v, 1, 256, &n))
                return 2;
            o->so.n_threads = (int)n;
        } else if (!strcmp(a, "--device")) {
            o->device = v;
        } else if (!strcmp(a, "--cacert")) {
            o->cacert = v;
        } else if (!strcmp(a, "-o")) {
            if (strcmp(v, "md") && strcmp(v, "json") && strcmp(v, "csv"))
                return app_fail(CMD, "-o '%s': expected md, json or csv", v) + 1;
            o->format = v;
        } else if (!strcmp(a, "--backend")) {
            if (strcmp(v, "cpu") && strcmp(v, "vulkan"))
                return app_fail(CMD, "--backend '%s': expected vulkan or cpu", v) + 1;
            o->so.backend = strcmp(v, "cpu") ? ENG_BACKEND_VULKAN : ENG_BACKEND_CPU;
        } else if (strcmp(a, "-p")) {
            return app_fail(CMD, "unknown option '%s' (see sizeup bench --help)", a) + 1;
        }
    }
    if (!o->model)
        return app_fail(CMD, "no model given (-m MODEL)") + 1;
    if (o->n_pp == 0 && o->tg == 0)
        return app_fail(CMD, "-p 0 and -n 0: no test left to run") + 1;
    return app_device_index(CMD, o->device, &o->so.device);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarise(result *r)
{
    double s[MAX_REPS], sum = 0, sq = 0;
    memcpy(s, r->samples, (size_t)r->n * sizeof *s);
    qsort(s, (size_t)r->n, sizeof *s, cmp_d);
    r->median = r->n % 2 ? s[r->n / 2] : (s[r->n / 2 - 1] + s[r->n / 2]) / 2;
    for (int i = 0; i < r->n; i++)
        sum += s[i];
    r->avg = sum / r->n;
    for (int i = 0; i < r->n; i++)
        sq += (s[i] - r->avg) * (s[i] - r->avg);
    r->stddev = r->n > 1 ? sqrt(sq / (r->n - 1)) : 0;
}

static bool run_pp(eng_session *s, int32_t *toks, int n, double *tps)
{
    eng_session_reset(s);
    double t0 = app_now_s();
    if (eng_session_feed(s, toks, (size_t)n))
        return false;
    *tps = n / (app_now_s() - t0);
    return true;
}

/* n single-token decodes after one token of context, logits read back each time. */
static bool run_tg(eng_session *s, int32_t *toks, int n, double *tps)
{
    eng_session_reset(s);
    if (eng_session_feed(s, toks, 1))
        return false;
    double t0 = app_now_s();
    for (int i = 0; i < n; i++) {
        float *lg;
        if (eng_session_logits(s, &toks[1 + i % 64], 1, false, &lg))
            return false;
        free(lg);
    }
    *tps = n / (app_now_s() - t0);
    return true;
}

static bool run_test(eng_session *s, int32_t *toks, result *r, int reps)
{
    double tps;
    bool pp = r->n_prompt > 0;
    if (!(pp ? run_pp(s, toks, r->n_prompt, &tps) : run_tg(s, toks, r->n_gen, &tps)))
        return false; /* the first run is the warm-up (pipelines, caches, page faults) */
    for (r->n = 0; r->n < reps; r->n++)
        if (!(pp ? run_pp(s, toks, r->n_prompt, &r->samples[r->n])
                 : run_tg(s, toks, r->n_gen, &r->samples[r->n])))
            return false;
    summarise(r);
    return true;
}

typedef struct bench_info {
    const eng_model *m;
    const char *path;
    eng_stats st;
    double bytes_per_token;   /* weight bytes one decode step reads */
    double device_gbps;       /* streaming read bandwidth of the device */
    const char *backends;     /* llama-bench's name of the backend: "CPU" or "Vulkan" */
    int n_threads;            /* CPU threads the run used */
    char model_type[160];     /* llama-bench's model_type (model_type() below), read once */
} bench_info;

/* llama-bench's model_type, "ARCH SIZE FTYPE" as llama.cpp describes a model ("llama 1B Q4_K -
 * Medium"): FTYPE is llama.cpp's name of general.file_type; SIZE is the parameter count rounded
 * (llama.cpp names sizes from per-architecture tables and prints "?B" for the rest, so a 135M
 * model reads "llama ?B Q4_0" there and "llama 135M Q4_0" here). Without general.file_type,
 * FTYPE is guessed from the type holding the most weights, as llama.cpp guesses it. */
static void model_type(const char *path, const eng_model *m, char *buf, size_t n)
{
    char arch[64] = "?", ft[48] = "?", size[16];
    gguf_file *f;
    char err[256];
    static eng_model_info mi; /* large; bench is single-threaded here */
    if (gguf_open(path, &f, err, sizeof err) == GGUF_OK) {
        if (eng_model_info_read(f, &mi) == GGUF_OK) {
            if (mi.architecture[0])
                snprintf(arch, sizeof arch, "%s", mi.architecture);
            const char *name = mi.has_file_type ? eng_ftype_name(mi.file_type) : NULL;
            /* no general.file_type: llama.cpp guesses it from the type with the most weights */
            const gguf_type_info *ti = !name && mi.n_types ? gguf_type_get(mi.types[0].type) : NULL;
            if (ti && !strcmp(ti->name, "F32"))
                name = "ALL_F32";
            else if (ti)
                name = ti->name;
            if (name && !strcmp(name, "ALL_F32")) {
                snprintf(ft, sizeof ft, "all F32");
            } else if (name) {
                const char *t = !strncmp(name, "MOSTLY_", 7) ? name + 7 : name;
                size_t len = strlen(t);
                static const char *const sizes[] = { "Small", "Medium", "Large" };
                const char *suffix = len > 4 && t[len - 2] == '_' && strchr("SML", t[len - 1]) &&
                                     t[len - 3] == 'K' ? sizes[strchr("SML", t[len - 1]) - "SML"] : NULL;
                if (suffix)
                    snprintf(ft, sizeof ft, "%.*s - %s", (int)len - 2, t, suffix);
                else if (!strcmp(t, "Q2_K")) /* llama.cpp's plain Q2_K is its medium mix */
                    snprintf(ft, sizeof ft, "Q2_K - Medium");
                else
                    snprintf(ft, sizeof ft, "%s", t);
            }
        }
        gguf_close(f);
    }
    double p = (double)eng_model_n_params(m);
    if (p >= 1e9)
        snprintf(size, sizeof size, "%.*fB", p < 9.95e9 ? 1 : 0, p / 1e9);
    else if (p >= 1e6)
        snprintf(size, sizeof size, "%.0fM", p / 1e6);
    else
        snprintf(size, sizeof size, "%.0fK", p / 1e3);
    /* "1.2B" reads as llama.cpp's "1B" would; whole numbers lose their ".0" */
    char *dot = strstr(size, ".0B");
    if (dot)
        memmove(dot, dot + 2, strlen(dot + 2) + 1);
    snprintf(buf, n, "%s %s %s", arch, size, ft);
}

static void test_name(const result *r, char *buf, size_t n)
{
    snprintf(buf, n, r->n_prompt ? "pp%d" : "tg%d", r->n_prompt ? r->n_prompt : r->n_gen);
}

static void print_md(const bench_info *bi, const result *r, int n)
{
    char sz[16];
    printf("| model | size | params | backend | test | t/s | weights GB/s | share of device read |\n"
           "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < n; i++) {
        char test[32], gb[32] = "", share[32] = "";
        test_name(&r[i], test, sizeof test);
        if (r[i].n_gen) {
            double gbps = r[i].median * bi->bytes_per_token / 1e9;
            snprintf(gb, sizeof gb, "%.2f", gbps);
            if (bi->device_gbps > 0)
                snprintf(share, sizeof share, "%.0f%% of %.1f", 100 * gbps / bi->device_gbps,
                         bi->device_gbps);
        }
        printf("| %s | %s | %.2fM | %s | %s | %.2f ± %.2f | %s | %s |\n", eng_model_name(bi->m),
               app_fmt_bytes(eng_model_weight_bytes(bi->m), sz, sizeof sz),
               eng_model_n_params(bi->m) / 1e6, bi->st.backend, test, r[i].median, r[i].stddev,
               gb, share);
    }
}

static json_t *result_json(const bench_info *bi, const result *r)
{
    json_t *o = json_object(), *ts = json_array(), *ns = json_array();
    for (int i = 0; i < r->n; i++) {
        json_array_append_new(ts, json_real(r->samples[i]));
        double tokens = r->n_prompt ? r->n_prompt : r->n_gen;
        json_array_append_new(ns, json_integer((json_int_t)(tokens / r->samples[i] * 1e9)));
    }
    char test[32];
    test_name(r, test, sizeof test);
    double tokens = r->n_prompt ? r->n_prompt : r->n_gen, ns_sum = 0, ns_sq = 0;
    for (int i = 0; i < r->n; i++)
        ns_sum += tokens / r->samples[i] * 1e9;
    for (int i = 0; i < r->n; i++) {
        double d = tokens / r->samples[i] * 1e9 - ns_sum / r->n;
        ns_sq += d * d;
    }
    json_object_set_new(o, "model_filename", json_string(bi->path));
    json_object_set_new(o, "model_type", json_string(bi->model_type));
    json_object_set_new(o, "model_name", json_string(eng_model_name(bi->m)));
    json_object_set_new(o, "model_size", json_integer((json_int_t)eng_model_weight_bytes(bi->m)));
    json_object_set_new(o, "model_n_params", json_integer((json_int_t)eng_model_n_params(bi->m)));
    json_object_set_new(o, "backends", json_string(bi->backends));
    json_object_set_new(o, "n_threads", json_integer(bi->n_threads));
    json_object_set_new(o, "test", json_string(test));
    json_object_set_new(o, "n_prompt", json_integer(r->n_prompt));
    json_object_set_new(o, "n_gen", json_integer(r->n_gen));
    json_object_set_new(o, "avg_ns", json_integer((json_int_t)(ns_sum / r->n)));
    json_object_set_new(o, "stddev_ns", json_integer((json_int_t)(r->n > 1 ? sqrt(ns_sq / (r->n - 1)) : 0)));
    json_object_set_new(o, "avg_ts", json_real(r->avg));
    json_object_set_new(o, "stddev_ts", json_real(r->stddev));
    json_object_set_new(o, "median_ts", json_real(r->median));
    json_object_set_new(o, "samples_ts", ts);
    json_object_set_new(o, "samples_ns", ns);
    json_object_set_new(o, "device", json_string(bi->st.backend));
    json_object_set_new(o, "mem_weights", json_integer((json_int_t)bi->st.mem_weights));
    json_object_set_new(o, "mem_kv", json_integer((json_int_t)bi->st.mem_kv));
    json_object_set_new(o, "mem_scratch", json_integer((json_int_t)bi->st.mem_scratch));
    if (r->n_gen) {
        double gbps = r->median * bi->bytes_per_token / 1e9;
        json_object_set_new(o, "weight_bytes_per_token", json_integer((json_int_t)bi->bytes_per_token));
        json_object_set_new(o, "weight_gbps", json_real(gbps));
        json_object_set_new(o, "device_read_gbps", json_real(bi->device_gbps));
        json_object_set_new(o, "bandwidth_share", bi->device_gbps > 0 ? json_real(gbps / bi->device_gbps) : json_null());
    }
    return o;
}

static void print_results(const bench_opts *o, const bench_info *bi, const result *r, int n)
{
    if (!strcmp(o->format, "md")) {
        char w[16], kv[16], sc[16];
        print_md(bi, r, n);
        printf("\nbackend %s; memory: weights %s + KV cache %s + scratch %s; device streaming "
               "read %.2f GB/s; a decode step reads %.1f MB of weights\n", bi->st.backend,
               app_fmt_bytes(bi->st.mem_weights, w, sizeof w), app_fmt_bytes(bi->st.mem_kv, kv, sizeof kv),
               app_fmt_bytes(bi->st.mem_scratch, sc, sizeof sc), bi->device_gbps,
               bi->bytes_per_token / 1e6);
        return;
    }
    if (!strcmp(o->format, "csv"))
        printf("model_filename,model_type,model_size,backends,n_prompt,n_gen,avg_ts,stddev_ts,"
               "median_ts,weight_gbps,device_read_gbps\n");
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        if (!strcmp(o->format, "csv"))
            printf("\"%s\",\"%s\",%llu,\"%s\",%d,%d,%.4f,%.4f,%.4f,%.4f,%.4f\n", bi->path,
                   bi->model_type, (unsigned long long)eng_model_weight_bytes(bi->m),
                   bi->backends, r[i].n_prompt, r[i].n_gen, r[i].avg, r[i].stddev, r[i].median,
                   r[i].n_gen ? r[i].median * bi->bytes_per_token / 1e9 : 0, bi->device_gbps);
        else
            json_array_append_new(arr, result_json(bi, &r[i]));
    }
    if (!strcmp(o->format, "json")) {
        char *s = json_dumps(arr, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
    }
    json_decref(arr);
}

/* The bytes one decode step reads: every weight, except that the embedding table contributes
 * one row (unless it doubles as the output matrix, which is read whole). */
static double step_bytes(const eng_model *m)
{
    double b = (double)m->weight_bytes - (double)m->tok_embd.t->nbytes + (double)m->tok_embd.row_bytes;
    if (m->tied_output)
        b += (double)m->tok_embd.t->nbytes;
    return b;
}

int app_cmd_bench(int argc, char **argv)
{
    bench_opts o = { 0 };
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    eng_model *m;
    eng_session *s;
    char err[512], *path;
    if ((rc = app_model_path(CMD, o.model, o.cacert, &path)) != 0)
        return rc;
    if (eng_model_open(path, &m, err, sizeof err)) {
        free(path);
        return app_fail(CMD, "%s", err);
    }
    int max_pp = 1;
    for (int i = 0; i < o.n_pp; i++)
        max_pp = o.pp[i] > max_pp ? o.pp[i] : max_pp;
    o.so.n_ctx = (uint32_t)(max_pp > o.tg + 1 ? max_pp : o.tg + 1) + 8;
    if (eng_session_new(m, &o.so, &s, err, sizeof err)) {
        eng_model_close(m);
        free(path);
        return app_fail(CMD, "%s", err);
    }
    int32_t *toks = malloc((size_t)(max_pp > 65 ? max_pp : 65) * sizeof *toks);
    uint32_t nv = eng_model_hparams(m)->n_vocab, seed = 1234;
    for (int i = 0; i < (max_pp > 65 ? max_pp : 65); i++)
        toks[i] = (int32_t)((seed = seed * 1103515245u + 12345u) >> 8) % (int32_t)nv;
    result r[MAX_TESTS + 1] = { 0 };
    int n = 0;
    for (int i = 0; i < o.n_pp; i++)
        r[n++].n_prompt = o.pp[i];
    if (o.tg > 0)
        r[n++].n_gen = o.tg;
    bench_info bi = { m, path, { 0 }, step_bytes(m), 0, "CPU", 0, "" };
    model_type(path, m, bi.model_type, sizeof bi.model_type);
    eng_session_stats(s, &bi.st);
    if (!strncmp(bi.st.backend, "vulkan", 6))
        bi.backends = "Vulkan";
    bi.n_threads = o.so.n_threads > 0 && o.so.n_threads < eng_pool_threads() ? o.so.n_threads
                                                                             : eng_pool_threads();
    bi.device_gbps = eng_session_read_bandwidth(s);
    for (int i = 0; i < n && !rc; i++) {
        char t[32];
        test_name(&r[i], t, sizeof t);
        fprintf(stderr, "[sizeup] %s ...\n", t);
        if (!run_test(s, toks, &r[i], o.reps))
            rc = app_fail(CMD, "%s: %s", t, eng_session_errmsg(s));
    }
    if (!rc)
        print_results(&o, &bi, r, n);
    free(toks);
    eng_session_free(s);
    eng_model_close(m);
    free(path);
    return rc;
}
