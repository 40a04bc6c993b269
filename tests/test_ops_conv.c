/* Convolutions against references computed here in double precision: forward convolutions by
 * their definition (dilate the input, pad or crop it, optionally reverse the kernel, slide the
 * window), transposed convolutions as the scatter-add of input times weight (the gradient of a
 * convolution with respect to its input). 1-D/2-D/3-D, strides, symmetric and asymmetric
 * padding, dilations, groups and depthwise, every float dtype, strided inputs, empty arrays, and
 * the error paths. */
#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/half.h"
#include "test_util.h"

static mlx_stream cpu;

static unsigned rng_state = 7;
static double drand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return ((rng_state >> 8) & 0xffff) / 32768.0 - 1.0;
}

/* Rounds v to what `dtype` stores, so references use exactly the values the op sees. */
static double round_to(mlx_dtype dtype, double v) {
  switch (dtype) {
    case MLX_FLOAT16: return mlxc_float16_to_float32(mlxc_float32_to_float16((float)v));
    case MLX_BFLOAT16: return mlxc_bfloat16_to_float32(mlxc_float32_to_bfloat16((float)v));
    case MLX_FLOAT32: return (float)v;
    default: return v;
  }
}

static size_t shape_size(const int* shape, int ndim) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  return n;
}

/* An array of `dtype` with random values in [-1, 1]; host receives them (rounded) as doubles. */
static mlx_array random_array(mlx_dtype dtype, const int* shape, int ndim, double* host) {
  size_t n = shape_size(shape, ndim);
  unsigned char* bytes = malloc(n * 8 + 1);
  for (size_t i = 0; i < n; i++) {
    double v = round_to(dtype, drand());
    host[i] = v;
    switch (dtype) {
      case MLX_FLOAT16: ((uint16_t*)bytes)[i] = mlxc_float32_to_float16((float)v); break;
      case MLX_BFLOAT16: ((uint16_t*)bytes)[i] = mlxc_float32_to_bfloat16((float)v); break;
      case MLX_FLOAT32: ((float*)bytes)[i] = (float)v; break;
      default: ((double*)bytes)[i] = v; break;
    }
  }
  mlx_array a = mlx_array_new_data(bytes, shape, ndim, dtype);
  free(bytes);
  return a;
}

/* The values of a (evaluated, row-contiguous result) as doubles. */
static void read_doubles(mlx_array a, double* out) {
  mlx_array_eval(a);
  size_t n = mlx_array_size(a);
  switch (mlx_array_dtype(a)) {
    case MLX_FLOAT16: {
      const uint16_t* p = mlx_array_data_float16(a);
      for (size_t i = 0; i < n; i++) out[i] = mlxc_float16_to_float32(p[i]);
      break;
    }
    case MLX_BFLOAT16: {
      const uint16_t* p = mlx_array_data_bfloat16(a);
      for (size_t i = 0; i < n; i++) out[i] = mlxc_bfloat16_to_float32(p[i]);
      break;
    }
    case MLX_FLOAT32: {
      const float* p = mlx_array_data_float32(a);
      for (size_t i = 0; i < n; i++) out[i] = p[i];
      break;
    }
    default: {
      const double* p = mlx_array_data_float64(a);
      for (size_t i = 0; i < n; i++) out[i] = p[i];
      break;
    }
  }
}

/* A convolution problem over 3 spatial axes; lower-dimensional cases leave the leading axes at
 * size 1 (the 1-D axis is spatial axis 2, the 2-D axes 1 and 2). Output sizes are derived by the
 * reference. */
typedef struct {
  int D;                      /* spatial axes the op sees */
  int N, C, O, G;
  int S[3], K[3];
  int stride[3], lo[3], hi[3], kdil[3], idil[3];
  bool flip;
  int Q[3];                   /* set by the reference */
} conv_case;

static conv_case make_case(int D, int N, int C, int O, int G, const int* S, const int* K) {
  conv_case c = {.D = D, .N = N, .C = C, .O = O, .G = G};
  for (int i = 0; i < 3; i++) {
    int j = i - (3 - D);
    c.S[i] = j >= 0 ? S[j] : 1;
    c.K[i] = j >= 0 ? K[j] : 1;
    c.stride[i] = c.kdil[i] = c.idil[i] = 1;
  }
  return c;
}

/* Per-axis option of the op's D axes written into the 3-axis case. */
static void set_axes(int* dst, int D, const int* v) {
  for (int j = 0; j < D; j++) dst[3 - D + j] = v[j];
}

/* Forward convolution by definition. x (N, S0, S1, S2, C), w (O, K0, K1, K2, C/G); returns the
 * output (N, Q0, Q1, Q2, O) (caller frees) and sets c->Q. */
