/* Softmax kernel over any set of axes of a strided input: each group (the elements sharing the
 * kept indices) is loaded as double, shifted by its maximum, exponentiated, normalised and
 * stored row-major, rounded once to the output dtype. */
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/reduce_plan.h"
#include "backend/cpu/threadpool.h"
#include "ops/reduce_params.h"
#include "util/error.h"

typedef struct {
  const cpu_reduce_plan* plan;
  const core_array* in;
  core_array* out;
  int failed;
} softmax_job;

/* softmax of n values in place. A NaN anywhere makes the group NaN; so does a +inf maximum or
 * an all -inf group (inf - inf), as exp(x - max) does in MLX. */
static void softmax_values(double* v, int64_t n) {
  double max = -INFINITY;
  for (int64_t k = 0; k < n; k++) {
    if (v[k] != v[k]) {
      max = NAN;
      break;
    }
    if (v[k] > max) max = v[k];
  }
  double sum = 0;
  for (int64_t k = 0; k < n; k++) sum += v[k] = exp(v[k] - max);
  for (int64_t k = 0; k < n; k++) v[k] /= sum;
}

static void softmax_groups(void* p, int64_t begin, int64_t end) {
  softmax_job* job = p;
  int64_t n = job->plan->group_size;
  double* values = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (!values) {
    job->failed = 1;
    return;
  }
  for (int64_t g = begin; g < end; g++) {
    cpu_group_load_f64(job->plan, job->in, g, values);
    softmax_values(values, n);
    cpu_group_store_f64(job->plan, job->out, g, values);
  }
  free(values);
}

int cpu_eval_softmax(core_node* node, core_array** outputs) {
  const reduce_params* params = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  int64_t out_strides[CORE_MAX_NDIM];
  core_row_strides(out->shape, out->ndim, out_strides);
  cpu_reduce_plan plan;
  cpu_reduce_plan_init(&plan, in->shape, in->ndim, in->strides, out_strides, params->reduced);
  softmax_job job = {&plan, in, out, 0};
  int64_t group = plan.group_size > 0 ? plan.group_size : 1;
  cpu_parallel_for(plan.groups, 1 + (1 << 13) / group, softmax_groups, &job);
  if (job.failed) return util_error("softmax: out of memory");
  return 0;
}
