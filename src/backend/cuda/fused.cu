// Row kernels of the model path: rms_norm, rope, scaled dot-product attention (decode-friendly:
// keys split across blocks, online softmax, a combine pass), softmax and argmax over the last
// axis. Float32 arithmetic, one rounding to the output dtype, the CPU kernels' conventions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include <type_traits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/cuda/launch.h"
#include "backend/gpu.h"

namespace {

__device__ __forceinline__ float nan_max(float a, float b) {
  return (isnan(a) || isnan(b)) ? NAN : fmaxf(a, b);
}

__device__ float block_max(float v, float* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  for (int o = 16; o > 0; o >>= 1) v = nan_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < warps ? scratch[lane] : -INFINITY;
  for (int o = 16; o > 0; o >>= 1) t = nan_max(t, __shfl_xor_sync(0xffffffffu, t, o));
  return t;
}

__global__ void rms_norm_kernel(void* out, int out_dtype, const void* x, int x_dtype, gpu_rows R,
                                int64_t D, const void* w, int w_dtype, int64_t w_stride, float eps) {
  gpu_chain_start();
  __shared__ float scratch[32];
  int64_t r = blockIdx.x;
  int64_t base = gpu_row_offset(R, r);
  float ss = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    float v = load_f32(x, x_dtype, base + i * R.inner_stride);
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  float inv = __fdiv_rn(1.0f, __fsqrt_rn(__fdiv_rn(ss, (float)D) + eps));
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    float v = load_f32(x, x_dtype, base + i * R.inner_stride);
    // Round the normalised value to the output dtype before the weight, as the CPU kernel.
    float y = round_to(__fmul_rn(v, inv), out_dtype);
    if (w) y = __fmul_rn(y, load_f32(w, w_dtype, i * w_stride));
    store_f32(out, out_dtype, r * D + i, y);
  }
}

// rms_norm of rows of at most RN_THREADS * RN_PER elements: each thread loads its elements
// together (typed, one memory latency for the row instead of one per element), keeps them in
// registers for the second step, and the arithmetic is the kernel's above.
constexpr int RN_THREADS = 256, RN_PER = 16;

// Eight consecutive values from element i (a multiple of 8, 16-byte aligned) as floats.
template <int DT>
__device__ __forceinline__ void load8(const void* p, int64_t i, float* f) {
  if constexpr (DT == MLX_FLOAT32) {
    const float4 a = ((const float4*)((const float*)p + i))[0], b = ((const float4*)((const float*)p + i))[1];
    f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w, f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
  } else {
    const uint4 u = *(const uint4*)((const uint16_t*)p + i);
    const uint32_t words[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int e = 0; e < 4; e++) {
      f[2 * e] = DT == MLX_BFLOAT16 ? bf16_to_f32((uint16_t)words[e]) : f16_to_f32((uint16_t)words[e]);
      f[2 * e + 1] = DT == MLX_BFLOAT16 ? bf16_to_f32((uint16_t)(words[e] >> 16)) : f16_to_f32((uint16_t)(words[e] >> 16));
    }
  }
}

// v rounded through DT by the conversion instructions (round to nearest even, as f32_to_bf16 and
// f32_to_f16; only NaN payloads may differ), a few instructions instead of a dozen.
template <int DT>
__device__ __forceinline__ float round_hw(float v) {
  if constexpr (DT == MLX_BFLOAT16) return __bfloat162float(__float2bfloat16_rn(v));
  else if constexpr (DT == MLX_FLOAT16) return __half2float(__float2half_rn(v));
  else return v;
}

// Stores eight floats as DT at element i (a multiple of 8, 16-byte aligned): one 16-byte
// transfer (two for float32) instead of eight scattered 2-byte stores, which held a 4096-wide
// row's norm for microseconds in the load/store unit.
template <int DT>
__device__ __forceinline__ void store8(void* p, int64_t i, const float* f) {
  if constexpr (DT == MLX_FLOAT32) {
    ((float4*)((float*)p + i))[0] = make_float4(f[0], f[1], f[2], f[3]);
    ((float4*)((float*)p + i))[1] = make_float4(f[4], f[5], f[6], f[7]);
  } else {
    uint32_t w[4];
#pragma unroll
    for (int e = 0; e < 4; e++) {  // exact: the values were rounded to DT already (round_hw)
      if constexpr (DT == MLX_BFLOAT16) {
        const __nv_bfloat162 t = __floats2bfloat162_rn(f[2 * e], f[2 * e + 1]);
        w[e] = *(const uint32_t*)&t;
      } else {
        const __half2 t = __floats2half2_rn(f[2 * e], f[2 * e + 1]);
        w[e] = *(const uint32_t*)&t;
      }
    }
    *(uint4*)((uint16_t*)p + i) = make_uint4(w[0], w[1], w[2], w[3]);
  }
}