static double* ref_conv(conv_case* c, const double* x, const double* w) {
  int P[3], Cg = c->C / c->G, Og = c->O / c->G;
  for (int i = 0; i < 3; i++) {
    int dilated = c->S[i] ? (c->S[i] - 1) * c->idil[i] + 1 : 0;
    P[i] = dilated + c->lo[i] + c->hi[i];
    c->Q[i] = (P[i] - (c->K[i] - 1) * c->kdil[i] - 1) / c->stride[i] + 1;
  }
  /* 1. The dilated, padded (or cropped) input. */
  double* xp = calloc((size_t)c->N * P[0] * P[1] * P[2] * c->C + 1, sizeof(double));
  for (int n = 0; n < c->N; n++)
    for (int a = 0; a < c->S[0]; a++)
      for (int b = 0; b < c->S[1]; b++)
        for (int d = 0; d < c->S[2]; d++) {
          int ja = a * c->idil[0] + c->lo[0], jb = b * c->idil[1] + c->lo[1];
          int jd = d * c->idil[2] + c->lo[2];
          if (ja < 0 || ja >= P[0] || jb < 0 || jb >= P[1] || jd < 0 || jd >= P[2]) continue;
          for (int ch = 0; ch < c->C; ch++)
            xp[((((size_t)n * P[0] + ja) * P[1] + jb) * P[2] + jd) * c->C + ch] =
                x[((((size_t)n * c->S[0] + a) * c->S[1] + b) * c->S[2] + d) * c->C + ch];
        }
  /* 2. Slide the (possibly reversed) kernel over it. */
  double* y = calloc((size_t)c->N * c->Q[0] * c->Q[1] * c->Q[2] * c->O + 1, sizeof(double));
  for (int n = 0; n < c->N; n++)
    for (int qa = 0; qa < c->Q[0]; qa++)
      for (int qb = 0; qb < c->Q[1]; qb++)
        for (int qd = 0; qd < c->Q[2]; qd++)
          for (int o = 0; o < c->O; o++) {
            int g = o / Og;
            double s = 0;
            for (int ka = 0; ka < c->K[0]; ka++)
              for (int kb = 0; kb < c->K[1]; kb++)
                for (int kd = 0; kd < c->K[2]; kd++) {
                  int wa = c->flip ? c->K[0] - 1 - ka : ka, wb = c->flip ? c->K[1] - 1 - kb : kb;
                  int wd = c->flip ? c->K[2] - 1 - kd : kd;
                  int ia = qa * c->stride[0] + ka * c->kdil[0];
                  int ib = qb * c->stride[1] + kb * c->kdil[1];
                  int id = qd * c->stride[2] + kd * c->kdil[2];
                  for (int ch = 0; ch < Cg; ch++)
                    s += xp[((((size_t)n * P[0] + ia) * P[1] + ib) * P[2] + id) * c->C + g * Cg + ch] *
                         w[((((size_t)o * c->K[0] + wa) * c->K[1] + wb) * c->K[2] + wd) * Cg + ch];
                }
            y[((((size_t)n * c->Q[0] + qa) * c->Q[1] + qb) * c->Q[2] + qd) * c->O + o] = s;
          }
  free(xp);
  return y;
}

/* Transposed convolution as a scatter: out[n, i * stride + k * dil - pad, o] += x[n, i, c] *
 * w[o, k, c] within each group. Uses c->stride, c->lo (as padding), c->kdil, c->hi (as
 * output_padding); sets c->Q. */
static double* ref_conv_transpose(conv_case* c, const double* x, const double* w) {
  int Cg = c->C / c->G, Og = c->O / c->G;
  for (int i = 0; i < 3; i++)
    c->Q[i] = (c->S[i] - 1) * c->stride[i] - 2 * c->lo[i] + (c->K[i] - 1) * c->kdil[i] + 1 + c->hi[i];
  double* y = calloc((size_t)c->N * c->Q[0] * c->Q[1] * c->Q[2] * c->O + 1, sizeof(double));
  for (int n = 0; n < c->N; n++)
    for (int a = 0; a < c->S[0]; a++)
      for (int b = 0; b < c->S[1]; b++)
        for (int d = 0; d < c->S[2]; d++)
          for (int ka = 0; ka < c->K[0]; ka++)
            for (int kb = 0; kb < c->K[1]; kb++)
              for (int kd = 0; kd < c->K[2]; kd++) {
                int ja = a * c->stride[0] + ka * c->kdil[0] - c->lo[0];
                int jb = b * c->stride[1] + kb * c->kdil[1] - c->lo[1];
                int jd = d * c->stride[2] + kd * c->kdil[2] - c->lo[2];
                if (ja < 0 || ja >= c->Q[0] || jb < 0 || jb >= c->Q[1] || jd < 0 || jd >= c->Q[2])
                  continue;
                for (int o = 0; o < c->O; o++) {
                  int g = o / Og;
                  for (int ch = 0; ch < Cg; ch++)
                    y[((((size_t)n * c->Q[0] + ja) * c->Q[1] + jb) * c->Q[2] + jd) * c->O + o] +=
                        x[((((size_t)n * c->S[0] + a) * c->S[1] + b) * c->S[2] + d) * c->C + g * Cg + ch] *
                        w[((((size_t)o * c->K[0] + ka) * c->K[1] + kb) * c->K[2] + kd) * Cg + ch];
                }
              }
  return y;
}

