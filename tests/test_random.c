/* Random keys and bits against the Threefry-2x32-20 known-answer vectors of Random123
 * (Salmon et al. 2011, kat_vectors; the same vectors JAX tests against) and MLX's layout of the
 * hash outputs per key (mlx/backend/cpu/primitives.cpp, RandomBits), traced by hand below. */
#include "backend/cpu/random.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

static mlx_stream cpu;

TEST(test_threefry_known_answers) {
  uint32_t r[2];
  cpu_threefry2x32(0, 0, 0, 0, r);
  CHECK_EQ_INT(r[0], 0x6b200159u);
  CHECK_EQ_INT(r[1], 0x99ba4efeu);
  cpu_threefry2x32(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, r);
  CHECK_EQ_INT(r[0], 0x1cb996fcu);
  CHECK_EQ_INT(r[1], 0xbb002be7u);
  cpu_threefry2x32(0x13198a2eu, 0x03707344u, 0x243f6a88u, 0x85a308d3u, r);
  CHECK_EQ_INT(r[0], 0xc4923a9cu);
  CHECK_EQ_INT(r[1], 0x483df7a0u);
}

TEST(test_key_splits_seed_into_high_and_low_words) {
  mlx_array k = mlx_array_new();
  CHECK_EQ_INT(mlx_random_key(&k, 0x0000000500000007ull), 0);
  const uint32_t* p = mlx_array_data_uint32(k);
  CHECK(p && p[0] == 5 && p[1] == 7);
  mlx_array_free(k);
}

static const uint32_t* bits_of(mlx_array* out, mlx_array key, const int* shape, int ndim, int width) {
  CHECK_EQ_INT(mlx_random_bits(out, shape, (size_t)ndim, width, key, cpu), 0);
  return (const uint32_t*)mlx_array_data_uint32(*out);
}

TEST(test_bits_layout_matches_mlx) {
  mlx_array key = mlx_array_new(), out = mlx_array_new();
  mlx_random_key(&key, 0);
  uint32_t h[2];
  /* One word (odd count, half = 0): word 0 = hash(0, 0).first = 1797259609, MLX's value for
   * mx.random.bits(key=mx.random.key(0)). */
  const uint32_t* p = bits_of(&out, key, NULL, 0, 4);
  CHECK(p && p[0] == 1797259609u);
  /* Four words (even, half = 2): hash(0, 2) -> words 0 and 2, hash(1, 3) -> words 1 and 3. */
  int four[1] = {4};
  p = bits_of(&out, key, four, 1, 4);
  cpu_threefry2x32(0, 0, 0, 2, h);
  CHECK(p && p[0] == h[0] && p[2] == h[1]);
  cpu_threefry2x32(0, 0, 1, 3, h);
  CHECK(p && p[1] == h[0] && p[3] == h[1]);
  /* Three words (odd, half = 1): hash(0, 2) -> words 0 and 2; hash(1, 0).first -> word 1. */
  int three[1] = {3};
  p = bits_of(&out, key, three, 1, 4);
  cpu_threefry2x32(0, 0, 0, 2, h);
  CHECK(p && p[0] == h[0] && p[2] == h[1]);
  cpu_threefry2x32(0, 0, 1, 0, h);
  CHECK(p && p[1] == h[0]);
  mlx_array_free(key);
  mlx_array_free(out);
}

TEST(test_bits_narrow_widths_take_bytes_of_the_words) {
  mlx_array key = mlx_array_new(), out = mlx_array_new();
  mlx_random_key(&key, 42);
  /* Six uint8 values = 6 bytes = 2 words (even, half = 1): hash(0, 1) gives word 0 and the
   * first two bytes of word 1 (little-endian). */
  int six[1] = {6};
  CHECK_EQ_INT(mlx_random_bits(&out, six, 1, 1, key, cpu), 0);
  CHECK_EQ_INT(mlx_array_dtype(out), MLX_UINT8);
  const uint8_t* p = mlx_array_data_uint8(out);
  uint32_t h[2];
  cpu_threefry2x32(0, 42, 0, 1, h);
  for (int i = 0; i < 4; i++) CHECK_EQ_INT(p[i], (h[0] >> (8 * i)) & 0xff);
  for (int i = 0; i < 2; i++) CHECK_EQ_INT(p[4 + i], (h[1] >> (8 * i)) & 0xff);
  mlx_array_free(key);
  mlx_array_free(out);
}

