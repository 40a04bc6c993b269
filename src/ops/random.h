/* Internal entry points shared by the random families (random.c, random_distributions.c). */
#ifndef MLXC_OPS_RANDOM_H
#define MLXC_OPS_RANDOM_H

#include "mlx/c/array.h"
#include "mlx/c/stream.h"

/* *out = the key to draw with: `key` itself (validated) or, for an empty handle, the next key
 * of the global sequence. */
int ops_random_resolve_key(mlx_array* out, const mlx_array key, const mlx_stream s, const char* op);

#endif
