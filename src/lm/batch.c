/* Batch generation (mlx-lm's batch_generate): prompts of different lengths are left-padded to
 * the longest and run as one (B, L) batch; each row's RoPE positions count from its first real
 * token and its padding is masked out (decoder.c), so a row computes what it would alone. Each
 * row samples with its own parameters and random state and finishes on its own (eos, max tokens,
 * callback); finished rows leave the batch and its caches. */
#include <stdlib.h>
#include <string.h>

#include "lm/call.h"
#include "lm/generation.h"
#include "lm/model.h"
#include "lm/sample.h"
#include "mlxc/memory.h"
#include "util/error.h"

int lm_session_set_rows(mlxc_lm_session* s, const int* row_start, int n) {
  const lm_config* c = &s->model->config;
  if (n < 1) return util_error("a batch needs at least one row");
  if (s->offset > 0) return util_error("a batch session must start empty");
  for (int i = 0; i < c->num_layers; i++)
    if (c->layer_kinds[i] == LAYER_CONV)
      return util_error("batch generation is not supported for models with convolution layers (%s)", c->model_type);
  int* copy = malloc(sizeof(int) * (size_t)n);
  if (!copy) return util_error("out of memory");
  memcpy(copy, row_start, sizeof(int) * (size_t)n);
  free(s->row_start);
  s->row_start = copy;
  s->batch = n;
  return 0;
}

int lm_session_keep_rows(mlxc_lm_session* s, const int* rows, int n) {
  int32_t* index = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
  int* start = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
  int status = 0, shape[1] = {n};
  mlx_array index_array = mlx_array_new();
  if (!index || !start) CALL(util_error("out of memory"));
  for (int i = 0; i < n; i++) {
    if (rows[i] < 0 || rows[i] >= s->batch) CALL(util_error("row %d is outside the batch of %d", rows[i], s->batch));
    index[i] = rows[i];
    start[i] = s->row_start ? s->row_start[rows[i]] : 0;
  }
  index_array = mlx_array_new_data(index, shape, 1, MLX_INT32);
  if (!index_array.ctx) CALL(1);
  for (int i = 0; i < s->model->config.num_layers; i++) CALL(lm_cache_keep_rows(&s->caches[i], index_array, s->model->stream));
  free(s->row_start);
  s->row_start = start;
  start = NULL;
  s->batch = n;
cleanup:
  free(index);
  free(start);
  mlx_array_free(index_array);
  return status;
}

/* One row's generation state. */
typedef struct {
  mlxc_lm_generate_params params;
  int32_t* history;            /* prompt, then generated tokens */
  size_t n_prompt, n_history;
  float* logprobs;
  lm_rng rng;
  bool done;
} batch_row;

/* Runs ids (B, n) and copies each row's last logits into rows (B, vocab). */
static int step(mlxc_lm_session* s, const int32_t* ids, int n, float* rows) {
  int B = s->batch, vocab = s->model->config.vocab_size, shape[2] = {B, n};
  int start[3] = {0, n - 1, 0}, stop[3] = {B, n, vocab};
  mlx_array ids_array = mlx_array_new_data(ids, shape, 2, MLX_INT32), logits = mlx_array_new();
  if (!ids_array.ctx) return 1;
  int status = 0;
  CALL(lm_decoder_forward(s, ids_array, &logits));
  if (mlx_array_dim(logits, 1) > 1) CALL(mlx_slice(&logits, logits, start, 3, stop, 3, NULL, 0, s->model->stream));
  CALL(mlx_contiguous(&logits, logits, false, s->model->stream));
  CALL(mlx_array_eval(logits));
  const float* data = mlx_array_data_float32(logits);
  if (!data) CALL(1);
  memcpy(rows, data, sizeof(float) * (size_t)B * (size_t)vocab);
cleanup:
  mlx_array_free(ids_array);
  mlx_array_free(logits);
  return status;
}

/* Samples row r's next token from its logits and decides whether the row is finished, in the
 * order mlxc_lm_generate does. */
