/* slice_update writes in place into a source that nothing else can observe (MLX's donation, the
 * KV-cache update idiom), and copies whenever the source is still visible: held by a handle,
 * shared with a view, or backed by a memory-mapped file. */
#include <stdint.h>
#include <unistd.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

static mlx_stream cpu;

static mlx_array iota(int n0, int n1) {
  int shape[2] = {n0, n1};
  mlx_array a = mlx_array_new(), r = mlx_array_new();
  mlx_arange(&r, 0, n0 * n1, 1, MLX_FLOAT32, cpu);
  mlx_reshape(&a, r, shape, 2, cpu);
  mlx_contiguous(&a, a, false, cpu);
  mlx_array_eval(a);
  mlx_array_free(r);
  return a;
}

/* Writes value v at row `row` of a (n, 4) array, replacing the handle (the cache idiom). */
static int write_row(mlx_array* a, int row, float v) {
  int start[2] = {row, 0}, stop[2] = {row + 1, 4}, ushape[2] = {1, 4};
  float vals[4] = {v, v, v, v};
  mlx_array u = mlx_array_new_data(vals, ushape, 2, MLX_FLOAT32);
  int status = mlx_slice_update(a, *a, u, start, 2, stop, 2, NULL, 0, cpu);
  if (!status) status = mlx_array_eval(*a);
  mlx_array_free(u);
  return status;
}

static float at(mlx_array a, int i) {
  mlx_array_eval(a);
  return mlx_array_data_float32(a)[i];
}

TEST(cache_idiom_is_correct_and_in_place) {
  mlx_array a = iota(64, 4);
  const float* before = mlx_array_data_float32(a);
  for (int r = 0; r < 64; r++) CHECK(write_row(&a, r, (float)(1000 + r)) == 0);
  for (int r = 0; r < 64; r++) CHECK(at(a, 4 * r + 3) == (float)(1000 + r));
  /* Every update reused the first buffer. */
  CHECK(mlx_array_data_float32(a) == before);
  mlx_array_free(a);
}

TEST(held_source_is_not_written) {
  mlx_array a = iota(8, 4), b = mlx_array_new();
  mlx_array_set(&b, a); /* a second handle */
  CHECK(write_row(&a, 2, -1.0f) == 0);
  CHECK(at(a, 8) == -1.0f);
  CHECK(at(b, 8) == 8.0f);
  mlx_array_free(a);
  mlx_array_free(b);
}

TEST(source_shared_with_a_view_is_not_written) {
  mlx_array a = iota(8, 4), v = mlx_array_new();
  int start[2] = {2, 0}, stop[2] = {3, 4};
  mlx_slice(&v, a, start, 2, stop, 2, NULL, 0, cpu);
  mlx_array_eval(v); /* a view on a's buffer */
  CHECK(write_row(&a, 2, -1.0f) == 0);
  CHECK(at(a, 8) == -1.0f);
  CHECK(at(v, 0) == 8.0f);
  mlx_array_free(a);
  mlx_array_free(v);
}

TEST(mapped_file_is_not_written) {
  char path[64];
  snprintf(path, sizeof path, "/tmp/mlxc-donation-%d.safetensors", (int)getpid());
  mlx_map_string_to_array m = mlx_map_string_to_array_new(), loaded = mlx_map_string_to_array_new(),
                          again = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new(), meta2 = mlx_map_string_to_string_new(),
                           meta3 = mlx_map_string_to_string_new();
  mlx_array a = iota(8, 4), t = mlx_array_new(), t2 = mlx_array_new();
  mlx_map_string_to_array_insert(m, "t", a);
  CHECK(mlx_save_safetensors(path, m, meta) == 0);
  CHECK(mlx_load_safetensors(&loaded, &meta2, path, cpu) == 0);
  CHECK(mlx_map_string_to_array_get(&t, loaded, "t") == 0);
  mlx_map_string_to_array_free(loaded); /* t is now the only holder of the mapped tensor */
  CHECK(write_row(&t, 1, -5.0f) == 0);
  CHECK(at(t, 4) == -5.0f);
  CHECK(mlx_load_safetensors(&again, &meta3, path, cpu) == 0);
  CHECK(mlx_map_string_to_array_get(&t2, again, "t") == 0);
  CHECK(at(t2, 4) == 4.0f);
  mlx_array arrays[] = {a, t, t2};
  for (int i = 0; i < 3; i++) mlx_array_free(arrays[i]);
  mlx_map_string_to_array_free(m);
  mlx_map_string_to_array_free(again);
  mlx_map_string_to_string_free(meta);
  mlx_map_string_to_string_free(meta2);
  mlx_map_string_to_string_free(meta3);
  unlink(path);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(cache_idiom_is_correct_and_in_place);
  RUN(held_source_is_not_written);
  RUN(source_shared_with_a_view_is_not_written);
  RUN(mapped_file_is_not_written);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
