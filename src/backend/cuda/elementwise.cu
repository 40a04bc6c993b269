// Elementwise CUDA kernels over strided, broadcast operands: the converting copy (astype, copy,
// concatenate, slice_update, reshape), binary and unary ops, and row gathers (take on axis 0).
// Host code first collapses the iteration space (size-1 dims dropped, dims that are contiguous
// for every operand merged), so most launches index one or two dims.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/strided.cuh"
#include "ops/codes.h"

namespace {

// ---- converting copy ----

bool copy_dtype_ok(int d) {
  switch (d) {
    case MLX_BOOL: case MLX_UINT8: case MLX_INT32: case MLX_UINT32: case MLX_INT64:
    case MLX_FLOAT16: case MLX_BFLOAT16: case MLX_FLOAT32: case MLX_FLOAT64: return true;
    default: return false;
  }
}

__device__ __forceinline__ bool is_int_dtype(int d) {
  return d == MLX_BOOL || d == MLX_UINT8 || d == MLX_INT32 || d == MLX_UINT32 || d == MLX_INT64;
}

__device__ __forceinline__ uint64_t load_bits(const char* p, int d) {
  switch (d) {
    case MLX_BOOL: return *(const bool*)p;
    case MLX_UINT8: return *(const uint8_t*)p;
    case MLX_INT32: return (uint64_t)(int64_t)*(const int32_t*)p;
    case MLX_UINT32: return *(const uint32_t*)p;
    default: return (uint64_t)*(const int64_t*)p;
  }
}

__device__ __forceinline__ void store_bits(char* p, int d, uint64_t v) {
  switch (d) {
    case MLX_BOOL: *(bool*)p = v != 0; break;
    case MLX_UINT8: *(uint8_t*)p = (uint8_t)v; break;
    case MLX_INT32: *(int32_t*)p = (int32_t)v; break;
    case MLX_UINT32: *(uint32_t*)p = (uint32_t)v; break;
    default: *(int64_t*)p = (int64_t)v; break;
  }
}

__device__ __forceinline__ double load_real(const char* p, int d) {
  switch (d) {
    case MLX_BOOL: return *(const bool*)p ? 1.0 : 0.0;
    case MLX_UINT8: return *(const uint8_t*)p;
    case MLX_INT32: return *(const int32_t*)p;
    case MLX_UINT32: return *(const uint32_t*)p;
    case MLX_INT64: return (double)*(const int64_t*)p;
    case MLX_FLOAT16: return f16_to_f32(*(const uint16_t*)p);
    case MLX_BFLOAT16: return bf16_to_f32(*(const uint16_t*)p);
    case MLX_FLOAT32: return *(const float*)p;
    default: return *(const double*)p;
  }
}

// Saturating truncation with NaN -> 0, as the CPU's cpu_store_real.
__device__ __forceinline__ double clamp_int(double v, double lo, double hi) {
  if (isnan(v)) return 0;
  v = trunc(v);
  return v < lo ? lo : v > hi ? hi : v;
}

__device__ __forceinline__ void store_real(char* p, int d, double v) {
  switch (d) {
    case MLX_BOOL: *(bool*)p = v != 0; break;
    case MLX_UINT8: *(uint8_t*)p = (uint8_t)clamp_int(v, 0, 255); break;
    case MLX_INT32: *(int32_t*)p = (int32_t)clamp_int(v, -2147483648.0, 2147483647.0); break;
    case MLX_UINT32: *(uint32_t*)p = (uint32_t)clamp_int(v, 0, 4294967295.0); break;
    case MLX_INT64: {
      double t = clamp_int(v, -9223372036854775808.0, 9223372036854775808.0);
      *(int64_t*)p = t >= 9223372036854775808.0 ? INT64_MAX : (int64_t)t;
      break;
    }
    case MLX_FLOAT16: *(uint16_t*)p = f32_to_f16((float)v); break;
    case MLX_BFLOAT16: *(uint16_t*)p = f32_to_bf16((float)v); break;
    case MLX_FLOAT32: *(float*)p = (float)v; break;
    default: *(double*)p = v; break;
  }
}

// Same-dtype copies move elements of 1, 2, 4 or 8 bytes.
template <typename T>
__global__ void copy_same(T* dst, const T* src, nd_layout<2> L, int64_t n) {
  gpu_chain_start();
  int64_t off[2];
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    offsets_of(L, i, off);
    dst[off[0]] = src[off[1]];
  }
}

__global__ void copy_convert(char* dst, int dd, int ds, const char* src, int sd, int ss,
                             nd_layout<2> L, int64_t n) {
  gpu_chain_start();
  int64_t off[2];
  bool ints = is_int_dtype(sd) && is_int_dtype(dd);
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    offsets_of(L, i, off);
    const char* s = src + off[1] * ss;
    char* d = dst + off[0] * ds;
    if (ints)
      store_bits(d, dd, load_bits(s, sd));
    else
      store_real(d, dd, load_real(s, sd));
  }
}

