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
 * thread count: groups run in parallel when there are many, chunks when there are few. When
 * neighbouring groups are closer in memory than a group's own elements (reducing leading axes,
 * "column" reductions), blocks of up to BLOCK groups are folded together, one contiguous run of
 * lanes per reduced position, instead of one strided walk per group. */
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/reduce_plan.h"
#include "backend/cpu/threadpool.h"
#include "backend/cpu/vec.h"
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
  double center; /* what FOLD_SQDEV and FOLD_EXPSUM subtract (the mean, the maximum) */
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
  bool lanes;           /* fold blocks of neighbouring groups together (column reductions) */
  int64_t lane_stride;  /* element distance between neighbouring groups, in lane mode */
  int64_t chunk;        /* elements per partial result */
  int failed;
} reduce_job;

static reduce_acc acc_identity(fold_op op) {
  reduce_acc a = {0, 0, 0, 0};
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

/* Folds x[0..n) into accumulators: with acc_step 0 all into *acc (element k at group position
 * index + k), with acc_step 1 element k into acc[k] (all at group position index). */
static void fold_f64(fold_op op, const double* x, int64_t n, int64_t index, reduce_acc* acc, int64_t acc_step) {
  if (op == FOLD_SUM && acc_step == 0) {
    double s[4] = {0, 0, 0, 0}; /* independent chains hide the add latency */
    int64_t k = 0;
    for (; k + 4 <= n; k += 4)
      for (int j = 0; j < 4; j++) s[j] += x[k + j];
    for (; k < n; k++) s[0] += x[k];
    acc->f += (s[0] + s[1]) + (s[2] + s[3]);
    return;
  }
  int64_t index_step = acc_step ? 0 : 1;
  for (int64_t k = 0; k < n; k++) {
    reduce_acc* a = acc + k * acc_step;
    double v = x[k];
    switch (op) {
      case FOLD_SUM: a->f += v; break;
      case FOLD_PROD: a->f *= v; break;
      case FOLD_MAX:
      case FOLD_MIN:
        if (f_better(op, v, a->f)) a->f = v;
        break;
      case FOLD_ARGMAX:
      case FOLD_ARGMIN:
        if (f_better(op, v, a->f)) a->f = v, a->index = index + k * index_step;
        break;
      case FOLD_ANY: a->i |= v != 0; break;
      case FOLD_ALL: a->i &= v != 0; break;
      case FOLD_SQDEV: a->f += (v - a->center) * (v - a->center); break;
      case FOLD_EXPSUM: a->f += exp(v - a->center); break;
    }
  }
}

static void fold_i64(fold_op op, const int64_t* x, int64_t n, int64_t index, reduce_acc* acc, int64_t acc_step) {
  int64_t index_step = acc_step ? 0 : 1;
  for (int64_t k = 0; k < n; k++) {
    reduce_acc* a = acc + k * acc_step;
    int64_t v = x[k];
    switch (op) {
      case FOLD_SUM: a->i = (int64_t)((uint64_t)a->i + (uint64_t)v); break;
      case FOLD_PROD: a->i = (int64_t)((uint64_t)a->i * (uint64_t)v); break;
      case FOLD_MAX:
      case FOLD_MIN:
        if (i_better(op, v, a->i)) a->i = v;
        break;
      case FOLD_ARGMAX:
      case FOLD_ARGMIN:
        if (i_better(op, v, a->i)) a->i = v, a->index = index + k * index_step;
        break;
      case FOLD_ANY: a->i |= v != 0; break;
      case FOLD_ALL: a->i &= v != 0; break;
      default: break; /* float-only folds never run on integers */
    }
  }
}

typedef struct {
  const reduce_job* job;
  fold_op op;
  reduce_acc* acc;   /* one accumulator (row mode) or one per lane */
  int64_t lanes;     /* lane mode: groups folded together */
} fold_ctx;

/* Loads n values at `offset` (stride) and folds them as fold_f64/fold_i64 do. */
static void fold_values(const fold_ctx* c, int64_t offset, int64_t stride, int64_t n, int64_t index,
                        int64_t acc_step) {
  const core_array* in = c->job->in;
  const void* data = core_array_ptr(in);
  for (int64_t start = 0; start < n; start += BLOCK) {
    int64_t m = n - start < BLOCK ? n - start : BLOCK;
    int64_t at = offset + start * stride;
    reduce_acc* acc = c->acc + start * acc_step;
    if (c->job->int_domain) {
      int64_t buf[BLOCK];
      cpu_load_i64(data, in->dtype, at, stride, m, c->job->ordered, buf);
      fold_i64(c->op, buf, m, index + start * !acc_step, acc, acc_step);
    } else {
      double buf[BLOCK];
      cpu_load_f64(data, in->dtype, at, stride, m, buf);
      fold_f64(c->op, buf, m, index + start * !acc_step, acc, acc_step);
    }
  }
}

/* Position of the first maximum of dense float32 x[0..n), n > 0, or of its first NaN (MLX's
 * max and argmax): the maximum over 16 lanes first, in a loop that vectorises, then a search
 * for the first value equal to it (or unordered), 16 at a time. */
static int64_t argmax_f32_dense(const float* x, int64_t n) {
  float lane[16];
  int nan = 0;
  for (int k = 0; k < 16; k++) lane[k] = x[0];
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; k++) {
      lane[k] = x[i + k] > lane[k] ? x[i + k] : lane[k];
      nan |= x[i + k] != x[i + k];
    }
  float top = lane[0];
  for (int k = 1; k < 16; k++) top = lane[k] > top ? lane[k] : top;
  for (; i < n; i++) {
    top = x[i] > top ? x[i] : top;
    nan |= x[i] != x[i];
  }
  for (i = 0; i + 16 <= n; i += 16) {
    int hit = 0;
    for (int k = 0; k < 16; k++) hit |= nan ? x[i + k] != x[i + k] : x[i + k] == top;
    if (hit) break;
  }
  for (; i < n; i++)
    if (nan ? x[i] != x[i] : x[i] == top) return i;
  return n - 1; /* not reached: some value is the maximum */
}

