/* Models for `sizeup chat` (which ones to open when none is named: app_default_models in
 * app.h) and what its panes say about them; no engine types here
 * (engine/model_info.h and engine/engine.h cannot share a translation unit). */
#ifndef SIZEUP_APP_CHAT_MODELS_H
#define SIZEUP_APP_CHAT_MODELS_H

#include <stdbool.h>
#include <stddef.h>

/* Resolve a model reference without any network: an existing file, a built-in demo model
 * (demo:..., made quietly when it is the one sizeup makes), or a model in the store.
 * Returns a malloc'd path, or NULL: with *remote set when ref names something to download
 * (catalog, hf.co, URL) or a served model (URL#MODEL, @NAME/MODEL: the worker talks to it),
 * else with why (for /add and /model inside the TUI). */
char *app_chat_resolve_local(const char *ref, bool *remote, char *why, size_t whylen);

/* What a pane calls a reference before its model says its own name: a file's base name, a
 * served model's name (the part after '#'; never a URL, which may carry a user:password). */
void app_chat_ref_label(const char *ref, char *buf, size_t len);

/* The header's facts from the file: main tensor type ("Q4_0", "F32"), bits per weight, file
 * size. Unknown values come back as "?" and 0. */
void app_model_brief(const char *path, char *type, size_t typelen, double *bpw,
                     unsigned long long *file_size);

/* Resident memory of this process in bytes (0 when unknown). */
unsigned long long app_host_rss(void);
/* Physical memory of the machine in bytes (0 when unknown). */
unsigned long long app_host_ram(void);
/* Size in bytes of the largest device-local memory heap of Vulkan device `device` (-1: the one
 * sizeup chooses), from a probe of its own (no logical device); 0 when it cannot tell. */
unsigned long long app_vk_heap_bytes(int device);

#endif
