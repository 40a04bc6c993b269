// Decode attention (one query per head) over a KV cache, split-K ("flash decoding"): a block
// takes one (batch, KV head) and a chunk of keys for all the query heads of that group, so each
// K/V row is read from memory once; each key row is spread over D/8 lanes with one 16-byte load
// (8 half values) per lane, the dot products reduced with shuffles, softmax online per head.
// The block merges its sub-groups and writes (max, sum, partial output) per query head; the last
// block of a (batch, KV head) to finish merges the chunks (and the sink) and writes the output,
// so a decode step's attention is one kernel (a separate combine kernel cost ~3.6 us a layer). Same conventions as sdpa_partial/combine in
// fused.cu: q scaled in fp32, masked keys skipped, fully masked rows give zeros.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <pthread.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/gpu.h"

namespace {

constexpr int DEC_THREADS = 128;
constexpr int DEC_UNROLL = 2;       // keys per sub-group in flight per iteration
constexpr int DEC_MAX_SPLITS = 256;

template <int DT>
__device__ __forceinline__ void unpack8(const uint4& u, float* f) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int e = 0; e < 4; e++) {
    uint16_t lo = (uint16_t)(w[e] & 0xffffu), hi = (uint16_t)(w[e] >> 16);
    if constexpr (DT == MLX_BFLOAT16) {
      f[2 * e] = bf16_to_f32(lo);
      f[2 * e + 1] = bf16_to_f32(hi);
    } else {
      f[2 * e] = __half2float(__ushort_as_half(lo));
      f[2 * e + 1] = __half2float(__ushort_as_half(hi));
    }
  }
}

// Arrival counters per (batch, KV head) for "last block merges": zero at module load, and the
// last block sets its counter back to zero, so every launch (and every replay of a recorded
// step) starts from zero. All work of a device is ordered on one stream, so launches never
// overlap.
__device__ unsigned int dec_arrivals[65536];

// The last block of group (b, kvh) merges the `splits` chunks of each of its G query heads with
// the sink as one more score of value zero; a chunk with every key masked has weight 0. Heads go
// four at a time: a warp per head finds the chunks' weights (into shared memory), then all the
// block's threads form the outputs, consecutive threads on consecutive values with eight chunks'
// loads in flight (a warp per head looping over the chunks for each value took ~10 us of a
// 21 us kernel at 33 chunks).
template <int D>
__device__ void combine_chunks(void* out, int out_dtype, const float* partial, const gpu_sdpa_args& A,
                               int splits, int b, int kvh) {
  constexpr int WARPS = DEC_THREADS / 32;
  __shared__ float w[WARPS][DEC_MAX_SPLITS];
  __shared__ float s_inv[WARPS];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, G = A.Hq / A.Hk;
  for (int g0 = 0; g0 < G; g0 += WARPS) {
    const int heads = G - g0 < WARPS ? G - g0 : WARPS;
    if (warp < heads) {
      const int h = kvh * G + g0 + warp;
      const float* base = partial + ((int64_t)b * A.Hq + h) * splits * (2 + D);
      float M = -INFINITY;
      for (int s = lane; s < splits; s += 32) M = fmaxf(M, __ldcg(base + (int64_t)s * (2 + D)));
      for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
      const float sink = A.sinks ? load_f32(A.sinks, A.sinks_dtype, h * A.sinks_stride) : -INFINITY;
      M = fmaxf(M, sink);
      float total = 0.0f;
      for (int s = lane; s < splits; s += 32) {
        const float ms = __ldcg(base + (int64_t)s * (2 + D));
        const float c = (M > -INFINITY && ms > -INFINITY) ? expf(ms - M) : 0.0f;
        w[warp][s] = c;
        total += c * __ldcg(base + (int64_t)s * (2 + D) + 1);
      }
      for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(0xffffffffu, total, o);
      if (A.sinks && M > -INFINITY) total += expf(sink - M);
      if (lane == 0) s_inv[warp] = total > 0 ? 1.0f / total : 0.0f;
    }
    __syncthreads();
    // A thread's (up to) four outputs together, four chunks deep: 16 loads in flight.
    constexpr int PER = WARPS * D / DEC_THREADS;
    const float* col[PER];
    float a[PER];
#pragma unroll
    for (int i = 0; i < PER; i++) {
      const int idx = threadIdx.x + i * DEC_THREADS, gw = idx / D;
      col[i] = partial + (((int64_t)b * A.Hq + kvh * G + g0 + (gw < heads ? gw : 0)) * splits) * (2 + D) + 2 + idx % D;
      a[i] = 0.0f;
    }
#pragma unroll 4
    for (int s = 0; s < splits; s++) {
#pragma unroll
      for (int i = 0; i < PER; i++) a[i] += __ldcg(col[i] + (int64_t)s * (2 + D)) * w[(threadIdx.x + i * DEC_THREADS) / D][s];
    }
#pragma unroll
    for (int i = 0; i < PER; i++) {
      const int idx = threadIdx.x + i * DEC_THREADS, gw = idx / D;
      if (gw < heads) store_f32(out, out_dtype, ((int64_t)b * A.Hq + kvh * G + g0 + gw) * D + idx % D, a[i] * s_inv[gw]);
    }
    __syncthreads();  // w is refilled for the next heads
  }
}

// Publishes this block's partials, then the group's last block to arrive merges all of them.
template <int D>
__device__ void publish_and_combine(void* out, int out_dtype, float* partial, const gpu_sdpa_args& A, int splits,
                                    int b, int kvh) {
  __shared__ bool s_last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned int* arrivals = &dec_arrivals[blockIdx.y];
    s_last = atomicAdd(arrivals, 1u) == (unsigned)splits - 1;
    if (s_last) *arrivals = 0;
  }
  __syncthreads();
  if (s_last) combine_chunks<D>(out, out_dtype, partial, A, splits, b, kvh);
}

