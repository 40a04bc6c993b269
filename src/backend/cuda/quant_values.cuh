// Affine-quantized values as floats without the integer-to-float unit (which runs at a quarter
// of the FMA rate): shared by the quantized GEMVs (qgemv.cu) and the decoder-layer kernel.
#pragma once
#include <stdint.h>

// The exponent bytes the permutes below insert, in constant memory: a PRMT takes one immediate,
// and with both its selector and this word immediate the compiler moved the selector into a
// register before every permute (one extra instruction a quantized value in the GEMVs' inner
// loops). From constant memory the word is an operand of the PRMT itself.
static __constant__ uint32_t quant_exponent_words[2] = {0x4B000000u, 0x3F000000u};

// q (< 2^23) as float: 2^23 + q has q in the mantissa bits of 0x4B000000, and the subtraction
// is exact.
__device__ __forceinline__ float q_to_float(uint32_t q) { return __uint_as_float(q | 0x4B000000u) - 8388608.0f; }

// Byte k of v as the float 2^23 + byte (exact): {byte, 0, 0, 0x4B} by one PRMT.
__device__ __forceinline__ float byte_biased(uint32_t v, int k) {
  return __uint_as_float(__byte_perm(v, quant_exponent_words[0], 0x7540u | (uint32_t)k));
}

// A 4-bit value q held as q << 3 in byte k of v, as the float 0.5 + q / 32 (exact): the byte
// becomes the top of the mantissa under the exponent of 0.5, {0, 0, byte, 0x3F} by one PRMT.
// Unlike 2^23 + q it needs no subtraction before its product: x (0.5 + q / 32) summed over a
// chunk gives sum(x q) = 32 dot - 16 sum(x), with the products still exact.
__device__ __forceinline__ float nibble_half(uint32_t v, int k) {
  return __uint_as_float(__byte_perm(v, quant_exponent_words[1], 0x7054u | ((uint32_t)k << 8)));
}
