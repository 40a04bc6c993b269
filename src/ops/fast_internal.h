/* Helpers shared by the constructors of mlxc/fast.h's fused ops (fast.c, fast_norm_linear.c). */
#ifndef MLXC_OPS_FAST_INTERNAL_H
#define MLXC_OPS_FAST_INTERNAL_H

#include <stdbool.h>

#include "core/array.h"
#include "mlx/c/array.h"
#include "mlx/c/optional.h"
#include "mlx/c/stream.h"
#include "ops/fast_params.h"

/* "silu" or "gelu_tanh" into *act; anything else, NULL included, is reported as an unknown
 * activation of op `name`. */
int ops_parse_glu_activation(const char* activation, glu_activation* act, const char* name);

/* The activations x (..., F) of a fused op, named what in messages: at least one dimension,
 * float32, float16 or bfloat16; non-zero, reported as op `name`'s error, otherwise. */
int ops_check_activations(const core_array* x, const char* what, const char* name);

/* The weight of a fused linear layer, as mlx_matmul (transposed) or mlx_quantized_matmul
 * (transpose true, "affine") takes it. */
typedef struct {
  bool quantized;       /* scales given */
  int bits, group_size; /* quantized only: the values used, defaults (4, 64) filled in */
} ops_linear_weight;

/* Checks the weight of a linear layer on the activations x (..., K), named x_name in messages:
 * without scales, w (rows, K) of x's dtype with biases empty and group_size, bits unset; with
 * scales, w packed uint32 (rows, K * bits / 32) and scales, biases (rows, K / group) of x's dtype
 * (bits 2, 3, 4, 5, 6 or 8; group 32, 64 or 128). rows names the row count in messages ("N",
 * "2I"). Fills *out; non-zero, reported as op `name`'s error, when the weight does not fit. */
int ops_check_linear_weight(ops_linear_weight* out, const core_array* x, const char* x_name, const core_array* w,
                            const core_array* scales, const core_array* biases, mlx_optional_int group_size,
                            mlx_optional_int bits, const char* rows, const char* name);

/* x W^T by mlx_matmul with the transposed weight, or mlx_quantized_matmul (transpose true,
 * affine) for a quantized one: the composed form of a fused op's linear layer. */
int ops_linear_product(mlx_array* out, mlx_array x, mlx_array w, mlx_array scales, mlx_array biases,
                       const ops_linear_weight* layout, mlx_stream s);

/* mlxc_fast_glu of the two halves of h's last axis (gate, then up): the composed gated form. */
int ops_glu_of_halves(mlx_array* res, mlx_array h, const char* activation, mlx_stream s);

#endif
