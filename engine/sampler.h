/* Token sampler: turns one logits vector into the next token. Both backends hand their logits
 * (host memory, n_vocab floats) to the same sampler, so a given seed picks the same tokens
 * whichever backend computed them.
 *
 * One eng_sampler per generating session. It holds that session's penalty history and random
 * state and is used by one thread at a time; there is no global state, so any number of
 * sessions sample concurrently. All scratch memory is allocated by eng_sampler_new (about 24
 * bytes per vocabulary entry, 3.6 MB at 152k; 4 more with penalty_last_n -1): sampling never
 * allocates.
 *
 * The chain is llama.cpp's default order (common/common.h, common_params_sampling::samplers:
 * penalties, dry, top_n_sigma, top_k, typical_p, top_p, min_p, xtc, temperature, then "dist";
 * the ones sizeup lacks are off by default there):
 *
 *   1. logits are read: NaN counts as -inf; +inf counts as FLT_MAX, so +inf tokens share the
 *      probability equally and finite ones get p = 0. A -inf token is never a candidate and
 *      never chosen; a finite token whose weight underflows to 0 may be listed as a candidate
 *      with p = 0 but is never drawn either.
 *   2. penalties, for each token seen c > 0 times among the last penalty_last_n accepted
 *      tokens (llama_sampler_penalties_apply):
 *          l = l <= 0 ? l * repeat_penalty : l / repeat_penalty;
 *          l -= c * frequency_penalty + presence_penalty;
 *      clamped to finite values, so a penalty never bans a token nor forces one.
 *   3. top_k: keep the k highest logits.
 *   4. top_p: probabilities are the softmax of the current candidates' logits at temperature 1
 *      (temperature comes later in the chain, as in llama.cpp, whose top-p calls softmax on the
 *      unscaled logits). Keep the smallest prefix of candidates sorted by probability whose
 *      cumulative probability is >= top_p; always at least one (min_keep 1).
 *   5. min_p: keep tokens with logit >= max_logit + log(min_p), i.e. p >= min_p * p_max at
 *      temperature 1 (llama.cpp tests the logits the same way); the best token always stays.
 *   6. temperature: p_i = exp((l_i - l_max) / T) / sum over the survivors.
 *   7. draw one token with a uniform double u in [0,1) from xoshiro256** (seeded through
 *      splitmix64): the first candidate whose running sum of weights exceeds u * total, the
 *      candidates taken best first after top_k, else in id order.
 *
 * temperature 0 is greedy: the highest logit after penalties, ties to the lowest id, found
 * without sorting and without touching the random state (top_k, top_p and min_p always
 * keep the best token, so they cannot change the result; llama.cpp's temperature sampler
 * likewise keeps only the maximum when T <= 0).
 * Where logits tie, candidates are ordered lowest id first (llama.cpp leaves that order to
 * std::partial_sort), so results are fully determined by the seed, params and history.
 */
#ifndef SIZEUP_SAMPLER_H
#define SIZEUP_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef enum eng_sampler_status {
    ENG_SAMPLER_OK = 0,
    ENG_SAMPLER_ERR_PARAM, /* a parameter is out of range or NaN; the message names it */
    ENG_SAMPLER_ERR_ARG,   /* NULL pointer or n_vocab < 1 */
    ENG_SAMPLER_ERR_NOMEM,
} eng_sampler_status;

/* Returned by eng_sampler_sample when every logit is -inf or NaN. */
#define ENG_SAMPLER_NO_TOKEN (-1)

typedef struct eng_sampler_params {
    float temperature;       /* >= 0; 0 = greedy */
    int32_t top_k;           /* >= 0; 0 = off */
    float top_p;             /* (0, 1]; 1 = off */
    float min_p;             /* [0, 1]; 0 = off */
    float repeat_penalty;    /* > 0; 1 = off */
    float frequency_penalty; /* any finite value; 0 = off (OpenAI range is -2..2) */
    float presence_penalty;  /* any finite value; 0 = off */
    int32_t penalty_last_n;  /* tokens the penalties look back on; 0 = off, -1 = every token
                                accepted since new/reset (the whole context; llama.cpp turns
                                -1 into the context size) */
    uint64_t seed;           /* the same seed, params and history give the same tokens */
} eng_sampler_params;

/* One surviving candidate. logit: after penalties, before temperature. p: the probability the
 * draw gives it (after temperature, normalised over the survivors). */
typedef struct eng_token_prob {
    int32_t id;
    float logit;
    float p;
} eng_token_prob;

typedef struct eng_sampler eng_sampler;

/* llama.cpp's defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, no penalties
 * (repeat 1, frequency 0, presence 0), penalty_last_n 64, seed 0. The caller chooses a seed
 * (a random one when the user gave none). */
eng_sampler_params eng_sampler_params_default(void);

/* ENG_SAMPLER_OK, or ENG_SAMPLER_ERR_PARAM with err naming the first bad field and its value.
 * err may be NULL. */
eng_sampler_status eng_sampler_params_check(const eng_sampler_params *p, char *err, size_t errlen);

/* A sampler for a vocabulary of n_vocab tokens; params are copied. On failure *out is NULL and
 * err says why. Caller frees with eng_sampler_free. */
eng_sampler_status eng_sampler_new(const eng_sampler_params *p, int32_t n_vocab, eng_sampler **out,
                                   char *err, size_t errlen);
void eng_sampler_free(eng_sampler *s);

/* The params the sampler was made with; borrowed until eng_sampler_free. */
const eng_sampler_params *eng_sampler_get_params(const eng_sampler *s);

/* The next token from logits (n_vocab floats, borrowed for the call, not modified), or
 * ENG_SAMPLER_NO_TOKEN when no token has a usable logit. Does not add the token to the
 * penalty history: pass it to eng_sampler_accept once it enters the context. */
int32_t eng_sampler_sample(eng_sampler *s, const float *logits);

/* Adds one token of the context to the penalty history: the prompt's tokens too, in order.
 * Ids outside [0, n_vocab) are ignored. */
void eng_sampler_accept(eng_sampler *s, int32_t token);

/* Forgets the history and restarts the random sequence from the seed. */
void eng_sampler_reset(eng_sampler *s);

/* Runs the chain on logits without drawing (the random state and history are untouched) and
 * writes the survivors to out, most probable first (ties: lowest id), at most max of them.
 * Returns how many survived (greedy: 1, with p = 1), which may exceed max; 0 when no token
 * has a usable logit. out may be NULL when max is 0. */
size_t eng_sampler_candidates(eng_sampler *s, const float *logits, eng_token_prob *out,
                              size_t max);

#endif
