/* Dtype conversion kernels (convert.h) and the astype primitive. Hot pairs (same dtype,
 * float32 <-> float16/bfloat16) get typed loops; the rest go through long double. */
#include "backend/cpu/convert.h"

#include <complex.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/copy.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/strided.h"
#include "backend/cpu/vec.h"
#include "core/half.h"

long double cpu_load_real(const void* p, mlx_dtype dtype) {
  switch (dtype) {
    case MLX_BOOL: return *(const bool*)p ? 1 : 0;
    case MLX_UINT8: return *(const uint8_t*)p;
    case MLX_UINT16: return *(const uint16_t*)p;
    case MLX_UINT32: return *(const uint32_t*)p;
    case MLX_UINT64: return *(const uint64_t*)p;
    case MLX_INT8: return *(const int8_t*)p;
    case MLX_INT16: return *(const int16_t*)p;
    case MLX_INT32: return *(const int32_t*)p;
    case MLX_INT64: return *(const int64_t*)p;
    case MLX_FLOAT16: return half_f16_to_f32(*(const uint16_t*)p);
    case MLX_BFLOAT16: return half_bf16_to_f32(*(const uint16_t*)p);
    case MLX_FLOAT32: return *(const float*)p;
    case MLX_FLOAT64: return *(const double*)p;
    case MLX_COMPLEX64: return ((const float*)p)[0];
  }
  return 0;
}

/* Saturating truncation of v into [lo, hi]; NaN gives 0. */
static long double clamp_int(long double v, long double lo, long double hi) {
  if (isnan(v)) return 0;
  v = truncl(v);
  return v < lo ? lo : v > hi ? hi : v;
}

void cpu_store_real(void* p, mlx_dtype dtype, long double v) {
  switch (dtype) {
    case MLX_BOOL: *(bool*)p = v != 0; break;
    case MLX_UINT8: *(uint8_t*)p = (uint8_t)clamp_int(v, 0, UINT8_MAX); break;
    case MLX_UINT16: *(uint16_t*)p = (uint16_t)clamp_int(v, 0, UINT16_MAX); break;
    case MLX_UINT32: *(uint32_t*)p = (uint32_t)clamp_int(v, 0, UINT32_MAX); break;
    case MLX_UINT64: *(uint64_t*)p = (uint64_t)clamp_int(v, 0, (long double)UINT64_MAX); break;
    case MLX_INT8: *(int8_t*)p = (int8_t)clamp_int(v, INT8_MIN, INT8_MAX); break;
    case MLX_INT16: *(int16_t*)p = (int16_t)clamp_int(v, INT16_MIN, INT16_MAX); break;
    case MLX_INT32: *(int32_t*)p = (int32_t)clamp_int(v, INT32_MIN, INT32_MAX); break;
    case MLX_INT64: *(int64_t*)p = (int64_t)clamp_int(v, (long double)INT64_MIN, (long double)INT64_MAX); break;
    case MLX_FLOAT16: *(uint16_t*)p = half_f32_to_f16((float)v); break;
    case MLX_BFLOAT16: *(uint16_t*)p = half_f32_to_bf16((float)v); break;
    case MLX_FLOAT32: *(float*)p = (float)v; break;
    case MLX_FLOAT64: *(double*)p = (double)v; break;
    case MLX_COMPLEX64: ((float*)p)[0] = (float)v; ((float*)p)[1] = 0; break;
  }
}

static bool is_integral(mlx_dtype d) { return d == MLX_BOOL || core_dtype_is_integer(d); }

/* Integer to integer conversions wrap modulo 2^bits, as C (and MLX) define them. */
static uint64_t load_bits(const void* p, mlx_dtype dtype) {
  switch (dtype) {
    case MLX_BOOL: return *(const bool*)p;
    case MLX_UINT8: return *(const uint8_t*)p;
    case MLX_UINT16: return *(const uint16_t*)p;
    case MLX_UINT32: return *(const uint32_t*)p;
    case MLX_UINT64: return *(const uint64_t*)p;
    case MLX_INT8: return (uint64_t)(int64_t)*(const int8_t*)p;
    case MLX_INT16: return (uint64_t)(int64_t)*(const int16_t*)p;
    case MLX_INT32: return (uint64_t)(int64_t)*(const int32_t*)p;
    case MLX_INT64: return (uint64_t)*(const int64_t*)p;
    default: return 0;
  }
}

