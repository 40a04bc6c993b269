// Strided iteration shared by the elementwise CUDA kernels: a collapsed layout of up to NOPS
// operands over one iteration space, and each element's offsets in it.
#pragma once
#include <stdint.h>

#include "backend/cuda/launch.h"

template <int NOPS>
struct nd_layout {
  int ndim;
  int shape[GPU_MAX_NDIM];
  int64_t st[NOPS][GPU_MAX_NDIM];
};

// Builds a collapsed layout (size-1 dims dropped, dims contiguous for every operand merged);
// returns the element count.
template <int NOPS>
int64_t make_layout(nd_layout<NOPS>* L, const int* shape, int ndim, const int64_t* const* strides) {
  int64_t n = 1;
  L->ndim = 0;
  for (int d = 0; d < ndim; d++) {
    n *= shape[d];
    if (shape[d] == 1) continue;
    int k = L->ndim;
    bool merge = k > 0;
    for (int o = 0; o < NOPS && merge; o++)
      merge = L->st[o][k - 1] == strides[o][d] * (int64_t)shape[d];
    if (merge) {
      L->shape[k - 1] *= shape[d];
      for (int o = 0; o < NOPS; o++) L->st[o][k - 1] = strides[o][d];
    } else {
      L->shape[k] = shape[d];
      for (int o = 0; o < NOPS; o++) L->st[o][k] = strides[o][d];
      L->ndim++;
    }
  }
  return n;
}

// Element offsets of flat (row-major) index i in each operand.
template <int NOPS>
__device__ __forceinline__ void offsets_of(const nd_layout<NOPS>& L, int64_t i, int64_t* off) {
  for (int o = 0; o < NOPS; o++) off[o] = 0;
  for (int d = L.ndim - 1; d >= 0; d--) {
    int64_t s = L.shape[d], q = i / s, r = i - q * s;
    for (int o = 0; o < NOPS; o++) off[o] += r * L.st[o][d];
    i = q;
  }
}

// Blocks for a grid-stride loop over n elements (capped; the loop covers the rest).
inline unsigned grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  return (unsigned)(blocks > 65535 * 8 ? 65535 * 8 : blocks);
}
