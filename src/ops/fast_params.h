/* Parameters of the fused fast.h primitives (norms, rope, attention, glu, gated_gemv). */
#ifndef MLXC_OPS_FAST_PARAMS_H
#define MLXC_OPS_FAST_PARAMS_H

#include <stdbool.h>

typedef struct {
  float eps;
  bool has_weight, has_bias; /* inputs: x, [weight], [bias] in that order */
} norm_params;

typedef struct {
  int dims;                  /* leading features of the last axis that are rotated */
  bool traditional;          /* rotate pairs (2i, 2i+1) instead of (i, i + dims/2) */
  float base;                /* used when there is no freqs input */
  float scale;               /* positions are multiplied by it */
  int offset;                /* first position, when there is no offset input */
  bool has_offset_array;     /* inputs: x, [offset (scalar or (B,))], [freqs (dims/2,)] */
  bool has_freqs;
} rope_params;

typedef enum { GLU_SILU, GLU_GELU_TANH } glu_activation; /* params of glu: inputs gate, up */

/* gated_gemv: act(x W_gate^T) * (x W_up^T) for one row x (K) and w stacking W_gate over W_up
 * ((2I, K) rows). Inputs x, w, and for quantized weights scales, biases (MLX's affine layout). */
typedef struct {
  glu_activation activation;
  bool quantized;
  int bits, group_size; /* quantized only */
} gated_gemv_params;

/* linear_residual: inputs x (one row, K), w, [scales, biases] (quantized), residual (N), [norm
 * weight (N)]; outputs sum (N), sumsq (ceil(N / 4), float32: runs of 4), and scaled (N) when
 * there is a norm weight (else scaled is sum). */
typedef struct {
  bool quantized, has_norm_weight;
  int bits, group_size; /* quantized only */
} linear_residual_params;

/* rms_norm_linear: inputs scaled (one row, D), sumsq (P, float32), w, [scales, biases]
 * (quantized), [bias (N)]. gated: the output is glu(activation) of the stacked halves. */
typedef struct {
  float eps;
  bool quantized, has_bias, gated;
  int bits, group_size;      /* quantized only */
  glu_activation activation; /* gated only */
} norm_linear_params;

typedef enum { SDPA_MASK_NONE, SDPA_MASK_CAUSAL, SDPA_MASK_ARRAY } sdpa_mask_kind;

typedef struct {
  float scale;
  sdpa_mask_kind mask;       /* inputs: q, k, v, [mask], [sinks] in that order */
  bool has_sinks;
} sdpa_params;

/* rope_kv_sdpa (mlxc_fast_rope_kv_attention): inputs q, k, v, keys, values, position, [freqs]
 * as rope_kv's, then [mask] as sdpa's; outputs the attention, keys, values. */
typedef struct {
  rope_params rope;
  sdpa_params sdpa;
} rope_kv_sdpa_params;

#endif
