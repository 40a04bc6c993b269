/* Shape ops: reshaping views, axis moves, concatenate/stack/split, slice_update, pad, tile,
 * repeat, roll, as_strided, view and dynamic slices, against plain-C references; error paths. */
#include "ops_shape_test_util.h"

static const mlx_dtype dtypes[] = {MLX_FLOAT32, MLX_BFLOAT16, MLX_BOOL, MLX_INT64, MLX_UINT8, MLX_FLOAT16};
#define N_DTYPES (sizeof dtypes / sizeof dtypes[0])

/* Row-major (r, c) values of the transpose of a row-major (c, r) matrix. */
static void transpose_ref(const double* v, int r, int c, double* out) {
  for (int i = 0; i < r; i++)
    for (int j = 0; j < c; j++) out[i * c + j] = v[j * r + i];
}

TEST(test_flatten_unflatten_squeeze_expand_are_views) {
  double v[24];
  pattern(v, 24, MLX_FLOAT32);
  int shape[4] = {2, 1, 3, 4};
  mlx_array a = make(v, shape, 4, MLX_FLOAT32), r = mlx_array_new();
  CHECK_EQ_INT(mlx_flatten(&r, a, 1, -1, cpu), 0);
  int s1[2] = {2, 12};
  CHECK_ARRAY(r, MLX_FLOAT32, s1, 2, v);
  CHECK(shares_data(r, a));
  CHECK_EQ_INT(mlx_flatten(&r, a, -10, 10, cpu), 0); /* axes clamp, as MLX */
  int s2[1] = {24};
  CHECK_ARRAY(r, MLX_FLOAT32, s2, 1, v);
  int parts[2] = {-1, 2};
  CHECK_EQ_INT(mlx_unflatten(&r, a, -1, parts, 2, cpu), 0);
  int s3[5] = {2, 1, 3, 2, 2};
  CHECK_ARRAY(r, MLX_FLOAT32, s3, 5, v);
  CHECK_EQ_INT(mlx_squeeze(&r, a, cpu), 0);
  int s4[3] = {2, 3, 4};
  CHECK_ARRAY(r, MLX_FLOAT32, s4, 3, v);
  CHECK(shares_data(r, a));
  CHECK_EQ_INT(mlx_squeeze_axis(&r, a, -3, cpu), 0);
  CHECK_ARRAY(r, MLX_FLOAT32, s4, 3, v);
  int ax[2] = {0, -1};
  CHECK_EQ_INT(mlx_expand_dims_axes(&r, a, ax, 2, cpu), 0);
  int s5[6] = {1, 2, 1, 3, 4, 1};
  CHECK_ARRAY(r, MLX_FLOAT32, s5, 6, v);
  CHECK_EQ_INT(mlx_expand_dims(&r, a, 2, cpu), 0);
  int s6[5] = {2, 1, 1, 3, 4};
  CHECK_ARRAY(r, MLX_FLOAT32, s6, 5, v);
  /* a 0-d array flattens to (1) */
  mlx_array scalar = mlx_array_new_float(5.0f);
  CHECK_EQ_INT(mlx_flatten(&r, scalar, 0, -1, cpu), 0);
  int s7[1] = {1};
  double five[1] = {5};
  CHECK_ARRAY(r, MLX_FLOAT32, s7, 1, five);
  mlx_array_free(scalar);
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_flatten_transposed_input_copies_in_logical_order) {
  double v[6] = {0, 1, 2, 3, 4, 5}, expected[6];
  int shape[2] = {3, 2};
  mlx_array a = make(v, shape, 2, MLX_INT64), t = mlx_array_new(), r = mlx_array_new();
  mlx_transpose(&t, a, cpu); /* (2, 3) */
  transpose_ref(v, 2, 3, expected);
  CHECK_EQ_INT(mlx_flatten(&r, t, 0, -1, cpu), 0);
  int s[1] = {6};
  CHECK_ARRAY(r, MLX_INT64, s, 1, expected);
  mlx_array_free(a);
  mlx_array_free(t);
  mlx_array_free(r);
}

