/* Splitting an array into groups for reductions, scans, softmax and sorts: the dims that are
 * kept index the groups (row-major, so group g is output element g of a reduction), the reduced
 * dims form each group's set of elements, walked in row-major order of those dims. Works on any
 * strided layout; dims of size 1 are dropped and dims that step as one are merged.
 *
 * Also: loading strided values of any real dtype as double or int64, and storing them back. */
#ifndef MLXC_CPU_REDUCE_PLAN_H
#define MLXC_CPU_REDUCE_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/array.h"

typedef struct {
  int n_kept, n_reduced;
  int kept_shape[CORE_MAX_NDIM], reduced_shape[CORE_MAX_NDIM];
  /* Per operand: 0 = the input, 1 = an output of the input's shape (when given). */
  int64_t kept_strides[2][CORE_MAX_NDIM], reduced_strides[2][CORE_MAX_NDIM];
  int64_t groups;     /* number of groups (product of the kept dims) */
  int64_t group_size; /* elements per group (product of the reduced dims) */
} cpu_reduce_plan;

/* Plans over `shape` with the input's strides and, when out_strides is not NULL, those of an
 * output with the same shape; reduced[d] says whether dim d is reduced. */
void cpu_reduce_plan_init(cpu_reduce_plan* plan, const int* shape, int ndim, const int64_t* in_strides,
                          const int64_t* out_strides, const bool* reduced);

/* Called for each row of a group's elements: `index` is the flat position (within the group)
 * of the row's first element, offsets/strides are per operand, in elements. */
typedef void (*cpu_group_row_fn)(void* ctx, int64_t index, const int64_t* offsets,
                                 const int64_t* strides, int64_t n);

/* Visits the elements [begin, end) of group g, a row at a time. */
void cpu_reduce_walk(const cpu_reduce_plan* plan, int64_t g, int64_t begin, int64_t end,
                     cpu_group_row_fn fn, void* ctx);

/* Whole groups: loads every element of group g of `in` (operand 0), or stores every element of
 * group g of `out` (operand 1: an output of the input's shape), in walk order. */
void cpu_group_load_f64(const cpu_reduce_plan* plan, const core_array* in, int64_t g, double* dst);
void cpu_group_load_i64(const cpu_reduce_plan* plan, const core_array* in, int64_t g, bool ordered, int64_t* dst);
void cpu_group_store_f64(const cpu_reduce_plan* plan, core_array* out, int64_t g, const double* src);
void cpu_group_store_i64(const cpu_reduce_plan* plan, core_array* out, int64_t g, bool ordered, const int64_t* src);

/* The plan of ops along one axis (scans, sorts): groups are the lanes along `axis` of `in`;
 * `out` is row-major with in's shape (its strides become operand 1). */
void cpu_reduce_plan_axis(cpu_reduce_plan* plan, const core_array* in, const core_array* out, int axis);

/* Values of a real dtype. Signed integers are sign-extended; uint64 is stored as its bits
 * (wrapping arithmetic gives the same low bits), and as `ordered` keys (top bit flipped)
 * where signed comparisons must order it. */
void cpu_load_f64(const void* base, mlx_dtype dtype, int64_t offset, int64_t stride, int64_t n, double* dst);
void cpu_load_i64(const void* base, mlx_dtype dtype, int64_t offset, int64_t stride, int64_t n,
                  bool ordered, int64_t* dst);
/* Stores one value at element index i of `base`; integers truncate (wrap), bool is v != 0. */
void cpu_store_f64(void* base, mlx_dtype dtype, int64_t i, double v);
void cpu_store_i64(void* base, mlx_dtype dtype, int64_t i, int64_t v, bool ordered);

/* float16, bfloat16, float32, float64 (what reductions treat as floating point). */
bool cpu_dtype_is_real_float(mlx_dtype dtype);

#endif
