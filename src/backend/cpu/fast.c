/* Fused CPU kernels of fast.h: rms_norm, layer_norm, rope and scaled dot-product attention, and
 * mlxc/fast.h's add_rms_norm and rope_kv.
 * All compute in float32 and round once to the output dtype; inputs may be strided views. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/attend_amx.h"
#include "backend/cpu/attend_avx512.h"
#include "backend/cpu/convert.h"
#include "backend/cpu/copy.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/rows.h"
#include "backend/cpu/strided.h"
#include "backend/cpu/threadpool.h"
#include "backend/cpu/vec.h"
#include "ops/fast_params.h"
#include "util/error.h"

/* Element offset of flat row-major index `index` of `a` (any layout). */
static int64_t element_offset(const core_array* a, int64_t index) {
  int64_t off = 0;
  for (int d = a->ndim - 1; d >= 0; d--) {
    int64_t n = a->shape[d];
    off += (index % n) * a->strides[d];
    index /= n;
  }
  return off;
}

/* Loads the whole of a 1-D float input (weight, bias, freqs) as float32. */
static float* load_vector(const core_array* a) {
  float* v = malloc(sizeof(float) * (a->size ? a->size : 1));
  if (!v) {
    util_error("out of memory");
    return NULL;
  }
  cpu_row_to_f32(core_array_ptr(a), a->dtype, a->ndim ? a->strides[a->ndim - 1] : 1, (int64_t)a->size, v);
  return v;
}

/* ---- rms_norm and layer_norm: one row of the last axis at a time ---- */

typedef struct {
  const norm_params* p;
  const core_array *x, *out;
  const float *w, *b;
  int64_t D;
  bool layer;
  int failed;
  const core_array *residual, *sum; /* add_rms_norm: x + residual is written to sum and normalised */
} norm_job;

static void norm_rows(void* ctx, int64_t begin, int64_t end) {
  norm_job* job = ctx;
  const core_array *x = job->x, *out = job->out;
  int64_t D = job->D;
  float* row = malloc(sizeof(float) * (size_t)(D ? D : 1) * (job->residual ? 2 : 1));
  if (!row) {
    job->failed = 1;
    return;
  }
  size_t out_size = core_dtype_size(out->dtype);
  for (int64_t r = begin; r < end; r++) {
    const char* src = (const char*)core_array_ptr(x) +
                      element_offset(x, r * D) * (int64_t)core_dtype_size(x->dtype);
    cpu_row_to_f32(src, x->dtype, x->strides[x->ndim - 1], D, row);
    if (job->residual) { /* the sum rounded to its dtype, as mlx_add would leave it */
      const core_array *res = job->residual, *sum = job->sum;
      float* other = row + D;
      const char* rsrc = (const char*)core_array_ptr(res) + element_offset(res, r * D) * (int64_t)core_dtype_size(res->dtype);
      cpu_row_to_f32(rsrc, res->dtype, res->strides[res->ndim - 1], D, other);
      for (int64_t i = 0; i < D; i++) row[i] += other[i];
      char* sdst = (char*)core_array_ptr(sum) + r * D * (int64_t)core_dtype_size(sum->dtype);
      cpu_row_from_f32(row, sdst, sum->dtype, 1, D);
      cpu_row_to_f32(sdst, sum->dtype, 1, D, row);
    }
    float mean = 0;
    if (job->layer) {
      for (int64_t i = 0; i < D; i++) mean += row[i];
      mean /= (float)D;
    }
    float ss = cpu_vec_sum_sq(row, mean, D);
    float inv = 1.0f / sqrtf(ss / (float)D + job->p->eps);
    char* dst = (char*)core_array_ptr(out) + r * D * (int64_t)out_size;
    for (int64_t i = 0; i < D; i++) row[i] = (row[i] - mean) * inv;
    /* Round the normalised value to the output dtype before the weight, as MLX and
     * transformers do for half precision (bfloat16 in registers: one write of the output). */
    bool affine = job->w || job->b;
    if (affine && out->dtype == MLX_BFLOAT16) {
      cpu_vec_round_bf16(row, D);
    } else if (affine && out->dtype != MLX_FLOAT32) {
      cpu_row_from_f32(row, dst, out->dtype, 1, D);
      cpu_row_to_f32(dst, out->dtype, 1, D, row);
    }
    if (affine) {
      const float *w = job->w, *b = job->b; /* one loop per case, so that each vectorises */
      if (w && b)
        for (int64_t i = 0; i < D; i++) row[i] = row[i] * w[i] + b[i];
      else if (w)
        for (int64_t i = 0; i < D; i++) row[i] *= w[i];
      else
        for (int64_t i = 0; i < D; i++) row[i] += b[i];
    }
    cpu_row_from_f32(row, dst, out->dtype, 1, D);
  }
  free(row);
}

