/* Speculative decoding (mlx-lm's speculative_generate_step). Both sessions hold the same
 * context; `y`, the last emitted token, is not yet in either. A round: the draft runs y and
 * proposes d1..dk one token at a time; the main model runs [y, d1..dk] in one pass; row i gives
 * the main model's own token t_i, drawn exactly as plain decoding would draw it; t_0.. are
 * emitted while t_i == d_(i+1), and the first that differs (or the one after dk) ends the round
 * as the next y. Both caches are then rewound to the context plus y and the accepted tokens. */
#include <stdlib.h>
#include <string.h>

#include "lm/call.h"
#include "lm/generation.h"
#include "lm/model.h"
#include "lm/sample.h"
#include "mlxc/memory.h"
#include "util/error.h"

/* A model can run speculatively when its caches can be rewound by any amount. */
static int check_rewindable(const mlxc_lm_model* m, const mlxc_lm_generate_params* p, const char* which) {
  const lm_config* c = &m->config;
  for (int i = 0; i < c->num_layers; i++) {
    if (c->layer_kinds[i] == LAYER_CONV)
      return util_error("speculative decoding needs caches that can be rewound; the %s model (%s) has convolution layers",
                        which, c->model_type);
    if (c->layer_kinds[i] == LAYER_SLIDING_ATTENTION && c->sliding_window > 0)
      return util_error("speculative decoding needs caches that can be rewound; the %s model (%s) has sliding-window "
                        "layers, whose rotating caches cannot", which, c->model_type);
  }
  if (p->max_kv_size > 0)
    return util_error("speculative decoding needs caches that can be rewound, which a rotating cache (max_kv_size) cannot");
  return 0;
}

static int check_args(mlxc_lm_session* s, mlxc_lm_session* draft, const int32_t* prompt, size_t n_prompt,
                      int num_draft_tokens, const mlxc_lm_generate_params* p, mlxc_lm_generation* out) {
  if (!s || !draft || !p || !out || (n_prompt && !prompt)) return util_error("mlxc_lm_generate_speculative: null argument");
  if (n_prompt == 0) return util_error("mlxc_lm_generate_speculative: the prompt is empty");
  if (s == draft) return util_error("mlxc_lm_generate_speculative: the draft needs a session of its own");
  if (num_draft_tokens < 1 || num_draft_tokens > 64)
    return util_error("num_draft_tokens must be between 1 and 64, not %d", num_draft_tokens);
  int vocab = s->model->config.vocab_size, draft_vocab = draft->model->config.vocab_size;
  if (vocab != draft_vocab)
    return util_error("the draft model's vocabulary (%d tokens) differs from the model's (%d): they must share a tokenizer",
                      draft_vocab, vocab);
  if (s->offset != draft->offset)
    return util_error("the draft session holds %d tokens and the main session %d: they must share their context",
                      draft->offset, s->offset);
  int status = check_rewindable(s->model, p, "main");
  if (!status) status = check_rewindable(draft->model, p, "draft");
  if (status) return status;
  int context = s->model->config.max_position_embeddings;
  if ((size_t)s->offset + n_prompt > (size_t)context)
    return util_error("the prompt (%zu tokens after %d in the session) is longer than the model's context of %d positions",
                      n_prompt, s->offset, context);
  return 0;
}

/* Runs the prompt; *logits: the last position's. */
static int prefill(mlxc_lm_session* s, const int32_t* prompt, size_t n, int step_size, mlx_array* logits) {
  size_t step = step_size > 0 ? (size_t)step_size : n;
  int status = 0;
  s->last_logits_only = true;
  for (size_t i = 0; i < n && !status; i += step) status = mlxc_lm_forward(s, prompt + i, n - i < step ? n - i : step, logits);
  s->last_logits_only = false;
  return status;
}

/* Copies row i of evaluated (n, vocab) logits into `row`. */
static int copy_row(mlx_array logits, size_t i, float* row, int vocab) {
  const float* data = mlx_array_data_float32(logits);
  if (!data) return 1;
  memcpy(row, data + i * (size_t)vocab, sizeof(float) * (size_t)vocab);
  return 0;
}

typedef struct {
  const mlxc_lm_generate_params* params;
  int32_t* history;      /* prompt, emitted tokens, then the round's proposals (tentatively) */
  size_t n_history, n_prompt;
  float* logprobs;
  mlxc_lm_generation* out;
  bool done;
} emitter;

/* Emits a token the main model chose; false when generation is over. */
static bool emit(emitter* e, int32_t token, float logprob, int position, int context) {
  const mlxc_lm_generate_params* p = e->params;
  if (lm_is_eos(p, token)) {
    e->out->stopped_by_eos = 1;
    return !(e->done = true);
  }
  e->history[e->n_history++] = token;
  e->logprobs[e->out->n_ids++] = logprob;
  if (p->on_token && p->on_token(token, p->user_data)) e->done = true;
  if ((int)e->out->n_ids >= p->max_tokens || position >= context) e->done = true;
  return !e->done;
}

