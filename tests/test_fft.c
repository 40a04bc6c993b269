/* fft.h against the definition: a direct O(n^2) DFT in double precision written here (powers of
 * two, primes, 400, 1, odd and even irfft lengths), n-D transforms as sums over every axis,
 * cropping and padding, norm modes, strided inputs, round trips, shifts, frequencies, errors. */
#include <complex.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "test_util.h"

static mlx_stream cpu;

static unsigned rng_state = 7;
static double drand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return ((rng_state >> 8) & 0xffff) / 32768.0 - 1.0;
}

/* Random complex64 values (re and im in [-1, 1]); host gets them exactly as stored. */
static mlx_array random_complex(const int* shape, int ndim, double complex* host) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  float* data = malloc(sizeof(float) * 2 * (n ? n : 1));
  for (size_t i = 0; i < n; i++) {
    data[2 * i] = (float)drand();
    data[2 * i + 1] = (float)drand();
    host[i] = data[2 * i] + I * (double)data[2 * i + 1];
  }
  mlx_array a = mlx_array_new_data(data, shape, ndim, MLX_COMPLEX64);
  free(data);
  return a;
}

static mlx_array random_real(const int* shape, int ndim, double* host) {
  size_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
  float* data = malloc(sizeof(float) * (n ? n : 1));
  for (size_t i = 0; i < n; i++) host[i] = data[i] = (float)drand();
  mlx_array a = mlx_array_new_data(data, shape, ndim, MLX_FLOAT32);
  free(data);
  return a;
}

/* The DFT of x (stride xs, n points) into y (stride ys): sum_j x_j e^{-+2 pi i jk / n}. The
 * exponent uses jk mod n, so the angle is exact however long the signal. */
static void dft(const double complex* x, int64_t xs, double complex* y, int64_t ys, int n,
                bool inverse) {
  for (int k = 0; k < n; k++) {
    double complex acc = 0;
    for (int j = 0; j < n; j++) {
      double angle = 2 * M_PI * (double)((int64_t)j * k % n) / n;
      acc += x[j * xs] * cexp((inverse ? I : -I) * angle);
    }
    y[k * ys] = acc;
  }
}

/* The DFT of a row-major array along `axis` (in place, via a copy). */
static void dft_axis(double complex* x, const int* shape, int ndim, int axis, bool inverse) {
  int64_t stride = 1, total = 1;
  for (int d = axis + 1; d < ndim; d++) stride *= shape[d];
  for (int d = 0; d < ndim; d++) total *= shape[d];
  int n = shape[axis];
  double complex* tmp = malloc(sizeof(double complex) * (size_t)n);
  for (int64_t l = 0; l < total / n; l++) {
    double complex* line = x + (l / stride) * n * stride + l % stride;
    dft(line, stride, tmp, 1, n, inverse);
    for (int k = 0; k < n; k++) line[k * stride] = tmp[k];
  }
  free(tmp);
}

/* max |got - want| / max |want|: the error relative to the transform's scale. */
static double relative_error(mlx_array got, const double complex* want, size_t n) {
  CHECK(mlx_array_eval(got) == 0);
  CHECK_EQ_INT(mlx_array_size(got), n);
  double err = 0, scale = 1e-30;
  if (mlx_array_dtype(got) == MLX_COMPLEX64) {
    const float* g = (const float*)mlx_array_data_complex64(got);
    for (size_t i = 0; i < n; i++) {
      err = fmax(err, cabs(g[2 * i] + I * (double)g[2 * i + 1] - want[i]));
      scale = fmax(scale, cabs(want[i]));
    }
  } else {
    const float* g = mlx_array_data_float32(got);
    for (size_t i = 0; i < n; i++) {
      err = fmax(err, fabs(g[i] - creal(want[i])));
      scale = fmax(scale, cabs(want[i]));
    }
  }
  return err / scale;
}

static const int lengths[] = {1, 2, 3, 4, 5, 7, 8, 16, 17, 31, 64, 97, 100, 128, 255, 256, 400, 401, 1000, 1024};
#define N_LENGTHS (int)(sizeof lengths / sizeof lengths[0])

