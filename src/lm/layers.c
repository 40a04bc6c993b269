/* Building blocks of the decoder: linear layers (plain or MLX-quantized), embeddings, norms
 * and the RoPE frequencies of the scaled variants. */
#include <math.h>
#include <stdlib.h>

#include "lm/call.h"
#include "lm/model.h"
#include "mlxc/fast.h"
#include "util/error.h"

void lm_linear_free(lm_linear* l) {
  mlx_array_free(l->weight);
  mlx_array_free(l->scales);
  mlx_array_free(l->biases);
  mlx_array_free(l->bias);
  *l = (lm_linear){0};
}

int lm_linear_apply(mlx_array* out, const lm_linear* l, mlx_array x, mlx_stream s) {
  int status = 0;
  if (l->quantized) {
    mlx_optional_int group = {l->group_size, true}, bits = {l->bits, true};
    CALL(mlx_quantized_matmul(out, x, l->weight, l->scales, l->biases, true, group, bits, "affine", s));
  } else {
    mlx_array wt = mlx_array_new();
    status = mlx_transpose(&wt, l->weight, s); /* a view: matmul reads it as W^T */
    /* With a bias, one addmm: a decode GEMV adds it as it writes (no separate add). */
    if (!status) status = l->bias.ctx ? mlx_addmm(out, l->bias, x, wt, 1.0f, 1.0f, s) : mlx_matmul(out, x, wt, s);
    mlx_array_free(wt);
    return status;
  }
  if (l->bias.ctx) CALL(mlx_add(out, *out, l->bias, s));
cleanup:
  return status;
}

int lm_embed_apply(mlx_array* out, const lm_linear* embed, mlx_array ids, mlx_stream s) {
  if (!embed->quantized) return mlx_take_axis(out, embed->weight, ids, 0, s);
  /* Quantized table: gather the packed rows and their scales/biases, then dequantize. */
  mlx_array w = mlx_array_new(), sc = mlx_array_new(), bi = mlx_array_new();
  int status = 0;
  mlx_optional_int group = {embed->group_size, true}, bits = {embed->bits, true};
  mlx_optional_dtype dtype = {MLX_FLOAT32, false};
  CALL(mlx_take_axis(&w, embed->weight, ids, 0, s));
  CALL(mlx_take_axis(&sc, embed->scales, ids, 0, s));
  if (embed->biases.ctx) CALL(mlx_take_axis(&bi, embed->biases, ids, 0, s));
  CALL(mlx_dequantize(out, w, sc, bi, group, bits, "affine", mlx_array_new(), dtype, s));
cleanup:
  mlx_array_free(w);
  mlx_array_free(sc);
  mlx_array_free(bi);
  return status;
}

int lm_embed_scale(mlx_array* x, const mlxc_lm_model* m, mlx_stream s) {
  if (!m->arch->gemma_norms) return 0;
  /* Gemma scales embeddings by sqrt(hidden), rounded to the activation dtype first. */
  mlx_array scale = mlx_array_new_float(sqrtf((float)m->config.hidden_size));
  int status = mlx_astype(&scale, scale, mlx_array_dtype(*x), s);
  if (!status) status = mlx_multiply(x, *x, scale, s);
  mlx_array_free(scale);
  return status;
}

int lm_norm_apply(mlx_array* out, const lm_norm* n, mlx_array x, float eps, mlx_stream s) {
  return mlx_fast_rms_norm(out, x, n->weight, eps, s);
}

int lm_add_norm_apply(mlx_array* x, mlx_array* out, const lm_norm* n, mlx_array t, float eps, mlx_stream s) {
  int nd = mlx_array_ndim(*x);
  mlx_dtype dt = mlx_array_dtype(*x);
  bool same = dt == mlx_array_dtype(t) && nd == (int)mlx_array_ndim(t) &&
              (dt == MLX_FLOAT32 || dt == MLX_FLOAT16 || dt == MLX_BFLOAT16);
  for (int d = 0; same && d < nd; d++) same = mlx_array_dim(*x, d) == mlx_array_dim(t, d);
  if (same) return mlxc_fast_add_rms_norm(x, out, *x, t, n->weight, eps, s);
  int status = mlx_add(x, *x, t, s);
  return status ? status : lm_norm_apply(out, n, *x, eps, s);
}

/* YaRN (Peng et al. 2023) as transformers computes it: the dimensions whose wavelength fits
 * beta_fast..beta_slow rotations in the original context form a linear ramp between
 * extrapolation (kept) and interpolation (divided by the factor). */
