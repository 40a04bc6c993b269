// Reductions, softmax and scans over any axes of a strided input: the CPU's reduce.c, softmax.c
// and scan.c on the GPU with their arithmetic (floating point accumulated in double and rounded
// once when stored, integers as int64 wrapping in the output's width, uint64 compared as ordered
// keys, MLX's NaN rules, the same identities for empty groups), so that results equal the CPU's
// up to the order of the double additions. Written to be plainly correct rather than fast: a
// team of threads (one, a warp or a block) per group, walking its elements through strides.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include <type_traits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/gpu.h"
#include "ops/codes.h"

namespace {

constexpr uint64_t SIGN_BIT = 1ull << 63;
constexpr int SOFTMAX = -1;  // group_kernel's code for softmax (reduce codes are >= 0)

bool real_float(int dtype) {
  return dtype == MLX_FLOAT16 || dtype == MLX_BFLOAT16 || dtype == MLX_FLOAT32 || dtype == MLX_FLOAT64;
}

// ---- values of any real dtype, as cpu_load_f64/cpu_load_i64/cpu_store_* (reduce_plan.c) ----

__device__ double load_f64(const void* p, int dtype, int64_t i) {
  switch (dtype) {
    case MLX_BOOL: return ((const uint8_t*)p)[i] ? 1.0 : 0.0;
    case MLX_UINT8: return ((const uint8_t*)p)[i];
    case MLX_UINT16: return ((const uint16_t*)p)[i];
    case MLX_UINT32: return ((const uint32_t*)p)[i];
    case MLX_UINT64: return (double)((const uint64_t*)p)[i];
    case MLX_INT8: return ((const int8_t*)p)[i];
    case MLX_INT16: return ((const int16_t*)p)[i];
    case MLX_INT32: return ((const int32_t*)p)[i];
    case MLX_INT64: return (double)((const int64_t*)p)[i];
    case MLX_FLOAT16: return f16_to_f32(((const uint16_t*)p)[i]);
    case MLX_BFLOAT16: return bf16_to_f32(((const uint16_t*)p)[i]);
    case MLX_FLOAT32: return ((const float*)p)[i];
    case MLX_FLOAT64: return ((const double*)p)[i];
    default: return 0.0;
  }
}

// Integers sign-extended; uint64 as its bits, or as an ordered key (top bit flipped) where
// signed comparisons must order it.
__device__ int64_t load_i64(const void* p, int dtype, int64_t i, bool ordered) {
  switch (dtype) {
    case MLX_BOOL: return ((const uint8_t*)p)[i] ? 1 : 0;
    case MLX_UINT8: return ((const uint8_t*)p)[i];
    case MLX_UINT16: return ((const uint16_t*)p)[i];
    case MLX_UINT32: return ((const uint32_t*)p)[i];
    case MLX_UINT64: {
      uint64_t u = ((const uint64_t*)p)[i];
      return (int64_t)(ordered ? u ^ SIGN_BIT : u);
    }
    case MLX_INT8: return ((const int8_t*)p)[i];
    case MLX_INT16: return ((const int16_t*)p)[i];
    case MLX_INT32: return ((const int32_t*)p)[i];
    case MLX_INT64: return ((const int64_t*)p)[i];
    default: return 0;
  }
}

// Halves round through float32 first, as the CPU's store does.
__device__ void store_float(void* p, int dtype, int64_t i, double v) {
  switch (dtype) {
    case MLX_FLOAT16: ((uint16_t*)p)[i] = f32_to_f16((float)v); break;
    case MLX_BFLOAT16: ((uint16_t*)p)[i] = f32_to_bf16((float)v); break;
    case MLX_FLOAT32: ((float*)p)[i] = (float)v; break;
    default: ((double*)p)[i] = v; break;
  }
}

// Integers keep their low bits (wrap).
__device__ void store_i64(void* p, int dtype, int64_t i, int64_t v, bool ordered) {
  uint64_t u = (uint64_t)v;
  switch (dtype) {
    case MLX_BOOL: ((uint8_t*)p)[i] = v != 0; break;
    case MLX_UINT8: ((uint8_t*)p)[i] = (uint8_t)u; break;
    case MLX_UINT16: ((uint16_t*)p)[i] = (uint16_t)u; break;
    case MLX_UINT32: ((uint32_t*)p)[i] = (uint32_t)u; break;
    case MLX_UINT64: ((uint64_t*)p)[i] = ordered ? u ^ SIGN_BIT : u; break;
    case MLX_INT8: ((int8_t*)p)[i] = (int8_t)u; break;
    case MLX_INT16: ((int16_t*)p)[i] = (int16_t)u; break;
    case MLX_INT32: ((int32_t*)p)[i] = (int32_t)u; break;
    case MLX_INT64: ((int64_t*)p)[i] = v; break;
    default: store_float(p, dtype, i, (double)v); break;
  }
}

// Into integers: truncated toward zero, NaN to 0, saturated out of range; bool is v != 0.
__device__ void store_f64(void* p, int dtype, int64_t i, double v) {
  if (dtype == MLX_BOOL) {
    ((uint8_t*)p)[i] = v != 0;
  } else if (dtype == MLX_FLOAT16 || dtype == MLX_BFLOAT16 || dtype == MLX_FLOAT32 || dtype == MLX_FLOAT64) {
    store_float(p, dtype, i, v);
  } else {
    int64_t t = v != v ? 0 : v >= 0x1p63 ? INT64_MAX : v <= -0x1p63 ? INT64_MIN : (int64_t)v;
    store_i64(p, dtype, i, t, false);
  }
}

// ---- where a group's elements are ----

__device__ int64_t kept_offset(const gpu_group_plan& P, int64_t g, int operand) {
  int64_t off = 0;
  for (int d = P.n_kept - 1; d >= 0; d--) {
    int64_t s = P.kept_shape[d], q = g / s;
    off += (g - q * s) * P.kept_strides[operand][d];
    g = q;
  }
  return off;
}

// Offset of element k of a group (row-major over the reduced dims) from the group's start.
__device__ int64_t element_offset(const gpu_group_plan& P, int64_t k, int operand) {
  int64_t off = 0;
  for (int d = P.n_reduced - 1; d >= 0; d--) {
    int64_t s = P.reduced_shape[d], q = k / s;
    off += (k - q * s) * P.reduced_strides[operand][d];
    k = q;
  }
  return off;
}

// ---- reductions: reduce.c's folds ----

enum fold_op { FOLD_SUM, FOLD_PROD, FOLD_MAX, FOLD_MIN, FOLD_ARGMAX, FOLD_ARGMIN, FOLD_ANY, FOLD_ALL, FOLD_SQDEV, FOLD_EXPSUM };

struct acc_t {
  double f;       // floating-point accumulator
  int64_t i;      // integer accumulator (sums and products wrap as uint64), or all/any
  int64_t index;  // argmax/argmin: the held value's position in the group; -1 before any
};

struct group_src {
  const void* x;
  int dtype;
  bool int_domain;  // values as int64: integer and bool inputs of the dtype-keeping reductions
  bool ordered;     // uint64 as ordered keys (max, min, argmax, argmin)
  double center;    // what FOLD_SQDEV and FOLD_EXPSUM subtract (the mean, the maximum)
};

__device__ acc_t identity(int op) {
  acc_t a = {0.0, 0, -1};
  switch (op) {
    case FOLD_PROD: a.f = 1.0, a.i = 1; break;
    case FOLD_MAX:
    case FOLD_ARGMAX: a.f = -INFINITY, a.i = INT64_MIN; break;
    case FOLD_MIN:
    case FOLD_ARGMIN: a.f = INFINITY, a.i = INT64_MAX; break;
    case FOLD_ALL: a.i = 1; break;
    default: break;
  }
  return a;
}

// MLX's NaN rules: max/min propagate NaN, argmax/argmin pick the first NaN; otherwise a value
// replaces the held one only when strictly better (ties keep the first).
__device__ bool f_better(int op, double x, double held) {
  bool max = op == FOLD_MAX || op == FOLD_ARGMAX;
  if (x != x) return held == held;
  return max ? x > held : x < held;
}
__device__ bool i_better(int op, int64_t x, int64_t held) {
  return (op == FOLD_MAX || op == FOLD_ARGMAX) ? x > held : x < held;
}

// Folds element k (at offset `at` of the input) into a; a thread's elements come in order.
__device__ void fold_one(int op, const group_src& s, acc_t& a, int64_t at, int64_t k) {
  bool arg = op == FOLD_ARGMAX || op == FOLD_ARGMIN;
  if (s.int_domain) {
    int64_t v = load_i64(s.x, s.dtype, at, s.ordered);
    switch (op) {
      case FOLD_SUM: a.i = (int64_t)((uint64_t)a.i + (uint64_t)v); break;
      case FOLD_PROD: a.i = (int64_t)((uint64_t)a.i * (uint64_t)v); break;
      case FOLD_ANY: a.i |= v != 0; break;
      case FOLD_ALL: a.i &= v != 0; break;
      default:
        if ((arg && a.index < 0) || i_better(op, v, a.i)) a.i = v, a.index = k;
        break;
    }
    return;
  }
  double v = load_f64(s.x, s.dtype, at);
  switch (op) {
    case FOLD_SUM: a.f += v; break;
    case FOLD_PROD: a.f *= v; break;
    case FOLD_ANY: a.i |= v != 0; break;
    case FOLD_ALL: a.i &= v != 0; break;
    case FOLD_SQDEV: a.f += (v - s.center) * (v - s.center); break;
    case FOLD_EXPSUM: a.f += exp(v - s.center); break;
    default:
      if ((arg && a.index < 0) || f_better(op, v, a.f)) a.f = v, a.index = k;
      break;
  }
}

// Merges b (another thread's elements) into a. For argmax/argmin the earlier of equal values
// wins, whichever thread held it, so the result is the first position as on the CPU.
__device__ void combine(int op, bool int_domain, acc_t& a, const acc_t& b) {
  switch (op) {
    case FOLD_SUM:
    case FOLD_SQDEV:
    case FOLD_EXPSUM:
      a.f += b.f;
      a.i = (int64_t)((uint64_t)a.i + (uint64_t)b.i);
      break;
    case FOLD_PROD:
      a.f *= b.f;
      a.i = (int64_t)((uint64_t)a.i * (uint64_t)b.i);
      break;
    case FOLD_ANY: a.i |= b.i; break;
    case FOLD_ALL: a.i &= b.i; break;
    case FOLD_MAX:
    case FOLD_MIN:
      if (int_domain ? i_better(op, b.i, a.i) : f_better(op, b.f, a.f)) a = b;
      break;
    default: {
      if (b.index < 0) break;
      bool take = a.index < 0;
      if (!take) {
        bool better = int_domain ? i_better(op, b.i, a.i) : f_better(op, b.f, a.f);
        bool equal = int_domain ? b.i == a.i : (b.f == a.f || (b.f != b.f && a.f != a.f));
        take = better || (equal && b.index < a.index);
      }
      if (take) a = b;
      break;
    }
  }
}

__device__ acc_t shuffle_down(const acc_t& a, int by) {
  return {__shfl_down_sync(0xffffffffu, a.f, by), __shfl_down_sync(0xffffffffu, a.i, by),
          __shfl_down_sync(0xffffffffu, a.index, by)};
}
__device__ acc_t shuffle_from(const acc_t& a, int lane) {
  return {__shfl_sync(0xffffffffu, a.f, lane), __shfl_sync(0xffffffffu, a.i, lane),
          __shfl_sync(0xffffffffu, a.index, lane)};
}

// Combines the accumulators of a team of TEAM threads (1, 32 or the block); every member gets
// the result. scratch: one acc_t per warp of the block.
template <int TEAM>
__device__ acc_t team_combine(int op, bool int_domain, acc_t a, acc_t* scratch) {
  if constexpr (TEAM == 1) {
    return a;
  } else {
    // Lane 0 ends with lanes 0..31; lanes whose partner is past 31 hold values nobody reads.
    for (int by = 16; by > 0; by >>= 1) combine(op, int_domain, a, shuffle_down(a, by));
    if constexpr (TEAM == 32) {
      return shuffle_from(a, 0);
    } else {
      int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
      __syncthreads();  // every thread has read the previous pass's scratch
      if (lane == 0) scratch[warp] = a;
      __syncthreads();
      acc_t t = scratch[0];
      for (int w = 1; w < TEAM / 32; w++) combine(op, int_domain, t, scratch[w]);
      return t;
    }
  }
}

// One pass over group g's elements (starting at `base`): this team's folded accumulator.
template <int TEAM>
__device__ acc_t fold_group(int op, const group_src& s, const gpu_group_plan& P, int64_t base,
                            acc_t* scratch) {
  acc_t a = identity(op);
  for (int64_t k = threadIdx.x % TEAM; k < P.group_size; k += TEAM)
    fold_one(op, s, a, base + element_offset(P, k, 0), k);
  return team_combine<TEAM>(op, s.int_domain, a, scratch);
}

// A reduction is one fold, or two (var, std, logsumexp: a center first, the mean or the
// maximum, then squared deviations from it or exponentials of the distance to it).
__host__ __device__ int first_fold(int code) {
  switch (code) {
    case REDUCE_SUM:
    case REDUCE_MEAN:
    case REDUCE_VAR:
    case REDUCE_STD: return FOLD_SUM;
    case REDUCE_PROD: return FOLD_PROD;
    case REDUCE_MAX:
    case REDUCE_LOGSUMEXP:
    case SOFTMAX: return FOLD_MAX;
    case REDUCE_MIN: return FOLD_MIN;
    case REDUCE_ALL: return FOLD_ALL;
    case REDUCE_ANY: return FOLD_ANY;
    case REDUCE_ARGMAX: return FOLD_ARGMAX;
    default: return FOLD_ARGMIN;
  }
}
__host__ __device__ int second_fold(int code) {
  if (code == REDUCE_VAR || code == REDUCE_STD) return FOLD_SQDEV;
  if (code == REDUCE_LOGSUMEXP || code == SOFTMAX) return FOLD_EXPSUM;
  return -1;
}
// The center a first fold gives: the mean (of n elements) or the maximum.
__device__ double center_of(int code, double folded, double n) {
  return code == REDUCE_VAR || code == REDUCE_STD ? folded / n : folded;
}
// The result of a two-fold reduction; logsumexp's second fold is not used when the maximum is
// not finite (a NaN or infinite maximum is the result).
__device__ double two_fold_result(int code, double center, double folded, double n, int ddof) {
  if (code == REDUCE_LOGSUMEXP) return isfinite(center) ? center + log(folded) : center;
  double variance = folded / (n - ddof > 0 ? n - ddof : 0);
  return code == REDUCE_STD ? sqrt(variance) : variance;
}

// Stores the result of a one-fold reduction into out[g].
__device__ void store_one_fold(void* out, int out_dtype, int64_t g, int code, const acc_t& a, double n,
                               bool int_domain, bool ordered) {
  int op = first_fold(code);
  if (code == REDUCE_MEAN) store_f64(out, out_dtype, g, a.f / n);
  else if (op == FOLD_ARGMAX || op == FOLD_ARGMIN) store_i64(out, out_dtype, g, a.index < 0 ? 0 : a.index, false);
  else if (int_domain || op == FOLD_ALL || op == FOLD_ANY) store_i64(out, out_dtype, g, a.i, ordered);
  else store_f64(out, out_dtype, g, a.f);
}

// softmax of group g: exp(x - max) / sum, the maximum NaN when any value is (softmax.c).
template <int TEAM>
__device__ void softmax_group(void* out, int out_dtype, group_src& s, const gpu_group_plan& P, int64_t g,
                              int64_t base, acc_t* scratch) {
  s.center = fold_group<TEAM>(FOLD_MAX, s, P, base, scratch).f;
  double sum = fold_group<TEAM>(FOLD_EXPSUM, s, P, base, scratch).f;
  int64_t out_base = kept_offset(P, g, 1);
  for (int64_t k = threadIdx.x % TEAM; k < P.group_size; k += TEAM) {
    double e = exp(load_f64(s.x, s.dtype, base + element_offset(P, k, 0)) - s.center);
    store_f64(out, out_dtype, out_base + element_offset(P, k, 1), e / sum);
  }
}

// Team t of the grid reduces groups t, t + teams, ... (code: a reduce_code, or SOFTMAX). The
// loop bound is the same for a whole team, so its shuffles and barriers are reached by all.
template <int TEAM>
__global__ void group_kernel(void* out, int out_dtype, const void* x, int dtype, gpu_group_plan P,
                             int code, int ddof, bool int_domain, bool ordered) {
  __shared__ acc_t scratch[32];
  const int teams = blockDim.x / TEAM;
  const double n = (double)P.group_size;
  const bool writer = threadIdx.x % TEAM == 0;
  for (int64_t g = (int64_t)blockIdx.x * teams + threadIdx.x / TEAM; g < P.groups; g += (int64_t)gridDim.x * teams) {
    group_src s = {x, dtype, int_domain, ordered, 0.0};
    int64_t base = kept_offset(P, g, 0);
    if (code == SOFTMAX) {
      softmax_group<TEAM>(out, out_dtype, s, P, g, base, scratch);
      continue;
    }
    acc_t a = fold_group<TEAM>(first_fold(code), s, P, base, scratch);
    int second = second_fold(code);
    if (second < 0) {
      if (writer) store_one_fold(out, out_dtype, g, code, a, n, int_domain, ordered);
      continue;
    }
    s.center = center_of(code, a.f, n);
    double folded = code != REDUCE_LOGSUMEXP || isfinite(s.center) ? fold_group<TEAM>(second, s, P, base, scratch).f : 0;
    if (writer) store_f64(out, out_dtype, g, two_fold_result(code, s.center, folded, n, ddof));
  }
}

template <int TEAM>
int launch_groups(int device, void* out, int out_dtype, const void* x, int dtype, const gpu_group_plan* P, int code,
                  int ddof, bool int_domain, bool ordered) {
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  const int threads = 256, teams = threads / TEAM;
  int64_t blocks = (P->groups + teams - 1) / teams, cap = (int64_t)gpu_sm_count(device) * 16;
  group_kernel<TEAM><<<(unsigned)(blocks < cap ? blocks : cap), threads, 0, s>>>(out, out_dtype, x, dtype, *P, code,
                                                                                  ddof, int_domain, ordered);
  return GPU_LAUNCHED("reduce");
}

// ---- few groups of many elements: each group's chunks folded by separate blocks ----

// Block (c, g) folds elements [c * chunk, (c + 1) * chunk) of group g into partials[g][c];
// centers (one per group) is what the second fold subtracts.
__global__ void chunk_fold_kernel(acc_t* partials, const void* x, int dtype, gpu_group_plan P, int op,
                                  bool int_domain, bool ordered, const double* centers, int64_t chunk) {
  __shared__ acc_t scratch[32];
  int64_t g = blockIdx.y, c = blockIdx.x, begin = c * chunk;
  int64_t end = begin + chunk < P.group_size ? begin + chunk : P.group_size;
  group_src s = {x, dtype, int_domain, ordered, centers ? centers[g] : 0.0};
  int64_t base = kept_offset(P, g, 0);
  acc_t a = identity(op);
  for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) fold_one(op, s, a, base + element_offset(P, k, 0), k);
  a = team_combine<256>(op, int_domain, a, scratch);
  if (threadIdx.x == 0) partials[g * gridDim.x + c] = a;
}

