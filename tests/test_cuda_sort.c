/* The sort family's CUDA kernels against the CPU kernels: sort, argsort, partition,
 * argpartition, topk, take_along_axis, put_along_axis and affine quantize, each built on the CPU
 * and on the GPU stream from the same host inputs (fresh random values each run; the seed is
 * printed). Every result must equal the CPU's byte for byte (the CPU's orders are total, its
 * quickselect and quantization deterministic) and must have been made on the GPU. Covers every
 * dtype, NaN/inf/-0 and duplicates, every axis, strided and broadcast inputs, empty arrays, and
 * line lengths 1, 7, 1000, 4097 and 150000. Skips (passing) when no CUDA GPU is present. */
#include <stdint.h>
#include <time.h>

#include "core/array.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

#include "cuda_test_util.h"

static const mlx_dtype all_types[] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16, MLX_FLOAT64, MLX_BOOL,
                                      MLX_INT8,    MLX_UINT8,   MLX_INT16,    MLX_UINT16,  MLX_INT32,
                                      MLX_UINT32,  MLX_INT64,   MLX_UINT64};
static const mlx_dtype float_types[] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16};

static bool is_float(mlx_dtype d) {
  return d == MLX_FLOAT32 || d == MLX_FLOAT16 || d == MLX_BFLOAT16 || d == MLX_FLOAT64;
}

/* Values with many duplicates (integers in [lo, hi)); float dtypes also get NaN, +-inf, -0 and
 * 0 at `special` probability each. Host-resident, built on the CPU. */
static mlx_array dup_array(const int* shape, int nd, mlx_dtype dtype, double lo, double hi, double special) {
  size_t n = 1;
  for (int i = 0; i < nd; i++) n *= (size_t)shape[i];
  float* v = malloc(sizeof(float) * (n ? n : 1));
  const float specials[4] = {NAN, INFINITY, -INFINITY, -0.0f};
  for (size_t i = 0; i < n; i++) {
    double u = uniform(0, 1);
    if (is_float(dtype) && u < 4 * special) v[i] = specials[(int)(u / special) % 4];
    else v[i] = (float)floor(uniform(lo, hi));
  }
  mlx_array f = mlx_array_new_data(v, shape, nd, MLX_FLOAT32), out = mlx_array_new();
  free(v);
  mlx_astype(&out, f, dtype, cpu);
  mlx_array_eval(out);
  mlx_array_free(f);
  return out;
}

/* GPU-stream result vs CPU result: the same dtype, shape and bytes, and made by a GPU kernel or
 * (on_gpu false: a case the GPU declines) by the CPU fallback. */
static void same_bytes_from(const char* what, mlx_array g, mlx_array c, bool on_gpu) {
  CHECK_MSG(mlx_array_size(g) == 0 || made_on_gpu(g) == on_gpu, "%s: %s", what,
            on_gpu ? "not made on the GPU" : "made on the GPU, expected the CPU fallback");
  CHECK_MSG(mlx_array_eval(c) == 0, "%s: CPU evaluation failed", what);
  const core_array *ga = core_ctx(g), *ca = core_ctx(c);
  if (!ga || !ca) return;
  CHECK_MSG(ga->dtype == ca->dtype, "%s: dtype %d vs %d", what, ga->dtype, ca->dtype);
  CHECK_MSG(ga->ndim == ca->ndim, "%s: ndim", what);
  for (int i = 0; i < ga->ndim && i < ca->ndim; i++) CHECK_MSG(ga->shape[i] == ca->shape[i], "%s: dim %d", what, i);
  if (ga->dtype != ca->dtype || ga->size != ca->size) return;
  CHECK_MSG(ga->row_contiguous && ca->row_contiguous, "%s: results not row-contiguous", what);
  size_t es = core_dtype_size(ga->dtype);
  const uint8_t *pg = core_array_ptr(ga), *pc = core_array_ptr(ca);
  int bad = 0;
  for (size_t i = 0; i < ga->size; i++)
    if (memcmp(pg + i * es, pc + i * es, es) && bad++ < 3) {
      uint64_t x = 0, y = 0;
      memcpy(&x, pg + i * es, es);
      memcpy(&y, pc + i * es, es);
      fprintf(stderr, "  %s: element %zu: gpu 0x%llx cpu 0x%llx\n", what, i, (unsigned long long)x,
              (unsigned long long)y);
    }
  CHECK_MSG(bad == 0, "%s: %d mismatching elements of %zu", what, bad, ga->size);
}

