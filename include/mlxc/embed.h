/* Sentence embeddings: sentence-transformers model folders (modules.json: Transformer, Pooling,
 * Normalize) run in C.
 *
 *   mlxc_embed_model* model;
 *   mlxc_embed_load(&model, "all-MiniLM-L6-v2", mlx_default_cpu_stream_new());
 *   const char* texts[2] = {"A cat sat.", "Un chat."};
 *   float* vectors;   // (2, dim), row-major; caller frees
 *   size_t dim;
 *   mlxc_embed_encode(model, texts, 2, mlxc_embed_default_params(), &vectors, &dim);
 *   free(vectors);
 *   mlxc_embed_free(model);
 */
#ifndef MLXC_EMBED_H
#define MLXC_EMBED_H

#include <stdbool.h>
#include <stddef.h>

#include "mlx/c/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mlxc_embed_model mlxc_embed_model;

/* Loads a sentence-transformers folder (or a plain BERT folder: mean pooling, no normalization).
 * Supported encoders: bert. */
int mlxc_embed_load(mlxc_embed_model** out, const char* dir, mlx_stream stream);
void mlxc_embed_free(mlxc_embed_model* model);
/* The embedding size (before any Matryoshka truncation). */
size_t mlxc_embed_dim(const mlxc_embed_model* model);

typedef struct {
  size_t batch_size;   /* sentences per forward pass (default 32); sorted by length first */
  int normalize;       /* -1: as the model folder says (a Normalize module), 0: no, 1: yes */
  size_t dim;          /* Matryoshka: keep the first dim values (then normalize); 0 = all */
} mlxc_embed_params;

mlxc_embed_params mlxc_embed_default_params(void);

/* Embeds n texts (UTF-8, NUL-terminated) into *vectors, (n, *dim) float32 row-major, malloc'd. */
int mlxc_embed_encode(const mlxc_embed_model* model, const char* const* texts, size_t n,
                      mlxc_embed_params params, float** vectors, size_t* dim);

/* Cosine similarity of two vectors of length dim. */
float mlxc_embed_cosine(const float* a, const float* b, size_t dim);

#ifdef __cplusplus
}
#endif

#endif
