/* rope_kv_sdpa (mlxc_fast_rope_kv_attention) on the CPU: the two kernels it fuses, the rotated q
 * in a scratch array between them. */
#include "backend/cpu/kernels.h"
#include "ops/fast_params.h"

int cpu_eval_rope_kv_sdpa(core_node* node, core_array** outputs) {
  const rope_kv_sdpa_params* p = node->params;
  const int n_rope = p->rope.has_freqs ? 7 : 6;
  core_array* q = node->inputs[0];
  core_array* rotated = core_array_create(q->shape, q->ndim, q->dtype);
  if (!rotated) return 1;
  core_node rope = {.op = node->op, .params = (void*)&p->rope, .n_inputs = n_rope, .inputs = node->inputs,
                    .n_outputs = 3, .stream = node->stream};
  core_array* rope_outputs[3] = {rotated, outputs[1], outputs[2]};
  int status = cpu_eval_rope_kv(&rope, rope_outputs);
  if (!status) {
    core_array* inputs[4] = {rotated, outputs[1], outputs[2], NULL};
    int n = 3;
    if (p->sdpa.mask == SDPA_MASK_ARRAY) inputs[n++] = node->inputs[n_rope];
    core_node attend = {.op = node->op, .params = (void*)&p->sdpa, .n_inputs = n, .inputs = inputs,
                        .n_outputs = 1, .stream = node->stream};
    status = cpu_eval_sdpa(&attend, outputs);
  }
  core_array_release(rotated);
  return status;
}
