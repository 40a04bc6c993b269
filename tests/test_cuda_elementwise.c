/* The GPU kernels of the integer, predicate, creation and layout primitives against the CPU
 * kernels: floor_divide, remainder, divmod, bitwise ops, shifts, nan_equal, logical_not,
 * bitwise_invert, the isnan family, nan_to_num, arange, linspace, eye/tri/tril/triu, windows,
 * pad, diagonal, as_strided and view. Each graph is built on the CPU and on the GPU stream from
 * the same host inputs; results must be identical (bit for bit, NaN matching any NaN) and made
 * by a GPU kernel (no silent CPU fallback). Skips (passing) when no CUDA GPU is present. */
#include <math.h>
#include <stdint.h>
#include <time.h>

#include "core/array.h"
#include "core/device.h"
#include "mlx/c/mlx.h"
#include "ops/binary.h"
#include "ops/primitives.h"
#include "test_util.h"

#include "cuda_test_util.h"

static const mlx_dtype int_types[] = {MLX_BOOL, MLX_UINT8, MLX_UINT16, MLX_UINT32, MLX_UINT64,
                                      MLX_INT8, MLX_INT16, MLX_INT32, MLX_INT64};
static const mlx_dtype float_types[] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16, MLX_FLOAT64};
#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

static bool is_float(mlx_dtype d) {
  return d == MLX_FLOAT32 || d == MLX_FLOAT16 || d == MLX_BFLOAT16 || d == MLX_FLOAT64;
}

