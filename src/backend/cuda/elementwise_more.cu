// The integer and predicate side of the elementwise ops: floor_divide, remainder, bitwise ops,
// shifts and nan_equal (binary, with broadcasting), logical_not, bitwise_invert, the isnan family
// and nan_to_num (unary), over every real dtype the CPU kernels take (backend/cpu/binary.c and
// unary.c), with their rules: integers computed in 64 bits and truncated on store (wrap-around),
// division and remainder by zero give 0, out-of-range shifts give 0 or the sign fill, float
// remainders take the divisor's sign, float16/bfloat16 compute in float.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include <type_traits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/strided.cuh"
#include "ops/codes.h"

namespace {

// Storage type S and compute type C of a dtype: integers widen to 64 bits (signed or not), as
// the CPU's expressions do; bool computes as an unsigned integer and stores its truth value.
template <int DT> struct num;
template <typename S_, typename C_> struct int_num {
  using S = S_; using C = C_;
  static constexpr int bits = 8 * sizeof(S_);
  static __device__ C ld(S v) { return (C)v; }
  static __device__ S st(C v) { return (S)v; }
};
template <> struct num<MLX_BOOL> {
  using S = bool; using C = uint64_t;
  static constexpr int bits = 8;
  static __device__ C ld(S v) { return v; }
  static __device__ S st(C v) { return v != 0; }
};
template <> struct num<MLX_UINT8> : int_num<uint8_t, uint64_t> {};
template <> struct num<MLX_UINT16> : int_num<uint16_t, uint64_t> {};
template <> struct num<MLX_UINT32> : int_num<uint32_t, uint64_t> {};
template <> struct num<MLX_UINT64> : int_num<uint64_t, uint64_t> {};
template <> struct num<MLX_INT8> : int_num<int8_t, int64_t> {};
template <> struct num<MLX_INT16> : int_num<int16_t, int64_t> {};
template <> struct num<MLX_INT32> : int_num<int32_t, int64_t> {};
template <> struct num<MLX_INT64> : int_num<int64_t, int64_t> {};
template <> struct num<MLX_FLOAT32> : float_dt<MLX_FLOAT32> {};
template <> struct num<MLX_FLOAT64> : float_dt<MLX_FLOAT64> {};
template <> struct num<MLX_FLOAT16> : float_dt<MLX_FLOAT16> {};
template <> struct num<MLX_BFLOAT16> : float_dt<MLX_BFLOAT16> {};

template <int DT> __host__ __device__ constexpr bool is_float_dt() {
  return DT == MLX_FLOAT32 || DT == MLX_FLOAT64 || DT == MLX_FLOAT16 || DT == MLX_BFLOAT16;
}

// ---- binary ----

// Which (op, dtype) pairs exist: the CPU's tables less complex64.
template <int OP, int DT> __host__ __device__ constexpr bool binary_exists() {
  if constexpr (OP == BINARY_FLOOR_DIVIDE || OP == BINARY_REMAINDER) return true;
  else if constexpr (OP == BINARY_NAN_EQUAL) return is_float_dt<DT>();
  else return !is_float_dt<DT>();  // bitwise ops and shifts
}

template <int OP, int BITS, typename C>
__device__ __forceinline__ C int_binary(C x, C y) {
  constexpr bool sgn = std::is_signed<C>::value;
  if constexpr (OP == BINARY_FLOOR_DIVIDE) {
    if (y == 0) return 0;
    if constexpr (sgn) {
      if (y == -1) return (C)(0 - (uint64_t)x);  // INT64_MIN / -1 wraps instead of trapping
      C q = x / y;
      return (x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q;
    } else {
      return x / y;
    }
  } else if constexpr (OP == BINARY_REMAINDER) {
    if constexpr (sgn) {
      if (y == 0 || y == -1) return 0;
      C r = x % y;
      return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;  // the divisor's sign, as Python
    } else {
      return y ? x % y : 0;
    }
  } else if constexpr (OP == BINARY_BITWISE_AND) {
    return x & y;
  } else if constexpr (OP == BINARY_BITWISE_OR) {
    return x | y;
  } else if constexpr (OP == BINARY_BITWISE_XOR) {
    return x ^ y;
  } else {
    int64_t s = (int64_t)y;  // an unsigned amount of 2^63 or more counts as negative, as the CPU
    bool out_of_range = s < 0 || s >= BITS;
    if constexpr (OP == BINARY_LEFT_SHIFT) return out_of_range ? 0 : (C)((uint64_t)x << s);
    if constexpr (sgn) return out_of_range ? (x < 0 ? -1 : 0) : x >> s;
    return out_of_range ? 0 : x >> s;
  }
}

template <int OP, typename C>
__device__ __forceinline__ C float_binary(C x, C y) {
  if constexpr (std::is_same<C, float>::value) {
    if constexpr (OP == BINARY_FLOOR_DIVIDE) return floorf(__fdiv_rn(x, y));
    C r = fmodf(x, y);
    return (r != 0 && ((r < 0) != (y < 0))) ? __fadd_rn(r, y) : r;
  } else {
    if constexpr (OP == BINARY_FLOOR_DIVIDE) return floor(__ddiv_rn(x, y));
    C r = fmod(x, y);
    return (r != 0 && ((r < 0) != (y < 0))) ? __dadd_rn(r, y) : r;
  }
}

template <int DT, int OP>
__global__ void binary_more_kernel(void* out, const typename num<DT>::S* a, const typename num<DT>::S* b,
                                   nd_layout<2> L, int64_t n) {
  using T = num<DT>;
  int64_t off[2];
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    offsets_of(L, i, off);
    auto x = T::ld(a[off[0]]), y = T::ld(b[off[1]]);
    if constexpr (OP == BINARY_NAN_EQUAL) {
      ((bool*)out)[i] = x == y || (isnan(x) && isnan(y));
    } else if constexpr (is_float_dt<DT>()) {
      ((typename T::S*)out)[i] = T::st(float_binary<OP>(x, y));
    } else {
      ((typename T::S*)out)[i] = T::st(int_binary<OP, T::bits>(x, y));
    }
  }
}

template <int DT, int OP>
int launch_binary_more_t(cudaStream_t s, void* out, const void* a, const void* b, const nd_layout<2>& L,
                         int64_t n) {
  if constexpr (binary_exists<OP, DT>()) {
    using S = typename num<DT>::S;
    binary_more_kernel<DT, OP><<<grid_for(n, 256), 256, 0, s>>>(out, (const S*)a, (const S*)b, L, n);
    return GPU_LAUNCHED("binary");
  }
  return util_error("binary op %d is not supported on the GPU for dtype %d", OP, DT);
}

template <int DT>
int launch_binary_more_dt(int op, cudaStream_t s, void* out, const void* a, const void* b, const nd_layout<2>& L,
                          int64_t n) {
  switch (op) {
    case BINARY_FLOOR_DIVIDE: return launch_binary_more_t<DT, BINARY_FLOOR_DIVIDE>(s, out, a, b, L, n);
    case BINARY_REMAINDER: return launch_binary_more_t<DT, BINARY_REMAINDER>(s, out, a, b, L, n);
    case BINARY_BITWISE_AND: return launch_binary_more_t<DT, BINARY_BITWISE_AND>(s, out, a, b, L, n);
    case BINARY_BITWISE_OR: return launch_binary_more_t<DT, BINARY_BITWISE_OR>(s, out, a, b, L, n);
    case BINARY_BITWISE_XOR: return launch_binary_more_t<DT, BINARY_BITWISE_XOR>(s, out, a, b, L, n);
    case BINARY_LEFT_SHIFT: return launch_binary_more_t<DT, BINARY_LEFT_SHIFT>(s, out, a, b, L, n);
    case BINARY_RIGHT_SHIFT: return launch_binary_more_t<DT, BINARY_RIGHT_SHIFT>(s, out, a, b, L, n);
    case BINARY_NAN_EQUAL: return launch_binary_more_t<DT, BINARY_NAN_EQUAL>(s, out, a, b, L, n);
  }
  return util_error("binary op %d is not supported on the GPU", op);
}

// ---- unary ----

template <int OP, int DT> __host__ __device__ constexpr bool unary_exists() {
  if constexpr (OP == UNARY_BITWISE_INVERT) return !is_float_dt<DT>();
  else if constexpr (OP == UNARY_NAN_TO_NUM) return is_float_dt<DT>();
  else return true;
}

template <int OP, typename C>
__device__ __forceinline__ bool predicate(C x) {
  if constexpr (std::is_integral<C>::value) {  // integers are never NaN or infinite
    if constexpr (OP == UNARY_LOGICAL_NOT) return !x;
    return OP == UNARY_ISFINITE;
  } else {
    if constexpr (OP == UNARY_LOGICAL_NOT) return x == 0;
    if constexpr (OP == UNARY_ISNAN) return isnan(x);
    if constexpr (OP == UNARY_ISINF) return isinf(x);
    if constexpr (OP == UNARY_ISFINITE) return isfinite(x);
    if constexpr (OP == UNARY_ISPOSINF) return x == (C)INFINITY;
    return x == -(C)INFINITY;
  }
}

template <int DT, int OP>
__global__ void unary_more_kernel(void* out, const typename num<DT>::S* in, nd_layout<1> L, int64_t n,
                                  gpu_nan_to_num r) {
  using T = num<DT>;
  using C = typename T::C;
  int64_t off[1];
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    offsets_of(L, i, off);
    C x = T::ld(in[off[0]]);
    if constexpr (OP == UNARY_BITWISE_INVERT) {
      ((typename T::S*)out)[i] = T::st(~x);
    } else if constexpr (OP == UNARY_NAN_TO_NUM) {
      // The replacements are rounded to the compute type first, as the CPU's (elem_t) casts.
      C v = isnan(x) ? (C)r.nan : x == (C)INFINITY ? (C)r.posinf : x == -(C)INFINITY ? (C)r.neginf : x;
      ((typename T::S*)out)[i] = T::st(v);
    } else {
      ((bool*)out)[i] = predicate<OP>(x);
    }
  }
}

