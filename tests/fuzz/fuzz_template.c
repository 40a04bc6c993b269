/* libFuzzer target for the chat-template compiler and evaluator: any input must compile or fail
 * with a message, and any compiled template must render or fail within the limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlxc/chat.h"
#include "mlxc/error.h"

static const char* const context =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": \"hé 😀\"},"
    " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"type\": \"function\", \"function\":"
    " {\"name\": \"f\", \"arguments\": {\"a\": 1, \"b\": [1.5, true, null]}}}]},"
    " {\"role\": \"tool\", \"content\": \"42\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\"}}}],"
    " \"documents\": null, \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mlxc_set_errors_quiet(1);
  char* source = malloc(size + 1);
  if (!source) return 0;
  memcpy(source, data, size);
  source[size] = '\0';
  mlxc_template* tmpl = NULL;
  if (mlxc_template_compile(&tmpl, source, NULL) == 0) {
    mlxc_template_limits limits = mlxc_template_default_limits();
    limits.max_steps = 100000;
    limits.max_output_bytes = 1 << 20;
    limits.max_memory_bytes = 64 << 20;
    limits.max_depth = 200;
    char* out = NULL;
    if (mlxc_template_render(&out, tmpl, context, &limits) == 0) free(out);
    mlxc_template_free(tmpl);
  }
  free(source);
  return 0;
}
