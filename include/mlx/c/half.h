/* Half-precision element types. On x86-64 C has no portable half type, so these hold the raw
 * IEEE binary16 / bfloat16 bits; convert with mlxc_float16_to_float32 and friends (mlxc/half.h).
 *
 *   float16_t h; mlx_array_item_float16(&h, a); float f = mlxc_float16_to_float32(h);
 */
#ifndef MLX_C_HALF_H
#define MLX_C_HALF_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t float16_t;
typedef uint16_t bfloat16_t;

#ifdef __cplusplus
}
#endif

#endif
