/* Sentence embeddings: sentence-transformers model folders run in C.
 *
 * Encoders (config.json model_type): bert, roberta, xlm-roberta, camembert, distilbert,
 * modernbert, gemma3_text (EmbeddingGemma, bidirectional), qwen3 (Qwen3-Embedding, causal) and
 * the other decoders of the LM layer (llama, mistral, qwen2, gemma2) used as causal encoders.
 * Folder layout: modules.json with Transformer, Pooling (cls, mean, max, lasttoken,
 * mean_sqrt_len_tokens, weightedmean; include_prompt), any number of Dense modules (weights in
 * model.safetensors; pytorch_model.bin is not read) and Normalize; sentence_bert_config.json
 * (max_seq_length, do_lower_case) or the tokenizer's model_max_length; prompts and
 * default_prompt_name from config_sentence_transformers.json. A folder without modules.json is
 * a plain transformers encoder: mean pooling, no normalization. Weights are computed in
 * float32 (as sentence-transformers loads them); MLX-quantized decoder weights stay quantized.
 *
 *   mlxc_embed_model* model;
 *   mlxc_embed_load(&model, "all-MiniLM-L6-v2", mlx_default_cpu_stream_new());  // or a GPU stream
 *   const char* texts[2] = {"A cat sat.", "Un chat."};
 *   mlxc_embed_params p = mlxc_embed_default_params();
 *   p.prompt_name = "query";   // optional: a prompt of config_sentence_transformers.json
 *   float* vectors;            // (2, dim), row-major; caller frees
 *   size_t dim;
 *   mlxc_embed_encode(model, texts, 2, p, &vectors, &dim);
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

/* Loads a sentence-transformers folder; computations run on `stream` (CPU or GPU) in float32
 * (half-precision checkpoints are widened, as sentence-transformers computes by default). */
int mlxc_embed_load(mlxc_embed_model** out, const char* dir, mlx_stream stream);
/* The same with the weights and the computation in `dtype`: MLX_FLOAT32 (as mlxc_embed_load),
 * MLX_FLOAT16 or MLX_BFLOAT16 (half the memory, tensor cores on a GPU; each embedding within a
 * cosine of ~0.999 of float32's). The vectors returned are float32 either way. */
int mlxc_embed_load_dtype(mlxc_embed_model** out, const char* dir, mlx_stream stream, mlx_dtype dtype);
void mlxc_embed_free(mlxc_embed_model* model);
/* The embedding size after pooling and Dense modules (before any Matryoshka truncation). */
size_t mlxc_embed_dim(const mlxc_embed_model* model);
/* The most tokens per text (max_seq_length); longer texts are truncated. */
size_t mlxc_embed_max_length(const mlxc_embed_model* model);

/* The model's named prompts: count, i-th name, and the text of a name (NULL when unknown);
 * strings owned by the model. The default prompt name, or NULL. */
size_t mlxc_embed_prompt_count(const mlxc_embed_model* model);
const char* mlxc_embed_prompt_name(const mlxc_embed_model* model, size_t i);
const char* mlxc_embed_prompt_text(const mlxc_embed_model* model, const char* name);
const char* mlxc_embed_default_prompt_name(const mlxc_embed_model* model);

typedef struct {
  size_t batch_size;       /* sentences per forward pass (default 32); sorted by length first */
  int normalize;           /* -1: as the model folder says (a Normalize module), 0: no, 1: yes */
  size_t dim;              /* Matryoshka: keep the first dim values (then normalize); 0 = all */
  const char* prompt_name; /* a prompt by name (error when the model has none of that name) */
  const char* prompt;      /* or a prompt text, put before every text; overrides prompt_name */
  bool no_default_prompt;  /* do not apply the model's default_prompt_name */
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