template <int DT, int OP>
int launch_unary_more_t(cudaStream_t s, void* out, const void* in, const nd_layout<1>& L, int64_t n,
                        const gpu_nan_to_num& r) {
  if constexpr (unary_exists<OP, DT>()) {
    using S = typename num<DT>::S;
    unary_more_kernel<DT, OP><<<grid_for(n, 256), 256, 0, s>>>(out, (const S*)in, L, n, r);
    return GPU_LAUNCHED("unary");
  }
  return util_error("unary op %d is not supported on the GPU for dtype %d", OP, DT);
}

template <int DT>
int launch_unary_more_dt(int op, cudaStream_t s, void* out, const void* in, const nd_layout<1>& L, int64_t n,
                         const gpu_nan_to_num& r) {
  switch (op) {
    case UNARY_LOGICAL_NOT: return launch_unary_more_t<DT, UNARY_LOGICAL_NOT>(s, out, in, L, n, r);
    case UNARY_BITWISE_INVERT: return launch_unary_more_t<DT, UNARY_BITWISE_INVERT>(s, out, in, L, n, r);
    case UNARY_ISNAN: return launch_unary_more_t<DT, UNARY_ISNAN>(s, out, in, L, n, r);
    case UNARY_ISINF: return launch_unary_more_t<DT, UNARY_ISINF>(s, out, in, L, n, r);
    case UNARY_ISFINITE: return launch_unary_more_t<DT, UNARY_ISFINITE>(s, out, in, L, n, r);
    case UNARY_ISPOSINF: return launch_unary_more_t<DT, UNARY_ISPOSINF>(s, out, in, L, n, r);
    case UNARY_ISNEGINF: return launch_unary_more_t<DT, UNARY_ISNEGINF>(s, out, in, L, n, r);
    case UNARY_NAN_TO_NUM: return launch_unary_more_t<DT, UNARY_NAN_TO_NUM>(s, out, in, L, n, r);
  }
  return util_error("unary op %d is not supported on the GPU", op);
}

