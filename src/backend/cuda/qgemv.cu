// Batch-1 decode with affine-quantized weights (MLX's layout, quantized_matmul with
// transpose=true): y (N) = W x for W (N, K) packed LSB-first in uint32 words, with a scale and a
// bias per group of 32, 64 or 128 values. Each warp computes QG_ROWS rows at once, so every x
// value read serves several rows; each lane loads 16 bytes of packed weights per row at a time
// (32 4-bit or 16 8-bit values, always inside one group) and adds scale * sum(x q) + bias * sum(x)
// for them, as the CPU kernel (qgemv.c) groups it (the direct kernel below splits K over warps, and
// has a gated form for mlxc_fast_gated_linear with glu in its epilogue, and the fused norm's ends:
// mlxc_fast_linear_residual, mlxc_fast_rms_norm_linear; 4-bit GEMVs of many short rows go to the
// tensor-core kernel of qgemv_mma.cuh, launch_mma below). x is staged in shared memory as float32
// once per block, transposed by chunk ("value j of every 16-byte chunk" is one contiguous run) so that
// the 32 lanes, which read 32 consecutive chunks, hit 32 different banks.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/qgemv_mma.cuh"
#include "backend/cuda/qgemv_parts.cuh"
#include "backend/cuda/quant_values.cuh"
#include "backend/cuda/rms_parts.cuh"