// DT, WDT: the dtypes of x and of the weights, known at compile time so that the loads carry no
// branch: a per-element dtype switch serialised them (one memory latency per load: 11-12 us for
// a 4096-wide row of an 8B model's decode step). PER: values per thread (rows up to
// RN_THREADS * PER). ADD (add_rms_norm): x + res is rounded to DT, written to `sum` and
// normalised, in the same pass. vec: rows contiguous and 16-byte aligned, inputs and outputs, so
// a thread takes runs of 8 values with one 16-byte load or store each (8x fewer instructions
// than one value at a time).
template <int DT, int WDT, int PER, bool ADD, int THREADS = RN_THREADS>
__global__ void __launch_bounds__(THREADS)
    rms_norm_regs(void* out, int out_dtype, const void* x, gpu_rows R, int64_t D, const void* w,
                  int64_t w_stride, float eps, const void* res, gpu_rows RR, void* sum, bool vec) {
  gpu_chain_wait();
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x, base = gpu_row_offset(R, r), rbase = ADD ? gpu_row_offset(RR, r) : 0;
  // Element of value k of this thread.
  auto at = [&](int k) -> int64_t {
    return vec ? 8 * (threadIdx.x + (int64_t)(k / 8) * THREADS) + k % 8 : threadIdx.x + (int64_t)k * THREADS;
  };
  float v[PER], wv[PER], ss = 0.0f;
  if (vec) {
#pragma unroll
    for (int k = 0; k < PER; k += 8) {
      const int64_t i = at(k);
      float o[8];
#pragma unroll
      for (int e = 0; e < 8; e++) v[k + e] = 0.0f, o[e] = 0.0f, wv[k + e] = 1.0f;
      if (i < D) {
        load8<DT>(x, base + i, v + k);
        if (ADD) load8<DT>(res, rbase + i, o);
        if (w) load8<WDT>(w, i, wv + k);
      }
#pragma unroll
      for (int e = 0; e < 8; e++) v[k + e] += o[e];
    }
  } else {
#pragma unroll
    for (int k = 0; k < PER; k++) {
      const int64_t i = at(k);
      v[k] = i < D ? load_as_f32<DT>(x, base + i * R.inner_stride) : 0.0f;
      if (ADD) v[k] += i < D ? load_as_f32<DT>(res, rbase + i * RR.inner_stride) : 0.0f;
      // The weights are loaded before the reduction, so their latency overlaps it.
      wv[k] = w && i < D ? load_as_f32<WDT>(w, i * w_stride) : 1.0f;
    }
  }
  if (ADD) {
#pragma unroll
    for (int k = 0; k < PER; k++) v[k] = round_hw<DT>(v[k]);
#pragma unroll
    for (int k = 0; k < PER; k += vec ? 8 : 1) {
      const int64_t i = at(k);
      if (i >= D) continue;
      if (vec) store8<DT>(sum, r * D + i, v + k);
      else store_f32(sum, DT, r * D + i, v[k]);
    }
  }
#pragma unroll
  for (int k = 0; k < PER; k++) ss += v[k] * v[k];
  ss = block_sum(ss, scratch);
  gpu_chain_release();  // the row has arrived: the next kernel's weight loads may start (common.cuh)
  const float inv = __fdiv_rn(1.0f, __fsqrt_rn(__fdiv_rn(ss, (float)D) + eps));
  float y[PER];
  if (vec && out_dtype == DT) {
#pragma unroll
    for (int k = 0; k < PER; k++) {
      y[k] = round_hw<DT>(__fmul_rn(v[k], inv));
      if (w) y[k] = round_hw<DT>(__fmul_rn(y[k], wv[k]));
    }
#pragma unroll
    for (int k = 0; k < PER; k += 8)
      if (at(k) < D) store8<DT>(out, r * D + at(k), y + k);
    return;
  }
#pragma unroll
  for (int k = 0; k < PER; k++) {
    y[k] = round_to(__fmul_rn(v[k], inv), out_dtype);
    if (w) y[k] = __fmul_rn(y[k], wv[k]);
  }
#pragma unroll
  for (int k = 0; k < PER; k++)
    if (at(k) < D) store_f32(out, out_dtype, r * D + at(k), y[k]);
}

// Whether rows of layout R from p can be read 8 values at a time (contiguous, 16-byte aligned).
bool rows_vec8(const void* p, const gpu_rows& R, int64_t D) {
  if (R.inner_stride != 1 || D % 8 != 0 || ((uintptr_t)p % 16) != 0) return false;
  for (int d = 0; d < R.lead_ndim; d++)
    if (R.lead_strides[d] % 8 != 0) return false;
  return true;
}

// Few rows (a decode step's one) of at most 8192 values with x and weights of one dtype: eight
// values a thread and as many threads as the row needs. With 16 values on each of 256 threads a
// 4096-wide row kept one SM busy for ~5 us (latency-bound at 8 warps, ~1200 instructions each).
template <bool ADD, int THREADS>
auto pick_rms_norm_row_t(int dtype) {
  return dtype == MLX_BFLOAT16 ? rms_norm_regs<MLX_BFLOAT16, MLX_BFLOAT16, 8, ADD, THREADS>
         : dtype == MLX_FLOAT16 ? rms_norm_regs<MLX_FLOAT16, MLX_FLOAT16, 8, ADD, THREADS>
                                : rms_norm_regs<MLX_FLOAT32, MLX_FLOAT32, 8, ADD, THREADS>;
}