/* The op's input and weight shapes for a case (D spatial axes). */
static void op_shapes(const conv_case* c, int* xs, int* ws) {
  xs[0] = c->N;
  ws[0] = c->O;
  for (int j = 0; j < c->D; j++) {
    xs[1 + j] = c->S[3 - c->D + j];
    ws[1 + j] = c->K[3 - c->D + j];
  }
  xs[c->D + 1] = c->C;
  ws[c->D + 1] = c->C / c->G;
}

/* Error allowed for a sum of `terms` products of values in [-1, 1] accumulated in float32 (or
 * float64) and stored in dtype. */
static double tolerance(mlx_dtype dtype, int terms, double ref) {
  double out_eps = dtype == MLX_BFLOAT16 ? 1.0 / 256 : dtype == MLX_FLOAT16 ? 1.0 / 2048 : 0;
  double acc_eps = dtype == MLX_FLOAT64 ? 1e-15 : 1.2e-7;
  return fabs(ref) * out_eps + terms * acc_eps * 4 + 1e-12;
}

typedef enum { OP_NAMED, OP_GENERAL, OP_TRANSPOSE } op_kind;

/* Runs the case through the op (conv1d/2d/3d, conv_general or conv_transpose*d) on random data
 * of `dtype` and compares with the reference; returns the number of mismatches. */
static int run_case(conv_case c, mlx_dtype dtype, op_kind kind) {
  int xs[5], ws[5];
  op_shapes(&c, xs, ws);
  size_t nx = shape_size(xs, c.D + 2), nw = shape_size(ws, c.D + 2);
  double* x = malloc(sizeof(double) * nx + 8);
  double* w = malloc(sizeof(double) * nw + 8);
  mlx_array X = random_array(dtype, xs, c.D + 2, x), W = random_array(dtype, ws, c.D + 2, w);
  mlx_array Y = mlx_array_new();
  int D = c.D, o = 3 - D, rc;
  double* ref = kind == OP_TRANSPOSE ? ref_conv_transpose(&c, x, w) : ref_conv(&c, x, w);
  if (kind == OP_GENERAL) {
    rc = mlx_conv_general(&Y, X, W, c.stride + o, D, c.lo + o, D, c.hi + o, D, c.kdil + o, D,
                          c.idil + o, D, c.G, c.flip, cpu);
  } else if (kind == OP_TRANSPOSE) {
    int* s = c.stride + o, *p = c.lo + o, *d = c.kdil + o, *op = c.hi + o;
    rc = D == 1   ? mlx_conv_transpose1d(&Y, X, W, s[0], p[0], d[0], op[0], c.G, cpu)
         : D == 2 ? mlx_conv_transpose2d(&Y, X, W, s[0], s[1], p[0], p[1], d[0], d[1], op[0],
                                         op[1], c.G, cpu)
                  : mlx_conv_transpose3d(&Y, X, W, s[0], s[1], s[2], p[0], p[1], p[2], d[0], d[1],
                                         d[2], op[0], op[1], op[2], c.G, cpu);
  } else {
    int* s = c.stride + o, *p = c.lo + o, *d = c.kdil + o;
    rc = D == 1   ? mlx_conv1d(&Y, X, W, s[0], p[0], d[0], c.G, cpu)
         : D == 2 ? mlx_conv2d(&Y, X, W, s[0], s[1], p[0], p[1], d[0], d[1], c.G, cpu)
                  : mlx_conv3d(&Y, X, W, s[0], s[1], s[2], p[0], p[1], p[2], d[0], d[1], d[2],
                               c.G, cpu);
  }
  int bad = 0;
  CHECK_EQ_INT(rc, 0);
  if (rc == 0) {
    CHECK_EQ_INT(mlx_array_dtype(Y), dtype);
    CHECK_EQ_INT(mlx_array_ndim(Y), D + 2);
    bool shape_ok = mlx_array_dim(Y, 0) == c.N && mlx_array_dim(Y, D + 1) == c.O;
    for (int j = 0; j < D; j++) shape_ok = shape_ok && mlx_array_dim(Y, 1 + j) == c.Q[o + j];
    CHECK(shape_ok);
    if (shape_ok) {
      size_t ny = mlx_array_size(Y);
      double* got = malloc(sizeof(double) * ny + 8);
      read_doubles(Y, got);
      int terms = c.K[0] * c.K[1] * c.K[2] * (c.C / c.G);
      for (size_t i = 0; i < ny; i++) {
        if (fabs(got[i] - ref[i]) > tolerance(dtype, terms, ref[i])) {
          if (bad++ < 3)
            fprintf(stderr, "  element %zu: got %.9g, expected %.9g (dtype %d)\n", i, got[i],
                    ref[i], (int)dtype);
        }
      }
      free(got);
    }
  }
  CHECK_EQ_INT(bad, 0);
  free(x);
  free(w);
  free(ref);
  mlx_array_free(X);
  mlx_array_free(W);
  mlx_array_free(Y);
  return bad;
}