// Block g combines group g's partials (deterministic results): each round of blockDim.x of them
// is copied into shared memory together and folded by a fixed tree of neighbouring ranges (chunk
// order kept, so argmax ties still go to the first index), the rounds in order by thread 0. (One
// thread reading them from global memory one after another took 9 us for 37 partials, and
// from shared memory 13.7 us for 148.) After the first fold of a two-fold reduction it keeps the
// center, otherwise it stores the result.
__global__ void chunk_finish_kernel(void* out, int out_dtype, double* centers, const acc_t* partials, int64_t chunks,
                                    gpu_group_plan P, int code, bool second, int ddof, bool int_domain, bool ordered) {
  extern __shared__ acc_t staged[];  // a round of the group's partials
  const int64_t g = blockIdx.x;
  const int op = second ? second_fold(code) : first_fold(code), t = threadIdx.x;
  acc_t a = identity(op);
  for (int64_t r0 = 0; r0 < chunks; r0 += blockDim.x) {
    const int m = chunks - r0 < blockDim.x ? (int)(chunks - r0) : (int)blockDim.x;  // this round's
    if (t < m) staged[t] = partials[g * chunks + r0 + t];
    __syncthreads();
    for (int width = 1; width < m; width *= 2) {
      if (t % (2 * width) == 0 && t + width < m) combine(op, int_domain, staged[t], staged[t + width]);
      __syncthreads();
    }
    if (t == 0) combine(op, int_domain, a, staged[0]);
    __syncthreads();  // the next round overwrites staged
  }
  if (t) return;
  double n = (double)P.group_size;
  if (second) store_f64(out, out_dtype, g, two_fold_result(code, centers[g], a.f, n, ddof));
  else if (second_fold(code) >= 0) centers[g] = center_of(code, a.f, n);
  else store_one_fold(out, out_dtype, g, code, a, n, int_domain, ordered);
}