bool real_dtype(int d) {
  switch (d) {
    case MLX_BOOL: case MLX_UINT8: case MLX_UINT16: case MLX_UINT32: case MLX_UINT64: case MLX_INT8:
    case MLX_INT16: case MLX_INT32: case MLX_INT64: case MLX_FLOAT16: case MLX_BFLOAT16: case MLX_FLOAT32:
    case MLX_FLOAT64: return true;
    default: return false;
  }
}

bool float_dtype(int d) {
  return d == MLX_FLOAT16 || d == MLX_BFLOAT16 || d == MLX_FLOAT32 || d == MLX_FLOAT64;
}

// Calls F<DT>() for a real dtype: the dtype switch every launcher needs.
template <template <int> class F, typename... A>
int for_dtype(int dtype, A&&... args) {
  switch (dtype) {
    case MLX_BOOL: return F<MLX_BOOL>::run(args...);
    case MLX_UINT8: return F<MLX_UINT8>::run(args...);
    case MLX_UINT16: return F<MLX_UINT16>::run(args...);
    case MLX_UINT32: return F<MLX_UINT32>::run(args...);
    case MLX_UINT64: return F<MLX_UINT64>::run(args...);
    case MLX_INT8: return F<MLX_INT8>::run(args...);
    case MLX_INT16: return F<MLX_INT16>::run(args...);
    case MLX_INT32: return F<MLX_INT32>::run(args...);
    case MLX_INT64: return F<MLX_INT64>::run(args...);
    case MLX_FLOAT16: return F<MLX_FLOAT16>::run(args...);
    case MLX_BFLOAT16: return F<MLX_BFLOAT16>::run(args...);
    case MLX_FLOAT32: return F<MLX_FLOAT32>::run(args...);
    case MLX_FLOAT64: return F<MLX_FLOAT64>::run(args...);
  }
  return util_error("dtype %d is not supported by this GPU kernel", dtype);
}