static const mlx_dtype float_dtypes[4] = {MLX_FLOAT32, MLX_FLOAT64, MLX_FLOAT16, MLX_BFLOAT16};

TEST(test_conv1d_every_dtype_batch_padding) {
  int S[1] = {11}, K[1] = {3}, pad[1] = {1};
  for (int d = 0; d < 4; d++) {
    conv_case c = make_case(1, 2, 5, 7, 1, S, K);
    set_axes(c.lo, 1, pad);
    set_axes(c.hi, 1, pad);
    run_case(c, float_dtypes[d], OP_NAMED);
  }
}

TEST(test_conv1d_stride_dilation) {
  int S[1] = {23}, K[1] = {4}, st[1] = {2}, pad[1] = {3}, dil[1] = {2};
  for (int d = 0; d < 4; d++) {
    conv_case c = make_case(1, 3, 6, 5, 1, S, K);
    set_axes(c.stride, 1, st);
    set_axes(c.lo, 1, pad);
    set_axes(c.hi, 1, pad);
    set_axes(c.kdil, 1, dil);
    run_case(c, float_dtypes[d], OP_NAMED);
  }
}

TEST(test_conv1d_whisper_front_end_shapes) {
  /* Whisper's two front-end convolutions, kernel 3 padding 1, strides 1 then 2 (scaled down). */
  int S[1] = {60}, K[1] = {3}, pad[1] = {1}, st2[1] = {2};
  conv_case c = make_case(1, 1, 16, 24, 1, S, K);
  set_axes(c.lo, 1, pad);
  set_axes(c.hi, 1, pad);
  run_case(c, MLX_FLOAT32, OP_NAMED);
  run_case(c, MLX_FLOAT16, OP_NAMED);
  set_axes(c.stride, 1, st2);
  run_case(c, MLX_FLOAT32, OP_NAMED);
  run_case(c, MLX_BFLOAT16, OP_NAMED);
}

TEST(test_conv1d_groups_and_depthwise) {
  int S[1] = {13}, K[1] = {3}, pad[1] = {2};
  struct { int C, O, G; } shapes[4] = {{6, 4, 2}, {8, 8, 8}, {4, 8, 4}, {12, 6, 3}};
  for (int s = 0; s < 4; s++)
    for (int d = 0; d < 4; d++) {
      conv_case c = make_case(1, 2, shapes[s].C, shapes[s].O, shapes[s].G, S, K);
      set_axes(c.lo, 1, pad);
      set_axes(c.hi, 1, pad);
      run_case(c, float_dtypes[d], OP_NAMED);
    }
}

TEST(test_conv1d_single_input_channel) {
  /* One channel, many outputs: the direct path with a channel multiplier of 32. */
  int S[1] = {40}, K[1] = {5}, st[1] = {3};
  conv_case c = make_case(1, 2, 1, 32, 1, S, K);
  set_axes(c.stride, 1, st);
  run_case(c, MLX_FLOAT32, OP_NAMED);
  run_case(c, MLX_FLOAT64, OP_NAMED);
}

TEST(test_conv2d_stride_padding_dilation_groups) {
  int S[2] = {9, 10}, K[2] = {3, 2}, st[2] = {2, 1}, pad[2] = {1, 2}, dil[2] = {1, 2};
  int groups[3] = {1, 3, 6};
  for (int gi = 0; gi < 3; gi++)
    for (int d = 0; d < 4; d++) {
      conv_case c = make_case(2, 2, 6, 6, groups[gi], S, K);
      set_axes(c.stride, 2, st);
      set_axes(c.lo, 2, pad);
      set_axes(c.hi, 2, pad);
      set_axes(c.kdil, 2, dil);
      run_case(c, float_dtypes[d], OP_NAMED);
    }
}

TEST(test_conv2d_patch_embedding) {
  /* Vision towers: kernel = stride, no padding (a 32x32x3 image in 8x8 patches). */
  int S[2] = {32, 32}, K[2] = {8, 8}, st[2] = {8, 8};
  for (int d = 0; d < 4; d++) {
    conv_case c = make_case(2, 2, 3, 16, 1, S, K);
    set_axes(c.stride, 2, st);
    run_case(c, float_dtypes[d], OP_NAMED);
  }
}

TEST(test_conv2d_pointwise) {
  /* 1x1 kernels read the input as the patch matrix, with and without groups. */
  int S[2] = {5, 7}, K[2] = {1, 1};
  for (int d = 0; d < 4; d++) {
    run_case(make_case(2, 2, 8, 12, 1, S, K), float_dtypes[d], OP_NAMED);
    run_case(make_case(2, 2, 8, 12, 4, S, K), float_dtypes[d], OP_NAMED);
  }
}

