/* CPU convolution kernel (MLX's conv_general: strides, padding, kernel and input dilation, groups,
 * flip). The input (N, S..., C) and weight (O, K..., C/G) are widened to dense float32 (float64
 * for float64) copies; each output row (one batch item and output position) then needs one row
 * of patches, gathered by im2col block by block and multiplied with the weight through OpenBLAS
 * sgemm/dgemm. Convolutions with one input channel per group (depthwise, LFM2's short conv) skip
 * the GEMM for a direct loop over taps vectorised across channels; dilated inputs (transposed
 * convolutions) multiply first and gather after, so no FLOPs go to the inserted zeros.
 * float16/bfloat16 outputs are rounded once from the float32 result. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/convert.h"
#include "backend/cpu/isa.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/threadpool.h"
#include "core/allocator.h"
#include "core/half.h"
#include "ops/conv_params.h"
#include "util/error.h"

#if CPU_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

/* Patch blocks stay around this size so they are reused from cache-friendly memory and large
 * convolutions do not need a full im2col matrix. */
#define CONV_BLOCK_BYTES (8u << 20)
/* Elements of work per thread-pool chunk; smaller jobs run inline. */
#define CONV_MIN_CHUNK_WORK 32768

typedef struct {
  int D;                         /* spatial axes */
  int64_t N, C, O, G, Cg, Og;    /* batch, channels in/out, groups, channels per group */
  int64_t S[CONV_MAX_SPATIAL];   /* input spatial sizes */
  int64_t K[CONV_MAX_SPATIAL];   /* kernel sizes */
  int64_t Q[CONV_MAX_SPATIAL];   /* output spatial sizes */
  int64_t in_step[CONV_MAX_SPATIAL]; /* element stride of the dense input along each axis */
  int64_t taps, rows;            /* prod K; N * prod Q (one output row each) */
  /* pos[i][q * K[i] + t]: input index along axis i read by output q and weight tap t, or -1
   * where that lands on padding or between dilated input elements. */
  int* pos[CONV_MAX_SPATIAL];
  /* last_run[q]: along the last axis, output q reads K consecutive in-bounds inputs in tap
   * order, so with one group a row's taps along that axis are one contiguous copy. */
  bool* last_run;
} conv_geom;

static void geom_free(conv_geom* g) {
  for (int i = 0; i < g->D; i++) free(g->pos[i]);
  free(g->last_run);
}

static int geom_init(conv_geom* g, const core_array* x, const core_array* w, const core_array* out,
                     const conv_params* p) {
  memset(g, 0, sizeof *g);
  int D = g->D = p->spatial;
  g->N = x->shape[0];
  g->C = x->shape[D + 1];
  g->O = w->shape[0];
  g->G = p->groups;
  g->Cg = g->C / g->G;
  g->Og = g->O / g->G;
  g->taps = 1;
  g->rows = g->N;
  int64_t step = g->C;
  for (int i = D - 1; i >= 0; i--) {
    g->in_step[i] = step;
    step *= x->shape[i + 1];
  }
  for (int i = 0; i < D; i++) {
    g->S[i] = x->shape[i + 1];
    g->K[i] = w->shape[i + 1];
    g->Q[i] = out->shape[i + 1];
    g->taps *= g->K[i];
    g->rows *= g->Q[i];
    g->pos[i] = malloc(sizeof(int) * (size_t)(g->Q[i] * g->K[i]) + 1);
    if (!g->pos[i]) return util_error("conv: out of memory");
    int64_t dil = p->input_dilation[i], dilated = g->S[i] ? (g->S[i] - 1) * dil + 1 : 0;
    for (int64_t q = 0; q < g->Q[i]; q++)
      for (int64_t t = 0; t < g->K[i]; t++) {
        int64_t tap = p->flip ? g->K[i] - 1 - t : t;
        int64_t at = q * p->stride[i] - p->pad_lo[i] + tap * p->kernel_dilation[i];
        bool hit = at >= 0 && at < dilated && at % dil == 0;
        g->pos[i][q * g->K[i] + t] = hit ? (int)(at / dil) : -1;
      }
  }
  int64_t QL = g->Q[D - 1], KL = g->K[D - 1];
  g->last_run = malloc((size_t)QL + 1);
  if (!g->last_run) return util_error("conv: out of memory");
  for (int64_t q = 0; q < QL; q++) {
    const int* r = g->pos[D - 1] + q * KL;
    bool run = r[0] >= 0;
    for (int64_t t = 1; t < KL && run; t++) run = r[t] == r[0] + t;
    g->last_run[q] = run;
  }
  return 0;
}

