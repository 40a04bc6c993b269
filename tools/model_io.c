/* Model loading and chat rendering shared by the CLI commands (model_io.h). */
#include "model_io.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlx/c/mlx.h"
#include "mlxc/chat.h"

/* The model folder's chat template: tokenizer_config.json's, else chat_template.jinja (where
 * transformers 5 keeps it). Returns a malloc'd copy or NULL with a message. */
char* tool_chat_template_source(const mlxc_tokenizer* tok, const char* dir) {
  const char* t = mlxc_tokenizer_chat_template(tok, NULL);
  if (t) return strdup(t);
  char path[4096];
  snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
  FILE* f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "mlxc: %s has no chat template\n", dir);
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* text = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (text && fread(text, 1, (size_t)n, f) == (size_t)n) {
    text[n] = '\0';
  } else {
    free(text);
    text = NULL;
  }
  fclose(f);
  return text;
}

char* tool_render_messages(const mlxc_tokenizer* tok, const char* dir, const void* messages_json_value) {
  char* source = tool_chat_template_source(tok, dir);
  if (!source) return NULL;
  const json_t* messages = messages_json_value;
  json_t* extra = json_object();
  const char* bos = mlxc_tokenizer_special_token(tok, MLXC_TOKEN_BOS);
  const char* eos = mlxc_tokenizer_special_token(tok, MLXC_TOKEN_EOS);
  if (bos) json_object_set_new(extra, "bos_token", json_string(bos));
  if (eos) json_object_set_new(extra, "eos_token", json_string(eos));
  char* messages_json = json_dumps(messages, JSON_COMPACT);
  char* extra_json = json_dumps(extra, JSON_COMPACT);
  char* rendered = NULL;
  if (messages_json && extra_json) mlxc_chat_apply_template(&rendered, source, messages_json, NULL, 1, extra_json);
  free(messages_json);
  free(extra_json);
  json_decref(extra);
  free(source);
  return rendered;
}

char* tool_render_chat(const mlxc_tokenizer* tok, const char* dir, const char* system, const char* prompt) {
  json_t* messages = json_array();
  if (system) json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "system", "content", system));
  json_array_append_new(messages, json_pack("{s:s, s:s}", "role", "user", "content", prompt));
  char* rendered = tool_render_messages(tok, dir, messages);
  json_decref(messages);
  return rendered;
}

/* Resolves the stream for --device (default: the default device: the GPU when present). */
static int pick_stream(const char* device, mlx_stream* out) {
  if (!device) {
    *out = mlx_stream_new();
    return 0;
  }
  if (!strcmp(device, "cpu")) {
    *out = mlx_default_cpu_stream_new();
    return 0;
  }
  if (!strcmp(device, "gpu")) {
    *out = mlx_default_gpu_stream_new();
    return out->ctx ? 0 : 1;
  }
  fprintf(stderr, "mlxc: --device must be cpu or gpu\n");
  return 1;
}

int tool_load_model(const char* dir, const char* device, mlxc_lm_model** model, mlxc_tokenizer** tok) {
  mlx_stream stream;
  if (pick_stream(device, &stream)) return 1;
  if (mlxc_tokenizer_load(tok, dir)) return 1;
  if (mlxc_lm_load(model, dir, stream)) {
    mlxc_tokenizer_free(*tok);
    *tok = NULL;
    return 1;
  }
  return 0;
}

