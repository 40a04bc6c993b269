/* GGML block formats (io/gguf_quants.h). Each decoder below follows the block layout of ggml's
 * reference dequantizers: a block holds fp16 scale(s) and packed integer quants, and every
 * element is scale * q (- min). K-quants group 256 elements into a super-block whose 16 or 8
 * sub-block scales are themselves quantized against the fp16 super-block scale(s). */
#include "io/gguf_quants.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "backend/cpu/threadpool.h"
#include "core/half.h"

static float f16_at(const uint8_t* p) { return half_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* ---- 32-element blocks ---- */

/* Q4_0: d, qs[16]; element j < 16 is the low nibble of qs[j], element j + 16 the high one. */
static void dequant_q4_0(const uint8_t* b, float* y) {
  float d = f16_at(b);
  for (int j = 0; j < 16; j++) {
    y[j] = d * ((b[2 + j] & 0xF) - 8);
    y[j + 16] = d * ((b[2 + j] >> 4) - 8);
  }
}

/* Q4_1: d, m, qs[16]; value = d * nibble + m. */
static void dequant_q4_1(const uint8_t* b, float* y) {
  float d = f16_at(b), m = f16_at(b + 2);
  for (int j = 0; j < 16; j++) {
    y[j] = d * (b[4 + j] & 0xF) + m;
    y[j + 16] = d * (b[4 + j] >> 4) + m;
  }
}

/* Q5_0 / Q5_1: as Q4_x with a fifth bit per element in the 32-bit word qh (bit j: element j). */
static void dequant_q5(const uint8_t* qh_bytes, const uint8_t* qs, float d, float m, int offset,
                       float* y) {
  uint32_t qh = (uint32_t)qh_bytes[0] | (uint32_t)qh_bytes[1] << 8 | (uint32_t)qh_bytes[2] << 16 |
                (uint32_t)qh_bytes[3] << 24;
  for (int j = 0; j < 16; j++) {
    int lo = (qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
    int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
    y[j] = d * (lo - offset) + m;
    y[j + 16] = d * (hi - offset) + m;
  }
}

static void dequant_q5_0(const uint8_t* b, float* y) {
  dequant_q5(b + 2, b + 6, f16_at(b), 0, 16, y);
}
static void dequant_q5_1(const uint8_t* b, float* y) {
  dequant_q5(b + 4, b + 8, f16_at(b), f16_at(b + 2), 0, y);
}

/* Q8_0: d, int8 qs[32]. */
static void dequant_q8_0(const uint8_t* b, float* y) {
  float d = f16_at(b);
  for (int j = 0; j < 32; j++) y[j] = d * (int8_t)b[2 + j];
}

/* ---- 256-element super-blocks ---- */

/* Q2_K: scales[16] (low nibble: scale, high nibble: min of a 16-element sub-block), qs[64],
 * d, dmin. Each qs byte holds four 2-bit quants: the byte at 32 * half + l, shift 2 * s, is
 * element 128 * half + 32 * s + l. */
static void dequant_q2_k(const uint8_t* b, float* y) {
  const uint8_t *scales = b, *qs = b + 16;
  float d = f16_at(b + 80), dmin = f16_at(b + 82);
  for (int e = 0; e < 256; e++) {
    int half = e / 128, s = (e % 128) / 32, l = e % 32;
    int q = (qs[32 * half + l] >> (2 * s)) & 3;
    uint8_t sc = scales[e / 16];
    y[e] = d * (sc & 0xF) * q - dmin * (sc >> 4);
  }
}

/* Q3_K: hmask[32], qs[64], scales[12], d. Low 2 bits as in Q2_K; the third bit of element e is
 * bit (e / 32) of hmask[e % 32], and a clear bit subtracts 4. Sixteen 6-bit signed scales
 * (offset 32): low 4 bits from nibbles of scales[0..7], high 2 bits from scales[8..11]. */
static int q3_k_scale(const uint8_t* sc, int i) {
  int low = i < 8 ? sc[i] & 0xF : sc[i - 8] >> 4;
  int high = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (low | high << 4) - 32;
}

static void dequant_q3_k(const uint8_t* b, float* y) {
  const uint8_t *hmask = b, *qs = b + 32, *sc = b + 96;
  float d = f16_at(b + 108);
  for (int e = 0; e < 256; e++) {
    int half = e / 128, s = (e % 128) / 32, l = e % 32;
    int q = (qs[32 * half + l] >> (2 * s)) & 3;
    if (!(hmask[l] >> (e / 32) & 1)) q -= 4;
    y[e] = d * q3_k_scale(sc, e / 16) * q;
  }
}

/* Eight 6-bit (scale, min) pairs of Q4_K/Q5_K packed in 12 bytes: pairs 0-3 in the low 6 bits of
 * bytes 0-3 (scales) and 4-7 (mins); pairs 4-7 take their low 4 bits from the nibbles of bytes
 * 8-11 and their high 2 bits from the top bits of bytes 0-3 (scales) and 4-7 (mins). */
static void k4_scale_min(const uint8_t* q, int j, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0xF) | (q[j - 4] >> 6) << 4;
    *min = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
  }
}