static int advance(batch_row* row, float* logits, int vocab, int max_positions, void* scratch, mlxc_lm_generation* out) {
  const mlxc_lm_generate_params* p = &row->params;
  float logprob;
  int32_t token = lm_sample(logits, vocab, p, row->history, row->n_history, &row->rng, scratch, &logprob);
  if (lm_is_eos(p, token)) {
    out->stopped_by_eos = 1;
    row->done = true;
    return token;
  }
  row->logprobs[out->n_ids++] = logprob;
  row->history[row->n_history++] = token;
  if (p->on_token && p->on_token(token, p->user_data)) row->done = true;
  if ((int)out->n_ids >= p->max_tokens || row->n_history - 1 >= (size_t)max_positions) row->done = true;
  return token;
}

static int check_batch(const mlxc_lm_model* m, const int32_t* const* prompts, const size_t* lengths, size_t n,
                       const mlxc_lm_generate_params* params, size_t n_params, mlxc_lm_generation* outs) {
  if (!m || !prompts || !lengths || !params || !outs) return util_error("mlxc_lm_generate_batch: null argument");
  if (n == 0) return util_error("mlxc_lm_generate_batch: no prompts");
  if (n > 4096) return util_error("mlxc_lm_generate_batch: %zu prompts is more than the 4096 supported", n);
  if (n_params != 1 && n_params != n)
    return util_error("mlxc_lm_generate_batch: give 1 or %zu parameter sets, not %zu", n, n_params);
  if (params[0].max_kv_size > 0)
    return util_error("batch generation does not support a rotating cache (max_kv_size); sliding-window layers are fine");
  int vocab = m->config.vocab_size;
  for (size_t r = 0; r < n; r++) {
    if (!prompts[r] || lengths[r] == 0) return util_error("mlxc_lm_generate_batch: prompt %zu is empty", r);
    if (lengths[r] > (size_t)m->config.max_position_embeddings)
      return util_error("prompt %zu (%zu tokens) is longer than the model's context of %d positions", r, lengths[r],
                        m->config.max_position_embeddings);
    for (size_t i = 0; i < lengths[r]; i++)
      if (prompts[r][i] < 0 || prompts[r][i] >= vocab)
        return util_error("prompt %zu: token id %d at position %zu is outside the vocabulary (size %d)", r, prompts[r][i], i,
                          vocab);
  }
  return 0;
}

