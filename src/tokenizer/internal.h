/* Internal types of the tokenizer: the pipeline stages (normalizer, pre-tokenizer, model,
 * post-processor, decoder) as tagged structs, the hash maps they share, and helpers. */
#ifndef MLXC_TOKENIZER_INTERNAL_H
#define MLXC_TOKENIZER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/strbuf.h"

/* Reports a failure like util_error, prefixed with the file being loaded on this thread (set by
 * the loaders with tok_error_set_file), so that messages name the file and the place. */
int tok_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void tok_error_set_file(const char* name);
#undef REQUIRE
#define REQUIRE(cond, ...)                 \
  do {                                     \
    if (!(cond)) {                         \
      status = tok_error(__VA_ARGS__);     \
      goto cleanup;                        \
    }                                      \
  } while (0)

/* ---- JSON (json.c): a small arena-backed DOM that keeps key order and tells ints from reals. */

typedef enum { TJ_NULL, TJ_FALSE, TJ_TRUE, TJ_INT, TJ_REAL, TJ_STRING, TJ_ARRAY, TJ_OBJECT } tj_type;
typedef struct tj_value tj_value;
typedef struct tj_member tj_member;
struct tj_value {
  uint32_t type;
  uint32_t len; /* bytes of a string, items of an array, members of an object */
  union {
    int64_t i;
    double d;
    char* s; /* NUL-terminated; may hold NULs inside (use len) */
    tj_value* items;
    tj_member* members;
  } u;
};
struct tj_member {
  char* key;
  uint32_t key_len;
  tj_value value;
};
typedef struct tj_arena tj_arena;
typedef struct {
  tj_value root;
  tj_arena* arena;
} tj_document;

/* Parses `text`; on failure reports "<name>: line L column C: why" and returns non-zero. */
int tj_parse(tj_document* doc, const char* text, size_t length, const char* name);
void tj_free(tj_document* doc);
/* Reads a whole file (caller frees *data). */
int tok_read_file(const char* path, char** data, size_t* length);
const tj_value* tj_get(const tj_value* object, const char* key); /* NULL when absent or not an object */
bool tj_is_null(const tj_value* v); /* true for NULL or JSON null */
const char* tj_string(const tj_value* v); /* NULL unless a string */
bool tj_bool(const tj_value* v, bool fallback);

/* ---- Hash maps (hashmap.c) */

uint64_t tok_hash(const void* data, size_t n);

/* String -> int32 map, keys copied into an arena. Insertion order is kept (entry index). */
typedef struct {
  char* arena;
  size_t arena_len, arena_cap;
  size_t* key_offset;
  uint32_t* key_len;
  int32_t* values;
  uint32_t* hashes;
  size_t count, entry_cap;
  int32_t* slots; /* entry index or -1 */
  size_t slot_mask;
} tok_strmap;
int tok_strmap_init(tok_strmap* m, size_t expected);
void tok_strmap_free(tok_strmap* m);
void tok_strmap_clear(tok_strmap* m);
/* Inserts or overwrites. Returns non-zero on allocation failure (reported). */
int tok_strmap_put(tok_strmap* m, const char* key, size_t n, int32_t value);
bool tok_strmap_get(const tok_strmap* m, const char* key, size_t n, int32_t* value);
static inline const char* tok_strmap_key(const tok_strmap* m, size_t entry) {
  return m->arena + m->key_offset[entry];
}

/* uint64 -> (uint32 a, uint32 b) map used for merge ranks keyed by a pair of ids and for tries. */
typedef struct {
  uint64_t* keys; /* UINT64_MAX = empty */
  uint32_t* a;
  uint32_t* b;
  size_t count, mask;
} tok_pairmap;
int tok_pairmap_init(tok_pairmap* m, size_t expected);
void tok_pairmap_free(tok_pairmap* m);
int tok_pairmap_put(tok_pairmap* m, uint64_t key, uint32_t a, uint32_t b);
static inline bool tok_pairmap_get(const tok_pairmap* m, uint64_t key, uint32_t* a, uint32_t* b) {
  if (!m->keys) return false;
  uint64_t h = key * 0x9E3779B97F4A7C15ull;
  size_t i = (size_t)(h >> 32) & m->mask;
  for (;;) {
    uint64_t k = m->keys[i];
    if (k == key) {
      *a = m->a[i];
      if (b) *b = m->b[i];
      return true;
    }
    if (k == UINT64_MAX) return false;
    i = (i + 1) & m->mask;
  }
}

