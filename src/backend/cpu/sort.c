/* Sort kernel: sort, argsort, partition and argpartition along one axis of a strided input.
 * Each lane is loaded as (key, index) items, keys as double for floating point (exact for
 * every float dtype) and as int64 for integers and bool (uint64 as ordered keys). Items compare
 * by key, NaN after every number, and then by index, so every order is total: sorts are stable
 * whatever the algorithm, and a partition (quickselect) is deterministic. */
#include <stdlib.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/reduce_plan.h"
#include "backend/cpu/threadpool.h"
#include "ops/codes.h"
#include "ops/reduce_params.h"
#include "util/error.h"

typedef struct {
  union {
    double f;
    int64_t i;
  } key;
  int64_t index;
} sort_item;

static int compare_float_items(const void* pa, const void* pb) {
  const sort_item *a = pa, *b = pb;
  double x = a->key.f, y = b->key.f;
  bool x_nan = x != x, y_nan = y != y;
  if (x_nan != y_nan) return x_nan ? 1 : -1;
  if (!x_nan && x != y) return x < y ? -1 : 1;
  return (a->index > b->index) - (a->index < b->index);
}

static int compare_int_items(const void* pa, const void* pb) {
  const sort_item *a = pa, *b = pb;
  if (a->key.i != b->key.i) return a->key.i < b->key.i ? -1 : 1;
  return (a->index > b->index) - (a->index < b->index);
}

typedef int (*item_compare)(const void*, const void*);

static void swap_items(sort_item* a, sort_item* b) {
  sort_item t = *a;
  *a = *b;
  *b = t;
}

/* Rearranges items so that items[k] is the one a sort would put there, with none greater
 * before it and none smaller after it (Hoare quickselect, median-of-three pivots). */
static void select_kth(sort_item* items, int64_t n, int64_t k, item_compare cmp) {
  int64_t lo = 0, hi = n - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (cmp(&items[mid], &items[lo]) < 0) swap_items(&items[mid], &items[lo]);
    if (cmp(&items[hi], &items[lo]) < 0) swap_items(&items[hi], &items[lo]);
    if (cmp(&items[hi], &items[mid]) < 0) swap_items(&items[hi], &items[mid]);
    sort_item pivot = items[mid];
    int64_t i = lo, j = hi;
    while (i <= j) {
      while (cmp(&items[i], &pivot) < 0) i++;
      while (cmp(&items[j], &pivot) > 0) j--;
      if (i <= j) swap_items(&items[i++], &items[j--]);
    }
    /* Now items[lo..j] <= pivot <= items[i..hi], and items strictly between are the pivot. */
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

typedef struct {
  const cpu_reduce_plan* plan;
  const core_array* in;
  core_array* out;
  int code;
  int kth;
  bool int_domain;
  int failed;
} sort_job;

static void sort_lanes(void* p, int64_t begin, int64_t end) {
  sort_job* job = p;
  int64_t n = job->plan->group_size;
  size_t count = (size_t)(n ? n : 1);
  sort_item* items = malloc(sizeof(sort_item) * count);
  int64_t* keys = malloc(sizeof(int64_t) * count); /* lane values in, results out */
  if (!items || !keys) {
    job->failed = 1;
    free(items);
    free(keys);
    return;
  }
  double* fkeys = (double*)keys; /* same size: floats use the buffer as doubles */
  item_compare cmp = job->int_domain ? compare_int_items : compare_float_items;
  bool indices = job->code == SORT_INDICES || job->code == PARTITION_INDICES;
  for (int64_t g = begin; g < end; g++) {
    if (job->int_domain) cpu_group_load_i64(job->plan, job->in, g, true, keys);
    else cpu_group_load_f64(job->plan, job->in, g, fkeys);
    for (int64_t k = 0; k < n; k++) {
      if (job->int_domain) items[k].key.i = keys[k];
      else items[k].key.f = fkeys[k];
      items[k].index = k;
    }
    if (job->code == SORT_VALUES || job->code == SORT_INDICES) qsort(items, (size_t)n, sizeof *items, cmp);
    else select_kth(items, n, job->kth, cmp);
    for (int64_t k = 0; k < n; k++) {
      if (indices) keys[k] = items[k].index;
      else if (job->int_domain) keys[k] = items[k].key.i;
      else fkeys[k] = items[k].key.f;
    }
    if (indices || job->int_domain) cpu_group_store_i64(job->plan, job->out, g, !indices, keys);
    else cpu_group_store_f64(job->plan, job->out, g, fkeys);
  }
  free(items);
  free(keys);
}

int cpu_eval_sort(core_node* node, core_array** outputs) {
  const sort_params* params = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  cpu_reduce_plan plan;
  cpu_reduce_plan_axis(&plan, in, out, params->axis);
  sort_job job = {&plan, in, out, node->op->code, params->kth, !cpu_dtype_is_real_float(in->dtype), 0};
  int64_t lane = plan.group_size > 0 ? plan.group_size : 1;
  cpu_parallel_for(plan.groups, 1 + (1 << 12) / lane, sort_lanes, &job);
  if (job.failed) return util_error("%s: out of memory", node->op->name);
  return 0;
}
