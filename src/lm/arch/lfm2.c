/* LFM2: a hybrid of short gated convolutions and attention layers (config layer_types), with
 * q/k norms in attention, a SwiGLU feed-forward (w1, w3, w2) and the final norm called
 * embedding_norm. Its tensor names differ from the Llama family's, hence its own binding. */
#include <jansson.h>
#include <stdio.h>

#include "lm/call.h"
#include "lm/model.h"
#include "util/error.h"

/* LFM2's norms use norm_eps (its config also carries an unused rms_norm_eps). */
static int lfm2_configure(lm_config* c, const void* json) {
  json_t* eps = json_object_get(json, "norm_eps");
  if (json_is_number(eps)) c->norm_eps = (float)json_number_value(eps);
  return 0;
}

static int lfm2_bind(mlxc_lm_model* m) {
  const lm_config* c = &m->config;
  int H = c->num_heads, K = c->num_kv_heads, hd = c->head_dim, D = c->hidden_size, F = c->intermediate_size;
  char q[256];
  int status = 0;
  CALL(lm_bind_linear(m, &m->embed, "model.embed_tokens", c->vocab_size, D, true));
  CALL(lm_bind_norm(m, &m->final_norm, "model.embedding_norm.weight", D, true));
  CALL(lm_bind_linear(m, &m->lm_head, "lm_head", c->vocab_size, D, false));
  for (int i = 0; i < c->num_layers; i++) {
    lm_layer* L = &m->layers[i];
#define NAME(fmt) (snprintf(q, sizeof q, "model.layers.%d." fmt, i), q)
    CALL(lm_bind_norm(m, &L->input_norm, NAME("operator_norm.weight"), D, true));
    CALL(lm_bind_norm(m, &L->pre_feedforward_norm, NAME("ffn_norm.weight"), D, true));
    CALL(lm_bind_linear(m, &L->gate, NAME("feed_forward.w1"), F, D, true));
    CALL(lm_bind_linear(m, &L->up, NAME("feed_forward.w3"), F, D, true));
    CALL(lm_bind_linear(m, &L->down, NAME("feed_forward.w2"), D, F, true));
    if (c->layer_kinds[i] == LAYER_CONV) {
      CALL(lm_bind_linear(m, &L->conv_in, NAME("conv.in_proj"), 3 * D, D, true));
      CALL(lm_bind_linear(m, &L->conv_out, NAME("conv.out_proj"), D, D, true));
      CALL(lm_bind_tensor(m, NAME("conv.conv.weight"), true, &L->conv_weight));
      if (mlx_array_ndim(L->conv_weight) != 3 || mlx_array_dim(L->conv_weight, 0) != D ||
          mlx_array_dim(L->conv_weight, 1) != 1 || mlx_array_dim(L->conv_weight, 2) < 1)
        CALL(util_error("tensor %s must have shape (%d, 1, kernel)", q, D));
    } else {
      CALL(lm_bind_linear(m, &L->q, NAME("self_attn.q_proj"), H * hd, D, true));
      CALL(lm_bind_linear(m, &L->k, NAME("self_attn.k_proj"), K * hd, D, true));
      CALL(lm_bind_linear(m, &L->v, NAME("self_attn.v_proj"), K * hd, D, true));
      CALL(lm_bind_linear(m, &L->o, NAME("self_attn.out_proj"), D, H * hd, true));
      CALL(lm_bind_norm(m, &L->q_norm, NAME("self_attn.q_layernorm.weight"), hd, true));
      CALL(lm_bind_norm(m, &L->k_norm, NAME("self_attn.k_layernorm.weight"), hd, true));
    }
#undef NAME
  }
cleanup:
  return status;
}

const lm_arch lm_arch_lfm2 = {.model_type = "lfm2", .qk_norm = true, .configure = lfm2_configure, .bind = lfm2_bind};
