/* The CUDA gather_qmm (mixture-of-experts products with affine-quantized experts) against the CPU
 * kernel: the same mlx_gather_qmm on the CPU and GPU streams from the same random host inputs
 * (seed printed). Decode rows (the quantized GEMV, 4/8 bits, groups 64/128), several rows per
 * expert and widths the GEMV does not take (dequantize + cuBLAS), float32/float16/bfloat16,
 * indices resident on the device, broadcast x, and the out-of-range error. Each result must have
 * been made on the GPU. Skips (passing) when no CUDA GPU is present. */
#include <stdint.h>
#include <time.h>

#include "core/array.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

#include "cuda_test_util.h"

static const mlx_dtype float_types[] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16};
static const char* dname(mlx_dtype d) {
  return d == MLX_FLOAT32 ? "f32" : d == MLX_FLOAT16 ? "f16" : d == MLX_BFLOAT16 ? "bf16" : "?";
}

/* A stack of E experts (E, N, K) quantized on the CPU in dtype dt: wq, scales, biases. */
typedef struct {
  mlx_array wq, scales, biases;
  mlx_optional_int group, bits;
} experts;

static experts make_experts(int E, int N, int K, int bits, int group, mlx_dtype dt) {
  int sw[3] = {E, N, K};
  experts x = {mlx_array_new(), mlx_array_new(), mlx_array_new(), {group, true}, {bits, true}};
  mlx_array w = rand_array(sw, 3, dt, -1, 1), none = mlx_array_new();
  mlx_vector_array q = mlx_vector_array_new();
  mlx_quantize(&q, w, x.group, x.bits, "affine", none, cpu);
  mlx_vector_array_get(&x.wq, q, 0);
  mlx_vector_array_get(&x.scales, q, 1);
  mlx_vector_array_get(&x.biases, q, 2);
  mlx_array_eval(x.wq);
  mlx_array_eval(x.scales);
  mlx_array_eval(x.biases);
  mlx_vector_array_free(q);
  mlx_array_free(w);
  return x;
}

static void free_experts(experts* x) {
  mlx_array_free(x->wq);
  mlx_array_free(x->scales);
  mlx_array_free(x->biases);
}

/* int32 indices of the given shape, values in [0, E). */
static mlx_array rand_indices(const int* shape, int nd, int E) {
  mlx_array f = rand_array(shape, nd, MLX_FLOAT32, 0, E), i = mlx_array_new();
  mlx_astype(&i, f, MLX_INT32, cpu);
  mlx_array_eval(i);
  mlx_array_free(f);
  return i;
}

static int gather(mlx_array* res, mlx_array x, const experts* e, mlx_array idx, mlx_stream s) {
  mlx_array none = mlx_array_new();
  return mlx_gather_qmm(res, x, e->wq, e->scales, e->biases, none, idx, true, e->group, e->bits, "affine", false, s);
}

/* float32 sums agree to ~1e-6 of their terms (the GEMM path dequantizes in float32 as the CPU);
 * half results are rounded once, and the GEMM path rounds the dequantized weights to the half
 * type first (as quantized_matmul's): normwise. */
static void check_gather(const char* what, mlx_array x, const experts* e, mlx_array idx, mlx_dtype dt) {
  mlx_array g = mlx_array_new(), r = mlx_array_new();
  CHECK_MSG(gather(&g, x, e, idx, gpu) == 0, "%s: GPU gather_qmm failed", what);
  CHECK_MSG(gather(&r, x, e, idx, cpu) == 0, "%s: CPU gather_qmm failed", what);
  CHECK_MSG(made_on_gpu(g), "%s: not made on the GPU", what);
  if (dt == MLX_FLOAT32)
    compare(what, g, r, 1e-4, 1e-3, 0);
  else
    compare(what, g, r, 0, 0, dt == MLX_BFLOAT16 ? 1e-2 : 3e-3);
  mlx_array_free(g);
  mlx_array_free(r);
}

/* A decode step of a MoE layer: T tokens, each with its top-k experts: x (T, 1, 1, K) and
 * indices (T, k) give (T, k, 1, N), one GEMV per token and expert. */