/* rms_norm / layer_norm of input 0; with `fused_add`, add_rms_norm: inputs x, residual,
 * [weight], outputs sum and normed. */
static int eval_norm(core_node* node, core_array** outputs, bool layer, bool fused_add) {
  const norm_params* p = node->params;
  core_array *x = node->inputs[0], *out = outputs[fused_add ? 1 : 0];
  int64_t D = x->ndim ? x->shape[x->ndim - 1] : 1;
  int64_t rows = D ? (int64_t)x->size / D : 0;
  if (core_array_alloc_contiguous(out) || (fused_add && core_array_alloc_contiguous(outputs[0]))) return 1;
  float *w = NULL, *b = NULL;
  int status = 0, next = fused_add ? 2 : 1;
  if (p->has_weight && !(w = load_vector(node->inputs[next++]))) status = 1;
  if (!status && p->has_bias && !(b = load_vector(node->inputs[next++]))) status = 1;
  if (!status) {
    norm_job job = {p, x, out, w, b, D, layer, 0, fused_add ? node->inputs[1] : NULL, fused_add ? outputs[0] : NULL};
    cpu_parallel_for(rows, 1 + (1 << 14) / (D ? D : 1), norm_rows, &job);
    if (job.failed) status = util_error("out of memory");
  }
  free(w);
  free(b);
  return status;
}

int cpu_eval_rms_norm(core_node* node, core_array** outputs) { return eval_norm(node, outputs, false, false); }
int cpu_eval_layer_norm(core_node* node, core_array** outputs) { return eval_norm(node, outputs, true, false); }
int cpu_eval_add_rms_norm(core_node* node, core_array** outputs) { return eval_norm(node, outputs, false, true); }

/* ---- rope ---- */

/* Angles depend only on the position and the pair, so cos/sin are tabulated once per distinct
 * position (rows of other heads and batch items reuse them). */
typedef struct {
  const core_array *x, *out;
  const rope_params* p;
  const float* table;      /* (positions, half, 2): cos, sin */
  int64_t D, L, rows_per_batch, positions_per_batch;
  bool per_batch;          /* one offset per batch item */
  int failed;
} rope_job;

static void rope_rows(void* ctx, int64_t begin, int64_t end) {
  rope_job* job = ctx;
  const core_array *x = job->x, *out = job->out;
  int64_t D = job->D;
  int half = job->p->dims / 2;
  float* row = malloc(sizeof(float) * (size_t)(D ? D : 1));
  if (!row) {
    job->failed = 1;
    return;
  }
  size_t in_size = core_dtype_size(x->dtype), out_size = core_dtype_size(out->dtype);
  for (int64_t r = begin; r < end; r++) {
    const char* src = (const char*)core_array_ptr(x) + element_offset(x, r * D) * (int64_t)in_size;
    cpu_row_to_f32(src, x->dtype, x->strides[x->ndim - 1], D, row);
    int64_t position = r % job->L + (job->per_batch ? (r / job->rows_per_batch) * job->L : 0);
    const float* cs = job->table + position * half * 2;
    for (int i = 0; i < half; i++) {
      int a = job->p->traditional ? 2 * i : i, b = job->p->traditional ? 2 * i + 1 : i + half;
      float c = cs[2 * i], s = cs[2 * i + 1], x1 = row[a], x2 = row[b];
      row[a] = x1 * c - x2 * s;
      row[b] = x1 * s + x2 * c;
    }
    cpu_row_from_f32(row, (char*)core_array_ptr(out) + r * D * (int64_t)out_size, out->dtype, 1, D);
  }
  free(row);
}

