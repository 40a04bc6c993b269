/* Iteration over n-dimensional strided operands, row by row. Dimensions that are contiguous
 * for every operand are merged first, so a dense array becomes a single row. */
#ifndef MLXC_CPU_STRIDED_H
#define MLXC_CPU_STRIDED_H

#include <stdint.h>

#define CPU_MAX_OPERANDS 4

/* Called once per innermost row: offsets[k] is the element offset of operand k at the row's
 * start, strides[k] its element stride along the row, n the row length. */
typedef void (*cpu_row_fn)(void* ctx, const int64_t* offsets, const int64_t* strides, int64_t n);

/* Visits all elements of `shape` for `k` operands (k <= CPU_MAX_OPERANDS), strides[k][ndim]. */
void cpu_for_each_row(const int* shape, int ndim, int k, const int64_t* const* strides,
                      cpu_row_fn fn, void* ctx);

/* Strides of an operand broadcast to `out_shape` (0 along broadcast dimensions). */
void cpu_broadcast_strides(const int* in_shape, const int64_t* in_strides, int in_ndim,
                           const int* out_shape, int out_ndim, int64_t* out_strides);

#endif