int dtype_bytes(int d) {
  switch (d) {
    case MLX_BOOL: case MLX_UINT8: case MLX_INT8: return 1;
    case MLX_UINT16: case MLX_INT16: case MLX_FLOAT16: case MLX_BFLOAT16: return 2;
    case MLX_UINT32: case MLX_INT32: case MLX_FLOAT32: return 4;
    default: return 8;
  }
}

// ---- binary ----

template <int DT> struct dt_traits;
template <> struct dt_traits<MLX_FLOAT32> : float_dt<MLX_FLOAT32> {};
template <> struct dt_traits<MLX_FLOAT16> : float_dt<MLX_FLOAT16> {};
template <> struct dt_traits<MLX_BFLOAT16> : float_dt<MLX_BFLOAT16> {};
template <> struct dt_traits<MLX_BOOL> {  // logical_and / logical_or only
  using S = uint8_t; using C = int32_t;
  static __device__ C ld(S v) { return v != 0; }
  static __device__ S st(C v) { return v != 0; }
};
template <> struct dt_traits<MLX_INT32> {
  using S = int32_t; using C = int32_t;
  static __device__ C ld(S v) { return v; }
  static __device__ S st(C v) { return v; }
};
template <> struct dt_traits<MLX_UINT32> {
  using S = uint32_t; using C = uint32_t;
  static __device__ C ld(S v) { return v; }
  static __device__ S st(C v) { return v; }
};
template <> struct dt_traits<MLX_INT64> {
  using S = int64_t; using C = int64_t;
  static __device__ C ld(S v) { return v; }
  static __device__ S st(C v) { return v; }
};

template <int OP, typename C>
__device__ __forceinline__ C binary_op(C x, C y) {
  if constexpr (std::is_integral<C>::value) {
    using U = typename std::make_unsigned<C>::type;  // wrap-around, as the CPU
    if constexpr (OP == BINARY_ADD) return (C)((U)x + (U)y);
    if constexpr (OP == BINARY_SUBTRACT) return (C)((U)x - (U)y);
    if constexpr (OP == BINARY_MULTIPLY) return (C)((U)x * (U)y);
    if constexpr (OP == BINARY_MAXIMUM) return x > y ? x : y;
    if constexpr (OP == BINARY_MINIMUM) return x < y ? x : y;
    if constexpr (OP == BINARY_LOGICAL_AND) return x && y;
    if constexpr (OP == BINARY_LOGICAL_OR) return x || y;
    return 0;
  } else {
    if constexpr (OP == BINARY_ADD) return x + y;
    if constexpr (OP == BINARY_SUBTRACT) return x - y;
    if constexpr (OP == BINARY_MULTIPLY) return __fmul_rn(x, y);
    if constexpr (OP == BINARY_DIVIDE) return __fdiv_rn(x, y);
    if constexpr (OP == BINARY_POWER) return powf(x, y);
    if constexpr (OP == BINARY_ARCTAN2) return atan2f(x, y);
    if constexpr (OP == BINARY_LOGADDEXP) {
      if (isnan(x) || isnan(y)) return x + y;
      float hi = fmaxf(x, y), lo = fminf(x, y);
      return hi == INFINITY || lo == -INFINITY ? hi : hi + log1pf(expf(lo - hi));
    }
    // MLX's NaN-propagating maximum and minimum.
    if constexpr (OP == BINARY_MAXIMUM) return isnan(y) ? y : isnan(x) ? x : x > y ? x : y;
    if constexpr (OP == BINARY_MINIMUM) return isnan(y) ? y : isnan(x) ? x : x < y ? x : y;
    return 0;
  }
}

template <int OP, typename C>
__device__ __forceinline__ bool compare_op(C x, C y) {
  if constexpr (OP == BINARY_EQUAL) return x == y;
  if constexpr (OP == BINARY_NOT_EQUAL) return x != y;
  if constexpr (OP == BINARY_LESS) return x < y;
  if constexpr (OP == BINARY_LESS_EQUAL) return x <= y;
  if constexpr (OP == BINARY_GREATER) return x > y;
  return x >= y;
}

__host__ __device__ constexpr bool is_compare(int op) {
  return op == BINARY_EQUAL || op == BINARY_NOT_EQUAL || op == BINARY_LESS ||
         op == BINARY_LESS_EQUAL || op == BINARY_GREATER || op == BINARY_GREATER_EQUAL;
}

