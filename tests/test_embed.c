/* Embeddings against sentence-transformers: the tiny BERT checkpoints of tests/fixtures/embed
 * (scripts/gen_embed_fixtures.py, sentence-transformers 6.0.1) must give every sentence's
 * embedding with cosine similarity >= 0.9999 to the reference, short and long sentences (beyond
 * max_seq_length: truncation) in mixed batches, for mean+normalize, cls and max pooling. */
#include <jansson.h>

#include "mlx/c/mlx.h"
#include "mlxc/embed.h"
#include "mlxc/error.h"
#include "test_util.h"

static void check_model(const char* name) {
  char dir[1024], path[1200];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/embed/%s", test_source_dir(), name);
  snprintf(path, sizeof path, "%s/reference.json", dir);
  json_t* ref = json_load_file(path, 0, NULL);
  CHECK(ref != NULL);
  json_t* sentences = json_object_get(ref, "sentences");
  size_t n = json_array_size(sentences);
  const char* texts[64];
  for (size_t i = 0; i < n && i < 64; i++) texts[i] = json_string_value(json_array_get(sentences, i));
  mlxc_embed_model* model = NULL;
  if (mlxc_embed_load(&model, dir, mlx_default_cpu_stream_new())) {
    CHECK_MSG(0, "%s: %s", name, mlxc_last_error());
    json_decref(ref);
    return;
  }
  mlx_map_string_to_array tensors = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_array want = mlx_array_new();
  snprintf(path, sizeof path, "%s/reference.safetensors", dir);
  CHECK(mlx_load_safetensors(&tensors, &meta, path, mlx_default_cpu_stream_new()) == 0);
  CHECK(mlx_map_string_to_array_get(&want, tensors, "embeddings") == 0);
  const float* w = mlx_array_data_float32(want);
  size_t batches[2] = {5, 3};
  for (int b = 0; b < 2; b++) {
    mlxc_embed_params p = mlxc_embed_default_params();
    p.batch_size = batches[b];
    float* v = NULL;
    size_t d = 0;
    CHECK_MSG(mlxc_embed_encode(model, texts, n, p, &v, &d) == 0, "%s", mlxc_last_error());
    CHECK_EQ_INT(d, mlx_array_dim(want, 1));
    for (size_t i = 0; v && w && i < n; i++) {
      float c = mlxc_embed_cosine(v + i * d, w + i * d, d);
      CHECK_MSG(c >= 0.9999f, "%s sentence %zu (\"%s\"): cosine %f", name, i, texts[i], c);
    }
    free(v);
  }
  mlx_array_free(want);
  mlx_map_string_to_array_free(tensors);
  mlx_map_string_to_string_free(meta);
  mlxc_embed_free(model);
  json_decref(ref);
}

TEST(test_embeddings_match_sentence_transformers) {
  check_model("bert-mean-normalized");
  check_model("bert-cls");
  check_model("bert-max");
}

TEST(test_matryoshka_and_errors) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fixtures/embed/bert-mean-normalized", test_source_dir());
  mlxc_embed_model* model = NULL;
  CHECK(mlxc_embed_load(&model, dir, mlx_default_cpu_stream_new()) == 0);
  const char* texts[2] = {"one", "two words"};
  mlxc_embed_params p = mlxc_embed_default_params();
  p.dim = 16;
  float* v = NULL;
  size_t d = 0;
  CHECK(mlxc_embed_encode(model, texts, 2, p, &v, &d) == 0);
  CHECK_EQ_INT(d, 16);
  double norm = 0;
  for (size_t k = 0; v && k < d; k++) norm += v[k] * v[k];
  CHECK_NEAR(norm, 1.0, 1e-5); /* truncated, then normalized */
  free(v);
  mlxc_set_errors_quiet(1);
  p.dim = 1000;
  CHECK(mlxc_embed_encode(model, texts, 2, p, &v, &d) != 0);
  mlxc_embed_model* none = NULL;
  CHECK(mlxc_embed_load(&none, "/nonexistent", mlx_default_cpu_stream_new()) != 0);
  snprintf(dir, sizeof dir, "%s/tests/fixtures/lm/llama", test_source_dir());
  CHECK(mlxc_embed_load(&none, dir, mlx_default_cpu_stream_new()) != 0); /* not an encoder */
  mlxc_set_errors_quiet(0);
  mlxc_embed_free(model);
}

int main(void) {
  RUN(test_embeddings_match_sentence_transformers);
  RUN(test_matryoshka_and_errors);
  return TEST_SUMMARY();
}
