/* CUDA kernels against the CPU backend: the same graph is built on the default CPU stream and
 * on the default GPU stream from the same host inputs (fresh random values each run; the seed is
 * printed), and the results are compared (dtype, shape, values). Covers every op with a GPU
 * kernel across dtypes, broadcast and strided (transposed, sliced) inputs, data moving between
 * host and device, CPU fallback on a GPU stream, memory counters, errors, and a decode step of a
 * small Llama-style layer. Skips (passing) when no CUDA GPU is present. */
#include <stdint.h>
#include <time.h>

#include "backend/gpu.h"
#include "core/array.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/fast.h"
#include "mlxc/lm.h"
#include "mlxc/memory.h"
#include "test_util.h"

#include "cuda_test_util.h"

static const mlx_dtype float_types[] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16};
static const char* dname(mlx_dtype d) {
  switch (d) {
    case MLX_FLOAT32: return "f32";
    case MLX_FLOAT16: return "f16";
    case MLX_BFLOAT16: return "bf16";
    case MLX_INT32: return "i32";
    case MLX_UINT32: return "u32";
    case MLX_BOOL: return "bool";
    default: return "?";
  }
}
/* One unit in the last place of a rounded result, relative. */
static double ulp(mlx_dtype d) { return d == MLX_BFLOAT16 ? 1.0 / 128 : d == MLX_FLOAT16 ? 1.0 / 1024 : 2e-6; }
static double norm_tol(mlx_dtype d) { return d == MLX_BFLOAT16 ? 1e-2 : d == MLX_FLOAT16 ? 2e-3 : 1e-5; }

/* ---- copies ---- */

TEST(astype_and_copy) {
  const mlx_dtype types[] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16, MLX_INT32, MLX_UINT32, MLX_BOOL};
  int shape[3] = {3, 5, 4};
  for (int s = 0; s < 6; s++) {
    mlx_array x = rand_array(shape, 3, types[s], -300, 300), xt = mlx_array_new();
    mlx_swapaxes(&xt, x, 0, 2, cpu);  /* strided view */
    for (int d = 0; d < 6; d++) {
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      mlx_astype(&g, xt, types[d], gpu);
      mlx_astype(&c, xt, types[d], cpu);
      char what[64];
      snprintf(what, sizeof what, "astype %s->%s", dname(types[s]), dname(types[d]));
      compare(what, g, c, 0, 0, 0);
      mlx_array_free(g);
      mlx_array_free(c);
    }
    mlx_array sl = mlx_array_new(), g = mlx_array_new(), c = mlx_array_new();
    int start[3] = {0, 1, 3}, stop[3] = {3, 5, 0}, step[3] = {2, 2, -1};
    mlx_slice(&sl, x, start, 3, stop, 3, step, 3, cpu);
    mlx_copy(&g, sl, gpu);
    mlx_copy(&c, sl, cpu);
    compare("copy of a stepped slice", g, c, 0, 0, 0);
    mlx_array_free(sl);
    mlx_array_free(g);
    mlx_array_free(c);
    mlx_array_free(xt);
    mlx_array_free(x);
  }
}

TEST(reshape_of_strided_views) {
  for (int t = 0; t < 3; t++) {
    /* (2, 5, 3, 4) transposed to (2, 3, 5, 4), then flattened: a copy, not a view. */
    int sx[4] = {2, 5, 3, 4}, perm[4] = {0, 2, 1, 3}, flat[2] = {6, 20}, flat3[3] = {2, 15, 4};
    mlx_array x = rand_array(sx, 4, float_types[t], -1, 1), xt = mlx_array_new();
    mlx_transpose_axes(&xt, x, perm, 4, cpu);
    mlx_array g = mlx_array_new(), c = mlx_array_new(), g3 = mlx_array_new(), c3 = mlx_array_new();
    CHECK(mlx_reshape(&g, xt, flat, 2, gpu) == 0);
    mlx_reshape(&c, xt, flat, 2, cpu);
    compare("reshape of a transposed view to 2-D", g, c, 0, 0, 0);
    CHECK(mlx_reshape(&g3, xt, flat3, 3, gpu) == 0);
    mlx_reshape(&c3, xt, flat3, 3, cpu);
    compare("reshape of a transposed view to 3-D", g3, c3, 0, 0, 0);
    mlx_array arrays[] = {x, xt, g, c, g3, c3};
    for (size_t i = 0; i < 6; i++) mlx_array_free(arrays[i]);
  }
}

TEST(concatenate_and_slice_update) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    int s1[2] = {4, 3}, s2[2] = {5, 4}, s3[2] = {4, 2};
    mlx_array a = rand_array(s1, 2, dt, -1, 1), b0 = rand_array(s2, 2, dt, -1, 1), b = mlx_array_new();
    mlx_array c = rand_array(s3, 2, dt, -1, 1);
    mlx_transpose(&b, b0, cpu); /* (4, 5) strided */
    mlx_array list[3] = {a, b, c};
    mlx_vector_array v = mlx_vector_array_new_data(list, 3);
    mlx_array g = mlx_array_new(), r = mlx_array_new();
    CHECK(mlx_concatenate_axis(&g, v, 1, gpu) == 0);
    mlx_concatenate_axis(&r, v, 1, cpu);
    compare("concatenate axis 1", g, r, 0, 0, 0);
    int ss[2] = {6, 8}, us[2] = {2, 3};
    mlx_array src = rand_array(ss, 2, dt, -1, 1), upd = rand_array(us, 2, dt, -1, 1);
    int start[2] = {1, 2}, stop[2] = {5, 8}, step[2] = {2, 2};
    mlx_array gu = mlx_array_new(), cu = mlx_array_new();
    CHECK(mlx_slice_update(&gu, src, upd, start, 2, stop, 2, step, 2, gpu) == 0);
    mlx_slice_update(&cu, src, upd, start, 2, stop, 2, step, 2, cpu);
    compare("slice_update", gu, cu, 0, 0, 0);
    mlx_vector_array_free(v);
    mlx_array arrays[] = {a, b0, b, c, g, r, src, upd, gu, cu};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
  }
}

/* ---- elementwise ---- */

typedef int (*binary_fn)(mlx_array*, const mlx_array, const mlx_array, const mlx_stream);

TEST(binary_broadcast_strided) {
  struct { const char* name; binary_fn fn; } ops[] = {
      {"add", mlx_add}, {"subtract", mlx_subtract}, {"multiply", mlx_multiply}, {"divide", mlx_divide},
      {"maximum", mlx_maximum}, {"minimum", mlx_minimum}, {"less", mlx_less}, {"equal", mlx_equal}};
  const mlx_dtype types[] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16, MLX_INT32};
  int sa[3] = {4, 1, 6}, sb[2] = {6, 5};
  for (int t = 0; t < 4; t++) {
    mlx_array a = rand_array(sa, 3, types[t], -50, 50), b0 = rand_array(sb, 2, types[t], -50, 50);
    mlx_array b = mlx_array_new();
    mlx_transpose(&b, b0, cpu); /* (5, 6) transposed view, broadcast against (4, 1, 6) */
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      CHECK(ops[o].fn(&g, a, b, gpu) == 0);
      ops[o].fn(&c, a, b, cpu);
      char what[64];
      snprintf(what, sizeof what, "%s %s", ops[o].name, dname(types[t]));
      compare(what, g, c, 0, 0, 0); /* the same float operations: bit-exact */
      mlx_array_free(g);
      mlx_array_free(c);
    }
    mlx_array_free(a);
    mlx_array_free(b0);
    mlx_array_free(b);
  }
}

typedef int (*unary_fn)(mlx_array*, const mlx_array, const mlx_stream);

TEST(unary_math) {
  struct { const char* name; unary_fn fn; double lo, hi; } ops[] = {
      {"sigmoid", mlx_sigmoid, -8, 8}, {"tanh", mlx_tanh, -4, 4}, {"exp", mlx_exp, -10, 10},
      {"negative", mlx_negative, -5, 5}, {"square", mlx_square, -5, 5}, {"sqrt", mlx_sqrt, 0, 9},
      {"rsqrt", mlx_rsqrt, 0.01, 9}, {"sign", mlx_sign, -3, 3}, {"reciprocal", mlx_reciprocal, 0.1, 9},
      {"expm1", mlx_expm1, -2, 2}, {"log1p", mlx_log1p, -0.9, 5}, {"log2", mlx_log2, 1.5, 50},
      {"log10", mlx_log10, 1.5, 50}, {"tan", mlx_tan, -1.3, 1.3}, {"arcsin", mlx_arcsin, -0.99, 0.99},
      {"arccos", mlx_arccos, -0.99, 0.99}, {"arctan", mlx_arctan, -5, 5}, {"sinh", mlx_sinh, -4, 4},
      {"cosh", mlx_cosh, -4, 4}, {"arcsinh", mlx_arcsinh, -5, 5}, {"arccosh", mlx_arccosh, 1.01, 6},
      {"arctanh", mlx_arctanh, -0.95, 0.95}, {"erf", mlx_erf, -3, 3}, {"erfinv", mlx_erfinv, -0.95, 0.95},
      {"floor", mlx_floor, -5, 5}, {"ceil", mlx_ceil, -5, 5}};
  int shape[2] = {33, 17};
  for (int t = 0; t < 3; t++) {
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
      mlx_array x0 = rand_array(shape, 2, float_types[t], ops[o].lo, ops[o].hi), x = mlx_array_new();
      mlx_transpose(&x, x0, cpu);
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      CHECK(ops[o].fn(&g, x, gpu) == 0);
      ops[o].fn(&c, x, cpu);
      char what[64];
      snprintf(what, sizeof what, "%s %s", ops[o].name, dname(float_types[t]));
      /* libm and CUDA's expf/tanhf differ by an ulp or two; half results by one rounding step. */
      compare(what, g, c, ulp(float_types[t]), 1e-30, 0);
      mlx_array_free(x0);
      mlx_array_free(x);
      mlx_array_free(g);
      mlx_array_free(c);
    }
  }
  struct { const char* name; int (*fn)(mlx_array*, const mlx_array, const mlx_array, const mlx_stream); } bops[] = {
      {"power", mlx_power}, {"arctan2", mlx_arctan2}, {"logaddexp", mlx_logaddexp}};
  for (int t = 0; t < 3; t++)
    for (size_t o = 0; o < 3; o++) {
      mlx_array a = rand_array(shape, 2, float_types[t], 0.1, 3), b = rand_array(shape, 2, float_types[t], -2, 2);
      mlx_array g2 = mlx_array_new(), c2 = mlx_array_new();
      CHECK(bops[o].fn(&g2, a, b, gpu) == 0);
      CHECK_MSG(made_on_gpu(g2), "%s: not computed on the GPU", bops[o].name);
      bops[o].fn(&c2, a, b, cpu);
      char what[64];
      snprintf(what, sizeof what, "%s %s", bops[o].name, dname(float_types[t]));
      compare(what, g2, c2, 2 * ulp(float_types[t]), 1e-30, 0);
      mlx_array arrays[] = {a, b, g2, c2};
      for (int i = 0; i < 4; i++) mlx_array_free(arrays[i]);
    }
  int is[1] = {100};
  mlx_array xi = rand_array(is, 1, MLX_INT32, -1000, 1000), g = mlx_array_new(), c = mlx_array_new();
  mlx_square(&g, xi, gpu);
  mlx_square(&c, xi, cpu);
  compare("square i32", g, c, 0, 0, 0);
  mlx_array_free(xi);
  mlx_array_free(g);
  mlx_array_free(c);
}

/* ---- matmul ---- */

static void check_matmul(const char* what, mlx_array a, mlx_array b, mlx_dtype dt) {
  mlx_array g = mlx_array_new(), c = mlx_array_new();
  CHECK_MSG(mlx_matmul(&g, a, b, gpu) == 0, "%s", what);
  mlx_matmul(&c, a, b, cpu);
  compare(what, g, c, 0, 0, norm_tol(dt));
  mlx_array_free(g);
  mlx_array_free(c);
}

/* Prompts of successive lengths against one weight (x @ Wᵀ, as a linear layer): cuBLASLt's
 * algorithm is chosen once per bucket of M (lt_gemm.cu) and reused for the next lengths of the
 * bucket, so each length after the first in its bucket runs an algorithm picked for another M;
 * batched products (strided batches) too. Each against the CPU. */
TEST(matmul_algorithms_reused_across_lengths) {
  const int lengths[8] = {129, 200, 256, 1000, 513, 600, 17, 31};
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    int sw[2] = {96, 80};
    mlx_array w = rand_array(sw, 2, dt, -1, 1), wt = mlx_array_new();
    mlx_transpose(&wt, w, cpu);
    for (int i = 0; i < 8; i++)
      for (int batched = 0; batched < 2; batched++) {
        int sx[3] = {2, lengths[i], 80};
        mlx_array x = batched ? rand_array(sx, 3, dt, -1, 1) : rand_array(sx + 1, 2, dt, -1, 1);
        mlx_array g = mlx_array_new(), c = mlx_array_new();
        char what[96];
        snprintf(what, sizeof what, "matmul %s of %d%s rows after other lengths", dname(dt), lengths[i],
                 batched ? " x 2 batched" : "");
        CHECK_MSG(mlx_matmul(&g, x, wt, gpu) == 0, "%s: %s", what, mlxc_last_error());
        CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
        mlx_matmul(&c, x, wt, cpu);
        compare(what, g, c, 0, 0, norm_tol(dt));
        mlx_array_free(x);
        mlx_array_free(g);
        mlx_array_free(c);
      }
    mlx_array_free(w);
    mlx_array_free(wt);
  }
}

