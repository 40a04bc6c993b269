// Matrix products on the GPU: cuBLAS (cublasGemmStridedBatchedEx) for everything, float32 on TF32
// tensor cores unless MLX_ENABLE_TF32=0 (MLX's default and switch), fp32 accumulation for
// float16/bfloat16, except the batch-1 decode case
// (one half-precision row times a weight matrix stored (N, K)), which a GEMV kernel streams with
// 16-byte loads; a gated variant of it (mlxc_fast_gated_linear) applies glu in its epilogue, and
// fused variants carry an RMS norm's two ends (mlxc_fast_linear_residual, mlxc_fast_rms_norm_linear).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cublas_handle.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/lt_gemm.cuh"
#include "backend/cuda/rms_parts.cuh"

static cublasHandle_t handles[16];
static pthread_mutex_t handle_lock = PTHREAD_MUTEX_INITIALIZER;

cublasHandle_t gpu_cublas_handle(int device, cudaStream_t s) {
  if (device < 0 || device >= 16) {
    util_error("no GPU with index %d", device);
    return NULL;
  }
  pthread_mutex_lock(&handle_lock);
  if (!handles[device]) {
    cublasHandle_t h;
    if (cublasCreate(&h) == CUBLAS_STATUS_SUCCESS) {
      cublasSetMathMode(h, CUBLAS_DEFAULT_MATH);  // TF32 only where the compute type asks for it
      handles[device] = h;
    }
  }
  cublasHandle_t h = handles[device];
  pthread_mutex_unlock(&handle_lock);
  if (!h) {
    util_error("cuBLAS: cannot create a handle on GPU %d", device);
    return NULL;
  }
  cublasSetStream(h, s);
  return h;
}

