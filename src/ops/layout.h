/* Internal layout constructors other op families build on (layout.c). Each returns a new
 * reference, or NULL with the error reported; arguments are assumed valid. */
#ifndef MLXC_OPS_LAYOUT_H
#define MLXC_OPS_LAYOUT_H

#include "ops/ops_common.h"

core_array* ops_reshape(core_array* x, const int* shape, int ndim, core_stream* s);
core_array* ops_transpose(core_array* x, const int* perm, core_stream* s);
/* One dimension of a Python slice over n elements: returns its length and sets *first to the
 * first index taken (0 when empty). */
int ops_slice_dim(int n, int start, int stop, int step, int* first);
/* start/stop may be negative (from the end) and are clamped, as Python slices. */
core_array* ops_slice(core_array* x, const int* start, const int* stop, const int* step, core_stream* s);

#endif
