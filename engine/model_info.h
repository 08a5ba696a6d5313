/* Model facts read from a GGUF header: what `sizeup inspect` prints, what the model picker shows
 * and what the loader checks before it allocates anything.
 *
 * eng_model_info is a plain struct filled in one pass over an open gguf_file. It owns no memory
 * (strings are copied into fixed buffers, truncated on a UTF-8 boundary when longer), so there is
 * nothing to free and it stays valid after gguf_close. Every metadata key is optional: an absent
 * key leaves its field 0 / "" / false, or the documented default. A key that is present with a
 * type that cannot mean what the key says (a string block count, say) is an error.
 */
#ifndef SIZEUP_MODEL_INFO_H
#define SIZEUP_MODEL_INFO_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/gguf.h"

#define ENG_INFO_NO_TOKEN UINT32_MAX  /* a special-token id meaning "none", as GGUF files store it */
#define ENG_ROPE_FREQ_BASE_DEFAULT 10000.0
#define ENG_DEFAULT_CTX_CAP 4096u  /* default n_ctx = min(context_length, this) */
#define ENG_COMPUTE_BATCH 512u     /* tokens per batch assumed by the compute-buffer estimate */

/* Special tokens, in the order inspect prints them. */
typedef enum eng_special {
    ENG_TOK_BOS, ENG_TOK_EOS, ENG_TOK_EOT, ENG_TOK_EOM, ENG_TOK_UNK, ENG_TOK_PAD, ENG_TOK_SEP,
    ENG_TOK_CLS, ENG_TOK_MASK,
    ENG_TOK_COUNT
} eng_special;

typedef enum eng_norm_kind {
    ENG_NORM_NONE = 0,  /* no epsilon key */
    ENG_NORM_RMS,       /* ARCH.attention.layer_norm_rms_epsilon */
    ENG_NORM_LAYER,     /* ARCH.attention.layer_norm_epsilon */
} eng_norm_kind;

/* One tensor type's share of the weights. */
typedef struct eng_type_use {
    uint32_t type;      /* gguf_ttype */
    uint32_t count;     /* tensors of this type */
    uint64_t n_elems;
    uint64_t bytes;
} eng_type_use;

typedef struct eng_special_token {
    uint32_t id;        /* ENG_INFO_NO_TOKEN when the key is absent or holds UINT32_MAX */
    bool in_vocab;      /* id < vocab_size, so text is meaningful */
    char text[96];      /* tokenizer.ggml.tokens[id]; "" when !in_vocab */
} eng_special_token;

typedef struct eng_model_info {
    /* file */
    uint32_t gguf_version;
    int64_t n_tensors, n_kv;
    uint64_t file_size;

    /* general.* */
    char architecture[64];      /* "" when absent */
    char name[256];
    bool has_file_type;         /* stories260K has no general.file_type */
    uint32_t file_type;         /* llama_ftype; see eng_ftype_name */

    /* tensors */
    uint64_t n_params;          /* sum of tensor elements (vocab-only files: 0) */
    uint64_t tensor_bytes;      /* sum of tensor data bytes, padding excluded */
    double bits_per_weight;     /* tensor_bytes * 8 / n_params; 0 when n_params == 0 */
    uint32_t n_types;
    eng_type_use types[GGUF_T_COUNT]; /* (n_types) sorted by bytes, largest first */
    bool has_rope_freqs;        /* a rope_freqs.weight tensor (Llama 3.1+ frequency factors) */
    bool tied_embeddings;       /* token_embd.weight present, output.weight absent */

    /* hyperparameters (ARCH.*); 0 when absent. Per-layer arrays are reduced to their largest
     * element, which is what sizes buffers. */
    uint32_t context_length;
    uint32_t n_layer;           /* block_count */
    uint32_t n_embd;
    uint32_t n_head;
    uint32_t n_head_kv;         /* head_count_kv, or n_head when that key is absent */
    bool head_kv_given;         /* head_count_kv was in the file */
    uint32_t head_dim;          /* attention.key_length, else n_embd / n_head */
    uint32_t head_dim_v;        /* attention.value_length, else head_dim */
    uint32_t n_ff;              /* feed_forward_length */
    uint32_t n_expert, n_expert_used;
    uint32_t sliding_window;

    /* RoPE */
    uint32_t rope_dim;          /* rope.dimension_count, else head_dim (what llama.cpp assumes;
                                 * meaningless for architectures without RoPE: bert, gpt2, mpt) */
    bool rope_dim_given;
    double rope_freq_base;      /* ENG_ROPE_FREQ_BASE_DEFAULT when absent */
    bool rope_freq_base_given;
    char rope_scaling_type[32]; /* rope.scaling.type ("linear", "yarn", ...); "" when absent */
    double rope_scaling_factor; /* 0 when absent */
    uint32_t rope_scaling_orig_ctx; /* rope.scaling.original_context_length; 0 when absent */

    eng_norm_kind norm_kind;
    double norm_eps;

    /* tokenizer.* */
    uint64_t vocab_size;        /* length of tokenizer.ggml.tokens; 0 when absent */
    char tok_model[32];         /* tokenizer.ggml.model: "llama", "gpt2", "bert", ... */
    char tok_pre[64];           /* tokenizer.ggml.pre; "" when absent */
    bool has_merges;
    uint64_t n_merges;
    eng_special_token special[ENG_TOK_COUNT];
    bool add_bos_given, add_bos;
    bool add_eos_given, add_eos;
    bool has_chat_template;
    uint64_t chat_template_len; /* bytes */

    /* set when eng_model_info_read fails: names the file and the key */
    char err[320];
} eng_model_info;

/* Fill *out from an open file. GGUF_OK, or GGUF_ERR_TYPE / GGUF_ERR_FORMAT with out->err set
 * (a key of an unusable type, special-token text that is not a string, ...). f is only read. */
gguf_status eng_model_info_read(const gguf_file *f, eng_model_info *out);

/* "MOSTLY_Q4_K_M" for llama_ftype 15, as llama.cpp and gguf-py name them; NULL when unknown. */
const char *eng_ftype_name(uint32_t file_type);
/* "bos", "eos", ...: the short name of a special token (also its JSON field name). */
const char *eng_special_name(eng_special which);

/* Memory needed to run the model at a context length. An estimate, not a measurement. */
typedef struct eng_mem_estimate {
    uint32_t n_ctx;
    uint32_t n_batch;           /* min(ENG_COMPUTE_BATCH, n_ctx) */
    uint64_t weights;           /* tensor_bytes */
    uint64_t kv_cache;          /* K and V in f16 for every layer and position */
    uint64_t compute;           /* activation buffers; see eng_mem_compute_formula */
    uint64_t total;
} eng_mem_estimate;

/* min(context_length, ENG_DEFAULT_CTX_CAP), or the cap when context_length is absent: vocab-only
 * files carry their model's 128K-token contexts, which would make a useless default. */
uint32_t eng_model_default_ctx(const eng_model_info *mi);
void eng_model_mem_estimate(const eng_model_info *mi, uint32_t n_ctx, eng_mem_estimate *out);
/* One line saying what the compute figure counts (for output next to the number). */
const char *eng_mem_compute_formula(void);

#endif