TEST(test_conv3d) {
  int S[3] = {5, 6, 4}, K[3] = {2, 3, 2}, st[3] = {1, 2, 1}, pad[3] = {1, 0, 1}, dil[3] = {2, 1, 1};
  for (int d = 0; d < 4; d++) {
    conv_case c = make_case(3, 2, 3, 4, 1, S, K);
    set_axes(c.stride, 3, st);
    set_axes(c.lo, 3, pad);
    set_axes(c.hi, 3, pad);
    set_axes(c.kdil, 3, dil);
    run_case(c, float_dtypes[d], OP_NAMED);
    conv_case g = make_case(3, 1, 4, 6, 2, S, K);
    run_case(g, float_dtypes[d], OP_NAMED);
  }
}

TEST(test_conv_general_asymmetric_padding_causal_depthwise) {
  /* LFM2's short convolution: depthwise, kernel 3, causal (2 zeros in front, none behind). */
  int S[1] = {17}, K[1] = {3}, lo[1] = {2};
  for (int d = 0; d < 4; d++) {
    conv_case c = make_case(1, 2, 16, 16, 16, S, K);
    set_axes(c.lo, 1, lo);
    run_case(c, float_dtypes[d], OP_GENERAL);
  }
  int S2[2] = {7, 8}, K2[2] = {3, 3}, lo2[2] = {0, 2}, hi2[2] = {3, 1};
  conv_case c = make_case(2, 2, 4, 5, 1, S2, K2);
  set_axes(c.lo, 2, lo2);
  set_axes(c.hi, 2, hi2);
  run_case(c, MLX_FLOAT32, OP_GENERAL);
}

TEST(test_conv_general_negative_padding_crops) {
  int S[2] = {9, 8}, K[2] = {2, 3}, lo[2] = {-2, 1}, hi[2] = {-1, -3};
  for (int d = 0; d < 4; d++) {
    conv_case c = make_case(2, 2, 3, 4, 1, S, K);
    set_axes(c.lo, 2, lo);
    set_axes(c.hi, 2, hi);
    run_case(c, float_dtypes[d], OP_GENERAL);
  }
}

TEST(test_conv_general_input_dilation_flip_stride) {
  int S[2] = {5, 6}, K[2] = {3, 2}, st[2] = {2, 1}, lo[2] = {2, 1}, hi[2] = {1, 0};
  int kd[2] = {1, 2}, id[2] = {3, 2};
  for (int d = 0; d < 4; d++) {
    conv_case c = make_case(2, 2, 6, 4, 2, S, K);
    set_axes(c.stride, 2, st);
    set_axes(c.lo, 2, lo);
    set_axes(c.hi, 2, hi);
    set_axes(c.kdil, 2, kd);
    set_axes(c.idil, 2, id);
    c.flip = true;
    run_case(c, float_dtypes[d], OP_GENERAL);
    c.flip = false;
    run_case(c, float_dtypes[d], OP_GENERAL);
  }
}

TEST(test_conv_general_flip_groups_hand_values) {
  /* x[t, c] = t for 5 steps and 2 channels, w[o, k, 0] = k for 2 outputs and 4 taps, groups 2,
   * flipped: y[0] = 0*3 + 1*2 + 2*1 + 3*0 = 4, y[1] = 1*3 + 2*2 + 3*1 + 4*0 = 10 per channel. */
  float xv[10], wv[8];
  for (int t = 0; t < 5; t++) xv[2 * t] = xv[2 * t + 1] = (float)t;
  for (int o = 0; o < 2; o++)
    for (int k = 0; k < 4; k++) wv[o * 4 + k] = (float)k;
  int xs[3] = {1, 5, 2}, ws[3] = {2, 4, 1};
  mlx_array X = mlx_array_new_data(xv, xs, 3, MLX_FLOAT32);
  mlx_array W = mlx_array_new_data(wv, ws, 3, MLX_FLOAT32), Y = mlx_array_new();
  CHECK_EQ_INT(mlx_conv_general(&Y, X, W, NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0, 2, true, cpu), 0);
  CHECK_EQ_INT(mlx_array_dim(Y, 1), 2);
  mlx_array_eval(Y);
  const float* y = mlx_array_data_float32(Y);
  float expect[4] = {4, 4, 10, 10};
  for (int i = 0; i < 4; i++) CHECK_NEAR(y[i], expect[i], 0);
  mlx_array_free(X);
  mlx_array_free(W);
  mlx_array_free(Y);
}