template <int DT, int OP>
__global__ void binary_kernel(void* out, const typename dt_traits<DT>::S* a,
                              const typename dt_traits<DT>::S* b, nd_layout<2> L, int64_t n,
                              bool dense) {
  gpu_chain_start();
  using T = dt_traits<DT>;
  int64_t off[2];
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    if (dense) {
      off[0] = off[1] = i;
    } else {
      offsets_of(L, i, off);
    }
    auto x = T::ld(a[off[0]]), y = T::ld(b[off[1]]);
    if constexpr (is_compare(OP))
      ((bool*)out)[i] = compare_op<OP>(x, y);
    else
      ((typename T::S*)out)[i] = T::st(binary_op<OP>(x, y));
  }
}

template <int DT, int OP>
int launch_binary_t(cudaStream_t s, void* out, const void* a, const void* b, const nd_layout<2>& L,
                    int64_t n) {
  using S = typename dt_traits<DT>::S;
  bool dense = L.ndim == 1 && L.st[0][0] == 1 && L.st[1][0] == 1;
  (void)gpu_launch_chained(binary_kernel<DT, OP>, grid_for(n, 256), 256, 0, s, out, (const S*)a, (const S*)b, L, n,
                           dense);
  return GPU_LAUNCHED("binary");
}

template <int DT>
int launch_binary_dt(int op, cudaStream_t s, void* out, const void* a, const void* b,
                     const nd_layout<2>& L, int64_t n) {
  constexpr bool is_float = DT == MLX_FLOAT32 || DT == MLX_FLOAT16 || DT == MLX_BFLOAT16;
  switch (op) {
    case BINARY_ADD: return launch_binary_t<DT, BINARY_ADD>(s, out, a, b, L, n);
    case BINARY_SUBTRACT: return launch_binary_t<DT, BINARY_SUBTRACT>(s, out, a, b, L, n);
    case BINARY_MULTIPLY: return launch_binary_t<DT, BINARY_MULTIPLY>(s, out, a, b, L, n);
    case BINARY_POWER:
      if constexpr (is_float) return launch_binary_t<DT, BINARY_POWER>(s, out, a, b, L, n);
      break;
    case BINARY_ARCTAN2:
      if constexpr (is_float) return launch_binary_t<DT, BINARY_ARCTAN2>(s, out, a, b, L, n);
      break;
    case BINARY_LOGADDEXP:
      if constexpr (is_float) return launch_binary_t<DT, BINARY_LOGADDEXP>(s, out, a, b, L, n);
      break;
    case BINARY_DIVIDE:
      if constexpr (is_float) return launch_binary_t<DT, BINARY_DIVIDE>(s, out, a, b, L, n);
      break;
    case BINARY_MAXIMUM: return launch_binary_t<DT, BINARY_MAXIMUM>(s, out, a, b, L, n);
    case BINARY_MINIMUM: return launch_binary_t<DT, BINARY_MINIMUM>(s, out, a, b, L, n);
    case BINARY_EQUAL: return launch_binary_t<DT, BINARY_EQUAL>(s, out, a, b, L, n);
    case BINARY_NOT_EQUAL: return launch_binary_t<DT, BINARY_NOT_EQUAL>(s, out, a, b, L, n);
    case BINARY_LESS: return launch_binary_t<DT, BINARY_LESS>(s, out, a, b, L, n);
    case BINARY_LESS_EQUAL: return launch_binary_t<DT, BINARY_LESS_EQUAL>(s, out, a, b, L, n);
    case BINARY_GREATER: return launch_binary_t<DT, BINARY_GREATER>(s, out, a, b, L, n);
    case BINARY_GREATER_EQUAL: return launch_binary_t<DT, BINARY_GREATER_EQUAL>(s, out, a, b, L, n);
  }
  return util_error("binary op %d is not supported on the GPU", op);
}

// ---- unary ----

