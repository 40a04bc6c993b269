/* The decoder shared by the Llama-family architectures: embeddings, then per layer
 * norm -> attention (RoPE, KV cache, sliding windows, soft-capping) -> residual ->
 * norm -> gated MLP -> residual, then the final norm and the output layer. Shapes are noted
 * as (batch, length, features); a batch session's rows are left-padded (model.h). */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lm/call.h"
#include "lm/model.h"
#include "mlxc/fast.h"
#include "util/error.h"

/* (B, L, heads * hd) -> (B, heads, L, hd) */
static int split_heads(mlx_array* out, mlx_array x, int heads, int hd, mlx_stream s) {
  int shape[4] = {mlx_array_dim(x, 0), mlx_array_dim(x, 1), heads, hd}, perm[4] = {0, 2, 1, 3};
  int status = mlx_reshape(out, x, shape, 4, s);
  return status ? status : mlx_transpose_axes(out, *out, perm, 4, s);
}

/* Whether l's weights have x's dtype: a plain weight, or scales and biases of a quantized one
 * (what the fused decode GEMVs of mlxc/fast.h take). */
static bool weights_of_dtype(const lm_linear* l, mlx_array x) {
  mlx_dtype dt = mlx_array_dtype(x);
  if (!l->weight.ctx) return false;
  if (l->quantized) return l->biases.ctx && mlx_array_dtype(l->scales) == dt && mlx_array_dtype(l->biases) == dt;
  return mlx_array_dtype(l->weight) == dt;
}

/* Whether the stacked gate_up can run as mlxc_fast_gated_linear (one GEMV with the activation in
 * its epilogue in a decode step): no bias, weights of x's dtype. */
static bool gated_linear_fits(const lm_linear* l, mlx_array x) { return weights_of_dtype(l, x) && !l->bias.ctx; }

/* A sub-layer's input. Normally r, the normalised residual stream. In a decode step on the GPU
 * the last projection adds its output to the stream x and computes the sums of squares ss and
 * x times the norm's weight, scaled (mlxc_fast_linear_residual); the norm is then left pending,
 * its factor applied inside the next projection (mlxc_fast_rms_norm_linear) instead of by a
 * kernel of its own. */
typedef struct {
  mlx_array r, ss, scaled;
  const lm_norm* norm; /* the norm r applies */
  bool pending;        /* r not computed: x, ss and scaled stand for it */
} sublayer_input;

/* The normalised input for a consumer that does not take a pending norm. */
static int input_normed(sublayer_input* in, mlx_array x, float eps, mlx_stream s) {
  if (!in->pending) return 0;
  in->pending = false;
  return lm_norm_apply(&in->r, in->norm, x, eps, s);
}

/* Whether l suits the fused-norm GEMVs for x: weights of x's dtype, plain or 4- or 8-bit (the
 * widths mlxc_fast_linear_residual and rms_norm_linear fuse; others would compose, which costs a
 * step more kernels than the separate norm). */
static bool fused_linear_of(const lm_linear* l, mlx_array x) {
  return weights_of_dtype(l, x) && (!l->quantized || l->bits == 4 || l->bits == 8);
}

/* out = l(input), act(gate) * up when act is given (l stacks gate over up): the pending norm
 * inside the GEMV where it fits. */
static int input_linear(mlx_array* out, const lm_linear* l, sublayer_input* in, mlx_array x, const char* act,
                        float eps, mlx_stream s) {
  mlx_optional_int group = {l->group_size, l->quantized}, bits = {l->bits, l->quantized};
  mlx_array none = mlx_array_new();
  mlx_array scales = l->quantized ? l->scales : none, biases = l->quantized ? l->biases : none;
  if (in->pending && fused_linear_of(l, x) && !(act && l->bias.ctx))
    return mlxc_fast_rms_norm_linear(out, in->scaled, in->ss, eps, l->weight, scales, biases, group, bits, l->bias, act,
                                     s);
  int status = input_normed(in, x, eps, s);
  if (status) return status;
  if (!act) return lm_linear_apply(out, l, in->r, s);
  return mlxc_fast_gated_linear(out, in->r, l->weight, scales, biases, group, bits, act, s);
}

