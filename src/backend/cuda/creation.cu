// Creation kernels: arange, linspace, triangular patterns (eye, tri, tril, triu) and window
// functions, with the values of backend/cpu/creation.c bit for bit. The CPU computes arange and
// linspace in long double (x87: 64-bit significands); here each of its operations is done
// exactly in a pair of doubles (hi + lo) and rounded to the long double's precision, so that
// the rounded results, and hence their conversions, are the same.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/strided.cuh"
#include "ops/codes.h"

namespace {

struct wide {  // a long double value, held as a pair of doubles
  double h, l;  // the value h + l, |l| <= ulp(h) / 2 once normalised
};

__device__ __forceinline__ wide two_sum(double a, double b) {
  double s = __dadd_rn(a, b), bb = __dsub_rn(s, a);
  return {s, __dadd_rn(__dsub_rn(a, __dsub_rn(s, bb)), __dsub_rn(b, bb))};
}

__device__ __forceinline__ wide two_prod(double a, double b) {
  double p = __dmul_rn(a, b);
  return {p, fma(a, b, -p)};
}

// v rounded to `bits` significant bits, ties to even: one long double operation's rounding.
__device__ wide round_bits(wide v, int bits) {
  v = two_sum(v.h, v.l);  // v.h = v rounded to 53 bits
  if (bits <= 53) return {v.h, 0.0};
  if (bits >= 106 || v.l == 0) return v;
  int ex;
  frexp(v.h, &ex);
  int top = ex - 1;  // v in [2^top, 2^(top + 1)), one lower when h is a power of two and l pulls it down
  if (fabs(v.h) == ldexp(1.0, top) && ((v.l < 0) != (v.h < 0))) top--;
  int ulp_exp = top - (bits - 1);
  if (ulp_exp < -1022) return v;  // tiny values: no creation op gets there
  // h is a multiple of 2^(53 - bits) ulps, an even number: the rounded significand's parity is
  // that of l's ulp count, so rint's ties-to-even is the significand's.
  double l = ldexp(rint(ldexp(v.l, -ulp_exp)), ulp_exp);
  return two_sum(v.h, l);
}

// x + y and x * y of pairs, each rounded as one long double operation.
__device__ wide add_round(wide x, wide y, int bits) {
  wide s = two_sum(x.h, y.h);
  s.l = __dadd_rn(s.l, __dadd_rn(x.l, y.l));
  return round_bits(s, bits);
}
__device__ wide mul_round(double x, wide y, int bits) {
  wide p = two_prod(x, y.h);
  p.l = __dadd_rn(p.l, __dmul_rn(x, y.l));
  return round_bits(p, bits);
}

// h + l rounded once to float (float(h) alone rounds twice when h is a float midpoint and l != 0).
__device__ float pair_to_float(wide v) {
  float f = __double2float_rn(v.h);
  if (v.l == 0 || (double)f == v.h) return f;
  float below = __double2float_rd(v.h), above = __double2float_ru(v.h);
  if (v.h != 0.5 * ((double)below + (double)above)) return f;
  return v.l > 0 ? above : below;
}

__device__ double clamp_to(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

// cpu_store_real of the value v: floats rounded once, integers truncated and saturated.
__device__ void store_pair(void* out, int64_t i, int dtype, wide v) {
  double t = trunc(v.h);
  if (t == v.h) t = __dadd_rn(t, v.h > 0 ? floor(v.l) : v.h < 0 ? ceil(v.l) : trunc(v.l));
  switch (dtype) {
    case MLX_BOOL: ((bool*)out)[i] = v.h != 0; break;
    case MLX_UINT8: ((uint8_t*)out)[i] = (uint8_t)clamp_to(t, 0, 255); break;
    case MLX_UINT16: ((uint16_t*)out)[i] = (uint16_t)clamp_to(t, 0, 65535); break;
    case MLX_UINT32: ((uint32_t*)out)[i] = (uint32_t)clamp_to(t, 0, 4294967295.0); break;
    case MLX_UINT64: ((uint64_t*)out)[i] = (uint64_t)clamp_to(t, 0, 9007199254740992.0); break;
    case MLX_INT8: ((int8_t*)out)[i] = (int8_t)clamp_to(t, -128, 127); break;
    case MLX_INT16: ((int16_t*)out)[i] = (int16_t)clamp_to(t, -32768, 32767); break;
    case MLX_INT32: ((int32_t*)out)[i] = (int32_t)clamp_to(t, -2147483648.0, 2147483647.0); break;
    case MLX_INT64: ((int64_t*)out)[i] = (int64_t)t; break;  // |t| < 2^53: the caller's check
    case MLX_FLOAT16: ((uint16_t*)out)[i] = f32_to_f16(pair_to_float(v)); break;
    case MLX_BFLOAT16: ((uint16_t*)out)[i] = f32_to_bf16(pair_to_float(v)); break;
    case MLX_FLOAT32: ((float*)out)[i] = pair_to_float(v); break;
    case MLX_FLOAT64: ((double*)out)[i] = v.h; break;  // normalised: h is the rounded value
  }
}

// start + i * step: the product rounded, then the sum.
__global__ void arange_kernel(void* out, int dtype, int64_t n, double start, double step, int bits) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    wide q = round_bits(two_prod((double)i, step), bits);
    store_pair(out, i, dtype, add_round({start, 0.0}, q, bits));
  }
}

