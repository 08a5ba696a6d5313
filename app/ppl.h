/* Perplexity, bits per byte and KL divergence of a model on a text, computed the way
 * llama-perplexity computes perplexity, so sizeup's figures can be set beside llama.cpp's.
 *
 * The text is tokenized once (BOS first when the vocabulary adds one) and cut into
 * non-overlapping windows of n_ctx tokens; a tail shorter than a window is dropped. Each window
 * is decoded from an empty context with its first token replaced by BOS. Within a window, the
 * logits at positions n_ctx/2 .. n_ctx-2 are scored against the tokens at n_ctx/2+1 .. n_ctx-1:
 * n_ctx - n_ctx/2 - 1 tokens per window, so every scored token has at least half a window of
 * context. PPL = exp(mean of -ln p(token)) over all scored tokens.
 *
 * Bits per byte = (sum over the scored tokens of -log2 p(token)) / (the number of UTF-8 bytes
 * those same tokens decode to: each token's piece as the model's detokenizer writes it, "▁" as
 * one space, a byte-fallback token as its byte, control tokens as nothing). It measures the same
 * thing whatever the tokenizer, so models with different vocabularies can be compared by it and
 * not by per-token perplexity.
 *
 * KL (with a base model of the same vocabulary): at every scored position,
 * KL(base || model) = sum_v p_base(v) * (ln p_base(v) - ln p_model(v)), in nats; reported as the
 * mean, the 99th percentile (linear interpolation between the closest ranks of the sorted
 * values) and the share of positions where both models' most likely token is the same.
 */
#ifndef SIZEUP_APP_PPL_H
#define SIZEUP_APP_PPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct app_ppl_result {
    uint32_t n_ctx;          /* window size */
    uint32_t n_ctx_train;    /* the model's trained context (0: the file does not say) */
    bool over_train;         /* n_ctx > n_ctx_train: scored past what the model learnt */
    size_t n_tokens;         /* tokens of the whole text, BOS included */
    size_t n_chunks;         /* windows scored */
    size_t n_scored;         /* tokens scored (n_chunks * (n_ctx - n_ctx/2 - 1)) */
    double nll;              /* sum of -ln p over the scored tokens (nats) */
    double ppl, ppl_err;     /* exp(nll / n_scored) and its standard error, as llama.cpp's */
    uint64_t n_bytes;        /* UTF-8 bytes the scored tokens decode to */
    double bits_per_byte;
    double *running;         /* (n_chunks) PPL after each window; caller frees (app_ppl_free) */
    bool has_kl;             /* the KL figures below were measured */
    double kl_mean, kl_p99;  /* nats */
    double top_agree;        /* share (0..1) of scored positions with the same top token */
    double seconds;          /* wall time of the decodes */
    char backend[256];       /* the model's session backend, as eng_stats.backend says it */
} app_ppl_result;

void app_ppl_free(app_ppl_result *r);

/* True when a and b have the same tokens (same count, same text for every id): then per-token
 * figures and KL divergence between their models mean something. */
bool app_vocab_same(const eng_vocab *a, const eng_vocab *b);

/* The window when none is asked for: llama-perplexity's 512, capped at the smallest trained
 * context of the n models (one window for all of them, so their figures compare). *capped, when
 * not NULL, says whether the cap applied. */
#define APP_PPL_CTX_DEFAULT 512
uint32_t app_ppl_default_ctx(const eng_model *const *models, int n, bool *capped);

/* Score text (len bytes) with model m in windows of n_ctx tokens on sessions made with *so
 * (its n_ctx is replaced). base: NULL, or a model with the same vocabulary for the KL figures.
 * Returns 0 with *out filled (free with app_ppl_free), or 1 after one line on stderr naming the
 * problem (too few tokens for one window, different vocabularies, an engine failure). */
int app_ppl_run(const char *cmd, eng_model *m, eng_model *base, const char *text, size_t len,
                uint32_t n_ctx, const eng_session_opts *so, app_ppl_result *out);

/* ln p(v) for every token of one position's logits (n floats), into lp (n doubles); returns
 * the id of the most likely token. Exposed for tests. */
int32_t app_log_softmax(const float *logits, int32_t n, double *lp);

#endif
