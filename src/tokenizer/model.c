/* Loading the "model" section of tokenizer.json (BPE, WordPiece, Unigram, WordLevel) and what the
 * four models share: the vocabulary in both directions, the unknown token, dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

void tok_model_free(tok_model* m) {
  if (!m) return;
  tok_strmap_free(&m->vocab);
  free(m->id_to_token);
  free(m->id_to_len);
  tok_pairmap_free(&m->merges);
  free(m->continuing_subword_prefix);
  free(m->end_of_word_suffix);
  if (m->cache) {
    pthread_mutex_destroy(&m->cache->lock);
    tok_strmap_free(&m->cache->words);
    free(m->cache->ids.data);
    free(m->cache);
  }
  free(m->scores);
  tok_pairmap_free(&m->trie);
  free(m);
}

int tok_model_index_vocab(tok_model* m) {
  size_t n = 0;
  for (size_t e = 0; e < m->vocab.count; e++) {
    int32_t id = m->vocab.values[e];
    if (id < 0) return tok_error("negative token id %d", id);
    if ((size_t)id + 1 > n) n = (size_t)id + 1;
  }
  m->n_ids = n;
  m->id_to_token = calloc(n + 1, sizeof *m->id_to_token);
  m->id_to_len = calloc(n + 1, sizeof *m->id_to_len);
  if (!m->id_to_token || !m->id_to_len) return tok_error("out of memory (vocabulary)");
  for (size_t e = 0; e < m->vocab.count; e++) {
    int32_t id = m->vocab.values[e];
    m->id_to_token[id] = m->vocab.arena + m->vocab.key_offset[e];
    m->id_to_len[id] = m->vocab.key_len[e];
  }
  for (int b = 0; b < 256; b++) {
    char name[8];
    snprintf(name, sizeof name, "<0x%02X>", b);
    if (!tok_strmap_get(&m->vocab, name, 6, &m->byte_ids[b])) m->byte_ids[b] = -1;
  }
  return 0;
}

static int read_object_vocab(tok_model* m, const tj_value* vocab) {
  if (!vocab || vocab->type != TJ_OBJECT) return tok_error("model.vocab must be an object of token: id");
  if (tok_strmap_init(&m->vocab, vocab->len)) return 1;
  for (uint32_t i = 0; i < vocab->len; i++) {
    const tj_member* e = &vocab->u.members[i];
    if (e->value.type != TJ_INT || e->value.u.i < 0 || e->value.u.i > INT32_MAX)
      return tok_error("model.vocab[\"%.*s\"] must be a non-negative integer id", (int)e->key_len, e->key);
    if (tok_strmap_put(&m->vocab, e->key, e->key_len, (int32_t)e->value.u.i)) return 1;
  }
  return tok_model_index_vocab(m);
}

static char* optional_string(const tj_value* v, bool* failed) {
  const char* s = tj_string(v);
  if (!s) return NULL;
  char* out = tok_strndup(s, v->len);
  if (!out) *failed = true;
  return out;
}

static int resolve_unk(tok_model* m, const tj_value* unk) {
  m->unk_id = -1;
  const char* s = tj_string(unk);
  if (s) tok_strmap_get(&m->vocab, s, unk->len, &m->unk_id);
  return 0;
}

static int load_bpe(tok_model* m, const tj_value* v) {
  int status = 0;
  bool failed = false;
  TRY(read_object_vocab(m, tj_get(v, "vocab")));
  m->continuing_subword_prefix = optional_string(tj_get(v, "continuing_subword_prefix"), &failed);
  m->end_of_word_suffix = optional_string(tj_get(v, "end_of_word_suffix"), &failed);
  REQUIRE(!failed, "out of memory");
  m->fuse_unk = tj_bool(tj_get(v, "fuse_unk"), false);
  m->byte_fallback = tj_bool(tj_get(v, "byte_fallback"), false);
  m->ignore_merges = tj_bool(tj_get(v, "ignore_merges"), false);
  const tj_value* dropout = tj_get(v, "dropout");
  REQUIRE(tj_is_null(dropout) || (dropout->type == TJ_REAL && dropout->u.d == 0.0) ||
              (dropout->type == TJ_INT && dropout->u.i == 0),
          "BPE dropout is not supported (encoding would not be deterministic)");
  TRY(resolve_unk(m, tj_get(v, "unk_token")));
  const tj_value* merges = tj_get(v, "merges");
  REQUIRE(merges && merges->type == TJ_ARRAY, "model.merges must be a list");
  TRY(tok_pairmap_init(&m->merges, merges->len));
  uint32_t rank = 0;
  for (uint32_t i = 0; i < merges->len; i++) {
    const tj_value* e = &merges->u.items[i];
    if (e->type == TJ_STRING) {
      if (e->len >= 8 && !memcmp(e->u.s, "#version", 8)) continue;
      const char* space = memchr(e->u.s, ' ', e->len);
      REQUIRE(space && !memchr(space + 1, ' ', e->len - (size_t)(space + 1 - e->u.s)),
              "model.merges[%u]: expected two tokens separated by one space", i);
      size_t left = (size_t)(space - e->u.s);
      TRY(tok_bpe_add_merge(m, e->u.s, left, space + 1, e->len - left - 1, rank));
    } else if (e->type == TJ_ARRAY && e->len == 2 && e->u.items[0].type == TJ_STRING &&
               e->u.items[1].type == TJ_STRING) {
      TRY(tok_bpe_add_merge(m, e->u.items[0].u.s, e->u.items[0].len, e->u.items[1].u.s,
                            e->u.items[1].len, rank));
    } else {
      REQUIRE(0, "model.merges[%u]: expected \"a b\" or [\"a\", \"b\"]", i);
    }
    rank++;
  }
  TRY(tok_bpe_finish(m));
cleanup:
  return status;
}

static int load_wordpiece(tok_model* m, const tj_value* v) {
  int status = 0;
  bool failed = false;
  TRY(read_object_vocab(m, tj_get(v, "vocab")));
  TRY(resolve_unk(m, tj_get(v, "unk_token")));
  const tj_value* prefix = tj_get(v, "continuing_subword_prefix");
  m->continuing_subword_prefix = prefix ? optional_string(prefix, &failed) : tok_strndup("##", 2);
  REQUIRE(!failed && m->continuing_subword_prefix, "out of memory");
  const tj_value* max = tj_get(v, "max_input_chars_per_word");
  m->max_input_chars_per_word = max && max->type == TJ_INT && max->u.i > 0 ? (size_t)max->u.i : 100;
cleanup:
  return status;
}

static int load_wordlevel(tok_model* m, const tj_value* v) {
  int status = 0;
  TRY(read_object_vocab(m, tj_get(v, "vocab")));
  TRY(resolve_unk(m, tj_get(v, "unk_token")));
cleanup:
  return status;
}

static int load_unigram(tok_model* m, const tj_value* v) {
  int status = 0;
  const tj_value* vocab = tj_get(v, "vocab");
  REQUIRE(vocab && vocab->type == TJ_ARRAY, "Unigram model.vocab must be a list of [piece, score]");
  TRY(tok_strmap_init(&m->vocab, vocab->len));
  m->scores = malloc((vocab->len + 1) * sizeof *m->scores);
  REQUIRE(m->scores, "out of memory");
  for (uint32_t i = 0; i < vocab->len; i++) {
    const tj_value* e = &vocab->u.items[i];
    REQUIRE(e->type == TJ_ARRAY && e->len == 2 && e->u.items[0].type == TJ_STRING &&
                (e->u.items[1].type == TJ_REAL || e->u.items[1].type == TJ_INT),
            "Unigram model.vocab[%u] must be [piece, score]", i);
    const tj_value* piece = &e->u.items[0];
    TRY(tok_strmap_put(&m->vocab, piece->u.s, piece->len, (int32_t)i)); /* the last duplicate wins */
    m->scores[i] = e->u.items[1].type == TJ_REAL ? e->u.items[1].u.d : (double)e->u.items[1].u.i;
  }
  TRY(tok_model_index_vocab(m));
  m->n_ids = vocab->len;
  const tj_value* unk = tj_get(v, "unk_id");
  m->unk_id = -1;
  if (unk && unk->type == TJ_INT) {
    REQUIRE(unk->u.i >= 0 && (uint64_t)unk->u.i < vocab->len, "Unigram unk_id out of range");
    m->unk_id = (int32_t)unk->u.i;
  }
  m->byte_fallback = tj_bool(tj_get(v, "byte_fallback"), false);
  m->fuse_unk = true;
  TRY(tok_unigram_build(m));
