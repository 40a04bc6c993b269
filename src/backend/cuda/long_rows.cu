// Reductions over the last axis of a few long rows (the vocabulary row of a decode step:
// argmax, max and log-sum-exp over ~150k logits). One block per row would walk the row with a
// single block, one memory latency per element per thread; here a row is split across many
// blocks (a partial result per block), and one warp of the row's last block to finish merges
// the partials. Each thread keeps LR_BATCH loads in flight. Same results as the one-block kernels:
// double accumulation, NaN propagation, the first index among equal maxima.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/gpu.h"

namespace {

constexpr int LR_THREADS = 256, LR_BATCH = 8;
constexpr int64_t LR_SPAN = (int64_t)LR_THREADS * LR_BATCH;  // elements per block: one batch per thread

struct partial {
  double a, b;    // sum, or max and sum of exp(v - max)
  int64_t index;  // argmax: index of the best value (-1: none)
};

// Folds partial y into x (y covers later elements than x).
__device__ __forceinline__ void merge_partial(partial& x, const partial& y, int op) {
  if (op == 4) {
    if (gpu_argmax_beats(y.a, y.index, x.a, x.index)) x.a = y.a, x.index = y.index;
  } else if (op == 3 || op == 5) {
    double m = gpu_max_nan(x.a, y.a);
    if (isfinite(m)) x.b = (isfinite(x.a) ? x.b * exp(x.a - m) : 0.0) + (isfinite(y.a) ? y.b * exp(y.a - m) : 0.0);
    x.a = m;
  } else if (op == 1) {
    x.a = gpu_max_nan(x.a, y.a);
  } else {
    x.a += y.a;
  }
}

// op 5 (softmax's statistics) reduces as logsumexp does and keeps the maximum and the sum apart.
// One warp merges row r's `splits` partials: each lane folds a contiguous run of them, then
// the lanes' results meet in a fixed shuffle tree (deterministic). One thread walking ~75
// partials was a chain of dependent L2 reads and double exps: 13-30 us per call. The partials
// were written by other blocks: read through L2.
__device__ void merge_row(void* out, int out_dtype, const partial* parts, int64_t r, int splits, int64_t D, int op) {
  const int lane = threadIdx.x;
  const partial* p = parts + r * splits;
  const int per_lane = (splits + 31) / 32, first = lane * per_lane;
  const int last = first + per_lane < splits ? first + per_lane : splits;
  partial acc{op == 0 || op == 2 ? 0.0 : -INFINITY, 0.0, -1};
  for (int s = first; s < last; s++)
    merge_partial(acc, partial{__ldcg(&p[s].a), __ldcg(&p[s].b), (int64_t)__ldcg((const long long*)&p[s].index)}, op);
  for (int width = 1; width < 32; width *= 2) {
    partial other;
    other.a = __shfl_down_sync(0xffffffffu, acc.a, width);
    other.b = __shfl_down_sync(0xffffffffu, acc.b, width);
    other.index = __shfl_down_sync(0xffffffffu, acc.index, width);
    if ((lane & (2 * width - 1)) == 0) merge_partial(acc, other, op);
  }
  if (lane) return;
  double a = acc.a;
  if (op == 4) {
    ((uint32_t*)out)[r] = (uint32_t)(acc.index < 0 ? 0 : acc.index);
    return;
  }
  if (op == 5) {
    ((float2*)out)[r] = make_float2((float)a, (float)acc.b);
    return;
  }
  if (op == 3) a = isfinite(a) ? a + log(acc.b) : a;
  if (op == 2) a /= (double)D;
  store_f32(out, out_dtype, r, (float)a);
}

// Arrivals per row: the last block of a row to finish merges (and resets its counter).
__device__ unsigned int lr_arrivals[65536];

// op: 0 sum, 1 max, 2 mean, 3 logsumexp, 4 argmax, 5 softmax's (max, sum of exp(v - max)) as a
// float2 per row (argmax with logsumexp: argmax_lse.cu).
// Block (split, row) reduces its span; the row's last block to finish merges the partials (one
// launch instead of two).
// DT: x's dtype when float32 or a half type (-1: any, read through a dtype switch). A block's
// span is one batch of LR_BATCH values a thread, loaded together: with the dtype known at
// compile time the loads carry no branch (through the switch each waited for the one before:
// an argmax over a 152k vocabulary took ~10 us, a log-sum-exp, which loaded the span twice,
// ~14); logsumexp's second pass reuses them.
template <int DT>
__global__ void __launch_bounds__(LR_THREADS)
    long_rows_kernel(void* out, int out_dtype, partial* parts, const void* x, int x_dtype, gpu_rows R, int64_t D,
                     int op) {
  __shared__ double sa[LR_THREADS], sb[LR_THREADS];
  __shared__ int64_t si[LR_THREADS];
  const int64_t r = blockIdx.y, base = gpu_row_offset(R, r);
  const int64_t begin = (int64_t)blockIdx.x * LR_SPAN, end = begin + LR_SPAN < D ? begin + LR_SPAN : D;
  gpu_chain_start();
  const bool lse = op == 3 || op == 5, maximum = op == 1 || lse || op == 4, arg = op == 4;
  double a = maximum ? -INFINITY : 0.0, b = 0.0;
  int64_t best = -1;
  double v[LR_BATCH];
  const int64_t i0 = begin + threadIdx.x;
#pragma unroll
  for (int k = 0; k < LR_BATCH; k++) {
    const int64_t i = i0 + (int64_t)k * LR_THREADS, at = base + i * R.inner_stride;
    if constexpr (DT < 0) v[k] = i < end ? (double)load_f32(x, x_dtype, at) : 0.0;
    else v[k] = i < end ? (double)load_as_f32<DT>(x, at) : 0.0;
  }
#pragma unroll
  for (int k = 0; k < LR_BATCH; k++) {
    const int64_t i = i0 + (int64_t)k * LR_THREADS;
    if (i >= end) break;
    if (arg) {
      if (gpu_argmax_beats(v[k], i, a, best)) a = v[k], best = i;
    } else if (maximum) {
      a = gpu_max_nan(a, v[k]);
    } else {
      a += v[k];
    }
  }
  if (lse) {  // the block's maximum, for every thread, then the sum of exp(v - max)
    sa[threadIdx.x] = a;
    __syncthreads();
    for (int s = LR_THREADS / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) sa[threadIdx.x] = gpu_max_nan(sa[threadIdx.x], sa[threadIdx.x + s]);
      __syncthreads();
    }
    a = sa[0];
    __syncthreads();
#pragma unroll
    for (int k = 0; k < LR_BATCH; k++) {
      if (i0 + (int64_t)k * LR_THREADS >= end) break;
      if (isfinite(a)) b += exp(v[k] - a);
    }
  }
  sa[threadIdx.x] = a;
  sb[threadIdx.x] = b;
  si[threadIdx.x] = best;
  __syncthreads();
  for (int s = LR_THREADS / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      int o = threadIdx.x + s;
      if (op == 4) {
        if (gpu_argmax_beats(sa[o], si[o], sa[threadIdx.x], si[threadIdx.x])) sa[threadIdx.x] = sa[o], si[threadIdx.x] = si[o];
      } else if (lse) {
        sb[threadIdx.x] += sb[o];  // every thread shared the block's maximum
      } else if (maximum) {
        sa[threadIdx.x] = gpu_max_nan(sa[threadIdx.x], sa[o]);
      } else {
        sa[threadIdx.x] += sa[o];
      }
    }
    __syncthreads();
  }
  __shared__ bool s_last;
  if (threadIdx.x == 0) {
    parts[r * gridDim.x + blockIdx.x] = partial{sa[0], sb[0], si[0]};
    __threadfence();
    s_last = atomicAdd(&lr_arrivals[r], 1u) == gridDim.x - 1;
    if (s_last) lr_arrivals[r] = 0;
  }
  __syncthreads();
  if (s_last && threadIdx.x < 32) merge_row(out, out_dtype, parts, r, (int)gridDim.x, D, op);
}

