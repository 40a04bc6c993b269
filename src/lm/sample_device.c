/* The sampler as array ops (sample_device.h). The steps mirror lm_sample: probabilities at the
 * temperature; when filtering, the vocabulary sorted by probability (stable, so equal ones keep
 * increasing ids, as lm_sample's order) and the kept prefix masked (top-k by rank, min-p against
 * the best, top-p by the mass before each candidate); then the first candidate whose running sum
 * exceeds u times the kept mass. */
#include "lm/sample_device.h"

#include <stdlib.h>

#include "lm/call.h"
#include "mlx/c/ops.h"
#include "util/error.h"

bool lm_sample_device_supported(const mlxc_lm_generate_params* p) {
  bool repetition = p->repetition_penalty > 0 && p->repetition_penalty != 1.0f;
  bool xtc = p->xtc_probability > 0 && p->xtc_threshold > 0;
  return p->temperature > 0 && !repetition && p->presence_penalty == 0 && p->frequency_penalty == 0 && !xtc;
}

int lm_sample_device_bias(const mlxc_lm_generate_params* p, int vocab, mlx_array* out) {
  mlx_array_free(*out);
  *out = mlx_array_new();
  if (p->n_bias == 0) return 0;
  float* row = calloc((size_t)vocab, sizeof *row);
  if (!row) return util_error("out of memory");
  for (size_t i = 0; i < p->n_bias; i++)
    if (p->bias_ids[i] >= 0 && p->bias_ids[i] < vocab) row[p->bias_ids[i]] += p->bias_values[i];
  int shape[2] = {1, vocab};
  *out = mlx_array_new_data(row, shape, 2, MLX_FLOAT32);
  free(row);
  return out->ctx ? 0 : util_error("out of memory");
}

/* *mask = *mask && cond (or cond when *mask is empty); cond is freed. */
static int and_into(mlx_array* mask, mlx_array* cond, mlx_stream s) {
  int status = mask->ctx ? mlx_logical_and(mask, *mask, *cond, s) : mlx_array_set(mask, *cond);
  mlx_array_free(*cond);
  *cond = mlx_array_new();
  return status;
}

/* The mask of the sorted probabilities (1, vocab) that top-k, min-p and top-p keep. */
static int kept_mask(mlx_array sorted, const mlxc_lm_generate_params* p, int vocab, mlx_stream s, mlx_array* mask) {
  int status = 0;
  mlx_array cond = mlx_array_new(), t = mlx_array_new(), limit = mlx_array_new();
  if (p->top_k > 0 && p->top_k < vocab) {
    CALL(mlx_arange(&t, 0, vocab, 1, MLX_INT32, s));
    limit = mlx_array_new_int(p->top_k);
    CALL(mlx_less(&cond, t, limit, s));
    CALL(and_into(mask, &cond, s));
    mlx_array_free(limit);
    limit = mlx_array_new();
  }
  if (p->min_p > 0) { /* at least min_p times the best */
    int start[2] = {0, 0}, stop[2] = {1, 1};
    CALL(mlx_slice(&t, sorted, start, 2, stop, 2, NULL, 0, s));
    limit = mlx_array_new_float(p->min_p);
    CALL(mlx_multiply(&t, t, limit, s));
    CALL(mlx_greater_equal(&cond, sorted, t, s));
    CALL(and_into(mask, &cond, s));
    mlx_array_free(limit);
    limit = mlx_array_new();
  }
  if (p->top_p > 0 && p->top_p < 1) { /* the mass before a candidate still under top_p */
    CALL(mlx_cumsum(&t, sorted, 1, false, false, s));
    limit = mlx_array_new_float(p->top_p);
    CALL(mlx_less(&cond, t, limit, s));
    CALL(and_into(mask, &cond, s));
  }
cleanup:
  mlx_array_free(cond);
  mlx_array_free(t);
  mlx_array_free(limit);
  return status;
}