/* ---- Growable vectors */

typedef struct {
  int32_t* data;
  size_t size, cap;
} tok_ids;
int tok_ids_push(tok_ids* v, int32_t id);
int tok_ids_append(tok_ids* v, const int32_t* ids, size_t n);

/* A list of strings stored in one buffer: pieces of text during pre-tokenization and tokens
 * during decoding. `flags` carries TOK_PIECE_AT_START for the piece that begins the input. */
enum { TOK_PIECE_AT_START = 1 };
typedef struct {
  char* text;
  size_t text_len, text_cap;
  size_t* offset;
  size_t* length;
  uint8_t* flags;
  size_t count, cap;
} tok_pieces;
int tok_pieces_push(tok_pieces* p, const char* s, size_t n, uint8_t flags);
/* Appends an empty piece that the caller fills with tok_pieces_extend. */
int tok_pieces_begin(tok_pieces* p, uint8_t flags);
int tok_pieces_extend(tok_pieces* p, const char* s, size_t n);
void tok_pieces_reset(tok_pieces* p);
void tok_pieces_free(tok_pieces* p);
static inline const char* tok_piece(const tok_pieces* p, size_t i) { return p->text + p->offset[i]; }

/* ---- Unicode helpers (unicode.c) */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
size_t tok_utf8_valid_prefix(const uint8_t* s, size_t n);
bool tok_utf8_valid(const char* s, size_t n);
/* Decodes one code point of valid UTF-8; returns its byte length. */
size_t tok_utf8_decode(const char* s, int32_t* cp);
size_t tok_utf8_encode(int32_t cp, char* out);
/* Appends bytes as UTF-8 the way Rust's String::from_utf8_lossy does (maximal subparts). */
void tok_append_lossy(strbuf* sb, const char* s, size_t n);
bool tok_is_whitespace(int32_t cp);   /* Rust char::is_whitespace */
bool tok_is_word_char(int32_t cp);    /* what \w matches in Rust's regex crate */
bool tok_is_numeric(int32_t cp);      /* Rust char::is_numeric */
bool tok_is_punctuation(int32_t cp);  /* ASCII punctuation or Unicode P* */
bool tok_is_control(int32_t cp);      /* Unicode Cc */
bool tok_is_combining_mark(int32_t cp); /* General_Category Mark (Mn, Mc, Me): StripAccents */
bool tok_is_mark_nonspacing(int32_t cp); /* Mn only: BertNormalizer's strip_accents */
bool tok_is_chinese(int32_t cp);
/* The GPT-2 byte <-> character tables. */
extern const char* const tok_byte_to_utf8[256];
extern const uint8_t tok_byte_to_utf8_len[256];
int tok_utf8_to_byte(int32_t cp); /* -1 when the character is not in the table */
void tok_byte_level_init(void); /* fills tok_byte_to_utf8; called by the loaders */

/* ---- Regular expressions (regex.c): PCRE2 with UTF and UCP, JIT when available. */

typedef struct tok_regex tok_regex;
/* Compiles an Oniguruma-style pattern as tokenizers uses it; `literal` escapes it first. */
int tok_regex_compile(tok_regex** out, const char* pattern, size_t n, bool literal);
void tok_regex_free(tok_regex* re);
/* Finds the next match at or after `start`; returns 1 and sets [*ms, *me) or 0 when none, <0 on
 * error. Each thread uses its own match data. */
int tok_regex_find(const tok_regex* re, const char* s, size_t n, size_t start, size_t* ms, size_t* me);

/* ---- Normalizers (normalizers.c, precompiled.c) */