/* Whether the element at p (of a float dtype) is a NaN, read from its bits. */
static bool nan_bits(const unsigned char* p, mlx_dtype d) {
  uint64_t v = 0;
  memcpy(&v, p, core_dtype_size(d));
  switch (d) {
    case MLX_FLOAT16: return (v & 0x7c00u) == 0x7c00u && (v & 0x3ffu);
    case MLX_BFLOAT16: return (v & 0x7f80u) == 0x7f80u && (v & 0x7fu);
    case MLX_FLOAT32: return (v & 0x7f800000u) == 0x7f800000u && (v & 0x7fffffu);
    default: return (v & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (v & 0xfffffffffffffull);
  }
}

/* g (the GPU's) and c (the CPU's) equal bit for bit, any NaN matching any NaN, and g made by a
 * GPU kernel. Both are read through row-major copies made on the CPU (empty ones as they are). */
static void same(const char* what, mlx_array g, mlx_array c) {
  CHECK_MSG(made_on_gpu(g), "%s: not made by a GPU kernel", what);
  bool empty = mlx_array_size(g) == 0 && mlx_array_eval(c) == 0;
  mlx_array gc = mlx_array_new(), cc = mlx_array_new();
  if (empty) {
    mlx_array_set(&gc, g);
    mlx_array_set(&cc, c);
  } else {
    CHECK_MSG(mlx_copy(&gc, g, cpu) == 0 && mlx_copy(&cc, c, cpu) == 0 && mlx_array_eval(gc) == 0 &&
                  mlx_array_eval(cc) == 0,
              "%s: could not evaluate", what);
  }
  const core_array *a = core_ctx(gc), *b = core_ctx(cc);
  CHECK_MSG(a->dtype == b->dtype, "%s: dtype %d vs %d", what, a->dtype, b->dtype);
  CHECK_MSG(a->ndim == b->ndim, "%s: ndim %d vs %d", what, a->ndim, b->ndim);
  bool shapes = a->dtype == b->dtype && a->ndim == b->ndim && a->size == b->size;
  for (int i = 0; shapes && i < a->ndim; i++) shapes = a->shape[i] == b->shape[i];
  CHECK_MSG(shapes, "%s: shapes differ", what);
  if (shapes && a->size) {
    size_t es = core_dtype_size(a->dtype);
    const unsigned char *pa = core_array_ptr(a), *pb = core_array_ptr(b);
    int bad = 0;
    for (size_t i = 0; i < a->size; i++) {
      const unsigned char *x = pa + i * es, *y = pb + i * es;
      if (!memcmp(x, y, es) || (is_float(a->dtype) && nan_bits(x, a->dtype) && nan_bits(y, a->dtype))) continue;
      if (bad++ < 3) {
        uint64_t vx = 0, vy = 0;
        memcpy(&vx, x, es);
        memcpy(&vy, y, es);
        fprintf(stderr, "  %s: element %zu: gpu bits %llx cpu bits %llx\n", what, i, (unsigned long long)vx,
                (unsigned long long)vy);
      }
    }
    CHECK_MSG(bad == 0, "%s: %d of %zu elements differ", what, bad, a->size);
  }
  mlx_array_free(gc);
  mlx_array_free(cc);
}

/* A host array of int64 values converted (wrapping) to dtype on the CPU. */
static mlx_array ints_as(const int64_t* v, int n, mlx_dtype dtype) {
  mlx_array a = mlx_array_new_data(v, &n, 1, MLX_INT64), out = mlx_array_new();
  mlx_astype(&out, a, dtype, cpu);
  mlx_array_eval(out);
  mlx_array_free(a);
  return out;
}

static mlx_array doubles_as(const double* v, int n, mlx_dtype dtype) {
  mlx_array a = mlx_array_new_data(v, &n, 1, MLX_FLOAT64), out = mlx_array_new();
  mlx_astype(&out, a, dtype, cpu);
  mlx_array_eval(out);
  mlx_array_free(a);
  return out;
}

/* x (n) reshaped to (n, 1) and y (m) to (1, m): every pair by broadcasting. */
static void as_column_and_row(mlx_array* x, mlx_array* y) {
  int nx = (int)mlx_array_size(*x), ny = (int)mlx_array_size(*y);
  int sx[2] = {nx, 1}, sy[2] = {1, ny};
  mlx_array a = mlx_array_new(), b = mlx_array_new();
  mlx_reshape(&a, *x, sx, 2, cpu);
  mlx_reshape(&b, *y, sy, 2, cpu);
  mlx_array_free(*x);
  mlx_array_free(*y);
  *x = a;
  *y = b;
}

static const int64_t int_edges[] = {INT64_MIN, INT64_MIN + 1, -4294967296LL, INT32_MIN, -65536, -32768, -129, -128,
                                    -127, -64, -8, -7, -3, -2, -1, 0, 1, 2, 3, 5, 7, 8, 31, 32, 33, 63, 64, 65,
                                    127, 128, 255, 256, 32767, 65535, INT32_MAX, 4294967295LL, INT64_MAX - 1,
                                    INT64_MAX};
static const double float_edges[] = {-INFINITY, -1e30, -7.25, -5.5, -3, -2, -1, -0.5, -1e-30, -0.0, 0.0, 1e-30,
                                     0.5, 1, 2, 3, 4.75, 7, 1e30, INFINITY, NAN};

typedef int (*binary_fn)(mlx_array*, const mlx_array, const mlx_array, const mlx_stream);
typedef struct {
  const char* name;
  binary_fn fn;
  bool floats;
} binary_case;
static const binary_case binary_cases[] = {
    {"floor_divide", mlx_floor_divide, true}, {"remainder", mlx_remainder, true},
    {"bitwise_and", mlx_bitwise_and, false},  {"bitwise_or", mlx_bitwise_or, false},
    {"bitwise_xor", mlx_bitwise_xor, false},  {"left_shift", mlx_left_shift, false},
    {"right_shift", mlx_right_shift, false},
};

/* Every pair of edge values (zero divisors, INT_MIN / -1, shifts by negative and too-large
 * amounts, signed zeros, infinities, NaN) in every dtype the op takes. */
TEST(binary_integer_ops_edge_values) {
  for (int o = 0; o < COUNT(binary_cases); o++) {
    const binary_case* bc = &binary_cases[o];
    for (int t = 0; t < COUNT(int_types) + COUNT(float_types); t++) {
      bool fl = t >= COUNT(int_types);
      if (fl && !bc->floats) continue;
      mlx_dtype d = fl ? float_types[t - COUNT(int_types)] : int_types[t];
      int n = fl ? COUNT(float_edges) : COUNT(int_edges);
      mlx_array x = fl ? doubles_as(float_edges, n, d) : ints_as(int_edges, n, d);
      mlx_array y = fl ? doubles_as(float_edges, n, d) : ints_as(int_edges, n, d);
      as_column_and_row(&x, &y);
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      char what[96];
      snprintf(what, sizeof what, "%s %s edge pairs", bc->name, core_dtype_name(d));
      CHECK_MSG(bc->fn(&g, x, y, gpu) == 0 && bc->fn(&c, x, y, cpu) == 0, "%s: op failed", what);
      same(what, g, c);
      mlx_array_free(g);
      mlx_array_free(c);
      mlx_array_free(x);
      mlx_array_free(y);
    }
  }
}

/* Random operands: one transposed, the other broadcast along a middle axis; and empty arrays. */
TEST(binary_integer_ops_strided_and_broadcast) {
  int sa[3] = {6, 5, 4}, sb[3] = {4, 1, 6}, perm[3] = {2, 1, 0}, se[2] = {0, 3};
  const mlx_dtype types[] = {MLX_INT8, MLX_UINT16, MLX_INT32, MLX_UINT32, MLX_INT64, MLX_FLOAT32, MLX_BFLOAT16};
  for (int o = 0; o < COUNT(binary_cases); o++) {
    for (int t = 0; t < COUNT(types); t++) {
      if (is_float(types[t]) && !binary_cases[o].floats) continue;
      bool shift = o >= 5;
      mlx_array a = rand_array(sa, 3, types[t], -100, 100), b = rand_array(sb, 3, types[t], shift ? -2 : -9, shift ? 12 : 9);
      mlx_array at = mlx_array_new(), g = mlx_array_new(), c = mlx_array_new();
      mlx_transpose_axes(&at, a, perm, 3, cpu); /* (4, 5, 6) strided */
      char what[96];
      snprintf(what, sizeof what, "%s %s transposed x broadcast", binary_cases[o].name, core_dtype_name(types[t]));
      CHECK_MSG(binary_cases[o].fn(&g, at, b, gpu) == 0 && binary_cases[o].fn(&c, at, b, cpu) == 0, "%s", what);
      same(what, g, c);
      mlx_array ea = rand_array(se, 2, types[t], 1, 5), ge = mlx_array_new(), ce = mlx_array_new();
      snprintf(what, sizeof what, "%s %s empty", binary_cases[o].name, core_dtype_name(types[t]));
      CHECK_MSG(binary_cases[o].fn(&ge, ea, ea, gpu) == 0 && binary_cases[o].fn(&ce, ea, ea, cpu) == 0, "%s", what);
      same(what, ge, ce);
      mlx_array_free(ea);
      mlx_array_free(ge);
      mlx_array_free(ce);
      mlx_array_free(a);
      mlx_array_free(b);
      mlx_array_free(at);
      mlx_array_free(g);
      mlx_array_free(c);
    }
  }
}

TEST(divmod_both_outputs) {
  const mlx_dtype types[] = {MLX_INT8, MLX_INT64, MLX_UINT32, MLX_FLOAT32, MLX_FLOAT16, MLX_FLOAT64};
  for (int t = 0; t < COUNT(types); t++) {
    bool fl = is_float(types[t]);
    int n = fl ? COUNT(float_edges) : COUNT(int_edges);
    mlx_array x = fl ? doubles_as(float_edges, n, types[t]) : ints_as(int_edges, n, types[t]);
    mlx_array y = fl ? doubles_as(float_edges, n, types[t]) : ints_as(int_edges, n, types[t]);
    as_column_and_row(&x, &y);
    mlx_vector_array g = mlx_vector_array_new(), c = mlx_vector_array_new();
    CHECK(mlx_divmod(&g, x, y, gpu) == 0 && mlx_divmod(&c, x, y, cpu) == 0);
    for (int k = 0; k < 2; k++) {
      mlx_array gk = mlx_array_new(), ck = mlx_array_new();
      mlx_vector_array_get(&gk, g, k);
      mlx_vector_array_get(&ck, c, k);
      char what[64];
      snprintf(what, sizeof what, "divmod %s output %d", core_dtype_name(types[t]), k);
      same(what, gk, ck);
      mlx_array_free(gk);
      mlx_array_free(ck);
    }
    mlx_vector_array_free(g);
    mlx_vector_array_free(c);
    mlx_array_free(x);
    mlx_array_free(y);
  }
}

/* nan_equal is what array_equal(equal_nan) builds before its reduction; built directly here so
 * that the node itself runs on the GPU. */
TEST(nan_equal_floats) {
  for (int t = 0; t < COUNT(float_types); t++) {
    int n = COUNT(float_edges);
    mlx_array x = doubles_as(float_edges, n, float_types[t]), y = doubles_as(float_edges, n, float_types[t]);
    as_column_and_row(&x, &y);
    core_array* g = ops_binary(&prim_nan_equal, core_ctx(x), core_ctx(y), float_types[t], MLX_BOOL,
                               core_stream_resolve(gpu));
    core_array* c = ops_binary(&prim_nan_equal, core_ctx(x), core_ctx(y), float_types[t], MLX_BOOL,
                               core_stream_resolve(cpu));
    CHECK(g && c);
    if (g && c) same("nan_equal", core_handle(g), core_handle(c));
    if (g) core_array_release(g);
    if (c) core_array_release(c);
    mlx_array_free(x);
    mlx_array_free(y);
  }
}

typedef int (*unary_fn)(mlx_array*, const mlx_array, const mlx_stream);

static int nan_to_num_default(mlx_array* r, const mlx_array a, const mlx_stream s) {
  return mlx_nan_to_num(r, a, 0.0f, (mlx_optional_float){0, false}, (mlx_optional_float){0, false}, s);
}
static int nan_to_num_given(mlx_array* r, const mlx_array a, const mlx_stream s) {
  return mlx_nan_to_num(r, a, -2.5f, (mlx_optional_float){1e20f, true}, (mlx_optional_float){-0.1f, true}, s);
}

/* Every dtype, edge values and a transposed (strided) input. */
TEST(unary_predicates_and_nan_to_num) {
  const struct {
    const char* name;
    unary_fn fn;
    int kinds; /* 1 integers, 2 floats, 3 both */
  } cases[] = {
      {"logical_not", mlx_logical_not, 3}, {"bitwise_invert", mlx_bitwise_invert, 1}, {"isnan", mlx_isnan, 3},
      {"isinf", mlx_isinf, 3},             {"isfinite", mlx_isfinite, 3},             {"isposinf", mlx_isposinf, 3},
      {"isneginf", mlx_isneginf, 3},       {"nan_to_num", nan_to_num_default, 2},     {"nan_to_num(-2.5, 1e20, -0.1)", nan_to_num_given, 2},
  };
  for (int o = 0; o < COUNT(cases); o++) {
    for (int t = 0; t < COUNT(int_types) + COUNT(float_types); t++) {
      bool fl = t >= COUNT(int_types);
      if (!(cases[o].kinds & (fl ? 2 : 1))) continue;
      mlx_dtype d = fl ? float_types[t - COUNT(int_types)] : int_types[t];
      int n = fl ? COUNT(float_edges) : COUNT(int_edges);
      mlx_array x = fl ? doubles_as(float_edges, n, d) : ints_as(int_edges, n, d);
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      char what[96];
      snprintf(what, sizeof what, "%s %s edges", cases[o].name, core_dtype_name(d));
      CHECK_MSG(cases[o].fn(&g, x, gpu) == 0 && cases[o].fn(&c, x, cpu) == 0, "%s", what);
      same(what, g, c);
      int shape[3] = {3, 4, 5};
      mlx_array r = rand_array(shape, 3, d, -50, 50), rt = mlx_array_new(), gt = mlx_array_new(), ct = mlx_array_new();
      mlx_swapaxes(&rt, r, 0, 2, cpu);
      snprintf(what, sizeof what, "%s %s transposed", cases[o].name, core_dtype_name(d));
      CHECK_MSG(cases[o].fn(&gt, rt, gpu) == 0 && cases[o].fn(&ct, rt, cpu) == 0, "%s", what);
      same(what, gt, ct);
      mlx_array_free(r);
      mlx_array_free(rt);
      mlx_array_free(gt);
      mlx_array_free(ct);
      mlx_array_free(g);
      mlx_array_free(c);
      mlx_array_free(x);
    }
  }
}

/* ---- creation ---- */

static const mlx_dtype creation_types[] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16, MLX_FLOAT64, MLX_INT8,
                                           MLX_UINT8,   MLX_INT16,   MLX_UINT16,   MLX_INT32,   MLX_UINT32,
                                           MLX_INT64,   MLX_UINT64};

