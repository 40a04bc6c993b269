/* Helpers shared by the LAPACK kernels of linalg.c (real) and linalg_complex.c (complex64):
 * batch walking, scratch allocation, error reports. */
#ifndef MLXC_CPU_LINALG_UTIL_H
#define MLXC_CPU_LINALG_UTIL_H

#include <lapacke.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/array.h"
#include "util/error.h"

/* Number of matrices in a batch of (..., rows, cols) arrays. */
static inline int64_t matrix_count(const core_array* a) {
  int64_t count = 1;
  for (int d = 0; d < a->ndim - 2; d++) count *= a->shape[d];
  return count;
}

/* Element offset of matrix `index` (row-major over the batch dimensions) in a. */
static inline int64_t matrix_offset(const core_array* a, int64_t index) {
  int64_t offset = 0;
  for (int d = a->ndim - 3; d >= 0; d--) {
    offset += (index % a->shape[d]) * a->strides[d];
    index /= a->shape[d];
  }
  return offset;
}

/* Reports a LAPACK failure: info < 0 is a rejected argument (LAPACKE also rejects NaNs this
 * way), info > 0 the op's mathematical failure `what`. */
static inline int lapack_error(const char* op, const char* what, lapack_int info, int64_t index,
                               int64_t count) {
  char where[64] = "";
  if (count > 1) snprintf(where, sizeof where, " (matrix %lld of the batch)", (long long)index);
  if (info < 0)
    return util_error("%s: LAPACK rejected argument %d; does the input hold NaN or infinity?%s",
                      op, (int)-info, where);
  return util_error("%s: %s%s", op, what, where);
}

/* One allocation for a kernel's scratch, freed by the caller. */
static inline void* scratch(size_t bytes) {
  void* p = malloc(bytes ? bytes : 1);
  if (!p) util_error("linalg: out of memory for %zu bytes of scratch", bytes);
  return p;
}

/* complex64 inputs of svd, eigh and eig (linalg_complex.c); same outputs as the real kernels
 * except that S and eigh's eigenvalues are float32 and the vectors complex64. */
int cpu_eval_svd_complex(core_node* node, core_array** outputs);
int cpu_eval_eigh_complex(core_node* node, core_array** outputs);
int cpu_eval_eig_complex(core_node* node, core_array** outputs);

#endif
