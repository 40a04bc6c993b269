/* Qwen3-MoE: Qwen3 attention; in the sparse layers a router picks experts_per_token of
 * num_experts SwiGLU experts per token, weighted by the softmax of the router logits
 * (renormalised over the chosen ones when norm_topk_prob). */
#include <jansson.h>

#include "lm/model.h"
#include "util/error.h"

static int qwen3_moe_configure(lm_config* c, const void* json) {
  const json_t* root = json;
  /* transformers 5 calls it num_local_experts */
  json_t* experts = json_object_get(root, "num_experts");
  if (!experts) experts = json_object_get(root, "num_local_experts");
  c->num_experts = (int)json_integer_value(experts);
  c->experts_per_token = (int)json_integer_value(json_object_get(root, "num_experts_per_tok"));
  c->moe_intermediate_size = (int)json_integer_value(json_object_get(root, "moe_intermediate_size"));
  c->norm_topk_prob = json_is_true(json_object_get(root, "norm_topk_prob"));
  json_t* step_json = json_object_get(root, "decoder_sparse_step");
  int step = json_is_integer(step_json) ? (int)json_integer_value(step_json) : 1;
  if (c->num_experts <= 0 || c->experts_per_token <= 0 || c->experts_per_token > c->num_experts ||
      c->moe_intermediate_size <= 0 || step <= 0)
    return util_error("config.json: qwen3_moe needs positive num_experts >= num_experts_per_tok, "
                      "moe_intermediate_size and decoder_sparse_step");
  json_t* dense = json_object_get(root, "mlp_only_layers");
  for (int i = 0; i < c->num_layers; i++) {
    bool only_mlp = false;
    for (size_t j = 0; j < json_array_size(dense); j++)
      if (json_integer_value(json_array_get(dense, j)) == i) only_mlp = true;
    c->moe_layer[i] = !only_mlp && (i + 1) % step == 0;
  }
  return 0;
}

const lm_arch lm_arch_qwen3_moe = {.model_type = "qwen3_moe", .qk_norm = true, .configure = qwen3_moe_configure};