/* Splits an output row index into its batch item and output position; returns the element
 * offset of that batch item in the dense input. */
static int64_t row_coords(const conv_geom* g, int64_t r, int64_t* q) {
  for (int i = g->D - 1; i >= 0; i--) {
    q[i] = r % g->Q[i];
    r /= g->Q[i];
  }
  return r * g->S[0] * g->in_step[0];
}

/* Element offset (within a batch item) of the input that weight taps t[0..n) read for output q
 * along the first n axes, or -1 when one of them lands on padding. */
static int64_t tap_offset(const conv_geom* g, const int64_t* q, const int64_t* t, int n) {
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    int p = g->pos[i][q[i] * g->K[i] + t[i]];
    if (p < 0) return -1;
    off += p * g->in_step[i];
  }
  return off;
}

/* Splits a tap index over the first n kernel axes (row-major) into per-axis taps. */
static void tap_coords(const conv_geom* g, int64_t u, int n, int64_t* t) {
  for (int i = n - 1; i >= 0; i--) {
    t[i] = u % g->K[i];
    u /= g->K[i];
  }
}

/* ---- row loops of the direct and gather paths, compiled per instruction set --------------- */

/* acc[i] += x[i] * w[i] and acc[i] += src[i]: the compiler vectorises each for its target. */
#define CONV_ROW_LOOPS(suffix, target)                                                          \
  target static void madd_##suffix(float* restrict acc, const float* restrict x,                \
                                   const float* restrict w, int64_t n) {                        \
    for (int64_t i = 0; i < n; i++) acc[i] += x[i] * w[i];                                      \
  }                                                                                             \
  target static void add_##suffix(float* restrict acc, const float* restrict src, int64_t n) {  \
    for (int64_t i = 0; i < n; i++) acc[i] += src[i];                                           \
  }
CONV_ROW_LOOPS(portable, )
#if CPU_HAVE_X86_KERNELS
CONV_ROW_LOOPS(avx2, CPU_TARGET_AVX2)
CONV_ROW_LOOPS(avx512, CPU_TARGET_AVX512)
#endif

typedef struct {
  void (*madd)(float* restrict, const float* restrict, const float* restrict, int64_t);
  void (*add)(float* restrict, const float* restrict, int64_t);
} row_loops;

static row_loops row_loops_best(void) {
#if CPU_HAVE_X86_KERNELS
  switch (cpu_isa_best()) {
    case CPU_ISA_AVX512: return (row_loops){madd_avx512, add_avx512};
    case CPU_ISA_AVX2: return (row_loops){madd_avx2, add_avx2};
    default: break;
  }
#endif
  return (row_loops){madd_portable, add_portable};
}

/* ---- im2col + GEMM ---------------------------------------------------------------------- */

typedef struct {
  const conv_geom* g;
  const char* x;     /* dense input, elem-sized values */
  char* col;         /* (rows in block, G, taps, Cg) */
  int64_t row0;      /* first output row of the block */
  size_t elem;
} im2col_ctx;

/* Fills the patch rows [begin, end) of the block: for each group, taps in weight order, each
 * with its Cg channels (zeros where a tap reads padding). */
