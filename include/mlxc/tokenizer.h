/* Tokenizers with Hugging Face's exact behaviour: tokenizer.json (BPE, WordPiece, Unigram,
 * WordLevel with their normalizers, pre-tokenizers, post-processors, decoders and added tokens),
 * GPT-2's encoder.json + vocab.bpe, and the settings of tokenizer_config.json and
 * generation_config.json.
 *
 *   mlxc_tokenizer* tok;
 *   if (mlxc_tokenizer_load(&tok, "models/Qwen3-0.6B") != 0) {
 *     fprintf(stderr, "%s\n", mlxc_last_error());
 *     return 1;
 *   }
 *   int32_t* ids;
 *   size_t n;
 *   mlxc_tokenizer_encode(tok, "Hello world", 11, true, &ids, &n);  // ids: caller frees
 *   char* text;
 *   mlxc_tokenizer_decode(tok, ids, n, false, &text, NULL);       // text: caller frees
 *   free(ids);
 *   free(text);
 *
 *   // Streaming: text comes out as ids arrive, never a broken UTF-8 sequence.
 *   mlxc_tokenizer_stream* stream;
 *   mlxc_tokenizer_stream_new(&stream, tok, true);
 *   const char* piece;
 *   size_t piece_len;
 *   mlxc_tokenizer_stream_push(stream, next_id, &piece, &piece_len);   // piece valid until next call
 *   mlxc_tokenizer_stream_free(stream);
 *   mlxc_tokenizer_free(tok);
 *
 * A loaded tokenizer is immutable and may be used from several threads at once (the BPE word
 * cache inside it is locked); a stream belongs to one thread. Every function that can fail
 * returns 0 on success and non-zero with a message readable through mlxc_last_error().
 */
#ifndef MLXC_TOKENIZER_H
#define MLXC_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mlxc_tokenizer mlxc_tokenizer;

/* Loads a model folder: tokenizer.json, or GPT-2's encoder.json + vocab.bpe when there is no
 * tokenizer.json; then tokenizer_config.json and generation_config.json when present. A path to
 * a file is read as GGUF (mlxc_tokenizer_load_gguf).
 * *out is set to a new tokenizer (free with mlxc_tokenizer_free) or NULL on failure. */
int mlxc_tokenizer_load(mlxc_tokenizer** out, const char* dir);

/* Loads one tokenizer.json file (no config files). */
int mlxc_tokenizer_load_file(mlxc_tokenizer** out, const char* tokenizer_json_path);

/* Loads tokenizer.json content held in memory; `name` is used in error messages. */
int mlxc_tokenizer_load_json(mlxc_tokenizer** out, const char* json, size_t length, const char* name);

/* Loads GPT-2's encoder.json (token -> id) and vocab.bpe (merges) as a byte-level BPE with the
 * GPT-2 pattern and <|endoftext|> as a special token, as tokenizers' GPT-2 tokenizer.json. */
int mlxc_tokenizer_load_gpt2(mlxc_tokenizer** out, const char* encoder_json_path, const char* vocab_bpe_path);

/* Loads the tokenizer stored in a GGUF file's metadata (llama.cpp's tokenizer.ggml.* keys: model
 * "gpt2" with pre "default", "gpt-2", "llama-bpe" or "qwen2", or model "llama" for SentencePiece
 * BPE), with its special tokens, add_bos/add_eos and chat template. The tensors are not read. */
int mlxc_tokenizer_load_gguf(mlxc_tokenizer** out, const char* gguf_path);

/* Reads tokenizer_config.json (special tokens, add_bos_token/add_eos_token, chat_template) into
 * a loaded tokenizer. Values read replace earlier ones. */
int mlxc_tokenizer_load_config(mlxc_tokenizer* tok, const char* tokenizer_config_path);

/* Reads eos_token_id (an int or a list) from generation_config.json. */
int mlxc_tokenizer_load_generation_config(mlxc_tokenizer* tok, const char* generation_config_path);

void mlxc_tokenizer_free(mlxc_tokenizer* tok);

/* Encodes `length` bytes of UTF-8 text (invalid UTF-8 is an error). With add_special_tokens the
 * post-processor adds its tokens (BOS, CLS/SEP...); special tokens written in the text are
 * recognised either way. *ids is a malloc'd array the caller frees (non-NULL even when empty). */
