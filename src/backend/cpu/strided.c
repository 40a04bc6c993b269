/* Row-by-row iteration with dimension merging (see strided.h). */
#include "backend/cpu/strided.h"

#include "core/array.h"

void cpu_broadcast_strides(const int* in_shape, const int64_t* in_strides, int in_ndim,
                           const int* out_shape, int out_ndim, int64_t* out_strides) {
  int lead = out_ndim - in_ndim;
  for (int i = 0; i < out_ndim; i++) {
    int j = i - lead;
    out_strides[i] = (j < 0 || in_shape[j] == 1) ? 0 : in_strides[j];
  }
}

void cpu_for_each_row(const int* shape_in, int ndim_in, int k, const int64_t* const* strides_in,
                      cpu_row_fn fn, void* ctx) {
  int shape[CORE_MAX_NDIM];
  int64_t strides[CPU_MAX_OPERANDS][CORE_MAX_NDIM];
  int ndim = 0;
  /* Drop size-1 dims; stop early for empty shapes. */
  for (int i = 0; i < ndim_in; i++) {
    if (shape_in[i] == 0) return;
    if (shape_in[i] == 1) continue;
    shape[ndim] = shape_in[i];
    for (int o = 0; o < k; o++) strides[o][ndim] = strides_in[o][i];
    ndim++;
  }
  /* Merge dim i into i+1 when every operand steps through them as one. */
  int merged = 0;
  for (int i = 0; i < ndim; i++) {
    if (merged > 0) {
      int prev = merged - 1;
      int mergeable = 1;
      for (int o = 0; o < k; o++)
        if (strides[o][prev] != strides[o][i] * shape[i]) mergeable = 0;
      if (mergeable) {
        shape[prev] *= shape[i];
        for (int o = 0; o < k; o++) strides[o][prev] = strides[o][i];
        continue;
      }
    }
    shape[merged] = shape[i];
    for (int o = 0; o < k; o++) strides[o][merged] = strides[o][i];
    merged++;
  }
  ndim = merged;
  int64_t offsets[CPU_MAX_OPERANDS] = {0};
  int64_t row_strides[CPU_MAX_OPERANDS];
  if (ndim == 0) {
    for (int o = 0; o < k; o++) row_strides[o] = 1;
    fn(ctx, offsets, row_strides, 1);
    return;
  }
  int last = ndim - 1;
  for (int o = 0; o < k; o++) row_strides[o] = strides[o][last];
  int64_t index[CORE_MAX_NDIM] = {0};
  for (;;) {
    fn(ctx, offsets, row_strides, shape[last]);
    int d = last - 1;
    for (; d >= 0; d--) {
      index[d]++;
      for (int o = 0; o < k; o++) offsets[o] += strides[o][d];
      if (index[d] < shape[d]) break;
      for (int o = 0; o < k; o++) offsets[o] -= strides[o][d] * shape[d];
      index[d] = 0;
    }
    if (d < 0) return;
  }
}
