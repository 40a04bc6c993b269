/* CPU matmul kernel: batched GEMM over broadcast batch dimensions. float32/float64/complex64 go
 * to OpenBLAS, with transposed views passed as transposes (no copy); float16/bfloat16 products
 * with a few rows (decode, speculative verification, short prefills) stream the half-precision
 * weights through the kernels of gemv.c, and larger ones widen the operands to float32 for
 * sgemm. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/copy.h"
#include "backend/cpu/gemv.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/strided.h"
#include "core/half.h"
#include "ops/matmul_params.h"
#include "util/error.h"

/* A (rows, cols) matrix operand: element pointer and strides in elements. */
typedef struct {
  const char* data;
  int64_t rs, cs;
} mat_ref;

typedef struct {
  mlx_dtype dtype;
  int64_t M, N, K;
  float alpha, beta;
} gemm_shape;

/* How BLAS can read a (R, C) operand in place: as stored (row-major) or as the transpose of a
 * row-major matrix (a transposed view). False when neither works and a copy is needed. */
static bool blas_layout(int64_t R, int64_t C, int64_t rs, int64_t cs, enum CBLAS_TRANSPOSE* t,
                        int64_t* ld) {
  int64_t max_ld = 0x7fffffff;
  if ((cs == 1 || C <= 1) && (R <= 1 || (rs >= C && rs >= 1))) {
    *t = CblasNoTrans;
    *ld = R <= 1 ? (C > 1 ? C : 1) : rs;
    return *ld <= max_ld;
  }
  if ((rs == 1 || R <= 1) && (C <= 1 || (cs >= R && cs >= 1))) {
    *t = CblasTrans;
    *ld = C <= 1 ? (R > 1 ? R : 1) : cs;
    return *ld <= max_ld;
  }
  return false;
}

/* Dense row-major copy of an operand BLAS cannot read in place; the caller frees *owned. */
static int densify(mat_ref* m, int64_t R, int64_t C, size_t elem, void** owned) {
  *owned = malloc((size_t)(R * C) * elem + 1);
  if (!*owned) return util_error("matmul: out of memory");
  int shape[2] = {(int)R, (int)C};
  int64_t strides[2] = {m->rs, m->cs};
  cpu_copy_strided(*owned, m->data, shape, strides, 2, elem);
  *m = (mat_ref){*owned, C, 1};
  return 0;
}

/* C (M, N, dense) = alpha * A @ B + beta * C for float32, float64 and complex64. */
static int gemm_blas(const gemm_shape* g, mat_ref a, mat_ref b, void* c) {
  size_t elem = core_dtype_size(g->dtype);
  enum CBLAS_TRANSPOSE ta = CblasNoTrans, tb = CblasNoTrans;
  int64_t lda = 1, ldb = 1;
  void *own_a = NULL, *own_b = NULL;
  int status = 0;
  if (!blas_layout(g->M, g->K, a.rs, a.cs, &ta, &lda)) {
    TRY(densify(&a, g->M, g->K, elem, &own_a));
    blas_layout(g->M, g->K, a.rs, a.cs, &ta, &lda);
  }
  if (!blas_layout(g->K, g->N, b.rs, b.cs, &tb, &ldb)) {
    TRY(densify(&b, g->K, g->N, elem, &own_b));
    blas_layout(g->K, g->N, b.rs, b.cs, &tb, &ldb);
  }
  int M = (int)g->M, N = (int)g->N, K = (int)g->K;
  int64_t incx = g->K <= 1 ? 1 : a.cs; /* A is one row when gemv applies */
  /* One row times a matrix: gemv reads B once, where gemm would pack it first. */
  bool gemv = g->M == 1 && g->dtype != MLX_COMPLEX64 && incx >= 1 && incx <= 0x7fffffff;
  if (gemv) {
    /* y (N) = op(B)^T x; B stored (K, N) row-major, or (N, K) row-major when transposed. */
    enum CBLAS_TRANSPOSE t = tb == CblasNoTrans ? CblasTrans : CblasNoTrans;
    int rows = tb == CblasNoTrans ? K : N, cols = tb == CblasNoTrans ? N : K;
    if (g->dtype == MLX_FLOAT32)
      cblas_sgemv(CblasRowMajor, t, rows, cols, g->alpha, (const float*)b.data, (int)ldb,
                  (const float*)a.data, (int)incx, g->beta, c, 1);
    else
      cblas_dgemv(CblasRowMajor, t, rows, cols, g->alpha, (const double*)b.data, (int)ldb,
                  (const double*)a.data, (int)incx, g->beta, c, 1);
  } else if (g->dtype == MLX_FLOAT32) {
    cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, g->alpha, (const float*)a.data, (int)lda,
                (const float*)b.data, (int)ldb, g->beta, c, N);
  } else if (g->dtype == MLX_FLOAT64) {
    cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, g->alpha, (const double*)a.data, (int)lda,
                (const double*)b.data, (int)ldb, g->beta, c, N);
  } else {
    float alpha[2] = {g->alpha, 0}, beta[2] = {g->beta, 0};
    cblas_cgemm(CblasRowMajor, ta, tb, M, N, K, alpha, a.data, (int)lda, b.data, (int)ldb, beta, c,
                N);
  }
