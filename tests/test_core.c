/* The array core: creation, lazy evaluation, views, promotion, half conversion, long chains,
 * error paths. */
#include <pthread.h>

#include "core/dtype.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/half.h"
#include "test_util.h"

static mlx_stream cpu;

static mlx_array make_f32(const float* data, const int* shape, int ndim) {
  return mlx_array_new_data(data, shape, ndim, MLX_FLOAT32);
}

TEST(test_new_data_copies_and_reads_back) {
  float data[6] = {1, 2, 3, 4, 5, 6};
  int shape[2] = {2, 3};
  mlx_array a = make_f32(data, shape, 2);
  data[0] = 100;  /* the array holds its own copy */
  CHECK_EQ_INT(mlx_array_ndim(a), 2);
  CHECK_EQ_INT(mlx_array_size(a), 6);
  CHECK_EQ_INT(mlx_array_nbytes(a), 24);
  CHECK_EQ_INT(mlx_array_dim(a, -1), 3);
  const float* p = mlx_array_data_float32(a);
  CHECK(p && p[0] == 1 && p[5] == 6);
  CHECK(mlx_array_data_int32(a) == NULL); /* wrong dtype is an error, not garbage */
  mlx_array_free(a);
}

TEST(test_add_broadcast_row_and_column) {
  float a_data[3] = {1, 2, 3}, b_data[2] = {10, 20};
  int sa[2] = {1, 3}, sb[2] = {2, 1};
  mlx_array a = make_f32(a_data, sa, 2), b = make_f32(b_data, sb, 2), c = mlx_array_new();
  CHECK_EQ_INT(mlx_add(&c, a, b, cpu), 0);
  CHECK_EQ_INT(mlx_array_dim(c, 0), 2);
  CHECK_EQ_INT(mlx_array_dim(c, 1), 3);
  const float* p = mlx_array_data_float32(c);
  float expected[6] = {11, 12, 13, 21, 22, 23};
  for (int i = 0; i < 6; i++) CHECK_NEAR(p[i], expected[i], 0);
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(c);
}

TEST(test_result_may_alias_input) {
  mlx_array a = mlx_array_new_float(2.0f), b = mlx_array_new_float(3.0f);
  CHECK_EQ_INT(mlx_multiply(&a, a, b, cpu), 0);
  CHECK_EQ_INT(mlx_multiply(&a, a, b, cpu), 0);
  float v = 0;
  CHECK_EQ_INT(mlx_array_item_float32(&v, a), 0);
  CHECK_NEAR(v, 18.0f, 0);
  mlx_array_free(a);
  mlx_array_free(b);
}

TEST(test_promotion_rules_match_mlx) {
  CHECK_EQ_INT(core_promote(MLX_INT32, MLX_FLOAT32), MLX_FLOAT32);
  CHECK_EQ_INT(core_promote(MLX_FLOAT16, MLX_BFLOAT16), MLX_FLOAT32);
  CHECK_EQ_INT(core_promote(MLX_UINT32, MLX_INT32), MLX_INT64);
  CHECK_EQ_INT(core_promote(MLX_UINT64, MLX_INT8), MLX_FLOAT32);
  CHECK_EQ_INT(core_promote(MLX_BOOL, MLX_INT8), MLX_INT8);
  CHECK_EQ_INT(core_promote(MLX_UINT8, MLX_INT8), MLX_INT16);
  CHECK_EQ_INT(core_promote(MLX_BFLOAT16, MLX_INT64), MLX_BFLOAT16);
  CHECK_EQ_INT(core_promote(MLX_FLOAT64, MLX_COMPLEX64), MLX_COMPLEX64);
  /* and through an op: int32 + float32 -> float32 */
  mlx_array i = mlx_array_new_int(2), f = mlx_array_new_float(0.5f), r = mlx_array_new();
  mlx_add(&r, i, f, cpu);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  float v = 0;
  mlx_array_item_float32(&v, r);
  CHECK_NEAR(v, 2.5f, 0);
  /* integer divide is true division in float32 */
  mlx_array three = mlx_array_new_int(3);
  mlx_divide(&r, three, i, cpu);
  CHECK_EQ_INT(mlx_array_dtype(r), MLX_FLOAT32);
  mlx_array_item_float32(&v, r);
  CHECK_NEAR(v, 1.5f, 0);
  mlx_array_free(i);
  mlx_array_free(f);
  mlx_array_free(r);
  mlx_array_free(three);
}