template <bool ADD>
auto pick_rms_norm_row(int dtype, int64_t D, int* threads) {
  *threads = D <= 1024 ? 128 : D <= 2048 ? 256 : D <= 4096 ? 512 : 1024;
  return D <= 1024   ? pick_rms_norm_row_t<ADD, 128>(dtype)
         : D <= 2048 ? pick_rms_norm_row_t<ADD, 256>(dtype)
         : D <= 4096 ? pick_rms_norm_row_t<ADD, 512>(dtype)
                     : pick_rms_norm_row_t<ADD, 1024>(dtype);
}

constexpr int64_t RN_FEW_ROWS = 16;

// The instantiation for x's and the weights' dtypes (half types or float32).
template <int PER, bool ADD>
auto pick_rms_norm(int dtype, int wd) {
  if (dtype == MLX_BFLOAT16)
    return wd == MLX_BFLOAT16 ? rms_norm_regs<MLX_BFLOAT16, MLX_BFLOAT16, PER, ADD>
           : wd == MLX_FLOAT16 ? rms_norm_regs<MLX_BFLOAT16, MLX_FLOAT16, PER, ADD>
                               : rms_norm_regs<MLX_BFLOAT16, MLX_FLOAT32, PER, ADD>;
  if (dtype == MLX_FLOAT16)
    return wd == MLX_BFLOAT16 ? rms_norm_regs<MLX_FLOAT16, MLX_BFLOAT16, PER, ADD>
           : wd == MLX_FLOAT16 ? rms_norm_regs<MLX_FLOAT16, MLX_FLOAT16, PER, ADD>
                               : rms_norm_regs<MLX_FLOAT16, MLX_FLOAT32, PER, ADD>;
  return wd == MLX_BFLOAT16 ? rms_norm_regs<MLX_FLOAT32, MLX_BFLOAT16, PER, ADD>
         : wd == MLX_FLOAT16 ? rms_norm_regs<MLX_FLOAT32, MLX_FLOAT16, PER, ADD>
                             : rms_norm_regs<MLX_FLOAT32, MLX_FLOAT32, PER, ADD>;
}

// The inverse frequencies of the rotated pairs into shared memory (dims / 2 values; then the
// block synchronises): rope_inv_freq of each (rope.cuh).
__device__ __forceinline__ void rope_inverse_frequencies(float* inv_freq, int dims, float base, const void* freqs,
                                                         int freqs_dtype, int64_t freqs_stride) {
  for (int i = threadIdx.x; i < dims / 2; i += blockDim.x) inv_freq[i] = rope_inv_freq(i, dims, base, freqs, freqs_dtype, freqs_stride);
  __syncthreads();
}

// DT: x's dtype when it is a half type or float32 (-1: any, read through a dtype switch). A
// thread rotates one pair (both its outputs: one angle, one sin/cos) or copies one value past
// `dims`; the inverse frequencies are tabulated once per block in shared memory. The x loads come
// first and carry no branch, so they and the offset load are in flight together. (One thread
// per output value with a double pow each: a 4096-token prefill's RoPE over 40 heads took
// 0.49 ms.)
template <int DT>
__global__ void rope_kernel(void* out, int out_dtype, const void* x, int x_dtype, gpu_rows R,
                            int64_t rows, int64_t D, int64_t L, int64_t rows_per_batch, int dims,
                            bool traditional, float base, float scale, int offset,
                            const void* offsets, int offsets_dtype, int64_t offsets_stride,
                            bool per_batch, const void* freqs, int freqs_dtype,
                            int64_t freqs_stride) {
  gpu_chain_start();
  extern __shared__ float inv_freq[];  // dims / 2 values
  auto ldx = [&](int64_t i) {
    if constexpr (DT < 0) return load_f32(x, x_dtype, i);
    else return load_as_f32<DT>(x, i);
  };
  const int half = dims / 2;
  rope_inverse_frequencies(inv_freq, dims, base, freqs, freqs_dtype, freqs_stride);
  const int64_t per_row = half + (D - 2 * half), items = rows * per_row;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < items;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e / per_row, t = e - r * per_row;
    const int64_t rb = gpu_row_offset(R, r);
    if (t >= half) {  // past the rotated dims: copied
      const int64_t j = 2 * half + (t - half);
      store_f32(out, out_dtype, r * D + j, ldx(rb + j * R.inner_stride));
      continue;
    }
    const int i = (int)t;
    const int64_t ja = traditional ? 2 * i : i, jb = traditional ? 2 * i + 1 : i + half;
    const float x1 = ldx(rb + ja * R.inner_stride);
    const float x2 = ldx(rb + jb * R.inner_stride);
    const float start = offsets ? load_f32(offsets, offsets_dtype, (per_batch ? r / rows_per_batch : 0) * offsets_stride)
                                : (float)offset;
    float y1, y2;
    rope_rotate(x1, x2, __fmul_rn(scale, start + (float)(r % L)), inv_freq[i], &y1, &y2);
    store_f32(out, out_dtype, r * D + ja, y1);
    store_f32(out, out_dtype, r * D + jb, y2);
  }
}