/* Steps that are not exact in binary (0.1, 1/3), large offsets, negative steps, saturating
 * integer conversions. */
TEST(arange_matches_long_double) {
  const double ranges[][3] = {{0, 10, 1},        {0.5, 7.3, 0.1},     {-3, 3, 0.3},     {1e8, 1e8 + 100, 0.7},
                              {0, 1, 1.0 / 3},   {10, -5, -0.7},      {-300, 300, 7.1}, {0.1, 5000.1, 0.1},
                              {1e-3, 2e-3, 1e-5}, {2, 2, 1},          {16777210, 16777230, 0.5}};
  for (int r = 0; r < COUNT(ranges); r++) {
    for (int t = 0; t < COUNT(creation_types); t++) {
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      char what[96];
      snprintf(what, sizeof what, "arange(%g, %g, %g) %s", ranges[r][0], ranges[r][1], ranges[r][2],
               core_dtype_name(creation_types[t]));
      CHECK_MSG(mlx_arange(&g, ranges[r][0], ranges[r][1], ranges[r][2], creation_types[t], gpu) == 0 &&
                    mlx_arange(&c, ranges[r][0], ranges[r][1], ranges[r][2], creation_types[t], cpu) == 0,
                "%s", what);
      same(what, g, c);
      mlx_array_free(g);
      mlx_array_free(c);
    }
  }
}

