/* A batch-1 decode step's decoder layers as one node (primitive decode_layers), for the static
 * decode step on a GPU (lm/static_decode.c), where one persistent kernel runs them
 * (backend/cuda/decode_layers.cu). Each layer (Llama family): h = x + o(attention(rope(q, k),
 * v)) with q, k, v = qkv(rms_norm(x)) (+ bias), the new k, v written into the caches' slot
 * `position` and attention over slots 0..position; then x' = h + down(act(gate) * up) of
 * gate_up(rms_norm(h)). Linears are plain (weights of x's dtype) or affine-quantized (4 or 8
 * bits); qkv and gate_up stack their parts' rows (lm/fuse.c). The CPU kernel
 * (backend/cpu/decode_layers.c) computes the same with the same roundings. */
#ifndef MLXC_OPS_DECODE_LAYERS_H
#define MLXC_OPS_DECODE_LAYERS_H

#include <stdbool.h>

#include "mlx/c/array.h"
#include "mlx/c/stream.h"

typedef struct decode_layers_params {
  int n_layers, D, H, KVH, hd, I, capacity, rope_dims;
  int bits, group; /* bits 0: plain weights */
  bool gelu;       /* act: tanh-GELU, else SiLU */
  bool has_freqs;  /* RoPE frequencies given as an array */
  bool qkv_bias;
  float eps, attn_scale, rope_base, rope_scale;
} decode_layers_params;

enum { DL_QKV, DL_O, DL_GATE_UP, DL_DOWN };

typedef struct {
  mlx_array input_norm, post_norm;
  mlx_array weight[4], scales[4], biases[4]; /* DL_QKV.. ; scales and biases empty when plain */
  mlx_array qkv_bias;                        /* empty: none */
  mlx_array keys, values;                    /* (1, KVH, capacity, hd) */
} decode_layer_arrays;

/* Node inputs: x, position, [freqs], then per layer input_norm, post_norm, each linear's weight
 * [scales, biases] in DL_ order, [qkv_bias], keys, values. */
int decode_layers_inputs_per_layer(const decode_layers_params* p);
int decode_layers_first_layer_input(const decode_layers_params* p);

/* *out (1, 1, D) and each layer's updated caches (keys[i], values[i] replaced: the node writes
 * them in place when nothing else holds them). x (1, 1, D) of the dtype of everything else;
 * position (1) int32. Non-zero with an error on mismatched shapes or dtypes. */
int ops_decode_layers(mlx_array* out, mlx_array* keys, mlx_array* values, mlx_array x, mlx_array position,
                      mlx_array freqs, const decode_layer_arrays* layers, const decode_layers_params* p, mlx_stream s);

#endif
