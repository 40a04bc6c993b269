/* Reduction kernel: sum, prod, max, min, all, any, mean, var, std, logsumexp, argmax, argmin and
 * median over any set of axes of a strided input.
 *
 * Precision: floating-point values accumulate in double and are rounded once to the output
 * dtype (dense float32 sums add 256-element blocks in float32 lanes first, see sum_f32_dense).
 * Integer sums and products wrap in the output's width, as MLX's do. var is two-pass (mean, then
 * squared deviations), logsumexp subtracts the maximum first.
 *
 * Work is split into groups (output elements) and each group's elements into fixed chunks of
 * CHUNK_MIN or more whose partial results combine in order, so results do not depend on the
 * thread count: groups run in parallel when there are many, chunks when there are few. */
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/reduce_plan.h"
#include "backend/cpu/threadpool.h"
#include "ops/codes.h"
#include "ops/reduce_params.h"
#include "util/error.h"

#define CHUNK_MIN (1 << 16) /* elements per partial result */
#define MAX_CHUNKS 1024     /* so partial results fit on the stack */
#define BLOCK 256           /* values converted at a time */

typedef enum {
  FOLD_SUM,
  FOLD_PROD,
  FOLD_MAX,
  FOLD_MIN,
  FOLD_ARGMAX,
  FOLD_ARGMIN,
  FOLD_ANY,
  FOLD_ALL,
  FOLD_SQDEV,  /* sum of (x - center)^2 */
  FOLD_EXPSUM, /* sum of exp(x - center) */
} fold_op;

typedef struct {
  double f;      /* floating-point accumulator */
  int64_t i;     /* integer accumulator (sums and products wrap as uint64), or all/any */
  int64_t index; /* argmax/argmin: position in the group of the chosen value */
} reduce_acc;

typedef struct {
  const cpu_reduce_plan* plan;
  const core_array* in;
  core_array* out;
  int code;
  int ddof;
  bool int_domain;      /* values as int64: integer and bool inputs of the dtype-keeping ops */
  bool ordered;         /* uint64 values loaded as ordered keys (max, min, argmax, argmin) */
  bool parallel_chunks; /* few large groups: split each group's elements over the threads */
  int64_t chunk;        /* elements per partial result */
  int failed;
} reduce_job;

static reduce_acc acc_identity(fold_op op) {
  reduce_acc a = {0, 0, 0};
  switch (op) {
    case FOLD_PROD: a.f = 1, a.i = 1; break;
    case FOLD_MAX:
    case FOLD_ARGMAX: a.f = -INFINITY, a.i = INT64_MIN; break;
    case FOLD_MIN:
    case FOLD_ARGMIN: a.f = INFINITY, a.i = INT64_MAX; break;
    case FOLD_ALL: a.i = 1; break;
    default: break;
  }
  return a;
}

/* MLX's NaN rules: max/min propagate NaN; argmax/argmin pick the first NaN; ties keep the first
 * index (a later value replaces the held one only when strictly better). */
static inline bool f_better(fold_op op, double x, double held) {
  bool max = op == FOLD_MAX || op == FOLD_ARGMAX;
  if (x != x) return held == held;
  return max ? x > held : x < held;
}
static inline bool i_better(fold_op op, int64_t x, int64_t held) {
  return (op == FOLD_MAX || op == FOLD_ARGMAX) ? x > held : x < held;
}

static void combine(fold_op op, bool int_domain, reduce_acc* a, const reduce_acc* b) {
  switch (op) {
    case FOLD_SUM:
    case FOLD_SQDEV:
    case FOLD_EXPSUM:
      a->f += b->f;
      a->i = (int64_t)((uint64_t)a->i + (uint64_t)b->i);
      break;
    case FOLD_PROD:
      a->f *= b->f;
      a->i = (int64_t)((uint64_t)a->i * (uint64_t)b->i);
      break;
    case FOLD_ANY: a->i |= b->i; break;
    case FOLD_ALL: a->i &= b->i; break;
    default: /* max, min, argmax, argmin: b covers later elements */
      if (int_domain ? i_better(op, b->i, a->i) : f_better(op, b->f, a->f)) *a = *b;
      break;
  }
}

