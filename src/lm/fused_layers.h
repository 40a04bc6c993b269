/* The static decode step's decoder layers as one node on a GPU (fused_layers.c). */
#ifndef MLXC_LM_FUSED_LAYERS_H
#define MLXC_LM_FUSED_LAYERS_H

#include <stdbool.h>

#include "lm/model.h"

/* With MLXC_FUSED_LAYERS=1, when the session's model fits the decoder-layer node (and on a GPU
 * stream, its kernel): sets *used, builds *logits (1, 1, vocab) float32 of the token
 * read from `token` at `position` as lm_static_decode_forward would (the session's caches
 * replaced by the node's results). Otherwise leaves *used false and does nothing. */
int lm_fused_layers_forward(mlxc_lm_session* s, mlx_array token, mlx_array position, mlx_array* logits, bool* used);

/* Whether lm_fused_layers_forward would build the node for session s (reserved for static
 * decode) now. */
bool lm_fused_layers_taken(const mlxc_lm_session* s);

/* How many steps have been built with the node (tests). */
unsigned long lm_fused_layers_built(void);

#endif
