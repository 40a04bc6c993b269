// A decode step's decoder layers in one persistent kernel (launch.h: gpu_launch_decode_layers).
//
// Launched as a chain of small kernels, a batch-1 layer pays each kernel's launch-to-launch
// latency (~3 us, eight kernels a layer) with the memory system idle in between. Here one block
// per SM runs every layer: the phases of a layer (q/k/v, attention, o_proj, gate/up, down) are
// separated by grid-wide barriers, and the weights, which never depend on the activations, are
// streamed independently of them: warp 0 of each block (the producer) copies the block's share
// of every GEMV's rows, phase after phase and layer after layer, into a ring of shared-memory
// stages by bulk asynchronous copies (TMA) signalling mbarriers; the other warps (consumers)
// compute from the stages and wait at the barriers. While the consumers wait, the ring fills
// with the next phases' rows, so the barriers cost no memory bandwidth.
//
// Each GEMV phase splits its outputs into one contiguous range per block; a stage holds whole
// rows (the gate and the up row of an output together, with their scales and biases), and a
// warp computes one output of a stage at a time. The vector a phase multiplies (a normalised x,
// the attention output, the gated activation) is staged in shared memory by every block, laid
// out so that the lanes' 16-byte loads hit distinct banks. Attention takes (query head, chunk of
// 32 or 64 keys) items over the grid; several chunks of a head write partial softmax states
// that the last of them to finish merges (an arrival counter per layer and head). The residual
// stream at a block's outputs of o_proj and down (one partition of the D outputs) stays in its
// shared memory. Roundings follow the chain of kernels it replaces: every GEMV output, bias,
// residual sum, norm and RoPE output is rounded to the dtype where that chain stores it.
//
// Status (H100, BENCHMARKS.md, eleventh session): correct, but not faster than the chain, so the
// decoder takes it only with MLXC_FUSED_LAYERS=1. The ring streams bfloat16 weights at ~86% of
// the copy rate (8B bf16), but a phase costs its barrier and its vector's staging (~4 us each
// for the 0.5B), and the 4-bit gate/up phase is bound by the consumers (~36 us for 66 MB: more
// consumer warps, fewer instructions, unrolling and backing off waiting warps changed nothing
// or lost); half of a 0.5B layer's time is spent waiting at the barriers. MLXC_DL_TRACE=1 prints
// block 0's work and barrier wait per phase (and attention's steps), averaged over the layers
// of the last step run, at exit.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/quant_values.cuh"
#include "backend/cuda/rope.cuh"
#include "backend/gpu.h"

namespace {

constexpr int DL_CONSUMERS = 12;                     // computing warps per block
constexpr int DL_THREADS = 32 * (DL_CONSUMERS + 1);  // plus the producer warp
constexpr int DL_STAGES = 6;                         // shared-memory stages of the weight ring
constexpr int DL_KEYS = 64, DL_KEYS_MIN = 32;        // keys per attention item
constexpr int DL_HEADER = 2048;                      // mbarriers, inverse frequencies, scratch
constexpr int DL_SEG_SLACK = 48;                     // per segment: 16-byte rounding of both ends
constexpr int DL_RES_MAX = 128;                      // D-wide outputs a block may own

enum { PH_QKV, PH_O, PH_GATE_UP, PH_DOWN };

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbar_init(uint64_t* b, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect(uint64_t* b, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(b)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* b) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_u32(b)) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* b, unsigned parity) {
  uint32_t done;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_u32(b)), "r"(parity)
        : "memory");
  } while (!done);
}
// bytes (a multiple of 16) from global src (16-byte aligned) to shared dst, completing on bar.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned bytes, uint64_t* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                   smem_u32(dst)),
               "l"(src), "r"(bytes), "r"(smem_u32(bar))
               : "memory");
}

// The consumer warps' own barrier (the producer warp never joins it).
__device__ __forceinline__ void consumers_sync() { asm volatile("bar.sync 1, %0;" ::"r"(DL_CONSUMERS * 32) : "memory"); }

// All consumers of all blocks: arrive on the counter, wait until every block has.
__device__ __forceinline__ void grid_sync(unsigned* counter, unsigned* target) {
  consumers_sync();
  *target += gridDim.x;
  if (threadIdx.x == 32) {
    asm volatile("fence.acq_rel.gpu;" ::: "memory");
    asm volatile("red.relaxed.gpu.global.add.u32 [%0], 1;" ::"l"(counter) : "memory");
    unsigned v;
    do {
      asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(counter) : "memory");
    } while (v < *target);
    asm volatile("fence.acq_rel.gpu;" ::: "memory");
  }
  consumers_sync();
}

// Storage of the activation dtype DT: 2-byte halves or float.
template <int DT>
using store_t = typename std::conditional<DT == MLX_FLOAT32, float, uint16_t>::type;

template <int DT>
__device__ __forceinline__ float to_f(store_t<DT> v) {
  if constexpr (DT == MLX_FLOAT32) return v;
  else if constexpr (DT == MLX_BFLOAT16) return __uint_as_float((uint32_t)v << 16);
  else return __half2float(__ushort_as_half(v));
}
template <int DT>
__device__ __forceinline__ store_t<DT> from_f(float v) {
  if constexpr (DT == MLX_FLOAT32) return v;
  else if constexpr (DT == MLX_BFLOAT16) return f32_to_bf16(v);
  else return f32_to_f16(v);
}
// A value another block wrote in an earlier phase: read from L2 (L1 is not coherent).
template <int DT>
__device__ __forceinline__ float ld_shared_f(const void* p, int64_t i) {
  if constexpr (DT == MLX_FLOAT32) return __ldcg((const float*)p + i);
  else return to_f<DT>(__ldcg((const unsigned short*)p + i));
}

