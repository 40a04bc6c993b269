/* CPU kernels of the primitives (one declaration per kernel named in ops/primitives.def).
 * A kernel computes node->outputs from node->inputs (already evaluated) and node->params. */
#ifndef MLXC_CPU_KERNELS_H
#define MLXC_CPU_KERNELS_H

#include "core/array.h"

/* Strides that let `out` view `in`'s elements in row-major order without a copy, when in's layout
 * allows it (numpy's rule); false when a copy is needed. (layout.c; the GPU reshape uses it too.) */
bool cpu_reshape_view_strides(const core_array* in, const core_array* out, int64_t* strides);

/* Where integer and bool scans start (scan.c; the GPU scans use it too): 0 for sums, 1 for
 * products, and for max/min the dtype's lowest/highest value (an ordered key for uint64), which
 * exclusive scans store first. code: a scan_code. */
int64_t cpu_scan_int_identity(int code, mlx_dtype dtype);

#define KERNEL(fn) int fn(core_node* node, core_array** outputs);
KERNEL(cpu_eval_astype)
KERNEL(cpu_eval_copy)
KERNEL(cpu_eval_broadcast)
KERNEL(cpu_eval_reshape)
KERNEL(cpu_eval_transpose)
KERNEL(cpu_eval_slice)
KERNEL(cpu_eval_binary)
KERNEL(cpu_eval_divmod)
KERNEL(cpu_eval_unary)
KERNEL(cpu_eval_select)
KERNEL(cpu_eval_all_true)
KERNEL(cpu_eval_random_bits)
KERNEL(cpu_eval_rms_norm)
KERNEL(cpu_eval_add_rms_norm)
KERNEL(cpu_eval_glu)
KERNEL(cpu_eval_gated_gemv)
KERNEL(cpu_eval_linear_residual)
KERNEL(cpu_eval_rms_norm_linear)
KERNEL(cpu_eval_layer_norm)
KERNEL(cpu_eval_rope)
KERNEL(cpu_eval_rope_kv)
KERNEL(cpu_eval_sdpa)
KERNEL(cpu_eval_rope_kv_sdpa)
KERNEL(cpu_eval_reduce)
KERNEL(cpu_eval_argmax_lse)
KERNEL(cpu_eval_scan)
KERNEL(cpu_eval_softmax)
KERNEL(cpu_eval_sort)
KERNEL(cpu_eval_concatenate)
KERNEL(cpu_eval_pad)
KERNEL(cpu_eval_slice_update)
KERNEL(cpu_eval_as_strided)
KERNEL(cpu_eval_diagonal)
KERNEL(cpu_eval_view)
KERNEL(cpu_eval_dynamic_slice)
KERNEL(cpu_eval_dynamic_slice_update)
KERNEL(cpu_eval_arange)
KERNEL(cpu_eval_linspace)
KERNEL(cpu_eval_triangle)
KERNEL(cpu_eval_window)
KERNEL(cpu_eval_take)
KERNEL(cpu_eval_take_along_axis)
KERNEL(cpu_eval_put_along_axis)
KERNEL(cpu_eval_matmul)
KERNEL(cpu_eval_quantize)
KERNEL(cpu_eval_dequantize)
KERNEL(cpu_eval_quantized_matmul)
KERNEL(cpu_eval_gather_qmm)
KERNEL(cpu_eval_conv)
KERNEL(cpu_eval_fft)
KERNEL(cpu_eval_inv)
KERNEL(cpu_eval_cholesky)
KERNEL(cpu_eval_qr)
KERNEL(cpu_eval_svd)
KERNEL(cpu_eval_eigh)
KERNEL(cpu_eval_eig)
KERNEL(cpu_eval_lu_factor)
KERNEL(cpu_eval_solve)
KERNEL(cpu_eval_decode_layers)
#undef KERNEL

#endif
