/* What the C glue of the GPU kernels shares (dispatch*.c): the table entry type, the tables of
 * the kernel families, and small helpers for unpacking nodes. Compiled in CUDA builds only. */
#ifndef MLXC_BACKEND_CUDA_DISPATCH_H
#define MLXC_BACKEND_CUDA_DISPATCH_H

#include <stdbool.h>

#include "backend/cuda/launch.h"
#include "backend/gpu.h"
#include "core/array.h"
#include "core/device.h"
#include "core/graph.h"

typedef struct {
  const core_op* op;
  gpu_kernel_fn kernel;
} gpu_entry;

/* One table per family of kernels, each ended by {NULL, NULL}; gpu_backend_kernel searches
 * them in the order of gpu_kernel_tables (dispatch.c). */
extern const gpu_entry gpu_core_kernels[];
extern const gpu_entry gpu_elementwise_more_kernels[];
extern const gpu_entry gpu_sort_kernels[]; /* dispatch_sort.c */
/* Longest line a GPU partition/argpartition takes (longer ones run on the CPU). */
#define GPU_PARTITION_MAX_LINE 4096

/* Bounds check of host-resident indices (up to 2^20 of them; others are not checked), reported
 * as the CPU kernels report them ("op: index i is out of bounds ..."); 0 when they are in range or
 * not on the host. */
int gpu_check_host_indices(const core_array* ind, int n, const char* op);
extern const gpu_entry gpu_conv_kernels[];
extern const gpu_entry gpu_gather_qmm_kernels[];
extern const gpu_entry gpu_reduce_kernels[];
extern const gpu_entry gpu_linalg_kernels[]; /* dispatch_linalg.c */
extern const gpu_entry gpu_fft_kernels[];    /* dispatch_fft.c */
extern const gpu_entry gpu_decode_layers_kernels[]; /* dispatch_decode_layers.c */
extern const gpu_entry gpu_attention_kernels[];     /* dispatch_attention.c */

/* Reductions and softmax over any set of axes (dispatch_reduce.c): where the last-axis kernels
 * of dispatch.c decline, they call these. */
int gpu_reduce_any_axes(core_node* node, core_array** outputs);
int gpu_softmax_any_axes(core_node* node, core_array** outputs);

/* A KV-cache output of an in-place update (rope_kv, decode_layers): the cache donated when it
 * can be, else a copy of it; *dst its device data. */
int gpu_cache_output(core_array* cache, core_array* out, int dev, void** dst);

static inline int device_of(const core_node* node) { return node->stream->device->index; }

/* Whether no write to a's buffer (NULL: none) can still be running (backend/gpu.h:
 * gpu_backend_write_settled), so that a chained GEMV may load it before its chain wait. A
 * model's weights are. */
static inline bool gpu_array_settled(int dev, const core_array* a) {
  return !a || !a->buffer || gpu_backend_write_settled(dev, a->buffer->gpu_write_stamp);
}
/* The same for a quantized weight: its packed values, scales and biases (NULL: none). */
static inline bool gpu_weights_settled(int dev, const core_array* w, const core_array* scales,
                                       const core_array* biases) {
  return gpu_array_settled(dev, w) && gpu_array_settled(dev, scales) && gpu_array_settled(dev, biases);
}

static inline bool index_dtype(mlx_dtype d) {
  return d == MLX_INT8 || d == MLX_UINT8 || d == MLX_INT16 || d == MLX_UINT16 || d == MLX_INT32 ||
         d == MLX_UINT32 || d == MLX_INT64 || d == MLX_UINT64;
}

static inline bool float_dtype(mlx_dtype d) {
  return d == MLX_FLOAT32 || d == MLX_FLOAT16 || d == MLX_BFLOAT16;
}

/* A binary node's operands on the device with their strides broadcast to out's shape, and out
 * allocated there: 0, or 1 with the error reported. */
int gpu_binary_operands(core_node* node, core_array* out, const void** pa, int64_t* a_strides, const void** pb,
                        int64_t* b_strides, void** po);

/* Rows of the last axis of `a` (leading dims + inner stride). */
static inline gpu_rows rows_of(const core_array* a) {
  gpu_rows r;
  r.lead_ndim = a->ndim - 1;
  for (int d = 0; d < a->ndim - 1; d++) {
    r.lead_shape[d] = a->shape[d];
    r.lead_strides[d] = a->strides[d];
  }
  r.inner_stride = a->strides[a->ndim - 1];
  return r;
}

#endif
