/* CPU kernels of the primitives (one declaration per kernel named in ops/primitives.def).
 * A kernel computes node->outputs from node->inputs (already evaluated) and node->params. */
#ifndef MLXC_CPU_KERNELS_H
#define MLXC_CPU_KERNELS_H

#include "core/array.h"

#define KERNEL(fn) int fn(core_node* node, core_array** outputs);
KERNEL(cpu_eval_astype)
KERNEL(cpu_eval_copy)
KERNEL(cpu_eval_broadcast)
KERNEL(cpu_eval_reshape)
KERNEL(cpu_eval_transpose)
KERNEL(cpu_eval_slice)
KERNEL(cpu_eval_binary)
KERNEL(cpu_eval_divmod)
KERNEL(cpu_eval_unary)
KERNEL(cpu_eval_select)
KERNEL(cpu_eval_all_true)
KERNEL(cpu_eval_random_bits)
KERNEL(cpu_eval_rms_norm)
KERNEL(cpu_eval_layer_norm)
KERNEL(cpu_eval_rope)
KERNEL(cpu_eval_sdpa)
KERNEL(cpu_eval_reduce)
KERNEL(cpu_eval_scan)
KERNEL(cpu_eval_softmax)
KERNEL(cpu_eval_sort)
#undef KERNEL

#endif
