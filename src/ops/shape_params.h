/* Parameters of the shape primitives (concatenate, pad, slice_update, as_strided, diagonal,
 * dynamic slices), shared by their constructors (ops/shape.c) and CPU kernels. */
#ifndef MLXC_OPS_SHAPE_PARAMS_H
#define MLXC_OPS_SHAPE_PARAMS_H

#include <stdbool.h>

#include "core/array.h"

typedef struct {
  int axis; /* normalised, in [0, ndim) */
} axis_params;

typedef struct {
  int low[CORE_MAX_NDIM]; /* elements added before the input, per dim */
  bool edge;              /* repeat the border element instead of the pad value */
} pad_params;

typedef struct {
  int64_t strides[CORE_MAX_NDIM]; /* in elements of the row-major input */
  int64_t offset;
} as_strided_params;

typedef struct {
  int offset, axis1, axis2; /* axes normalised and distinct */
} diagonal_params;

typedef struct {
  int naxes;
  int axes[CORE_MAX_NDIM]; /* the dims the start array's entries apply to */
} dynamic_slice_params;

#endif
