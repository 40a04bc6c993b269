/* Post-processors: the special tokens wrapped around one encoded sequence or a pair, with their
 * type ids (TemplateProcessing, BertProcessing, RobertaProcessing; ByteLevel only adjusts offsets,
 * which we do not track). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

void tok_encoding_free(tok_encoding* e) {
  free(e->ids.data);
  free(e->type_ids.data);
  memset(e, 0, sizeof *e);
}

static void free_pieces(tok_template_piece* pieces, size_t n) {
  for (size_t i = 0; pieces && i < n; i++) free(pieces[i].ids.data);
  free(pieces);
}

void tok_post_processor_free(tok_post_processor* p) {
  if (!p) return;
  free_pieces(p->single, p->n_single);
  free_pieces(p->pair, p->n_pair);
  for (size_t i = 0; i < p->n_children; i++) tok_post_processor_free(p->children[i]);
  free(p->children);
  free(p);
}

/* ["token", id] as BertProcessing and RobertaProcessing write cls and sep. */
static int token_pair(const tj_value* v, const char* what, int32_t* id) {
  if (!v || v->type != TJ_ARRAY || v->len != 2 || v->u.items[1].type != TJ_INT || v->u.items[1].u.i < 0 ||
      v->u.items[1].u.i > INT32_MAX)
    return tok_error("post_processor.%s must be [token, id]", what);
  *id = (int32_t)v->u.items[1].u.i;
  return 0;
}

static int type_id_of(const tj_value* piece, int32_t* out) {
  const tj_value* t = tj_get(piece, "type_id");
  *out = 0;
  if (!t) return 0;
  if (t->type != TJ_INT || t->u.i < 0 || t->u.i > INT32_MAX) return tok_error("TemplateProcessing: bad type_id");
  *out = (int32_t)t->u.i;
  return 0;
}

/* Reads the "single" or "pair" template: a list of {"Sequence": {id, type_id}} and
 * {"SpecialToken": {id, type_id}} whose ids come from "special_tokens". */
static int read_template(const tj_value* v, const char* which, tok_template_piece** out, size_t* n_out) {
  int status = 0;
  const tj_value* list = tj_get(v, which);
  const tj_value* specials = tj_get(v, "special_tokens");
  tok_template_piece* pieces = NULL;
  size_t n = 0;
  REQUIRE(list && list->type == TJ_ARRAY, "TemplateProcessing needs a \"%s\" list", which);
  pieces = calloc(list->len + 1, sizeof *pieces);
  REQUIRE(pieces, "out of memory");
  for (uint32_t i = 0; i < list->len; i++, n++) {
    const tj_value* item = &list->u.items[i];
    const tj_value* sequence = tj_get(item, "Sequence");
    const tj_value* special = tj_get(item, "SpecialToken");
    tok_template_piece* piece = &pieces[n];
    if (sequence) {
      const char* id = tj_string(tj_get(sequence, "id"));
      REQUIRE(id && (!strcmp(id, "A") || !strcmp(id, "B")), "TemplateProcessing.%s[%u]: sequence id must be A or B",
              which, i);
      piece->kind = id[0] == 'A' ? 0 : 1;
      TRY(type_id_of(sequence, &piece->type_id));
      continue;
    }
    const char* name = tj_string(tj_get(special, "id"));
    REQUIRE(name, "TemplateProcessing.%s[%u] must be a SpecialToken or a Sequence", which, i);
    piece->kind = 2;
    TRY(type_id_of(special, &piece->type_id));
    const tj_value* ids = tj_get(tj_get(specials, name), "ids");
    REQUIRE(ids && ids->type == TJ_ARRAY, "TemplateProcessing: special token \"%s\" is not defined", name);
    for (uint32_t k = 0; k < ids->len; k++) {
      REQUIRE(ids->u.items[k].type == TJ_INT && ids->u.items[k].u.i >= 0 && ids->u.items[k].u.i <= INT32_MAX,
              "TemplateProcessing: bad id for \"%s\"", name);
      TRY(tok_ids_push(&piece->ids, (int32_t)ids->u.items[k].u.i));
    }
  }
  *out = pieces;
  *n_out = n;
  pieces = NULL;
cleanup:
  free_pieces(pieces, n + 1);
  return status;
}

int tok_post_processor_from_json(tok_post_processor** out, const tj_value* v) {
  *out = NULL;
  int status = 0;
  const char* type = tj_string(tj_get(v, "type"));
  tok_post_processor* p = calloc(1, sizeof *p);
  REQUIRE(p, "out of memory");
  REQUIRE(type, "post_processor without a \"type\"");
  if (!strcmp(type, "TemplateProcessing")) {
    p->type = TOK_POST_TEMPLATE;
    TRY(read_template(v, "single", &p->single, &p->n_single));
    if (!tj_is_null(tj_get(v, "pair"))) TRY(read_template(v, "pair", &p->pair, &p->n_pair));
  } else if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
    p->type = type[0] == 'B' ? TOK_POST_BERT : TOK_POST_ROBERTA;
    TRY(token_pair(tj_get(v, "cls"), "cls", &p->cls));
    TRY(token_pair(tj_get(v, "sep"), "sep", &p->sep));
  } else if (!strcmp(type, "ByteLevel")) {
    p->type = TOK_POST_BYTE_LEVEL;
  } else if (!strcmp(type, "Sequence")) {
    p->type = TOK_POST_SEQUENCE;
    const tj_value* list = tj_get(v, "processors");
    REQUIRE(list && list->type == TJ_ARRAY, "Sequence post_processor needs a \"processors\" list");
    p->children = calloc(list->len + 1, sizeof *p->children);
    REQUIRE(p->children, "out of memory");
    for (uint32_t i = 0; i < list->len; i++) {
      TRY(tok_post_processor_from_json(&p->children[i], &list->u.items[i]));
      p->n_children++;
    }
  } else {
    REQUIRE(0, "unsupported post_processor type \"%s\"", type);
  }
  *out = p;
  p = NULL;
