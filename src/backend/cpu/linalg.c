/* CPU kernels of the linalg primitives through LAPACKE. Every matrix of the batch is copied into
 * a column-major double buffer (from any strided float32/float64 layout), factorized there, and
 * written back row-major in the output dtype: one code path per op, float32 inputs get double
 * precision arithmetic. */
#include <lapacke.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/linalg_util.h"
#include "ops/linalg_params.h"
#include "util/error.h"

/* dst (column-major, leading dimension rows) <- matrix `index` of a (float32/float64). */
static void load_matrix(const core_array* a, int64_t index, double* dst) {
  int rows = a->shape[a->ndim - 2], cols = a->shape[a->ndim - 1];
  int64_t rs = a->strides[a->ndim - 2], cs = a->strides[a->ndim - 1];
  int64_t base = matrix_offset(a, index);
  if (a->dtype == MLX_FLOAT32) {
    const float* p = (const float*)core_array_ptr(a) + base;
    for (int j = 0; j < cols; j++)
      for (int i = 0; i < rows; i++) dst[i + (int64_t)j * rows] = p[i * rs + j * cs];
  } else {
    const double* p = (const double*)core_array_ptr(a) + base;
    for (int j = 0; j < cols; j++)
      for (int i = 0; i < rows; i++) dst[i + (int64_t)j * rows] = p[i * rs + j * cs];
  }
}

/* Matrix `index` of out (row-contiguous (..., rows, cols), float32/float64) <- src (column-major,
 * leading dimension ld). */
static void store_matrix(core_array* out, int64_t index, int rows, int cols, const double* src,
                         int ld) {
  int64_t base = index * rows * cols;
  if (out->dtype == MLX_FLOAT32) {
    float* p = (float*)core_array_ptr(out) + base;
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < cols; j++) p[i * cols + j] = (float)src[i + (int64_t)j * ld];
  } else {
    double* p = (double*)core_array_ptr(out) + base;
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < cols; j++) p[i * cols + j] = src[i + (int64_t)j * ld];
  }
}

/* Row `index` of out (row-contiguous (..., n)) <- src. */
static void store_vector(core_array* out, int64_t index, int n, const double* src) {
  if (out->dtype == MLX_FLOAT32) {
    float* p = (float*)core_array_ptr(out) + index * n;
    for (int i = 0; i < n; i++) p[i] = (float)src[i];
  } else {
    double* p = (double*)core_array_ptr(out) + index * n;
    for (int i = 0; i < n; i++) p[i] = src[i];
  }
}

/* Zeroes the triangle of a column-major n x n matrix that `upper` (keep upper) excludes. */
static void zero_other_triangle(double* a, int n, bool upper) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < n; i++)
      if (upper ? i > j : i < j) a[i + (int64_t)j * n] = 0;
}

int cpu_eval_inv(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  if (out->size == 0) return 0;
  int n = in->shape[in->ndim - 1];
  int64_t count = matrix_count(in);
  double* a = scratch(sizeof(double) * (size_t)n * n);
  lapack_int* pivots = scratch(sizeof(lapack_int) * (size_t)n);
  int status = !a || !pivots;
  for (int64_t b = 0; b < count && !status; b++) {
    load_matrix(in, b, a);
    lapack_int info;
    if (p->triangular) {
      zero_other_triangle(a, n, p->upper);
      info = LAPACKE_dtrtri(LAPACK_COL_MAJOR, p->upper ? 'U' : 'L', 'N', n, a, n);
    } else {
      info = LAPACKE_dgetrf(LAPACK_COL_MAJOR, n, n, a, n, pivots);
      if (info == 0) info = LAPACKE_dgetri(LAPACK_COL_MAJOR, n, a, n, pivots);
    }
    if (info)
      status = lapack_error(p->triangular ? "tri_inv" : "inv", "the matrix is singular", info, b,
                            count);
    else
      store_matrix(out, b, n, n, a, n);
  }
  free(a);
  free(pivots);
  return status;
}

