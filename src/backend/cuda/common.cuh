// Shared by the CUDA sources: the per-device stream, error checks, dtype load/store.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/launch.h"
#include "mlx/c/array.h"

extern "C" {
#include "util/error.h"
}

// The stream all work of `device` is ordered on (created on first use); NULL after an error
// (reported). Also makes `device` current.
cudaStream_t gpu_stream(int device);

// Streaming multiprocessors of `device` (queried once; 132 if the query fails): a sizing hint.
int gpu_sm_count(int device);

// Reports a failed CUDA call: returns 0 on success, 1 (error reported) otherwise.
static inline int gpu_check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return 0;
  cudaGetLastError();  // clear a non-sticky error so later calls are unaffected
  return util_error("CUDA: %s failed: %s", what, cudaGetErrorString(e));
}

// Checks a kernel launch.
#define GPU_LAUNCHED(name) gpu_check(cudaGetLastError(), name " launch")

// Programmatic dependent launch (sm_90). The decode step is a chain of small kernels, each
// waiting for the one before; launched with gpu_launch_chained, a kernel's blocks are scheduled
// while its predecessor still runs (their launch overlaps its tail). Every kernel launched that
// way calls gpu_chain_start before it reads or writes any memory another kernel writes: it waits
// until the predecessor has finished and its writes are visible, then lets the next kernel's
// blocks be scheduled. In a kernel launched normally it returns at once. MLXC_CUDA_PDL=0 launches
// normally (comparisons). (Prefetching a GEMV's weight rows into L2 before the wait, and
// triggering the next launch before it, were measured and lost: BENCHMARKS.md, eighth session.)
// The decode GEMVs load settled weights before their wait (gpu.h: gpu_backend_write_settled), and
// those loads slow down whatever the kernel before them still loads; so a small kernel that
// precedes a GEMV on the decode path (the norms, decode attention) lets the next kernel be
// scheduled only once its own inputs have arrived: gpu_chain_wait at its start,
// gpu_chain_release later. A thread that exits counts as released.
__device__ __forceinline__ void gpu_chain_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void gpu_chain_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void gpu_chain_start() {
  gpu_chain_wait();
  gpu_chain_release();
}

// Whether kernels are chained (MLXC_CUDA_PDL unset or not "0"; read once).
bool gpu_chaining_enabled();

// Kernel<<<grid, block, smem, s>>>(args...) as a programmatic dependent launch (see
// gpu_chain_start; the kernel must call it). Returns the launch's error.
template <typename... P, typename... A>
cudaError_t gpu_launch_chained(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t s, A... args) {
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cfg.attrs = &attr;
  cfg.numAttrs = gpu_chaining_enabled() ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, args...);
}

