/* CPU kernels of quantize, dequantize and quantized_matmul in MLX's layouts (quant_format.h).
 * Quantization follows MLX's CPU arithmetic step by step (including, for the microscaling
 * modes, the rounding of intermediate values to the weights' dtype), so the packed words,
 * scales and biases match what MLX writes. quantized_matmul accumulates in float32: a few rows
 * of x with affine weights go through the streaming kernels (qgemv.c); larger products
 * dequantize a block of weight rows to float32 at a time and hand it to sgemm. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/copy.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/qgemv.h"
#include "backend/cpu/quant_format.h"
#include "backend/cpu/strided.h"
#include "backend/cpu/threadpool.h"
#include "ops/quantized_params.h"
#include "util/error.h"

/* Weight rows dequantized per sgemm call of quantized_matmul (bounded scratch memory). */
#define QMM_BLOCK_ROWS 256
/* Products with up to this many rows of x go through qgemv.c (each weight read once, unpacked
 * in registers), larger ones dequantize blocks of weights for sgemm: 2-, 4- and 8-bit weights,
 * whose kernels share each unpacked weight among the rows of x, and the other widths, whose
 * kernels unpack the weights again for each row of x (their limit is the earlier one, not
 * measured again). Measured for the first with `bench_qgemv 64 128 256 512` (group 64), the
 * library built as is and with -DQMM_ROWS_MAX=1, two runs each, best, 2 threads, dev machine;
 * streaming / dequantize + sgemm at 64, 128, 256, 512 rows, in ms: 4096 x 4096 8-bit 16.9 / 33.3,
 * 32.9 / 41.6, 58.4 / 56.2, 99.8 / 98.5; 4-bit 17.6 / 34.7, 36.1 / 45.7, 57.7 / 55.9,
 * 88.9 / 92.5; 14336 x 4096 8-bit 68.7 / 124, 135 / 152, 195 / 214, 328 / 333; 4-bit
 * 58.4 / 125, 120 / 150, 213 / 200, 326 / 315. */
#ifndef QMM_ROWS_MAX
#define QMM_ROWS_MAX 128
#endif
#ifndef QMM_ROWS_MAX_ODD
#define QMM_ROWS_MAX_ODD 4
#endif

/* ---- quantize ---- */

typedef struct {
  const quant_params* p;
  const void* w;
  mlx_dtype dtype;      /* of w (float32, float16, bfloat16) */
  int64_t K;            /* row length */
  uint8_t* packed;      /* rows of K * bits / 8 bytes, zeroed */
  void* scales;         /* (rows, K / group): dtype (affine) or uint8 E8M0/E4M3 */
  void* biases;
  bool has_global;
  float global_scale;
} quantize_job;

/* MLX's affine rule: scale = (max - min) / (2^bits - 1), signed so that the edge of larger
 * magnitude maps to q = 0 (bias = that edge); then scale is nudged to edge / q0 so that zero is
 * exactly representable. q = round((w - bias) / scale), clamped. */
static void quantize_affine_group(const quantize_job* j, int64_t g, const float* v) {
  int bits = j->p->bits, n = j->p->group_size;
  float n_bins = (float)((1 << bits) - 1), eps = 1e-7f;
  float w_min = INFINITY, w_max = -INFINITY;
  for (int i = 0; i < n; i++) {
    w_min = fminf(w_min, v[i]);
    w_max = fmaxf(w_max, v[i]);
  }
  float scale, bias;
  if (bits == 1) {
    scale = fmaxf(w_max - w_min, eps);
    bias = w_min;
  } else {
    bool min_is_edge = fabsf(w_min) > fabsf(w_max);
    scale = fmaxf((w_max - w_min) / n_bins, eps);
    scale = min_is_edge ? scale : -scale;
    float edge = min_is_edge ? w_min : w_max;
    float q0 = rintf(edge / scale);
    bias = 0;
    if (q0 != 0) {
      scale = edge / q0;
      bias = edge;
    }
  }
  int64_t first = g * n; /* element index in the flattened rows */
  uint8_t* row = j->packed + (first / j->K) * (j->K * bits / 8);
  for (int i = 0; i < n; i++) {
    float q = rintf((v[i] - bias) / scale);
    q = fminf(fmaxf(q, 0.0f), n_bins);
    quant_put(row, first % j->K + i, bits, (uint32_t)q);
  }
  quant_store(j->scales, j->dtype, g, scale);
  quant_store(j->biases, j->dtype, g, bias);
}