// GM: a power of two >= the group size G = Hq / Hk (registers are sized by it).
template <int DT, int D, int GM>
__global__ void __launch_bounds__(DEC_THREADS)
    sdpa_decode_partial(void* out, int out_dtype, float* partial, const uint16_t* q, const uint16_t* k,
                        const uint16_t* v, gpu_sdpa_args A, int splits, int chunk) {
  gpu_chain_start();
  constexpr int LANES = D / 8, SUBS = DEC_THREADS / LANES;
  __shared__ float s_acc[SUBS][GM][D];
  __shared__ float s_m[SUBS][GM], s_l[SUBS][GM];
  const int tid = threadIdx.x, sub = tid / LANES, sl = tid % LANES;
  const int G = A.Hq / A.Hk, split = blockIdx.x;
  const int b = blockIdx.y / A.Hk, kvh = blockIdx.y % A.Hk;

  const int64_t j0 = (int64_t)split * chunk;
  const int64_t j1 = j0 + chunk < A.Lk ? j0 + chunk : A.Lk;  // exclusive
  const uint16_t* kb = k + (int64_t)b * A.k_st[0] + (int64_t)kvh * A.k_st[1] + sl * 8;
  const uint16_t* vb = v + (int64_t)b * A.v_st[0] + (int64_t)kvh * A.v_st[1] + sl * 8;
  // Every sub-group runs the same iterations (the shuffles need whole warps); `valid` guards.
  // A mask that is the same for every head (a decode step's (1, 1, 1, Lk) mask) is read with the
  // keys, not per head after the dot products (one more dependent memory latency per key).
  const bool head_mask = A.mask && A.mask_st[1] != 0;
  // Keys and values of the next iteration are loaded before this one's arithmetic (and the
  // first ones before q), so a block waits for memory once rather than once per iteration.
  uint4 ku[DEC_UNROLL], vu[DEC_UNROLL];
  float madd[DEC_UNROLL];
  auto load_keys = [&](int64_t base) {
#pragma unroll
    for (int u = 0; u < DEC_UNROLL; u++) {
      int64_t j = base + sub + u * SUBS;
      ku[u] = vu[u] = make_uint4(0, 0, 0, 0);
      madd[u] = 0.0f;
      if (j < j1) {
        ku[u] = __ldg((const uint4*)(kb + j * A.k_st[2]));
        vu[u] = __ldg((const uint4*)(vb + j * A.v_st[2]));
        if (A.mask && !head_mask) {
          int64_t mo = (int64_t)b * A.mask_st[0] + j * A.mask_st[3];
          madd[u] = A.mask_dtype == MLX_BOOL ? (((const bool*)A.mask)[mo] ? 0.0f : -INFINITY)
                                             : load_f32(A.mask, A.mask_dtype, mo);
        }
      }
    }
  };
  load_keys(j0);

  float qv[GM][8], acc[GM][8], m[GM], l[GM];
#pragma unroll
  for (int g = 0; g < GM; g++) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
    const int64_t qb = (int64_t)b * A.q_st[0] + (int64_t)(kvh * G + g) * A.q_st[1];
#pragma unroll
    for (int e = 0; e < 8; e++) {
      acc[g][e] = 0.0f;
      float x = 0.0f;
      if (g < G) {
        uint16_t h = q[qb + (int64_t)(sl * 8 + e) * A.q_st[3]];
        x = DT == MLX_BFLOAT16 ? bf16_to_f32(h) : __half2float(__ushort_as_half(h));
      }
      qv[g][e] = __fmul_rn(x, A.scale);
    }
  }

  for (int64_t base = j0; base < j1; base += SUBS * DEC_UNROLL) {
    uint4 kc[DEC_UNROLL], vc[DEC_UNROLL];
    float mc[DEC_UNROLL];
#pragma unroll
    for (int u = 0; u < DEC_UNROLL; u++) kc[u] = ku[u], vc[u] = vu[u], mc[u] = madd[u];
    if (base + SUBS * DEC_UNROLL < j1) load_keys(base + SUBS * DEC_UNROLL);
#pragma unroll
    for (int u = 0; u < DEC_UNROLL; u++) {
      int64_t j = base + sub + u * SUBS;
      float kf[8], vf[8], s[GM];
      unpack8<DT>(kc[u], kf);
#pragma unroll
      for (int g = 0; g < GM; g++) {
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; e++) dot += qv[g][e] * kf[e];
#pragma unroll
        for (int o = LANES / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        s[g] = dot;
      }
      if (j >= j1) continue;
      unpack8<DT>(vc[u], vf);
#pragma unroll
      for (int g = 0; g < GM; g++) {
        if (g >= G) continue;
        float sc = s[g] + mc[u];
        if (head_mask) {
          int64_t mo = (int64_t)b * A.mask_st[0] + (int64_t)(kvh * G + g) * A.mask_st[1] +
                       j * A.mask_st[3];
          sc += A.mask_dtype == MLX_BOOL ? (((const bool*)A.mask)[mo] ? 0.0f : -INFINITY)
                                         : load_f32(A.mask, A.mask_dtype, mo);
        }
        if (sc == -INFINITY) continue;  // a masked key weighs nothing
        float m_new = fmaxf(m[g], sc);
        float corr = expf(m[g] - m_new), p = expf(sc - m_new);
        l[g] = l[g] * corr + p;
#pragma unroll
        for (int e = 0; e < 8; e++) acc[g][e] = acc[g][e] * corr + p * vf[e];
        m[g] = m_new;
      }
    }
  }