// One GEMV phase of a layer: N outputs over K inputs; gated: output n takes rows n and N + n.
struct gemv_phase {
  const uint8_t *w, *s, *b;
  int64_t N, K, wrb, srb;  // bytes per weight row, per scale (and bias) row
  int sets;                // row sets per output: 2 when gated
  int segs;                // segments per stage: sets (plain) or 3 * sets (quantized)
  int per_stage;           // outputs per stage
};

// Segment i of a stage of outputs [n, n + m): weights of set 0 and 1, then scales, then biases.
// The copy starts at the 16-byte boundary at or below the first byte and ends at the one at or
// above the last (inside the allocation: the pool rounds blocks to 64 bytes); `data` is where
// the first row lands.
struct segment {
  const uint8_t* src;
  uint32_t dst, bytes, data;
};
__device__ __forceinline__ segment stage_segment(const gemv_phase& g, int i, int64_t n, int m) {
  const int kind = i / g.sets, set = i % g.sets;  // 0 weights, 1 scales, 2 biases
  const uint8_t* base = kind == 0 ? g.w : kind == 1 ? g.s : g.b;
  const int64_t rb = kind == 0 ? g.wrb : g.srb;
  uint32_t off = 0;
  for (int j = 0; j < i; j++) {
    const int64_t rbj = j / g.sets == 0 ? g.wrb : g.srb;
    off += (uint32_t)((m * rbj + DL_SEG_SLACK) & ~(int64_t)15);
  }
  const uint8_t* first = base + (n + set * g.N) * rb;
  const uint8_t* start = (const uint8_t*)((uintptr_t)first & ~(uintptr_t)15);
  const uint8_t* end = (const uint8_t*)(((uintptr_t)(first + m * rb) + 15) & ~(uintptr_t)15);
  return {start, off, (uint32_t)(end - start), off + (uint32_t)(first - start)};
}

struct dl_shared_state {
  uint64_t full[DL_STAGES], empty[DL_STAGES];
  float inv_freq[128];
  float red[DL_CONSUMERS];
  int flag;
  float res[DL_RES_MAX];  // the residual stream at this block's outputs of the D-wide phases
};

// Where the kernel writes its phase clock when traced (one buffer: the last step's, printed at
// exit; a replayed step writes it too).
constexpr int DL_TRACE_MAX = 10 * 256 + 1;
__device__ unsigned long long dl_trace[DL_TRACE_MAX];
__device__ unsigned long long dl_trace_attn[5 * 256];
__device__ bool dl_tracing;
__device__ __forceinline__ void attn_stamp(int l, int i) {
  if (dl_tracing && blockIdx.x == 0 && threadIdx.x == 32) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    dl_trace_attn[5 * l + i] = t;
  }
}

// Floats per head for attention's scores or, when merging, its chunks' weights.
__host__ __device__ inline int attn_score_width(int capacity) {
  const int chunks = (capacity + DL_KEYS_MIN - 1) / DL_KEYS_MIN;
  return ((chunks > DL_KEYS ? chunks : DL_KEYS) + 3) / 4 * 4;
}

// Values per 16-byte chunk of a quantized row.
template <int BITS>
constexpr int dl_per = BITS ? 128 / BITS : 1;

template <int DT, int BITS>
struct dl_kernel {
  static constexpr bool Q = BITS != 0;
  static constexpr int ES = DT == MLX_FLOAT32 ? 4 : 2;    // activation bytes

  // The GEMV phase `ph` of layer L.
  static __device__ gemv_phase phase(const gpu_decode_layers_args& a, const gpu_decode_layer& L, int ph, int stage_bytes) {
    gemv_phase g;
    const int64_t qkv = (int64_t)(a.p.H + 2 * a.p.KVH) * a.p.hd;
    g.N = ph == PH_QKV ? qkv : ph == PH_GATE_UP ? a.p.I : a.p.D;
    g.K = ph == PH_O ? (int64_t)a.p.H * a.p.hd : ph == PH_DOWN ? a.p.I : a.p.D;
    g.w = (const uint8_t*)L.weight[ph];
    g.s = (const uint8_t*)L.scales[ph];
    g.b = (const uint8_t*)L.biases[ph];
    g.wrb = Q ? g.K * BITS / 8 : g.K * ES;
    g.srb = Q ? (g.K / a.p.group) * ES : 0;
    g.sets = ph == PH_GATE_UP ? 2 : 1;
    g.segs = Q ? 3 * g.sets : g.sets;
    const int64_t per_output = g.sets * (g.wrb + 2 * g.srb);
    g.per_stage = (int)((stage_bytes - g.segs * DL_SEG_SLACK) / per_output);
    return g;
  }

  // This block's outputs of a phase of N outputs.
  static __device__ __forceinline__ void slice(int64_t N, int64_t* n0, int64_t* n1) {
    *n0 = N * blockIdx.x / gridDim.x;
    *n1 = N * (blockIdx.x + 1) / gridDim.x;
  }

  // Element k of a K-long GEMV input in the shared vector: plain, in order; quantized, value j of
  // chunk c (dl_per<BITS> values) at [j / 8][c][j % 8], so that lane c's eight-value loads for one j / 8
  // are consecutive 16-byte words.
  static __device__ __forceinline__ int xslot(int64_t k, int64_t K) {
    if constexpr (!Q) return (int)k;
    else {
      const int64_t chunks = K / dl_per<BITS>, c = k / dl_per<BITS>, j = k % dl_per<BITS>;
      return (int)(((j / 8) * chunks + c) * 8 + j % 8);
    }
  }

