/* mlx-c loading and saving of arrays: NumPy .npy (one array), safetensors (named arrays with a
 * string metadata map), to files or through user streams (io_types.h), and GGUF files (named
 * arrays with typed metadata, in an mlx_io_gguf object).
 *
 *   mlx_save("w.npy", a);                       // ".npy" is appended when missing
 *   mlx_array b = mlx_array_new();
 *   mlx_load(&b, "w.npy", s);
 *
 *   mlx_map_string_to_array tensors = mlx_map_string_to_array_new();
 *   mlx_map_string_to_string meta = mlx_map_string_to_string_new();
 *   mlx_load_safetensors(&tensors, &meta, "model.safetensors", s);
 *
 * Loading from a file memory-maps it: the arrays are evaluated and read their data straight from
 * the mapping, which lives until the last of them is freed (the file may be replaced or deleted
 * meanwhile, but not truncated in place). Loading through a reader copies the data.
 * Saving to a file writes "<file>.tmp.XXXXXX" beside it and renames it over the file, so a failed
 * save never leaves a partial file. Every call returns 0 on success, non-zero with a message. */
#ifndef MLX_C_IO_H
#define MLX_C_IO_H

#include "mlx/c/array.h"
#include "mlx/c/io_types.h"
#include "mlx/c/map.h"
#include "mlx/c/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* .npy: reads versions 1.0, 2.0 and 3.0, C or Fortran order, little- or big-endian; writes 1.0
 * (ample for 32 dimensions), C order, little-endian. bfloat16 is written as '<V2', as MLX
 * does (NumPy reads it as 2-byte void). `file` is opened as given. */
int mlx_load(mlx_array* res, const char* file, const mlx_stream s);
int mlx_load_reader(mlx_array* res, mlx_io_reader in_stream, const mlx_stream s);
int mlx_save(const char* file, const mlx_array a);
int mlx_save_writer(mlx_io_writer out_stream, const mlx_array a);

/* safetensors: replaces the contents of *res_0 (tensors, in the file's header order) and *res_1
 * (the "__metadata__" strings). Saving writes tensors in the map's insertion order and appends
 * ".safetensors" to `file` when missing. */
int mlx_load_safetensors(mlx_map_string_to_array* res_0, mlx_map_string_to_string* res_1,
                         const char* file, const mlx_stream s);
int mlx_load_safetensors_reader(mlx_map_string_to_array* res_0, mlx_map_string_to_string* res_1,
                                mlx_io_reader in_stream, const mlx_stream s);
int mlx_save_safetensors(const char* file, const mlx_map_string_to_array param,
                         const mlx_map_string_to_string metadata);
int mlx_save_safetensors_writer(mlx_io_writer in_stream, const mlx_map_string_to_array param,
                                const mlx_map_string_to_string metadata);

/* GGUF (v2 and v3, little-endian): replaces the contents of *gguf (creating the object when
 * empty) with the file's tensors, in file order, and metadata. F32/F16/BF16/F64/I8/I16/I32/I64
 * tensors view the mapped file; Q4_0, Q4_1 and Q8_0 "<base>.weight" become MLX affine triples
 * (bits 4/4/8, group 32): "<base>.weight" (uint32), "<base>.scales" and "<base>.biases"
 * (float16), as MLX does; Q5_0, Q5_1 and the K-quants Q2_K..Q6_K are dequantized to float16
 * (mlxc/gguf.h offers other choices). Metadata: numbers as 0-d arrays, numeric arrays as 1-d
 * arrays, strings, and string arrays as vectors of strings. */
int mlx_load_gguf(mlx_io_gguf* gguf, const char* file, const mlx_stream s);
/* Writes version 3 with the metadata and tensors in insertion order; tensors of dtypes float32,
 * float16, bfloat16, float64, int8, int16, int32 and int64; metadata arrays 0-d (a value) or
 * 1-d. Appends ".gguf" to `file` when missing. */
int mlx_save_gguf(const char* file, mlx_io_gguf gguf);

#ifdef __cplusplus
}
#endif

#endif