TEST(matmul_layouts_and_batches) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    char what[96];
    int sa[2] = {37, 64}, sb[2] = {64, 29}, sbt[2] = {29, 64}, sat[2] = {64, 37};
    mlx_array a = rand_array(sa, 2, dt, -1, 1), b = rand_array(sb, 2, dt, -1, 1);
    mlx_array bt0 = rand_array(sbt, 2, dt, -1, 1), at0 = rand_array(sat, 2, dt, -1, 1);
    mlx_array bt = mlx_array_new(), at = mlx_array_new();
    mlx_transpose(&bt, bt0, cpu);
    mlx_transpose(&at, at0, cpu);
    snprintf(what, sizeof what, "matmul %s plain", dname(dt));
    check_matmul(what, a, b, dt);
    snprintf(what, sizeof what, "matmul %s B transposed", dname(dt));
    check_matmul(what, a, bt, dt);
    snprintf(what, sizeof what, "matmul %s A transposed", dname(dt));
    check_matmul(what, at, b, dt);
    /* Batches with broadcasting: (2, 3, 37, 64) @ (3, 64, 29). */
    int sba[4] = {2, 3, 37, 64}, sbb[3] = {3, 64, 29};
    mlx_array ba = rand_array(sba, 4, dt, -1, 1), bb = rand_array(sbb, 3, dt, -1, 1);
    snprintf(what, sizeof what, "matmul %s broadcast batch", dname(dt));
    check_matmul(what, ba, bb, dt);
    /* A shared weight over a batch of sequences, (4, 33, 64) @ (64, 29)ᵀ-style: one GEMM of 132 rows. */
    int ssa[3] = {4, 33, 64}, ssw[2] = {29, 64};
    mlx_array shared_x = rand_array(ssa, 3, dt, -1, 1), sw0 = rand_array(ssw, 2, dt, -1, 1), swt = mlx_array_new();
    mlx_transpose(&swt, sw0, cpu);
    snprintf(what, sizeof what, "matmul %s shared weight over a batch", dname(dt));
    check_matmul(what, shared_x, swt, dt);
    mlx_array_free(shared_x);
    mlx_array_free(sw0);
    mlx_array_free(swt);
    /* Batch dims that do not merge: a batch-transposed A, (3, 2, ...) viewed as (2, 3, ...). */
    int sba2[4] = {3, 2, 37, 64};
    mlx_array ba2 = rand_array(sba2, 4, dt, -1, 1), bat = mlx_array_new();
    mlx_swapaxes(&bat, ba2, 0, 1, cpu);
    snprintf(what, sizeof what, "matmul %s permuted batch", dname(dt));
    check_matmul(what, bat, bb, dt);
    /* Decode GEMV: one row times a (N, K) weight used transposed; K multiple of 8 and not; long
     * rows for few outputs split over 2 and 4 warps (16-byte and scalar loads). */
    const int gemv_k[4] = {256, 203, 4096, 2050};
    for (int k = 0; k < 4; k++) {
      int K = gemv_k[k], sx[2] = {1, K}, sw[2] = {300, K};
      mlx_array x = rand_array(sx, 2, dt, -1, 1), w = rand_array(sw, 2, dt, -1, 1), wt = mlx_array_new();
      mlx_transpose(&wt, w, cpu);
      snprintf(what, sizeof what, "gemv %s K=%d", dname(dt), K);
      check_matmul(what, x, wt, dt);
      mlx_array_free(x);
      mlx_array_free(w);
      mlx_array_free(wt);
    }
    /* Decode addmm: the GEMV adds a bias (N) or a residual row (1, N) as it writes; K = 896 is
     * a 0.5B layer's width (a lane's loads all in its tail batch). */
    const int addmm_k[2] = {896, 203};
    for (int k = 0; k < 2; k++) {
      int K = addmm_k[k], sx[2] = {1, K}, sw[2] = {300, K}, sbias[1] = {300}, sres[2] = {1, 300};
      mlx_array x = rand_array(sx, 2, dt, -1, 1), w = rand_array(sw, 2, dt, -1, 1), wt = mlx_array_new();
      mlx_array bias = rand_array(sbias, 1, dt, -1, 1), res = rand_array(sres, 2, dt, -1, 1);
      mlx_array g = mlx_array_new(), r = mlx_array_new();
      mlx_transpose(&wt, w, cpu);
      snprintf(what, sizeof what, "addmm %s decode row + bias, K=%d", dname(dt), K);
      CHECK_MSG(mlx_addmm(&g, bias, x, wt, 1.0f, 1.0f, gpu) == 0, "%s", what);
      mlx_addmm(&r, bias, x, wt, 1.0f, 1.0f, cpu);
      compare(what, g, r, 0, 0, norm_tol(dt));
      snprintf(what, sizeof what, "addmm %s decode row, residual, alpha 0.5 beta 2, K=%d", dname(dt), K);
      CHECK_MSG(mlx_addmm(&g, res, x, wt, 0.5f, 2.0f, gpu) == 0, "%s", what);
      mlx_addmm(&r, res, x, wt, 0.5f, 2.0f, cpu);
      compare(what, g, r, 0, 0, norm_tol(dt));
      mlx_array tmp[] = {x, w, wt, bias, res, g, r};
      for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) mlx_array_free(tmp[i]);
    }
    mlx_array arrays[] = {a, b, bt0, at0, bt, at, ba, bb, ba2, bat};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
  }
  /* float32 on TF32 tensor cores (the default outside this test): inputs rounded to 10 mantissa
   * bits, so ~1e-3 relative per product; K = 512 sums of products in [-1, 1]. */
  {
    int sa[2] = {64, 512}, sb[2] = {512, 48};
    mlx_array a = rand_array(sa, 2, MLX_FLOAT32, -1, 1), b = rand_array(sb, 2, MLX_FLOAT32, -1, 1);
    mlx_array g = mlx_array_new(), c = mlx_array_new();
    setenv("MLX_ENABLE_TF32", "1", 1);
    CHECK(mlx_matmul(&g, a, b, gpu) == 0);
    mlx_array_eval(g);
    setenv("MLX_ENABLE_TF32", "0", 1);
    mlx_matmul(&c, a, b, cpu);
    compare("matmul float32 on TF32", g, c, 0, 0, 5e-3);
    mlx_array_free(a);
    mlx_array_free(b);
    mlx_array_free(g);
    mlx_array_free(c);
  }
  /* addmm: 0.5 * c + 2 * a @ b with c broadcast. */
  int sa[2] = {16, 32}, sb[2] = {32, 24}, sc[1] = {24};
  mlx_array a = rand_array(sa, 2, MLX_FLOAT32, -1, 1), b = rand_array(sb, 2, MLX_FLOAT32, -1, 1);
  mlx_array c = rand_array(sc, 1, MLX_FLOAT32, -1, 1), g = mlx_array_new(), r = mlx_array_new();
  CHECK(mlx_addmm(&g, c, a, b, 2.0f, 0.5f, gpu) == 0);
  mlx_addmm(&r, c, a, b, 2.0f, 0.5f, cpu);
  compare("addmm f32", g, r, 0, 0, 1e-6);
  mlx_array arrays[] = {a, b, c, g, r};
  for (size_t i = 0; i < 5; i++) mlx_array_free(arrays[i]);
}

/* ---- fast ---- */

TEST(rms_norm) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    int sx[3] = {3, 64, 5}, sw[1] = {64};
    mlx_array x0 = rand_array(sx, 3, dt, -2, 2), x = mlx_array_new(), w = rand_array(sw, 1, dt, 0.5, 1.5);
    mlx_swapaxes(&x, x0, 1, 2, cpu); /* (3, 5, 64) with a strided last axis */
    mlx_array g = mlx_array_new(), c = mlx_array_new();
    CHECK(mlx_fast_rms_norm(&g, x, w, 1e-5f, gpu) == 0);
    mlx_fast_rms_norm(&c, x, w, 1e-5f, cpu);
    char what[64];
    snprintf(what, sizeof what, "rms_norm %s", dname(dt));
    compare(what, g, c, dt == MLX_FLOAT32 ? 1e-5 : 2.01 * ulp(dt), 1e-6, 0);
    mlx_array_free(g);
    mlx_array_free(c);
    g = mlx_array_new();
    c = mlx_array_new();
    mlx_fast_rms_norm(&g, x, mlx_array_new(), 1e-5f, gpu);
    mlx_fast_rms_norm(&c, x, mlx_array_new(), 1e-5f, cpu);
    compare("rms_norm without weight", g, c, dt == MLX_FLOAT32 ? 1e-5 : 2.01 * ulp(dt), 1e-6, 0);
    /* add_rms_norm (mlxc/fast.h): the sum exactly, the norm as rms_norm's. Rows of 64 with x's
     * strided (3, 5, 64) view as the residual, of 4096 (16-byte loads), of 6000 (the wider
     * register kernel) and of 1004 (contiguous, not a multiple of 8: one value per load). */
    const int widths[4] = {64, 4096, 6000, 1004};
    for (int k = 0; k < 4; k++) {
      int sr[3] = {3, 5, widths[k]}, swk[1] = {widths[k]};
      mlx_array a = rand_array(sr, 3, dt, -2, 2), b = k ? rand_array(sr, 3, dt, -2, 2) : x;
      mlx_array wk = k ? rand_array(swk, 1, dt, 0.5, 1.5) : w;
      mlx_array gs = mlx_array_new(), gn = mlx_array_new(), cs = mlx_array_new(), cn = mlx_array_new();
      CHECK_MSG(mlxc_fast_add_rms_norm(&gs, &gn, a, b, wk, 1e-5f, gpu) == 0, "%s", mlxc_last_error());
      mlxc_fast_add_rms_norm(&cs, &cn, a, b, wk, 1e-5f, cpu);
      CHECK_MSG(made_on_gpu(gn), "add_rms_norm %d: not computed on the GPU", widths[k]);
      snprintf(what, sizeof what, "add_rms_norm %s D=%d: sum", dname(dt), widths[k]);
      compare(what, gs, cs, 0, 0, 0);
      snprintf(what, sizeof what, "add_rms_norm %s D=%d: norm", dname(dt), widths[k]);
      compare(what, gn, cn, dt == MLX_FLOAT32 ? 1e-5 : 2.01 * ulp(dt), 1e-6, 0);
      mlx_array more[] = {a, gs, gn, cs, cn};
      for (size_t i = 0; i < 5; i++) mlx_array_free(more[i]);
      if (k) {
        mlx_array_free(b);
        mlx_array_free(wk);
      }
    }
    mlx_array arrays[] = {x0, x, w, g, c};
    for (size_t i = 0; i < 5; i++) mlx_array_free(arrays[i]);
  }
}

/* glu (mlxc/fast.h) on the halves of one projection (strided rows), against the CPU. */
TEST(glu_halves) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    int sh[3] = {2, 3, 2 * 200};
    mlx_array h = rand_array(sh, 3, dt, -4, 4);
    mlx_vector_array parts = mlx_vector_array_new();
    mlx_array g = mlx_array_new(), u = mlx_array_new();
    mlx_split(&parts, h, 2, -1, cpu);
    mlx_vector_array_get(&g, parts, 0);
    mlx_vector_array_get(&u, parts, 1);
    for (int gelu = 0; gelu < 2; gelu++) {
      mlx_array go = mlx_array_new(), co = mlx_array_new();
      const char* act = gelu ? "gelu_tanh" : "silu";
      CHECK_MSG(mlxc_fast_glu(&go, g, u, act, gpu) == 0, "%s", mlxc_last_error());
      mlxc_fast_glu(&co, g, u, act, cpu);
      CHECK_MSG(made_on_gpu(go), "glu %s: not computed on the GPU", act);
      char what[64];
      snprintf(what, sizeof what, "glu %s %s", act, dname(dt));
      /* A step's rounding can differ by an ulp (CUDA's expf/tanhf vs the C library's), and the
       * next steps carry it: a few ulps of the dtype. */
      compare(what, go, co, dt == MLX_FLOAT32 ? 1e-5 : 4.01 * ulp(dt), 1e-5, 0);
      mlx_array_free(go);
      mlx_array_free(co);
    }
    mlx_array_free(h);
    mlx_array_free(g);
    mlx_array_free(u);
    mlx_vector_array_free(parts);
  }
}

/* mlxc_fast_gated_linear of one row (the gated GEMV kernels) against the CPU kernel, and against
 * the GPU's own composition (the GEMV over the 2I stacked rows, split, glu), which it must equal
 * bit for bit: the same per-row sums (the same split of K), rounded to the dtype, then the glu
 * kernel's arithmetic. Plain half weights (K a multiple of 8: 16-byte loads; 1002: the scalar
 * loop) and 4- and 8-bit quantized ones in groups of 64. */
static void check_gated(const char* what, mlx_array x, mlx_array w, mlx_array sc, mlx_array bs, int bits, mlx_dtype dt) {
  for (int gelu = 0; gelu < 2; gelu++) {
    const char* act = gelu ? "gelu_tanh" : "silu";
    mlx_optional_int gs = {64, bits != 0}, nb = {bits, bits != 0};
    mlx_array go = mlx_array_new(), co = mlx_array_new(), h = mlx_array_new(), wt = mlx_array_new();
    mlx_array g = mlx_array_new(), u = mlx_array_new(), ref = mlx_array_new();
    mlx_vector_array parts = mlx_vector_array_new();
    char name[128];
    snprintf(name, sizeof name, "%s %s", what, act);
    CHECK_MSG(mlxc_fast_gated_linear(&go, x, w, sc, bs, gs, nb, act, gpu) == 0, "%s: %s", name, mlxc_last_error());
    CHECK_MSG(made_on_gpu(go), "%s: not computed on the GPU", name);
    CHECK(mlxc_fast_gated_linear(&co, x, w, sc, bs, gs, nb, act, cpu) == 0);
    /* The products' summation orders differ (CPU vs GPU): an ulp of the dtype in a product, which
     * the activation carries. */
    compare(name, go, co, 0, 0, norm_tol(dt));
    if (bits) {
      CHECK(mlx_quantized_matmul(&h, x, w, sc, bs, true, gs, nb, "affine", gpu) == 0);
    } else {
      mlx_transpose(&wt, w, gpu);
      CHECK(mlx_matmul(&h, x, wt, gpu) == 0);
    }
    mlx_split(&parts, h, 2, -1, gpu);
    mlx_vector_array_get(&g, parts, 0);
    mlx_vector_array_get(&u, parts, 1);
    CHECK(mlxc_fast_glu(&ref, g, u, act, gpu) == 0);
    snprintf(name, sizeof name, "%s %s vs the GPU's composed ops", what, act);
    compare(name, go, ref, 0, 0, 0);
    mlx_array all[] = {go, co, h, wt, g, u, ref};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
    mlx_vector_array_free(parts);
  }
}