// Launches long_rows_kernel over `rows` rows into out (partials in pool scratch).
int launch_long_rows(int device, cudaStream_t s, int op, int dtype, int out_dtype, void* out, const void* x,
                     gpu_rows x_rows, int64_t rows, int64_t D) {
  const int64_t splits = (D + LR_SPAN - 1) / LR_SPAN;
  if (!gpu_long_rows_fit(rows, D)) return util_error("reduce: row too long for the GPU kernel");
  size_t bytes = sizeof(partial) * (size_t)(rows * splits);
  void* parts = NULL;
  if (gpu_backend_alloc(device, bytes, &parts)) return 1;
  auto kernel = dtype == MLX_FLOAT32    ? long_rows_kernel<MLX_FLOAT32>
                : dtype == MLX_BFLOAT16 ? long_rows_kernel<MLX_BFLOAT16>
                : dtype == MLX_FLOAT16  ? long_rows_kernel<MLX_FLOAT16>
                                        : long_rows_kernel<-1>;
  int status = gpu_check(gpu_launch_chained(kernel, dim3((unsigned)splits, (unsigned)rows), LR_THREADS, 0, s, out,
                                            out_dtype, (partial*)parts, x, dtype, x_rows, D, op),
                         "reduce (long rows) launch");
  gpu_backend_free(device, parts, bytes);  // stream-ordered: reused only by later work
  return status;
}

