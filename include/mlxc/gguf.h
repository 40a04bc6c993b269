/* mlxc extension to GGUF loading (mlx/c/io.h): choose how quantized tensors are returned.
 *
 *   mlxc_gguf_load_params p = mlxc_gguf_load_default_params();
 *   p.quantized = false;          // dequantize Q4_0/Q4_1/Q8_0 too
 *   p.dtype = MLX_FLOAT32;        // dequantized tensors in float32 instead of float16
 *   mlx_io_gguf g = mlx_io_gguf_new();
 *   if (mlxc_gguf_load(&g, "model.gguf", p)) fprintf(stderr, "%s\n", mlxc_last_error());
 *   mlx_io_gguf_free(g);
 *
 * mlx_load_gguf(&g, file, s) is mlxc_gguf_load(&g, file, mlxc_gguf_load_default_params()). */
#ifndef MLXC_GGUF_H
#define MLXC_GGUF_H

#include <stdbool.h>

#include "mlx/c/array.h"
#include "mlx/c/io_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  /* true (default, as MLX): Q4_0, Q4_1 and Q8_0 tensors "<base>.weight" load exactly as MLX
   * affine triples (group size 32): "<base>.weight" (packed uint32, 4 or 8 bits),
   * "<base>.scales" and "<base>.biases" (float16). false: they are dequantized like the other
   * block types. */
  bool quantized;
  /* dtype of dequantized tensors: MLX_FLOAT16 (default, as MLX), MLX_BFLOAT16 or MLX_FLOAT32. */
  mlx_dtype dtype;
  /* true: read the metadata only (the tensor infos are still checked; no tensor is loaded), e.g.
   * for a tokenizer. Default false. */
  bool metadata_only;
} mlxc_gguf_load_params;

mlxc_gguf_load_params mlxc_gguf_load_default_params(void);

/* Loads a GGUF file into *gguf (replacing its contents; a fresh handle is created when *gguf is
 * empty). Returns 0, or non-zero with a message naming the file and, where one is involved, the
 * key or tensor. */
int mlxc_gguf_load(mlx_io_gguf* gguf, const char* file, mlxc_gguf_load_params params);

#ifdef __cplusplus
}
#endif

#endif