template <int OP, typename C>
__device__ __forceinline__ C unary_op(C x) {
  if constexpr (std::is_integral<C>::value) {
    using U = typename std::make_unsigned<C>::type;
    if constexpr (OP == UNARY_NEGATIVE) return (C)(0 - (U)x);
    if constexpr (OP == UNARY_SQUARE) return (C)((U)x * (U)x);
    if constexpr (OP == UNARY_ABS) return x < 0 ? (C)(0 - (U)x) : x;
    return 0;
  } else {
    if constexpr (OP == UNARY_NEGATIVE) return -x;
    if constexpr (OP == UNARY_SQUARE) return __fmul_rn(x, x);
    if constexpr (OP == UNARY_ABS) return fabsf(x);
    if constexpr (OP == UNARY_SQRT) return __fsqrt_rn(x);
    if constexpr (OP == UNARY_RSQRT) return __fdiv_rn(1.0f, __fsqrt_rn(x));
    if constexpr (OP == UNARY_EXP) return expf(x);
    if constexpr (OP == UNARY_LOG) return logf(x);
    if constexpr (OP == UNARY_TANH) return tanhf(x);
    if constexpr (OP == UNARY_SIN) return sinf(x);
    if constexpr (OP == UNARY_COS) return cosf(x);
    if constexpr (OP == UNARY_SIGMOID) return gpu_sigmoid(x);
    if constexpr (OP == UNARY_SIGN) return isnan(x) ? x : (float)((x > 0) - (x < 0));
    if constexpr (OP == UNARY_RECIPROCAL) return __fdiv_rn(1.0f, x);
    if constexpr (OP == UNARY_EXPM1) return expm1f(x);
    if constexpr (OP == UNARY_LOG1P) return log1pf(x);
    if constexpr (OP == UNARY_LOG2) return log2f(x);
    if constexpr (OP == UNARY_LOG10) return log10f(x);
    if constexpr (OP == UNARY_TAN) return tanf(x);
    if constexpr (OP == UNARY_ARCSIN) return asinf(x);
    if constexpr (OP == UNARY_ARCCOS) return acosf(x);
    if constexpr (OP == UNARY_ARCTAN) return atanf(x);
    if constexpr (OP == UNARY_SINH) return sinhf(x);
    if constexpr (OP == UNARY_COSH) return coshf(x);
    if constexpr (OP == UNARY_ARCSINH) return asinhf(x);
    if constexpr (OP == UNARY_ARCCOSH) return acoshf(x);
    if constexpr (OP == UNARY_ARCTANH) return atanhf(x);
    if constexpr (OP == UNARY_ERF) return erff(x);
    if constexpr (OP == UNARY_ERFINV) return erfinvf(x);
    if constexpr (OP == UNARY_FLOOR) return floorf(x);
    if constexpr (OP == UNARY_CEIL) return ceilf(x);
    if constexpr (OP == UNARY_ROUND) return rintf(x);  // half to even, as MLX
    return 0;
  }
}

template <int DT, int OP>
__global__ void unary_kernel(typename dt_traits<DT>::S* out, const typename dt_traits<DT>::S* in,
                             nd_layout<1> L, int64_t n) {
  gpu_chain_start();
  using T = dt_traits<DT>;
  int64_t off[1];
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    offsets_of(L, i, off);
    out[i] = T::st(unary_op<OP>(T::ld(in[off[0]])));
  }
}

template <int DT, int OP>
int launch_unary_t(cudaStream_t s, void* out, const void* in, const nd_layout<1>& L, int64_t n) {
  using S = typename dt_traits<DT>::S;
  (void)gpu_launch_chained(unary_kernel<DT, OP>, grid_for(n, 256), 256, 0, s, (S*)out, (const S*)in, L, n);
  return GPU_LAUNCHED("unary");
}

template <int DT>
int launch_unary_dt(int op, cudaStream_t s, void* out, const void* in, const nd_layout<1>& L,
                    int64_t n) {
  constexpr bool is_float = DT == MLX_FLOAT32 || DT == MLX_FLOAT16 || DT == MLX_BFLOAT16;
  switch (op) {
    case UNARY_NEGATIVE: return launch_unary_t<DT, UNARY_NEGATIVE>(s, out, in, L, n);
    case UNARY_SQUARE: return launch_unary_t<DT, UNARY_SQUARE>(s, out, in, L, n);
    case UNARY_ABS: return launch_unary_t<DT, UNARY_ABS>(s, out, in, L, n);
    default: break;
  }
  if constexpr (is_float) {
    switch (op) {
      case UNARY_SQRT: return launch_unary_t<DT, UNARY_SQRT>(s, out, in, L, n);
      case UNARY_RSQRT: return launch_unary_t<DT, UNARY_RSQRT>(s, out, in, L, n);
      case UNARY_EXP: return launch_unary_t<DT, UNARY_EXP>(s, out, in, L, n);
      case UNARY_LOG: return launch_unary_t<DT, UNARY_LOG>(s, out, in, L, n);
      case UNARY_TANH: return launch_unary_t<DT, UNARY_TANH>(s, out, in, L, n);
      case UNARY_SIN: return launch_unary_t<DT, UNARY_SIN>(s, out, in, L, n);
      case UNARY_COS: return launch_unary_t<DT, UNARY_COS>(s, out, in, L, n);
      case UNARY_SIGMOID: return launch_unary_t<DT, UNARY_SIGMOID>(s, out, in, L, n);
      case UNARY_SIGN: return launch_unary_t<DT, UNARY_SIGN>(s, out, in, L, n);
      case UNARY_RECIPROCAL: return launch_unary_t<DT, UNARY_RECIPROCAL>(s, out, in, L, n);
      case UNARY_EXPM1: return launch_unary_t<DT, UNARY_EXPM1>(s, out, in, L, n);
      case UNARY_LOG1P: return launch_unary_t<DT, UNARY_LOG1P>(s, out, in, L, n);
      case UNARY_LOG2: return launch_unary_t<DT, UNARY_LOG2>(s, out, in, L, n);
      case UNARY_LOG10: return launch_unary_t<DT, UNARY_LOG10>(s, out, in, L, n);
      case UNARY_TAN: return launch_unary_t<DT, UNARY_TAN>(s, out, in, L, n);
      case UNARY_ARCSIN: return launch_unary_t<DT, UNARY_ARCSIN>(s, out, in, L, n);
      case UNARY_ARCCOS: return launch_unary_t<DT, UNARY_ARCCOS>(s, out, in, L, n);
      case UNARY_ARCTAN: return launch_unary_t<DT, UNARY_ARCTAN>(s, out, in, L, n);
      case UNARY_SINH: return launch_unary_t<DT, UNARY_SINH>(s, out, in, L, n);
      case UNARY_COSH: return launch_unary_t<DT, UNARY_COSH>(s, out, in, L, n);
      case UNARY_ARCSINH: return launch_unary_t<DT, UNARY_ARCSINH>(s, out, in, L, n);
      case UNARY_ARCCOSH: return launch_unary_t<DT, UNARY_ARCCOSH>(s, out, in, L, n);
      case UNARY_ARCTANH: return launch_unary_t<DT, UNARY_ARCTANH>(s, out, in, L, n);
      case UNARY_ERF: return launch_unary_t<DT, UNARY_ERF>(s, out, in, L, n);
      case UNARY_ERFINV: return launch_unary_t<DT, UNARY_ERFINV>(s, out, in, L, n);
      case UNARY_FLOOR: return launch_unary_t<DT, UNARY_FLOOR>(s, out, in, L, n);
      case UNARY_CEIL: return launch_unary_t<DT, UNARY_CEIL>(s, out, in, L, n);
      case UNARY_ROUND: return launch_unary_t<DT, UNARY_ROUND>(s, out, in, L, n);
      default: break;
    }
  }
  return util_error("unary op %d is not supported on the GPU", op);
}

