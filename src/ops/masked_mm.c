/* block_masked_mm and segmented_mm, composed from elementwise masks and matmul (MLX's naive forms:
 * a masked-out block contributes nothing, so masking the operands and the product before and
 * after one ordinary matmul gives the same result). */
#include "mlx/c/ops.h"
#include "ops/ops_common.h"

/* A block mask (..., ceil(rows / bs), ceil(cols / bs)) expanded to (..., rows, cols). */
static int expand_mask(mlx_array* out, mlx_array mask, int bs, int rows, int cols, mlx_stream s) {
  int ndim = (int)mlx_array_ndim(mask);
  int start[CORE_MAX_NDIM] = {0}, stop[CORE_MAX_NDIM], step[CORE_MAX_NDIM];
  const int* shape = mlx_array_shape(mask);
  for (int i = 0; i < ndim; i++) {
    stop[i] = shape[i];
    step[i] = 1;
  }
  stop[ndim - 2] = rows;
  stop[ndim - 1] = cols;
  mlx_array r = mlx_array_new();
  int status = mlx_repeat_axis(&r, mask, bs, -2, s) || mlx_repeat_axis(&r, r, bs, -1, s) ||
               mlx_slice(out, r, start, (size_t)ndim, stop, (size_t)ndim, step, (size_t)ndim, s);
  mlx_array_free(r);
  return status;
}

/* x with a block mask applied: a boolean mask zeroes the blocks it excludes (whatever they hold,
 * as a skipped block), a floating mask scales each block. */
static int apply_mask(mlx_array* x, mlx_array mask, int bs, mlx_stream s) {
  int ndim = (int)mlx_array_ndim(*x);
  const int* shape = mlx_array_shape(*x);
  mlx_array full = mlx_array_new(), zero = mlx_array_new_float32(0), zero_cast = mlx_array_new();
  int status = expand_mask(&full, mask, bs, shape[ndim - 2], shape[ndim - 1], s);
  if (!status && mlx_array_dtype(mask) == MLX_BOOL)
    status = mlx_astype(&zero_cast, zero, mlx_array_dtype(*x), s) ||
             mlx_where(x, full, *x, zero_cast, s);
  else if (!status)
    status = mlx_multiply(x, *x, full, s);
  mlx_array_free(full);
  mlx_array_free(zero);
  mlx_array_free(zero_cast);
  return status;
}

/* A mask must be bool or floating with (..., ceil(rows / bs), ceil(cols / bs)) trailing dims. */
static int check_mask(mlx_array mask, int rows, int cols, int bs, const char* what) {
  core_array* m = core_ctx(mask);
  if (!m) return 0;
  if (m->dtype != MLX_BOOL && !core_dtype_is_inexact(m->dtype))
    return util_error("block_masked_mm: %s must be boolean or floating point (got %s)", what,
                      core_dtype_name(m->dtype));
  int want_r = (rows + bs - 1) / bs, want_c = (cols + bs - 1) / bs;
  if (m->ndim < 2 || m->shape[m->ndim - 2] != want_r || m->shape[m->ndim - 1] != want_c)
    return util_error("block_masked_mm: %s must end in (%d, %d) blocks of %d", what, want_r, want_c, bs);
  return 0;
}

