/* Decode with a few rows: M = 1, 2, 4, 8, 16 bfloat16 rows of x (batch-1 decode, speculative
 * verification, batch decode, short prefill) times a weight matrix of 4096x4096 and 14336x4096,
 * with bfloat16 weights (mlx_matmul with W^T) and 8- and 4-bit affine weights
 * (mlx_quantized_matmul, group 64, bfloat16 scales). GB/s counts the weight bytes read once per
 * call (packed words, scales, biases), whatever M; GFLOP/s is 2 M N K per second;
 * every call reads a different copy of the weights (over 512 MB in all), as a model's layers
 * would, so caches do not flatter the figures. References measured in the same run: memcpy on
 * one thread (read + write, as the other benchmarks quote it) and streaming reads on all
 * threads of the pool.
 *   bench_qgemv [M ...] [NxK ...]
 *     M: other row counts, e.g. 64 128 256 512 to find where sgemm takes over (build the library
 *        once more with -DMATMUL_HALF_ROWS_MAX=1 -DQMM_ROWS_MAX=1 in CMAKE_C_FLAGS for that path);
 *     NxK: other weight shapes, e.g. 896x896 4864x896 896x4864 151936x896 (a 0.5B model's). */
#include <stdio.h>

#include "backend/cpu/threadpool.h"
#include "bench_util.h"
#include "mlx/c/mlx.h"

#define REPS 30
#define SPAN_BYTES ((size_t)512 << 20)
/* Passes through the copies stop after this many seconds (slow paths with M > 1). */
#define CASE_SECONDS 2.0

static mlx_stream cpu;

typedef struct {
  const uint64_t* p;
  uint64_t sums[256];
} read_job;

static void read_chunk(void* ctx, int64_t begin, int64_t end) {
  read_job* j = ctx;
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t i = begin; i + 4 <= end; i += 4) {
    s0 += j->p[i];
    s1 += j->p[i + 1];
    s2 += j->p[i + 2];
    s3 += j->p[i + 3];
  }
  j->sums[(begin / 4096) & 255] += s0 + s1 + s2 + s3;
}

/* Bytes read per second by all pool threads streaming through `bytes`, best of `reps`. */
static double parallel_read_gbps(size_t bytes, int reps) {
  uint64_t* p = malloc(bytes);
  if (!p) return 0;
  memset(p, 1, bytes);
  read_job j = {p, {0}};
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t = bench_now();
    cpu_parallel_for((int64_t)(bytes / 8), 1 << 16, read_chunk, &j);
    t = bench_now() - t;
    if (t < best) best = t;
  }
  free(p);
  return bytes / best / 1e9;
}