// ---- take rows (axis 0) ----

template <typename T>
__global__ void take_rows_kernel(T* out, const T* table, int64_t V, int64_t row_stride,
                                 nd_layout<1> inner, int64_t inner_n, const char* idx, int idx_dtype,
                                 int idx_bytes, nd_layout<1> idx_layout, int64_t n) {
  gpu_chain_start();
  int64_t off[1], ioff[1];
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    int64_t j = e / inner_n, r = e - j * inner_n;
    offsets_of(idx_layout, j, ioff);
    int64_t v = gpu_load_index(idx + ioff[0] * idx_bytes, idx_dtype);
    if (v < 0) v += V;
    offsets_of(inner, r, off);
    out[e] = (v >= 0 && v < V) ? table[v * row_stride + off[0]] : T(0);
  }
}

}  // namespace

extern "C" int gpu_launch_copy(int device, void* dst, int dst_dtype, const int64_t* dst_strides,
                               const void* src, int src_dtype, const int64_t* src_strides,
                               const int* shape, int ndim) {
  nd_layout<2> L;
  const int64_t* st[2] = {dst_strides, src_strides};
  int64_t n = make_layout(&L, shape, ndim, st);
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  unsigned grid = grid_for(n, 256);
  if (dst_dtype == src_dtype) {
    if (L.ndim == 1 && L.st[0][0] == 1 && L.st[1][0] == 1)  // dense: the copy engine's path
      return gpu_check(cudaMemcpyAsync(dst, src, (size_t)n * dtype_bytes(dst_dtype),
                                       cudaMemcpyDeviceToDevice, s), "device copy");
    switch (dtype_bytes(dst_dtype)) {
      case 1:
        (void)gpu_launch_chained(copy_same<uint8_t>, grid, 256, 0, s, (uint8_t*)dst, (const uint8_t*)src, L, n);
        break;
      case 2:
        (void)gpu_launch_chained(copy_same<uint16_t>, grid, 256, 0, s, (uint16_t*)dst, (const uint16_t*)src, L, n);
        break;
      case 4:
        (void)gpu_launch_chained(copy_same<uint32_t>, grid, 256, 0, s, (uint32_t*)dst, (const uint32_t*)src, L, n);
        break;
      default:
        (void)gpu_launch_chained(copy_same<uint64_t>, grid, 256, 0, s, (uint64_t*)dst, (const uint64_t*)src, L, n);
        break;
    }
    return GPU_LAUNCHED("copy");
  }
  if (!copy_dtype_ok(dst_dtype) || !copy_dtype_ok(src_dtype))
    return util_error("GPU copy: unsupported dtype pair %d -> %d", src_dtype, dst_dtype);
  (void)gpu_launch_chained(copy_convert, grid, 256, 0, s, (char*)dst, dst_dtype, dtype_bytes(dst_dtype),
                           (const char*)src, src_dtype, dtype_bytes(src_dtype), L, n);
  return GPU_LAUNCHED("copy");
}