/* Q4_K: d, dmin, scales[12], qs[128]; 32-element sub-blocks. Byte 32 * c + l holds element
 * 64 * c + l in its low nibble and 64 * c + 32 + l in its high nibble. */
static void dequant_q4_k(const uint8_t* b, float* y) {
  float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t *sc = b + 4, *qs = b + 16;
  for (int e = 0; e < 256; e++) {
    int c = e / 64, l = e % 32, high = (e % 64) / 32;
    int q = (qs[32 * c + l] >> (4 * high)) & 0xF, scale, min;
    k4_scale_min(sc, e / 32, &scale, &min);
    y[e] = d * scale * q - dmin * min;
  }
}

/* Q5_K: d, dmin, scales[12], qh[32], qs[128]; as Q4_K plus a fifth bit: bit (e / 32) of
 * qh[e % 32]. */
static void dequant_q5_k(const uint8_t* b, float* y) {
  float d = f16_at(b), dmin = f16_at(b + 2);
  const uint8_t *sc = b + 4, *qh = b + 16, *qs = b + 48;
  for (int e = 0; e < 256; e++) {
    int c = e / 64, l = e % 32, high = (e % 64) / 32;
    int q = ((qs[32 * c + l] >> (4 * high)) & 0xF) | ((qh[l] >> (e / 32)) & 1) << 4, scale, min;
    k4_scale_min(sc, e / 32, &scale, &min);
    y[e] = d * scale * q - dmin * min;
  }
}

/* Q6_K: ql[128], qh[64], int8 scales[16], d; 16-element sub-blocks, quants offset by 32.
 * In each 128-element half h, element 32 * s + l (s = 0..3) takes its low 4 bits from
 * ql[64 h + 32 (s % 2) + l] (low nibble for s < 2, high for s >= 2) and its high 2 bits from
 * qh[32 h + l] at shift 2 s. */
static void dequant_q6_k(const uint8_t* b, float* y) {
  const uint8_t *ql = b, *qh = b + 128;
  const int8_t* sc = (const int8_t*)(b + 192);
  float d = f16_at(b + 208);
  for (int e = 0; e < 256; e++) {
    int h = e / 128, s = (e % 128) / 32, l = e % 32;
    int low = (ql[64 * h + 32 * (s % 2) + l] >> (4 * (s / 2))) & 0xF;
    int high = (qh[32 * h + l] >> (2 * s)) & 3;
    y[e] = d * sc[e / 16] * ((low | high << 4) - 32);
  }
}

static const gguf_type types[] = {
    {GGML_F32, "F32", 1, 4, MLX_FLOAT32, NULL, 0},
    {GGML_F16, "F16", 1, 2, MLX_FLOAT16, NULL, 0},
    {GGML_BF16, "BF16", 1, 2, MLX_BFLOAT16, NULL, 0},
    {GGML_F64, "F64", 1, 8, MLX_FLOAT64, NULL, 0},
    {GGML_I8, "I8", 1, 1, MLX_INT8, NULL, 0},
    {GGML_I16, "I16", 1, 2, MLX_INT16, NULL, 0},
    {GGML_I32, "I32", 1, 4, MLX_INT32, NULL, 0},
    {GGML_I64, "I64", 1, 8, MLX_INT64, NULL, 0},
    {GGML_Q4_0, "Q4_0", 32, 18, MLX_FLOAT32, dequant_q4_0, 4},
    {GGML_Q4_1, "Q4_1", 32, 20, MLX_FLOAT32, dequant_q4_1, 4},
    {GGML_Q5_0, "Q5_0", 32, 22, MLX_FLOAT32, dequant_q5_0, 0},
    {GGML_Q5_1, "Q5_1", 32, 24, MLX_FLOAT32, dequant_q5_1, 0},
    {GGML_Q8_0, "Q8_0", 32, 34, MLX_FLOAT32, dequant_q8_0, 8},
    {GGML_Q2_K, "Q2_K", 256, 84, MLX_FLOAT32, dequant_q2_k, 0},
    {GGML_Q3_K, "Q3_K", 256, 110, MLX_FLOAT32, dequant_q3_k, 0},
    {GGML_Q4_K, "Q4_K", 256, 144, MLX_FLOAT32, dequant_q4_k, 0},
    {GGML_Q5_K, "Q5_K", 256, 176, MLX_FLOAT32, dequant_q5_k, 0},
    {GGML_Q6_K, "Q6_K", 256, 210, MLX_FLOAT32, dequant_q6_k, 0},
};
#define TYPE_COUNT (sizeof types / sizeof types[0])