int launch_chunks(int device, void* out, int out_dtype, const void* x, int dtype, const gpu_group_plan* P, int code,
                  int ddof, bool int_domain, bool ordered) {
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  // About 8 blocks per SM in all, chunks of 1024 elements or more: a thread's loads go one after
  // another (through the dtype switch), so 4 a thread rather than 16 (a 152k row: 12 -> 5.4 us).
  int64_t chunks = ((int64_t)gpu_sm_count(device) * 8 + P->groups - 1) / P->groups, most = P->group_size / 1024;
  if (chunks > most) chunks = most;
  if (chunks < 1) chunks = 1;
  int64_t chunk = (P->group_size + chunks - 1) / chunks;
  chunks = (P->group_size + chunk - 1) / chunk;
  size_t part_bytes = sizeof(acc_t) * (size_t)(P->groups * chunks), bytes = part_bytes + sizeof(double) * (size_t)P->groups;
  void* scratch = NULL;
  if (gpu_backend_alloc(device, bytes, &scratch)) return 1;
  acc_t* partials = (acc_t*)scratch;
  double* centers = (double*)((char*)scratch + part_bytes);
  dim3 grid((unsigned)chunks, (unsigned)P->groups);
  int status = 0;
  for (int pass = 0; pass < 2 && !status; pass++) {
    int op = pass ? second_fold(code) : first_fold(code);
    if (op < 0) break;
    chunk_fold_kernel<<<grid, 256, 0, s>>>(partials, x, dtype, *P, op, int_domain, ordered, pass ? centers : NULL,
                                             chunk);
    chunk_finish_kernel<<<(unsigned)P->groups, 256, sizeof(acc_t) * 256, s>>>(
        out, out_dtype, centers, partials, chunks, *P, code, pass == 1, ddof, int_domain, ordered);
    status = GPU_LAUNCHED("reduce (chunks)");
  }
  gpu_backend_free(device, scratch, bytes);  // stream-ordered: reused only by later work
  return status;
}

