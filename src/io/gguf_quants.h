/* GGML tensor types as stored in GGUF files: block sizes, dequantization of the quantized block
 * formats to float, and the exact conversion of Q4_0/Q4_1/Q8_0 to MLX's affine layout. */
#ifndef MLXC_IO_GGUF_QUANTS_H
#define MLXC_IO_GGUF_QUANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlx/c/array.h"

/* ggml_type ids (ggml.h). */
enum {
  GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7,
  GGML_Q8_0 = 8, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12, GGML_Q5_K = 13, GGML_Q6_K = 14,
  GGML_I8 = 24, GGML_I16 = 25, GGML_I32 = 26, GGML_I64 = 27, GGML_F64 = 28, GGML_BF16 = 30,
};

typedef struct {
  uint32_t id;
  const char* name;
  int block;            /* elements per block (1 for plain types) */
  int block_bytes;      /* bytes per block */
  mlx_dtype dtype;      /* plain types: the dtype stored as is */
  /* Quantized types: decodes one block into `block` floats. NULL for plain types. */
  void (*dequantize)(const uint8_t* block, float* out);
  int affine_bits;      /* 4 or 8 when the type converts exactly to MLX's affine layout, else 0 */
} gguf_type;

/* The type with ggml id `id`, or NULL when unsupported. */
const gguf_type* gguf_type_find(uint32_t id);
/* The GGUF tensor type that stores `dtype` as is, or NULL. */
const gguf_type* gguf_type_for_dtype(mlx_dtype dtype);

/* Dequantizes `n_blocks` blocks at `src` into `dst` as float32, float16 or bfloat16 (the
 * float32 result of the block formula rounded once), on the CPU thread pool. */
void gguf_dequantize(const gguf_type* t, const uint8_t* src, size_t n_blocks, void* dst,
                     mlx_dtype dtype);

/* Converts `n_blocks` blocks of a type with affine_bits (groups of 32) into MLX's affine
 * layout: packed uint32 words (32 * bits / 32 per group, element 0 in the low bits), and one
 * float16 scale and bias per group (raw IEEE half bits), so that value = scale * q + bias.
 * Returns false when a bias overflows float16 (a scale above 8188 or 511 in magnitude). */
bool gguf_to_affine(const gguf_type* t, const uint8_t* src, size_t n_blocks, uint32_t* words,
                    uint16_t* scales, uint16_t* biases);

#endif
