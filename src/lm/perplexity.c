/* Negative log-likelihood of a token window: the quantity perplexity is made of. */
#include <math.h>

#include "lm/model.h"
#include "util/error.h"

int mlxc_lm_window_nll(mlxc_lm_session* s, const int32_t* ids, size_t n, double* nll_sum, size_t* count) {
  if (!s || !ids || !nll_sum || !count) return util_error("mlxc_lm_window_nll: null argument");
  if (n < 2) return util_error("mlxc_lm_window_nll: a window needs at least 2 tokens");
  mlxc_lm_session_reset(s);
  mlx_array logits = mlx_array_new();
  int status = mlxc_lm_forward(s, ids, n - 1, &logits);
  const float* p = status ? NULL : mlx_array_data_float32(logits);
  if (!status && !p) status = 1;
  int vocab = s->model->config.vocab_size;
  for (size_t i = 0; !status && i + 1 < n; i++) {
    const float* row = p + i * (size_t)vocab;
    double max = row[0], sum = 0;
    for (int v = 1; v < vocab; v++) max = row[v] > max ? row[v] : max;
    for (int v = 0; v < vocab; v++) sum += exp(row[v] - max);
    *nll_sum += log(sum) + max - row[ids[i + 1]];
    (*count)++;
  }
  mlx_array_free(logits);
  return status;
}
