/* Row conversion to and from float32 (rows.h). */
#include "backend/cpu/rows.h"

#include <string.h>

#include "backend/cpu/vec.h"
#include "core/half.h"

void cpu_row_to_f32(const void* src, mlx_dtype dtype, int64_t stride, int64_t n, float* dst) {
  switch (dtype) {
    case MLX_FLOAT32: {
      const float* s = src;
      if (stride == 1) {
        memcpy(dst, s, sizeof(float) * (size_t)n);
        break;
      }
      for (int64_t i = 0; i < n; i++) dst[i] = s[i * stride];
      break;
    }
    case MLX_BFLOAT16: {
      const uint16_t* s = src;
      if (stride == 1) { /* the common case */
        cpu_vec_bf16_to_f32(s, dst, n);
        break;
      }
      for (int64_t i = 0; i < n; i++) dst[i] = half_bf16_to_f32(s[i * stride]);
      break;
    }
    case MLX_FLOAT16: {
      const uint16_t* s = src;
      for (int64_t i = 0; i < n; i++) dst[i] = half_f16_to_f32(s[i * stride]);
      break;
    }
    case MLX_FLOAT64: {
      const double* s = src;
      for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i * stride];
      break;
    }
    default: break; /* callers check the dtype */
  }
}

void cpu_row_from_f32(const float* src, void* dst, mlx_dtype dtype, int64_t stride, int64_t n) {
  switch (dtype) {
    case MLX_FLOAT32: {
      float* d = dst;
      for (int64_t i = 0; i < n; i++) d[i * stride] = src[i];
      break;
    }
    case MLX_BFLOAT16: {
      uint16_t* d = dst;
      if (stride == 1) {
        cpu_vec_f32_to_bf16(src, d, n);
        break;
      }
      for (int64_t i = 0; i < n; i++) d[i * stride] = half_f32_to_bf16(src[i]);
      break;
    }
    case MLX_FLOAT16: {
      uint16_t* d = dst;
      for (int64_t i = 0; i < n; i++) d[i * stride] = half_f32_to_f16(src[i]);
      break;
    }
    case MLX_FLOAT64: {
      double* d = dst;
      for (int64_t i = 0; i < n; i++) d[i * stride] = src[i];
      break;
    }
    default: break;
  }
}