TEST(test_atleast_shapes_follow_numpy) {
  mlx_array scalar = mlx_array_new_int(3), r = mlx_array_new();
  double three[1] = {3};
  int s1[1] = {1}, s2[2] = {1, 1}, s3[3] = {1, 1, 1};
  mlx_atleast_1d(&r, scalar, cpu);
  CHECK_ARRAY(r, MLX_INT32, s1, 1, three);
  mlx_atleast_2d(&r, scalar, cpu);
  CHECK_ARRAY(r, MLX_INT32, s2, 2, three);
  mlx_atleast_3d(&r, scalar, cpu);
  CHECK_ARRAY(r, MLX_INT32, s3, 3, three);
  double v[4] = {1, 2, 3, 4};
  int n[1] = {4};
  mlx_array vec = make(v, n, 1, MLX_INT32);
  int t2[2] = {1, 4}, t3[3] = {1, 4, 1};
  mlx_atleast_2d(&r, vec, cpu);
  CHECK_ARRAY(r, MLX_INT32, t2, 2, v);
  mlx_atleast_3d(&r, vec, cpu);
  CHECK_ARRAY(r, MLX_INT32, t3, 3, v);
  int m[2] = {2, 2}, u3[3] = {2, 2, 1};
  mlx_array mat = make(v, m, 2, MLX_INT32);
  mlx_atleast_3d(&r, mat, cpu);
  CHECK_ARRAY(r, MLX_INT32, u3, 3, v);
  mlx_array_free(scalar);
  mlx_array_free(vec);
  mlx_array_free(mat);
  mlx_array_free(r);
}

TEST(test_swapaxes_and_moveaxis_match_index_loops) {
  double v[24], expected[24];
  pattern(v, 24, MLX_FLOAT32);
  int shape[3] = {2, 3, 4};
  for (size_t d = 0; d < N_DTYPES; d++) {
    double vd[24];
    pattern(vd, 24, dtypes[d]);
    mlx_array a = make(vd, shape, 3, dtypes[d]), r = mlx_array_new();
    CHECK_EQ_INT(mlx_swapaxes(&r, a, 0, -1, cpu), 0); /* (4, 3, 2) */
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++)
        for (int k = 0; k < 4; k++) expected[(k * 3 + j) * 2 + i] = vd[(i * 3 + j) * 4 + k];
    int s1[3] = {4, 3, 2};
    CHECK_ARRAY(r, dtypes[d], s1, 3, expected);
    CHECK_EQ_INT(mlx_moveaxis(&r, a, 0, 2, cpu), 0); /* (3, 4, 2) */
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++)
        for (int k = 0; k < 4; k++) expected[(j * 4 + k) * 2 + i] = vd[(i * 3 + j) * 4 + k];
    int s2[3] = {3, 4, 2};
    CHECK_ARRAY(r, dtypes[d], s2, 3, expected);
    CHECK(shares_data(r, a));
    CHECK_EQ_INT(mlx_moveaxis(&r, a, -1, 0, cpu), 0); /* (4, 2, 3) */
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++)
        for (int k = 0; k < 4; k++) expected[(k * 2 + i) * 3 + j] = vd[(i * 3 + j) * 4 + k];
    int s3[3] = {4, 2, 3};
    CHECK_ARRAY(r, dtypes[d], s3, 3, expected);
    mlx_array_free(a);
    mlx_array_free(r);
  }
  (void)v;
}

TEST(test_broadcast_arrays_gives_common_shape_views) {
  double a_v[3] = {1, 2, 3}, b_v[2] = {10, 20};
  int sa[2] = {1, 3}, sb[2] = {2, 1};
  mlx_array a = make(a_v, sa, 2, MLX_FLOAT32), b = make(b_v, sb, 2, MLX_INT32);
  mlx_array pair[2] = {a, b};
  mlx_vector_array in = mlx_vector_array_new_data(pair, 2), out = mlx_vector_array_new();
  CHECK_EQ_INT(mlx_broadcast_arrays(&out, in, cpu), 0);
  CHECK_EQ_INT(mlx_vector_array_size(out), 2);
  mlx_array x = mlx_array_new(), y = mlx_array_new();
  mlx_vector_array_get(&x, out, 0);
  mlx_vector_array_get(&y, out, 1);
  int s[2] = {2, 3};
  double ex[6] = {1, 2, 3, 1, 2, 3}, ey[6] = {10, 10, 10, 20, 20, 20};
  CHECK_ARRAY(x, MLX_FLOAT32, s, 2, ex);
  CHECK_ARRAY(y, MLX_INT32, s, 2, ey);
  double c_v[4] = {0};
  int sc[1] = {4};
  mlx_array c = make(c_v, sc, 1, MLX_FLOAT32);
  mlx_vector_array_append_value(in, c);
  CHECK_FAILS(mlx_broadcast_arrays(&out, in, cpu), "cannot be broadcast");
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(c);
  mlx_array_free(x);
  mlx_array_free(y);
  mlx_vector_array_free(in);
  mlx_vector_array_free(out);
}

/* Reference concatenation of row-major blocks along `axis` of shape (outer, n_k, inner). */
static void concat_ref(const double* const* parts, const int* lens, int nparts, int outer, int inner,
                       double* out) {
  size_t o = 0;
  for (int i = 0; i < outer; i++)
    for (int k = 0; k < nparts; k++)
      for (int j = 0; j < lens[k] * inner; j++) out[o++] = parts[k][(size_t)i * lens[k] * inner + j];
}

