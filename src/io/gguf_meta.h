/* Typed reads of GGUF metadata for the loaders built on GGUF files (language models, their
 * tokenizers): numbers whatever their stored type, strings, numeric arrays. */
#ifndef MLXC_IO_GGUF_META_H
#define MLXC_IO_GGUF_META_H

#include <stdbool.h>

#include "mlx/c/array.h"
#include "mlx/c/io_types.h"

/* The number at `key` (any integer, float or bool type) in *out. Returns 0, 2 when the key is
 * absent (no message), 1 on another error (e.g. not a number). */
int gguf_meta_number(mlx_io_gguf g, const char* key, double* out);
/* The number at `key`, or `fallback` when absent or not a number. */
double gguf_meta_number_or(mlx_io_gguf g, const char* key, double fallback);
/* A malloc'd copy of the string at `key`, or NULL when absent (no message). */
char* gguf_meta_string(mlx_io_gguf g, const char* key);
/* The 1-d numeric array at `key`, cast to `dtype` and evaluated; 2 when absent (no message). */
int gguf_meta_vector(mlx_io_gguf g, const char* key, mlx_dtype dtype, mlx_array* out);

#endif
