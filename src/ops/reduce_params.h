/* Parameters of the reduction, scan, softmax and sort primitives, shared by their constructors
 * (ops/reduce.c, scan.c, sort.c) and CPU kernels. */
#ifndef MLXC_OPS_REDUCE_PARAMS_H
#define MLXC_OPS_REDUCE_PARAMS_H

#include <stdbool.h>

#include "core/array.h"

/* Reductions and softmax. The output is row-major; its shape may or may not keep the reduced
 * dims (keepdims), which changes nothing in memory, so the kernel works from the input's dims. */
typedef struct {
  bool reduced[CORE_MAX_NDIM]; /* per input dim */
  int ddof;                    /* var/std: divide by max(n - ddof, 0) */
} reduce_params;

/* Scans along one axis; the output has the input's shape. */
typedef struct {
  int axis;       /* normalised */
  bool reverse;   /* accumulate from the end */
  bool inclusive; /* element i includes input i (else only those before it) */
} scan_params;

/* Sort, argsort, partition, argpartition along one axis. */
typedef struct {
  int axis; /* normalised */
  int kth;  /* partitions: normalised index of the pivot position */
} sort_params;

#endif