// rope_kv (mlxc_fast_rope_kv): the q rows rotated into q_out, the k rows rotated and the v rows
// copied into the caches' slots from `position`; one launch for what took a RoPE and two
// dynamic slice updates. Work items: the q rows' pairs (and copied tails), the k rows', then
// v's values. DT: the one dtype of all five arrays. The critical path is one memory latency after
// the chain wait: frequencies from `base` alone are tabulated before it (arithmetic only, while
// the previous kernel finishes), and an item's inputs are loaded before the position, whose
// value only the angle and the cache slot need, so that all of them are in flight together.
template <int DT>
__global__ void rope_kv_kernel(gpu_rope_kv_args A) {
  extern __shared__ float inv_freq[];
  if (!A.freqs && A.dims <= 2 * GPU_ROPE_TABLE) {  // the launcher's table (rope_inv_freq_table)
    for (int i = threadIdx.x; i < A.dims / 2; i += blockDim.x) inv_freq[i] = A.inv_freq[i];
    __syncthreads();
  } else if (!A.freqs) {
    rope_inverse_frequencies(inv_freq, A.dims, A.base, NULL, 0, 0);
  }
  gpu_chain_start();
  if (A.freqs) rope_inverse_frequencies(inv_freq, A.dims, A.base, A.freqs, A.freqs_dtype, A.freqs_stride);
  const int half = A.dims / 2;
  const int64_t per_row = half + (A.D - 2 * half), q_items = A.q_count * per_row;
  const int64_t k_items = A.k_count * per_row, items = q_items + k_items + A.v_count * A.Dv;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < items;
       e += (int64_t)gridDim.x * blockDim.x) {
    // The item: its row r, its input values x1 (and x2 for a rotated pair) and where they go.
    const bool is_v = e >= q_items + k_items, is_k = !is_v && e >= q_items;
    const int64_t f = is_v ? e - q_items - k_items : is_k ? e - q_items : e;
    const int64_t r = is_v ? f / A.Dv : f / per_row, t = is_v ? f - r * A.Dv : f - r * per_row;
    const bool pair = !is_v && t < half;
    const int i = (int)t;
    // Columns: a value's own; a pair's two; a copied tail value's.
    const int64_t ja = is_v ? t : pair ? (A.traditional ? 2 * i : i) : 2 * half + (t - half);
    const int64_t jb = A.traditional ? 2 * i + 1 : i + half;
    const gpu_rows& R = is_v ? A.v_rows : is_k ? A.k_rows : A.q_rows;
    const void* x = is_v ? A.v : is_k ? A.k : A.q;
    const int64_t rb = gpu_row_offset(R, r);
    const float x1 = load_as_f32<DT>(x, rb + ja * R.inner_stride);
    const float x2 = pair ? load_as_f32<DT>(x, rb + jb * R.inner_stride) : 0.0f;
    const int64_t start = A.position_dtype == MLX_INT64 ? *(const int64_t*)A.position
                                                        : (int64_t) * (const int32_t*)A.position;
    int64_t slot = start < 0 ? start + A.T : start;  // as mlx_slice_update_dynamic
    slot = slot < 0 ? 0 : slot > A.T - A.L ? A.T - A.L : slot;
    void* out = is_v ? A.values : is_k ? A.keys : A.q_out;
    const int64_t width = is_v ? A.Dv : A.D;
    const int64_t ob = is_v || is_k ? ((r / A.L) * A.T + slot + r % A.L) * width : r * A.D;
    if (!pair) {  // a value, or a q/k value past the rotated dims: copied
      store_f32(out, DT, ob + ja, x1);
      continue;
    }
    float y1, y2;
    rope_rotate(x1, x2, __fmul_rn(A.scale, (float)start + (float)(r % A.L)), inv_freq[i], &y1, &y2);
    store_f32(out, DT, ob + ja, y1);
    store_f32(out, DT, ob + jb, y2);
  }
}

// ---- attention ----

constexpr int SDPA_WARPS = 4;
constexpr int SDPA_PER_LANE = 8;  // D, Dv <= 32 * 8