namespace {

constexpr int QG_WARPS = 4;
constexpr int QG_ROWS = 2;  // rows per warp

template <int BITS>
__global__ void __launch_bounds__(32 * QG_WARPS)
    qgemv_kernel(void* y, int y_dtype, const void* x, int x_dtype, int64_t x_stride, const uint8_t* w,
                 const void* scales, const void* biases, int s_dtype, int64_t N, int64_t K, int group) {
  constexpr int PER = 128 / BITS;  // values per 16-byte chunk
  constexpr int WORD = 32 / BITS;  // values per 32-bit word
  extern __shared__ float xs[];
  const int64_t chunks = K / PER, pitch = chunks + 1;  // +1: staging writes avoid bank conflicts
  gpu_chain_start();
  for (int64_t k = threadIdx.x; k < K; k += blockDim.x) xs[(k % PER) * pitch + k / PER] = load_f32(x, x_dtype, k * x_stride);
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t n0 = ((int64_t)blockIdx.x * QG_WARPS + warp) * QG_ROWS;
  if (n0 >= N) return;
  const int64_t row_bytes = K * BITS / 8, groups = K / group;
  const int rows = N - n0 < QG_ROWS ? (int)(N - n0) : QG_ROWS;
  float acc[QG_ROWS];
#pragma unroll
  for (int r = 0; r < QG_ROWS; r++) acc[r] = 0.0f;
#pragma unroll 2
  for (int64_t c = lane; c < chunks; c += 32) {
    uint4 u[QG_ROWS];
#pragma unroll
    for (int r = 0; r < QG_ROWS; r++)
      u[r] = r < rows ? __ldcs((const uint4*)(w + (n0 + r) * row_bytes + c * 16)) : make_uint4(0, 0, 0, 0);
    float dot[QG_ROWS], sum = 0.0f;
#pragma unroll
    for (int r = 0; r < QG_ROWS; r++) dot[r] = 0.0f;
#pragma unroll
    for (int t = 0; t < 4; t++) {
#pragma unroll
      for (int e = 0; e < WORD; e++) {
        const float xv = xs[(t * WORD + e) * pitch + c];
        sum += xv;
#pragma unroll
        for (int r = 0; r < QG_ROWS; r++) {
          const uint32_t word = t == 0 ? u[r].x : t == 1 ? u[r].y : t == 2 ? u[r].z : u[r].w;
          dot[r] += xv * q_to_float((word >> (e * BITS)) & ((1u << BITS) - 1));
        }
      }
    }
    const int64_t g = (c * PER) / group;
#pragma unroll
    for (int r = 0; r < QG_ROWS; r++) {
      if (r >= rows) break;
      const int64_t gi = (n0 + r) * groups + g;
      acc[r] += load_f32(scales, s_dtype, gi) * dot[r] + load_f32(biases, s_dtype, gi) * sum;
    }
  }
#pragma unroll
  for (int r = 0; r < QG_ROWS; r++) {
    float a = acc[r];
    for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
    if (lane == 0 && r < rows) store_f32(y, y_dtype, n0 + r, a);
  }
}

// The common decode case, x float16/bfloat16 and contiguous: no staging. A block computes
// QG_DIRECT_ROWS rows with its QG_WARPS warps splitting K between them (so that a decode
// matrix gives enough warps to keep the memory system busy: with one warp per row group the
// kernel was bound by each warp's serial latency, ~18% of the SM's issue rate), and the warps'
// partial sums meet in shared memory. Each lane reads 16 bytes of every row per chunk and the x
// values of the chunk (16-byte loads, served by L1 after the first warp). A quantized value
// becomes a float with one byte permute into the mantissa of 2^23 and one subtraction.
// W, the warps of a block: QG_WARPS for long rows; for rows of at most 128 chunks (the 8B's
// K = 4,096) four warps left a lane one chunk a row, and a block's fixed costs (row addresses,
// preloads, the fused norm's staging, the end) were as many instructions as its products (ncu,
// gate/up: 729 a warp, ~390 of them the chunk's). There one warp a block, four chunks a lane,
// where the blocks are many (gate/up 30.0-31.4 -> 29.2-30.5 us, LM head 110 -> 100 us in the
// 8B 4-bit step), and two where they are one wave (q/k/v, o: one warp left too few warps;
// BENCHMARKS.md, eighteenth session). Down's 448 chunks lost with one warp (14 a lane).
constexpr int QG_DIRECT_ROWS = 4;

extern __shared__ __align__(16) float qg_rms_parts[];  // RMS: the partial sums of squares

// Registers are capped at 64 (32 warps per SM): the kernel is bound by memory
// latency, so occupancy matters more than a few spilled temporaries (there are none at 64).
// SDT, the scales' dtype, is a template parameter: a branch on it between the loads would make
// each scale load wait for the previous one.
// N outputs. Gated (EPI not QG_PLAIN), W has 2N rows, gate rows then up rows, and a block computes
// R / 2 outputs from their R / 2 gate and R / 2 up rows: the same R rows of registers as a plain
// block, and each row's sum the plain kernel's bit for bit (a row's arithmetic does not depend on
// its slot), so that the result equals the plain GEMV over the 2N rows followed by glu. RMS
// (mlxc_fast_rms_norm_linear): the sums are multiplied by the norm's factor (rms_parts.cuh)
// before they are rounded, plus f.bias in a plain one.
template <int BITS, bool BF16, int SDT, int EPI = QG_PLAIN, bool RMS = false, int W = QG_WARPS>
__global__ void __launch_bounds__(32 * W, 32 / W)
    qgemv_direct(void* y, int y_dtype, const uint16_t* x, const uint8_t* w, const void* scales, const void* biases,
                 int64_t N, int64_t K, int group_shift, bool preload, qg_fused f) {
  constexpr bool GATED = qg_gated(EPI);
  constexpr int PER = 128 / BITS, R = QG_DIRECT_ROWS, OUT = GATED ? R / 2 : R;
  __shared__ float partial[W][R];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t n0 = (int64_t)blockIdx.x * OUT;
  const int rows = N - n0 < OUT ? (int)(N - n0) : OUT;  // outputs of this block
  const int chunks = (int)(K / PER), groups = (int)(K >> group_shift);
  // Row pointers once (slot r's row: qg_slot_row); the loop below indexes with 32-bit chunk
  // numbers.
  const uint4* wr[R];
  int64_t prow[R];
#pragma unroll
  for (int r = 0; r < R; r++) {
    const int64_t n = qg_slot_row(n0, rows, N, r, OUT);
    wr[r] = (const uint4*)(w + n * (K * BITS / 8));
    prow[r] = n * groups;
  }
  auto cvt = [](uint32_t h) { return BF16 ? __uint_as_float(h << 16) : f16_to_f32((uint16_t)h); };
  uint4 u[R];
  float sc[R], bi[R];
  auto load = [&](int c) {
    const int g = (c * PER) >> group_shift;
#pragma unroll
    for (int r = 0; r < R; r++) {
      u[r] = __ldcs(wr[r] + c);
      sc[r] = load_as_f32<SDT>(scales, prow[r] + g);
      bi[r] = load_as_f32<SDT>(biases, prow[r] + g);
    }
  };
  // Settled weights (no write to them can still be running: gpu.h, gpu_backend_write_settled)
  // are loaded before the chain wait, the first chunk of each row, so that the loads overlap the
  // previous kernel's tail; a decode matrix of K = 4096 is all loaded there.
  const int first = warp * 32 + lane;
  if (preload && first < chunks) load(first);
  gpu_chain_start();
  // The epilogue's operands are read now, their latency under the products'.
  const qg_operands ops = qg_load_operands<BF16, EPI, RMS>(f, n0, rows);
  // One warp reads the norm's parts at its end instead (rms_parts_total).
  const float rms_total = RMS && (W > 1 || f.rms.parts == 1) ? rms_begin(qg_rms_parts, f.rms) : 0.0f;
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; r++) acc[r] = 0.0f;
  for (int c = first; c < chunks; c += 32 * W) {
    if (c != first || !preload) load(c);
    uint4 xq[PER / 8];
#pragma unroll
    for (int i = 0; i < PER / 8; i++) xq[i] = __ldg((const uint4*)(x + (int64_t)c * PER) + i);
    float dot[R], sum = 0.0f;
#pragma unroll
    for (int r = 0; r < R; r++) dot[r] = 0.0f;
#pragma unroll
    for (int t = 0; t < 4; t++) {  // the chunk's four 32-bit words
      // Packed values j = 0..WORD-1 of word t: 4-bit even ones in the bytes of lo, odd ones in
      // hi; 8-bit ones are the word's bytes.
      uint32_t lo[R], hi[R];
#pragma unroll
      for (int r = 0; r < R; r++) {
        const uint32_t word = t == 0 ? u[r].x : t == 1 ? u[r].y : t == 2 ? u[r].z : u[r].w;
        lo[r] = BITS == 4 ? (word << 3) & 0x78787878u : word;  // 4-bit: q << 3 in each byte
        hi[r] = BITS == 4 ? (word >> 1) & 0x78787878u : 0u;
      }
#pragma unroll
      for (int e = 0; e < 32 / BITS; e++) {
        const int j = t * (32 / BITS) + e;  // value index in the chunk
        const uint4& xv = xq[j / 8];
        const uint32_t pair = (j % 8) / 2 == 0 ? xv.x : (j % 8) / 2 == 1 ? xv.y : (j % 8) / 2 == 2 ? xv.z : xv.w;
        const float xf = cvt(j % 2 ? pair >> 16 : pair & 0xffffu);
        sum += xf;
#pragma unroll
        for (int r = 0; r < R; r++) {
          if constexpr (BITS == 4)
            dot[r] = fmaf(xf, nibble_half(e % 2 ? hi[r] : lo[r], e / 2), dot[r]);
          else
            dot[r] = fmaf(xf, byte_biased(lo[r], e) - 8388608.0f, dot[r]);
        }
      }
    }
#pragma unroll
    for (int r = 0; r < R; r++) {
      if constexpr (BITS == 4)  // sum(x q) = 32 dot - 16 sum(x) (nibble_half)
        acc[r] += fmaf(32.0f * sc[r], dot[r], (bi[r] - 16.0f * sc[r]) * sum);
      else
        acc[r] += sc[r] * dot[r] + bi[r] * sum;
    }
  }
  if constexpr (W == 1) {
    // One warp: the rows' sums meet in its lanes (one shuffle tree for the four), the norm's
    // parts are read now (rms_parts_total), and lanes o < rows finish: no shared memory, no barrier.
    static_assert(R == 4, "qg_reduce4 sums four rows");
    const float v = qg_reduce4(acc, lane);
    const float inv = RMS ? rms_inv_of(f.rms.parts == 1 ? rms_total : rms_parts_total(f.rms), f.rms) : 1.0f;
    const int o = lane < rows ? lane : 0;
    const float total = __shfl_sync(0xffffffffu, v, qg_lane_of_row(o));
    const float up = GATED ? __shfl_sync(0xffffffffu, v, qg_lane_of_row(o + OUT)) : 0.0f;
    if (lane < rows) qg_store<BF16, EPI, RMS>(total, up, inv, y, y_dtype, n0, lane, rows, f, ops);
  } else {
#pragma unroll
    for (int r = 0; r < R; r++) {
      float a = acc[r];
      for (int o = 16; o > 0; o >>= 1) a += __shfl_xor_sync(0xffffffffu, a, o);
      if (lane == 0) partial[warp][r] = a;
    }
    qg_finish<BF16, EPI, RMS, R>(partial, W, y, y_dtype, n0, rows, f, ops, rms_total, qg_rms_parts);
  }
}

