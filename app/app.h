/* Commands of the sizeup binary. Each takes the arguments after its own name (argv[0] is the
 * command name) and returns the process exit status; only app/ parses arguments and exits. */
#ifndef SIZEUP_APP_H
#define SIZEUP_APP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "downloads/dl.h"

int app_cmd_inspect(int argc, char **argv);
int app_cmd_devices(int argc, char **argv);
int app_cmd_tokenize(int argc, char **argv);
int app_cmd_run(int argc, char **argv);
int app_cmd_logits(int argc, char **argv);
int app_cmd_gen_model(int argc, char **argv);
int app_cmd_bench(int argc, char **argv);
int app_cmd_quantize(int argc, char **argv);
int app_cmd_pull(int argc, char **argv);
int app_cmd_list(int argc, char **argv);
int app_cmd_rm(int argc, char **argv);
int app_cmd_catalog(int argc, char **argv);
int app_cmd_chat(int argc, char **argv);

/* Fixture-free helpers shared by commands. */
/* Print "sizeup CMD: MESSAGE\n" to stderr; returns 1 so callers can `return app_fail(...)`. */
int app_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "1.23 GiB", "512 KiB", "17 B": binary units, 3 significant digits. buf >= 16 bytes. */
const char *app_fmt_bytes(unsigned long long bytes, char *buf, size_t buflen);
/* The Vulkan device index from a --device value, else from SIZEUP_DEVICE, else -1 (automatic).
 * Returns 0, or 2 after a message naming a bad value. */
int app_device_index(const char *cmd, const char *flag_value, int *out);


/* "292.8K", "135.0M", "1.24B": parameter counts the way model names spell them. Returns buf. */
const char *app_fmt_count(uint64_t n, char *buf, size_t len);

/* ---- model references (app/model_ref.c) ---- */

/* The local path of the model that ref names, for -m MODEL and inspect: an existing file as is
 * (no network); else a model complete in the store (no network); else it is downloaded into
 * the store with a progress display on stderr, after a line saying what and where. cacert is
 * --cacert or NULL. Returns 0 with *path_out set (caller frees), or the exit status after one
 * line on stderr: 1 for a failure, 130 when Ctrl-C cancelled the download. */
int app_model_path(const char *cmd, const char *ref, const char *cacert, char **path_out);

/* A download context with --cacert applied (NULL: CURL_CA_BUNDLE or curl's default), or NULL
 * after a message (out of memory). Caller frees with dl_close. */
dl_ctx *app_dl_open(const char *cmd, const char *cacert);
/* One line for a failed dl_* call about ref: the context's message, and for DL_ERR_OFFLINE how
 * to use a local file instead. Returns 1. */
int app_dl_fail(const char *cmd, const dl_ctx *c, dl_status st, const char *ref);

/* What app_pull fetched: one entry per file (several for a split model). */
typedef struct app_pulled {
    char *path;          /* local path of the first file; caller frees with app_pulled_free */
    size_t n_files;
    char **paths;        /* (n_files) */
    uint64_t *sizes;     /* (n_files) bytes on disk */
    bool already;        /* every file was in the store before */
} app_pulled;
void app_pulled_free(app_pulled *p);
/* Resolve ref, say on stderr what will be fetched from where (unless quiet), fetch it with the
 * progress display (Ctrl-C cancels, leaving a resumable part), and fill *out. Returns 0, or the
 * exit status after one line (1, or 130 when cancelled). */
int app_pull(const char *cmd, dl_ctx *c, const char *ref, bool quiet, app_pulled *out);

/* The Vulkan device a fit estimate is made against (app/cmd_models.c). */
typedef struct app_fit_device {
    bool ok;             /* a device was found; else why says what went wrong */
    uint32_t index;
    char name[256];
    uint64_t capacity;   /* bytes: the budget of its largest device-local heap when the driver
                          * reports one (VK_EXT_memory_budget), else that heap's size */
    char why[512];
} app_fit_device;
/* Probe Vulkan and describe device `index` (-1: the one sizeup would choose). Never fails:
 * without a loader or device, out->ok is false. Returns 0, or 2 after a message when an
 * explicit index is out of range. */
int app_fit_device_probe(const char *cmd, int index, app_fit_device *out);

#endif