static void same_bytes(const char* what, mlx_array g, mlx_array c) { same_bytes_from(what, g, c, true); }

/* sort, argsort, and partition / argpartition at three kth along `axis` of x. */
static void check_sorts(const char* name, mlx_array x, int axis) {
  int ax = axis < 0 ? axis + (int)mlx_array_ndim(x) : axis, n = mlx_array_shape(x)[ax];
  char what[160];
  for (int op = 0; op < 2; op++) {
    mlx_array g = mlx_array_new(), c = mlx_array_new();
    int (*fn)(mlx_array*, mlx_array, int, mlx_stream) = op ? mlx_argsort_axis : mlx_sort_axis;
    CHECK_MSG(fn(&g, x, axis, gpu) == 0, "%s", mlxc_last_error());
    fn(&c, x, axis, cpu);
    snprintf(what, sizeof what, "%s %s axis %d", op ? "argsort" : "sort", name, axis);
    same_bytes(what, g, c);
    mlx_array_free(g);
    mlx_array_free(c);
  }
  const int kths[3] = {0, n / 3, -1};
  for (int k = 0; k < 3 && n > 0; k++)
    for (int op = 0; op < 2; op++) {
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      int (*fn)(mlx_array*, mlx_array, int, int, mlx_stream) = op ? mlx_argpartition_axis : mlx_partition_axis;
      CHECK_MSG(fn(&g, x, kths[k], axis, gpu) == 0, "%s", mlxc_last_error());
      fn(&c, x, kths[k], axis, cpu);
      snprintf(what, sizeof what, "%s %s kth %d axis %d", op ? "argpartition" : "partition", name, kths[k], axis);
      same_bytes_from(what, g, c, n <= 4096); /* longer lines decline (GPU_PARTITION_MAX_LINE) */
      mlx_array_free(g);
      mlx_array_free(c);
    }
}

TEST(sort_every_dtype_and_axis) {
  int shape[3] = {5, 7, 6};
  for (size_t t = 0; t < sizeof all_types / sizeof all_types[0]; t++) {
    mlx_dtype d = all_types[t];
    bool is_unsigned = d == MLX_BOOL || d == MLX_UINT8 || d == MLX_UINT16 || d == MLX_UINT32 || d == MLX_UINT64;
    mlx_array x = dup_array(shape, 3, d, is_unsigned ? 0 : -4, d == MLX_BOOL ? 2 : 4, 0.04);
    char name[32];
    snprintf(name, sizeof name, "dtype %d", (int)d);
    for (int axis = -1; axis < 3; axis++) check_sorts(name, x, axis);
    mlx_array_free(x);
  }
}

/* 64-bit integers at their extremes: uint64 above 2^63 must sort as unsigned. */
TEST(sort_64_bit_extremes) {
  uint64_t u[8] = {0, UINT64_MAX, (1ull << 63) + 5, 7, 1ull << 63, 3, UINT64_MAX - 1, (1ull << 63) - 1};
  int64_t s[8] = {0, INT64_MIN, INT64_MAX, -1, 5, INT64_MIN + 1, -7, 5};
  int shape[1] = {8};
  mlx_array xu = mlx_array_new_data(u, shape, 1, MLX_UINT64), xs = mlx_array_new_data(s, shape, 1, MLX_INT64);
  check_sorts("uint64 extremes", xu, 0);
  check_sorts("int64 extremes", xs, 0);
  mlx_array_free(xu);
  mlx_array_free(xs);
}

/* Line lengths 1, 7, 1000 (one shared-memory tile) and 4097 (global steps), with NaN, inf, -0
 * and many duplicates, in several lines. */
TEST(sort_line_lengths_and_specials) {
  const int lengths[4] = {1, 7, 1000, 4097};
  for (int l = 0; l < 4; l++)
    for (size_t t = 0; t < 3; t++) {
      int shape[2] = {3, lengths[l]};
      mlx_array x = dup_array(shape, 2, float_types[t], -20, 20, 0.05);
      char name[48];
      snprintf(name, sizeof name, "dtype %d length %d", (int)float_types[t], lengths[l]);
      check_sorts(name, x, 1);
      check_sorts(name, x, 0);
      mlx_array_free(x);
    }
  int shape[2] = {2, 4097};
  mlx_array x = dup_array(shape, 2, MLX_INT32, -100000, 100000, 0);
  check_sorts("int32 length 4097", x, -1);
  mlx_array_free(x);
}

