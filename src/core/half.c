/* Public wrappers of the half-precision conversions. */
#include "core/half.h"

#include "mlxc/half.h"

float mlxc_float16_to_float32(float16_t h) { return half_f16_to_f32(h); }
float16_t mlxc_float32_to_float16(float f) { return half_f32_to_f16(f); }
float mlxc_bfloat16_to_float32(bfloat16_t h) { return half_bf16_to_f32(h); }
bfloat16_t mlxc_float32_to_bfloat16(float f) { return half_f32_to_bf16(f); }