#pragma unroll
  for (int g = 0; g < GM; g++) {
#pragma unroll
    for (int e = 0; e < 8; e++) s_acc[sub][g][sl * 8 + e] = acc[g][e];
    if (sl == 0) {
      s_m[sub][g] = m[g];
      s_l[sub][g] = l[g];
    }
  }
  __syncthreads();
  // Each sub-group's weight in the block's softmax, once per (sub-group, head), then the
  // outputs are plain weighted sums (an exp per output value and sub-group before).
  __shared__ float s_c[SUBS][GM], s_M[GM];
  for (int i = tid; i < SUBS * G; i += DEC_THREADS) {
    const int t = i / G, g = i % G;
    float M = -INFINITY;
    for (int u = 0; u < SUBS; u++) M = fmaxf(M, s_m[u][g]);
    s_c[t][g] = M > -INFINITY && s_m[t][g] > -INFINITY ? expf(s_m[t][g] - M) : 0.0f;
    if (t == 0) s_M[g] = M;
  }
  __syncthreads();
  for (int idx = tid; idx < G * D; idx += DEC_THREADS) {
    const int g = idx / D, d = idx % D;
    float a = 0.0f;
#pragma unroll
    for (int t = 0; t < SUBS; t++) a += s_acc[t][g][d] * s_c[t][g];
    int64_t item = ((int64_t)b * A.Hq + kvh * G + g) * splits + split;
    float* dst = partial + item * (2 + D);
    if (d == 0) {
      float L = 0.0f;
      for (int t = 0; t < SUBS; t++) L += s_l[t][g] * s_c[t][g];
      dst[0] = s_M[g];
      dst[1] = L;
    }
    dst[2 + d] = a;
  }
  publish_and_combine<D>(out, out_dtype, partial, A, splits, b, kvh);
}

// ---- The same on tensor cores (D 64 or 128, G <= 16 query heads per KV head) ----
// The G query heads of a KV group are the rows of one 16-row mma tile (rows past G are zero and
// never stored), so a key costs two mma instructions instead of ~100 scalar ones per lane. A
// block takes a chunk of keys of one (batch, KV head) in tiles of 64, staged into shared memory
// by cp.async one tile ahead; each of its four warps takes 16 keys of a tile: S (16 × 16) = Q·Kᵀ,
// the online softmax in base 2, O (16 × D) += P·V, with P rounded to the input dtype as in the
// prefill kernel. The warps' states merge in shared memory into the chunk's (max, sum, O) per
// head, in the partial layout of sdpa_decode_partial, and the last block merges the chunks.
// ROPE (rope_kv_sdpa, mlxc_fast_rope_kv_attention): q arrives unrotated and each thread rotates
// the pairs it loads before they go to shared memory; the block whose chunk holds the cache slot
// rotates the new key row too and writes it and the new value row into the caches, and into its
// staged tile (whose copy may have read the slot before the write). The angles' cosines and
// sines are tabulated before the chain wait when the position is settled (a decode step's: written
// by the host before the step), so the rotation adds no memory latency to the critical path, and
// the inverse frequencies come from the host (rope_inv_freq_table: no double-precision pow on the
// device; -0.3 us a layer). One kernel a layer less than rope_kv followed by attention.
constexpr int DM_WARPS = DEC_THREADS / 32, DM_BC = 16 * DM_WARPS, DM_MAX_SPLITS = 16;
// A cache of up to decode_wide_keys(D) slots is one wide block a KV head, its tiles of 256 keys
// in turn: no partials, no merge of chunks, each tile's mask read with it rather than scanned.
// (Block timestamps on the H100, 0.5B at context 128, four 4-warp chunks of 64 keys: the chunks'
// merge, its arrival counter and the partials took 5 of the kernel's 8.5 us after its chain
// wait. One wide tile: 0.5B bf16 decode 1,191-1,213 -> 1,360-1,362 tok/s, 8B 4-bit 408-410 ->
// 419-421.) Two buffers of 256-key tiles fit in shared memory for D = 64: two tiles, the second
// copied while the first is computed (0.5B at context 384, 512 slots: chunks 1,182-1,185 ->
// 1,262-1,272 tok/s; four tiles, at 768, lost to the chunks: 1,051-1,067 -> 1,036-1,040). For
// D = 128 one buffer fits, so one tile.
constexpr int DM_WIDE_WARPS = 16;
__host__ __device__ constexpr int decode_wide_keys(int D) { return 16 * DM_WIDE_WARPS * (D == 64 ? 2 : 1); }

// ROPE: the columns of pair p (of D / 2) of a row: the rotated pair (p, p + half) or (2p, 2p + 1)
// when p < half, else two columns past the rotated dims, copied.
__device__ __forceinline__ void rope_pair_columns(int p, int half, bool traditional, int* a, int* b) {
  const bool adjacent = traditional || p >= half;
  *a = adjacent ? 2 * p : p;
  *b = adjacent ? 2 * p + 1 : p + half;
}

// ROPE: the position, and the cosines and sines of its angles in s_cos, s_sin (not yet visible
// to the other threads).
__device__ __forceinline__ int64_t rope_angles(const gpu_decode_rope_args& R, float* s_cos, float* s_sin) {
  const int64_t start = R.position_dtype == MLX_INT64 ? *(const int64_t*)R.position
                                                      : (int64_t) * (const int32_t*)R.position;
  if ((int)threadIdx.x < R.dims / 2) {
    const float inv = R.freqs ? rope_inv_freq(threadIdx.x, R.dims, R.base, R.freqs, R.freqs_dtype, R.freqs_stride)
                              : R.inv_freq[threadIdx.x];
    rope_cos_sin(__fmul_rn(R.scale, (float)start), inv, &s_cos[threadIdx.x], &s_sin[threadIdx.x]);
  }
  return start;
}

// ROPE: a pair of DT values rotated by table entry p (p < half), else unchanged.
template <int DT>
__device__ __forceinline__ void rope_pair(uint16_t* x1, uint16_t* x2, int p, int half, const float* s_cos,
                                          const float* s_sin) {
  if (p >= half) return;
  float y1, y2;
  rope_apply(float_dt<DT>::ld(*x1), float_dt<DT>::ld(*x2), s_cos[p], s_sin[p], &y1, &y2);
  *x1 = float_dt<DT>::st(y1);
  *x2 = float_dt<DT>::st(y2);
}