/* out (allocated row-major) = RoPE of x, positions starting at offs[0] (offs[b] for batch item
 * b when n_offs > 1), or p->offset without offs. */
static int rope_eval(const rope_params* p, const core_array* x, const float* offs, int64_t n_offs,
                     const core_array* freqs, core_array* out) {
  int64_t D = x->shape[x->ndim - 1], L = x->shape[x->ndim - 2];
  int64_t rows = D ? (int64_t)x->size / D : 0;
  int64_t batch = x->shape[0];
  int half = p->dims / 2;
  if (core_array_alloc_contiguous(out)) return 1;
  bool per_batch = offs && n_offs > 1;
  int64_t positions = per_batch ? batch * L : L;
  float* inv_freq = malloc(sizeof(float) * (size_t)(half ? half : 1));
  int64_t entries = positions * half;
  float* table = malloc(sizeof(float) * 2 * (size_t)(entries > 0 ? entries : 1));
  int status = inv_freq && table ? 0 : util_error("out of memory");
  if (!status && freqs) {
    float* f = load_vector(freqs);
    if (!f) status = 1;
    for (int i = 0; f && i < half; i++) inv_freq[i] = 1.0f / f[i];
    free(f);
  } else if (!status) {
    for (int i = 0; i < half; i++) inv_freq[i] = (float)(1.0 / pow((double)p->base, 2.0 * i / p->dims));
  }
  for (int64_t pos = 0; !status && pos < positions; pos++) {
    float start = offs ? offs[per_batch ? pos / L : 0] : (float)p->offset;
    float position = p->scale * (start + (float)(pos % L));
    for (int i = 0; i < half; i++) {
      float theta = position * inv_freq[i];
      table[(pos * half + i) * 2] = cosf(theta);
      table[(pos * half + i) * 2 + 1] = sinf(theta);
    }
  }
  if (!status) {
    rope_job job = {x, out, p, table, D, L, batch ? rows / batch : 0, L, per_batch, 0};
    cpu_parallel_for(rows, 1 + (1 << 14) / (D ? D : 1), rope_rows, &job);
    if (job.failed) status = util_error("out of memory");
  }
  free(inv_freq);
  free(table);
  return status;
}

int cpu_eval_rope(core_node* node, core_array** outputs) {
  const rope_params* p = node->params;
  int next = 1;
  core_array* offsets = p->has_offset_array ? node->inputs[next++] : NULL;
  core_array* freqs = p->has_freqs ? node->inputs[next++] : NULL;
  float* offs = offsets ? load_vector(offsets) : NULL;
  if (offsets && !offs) return 1;
  int status = rope_eval(p, node->inputs[0], offs, offsets ? (int64_t)offsets->size : 0, freqs, outputs[0]);
  free(offs);
  return status;
}

/* ---- rope_kv: a decode step's RoPE and KV-cache write ---- */

/* out = cache with `update` written from slot `slot` of axis 2, in place when the cache can be
 * donated (nothing else sees it). */
static int write_slots(core_array* out, core_array* cache, const core_array* update, int64_t slot) {
  size_t elem = core_dtype_size(out->dtype);
  if (!core_array_donate(cache, out, -1)) {
    if (core_array_alloc_contiguous(out)) return 1;
    if (out->size)
      cpu_copy_strided(core_array_ptr(out), core_array_ptr(cache), cache->shape, cache->strides, cache->ndim, elem);
  }
  if (update->size)
    cpu_copy_general((char*)core_array_ptr(out) + slot * out->strides[2] * (int64_t)elem, out->strides,
                     core_array_ptr(update), update->strides, update->shape, update->ndim, elem);
  return 0;
}

