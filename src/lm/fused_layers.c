/* The static decode step with all decoder layers in one node (ops/decode_layers.h), which one
 * persistent kernel runs on a GPU: embedding, decode_layers, final norm, output layer. Opt-in
 * (MLXC_FUSED_LAYERS=1, any stream; the CPU runs the node's reference kernel), because on the
 * H100 it is not faster than the chain of kernels yet (BENCHMARKS.md, eleventh session). Taken
 * when every layer has the plain Llama-family shape the kernel computes (stacked q/k/v with or
 * without a bias, stacked gate/up, one quantization for all linears, no q/k norms, no sliding
 * windows, no extra norms or biases) and, on a GPU, the backend takes the sizes. */
#include <stdlib.h>
#include <string.h>

#include "backend/gpu.h"
#include "lm/call.h"
#include "lm/fused_layers.h"
#include "mlx/c/device.h"
#include "ops/decode_layers.h"
#include "util/error.h"

/* Whether linear l has the kernel's form: weight, no bias unless allowed, quantization as p. */
static bool linear_fits(const lm_linear* l, bool bias_allowed, const decode_layers_params* p, mlx_dtype dt) {
  if (!l->weight.ctx || (l->bias.ctx && !bias_allowed)) return false;
  if (l->bias.ctx && mlx_array_dtype(l->bias) != dt) return false;
  if (!l->quantized) return p->bits == 0 && mlx_array_dtype(l->weight) == dt;
  return l->bits == p->bits && l->group_size == p->group && l->biases.ctx && mlx_array_dtype(l->scales) == dt &&
         mlx_array_dtype(l->biases) == dt;
}

static bool norm_fits(const lm_norm* n, mlx_dtype dt) {
  return n->weight.ctx && !n->plus_one && mlx_array_dtype(n->weight) == dt;
}

/* The node's params for session s, or false when its model does not fit the kernel. */
static bool fused_params(const mlxc_lm_session* s, decode_layers_params* p, mlx_dtype* dtype) {
  const mlxc_lm_model* m = s->model;
  const lm_config* c = &m->config;
  const char* env = getenv("MLXC_FUSED_LAYERS");
  if (!env || strcmp(env, "1") != 0) return false;
  mlx_device dev = mlx_device_new();
  mlx_device_type type = MLX_CPU;
  int index = 0;
  bool gpu = !mlx_stream_get_device(&dev, m->stream) && !mlx_device_get_type(&type, dev) &&
             !mlx_device_get_index(&index, dev) && type == MLX_GPU;
  mlx_device_free(dev);
  if (c->num_layers < 1 || m->arch->qk_norm || m->arch->gemma_norms || !m->embed.weight.ctx ||
      c->final_logit_softcapping > 0)
    return false;
  /* The embedding's rows come out in the dtype of its weight, or dequantized in its scales'. */
  const mlx_dtype dt = mlx_array_dtype(m->embed.quantized ? m->embed.scales : m->embed.weight);
  const lm_layer* first = &m->layers[0];
  lm_rope_settings rope = lm_rope_for(s, 0, 1);
  *p = (decode_layers_params){.n_layers = c->num_layers,
                              .D = c->hidden_size,
                              .H = c->num_heads,
                              .KVH = c->num_kv_heads,
                              .hd = c->head_dim,
                              .I = c->intermediate_size,
                              .capacity = mlx_array_dim(s->static_slots, 0),
                              .rope_dims = rope.dims,
                              .bits = first->qkv.quantized ? first->qkv.bits : 0,
                              .group = first->qkv.quantized ? first->qkv.group_size : 0,
                              .gelu = c->activation != ACT_SILU,
                              .has_freqs = rope.freqs.ctx != NULL,
                              .qkv_bias = first->qkv.bias.ctx != NULL,
                              .eps = c->norm_eps,
                              .attn_scale = lm_attention_scale(m),
                              .rope_base = rope.base.has_value ? rope.base.value : 0.0f,
                              .rope_scale = 1.0f};
  for (int i = 0; i < c->num_layers; i++) {
    const lm_layer* L = &m->layers[i];
    if (c->layer_kinds[i] == LAYER_CONV || (c->layer_kinds[i] == LAYER_SLIDING_ATTENTION && c->sliding_window > 0) ||
        c->moe_layer[i] || !norm_fits(&L->input_norm, dt) ||
        !norm_fits(&L->pre_feedforward_norm, dt) || L->post_attention_norm.weight.ctx ||
        L->post_feedforward_norm.weight.ctx || !linear_fits(&L->qkv, true, p, dt) || !linear_fits(&L->o, false, p, dt) ||
        !linear_fits(&L->gate_up, false, p, dt) || !linear_fits(&L->down, false, p, dt) ||
        (L->qkv.bias.ctx != NULL) != p->qkv_bias)
      return false;
    lm_rope_settings r = lm_rope_for(s, i, 1);
    if (r.dims != rope.dims || r.freqs.ctx != rope.freqs.ctx || r.base.has_value != rope.base.has_value ||
        (r.base.has_value && r.base.value != rope.base.value))
      return false;
  }
  *dtype = dt;
  return !gpu || gpu_backend_decode_layers_refusal(index, p, dt) == NULL;
}