/* x += post(t) (post: a Gemma post-norm, or NULL), then `in` becomes the input normalised by next. */
static int residual_add(mlx_array* x, sublayer_input* in, mlx_array t, const lm_norm* post, const lm_norm* next,
                        float eps, mlx_stream s) {
  mlx_array u = mlx_array_new();
  int status = post ? lm_norm_apply(&u, post, t, eps, s) : 0;
  in->pending = false;
  in->norm = next;
  if (!status) status = lm_add_norm_apply(x, &in->r, next, post ? u : t, eps, s);
  mlx_array_free(u);
  return status;
}

/* residual_add of l(t): one GEMV with the residual, the next norm's sums of squares and the
 * stream times its weight in its epilogue when `fuse` (a decode step on the GPU) and l fits, the
 * norm then left pending. */
static int residual_linear(mlx_array* x, sublayer_input* in, const lm_linear* l, mlx_array t, const lm_norm* post,
                           const lm_norm* next, bool fuse, float eps, mlx_stream s) {
  mlx_dtype dt = mlx_array_dtype(*x);
  if (fuse && !post && fused_linear_of(l, t) && !l->bias.ctx && mlx_array_dtype(t) == dt &&
      (!next->weight.ctx || mlx_array_dtype(next->weight) == dt)) {
    mlx_optional_int group = {l->group_size, l->quantized}, bits = {l->bits, l->quantized};
    mlx_array none = mlx_array_new();
    int status = mlxc_fast_linear_residual(x, &in->ss, &in->scaled, t, l->weight, l->quantized ? l->scales : none,
                                           l->quantized ? l->biases : none, group, bits, *x, next->weight, s);
    in->pending = !status;
    in->norm = next;
    return status;
  }
  mlx_array u = mlx_array_new();
  int status = lm_linear_apply(&u, l, t, s);
  if (!status) status = residual_add(x, in, u, post, next, eps, s);
  mlx_array_free(u);
  return status;
}

/* The gated MLP's hidden activations act(gate) * up (its down projection is the caller's). */
static int mlp_hidden(mlx_array* out, const mlxc_lm_model* m, const lm_layer* L, sublayer_input* in, mlx_array x,
                      mlx_stream s) {
  mlx_array gate = mlx_array_new(), up = mlx_array_new(), h = mlx_array_new();
  /* act(gate) * up, act SiLU or GELU (tanh approximation): fused ops (mlxc/fast.h). */
  const char* act = m->config.activation == ACT_SILU ? "silu" : "gelu_tanh";
  const float eps = m->config.norm_eps;
  int status = 0;
  if (gated_linear_fits(&L->gate_up, x)) /* phi3's checkpoints, or stacked at load (fuse.c) */
    return input_linear(out, &L->gate_up, in, x, act, eps, s);
  CALL(input_normed(in, x, eps, s));
  if (L->gate_up.weight.ctx) {
    mlx_vector_array parts = mlx_vector_array_new();
    status = lm_linear_apply(&h, &L->gate_up, in->r, s);
    if (!status) status = mlx_split(&parts, h, 2, -1, s);
    if (!status) status = mlx_vector_array_get(&gate, parts, 0);
    if (!status) status = mlx_vector_array_get(&up, parts, 1);
    mlx_vector_array_free(parts);
    if (status) goto cleanup;
  } else {
    CALL(lm_linear_apply(&gate, &L->gate, in->r, s));
    CALL(lm_linear_apply(&up, &L->up, in->r, s));
  }
  CALL(mlxc_fast_glu(out, gate, up, act, s));
cleanup:
  mlx_array_free(gate);
  mlx_array_free(up);
  mlx_array_free(h);
  return status;
}

/* The mask for L queries at positions offset.. over T cached keys: NULL handle for plain causal
 * attention, else a bool (L, T) array that also applies the sliding window. */
static int attention_mask(mlx_array* mask, int L, int T, int offset, int window, mlx_stream s) {
  bool* keep = malloc((size_t)L * (size_t)T);
  if (!keep) return util_error("out of memory");
  for (int i = 0; i < L; i++)
    for (int j = 0; j < T; j++) keep[(size_t)i * T + j] = j <= offset + i && j > offset + i - window;
  int shape[2] = {L, T};
  mlx_array fresh = mlx_array_new_data(keep, shape, 2, MLX_BOOL);
  free(keep);
  if (!fresh.ctx) return 1;
  mlx_array_free(*mask);
  *mask = fresh;
  return 0;
}

