/* The decode loop's step (decode_step.h). Replaying a recorded step removes the host's work per
 * token (building the graph, ~450 kernel launches for a 24-layer model) that otherwise bounds a
 * small model's decode on a GPU; the recorded step reads the token and its position from two
 * device arrays and attends over a fixed number of cache slots with a mask. It is recorded again
 * when the cache needs more slots (every STEP_SLOTS tokens). */
#include "lm/decode_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm/call.h"
#include "lm/sample_device.h"
#include "lm/static_decode.h"
#include "mlxc/error.h"
#include "mlxc/fast.h"
#include "util/error.h"

/* Slots added per recording: the recorded attention reads every slot, so fewer is less waste;
 * more is fewer recordings. */
#define STEP_SLOTS 256

static _Atomic unsigned long replays;

unsigned long lm_step_replay_count(void) { return replays; }

int lm_step_init(lm_step* st, const mlxc_lm_session* s, const mlxc_lm_generate_params* p, bool greedy) {
  memset(st, 0, sizeof *st);
  st->greedy = greedy;
  st->token = st->position = st->u = st->logits = st->best = st->top = st->lse = st->bias = mlx_array_new();
  st->next_position = st->choice = mlx_array_new();
  mlx_device device = mlx_device_new();
  mlx_device_type type = MLX_CPU;
  if (!mlx_stream_get_device(&device, s->model->stream)) mlx_device_get_type(&type, device);
  mlx_device_free(device);
  const char* off = getenv("MLXC_NO_GRAPHS");
  st->replay = type == MLX_GPU && !(off && *off && strcmp(off, "0")) && lm_static_decode_supported(s, NULL);
  const char* ahead = getenv("MLXC_STEP_AHEAD");
  st->pipelined = !(ahead && !strcmp(ahead, "0"));
  /* On the CPU the host sampler is faster than sorting with array ops. */
  const char* host = getenv("MLXC_HOST_SAMPLER");
  if (!greedy && type == MLX_GPU && !(host && *host && strcmp(host, "0")) && lm_sample_device_supported(p)) {
    st->sampler = p;
    return lm_sample_device_bias(p, s->model->config.vocab_size, &st->bias);
  }
  return 0;
}

bool lm_step_picks(const lm_step* st) { return st->greedy || st->sampler; }

/* Argmax, its logit and the log-sum-exp of the last row of (n, vocab) logits, not evaluated: one
 * fused reduction (on a GPU one read of the row for the three). */
static int greedy_outputs(mlx_array logits, mlx_stream s, mlx_array* best, mlx_array* top, mlx_array* lse) {
  int rows = mlx_array_dim(logits, 0), vocab = mlx_array_dim(logits, 1);
  int start[2] = {rows - 1, 0}, stop[2] = {rows, vocab};
  mlx_array last = mlx_array_new();
  int status = mlx_slice(&last, logits, start, 2, stop, 2, NULL, 0, s);
  if (!status) status = mlxc_fast_argmax_logsumexp(best, top, lse, last, s);
  mlx_array_free(last);
  return status;
}

/* The step's choice of the last row, not evaluated: the token, its logit and the row's lse. */
static int pick_outputs(const lm_step* st, mlx_array logits, mlx_array u, mlx_stream s, mlx_array* best,
                        mlx_array* top, mlx_array* lse) {
  return st->greedy ? greedy_outputs(logits, s, best, top, lse)
                    : lm_sample_device(logits, st->sampler, u, st->bias, s, best, top, lse);
}

/* The evaluated choice on the host: the token and its log-probability (its logit minus the lse). */
static int read_pick(mlx_array best, mlx_array top, mlx_array lse, int32_t* token, float* logprob) {
  const uint32_t* b = mlx_array_data_uint32(best);
  const float* t = b ? mlx_array_data_float32(top) : NULL;
  const float* l = t ? mlx_array_data_float32(lse) : NULL;
  if (!l) return 1;
  *token = (int32_t)b[0];
  *logprob = t[0] - l[0];
  return 0;
}

int lm_step_last_row(mlx_array logits, float* row) {
  const float* data = mlx_array_data_float32(logits);
  if (!data) return 1;
  int vocab = mlx_array_dim(logits, 1);
  memcpy(row, data + (size_t)(mlx_array_dim(logits, 0) - 1) * vocab, sizeof(float) * (size_t)vocab);
  return 0;
}