typedef enum {
  TOK_NORM_NFC, TOK_NORM_NFD, TOK_NORM_NFKC, TOK_NORM_NFKD, TOK_NORM_LOWERCASE, TOK_NORM_STRIP,
  TOK_NORM_STRIP_ACCENTS, TOK_NORM_REPLACE, TOK_NORM_PREPEND, TOK_NORM_BERT, TOK_NORM_PRECOMPILED,
  TOK_NORM_BYTE_LEVEL, TOK_NORM_SEQUENCE
} tok_normalizer_type;
typedef struct tok_normalizer tok_normalizer;
struct tok_normalizer {
  tok_normalizer_type type;
  bool left, right;                  /* Strip */
  bool clean_text, handle_chinese, strip_accents, lowercase; /* BertNormalizer */
  tok_regex* pattern;                /* Replace */
  char* content;                     /* Replace content, Prepend text */
  size_t content_len;
  struct tok_precompiled* precompiled;
  tok_normalizer** children;
  size_t n_children;
};
int tok_normalizer_from_json(tok_normalizer** out, const tj_value* v);
void tok_normalizer_free(tok_normalizer* n);
/* Reads {"String": s} or {"Regex": r}. */
int tok_pattern_from_json(tok_regex** out, const tj_value* v);
/* Appends `in` with every match of `re` replaced by `content`. */
int tok_regex_replace(const tok_regex* re, const char* in, size_t len, const char* content,
                      size_t content_len, strbuf* out);
/* Normalizes in into out (out is reset first). */
int tok_normalize(const tok_normalizer* n, const char* in, size_t len, strbuf* out);
int tok_precompiled_from_base64(struct tok_precompiled** out, const char* b64, size_t n);
void tok_precompiled_free(struct tok_precompiled* p);
int tok_precompiled_normalize(const struct tok_precompiled* p, const char* in, size_t n, strbuf* out);

/* ---- Pre-tokenizers (pre_tokenizers.c) */

typedef enum {
  TOK_SPLIT_REMOVED, TOK_SPLIT_ISOLATED, TOK_SPLIT_MERGED_WITH_PREVIOUS, TOK_SPLIT_MERGED_WITH_NEXT,
  TOK_SPLIT_CONTIGUOUS
} tok_split_behavior;
typedef enum {
  TOK_PRE_BYTE_LEVEL, TOK_PRE_SPLIT, TOK_PRE_WHITESPACE, TOK_PRE_WHITESPACE_SPLIT, TOK_PRE_BERT,
  TOK_PRE_METASPACE, TOK_PRE_DIGITS, TOK_PRE_PUNCTUATION, TOK_PRE_UNICODE_SCRIPTS, TOK_PRE_SEQUENCE
} tok_pre_type;
enum { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER };
typedef struct tok_pre_tokenizer tok_pre_tokenizer;
struct tok_pre_tokenizer {
  tok_pre_type type;
  bool add_prefix_space, use_regex;  /* ByteLevel */
  tok_regex* regex;                  /* ByteLevel (GPT-2 regex), Split, Whitespace */
  tok_split_behavior behavior;       /* Split, Punctuation */
  bool invert;                       /* Split */
  bool individual_digits;            /* Digits */
  char replacement[8];               /* Metaspace */
  size_t replacement_len;
  int32_t replacement_cp;
  int prepend_scheme;
  bool split;
  tok_pre_tokenizer** children;
  size_t n_children;
};
int tok_pre_tokenizer_from_json(tok_pre_tokenizer** out, const tj_value* v);
void tok_pre_tokenizer_free(tok_pre_tokenizer* p);
/* Splits every piece of `in` into `out` (out is reset first). */
int tok_pre_tokenize(const tok_pre_tokenizer* p, const tok_pieces* in, tok_pieces* out);
int tok_byte_level_regex(tok_regex** out);
/* The script of a code point as tokenizers' UnicodeScripts sees it (0 = "Any"), from the table that
 * scripts/gen_unicode_tables.py generates (unicode_scripts_table.c). */
int tok_unicode_script(int32_t cp);
extern const char* const tok_script_names[];
extern const int tok_script_count, tok_script_han, tok_script_hiragana, tok_script_katakana;
extern const uint32_t tok_script_ranges[][3];
extern const size_t tok_script_range_count;

/* ---- Models (bpe.c, wordpiece.c, unigram.c, wordlevel.c) */

