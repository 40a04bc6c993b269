/* mlx-c fast: fused ops for models. rms_norm and layer_norm normalise the last axis (weight and
 * bias optional: pass mlx_array_new()); rope rotates the first `dims` features of the last axis
 * by position (axis -2 is the sequence, starting at `offset`); scaled_dot_product_attention
 * takes (B, H, L, D) queries/keys/values with fewer key/value heads allowed (grouped-query),
 * mask_mode "", "causal" or "array", and optional per-head attention sinks.
 *
 *   mlx_optional_float base = {10000.0f, true};
 *   mlx_fast_rope(&q, q, 128, false, base, 1.0f, 0, mlx_array_new(), s);
 *   mlx_fast_scaled_dot_product_attention(&o, q, k, v, 0.088f, "causal", mlx_array_new(), mlx_array_new(), s);
 */
#ifndef MLX_C_FAST_H
#define MLX_C_FAST_H

#include <stdbool.h>

#include "mlx/c/array.h"
#include "mlx/c/optional.h"
#include "mlx/c/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

int mlx_fast_layer_norm(mlx_array* res, const mlx_array x, const mlx_array weight, const mlx_array bias, float eps, const mlx_stream s);
int mlx_fast_rms_norm(mlx_array* res, const mlx_array x, const mlx_array weight, float eps, const mlx_stream s);
int mlx_fast_rope(mlx_array* res, const mlx_array x, int dims, bool traditional, mlx_optional_float base, float scale, int offset, const mlx_array freqs, const mlx_stream s);
int mlx_fast_rope_dynamic(mlx_array* res, const mlx_array x, int dims, bool traditional, mlx_optional_float base, float scale, const mlx_array offset, const mlx_array freqs, const mlx_stream s);
int mlx_fast_scaled_dot_product_attention(mlx_array* res, const mlx_array queries, const mlx_array keys, const mlx_array values, float scale, const char* mask_mode, const mlx_array mask_arr, const mlx_array sinks, const mlx_stream s);

#ifdef __cplusplus
}
#endif

#endif
