/* The decode_layers node on the CPU (ops/decode_layers.h): each layer of one decode step with
 * the roundings of the chain of ops it stands for (and of the GPU kernel): every linear output,
 * bias, residual sum, norm and RoPE output rounded to the dtype. It serves as the reference the
 * GPU kernel is tested against, and runs where that kernel declines. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/copy.h"
#include "backend/cpu/gemv.h"
#include "backend/cpu/glu.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/qgemv.h"
#include "backend/cpu/rows.h"
#include "ops/decode_layers.h"
#include "util/error.h"

/* y (N) = W x for the linear whose weight (and scales, biases) are in[0..2]. */
static int linear(float* y, const float* x, core_array* const* in, const decode_layers_params* p, int64_t N,
                  int64_t K) {
  void* owned[3] = {NULL, NULL, NULL};
  const void* w = cpu_dense_data(in[0], &owned[0]);
  int status = w ? 0 : 1;
  if (!status && p->bits) {
    const void* s = cpu_dense_data(in[1], &owned[1]);
    const void* b = s ? cpu_dense_data(in[2], &owned[2]) : NULL;
    status = b ? cpu_qgemv_affine(y, x, 1, w, s, b, in[1]->dtype, in[2]->dtype, N, K, p->bits, p->group) : 1;
  } else if (!status && in[0]->dtype == MLX_FLOAT32) {
    for (int64_t n = 0; n < N; n++) {
      const float* row = (const float*)w + n * K;
      float a = 0.0f;
      for (int64_t k = 0; k < K; k++) a += row[k] * x[k];
      y[n] = a;
    }
  } else if (!status) {
    cpu_gemv_half_rows(y, x, 1, w, K, N, K, in[0]->dtype == MLX_BFLOAT16);
  }
  for (int i = 0; i < 3; i++) free(owned[i]);
  return status;
}

static float round_to(float v, mlx_dtype dt) {
  cpu_round_row(&v, 1, dt);
  return v;
}

/* y = rms_norm(x) * w as the norm kernel rounds it. */
static void rms_norm(float* y, const float* x, const core_array* w, int64_t n, float eps, mlx_dtype dt) {
  float ss = 0.0f;
  for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
  const float inv = 1.0f / sqrtf(ss / (float)n + eps);
  cpu_row_to_f32(core_array_ptr(w), w->dtype, w->strides[0], n, y);
  for (int64_t i = 0; i < n; i++) y[i] = round_to(round_to(x[i] * inv, dt) * y[i], dt);
}

/* The cache output: the input donated, or a copy of it. */
static int cache_output(core_array* out, core_array* cache) {
  if (core_array_donate(cache, out, -1)) return 0;
  if (core_array_alloc_contiguous(out)) return 1;
  cpu_copy_strided(core_array_ptr(out), core_array_ptr(cache), cache->shape, cache->strides, cache->ndim,
                   core_dtype_size(cache->dtype));
  return 0;
}

/* RoPE of `rows` heads of hd values in place (non-traditional pairs i, i + dims / 2). */
static void rope(float* v, int rows, const decode_layers_params* p, const float* inv_freq, float position,
                 mlx_dtype dt) {
  const int half = p->rope_dims / 2;
  for (int r = 0; r < rows; r++) {
    float* x = v + (int64_t)r * p->hd;
    for (int i = 0; i < half; i++) {
      const float theta = position * inv_freq[i], c = cosf(theta), s = sinf(theta);
      const float x1 = x[i], x2 = x[i + half];
      x[i] = round_to(x1 * c - x2 * s, dt);
      x[i + half] = round_to(x1 * s + x2 * c, dt);
    }
  }
}

/* Attention of every query head over cache slots 0..pos (already holding the new key and value). */
static void attention(float* out, const float* q, const core_array* keys, const core_array* values, int pos,
                      const decode_layers_params* p, float* scores, float* row, mlx_dtype dt) {
  const int G = p->H / p->KVH, hd = p->hd;
  const size_t es = core_dtype_size(dt);
  for (int h = 0; h < p->H; h++) {
    const int kvh = h / G;
    const char* kb = (const char*)core_array_ptr(keys) + (size_t)kvh * p->capacity * hd * es;
    const char* vb = (const char*)core_array_ptr(values) + (size_t)kvh * p->capacity * hd * es;
    float m = -INFINITY;
    for (int j = 0; j <= pos; j++) {
      cpu_row_to_f32(kb + (size_t)j * hd * es, dt, 1, hd, row);
      float s = 0.0f;
      for (int d = 0; d < hd; d++) s += q[(int64_t)h * hd + d] * row[d];
      scores[j] = s * p->attn_scale;
      m = scores[j] > m ? scores[j] : m;
    }
    float sum = 0.0f, *o = out + (int64_t)h * hd;
    for (int d = 0; d < hd; d++) o[d] = 0.0f;
    for (int j = 0; j <= pos; j++) {
      const float e = expf(scores[j] - m), pr = round_to(e, dt);
      sum += e;
      cpu_row_to_f32(vb + (size_t)j * hd * es, dt, 1, hd, row);
      for (int d = 0; d < hd; d++) o[d] += pr * row[d];
    }
    for (int d = 0; d < hd; d++) o[d] = round_to(o[d] / sum, dt);
  }
}

