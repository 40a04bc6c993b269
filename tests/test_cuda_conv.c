/* The CUDA convolution (im2col + cuBLAS) against the CPU kernel: the same conv_general built on
 * the CPU and GPU streams from the same random host inputs (seed printed), in float32 (exact
 * fp32, MLX_ENABLE_TF32=0), float16 and bfloat16. 1-D/2-D/3-D, strides, asymmetric and negative
 * padding, kernel and input dilation (transposed convolutions), flip, groups and depthwise,
 * pointwise kernels, strided views as input and weight, a patch matrix built in several blocks,
 * NaN/inf, empty arrays, and the model shapes (Whisper's front end, a ViT patch embedding). Each
 * result must have been made on the GPU. Skips (passing) when no CUDA GPU is present. */
#include <stdint.h>
#include <time.h>

#include "core/array.h"
#include "mlx/c/mlx.h"
#include "test_util.h"

#include "cuda_test_util.h"

static const mlx_dtype float_types[] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16};
static const char* dname(mlx_dtype d) {
  return d == MLX_FLOAT32 ? "f32" : d == MLX_FLOAT16 ? "f16" : d == MLX_BFLOAT16 ? "bf16" : "?";
}

/* A conv_general's parameters, per spatial axis (unused axes ignored). */
typedef struct {
  int D;
  int stride[3], pad_lo[3], pad_hi[3], kernel_dilation[3], input_dilation[3];
  int groups;
  bool flip;
} conv_case;

/* The plain convolution over D axes: stride 1, no padding, no dilation, one group. */
static conv_case plain(int D) {
  conv_case c = {.D = D, .groups = 1};
  for (int i = 0; i < 3; i++) c.stride[i] = c.kernel_dilation[i] = c.input_dilation[i] = 1;
  return c;
}

static int conv(mlx_array* res, mlx_array x, mlx_array w, const conv_case* c, mlx_stream s) {
  size_t D = (size_t)c->D;
  return mlx_conv_general(res, x, w, c->stride, D, c->pad_lo, D, c->pad_hi, D, c->kernel_dilation, D,
                          c->input_dilation, D, c->groups, c->flip, s);
}

/* float32 sums of products of values in [-1, 1] agree to ~1e-6 relative to their terms; half
 * results are each rounded once from float32 sums, which may round either way on ties of the
 * two orders of summation: a few units in the last place at most, normwise. */
static void compare_conv(const char* what, mlx_array g, mlx_array r, mlx_dtype dt) {
  CHECK_MSG(made_on_gpu(g), "%s: not made on the GPU", what);
  if (dt == MLX_FLOAT32)
    compare(what, g, r, 1e-4, 1e-4, 0);
  else
    compare(what, g, r, 0, 0, dt == MLX_BFLOAT16 ? 1e-2 : 2e-3);
}

static void check_conv(const char* what, mlx_array x, mlx_array w, const conv_case* c, mlx_dtype dt) {
  mlx_array g = mlx_array_new(), r = mlx_array_new();
  CHECK_MSG(conv(&g, x, w, c, gpu) == 0, "%s: GPU conv failed", what);
  CHECK_MSG(conv(&r, x, w, c, cpu) == 0, "%s: CPU conv failed", what);
  compare_conv(what, g, r, dt);
  mlx_array_free(g);
  mlx_array_free(r);
}

/* Random x (xs, D + 2 dims) and w (ws) of dtype dt, convolved with c on both streams. */
static void check_shapes(const char* what, const int* xs, const int* ws, const conv_case* c, mlx_dtype dt) {
  mlx_array x = rand_array(xs, c->D + 2, dt, -1, 1), w = rand_array(ws, c->D + 2, dt, -1, 1);
  check_conv(what, x, w, c, dt);
  mlx_array_free(x);
  mlx_array_free(w);
}

TEST(conv1d_strides_padding_dilation_groups) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    char what[160];
    int xs[3] = {2, 37, 12}, ws[3] = {8, 5, 12};
    conv_case c = plain(1);
    snprintf(what, sizeof what, "conv1d %s plain", dname(dt));
    check_shapes(what, xs, ws, &c, dt);
    c.stride[0] = 3;
    c.pad_lo[0] = 2;
    c.pad_hi[0] = 4;
    c.kernel_dilation[0] = 2;
    snprintf(what, sizeof what, "conv1d %s stride 3, padding (2, 4), dilation 2", dname(dt));
    check_shapes(what, xs, ws, &c, dt);
    c.groups = 3;
    int wg[3] = {9, 5, 4};
    snprintf(what, sizeof what, "conv1d %s 3 groups, strided and padded", dname(dt));
    check_shapes(what, xs, wg, &c, dt);
    c.flip = true;
    snprintf(what, sizeof what, "conv1d %s 3 groups, flipped taps", dname(dt));
    check_shapes(what, xs, wg, &c, dt);
    /* Negative padding crops the input. */
    conv_case crop = plain(1);
    crop.pad_lo[0] = -3;
    crop.pad_hi[0] = -1;
    snprintf(what, sizeof what, "conv1d %s padding (-3, -1)", dname(dt));
    check_shapes(what, xs, ws, &crop, dt);
  }
}

