/* Indexing ops: take (flat and along an axis), take_along_axis and put_along_axis against
 * plain-C loops, over dtypes, index dtypes, strided inputs and indices; out-of-range indices
 * and bad arguments fail with a message. */
#include "ops_shape_test_util.h"

static const mlx_dtype dtypes[] = {MLX_FLOAT32, MLX_BFLOAT16, MLX_BOOL, MLX_INT64, MLX_UINT8};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])
static const mlx_dtype index_dtypes[] = {MLX_INT32, MLX_INT64, MLX_UINT8, MLX_INT16, MLX_UINT32};

TEST(test_take_axis_every_axis_dtype_and_negative_indices) {
  for (size_t d = 0; d < N_DTYPES; d++) {
    mlx_dtype dt = dtypes[d];
    double v[24], expected[24 * 4] = {0};
    pattern(v, 24, dt);
    int s[3] = {2, 3, 4};
    mlx_array a = make(v, s, 3, dt), r = mlx_array_new();
    double iv[4] = {1, -1, 0, 1}; /* (2, 2) indices, -1 is the last */
    int si[2] = {2, 2};
    mlx_array ind = make(iv, si, 2, MLX_INT32);
    for (int axis = 0; axis < 3; axis++) {
      CHECK_EQ_INT(mlx_take_axis(&r, a, ind, axis - 3 * (axis == 2), cpu), 0);
      int n = s[axis], out_shape[4], k = 0;
      for (int i = 0; i < axis; i++) out_shape[k++] = s[i];
      out_shape[k++] = 2;
      out_shape[k++] = 2;
      for (int i = axis + 1; i < 3; i++) out_shape[k++] = s[i];
      /* out[o..., j, inner...] = a[o..., idx[j], inner...] */
      size_t outer = 1, inner = 1, o = 0;
      for (int i = 0; i < axis; i++) outer *= (size_t)s[i];
      for (int i = axis + 1; i < 3; i++) inner *= (size_t)s[i];
      for (size_t q = 0; q < outer; q++)
        for (int j = 0; j < 4; j++) {
          int idx = (int)iv[j] < 0 ? (int)iv[j] + n : (int)iv[j];
          for (size_t t = 0; t < inner; t++) expected[o++] = v[(q * (size_t)n + (size_t)idx) * inner + t];
        }
      CHECK_ARRAY(r, dt, out_shape, 4, expected);
    }
    mlx_array_free(a);
    mlx_array_free(ind);
    mlx_array_free(r);
  }
}

