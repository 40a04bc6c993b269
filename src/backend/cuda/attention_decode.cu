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

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
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
// the sink as one more score of value zero; a chunk with every key masked has weight 0. A warp
// per head (heads side by side: one after another, each head's three dependent rounds of L2
// reads cost ~1.5 us, 10 us for a group of 7).
template <int D>
__device__ void combine_chunks(void* out, int out_dtype, const float* partial, const gpu_sdpa_args& A,
                               int splits, int b, int kvh) {
  constexpr int WARPS = DEC_THREADS / 32;
  __shared__ float w[WARPS][DEC_MAX_SPLITS];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, G = A.Hq / A.Hk;
  for (int g = warp; g < G; g += WARPS) {
    const int h = kvh * G + g;
    const int64_t bh = (int64_t)b * A.Hq + h;
    const float* base = partial + bh * splits * (2 + D);
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
    const float inv = total > 0 ? 1.0f / total : 0.0f;
    __syncwarp();
#pragma unroll
    for (int d0 = 0; d0 < D; d0 += 32) {
      float a = 0.0f;
#pragma unroll 4
      for (int s = 0; s < splits; s++) a += __ldcg(base + (int64_t)s * (2 + D) + 2 + d0 + lane) * w[warp][s];
      store_f32(out, out_dtype, bh * D + d0 + lane, a * inv);
    }
    __syncwarp();
  }
}

// GM: a power of two >= the group size G = Hq / Hk (registers are sized by it).
template <int DT, int D, int GM>
__global__ void __launch_bounds__(DEC_THREADS)
    sdpa_decode_partial(void* out, int out_dtype, float* partial, const uint16_t* q, const uint16_t* k,
                        const uint16_t* v, gpu_sdpa_args A, int splits, int chunk) {
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
  // Publish this chunk, then the group's last block to arrive merges all of them.
  __shared__ bool s_last;
  __threadfence();
  __syncthreads();
  if (tid == 0) {
    unsigned int* arrivals = &dec_arrivals[blockIdx.y];
    s_last = atomicAdd(arrivals, 1u) == (unsigned)splits - 1;
    if (s_last) *arrivals = 0;
  }
  __syncthreads();
  if (s_last) combine_chunks<D>(out, out_dtype, partial, A, splits, b, kvh);
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
static int occupancy_of(partial_kernel kernel) {
  static partial_kernel keys[32];
  static int values[32];
  static pthread_mutex_t occupancy_lock = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_lock(&occupancy_lock);
  int found = 0;
  for (int i = 0; i < 32 && !found; i++) {
    if (keys[i] == kernel) found = values[i];
    if (!keys[i]) {
      int per_sm = 0;
      if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, DEC_THREADS, 0) != cudaSuccess) {
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

extern "C" int gpu_launch_sdpa_decode(int device, int dtype, int out_dtype, void* out,
                                      const void* q, const void* k, const void* v,
                                      const gpu_sdpa_args* args) {
  const gpu_sdpa_args A = *args;
  if (A.Lq != 1 || A.Lk < 1 || A.D != A.Dv || (A.D != 64 && A.D != 128 && A.D != 256)) return -1;
  if (dtype != MLX_FLOAT16 && dtype != MLX_BFLOAT16) return -1;
  if (A.Hk < 1 || A.Hq % A.Hk != 0 || A.Hq / A.Hk > 8 || (int64_t)A.B * A.Hk > 65535) return -1;
  if (!rows_aligned(k, A.k_st) || !rows_aligned(v, A.v_st)) return -1;
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const int G = A.Hq / A.Hk, gm = G <= 1 ? 1 : G <= 2 ? 2 : G <= 4 ? 4 : 8;
  partial_kernel kernel = dtype == MLX_BFLOAT16 ? pick_d<MLX_BFLOAT16>(A.D, gm)
                                                : pick_d<MLX_FLOAT16>(A.D, gm);
  // Chunks: one wave of resident blocks over the GPU (the occupancy of this instantiation),
  // in whole iterations of the block, at most DEC_MAX_SPLITS chunks.
  int sms = gpu_sm_count(device), per_sm = occupancy_of(kernel);
  const int step = (DEC_THREADS / (A.D / 8)) * DEC_UNROLL;
  int64_t groups = (int64_t)A.B * A.Hk;
  int64_t want = ((int64_t)per_sm * sms + groups - 1) / groups;
  int64_t chunk = (A.Lk + want - 1) / want;
  if (chunk < (A.Lk + DEC_MAX_SPLITS - 1) / DEC_MAX_SPLITS)
    chunk = (A.Lk + DEC_MAX_SPLITS - 1) / DEC_MAX_SPLITS;
  chunk = (chunk + step - 1) / step * step;
  int splits = (int)((A.Lk + chunk - 1) / chunk);
  size_t bytes = sizeof(float) * (size_t)A.B * A.Hq * splits * (2 + A.D);
  void* partial = NULL;
  if (gpu_backend_alloc(device, bytes, &partial)) return 1;
  kernel<<<dim3(splits, (unsigned)groups), DEC_THREADS, 0, s>>>(
      out, out_dtype, (float*)partial, (const uint16_t*)q, (const uint16_t*)k, (const uint16_t*)v, A, splits,
      (int)chunk);
  int status = GPU_LAUNCHED("decode attention");
  gpu_backend_free(device, partial, bytes);
  return status;
}
