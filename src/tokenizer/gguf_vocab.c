/* Tokenizers from GGUF metadata (llama.cpp's "tokenizer.ggml.*" keys). The vocabulary is turned
 * into the tokenizer.json that transformers' own conversion of the same tokenizer has, and
 * loaded by the ordinary loader, so the behaviour is that of the Hugging Face tokenizer:
 *
 * - model "gpt2": byte-level BPE (tokens, merges); tokenizer.ggml.pre names the pre-tokenizer
 *   regex: "llama-bpe" (Llama 3: merges ignored for whole-word tokens), "qwen2" (with NFC),
 *   "gpt-2"/"default" (GPT-2's regex inside ByteLevel).
 * - model "llama": SentencePiece BPE with byte fallback ("▁" for spaces, a "▁" prepended).
 *   Without tokenizer.ggml.merges the merges are derived from the scores as transformers'
 *   SentencePieceExtractor does: every split of a token into two tokens, ordered by the merged
 *   token's score (highest first), then by the ids of the merged, left and right tokens.
 *
 * Token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
 * Control and unknown tokens become special added tokens, user-defined ones plain added tokens. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf_meta.h"
#include "mlx/c/mlx.h"
#include "mlxc/gguf.h"
#include "mlxc/tokenizer.h"
#include "tokenizer/internal.h"

enum { TYPE_NORMAL = 1, TYPE_UNKNOWN = 2, TYPE_CONTROL = 3, TYPE_USER = 4 };

#define LLAMA3_PATTERN                                                                              \
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
  "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2_PATTERN                                                                               \
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"     \
  "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct {
  mlx_vector_string tokens;
  size_t n;
  const int32_t* types; /* NULL: all normal */
  const float* scores;  /* NULL: none */
  mlx_array types_a, scores_a;
} vocab;

static const char* token_at(const vocab* v, size_t i) {
  char* s = NULL;
  mlx_vector_string_get(&s, v->tokens, i);
  return s;
}

static int type_at(const vocab* v, size_t i) { return v->types ? v->types[i] : TYPE_NORMAL; }

static json_t* byte_level(bool use_regex) {
  return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", false, "trim_offsets", true,
                   "use_regex", use_regex);
}

static json_t* split_then_byte_level(const char* pattern) {
  json_t* split = json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", pattern, "behavior",
                            "Isolated", "invert", false);
  return json_pack("{s:s, s:[o, o]}", "type", "Sequence", "pretokenizers", split, byte_level(false));
}

/* {"type": "TemplateProcessing"} adding BOS before and/or EOS after the sequence. */
static json_t* template_processing(const vocab* v, int bos, int eos) {
  json_t *single = json_array(), *pair = json_array(), *specials = json_object();
  int ends[2] = {bos, eos};
  for (int side = 0; side < 2; side++) {
    int id = ends[side];
    if (id >= 0) json_object_set_new(specials, token_at(v, (size_t)id),
                                      json_pack("{s:s, s:[i], s:[s]}", "id", token_at(v, (size_t)id), "ids", id,
                                                "tokens", token_at(v, (size_t)id)));
  }
  const char* seqs[2] = {"A", "B"};
  for (int k = 0; k < 2; k++) {
    json_t* list = k == 0 ? single : pair;
    for (int part = 0; part < (k == 0 ? 1 : 2); part++) {
      if (bos >= 0) json_array_append_new(list, json_pack("{s:{s:s, s:i}}", "SpecialToken", "id", token_at(v, (size_t)bos), "type_id", part));
      json_array_append_new(list, json_pack("{s:{s:s, s:i}}", "Sequence", "id", seqs[part], "type_id", part));
      if (eos >= 0) json_array_append_new(list, json_pack("{s:{s:s, s:i}}", "SpecialToken", "id", token_at(v, (size_t)eos), "type_id", part));
    }
  }
  return json_pack("{s:s, s:o, s:o, s:o}", "type", "TemplateProcessing", "single", single, "pair", pair,
                   "special_tokens", specials);
}