cleanup:
  return status;
}

int tok_model_from_json(tok_model** out, const tj_value* v) {
  *out = NULL;
  int status = 0;
  tok_model* m = calloc(1, sizeof *m);
  REQUIRE(m, "out of memory");
  REQUIRE(v && v->type == TJ_OBJECT, "tokenizer.json has no \"model\" object");
  const char* type = tj_string(tj_get(v, "type"));
  if (!type) {
    /* Old files omit the type; tokenizers then guesses from the fields. */
    if (tj_get(v, "merges")) type = "BPE";
    else if (tj_get(v, "vocab") && tj_get(v, "vocab")->type == TJ_ARRAY) type = "Unigram";
    else if (tj_get(v, "continuing_subword_prefix") || tj_get(v, "max_input_chars_per_word")) type = "WordPiece";
    else type = "WordLevel";
  }
  if (!strcmp(type, "BPE")) {
    m->type = TOK_MODEL_BPE;
    TRY(load_bpe(m, v));
  } else if (!strcmp(type, "WordPiece")) {
    m->type = TOK_MODEL_WORDPIECE;
    TRY(load_wordpiece(m, v));
  } else if (!strcmp(type, "WordLevel")) {
    m->type = TOK_MODEL_WORDLEVEL;
    TRY(load_wordlevel(m, v));
  } else if (!strcmp(type, "Unigram")) {
    m->type = TOK_MODEL_UNIGRAM;
    TRY(load_unigram(m, v));
  } else {
    REQUIRE(0, "unsupported model type \"%s\"", type);
  }
  *out = m;
  m = NULL;
cleanup:
  tok_model_free(m);
  return status;
}

int tok_model_tokenize(const tok_model* m, const char* word, size_t n, tok_ids* out) {
  switch (m->type) {
    case TOK_MODEL_BPE: return tok_bpe_tokenize(m, word, n, out);
    case TOK_MODEL_WORDPIECE: return tok_wordpiece_tokenize(m, word, n, out);
    case TOK_MODEL_UNIGRAM: return tok_unigram_tokenize(m, word, n, out);
    case TOK_MODEL_WORDLEVEL: return tok_wordlevel_tokenize(m, word, n, out);
  }
  return tok_error("unknown model");
}

int tok_wordlevel_tokenize(const tok_model* m, const char* word, size_t n, tok_ids* out) {
  int32_t id;
  if (tok_strmap_get(&m->vocab, word, n, &id)) return tok_ids_push(out, id);
  if (m->unk_id < 0) return tok_error("WordLevel: \"%.*s\" is not in the vocabulary and there is no unk_token", (int)n, word);
  return tok_ids_push(out, m->unk_id);
}
