/* mlx-c transforms: evaluation of lazy arrays. (Autodiff transforms are not provided yet.)
 *
 *   mlx_vector_array outs = mlx_vector_array_new_value(c);
 *   mlx_eval(outs);
 *   mlx_vector_array_free(outs);
 */
#ifndef MLX_C_TRANSFORMS_H
#define MLX_C_TRANSFORMS_H

#include "mlx/c/array.h"
#include "mlx/c/vector.h"

#ifdef __cplusplus
extern "C" {
#endif

int mlx_async_eval(const mlx_vector_array outputs);
int mlx_eval(const mlx_vector_array outputs);

#ifdef __cplusplus
}
#endif

#endif
