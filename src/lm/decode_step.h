/* The decode loop's step: feed one token, get the next token's choice. Greedy decoding without
 * penalties picks the argmax where the logits live (a GPU returns three numbers, not the
 * vocabulary); on a GPU the step is recorded once and replayed (include/mlxc/capture.h) when the
 * session allows a fixed-shape step (static_decode.h). */
#ifndef MLXC_LM_DECODE_STEP_H
#define MLXC_LM_DECODE_STEP_H

#include <stdbool.h>

#include "lm/model.h"
#include "mlxc/capture.h"

typedef struct {
  bool greedy;          /* argmax and log-normaliser on the device */
  bool replay;          /* record the step once and replay it */
  int capacity;         /* cache slots the recorded step attends over */
  mlxc_capture* step;
  mlx_array token, position; /* the recorded step's inputs */
  mlx_array logits, best, top, lse; /* its outputs */
} lm_step;

/* Sets up a step for session s; greedy as above. Replay is used on a GPU stream when the
 * session supports it, unless MLXC_NO_GRAPHS is set in the environment. */
void lm_step_init(lm_step* st, const mlxc_lm_session* s, bool greedy);
/* Copies the last row of evaluated (n, vocab) float32 logits into `row` (read on the host). */
int lm_step_last_row(mlx_array logits, float* row);
/* The greedy choice of the last row of evaluated (n, vocab) logits, computed where they live. */
int lm_step_pick(mlx_array logits, mlx_stream stream, int32_t* token, float* logprob);
/* Feeds `token` at the session's next position. Greedy: *picked and *logprob receive the choice;
 * otherwise `row` (vocab floats) receives the logits. */
int lm_step_run(lm_step* st, mlxc_lm_session* s, int32_t token, int32_t* picked, float* logprob, float* row);
void lm_step_free(lm_step* st);
/* Steps run by replaying a recording, in this process so far (for tests). */
unsigned long lm_step_replay_count(void);

#endif