int lm_step_pick(lm_step* st, mlx_array logits, mlx_stream s, double u, int32_t* token, float* logprob) {
  float draw = (float)u;
  int shape[1] = {1};
  mlx_array best = mlx_array_new(), top = mlx_array_new(), lse = mlx_array_new();
  mlx_array u_array = mlx_array_new_data(&draw, shape, 1, MLX_FLOAT32);
  mlx_vector_array all = mlx_vector_array_new();
  int status = 0;
  CALL(pick_outputs(st, logits, u_array, s, &best, &top, &lse));
  CALL(mlx_vector_array_append_value(all, best));
  CALL(mlx_vector_array_append_value(all, top));
  CALL(mlx_vector_array_append_value(all, lse));
  CALL(mlx_eval(all));
  CALL(read_pick(best, top, lse, token, logprob));
cleanup:
  mlx_array_free(best);
  mlx_array_free(top);
  mlx_array_free(lse);
  mlx_array_free(u_array);
  mlx_vector_array_free(all);
  return status;
}

static void drop_recording(lm_step* st) {
  mlxc_capture_free(st->step);
  st->step = NULL;
  mlx_array* arrays[9] = {&st->token, &st->position, &st->u,   &st->logits,        &st->best,
                          &st->top,   &st->lse,      &st->choice, &st->next_position};
  for (int i = 0; i < 9; i++) {
    mlx_array_free(*arrays[i]);
    *arrays[i] = mlx_array_new();
  }
}

/* While recording a step that picks: the feeds for the next replay (lm_step's next_position and
 * choice), and the choice's read into host memory. next_position is evaluated already; choice
 * is a (3) uint32 array on the GPU. */
static int add_feeds(lm_step* st) {
  return mlxc_capture_feed(st->token, 0, st->best) || mlxc_capture_feed(st->position, 0, st->next_position) ||
         mlxc_capture_feed(st->choice, 0, st->best) || mlxc_capture_feed(st->choice, 4, st->top) ||
         mlxc_capture_feed(st->choice, 8, st->lse) || mlxc_capture_read(st->choice);
}

/* Records the step for the session's next position (and runs it once). Non-zero when the
 * recording failed; the session is then as before the step, except that the slot of this
 * position may hold garbage until a normal step writes it. */
static int record(lm_step* st, mlxc_lm_session* s, int32_t token, double u) {
  const mlxc_lm_model* m = s->model;
  int status = 0, shape_token[2] = {1, 1}, shape_position[1] = {1}, flat[2] = {1, m->config.vocab_size};
  int32_t position = s->offset;
  float draw = (float)u;
  const bool picks = lm_step_picks(st);
  mlx_vector_array outputs = mlx_vector_array_new();
  mlx_array one = mlx_array_new_int(1);
  drop_recording(st);
  if (s->offset + 1 > st->capacity) {
    int want = (s->offset + STEP_SLOTS) / STEP_SLOTS * STEP_SLOTS;
    CALL(lm_static_decode_reserve(s, want, &st->capacity));
  }
  st->token = mlx_array_new_data(&token, shape_token, 2, MLX_INT32);
  st->position = mlx_array_new_data(&position, shape_position, 1, MLX_INT32);
  st->u = mlx_array_new_data(&draw, shape_position, 1, MLX_FLOAT32);
  if (!st->token.ctx || !st->position.ctx || !st->u.ctx) CALL(util_error("out of memory"));
  if (picks) {
    int three[1] = {3};
    CALL(mlx_zeros(&st->choice, three, 1, MLX_UINT32, m->stream));
    CALL(mlx_array_eval(st->choice));
  }
  CALL(mlxc_capture_begin(m->stream));
  s->model_dtype_logits = st->greedy; /* the pick reads them as they come (no float32 copy) */
  status = lm_static_decode_forward(s, st->token, st->position, &st->logits);
  s->model_dtype_logits = false;
  if (!status) status = mlx_reshape(&st->logits, st->logits, flat, 2, m->stream);
  if (!status && picks) status = pick_outputs(st, st->logits, st->u, m->stream, &st->best, &st->top, &st->lse);
  if (!status && picks) status = mlx_add(&st->next_position, st->position, one, m->stream);
  if (!status) status = mlx_vector_array_append_value(outputs, picks ? st->best : st->logits);
  if (!status && picks) status = mlx_vector_array_append_value(outputs, st->top);
  if (!status && picks) status = mlx_vector_array_append_value(outputs, st->lse);
  if (!status && picks) status = mlx_vector_array_append_value(outputs, st->next_position);
  if (!status) status = mlx_eval(outputs);
  if (!status && picks) status = add_feeds(st);
  /* Always end the recording, also after a failure inside it. */
  int ended = mlxc_capture_end(m->stream, &st->step);
  if (!status) status = ended;
cleanup:
  mlx_vector_array_free(outputs);
  mlx_array_free(one);
  if (status) drop_recording(st);
  return status;
}