/* Transposed, stepped (negative step) and broadcast inputs. */
TEST(sort_strided_inputs) {
  int shape[3] = {6, 9, 300};
  mlx_array x = dup_array(shape, 3, MLX_BFLOAT16, -50, 50, 0.02), xt = mlx_array_new(), sl = mlx_array_new(),
            bc = mlx_array_new();
  mlx_swapaxes(&xt, x, 0, 2, cpu);
  int start[3] = {5, 1, 299}, stop[3] = {-7, 9, 0}, step[3] = {-2, 3, -3};
  mlx_slice(&sl, x, start, 3, stop, 3, step, 3, cpu);
  int rshape[2] = {1, 300}, bshape[2] = {4, 300};
  mlx_array row = dup_array(rshape, 2, MLX_FLOAT32, -10, 10, 0.01);
  mlx_broadcast_to(&bc, row, bshape, 2, cpu);
  for (int axis = 0; axis < 3; axis++) {
    check_sorts("transposed", xt, axis);
    check_sorts("stepped slice", sl, axis);
  }
  check_sorts("broadcast rows", bc, 0);
  check_sorts("broadcast rows", bc, 1);
  mlx_array_free(x);
  mlx_array_free(xt);
  mlx_array_free(sl);
  mlx_array_free(bc);
  mlx_array_free(row);
}

TEST(sort_empty_arrays) {
  int shape[2] = {0, 5};
  mlx_array x = rand_array(shape, 2, MLX_FLOAT32, -1, 1);
  check_sorts("empty", x, 1);
  check_sorts("empty", x, 0);
  mlx_array_free(x);
}

/* A vocabulary row (150000 entries): the top-k / top-p sampling case, along the last axis and
 * along axis 0 of a transposed layout; topk (a partition at -k, then a slice) included. */
TEST(sort_long_lines) {
  int shape[2] = {2, 150000};
  mlx_array x = rand_array(shape, 2, MLX_FLOAT32, -30, 30), d = dup_array(shape, 2, MLX_BFLOAT16, -8, 8, 0.001),
            xt = mlx_array_new();
  mlx_swapaxes(&xt, d, 0, 1, cpu);
  check_sorts("float32 vocabulary rows", x, 1);
  check_sorts("bfloat16 rows with duplicates", d, 1);
  check_sorts("bfloat16 columns", xt, 0);
  /* Radix-sorted lines: integer keys (every bit), float16 keys, ties among many duplicates. */
  mlx_array xi = rand_array(shape, 2, MLX_INT32, -1000, 1000), xh = rand_array(shape, 2, MLX_FLOAT16, -4, 4);
  check_sorts("int32 rows with duplicates", xi, 1);
  check_sorts("float16 rows", xh, 1);
  mlx_array_free(xi);
  mlx_array_free(xh);
  mlx_array g = mlx_array_new(), c = mlx_array_new();
  CHECK_MSG(mlx_topk_axis(&g, x, 50, -1, gpu) == 0, "%s", mlxc_last_error());
  mlx_topk_axis(&c, x, 50, -1, cpu);
  mlx_array gc = mlx_array_new(), cc = mlx_array_new();
  mlx_copy(&gc, g, gpu);  /* topk's result is a slice (a view); its copy is made on the GPU */
  mlx_copy(&cc, c, cpu);
  same_bytes("topk 50 of 150000", gc, cc);
  mlx_array_free(cc);
  mlx_array_free(g);
  mlx_array_free(gc);
  mlx_array_free(c);
  mlx_array_free(x);
  mlx_array_free(d);
  mlx_array_free(xt);
}

/* ---- take_along_axis, put_along_axis ---- */

static mlx_array index_array(const int* shape, int nd, mlx_dtype dtype, int lo, int hi) {
  return rand_array(shape, nd, dtype, lo, hi);
}