int cpu_eval_cholesky(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in = node->inputs[0], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  if (out->size == 0) return 0;
  int n = in->shape[in->ndim - 1];
  int64_t count = matrix_count(in);
  double* a = scratch(sizeof(double) * (size_t)n * n);
  int status = !a;
  for (int64_t b = 0; b < count && !status; b++) {
    load_matrix(in, b, a);
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, p->upper ? 'U' : 'L', n, a, n);
    if (info) {
      status = lapack_error("cholesky", "the matrix is not positive definite", info, b, count);
    } else {
      zero_other_triangle(a, n, p->upper);
      store_matrix(out, b, n, n, a, n);
    }
  }
  free(a);
  return status;
}

/* Outputs Q (..., M, K) and R (..., K, N): Householder QR (geqrf), R from its upper triangle, Q
 * formed from the reflectors (orgqr). */
int cpu_eval_qr(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *q = outputs[0], *r = outputs[1];
  if (core_array_alloc_contiguous(q) || core_array_alloc_contiguous(r)) return 1;
  int m = in->shape[in->ndim - 2], n = in->shape[in->ndim - 1], k = m < n ? m : n;
  if (q->size == 0 && r->size == 0) return 0;
  int64_t count = matrix_count(in);
  double* a = scratch(sizeof(double) * (size_t)m * n);
  double* tau = scratch(sizeof(double) * (size_t)k);
  double* upper = scratch(sizeof(double) * (size_t)k * n);
  int status = !a || !tau || !upper;
  for (int64_t b = 0; b < count && !status; b++) {
    load_matrix(in, b, a);
    lapack_int info = LAPACKE_dgeqrf(LAPACK_COL_MAJOR, m, n, a, m, tau);
    for (int j = 0; j < n && !info; j++)
      for (int i = 0; i < k; i++) upper[i + (int64_t)j * k] = i <= j ? a[i + (int64_t)j * m] : 0;
    if (!info) info = LAPACKE_dorgqr(LAPACK_COL_MAJOR, m, k, k, a, m, tau);
    if (info) {
      status = lapack_error("qr", "the factorization failed", info, b, count);
    } else {
      store_matrix(q, b, m, k, a, m);
      store_matrix(r, b, k, n, upper, k);
    }
  }
  free(a);
  free(tau);
  free(upper);
  return status;
}

/* Writes the identity into matrix `index` of out (n x n). */
static void store_identity(core_array* out, int64_t index, int n, double* buffer) {
  for (int64_t i = 0; i < (int64_t)n * n; i++) buffer[i] = i % (n + 1) == 0;
  store_matrix(out, index, n, n, buffer, n);
}

/* Outputs {U (..., M, M), S (..., K), Vt (..., N, N)}, or {S} without vectors (gesdd). */
int cpu_eval_svd(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array* in = node->inputs[0];
  if (in->dtype == MLX_COMPLEX64) return cpu_eval_svd_complex(node, outputs);
  core_array *u = p->vectors ? outputs[0] : NULL, *s = outputs[p->vectors ? 1 : 0];
  core_array* vt = p->vectors ? outputs[2] : NULL;
  for (int i = 0; i < (p->vectors ? 3 : 1); i++)
    if (core_array_alloc_contiguous(outputs[i])) return 1;
  int m = in->shape[in->ndim - 2], n = in->shape[in->ndim - 1], k = m < n ? m : n;
  int64_t count = matrix_count(in);
  if (count == 0 || (!p->vectors && k == 0)) return 0;
  int big = m > n ? m : n;
  double* a = scratch(sizeof(double) * (size_t)m * n);
  double* sv = scratch(sizeof(double) * (size_t)k);
  double* um = scratch(sizeof(double) * (size_t)big * big);
  double* vm = scratch(sizeof(double) * (size_t)n * n);
  int status = !a || !sv || !um || !vm;
  for (int64_t b = 0; b < count && !status; b++) {
    if (k == 0) { /* no singular values; U and Vt are any orthogonal matrices */
      store_identity(u, b, m, um);
      store_identity(vt, b, n, um);
      continue;
    }
    load_matrix(in, b, a);
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, p->vectors ? 'A' : 'N', m, n, a, m, sv, um,
                                     m, vm, n);
    if (info) {
      status = lapack_error("svd", "the singular value decomposition did not converge", info, b,
                            count);
      break;
    }
    store_vector(s, b, k, sv);
    if (p->vectors) {
      store_matrix(u, b, m, m, um, m);
      store_matrix(vt, b, n, n, vm, n);
    }
  }
  free(a);
  free(sv);
  free(um);
  free(vm);
  return status;
}