/* The choice of run `run` of the recorded step, as it wrote it into host memory: the token
 * (uint32), its logit, the lse. */
static int read_choice(lm_step* st, uint64_t run, int32_t* token, float* logprob) {
  const void* data = NULL;
  size_t n = 0;
  if (mlxc_capture_read_wait(st->step, run, &data, &n)) return 1;
  if (n != 3 * sizeof(float)) return util_error("decode step: the choice was not read back");
  uint32_t best;
  float top, lse;
  memcpy(&best, data, sizeof best);
  memcpy(&top, (const char*)data + 4, sizeof top);
  memcpy(&lse, (const char*)data + 8, sizeof lse);
  *token = (int32_t)best;
  *logprob = top - lse;
  return 0;
}

/* The step queued ahead will not be used: waits for it (its choice is dropped). */
static int drop_ahead(lm_step* st) {
  const void* data;
  size_t n;
  return mlxc_capture_read_wait(st->step, st->ahead_run, &data, &n);
}

/* Queues the next step (position s->offset) after this one, fed with this one's choice on the
 * device. */
static int queue_ahead(lm_step* st, mlxc_lm_session* s, lm_rng* rng) {
  int32_t position = s->offset;
  const double u = st->sampler ? lm_rng_uniform(rng) : 0;
  float draw = (float)u;
  /* The step before wrote the token and the position itself (add_feeds). */
  int status = st->sampler ? mlxc_array_write(st->u, &draw, sizeof draw) : 0; /* greedy steps never read it */
  if (!status) status = mlxc_capture_replay(st->step);
  if (status) return status;
  replays++;
  st->ahead = true;
  st->ahead_run = mlxc_capture_runs(st->step);
  st->ahead_position = position;
  st->ahead_draw = u;
  return 0;
}

int lm_step_run(lm_step* st, mlxc_lm_session* s, int32_t token, lm_rng* rng, bool more, int32_t* picked,
                float* logprob, float* row) {
  const mlxc_lm_model* m = s->model;
  const bool picks = lm_step_picks(st);
  int status = 0;
  /* This step's draw: taken already when it was queued ahead (whether or not that step is used),
   * so that the draws follow the steps' order. */
  const double u = st->ahead ? st->ahead_draw : st->sampler ? lm_rng_uniform(rng) : 0;
  if (st->replay) {
    int32_t position = s->offset;
    bool queued = false;
    if (st->ahead) {
      st->ahead = false;
      queued = st->ahead_position == position && st->ahead_token == token;
      if (!queued && drop_ahead(st)) return 1;
    }
    uint64_t run = queued ? st->ahead_run : 0; /* this step's run of the recording */
    if (queued) {
      /* Queued by the previous call: running already. */
    } else if (st->step && s->offset < st->capacity) {
      float draw = (float)u;
      status = mlxc_array_write(st->token, &token, sizeof token);
      if (!status) status = mlxc_array_write(st->position, &position, sizeof position);
      if (!status && st->sampler) status = mlxc_array_write(st->u, &draw, sizeof draw);
      if (!status) status = mlxc_capture_replay(st->step);
      if (status) return status;
      replays++;
      run = mlxc_capture_runs(st->step);
    } else if (record(st, s, token, u)) {
      /* Not replayable after all (some op fell back to the CPU): decode normally from now on. */
      fprintf(stderr, "mlxc: decoding without recorded steps: %s\n", mlxc_last_error());
      st->replay = false;
      drop_recording(st);
    } else {
      run = mlxc_capture_runs(st->step);
    }
    if (st->replay) {
      lm_static_decode_advance(s);
      if (!picks) return lm_step_last_row(st->logits, row);
      if (st->pipelined && more && s->offset < st->capacity && s->offset < m->config.max_position_embeddings &&
          queue_ahead(st, s, rng))
        return 1;
      if (read_choice(st, run, picked, logprob)) return 1;
      st->ahead_token = *picked;
      return 0;
    }
  }
  mlx_array logits = mlx_array_new();
  status = mlxc_lm_forward(s, &token, 1, &logits);
  if (!status) status = picks ? lm_step_pick(st, logits, m->stream, u, picked, logprob) : lm_step_last_row(logits, row);
  mlx_array_free(logits);
  return status;
}

void lm_step_free(lm_step* st) {
  /* A step queued ahead is waited for by mlxc_capture_free (its run writes host memory). */
  st->ahead = false;
  drop_recording(st);
  mlx_array_free(st->bias);
  st->bias = mlx_array_new();
}