/* Dense float32 rows of the reductions that run over a language model's logits every decode
 * step (max, argmax and logsumexp over the vocabulary): the generic path converted each value
 * to double and took libm's exp, 0.9 ms per step for 151936 values. The maxima are the same;
 * the exp sum uses vec.h's float32 exp (within a few ulp). */
static bool fold_f32_dense(fold_ctx* c, const float* x, int64_t n, int64_t index) {
  reduce_acc* a = c->acc;
  if (c->op == FOLD_SUM) {
    a->f += sum_f32_dense(x, n);
    return true;
  }
  if ((c->op == FOLD_MAX || c->op == FOLD_ARGMAX) && n > 0) {
    int64_t k = argmax_f32_dense(x, n);
    if (f_better(c->op, x[k], a->f)) a->f = x[k], a->index = index + k;
    return true;
  }
  if (c->op == FOLD_EXPSUM && isfinite(a->center)) {
    float scratch[256];
    for (int64_t i = 0; i < n; i += 256)
      a->f += cpu_vec_exp_sum(scratch, x + i, n - i < 256 ? n - i : 256, (float)a->center);
    return true;
  }
  return false;
}

static void fold_row(void* p, int64_t index, const int64_t* offsets, const int64_t* strides, int64_t n) {
  fold_ctx* c = p;
  const core_array* in = c->job->in;
  if (in->dtype == MLX_FLOAT32 && strides[0] == 1 &&
      fold_f32_dense(c, (const float*)core_array_ptr(in) + offsets[0], n, index))
    return;
  fold_values(c, offsets[0], strides[0], n, index, 0);
}

/* Lane mode: the row holds group g0's elements; every other lane is lane_stride further on. */
static void fold_lane_row(void* p, int64_t index, const int64_t* offsets, const int64_t* strides, int64_t n) {
  fold_ctx* c = p;
  const core_array* in = c->job->in;
  int64_t lane_stride = c->job->lane_stride;
  for (int64_t k = 0; k < n; k++) {
    int64_t offset = offsets[0] + k * strides[0];
    if (c->op == FOLD_SUM && in->dtype == MLX_FLOAT32 && lane_stride == 1) {
      const float* x = (const float*)core_array_ptr(in) + offset;
      for (int64_t j = 0; j < c->lanes; j++) c->acc[j].f += x[j];
      continue;
    }
    fold_values(c, offset, lane_stride, c->lanes, index + k, 1);
  }
}

/* Folds elements [begin, end) of group g. */
static reduce_acc fold_range(const reduce_job* job, int64_t g, int64_t begin, int64_t end, fold_op op,
                             double center) {
  reduce_acc acc = acc_identity(op);
  acc.index = begin;
  acc.center = center;
  fold_ctx c = {job, op, &acc, 1};
  cpu_reduce_walk(job->plan, g, begin, end, fold_row, &c);
  return acc;
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
  acc.center = center;
  return acc;
}

/* Folds groups [g0, g0 + count) into accs (count is 1 unless in lane mode); each accumulator's
 * center is kept. */