int lm_sample_device(mlx_array logits, const mlxc_lm_generate_params* p, mlx_array u, mlx_array bias, mlx_stream s,
                     mlx_array* token, mlx_array* chosen, mlx_array* lse) {
  if (!lm_sample_device_supported(p)) return util_error("lm_sample_device: these sampler settings need the host");
  const int rows = mlx_array_dim(logits, 0), vocab = mlx_array_dim(logits, 1);
  int status = 0, start[2] = {rows - 1, 0}, stop[2] = {rows, vocab}, column[2] = {1, 1}, one[1] = {1};
  mlx_array last = mlx_array_new(), probs = mlx_array_new(), order = mlx_array_new(), kept = mlx_array_new();
  mlx_array mask = mlx_array_new(), count = mlx_array_new(), cum = mlx_array_new(), target = mlx_array_new();
  mlx_array rank = mlx_array_new(), t = mlx_array_new(), zero = mlx_array_new_float(0.0f);
  mlx_array inv_temp = mlx_array_new_float(1.0f / p->temperature), one_i = mlx_array_new_int(1);
  const bool filtered = (p->top_k > 0 && p->top_k < vocab) || p->min_p > 0 || (p->top_p > 0 && p->top_p < 1);

  CALL(mlx_slice(&last, logits, start, 2, stop, 2, NULL, 0, s));
  if (bias.ctx) CALL(mlx_add(&last, last, bias, s));
  CALL(mlx_logsumexp_axis(lse, last, 1, false, s));
  CALL(mlx_multiply(&probs, last, inv_temp, s));
  CALL(mlx_softmax_axis(&probs, probs, 1, true, s));
  if (filtered) {
    CALL(mlx_negative(&t, probs, s));
    CALL(mlx_argsort_axis(&order, t, 1, s));
    CALL(mlx_take_along_axis(&probs, probs, order, 1, s)); /* sorted, most likely first */
    CALL(kept_mask(probs, p, vocab, s, &mask));
    CALL(mlx_where(&kept, mask, probs, zero, s));
    CALL(mlx_astype(&count, mask, MLX_INT32, s));
    CALL(mlx_sum(&count, count, false, s)); /* the mask is (vocab) when only top-k applies */
  } else {
    CALL(mlx_array_set(&kept, probs));
    mlx_array_free(count);
    count = mlx_array_new_int(vocab);
  }
  /* The draw: the first candidate whose running sum exceeds u times the kept mass, i.e. the
   * number of running sums not above it, at most the last kept one. */
  CALL(mlx_cumsum(&cum, kept, 1, false, true, s));
  int total_start[2] = {0, vocab - 1}, total_stop[2] = {1, vocab};
  CALL(mlx_slice(&t, cum, total_start, 2, total_stop, 2, NULL, 0, s));
  CALL(mlx_reshape(&target, u, column, 2, s));
  CALL(mlx_multiply(&target, target, t, s));
  CALL(mlx_less_equal(&rank, cum, target, s));
  CALL(mlx_astype(&rank, rank, MLX_INT32, s));
  CALL(mlx_sum_axis(&rank, rank, 1, false, s));
  CALL(mlx_subtract(&count, count, one_i, s));
  CALL(mlx_minimum(&rank, rank, count, s));
  CALL(mlx_reshape(&rank, rank, column, 2, s));
  if (filtered)
    CALL(mlx_take_along_axis(token, order, rank, 1, s));
  else
    CALL(mlx_astype(token, rank, MLX_UINT32, s));
  CALL(mlx_take_along_axis(chosen, last, *token, 1, s));
  CALL(mlx_reshape(token, *token, one, 1, s));
  CALL(mlx_reshape(chosen, *chosen, one, 1, s));
cleanup:;
  mlx_array temps[] = {last, probs, order, kept, mask, count, cum, target, rank, t, zero, inv_temp, one_i};
  for (size_t i = 0; i < sizeof temps / sizeof temps[0]; i++) mlx_array_free(temps[i]);
  return status;
}