/* The mask over a cache whose slots hold arbitrary positions (rotated, with evictions, or the
 * columns of a left-padded batch): the query at column p sees the key at column q when q <= p
 * and either q > p - window or q is one of the first `keep` positions; in row b of a batch also
 * q >= row_start[b] once p is (padding columns see padding, so no row is fully masked).
 * (L, T), or (B, 1, L, T) with row_start; left empty when every key is visible. */
static int position_mask(mlx_array* mask, int L, const int* positions, int T, int first_query,
                         int window, int keep, const int* row_start, int B) {
  bool* visible = malloc((size_t)B * (size_t)L * (size_t)T);
  if (!visible) return util_error("out of memory");
  bool all = true;
  for (int b = 0; b < B; b++)
    for (int i = 0; i < L; i++)
      for (int j = 0; j < T; j++) {
        int p = first_query + i, q = positions[j], start = row_start ? row_start[b] : 0;
        bool v = q <= p && (q > p - window || q < keep) && (q >= start || p < start);
        visible[((size_t)b * L + i) * T + j] = v;
        all = all && v;
      }
  int shape[4] = {B, 1, L, T}, status = 0;
  if (!all) {
    mlx_array fresh = row_start ? mlx_array_new_data(visible, shape, 4, MLX_BOOL)
                                : mlx_array_new_data(visible, shape + 2, 2, MLX_BOOL);
    if (fresh.ctx) {
      mlx_array_free(*mask);
      *mask = fresh;
    } else {
      status = 1;
    }
  }
  free(visible);
  return status;
}

/* scores @ values or q @ keys^T for a float or quantized cache part. */
static int cache_matmul(mlx_array* out, mlx_array x, const mlx_array* part, bool quantized, bool transpose,
                        const lm_kv_view* view, mlx_stream s) {
  if (!quantized) {
    if (!transpose) return mlx_matmul(out, x, part[0], s);
    int perm[5] = {0, 1, 2, 4, 3};
    mlx_array t = mlx_array_new();
    int status = mlx_transpose_axes(&t, part[0], perm, 5, s);
    if (!status) status = mlx_matmul(out, x, t, s);
    mlx_array_free(t);
    return status;
  }
  mlx_optional_int group = {view->group_size, true}, bits = {view->bits, true};
  return mlx_quantized_matmul(out, x, part[0], part[1], part[2], transpose, group, bits, "affine", s);
}

/* Attention composed from basic ops, for what the fused kernel does not do: logits soft-capped
 * by tanh (Gemma 2) and quantized caches (mlx-lm's quantized_scaled_dot_product_attention):
 * softmax(cap * tanh(q k^T * scale / cap) + mask) v in float32, key/value heads shared by
 * groups of queries. cap 0 = no capping. */