/* Outputs eigenvalues (..., N) ascending and, with vectors, eigenvectors (..., N, N) as columns
 * (syevd reading the `upper` or lower triangle). */
int cpu_eval_eigh(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in = node->inputs[0], *values = outputs[0], *vectors = p->vectors ? outputs[1] : NULL;
  if (in->dtype == MLX_COMPLEX64) return cpu_eval_eigh_complex(node, outputs);
  if (core_array_alloc_contiguous(values) || (vectors && core_array_alloc_contiguous(vectors)))
    return 1;
  if (values->size == 0) return 0;
  int n = in->shape[in->ndim - 1];
  int64_t count = matrix_count(in);
  double* a = scratch(sizeof(double) * (size_t)n * n);
  double* w = scratch(sizeof(double) * (size_t)n);
  int status = !a || !w;
  for (int64_t b = 0; b < count && !status; b++) {
    load_matrix(in, b, a);
    lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, p->vectors ? 'V' : 'N', p->upper ? 'U' : 'L',
                                     n, a, n, w);
    if (info) {
      status = lapack_error("eigh", "the eigenvalue iteration did not converge", info, b, count);
      break;
    }
    store_vector(values, b, n, w);
    if (vectors) store_matrix(vectors, b, n, n, a, n);
  }
  free(a);
  free(w);
  return status;
}

/* Outputs complex64 eigenvalues (..., N) and, with vectors, unit right eigenvectors as columns
 * (geev). LAPACK stores a complex pair's vectors as two real columns: re and im of the first. */
int cpu_eval_eig(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in = node->inputs[0], *values = outputs[0], *vectors = p->vectors ? outputs[1] : NULL;
  if (in->dtype == MLX_COMPLEX64) return cpu_eval_eig_complex(node, outputs);
  if (core_array_alloc_contiguous(values) || (vectors && core_array_alloc_contiguous(vectors)))
    return 1;
  if (values->size == 0) return 0;
  int n = in->shape[in->ndim - 1];
  int64_t count = matrix_count(in);
  double* a = scratch(sizeof(double) * (size_t)n * n);
  double* vr = scratch(sizeof(double) * (size_t)n * n);
  double* wr = scratch(sizeof(double) * (size_t)n);
  double* wi = scratch(sizeof(double) * (size_t)n);
  int status = !a || !vr || !wr || !wi;
  for (int64_t b = 0; b < count && !status; b++) {
    load_matrix(in, b, a);
    lapack_int info = LAPACKE_dgeev(LAPACK_COL_MAJOR, 'N', p->vectors ? 'V' : 'N', n, a, n, wr, wi,
                                    NULL, 1, vr, n);
    if (info) {
      status = lapack_error("eig", "the QR algorithm did not converge", info, b, count);
      break;
    }
    float* w = (float*)core_array_ptr(values) + 2 * b * n;
    for (int j = 0; j < n; j++) {
      w[2 * j] = (float)wr[j];
      w[2 * j + 1] = (float)wi[j];
    }
    if (!vectors) continue;
    float* v = (float*)core_array_ptr(vectors) + 2 * b * n * n;
    for (int j = 0; j < n; j++) {
      bool pair = wi[j] != 0 && j + 1 < n;
      for (int i = 0; i < n; i++) {
        double re = vr[i + (int64_t)j * n], im = pair ? vr[i + (int64_t)(j + 1) * n] : 0;
        v[2 * (i * n + j)] = (float)re;
        v[2 * (i * n + j) + 1] = (float)im;
        if (pair) { /* the conjugate eigenvalue's vector is the conjugate */
          v[2 * (i * n + j + 1)] = (float)re;
          v[2 * (i * n + j + 1) + 1] = (float)-im;
        }
      }
      if (pair) j++;
    }
  }
  free(a);
  free(vr);
  free(wr);
  free(wi);
  return status;
}