TEST(test_conv_general_single_values_broadcast) {
  /* One value per option applies to every axis; compare with the explicit per-axis call. */
  int xs[4] = {1, 9, 10, 3}, ws[4] = {4, 3, 3, 3};
  double x[270], w[108];
  mlx_array X = random_array(MLX_FLOAT32, xs, 4, x), W = random_array(MLX_FLOAT32, ws, 4, w);
  mlx_array A = mlx_array_new(), B = mlx_array_new();
  int two = 2, one = 1, st[2] = {2, 2}, pd[2] = {1, 1}, dl[2] = {2, 2};
  CHECK_EQ_INT(mlx_conv_general(&A, X, W, &two, 1, &one, 1, &one, 1, &two, 1, NULL, 0, 1, false, cpu), 0);
  CHECK_EQ_INT(mlx_conv_general(&B, X, W, st, 2, pd, 2, pd, 2, dl, 2, NULL, 0, 1, false, cpu), 0);
  CHECK_EQ_INT(mlx_array_size(A), mlx_array_size(B));
  double a[64], b[64];
  if (mlx_array_size(A) == mlx_array_size(B) && mlx_array_size(A) <= 64) {
    read_doubles(A, a);
    read_doubles(B, b);
    for (size_t i = 0; i < mlx_array_size(A); i++) CHECK_NEAR(a[i], b[i], 0);
  }
  mlx_array_free(X);
  mlx_array_free(W);
  mlx_array_free(A);
  mlx_array_free(B);
}

TEST(test_conv_transpose1d) {
  int S[1] = {7}, K[1] = {3};
  struct { int st, pad, dil, outpad, C, O, G; } cases[5] = {
      {1, 0, 1, 0, 4, 5, 1}, {2, 1, 1, 1, 4, 6, 2}, {3, 2, 2, 2, 3, 3, 3},
      {2, 0, 1, 0, 8, 8, 8}, {2, 4, 1, 0, 2, 3, 1} /* padding beyond the kernel extent crops */};
  for (int i = 0; i < 5; i++)
    for (int d = 0; d < 4; d++) {
      conv_case c = make_case(1, 2, cases[i].C, cases[i].O, cases[i].G, S, K);
      c.stride[2] = cases[i].st;
      c.lo[2] = cases[i].pad;
      c.kdil[2] = cases[i].dil;
      c.hi[2] = cases[i].outpad;
      run_case(c, float_dtypes[d], OP_TRANSPOSE);
    }
}

TEST(test_conv_transpose2d_and_3d) {
  int S2[2] = {4, 5}, K2[2] = {3, 2}, st2[2] = {2, 3}, pad2[2] = {1, 0}, dil2[2] = {1, 2};
  int op2[2] = {1, 2};
  int S3[3] = {3, 4, 2}, K3[3] = {2, 2, 3}, st3[3] = {2, 1, 2}, pad3[3] = {0, 1, 1};
  int dil3[3] = {1, 1, 2}, op3[3] = {1, 0, 0};
  for (int d = 0; d < 4; d++) {
    for (int G = 1; G <= 2; G++) {
      conv_case c = make_case(2, 2, 4, 6, G, S2, K2);
      set_axes(c.stride, 2, st2);
      set_axes(c.lo, 2, pad2);
      set_axes(c.kdil, 2, dil2);
      set_axes(c.hi, 2, op2);
      run_case(c, float_dtypes[d], OP_TRANSPOSE);
    }
    conv_case c = make_case(3, 2, 3, 2, 1, S3, K3);
    set_axes(c.stride, 3, st3);
    set_axes(c.lo, 3, pad3);
    set_axes(c.kdil, 3, dil3);
    set_axes(c.hi, 3, op3);
    run_case(c, float_dtypes[d], OP_TRANSPOSE);
  }
}

TEST(test_conv_large_blocks_and_threads) {
  /* Enough output rows for several patch blocks and thread-pool chunks. */
  int S[1] = {12000}, K[1] = {3}, pad[1] = {1};
  conv_case c = make_case(1, 2, 64, 8, 1, S, K);
  set_axes(c.lo, 1, pad);
  set_axes(c.hi, 1, pad);
  run_case(c, MLX_FLOAT32, OP_NAMED);
  conv_case dw = make_case(1, 2, 64, 64, 64, S, K);
  set_axes(dw.lo, 1, pad);
  run_case(dw, MLX_FLOAT32, OP_GENERAL);
  /* A transposed conv whose (input rows x taps x outputs) products need several output-channel
   * blocks. */
  int St[1] = {20000}, Kt[1] = {16};
  conv_case t = make_case(1, 1, 2, 64, 1, St, Kt);
  t.stride[2] = 2;
  t.lo[2] = 3;
  run_case(t, MLX_FLOAT32, OP_TRANSPOSE);
}