TEST(gated_gemv) {
  /* I = 8200 at K = 4096: the 4-bit kernel's one-warp blocks (over 4,096 of them). */
  const int Ks[3] = {896, 4096, 1002}, Is[3] = {300, 4864, 8200}, bits[2] = {4, 8};
  const mlx_dtype types[2] = {MLX_BFLOAT16, MLX_FLOAT16};
  for (int ki = 0; ki < 3; ki++)
    for (int ii = 0; ii < 3; ii++) {
      const int K = Ks[ki], I = Is[ii];
      if (ii == 2 && K != 4096) continue;
      int sw[2] = {2 * I, K}, sx[2] = {1, K};
      mlx_array w0 = rand_array(sw, 2, MLX_FLOAT32, -1, 1), x0 = rand_array(sx, 2, MLX_FLOAT32, -1, 1);
      for (int t = 0; t < 2; t++) {
        mlx_dtype dt = types[t];
        mlx_array w = mlx_array_new(), x = mlx_array_new(), none = mlx_array_new();
        mlx_astype(&w, w0, dt, cpu);
        mlx_astype(&x, x0, dt, cpu);
        char what[96];
        snprintf(what, sizeof what, "gated GEMV %s K %d I %d", dname(dt), K, I);
        check_gated(what, x, w, none, none, 0, dt);
        for (int b = 0; b < 2 && K % 64 == 0; b++) {
          mlx_vector_array q = mlx_vector_array_new();
          mlx_optional_int gs = {64, true}, nb = {bits[b], true};
          CHECK(mlx_quantize(&q, w, gs, nb, "affine", mlx_array_new(), cpu) == 0);
          mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bs = mlx_array_new();
          mlx_vector_array_get(&wq, q, 0);
          mlx_vector_array_get(&sc, q, 1);
          mlx_vector_array_get(&bs, q, 2);
          snprintf(what, sizeof what, "gated quantized GEMV %s %d-bit K %d I %d", dname(dt), bits[b], K, I);
          check_gated(what, x, wq, sc, bs, bits[b], dt);
          mlx_vector_array_free(q);
          mlx_array_free(wq);
          mlx_array_free(sc);
          mlx_array_free(bs);
        }
        mlx_array_free(w);
        mlx_array_free(x);
      }
      mlx_array_free(w0);
      mlx_array_free(x0);
    }
}

/* w (rows, K) of dt as the layer weights of a test: plain (bits 0), or quantized by mlx_quantize
 * in groups of 64 into *w, *sc, *bs. */
static void test_linear_weights(mlx_array* w, mlx_array* sc, mlx_array* bs, int rows, int K, int bits, mlx_dtype dt) {
  int shape[2] = {rows, K};
  *w = rand_array(shape, 2, dt, -0.1, 0.1);
  *sc = mlx_array_new();
  *bs = mlx_array_new();
  if (!bits) return;
  mlx_vector_array q = mlx_vector_array_new();
  mlx_optional_int gs = {64, true}, nb = {bits, true};
  CHECK(mlx_quantize(&q, *w, gs, nb, "affine", mlx_array_new(), cpu) == 0);
  mlx_vector_array_get(w, q, 0);
  mlx_vector_array_get(sc, q, 1);
  mlx_vector_array_get(bs, q, 2);
  mlx_vector_array_free(q);
}

/* x W^T on stream st, plain or quantized (test_linear_weights). */
static void test_linear(mlx_array* out, mlx_array x, mlx_array w, mlx_array sc, mlx_array bs, int bits, mlx_stream st) {
  mlx_optional_int gs = {64, true}, nb = {bits, true};
  if (bits) {
    CHECK(mlx_quantized_matmul(out, x, w, sc, bs, true, gs, nb, "affine", st) == 0);
    return;
  }
  mlx_array wt = mlx_array_new();
  mlx_transpose(&wt, w, st);
  CHECK(mlx_matmul(out, x, wt, st) == 0);
  mlx_array_free(wt);
}

/* The decode step's norm fusion (mlxc_fast_linear_residual, then mlxc_fast_rms_norm_linear on its
 * outputs), plain and 4- and 8-bit weights, against the GPU's composed ops: the residual GEMV's
 * sum and scaled bit for bit (the same GEMV kernel's sums), its sums of squares by runs of 4 to
 * float32 rounding (the composed sum adds them in another order; N = 902 leaves a block partly
 * empty and the last run short); the projections of the
 * normalised row, plain, with a bias, gated, to the norm-wise tolerance (the norm's factor comes
 * after the product instead of before it, and the mean square is added in another order); and
 * the CPU's fused ops. */
static void check_norm_linear(int K, int N, int bits, mlx_dtype dt) {
  int sx[2] = {1, K}, sr[2] = {1, N}, sb[1] = {N};
  mlx_array x = rand_array(sx, 2, dt, -1, 1), res = rand_array(sr, 2, dt, -2, 2);
  mlx_array nw = rand_array(sb, 1, dt, 0.5, 1.5), bias = rand_array(sb, 1, dt, -1, 1);
  mlx_array w, sc, bs, wp, psc, pbs, wg, gsc, gbs;
  test_linear_weights(&w, &sc, &bs, N, K, bits, dt);
  test_linear_weights(&wp, &psc, &pbs, N, N, bits, dt);
  test_linear_weights(&wg, &gsc, &gbs, 2 * N, N, bits, dt);
  mlx_optional_int gs = {64, bits != 0}, nb = {bits, bits != 0};
  mlx_array sum = mlx_array_new(), ss = mlx_array_new(), scaled = mlx_array_new(), csum = mlx_array_new();
  mlx_array css = mlx_array_new(), cscaled = mlx_array_new(), t = mlx_array_new(), f = mlx_array_new();
  mlx_array ref_scaled = mlx_array_new(), none = mlx_array_new();
  char what[128];
  snprintf(what, sizeof what, "linear_residual %s %d-bit K %d N %d", dname(dt), bits, K, N);
  CHECK_MSG(mlxc_fast_linear_residual(&sum, &ss, &scaled, x, w, sc, bs, gs, nb, res, nw, gpu) == 0, "%s: %s", what,
            mlxc_last_error());
  CHECK_MSG(made_on_gpu(sum), "%s: not computed on the GPU", what);
  test_linear(&t, x, w, sc, bs, bits, gpu);
  mlx_add(&t, res, t, gpu);
  mlx_multiply(&ref_scaled, t, nw, gpu);
  mlx_astype(&f, t, MLX_FLOAT32, gpu);
  mlx_square(&f, f, gpu);
  int axis[1] = {1}, low[1] = {0}, high[1] = {(4 - N % 4) % 4}, runs[3] = {1, (N + 3) / 4, 4};
  mlx_array zero = mlx_array_new_float(0.0f);
  mlx_pad(&f, f, axis, 1, low, 1, high, 1, zero, "constant", gpu); /* a short last run */
  mlx_array_free(zero);
  mlx_reshape(&f, f, runs, 3, gpu);
  mlx_sum_axis(&css, f, -1, false, gpu);
  compare(what, sum, t, 0, 0, 0);
  compare(what, scaled, ref_scaled, 0, 0, 0);
  compare(what, ss, css, 4e-7, 0, 0);
  CHECK(mlxc_fast_linear_residual(&csum, &css, &cscaled, x, w, sc, bs, gs, nb, res, nw, cpu) == 0);
  snprintf(what, sizeof what, "linear_residual %s %d-bit K %d N %d: GPU vs CPU", dname(dt), bits, K, N);
  compare(what, sum, csum, 0, 0, norm_tol(dt));
  for (int variant = 0; variant < 4; variant++) {
    /* 0 plain, 1 with a bias, 2 gated silu, 3 gated gelu_tanh */
    const char* act = variant == 2 ? "silu" : variant == 3 ? "gelu_tanh" : NULL;
    mlx_array b = variant == 1 ? bias : none, lw = act ? wg : wp, lsc = act ? gsc : psc, lbs = act ? gbs : pbs;
    mlx_array go = mlx_array_new(), co = mlx_array_new(), ref = mlx_array_new(), normed = mlx_array_new();
    snprintf(what, sizeof what, "rms_norm_linear %s %d-bit D %d variant %d", dname(dt), bits, N, variant);
    CHECK_MSG(mlxc_fast_rms_norm_linear(&go, scaled, ss, 1e-5f, lw, lsc, lbs, gs, nb, b, act, gpu) == 0, "%s: %s", what,
              mlxc_last_error());
    CHECK_MSG(made_on_gpu(go), "%s: not computed on the GPU", what);
    CHECK(mlxc_fast_rms_norm_linear(&co, scaled, ss, 1e-5f, lw, lsc, lbs, gs, nb, b, act, cpu) == 0);
    CHECK(mlx_fast_rms_norm(&normed, sum, nw, 1e-5f, gpu) == 0);
    if (act) {
      CHECK(mlxc_fast_gated_linear(&ref, normed, lw, lsc, lbs, gs, nb, act, gpu) == 0);
    } else {
      test_linear(&ref, normed, lw, lsc, lbs, bits, gpu);
      if (variant == 1) mlx_add(&ref, ref, b, gpu);
    }
    compare(what, go, ref, 0, 0, norm_tol(dt));
    snprintf(what, sizeof what, "rms_norm_linear %s %d-bit D %d variant %d: GPU vs CPU", dname(dt), bits, N, variant);
    compare(what, go, co, 0, 0, norm_tol(dt));
    mlx_array all[] = {go, co, ref, normed};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  }
  /* The mean square from one total (any split of the sum of squares will do). */
  mlx_array total = mlx_array_new(), go = mlx_array_new(), normed = mlx_array_new(), ref = mlx_array_new();
  mlx_sum_axis(&total, ss, -1, true, gpu);
  CHECK(mlxc_fast_rms_norm_linear(&go, scaled, total, 1e-5f, wp, psc, pbs, gs, nb, none, NULL, gpu) == 0);
  mlx_fast_rms_norm(&normed, sum, nw, 1e-5f, gpu);
  test_linear(&ref, normed, wp, psc, pbs, bits, gpu);
  snprintf(what, sizeof what, "rms_norm_linear %s %d-bit D %d from one total", dname(dt), bits, N);
  compare(what, go, ref, 0, 0, norm_tol(dt));
  mlx_array all[] = {x, res, nw, bias, w, sc, bs, wp, psc, pbs, wg, gsc, gbs, sum, ss, scaled, csum, css, cscaled, t,
                     f, ref_scaled, total, go, normed, ref};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

TEST(norm_linear) {
  const mlx_dtype types[2] = {MLX_BFLOAT16, MLX_FLOAT16};
  const int shapes[4][2] = {{896, 896}, {4864, 896}, {4096, 4096}, {1024, 902}}; /* K, N */
  const int bits[3] = {0, 4, 8};
  for (int t = 0; t < 2; t++)
    for (int i = 0; i < 4; i++)
      for (int b = 0; b < 3; b++)
        if (!bits[b] || shapes[i][1] % 64 == 0) check_norm_linear(shapes[i][0], shapes[i][1], bits[b], types[t]);
}

TEST(rope_variants) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    int sx[4] = {2, 4, 7, 64};
    mlx_array x = rand_array(sx, 4, dt, -2, 2);
    mlx_optional_float base = {10000.0f, true};
    for (int v = 0; v < 4; v++) {
      int dims = v & 1 ? 32 : 64;
      bool trad = v & 2;
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      CHECK(mlx_fast_rope(&g, x, dims, trad, base, 1.0f, 1000 + v, mlx_array_new(), gpu) == 0);
      mlx_fast_rope(&c, x, dims, trad, base, 1.0f, 1000 + v, mlx_array_new(), cpu);
      char what[64];
      snprintf(what, sizeof what, "rope %s dims=%d traditional=%d", dname(dt), dims, trad);
      compare(what, g, c, 0, 0, norm_tol(dt));
      mlx_array_free(g);
      mlx_array_free(c);
    }
    /* Per-batch offsets and explicit frequencies. */
    int32_t offs[2] = {3, 250};
    int so[1] = {2}, sf[1] = {32};
    mlx_array off = mlx_array_new_data(offs, so, 1, MLX_INT32), f = rand_array(sf, 1, MLX_FLOAT32, 1, 100);
    mlx_optional_float nobase = {0, false};
    mlx_array g = mlx_array_new(), c = mlx_array_new();
    CHECK(mlx_fast_rope_dynamic(&g, x, 64, false, nobase, 0.5f, off, f, gpu) == 0);
    mlx_fast_rope_dynamic(&c, x, 64, false, nobase, 0.5f, off, f, cpu);
    compare("rope dynamic offsets + freqs", g, c, 0, 0, norm_tol(dt));
    mlx_array arrays[] = {x, off, f, g, c};
    for (size_t i = 0; i < 5; i++) mlx_array_free(arrays[i]);
  }
}

/* mlxc_fast_rope_kv (one decode step's RoPE and KV writes) on the GPU against the CPU: q and k as
 * views of one projection's heads (the decoder's layout), the 0.5B (14 + 2 heads of 64) and 8B
 * (32 + 8 heads of 128) shapes, a slot past the written ones; the GPU caches are written in place.
 * Variant 1: half the dims rotated (the rest copied), interleaved pairs and a frequency array. */
TEST(rope_kv) {
  const int shapes[2][3] = {{14, 2, 64}, {32, 8, 128}};
  for (int t = 0; t < 3; t++)
    for (int sh = 0; sh < 2; sh++)
      for (int variant = 0; variant < 2; variant++) {
        mlx_dtype dt = float_types[t];
        int H = shapes[sh][0], K = shapes[sh][1], D = shapes[sh][2], T = 40;
        int sqk[4] = {1, H + K, 1, D}, sv[4] = {1, K, 1, D}, sc[4] = {1, K, T, D};
        mlx_array qk = rand_array(sqk, 4, dt, -2, 2), v = rand_array(sv, 4, dt, -1, 1);
        mlx_array keys0 = rand_array(sc, 4, dt, -1, 1), values0 = rand_array(sc, 4, dt, -1, 1);
        mlx_array q = mlx_array_new(), k = mlx_array_new(), position = mlx_array_new_int(17);
        int start[4] = {0, 0, 0, 0}, stop[4] = {1, H, 1, D};
        mlx_slice(&q, qk, start, 4, stop, 4, NULL, 0, cpu);
        start[1] = H;
        stop[1] = H + K;
        mlx_slice(&k, qk, start, 4, stop, 4, NULL, 0, cpu);
        const int dims = variant ? D / 2 : D;
        const bool traditional = variant == 1;
        int sf[1] = {dims / 2};
        mlx_array freqs = variant ? rand_array(sf, 1, MLX_FLOAT32, 1, 1000) : mlx_array_new();
        mlx_optional_float base = {500000.0f, variant == 0};
        mlx_array gq = mlx_array_new(), gk = mlx_array_new(), gv = mlx_array_new();
        mlx_array cq = mlx_array_new(), ck = mlx_array_new(), cv = mlx_array_new();
        mlx_copy(&gk, keys0, gpu); /* private GPU copies: written in place */
        mlx_copy(&gv, values0, gpu);
        mlx_array_eval(gk);
        mlx_array_eval(gv);
        CHECK_MSG(mlxc_fast_rope_kv(&gq, &gk, &gv, q, k, v, gk, gv, dims, traditional, base, 1.0f, position, freqs, gpu) == 0,
                  "%s", mlxc_last_error());
        CHECK(mlxc_fast_rope_kv(&cq, &ck, &cv, q, k, v, keys0, values0, dims, traditional, base, 1.0f, position, freqs,
                                cpu) == 0);
        CHECK_MSG(made_on_gpu(gq), "rope_kv variant %d: not computed on the GPU", variant);
        char what[96];
        snprintf(what, sizeof what, "rope_kv %s %d+%d heads of %d, variant %d: q", dname(dt), H, K, D, variant);
        compare(what, gq, cq, 0, 0, norm_tol(dt));
        snprintf(what, sizeof what, "rope_kv %s %d+%d heads of %d, variant %d: keys", dname(dt), H, K, D, variant);
        compare(what, gk, ck, 0, 0, norm_tol(dt));
        snprintf(what, sizeof what, "rope_kv %s %d+%d heads of %d, variant %d: values", dname(dt), H, K, D, variant);
        compare(what, gv, cv, 0, 0, 0);
        mlx_array all[] = {qk, v, keys0, values0, q, k, position, gq, gk, gv, cq, ck, cv, freqs};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
      }
}

