// What the quantized decode GEMVs (qgemv.cu: the CUDA-core kernel; qgemv_mma.cuh: the 4-bit
// tensor-core kernel) share: the epilogues they can end with, their operands, and the end of a
// block, where the warps' partial sums of the block's rows meet.
#pragma once
#include <stdint.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/rms_parts.cuh"

namespace {

// What a quantized GEMV writes: each row's sum (a plain GEMV), or, for the gated GEMV
// (mlxc_fast_gated_linear of one row) over stacked gate/up rows, act(gate) * up with each sum
// rounded to x's dtype first and act SiLU or tanh-GELU, or (QG_RESIDUAL,
// mlxc_fast_linear_residual) res + the rounded sum, its squares added up by runs of 4 outputs
// (a block's outputs are whole runs) and its product with the next norm's weight.
enum qgemv_epilogue { QG_PLAIN, QG_GATED_SILU, QG_GATED_GELU, QG_RESIDUAL };

__host__ __device__ constexpr bool qg_gated(int epi) { return epi == QG_GATED_SILU || epi == QG_GATED_GELU; }

// The fused ends' operands (launch.h: gpu_launch_qgemv_residual, gpu_launch_qgemv_rms).
struct qg_fused {
  const uint16_t* res;     // QG_RESIDUAL: (N)
  const uint16_t* weight;  // QG_RESIDUAL: the next norm's (N), or NULL
  uint16_t* scaled;        // QG_RESIDUAL: sum * weight
  float* sumsq;            // QG_RESIDUAL: (ceil(N / 4))
  gpu_rms rms;             // RMS: the norm's partial sums
  const uint16_t* bias;    // RMS, plain: (N) at bias_stride, or NULL
  int64_t bias_stride;
};

// The weight row of slot r of a block of `rows` outputs from n0 (OUT a block at most): output r,
// or for a gated GEMV (2N stacked rows) output r % OUT's gate row (r < OUT) and up row N further
// on; slots past the last output repeat the block's first (their sums are not written). A row's
// arithmetic does not depend on its slot, so the gated GEMV equals the plain one over the 2N rows.
__device__ __forceinline__ int64_t qg_slot_row(int64_t n0, int rows, int64_t N, int r, int OUT) {
  const int o = r % OUT;
  return n0 + (o < rows ? o : 0) + (r >= OUT ? N : 0);
}

// Thread o's epilogue operands (o < rows writes output n0 + o), loaded early so that their
// latency hides under the products: the residual and the next norm's weight (QG_RESIDUAL), the
// bias (RMS, plain).
struct qg_operands {
  float res, nw, bias;
};

template <bool BF16, int EPI, bool RMS>
__device__ __forceinline__ qg_operands qg_load_operands(const qg_fused& f, int64_t n0, int rows) {
  auto cvt16 = [](uint16_t h) { return BF16 ? bf16_to_f32(h) : f16_to_f32(h); };
  const int o = threadIdx.x;
  const bool own = o < rows;
  qg_operands p;
  p.res = EPI == QG_RESIDUAL && own ? cvt16(f.res[n0 + o]) : 0.0f;
  p.nw = EPI == QG_RESIDUAL && own && f.weight ? cvt16(f.weight[n0 + o]) : 0.0f;
  p.bias = RMS && EPI == QG_PLAIN && own && f.bias ? cvt16(f.bias[(n0 + o) * f.bias_stride]) : 0.0f;
  return p;
}

// Output o's epilogue (thread o < rows of the block's first warp, all of them together: the
// residual's runs of 4 are added by shuffles between them): total is the row's sum, up the up
// row's for a gated GEMV, inv the norm's factor (RMS).
template <bool BF16, int EPI, bool RMS>
__device__ __forceinline__ void qg_store(float total, float up, float inv, void* y, int y_dtype, int64_t n0, int o,
                                         int rows, const qg_fused& f, const qg_operands& p) {
  constexpr int DT = BF16 ? MLX_BFLOAT16 : MLX_FLOAT16;
  if constexpr (EPI == QG_PLAIN) {
    if constexpr (RMS) total = __fadd_rn(__fmul_rn(inv, total), p.bias);
    store_f32(y, y_dtype, n0 + o, total);
  } else if constexpr (EPI == QG_RESIDUAL) {
    const float v = rms_residual_store<BF16>((uint16_t*)y, f.scaled, f.weight != NULL, n0 + o, p.res, total, p.nw);
    // Runs of 4 outputs are lanes 4i .. 4i + 3 of warp 0 (the last run may be shorter): their
    // squares added in order.
    const unsigned lanes = rows >= 32 ? 0xffffffffu : (1u << rows) - 1;
    const int base = o & ~3;
    const float sq = __fmul_rn(v, v);
    float run = __shfl_sync(lanes, sq, base);
#pragma unroll
    for (int i = 1; i < 4; i++) {
      const float next = __shfl_sync(lanes, sq, base + i < rows ? base + i : rows - 1);
      if (base + i < rows) run = __fadd_rn(run, next);
    }
    if (o == base) f.sumsq[(n0 + o) / 4] = run;
  } else {
    if constexpr (RMS) total = __fmul_rn(inv, total), up = __fmul_rn(inv, up);
    const float v = __fmul_rn(glu_activate<DT, EPI == QG_GATED_GELU>(round_as<DT>(total)), round_as<DT>(up));
    ((uint16_t*)y)[n0 + o] = BF16 ? f32_to_bf16(v) : f32_to_f16(v);
  }
}

// The end of a block of `rows` outputs from n0 (at most 32; R slots, OUT = R / 2 outputs when
// gated, the gate's sums in slots 0 .. OUT - 1 and the up's in OUT ..): thread o < rows adds
// output o's partial sums over the block's `warps` warps in order and writes it through the
// epilogue with its operands p; rms_total and rms_parts are what rms_begin returned and filled.
template <bool BF16, int EPI, bool RMS, int R>
__device__ __forceinline__ void qg_finish(const float (*partial)[R], int warps, void* y, int y_dtype, int64_t n0,
                                          int rows, const qg_fused& f, const qg_operands& p, float rms_total,
                                          const float* rms_parts) {
  constexpr int OUT = qg_gated(EPI) ? R / 2 : R;
  __shared__ float rms_sum;
  if constexpr (RMS) rms_sum_write(rms_parts, f.rms, &rms_sum);
  __syncthreads();
  const float inv = RMS ? rms_sum_inv(rms_total, f.rms, &rms_sum) : 1.0f;
  const int o = threadIdx.x;
  if (o >= rows) return;
  float total = 0.0f, up = 0.0f;
  for (int i = 0; i < warps; i++) total += partial[i][o];
  if constexpr (qg_gated(EPI))
    for (int i = 0; i < warps; i++) up += partial[i][o + OUT];
  qg_store<BF16, EPI, RMS>(total, up, inv, y, y_dtype, n0, o, rows, f, p);
}

// The sums of four rows over a warp's lanes by one shuffle tree for all four (pairs of lanes 16,
// 8, 4, 2, 1 apart, as a single sum's xor tree; addition commutes, so each row's total has the
// same bits): 6 shuffles instead of 20. Lane l then holds row 2 * bit 4 of l + bit 3 of l (a
// lane holding row r: qg_lane_of_row).
__device__ __forceinline__ float qg_reduce4(const float (&p)[4], int lane) {
  const bool b4 = lane & 16, b3 = lane & 8;
  float a0 = b4 ? p[2] : p[0], a1 = b4 ? p[3] : p[1];
  a0 += __shfl_xor_sync(0xffffffffu, b4 ? p[0] : p[2], 16);
  a1 += __shfl_xor_sync(0xffffffffu, b4 ? p[1] : p[3], 16);
  float v = b3 ? a1 : a0;
  v += __shfl_xor_sync(0xffffffffu, b3 ? a0 : a1, 8);
#pragma unroll
  for (int o = 4; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// A lane holding row r after qg_reduce4.
__device__ __forceinline__ int qg_lane_of_row(int r) { return (r >> 1) * 16 + (r & 1) * 8; }

}  // namespace
