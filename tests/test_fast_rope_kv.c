/* mlxc_fast_rope_kv against the ops it fuses: mlx_fast_rope_dynamic of q and k, and
 * mlx_slice_update_dynamic of the rotated k and of v into the caches, bit for bit. */
#include <string.h>

#include "mlx/c/mlx.h"
#include "mlxc/error.h"
#include "mlxc/fast.h"
#include "bits_test_util.h"
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

/* ---- mlxc_fast_rope_kv_attention: rope_kv, then sdpa of the rotated q over the updated caches ---- */

/* Whether every value of a is finite (the case attends to something). */
static bool all_finite(mlx_array a) {
  mlx_array f = mlx_array_new();
  mlx_astype(&f, a, MLX_FLOAT32, cpu);
  const float* p = mlx_array_data_float32(f);
  bool ok = p != NULL;
  for (size_t i = 0; ok && i < mlx_array_size(f); i++) ok = isfinite(p[i]);
  mlx_array_free(f);
  return ok;
}

typedef enum { MASK_NONE, MASK_CAUSAL, MASK_BOOL_T, MASK_FLOAT_LT } attn_mask_kind;

typedef struct {
  int B, H, Hk, L, D, Dv, T, dims, position;
  bool traditional, with_freqs;
  attn_mask_kind mask;
  bool joint; /* q and k two views of one projection's heads */
} rope_attn_case;

/* A private, evaluated copy of a (a cache the op may write in place). */
static mlx_array private_copy(mlx_array a) {
  mlx_array c = mlx_array_new();
  mlx_copy(&c, a, cpu);
  mlx_array_eval(c);
  return c;
}

/* One case: the fused op against mlxc_fast_rope_kv then mlx_fast_scaled_dot_product_attention,
 * each on its own copies of the caches. shared: a second handle sees the fused op's caches (so
 * that they are copied, not written in place), which must then still hold their old values. */
