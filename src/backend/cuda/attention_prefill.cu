// Attention with many queries (prefill) on tensor cores, flash-attention style, on mma.sync
// (m16n8k16, fp32 accumulation): a block takes 64 queries of one (batch, head), four warps of 16
// query rows each; key/value tiles of 64 rows are staged in shared memory once per block and
// shared by its warps; each warp keeps S, the online softmax and the O accumulator in registers.
// Causal blocks stop at their last visible key tile. float16/bfloat16, D = Dv ∈ {64, 128}, rows
// contiguous along D and 16-byte aligned, no sinks: other cases return -1 and take the general
// kernel (fused.cu). (An earlier WMMA kernel, with S, P and O through shared memory, ran at
// ~23 TFLOP/s on an 8B-shaped prefill, a third of this one; it was removed.)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>


#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"

namespace {

constexpr int FA_WARPS = 4;
constexpr int FA_BR = 16 * FA_WARPS;  // queries per block
constexpr int FA_BC = 64;             // keys per tile

// Copies `rows` rows of D 16-bit values (row r at src + r * row_stride) into a tile of row pitch
// LD, zero-filling rows at or past `valid`; 16-byte transfers.
template <int D, int LD = D>
__device__ __forceinline__ void stage_rows(uint16_t* tile, const uint16_t* src, int64_t row_stride, int rows,
                                           int valid) {
  constexpr int PER_ROW = D / 8;
  for (int idx = threadIdx.x; idx < rows * PER_ROW; idx += blockDim.x) {
    int r = idx / PER_ROW, c = idx % PER_ROW;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r < valid) val = *(const uint4*)(src + r * row_stride + c * 8);
    *(uint4*)(tile + r * LD + c * 8) = val;
  }
}

// Each warp keeps its 16 query rows' Q fragments, the S tile (16 × 64) and the O accumulator
// (16 × D) in registers, with no shared-memory round trips between the two products. The
// fragment layouts are PTX's: in m16n8k16, thread (g = lane / 4, c = lane % 4) holds A rows g and
// g + 8 at columns 2c, 2c + 1 (+ 8), B column g at rows 2c, 2c + 1 (+ 8), C rows g and g + 8 at
// columns 2c, 2c + 1. An S accumulator pair of n-tiles is exactly the A fragment of P for P·V.
// Shared-memory rows are padded by 8 elements so that the 32-bit fragment loads hit 32 banks.

__device__ __forceinline__ uint32_t ld_b32(const uint16_t* p) { return *(const uint32_t*)p; }

template <int DT>
__device__ __forceinline__ void mma16816(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  if constexpr (DT == MLX_BFLOAT16)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// p rounded to the input dtype: its bits, and its value as P·V sees it.
template <int DT>
__device__ __forceinline__ uint32_t round_bits(float p, float* rounded) {
  if constexpr (DT == MLX_BFLOAT16) {
    __nv_bfloat16 t = __float2bfloat16_rn(p);
    *rounded = __bfloat162float(t);
    return __bfloat16_as_ushort(t);
  } else {
    __half t = __float2half_rn(p);
    *rounded = __half2float(t);
    return __half_as_ushort(t);
  }
}

// The same with cp.async (16 bytes a copy, rows past `valid` zero-filled): the copies land while
// the block computes on the other buffer.
template <int D>
__device__ __forceinline__ void stage_padded_async(uint16_t* tile, const uint16_t* src, int64_t row_stride, int rows,
                                                   int valid) {
  constexpr int PER_ROW = D / 8, LD = D + 8;
  for (int idx = threadIdx.x; idx < rows * PER_ROW; idx += blockDim.x) {
    int r = idx / PER_ROW, c = idx % PER_ROW;
    const uint16_t* from = r < valid ? src + r * row_stride + c * 8 : src;
    uint32_t to = (uint32_t)__cvta_generic_to_shared(tile + r * LD + c * 8);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(to), "l"(from), "r"(r < valid ? 16 : 0));
  }
}

// Q, then two buffers of K and V tiles.
template <int D>
constexpr size_t mma_smem_bytes() {
  return 2 * (size_t)(FA_BR + 4 * FA_BC) * (D + 8);
}