TEST(linspace_matches_long_double) {
  const struct {
    double start, stop;
    int num;
  } cases[] = {{0, 1, 11}, {-3.5, 2.25, 100}, {0, 10, 11}, {1e-3, 1e3, 1000}, {0, 1, 1}, {0, 1, 0},
               {5, -5, 7}, {-300, 300, 61}, {0.1, 0.7, 13}, {1e8, 1e8 + 1, 3001}};
  for (int k = 0; k < COUNT(cases); k++) {
    for (int t = 0; t < COUNT(creation_types); t++) {
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      char what[96];
      snprintf(what, sizeof what, "linspace(%g, %g, %d) %s", cases[k].start, cases[k].stop, cases[k].num,
               core_dtype_name(creation_types[t]));
      CHECK_MSG(mlx_linspace(&g, cases[k].start, cases[k].stop, cases[k].num, creation_types[t], gpu) == 0 &&
                    mlx_linspace(&c, cases[k].start, cases[k].stop, cases[k].num, creation_types[t], cpu) == 0,
                "%s", what);
      same(what, g, c);
      mlx_array_free(g);
      mlx_array_free(c);
    }
  }
}

TEST(triangles_every_diagonal) {
  const mlx_dtype types[] = {MLX_FLOAT32, MLX_BOOL, MLX_INT32, MLX_FLOAT16, MLX_FLOAT64, MLX_UINT8, MLX_BFLOAT16};
  for (int t = 0; t < COUNT(types); t++) {
    for (int k = -6; k <= 8; k++) {
      char what[96];
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      snprintf(what, sizeof what, "eye(5, 7, %d) %s", k, core_dtype_name(types[t]));
      CHECK(mlx_eye(&g, 5, 7, k, types[t], gpu) == 0 && mlx_eye(&c, 5, 7, k, types[t], cpu) == 0);
      same(what, g, c);
      mlx_array_free(g);
      mlx_array_free(c);
      g = mlx_array_new(), c = mlx_array_new();
      snprintf(what, sizeof what, "tri(6, 4, %d) %s", k, core_dtype_name(types[t]));
      CHECK(mlx_tri(&g, 6, 4, k, types[t], gpu) == 0 && mlx_tri(&c, 6, 4, k, types[t], cpu) == 0);
      same(what, g, c);
      mlx_array_free(g);
      mlx_array_free(c);
      /* tril/triu of a transposed batch (2, 5, 6) */
      int shape[3] = {6, 5, 2}, perm[3] = {2, 1, 0};
      mlx_array x = rand_array(shape, 3, types[t], -9, 9), xt = mlx_array_new();
      mlx_transpose_axes(&xt, x, perm, 3, cpu);
      for (int upper = 0; upper < 2; upper++) {
        g = mlx_array_new(), c = mlx_array_new();
        snprintf(what, sizeof what, "%s(k=%d) %s transposed", upper ? "triu" : "tril", k, core_dtype_name(types[t]));
        int (*fn)(mlx_array*, const mlx_array, int, const mlx_stream) = upper ? mlx_triu : mlx_tril;
        CHECK(fn(&g, xt, k, gpu) == 0 && fn(&c, xt, k, cpu) == 0);
        same(what, g, c);
        mlx_array_free(g);
        mlx_array_free(c);
      }
      mlx_array_free(x);
      mlx_array_free(xt);
    }
  }
  mlx_array g = mlx_array_new(), c = mlx_array_new();
  CHECK(mlx_eye(&g, 0, 3, 0, MLX_FLOAT32, gpu) == 0 && mlx_eye(&c, 0, 3, 0, MLX_FLOAT32, cpu) == 0);
  same("eye(0, 3)", g, c);
  mlx_array_free(g);
  mlx_array_free(c);
}