// A thread per group for tiny groups, a warp when groups are small or many, a block each when
// they are large and fewer, and chunks of a group over several blocks when there are too few
// groups to fill the GPU.
int launch_any_team(int device, void* out, int out_dtype, const void* x, int dtype, const gpu_group_plan* P, int code,
                    int ddof, bool int_domain, bool ordered) {
  if (P->groups == 0) return 0;
  int64_t sm = gpu_sm_count(device);
  if (P->group_size <= 16)
    return launch_groups<1>(device, out, out_dtype, x, dtype, P, code, ddof, int_domain, ordered);
  if (P->group_size <= 4096 || P->groups >= sm * 8)
    return launch_groups<32>(device, out, out_dtype, x, dtype, P, code, ddof, int_domain, ordered);
  if (code != SOFTMAX && P->group_size >= 65536 && P->groups < sm * 2 && P->groups <= 65535)
    return launch_chunks(device, out, out_dtype, x, dtype, P, code, ddof, int_domain, ordered);
  return launch_groups<256>(device, out, out_dtype, x, dtype, P, code, ddof, int_domain, ordered);
}

// ---- median: a block per group of at most GPU_MEDIAN_MAX values, sorted in shared memory ----

// Whether a should come after b in the CPU's order (nan_last_compare: NaN after every number).
__device__ __forceinline__ bool after(double a, double b) {
  if (a != a) return b == b;
  if (b != b) return false;
  return a > b;
}

