/* GPT-2's original files: encoder.json (token -> id) and vocab.bpe (one merge per line), loaded
 * as the byte-level BPE that tokenizers builds from them. */
#include <stdlib.h>
#include <string.h>

#include "mlxc/tokenizer.h"
#include "tokenizer/internal.h"

static int read_merges(tok_model* m, const char* text, size_t n) {
  uint32_t rank = 0;
  size_t line = 0;
  for (size_t i = 0; i < n;) {
    const char* nl = memchr(text + i, '\n', n - i);
    size_t end = nl ? (size_t)(nl - text) : n, len = end - i;
    line++;
    if (len && text[i + len - 1] == '\r') len--;
    const char* s = text + i;
    i = end + 1;
    if (len == 0 || (len >= 8 && !memcmp(s, "#version", 8))) continue;
    const char* space = memchr(s, ' ', len);
    if (!space || memchr(space + 1, ' ', len - (size_t)(space + 1 - s)))
      return tok_error("line %zu: expected two tokens separated by one space", line);
    size_t left = (size_t)(space - s);
    if (tok_bpe_add_merge(m, s, left, space + 1, len - left - 1, rank++)) return 1;
  }
  return 0;
}

static int add_endoftext(mlxc_tokenizer* tok) {
  tok->added.tokens = calloc(1, sizeof *tok->added.tokens);
  if (!tok->added.tokens) return tok_error("out of memory");
  tok_added_token* t = &tok->added.tokens[0];
  t->content = tok_strndup("<|endoftext|>", 13);
  if (!t->content) return tok_error("out of memory");
  tok->added.count = 1;
  t->length = 13;
  t->special = true;
  t->normalized = true;
  t->id = (int32_t)tok->model->n_ids;
  return 0;
}

int mlxc_tokenizer_load_gpt2(mlxc_tokenizer** out, const char* encoder_path, const char* vocab_path) {
  if (!out) return tok_error("mlxc_tokenizer_load_gpt2: out is NULL");
  *out = NULL;
  if (!encoder_path || !vocab_path) return tok_error("mlxc_tokenizer_load_gpt2: NULL path");
  int status = 0;
  char *encoder = NULL, *merges = NULL;
  size_t encoder_len, merges_len;
  tj_document doc = {0};
  mlxc_tokenizer* tok = calloc(1, sizeof *tok);
  REQUIRE(tok, "out of memory");
  TRY(tok_read_file(encoder_path, &encoder, &encoder_len));
  TRY(tok_read_file(vocab_path, &merges, &merges_len));
  TRY(tj_parse(&doc, encoder, encoder_len, encoder_path));
  tok_error_set_file(encoder_path);
  REQUIRE(doc.root.type == TJ_OBJECT, "expected an object of token: id");
  tok->model = calloc(1, sizeof *tok->model);
  REQUIRE(tok->model, "out of memory");
  tok_model* m = tok->model;
  m->type = TOK_MODEL_BPE;
  m->unk_id = -1;
  TRY(tok_strmap_init(&m->vocab, doc.root.len));
  for (uint32_t i = 0; i < doc.root.len; i++) {
    const tj_member* e = &doc.root.u.members[i];
    REQUIRE(e->value.type == TJ_INT && e->value.u.i >= 0 && e->value.u.i <= INT32_MAX,
            "\"%.*s\" must map to a non-negative integer id", (int)e->key_len, e->key);
    TRY(tok_strmap_put(&m->vocab, e->key, e->key_len, (int32_t)e->value.u.i));
  }
  TRY(tok_model_index_vocab(m));
  tok_error_set_file(vocab_path);
  TRY(tok_pairmap_init(&m->merges, 65536));
  TRY(read_merges(m, merges, merges_len));
  TRY(tok_bpe_finish(m));
  tok_error_set_file(NULL);
  tok->pre_tokenizer = calloc(1, sizeof *tok->pre_tokenizer);
  tok->decoder = calloc(1, sizeof *tok->decoder);
  REQUIRE(tok->pre_tokenizer && tok->decoder, "out of memory");
  tok->pre_tokenizer->type = TOK_PRE_BYTE_LEVEL;
  tok->pre_tokenizer->use_regex = true;
  TRY(tok_byte_level_regex(&tok->pre_tokenizer->regex));
  tok->decoder->type = TOK_DEC_BYTE_LEVEL;
  TRY(add_endoftext(tok));
  TRY(tok_finish(tok));
  *out = tok;
  tok = NULL;
cleanup:
  tok_error_set_file(NULL);
  tj_free(&doc);
  free(encoder);
  free(merges);
  mlxc_tokenizer_free(tok);
  return status;
}