static void im2col_chunk(void* ctx, int64_t begin, int64_t end) {
  const im2col_ctx* c = ctx;
  const conv_geom* g = c->g;
  int D = g->D;
  int64_t KL = g->K[D - 1], outer_taps = g->taps / KL, width = g->G * g->taps * g->Cg;
  size_t run = (size_t)g->Cg * c->elem;
  for (int64_t r = begin; r < end; r++) {
    int64_t q[CONV_MAX_SPATIAL], t[CONV_MAX_SPATIAL];
    const char* xn = c->x + row_coords(g, c->row0 + r, q) * (int64_t)c->elem;
    char* row = c->col + r * width * (int64_t)c->elem;
    const int* last = g->pos[D - 1] + q[D - 1] * KL;
    for (int64_t u = 0; u < outer_taps; u++) {
      tap_coords(g, u, D - 1, t);
      int64_t off = tap_offset(g, q, t, D - 1);
      if (off >= 0 && g->G == 1 && g->last_run[q[D - 1]]) {
        /* K consecutive input positions of all C channels: one copy */
        memcpy(row + u * KL * run, xn + (off + last[0] * g->C) * (int64_t)c->elem, KL * run);
        continue;
      }
      for (int64_t k = 0; k < KL; k++)
        for (int64_t grp = 0; grp < g->G; grp++) {
          char* dst = row + ((grp * g->taps + u * KL + k) * g->Cg) * (int64_t)c->elem;
          if (off < 0 || last[k] < 0)
            memset(dst, 0, run);
          else
            memcpy(dst, xn + (off + last[k] * g->C + grp * g->Cg) * (int64_t)c->elem, run);
        }
    }
  }
}

/* y_g (rows, Og; leading dimension O) = A_g (rows, Kd; leading dimension lda) @ W_g^T, where
 * W_g is (Og, Kd) dense. */
static void gemm_group(bool f64, int64_t rows, const conv_geom* g, const void* a, int64_t lda,
                       const void* w, void* y) {
  int M = (int)rows, Nn = (int)g->Og, Kd = (int)(g->taps * g->Cg);
  if (f64)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, Nn, Kd, 1.0, a, (int)lda, w, Kd, 0.0,
                y, (int)g->O);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, Nn, Kd, 1.0f, a, (int)lda, w, Kd,
                0.0f, y, (int)g->O);
}

/* True when every output row reads exactly its own input row (1x1 kernel, stride 1, no padding,
 * no input dilation): the input itself is the patch matrix. */
static bool is_pointwise(const conv_geom* g, const conv_params* p) {
  for (int i = 0; i < g->D; i++)
    if (g->K[i] != 1 || p->stride[i] != 1 || p->pad_lo[i] != 0 || p->pad_hi[i] != 0 ||
        p->input_dilation[i] != 1)
      return false;
  return true;
}

static int conv_gemm(const conv_geom* g, const conv_params* p, const void* x, const void* w,
                     void* y, bool f64) {
  size_t elem = f64 ? sizeof(double) : sizeof(float);
  int64_t Kd = g->taps * g->Cg, width = g->G * Kd;
  if (is_pointwise(g, p) && g->rows <= 0x7fffffff) {
    for (int64_t grp = 0; grp < g->G; grp++)
      gemm_group(f64, g->rows, g, (const char*)x + grp * g->Cg * (int64_t)elem, g->C,
                 (const char*)w + grp * g->Og * Kd * (int64_t)elem,
                 (char*)y + grp * g->Og * (int64_t)elem);
    return 0;
  }
  int64_t block = (int64_t)(CONV_BLOCK_BYTES / elem) / (width > 0 ? width : 1);
  if (block < 1) block = 1;
  if (block > g->rows) block = g->rows;
  char* col = core_alloc((size_t)(block * width) * elem);
  if (!col) return 1;
  int64_t min_rows = CONV_MIN_CHUNK_WORK / (width > 0 ? width : 1) + 1;
  for (int64_t r0 = 0; r0 < g->rows; r0 += block) {
    int64_t nb = g->rows - r0 < block ? g->rows - r0 : block;
    im2col_ctx c = {g, x, col, r0, elem};
    cpu_parallel_for(nb, min_rows, im2col_chunk, &c);
    for (int64_t grp = 0; grp < g->G; grp++)
      gemm_group(f64, nb, g, col + grp * Kd * (int64_t)elem, width,
                 (const char*)w + grp * g->Og * Kd * (int64_t)elem,
                 (char*)y + (r0 * g->O + grp * g->Og) * (int64_t)elem);
  }
  core_free(col);
  return 0;
}

