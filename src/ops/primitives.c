/* Defines the core_op of each primitive in primitives.def, wiring its kernels. */
#include "ops/primitives.h"

#include "backend/cpu/kernels.h"
#include "ops/codes.h"

#define PRIM(prim, cpu, op_code, free_fn) \
  const core_op prim_##prim = {.name = #prim, .code = op_code, .eval_cpu = cpu, .free_params = free_fn};
#include "ops/primitives.def"
#undef PRIM
