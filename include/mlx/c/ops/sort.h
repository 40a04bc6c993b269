/* mlx-c ops, sorting family: sort/argsort (stable, NaN sorts last), partition/argpartition
 * (element kth lands where a sort would put it, smaller or equal ones before it, greater or equal
 * after; kth may be negative) and topk (the k largest along the axis, in no particular order, as
 * MLX: the last k of a partition at -k). The forms without an axis work on the flattened array.
 * Indices are uint32.
 *
 *   mlx_array order = mlx_array_new();
 *   mlx_argsort_axis(&order, scores, -1, stream);
 */
#ifndef MLX_C_OPS_SORT_H
#define MLX_C_OPS_SORT_H

#include <stdbool.h>
#include <stddef.h>

#include "mlx/c/array.h"
#include "mlx/c/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

int mlx_sort(mlx_array* res, const mlx_array a, const mlx_stream s);
int mlx_sort_axis(mlx_array* res, const mlx_array a, int axis, const mlx_stream s);
int mlx_argsort(mlx_array* res, const mlx_array a, const mlx_stream s);
int mlx_argsort_axis(mlx_array* res, const mlx_array a, int axis, const mlx_stream s);
int mlx_partition(mlx_array* res, const mlx_array a, int kth, const mlx_stream s);
int mlx_partition_axis(mlx_array* res, const mlx_array a, int kth, int axis, const mlx_stream s);
int mlx_argpartition(mlx_array* res, const mlx_array a, int kth, const mlx_stream s);
int mlx_argpartition_axis(mlx_array* res, const mlx_array a, int kth, int axis, const mlx_stream s);
int mlx_topk(mlx_array* res, const mlx_array a, int k, const mlx_stream s);
int mlx_topk_axis(mlx_array* res, const mlx_array a, int k, int axis, const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