// The group's values as doubles (padded with NaN to n2, a power of two: after every real value,
// so positions below the group size hold what the CPU's sort holds), a bitonic sort, then the
// middle value or the mean of the two middle ones, as the CPU computes it.
__global__ void median_kernel(void* out, int out_dtype, const void* x, int dtype, gpu_group_plan P, int n2) {
  __shared__ double v[GPU_MEDIAN_MAX];
  const int n = (int)P.group_size;
  for (int64_t g = blockIdx.x; g < P.groups; g += gridDim.x) {
    const int64_t base = kept_offset(P, g, 0);
    for (int k = threadIdx.x; k < n2; k += blockDim.x) v[k] = k < n ? load_f64(x, dtype, base + element_offset(P, k, 0)) : NAN;
    __syncthreads();
    for (int size = 2; size <= n2; size <<= 1) {
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        for (int i = threadIdx.x; i < n2 / 2; i += blockDim.x) {
          const int lo = 2 * i - (i & (stride - 1)), hi = lo + stride;
          const double a = v[lo], b = v[hi];
          if (after(a, b) == ((lo & size) == 0)) v[lo] = b, v[hi] = a;
        }
        __syncthreads();
      }
    }
    if (threadIdx.x == 0) store_f64(out, out_dtype, g, n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) * 0.5);
    __syncthreads();  // v is refilled for the next group
  }
}

int launch_median(int device, void* out, int out_dtype, const void* x, int dtype, const gpu_group_plan* P) {
  if (P->groups == 0) return 0;
  if (P->group_size < 1 || P->group_size > GPU_MEDIAN_MAX) return util_error("median: group size not supported on the GPU");
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  int n2 = 2;
  while (n2 < P->group_size) n2 *= 2;
  const int64_t cap = (int64_t)gpu_sm_count(device) * 8;
  median_kernel<<<(unsigned)(P->groups < cap ? P->groups : cap), 256, 0, s>>>(out, out_dtype, x, dtype, *P, n2);
  return GPU_LAUNCHED("median");
}

