/* The public chat-template API: compile, render with JSON or C-built variables, apply_chat_template. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mlxc/chat.h"
#include "template/ast.h"
#include "template/eval.h"
#include "template/json.h"
#include "util/error.h"

#define COMPILE_MEMORY_LIMIT ((size_t)256 << 20)

struct mlxc_template {
  tmpl_arena arena; /* owns tokens and the syntax tree */
  ast_list body;
};

struct mlxc_template_vars {
  json_t* object;
};

mlxc_template_limits mlxc_template_default_limits(void) {
  return (mlxc_template_limits){
      .max_steps = 20u * 1000 * 1000,
      .max_output_bytes = (size_t)64 << 20,
      .max_memory_bytes = (size_t)512 << 20,
      .max_depth = 1000,
  };
}

static bool valid_utf8(const char* s, size_t len) {
  const unsigned char* p = (const unsigned char*)s;
  size_t i = 0;
  while (i < len) {
    unsigned char c = p[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!n || i + n > len || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4)) return false;
    for (size_t k = 1; k < n; k++)
      if ((p[i + k] & 0xc0) != 0x80) return false;
    i += n;
  }
  return true;
}

int mlxc_template_compile(mlxc_template** out, const char* source, char** error) {
  if (error) *error = NULL;
  if (!out || !source) return util_error("mlxc_template_compile: null argument");
  *out = NULL;
  size_t len = strlen(source);
  if (!valid_utf8(source, len)) {
    if (error) *error = strdup("chat template: source is not valid UTF-8");
    return util_error("chat template: source is not valid UTF-8");
  }
  mlxc_template* t = calloc(1, sizeof *t);
  if (!t) return util_error("mlxc_template_compile: out of memory");
  tmpl_arena_init(&t->arena, COMPILE_MEMORY_LIMIT);
  jmp_buf jump;
  t->arena.on_error = &jump;
  if (setjmp(jump)) {
    if (error) *error = strdup(t->arena.message);
    util_error("chat template: %s", t->arena.message);
    tmpl_arena_release(&t->arena);
    free(t);
    return 1;
  }
  tmpl_tokens tokens = tmpl_lex(&t->arena, source, len);
  t->body = tmpl_parse(&t->arena, tokens);
  t->arena.on_error = NULL;
  *out = t;
  return 0;
}

void mlxc_template_free(mlxc_template* tmpl) {
  if (!tmpl) return;
  tmpl_arena_release(&tmpl->arena);
  free(tmpl);
}

/* Renders with a jansson object as the variables. */
static int render_object(char** out, const mlxc_template* tmpl, const json_t* context, const mlxc_template_limits* limits) {
  mlxc_template_limits lim = limits ? *limits : mlxc_template_default_limits();
  tmpl_arena arena;
  tmpl_arena_init(&arena, lim.max_memory_bytes);
  jmp_buf jump;
  arena.on_error = &jump;
  if (setjmp(jump)) {
    util_error("chat template: %s", arena.message);
    tmpl_arena_release(&arena);
    return 1;
  }
  tmpl_interp in = {
      .arena = &arena,
      .limits = {.max_steps = lim.max_steps, .max_output_bytes = lim.max_output_bytes, .max_depth = lim.max_depth},
  };
  tmpl_value vars = tmpl_from_json(&arena, context);
  tmpl_buf result;
  tmpl_buf_init(&result, &arena, lim.max_output_bytes);
  tmpl_eval_render(&in, tmpl->body, vars.as.dict, &result);
  char* text = malloc(result.len + 1);
  if (!text) tmpl_fail(&arena, 0, 0, "out of memory");
  if (result.len) memcpy(text, result.data, result.len);
  text[result.len] = '\0';
  tmpl_arena_release(&arena);
  *out = text;
  return 0;
}

static json_t* parse_json(const char* what, const char* text) {
  json_error_t err;
  json_t* j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
  if (!j) util_error("chat template: %s is not valid JSON: %s (line %d, column %d)", what, err.text, err.line, err.column);
  return j;
}