template <int DT> struct binary_more_runner {
  static int run(int op, cudaStream_t s, void* out, const void* a, const void* b, const nd_layout<2>& L, int64_t n) {
    return launch_binary_more_dt<DT>(op, s, out, a, b, L, n);
  }
};
template <int DT> struct unary_more_runner {
  static int run(int op, cudaStream_t s, void* out, const void* in, const nd_layout<1>& L, int64_t n,
                 const gpu_nan_to_num& r) {
    return launch_unary_more_dt<DT>(op, s, out, in, L, n, r);
  }
};

}  // namespace

extern "C" bool gpu_binary_more_supported(int op, int dtype) {
  if (!real_dtype(dtype)) return false;
  switch (op) {
    case BINARY_FLOOR_DIVIDE: case BINARY_REMAINDER: return true;
    case BINARY_NAN_EQUAL: return float_dtype(dtype);
    case BINARY_BITWISE_AND: case BINARY_BITWISE_OR: case BINARY_BITWISE_XOR: case BINARY_LEFT_SHIFT:
    case BINARY_RIGHT_SHIFT: return !float_dtype(dtype);
    default: return false;
  }
}

extern "C" int gpu_launch_binary_more(int device, int op, int dtype, void* out, const void* a,
                                      const int64_t* a_strides, const void* b, const int64_t* b_strides,
                                      const int* shape, int ndim) {
  nd_layout<2> L;
  const int64_t* st[2] = {a_strides, b_strides};
  int64_t n = make_layout(&L, shape, ndim, st);
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  return for_dtype<binary_more_runner>(dtype, op, s, out, a, b, L, n);
}

extern "C" bool gpu_unary_more_supported(int op, int dtype) {
  if (!real_dtype(dtype)) return false;
  switch (op) {
    case UNARY_LOGICAL_NOT: case UNARY_ISNAN: case UNARY_ISINF: case UNARY_ISFINITE: case UNARY_ISPOSINF:
    case UNARY_ISNEGINF: return true;
    case UNARY_BITWISE_INVERT: return !float_dtype(dtype);
    case UNARY_NAN_TO_NUM: return float_dtype(dtype);
    default: return false;
  }
}

extern "C" int gpu_launch_unary_more(int device, int op, int dtype, void* out, const void* in,
                                     const int64_t* in_strides, const int* shape, int ndim,
                                     const gpu_nan_to_num* replace) {
  nd_layout<1> L;
  const int64_t* st[1] = {in_strides};
  int64_t n = make_layout(&L, shape, ndim, st);
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  gpu_nan_to_num r = replace ? *replace : gpu_nan_to_num{0, 0, 0};
  return for_dtype<unary_more_runner>(dtype, op, s, out, in, L, n, r);
}