cleanup:
  tok_post_processor_free(p);
  return status;
}

static int push_n(tok_ids* v, int32_t value, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (tok_ids_push(v, value)) return 1;
  return 0;
}

/* Appends ids with one type id. */
static int append(tok_encoding* out, const int32_t* ids, size_t n, int32_t type_id) {
  if (n && tok_ids_append(&out->ids, ids, n)) return 1;
  return push_n(&out->type_ids, type_id, n);
}

static int append_encoding(tok_encoding* out, const tok_encoding* e) {
  if (e->ids.size && tok_ids_append(&out->ids, e->ids.data, e->ids.size)) return 1;
  return e->ids.size && tok_ids_append(&out->type_ids, e->type_ids.data, e->type_ids.size);
}

static void set_type_ids(tok_encoding* e, int32_t type_id) {
  for (size_t i = 0; i < e->type_ids.size; i++) e->type_ids.data[i] = type_id;
}

/* Replaces encodings[0..*n) by one: the template's pieces in order. Sequences take the template's
 * type id even without special tokens. */
static int apply_template(const tok_post_processor* p, tok_encoding* encodings, size_t* n, bool add_special) {
  const tok_template_piece* pieces = *n == 2 ? p->pair : p->single;
  size_t n_pieces = *n == 2 ? p->n_pair : p->n_single;
  if (!pieces) return tok_error("TemplateProcessing has no pair template: cannot encode a pair");
  tok_encoding merged = {0};
  for (size_t i = 0; i < n_pieces; i++) {
    const tok_template_piece* piece = &pieces[i];
    int failed;
    if (piece->kind == 2) {
      failed = add_special ? append(&merged, piece->ids.data, piece->ids.size, piece->type_id) : 0;
    } else if ((size_t)piece->kind < *n) {
      tok_encoding* e = &encodings[piece->kind];
      set_type_ids(e, piece->type_id);
      failed = append_encoding(&merged, e);
    } else {
      failed = tok_error("TemplateProcessing: the single template uses $B");
    }
    if (failed) {
      tok_encoding_free(&merged);
      return 1;
    }
  }
  for (size_t i = 0; i < *n; i++) tok_encoding_free(&encodings[i]);
  encodings[0] = merged;
  *n = 1;
  return 0;
}

/* BertProcessing: [CLS] A [SEP] (type 0), B [SEP] (type 1). RobertaProcessing: <s> A </s>, </s> B </s>,
 * every type id 0 (even without special tokens). Each encoding stays separate, as in tokenizers. */
static int wrap_bert_roberta(const tok_post_processor* p, tok_encoding* encodings, size_t n, bool add_special) {
  bool roberta = p->type == TOK_POST_ROBERTA;
  if (roberta)
    for (size_t i = 0; i < n; i++) set_type_ids(&encodings[i], 0);
  if (!add_special) return 0;
  for (size_t i = 0; i < n; i++) {
    tok_encoding* e = &encodings[i];
    tok_encoding w = {0};
    int32_t type_id = roberta || i == 0 ? 0 : 1;
    int failed = 0;
    if (i == 0) failed = append(&w, &p->cls, 1, 0);
    else if (roberta) failed = append(&w, &p->sep, 1, 0);
    failed = failed || append_encoding(&w, e) || append(&w, &p->sep, 1, type_id);
    if (failed) {
      tok_encoding_free(&w);
      return 1;
    }
    tok_encoding_free(e);
    *e = w;
  }
  return 0;
}

static int process(const tok_post_processor* p, tok_encoding* encodings, size_t* n, bool add_special) {
  switch (p->type) {
    case TOK_POST_TEMPLATE: return apply_template(p, encodings, n, add_special);
    case TOK_POST_BERT:
    case TOK_POST_ROBERTA: return wrap_bert_roberta(p, encodings, *n, add_special);
    case TOK_POST_BYTE_LEVEL: return 0;
    case TOK_POST_SEQUENCE:
      for (size_t i = 0; i < p->n_children; i++)
        if (process(p->children[i], encodings, n, add_special)) return 1;
      return 0;
  }
  return 0;
}

int tok_post_process(const tok_post_processor* p, tok_encoding* encodings, size_t n_encodings, bool add_special) {
  size_t n = n_encodings;
  if (p && process(p, encodings, &n, add_special)) return 1;
  if (n == 2) { /* what is left separate is concatenated */
    if (append_encoding(&encodings[0], &encodings[1])) return 1;
    tok_encoding_free(&encodings[1]);
  }
  return 0;
}

size_t tok_post_added_count(const tok_post_processor* p, bool is_pair) {
  size_t n = 0;
  switch (p->type) {
    case TOK_POST_TEMPLATE: {
      const tok_template_piece* pieces = is_pair ? p->pair : p->single;
      size_t count = is_pair ? p->n_pair : p->n_single;
      for (size_t i = 0; pieces && i < count; i++)
        if (pieces[i].kind == 2) n += pieces[i].ids.size;
      return n;
    }
    case TOK_POST_BERT: return is_pair ? 3 : 2;
    case TOK_POST_ROBERTA: return is_pair ? 4 : 2;
    case TOK_POST_BYTE_LEVEL: return 0;
    case TOK_POST_SEQUENCE:
      for (size_t i = 0; i < p->n_children; i++) n += tok_post_added_count(p->children[i], is_pair);
      return n;
  }
  return 0;
}