// ---- scans: scan.c's steps ----

// log(exp(a) + exp(b)) without overflow; NaN propagates, -inf is the identity.
__device__ double log_add_exp(double a, double b) {
  if (a != a || b != b) return a + b;
  double hi = a > b ? a : b, lo = a > b ? b : a;
  if (lo == -INFINITY || hi == INFINITY) return hi;
  return hi + log1p(exp(lo - hi));
}

__device__ double f_step(int code, double acc, double x) {
  switch (code) {
    case SCAN_SUM: return acc + x;
    case SCAN_PROD: return acc * x;
    case SCAN_MAX: return (x != x || acc != acc) ? acc + x : x > acc ? x : acc;  // NaN sticks
    case SCAN_MIN: return (x != x || acc != acc) ? acc + x : x < acc ? x : acc;
    default: return log_add_exp(acc, x);
  }
}

__device__ int64_t i_step(int code, int64_t acc, int64_t x) {
  switch (code) {
    case SCAN_SUM: return (int64_t)((uint64_t)acc + (uint64_t)x);
    case SCAN_PROD: return (int64_t)((uint64_t)acc * (uint64_t)x);
    case SCAN_MAX: return x > acc ? x : acc;
    default: return x < acc ? x : acc;
  }
}

__device__ double f_identity(int code) {
  switch (code) {
    case SCAN_SUM: return 0;
    case SCAN_PROD: return 1;
    case SCAN_MIN: return INFINITY;
    default: return -INFINITY;  // max, logaddexp
  }
}

struct scan_args {
  int code;
  bool reverse, inclusive, int_domain, ordered;
  int64_t int_identity;
};

// A scan's running value T is int64_t for integers and bool (scan.c's int domain), else double.
// DT: x's dtype when known at compile time (float32), else -1 (a switch on dtype: the loads of a
// batch then go one after another).
template <typename T, int DT = -1>
__device__ T scan_load(const void* x, int dtype, int64_t at, const scan_args& A) {
  if constexpr (DT == MLX_FLOAT32 && !std::is_integral<T>::value) return (T)((const float*)x)[at];
  else if constexpr (std::is_integral<T>::value) return load_i64(x, dtype, at, A.ordered);
  else return load_f64(x, dtype, at);
}

template <typename T>
__device__ T scan_step(const scan_args& A, T acc, T x) {
  if constexpr (std::is_integral<T>::value) return i_step(A.code, acc, x);
  else return f_step(A.code, acc, x);
}

template <typename T>
__device__ void scan_store(void* out, int out_dtype, int64_t at, T v, const scan_args& A) {
  if constexpr (std::is_integral<T>::value) store_i64(out, out_dtype, at, v, A.ordered);
  else store_f64(out, out_dtype, at, v);
}

// One thread per line, in order, exactly as scan.c's loop.
template <typename T>
__device__ void scan_line_thread(void* out, int out_dtype, const void* x, int dtype, const gpu_group_plan& P,
                                 int64_t g, const scan_args& A, T identity) {
  int64_t in_at = kept_offset(P, g, 0), out_at = kept_offset(P, g, 1), n = P.group_size;
  int64_t in_step = P.n_reduced ? P.reduced_strides[0][0] : 0, out_step = P.n_reduced ? P.reduced_strides[1][0] : 0;
  T acc = identity;
  for (int64_t k = 0; k < n; k++) {
    int64_t i = A.reverse ? n - 1 - k : k;
    T v = scan_load<T>(x, dtype, in_at + i * in_step, A);
    if (A.inclusive) acc = scan_step<T>(A, acc, v);
    scan_store<T>(out, out_dtype, out_at + i * out_step, acc, A);
    if (!A.inclusive) acc = scan_step<T>(A, acc, v);
  }
}

// A warp's scan of 32 consecutive values (v in lane order) after `carry`: a shuffle scan (the
// steps associate, so only the rounding order of float sums and products differs from the CPU's),
// then the carry of those before. Each lane gets its inclusive and exclusive result; carry becomes
// the last inclusive one, for the next 32.
template <typename T>
__device__ __forceinline__ void warp_scan(const scan_args& A, T v, T& carry, T& incl, T& excl) {
  const int lane = threadIdx.x & 31;
  incl = v;
  for (int by = 1; by < 32; by <<= 1) {
    T before = __shfl_up_sync(0xffffffffu, incl, by);
    if (lane >= by) incl = scan_step<T>(A, before, incl);
  }
  incl = scan_step<T>(A, carry, incl);
  excl = __shfl_up_sync(0xffffffffu, incl, 1);
  if (lane == 0) excl = carry;
  carry = __shfl_sync(0xffffffffu, incl, 31);
}