/* Dense float32 sum: 16 float32 lanes add each 256-element block (every lane adds 16 values, so
 * its rounding error stays within a few ulp of the block's magnitude) and block sums accumulate
 * in double. Plain loops that vectorise without reassociation flags. */
static double sum_f32_dense(const float* x, int64_t n) {
  double total = 0;
  int64_t i = 0;
  for (; i + 256 <= n; i += 256) {
    float lane[16] = {0};
    for (int j = 0; j < 256; j += 16)
      for (int k = 0; k < 16; k++) lane[k] += x[i + j + k];
    double block = 0;
    for (int k = 0; k < 16; k++) block += lane[k];
    total += block;
  }
  for (; i < n; i++) total += x[i];
  return total;
}

static void fold_f64(fold_op op, const double* x, int64_t n, int64_t index, double center, reduce_acc* a) {
  switch (op) {
    case FOLD_SUM: {
      double s[4] = {0, 0, 0, 0}; /* independent chains hide the add latency */
      int64_t k = 0;
      for (; k + 4 <= n; k += 4)
        for (int j = 0; j < 4; j++) s[j] += x[k + j];
      for (; k < n; k++) s[0] += x[k];
      a->f += (s[0] + s[1]) + (s[2] + s[3]);
      break;
    }
    case FOLD_PROD:
      for (int64_t k = 0; k < n; k++) a->f *= x[k];
      break;
    case FOLD_MAX:
    case FOLD_MIN:
      for (int64_t k = 0; k < n; k++)
        if (f_better(op, x[k], a->f)) a->f = x[k];
      break;
    case FOLD_ARGMAX:
    case FOLD_ARGMIN:
      for (int64_t k = 0; k < n; k++)
        if (f_better(op, x[k], a->f)) a->f = x[k], a->index = index + k;
      break;
    case FOLD_ANY:
      for (int64_t k = 0; k < n; k++) a->i |= x[k] != 0;
      break;
    case FOLD_ALL:
      for (int64_t k = 0; k < n; k++) a->i &= x[k] != 0;
      break;
    case FOLD_SQDEV:
      for (int64_t k = 0; k < n; k++) a->f += (x[k] - center) * (x[k] - center);
      break;
    case FOLD_EXPSUM:
      for (int64_t k = 0; k < n; k++) a->f += exp(x[k] - center);
      break;
  }
}

static void fold_i64(fold_op op, const int64_t* x, int64_t n, int64_t index, reduce_acc* a) {
  uint64_t u = (uint64_t)a->i;
  switch (op) {
    case FOLD_SUM:
      for (int64_t k = 0; k < n; k++) u += (uint64_t)x[k];
      a->i = (int64_t)u;
      break;
    case FOLD_PROD:
      for (int64_t k = 0; k < n; k++) u *= (uint64_t)x[k];
      a->i = (int64_t)u;
      break;
    case FOLD_MAX:
    case FOLD_MIN:
      for (int64_t k = 0; k < n; k++)
        if (i_better(op, x[k], a->i)) a->i = x[k];
      break;
    case FOLD_ARGMAX:
    case FOLD_ARGMIN:
      for (int64_t k = 0; k < n; k++)
        if (i_better(op, x[k], a->i)) a->i = x[k], a->index = index + k;
      break;
    case FOLD_ANY:
      for (int64_t k = 0; k < n; k++) a->i |= x[k] != 0;
      break;
    case FOLD_ALL:
      for (int64_t k = 0; k < n; k++) a->i &= x[k] != 0;
      break;
    default: break; /* float-only folds never run on integers */
  }
}

typedef struct {
  const reduce_job* job;
  fold_op op;
  double center;
  reduce_acc acc;
} fold_ctx;

