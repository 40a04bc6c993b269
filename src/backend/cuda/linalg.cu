// Dense linear algebra on the GPU through cuSOLVER (CUDA toolkit): cholesky, inv, solve,
// lu_factor, qr, eigh, svd and eig of float32/float64 batches, and the triangular inverse and
// solve through cuBLAS's trsm, computed as the CPU kernels compute them (linalg.c): each
// matrix copied into a column-major double buffer, factorized there (potrf, getrf, getrs, geqrf + orgqr, syevd, gesvd, geev) and
// written back row-major in the output dtype. The factorizations' status is read back after the
// batch (the op waits for it) so that a singular or non-positive-definite matrix fails with the
// CPU's message, and so does NaN or infinity in the input (LAPACKE rejects it on the CPU). One
// matrix at a time: right for a few large matrices, launch-bound for many tiny ones.
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cublas_handle.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/strided.cuh"
#include "backend/gpu.h"

namespace {

cusolverDnHandle_t handles[16];
pthread_mutex_t handle_lock = PTHREAD_MUTEX_INITIALIZER;

cusolverDnHandle_t solver_for(int device, cudaStream_t s) {
  if (device < 0 || device >= 16) return NULL;
  pthread_mutex_lock(&handle_lock);
  if (!handles[device]) {
    cusolverDnHandle_t h;
    if (cusolverDnCreate(&h) == CUSOLVER_STATUS_SUCCESS) handles[device] = h;
  }
  cusolverDnHandle_t h = handles[device];
  pthread_mutex_unlock(&handle_lock);
  if (!h) {
    util_error("cuSOLVER: cannot create a handle on GPU %d", device);
    return NULL;
  }
  cusolverDnSetStream(h, s);
  return h;
}

int solver_check(cusolverStatus_t st, const char* what) {
  return st == CUSOLVER_STATUS_SUCCESS ? 0 : util_error("cuSOLVER: %s failed (status %d)", what, (int)st);
}

__device__ int64_t matrix_base(const gpu_matrices& M, int64_t index) {
  int64_t offset = 0;
  for (int d = M.nbatch - 1; d >= 0; d--) {
    offset += (index % M.batch_shape[d]) * M.batch_strides[d];
    index /= M.batch_shape[d];
  }
  return offset;
}

// dst: the batch's matrices column-major, one after the other; a value that is NaN or infinite
// sets *bad.
__global__ void load_matrices(double* dst, gpu_matrices M, int64_t count, int* bad) {
  const int64_t per = (int64_t)M.rows * M.cols, total = per * count;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = e / per, r = e - b * per;
    const int i = (int)(r % M.rows), j = (int)(r / M.rows);
    const int64_t off = matrix_base(M, b) + i * M.rs + j * M.cs;
    const double v = M.dtype == MLX_FLOAT32 ? (double)((const float*)M.data)[off] : ((const double*)M.data)[off];
    if (!isfinite(v)) *bad = 1;
    dst[e] = v;
  }
}

// out (count, rows, cols) row-major <- src column-major (leading dimension ld, matrices `stride`
// apart); keep 1: the upper triangle only (the rest zero), 2: the lower one, 0: everything, 3:
// everything, transposed (out[i][j] from the source's (j, i)).
__global__ void store_matrices(void* out, int dtype, const double* src, int rows, int cols, int ld, int64_t stride,
                               int64_t count, int keep) {
  const int64_t per = (int64_t)rows * cols, total = per * count;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = e / per, r = e - b * per;
    const int i = (int)(r / cols), j = (int)(r % cols);
    double v = keep == 3 ? src[b * stride + j + (int64_t)i * ld] : src[b * stride + i + (int64_t)j * ld];
    if ((keep == 1 && i > j) || (keep == 2 && i < j)) v = 0.0;
    if (dtype == MLX_FLOAT32) ((float*)out)[e] = (float)v;
    else ((double*)out)[e] = v;
  }
}

// Stores `count` column-major (rows, cols) matrices (ld, stride as store_matrices) on s.
int store(cudaStream_t s, void* out, int dtype, const double* src, int rows, int cols, int ld,
          int64_t stride, int64_t count, int keep) {
  store_matrices<<<grid_for((int64_t)rows * cols * count, 256), 256, 0, s>>>(out, dtype, src, rows, cols, ld,
                                                                                stride, count, keep);
  return GPU_LAUNCHED("linalg store");
}

