/* GPU kernel of the convolution (conv_general): the patch matrix of a block of output rows
 * (im2col, conv.cu) into a scratch buffer, then one cuBLAS GEMM over the groups (gemm.cu) per
 * block, y_g (rows, Og) = col_g (rows, taps * Cg) @ W_g^T; float32 (TF32 unless
 * MLX_ENABLE_TF32=0, as matmul), float16/bfloat16 accumulated in float32 and rounded once, as the
 * CPU kernel. Compiled in CUDA builds only. */
#ifdef MLXC_WITH_CUDA
#include <limits.h>

#include "backend/cuda/dispatch.h"
#include "backend/cuda/launch.h"
#include "backend/cuda/residency.h"
#include "core/dtype.h"
#include "ops/conv_params.h"
#include "ops/primitives.h"

/* The patch matrix is built for blocks of output rows of at most this many bytes, so that a large
 * convolution (3-D, video) does not need a matrix many times its input. */
#define CONV_SCRATCH_BYTES ((size_t)64 << 20)

static gpu_conv_shape conv_shape(const core_array* x, const core_array* w, const core_array* out,
                                 const conv_params* p) {
  gpu_conv_shape g = {.D = p->spatial, .N = x->shape[0], .C = x->shape[p->spatial + 1], .G = p->groups,
                      .flip = p->flip};
  for (int i = 0; i < g.D; i++) {
    g.S[i] = x->shape[i + 1];
    g.K[i] = w->shape[i + 1];
    g.Q[i] = out->shape[i + 1];
    g.stride[i] = p->stride[i];
    g.pad_lo[i] = p->pad_lo[i];
    g.kernel_dilation[i] = p->kernel_dilation[i];
    g.input_dilation[i] = p->input_dilation[i];
  }
  for (int i = 0; i < g.D + 2; i++) g.x_strides[i] = x->strides[i];
  return g;
}

/* Every output row reads exactly its own input row (1x1 kernel, stride 1, no padding or input
 * dilation): a row-contiguous input is the patch matrix itself. */
static bool pointwise(const gpu_conv_shape* g, const conv_params* p, const core_array* x) {
  for (int i = 0; i < g->D; i++)
    if (g->K[i] != 1 || p->stride[i] != 1 || p->pad_lo[i] != 0 || p->pad_hi[i] != 0 || p->input_dilation[i] != 1)
      return false;
  return x->row_contiguous;
}

/* y (rows, O) = patches (rows, G, Kd) @ W^T per group, W (O, Kd) dense: one strided-batched GEMM
 * with a batch per group, each writing its Og columns of y's rows. */
static int gemm_groups(int dev, mlx_dtype dtype, int64_t rows, int64_t G, int64_t Og, int64_t Kd, const void* a,
                       int64_t lda, const void* w, void* y) {
  return gpu_launch_gemm_into(dev, dtype, rows, Og, Kd, G, a, lda, 1, Kd, w, 1, Kd, Og * Kd, y, G * Og, Og, 1.0f,
                              0.0f);
}

/* The patch matrix block by block, each followed by its GEMM. */
static int conv_im2col_gemm(int dev, mlx_dtype dtype, const gpu_conv_shape* g, int64_t rows, int64_t O,
                            int64_t Kd, const void* px, const void* pw, char* py) {
  size_t elem = core_dtype_size(dtype);
  int64_t width = g->G * Kd, block = (int64_t)(CONV_SCRATCH_BYTES / elem) / width;
  if (block < 1) block = 1;
  if (block > INT_MAX) block = INT_MAX;
  if (block > rows) block = rows;
  size_t bytes = (size_t)(block * width) * elem;
  void* col = NULL;
  if (gpu_backend_alloc(dev, bytes, &col)) return 1;
  int status = 0;
  for (int64_t r0 = 0; r0 < rows && !status; r0 += block) {
    int64_t nb = rows - r0 < block ? rows - r0 : block;
    status = gpu_launch_im2col(dev, elem, col, px, g, r0, nb) ||
             gemm_groups(dev, dtype, nb, g->G, O / g->G, Kd, col, width, pw, py + (size_t)(r0 * O) * elem);
  }
  /* Stream-ordered: the GEMMs queued above finish before the block is reused. */
  gpu_backend_free(dev, col, bytes);
  return status;
}

static int k_conv(core_node* node, core_array** outputs) {
  core_array *x = node->inputs[0], *w = node->inputs[1], *out = outputs[0];
  const conv_params* p = node->params;
  mlx_dtype dtype = out->dtype;
  if (!float_dtype(dtype) || x->dtype != dtype || w->dtype != dtype) return GPU_KERNEL_DECLINED;
  gpu_conv_shape g = conv_shape(x, w, out, p);
  int64_t O = w->shape[0], taps = 1, rows = g.N;
  for (int i = 0; i < g.D; i++) {
    taps *= g.K[i];
    rows *= g.Q[i];
  }
  int64_t Kd = taps * (g.C / g.G);
  /* cuBLAS takes int sizes and leading dimensions. */
  if (g.G * Kd > INT_MAX || O > INT_MAX || g.G > INT_MAX) return GPU_KERNEL_DECLINED;
  bool direct = pointwise(&g, p, x);
  if (direct && rows > INT_MAX) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  size_t elem = core_dtype_size(dtype);
  const void *px = NULL, *pw = NULL;
  void* py;
  if (gpu_device_ptr(x, dev, &px) || gpu_device_ptr(w, dev, &pw) || gpu_alloc_output(out, dev, &py)) return 1;
  if (out->size == 0) return 0;
  /* No input elements or channels: every tap reads padding. */
  if (x->size == 0) return gpu_launch_zero(dev, py, out->size * elem);
  void* w_dense = NULL;
  size_t w_bytes = w->size * elem;
  if (!w->row_contiguous) {
    /* The GEMM reads W (O, taps * Cg) dense: copy a strided view (a transposed checkpoint
     * weight, say) first. */
    int64_t dense_strides[CONV_MAX_SPATIAL + 2];
    core_row_strides(w->shape, w->ndim, dense_strides);
    if (gpu_backend_alloc(dev, w_bytes, &w_dense)) return 1;
    if (gpu_launch_copy(dev, w_dense, dtype, dense_strides, pw, dtype, w->strides, w->shape, w->ndim)) {
      gpu_backend_free(dev, w_dense, w_bytes);
      return 1;
    }
    pw = w_dense;
  }
  int status = direct ? gemm_groups(dev, dtype, rows, g.G, O / g.G, Kd, px, g.C, pw, py)
                      : conv_im2col_gemm(dev, dtype, &g, rows, O, Kd, px, pw, py);
  if (w_dense) gpu_backend_free(dev, w_dense, w_bytes);
  return status;
}

const gpu_entry gpu_conv_kernels[] = {
    {&prim_conv, k_conv},
    {NULL, NULL},
};
#else
typedef int dispatch_conv_unused_without_cuda;
#endif
