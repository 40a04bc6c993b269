/* The tokenizer pipeline: loading tokenizer.json into its stages, encode (added tokens, normalizer,
 * pre-tokenizer, model, post-processor), decode, batches, and vocabulary look-ups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mlxc/tokenizer.h"
#include "tokenizer/internal.h"
#include "util/error.h"

static int read_added_tokens(mlxc_tokenizer* tok, const tj_value* list) {
  if (tj_is_null(list)) return 0;
  if (list->type != TJ_ARRAY) return tok_error("\"added_tokens\" must be a list");
  tok->added.tokens = calloc(list->len + 1, sizeof *tok->added.tokens);
  if (!tok->added.tokens) return tok_error("out of memory");
  for (uint32_t i = 0; i < list->len; i++) {
    const tj_value* e = &list->u.items[i];
    const tj_value* id = tj_get(e, "id");
    const tj_value* content = tj_get(e, "content");
    if (!id || id->type != TJ_INT || id->u.i < 0 || id->u.i > INT32_MAX || !content || content->type != TJ_STRING)
      return tok_error("added_tokens[%u] needs an integer \"id\" and a string \"content\"", i);
    tok_added_token* t = &tok->added.tokens[tok->added.count];
    t->content = tok_strndup(content->u.s, content->len);
    if (!t->content) return tok_error("out of memory");
    tok->added.count++;
    t->length = content->len;
    t->id = (int32_t)id->u.i;
    t->special = tj_bool(tj_get(e, "special"), false);
    t->single_word = tj_bool(tj_get(e, "single_word"), false);
    t->lstrip = tj_bool(tj_get(e, "lstrip"), false);
    t->rstrip = tj_bool(tj_get(e, "rstrip"), false);
    t->normalized = tj_bool(tj_get(e, "normalized"), !t->special);
  }
  return 0;
}

static int read_truncation(mlxc_tokenizer* tok, const tj_value* v) {
  if (tj_is_null(v)) return 0;
  const tj_value* max = tj_get(v, "max_length");
  if (!max || max->type != TJ_INT || max->u.i < 0) return tok_error("truncation.max_length must be a non-negative integer");
  tok->truncation_max = (size_t)max->u.i;
  const char* direction = tj_string(tj_get(v, "direction"));
  tok->truncation_left = direction && !strcmp(direction, "Left");
  tok->has_truncation = true;
  return 0;
}

int tok_load_tokenizer_json(mlxc_tokenizer* tok, const tj_value* root) {
  int status = 0;
  REQUIRE(root->type == TJ_OBJECT, "tokenizer.json must hold an object");
  TRY(tok_model_from_json(&tok->model, tj_get(root, "model")));
  const tj_value* v;
  if (!tj_is_null(v = tj_get(root, "normalizer"))) TRY(tok_normalizer_from_json(&tok->normalizer, v));
  if (!tj_is_null(v = tj_get(root, "pre_tokenizer"))) TRY(tok_pre_tokenizer_from_json(&tok->pre_tokenizer, v));
  if (!tj_is_null(v = tj_get(root, "post_processor"))) TRY(tok_post_processor_from_json(&tok->post_processor, v));
  if (!tj_is_null(v = tj_get(root, "decoder"))) TRY(tok_decoder_from_json(&tok->decoder, v));
  TRY(read_added_tokens(tok, tj_get(root, "added_tokens")));
  TRY(read_truncation(tok, tj_get(root, "truncation")));
cleanup:
  return status;
}

/* Indexes added tokens by id and content and builds their tries. An added token whose content is
 * already in the model's vocabulary takes the model's id, as tokenizers' AddedVocabulary does. */