__global__ void identities(double* dst, int n, int64_t count) {
  const int64_t per = (int64_t)n * n, total = per * count;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e % per;
    dst[e] = r % n == r / n ? 1.0 : 0.0;
  }
}

// LAPACK's trtri/trtrs info for each n x n matrix of A: the 1-based index of the first exactly
// zero diagonal entry (the matrix is singular), in status[1 + m]; a thread per matrix.
__global__ void zero_diagonals(const double* A, int n, int64_t count, int* status) {
  const int64_t m = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (m >= count) return;
  const double* a = A + m * (int64_t)n * n;
  for (int i = 0; i < n; i++)
    if (a[i + (int64_t)i * n] == 0.0) {
      status[1 + m] = i + 1;
      return;
    }
}

// getrf's 1-based row swaps as lu_factor's outputs: the swaps 0-based, and the rows with
// A[i] = (LU)[rows[i]] (the swaps undone in reverse on the identity), a thread per matrix.
__global__ void lu_pivots(const int* ipiv, int k, int m, int64_t count, uint32_t* piv, uint32_t* rows) {
  for (int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; b < count; b += (int64_t)gridDim.x * blockDim.x) {
    uint32_t* pv = piv + b * k;
    uint32_t* rw = rows + b * m;
    for (int i = 0; i < k; i++) pv[i] = (uint32_t)(ipiv[b * k + i] - 1);
    for (int i = 0; i < m; i++) rw[i] = (uint32_t)i;
    for (int i = k - 1; i >= 0; i--) {
      const uint32_t t = rw[pv[i]];
      rw[pv[i]] = rw[i];
      rw[i] = t;
    }
  }
}

// eig's outputs as the CPU writes them: the eigenvalues as complex64, and each right
// eigenvector (LAPACK's real storage: a complex pair's vectors as the columns re, im of the first
// one) as complex64 columns, the pair's second one the conjugate. A thread per (matrix, column);
// whether column j starts a pair is found by walking the columns before it.
__global__ void eig_store(float2* values, float2* vectors, const double2* W, const double* VR, int n, int64_t count) {
  const int64_t total = (int64_t)n * count;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t b = e / n;
    const int j = (int)(e % n);
    const double2* w = W + b * n;
    values[e] = make_float2((float)w[j].x, (float)w[j].y);
    if (!vectors) continue;
    int first = 0;  // the first column of j's pair (j itself when it starts one or is real)
    while (first < j) {
      const bool starts_pair = w[first].y != 0 && first + 1 < n;
      if (starts_pair && first + 1 == j) break;
      first += starts_pair ? 2 : 1;
    }
    const bool pair = w[first].y != 0 && first + 1 < n, second = pair && j == first + 1;
    const double* v = VR + b * (int64_t)n * n;
    float2* out = vectors + b * (int64_t)n * n;
    for (int i = 0; i < n; i++) {
      const double re = v[i + (int64_t)first * n], im = pair ? v[i + (int64_t)(first + 1) * n] : 0.0;
      out[(int64_t)i * n + j] = make_float2((float)re, (float)(second ? -im : im));
    }
  }
}

// Device memory of one call, freed together (stream-ordered).
struct scratch {
  int device;
  void* p[8];
  size_t n[8];
  int used;
  void* get(size_t bytes) {
    void* q = NULL;
    if (used == 8 || gpu_backend_alloc(device, bytes ? bytes : 1, &q)) return NULL;
    p[used] = q, n[used] = bytes ? bytes : 1, used++;
    return q;
  }
  void release() {
    for (int i = 0; i < used; i++) gpu_backend_free(device, p[i], n[i]);
    used = 0;
  }
};

// Waits for the batch and reports its first failure as the CPU kernels do: status[0] is the
// non-finite flag, status[1 + b] matrix b's info.
int check_status(cudaStream_t s, const int* status, int64_t count, const char* op, const char* what) {
  int* host = (int*)malloc(sizeof(int) * (size_t)(count + 1));
  if (!host) return util_error("%s: out of memory", op);
  int st = gpu_check(cudaMemcpyAsync(host, status, sizeof(int) * (size_t)(count + 1), cudaMemcpyDeviceToHost, s),
                     "linalg status copy");
  if (!st) st = gpu_check(cudaStreamSynchronize(s), "linalg");
  char where[64] = "";
  for (int64_t b = 0; b <= count && !st; b++) {
    if (!host[b]) continue;
    if (count > 1 && b > 0) snprintf(where, sizeof where, " (matrix %lld of the batch)", (long long)(b - 1));
    st = b == 0 ? util_error("%s: the input holds NaN or infinity", op)
         : host[b] < 0 ? util_error("%s: cuSOLVER rejected argument %d%s", op, -host[b], where)
                       : util_error("%s: %s%s", op, what, where);
  }
  free(host);
  return st;
}