/* One mlxc_fast_rope_kv_attention case (a decode step's attention core) on the GPU: q and k views
 * of one projection's heads as the decoder gives them, caches of T slots, the new row at `pos`
 * under a (T) boolean mask of the slots up to it ("array"), or no mask. The one-kernel form must
 * equal the GPU's two kernels (MLXC_ROPE_ATTN=0) bit for bit, and the CPU within the attention's
 * tolerance (the caches: keys as rope_kv's, values exactly). */
static void check_rope_attention(mlx_dtype dt, int H, int K, int D, int T, int pos, int variant, bool masked) {
  int sqk[4] = {1, H + K, 1, D}, sv[4] = {1, K, 1, D}, sc[4] = {1, K, T, D}, st[1] = {T};
  mlx_array qk = rand_array(sqk, 4, dt, -2, 2), v = rand_array(sv, 4, dt, -1, 1);
  mlx_array keys0 = rand_array(sc, 4, dt, -1, 1), values0 = rand_array(sc, 4, dt, -1, 1);
  mlx_array q = mlx_array_new(), k = mlx_array_new(), position = mlx_array_new_int(pos);
  int start[4] = {0, 0, 0, 0}, stop[4] = {1, H, 1, D};
  mlx_slice(&q, qk, start, 4, stop, 4, NULL, 0, cpu);
  start[1] = H;
  stop[1] = H + K;
  mlx_slice(&k, qk, start, 4, stop, 4, NULL, 0, cpu);
  bool* seen = malloc((size_t)T);
  for (int i = 0; i < T; i++) seen[i] = i <= pos;
  mlx_array mask = masked ? mlx_array_new_data(seen, st, 1, MLX_BOOL) : mlx_array_new();
  free(seen);
  const int dims = variant ? D / 2 : D;
  int sf[1] = {dims / 2};
  mlx_array freqs = variant ? rand_array(sf, 1, MLX_FLOAT32, 1, 1000) : mlx_array_new();
  mlx_optional_float base = {500000.0f, variant == 0};
  const float scale = 1.0f / sqrtf((float)D);
  const char* mode = masked ? "array" : "";
  mlx_array out[3][3]; /* one kernel, two kernels, CPU: attention, keys, values */
  for (int r = 0; r < 3; r++) {
    out[r][0] = mlx_array_new();
    out[r][1] = mlx_array_new();
    out[r][2] = mlx_array_new();
    mlx_stream s = r < 2 ? gpu : cpu;
    mlx_copy(&out[r][1], keys0, s); /* private caches: written in place */
    mlx_copy(&out[r][2], values0, s);
    mlx_array_eval(out[r][1]);
    mlx_array_eval(out[r][2]);
    if (pos % 2 == 0) mlx_synchronize(s); /* settled caches: the first tile is copied before the chain wait */
    if (r == 1) setenv("MLXC_ROPE_ATTN", "0", 1);
    CHECK_MSG(mlxc_fast_rope_kv_attention(&out[r][0], &out[r][1], &out[r][2], q, k, v, out[r][1], out[r][2], dims,
                                          variant == 1, base, 1.0f, position, freqs, scale, mode, mask, s) == 0 &&
                  mlx_array_eval(out[r][0]) == 0,
              "rope_kv_attention: %s", mlxc_last_error());
    unsetenv("MLXC_ROPE_ATTN");
  }
  CHECK_MSG(made_on_gpu(out[0][0]), "rope_kv_attention: not computed on the GPU");
  char what[128];
  static const char* parts[3] = {"attention", "keys", "values"};
  for (int i = 0; i < 3; i++) {
    snprintf(what, sizeof what, "rope_kv_attention %s %d/%d heads of %d, %d slots, at %d, variant %d%s: %s",
             dname(dt), H, K, D, T, pos, variant, masked ? "" : ", no mask", parts[i]);
    compare(what, out[0][i], out[1][i], 0, 0, 0);
    compare(what, out[0][i], out[2][i], 0, 0, i == 2 ? 0 : norm_tol(dt));
  }
  mlx_array all[] = {qk, v, keys0, values0, q, k, position, mask, freqs};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  for (int r = 0; r < 3; r++)
    for (int i = 0; i < 3; i++) mlx_array_free(out[r][i]);
}

/* The 0.5B (14/2 heads of 64), 8B (32/8 of 128), 16 query heads a KV head and one; positions at
 * the first slot, the ends of 64-slot tiles and deep into a long cache (many chunks); caches of
 * up to 256 slots (512 for D = 64) take one wide block a KV head, its 256-key tiles in turn
 * (300 slots at 150: a second tile wholly masked); 1,000 and 4,096 take chunks; float32 runs the
 * two kernels. Variant 1: half the dims rotated, interleaved pairs, a frequency array. */
TEST(rope_kv_attention) {
  static const int heads[4][3] = {{14, 2, 64}, {32, 8, 128}, {16, 1, 128}, {8, 8, 64}};
  static const int where[9][2] = {{256, 0},  {256, 63},  {256, 64},  {256, 200},  {4096, 4000},
                                  {100, 99}, {500, 300}, {300, 150}, {1000, 999}};
  for (int t = 0; t < 3; t++)
    for (int h = 0; h < 4; h++)
      for (int w = 0; w < 9; w++)
        check_rope_attention(float_types[t], heads[h][0], heads[h][1], heads[h][2], where[w][0], where[w][1],
                             (h + w) % 2, w != 3 || h != 0);
}

/* Queries uniform in [-qmag, qmag]: large values make the softmax peaked, so that the running
 * maximum and its corrections matter. */
static void check_sdpa_q(const char* what, mlx_dtype dt, int B, int Hq, int Hk, int Lq, int Lk, int D,
                         const char* mode, mlx_array mask, bool sinks, bool strided_k, float qmag) {
  int sq[4] = {B, Hq, Lq, D}, sk[4] = {B, Hk, Lk, D}, skt[4] = {B, Lk, Hk, D};
  mlx_array q = rand_array(sq, 4, dt, -qmag, qmag), v = rand_array(sk, 4, dt, -1, 1);
  mlx_array k0 = rand_array(strided_k ? skt : sk, 4, dt, -1, 1), k = mlx_array_new();
  if (strided_k) mlx_swapaxes(&k, k0, 1, 2, cpu);
  else mlx_array_set(&k, k0);
  int ss[1] = {Hq};
  mlx_array s = sinks ? rand_array(ss, 1, dt, -1, 1) : mlx_array_new();
  mlx_array g = mlx_array_new(), c = mlx_array_new();
  float scale = 1.0f / sqrtf((float)D);
  CHECK_MSG(mlx_fast_scaled_dot_product_attention(&g, q, k, v, scale, mode, mask, s, gpu) == 0, "%s: %s", what,
            mlxc_last_error());
  mlx_fast_scaled_dot_product_attention(&c, q, k, v, scale, mode, mask, s, cpu);
  compare(what, g, c, 0, 0, norm_tol(dt));
  mlx_array arrays[] = {q, v, k0, k, s, g, c};
  for (size_t i = 0; i < 7; i++) mlx_array_free(arrays[i]);
}

static void check_sdpa(const char* what, mlx_dtype dt, int B, int Hq, int Hk, int Lq, int Lk, int D,
                       const char* mode, mlx_array mask, bool sinks, bool strided_k) {
  check_sdpa_q(what, dt, B, Hq, Hk, Lq, Lk, D, mode, mask, sinks, strided_k, 1.0f);
}

TEST(attention) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    char what[96];
    snprintf(what, sizeof what, "sdpa %s decode GQA 8/2 over 300 keys", dname(dt));
    check_sdpa(what, dt, 2, 8, 2, 1, 300, 64, "", mlx_array_new(), false, false);
    /* A cache of 65..256 slots is one wide block a KV head (no chunks): with sinks, D = 128. */
    snprintf(what, sizeof what, "sdpa %s decode GQA 16/4 over 200 keys, sinks (one wide block)", dname(dt));
    check_sdpa(what, dt, 1, 16, 4, 1, 200, 128, "", mlx_array_new(), true, false);
    /* The same with an additive mask over the keys (a wide block reads it with q), D = 64. */
    int sdm[4] = {1, 1, 1, 200};
    mlx_array dmask = rand_array(sdm, 4, dt, -4, 0);
    snprintf(what, sizeof what, "sdpa %s decode GQA 8/2 over 200 keys, additive mask (one wide block)", dname(dt));
    check_sdpa(what, dt, 1, 8, 2, 1, 200, 64, "", dmask, false, false);
    mlx_array_free(dmask);
    snprintf(what, sizeof what, "sdpa %s causal prefill, strided keys", dname(dt));
    check_sdpa(what, dt, 1, 4, 4, 9, 13, 128, "causal", mlx_array_new(), false, true);
    snprintf(what, sizeof what, "sdpa %s sinks, D=80", dname(dt));
    check_sdpa(what, dt, 1, 4, 1, 3, 50, 80, "", mlx_array_new(), true, false);
    /* A boolean mask broadcast over batch and heads, with one row fully masked (zeros). */
    bool m[5 * 7];
    for (int i = 0; i < 35; i++) m[i] = i >= 7 && ((i * 7) % 3 != 0);
    int sm[4] = {1, 1, 5, 7};
    mlx_array mask = mlx_array_new_data(m, sm, 4, MLX_BOOL);
    snprintf(what, sizeof what, "sdpa %s bool mask", dname(dt));
    check_sdpa(what, dt, 2, 4, 2, 5, 7, 64, "", mask, false, false);
    int sfm[2] = {5, 7};
    mlx_array fmask = rand_array(sfm, 2, dt, -3, 0);
    snprintf(what, sizeof what, "sdpa %s additive mask", dname(dt));
    check_sdpa(what, dt, 1, 2, 2, 5, 7, 32, "", fmask, false, false);
    mlx_array_free(mask);
    mlx_array_free(fmask);
    /* Many short rows (attention_rows.cu): a BERT batch with padded sentences (a boolean
     * (B, 1, 1, Lk) mask), and a causal chunk over several key tiles with D = 96, peaked. */
    bool pad[4 * 32];
    for (int i = 0; i < 4 * 32; i++) pad[i] = (i % 32) < 32 - 5 * (i / 32);
    int sp[4] = {4, 1, 1, 32};
    mlx_array pmask = mlx_array_new_data(pad, sp, 4, MLX_BOOL);
    snprintf(what, sizeof what, "sdpa %s BERT batch 4x12 heads 32x32 D=64, padding mask", dname(dt));
    check_sdpa(what, dt, 4, 12, 12, 32, 32, 64, "", pmask, false, false);
    snprintf(what, sizeof what, "sdpa %s causal chunk 100 of 300 D=96 GQA 6/2, peaked", dname(dt));
    check_sdpa_q(what, dt, 1, 6, 2, 100, 300, 96, "causal", mlx_array_new(), false, false, 6.0f);
    mlx_array_free(pmask);
  }
}

/* Prefill attention on tensor cores (attention_prefill.cu): f16/bf16, D 64/128, GQA, causal with
 * fewer queries than keys (a chunk after a cached prefix), bool and additive masks, a fully
 * masked row, ragged tiles (sizes not multiples of 64). */
TEST(attention_prefill) {
  for (int t = 1; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    char what[128];
    snprintf(what, sizeof what, "prefill %s causal 200x200 D=64 GQA 14/2", dname(dt));
    check_sdpa(what, dt, 1, 14, 2, 200, 200, 64, "causal", mlx_array_new(), false, false);
    snprintf(what, sizeof what, "prefill %s causal chunk 77 of 300 D=128 GQA 8/2 B=2", dname(dt));
    check_sdpa(what, dt, 2, 8, 2, 77, 300, 128, "causal", mlx_array_new(), false, false);
    snprintf(what, sizeof what, "prefill %s no mask 130x65 D=128", dname(dt));
    check_sdpa(what, dt, 1, 4, 4, 130, 65, 128, "", mlx_array_new(), false, false);
    /* Many whole tiles (the unmasked path) with a peaked softmax. */
    snprintf(what, sizeof what, "prefill %s causal 520x520 D=128 GQA 8/2, peaked", dname(dt));
    check_sdpa_q(what, dt, 1, 8, 2, 520, 520, 128, "causal", mlx_array_new(), false, false, 8.0f);
    snprintf(what, sizeof what, "prefill %s no mask 300x700 D=64, peaked", dname(dt));
    check_sdpa_q(what, dt, 1, 2, 1, 300, 700, 64, "", mlx_array_new(), false, false, 8.0f);
    bool m[40 * 90];
    for (int i = 0; i < 40 * 90; i++) m[i] = i >= 90 && ((i * 7) % 5 != 0); /* row 0 fully masked */
    int sm[4] = {1, 1, 40, 90};
    mlx_array mask = mlx_array_new_data(m, sm, 4, MLX_BOOL);
    snprintf(what, sizeof what, "prefill %s bool mask 40x90 D=64", dname(dt));
    check_sdpa(what, dt, 2, 4, 2, 40, 90, 64, "", mask, false, false);
    int sfm[2] = {40, 90};
    mlx_array fmask = rand_array(sfm, 2, dt, -3, 0);
    snprintf(what, sizeof what, "prefill %s additive mask 40x90 D=128", dname(dt));
    check_sdpa(what, dt, 1, 4, 1, 40, 90, 128, "", fmask, false, false);
    mlx_array_free(mask);
    mlx_array_free(fmask);
  }
}