// The tensor-core kernel (qgemv_mma.cuh) when it takes the case: scales of x's dtype, 4-byte
// aligned, K a multiple of 128 and x within 48 KB of shared memory; by default only where it
// measured faster than the CUDA-core kernel (BENCHMARKS.md, fourteenth session): K <= 2048 (at
// most 8 warps a tile, two blocks an SM) and at least 512 tiles (the 0.5B's gate/up and LM
// head; with fewer the SMs idle). MLXC_QGEMV_MMA=0 never takes it, =1 wherever it can run
// (tests). The choice depends on K and the tiles alone, so that the gated GEMV (8 outputs a
// tile) and the plain one over its stacked rows (16) agree. Returns 1 when it does not take the
// case, else the launch's status negated (0 or -1).
template <int EPI, bool RMS>
int launch_mma(cudaStream_t s, void* y, int y_dtype, const void* x, int x_dtype, const void* w, const void* scales,
               const void* biases, int s_dtype, int64_t N, int64_t K, int group, bool preload, const qg_fused& f) {
  static int mode = -1;  // 0 never, 1 wherever it can run, 2 where it measured faster
  if (mode < 0) {
    const char* v = getenv("MLXC_QGEMV_MMA");
    mode = v && strcmp(v, "0") == 0 ? 0 : v && strcmp(v, "1") == 0 ? 1 : 2;
  }
  constexpr int OUT = qg_gated(EPI) ? 8 : 16;
  const int64_t blocks = (N + OUT - 1) / OUT;
  const size_t smem = qm_smem_bytes(K, group, RMS ? rms_smem_bytes(f.rms) : 0);
  const bool aligned = !(((uintptr_t)scales | (uintptr_t)biases) & 3);
  if (!mode || s_dtype != x_dtype || K % 128 != 0 || smem > 48 * 1024 || !aligned || blocks > 0x7fffffff ||
      (mode == 2 && (K > 2048 || blocks < 512)))
    return 1;
  using kernel_t = void (*)(void*, int, const uint16_t*, const uint8_t*, const uint16_t*, const uint16_t*, int64_t,
                            int64_t, bool, qg_fused);
  static const kernel_t kernels[2][3] = {
      {qgemv_mma<32, false, EPI, RMS>, qgemv_mma<64, false, EPI, RMS>, qgemv_mma<128, false, EPI, RMS>},
      {qgemv_mma<32, true, EPI, RMS>, qgemv_mma<64, true, EPI, RMS>, qgemv_mma<128, true, EPI, RMS>}};
  const kernel_t kernel = kernels[x_dtype == MLX_BFLOAT16][group == 32 ? 0 : group == 64 ? 1 : 2];
  const int st = gpu_check(gpu_launch_chained(kernel, (unsigned)blocks, 32 * qm_warps(K), smem, s, y, y_dtype,
                                              (const uint16_t*)x, (const uint8_t*)w, (const uint16_t*)scales,
                                              (const uint16_t*)biases, N, K, preload, f),
                           "quantized GEMV launch");
  return -st;
}

