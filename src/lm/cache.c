/* KV caches, as mlx-lm's: standard (KVCache, grown in steps of CACHE_STEP positions), rotating
 * (RotatingKVCache: at most max_size positions, the first `keep` never evicted) and quantized
 * (QuantizedKVCache: MLX affine quantization of keys and values). Arrays are
 * (B, kv_heads, capacity, head_dim); the absolute position (column, for a batch) in each slot is
 * kept on the host so the decoder can mask any layout, rotated or not. */
#include <stdlib.h>
#include <string.h>

#include "lm/call.h"
#include "lm/model.h"
#include "util/error.h"

#define CACHE_STEP 256

static int count_parts(const lm_kv_cache* c) { return c->quantized ? 6 : 2; }

/* Slots [start, stop) of x (B, heads, slots, d). */
static int slots(mlx_array* out, mlx_array x, int start, int stop, mlx_stream s) {
  int begin[4] = {0, 0, start, 0}, end[4] = {mlx_array_dim(x, 0), mlx_array_dim(x, 1), stop, mlx_array_dim(x, 3)};
  return mlx_slice(out, x, begin, 4, end, 4, NULL, 0, s);
}

static int resize_positions(lm_kv_cache* c, int capacity) {
  int* p = realloc(c->positions, sizeof(int) * (size_t)(capacity > 0 ? capacity : 1));
  if (!p) return util_error("out of memory");
  c->positions = p;
  return 0;
}

/* Affine-quantizes x (1, heads, n, d) along d into out[0..2]: packed, scales, biases. */
static int quantize(mlx_array out[3], mlx_array x, const lm_cache_options* o, mlx_stream s) {
  mlx_vector_array parts = mlx_vector_array_new();
  mlx_optional_int group = {o->group_size, true}, bits = {o->bits, true};
  int status = mlx_quantize(&parts, x, group, bits, "affine", mlx_array_new(), s);
  for (int i = 0; i < 3 && !status; i++) status = mlx_vector_array_get(&out[i], parts, (size_t)i);
  mlx_vector_array_free(parts);
  return status;
}

/* mlx-lm's to_quantized: the float cache becomes a quantized one holding the same positions. */
static int quantize_cache(lm_kv_cache* c, mlx_stream s) {
  mlx_array filled = mlx_array_new(), parts[6];
  for (int i = 0; i < 6; i++) parts[i] = mlx_array_new();
  int status = 0;
  for (int i = 0; i < 2; i++) {
    CALL(slots(&filled, c->parts[i], 0, c->length, s));
    CALL(quantize(&parts[3 * i], filled, &c->options, s));
  }
  for (int i = 0; i < 6; i++) {
    mlx_array_free(c->parts[i]);
    c->parts[i] = parts[i];
    parts[i] = mlx_array_new();
  }
  c->quantized = true;
  c->capacity = c->length;
cleanup:
  mlx_array_free(filled);
  for (int i = 0; i < 6; i++) mlx_array_free(parts[i]);
  return status;
}

int lm_cache_rounded_capacity(int slots) { return (slots + CACHE_STEP - 1) / CACHE_STEP * CACHE_STEP; }

/* Reallocates every part with `capacity` slots, keeping the filled ones; `like` gives each
 * part's dtype and first, second and last dimensions. */
static int grow_to(lm_kv_cache* c, const mlx_array* like, int capacity, mlx_stream s) {
  int status = resize_positions(c, capacity);
  for (int i = 0; i < count_parts(c) && !status; i++) {
    int shape[4] = {mlx_array_dim(like[i], 0), mlx_array_dim(like[i], 1), capacity, mlx_array_dim(like[i], 3)};
    mlx_array fresh = mlx_array_new(), filled = mlx_array_new();
    status = mlx_zeros(&fresh, shape, 4, mlx_array_dtype(like[i]), s);
    if (!status && c->length > 0) {
      int start[4] = {0, 0, 0, 0}, stop[4] = {shape[0], shape[1], c->length, shape[3]};
      status = slots(&filled, c->parts[i], 0, c->length, s);
      if (!status) status = mlx_slice_update(&fresh, fresh, filled, start, 4, stop, 4, NULL, 0, s);
    }
    mlx_array_free(filled);
    if (!status) status = mlx_array_set(&c->parts[i], fresh);
    mlx_array_free(fresh);
  }
  if (!status) c->capacity = capacity;
  return status;
}