TEST(take_along_axis_cases) {
  int shape[3] = {4, 5, 6};
  const mlx_dtype types[5] = {MLX_FLOAT16, MLX_INT64, MLX_BOOL, MLX_UINT8, MLX_FLOAT32};
  const mlx_dtype idx_types[3] = {MLX_INT32, MLX_INT64, MLX_INT16};
  char what[96];
  for (int t = 0; t < 5; t++)
    for (int axis = 0; axis < 3; axis++) {
      mlx_array a = dup_array(shape, 3, types[t], 0, types[t] == MLX_BOOL ? 2 : 50, 0);
      int ishape[3] = {shape[0], shape[1], shape[2]};
      ishape[axis] = 8;  /* more indices than the axis holds, negative ones wrapping */
      mlx_array ind = index_array(ishape, 3, idx_types[axis], -shape[axis], shape[axis]);
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      CHECK_MSG(mlx_take_along_axis(&g, a, ind, axis, gpu) == 0, "%s", mlxc_last_error());
      mlx_take_along_axis(&c, a, ind, axis, cpu);
      snprintf(what, sizeof what, "take_along_axis dtype %d axis %d", (int)types[t], axis);
      same_bytes(what, g, c);
      /* indices broadcast along the other dims (size 1 there), and a transposed input */
      int bshape[3] = {1, 1, 1};
      bshape[axis] = 3;
      mlx_array bi = index_array(bshape, 3, MLX_UINT32, 0, shape[axis]), at = mlx_array_new();
      mlx_array_free(g);
      mlx_array_free(c);
      g = mlx_array_new(), c = mlx_array_new();
      mlx_take_along_axis(&g, a, bi, axis, gpu);
      mlx_take_along_axis(&c, a, bi, axis, cpu);
      snprintf(what, sizeof what, "take_along_axis broadcast indices dtype %d axis %d", (int)types[t], axis);
      same_bytes(what, g, c);
      mlx_transpose_axes(&at, a, (int[]){2, 0, 1}, 3, cpu);
      int tshape[3] = {6, 4, 5};
      tshape[axis] = 2;
      mlx_array ti = index_array(tshape, 3, MLX_INT32, 0, (int)mlx_array_shape(at)[axis]);
      mlx_array_free(g);
      mlx_array_free(c);
      g = mlx_array_new(), c = mlx_array_new();
      mlx_take_along_axis(&g, at, ti, axis, gpu);
      mlx_take_along_axis(&c, at, ti, axis, cpu);
      snprintf(what, sizeof what, "take_along_axis transposed dtype %d axis %d", (int)types[t], axis);
      same_bytes(what, g, c);
      mlx_array_free(g);
      mlx_array_free(c);
      mlx_array_free(a);
      mlx_array_free(ind);
      mlx_array_free(bi);
      mlx_array_free(at);
      mlx_array_free(ti);
    }
}

/* The sampling pattern: argsort on the GPU, then the sorted values gathered by those
 * device-resident indices. */
TEST(take_along_axis_of_argsort) {
  int shape[2] = {3, 150000};
  mlx_array x = rand_array(shape, 2, MLX_BFLOAT16, -20, 20), gi = mlx_array_new(), ci = mlx_array_new(),
            g = mlx_array_new(), c = mlx_array_new();
  mlx_argsort_axis(&gi, x, -1, gpu);
  mlx_argsort_axis(&ci, x, -1, cpu);
  mlx_take_along_axis(&g, x, gi, -1, gpu);
  mlx_take_along_axis(&c, x, ci, -1, cpu);
  same_bytes("take_along_axis of argsort", g, c);
  mlx_array_free(x);
  mlx_array_free(gi);
  mlx_array_free(ci);
  mlx_array_free(g);
  mlx_array_free(c);
}

TEST(along_axis_out_of_range_index) {
  int shape[2] = {2, 3}, ishape[2] = {2, 1};
  mlx_array a = rand_array(shape, 2, MLX_FLOAT32, 0, 1);
  int32_t bad[2] = {1, 3};
  mlx_array ind = mlx_array_new_data(bad, ishape, 2, MLX_INT32), g = mlx_array_new(), p = mlx_array_new();
  bool quiet = mlxc_set_errors_quiet(true);
  mlx_take_along_axis(&g, a, ind, 1, gpu);
  CHECK(mlx_array_eval(g) != 0);
  CHECK(strstr(mlxc_last_error(), "take_along_axis: index 3 is out of bounds for an axis of size 3") != NULL);
  mlx_array v = mlx_array_new_float(1.0f);
  CHECK(mlx_put_along_axis(&p, a, ind, v, 1, gpu) == 0);
  CHECK(mlx_array_eval(p) != 0);
  CHECK(strstr(mlxc_last_error(), "put_along_axis: index 3 is out of bounds") != NULL);
  mlxc_set_errors_quiet(quiet);
  mlx_array_free(v);
  mlx_array_free(a);
  mlx_array_free(ind);
  mlx_array_free(g);
  mlx_array_free(p);
}