/* Inputs q, k, v, keys, values, position, [freqs]; outputs the rotated q and both caches. The
 * keys are rotated into a scratch array, then written like the values. */
int cpu_eval_rope_kv(core_node* node, core_array** outputs) {
  const rope_params* p = node->params;
  core_array* const* in = node->inputs;
  core_array *k = in[1], *keys = in[3], *freqs = p->has_freqs ? in[6] : NULL;
  int64_t position, T = keys->shape[2], L = k->shape[2];
  cpu_convert(&position, MLX_INT64, core_array_ptr(in[5]), in[5]->dtype, in[5]->shape, in[5]->strides, in[5]->ndim);
  int64_t slot = position < 0 ? position + T : position; /* as mlx_slice_update_dynamic */
  slot = slot < 0 ? 0 : slot > T - L ? T - L : slot;
  float start = (float)position;
  core_array* rotated = core_array_create(k->shape, k->ndim, keys->dtype);
  int status = rotated ? 0 : 1;
  if (!status) status = rope_eval(p, in[0], &start, 1, freqs, outputs[0]);
  if (!status) status = rope_eval(p, k, &start, 1, freqs, rotated);
  if (!status) status = write_slots(outputs[1], keys, rotated, slot);
  if (!status) status = write_slots(outputs[2], in[4], in[2], slot);
  core_array_release(rotated);
  return status;
}

/* ---- scaled dot-product attention ----
 * Work items are (batch, kv head, query position); the `rep` query heads sharing a kv head go
 * together, so each key and value row is read and converted once for all of them. Decode has few
 * items (one per kv head) but long key ranges, so the keys of an item are split into `splits`
 * ranges that run on different threads: each range yields a partial softmax (its maximum, its
 * sum of exponentials, its unnormalised weighted sum of values) and the partials are merged
 * per item (flash-decoding). */

typedef struct {
  const core_array *q, *k, *v, *mask;
  int64_t mask_strides[4];
  float* sinks;
  const sdpa_params* p;
  core_array* out;
  int64_t splits, split_len; /* key ranges per item, keys per range */
  float* partials;           /* splits > 1: per item and range, rep maxima, rep sums, rep * Dv */
  int failed;
} sdpa_job;

static float mask_value(const sdpa_job* job, int64_t b, int64_t h, int64_t i, int64_t j) {
  const core_array* m = job->mask;
  const int64_t* st = job->mask_strides;
  int64_t off = b * st[0] + h * st[1] + i * st[2] + j * st[3];
  const char* base = core_array_ptr(m);
  if (m->dtype == MLX_BOOL) return ((const bool*)base)[off] ? 0.0f : -INFINITY;
  float v;
  cpu_row_to_f32(base + off * (int64_t)core_dtype_size(m->dtype), m->dtype, 1, 1, &v);
  return v;
}

static int64_t partial_size(const sdpa_job* job) {
  int64_t rep = job->q->shape[1] / job->k->shape[1];
  return rep * (job->v->shape[3] + 2);
}

/* attend_range with the AVX-512 loops over keys [j0, j0 + count), those the causal limit leaves
 * (count <= 0: none); kbase, vbase: row 0 of the kv head's keys and values; scores: room for
 * rep rows of count. */
