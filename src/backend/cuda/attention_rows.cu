// Attention of many query rows over few keys in any float dtype: a sentence encoder's (float32
// BERT: 32 queries over 32 keys, 12 heads, 32 sentences a batch) or a prefill the tensor-core
// kernel declines (float32, head sizes other than 64/128, sinks). A block takes 16 queries of
// one (batch, head), staged in shared memory as floats with the scale applied; key/value tiles
// of 32 rows follow, converted to floats (K rows padded by one so that lane j reading row j hits
// its own bank). Each warp takes 4 of the queries: lane j scores key j, the online softmax runs
// across tiles with warp shuffles, and lane d accumulates output values d, d + 32, ... (Dv <=
// 128) with the probabilities broadcast by shuffles. The per-query kernel (fused.cu) took 147 us
// for a float32 BERT-base layer of 32 x 12 x 32 queries: a block per query, 8 dependent key
// steps each, and a second kernel to merge.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"

namespace {

constexpr int AR_WARPS = 4, AR_ROWS_PER_WARP = 4, AR_ROWS = AR_WARPS * AR_ROWS_PER_WARP, AR_KEYS = 32;
constexpr int AR_MAX_D = 128, AR_PER_LANE = AR_MAX_D / 32;

template <int DT>
__global__ void __launch_bounds__(32 * AR_WARPS)
    sdpa_rows(void* out, int out_dtype, const void* q, const void* k, const void* v, gpu_sdpa_args A) {
  __shared__ float Qs[AR_ROWS][AR_MAX_D];
  __shared__ float Ks[AR_KEYS][AR_MAX_D + 1];
  __shared__ float Vs[AR_KEYS][AR_MAX_D];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int h = blockIdx.y, b = blockIdx.z, kvh = h / (A.Hq / A.Hk);
  const int i0 = blockIdx.x * AR_ROWS;
  const int D = A.D, Dv = A.Dv;
  for (int idx = threadIdx.x; idx < AR_ROWS * D; idx += blockDim.x) {
    const int r = idx / D, d = idx % D;
    const int64_t i = (int64_t)i0 + r;
    Qs[r][d] = i < A.Lq ? __fmul_rn(load_as_f32<DT>(q, (int64_t)b * A.q_st[0] + (int64_t)h * A.q_st[1] + i * A.q_st[2] +
                                                  (int64_t)d * A.q_st[3]),
                                    A.scale)
                        : 0.0f;
  }
  float m[AR_ROWS_PER_WARP], l[AR_ROWS_PER_WARP], acc[AR_ROWS_PER_WARP][AR_PER_LANE];
#pragma unroll
  for (int r = 0; r < AR_ROWS_PER_WARP; r++) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int t = 0; t < AR_PER_LANE; t++) acc[r][t] = 0.0f;
  }
  const int64_t shift = (int64_t)A.Lk - A.Lq;  // causal: query i sees keys <= i + shift
  int64_t last_key = A.Lk - 1;
  if (A.causal) last_key = min(last_key, (int64_t)min(i0 + AR_ROWS, A.Lq) - 1 + shift);
  const int64_t kb = (int64_t)b * A.k_st[0] + (int64_t)kvh * A.k_st[1];
  const int64_t vb = (int64_t)b * A.v_st[0] + (int64_t)kvh * A.v_st[1];
  for (int64_t j0 = 0; j0 <= last_key; j0 += AR_KEYS) {
    __syncthreads();  // the previous tile is no longer read (and Qs is written, the first time)
    for (int idx = threadIdx.x; idx < AR_KEYS * D; idx += blockDim.x) {
      const int j = idx / D, d = idx % D;
      Ks[j][d] = j0 + j < A.Lk ? load_as_f32<DT>(k, kb + (j0 + j) * A.k_st[2] + (int64_t)d * A.k_st[3]) : 0.0f;
    }
    for (int idx = threadIdx.x; idx < AR_KEYS * Dv; idx += blockDim.x) {
      const int j = idx / Dv, d = idx % Dv;
      Vs[j][d] = j0 + j < A.Lk ? load_as_f32<DT>(v, vb + (j0 + j) * A.v_st[2] + (int64_t)d * A.v_st[3]) : 0.0f;
    }
    __syncthreads();
    const int64_t j = j0 + lane;
#pragma unroll
    for (int r = 0; r < AR_ROWS_PER_WARP; r++) {
      const int row = warp * AR_ROWS_PER_WARP + r;
      const int64_t i = (int64_t)i0 + row;
      float s = 0.0f;
      for (int d = 0; d < D; d++) s = fmaf(Qs[row][d], Ks[lane][d], s);
      bool visible = j < A.Lk && i < A.Lq && !(A.causal && j > i + shift);
      if (visible && A.mask) {
        const int64_t mo = (int64_t)b * A.mask_st[0] + (int64_t)h * A.mask_st[1] + i * A.mask_st[2] + j * A.mask_st[3];
        if (A.mask_dtype == MLX_BOOL)
          visible = ((const bool*)A.mask)[mo];
        else
          s += load_f32(A.mask, A.mask_dtype, mo);
      }
      if (!visible) s = -INFINITY;
      float tile_max = s;
      for (int o = 16; o > 0; o >>= 1) tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, o));
      const float m_new = fmaxf(m[r], tile_max);
      if (m_new == -INFINITY) continue;  // nothing visible in this row yet
      const float corr = expf(m[r] - m_new), p = s == -INFINITY ? 0.0f : expf(s - m_new);
      float sum = p;
      for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      l[r] = l[r] * corr + sum;
      m[r] = m_new;