namespace {

// float32 products on TF32 tensor cores (10-bit mantissa inputs, fp32 accumulation), as MLX
// does by default: ~10x the fp32 rate. MLX_ENABLE_TF32=0 keeps them exact fp32 (read at each
// call, so a program or a test can switch). Float16/bfloat16 products accumulate in fp32 always.
cublasComputeType_t compute_type(int dtype) {
  if (dtype != MLX_FLOAT32) return CUBLAS_COMPUTE_32F;
  const char* v = getenv("MLX_ENABLE_TF32");
  return v && !strcmp(v, "0") ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
}

// How cuBLAS (column-major) reads a row-major (R, C) operand: a row-major matrix with leading
// dimension rs is, column-major, its transpose. Returns false when neither layout fits.
bool blas_layout(int64_t R, int64_t C, int64_t rs, int64_t cs, bool* transposed, int64_t* ld) {
  if ((cs == 1 || C <= 1) && (R <= 1 || rs >= C)) {
    *transposed = false;
    *ld = R <= 1 ? (C > 1 ? C : 1) : rs;
    return true;
  }
  if ((rs == 1 || R <= 1) && (C <= 1 || cs >= R)) {
    *transposed = true;
    *ld = C <= 1 ? (R > 1 ? R : 1) : cs;
    return true;
  }
  return false;
}

// Weight loads in flight per lane before any arithmetic: one at a time left the GEMV at ~74% of
// copy; eight instead of four took an 8B layer's four GEMVs from 162.7 to 156.6 us (8-layer
// decode +4%), sixteen gave nothing more.
constexpr int GEMV_LOADS = 8;

constexpr int GEMV_WARPS = 8;  // a block's warps

// The GEMV_LOADS 16-byte chunks c, c + stride, ... of the half row w (those past the row's
// `chunks` are not loaded), issued together.
__device__ __forceinline__ void half_row_batch(uint4* wv, const uint16_t* w, int64_t chunks, int64_t c,
                                               int64_t stride) {
  const uint4* w4 = (const uint4*)w;
  if (c + stride * (GEMV_LOADS - 1) < chunks) {
#pragma unroll
    for (int u = 0; u < GEMV_LOADS; u++) wv[u] = __ldcs(w4 + c + stride * u);  // streamed once: no L1/L2 keep
  } else {
#pragma unroll
    for (int u = 0; u < GEMV_LOADS; u++)
      if (c + stride * u < chunks) wv[u] = __ldcs(w4 + c + stride * u);
  }
}

// This lane's first batch of the half row w (chunks first, first + stride, ...): loaded by the
// caller, so that it may go out before the chain wait. Nothing when !vec.
__device__ __forceinline__ void half_row_first(uint4* wv, const uint16_t* w, int64_t K, bool vec, int64_t first,
                                               int64_t stride) {
  if (vec) half_row_batch(wv, w, K / 8, first, stride);
}

// sum += the products of a 16-byte chunk of weights and of x, in order (every half GEMV sums
// a row this way, so that the plain and gated ones agree bit for bit).
template <bool BF16>
__device__ __forceinline__ void half_chunk_dot(float& sum, const uint4& w, const uint4& x) {
  auto cvt = [](uint16_t h) { return BF16 ? bf16_to_f32(h) : f16_to_f32(h); };
  const uint16_t* wp = (const uint16_t*)&w;
  const uint16_t* xp = (const uint16_t*)&x;
#pragma unroll
  for (int t = 0; t < 8; t++) sum += cvt(wp[t]) * cvt(xp[t]);
}

// This lane's share of the dot product of the half row w (K values) with x, fp32: the 16-byte
// chunks first, first + stride, ... when vec (w and x 16-byte aligned, K % 8 == 0), the first
// batch already in wv (half_row_first), else the single elements first, first + stride, ...
template <bool BF16>
__device__ __forceinline__ float half_row_dot(uint4* wv, const uint16_t* w, const uint16_t* x, int64_t K, bool vec,
                                              int64_t first, int64_t stride) {
  auto cvt = [](uint16_t h) { return BF16 ? bf16_to_f32(h) : f16_to_f32(h); };
  float sum = 0.0f;
  if (!vec) {
    for (int64_t k = first; k < K; k += stride) sum += cvt(w[k]) * cvt(x[k]);
    return sum;
  }
  const uint4* x4 = (const uint4*)x;
  const int64_t chunks = K / 8;
  auto products = [&](int u, int64_t c) { half_chunk_dot<BF16>(sum, wv[u], __ldg(x4 + c)); };
  // A batch's products, then the next batch's loads. x is loaded as the products go (loaded
  // with the weights, it cost registers and 10%); a full batch's products have no branch
  // between them, so that its x loads are issued together (with one, the 8B bf16 lost 5%).
  int64_t c = first;
  for (; c + stride * (GEMV_LOADS - 1) < chunks; c += stride * GEMV_LOADS) {
    if (c != first) half_row_batch(wv, w, chunks, c, stride);
#pragma unroll
    for (int u = 0; u < GEMV_LOADS; u++) products(u, c + stride * u);
  }
  // The rest, fewer than GEMV_LOADS chunks (all of an 896-wide row).
  if (c < chunks) {
    if (c != first) half_row_batch(wv, w, chunks, c, stride);
#pragma unroll
    for (int u = 0; u < GEMV_LOADS; u++)
      if (c + stride * u < chunks) products(u, c + stride * u);
  }
  return sum;
}

// The total of one output's `split` warps' shares: the lanes' by shuffles, then the warps'
// through partial (a slot per warp of the block) in a fixed order. Valid in lane 0 of the output's
// first warp (part 0). Every thread of the block calls it (split > 1 synchronises the block).
__device__ __forceinline__ float gemv_output_sum(float sum, float* partial, int lane, int warp, int part, int split) {
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (split > 1) {
    if (lane == 0) partial[warp] = sum;
    __syncthreads();
    if (part == 0)
      for (int p = 1; p < split; p++) sum += partial[warp + p];
  }
  return sum;
}

// The decode GEMVs' fused ends. GEMV_RESIDUAL (mlxc_fast_linear_residual): y = res + W x, the
// product rounded to the dtype first, the float32 sums of squares of y by runs of 4 outputs
// (sumsq[n / 4]) and y * weight (scaled), what the next norm needs; a block's outputs are whole
// runs. GEMV_RMS (mlxc_fast_rms_norm_linear): y = inv * (W x) (+ c), x the stream times the norm's
// weight and inv the norm's factor from the producer's sums of squares (rms_parts.cuh).
enum gemv_mode { GEMV_PLAIN, GEMV_RESIDUAL, GEMV_RMS };

struct gemv_residual {
  const uint16_t* res;     // (N) contiguous
  float* sumsq;            // (ceil(N / 4))
  const uint16_t* weight;  // the next norm's (N), or NULL
  uint16_t* scaled;        // y * weight (N), with weight
};

extern __shared__ __align__(16) float gemv_rms_parts[];  // GEMV_RMS: the partial sums of squares

// y[n] = sum_k x[k] * W[n, k] for half W rows (row stride ldw), fp32 accumulation; `split`
// warps of a block share one output (K split between them; 1 for many outputs), their sums
// meeting in shared memory in a fixed order. 16-byte loads when rows are aligned, else scalar.
// y = alpha * W x, plus beta * c when c (an addmm operand, element n at n * c_stride) is given.
// Settled weights (preload: no write to them can still be running, gpu.h) have their first
// batch loaded before the chain wait, overlapping the previous kernel's tail. MODE: the fused
// ends above (GEMV_RESIDUAL: alpha 1, no c, 4 or 8 outputs a block; GEMV_RMS: alpha is inv).
template <bool BF16, int MODE>
__device__ __forceinline__ void gemv_half_rows_body(uint16_t* y, const uint16_t* x, const uint16_t* W, int64_t ldw,
                                                    int64_t N, int64_t K, bool vec, int split, float alpha,
                                                    float beta, const uint16_t* c, int64_t c_stride, bool preload,
                                                    gemv_residual rs, gpu_rms rms) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, part = warp % split;
  const int64_t n = blockIdx.x * (int64_t)(blockDim.x / 32 / split) + warp / split;
  const int64_t first = part * 32 + lane, stride = 32 * (int64_t)split;
  const bool writer = n < N && lane == 0 && part == 0;
  uint4 wv[GEMV_LOADS];
  if (preload && n < N) half_row_first(wv, W + n * ldw, K, vec, first, stride);
  gpu_chain_start();
  auto cvt = [](uint16_t h) { return BF16 ? bf16_to_f32(h) : f16_to_f32(h); };
  // The residual and the norm's weight are read now, their latency under the products'.
  const float res = MODE == GEMV_RESIDUAL && writer ? cvt(rs.res[n]) : 0.0f;
  const float nw = MODE == GEMV_RESIDUAL && writer && rs.weight ? cvt(rs.weight[n]) : 0.0f;
  const float rms_total = MODE == GEMV_RMS ? rms_begin(gemv_rms_parts, rms) : 0.0f;
  if (!preload && n < N) half_row_first(wv, W + n * ldw, K, vec, first, stride);
  float sum = n < N ? half_row_dot<BF16>(wv, W + n * ldw, x, K, vec, first, stride) : 0.0f;
  sum = gemv_output_sum(sum, partial, lane, warp, part, split);
  if constexpr (MODE == GEMV_RMS) alpha = rms_inv(rms_total, gemv_rms_parts, rms);
  if constexpr (MODE == GEMV_RESIDUAL) {
    __shared__ float squares[GEMV_WARPS];  // one per output of the block
    const int slot = warp / split, outputs = blockDim.x / 32 / split;
    if (writer) {
      const float v = rms_residual_store<BF16>(y, rs.scaled, rs.weight != NULL, n, res, sum, nw);
      squares[slot] = __fmul_rn(v, v);
    }
    __syncthreads();
    const int64_t run = blockIdx.x * (int64_t)outputs / 4 + threadIdx.x;  // this thread's run of 4
    if (threadIdx.x < outputs / 4 && 4 * run < N) {
      const int len = N - 4 * run < 4 ? (int)(N - 4 * run) : 4;  // the last run may be shorter
      float q = squares[4 * threadIdx.x];
      for (int i = 1; i < len; i++) q = __fadd_rn(q, squares[4 * threadIdx.x + i]);
      rs.sumsq[run] = q;
    }
  } else if (writer) {
    float v = __fmul_rn(alpha, sum);
    if (c) v += beta * (BF16 ? bf16_to_f32(c[n * c_stride]) : f16_to_f32(c[n * c_stride]));  // addmm's term, one rounding
    y[n] = BF16 ? f32_to_bf16(v) : f32_to_f16(v);
  }
}

