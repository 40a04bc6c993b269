/* mlx-c version: the version of mlxc as a string.
 *
 *   mlx_string v = mlx_string_new(); mlx_version(&v); puts(mlx_string_data(v)); mlx_string_free(v);
 */
#ifndef MLX_C_VERSION_H
#define MLX_C_VERSION_H

#include "mlx/c/string.h"

#ifdef __cplusplus
extern "C" {
#endif

int mlx_version(mlx_string* str_);

#ifdef __cplusplus
}
#endif

#endif