typedef enum { TOK_MODEL_BPE, TOK_MODEL_WORDPIECE, TOK_MODEL_UNIGRAM, TOK_MODEL_WORDLEVEL } tok_model_type;

/* Words already merged, shared by threads under a lock; cleared when full. */
typedef struct {
  pthread_mutex_t lock;
  tok_strmap words; /* word -> offset in ids */
  tok_ids ids;      /* per word: count, then ids */
} tok_word_cache;

typedef struct tok_model {
  tok_model_type type;
  tok_strmap vocab;    /* token -> id */
  char** id_to_token;  /* by id, NULL for gaps; points into vocab's arena */
  uint32_t* id_to_len;
  size_t n_ids;        /* 1 + largest id */
  int32_t unk_id;      /* -1 when none */
  /* BPE */
  tok_pairmap merges;  /* (left id, right id) -> (rank, merged id) */
  char* continuing_subword_prefix;
  char* end_of_word_suffix;
  bool fuse_unk, byte_fallback, ignore_merges;
  int32_t byte_ids[256]; /* <0xXX> tokens for byte fallback, -1 when absent */
  tok_word_cache* cache;
  /* WordPiece */
  size_t max_input_chars_per_word;
  /* Unigram */
  double* scores;
  double min_score;
  tok_pairmap trie; /* (node << 8 | byte) -> (child node, token id + 1 or 0) */
} tok_model;

int tok_model_from_json(tok_model** out, const tj_value* v);
void tok_model_free(tok_model* m);
/* Appends the ids of one pre-tokenized word. */
int tok_model_tokenize(const tok_model* m, const char* word, size_t n, tok_ids* out);
int tok_bpe_tokenize(const tok_model* m, const char* word, size_t n, tok_ids* out);
int tok_wordpiece_tokenize(const tok_model* m, const char* word, size_t n, tok_ids* out);
int tok_unigram_tokenize(const tok_model* m, const char* word, size_t n, tok_ids* out);
int tok_wordlevel_tokenize(const tok_model* m, const char* word, size_t n, tok_ids* out);
/* Shared by the loaders: builds vocab and id_to_token from (token, id) pairs already in vocab. */
int tok_model_index_vocab(tok_model* m);
int tok_bpe_add_merge(tok_model* m, const char* left, size_t left_len, const char* right,
                      size_t right_len, uint32_t rank);
int tok_bpe_finish(tok_model* m);
int tok_unigram_build(tok_model* m);

/* ---- Added tokens (added_tokens.c) */

typedef struct {
  char* content;
  size_t length;
  char* decoded; /* what decode writes: the normalized content when normalized (NULL = content) */
  size_t decoded_length;
  int32_t id;
  bool special, single_word, lstrip, rstrip, normalized;
} tok_added_token;

/* A byte trie over token contents for leftmost-longest matching. */
typedef struct {
  tok_pairmap edges; /* (node << 8 | byte) -> (child, token index + 1 or 0) */
  uint8_t first_byte[32];
  size_t n_nodes;
} tok_added_trie;

typedef struct {
  tok_added_token* tokens;
  size_t count;
  tok_added_trie raw, normalized;
} tok_added_vocab;

typedef struct {
  size_t start, end;
  int32_t token; /* index into tokens, or -1 for plain text */
} tok_added_split;

/* Builds both tries; normalized tokens are matched in their normalized form. */
int tok_added_vocab_build(tok_added_vocab* av, const tok_normalizer* normalizer);
void tok_added_vocab_free(tok_added_vocab* av);
/* Splits s into plain text and added tokens exactly as tokenizers' AddedVocabulary does. */
int tok_added_split_text(const tok_added_vocab* av, bool normalized, const char* s, size_t n,
                         tok_added_split** splits, size_t* n_splits, size_t* cap);

/* ---- Post-processors (post_processors.c) */

typedef enum { TOK_POST_TEMPLATE, TOK_POST_BERT, TOK_POST_ROBERTA, TOK_POST_BYTE_LEVEL, TOK_POST_SEQUENCE } tok_post_type;

/* One encoded sequence on its way through truncation and post-processing. */
typedef struct {
  tok_ids ids;
  tok_ids type_ids;
} tok_encoding;
void tok_encoding_free(tok_encoding* e);

