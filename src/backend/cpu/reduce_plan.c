/* Group plans and value loading for reductions, scans, softmax and sorts (reduce_plan.h). */
#include "backend/cpu/reduce_plan.h"

#include <stdbool.h>

#include "core/half.h"

/* Appends dim (size, strides) to a list, merging it into the previous entry when every operand
 * steps through both as one. Dims of size 1 are skipped. */
static void push_dim(int* count, int* shape, int64_t (*strides)[CORE_MAX_NDIM], int operands, int size,
                     const int64_t* dim_strides) {
  if (size == 1) return;
  int last = *count - 1;
  if (last >= 0 && size != 0 && shape[last] != 0) {
    bool mergeable = true;
    for (int o = 0; o < operands; o++)
      if (strides[o][last] != dim_strides[o] * size) mergeable = false;
    if (mergeable) {
      shape[last] *= size;
      for (int o = 0; o < operands; o++) strides[o][last] = dim_strides[o];
      return;
    }
  }
  shape[*count] = size;
  for (int o = 0; o < operands; o++) strides[o][*count] = dim_strides[o];
  (*count)++;
}

void cpu_reduce_plan_init(cpu_reduce_plan* plan, const int* shape, int ndim, const int64_t* in_strides,
                          const int64_t* out_strides, const bool* reduced) {
  int operands = out_strides ? 2 : 1;
  plan->n_kept = plan->n_reduced = 0;
  plan->groups = plan->group_size = 1;
  for (int d = 0; d < ndim; d++) {
    int64_t s[2] = {in_strides[d], out_strides ? out_strides[d] : 0};
    if (reduced[d]) {
      push_dim(&plan->n_reduced, plan->reduced_shape, plan->reduced_strides, operands, shape[d], s);
      plan->group_size *= shape[d];
    } else {
      push_dim(&plan->n_kept, plan->kept_shape, plan->kept_strides, operands, shape[d], s);
      plan->groups *= shape[d];
    }
  }
  if (!out_strides) {
    for (int i = 0; i < plan->n_kept; i++) plan->kept_strides[1][i] = 0;
    for (int i = 0; i < plan->n_reduced; i++) plan->reduced_strides[1][i] = 0;
  }
}

void cpu_reduce_walk(const cpu_reduce_plan* plan, int64_t g, int64_t begin, int64_t end,
                     cpu_group_row_fn fn, void* ctx) {
  if (begin >= end) return;
  int64_t base[2] = {0, 0};
  for (int d = plan->n_kept - 1; d >= 0; d--) {
    int64_t i = g % plan->kept_shape[d];
    g /= plan->kept_shape[d];
    base[0] += i * plan->kept_strides[0][d];
    base[1] += i * plan->kept_strides[1][d];
  }
  int nr = plan->n_reduced;
  if (nr == 0) { /* one element per group */
    int64_t strides[2] = {1, 1};
    fn(ctx, 0, base, strides, 1);
    return;
  }
  /* Position of `begin` in the reduced dims. */
  int64_t index[CORE_MAX_NDIM], offsets[2] = {base[0], base[1]};
  int64_t rest = begin;
  for (int d = nr - 1; d >= 0; d--) {
    index[d] = rest % plan->reduced_shape[d];
    rest /= plan->reduced_shape[d];
    offsets[0] += index[d] * plan->reduced_strides[0][d];
    offsets[1] += index[d] * plan->reduced_strides[1][d];
  }
  int last = nr - 1;
  int64_t row_strides[2] = {plan->reduced_strides[0][last], plan->reduced_strides[1][last]};
  for (int64_t pos = begin; pos < end;) {
    int64_t n = plan->reduced_shape[last] - index[last];
    if (n > end - pos) n = end - pos;
    fn(ctx, pos, offsets, row_strides, n);
    pos += n;
    /* Advance to the next row: move along the last dim, carrying into outer dims. */
    index[last] += n;
    offsets[0] += n * row_strides[0];
    offsets[1] += n * row_strides[1];
    for (int d = last; d > 0 && index[d] == plan->reduced_shape[d]; d--) {
      offsets[0] -= index[d] * plan->reduced_strides[0][d];
      offsets[1] -= index[d] * plan->reduced_strides[1][d];
      index[d] = 0;
      index[d - 1]++;
      offsets[0] += plan->reduced_strides[0][d - 1];
      offsets[1] += plan->reduced_strides[1][d - 1];
    }
  }
}