/* Nearest FP4 code by MLX's rule (argmin of |w - value| over the table, first on ties), with
 * the differences computed in `dtype` as MLX does. */
static uint32_t fp4_code(float w, mlx_dtype dtype) {
  uint32_t best = 0;
  float best_d = INFINITY;
  for (uint32_t c = 0; c < 16; c++) {
    float d = fabsf(quant_round_as(dtype, w - quant_fp4_values[c]));
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

/* The microscaling modes, as MLX's composed CPU implementation computes them: amax / max_code
 * in the weights' dtype, then a power-of-two (E8M0, round(log2)) or E4M3 scale. */
static void quantize_fp_group(const quantize_job* j, int64_t g, const float* v) {
  const quant_params* p = j->p;
  int n = p->group_size;
  mlx_dtype t = j->dtype;
  float amax = 0;
  for (int i = 0; i < n; i++) amax = fmaxf(amax, fabsf(v[i]));
  float scaled[128];
  mlx_dtype code_dtype = t; /* dtype the code search runs in */
  if (p->mode == QUANT_NVFP4) {
    float encode = j->has_global ? (448.0f * 6.0f) / j->global_scale : 1.0f;
    uint8_t s = quant_fp8_encode(quant_round_as(t, amax / 6.0f) * encode);
    float step = quant_round_as(t, quant_fp8_decode(s));
    for (int i = 0; i < n; i++) scaled[i] = quant_round_as(t, v[i] / step) * encode;
    code_dtype = MLX_FLOAT32; /* the float32 encode factor promotes */
    ((uint8_t*)j->scales)[g] = s;
  } else {
    float s = quant_round_as(t, amax / (p->bits == 4 ? 6.0f : 448.0f));
    float e = s == 0 ? 0 : rintf(quant_round_as(t, log2f(s)));
    float step = quant_round_as(t, exp2f(e));
    for (int i = 0; i < n; i++) scaled[i] = quant_round_as(t, v[i] / step);
    ((uint8_t*)j->scales)[g] = (uint8_t)(int)(e + 127);
  }
  int64_t first = g * n;
  uint8_t* row = j->packed + (first / j->K) * (j->K * p->bits / 8);
  for (int i = 0; i < n; i++) {
    uint32_t code = p->bits == 4 ? fp4_code(scaled[i], code_dtype) : quant_fp8_encode(scaled[i]);
    quant_put(row, first % j->K + i, p->bits, code);
  }
}

static void quantize_chunk(void* ctx, int64_t begin, int64_t end) {
  const quantize_job* j = ctx;
  float v[128];
  for (int64_t g = begin; g < end; g++) {
    for (int i = 0; i < j->p->group_size; i++) v[i] = quant_load(j->w, j->dtype, g * j->p->group_size + i);
    if (j->p->mode == QUANT_AFFINE) quantize_affine_group(j, g, v);
    else quantize_fp_group(j, g, v);
  }
}

int cpu_eval_quantize(core_node* node, core_array** outputs) {
  const quant_params* p = node->params;
  core_array* w = node->inputs[0];
  int n_out = p->mode == QUANT_AFFINE ? 3 : 2;
  for (int i = 0; i < n_out; i++)
    if (core_array_alloc_contiguous(outputs[i])) return 1;
  if (w->size == 0) return 0;
  void* owned = NULL;
  const void* wd = cpu_dense_data(w, &owned);
  if (!wd) return 1;
  quantize_job j = {p, wd, w->dtype, w->shape[w->ndim - 1], core_array_ptr(outputs[0]),
                    core_array_ptr(outputs[1]), n_out == 3 ? core_array_ptr(outputs[2]) : NULL,
                    node->n_inputs > 1, 0};
  if (j.has_global) {
    core_array* gs = node->inputs[1];
    j.global_scale = quant_load(core_array_ptr(gs), gs->dtype, 0);
  }
  memset(j.packed, 0, outputs[0]->size * 4);
  int64_t groups = (int64_t)(w->size / (size_t)p->group_size);
  cpu_parallel_for(groups, 256, quantize_chunk, &j);
  free(owned);
  return 0;
}

/* ---- dequantize ---- */

typedef struct {
  const quant_params* p;
  const uint8_t* w;        /* packed rows */
  const void *scales, *biases;
  mlx_dtype sdtype, bdtype;
  float global_scale;      /* nvfp4: multiplies every scale (1 when absent) */
} dequant_src;

/* Row r of the weights (cols values) into row r of out (out_dtype). With `emulate`, the
 * intermediate roundings of MLX's dequantize are reproduced (affine: the product in the scales'
 * dtype, the sum in the promoted one; microscaling: the product in out_dtype); without, the
 * values are computed in float32 (quantized_matmul). */
static void dequant_row(const dequant_src* d, int64_t r, int64_t cols, void* out,
                        mlx_dtype out_dtype, bool emulate) {
  const quant_params* p = d->p;
  const uint8_t* row = d->w + r * (cols * p->bits / 8);
  int64_t groups = cols / p->group_size;
  mlx_dtype sum_dtype = core_promote(d->sdtype, d->bdtype);
  for (int64_t g = 0; g < groups; g++) {
    int64_t gi = r * groups + g;
    float scale, bias = 0;
    if (p->mode == QUANT_AFFINE) {
      scale = quant_load(d->scales, d->sdtype, gi);
      bias = quant_load(d->biases, d->bdtype, gi);
    } else {
      uint8_t s = ((const uint8_t*)d->scales)[gi];
      scale = p->mode == QUANT_NVFP4 ? quant_fp8_decode(s) * d->global_scale : quant_e8m0_decode(s);
    }
    for (int i = 0; i < p->group_size; i++) {
      int64_t k = g * p->group_size + i;
      uint32_t q = quant_get(row, k, p->bits);
      float v;
      if (p->mode == QUANT_AFFINE) {
        v = emulate ? quant_round_as(sum_dtype, quant_round_as(d->sdtype, scale * (float)q) + bias)
                    : scale * (float)q + bias;
      } else {
        float code = p->bits == 4 ? quant_fp4_values[q] : quant_fp8_decode((uint8_t)q);
        v = emulate ? quant_round_as(out_dtype, code * scale) : code * scale;
      }
      quant_store(out, out_dtype, r * cols + k, v);
    }
  }
}

typedef struct {
  const dequant_src* src;
  int64_t cols;
  void* out;
  mlx_dtype out_dtype;
  bool emulate;
} dequant_job;

static void dequant_chunk(void* ctx, int64_t begin, int64_t end) {
  const dequant_job* j = ctx;
  for (int64_t r = begin; r < end; r++) dequant_row(j->src, r, j->cols, j->out, j->out_dtype, j->emulate);
}

/* Rows [row0, row0 + n) dequantized into out (n, cols), on the thread pool. */
static void dequant_rows(const dequant_src* d, int64_t row0, int64_t n, int64_t cols, void* out,
                         mlx_dtype out_dtype, bool emulate) {
  dequant_src shifted = *d;
  int64_t groups = cols / d->p->group_size;
  size_t selem = d->p->mode == QUANT_AFFINE ? core_dtype_size(d->sdtype) : 1;
  shifted.w += row0 * (cols * d->p->bits / 8);
  shifted.scales = (const char*)d->scales + row0 * groups * (int64_t)selem;
  if (d->biases)
    shifted.biases = (const char*)d->biases + row0 * groups * (int64_t)core_dtype_size(d->bdtype);
  dequant_job j = {&shifted, cols, out, out_dtype, emulate};
  int64_t min_rows = (1 << 14) / (cols > 0 ? cols : 1);
  cpu_parallel_for(n, min_rows > 0 ? min_rows : 1, dequant_chunk, &j);
}

/* Inputs w, scales[, biases][, global_scale] as a dequant_src over dense copies. */
static int dequant_source(core_node* node, int first, dequant_src* d, void** owned) {
  const quant_params* p = node->params;
  core_array* w = node->inputs[first];
  core_array* s = node->inputs[first + 1];
  *d = (dequant_src){p, NULL, NULL, NULL, s->dtype, s->dtype, 1.0f};
  d->w = cpu_dense_data(w, &owned[0]);
  d->scales = cpu_dense_data(s, &owned[1]);
  if (!d->w || !d->scales) return 1;
  int next = first + 2;
  if (p->mode == QUANT_AFFINE) {
    core_array* b = node->inputs[next++];
    d->bdtype = b->dtype;
    d->biases = cpu_dense_data(b, &owned[2]);
    if (!d->biases) return 1;
  } else if (p->mode == QUANT_NVFP4 && node->n_inputs > next) {
    core_array* gs = node->inputs[next];
    d->global_scale = quant_load(core_array_ptr(gs), gs->dtype, 0) / (448.0f * 6.0f);
  }
  return 0;
}

int cpu_eval_dequantize(core_node* node, core_array** outputs) {
  core_array* out = outputs[0];
  if (core_array_alloc_contiguous(out)) return 1;
  if (out->size == 0) return 0;
  void* owned[3] = {NULL, NULL, NULL};
  dequant_src d;
  int status = dequant_source(node, 0, &d, owned);
  if (!status) {
    int64_t cols = out->shape[out->ndim - 1];
    dequant_rows(&d, 0, (int64_t)(out->size / (size_t)cols), cols, core_array_ptr(out), out->dtype,
                 true);
  }
  for (int i = 0; i < 3; i++) free(owned[i]);
  return status;
}

/* ---- quantized_matmul ---- */

/* y (M, N) = x (M, K) @ W^T for W (N, K) (transpose) or x @ W for W (K, N), all float32 but W. */
static int qmm_one(const dequant_src* d, bool transpose, const float* x, float* y, int64_t M,
                   int64_t N, int64_t K) {
  const quant_params* p = d->p;
  if (K == 0) {
    memset(y, 0, sizeof(float) * (size_t)(M * N));
    return 0;
  }
  bool shared = p->bits == 2 || p->bits == 4 || p->bits == 8;
  if (transpose && p->mode == QUANT_AFFINE && M <= (shared ? QMM_ROWS_MAX : QMM_ROWS_MAX_ODD))
    return cpu_qgemv_affine(y, x, M, (const uint32_t*)d->w, d->scales, d->biases, d->sdtype,
                            d->bdtype, N, K, p->bits, p->group_size);
  int64_t cols = transpose ? K : N, rows = transpose ? N : K;
  float* block = malloc(sizeof(float) * (size_t)(QMM_BLOCK_ROWS * cols));
  if (!block) return util_error("quantized_matmul: out of memory");
  for (int64_t r0 = 0; r0 < rows; r0 += QMM_BLOCK_ROWS) {
    int64_t n = rows - r0 < QMM_BLOCK_ROWS ? rows - r0 : QMM_BLOCK_ROWS;
    dequant_rows(d, r0, n, cols, block, MLX_FLOAT32, false);
    if (transpose) /* y[:, r0:r0+n] = x @ block^T */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)n, (int)K, 1.0f, x, (int)K,
                  block, (int)K, 0.0f, y + r0, (int)N);
    else /* y += x[:, r0:r0+n] @ block */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)n, 1.0f, x + r0,
                  (int)K, block, (int)N, r0 ? 1.0f : 0.0f, y, (int)N);
  }
  free(block);
  return 0;
}