int tok_finish(mlxc_tokenizer* tok) {
  int status = 0;
  tok_model* m = tok->model;
  tok->n_ids = m->n_ids;
  tok->eos_fallback = -1;
  for (size_t i = 0; i < tok->added.count; i++) {
    tok_added_token* t = &tok->added.tokens[i];
    int32_t model_id;
    if (tok_strmap_get(&m->vocab, t->content, t->length, &model_id)) t->id = model_id;
    if ((size_t)t->id + 1 > tok->n_ids) tok->n_ids = (size_t)t->id + 1;
  }
  tok->added_index_by_id = malloc((tok->n_ids + 1) * sizeof *tok->added_index_by_id);
  REQUIRE(tok->added_index_by_id, "out of memory");
  for (size_t i = 0; i < tok->n_ids; i++) tok->added_index_by_id[i] = -1;
  TRY(tok_strmap_init(&tok->added_by_content, tok->added.count));
  for (size_t i = 0; i < tok->added.count; i++) {
    tok->added_index_by_id[tok->added.tokens[i].id] = (int32_t)i;
    TRY(tok_strmap_put(&tok->added_by_content, tok->added.tokens[i].content, tok->added.tokens[i].length, (int32_t)i));
  }
  TRY(tok_added_vocab_build(&tok->added, tok->normalizer));
cleanup:
  return status;
}

void mlxc_tokenizer_free(mlxc_tokenizer* tok) {
  if (!tok) return;
  tok_normalizer_free(tok->normalizer);
  tok_pre_tokenizer_free(tok->pre_tokenizer);
  tok_model_free(tok->model);
  tok_post_processor_free(tok->post_processor);
  tok_decoder_free(tok->decoder);
  tok_added_vocab_free(&tok->added);
  tok_strmap_free(&tok->added_by_content);
  free(tok->added_index_by_id);
  for (int i = 0; i < 4; i++) free(tok->special[i]);
  for (size_t i = 0; i < tok->n_templates; i++) {
    free(tok->templates[i].name);
    free(tok->templates[i].template_text);
  }
  free(tok->templates);
  free(tok->eos_ids);
  free(tok);
}

int mlxc_tokenizer_load_json(mlxc_tokenizer** out, const char* json, size_t length, const char* name) {
  int status = 0;
  tj_document doc = {0};
  mlxc_tokenizer* tok = NULL;
  if (!out) return tok_error("mlxc_tokenizer_load_json: out is NULL");
  *out = NULL;
  if (!json) return tok_error("mlxc_tokenizer_load_json: json is NULL");
  if (!name) name = "tokenizer.json";
  TRY(tj_parse(&doc, json, length, name));
  tok_error_set_file(name);
  tok = calloc(1, sizeof *tok);
  REQUIRE(tok, "out of memory");
  TRY(tok_load_tokenizer_json(tok, &doc.root));
  TRY(tok_finish(tok));
  *out = tok;
  tok = NULL;
cleanup:
  tok_error_set_file(NULL);
  tj_free(&doc);
  mlxc_tokenizer_free(tok);
  return status;
}

int mlxc_tokenizer_load_file(mlxc_tokenizer** out, const char* path) {
  if (!out) return tok_error("mlxc_tokenizer_load_file: out is NULL");
  *out = NULL;
  if (!path) return tok_error("mlxc_tokenizer_load_file: path is NULL");
  char* data;
  size_t length;
  if (tok_read_file(path, &data, &length)) return 1;
  int status = mlxc_tokenizer_load_json(out, data, length, path);
  free(data);
  return status;
}