#define LOAD_LOOP(T, EXPR)                                   \
  do {                                                       \
    const T* p = (const T*)base + offset;                    \
    for (int64_t i = 0; i < n; i++) {                        \
      T x = p[i * stride];                                   \
      dst[i] = (EXPR);                                       \
    }                                                        \
  } while (0)

void cpu_load_f64(const void* base, mlx_dtype dtype, int64_t offset, int64_t stride, int64_t n, double* dst) {
  switch (dtype) {
    case MLX_BOOL: LOAD_LOOP(bool, x ? 1.0 : 0.0); break;
    case MLX_UINT8: LOAD_LOOP(uint8_t, (double)x); break;
    case MLX_UINT16: LOAD_LOOP(uint16_t, (double)x); break;
    case MLX_UINT32: LOAD_LOOP(uint32_t, (double)x); break;
    case MLX_UINT64: LOAD_LOOP(uint64_t, (double)x); break;
    case MLX_INT8: LOAD_LOOP(int8_t, (double)x); break;
    case MLX_INT16: LOAD_LOOP(int16_t, (double)x); break;
    case MLX_INT32: LOAD_LOOP(int32_t, (double)x); break;
    case MLX_INT64: LOAD_LOOP(int64_t, (double)x); break;
    case MLX_FLOAT16: LOAD_LOOP(uint16_t, (double)half_f16_to_f32(x)); break;
    case MLX_BFLOAT16: LOAD_LOOP(uint16_t, (double)half_bf16_to_f32(x)); break;
    case MLX_FLOAT32: LOAD_LOOP(float, (double)x); break;
    case MLX_FLOAT64: LOAD_LOOP(double, x); break;
    default: break; /* complex64: rejected by the op constructors */
  }
}

#define SIGN_BIT ((uint64_t)1 << 63)

void cpu_load_i64(const void* base, mlx_dtype dtype, int64_t offset, int64_t stride, int64_t n,
                  bool ordered, int64_t* dst) {
  switch (dtype) {
    case MLX_BOOL: LOAD_LOOP(bool, x ? 1 : 0); break;
    case MLX_UINT8: LOAD_LOOP(uint8_t, (int64_t)x); break;
    case MLX_UINT16: LOAD_LOOP(uint16_t, (int64_t)x); break;
    case MLX_UINT32: LOAD_LOOP(uint32_t, (int64_t)x); break;
    case MLX_UINT64:
      if (ordered) LOAD_LOOP(uint64_t, (int64_t)(x ^ SIGN_BIT));
      else LOAD_LOOP(uint64_t, (int64_t)x);
      break;
    case MLX_INT8: LOAD_LOOP(int8_t, (int64_t)x); break;
    case MLX_INT16: LOAD_LOOP(int16_t, (int64_t)x); break;
    case MLX_INT32: LOAD_LOOP(int32_t, (int64_t)x); break;
    case MLX_INT64: LOAD_LOOP(int64_t, x); break;
    default: break; /* floating dtypes load through cpu_load_f64 */
  }
}

void cpu_store_f64(void* base, mlx_dtype dtype, int64_t i, double v) {
  switch (dtype) {
    case MLX_BOOL: ((bool*)base)[i] = v != 0; break;
    case MLX_FLOAT16: ((uint16_t*)base)[i] = half_f32_to_f16((float)v); break;
    case MLX_BFLOAT16: ((uint16_t*)base)[i] = half_f32_to_bf16((float)v); break;
    case MLX_FLOAT32: ((float*)base)[i] = (float)v; break;
    case MLX_FLOAT64: ((double*)base)[i] = v; break;
    default: /* integers: truncate toward zero, NaN to 0, saturate out of range (C leaves it undefined) */
      cpu_store_i64(base, dtype, i, v != v ? 0 : v >= 0x1p63 ? INT64_MAX : v <= -0x1p63 ? INT64_MIN : (int64_t)v,
                    false);
      break;
  }
}

