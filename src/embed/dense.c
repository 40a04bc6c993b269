/* sentence-transformers Dense modules (2_Dense, 3_Dense, ...): act(x W^T + b) on the pooled
 * vectors. config.json gives in_features, out_features, bias and activation_function; the
 * weights are linear.weight / linear.bias in model.safetensors (pytorch_model.bin is not read). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "lm/call.h"
#include "util/error.h"

int embed_dense_load(embed_dense* d, const char* dir, const char* path, mlx_stream s) {
  char file[8192];
  snprintf(file, sizeof file, "%s/%s/config.json", dir, path);
  json_error_t err;
  json_t* cfg = json_load_file(file, 0, &err);
  if (!cfg) return util_error("%s: %s", file, err.text);
  mlx_map_string_to_array tensors = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  int status = 0;
  d->in = embed_json_int(cfg, "in_features", 0);
  d->out = embed_json_int(cfg, "out_features", 0);
  bool bias = !json_is_false(json_object_get(cfg, "bias"));
  const char* act = json_string_value(json_object_get(cfg, "activation_function"));
  CALL(embed_activation_parse(act ? act : "torch.nn.modules.activation.Tanh", &d->act));
  if (d->in <= 0 || d->out <= 0) CALL(util_error("%s: bad in_features / out_features", file));
  snprintf(file, sizeof file, "%s/%s/model.safetensors", dir, path);
  FILE* f = fopen(file, "rb");
  if (!f) CALL(util_error("%s/%s: no model.safetensors (Dense weights in pytorch_model.bin are not supported)", dir, path));
  fclose(f);
  CALL(mlx_load_safetensors(&tensors, &meta, file, s));
  CALL(embed_tensor(tensors, "linear.weight", true, &d->weight));
  if (bias) CALL(embed_tensor(tensors, "linear.bias", true, &d->bias));
  if (mlx_array_ndim(d->weight) != 2 || mlx_array_dim(d->weight, 0) != d->out || mlx_array_dim(d->weight, 1) != d->in)
    CALL(util_error("%s: linear.weight is not (%d, %d)", file, d->out, d->in));
  CALL(mlx_astype(&d->weight, d->weight, MLX_FLOAT32, s));
  if (d->bias.ctx) CALL(mlx_astype(&d->bias, d->bias, MLX_FLOAT32, s));
cleanup:
  json_decref(cfg);
  mlx_map_string_to_array_free(tensors);
  mlx_map_string_to_string_free(meta);
  return status;
}

void embed_dense_free(embed_dense* d) {
  mlx_array_free(d->weight);
  mlx_array_free(d->bias);
}

int embed_dense_apply(const mlxc_embed_model* m, float** rows, size_t n, size_t* width) {
  if (!m->n_dense || !n) {
    if (m->n_dense) *width = (size_t)m->dense[m->n_dense - 1].out;
    return 0;
  }
  mlx_stream s = m->stream;
  int shape[2] = {(int)n, (int)*width};
  mlx_array x = mlx_array_new_data(*rows, shape, 2, MLX_FLOAT32);
  int status = x.ctx ? 0 : 1;
  for (size_t i = 0; !status && i < m->n_dense; i++) {
    status = embed_linear(&x, x, m->dense[i].weight, m->dense[i].bias, s); /* (n, out) */
    if (!status) status = embed_activate(&x, x, m->dense[i].act, s);
  }
  if (!status) status = mlx_array_eval(x);
  const float* data = status ? NULL : mlx_array_data_float32(x);
  if (!status && !data) status = 1;
  if (!status) {
    size_t out = (size_t)m->dense[m->n_dense - 1].out;
    float* fresh = malloc(sizeof(float) * n * out);
    if (!fresh) {
      status = util_error("out of memory");
    } else {
      memcpy(fresh, data, sizeof(float) * n * out);
      free(*rows);
      *rows = fresh;
      *width = out;
    }
  }
  mlx_array_free(x);
  return status;
}
