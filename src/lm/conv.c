/* The short convolution block of LFM2: (B, C, x) = in_proj(h); y = C * causal_depthwise_conv(B * x);
 * out_proj(y). The convolution looks kernel-1 steps back; the session keeps those inputs
 * between calls, so decoding one token at a time gives the same result as a whole prompt. */
#include "lm/call.h"
#include "lm/model.h"
#include "util/error.h"

int lm_conv_block(mlx_array* out, mlxc_lm_session* sess, int li, mlx_array x, mlx_stream s) {
  const lm_layer* layer = &sess->model->layers[li];
  int D = sess->model->config.hidden_size, L = mlx_array_dim(x, 1);
  int kernel = mlx_array_dim(layer->conv_weight, 2);
  mlx_array h = mlx_array_new(), b = mlx_array_new(), c = mlx_array_new(), v = mlx_array_new();
  mlx_array bx = mlx_array_new(), padded = mlx_array_new(), acc = mlx_array_new(), tap = mlx_array_new();
  mlx_array w = mlx_array_new(), wk = mlx_array_new();
  mlx_vector_array parts = mlx_vector_array_new();
  int status = 0;
  CALL(lm_linear_apply(&h, &layer->conv_in, x, s)); /* (1, L, 3D) */
  CALL(mlx_split(&parts, h, 3, -1, s));
  CALL(mlx_vector_array_get(&b, parts, 0));
  CALL(mlx_vector_array_get(&c, parts, 1));
  CALL(mlx_vector_array_get(&v, parts, 2));
  CALL(mlx_multiply(&bx, b, v, s));
  /* The previous kernel-1 inputs (zeros at the start), then this call's. */
  mlx_array* state = &sess->conv_states[li];
  if (!state->ctx) {
    int shape[3] = {1, kernel - 1, D};
    CALL(mlx_zeros(state, shape, 3, mlx_array_dtype(bx), s));
  }
  mlx_vector_array both = mlx_vector_array_new();
  status = mlx_vector_array_append_value(both, *state);
  if (!status) status = mlx_vector_array_append_value(both, bx);
  if (!status) status = mlx_concatenate_axis(&padded, both, 1, s); /* (1, kernel-1+L, D) */
  mlx_vector_array_free(both);
  if (status) goto cleanup;
  /* y[t] = sum_k w[:, k] * padded[t + k] */
  int wshape[2] = {D, kernel}, perm[2] = {1, 0};
  CALL(mlx_reshape(&w, layer->conv_weight, wshape, 2, s));
  CALL(mlx_transpose_axes(&w, w, perm, 2, s)); /* (kernel, D) */
  for (int k = 0; k < kernel; k++) {
    int start[3] = {0, k, 0}, stop[3] = {1, k + L, D}, wstart[2] = {k, 0}, wstop[2] = {k + 1, D};
    CALL(mlx_slice(&tap, padded, start, 3, stop, 3, NULL, 0, s));
    CALL(mlx_slice(&wk, w, wstart, 2, wstop, 2, NULL, 0, s));
    CALL(mlx_multiply(&tap, tap, wk, s));
    if (k == 0)
      CALL(mlx_array_set(&acc, tap));
    else
      CALL(mlx_add(&acc, acc, tap, s));
  }
  int keep_start[3] = {0, L, 0}, keep_stop[3] = {1, L + kernel - 1, D};
  CALL(mlx_slice(state, padded, keep_start, 3, keep_stop, 3, NULL, 0, s));
  CALL(mlx_contiguous(state, *state, false, s)); /* do not keep the whole padded input alive */
  CALL(mlx_multiply(&acc, c, acc, s));
  CALL(lm_linear_apply(out, &layer->conv_out, acc, s));
cleanup:;
  mlx_array* all[] = {&h, &b, &c, &v, &bx, &padded, &acc, &tap, &w, &wk};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) mlx_array_free(*all[i]);
  mlx_vector_array_free(parts);
  return status;
}