TEST(test_concatenate_dtypes_axes_strided_and_empty_inputs) {
  for (size_t d = 0; d < N_DTYPES; d++) {
    mlx_dtype dt = dtypes[d];
    /* a (2, 3, 4); b = transpose of a (4, 3, 2) stored array -> logical (2, 3, 4); c (2, 0, 4) */
    double va[24], vb_store[24], vb[24], expected[72];
    pattern(va, 24, dt);
    for (int i = 0; i < 24; i++) vb_store[i] = dt == MLX_BOOL ? (double)(i % 2) : (double)(i % 11);
    int sa[3] = {2, 3, 4}, sbs[3] = {4, 3, 2}, sc[3] = {2, 0, 4};
    mlx_array a = make(va, sa, 3, dt), bs = make(vb_store, sbs, 3, dt), b = mlx_array_new();
    mlx_array c = make(NULL, sc, 3, dt);
    mlx_transpose(&b, bs, cpu);
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++)
        for (int k = 0; k < 4; k++) vb[(i * 3 + j) * 4 + k] = vb_store[(k * 3 + j) * 2 + i];
    mlx_array list[3] = {a, c, b};
    mlx_vector_array v = mlx_vector_array_new_data(list, 3);
    mlx_array r = mlx_array_new();
    for (int axis = -3; axis < 3; axis++) {
      int ax = axis < 0 ? axis + 3 : axis;
      if (ax != 1) continue; /* c only fits along axis 1 */
      CHECK_EQ_INT(mlx_concatenate_axis(&r, v, axis, cpu), 0);
      const double* parts[3] = {va, NULL, vb};
      int lens[3] = {3, 0, 3};
      concat_ref(parts, lens, 3, 2, 4, expected);
      int s[3] = {2, 6, 4};
      CHECK_ARRAY(r, dt, s, 3, expected);
    }
    /* axis 0 and -1 without the empty one */
    mlx_array two[2] = {a, b};
    mlx_vector_array v2 = mlx_vector_array_new_data(two, 2);
    const double* parts[2] = {va, vb};
    int lens0[2] = {2, 2}, s0[3] = {4, 3, 4};
    CHECK_EQ_INT(mlx_concatenate_axis(&r, v2, 0, cpu), 0);
    concat_ref(parts, lens0, 2, 1, 12, expected);
    CHECK_ARRAY(r, dt, s0, 3, expected);
    int lens2[2] = {4, 4}, s2[3] = {2, 3, 8};
    CHECK_EQ_INT(mlx_concatenate_axis(&r, v2, -1, cpu), 0);
    concat_ref(parts, lens2, 2, 6, 1, expected);
    CHECK_ARRAY(r, dt, s2, 3, expected);
    /* without an axis: flattened */
    CHECK_EQ_INT(mlx_concatenate(&r, v2, cpu), 0);
    int s_flat[1] = {48}, lens_flat[2] = {24, 24};
    concat_ref(parts, lens_flat, 2, 1, 1, expected);
    CHECK_ARRAY(r, dt, s_flat, 1, expected);
    mlx_array_free(a);
    mlx_array_free(bs);
    mlx_array_free(b);
    mlx_array_free(c);
    mlx_array_free(r);
    mlx_vector_array_free(v);
    mlx_vector_array_free(v2);
  }
}

TEST(test_concatenate_promotes_dtypes) {
  double va[2] = {1, 2}, vb[2] = {0.5, -1.5};
  int s[1] = {2};
  mlx_array a = make(va, s, 1, MLX_INT32), b = make(vb, s, 1, MLX_FLOAT16), r = mlx_array_new();
  mlx_array list[2] = {a, b};
  mlx_vector_array v = mlx_vector_array_new_data(list, 2);
  CHECK_EQ_INT(mlx_concatenate_axis(&r, v, 0, cpu), 0);
  double expected[4] = {1, 2, 0.5, -1.5};
  int so[1] = {4};
  CHECK_ARRAY(r, MLX_FLOAT16, so, 1, expected); /* int32 + float16 -> float16, as MLX */
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(r);
  mlx_vector_array_free(v);
}

TEST(test_stack_inserts_the_new_axis) {
  double va[6] = {1, 2, 3, 4, 5, 6}, vb[6] = {-1, -2, -3, -4, -5, -6};
  int s[2] = {2, 3};
  mlx_array a = make(va, s, 2, MLX_BFLOAT16), b = make(vb, s, 2, MLX_BFLOAT16), r = mlx_array_new();
  mlx_array list[2] = {a, b};
  mlx_vector_array v = mlx_vector_array_new_data(list, 2);
  CHECK_EQ_INT(mlx_stack(&r, v, cpu), 0);
  int s0[3] = {2, 2, 3};
  double e0[12] = {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6};
  CHECK_ARRAY(r, MLX_BFLOAT16, s0, 3, e0);
  CHECK_EQ_INT(mlx_stack_axis(&r, v, -1, cpu), 0);
  int s2[3] = {2, 3, 2};
  double e2[12] = {1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6};
  CHECK_ARRAY(r, MLX_BFLOAT16, s2, 3, e2);
  CHECK_EQ_INT(mlx_stack_axis(&r, v, 1, cpu), 0);
  int s1[3] = {2, 2, 3};
  double e1[12] = {1, 2, 3, -1, -2, -3, 4, 5, 6, -4, -5, -6};
  CHECK_ARRAY(r, MLX_BFLOAT16, s1, 3, e1);
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(r);
  mlx_vector_array_free(v);
}