using direct_kernel_t = void (*)(void*, int, const uint16_t*, const uint8_t*, const void*, const void*, int64_t,
                                 int64_t, int, bool, qg_fused);

// qgemv_direct for x's dtype (bfloat16 or float16) and the scales' (SDT), W warps a block.
template <int BITS, int EPI, bool RMS, int W, int SDT>
direct_kernel_t direct_kernel_for(bool bf16) {
  return bf16 ? qgemv_direct<BITS, true, SDT, EPI, RMS, W> : qgemv_direct<BITS, false, SDT, EPI, RMS, W>;
}

// The same for the scales' dtype known at run time (the fused ends: x's dtype).
template <int BITS, int EPI, bool RMS, int W>
direct_kernel_t direct_kernel(int s_dtype, bool bf16) {
  if constexpr (EPI == QG_PLAIN && !RMS)
    return s_dtype == MLX_BFLOAT16 ? direct_kernel_for<BITS, EPI, RMS, W, MLX_BFLOAT16>(bf16)
           : s_dtype == MLX_FLOAT16 ? direct_kernel_for<BITS, EPI, RMS, W, MLX_FLOAT16>(bf16)
                                    : direct_kernel_for<BITS, EPI, RMS, W, MLX_FLOAT32>(bf16);
  else  // scales of x's dtype
    return bf16 ? qgemv_direct<BITS, true, MLX_BFLOAT16, EPI, RMS, W>
                : qgemv_direct<BITS, false, MLX_FLOAT16, EPI, RMS, W>;
}