static void fold_block(const reduce_job* job, int64_t g0, int64_t count, fold_op op, reduce_acc* accs) {
  if (!job->lanes) {
    accs[0] = fold_group(job, g0, op, accs[0].center);
    return;
  }
  for (int64_t j = 0; j < count; j++) {
    double center = accs[j].center;
    accs[j] = acc_identity(op);
    accs[j].center = center;
  }
  fold_ctx c = {job, op, accs, count};
  cpu_reduce_walk(job->plan, g0, 0, job->plan->group_size, fold_lane_row, &c);
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

/* Computes and stores output elements [g0, g0 + count). */
static void reduce_block(reduce_job* job, int64_t g0, int64_t count) {
  void* out = core_array_ptr(job->out);
  mlx_dtype dtype = job->out->dtype;
  double n = (double)job->plan->group_size;
  reduce_acc a[BLOCK];
  for (int64_t j = 0; j < count; j++) a[j].center = 0;
  int code = job->code;
  if (code == REDUCE_MEDIAN) { /* never in lane mode: count is 1 */
    double result = 0;
    if (group_median(job, g0, &result)) job->failed = 1;
    cpu_store_f64(out, dtype, g0, result);
    return;
  }
  if (code != REDUCE_MEAN && code != REDUCE_VAR && code != REDUCE_STD && code != REDUCE_LOGSUMEXP) {
    fold_op op = simple_fold[code];
    fold_block(job, g0, count, op, a);
    for (int64_t j = 0; j < count; j++) {
      if (op == FOLD_ARGMAX || op == FOLD_ARGMIN) cpu_store_i64(out, dtype, g0 + j, a[j].index, false);
      else if (job->int_domain || op == FOLD_ALL || op == FOLD_ANY)
        cpu_store_i64(out, dtype, g0 + j, a[j].i, job->ordered);
      else cpu_store_f64(out, dtype, g0 + j, a[j].f);
    }
    return;
  }
  /* Two passes: the center (mean or maximum), then squared deviations or exponentials. */
  bool lse = code == REDUCE_LOGSUMEXP;
  fold_block(job, g0, count, lse ? FOLD_MAX : FOLD_SUM, a);
  for (int64_t j = 0; j < count; j++) a[j].center = lse ? a[j].f : a[j].f / n;
  if (code != REDUCE_MEAN) fold_block(job, g0, count, lse ? FOLD_EXPSUM : FOLD_SQDEV, a);
  for (int64_t j = 0; j < count; j++) {
    double c = a[j].center, result = c;
    if (code == REDUCE_LOGSUMEXP) result = isfinite(c) ? c + log(a[j].f) : c;
    if (code == REDUCE_VAR || code == REDUCE_STD) result = a[j].f / (n - job->ddof > 0 ? n - job->ddof : 0);
    if (code == REDUCE_STD) result = sqrt(result);
    cpu_store_f64(out, dtype, g0 + j, result);
  }
}

/* Row mode: one group per block. */
static void reduce_groups(void* p, int64_t begin, int64_t end) {
  for (int64_t g = begin; g < end; g++) reduce_block(p, g, 1);
}

/* Lane mode: block b covers up to BLOCK neighbours along the innermost kept dim. */
static void reduce_lane_blocks(void* p, int64_t begin, int64_t end) {
  reduce_job* job = p;
  int64_t inner = job->plan->kept_shape[job->plan->n_kept - 1];
  int64_t per_row = (inner + BLOCK - 1) / BLOCK;
  for (int64_t b = begin; b < end; b++) {
    int64_t col = (b % per_row) * BLOCK;
    int64_t count = inner - col < BLOCK ? inner - col : BLOCK;
    reduce_block(job, (b / per_row) * inner + col, count);
  }
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
  /* Lane mode when neighbouring groups are nearer than a group's consecutive elements. */
  if (!job.parallel_chunks && code != REDUCE_MEDIAN && plan.n_kept > 0 && plan.n_reduced > 0 && plan.groups > 1) {
    int64_t lane = plan.kept_strides[0][plan.n_kept - 1], step = plan.reduced_strides[0][plan.n_reduced - 1];
    job.lanes = llabs(lane) < llabs(step);
    job.lane_stride = lane;
  }
  if (job.parallel_chunks) {
    reduce_groups(&job, 0, plan.groups);
  } else if (job.lanes) {
    int64_t inner = plan.kept_shape[plan.n_kept - 1];
    int64_t blocks = plan.groups / inner * ((inner + BLOCK - 1) / BLOCK);
    int64_t block_size = (plan.group_size > 0 ? plan.group_size : 1) * BLOCK;
    cpu_parallel_for(blocks, 1 + (1 << 14) / block_size, reduce_lane_blocks, &job);
  } else {
    int64_t per_group = plan.group_size > 0 ? plan.group_size : 1;
    cpu_parallel_for(plan.groups, 1 + (1 << 14) / per_group, reduce_groups, &job);
  }
  if (job.failed) return util_error("%s: out of memory", node->op->name);
  return 0;
}
