/* Graph overhead: the cost per node of building and evaluating 100,000 scalar ops, as a chain
 * (each add depends on the previous one) and as independent adds evaluated together.
 * Goal: under 2 µs per node, build and evaluation together. Usage: bench_graph [nodes] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mlx/c/mlx.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void report(const char* name, int n, double build_us, double eval_us, double free_us) {
  printf("%-12s %7d nodes: build %.3f us/node, eval %.3f us/node, total %.3f us/node "
         "(free %.3f us/node)\n",
         name, n, build_us / n, eval_us / n, (build_us + eval_us) / n, free_us / n);
}

/* x = ((0 + 1) + 1) + ...: each node waits for the previous one. */
static int bench_chain(int n, mlx_stream s) {
  mlx_array one = mlx_array_new_float(1.0f), x = mlx_array_new_float(0.0f);
  double t0 = now_us();
  for (int i = 0; i < n; i++)
    if (mlx_add(&x, x, one, s)) return 1;
  double t1 = now_us();
  if (mlx_array_eval(x)) return 1;
  double t2 = now_us();
  float v = 0;
  mlx_array_item_float32(&v, x);
  mlx_array_free(x);
  mlx_array_free(one);
  double t3 = now_us();
  report("chain", n, t1 - t0, t2 - t1, t3 - t2);
  if (v != (float)n) {
    fprintf(stderr, "chain: wrong result %g (expected %d)\n", v, n);
    return 1;
  }
  return 0;
}

/* out[i] = a + b for i < n, all evaluated by one mlx_eval. */
static int bench_independent(int n, mlx_stream s) {
  mlx_array a = mlx_array_new_float(2.0f), b = mlx_array_new_float(3.0f), out = mlx_array_new();
  mlx_vector_array outputs = mlx_vector_array_new();
  double t0 = now_us();
  for (int i = 0; i < n; i++)
    if (mlx_add(&out, a, b, s) || mlx_vector_array_append_value(outputs, out)) return 1;
  double t1 = now_us();
  if (mlx_eval(outputs)) return 1;
  double t2 = now_us();
  float v = 0;
  mlx_vector_array_get(&out, outputs, (size_t)n - 1);
  mlx_array_item_float32(&v, out);
  mlx_array_free(out);
  mlx_vector_array_free(outputs);
  mlx_array_free(a);
  mlx_array_free(b);
  double t3 = now_us();
  report("independent", n, t1 - t0, t2 - t1, t3 - t2);
  if (v != 5.0f) {
    fprintf(stderr, "independent: wrong result %g\n", v);
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  int n = argc > 1 ? atoi(argv[1]) : 100000;
  if (n <= 0) {
    fprintf(stderr, "usage: %s [nodes > 0]\n", argv[0]);
    return 2;
  }
  mlx_stream s = mlx_default_cpu_stream_new();
  /* A first small round warms up the allocator's cache and the page tables. */
  if (bench_chain(1000, s) || bench_independent(1000, s)) return 1;
  if (bench_chain(n, s) || bench_independent(n, s)) return 1;
  return 0;
}
