/* argmax_lse (mlxc_fast_argmax_logsumexp) on the CPU: the argmax and logsumexp reduction kernels
 * over the last axis, and the value at each row's index copied out. */
#include <string.h>

#include "backend/cpu/kernels.h"
#include "ops/primitives.h"
#include "ops/reduce_params.h"

int cpu_eval_argmax_lse(core_node* node, core_array** outputs) {
  core_array* x = node->inputs[0];
  reduce_params p;
  memset(&p, 0, sizeof p);
  p.reduced[x->ndim - 1] = true;
  core_node argmax = {.op = &prim_argmax, .params = &p, .n_inputs = 1, .inputs = node->inputs, .n_outputs = 1,
                      .stream = node->stream};
  core_node lse = {.op = &prim_logsumexp, .params = &p, .n_inputs = 1, .inputs = node->inputs, .n_outputs = 1,
                   .stream = node->stream};
  if (cpu_eval_reduce(&argmax, &outputs[0]) || cpu_eval_reduce(&lse, &outputs[2]) ||
      core_array_alloc_contiguous(outputs[1]))
    return 1;
  const uint32_t* index = core_array_ptr(outputs[0]);
  const size_t elem = core_dtype_size(x->dtype);
  const char* base = core_array_ptr(x);
  char* value = core_array_ptr(outputs[1]);
  const int last = x->ndim - 1;
  for (size_t r = 0; r < outputs[1]->size; r++) {
    int64_t at = index[r] * x->strides[last], rest = (int64_t)r;
    for (int d = last - 1; d >= 0; d--) {  /* row r's position in x's leading dims */
      at += (rest % x->shape[d]) * x->strides[d];
      rest /= x->shape[d];
    }
    memcpy(value + r * elem, base + at * (int64_t)elem, elem);
  }
  return 0;
}