TEST(windows_all_lengths) {
  int (*fns[4])(mlx_array*, int, const mlx_stream) = {mlx_hamming, mlx_hanning, mlx_bartlett, mlx_blackman};
  const char* names[4] = {"hamming", "hanning", "bartlett", "blackman"};
  const int lengths[] = {0, 1, 2, 3, 7, 100, 1001, 4096};
  for (int w = 0; w < 4; w++) {
    for (int m = 0; m < COUNT(lengths); m++) {
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      char what[64];
      snprintf(what, sizeof what, "%s(%d)", names[w], lengths[m]);
      CHECK_MSG(fns[w](&g, lengths[m], gpu) == 0 && fns[w](&c, lengths[m], cpu) == 0, "%s", what);
      same(what, g, c);
      mlx_array_free(g);
      mlx_array_free(c);
    }
  }
  /* numpy's hamming(5) and blackman(5), by hand */
  const float hamming5[5] = {0.08f, 0.54f, 1.0f, 0.54f, 0.08f}, blackman5[5] = {0.0f, 0.34f, 1.0f, 0.34f, 0.0f};
  int five = 5;
  mlx_array eh = mlx_array_new_data(hamming5, &five, 1, MLX_FLOAT32), eb = mlx_array_new_data(blackman5, &five, 1, MLX_FLOAT32);
  mlx_array gh = mlx_array_new(), gb = mlx_array_new();
  CHECK(mlx_hamming(&gh, 5, gpu) == 0 && mlx_blackman(&gb, 5, gpu) == 0);
  compare("hamming(5) by hand", gh, eh, 1e-6, 1e-7, 0);
  compare("blackman(5) by hand", gb, eb, 1e-6, 1e-7, 0);
  mlx_array_free(eh);
  mlx_array_free(eb);
  mlx_array_free(gh);
  mlx_array_free(gb);
}