/* ---- one input channel per group: direct taps ------------------------------------------- */

typedef struct {
  const conv_geom* g;
  row_loops loops;
  const float* x;   /* dense input (N, S..., C) */
  const float* wt;  /* weight transposed to (taps, O) */
  float* y;         /* (rows, O) */
} direct_ctx;

/* y[r, c * Og + j] = sum over taps of x[tap position, c] * w[c * Og + j, tap]. */
static void direct_chunk(void* ctx, int64_t begin, int64_t end) {
  const direct_ctx* c = ctx;
  const conv_geom* g = c->g;
  int64_t C = g->C, Og = g->Og, O = g->O;
  for (int64_t r = begin; r < end; r++) {
    int64_t q[CONV_MAX_SPATIAL], t[CONV_MAX_SPATIAL];
    const float* xn = c->x + row_coords(g, r, q);
    float* restrict acc = c->y + r * O;
    memset(acc, 0, sizeof(float) * (size_t)O);
    for (int64_t u = 0; u < g->taps; u++) {
      tap_coords(g, u, g->D, t);
      int64_t off = tap_offset(g, q, t, g->D);
      if (off < 0) continue;
      const float* restrict xp = xn + off;
      const float* restrict wr = c->wt + u * O;
      if (Og == 1) {
        c->loops.madd(acc, xp, wr, C);
      } else {
        for (int64_t ch = 0; ch < C; ch++)
          for (int64_t j = 0; j < Og; j++) acc[ch * Og + j] += xp[ch] * wr[ch * Og + j];
      }
    }
  }
}

static int conv_direct(const conv_geom* g, const float* x, const float* w, float* y) {
  float* wt = malloc(sizeof(float) * (size_t)(g->taps * g->O) + 1);
  if (!wt) return util_error("conv: out of memory");
  for (int64_t o = 0; o < g->O; o++)
    for (int64_t u = 0; u < g->taps; u++) wt[u * g->O + o] = w[o * g->taps + u];
  direct_ctx c = {g, row_loops_best(), x, wt, y};
  int64_t work = g->taps * g->O;
  cpu_parallel_for(g->rows, CONV_MIN_CHUNK_WORK / (work > 0 ? work : 1) + 1, direct_chunk, &c);
  free(wt);
  return 0;
}

/* ---- dilated inputs (transposed convolutions): GEMM first, then gather ------------------ */

/* With input dilation most patch entries are zeros, so instead of im2col this multiplies every
 * input row by every (tap, output channel) once, cols (input rows, taps, ob) = X_g @ W_block^T,
 * and each output row sums the cols entries its taps read: y[r, o] = sum_t cols[in(r, t), t, o].
 * Output channels go in blocks of ob so cols stays within CONV_COLS_BYTES. */
#define CONV_COLS_BYTES (32u << 20)

typedef struct {
  const conv_geom* g;
  row_loops loops;
  const float* cols;  /* (input rows, taps, ob) */
  float* y;           /* (rows, O), columns [o0, o0 + ob) written */
  int64_t o0, ob;
} gather_ctx;

