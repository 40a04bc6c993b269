/* Parameters of the quantization primitives (quantize, dequantize, quantized_matmul), shared by
 * the constructors (ops/quantized.c) and the CPU kernels (backend/cpu/quantized.c). */
#ifndef MLXC_OPS_QUANTIZED_PARAMS_H
#define MLXC_OPS_QUANTIZED_PARAMS_H

#include <stdbool.h>

typedef enum {
  QUANT_AFFINE, /* w = scale * q + bias, q of `bits` bits, per-group scale/bias in w's dtype */
  QUANT_MXFP4,  /* FP4 E2M1 values, E8M0 (power of two) scale per 32 */
  QUANT_MXFP8,  /* FP8 E4M3 values, E8M0 scale per 32 */
  QUANT_NVFP4,  /* FP4 E2M1 values, FP8 E4M3 scale per 16, optional float32 global scale */
} quant_mode;

typedef struct {
  quant_mode mode;
  int group_size;
  int bits;
  bool transpose; /* quantized_matmul: x @ W^T (W stored (N, K)) rather than x @ W */
} quant_params;

#endif