// The batch of A in doubles (column-major) and the status array (zeroed), loaded on s.
int load_batch(cudaStream_t s, scratch& mem, const gpu_matrices* M, int64_t count, double** A,
               int** status) {
  *A = (double*)mem.get(sizeof(double) * (size_t)M->rows * M->cols * count);
  *status = (int*)mem.get(sizeof(int) * (size_t)(count + 1));
  if (!*A || !*status) return 1;
  if (gpu_check(cudaMemsetAsync(*status, 0, sizeof(int) * (size_t)(count + 1), s), "linalg status")) return 1;
  load_matrices<<<grid_for((int64_t)M->rows * M->cols * count, 256), 256, 0, s>>>(*A, *M, count, *status);
  return GPU_LAUNCHED("linalg load");
}

// getrf of every n x n (or m x n) matrix of A: pivots in ipiv (k a matrix), infos in status[1..].
int getrf_batch(cusolverDnHandle_t h, scratch& mem, double* A, int m, int n, int64_t count, int** ipiv, int* status) {
  const int k = m < n ? m : n;
  int lwork = 0;
  if (solver_check(cusolverDnDgetrf_bufferSize(h, m, n, A, m, &lwork), "getrf workspace")) return 1;
  double* work = (double*)mem.get(sizeof(double) * (size_t)(lwork > 0 ? lwork : 1));
  *ipiv = (int*)mem.get(sizeof(int) * (size_t)(k > 0 ? k : 1) * count);
  if (!work || !*ipiv) return 1;
  for (int64_t b = 0; b < count; b++)
    if (solver_check(cusolverDnDgetrf(h, m, n, A + b * (int64_t)m * n, m, work, *ipiv + b * k, status + 1 + b), "getrf"))
      return 1;
  return 0;
}

// One call's stream, solver handle, scratch memory and loaded batch (A, status); st is its first
// failure (1, reported), and the scratch memory is freed with it.
struct solver_call {
  cudaStream_t s;
  cusolverDnHandle_t h;
  scratch mem;
  double* A = NULL;
  int* status = NULL;
  int st;
  solver_call(int device, const gpu_matrices* a, int64_t count) : mem{device, {}, {}, 0} {
    s = gpu_stream(device);
    h = s ? solver_for(device, s) : NULL;
    st = h ? load_batch(s, mem, a, count, &A, &status) : 1;
  }
  ~solver_call() { mem.release(); }
  // n doubles of scratch (at least one), or NULL once the call has failed.
  double* doubles(size_t n) {
    double* p = st ? NULL : (double*)mem.get(sizeof(double) * (n ? n : 1));
    if (!st && !p) st = 1;
    return p;
  }
};

// The right-hand sides of a solve, n x rhs a matrix in doubles (column-major): b's matrices (NaN
// or infinity flagged in status[0]), or identities when b is NULL (an inverse). NULL once failed.
double* right_hand_sides(solver_call& c, const gpu_matrices* b, int n, int rhs, int64_t count) {
  double* B = c.doubles((size_t)n * rhs * count);
  if (c.st) return NULL;
  if (b)
    load_matrices<<<grid_for((int64_t)n * rhs * count, 256), 256, 0, c.s>>>(B, *b, count, c.status);
  else
    identities<<<grid_for((int64_t)n * n * count, 256), 256, 0, c.s>>>(B, n, count);
  c.st = GPU_LAUNCHED("linalg right-hand sides");
  return c.st ? NULL : B;
}

}  // namespace

