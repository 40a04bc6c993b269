/* Shared constructor of binary elementwise ops (used by arithmetic, comparison, logical,
 * bitwise and math families). */
#ifndef MLXC_OPS_BINARY_H
#define MLXC_OPS_BINARY_H

#include "mlx/c/array.h"
#include "mlx/c/stream.h"
#include "ops/ops_common.h"

typedef enum {
  BINARY_SAME,        /* out = promote(a, b) (add, maximum, ...) */
  BINARY_INEXACT,     /* out = promoted, made floating when integer (divide, arctan2, ...) */
  BINARY_TO_BOOL,     /* computed in the promoted dtype, out bool (comparisons) */
  BINARY_BOOL_IN_OUT, /* inputs cast to bool, out bool (logical_and/or) */
  BINARY_SHIFT,       /* as SAME, but bool is computed as uint8 (left_shift, right_shift) */
} binary_dtype_rule;

/* Builds op(a, b) computed in `compute` with output dtype `out_dtype`; NULL on error. */
core_array* ops_binary(const core_op* op, core_array* a, core_array* b, mlx_dtype compute,
                       mlx_dtype out_dtype, core_stream* s);

/* op(a, b) with the dtypes of `rule`; reports dtypes the kernels lack ("<op>: not supported for
 * dtype float32"). Returns a new reference, or NULL with the error reported. */
core_array* ops_binary_rule(const core_op* op, core_array* a, core_array* b, binary_dtype_rule rule,
                            core_stream* s);

/* The whole mlx-c entry point for a binary op following `rule`. */
int ops_binary_api(mlx_array* res, mlx_array a, mlx_array b, mlx_stream s, const core_op* op,
                   binary_dtype_rule rule);

#endif