  // Producer: every stage of every GEMV phase of every layer, in the consumers' order.
  static __device__ void produce(const gpu_decode_layers_args& a, const gpu_decode_layer* layers, uint8_t* ring,
                                 dl_shared_state* st, int stage_bytes) {
    unsigned it = 0;
    for (int l = 0; l < a.p.n_layers; l++) {
      const gpu_decode_layer L = layers[l];
      for (int ph = PH_QKV; ph <= PH_DOWN; ph++) {
        const gemv_phase g = phase(a, L, ph, stage_bytes);
        int64_t n0, n1;
        slice(g.N, &n0, &n1);
        for (int64_t n = n0; n < n1; n += g.per_stage, it++) {
          const int m = (int)(n1 - n < g.per_stage ? n1 - n : g.per_stage), s = it % DL_STAGES;
          if (it >= DL_STAGES) mbar_wait(&st->empty[s], ((it / DL_STAGES) - 1) & 1);
          segment seg[6];
          unsigned total = 0;
          for (int i = 0; i < g.segs; i++) {
            seg[i] = stage_segment(g, i, n, m);
            total += seg[i].bytes;
          }
          mbar_expect(&st->full[s], total);
          uint8_t* stage = ring + (size_t)s * stage_bytes;
          for (int i = 0; i < g.segs; i++) bulk_copy(stage + seg[i].dst, seg[i].src, seg[i].bytes, &st->full[s]);
        }
      }
    }
  }

  // The lane's share of the dot products of one output's rows (sets of them) with the vector.
  template <int SETS>
  static __device__ __forceinline__ void dot_rows(float* acc, const uint8_t* stage, const segment* seg,
                                                  const gemv_phase& g, int o, const store_t<DT>* xv, int group_shift,
                                                  int lane) {
    const int chunks = (int)(g.wrb / 16);
    const uint4* w[SETS];
#pragma unroll
    for (int r = 0; r < SETS; r++) w[r] = (const uint4*)(stage + seg[r].data + (int64_t)o * g.wrb);
    const uint4* x4 = (const uint4*)xv;
    if constexpr (!Q) {
      for (int c = lane; c < chunks; c += 32) {
        const uint4 xq = x4[c];
#pragma unroll
        for (int r = 0; r < SETS; r++) {
          const uint4 wq = w[r][c];
          const uint32_t xw[4] = {xq.x, xq.y, xq.z, xq.w}, ww[4] = {wq.x, wq.y, wq.z, wq.w};
          float a = acc[r];
#pragma unroll
          for (int t = 0; t < 4; t++) {
            if constexpr (DT == MLX_FLOAT32) {
              a = fmaf(__uint_as_float(xw[t]), __uint_as_float(ww[t]), a);
            } else {
              a = fmaf(to_f<DT>((uint16_t)xw[t]), to_f<DT>((uint16_t)ww[t]), a);
              a = fmaf(to_f<DT>((uint16_t)(xw[t] >> 16)), to_f<DT>((uint16_t)(ww[t] >> 16)), a);
            }
          }
          acc[r] = a;
        }
      }
    } else {
      const store_t<DT>* sc[SETS];
      const store_t<DT>* bi[SETS];
#pragma unroll
      for (int r = 0; r < SETS; r++) {
        sc[r] = (const store_t<DT>*)(stage + seg[SETS + r].data + (int64_t)o * g.srb);
        bi[r] = (const store_t<DT>*)(stage + seg[2 * SETS + r].data + (int64_t)o * g.srb);
      }
      for (int c = lane; c < chunks; c += 32) {
        uint4 u[SETS];
#pragma unroll
        for (int r = 0; r < SETS; r++) u[r] = w[r][c];
        float dot[SETS];
        const float sum = ((const float*)(xv + g.K))[c];
#pragma unroll
        for (int r = 0; r < SETS; r++) dot[r] = 0.0f;
        // Eight values at a time: x's from one 16-byte load, the weights' from one word (4-bit)
        // or two (8-bit) of each row's chunk.
#pragma unroll
        for (int t = 0; t < dl_per<BITS> / 8; t++) {
          const uint4 xq = x4[t * chunks + c];
          const uint32_t xw[4] = {xq.x, xq.y, xq.z, xq.w};
          float xf[8];
#pragma unroll
          for (int e = 0; e < 4; e++) {
            xf[2 * e] = to_f<DT>((uint16_t)xw[e]);
            xf[2 * e + 1] = to_f<DT>((uint16_t)(xw[e] >> 16));
          }
#pragma unroll
          for (int r = 0; r < SETS; r++) {
            const uint32_t words[4] = {u[r].x, u[r].y, u[r].z, u[r].w};
            if constexpr (BITS == 4) {
              const uint32_t lo = (words[t] << 3) & 0x78787878u, hi = (words[t] >> 1) & 0x78787878u;
#pragma unroll
              for (int e = 0; e < 8; e++) dot[r] = fmaf(xf[e], nibble_half(e % 2 ? hi : lo, e / 2), dot[r]);
            } else {
#pragma unroll
              for (int e = 0; e < 8; e++) dot[r] = fmaf(xf[e], byte_biased(words[2 * t + e / 4], e % 4) - 8388608.0f, dot[r]);
            }
          }
        }
        const int grp = (c * dl_per<BITS>) >> group_shift;
#pragma unroll
        for (int r = 0; r < SETS; r++) {
          const float s = to_f<DT>(sc[r][grp]), b = to_f<DT>(bi[r][grp]);
          if constexpr (BITS == 4) acc[r] += fmaf(32.0f * s, dot[r], (b - 16.0f * s) * sum);
          else acc[r] += s * dot[r] + b * sum;
        }
      }
    }
  }