/* ---- layout ---- */

TEST(pad_constant_and_edge) {
  const mlx_dtype types[] = {MLX_UINT8, MLX_FLOAT16, MLX_FLOAT32, MLX_INT64, MLX_BOOL};
  int shape[3] = {4, 3, 5}, perm[3] = {1, 2, 0}, axes[3] = {0, 1, 2};
  int low[3] = {2, 0, 1}, high[3] = {1, 3, 0};
  for (int t = 0; t < COUNT(types); t++) {
    mlx_array x = rand_array(shape, 3, types[t], -20, 20), xt = mlx_array_new();
    mlx_transpose_axes(&xt, x, perm, 3, cpu); /* (3, 5, 4) strided */
    mlx_array value = mlx_array_new_float(7.0f);
    for (int edge = 0; edge < 2; edge++) {
      mlx_array g = mlx_array_new(), c = mlx_array_new();
      char what[64];
      snprintf(what, sizeof what, "pad %s %s", edge ? "edge" : "constant", core_dtype_name(types[t]));
      const char* mode = edge ? "edge" : "constant";
      CHECK_MSG(mlx_pad(&g, xt, axes, 3, low, 3, high, 3, value, mode, gpu) == 0 &&
                    mlx_pad(&c, xt, axes, 3, low, 3, high, 3, value, mode, cpu) == 0,
                "%s", what);
      same(what, g, c);
      mlx_array_free(g);
      mlx_array_free(c);
    }
    mlx_array_free(value);
    mlx_array_free(x);
    mlx_array_free(xt);
  }
  /* an empty input padded with the constant */
  int se[2] = {0, 3}, ax[1] = {0}, lo[1] = {2}, hi[1] = {1};
  mlx_array e = rand_array(se, 2, MLX_FLOAT32, 0, 1), v = mlx_array_new_float(-1.5f);
  mlx_array g = mlx_array_new(), c = mlx_array_new();
  CHECK(mlx_pad(&g, e, ax, 1, lo, 1, hi, 1, v, "constant", gpu) == 0 &&
        mlx_pad(&c, e, ax, 1, lo, 1, hi, 1, v, "constant", cpu) == 0);
  same("pad of an empty array", g, c);
  mlx_array_free(e);
  mlx_array_free(v);
  mlx_array_free(g);
  mlx_array_free(c);
}

/* An array made on the GPU (device-only), so that views of it stay device-only. */
static mlx_array on_gpu(mlx_array host) {
  mlx_array zero = mlx_array_new_float(0.0f), z = mlx_array_new(), out = mlx_array_new();
  mlx_astype(&z, zero, mlx_array_dtype(host), cpu);
  mlx_add(&out, host, z, gpu);
  mlx_array_eval(out);
  mlx_array_free(zero);
  mlx_array_free(z);
  return out;
}

/* The inputs of the view tests, from x (4, 5, 6): x, flat (120), every other element of flat
 * (60, stride 2), and flat[1:109] as (18, 6) (row-major at an offset of one element: 4 bytes,
 * not a multiple of 8). */
