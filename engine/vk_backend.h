/* The Vulkan backend: a model's weights on a device (shared by every session of that model),
 * and per-session contexts (KV cache, activations, the recorded decode step).
 *
 * One context per device is opened on first use and shared by all models on that device, so
 * several models generate side by side on one GPU; each model uploads its weights once.
 * Errors: functions returning false leave the reason in the err buffer they were given or in
 * eng_vk_errmsg of their context, each failure its own message. The decode step
 * of a session is recorded once and replayed for every token with the position in a small
 * buffer; prompts run in batches recorded per batch size.
 */
#ifndef SIZEUP_VK_BACKEND_H
#define SIZEUP_VK_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/model.h"

typedef struct eng_vk_model eng_vk_model;
typedef struct eng_vk eng_vk;

/* Upload m's weights to the chosen device (device_index < 0: automatic choice, or
 * SIZEUP_DEVICE as the app passes it); each device gets its own context, shared by every model
 * on it. Refused before any upload, with the numbers, when the
 * weights do not fit the device. m is borrowed and must outlive the result. Caller frees with
 * eng_vk_model_free. */
bool eng_vk_model_new(const eng_model *m, int device_index, eng_vk_model **out, char *err,
                      size_t errlen);
void eng_vk_model_free(eng_vk_model *vm);
/* Whether `--backend auto` with the automatic device (device_index < 0) should run on the CPU
 * engine instead: vk_auto_backend_is_cpu on the device the automatic choice makes, worked out
 * once per process (an instance, no logical device) and cached. Without a usable loader or any
 * device it returns false, so the caller's Vulkan attempt fails and says why. why (len bytes)
 * receives the reason either way. Thread-safe. */
bool eng_vk_auto_prefers_cpu(char *why, size_t len);
const char *eng_vk_model_device(const eng_vk_model *vm); /* "NAME (type)" */
uint32_t eng_vk_model_device_index(const eng_vk_model *vm); /* what --device names it */
uint64_t eng_vk_model_weight_bytes(const eng_vk_model *vm);

/* A context of n_ctx positions. Caller frees with eng_vk_free. */
eng_vk *eng_vk_new(eng_vk_model *vm, uint32_t n_ctx, char *err, size_t errlen);
void eng_vk_free(eng_vk *v);
const char *eng_vk_errmsg(const eng_vk *v);

/* Same contract as eng_cpu_decode (engine/cpu.h). */
bool eng_vk_decode(eng_vk *v, const int32_t *tokens, int n, int pos, float *logits,
                   bool all_logits);
/* Greedy shortcut: decode one token and return the argmax id (only 4 bytes read back). */
bool eng_vk_decode_argmax(eng_vk *v, int32_t token, int pos, int32_t *next);
/* The logits of the last single-token decode (after eng_vk_decode_argmax), read back late. */
bool eng_vk_last_logits(eng_vk *v, float *logits);
/* eng_cpu_kv_shift on the device's caches. false (eng_vk_errmsg says why) when a copy failed
 * or memory ran out; the cache may then be partly shifted and the session must be reset. */
bool eng_vk_kv_shift(eng_vk *v, int p0, int p1, int n_past);
uint64_t eng_vk_kv_bytes(const eng_vk *v);
uint64_t eng_vk_scratch_bytes(const eng_vk *v);
/* The model a context was made for (borrowed). */
eng_vk_model *eng_vk_model_of(const eng_vk *v);
/* Streaming-read bandwidth of the model's device in GB/s, measured with a read kernel (bench). */
double eng_vk_read_gbps(eng_vk_model *vm);

/* Validation-layer messages (warnings and errors) on the shared device context so far, with
 * the first one; 0 unless validation is on (SIZEUP_VK_VALIDATE=1). For tests. */
unsigned eng_vk_validation_messages(const char **first);

#endif