  // Consumers: one GEMV phase over the vector staged in xv; `write` gets each output's sums.
  template <int SETS, typename Write>
  static __device__ void consume(const gemv_phase& g, const uint8_t* ring, dl_shared_state* st, int stage_bytes,
                                 unsigned* it, const store_t<DT>* xv, int group_shift, Write write) {
    const int lane = threadIdx.x & 31, warp = (threadIdx.x >> 5) - 1;
    int64_t n0, n1;
    slice(g.N, &n0, &n1);
    for (int64_t n = n0; n < n1; n += g.per_stage, (*it)++) {
      const int m = (int)(n1 - n < g.per_stage ? n1 - n : g.per_stage), s = *it % DL_STAGES;
      mbar_wait(&st->full[s], (*it / DL_STAGES) & 1);
      const uint8_t* stage = ring + (size_t)s * stage_bytes;
      segment seg[6];
      for (int i = 0; i < g.segs; i++) seg[i] = stage_segment(g, i, n, m);
      // Outputs go to warps by their index in the block's range, so that stages of few outputs
      // still spread over all warps.
      for (int o = (int)((DL_CONSUMERS + warp - (n - n0) % DL_CONSUMERS) % DL_CONSUMERS); o < m; o += DL_CONSUMERS) {
        float acc[2] = {0.0f, 0.0f};
        dot_rows<SETS>(acc, stage, seg, g, o, xv, group_shift, lane);
#pragma unroll
        for (int r = 0; r < SETS; r++)
          for (int d = 16; d > 0; d >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], d);
        if (lane == 0) write(n + o, acc[0], acc[1]);
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(&st->empty[s]);
    }
  }

  // The vector of a phase into shared memory: src (K values, written by other blocks), or its
  // RMS norm with weight w (the norm kernel's roundings).
  static __device__ void stage_vector(store_t<DT>* xv, const void* src, int64_t K, const void* w, float eps,
                                      dl_shared_state* st) {
    const int ct = threadIdx.x - 32;
    if (!w) {
      for (int64_t k = ct; k < K; k += DL_CONSUMERS * 32) xv[xslot(k, K)] = from_f<DT>(ld_shared_f<DT>(src, k));
      consumers_sync();
      chunk_sums(xv, K);
      return;
    }
    // One pass over global memory: x into the shared vector (the weights prefetched into L1
    // meanwhile), then normalised there in place, each thread revisiting its own values.
    float ss = 0.0f;
    for (int64_t k = ct; k < K; k += DL_CONSUMERS * 32) {
      const float v = ld_shared_f<DT>(src, k);
      asm volatile("prefetch.global.L1 [%0];" ::"l"((const char*)w + k * ES));
      xv[xslot(k, K)] = from_f<DT>(v);
      ss += v * v;
    }
    for (int d = 16; d > 0; d >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, d);
    if ((ct & 31) == 0) st->red[ct >> 5] = ss;
    consumers_sync();
    float total = 0.0f;
    for (int i = 0; i < DL_CONSUMERS; i++) total += st->red[i];
    const float inv = __fdiv_rn(1.0f, __fsqrt_rn(__fdiv_rn(total, (float)K) + eps));
    for (int64_t k = ct; k < K; k += DL_CONSUMERS * 32) {
      const int slot = xslot(k, K);
      const float v = to_f<DT>(xv[slot]);
      xv[slot] = from_f<DT>(round_as<DT>(__fmul_rn(round_as<DT>(__fmul_rn(v, inv)), load_as_f32<DT>(w, k))));
    }
    consumers_sync();
    chunk_sums(xv, K);
  }

  // Quantized rows: the sum of x over each 16-byte chunk's values (the bias term's factor),
  // once per phase after the vector, instead of in every warp for every row.
  static __device__ void chunk_sums(store_t<DT>* xv, int64_t K) {
    if constexpr (Q) {
      float* sums = (float*)(xv + K);
      const int64_t chunks = K / dl_per<BITS>;
      for (int64_t c = threadIdx.x - 32; c < chunks; c += DL_CONSUMERS * 32) {
        float sum = 0.0f;
        for (int j = 0; j < dl_per<BITS>; j++) sum += to_f<DT>(xv[xslot(c * dl_per<BITS> + j, K)]);
        sums[c] = sum;
      }
      consumers_sync();
    }
  }