static bool file_exists(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int mlxc_tokenizer_load(mlxc_tokenizer** out, const char* dir) {
  if (!out) return tok_error("mlxc_tokenizer_load: out is NULL");
  *out = NULL;
  if (!dir) return tok_error("mlxc_tokenizer_load: dir is NULL");
  int status = 0;
  mlxc_tokenizer* tok = NULL;
  size_t n = strlen(dir) + 64;
  char* a = malloc(n);
  char* b = malloc(n);
  REQUIRE(a && b, "out of memory");
  snprintf(a, n, "%s/tokenizer.json", dir);
  if (file_exists(dir)) { /* a GGUF file carries its tokenizer and settings */
    free(a);
    free(b);
    return mlxc_tokenizer_load_gguf(out, dir);
  }
  if (file_exists(a)) {
    TRY(mlxc_tokenizer_load_file(&tok, a));
  } else {
    snprintf(a, n, "%s/encoder.json", dir);
    snprintf(b, n, "%s/vocab.bpe", dir);
    REQUIRE(file_exists(a) && file_exists(b), "%s: no tokenizer.json (nor encoder.json with vocab.bpe)", dir);
    TRY(mlxc_tokenizer_load_gpt2(&tok, a, b));
  }
  snprintf(a, n, "%s/tokenizer_config.json", dir);
  if (file_exists(a)) TRY(mlxc_tokenizer_load_config(tok, a));
  snprintf(a, n, "%s/generation_config.json", dir);
  if (file_exists(a)) TRY(mlxc_tokenizer_load_generation_config(tok, a));
  *out = tok;
  tok = NULL;
cleanup:
  free(a);
  free(b);
  mlxc_tokenizer_free(tok);
  return status;
}

/* ---- Encoding */

typedef struct {
  strbuf normalized;
  tok_pieces words, pre;
  tok_added_split* raw_splits;
  tok_added_split* norm_splits;
  size_t raw_cap, norm_cap;
} encode_scratch;

static void scratch_free(encode_scratch* s) {
  strbuf_free(&s->normalized);
  tok_pieces_free(&s->words);
  tok_pieces_free(&s->pre);
  free(s->raw_splits);
  free(s->norm_splits);
}

/* Pre-tokenizes one stretch of normalized text and runs the model on each word. */
static int encode_words(const mlxc_tokenizer* tok, const char* s, size_t n, bool at_start, encode_scratch* sc,
                        tok_ids* out) {
  if (n == 0) return 0;
  if (!tok->pre_tokenizer) return tok_model_tokenize(tok->model, s, n, out);
  tok_pieces_reset(&sc->words);
  if (tok_pieces_push(&sc->words, s, n, at_start ? TOK_PIECE_AT_START : 0)) return 1;
  if (tok_pre_tokenize(tok->pre_tokenizer, &sc->words, &sc->pre)) return 1;
  for (size_t i = 0; i < sc->pre.count; i++)
    if (tok_model_tokenize(tok->model, tok_piece(&sc->pre, i), sc->pre.length[i], out)) return 1;
  return 0;
}

static int encode_ids(const mlxc_tokenizer* tok, const char* text, size_t length, bool add_special, tok_ids* out) {
  if (!tok_utf8_valid(text, length)) return tok_error("encode: the text is not valid UTF-8");
  int status = 0;
  encode_scratch sc = {0};
  size_t n_raw, n_norm;
  TRY(tok_added_split_text(&tok->added, false, text, length, &sc.raw_splits, &n_raw, &sc.raw_cap));
  for (size_t i = 0; i < n_raw; i++) {
    const tok_added_split* r = &sc.raw_splits[i];
    if (r->token >= 0) {
      TRY(tok_ids_push(out, tok->added.tokens[r->token].id));
      continue;
    }
    const char* piece = text + r->start;
    size_t piece_len = r->end - r->start;
    if (tok->normalizer) {
      TRY(tok_normalize(tok->normalizer, piece, piece_len, &sc.normalized));
      piece = sc.normalized.data;
      piece_len = sc.normalized.length;
    }
    TRY(tok_added_split_text(&tok->added, true, piece, piece_len, &sc.norm_splits, &n_norm, &sc.norm_cap));
    for (size_t k = 0; k < n_norm; k++) {
      const tok_added_split* s = &sc.norm_splits[k];
      if (s->token >= 0) TRY(tok_ids_push(out, tok->added.tokens[s->token].id));
      else TRY(encode_words(tok, piece + s->start, s->end - s->start, r->start == 0 && s->start == 0, &sc, out));
    }
  }
  if (tok->has_truncation) {
    size_t added = add_special && tok->post_processor ? tok_post_added_count(tok->post_processor) : 0;
    size_t keep = tok->truncation_max > added ? tok->truncation_max - added : 0;
    if (out->size > keep) {
      if (tok->truncation_left) memmove(out->data, out->data + (out->size - keep), keep * sizeof *out->data);
      out->size = keep;
    }
  }
  if (tok->post_processor) TRY(tok_post_process(tok->post_processor, out, add_special));
cleanup:
  scratch_free(&sc);
  return status;
}

int mlxc_tokenizer_encode(const mlxc_tokenizer* tok, const char* text, size_t length, bool add_special_tokens,
                          int32_t** ids, size_t* n_ids) {
  if (!tok || !ids || !n_ids || (!text && length)) return tok_error("mlxc_tokenizer_encode: NULL argument");
  *ids = NULL;
  *n_ids = 0;
  tok_ids out = {0};
  if (encode_ids(tok, text ? text : "", length, add_special_tokens, &out)) {
    free(out.data);
    return 1;
  }
  if (!out.data && !(out.data = malloc(sizeof *out.data))) return tok_error("out of memory");
  *ids = out.data;
  *n_ids = out.size;
  return 0;
}

/* ---- Decoding */

int tok_decode_to(const mlxc_tokenizer* tok, const int32_t* ids, size_t n, bool skip_special, strbuf* out) {
  tok_pieces tokens = {0};
  int status = 0;
  for (size_t i = 0; i < n; i++) {
    int32_t id = ids[i];
    if (id < 0 || (size_t)id >= tok->n_ids) continue;
    int32_t added = tok->added_index_by_id[id];
    if (added >= 0) {
      const tok_added_token* t = &tok->added.tokens[added];
      if (skip_special && t->special) continue;
      if (t->decoded) TRY(tok_pieces_push(&tokens, t->decoded, t->decoded_length, 0));
      else TRY(tok_pieces_push(&tokens, t->content, t->length, 0));
    } else if ((size_t)id < tok->model->n_ids && tok->model->id_to_token[id]) {
      TRY(tok_pieces_push(&tokens, tok->model->id_to_token[id], tok->model->id_to_len[id], 0));
    }
  }
  if (tok->decoder) TRY(tok_decode_chain(tok->decoder, &tokens));
  strbuf joined = {0};
  for (size_t i = 0; i < tokens.count; i++) {
    if (!tok->decoder && i > 0) strbuf_append(&joined, " ", 1);
    strbuf_append(&joined, tok_piece(&tokens, i), tokens.length[i]);
  }
  tok_append_lossy(out, joined.data ? joined.data : "", joined.length);
  strbuf_free(&joined);
  if (out->failed) status = tok_error("out of memory (decode)");
cleanup:
  tok_pieces_free(&tokens);
  return status;
}

int mlxc_tokenizer_decode(const mlxc_tokenizer* tok, const int32_t* ids, size_t n_ids, bool skip_special_tokens,
                          char** text, size_t* length) {
  if (!tok || !text || (!ids && n_ids)) return tok_error("mlxc_tokenizer_decode: NULL argument");
  *text = NULL;
  strbuf out = {0};
  if (tok_decode_to(tok, ids, n_ids, skip_special_tokens, &out)) {
    strbuf_free(&out);
    return 1;
  }
  size_t len = out.length;
  *text = strbuf_take(&out);
  if (!*text) return tok_error("out of memory (decode)");
  if (length) *length = len;
  return 0;
}

/* ---- Batches */

mlxc_tokenizer_batch_params mlxc_tokenizer_batch_default_params(void) {
  return (mlxc_tokenizer_batch_params){.add_special_tokens = true, .pad = true, .pad_id = -1};
}

void mlxc_tokenizer_batch_free(mlxc_tokenizer_batch* batch) {
  if (!batch) return;
  free(batch->ids);
  free(batch->attention_mask);
  free(batch->lengths);
  memset(batch, 0, sizeof *batch);
}

int mlxc_tokenizer_encode_batch(const mlxc_tokenizer* tok, const char* const* texts, size_t n_texts,
                                mlxc_tokenizer_batch_params p, mlxc_tokenizer_batch* out) {
  if (!tok || !out || (!texts && n_texts)) return tok_error("mlxc_tokenizer_encode_batch: NULL argument");
  memset(out, 0, sizeof *out);
  int status = 0;
  tok_ids* rows = calloc(n_texts + 1, sizeof *rows);
  REQUIRE(rows, "out of memory");
  size_t cols = 0;
  for (size_t r = 0; r < n_texts; r++) {
    REQUIRE(texts[r], "mlxc_tokenizer_encode_batch: text %zu is NULL", r);
    TRY(encode_ids(tok, texts[r], strlen(texts[r]), p.add_special_tokens, &rows[r]));
    if (p.max_length && rows[r].size > p.max_length) {
      if (p.truncation_side == MLXC_TOKENIZER_LEFT)
        memmove(rows[r].data, rows[r].data + rows[r].size - p.max_length, p.max_length * sizeof *rows[r].data);
      rows[r].size = p.max_length;
    }
    if (rows[r].size > cols) cols = rows[r].size;
  }
  if (p.pad && p.pad_to_max_length && p.max_length) cols = p.max_length;
  if (p.pad_to_multiple_of && cols % p.pad_to_multiple_of)
    cols += p.pad_to_multiple_of - cols % p.pad_to_multiple_of;
  int32_t pad_id = p.pad_id;
  if (pad_id < 0) pad_id = mlxc_tokenizer_special_id(tok, MLXC_TOKEN_PAD);
  if (pad_id < 0) pad_id = 0;
  out->n_rows = n_texts;
  out->n_cols = cols;
  out->ids = malloc((n_texts * cols + 1) * sizeof *out->ids);
  out->attention_mask = calloc(n_texts * cols + 1, 1);
  out->lengths = malloc((n_texts + 1) * sizeof *out->lengths);
  REQUIRE(out->ids && out->attention_mask && out->lengths, "out of memory");
  for (size_t r = 0; r < n_texts; r++) {
    size_t len = rows[r].size, offset = p.padding_side == MLXC_TOKENIZER_LEFT ? cols - len : 0;
    int32_t* row = out->ids + r * cols;
    for (size_t c = 0; c < cols; c++) row[c] = pad_id;
    if (len) memcpy(row + offset, rows[r].data, len * sizeof *row);
    memset(out->attention_mask + r * cols + offset, 1, len);
    out->lengths[r] = len;
  }
cleanup:
  for (size_t r = 0; rows && r < n_texts; r++) free(rows[r].data);
  free(rows);
  if (status) mlxc_tokenizer_batch_free(out);
  return status;
}

/* ---- Vocabulary */

size_t mlxc_tokenizer_vocab_size(const mlxc_tokenizer* tok) { return tok ? tok->n_ids : 0; }

int32_t mlxc_tokenizer_token_to_id(const mlxc_tokenizer* tok, const char* token) {
  if (!tok || !token) return -1;
  size_t n = strlen(token);
  int32_t v;
  if (tok_strmap_get(&tok->added_by_content, token, n, &v)) return tok->added.tokens[v].id;
  if (tok_strmap_get(&tok->model->vocab, token, n, &v)) return v;
  return -1;
}

const char* mlxc_tokenizer_id_to_token(const mlxc_tokenizer* tok, int32_t id) {
  if (!tok || id < 0 || (size_t)id >= tok->n_ids) return NULL;
  int32_t added = tok->added_index_by_id[id];
  if (added >= 0) return tok->added.tokens[added].content;
  if ((size_t)id < tok->model->n_ids) return tok->model->id_to_token[id];
  return NULL;
}

bool mlxc_tokenizer_is_special(const mlxc_tokenizer* tok, int32_t id) {
  if (!tok || id < 0 || (size_t)id >= tok->n_ids) return false;
  int32_t added = tok->added_index_by_id[id];
  return added >= 0 && tok->added.tokens[added].special;
}