template <bool BF16>
__global__ void gemv_half_rows(uint16_t* y, const uint16_t* x, const uint16_t* W, int64_t ldw, int64_t N, int64_t K,
                               bool vec, int split, float alpha, float beta, const uint16_t* c, int64_t c_stride,
                               bool preload, gemv_residual rs, gpu_rms rms) {
  gemv_half_rows_body<BF16, GEMV_PLAIN>(y, x, W, ldw, N, K, vec, split, alpha, beta, c, c_stride, preload, rs, rms);
}

// The fused ends, bounded to 64 registers (they would take up to 76): 4 blocks of 8 warps an SM,
// or 2 of GEMV_RESIDUAL's 16-warp ones (a split of 4), the plain kernel's occupancy. (The plain
// kernel gets to 64 unbounded; bounded, it spills.)
template <bool BF16, int MODE>
__global__ void __launch_bounds__(MODE == GEMV_RESIDUAL ? 16 * 32 : GEMV_WARPS * 32, MODE == GEMV_RESIDUAL ? 2 : 4)
    gemv_half_rows_fused(uint16_t* y, const uint16_t* x, const uint16_t* W, int64_t ldw, int64_t N, int64_t K,
                         bool vec, int split, float alpha, float beta, const uint16_t* c, int64_t c_stride,
                         bool preload, gemv_residual rs, gpu_rms rms) {
  gemv_half_rows_body<BF16, MODE>(y, x, W, ldw, N, K, vec, split, alpha, beta, c, c_stride, preload, rs, rms);
}