TEST(decode_rows_quantized_gemv) {
  const int bits[2] = {4, 8}, groups[2] = {64, 128};
  for (int t = 0; t < 3; t++)
    for (int b = 0; b < 2; b++) {
      mlx_dtype dt = float_types[t];
      int E = 8, N = 96, K = 512, sx[4] = {3, 1, 1, K}, si[2] = {3, 2};
      experts e = make_experts(E, N, K, bits[b], groups[b], dt);
      mlx_array x = rand_array(sx, 4, dt, -1, 1), idx = rand_indices(si, 2, E);
      char what[120];
      snprintf(what, sizeof what, "gather_qmm %s %d-bit group %d, 3 tokens x top-2", dname(dt), bits[b], groups[b]);
      check_gather(what, x, &e, idx, dt);
      mlx_array_free(x);
      mlx_array_free(idx);
      free_experts(&e);
    }
}

/* Several rows per expert (prefill of one sequence routed as a block), and a width the GEMV does
 * not take (3 bits, one row): the expert is dequantized and multiplied by cuBLAS. */
TEST(rows_by_dequantize_and_gemm) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    int E = 5, N = 40, K = 256, sx[3] = {4, 7, K}, si[1] = {4};
    experts e = make_experts(E, N, K, 4, 64, dt);
    mlx_array x = rand_array(sx, 3, dt, -1, 1), idx = rand_indices(si, 1, E);
    char what[120];
    snprintf(what, sizeof what, "gather_qmm %s 4-bit, 7 rows per expert", dname(dt));
    check_gather(what, x, &e, idx, dt);
    /* x shared by every expert (broadcast batch), 3-bit experts. */
    experts e3 = make_experts(E, N, K, 3, 32, dt);
    int sx1[3] = {1, 1, K}, si2[2] = {2, 3};
    mlx_array x1 = rand_array(sx1, 3, dt, -1, 1), idx2 = rand_indices(si2, 2, E);
    snprintf(what, sizeof what, "gather_qmm %s 3-bit, broadcast x, one row", dname(dt));
    check_gather(what, x1, &e3, idx2, dt);
    mlx_array tmp[] = {x, idx, x1, idx2};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) mlx_array_free(tmp[i]);
    free_experts(&e);
    free_experts(&e3);
  }
}

/* Indices computed on the GPU (a router's output lives there) are downloaded by the kernel. */
TEST(device_resident_indices) {
  int E = 6, N = 64, K = 256, sx[4] = {4, 1, 1, K}, si[2] = {4, 2};
  experts e = make_experts(E, N, K, 4, 64, MLX_BFLOAT16);
  mlx_array x = rand_array(sx, 4, MLX_BFLOAT16, -1, 1), f = rand_array(si, 2, MLX_FLOAT32, 0, E);
  mlx_array idx = mlx_array_new();
  mlx_astype(&idx, f, MLX_INT32, gpu);
  CHECK_MSG(made_on_gpu(idx), "the indices should be device-resident for this test");
  check_gather("gather_qmm bf16 with device-resident indices", x, &e, idx, MLX_BFLOAT16);
  mlx_array tmp[] = {x, f, idx};
  for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) mlx_array_free(tmp[i]);
  free_experts(&e);
}

/* An index past the last expert is an error on the GPU stream as on the CPU. */
TEST(out_of_range_index) {
  int E = 3, N = 32, K = 128, sx[4] = {2, 1, 1, K}, si[2] = {2, 1};
  experts e = make_experts(E, N, K, 4, 64, MLX_FLOAT16);
  int32_t bad[2] = {1, 3};
  mlx_array x = rand_array(sx, 4, MLX_FLOAT16, -1, 1), idx = mlx_array_new_data(bad, si, 2, MLX_INT32);
  mlx_array g = mlx_array_new();
  bool quiet = mlxc_set_errors_quiet(true);
  int status = gather(&g, x, &e, idx, gpu) || mlx_array_eval(g);
  mlxc_set_errors_quiet(quiet);
  CHECK_MSG(status != 0, "an out-of-range expert index must fail");
  CHECK_MSG(strstr(mlxc_last_error(), "out of range") != NULL, "error message: %s", mlxc_last_error());
  mlx_array tmp[] = {x, idx, g};
  for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) mlx_array_free(tmp[i]);
  free_experts(&e);
}

int main(void) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (count == 0) {
    printf("SKIP: no CUDA GPU (test_cuda_gather_qmm needs one)\n");
    return TEST_SUMMARY();
  }
  setenv("MLX_ENABLE_TF32", "0", 1);
  rng_state = (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ull;
  printf("seed %llu\n", (unsigned long long)rng_state);
  cpu = mlx_default_cpu_stream_new();
  gpu = mlx_default_gpu_stream_new();
  RUN(decode_rows_quantized_gemv);
  RUN(rows_by_dequantize_and_gemm);
  RUN(device_resident_indices);
  RUN(out_of_range_index);
  return TEST_SUMMARY();
}