bool lm_fused_layers_taken(const mlxc_lm_session* s) {
  decode_layers_params p;
  mlx_dtype dt;
  return s->static_slots.ctx && fused_params(s, &p, &dt);
}

static unsigned long built;

unsigned long lm_fused_layers_built(void) { return built; }

int lm_fused_layers_forward(mlxc_lm_session* s, mlx_array token, mlx_array position, mlx_array* logits, bool* used) {
  const mlxc_lm_model* m = s->model;
  const lm_config* c = &m->config;
  decode_layers_params p;
  mlx_dtype dt;
  *used = false;
  if (!fused_params(s, &p, &dt)) return 0;
  *used = true;
  built++;
  mlx_stream st = m->stream;
  decode_layer_arrays* layers = calloc((size_t)c->num_layers, sizeof *layers);
  mlx_array* keys = calloc((size_t)c->num_layers * 2, sizeof *keys);
  if (!layers || !keys) {
    free(layers);
    free(keys);
    return util_error("out of memory");
  }
  mlx_array* values = keys + c->num_layers;
  for (int i = 0; i < c->num_layers; i++) {
    const lm_layer* L = &m->layers[i];
    const lm_linear* lin[4] = {&L->qkv, &L->o, &L->gate_up, &L->down};
    layers[i].input_norm = L->input_norm.weight;
    layers[i].post_norm = L->pre_feedforward_norm.weight;
    for (int j = 0; j < 4; j++) {
      layers[i].weight[j] = lin[j]->weight;
      layers[i].scales[j] = lin[j]->scales;
      layers[i].biases[j] = lin[j]->biases;
    }
    layers[i].qkv_bias = L->qkv.bias;
    layers[i].keys = s->caches[i].parts[0];
    layers[i].values = s->caches[i].parts[1];
    keys[i] = mlx_array_new();
    values[i] = mlx_array_new();
  }
  mlx_array x = mlx_array_new(), r = mlx_array_new();
  int status = 0;
  CALL(lm_embed_apply(&x, &m->embed, token, st));
  if (mlx_array_dtype(x) != dt) CALL(mlx_astype(&x, x, dt, st));
  CALL(ops_decode_layers(&x, keys, values, x, position, lm_rope_for(s, 0, 1).freqs, layers, &p, st));
  /* The results replace the session's cache handles, so that the next step's node can write
   * them in place again. */
  for (int i = 0; i < c->num_layers; i++) {
    mlx_array_free(s->caches[i].parts[0]);
    mlx_array_free(s->caches[i].parts[1]);
    s->caches[i].parts[0] = keys[i];
    s->caches[i].parts[1] = values[i];
    keys[i] = values[i] = mlx_array_new();
  }
  CALL(lm_norm_apply(&r, &m->final_norm, x, c->norm_eps, st));
  CALL(lm_linear_apply(logits, m->lm_head.weight.ctx ? &m->lm_head : &m->embed, r, st));
  if (!s->model_dtype_logits) CALL(mlx_astype(logits, *logits, MLX_FLOAT32, st));
cleanup:
  for (int i = 0; i < 2 * c->num_layers; i++) mlx_array_free(keys[i]);
  free(keys);
  free(layers);
  mlx_array_free(x);
  mlx_array_free(r);
  return status;
}