// The gated GEMV (mlxc_fast_gated_linear of one row): output n takes W's rows n (gate) and
// n + D (up), each sum rounded to the dtype as gemv_half_rows stores it, then glu's activation
// and product. Split as the plain GEMV of the 2D stacked rows is (gated_split), it equals that
// GEMV followed by the glu kernel bit for bit, without writing and reading back the 2D products.
// Settled weights (preload) have the gate row's first batch loaded before the chain wait. When
// a lane's share of a row takes at most GEMV_LOADS / 2 loads (a 0.5B model's 896-wide rows),
// the gate and up shares are loaded together into the one batch of registers (paired): the up
// row's loads no longer wait for the gate row's products, one memory latency instead of two.
// PAIRED is a template parameter, so that neither form's register count sets the other's
// occupancy (gpu_launch_gated_gemv says which applies). RMS: both sums are multiplied by the
// norm's factor before they are rounded (GEMV_RMS of gemv_half_rows).
template <bool BF16, bool GELU, bool PAIRED, bool RMS>
__global__ void gated_gemv_half_rows(uint16_t* y, const uint16_t* x, const uint16_t* W, int64_t ldw, int64_t D,
                                     int64_t K, bool vec, int split, bool preload, gpu_rms rms) {
  constexpr int DT = BF16 ? MLX_BFLOAT16 : MLX_FLOAT16, HALF = GEMV_LOADS / 2;
  __shared__ float partial[2][32];  // gate, up: separate slots, no barrier between the two totals
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, part = warp % split;
  const int64_t n = blockIdx.x * (int64_t)(blockDim.x / 32 / split) + warp / split;
  const int64_t first = part * 32 + lane, stride = 32 * (int64_t)split, chunks = K / 8;
  uint4 wv[GEMV_LOADS];
  // Paired: the gate share in wv[0, HALF), the up share in wv[HALF, GEMV_LOADS).
  auto load_pair = [&]() {
    const uint4* g4 = (const uint4*)(W + n * ldw);
    const uint4* u4 = (const uint4*)(W + (n + D) * ldw);
#pragma unroll
    for (int u = 0; u < HALF; u++)
      if (first + stride * u < chunks) {
        wv[u] = __ldcs(g4 + first + stride * u);
        wv[HALF + u] = __ldcs(u4 + first + stride * u);
      }
  };
  if (preload && n < D) {
    if constexpr (PAIRED) load_pair();
    else half_row_first(wv, W + n * ldw, K, vec, first, stride);
  }
  gpu_chain_start();
  const float rms_total = RMS ? rms_begin(gemv_rms_parts, rms) : 0.0f;
  float gate = 0.0f, up = 0.0f;
  if constexpr (PAIRED) {
    if (n < D) {
      if (!preload) load_pair();
      // Each row's products in half_row_dot's order: the same sums as the plain GEMV's.
#pragma unroll
      for (int u = 0; u < HALF; u++) {
        if (first + stride * u >= chunks) break;
        const uint4 xv = __ldg((const uint4*)x + first + stride * u);
        half_chunk_dot<BF16>(gate, wv[u], xv);
        half_chunk_dot<BF16>(up, wv[HALF + u], xv);
      }
    }
  } else if (n < D) {
    if (!preload) half_row_first(wv, W + n * ldw, K, vec, first, stride);
    gate = half_row_dot<BF16>(wv, W + n * ldw, x, K, vec, first, stride);
    half_row_first(wv, W + (n + D) * ldw, K, vec, first, stride);
    up = half_row_dot<BF16>(wv, W + (n + D) * ldw, x, K, vec, first, stride);
  }
  gate = gemv_output_sum(gate, partial[0], lane, warp, part, split);
  up = gemv_output_sum(up, partial[1], lane, warp, part, split);
  if constexpr (RMS) {
    const float inv = rms_inv(rms_total, gemv_rms_parts, rms);
    gate = __fmul_rn(inv, gate);
    up = __fmul_rn(inv, up);
  }
  if (n < D && lane == 0 && part == 0) {
    const float v = __fmul_rn(glu_activate<DT, GELU>(round_as<DT>(gate)), round_as<DT>(up));
    y[n] = BF16 ? f32_to_bf16(v) : f32_to_f16(v);
  }
}