int mlxc_lm_generate_batch(const mlxc_lm_model* m, const int32_t* const* prompts, const size_t* lengths, size_t n,
                           const mlxc_lm_generate_params* params, size_t n_params, mlxc_lm_generation* outs) {
  int status = check_batch(m, prompts, lengths, n, params, n_params, outs);
  if (status) return status;
  memset(outs, 0, sizeof *outs * n);
  int B = (int)n, vocab = m->config.vocab_size, longest = 0;
  for (int r = 0; r < B; r++) longest = (int)lengths[r] > longest ? (int)lengths[r] : longest;
  batch_row* rows = calloc(n, sizeof *rows);
  int *row_start = malloc(sizeof(int) * n), *active = malloc(sizeof(int) * n), *kept = malloc(sizeof(int) * n);
  int32_t* padded = calloc((size_t)B * (size_t)longest, sizeof(int32_t)); /* id 0 pads: any valid id does */
  float* logits = malloc(sizeof(float) * n * (size_t)vocab);
  void* scratch = malloc(sizeof(float) * 2 * (size_t)vocab);
  mlxc_lm_session* s = NULL;
  mlxc_wired_guard* guard = NULL;
  if (!rows || !row_start || !active || !kept || !padded || !logits || !scratch) CALL(util_error("out of memory"));
  for (int r = 0; r < B; r++) {
    batch_row* row = &rows[r];
    row->params = params[n_params == 1 ? 0 : r];
    if (n_params == 1) row->params.seed += (uint64_t)r; /* shared parameters: a different stream per row */
    int max_tokens = row->params.max_tokens > 0 ? row->params.max_tokens : 0;
    row->history = malloc(sizeof(int32_t) * (lengths[r] + (size_t)max_tokens));
    row->logprobs = malloc(sizeof(float) * (size_t)(max_tokens ? max_tokens : 1));
    if (!row->history || !row->logprobs) CALL(util_error("out of memory"));
    memcpy(row->history, prompts[r], sizeof(int32_t) * lengths[r]);
    row->n_prompt = row->n_history = lengths[r];
    lm_rng_seed(&row->rng, row->params.seed);
    row->done = max_tokens == 0;
    row_start[r] = longest - (int)lengths[r];
    memcpy(padded + (size_t)r * longest + row_start[r], prompts[r], sizeof(int32_t) * lengths[r]);
    outs[r].prompt_tokens = lengths[r];
  }
  const mlxc_lm_generate_params* p0 = &params[0];
  mlx_device device = mlx_device_new();
  mlx_stream_get_device(&device, m->stream);
  CALL(mlxc_wired_guard_install(&guard, device, m->weight_bytes, &m->stream, 1));
  CALL(mlxc_lm_session_new(&s, m));
  CALL(lm_session_configure(s, 0, p0->kv_bits, p0->kv_group_size, p0->quantized_kv_start));
  CALL(lm_session_set_rows(s, row_start, B));
  s->last_logits_only = true; /* every step samples from its last column only */
  mlx_reset_peak_memory();

  /* Prefill, by chunks of columns. */
  double start = lm_now_seconds();
  int chunk = p0->prefill_step > 0 ? p0->prefill_step : longest;
  int32_t* ids = malloc(sizeof(int32_t) * (size_t)B * (size_t)(chunk < longest ? chunk : longest));
  if (!ids) CALL(util_error("out of memory"));
  for (int c = 0; c < longest && !status; c += chunk) {
    int width = longest - c < chunk ? longest - c : chunk;
    for (int r = 0; r < B; r++) memcpy(ids + (size_t)r * width, padded + (size_t)r * longest + c, sizeof(int32_t) * width);
    status = step(s, ids, width, logits);
  }
  free(ids);
  if (status) goto cleanup;
  double prompt_seconds = lm_now_seconds() - start;

  /* Decode: each active row samples; the finished ones leave; the rest run one more column. */
  start = lm_now_seconds();
  for (int r = 0; r < B; r++) active[r] = r;
  int n_active = B;
  while (n_active > 0) {
    int n_kept = 0;
    for (int i = 0; i < n_active; i++) {
      batch_row* row = &rows[active[i]];
      if (row->done) continue; /* max_tokens 0 */
      int32_t token = advance(row, logits + (size_t)i * vocab, vocab, m->config.max_position_embeddings, scratch, &outs[active[i]]);
      if (!row->done) {
        padded[n_kept] = token; /* reused as the next column's ids */
        kept[n_kept++] = i;
      }
    }
    if (n_kept == 0) break;
    if (n_kept < n_active) {
      CALL(lm_session_keep_rows(s, kept, n_kept));
      for (int i = 0; i < n_kept; i++) active[i] = active[kept[i]];
      n_active = n_kept;
    }
    CALL(step(s, padded, 1, logits));
  }
  double generation_seconds = lm_now_seconds() - start;
  size_t peak = 0;
  mlx_get_peak_memory(&peak);
  for (int r = 0; r < B; r++) {
    mlxc_lm_generation* out = &outs[r];
    out->ids = malloc(sizeof(int32_t) * (out->n_ids ? out->n_ids : 1));
    if (!out->ids) CALL(util_error("out of memory"));
    memcpy(out->ids, rows[r].history + rows[r].n_prompt, sizeof(int32_t) * out->n_ids);
    out->logprobs = rows[r].logprobs;
    rows[r].logprobs = NULL;
    out->prompt_seconds = prompt_seconds;
    out->generation_seconds = generation_seconds;
    out->peak_memory = peak;
  }
cleanup:
  if (status)
    for (size_t r = 0; r < n; r++) mlxc_lm_generation_free(&outs[r]);
  for (size_t r = 0; rows && r < n; r++) {
    free(rows[r].history);
    free(rows[r].logprobs);
  }
  free(rows);
  free(row_start);
  free(active);
  free(kept);
  free(padded);
  free(logits);
  free(scratch);
  mlxc_lm_session_free(s);
  mlxc_wired_guard_release(guard);
  return status;
}