TEST(test_half_conversion_rounds_to_nearest_even) {
  /* Hand-computed bit patterns. */
  CHECK_EQ_INT(mlxc_float32_to_float16(1.0f), 0x3c00);
  CHECK_EQ_INT(mlxc_float32_to_float16(65504.0f), 0x7bff);
  CHECK_EQ_INT(mlxc_float32_to_float16(65520.0f), 0x7c00);     /* halfway to inf rounds up (odd) */
  CHECK_EQ_INT(mlxc_float32_to_float16(1.0f + 1.0f / 2048), 0x3c00); /* tie to even: down */
  CHECK_EQ_INT(mlxc_float32_to_float16(1.0f + 3.0f / 2048), 0x3c02); /* tie to even: up */
  CHECK_EQ_INT(mlxc_float32_to_float16(5.9604645e-8f), 0x0001);  /* smallest subnormal */
  CHECK_EQ_INT(mlxc_float32_to_float16(2.9802322e-8f), 0x0000);  /* half of it: tie to even 0 */
  CHECK_EQ_INT(mlxc_float32_to_float16(-2.0f), 0xc000);
  CHECK_NEAR(mlxc_float16_to_float32(0x0001), 5.9604645e-8f, 0);
  CHECK_NEAR(mlxc_float16_to_float32(0x3555), 0.33325195f, 0);
  CHECK_EQ_INT(mlxc_float32_to_bfloat16(1.0f), 0x3f80);
  CHECK_EQ_INT(mlxc_float32_to_bfloat16(1.00390625f), 0x3f80);   /* tie: to even */
  CHECK_EQ_INT(mlxc_float32_to_bfloat16(1.01171875f), 0x3f82);   /* tie: to even (up) */
  CHECK(isnan(mlxc_bfloat16_to_float32(mlxc_float32_to_bfloat16(NAN))));
  CHECK(isinf(mlxc_float16_to_float32(mlxc_float32_to_float16(INFINITY))));
}

TEST(test_transpose_is_a_view_and_reads_correctly) {
  float data[6] = {0, 1, 2, 3, 4, 5};
  int shape[2] = {2, 3};
  mlx_array a = make_f32(data, shape, 2), t = mlx_array_new();
  mlx_transpose(&t, a, cpu);
  mlx_array_eval(t);
  const size_t* st = mlx_array_strides(t);
  CHECK(st[0] == 1 && st[1] == 3); /* a view: strides, no copy */
  const float* p = mlx_array_data_float32(t);
  float expected[6] = {0, 3, 1, 4, 2, 5};
  for (int i = 0; i < 6; i++) CHECK_NEAR(p[i], expected[i], 0);
  mlx_array_free(a);
  mlx_array_free(t);
}

TEST(test_slice_negative_step_and_reshape) {
  float data[12];
  for (int i = 0; i < 12; i++) data[i] = (float)i;
  int shape[2] = {3, 4};
  mlx_array a = make_f32(data, shape, 2), s = mlx_array_new(), r = mlx_array_new();
  int start[2] = {2, 3}, stop[2] = {-4, 0}, step[2] = {-1, -2};
  CHECK_EQ_INT(mlx_slice(&s, a, start, 2, stop, 2, step, 2, cpu), 0);
  CHECK_EQ_INT(mlx_array_dim(s, 0), 3);
  CHECK_EQ_INT(mlx_array_dim(s, 1), 2);
  int flat[1] = {-1};
  CHECK_EQ_INT(mlx_reshape(&r, s, flat, 1, cpu), 0);
  const float* p = mlx_array_data_float32(r);
  float expected[6] = {11, 9, 7, 5, 3, 1};
  for (int i = 0; i < 6; i++) CHECK_NEAR(p[i], expected[i], 0);
  mlx_array_free(a);
  mlx_array_free(s);
  mlx_array_free(r);
}

TEST(test_astype_saturates_and_rounds) {
  float data[5] = {1.7f, -1.7f, 300.0f, NAN, -1e20f};
  int shape[1] = {5};
  mlx_array a = make_f32(data, shape, 1), i8 = mlx_array_new(), bf = mlx_array_new();
  mlx_astype(&i8, a, MLX_INT8, cpu);
  const int8_t* p = mlx_array_data_int8(i8);
  CHECK(p && p[0] == 1 && p[1] == -1 && p[2] == 127 && p[3] == 0 && p[4] == -128);
  mlx_astype(&bf, a, MLX_BFLOAT16, cpu);
  const bfloat16_t* q = mlx_array_data_bfloat16(bf);
  CHECK(q && q[0] == mlxc_float32_to_bfloat16(1.7f));
  mlx_array_free(a);
  mlx_array_free(i8);
  mlx_array_free(bf);
}

TEST(test_chain_of_100000_nodes_evaluates) {
  mlx_array x = mlx_array_new_float(0.0f), one = mlx_array_new_float(1.0f);
  for (int i = 0; i < 100000; i++) mlx_add(&x, x, one, cpu);
  float v = 0;
  CHECK_EQ_INT(mlx_array_item_float32(&v, x), 0);
  CHECK_NEAR(v, 100000.0f, 0);
  mlx_array_free(x);
  mlx_array_free(one);
}

TEST(test_unevaluated_chain_of_100000_nodes_frees) {
  mlx_array x = mlx_array_new_float(0.0f), one = mlx_array_new_float(1.0f);
  for (int i = 0; i < 100000; i++) mlx_add(&x, x, one, cpu);
  mlx_array_free(x); /* must not recurse 100,000 deep */
  mlx_array_free(one);
  size_t active = 1;
  mlx_get_active_memory(&active);
  CHECK_EQ_INT(active, 0);
}