template <int DT, int D>
__global__ void __launch_bounds__(32 * FA_WARPS)
    sdpa_mma(void* out, int out_dtype, const uint16_t* q, const uint16_t* k, const uint16_t* v, gpu_sdpa_args A) {
  constexpr int LD = D + 8, NT = FA_BC / 8, KD = D / 16, DT8 = D / 8;
  extern __shared__ __align__(16) uint16_t mma_smem[];
  uint16_t* Qs = mma_smem;
  uint16_t* KVs = Qs + FA_BR * LD;  // buffer i: K at KVs + 2i·BC·LD, V right after
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const int h = blockIdx.y, b = blockIdx.z, kvh = h / (A.Hq / A.Hk);
  const int i0 = blockIdx.x * FA_BR;
  const int q_valid = min(FA_BR, A.Lq - i0);
  stage_rows<D, LD>(Qs, q + b * A.q_st[0] + h * A.q_st[1] + (int64_t)i0 * A.q_st[2], A.q_st[2], FA_BR, q_valid);
  __syncthreads();
  uint32_t qa[KD][4];
  const uint16_t* Qw = Qs + warp * 16 * LD;
#pragma unroll
  for (int kk = 0; kk < KD; kk++) {
    qa[kk][0] = ld_b32(Qw + g * LD + kk * 16 + 2 * c);
    qa[kk][1] = ld_b32(Qw + (g + 8) * LD + kk * 16 + 2 * c);
    qa[kk][2] = ld_b32(Qw + g * LD + kk * 16 + 8 + 2 * c);
    qa[kk][3] = ld_b32(Qw + (g + 8) * LD + kk * 16 + 8 + 2 * c);
  }
  float o[DT8][4];
#pragma unroll
  for (int d = 0; d < DT8; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const int64_t qrow[2] = {(int64_t)i0 + warp * 16 + g, (int64_t)i0 + warp * 16 + g + 8};
  const int64_t shift = (int64_t)A.Lk - A.Lq;  // causal: query i sees keys <= i + shift
  int64_t last_key = A.Lk - 1;
  if (A.causal) last_key = min(last_key, (int64_t)i0 + q_valid - 1 + shift);
  const int64_t warp_last_key = A.causal ? (int64_t)i0 + warp * 16 + 15 + shift : INT64_MAX;
  const uint16_t* kbase = k + b * A.k_st[0] + kvh * A.k_st[1];
  const uint16_t* vbase = v + b * A.v_st[0] + kvh * A.v_st[1];

  // Tile t is staged into buffer t % 2 while tile t - 1 is computed on.
  auto stage = [&](int64_t j0, int buf) {
    const int k_valid = (int)min((int64_t)FA_BC, A.Lk - j0);
    uint16_t* Kb = KVs + (size_t)buf * 2 * FA_BC * LD;
    stage_padded_async<D>(Kb, kbase + j0 * A.k_st[2], A.k_st[2], FA_BC, k_valid);
    stage_padded_async<D>(Kb + FA_BC * LD, vbase + j0 * A.v_st[2], A.v_st[2], FA_BC, k_valid);
    asm volatile("cp.async.commit_group;\n" ::);
  };
  stage(0, 0);
  int buf = 0;
  for (int64_t j0 = 0; j0 <= last_key; j0 += FA_BC, buf ^= 1) {
    if (j0 + FA_BC <= last_key) {
      stage(j0 + FA_BC, buf ^ 1);
      asm volatile("cp.async.wait_group 1;\n" ::);  // this tile's copies are done
    } else {
      asm volatile("cp.async.wait_group 0;\n" ::);
    }
    __syncthreads();  // every thread's copies of this tile are visible
    const uint16_t* Ks = KVs + (size_t)buf * 2 * FA_BC * LD;
    const uint16_t* Vs = Ks + FA_BC * LD;
    if (j0 <= warp_last_key) {  // else every key of this tile is after this warp's queries
      // S (16 × 64) = Q_w · Kᵀ
      float s[NT][4];
#pragma unroll
      for (int nt = 0; nt < NT; nt++) {
        s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
        const uint16_t* kr = Ks + (nt * 8 + g) * LD + 2 * c;
#pragma unroll
        for (int kk = 0; kk < KD; kk++) mma16816<DT>(s[nt], qa[kk], ld_b32(kr + kk * 16), ld_b32(kr + kk * 16 + 8));
      }
      // Scale, masks, causality; the tile's maximum per row (a quad of lanes shares a row).
      float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int nt = 0; nt < NT; nt++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int r = e >> 1;
          const int64_t j = j0 + nt * 8 + 2 * c + (e & 1), qi = qrow[r];
          float x = s[nt][e] * A.scale;
          bool visible = j < A.Lk && qi < A.Lq && !(A.causal && j > qi + shift);
          if (visible && A.mask) {
            int64_t mo = b * A.mask_st[0] + h * A.mask_st[1] + qi * A.mask_st[2] + j * A.mask_st[3];
            if (A.mask_dtype == MLX_BOOL)
              visible = ((const bool*)A.mask)[mo];
            else
              x += load_f32(A.mask, A.mask_dtype, mo);
          }
          s[nt][e] = visible ? x : -INFINITY;
          tile_max[r] = fmaxf(tile_max[r], s[nt][e]);
        }
      }
      float corr[2], m_new[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
      for (int r = 0; r < 2; r++) {
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
        m_new[r] = fmaxf(m[r], tile_max[r]);
        corr[r] = m_new[r] == -INFINITY ? 1.0f : expf(m[r] - m_new[r]);
      }
      // P rounded to the input dtype, packed straight into A fragments (two n-tiles per k step).
      uint32_t pa[FA_BC / 16][4];
#pragma unroll
      for (int nt = 0; nt < NT; nt++) {
        uint32_t bits[4];
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int r = e >> 1;
          const float p = s[nt][e] == -INFINITY ? 0.0f : expf(s[nt][e] - m_new[r]);
          float rounded;
          bits[e] = round_bits<DT>(p, &rounded);
          sum[r] += rounded;
        }
        pa[nt / 2][(nt & 1) * 2 + 0] = bits[0] | (bits[1] << 16);
        pa[nt / 2][(nt & 1) * 2 + 1] = bits[2] | (bits[3] << 16);
      }
#pragma unroll
      for (int r = 0; r < 2; r++) {
        sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 1);
        sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 2);
        l[r] = l[r] * corr[r] + sum[r];
        m[r] = m_new[r];
      }
