/* Pooling token states into one vector per sentence, as sentence-transformers' Pooling module
 * does: cls, max, mean, mean_sqrt_len_tokens, weightedmean (weights 1..L by position),
 * lasttoken; several modes are concatenated in the configured order. Tokens before skip[b] (the prompt,
 * when include_prompt is false) are masked out. Sequences are left-aligned (right padding), so
 * weightedmean weighs token t by t + 1 as sentence-transformers does for right-padding
 * tokenizers. */
#include <math.h>

#include "embed/embed.h"

size_t embed_pooled_dim(const mlxc_embed_model* m) {
  return (size_t)m->n_pooling * (size_t)m->enc.hidden;
}

/* One mode over the tokens [first, n) of a row (L x D); an empty range pools as
 * sentence-transformers' masked tensors do (cls: token 0, max: -inf, last and means: 0). */
static void pool_row(embed_pooling mode, const float* rows, size_t first, size_t n, size_t D, float* o) {
  bool empty = first >= n;
  for (size_t d = 0; d < D; d++) {
    double acc = 0, weight = 0;
    if (mode == POOL_CLS) { /* the first token left in the mask */
      acc = rows[(empty ? 0 : first) * D + d];
    } else if (mode == POOL_LAST) {
      acc = empty ? 0.0 : rows[(n - 1) * D + d];
    } else if (mode == POOL_MAX) {
      acc = -INFINITY;
      for (size_t t = first; t < n; t++) acc = rows[t * D + d] > acc ? rows[t * D + d] : acc;
    } else {
      for (size_t t = first; t < n; t++) {
        double w = mode == POOL_WEIGHTED_MEAN ? (double)(t + 1) : 1.0;
        acc += w * rows[t * D + d];
        weight += w;
      }
      weight = weight > 1e-9 ? weight : 1e-9; /* as torch.clamp(min=1e-9) */
      acc /= mode == POOL_MEAN_SQRT_LEN ? sqrt(weight) : weight;
    }
    o[d] = (float)acc;
  }
}

void embed_pool(const mlxc_embed_model* m, const float* hidden, const size_t* lengths, const size_t* skip, size_t B,
                size_t L, size_t D, float* out) {
  size_t width = embed_pooled_dim(m);
  for (size_t b = 0; b < B; b++) {
    const float* rows = hidden + b * L * D;
    size_t n = lengths[b], first = skip ? skip[b] : 0;
    if (first > n) first = n;
    float* o = out + b * width;
    for (int i = 0; i < m->n_pooling; i++, o += D) pool_row(m->pooling[i], rows, first, n, D, o);
  }
}