namespace {
// A window's element offset computed on the device from a start array (a dynamic slice): each
// start value counts from the end when negative, then is clamped so the window fits, as the CPU.
struct dyn_start {
  const char* values;
  int dtype, bytes, n;
  int64_t value_stride;
  int64_t dim[GPU_MAX_DYN], size[GPU_MAX_DYN], stride[GPU_MAX_DYN];
};

__device__ __forceinline__ int64_t dyn_offset(const dyn_start& D) {
  int64_t offset = 0;
  for (int i = 0; i < D.n; i++) {
    int64_t v = gpu_load_index(D.values + i * D.value_stride * D.bytes, D.dtype), last = D.dim[i] - D.size[i];
    if (v < 0) v += D.dim[i];
    v = v < 0 ? 0 : v > last ? last : v;
    offset += v * D.stride[i];
  }
  return offset;
}

// dst[off0] = src[off1] with the dynamic offset added to the destination (a slice update) or to
// the source (a slice).
template <typename T>
__global__ void copy_dynamic(T* dst, const T* src, nd_layout<2> L, int64_t n, dyn_start D, bool into_dst) {
  gpu_chain_start();
  int64_t shift = dyn_offset(D), off[2];
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    offsets_of(L, i, off);
    if (into_dst)
      dst[shift + off[0]] = src[off[1]];
    else
      dst[off[0]] = src[shift + off[1]];
  }
}
}  // namespace

extern "C" int gpu_launch_copy_dynamic(int device, void* dst, const int64_t* dst_strides, const void* src,
                                       const int64_t* src_strides, const int* shape, int ndim, int elem_bytes,
                                       const gpu_dynamic_window* w, bool into_dst) {
  if (w->n > GPU_MAX_DYN) return util_error("dynamic slice: more than %d start values on the GPU", GPU_MAX_DYN);
  nd_layout<2> L;
  const int64_t* st[2] = {dst_strides, src_strides};
  int64_t n = make_layout(&L, shape, ndim, st);
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  dyn_start D;
  D.values = (const char*)w->start;
  D.dtype = w->start_dtype;
  D.bytes = dtype_bytes(w->start_dtype);
  D.n = w->n;
  D.value_stride = w->start_stride;
  for (int i = 0; i < w->n; i++) {
    D.dim[i] = w->dim[i];
    D.size[i] = w->size[i];
    D.stride[i] = w->stride[i];
  }
  unsigned grid = grid_for(n, 256);
  switch (elem_bytes) {
    case 1:
      (void)gpu_launch_chained(copy_dynamic<uint8_t>, grid, 256, 0, s, (uint8_t*)dst, (const uint8_t*)src, L, n, D,
                               into_dst);
      break;
    case 2:
      (void)gpu_launch_chained(copy_dynamic<uint16_t>, grid, 256, 0, s, (uint16_t*)dst, (const uint16_t*)src, L, n, D,
                               into_dst);
      break;
    case 4:
      (void)gpu_launch_chained(copy_dynamic<uint32_t>, grid, 256, 0, s, (uint32_t*)dst, (const uint32_t*)src, L, n, D,
                               into_dst);
      break;
    case 8:
      (void)gpu_launch_chained(copy_dynamic<uint64_t>, grid, 256, 0, s, (uint64_t*)dst, (const uint64_t*)src, L, n, D,
                               into_dst);
      break;
    default: return util_error("dynamic slice: %d-byte elements on the GPU", elem_bytes);
  }
  return GPU_LAUNCHED("dynamic slice copy");
}

extern "C" bool gpu_copy_supported(int dst_dtype, int src_dtype) {
  return dst_dtype == src_dtype || (copy_dtype_ok(dst_dtype) && copy_dtype_ok(src_dtype));
}

extern "C" bool gpu_binary_supported(int op, int dtype) {
  bool basic = op == BINARY_ADD || op == BINARY_SUBTRACT || op == BINARY_MULTIPLY ||
               op == BINARY_MAXIMUM || op == BINARY_MINIMUM || is_compare(op);
  bool is_float = dtype == MLX_FLOAT32 || dtype == MLX_FLOAT16 || dtype == MLX_BFLOAT16;
  bool is_int = dtype == MLX_INT32 || dtype == MLX_UINT32 || dtype == MLX_INT64;
  bool float_only = op == BINARY_DIVIDE || op == BINARY_POWER || op == BINARY_ARCTAN2 || op == BINARY_LOGADDEXP;
  if (dtype == MLX_BOOL) return op == BINARY_LOGICAL_AND || op == BINARY_LOGICAL_OR;
  return (is_float && (basic || float_only)) || (is_int && basic);
}