extern "C" int gpu_linalg_cholesky(int device, const gpu_matrices* a, int64_t count, bool upper, void* out,
                                   int out_dtype) {
  solver_call c(device, a, count);
  const int n = a->rows;
  const cublasFillMode_t uplo = upper ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER;
  int lwork = 0;
  if (!c.st) c.st = solver_check(cusolverDnDpotrf_bufferSize(c.h, uplo, n, c.A, n, &lwork), "potrf workspace");
  double* work = c.doubles((size_t)lwork);
  for (int64_t b = 0; b < count && !c.st; b++)
    c.st = solver_check(cusolverDnDpotrf(c.h, uplo, n, c.A + b * (int64_t)n * n, n, work, lwork, c.status + 1 + b),
                        "potrf");
  if (!c.st) c.st = store(c.s, out, out_dtype, c.A, n, n, n, (int64_t)n * n, count, upper ? 1 : 2);
  if (!c.st) c.st = check_status(c.s, c.status, count, "cholesky", "the matrix is not positive definite");
  return c.st;
}

extern "C" int gpu_linalg_solve(int device, const gpu_matrices* a, const gpu_matrices* b, int64_t count, void* out,
                                int out_dtype, const char* op) {
  solver_call c(device, a, count);
  const int n = a->rows, rhs = b ? b->cols : n;
  int *ipiv = NULL, *rs_info = NULL;
  double* B = right_hand_sides(c, b, n, rhs, count);
  if (!c.st && !(rs_info = (int*)c.mem.get(sizeof(int)))) c.st = 1;
  if (!c.st) c.st = getrf_batch(c.h, c.mem, c.A, n, n, count, &ipiv, c.status);
  // A singular matrix's getrs divides by a zero pivot; its output is discarded by the error.
  for (int64_t m = 0; m < count && !c.st; m++)
    c.st = solver_check(cusolverDnDgetrs(c.h, CUBLAS_OP_N, n, rhs, c.A + m * (int64_t)n * n, n, ipiv + m * n,
                                         B + m * (int64_t)n * rhs, n, rs_info),
                        "getrs");
  if (!c.st) c.st = store(c.s, out, out_dtype, B, n, rhs, n, (int64_t)n * rhs, count, 0);
  if (!c.st) c.st = check_status(c.s, c.status, count, op, "the matrix is singular");
  return c.st;
}

// x with a x = b for triangular a (reading its upper or lower triangle: LAPACK's trtrs), or a's
// inverse when b is NULL (trtri: the solve against identities, the other triangle stored as
// zeros). trsm itself does not look for a zero pivot, so the diagonals are checked first.
extern "C" int gpu_linalg_triangular(int device, const gpu_matrices* a, const gpu_matrices* b, int64_t count, bool upper,
                                     void* out, int out_dtype, const char* op) {
  solver_call c(device, a, count);
  const int n = a->rows, rhs = b ? b->cols : n;
  double* B = right_hand_sides(c, b, n, rhs, count);
  cublasHandle_t h = c.st ? NULL : gpu_cublas_handle(device, c.s);
  if (!c.st && !h) c.st = 1;
  if (!c.st) {
    zero_diagonals<<<grid_for(count, 256), 256, 0, c.s>>>(c.A, n, count, c.status);
    c.st = GPU_LAUNCHED("linalg diagonal check");
  }
  const double one = 1.0;
  const cublasFillMode_t uplo = upper ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER;
  for (int64_t m = 0; m < count && !c.st; m++)
    if (cublasDtrsm(h, CUBLAS_SIDE_LEFT, uplo, CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, n, rhs, &one, c.A + m * (int64_t)n * n,
                    n, B + m * (int64_t)n * rhs, n) != CUBLAS_STATUS_SUCCESS)
      c.st = util_error("%s: cuBLAS trsm failed", op);
  if (!c.st) c.st = store(c.s, out, out_dtype, B, n, rhs, n, (int64_t)n * rhs, count, b ? 0 : upper ? 1 : 2);
  if (!c.st) c.st = check_status(c.s, c.status, count, op, "the matrix is singular");
  return c.st;
}

extern "C" int gpu_linalg_lu_factor(int device, const gpu_matrices* a, int64_t count, void* lu, int lu_dtype,
                                    uint32_t* piv, uint32_t* rows) {
  solver_call c(device, a, count);
  const int m = a->rows, n = a->cols, k = m < n ? m : n;
  int* ipiv = NULL;
  if (!c.st) c.st = getrf_batch(c.h, c.mem, c.A, m, n, count, &ipiv, c.status);
  if (!c.st) c.st = store(c.s, lu, lu_dtype, c.A, m, n, m, (int64_t)m * n, count, 0);
  if (!c.st) {
    lu_pivots<<<grid_for(count, 256), 256, 0, c.s>>>(ipiv, k, m, count, piv, rows);
    c.st = GPU_LAUNCHED("lu_factor pivots");
  }
  if (!c.st) c.st = check_status(c.s, c.status, count, "lu", "the matrix is singular");
  return c.st;
}