int mlxc_lm_generate_speculative(mlxc_lm_session* s, mlxc_lm_session* draft, const int32_t* prompt, size_t n_prompt,
                                 int num_draft_tokens, const mlxc_lm_generate_params* params, mlxc_lm_generation* out) {
  int status = check_args(s, draft, prompt, n_prompt, num_draft_tokens, params, out);
  if (status) return status;
  memset(out, 0, sizeof *out);
  const mlxc_lm_model* m = s->model;
  int vocab = m->config.vocab_size, context = m->config.max_position_embeddings;
  size_t max_tokens = (size_t)(params->max_tokens > 0 ? params->max_tokens : 0);
  emitter e = {params, malloc(sizeof(int32_t) * (n_prompt + max_tokens + (size_t)num_draft_tokens + 1)), n_prompt, n_prompt,
               malloc(sizeof(float) * (max_tokens ? max_tokens : 1)), out, max_tokens == 0};
  float* row = malloc(sizeof(float) * (size_t)vocab);
  void* scratch = malloc(sizeof(float) * 2 * (size_t)vocab);
  int32_t* run = malloc(sizeof(int32_t) * (size_t)(num_draft_tokens + 1));
  mlx_array logits = mlx_array_new();
  mlxc_wired_guard* guard = NULL;
  if (!e.history || !e.logprobs || !row || !scratch || !run) CALL(util_error("out of memory"));
  memcpy(e.history, prompt, sizeof(int32_t) * n_prompt);
  mlx_device device = mlx_device_new();
  mlx_stream_get_device(&device, m->stream);
  mlx_stream streams[2] = {m->stream, draft->model->stream};
  CALL(mlxc_wired_guard_install(&guard, device, m->weight_bytes + draft->model->weight_bytes, streams, 2));
  CALL(lm_session_configure(s, 0, params->kv_bits, params->kv_group_size, params->quantized_kv_start));
  CALL(lm_session_configure(draft, 0, params->kv_bits, params->kv_group_size, params->quantized_kv_start));
  lm_rng rng, draft_rng;
  lm_rng_seed(&rng, params->seed);
  lm_rng_seed(&draft_rng, params->seed ^ 0x5851f42d4c957f2dull); /* the draft's own stream */
  mlx_reset_peak_memory();

  double start = lm_now_seconds();
  CALL(prefill(draft, prompt, n_prompt, params->prefill_step, &logits));
  CALL(prefill(s, prompt, n_prompt, params->prefill_step, &logits));
  out->prompt_tokens = n_prompt;
  out->prompt_seconds = lm_now_seconds() - start;
  start = lm_now_seconds();
  float logprob;
  int32_t y = 0;
  int first = s->offset - (int)n_prompt; /* session position of history[0] */
  if (!e.done) {
    CALL(copy_row(logits, (size_t)mlx_array_dim(logits, 0) - 1, row, vocab));
    y = lm_sample(row, vocab, params, e.history, e.n_history, &rng, scratch, &logprob);
    emit(&e, y, logprob, s->offset, context);
  }
  while (!e.done) {
    int base = s->offset; /* context without y */
    /* At most k + 1 tokens come out of a round; the main model runs k + 1 positions. */
    int k = num_draft_tokens;
    if ((size_t)k > max_tokens - out->n_ids - 1) k = (int)(max_tokens - out->n_ids - 1);
    if (k > context - base - 1) k = context - base - 1;
    if (k < 0) k = 0;
    /* The draft runs what it has not seen (y, and dk when the last round accepted every
     * proposal), then proposes d1..dk, written tentatively after the history. */
    for (int j = 0; j < k; j++) {
      const int32_t* unseen = j == 0 ? e.history + (draft->offset - first) : e.history + e.n_history + j - 1;
      size_t n_unseen = j == 0 ? (size_t)(base + 1 - draft->offset) : 1;
      CALL(mlxc_lm_forward(draft, unseen, n_unseen, &logits));
      CALL(copy_row(logits, n_unseen - 1, row, vocab));
      e.history[e.n_history + j] = lm_sample(row, vocab, params, e.history, e.n_history + j, &draft_rng, scratch, &logprob);
    }
    /* The main model scores y and the proposals in one pass. */
    run[0] = y;
    memcpy(run + 1, e.history + e.n_history, sizeof(int32_t) * (size_t)k);
    CALL(mlxc_lm_forward(s, run, (size_t)k + 1, &logits));
    int accepted = 0;
    for (int i = 0; i <= k; i++) {
      int32_t proposal = i < k ? e.history[e.n_history] : -1;
      CALL(copy_row(logits, (size_t)i, row, vocab));
      y = lm_sample(row, vocab, params, e.history, e.n_history, &rng, scratch, &logprob);
      if (!emit(&e, y, logprob, base + 1 + i, context) || y != proposal) break;
      accepted++;
    }
    out->draft_tokens += (size_t)k;
    out->draft_accepted += (size_t)accepted;
    /* Keep the context, the old y and the accepted proposals; the draft ran all but dk. */
    CALL(mlxc_lm_session_truncate(s, base + 1 + accepted));
    if (draft->offset > s->offset) CALL(mlxc_lm_session_truncate(draft, s->offset));
  }
  if (draft->offset < s->offset) /* leave both sessions with the same context */
    CALL(mlxc_lm_forward(draft, e.history + (draft->offset - first), (size_t)(s->offset - draft->offset), &logits));
  out->generation_seconds = lm_now_seconds() - start;
  mlx_get_peak_memory(&out->peak_memory);
  out->ids = malloc(sizeof(int32_t) * (out->n_ids ? out->n_ids : 1));
  if (!out->ids) CALL(util_error("out of memory"));
  memcpy(out->ids, e.history + n_prompt, sizeof(int32_t) * out->n_ids);
  out->logprobs = e.logprobs;
  e.logprobs = NULL;
cleanup:
  if (status) mlxc_lm_generation_free(out);
  mlxc_wired_guard_release(guard);
  free(e.history);
  free(e.logprobs);
  free(row);
  free(scratch);
  free(run);
  mlx_array_free(logits);
  return status;
}