TEST(test_split_is_bits_of_shape_num_by_2) {
  mlx_array key = mlx_array_new(), a = mlx_array_new(), b = mlx_array_new(), many = mlx_array_new();
  mlx_random_key(&key, 0);
  CHECK_EQ_INT(mlx_random_split(&a, &b, key, cpu), 0);
  CHECK_EQ_INT(mlx_random_split_num(&many, key, 2, cpu), 0);
  const uint32_t *pa = mlx_array_data_uint32(a), *pb = mlx_array_data_uint32(b);
  const uint32_t* pm = mlx_array_data_uint32(many);
  CHECK_EQ_INT(mlx_array_ndim(a), 1);
  CHECK(pa && pb && pm && pa[0] == pm[0] && pa[1] == pm[1] && pb[0] == pm[2] && pb[1] == pm[3]);
  CHECK(!(pa[0] == pb[0] && pa[1] == pb[1]));
  /* 4 words, half = 2: hash(0, 2) -> words 0, 2; hash(1, 3) -> words 1, 3. */
  uint32_t h[2];
  cpu_threefry2x32(0, 0, 0, 2, h);
  CHECK(pm[0] == h[0] && pm[2] == h[1]);
  mlx_array_free(key);
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(many);
}

TEST(test_global_seed_is_reproducible) {
  mlx_array x = mlx_array_new(), y = mlx_array_new();
  int n[1] = {8};
  mlx_random_seed(3);
  mlx_random_bits(&x, n, 1, 4, mlx_array_new(), cpu);
  mlx_array_eval(x);
  mlx_random_seed(3);
  mlx_random_bits(&y, n, 1, 4, mlx_array_new(), cpu);
  const uint32_t *px = mlx_array_data_uint32(x), *py = mlx_array_data_uint32(y);
  for (int i = 0; i < 8; i++) CHECK_EQ_INT(px[i], py[i]);
  mlx_random_bits(&y, n, 1, 4, mlx_array_new(), cpu); /* the sequence moves on */
  py = mlx_array_data_uint32(y);
  CHECK(px[0] != py[0] || px[1] != py[1]);
  mlx_array_free(x);
  mlx_array_free(y);
}

TEST(test_random_errors) {
  mlxc_set_errors_quiet(1);
  mlx_array bad = mlx_array_new_float(1.0f), out = mlx_array_new();
  int n[1] = {2};
  CHECK(mlx_random_bits(&out, n, 1, 4, bad, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "key") != NULL);
  mlx_array key = mlx_array_new();
  mlx_random_key(&key, 1);
  CHECK(mlx_random_bits(&out, n, 1, 3, key, cpu) != 0);
  int neg[1] = {-1};
  CHECK(mlx_random_bits(&out, neg, 1, 4, key, cpu) != 0);
  CHECK(mlx_random_split_num(&out, key, -2, cpu) != 0);
  mlx_array_free(bad);
  mlx_array_free(key);
  mlx_array_free(out);
  mlxc_set_errors_quiet(0);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_threefry_known_answers);
  RUN(test_key_splits_seed_into_high_and_low_words);
  RUN(test_bits_layout_matches_mlx);
  RUN(test_bits_narrow_widths_take_bytes_of_the_words);
  RUN(test_split_is_bits_of_shape_num_by_2);
  RUN(test_global_seed_is_reproducible);
  RUN(test_random_errors);
  return TEST_SUMMARY();
}