template <bool BF16, bool GELU, bool RMS>
auto gated_kernel(bool paired) {
  return paired ? gated_gemv_half_rows<BF16, GELU, true, RMS> : gated_gemv_half_rows<BF16, GELU, false, RMS>;
}

// Warps per output for N outputs of K: few outputs (a 896-wide down projection: 112 blocks of 8
// warps on 132 SMs) leave most of the GPU idle and too few loads in flight, so K is split over up
// to 8 warps per output then.
int gemv_split(int64_t N, int64_t K) {
  int split = 1;
  while (split < 8 && N * split < 4096 && K / 8 >= 32 * 4 * 2 * split) split *= 2;
  return split;
}

// Whether the 16-byte loads apply: rows and x aligned, K a multiple of 8.
bool gemv_vec(int64_t K, int64_t ldw, const void* x, const void* w) {
  return K % 8 == 0 && ldw % 8 == 0 && ((uintptr_t)x % 16) == 0 && ((uintptr_t)w % 16) == 0;
}

// The plain, residual or rms GEMV (gemv_half_rows) over N outputs.
template <int MODE>
int launch_gemv(int device, int dtype, int64_t N, int64_t K, const void* x, const void* w, int64_t ldw, void* y,
                float alpha, float beta, const void* c, int64_t c_stride, bool settled, gemv_residual rs,
                gpu_rms rms) {
  if (N == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  // GEMV_RESIDUAL: a block's outputs are whole runs of 4, so a split of 4 takes 16 warps (8 is
  // capped at 4: a sum order other than the plain GEMV's, in shapes no decoder has).
  const int split = MODE == GEMV_RESIDUAL && gemv_split(N, K) > 4 ? 4 : gemv_split(N, K);
  const int warps = MODE == GEMV_RESIDUAL && split == 4 ? 4 * split : GEMV_WARPS;
  const bool vec = gemv_vec(K, ldw, x, w);
  unsigned grid = (unsigned)((N + warps / split - 1) / (warps / split));
  const size_t smem = MODE == GEMV_RMS ? rms_smem_bytes(rms) : 0;
  void (*kernel)(uint16_t*, const uint16_t*, const uint16_t*, int64_t, int64_t, int64_t, bool, int, float, float,
                 const uint16_t*, int64_t, bool, gemv_residual, gpu_rms);
  if constexpr (MODE == GEMV_PLAIN) kernel = dtype == MLX_BFLOAT16 ? gemv_half_rows<true> : gemv_half_rows<false>;
  else kernel = dtype == MLX_BFLOAT16 ? gemv_half_rows_fused<true, MODE> : gemv_half_rows_fused<false, MODE>;
  return gpu_check(
      gpu_launch_chained(kernel, grid, 32 * warps, smem, s, (uint16_t*)y, (const uint16_t*)x, (const uint16_t*)w, ldw,
                         N, K, vec, split, alpha, beta, (const uint16_t*)c, c_stride, settled, rs, rms),
      "gemv launch");
}

template <bool RMS>
int launch_gated_gemv(int device, int dtype, bool gelu, int64_t D, int64_t K, const void* x, const void* w,
                      int64_t ldw, void* y, bool settled, gpu_rms rms) {
  if (D == 0) return 0;
  if (dtype != MLX_BFLOAT16 && dtype != MLX_FLOAT16) return util_error("gated_gemv: dtype %d is not a half type", dtype);
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  // The split of the plain GEMV over the 2D stacked rows: the same sums, rounded the same.
  const int warps = GEMV_WARPS, split = gemv_split(2 * D, K);
  const bool vec = gemv_vec(K, ldw, x, w);
  unsigned grid = (unsigned)((D + warps / split - 1) / (warps / split));
  // Paired when a lane's share of a row takes at most half a batch of loads (gated_gemv_half_rows).
  const bool paired = vec && K / 8 <= (GEMV_LOADS / 2) * 32 * (int64_t)split;
  const size_t smem = RMS ? rms_smem_bytes(rms) : 0;
  auto kernel = dtype == MLX_BFLOAT16
                    ? (gelu ? gated_kernel<true, true, RMS>(paired) : gated_kernel<true, false, RMS>(paired))
                    : (gelu ? gated_kernel<false, true, RMS>(paired) : gated_kernel<false, false, RMS>(paired));
  return gpu_check(gpu_launch_chained(kernel, grid, 32 * warps, smem, s, (uint16_t*)y, (const uint16_t*)x,
                                      (const uint16_t*)w, ldw, D, K, vec, split, settled, rms),
                   "gated gemv launch");
}

}  // namespace