cleanup:
  free(own_a);
  free(own_b);
  return status;
}

/* Products of float16/bfloat16 operands with at most this many rows stream B through gemv.c
 * (each weight read once, widened in registers); more rows widen B whole and run sgemm, which
 * pays off once the widening is shared by enough rows. Measured with `bench_qgemv 64 128 256
 * 512` (bfloat16 x times W^T), the library built as is and with -DMATMUL_HALF_ROWS_MAX=1, two
 * runs each, best, 2 threads, dev machine; streaming / widening + sgemm at 64, 128, 256, 512
 * rows: 4096 x 4096 12.2 / 39.5, 23.7 / 46.1, 48.0 / 60.2, 88.3 / 88.0 ms; 14336 x 4096
 * 36.0 / 136, 71.7 / 163, 157 / 207, 297 / 300 ms. */
#ifndef MATMUL_HALF_ROWS_MAX
#define MATMUL_HALF_ROWS_MAX 256
#endif
/* Floats of B widened per sgemm call when more rows widen it (gemm_half): 28 MB, under glibc's
 * largest mmap threshold (32 MB), so the scratch comes back from the heap instead of fresh pages. */
#define GEMM_HALF_SCRATCH ((int64_t)7 << 20)
static int64_t half_scratch = GEMM_HALF_SCRATCH;

int64_t cpu_matmul_half_scratch(int64_t floats) {
  int64_t previous = half_scratch;
  if (floats > 0) half_scratch = floats;
  return previous;
}

/* float16/bfloat16: few rows stream B as stored; everything else widens the operands to float32
 * and runs sgemm, rounding the result once. */
