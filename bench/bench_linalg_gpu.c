/* The linalg ops on a GPU stream (cuSOLVER) next to the CPU stream (LAPACK on all cores), one
 * matrix of n x n float32 values: cholesky, inv, solve (n right-hand sides), lu_factor, qr, eigh
 * and svd with vectors, eig with vectors of a general matrix, tri_inv and solve_triangular (n
 * right-hand sides, cuBLAS trsm) of its lower triangle, each timed as op + eval (the GPU side waits for the factorization's
 * status as the op does), median of 3 after a warm-up.
 *   bench_linalg_gpu [n ...]   (default 256 1024)
 * Prints "SKIP" without a GPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mlx/c/mlx.h"

enum { OP_CHOLESKY, OP_INV, OP_SOLVE, OP_LU, OP_QR, OP_EIGH, OP_SVD, OP_EIG, OP_TRI_INV, OP_SOLVE_TRI, OP_COUNT };
static const char* op_names[OP_COUNT] = {"cholesky", "inv", "solve", "lu_factor", "qr",
                                         "eigh", "svd", "eig", "tri_inv", "solve_triangular"};

/* Runs op once on stream s and evaluates every output; 0 on success. */
static int run(int op, mlx_array spd, mlx_array b, mlx_stream s) {
  mlx_array r0 = mlx_array_new(), r1 = mlx_array_new();
  mlx_vector_array v = mlx_vector_array_new();
  int st = 0;
  switch (op) {
    case OP_CHOLESKY: st = mlx_linalg_cholesky(&r0, spd, false, s); break;
    case OP_INV: st = mlx_linalg_inv(&r0, spd, s); break;
    case OP_SOLVE: st = mlx_linalg_solve(&r0, spd, b, s); break;
    case OP_LU: st = mlx_linalg_lu_factor(&r0, &r1, spd, s); break;
    case OP_QR: st = mlx_linalg_qr(&r0, &r1, spd, s); break;
    case OP_EIGH: st = mlx_linalg_eigh(&r0, &r1, spd, "L", s); break;
    case OP_EIG: st = mlx_linalg_eig(&r0, &r1, b, s); break; /* b: a general (non-symmetric) matrix */
    case OP_TRI_INV: st = mlx_linalg_tri_inv(&r0, spd, false, s); break; /* its lower triangle */
    case OP_SOLVE_TRI: st = mlx_linalg_solve_triangular(&r0, spd, b, false, s); break;
    default: st = mlx_linalg_svd(&v, spd, true, s); break;
  }
  if (!st && op == OP_SVD) {
    for (size_t i = 0; i < mlx_vector_array_size(v) && !st; i++) {
      mlx_array o = mlx_array_new();
      st = mlx_vector_array_get(&o, v, i) || mlx_array_eval(o);
      mlx_array_free(o);
    }
  } else if (!st) {
    st = mlx_array_eval(r0) || ((op == OP_LU || op == OP_QR || op == OP_EIGH || op == OP_EIG) && mlx_array_eval(r1));
  }
  mlx_array_free(r0);
  mlx_array_free(r1);
  mlx_vector_array_free(v);
  return st;
}

static int by_value(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* Median seconds of 3 runs after one warm-up; negative after an error. */
static double seconds(int op, mlx_array spd, mlx_array b, mlx_stream s) {
  if (run(op, spd, b, s)) return -1;
  double t[3];
  for (int r = 0; r < 3; r++) {
    double t0 = bench_now();
    if (run(op, spd, b, s)) return -1;
    t[r] = bench_now() - t0;
  }
  qsort(t, 3, sizeof t[0], by_value);
  return t[1];
}

int main(int argc, char** argv) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (!count) {
    printf("SKIP: no CUDA GPU\n");
    return 0;
  }
  int sizes[8] = {256, 1024}, n_sizes = 2;
  if (argc > 1) {
    n_sizes = 0;
    for (int i = 1; i < argc && n_sizes < 8; i++) sizes[n_sizes++] = atoi(argv[i]);
  }
  mlx_stream gpu = mlx_default_gpu_stream_new(), cpu = mlx_default_cpu_stream_new();
  printf("| op | n | GPU ms | CPU ms | CPU / GPU |\n|---|---|---|---|---|\n");
  for (int si = 0; si < n_sizes; si++) {
    const int n = sizes[si];
    int shape[2] = {n, n};
    /* X Xᵀ / n + I: symmetric positive definite, well conditioned. */
    mlx_array key = mlx_array_new(), x = mlx_array_new(), xt = mlx_array_new(), p = mlx_array_new();
    mlx_array eye = mlx_array_new(), scaled = mlx_array_new(), spd = mlx_array_new(), b = mlx_array_new();
    mlx_array inv_n = mlx_array_new_float(1.0f / (float)n);
    mlx_random_key(&key, 7);
    mlx_random_normal(&x, shape, 2, MLX_FLOAT32, 0.0f, 1.0f, key, cpu);
    mlx_transpose(&xt, x, cpu);
    mlx_matmul(&p, x, xt, cpu);
    mlx_multiply(&scaled, p, inv_n, cpu);
    mlx_eye(&eye, n, n, 0, MLX_FLOAT32, cpu);
    mlx_add(&spd, scaled, eye, cpu);
    mlx_random_normal(&b, shape, 2, MLX_FLOAT32, 0.0f, 1.0f, key, cpu);
    mlx_array_eval(spd);
    mlx_array_eval(b);
    for (int op = 0; op < OP_COUNT; op++) {
      double tg = seconds(op, spd, b, gpu), tc = seconds(op, spd, b, cpu);
      if (tg < 0 || tc < 0) {
        printf("| %s | %d | failed | | |\n", op_names[op], n);
        continue;
      }
      printf("| %s | %d | %.2f | %.2f | %.1f |\n", op_names[op], n, tg * 1e3, tc * 1e3, tc / tg);
    }
    mlx_array all[] = {key, x, xt, p, eye, scaled, spd, b, inv_n};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  }
  mlx_stream_free(gpu);
  mlx_stream_free(cpu);
  return 0;
}