static void store_bits(void* p, mlx_dtype dtype, uint64_t v) {
  switch (dtype) {
    case MLX_BOOL: *(bool*)p = v != 0; break;
    case MLX_UINT8: *(uint8_t*)p = (uint8_t)v; break;
    case MLX_UINT16: *(uint16_t*)p = (uint16_t)v; break;
    case MLX_UINT32: *(uint32_t*)p = (uint32_t)v; break;
    case MLX_UINT64: *(uint64_t*)p = v; break;
    case MLX_INT8: *(int8_t*)p = (int8_t)v; break;
    case MLX_INT16: *(int16_t*)p = (int16_t)v; break;
    case MLX_INT32: *(int32_t*)p = (int32_t)v; break;
    case MLX_INT64: *(int64_t*)p = (int64_t)v; break;
    default: break;
  }
}

typedef struct {
  char* dst;
  const char* src;
  mlx_dtype dst_dtype, src_dtype;
  size_t dst_size, src_size;
} convert_ctx;

static void convert_row(void* p, const int64_t* off, const int64_t* st, int64_t n) {
  convert_ctx* c = p;
  char* d = c->dst + off[0] * (int64_t)c->dst_size;
  const char* s = c->src + off[1] * (int64_t)c->src_size;
  int64_t ds = st[0], ss = st[1];
  /* contiguous float32 <-> bfloat16 rows through vec.h's vector loops (the same values): the
   * strided loops below ran a 151936-value row of logits at ~0.35 ns a value */
  if (ds == 1 && ss == 1 && c->src_dtype == MLX_FLOAT32 && c->dst_dtype == MLX_BFLOAT16) {
    cpu_vec_f32_to_bf16((const float*)s, (uint16_t*)d, n);
  } else if (ds == 1 && ss == 1 && c->src_dtype == MLX_BFLOAT16 && c->dst_dtype == MLX_FLOAT32) {
    cpu_vec_bf16_to_f32((const uint16_t*)s, (float*)d, n);
  } else if (c->src_dtype == MLX_FLOAT32 && c->dst_dtype == MLX_BFLOAT16) {
    for (int64_t i = 0; i < n; i++) ((uint16_t*)d)[i * ds] = half_f32_to_bf16(((const float*)s)[i * ss]);
  } else if (c->src_dtype == MLX_BFLOAT16 && c->dst_dtype == MLX_FLOAT32) {
    for (int64_t i = 0; i < n; i++) ((float*)d)[i * ds] = half_bf16_to_f32(((const uint16_t*)s)[i * ss]);
  } else if (c->src_dtype == MLX_FLOAT32 && c->dst_dtype == MLX_FLOAT16) {
    for (int64_t i = 0; i < n; i++) ((uint16_t*)d)[i * ds] = half_f32_to_f16(((const float*)s)[i * ss]);
  } else if (c->src_dtype == MLX_FLOAT16 && c->dst_dtype == MLX_FLOAT32) {
    for (int64_t i = 0; i < n; i++) ((float*)d)[i * ds] = half_f16_to_f32(((const uint16_t*)s)[i * ss]);
  } else if (c->src_dtype == MLX_COMPLEX64 && c->dst_dtype == MLX_COMPLEX64) {
    for (int64_t i = 0; i < n; i++) memcpy(d + i * ds * 8, s + i * ss * 8, 8);
  } else if (is_integral(c->src_dtype) && is_integral(c->dst_dtype)) {
    for (int64_t i = 0; i < n; i++)
      store_bits(d + i * ds * (int64_t)c->dst_size, c->dst_dtype,
                 load_bits(s + i * ss * (int64_t)c->src_size, c->src_dtype));
  } else {
    for (int64_t i = 0; i < n; i++)
      cpu_store_real(d + i * ds * (int64_t)c->dst_size, c->dst_dtype,
                     cpu_load_real(s + i * ss * (int64_t)c->src_size, c->src_dtype));
  }
}

void cpu_convert(void* dst, mlx_dtype dst_dtype, const void* src, mlx_dtype src_dtype,
                 const int* shape, const int64_t* src_strides, int ndim) {
  if (dst_dtype == src_dtype) {
    cpu_copy_strided(dst, src, shape, src_strides, ndim, core_dtype_size(src_dtype));
    return;
  }
  convert_ctx c = {dst, src, dst_dtype, src_dtype, core_dtype_size(dst_dtype), core_dtype_size(src_dtype)};
  int64_t dst_strides[CORE_MAX_NDIM];
  core_row_strides(shape, ndim, dst_strides);
  const int64_t* strides[2] = {dst_strides, src_strides};
  cpu_for_each_row(shape, ndim, 2, strides, convert_row, &c);
}

int cpu_eval_astype(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  cpu_convert(core_array_ptr(out), out->dtype, core_array_ptr(in), in->dtype, in->shape,
              in->strides, in->ndim);
  return 0;
}
