/* mlxc cache-prompt: run a prompt through a model and save its KV cache as a prompt-cache file
 * (mlx-lm's cache_prompt layout, with its user metadata "model", "chat_template" and
 * "tokenizer_config", plus "mlxc_tokens", the cached ids, so that generate can tell whether a new
 * prompt extends the cached one). Also the helpers `mlxc generate --prompt-cache-file` uses. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/hub.h"
#include "mlxc/lm.h"
#include "mlxc/tokenizer.h"
#include "model_io.h"
#include "options.h"
#include "prompt_cache_cli.h"

/* The metadata mlx-lm's cache_prompt writes, and the ids. */
static int cache_metadata(mlx_map_string_to_string meta, const char* model, const mlxc_tokenizer* tok,
                          const int32_t* ids, size_t n) {
  const char* template = mlxc_tokenizer_chat_template(tok, NULL);
  json_t* t = template ? json_string(template) : json_null();
  json_t* list = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(list, json_integer(ids[i]));
  char* template_json = json_dumps(t, JSON_ENCODE_ANY | JSON_COMPACT);
  char* ids_json = json_dumps(list, JSON_COMPACT);
  int status = !template_json || !ids_json;
  if (!status) status = mlx_map_string_to_string_insert(meta, "model", model);
  if (!status) status = mlx_map_string_to_string_insert(meta, "chat_template", template_json);
  if (!status) status = mlx_map_string_to_string_insert(meta, "tokenizer_config", "{}");
  if (!status) status = mlx_map_string_to_string_insert(meta, "mlxc_tokens", ids_json);
  free(template_json);
  free(ids_json);
  json_decref(t);
  json_decref(list);
  return status;
}

int cmd_cache_prompt(int argc, char** argv) {
  const char *model_arg = NULL, *prompt = NULL, *file = NULL, *system = NULL, *device = NULL;
  bool chat = false;
  mlxc_lm_generate_params params = mlxc_lm_generate_default_params();
  option_spec specs[] = {
      {"--model", OPT_STRING, &model_arg, "model folder, GGUF file or hub id org/name[@revision]"},
      {"--prompt", OPT_STRING, &prompt, "prompt text to cache"},
      {"--prompt-cache-file", OPT_STRING, &file, "the safetensors file to write"},
      {"--chat", OPT_FLAG, &chat, "format the prompt with the model's chat template"},
      {"--system", OPT_STRING, &system, "system prompt (with --chat)"},
      {"--max-kv-size", OPT_INT, &params.max_kv_size, "rotating KV cache of at most N positions (0 = unlimited)"},
      {"--kv-bits", OPT_INT, &params.kv_bits, "quantize the KV cache to 4 or 8 bits (0 = off)"},
      {"--kv-group-size", OPT_INT, &params.kv_group_size, "group size of the KV cache quantization (64)"},
      {"--quantized-kv-start", OPT_INT, &params.quantized_kv_start, "quantize once the cache holds this many tokens (0)"},
      {"--prefill-step", OPT_INT, &params.prefill_step, "prompt tokens per forward pass (512)"},
      {"--device", OPT_STRING, &device, "cpu or gpu"},
  };
  if (options_parse(argc, argv, specs, sizeof specs / sizeof specs[0])) return 2;
  if (!model_arg || !prompt || !file) {
    fprintf(stderr, "usage: mlxc cache-prompt --model DIR --prompt TEXT --prompt-cache-file FILE [options]\n");
    options_usage(stderr, specs, sizeof specs / sizeof specs[0]);
    return 2;
  }
  mlxc_lm_model* model = NULL;
  mlxc_tokenizer* tok = NULL;
  mlxc_lm_session* session = NULL;
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  int32_t* ids = NULL;
  size_t n_ids = 0;
  char* dir = NULL;
  int status = 1;
  if (mlxc_hub_resolve(&dir, model_arg, NULL) || tool_load_model(dir, device, &model, &tok)) goto cleanup;
  if (chat) {
    char* rendered = tool_render_chat(tok, dir, system, prompt);
    if (!rendered) goto cleanup;
    int failed = mlxc_tokenizer_encode(tok, rendered, strlen(rendered), false, &ids, &n_ids);
    free(rendered);
    if (failed) goto cleanup;
  } else if (mlxc_tokenizer_encode(tok, prompt, strlen(prompt), true, &ids, &n_ids)) {
    goto cleanup;
  }
  /* Prefill only: generating zero tokens runs the prompt with the chosen cache. */
  params.max_tokens = 0;
  mlxc_lm_generation gen;
  if (mlxc_lm_session_new(&session, model) || mlxc_lm_generate(session, ids, n_ids, &params, &gen)) goto cleanup;
  fprintf(stderr, "Prompt: %zu tokens, %.1f tokens-per-sec\n", gen.prompt_tokens,
          gen.prompt_seconds > 0 ? gen.prompt_tokens / gen.prompt_seconds : 0.0);
  mlxc_lm_generation_free(&gen);
  if (cache_metadata(meta, model_arg, tok, ids, n_ids) || mlxc_lm_session_save_metadata(session, file, meta))
    goto cleanup;
  fprintf(stderr, "Saved the prompt cache of %zu tokens to %s\n", n_ids, file);
  status = 0;
cleanup:
  if (status) fprintf(stderr, "mlxc cache-prompt: %s\n", mlxc_last_error());
  free(dir);
  free(ids);
  mlx_map_string_to_string_free(meta);
  mlxc_lm_session_free(session);
  mlxc_lm_free(model);
  mlxc_tokenizer_free(tok);
  return status;
}