// Scan positions [begin, end) of line g by one warp, 32 at a time, starting from `carry`; the
// loads of SCAN_BATCH rounds go out together (one at a time, a chunk of 256 positions waited for
// 8 load latencies in turn).
constexpr int SCAN_BATCH = 4;
template <typename T, int DT = -1>
__device__ void scan_line_warp(void* out, int out_dtype, const void* x, int dtype, const gpu_group_plan& P,
                               int64_t g, const scan_args& A, T identity, T carry, int64_t begin, int64_t end) {
  int lane = threadIdx.x & 31;
  int64_t in_at = kept_offset(P, g, 0), out_at = kept_offset(P, g, 1), n = P.group_size;
  int64_t in_step = P.n_reduced ? P.reduced_strides[0][0] : 0, out_step = P.n_reduced ? P.reduced_strides[1][0] : 0;
  for (int64_t start = begin; start < end; start += 32 * SCAN_BATCH) {
    T v[SCAN_BATCH];
#pragma unroll
    for (int u = 0; u < SCAN_BATCH; u++) {
      const int64_t k = start + 32 * u + lane, i = A.reverse ? n - 1 - k : k;
      v[u] = k < end ? scan_load<T, DT>(x, dtype, in_at + i * in_step, A) : identity;
    }
#pragma unroll
    for (int u = 0; u < SCAN_BATCH; u++) {
      if (start + 32 * u >= end) break;  // uniform across the warp
      const int64_t k = start + 32 * u + lane, i = A.reverse ? n - 1 - k : k;
      T incl, excl;
      warp_scan<T>(A, v[u], carry, incl, excl);
      if (k < end) scan_store<T>(out, out_dtype, out_at + i * out_step, A.inclusive ? incl : excl, A);
    }
  }
}

template <typename T>
__device__ T scan_identity(const scan_args& A) {
  if constexpr (std::is_integral<T>::value) return A.int_identity;
  else return f_identity(A.code);
}

template <typename T, bool WARP>
__global__ void scan_kernel(void* out, int out_dtype, const void* x, int dtype, gpu_group_plan P, scan_args A) {
  const T identity = scan_identity<T>(A);
  const int per_block = WARP ? blockDim.x / 32 : blockDim.x;
  const int64_t first = (int64_t)blockIdx.x * per_block + (WARP ? threadIdx.x / 32 : threadIdx.x);
  for (int64_t g = first; g < P.groups; g += (int64_t)gridDim.x * per_block) {
    if constexpr (WARP) scan_line_warp<T>(out, out_dtype, x, dtype, P, g, A, identity, identity, 0, P.group_size);
    else scan_line_thread<T>(out, out_dtype, x, dtype, P, g, A, identity);
  }
}

// ---- few long lines: each line's chunks scanned by separate warps, from the chunks' totals ----

// Warp (c, g) folds chunk c of line g (positions in scan order) into totals[g][c].
template <typename T, int DT>
__global__ void chunk_total_kernel(T* totals, const void* x, int dtype, gpu_group_plan P, scan_args A, int64_t chunk) {
  int64_t g = blockIdx.y, c = blockIdx.x, n = P.group_size, begin = c * chunk;
  int64_t end = begin + chunk < n ? begin + chunk : n;
  int64_t in_at = kept_offset(P, g, 0), in_step = P.n_reduced ? P.reduced_strides[0][0] : 0;
  T acc = scan_identity<T>(A);
#pragma unroll 4
  for (int64_t k = begin + threadIdx.x; k < end; k += 32) {
    int64_t i = A.reverse ? n - 1 - k : k;
    acc = scan_step<T>(A, acc, scan_load<T, DT>(x, dtype, in_at + i * in_step, A));
  }
  // Lane 0 ends with all lanes; lanes whose partner is past 31 hold values nobody reads.
  for (int by = 16; by > 0; by >>= 1) acc = scan_step<T>(A, acc, __shfl_down_sync(0xffffffffu, acc, by));
  if (threadIdx.x == 0) totals[g * gridDim.x + c] = acc;
}