static void attend_range_avx512(const sdpa_job* job, int64_t b, int64_t kv_head, int64_t i,
                                int64_t j0, int64_t count, const float* qrows, const char* kbase,
                                const char* vbase, float* scores, float* part) {
  const core_array *q = job->q, *k = job->k, *v = job->v;
  int64_t D = q->shape[3], Dv = v->shape[3], rep = q->shape[1] / k->shape[1];
  float *maxima = part, *sums = part + rep, *acc = part + 2 * rep;
  for (int64_t g = 0; g < rep; g++) {
    maxima[g] = -INFINITY;
    sums[g] = 0;
    for (int64_t d = 0; d < Dv; d++) acc[g * Dv + d] = 0;
  }
  if (count <= 0) return;
  size_t ks = core_dtype_size(k->dtype), vs = core_dtype_size(v->dtype);
  const char* kp = kbase + j0 * k->strides[2] * (int64_t)ks;
  const char* vp = vbase + j0 * v->strides[2] * (int64_t)vs;
  bool amx = attend_amx_supported(rep, D, Dv, k->dtype, v->dtype);
  if (amx)
    attend_amx_scores(qrows, rep, D, (const uint16_t*)kp, k->strides[2], count, scores, count);
  else
    attend_avx512_scores(qrows, rep, D, kp, k->strides[2], k->dtype, count, scores, count);
  for (int64_t g = 0; g < rep; g++) {
    float* sc = scores + g * count;
    if (job->mask)
      for (int64_t j = 0; j < count; j++) sc[j] += mask_value(job, b, kv_head * rep + g, i, j0 + j);
    float max = cpu_vec_max(sc, count);
    maxima[g] = max;
    if (max > -INFINITY) sums[g] = (float)cpu_vec_exp_sum(sc, sc, count, max);
    else /* every key masked: weights of zero */
      for (int64_t j = 0; j < count; j++) sc[j] = 0;
  }
  if (amx)
    attend_amx_values(scores, count, rep, (const uint16_t*)vp, v->strides[2], count, Dv, acc);
  else
    attend_avx512_values(scores, count, rep, vp, v->strides[2], v->dtype, count, Dv, acc);
}

/* Keys [j0, j1) of one kv head and query position: `part` <- per query head of the group the
 * maximum score, the sum of exp(score - maximum) and the sum of those weights times the values
 * (maximum -inf and zeros when every key of the range is masked). */
static void attend_range(const sdpa_job* job, int64_t b, int64_t kv_head, int64_t i, int64_t j0,
                         int64_t j1, float* scratch, float* part) {
  const core_array *q = job->q, *k = job->k, *v = job->v;
  int64_t D = q->shape[3], Dv = v->shape[3], Lq = q->shape[2], Lk = k->shape[2];
  int64_t rep = q->shape[1] / k->shape[1], len = j1 - j0;
  float *qrows = scratch, *krow = qrows + rep * D, *scores = krow + (D > Dv ? D : Dv);
  float* dots = scores + rep * len; /* rep floats */
  float *maxima = part, *sums = part + rep, *acc = part + 2 * rep;
  size_t es = core_dtype_size(q->dtype);
  for (int64_t g = 0; g < rep; g++) {
    int64_t h = kv_head * rep + g;
    const char* qp = (const char*)core_array_ptr(q) + (b * q->strides[0] + h * q->strides[1] + i * q->strides[2]) * (int64_t)es;
    cpu_row_to_f32(qp, q->dtype, q->strides[3], D, qrows + g * D);
    for (int64_t d = 0; d < D; d++) qrows[g * D + d] *= job->p->scale;
  }
  int64_t limit = job->p->mask == SDPA_MASK_CAUSAL ? i + (Lk - Lq) : Lk - 1;
  const char* kbase = (const char*)core_array_ptr(k) + (b * k->strides[0] + kv_head * k->strides[1]) * (int64_t)es;
  size_t vs = core_dtype_size(v->dtype);
  const char* vbase = (const char*)core_array_ptr(v) + (b * v->strides[0] + kv_head * v->strides[1]) * (int64_t)vs;
  if (attend_avx512_supported(D, k->dtype, k->strides[3]) &&
      attend_avx512_supported(Dv, v->dtype, v->strides[3])) {
    attend_range_avx512(job, b, kv_head, i, j0, j1 <= limit ? j1 - j0 : limit + 1 - j0, qrows, kbase,
                        vbase, scores, part);
    return;
  }
  for (int64_t j = j0; j < j1; j++) {
    if (j > limit) {
      for (int64_t g = 0; g < rep; g++) scores[g * len + j - j0] = -INFINITY;
      continue;
    }
    cpu_row_to_f32(kbase + j * k->strides[2] * (int64_t)es, k->dtype, k->strides[3], D, krow);
    cpu_vec_dots(qrows, rep, D, krow, D, dots);
    for (int64_t g = 0; g < rep; g++) {
      float dot = dots[g];
      if (job->mask) dot += mask_value(job, b, kv_head * rep + g, i, j);
      scores[g * len + j - j0] = dot;
    }
  }
  for (int64_t g = 0; g < rep; g++) {
    float* sc = scores + g * len;
    float max = -INFINITY, total = 0;
    for (int64_t j = 0; j < len; j++) max = sc[j] > max ? sc[j] : max;
    for (int64_t j = 0; j < len; j++) {
      sc[j] = max > -INFINITY && sc[j] > -INFINITY ? expf(sc[j] - max) : 0.0f;
      total += sc[j];
    }
    maxima[g] = max;
    sums[g] = total;
    for (int64_t d = 0; d < Dv; d++) acc[g * Dv + d] = 0;
  }
  for (int64_t j = j0; j < j1 && j <= limit; j++) {
    cpu_row_to_f32(vbase + j * v->strides[2] * (int64_t)vs, v->dtype, v->strides[3], Dv, krow);
    for (int64_t g = 0; g < rep; g++) {
      float w = scores[g * len + j - j0];
      if (w != 0.0f) cpu_vec_axpy(acc + g * Dv, w, krow, Dv);
    }
  }
}