static int gemm_half(const gemm_shape* g, mat_ref a, mat_ref b, void* c) {
  bool bf16 = g->dtype == MLX_BFLOAT16;
  /* B is widened in its memory order: a transposed view (a linear layer's W^T) as the (N, K)
   * rows it is, handed to sgemm as a transpose (widening it element by element across rows took
   * 180 ms for 4096 x 4096, 5x the product's time at 256 rows) */
  bool b_trans = b.cs != 1 && b.rs == 1;
  int ashape[2] = {(int)g->M, (int)g->K}, cshape[2] = {(int)g->M, (int)g->N};
  int64_t astr[2] = {a.rs, a.cs}, cstr[2] = {g->N, 1};
  int64_t bstr[2] = {b_trans ? b.cs : b.rs, b_trans ? b.rs : b.cs};
  float* a32 = malloc(sizeof(float) * (size_t)(g->M * g->K) + 1);
  float* c32 = malloc(sizeof(float) * (size_t)(g->M * g->N) + 1);
  float* b32 = NULL;
  int status = 0;
  REQUIRE(a32 && c32, "matmul: out of memory");
  cpu_convert(a32, MLX_FLOAT32, a.data, g->dtype, ashape, astr, 2);
  bool few = g->M <= MATMUL_HALF_ROWS_MAX, rows = few && b.rs == 1 && b.cs >= g->K;
  if (rows || (few && b.cs == 1 && b.rs >= g->N)) {
    if (rows) /* B^T (N, K) rows: a linear layer's weight */
      cpu_gemv_half_rows(c32, a32, g->M, (const uint16_t*)b.data, b.cs, g->N, g->K, bf16);
    else
      cpu_gemv_half_cols(c32, a32, g->M, (const uint16_t*)b.data, b.rs, g->N, g->K, bf16);
    if (g->alpha != 1 || g->beta != 0) { /* addmm (a bias): alpha * AB + beta * C, rounded once */
      float* in = g->beta != 0 ? malloc(sizeof(float) * (size_t)(g->M * g->N) + 1) : NULL;
      REQUIRE(in || g->beta == 0, "matmul: out of memory");
      if (in) cpu_convert(in, MLX_FLOAT32, c, g->dtype, cshape, cstr, 2);
      for (int64_t i = 0; i < g->M * g->N; i++) c32[i] = g->alpha * c32[i] + (in ? g->beta * in[i] : 0.0f);
      free(in);
    }
  } else {
    /* B widened a block of columns at a time (half_scratch floats): a scratch that malloc
     * reuses.
     * A stacked 9728 x 896 gate/up weight widened whole took 35 MB, above malloc's mmap
     * threshold, so every call faulted fresh pages in (0.5B prefill 364 -> 286 tok/s). */
    int64_t cols = half_scratch / (g->K > 0 ? g->K : 1);
    cols = cols < 64 ? 64 : cols > g->N ? g->N : cols;
    cols = (g->N + (g->N + cols - 1) / cols - 1) / ((g->N + cols - 1) / cols); /* equal blocks */
    b32 = malloc(sizeof(float) * (size_t)(g->K * cols) + 1);
    REQUIRE(b32, "matmul: out of memory");
    if (g->beta != 0) cpu_convert(c32, MLX_FLOAT32, c, g->dtype, cshape, cstr, 2);
    for (int64_t n0 = 0; n0 < g->N; n0 += cols) {
      const int nb = (int)(g->N - n0 < cols ? g->N - n0 : cols);
      int block[2] = {b_trans ? nb : (int)g->K, b_trans ? (int)g->K : nb};
      cpu_convert(b32, MLX_FLOAT32, (const uint16_t*)b.data + n0 * b.cs, g->dtype, block, bstr, 2);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, b_trans ? CblasTrans : CblasNoTrans, (int)g->M, nb, (int)g->K,
                  g->alpha, a32, (int)(g->K > 1 ? g->K : 1), b32, block[1] > 1 ? block[1] : 1, g->beta, c32 + n0,
                  (int)g->N);
    }
  }
  cpu_convert(c, g->dtype, c32, MLX_FLOAT32, cshape, cstr, 2);
cleanup:
  free(a32);
  free(b32);
  free(c32);
  return status;
}

static int gemm_one(const gemm_shape* g, mat_ref a, mat_ref b, void* c) {
  return g->dtype == MLX_FLOAT16 || g->dtype == MLX_BFLOAT16 ? gemm_half(g, a, b, c)
                                                             : gemm_blas(g, a, b, c);
}

/* out *= beta, for the empty contraction (K = 0) of addmm. */
static void scale_in_place(core_array* out, float beta) {
  void* p = core_array_ptr(out);
  size_t n = out->size * (out->dtype == MLX_COMPLEX64 ? 2 : 1);
  for (size_t i = 0; i < n; i++) {
    switch (out->dtype) {
      case MLX_FLOAT32: case MLX_COMPLEX64: ((float*)p)[i] *= beta; break;
      case MLX_FLOAT64: ((double*)p)[i] *= beta; break;
      case MLX_FLOAT16:
        ((uint16_t*)p)[i] = half_f32_to_f16(half_f16_to_f32(((uint16_t*)p)[i]) * beta);
        break;
      default:
        ((uint16_t*)p)[i] = half_f32_to_bf16(half_bf16_to_f32(((uint16_t*)p)[i]) * beta);
        break;
    }
  }
}

/* When every batch uses the same B and A's (batch..., M) rows sit at one uniform stride, the
 * whole batch is a single (batch * M, K) GEMM. Sets *row_stride and returns true then. */