static int composed_attention(mlx_array* out, mlx_array q, const lm_kv_view* view, float scale, float cap,
                              mlx_array mask, bool causal, int offset, mlx_stream s) {
  int B = mlx_array_dim(q, 0), H = mlx_array_dim(q, 1), L = mlx_array_dim(q, 2), hd = mlx_array_dim(q, 3);
  int K = mlx_array_dim(view->keys[0], 1), T = mlx_array_dim(view->keys[0], 2);
  int vd = mlx_array_dim(view->values[0], 3) * (view->quantized ? 32 / view->bits : 1);
  mlx_array qg = mlx_array_new(), scores = mlx_array_new(), causal_mask = mlx_array_new(), row_mask = mlx_array_new();
  mlx_array keys[3], values[3];
  mlx_array cap_a = mlx_array_new_float(cap), inv_a = mlx_array_new_float(cap > 0 ? scale / cap : scale);
  int n_parts = view->quantized ? 3 : 1, status = 0;
  for (int i = 0; i < 3; i++) keys[i] = values[i] = mlx_array_new();
  int qshape[5] = {B, K, H / K, L, hd};
  CALL(mlx_reshape(&qg, q, qshape, 5, s));
  for (int i = 0; i < n_parts; i++) { /* (1, K, 1, T, d) to broadcast over the query groups */
    CALL(mlx_expand_dims(&keys[i], view->keys[i], 2, s));
    CALL(mlx_expand_dims(&values[i], view->values[i], 2, s));
  }
  CALL(cache_matmul(&scores, qg, keys, view->quantized, true, view, s)); /* (B, K, H/K, L, T) */
  CALL(mlx_astype(&scores, scores, MLX_FLOAT32, s));
  CALL(mlx_multiply(&scores, scores, inv_a, s));
  if (cap > 0) {
    CALL(mlx_tanh(&scores, scores, s));
    CALL(mlx_multiply(&scores, scores, cap_a, s));
  }
  if (!mask.ctx && causal) {
    CALL(attention_mask(&causal_mask, L, T, offset, T + L + 1, s));
    mask = causal_mask;
  } else if (mask.ctx && mlx_array_ndim(mask) == 4) { /* a batch's (B, 1, L, T) -> (B, 1, 1, L, T) */
    CALL(mlx_expand_dims(&row_mask, mask, 1, s));
    mask = row_mask;
  }
  if (mask.ctx) {
    mlx_array neg = mlx_array_new_float(-INFINITY);
    status = mlx_where(&scores, mask, scores, neg, s);
    mlx_array_free(neg);
    if (status) goto cleanup;
  }
  CALL(mlx_softmax_axis(&scores, scores, -1, true, s));
  CALL(mlx_astype(&scores, scores, mlx_array_dtype(q), s));
  int oshape[4] = {B, H, L, vd};
  CALL(cache_matmul(out, scores, values, view->quantized, false, view, s));
  CALL(mlx_reshape(out, *out, oshape, 4, s));
cleanup:
  mlx_array_free(qg);
  mlx_array_free(scores);
  for (int i = 0; i < 3; i++) {
    mlx_array_free(keys[i]);
    mlx_array_free(values[i]);
  }
  mlx_array_free(cap_a);
  mlx_array_free(inv_a);
  mlx_array_free(causal_mask);
  mlx_array_free(row_mask);
  return status;
}

/* (B) int32: the RoPE position of each row's next column. */
static int row_positions(mlx_array* out, const mlxc_lm_session* sess) {
  int32_t* first = malloc(sizeof(int32_t) * (size_t)sess->batch);
  if (!first) return util_error("out of memory");
  for (int b = 0; b < sess->batch; b++) first[b] = sess->offset - sess->row_start[b];
  int shape[1] = {sess->batch};
  mlx_array fresh = mlx_array_new_data(first, shape, 1, MLX_INT32);
  free(first);
  if (!fresh.ctx) return 1;
  mlx_array_free(*out);
  *out = fresh;
  return 0;
}

lm_rope_settings lm_rope_for(const mlxc_lm_session* sess, int li, int L) {
  const mlxc_lm_model* m = sess->model;
  const lm_config* c = &m->config;
  bool sliding = c->layer_kinds[li] == LAYER_SLIDING_ATTENTION && c->sliding_window > 0;
  lm_rope_settings r = {(int)(c->head_dim * c->partial_rotary_factor),
                        {sliding ? c->rope_local_theta : lm_rope_base(c, sess->offset + L), !m->rope_freqs.ctx},
                        m->rope_freqs.ctx && !(sliding && m->arch->gemma_norms) ? m->rope_freqs : mlx_array_new()};
  if (!r.freqs.ctx) r.base.has_value = true;
  return r;
}

int lm_rope_apply(mlx_array* out, const mlxc_lm_session* sess, int li, mlx_array x, mlx_array offsets, mlx_stream s) {
  lm_rope_settings r = lm_rope_for(sess, li, mlx_array_dim(x, 2));
  if (offsets.ctx) return mlx_fast_rope_dynamic(out, x, r.dims, false, r.base, 1.0f, offsets, r.freqs, s);
  return mlx_fast_rope(out, x, r.dims, false, r.base, 1.0f, sess->offset, r.freqs, s);
}

int lm_rope_qk(mlx_array* qr, mlx_array* kr, const mlxc_lm_session* sess, int li, mlx_array q, mlx_array k,
               mlx_array offsets, mlx_stream s) {
  if (k.ctx) {
    int status = lm_rope_apply(qr, sess, li, q, offsets, s);
    return status ? status : lm_rope_apply(kr, sess, li, k, offsets, s);
  }
  int H = sess->model->config.num_heads, heads = mlx_array_dim(q, 1);
  int start[4] = {0, 0, 0, 0}, stop[4] = {mlx_array_dim(q, 0), H, mlx_array_dim(q, 2), mlx_array_dim(q, 3)};
  mlx_array both = mlx_array_new();
  int status = lm_rope_apply(&both, sess, li, q, offsets, s);
  if (!status) status = mlx_slice(qr, both, start, 4, stop, 4, NULL, 0, s);
  start[1] = H;
  stop[1] = heads;
  if (!status) status = mlx_slice(kr, both, start, 4, stop, 4, NULL, 0, s);
  mlx_array_free(both);
  return status;
}