  // Attention of layer l over keys 0..pos: items (query head, chunk of 32 or 64 keys), as many
  // as spread over the grid (few large items, all query heads of a KV head together, kept a
  // handful of SMs busy through chains of latencies: ~11 us a layer at 150 keys). An item
  // copies its chunk's cached keys and values into shared memory asynchronously while it rotates
  // its query (and the new key, in the chunk holding position pos); the item of the first query
  // head of a KV head that holds pos writes the cache slot. Several chunks write partial softmax
  // states (maximum, sum, weighted values); the last of a head's chunks to finish merges them.
  static __device__ void attention(const gpu_decode_layers_args& a, const gpu_decode_layer& L, int l, int pos,
                                   const store_t<DT>* qkv, store_t<DT>* out, float* partials, unsigned* arrivals,
                                   uint8_t* work, dl_shared_state* st) {
    const int ct = threadIdx.x - 32, lane = ct & 31, warp = ct >> 5;
    const int G = a.p.H / a.p.KVH, hd = a.p.hd, half = a.p.rope_dims / 2, row16 = hd * ES / 16, words = hd * ES / 4;
    const int kc = (pos + 1) * a.p.H <= DL_KEYS_MIN * (int)gridDim.x ? DL_KEYS_MIN : DL_KEYS;
    const int nch = (pos + kc) / kc, max_chunks = (a.p.capacity + DL_KEYS_MIN - 1) / DL_KEYS_MIN;
    float* q = (float*)work;        // the rotated query
    float* kn = q + hd;             // the new key (rotated) and value
    float* vn = kn + hd;
    float* score = vn + hd;         // kc scores, later the merge's chunk weights (max_chunks)
    float* stats = score + attn_score_width(a.p.capacity);  // maximum, sum
    store_t<DT>* kt = (store_t<DT>*)(stats + 4);           // kc keys, then kc values
    store_t<DT>* vt = kt + DL_KEYS * hd;
    store_t<DT>* keys = (store_t<DT>*)L.keys;
    store_t<DT>* values = (store_t<DT>*)L.values;
    const float position = __fmul_rn(a.p.rope_scale, (float)pos);
    for (int item = blockIdx.x; item < a.p.H * nch; item += gridDim.x) {
      const int head = item / nch, ch = item % nch, kvh = head / G;
      const bool last = ch == nch - 1;
      if (item == blockIdx.x) attn_stamp(l, 0);
      const int j0 = ch * kc, n = (pos + 1 - j0) < kc ? pos + 1 - j0 : kc;
      const uint4* ksrc = (const uint4*)(keys + ((int64_t)kvh * a.p.capacity + j0) * hd);
      const uint4* vsrc = (const uint4*)(values + ((int64_t)kvh * a.p.capacity + j0) * hd);
      for (int e = ct; e < 2 * n * row16; e += DL_CONSUMERS * 32) {
        const int which = e / (n * row16), f = e % (n * row16);
        if (j0 + f / row16 == pos) continue;  // not written yet: from kn, vn below
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_u32((uint4*)(which ? vt : kt) + f)),
                     "l"(which ? vsrc + f : ksrc + f)
                     : "memory");
      }
      // The rotated query; in the last chunk also the rotated new key and the new value.
      for (int e = ct; e < (last ? 3 : 1) * hd; e += DL_CONSUMERS * 32) {
        const int row = e / hd, d = e % hd;
        if (row == 2) {
          vn[d] = ld_shared_f<DT>(qkv, (int64_t)(a.p.H + a.p.KVH + kvh) * hd + d);
          continue;
        }
        const int64_t base = row == 0 ? (int64_t)head * hd : (int64_t)(a.p.H + kvh) * hd;
        float y;
        if (d >= 2 * half) {
          y = ld_shared_f<DT>(qkv, base + d);
        } else {
          const int i = d < half ? d : d - half;
          const float x1 = ld_shared_f<DT>(qkv, base + i), x2 = ld_shared_f<DT>(qkv, base + i + half);
          float y1, y2;
          rope_rotate(x1, x2, position, st->inv_freq[i], &y1, &y2);
          y = d < half ? y1 : y2;
        }
        (row == 0 ? q : kn)[d] = round_as<DT>(y);
      }
      asm volatile("cp.async.wait_all;" ::: "memory");
      consumers_sync();
      if (last)
        for (int d = ct; d < hd; d += DL_CONSUMERS * 32) {
          const store_t<DT> kq = from_f<DT>(kn[d]), vq = from_f<DT>(vn[d]);
          kt[(pos - j0) * hd + d] = kq;
          vt[(pos - j0) * hd + d] = vq;
          if (head % G == 0) {
            keys[((int64_t)kvh * a.p.capacity + pos) * hd + d] = kq;
            values[((int64_t)kvh * a.p.capacity + pos) * hd + d] = vq;
          }
        }
      consumers_sync();
      if (item == blockIdx.x) attn_stamp(l, 1);
      // Scores: a thread per key over its row's 32-bit words from word j on (rotated: a warp's
      // keys fall in distinct banks), four running sums.
      if (ct < n) {
        const int j = ct;
        const uint32_t* row = (const uint32_t*)kt + j * words;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        const int w0 = j % words;
        for (int i = 0; i < words; i += 4) {  // words is a multiple of 4 (16-byte rows)
#pragma unroll
          for (int u = 0; u < 4; u++) {
            int w = w0 + i + u;
            w = w >= words ? w - words : w;
            const uint32_t v = row[w];
            if constexpr (DT == MLX_FLOAT32) {
              acc[u] = fmaf(q[w], __uint_as_float(v), acc[u]);
            } else {
              acc[u] = fmaf(q[2 * w], to_f<DT>((uint16_t)v), acc[u]);
              acc[u] = fmaf(q[2 * w + 1], to_f<DT>((uint16_t)(v >> 16)), acc[u]);
            }
          }
        }
        score[j] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) * a.p.attn_scale;
      }
      consumers_sync();
      if (item == blockIdx.x) attn_stamp(l, 2);
      // The chunk's maximum, p = exp(s - max) rounded to the dtype in place of the scores, and
      // the sum of the unrounded ones (warp 0; a chunk has at most 64 keys).
      if (warp == 0) {
        const float s0 = lane < n ? score[lane] : -INFINITY, s1 = lane + 32 < n ? score[lane + 32] : -INFINITY;
        float m = fmaxf(s0, s1);
        for (int d = 16; d > 0; d >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, d));
        const float p0 = lane < n ? expf(s0 - m) : 0.0f, p1 = lane + 32 < n ? expf(s1 - m) : 0.0f;
        if (lane < n) score[lane] = round_as<DT>(p0);
        if (lane + 32 < n) score[lane + 32] = round_as<DT>(p1);
        float sum = p0 + p1;
        for (int d = 16; d > 0; d >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, d);
        if (lane == 0) stats[0] = m, stats[1] = sum;
      }
      consumers_sync();
      // Weighted values: a thread per dimension, four running sums over the keys.
      for (int d = ct; d < hd; d += DL_CONSUMERS * 32) {
        float o4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        int j = 0;
        for (; j + 4 <= n; j += 4) {
#pragma unroll
          for (int u = 0; u < 4; u++) o4[u] = fmaf(score[j + u], to_f<DT>(vt[(j + u) * hd + d]), o4[u]);
        }
        for (; j < n; j++) o4[0] = fmaf(score[j], to_f<DT>(vt[j * hd + d]), o4[0]);
        const float o = (o4[0] + o4[1]) + (o4[2] + o4[3]);
        if (nch == 1) {
          out[(int64_t)head * hd + d] = from_f<DT>(__fdiv_rn(o, stats[1]));
        } else {
          float* pp = partials + ((int64_t)head * max_chunks + ch) * (hd + 2);
          if (d == 0) pp[0] = stats[0], pp[1] = stats[1];
          pp[2 + d] = o;
        }
      }
      if (item == blockIdx.x) attn_stamp(l, 3);
      if (nch > 1) {
        consumers_sync();
        if (ct == 0) {
          __threadfence();
          st->flag = atomicAdd(&arrivals[l * a.p.H + head], 1u) == (unsigned)(nch - 1);
          __threadfence();
        }
        consumers_sync();
        if (st->flag) {  // the head's last chunk to finish merges all of them
          const float* p = partials + (int64_t)head * max_chunks * (hd + 2);
          if (warp == 0) {  // each chunk's weight exp(m_c - max), the total sum
            float mx = -INFINITY;
            for (int c = lane; c < nch; c += 32) mx = fmaxf(mx, __ldcg(p + (int64_t)c * (hd + 2)));
            for (int d = 16; d > 0; d >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, d));
            float sum = 0.0f;
            for (int c = lane; c < nch; c += 32) {
              const float f = expf(__ldcg(p + (int64_t)c * (hd + 2)) - mx);
              score[c] = f;
              sum = fmaf(__ldcg(p + (int64_t)c * (hd + 2) + 1), f, sum);
            }
            for (int d = 16; d > 0; d >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, d);
            if (lane == 0) stats[1] = sum;
          }
          consumers_sync();
          for (int d = ct; d < hd; d += DL_CONSUMERS * 32) {
            float o = 0.0f;
#pragma unroll 4
            for (int c = 0; c < nch; c++) o = fmaf(__ldcg(p + (int64_t)c * (hd + 2) + 2 + d), score[c], o);
            out[(int64_t)head * hd + d] = from_f<DT>(__fdiv_rn(o, stats[1]));
          }
        }
      }
      consumers_sync();
      if (item == blockIdx.x) attn_stamp(l, 4);
    }
  }
};