/* A piece of a TemplateProcessing template: sequence A or B, or special token ids. */
typedef struct {
  int kind; /* 0: $A, 1: $B, 2: special tokens */
  int32_t type_id;
  tok_ids ids;
} tok_template_piece;

typedef struct tok_post_processor tok_post_processor;
struct tok_post_processor {
  tok_post_type type;
  tok_template_piece* single; /* TemplateProcessing */
  tok_template_piece* pair;   /* NULL when the file has no pair template */
  size_t n_single, n_pair;
  int32_t cls, sep;           /* BertProcessing, RobertaProcessing */
  tok_post_processor** children;
  size_t n_children;
};
int tok_post_processor_from_json(tok_post_processor** out, const tj_value* v);
void tok_post_processor_free(tok_post_processor* p);
/* Post-processes one or two encodings (n_encodings 1 or 2) as tokenizers does, leaving the merged
 * result in encodings[0] (type ids included). */
int tok_post_process(const tok_post_processor* p, tok_encoding* encodings, size_t n_encodings, bool add_special);
/* How many tokens the processor adds to a single sequence or a pair. */
size_t tok_post_added_count(const tok_post_processor* p, bool is_pair);

/* ---- Decoders (decoders.c) */

typedef enum {
  TOK_DEC_BYTE_LEVEL, TOK_DEC_METASPACE, TOK_DEC_WORDPIECE, TOK_DEC_BYTE_FALLBACK, TOK_DEC_FUSE,
  TOK_DEC_STRIP, TOK_DEC_REPLACE, TOK_DEC_CTC, TOK_DEC_BPE, TOK_DEC_SEQUENCE
} tok_decoder_type;
typedef struct tok_decoder tok_decoder;
struct tok_decoder {
  tok_decoder_type type;
  char* prefix;   /* WordPiece prefix, CTC pad token, BPE suffix */
  char* word_delimiter; /* CTC */
  bool cleanup;
  int32_t replacement_cp; /* Metaspace */
  int prepend_scheme;
  int32_t strip_cp;
  size_t strip_start, strip_stop;
  tok_regex* pattern; /* Replace */
  char* content;
  tok_decoder** children;
  size_t n_children;
};
int tok_decoder_from_json(tok_decoder** out, const tj_value* v);
void tok_decoder_free(tok_decoder* d);
/* Rewrites the token list in place (through a scratch list). */
int tok_decode_chain(const tok_decoder* d, tok_pieces* tokens);
void tok_cleanup_tokenization(strbuf* out, const char* s, size_t n);

/* ---- The tokenizer */

typedef struct {
  char* name;
  char* template_text;
} tok_chat_template;

struct mlxc_tokenizer {
  tok_normalizer* normalizer;
  tok_pre_tokenizer* pre_tokenizer;
  tok_model* model;
  tok_post_processor* post_processor;
  tok_decoder* decoder;
  tok_added_vocab added;
  tok_strmap added_by_content; /* content -> added index */
  int32_t* added_index_by_id;  /* id -> added index or -1, size n_ids */
  size_t n_ids;
  bool has_truncation, truncation_left; /* "truncation" of tokenizer.json */
  size_t truncation_max;
  int truncation_strategy;     /* mlxc_tokenizer_truncation */
  /* tokenizer_config.json / generation_config.json */
  char* special[4];  /* bos, eos, pad, unk */
  bool add_bos, add_eos;
  tok_chat_template* templates;
  size_t n_templates;
  int32_t* eos_ids;
  size_t n_eos_ids;
  int32_t eos_fallback; /* id of the configured eos token, -1 when none */
};

int tok_load_tokenizer_json(struct mlxc_tokenizer* tok, const tj_value* root);
int tok_finish(struct mlxc_tokenizer* tok);
int tok_load_gpt2_files(struct mlxc_tokenizer* tok, const char* encoder_path, const char* vocab_path);
char* tok_strndup(const char* s, size_t n);
/* Decodes ids, appending valid UTF-8 text to out. */
int tok_decode_to(const struct mlxc_tokenizer* tok, const int32_t* ids, size_t n, bool skip_special, strbuf* out);

#endif