char* tool_prompt_cache_model(const char* file) {
  mlx_map_string_to_array arrays = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_stream cpu = mlx_default_cpu_stream_new();
  const char* model = NULL;
  char* copy = NULL;
  bool read = mlx_load_safetensors(&arrays, &meta, file, cpu) == 0; /* a failure is reported there */
  if (read && mlx_map_string_to_string_get(&model, meta, "1.model") == 0 && model)
    copy = strdup(model);
  else if (read)
    fprintf(stderr, "mlxc: %s names no model; give --model\n", file);
  mlx_map_string_to_array_free(arrays);
  mlx_map_string_to_string_free(meta);
  mlx_stream_free(cpu);
  return copy;
}

/* The ids of "mlxc_tokens", or n = 0 when the file has none (e.g. written by mlx-lm). */
static int32_t* cached_ids(mlx_map_string_to_string meta, size_t* n) {
  const char* text = NULL;
  *n = 0;
  if (mlx_map_string_to_string_get(&text, meta, "mlxc_tokens") || !text) return NULL;
  json_t* list = json_loads(text, 0, NULL);
  int32_t* ids = json_is_array(list) ? malloc(sizeof(int32_t) * (json_array_size(list) + 1)) : NULL;
  for (size_t i = 0; ids && i < json_array_size(list); i++) ids[i] = (int32_t)json_integer_value(json_array_get(list, i));
  if (ids) *n = json_array_size(list);
  json_decref(list);
  return ids;
}

int tool_prompt_cache_resume(mlxc_lm_session* session, const mlxc_tokenizer* tok, const char* file, int32_t** ids,
                             size_t* n_ids, size_t* reused) {
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  int status = mlxc_lm_session_load_metadata(session, file, &meta);
  size_t n_cached = 0;
  int32_t* cached = status ? NULL : cached_ids(meta, &n_cached);
  *reused = (size_t)mlxc_lm_session_length(session);
  bool known = !status && cached && n_cached == *reused;
  bool prefix = known && *n_ids >= n_cached && !memcmp(*ids, cached, n_cached * sizeof *cached);
  if (status) {
    /* nothing to adjust */
  } else if (prefix && *n_ids == n_cached) {
    /* The same prompt: run its last token again for the first logits. */
    status = mlxc_lm_session_truncate(session, (int)n_cached - 1);
    (*ids)[0] = (*ids)[n_cached - 1];
    *n_ids = 1;
    *reused = n_cached - 1;
  } else if (prefix) {
    /* The new prompt extends the cached one: run only the rest. */
    memmove(*ids, *ids + n_cached, (*n_ids - n_cached) * sizeof **ids);
    *n_ids -= n_cached;
  } else {
    /* As mlx-lm: the new text follows the cached prompt, without a second BOS. */
    int32_t bos = mlxc_tokenizer_special_id(tok, MLXC_TOKEN_BOS);
    if (*n_ids > 1 && mlxc_tokenizer_add_bos(tok) && (*ids)[0] == bos) {
      memmove(*ids, *ids + 1, (*n_ids - 1) * sizeof **ids);
      (*n_ids)--;
    }
  }
  free(cached);
  mlx_map_string_to_string_free(meta);
  return status;
}