// start * (1 - t) + stop * t with t = i / (n - 1), each operation rounded.
__global__ void linspace_kernel(void* out, int dtype, int64_t n, double start, double stop, int bits) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    wide t = {0.0, 0.0};
    if (n > 1) {
      double d = (double)(n - 1), x = (double)i, q = __ddiv_rn(x, d);
      t = round_bits({q, __ddiv_rn(fma(-q, d, x), d)}, bits);  // the remainder x - q d is exact
    }
    wide u = add_round({1.0, 0.0}, {-t.h, -t.l}, bits);
    store_pair(out, i, dtype, add_round(mul_round(start, u, bits), mul_round(stop, t, bits), bits));
  }
}

template <typename T>
__global__ void triangle_kernel(T* out, int code, int64_t k, int64_t rows, int64_t cols, T one, const T* in,
                                nd_layout<1> L, int64_t n) {
  int64_t off[1];
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    int64_t j = e % cols, i = (e / cols) % rows, d = j - i;
    bool kept = code == TRIANGLE_EYE ? d == k : code == TRIANGLE_LOWER ? d <= k : d >= k;
    if (!kept) {
      out[e] = T(0);
    } else if (in) {
      offsets_of(L, e, off);
      out[e] = in[off[0]];
    } else {
      out[e] = one;
    }
  }
}

template <typename T>
void launch_triangle_t(cudaStream_t s, int code, int64_t k, void* out, int64_t rows, int64_t cols, uint64_t one,
                       const void* in, const nd_layout<1>& L, int64_t n) {
  triangle_kernel<T><<<grid_for(n, 256), 256, 0, s>>>((T*)out, code, k, rows, cols, (T)one, (const T*)in, L, n);
}

// numpy's windows as the CPU writes them, every operation rounded as there (no contraction).
__global__ void window_kernel(float* out, int code, int64_t n) {
  const double pi = 3.14159265358979323846;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    if (n == 1) {
      out[i] = 1.0f;
      continue;
    }
    double x = __ddiv_rn((double)i, (double)(n - 1)), w = 1;
    double c2 = cos(__dmul_rn(2 * pi, x));
    switch (code) {
      case WINDOW_HAMMING: w = __dsub_rn(0.54, __dmul_rn(0.46, c2)); break;
      case WINDOW_HANNING: w = __dsub_rn(0.5, __dmul_rn(0.5, c2)); break;
      case WINDOW_BARTLETT: w = __dsub_rn(1.0, fabs(__dsub_rn(__dmul_rn(2.0, x), 1.0))); break;
      case WINDOW_BLACKMAN:
        w = __dadd_rn(__dsub_rn(0.42, __dmul_rn(0.5, c2)), __dmul_rn(0.08, cos(__dmul_rn(4 * pi, x))));
        break;
    }
    out[i] = __double2float_rn(w);
  }
}

}  // namespace

extern "C" int gpu_launch_arange(int device, int dtype, void* out, int64_t n, double start, double step,
                                 int ldbl_bits) {
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  arange_kernel<<<grid_for(n, 256), 256, 0, s>>>(out, dtype, n, start, step, ldbl_bits);
  return GPU_LAUNCHED("arange");
}

extern "C" int gpu_launch_linspace(int device, int dtype, void* out, int64_t n, double start, double stop,
                                   int ldbl_bits) {
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  linspace_kernel<<<grid_for(n, 256), 256, 0, s>>>(out, dtype, n, start, stop, ldbl_bits);
  return GPU_LAUNCHED("linspace");
}

extern "C" int gpu_launch_triangle(int device, int code, int k, int elem_bytes, void* out, const int* shape,
                                   int ndim, uint64_t one, const void* in, const int64_t* in_strides) {
  nd_layout<1> L;
  const int64_t* st[1] = {in_strides};
  int64_t n = 1;
  if (in) {
    n = make_layout(&L, shape, ndim, st);
  } else {
    L.ndim = 0;
    for (int d = 0; d < ndim; d++) n *= shape[d];
  }
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  int64_t rows = shape[ndim - 2], cols = shape[ndim - 1];
  switch (elem_bytes) {
    case 1: launch_triangle_t<uint8_t>(s, code, k, out, rows, cols, one, in, L, n); break;
    case 2: launch_triangle_t<uint16_t>(s, code, k, out, rows, cols, one, in, L, n); break;
    case 4: launch_triangle_t<uint32_t>(s, code, k, out, rows, cols, one, in, L, n); break;
    case 8: launch_triangle_t<uint64_t>(s, code, k, out, rows, cols, one, in, L, n); break;
    default: return util_error("triangle: %d-byte elements on the GPU", elem_bytes);
  }
  return GPU_LAUNCHED("triangle");
}

extern "C" int gpu_launch_window(int device, int code, float* out, int64_t n) {
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  window_kernel<<<grid_for(n, 256), 256, 0, s>>>(out, code, n);
  return GPU_LAUNCHED("window");
}