TEST(put_along_axis_cases) {
  int shape[3] = {4, 5, 6};
  const mlx_dtype types[4] = {MLX_FLOAT32, MLX_BFLOAT16, MLX_INT8, MLX_UINT64};
  char what[112];
  for (int t = 0; t < 4; t++)
    for (int axis = 0; axis < 3; axis++) {
      mlx_array a = dup_array(shape, 3, types[t], 0, 100, 0);
      int ishape[3] = {shape[0], shape[1], shape[2]};
      ishape[axis] = 9;  /* duplicates: the last write in row-major order wins */
      mlx_array ind = index_array(ishape, 3, MLX_INT64, -shape[axis], shape[axis]);
      mlx_array vals = dup_array(ishape, 3, MLX_FLOAT32, -1000, 1000, 0);  /* cast to a's dtype */
      mlx_array scalar = mlx_array_new_float(7.5f);
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      CHECK_MSG(mlx_put_along_axis(&g, a, ind, vals, axis, gpu) == 0, "%s", mlxc_last_error());
      mlx_put_along_axis(&c, a, ind, vals, axis, cpu);
      snprintf(what, sizeof what, "put_along_axis dtype %d axis %d", (int)types[t], axis);
      same_bytes(what, g, c);
      mlx_array_free(g);
      mlx_array_free(c);
      g = mlx_array_new(), c = mlx_array_new();
      mlx_put_along_axis(&g, a, ind, scalar, axis, gpu);
      mlx_put_along_axis(&c, a, ind, scalar, axis, cpu);
      snprintf(what, sizeof what, "put_along_axis scalar value dtype %d axis %d", (int)types[t], axis);
      same_bytes(what, g, c);
      /* a of size 1 along another dim: every line of the indices writes into the same line */
      int oshape[3] = {shape[0], shape[1], shape[2]};
      int other = (axis + 1) % 3;
      oshape[other] = 1;
      mlx_array a1 = dup_array(oshape, 3, types[t], 0, 100, 0), at = mlx_array_new();
      mlx_array_free(g);
      mlx_array_free(c);
      g = mlx_array_new(), c = mlx_array_new();
      mlx_put_along_axis(&g, a1, ind, vals, axis, gpu);
      mlx_put_along_axis(&c, a1, ind, vals, axis, cpu);
      snprintf(what, sizeof what, "put_along_axis into a broadcast line dtype %d axis %d", (int)types[t], axis);
      same_bytes(what, g, c);
      /* a transposed input (the output is row-major) */
      mlx_swapaxes(&at, a, 0, 2, cpu);
      int tshape[3] = {6, 5, 4};
      tshape[axis] = 3;
      mlx_array ti = index_array(tshape, 3, MLX_UINT8, 0, (int)mlx_array_shape(at)[axis]);
      mlx_array_free(g);
      mlx_array_free(c);
      g = mlx_array_new(), c = mlx_array_new();
      mlx_put_along_axis(&g, at, ti, scalar, axis, gpu);
      mlx_put_along_axis(&c, at, ti, scalar, axis, cpu);
      snprintf(what, sizeof what, "put_along_axis transposed dtype %d axis %d", (int)types[t], axis);
      same_bytes(what, g, c);
      mlx_array_free(g);
      mlx_array_free(c);
      mlx_array_free(a);
      mlx_array_free(a1);
      mlx_array_free(at);
      mlx_array_free(ind);
      mlx_array_free(ti);
      mlx_array_free(vals);
      mlx_array_free(scalar);
    }
}

/* ---- quantize ---- */