TEST(test_split_equal_parts_and_sections_are_views) {
  double v[12];
  for (int i = 0; i < 12; i++) v[i] = i;
  int s[2] = {3, 4};
  mlx_array a = make(v, s, 2, MLX_INT64), part = mlx_array_new();
  mlx_vector_array parts = mlx_vector_array_new();
  CHECK_EQ_INT(mlx_split(&parts, a, 2, -1, cpu), 0);
  CHECK_EQ_INT(mlx_vector_array_size(parts), 2);
  mlx_vector_array_get(&part, parts, 1);
  int sp[2] = {3, 2};
  double e1[6] = {2, 3, 6, 7, 10, 11};
  CHECK_ARRAY(part, MLX_INT64, sp, 2, e1);
  CHECK(shares_data(part, a));
  /* sections [0,1), [1,3), [3,3) (unsorted -> empty), [2,3) from -1 */
  int idx[3] = {1, 3, -1};
  CHECK_EQ_INT(mlx_split_sections(&parts, a, idx, 3, 0, cpu), 0);
  CHECK_EQ_INT(mlx_vector_array_size(parts), 4);
  int sizes[4] = {1, 2, 0, 1};
  double first_rows[4] = {0, 4, -1, 8};
  for (int i = 0; i < 4; i++) {
    mlx_vector_array_get(&part, parts, (size_t)i);
    CHECK_EQ_INT(mlx_array_dim(part, 0), sizes[i]);
    CHECK_EQ_INT(mlx_array_dim(part, 1), 4);
    double got[8];
    if (sizes[i]) {
      CHECK_EQ_INT(values_of(part, got, 8), (size_t)sizes[i] * 4);
      CHECK_NEAR(got[0], first_rows[i], 0);
    }
  }
  CHECK_FAILS(mlx_split(&parts, a, 3, 1, cpu), "equal parts");
  CHECK_FAILS(mlx_split(&parts, a, 0, 1, cpu), "positive");
  CHECK_FAILS(mlx_split(&parts, a, 2, 2, cpu), "out of bounds");
  CHECK_FAILS(mlx_split_sections(&parts, a, NULL, 2, 0, cpu), "null indices");
  mlx_array_free(a);
  mlx_array_free(part);
  mlx_vector_array_free(parts);
}

TEST(test_slice_update_is_functional_with_steps_and_broadcast) {
  for (size_t d = 0; d < N_DTYPES; d++) {
    mlx_dtype dt = dtypes[d];
    double v[20], expected[20], u[2] = {1, 0};
    pattern(v, 20, dt);
    int s[2] = {4, 5}, su[1] = {2};
    mlx_array a = make(v, s, 2, dt), upd = make(u, su, 1, dt), r = mlx_array_new();
    /* rows 3, 1 (step -2), columns 1, 3 (step 2) <- (2,) broadcast to (2, 2) */
    int start[2] = {3, 1}, stop[2] = {0, 5}, step[2] = {-2, 2};
    CHECK_EQ_INT(mlx_slice_update(&r, a, upd, start, 2, stop, 2, step, 2, cpu), 0);
    memcpy(expected, v, sizeof v);
    for (int i = 3; i > 0; i -= 2)
      for (int j = 1, k = 0; j < 5; j += 2, k++) expected[i * 5 + j] = u[k];
    CHECK_ARRAY(r, dt, s, 2, expected);
    CHECK_ARRAY(a, dt, s, 2, v); /* the input is unchanged */
    mlx_array_free(a);
    mlx_array_free(upd);
    mlx_array_free(r);
  }
}