TEST(depthwise_and_pointwise) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    char what[160];
    /* One channel per group (LFM2's causal short conv: kernel 3, padding 2 below). */
    int xs[3] = {2, 29, 64}, ws[3] = {64, 3, 1};
    conv_case c = plain(1);
    c.groups = 64;
    c.pad_lo[0] = 2;
    snprintf(what, sizeof what, "conv1d %s depthwise causal", dname(dt));
    check_shapes(what, xs, ws, &c, dt);
    /* Two outputs per input channel. */
    int wm[3] = {128, 4, 1};
    c.pad_hi[0] = 1;
    c.stride[0] = 2;
    snprintf(what, sizeof what, "conv1d %s depthwise, multiplier 2, stride 2", dname(dt));
    check_shapes(what, xs, wm, &c, dt);
    /* 2-D depthwise 3x3 (MobileNet-style). */
    int x2[4] = {1, 15, 11, 16}, w2[4] = {16, 3, 3, 1};
    conv_case d2 = plain(2);
    d2.groups = 16;
    d2.pad_lo[0] = d2.pad_hi[0] = d2.pad_lo[1] = d2.pad_hi[1] = 1;
    snprintf(what, sizeof what, "conv2d %s depthwise 3x3", dname(dt));
    check_shapes(what, x2, w2, &d2, dt);
    /* 1x1 kernels read the input as the patch matrix (no im2col), with and without groups. */
    int xp[4] = {2, 7, 9, 24}, wp[4] = {40, 1, 1, 24}, wpg[4] = {40, 1, 1, 6};
    conv_case p = plain(2);
    snprintf(what, sizeof what, "conv2d %s 1x1", dname(dt));
    check_shapes(what, xp, wp, &p, dt);
    p.groups = 4;
    snprintf(what, sizeof what, "conv2d %s 1x1, 4 groups", dname(dt));
    check_shapes(what, xp, wpg, &p, dt);
    /* 1x1 with stride 2: im2col picks every other row. */
    p = plain(2);
    p.stride[0] = p.stride[1] = 2;
    snprintf(what, sizeof what, "conv2d %s 1x1 stride 2", dname(dt));
    check_shapes(what, xp, wp, &p, dt);
  }
}

TEST(conv2d_and_conv3d_general) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    char what[160];
    int xs[4] = {2, 13, 17, 6}, ws[4] = {10, 3, 4, 3};
    conv_case c = plain(2);
    c.stride[0] = 2;
    c.pad_lo[0] = 1;
    c.pad_hi[0] = 2;
    c.pad_lo[1] = 3;
    c.kernel_dilation[1] = 2;
    c.groups = 2;
    snprintf(what, sizeof what, "conv2d %s stride (2, 1), asymmetric padding, dilation (1, 2), 2 groups",
             dname(dt));
    check_shapes(what, xs, ws, &c, dt);
    c.flip = true;
    c.input_dilation[0] = 2;
    c.input_dilation[1] = 3;
    snprintf(what, sizeof what, "conv2d %s input dilation (2, 3), flipped", dname(dt));
    check_shapes(what, xs, ws, &c, dt);
    int x3[5] = {2, 5, 6, 7, 4}, w3[5] = {6, 3, 2, 3, 2};
    conv_case d3 = plain(3);
    d3.groups = 2;
    d3.stride[1] = 2;
    d3.pad_lo[0] = d3.pad_hi[0] = 1;
    d3.pad_lo[2] = d3.pad_hi[2] = 2;
    d3.kernel_dilation[2] = 2;
    snprintf(what, sizeof what, "conv3d %s 2 groups, stride, padding, dilation", dname(dt));
    check_shapes(what, x3, w3, &d3, dt);
    d3.flip = true;
    d3.input_dilation[0] = 2;
    snprintf(what, sizeof what, "conv3d %s flipped, input dilation 2", dname(dt));
    check_shapes(what, x3, w3, &d3, dt);
  }
}