TEST(test_intermediates_released_after_eval) {
  mlx_clear_cache();
  size_t before, after;
  mlx_get_active_memory(&before);
  float data[1024] = {0};
  int shape[1] = {1024};
  mlx_array a = make_f32(data, shape, 1), b = mlx_array_new();
  mlx_add(&b, a, a, cpu);
  for (int i = 0; i < 50; i++) mlx_add(&b, b, a, cpu);
  mlx_array_eval(b);
  mlx_get_active_memory(&after);
  /* a and b live; the 50 intermediates are gone */
  CHECK(after - before <= 3 * 4096);
  mlx_array_free(a);
  mlx_array_free(b);
}

TEST(test_errors_are_reported_not_fatal) {
  mlxc_set_errors_quiet(1);
  float d2[2] = {1, 2}, d3[3] = {1, 2, 3};
  int s2[1] = {2}, s3[1] = {3};
  mlx_array a = make_f32(d2, s2, 1), b = make_f32(d3, s3, 1), c = mlx_array_new();
  CHECK(mlx_add(&c, a, b, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "broadcast") != NULL);
  CHECK(c.ctx == NULL);
  CHECK(mlx_add(&c, a, mlx_array_new(), cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "empty") != NULL);
  int bad[1] = {5};
  CHECK(mlx_reshape(&c, a, bad, 1, cpu) != 0);
  int perm[1] = {3};
  CHECK(mlx_transpose_axes(&c, a, perm, 1, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "out of bounds") != NULL);
  float item;
  CHECK(mlx_array_item_float32(&item, a) != 0); /* two elements */
  mlx_array_free(a);
  mlx_array_free(b);
  mlxc_set_errors_quiet(0);
}

static int handler_calls;
static void count_errors(const char* msg, void* data) { handler_calls += *(int*)data; }

TEST(test_custom_error_handler_is_called) {
  static int weight = 1;
  handler_calls = 0;
  mlx_set_error_handler(count_errors, &weight, NULL);
  mlx_array c = mlx_array_new();
  mlx_add(&c, mlx_array_new(), mlx_array_new(), cpu);
  CHECK_EQ_INT(handler_calls, 1);
  mlx_set_error_handler(NULL, NULL, NULL);
}

TEST(test_memory_limit_fails_cleanly) {
  mlxc_set_errors_quiet(1);
  size_t old;
  mlx_set_memory_limit(&old, 1 << 20);
  int shape[1] = {1 << 20};
  mlx_array big = mlx_array_new_data(NULL, shape, 1, MLX_FLOAT32); /* 4 MiB > 1 MiB */
  CHECK(big.ctx == NULL);
  CHECK(strstr(mlxc_last_error(), "memory limit") != NULL);
  size_t ignored;
  mlx_set_memory_limit(&ignored, old);
  CHECK_EQ_INT(ignored, 1 << 20);
  mlxc_set_errors_quiet(0);
}

static void* thread_sum(void* arg) {
  int* ok = arg;
  mlx_stream s = mlx_default_cpu_stream_new();
  mlx_array x = mlx_array_new_float(0.0f), one = mlx_array_new_float(1.0f);
  for (int i = 0; i < 2000; i++) mlx_add(&x, x, one, s);
  float v = 0;
  *ok = mlx_array_item_float32(&v, x) == 0 && v == 2000.0f;
  mlx_array_free(x);
  mlx_array_free(one);
  return NULL;
}

TEST(test_threads_build_and_evaluate_independent_graphs) {
  pthread_t threads[8];
  int ok[8];
  for (int i = 0; i < 8; i++) pthread_create(&threads[i], NULL, thread_sum, &ok[i]);
  for (int i = 0; i < 8; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < 8; i++) CHECK(ok[i]);
}

TEST(test_tostring_formats_like_mlx) {
  int shape[2] = {2, 2};
  int32_t data[4] = {1, 2, 3, 4};
  mlx_array a = mlx_array_new_data(data, shape, 2, MLX_INT32);
  mlx_string s = mlx_string_new();
  mlx_array_tostring(&s, a);
  CHECK_STR(mlx_string_data(s), "array([[1, 2],\n       [3, 4]], dtype=int32)");
  mlx_string_free(s);
  mlx_array_free(a);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_new_data_copies_and_reads_back);
  RUN(test_add_broadcast_row_and_column);
  RUN(test_result_may_alias_input);
  RUN(test_promotion_rules_match_mlx);
  RUN(test_half_conversion_rounds_to_nearest_even);
  RUN(test_transpose_is_a_view_and_reads_correctly);
  RUN(test_slice_negative_step_and_reshape);
  RUN(test_astype_saturates_and_rounds);
  RUN(test_chain_of_100000_nodes_evaluates);
  RUN(test_unevaluated_chain_of_100000_nodes_frees);
  RUN(test_intermediates_released_after_eval);
  RUN(test_errors_are_reported_not_fatal);
  RUN(test_custom_error_handler_is_called);
  RUN(test_memory_limit_fails_cleanly);
  RUN(test_threads_build_and_evaluate_independent_graphs);
  RUN(test_tostring_formats_like_mlx);
  return TEST_SUMMARY();
}