extern "C" bool gpu_gemv_layout_ok(int64_t K, int64_t x_stride, int64_t w_col_stride, int64_t w_row_stride) {
  return K > 0 && (x_stride == 1 || K == 1) && w_col_stride == 1 && w_row_stride >= K;
}

extern "C" int gpu_launch_gemv(int device, int dtype, int64_t N, int64_t K, const void* x, const void* w,
                               int64_t ldw, void* y, float alpha, float beta, const void* c, int64_t c_stride,
                               bool settled) {
  return launch_gemv<GEMV_PLAIN>(device, dtype, N, K, x, w, ldw, y, alpha, beta, c, c_stride, settled, {}, {});
}

extern "C" int gpu_launch_gemv_residual(int device, int dtype, int64_t N, int64_t K, const void* x, const void* w,
                                        int64_t ldw, const void* res, const void* norm_weight, void* y, void* scaled,
                                        float* sumsq, bool settled) {
  const gemv_residual rs = {(const uint16_t*)res, sumsq, (const uint16_t*)norm_weight, (uint16_t*)scaled};
  return launch_gemv<GEMV_RESIDUAL>(device, dtype, N, K, x, w, ldw, y, 1.0f, 0.0f, NULL, 0, settled, rs, {});
}

extern "C" bool gpu_rms_parts_ok(int64_t parts) { return parts >= 1 && parts <= GPU_RMS_MAX_PARTS; }

extern "C" int gpu_launch_gemv_rms(int device, int dtype, int64_t N, int64_t K, const void* x, const void* w,
                                   int64_t ldw, const float* sumsq, int parts, float eps, const void* bias,
                                   int64_t bias_stride, void* y, bool settled) {
  const gpu_rms rms = {sumsq, parts, K, eps};
  return launch_gemv<GEMV_RMS>(device, dtype, N, K, x, w, ldw, y, 1.0f, 1.0f, bias, bias_stride, settled, {}, rms);
}

extern "C" int gpu_launch_gated_gemv(int device, int dtype, bool gelu, int64_t D, int64_t K, const void* x,
                                     const void* w, int64_t ldw, void* y, bool settled) {
  return launch_gated_gemv<false>(device, dtype, gelu, D, K, x, w, ldw, y, settled, {});
}

extern "C" int gpu_launch_gated_gemv_rms(int device, int dtype, bool gelu, int64_t D, int64_t K, const void* x,
                                         const void* w, int64_t ldw, const float* sumsq, int parts, float eps, void* y,
                                         bool settled) {
  const gpu_rms rms = {sumsq, parts, K, eps};
  return launch_gated_gemv<true>(device, dtype, gelu, D, K, x, w, ldw, y, settled, rms);
}

