/* Shared by the elementwise kernels (unary.c, binary.c, ternary.c): strided row iteration spread
 * over the thread pool. */
#ifndef MLXC_CPU_ELEMENTWISE_H
#define MLXC_CPU_ELEMENTWISE_H

#include <stdbool.h>

#include "backend/cpu/strided.h"
#include "mlx/c/array.h"

/* As cpu_for_each_row (same arguments and callback contract), but the outermost dimension left
 * after merging contiguous ones is split into chunks run on the thread pool. A dense array is one
 * merged dimension, so its flat range is split evenly. `fn` must be safe to run concurrently on
 * disjoint parts of the output. */
void cpu_for_each_row_parallel(const int* shape, int ndim, int k, const int64_t* const* strides,
                               cpu_row_fn fn, void* ctx);

/* Whether the CPU kernels have a row loop for op `code` (binary_code / unary_code in
 * ops/codes.h) on inputs of `dtype`; constructors ask before recording a node so an unsupported
 * dtype fails at once with a clear message. */
bool cpu_binary_supported(int code, mlx_dtype dtype);
bool cpu_unary_supported(int code, mlx_dtype dtype);

#endif