static void check_quantize(const char* name, mlx_array w, int group, int bits) {
  mlx_vector_array qg = mlx_vector_array_new(), qc = mlx_vector_array_new();
  mlx_optional_int gs = {group, true}, nb = {bits, true};
  CHECK_MSG(mlx_quantize(&qg, w, gs, nb, "affine", mlx_array_new(), gpu) == 0, "%s", mlxc_last_error());
  CHECK(mlx_quantize(&qc, w, gs, nb, "affine", mlx_array_new(), cpu) == 0);
  const char* parts[3] = {"packed", "scales", "biases"};
  for (size_t i = 0; i < 3; i++) {
    mlx_array g = mlx_array_new(), c = mlx_array_new();
    mlx_vector_array_get(&g, qg, i);
    mlx_vector_array_get(&c, qc, i);
    char what[128];
    snprintf(what, sizeof what, "quantize %s group %d bits %d: %s", name, group, bits, parts[i]);
    same_bytes(what, g, c);
    mlx_array_free(g);
    mlx_array_free(c);
  }
  mlx_vector_array_free(qg);
  mlx_vector_array_free(qc);
}

/* Rows of 256 values: random, then groups made constant, zero, of mixed-sign zeros (the first
 * negative), of one large value among small ones, with an infinity, and all NaN. */
static mlx_array quantize_input(mlx_dtype dtype, int group) {
  const int rows = 6, K = 2 * 128;
  float* v = malloc(sizeof(float) * rows * K);
  for (int i = 0; i < rows * K; i++) v[i] = (float)uniform(-2, 3);
  for (int i = 0; i < group; i++) {
    v[K + i] = 0.75f;                          /* row 1: a constant group */
    v[2 * K + i] = 0;                          /* row 2: zeros */
    v[3 * K + i] = i % 3 ? 0.0f : -0.0f;       /* row 3: zeros of both signs */
    v[4 * K + i] = i == 5 ? 300.0f : 0.001f * i; /* row 4: one large value */
    v[5 * K + i] = i == 2 ? INFINITY : -1.0f;  /* row 5: an infinity */
  }
  for (int i = group; i < 2 * group; i++) v[5 * K + i] = NAN; /* row 5: a group of NaNs */
  int shape[2] = {rows, K};
  mlx_array f = mlx_array_new_data(v, shape, 2, MLX_FLOAT32), out = mlx_array_new();
  free(v);
  mlx_astype(&out, f, dtype, cpu);
  mlx_array_eval(out);
  mlx_array_free(f);
  return out;
}

TEST(quantize_affine_all_widths) {
  const int groups[3] = {32, 64, 128}, bits[7] = {1, 2, 3, 4, 5, 6, 8};
  for (int t = 0; t < 3; t++)
    for (int gi = 0; gi < 3; gi++) {
      mlx_array w = quantize_input(float_types[t], groups[gi]);
      for (int b = 0; b < 7; b++) {
        char name[32];
        snprintf(name, sizeof name, "dtype %d", (int)float_types[t]);
        check_quantize(name, w, groups[gi], bits[b]);
      }
      mlx_array_free(w);
    }
}

TEST(quantize_strided_and_batched) {
  int shape[3] = {3, 128, 64};
  mlx_array w = rand_array(shape, 3, MLX_BFLOAT16, -1, 1), wt = mlx_array_new();
  mlx_swapaxes(&wt, w, 1, 2, cpu);  /* (3, 64, 128), rows strided */
  check_quantize("transposed bf16", wt, 64, 4);
  check_quantize("transposed bf16", wt, 32, 3);
  check_quantize("batched bf16", w, 64, 8);
  mlx_array_free(w);
  mlx_array_free(wt);
}

int main(void) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (count == 0) {
    printf("SKIP: no CUDA GPU (test_cuda_sort needs one)\n");
    return TEST_SUMMARY();
  }
  rng_state = (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ull;
  printf("seed %llu\n", (unsigned long long)rng_state);
  cpu = mlx_default_cpu_stream_new();
  gpu = mlx_default_gpu_stream_new();
  RUN(sort_every_dtype_and_axis);
  RUN(sort_64_bit_extremes);
  RUN(sort_line_lengths_and_specials);
  RUN(sort_strided_inputs);
  RUN(sort_empty_arrays);
  RUN(sort_long_lines);
  RUN(take_along_axis_cases);
  RUN(take_along_axis_of_argsort);
  RUN(along_axis_out_of_range_index);
  RUN(put_along_axis_cases);
  RUN(quantize_affine_all_widths);
  RUN(quantize_strided_and_batched);
  mlx_stream_free(cpu);
  mlx_stream_free(gpu);
  return TEST_SUMMARY();
}