/* Transposed convolutions are conv_general with input dilation and flipped taps. */
TEST(conv_transpose) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    char what[160];
    int xs[3] = {2, 19, 8}, ws[3] = {6, 4, 8};
    mlx_array x = rand_array(xs, 3, dt, -1, 1), w = rand_array(ws, 3, dt, -1, 1);
    mlx_array g = mlx_array_new(), r = mlx_array_new();
    snprintf(what, sizeof what, "conv_transpose1d %s stride 2, padding 1, output padding 1", dname(dt));
    CHECK_MSG(mlx_conv_transpose1d(&g, x, w, 2, 1, 1, 1, 1, gpu) == 0, "%s", what);
    mlx_conv_transpose1d(&r, x, w, 2, 1, 1, 1, 1, cpu);
    compare_conv(what, g, r, dt);
    int x2[4] = {1, 6, 5, 8}, w2[4] = {4, 3, 3, 4};
    mlx_array x2a = rand_array(x2, 4, dt, -1, 1), w2a = rand_array(w2, 4, dt, -1, 1);
    snprintf(what, sizeof what, "conv_transpose2d %s stride (2, 3), dilation (1, 2), 2 groups", dname(dt));
    CHECK_MSG(mlx_conv_transpose2d(&g, x2a, w2a, 2, 3, 1, 0, 1, 2, 0, 1, 2, gpu) == 0, "%s", what);
    mlx_conv_transpose2d(&r, x2a, w2a, 2, 3, 1, 0, 1, 2, 0, 1, 2, cpu);
    compare_conv(what, g, r, dt);
    mlx_array tmp[] = {x, w, x2a, w2a, g, r};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) mlx_array_free(tmp[i]);
  }
}

/* Inputs and weights as views: (N, C, L) and (O, C, K) checkpoints swapped to channels last, a
 * stepped slice of the input. */
TEST(strided_inputs_and_weights) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    char what[160];
    int xs[3] = {2, 12, 31}, ws[3] = {8, 12, 3};
    mlx_array xc = rand_array(xs, 3, dt, -1, 1), wc = rand_array(ws, 3, dt, -1, 1);
    mlx_array x = mlx_array_new(), w = mlx_array_new(), xstep = mlx_array_new();
    mlx_swapaxes(&x, xc, 1, 2, cpu);
    mlx_swapaxes(&w, wc, 1, 2, cpu);
    conv_case c = plain(1);
    c.pad_lo[0] = c.pad_hi[0] = 1;
    c.stride[0] = 2;
    snprintf(what, sizeof what, "conv1d %s transposed input and weight", dname(dt));
    check_conv(what, x, w, &c, dt);
    int start[3] = {0, 1, 0}, stop[3] = {2, 31, 12}, step[3] = {1, 2, 1};
    mlx_slice(&xstep, x, start, 3, stop, 3, step, 3, cpu);
    snprintf(what, sizeof what, "conv1d %s stepped slice of a transposed input", dname(dt));
    check_conv(what, xstep, w, &c, dt);
    /* A pointwise kernel on a strided input goes through im2col too. */
    int w1s[3] = {5, 1, 12};
    mlx_array w1 = rand_array(w1s, 3, dt, -1, 1);
    conv_case p = plain(1);
    snprintf(what, sizeof what, "conv1d %s 1x1 on a transposed input", dname(dt));
    check_conv(what, x, w1, &p, dt);
    mlx_array tmp[] = {xc, wc, x, w, xstep, w1};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) mlx_array_free(tmp[i]);
  }
}

/* Whisper's audio front end: conv1d 80 -> d (kernel 3, padding 1), then d -> d (stride 2) over
 * 3000 mel frames (d = 384, tiny/base widths), and a ViT/SigLIP patch embedding: conv2d 3 -> 768
 * with kernel = stride = 16 (224 px) and 14 (SigLIP, 224 px). */