enum { VIEW_X, VIEW_FLAT, VIEW_STEPPED, VIEW_OFFSET_ROWS, VIEW_INPUTS };
static void view_inputs(mlx_array x, mlx_stream s, mlx_array* in) {
  int flat[1] = {120}, rows[2] = {18, 6}, zero[1] = {0}, end[1] = {120}, two[1] = {2}, one[1] = {1}, stop[1] = {109};
  mlx_array shifted = mlx_array_new();
  for (int i = 1; i < VIEW_INPUTS; i++) in[i] = mlx_array_new();
  in[VIEW_X] = x;
  mlx_reshape(&in[VIEW_FLAT], x, flat, 1, s);
  mlx_slice(&in[VIEW_STEPPED], in[VIEW_FLAT], zero, 1, end, 1, two, 1, s);
  mlx_slice(&shifted, in[VIEW_FLAT], one, 1, stop, 1, one, 1, s);
  mlx_reshape(&in[VIEW_OFFSET_ROWS], shifted, rows, 2, s);
  mlx_array_free(shifted);
}

typedef struct {
  const char* what;
  int input;
  int kind; /* 0 diagonal, 1 as_strided, 2 view */
  int offset, axis1, axis2;
  mlx_dtype dtype;
} view_case;

static int make_view(mlx_array* r, const view_case* v, mlx_array in, mlx_stream s) {
  int shape[2] = {5, 4};
  int64_t strides[2] = {3, 1};
  switch (v->kind) {
    case 0: return mlx_diagonal(r, in, v->offset, v->axis1, v->axis2, s);
    case 1: return mlx_as_strided(r, in, shape, 2, strides, 2, (size_t)v->offset, s);
    default: return mlx_view(r, in, v->dtype, s);
  }
}

/* Each case on fresh GPU inputs: once the comparison has read a buffer on the host, views of it
 * are no longer device-only. */
TEST(views_diagonal_as_strided_view) {
  const view_case cases[] = {
      {"diagonal(-3, 0, 1)", VIEW_X, 0, -3, 0, 1, 0},   {"diagonal(0, 0, 1)", VIEW_X, 0, 0, 0, 1, 0},
      {"diagonal(2, 1, 2)", VIEW_X, 0, 2, 1, 2, 0},     {"diagonal(-1, 2, 0)", VIEW_X, 0, -1, 2, 0, 0},
      {"diagonal(9, 1, 2)", VIEW_X, 0, 9, 1, 2, 0},     {"diagonal(5, 2, 0)", VIEW_X, 0, 5, 2, 0, 0},
      {"as_strided of a contiguous array", VIEW_X, 1, 7, 0, 0, 0},
      {"as_strided of a stepped slice (copied)", VIEW_STEPPED, 1, 3, 0, 0, 0},
      {"view int32", VIEW_X, 2, 0, 0, 0, MLX_INT32},    {"view uint8", VIEW_X, 2, 0, 0, 0, MLX_UINT8},
      {"view int64", VIEW_X, 2, 0, 0, 0, MLX_INT64},    {"view float16", VIEW_X, 2, 0, 0, 0, MLX_FLOAT16},
      {"view int32 of a stepped slice", VIEW_STEPPED, 2, 0, 0, 0, MLX_INT32},
      {"view uint8 of a stepped slice (copied)", VIEW_STEPPED, 2, 0, 0, 0, MLX_UINT8},
      {"view int64 of a stepped slice (copied)", VIEW_STEPPED, 2, 0, 0, 0, MLX_INT64},
      {"view uint8 of rows at an offset", VIEW_OFFSET_ROWS, 2, 0, 0, 0, MLX_UINT8},
      {"view int64 of rows at a misaligned offset (copied)", VIEW_OFFSET_ROWS, 2, 0, 0, 0, MLX_INT64},
  };
  int shape[3] = {4, 5, 6};
  mlx_array h = rand_array(shape, 3, MLX_FLOAT32, -1, 1), hin[VIEW_INPUTS];
  view_inputs(h, cpu, hin);
  for (int k = 0; k < COUNT(cases); k++) {
    mlx_array gin[VIEW_INPUTS], g = mlx_array_new(), c = mlx_array_new();
    view_inputs(on_gpu(h), gpu, gin);
    CHECK_MSG(make_view(&g, &cases[k], gin[cases[k].input], gpu) == 0 &&
                  make_view(&c, &cases[k], hin[cases[k].input], cpu) == 0,
              "%s", cases[k].what);
    same(cases[k].what, g, c);
    for (int i = 0; i < VIEW_INPUTS; i++) mlx_array_free(gin[i]);
    mlx_array_free(g);
    mlx_array_free(c);
  }
  for (int i = 1; i < VIEW_INPUTS; i++) mlx_array_free(hin[i]);
  mlx_array_free(h);
}