int cpu_eval_decode_layers(core_node* node, core_array** outputs) {
  const decode_layers_params* p = node->params;
  core_array* const* in = node->inputs;
  const mlx_dtype dt = in[0]->dtype;
  const int per = decode_layers_inputs_per_layer(p), first = decode_layers_first_layer_input(p);
  const int64_t D = p->D, HD = (int64_t)p->H * p->hd, NQKV = (int64_t)(p->H + 2 * p->KVH) * p->hd, I = p->I;
  int32_t pos;
  memcpy(&pos, core_array_ptr(in[1]), sizeof pos);
  if (pos < 0 || pos >= p->capacity)
    return util_error("decode_layers: position %d is outside the caches' %d slots", pos, p->capacity);
  const int64_t widest = D > I ? (D > HD ? D : HD) : (I > HD ? I : HD);
  const size_t floats = (size_t)(4 * widest + NQKV + 2 * I + p->capacity + p->hd + p->rope_dims);
  float* buf = malloc(sizeof(float) * floats);
  if (!buf) return util_error("decode_layers: out of memory");
  float *x = buf, *hres = x + widest, *y = hres + widest, *attn = y + widest, *qkv = attn + widest;
  float *gu = qkv + NQKV, *scores = gu + 2 * I, *row = scores + p->capacity, *inv_freq = row + p->hd;
  const int half = p->rope_dims / 2;
  for (int i = 0; i < half; i++) {
    if (p->has_freqs) {
      float f;
      cpu_row_to_f32((const char*)core_array_ptr(in[2]) + (size_t)i * in[2]->strides[0] * core_dtype_size(in[2]->dtype),
                     in[2]->dtype, 1, 1, &f);
      inv_freq[i] = 1.0f / f;
    } else {
      inv_freq[i] = (float)(1.0 / pow((double)p->rope_base, 2.0 * i / p->rope_dims));
    }
  }
  const float position = p->rope_scale * (float)pos;
  cpu_convert(x, MLX_FLOAT32, core_array_ptr(in[0]), dt, in[0]->shape, in[0]->strides, in[0]->ndim);
  int status = 0;
  const int lin = p->bits ? 3 : 1;
  for (int l = 0; l < p->n_layers && !status; l++) {
    core_array* const* L = in + first + per * l;
    core_array *keys = outputs[1 + 2 * l], *values = outputs[2 + 2 * l];
    status = cache_output(keys, L[per - 2]) || cache_output(values, L[per - 1]);
    if (status) break;
    rms_norm(y, x, L[0], D, p->eps, dt);
    if ((status = linear(qkv, y, L + 2, p, NQKV, D))) break;
    if (p->qkv_bias) {
      const core_array* b = L[2 + 4 * lin];
      cpu_row_to_f32(core_array_ptr(b), b->dtype, b->strides[0], NQKV, gu);
      for (int64_t n = 0; n < NQKV; n++)
        qkv[n] = p->bits ? round_to(round_to(qkv[n], dt) + gu[n], dt) : round_to(qkv[n] + gu[n], dt);
    } else {
      cpu_round_row(qkv, NQKV, dt);
    }
    rope(qkv, p->H + p->KVH, p, inv_freq, position, dt);
    const size_t es = core_dtype_size(dt);
    for (int kvh = 0; kvh < p->KVH; kvh++) {
      const size_t slot = ((size_t)kvh * p->capacity + (size_t)pos) * p->hd * es;
      cpu_row_from_f32(qkv + HD + (int64_t)kvh * p->hd, (char*)core_array_ptr(keys) + slot, dt, 1, p->hd);
      cpu_row_from_f32(qkv + HD + (int64_t)(p->KVH + kvh) * p->hd, (char*)core_array_ptr(values) + slot, dt, 1, p->hd);
    }
    attention(attn, qkv, keys, values, pos, p, scores, row, dt);
    if ((status = linear(y, attn, L + 2 + lin, p, D, HD))) break;
    for (int64_t n = 0; n < D; n++) hres[n] = round_to(x[n] + round_to(y[n], dt), dt);
    rms_norm(y, hres, L[1], D, p->eps, dt);
    if ((status = linear(gu, y, L + 2 + 2 * lin, p, 2 * I, D))) break;
    cpu_round_row(gu, 2 * I, dt);
    cpu_glu_row(gu, gu + I, attn, I, p->gelu ? GLU_GELU_TANH : GLU_SILU, dt);
    cpu_round_row(gu, I, dt);
    if ((status = linear(y, gu, L + 2 + 3 * lin, p, D, I))) break;
    for (int64_t n = 0; n < D; n++) x[n] = round_to(hres[n] + round_to(y[n], dt), dt);
  }
  if (!status) status = core_array_alloc_contiguous(outputs[0]);
  if (!status) cpu_row_from_f32(x, core_array_ptr(outputs[0]), dt, 1, D);
  free(buf);
  return status;
}
