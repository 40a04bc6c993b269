/* gather_mm (matrix products of matrices picked from stacks, as mixture-of-experts layers use
 * them), composed from take + matmul, and the batch gather gather_qmm (ops/quantized.c) shares.
 * Indices are flat positions in an operand's batch dimensions (all but the last two); an absent
 * index array means "every matrix, in order" (MLX's default arange over the batch). The product
 * broadcasts the two index shapes: out = indices' broadcast shape + (M, N). sorted_indices is
 * only a performance hint in MLX and changes nothing here. */
#include <string.h>

#include "mlx/c/ops.h"
#include "ops/gather_mm.h"

int ops_check_indices(mlx_array indices, const char* op, const char* what) {
  core_array* ind = core_ctx(indices);
  if (ind && !core_dtype_is_integer(ind->dtype))
    return util_error("%s: %s must have an integer dtype (got %s)", op, what,
                      core_dtype_name(ind->dtype));
  return 0;
}

int ops_gather_batch(mlx_array* out, mlx_array a, mlx_array indices, mlx_stream s) {
  if (!indices.ctx) return mlx_array_set(out, a);
  int ndim = (int)mlx_array_ndim(a);
  const int* shape = mlx_array_shape(a);
  int64_t batch = 1;
  for (int i = 0; i < ndim - 2; i++) batch *= shape[i];
  if (batch > INT32_MAX) return util_error("gather: the batch is too large");
  int stack[3] = {(int)batch, shape[ndim - 2], shape[ndim - 1]};
  mlx_array flat = mlx_array_new();
  int status = mlx_reshape(&flat, a, stack, 3, s) || mlx_take_axis(out, flat, indices, 0, s);
  mlx_array_free(flat);
  return status;
}

int ops_as_matrix(mlx_array* out, mlx_array a, int axis, bool* expanded, mlx_stream s) {
  *expanded = mlx_array_ndim(a) == 1;
  return *expanded ? mlx_expand_dims(out, a, axis, s) : mlx_array_set(out, a);
}

int mlx_gather_mm(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_array lhs_indices,
                  const mlx_array rhs_indices, bool sorted_indices, const mlx_stream s) {
  (void)sorted_indices;
  const char* op = "gather_mm";
  core_array* x = ops_arg(a, op, "a");
  core_array* y = x ? ops_arg(b, op, "b") : NULL;
  if (!y || ops_check_indices(lhs_indices, op, "lhs_indices") ||
      ops_check_indices(rhs_indices, op, "rhs_indices"))
    return 1;
  if (x->ndim == 0 || y->ndim == 0)
    return util_error("%s: a and b must have at least one dimension", op);
  mlx_array a2 = mlx_array_new(), b2 = mlx_array_new(), ga = mlx_array_new(), gb = mlx_array_new();
  mlx_array prod = mlx_array_new();
  bool row, col;
  int status = ops_as_matrix(&a2, a, 0, &row, s) || ops_as_matrix(&b2, b, -1, &col, s) ||
               ops_gather_batch(&ga, a2, lhs_indices, s) || ops_gather_batch(&gb, b2, rhs_indices, s) ||
               mlx_matmul(&prod, ga, gb, s);
  /* Drop the dimensions inserted for 1-D operands, as matmul does. */
  if (!status) {
    int axes[2], n = 0;
    if (row) axes[n++] = -2;
    if (col) axes[n++] = -1;
    status = n ? mlx_squeeze_axes(res, prod, axes, (size_t)n, s) : mlx_array_set(res, prod);
  }
  mlx_array arrays[] = {a2, b2, ga, gb, prod};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
  return status;
}
