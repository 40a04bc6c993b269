// An rms_norm split across the GEMVs around it (mlxc_fast_linear_residual, then
// mlxc_fast_rms_norm_linear): the producer's blocks write the sums of squares of the residual
// stream by runs of 4 outputs (sumsq), and the consumer multiplies its products by
// inv = 1 / sqrt(sum(sumsq) / D + eps) when it ends (the norm's factor applied after the product
// instead of before it). The consumer needs the sum only then: its first warp copies the runs
// into shared memory when the kernel starts (cp.async, no registers held while the products run)
// and adds them before the block's last barrier. One warp, not all of them: a GEMV of many small
// blocks (the 8B 4-bit gate/up: 7,168 blocks of 4 rows) is bound by instruction issue, and every
// block repeats this work (BENCHMARKS.md, thirteenth session: one warp +2-3% on the 8B 8/4-bit).
// Shared by the half (gemm.cu) and quantized (qgemv.cu) GEMVs.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"

struct gpu_rms {
  const float* sumsq;  // `parts` values adding up to sum(h^2)
  int parts;
  int64_t D;  // h's length
  float eps;
};

// The most partial sums a GEMV stages (16 KB of shared memory).
constexpr int GPU_RMS_MAX_PARTS = 4096;

// The dynamic shared memory a consumer kernel needs for r's parts.
inline size_t rms_smem_bytes(const gpu_rms& r) { return r.parts > 1 ? sizeof(float) * (size_t)r.parts : 0; }

// The producer's epilogue for output n: v = res + round(sum) rounded to the dtype into y[n], and
// v * weight[n] into scaled[n] when there is a norm weight (nw, its value, loaded early). Returns v.
template <bool BF16>
__device__ __forceinline__ float rms_residual_store(uint16_t* y, uint16_t* scaled, bool weighted, int64_t n,
                                                   float res, float sum, float nw) {
  constexpr int DT = BF16 ? MLX_BFLOAT16 : MLX_FLOAT16;
  const float v = round_as<DT>(__fadd_rn(res, round_as<DT>(sum)));
  y[n] = BF16 ? f32_to_bf16(v) : f32_to_f16(v);
  if (weighted) scaled[n] = BF16 ? f32_to_bf16(__fmul_rn(v, nw)) : f32_to_f16(__fmul_rn(v, nw));
  return v;
}

// Whether the parts go in 16-byte copies, four at a time (a quarter of the copy instructions).
__device__ __forceinline__ bool rms_wide(const gpu_rms& r) {
  return r.parts % 4 == 0 && ((uintptr_t)r.sumsq & 15u) == 0;
}

// The consumer's start, after the chain wait: one part is loaded into a register and returned;
// several are copied into s_parts (16-byte aligned) by the first warp, and 0 is returned.
__device__ __forceinline__ float rms_begin(float* s_parts, const gpu_rms& r) {
  if (r.parts == 1) return *(volatile const float*)r.sumsq;
  if (threadIdx.x >= 32) return 0.0f;
  const bool wide = rms_wide(r);
  const int copies = wide ? r.parts / 4 : r.parts;
  for (int i = threadIdx.x; i < copies; i += 32) {
    if (wide) {
      const uint32_t to = (uint32_t)__cvta_generic_to_shared(s_parts + 4 * i);
      asm volatile("cp.async.ca.shared.global [%0], [%1], 16;\n" ::"r"(to), "l"(r.sumsq + 4 * i));
    } else {
      const uint32_t to = (uint32_t)__cvta_generic_to_shared(s_parts + i);
      asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(to), "l"(r.sumsq + i));
    }
  }
  asm volatile("cp.async.commit_group;\n" ::);
  return 0.0f;
}

// Before a barrier: the first warp adds the parts it copied (its own copies need no barrier)
// into *total_slot.
__device__ __forceinline__ void rms_sum_write(const float* s_parts, const gpu_rms& r, float* total_slot) {
  if (r.parts == 1 || threadIdx.x >= 32) return;
  asm volatile("cp.async.wait_all;\n" ::);
  float part = 0.0f;
  if (rms_wide(r)) {
    for (int i = threadIdx.x; i < r.parts / 4; i += 32) {
      const float4 v = ((const float4*)s_parts)[i];
      part += (v.x + v.y) + (v.z + v.w);
    }
  } else {
    for (int i = threadIdx.x; i < r.parts; i += 32) part += s_parts[i];
  }
  part = warp_sum(part);
  if (threadIdx.x == 0) *total_slot = part;
}

// The parts' total without the staging, in every lane of the first warp (rms_sum_write's order:
// the same bits), for a block of one warp (the quantized GEMV's one-warp blocks, qgemv.cu): the
// copies and the pass over shared memory were that warp's own instructions, in every one of
// thousands of blocks. The parts are read straight from L2 once the products are done.
__device__ __forceinline__ float rms_parts_total(const gpu_rms& r) {
  float part = 0.0f;
  if (rms_wide(r)) {
    for (int i = threadIdx.x; i < r.parts / 4; i += 32) {
      const float4 v = __ldcg((const float4*)r.sumsq + i);
      part += (v.x + v.y) + (v.z + v.w);
    }
  } else {
    for (int i = threadIdx.x; i < r.parts; i += 32) part += __ldcg(r.sumsq + i);
  }
  return warp_sum(part);
}

// The norm's factor from the total of the squares.
__device__ __forceinline__ float rms_inv_of(float total, const gpu_rms& r) {
  return rsqrtf(__fdividef(total, (float)r.D) + r.eps);
}

// After that barrier: inv (the same value in every block: the parts are added in a fixed order),
// by the fast reciprocal square root (a few instructions, not the ~40 of IEEE division and square
// root; ~2 ulp of float32, far below the rounding of the products it scales).
__device__ __forceinline__ float rms_sum_inv(float total, const gpu_rms& r, const float* total_slot) {
  return rms_inv_of(r.parts > 1 ? *total_slot : total, r);
}

// inv where the kernel has no barrier of its own to share. Every thread of the block calls it.
__device__ __forceinline__ float rms_inv(float total, const float* s_parts, const gpu_rms& r) {
  __shared__ float total_slot;
  rms_sum_write(s_parts, r, &total_slot);
  if (r.parts > 1) __syncthreads();
  return rms_sum_inv(total, r, &total_slot);
}