/* A GGUF merge "a b" as the pair ["a", "b"]. */
static int add_given_merges(json_t* merges, mlx_vector_string given) {
  for (size_t i = 0; i < mlx_vector_string_size(given); i++) {
    char* m = NULL;
    mlx_vector_string_get(&m, given, i);
    const char* space = strchr(m, ' ');
    if (!space) return tok_error("tokenizer.ggml.merges[%zu] \"%s\" is not two tokens separated by a space", i, m);
    json_array_append_new(merges, json_pack("[s#, s]", m, (int)(space - m), space + 1));
  }
  return 0;
}

typedef struct {
  float score;
  int32_t merged, left, right;
} spm_merge;

static int by_score(const void* x, const void* y) {
  const spm_merge *a = x, *b = y;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  if (a->merged != b->merged) return a->merged < b->merged ? -1 : 1;
  if (a->left != b->left) return a->left < b->left ? -1 : 1;
  return (a->right > b->right) - (a->right < b->right);
}

/* SentencePiece merges from the scores (see the top of the file). */
static int add_derived_merges(json_t* merges, const vocab* v, json_t* ids) {
  spm_merge* list = NULL;
  size_t n = 0, cap = 0;
  for (size_t i = 0; i < v->n; i++) {
    const char* t = token_at(v, i);
    size_t len = strlen(t);
    for (size_t k = 1; k < len; k++) {
      if (((unsigned char)t[k] & 0xC0) == 0x80) continue; /* split between characters only */
      char* left = tok_strndup(t, k);
      if (!left) return tok_error("out of memory");
      json_t* l = json_object_get(ids, left);
      json_t* r = json_object_get(ids, t + k);
      free(left);
      if (!l || !r) continue;
      if (n == cap) {
        cap = cap ? 2 * cap : 1024;
        spm_merge* grown = realloc(list, cap * sizeof *grown);
        if (!grown) {
          free(list);
          return tok_error("out of memory");
        }
        list = grown;
      }
      list[n++] = (spm_merge){v->scores ? v->scores[i] : -(float)i, (int32_t)i, (int32_t)json_integer_value(l),
                              (int32_t)json_integer_value(r)};
    }
  }
  if (n) qsort(list, n, sizeof *list, by_score);
  for (size_t i = 0; i < n; i++)
    json_array_append_new(merges, json_pack("[s, s]", token_at(v, (size_t)list[i].left), token_at(v, (size_t)list[i].right)));
  free(list);
  return 0;
}

static int special_id(mlx_io_gguf g, const char* key, const vocab* v) {
  double id;
  if (gguf_meta_number(g, key, &id) != 0 || id < 0 || id >= (double)v->n) return -1;
  return (int)id;
}

