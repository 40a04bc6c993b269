/* Settings beside tokenizer.json: tokenizer_config.json (special tokens, add_bos/add_eos, chat
 * templates) and generation_config.json (end-of-sequence ids). */
#include <stdlib.h>
#include <string.h>

#include "mlxc/tokenizer.h"
#include "tokenizer/internal.h"

/* A special token is a string, an AddedToken object {"content": ...}, or null. */
static int read_special(char** slot, const tj_value* v, const char* key) {
  if (!v) return 0;
  const tj_value* content = v->type == TJ_OBJECT ? tj_get(v, "content") : v;
  free(*slot);
  *slot = NULL;
  if (tj_is_null(content)) return 0;
  if (content->type != TJ_STRING) return tok_error("\"%s\" must be a string or an object with \"content\"", key);
  *slot = tok_strndup(content->u.s, content->len);
  return *slot ? 0 : tok_error("out of memory");
}

static void free_templates(mlxc_tokenizer* tok) {
  for (size_t i = 0; i < tok->n_templates; i++) {
    free(tok->templates[i].name);
    free(tok->templates[i].template_text);
  }
  free(tok->templates);
  tok->templates = NULL;
  tok->n_templates = 0;
}

static int add_template(mlxc_tokenizer* tok, const char* name, size_t name_len, const tj_value* text) {
  tok_chat_template* grown = realloc(tok->templates, (tok->n_templates + 1) * sizeof *grown);
  if (!grown) return tok_error("out of memory");
  tok->templates = grown;
  tok_chat_template* t = &tok->templates[tok->n_templates];
  t->name = tok_strndup(name, name_len);
  t->template_text = tok_strndup(text->u.s, text->len);
  if (!t->name || !t->template_text) {
    free(t->name);
    free(t->template_text);
    return tok_error("out of memory");
  }
  tok->n_templates++;
  return 0;
}

static int read_templates(mlxc_tokenizer* tok, const tj_value* v) {
  if (tj_is_null(v)) return 0;
  free_templates(tok);
  if (v->type == TJ_STRING) return add_template(tok, "default", 7, v);
  if (v->type != TJ_ARRAY) return tok_error("\"chat_template\" must be a string or a list of {name, template}");
  for (uint32_t i = 0; i < v->len; i++) {
    const tj_value* name = tj_get(&v->u.items[i], "name");
    const tj_value* text = tj_get(&v->u.items[i], "template");
    if (!name || name->type != TJ_STRING || !text || text->type != TJ_STRING)
      return tok_error("chat_template[%u] must be {\"name\": string, \"template\": string}", i);
    if (add_template(tok, name->u.s, name->len, text)) return 1;
  }
  return 0;
}

int mlxc_tokenizer_load_config(mlxc_tokenizer* tok, const char* path) {
  if (!tok || !path) return tok_error("mlxc_tokenizer_load_config: NULL argument");
  char* data = NULL;
  size_t length;
  tj_document doc = {0};
  int status = 0;
  TRY(tok_read_file(path, &data, &length));
  TRY(tj_parse(&doc, data, length, path));
  tok_error_set_file(path);
  REQUIRE(doc.root.type == TJ_OBJECT, "expected an object");
  static const char* const keys[4] = {"bos_token", "eos_token", "pad_token", "unk_token"};
  for (int i = 0; i < 4; i++) TRY(read_special(&tok->special[i], tj_get(&doc.root, keys[i]), keys[i]));
  tok->eos_fallback = mlxc_tokenizer_special_id(tok, MLXC_TOKEN_EOS);
  const tj_value* v;
  if ((v = tj_get(&doc.root, "add_bos_token")) && (v->type == TJ_TRUE || v->type == TJ_FALSE)) {
    tok->add_bos = v->type == TJ_TRUE;
  }
  if ((v = tj_get(&doc.root, "add_eos_token")) && (v->type == TJ_TRUE || v->type == TJ_FALSE)) {
    tok->add_eos = v->type == TJ_TRUE;
  }
  TRY(read_templates(tok, tj_get(&doc.root, "chat_template")));
cleanup:
  tok_error_set_file(NULL);
  tj_free(&doc);
  free(data);
  return status;
}

int mlxc_tokenizer_load_generation_config(mlxc_tokenizer* tok, const char* path) {
  if (!tok || !path) return tok_error("mlxc_tokenizer_load_generation_config: NULL argument");
  char* data = NULL;
  size_t length;
  tj_document doc = {0};
  int status = 0;
  TRY(tok_read_file(path, &data, &length));
  TRY(tj_parse(&doc, data, length, path));
  tok_error_set_file(path);
  REQUIRE(doc.root.type == TJ_OBJECT, "expected an object");
  const tj_value* eos = tj_get(&doc.root, "eos_token_id");
  if (!tj_is_null(eos)) {
    const tj_value* items = eos->type == TJ_ARRAY ? eos->u.items : eos;
    size_t n = eos->type == TJ_ARRAY ? eos->len : 1;
    int32_t* ids = malloc((n + 1) * sizeof *ids);
    REQUIRE(ids, "out of memory");
    for (size_t i = 0; i < n; i++) {
      if (items[i].type != TJ_INT || items[i].u.i < 0 || items[i].u.i > INT32_MAX) {
        free(ids);
        REQUIRE(0, "eos_token_id must be an integer or a list of integers");
      }
      ids[i] = (int32_t)items[i].u.i;
    }
    free(tok->eos_ids);
    tok->eos_ids = ids;
    tok->n_eos_ids = n;
  }
cleanup:
  tok_error_set_file(NULL);
  tj_free(&doc);
  free(data);
  return status;
}

const char* mlxc_tokenizer_special_token(const mlxc_tokenizer* tok, mlxc_tokenizer_special_kind kind) {
  if (!tok || kind < MLXC_TOKEN_BOS || kind > MLXC_TOKEN_UNK) return NULL;
  return tok->special[kind];
}

int32_t mlxc_tokenizer_special_id(const mlxc_tokenizer* tok, mlxc_tokenizer_special_kind kind) {
  const char* s = mlxc_tokenizer_special_token(tok, kind);
  return s ? mlxc_tokenizer_token_to_id(tok, s) : -1;
}

bool mlxc_tokenizer_add_bos(const mlxc_tokenizer* tok) { return tok && tok->add_bos; }
bool mlxc_tokenizer_add_eos(const mlxc_tokenizer* tok) { return tok && tok->add_eos; }

size_t mlxc_tokenizer_eos_ids(const mlxc_tokenizer* tok, const int32_t** ids) {
  if (!tok) return 0;
  if (tok->n_eos_ids) {
    if (ids) *ids = tok->eos_ids;
    return tok->n_eos_ids;
  }
  /* No generation config: the eos token of tokenizer_config.json. */
  if (tok->eos_fallback < 0) return 0;
  if (ids) *ids = &tok->eos_fallback;
  return 1;
}

const char* mlxc_tokenizer_chat_template(const mlxc_tokenizer* tok, const char* name) {
  if (!tok) return NULL;
  if (!name) name = "default";
  for (size_t i = 0; i < tok->n_templates; i++)
    if (!strcmp(tok->templates[i].name, name)) return tok->templates[i].template_text;
  return NULL;
}

size_t mlxc_tokenizer_chat_template_count(const mlxc_tokenizer* tok) { return tok ? tok->n_templates : 0; }

const char* mlxc_tokenizer_chat_template_name(const mlxc_tokenizer* tok, size_t i) {
  return tok && i < tok->n_templates ? tok->templates[i].name : NULL;
}
