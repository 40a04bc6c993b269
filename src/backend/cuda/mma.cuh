// Helpers of the tensor-core attention kernels (attention_prefill.cu, attention_decode.cu):
// mma.sync m16n8k16 with fp32 accumulation, ldmatrix, cp.async staging of K/V tiles, base-2
// softmax pieces. Fragment layouts are PTX's: thread (g = lane / 4, c = lane % 4) holds A rows g
// and g + 8 at columns 2c, 2c + 1 (+ 8), B column g at rows 2c, 2c + 1 (+ 8), C rows g and g + 8
// at columns 2c, 2c + 1; an S accumulator pair of n-tiles is exactly the A fragment of P for P·V.
// Shared-memory rows are padded by 8 elements so that fragment loads hit 32 banks.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "mlx/c/array.h"

namespace mma_attn {

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

// stage_rows with cp.async (16 bytes a copy, rows past `valid` zero-filled): the copies land while
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

// 2^x on the special-function unit (softmax runs in base 2 with log2(e) folded into the scale).
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// p0, p1 rounded to the input dtype and packed as an A-fragment register; *sum gets their
// rounded values, as P·V sees them.
template <int DT>
__device__ __forceinline__ uint32_t pack_rounded(float p0, float p1, float* sum) {
  if constexpr (DT == MLX_BFLOAT16) {
    const __nv_bfloat162 t = __floats2bfloat162_rn(p0, p1);
    const uint32_t u = *(const uint32_t*)&t;
    *sum += __uint_as_float(u << 16) + __uint_as_float(u & 0xffff0000u);
    return u;
  } else {
    const __half2 t = __floats2half2_rn(p0, p1);
    const float2 f = __half22float2(t);
    *sum += f.x + f.y;
    return *(const uint32_t*)&t;
  }
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, const uint16_t* p) {
  const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t* r, const uint16_t* p) {
  const uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

constexpr float LOG2E = 1.4426950408889634f;


// S (16 × NT·8, in units of log2) = Q_w · Kᵀ · scale · log2(e) for a warp's 16 query rows (qa:
// their A fragments over D) and NT·8 keys at Ks (rows of pitch D + 8). K's B fragments come by
// ldmatrix: four 8 × 8 blocks of K rows nt·8.. are the fragments of two 16-deep k steps.
template <int DT, int D, int NT>
__device__ __forceinline__ void qk_tile(float (*s)[4], const uint32_t (*qa)[4], const uint16_t* Ks, int lane,
                                        float scale_log2) {
  constexpr int LD = D + 8, KD = D / 16;
#pragma unroll
  for (int nt = 0; nt < NT; nt++) {
    s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
    const uint16_t* kr = Ks + (nt * 8 + (lane & 7)) * LD + (lane >> 3) * 8;
#pragma unroll
    for (int kk = 0; kk < KD; kk += 2) {
      uint32_t b[4];
      ldmatrix_x4(b, kr + kk * 16);
      mma16816<DT>(s[nt], qa[kk], b[0], b[1]);
      mma16816<DT>(s[nt], qa[kk + 1], b[2], b[3]);
    }
#pragma unroll
    for (int e = 0; e < 4; e++) s[nt][e] *= scale_log2;
  }
}

// One tile of the online softmax and O += P·V for a warp's 16 rows (this thread holds rows g and
// g + 8): s are the scores in units of log2 (-inf hides a key), m and l the rows' running maximum
// and sum, o the (16 × D) accumulator; P is rounded to the input dtype and packed straight into A
// fragments (two n-tiles per k step), V's B fragments come by transposing 8 × 8 blocks of the
// tile's NT·8 rows at Vs (ldmatrix .trans), two 8-wide column blocks per load. A row with
// nothing visible yet keeps p = 0.
template <int DT, int D, int NT>
__device__ __forceinline__ void softmax_pv(const float (*s)[4], float* m, float* l, float (*o)[4], const uint16_t* Vs,
                                           int lane) {
  constexpr int LD = D + 8, DT8 = D / 8;
  float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int nt = 0; nt < NT; nt++) {
    tile_max[0] = fmaxf(tile_max[0], fmaxf(s[nt][0], s[nt][1]));
    tile_max[1] = fmaxf(tile_max[1], fmaxf(s[nt][2], s[nt][3]));
  }
  float corr[2], m_use[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
  for (int r = 0; r < 2; r++) {  // a quad of lanes shares a row
    tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
    tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
    const float m_new = fmaxf(m[r], tile_max[r]);
    m_use[r] = m_new == -INFINITY ? 0.0f : m_new;
    corr[r] = exp2_approx(m[r] - m_use[r]);
    m[r] = m_new;
  }
  uint32_t pa[NT / 2][4];
#pragma unroll
  for (int nt = 0; nt < NT; nt++) {
    pa[nt / 2][(nt & 1) * 2 + 0] =
        pack_rounded<DT>(exp2_approx(s[nt][0] - m_use[0]), exp2_approx(s[nt][1] - m_use[0]), &sum[0]);
    pa[nt / 2][(nt & 1) * 2 + 1] =
        pack_rounded<DT>(exp2_approx(s[nt][2] - m_use[1]), exp2_approx(s[nt][3] - m_use[1]), &sum[1]);
  }
#pragma unroll
  for (int r = 0; r < 2; r++) {
    sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 1);
    sum[r] += __shfl_xor_sync(0xffffffffu, sum[r], 2);
    l[r] = l[r] * corr[r] + sum[r];
  }
#pragma unroll
  for (int d = 0; d < DT8; d++) {
    o[d][0] *= corr[0];
    o[d][1] *= corr[0];
    o[d][2] *= corr[1];
    o[d][3] *= corr[1];
  }
#pragma unroll
  for (int kk = 0; kk < NT / 2; kk++) {
    const uint16_t* vrow = Vs + (kk * 16 + (lane & 15)) * LD + (lane >> 4) * 8;
#pragma unroll
    for (int d = 0; d < DT8; d += 2) {
      uint32_t bv[4];
      ldmatrix_x4_trans(bv, vrow + d * 8);
      mma16816<DT>(o[d], pa[kk], bv[0], bv[1]);
      mma16816<DT>(o[d + 1], pa[kk], bv[2], bv[3]);
    }
  }
}

}  // namespace mma_attn