/* Builds the tokenizer.json object. */
static int build_json(mlx_io_gguf g, const vocab* v, const char* model, const char* pre, int bos, int eos,
                      int unk, bool add_bos, bool add_eos, json_t** out) {
  int status = 0;
  bool spm = !strcmp(model, "llama");
  json_t* root = json_object();
  json_t* ids = json_object();
  json_t* added = json_array();
  json_t* merges = json_array();
  mlx_vector_string given = mlx_vector_string_new();
  for (size_t i = 0; i < v->n; i++) {
    const char* t = token_at(v, i);
    int type = type_at(v, i);
    if (!json_object_get(ids, t)) json_object_set_new(ids, t, json_integer((json_int_t)i));
    if (type == TYPE_CONTROL || type == TYPE_UNKNOWN || type == TYPE_USER)
      json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", (int)i, "content", t,
                                             "single_word", false, "lstrip", false, "rstrip", false, "normalized",
                                             false, "special", type != TYPE_USER));
  }
  bool has_merges = false;
  if (mlx_io_gguf_has_metadata_vector_string(&has_merges, g, "tokenizer.ggml.merges") == 0 && has_merges) {
    TRY(mlx_io_gguf_get_metadata_vector_string(&given, g, "tokenizer.ggml.merges"));
    TRY(add_given_merges(merges, given));
  } else if (spm) {
    TRY(add_derived_merges(merges, v, ids));
  } else {
    REQUIRE(0, "tokenizer.ggml.merges is missing (needed by a \"gpt2\" tokenizer)");
  }
  json_t* bpe = json_pack("{s:s, s:n, s:n, s:n, s:b, s:b, s:b, s:O, s:O}", "type", "BPE", "dropout", "continuing_subword_prefix",
                          "end_of_word_suffix", "fuse_unk", spm, "byte_fallback", spm, "ignore_merges", false, "vocab",
                          ids, "merges", merges);
  json_object_set_new(bpe, "unk_token", spm && unk >= 0 ? json_string(token_at(v, (size_t)unk)) : json_null());
  json_t *normalizer = json_null(), *pre_tokenizer = json_null(), *decoder;
  if (spm) {
    normalizer = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]}", "type", "Sequence", "normalizers", "type",
                           "Prepend", "prepend", "\xe2\x96\x81", "type", "Replace", "pattern", "String", " ", "content",
                           "\xe2\x96\x81");
    decoder = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}", "type", "Sequence",
                        "decoders", "type", "Replace", "pattern", "String", "\xe2\x96\x81", "content", " ", "type",
                        "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ", "start", 1, "stop", 0);
  } else {
    if (!pre || !strcmp(pre, "default") || !strcmp(pre, "gpt-2")) {
      pre_tokenizer = byte_level(true);
    } else if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3")) {
      pre_tokenizer = split_then_byte_level(LLAMA3_PATTERN);
      json_object_set_new(bpe, "ignore_merges", json_true());
    } else if (!strcmp(pre, "qwen2")) {
      pre_tokenizer = split_then_byte_level(QWEN2_PATTERN);
      normalizer = json_pack("{s:s}", "type", "NFC");
    } else {
      json_decref(bpe);
      REQUIRE(0, "unsupported tokenizer.ggml.pre \"%s\" (supported: default, gpt-2, llama-bpe, qwen2)", pre);
    }
    decoder = byte_level(true);
  }
  json_object_set_new(root, "version", json_string("1.0"));
  json_object_set_new(root, "added_tokens", json_incref(added));
  json_object_set_new(root, "normalizer", normalizer);
  json_object_set_new(root, "pre_tokenizer", pre_tokenizer);
  json_object_set_new(root, "post_processor",
                      add_bos || add_eos ? template_processing(v, add_bos ? bos : -1, add_eos ? eos : -1) : json_null());
  json_object_set_new(root, "decoder", decoder);
  json_object_set_new(root, "model", bpe);
  *out = root;
  root = NULL;
cleanup:
  json_decref(root);
  json_decref(ids);
  json_decref(added);
  json_decref(merges);
  mlx_vector_string_free(given);
  return status;
}

static int set_special(mlxc_tokenizer* tok, mlxc_tokenizer_special_kind kind, const vocab* v, int id) {
  if (id < 0) return 0;
  tok->special[kind] = strdup(token_at(v, (size_t)id));
  return tok->special[kind] ? 0 : tok_error("out of memory");
}

/* Special tokens, add_bos/add_eos, end-of-sequence ids and the chat template. */
static int apply_settings(mlxc_tokenizer* tok, mlx_io_gguf g, const vocab* v, int bos, int eos, int unk,
                          bool add_bos, bool add_eos) {
  int status = 0;
  char* chat = NULL;
  TRY(set_special(tok, MLXC_TOKEN_BOS, v, bos));
  TRY(set_special(tok, MLXC_TOKEN_EOS, v, eos));
  TRY(set_special(tok, MLXC_TOKEN_UNK, v, unk));
  TRY(set_special(tok, MLXC_TOKEN_PAD, v, special_id(g, "tokenizer.ggml.padding_token_id", v)));
  tok->add_bos = add_bos;
  tok->add_eos = add_eos;
  tok->eos_fallback = eos;
  int eot = special_id(g, "tokenizer.ggml.eot_token_id", v);
  if (eos >= 0 && eot >= 0 && eot != eos) { /* chat models end turns with EOT (e.g. <|eot_id|>) */
    tok->eos_ids = malloc(2 * sizeof *tok->eos_ids);
    REQUIRE(tok->eos_ids, "out of memory");
    tok->eos_ids[0] = eos;
    tok->eos_ids[1] = eot;
    tok->n_eos_ids = 2;
  }
  chat = gguf_meta_string(g, "tokenizer.chat_template");
  if (chat) {
    tok->templates = calloc(1, sizeof *tok->templates);
    REQUIRE(tok->templates, "out of memory");
    tok->templates[0].name = strdup("default");
    tok->templates[0].template_text = chat;
    chat = NULL;
    tok->n_templates = 1;
    REQUIRE(tok->templates[0].name, "out of memory");
  }
cleanup:
  free(chat);
  return status;
}