int mlxc_tokenizer_encode(const mlxc_tokenizer* tok, const char* text, size_t length,
                          bool add_special_tokens, int32_t** ids, size_t* n_ids);

/* Decodes ids to text; unknown ids are skipped. *text is malloc'd, NUL-terminated and valid UTF-8,
 * the caller frees it; *length may be NULL. */
int mlxc_tokenizer_decode(const mlxc_tokenizer* tok, const int32_t* ids, size_t n_ids,
                          bool skip_special_tokens, char** text, size_t* length);

/* ---- Sentence pairs, truncation and type ids */

typedef enum { MLXC_TOKENIZER_RIGHT = 0, MLXC_TOKENIZER_LEFT = 1 } mlxc_tokenizer_side;

/* How a pair is shortened to max_length, as Hugging Face's TruncationStrategy: longest_first takes
 * tokens from the longer sequence (both end up near max_length / 2 when both are long);
 * only_first / only_second shorten one sequence and fail when it is too short. */
typedef enum {
  MLXC_TRUNCATE_LONGEST_FIRST = 0,
  MLXC_TRUNCATE_ONLY_FIRST = 1,
  MLXC_TRUNCATE_ONLY_SECOND = 2
} mlxc_tokenizer_truncation;

typedef struct {
  bool add_special_tokens;              /* default true */
  size_t max_length;                    /* 0: only tokenizer.json's own truncation, if any */
  mlxc_tokenizer_truncation strategy;   /* default longest_first */
  mlxc_tokenizer_side truncation_side;  /* default right: keep the start */
} mlxc_tokenizer_encode_params;

typedef struct {
  size_t n;
  int32_t* ids;
  uint32_t* type_ids; /* 0 for the first sequence, 1 for the second, as the post-processor sets them */
} mlxc_tokenizer_encoding;

mlxc_tokenizer_encode_params mlxc_tokenizer_encode_default_params(void);

/* Encodes text, or the pair (text, pair) when pair is not NULL, exactly as tokenizers'
 * encode(text, pair): each sequence is encoded, truncated to max_length minus the special tokens
 * the post-processor adds, then the post-processor joins them (TemplateProcessing's pair template,
 * BertProcessing's [CLS] A [SEP] B [SEP], RobertaProcessing's <s> A </s></s> B </s>) and sets the
 * type ids. *out owns its arrays (non-NULL even when empty); release with
 * mlxc_tokenizer_encoding_free. */
int mlxc_tokenizer_encode_pair(const mlxc_tokenizer* tok, const char* text, size_t length, const char* pair,
                               size_t pair_length, mlxc_tokenizer_encode_params params,
                               mlxc_tokenizer_encoding* out);
void mlxc_tokenizer_encoding_free(mlxc_tokenizer_encoding* encoding);

/* ---- Batches with padding and truncation */

typedef struct {
  bool add_special_tokens;          /* default true */
  size_t max_length;                /* truncate longer sequences to this many ids; 0 = no limit */
  mlxc_tokenizer_side truncation_side; /* default right: keep the start */
  bool pad;                         /* pad to the longest sequence (or to max_length when pad_to_max_length) */
  bool pad_to_max_length;
  size_t pad_to_multiple_of;        /* 0 = none */
  mlxc_tokenizer_side padding_side; /* default right */
  int32_t pad_id;                   /* -1 = the pad token of tokenizer_config.json, else 0 */
  mlxc_tokenizer_truncation truncation_strategy; /* for pairs; default longest_first */
} mlxc_tokenizer_batch_params;

typedef struct {
  size_t n_rows, n_cols;
  int32_t* ids;           /* (n_rows, n_cols), row-major */
  uint8_t* attention_mask; /* (n_rows, n_cols): 1 for real tokens, 0 for padding */
  size_t* lengths;        /* (n_rows,): real tokens per row */
  uint32_t* type_ids;     /* (n_rows, n_cols): 0 / 1 for the first / second sequence, 0 for padding */
} mlxc_tokenizer_batch;

mlxc_tokenizer_batch_params mlxc_tokenizer_batch_default_params(void);

