/* C glue of the linalg kernels (linalg.cu, cuSOLVER and cuBLAS's trsm): cholesky, inv, tri_inv,
 * solve, solve_triangular, lu_factor, qr, eigh, svd and eig of float32/float64 matrices. Complex64
 * and empty batches run on the CPU; so do calls while a step is recorded (the kernels wait for
 * the factorizations' status). Compiled in CUDA builds only. */
#ifdef MLXC_WITH_CUDA
#include "backend/cuda/dispatch.h"
#include "backend/cuda/residency.h"
#include "core/capture.h"
#include "ops/linalg_params.h"
#include "ops/primitives.h"

static bool real_matrix(const core_array* a) { return a->dtype == MLX_FLOAT32 || a->dtype == MLX_FLOAT64; }

static int64_t batch_count(const core_array* a) {
  int64_t count = 1;
  for (int d = 0; d < a->ndim - 2; d++) count *= a->shape[d];
  return count;
}

/* a's matrices on `dev` (its device copy made as needed). */
static int matrices_of(const core_array* a, int dev, gpu_matrices* M) {
  M->nbatch = a->ndim - 2;
  for (int d = 0; d < M->nbatch; d++) M->batch_shape[d] = a->shape[d], M->batch_strides[d] = a->strides[d];
  M->rows = a->shape[a->ndim - 2];
  M->cols = a->shape[a->ndim - 1];
  M->rs = a->strides[a->ndim - 2];
  M->cs = a->strides[a->ndim - 1];
  M->dtype = a->dtype;
  return gpu_device_ptr(a, dev, &M->data);
}

/* Whether the GPU kernels take the node: real matrices, a non-empty output, not recording. */
static bool takes(const core_node* node, const core_array* out) {
  for (int i = 0; i < node->n_inputs; i++)
    if (!real_matrix(node->inputs[i])) return false;
  return out->size > 0 && core_capture_device() != device_of(node);
}

/* A matrix in, a real matrix out (cholesky, inv): the input's matrices and the output's buffer
 * on dev. 0, GPU_KERNEL_DECLINED, or 1 after an error. */
static int matrix_to_matrix(core_node* node, core_array* out, int dev, gpu_matrices* a, void** po) {
  if (!takes(node, out) || !real_matrix(out)) return GPU_KERNEL_DECLINED;
  return matrices_of(node->inputs[0], dev, a) || gpu_alloc_output(out, dev, po);
}

static int k_cholesky(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  int dev = device_of(node);
  gpu_matrices a;
  void* po;
  int st = matrix_to_matrix(node, out, dev, &a, &po);
  if (st) return st;
  return gpu_linalg_cholesky(dev, &a, batch_count(in), p->upper, po, out->dtype);
}

static int k_inv(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  int dev = device_of(node);
  gpu_matrices a;
  void* po;
  int st = matrix_to_matrix(node, out, dev, &a, &po);
  if (st) return st;
  if (p->triangular) return gpu_linalg_triangular(dev, &a, NULL, batch_count(in), p->upper, po, out->dtype, "tri_inv");
  return gpu_linalg_solve(dev, &a, NULL, batch_count(in), po, out->dtype, "inv");
}

static int k_solve(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in_a = node->inputs[0], *in_b = node->inputs[1], *out = outputs[0];
  if (!takes(node, out) || !real_matrix(out)) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  gpu_matrices a, b;
  void* po;
  if (matrices_of(in_a, dev, &a) || matrices_of(in_b, dev, &b) || gpu_alloc_output(out, dev, &po)) return 1;
  if (p->triangular)
    return gpu_linalg_triangular(dev, &a, &b, batch_count(out), p->upper, po, out->dtype, "solve_triangular");
  return gpu_linalg_solve(dev, &a, &b, batch_count(out), po, out->dtype, "solve");
}

static int k_lu_factor(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *lu = outputs[0], *piv = outputs[1], *perm = outputs[2];
  if (!takes(node, lu) || piv->size == 0) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  gpu_matrices a;
  void *plu, *ppiv, *pperm;
  if (matrices_of(in, dev, &a) || gpu_alloc_output(lu, dev, &plu) || gpu_alloc_output(piv, dev, &ppiv) ||
      gpu_alloc_output(perm, dev, &pperm))
    return 1;
  return gpu_linalg_lu_factor(dev, &a, batch_count(in), plu, lu->dtype, ppiv, pperm);
}

static int k_qr(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *q = outputs[0], *r = outputs[1];
  if (!takes(node, q) || r->size == 0) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  gpu_matrices a;
  void *pq, *pr;
  if (matrices_of(in, dev, &a) || gpu_alloc_output(q, dev, &pq) || gpu_alloc_output(r, dev, &pr)) return 1;
  return gpu_linalg_qr(dev, &a, batch_count(in), pq, pr, q->dtype);
}

static int k_eigh(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in = node->inputs[0], *values = outputs[0], *vectors = p->vectors ? outputs[1] : NULL;
  if (!takes(node, values) || !real_matrix(values)) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  gpu_matrices a;
  void *pw, *pv = NULL;
  if (matrices_of(in, dev, &a) || gpu_alloc_output(values, dev, &pw) || (vectors && gpu_alloc_output(vectors, dev, &pv)))
    return 1;
  return gpu_linalg_eigh(dev, &a, batch_count(in), p->upper, pw, pv, values->dtype);
}

static int k_svd(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array* in = node->inputs[0];
  core_array *u = p->vectors ? outputs[0] : NULL, *sv = outputs[p->vectors ? 1 : 0], *vt = p->vectors ? outputs[2] : NULL;
  if (!takes(node, sv) || !real_matrix(sv)) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  gpu_matrices a;
  void *pu = NULL, *ps, *pvt = NULL;
  if (matrices_of(in, dev, &a) || gpu_alloc_output(sv, dev, &ps) || (u && gpu_alloc_output(u, dev, &pu)) ||
      (vt && gpu_alloc_output(vt, dev, &pvt)))
    return 1;
  return gpu_linalg_svd(dev, &a, batch_count(in), pu, ps, pvt, sv->dtype);
}

static int k_eig(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in = node->inputs[0], *values = outputs[0], *vectors = p->vectors ? outputs[1] : NULL;
  if (!takes(node, values)) return GPU_KERNEL_DECLINED;
  int dev = device_of(node);
  gpu_matrices a;
  void *pw, *pv = NULL;
  if (matrices_of(in, dev, &a) || gpu_alloc_output(values, dev, &pw) || (vectors && gpu_alloc_output(vectors, dev, &pv)))
    return 1;
  return gpu_linalg_eig(dev, &a, batch_count(in), pw, pv);
}

const gpu_entry gpu_linalg_kernels[] = {
    {&prim_eig, k_eig},
    {&prim_svd, k_svd},
    {&prim_qr, k_qr},
    {&prim_eigh, k_eigh},
    {&prim_cholesky, k_cholesky},
    {&prim_inv, k_inv},
    {&prim_solve, k_solve},
    {&prim_lu_factor, k_lu_factor},
    {NULL, NULL},
};
#else
typedef int dispatch_linalg_unused_without_cuda;
#endif
