// argmax_lse (mlxc_fast_argmax_logsumexp) of float32 and half rows in float arithmetic: the
// decode step's greedy pick over a vocabulary row (~150k logits). In double, as the long-row
// kernels (long_rows.cu) reduce, its exps, its shared-memory trees of doubles and int64 indices
// a level and its merge made the pick 12-13 us of a 0.5B step.
// Here a block's span is AL_PER values a thread loaded together, the block's (max, index) and
// sum of exp(v - max) meet by warp shuffles, and one warp of the row's last block to finish merges
// the blocks' partials. Results: the index and the value as the double kernel gives them (the
// first index among equal maxima, a NaN first); the log-sum-exp within float32 rounding of the
// sum (its order is fixed: the same bits every run).
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/gpu.h"

namespace {

constexpr int AL_THREADS = 256, AL_WARPS = AL_THREADS / 32, AL_PER = 16;
constexpr int64_t AL_SPAN = (int64_t)AL_THREADS * AL_PER;

// A span's result: its winner (value and index; -1: none) and the sum of exp(v - value) over
// the span, 0 when value is not finite.
struct al_partial {
  float value, sum;
  int64_t index;
};

// Folds y into x: the winner of the two, the sums rescaled to the larger maximum.
__device__ __forceinline__ void al_merge(al_partial& x, const al_partial& y) {
  const float m = gpu_max_nan(x.value, y.value);
  if (isfinite(m)) {
    const float a = isfinite(x.value) ? x.sum * expf(x.value - m) : 0.0f;
    x.sum = a + (isfinite(y.value) ? y.sum * expf(y.value - m) : 0.0f);
  } else {
    x.sum = 0.0f;
  }
  if (gpu_argmax_beats(y.value, y.index, x.value, x.index)) x.index = y.index;
  x.value = m;
}

__device__ __forceinline__ al_partial al_shuffle(const al_partial& p, int lane_mask) {
  return al_partial{__shfl_xor_sync(0xffffffffu, p.value, lane_mask), __shfl_xor_sync(0xffffffffu, p.sum, lane_mask),
                    (int64_t)__shfl_xor_sync(0xffffffffu, (long long)p.index, lane_mask)};
}

// The warp's partials merged, in every lane (a fixed butterfly: the same bits every run).
__device__ __forceinline__ al_partial al_warp_merge(al_partial p) {
  for (int o = 16; o > 0; o >>= 1) al_merge(p, al_shuffle(p, o));
  return p;
}

// Arrivals per row: the row's last block to finish merges (and resets its counter).
__device__ unsigned int al_arrivals[65536];

// Block (split, row) reduces its span of row r into parts[r * splits + split]; the row's last
// block merges the partials into index, value (x's winner, in value_dtype) and lse.
template <int DT>
__global__ void __launch_bounds__(AL_THREADS)
    argmax_lse_kernel(uint32_t* index, void* value, int value_dtype, void* lse, int lse_dtype, al_partial* parts,
                      const void* x, gpu_rows R, int64_t D) {
  __shared__ al_partial warps[AL_WARPS];
  __shared__ float block_max;
  __shared__ bool last;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t r = blockIdx.y, base = gpu_row_offset(R, r);
  const int64_t begin = (int64_t)blockIdx.x * AL_SPAN, end = begin + AL_SPAN < D ? begin + AL_SPAN : D;
  const int64_t i0 = begin + threadIdx.x;
  gpu_chain_start();
  float v[AL_PER];
#pragma unroll
  for (int k = 0; k < AL_PER; k++) {
    const int64_t i = i0 + (int64_t)k * AL_THREADS;
    v[k] = i < end ? load_as_f32<DT>(x, base + i * R.inner_stride) : -INFINITY;
  }
  // The thread's winner, then the block's.
  al_partial own{-INFINITY, 0.0f, -1};
#pragma unroll
  for (int k = 0; k < AL_PER; k++) {
    const int64_t i = i0 + (int64_t)k * AL_THREADS;
    if (i < end && gpu_argmax_beats(v[k], i, own.value, own.index)) own.value = v[k], own.index = i;
  }
  for (int o = 16; o > 0; o >>= 1) {
    const al_partial y = al_shuffle(own, o);
    if (gpu_argmax_beats(y.value, y.index, own.value, own.index)) own.value = y.value, own.index = y.index;
  }
  if (lane == 0) warps[warp] = own;
  __syncthreads();
  if (threadIdx.x == 0) {
    al_partial b = warps[0];
    for (int w = 1; w < AL_WARPS; w++)
      if (gpu_argmax_beats(warps[w].value, warps[w].index, b.value, b.index)) b = warps[w];
    warps[0] = b;
    block_max = b.value;
  }
  __syncthreads();
  const float m = block_max;
  float sum = 0.0f;
  if (isfinite(m)) {
#pragma unroll
    for (int k = 0; k < AL_PER; k++) sum += expf(v[k] - m);  // the padding's -inf adds 0
  }
  sum = warp_sum(sum);
  if (lane == 0) warps[warp].sum = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    float total = 0.0f;
    for (int w = 0; w < AL_WARPS; w++) total += warps[w].sum;
    parts[r * gridDim.x + blockIdx.x] = al_partial{m, total, warps[0].index};
    __threadfence();
    last = atomicAdd(&al_arrivals[r], 1u) == gridDim.x - 1;
    if (last) al_arrivals[r] = 0;
  }
  __syncthreads();
  if (!last || warp != 0) return;
  // The merge: each lane folds every 32nd partial (read through L2: other blocks wrote them).
  const al_partial* p = parts + r * gridDim.x;
  al_partial acc{-INFINITY, 0.0f, -1};
  for (int s = lane; s < (int)gridDim.x; s += 32)
    al_merge(acc, al_partial{__ldcg(&p[s].value), __ldcg(&p[s].sum), (int64_t)__ldcg((const long long*)&p[s].index)});
  acc = al_warp_merge(acc);
  if (lane != 0) return;
  index[r] = (uint32_t)(acc.index < 0 ? 0 : acc.index);
  store_f32(value, value_dtype, r, acc.value);
  store_f32(lse, lse_dtype, r, isfinite(acc.value) ? acc.value + logf(acc.sum) : acc.value);
}

}  // namespace