TEST(test_take_with_strided_input_and_indices_of_every_integer_dtype) {
  double store[12];
  for (int i = 0; i < 12; i++) store[i] = i * 10;
  int ss[2] = {4, 3};
  mlx_array base = make(store, ss, 2, MLX_FLOAT32), a = mlx_array_new(), r = mlx_array_new();
  mlx_transpose(&a, base, cpu); /* (3, 4): a[i][j] = store[j * 3 + i] */
  double iv[6] = {0, 3, 2, 2, 1, 0};
  int si[2] = {2, 3};
  for (size_t k = 0; k < sizeof index_dtypes / sizeof index_dtypes[0]; k++) {
    mlx_array ind_base = make(iv, si, 2, index_dtypes[k]), ind = mlx_array_new();
    mlx_transpose(&ind, ind_base, cpu); /* (3, 2) strided: 0 2, 3 1, 2 0 */
    CHECK_EQ_INT(mlx_take_axis(&r, a, ind, 1, cpu), 0);
    int so[3] = {3, 3, 2};
    double expected[18] = {0};
    for (int i = 0; i < 3; i++)
      for (int p = 0; p < 3; p++)
        for (int q = 0; q < 2; q++) expected[(i * 3 + p) * 2 + q] = store[(int)iv[q * 3 + p] * 3 + i];
    CHECK_ARRAY(r, MLX_FLOAT32, so, 3, expected);
    /* flat take: indices into the logical row-major order of a */
    CHECK_EQ_INT(mlx_take(&r, a, ind, cpu), 0);
    int sf[2] = {3, 2};
    double ef[6] = {0};
    for (int p = 0; p < 3; p++)
      for (int q = 0; q < 2; q++) {
        int flat = (int)iv[q * 3 + p];
        ef[p * 2 + q] = store[(flat % 4) * 3 + flat / 4];
      }
    CHECK_ARRAY(r, MLX_FLOAT32, sf, 2, ef);
    mlx_array_free(ind_base);
    mlx_array_free(ind);
  }
  /* a scalar index drops the axis */
  mlx_array one = mlx_array_new_int(-2);
  CHECK_EQ_INT(mlx_take_axis(&r, a, one, 0, cpu), 0);
  int s4[1] = {4};
  double row1[4] = {store[1], store[4], store[7], store[10]};
  CHECK_ARRAY(r, MLX_FLOAT32, s4, 1, row1);
  mlx_array_free(one);
  mlx_array_free(base);
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_take_out_of_range_fails_at_evaluation) {
  double v[4] = {1, 2, 3, 4};
  int s[1] = {4};
  mlx_array a = make(v, s, 1, MLX_FLOAT32), r = mlx_array_new();
  mlx_array big = mlx_array_new_int(4), low = mlx_array_new_int(-5), f = mlx_array_new_float(1);
  CHECK_EQ_INT(mlx_take(&r, a, big, cpu), 0); /* only known when the indices are evaluated */
  CHECK_FAILS(mlx_array_eval(r), "out of bounds");
  CHECK_EQ_INT(mlx_take_axis(&r, a, low, 0, cpu), 0);
  CHECK_FAILS(mlx_array_eval(r), "index -5");
  CHECK_FAILS(mlx_take(&r, a, f, cpu), "integer");
  CHECK_FAILS(mlx_take_axis(&r, a, big, 1, cpu), "out of bounds");
  CHECK_FAILS(mlx_take(&r, mlx_array_new(), big, cpu), "empty array");
  /* empty indices give an empty result, even from an empty axis */
  int s0[1] = {0};
  mlx_array none = make(NULL, s0, 1, MLX_INT32), empty = make(NULL, s0, 1, MLX_FLOAT32);
  CHECK_EQ_INT(mlx_take(&r, empty, none, cpu), 0);
  CHECK_ARRAY(r, MLX_FLOAT32, s0, 1, v);
  mlx_array_free(a);
  mlx_array_free(big);
  mlx_array_free(low);
  mlx_array_free(f);
  mlx_array_free(none);
  mlx_array_free(empty);
  mlx_array_free(r);
}

TEST(test_take_along_axis_with_broadcast_indices) {
  for (size_t d = 0; d < N_DTYPES; d++) {
    mlx_dtype dt = dtypes[d];
    double v[12] = {0};
    pattern(v, 12, dt);
    int s[2] = {3, 4};
    mlx_array a = make(v, s, 2, dt), r = mlx_array_new();
    /* (3, 2) indices along axis 1 */
    double iv[6] = {3, 0, -1, 1, 2, 2};
    int si[2] = {3, 2};
    mlx_array ind = make(iv, si, 2, MLX_INT64);
    CHECK_EQ_INT(mlx_take_along_axis(&r, a, ind, -1, cpu), 0);
    double expected[12] = {0};
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 2; j++) {
        int idx = (int)iv[i * 2 + j];
        expected[i * 2 + j] = v[i * 4 + (idx < 0 ? idx + 4 : idx)];
      }
    CHECK_ARRAY(r, dt, si, 2, expected);
    /* (1, 4) indices along axis 0 broadcast over nothing; (2, 1) along axis 0 broadcast over columns */
    double iv2[2] = {2, 0};
    int si2[2] = {2, 1};
    mlx_array ind2 = make(iv2, si2, 2, MLX_UINT8);
    CHECK_EQ_INT(mlx_take_along_axis(&r, a, ind2, 0, cpu), 0);
    int so2[2] = {2, 4};
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 4; j++) expected[i * 4 + j] = v[(int)iv2[i] * 4 + j];
    CHECK_ARRAY(r, dt, so2, 2, expected);
    mlx_array_free(a);
    mlx_array_free(ind);
    mlx_array_free(ind2);
    mlx_array_free(r);
  }
  mlx_array a = mlx_array_new_data((float[6]){0}, (int[]){2, 3}, 2, MLX_FLOAT32), r = mlx_array_new();
  mlx_array vec = mlx_array_new_data((int32_t[2]){0, 1}, (int[]){2}, 1, MLX_INT32);
  mlx_array wrong = mlx_array_new_data((int32_t[4]){0}, (int[]){4, 1}, 2, MLX_INT32);
  CHECK_FAILS(mlx_take_along_axis(&r, a, vec, 0, cpu), "dimensions");
  CHECK_FAILS(mlx_take_along_axis(&r, a, wrong, 1, cpu), "broadcast");
  mlx_array_free(a);
  mlx_array_free(vec);
  mlx_array_free(wrong);
  mlx_array_free(r);
}