// Buffers of K and V tiles a block of `warps` stages for head dim d: two (the next tile loads
// while one is computed), or one where two would not fit in shared memory (wide blocks, d = 128,
// whose one tile is the whole cache).
__host__ __device__ constexpr int decode_mma_buffers(int warps, int d) { return warps == DM_WARPS || d == 64 ? 2 : 1; }
static_assert(decode_mma_buffers(DM_WIDE_WARPS, 128) == 2 || decode_wide_keys(128) <= 16 * DM_WIDE_WARPS,
              "a single-buffered wide block computes one tile: its cache must fit in it");

template <int D, int WARPS>
constexpr size_t decode_mma_smem_bytes() {
  constexpr size_t tiles = 2 * (size_t)(16 + decode_mma_buffers(WARPS, D) * 2 * 16 * WARPS) * (D + 8);  // Q, K and V
  // The warps' states merge in the same memory.
  static_assert(tiles >= sizeof(float) * (16 * WARPS * (D + 8) + 2 * 16 * WARPS), "merge space");
  return tiles;
}

template <int DT, int D, bool ROPE, int WARPS>
__device__ __forceinline__ void decode_mma_body(void* out, int out_dtype, float* partial, const uint16_t* q,
                                                const uint16_t* k, const uint16_t* v, const gpu_sdpa_args& A,
                                                int splits, int chunk, const gpu_decode_rope_args& R) {
  using namespace mma_attn;
  constexpr int LD = D + 8, OLD = D + 8, KD = D / 16, DT8 = D / 8, THREADS = 32 * WARPS, BC = 16 * WARPS;
  constexpr bool two_buffers = decode_mma_buffers(WARPS, D) == 2, wide = WARPS != DM_WARPS;
  extern __shared__ __align__(16) uint16_t dm_smem[];
  uint16_t* Qs = dm_smem;
  uint16_t* KVs = Qs + 16 * LD;  // buffer i: K at KVs + 2i·BC·LD, V right after
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, c = lane & 3;
  const int G = A.Hq / A.Hk, split = blockIdx.x;
  const int b = blockIdx.y / A.Hk, kvh = blockIdx.y % A.Hk;
  const int64_t j0 = (int64_t)split * chunk;
  int64_t j1 = j0 + chunk < A.Lk ? j0 + chunk : A.Lk;
  const int64_t chunk_end = j1;
  const uint16_t* kbase = k + (int64_t)b * A.k_st[0] + (int64_t)kvh * A.k_st[1];
  const uint16_t* vbase = v + (int64_t)b * A.v_st[0] + (int64_t)kvh * A.v_st[1];
  // ROPE: the angles' cosines and sines, the new key and value rows.
  __shared__ float s_cos[ROPE ? D / 2 : 1], s_sin[ROPE ? D / 2 : 1];
  __shared__ uint16_t s_knew[ROPE ? D : 1], s_vnew[ROPE ? D : 1];
  const int half = ROPE ? R.dims / 2 : 0;
  int64_t start = 0;
  auto stage = [&](int64_t t0, int buf) {
    const int valid = (int)(j1 - t0 < BC ? j1 - t0 : BC);
    uint16_t* Kb = KVs + (size_t)buf * 2 * BC * LD;
    stage_padded_async<D>(Kb, kbase + t0 * A.k_st[2], A.k_st[2], BC, valid);
    stage_padded_async<D>(Kb + BC * LD, vbase + t0 * A.v_st[2], A.v_st[2], BC, valid);
    asm volatile("cp.async.commit_group;\n" ::);
  };
  // ROPE: the caches' rows but the new one come from earlier steps; when nothing can still be
  // writing them (cache_settled) the first tile is copied before the chain wait.
  const bool early_tile = ROPE && R.cache_settled;
  if (early_tile) stage(j0, 0);
  if (ROPE && R.settled) {
    start = rope_angles(R, s_cos, s_sin);
    __syncthreads();
  }
  gpu_chain_wait();
  if (!early_tile) stage(j0, 0);
  // With a mask, the chunk ends after the last key some query head sees: keys hidden from every
  // head weigh nothing, and a recorded decode step attends over all reserved cache slots with
  // the unfilled ones masked (at context 128, 256 slots: half the tiles were read for nothing).
  // The mask is read while the first tile loads.
  // Q's rows (the group's G heads, zeros past them) go to registers first, so that their loads
  // and the mask's are in flight together (loaded and stored one at a time, each waited for
  // its memory latency). ROPE: a thread's values are pairs (rope_pair_columns), and the new
  // key's pairs and value are loaded with them.
  constexpr int QPT = 16 * D / THREADS;
  uint16_t qv[QPT];
#pragma unroll
  for (int i = 0; i < QPT; i++) {
    const int idx = ROPE ? threadIdx.x + (i / 2) * THREADS : threadIdx.x + i * THREADS;
    int r = idx / D, d = idx % D;
    if constexpr (ROPE) {
      int ca, cb;
      r = idx / (D / 2);
      rope_pair_columns(idx % (D / 2), half, R.traditional, &ca, &cb);
      d = i % 2 ? cb : ca;
    }
    qv[i] = r < G ? q[(int64_t)b * A.q_st[0] + (int64_t)(kvh * G + r) * A.q_st[1] + (int64_t)d * A.q_st[3]] : (uint16_t)0;
  }
  uint16_t kn[2] = {0, 0}, vn = 0;
  int ka = 0, kb = 0;
  if constexpr (ROPE) {
    const uint16_t* kr = (const uint16_t*)R.k_new + (int64_t)b * R.kn_st[0] + (int64_t)kvh * R.kn_st[1];
    if (threadIdx.x < D / 2) {
      rope_pair_columns(threadIdx.x, half, R.traditional, &ka, &kb);
      kn[0] = kr[ka * R.kn_st[3]];
      kn[1] = kr[kb * R.kn_st[3]];
    }
    if (threadIdx.x < D)
      vn = ((const uint16_t*)R.v_new)[(int64_t)b * R.vn_st[0] + (int64_t)kvh * R.vn_st[1] + threadIdx.x * R.vn_st[3]];
    if (!R.settled) {
      start = rope_angles(R, s_cos, s_sin);
      __syncthreads();
    }
  }
  // A wide block computes every tile of its cache, so the mask only hides keys: this thread's
  // part of a tile's mask is read with q for the first tile, with the tile's copy for the others
  // (in units of log2, -inf hidden), not scanned for the chunk's end first (a memory wait,
  // shuffles and two barriers: they only save a chunk's later tiles, and a recorded step's last
  // tile holds its position).
  float tile_mask[2][4] = {};
  auto load_tile_mask = [&](int64_t t0) {
    if (!A.mask) return;
#pragma unroll
    for (int nt = 0; nt < 2; nt++) {
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int row = g + 8 * (e >> 1);
        const int64_t j = t0 + warp * 16 + nt * 8 + 2 * c + (e & 1);
        tile_mask[nt][e] = 0.0f;
        if (j >= j1 || row >= G) continue;
        const int64_t mo = (int64_t)b * A.mask_st[0] + (int64_t)(kvh * G + row) * A.mask_st[1] + j * A.mask_st[3];
        tile_mask[nt][e] = A.mask_dtype == MLX_BOOL ? (((const bool*)A.mask)[mo] ? 0.0f : -INFINITY)
                                                    : load_f32(A.mask, A.mask_dtype, mo) * LOG2E;
      }
    }
  };
  if (wide) load_tile_mask(j0);
  if (!wide && A.mask) {
    __shared__ int s_last;
    if (threadIdx.x == 0) s_last = -1;
    __syncthreads();
    int last = -1;
    // A mask broadcast over the heads (a recorded step's (capacity) row) is read for one head.
    const int heads = A.mask_st[1] == 0 ? 1 : G, n = (int)(j1 - j0) * heads;
    constexpr int MU = 4;  // mask loads in flight per thread
    for (int idx0 = threadIdx.x; idx0 < n; idx0 += MU * THREADS) {
      bool seen[MU];
#pragma unroll
      for (int u = 0; u < MU; u++) {
        const int idx = idx0 + u * THREADS, jj = idx / heads, r = idx % heads;
        const int64_t mo = (int64_t)b * A.mask_st[0] + (int64_t)(kvh * G + r) * A.mask_st[1] + (j0 + jj) * A.mask_st[3];
        seen[u] = idx < n && (A.mask_dtype == MLX_BOOL ? ((const bool*)A.mask)[mo]
                                                       : load_f32(A.mask, A.mask_dtype, mo) > -INFINITY);
      }
#pragma unroll
      for (int u = 0; u < MU; u++)
        if (seen[u] && (idx0 + u * THREADS) / heads > last) last = (idx0 + u * THREADS) / heads;
    }
    for (int o = 16; o > 0; o >>= 1) last = max(last, __shfl_xor_sync(0xffffffffu, last, o));
    if (lane == 0 && last >= 0) atomicMax(&s_last, last);
    __syncthreads();
    j1 = j0 + s_last + 1;  // j0: nothing seen, no tile is computed
  }
  bool owner = false;  // ROPE: this block's chunk holds the slot of the new row
  int64_t slot = 0;
  if constexpr (ROPE) {  // the pairs rotated, rounded to the dtype as rope_kv stores them
#pragma unroll
    for (int i = 0; i < QPT; i += 2)
      rope_pair<DT>(&qv[i], &qv[i + 1], (threadIdx.x + (i / 2) * THREADS) % (D / 2), half, s_cos, s_sin);
    slot = start < 0 ? start + A.Lk : start;  // as mlx_slice_update_dynamic, one row
    slot = slot < 0 ? 0 : slot > A.Lk - 1 ? A.Lk - 1 : slot;
    owner = slot >= j0 && slot < chunk_end;
    uint16_t* keys_row = const_cast<uint16_t*>(kbase) + slot * A.k_st[2];
    uint16_t* values_row = const_cast<uint16_t*>(vbase) + slot * A.v_st[2];
    if (threadIdx.x < D / 2) {
      rope_pair<DT>(&kn[0], &kn[1], threadIdx.x, half, s_cos, s_sin);
      s_knew[ka] = kn[0];
      s_knew[kb] = kn[1];
      if (owner) keys_row[ka] = kn[0], keys_row[kb] = kn[1];
    }
    if (threadIdx.x < D) {
      s_vnew[threadIdx.x] = vn;
      if (owner) values_row[threadIdx.x] = vn;
    }
  }