/* Makes room for `extra` more slots after the filled ones; `like` gives each part's dtype and
 * last dimension. A rotating cache grows no further than its size. */
static int grow(lm_kv_cache* c, const mlx_array* like, int extra, mlx_stream s) {
  if (c->length + extra <= c->capacity) return 0;
  int capacity = lm_cache_rounded_capacity(c->length + extra);
  int bounded = c->options.max_size > c->length + extra ? c->options.max_size : c->length + extra;
  if (c->options.max_size > 0 && capacity > bounded) capacity = bounded;
  return grow_to(c, like, capacity, s);
}

/* Writes n new entries into slots first..first+n-1. */
static int write_slots(lm_kv_cache* c, const mlx_array* incoming, int first, int n, int offset, mlx_stream s) {
  int status = 0;
  for (int i = 0; i < count_parts(c) && !status; i++) {
    int start[4] = {0, 0, first, 0};
    int stop[4] = {mlx_array_dim(incoming[i], 0), mlx_array_dim(incoming[i], 1), first + n, mlx_array_dim(incoming[i], 3)};
    status = mlx_slice_update(&c->parts[i], c->parts[i], incoming[i], start, 4, stop, 4, NULL, 0, s);
  }
  for (int j = 0; j < n && !status; j++) c->positions[first + j] = offset + j;
  return status;
}

/* The slot holding the oldest position that may be evicted (not among the first `keep`). */
static int oldest_evictable(const lm_kv_cache* c) {
  int best = -1;
  for (int i = 0; i < c->length; i++)
    if (c->positions[i] >= c->options.keep && (best < 0 || c->positions[i] < c->positions[best])) best = i;
  return best;
}

static int by_position(const void* a, const void* b) {
  const int* x = a;
  const int* y = b;
  return (x[0] > y[0]) - (x[0] < y[0]);
}

/* Keeps the first `keep` positions and the newest others, max_size - 1 in all, in temporal
 * order, then appends the n new entries (as mlx-lm's _update_concat: every new token still sees
 * max_size - 1 earlier ones). */
static int evict_and_append(lm_kv_cache* c, const mlx_array* incoming, int n, int offset, mlx_stream s) {
  int (*order)[2] = malloc(sizeof *order * (size_t)c->length);
  int32_t* kept = malloc(sizeof(int32_t) * (size_t)c->length);
  mlx_array index = mlx_array_new(), taken = mlx_array_new();
  mlx_vector_array pair = mlx_vector_array_new();
  int status = 0;
  if (!order || !kept) CALL(util_error("out of memory"));
  for (int i = 0; i < c->length; i++) order[i][0] = c->positions[i], order[i][1] = i;
  qsort(order, (size_t)c->length, sizeof *order, by_position);
  int sinks = 0, retained = 0, others = 0;
  while (sinks < c->length && order[sinks][0] < c->options.keep) sinks++;
  others = c->options.max_size - 1 - sinks;
  if (others < 0) others = 0;
  for (int i = 0; i < c->length; i++)
    if (i < sinks || i >= c->length - others) kept[retained++] = order[i][1];
  int shape[1] = {retained};
  index = mlx_array_new_data(kept, shape, 1, MLX_INT32);
  for (int i = 0; i < count_parts(c); i++) {
    mlx_vector_array_free(pair);
    pair = mlx_vector_array_new();
    if (retained > 0) {
      CALL(mlx_take_axis(&taken, c->parts[i], index, 2, s));
      CALL(mlx_vector_array_append_value(pair, taken));
    }
    CALL(mlx_vector_array_append_value(pair, incoming[i]));
    CALL(mlx_concatenate_axis(&c->parts[i], pair, 2, s));
  }
  CALL(resize_positions(c, retained + n));
  for (int i = 0; i < retained; i++) c->positions[i] = order[i < sinks ? i : c->length - others + (i - sinks)][0];
  for (int j = 0; j < n; j++) c->positions[retained + j] = offset + j;
  c->length = c->capacity = retained + n;
  c->evicted = true;
cleanup:
  free(order);
  free(kept);
  mlx_array_free(index);
  mlx_array_free(taken);
  mlx_vector_array_free(pair);
  return status;
}