int mlxc_template_render(char** out, const mlxc_template* tmpl, const char* context_json, const mlxc_template_limits* limits) {
  if (!out || !tmpl || !context_json) return util_error("mlxc_template_render: null argument");
  *out = NULL;
  json_t* context = parse_json("the context", context_json);
  if (!context) return 1;
  int status = 0;
  REQUIRE(json_is_object(context), "chat template: the context must be a JSON object");
  status = render_object(out, tmpl, context, limits);
cleanup:
  json_decref(context);
  return status;
}

int mlxc_template_vars_new(mlxc_template_vars** out) {
  if (!out) return util_error("mlxc_template_vars_new: null argument");
  *out = calloc(1, sizeof **out);
  if (!*out || !((*out)->object = json_object())) {
    free(*out);
    *out = NULL;
    return util_error("mlxc_template_vars_new: out of memory");
  }
  return 0;
}

void mlxc_template_vars_free(mlxc_template_vars* vars) {
  if (!vars) return;
  json_decref(vars->object);
  free(vars);
}

static int set_var(mlxc_template_vars* vars, const char* name, json_t* value) {
  if (!vars || !name || !value) {
    json_decref(value);
    return util_error("mlxc_template_vars_set: null argument or out of memory");
  }
  if (json_object_set_new(vars->object, name, value)) return util_error("mlxc_template_vars_set: cannot set '%s'", name);
  return 0;
}

int mlxc_template_vars_set_json(mlxc_template_vars* vars, const char* name, const char* json_text) {
  if (!json_text) return util_error("mlxc_template_vars_set_json: null argument");
  json_t* value = parse_json(name ? name : "value", json_text);
  if (!value) return 1;
  return set_var(vars, name, value);
}

int mlxc_template_vars_set_string(mlxc_template_vars* vars, const char* name, const char* value) {
  return set_var(vars, name, value ? json_string(value) : json_null());
}

int mlxc_template_vars_set_bool(mlxc_template_vars* vars, const char* name, int value) {
  return set_var(vars, name, json_boolean(value));
}

int mlxc_template_vars_set_int(mlxc_template_vars* vars, const char* name, long long value) {
  return set_var(vars, name, json_integer(value));
}

int mlxc_template_render_vars(char** out, const mlxc_template* tmpl, const mlxc_template_vars* vars, const mlxc_template_limits* limits) {
  if (!out || !tmpl || !vars) return util_error("mlxc_template_render_vars: null argument");
  *out = NULL;
  return render_object(out, tmpl, vars->object, limits);
}

int mlxc_chat_apply_template(char** out, const char* template_source, const char* messages_json, const char* tools_json,
                             int add_generation_prompt, const char* extra_vars_json) {
  if (!out || !template_source || !messages_json) return util_error("mlxc_chat_apply_template: null argument");
  *out = NULL;
  int status = 0;
  mlxc_template* tmpl = NULL;
  json_t* context = json_object();
  json_t* extra = NULL;
  REQUIRE(context, "mlxc_chat_apply_template: out of memory");
  json_t* messages = parse_json("messages", messages_json);
  if (!messages) {
    status = 1;
    goto cleanup;
  }
  json_object_set_new(context, "messages", messages);
  REQUIRE(json_is_array(messages), "chat template: messages must be a JSON array");
  json_t* tools = tools_json ? parse_json("tools", tools_json) : json_null();
  if (!tools) {
    status = 1;
    goto cleanup;
  }
  json_object_set_new(context, "tools", tools);
  REQUIRE(json_is_array(tools) || json_is_null(tools), "chat template: tools must be a JSON array");
  json_object_set_new(context, "documents", json_null());
  json_object_set_new(context, "add_generation_prompt", json_boolean(add_generation_prompt));
  if (extra_vars_json) {
    extra = parse_json("extra variables", extra_vars_json);
    if (!extra) {
      status = 1;
      goto cleanup;
    }
    REQUIRE(json_is_object(extra), "chat template: extra variables must be a JSON object");
    json_object_update(context, extra);
  }
  TRY(mlxc_template_compile(&tmpl, template_source, NULL));
  TRY(render_object(out, tmpl, context, NULL));
cleanup:
  mlxc_template_free(tmpl);
  json_decref(extra);
  json_decref(context);
  return status;
}