TEST(test_conv_strided_views) {
  /* The input as a transposed view of (N, C, L) and the weight as a step-2 slice. */
  int N = 2, C = 3, L = 10, O = 4, K = 3;
  int xs[3] = {N, C, L}, ws[3] = {O, K, 2 * C};
  double x[60], w[72];
  mlx_array Xt = random_array(MLX_FLOAT32, xs, 3, x), Wf = random_array(MLX_FLOAT32, ws, 3, w);
  mlx_array X = mlx_array_new(), W = mlx_array_new(), Y = mlx_array_new();
  int start[3] = {0, 0, 0}, stop[3] = {O, K, 2 * C}, step[3] = {1, 1, 2};
  CHECK_EQ_INT(mlx_swapaxes(&X, Xt, 1, 2, cpu), 0);
  CHECK_EQ_INT(mlx_slice(&W, Wf, start, 3, stop, 3, step, 3, cpu), 0);
  CHECK_EQ_INT(mlx_conv1d(&Y, X, W, 1, 1, 1, 1, cpu), 0);
  double y[2 * 10 * 4];
  read_doubles(Y, y);
  for (int n = 0; n < N; n++)
    for (int q = 0; q < L; q++)
      for (int o = 0; o < O; o++) {
        double s = 0;
        for (int k = 0; k < K; k++) {
          int t = q - 1 + k;
          if (t < 0 || t >= L) continue;
          for (int ch = 0; ch < C; ch++) s += x[(n * C + ch) * L + t] * w[(o * K + k) * 2 * C + 2 * ch];
        }
        CHECK_NEAR(y[(n * L + q) * O + o], s, 1e-5);
      }
  mlx_array_free(Xt);
  mlx_array_free(Wf);
  mlx_array_free(X);
  mlx_array_free(W);
  mlx_array_free(Y);
}

TEST(test_conv_dtype_promotion) {
  int xs[3] = {1, 6, 2}, ws[3] = {3, 2, 2};
  double x[12], w[12];
  struct { mlx_dtype a, b, out; } cases[3] = {{MLX_FLOAT16, MLX_FLOAT32, MLX_FLOAT32},
                                             {MLX_BFLOAT16, MLX_FLOAT16, MLX_FLOAT32},
                                             {MLX_FLOAT16, MLX_INT32, MLX_FLOAT16}};
  for (int i = 0; i < 3; i++) {
    mlx_array X = random_array(cases[i].a, xs, 3, x), W;
    if (cases[i].b == MLX_INT32) {
      int wi[12];
      for (int j = 0; j < 12; j++) w[j] = wi[j] = j % 3 - 1;
      W = mlx_array_new_data(wi, ws, 3, MLX_INT32);
    } else {
      W = random_array(cases[i].b, ws, 3, w);
    }
    mlx_array Y = mlx_array_new();
    CHECK_EQ_INT(mlx_conv1d(&Y, X, W, 1, 0, 1, 1, cpu), 0);
    CHECK_EQ_INT(mlx_array_dtype(Y), cases[i].out);
    double y[15];
    read_doubles(Y, y);
    for (int q = 0; q < 5; q++)
      for (int o = 0; o < 3; o++) {
        double s = 0;
        for (int k = 0; k < 2; k++)
          for (int ch = 0; ch < 2; ch++) s += x[(q + k) * 2 + ch] * w[(o * 2 + k) * 2 + ch];
        CHECK_NEAR(y[q * 3 + o], s, tolerance(cases[i].out, 4, s));
      }
    mlx_array_free(X);
    mlx_array_free(W);
    mlx_array_free(Y);
  }
}

TEST(test_conv_empty_arrays) {
  /* An empty batch gives an empty output; an empty spatial axis with padding gives zeros. */
  int xs[3] = {0, 5, 2}, ws[3] = {3, 2, 2};
  double w[12];
  mlx_array X = mlx_array_new_data(NULL, xs, 3, MLX_FLOAT32), W = random_array(MLX_FLOAT32, ws, 3, w);
  mlx_array Y = mlx_array_new();
  CHECK_EQ_INT(mlx_conv1d(&Y, X, W, 1, 0, 1, 1, cpu), 0);
  CHECK_EQ_INT(mlx_array_dim(Y, 0), 0);
  CHECK_EQ_INT(mlx_array_dim(Y, 1), 4);
  CHECK_EQ_INT(mlx_array_eval(Y), 0);
  int es[3] = {1, 0, 2};
  mlx_array E = mlx_array_new_data(NULL, es, 3, MLX_FLOAT32);
  CHECK_EQ_INT(mlx_conv1d(&Y, E, W, 1, 1, 1, 1, cpu), 0);
  CHECK_EQ_INT(mlx_array_dim(Y, 1), 1);
  double y[3] = {1, 1, 1};
  read_doubles(Y, y);
  for (int i = 0; i < 3; i++) CHECK_NEAR(y[i], 0, 0);
  mlx_array_free(X);
  mlx_array_free(E);
  mlx_array_free(W);
  mlx_array_free(Y);
}