TEST(test_slice_update_on_transposed_source_and_errors) {
  double v[6] = {0, 1, 2, 3, 4, 5}, u[2] = {9, 8};
  int s[2] = {2, 3}, su[2] = {2, 1};
  mlx_array a = make(v, s, 2, MLX_FLOAT32), t = mlx_array_new(), upd = make(u, su, 2, MLX_INT32);
  mlx_array r = mlx_array_new();
  mlx_transpose(&t, a, cpu); /* (3, 2): [[0,3],[1,4],[2,5]] */
  int start[2] = {1, 1}, stop[2] = {3, 2};
  CHECK_EQ_INT(mlx_slice_update(&r, t, upd, start, 2, stop, 2, NULL, 0, cpu), 0);
  int so[2] = {3, 2};
  double expected[6] = {0, 3, 1, 9, 2, 8};
  CHECK_ARRAY(r, MLX_FLOAT32, so, 2, expected);
  int bad_stop[2] = {3, 3};
  CHECK_FAILS(mlx_slice_update(&r, t, a, start, 2, bad_stop, 2, NULL, 0, cpu), "cannot be broadcast");
  CHECK_FAILS(mlx_slice_update(&r, t, upd, start, 1, stop, 2, NULL, 0, cpu), "one entry per dimension");
  int zero_step[2] = {1, 0};
  CHECK_FAILS(mlx_slice_update(&r, t, upd, start, 2, stop, 2, zero_step, 2, cpu), "zero");
  CHECK_FAILS(mlx_slice_update(&r, t, mlx_array_new(), start, 2, stop, 2, NULL, 0, cpu), "empty array");
  mlx_array_free(a);
  mlx_array_free(t);
  mlx_array_free(upd);
  mlx_array_free(r);
}

/* Reference pad of a row-major (R, C) matrix: constant value, or edge replication. */
static void pad_ref(const double* v, int R, int C, int lr, int hr, int lc, int hc, double value, bool edge,
                    double* out) {
  int OC = C + lc + hc;
  for (int i = 0; i < R + lr + hr; i++)
    for (int j = 0; j < OC; j++) {
      int si = i - lr, sj = j - lc;
      bool inside = si >= 0 && si < R && sj >= 0 && sj < C;
      if (edge) {
        si = si < 0 ? 0 : si >= R ? R - 1 : si;
        sj = sj < 0 ? 0 : sj >= C ? C - 1 : sj;
        inside = true;
      }
      out[i * OC + j] = inside ? v[si * C + sj] : value;
    }
}

TEST(test_pad_constant_and_edge_on_strided_inputs) {
  for (size_t d = 0; d < N_DTYPES; d++) {
    mlx_dtype dt = dtypes[d];
    double store[12], v[12], expected[120];
    pattern(store, 12, dt);
    int ss[2] = {4, 3};
    mlx_array base = make(store, ss, 2, dt), a = mlx_array_new(), r = mlx_array_new();
    mlx_transpose(&a, base, cpu); /* (3, 4) strided */
    transpose_ref(store, 3, 4, v);
    mlx_array value = mlx_array_new_float(1.0f);
    int axes[2] = {0, -1}, low[2] = {1, 0}, high[2] = {2, 3};
    CHECK_EQ_INT(mlx_pad(&r, a, axes, 2, low, 2, high, 2, value, "constant", cpu), 0);
    pad_ref(v, 3, 4, 1, 2, 0, 3, 1, false, expected);
    int so[2] = {6, 7};
    CHECK_ARRAY(r, dt, so, 2, expected);
    CHECK_EQ_INT(mlx_pad(&r, a, axes, 2, low, 2, high, 2, value, "edge", cpu), 0);
    pad_ref(v, 3, 4, 1, 2, 0, 3, 0, true, expected);
    CHECK_ARRAY(r, dt, so, 2, expected);
    CHECK_EQ_INT(mlx_pad_symmetric(&r, a, 2, value, "edge", cpu), 0);
    pad_ref(v, 3, 4, 2, 2, 2, 2, 0, true, expected);
    int sym[2] = {7, 8};
    CHECK_ARRAY(r, dt, sym, 2, expected);
    mlx_array_free(base);
    mlx_array_free(a);
    mlx_array_free(r);
    mlx_array_free(value);
  }
}

TEST(test_pad_size_zero_dims_and_errors) {
  int s[2] = {0, 2};
  mlx_array a = make(NULL, s, 2, MLX_INT32), r = mlx_array_new(), value = mlx_array_new_int(7);
  int axes[1] = {0}, low[1] = {1}, high[1] = {1};
  CHECK_EQ_INT(mlx_pad(&r, a, axes, 1, low, 1, high, 1, value, NULL, cpu), 0);
  int so[2] = {2, 2};
  double expected[4] = {7, 7, 7, 7};
  CHECK_ARRAY(r, MLX_INT32, so, 2, expected);
  CHECK_FAILS(mlx_pad(&r, a, axes, 1, low, 1, high, 1, value, "edge", cpu), "empty");
  int negative[1] = {-1};
  CHECK_FAILS(mlx_pad(&r, a, axes, 1, negative, 1, high, 1, value, NULL, cpu), "non-negative");
  CHECK_FAILS(mlx_pad(&r, a, axes, 1, low, 0, high, 1, value, NULL, cpu), "pad sizes");
  CHECK_FAILS(mlx_pad(&r, a, axes, 1, low, 1, high, 1, value, "reflect", cpu), "unknown mode");
  int bad_axis[1] = {2};
  CHECK_FAILS(mlx_pad(&r, a, bad_axis, 1, low, 1, high, 1, value, NULL, cpu), "out of bounds");
  CHECK_FAILS(mlx_pad(&r, a, axes, 1, low, 1, high, 1, a, NULL, cpu), "one element");
  mlx_array_free(a);
  mlx_array_free(r);
  mlx_array_free(value);
}