#pragma unroll
  for (int i = 0; i < QPT; i++) {
    if constexpr (ROPE) {
      const int idx = threadIdx.x + (i / 2) * THREADS;
      int ca, cb;
      rope_pair_columns(idx % (D / 2), half, R.traditional, &ca, &cb);
      Qs[(idx / (D / 2)) * LD + (i % 2 ? cb : ca)] = qv[i];
    } else {
      const int idx = threadIdx.x + i * THREADS;
      Qs[(idx / D) * LD + idx % D] = qv[i];
    }
  }
  __syncthreads();
  uint32_t qa[KD][4];
#pragma unroll
  for (int kk = 0; kk < KD; kk++) ldmatrix_x4(qa[kk], Qs + (lane & 15) * LD + kk * 16 + (lane >> 4) * 8);
  float o[DT8][4];
#pragma unroll
  for (int d = 0; d < DT8; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8, units of log2
  const float scale_log2 = A.scale * LOG2E;
  int buf = 0;
  for (int64_t t0 = j0; t0 < j1; t0 += BC, buf ^= 1) {
    if (wide && two_buffers && t0 != j0) load_tile_mask(t0);  // a single-buffered wide block has one tile
    if (two_buffers && t0 + BC < j1) {
      stage(t0 + BC, buf ^ 1);
      asm volatile("cp.async.wait_group 1;\n" ::);
    } else {
      asm volatile("cp.async.wait_group 0;\n" ::);
    }
    __syncthreads();
    if (ROPE && owner && slot >= t0 && slot < t0 + BC) {  // the new row into the staged tile
      uint16_t* row = KVs + (size_t)buf * 2 * BC * LD + (slot - t0) * LD;
      if (threadIdx.x < D) {
        row[threadIdx.x] = s_knew[threadIdx.x];
        row[BC * LD + threadIdx.x] = s_vnew[threadIdx.x];
      }
      __syncthreads();
    }
    const int64_t jw = t0 + warp * 16;  // this warp's first key
    if (jw < j1) {
      const uint16_t* Ks = KVs + (size_t)buf * 2 * BC * LD + warp * 16 * LD;
      const uint16_t* Vs = Ks + BC * LD;
      float s[2][4];
      qk_tile<DT, D, 2>(s, qa, Ks, lane, scale_log2);
#pragma unroll
      for (int nt = 0; nt < 2; nt++) {  // masks and the end of the chunk
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int row = g + 8 * (e >> 1);
          const int64_t j = jw + nt * 8 + 2 * c + (e & 1);
          bool visible = j < j1;
          if (wide) {
            s[nt][e] += tile_mask[nt][e];
          } else if (visible && A.mask && row < G) {
            const int64_t mo = (int64_t)b * A.mask_st[0] + (int64_t)(kvh * G + row) * A.mask_st[1] + j * A.mask_st[3];
            if (A.mask_dtype == MLX_BOOL)
              visible = ((const bool*)A.mask)[mo];
            else
              s[nt][e] += load_f32(A.mask, A.mask_dtype, mo) * LOG2E;
          }
          if (!visible) s[nt][e] = -INFINITY;
        }
      }
      softmax_pv<DT, D, 2>(s, m, l, o, Vs, lane);
    }
    __syncthreads();  // this buffer is refilled next
  }

  // Merge the warps (their states through the idle K/V buffers, once every copy has landed:
  // the first tile's too when the mask left nothing to compute).
  asm volatile("cp.async.wait_group 0;\n" ::);
  __syncthreads();
  gpu_chain_release();  // the keys and values have arrived: the next kernel may start loading (common.cuh)
  // The warps' states go to shared memory (Q's rows, in registers since the tiles began, and the
  // tile buffers): rows of D + 8 floats, written as float2 pairs, so that a half-warp's eight rows
  // fall on distinct banks (rows of D floats put them all on one bank: 8-way conflicts).
  float* sO = (float*)dm_smem;  // [warp][16][D + 8]
  float* sM = sO + WARPS * 16 * OLD;
  float* sL = sM + WARPS * 16;