extern "C" int gpu_launch_gemm(int device, int dtype, int64_t M, int64_t N, int64_t K,
                               int64_t batch, const void* a, int64_t a_rs, int64_t a_cs,
                               int64_t a_bs, const void* b, int64_t b_rs, int64_t b_cs,
                               int64_t b_bs, void* c, float alpha, float beta, bool b_settled) {
  if (M == 0 || N == 0 || batch == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  bool half = dtype == MLX_FLOAT16 || dtype == MLX_BFLOAT16;
  if (!half && dtype != MLX_FLOAT32) return util_error("matmul: dtype %d is not supported on the GPU", dtype);
  // Decode GEMV: x (1, K) contiguous, B a transposed view of a (N, K) row-major weight.
  if (half && M == 1 && batch == 1 && beta == 0.0f && gpu_gemv_layout_ok(K, a_cs, b_rs, b_cs))
    return gpu_launch_gemv(device, dtype, N, K, a, b, b_cs, c, alpha, 0.0f, NULL, 0, b_settled);
  return gpu_launch_gemm_into(device, dtype, M, N, K, batch, a, a_rs, a_cs, a_bs, b, b_rs, b_cs, b_bs, c, N, M * N,
                              alpha, beta);
}

extern "C" int gpu_launch_gemm_into(int device, int dtype, int64_t M, int64_t N, int64_t K, int64_t batch,
                                    const void* a, int64_t a_rs, int64_t a_cs, int64_t a_bs, const void* b,
                                    int64_t b_rs, int64_t b_cs, int64_t b_bs, void* c, int64_t ldc, int64_t c_bs,
                                    float alpha, float beta) {
  if (M == 0 || N == 0 || batch == 0) return 0;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  if (dtype != MLX_FLOAT32 && dtype != MLX_FLOAT16 && dtype != MLX_BFLOAT16)
    return util_error("matmul: dtype %d is not supported on the GPU", dtype);
  bool ta, tb;
  int64_t lda, ldb;
  if (!blas_layout(M, K, a_rs, a_cs, &ta, &lda) || !blas_layout(K, N, b_rs, b_cs, &tb, &ldb))
    return util_error("matmul: operand layout not supported on the GPU");
  if (M > 0x7fffffff || N > 0x7fffffff || K > 0x7fffffff || batch > 0x7fffffff || lda > 0x7fffffff ||
      ldb > 0x7fffffff || ldc > 0x7fffffff)
    return util_error("matmul: dimensions too large for cuBLAS");
  if (ldc < N) return util_error("matmul: output rows of %lld overlap (ldc %lld)", (long long)N, (long long)ldc);
  cublasHandle_t h = gpu_cublas_handle(device, s);
  if (!h) return 1;
  cudaDataType_t t = dtype == MLX_FLOAT32 ? CUDA_R_32F : dtype == MLX_FLOAT16 ? CUDA_R_16F : CUDA_R_16BF;
  // Row-major C = A B is column-major C^T = B^T A^T: cuBLAS gets (B, A) with m = N, n = M.
  // cuBLASLt first (its algorithm chosen once per bucket of M: lt_gemm.cu), this call otherwise.
  bool failed = false;
  if (lt_gemm(device, s, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M,
              (int)(K > 0 ? K : 0), &alpha, b, (int)ldb, b_bs, a, (int)lda, a_bs, &beta, c, (int)ldc, c_bs, (int)batch,
              t, compute_type(dtype), &failed))
    return failed ? 1 : 0;
  cublasStatus_t st = cublasGemmStridedBatchedEx(
      h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M, (int)(K > 0 ? K : 0),
      &alpha, b, t, (int)ldb, b_bs, a, t, (int)lda, a_bs, &beta, c, t, (int)ldc, c_bs, (int)batch,
      // (The pedantic math mode, used once, also forbade cuBLAS's faster fp32 kernels.)
      compute_type(dtype), CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS)
    return util_error("cuBLAS gemm failed: %s", cublasGetStatusString(st));
  return 0;
}

extern "C" bool gpu_gemm_layout_ok(int64_t M, int64_t N, int64_t K, int64_t a_rs, int64_t a_cs,
                                   int64_t b_rs, int64_t b_cs) {
  bool t;
  int64_t ld;
  return blas_layout(M, K, a_rs, a_cs, &t, &ld) && blas_layout(K, N, b_rs, b_cs, &t, &ld);
}
