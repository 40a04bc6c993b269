/* mlxc chat-template: renders a model's chat template (tokenizer_config.json) for a conversation. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mlxc/chat.h"
#include "mlxc/error.h"

static void usage(FILE* out) {
  fprintf(out,
          "usage: mlxc chat-template --model DIR --messages FILE.json [--tools FILE.json]\n"
          "                          [--no-generation-prompt] [--var KEY=JSON]...\n"
          "Prints the prompt that DIR/tokenizer_config.json's chat_template renders for the messages.\n");
}

/* A special token is a string or an AddedToken object {"content": ...}. */
static const char* token_text(json_t* value) {
  if (json_is_string(value)) return json_string_value(value);
  if (json_is_object(value)) return json_string_value(json_object_get(value, "content"));
  return NULL;
}

/* chat_template is a string, or a list of {name, template}: "tool_use" when tools are given and
 * present (as transformers chooses), else "default". */
static const char* pick_template(json_t* config, int have_tools, const char* path) {
  json_t* t = json_object_get(config, "chat_template");
  if (json_is_string(t)) return json_string_value(t);
  if (json_is_array(t)) {
    const char* fallback = NULL;
    size_t i;
    json_t* entry;
    json_array_foreach(t, i, entry) {
      const char* name = json_string_value(json_object_get(entry, "name"));
      const char* text = json_string_value(json_object_get(entry, "template"));
      if (!name || !text) continue;
      if (have_tools && !strcmp(name, "tool_use")) return text;
      if (!strcmp(name, "default")) fallback = text;
    }
    if (fallback) return fallback;
    fprintf(stderr, "mlxc chat-template: %s: chat_template list has no \"default\" entry\n", path);
    return NULL;
  }
  fprintf(stderr, "mlxc chat-template: %s has no chat_template\n", path);
  return NULL;
}

static json_t* load_json(const char* path, size_t flags) {
  json_error_t err;
  json_t* j = json_load_file(path, JSON_DECODE_ANY | flags, &err);
  if (!j) fprintf(stderr, "mlxc chat-template: %s:%d:%d: %s\n", path, err.line, err.column, err.text);
  return j;
}

int cmd_chat_template(int argc, char** argv) {
  const char *model = NULL, *messages_path = NULL, *tools_path = NULL;
  int add_generation_prompt = 1;
  int status = 1;
  json_t *config = NULL, *messages = NULL, *tools = NULL, *context = json_object();
  mlxc_set_errors_quiet(1); /* failures are printed here once, with the file they concern */
  mlxc_template* tmpl = NULL;
  char *context_text = NULL, *out = NULL;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (!strcmp(a, "--model") && i + 1 < argc) {
      model = argv[++i];
    } else if (!strcmp(a, "--messages") && i + 1 < argc) {
      messages_path = argv[++i];
    } else if (!strcmp(a, "--tools") && i + 1 < argc) {
      tools_path = argv[++i];
    } else if (!strcmp(a, "--no-generation-prompt")) {
      add_generation_prompt = 0;
    } else if (!strcmp(a, "--var") && i + 1 < argc) {
      const char* kv = argv[++i];
      const char* eq = strchr(kv, '=');
      json_error_t err;
      json_t* value = eq ? json_loads(eq + 1, JSON_DECODE_ANY, &err) : NULL;
      if (!value) {
        fprintf(stderr, "mlxc chat-template: --var %s: expected KEY=JSON\n", kv);
        goto cleanup;
      }
      char key[256];
      snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
      json_object_set_new(context, key, value); /* applied after the defaults below */
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      status = 0;
      goto cleanup;
    } else {
      usage(stderr);
      status = 2;
      goto cleanup;
    }
  }
  if (!model || !messages_path) {
    usage(stderr);
    status = 2;
    goto cleanup;
  }
  char config_path[4096];
  snprintf(config_path, sizeof config_path, "%s/tokenizer_config.json", model);
  /* Configs hold integers beyond 64 bits (model_max_length 1e30); only their strings are used. */
  if (!(config = load_json(config_path, JSON_DECODE_INT_AS_REAL)) || !(messages = load_json(messages_path, 0))) goto cleanup;
  if (tools_path && !(tools = load_json(tools_path, 0))) goto cleanup;
  if (!json_is_array(messages)) {
    fprintf(stderr, "mlxc chat-template: %s: expected a JSON array of messages\n", messages_path);
    goto cleanup;
  }
  const char* source = pick_template(config, tools != NULL, config_path);
  if (!source) goto cleanup;

  /* Variables as transformers passes them; --var values win. */
  json_t* vars = json_object();
  json_object_set(vars, "messages", messages);
  json_object_set(vars, "tools", tools ? tools : json_null());
  json_object_set_new(vars, "documents", json_null());
  json_object_set_new(vars, "add_generation_prompt", json_boolean(add_generation_prompt));
  static const char* const special[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                        "pad_token", "cls_token", "mask_token", NULL};
  for (size_t i = 0; special[i]; i++) {
    const char* text = token_text(json_object_get(config, special[i]));
    if (text) json_object_set_new(vars, special[i], json_string(text));
  }
  json_t* additional = json_object_get(config, "additional_special_tokens");
  if (json_is_array(additional)) {
    json_t* list = json_array();
    size_t i;
    json_t* entry;
    json_array_foreach(additional, i, entry) {
      const char* text = token_text(entry);
      if (text) json_array_append_new(list, json_string(text));
    }
    json_object_set_new(vars, "additional_special_tokens", list);
  }
  json_object_update(vars, context);
  json_decref(context);
  context = vars;

  char* err = NULL;
  if (mlxc_template_compile(&tmpl, source, &err) != 0) {
    fprintf(stderr, "mlxc chat-template: %s: chat_template: %s\n", config_path, err ? err : mlxc_last_error());
    free(err);
    goto cleanup;
  }
  context_text = json_dumps(context, JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
  if (!context_text || mlxc_template_render(&out, tmpl, context_text, NULL) != 0) {
    fprintf(stderr, "mlxc chat-template: %s: %s\n", config_path, mlxc_last_error());
    goto cleanup;
  }
  fputs(out, stdout);
  status = 0;
cleanup:
  free(out);
  free(context_text);
  mlxc_template_free(tmpl);
  json_decref(config);
  json_decref(messages);
  json_decref(tools);
  json_decref(context);
  return status;
}