TEST(test_fft_and_ifft_match_the_dft_for_many_lengths) {
  for (int li = 0; li < N_LENGTHS; li++) {
    int n = lengths[li], shape[2] = {3, n};
    double complex* x = malloc(sizeof(double complex) * 3 * n);
    double complex* want = malloc(sizeof(double complex) * 3 * n);
    mlx_array a = random_complex(shape, 2, x);
    mlx_array y = mlx_array_new();
    for (int inverse = 0; inverse < 2; inverse++) {
      memcpy(want, x, sizeof(double complex) * 3 * n);
      dft_axis(want, shape, 2, 1, inverse);
      if (inverse)
        for (int i = 0; i < 3 * n; i++) want[i] /= n;
      CHECK(!(inverse ? mlx_fft_ifft : mlx_fft_fft)(&y, a, n, -1, MLX_FFT_NORM_BACKWARD, cpu));
      CHECK_EQ_INT(mlx_array_dtype(y), MLX_COMPLEX64);
      double err = relative_error(y, want, (size_t)3 * n);
      CHECK_MSG(err <= 1e-6, "n=%d inverse=%d relative error %g", n, inverse, err);
    }
    mlx_array_free(a);
    mlx_array_free(y);
    free(x);
    free(want);
  }
}

TEST(test_fft_norm_modes_scale_as_numpy) {
  int n = 12, shape[1] = {n};
  double complex x[12], want[12];
  mlx_array a = random_complex(shape, 1, x);
  mlx_array y = mlx_array_new();
  mlx_fft_norm norms[3] = {MLX_FFT_NORM_BACKWARD, MLX_FFT_NORM_ORTHO, MLX_FFT_NORM_FORWARD};
  double forward_scale[3] = {1, 1 / sqrt(12.0), 1 / 12.0}, inverse_scale[3] = {1 / 12.0, 1 / sqrt(12.0), 1};
  for (int m = 0; m < 3; m++) {
    for (int inverse = 0; inverse < 2; inverse++) {
      dft(x, 1, want, 1, n, inverse);
      for (int i = 0; i < n; i++) want[i] *= inverse ? inverse_scale[m] : forward_scale[m];
      CHECK(!(inverse ? mlx_fft_ifft : mlx_fft_fft)(&y, a, n, 0, norms[m], cpu));
      CHECK_MSG(relative_error(y, want, n) <= 1e-6, "norm %d inverse %d", m, inverse);
    }
  }
  mlx_array_free(a);
  mlx_array_free(y);
}

