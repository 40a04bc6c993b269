/* AMX (bfloat16 tile product) inner loops of the CPU attention (see attend_amx.h). Every tile
 * is 16 rows of 64 bytes: 16 x 32 bfloat16 operands, 16 x 16 float32 results. */
#define _DEFAULT_SOURCE /* syscall() under -std=c11 */
#include "backend/cpu/attend_amx.h"

#include "backend/cpu/isa.h"

#if CPU_HAVE_X86_KERNELS && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CPU_TARGET_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx2,fma,f16c")))

#define MAX_DIM 256
#define MAX_REP 16
/* Keys ahead of the block in hand that the loops ask the cache for. */
#ifndef AMX_PREFETCH_KEYS
#define AMX_PREFETCH_KEYS 64
#endif
/* Linux grants the tile data state to a process that asks (arch_prctl). */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* Set once by amx_probe (pthread_once), read-only afterwards. */
static bool amx_usable;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void) {
  const char* env = getenv("MLXC_CPU_AMX");
  unsigned a, b, c, d;
  if ((env && env[0] == '0') || cpu_isa_best() != CPU_ISA_AVX512) return;
  /* CPUID.(7, 0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE */
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d >> 22 & 1) || !(d >> 24 & 1)) return;
  amx_usable = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

bool attend_amx_supported(int64_t rep, int64_t D, int64_t Dv, mlx_dtype k_dtype, mlx_dtype v_dtype) {
  if (k_dtype != MLX_BFLOAT16 || v_dtype != MLX_BFLOAT16 || rep < 1 || rep > MAX_REP ||
      D % 32 || D > MAX_DIM || Dv % 64 || Dv > MAX_DIM || D < 32 || Dv < 64)
    return false;
  pthread_once(&amx_once, amx_probe);
  return amx_usable;
}

typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} tile_config;

/* All 8 tiles 16 x 64 bytes; the caller ends with _tile_release (a thread that keeps tile state
 * makes every context switch save it). */
CPU_TARGET_AMX static void tiles_begin(void) {
  _Alignas(64) tile_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
}

/* x = sum of the three returned bfloat16 values, exactly: each part is the top half of what
 * the previous ones left (8 significant bits each, 24 in all). */
static void split3(float x, uint16_t part[3]) {
  for (int p = 0; p < 3; p++) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    part[p] = (uint16_t)(bits >> 16);
    bits &= 0xFFFF0000u;
    float top;
    memcpy(&top, &bits, 4);
    x -= top;
  }
}

/* The same for 16 values: parts as 16 bfloat16 each. */
CPU_TARGET_AMX static inline void split3_vec(__m512 x, __m256i part[3]) {
  const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
  for (int p = 0; p < 3; p++) {
    __m512i top = _mm512_and_si512(_mm512_castps_si512(x), high);
    part[p] = _mm512_cvtepi32_epi16(_mm512_srli_epi32(top, 16));
    x = _mm512_sub_ps(x, _mm512_castsi512_ps(top));
  }
}

/* Asks for rows [j, j + n) (of `bytes` each, `stride` elements apart; those past `count`
 * skipped), line by line. */
static inline void prefetch_rows(const uint16_t* base, int64_t stride, int64_t bytes, int64_t j,
                                 int64_t n, int64_t count) {
  for (int64_t r = j; r < j + n && r < count; r++)
    for (int64_t b = 0; b < bytes; b += 64) _mm_prefetch((const char*)(base + r * stride) + b, _MM_HINT_T0);
}

/* Keys are the A operand as they lie in the cache (16 keys x 32 values); q is B in the tiles'
 * pair layout: qt[c][p], row r holds values 32c + 2r and 32c + 2r + 1 of part p of every head
 * (columns = heads). The three parts accumulate into one result tile (keys x heads). */
CPU_TARGET_AMX void attend_amx_scores(const float* q, int64_t rep, int64_t D, const uint16_t* k,
                                      int64_t k_stride, int64_t count, float* scores, int64_t ld) {
  _Alignas(64) uint16_t qt[MAX_DIM / 32][3][16 * 32];
  _Alignas(64) uint16_t tail[16 * MAX_DIM];
  _Alignas(64) float c[16 * 16];
  int64_t chunks = D / 32;
  memset(qt, 0, sizeof qt[0] * (size_t)chunks);
  for (int64_t g = 0; g < rep; g++)
    for (int64_t d = 0; d < D; d++) {
      uint16_t part[3];
      split3(q[g * D + d], part);
      for (int p = 0; p < 3; p++) qt[d / 32][p][(d % 32 / 2) * 32 + g * 2 + d % 2] = part[p];
    }
  tiles_begin();
  for (int64_t j0 = 0; j0 < count; j0 += 16) {
    int64_t n = count - j0 < 16 ? count - j0 : 16;
    const uint16_t* rows = k + j0 * k_stride;
    int64_t stride = k_stride * 2;
    prefetch_rows(k, k_stride, D * 2, j0 + AMX_PREFETCH_KEYS, 16, count);
    if (n < 16) { /* a last, partial block: rows past the keys may not be readable */
      memset(tail, 0, sizeof tail);
      for (int64_t r = 0; r < n; r++) memcpy(tail + r * D, rows + r * k_stride, (size_t)D * 2);
      rows = tail;
      stride = D * 2;
    }
    _tile_zero(0);
    for (int64_t ch = 0; ch < chunks; ch++) {
      _tile_loadd(1, rows + ch * 32, stride);
      _tile_loadd(2, qt[ch][0], 64);
      _tile_loadd(3, qt[ch][1], 64);
      _tile_loadd(4, qt[ch][2], 64);
      _tile_dpbf16ps(0, 1, 2);
      _tile_dpbf16ps(0, 1, 3);
      _tile_dpbf16ps(0, 1, 4);
    }
    _tile_stored(0, c, 64);
    for (int64_t g = 0; g < rep; g++)
      for (int64_t r = 0; r < n; r++) scores[g * ld + j0 + r] = c[r * 16 + g];
  }
  _tile_release();
}