// Partial attention of one (b, h, i) over the keys of split blockIdx.x: each warp takes every
// SDPA_WARPS-th key with a running maximum, sum and accumulator (online softmax); the block's
// warps are merged and written as (m, l, acc[Dv]) to `partial`.
template <int DT>
__global__ void sdpa_partial(float* partial, const void* q, const void* k, const void* v,
                             gpu_sdpa_args A, int splits, int keys_per_split) {
  gpu_chain_start();
  __shared__ float sm[SDPA_WARPS], sl[SDPA_WARPS], sacc[SDPA_WARPS][32 * SDPA_PER_LANE];
  int split = blockIdx.x, h = blockIdx.y;
  int b = blockIdx.z / A.Lq, i = blockIdx.z % A.Lq;
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int kvh = h / (A.Hq / A.Hk);
  float qv[SDPA_PER_LANE], acc[SDPA_PER_LANE];
  const int64_t qbase = b * A.q_st[0] + h * A.q_st[1] + i * A.q_st[2];
#pragma unroll
  for (int t = 0; t < SDPA_PER_LANE; t++) {
    int d = lane + 32 * t;
    qv[t] = d < A.D ? __fmul_rn(load_as_f32<DT>(q, qbase + d * A.q_st[3]), A.scale) : 0.0f;
    acc[t] = 0.0f;
  }
  int64_t limit = A.causal ? (int64_t)i + (A.Lk - A.Lq) : A.Lk - 1;
  int64_t j0 = (int64_t)split * keys_per_split;
  int64_t j1 = j0 + keys_per_split - 1;
  if (j1 > limit) j1 = limit;
  if (j1 > A.Lk - 1) j1 = A.Lk - 1;
  const int64_t kbase = b * A.k_st[0] + kvh * A.k_st[1], vbase = b * A.v_st[0] + kvh * A.v_st[1];
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = j0 + warp; j <= j1; j += SDPA_WARPS) {
    float dot = 0.0f;
#pragma unroll
    for (int t = 0; t < SDPA_PER_LANE; t++) {
      int d = lane + 32 * t;
      if (d < A.D) dot += qv[t] * load_as_f32<DT>(k, kbase + j * A.k_st[2] + d * A.k_st[3]);
    }
    dot = warp_sum(dot);
    if (A.mask) {
      int64_t mo = b * A.mask_st[0] + h * A.mask_st[1] + i * A.mask_st[2] + j * A.mask_st[3];
      dot += A.mask_dtype == MLX_BOOL ? (((const bool*)A.mask)[mo] ? 0.0f : -INFINITY)
                                      : load_f32(A.mask, A.mask_dtype, mo);
    }
    if (dot == -INFINITY) continue;  // a masked key weighs nothing
    float m_new = fmaxf(m, dot);
    float corr = expf(m - m_new), p = expf(dot - m_new);
    l = l * corr + p;
#pragma unroll
    for (int t = 0; t < SDPA_PER_LANE; t++) {
      int d = lane + 32 * t;
      float vv = d < A.Dv ? load_as_f32<DT>(v, vbase + j * A.v_st[2] + d * A.v_st[3]) : 0.0f;
      acc[t] = acc[t] * corr + p * vv;
    }
    m = m_new;
  }
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
#pragma unroll
  for (int t = 0; t < SDPA_PER_LANE; t++) sacc[warp][lane + 32 * t] = acc[t];
  __syncthreads();
  if (warp != 0) return;
  float M = -INFINITY;
  for (int w = 0; w < SDPA_WARPS; w++) M = fmaxf(M, sm[w]);
  float L = 0.0f, out[SDPA_PER_LANE] = {0};
  if (M > -INFINITY) {
    for (int w = 0; w < SDPA_WARPS; w++) {
      if (sm[w] == -INFINITY) continue;
      float c = expf(sm[w] - M);
      L += sl[w] * c;
#pragma unroll
      for (int t = 0; t < SDPA_PER_LANE; t++) out[t] += sacc[w][lane + 32 * t] * c;
    }
  }
  int64_t item = ((int64_t)blockIdx.z * A.Hq + h) * splits + split;
  float* dst = partial + item * (2 + A.Dv);
  if (lane == 0) {
    dst[0] = M;
    dst[1] = L;
  }
#pragma unroll
  for (int t = 0; t < SDPA_PER_LANE; t++) {
    int d = lane + 32 * t;
    if (d < A.Dv) dst[2 + d] = out[t];
  }
}

// Merges the splits of each (b, h, i), with the sink as one more score whose value is zero; a
// row with every key masked (and no sink) gives zeros, as the CPU kernel.
__global__ void sdpa_combine(void* out, int out_dtype, const float* partial, gpu_sdpa_args A,
                             int splits) {
  gpu_chain_start();
  int h = blockIdx.y, bi = blockIdx.x;  // bi = b * Lq + i
  int b = bi / A.Lq, i = bi % A.Lq;
  const float* base = partial + ((int64_t)bi * A.Hq + h) * splits * (2 + A.Dv);
  float M = -INFINITY;
  for (int s = 0; s < splits; s++) M = fmaxf(M, base[s * (2 + A.Dv)]);
  float sink = A.sinks ? load_f32(A.sinks, A.sinks_dtype, h * A.sinks_stride) : -INFINITY;
  M = fmaxf(M, sink);
  float total = 0.0f;
  if (M > -INFINITY) {
    if (A.sinks) total = expf(sink - M);
    for (int s = 0; s < splits; s++) {
      float ms = base[s * (2 + A.Dv)];
      if (ms > -INFINITY) total += base[s * (2 + A.Dv) + 1] * expf(ms - M);
    }
  }
  float inv = total > 0 ? 1.0f / total : 0.0f;
  int64_t o = (((int64_t)b * A.Hq + h) * A.Lq + i) * A.Dv;
  for (int d = threadIdx.x; d < A.Dv; d += blockDim.x) {
    float a = 0.0f;
    if (M > -INFINITY)
      for (int s = 0; s < splits; s++) {
        float ms = base[s * (2 + A.Dv)];
        if (ms > -INFINITY) a += base[s * (2 + A.Dv) + 2 + d] * expf(ms - M);
      }
    store_f32(out, out_dtype, o + d, a * inv);
  }
}

