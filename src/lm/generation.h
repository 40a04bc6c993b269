/* Small helpers shared by the generation loops (plain, batch, speculative). */
#ifndef MLXC_LM_GENERATION_H
#define MLXC_LM_GENERATION_H

#include <stdbool.h>
#include <time.h>

#include "mlxc/lm.h"

static inline double lm_now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline bool lm_is_eos(const mlxc_lm_generate_params* p, int32_t token) {
  for (size_t i = 0; i < p->n_eos_ids; i++)
    if (p->eos_ids[i] == token) return true;
  return false;
}

#endif