TEST(test_fft_of_integers_matches_hand_values) {
  int data[4] = {1, 2, 3, 4}, shape[1] = {4};
  mlx_array a = mlx_array_new_data(data, shape, 1, MLX_INT32);
  mlx_array y = mlx_array_new();
  double complex want[4] = {10, -2 + 2 * I, -2, -2 - 2 * I};
  CHECK(!mlx_fft_fft(&y, a, 4, 0, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK(relative_error(y, want, 4) <= 1e-7);
  mlx_array_free(a);
  mlx_array_free(y);
}

TEST(test_fft_crops_and_zero_pads_to_n) {
  int shape[2] = {2, 10};
  double complex x[20], padded[2 * 16], want[2 * 16];
  mlx_array a = random_complex(shape, 2, x);
  mlx_array y = mlx_array_new();
  int sizes[3] = {6, 10, 16};
  for (int t = 0; t < 3; t++) {
    int n = sizes[t];
    for (int r = 0; r < 2; r++)
      for (int k = 0; k < n; k++) padded[r * n + k] = k < 10 ? x[r * 10 + k] : 0;
    for (int r = 0; r < 2; r++) dft(padded + r * n, 1, want + r * n, 1, n, false);
    CHECK(!mlx_fft_fft(&y, a, n, 1, MLX_FFT_NORM_BACKWARD, cpu));
    CHECK_EQ_INT(mlx_array_shape(y)[1], n);
    CHECK_MSG(relative_error(y, want, (size_t)2 * n) <= 1e-6, "n=%d", n);
  }
  mlx_array_free(a);
  mlx_array_free(y);
}

TEST(test_fft_along_a_leading_axis_of_a_transposed_view) {
  int shape[2] = {6, 5}, tshape[2] = {5, 6};
  double complex x[30], xt[30];
  mlx_array a = random_complex(shape, 2, x);
  mlx_array t = mlx_array_new(), y = mlx_array_new();
  CHECK(!mlx_transpose(&t, a, cpu)); /* (5, 6) view with strides (1, 5) */
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 6; j++) xt[i * 6 + j] = x[j * 5 + i];
  dft_axis(xt, tshape, 2, 0, false);
  CHECK(!mlx_fft_fft(&y, t, 5, 0, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK(relative_error(y, xt, 30) <= 1e-6);
  mlx_array_free(a);
  mlx_array_free(t);
  mlx_array_free(y);
}

TEST(test_rfft_matches_the_dft_of_real_input) {
  for (int li = 0; li < N_LENGTHS; li++) {
    int n = lengths[li], shape[2] = {2, n}, m = n / 2 + 1;
    double* x = malloc(sizeof(double) * 2 * n);
    double complex* xc = malloc(sizeof(double complex) * 2 * n);
    double complex* full = malloc(sizeof(double complex) * 2 * n);
    double complex* want = malloc(sizeof(double complex) * 2 * m);
    mlx_array a = random_real(shape, 2, x);
    for (int i = 0; i < 2 * n; i++) xc[i] = x[i];
    for (int r = 0; r < 2; r++) dft(xc + r * n, 1, full + r * n, 1, n, false);
    for (int r = 0; r < 2; r++)
      for (int k = 0; k < m; k++) want[r * m + k] = full[r * n + k];
    mlx_array y = mlx_array_new();
    CHECK(!mlx_fft_rfft(&y, a, n, -1, MLX_FFT_NORM_BACKWARD, cpu));
    CHECK_EQ_INT(mlx_array_shape(y)[1], m);
    double err = relative_error(y, want, (size_t)2 * m);
    CHECK_MSG(err <= 1e-6, "n=%d relative error %g", n, err);
    mlx_array_free(a);
    mlx_array_free(y);
    free(x);
    free(xc);
    free(full);
    free(want);
  }
}

/* numpy's irfft from the definition: x_t = Re(sum_k Y_k e^{2 pi i kt/n}) / n, with Y_k = X_k for
 * k <= n/2 and conj(X_{n-k}) above (the imaginary parts of X_0 and X_{n/2} drop out). */
TEST(test_irfft_matches_the_definition_for_even_and_odd_n) {
  int ns[] = {1, 2, 7, 8, 15, 16, 100, 400, 401};
  for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
    int n = ns[t], m = n / 2 + 1, shape[1] = {m};
    double complex X[m], Y[n], want[n];
    mlx_array a = random_complex(shape, 1, X);
    for (int k = 0; k < n; k++) Y[k] = k < m ? X[k] : conj(X[n - k]);
    dft(Y, 1, want, 1, n, true);
    for (int k = 0; k < n; k++) want[k] = creal(want[k]) / n;
    mlx_array y = mlx_array_new();
    CHECK(!mlx_fft_irfft(&y, a, n, 0, MLX_FFT_NORM_BACKWARD, cpu));
    CHECK_EQ_INT(mlx_array_dtype(y), MLX_FLOAT32);
    CHECK_EQ_INT(mlx_array_shape(y)[0], n);
    double err = relative_error(y, want, n);
    CHECK_MSG(err <= 1e-6, "n=%d relative error %g", n, err);
    mlx_array_free(a);
    mlx_array_free(y);
  }
}

TEST(test_irfft_of_rfft_round_trips_and_pads_short_spectra) {
  int n = 400, shape[2] = {4, n};
  double x[4 * 400];
  mlx_array a = random_real(shape, 2, x);
  mlx_array spec = mlx_array_new(), back = mlx_array_new();
  CHECK(!mlx_fft_rfft(&spec, a, n, 1, MLX_FFT_NORM_ORTHO, cpu));
  CHECK(!mlx_fft_irfft(&back, spec, n, 1, MLX_FFT_NORM_ORTHO, cpu));
  double complex want[4 * 400];
  for (int i = 0; i < 4 * n; i++) want[i] = x[i];
  CHECK(relative_error(back, want, (size_t)4 * n) <= 1e-6);
  /* irfft with a larger n zero-pads the half spectrum (201 -> 301 entries for n = 600). */
  CHECK(!mlx_fft_irfft(&back, spec, 600, 1, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK_EQ_INT(mlx_array_shape(back)[1], 600);
  const float* s = (const float*)(mlx_array_eval(spec), mlx_array_data_complex64(spec));
  double complex Y[600], ref[600];
  for (int k = 0; k < 600; k++) {
    int j = k <= 300 ? k : 600 - k;
    double complex v = j < 201 ? s[2 * j] + I * (double)s[2 * j + 1] : 0;
    Y[k] = k <= 300 ? v : conj(v);
  }
  dft(Y, 1, ref, 1, 600, true);
  for (int k = 0; k < 600; k++) ref[k] = creal(ref[k]) / 600;
  mlx_array row = mlx_array_new();
  int start[2] = {0, 0}, stop[2] = {1, 600}, step[2] = {1, 1};
  CHECK(!mlx_slice(&row, back, start, 2, stop, 2, step, 2, cpu));
  mlx_array rowc = mlx_array_new();
  CHECK(!mlx_contiguous(&rowc, row, false, cpu));
  CHECK(relative_error(rowc, ref, 600) <= 1e-6);
  mlx_array_free(a);
  mlx_array_free(spec);
  mlx_array_free(back);
  mlx_array_free(row);
  mlx_array_free(rowc);
}

TEST(test_fftn_over_chosen_axes_matches_separable_dft) {
  int shape[3] = {4, 3, 6}, axes[2] = {0, 2}, n[2] = {4, 6};
  double complex x[72], want[72];
  mlx_array a = random_complex(shape, 3, x);
  mlx_array y = mlx_array_new(), back = mlx_array_new();
  memcpy(want, x, sizeof want);
  dft_axis(want, shape, 3, 0, false);
  dft_axis(want, shape, 3, 2, false);
  CHECK(!mlx_fft_fftn(&y, a, n, 2, axes, 2, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK(relative_error(y, want, 72) <= 1e-6);
  CHECK(!mlx_fft_fft2(&y, a, n, 2, axes, 2, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK(relative_error(y, want, 72) <= 1e-6);
  CHECK(!mlx_fft_ifftn(&back, y, n, 2, axes, 2, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK(relative_error(back, x, 72) <= 1e-6);
  CHECK(!mlx_fft_ifft2(&back, y, n, 2, axes, 2, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK(relative_error(back, x, 72) <= 1e-6);
  /* All three axes, with the middle one padded from 3 to 5. */
  int axes3[3] = {0, 1, 2}, n3[3] = {4, 5, 6}, pshape[3] = {4, 5, 6};
  double complex p[120];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 5; j++)
      for (int k = 0; k < 6; k++) p[(i * 5 + j) * 6 + k] = j < 3 ? x[(i * 3 + j) * 6 + k] : 0;
  for (int d = 0; d < 3; d++) dft_axis(p, pshape, 3, d, false);
  CHECK(!mlx_fft_fftn(&y, a, n3, 3, axes3, 3, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK(relative_error(y, p, 120) <= 1e-6);
  mlx_array_free(a);
  mlx_array_free(y);
  mlx_array_free(back);
}

TEST(test_rfftn_and_irfftn_match_the_definition) {
  int shape[2] = {5, 8}, axes[2] = {0, 1}, n[2] = {5, 8};
  double x[40];
  double complex full[40], want[25];
  mlx_array a = random_real(shape, 2, x);
  for (int i = 0; i < 40; i++) full[i] = x[i];
  dft_axis(full, shape, 2, 0, false);
  dft_axis(full, shape, 2, 1, false);
  for (int i = 0; i < 5; i++)
    for (int k = 0; k < 5; k++) want[i * 5 + k] = full[i * 8 + k];
  mlx_array y = mlx_array_new(), back = mlx_array_new();
  CHECK(!mlx_fft_rfftn(&y, a, n, 2, axes, 2, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK_EQ_INT(mlx_array_shape(y)[1], 5);
  CHECK(relative_error(y, want, 25) <= 1e-6);
  CHECK(!mlx_fft_rfft2(&y, a, n, 2, axes, 2, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK(relative_error(y, want, 25) <= 1e-6);
  /* The half spectrum computed here in double goes back to x. */
  float half[50];
  for (int i = 0; i < 25; i++) {
    half[2 * i] = (float)creal(want[i]);
    half[2 * i + 1] = (float)cimag(want[i]);
  }
  int hshape[2] = {5, 5};
  mlx_array h = mlx_array_new_data(half, hshape, 2, MLX_COMPLEX64);
  double complex xc[40];
  for (int i = 0; i < 40; i++) xc[i] = x[i];
  CHECK(!mlx_fft_irfftn(&back, h, n, 2, axes, 2, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK(relative_error(back, xc, 40) <= 1e-6);
  CHECK(!mlx_fft_irfft2(&back, h, n, 2, axes, 2, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK(relative_error(back, xc, 40) <= 1e-6);
  mlx_array_free(a);
  mlx_array_free(h);
  mlx_array_free(y);
  mlx_array_free(back);
}

TEST(test_stft_frames_of_whisper_size) {
  /* 80 frames of 400 samples, as Whisper's log-mel front end transforms them. */
  int shape[2] = {80, 400};
  double* x = malloc(sizeof(double) * 80 * 400);
  double complex* want = malloc(sizeof(double complex) * 80 * 201);
  double complex line[400], out[400];
  mlx_array a = random_real(shape, 2, x);
  for (int r = 0; r < 80; r++) {
    for (int k = 0; k < 400; k++) line[k] = x[r * 400 + k];
    dft(line, 1, out, 1, 400, false);
    for (int k = 0; k < 201; k++) want[r * 201 + k] = out[k];
  }
  mlx_array y = mlx_array_new();
  CHECK(!mlx_fft_rfft(&y, a, 400, -1, MLX_FFT_NORM_BACKWARD, cpu));
  double err = relative_error(y, want, 80 * 201);
  CHECK_MSG(err <= 1e-6, "relative error %g", err);
  mlx_array_free(a);
  mlx_array_free(y);
  free(x);
  free(want);
}

TEST(test_fft_of_empty_batch_and_float64_input) {
  int shape[2] = {0, 8};
  mlx_array a = mlx_array_new_data(NULL, shape, 2, MLX_FLOAT32), y = mlx_array_new();
  CHECK(!mlx_fft_fft(&y, a, 8, -1, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK(!mlx_array_eval(y));
  CHECK_EQ_INT(mlx_array_size(y), 0);
  CHECK_EQ_INT(mlx_array_shape(y)[1], 8);
  mlx_array_free(a);
  double d[3] = {1, 0, -1};
  int s3[1] = {3};
  a = mlx_array_new_data(d, s3, 1, MLX_FLOAT64);
  double complex want[3];
  double complex dc[3] = {1, 0, -1};
  dft(dc, 1, want, 1, 3, false);
  CHECK(!mlx_fft_fft(&y, a, 3, 0, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK_EQ_INT(mlx_array_dtype(y), MLX_COMPLEX64);
  CHECK(relative_error(y, want, 3) <= 1e-7);
  mlx_array_free(a);
  mlx_array_free(y);
}

static void check_floats(mlx_array a, const float* want, int n) {
  CHECK(!mlx_array_eval(a));
  CHECK_EQ_INT(mlx_array_size(a), n);
  mlx_array c = mlx_array_new();
  CHECK(!mlx_contiguous(&c, a, false, cpu));
  CHECK(!mlx_array_eval(c));
  const float* g = mlx_array_data_float32(c);
  for (int i = 0; g && i < n; i++) CHECK_NEAR(g[i], want[i], 1e-7);
  mlx_array_free(c);
}

TEST(test_fftshift_and_ifftshift_roll_by_half) {
  float odd[5] = {0, 1, 2, 3, 4}, even[6] = {0, 1, 2, 3, 4, 5};
  int s5[1] = {5}, s6[1] = {6}, axis[1] = {0};
  mlx_array a = mlx_array_new_data(odd, s5, 1, MLX_FLOAT32), y = mlx_array_new();
  CHECK(!mlx_fft_fftshift(&y, a, axis, 1, cpu));
  check_floats(y, (float[]){3, 4, 0, 1, 2}, 5);
  CHECK(!mlx_fft_ifftshift(&y, a, axis, 1, cpu));
  check_floats(y, (float[]){2, 3, 4, 0, 1}, 5);
  mlx_array_free(a);
  a = mlx_array_new_data(even, s6, 1, MLX_FLOAT32);
  CHECK(!mlx_fft_fftshift(&y, a, axis, 1, cpu));
  check_floats(y, (float[]){3, 4, 5, 0, 1, 2}, 6);
  CHECK(!mlx_fft_ifftshift(&y, a, axis, 1, cpu));
  check_floats(y, (float[]){3, 4, 5, 0, 1, 2}, 6);
  mlx_array_free(a);
  /* Two axes of a (2, 3) matrix. */
  float m[6] = {0, 1, 2, 3, 4, 5};
  int s23[2] = {2, 3}, axes[2] = {0, 1};
  a = mlx_array_new_data(m, s23, 2, MLX_FLOAT32);
  CHECK(!mlx_fft_fftshift(&y, a, axes, 2, cpu));
  check_floats(y, (float[]){5, 3, 4, 2, 0, 1}, 6);
  mlx_array_free(a);
  mlx_array_free(y);
}

TEST(test_fftfreq_and_rfftfreq_hand_values) {
  mlx_array y = mlx_array_new();
  CHECK(!mlx_fft_fftfreq(&y, 5, 0.1, cpu));
  check_floats(y, (float[]){0, 2, 4, -4, -2}, 5);
  CHECK(!mlx_fft_fftfreq(&y, 4, 1.0, cpu));
  check_floats(y, (float[]){0, 0.25f, -0.5f, -0.25f}, 4);
  CHECK(!mlx_fft_rfftfreq(&y, 5, 1.0, cpu));
  check_floats(y, (float[]){0, 0.2f, 0.4f}, 3);
  CHECK(!mlx_fft_rfftfreq(&y, 4, 0.5, cpu));
  check_floats(y, (float[]){0, 0.5f, 1.0f}, 3);
  mlx_array_free(y);
}

TEST(test_fft_errors_are_reported) {
  float data[6] = {0};
  int shape[2] = {2, 3}, axes_dup[2] = {1, -1}, n2[2] = {3, 3}, bad_axis[1] = {2}, n1[1] = {3};
  mlx_array a = mlx_array_new_data(data, shape, 2, MLX_FLOAT32), y = mlx_array_new();
  mlx_array empty = mlx_array_new(), scalar = mlx_array_new_float(1.0f);
  CHECK(mlx_fft_fft(&y, empty, 3, 0, MLX_FFT_NORM_BACKWARD, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "empty") != NULL);
  CHECK(mlx_fft_fft(&y, a, 0, 1, MLX_FFT_NORM_BACKWARD, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "invalid transform size 0") != NULL);
  CHECK(mlx_fft_fft(&y, a, 3, 2, MLX_FFT_NORM_BACKWARD, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "out of bounds") != NULL);
  CHECK(mlx_fft_fftn(&y, a, n2, 2, axes_dup, 2, MLX_FFT_NORM_BACKWARD, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "duplicated axis") != NULL);
  CHECK(mlx_fft_fftn(&y, a, n1, 1, axes_dup, 2, MLX_FFT_NORM_BACKWARD, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "different lengths") != NULL);
  CHECK(mlx_fft_rfftn(&y, a, n1, 1, bad_axis, 1, MLX_FFT_NORM_BACKWARD, cpu) != 0);
  CHECK(mlx_fft_fft(&y, scalar, 1, 0, MLX_FFT_NORM_BACKWARD, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "at least one dimension") != NULL);
  CHECK(mlx_fft_fft(&y, a, 3, 1, (mlx_fft_norm)7, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "norm") != NULL);
  CHECK(mlx_fft_fftshift(&y, a, bad_axis, 1, cpu) != 0);
  CHECK(mlx_fft_fftfreq(&y, 0, 1.0, cpu) != 0);
  CHECK(mlx_fft_rfftfreq(&y, 4, 0.0, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "d must be non-zero") != NULL);
  CHECK(mlx_fft_fft(NULL, a, 3, 1, MLX_FFT_NORM_BACKWARD, cpu) != 0);
  /* No axes: the input comes back unchanged, as in MLX. */
  CHECK(!mlx_fft_fftn(&y, a, NULL, 0, NULL, 0, MLX_FFT_NORM_BACKWARD, cpu));
  CHECK_EQ_INT(mlx_array_dtype(y), MLX_FLOAT32);
  mlx_array_free(a);
  mlx_array_free(y);
  mlx_array_free(scalar);
}

int main(void) {
  mlxc_set_errors_quiet(1);
  cpu = mlx_default_cpu_stream_new();
  RUN(test_fft_and_ifft_match_the_dft_for_many_lengths);
  RUN(test_fft_norm_modes_scale_as_numpy);
  RUN(test_fft_of_integers_matches_hand_values);
  RUN(test_fft_crops_and_zero_pads_to_n);
  RUN(test_fft_along_a_leading_axis_of_a_transposed_view);
  RUN(test_rfft_matches_the_dft_of_real_input);
  RUN(test_irfft_matches_the_definition_for_even_and_odd_n);
  RUN(test_irfft_of_rfft_round_trips_and_pads_short_spectra);
  RUN(test_fftn_over_chosen_axes_matches_separable_dft);
  RUN(test_rfftn_and_irfftn_match_the_definition);
  RUN(test_stft_frames_of_whisper_size);
  RUN(test_fft_of_empty_batch_and_float64_input);
  RUN(test_fftshift_and_ifftshift_roll_by_half);
  RUN(test_fftfreq_and_rfftfreq_hand_values);
  RUN(test_fft_errors_are_reported);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
