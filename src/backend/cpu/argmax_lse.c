/* argmax_lse (mlxc_fast_argmax_logsumexp) on the CPU: the argmax and logsumexp reduction kernels
 * over the last axis of x as float32 (half x converted first, so that the results are the
 * composed ops' on the float32 values; float64 x as it is), and the value at each row's index. */
#include <string.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/kernels.h"
#include "ops/primitives.h"
#include "ops/reduce_params.h"

static int argmax_lse_of(core_node* node, core_array* x, core_array** outputs) {
  reduce_params p;
  memset(&p, 0, sizeof p);
  p.reduced[x->ndim - 1] = true;
  core_array* inputs[1] = {x};
  core_node argmax = {.op = &prim_argmax, .params = &p, .n_inputs = 1, .inputs = inputs, .n_outputs = 1,
                      .stream = node->stream};
  core_node lse = {.op = &prim_logsumexp, .params = &p, .n_inputs = 1, .inputs = inputs, .n_outputs = 1,
                   .stream = node->stream};
  if (cpu_eval_reduce(&argmax, &outputs[0]) || cpu_eval_reduce(&lse, &outputs[2]) ||
      core_array_alloc_contiguous(outputs[1]))
    return 1;
  const uint32_t* index = core_array_ptr(outputs[0]);
  const size_t elem = core_dtype_size(x->dtype), value_elem = core_dtype_size(outputs[1]->dtype);
  const char* base = core_array_ptr(x);
  char* value = core_array_ptr(outputs[1]);
  const int last = x->ndim - 1;
  for (size_t r = 0; r < outputs[1]->size; r++) {
    int64_t at = index[r] * x->strides[last], rest = (int64_t)r;
    for (int d = last - 1; d >= 0; d--) {  /* row r's position in x's leading dims */
      at += (rest % x->shape[d]) * x->strides[d];
      rest /= x->shape[d];
    }
    cpu_store_real(value + r * value_elem, outputs[1]->dtype, cpu_load_real(base + at * (int64_t)elem, x->dtype));
  }
  return 0;
}

int cpu_eval_argmax_lse(core_node* node, core_array** outputs) {
  core_array* x = node->inputs[0];
  if (x->dtype == outputs[1]->dtype) return argmax_lse_of(node, x, outputs);
  core_array* xf = core_array_create(x->shape, x->ndim, outputs[1]->dtype);
  if (!xf || core_array_alloc_contiguous(xf)) {
    if (xf) core_array_release(xf);
    return 1;
  }
  cpu_convert(core_array_ptr(xf), xf->dtype, core_array_ptr(x), x->dtype, x->shape, x->strides, x->ndim);
  int status = argmax_lse_of(node, xf, outputs);
  core_array_release(xf);
  return status;
}
