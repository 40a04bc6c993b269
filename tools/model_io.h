/* Shared by the CLI's model commands: loading a model folder with its tokenizer, and rendering
 * conversations through the model's chat template. */
#ifndef MLXC_TOOLS_MODEL_IO_H
#define MLXC_TOOLS_MODEL_IO_H

#include "mlxc/lm.h"
#include "mlxc/tokenizer.h"

/* Loads the tokenizer and the model of `dir` on `device` ("cpu", "gpu" or NULL for the default). */
int tool_load_model(const char* dir, const char* device, mlxc_lm_model** model, mlxc_tokenizer** tok);
/* The chat template: tokenizer_config.json's, else chat_template.jinja (transformers 5).
 * malloc'd; NULL with a message on stderr. */
char* tool_chat_template_source(const mlxc_tokenizer* tok, const char* dir);
/* Renders a JSON array of messages (a json_t*) with the generation prompt on; malloc'd or NULL. */
char* tool_render_messages(const mlxc_tokenizer* tok, const char* dir, const void* messages);
/* Renders [system], user: prompt. */
char* tool_render_chat(const mlxc_tokenizer* tok, const char* dir, const char* system, const char* prompt);

#endif