#pragma unroll
      for (int t = 0; t < AR_PER_LANE; t++) acc[r][t] *= corr;
      for (int jj = 0; jj < AR_KEYS; jj++) {
        const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
        for (int t = 0; t < AR_PER_LANE; t++)
          if (lane + 32 * t < Dv) acc[r][t] = fmaf(pj, Vs[jj][lane + 32 * t], acc[r][t]);
      }
    }
  }
  // Sinks: one more score of value zero per head; rows with nothing visible give zeros.
  const float sink = A.sinks ? load_f32(A.sinks, A.sinks_dtype, h * A.sinks_stride) : -INFINITY;
#pragma unroll
  for (int r = 0; r < AR_ROWS_PER_WARP; r++) {
    const int64_t i = (int64_t)i0 + warp * AR_ROWS_PER_WARP + r;
    if (i >= A.Lq) continue;
    const float top = fmaxf(m[r], sink);
    const float cw = top > -INFINITY && m[r] > -INFINITY ? expf(m[r] - top) : 0.0f;
    const float total = cw * l[r] + (A.sinks && top > -INFINITY ? expf(sink - top) : 0.0f);
    const float scale = total > 0.0f ? cw / total : 0.0f;
    const int64_t o = (((int64_t)b * A.Hq + h) * A.Lq + i) * Dv;
#pragma unroll
    for (int t = 0; t < AR_PER_LANE; t++)
      if (lane + 32 * t < Dv) store_f32(out, out_dtype, o + lane + 32 * t, acc[r][t] * scale);
  }
}

}  // namespace

extern "C" int gpu_launch_sdpa_rows(int device, int dtype, int out_dtype, void* out, const void* q, const void* k,
                                    const void* v, const gpu_sdpa_args* args) {
  const gpu_sdpa_args& A = *args;
  if (A.Lq < 2 || A.Lk < 1 || A.D > AR_MAX_D || A.Dv > AR_MAX_D || A.D < 1 || A.Dv < 1) return -1;
  if (A.Hk < 1 || A.Hq % A.Hk != 0 || A.Hq > 65535 || A.B > 65535) return -1;
  if (dtype != MLX_FLOAT32 && dtype != MLX_FLOAT16 && dtype != MLX_BFLOAT16) return -1;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const dim3 grid((unsigned)((A.Lq + AR_ROWS - 1) / AR_ROWS), (unsigned)A.Hq, (unsigned)A.B);
  if (dtype == MLX_FLOAT32)
    sdpa_rows<MLX_FLOAT32><<<grid, 32 * AR_WARPS, 0, s>>>(out, out_dtype, q, k, v, A);
  else if (dtype == MLX_FLOAT16)
    sdpa_rows<MLX_FLOAT16><<<grid, 32 * AR_WARPS, 0, s>>>(out, out_dtype, q, k, v, A);
  else
    sdpa_rows<MLX_BFLOAT16><<<grid, 32 * AR_WARPS, 0, s>>>(out, out_dtype, q, k, v, A);
  return GPU_LAUNCHED("attention (rows)");
}
