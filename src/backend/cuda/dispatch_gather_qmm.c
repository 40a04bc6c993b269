/* GPU kernel of gather_qmm (mixture-of-experts layers): each output matrix is x's matrix times the
 * affine-quantized expert that rhs_indices picks, read in place from the stacked weights. The
 * indices are read on the host (a synchronous download when they live on the device), then each
 * gathered product is launched alone: the quantized GEMV for one row (decode), otherwise the
 * expert dequantized into a scratch buffer (once per run of equal experts) and cuBLAS, as
 * quantized_matmul does. Correct but launch-bound for long prefills (a launch per token and
 * expert). Compiled in CUDA builds only. */
#ifdef MLXC_WITH_CUDA
#include <stdint.h>

#include "backend/cpu/strided.h"
#include "backend/cuda/dispatch.h"
#include "backend/cuda/launch.h"
#include "backend/cuda/residency.h"
#include "core/capture.h"
#include "core/dtype.h"
#include "ops/primitives.h"
#include "ops/quantized_params.h"
#include "util/error.h"

/* A dense stack (..., rows, cols) whose matrices are rows x cols. */
static bool stack_of(const core_array* a, int64_t matrices, int64_t rows, int64_t cols) {
  int64_t m = 1;
  for (int i = 0; i < a->ndim - 2; i++) m *= a->shape[i];
  return a->ndim >= 2 && a->row_contiguous && m == matrices && a->shape[a->ndim - 2] == rows &&
         a->shape[a->ndim - 1] == cols;
}

/* Element offset of output batch i in an array with these per-batch-dim strides (broadcast
 * strides are 0). */
static int64_t batch_offset(const core_array* out, const int64_t* strides, int64_t i) {
  int64_t off = 0;
  for (int d = out->ndim - 3; d >= 0; d--) {
    off += (i % out->shape[d]) * strides[d];
    i /= out->shape[d];
  }
  return off;
}

typedef struct {
  int dev, bits, group;
  mlx_dtype dtype, s_dtype;
  int64_t M, N, K;
  const char *w, *scales, *biases;    /* the stacks on the device */
  int64_t w_bytes, s_bytes;           /* per expert */
  int64_t x_rs, x_cs;
  void* deq;                          /* (N, K) scratch of dtype for the GEMM path, or NULL */
  int64_t deq_expert;                 /* which expert deq holds, -1 none */
  bool settled;                       /* the stacks: gpu_array_settled */
} gather_run;

/* y (M, N) = x (M, K) @ W_e^T. */
static int expert_product(gather_run* r, int64_t e, const char* x, char* y) {
  const char* w = r->w + e * r->w_bytes;
  const char* s = r->scales + e * r->s_bytes;
  const char* b = r->biases + e * r->s_bytes;
  if (r->M == 1 && gpu_qgemv_supported(r->bits, r->group, r->K) && ((uintptr_t)w & 15u) == 0)
    return gpu_launch_qgemv_affine(r->dev, r->bits, r->group, y, r->dtype, x, r->dtype, r->x_cs, w, s, b, r->s_dtype,
                                   r->N, r->K, r->settled);
  if (r->deq_expert != e) {
    if (gpu_launch_dequantize_affine(r->dev, r->deq, r->dtype, w, s, r->s_dtype, b, r->s_dtype, r->s_dtype, r->N,
                                     r->K, r->bits, r->group, false))
      return 1;
    r->deq_expert = e;
  }
  /* W_e (N, K) row-major read as its transpose (strides 1, K). */
  return gpu_launch_gemm(r->dev, r->dtype, r->M, r->N, r->K, 1, x, r->x_rs, r->x_cs, 0, r->deq, 1, r->K, 0, y, 1.0f,
                         0.0f, false);
}

