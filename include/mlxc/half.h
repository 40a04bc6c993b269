/* Conversions for the raw float16 and bfloat16 element types of mlx/c/half.h.
 *
 *   bfloat16_t b = mlxc_float32_to_bfloat16(1.5f);   // round to nearest even
 *   float f = mlxc_bfloat16_to_float32(b);
 */
#ifndef MLXC_HALF_H
#define MLXC_HALF_H

#include "mlx/c/half.h"

#ifdef __cplusplus
extern "C" {
#endif

float mlxc_float16_to_float32(float16_t h);
float16_t mlxc_float32_to_float16(float f);
float mlxc_bfloat16_to_float32(bfloat16_t h);
bfloat16_t mlxc_float32_to_bfloat16(float f);

#ifdef __cplusplus
}
#endif

#endif
