/* Parallel strided row iteration (see elementwise.h). */
#include "backend/cpu/elementwise.h"

#include "backend/cpu/threadpool.h"
#include "core/array.h"

typedef struct {
  int ndim, k;
  int shape[CORE_MAX_NDIM];
  int64_t strides[CPU_MAX_OPERANDS][CORE_MAX_NDIM];
  cpu_row_fn fn;
  void* ctx;
} parallel_job;

/* A chunk's rows see offsets relative to the chunk; this adds the chunk's start back. */
typedef struct {
  const parallel_job* job;
  int64_t base[CPU_MAX_OPERANDS];
} chunk_ctx;

static void shifted_row(void* p, const int64_t* offsets, const int64_t* strides, int64_t n) {
  chunk_ctx* c = p;
  int64_t shifted[CPU_MAX_OPERANDS];
  for (int o = 0; o < c->job->k; o++) shifted[o] = offsets[o] + c->base[o];
  c->job->fn(c->job->ctx, shifted, strides, n);
}

static void run_chunk(void* p, int64_t begin, int64_t end) {
  const parallel_job* job = p;
  chunk_ctx c = {.job = job};
  int shape[CORE_MAX_NDIM];
  const int64_t* strides[CPU_MAX_OPERANDS];
  for (int d = 0; d < job->ndim; d++) shape[d] = job->shape[d];
  shape[0] = (int)(end - begin);
  for (int o = 0; o < job->k; o++) {
    c.base[o] = begin * job->strides[o][0];
    strides[o] = job->strides[o];
  }
  cpu_for_each_row(shape, job->ndim, job->k, strides, shifted_row, &c);
}

/* Drops size-1 dims and merges dims every operand walks as one; returns the new ndim, or -1 for
 * an empty shape. A dense array ends as a single dimension, whatever its original shape. */
static int merge_dims(const int* shape_in, int ndim_in, int k, const int64_t* const* strides_in,
                      parallel_job* job) {
  int n = 0;
  for (int i = 0; i < ndim_in; i++) {
    if (shape_in[i] == 0) return -1;
    if (shape_in[i] == 1) continue;
    bool merge = n > 0;
    for (int o = 0; o < k && merge; o++)
      merge = job->strides[o][n - 1] == strides_in[o][i] * shape_in[i];
    if (merge && (int64_t)job->shape[n - 1] * shape_in[i] <= INT32_MAX) {
      job->shape[n - 1] *= shape_in[i];
      for (int o = 0; o < k; o++) job->strides[o][n - 1] = strides_in[o][i];
      continue;
    }
    job->shape[n] = shape_in[i];
    for (int o = 0; o < k; o++) job->strides[o][n] = strides_in[o][i];
    n++;
  }
  return n;
}

void cpu_for_each_row_parallel(const int* shape, int ndim, int k, const int64_t* const* strides,
                               cpu_row_fn fn, void* ctx) {
  parallel_job job = {.k = k, .fn = fn, .ctx = ctx};
  job.ndim = merge_dims(shape, ndim, k, strides, &job);
  if (job.ndim < 0) return;
  if (job.ndim == 0) {
    cpu_for_each_row(shape, ndim, k, strides, fn, ctx);
    return;
  }
  int64_t inner = 1;
  for (int d = 1; d < job.ndim; d++) inner *= job.shape[d];
  int64_t min_rows = CPU_MIN_CHUNK_ELEMENTWISE / inner;
  cpu_parallel_for(job.shape[0], min_rows < 1 ? 1 : min_rows, run_chunk, &job);
}