/* Offset (elements) of batch i's matrix in a dense array broadcast over the output batch. */
typedef struct {
  int64_t strides[CORE_MAX_NDIM];
} batch_walk;

static void batch_strides(const core_array* a, const core_array* out, batch_walk* bw) {
  int64_t dense[CORE_MAX_NDIM];
  core_row_strides(a->shape, a->ndim, dense);
  cpu_broadcast_strides(a->shape, dense, a->ndim - 2, out->shape, out->ndim - 2, bw->strides);
}

static int64_t batch_offset(const batch_walk* bw, const core_array* out, int64_t i) {
  int64_t off = 0;
  for (int d = out->ndim - 3; d >= 0; d--) {
    off += (i % out->shape[d]) * bw->strides[d];
    i /= out->shape[d];
  }
  return off;
}

/* The int32 index of output batch i in idx (shape: the output's batch dims, any strides). */
static int64_t index_at(const core_array* idx, const core_array* out, int64_t i) {
  int64_t off = 0;
  for (int d = out->ndim - 3; d >= 0; d--) {
    off += (i % out->shape[d]) * idx->strides[d];
    i /= out->shape[d];
  }
  return ((const int32_t*)core_array_ptr(idx))[off];
}

/* quantized_matmul (first = 0: inputs x, w, scales[, biases]; batches broadcast) and gather_qmm
 * (first = 1: inputs[0] holds, per output batch, which matrix of the w/scales/biases stack to
 * use, read in place). */