static void check_attention_case(const rope_attn_case* c, mlx_dtype dtype, bool shared) {
  int qs[4] = {c->B, c->H, c->L, c->D}, ks[4] = {c->B, c->Hk, c->L, c->D}, vs[4] = {c->B, c->Hk, c->L, c->Dv};
  int kc[4] = {c->B, c->Hk, c->T, c->D}, vc[4] = {c->B, c->Hk, c->T, c->Dv}, fs[1] = {c->dims / 2};
  mlx_array q = random_array(qs, 4, dtype), k = random_array(ks, 4, dtype), v = random_array(vs, 4, dtype);
  mlx_array keys0 = random_array(kc, 4, dtype), values0 = random_array(vc, 4, dtype);
  mlx_array freqs = mlx_array_new(), mask = mlx_array_new(), position = mlx_array_new_int(c->position);
  if (c->joint) { /* strided q and k, as the decoder slices them from one projection */
    int js[4] = {c->B, c->H + c->Hk, c->L, c->D}, start[4] = {0, 0, 0, 0}, stop[4] = {c->B, c->H, c->L, c->D};
    mlx_array qk = random_array(js, 4, dtype);
    mlx_slice(&q, qk, start, 4, stop, 4, NULL, 0, cpu);
    start[1] = c->H;
    stop[1] = c->H + c->Hk;
    mlx_slice(&k, qk, start, 4, stop, 4, NULL, 0, cpu);
    mlx_array_free(qk);
  }
  if (c->with_freqs) {
    freqs = random_array(fs, 1, MLX_FLOAT32);
    mlx_abs(&freqs, freqs, cpu);
    mlx_array one = mlx_array_new_float(1.0f);
    mlx_add(&freqs, freqs, one, cpu); /* wavelengths in [1, 2] */
    mlx_array_free(one);
  }
  const char* mode = c->mask == MASK_CAUSAL ? "causal" : c->mask == MASK_NONE ? "" : "array";
  if (c->mask == MASK_BOOL_T) { /* (T), broadcast over (B, H, L, T): every third slot hidden, slot 0 seen */
    bool* host = malloc(sizeof(bool) * (size_t)c->T);
    for (int j = 0; j < c->T; j++) host[j] = j % 3 != 1;
    mask = mlx_array_new_data(host, &c->T, 1, MLX_BOOL);
    free(host);
  } else if (c->mask == MASK_FLOAT_LT) { /* additive, (1, 1, L, T) */
    int ms[4] = {1, 1, c->L, c->T};
    mask = random_array(ms, 4, dtype);
  }
  float scale = 1.0f / sqrtf((float)c->D);
  mlx_optional_float base = {10000.0f, !c->with_freqs};

  /* Composed: rope_kv on one copy of the caches, then attention over what it gives. */
  mlx_array ckeys = private_copy(keys0), cvalues = private_copy(values0), qr = mlx_array_new();
  mlx_array want = mlx_array_new();
  CHECK_EQ_INT(mlxc_fast_rope_kv(&qr, &ckeys, &cvalues, q, k, v, ckeys, cvalues, c->dims, c->traditional, base, 1.0f,
                                 position, freqs, cpu),
               0);
  CHECK_EQ_INT(
      mlx_fast_scaled_dot_product_attention(&want, qr, ckeys, cvalues, scale, mode, mask, mlx_array_new(), cpu), 0);
  /* Fused, on another copy, called as a decode step calls it (results over the caches). */
  mlx_array keys = private_copy(keys0), values = private_copy(values0), got = mlx_array_new();
  mlx_array seen_keys = mlx_array_new(), seen_values = mlx_array_new();
  if (shared) {
    mlx_array_set(&seen_keys, keys);
    mlx_array_set(&seen_values, values);
  }
  CHECK_EQ_INT(mlxc_fast_rope_kv_attention(&got, &keys, &values, q, k, v, keys, values, c->dims, c->traditional, base,
                                           1.0f, position, freqs, scale, mode, mask, cpu),
               0);
  mlx_array gots[3] = {got, keys, values}, wants[3] = {want, ckeys, cvalues};
  for (int i = 0; i < 3; i++) {
    long at = bits_first_difference(gots[i], wants[i]);
    CHECK_MSG(at == -1, "dtype %d, B %d, H %d, Hk %d, L %d, D %d, T %d, dims %d, position %d, traditional %d, "
              "freqs %d, mask %d, shared %d: output %d differs at element %ld (got %.9g, want %.9g)", (int)dtype, c->B,
              c->H, c->Hk, c->L, c->D, c->T, c->dims, c->position, c->traditional, c->with_freqs, (int)c->mask, shared,
              i, at, bits_value_at(gots[i], at, cpu), bits_value_at(wants[i], at, cpu));
  }
  CHECK_MSG(all_finite(want), "dtype %d, D %d, L %d, mask %d: the attention is not finite", (int)dtype, c->D, c->L,
            (int)c->mask);
  if (shared) { /* the other handles still see the old caches */
    CHECK_EQ_INT(bits_first_difference(seen_keys, keys0), -1);
    CHECK_EQ_INT(bits_first_difference(seen_values, values0), -1);
  }
  mlx_array all[] = {q,  k,    v,    keys0,  values0, freqs, mask,      position,   ckeys,
                     cvalues, qr, want, keys, values, got, seen_keys, seen_values};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

TEST(test_rope_kv_attention_equals_composed) {
  const rope_attn_case cases[] = {
      /* B H Hk L D Dv T dims position traditional freqs mask joint */
      {1, 4, 2, 1, 64, 64, 12, 64, 5, false, false, MASK_NONE, true},       /* a decode step, GQA 2 */
      {1, 4, 2, 1, 64, 64, 12, 32, 0, true, false, MASK_CAUSAL, false},     /* slot 0, half the dims */
      {1, 6, 1, 1, 16, 16, 9, 16, 8, false, true, MASK_BOOL_T, false},      /* the last slot, 6 heads on 1, freqs */
      {1, 6, 1, 3, 16, 16, 9, 8, 4, true, true, MASK_FLOAT_LT, true},       /* three rows in the middle */
      {2, 4, 2, 3, 8, 8, 7, 8, -3, false, false, MASK_CAUSAL, false},       /* negative: slot 4, the last three */
      {1, 4, 2, 1, 8, 8, 5, 4, -1, true, false, MASK_BOOL_T, true},         /* negative: the last slot */
      {1, 6, 1, 3, 64, 64, 16, 32, 6, false, true, MASK_NONE, false},       /* three rows, partial dims, freqs */
      {2, 4, 2, 1, 16, 16, 10, 16, 9, true, true, MASK_FLOAT_LT, false},    /* batch 2, the last slot */
      {1, 6, 1, 3, 8, 8, 6, 4, 0, false, false, MASK_BOOL_T, false},        /* three rows from slot 0 */
      {1, 4, 2, 3, 16, 8, 8, 16, 2, false, false, MASK_CAUSAL, true},       /* Dv < D */
      {1, 4, 2, 1, 64, 64, 12, 32, 11, false, true, MASK_FLOAT_LT, false},  /* the last slot, half the dims, freqs */
      {1, 4, 2, 3, 64, 64, 12, 64, -5, true, false, MASK_BOOL_T, false},    /* negative, three rows: slot 7 */
      {1, 4, 2, 1, 64, 64, 640, 64, 300, false, false, MASK_NONE, true},    /* a long cache: split key ranges */
      {1, 6, 1, 3, 64, 64, 700, 32, 697, true, true, MASK_BOOL_T, false},   /* long, the last three slots */
  };
  const mlx_dtype dtypes[3] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (int t = 0; t < 3; t++) check_attention_case(&cases[i], dtypes[t], (i + (size_t)t) % 2 == 1);
}

/* The caches are written in place when the caller's handles are the only references, and left
 * alone (the results copies) when other handles still see them. */
TEST(test_rope_kv_attention_in_place) {
  int qs[4] = {1, 4, 1, 8}, ks[4] = {1, 2, 1, 8}, cs[4] = {1, 2, 6, 8};
  mlx_array q = random_array(qs, 4, MLX_FLOAT32), k = random_array(ks, 4, MLX_FLOAT32);
  mlx_array v = random_array(ks, 4, MLX_FLOAT32), keys = random_array(cs, 4, MLX_FLOAT32);
  mlx_array values = random_array(cs, 4, MLX_FLOAT32), position = mlx_array_new_int(2), out = mlx_array_new();
  mlx_optional_float base = {10000.0f, true};
  const float scale = 0.35f;
  /* Unshared: both caches written where they are. */
  const float *key_data = mlx_array_data_float32(keys), *value_data = mlx_array_data_float32(values);
  CHECK_EQ_INT(mlxc_fast_rope_kv_attention(&out, &keys, &values, q, k, v, keys, values, 8, false, base, 1.0f,
                                           position, mlx_array_new(), scale, "", mlx_array_new(), cpu),
               0);
  mlx_array_eval(out);
  CHECK(mlx_array_data_float32(keys) == key_data);
  CHECK(mlx_array_data_float32(values) == value_data);
  for (int h = 0; h < 2; h++) /* slot 2 of each head holds v */
    for (int d = 0; d < 8; d++)
      CHECK(mlx_array_data_float32(values)[h * 48 + 16 + d] == mlx_array_data_float32(v)[h * 8 + d]);
  /* Shared: other handles on both caches keep seeing the old values. */
  mlx_array seen_keys = mlx_array_new(), seen_values = mlx_array_new();
  mlx_array_set(&seen_keys, keys);
  mlx_array_set(&seen_values, values);
  float old_keys[96], old_values[96];
  memcpy(old_keys, mlx_array_data_float32(keys), sizeof old_keys);
  memcpy(old_values, mlx_array_data_float32(values), sizeof old_values);
  mlx_array v2 = random_array(ks, 4, MLX_FLOAT32), position2 = mlx_array_new_int(3);
  CHECK_EQ_INT(mlxc_fast_rope_kv_attention(&out, &keys, &values, q, k, v2, keys, values, 8, false, base, 1.0f,
                                           position2, mlx_array_new(), scale, "causal", mlx_array_new(), cpu),
               0);
  mlx_array_eval(out);
  CHECK(mlx_array_data_float32(keys) != mlx_array_data_float32(seen_keys));
  CHECK(mlx_array_data_float32(values) != mlx_array_data_float32(seen_values));
  CHECK(memcmp(mlx_array_data_float32(seen_keys), old_keys, sizeof old_keys) == 0);
  CHECK(memcmp(mlx_array_data_float32(seen_values), old_values, sizeof old_values) == 0);
  CHECK(mlx_array_data_float32(values)[24] == mlx_array_data_float32(v2)[0]);
  CHECK(mlx_array_data_float32(values)[16] == old_values[16]); /* the last step's row kept */
  mlx_array all[] = {q, k, v, keys, values, position, out, seen_keys, seen_values, v2, position2};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

/* A failing call returns non-zero with a message and leaves the result handles as they were. */
static void check_attention_fails(mlx_array* out, mlx_array* ko, mlx_array* vo, const mlx_array q, const mlx_array k,
                                  const mlx_array v, const mlx_array keys, const mlx_array values, int dims,
                                  const mlx_array position, const char* mode, const mlx_array mask, const char* what) {
  void *before[3] = {out->ctx, ko->ctx, vo->ctx};
  mlx_optional_float base = {10000.0f, true};
  int status = mlxc_fast_rope_kv_attention(out, ko, vo, q, k, v, keys, values, dims, false, base, 1.0f, position,
                                           mlx_array_new(), 0.5f, mode, mask, cpu);
  CHECK_MSG(status != 0, "%s: accepted", what);
  const char* msg = mlxc_last_error();
  CHECK_MSG(msg && msg[0], "%s: no message", what);
  CHECK_MSG(out->ctx == before[0] && ko->ctx == before[1] && vo->ctx == before[2], "%s: results replaced", what);
}

TEST(test_rope_kv_attention_errors) {
  int qs[4] = {1, 2, 1, 8}, q3[3] = {2, 1, 8}, ks[4] = {1, 1, 1, 8}, cs[4] = {1, 1, 4, 8}, bad_cs[4] = {1, 2, 4, 8};
  int bad_mask_shape[1] = {5}, big_mask_shape[4] = {1, 1, 2, 4}, mask_shape[4] = {1, 1, 1, 4};
  mlx_array q = random_array(qs, 4, MLX_FLOAT32), q_3d = random_array(q3, 3, MLX_FLOAT32);
  mlx_array k = random_array(ks, 4, MLX_FLOAT32), cache = random_array(cs, 4, MLX_FLOAT32);
  mlx_array other = random_array(bad_cs, 4, MLX_FLOAT32), half = random_array(cs, 4, MLX_FLOAT16);
  mlx_array q_half = random_array(qs, 4, MLX_FLOAT16), bad_mask = random_array(bad_mask_shape, 1, MLX_FLOAT32);
  mlx_array big_mask = random_array(big_mask_shape, 4, MLX_FLOAT32), mask = random_array(mask_shape, 4, MLX_FLOAT32);
  mlx_array position = mlx_array_new_int(1), fpos = mlx_array_new_float(1), none = mlx_array_new();
  /* The results hold arrays of their own before the calls. */
  mlx_array a = mlx_array_new_float(1.0f), b = mlx_array_new_float(2.0f), c = mlx_array_new_float(3.0f);
  mlxc_set_errors_quiet(1);
  check_attention_fails(&a, &b, &c, q, k, k, other, cache, 8, position, "", none, "cache shapes");
  check_attention_fails(&a, &b, &c, q, k, k, cache, other, 8, position, "", none, "value cache shape");
  check_attention_fails(&a, &b, &c, q, k, k, cache, cache, 8, fpos, "", none, "float position");
  check_attention_fails(&a, &b, &c, q, k, k, cache, cache, 7, position, "", none, "odd dims");
  check_attention_fails(&a, &b, &c, q, k, k, cache, cache, 16, position, "", none, "dims > D");
  check_attention_fails(&a, &b, &c, q, k, k, cache, cache, 8, position, "foo", none, "mask mode foo");
  check_attention_fails(&a, &b, &c, q, k, k, cache, cache, 8, position, "array", none, "array without a mask");
  check_attention_fails(&a, &b, &c, q, k, k, cache, cache, 8, position, "array", bad_mask, "mask not broadcasting");
  check_attention_fails(&a, &b, &c, q, k, k, cache, cache, 8, position, "array", big_mask, "mask of 2 rows for 1");
  check_attention_fails(&a, &b, &c, q_3d, k, k, cache, cache, 8, position, "", none, "3-D q");
  check_attention_fails(&a, &b, &c, q, k, k, cache, half, 8, position, "", none, "float16 values");
  check_attention_fails(&a, &b, &c, q_half, k, k, cache, cache, 8, position, "", none, "float16 q");
  check_attention_fails(&a, &b, &c, q, none, k, cache, cache, 8, position, "", none, "empty k");
  mlxc_set_errors_quiet(0);
  float x = 0;
  CHECK(mlx_array_item_float32(&x, a) == 0 && x == 1.0f); /* still usable */
  CHECK(mlx_array_item_float32(&x, c) == 0 && x == 3.0f);
  /* And the same handles take a valid call's results. */
  mlx_optional_float base = {10000.0f, true};
  CHECK_EQ_INT(mlxc_fast_rope_kv_attention(&a, &b, &c, q, k, k, cache, cache, 8, false, base, 1.0f, position, none,
                                           0.5f, "array", mask, cpu),
               0);
  mlx_array_eval(a);
  CHECK_EQ_INT(mlx_array_ndim(a), 4);
  CHECK_EQ_INT(mlx_array_shape(a)[1], 2);
  CHECK_EQ_INT(mlx_array_shape(b)[2], 4);
  mlx_array all[] = {q, q_3d, k, cache, other, half, q_half, bad_mask, big_mask, mask, position, fpos, a, b, c};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(all[i]);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_rope_kv_equals_rope_and_slice_updates);
  RUN(test_rope_kv_in_place_only_when_unshared);
  RUN(test_rope_kv_errors);
  RUN(test_rope_kv_attention_equals_composed);
  RUN(test_rope_kv_attention_in_place);
  RUN(test_rope_kv_attention_errors);
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
