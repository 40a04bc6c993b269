/* Building blocks shared by the encoders: linear layers, activations, attention masks over
 * padded batches, and finding tensors under the prefixes checkpoints use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "lm/call.h"
#include "util/error.h"

int embed_linear(mlx_array* out, mlx_array x, mlx_array w, mlx_array b, mlx_stream s) {
  mlx_array wt = mlx_array_new();
  int status = mlx_transpose(&wt, w, s); /* a view: matmul reads it as W^T */
  /* With a bias, the GEMM accumulates onto it: one pass over the output fewer. */
  if (!status) status = b.ctx ? mlx_addmm(out, b, x, wt, 1.0f, 1.0f, s) : mlx_matmul(out, x, wt, s);
  mlx_array_free(wt);
  return status;
}

/* x * f(x) with f computed from `scaled` = k x: erf for GELU, tanh of the cubic for its
 * approximation. */
static int gelu(mlx_array* out, mlx_array x, bool approximate, mlx_stream s) {
  mlx_array t = mlx_array_new(), half = mlx_array_new_float(0.5f), one = mlx_array_new_float(1.0f);
  mlx_array k = mlx_array_new_float(approximate ? 0.7978845608028654f : 0.70710678118654752f);
  mlx_array cubic = mlx_array_new_float(0.044715f);
  int status = 0;
  if (approximate) { /* tanh(sqrt(2/pi) (x + 0.044715 x^3)) */
    CALL(mlx_multiply(&t, x, x, s));
    CALL(mlx_multiply(&t, t, cubic, s));
    CALL(mlx_add(&t, t, one, s));
    CALL(mlx_multiply(&t, t, x, s));
    CALL(mlx_multiply(&t, t, k, s));
    CALL(mlx_tanh(&t, t, s));
  } else { /* erf(x / sqrt(2)) */
    CALL(mlx_multiply(&t, x, k, s));
    CALL(mlx_erf(&t, t, s));
  }
  CALL(mlx_add(&t, t, one, s));
  CALL(mlx_multiply(&t, t, half, s));
  CALL(mlx_multiply(out, t, x, s));
cleanup:;
  mlx_array all[] = {t, half, one, k, cubic};
  embed_arrays_free(all, 5);
  return status;
}

int embed_activate(mlx_array* out, mlx_array x, embed_activation act, mlx_stream s) {
  mlx_dtype dt = mlx_array_dtype(x);
  if (dt == MLX_FLOAT16 || dt == MLX_BFLOAT16) {
    /* Half-precision activations are computed in float32 and rounded once (as PyTorch's kernels
     * do); float32 constants would otherwise promote the rest of the layer to float32. */
    mlx_array wide = mlx_array_new();
    int status = mlx_astype(&wide, x, MLX_FLOAT32, s);
    if (!status) status = embed_activate(&wide, wide, act, s);
    if (!status) status = mlx_astype(out, wide, dt, s);
    mlx_array_free(wide);
    return status;
  }
  mlx_array t = mlx_array_new(), zero = mlx_array_new_float(0.0f);
  int status = 0;
  switch (act) {
    case EMBED_ACT_IDENTITY: status = mlx_array_set(out, x); break;
    case EMBED_ACT_GELU: status = gelu(out, x, false, s); break;
    case EMBED_ACT_GELU_TANH: status = gelu(out, x, true, s); break;
    case EMBED_ACT_SILU:
      status = mlx_sigmoid(&t, x, s);
      if (!status) status = mlx_multiply(out, t, x, s);
      break;
    case EMBED_ACT_RELU: status = mlx_maximum(out, x, zero, s); break;
    case EMBED_ACT_TANH: status = mlx_tanh(out, x, s); break;
    case EMBED_ACT_SIGMOID: status = mlx_sigmoid(out, x, s); break;
  }
  mlx_array_free(t);
  mlx_array_free(zero);
  return status;
}

int embed_activation_parse(const char* name, embed_activation* out) {
  static const struct {
    const char* name;
    embed_activation act;
  } names[] = {{"gelu", EMBED_ACT_GELU},
               {"gelu_new", EMBED_ACT_GELU_TANH},
               {"gelu_pytorch_tanh", EMBED_ACT_GELU_TANH},
               {"gelu_fast", EMBED_ACT_GELU_TANH},
               {"silu", EMBED_ACT_SILU},
               {"swish", EMBED_ACT_SILU},
               {"relu", EMBED_ACT_RELU},
               {"tanh", EMBED_ACT_TANH},
               {"torch.nn.modules.linear.Identity", EMBED_ACT_IDENTITY},
               {"torch.nn.modules.activation.Tanh", EMBED_ACT_TANH},
               {"torch.nn.modules.activation.ReLU", EMBED_ACT_RELU},
               {"torch.nn.modules.activation.GELU", EMBED_ACT_GELU},
               {"torch.nn.modules.activation.Sigmoid", EMBED_ACT_SIGMOID},
               {"torch.nn.modules.activation.SiLU", EMBED_ACT_SILU},
               {"torch.nn.Identity", EMBED_ACT_IDENTITY},
               {"torch.nn.Tanh", EMBED_ACT_TANH}};
  for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(name, names[i].name)) {
      *out = names[i].act;
      return 0;
    }
  return util_error("activation \"%s\" is not supported (gelu, gelu_new, gelu_pytorch_tanh, silu, relu, tanh, "
                    "Identity, Tanh, ReLU, GELU, Sigmoid)",
                    name ? name : "(none)");
}

