/* Internal form of the unary elementwise ops, for other op families to compose with. */
#ifndef MLXC_OPS_UNARY_H
#define MLXC_OPS_UNARY_H

#include "ops/ops_common.h"

/* op(x) computed on x cast to `compute`, with output dtype `out_dtype`; params (malloc'ed, may be
 * NULL) are owned by the node from then on, even on failure. Reports dtypes the kernels lack.
 * Returns a new reference, or NULL with the error reported. */
core_array* ops_unary(const core_op* op, core_array* x, mlx_dtype compute, mlx_dtype out_dtype,
                      void* params, core_stream* s);

/* op(x) with MLX's dtype rule for that op (math functions make integers float32, predicates give
 * bool, abs/real/imag of complex64 give float32, ...). */
core_array* ops_unary_default(const core_op* op, core_array* x, core_stream* s);

#endif