/* Decode attention (one query) against the CPU: the split-K kernel for f16/bf16 and head dims
 * 64/128/256, the general kernel otherwise. kv_cap > Lk reads K/V as the first Lk rows of a
 * larger cache (row stride D, head stride kv_cap * D); mask_kind 1: a boolean (B, Hq, 1, Lk)
 * mask with head 0 fully masked, 2: an additive (1, 1, 1, Lk) mask, 3 and 4: the tail hidden
 * (boolean / additive -inf); causal is a no-op for one
 * query but takes the same path. */
static void check_decode(mlx_dtype dt, int B, int Hq, int Hk, int Lk, int kv_cap, int D, int mask_kind,
                         bool sinks, bool causal) {
  char what[160];
  snprintf(what, sizeof what, "decode %s B=%d Hq=%d Hk=%d Lk=%d cap=%d D=%d mask=%d sinks=%d causal=%d",
           dname(dt), B, Hq, Hk, Lk, kv_cap, D, mask_kind, sinks, causal);
  int sq[4] = {B, Hq, 1, D}, sc[4] = {B, Hk, kv_cap, D};
  int start[4] = {0, 0, 0, 0}, stop[4] = {B, Hk, Lk, D};
  mlx_array q = rand_array(sq, 4, dt, -2, 2), kc = rand_array(sc, 4, dt, -1, 1), vc = rand_array(sc, 4, dt, -1, 1);
  mlx_array k = mlx_array_new(), v = mlx_array_new(), mask = mlx_array_new();
  int one[4] = {1, 1, 1, 1};
  mlx_slice(&k, kc, start, 4, stop, 4, one, 4, cpu);
  mlx_slice(&v, vc, start, 4, stop, 4, one, 4, cpu);
  if (mask_kind == 1) {
    size_t n = (size_t)B * Hq * Lk;
    bool* m = malloc(n);
    for (size_t i = 0; i < n; i++) m[i] = (i % ((size_t)Hq * Lk)) >= (size_t)Lk && uniform(0, 1) < 0.7;
    int sm[4] = {B, Hq, 1, Lk};
    mask = mlx_array_new_data(m, sm, 4, MLX_BOOL);
    free(m);
  } else if (mask_kind == 2) {
    int sm[4] = {1, 1, 1, Lk};
    mask = rand_array(sm, 4, dt, -4, 0);
  } else if (mask_kind == 3 || mask_kind == 4) {
    /* The slots past 40% of the keys hidden, as a recorded step's unfilled cache slots: boolean
     * (3) or additive with -inf (4), broadcast over heads. */
    int sm[4] = {1, 1, 1, Lk};
    bool* m = malloc((size_t)Lk);
    float* f = malloc(sizeof(float) * (size_t)Lk);
    for (int j = 0; j < Lk; j++) {
      m[j] = j < Lk * 2 / 5 + 1;
      f[j] = m[j] ? -0.25f * (float)(j % 3) : -INFINITY;
    }
    if (mask_kind == 3) {
      mask = mlx_array_new_data(m, sm, 4, MLX_BOOL);
    } else {
      mlx_array f32 = mlx_array_new_data(f, sm, 4, MLX_FLOAT32);
      mlx_astype(&mask, f32, dt, cpu);
      mlx_array_free(f32);
    }
    free(m);
    free(f);
  }
  int ss[1] = {Hq};
  mlx_array s = sinks ? rand_array(ss, 1, dt, -1, 1) : mlx_array_new();
  mlx_array g = mlx_array_new(), c = mlx_array_new();
  float scale = 1.0f / sqrtf((float)D);
  const char* mode = causal ? "causal" : "";
  CHECK_MSG(mlx_fast_scaled_dot_product_attention(&g, q, k, v, scale, mode, mask, s, gpu) == 0, "%s: %s", what,
            mlxc_last_error());
  mlx_fast_scaled_dot_product_attention(&c, q, k, v, scale, mode, mask, s, cpu);
  compare(what, g, c, 0, 0, norm_tol(dt));
  compare(what, g, c, 0, 3 * ulp(dt), 0);
  /* The scalar split-K kernel where the tensor-core one would run. */
  mlx_array g2 = mlx_array_new();
  setenv("MLXC_DECODE_ATTN_SCALAR", "1", 1);
  CHECK_MSG(mlx_fast_scaled_dot_product_attention(&g2, q, k, v, scale, mode, mask, s, gpu) == 0 && mlx_array_eval(g2) == 0,
            "%s (scalar kernel): %s", what, mlxc_last_error());
  unsetenv("MLXC_DECODE_ATTN_SCALAR");
  compare(what, g2, c, 0, 0, norm_tol(dt));
  compare(what, g2, c, 0, 3 * ulp(dt), 0);
  mlx_array arrays[] = {q, kc, vc, k, v, mask, s, g, c, g2};
  for (size_t i = 0; i < 10; i++) mlx_array_free(arrays[i]);
}

TEST(attention_decode) {
  static const int lks[] = {1, 2, 7, 31, 64, 65, 300, 1000, 4097, 5000};
  static const int heads[][2] = {{32, 8}, {14, 2}, {4, 4}, {8, 1}, {16, 2}};
  static const int dims[] = {64, 128, 256};
  const mlx_dtype half_types[] = {MLX_BFLOAT16, MLX_FLOAT16};
  int n = 0;
  for (int t = 0; t < 2; t++)
    for (int li = 0; li < 10; li++) {
      int hi = (li + t) % 5, di = (li + 2 * t) % 3;
      int Lk = lks[li];
      check_decode(half_types[t], 1 + (li % 2), heads[hi][0], heads[hi][1], Lk, Lk + (li % 3) * 5, dims[di],
                   li % 3, li % 4 == 1, li % 5 == 2);
      n++;
    }
  /* The shapes of the benchmark and of the small models, every option. */
  check_decode(MLX_BFLOAT16, 1, 32, 8, 4096, 4096, 128, 0, false, false);
  check_decode(MLX_BFLOAT16, 1, 14, 2, 777, 1024, 64, 1, true, true);
  check_decode(MLX_FLOAT16, 2, 32, 8, 129, 200, 128, 2, true, false);
  /* Hidden tails (whole chunks hidden at 5000 keys): the tensor-core kernel stops at the last
   * key any head sees. */
  check_decode(MLX_BFLOAT16, 1, 32, 8, 256, 256, 128, 3, false, false);
  check_decode(MLX_FLOAT16, 1, 14, 2, 5000, 5000, 64, 3, true, false);
  check_decode(MLX_BFLOAT16, 2, 32, 8, 4096, 4096, 128, 4, false, false);
  check_decode(MLX_BFLOAT16, 1, 8, 8, 700, 800, 64, 4, true, false);
  /* 16 and 12 query heads per KV head: the tensor-core kernel only (the scalar one declines). */
  check_decode(MLX_BFLOAT16, 1, 16, 1, 300, 300, 64, 2, false, false);
  check_decode(MLX_FLOAT16, 1, 24, 2, 1000, 1100, 128, 1, true, false);
  /* Shapes the split-K kernels decline (general kernel): f32, D = 80. */
  check_decode(MLX_FLOAT32, 1, 8, 2, 300, 300, 128, 1, false, false);
  check_decode(MLX_BFLOAT16, 1, 4, 2, 300, 310, 80, 0, true, false);
  CHECK(n == 20);
}

/* Whether a GPU kernel produced `a` (device-only buffer) rather than the CPU fallback. Evaluates. */

TEST(layer_norm_and_row_reductions) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    int sx[2] = {300, 9};
    mlx_array x0 = rand_array(sx, 2, dt, -3, 5), x = mlx_array_new();
    mlx_transpose(&x, x0, cpu); /* (9, 300), strided rows */
    int sv[1] = {300};
    mlx_array w = rand_array(sv, 1, dt, 0.5, 2), b = rand_array(sv, 1, dt, -1, 1), none = mlx_array_new();
    for (int variant = 0; variant < 4; variant++) {
      mlx_array wv = variant & 1 ? w : none, bv = variant & 2 ? b : none;
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      char what[64];
      snprintf(what, sizeof what, "layer_norm %s weight=%d bias=%d", dname(dt), variant & 1, variant >> 1);
      CHECK_MSG(mlx_fast_layer_norm(&g, x, wv, bv, 1e-5f, gpu) == 0, "%s: %s", what, mlxc_last_error());
      CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
      mlx_fast_layer_norm(&c, x, wv, bv, 1e-5f, cpu);
      compare(what, g, c, dt == MLX_FLOAT32 ? 1e-5 : 2.01 * ulp(dt), dt == MLX_FLOAT32 ? 1e-5 : 8 * ulp(dt), 0);
      mlx_array_free(g);
      mlx_array_free(c);
    }
    typedef int (*reduce_fn)(mlx_array*, const mlx_array, int, bool, const mlx_stream);
    const reduce_fn fns[4] = {mlx_sum_axis, mlx_max_axis, mlx_mean_axis, mlx_logsumexp_axis};
    const char* names[4] = {"sum", "max", "mean", "logsumexp"};
    for (int f = 0; f < 4; f++) {
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      char what[64];
      snprintf(what, sizeof what, "%s last axis %s", names[f], dname(dt));
      CHECK_MSG(fns[f](&g, x, -1, f == 1, gpu) == 0, "%s: %s", what, mlxc_last_error());
      CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
      fns[f](&c, x, -1, f == 1, cpu);
      compare(what, g, c, dt == MLX_FLOAT32 ? 1e-6 : ulp(dt), 1e-6, 0);
      mlx_array_free(g);
      mlx_array_free(c);
    }
    mlx_array arrays[] = {x0, x, w, b};
    for (size_t i = 0; i < 4; i++) mlx_array_free(arrays[i]);
  }
  /* max propagates NaN; a reduction over another axis takes the general kernel (reduce.cu,
   * tested in test_cuda_reduce). */
  float v[8] = {1, NAN, 3, 2, -1, -5, 7, 0};
  int s[2] = {2, 4};
  mlx_array a = mlx_array_new_data(v, s, 2, MLX_FLOAT32), g = mlx_array_new(), c = mlx_array_new();
  CHECK(mlx_max_axis(&g, a, 1, false, gpu) == 0);
  const float* gv = mlx_array_data_float32(g);
  CHECK(gv && isnan(gv[0]) && gv[1] == 7.0f);
  mlx_array gs = mlx_array_new(), cs = mlx_array_new();
  CHECK(mlx_sum_axis(&gs, a, 0, false, gpu) == 0);
  CHECK_MSG(made_on_gpu(gs), "sum over axis 0: not computed on the GPU");
  mlx_sum_axis(&cs, a, 0, false, cpu);
  compare("sum over axis 0", gs, cs, 0, 0, 0);
  mlx_array arrays[] = {a, g, c, gs, cs};
  for (size_t i = 0; i < 5; i++) mlx_array_free(arrays[i]);
}

/* mlxc_fast_argmax_logsumexp on the GPU (one kernel for all three results, whatever the row's
 * length, in float arithmetic) against the CPU (in double): a vocabulary row, several rows, a
 * short one; then equal maxima in different blocks' spans, a NaN, +inf and a row of -inf. The
 * index and the value exactly, the float32 log-sum-exp within float32 rounding of its sum. */
static void check_argmax_lse(const char* what, mlx_array x) {
  mlx_array g[3] = {mlx_array_new(), mlx_array_new(), mlx_array_new()};
  mlx_array c[3] = {mlx_array_new(), mlx_array_new(), mlx_array_new()};
  CHECK_MSG(mlxc_fast_argmax_logsumexp(&g[0], &g[1], &g[2], x, gpu) == 0, "%s: %s", what, mlxc_last_error());
  CHECK(mlxc_fast_argmax_logsumexp(&c[0], &c[1], &c[2], x, cpu) == 0);
  CHECK_MSG(made_on_gpu(g[0]), "%s: not computed on the GPU", what);
  char part[128];
  static const char* parts[3] = {"index", "value", "lse"};
  for (int i = 0; i < 3; i++) {
    snprintf(part, sizeof part, "argmax_logsumexp %s: %s", what, parts[i]);
    compare(part, g[i], c[i], i < 2 ? 0 : 1e-6, 0, 0);
    mlx_array_free(g[i]);
    mlx_array_free(c[i]);
  }
}

TEST(argmax_logsumexp) {
  static const int shapes[3][2] = {{1, 151936}, {3, 50000}, {2, 256}};
  for (int t = 0; t < 3; t++)
    for (int i = 0; i < 3; i++) {
      mlx_array x = rand_array(shapes[i], 2, float_types[t], -20, 20);
      char what[64];
      snprintf(what, sizeof what, "%s (%d, %d)", dname(float_types[t]), shapes[i][0], shapes[i][1]);
      check_argmax_lse(what, x);
      mlx_array_free(x);
    }
  const int n = 70000;
  float* v = calloc((size_t)4 * n, sizeof(float));
  v[60000] = 5, v[3] = 5;              /* equal maxima, the first wins */
  v[n + 65000] = NAN, v[n + 10] = 9;   /* a NaN wins */
  v[2 * n + 5] = INFINITY;             /* +inf: lse +inf */
  for (int i = 0; i < n; i++) v[3 * n + i] = -INFINITY;
  int s[2] = {4, n};
  mlx_array x = mlx_array_new_data(v, s, 2, MLX_FLOAT32);
  free(v);
  check_argmax_lse("ties, NaN, inf, -inf rows", x);
  mlx_array_free(x);
}

/* Few long rows (a vocabulary of logits) take the split-row kernels: argmax with ties across
 * the blocks' spans and a NaN, max, sum, mean and log-sum-exp, against the CPU. */
