/* A tour of the mlx-c API as mlxc implements it: lazy arrays, broadcasting, views, dtypes.
 * Build against an installed mlxc with: cc array_basics.c $(pkg-config --cflags --libs mlxc) */
#include <stdio.h>

#include <mlx/c/mlx.h>
#include <mlxc/error.h>

static void print(const char* label, mlx_array a) {
  mlx_string s = mlx_string_new();
  if (mlx_array_tostring(&s, a) == 0) printf("%s =\n%s\n\n", label, mlx_string_data(s));
  mlx_string_free(s);
}

int main(void) {
  mlx_stream cpu = mlx_default_cpu_stream_new();
  float data[6] = {1, 2, 3, 4, 5, 6};
  int shape[2] = {2, 3};
  mlx_array a = mlx_array_new_data(data, shape, 2, MLX_FLOAT32);
  mlx_array ten = mlx_array_new_int(10);
  mlx_array b = mlx_array_new(), t = mlx_array_new(), c = mlx_array_new();

  mlx_multiply(&b, a, ten, cpu);  /* int32 scalar broadcast, promoted to float32 */
  mlx_transpose(&t, a, cpu);      /* a view: no copy */
  mlx_astype(&c, t, MLX_BFLOAT16, cpu);
  print("a", a);
  print("a * 10", b);
  print("transpose(a) as bfloat16", c);

  /* Errors never abort: they return non-zero with a message. */
  int bad[1] = {4};
  mlxc_set_errors_quiet(1);
  if (mlx_reshape(&c, a, bad, 1, cpu) != 0) printf("reshape to (4) fails: %s\n", mlxc_last_error());

  size_t peak = 0;
  mlx_get_peak_memory(&peak);
  printf("peak memory: %zu bytes\n", peak);
  mlx_array_free(a);
  mlx_array_free(ten);
  mlx_array_free(b);
  mlx_array_free(t);
  mlx_array_free(c);
  mlx_stream_free(cpu);
  return 0;
}
