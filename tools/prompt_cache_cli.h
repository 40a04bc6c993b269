/* Prompt-cache files from the command line (tools/cmd_cache_prompt.c). */
#ifndef MLXC_TOOLS_PROMPT_CACHE_CLI_H
#define MLXC_TOOLS_PROMPT_CACHE_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "mlxc/lm.h"
#include "mlxc/tokenizer.h"

/* The model the file was made with (its "model" metadata), malloc'd; NULL with a message. */
char* tool_prompt_cache_model(const char* file);
/* Loads the prompt cache into `session` (checking it comes from the session's model) and turns
 * the new prompt's ids (encoded with special tokens) into those still to run: the part after
 * the cached prompt when it extends it, else the whole prompt after the cache (without a BOS).
 * *reused: the cached tokens kept. */
int tool_prompt_cache_resume(mlxc_lm_session* session, const mlxc_tokenizer* tok, const char* file, int32_t** ids,
                             size_t* n_ids, size_t* reused);

#endif
