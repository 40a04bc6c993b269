/* Shared by the CUDA tests: the CPU and GPU streams, random host inputs, reading results, and
 * comparing a GPU result with the CPU's. Each test program includes it once. */
#ifndef MLXC_TESTS_CUDA_TEST_UTIL_H
#define MLXC_TESTS_CUDA_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/array.h"
#include "mlx/c/mlx.h"
#include "test_util.h"

static mlx_stream cpu, gpu;
static uint64_t rng_state;

static inline double uniform(double lo, double hi) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

/* A host-resident array of uniform values in [lo, hi) (integers rounded) in `dtype`. */
static inline mlx_array rand_array(const int* shape, int nd, mlx_dtype dtype, double lo, double hi) {
  size_t n = 1;
  for (int i = 0; i < nd; i++) n *= (size_t)shape[i];
  float* v = malloc(sizeof(float) * (n ? n : 1));
  bool integer = dtype != MLX_FLOAT32 && dtype != MLX_FLOAT16 && dtype != MLX_BFLOAT16;
  for (size_t i = 0; i < n; i++) v[i] = integer ? (float)floor(uniform(lo, hi)) : (float)uniform(lo, hi);
  mlx_array f = mlx_array_new_data(v, shape, nd, MLX_FLOAT32), out = mlx_array_new();
  free(v);
  mlx_astype(&out, f, dtype, cpu);
  mlx_array_eval(out);
  mlx_array_free(f);
  return out;
}

/* Values of `a` as doubles (converted on the CPU stream); the caller frees. */
static inline double* values(mlx_array a, size_t* n) {
  mlx_array d = mlx_array_new();
  if (mlx_astype(&d, a, MLX_FLOAT64, cpu)) return NULL;
  const double* p = mlx_array_data_float64(d);
  *n = mlx_array_size(d);
  double* out = malloc(sizeof(double) * (*n ? *n : 1));
  if (p) memcpy(out, p, sizeof(double) * *n);
  mlx_array_free(d);
  return p ? out : (free(out), NULL);
}

/* GPU result vs CPU result: same dtype and shape; elementwise |g - c| <= atol + rtol |c| (NaN
 * matches NaN), and when `normwise` > 0 also ||g - c|| / ||c|| <= normwise instead of the
 * elementwise test. */
static inline void compare(const char* what, mlx_array g, mlx_array c, double rtol, double atol, double normwise) {
  CHECK_MSG(g.ctx && c.ctx, "%s: missing result", what);
  if (!g.ctx || !c.ctx) return;
  CHECK_MSG(mlx_array_dtype(g) == mlx_array_dtype(c), "%s: dtype %d vs %d", what, mlx_array_dtype(g), mlx_array_dtype(c));
  CHECK_MSG(mlx_array_ndim(g) == mlx_array_ndim(c), "%s: ndim", what);
  for (size_t i = 0; i < mlx_array_ndim(g) && i < mlx_array_ndim(c); i++)
    CHECK_MSG(mlx_array_shape(g)[i] == mlx_array_shape(c)[i], "%s: dim %zu", what, i);
  size_t ng = 0, nc = 0;
  double *vg = values(g, &ng), *vc = values(c, &nc);
  CHECK_MSG(vg && vc && ng == nc, "%s: could not read results", what);
  if (vg && vc && ng == nc) {
    double diff2 = 0, ref2 = 0;
    int bad = 0;
    for (size_t i = 0; i < ng; i++) {
      double x = vg[i], y = vc[i];
      if (isnan(x) && isnan(y)) continue;
      if (isnan(x) != isnan(y)) {
        bad++;
        continue;
      }
      if (isfinite(y)) ref2 += y * y;
      if (x == y) continue;  /* also equal infinities */
      diff2 += (x - y) * (x - y);
      if (normwise <= 0 && !(fabs(x - y) <= atol + rtol * fabs(y))) {
        if (bad++ < 3) fprintf(stderr, "  %s: element %zu: gpu %.9g cpu %.9g\n", what, i, x, y);
      }
    }
    if (normwise > 0) {
      double rel = ref2 > 0 ? sqrt(diff2 / ref2) : sqrt(diff2);
      CHECK_MSG(rel <= normwise, "%s: relative error %.3g > %.3g", what, rel, normwise);
    }
    CHECK_MSG(bad == 0, "%s: %d mismatching elements", what, bad);
  }
  free(vg);
  free(vc);
}

static inline bool made_on_gpu(mlx_array a) {
  if (mlx_array_eval(a)) return false;
  const core_array* c = core_ctx(a);
  return c && c->buffer && c->buffer->device_valid && !c->buffer->host_valid;
}

#endif