static int qmm_eval(core_node* node, core_array** outputs, int first) {
  const quant_params* p = node->params;
  core_array *x = node->inputs[first], *w = node->inputs[first + 1], *out = outputs[0];
  const core_array* idx = first ? node->inputs[0] : NULL;
  if (core_array_alloc_contiguous(out)) return 1;
  if (out->size == 0) return 0;
  int nd = out->ndim;
  int64_t M = out->shape[nd - 2], N = out->shape[nd - 1], K = x->shape[x->ndim - 1];
  int64_t w_matrix = (int64_t)w->shape[w->ndim - 2] * w->shape[w->ndim - 1];
  int64_t s_matrix = (int64_t)node->inputs[first + 2]->shape[w->ndim - 2] *
                     node->inputs[first + 2]->shape[w->ndim - 1];
  int64_t matrices = 1;
  for (int i = 0; i < w->ndim - 2; i++) matrices *= w->shape[i];
  void* owned[4] = {NULL, NULL, NULL, NULL};
  float *x32 = NULL, *y32 = NULL;
  dequant_src d;
  int status = 0;
  TRY(dequant_source(node, first + 1, &d, owned));
  const char* xd = cpu_dense_data(x, &owned[3]);
  REQUIRE(xd, "quantized_matmul: out of memory");
  x32 = malloc(sizeof(float) * (size_t)(M * K) + 1);
  y32 = malloc(sizeof(float) * (size_t)(M * N) + 1);
  REQUIRE(x32 && y32, "quantized_matmul: out of memory");
  batch_walk bx, bw, bs, bb;
  batch_strides(x, out, &bx);
  if (!idx) {
    batch_strides(w, out, &bw);
    batch_strides(node->inputs[2], out, &bs);
    if (p->mode == QUANT_AFFINE) batch_strides(node->inputs[3], out, &bb);
  }
  size_t selem = core_dtype_size(node->inputs[first + 2]->dtype), xelem = core_dtype_size(x->dtype);
  int64_t batch = (int64_t)(out->size / (size_t)(M * N));
  int mk[2] = {(int)M, (int)K}, mn[2] = {(int)M, (int)N};
  int64_t mk_str[2] = {K, 1}, mn_str[2] = {N, 1};
  for (int64_t i = 0; i < batch; i++) {
    dequant_src di = d;
    int64_t w_off, s_off;
    if (idx) {
      int64_t e = index_at(idx, out, i);
      REQUIRE(e >= 0 && e < matrices, "gather_qmm: index %lld is out of range for %lld matrices",
              (long long)e, (long long)matrices);
      w_off = e * w_matrix;
      s_off = e * s_matrix;
    } else {
      w_off = batch_offset(&bw, out, i);
      s_off = batch_offset(&bs, out, i);
    }
    di.w = d.w + w_off * 4;
    di.scales = (const char*)d.scales + s_off * (int64_t)selem;
    if (p->mode == QUANT_AFFINE) /* biases have the scales' shape: gathered alike */
      di.biases = (const char*)d.biases +
                  (idx ? s_off : batch_offset(&bb, out, i)) * (int64_t)core_dtype_size(d.bdtype);
    cpu_convert(x32, MLX_FLOAT32, xd + batch_offset(&bx, out, i) * (int64_t)xelem, x->dtype, mk,
                mk_str, 2);
    TRY(qmm_one(&di, p->transpose, x32, y32, M, N, K));
    cpu_convert((char*)core_array_ptr(out) + i * M * N * (int64_t)core_dtype_size(out->dtype),
                out->dtype, y32, MLX_FLOAT32, mn, mn_str, 2);
  }
cleanup:
  for (int k = 0; k < 4; k++) free(owned[k]);
  free(x32);
  free(y32);
  return status;
}

int cpu_eval_quantized_matmul(core_node* node, core_array** outputs) {
  return qmm_eval(node, outputs, 0);
}

int cpu_eval_gather_qmm(core_node* node, core_array** outputs) { return qmm_eval(node, outputs, 1); }