float lm_attention_scale(const mlxc_lm_model* m) {
  const lm_config* c = &m->config;
  float scale = 1.0f / sqrtf(c->query_pre_attn_scalar > 0 ? c->query_pre_attn_scalar : (float)c->head_dim);
  return scale * (m->rope_mscale * m->rope_mscale);
}

/* The normal path's attention core: RoPE at the session's offset (each row's own in a batch),
 * the KV cache's host-managed update, a host-built mask when one is needed. */
static int cached_attention(mlx_array* out, mlxc_lm_session* sess, int li, mlx_array q, mlx_array k, mlx_array v,
                            void* ctx, mlx_stream s) {
  const lm_config* c = &sess->model->config;
  int B = mlx_array_dim(q, 0), L = mlx_array_dim(q, 2);
  mlx_array qr = mlx_array_new(), kr = mlx_array_new(), mask = mlx_array_new(), row_offsets = mlx_array_new();
  lm_kv_view view;
  for (int i = 0; i < 3; i++) view.keys[i] = view.values[i] = mlx_array_new();
  int status = 0;
  if (sess->row_start) CALL(row_positions(&row_offsets, sess)); /* each row's positions count from its first real column */
  CALL(lm_rope_qk(&qr, &kr, sess, li, q, k, row_offsets, s));
  lm_kv_cache* cache = &sess->caches[li];
  CALL(lm_cache_update(cache, kr, v, sess->offset, &view, s));
  int T = cache->length;
  float scale = lm_attention_scale(sess->model);
  bool sliding = c->layer_kinds[li] == LAYER_SLIDING_ATTENTION && c->sliding_window > 0;
  /* A standard cache holds positions 0..T-1 in order; a rotating one is masked by the
   * positions its slots hold, within the narrower of the layer's and the cache's windows. */
  int window = sliding ? c->sliding_window : INT_MAX;
  if (cache->evicted || cache->options.max_size > 0 || sess->row_start) {
    int rotating_window = cache->options.max_size > 0 ? cache->options.max_size - cache->options.keep : INT_MAX;
    CALL(position_mask(&mask, L, cache->positions, T, sess->offset, window < rotating_window ? window : rotating_window,
                       cache->options.keep, sess->row_start, B));
  } else if (sliding && T > c->sliding_window) {
    CALL(attention_mask(&mask, L, T, sess->offset, c->sliding_window, s));
  }
  bool causal = L > 1 && !cache->evicted && cache->options.max_size == 0 && !sess->row_start;
  if (c->attn_logit_softcapping > 0 || view.quantized) {
    CALL(composed_attention(out, qr, &view, scale, c->attn_logit_softcapping, mask, causal, sess->offset, s));
  } else {
    const char* mode = mask.ctx ? "array" : (causal ? "causal" : "");
    CALL(mlx_fast_scaled_dot_product_attention(out, qr, view.keys[0], view.values[0], scale, mode, mask, mlx_array_new(), s));
  }
cleanup:
  mlx_array_free(qr);
  mlx_array_free(kr);
  lm_cache_view_free(&view);
  mlx_array_free(mask);
  mlx_array_free(row_offsets);
  return status;
}

/* One layer's attention block on its input (stream x (B, L, D), normalised by in): projections,
 * heads, q/k norms, then `attend` for RoPE, the cache and attention; out (B, L, H * hd) is what
 * the output projection (the caller's) takes. */