static int make_view(const lm_kv_cache* c, lm_kv_view* view, mlx_stream s) {
  int half = count_parts(c) / 2, status = 0;
  view->quantized = c->quantized;
  view->group_size = c->options.group_size;
  view->bits = c->options.bits;
  for (int i = 0; i < half && !status; i++) {
    status = slots(&view->keys[i], c->parts[i], 0, c->length, s);
    if (!status) status = slots(&view->values[i], c->parts[half + i], 0, c->length, s);
  }
  return status;
}

int lm_cache_update(lm_kv_cache* c, mlx_array k, mlx_array v, int offset, lm_kv_view* view, mlx_stream s) {
  const lm_cache_options* o = &c->options;
  int n = mlx_array_dim(k, 2), status = 0;
  mlx_array incoming[6];
  for (int i = 0; i < 6; i++) incoming[i] = mlx_array_new();
  /* As mlx-lm, which quantizes after the step that reaches quantized_kv_start. */
  if (o->bits && !c->quantized && o->max_size == 0 && c->length > 0 && c->length >= o->quantize_from)
    CALL(quantize_cache(c, s));
  if (c->quantized) {
    CALL(quantize(&incoming[0], k, o, s));
    CALL(quantize(&incoming[3], v, o, s));
  } else {
    CALL(mlx_array_set(&incoming[0], k));
    CALL(mlx_array_set(&incoming[1], v));
  }
  int drop = o->max_size > 0 ? c->length - (o->max_size - 1) : 0;
  if (drop <= 0) {
    CALL(grow(c, incoming, n, s));
    CALL(write_slots(c, incoming, c->length, n, offset, s));
    c->length += n;
  } else if (drop == 1 && n == 1 && oldest_evictable(c) >= 0) {
    CALL(write_slots(c, incoming, oldest_evictable(c), 1, offset, s)); /* rotate in place */
    c->evicted = true;
  } else {
    CALL(evict_and_append(c, incoming, n, offset, s));
  }
  CALL(make_view(c, view, s));
cleanup:
  for (int i = 0; i < 6; i++) mlx_array_free(incoming[i]);
  return status;
}

int lm_cache_make_static(lm_kv_cache* c, int offset, int capacity, mlx_stream s) {
  if (c->quantized) return util_error("static decode needs a float KV cache");
  if (capacity < offset || capacity < c->capacity)
    return util_error("a KV cache of %d slots holding %d positions cannot become %d slots", c->capacity, offset, capacity);
  if (c->length == offset) return capacity > c->capacity ? grow_to(c, c->parts, capacity, s) : 0;
  /* Some positions have been dropped: the slots hold the newest `length` in rotated order. */
  int first = offset - c->length, status = 0;
  int32_t* slot_of = malloc(sizeof(int32_t) * (size_t)c->length);
  mlx_array index = mlx_array_new(), held = mlx_array_new(), fresh = mlx_array_new();
  if (!slot_of) CALL(util_error("out of memory"));
  for (int p = 0; p < c->length; p++) slot_of[p] = -1;
  for (int j = 0; j < c->length; j++) {
    int p = c->positions[j] - first;
    if (p < 0 || p >= c->length || slot_of[p] >= 0)
      CALL(util_error("a KV cache whose slots do not hold its newest %d positions cannot be laid out by position", c->length));
    slot_of[p] = j;
  }
  int index_shape[1] = {c->length};
  index = mlx_array_new_data(slot_of, index_shape, 1, MLX_INT32);
  if (!index.ctx) CALL(1);
  for (int i = 0; i < 2; i++) {
    mlx_array part = c->parts[i];
    int shape[4] = {mlx_array_dim(part, 0), mlx_array_dim(part, 1), capacity, mlx_array_dim(part, 3)};
    int start[4] = {0, 0, first, 0}, stop[4] = {shape[0], shape[1], offset, shape[3]};
    CALL(mlx_take_axis(&held, part, index, 2, s)); /* (B, K, length, hd) in position order */
    CALL(mlx_zeros(&fresh, shape, 4, mlx_array_dtype(part), s));
    CALL(mlx_slice_update(&fresh, fresh, held, start, 4, stop, 4, NULL, 0, s));
    CALL(mlx_array_set(&c->parts[i], fresh));
  }
  CALL(resize_positions(c, capacity));
  for (int p = 0; p < offset; p++) c->positions[p] = p;
  c->length = offset;
  c->capacity = capacity;
cleanup:
  free(slot_of);
  mlx_array_free(index);
  mlx_array_free(held);
  mlx_array_free(fresh);
  return status;
}