#pragma unroll
      for (int d = 0; d < DT8; d++) {
        o[d][0] *= corr[0];
        o[d][1] *= corr[0];
        o[d][2] *= corr[1];
        o[d][3] *= corr[1];
      }
      // O += P · V: V's B fragments by transposing 8 × 8 blocks of its rows (ldmatrix .trans).
#pragma unroll
      for (int kk = 0; kk < FA_BC / 16; kk++) {
        const uint16_t* vrow = Vs + (kk * 16 + (lane & 15)) * LD;
#pragma unroll
        for (int d = 0; d < DT8; d++) {
          uint32_t b0, b1, addr = (uint32_t)__cvta_generic_to_shared(vrow + d * 8);
          asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(b0), "=r"(b1) : "r"(addr));
          mma16816<DT>(o[d], pa[kk], b0, b1);
        }
      }
    }
    __syncthreads();  // this buffer is refilled two tiles later
  }

  // out[b, h, i, :] = O / l; rows with every key masked give zeros, as the CPU kernel.
#pragma unroll
  for (int r = 0; r < 2; r++) {
    if (qrow[r] >= A.Lq) continue;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    const int64_t base = (((int64_t)b * A.Hq + h) * A.Lq + qrow[r]) * D;
#pragma unroll
    for (int d = 0; d < DT8; d++) {
      store_f32(out, out_dtype, base + d * 8 + 2 * c, o[d][2 * r] * inv);
      store_f32(out, out_dtype, base + d * 8 + 2 * c + 1, o[d][2 * r + 1] * inv);
    }
  }
}

// Launches the kernel. Above 48 KiB of dynamic shared memory needs the attribute, set once per
// instantiation and device (it costs microseconds).
template <int DT, int D>
int launch_prefill(int device, cudaStream_t s, void* out, int out_dtype, const void* q, const void* k,
                   const void* v, const gpu_sdpa_args& A) {
  constexpr size_t bytes = mma_smem_bytes<D>();
  auto kernel = sdpa_mma<DT, D>;
  static bool configured[64];
  if (device >= 0 && device < 64 && !configured[device]) {
    if (gpu_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes),
                  "attention shared memory"))
      return 1;
    configured[device] = true;
  }
  dim3 grid((unsigned)((A.Lq + FA_BR - 1) / FA_BR), (unsigned)A.Hq, (unsigned)A.B);
  kernel<<<grid, 32 * FA_WARPS, bytes, s>>>(out, out_dtype, (const uint16_t*)q, (const uint16_t*)k,
                                           (const uint16_t*)v, A);
  return GPU_LAUNCHED("flash attention");
}

template <int DT>
int launch_prefill_d(int device, cudaStream_t s, void* out, int out_dtype, const void* q, const void* k,
                     const void* v, const gpu_sdpa_args& A) {
  return A.D == 64 ? launch_prefill<DT, 64>(device, s, out, out_dtype, q, k, v, A)
                   : launch_prefill<DT, 128>(device, s, out, out_dtype, q, k, v, A);
}

bool rows_ok(const void* p, const int64_t* st) {
  // Elements contiguous along D, every row and head start 16-byte aligned.
  return st[3] == 1 && ((uintptr_t)p & 15u) == 0 && st[0] % 8 == 0 && st[1] % 8 == 0 && st[2] % 8 == 0;
}

}  // namespace

extern "C" int gpu_launch_sdpa_prefill(int device, int dtype, int out_dtype, void* out, const void* q, const void* k,
                                       const void* v, const gpu_sdpa_args* args) {
  const gpu_sdpa_args& A = *args;
  if (A.Lq < 16 || A.Lk < 1 || A.D != A.Dv || (A.D != 64 && A.D != 128) || A.sinks) return -1;
  if (dtype != MLX_FLOAT16 && dtype != MLX_BFLOAT16) return -1;
  if (A.Hk < 1 || A.Hq % A.Hk != 0 || A.Hq > 65535 || A.B > 65535) return -1;
  if (!rows_ok(q, A.q_st) || !rows_ok(k, A.k_st) || !rows_ok(v, A.v_st)) return -1;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  if (dtype == MLX_BFLOAT16) return launch_prefill_d<MLX_BFLOAT16>(device, s, out, out_dtype, q, k, v, A);
  return launch_prefill_d<MLX_FLOAT16>(device, s, out, out_dtype, q, k, v, A);
}