int mlxc_tokenizer_load_gguf(mlxc_tokenizer** out, const char* path) {
  if (!out || !path) return tok_error("mlxc_tokenizer_load_gguf: NULL argument");
  *out = NULL;
  mlx_io_gguf g = mlx_io_gguf_new();
  mlxc_gguf_load_params params = mlxc_gguf_load_default_params();
  params.metadata_only = true;
  vocab v = {.tokens = mlx_vector_string_new(), .types_a = mlx_array_new(), .scores_a = mlx_array_new()};
  char *model = NULL, *pre = NULL, *text = NULL;
  json_t* root = NULL;
  mlxc_tokenizer* tok = NULL;
  int status = mlxc_gguf_load(&g, path, params);
  if (status) goto cleanup;
  tok_error_set_file(path);
  model = gguf_meta_string(g, "tokenizer.ggml.model");
  REQUIRE(model, "no tokenizer.ggml.model");
  REQUIRE(!strcmp(model, "gpt2") || !strcmp(model, "llama"),
          "unsupported tokenizer.ggml.model \"%s\" (supported: gpt2, llama)", model);
  pre = gguf_meta_string(g, "tokenizer.ggml.pre");
  TRY(mlx_io_gguf_get_metadata_vector_string(&v.tokens, g, "tokenizer.ggml.tokens"));
  v.n = mlx_vector_string_size(v.tokens);
  REQUIRE(v.n > 0 && v.n < INT32_MAX, "tokenizer.ggml.tokens is empty");
  status = gguf_meta_vector(g, "tokenizer.ggml.token_type", MLX_INT32, &v.types_a);
  if (status == 1) goto cleanup;
  if (!status) {
    REQUIRE(mlx_array_size(v.types_a) == v.n, "tokenizer.ggml.token_type has %zu entries for %zu tokens",
            mlx_array_size(v.types_a), v.n);
    v.types = mlx_array_data_int32(v.types_a);
  }
  status = gguf_meta_vector(g, "tokenizer.ggml.scores", MLX_FLOAT32, &v.scores_a);
  if (status == 1) goto cleanup;
  if (!status) {
    REQUIRE(mlx_array_size(v.scores_a) == v.n, "tokenizer.ggml.scores has %zu entries for %zu tokens",
            mlx_array_size(v.scores_a), v.n);
    v.scores = mlx_array_data_float32(v.scores_a);
  }
  status = 0;
  bool spm = !strcmp(model, "llama");
  int bos = special_id(g, "tokenizer.ggml.bos_token_id", &v);
  int eos = special_id(g, "tokenizer.ggml.eos_token_id", &v);
  int unk = special_id(g, "tokenizer.ggml.unknown_token_id", &v);
  /* llama.cpp's defaults: SentencePiece vocabularies add BOS, byte-level BPE ones do not. */
  bool add_bos = gguf_meta_number_or(g, "tokenizer.ggml.add_bos_token", spm) != 0 && bos >= 0;
  bool add_eos = gguf_meta_number_or(g, "tokenizer.ggml.add_eos_token", 0) != 0 && eos >= 0;
  TRY(build_json(g, &v, model, pre, bos, eos, unk, add_bos, add_eos, &root));
  text = json_dumps(root, JSON_COMPACT);
  REQUIRE(text, "out of memory");
  tok_error_set_file(NULL);
  TRY(mlxc_tokenizer_load_json(&tok, text, strlen(text), path));
  TRY(apply_settings(tok, g, &v, bos, eos, unk, add_bos, add_eos));
  *out = tok;
  tok = NULL;
cleanup:
  tok_error_set_file(NULL);
  mlxc_tokenizer_free(tok);
  json_decref(root);
  free(text);
  free(model);
  free(pre);
  mlx_array_free(v.types_a);
  mlx_array_free(v.scores_a);
  mlx_vector_string_free(v.tokens);
  mlx_io_gguf_free(g);
  return status;
}
