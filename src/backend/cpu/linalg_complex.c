/* complex64 svd, eigh (Hermitian) and eig through LAPACKE's double-complex routines (zgesdd,
 * zheevd, zgeev): as for the real kernels, each matrix is copied into a column-major buffer
 * (here double complex, from any strided complex64 layout), factorized in double precision and
 * rounded once on output. S and eigh's eigenvalues are real (float32). */
#include <complex.h>
#include <stdlib.h>

#include "backend/cpu/linalg_util.h"
#include "ops/linalg_params.h"

/* dst (column-major, leading dimension rows) <- matrix `index` of a complex64 array. */
static void load_complex(const core_array* a, int64_t index, double complex* dst) {
  int rows = a->shape[a->ndim - 2], cols = a->shape[a->ndim - 1];
  int64_t rs = a->strides[a->ndim - 2], cs = a->strides[a->ndim - 1];
  const float* p = (const float*)core_array_ptr(a) + 2 * matrix_offset(a, index);
  for (int j = 0; j < cols; j++)
    for (int i = 0; i < rows; i++) {
      const float* e = p + 2 * (i * rs + j * cs);
      dst[i + (int64_t)j * rows] = (double)e[0] + (double)e[1] * I;
    }
}

/* Matrix `index` of out (row-contiguous complex64 (..., rows, cols)) <- src (column-major,
 * leading dimension ld). */
static void store_complex(core_array* out, int64_t index, int rows, int cols,
                          const double complex* src, int ld) {
  float* p = (float*)core_array_ptr(out) + 2 * index * rows * cols;
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++) {
      double complex v = src[i + (int64_t)j * ld];
      p[2 * (i * cols + j)] = (float)creal(v);
      p[2 * (i * cols + j) + 1] = (float)cimag(v);
    }
}

/* Row `index` of a float32 (..., n) output <- src. */
static void store_real(core_array* out, int64_t index, int n, const double* src) {
  float* p = (float*)core_array_ptr(out) + index * n;
  for (int i = 0; i < n; i++) p[i] = (float)src[i];
}

/* U (..., M, M) and Vt = V^H (..., N, N) complex64, S (..., K) float32; or S alone. */
int cpu_eval_svd_complex(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array* in = node->inputs[0];
  core_array *u = p->vectors ? outputs[0] : NULL, *s = outputs[p->vectors ? 1 : 0];
  core_array* vt = p->vectors ? outputs[2] : NULL;
  for (int i = 0; i < (p->vectors ? 3 : 1); i++)
    if (core_array_alloc_contiguous(outputs[i])) return 1;
  int m = in->shape[in->ndim - 2], n = in->shape[in->ndim - 1], k = m < n ? m : n;
  int64_t count = matrix_count(in);
  if (count == 0 || (!p->vectors && k == 0)) return 0;
  double complex* a = scratch(sizeof(double complex) * (size_t)m * n);
  double* sv = scratch(sizeof(double) * (size_t)k);
  double complex* um = scratch(sizeof(double complex) * (size_t)m * m);
  double complex* vm = scratch(sizeof(double complex) * (size_t)n * n);
  int status = !a || !sv || !um || !vm;
  for (int64_t b = 0; b < count && !status; b++) {
    if (k == 0) { /* no singular values; U and Vt are any unitary matrices */
      for (int64_t i = 0; i < (int64_t)m * m; i++) um[i] = i % (m + 1) == 0;
      for (int64_t i = 0; i < (int64_t)n * n; i++) vm[i] = i % (n + 1) == 0;
      store_complex(u, b, m, m, um, m);
      store_complex(vt, b, n, n, vm, n);
      continue;
    }
    load_complex(in, b, a);
    lapack_int info = LAPACKE_zgesdd(LAPACK_COL_MAJOR, p->vectors ? 'A' : 'N', m, n, a, m, sv, um,
                                     m, vm, n);
    if (info) {
      status = lapack_error("svd", "the singular value decomposition did not converge", info, b,
                            count);
      break;
    }
    store_real(s, b, k, sv);
    if (p->vectors) {
      store_complex(u, b, m, m, um, m);
      store_complex(vt, b, n, n, vm, n);
    }
  }
  free(a);
  free(sv);
  free(um);
  free(vm);
  return status;
}

/* Eigenvalues (..., N) float32 ascending and, with vectors, eigenvectors (..., N, N) complex64
 * as columns, reading the `upper` or lower triangle (the diagonal's imaginary parts ignored). */
int cpu_eval_eigh_complex(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in = node->inputs[0], *values = outputs[0], *vectors = p->vectors ? outputs[1] : NULL;
  if (core_array_alloc_contiguous(values) || (vectors && core_array_alloc_contiguous(vectors)))
    return 1;
  if (values->size == 0) return 0;
  int n = in->shape[in->ndim - 1];
  int64_t count = matrix_count(in);
  double complex* a = scratch(sizeof(double complex) * (size_t)n * n);
  double* w = scratch(sizeof(double) * (size_t)n);
  int status = !a || !w;
  for (int64_t b = 0; b < count && !status; b++) {
    load_complex(in, b, a);
    lapack_int info = LAPACKE_zheevd(LAPACK_COL_MAJOR, p->vectors ? 'V' : 'N', p->upper ? 'U' : 'L',
                                     n, a, n, w);
    if (info) {
      status = lapack_error("eigh", "the eigenvalue iteration did not converge", info, b, count);
      break;
    }
    store_real(values, b, n, w);
    if (vectors) store_complex(vectors, b, n, n, a, n);
  }
  free(a);
  free(w);
  return status;
}

/* Eigenvalues (..., N) and, with vectors, unit right eigenvectors (..., N, N) as columns, both
 * complex64 (zgeev). */
int cpu_eval_eig_complex(core_node* node, core_array** outputs) {
  const linalg_params* p = node->params;
  core_array *in = node->inputs[0], *values = outputs[0], *vectors = p->vectors ? outputs[1] : NULL;
  if (core_array_alloc_contiguous(values) || (vectors && core_array_alloc_contiguous(vectors)))
    return 1;
  if (values->size == 0) return 0;
  int n = in->shape[in->ndim - 1];
  int64_t count = matrix_count(in);
  double complex* a = scratch(sizeof(double complex) * (size_t)n * n);
  double complex* vr = scratch(sizeof(double complex) * (size_t)n * n);
  double complex* w = scratch(sizeof(double complex) * (size_t)n);
  int status = !a || !vr || !w;
  for (int64_t b = 0; b < count && !status; b++) {
    load_complex(in, b, a);
    lapack_int info = LAPACKE_zgeev(LAPACK_COL_MAJOR, 'N', p->vectors ? 'V' : 'N', n, a, n, w, NULL,
                                    1, vr, n);
    if (info) {
      status = lapack_error("eig", "the QR algorithm did not converge", info, b, count);
      break;
    }
    store_complex(values, b, 1, n, w, 1);
    if (vectors) store_complex(vectors, b, n, n, vr, n);
  }
  free(a);
  free(vr);
  free(w);
  return status;
}