TEST(long_row_reductions) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    int sx[2] = {3, 151936};
    mlx_array x = rand_array(sx, 2, dt, -20, 20);
    typedef int (*reduce_fn)(mlx_array*, const mlx_array, int, bool, const mlx_stream);
    const reduce_fn fns[5] = {mlx_sum_axis, mlx_max_axis, mlx_mean_axis, mlx_logsumexp_axis, mlx_argmax_axis};
    const char* names[5] = {"sum", "max", "mean", "logsumexp", "argmax"};
    for (int f = 0; f < 5; f++) {
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      char what[64];
      snprintf(what, sizeof what, "%s over 151936 %s", names[f], dname(dt));
      CHECK_MSG(fns[f](&g, x, -1, false, gpu) == 0, "%s: %s", what, mlxc_last_error());
      CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
      fns[f](&c, x, -1, false, cpu);
      /* The sums are ~N(0, 4500) over magnitudes totalling ~1.5e6: the CPU's float32 partial sums
       * are off by ~1e-3 absolutely (a relative 1e-6 of a sum near 0 is not a fair bound). */
      compare(what, g, c, dt == MLX_FLOAT32 ? 1e-6 : ulp(dt), f == 0 ? 1e-2 : 1e-5, 0);
      mlx_array_free(g);
      mlx_array_free(c);
    }
    mlx_array_free(x);
  }
  /* Equal maxima far apart (the first wins) and a NaN late in a row (it wins). */
  int n = 100000;
  float* v = calloc((size_t)2 * n, sizeof(float));
  v[70000] = 5;
  v[3] = 5;
  v[n + 99999] = NAN;
  v[n + 10] = 9;
  int s[2] = {2, n};
  mlx_array a = mlx_array_new_data(v, s, 2, MLX_FLOAT32), g = mlx_array_new(), m = mlx_array_new();
  free(v);
  CHECK(mlx_argmax_axis(&g, a, 1, false, gpu) == 0);
  const uint32_t* r = mlx_array_data_uint32(g);
  CHECK(r && r[0] == 3 && r[1] == 99999);
  CHECK(mlx_max_axis(&m, a, 1, false, gpu) == 0);
  const float* mv = mlx_array_data_float32(m);
  CHECK(mv && mv[0] == 5 && isnan(mv[1]));
  mlx_array_free(a);
  mlx_array_free(g);
  mlx_array_free(m);
}

TEST(where_broadcast) {
  const mlx_dtype types[] = {MLX_FLOAT32, MLX_BFLOAT16, MLX_INT32, MLX_BOOL, MLX_UINT8, MLX_INT64};
  for (int t = 0; t < 6; t++) {
    mlx_dtype dt = types[t];
    int sc[3] = {4, 1, 6}, sa[2] = {5, 6}, sb[3] = {6, 5, 4};
    mlx_array c0 = rand_array(sc, 3, MLX_FLOAT32, -1, 1), zero = mlx_array_new_float(0.0f), cond = mlx_array_new();
    mlx_greater(&cond, c0, zero, cpu);
    mlx_array a = rand_array(sa, 2, dt, -50, 50), b0 = rand_array(sb, 3, dt, -50, 50), b = mlx_array_new();
    mlx_transpose(&b, b0, cpu); /* (4, 5, 6), strided */
    mlx_array g = mlx_array_new(), c = mlx_array_new();
    char what[48];
    snprintf(what, sizeof what, "where %s", dname(dt));
    CHECK_MSG(mlx_where(&g, cond, a, b, gpu) == 0, "%s: %s", what, mlxc_last_error());
    CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
    mlx_where(&c, cond, a, b, cpu);
    compare(what, g, c, 0, 0, 0);
    mlx_array arrays[] = {c0, zero, cond, a, b0, b, g, c};
    for (size_t i = 0; i < 8; i++) mlx_array_free(arrays[i]);
  }
}

TEST(quantized_gemv) {
  const int bits[2] = {4, 8}, groups[3] = {32, 64, 128};
  for (int t = 0; t < 3; t++)
    for (int bi = 0; bi < 2; bi++)
      for (int gk = 0; gk < 7; gk++) {
        const int gi = gk % 3;
        mlx_dtype dt = float_types[t];
        /* Also more row groups than a wave of resident blocks (4229 rows: blocks walk several),
         * K of several chunks per lane (8192), and many tiles of short rows (8229 rows, K = 384,
         * 640, 1152: the 4-bit tensor-core kernel, its last chunk half full). */
        int N = gi == 2 ? 4229 + t : 96 + 8 * gi + t, K = gi == 1 ? 8192 : 256 * (gi + 1);
        if (gk >= 3) N = 8229 + t, K = 128 * (3 + 2 * gi); /* 4-bit: the tensor-core kernel's case */
        if (gk == 6) N = 16389 + t, K = 2560; /* 4-bit: over 4,096 blocks of short rows, one warp each */
        int sw[2] = {N, K}, sx[2] = {1, K};
        mlx_array w = rand_array(sw, 2, dt, -1, 1), x = rand_array(sx, 2, dt, -1, 1);
        mlx_vector_array q = mlx_vector_array_new();
        mlx_optional_int gs = {groups[gi], true}, nb = {bits[bi], true};
        CHECK(mlx_quantize(&q, w, gs, nb, "affine", mlx_array_new(), cpu) == 0);
        mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bs = mlx_array_new();
        mlx_vector_array_get(&wq, q, 0);
        mlx_vector_array_get(&sc, q, 1);
        mlx_vector_array_get(&bs, q, 2);
        mlx_array g = mlx_array_new(), c = mlx_array_new();
        char what[96];
        snprintf(what, sizeof what, "quantized GEMV %s %d-bit group %d K %d", dname(dt), bits[bi], groups[gi], K);
        CHECK_MSG(mlx_quantized_matmul(&g, x, wq, sc, bs, true, gs, nb, "affine", gpu) == 0, "%s: %s", what,
                  mlxc_last_error());
        CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
        mlx_quantized_matmul(&c, x, wq, sc, bs, true, gs, nb, "affine", cpu);
        compare(what, g, c, 0, 0, dt == MLX_FLOAT32 ? 1e-5 : norm_tol(dt));
        /* 1-D x and more than one row of x (the latter declines to the CPU). */
        if (t == 2 && gk == 0) {
          int s1[1] = {K}, s3[2] = {3, K};
          mlx_array x1 = rand_array(s1, 1, dt, -1, 1), x3 = rand_array(s3, 2, dt, -1, 1);
          mlx_array g1 = mlx_array_new(), c1 = mlx_array_new(), g3 = mlx_array_new(), c3 = mlx_array_new();
          CHECK(mlx_quantized_matmul(&g1, x1, wq, sc, bs, true, gs, nb, "affine", gpu) == 0);
          mlx_quantized_matmul(&c1, x1, wq, sc, bs, true, gs, nb, "affine", cpu);
          compare("quantized GEMV 1-D x", g1, c1, 0, 0, norm_tol(dt));
          CHECK(mlx_quantized_matmul(&g3, x3, wq, sc, bs, true, gs, nb, "affine", gpu) == 0);
          CHECK_MSG(made_on_gpu(g3), "quantized matmul, 3 rows: not computed on the GPU");
          mlx_quantized_matmul(&c3, x3, wq, sc, bs, true, gs, nb, "affine", cpu);
          /* Weights dequantized to x's dtype, then cuBLAS: the dtype's rounding of the weights. */
          compare("quantized matmul 3 rows (dequantize + GEMM)", g3, c3, 0, 0, norm_tol(dt));
          mlx_array more[] = {x1, x3, g1, c1, g3, c3};
          for (size_t i = 0; i < 6; i++) mlx_array_free(more[i]);
        }
        mlx_vector_array_free(q);
        mlx_array arrays[] = {w, x, wq, sc, bs, g, c};
        for (size_t i = 0; i < 7; i++) mlx_array_free(arrays[i]);
      }
}

/* GEMV weights that the kernel just before wrote: a chained GEMV loads settled weights before it
 * waits for that kernel (backend/gpu.h: gpu_backend_write_settled), so weights written by a kernel the host
 * has not waited for must be loaded after the wait. Each case computes the weights on the GPU
 * and uses them at once, in the same evaluation and in the next one. */
static bool buffer_settled(mlx_array a) {
  const core_array* c = core_ctx(a);
  return c && c->buffer && gpu_backend_write_settled(0, c->buffer->gpu_write_stamp);
}

TEST(gemv_weights_written_just_before) {
  const int N = 4096, K = 4096;
  int sw[2] = {N, K}, sx[2] = {1, K};
  mlx_array w = rand_array(sw, 2, MLX_BFLOAT16, -1, 1), x = rand_array(sx, 2, MLX_BFLOAT16, -1, 1);
  mlx_array two = mlx_array_new_float(2.0f), w2 = mlx_array_new(), w2t = mlx_array_new();
  mlx_array g = mlx_array_new(), c = mlx_array_new(), cw = mlx_array_new(), cwt = mlx_array_new();
  /* Half weights: w * 2 then x @ (w * 2)^T, one evaluation; then the weights alone first. */
  for (int separate = 0; separate < 2; separate++) {
    CHECK(mlx_multiply(&w2, w, two, gpu) == 0 && mlx_transpose(&w2t, w2, gpu) == 0);
    if (separate) {
      CHECK(mlx_array_eval(w2) == 0);
      CHECK_MSG(!buffer_settled(w2), "weights just written count as settled before any wait");
    }
    CHECK(mlx_matmul(&g, x, w2t, gpu) == 0 && mlx_array_eval(g) == 0);
    CHECK_MSG(made_on_gpu(g), "GEMV of fresh weights: not computed on the GPU");
    mlx_multiply(&cw, w, two, cpu);
    mlx_transpose(&cwt, cw, cpu);
    mlx_matmul(&c, x, cwt, cpu);
    compare(separate ? "GEMV of weights written by the evaluation before" : "GEMV of weights written just before", g, c,
            0, 0, norm_tol(MLX_BFLOAT16));
  }
  CHECK(mlx_synchronize(gpu) == 0);
  CHECK_MSG(buffer_settled(w2), "weights count as unsettled after the host waited for the GPU");
  /* 4-bit weights quantized on the GPU, then the GEMV and the gated GEMV at once. */
  mlx_vector_array q = mlx_vector_array_new(), qc = mlx_vector_array_new();
  mlx_optional_int gs = {64, true}, nb = {4, true};
  mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bs = mlx_array_new();
  mlx_array cq = mlx_array_new(), csc = mlx_array_new(), cbs = mlx_array_new();
  CHECK(mlx_quantize(&q, w2, gs, nb, "affine", mlx_array_new(), gpu) == 0);
  mlx_vector_array_get(&wq, q, 0);
  mlx_vector_array_get(&sc, q, 1);
  mlx_vector_array_get(&bs, q, 2);
  CHECK(mlx_quantized_matmul(&g, x, wq, sc, bs, true, gs, nb, "affine", gpu) == 0 && mlx_array_eval(g) == 0);
  CHECK_MSG(made_on_gpu(g), "quantized GEMV of fresh weights: not computed on the GPU");
  mlx_quantize(&qc, cw, gs, nb, "affine", mlx_array_new(), cpu);
  mlx_vector_array_get(&cq, qc, 0);
  mlx_vector_array_get(&csc, qc, 1);
  mlx_vector_array_get(&cbs, qc, 2);
  mlx_quantized_matmul(&c, x, cq, csc, cbs, true, gs, nb, "affine", cpu);
  compare("quantized GEMV of weights quantized just before", g, c, 0, 0, norm_tol(MLX_BFLOAT16));
  CHECK(mlx_quantize(&q, w, gs, nb, "affine", mlx_array_new(), gpu) == 0);
  mlx_vector_array_get(&wq, q, 0);
  mlx_vector_array_get(&sc, q, 1);
  mlx_vector_array_get(&bs, q, 2);
  int sxg[1] = {K};
  mlx_array xg = mlx_array_new();
  mlx_reshape(&xg, x, sxg, 1, cpu);
  CHECK(mlxc_fast_gated_linear(&g, xg, wq, sc, bs, gs, nb, "silu", gpu) == 0 && mlx_array_eval(g) == 0);
  mlx_quantize(&qc, w, gs, nb, "affine", mlx_array_new(), cpu);
  mlx_vector_array_get(&cq, qc, 0);
  mlx_vector_array_get(&csc, qc, 1);
  mlx_vector_array_get(&cbs, qc, 2);
  mlxc_fast_gated_linear(&c, xg, cq, csc, cbs, gs, nb, "silu", cpu);
  compare("gated quantized GEMV of weights quantized just before", g, c, 0, 0, norm_tol(MLX_BFLOAT16));
  mlx_vector_array_free(q);
  mlx_vector_array_free(qc);
  mlx_array arrays[] = {w, x, two, w2, w2t, g, c, cw, cwt, wq, sc, bs, cq, csc, cbs, xg};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

TEST(dequantize_all_widths) {
  const int bits[6] = {2, 3, 4, 5, 6, 8};
  for (int t = 0; t < 3; t++)
    for (int b = 0; b < 6; b++) {
      mlx_dtype dt = float_types[t];
      int group = b % 2 ? 64 : 32, sw[2] = {37, 4 * group};
      mlx_array w = rand_array(sw, 2, dt, -2, 2);
      mlx_vector_array q = mlx_vector_array_new();
      mlx_optional_int gs = {group, true}, nb = {bits[b], true};
      CHECK(mlx_quantize(&q, w, gs, nb, "affine", mlx_array_new(), cpu) == 0);
      mlx_array wq = mlx_array_new(), sc = mlx_array_new(), bs = mlx_array_new(), g = mlx_array_new(),
                c = mlx_array_new();
      mlx_vector_array_get(&wq, q, 0);
      mlx_vector_array_get(&sc, q, 1);
      mlx_vector_array_get(&bs, q, 2);
      char what[64];
      snprintf(what, sizeof what, "dequantize %s %d-bit group %d", dname(dt), bits[b], group);
      mlx_optional_dtype none = {MLX_FLOAT32, false};
      CHECK_MSG(mlx_dequantize(&g, wq, sc, bs, gs, nb, "affine", mlx_array_new(), none, gpu) == 0, "%s: %s", what,
                mlxc_last_error());
      CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
      mlx_dequantize(&c, wq, sc, bs, gs, nb, "affine", mlx_array_new(), none, cpu);
      compare(what, g, c, 0, 0, 0); /* the same roundings: bit for bit */
      mlx_vector_array_free(q);
      mlx_array arrays[] = {w, wq, sc, bs, g, c};
      for (size_t i = 0; i < 6; i++) mlx_array_free(arrays[i]);
    }
}

/* slice_update writes in place into a source nobody else holds (a KV cache), and copies when
 * the source is still visible. */
TEST(slice_update_donation) {
  int shape[4] = {1, 2, 64, 16}, ushape[4] = {1, 2, 1, 16};
  int start[4] = {0, 0, 5, 0}, stop[4] = {1, 2, 6, 16};
  for (int round = 0; round < 2; round++) {
    bool keep_source = round == 0;
    mlx_array host = rand_array(shape, 4, MLX_BFLOAT16, -1, 1), upd = rand_array(ushape, 4, MLX_BFLOAT16, -1, 1);
    mlx_array src = mlx_array_new(), g = mlx_array_new(), c = mlx_array_new(), before = mlx_array_new();
    mlx_copy(&src, host, gpu); /* device-resident, row-major */
    mlx_array_eval(src);
    mlx_copy(&before, host, cpu);
    mlx_array_eval(before);
    CHECK(mlx_slice_update(&c, host, upd, start, 4, stop, 4, NULL, 0, cpu) == 0);
    if (keep_source) {
      CHECK(mlx_slice_update(&g, src, upd, start, 4, stop, 4, NULL, 0, gpu) == 0);
      mlx_array_eval(g);
      compare("slice_update: the source held elsewhere is unchanged", src, before, 0, 0, 0);
    } else {
      CHECK(mlx_slice_update(&src, src, upd, start, 4, stop, 4, NULL, 0, gpu) == 0); /* the cache idiom */
      mlx_array_set(&g, src);
    }
    compare(keep_source ? "slice_update (copy)" : "slice_update (in place)", g, c, 0, 0, 0);
    mlx_array arrays[] = {host, upd, src, g, c, before};
    for (size_t i = 0; i < 6; i++) mlx_array_free(arrays[i]);
  }
}

TEST(softmax_argmax_take) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    int sx[2] = {40, 7};
    mlx_array x0 = rand_array(sx, 2, dt, -5, 5), x = mlx_array_new();
    mlx_transpose(&x, x0, cpu); /* (7, 40), strided rows */
    mlx_array g = mlx_array_new(), c = mlx_array_new();
    CHECK(mlx_softmax_axis(&g, x, -1, false, gpu) == 0);
    mlx_softmax_axis(&c, x, -1, false, cpu);
    compare("softmax last axis", g, c, dt == MLX_FLOAT32 ? 1e-5 : 2.01 * ulp(dt), 1e-7, 0);
    mlx_array ga = mlx_array_new(), ca = mlx_array_new();
    CHECK(mlx_argmax_axis(&ga, x, -1, false, gpu) == 0);
    mlx_argmax_axis(&ca, x, -1, false, cpu);
    compare("argmax last axis", ga, ca, 0, 0, 0);
    mlx_array arrays[] = {x0, x, g, c, ga, ca};
    for (size_t i = 0; i < 6; i++) mlx_array_free(arrays[i]);
  }
  /* Few long rows (a vocabulary row): the split-block softmax, also with a strided row. */
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    int sl[2] = {2, 151936};
    mlx_array x = rand_array(sl, 2, dt, -20, 20), g = mlx_array_new(), c = mlx_array_new();
    CHECK(mlx_softmax_axis(&g, x, -1, true, gpu) == 0);
    mlx_softmax_axis(&c, x, -1, true, cpu);
    /* float16 rounds the many tiny probabilities to subnormals, 5.96e-8 apart: one step of that
     * grid is the absolute tolerance (a seed gave 2.98e-7 against 2.38e-7). */
    compare("softmax long rows", g, c, dt == MLX_FLOAT32 ? 1e-5 : 2.01 * ulp(dt), dt == MLX_FLOAT16 ? 6e-8 : 1e-12, 0);
    mlx_array arrays[] = {x, g, c};
    for (size_t i = 0; i < 3; i++) mlx_array_free(arrays[i]);
  }
  /* argmax rules: ties keep the first index, the first NaN wins; int32 rows. */
  float v[8] = {1, 3, 3, 2, 0, NAN, 5, NAN};
  int s[2] = {2, 4};
  mlx_array a = mlx_array_new_data(v, s, 2, MLX_FLOAT32), g = mlx_array_new();
  CHECK(mlx_argmax_axis(&g, a, 1, false, gpu) == 0);
  const uint32_t* r = mlx_array_data_uint32(g);
  CHECK(r && r[0] == 1 && r[1] == 1);
  int si[2] = {3, 1000};
  mlx_array ai = rand_array(si, 2, MLX_INT32, -100000, 100000), gi = mlx_array_new(), ci = mlx_array_new();
  mlx_argmax_axis(&gi, ai, 1, true, gpu);
  mlx_argmax_axis(&ci, ai, 1, true, cpu);
  compare("argmax int32", gi, ci, 0, 0, 0);
  /* take along axis 0 (an embedding lookup), negative indices wrap. */
  int st[2] = {50, 16};
  int32_t idx[6] = {3, 49, -1, 0, 7, 3};
  int sidx[2] = {2, 3};
  mlx_array table = rand_array(st, 2, MLX_BFLOAT16, -1, 1), ind = mlx_array_new_data(idx, sidx, 2, MLX_INT32);
  mlx_array gt = mlx_array_new(), ct = mlx_array_new();
  CHECK(mlx_take_axis(&gt, table, ind, 0, gpu) == 0);
  mlx_take_axis(&ct, table, ind, 0, cpu);
  compare("take axis 0", gt, ct, 0, 0, 0);
  /* An index out of range fails with the CPU kernel's message. */
  int32_t badi[2] = {1, 50};
  int sb[1] = {2};
  mlx_array bad = mlx_array_new_data(badi, sb, 1, MLX_INT32), gb = mlx_array_new();
  bool quiet = mlxc_set_errors_quiet(true);
  mlx_take_axis(&gb, table, bad, 0, gpu);
  CHECK(mlx_array_eval(gb) != 0);
  CHECK(strstr(mlxc_last_error(), "out of bounds") != NULL);
  mlxc_set_errors_quiet(quiet);
  mlx_array arrays[] = {a, g, ai, gi, ci, table, ind, gt, ct, bad, gb};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

