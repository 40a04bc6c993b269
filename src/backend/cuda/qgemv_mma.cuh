// The 4-bit decode GEMV on tensor cores (included by qgemv.cu): y = W x for MLX's affine layout,
// x float16/bfloat16, scales and biases of x's dtype, K a multiple of 128.
//
// Why: the CUDA-core kernel spends two instructions a weight (a byte permute and an FMA) plus
// x's conversion and sums. Here a weight costs under one integer instruction: a LOP3 turns the
// nibbles q and q' of a 32-bit word at bits b and b + 16 into the 16-bit pair (M + q, M + q')
// with M = 128 (bfloat16) or 1024 (float16), exact, and m16n8k16 products (fp32 accumulation)
// do the multiplications. It holds a warp's loads in registers (~88), so its blocks are few an
// SM: it beats the CUDA-core kernel on many tiles of short rows (the 0.5B's gate/up and LM head)
// and loses on the 8B's K = 4096 / 14336 matrices (BENCHMARKS.md, fourteenth session; qgemv.cu's
// launch_mma chooses).
//
// A block computes a tile of 16 rows; its W warps (up to 16) split K into chunks of 256 values,
// a warp loading all of a chunk's weights and scales at once. Thread (g, t) = (lane / 4,
// lane % 4) holds the A fragments of rows g and g + 8: for every group of G values it loads
// G / 8 bytes of each row at t * G / 8, so that all of an mma's 16 columns lie in one group. The
// columns' order inside a word (the pairs q_i, q_{i+4}) is matched by x's, which the block stages
// once into shared memory in that order, with each group's sum(x) = S. Every column of B holds
// x, so any column of a group's accumulator is its sum of (M + q) x = D; lane t = 0 finishes each
// group of its two rows, scale * (D - M S) + bias * S, in float32.
//
// The gated form computes 8 outputs a block: tile rows g < 8 are gate rows, g + 8 the up rows.
// A row's arithmetic does not depend on its tile row, and W on K alone, so the gated form equals
// the plain one over the stacked rows followed by glu, bit for bit.
#pragma once
#include <stdint.h>

#include "backend/cuda/mma.cuh"
#include "backend/cuda/qgemv_parts.cuh"