#pragma unroll
  for (int d = 0; d < DT8; d++) {
    *(float2*)&sO[(warp * 16 + g) * OLD + d * 8 + 2 * c] = make_float2(o[d][0], o[d][1]);
    *(float2*)&sO[(warp * 16 + g + 8) * OLD + d * 8 + 2 * c] = make_float2(o[d][2], o[d][3]);
  }
  if (c == 0) {
    sM[warp * 16 + g] = m[0], sM[warp * 16 + g + 8] = m[1];
    sL[warp * 16 + g] = l[0], sL[warp * 16 + g + 8] = l[1];
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * D; idx += THREADS) {
    const int r = idx / D, d = idx % D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < WARPS; w++) M = fmaxf(M, sM[w * 16 + r]);
    float acc = 0.0f, L = 0.0f;
#pragma unroll
    for (int w = 0; w < WARPS; w++) {
      const float cw = M > -INFINITY && sM[w * 16 + r] > -INFINITY ? exp2_approx(sM[w * 16 + r] - M) : 0.0f;
      acc += cw * sO[(w * 16 + r) * OLD + d];
      L += cw * sL[w * 16 + r];
    }
    const float M_nat = M > -INFINITY ? M * 0.6931471805599453f : -INFINITY;  // as combine_chunks reads it
    const int64_t bh = (int64_t)b * A.Hq + kvh * G + r;
    if (splits == 1) {  // the whole row: the output straight away, merged with the sink as combine_chunks does
      const float sink = A.sinks ? load_f32(A.sinks, A.sinks_dtype, (kvh * G + r) * A.sinks_stride) : -INFINITY;
      const float top = fmaxf(M_nat, sink);
      const float cw = top > -INFINITY && M_nat > -INFINITY ? expf(M_nat - top) : 0.0f;
      const float total = cw * L + (A.sinks && top > -INFINITY ? expf(sink - top) : 0.0f);
      store_f32(out, out_dtype, bh * D + d, total > 0 ? acc * cw / total : 0.0f);
      continue;
    }
    float* dst = partial + (bh * splits + split) * (2 + D);
    if (d == 0) {
      dst[0] = M_nat;
      dst[1] = L;
    }
    dst[2 + d] = acc;
  }
  if constexpr (WARPS == DM_WARPS) {  // wide blocks take the whole cache (splits == 1)
    if (splits > 1) publish_and_combine<D>(out, out_dtype, partial, A, splits, b, kvh);
  }
}

