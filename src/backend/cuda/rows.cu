// Row kernels beyond fused.cu: layer_norm, sum/max/mean over the last axis, and where (select).
// Same conventions as the CPU kernels: layer_norm in float32 with two passes (mean, then squared
// deviations) and the normalised value rounded to the output dtype before weight and bias;
// reductions accumulate in double and round once; max propagates NaN.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"

namespace {

// Block-wide sum of T over up to 32 warps; every thread gets the result.
template <typename T>
__device__ T block_total(T v, T* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T t = lane < warps ? scratch[lane] : (T)0;
  for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
  return t;
}

__device__ double block_max_nan(double v, double* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  for (int o = 16; o > 0; o >>= 1) v = gpu_max_nan(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double t = lane < warps ? scratch[lane] : -INFINITY;
  for (int o = 16; o > 0; o >>= 1) t = gpu_max_nan(t, __shfl_xor_sync(0xffffffffu, t, o));
  return t;
}

__global__ void layer_norm_kernel(void* out, int out_dtype, const void* x, int x_dtype, gpu_rows R,
                                  int64_t D, const void* w, int w_dtype, int64_t w_stride,
                                  const void* b, int b_dtype, int64_t b_stride, float eps) {
  gpu_chain_start();
  __shared__ float scratch[32];
  int64_t r = blockIdx.x, base = gpu_row_offset(R, r);
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += load_f32(x, x_dtype, base + i * R.inner_stride);
  float mean = __fdiv_rn(block_total(s, scratch), (float)D);
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    float c = __fsub_rn(load_f32(x, x_dtype, base + i * R.inner_stride), mean);
    ss += __fmul_rn(c, c);
  }
  ss = block_total(ss, scratch);
  float inv = __fdiv_rn(1.0f, __fsqrt_rn(__fdiv_rn(ss, (float)D) + eps));
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    float c = __fsub_rn(load_f32(x, x_dtype, base + i * R.inner_stride), mean);
    float y = round_to(__fmul_rn(c, inv), out_dtype);
    if (w || b) {
      if (w) y = __fmul_rn(y, load_f32(w, w_dtype, i * w_stride));
      if (b) y = __fadd_rn(y, load_f32(b, b_dtype, i * b_stride));
    }
    store_f32(out, out_dtype, r * D + i, y);
  }
}

// op: 0 sum, 1 max, 2 mean, 3 logsumexp (max first, then the sum of exp(v - max), as the CPU).
__global__ void reduce_last_kernel(void* out, int out_dtype, const void* x, int x_dtype, gpu_rows R,
                                   int64_t D, int op) {
  gpu_chain_start();
  __shared__ double scratch[32];
  int64_t r = blockIdx.x, base = gpu_row_offset(R, r);
  bool maximum = op == 1 || op == 3;
  double acc = maximum ? -INFINITY : 0.0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    double v = load_f32(x, x_dtype, base + i * R.inner_stride);
    acc = maximum ? gpu_max_nan(acc, v) : acc + v;
  }
  acc = maximum ? block_max_nan(acc, scratch) : block_total(acc, scratch);
  if (op == 3) {
    double m = acc, sum = 0.0;  // every thread holds the row's maximum
    if (isfinite(m)) {
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
        sum += exp((double)load_f32(x, x_dtype, base + i * R.inner_stride) - m);
    }
    sum = block_total(sum, scratch);
    acc = isfinite(m) ? m + log(sum) : m;
  }
  if (threadIdx.x == 0) {
    if (op == 2) acc /= (double)D;
    if (out_dtype == MLX_FLOAT32) ((float*)out)[r] = (float)acc;
    else store_f32(out, out_dtype, r, (float)acc);
  }
}

struct select_args {
  int ndim;
  int shape[GPU_MAX_NDIM];
  int64_t st[3][GPU_MAX_NDIM];
};

template <typename T>
__global__ void select_kernel(T* out, const bool* c, const T* a, const T* b, select_args S,
                              int64_t n) {
  gpu_chain_start();
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t rest = i, oc = 0, oa = 0, ob = 0;
    for (int d = S.ndim - 1; d >= 0; d--) {
      int64_t s = S.shape[d], q = rest / s, k = rest - q * s;
      oc += k * S.st[0][d];
      oa += k * S.st[1][d];
      ob += k * S.st[2][d];
      rest = q;
    }
    out[i] = c[oc] ? a[oa] : b[ob];
  }
}

unsigned row_threads(int64_t D) {
  unsigned t = 32;
  while (t < 1024 && (int64_t)t < D) t *= 2;
  return t;
}

}  // namespace

extern "C" int gpu_launch_layer_norm(int device, int dtype, int out_dtype, void* out, const void* x,
                                     gpu_rows x_rows, int64_t rows, int64_t D, const void* w,
                                     int w_dtype, int64_t w_stride, const void* b, int b_dtype,
                                     int64_t b_stride, float eps) {
  if (rows == 0 || D == 0) return 0;
  if (rows > 0x7fffffff) return util_error("layer_norm: too many rows for the GPU kernel");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  (void)gpu_launch_chained(layer_norm_kernel, (unsigned)rows, row_threads(D), 0, s, out, out_dtype, x, dtype, x_rows, D,
                           w, w_dtype, w_stride, b, b_dtype, b_stride, eps);
  return GPU_LAUNCHED("layer_norm");
}

extern "C" int gpu_launch_reduce_last(int device, int op, int dtype, int out_dtype, void* out,
                                      const void* x, gpu_rows x_rows, int64_t rows, int64_t D) {
  if (rows == 0) return 0;
  if (rows > 0x7fffffff) return util_error("reduce: too many rows for the GPU kernel");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  (void)gpu_launch_chained(reduce_last_kernel, (unsigned)rows, row_threads(D), 0, s, out, out_dtype, x, dtype, x_rows,
                           D, op);
  return GPU_LAUNCHED("reduce");
}

extern "C" int gpu_launch_select(int device, size_t elem_size, void* out, const bool* cond,
                                 const int64_t* c_strides, const void* a, const int64_t* a_strides,
                                 const void* b, const int64_t* b_strides, const int* shape, int ndim) {
  select_args S;
  S.ndim = ndim;
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    S.shape[d] = shape[d];
    S.st[0][d] = c_strides[d];
    S.st[1][d] = a_strides[d];
    S.st[2][d] = b_strides[d];
    n *= shape[d];
  }
  if (n == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  int64_t blocks = (n + 255) / 256;
  unsigned grid = (unsigned)(blocks > 65535 ? 65535 : blocks);
  switch (elem_size) {
    case 1:
      (void)gpu_launch_chained(select_kernel<uint8_t>, grid, 256, 0, s, (uint8_t*)out, cond, (const uint8_t*)a,
                               (const uint8_t*)b, S, n);
      break;
    case 2:
      (void)gpu_launch_chained(select_kernel<uint16_t>, grid, 256, 0, s, (uint16_t*)out, cond, (const uint16_t*)a,
                               (const uint16_t*)b, S, n);
      break;
    case 4:
      (void)gpu_launch_chained(select_kernel<uint32_t>, grid, 256, 0, s, (uint32_t*)out, cond, (const uint32_t*)a,
                               (const uint32_t*)b, S, n);
      break;
    case 8:
      (void)gpu_launch_chained(select_kernel<uint64_t>, grid, 256, 0, s, (uint64_t*)out, cond, (const uint64_t*)a,
                               (const uint64_t*)b, S, n);
      break;
    default: return util_error("where: elements of %zu bytes are not supported on the GPU", elem_size);
  }
  return GPU_LAUNCHED("where");
}