static void yarn_correction_range(const lm_config* c, int dims, double* low, double* high) {
  double rotations[2] = {c->rope_beta_fast, c->rope_beta_slow}, out[2];
  for (int k = 0; k < 2; k++)
    out[k] = dims * log(c->rope_original_max_positions / (rotations[k] * 2 * M_PI)) / (2 * log(c->rope_theta));
  if (c->rope_truncate) {
    out[0] = floor(out[0]);
    out[1] = ceil(out[1]);
  }
  *low = out[0] > 0 ? out[0] : 0;
  *high = out[1] < dims - 1 ? out[1] : dims - 1;
  if (*low == *high) *high += 0.001; /* as transformers: no division by zero */
}

static double yarn_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * log(scale) + 1.0; }

/* The factor transformers multiplies cos and sin by (here folded into the attention scale). */
static float yarn_attention_factor(const lm_config* c) {
  if (c->rope_attention_factor > 0) return c->rope_attention_factor;
  if (c->rope_mscale > 0 && c->rope_mscale_all_dim > 0)
    return (float)(yarn_mscale(c->rope_factor, c->rope_mscale) / yarn_mscale(c->rope_factor, c->rope_mscale_all_dim));
  return (float)yarn_mscale(c->rope_factor, 1.0);
}

/* Dynamic NTK scaling (transformers' _compute_dynamic_ntk_parameters): once a step's sequence
 * length seq_len exceeds max = max_position_embeddings, the base grows to
 * base * (factor * seq_len / max - (factor - 1))^(d / (d - 2)). transformers recomputes it at each forward call from that call's last position + 1 (the
 * prompt's length at prefill, then each new length while decoding); keys already cached keep
 * the rotation they were computed with. The decoder calls this per step with offset + L. */
float lm_rope_base(const lm_config* c, int seq_len) {
  int max = c->rope_original_max_positions; /* the config's max_position_embeddings (config.c) */
  if (c->rope_type != ROPE_DYNAMIC || seq_len <= max) return c->rope_theta;
  int dims = (int)(c->head_dim * c->partial_rotary_factor);
  double ratio = (double)c->rope_factor * seq_len / max - (c->rope_factor - 1);
  return (float)(c->rope_theta * pow(ratio, (double)dims / (dims - 2)));
}

/* Frequencies (the inverse of the inverse frequencies, as fast.rope takes them) for the RoPE
 * scalings that change them; default RoPE passes the base instead. */
int lm_rope_setup(mlxc_lm_model* m) {
  const lm_config* c = &m->config;
  m->rope_mscale = 1.0f;
  if (c->rope_type == ROPE_DEFAULT) return 0;
  if (c->rope_type == ROPE_DYNAMIC) return 0; /* a base per step: lm_rope_base */
  int dims = (int)(c->head_dim * c->partial_rotary_factor);
  int half = dims / 2;
  if (c->rope_type == ROPE_YARN && dims != c->head_dim)
    return util_error("yarn RoPE with a partial rotary factor is not supported yet");
  float* freqs = malloc(sizeof(float) * (size_t)half);
  if (!freqs) return util_error("out of memory");
  double yarn_low = 0, yarn_high = 0;
  if (c->rope_type == ROPE_YARN) {
    yarn_correction_range(c, dims, &yarn_low, &yarn_high);
    m->rope_mscale = yarn_attention_factor(c);
  }
  for (int i = 0; i < half; i++) {
    double inv = 1.0 / pow(c->rope_theta, 2.0 * i / dims);
    if (c->rope_type == ROPE_YARN) {
      /* Interpolate (divide by the factor) the low frequencies, keep the high ones, ramp between. */
      double ramp = (i - yarn_low) / (yarn_high - yarn_low);
      ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
      double extrapolation = 1 - ramp;
      inv = inv / c->rope_factor * (1 - extrapolation) + inv * extrapolation;
    } else if (c->rope_type == ROPE_LINEAR) {
      inv /= c->rope_factor;
    } else { /* llama3: stretch long wavelengths, keep short ones, blend in between */
      double wavelen = 2 * M_PI / inv;
      double low_wavelen = c->rope_original_max_positions / c->rope_low_freq_factor;
      double high_wavelen = c->rope_original_max_positions / c->rope_high_freq_factor;
      if (wavelen > low_wavelen) {
        inv /= c->rope_factor;
      } else if (wavelen >= high_wavelen) {
        double smooth = (c->rope_original_max_positions / wavelen - c->rope_low_freq_factor) /
                        (c->rope_high_freq_factor - c->rope_low_freq_factor);
        inv = (1 - smooth) * inv / c->rope_factor + smooth * inv;
      }
    }
    freqs[i] = (float)(1.0 / inv);
  }
  int shape[1] = {half};
  m->rope_freqs = mlx_array_new_data(freqs, shape, 1, MLX_FLOAT32);
  free(freqs);
  return m->rope_freqs.ctx ? 0 : 1;
}