struct dl_scratch {
  void *qkv, *h, *attn, *act;
  float* partials;
  unsigned* sync;  // [0] the grid barrier, then an arrival counter per layer and query head
};

int dl_traced_layers;

void print_trace() {
  unsigned long long t[DL_TRACE_MAX], u[5 * 256];
  if (cudaDeviceSynchronize() != cudaSuccess || cudaMemcpyFromSymbol(t, dl_trace, sizeof t) != cudaSuccess ||
      cudaMemcpyFromSymbol(u, dl_trace_attn, sizeof u) != cudaSuccess)
    return;
  const int n = dl_traced_layers;
  double work[5] = {0, 0, 0, 0, 0}, wait[5] = {0, 0, 0, 0, 0};  // per phase: its own work, then the barrier
  for (int l = 0; l < n; l++)
    for (int i = 0; i < 5; i++) {
      const unsigned long long* q = t + 10 * l + 2 * i;
      work[i] += (double)(q[1] - q[0]) / n / 1e3;
      wait[i] += (double)(q[2] - q[1]) / n / 1e3;
    }
  fprintf(stderr,
          "decode_layers (block 0, mean over %d layers, us, work + barrier): qkv %.2f + %.2f, attention %.2f + %.2f, "
          "o %.2f + %.2f, gate_up %.2f + %.2f, down %.2f + %.2f; all %.1f\n",
          n, work[0], wait[0], work[1], wait[1], work[2], wait[2], work[3], wait[3], work[4], wait[4],
          (double)(t[10 * n] - t[0]) / 1e3);
  double at[4] = {0, 0, 0, 0};
  for (int l = 0; l < n; l++)
    for (int i = 0; i < 4; i++) at[i] += (double)(u[5 * l + i + 1] - u[5 * l + i]) / n / 1e3;
  fprintf(stderr, "attention item 0 (us): tiles+rope %.2f scores %.2f pv %.2f merge %.2f\n", at[0], at[1], at[2], at[3]);
}

__device__ __forceinline__ void stamp(int* k) {
  if (dl_tracing && blockIdx.x == 0 && threadIdx.x == 32) {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    dl_trace[(*k)++] = t;
  }
}

