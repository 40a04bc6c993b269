/* Chat templates: a Jinja2 interpreter that renders the chat_template of a Hugging Face
 * tokenizer_config.json exactly as transformers' apply_chat_template does (ImmutableSandboxedEnvironment,
 * trim_blocks, lstrip_blocks, loop controls, raise_exception, strftime_now, transformers' tojson).
 *
 *   char* prompt = NULL;
 *   if (mlxc_chat_apply_template(&prompt, template_source,
 *                                "[{\"role\": \"user\", \"content\": \"Hi!\"}]",
 *                                NULL,                       // tools (JSON array) or NULL
 *                                1,                          // add_generation_prompt
 *                                "{\"bos_token\": \"<s>\", \"enable_thinking\": false}") != 0)
 *     fprintf(stderr, "%s\n", mlxc_last_error());   // e.g. "chat template: line 3, column 7: ..."
 *   else
 *     fputs(prompt, stdout);
 *   free(prompt);
 *
 * Compile once, render many times:
 *
 *   mlxc_template* tmpl = NULL;
 *   char* err = NULL;
 *   if (mlxc_template_compile(&tmpl, source, &err) != 0) { puts(err); free(err); }
 *   mlxc_template_render(&prompt, tmpl, "{\"messages\": [...], \"add_generation_prompt\": true}", NULL);
 *   mlxc_template_free(tmpl);
 *
 * Templates are untrusted input: rendering is bounded in evaluation steps, recursion depth, output
 * size and memory (mlxc_template_default_limits), and every failure is an error code with a message
 * naming the template line and column; nothing aborts. Compiled templates are immutable and may be
 * rendered from several threads at once. */
#ifndef MLXC_CHAT_H
#define MLXC_CHAT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mlxc_template mlxc_template;           /* a compiled template (opaque) */
typedef struct mlxc_template_vars mlxc_template_vars; /* variables for a render (opaque) */

typedef struct {
  size_t max_steps;        /* expression and statement evaluations, loop iterations included */
  size_t max_output_bytes; /* size of the rendered text (and of any captured block) */
  size_t max_memory_bytes; /* everything a render allocates */
  int max_depth;           /* nesting of evaluation, macro recursion included */
} mlxc_template_limits;

/* Limits generous for every real chat template: 20M steps, 64 MiB output, 512 MiB memory, depth 1000. */
mlxc_template_limits mlxc_template_default_limits(void);

/* Compiles template source (UTF-8). On failure returns non-zero, reports through the error handler
 * and, when error is not NULL, stores a malloc'd copy of the message in *error (caller frees).
 * *out must be freed with mlxc_template_free. */
int mlxc_template_compile(mlxc_template** out, const char* source, char** error);

void mlxc_template_free(mlxc_template* tmpl);

/* Renders with the variables of a JSON object (e.g. {"messages": [...], "tools": null,
 * "add_generation_prompt": true, "bos_token": "<s>"}). JSON integers stay integers and floats stay
 * floats; key order is kept. limits may be NULL (defaults). *out is malloc'd (caller frees). */
int mlxc_template_render(char** out, const mlxc_template* tmpl, const char* context_json,
                         const mlxc_template_limits* limits);

/* Variables without JSON text. Each setter replaces an earlier value of the same name. */
int mlxc_template_vars_new(mlxc_template_vars** out);
void mlxc_template_vars_free(mlxc_template_vars* vars);
int mlxc_template_vars_set_json(mlxc_template_vars* vars, const char* name, const char* json_text);
int mlxc_template_vars_set_string(mlxc_template_vars* vars, const char* name, const char* value); /* NULL: None */
int mlxc_template_vars_set_bool(mlxc_template_vars* vars, const char* name, int value);
int mlxc_template_vars_set_int(mlxc_template_vars* vars, const char* name, long long value);
int mlxc_template_render_vars(char** out, const mlxc_template* tmpl, const mlxc_template_vars* vars,
                              const mlxc_template_limits* limits);

/* apply_chat_template in one call: variables messages (a JSON array), tools (JSON array, or None
 * when tools_json is NULL), documents (None), add_generation_prompt, then the members of
 * extra_vars_json (an object or NULL: bos_token, eos_token, enable_thinking, date_string...).
 * *out is malloc'd (caller frees). */
int mlxc_chat_apply_template(char** out, const char* template_source, const char* messages_json,
                             const char* tools_json, int add_generation_prompt, const char* extra_vars_json);

#ifdef __cplusplus
}
#endif

#endif
