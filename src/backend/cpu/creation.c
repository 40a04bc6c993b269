/* Creation kernels: arange, linspace, triangular patterns (eye, tri, tril, triu) and window
 * functions. Values are computed in long double/double and converted once per element. */
#include <math.h>
#include <string.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/copy.h"
#include "backend/cpu/kernels.h"
#include "ops/codes.h"
#include "ops/creation_params.h"

int cpu_eval_arange(core_node* node, core_array** outputs) {
  core_array* out = outputs[0];
  const arange_params* p = node->params;
  if (core_array_alloc_contiguous(out)) return 1;
  char* dst = core_array_ptr(out);
  size_t elem = core_dtype_size(out->dtype);
  for (size_t i = 0; i < out->size; i++)
    cpu_store_real(dst + i * elem, out->dtype, (long double)p->start + (long double)i * p->step);
  return 0;
}

/* start * (1 - t) + stop * t with t = i / (num - 1): both ends exact. */
int cpu_eval_linspace(core_node* node, core_array** outputs) {
  core_array* out = outputs[0];
  const linspace_params* p = node->params;
  if (core_array_alloc_contiguous(out)) return 1;
  char* dst = core_array_ptr(out);
  size_t elem = core_dtype_size(out->dtype), n = out->size;
  for (size_t i = 0; i < n; i++) {
    long double t = n > 1 ? (long double)i / (long double)(n - 1) : 0;
    cpu_store_real(dst + i * elem, out->dtype, (long double)p->start * (1 - t) + (long double)p->stop * t);
  }
  return 0;
}

/* Element (i, j) of each trailing matrix is kept when j - i == k (eye), <= k (lower) or >= k
 * (upper); kept elements are 1 (no input) or the input's, the others 0. Kept columns form one
 * run per row. */
int cpu_eval_triangle(core_node* node, core_array** outputs) {
  core_array* out = outputs[0];
  int k = ((const triangle_params*)node->params)->k, code = node->op->code;
  if (core_array_alloc_contiguous(out)) return 1;
  size_t elem = core_dtype_size(out->dtype);
  char* dst = core_array_ptr(out);
  if (!out->size) return 0;
  char one[16] = {0};
  cpu_store_real(one, out->dtype, 1);
  if (node->n_inputs) {
    const core_array* in = node->inputs[0];
    cpu_copy_strided(dst, core_array_ptr(in), in->shape, in->strides, in->ndim, elem);
  }
  int64_t rows = out->shape[out->ndim - 2], cols = out->shape[out->ndim - 1];
  for (int64_t r = 0; r < (int64_t)out->size / cols; r++) {
    int64_t i = r % rows, lo, hi; /* kept columns: [lo, hi) */
    switch (code) {
      case TRIANGLE_EYE: lo = i + k, hi = i + k + 1; break;
      case TRIANGLE_LOWER: lo = 0, hi = i + k + 1; break;
      default: lo = i + k, hi = cols; break;
    }
    lo = lo < 0 ? 0 : lo > cols ? cols : lo;
    hi = hi < lo ? lo : hi > cols ? cols : hi;
    char* row = dst + r * cols * (int64_t)elem;
    memset(row, 0, (size_t)lo * elem);
    memset(row + hi * (int64_t)elem, 0, (size_t)(cols - hi) * elem);
    if (!node->n_inputs)
      for (int64_t j = lo; j < hi; j++) memcpy(row + j * (int64_t)elem, one, elem);
  }
  return 0;
}

/* numpy's window definitions over M points (float32); M == 1 gives [1]. */
int cpu_eval_window(core_node* node, core_array** outputs) {
  core_array* out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  float* dst = core_array_ptr(out);
  int64_t n = (int64_t)out->size;
  const double pi = 3.14159265358979323846;
  for (int64_t i = 0; i < n; i++) {
    double x = n > 1 ? (double)i / (double)(n - 1) : 0, w = 1;
    switch (node->op->code) {
      case WINDOW_HAMMING: w = 0.54 - 0.46 * cos(2 * pi * x); break;
      case WINDOW_HANNING: w = 0.5 - 0.5 * cos(2 * pi * x); break;
      case WINDOW_BARTLETT: w = 1 - fabs(2 * x - 1); break;
      case WINDOW_BLACKMAN: w = 0.42 - 0.5 * cos(2 * pi * x) + 0.08 * cos(4 * pi * x); break;
    }
    dst[i] = n > 1 ? (float)w : 1.0f;
  }
  return 0;
}
