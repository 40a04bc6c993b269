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
  const char* strategy = tj_string(tj_get(v, "strategy"));
  tok->truncation_strategy = MLXC_TRUNCATE_LONGEST_FIRST;
  if (strategy && !strcmp(strategy, "OnlyFirst")) tok->truncation_strategy = MLXC_TRUNCATE_ONLY_FIRST;
  else if (strategy && !strcmp(strategy, "OnlySecond")) tok->truncation_strategy = MLXC_TRUNCATE_ONLY_SECOND;
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

/* Encodes one sequence: added tokens, normalizer, pre-tokenizer and model (no truncation, no
 * post-processor). */
static int encode_sequence(const mlxc_tokenizer* tok, const char* text, size_t length, tok_ids* out) {
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
cleanup:
  scratch_free(&sc);
  return status;
}

/* Keeps `keep` ids of e: the first ones, or the last ones when `left`. */
static void truncate_encoding(tok_encoding* e, size_t keep, bool left) {
  if (e->ids.size <= keep) return;
  if (left) {
    size_t drop = e->ids.size - keep;
    memmove(e->ids.data, e->ids.data + drop, keep * sizeof *e->ids.data);
    memmove(e->type_ids.data, e->type_ids.data + drop, keep * sizeof *e->type_ids.data);
  }
  e->ids.size = e->type_ids.size = keep;
}

/* tokenizers' truncate_encodings: shortens a (and b, when not NULL) to max_length ids in all. */
static int truncate_encodings(tok_encoding* a, tok_encoding* b, size_t max_length, int strategy, bool left) {
  size_t n1 = a->ids.size, n2 = b ? b->ids.size : 0;
  if (max_length == 0) {
    truncate_encoding(a, 0, left);
    if (b) truncate_encoding(b, 0, left);
    return 0;
  }
  if (n1 + n2 <= max_length) return 0;
  size_t to_remove = n1 + n2 - max_length;
  if (strategy == MLXC_TRUNCATE_LONGEST_FIRST) {
    if (!b) {
      truncate_encoding(a, n1 - to_remove, left);
      return 0;
    }
    /* The shorter keeps its length when the longer can give up enough; otherwise the shorter gets
     * max_length / 2 and the longer the rest (tokenizers' truncate_encodings). */
    bool swap = n1 > n2;
    size_t short_len = swap ? n2 : n1, long_len;
    if (short_len > max_length) long_len = short_len;
    else long_len = short_len > max_length - short_len ? short_len : max_length - short_len;
    if (short_len + long_len > max_length) {
      short_len = max_length / 2;
      long_len = short_len + max_length % 2;
    }
    truncate_encoding(a, swap ? long_len : short_len, left);
    truncate_encoding(b, swap ? short_len : long_len, left);
    return 0;
  }
  tok_encoding* target = strategy == MLXC_TRUNCATE_ONLY_FIRST ? a : b;
  if (!target) return tok_error("truncation: only_second needs a second sequence");
  if (target->ids.size <= to_remove)
    return tok_error("truncation: the %s sequence is too short to remove %zu tokens (%zu left after the special tokens)",
                     strategy == MLXC_TRUNCATE_ONLY_FIRST ? "first" : "second", to_remove, max_length);
  truncate_encoding(target, target->ids.size - to_remove, left);
  return 0;
}

typedef struct {
  bool add_special;
  size_t max_length; /* 0: tokenizer.json's truncation, if any */
  int strategy;
  bool left;
} encode_options;

static int encode_one(const mlxc_tokenizer* tok, const char* text, size_t length, int32_t type_id, tok_encoding* e) {
  if (encode_sequence(tok, text, length, &e->ids)) return 1;
  for (size_t i = 0; i < e->ids.size; i++)
    if (tok_ids_push(&e->type_ids, type_id)) return 1;
  return 0;
}

/* tokenizers' encode + post_process: encode each sequence, truncate (leaving room for the special
 * tokens), post-process. The result is in *out (caller frees with tok_encoding_free). */