static int attention(mlx_array* out, mlxc_lm_session* sess, int li, sublayer_input* in, mlx_array x,
                     lm_attend_fn attend, void* ctx, mlx_stream s) {
  const mlxc_lm_model* m = sess->model;
  const lm_config* c = &m->config;
  const lm_layer* layer = &m->layers[li];
  int H = c->num_heads, K = c->num_kv_heads, hd = c->head_dim, B = mlx_array_dim(x, 0), L = mlx_array_dim(x, 1);
  mlx_array q = mlx_array_new(), k = mlx_array_new(), v = mlx_array_new(), h = mlx_array_new();
  int status = 0;
  if (layer->qkv.weight.ctx) { /* phi3's checkpoints, or stacked at load (fuse.c) */
    /* Without q/k norms the query and key heads stay together for one RoPE (lm_attend_fn). */
    bool joint = !m->arch->qk_norm;
    int cuts[2] = {H * hd, (H + K) * hd};
    mlx_vector_array parts = mlx_vector_array_new();
    status = input_linear(&h, &layer->qkv, in, x, NULL, c->norm_eps, s);
    if (!status) status = mlx_split_sections(&parts, h, joint ? cuts + 1 : cuts, joint ? 1 : 2, -1, s);
    if (!status) status = mlx_vector_array_get(&q, parts, 0);
    if (!status && !joint) status = mlx_vector_array_get(&k, parts, 1);
    if (!status) status = mlx_vector_array_get(&v, parts, joint ? 1 : 2);
    mlx_vector_array_free(parts);
    if (status) goto cleanup;
    if (joint) {
      CALL(split_heads(&q, q, H + K, hd, s)); /* (B, H + K, L, hd) */
      CALL(split_heads(&v, v, K, hd, s));
      CALL(attend(&h, sess, li, q, k, v, ctx, s));
      goto project;
    }
  } else {
    CALL(input_normed(in, x, c->norm_eps, s));
    CALL(lm_linear_apply(&q, &layer->q, in->r, s));
    CALL(lm_linear_apply(&k, &layer->k, in->r, s));
    CALL(lm_linear_apply(&v, &layer->v, in->r, s));
  }
  CALL(split_heads(&q, q, H, hd, s)); /* (B, H, L, hd) */
  CALL(split_heads(&k, k, K, hd, s)); /* (B, K, L, hd) */
  CALL(split_heads(&v, v, K, hd, s));
  if (m->arch->qk_norm) {
    CALL(lm_norm_apply(&q, &layer->q_norm, q, c->norm_eps, s));
    CALL(lm_norm_apply(&k, &layer->k_norm, k, c->norm_eps, s));
  }
  CALL(attend(&h, sess, li, q, k, v, ctx, s)); /* (B, H, L, hd) */
project:;
  int perm[4] = {0, 2, 1, 3}, shape[3] = {B, L, H * hd};
  CALL(mlx_transpose_axes(&h, h, perm, 4, s));
  CALL(mlx_reshape(out, h, shape, 3, s));
cleanup:
  mlx_array_free(q);
  mlx_array_free(k);
  mlx_array_free(v);
  mlx_array_free(h);
  return status;
}

/* Whether a step's norms can run inside its projections (sublayer_input): one float16/bfloat16
 * row on the GPU (the fused kernels' case; float32 would compose), without Gemma's post-norms.
 * MLXC_FUSED_NORMS=0 turns it off (comparisons). */
static bool fused_norms(const mlxc_lm_model* m, mlx_array x) {
  const char* env = getenv("MLXC_FUSED_NORMS");
  mlx_dtype dt = mlx_array_dtype(x);
  if ((env && !strcmp(env, "0")) || m->arch->gemma_norms || (dt != MLX_FLOAT16 && dt != MLX_BFLOAT16) ||
      mlx_array_size(x) != (size_t)mlx_array_dim(x, (int)mlx_array_ndim(x) - 1))
    return false;
  mlx_device dev = mlx_device_new();
  mlx_device_type type = MLX_CPU;
  bool gpu = !mlx_stream_get_device(&dev, m->stream) && !mlx_device_get_type(&type, dev) && type == MLX_GPU;
  mlx_device_free(dev);
  return gpu;
}

static unsigned long fused_norm_builds;

unsigned long lm_decoder_fused_norm_builds(void) { return fused_norm_builds; }