/* Encodes n_texts NUL-terminated strings. Truncation to max_length keeps the special tokens (as
 * tokenizers' enable_truncation). Without padding rows keep their own lengths and n_cols is the
 * longest; the rest of a shorter row is filled with the pad id and mask 0. *out owns its arrays;
 * release them with mlxc_tokenizer_batch_free. */
int mlxc_tokenizer_encode_batch(const mlxc_tokenizer* tok, const char* const* texts, size_t n_texts,
                                mlxc_tokenizer_batch_params params, mlxc_tokenizer_batch* out);
/* The same for pairs: row i encodes (texts[i], pairs[i]); pairs may be NULL, or hold NULL entries,
 * for rows without a second sequence. */
int mlxc_tokenizer_encode_batch_pairs(const mlxc_tokenizer* tok, const char* const* texts,
                                      const char* const* pairs, size_t n_texts,
                                      mlxc_tokenizer_batch_params params, mlxc_tokenizer_batch* out);
void mlxc_tokenizer_batch_free(mlxc_tokenizer_batch* batch);

/* ---- Vocabulary */

/* 1 + the largest id of the model or of an added token. */
size_t mlxc_tokenizer_vocab_size(const mlxc_tokenizer* tok);
/* The id of a token string (added tokens first, then the model), or -1. */
int32_t mlxc_tokenizer_token_to_id(const mlxc_tokenizer* tok, const char* token);
/* The token string of an id (owned by the tokenizer), or NULL. */
const char* mlxc_tokenizer_id_to_token(const mlxc_tokenizer* tok, int32_t id);
bool mlxc_tokenizer_is_special(const mlxc_tokenizer* tok, int32_t id);

/* ---- Settings from tokenizer_config.json and generation_config.json */

typedef enum { MLXC_TOKEN_BOS, MLXC_TOKEN_EOS, MLXC_TOKEN_PAD, MLXC_TOKEN_UNK } mlxc_tokenizer_special_kind;

/* The special token's text (owned by the tokenizer), or NULL when not configured. */
const char* mlxc_tokenizer_special_token(const mlxc_tokenizer* tok, mlxc_tokenizer_special_kind kind);
/* Its id, or -1. */
int32_t mlxc_tokenizer_special_id(const mlxc_tokenizer* tok, mlxc_tokenizer_special_kind kind);
/* add_bos_token / add_eos_token of tokenizer_config.json (false when absent). */
bool mlxc_tokenizer_add_bos(const mlxc_tokenizer* tok);
bool mlxc_tokenizer_add_eos(const mlxc_tokenizer* tok);
/* End-of-sequence ids: generation_config.json's eos_token_id when given, else the eos token's id.
 * Returns the count; *ids (may be NULL) points into the tokenizer. */
size_t mlxc_tokenizer_eos_ids(const mlxc_tokenizer* tok, const int32_t** ids);
/* The chat template called `name` (NULL or "default" for the default one), or NULL. A string
 * chat_template is the default; a list of {name, template} is kept whole. */
const char* mlxc_tokenizer_chat_template(const mlxc_tokenizer* tok, const char* name);
size_t mlxc_tokenizer_chat_template_count(const mlxc_tokenizer* tok);
/* The name of the i-th template (owned by the tokenizer), or NULL when out of range. */
const char* mlxc_tokenizer_chat_template_name(const mlxc_tokenizer* tok, size_t i);

/* ---- Streaming detokenizer */

typedef struct mlxc_tokenizer_stream mlxc_tokenizer_stream;

/* The stream keeps a pointer to tok, which must outlive it. */
int mlxc_tokenizer_stream_new(mlxc_tokenizer_stream** out, const mlxc_tokenizer* tok, bool skip_special_tokens);
/* Adds one id; *text receives the new text that is now final (possibly empty), valid UTF-8,
 * owned by the stream and valid until the next call. */
int mlxc_tokenizer_stream_push(mlxc_tokenizer_stream* stream, int32_t id, const char** text, size_t* length);
/* Ends the stream: *text receives what was held back (an incomplete character becomes U+FFFD). */
int mlxc_tokenizer_stream_finish(mlxc_tokenizer_stream* stream, const char** text, size_t* length);
void mlxc_tokenizer_stream_free(mlxc_tokenizer_stream* stream);

#ifdef __cplusplus
}
#endif

#endif