extern "C" int gpu_linalg_qr(int device, const gpu_matrices* a, int64_t count, void* q, void* r, int out_dtype) {
  solver_call c(device, a, count);
  const int m = a->rows, n = a->cols, k = m < n ? m : n;
  double* tau = c.doubles((size_t)k * count);
  int lw1 = 0, lw2 = 0;
  if (!c.st) c.st = solver_check(cusolverDnDgeqrf_bufferSize(c.h, m, n, c.A, m, &lw1), "geqrf workspace");
  if (!c.st) c.st = solver_check(cusolverDnDorgqr_bufferSize(c.h, m, k, k, c.A, m, tau, &lw2), "orgqr workspace");
  const int lwork = lw1 > lw2 ? lw1 : lw2;
  double* work = c.doubles((size_t)lwork);
  const int64_t per = (int64_t)m * n;
  for (int64_t b = 0; b < count && !c.st; b++)
    c.st = solver_check(cusolverDnDgeqrf(c.h, m, n, c.A + b * per, m, tau + b * k, work, lwork, c.status + 1 + b),
                        "geqrf");
  // R: the upper triangle of the first k rows, before orgqr turns the reflectors into Q.
  if (!c.st) c.st = store(c.s, r, out_dtype, c.A, k, n, m, per, count, 1);
  for (int64_t b = 0; b < count && !c.st; b++)
    c.st = solver_check(
        cusolverDnDorgqr(c.h, m, k, k, c.A + b * per, m, tau + b * k, work, lwork, c.status + 1 + b), "orgqr");
  if (!c.st) c.st = store(c.s, q, out_dtype, c.A, m, k, m, per, count, 0);
  if (!c.st) c.st = check_status(c.s, c.status, count, "qr", "the factorization failed");
  return c.st;
}

extern "C" int gpu_linalg_eigh(int device, const gpu_matrices* a, int64_t count, bool upper, void* values,
                               void* vectors, int out_dtype) {
  solver_call c(device, a, count);
  const int n = a->rows;
  double* W = c.doubles((size_t)n * count);
  const cusolverEigMode_t jobz = vectors ? CUSOLVER_EIG_MODE_VECTOR : CUSOLVER_EIG_MODE_NOVECTOR;
  const cublasFillMode_t uplo = upper ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER;
  int lwork = 0;
  if (!c.st) c.st = solver_check(cusolverDnDsyevd_bufferSize(c.h, jobz, uplo, n, c.A, n, W, &lwork), "syevd workspace");
  double* work = c.doubles((size_t)lwork);
  const int64_t per = (int64_t)n * n;
  for (int64_t b = 0; b < count && !c.st; b++)
    c.st = solver_check(
        cusolverDnDsyevd(c.h, jobz, uplo, n, c.A + b * per, n, W + b * n, work, lwork, c.status + 1 + b), "syevd");
  if (!c.st) c.st = store(c.s, values, out_dtype, W, 1, n, 1, n, count, 0);  // ascending, a row a matrix
  if (!c.st && vectors) c.st = store(c.s, vectors, out_dtype, c.A, n, n, n, per, count, 0);
  if (!c.st) c.st = check_status(c.s, c.status, count, "eigh", "the eigenvalue iteration did not converge");
  return c.st;
}