/* ---- residency, fallback, memory ---- */

TEST(residency_and_fallback) {
  int s[2] = {64, 48};
  mlx_array a = rand_array(s, 2, MLX_FLOAT32, -1, 1), b = rand_array(s, 2, MLX_FLOAT32, -1, 1);
  /* A chain on the GPU (device-resident intermediates), read back directly on the host. */
  mlx_array t = mlx_array_new(), e = mlx_array_new(), cpu_e = mlx_array_new(), cpu_t = mlx_array_new();
  mlx_add(&t, a, b, gpu);
  mlx_exp(&e, t, gpu);
  mlx_add(&cpu_t, a, b, cpu);
  mlx_exp(&cpu_e, cpu_t, cpu);
  const float* pe = mlx_array_data_float32(e);
  const float* pc = mlx_array_data_float32(cpu_e);
  CHECK(pe && pc);
  int bad = 0;
  for (int i = 0; pe && pc && i < 64 * 48; i++) bad += fabsf(pe[i] - pc[i]) > 2e-6f * fabsf(pc[i]);
  CHECK_EQ_INT(bad, 0);
  /* Now host-valid too: used again on the GPU (its device copy) and on the CPU. */
  mlx_array g2 = mlx_array_new(), c2 = mlx_array_new();
  mlx_multiply(&g2, e, a, gpu);
  mlx_multiply(&c2, cpu_e, a, cpu);
  compare("reuse after host read", g2, c2, 4e-6, 0, 0);
  /* An op case without a GPU kernel (the median of a group of over 4,096 values) on a GPU stream
   * over a device-resident array: the CPU kernel runs on a host copy, so the result equals the
   * CPU stream's. */
  int sl[1] = {5072};
  mlx_array gs = mlx_array_new(), cs = mlx_array_new(), square = mlx_array_new(), cpu_square = mlx_array_new();
  mlx_array long_row = rand_array(sl, 1, MLX_FLOAT32, -1, 1);
  mlx_exp(&square, long_row, gpu); /* device-resident */
  mlx_exp(&cpu_square, long_row, cpu);
  const int axis0[1] = {0};
  CHECK(mlx_median(&gs, square, axis0, 1, false, gpu) == 0);
  CHECK_MSG(!made_on_gpu(gs), "median of 5,072 values: expected the CPU fallback");
  mlx_median(&cs, cpu_square, axis0, 1, false, cpu);
  compare("median fallback on a GPU stream", gs, cs, 0, 0, 1e-6);
  mlx_array_free(long_row);
  /* A GPU kernel consuming the fallback's host output. */
  mlx_array gn = mlx_array_new(), cn = mlx_array_new();
  mlx_negative(&gn, gs, gpu);
  mlx_negative(&cn, cs, cpu);
  compare("GPU op after fallback", gn, cn, 0, 0, 1e-6);
  mlx_array arrays[] = {a, b, t, e, cpu_e, cpu_t, g2, c2, gs, cs, gn, cn, square, cpu_square};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

TEST(memory_counters_and_errors) {
  mlx_synchronize(gpu);
  size_t active0, peak0, cache0, active1, peak1, cache1;
  gpu_backend_memory(0, &active0, &peak0, &cache0);
  int s[1] = {1 << 20};
  mlx_array a = rand_array(s, 1, MLX_FLOAT32, -1, 1), g = mlx_array_new();
  mlx_exp(&g, a, gpu);
  mlx_array_eval(g);
  gpu_backend_memory(0, &active1, &peak1, &cache1);
  /* The uploaded input and the output: 8 MiB more live device memory. */
  CHECK(active1 >= active0 + 8u * (1u << 20));
  CHECK(peak1 >= active1);
  mlx_array_free(g);
  mlx_array_free(a);
  mlx_synchronize(gpu);
  gpu_backend_memory(0, &active1, &peak1, &cache1);
  CHECK_EQ_INT(active1, active0);
  CHECK(cache1 >= 8u * (1u << 20)); /* freed blocks stay cached in the pool */
  /* The public view of the same counters, and its errors. */
  size_t pa, pp, pc;
  CHECK_EQ_INT(mlxc_gpu_memory(0, &pa, &pp, &pc), 0);
  CHECK_EQ_INT(pa, active1);
  CHECK(pp >= peak1 && pc == cache1);
  bool quiet0 = mlxc_set_errors_quiet(true);
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  CHECK(mlxc_gpu_memory(count, &pa, &pp, &pc) != 0);
  CHECK(mlxc_gpu_memory(-1, &pa, &pp, &pc) != 0);
  CHECK(mlxc_gpu_memory(0, NULL, &pp, &pc) != 0);
  size_t prior = 0;
  CHECK(mlxc_gpu_set_memory_limit(NULL, 0, 1) != 0);
  CHECK(mlxc_gpu_set_wired_limit(&prior, count, 0) != 0);
  CHECK(mlxc_gpu_reset_peak_memory(-1) != 0);
  CHECK(mlxc_gpu_clear_cache(count) != 0);
  mlxc_set_errors_quiet(quiet0);
  /* Device info from cudaGetDeviceProperties. */
  mlx_device dev = mlx_device_new_type(MLX_GPU, 0);
  mlx_device_info info = mlx_device_info_new();
  size_t mem = 0, rec = 0;
  CHECK_EQ_INT(mlx_device_info_get(&info, dev), 0);
  CHECK_EQ_INT(mlx_device_info_get_size(&mem, info, "memory_size"), 0);
  CHECK_EQ_INT(mlx_device_info_get_size(&rec, info, "max_recommended_working_set_size"), 0);
  CHECK(mem > ((size_t)1 << 30) && rec > 0 && rec < mem);
  mlx_device_info_free(info);
  mlx_device_free(dev);
  /* An impossible allocation is an error, not an abort. */
  void* p = NULL;
  bool quiet = mlxc_set_errors_quiet(true);
  CHECK(gpu_backend_alloc(0, (size_t)1 << 60, &p) != 0);
  CHECK(p == NULL);
  CHECK(strstr(mlxc_last_error(), "cannot allocate") != NULL);
  mlxc_set_errors_quiet(quiet);
}

/* ---- a decode step of a small Llama-style layer ---- */

typedef struct {
  int vocab, dim, heads, kv_heads, head_dim, hidden, ctx;
  mlx_array embed, norm1, wq, wk, wv, wo, norm2, wgate, wup, wdown, norm_f, kcache, vcache;
} tiny_model;

static mlx_array linear(mlx_array x, mlx_array w, mlx_stream s) {
  mlx_array wt = mlx_array_new(), y = mlx_array_new();
  mlx_transpose(&wt, w, s);
  mlx_matmul(&y, x, wt, s);
  mlx_array_free(wt);
  return y;
}

static void take_into(mlx_array* dst, mlx_array value) {
  mlx_array_free(*dst);
  *dst = value;
}

/* Logits (1, vocab) for `token` at position `pos`; writes the new key/value into copies of the
 * caches (slice_update), attends over pos + 1 cached positions. */
static mlx_array decode_step(const tiny_model* m, int token, int pos, mlx_stream s) {
  int32_t tok = token;
  int one[1] = {1};
  mlx_array ids = mlx_array_new_data(&tok, one, 1, MLX_INT32), h = mlx_array_new(), x = mlx_array_new();
  mlx_take_axis(&h, m->embed, ids, 0, s); /* (1, dim) */
  mlx_fast_rms_norm(&x, h, m->norm1, 1e-5f, s);
  mlx_array q = linear(x, m->wq, s), k = linear(x, m->wk, s), v = linear(x, m->wv, s);
  int qs[4] = {1, 1, m->heads, m->head_dim}, ks[4] = {1, 1, m->kv_heads, m->head_dim}, perm[4] = {0, 2, 1, 3};
  mlx_array t = mlx_array_new();
  mlx_reshape(&t, q, qs, 4, s);
  mlx_transpose_axes(&q, t, perm, 4, s);
  mlx_reshape(&t, k, ks, 4, s);
  mlx_transpose_axes(&k, t, perm, 4, s);
  mlx_reshape(&t, v, ks, 4, s);
  mlx_transpose_axes(&v, t, perm, 4, s);
  mlx_optional_float base = {10000.0f, true};
  mlx_fast_rope(&t, q, m->head_dim, false, base, 1.0f, pos, mlx_array_new(), s);
  take_into(&q, t);
  t = mlx_array_new();
  mlx_fast_rope(&t, k, m->head_dim, false, base, 1.0f, pos, mlx_array_new(), s);
  take_into(&k, t);
  t = mlx_array_new();
  int start[4] = {0, 0, pos, 0}, stop[4] = {1, m->kv_heads, pos + 1, m->head_dim}, step[4] = {1, 1, 1, 1};
  mlx_array kc = mlx_array_new(), vc = mlx_array_new(), kv = mlx_array_new(), vv = mlx_array_new();
  mlx_slice_update(&kc, m->kcache, k, start, 4, stop, 4, step, 4, s);
  mlx_slice_update(&vc, m->vcache, v, start, 4, stop, 4, step, 4, s);
  int s0[4] = {0, 0, 0, 0}, s1[4] = {1, m->kv_heads, pos + 1, m->head_dim};
  mlx_slice(&kv, kc, s0, 4, s1, 4, step, 4, s);
  mlx_slice(&vv, vc, s0, 4, s1, 4, step, 4, s);
  mlx_array att = mlx_array_new();
  mlx_fast_scaled_dot_product_attention(&att, q, kv, vv, 1.0f / sqrtf((float)m->head_dim), "causal",
                                        mlx_array_new(), mlx_array_new(), s);
  mlx_transpose_axes(&t, att, perm, 4, s);
  int flat[2] = {1, m->heads * m->head_dim};
  mlx_reshape(&att, t, flat, 2, s);
  mlx_array o = linear(att, m->wo, s), h2 = mlx_array_new();
  mlx_add(&h2, h, o, s);
  mlx_fast_rms_norm(&x, h2, m->norm2, 1e-5f, s);
  mlx_array gate = linear(x, m->wgate, s), up = linear(x, m->wup, s), sg = mlx_array_new();
  mlx_sigmoid(&sg, gate, s);
  mlx_multiply(&t, gate, sg, s); /* silu */
  mlx_multiply(&sg, t, up, s);
  mlx_array down = linear(sg, m->wdown, s), h3 = mlx_array_new();
  mlx_add(&h3, h2, down, s);
  mlx_fast_rms_norm(&x, h3, m->norm_f, 1e-5f, s);
  mlx_array logits = linear(x, m->embed, s); /* tied embeddings */
  mlx_array arrays[] = {ids, h, x, q, k, v, t, kc, vc, kv, vv, att, o, h2, gate, up, sg, down, h3};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
  return logits;
}

TEST(decode_step_matches_cpu) {
  for (int t = 0; t < 2; t++) {
    mlx_dtype dt = t ? MLX_BFLOAT16 : MLX_FLOAT32;
    tiny_model m = {.vocab = 512, .dim = 256, .heads = 8, .kv_heads = 2, .head_dim = 32, .hidden = 512, .ctx = 64};
    int se[2] = {m.vocab, m.dim}, sn[1] = {m.dim};
    int sq[2] = {m.heads * m.head_dim, m.dim}, skv[2] = {m.kv_heads * m.head_dim, m.dim};
    int so[2] = {m.dim, m.heads * m.head_dim}, sg[2] = {m.hidden, m.dim}, sd[2] = {m.dim, m.hidden};
    int sc[4] = {1, m.kv_heads, m.ctx, m.head_dim};
    double r = 0.08;
    m.embed = rand_array(se, 2, dt, -1, 1);
    m.norm1 = rand_array(sn, 1, dt, 0.8, 1.2);
    m.norm2 = rand_array(sn, 1, dt, 0.8, 1.2);
    m.norm_f = rand_array(sn, 1, dt, 0.8, 1.2);
    m.wq = rand_array(sq, 2, dt, -r, r);
    m.wk = rand_array(skv, 2, dt, -r, r);
    m.wv = rand_array(skv, 2, dt, -r, r);
    m.wo = rand_array(so, 2, dt, -r, r);
    m.wgate = rand_array(sg, 2, dt, -r, r);
    m.wup = rand_array(sg, 2, dt, -r, r);
    m.wdown = rand_array(sd, 2, dt, -r, r);
    m.kcache = rand_array(sc, 4, dt, -1, 1);
    m.vcache = rand_array(sc, 4, dt, -1, 1);
    for (int pos = 0; pos < 40; pos += 13) {
      int token = (int)uniform(0, m.vocab);
      mlx_array g = decode_step(&m, token, pos, gpu), c = decode_step(&m, token, pos, cpu);
      char what[64];
      snprintf(what, sizeof what, "decode step logits %s pos %d", dname(dt), pos);
      compare(what, g, c, 0, 0, t ? 2e-2 : 1e-3);
      mlx_array gi = mlx_array_new(), ci = mlx_array_new();
      mlx_argmax_axis(&gi, g, -1, false, gpu);
      mlx_argmax_axis(&ci, c, -1, false, cpu);
      if (!t) compare("decode step next token f32", gi, ci, 0, 0, 0);
      mlx_array arrays[] = {g, c, gi, ci};
      for (size_t i = 0; i < 4; i++) mlx_array_free(arrays[i]);
    }
    mlx_array all[] = {m.embed, m.norm1, m.wq, m.wk, m.wv, m.wo, m.norm2, m.wgate, m.wup, m.wdown, m.norm_f, m.kcache, m.vcache};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  }
}

/* ---- the LM parity fixtures on the GPU: logits of the CPU run within 1e-3 relative ---- */

TEST(lm_fixtures_on_gpu) {
  static const char* const archs[] = {"llama", "llama3_rope", "mistral", "qwen2", "qwen3",
                                      "qwen3_moe", "phi3", "gemma2", "gemma3_text"};
  for (size_t a = 0; a < sizeof archs / sizeof archs[0]; a++) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/lm/%s", test_source_dir(), archs[a]);
    mlxc_lm_model *mg = NULL, *mc = NULL;
    if (mlxc_lm_load(&mg, dir, gpu) || mlxc_lm_load(&mc, dir, cpu)) {
      CHECK_MSG(0, "%s: load failed: %s", archs[a], mlxc_last_error());
      mlxc_lm_free(mg);
      continue;
    }
    mlx_map_string_to_array ref = mlx_map_string_to_array_new();
    mlx_map_string_to_string meta = mlx_map_string_to_string_new();
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    CHECK(mlx_load_safetensors(&ref, &meta, path, cpu) == 0);
    mlx_array prompt = mlx_array_new(), lg = mlx_array_new(), lc = mlx_array_new();
    CHECK(mlx_map_string_to_array_get(&prompt, ref, "prompt_0") == 0);
    const int32_t* ids = mlx_array_data_int32(prompt);
    size_t n = mlx_array_size(prompt);
    mlxc_lm_session *sg = NULL, *sc = NULL;
    CHECK(mlxc_lm_session_new(&sg, mg) == 0 && mlxc_lm_session_new(&sc, mc) == 0);
    CHECK_MSG(mlxc_lm_forward(sg, ids, n, &lg) == 0, "%s: GPU forward failed: %s", archs[a], mlxc_last_error());
    CHECK(mlxc_lm_forward(sc, ids, n, &lc) == 0);
    /* Then one decode step each (the KV cache path). */
    int32_t next = 7;
    mlx_array dg = mlx_array_new(), dc = mlx_array_new();
    CHECK(mlxc_lm_forward(sg, &next, 1, &dg) == 0);
    CHECK(mlxc_lm_forward(sc, &next, 1, &dc) == 0);
    char what[96];
    snprintf(what, sizeof what, "%s prompt logits GPU vs CPU", archs[a]);
    compare(what, lg, lc, 0, 0, 1e-3);
    snprintf(what, sizeof what, "%s decode logits GPU vs CPU", archs[a]);
    compare(what, dg, dc, 0, 0, 1e-3);
    mlxc_lm_session_free(sg);
    mlxc_lm_session_free(sc);
    mlxc_lm_free(mg);
    mlxc_lm_free(mc);
    mlx_map_string_to_array_free(ref);
    mlx_map_string_to_string_free(meta);
    mlx_array arrays[] = {prompt, lg, lc, dg, dc};
    for (size_t i = 0; i < 5; i++) mlx_array_free(arrays[i]);
  }
}

