/* Shared helpers of the op constructors (src/ops/): argument checks, shape arithmetic,
 * dtype casts and handing results back through mlx-c's out-parameters.
 *
 * An op constructor validates its arguments, infers the output dtype and shape, and records a
 * node (core_node_single / core_node_create); kernels live in src/backend. Every failure is
 * reported with the op's name. */
#ifndef MLXC_OPS_COMMON_H
#define MLXC_OPS_COMMON_H

#include <stdbool.h>

#include "core/array.h"
#include "core/device.h"
#include "util/error.h"

/* The array behind a handle, or NULL with "<op>: <what> is an empty array" reported. */
core_array* ops_arg(mlx_array a, const char* op, const char* what);

/* Normalises a possibly negative axis into [0, ndim); reports "<op>: axis A is out of bounds
 * for an array of N dimensions". */
int ops_axis(int axis, int ndim, const char* op, int* out);

/* numpy broadcasting of two shapes; out_shape needs CORE_MAX_NDIM entries. */
int ops_broadcast_shapes(const int* a, int a_ndim, const int* b, int b_ndim, int* out_shape,
                         int* out_ndim, const char* op);

/* `a` as dtype: the same array retained when it already has it, else an astype node. */
core_array* ops_astype(core_array* a, mlx_dtype dtype, core_stream* s);
/* `a` broadcast to shape (a view node), or `a` retained when the shape already matches. */
core_array* ops_broadcast_to(core_array* a, const int* shape, int ndim, core_stream* s);

/* Moves `out` into *res; returns 0, or 1 when out is NULL (its error already reported). */
int ops_finish(mlx_array* res, core_array* out, const char* op);

/* Shape equality. */
bool ops_same_shape(const core_array* a, const core_array* b);

#endif
