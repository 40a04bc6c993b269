/* mlxc_fast_rope_kv against the ops it fuses: mlx_fast_rope_dynamic of q and k, and
 * mlx_slice_update_dynamic of the rotated k and of v into the caches, bit for bit. */
#include <string.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/fast.h"
#include "test_util.h"

static mlx_stream cpu;

static unsigned rng_state = 777;
static float frand(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return ((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static mlx_array random_array(const int* shape, int ndim, mlx_dtype dtype) {
  int n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  float* host = malloc(sizeof(float) * (size_t)n);
  for (int i = 0; i < n; i++) host[i] = frand();
  mlx_array a = mlx_array_new_data(host, shape, ndim, MLX_FLOAT32);
  free(host);
  mlx_astype(&a, a, dtype, cpu);
  mlx_array_eval(a);
  return a;
}

/* How many values of a and b (same shape) differ, compared as float32 (-1: unreadable). */
static int differing_values(mlx_array a, mlx_array b) {
  mlx_array fa = mlx_array_new(), fb = mlx_array_new();
  mlx_astype(&fa, a, MLX_FLOAT32, cpu);
  mlx_astype(&fb, b, MLX_FLOAT32, cpu);
  const float *pa = mlx_array_data_float32(fa), *pb = mlx_array_data_float32(fb);
  int bad = pa && pb && mlx_array_size(fa) == mlx_array_size(fb) ? 0 : -1;
  for (size_t i = 0; bad >= 0 && i < mlx_array_size(fa); i++) bad += pa[i] != pb[i];
  mlx_array_free(fa);
  mlx_array_free(fb);
  return bad;
}

typedef struct {
  int B, H, Hk, L, D, Dv, T, dims, position;
  bool traditional, joint, with_freqs;
} rope_kv_case;

/* One case: the fused op on copies of the caches (updated in place) against the composed ops. */
static void check_case(const rope_kv_case* c, mlx_dtype dtype) {
  int qs[4] = {c->B, c->joint ? c->H + c->Hk : c->H, c->L, c->D}, ks[4] = {c->B, c->Hk, c->L, c->D};
  int vs[4] = {c->B, c->Hk, c->L, c->Dv}, kc[4] = {c->B, c->Hk, c->T, c->D}, vc[4] = {c->B, c->Hk, c->T, c->Dv};
  int fs[1] = {c->dims / 2};
  mlx_array q0 = random_array(qs, 4, dtype), k0 = random_array(ks, 4, dtype), v0 = random_array(vs, 4, dtype);
  mlx_array keys0 = random_array(kc, 4, dtype), values0 = random_array(vc, 4, dtype);
  mlx_array freqs = mlx_array_new(), q = mlx_array_new(), k = mlx_array_new(), v = mlx_array_new();
  if (c->with_freqs) {
    freqs = random_array(fs, 1, MLX_FLOAT32);
    mlx_abs(&freqs, freqs, cpu);
    mlx_array one = mlx_array_new_float(1.0f);
    mlx_add(&freqs, freqs, one, cpu); /* wavelengths in [1, 2] */
    mlx_array_free(one);
  }
  mlx_optional_float base = {10000.0f, !c->with_freqs};
  if (c->joint) { /* q and k as two views of one projection's heads, as the decoder has them */
    int start[4] = {0, 0, 0, 0}, stop[4] = {c->B, c->H, c->L, c->D};
    mlx_slice(&q, q0, start, 4, stop, 4, NULL, 0, cpu);
    start[1] = c->H;
    stop[1] = c->H + c->Hk;
    mlx_slice(&k, q0, start, 4, stop, 4, NULL, 0, cpu);
  } else {
    mlx_array_set(&q, q0);
    mlx_swapaxes(&k, k0, 1, 2, cpu); /* strided: a row-major (B, L, Hk, D) read as (B, Hk, L, D) */
    mlx_copy(&k, k, cpu);
    mlx_swapaxes(&k, k, 1, 2, cpu);
  }
  mlx_swapaxes(&v, v0, 2, 3, cpu); /* a transposed copy read back through strides */
  mlx_copy(&v, v, cpu);
  mlx_swapaxes(&v, v, 2, 3, cpu);
  mlx_array position = mlx_array_new_int(c->position);
  /* The caches: private copies, so that the fused op may write them in place. */
  mlx_array keys = mlx_array_new(), values = mlx_array_new();
  mlx_copy(&keys, keys0, cpu);
  mlx_copy(&values, values0, cpu);
  mlx_array_eval(keys);
  mlx_array_eval(values);
  mlx_array qr = mlx_array_new();
  CHECK_EQ_INT(mlxc_fast_rope_kv(&qr, &keys, &values, q, k, v, keys, values, c->dims, c->traditional, base, 1.0f,
                                 position, freqs, cpu),
               0);
  mlx_array eq = mlx_array_new(), ek = mlx_array_new(), ekeys = mlx_array_new(), evalues = mlx_array_new();
  int axes[1] = {2};
  CHECK_EQ_INT(mlx_fast_rope_dynamic(&eq, q, c->dims, c->traditional, base, 1.0f, position, freqs, cpu), 0);
  CHECK_EQ_INT(mlx_fast_rope_dynamic(&ek, k, c->dims, c->traditional, base, 1.0f, position, freqs, cpu), 0);
  CHECK_EQ_INT(mlx_slice_update_dynamic(&ekeys, keys0, ek, position, axes, 1, cpu), 0);
  CHECK_EQ_INT(mlx_slice_update_dynamic(&evalues, values0, v, position, axes, 1, cpu), 0);
  mlx_array got[3] = {qr, keys, values}, want[3] = {eq, ekeys, evalues};
  for (int i = 0; i < 3; i++) {
    int bad = differing_values(got[i], want[i]);
    CHECK_MSG(bad == 0, "dtype %d, D %d, dims %d, L %d, position %d, traditional %d, joint %d, freqs %d: output %d, %d "
              "values differ", (int)dtype, c->D, c->dims, c->L, c->position, c->traditional, c->joint, c->with_freqs, i,
              bad);
  }
  mlx_array all[] = {q0, k0, v0, keys0, values0, freqs, q, k, v, position, keys, values, qr, eq, ek, ekeys, evalues};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

TEST(test_rope_kv_equals_rope_and_slice_updates) {
  const rope_kv_case cases[] = {
      /* B H Hk L D Dv T dims position traditional joint freqs */
      {1, 4, 2, 1, 16, 16, 9, 16, 5, false, true, false},   /* a decode step, q and k views of one array */
      {1, 4, 2, 1, 16, 16, 9, 16, 0, false, false, false},  /* strided k, slot 0 */
      {2, 6, 3, 2, 24, 8, 7, 16, 3, true, false, false},    /* batch 2, two new positions, partial dims, Dv < D */
      {1, 2, 1, 1, 8, 8, 6, 8, 9, false, true, true},       /* past the end: the slot clamps to 5, RoPE at 9 */
      {1, 2, 2, 1, 8, 8, 6, 8, -2, false, false, true},     /* negative: slot 4 counted from the end */
  };
  const mlx_dtype dtypes[3] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int t = 0; t < 3; t++) check_case(&cases[i], dtypes[t]);
}

/* The caches are written in place when the caller's handles are the only references, and left
 * alone (the result a copy) when another handle still sees them. */
TEST(test_rope_kv_in_place_only_when_unshared) {
  int qs[4] = {1, 2, 1, 8}, ks[4] = {1, 1, 1, 8}, cs[4] = {1, 1, 4, 8};
  mlx_array q = random_array(qs, 4, MLX_FLOAT32), k = random_array(ks, 4, MLX_FLOAT32);
  mlx_array v = random_array(ks, 4, MLX_FLOAT32), keys = random_array(cs, 4, MLX_FLOAT32);
  mlx_array values = random_array(cs, 4, MLX_FLOAT32), position = mlx_array_new_int(1), qr = mlx_array_new();
  mlx_optional_float base = {10000.0f, true};
  mlx_array seen = mlx_array_new();
  mlx_array_set(&seen, values); /* a second handle on the value cache */
  float before = mlx_array_data_float32(seen)[8];
  const float* key_data = mlx_array_data_float32(keys);
  CHECK_EQ_INT(mlxc_fast_rope_kv(&qr, &keys, &values, q, k, v, keys, values, 8, false, base, 1.0f, position,
                                 mlx_array_new(), cpu),
               0);
  mlx_array_eval(values);
  CHECK(mlx_array_data_float32(keys) == key_data); /* written in place */
  CHECK(mlx_array_data_float32(seen)[8] == before);  /* the shared one copied */
  CHECK(mlx_array_data_float32(values)[8] == mlx_array_data_float32(v)[0]);
  mlx_array all[] = {q, k, v, keys, values, position, qr, seen};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

TEST(test_rope_kv_errors) {
  int qs[4] = {1, 2, 1, 8}, ks[4] = {1, 1, 1, 8}, cs[4] = {1, 1, 4, 8}, bad_cs[4] = {1, 2, 4, 8};
  mlx_array q = random_array(qs, 4, MLX_FLOAT32), k = random_array(ks, 4, MLX_FLOAT32);
  mlx_array cache = random_array(cs, 4, MLX_FLOAT32), other = random_array(bad_cs, 4, MLX_FLOAT32);
  mlx_array half = random_array(cs, 4, MLX_FLOAT16), position = mlx_array_new_int(1), fpos = mlx_array_new_float(1);
  mlx_array a = mlx_array_new(), b = mlx_array_new(), c = mlx_array_new(), none = mlx_array_new();
  mlx_optional_float base = {10000.0f, true}, no_base = {0, false};
  mlxc_set_errors_quiet(1);
  CHECK(mlxc_fast_rope_kv(&a, &b, &c, q, k, k, other, cache, 8, false, base, 1.0f, position, none, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "shapes") != NULL);
  CHECK(mlxc_fast_rope_kv(&a, &b, &c, q, k, k, cache, half, 8, false, base, 1.0f, position, none, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "dtype") != NULL);
  CHECK(mlxc_fast_rope_kv(&a, &b, &c, q, k, k, cache, cache, 8, false, base, 1.0f, fpos, none, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "position") != NULL);
  CHECK(mlxc_fast_rope_kv(&a, &b, &c, q, k, k, cache, cache, 7, false, base, 1.0f, position, none, cpu) != 0);
  CHECK(mlxc_fast_rope_kv(&a, &b, &c, q, k, k, cache, cache, 8, false, no_base, 1.0f, position, none, cpu) != 0);
  CHECK(mlxc_fast_rope_kv(&a, &b, &c, q, none, k, cache, cache, 8, false, base, 1.0f, position, none, cpu) != 0);
  CHECK(mlxc_fast_rope_kv(&a, &b, &c, cache, cache, cache, q, q, 8, false, base, 1.0f, position, none, cpu) != 0);
  mlxc_set_errors_quiet(0);
  mlx_array all[] = {q, k, cache, other, half, position, fpos, a, b, c};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_rope_kv_equals_rope_and_slice_updates);
  RUN(test_rope_kv_in_place_only_when_unshared);
  RUN(test_rope_kv_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