static void gather_chunk(void* ctx, int64_t begin, int64_t end) {
  const gather_ctx* c = ctx;
  const conv_geom* g = c->g;
  int64_t in_rows_per_item = g->S[0] * g->in_step[0] / g->C, ob = c->ob;
  for (int64_t r = begin; r < end; r++) {
    int64_t q[CONV_MAX_SPATIAL], t[CONV_MAX_SPATIAL];
    int64_t n = row_coords(g, r, q) / (g->S[0] * g->in_step[0]);
    float* restrict acc = c->y + r * g->O + c->o0;
    memset(acc, 0, sizeof(float) * (size_t)ob);
    for (int64_t u = 0; u < g->taps; u++) {
      tap_coords(g, u, g->D, t);
      int64_t off = tap_offset(g, q, t, g->D);
      if (off < 0) continue;
      c->loops.add(acc, c->cols + ((n * in_rows_per_item + off / g->C) * g->taps + u) * ob, ob);
    }
  }
}

static int conv_gather(const conv_geom* g, const float* x, const float* w, float* y) {
  int64_t in_rows = g->N * g->S[0] * g->in_step[0] / g->C, Cg = g->Cg;
  int64_t ob = (int64_t)(CONV_COLS_BYTES / sizeof(float)) / (in_rows * g->taps);
  if (ob < 1) ob = 1;
  if (ob > g->Og) ob = g->Og;
  float* cols = core_alloc(sizeof(float) * (size_t)(in_rows * g->taps * ob));
  float* wb = cols ? malloc(sizeof(float) * (size_t)(g->taps * ob * Cg) + 1) : NULL;
  int status = 0;
  if (!cols) return 1;
  REQUIRE(wb, "conv: out of memory");
  int64_t work = g->taps * ob;
  for (int64_t grp = 0; grp < g->G; grp++)
    for (int64_t o0 = 0; o0 < g->Og; o0 += ob) {
      int64_t nb = g->Og - o0 < ob ? g->Og - o0 : ob, o_first = grp * g->Og + o0;
      /* wb (taps, nb, Cg) from w (O, taps, Cg) */
      for (int64_t u = 0; u < g->taps; u++)
        for (int64_t j = 0; j < nb; j++)
          memcpy(wb + (u * nb + j) * Cg, w + ((o_first + j) * g->taps + u) * Cg,
                 sizeof(float) * (size_t)Cg);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)in_rows, (int)(g->taps * nb),
                  (int)Cg, 1.0f, x + grp * Cg, (int)g->C, wb, (int)Cg, 0.0f, cols,
                  (int)(g->taps * nb));
      gather_ctx c = {g, row_loops_best(), cols, y, o_first, nb};
      cpu_parallel_for(g->rows, CONV_MIN_CHUNK_WORK / (work > 0 ? work : 1) + 1, gather_chunk, &c);
    }
cleanup:
  core_free(cols);
  free(wb);
  return status;
}

/* True when some axis dilates the input: the patch matrix would be mostly zeros. */
static bool dilates_input(const conv_geom* g, const conv_params* p) {
  for (int i = 0; i < g->D; i++)
    if (p->input_dilation[i] > 1) return true;
  return false;
}

/* ---- entry ------------------------------------------------------------------------------ */

typedef struct {
  void* dst;
  const void* src;
  mlx_dtype dst_dtype, src_dtype;
} convert_ctx;

#if CPU_HAVE_X86_KERNELS
/* float32 <-> float16 eight at a time with F16C (round to nearest even, as the scalar code). */
CPU_TARGET_AVX2 static void f32_to_f16_f16c(uint16_t* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128((__m128i*)(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; i++) dst[i] = half_f32_to_f16(src[i]);
}

CPU_TARGET_AVX2 static void f16_to_f32_f16c(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(src + i))));
  for (; i < n; i++) dst[i] = half_f16_to_f32(src[i]);
}
#endif