static int k_gather_qmm(core_node* node, core_array** outputs) {
  const quant_params* p = node->params;
  core_array *idx = node->inputs[0], *x = node->inputs[1], *w = node->inputs[2], *sc = node->inputs[3];
  core_array *bi = node->n_inputs == 5 ? node->inputs[4] : NULL, *out = outputs[0];
  int nd = out->ndim, dev = device_of(node);
  if (p->mode != QUANT_AFFINE || !bi || !p->transpose || nd < 2 || !float_dtype(out->dtype) ||
      x->dtype != out->dtype || !float_dtype(sc->dtype) || bi->dtype != sc->dtype || idx->dtype != MLX_INT32 ||
      idx->ndim != nd - 2 || x->ndim < 2)
    return GPU_KERNEL_DECLINED;
  /* The indices are read on the host here, so a recording would keep this call's experts for
   * every replay: the CPU fallback refuses to be recorded with the usual message. */
  if (core_capture_device() == dev) return GPU_KERNEL_DECLINED;
  int64_t M = out->shape[nd - 2], N = out->shape[nd - 1], K = x->shape[x->ndim - 1];
  int64_t matrices = 1;
  for (int i = 0; i < w->ndim - 2; i++) matrices *= w->shape[i];
  if (K == 0 || K % p->group_size || (K * p->bits) % 32 || !stack_of(w, matrices, N, K * p->bits / 32) ||
      !stack_of(sc, matrices, N, K / p->group_size) || !stack_of(bi, matrices, N, K / p->group_size))
    return GPU_KERNEL_DECLINED;
  int64_t x_rs = x->strides[x->ndim - 2], x_cs = x->strides[x->ndim - 1];
  if (M > 1 && !gpu_gemm_layout_ok(M, N, K, x_rs, x_cs, 1, K)) return GPU_KERNEL_DECLINED;
  if (out->size == 0) {
    void* po;
    return gpu_alloc_output(out, dev, &po);
  }
  int64_t batch = (int64_t)out->size / (M * N);
  const int32_t* ids = core_array_ptr(idx); /* downloads device-resident indices (waits) */
  if (!ids) return 1;
  for (int64_t i = 0; i < batch; i++) {
    int64_t e = ids[batch_offset(out, idx->strides, i)];
    if (e < 0 || e >= matrices)
      return util_error("gather_qmm: index %lld is out of range for %lld matrices", (long long)e,
                        (long long)matrices);
  }
  size_t elem = core_dtype_size(out->dtype), s_elem = core_dtype_size(sc->dtype);
  gather_run r = {.dev = dev, .bits = p->bits, .group = p->group_size, .dtype = out->dtype, .s_dtype = sc->dtype,
                  .M = M, .N = N, .K = K, .w_bytes = N * K * p->bits / 8,
                  .s_bytes = N * (K / p->group_size) * (int64_t)s_elem, .x_rs = x_rs, .x_cs = x_cs,
                  .deq_expert = -1,
                  .settled = gpu_weights_settled(dev, w, sc, bi)};
  const void *pw, *ps, *pb, *px;
  void* po;
  if (gpu_device_ptr(x, dev, &px) || gpu_device_ptr(w, dev, &pw) || gpu_device_ptr(sc, dev, &ps) ||
      gpu_device_ptr(bi, dev, &pb) || gpu_alloc_output(out, dev, &po))
    return 1;
  r.w = pw;
  r.scales = ps;
  r.biases = pb;
  bool gemv = M == 1 && gpu_qgemv_supported(p->bits, p->group_size, K);
  size_t deq_bytes = gemv ? 0 : (size_t)(N * K) * elem;
  if (deq_bytes && gpu_backend_alloc(dev, deq_bytes, &r.deq)) return 1;
  int64_t x_batch[CORE_MAX_NDIM];
  cpu_broadcast_strides(x->shape, x->strides, x->ndim - 2, out->shape, nd - 2, x_batch);
  int status = 0;
  for (int64_t i = 0; i < batch && !status; i++) {
    int64_t e = ids[batch_offset(out, idx->strides, i)];
    const char* xi = (const char*)px + batch_offset(out, x_batch, i) * (int64_t)elem;
    status = expert_product(&r, e, xi, (char*)po + i * M * N * (int64_t)elem);
  }
  if (r.deq) gpu_backend_free(dev, r.deq, deq_bytes);
  return status;
}

const gpu_entry gpu_gather_qmm_kernels[] = {
    {&prim_gather_qmm, k_gather_qmm},
    {NULL, NULL},
};
#else
typedef int dispatch_gather_qmm_unused_without_cuda;
#endif
