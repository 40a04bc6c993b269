/* Generation: chunked prefill of the prompt, then one token at a time until max_tokens, an eos
 * id or the callback says stop; with timing and peak-memory statistics. */
#include <stdlib.h>
#include <string.h>

#include "lm/call.h"
#include "lm/decode_step.h"
#include "lm/generation.h"
#include "lm/model.h"
#include "lm/sample.h"
#include "mlxc/memory.h"
#include "util/error.h"

mlxc_lm_generate_params mlxc_lm_generate_default_params(void) {
  return (mlxc_lm_generate_params){.max_tokens = 256, .temperature = 0.0f, .top_p = 1.0f,
                                   .repetition_penalty = 1.0f, .repetition_context = 20,
                                   .prefill_step = 512, .kv_group_size = 64};
}

/* Greedy decoding with no penalty or bias looks only at the argmax and the log-normaliser. */
static bool plain_greedy(const mlxc_lm_generate_params* p) {
  return p->temperature <= 0 && p->n_bias == 0 && (p->repetition_penalty <= 0 || p->repetition_penalty == 1.0f) &&
         p->presence_penalty == 0 && p->frequency_penalty == 0;
}

int mlxc_lm_generate(mlxc_lm_session* s, const int32_t* prompt, size_t n_prompt,
                     const mlxc_lm_generate_params* params, mlxc_lm_generation* out) {
  if (!s || !params || !out || (n_prompt && !prompt)) return util_error("mlxc_lm_generate: null argument");
  if (n_prompt == 0) return util_error("mlxc_lm_generate: the prompt is empty");
  memset(out, 0, sizeof *out);
  const mlxc_lm_model* m = s->model;
  int vocab = m->config.vocab_size;
  if ((size_t)s->offset + n_prompt > (size_t)m->config.max_position_embeddings)
    return util_error("the prompt (%zu tokens after %d in the session) is longer than the model's context of %d positions",
                      n_prompt, s->offset, m->config.max_position_embeddings);
  size_t capacity = n_prompt + (size_t)(params->max_tokens > 0 ? params->max_tokens : 0);
  int32_t* history = malloc(sizeof(int32_t) * (capacity ? capacity : 1));
  float* row = malloc(sizeof(float) * (size_t)vocab);
  float* logprobs = malloc(sizeof(float) * (size_t)(params->max_tokens > 0 ? params->max_tokens : 1));
  void* scratch = malloc(sizeof(float) * 2 * (size_t)vocab);
  mlx_array logits = mlx_array_new();
  lm_step decode;
  bool greedy = plain_greedy(params);
  mlxc_wired_guard* guard = NULL;
  int status = lm_step_init(&decode, s, params, greedy);
  if (status) goto cleanup;
  /* Picked where the logits live (greedy, or sampled on a GPU) or sampled here from the row. */
  const bool picks = lm_step_picks(&decode);
  if (!history || !row || !scratch || !logprobs) CALL(util_error("out of memory"));
  /* As mlx-lm: keep the weights resident (wired) for the duration of the generation. */
  mlx_device device = mlx_device_new();
  mlx_stream_get_device(&device, m->stream);
  CALL(mlxc_wired_guard_install(&guard, device, m->weight_bytes, &m->stream, 1));
  memcpy(history, prompt, sizeof(int32_t) * n_prompt);
  size_t n_history = n_prompt;
  lm_rng rng;
  lm_rng_seed(&rng, params->seed);
  CALL(lm_session_configure(s, params->max_kv_size, params->kv_bits, params->kv_group_size, params->quantized_kv_start));
  mlx_reset_peak_memory();

  double start = lm_now_seconds();
  size_t step = params->prefill_step > 0 ? (size_t)params->prefill_step : n_prompt;
  s->last_logits_only = true;
  for (size_t i = 0; i < n_prompt && !status; i += step) {
    size_t n = n_prompt - i < step ? n_prompt - i : step;
    status = mlxc_lm_forward(s, prompt + i, n, &logits);
  }
  s->last_logits_only = false;
  if (status) goto cleanup;
  int32_t picked = 0;
  float picked_logprob = 0;
  /* A device sampler takes the draws lm_sample would take, in the same order: one per token. */
  if (picks)
    CALL(lm_step_pick(&decode, logits, m->stream, decode.sampler ? lm_rng_uniform(&rng) : 0, &picked, &picked_logprob));
  else
    CALL(lm_step_last_row(logits, row));
  out->prompt_tokens = n_prompt;
  out->prompt_seconds = lm_now_seconds() - start;

  start = lm_now_seconds();
  out->ids = history + n_prompt;
  for (int t = 0; t < params->max_tokens; t++) {
    float logprob = picked_logprob;
    int32_t token = picks ? picked : lm_sample(row, vocab, params, history, n_history, &rng, scratch, &logprob);
    if (lm_is_eos(params, token)) {
      out->stopped_by_eos = 1;
      break;
    }
    history[n_history++] = token;
    logprobs[out->n_ids++] = logprob;
    if (params->on_token && params->on_token(token, params->user_data)) break;
    if (t + 1 == params->max_tokens || s->offset >= m->config.max_position_embeddings) break;
    CALL(lm_step_run(&decode, s, token, &rng, t + 2 < params->max_tokens, &picked, &picked_logprob, row));
  }
  out->generation_seconds = lm_now_seconds() - start;
  mlx_get_peak_memory(&out->peak_memory);
  /* Hand back only the generated ids, in their own allocation. */
  int32_t* ids = malloc(sizeof(int32_t) * (out->n_ids ? out->n_ids : 1));
  if (!ids) CALL(util_error("out of memory"));
  memcpy(ids, history + n_prompt, sizeof(int32_t) * out->n_ids);
  out->ids = ids;
  out->logprobs = logprobs;
  logprobs = NULL;
cleanup:
  if (status) {
    out->ids = NULL;
    out->n_ids = 0;
  }
  free(logprobs);
  mlxc_wired_guard_release(guard);
  free(history);
  free(row);
  free(scratch);
  mlx_array_free(logits);
  lm_step_free(&decode);
  return status;
}

void mlxc_lm_generation_free(mlxc_lm_generation* g) {
  if (!g) return;
  free(g->ids);
  free(g->logprobs);
  g->ids = NULL;
  g->logprobs = NULL;
  g->n_ids = 0;
}