// The direct kernel for x_dtype and s_dtype (gated, residual, rms: s_dtype is x_dtype) over N
// outputs.
template <int BITS, int EPI, bool RMS = false>
int launch_direct(cudaStream_t s, void* y, int y_dtype, const void* x, int x_dtype, const void* w, const void* scales,
                  const void* biases, int s_dtype, int64_t N, int64_t K, int group, bool preload, qg_fused f = {}) {
  constexpr bool GATED = qg_gated(EPI);
  if constexpr (BITS == 4) {
    const int st = launch_mma<EPI, RMS>(s, y, y_dtype, x, x_dtype, w, scales, biases, s_dtype, N, K, group, preload, f);
    if (st <= 0) return -st;
  }
  // Rows of at most 128 chunks (K <= 4,096 4-bit or 2,048 8-bit values) take one warp a block
  // when there are 4,096 blocks or more, and two when there are fewer (one wave: more warps, each
  // with less work) and over 32 chunks; the rest four (qgemv_direct's W). Rows of 32 chunks or
  // fewer in few blocks (the 0.5B's 4-bit q/k/v and o, 28 chunks) stay at four: two were ~1%
  // slower there, the cause not found.
  static int forced = -1;  // MLXC_QGEMV_W=1, 2: that many wherever K allows, =4: always four (tests, comparisons)
  if (forced < 0) {
    const char* v = getenv("MLXC_QGEMV_W");
    forced = v && strlen(v) == 1 && strchr("124", v[0]) ? atoi(v) : 0;
  }
  const int64_t per_block = GATED ? QG_DIRECT_ROWS / 2 : QG_DIRECT_ROWS, blocks = (N + per_block - 1) / per_block;
  if (blocks > 0x7fffffff) return util_error("quantized_matmul: too many rows for the GPU kernel");
  const int64_t chunks = K / (128 / BITS);
  const int warps = chunks > 128 ? QG_WARPS : forced ? forced : blocks >= 4096 ? 1 : chunks > 32 ? 2 : QG_WARPS;
  const int shift = group == 32 ? 5 : group == 64 ? 6 : 7;
  const bool bf16 = x_dtype == MLX_BFLOAT16;
  const direct_kernel_t kernel = warps == 1   ? direct_kernel<BITS, EPI, RMS, 1>(s_dtype, bf16)
                                 : warps == 2 ? direct_kernel<BITS, EPI, RMS, 2>(s_dtype, bf16)
                                              : direct_kernel<BITS, EPI, RMS, QG_WARPS>(s_dtype, bf16);
  const size_t smem = RMS && warps > 1 ? rms_smem_bytes(f.rms) : 0;
  return gpu_check(gpu_launch_chained(kernel, (unsigned)blocks, 32 * warps, smem, s, y, y_dtype, (const uint16_t*)x,
                                      (const uint8_t*)w, scales, biases, N, K, shift, preload, f),
                   "quantized GEMV launch");
}

}  // namespace

