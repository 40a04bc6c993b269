/* The primitives listed in primitives.def, as core_op objects (prim_<name>). */
#ifndef MLXC_OPS_PRIMITIVES_H
#define MLXC_OPS_PRIMITIVES_H

#include "core/array.h"

#define PRIM(name, cpu, code, free_params) extern const core_op prim_##name;
#include "ops/primitives.def"
#undef PRIM

#endif