/* Merges the `count` partials of one item (each partial_size floats apart) with the sinks and
 * writes the item's rep output rows; `out_row` (Dv floats) is scratch. */
static void merge_partials(const sdpa_job* job, int64_t b, int64_t kv_head, int64_t i,
                           const float* parts, int64_t count, float* out_row) {
  int64_t rep = job->q->shape[1] / job->k->shape[1], Dv = job->v->shape[3], Lq = job->q->shape[2];
  int64_t stride = partial_size(job);
  core_array* out = job->out;
  for (int64_t g = 0; g < rep; g++) {
    int64_t h = kv_head * rep + g;
    float max = job->p->has_sinks ? job->sinks[h] : -INFINITY;
    for (int64_t s = 0; s < count; s++) max = parts[s * stride + g] > max ? parts[s * stride + g] : max;
    float total = 0;
    for (int64_t d = 0; d < Dv; d++) out_row[d] = 0;
    if (max > -INFINITY) {
      if (job->p->has_sinks) total = expf(job->sinks[h] - max);
      for (int64_t s = 0; s < count; s++) {
        const float* part = parts + s * stride;
        if (part[g] == -INFINITY) continue;
        float f = expf(part[g] - max);
        total += f * part[rep + g];
        const float* acc = part + 2 * rep + g * Dv;
        for (int64_t d = 0; d < Dv; d++) out_row[d] += f * acc[d];
      }
    }
    /* A row with every key masked attends to nothing: zeros rather than NaN. */
    float inv = total > 0 ? 1.0f / total : 0.0f;
    for (int64_t d = 0; d < Dv; d++) out_row[d] *= inv;
    char* op = (char*)core_array_ptr(out) + ((b * out->shape[1] + h) * Lq + i) * Dv * (int64_t)core_dtype_size(out->dtype);
    cpu_row_from_f32(out_row, op, out->dtype, 1, Dv);
  }
}

/* Work units [begin, end) of the flattened (B, kv_heads, Lq, splits), with scratch of their
 * own; with one split per item the item's output is written at once. */