static void convert_chunk(void* ctx, int64_t begin, int64_t end) {
  const convert_ctx* c = ctx;
#if CPU_HAVE_X86_KERNELS
  if (cpu_isa_supported(CPU_ISA_AVX2)) {
    if (c->src_dtype == MLX_FLOAT32 && c->dst_dtype == MLX_FLOAT16) {
      f32_to_f16_f16c((uint16_t*)c->dst + begin, (const float*)c->src + begin, end - begin);
      return;
    }
    if (c->src_dtype == MLX_FLOAT16 && c->dst_dtype == MLX_FLOAT32) {
      f16_to_f32_f16c((float*)c->dst + begin, (const uint16_t*)c->src + begin, end - begin);
      return;
    }
  }
#endif
  int n = (int)(end - begin);
  int64_t one = 1;
  cpu_convert((char*)c->dst + begin * (int64_t)core_dtype_size(c->dst_dtype), c->dst_dtype,
              (const char*)c->src + begin * (int64_t)core_dtype_size(c->src_dtype), c->src_dtype,
              &n, &one, 1);
}

/* Dense-to-dense dtype conversion of n elements on the thread pool (half-precision rounding is
 * scalar work worth spreading). */
static void convert_dense(void* dst, mlx_dtype dst_dtype, const void* src, mlx_dtype src_dtype,
                          int64_t n) {
  convert_ctx c = {dst, src, dst_dtype, src_dtype};
  cpu_parallel_for(n, CPU_MIN_CHUNK_ELEMENTWISE, convert_chunk, &c);
}

/* `a` as a dense array of `dtype`: its own data when it already is one, else a converted copy
 * in *owned (core_free by the caller). NULL, error reported, when out of memory. Scratch comes
 * from the caching allocator so repeated convolutions do not page-fault fresh memory. */
static const void* dense_as(const core_array* a, mlx_dtype dtype, void** owned) {
  *owned = NULL;
  if (a->dtype == dtype && a->row_contiguous) return core_array_ptr(a);
  *owned = core_alloc(a->size * core_dtype_size(dtype));
  if (!*owned) return NULL;
  if (a->row_contiguous)
    convert_dense(*owned, dtype, core_array_ptr(a), a->dtype, (int64_t)a->size);
  else
    cpu_convert(*owned, dtype, core_array_ptr(a), a->dtype, a->shape, a->strides, a->ndim);
  return *owned;
}

int cpu_eval_conv(core_node* node, core_array** outputs) {
  core_array *x = node->inputs[0], *w = node->inputs[1], *out = outputs[0];
  const conv_params* p = node->params;
  if (core_array_alloc_contiguous(out)) return 1;
  if (out->size == 0) return 0;
  bool f64 = out->dtype == MLX_FLOAT64;
  mlx_dtype work = f64 ? MLX_FLOAT64 : MLX_FLOAT32;
  void *own_x = NULL, *own_w = NULL, *own_y = NULL, *yd = core_array_ptr(out);
  const void *xd = NULL, *wd = NULL;
  conv_geom g;
  int status = geom_init(&g, x, w, out, p);
  if (status) goto cleanup;
  if (x->size == 0) { /* every tap reads padding (or there are no channels): zeros */
    memset(yd, 0, out->size * core_dtype_size(out->dtype));
    goto cleanup;
  }
  xd = dense_as(x, work, &own_x);
  wd = xd ? dense_as(w, work, &own_w) : NULL;
  if (!wd) {
    status = 1;
    goto cleanup;
  }
  if (out->dtype != work) {
    yd = own_y = core_alloc(out->size * sizeof(float));
    if (!yd) {
      status = 1;
      goto cleanup;
    }
  }
  if (!f64 && g.Cg == 1)
    TRY(conv_direct(&g, xd, wd, yd));
  else if (!f64 && dilates_input(&g, p) && g.N * g.S[0] * g.in_step[0] / g.C <= 0x7fffffff)
    TRY(conv_gather(&g, xd, wd, yd));
  else
    TRY(conv_gemm(&g, p, xd, wd, yd, f64));
  if (own_y) convert_dense(core_array_ptr(out), out->dtype, own_y, MLX_FLOAT32, (int64_t)out->size);
cleanup:
  geom_free(&g);
  core_free(own_x);
  core_free(own_w);
  core_free(own_y);
  return status;
}