int embed_tensor(mlx_map_string_to_array tensors, const char* name, bool required, mlx_array* out) {
  mlx_map_string_to_array_iterator it = mlx_map_string_to_array_iterator_new(tensors);
  mlx_array value = mlx_array_new();
  const char* key;
  size_t n = strlen(name);
  bool found = false;
  while (!found && mlx_map_string_to_array_iterator_next(&key, &value, it) == 0) {
    size_t k = strlen(key);
    const char* dot = strchr(key, '.');
    found = !strcmp(key, name) || (k > n && !strcmp(key + k - n, name) && dot == key + k - n - 1);
  }
  mlx_map_string_to_array_iterator_free(it);
  if (!found) {
    mlx_array_free(value);
    return required ? util_error("missing tensor %s", name) : 0;
  }
  mlx_array_free(*out);
  *out = value;
  return 0;
}

int embed_json_int(const json_t* obj, const char* key, int fallback) {
  json_t* v = json_object_get(obj, key);
  return json_is_integer(v) ? (int)json_integer_value(v) : json_is_real(v) ? (int)json_real_value(v) : fallback;
}

float embed_json_float(const json_t* obj, const char* key, float fallback) {
  json_t* v = json_object_get(obj, key);
  return json_is_number(v) ? (float)json_number_value(v) : fallback;
}

void embed_arrays_free(mlx_array* arrays, size_t n) {
  for (size_t i = 0; i < n; i++) mlx_array_free(arrays[i]);
}

int embed_attention_mask(mlx_array* out, const embed_batch* b, bool causal, int window, mlx_stream s) {
  size_t B = (size_t)b->B, L = (size_t)b->L;
  if (!causal && window <= 0) { /* padding only: (B, 1, 1, L) */
    int shape[4] = {b->B, 1, 1, b->L};
    return mlx_reshape(out, b->mask, shape, 4, s);
  }
  /* Causal without a window needs no padding term: with padding on the right, a real query never
   * reaches a padded key, and padded queries (never pooled) see real keys. */
  size_t rows = window > 0 ? B : 1;
  bool* keep = malloc(rows * L * L);
  if (!keep) return util_error("out of memory");
  for (size_t r = 0; r < rows; r++)
    for (size_t i = 0; i < L; i++)
      for (size_t j = 0; j < L; j++) {
        size_t dist = i > j ? i - j : j - i, n = window > 0 ? b->lengths[r] : L;
        bool v = j < n && (!causal || j <= i) && (window <= 0 || dist < (size_t)window);
        keep[(r * L + i) * L + j] = v || (i == j && i >= n);
      }
  int shape[4] = {(int)rows, 1, (int)L, (int)L};
  mlx_array fresh = mlx_array_new_data(keep, shape, 4, MLX_BOOL);
  free(keep);
  if (!fresh.ctx) return 1;
  mlx_array_free(*out);
  *out = fresh;
  return 0;
}

int embed_attention(mlx_array* out, mlx_array q, mlx_array k, mlx_array v, float scale, mlx_array mask, mlx_stream s) {
  mlx_device dev = mlx_device_new();
  mlx_device_type type = MLX_CPU;
  int status = mlx_stream_get_device(&dev, s);
  if (!status) status = mlx_device_get_type(&type, dev);
  mlx_device_free(dev);
  if (status) return status;
  /* The composed form holds all scores (B, H, L, L): only for short sequences. */
  double scores_size = (double)mlx_array_dim(q, 0) * mlx_array_dim(q, 1) * mlx_array_dim(q, 2) * mlx_array_dim(k, 2);
  if (type != MLX_CPU || mlx_array_dim(q, 1) != mlx_array_dim(k, 1) || scores_size > 16e6)
    return mlx_fast_scaled_dot_product_attention(out, q, k, v, scale, "array", mask, mlx_array_new(), s);
  /* On the CPU short sequences go faster as two batched matrix products; the softmax is spelled
   * out in float32 ops (max, exp, sum), which beat the double-precision softmax kernel. */
  mlx_array scores = mlx_array_new(), kt = mlx_array_new(), top = mlx_array_new(), total = mlx_array_new();
  mlx_array sc = mlx_array_new_float(scale), neg = mlx_array_new_float(-INFINITY);
  int perm[4] = {0, 1, 3, 2};
  CALL(mlx_multiply(&scores, q, sc, s));
  CALL(mlx_transpose_axes(&kt, k, perm, 4, s));
  CALL(mlx_matmul(&scores, scores, kt, s)); /* (B, H, L, L) */
  CALL(mlx_where(&scores, mask, scores, neg, s));
  CALL(mlx_max_axis(&top, scores, -1, true, s));
  CALL(mlx_subtract(&scores, scores, top, s));
  CALL(mlx_exp(&scores, scores, s));
  CALL(mlx_sum_axis(&total, scores, -1, true, s)); /* (B, H, L, 1) */
  CALL(mlx_matmul(out, scores, v, s));
  CALL(mlx_divide(out, *out, total, s));
cleanup:;
  mlx_array all[] = {scores, kt, top, total, sc, neg};
  embed_arrays_free(all, 6);
  return status;
}