static void attend_rows(void* ctx, int64_t begin, int64_t end) {
  sdpa_job* job = ctx;
  int64_t K = job->k->shape[1], Lq = job->q->shape[2], Lk = job->k->shape[2];
  int64_t D = job->q->shape[3], Dv = job->v->shape[3], rep = job->q->shape[1] / K;
  int64_t S = job->splits, len = job->split_len, psize = partial_size(job);
  /* q rows, a key/value row, scores, dots (attend_range), then a partial and an output row */
  int64_t range_floats = rep * D + (D > Dv ? D : Dv) + rep * len + rep;
  float* scratch = malloc(sizeof(float) * (size_t)(range_floats + psize + Dv + 1));
  if (!scratch) {
    job->failed = 1;
    return;
  }
  float *part = scratch + range_floats, *out_row = part + psize;
  for (int64_t r = begin; r < end; r++) {
    int64_t item = r / S, s = r % S, j0 = s * len, j1 = j0 + len < Lk ? j0 + len : Lk;
    int64_t b = item / (K * Lq), h = (item / Lq) % K, i = item % Lq;
    float* dst = S > 1 ? job->partials + r * psize : part;
    attend_range(job, b, h, i, j0, j1, scratch, dst);
    if (S == 1) merge_partials(job, b, h, i, part, 1, out_row);
  }
  free(scratch);
}

typedef struct {
  sdpa_job* job;
  int failed;
} merge_job;

static void merge_items(void* ctx, int64_t begin, int64_t end) {
  merge_job* m = ctx;
  sdpa_job* job = m->job;
  int64_t K = job->k->shape[1], Lq = job->q->shape[2];
  float* out_row = malloc(sizeof(float) * (size_t)(job->v->shape[3] + 1));
  if (!out_row) {
    m->failed = 1;
    return;
  }
  for (int64_t item = begin; item < end; item++)
    merge_partials(job, item / (K * Lq), (item / Lq) % K, item % Lq,
                   job->partials + item * job->splits * partial_size(job), job->splits, out_row);
  free(out_row);
}

/* Key ranges per item: enough work units for every thread twice over, ranges of >= 256 keys. */
static int64_t key_splits(int64_t items, int64_t Lk) {
  int64_t want = (2 * (int64_t)cpu_max_threads() + items - 1) / items;
  int64_t most = Lk / 256;
  return want < most ? (want > 1 ? want : 1) : (most > 1 ? most : 1);
}

int cpu_eval_sdpa(core_node* node, core_array** outputs) {
  const sdpa_params* p = node->params;
  sdpa_job job = {node->inputs[0], node->inputs[1], node->inputs[2], NULL, {0}, NULL, p, outputs[0], 1, 0, NULL, 0};
  int next = 3;
  if (p->mask == SDPA_MASK_ARRAY) {
    job.mask = node->inputs[next++];
    int full[4] = {job.q->shape[0], job.q->shape[1], job.q->shape[2], job.k->shape[2]};
    cpu_broadcast_strides(job.mask->shape, job.mask->strides, job.mask->ndim, full, 4, job.mask_strides);
  }
  if (core_array_alloc_contiguous(job.out)) return 1;
  if (p->has_sinks && !(job.sinks = load_vector(node->inputs[next]))) return 1;
  int64_t items = (int64_t)job.q->shape[0] * job.k->shape[1] * job.q->shape[2];
  int64_t Lk = job.k->shape[2];
  job.splits = items > 0 ? key_splits(items, Lk) : 1;
  job.split_len = (Lk + job.splits - 1) / job.splits;
  if (job.splits > 1) {
    job.partials = malloc(sizeof(float) * (size_t)(items * job.splits * partial_size(&job)));
    if (!job.partials) {
      free(job.sinks);
      return util_error("out of memory");
    }
  }
  /* Each unit streams a range of one head's keys and values: worth a thread from 256 keys of 64
   * values on (decode at context 512, AVX-512 loops: 38 us a call on one thread, 22 on two). */
  cpu_parallel_for(items * job.splits, 1 + 16384 / (job.split_len * job.q->shape[3] + 1), attend_rows, &job);
  if (job.splits > 1 && !job.failed) {
    merge_job m = {&job, 0};
    cpu_parallel_for(items, 64, merge_items, &m);
    job.failed = m.failed;
  }
  free(job.partials);
  free(job.sinks);
  return job.failed ? util_error("out of memory") : 0;
}
