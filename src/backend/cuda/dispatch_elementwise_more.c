/* GPU kernels of the integer, predicate, creation and layout primitives (elementwise_more.cu,
 * creation.cu, pad.cu): node unpacking and the table gpu_elementwise_more_kernels. Compiled in
 * CUDA builds only. */
#ifdef MLXC_WITH_CUDA
#include <float.h>
#include <math.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/strided.h"
#include "backend/cuda/dispatch.h"
#include "backend/cuda/residency.h"
#include "ops/codes.h"
#include "ops/creation_params.h"
#include "ops/primitives.h"
#include "ops/shape_params.h"
#include "ops/unary_params.h"

/* ---- elementwise ---- */

static int binary_more(core_node* node, int code, core_array* out) {
  int64_t as[CORE_MAX_NDIM], bs[CORE_MAX_NDIM];
  const void *pa, *pb;
  void* po;
  if (gpu_binary_operands(node, out, &pa, as, &pb, bs, &po)) return 1;
  return gpu_launch_binary_more(device_of(node), code, node->inputs[0]->dtype, po, pa, as, pb, bs, out->shape,
                                out->ndim);
}

static int k_binary_more(core_node* node, core_array** outputs) {
  core_array *a = node->inputs[0], *b = node->inputs[1];
  if (a->dtype != b->dtype || !gpu_binary_more_supported(node->op->code, a->dtype)) return GPU_KERNEL_DECLINED;
  return binary_more(node, node->op->code, outputs[0]);
}

/* divmod: (floor_divide(a, b), remainder(a, b)), as the CPU's two passes. */
static int k_divmod(core_node* node, core_array** outputs) {
  core_array *a = node->inputs[0], *b = node->inputs[1];
  if (a->dtype != b->dtype || !gpu_binary_more_supported(BINARY_FLOOR_DIVIDE, a->dtype)) return GPU_KERNEL_DECLINED;
  if (binary_more(node, BINARY_FLOOR_DIVIDE, outputs[0])) return 1;
  return binary_more(node, BINARY_REMAINDER, outputs[1]);
}

static int k_unary_more(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  int code = node->op->code;
  if (!gpu_unary_more_supported(code, in->dtype)) return GPU_KERNEL_DECLINED;
  const unary_params* p = node->params;
  gpu_nan_to_num replace = {0, 0, 0};
  if (code == UNARY_NAN_TO_NUM) replace = (gpu_nan_to_num){p->nan, p->posinf, p->neginf};
  int dev = device_of(node);
  const void* src;
  void* dst;
  if (gpu_device_ptr(in, dev, &src) || gpu_alloc_output(out, dev, &dst)) return 1;
  return gpu_launch_unary_more(dev, code, in->dtype, dst, src, in->strides, in->shape, in->ndim,
                               code == UNARY_NAN_TO_NUM ? &replace : NULL);
}

/* conjugate, real, imag: of complex64 by the GPU kernel; imag of a real array is zeros (the
 * constructors make conjugate and real of real arrays the input itself). */
static int k_complex_part(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  int code = node->op->code, dev = device_of(node);
  const void* src;
  void* dst;
  if (in->dtype != MLX_COMPLEX64) {
    if (code != UNARY_IMAG) return GPU_KERNEL_DECLINED;
    if (gpu_alloc_output(out, dev, &dst)) return 1;
    return gpu_launch_zero(dev, dst, (size_t)out->size * core_dtype_size(out->dtype));
  }
  if (gpu_device_ptr(in, dev, &src) || gpu_alloc_output(out, dev, &dst)) return 1;
  int part = code == UNARY_CONJUGATE ? GPU_COMPLEX_CONJUGATE : code == UNARY_REAL ? GPU_COMPLEX_REAL : GPU_COMPLEX_IMAG;
  return gpu_launch_complex_part(dev, part, dst, src, in->strides, in->shape, in->ndim);
}

/* ---- creation ---- */

/* The real dtypes the creation kernels write (the CPU's cpu_store_real also takes complex64). */
static bool real_dtype(mlx_dtype d) { return d != MLX_COMPLEX64; }

/* The kernels replay the CPU's long double arithmetic at LDBL_MANT_DIG bits; 64-bit integers are
 * converted through doubles, so their values must stay below 2^53. */
static bool fits_creation(mlx_dtype d, double largest_magnitude) {
  if (!real_dtype(d)) return false;
  if (d == MLX_INT64 || d == MLX_UINT64) return largest_magnitude < 4503599627370496.0; /* 2^52: margin */
  return true;
}

static int k_arange(core_node* node, core_array** outputs) {
  core_array* out = outputs[0];
  const arange_params* p = node->params;
  double n = (double)out->size, last = p->start + (n > 0 ? n - 1 : 0) * p->step;
  if (!fits_creation(out->dtype, fmax(fabs(p->start), fabs(last)) + fabs(p->step))) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  void* po;
  if (gpu_alloc_output(out, dev, &po)) return 1;
  return gpu_launch_arange(dev, out->dtype, po, (int64_t)out->size, p->start, p->step, LDBL_MANT_DIG);
}

static int k_linspace(core_node* node, core_array** outputs) {
  core_array* out = outputs[0];
  const linspace_params* p = node->params;
  if (!fits_creation(out->dtype, fmax(fabs(p->start), fabs(p->stop)) + 1)) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  void* po;
  if (gpu_alloc_output(out, dev, &po)) return 1;
  return gpu_launch_linspace(dev, out->dtype, po, (int64_t)out->size, p->start, p->stop, LDBL_MANT_DIG);
}

