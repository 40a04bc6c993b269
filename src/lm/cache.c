/* The standard KV cache: per layer, keys and values of shape (1, kv_heads, capacity, head_dim),
 * grown in steps of CACHE_STEP positions; new entries are written with slice_update and the
 * attention reads a view of the filled part. */
#include "lm/call.h"
#include "lm/model.h"

#define CACHE_STEP 256

/* Makes room for `extra` more positions, keeping the filled part. */
static int grow(lm_kv_cache* c, mlx_array like, int extra, mlx_stream s) {
  if (c->length + extra <= c->capacity) return 0;
  int new_capacity = (c->length + extra + CACHE_STEP - 1) / CACHE_STEP * CACHE_STEP;
  int shape[4] = {1, mlx_array_dim(like, 1), new_capacity, mlx_array_dim(like, 3)};
  mlx_array* parts[2] = {&c->keys, &c->values};
  int status = 0;
  for (int i = 0; i < 2; i++) {
    mlx_array fresh = mlx_array_new();
    status = mlx_zeros(&fresh, shape, 4, mlx_array_dtype(like), s);
    if (!status && c->length > 0) {
      int start[4] = {0, 0, 0, 0}, stop[4] = {1, shape[1], c->length, shape[3]};
      mlx_array filled = mlx_array_new();
      status = mlx_slice(&filled, *parts[i], start, 4, stop, 4, NULL, 0, s);
      if (!status) status = mlx_slice_update(&fresh, fresh, filled, start, 4, stop, 4, NULL, 0, s);
      mlx_array_free(filled);
    }
    if (status) {
      mlx_array_free(fresh);
      return status;
    }
    mlx_array_free(*parts[i]);
    *parts[i] = fresh;
  }
  c->capacity = new_capacity;
  return 0;
}

int lm_cache_update(lm_kv_cache* c, mlx_array k, mlx_array v, mlx_array* keys_out,
                    mlx_array* values_out, mlx_stream s) {
  int n = mlx_array_dim(k, 2);
  int status = 0;
  CALL(grow(c, k, n, s));
  int start[4] = {0, 0, c->length, 0};
  int stop[4] = {1, mlx_array_dim(k, 1), c->length + n, mlx_array_dim(k, 3)};
  CALL(mlx_slice_update(&c->keys, c->keys, k, start, 4, stop, 4, NULL, 0, s));
  CALL(mlx_slice_update(&c->values, c->values, v, start, 4, stop, 4, NULL, 0, s));
  c->length += n;
  int zero[4] = {0, 0, 0, 0}, end[4] = {1, mlx_array_dim(k, 1), c->length, mlx_array_dim(k, 3)};
  int vend[4] = {1, mlx_array_dim(v, 1), c->length, mlx_array_dim(v, 3)};
  CALL(mlx_slice(keys_out, c->keys, zero, 4, end, 4, NULL, 0, s));
  CALL(mlx_slice(values_out, c->values, zero, 4, vend, 4, NULL, 0, s));
cleanup:
  return status;
}

void lm_cache_free(lm_kv_cache* c) {
  mlx_array_free(c->keys);
  mlx_array_free(c->values);
  *c = (lm_kv_cache){0};
}