// ---- softmax and argmax over the last axis ----

__global__ void softmax_kernel(void* out, int out_dtype, const void* x, int x_dtype, gpu_rows R,
                               int64_t D) {
  gpu_chain_start();
  __shared__ float scratch[32];
  int64_t r = blockIdx.x, base = gpu_row_offset(R, r);
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    m = nan_max(m, load_f32(x, x_dtype, base + i * R.inner_stride));
  m = block_max(m, scratch);
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    s += expf(load_f32(x, x_dtype, base + i * R.inner_stride) - m);
  s = block_sum(s, scratch);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x)
    store_f32(out, out_dtype, r * D + i, expf(load_f32(x, x_dtype, base + i * R.inner_stride) - m) / s);
}

template <typename T>
__device__ __forceinline__ bool nan_of(T v) {
  if constexpr (std::is_floating_point<T>::value) return isnan(v);
  return false;
}

// (value, index) `a` beats `b`: a NaN first, then the larger value, then the smaller index.
template <typename T>
__device__ __forceinline__ bool beats(T va, int64_t ia, T vb, int64_t ib) {
  bool na = nan_of(va), nb = nan_of(vb);
  if (na || nb) return na && nb ? ia < ib : na;
  if (va != vb) return va > vb;
  return ia < ib;
}

template <typename T, int DT>
__device__ __forceinline__ T ld_val(const void* p, int64_t i) {
  if constexpr (DT == MLX_INT32) return ((const int32_t*)p)[i];
  if constexpr (DT == MLX_UINT32) return ((const uint32_t*)p)[i];
  else return load_f32(p, DT, i);
}

template <typename T, int DT>
__global__ void argmax_kernel(uint32_t* out, const void* x, gpu_rows R, int64_t D) {
  gpu_chain_start();
  __shared__ T sv[256];
  __shared__ int64_t si[256];
  int64_t r = blockIdx.x, base = gpu_row_offset(R, r);
  T best = T(0);
  int64_t bi = -1;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    T v = ld_val<T, DT>(x, base + i * R.inner_stride);
    if (bi < 0 || beats(v, i, best, bi)) {
      best = v;
      bi = i;
    }
  }
  sv[threadIdx.x] = best;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      int o = threadIdx.x + s;
      if (si[o] >= 0 && (si[threadIdx.x] < 0 || beats(sv[o], si[o], sv[threadIdx.x], si[threadIdx.x]))) {
        sv[threadIdx.x] = sv[o];
        si[threadIdx.x] = si[o];
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[r] = (uint32_t)(si[0] < 0 ? 0 : si[0]);
}

int threads_for(int64_t D) { return D >= 1024 ? 256 : D >= 256 ? 128 : 64; }

}  // namespace

extern "C" int gpu_launch_rms_norm(int device, int dtype, int out_dtype, void* out, const void* x,
                                   gpu_rows x_rows, int64_t rows, int64_t D, const void* w,
                                   int w_dtype, int64_t w_stride, float eps) {
  if (rows == 0 || D == 0) return 0;
  if (rows > 0x7fffffff) return util_error("rms_norm: too many rows for the GPU kernel");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  if (D <= (int64_t)RN_THREADS * RN_PER && gpu_rms_norm_fast_dtypes(dtype, w ? w_dtype : dtype)) {
    auto kernel = pick_rms_norm<RN_PER, false>(dtype, w ? w_dtype : dtype);
    int threads = RN_THREADS;
    if (rows <= RN_FEW_ROWS && (!w || w_dtype == dtype)) kernel = pick_rms_norm_row<false>(dtype, D, &threads);
    const bool vec = rows_vec8(x, x_rows, D) && (!w || (w_stride == 1 && ((uintptr_t)w % 16) == 0)) &&
                     (uintptr_t)out % 16 == 0;
    (void)gpu_launch_chained(kernel, (unsigned)rows, threads, 0, s, out, out_dtype, x, x_rows, D, w, w_stride, eps,
                             nullptr, x_rows, nullptr, vec);
    return GPU_LAUNCHED("rms_norm");
  }
  (void)gpu_launch_chained(rms_norm_kernel, (unsigned)rows, threads_for(D), 0, s, out, out_dtype, x, dtype, x_rows, D,
                           w, w_dtype, w_stride, eps);
  return GPU_LAUNCHED("rms_norm");
}