int mlx_block_masked_mm(mlx_array* res, const mlx_array a, const mlx_array b, int block_size,
                        const mlx_array mask_out, const mlx_array mask_lhs, const mlx_array mask_rhs,
                        const mlx_stream s) {
  core_array* x = ops_arg(a, "block_masked_mm", "a");
  core_array* y = x ? ops_arg(b, "block_masked_mm", "b") : NULL;
  if (!y) return 1;
  if (block_size != 32 && block_size != 64)
    return util_error("block_masked_mm: block_size must be 32 or 64 (got %d)", block_size);
  if (x->ndim < 2 || y->ndim < 2)
    return util_error("block_masked_mm: a and b must have at least 2 dimensions");
  int M = x->shape[x->ndim - 2], K = x->shape[x->ndim - 1], N = y->shape[y->ndim - 1];
  if (y->shape[y->ndim - 2] != K)
    return util_error("block_masked_mm: a (..., %d, %d) and b (..., %d, %d) do not multiply", M, K,
                      y->shape[y->ndim - 2], N);
  if (check_mask(mask_lhs, M, K, block_size, "mask_lhs") ||
      check_mask(mask_rhs, K, N, block_size, "mask_rhs") ||
      check_mask(mask_out, M, N, block_size, "mask_out"))
    return 1;
  mlx_array ma = mlx_array_new(), mb = mlx_array_new(), prod = mlx_array_new();
  int status = mlx_array_set(&ma, a) || mlx_array_set(&mb, b) ||
               (mask_lhs.ctx && apply_mask(&ma, mask_lhs, block_size, s)) ||
               (mask_rhs.ctx && apply_mask(&mb, mask_rhs, block_size, s)) ||
               mlx_matmul(&prod, ma, mb, s) ||
               (mask_out.ctx && apply_mask(&prod, mask_out, block_size, s)) ||
               mlx_array_set(res, prod);
  mlx_array_free(ma);
  mlx_array_free(mb);
  mlx_array_free(prod);
  return status;
}

/* segments (..., S, 2) holds [start, end) ranges of the inner dimension K: out[..., s, :, :] =
 * a[..., :, start:end] @ b[..., start:end, :], computed as a masked to each range, times b. */
int mlx_segmented_mm(mlx_array* res, const mlx_array a, const mlx_array b, const mlx_array segments,
                     const mlx_stream s) {
  core_array* x = ops_arg(a, "segmented_mm", "a");
  core_array* y = x ? ops_arg(b, "segmented_mm", "b") : NULL;
  core_array* seg = y ? ops_arg(segments, "segmented_mm", "segments") : NULL;
  if (!seg) return 1;
  if (x->ndim < 2 || y->ndim < 2)
    return util_error("segmented_mm: a and b must have at least 2 dimensions");
  if (!core_dtype_is_integer(seg->dtype) || seg->ndim < 1 || seg->shape[seg->ndim - 1] != 2)
    return util_error("segmented_mm: segments must be integer pairs (..., num_segments, 2)");
  int K = x->shape[x->ndim - 1];
  if (y->shape[y->ndim - 2] != K)
    return util_error("segmented_mm: the inner dimensions of a (%d) and b (%d) differ", K,
                      y->shape[y->ndim - 2]);
  mlx_array k = mlx_array_new(), first = mlx_array_new_int(0), last = mlx_array_new_int(1);
  mlx_array start = mlx_array_new(), end = mlx_array_new(), lo = mlx_array_new(), hi = mlx_array_new();
  mlx_array mask = mlx_array_new(), ax = mlx_array_new(), bx = mlx_array_new(), prod = mlx_array_new();
  /* mask (..., S, 1, K): k in [start, end) */
  int status = mlx_arange(&k, 0, K, 1, MLX_INT32, s) ||
               mlx_take_axis(&start, segments, first, -1, s) ||
               mlx_take_axis(&end, segments, last, -1, s) ||
               mlx_expand_dims(&start, start, -1, s) || mlx_expand_dims(&end, end, -1, s) ||
               mlx_greater_equal(&lo, k, start, s) || mlx_less(&hi, k, end, s) ||
               mlx_logical_and(&mask, lo, hi, s) || mlx_expand_dims(&mask, mask, -2, s) ||
               /* a (..., 1, M, K) masked per segment, then @ b (..., 1, K, N) */
               mlx_expand_dims(&ax, a, -3, s) || mlx_zeros_like(&prod, ax, s) ||
               mlx_where(&ax, mask, ax, prod, s) || mlx_expand_dims(&bx, b, -3, s) ||
               mlx_matmul(res, ax, bx, s);
  mlx_array arrays[] = {k, first, last, start, end, lo, hi, mask, ax, bx, prod};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
  return status;
}