TEST(model_shapes) {
  for (int t = 0; t < 3; t++) {
    mlx_dtype dt = float_types[t];
    char what[160];
    int mel[3] = {1, 3000, 80}, w1s[3] = {384, 3, 80}, w2s[3] = {384, 3, 384};
    mlx_array x = rand_array(mel, 3, dt, -1, 1), w1 = rand_array(w1s, 3, dt, -0.2, 0.2);
    mlx_array w2 = rand_array(w2s, 3, dt, -0.1, 0.1);
    mlx_array h_g = mlx_array_new(), h_c = mlx_array_new(), y_g = mlx_array_new(), y_c = mlx_array_new();
    snprintf(what, sizeof what, "whisper conv1 %s", dname(dt));
    CHECK_MSG(mlx_conv1d(&h_g, x, w1, 1, 1, 1, 1, gpu) == 0, "%s", what);
    mlx_conv1d(&h_c, x, w1, 1, 1, 1, 1, cpu);
    compare_conv(what, h_g, h_c, dt);
    /* The second conv reads the first's output where it lives (device vs host): both from the CPU
     * result so that only this conv's differences are compared. */
    snprintf(what, sizeof what, "whisper conv2 %s (stride 2)", dname(dt));
    CHECK_MSG(mlx_conv1d(&y_g, h_c, w2, 2, 1, 1, 1, gpu) == 0, "%s", what);
    mlx_conv1d(&y_c, h_c, w2, 2, 1, 1, 1, cpu);
    compare_conv(what, y_g, y_c, dt);
    CHECK(mlx_array_ndim(y_g) == 3 && mlx_array_shape(y_g)[1] == 1500 && mlx_array_shape(y_g)[2] == 384);
    const int patch[2] = {16, 14};
    for (int k = 0; k < 2; k++) {
      int P = patch[k], img[4] = {2, 224, 224, 3}, wps[4] = {768, P, P, 3};
      mlx_array im = rand_array(img, 4, dt, -1, 1), wp = rand_array(wps, 4, dt, -0.1, 0.1);
      mlx_array g = mlx_array_new(), r = mlx_array_new();
      snprintf(what, sizeof what, "patch embedding %s %dx%d", dname(dt), P, P);
      CHECK_MSG(mlx_conv2d(&g, im, wp, P, P, 0, 0, 1, 1, 1, gpu) == 0, "%s", what);
      mlx_conv2d(&r, im, wp, P, P, 0, 0, 1, 1, 1, cpu);
      compare_conv(what, g, r, dt);
      mlx_array tmp[] = {im, wp, g, r};
      for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) mlx_array_free(tmp[i]);
    }
    mlx_array tmp[] = {x, w1, w2, h_g, h_c, y_g, y_c};
    for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++) mlx_array_free(tmp[i]);
  }
}

/* A patch matrix larger than the scratch block (64 MiB): built and multiplied in several blocks. */
TEST(patch_matrix_in_blocks) {
  int xs[4] = {1, 160, 160, 96}, ws[4] = {32, 3, 3, 96};
  conv_case c = plain(2);
  c.pad_lo[0] = c.pad_hi[0] = c.pad_lo[1] = c.pad_hi[1] = 1;
  check_shapes("conv2d f32 3x3 over 160x160x96 (several im2col blocks)", xs, ws, &c, MLX_FLOAT32);
}

/* NaN and infinities propagate to the outputs that read them, as in the CPU's GEMM. */
TEST(nan_and_inf) {
  int xs[3] = {1, 16, 4}, ws[3] = {3, 3, 4};
  float xv[64], wv[36];
  for (int i = 0; i < 64; i++) xv[i] = (float)uniform(-1, 1);
  for (int i = 0; i < 36; i++) wv[i] = (float)uniform(0.1, 1);  /* positive: inf stays +inf */
  xv[5 * 4 + 1] = NAN;
  xv[11 * 4 + 2] = INFINITY;
  mlx_array x = mlx_array_new_data(xv, xs, 3, MLX_FLOAT32), w = mlx_array_new_data(wv, ws, 3, MLX_FLOAT32);
  conv_case c = plain(1);
  c.pad_lo[0] = c.pad_hi[0] = 1;
  check_conv("conv1d f32 with NaN and inf inputs", x, w, &c, MLX_FLOAT32);
  mlx_array_free(x);
  mlx_array_free(w);
}

/* No input positions (every tap reads padding), no channels, no batch: zeros or an empty result,
 * still from the GPU. */
TEST(empty_arrays) {
  conv_case c = plain(1);
  c.pad_lo[0] = c.pad_hi[0] = 2;
  int x0[3] = {2, 0, 4}, w0[3] = {3, 3, 4};
  check_shapes("conv1d f32 over 0 positions, padded", x0, w0, &c, MLX_FLOAT32);
  int xc[3] = {2, 9, 0}, wc[3] = {3, 3, 0};
  check_shapes("conv1d f32 with 0 input channels", xc, wc, &c, MLX_FLOAT32);
  int xn[3] = {0, 9, 4};
  check_shapes("conv1d f16 with batch 0", xn, w0, &c, MLX_FLOAT16);
}

int main(void) {
  int count = 0;
  mlx_device_count(&count, MLX_GPU);
  if (count == 0) {
    printf("SKIP: no CUDA GPU (test_cuda_conv needs one)\n");
    return TEST_SUMMARY();
  }
  /* float32 products exact (not TF32), so float32 compares tightly with the CPU. */
  setenv("MLX_ENABLE_TF32", "0", 1);
  rng_state = (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15ull;
  printf("seed %llu\n", (unsigned long long)rng_state);
  cpu = mlx_default_cpu_stream_new();
  gpu = mlx_default_gpu_stream_new();
  RUN(conv1d_strides_padding_dilation_groups);
  RUN(depthwise_and_pointwise);
  RUN(conv2d_and_conv3d_general);
  RUN(conv_transpose);
  RUN(strided_inputs_and_weights);
  RUN(model_shapes);
  RUN(patch_matrix_in_blocks);
  RUN(nan_and_inf);
  RUN(empty_arrays);
  return TEST_SUMMARY();
}