extern "C" bool gpu_qgemv_supported(int bits, int group_size, int64_t K) {
  return (bits == 4 || bits == 8) && (group_size == 32 || group_size == 64 || group_size == 128) &&
         K > 0 && K % group_size == 0 && (K + 32) * (int64_t)sizeof(float) <= 160 * 1024;
}

extern "C" int gpu_launch_qgemv_affine(int device, int bits, int group_size, void* y, int y_dtype,
                                       const void* x, int x_dtype, int64_t x_stride,
                                       const void* w, const void* scales, const void* biases,
                                       int s_dtype, int64_t N, int64_t K, bool settled) {
  if (N == 0) return 0;
  if (!gpu_qgemv_supported(bits, group_size, K) || ((uintptr_t)w & 15u))
    return util_error("quantized_matmul: unsupported layout for the GPU kernel");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const bool half_scales = s_dtype == MLX_BFLOAT16 || s_dtype == MLX_FLOAT16 || s_dtype == MLX_FLOAT32;
  if ((x_dtype == MLX_BFLOAT16 || x_dtype == MLX_FLOAT16) && half_scales && (x_stride == 1 || K == 1) &&
      ((uintptr_t)x & 15u) == 0)
    return bits == 4
               ? launch_direct<4, QG_PLAIN>(s, y, y_dtype, x, x_dtype, w, scales, biases, s_dtype, N, K, group_size, settled)
               : launch_direct<8, QG_PLAIN>(s, y, y_dtype, x, x_dtype, w, scales, biases, s_dtype, N, K, group_size, settled);
  const int64_t rows_per_block = (int64_t)QG_WARPS * QG_ROWS;
  const int64_t blocks = (N + rows_per_block - 1) / rows_per_block;
  if (blocks > 0x7fffffff) return util_error("quantized_matmul: too many rows for the GPU kernel");
  unsigned grid = (unsigned)blocks;
  size_t smem = sizeof(float) * (size_t)(K + 128 / bits);
  // The shared-memory ceiling is raised once per kernel, to the largest size seen so far (the
  // attribute call costs microseconds: too much for every decode step).
  static size_t configured[2];
  size_t* ceiling = &configured[bits == 4 ? 0 : 1];
  int st = 0;
  if (smem > *ceiling) {
    st = gpu_check(bits == 4 ? cudaFuncSetAttribute(qgemv_kernel<4>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)
                             : cudaFuncSetAttribute(qgemv_kernel<8>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                   "qgemv shared memory");
    if (!st) *ceiling = smem;
  }
  if (!st) {
    if (bits == 4)
      st = gpu_check(gpu_launch_chained(qgemv_kernel<4>, grid, 32 * QG_WARPS, smem, s, y, y_dtype, x, x_dtype, x_stride,
                                        (const uint8_t*)w, scales, biases, s_dtype, N, K, group_size),
                     "quantized GEMV launch");
    else
      st = gpu_check(gpu_launch_chained(qgemv_kernel<8>, grid, 32 * QG_WARPS, smem, s, y, y_dtype, x, x_dtype, x_stride,
                                        (const uint8_t*)w, scales, biases, s_dtype, N, K, group_size),
                     "quantized GEMV launch");
  }
  return st;
}

extern "C" int gpu_launch_gated_qgemv(int device, int bits, int group_size, int dtype, bool gelu, void* y,
                                      const void* x, const void* w, const void* scales, const void* biases, int64_t D,
                                      int64_t K, bool settled) {
  if (D == 0) return 0;
  if (!gpu_qgemv_supported(bits, group_size, K) || (dtype != MLX_BFLOAT16 && dtype != MLX_FLOAT16) ||
      ((uintptr_t)w & 15u) || ((uintptr_t)x & 15u))
    return util_error("gated_gemv: unsupported layout for the quantized GPU kernel");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  auto launch = bits == 4 ? (gelu ? launch_direct<4, QG_GATED_GELU> : launch_direct<4, QG_GATED_SILU>)
                          : (gelu ? launch_direct<8, QG_GATED_GELU> : launch_direct<8, QG_GATED_SILU>);
  return launch(s, y, dtype, x, dtype, w, scales, biases, dtype, D, K, group_size, settled, qg_fused{});
}

// The stream for a fused-end direct kernel (launch.h), or NULL with the error reported when the
// case is not the direct kernel's (gpu_qgemv_supported, half x 16-byte aligned with w, 1 to
// GPU_RMS_MAX_PARTS partial sums).
static cudaStream_t fused_stream(int device, int bits, int group_size, int dtype, int64_t K, const void* x,
                                 const void* w, int parts, const char* op) {
  if (!gpu_qgemv_supported(bits, group_size, K) || (dtype != MLX_BFLOAT16 && dtype != MLX_FLOAT16) ||
      !gpu_rms_parts_ok(parts) || (((uintptr_t)w | (uintptr_t)x) & 15u)) {
    util_error("%s: unsupported layout for the quantized GPU kernel", op);
    return NULL;
  }
  return gpu_stream(device);
}

extern "C" int gpu_launch_qgemv_residual(int device, int bits, int group_size, int dtype, int64_t N, int64_t K,
                                         const void* x, const void* w, const void* scales, const void* biases,
                                         const void* res, const void* norm_weight, void* y, void* scaled,
                                         float* sumsq, bool settled) {
  if (N == 0) return 0;
  cudaStream_t s = fused_stream(device, bits, group_size, dtype, K, x, w, 1, "linear_residual");
  if (!s) return 1;
  qg_fused f = {};
  f.res = (const uint16_t*)res, f.weight = (const uint16_t*)norm_weight, f.scaled = (uint16_t*)scaled, f.sumsq = sumsq;
  auto launch = bits == 4 ? launch_direct<4, QG_RESIDUAL> : launch_direct<8, QG_RESIDUAL>;
  return launch(s, y, dtype, x, dtype, w, scales, biases, dtype, N, K, group_size, settled, f);
}

extern "C" int gpu_launch_qgemv_rms(int device, int bits, int group_size, int dtype, int64_t N, int64_t K,
                                    const void* x, const void* w, const void* scales, const void* biases,
                                    const float* sumsq, int parts, float eps, const void* bias, int64_t bias_stride,
                                    void* y, bool settled) {
  if (N == 0) return 0;
  cudaStream_t s = fused_stream(device, bits, group_size, dtype, K, x, w, parts, "rms_norm_linear");
  if (!s) return 1;
  qg_fused f = {};
  f.rms = {sumsq, parts, K, eps}, f.bias = (const uint16_t*)bias, f.bias_stride = bias_stride;
  auto launch = bits == 4 ? launch_direct<4, QG_PLAIN, true> : launch_direct<8, QG_PLAIN, true>;
  return launch(s, y, dtype, x, dtype, w, scales, biases, dtype, N, K, group_size, settled, f);
}

extern "C" int gpu_launch_gated_qgemv_rms(int device, int bits, int group_size, int dtype, bool gelu, int64_t D,
                                          int64_t K, const void* x, const void* w, const void* scales,
                                          const void* biases, const float* sumsq, int parts, float eps, void* y,
                                          bool settled) {
  if (D == 0) return 0;
  cudaStream_t s = fused_stream(device, bits, group_size, dtype, K, x, w, parts, "rms_norm_linear");
  if (!s) return 1;
  qg_fused f = {};
  f.rms = {sumsq, parts, K, eps};
  auto launch = bits == 4 ? (gelu ? launch_direct<4, QG_GATED_GELU, true> : launch_direct<4, QG_GATED_SILU, true>)
                          : (gelu ? launch_direct<8, QG_GATED_GELU, true> : launch_direct<8, QG_GATED_SILU, true>);
  return launch(s, y, dtype, x, dtype, w, scales, biases, dtype, D, K, group_size, settled, f);
}