extern "C" bool gpu_argmax_lse_fits(int dtype, int64_t rows, int64_t D) {
  return (dtype == MLX_FLOAT32 || dtype == MLX_BFLOAT16 || dtype == MLX_FLOAT16) && rows <= 65535 &&
         (D + AL_SPAN - 1) / AL_SPAN <= 65535;
}

extern "C" int gpu_launch_argmax_lse(int device, int dtype, void* index, void* value, int value_dtype, void* lse,
                                     int lse_dtype, const void* x, gpu_rows x_rows, int64_t rows, int64_t D) {
  if (rows == 0 || D == 0) return 0;
  if (!gpu_argmax_lse_fits(dtype, rows, D)) return util_error("argmax_logsumexp: rows too long for the GPU kernel");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const int64_t splits = (D + AL_SPAN - 1) / AL_SPAN;
  const size_t bytes = sizeof(al_partial) * (size_t)(rows * splits);
  void* parts = NULL;
  if (gpu_backend_alloc(device, bytes, &parts)) return 1;
  auto kernel = dtype == MLX_FLOAT32    ? argmax_lse_kernel<MLX_FLOAT32>
                : dtype == MLX_BFLOAT16 ? argmax_lse_kernel<MLX_BFLOAT16>
                                        : argmax_lse_kernel<MLX_FLOAT16>;
  int status = gpu_check(gpu_launch_chained(kernel, dim3((unsigned)splits, (unsigned)rows), AL_THREADS, 0, s,
                                            (uint32_t*)index, value, value_dtype, lse, lse_dtype, (al_partial*)parts,
                                            x, x_rows, D),
                         "argmax_logsumexp launch");
  gpu_backend_free(device, parts, bytes);  // stream-ordered: reused only by later work
  return status;
}