/* eye, tri (no input) and tril, triu (of the input). */
static int k_triangle(core_node* node, core_array** outputs) {
  core_array *out = outputs[0], *in = node->n_inputs ? node->inputs[0] : NULL;
  size_t elem = core_dtype_size(out->dtype);
  if (out->ndim < 2 || (in && in->dtype != out->dtype)) return GPU_KERNEL_DECLINED;
  uint64_t one = 0; /* 1 in the output's dtype, in the low elem bytes (little-endian) */
  cpu_store_real(&one, out->dtype, 1);
  int dev = device_of(node);
  const void* src = NULL;
  void* dst;
  if ((in && gpu_device_ptr(in, dev, &src)) || gpu_alloc_output(out, dev, &dst)) return 1;
  return gpu_launch_triangle(dev, node->op->code, ((const triangle_params*)node->params)->k, (int)elem, dst,
                             out->shape, out->ndim, one, src, in ? in->strides : NULL);
}

static int k_window(core_node* node, core_array** outputs) {
  core_array* out = outputs[0];
  if (out->dtype != MLX_FLOAT32) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  void* po;
  if (gpu_alloc_output(out, dev, &po)) return 1;
  return gpu_launch_window(dev, node->op->code, po, (int64_t)out->size);
}

/* ---- layout ---- */

static int k_pad(core_node* node, core_array** outputs) {
  const core_array *in = node->inputs[0], *value = node->inputs[1];
  core_array* out = outputs[0];
  const pad_params* p = node->params;
  size_t elem = core_dtype_size(out->dtype);
  if (in->dtype != out->dtype || value->dtype != out->dtype) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  const void *src, *pv;
  void* dst;
  if (gpu_device_ptr(in, dev, &src) || gpu_device_ptr(value, dev, &pv) || gpu_alloc_output(out, dev, &dst)) return 1;
  return gpu_launch_pad(dev, (int)elem, dst, out->shape, out->ndim, src, in->shape, in->strides, p->low, pv, p->edge);
}

/* `in` itself (retained) when row-major, else a row-major copy made on the device; NULL on error. */
static core_array* row_major_on_device(core_array* in, int dev, bool always_copy) {
  if (in->row_contiguous && !always_copy) {
    core_array_retain(in);
    return in;
  }
  core_array* copy = core_array_create(in->shape, in->ndim, in->dtype);
  const void* src;
  void* dst;
  if (!copy || gpu_device_ptr(in, dev, &src) || gpu_alloc_output(copy, dev, &dst) ||
      gpu_launch_copy(dev, dst, in->dtype, copy->strides, src, in->dtype, in->strides, in->shape, in->ndim)) {
    if (copy) core_array_release(copy);
    return NULL;
  }
  return copy;
}

/* A view of the (row-major) input; a strided input is first copied on the device, where the CPU
 * kernel would copy it on the host. */
static int k_as_strided(core_node* node, core_array** outputs) {
  if (node->inputs[0]->row_contiguous) return cpu_eval_as_strided(node, outputs);
  const as_strided_params* p = node->params;
  core_array* src = row_major_on_device(node->inputs[0], device_of(node), false);
  if (!src) return 1;
  core_array_set_view(outputs[0], src, p->strides, src->offset + p->offset);
  core_array_release(src);
  return 0;
}

/* The bytes as another dtype: a view, over a device copy when the CPU kernel would copy. */
static int k_view(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *out = outputs[0];
  size_t ib = core_dtype_size(in->dtype), ob = core_dtype_size(out->dtype);
  bool misaligned = (in->offset * (int64_t)ib) % (int64_t)ob != 0;
  if (ib == ob || (in->row_contiguous && !misaligned)) return cpu_eval_view(node, outputs);
  core_array* src = row_major_on_device(in, device_of(node), misaligned);
  if (!src) return 1;
  int64_t strides[CORE_MAX_NDIM];
  core_row_strides(out->shape, out->ndim, strides);
  core_array_set_view(out, src, strides, src->offset * (int64_t)ib / (int64_t)ob);
  core_array_release(src);
  return 0;
}

/* diagonal is a view (strides and offset over the input's buffer), so its CPU kernel serves the
 * device copy as well. */
const gpu_entry gpu_elementwise_more_kernels[] = {
    {&prim_conjugate, k_complex_part},
    {&prim_real, k_complex_part},
    {&prim_imag, k_complex_part},
    {&prim_floor_divide, k_binary_more},
    {&prim_remainder, k_binary_more},
    {&prim_bitwise_and, k_binary_more},
    {&prim_bitwise_or, k_binary_more},
    {&prim_bitwise_xor, k_binary_more},
    {&prim_left_shift, k_binary_more},
    {&prim_right_shift, k_binary_more},
    {&prim_nan_equal, k_binary_more},
    {&prim_divmod, k_divmod},
    {&prim_logical_not, k_unary_more},
    {&prim_bitwise_invert, k_unary_more},
    {&prim_isnan, k_unary_more},
    {&prim_isinf, k_unary_more},
    {&prim_isfinite, k_unary_more},
    {&prim_isposinf, k_unary_more},
    {&prim_isneginf, k_unary_more},
    {&prim_nan_to_num, k_unary_more},
    {&prim_arange, k_arange},
    {&prim_linspace, k_linspace},
    {&prim_eye, k_triangle},
    {&prim_tri, k_triangle},
    {&prim_tril, k_triangle},
    {&prim_triu, k_triangle},
    {&prim_hamming, k_window},
    {&prim_hanning, k_window},
    {&prim_bartlett, k_window},
    {&prim_blackman, k_window},
    {&prim_pad, k_pad},
    {&prim_as_strided, k_as_strided},
    {&prim_view, k_view},
    {&prim_diagonal, cpu_eval_diagonal},
    {NULL, NULL},
};
#else
typedef int dispatch_elementwise_more_unused_without_cuda;
#endif