int lm_decoder_run(mlxc_lm_session* sess, mlx_array ids, lm_attend_fn attend, void* ctx, mlx_array* logits) {
  const mlxc_lm_model* m = sess->model;
  const lm_config* c = &m->config;
  mlx_stream s = m->stream;
  mlx_array x = mlx_array_new(), r = mlx_array_new(), t = mlx_array_new();
  sublayer_input in = {mlx_array_new(), mlx_array_new(), mlx_array_new(), NULL, false};
  int status = 0;
  int L = mlx_array_dim(ids, 1);
  if (mlx_array_dim(ids, 0) != sess->batch)
    return util_error("%d rows of tokens for a session of %d rows", mlx_array_dim(ids, 0), sess->batch);
  CALL(lm_embed_apply(&x, &m->embed, ids, s)); /* (B, L, D) */
  CALL(lm_embed_scale(&x, m, s));
  const bool fuse = fused_norms(m, x);
  fused_norm_builds += fuse;
  const float eps = c->norm_eps;
  /* Each residual connection and the norm after it are one op (lm_add_norm_apply, or the
   * projection's GEMV: residual_linear): in is the next sub-layer's input, the last one's the
   * final norm. */
  in.norm = c->num_layers > 0 ? &m->layers[0].input_norm : &m->final_norm;
  CALL(lm_norm_apply(&in.r, in.norm, x, eps, s));
  for (int li = 0; li < c->num_layers; li++) {
    const lm_layer* layer = &m->layers[li];
    const lm_norm* post_attention = m->arch->gemma_norms ? &layer->post_attention_norm : NULL;
    const lm_norm* post_feedforward = m->arch->gemma_norms ? &layer->post_feedforward_norm : NULL;
    if (c->layer_kinds[li] == LAYER_CONV) {
      CALL(input_normed(&in, x, eps, s));
      CALL(lm_conv_block(&t, sess, li, in.r, s));
      CALL(residual_add(&x, &in, t, post_attention, &layer->pre_feedforward_norm, eps, s));
    } else {
      CALL(attention(&t, sess, li, &in, x, attend, ctx, s));
      CALL(residual_linear(&x, &in, &layer->o, t, post_attention, &layer->pre_feedforward_norm, fuse, eps, s));
    }
    const lm_norm* next = li + 1 < c->num_layers ? &m->layers[li + 1].input_norm : &m->final_norm;
    if (c->moe_layer[li]) {
      CALL(input_normed(&in, x, eps, s));
      CALL(lm_moe_apply(&t, m, layer, in.r, s));
      CALL(residual_add(&x, &in, t, post_feedforward, next, eps, s));
    } else {
      CALL(mlp_hidden(&t, m, layer, &in, x, s));
      CALL(residual_linear(&x, &in, &layer->down, t, post_feedforward, next, fuse, eps, s));
    }
  }
  CALL(input_normed(&in, x, eps, s));
  mlx_array_free(r);
  r = in.r;
  in.r = mlx_array_new();
  mlx_array_free(x);
  x = r; /* the final norm's output */
  r = mlx_array_new();
  if (sess->last_logits_only && L > 1) {
    /* Generation needs the next token's logits only: skip the vocabulary projection (and the
     * transfer) of every other position. */
    int start[3] = {0, L - 1, 0}, stop[3] = {mlx_array_dim(x, 0), L, mlx_array_dim(x, 2)};
    CALL(mlx_slice(&x, x, start, 3, stop, 3, NULL, 0, s));
  }
  CALL(lm_linear_apply(logits, m->lm_head.weight.ctx ? &m->lm_head : &m->embed, x, s));
  if (!sess->model_dtype_logits || c->final_logit_softcapping > 0) CALL(mlx_astype(logits, *logits, MLX_FLOAT32, s));
  if (c->final_logit_softcapping > 0) {
    mlx_array cap = mlx_array_new_float(c->final_logit_softcapping), inv = mlx_array_new_float(1.0f / c->final_logit_softcapping);
    status = mlx_multiply(logits, *logits, inv, s);
    if (!status) status = mlx_tanh(logits, *logits, s);
    if (!status) status = mlx_multiply(logits, *logits, cap, s);
    mlx_array_free(cap);
    mlx_array_free(inv);
    if (status) goto cleanup;
  }
cleanup:
  mlx_array_free(x);
  mlx_array_free(r);
  mlx_array_free(t);
  mlx_array_free(in.r);
  mlx_array_free(in.ss);
  mlx_array_free(in.scaled);
  return status;
}

int lm_decoder_forward(mlxc_lm_session* sess, mlx_array ids, mlx_array* logits) {
  int status = lm_decoder_run(sess, ids, cached_attention, NULL, logits);
  if (!status) sess->offset += mlx_array_dim(ids, 1);
  return status;
}