template <int DT, int D, int WARPS>
__global__ void __launch_bounds__(32 * WARPS)
    sdpa_decode_mma(void* out, int out_dtype, float* partial, const uint16_t* q, const uint16_t* k,
                    const uint16_t* v, gpu_sdpa_args A, int splits, int chunk) {
  decode_mma_body<DT, D, false, WARPS>(out, out_dtype, partial, q, k, v, A, splits, chunk, gpu_decode_rope_args{});
}

template <int DT, int D, int WARPS>
__global__ void __launch_bounds__(32 * WARPS)
    sdpa_decode_mma_rope(void* out, int out_dtype, float* partial, const uint16_t* q, const uint16_t* k,
                         const uint16_t* v, gpu_sdpa_args A, int splits, int chunk, gpu_decode_rope_args R) {
  decode_mma_body<DT, D, true, WARPS>(out, out_dtype, partial, q, k, v, A, splits, chunk, R);
}

bool rows_aligned(const void* p, const int64_t* st) {
  return ((uintptr_t)p & 15u) == 0 && st[3] == 1 && st[0] % 8 == 0 && st[1] % 8 == 0 &&
         st[2] % 8 == 0;
}

typedef void (*partial_kernel)(void*, int, float*, const uint16_t*, const uint16_t*, const uint16_t*,
                               gpu_sdpa_args, int, int);

template <int DT, int D>
partial_kernel pick_gm(int gm) {
  switch (gm) {
    case 1: return sdpa_decode_partial<DT, D, 1>;
    case 2: return sdpa_decode_partial<DT, D, 2>;
    case 4: return sdpa_decode_partial<DT, D, 4>;
    default: return sdpa_decode_partial<DT, D, 8>;
  }
}

template <int DT>
partial_kernel pick_d(int D, int gm) {
  return D == 64 ? pick_gm<DT, 64>(gm) : D == 128 ? pick_gm<DT, 128>(gm) : pick_gm<DT, 256>(gm);
}

}  // namespace

// Resident blocks per SM of an instantiation, cached (the occupancy query is too slow for every
// decode step); instantiations are few and fixed, so a small table keyed by the kernel suffices.
static int occupancy_of(const void* kernel, int threads, size_t smem) {
  static const void* keys[32];
  static int values[32];
  static pthread_mutex_t occupancy_lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&occupancy_lock);
  int found = 0;
  for (int i = 0; i < 32 && !found; i++) {
    if (keys[i] == kernel) found = values[i];
    if (!keys[i]) {
      int per_sm = 0;
      if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem) != cudaSuccess) {
        cudaGetLastError();  // only a sizing hint
        per_sm = 1;
      }
      found = per_sm < 1 ? 1 : per_sm;
      keys[i] = kernel;
      values[i] = found;
    }
  }
  pthread_mutex_unlock(&occupancy_lock);
  return found ? found : 1;
}

// MLXC_DECODE_ATTN_SCALAR=1 takes the scalar kernel where the tensor-core one applies (for
// comparisons and tests; read at each call).
static bool getenv_flag_scalar_decode(void) {
  const char* v = getenv("MLXC_DECODE_ATTN_SCALAR");
  return v && strcmp(v, "0") != 0;
}

// The tensor-core instantiation for (DT, D), plain or with RoPE (rope_kv_sdpa), of WARPS warps.
template <int DT, int D, bool ROPE, int WARPS>
constexpr auto decode_mma_entry() {
  if constexpr (ROPE) return sdpa_decode_mma_rope<DT, D, WARPS>;
  else return sdpa_decode_mma<DT, D, WARPS>;
}

// That kernel with its shared memory allowed (NULL after an error).
template <int DT, int D, bool ROPE, int WARPS>
static auto mma_kernel(int device, size_t* smem) {
  constexpr auto kernel = decode_mma_entry<DT, D, ROPE, WARPS>();
  *smem = decode_mma_smem_bytes<D, WARPS>();
  return gpu_allow_shared_memory<kernel>(*smem, device, "decode attention shared memory") ? nullptr : kernel;
}

template <int DT, int D, bool ROPE>
static auto mma_kernel_of(int device, bool wide, size_t* smem) {
  return wide ? mma_kernel<DT, D, ROPE, DM_WIDE_WARPS>(device, smem) : mma_kernel<DT, D, ROPE, DM_WARPS>(device, smem);
}

// The tensor-core kernel for dtype (float16/bfloat16) and D (64 or 128); wide: the block of
// DM_WIDE_WARPS warps that takes a whole cache of up to decode_wide_keys(D) slots.
template <bool ROPE>
static auto pick_mma(int device, int dtype, int D, bool wide, size_t* smem) {
  constexpr int BF = MLX_BFLOAT16, F = MLX_FLOAT16;
  if (dtype == BF)
    return D == 64 ? mma_kernel_of<BF, 64, ROPE>(device, wide, smem) : mma_kernel_of<BF, 128, ROPE>(device, wide, smem);
  return D == 64 ? mma_kernel_of<F, 64, ROPE>(device, wide, smem) : mma_kernel_of<F, 128, ROPE>(device, wide, smem);
}

// Whether a cache of Lk slots takes one wide block a KV head: more than a small block's tile (which
// takes it alone anyway), at most decode_wide_keys(D). MLXC_DECODE_ATTN_WIDE=0 turns it off (for
// comparisons; read at each call).
static bool use_wide(const gpu_sdpa_args& A) {
  const char* v = getenv("MLXC_DECODE_ATTN_WIDE");
  return A.Lk > DM_BC && A.Lk <= decode_wide_keys(A.D) && !(v && strcmp(v, "0") == 0);
}

// MLXC_ROPE_ATTN=0: rope_kv_sdpa as its two kernels (for comparisons; read at each call).
static bool rope_attention_off(void) {
  const char* v = getenv("MLXC_ROPE_ATTN");
  return v && strcmp(v, "0") == 0;
}