/* Expects the call to fail with a message containing `needle`. */
static void expect_error(int rc, const char* needle) {
  CHECK_EQ_INT(rc, 1);
  CHECK_MSG(strstr(mlxc_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"",
            mlxc_last_error(), needle);
}

TEST(test_conv_errors) {
  int quiet = mlxc_set_errors_quiet(1);
  int xs[3] = {1, 8, 4}, ws[3] = {6, 3, 4}, w2s[3] = {6, 3, 2}, x2s[2] = {8, 4};
  double buf[96];
  mlx_array X = random_array(MLX_FLOAT32, xs, 3, buf), W = random_array(MLX_FLOAT32, ws, 3, buf);
  mlx_array W2 = random_array(MLX_FLOAT32, w2s, 3, buf), X2 = random_array(MLX_FLOAT32, x2s, 2, buf);
  int xi[32] = {0};
  mlx_array XI = mlx_array_new_data(xi, xs, 3, MLX_INT32), empty = mlx_array_new();
  mlx_array Y = mlx_array_new();
  expect_error(mlx_conv1d(&Y, X, W2, 1, 0, 1, 1, cpu), "times groups");          /* 2 != 4 */
  expect_error(mlx_conv1d(&Y, X, W2, 1, 0, 1, 3, cpu), "divisible by groups");
  expect_error(mlx_conv1d(&Y, X, W, 1, 0, 1, 0, cpu), "groups must be positive");
  expect_error(mlx_conv1d(&Y, X2, W, 1, 0, 1, 1, cpu), "the input has 2 dimensions");
  expect_error(mlx_conv2d(&Y, X, W, 1, 1, 0, 0, 1, 1, 1, cpu), "the input has 3 dimensions");
  expect_error(mlx_conv1d(&Y, X, X2, 1, 0, 1, 1, cpu), "the weight has 2 dimensions");
  expect_error(mlx_conv1d(&Y, X, W, 1, -1, 1, 1, cpu), "non-negative");
  expect_error(mlx_conv1d(&Y, X, W, 0, 0, 1, 1, cpu), "must be positive");
  expect_error(mlx_conv1d(&Y, X, W, 1, 0, 0, 1, cpu), "must be positive");
  expect_error(mlx_conv1d(&Y, X, W, 1, 0, 5, 1, cpu), "smaller than the dilated kernel");
  expect_error(mlx_conv1d(&Y, XI, W, 1, 0, 1, 1, cpu), "floating point");
  expect_error(mlx_conv1d(&Y, empty, W, 1, 0, 1, 1, cpu), "empty array");
  expect_error(mlx_conv1d(&Y, X, empty, 1, 0, 1, 1, cpu), "empty array");
  expect_error(mlx_conv_transpose1d(&Y, X, W, 1, -1, 1, 0, 1, cpu), "non-negative");
  expect_error(mlx_conv_transpose1d(&Y, X, W, 1, 0, 1, -1, 1, cpu), "non-negative");
  expect_error(mlx_conv_transpose1d(&Y, X, W2, 2, 0, 1, 0, 3, cpu), "divisible by groups");
  expect_error(mlx_conv_transpose2d(&Y, X, W, 1, 1, 0, 0, 1, 1, 0, 0, 1, cpu), "dimensions");
  expect_error(mlx_conv_transpose1d(&Y, empty, W, 1, 0, 1, 0, 1, cpu), "empty array");
  int three[3] = {1, 1, 1}, neg = -9;
  expect_error(mlx_conv_general(&Y, X, W, three, 3, NULL, 0, NULL, 0, NULL, 0, NULL, 0, 1, false, cpu),
               "one per spatial axis");
  expect_error(mlx_conv_general(&Y, X, W, NULL, 1, NULL, 0, NULL, 0, NULL, 0, NULL, 0, 1, false, cpu),
               "NULL");
  expect_error(mlx_conv_general(&Y, X, W, NULL, 0, &neg, 1, NULL, 0, NULL, 0, NULL, 0, 1, false, cpu),
               "smaller than the dilated kernel");
  expect_error(mlx_conv_general(&Y, X2, W, NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0, 1, false, cpu),
               "1 to 3 spatial");
  CHECK(Y.ctx == NULL);
  mlx_array_free(X);
  mlx_array_free(W);
  mlx_array_free(W2);
  mlx_array_free(X2);
  mlx_array_free(XI);
  mlx_array_free(Y);
  mlxc_set_errors_quiet(quiet);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_conv1d_every_dtype_batch_padding);
  RUN(test_conv1d_stride_dilation);
  RUN(test_conv1d_whisper_front_end_shapes);
  RUN(test_conv1d_groups_and_depthwise);
  RUN(test_conv1d_single_input_channel);
  RUN(test_conv2d_stride_padding_dilation_groups);
  RUN(test_conv2d_patch_embedding);
  RUN(test_conv2d_pointwise);
  RUN(test_conv3d);
  RUN(test_conv_general_asymmetric_padding_causal_depthwise);
  RUN(test_conv_general_negative_padding_crops);
  RUN(test_conv_general_input_dilation_flip_stride);
  RUN(test_conv_general_flip_groups_hand_values);
  RUN(test_conv_general_single_values_broadcast);
  RUN(test_conv_transpose1d);
  RUN(test_conv_transpose2d_and_3d);
  RUN(test_conv_large_blocks_and_threads);
  RUN(test_conv_strided_views);
  RUN(test_conv_dtype_promotion);
  RUN(test_conv_empty_arrays);
  RUN(test_conv_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