/* The weights of keys [j0, j0 + n) (n <= 32) as the A operand, one tile per part: row g holds
 * head g's 32 weights (zeros past n; rows past rep stay zero). */
CPU_TARGET_AMX static void weight_tiles(const float* w, int64_t ld, int64_t rep, int64_t j0, int64_t n,
                                        uint16_t at[3][16 * 32]) {
  for (int64_t g = 0; g < rep; g++)
    for (int h = 0; h < 2; h++) {
      int64_t m = n - 16 * h;
      __mmask16 keep = m >= 16 ? 0xFFFF : m > 0 ? (__mmask16)((1u << m) - 1) : 0;
      __m256i part[3];
      split3_vec(_mm512_maskz_loadu_ps(keep, w + g * ld + j0 + 16 * h), part);
      for (int p = 0; p < 3; p++) _mm256_store_si256((__m256i*)(at[p] + g * 32 + 16 * h), part[p]);
    }
}

/* Values [d0, d0 + 64) of keys [j0, j0 + n) (n <= 32) as four B operands: row r of a tile pairs
 * keys j0 + 2r and j0 + 2r + 1 value by value (zeros past n). unpacklo/hi interleave within
 * 128-bit lanes, so tile t's column i is value d0 + value_of_column(t, i). */
CPU_TARGET_AMX static void value_tiles(const uint16_t* v, int64_t v_stride, int64_t j0, int64_t n,
                                       int64_t d0, uint16_t bt[4][16 * 32]) {
  for (int64_t r = 0; r < 16; r++) {
    __m512i a[2], b[2];
    for (int h = 0; h < 2; h++) {
      const uint16_t* pa = v + (j0 + 2 * r) * v_stride + d0 + 32 * h;
      a[h] = 2 * r < n ? _mm512_loadu_si512(pa) : _mm512_setzero_si512();
      b[h] = 2 * r + 1 < n ? _mm512_loadu_si512(pa + v_stride) : _mm512_setzero_si512();
      _mm512_store_si512(bt[2 * h] + r * 32, _mm512_unpacklo_epi16(a[h], b[h]));
      _mm512_store_si512(bt[2 * h + 1] + r * 32, _mm512_unpackhi_epi16(a[h], b[h]));
    }
  }
}

/* Which of a tile's 64 values column i of tile t (value_tiles) holds. */
static int value_of_column(int t, int i) { return 32 * (t / 2) + 8 * (i / 4) + 4 * (t % 2) + i % 4; }

/* Result tile T (values of value_tiles' tile T) += the three weight parts times tile T. */
#define VALUES_TILE(T, bt)        \
  do {                            \
    _tile_loadd(7, (bt)[T], 64);  \
    _tile_dpbf16ps(T, 4, 7);      \
    _tile_dpbf16ps(T, 5, 7);      \
    _tile_dpbf16ps(T, 6, 7);      \
  } while (0)

CPU_TARGET_AMX void attend_amx_values(const float* w, int64_t ld, int64_t rep, const uint16_t* v,
                                      int64_t v_stride, int64_t count, int64_t Dv, float* acc) {
  _Alignas(64) uint16_t at[3][16 * 32];
  _Alignas(64) uint16_t bt[4][16 * 32];
  _Alignas(64) float c[4][16 * 16];
  memset(at, 0, sizeof at);
  tiles_begin();
  for (int64_t d0 = 0; d0 < Dv; d0 += 64) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int64_t j0 = 0; j0 < count; j0 += 32) {
      int64_t n = count - j0 < 32 ? count - j0 : 32;
      weight_tiles(w, ld, rep, j0, n, at);
      prefetch_rows(v + d0, v_stride, 128, j0 + AMX_PREFETCH_KEYS, 32, count);
      value_tiles(v, v_stride, j0, n, d0, bt);
      _tile_loadd(4, at[0], 64);
      _tile_loadd(5, at[1], 64);
      _tile_loadd(6, at[2], 64);
      VALUES_TILE(0, bt);
      VALUES_TILE(1, bt);
      VALUES_TILE(2, bt);
      VALUES_TILE(3, bt);
    }
    _tile_stored(0, c[0], 64);
    _tile_stored(1, c[1], 64);
    _tile_stored(2, c[2], 64);
    _tile_stored(3, c[3], 64);
    for (int64_t g = 0; g < rep; g++)
      for (int t = 0; t < 4; t++)
        for (int i = 0; i < 16; i++) acc[g * Dv + d0 + value_of_column(t, i)] += c[t][g * 16 + i];
  }
  _tile_release();
}

#else

bool attend_amx_supported(int64_t rep, int64_t D, int64_t Dv, mlx_dtype k_dtype, mlx_dtype v_dtype) {
  (void)rep, (void)D, (void)Dv, (void)k_dtype, (void)v_dtype;
  return false;
}

void attend_amx_scores(const float* q, int64_t rep, int64_t D, const uint16_t* k, int64_t k_stride,
                       int64_t count, float* scores, int64_t ld) {
  (void)q, (void)rep, (void)D, (void)k, (void)k_stride, (void)count, (void)scores, (void)ld;
}

void attend_amx_values(const float* w, int64_t ld, int64_t rep, const uint16_t* v, int64_t v_stride,
                       int64_t count, int64_t Dv, float* acc) {
  (void)w, (void)ld, (void)rep, (void)v, (void)v_stride, (void)count, (void)Dv, (void)acc;
}

#endif
