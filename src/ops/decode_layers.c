/* The decode_layers node (ops/decode_layers.h): argument checks and the node's inputs. */
#include <stdlib.h>
#include <string.h>

#include "ops/decode_layers.h"
#include "ops/ops_common.h"
#include "ops/primitives.h"

static const char* const NAME = "decode_layers";

int decode_layers_inputs_per_layer(const decode_layers_params* p) {
  return 2 + 4 * (p->bits ? 3 : 1) + (p->qkv_bias ? 1 : 0) + 2;
}

int decode_layers_first_layer_input(const decode_layers_params* p) { return p->has_freqs ? 3 : 2; }

/* a is (rows, cols) of dtype, or (rows, cols * bits / 32) uint32 for a quantized weight. */
static int check_matrix(const core_array* a, int64_t rows, int64_t cols, mlx_dtype dtype, const char* what, int l) {
  if (!a) return util_error("%s: layer %d: %s is missing", NAME, l, what);
  if (a->ndim != 2 || a->shape[0] != rows || a->shape[1] != cols || a->dtype != dtype)
    return util_error("%s: layer %d: %s must be (%lld, %lld) %s", NAME, l, what, (long long)rows, (long long)cols,
                      core_dtype_name(dtype));
  return 0;
}

static int check_vector(const core_array* a, int64_t n, mlx_dtype dtype, const char* what, int l) {
  if (!a) return util_error("%s: layer %d: %s is missing", NAME, l, what);
  if (a->ndim != 1 || a->shape[0] != n || a->dtype != dtype)
    return util_error("%s: layer %d: %s must be (%lld) %s", NAME, l, what, (long long)n, core_dtype_name(dtype));
  return 0;
}

/* Appends layer l's arrays to inputs (checked against p); returns how many, or -1. */
static int layer_inputs(core_array** inputs, const decode_layer_arrays* L, const decode_layers_params* p, int l,
                        mlx_dtype dt) {
  static const char* const names[4] = {"qkv", "o", "gate_up", "down"};
  const int64_t rows[4] = {(int64_t)(p->H + 2 * p->KVH) * p->hd, p->D, 2 * (int64_t)p->I, p->D};
  const int64_t cols[4] = {p->D, (int64_t)p->H * p->hd, p->D, p->I};
  int n = 0;
  inputs[n] = core_ctx(L->input_norm);
  if (check_vector(inputs[n++], p->D, dt, "input_norm", l)) return -1;
  inputs[n] = core_ctx(L->post_norm);
  if (check_vector(inputs[n++], p->D, dt, "post_norm", l)) return -1;
  for (int i = 0; i < 4; i++) {
    inputs[n] = core_ctx(L->weight[i]);
    if (!p->bits) {
      if (check_matrix(inputs[n++], rows[i], cols[i], dt, names[i], l)) return -1;
      continue;
    }
    if (check_matrix(inputs[n++], rows[i], cols[i] * p->bits / 32, MLX_UINT32, names[i], l)) return -1;
    inputs[n] = core_ctx(L->scales[i]);
    if (check_matrix(inputs[n++], rows[i], cols[i] / p->group, dt, "scales", l)) return -1;
    inputs[n] = core_ctx(L->biases[i]);
    if (check_matrix(inputs[n++], rows[i], cols[i] / p->group, dt, "biases", l)) return -1;
  }
  if (p->qkv_bias) {
    inputs[n] = core_ctx(L->qkv_bias);
    if (check_vector(inputs[n++], rows[0], dt, "qkv bias", l)) return -1;
  }
  for (int i = 0; i < 2; i++) {
    core_array* c = core_ctx(i ? L->values : L->keys);
    if (!c || c->ndim != 4 || c->shape[0] != 1 || c->shape[1] != p->KVH || c->shape[2] != p->capacity ||
        c->shape[3] != p->hd || c->dtype != dt) {
      util_error("%s: layer %d: the %s cache must be (1, %d, %d, %d) %s", NAME, l, i ? "value" : "key", p->KVH,
                 p->capacity, p->hd, core_dtype_name(dt));
      return -1;
    }
    inputs[n++] = c;
  }
  return n;
}

