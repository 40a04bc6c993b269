/* AVX-512 inner loops of the CPU attention (see attend_avx512.h). Keys and values are converted
 * to float32 a block at a time into a buffer that stays in L1, then every query head of the
 * group runs over the block: a row is converted once for all heads. */
#include "backend/cpu/attend_avx512.h"

#include "backend/cpu/isa.h"

#if CPU_HAVE_X86_KERNELS
#include <immintrin.h>

/* Floats of converted rows per block (16 KB: with q, the scores and the accumulators within L1). */
#define BLOCK_FLOATS 4096
#define MAX_DIM 256

bool attend_avx512_supported(int64_t dim, mlx_dtype dtype, int64_t step) {
  bool type = dtype == MLX_FLOAT32 || dtype == MLX_FLOAT16 || dtype == MLX_BFLOAT16;
  return type && step == 1 && dim > 0 && dim % 16 == 0 && dim <= MAX_DIM &&
         cpu_isa_best() == CPU_ISA_AVX512;
}

/* Rows [0, n) of src (stride elements apart, dtype) as float32 rows of dim values in dst. */
CPU_TARGET_AVX512 static void convert_rows(float* dst, const void* src, int64_t stride,
                                           mlx_dtype dtype, int64_t n, int64_t dim) {
  for (int64_t r = 0; r < n; r++)
    for (int64_t c = 0; c < dim; c += 16) {
      __m512 v;
      if (dtype == MLX_FLOAT32) {
        v = _mm512_loadu_ps((const float*)src + r * stride + c);
      } else {
        __m256i h = _mm256_loadu_si256((const __m256i*)((const uint16_t*)src + r * stride + c));
        v = dtype == MLX_FLOAT16 ? _mm512_cvtph_ps(h)
                                 : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
      }
      _mm512_storeu_ps(dst + r * dim + c, v);
    }
}

/* The sums of the 16 lanes of a, b, c and d in lanes 0..3. */
CPU_TARGET_AVX512 static inline __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  /* per 128-bit block: a, b, c, d partial sums */
  __m512 u = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, 0x44), _mm512_shuffle_ps(ab, cd, 0xEE));
  u = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, _MM_SHUFFLE(1, 0, 3, 2)));
  u = _mm512_add_ps(u, _mm512_shuffle_f32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_castps512_ps128(u);
}

/* q . rows[0..3] (dim values each, rows dim apart) in lanes 0..3. */
CPU_TARGET_AVX512 static inline __m128 dot4(const float* q, const float* rows, int64_t dim) {
  __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t c = 0; c < dim; c += 16) {
    __m512 qv = _mm512_loadu_ps(q + c);
    CPU_TILE_UNROLL
    for (int i = 0; i < 4; i++) a[i] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(rows + i * dim + c), a[i]);
  }
  return sum4(a[0], a[1], a[2], a[3]);
}

CPU_TARGET_AVX512 static inline float dot1(const float* q, const float* row, int64_t dim) {
  __m512 a = _mm512_setzero_ps();
  for (int64_t c = 0; c < dim; c += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(q + c), _mm512_loadu_ps(row + c), a);
  return _mm512_reduce_add_ps(a);
}

CPU_TARGET_AVX512 void attend_avx512_scores(const float* q, int64_t rep, int64_t D, const void* k,
                                            int64_t k_stride, mlx_dtype dtype, int64_t count,
                                            float* scores, int64_t ld) {
  _Alignas(64) float rows[BLOCK_FLOATS];
  size_t es = dtype == MLX_FLOAT32 ? 4 : 2;
  int64_t block = BLOCK_FLOATS / D;
  for (int64_t j0 = 0; j0 < count; j0 += block) {
    int64_t n = count - j0 < block ? count - j0 : block;
    convert_rows(rows, (const char*)k + j0 * k_stride * (int64_t)es, k_stride, dtype, n, D);
    for (int64_t g = 0; g < rep; g++) {
      float* out = scores + g * ld + j0;
      int64_t j = 0;
      for (; j + 4 <= n; j += 4) _mm_storeu_ps(out + j, dot4(q + g * D, rows + j * D, D));
      for (; j < n; j++) out[j] = dot1(q + g * D, rows + j * D, D);
    }
  }
}

/* acc[0..nv) (vectors of 16 values from column c) += sum_j w[j] rows_j, two chains. */
CPU_TARGET_AVX512 static inline void weighted_sum(const float* w, const float* rows, int64_t n,
                                                  int64_t dim, int64_t c, int nv, float* acc) {
  __m512 a[4], b[4];
  CPU_TILE_UNROLL
  for (int i = 0; i < 4; i++) {
    a[i] = i < nv ? _mm512_loadu_ps(acc + c + 16 * i) : _mm512_setzero_ps();
    b[i] = _mm512_setzero_ps();
  }
  int64_t j = 0;
  for (; j + 2 <= n; j += 2) {
    __m512 w0 = _mm512_set1_ps(w[j]), w1 = _mm512_set1_ps(w[j + 1]);
    CPU_TILE_UNROLL
    for (int i = 0; i < 4; i++)
      if (i < nv) {
        a[i] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(rows + j * dim + c + 16 * i), a[i]);
        b[i] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(rows + (j + 1) * dim + c + 16 * i), b[i]);
      }
  }
  if (j < n) {
    __m512 w0 = _mm512_set1_ps(w[j]);
    CPU_TILE_UNROLL
    for (int i = 0; i < 4; i++)
      if (i < nv) a[i] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(rows + j * dim + c + 16 * i), a[i]);
  }
  CPU_TILE_UNROLL
  for (int i = 0; i < 4; i++)
    if (i < nv) _mm512_storeu_ps(acc + c + 16 * i, _mm512_add_ps(a[i], b[i]));
}

CPU_TARGET_AVX512 void attend_avx512_values(const float* w, int64_t ld, int64_t rep, const void* v,
                                            int64_t v_stride, mlx_dtype dtype, int64_t count,
                                            int64_t Dv, float* acc) {
  _Alignas(64) float rows[BLOCK_FLOATS];
  size_t es = dtype == MLX_FLOAT32 ? 4 : 2;
  int64_t block = BLOCK_FLOATS / Dv;
  for (int64_t j0 = 0; j0 < count; j0 += block) {
    int64_t n = count - j0 < block ? count - j0 : block;
    convert_rows(rows, (const char*)v + j0 * v_stride * (int64_t)es, v_stride, dtype, n, Dv);
    for (int64_t g = 0; g < rep; g++)
      for (int64_t c = 0; c < Dv; c += 64) {
        int nv = Dv - c >= 64 ? 4 : (int)((Dv - c) / 16);
        weighted_sum(w + g * ld + j0, rows, n, Dv, c, nv, acc + g * Dv);
      }
  }
}

#else

bool attend_avx512_supported(int64_t dim, mlx_dtype dtype, int64_t step) {
  (void)dim, (void)dtype, (void)step;
  return false;
}

#endif