TEST(test_tile_and_repeat_match_loops) {
  for (size_t d = 0; d < N_DTYPES; d++) {
    mlx_dtype dt = dtypes[d];
    double v[6], expected[72];
    pattern(v, 6, dt);
    int s[2] = {2, 3};
    mlx_array a = make(v, s, 2, dt), r = mlx_array_new();
    int reps[3] = {2, 1, 2}; /* (2, 2, 6) */
    CHECK_EQ_INT(mlx_tile(&r, a, reps, 3, cpu), 0);
    for (int t = 0; t < 2; t++)
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 6; j++) expected[(t * 2 + i) * 6 + j] = v[i * 3 + j % 3];
    int st[3] = {2, 2, 6};
    CHECK_ARRAY(r, dt, st, 3, expected);
    int one_rep[1] = {2}; /* fewer reps than dims: applies to the last */
    CHECK_EQ_INT(mlx_tile(&r, a, one_rep, 1, cpu), 0);
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 6; j++) expected[i * 6 + j] = v[i * 3 + j % 3];
    int st2[2] = {2, 6};
    CHECK_ARRAY(r, dt, st2, 2, expected);
    CHECK_EQ_INT(mlx_repeat_axis(&r, a, 3, -1, cpu), 0);
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 9; j++) expected[i * 9 + j] = v[i * 3 + j / 3];
    int sr[2] = {2, 9};
    CHECK_ARRAY(r, dt, sr, 2, expected);
    CHECK_EQ_INT(mlx_repeat(&r, a, 2, cpu), 0);
    for (int i = 0; i < 12; i++) expected[i] = v[i / 2];
    int sf[1] = {12};
    CHECK_ARRAY(r, dt, sf, 1, expected);
    CHECK_EQ_INT(mlx_repeat_axis(&r, a, 0, 0, cpu), 0);
    int s0[2] = {0, 3};
    CHECK_ARRAY(r, dt, s0, 2, expected);
    mlx_array_free(a);
    mlx_array_free(r);
  }
  mlx_array a = mlx_array_new_int(1), r = mlx_array_new();
  int neg[1] = {-1};
  CHECK_FAILS(mlx_tile(&r, a, neg, 1, cpu), "non-negative");
  CHECK_FAILS(mlx_repeat(&r, a, -2, cpu), "non-negative");
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_roll_flat_axis_and_axes) {
  double v[12], expected[12];
  for (int i = 0; i < 12; i++) v[i] = i;
  int s[2] = {3, 4};
  mlx_array a = make(v, s, 2, MLX_INT32), r = mlx_array_new();
  int shift[1] = {5};
  CHECK_EQ_INT(mlx_roll(&r, a, shift, 1, cpu), 0);
  for (int i = 0; i < 12; i++) expected[(i + 5) % 12] = v[i];
  CHECK_ARRAY(r, MLX_INT32, s, 2, expected);
  int shifts[2] = {-1, -6}; /* sum -7 along the last axis == +1 */
  CHECK_EQ_INT(mlx_roll_axis(&r, a, shifts, 2, -1, cpu), 0);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) expected[i * 4 + (j + 1) % 4] = v[i * 4 + j];
  CHECK_ARRAY(r, MLX_INT32, s, 2, expected);
  int axes[2] = {0, 1}, sh2[2] = {1, -1};
  CHECK_EQ_INT(mlx_roll_axes(&r, a, sh2, 2, axes, 2, cpu), 0);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) expected[((i + 1) % 3) * 4 + (j + 3) % 4] = v[i * 4 + j];
  CHECK_ARRAY(r, MLX_INT32, s, 2, expected);
  CHECK_FAILS(mlx_roll_axes(&r, a, sh2, 2, axes, 1, cpu), "shifts");
  CHECK_FAILS(mlx_roll_axis(&r, a, shift, 1, 3, cpu), "out of bounds");
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_as_strided_sliding_windows_and_bounds) {
  double v[6] = {0, 1, 2, 3, 4, 5};
  int s[2] = {2, 3};
  mlx_array base = make(v, s, 2, MLX_FLOAT32), t = mlx_array_new(), r = mlx_array_new();
  mlx_transpose(&t, base, cpu); /* logical row-major: 0 3 1 4 2 5 */
  int shape[2] = {4, 3};
  int64_t strides[2] = {1, 1};
  CHECK_EQ_INT(mlx_as_strided(&r, t, shape, 2, strides, 2, 0, cpu), 0);
  double logical[6] = {0, 3, 1, 4, 2, 5}, expected[12];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++) expected[i * 3 + j] = logical[i + j];
  CHECK_ARRAY(r, MLX_FLOAT32, shape, 2, expected);
  int shape1[1] = {3};
  int64_t stride2[1] = {2};
  CHECK_EQ_INT(mlx_as_strided(&r, base, shape1, 1, stride2, 1, 1, cpu), 0);
  double odd[3] = {1, 3, 5};
  CHECK_ARRAY(r, MLX_FLOAT32, shape1, 1, odd);
  CHECK(shares_data(r, base));
  CHECK_FAILS(mlx_as_strided(&r, base, shape1, 1, stride2, 1, 2, cpu), "outside");
  int64_t back[1] = {-1};
  CHECK_FAILS(mlx_as_strided(&r, base, shape1, 1, back, 1, 1, cpu), "outside");
  mlx_array_free(base);
  mlx_array_free(t);
  mlx_array_free(r);
}

