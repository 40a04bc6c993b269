/* Post-processors: the special tokens wrapped around an encoded sequence (TemplateProcessing,
 * BertProcessing, RobertaProcessing; ByteLevel only adjusts offsets, which we do not track). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/internal.h"
#include "util/error.h"

void tok_post_processor_free(tok_post_processor* p) {
  if (!p) return;
  free(p->single_prefix.data);
  free(p->single_suffix.data);
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

static int template_single(tok_post_processor* p, const tj_value* v) {
  int status = 0;
  const tj_value* single = tj_get(v, "single");
  const tj_value* specials = tj_get(v, "special_tokens");
  REQUIRE(single && single->type == TJ_ARRAY, "TemplateProcessing needs a \"single\" list");
  bool seen_sequence = false;
  for (uint32_t i = 0; i < single->len; i++) {
    const tj_value* item = &single->u.items[i];
    const tj_value* special = tj_get(item, "SpecialToken");
    if (tj_get(item, "Sequence")) {
      seen_sequence = true;
      continue;
    }
    const char* name = tj_string(tj_get(special, "id"));
    REQUIRE(name, "TemplateProcessing.single[%u] must be a SpecialToken or a Sequence", i);
    const tj_value* entry = tj_get(specials, name);
    const tj_value* ids = tj_get(entry, "ids");
    REQUIRE(ids && ids->type == TJ_ARRAY, "TemplateProcessing: special token \"%s\" is not defined", name);
    for (uint32_t k = 0; k < ids->len; k++) {
      REQUIRE(ids->u.items[k].type == TJ_INT && ids->u.items[k].u.i >= 0 && ids->u.items[k].u.i <= INT32_MAX,
              "TemplateProcessing: bad id for \"%s\"", name);
      TRY(tok_ids_push(seen_sequence ? &p->single_suffix : &p->single_prefix, (int32_t)ids->u.items[k].u.i));
    }
  }
cleanup:
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
    TRY(template_single(p, v));
  } else if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
    p->type = type[0] == 'B' ? TOK_POST_BERT : TOK_POST_ROBERTA;
    int32_t cls = 0, sep = 0;
    TRY(token_pair(tj_get(v, "cls"), "cls", &cls));
    TRY(token_pair(tj_get(v, "sep"), "sep", &sep));
    TRY(tok_ids_push(&p->single_prefix, cls));
    TRY(tok_ids_push(&p->single_suffix, sep));
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

int tok_post_process(const tok_post_processor* p, tok_ids* ids, bool add_special) {
  if (!add_special) return 0;
  if (p->type == TOK_POST_SEQUENCE) {
    for (size_t i = 0; i < p->n_children; i++)
      if (tok_post_process(p->children[i], ids, add_special)) return 1;
    return 0;
  }
  size_t pre = p->single_prefix.size;
  if (pre) {
    if (tok_ids_append(ids, p->single_prefix.data, pre)) return 1; /* grow, then shift */
    memmove(ids->data + pre, ids->data, (ids->size - pre) * sizeof *ids->data);
    memcpy(ids->data, p->single_prefix.data, pre * sizeof *ids->data);
  }
  return tok_ids_append(ids, p->single_suffix.data, p->single_suffix.size);
}

size_t tok_post_added_count(const tok_post_processor* p) {
  size_t n = p->single_prefix.size + p->single_suffix.size;
  for (size_t i = 0; i < p->n_children; i++) n += tok_post_added_count(p->children[i]);
  return n;
}