// svd: gesvd wants rows >= cols, so a wide matrix is decomposed transposed (loaded with its
// strides swapped): Aᵀ = U' S V'ᵀ gives U = V' and Vᵀ = U'ᵀ. U and Vᵀ are any orthonormal
// completion past the k singular vectors (the CPU's gesdd may choose another).
extern "C" int gpu_linalg_svd(int device, const gpu_matrices* a, int64_t count, void* u, void* sv, void* vt,
                              int out_dtype) {
  const bool wide = a->rows < a->cols, vectors = u != NULL;
  gpu_matrices t = *a;
  if (wide) t.rows = a->cols, t.cols = a->rows, t.rs = a->cs, t.cs = a->rs;
  solver_call c(device, &t, count);
  const int m = t.rows, n = t.cols;  // m >= n
  double* S = c.doubles((size_t)n * count);
  double* U = vectors ? c.doubles((size_t)m * m * count) : NULL;
  double* V = vectors ? c.doubles((size_t)n * n * count) : NULL;
  int lwork = 0;
  if (!c.st) c.st = solver_check(cusolverDnDgesvd_bufferSize(c.h, m, n, &lwork), "gesvd workspace");
  double* work = c.doubles((size_t)lwork);
  const signed char job = vectors ? 'A' : 'N';
  for (int64_t b = 0; b < count && !c.st; b++)
    c.st = solver_check(cusolverDnDgesvd(c.h, job, job, m, n, c.A + b * (int64_t)m * n, m, S + b * n,
                                         vectors ? U + b * (int64_t)m * m : NULL, m,
                                         vectors ? V + b * (int64_t)n * n : NULL, n, work, lwork, NULL, c.status + 1 + b),
                        "gesvd");
  if (!c.st) c.st = store(c.s, sv, out_dtype, S, 1, n, 1, n, count, 0);
  if (!c.st && vectors && !wide) {
    c.st = store(c.s, u, out_dtype, U, m, m, m, (int64_t)m * m, count, 0);
    if (!c.st) c.st = store(c.s, vt, out_dtype, V, n, n, n, (int64_t)n * n, count, 0);
  } else if (!c.st && vectors) {  // A = V' S U'ᵀ: U = (V'ᵀ)ᵀ, Vᵀ = U'ᵀ
    c.st = store(c.s, u, out_dtype, V, n, n, n, (int64_t)n * n, count, 3);
    if (!c.st) c.st = store(c.s, vt, out_dtype, U, m, m, m, (int64_t)m * m, count, 3);
  }
  if (!c.st) c.st = check_status(c.s, c.status, count, "svd", "the singular value decomposition did not converge");
  return c.st;
}

extern "C" int gpu_linalg_eig(int device, const gpu_matrices* a, int64_t count, void* values, void* vectors) {
  solver_call c(device, a, count);
  const int n = a->rows;
  double* W = c.doubles((size_t)2 * n * count);  // complex eigenvalues
  double* VR = vectors ? c.doubles((size_t)n * n * count) : NULL;
  cusolverDnParams_t params = NULL;
  if (!c.st) c.st = solver_check(cusolverDnCreateParams(&params), "params");
  const cusolverEigMode_t jobvr = vectors ? CUSOLVER_EIG_MODE_VECTOR : CUSOLVER_EIG_MODE_NOVECTOR;
  size_t dev_bytes = 0, host_bytes = 0;
  if (!c.st)
    c.st = solver_check(cusolverDnXgeev_bufferSize(c.h, params, CUSOLVER_EIG_MODE_NOVECTOR, jobvr, n, CUDA_R_64F, c.A, n,
                                                   CUDA_C_64F, W, CUDA_R_64F, NULL, 1, CUDA_R_64F, VR, n, CUDA_R_64F,
                                                   &dev_bytes, &host_bytes),
                        "geev workspace");
  void* dev_work = c.st ? NULL : c.mem.get(dev_bytes);
  void* host_work = c.st ? NULL : malloc(host_bytes ? host_bytes : 1);
  if (!c.st && (!dev_work || !host_work)) c.st = c.st ? c.st : util_error("eig: out of memory for the workspace");
  for (int64_t b = 0; b < count && !c.st; b++)
    c.st = solver_check(cusolverDnXgeev(c.h, params, CUSOLVER_EIG_MODE_NOVECTOR, jobvr, n, CUDA_R_64F,
                                        c.A + b * (int64_t)n * n, n, CUDA_C_64F, W + 2 * b * n, CUDA_R_64F, NULL, 1,
                                        CUDA_R_64F, vectors ? VR + b * (int64_t)n * n : NULL, n, CUDA_R_64F, dev_work,
                                        dev_bytes, host_work, host_bytes, c.status + 1 + b),
                        "geev");
  if (!c.st) {
    eig_store<<<grid_for((int64_t)n * count, 256), 256, 0, c.s>>>((float2*)values, (float2*)vectors,
                                                                      (const double2*)W, VR, n, count);
    c.st = GPU_LAUNCHED("eig store");
  }
  if (!c.st) c.st = check_status(c.s, c.status, count, "eig", "the QR algorithm did not converge");
  free(host_work);
  if (params) cusolverDnDestroyParams(params);
  return c.st;
}
