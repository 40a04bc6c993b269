// RoPE's per-pair arithmetic, shared by the rope kernels (fused.cu) and the decoder-layer
// kernel (decode_layers.cu), so that both rotate exactly as the CPU kernel does.
#pragma once
#include <math.h>
#include <stdint.h>

#include "backend/cuda/common.cuh"

// The inverse frequency of rotated pair i: 1 / freqs[i] when given, else base^(-2i/dims).
__device__ __forceinline__ float rope_inv_freq(int i, int dims, float base, const void* freqs, int freqs_dtype,
                                               int64_t freqs_stride) {
  return freqs ? __fdiv_rn(1.0f, load_f32(freqs, freqs_dtype, i * freqs_stride))
               : (float)(1.0 / pow((double)base, 2.0 * i / dims));
}

// The cosine and sine of pair i's angle at a position: theta = position * inv_freq, rounded as
// the CPU kernel rounds it.
__device__ __forceinline__ void rope_cos_sin(float position, float inv_freq, float* c, float* sn) {
  const float theta = __fmul_rn(position, inv_freq);
  *c = cosf(theta);
  *sn = sinf(theta);
}

// One pair rotated by an angle's cosine and sine, each product and sum rounded as the CPU kernel's.
__device__ __forceinline__ void rope_apply(float x1, float x2, float c, float sn, float* y1, float* y2) {
  *y1 = __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, sn));
  *y2 = __fadd_rn(__fmul_rn(x1, sn), __fmul_rn(x2, c));
}

// The inverse frequencies from `base` computed on the host, as the CPU kernel computes them (a
// kernel then takes them as an argument: no double-precision pow on its path).
inline void rope_inv_freq_table(float* inv_freq, int dims, float base) {
  for (int i = 0; i < dims / 2; i++) inv_freq[i] = (float)(1.0 / pow((double)base, 2.0 * i / dims));
}

// One pair rotated by position * inv_freq.
__device__ __forceinline__ void rope_rotate(float x1, float x2, float position, float inv_freq, float* y1,
                                            float* y2) {
  float c, sn;
  rope_cos_sin(position, inv_freq, &c, &sn);
  rope_apply(x1, x2, c, sn, y1, y2);
}
