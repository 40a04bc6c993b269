/* Converting a model folder: cast the floating-point weights to a dtype and/or quantize the
 * linear and embedding weights to MLX's affine layout, writing an MLX-format folder (weights in
 * one model.safetensors, config.json with a "quantization" entry, the tokenizer files copied). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lm/call.h"
#include "lm/model.h"
#include "util/error.h"

static bool ends_with(const char* s, const char* suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcmp(s + n - m, suffix);
}

/* Which tensors to quantize: 2-D ".weight"s of linear layers and embeddings (not norms), whose
 * rows split into whole groups, as mlx-lm's quantize does. */
static bool quantizable(const char* name, mlx_array w, int group_size) {
  return ends_with(name, ".weight") && !strstr(name, "norm") && mlx_array_ndim(w) == 2 &&
         mlx_array_dim(w, 1) % group_size == 0 && mlx_array_dim(w, 1) >= group_size;
}

static int copy_file(const char* from, const char* to) {
  FILE* in = fopen(from, "rb");
  if (!in) return 0; /* optional files */
  FILE* out = fopen(to, "wb");
  if (!out) {
    fclose(in);
    return util_error("cannot write %s", to);
  }
  char buf[65536];
  size_t n;
  int status = 0;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    if (fwrite(buf, 1, n, out) != n) status = util_error("cannot write %s", to);
  fclose(in);
  if (fclose(out)) status = util_error("cannot write %s", to);
  return status;
}

static int write_config(const char* in_dir, const char* out_dir, const mlxc_lm_convert_params* p) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", in_dir);
  json_error_t err;
  json_t* config = json_load_file(path, 0, &err);
  if (!config) return util_error("%s: %s", path, err.text);
  if (p->quantize) {
    json_t* q = json_pack("{s:i, s:i, s:s}", "group_size", p->group_size, "bits", p->bits, "mode", "affine");
    json_object_set(config, "quantization", q);
    json_object_set_new(config, "quantization_config", q);
  }
  if (p->dtype_name) json_object_set_new(config, "torch_dtype", json_string(p->dtype_name));
  snprintf(path, sizeof path, "%s/config.json", out_dir);
  int status = json_dump_file(config, path, JSON_INDENT(2)) ? util_error("cannot write %s", path) : 0;
  json_decref(config);
  return status;
}

int mlxc_lm_convert(const char* in_dir, const char* out_dir, const mlxc_lm_convert_params* p) {
  if (!in_dir || !out_dir || !p) return util_error("mlxc_lm_convert: null argument");
  if (lm_path_is_gguf(in_dir))
    return util_error("%s: converting a GGUF file is not supported (mlxc convert reads model folders; the GGUF file "
                      "itself loads and generates)", in_dir);
  if (p->quantize && p->bits != 2 && p->bits != 3 && p->bits != 4 && p->bits != 5 && p->bits != 6 && p->bits != 8)
    return util_error("quantization bits must be 2, 3, 4, 5, 6 or 8 (got %d)", p->bits);
  if (p->quantize && p->group_size != 32 && p->group_size != 64 && p->group_size != 128)
    return util_error("quantization group size must be 32, 64 or 128 (got %d)", p->group_size);
  mlx_stream s = mlx_default_cpu_stream_new();
  mlx_map_string_to_array in = mlx_map_string_to_array_new(), out = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_array value = mlx_array_new(), cast = mlx_array_new();
  mlx_vector_array parts = mlx_vector_array_new();
  mlx_map_string_to_array_iterator it = {0};
  int status = 0;
  char name[1024], path[4096];
  CALL(lm_weights_load(&in, in_dir, s));
  if (mkdir(out_dir, 0755) && errno != EEXIST) CALL(util_error("cannot create %s", out_dir));
  it = mlx_map_string_to_array_iterator_new(in);
  const char* key;
  while (mlx_map_string_to_array_iterator_next(&key, &value, it) == 0) {
    bool is_float = mlx_array_dtype(value) == MLX_FLOAT32 || mlx_array_dtype(value) == MLX_FLOAT16 ||
                    mlx_array_dtype(value) == MLX_BFLOAT16 || mlx_array_dtype(value) == MLX_FLOAT64;
    CALL(mlx_array_set(&cast, value));
    if (is_float && p->dtype_name) CALL(mlx_astype(&cast, value, p->dtype, s));
    if (p->quantize && is_float && quantizable(key, value, p->group_size)) {
      mlx_optional_int group = {p->group_size, true}, bits = {p->bits, true};
      CALL(mlx_quantize(&parts, cast, group, bits, "affine", mlx_array_new(), s));
      const char* suffixes[3] = {"weight", "scales", "biases"};
      size_t base = strlen(key) - strlen("weight");
      for (size_t i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "%.*s%s", (int)base, key, suffixes[i]);
        CALL(mlx_vector_array_get(&cast, parts, i));
        CALL(mlx_map_string_to_array_insert(out, name, cast));
      }
    } else {
      CALL(mlx_map_string_to_array_insert(out, key, cast));
    }
  }
  snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
  CALL(mlx_map_string_to_string_insert(meta, "format", "mlx"));
  CALL(mlx_save_safetensors(path, out, meta));
  CALL(write_config(in_dir, out_dir, p));
  const char* files[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                         "chat_template.jinja", "special_tokens_map.json"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char from[4096];
    snprintf(from, sizeof from, "%s/%s", in_dir, files[i]);
    snprintf(path, sizeof path, "%s/%s", out_dir, files[i]);
    CALL(copy_file(from, path));
  }
cleanup:
  if (it.ctx) mlx_map_string_to_array_iterator_free(it);
  mlx_array_free(value);
  mlx_array_free(cast);
  mlx_vector_array_free(parts);
  mlx_map_string_to_array_free(in);
  mlx_map_string_to_array_free(out);
  mlx_map_string_to_string_free(meta);
  return status;
}