// out = exp(v - max) / sum for the row statistics st (op 5), as softmax_kernel computes it. DT as
// long_rows_kernel's: a thread's LR_BATCH values are loaded together, with the statistics.
template <int DT>
__global__ void __launch_bounds__(LR_THREADS)
    long_softmax_kernel(void* out, int out_dtype, const float2* st, const void* x, int x_dtype, gpu_rows R,
                        int64_t D) {
  gpu_chain_start();
  const int64_t r = blockIdx.y, base = gpu_row_offset(R, r);
  const int64_t begin = (int64_t)blockIdx.x * LR_SPAN, end = begin + LR_SPAN < D ? begin + LR_SPAN : D;
  const int64_t i0 = begin + threadIdx.x;
  float v[LR_BATCH];
#pragma unroll
  for (int k = 0; k < LR_BATCH; k++) {
    const int64_t i = i0 + (int64_t)k * LR_THREADS, at = base + i * R.inner_stride;
    if constexpr (DT < 0) v[k] = i < end ? load_f32(x, x_dtype, at) : 0.0f;
    else v[k] = i < end ? load_as_f32<DT>(x, at) : 0.0f;
  }
  const float m = st[r].x, sum = st[r].y;
#pragma unroll
  for (int k = 0; k < LR_BATCH; k++) {
    const int64_t i = i0 + (int64_t)k * LR_THREADS;
    if (i < end) store_f32(out, out_dtype, r * D + i, expf(v[k] - m) / sum);
  }
}

}  // namespace

extern "C" bool gpu_long_rows(int64_t rows, int64_t D) { return D >= 8 * LR_SPAN && rows <= 64; }

extern "C" bool gpu_long_rows_fit(int64_t rows, int64_t D) {
  return rows <= 65535 && (D + LR_SPAN - 1) / LR_SPAN <= 65535;
}

extern "C" int gpu_launch_long_rows(int device, int op, int dtype, int out_dtype, void* out, const void* x,
                                    gpu_rows x_rows, int64_t rows, int64_t D) {
  if (rows == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  return launch_long_rows(device, s, op, dtype, out_dtype, out, x, x_rows, rows, D);
}

extern "C" int gpu_launch_softmax_long_rows(int device, int dtype, int out_dtype, void* out, const void* x,
                                            gpu_rows x_rows, int64_t rows, int64_t D) {
  if (rows == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  size_t bytes = sizeof(float2) * (size_t)rows;
  void* st = NULL;
  if (gpu_backend_alloc(device, bytes, &st)) return 1;
  int status = launch_long_rows(device, s, 5, dtype, MLX_FLOAT32, st, x, x_rows, rows, D);
  auto kernel = dtype == MLX_FLOAT32    ? long_softmax_kernel<MLX_FLOAT32>
                : dtype == MLX_BFLOAT16 ? long_softmax_kernel<MLX_BFLOAT16>
                : dtype == MLX_FLOAT16  ? long_softmax_kernel<MLX_FLOAT16>
                                        : long_softmax_kernel<-1>;
  if (!status)
    status = gpu_check(gpu_launch_chained(kernel, dim3((unsigned)((D + LR_SPAN - 1) / LR_SPAN), (unsigned)rows),
                                          LR_THREADS, 0, s, out, out_dtype, (const float2*)st, x, dtype, x_rows, D),
                       "softmax (long rows) launch");
  gpu_backend_free(device, st, bytes);
  return status;
}