static void fold_row(void* p, int64_t index, const int64_t* offsets, const int64_t* strides, int64_t n) {
  fold_ctx* c = p;
  const core_array* in = c->job->in;
  const void* data = core_array_ptr(in);
  if (c->op == FOLD_SUM && in->dtype == MLX_FLOAT32 && strides[0] == 1) {
    c->acc.f += sum_f32_dense((const float*)data + offsets[0], n);
    return;
  }
  for (int64_t start = 0; start < n; start += BLOCK) {
    int64_t m = n - start < BLOCK ? n - start : BLOCK;
    int64_t offset = offsets[0] + start * strides[0];
    if (c->job->int_domain) {
      int64_t buf[BLOCK];
      cpu_load_i64(data, in->dtype, offset, strides[0], m, c->job->ordered, buf);
      fold_i64(c->op, buf, m, index + start, &c->acc);
    } else {
      double buf[BLOCK];
      cpu_load_f64(data, in->dtype, offset, strides[0], m, buf);
      fold_f64(c->op, buf, m, index + start, c->center, &c->acc);
    }
  }
}

/* Folds elements [begin, end) of group g. */
static reduce_acc fold_range(const reduce_job* job, int64_t g, int64_t begin, int64_t end, fold_op op,
                             double center) {
  fold_ctx c = {job, op, center, acc_identity(op)};
  c.acc.index = begin;
  cpu_reduce_walk(job->plan, g, begin, end, fold_row, &c);
  return c.acc;
}

typedef struct {
  const reduce_job* job;
  int64_t g;
  fold_op op;
  double center;
  reduce_acc* partials;
} chunk_job;

static void fold_chunks(void* p, int64_t begin, int64_t end) {
  chunk_job* c = p;
  int64_t size = c->job->plan->group_size, step = c->job->chunk;
  for (int64_t k = begin; k < end; k++) {
    int64_t stop = (k + 1) * step < size ? (k + 1) * step : size;
    c->partials[k] = fold_range(c->job, c->g, k * step, stop, c->op, c->center);
  }
}

/* Folds all of group g: fixed chunks, combined in order. */
static reduce_acc fold_group(const reduce_job* job, int64_t g, fold_op op, double center) {
  int64_t size = job->plan->group_size, step = job->chunk;
  int64_t n_chunks = (size + step - 1) / step;
  reduce_acc partials[MAX_CHUNKS];
  chunk_job c = {job, g, op, center, partials};
  if (job->parallel_chunks) cpu_parallel_for(n_chunks, 1, fold_chunks, &c);
  else fold_chunks(&c, 0, n_chunks);
  reduce_acc acc = acc_identity(op);
  for (int64_t k = 0; k < n_chunks; k++) combine(op, job->int_domain, &acc, &partials[k]);
  return acc;
}

/* Median: MLX sorts NaN after every number and averages the two middle values of even counts. */
static int nan_last_compare(const void* pa, const void* pb) {
  double a = *(const double*)pa, b = *(const double*)pb;
  if (a != a) return b != b ? 0 : 1;
  if (b != b) return -1;
  return a < b ? -1 : a > b;
}

static int group_median(const reduce_job* job, int64_t g, double* result) {
  int64_t n = job->plan->group_size;
  double* values = malloc(sizeof(double) * (size_t)n);
  if (!values) return 1;
  cpu_group_load_f64(job->plan, job->in, g, values);
  qsort(values, (size_t)n, sizeof(double), nan_last_compare);
  *result = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) * 0.5;
  free(values);
  return 0;
}

static const fold_op simple_fold[REDUCE_CODE_COUNT] = {
    [REDUCE_SUM] = FOLD_SUM,       [REDUCE_PROD] = FOLD_PROD,     [REDUCE_MAX] = FOLD_MAX,
    [REDUCE_MIN] = FOLD_MIN,       [REDUCE_ALL] = FOLD_ALL,       [REDUCE_ANY] = FOLD_ANY,
    [REDUCE_ARGMAX] = FOLD_ARGMAX, [REDUCE_ARGMIN] = FOLD_ARGMIN,
};