/* A (rows, cols) array of dtype with deterministic contents in [-1, 1). */
static mlx_array filled(int rows, int cols, mlx_dtype dtype, unsigned seed) {
  size_t n = (size_t)rows * cols;
  float* v = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    v[i] = ((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  int shape[2] = {rows, cols};
  mlx_array f = mlx_array_new_data(v, shape, 2, MLX_FLOAT32), out = mlx_array_new();
  mlx_astype(&out, f, dtype, cpu);
  mlx_array_eval(out);
  mlx_array_free(f);
  free(v);
  return out;
}

typedef struct {
  int bits; /* 0: bfloat16 weights */
  mlx_array w, scales, biases;
} weights;

static weights make_weights(int N, int K, int bits, unsigned seed) {
  weights w = {bits, mlx_array_new(), mlx_array_new(), mlx_array_new()};
  mlx_array dense = filled(N, K, MLX_BFLOAT16, seed);
  if (!bits) {
    mlx_transpose(&w.w, dense, cpu); /* (K, N) view of the (N, K) rows: x @ W^T */
  } else {
    mlx_vector_array q = mlx_vector_array_new();
    mlx_optional_int gs = {64, true}, b = {bits, true};
    mlx_quantize(&q, dense, gs, b, "affine", mlx_array_new(), cpu);
    mlx_vector_array_get(&w.w, q, 0);
    mlx_vector_array_get(&w.scales, q, 1);
    mlx_vector_array_get(&w.biases, q, 2);
    mlx_array_eval(w.w);
    mlx_vector_array_free(q);
  }
  mlx_array_free(dense);
  return w;
}

static size_t weight_bytes(const weights* w) {
  if (!w->bits) return mlx_array_nbytes(w->w);
  return mlx_array_nbytes(w->w) + mlx_array_nbytes(w->scales) + mlx_array_nbytes(w->biases);
}

static int run(mlx_array* y, mlx_array x, const weights* w) {
  if (!w->bits) return mlx_matmul(y, x, w->w, cpu);
  mlx_optional_int gs = {64, true}, b = {w->bits, true};
  return mlx_quantized_matmul(y, x, w->w, w->scales, w->biases, true, gs, b, "affine", cpu);
}

/* Mean seconds of one call with x of M rows, over passes through every copy (the first warms
 * up); -1 on failure. */
static double time_rows(const weights* ws, int copies, int M, int K) {
  mlx_array x = filled(M, K, MLX_BFLOAT16, 99);
  double total = 0;
  int calls = 0;
  for (int r = 0; r < REPS + 1 && (r < 3 || total < CASE_SECONDS); r++)
    for (int i = 0; i < copies; i++) {
      mlx_array y = mlx_array_new();
      double t = bench_now();
      if (run(&y, x, &ws[i]) || mlx_array_eval(y)) {
        mlx_array_free(y);
        mlx_array_free(x);
        return -1;
      }
      t = bench_now() - t;
      if (r) { /* the first pass warms up */
        total += t;
        calls++;
      }
      mlx_array_free(y);
    }
  mlx_array_free(x);
  return total / calls;
}

static int row_counts[16] = {1, 2, 4, 8, 16}, n_row_counts = 5;

static void bench_case(int N, int K, int bits, double memcpy_gbps, double read_gbps) {
  weights first = make_weights(N, K, bits, 1);
  size_t bytes = weight_bytes(&first);
  int copies = (int)((SPAN_BYTES + bytes - 1) / bytes);
  weights* ws = malloc(sizeof(weights) * (size_t)copies);
  ws[0] = first;
  for (int i = 1; i < copies; i++) ws[i] = make_weights(N, K, bits, 1 + i);
  for (int c = 0; c < n_row_counts; c++) {
    int M = row_counts[c];
    double t = time_rows(ws, copies, M, K);
    if (t < 0) {
      printf("failed\n");
      break;
    }
    double gbps = bytes / t / 1e9;
    printf("  %5d x %d  %-9s M = %3d  %8.3f ms  %6.1f GB/s  = %4.0f%% of memcpy (1 thread), %4.0f%% "
           "of parallel read  %6.1f GFLOP/s\n", N, K, bits ? (bits == 8 ? "8-bit" : "4-bit") : "bfloat16",
           M, t * 1e3, gbps, 100 * gbps / memcpy_gbps, 100 * gbps / read_gbps,
           2.0 * M * N * K / t / 1e9);
    fflush(stdout);
  }
  for (int i = 0; i < copies; i++) {
    mlx_array_free(ws[i].w);
    mlx_array_free(ws[i].scales);
    mlx_array_free(ws[i].biases);
  }
  free(ws);
}

int main(int argc, char** argv) {
  int shapes[16][2] = {{4096, 4096}, {14336, 4096}}, n_shapes = 2, given_rows = 0, given_shapes = 0;
  for (int i = 1; i < argc; i++) {
    int N = 0, K = 0;
    if (sscanf(argv[i], "%dx%d", &N, &K) == 2 && N > 0 && K > 0 && given_shapes < 16) {
      shapes[given_shapes][0] = N;
      shapes[given_shapes++][1] = K;
    } else if (atoi(argv[i]) > 0 && given_rows < 16) {
      row_counts[given_rows++] = atoi(argv[i]);
    }
  }
  if (given_rows) n_row_counts = given_rows;
  if (given_shapes) n_shapes = given_shapes;
  cpu = mlx_default_cpu_stream_new();
  double memcpy_gbps = bench_memcpy_gbps((size_t)256 << 20, 10);
  double read_gbps = parallel_read_gbps((size_t)1 << 30, 10);
  printf("threads: %d\n", cpu_max_threads());
  printf("memcpy, 1 thread: %.1f GB/s (read + write); streaming read, %d threads: %.1f GB/s\n",
         memcpy_gbps, cpu_max_threads(), read_gbps);
  printf("bfloat16 x (M, K) times W^T, mean over up to %d passes (%.0f s) through %d MB of weights:\n",
         REPS, CASE_SECONDS, (int)(SPAN_BYTES >> 20));
  const int bits[3] = {0, 8, 4};
  for (int s = 0; s < n_shapes; s++)
    for (int b = 0; b < 3; b++) bench_case(shapes[s][0], shapes[s][1], bits[b], memcpy_gbps, read_gbps);
  mlx_stream_free(cpu);
  return 0;
}