/* Outputs LU (..., M, N) packed, pivots (..., K) uint32 0-based, and the row permutation
 * (..., M) uint32 with A = (L U)[perm] (getrf). */
int cpu_eval_lu_factor(core_node* node, core_array** outputs) {
  core_array *in = node->inputs[0], *lu = outputs[0], *piv = outputs[1], *perm = outputs[2];
  for (int i = 0; i < 3; i++)
    if (core_array_alloc_contiguous(outputs[i])) return 1;
  int m = in->shape[in->ndim - 2], n = in->shape[in->ndim - 1], k = m < n ? m : n;
  int64_t count = matrix_count(in);
  if (lu->size == 0) { /* no pivoting happens; the permutation is the identity */
    for (int64_t b = 0; b < count; b++)
      for (int i = 0; i < m; i++) ((uint32_t*)core_array_ptr(perm))[b * m + i] = (uint32_t)i;
    return 0;
  }
  double* a = scratch(sizeof(double) * (size_t)m * n);
  lapack_int* ipiv = scratch(sizeof(lapack_int) * (size_t)k);
  int status = !a || !ipiv;
  for (int64_t b = 0; b < count && !status; b++) {
    load_matrix(in, b, a);
    lapack_int info = LAPACKE_dgetrf(LAPACK_COL_MAJOR, m, n, a, m, ipiv);
    if (info) {
      status = lapack_error("lu", "the matrix is singular", info, b, count);
      break;
    }
    store_matrix(lu, b, m, n, a, m);
    uint32_t* pv = (uint32_t*)core_array_ptr(piv) + b * k;
    uint32_t* rows = (uint32_t*)core_array_ptr(perm) + b * m;
    for (int i = 0; i < k; i++) pv[i] = (uint32_t)(ipiv[i] - 1);
    /* getrf swapped row i with pv[i] in order i = 0..K-1, so (LU)[i] = A[f[i]] for the forward
     * permutation f; undoing the swaps in reverse on the identity gives f's inverse, the rows
     * with A[i] = (LU)[rows[i]]. */
    for (int i = 0; i < m; i++) rows[i] = (uint32_t)i;
    for (int i = k - 1; i >= 0; i--) {
      uint32_t t = rows[pv[i]];
      rows[pv[i]] = rows[i];
      rows[i] = t;
    }
  }
  free(a);
  free(ipiv);
  return status;
}

/* x with a x = b for a (..., N, N) and b (..., N, R), both broadcast to the output's batch
 * (gesv, or trtrs reading one triangle). */
int cpu_eval_solve(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in_a = node->inputs[0], *in_b = node->inputs[1], *out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  if (out->size == 0) return 0;
  int n = in_b->shape[in_b->ndim - 2], rhs = in_b->shape[in_b->ndim - 1];
  int64_t count = matrix_count(out);
  double* a = scratch(sizeof(double) * (size_t)n * n);
  double* x = scratch(sizeof(double) * (size_t)n * rhs);
  lapack_int* ipiv = scratch(sizeof(lapack_int) * (size_t)n);
  int status = !a || !x || !ipiv;
  const char* op = p->triangular ? "solve_triangular" : "solve";
  for (int64_t b = 0; b < count && !status; b++) {
    load_matrix(in_a, b, a);
    load_matrix(in_b, b, x);
    lapack_int info =
        p->triangular
            ? LAPACKE_dtrtrs(LAPACK_COL_MAJOR, p->upper ? 'U' : 'L', 'N', 'N', n, rhs, a, n, x, n)
            : LAPACKE_dgesv(LAPACK_COL_MAJOR, n, rhs, a, n, ipiv, x, n);
    if (info)
      status = lapack_error(op, "the matrix is singular", info, b, count);
    else
      store_matrix(out, b, n, rhs, x, n);
  }
  free(a);
  free(x);
  free(ipiv);
  return status;
}
