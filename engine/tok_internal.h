/* Shared between the tokenizer files (tokenizer.c: vocabulary, special tokens, decoding;
 * tok_spm.c and tok_bpe.c: the two merge algorithms). Not part of the public API. */
#ifndef SIZEUP_TOK_INTERNAL_H
#define SIZEUP_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "engine/tokenizer.h"

/* Open-addressing hash table from byte strings (kept in the vocab arena) to token ids. */
typedef struct tok_strtab {
    int32_t *slot;  /* (cap) token id or -1 */
    uint64_t mask;  /* cap - 1, cap a power of two */
} tok_strtab;

/* Merge table for byte-level BPE: (left id, right id) -> rank and the merged token. */
typedef struct tok_merge {
    uint64_t key;   /* left << 32 | right; UINT64_MAX for an empty slot */
    int32_t rank, merged;
} tok_merge;

#define TOK_MAX_REGEX 8

struct eng_vocab {
    eng_vocab_kind kind;
    char pre_name[64];
    int32_t n;
    char *arena;            /* every token text, NUL-terminated, back to back */
    uint64_t *off;          /* (n) offset of each text in arena */
    uint32_t *len;          /* (n) */
    float *score;           /* (n) SentencePiece merge scores */
    uint8_t *attr;          /* (n) ENG_TOKATTR_* */
    char *piece_arena;      /* decoded bytes of every token (special = true) */
    uint64_t *piece_off;    /* (n) */
    uint32_t *piece_len;    /* (n) */
    tok_strtab index;       /* text -> id; with duplicates the last id wins, as in llama.cpp */
    tok_merge *merges;      /* (merge_mask + 1) */
    uint64_t merge_mask;
    int32_t byte_tok[256];  /* SPM: <0xNN> (or the byte itself); BPE: the mapped character */
    int32_t *special;       /* ids matched inside text, longest text first */
    size_t n_special;
    uint32_t *sp_bucket;    /* (65537) by first two bytes: start of its run in sp_by_pair */
    uint32_t *sp_by_pair;   /* indices into special[], grouped by their first two bytes (a
                             * one-byte token is listed under every second byte) */
    int32_t *eog;           /* end-of-generation ids */
    size_t n_eog;
    eng_special_ids sp;
    bool ignore_merges;     /* Llama 3: a whole pre-token found in the vocab is one token */
    bool spm_word_split;    /* SPM: no token has "▁" after other text, so merging may run word
                             * by word (see tok_spm.c) */
    pcre2_code *re[TOK_MAX_REGEX];
    uint8_t re_first[TOK_MAX_REGEX][32]; /* bytes a match can start with (bitmap), or all ones */
    int n_re;
};

/* A piece of the input: raw text (off, len) or an already decided token. */
typedef struct tok_frag {
    bool is_token;
    int32_t id;
    size_t off, len;
} tok_frag;

/* Growable id output. */
typedef struct tok_out {
    int32_t *ids;
    size_t n, cap;
    bool oom;
} tok_out;

void tok_out_push(tok_out *o, int32_t id);
int32_t tok_find(const eng_vocab *v, const char *s, size_t len);
uint64_t tok_hash(const char *s, size_t len);

/* Merge one raw-text fragment into tokens. */
void tok_spm_fragment(const eng_vocab *v, const char *text, size_t len, tok_out *out);
bool tok_spm_can_split_words(const eng_vocab *v);
void tok_bpe_fragment(const eng_vocab *v, const char *text, size_t len, tok_out *out);

/* BPE set-up: the pre-tokenizer for tokenizer.ggml.pre (refused when unknown) and the merge
 * table. */
eng_tok_status tok_bpe_init(eng_vocab *v, const gguf_file *f, char *err, size_t errlen);
/* The GPT-2 byte <-> character mapping: byte b is written as codepoint tok_byte_cp(b). */
uint32_t tok_byte_cp(uint8_t b);
/* Inverse for decoding: the byte of codepoint cp, or -1 when cp is not a mapped byte. */
int tok_cp_byte(uint32_t cp);

#endif