static bool batch_collapses(const int* bshape, int nb, const int64_t* a_bstr, int64_t M,
                            int64_t a_rs, const int64_t* b_bstr, int64_t* row_stride) {
  for (int i = 0; i < nb; i++)
    if (bshape[i] > 1 && b_bstr[i] != 0) return false;
  int64_t stride = 0, extent = 0; /* stride and size of the rows seen so far (innermost first) */
  if (M > 1) {
    stride = a_rs;
    extent = M;
  }
  for (int i = nb - 1; i >= 0; i--) {
    if (bshape[i] <= 1) continue;
    if (extent == 0) {
      stride = a_bstr[i];
      extent = bshape[i];
    } else if (a_bstr[i] == stride * extent) {
      extent *= bshape[i];
    } else {
      return false;
    }
  }
  *row_stride = stride;
  return true;
}

int cpu_eval_matmul(core_node* node, core_array** outputs) {
  core_array *a = node->inputs[0], *b = node->inputs[1], *out = outputs[0];
  const matmul_params* p = node->params;
  if (core_array_alloc_contiguous(out)) return 1;
  if (out->size == 0) return 0;
  int nd = out->ndim, nb = nd - 2;
  gemm_shape g = {out->dtype, out->shape[nd - 2], out->shape[nd - 1], a->shape[a->ndim - 1],
                  p ? p->alpha : 1.0f, 0.0f};
  if (node->n_inputs == 3) {
    /* addmm: c arrives broadcast to out's shape and dtype; GEMM accumulates onto it. */
    core_array* c = node->inputs[2];
    cpu_convert(core_array_ptr(out), out->dtype, core_array_ptr(c), c->dtype, c->shape, c->strides,
                c->ndim);
    g.beta = p->beta;
  }
  if (g.K == 0) {
    if (node->n_inputs == 3) scale_in_place(out, g.beta);
    else memset(core_array_ptr(out), 0, out->size * core_dtype_size(out->dtype));
    return 0;
  }
  int64_t a_bstr[CORE_MAX_NDIM], b_bstr[CORE_MAX_NDIM];
  cpu_broadcast_strides(a->shape, a->strides, a->ndim - 2, out->shape, nb, a_bstr);
  cpu_broadcast_strides(b->shape, b->strides, b->ndim - 2, out->shape, nb, b_bstr);
  size_t elem = core_dtype_size(out->dtype);
  int64_t a_rs = a->strides[a->ndim - 2], a_cs = a->strides[a->ndim - 1];
  int64_t b_rs = b->strides[b->ndim - 2], b_cs = b->strides[b->ndim - 1];
  const char* a0 = core_array_ptr(a);
  const char* b0 = core_array_ptr(b);
  char* c0 = core_array_ptr(out);
  int64_t batch = (int64_t)(out->size / (size_t)(g.M * g.N)), row_stride;
  if (batch > 1 && batch_collapses(out->shape, nb, a_bstr, g.M, a_rs, b_bstr, &row_stride)) {
    gemm_shape all = g;
    all.M = g.M * batch;
    return gemm_one(&all, (mat_ref){a0, row_stride, a_cs}, (mat_ref){b0, b_rs, b_cs}, c0);
  }
  int idx[CORE_MAX_NDIM] = {0};
  int64_t a_off = 0, b_off = 0;
  for (int64_t i = 0; i < batch; i++) {
    mat_ref ma = {a0 + a_off * (int64_t)elem, a_rs, a_cs};
    mat_ref mb = {b0 + b_off * (int64_t)elem, b_rs, b_cs};
    if (gemm_one(&g, ma, mb, c0 + i * g.M * g.N * (int64_t)elem)) return 1;
    for (int d = nb - 1; d >= 0; d--) { /* odometer over the batch index */
      a_off += a_bstr[d];
      b_off += b_bstr[d];
      if (++idx[d] < out->shape[d]) break;
      a_off -= a_bstr[d] * out->shape[d];
      b_off -= b_bstr[d] * out->shape[d];
      idx[d] = 0;
    }
  }
  return 0;
}
