/* Scan kernel: cumsum, cumprod, cummax, cummin and logcumsumexp along one axis of a strided
 * input. Each lane along the axis is loaded whole (floating point as double, integers and bool
 * as int64 so sums and products wrap in the output's width), scanned, and stored row-major.
 * Floating-point running values are kept in double and rounded on each store. */
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/reduce_plan.h"
#include "backend/cpu/threadpool.h"
#include "ops/codes.h"
#include "ops/reduce_params.h"
#include "util/error.h"

typedef struct {
  const cpu_reduce_plan* plan;
  const core_array* in;
  core_array* out;
  const scan_params* params;
  int code;
  bool int_domain;
  bool ordered; /* uint64 running max/min as ordered keys */
  int failed;
} scan_job;

/* log(exp(a) + exp(b)) without overflow; NaN propagates, -inf is the identity. */
static double log_add_exp(double a, double b) {
  if (a != a || b != b) return a + b;
  double hi = a > b ? a : b, lo = a > b ? b : a;
  if (lo == -INFINITY || hi == INFINITY) return hi;
  return hi + log1p(exp(lo - hi));
}

static double f_step(int code, double acc, double x) {
  switch (code) {
    case SCAN_SUM: return acc + x;
    case SCAN_PROD: return acc * x;
    case SCAN_MAX: return (x != x || acc != acc) ? acc + x : x > acc ? x : acc; /* NaN sticks */
    case SCAN_MIN: return (x != x || acc != acc) ? acc + x : x < acc ? x : acc;
    default: return log_add_exp(acc, x);
  }
}

static int64_t i_step(int code, int64_t acc, int64_t x) {
  switch (code) {
    case SCAN_SUM: return (int64_t)((uint64_t)acc + (uint64_t)x);
    case SCAN_PROD: return (int64_t)((uint64_t)acc * (uint64_t)x);
    case SCAN_MAX: return x > acc ? x : acc;
    default: return x < acc ? x : acc;
  }
}

static double f_identity(int code) {
  switch (code) {
    case SCAN_SUM: return 0;
    case SCAN_PROD: return 1;
    case SCAN_MIN: return INFINITY;
    default: return -INFINITY; /* max, logaddexp */
  }
}

int64_t cpu_scan_int_identity(int code, mlx_dtype dtype) {
  if (code == SCAN_SUM) return 0;
  if (code == SCAN_PROD) return 1;
  bool max = code == SCAN_MAX;
  int bits = (int)core_dtype_size(dtype) * 8;
  if (dtype == MLX_BOOL) return max ? 0 : 1;
  if (dtype == MLX_UINT64) return max ? INT64_MIN : INT64_MAX;
  if (core_dtype_is_unsigned_int(dtype)) return max ? 0 : (int64_t)((UINT64_C(1) << bits) - 1);
  if (dtype == MLX_INT64) return max ? INT64_MIN : INT64_MAX;
  return max ? -(INT64_C(1) << (bits - 1)) : (INT64_C(1) << (bits - 1)) - 1;
}

/* Scans n values in place, in the order the params ask for. */
#define SCAN_LANE(T, STEP, IDENTITY)                                 \
  do {                                                              \
    T acc = (IDENTITY);                                             \
    for (int64_t k = 0; k < n; k++) {                               \
      int64_t i = job->params->reverse ? n - 1 - k : k;             \
      T x = v[i];                                                   \
      if (job->params->inclusive) acc = STEP(job->code, acc, x);    \
      v[i] = acc;                                                   \
      if (!job->params->inclusive) acc = STEP(job->code, acc, x);   \
    }                                                               \
  } while (0)

static void scan_lanes(void* p, int64_t begin, int64_t end) {
  scan_job* job = p;
  int64_t n = job->plan->group_size;
  void* values = malloc(8 * (size_t)(n ? n : 1)); /* n doubles or int64s */
  if (!values) {
    job->failed = 1;
    return;
  }
  for (int64_t g = begin; g < end; g++) {
    if (job->int_domain) {
      int64_t* v = values;
      cpu_group_load_i64(job->plan, job->in, g, job->ordered, v);
      SCAN_LANE(int64_t, i_step, cpu_scan_int_identity(job->code, job->in->dtype));
      cpu_group_store_i64(job->plan, job->out, g, job->ordered, v);
    } else {
      double* v = values;
      cpu_group_load_f64(job->plan, job->in, g, v);
      SCAN_LANE(double, f_step, f_identity(job->code));
      cpu_group_store_f64(job->plan, job->out, g, v);
    }
  }
  free(values);
}

int cpu_eval_scan(core_node* node, core_array** outputs) {
  const scan_params* params = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  cpu_reduce_plan plan;
  cpu_reduce_plan_axis(&plan, in, out, params->axis);
  int code = node->op->code;
  scan_job job = {
      .plan = &plan,
      .in = in,
      .out = out,
      .params = params,
      .code = code,
      .int_domain = code != SCAN_LOGADDEXP && !cpu_dtype_is_real_float(in->dtype),
      .ordered = (code == SCAN_MAX || code == SCAN_MIN) && in->dtype == MLX_UINT64,
  };
  int64_t lane = plan.group_size > 0 ? plan.group_size : 1;
  cpu_parallel_for(plan.groups, 1 + (1 << 14) / lane, scan_lanes, &job);
  if (job.failed) return util_error("%s: out of memory", node->op->name);
  return 0;
}