extern "C" int gpu_launch_binary(int device, int op, int dtype, int out_dtype, void* out,
                                 const void* a, const int64_t* a_strides, const void* b,
                                 const int64_t* b_strides, const int* shape, int ndim) {
  (void)out_dtype;  // bool for comparisons, else dtype: implied by op
  nd_layout<2> L;
  const int64_t* st[2] = {a_strides, b_strides};
  int64_t n = make_layout(&L, shape, ndim, st);
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  switch (dtype) {
    case MLX_FLOAT32: return launch_binary_dt<MLX_FLOAT32>(op, s, out, a, b, L, n);
    case MLX_FLOAT16: return launch_binary_dt<MLX_FLOAT16>(op, s, out, a, b, L, n);
    case MLX_BFLOAT16: return launch_binary_dt<MLX_BFLOAT16>(op, s, out, a, b, L, n);
    case MLX_BOOL:
      if (op == BINARY_LOGICAL_AND) return launch_binary_t<MLX_BOOL, BINARY_LOGICAL_AND>(s, out, a, b, L, n);
      if (op == BINARY_LOGICAL_OR) return launch_binary_t<MLX_BOOL, BINARY_LOGICAL_OR>(s, out, a, b, L, n);
      break;
    case MLX_INT32: return launch_binary_dt<MLX_INT32>(op, s, out, a, b, L, n);
    case MLX_UINT32: return launch_binary_dt<MLX_UINT32>(op, s, out, a, b, L, n);
    case MLX_INT64: return launch_binary_dt<MLX_INT64>(op, s, out, a, b, L, n);
  }
  return util_error("binary ops on dtype %d are not supported on the GPU", dtype);
}

extern "C" bool gpu_unary_supported(int op, int dtype) {
  bool any = op == UNARY_NEGATIVE || op == UNARY_SQUARE || op == UNARY_ABS;
  bool math = op == UNARY_SQRT || op == UNARY_RSQRT || op == UNARY_EXP || op == UNARY_LOG ||
              op == UNARY_TANH || op == UNARY_SIN || op == UNARY_COS || op == UNARY_SIGMOID ||
              (op >= UNARY_SIGN && op <= UNARY_ROUND);  // the remaining real functions (codes.h order)
  bool is_float = dtype == MLX_FLOAT32 || dtype == MLX_FLOAT16 || dtype == MLX_BFLOAT16;
  bool is_int = dtype == MLX_INT32 || dtype == MLX_INT64;
  return (is_float && (any || math)) || (is_int && any);
}

extern "C" int gpu_launch_unary(int device, int op, int dtype, void* out, const void* in,
                                const int64_t* in_strides, const int* shape, int ndim) {
  nd_layout<1> L;
  const int64_t* st[1] = {in_strides};
  int64_t n = make_layout(&L, shape, ndim, st);
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  switch (dtype) {
    case MLX_FLOAT32: return launch_unary_dt<MLX_FLOAT32>(op, s, out, in, L, n);
    case MLX_FLOAT16: return launch_unary_dt<MLX_FLOAT16>(op, s, out, in, L, n);
    case MLX_BFLOAT16: return launch_unary_dt<MLX_BFLOAT16>(op, s, out, in, L, n);
    case MLX_INT32: return launch_unary_dt<MLX_INT32>(op, s, out, in, L, n);
    case MLX_INT64: return launch_unary_dt<MLX_INT64>(op, s, out, in, L, n);
  }
  return util_error("unary ops on dtype %d are not supported on the GPU", dtype);
}

extern "C" int gpu_launch_take_rows(int device, int dtype, void* out, const void* table, int64_t V,
                                    int64_t table_row_stride, const int* inner_shape,
                                    const int64_t* inner_strides, int inner_ndim, const void* idx,
                                    int idx_dtype, const int* idx_shape, const int64_t* idx_strides,
                                    int idx_ndim) {
  nd_layout<1> inner, il;
  const int64_t* st[1] = {inner_strides};
  int64_t inner_n = make_layout(&inner, inner_shape, inner_ndim, st);
  st[0] = idx_strides;
  int64_t count = make_layout(&il, idx_shape, idx_ndim, st);
  int64_t n = inner_n * count;
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  unsigned grid = grid_for(n, 256);
  int ib = dtype_bytes(idx_dtype);
  switch (dtype_bytes(dtype)) {
    case 1:
      (void)gpu_launch_chained(take_rows_kernel<uint8_t>, grid, 256, 0, s, (uint8_t*)out, (const uint8_t*)table, V,
                               table_row_stride, inner, inner_n, (const char*)idx, idx_dtype, ib, il, n);
      break;
    case 2:
      (void)gpu_launch_chained(take_rows_kernel<uint16_t>, grid, 256, 0, s, (uint16_t*)out, (const uint16_t*)table, V,
                               table_row_stride, inner, inner_n, (const char*)idx, idx_dtype, ib, il, n);
      break;
    case 4:
      (void)gpu_launch_chained(take_rows_kernel<uint32_t>, grid, 256, 0, s, (uint32_t*)out, (const uint32_t*)table, V,
                               table_row_stride, inner, inner_n, (const char*)idx, idx_dtype, ib, il, n);
      break;
    default:
      (void)gpu_launch_chained(take_rows_kernel<uint64_t>, grid, 256, 0, s, (uint64_t*)out, (const uint64_t*)table, V,
                               table_row_stride, inner, inner_n, (const char*)idx, idx_dtype, ib, il, n);
      break;
  }
  return GPU_LAUNCHED("take");
}