TEST(test_view_reinterprets_bits) {
  float f[2] = {1.0f, -2.0f};
  int s[1] = {2};
  mlx_array a = mlx_array_new_data(f, s, 1, MLX_FLOAT32), r = mlx_array_new();
  CHECK_EQ_INT(mlx_view(&r, a, MLX_UINT32, cpu), 0);
  const uint32_t* u = mlx_array_data_uint32(r);
  CHECK(u && u[0] == 0x3f800000u && u[1] == 0xc0000000u);
  CHECK_EQ_INT(mlx_view(&r, a, MLX_UINT8, cpu), 0); /* little endian bytes of 1.0f */
  CHECK_EQ_INT(mlx_array_dim(r, 0), 8);
  const uint8_t* b = mlx_array_data_uint8(r);
  CHECK(b && b[0] == 0 && b[1] == 0 && b[2] == 0x80 && b[3] == 0x3f && b[7] == 0xc0);
  CHECK_EQ_INT(mlx_view(&r, a, MLX_FLOAT64, cpu), 0);
  CHECK_EQ_INT(mlx_array_dim(r, 0), 1);
  const double* dd = mlx_array_data_float64(r);
  uint64_t bits = 0;
  if (dd) memcpy(&bits, dd, 8);
  CHECK(bits == 0xc00000003f800000ull);
  /* a transposed int16 (2, 2) viewed as int8: copies into logical order first */
  int16_t h[4] = {0x0102, 0x0304, 0x0506, 0x0708};
  int s2[2] = {2, 2};
  mlx_array m = mlx_array_new_data(h, s2, 2, MLX_INT16), t = mlx_array_new();
  mlx_transpose(&t, m, cpu);
  CHECK_EQ_INT(mlx_view(&r, t, MLX_INT8, cpu), 0);
  const int8_t* q = mlx_array_data_int8(r);
  int8_t expected[8] = {2, 1, 6, 5, 4, 3, 8, 7};
  CHECK(q && !memcmp(q, expected, 8));
  int s3[1] = {3};
  int8_t odd[3] = {1, 2, 3};
  mlx_array o = mlx_array_new_data(odd, s3, 1, MLX_INT8);
  CHECK_FAILS(mlx_view(&r, o, MLX_INT16, cpu), "multiple");
  mlx_array scalar = mlx_array_new_float(1.0f);
  CHECK_FAILS(mlx_view(&r, scalar, MLX_FLOAT16, cpu), "same size");
  mlx_array_free(a);
  mlx_array_free(m);
  mlx_array_free(t);
  mlx_array_free(o);
  mlx_array_free(scalar);
  mlx_array_free(r);
}