// Block g turns line g's chunk totals into the carries the chunks start from (an exclusive
// scan), in one pass of shared memory: thread t folds its run of consecutive totals, the runs'
// totals are scanned across the block (warp shuffles, then the warps' totals by warp 0), and each
// thread writes its run's carries. (One warp walking 593 totals 32 at a time took 10-12 us.)
template <typename T>
__global__ void chunk_carry_kernel(T* totals, int64_t chunks, scan_args A) {
  extern __shared__ __align__(8) unsigned char carry_smem[];
  T* staged = (T*)carry_smem;  // the line's totals
  __shared__ T warp_totals[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t g = blockIdx.x, per = (chunks + blockDim.x - 1) / blockDim.x, first = threadIdx.x * per;
  const int64_t last = first + per < chunks ? first + per : chunks;
  for (int64_t c = threadIdx.x; c < chunks; c += blockDim.x) staged[c] = totals[g * chunks + c];
  __syncthreads();
  const T identity = scan_identity<T>(A);
  T run = identity;
  for (int64_t c = first; c < last; c++) run = scan_step<T>(A, run, staged[c]);
  T carry = identity, incl, excl;
  warp_scan<T>(A, run, carry, incl, excl);  // carry: the warp's total
  if (lane == 31) warp_totals[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    T wc = identity, wi, we;
    warp_scan<T>(A, lane < warps ? warp_totals[lane] : identity, wc, wi, we);
    if (lane < warps) warp_totals[lane] = we;  // what comes before each warp
  }
  __syncthreads();
  T acc = scan_step<T>(A, warp_totals[warp], excl);  // what comes before this thread's run
  for (int64_t c = first; c < last; c++) {
    totals[g * chunks + c] = acc;
    acc = scan_step<T>(A, acc, staged[c]);
  }
}

template <typename T, int DT>
__global__ void chunk_scan_kernel(void* out, int out_dtype, const void* x, int dtype, gpu_group_plan P, scan_args A,
                                  const T* carries, int64_t chunk) {
  int64_t g = blockIdx.y, c = blockIdx.x, begin = c * chunk;
  int64_t end = begin + chunk < P.group_size ? begin + chunk : P.group_size;
  scan_line_warp<T, DT>(out, out_dtype, x, dtype, P, g, A, scan_identity<T>(A), carries[g * gridDim.x + c], begin,
                        end);
}

template <typename T>
int launch_scan_chunks(cudaStream_t s, int device, void* out, int out_dtype, const void* x, int dtype,
                       const gpu_group_plan* P, const scan_args& A) {
  // About 32 warps per SM in all, chunks of 256 positions or more (each warp's walk over its chunk
  // is a chain of load latencies: chunks of 2048 took ~110 us for one line of 150k).
  int64_t chunks = ((int64_t)gpu_sm_count(device) * 32 + P->groups - 1) / P->groups, most = P->group_size / 256;
  if (chunks > most) chunks = most;
  if (chunks < 1) chunks = 1;
  int64_t chunk = (P->group_size + chunks - 1) / chunks;
  chunks = (P->group_size + chunk - 1) / chunk;
  size_t bytes = sizeof(T) * (size_t)(P->groups * chunks);
  void* totals = NULL;
  if (gpu_backend_alloc(device, bytes, &totals)) return 1;
  dim3 grid((unsigned)chunks, (unsigned)P->groups);
  const bool f32 = dtype == MLX_FLOAT32 && !std::is_integral<T>::value;
  (f32 ? chunk_total_kernel<T, MLX_FLOAT32> : chunk_total_kernel<T, -1>)<<<grid, 32, 0, s>>>((T*)totals, x, dtype, *P,
                                                                                             A, chunk);
  chunk_carry_kernel<T><<<(unsigned)P->groups, 256, sizeof(T) * (size_t)chunks, s>>>((T*)totals, chunks, A);
  (f32 ? chunk_scan_kernel<T, MLX_FLOAT32> : chunk_scan_kernel<T, -1>)<<<grid, 32, 0, s>>>(
      out, out_dtype, x, dtype, *P, A, (const T*)totals, chunk);
  int status = GPU_LAUNCHED("scan (chunks)");
  gpu_backend_free(device, totals, bytes);  // stream-ordered: reused only by later work
  return status;
}

// A thread per line of up to 32, a warp per longer line, and chunks of a line over several
// warps when long lines are too few to fill the GPU.
template <typename T>
int launch_scan(int device, void* out, int out_dtype, const void* x, int dtype, const gpu_group_plan* P,
                const scan_args& A) {
  cudaStream_t s = gpu_stream(device);
  if (!s) return 1;
  int64_t sm = gpu_sm_count(device);
  if (P->group_size >= 16384 && P->groups < sm * 16 && P->groups <= 65535)
    return launch_scan_chunks<T>(s, device, out, out_dtype, x, dtype, P, A);
  bool warp = P->group_size > 32;
  int64_t per_block = warp ? 8 : 256, cap = sm * 16;
  int64_t blocks = (P->groups + per_block - 1) / per_block;
  unsigned grid = (unsigned)(blocks < cap ? blocks : cap);
  if (warp) scan_kernel<T, true><<<grid, 256, 0, s>>>(out, out_dtype, x, dtype, *P, A);
  else scan_kernel<T, false><<<grid, 256, 0, s>>>(out, out_dtype, x, dtype, *P, A);
  return GPU_LAUNCHED("scan");
}

}  // namespace

extern "C" int gpu_launch_reduce(int device, int code, int dtype, int out_dtype, int ddof, void* out, const void* x,
                                 const gpu_group_plan* plan) {
  if (code == REDUCE_MEDIAN) return launch_median(device, out, out_dtype, x, dtype, plan);
  bool keeps_dtype = code == REDUCE_SUM || code == REDUCE_PROD || code == REDUCE_MAX || code == REDUCE_MIN ||
                     code == REDUCE_ALL || code == REDUCE_ANY || code == REDUCE_ARGMAX || code == REDUCE_ARGMIN;
  bool ordering = code == REDUCE_MAX || code == REDUCE_MIN || code == REDUCE_ARGMAX || code == REDUCE_ARGMIN;
  return launch_any_team(device, out, out_dtype, x, dtype, plan, code, ddof, keeps_dtype && !real_float(dtype),
                         ordering && dtype == MLX_UINT64);
}

extern "C" int gpu_launch_softmax_groups(int device, int dtype, int out_dtype, void* out, const void* x,
                                         const gpu_group_plan* plan) {
  return launch_any_team(device, out, out_dtype, x, dtype, plan, SOFTMAX, 0, false, false);
}

extern "C" int gpu_launch_scan(int device, int code, int dtype, int out_dtype, bool reverse, bool inclusive,
                               int64_t int_identity, void* out, const void* x, const gpu_group_plan* plan) {
  if (plan->groups == 0 || plan->group_size == 0) return 0;
  scan_args A;
  A.code = code;
  A.reverse = reverse;
  A.inclusive = inclusive;
  A.int_domain = code != SCAN_LOGADDEXP && !real_float(dtype);
  A.ordered = (code == SCAN_MAX || code == SCAN_MIN) && dtype == MLX_UINT64;
  A.int_identity = int_identity;
  if (A.int_domain) return launch_scan<int64_t>(device, out, out_dtype, x, dtype, plan, A);
  return launch_scan<double>(device, out, out_dtype, x, dtype, plan, A);
}