extern "C" bool gpu_rms_norm_fast_dtypes(int dtype, int w_dtype) {
  auto ok = [](int d) { return d == MLX_BFLOAT16 || d == MLX_FLOAT16 || d == MLX_FLOAT32; };
  return ok(dtype) && ok(w_dtype);
}

extern "C" bool gpu_add_rms_norm_supported(int dtype, int w_dtype, int64_t D) {
  return gpu_rms_norm_fast_dtypes(dtype, w_dtype) && D <= (int64_t)RN_THREADS * 2 * RN_PER;
}

extern "C" int gpu_launch_add_rms_norm(int device, int dtype, int out_dtype, void* sum, void* out, const void* x,
                                       gpu_rows x_rows, const void* res, gpu_rows res_rows, int64_t rows, int64_t D,
                                       const void* w, int w_dtype, int64_t w_stride, float eps) {
  if (rows == 0 || D == 0) return 0;
  if (rows > 0x7fffffff || !gpu_add_rms_norm_supported(dtype, w ? w_dtype : dtype, D))
    return util_error("add_rms_norm: case not supported by the GPU kernel");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  auto kernel = D <= (int64_t)RN_THREADS * RN_PER ? pick_rms_norm<RN_PER, true>(dtype, w ? w_dtype : dtype)
                                                  : pick_rms_norm<2 * RN_PER, true>(dtype, w ? w_dtype : dtype);
  int threads = RN_THREADS;
  if (rows <= RN_FEW_ROWS && (!w || w_dtype == dtype)) kernel = pick_rms_norm_row<true>(dtype, D, &threads);
  const bool vec = rows_vec8(x, x_rows, D) && rows_vec8(res, res_rows, D) &&
                   (!w || (w_stride == 1 && ((uintptr_t)w % 16) == 0)) && (uintptr_t)out % 16 == 0 &&
                   (uintptr_t)sum % 16 == 0;
  (void)gpu_launch_chained(kernel, (unsigned)rows, threads, 0, s, out, out_dtype, x, x_rows, D, w, w_stride, eps, res,
                           res_rows, sum, vec);
  return GPU_LAUNCHED("add_rms_norm");
}

