/* Tokenizers built from GGUF metadata (tokenizer.ggml.*), matching llama.cpp and the original
 * Hugging Face tokenizers token for token:
 *   - "llama": SentencePiece BPE (merges by score, "▁" for spaces, byte fallback <0xNN>);
 *   - "gpt2":  byte-level BPE (merges by rank) after a pre-tokenizer split chosen by
 *              tokenizer.ggml.pre and run with PCRE2.
 * Special tokens (control, user-defined) are cut out of the text first, as llama.cpp does.
 *
 * A vocabulary is immutable after load and owns copies of everything it needs, so one vocab
 * can serve several threads and outlive the gguf_file it came from.
 */
#ifndef SIZEUP_TOKENIZER_H
#define SIZEUP_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"

typedef enum eng_tok_status {
    ENG_TOK_OK = 0,
    ENG_TOK_ERR_FORMAT,      /* the tokenizer metadata is missing or inconsistent */
    ENG_TOK_ERR_UNSUPPORTED, /* unknown tokenizer model or pre-tokenizer: refused, never guessed */
    ENG_TOK_ERR_NOMEM,
    ENG_TOK_ERR_ARG,
} eng_tok_status;

typedef enum eng_vocab_kind { ENG_VOCAB_SPM = 1, ENG_VOCAB_BPE = 2 } eng_vocab_kind;

/* Token attributes (from tokenizer.ggml.token_type), as bits. */
enum {
    ENG_TOKATTR_NORMAL = 1 << 0,
    ENG_TOKATTR_UNKNOWN = 1 << 1,
    ENG_TOKATTR_CONTROL = 1 << 2,
    ENG_TOKATTR_USER_DEFINED = 1 << 3,
    ENG_TOKATTR_UNUSED = 1 << 4,
    ENG_TOKATTR_BYTE = 1 << 5,
    ENG_TOKATTR_LSTRIP = 1 << 6, /* whitespace before this special token is swallowed */
    ENG_TOKATTR_RSTRIP = 1 << 7, /* whitespace after it is swallowed */
};

#define ENG_TOKEN_NONE (-1)

typedef struct eng_vocab eng_vocab;

/* Build the tokenizer of a model file. On failure *out is NULL and err names the key at fault.
 * Caller frees with eng_vocab_free. */
eng_tok_status eng_vocab_load(const gguf_file *f, eng_vocab **out, char *err, size_t errlen);
void eng_vocab_free(eng_vocab *v);

eng_vocab_kind eng_vocab_kind_of(const eng_vocab *v);
const char *eng_vocab_pre_name(const eng_vocab *v); /* "llama-bpe", "default", ... */
int32_t eng_vocab_n_tokens(const eng_vocab *v);
/* Token text as stored in the vocabulary (SentencePiece "▁", GPT-2 byte mapping, ...);
 * NUL-terminated, borrowed until eng_vocab_free; *len (when len is not NULL) is its length. */
const char *eng_vocab_text(const eng_vocab *v, int32_t id, size_t *len);
unsigned eng_vocab_attr(const eng_vocab *v, int32_t id);
int32_t eng_vocab_find(const eng_vocab *v, const char *text, size_t len); /* id or NONE */

/* Special tokens; ENG_TOKEN_NONE when the model has none. */
typedef struct eng_special_ids {
    int32_t bos, eos, eot, eom, unk, pad, sep, nl;
    bool add_bos, add_eos, add_space_prefix;
} eng_special_ids;
const eng_special_ids *eng_vocab_special(const eng_vocab *v);
/* True for every token that ends generation (EOS, EOT, EOM, ...). */
bool eng_vocab_is_eog(const eng_vocab *v, int32_t id);

/* Tokenize len bytes of text (any bytes; invalid UTF-8 is kept and byte-encoded).
 * add_special: add BOS/EOS as the model's metadata asks. parse_special: match control tokens
 * written in the text (user-defined tokens are always matched, as in llama.cpp).
 * *ids is malloc'd (caller frees), *n its length. */
eng_tok_status eng_tokenize(const eng_vocab *v, const char *text, size_t len, bool add_special,
                            bool parse_special, int32_t **ids, size_t *n);

/* The bytes a token stands for: byte-fallback tokens give their byte, "▁" gives a space, GPT-2
 * mapped characters give their bytes. Control tokens give their text only when `special`.
 * Borrowed until eng_vocab_free; *len bytes, not NUL-terminated. */
const char *eng_token_piece(const eng_vocab *v, int32_t id, bool special, size_t *len);

/* Whole-sequence decode into a malloc'd NUL-terminated string (caller frees; *len excludes the
 * NUL). With add_space_prefix vocabularies the space the tokenizer added in front of the text
 * is removed again, so decode(encode(s)) == s. */
eng_tok_status eng_detokenize(const eng_vocab *v, const int32_t *ids, size_t n, bool special,
                              char **text, size_t *len);

/* Streaming decoder: feed ids one at a time, get back only complete UTF-8 characters; bytes of
 * a character split over several tokens are held until it is complete (or proven invalid).
 * The concatenation of everything returned, flush included, equals eng_detokenize's output
 * when at_start is true (first token of a text: its added leading space is dropped); pass
 * false when continuing after a prompt. Caller frees with eng_detok_free. */
typedef struct eng_detok eng_detok;
eng_detok *eng_detok_new(const eng_vocab *v, bool special, bool at_start);
void eng_detok_free(eng_detok *d);
/* Returns the text released by this token (borrowed until the next call), *len bytes. */
const char *eng_detok_push(eng_detok *d, int32_t id, size_t *len);
/* Releases whatever is still held (an incomplete sequence at the end of the stream). */
const char *eng_detok_flush(eng_detok *d, size_t *len);

#endif