TEST(test_put_along_axis_is_functional) {
  for (size_t d = 0; d < N_DTYPES; d++) {
    mlx_dtype dt = dtypes[d];
    double v[12] = {0}, expected[12] = {0};
    pattern(v, 12, dt);
    int s[2] = {3, 4};
    mlx_array base = make(v, s, 2, dt), r = mlx_array_new();
    double iv[3] = {1, -1, 0}; /* one column per row */
    int si[2] = {3, 1};
    mlx_array ind = make(iv, si, 2, MLX_INT32);
    mlx_array val = mlx_array_new_int(1); /* scalar broadcast, cast to dt */
    CHECK_EQ_INT(mlx_put_along_axis(&r, base, ind, val, 1, cpu), 0);
    memcpy(expected, v, sizeof v);
    for (int i = 0; i < 3; i++) expected[i * 4 + ((int)iv[i] + 4) % 4] = 1;
    CHECK_ARRAY(r, dt, s, 2, expected);
    CHECK_ARRAY(base, dt, s, 2, v); /* unchanged */
    mlx_array_free(base);
    mlx_array_free(ind);
    mlx_array_free(val);
    mlx_array_free(r);
  }
  /* a transposed input, (1, 3) indices along axis 0, per-element values */
  double store[6] = {0, 1, 2, 3, 4, 5};
  int ss[2] = {3, 2};
  mlx_array base = make(store, ss, 2, MLX_INT64), a = mlx_array_new(), r = mlx_array_new();
  mlx_transpose(&a, base, cpu); /* (2, 3): [[0, 2, 4], [1, 3, 5]] */
  mlx_array ind = mlx_array_new_data((int32_t[3]){1, 0, 1}, (int[]){1, 3}, 2, MLX_INT32);
  mlx_array vals = mlx_array_new_data((float[3]){-7, -8, -9}, (int[]){1, 3}, 2, MLX_FLOAT32);
  CHECK_EQ_INT(mlx_put_along_axis(&r, a, ind, vals, 0, cpu), 0);
  int so[2] = {2, 3};
  double expected[6] = {0, -8, 4, -7, 3, -9};
  CHECK_ARRAY(r, MLX_INT64, so, 2, expected);
  mlx_array bad = mlx_array_new_data((int32_t[1]){2}, (int[]){1, 1}, 2, MLX_INT32);
  CHECK_EQ_INT(mlx_put_along_axis(&r, a, bad, vals, 0, cpu), 0);
  CHECK_FAILS(mlx_array_eval(r), "out of bounds");
  mlx_array long_vals = mlx_array_new_data((float[4]){0}, (int[]){1, 4}, 2, MLX_FLOAT32);
  CHECK_FAILS(mlx_put_along_axis(&r, a, ind, long_vals, 0, cpu), "broadcast");
  CHECK_FAILS(mlx_put_along_axis(&r, a, vals, vals, 0, cpu), "integer");
  mlx_array_free(base);
  mlx_array_free(a);
  mlx_array_free(ind);
  mlx_array_free(vals);
  mlx_array_free(bad);
  mlx_array_free(long_vals);
  mlx_array_free(r);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  mlxc_set_errors_quiet(1);
  RUN(test_take_axis_every_axis_dtype_and_negative_indices);
  RUN(test_take_with_strided_input_and_indices_of_every_integer_dtype);
  RUN(test_take_out_of_range_fails_at_evaluation);
  RUN(test_take_along_axis_with_broadcast_indices);
  RUN(test_put_along_axis_is_functional);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
