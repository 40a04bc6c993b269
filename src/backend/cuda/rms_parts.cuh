// An rms_norm split across the GEMVs around it (mlxc_fast_linear_residual, then
// mlxc_fast_rms_norm_linear): the producer's blocks write the sums of squares of the residual
// stream by runs of 4 outputs (sumsq), and the consumer multiplies its products by
// inv = 1 / sqrt(sum(sumsq) / D + eps) when it ends (the norm's factor applied after the product
// instead of before it). The consumer needs the parts only then: they are copied into shared
// memory when it starts (cp.async, no registers held while the products run), each thread adds
// the ones it copied and the warps' shares meet in shared memory. Shared by the half (gemm.cu)
// and quantized (qgemv.cu) GEMVs.
#pragma once
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

// Whether the parts go in 16-byte copies, four at a time (a quarter of the copy instructions: a
// GEMV of many small blocks is bound by instruction issue).
__device__ __forceinline__ bool rms_wide(const gpu_rms& r) {
  return r.parts % 4 == 0 && ((uintptr_t)r.sumsq & 15u) == 0;
}

// The consumer's start, after the chain wait: one part is loaded into a register and returned;
// several are copied into s_parts (16-byte aligned) and 0 is returned.
__device__ __forceinline__ float rms_begin(float* s_parts, const gpu_rms& r) {
  if (r.parts == 1) return *(volatile const float*)r.sumsq;
  const bool wide = rms_wide(r);
  const int copies = wide ? r.parts / 4 : r.parts;
  for (int i = threadIdx.x; i < copies; i += blockDim.x) {
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

// Before a barrier: this warp's share of the parts (those its threads copied: their own copies
// need no barrier) into slots[warp].
__device__ __forceinline__ void rms_slot_write(const float* s_parts, const gpu_rms& r, float* slots) {
  if (r.parts == 1) return;
  asm volatile("cp.async.wait_all;\n" ::);
  float part = 0.0f;
  if (rms_wide(r)) {
    for (int i = threadIdx.x; i < r.parts / 4; i += blockDim.x) {
      const float4 v = ((const float4*)s_parts)[i];
      part += (v.x + v.y) + (v.z + v.w);
    }
  } else {
    for (int i = threadIdx.x; i < r.parts; i += blockDim.x) part += s_parts[i];
  }
  part = warp_sum(part);
  if ((threadIdx.x & 31) == 0) slots[threadIdx.x >> 5] = part;
}

// After that barrier: inv, the warps' shares added in order (the same value in every block), by
// the fast reciprocal square root (a few instructions, not the ~40 of IEEE division and square
// root, in every thread of GEMVs of many small blocks; ~2 ulp of float32, far below the rounding
// of the products it scales).
__device__ __forceinline__ float rms_slots_inv(float total, const gpu_rms& r, const float* slots) {
  if (r.parts > 1) {
    total = 0.0f;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) total += slots[w];
  }
  return rsqrtf(__fdividef(total, (float)r.D) + r.eps);
}

// inv where the kernel has no barrier of its own to share. Every thread of the block calls it.
__device__ __forceinline__ float rms_inv(float total, const float* s_parts, const gpu_rms& r) {
  __shared__ float slots[32];
  rms_slot_write(s_parts, r, slots);
  if (r.parts > 1) __syncthreads();
  return rms_slots_inv(total, r, slots);
}
