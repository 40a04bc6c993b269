/* mlxc generate's other modes: several prompts as one batch, and speculative decoding with a
 * draft model (tools/generate_modes.c). */
#ifndef MLXC_TOOLS_GENERATE_MODES_H
#define MLXC_TOOLS_GENERATE_MODES_H

#include <stdbool.h>

#include "mlxc/lm.h"
#include "options.h"

typedef struct {
  const char* model;          /* folder or hub id */
  const char* device;
  const option_strings* prompts;
  const char* prompts_file;   /* one prompt per line (empty lines skipped), or NULL */
  bool chat, json;
  const char* system;
  const option_strings* stops;
} generate_batch_request;

/* Generates for every prompt in one batch and prints each row's text under a label, or a JSON
 * array of objects. Returns the exit status (messages on stderr). */
int tool_generate_batch(const generate_batch_request* request, mlxc_lm_generate_params params);

/* Loads the draft model `draft_dir` (folder or hub id) and generates speculatively. */
int tool_generate_speculative(const char* draft_dir, const char* device, int num_draft_tokens, mlxc_lm_session* session,
                              const int32_t* ids, size_t n_ids, const mlxc_lm_generate_params* params,
                              mlxc_lm_generation* out);

#endif