static int encode_full(const mlxc_tokenizer* tok, const char* a, size_t a_len, const char* b, size_t b_len,
                       encode_options o, tok_encoding* out) {
  int status = 0;
  tok_encoding e[2];
  memset(e, 0, sizeof e);
  size_t n = b ? 2 : 1;
  TRY(encode_one(tok, a, a_len, 0, &e[0]));
  if (b) TRY(encode_one(tok, b, b_len, 1, &e[1]));
  size_t max_length = o.max_length;
  int strategy = o.strategy;
  bool left = o.left;
  bool truncate = max_length > 0;
  if (!truncate && tok->has_truncation) {
    truncate = true;
    max_length = tok->truncation_max;
    strategy = tok->truncation_strategy;
    left = tok->truncation_left;
  }
  if (truncate) {
    size_t added = o.add_special && tok->post_processor ? tok_post_added_count(tok->post_processor, b != NULL) : 0;
    REQUIRE(max_length >= added, "truncation: max_length %zu leaves no room for the %zu special tokens", max_length,
            added);
    TRY(truncate_encodings(&e[0], b ? &e[1] : NULL, max_length - added, strategy, left));
  }
  TRY(tok_post_process(tok->post_processor, e, n, o.add_special));
  *out = e[0];
  memset(&e[0], 0, sizeof e[0]);
cleanup:
  tok_encoding_free(&e[0]);
  tok_encoding_free(&e[1]);
  return status;
}

int mlxc_tokenizer_encode(const mlxc_tokenizer* tok, const char* text, size_t length, bool add_special_tokens,
                          int32_t** ids, size_t* n_ids) {
  if (!tok || !ids || !n_ids || (!text && length)) return tok_error("mlxc_tokenizer_encode: NULL argument");
  *ids = NULL;
  *n_ids = 0;
  tok_encoding e;
  memset(&e, 0, sizeof e);
  encode_options o = {.add_special = add_special_tokens};
  if (encode_full(tok, text ? text : "", length, NULL, 0, o, &e)) return 1;
  free(e.type_ids.data);
  if (!e.ids.data && !(e.ids.data = malloc(sizeof *e.ids.data))) return tok_error("out of memory");
  *ids = e.ids.data;
  *n_ids = e.ids.size;
  return 0;
}

mlxc_tokenizer_encode_params mlxc_tokenizer_encode_default_params(void) {
  return (mlxc_tokenizer_encode_params){.add_special_tokens = true};
}

void mlxc_tokenizer_encoding_free(mlxc_tokenizer_encoding* encoding) {
  if (!encoding) return;
  free(encoding->ids);
  free(encoding->type_ids);
  memset(encoding, 0, sizeof *encoding);
}

int mlxc_tokenizer_encode_pair(const mlxc_tokenizer* tok, const char* text, size_t length, const char* pair,
                               size_t pair_length, mlxc_tokenizer_encode_params p, mlxc_tokenizer_encoding* out) {
  if (!tok || !out || (!text && length)) return tok_error("mlxc_tokenizer_encode_pair: NULL argument");
  memset(out, 0, sizeof *out);
  if ((unsigned)p.strategy > MLXC_TRUNCATE_ONLY_SECOND) return tok_error("mlxc_tokenizer_encode_pair: bad strategy");
  tok_encoding e;
  memset(&e, 0, sizeof e);
  encode_options o = {.add_special = p.add_special_tokens, .max_length = p.max_length, .strategy = (int)p.strategy,
                      .left = p.truncation_side == MLXC_TOKENIZER_LEFT};
  if (encode_full(tok, text ? text : "", length, pair, pair ? pair_length : 0, o, &e)) return 1;
  out->n = e.ids.size;
  out->ids = e.ids.data ? e.ids.data : malloc(sizeof *out->ids);
  out->type_ids = malloc((e.ids.size + 1) * sizeof *out->type_ids);
  if (!out->ids || !out->type_ids) {
    free(e.type_ids.data);
    mlxc_tokenizer_encoding_free(out);
    return tok_error("out of memory");
  }
  for (size_t i = 0; i < e.ids.size; i++) out->type_ids[i] = (uint32_t)e.type_ids.data[i];
  free(e.type_ids.data);
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
  free(batch->type_ids);
  memset(batch, 0, sizeof *batch);
}