/* conjugate, real and imag of complex64 on the GPU (a contiguous array and its transposed view;
 * NaN, infinities and signed zeros among the values) against the CPU bit for bit, and imag of a
 * real array (zeros). The conjugate is compared through its parts, taken on the CPU. */
TEST(complex_parts) {
  float v[2 * 24];
  for (int i = 0; i < 24; i++) v[2 * i] = (float)i * 0.5f - 3.0f, v[2 * i + 1] = (float)(i % 7) - 2.5f;
  v[2 * 3] = NAN, v[2 * 5 + 1] = INFINITY, v[2 * 7] = -0.0f, v[2 * 8 + 1] = 0.0f;
  int shape[2] = {4, 6};
  mlx_array z = mlx_array_new_data(v, shape, 2, MLX_COMPLEX64), zt = mlx_array_new();
  mlx_transpose(&zt, z, cpu);
  mlx_array inputs[2] = {z, zt};
  for (int k = 0; k < 2; k++) {
    mlx_array gc = mlx_array_new(), cc = mlx_array_new(), gr = mlx_array_new(), cr = mlx_array_new();
    mlx_array gi = mlx_array_new(), ci = mlx_array_new(), p1 = mlx_array_new(), p2 = mlx_array_new();
    CHECK(mlx_conjugate(&gc, inputs[k], gpu) == 0 && mlx_conjugate(&cc, inputs[k], cpu) == 0);
    CHECK(mlx_real(&gr, inputs[k], gpu) == 0 && mlx_real(&cr, inputs[k], cpu) == 0);
    CHECK(mlx_imag(&gi, inputs[k], gpu) == 0 && mlx_imag(&ci, inputs[k], cpu) == 0);
    CHECK_MSG(made_on_gpu(gc) && made_on_gpu(gr) && made_on_gpu(gi), "complex parts %d: not computed on the GPU", k);
    CHECK(mlx_array_dtype(gc) == MLX_COMPLEX64 && mlx_array_dtype(gr) == MLX_FLOAT32 && mlx_array_dtype(gi) == MLX_FLOAT32);
    compare("real", gr, cr, 0, 0, 0);
    compare("imag", gi, ci, 0, 0, 0);
    mlx_imag(&p1, gc, cpu);
    mlx_imag(&p2, cc, cpu);
    compare("conjugate's imaginary part", p1, p2, 0, 0, 0);
    CHECK(mlx_array_eval(p1) == 0 && mlx_array_eval(p2) == 0);
    const float *a = mlx_array_data_float32(p1), *b = mlx_array_data_float32(p2);
    for (int i = 0; a && b && i < 24; i++) CHECK(signbit(a[i]) == signbit(b[i])); /* -0 for a zero part */
    mlx_real(&p1, gc, cpu);
    mlx_real(&p2, cc, cpu);
    compare("conjugate's real part", p1, p2, 0, 0, 0);
    mlx_array all[] = {gc, cc, gr, cr, gi, ci, p1, p2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
  }
  int rs[2] = {3, 5};
  mlx_array x = rand_array(rs, 2, MLX_FLOAT32, -1, 1), gi = mlx_array_new(), ci = mlx_array_new();
  CHECK(mlx_imag(&gi, x, gpu) == 0 && mlx_imag(&ci, x, cpu) == 0);
  CHECK_MSG(made_on_gpu(gi), "imag of a real array: not computed on the GPU");
  compare("imag of a real array", gi, ci, 0, 0, 0);
  mlx_array all[] = {z, zt, x, gi, ci};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

int main(void) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (count == 0) {
    printf("SKIP: no CUDA GPU (test_cuda_elementwise needs one)\n");
    return TEST_SUMMARY();
  }
  rng_state = (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ull;
  printf("seed %llu\n", (unsigned long long)rng_state);
  cpu = mlx_default_cpu_stream_new();
  gpu = mlx_default_gpu_stream_new();
  RUN(binary_integer_ops_edge_values);
  RUN(binary_integer_ops_strided_and_broadcast);
  RUN(divmod_both_outputs);
  RUN(nan_equal_floats);
  RUN(unary_predicates_and_nan_to_num);
  RUN(arange_matches_long_double);
  RUN(linspace_matches_long_double);
  RUN(triangles_every_diagonal);
  RUN(windows_all_lengths);
  RUN(pad_constant_and_edge);
  RUN(views_diagonal_as_strided_view);
  RUN(complex_parts);
  mlx_stream_free(cpu);
  mlx_stream_free(gpu);
  return TEST_SUMMARY();
}