// ---- glu (mlxc/fast.h): act(gate) * up, each step rounded as the separate kernels round it ----

namespace {

// Rows of D values; gate and up rows anywhere (views of one projection), out contiguous. A block
// takes GLU_PER_THREAD * 256 values of one row (blockIdx.y, then strided by gridDim.y): the row's
// offsets are computed once per block (per element, 64-bit divisions made a 4096-token prefill's
// glu take 0.78 ms for 0.35 GB: 0.45 TB/s).
constexpr int GLU_THREADS = 256, GLU_PER_THREAD = 4;

template <int DT, bool GELU>
__global__ void glu_kernel(void* out, const void* gate, gpu_rows G, const void* up, gpu_rows U, int64_t rows,
                           int64_t D) {
  gpu_chain_start();
  using T = dt_traits<DT>;
  using S = typename T::S;
  __shared__ int64_t s_off[2];
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    __syncthreads();  // s_off of the previous row is no longer read
    if (threadIdx.x == 0) s_off[0] = gpu_row_offset(G, r), s_off[1] = gpu_row_offset(U, r);
    __syncthreads();
    const S* g_row = (const S*)gate + s_off[0];
    const S* u_row = (const S*)up + s_off[1];
    const int64_t j0 = (int64_t)blockIdx.x * GLU_THREADS * GLU_PER_THREAD + threadIdx.x;
    float xs[GLU_PER_THREAD], us[GLU_PER_THREAD];
#pragma unroll
    for (int k = 0; k < GLU_PER_THREAD; k++) {
      const int64_t j = j0 + (int64_t)k * GLU_THREADS;
      xs[k] = j < D ? T::ld(g_row[j * G.inner_stride]) : 0.0f;
      us[k] = j < D ? T::ld(u_row[j * U.inner_stride]) : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < GLU_PER_THREAD; k++) {
      const int64_t j = j0 + (int64_t)k * GLU_THREADS;
      if (j >= D) break;
      const float t = glu_activate<DT, GELU>(xs[k]);
      ((S*)out)[r * D + j] = T::st(__fmul_rn(t, us[k]));
    }
  }
}

template <int DT>
void launch_glu(cudaStream_t s, bool gelu, void* out, const void* gate, gpu_rows G, const void* up, gpu_rows U,
                int64_t rows, int64_t D) {
  const int64_t per_block = (int64_t)GLU_THREADS * GLU_PER_THREAD;
  const dim3 grid((unsigned)((D + per_block - 1) / per_block), (unsigned)(rows < 65535 ? rows : 65535));
  if (gelu)
    (void)gpu_launch_chained(glu_kernel<DT, true>, grid, GLU_THREADS, 0, s, out, gate, G, up, U, rows, D);
  else
    (void)gpu_launch_chained(glu_kernel<DT, false>, grid, GLU_THREADS, 0, s, out, gate, G, up, U, rows, D);
}

}  // namespace

extern "C" int gpu_launch_glu(int device, int dtype, bool gelu, void* out, const void* gate, gpu_rows gate_rows,
                              const void* up, gpu_rows up_rows, int64_t rows, int64_t D) {
  if (rows == 0 || D == 0) return 0;
  if ((D + GLU_THREADS * GLU_PER_THREAD - 1) / (GLU_THREADS * GLU_PER_THREAD) > 0x7fffffff)
    return util_error("glu: rows too long for the GPU kernel");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  if (dtype == MLX_BFLOAT16)
    launch_glu<MLX_BFLOAT16>(s, gelu, out, gate, gate_rows, up, up_rows, rows, D);
  else if (dtype == MLX_FLOAT16)
    launch_glu<MLX_FLOAT16>(s, gelu, out, gate, gate_rows, up, up_rows, rows, D);
  else if (dtype == MLX_FLOAT32)
    launch_glu<MLX_FLOAT32>(s, gelu, out, gate, gate_rows, up, up_rows, rows, D);
  else
    return util_error("glu: dtype %d is not supported on the GPU", dtype);
  return GPU_LAUNCHED("glu");
}