const gguf_type* gguf_type_find(uint32_t id) {
  for (size_t i = 0; i < TYPE_COUNT; i++)
    if (types[i].id == id) return &types[i];
  return NULL;
}

const gguf_type* gguf_type_for_dtype(mlx_dtype dtype) {
  for (size_t i = 0; i < TYPE_COUNT; i++)
    if (!types[i].dequantize && types[i].dtype == dtype) return &types[i];
  return NULL;
}

/* ---- bulk conversion, in parallel over blocks ---- */

typedef struct {
  const gguf_type* t;
  const uint8_t* src;
  void* dst;
  mlx_dtype dtype;
} dequant_job;

static void dequant_chunk(void* p, int64_t begin, int64_t end) {
  dequant_job* job = p;
  int n = job->t->block;
  float y[256];
  for (int64_t i = begin; i < end; i++) {
    job->t->dequantize(job->src + (size_t)i * job->t->block_bytes, y);
    if (job->dtype == MLX_FLOAT32) {
      memcpy((float*)job->dst + (size_t)i * n, y, (size_t)n * sizeof(float));
    } else {
      uint16_t* out = (uint16_t*)job->dst + (size_t)i * n;
      for (int k = 0; k < n; k++)
        out[k] = job->dtype == MLX_FLOAT16 ? half_f32_to_f16(y[k]) : half_f32_to_bf16(y[k]);
    }
  }
}

void gguf_dequantize(const gguf_type* t, const uint8_t* src, size_t n_blocks, void* dst,
                     mlx_dtype dtype) {
  dequant_job job = {t, src, dst, dtype};
  cpu_parallel_for((int64_t)n_blocks, 1024, dequant_chunk, &job);
}

/* One 32-element group: the quants (0..15 or 0..255), the scale and the bias as floats. */
static void affine_group(const gguf_type* t, const uint8_t* b, uint8_t q[32], float* scale,
                         float* bias) {
  if (t->id == GGML_Q8_0) {
    *scale = f16_at(b);
    *bias = -128.0f * *scale;
    for (int j = 0; j < 32; j++) q[j] = (uint8_t)(b[2 + j] ^ 0x80); /* int8 + 128 */
    return;
  }
  const uint8_t* qs = b + (t->id == GGML_Q4_0 ? 2 : 4);
  *scale = f16_at(b);
  *bias = t->id == GGML_Q4_0 ? -8.0f * *scale : f16_at(b + 2);
  for (int j = 0; j < 16; j++) {
    q[j] = qs[j] & 0xF;
    q[j + 16] = qs[j] >> 4;
  }
}

typedef struct {
  const gguf_type* t;
  const uint8_t* src;
  uint32_t* words;
  uint16_t *scales, *biases;
  atomic_bool overflow;
} affine_job;

static void affine_chunk(void* p, int64_t begin, int64_t end) {
  affine_job* job = p;
  int bits = job->t->affine_bits, per_word = 32 / bits;
  for (int64_t i = begin; i < end; i++) {
    uint8_t q[32];
    float scale, bias;
    affine_group(job->t, job->src + (size_t)i * (size_t)job->t->block_bytes, q, &scale, &bias);
    uint32_t* w = job->words + (size_t)i * (size_t)bits; /* 32 `bits`-bit quants: `bits` words */
    for (int k = 0; k < bits; k++) {
      uint32_t word = 0;
      for (int j = 0; j < per_word; j++) word |= (uint32_t)q[k * per_word + j] << (bits * j);
      w[k] = word;
    }
    job->scales[i] = half_f32_to_f16(scale);
    job->biases[i] = half_f32_to_f16(bias);
    if (isfinite(scale) && !isfinite(half_f16_to_f32(job->biases[i])))
      atomic_store(&job->overflow, true);
  }
}

bool gguf_to_affine(const gguf_type* t, const uint8_t* src, size_t n_blocks, uint32_t* words,
                    uint16_t* scales, uint16_t* biases) {
  affine_job job = {t, src, words, scales, biases, false};
  cpu_parallel_for((int64_t)n_blocks, 4096, affine_chunk, &job);
  return !atomic_load(&job.overflow);
}