void cpu_store_i64(void* base, mlx_dtype dtype, int64_t i, int64_t v, bool ordered) {
  uint64_t u = (uint64_t)v;
  switch (dtype) {
    case MLX_BOOL: ((bool*)base)[i] = v != 0; break;
    case MLX_UINT8: ((uint8_t*)base)[i] = (uint8_t)u; break;
    case MLX_UINT16: ((uint16_t*)base)[i] = (uint16_t)u; break;
    case MLX_UINT32: ((uint32_t*)base)[i] = (uint32_t)u; break;
    case MLX_UINT64: ((uint64_t*)base)[i] = ordered ? u ^ SIGN_BIT : u; break;
    case MLX_INT8: ((int8_t*)base)[i] = (int8_t)u; break;
    case MLX_INT16: ((int16_t*)base)[i] = (int16_t)u; break;
    case MLX_INT32: ((int32_t*)base)[i] = (int32_t)u; break;
    case MLX_INT64: ((int64_t*)base)[i] = v; break;
    default: cpu_store_f64(base, dtype, i, (double)v); break;
  }
}

bool cpu_dtype_is_real_float(mlx_dtype dtype) {
  return dtype == MLX_FLOAT16 || dtype == MLX_BFLOAT16 || dtype == MLX_FLOAT32 || dtype == MLX_FLOAT64;
}

/* Whole-group loads and stores, in walk order. */
typedef struct {
  const core_array* array;
  void* values;
  bool ordered;
} group_io;

static void load_f64_row(void* p, int64_t index, const int64_t* offsets, const int64_t* strides, int64_t n) {
  group_io* io = p;
  cpu_load_f64(core_array_ptr(io->array), io->array->dtype, offsets[0], strides[0], n, (double*)io->values + index);
}

static void load_i64_row(void* p, int64_t index, const int64_t* offsets, const int64_t* strides, int64_t n) {
  group_io* io = p;
  cpu_load_i64(core_array_ptr(io->array), io->array->dtype, offsets[0], strides[0], n, io->ordered,
               (int64_t*)io->values + index);
}

static void store_f64_row(void* p, int64_t index, const int64_t* offsets, const int64_t* strides, int64_t n) {
  group_io* io = p;
  const double* src = (const double*)io->values + index;
  for (int64_t k = 0; k < n; k++)
    cpu_store_f64(core_array_ptr(io->array), io->array->dtype, offsets[1] + k * strides[1], src[k]);
}

static void store_i64_row(void* p, int64_t index, const int64_t* offsets, const int64_t* strides, int64_t n) {
  group_io* io = p;
  const int64_t* src = (const int64_t*)io->values + index;
  for (int64_t k = 0; k < n; k++)
    cpu_store_i64(core_array_ptr(io->array), io->array->dtype, offsets[1] + k * strides[1], src[k], io->ordered);
}

void cpu_group_load_f64(const cpu_reduce_plan* plan, const core_array* in, int64_t g, double* dst) {
  group_io io = {in, dst, false};
  cpu_reduce_walk(plan, g, 0, plan->group_size, load_f64_row, &io);
}

void cpu_group_load_i64(const cpu_reduce_plan* plan, const core_array* in, int64_t g, bool ordered, int64_t* dst) {
  group_io io = {in, dst, ordered};
  cpu_reduce_walk(plan, g, 0, plan->group_size, load_i64_row, &io);
}

void cpu_group_store_f64(const cpu_reduce_plan* plan, core_array* out, int64_t g, const double* src) {
  group_io io = {out, (void*)src, false};
  cpu_reduce_walk(plan, g, 0, plan->group_size, store_f64_row, &io);
}

void cpu_group_store_i64(const cpu_reduce_plan* plan, core_array* out, int64_t g, bool ordered, const int64_t* src) {
  group_io io = {out, (void*)src, ordered};
  cpu_reduce_walk(plan, g, 0, plan->group_size, store_i64_row, &io);
}

void cpu_reduce_plan_axis(cpu_reduce_plan* plan, const core_array* in, const core_array* out, int axis) {
  bool reduced[CORE_MAX_NDIM] = {false};
  reduced[axis] = true;
  int64_t out_strides[CORE_MAX_NDIM];
  core_row_strides(out->shape, out->ndim, out_strides);
  cpu_reduce_plan_init(plan, in->shape, in->ndim, in->strides, out_strides, reduced);
}
