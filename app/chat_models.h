/* Which models `sizeup chat` opens and what its panes say about them; no engine types here
 * (engine/model_info.h and engine/engine.h cannot share a translation unit). */
#ifndef SIZEUP_APP_CHAT_MODELS_H
#define SIZEUP_APP_CHAT_MODELS_H

#include <stddef.h>

/* Models to open when `sizeup` / `sizeup chat` names none: the two most recently used models
 * of the store, as local paths (caller frees each and the array). 0 is a valid answer (an empty
 * store): the caller then shows how to get a model. The built-in demo models plug in here. */
size_t app_chat_default_models(char ***paths);

/* Resolve a model reference without any network: an existing file, or a model in the store.
 * Returns a malloc'd path, or NULL with why (for /add and /model inside the TUI). */
char *app_chat_resolve_local(const char *ref, char *why, size_t whylen);

/* The header's facts from the file: main tensor type ("Q4_0", "F32"), bits per weight, file
 * size. Unknown values come back as "?" and 0. */
void app_model_brief(const char *path, char *type, size_t typelen, double *bpw,
                     unsigned long long *file_size);

/* Resident memory of this process in bytes (0 when unknown). */
unsigned long long app_host_rss(void);

#endif