namespace {

constexpr int QM_MAX_WARPS = 16;
constexpr int QM_CHUNK = 256;  // K values a warp loads at once: two spans of 128

// The warps of a block for K (a function of K alone: see above).
inline int qm_warps(int64_t K) {
  const int64_t chunks = (K + QM_CHUNK - 1) / QM_CHUNK;
  return chunks < QM_MAX_WARPS ? (int)chunks : QM_MAX_WARPS;
}

// Dynamic shared memory: x in fragment order (K / 2 words), each group's sum of x (K / G floats,
// rounded up to 4), then the RMS partial sums.
inline size_t qm_smem_bytes(int64_t K, int G, size_t rms_bytes) {
  return (size_t)K * 2 + sizeof(float) * (size_t)((K / G + 3) & ~3) + rms_bytes;
}

extern __shared__ __align__(16) uint32_t qm_smem[];

// The G / 32 words of a thread's share of one group of a row, at p (G / 8 bytes).
template <int G>
__device__ __forceinline__ void qm_load_words(const uint8_t* p, uint32_t* out) {
  if constexpr (G == 32) {
    out[0] = __ldcs((const unsigned int*)p);
  } else if constexpr (G == 64) {
    const uint2 v = __ldcs((const uint2*)p);
    out[0] = v.x, out[1] = v.y;
  } else {
    const uint4 v = __ldcs((const uint4*)p);
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
  }
}

// A chunk's operands of a thread: its words of rows g and g + 8 (span h's at 4h), and (lane
// t = 0) the scales and biases of the chunk's 256 / G groups in both rows: for G <= 64 two
// groups a 32-bit word (the groups of a row are 4-byte aligned there: K / G is even), for G = 128
// one each.
template <int G>
struct qm_chunk {
  static constexpr int CG = QM_CHUNK / G, PER = G == 128 ? 1 : 2, REGS = CG / PER;
  uint32_t qa[8], qb[8];
  uint32_t sa[REGS], sb[REGS], ba[REGS], bb[REGS];
  __device__ __forceinline__ static uint32_t half_of(const uint32_t* v, int j) {
    return PER == 1 ? v[j] : (v[j / 2] >> (16 * (j % 2))) & 0xffffu;
  }
};

// x into shared memory for the B fragments: each 8 values x0..x7 as the pairs (x0, x4) (x1, x5)
// (x2, x6) (x3, x7), and each group's sum into sums (the G / 8 lanes holding a group's values
// add theirs in a fixed tree). Every thread of the block calls it.
template <int G, bool BF16>
__device__ __forceinline__ void qm_stage_x(uint32_t* xs, float* sums, const uint16_t* x, int64_t K) {
  auto cvt = [](uint32_t h) { return BF16 ? __uint_as_float(h << 16) : f16_to_f32((uint16_t)h); };
  constexpr int BATCH = 4;  // loads in flight together
  const int blocks = (int)(K / 8);
  for (int b0 = 0; b0 < blocks; b0 += BATCH * blockDim.x) {
    uint4 v[BATCH];
#pragma unroll
    for (int u = 0; u < BATCH; u++) {
      const int b = b0 + u * blockDim.x + threadIdx.x;
      v[u] = b < blocks ? __ldg((const uint4*)x + b) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < BATCH; u++) {
      if (b0 + u * blockDim.x >= blocks) break;  // uniform: whole warps stay together for the shuffles
      const int b = b0 + u * blockDim.x + threadIdx.x;
      if (b < blocks)
        ((uint4*)xs)[b] = make_uint4(__byte_perm(v[u].x, v[u].z, 0x5410), __byte_perm(v[u].x, v[u].z, 0x7632),
                                     __byte_perm(v[u].y, v[u].w, 0x5410), __byte_perm(v[u].y, v[u].w, 0x7632));
      float e[8];
      const uint32_t w4[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
#pragma unroll
      for (int i = 0; i < 4; i++) e[2 * i] = cvt(w4[i] & 0xffffu), e[2 * i + 1] = cvt(w4[i] >> 16);
      float part = ((e[0] + e[1]) + (e[2] + e[3])) + ((e[4] + e[5]) + (e[6] + e[7]));
#pragma unroll
      for (int o = 1; o < G / 8; o <<= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
      if (b < blocks && (b & (G / 8 - 1)) == 0) sums[b / (G / 8)] = part;
    }
  }
}

// The products of one word position: ua and ub hold 8 values each of rows g and g + 8, bx the
// matching x pairs. Columns 2t, 2t + 1 | 2t + 8, 2t + 9 of the first product are nibbles
// (0, 4) | (1, 5), of the second (2, 6) | (3, 7); they add into acc0 and acc1.
template <bool BF16>
__device__ __forceinline__ void qm_word_products(float* acc0, float* acc1, uint32_t ua, uint32_t ub, uint4 bx) {
  constexpr uint32_t MAGIC = BF16 ? 0x43004300u : 0x64006400u;
  constexpr int DT = BF16 ? MLX_BFLOAT16 : MLX_FLOAT16;
  const uint32_t a0[4] = {(ua & 0x000F000Fu) | MAGIC, (ub & 0x000F000Fu) | MAGIC, ((ua >> 4) & 0x000F000Fu) | MAGIC,
                          ((ub >> 4) & 0x000F000Fu) | MAGIC};
  const uint32_t a1[4] = {((ua >> 8) & 0x000F000Fu) | MAGIC, ((ub >> 8) & 0x000F000Fu) | MAGIC,
                          ((ua >> 12) & 0x000F000Fu) | MAGIC, ((ub >> 12) & 0x000F000Fu) | MAGIC};
  mma_attn::mma16816<DT>(acc0, a0, bx.x, bx.y);
  mma_attn::mma16816<DT>(acc1, a1, bx.z, bx.w);
}

// One group's share of a row: scale * (D - M S) + bias * S, M the dequantization's offset.
template <bool BF16>
__device__ __forceinline__ float qm_group_sum(float scale, float bias, float D, float S) {
  constexpr float M = BF16 ? 128.0f : 1024.0f;
  return fmaf(scale, fmaf(-M, S, D), bias * S);
}

template <int G, bool BF16, int EPI, bool RMS>
__global__ void __launch_bounds__(32 * QM_MAX_WARPS)
    qgemv_mma(void* y, int y_dtype, const uint16_t* x, const uint8_t* w, const uint16_t* scales,
              const uint16_t* biases, int64_t N, int64_t K, bool preload, qg_fused f) {
  constexpr bool GATED = qg_gated(EPI);
  constexpr int OUT = GATED ? 8 : 16, NG = 128 / G, GW = G / 32, CH = G == 128 ? 2 : 1;
  using chunk_t = qm_chunk<G>;
  __shared__ float partial[QM_MAX_WARPS][16];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5, g = lane >> 2, t = lane & 3;
  const int64_t n0 = (int64_t)blockIdx.x * OUT;
  const int rows = N - n0 < OUT ? (int)(N - n0) : OUT;
  const int64_t ra = qg_slot_row(n0, rows, N, g, OUT), rb = qg_slot_row(n0, rows, N, g + 8, OUT);
  const int64_t groups = K / G;
  const uint8_t* wa = w + ra * (K / 2) + t * (G / 8);
  const uint8_t* wb = w + rb * (K / 2) + t * (G / 8);
  auto cvt = [](uint32_t h) { return BF16 ? __uint_as_float(h << 16) : f16_to_f32((uint16_t)h); };
  const int chunks = (int)((K + QM_CHUNK - 1) / QM_CHUNK);
  auto load = [&](chunk_t& r, int c) {
    const int64_t k0 = (int64_t)c * QM_CHUNK;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      if (h == 1 && k0 + 128 >= K) break;
#pragma unroll
      for (int j = 0; j < NG; j++) {
        const int64_t off = (k0 + 128 * h + j * G) / 2;
        qm_load_words<G>(wa + off, r.qa + 4 * h + j * GW);
        qm_load_words<G>(wb + off, r.qb + 4 * h + j * GW);
      }
    }
    if (t == 0) {
      const int64_t g0 = k0 / G;
      const int n = (int)((K - k0) / G < chunk_t::CG ? (K - k0) / G : chunk_t::CG) / chunk_t::PER;
#pragma unroll
      for (int i = 0; i < chunk_t::REGS; i++) {
        if (i >= n) break;
        if constexpr (chunk_t::PER == 2) {
          r.sa[i] = __ldg((const unsigned int*)(scales + ra * groups + g0) + i);
          r.sb[i] = __ldg((const unsigned int*)(scales + rb * groups + g0) + i);
          r.ba[i] = __ldg((const unsigned int*)(biases + ra * groups + g0) + i);
          r.bb[i] = __ldg((const unsigned int*)(biases + rb * groups + g0) + i);
        } else {
          r.sa[i] = scales[ra * groups + g0 + i], r.sb[i] = scales[rb * groups + g0 + i];
          r.ba[i] = biases[ra * groups + g0 + i], r.bb[i] = biases[rb * groups + g0 + i];
        }
      }
    }
  };
  chunk_t cur;
  // Settled weights are loaded before the chain wait (as qgemv_direct).
  if (preload && warp < chunks) load(cur, warp);
  gpu_chain_start();
  if (!preload && warp < chunks) load(cur, warp);
  uint32_t* xs = qm_smem;
  float* sums = (float*)(qm_smem + K / 2);
  float* rms_parts = sums + ((groups + 3) & ~3);
  qm_stage_x<G, BF16>(xs, sums, x, K);
  const qg_operands ops = qg_load_operands<BF16, EPI, RMS>(f, n0, rows);
  const float rms_total = RMS ? rms_begin(rms_parts, f.rms) : 0.0f;
  __syncthreads();
  float acc_a = 0.0f, acc_b = 0.0f;
  for (int c = warp; c < chunks; c += warps) {
    if (c != warp) load(cur, c);
    const int64_t k0 = (int64_t)c * QM_CHUNK;
#pragma unroll
    for (int h = 0; h < 2; h++) {
      if (h == 1 && k0 + 128 >= K) break;
      float acc[NG][CH][4];
#pragma unroll
      for (int j = 0; j < NG; j++)
#pragma unroll
        for (int ch = 0; ch < CH; ch++) acc[j][ch][0] = acc[j][ch][1] = acc[j][ch][2] = acc[j][ch][3] = 0.0f;
#pragma unroll
      for (int j = 0; j < NG; j++)
#pragma unroll
        for (int i = 0; i < GW; i++) {
          const uint4 bx = ((const uint4*)xs)[(k0 + 128 * h + j * G + t * (G / 4)) / 8 + i];
          qm_word_products<BF16>(acc[j][0], acc[j][CH - 1], cur.qa[4 * h + j * GW + i], cur.qb[4 * h + j * GW + i], bx);
        }
      if (t == 0) {
#pragma unroll
        for (int j = 0; j < NG; j++) {
          const int cj = h * NG + j;  // the group's index in the chunk
          const float S = sums[k0 / G + cj];
          const float da = CH == 2 ? acc[j][0][0] + acc[j][1][0] : acc[j][0][0];
          const float db = CH == 2 ? acc[j][0][2] + acc[j][1][2] : acc[j][0][2];
          acc_a += qm_group_sum<BF16>(cvt(chunk_t::half_of(cur.sa, cj)), cvt(chunk_t::half_of(cur.ba, cj)), da, S);
          acc_b += qm_group_sum<BF16>(cvt(chunk_t::half_of(cur.sb, cj)), cvt(chunk_t::half_of(cur.bb, cj)), db, S);
        }
      }
    }
  }
  if (t == 0) partial[warp][g] = acc_a, partial[warp][g + 8] = acc_b;
  qg_finish<BF16, EPI, RMS, 16>(partial, warps, y, y_dtype, n0, rows, f, ops, rms_total, rms_parts);
}

}  // namespace
