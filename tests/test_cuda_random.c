/* random_bits on the GPU against the CPU kernel, byte for byte: widths 1, 2 and 4, key streams
 * of an even, an odd and a partial last word, keys that are views (an offset, a stride), split;
 * then the distributions built on it (uniform, normal, categorical) give the CPU's values. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

#include "cuda_test_util.h"

/* GPU and CPU random_bits of `shape` and `width` from `key`: equal bytes, made on the GPU. */
static void same_bits(const char* what, const int* shape, int nd, int width, mlx_array key) {
  mlx_array g = mlx_array_new(), c = mlx_array_new();
  CHECK_MSG(mlx_random_bits(&g, shape, (size_t)nd, width, key, gpu) == 0, "%s: %s", what, mlxc_last_error());
  CHECK(mlx_random_bits(&c, shape, (size_t)nd, width, key, cpu) == 0);
  CHECK_MSG(made_on_gpu(g), "%s: not computed on the GPU", what);
  CHECK(mlx_array_eval(c) == 0);
  size_t n = mlx_array_nbytes(c);
  const void* pg = width == 1 ? (const void*)mlx_array_data_uint8(g)
                   : width == 2 ? (const void*)mlx_array_data_uint16(g) : (const void*)mlx_array_data_uint32(g);
  const void* pc = width == 1 ? (const void*)mlx_array_data_uint8(c)
                   : width == 2 ? (const void*)mlx_array_data_uint16(c) : (const void*)mlx_array_data_uint32(c);
  CHECK_MSG(pg && pc && mlx_array_nbytes(g) == n && memcmp(pg, pc, n) == 0, "%s: bytes differ", what);
  mlx_array_free(g);
  mlx_array_free(c);
}

TEST(bits_match_the_cpu) {
  mlx_array key = mlx_array_new();
  CHECK(mlx_random_key(&key, 1234) == 0);
  const int shapes[][3] = {{4, 6, 1}, {3, 5, 1}, {7, 1, 1}, {1, 1, 1}, {33, 17, 1}, {1000, 1001, 1}};
  const int widths[3] = {1, 2, 4};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int w = 0; w < 3; w++) {
      char what[64];
      snprintf(what, sizeof what, "(%d, %d) width %d", shapes[s][0], shapes[s][1], widths[w]);
      same_bits(what, shapes[s], 2, widths[w], key);
    }
  /* Keys that are views: a row of split keys (an offset) and a column of their transpose (a
   * stride); split itself on the GPU. */
  mlx_array keys = mlx_array_new(), gkeys = mlx_array_new(), row = mlx_array_new(), col = mlx_array_new();
  CHECK(mlx_random_split_num(&keys, key, 6, cpu) == 0);
  CHECK(mlx_random_split_num(&gkeys, key, 6, gpu) == 0);
  compare("split", gkeys, keys, 0, 0, 0);
  int rs[2] = {3, 0}, re[2] = {4, 2}, two[1] = {2}, perm[2] = {1, 0};
  CHECK(mlx_slice(&row, keys, rs, 2, re, 2, NULL, 0, cpu) == 0);
  CHECK(mlx_reshape(&row, row, two, 1, cpu) == 0);
  CHECK(mlx_transpose_axes(&col, keys, perm, 2, cpu) == 0);
  int cs[2] = {0, 4}, ce[2] = {2, 5};
  CHECK(mlx_slice(&col, col, cs, 2, ce, 2, NULL, 0, cpu) == 0);
  CHECK(mlx_reshape(&col, col, two, 1, cpu) == 0);
  int shape_a[2] = {5, 3}, shape_b[1] = {41};
  same_bits("a row of split keys", shape_a, 2, 1, row);
  same_bits("a column of transposed keys", shape_b, 1, 4, col);
  mlx_array_free(keys);
  mlx_array_free(gkeys);
  mlx_array_free(row);
  mlx_array_free(col);
  mlx_array_free(key);
}

/* Distributions over random_bits: the same values as on the CPU (uniform and categorical exactly;
 * normal through erfinv, whose GPU version is a few ulp off). */
TEST(distributions_match_the_cpu) {
  mlx_array key = mlx_array_new();
  CHECK(mlx_random_key(&key, 7) == 0);
  int shape[2] = {64, 33};
  mlx_array lo = mlx_array_new_float(-2.0f), hi = mlx_array_new_float(3.0f);
  mlx_array gu = mlx_array_new(), cu = mlx_array_new(), gn = mlx_array_new(), cn = mlx_array_new();
  CHECK(mlx_random_uniform(&gu, lo, hi, shape, 2, MLX_FLOAT32, key, gpu) == 0);
  CHECK(mlx_random_uniform(&cu, lo, hi, shape, 2, MLX_FLOAT32, key, cpu) == 0);
  compare("uniform", gu, cu, 1e-6, 1e-7, 0);
  CHECK(mlx_random_normal(&gn, shape, 2, MLX_FLOAT32, 0.0f, 1.0f, key, gpu) == 0);
  CHECK(mlx_random_normal(&cn, shape, 2, MLX_FLOAT32, 0.0f, 1.0f, key, cpu) == 0);
  compare("normal", gn, cn, 1e-5, 1e-6, 0);
  int lshape[2] = {8, 1000};
  mlx_array logits = rand_array(lshape, 2, MLX_FLOAT32, -3, 3), gc = mlx_array_new(), cc = mlx_array_new();
  CHECK(mlx_random_categorical(&gc, logits, -1, key, gpu) == 0);
  CHECK(mlx_random_categorical(&cc, logits, -1, key, cpu) == 0);
  compare("categorical", gc, cc, 0, 0, 0);
  mlx_array arrays[] = {key, lo, hi, gu, cu, gn, cn, logits, gc, cc};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) mlx_array_free(arrays[i]);
}

int main(void) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (count == 0) {
    printf("SKIP: no CUDA GPU (test_cuda_random needs one)\n");
    return TEST_SUMMARY();
  }
  rng_state = (uint64_t)time(NULL) ^ 0x2545f4914f6cdd1dull;
  printf("seed %llu\n", (unsigned long long)rng_state);
  cpu = mlx_default_cpu_stream_new();
  gpu = mlx_default_gpu_stream_new();
  RUN(bits_match_the_cpu);
  RUN(distributions_match_the_cpu);
  mlx_stream_free(cpu);
  mlx_stream_free(gpu);
  return TEST_SUMMARY();
}