TEST(test_number_of_elements) {
  int s[3] = {2, 3, 4};
  float zeros[24] = {0};
  mlx_array a = mlx_array_new_data(zeros, s, 3, MLX_FLOAT32), r = mlx_array_new();
  int axes[2] = {0, -1};
  double v = 0;
  CHECK_EQ_INT(mlx_number_of_elements(&r, a, axes, 2, false, MLX_INT32, cpu), 0);
  CHECK_EQ_INT(values_of(r, &v, 1), 1);
  CHECK_NEAR(v, 8, 0);
  CHECK_EQ_INT(mlx_number_of_elements(&r, a, axes, 2, true, MLX_FLOAT32, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  CHECK_EQ_INT(values_of(r, &v, 1), 1);
  CHECK_NEAR(v, 3, 0);
  mlx_array_free(a);
  mlx_array_free(r);
}

TEST(test_dynamic_slice_and_update_clamp_starts) {
  double v[20];
  for (int i = 0; i < 20; i++) v[i] = i;
  int s[2] = {4, 5};
  mlx_array a = make(v, s, 2, MLX_FLOAT32), r = mlx_array_new();
  int64_t st[1] = {-2};
  int one[1] = {1};
  mlx_array start = mlx_array_new_data(st, one, 1, MLX_INT64);
  int axes[1] = {1}, size[2] = {2, 3};
  CHECK_EQ_INT(mlx_slice_dynamic(&r, a, start, axes, 1, size, 2, cpu), 0); /* cols 3.. clamp to 2..4 */
  double e1[6] = {2, 3, 4, 7, 8, 9};
  CHECK_ARRAY(r, MLX_FLOAT32, size, 2, e1);
  double uv[2] = {-1, -2};
  int su[1] = {2};
  mlx_array upd = make(uv, su, 1, MLX_INT32);
  mlx_array start0 = mlx_array_new_int(1);
  int axes0[1] = {0};
  mlx_array start0v = mlx_array_new();
  mlx_reshape(&start0v, start0, one, 1, cpu);
  CHECK_EQ_INT(mlx_slice_update_dynamic(&r, a, upd, start0v, axes0, 1, cpu), 0); /* row 1, cols 0..1 */
  double e2[20];
  memcpy(e2, v, sizeof v);
  e2[5] = -1;
  e2[6] = -2;
  CHECK_ARRAY(r, MLX_FLOAT32, s, 2, e2);
  mlx_array fstart = mlx_array_new_float(1.0f);
  CHECK_FAILS(mlx_slice_dynamic(&r, a, fstart, axes, 1, size, 2, cpu), "integer");
  int big[2] = {5, 1};
  CHECK_FAILS(mlx_slice_dynamic(&r, a, start, axes, 1, big, 2, cpu), "does not fit");
  mlx_array_free(a);
  mlx_array_free(r);
  mlx_array_free(start);
  mlx_array_free(upd);
  mlx_array_free(start0);
  mlx_array_free(start0v);
  mlx_array_free(fstart);
}

TEST(test_shape_errors_report_and_leave_result_alone) {
  double v[6] = {0};
  int s[2] = {2, 3};
  mlx_array a = make(v, s, 2, MLX_FLOAT32), b = make(v, (int[]){3, 2}, 2, MLX_FLOAT32), r = mlx_array_new();
  mlx_array list[2] = {a, b};
  mlx_vector_array vec = mlx_vector_array_new_data(list, 2), empty = mlx_vector_array_new();
  CHECK_FAILS(mlx_concatenate_axis(&r, vec, 0, cpu), "different shape");
  CHECK_FAILS(mlx_concatenate_axis(&r, vec, 5, cpu), "out of bounds");
  CHECK_FAILS(mlx_concatenate_axis(&r, empty, 0, cpu), "no arrays");
  CHECK_FAILS(mlx_stack(&r, vec, cpu), "different shape");
  CHECK_FAILS(mlx_squeeze_axis(&r, a, 0, cpu), "size 2");
  CHECK_FAILS(mlx_expand_dims(&r, a, 4, cpu), "out of bounds");
  int dup[2] = {0, 0};
  CHECK_FAILS(mlx_expand_dims_axes(&r, a, dup, 2, cpu), "repeated");
  CHECK_FAILS(mlx_swapaxes(&r, a, 0, -3, cpu), "out of bounds");
  CHECK_FAILS(mlx_flatten(&r, a, 1, 0, cpu), "start_axis");
  int bad[2] = {4, -1};
  CHECK_FAILS(mlx_unflatten(&r, a, 1, bad, 2, cpu), "infer");
  CHECK_FAILS(mlx_flatten(&r, mlx_array_new(), 0, -1, cpu), "empty array");
  CHECK(r.ctx == NULL);
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_vector_array_free(vec);
  mlx_vector_array_free(empty);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  mlxc_set_errors_quiet(1);
  RUN(test_flatten_unflatten_squeeze_expand_are_views);
  RUN(test_flatten_transposed_input_copies_in_logical_order);
  RUN(test_atleast_shapes_follow_numpy);
  RUN(test_swapaxes_and_moveaxis_match_index_loops);
  RUN(test_broadcast_arrays_gives_common_shape_views);
  RUN(test_concatenate_dtypes_axes_strided_and_empty_inputs);
  RUN(test_concatenate_promotes_dtypes);
  RUN(test_stack_inserts_the_new_axis);
  RUN(test_split_equal_parts_and_sections_are_views);
  RUN(test_slice_update_is_functional_with_steps_and_broadcast);
  RUN(test_slice_update_on_transposed_source_and_errors);
  RUN(test_pad_constant_and_edge_on_strided_inputs);
  RUN(test_pad_size_zero_dims_and_errors);
  RUN(test_tile_and_repeat_match_loops);
  RUN(test_roll_flat_axis_and_axes);
  RUN(test_as_strided_sliding_windows_and_bounds);
  RUN(test_view_reinterprets_bits);
  RUN(test_number_of_elements);
  RUN(test_dynamic_slice_and_update_clamp_starts);
  RUN(test_shape_errors_report_and_leave_result_alone);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