template <int DT, int BITS>
__global__ void __launch_bounds__(DL_THREADS, 1)
    decode_layers_kernel(gpu_decode_layers_args a, const gpu_decode_layer* layers, dl_scratch S, int stage_bytes,
                         int vector_bytes) {
  using K = dl_kernel<DT, BITS>;
  extern __shared__ __align__(128) uint8_t smem[];
  dl_shared_state* st = (dl_shared_state*)smem;
  store_t<DT>* xv = (store_t<DT>*)(smem + DL_HEADER);
  uint8_t* ring = smem + DL_HEADER + vector_bytes;
  if (threadIdx.x == 0) {
    for (int s = 0; s < DL_STAGES; s++) {
      mbar_init(&st->full[s], 1);
      mbar_init(&st->empty[s], DL_CONSUMERS);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  for (int i = threadIdx.x; i < a.p.rope_dims / 2; i += blockDim.x)
    st->inv_freq[i] = rope_inv_freq(i, a.p.rope_dims, a.p.rope_base, a.freqs, a.freqs_dtype, a.freqs_stride);
  __syncthreads();
  if (threadIdx.x < 32) {  // the producer: weights only, which no earlier kernel writes
    if (threadIdx.x == 0) K::produce(a, layers, ring, st, stage_bytes);
    return;
  }
  // The position, clamped into the caches as a dynamic slice update clamps its start (the
  // decoder never passes one outside: lm_static_decode_forward checks it on the host).
  const int p0 = *(const int32_t*)a.position, pos = p0 < 0 ? 0 : p0 >= a.p.capacity ? a.p.capacity - 1 : p0;
  const int group_shift = a.p.group == 32 ? 5 : a.p.group == 64 ? 6 : 7;
  unsigned it = 0, target = 0;
  int k = 0;
  stamp(&k);
  store_t<DT>* qkv = (store_t<DT>*)S.qkv;
  store_t<DT>* h = (store_t<DT>*)S.h;
  store_t<DT>* attn = (store_t<DT>*)S.attn;
  store_t<DT>* act = (store_t<DT>*)S.act;
  store_t<DT>* out = (store_t<DT>*)a.out;
  int64_t D0, D1;
  K::slice(a.p.D, &D0, &D1);
  for (int64_t n = D0 + threadIdx.x - 32; n < D1; n += DL_CONSUMERS * 32) st->res[n - D0] = ld_shared_f<DT>(a.x, n);
  // A phase ends at its grid barrier (block 0's clock on both sides when traced).
  auto end_phase = [&](bool sync) {
    stamp(&k);
    if (sync) grid_sync(S.sync, &target);
    stamp(&k);
  };
  // o_proj's and down's epilogue: the output added to the residual at n, which this block holds
  // (both phases take the same partition of the D outputs), the sum kept and stored in dst.
  auto add_residual = [st, D0](store_t<DT>* dst) {
    return [st, D0, dst](int64_t n, float v, float) {
      const float sum = round_as<DT>(__fadd_rn(st->res[n - D0], round_as<DT>(v)));
      st->res[n - D0] = sum;
      dst[n] = from_f<DT>(sum);
    };
  };
  for (int l = 0; l < a.p.n_layers; l++) {
    const gpu_decode_layer L = layers[l];
    const void* x = l == 0 ? a.x : a.out;
    // q, k, v of the normalised x (+ bias).
    gemv_phase g = K::phase(a, L, PH_QKV, stage_bytes);
    K::stage_vector(xv, x, a.p.D, L.input_norm, a.p.eps, st);
    K::template consume<1>(g, ring, st, stage_bytes, &it, xv, group_shift, [&](int64_t n, float v, float) {
      float y = L.qkv_bias && !K::Q ? v + load_as_f32<DT>(L.qkv_bias, n) : v;
      y = round_as<DT>(y);
      if (L.qkv_bias && K::Q) y = round_as<DT>(y + load_as_f32<DT>(L.qkv_bias, n));
      qkv[n] = from_f<DT>(y);
    });
    end_phase(true);
    K::attention(a, L, l, pos, qkv, attn, S.partials, S.sync + 1, (uint8_t*)xv, st);
    end_phase(true);
    // h = x + o_proj(attention).
    g = K::phase(a, L, PH_O, stage_bytes);
    K::stage_vector(xv, attn, g.K, NULL, 0.0f, st);
    K::template consume<1>(g, ring, st, stage_bytes, &it, xv, group_shift, add_residual(h));
    end_phase(true);
    // act(gate) * up of the normalised h.
    g = K::phase(a, L, PH_GATE_UP, stage_bytes);
    K::stage_vector(xv, h, a.p.D, L.post_norm, a.p.eps, st);
    const bool gelu = a.p.gelu;
    K::template consume<2>(g, ring, st, stage_bytes, &it, xv, group_shift, [&](int64_t n, float gate, float up) {
      const float gr = round_as<DT>(gate), ur = round_as<DT>(up);
      const float av = gelu ? glu_activate<DT, true>(gr) : glu_activate<DT, false>(gr);
      act[n] = from_f<DT>(__fmul_rn(av, ur));
    });
    end_phase(true);
    // The next x = h + down(act).
    g = K::phase(a, L, PH_DOWN, stage_bytes);
    K::stage_vector(xv, act, a.p.I, NULL, 0.0f, st);
    K::template consume<1>(g, ring, st, stage_bytes, &it, xv, group_shift, add_residual(out));
    end_phase(l + 1 < a.p.n_layers);
  }
}

using dl_kernel_fn = void (*)(gpu_decode_layers_args, const gpu_decode_layer*, dl_scratch, int, int);

dl_kernel_fn pick(int dtype, int bits) {
  if (dtype == MLX_BFLOAT16)
    return bits == 4 ? decode_layers_kernel<MLX_BFLOAT16, 4>
           : bits == 8 ? decode_layers_kernel<MLX_BFLOAT16, 8> : decode_layers_kernel<MLX_BFLOAT16, 0>;
  if (dtype == MLX_FLOAT16)
    return bits == 4 ? decode_layers_kernel<MLX_FLOAT16, 4>
           : bits == 8 ? decode_layers_kernel<MLX_FLOAT16, 8> : decode_layers_kernel<MLX_FLOAT16, 0>;
  return bits == 0 ? decode_layers_kernel<MLX_FLOAT32, 0> : nullptr;
}

int elem_bytes(int dtype) { return dtype == MLX_FLOAT32 ? 4 : 2; }

// Shared memory for the staged vector: the widest GEMV input, or attention's work space.
int64_t vector_bytes(const gpu_decode_layers_args* a) {
  int64_t widest = a->p.D > a->p.I ? a->p.D : a->p.I;
  if ((int64_t)a->p.H * a->p.hd > widest) widest = (int64_t)a->p.H * a->p.hd;
  const int64_t attn = 4 * (3 * a->p.hd + attn_score_width(a->p.capacity) + 4) + 2 * DL_KEYS * a->p.hd * elem_bytes(a->dtype);
  const int64_t v = widest * elem_bytes(a->dtype) + (a->p.bits ? widest / (128 / a->p.bits) * 4 : 0);  // + chunk sums
  return ((v > attn ? v : attn) + 127) / 128 * 128;
}

int max_shared(int device) {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return v;
}

// Bytes per stage: the ring takes what the header and the vector leave, in DL_STAGES stages.
int stage_bytes_for(int device, const gpu_decode_layers_args* a) {
  const int64_t left = (int64_t)max_shared(device) - DL_HEADER - vector_bytes(a);
  return left > 0 ? (int)(left / DL_STAGES / 128 * 128) : 0;
}

}  // namespace

extern "C" const char* gpu_decode_layers_refusal(int device, const gpu_decode_layers_args* a) {
  if (!pick(a->dtype, a->p.bits)) return "dtype and quantization (float16/bfloat16 plain or 4/8-bit, float32 plain)";
  if (a->p.KVH <= 0 || a->p.H % a->p.KVH) return "query heads not a multiple of the KV heads";
  if (a->p.hd > 256 || (a->p.hd * elem_bytes(a->dtype)) % 16 || a->p.rope_dims > a->p.hd || a->p.rope_dims % 2)
    return "head size over 256 or not whole 16-byte rows, or odd RoPE dims";
  const int es = elem_bytes(a->dtype);
  const int64_t widths[3] = {a->p.D, (int64_t)a->p.H * a->p.hd, a->p.I};
  for (int i = 0; i < 3; i++) {
    if (a->p.bits ? widths[i] % a->p.group || widths[i] % (128 / a->p.bits) : (widths[i] * es) % 16)
      return "a GEMV width that is not a whole number of 16-byte chunks or groups";
  }
  if ((a->p.D + gpu_sm_count(device) - 1) / gpu_sm_count(device) > DL_RES_MAX) return "hidden size over 128 per SM";
  if (a->p.bits && a->p.group != 32 && a->p.group != 64 && a->p.group != 128) return "group size";
  const int stage = stage_bytes_for(device, a);
  // The widest output: gate and up rows of D inputs, or a down row of I inputs.
  int64_t row = 0;
  for (int i = 0; i < 3; i++) {
    const int64_t K = widths[i], wrb = a->p.bits ? K * a->p.bits / 8 : K * es, srb = a->p.bits ? K / a->p.group * es : 0;
    const int64_t sets = i == 0 ? 2 : 1, need = sets * (wrb + 2 * srb) + (a->p.bits ? 6 : 2) * DL_SEG_SLACK;
    if (need > row) row = need;
  }
  if (stage <= 0 || row > stage) return "rows too wide for the shared-memory stages";
  return NULL;
}

extern "C" int gpu_launch_decode_layers(int device, const gpu_decode_layers_args* a, const gpu_decode_layer* layers) {
  const char* why = gpu_decode_layers_refusal(device, a);
  if (why) return util_error("decode_layers: the GPU kernel does not take this model: %s", why);
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const int es = elem_bytes(a->dtype), stage = stage_bytes_for(device, a), vbytes = (int)vector_bytes(a);
  const int64_t qkv = (int64_t)(a->p.H + 2 * a->p.KVH) * a->p.hd, max_chunks = (a->p.capacity + DL_KEYS_MIN - 1) / DL_KEYS_MIN;
  // One scratch block: the layer table, the activations, attention partials, counters.
  auto up16 = [](int64_t n) { return (n + 255) / 256 * 256; };
  const int64_t table = up16(sizeof(gpu_decode_layer) * (int64_t)a->p.n_layers);
  const int64_t acts = up16(qkv * es) + up16((int64_t)a->p.D * es) + up16((int64_t)a->p.H * a->p.hd * es) + up16((int64_t)a->p.I * es);
  const int64_t partials = up16(4 * (int64_t)a->p.H * max_chunks * (a->p.hd + 2));
  const int64_t sync_bytes = up16(4 * (1 + (int64_t)a->p.n_layers * a->p.H));
  const size_t total = (size_t)(table + acts + partials + sync_bytes);
  void* block = NULL;
  if (gpu_backend_alloc(device, total, &block)) return 1;
  uint8_t* p = (uint8_t*)block;
  dl_scratch S;
  S.qkv = p + table;
  S.h = (uint8_t*)S.qkv + up16(qkv * es);
  S.attn = (uint8_t*)S.h + up16((int64_t)a->p.D * es);
  S.act = (uint8_t*)S.attn + up16((int64_t)a->p.H * a->p.hd * es);
  S.partials = (float*)((uint8_t*)S.act + up16((int64_t)a->p.I * es));
  S.sync = (unsigned*)((uint8_t*)S.partials + partials);
  // MLXC_DL_TRACE: block 0 stamps each phase's end; printed at exit (the last step run).
  static const bool tracing = getenv("MLXC_DL_TRACE") != NULL;
  if (tracing && a->p.n_layers <= (DL_TRACE_MAX - 1) / 10) {
    const bool on = true;
    if (!dl_traced_layers && cudaMemcpyToSymbol(dl_tracing, &on, sizeof on) == cudaSuccess) atexit(print_trace);
    dl_traced_layers = a->p.n_layers;
  }
  int status = gpu_copy_to_device(device, p, layers, sizeof(gpu_decode_layer) * (size_t)a->p.n_layers);
  if (!status) status = gpu_check(cudaMemsetAsync(S.sync, 0, (size_t)sync_bytes, s), "decode_layers counters");
  dl_kernel_fn kernel = pick(a->dtype, a->p.bits);
  const size_t smem = (size_t)DL_HEADER + vbytes + (size_t)stage * DL_STAGES;
  // The ceiling is raised once per kernel (the attribute call costs microseconds a step).
  static size_t allowed[7];
  size_t* ceiling = &allowed[(a->dtype == MLX_BFLOAT16 ? 0 : a->dtype == MLX_FLOAT16 ? 3 : 6) + (a->p.bits == 4 ? 1 : a->p.bits == 8 ? 2 : 0)];
  if (!status && smem > *ceiling) {
    status = gpu_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                       "decode_layers shared memory");
    if (!status) *ceiling = smem;
  }
  if (!status) {
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeCooperative;
    attr[0].val.cooperative = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)gpu_sm_count(device));
    cfg.blockDim = dim3(DL_THREADS);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    status = gpu_check(cudaLaunchKernelEx(&cfg, kernel, *a, (const gpu_decode_layer*)p, S, stage, vbytes),
                       "decode_layers launch");
  }
  gpu_backend_free(device, block, total);
  return status;
}
