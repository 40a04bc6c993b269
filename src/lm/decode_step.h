/* The decode loop's step: feed one token, get the next token's choice. Greedy decoding without
 * penalties picks the argmax where the logits live, and so does sampling on a GPU when the
 * sampler's settings allow it (sample_device.h): a GPU returns three numbers, not the vocabulary.
 * On a GPU the step is recorded once and replayed (include/mlxc/capture.h) when the session
 * allows a fixed-shape step (static_decode.h). */
#ifndef MLXC_LM_DECODE_STEP_H
#define MLXC_LM_DECODE_STEP_H

#include <stdbool.h>

#include "lm/model.h"
#include "lm/sample.h"
#include "mlxc/capture.h"

typedef struct {
  bool greedy;                            /* argmax and log-normaliser on the device */
  const mlxc_lm_generate_params* sampler; /* non-NULL: sampled on the device (lm_sample_device) */
  bool replay;                            /* record the step once and replay it */
  int capacity;                           /* cache slots the recorded step attends over */
  mlxc_capture* step;
  mlx_array token, position, u;     /* the recorded step's inputs (u: the sampler's draw) */
  mlx_array logits, best, top, lse; /* its outputs: the row, or the choice, its logit, the lse */
  /* A recorded step that picks feeds itself (mlxc_capture_feed): its choice into token, its
   * position + 1 (next_position) into position, and the choice, its logit and the lse packed into
   * `choice` (3 x 4 bytes), which every run writes into host memory itself (mlxc_capture_read). */
  mlx_array next_position, choice;
  mlx_array bias;                   /* the sampler's logit bias row (lm_sample_device_bias) */
  /* Steps queued ahead (replayed steps that pick): the next step is queued before this one's
   * choice is read, its token the choice fed on the device (lm_step_run). */
  bool pipelined;             /* allowed (MLXC_STEP_AHEAD unset or not "0") */
  bool ahead;                 /* a step is queued for position ahead_position */
  uint64_t ahead_run;         /* its run of the recording (mlxc_capture_runs) */
  int ahead_position;
  int32_t ahead_token;        /* the token it was fed: the choice lm_step_run returned last */
  double ahead_draw;          /* the sampler's draw taken for it */
} lm_step;

/* Sets up a step for session s and generation parameters p (kept by pointer). greedy: p asks for
 * plain greedy decoding. Otherwise the step samples on the device when s runs on a GPU and p's
 * settings allow it, unless MLXC_HOST_SAMPLER is set (comparisons). Replay is used on a GPU
 * stream when the session supports it, unless MLXC_NO_GRAPHS is set. */
int lm_step_init(lm_step* st, const mlxc_lm_session* s, const mlxc_lm_generate_params* p, bool greedy);
/* Whether the step makes the choice itself (greedy or device sampling); otherwise the caller
 * samples from the row lm_step_run returns. */
bool lm_step_picks(const lm_step* st);
/* Copies the last row of evaluated (n, vocab) float32 logits into `row` (read on the host). */
int lm_step_last_row(mlx_array logits, float* row);
/* The step's choice (lm_step_picks) for the last row of evaluated (n, vocab) logits, computed
 * where they live; u: the sampler's uniform draw (ignored when greedy). */
int lm_step_pick(lm_step* st, mlx_array logits, mlx_stream stream, double u, int32_t* token, float* logprob);
/* Feeds `token` at the session's next position. When the step picks, *picked and *logprob
 * receive the choice (a device sampler takes one draw from rng for it, in step order); otherwise
 * `row` (vocab floats) receives the logits. more: the caller may feed the choice back in the
 * next call. Then a replayed step queues that next step, fed with its choice on the device,
 * before it waits for the choice: the GPU runs on while the host reads it (no idle gap between
 * steps). A next call with another token, or none, wastes that step; its writes (the cache slot
 * of the position after this one) are redone by the next step that position gets. */
int lm_step_run(lm_step* st, mlxc_lm_session* s, int32_t token, lm_rng* rng, bool more, int32_t* picked,
                float* logprob, float* row);
void lm_step_free(lm_step* st);
/* Steps run by replaying a recording, in this process so far (for tests). */
unsigned long lm_step_replay_count(void);

#endif