int lm_cache_first_saved_slot(const lm_kv_cache* c, int offset) {
  if (c->evicted && c->length == offset && c->options.max_size > 0 && c->length > c->options.max_size)
    return c->length - c->options.max_size;
  return 0;
}

void lm_cache_view_free(lm_kv_view* view) {
  for (int i = 0; i < 3; i++) {
    mlx_array_free(view->keys[i]);
    mlx_array_free(view->values[i]);
    view->keys[i] = view->values[i] = mlx_array_new();
  }
}

int lm_cache_truncate(lm_kv_cache* c, int length) {
  if (c->evicted)
    return util_error("a rotating KV cache that has dropped positions cannot be rewound; reset the session instead");
  if (c->length > length) c->length = length;
  return 0;
}

int lm_cache_next_slot(const lm_kv_cache* c) {
  for (int i = 1; i < c->length; i++)
    if (c->positions[i] < c->positions[i - 1]) return oldest_evictable(c);
  return c->length;
}

int lm_cache_restore(lm_kv_cache* c, const mlx_array* parts, int n_parts, int offset, int next) {
  int length = mlx_array_dim(parts[0], 2), keep = c->options.keep, status = 0;
  if (offset < length || next < 0 || next > length)
    return util_error("inconsistent KV cache state: %d slots, offset %d, next slot %d", length, offset, next);
  CALL(resize_positions(c, length));
  for (int i = 0; i < n_parts; i++) CALL(mlx_array_set(&c->parts[i], parts[i]));
  for (int i = n_parts; i < 6; i++) {
    mlx_array_free(c->parts[i]);
    c->parts[i] = mlx_array_new();
  }
  c->quantized = n_parts == 6;
  c->length = c->capacity = length;
  c->evicted = offset > length;
  /* Temporal order: the kept slots, then next.., then keep..next-1 (mlx-lm's _temporal_order). */
  int sinks = c->evicted ? (keep < length ? keep : length) : 0;
  if (!c->evicted || next < sinks) next = c->evicted ? sinks : length;
  int t = 0, newest_first = offset - (length - sinks);
  for (int i = 0; i < sinks; i++) c->positions[i] = t++;
  for (int i = next; i < length; i++) c->positions[i] = newest_first + (t++ - sinks);
  for (int i = sinks; i < next; i++) c->positions[i] = newest_first + (t++ - sinks);
cleanup:
  return status;
}

void lm_cache_free(lm_kv_cache* c) {
  for (int i = 0; i < 6; i++) mlx_array_free(c->parts[i]);
  free(c->positions);
  lm_cache_options options = c->options;
  *c = (lm_kv_cache){0};
  c->options = options;
}

int lm_cache_keep_rows(lm_kv_cache* c, mlx_array rows, mlx_stream s) {
  int status = 0;
  for (int i = 0; i < count_parts(c) && !status; i++)
    if (c->parts[i].ctx) status = mlx_take_axis(&c->parts[i], c->parts[i], rows, 0, s);
  return status;
}