int mlxc_tokenizer_encode_batch_pairs(const mlxc_tokenizer* tok, const char* const* texts, const char* const* pairs,
                                      size_t n_texts, mlxc_tokenizer_batch_params p, mlxc_tokenizer_batch* out) {
  if (!tok || !out || (!texts && n_texts)) return tok_error("mlxc_tokenizer_encode_batch: NULL argument");
  memset(out, 0, sizeof *out);
  int status = 0;
  tok_encoding* rows = calloc(n_texts + 1, sizeof *rows);
  REQUIRE(rows, "out of memory");
  REQUIRE((unsigned)p.truncation_strategy <= MLXC_TRUNCATE_ONLY_SECOND, "mlxc_tokenizer_encode_batch: bad strategy");
  encode_options o = {.add_special = p.add_special_tokens, .max_length = p.max_length,
                      .strategy = (int)p.truncation_strategy, .left = p.truncation_side == MLXC_TOKENIZER_LEFT};
  size_t cols = 0;
  for (size_t r = 0; r < n_texts; r++) {
    REQUIRE(texts[r], "mlxc_tokenizer_encode_batch: text %zu is NULL", r);
    const char* second = pairs ? pairs[r] : NULL;
    TRY(encode_full(tok, texts[r], strlen(texts[r]), second, second ? strlen(second) : 0, o, &rows[r]));
    if (rows[r].ids.size > cols) cols = rows[r].ids.size;
  }
  if (p.pad && p.pad_to_max_length && p.max_length && p.max_length > cols) cols = p.max_length;
  if (p.pad_to_multiple_of && cols % p.pad_to_multiple_of)
    cols += p.pad_to_multiple_of - cols % p.pad_to_multiple_of;
  int32_t pad_id = p.pad_id;
  if (pad_id < 0) pad_id = mlxc_tokenizer_special_id(tok, MLXC_TOKEN_PAD);
  if (pad_id < 0) pad_id = 0;
  out->n_rows = n_texts;
  out->n_cols = cols;
  out->ids = malloc((n_texts * cols + 1) * sizeof *out->ids);
  out->attention_mask = calloc(n_texts * cols + 1, 1);
  out->type_ids = calloc(n_texts * cols + 1, sizeof *out->type_ids);
  out->lengths = malloc((n_texts + 1) * sizeof *out->lengths);
  REQUIRE(out->ids && out->attention_mask && out->type_ids && out->lengths, "out of memory");
  for (size_t r = 0; r < n_texts; r++) {
    size_t len = rows[r].ids.size, offset = p.padding_side == MLXC_TOKENIZER_LEFT ? cols - len : 0;
    int32_t* row = out->ids + r * cols;
    for (size_t c = 0; c < cols; c++) row[c] = pad_id;
    if (len) memcpy(row + offset, rows[r].ids.data, len * sizeof *row);
    for (size_t c = 0; c < len; c++) out->type_ids[r * cols + offset + c] = (uint32_t)rows[r].type_ids.data[c];
    memset(out->attention_mask + r * cols + offset, 1, len);
    out->lengths[r] = len;
  }
cleanup:
  for (size_t r = 0; rows && r < n_texts; r++) tok_encoding_free(&rows[r]);
  free(rows);
  if (status) mlxc_tokenizer_batch_free(out);
  return status;
}

int mlxc_tokenizer_encode_batch(const mlxc_tokenizer* tok, const char* const* texts, size_t n_texts,
                                mlxc_tokenizer_batch_params p, mlxc_tokenizer_batch* out) {
  return mlxc_tokenizer_encode_batch_pairs(tok, texts, NULL, n_texts, p, out);
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