int ops_decode_layers(mlx_array* out, mlx_array* keys, mlx_array* values, mlx_array x_, mlx_array position_,
                      mlx_array freqs_, const decode_layer_arrays* layers, const decode_layers_params* p, mlx_stream s) {
  core_array* x = ops_arg(x_, NAME, "x");
  core_array* position = x ? ops_arg(position_, NAME, "position") : NULL;
  if (!position) return 1;
  const mlx_dtype dt = x->dtype;
  if (p->n_layers < 1 || p->D < 1 || p->H < 1 || p->KVH < 1 || p->H % p->KVH || p->hd < 1 || p->I < 1 ||
      p->capacity < 1 || p->rope_dims < 0 || p->rope_dims > p->hd || p->rope_dims % 2)
    return util_error("%s: inconsistent sizes", NAME);
  if (p->bits && ((p->bits != 4 && p->bits != 8) || (p->group != 32 && p->group != 64 && p->group != 128) ||
                  p->D % p->group || p->I % p->group || (p->H * p->hd) % p->group))
    return util_error("%s: quantized linears must have 4 or 8 bits, groups of 32, 64 or 128 dividing every width", NAME);
  if (dt != MLX_FLOAT32 && dt != MLX_FLOAT16 && dt != MLX_BFLOAT16)
    return util_error("%s: x must be float32, float16 or bfloat16", NAME);
  if (x->size != (size_t)p->D) return util_error("%s: x must hold one row of %d values", NAME, p->D);
  if (position->dtype != MLX_INT32 || position->size != 1) return util_error("%s: position must be one int32", NAME);
  core_array* freqs = core_ctx(freqs_);
  if (p->has_freqs != (freqs != NULL) || (freqs && (freqs->ndim != 1 || freqs->shape[0] != p->rope_dims / 2)))
    return util_error("%s: freqs must be given as has_freqs says, with rope_dims / 2 values", NAME);
  const int per = decode_layers_inputs_per_layer(p), first = decode_layers_first_layer_input(p);
  const int n_inputs = first + per * p->n_layers, n_outputs = 1 + 2 * p->n_layers;
  core_array** inputs = calloc((size_t)n_inputs + (size_t)n_outputs, sizeof *inputs);
  mlx_dtype* dtypes = malloc(sizeof *dtypes * (size_t)n_outputs);
  const int** shapes = malloc(sizeof *shapes * (size_t)n_outputs);
  int* ndims = malloc(sizeof *ndims * (size_t)n_outputs);
  decode_layers_params* params = malloc(sizeof *params);
  int status = 0;
  if (!inputs || !dtypes || !shapes || !ndims || !params) {
    status = util_error("out of memory");
    goto done;
  }
  *params = *p;
  inputs[0] = x;
  inputs[1] = position;
  if (freqs) inputs[2] = freqs;
  core_array** outs = inputs + n_inputs;
  for (int l = 0; l < p->n_layers && !status; l++)
    if (layer_inputs(inputs + first + per * l, &layers[l], p, l, dt) != per) status = 1;
  if (status) goto done;
  dtypes[0] = dt;
  shapes[0] = x->shape;
  ndims[0] = x->ndim;
  for (int l = 0; l < p->n_layers; l++)
    for (int i = 0; i < 2; i++) {
      const core_array* c = inputs[first + per * l + per - 2 + i];
      dtypes[1 + 2 * l + i] = dt;
      shapes[1 + 2 * l + i] = c->shape;
      ndims[1 + 2 * l + i] = 4;
    }
  status = core_node_create(&prim_decode_layers, params, inputs, n_inputs, n_outputs, dtypes, shapes, ndims,
                            core_stream_resolve(s), outs);
  params = NULL; /* owned by the node, even on failure */
  if (status) goto done;
  core_assign(out, outs[0]);
  for (int l = 0; l < p->n_layers; l++) {
    core_assign(&keys[l], outs[1 + 2 * l]);
    core_assign(&values[l], outs[2 + 2 * l]);
  }
done:
  free(inputs);
  free(dtypes);
  free(shapes);
  free(ndims);
  free(params);
  return status;
}