/* Computes and stores output element g. */
static void reduce_group(reduce_job* job, int64_t g) {
  void* out = core_array_ptr(job->out);
  mlx_dtype dtype = job->out->dtype;
  double n = (double)job->plan->group_size, result = 0;
  switch (job->code) {
    case REDUCE_SUM:
    case REDUCE_PROD:
    case REDUCE_MAX:
    case REDUCE_MIN:
    case REDUCE_ALL:
    case REDUCE_ANY:
    case REDUCE_ARGMAX:
    case REDUCE_ARGMIN: {
      fold_op op = simple_fold[job->code];
      reduce_acc a = fold_group(job, g, op, 0);
      if (op == FOLD_ARGMAX || op == FOLD_ARGMIN) cpu_store_i64(out, dtype, g, a.index, false);
      else if (job->int_domain || op == FOLD_ALL || op == FOLD_ANY) cpu_store_i64(out, dtype, g, a.i, job->ordered);
      else cpu_store_f64(out, dtype, g, a.f);
      return;
    }
    case REDUCE_MEAN: result = fold_group(job, g, FOLD_SUM, 0).f / n; break;
    case REDUCE_VAR:
    case REDUCE_STD: {
      double mean = fold_group(job, g, FOLD_SUM, 0).f / n;
      double divisor = n - job->ddof > 0 ? n - job->ddof : 0;
      result = fold_group(job, g, FOLD_SQDEV, mean).f / divisor;
      if (job->code == REDUCE_STD) result = sqrt(result);
      break;
    }
    case REDUCE_LOGSUMEXP: {
      double max = fold_group(job, g, FOLD_MAX, 0).f;
      result = isfinite(max) ? max + log(fold_group(job, g, FOLD_EXPSUM, max).f) : max;
      break;
    }
    case REDUCE_MEDIAN:
      if (group_median(job, g, &result)) job->failed = 1;
      break;
  }
  cpu_store_f64(out, dtype, g, result);
}

static void reduce_groups(void* p, int64_t begin, int64_t end) {
  for (int64_t g = begin; g < end; g++) reduce_group(p, g);
}

int cpu_eval_reduce(core_node* node, core_array** outputs) {
  const reduce_params* params = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  cpu_reduce_plan plan;
  cpu_reduce_plan_init(&plan, in->shape, in->ndim, in->strides, NULL, params->reduced);
  int code = node->op->code;
  bool keeps_dtype = code == REDUCE_SUM || code == REDUCE_PROD || code == REDUCE_MAX || code == REDUCE_MIN ||
                     code == REDUCE_ALL || code == REDUCE_ANY || code == REDUCE_ARGMAX || code == REDUCE_ARGMIN;
  bool ordering = code == REDUCE_MAX || code == REDUCE_MIN || code == REDUCE_ARGMAX || code == REDUCE_ARGMIN;
  reduce_job job = {
      .plan = &plan,
      .in = in,
      .out = out,
      .code = code,
      .ddof = params->ddof,
      .int_domain = keeps_dtype && !cpu_dtype_is_real_float(in->dtype),
      .ordered = ordering && in->dtype == MLX_UINT64,
      .parallel_chunks = plan.groups < 16 && plan.group_size >= 4 * CHUNK_MIN && code != REDUCE_MEDIAN,
  };
  job.chunk = (plan.group_size + MAX_CHUNKS - 1) / MAX_CHUNKS;
  if (job.chunk < CHUNK_MIN) job.chunk = CHUNK_MIN;
  if (job.parallel_chunks) {
    reduce_groups(&job, 0, plan.groups);
  } else {
    int64_t per_group = plan.group_size > 0 ? plan.group_size : 1;
    cpu_parallel_for(plan.groups, 1 + (1 << 14) / per_group, reduce_groups, &job);
  }
  if (job.failed) return util_error("%s: out of memory", node->op->name);
  return 0;
}
