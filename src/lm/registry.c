/* The architectures the language-model layer runs, by config model_type. */
#include <string.h>

#include "lm/model.h"

#define ARCHS(X) X(llama) X(mistral) X(qwen2) X(qwen3) X(phi3) X(gemma2) X(gemma3_text) X(qwen3_moe) X(lfm2)

#define DECLARE(name) extern const lm_arch lm_arch_##name;
ARCHS(DECLARE)
#undef DECLARE

static const lm_arch* const archs[] = {
#define ENTRY(name) &lm_arch_##name,
    ARCHS(ENTRY)
#undef ENTRY
};

const lm_arch* lm_arch_find(const char* model_type) {
  for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
    if (!strcmp(archs[i]->model_type, model_type)) return archs[i];
  return NULL;
}

const char* mlxc_lm_supported_types(void) {
#define NAME(name) #name ", "
  static const char list[] = ARCHS(NAME);
#undef NAME
  static char trimmed[sizeof list];
  memcpy(trimmed, list, sizeof list);
  trimmed[sizeof list - 3] = '\0'; /* drop the final ", " */
  return trimmed;
}