/* The GPU allocator's controls (mlxc/memory.h, docs/memory.md): peak reset, clearing the
 * cache, and the memory, cache and wired limits, each measured by the counters. The pool is
 * shared with the other tests, so the checks are differences of 64 MiB blocks. */
/* exp(a) on the GPU, evaluated, freed, and the device's work finished: 4 bytes a value of a
 * allocated and freed again. */
static void exp_then_free(mlx_array a) {
  mlx_array g = mlx_array_new();
  CHECK_EQ_INT(mlx_exp(&g, a, gpu), 0);
  CHECK_EQ_INT(mlx_array_eval(g), 0);
  mlx_array_free(g);
  mlx_synchronize(gpu);
}

TEST(memory_limits) {
  const size_t MB = 1u << 20;
  int s[1] = {16 << 20};  /* 64 MiB of float32 */
  size_t active, peak, cache, prior = 0;
  mlx_array a = rand_array(s, 1, MLX_FLOAT32, -1, 1), g = mlx_array_new();
  exp_then_free(a);
  /* Peak reset: the freed output no longer counts. */
  CHECK_EQ_INT(mlxc_gpu_memory(0, &active, &peak, &cache), 0);
  CHECK(peak >= active + 64 * MB && cache >= 64 * MB);
  CHECK_EQ_INT(mlxc_gpu_reset_peak_memory(0), 0);
  size_t a1, p1, c1;
  mlxc_gpu_memory(0, &a1, &p1, &c1);
  CHECK(p1 == a1);
  /* Clearing the cache gives the freed 64 MiB back (to the driver: the pool is trimmed). */
  CHECK_EQ_INT(mlxc_gpu_clear_cache(0), 0);
  mlxc_gpu_memory(0, &a1, &p1, &c1);
  CHECK_MSG(c1 + 64 * MB <= cache, "cache %zu -> %zu after mlxc_gpu_clear_cache", cache, c1);
  /* Wired 0 and cache 0: a freed block goes back to the pool, and the pool hands it to the
   * driver at the next synchronisation. The defaults come back as the priors. */
  CHECK_EQ_INT(mlxc_gpu_set_wired_limit(&prior, 0, 0), 0);
  CHECK(prior == SIZE_MAX);
  CHECK_EQ_INT(mlxc_gpu_set_cache_limit(&prior, 0, 0), 0);
  CHECK(prior == SIZE_MAX);
  mlxc_gpu_memory(0, &a1, &p1, &cache);
  exp_then_free(a);
  mlxc_gpu_memory(0, &a1, &p1, &c1);
  CHECK_MSG(c1 < 64 * MB, "cache %zu -> %zu with cache and wired limits 0", cache, c1);
  /* The default wired limit keeps what the pool held: a freed block stays reserved. */
  CHECK_EQ_INT(mlxc_gpu_set_wired_limit(&prior, 0, SIZE_MAX), 0);
  CHECK(prior == 0);
  mlxc_gpu_memory(0, &a1, &p1, &cache);
  exp_then_free(a);
  mlxc_gpu_memory(0, &a1, &p1, &c1);
  CHECK_MSG(c1 >= 64 * MB, "cache %zu -> %zu with the default wired limit", cache, c1);
  CHECK_EQ_INT(mlxc_gpu_set_cache_limit(&prior, 0, SIZE_MAX), 0);
  CHECK(prior == 0);
  /* A memory limit 32 MiB above what is live: a 64 MiB output fails with a message, and
   * succeeds once the limit is lifted. */
  mlxc_gpu_memory(0, &active, &p1, &c1);
  CHECK_EQ_INT(mlxc_gpu_set_memory_limit(&prior, 0, active + 32 * MB), 0);
  CHECK(prior == 0);
  g = mlx_array_new();
  CHECK_EQ_INT(mlx_exp(&g, a, gpu), 0);
  bool quiet = mlxc_set_errors_quiet(true);
  CHECK(mlx_array_eval(g) != 0);
  mlxc_set_errors_quiet(quiet);
  CHECK_MSG(strstr(mlxc_last_error(), "exceeds the memory limit") != NULL, "%s", mlxc_last_error());
  mlx_array_free(g);
  CHECK_EQ_INT(mlxc_gpu_set_memory_limit(&prior, 0, 0), 0);
  CHECK(prior == active + 32 * MB);
  exp_then_free(a);
  /* mlx_clear_cache empties the GPU's cache too. */
  mlxc_gpu_memory(0, &a1, &p1, &cache);
  CHECK_EQ_INT(mlx_clear_cache(), 0);
  mlxc_gpu_memory(0, &a1, &p1, &c1);
  CHECK_MSG(c1 + 64 * MB <= cache, "cache %zu -> %zu after mlx_clear_cache", cache, c1);
  mlx_array_free(a);
}

/* Without a GPU (CPU-only builds, machines without one) the per-GPU counters are an error. */
TEST(gpu_memory_without_gpu) {
  size_t a = 1, p = 1, c = 1;
  bool quiet = mlxc_set_errors_quiet(true);
  CHECK(mlxc_gpu_memory(0, &a, &p, &c) != 0);
  CHECK(strstr(mlxc_last_error(), "no GPU 0") != NULL);
  CHECK(mlxc_gpu_clear_cache(0) != 0);
  CHECK(mlxc_gpu_reset_peak_memory(0) != 0);
  CHECK(mlxc_gpu_set_wired_limit(&a, 0, 0) != 0);
  CHECK(strstr(mlxc_last_error(), "no GPU 0") != NULL);
  mlxc_set_errors_quiet(quiet);
}

int main(void) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (count == 0) {
    printf("SKIP: no CUDA GPU (test_cuda_ops needs one); only the no-GPU errors are checked\n");
    RUN(gpu_memory_without_gpu);
    return TEST_SUMMARY();
  }
  /* float32 products exact (not TF32) unless a test asks, so float32 compares tightly with the CPU. */
  setenv("MLX_ENABLE_TF32", "0", 1);
  rng_state = (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ull;
  printf("seed %llu\n", (unsigned long long)rng_state);
  cpu = mlx_default_cpu_stream_new();
  gpu = mlx_default_gpu_stream_new();
  RUN(astype_and_copy);
  RUN(reshape_of_strided_views);
  RUN(concatenate_and_slice_update);
  RUN(binary_broadcast_strided);
  RUN(unary_math);
  RUN(matmul_layouts_and_batches);
  RUN(matmul_algorithms_reused_across_lengths);
  RUN(rms_norm);
  RUN(glu_halves);
  RUN(gated_gemv);
  RUN(norm_linear);
  RUN(rope_variants);
  RUN(rope_kv);
  RUN(rope_kv_attention);
  RUN(attention);
  RUN(attention_decode);
  RUN(attention_prefill);
  RUN(layer_norm_and_row_reductions);
  RUN(long_row_reductions);
  RUN(argmax_logsumexp);
  RUN(where_broadcast);
  RUN(quantized_gemv);
  RUN(gemv_weights_written_just_before);
  RUN(dequantize_all_widths);
  RUN(slice_update_donation);
  RUN(softmax_argmax_take);
  RUN(residency_and_fallback);
  RUN(memory_counters_and_errors);
  RUN(memory_limits);
  /* MLXC_CUDA_TESTS_QUICK skips the model-sized tests (for slow runs under compute-sanitizer). */
  if (!getenv("MLXC_CUDA_TESTS_QUICK")) {
    RUN(decode_step_matches_cpu);
    RUN(lm_fixtures_on_gpu);
  }
  return TEST_SUMMARY();
}