// float16/bfloat16 bit conversions identical to core/half.h (round to nearest even, the same
// NaN encodings), so GPU and CPU results match bit for bit where the float math matches.
__device__ __forceinline__ float bits_f32(uint32_t u) { return __uint_as_float(u); }
__device__ __forceinline__ float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }
__device__ __forceinline__ uint16_t f32_to_bf16(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
__device__ __forceinline__ float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    float v = (float)mant * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}
__device__ __forceinline__ uint16_t f32_to_f16(float f) {
  uint32_t u = __float_as_uint(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
  if (a < 0x38800000u) {
    float scaled = bits_f32(a) * 16777216.0f;
    uint32_t q = (uint32_t)scaled;
    float rest = scaled - (float)q;
    if (rest > 0.5f || (rest == 0.5f && (q & 1u))) q++;
    return (uint16_t)(sign | q);
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
  return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

// Storage type S and compute type C of a floating dtype (halves compute in float), with the
// conversions between them: the float side of the elementwise kernels' dtype traits.
template <int DT> struct float_dt;
template <> struct float_dt<MLX_FLOAT32> {
  using S = float; using C = float;
  static __device__ C ld(S v) { return v; }
  static __device__ S st(C v) { return v; }
};
template <> struct float_dt<MLX_FLOAT64> {
  using S = double; using C = double;
  static __device__ C ld(S v) { return v; }
  static __device__ S st(C v) { return v; }
};
template <> struct float_dt<MLX_FLOAT16> {
  using S = uint16_t; using C = float;
  static __device__ C ld(S v) { return f16_to_f32(v); }
  static __device__ S st(C v) { return f32_to_f16(v); }
};
template <> struct float_dt<MLX_BFLOAT16> {
  using S = uint16_t; using C = float;
  static __device__ C ld(S v) { return bf16_to_f32(v); }
  static __device__ S st(C v) { return f32_to_bf16(v); }
};

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide sum; every thread gets the result, the same in every block of one launch (a fixed
// order). `scratch` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float t = lane < warps ? scratch[lane] : 0.0f;
  return warp_sum(t);
}

// v rounded to dtype DT (float32: unchanged), as storing and loading it would round it.
template <int DT>
__device__ __forceinline__ float round_as(float v) {
  if constexpr (DT == MLX_BFLOAT16) return bf16_to_f32(f32_to_bf16(v));
  else if constexpr (DT == MLX_FLOAT16) return f16_to_f32(f32_to_f16(v));
  else return v;
}

// v rounded to `dtype` known at run time (float16, bfloat16; others unchanged): round_as's
// counterpart for kernels that take the dtype as an argument.
__device__ __forceinline__ float round_to(float v, int dtype) {
  if (dtype == MLX_FLOAT16) return f16_to_f32(f32_to_f16(v));
  if (dtype == MLX_BFLOAT16) return bf16_to_f32(f32_to_bf16(v));
  return v;
}

// sigmoid with e = e^-|x|: 1 / (1 + e) for x >= 0, e / (1 + e) below (no cancellation, which
// 1 - 1 / (1 + e) suffers in float32 for negative x).
__device__ __forceinline__ float gpu_sigmoid(float x) {
  const float e = expf(-fabsf(x));
  return __fdiv_rn(x < 0 ? e : 1.0f, 1.0f + e);
}

// glu's activation of a gate value x of dtype DT: SiLU (sigmoid(x) x) or the tanh GELU
// 0.5 x (1 + tanh(k2 (x + k1 x^3))), each op rounded to DT as the separate unary and binary
// kernels round it (the glu kernel and the gated GEMVs' epilogues).
template <int DT, bool GELU>
__device__ __forceinline__ float glu_activate(float x) {
  if constexpr (!GELU) {
    return round_as<DT>(__fmul_rn(round_as<DT>(gpu_sigmoid(x)), x));
  } else {
    const float k1 = round_as<DT>(0.044715f), k2 = round_as<DT>(0.7978845608f);  // as mlx_astype leaves them
    float t = round_as<DT>(__fmul_rn(x, x));
    t = round_as<DT>(__fmul_rn(t, x));
    t = round_as<DT>(__fmul_rn(t, k1));
    t = round_as<DT>(__fadd_rn(t, x));
    t = round_as<DT>(__fmul_rn(t, k2));
    t = round_as<DT>(tanhf(t));
    t = round_as<DT>(__fadd_rn(t, 1.0f));
    return round_as<DT>(__fmul_rn(t, round_as<DT>(__fmul_rn(x, 0.5f))));
  }
}

// Loads element i of a float-like array of `dtype` as float (the dtypes the fused kernels take).
__device__ __forceinline__ float load_f32(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case MLX_FLOAT16: return f16_to_f32(((const uint16_t*)p)[i]);
    case MLX_BFLOAT16: return bf16_to_f32(((const uint16_t*)p)[i]);
    case MLX_FLOAT32: return ((const float*)p)[i];
    case MLX_FLOAT64: return (float)((const double*)p)[i];
    case MLX_BOOL: return ((const bool*)p)[i] ? 1.0f : 0.0f;
    case MLX_INT32: return (float)((const int32_t*)p)[i];
    case MLX_UINT32: return (float)((const uint32_t*)p)[i];
    case MLX_INT64: return (float)((const int64_t*)p)[i];
    default: return 0.0f;
  }
}
// load_f32 for a dtype known at compile time: no branch between loads, so that a thread's
// independent loads are all in flight at once.
template <int DT>
__device__ __forceinline__ float load_as_f32(const void* p, int64_t i) {
  if constexpr (DT == MLX_FLOAT16) return f16_to_f32(((const uint16_t*)p)[i]);
  else if constexpr (DT == MLX_BFLOAT16) return bf16_to_f32(((const uint16_t*)p)[i]);
  else return ((const float*)p)[i];
}
__device__ __forceinline__ void store_f32(void* p, int dtype, int64_t i, float v) {
  switch (dtype) {
    case MLX_FLOAT16: ((uint16_t*)p)[i] = f32_to_f16(v); break;
    case MLX_BFLOAT16: ((uint16_t*)p)[i] = f32_to_bf16(v); break;
    default: ((float*)p)[i] = v; break;
  }
}

// Allows Kernel `bytes` of dynamic shared memory on `device` (needed above 48 KiB), once per
// kernel and device: setting the attribute costs microseconds. 0, or 1 with the error reported.
template <auto Kernel>
int gpu_allow_shared_memory(size_t bytes, int device, const char* what) {
  static bool done[64];
  if (device < 0 || device >= 64 || done[device]) return 0;
  if (gpu_check(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes), what)) return 1;
  done[device] = true;
  return 0;
}

// Element offset of row r of the last axis (gpu_rows: the leading dims' shape and strides).
__device__ __forceinline__ int64_t gpu_row_offset(const gpu_rows& R, int64_t r) {
  int64_t off = 0;
  for (int d = R.lead_ndim - 1; d >= 0; d--) {
    int64_t s = R.lead_shape[d], q = r / s;
    off += (r - q * s) * R.lead_strides[d];
    r = q;
  }
  return off;
}

// MLX's maximum: NaN wins.
template <typename T>
__device__ __forceinline__ T gpu_max_nan(T a, T b) {
  if (a != a || b != b) return (T)NAN;
  return a > b ? a : b;
}

// MLX's argmax order: (va, ia) beats (vb, ib) when it is a NaN (the first NaN wins), else the
// larger value, else the smaller index; an index of -1 is no candidate.
template <typename T>
__device__ __forceinline__ bool gpu_argmax_beats(T va, int64_t ia, T vb, int64_t ib) {
  if (ib < 0) return ia >= 0;
  if (ia < 0) return false;
  const bool na = va != va, nb = vb != vb;
  if (na || nb) return na && nb ? ia < ib : na;
  if (va != vb) return va > vb;
  return ia < ib;
}

// An index of any integer dtype at p, as int64 (uint64 reinterpreted).
__device__ __forceinline__ int64_t gpu_load_index(const void* p, int dtype) {
  switch (dtype) {
    case MLX_INT8: return *(const int8_t*)p;
    case MLX_UINT8: return *(const uint8_t*)p;
    case MLX_INT16: return *(const int16_t*)p;
    case MLX_UINT16: return *(const uint16_t*)p;
    case MLX_INT32: return *(const int32_t*)p;
    case MLX_UINT32: return *(const uint32_t*)p;
    case MLX_UINT64: return (int64_t)*(const uint64_t*)p;
    default: return *(const int64_t*)p;
  }
}