extern "C" int gpu_launch_rope(int device, int dtype, int out_dtype, void* out, const void* x,
                               gpu_rows x_rows, int64_t rows, int64_t D, int64_t L,
                               int64_t rows_per_batch, int dims, bool traditional, float base,
                               float scale, int offset, const void* offsets, int offsets_dtype,
                               int64_t offsets_stride, bool per_batch, const void* freqs,
                               int freqs_dtype, int64_t freqs_stride) {
  const int64_t items = rows * (dims / 2 + (D - dims / 2 * 2));
  if (items == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  int64_t blocks = (items + 255) / 256;
  auto kernel = dtype == MLX_BFLOAT16 ? rope_kernel<MLX_BFLOAT16>
                : dtype == MLX_FLOAT16 ? rope_kernel<MLX_FLOAT16>
                : dtype == MLX_FLOAT32 ? rope_kernel<MLX_FLOAT32> : rope_kernel<-1>;
  (void)gpu_launch_chained(kernel, (unsigned)(blocks > 524280 ? 524280 : blocks), 256,
                           sizeof(float) * (size_t)(dims / 2 > 0 ? dims / 2 : 1), s, out, out_dtype, x, dtype, x_rows,
                           rows, D, L, rows_per_batch, dims, traditional, base, scale, offset, offsets, offsets_dtype,
                           offsets_stride, per_batch, freqs, freqs_dtype, freqs_stride);
  return GPU_LAUNCHED("rope");
}

extern "C" int gpu_launch_rope_kv(int device, int dtype, const gpu_rope_kv_args* args) {
  const int half = args->dims / 2;
  const int64_t items = (args->q_count + args->k_count) * (half + (args->D - 2 * half)) + args->v_count * args->Dv;
  if (items == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  gpu_rope_kv_args A = *args;
  if (!A.freqs && A.dims <= 2 * GPU_ROPE_TABLE) rope_inv_freq_table(A.inv_freq, A.dims, A.base);
  int64_t blocks = (items + 255) / 256;
  auto kernel = dtype == MLX_BFLOAT16 ? rope_kv_kernel<MLX_BFLOAT16>
                : dtype == MLX_FLOAT16 ? rope_kv_kernel<MLX_FLOAT16> : rope_kv_kernel<MLX_FLOAT32>;
  (void)gpu_launch_chained(kernel, (unsigned)(blocks > 524280 ? 524280 : blocks), 256,
                           sizeof(float) * (size_t)(half > 0 ? half : 1), s, A);
  return GPU_LAUNCHED("rope_kv");
}

extern "C" int gpu_launch_sdpa(int device, int dtype, int out_dtype, void* out, const void* q,
                               const void* k, const void* v, const gpu_sdpa_args* args) {
  const gpu_sdpa_args A = *args;
  if (A.D > 32 * SDPA_PER_LANE || A.Dv > 32 * SDPA_PER_LANE)
    return util_error("attention: head dimensions above %d are not supported on the GPU",
                      32 * SDPA_PER_LANE);
  int64_t items = (int64_t)A.B * A.Hq * A.Lq;
  if (items == 0 || A.Dv == 0) return 0;
  int fast = gpu_launch_sdpa_decode(device, dtype, out_dtype, out, q, k, v, args);
  if (fast >= 0) return fast;
  int flash = gpu_launch_sdpa_prefill(device, dtype, out_dtype, out, q, k, v, args);
  if (flash >= 0) return flash;
  int rows = gpu_launch_sdpa_rows(device, dtype, out_dtype, out, q, k, v, args);
  if (rows >= 0) return rows;
  if ((int64_t)A.B * A.Lq > 65535 * 1024 || A.Hq > 65535)
    return util_error("attention: too many queries for the GPU kernel");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  // Split the keys so that there are enough blocks to fill the GPU (decode has few queries).
  int splits = 1;
  if (A.Lk > 0) {
    int64_t want = (264 + items - 1) / items;
    int64_t max_splits = (A.Lk + 63) / 64;
    splits = (int)(want < max_splits ? want : max_splits);
    if (splits > 128) splits = 128;
    if (splits < 1) splits = 1;
  }
  int keys_per_split = A.Lk > 0 ? (int)((A.Lk + splits - 1) / splits) : 0;
  size_t bytes = sizeof(float) * (size_t)items * splits * (2 + A.Dv);
  void* partial = NULL;
  if (gpu_backend_alloc(device, bytes, &partial)) return 1;
  dim3 grid(splits, A.Hq, A.B * A.Lq);
  int status = 0;
  switch (dtype) {
    case MLX_FLOAT32:
      (void)gpu_launch_chained(sdpa_partial<MLX_FLOAT32>, grid, 32 * SDPA_WARPS, 0, s, (float*)partial, q, k, v, A,
                               splits, keys_per_split);
      break;
    case MLX_FLOAT16:
      (void)gpu_launch_chained(sdpa_partial<MLX_FLOAT16>, grid, 32 * SDPA_WARPS, 0, s, (float*)partial, q, k, v, A,
                               splits, keys_per_split);
      break;
    case MLX_BFLOAT16:
      (void)gpu_launch_chained(sdpa_partial<MLX_BFLOAT16>, grid, 32 * SDPA_WARPS, 0, s, (float*)partial, q, k, v, A,
                               splits, keys_per_split);
      break;
    default:
      status = util_error("attention: dtype %d is not supported on the GPU", dtype);
  }
  if (!status) status = GPU_LAUNCHED("attention");
  if (!status) {
    (void)gpu_launch_chained(sdpa_combine, dim3(A.B * A.Lq, A.Hq), 128, 0, s, out, out_dtype, (const float*)partial, A,
                             splits);
    status = GPU_LAUNCHED("attention combine");
  }
  gpu_backend_free(device, partial, bytes);
  return status;
}

extern "C" int gpu_launch_softmax(int device, int dtype, int out_dtype, void* out, const void* x,
                                  gpu_rows x_rows, int64_t rows, int64_t D) {
  if (rows == 0 || D == 0) return 0;
  if (rows > 0x7fffffff) return util_error("softmax: too many rows for the GPU kernel");
  if (gpu_long_rows(rows, D)) return gpu_launch_softmax_long_rows(device, dtype, out_dtype, out, x, x_rows, rows, D);
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  (void)gpu_launch_chained(softmax_kernel, (unsigned)rows, threads_for(D), 0, s, out, out_dtype, x, dtype, x_rows, D);
  return GPU_LAUNCHED("softmax");
}

extern "C" int gpu_launch_argmax(int device, int dtype, uint32_t* out, const void* x,
                                 gpu_rows x_rows, int64_t rows, int64_t D) {
  if (rows == 0) return 0;
  if (rows > 0x7fffffff) return util_error("argmax: too many rows for the GPU kernel");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  switch (dtype) {
    case MLX_FLOAT32:
      (void)gpu_launch_chained(argmax_kernel<float, MLX_FLOAT32>, (unsigned)rows, 256, 0, s, out, x, x_rows, D);
      break;
    case MLX_FLOAT16:
      (void)gpu_launch_chained(argmax_kernel<float, MLX_FLOAT16>, (unsigned)rows, 256, 0, s, out, x, x_rows, D);
      break;
    case MLX_BFLOAT16:
      (void)gpu_launch_chained(argmax_kernel<float, MLX_BFLOAT16>, (unsigned)rows, 256, 0, s, out, x, x_rows, D);
      break;
    case MLX_INT32:
      (void)gpu_launch_chained(argmax_kernel<int32_t, MLX_INT32>, (unsigned)rows, 256, 0, s, out, x, x_rows, D);
      break;
    case MLX_UINT32:
      (void)gpu_launch_chained(argmax_kernel<uint32_t, MLX_UINT32>, (unsigned)rows, 256, 0, s, out, x, x_rows, D);
      break;
    default: return util_error("argmax: dtype %d is not supported on the GPU", dtype);
  }
  return GPU_LAUNCHED("argmax");
}