// The chunks of keys a block takes: one wave of resident blocks over the GPU (per_sm blocks of
// this instantiation an SM), in whole iterations of the block, at most DEC_MAX_SPLITS chunks.
static int64_t plan_chunk(const gpu_sdpa_args& A, bool mma, int sms, int per_sm) {
  const int step = mma ? DM_BC : (DEC_THREADS / (A.D / 8)) * DEC_UNROLL;
  int64_t groups = (int64_t)A.B * A.Hk;
  int64_t want = ((int64_t)per_sm * sms + groups - 1) / groups;
  int64_t chunk = (A.Lk + want - 1) / want;
  // The tensor-core kernel takes at least a tile a block, and at most DM_MAX_SPLITS chunks: the
  // merge costs about a tile's latency per chunk it reads. (At least four tiles a block left a
  // recorded step at context 128, 256 slots, one block per KV head: 0.5B 833 tok/s, 868 with
  // one-tile chunks; at 4096 keys 64 one-tile chunks cost 5%.)
  if (mma && chunk < DM_BC) chunk = DM_BC;
  if (mma && chunk < (A.Lk + DM_MAX_SPLITS - 1) / DM_MAX_SPLITS) chunk = (A.Lk + DM_MAX_SPLITS - 1) / DM_MAX_SPLITS;
  if (chunk < (A.Lk + DEC_MAX_SPLITS - 1) / DEC_MAX_SPLITS)
    chunk = (A.Lk + DEC_MAX_SPLITS - 1) / DEC_MAX_SPLITS;
  return (chunk + step - 1) / step * step;
}

// Launches a decode kernel (arguments out .. chunk, then `extra`) over its chunks of keys, with
// per-chunk partials in pool scratch (none when one tensor-core chunk writes the output itself).
template <typename Kernel, typename... Extra>
static int launch_chunks(Kernel kernel, bool mma, bool wide, size_t smem, int device, cudaStream_t s,
                         const gpu_sdpa_args& A, void* out, int out_dtype, const void* q, const void* k, const void* v,
                         const char* what, Extra... extra) {
  const int threads = wide ? 32 * DM_WIDE_WARPS : DEC_THREADS;
  const int64_t chunk =
      wide ? A.Lk : plan_chunk(A, mma, gpu_sm_count(device), occupancy_of((const void*)kernel, threads, smem));
  const int splits = (int)((A.Lk + chunk - 1) / chunk);
  const size_t bytes = mma && splits == 1 ? 0 : sizeof(float) * (size_t)A.B * A.Hq * splits * (2 + A.D);
  void* partial = NULL;
  if (bytes && gpu_backend_alloc(device, bytes, &partial)) return 1;
  (void)gpu_launch_chained(kernel, dim3(splits, (unsigned)(A.B * A.Hk)), threads, smem, s, out, out_dtype,
                           (float*)partial, (const uint16_t*)q, (const uint16_t*)k, (const uint16_t*)v, A, splits,
                           (int)chunk, extra...);
  int status = gpu_check(cudaGetLastError(), what);
  if (bytes) gpu_backend_free(device, partial, bytes);
  return status;
}

// What both launchers check: one query row over a cache of whole, aligned half-precision rows.
static bool decode_shape_ok(const gpu_sdpa_args& A, int dtype, const void* k, const void* v) {
  return A.Lq == 1 && A.Lk >= 1 && A.D == A.Dv && (dtype == MLX_FLOAT16 || dtype == MLX_BFLOAT16) && A.Hk >= 1 &&
         A.Hq % A.Hk == 0 && (int64_t)A.B * A.Hk <= 65535 && rows_aligned(k, A.k_st) && rows_aligned(v, A.v_st);
}

extern "C" int gpu_launch_sdpa_decode(int device, int dtype, int out_dtype, void* out,
                                      const void* q, const void* k, const void* v,
                                      const gpu_sdpa_args* args) {
  const gpu_sdpa_args A = *args;
  if (!decode_shape_ok(A, dtype, k, v) || (A.D != 64 && A.D != 128 && A.D != 256)) return -1;
  const int G = A.Hq / A.Hk;
  const bool mma = (A.D == 64 || A.D == 128) && G <= 16 && !getenv_flag_scalar_decode();
  if (!mma && G > 8) return -1;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const int gm = G <= 1 ? 1 : G <= 2 ? 2 : G <= 4 ? 4 : 8;
  size_t smem = 0;
  const bool wide = mma && use_wide(A);
  partial_kernel kernel = mma ? pick_mma<false>(device, dtype, A.D, wide, &smem)
                          : dtype == MLX_BFLOAT16 ? pick_d<MLX_BFLOAT16>(A.D, gm)
                                                  : pick_d<MLX_FLOAT16>(A.D, gm);
  if (!kernel) return 1;
  return launch_chunks(kernel, mma, wide, smem, device, s, A, out, out_dtype, q, k, v, "decode attention launch");
}

extern "C" int gpu_launch_sdpa_decode_rope(int device, int dtype, int out_dtype, void* out, const void* q,
                                           void* keys, void* values, const gpu_sdpa_args* args,
                                           const gpu_decode_rope_args* rope) {
  const gpu_sdpa_args A = *args;
  if (!decode_shape_ok(A, dtype, keys, values) || (A.D != 64 && A.D != 128) || A.Hq / A.Hk > 16 ||
      rope->dims < 2 || rope->dims > A.D || getenv_flag_scalar_decode() || rope_attention_off())
    return -1;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  gpu_decode_rope_args R = *rope;
  if (!R.freqs) rope_inv_freq_table(R.inv_freq, R.dims, R.base);
  size_t smem = 0;
  const bool wide = use_wide(A);
  auto kernel = pick_mma<true>(device, dtype, A.D, wide, &smem);
  if (!kernel) return 1;
  return launch_chunks(kernel, true, wide, smem, device, s, A, out, out_dtype, q, keys, values,
                       "decode attention with rope launch", R);
}
