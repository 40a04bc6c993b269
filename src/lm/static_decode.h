/* Static decode: one token's forward pass as a graph whose shapes and node parameters are the
 * same at every position, so that it can be captured once and replayed (CUDA graphs). What
 * changes per token is read from two device arrays the caller overwrites in place: the token
 * id and its position. Every attention layer attends over all `capacity` slots of its cache,
 * slot i holding position i, under a mask computed in the graph from the position.
 *
 *   const char* why;
 *   if (lm_static_decode_supported(s, &why) && !lm_static_decode_reserve(s, s->offset + 64, &capacity))
 *     for (each token) {
 *       (write the token id and s->offset into token and position)
 *       lm_static_decode_forward(s, token, position, &logits);  (evaluate, sample)
 *       lm_static_decode_advance(s);
 *     }
 */
#ifndef MLXC_LM_STATIC_DECODE_H
#define MLXC_LM_STATIC_DECODE_H

#include <stdbool.h>

#include "lm/model.h"

/* Whether session s can decode with a fixed-shape step graph: batch 1 (no row_start), standard
 * float KV caches (no rotating max_kv_size, no kv_bits quantization), RoPE whose base does not
 * depend on the position (not rope type dynamic), no conv (lfm2) layers, no MoE layers, no
 * attention-logit soft-capping. When not, *why (if non-NULL) gets a static string naming the
 * reason. Sliding-window layers (whose caches rotate over the window) are supported. */
bool lm_static_decode_supported(const mlxc_lm_session* s, const char** why);

/* Makes every layer's cache hold at least `capacity` slots (and at least s->offset + 1): one
 * capacity for all layers, the largest of those and of the caches' current ones, rounded up to
 * the caches' growth step. Caches are laid out one slot per position (a sliding-window cache
 * that has dropped positions gets its held ones back in place) and evaluated, and the session
 * gets the slot indices 0..capacity-1 (int32, evaluated). *reached (if non-NULL) is the
 * capacity. Calling it again with a capacity not above the current one changes nothing, unless
 * normal-path steps have changed the caches since. The session must hold at least one token
 * (prefilled on the normal path), which gives the caches their dtype. */
int lm_static_decode_reserve(mlxc_lm_session* s, int capacity, int* reached);

/* Builds (does not evaluate) *logits (1, 1, vocab) float32 of the token whose id is read from
 * `token` ((1, 1) int32) at the position read from `position` ((1) int32, equal to s->offset).
 * Each layer's keys and values go into cache slot `position` by mlx_slice_update_dynamic (the
 * session's cache handles replaced by the update's results); attention reads all capacity
 * slots. Leaves s->offset and the caches' host bookkeeping as they are: call
 * lm_static_decode_advance once the step has been evaluated. Fails when the position would not
 * fit the reserved capacity or the caches changed since lm_static_decode_reserve. *logits is
 * owned by the caller. */
int lm_static_decode_forward(mlxc_lm_session* s, mlx_array token, mlx_array position, mlx_array* logits);

/* The host bookkeeping of one static step: s->offset += 1, and each cache's length and
 * position table as they would be with slot s->offset written; the normal path then continues
 * on the session unchanged. Call only after a successful lm_static_decode_forward. */
void lm_static_decode_advance(mlxc_lm_session* s);

#endif
