/* The CUDA side of the GPU backend as plain C: raw device memory, transfers and kernel
 * launchers over device pointers and strides. The C glue in dispatch.c and residency.c unpacks
 * graph nodes into these calls (the core's headers use C11 atomics, which CUDA's C++ cannot
 * include). Every function returns 0, or non-zero with an error reported through util_error.
 * Dtypes are mlx_dtype values; strides and offsets are in elements. All work is ordered on the
 * device's stream (one per GPU). */
#ifndef MLXC_BACKEND_CUDA_LAUNCH_H
#define MLXC_BACKEND_CUDA_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops/decode_layers.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GPU_MAX_NDIM 32

/* Memory and transfers (device.cu). */
int gpu_copy_to_host(int device, void* dst, const void* src, size_t nbytes);   /* waits */
int gpu_copy_to_device(int device, void* dst, const void* src, size_t nbytes); /* ordered */
/* Recording a device's stream (graph.cu): between start and stop, allocations, frees and
 * uploads happen outside the recording, and freed blocks are handed over at stop (the graph's
 * replays may write them; they go back to the cache with the graph). */
typedef struct {
  void* ptr;
  size_t nbytes;
} gpu_block;
int gpu_recording_start(int device);
void gpu_recording_stop(int device, gpu_block** kept, size_t* n_kept);
bool gpu_recording(int device);
/* A recorded graph is being launched on the device (its replay may write any buffer). */
void gpu_note_replay(int device);

/* Kernels (kernels.cu). `shape`/`ndim` is the iteration space; dst is written at dst_strides. */
int gpu_launch_copy(int device, void* dst, int dst_dtype, const int64_t* dst_strides,
                    const void* src, int src_dtype, const int64_t* src_strides, const int* shape,
                    int ndim);
/* A window placed at run-time offsets read on the device (dynamic_slice[_update]): start[i *
 * start_stride] (dtype start_dtype) is the offset along a dimension of size dim[i] whose
 * elements are stride[i] apart, for a window of size[i]; negative values count from the end, then
 * the offset is clamped so the window fits. */
#define GPU_MAX_DYN 8
typedef struct {
  const void* start;
  int start_dtype, n;
  int64_t start_stride;
  int64_t dim[GPU_MAX_DYN], size[GPU_MAX_DYN], stride[GPU_MAX_DYN];
} gpu_dynamic_window;
/* Same-dtype copy over shape/ndim with the window's offset added to dst (into_dst, a slice
 * update) or to src (a slice). */
int gpu_launch_copy_dynamic(int device, void* dst, const int64_t* dst_strides, const void* src,
                            const int64_t* src_strides, const int* shape, int ndim, int elem_bytes,
                            const gpu_dynamic_window* w, bool into_dst);
/* out (row-major, out_dtype) = op(a, b); a and b have dtype `dtype` and broadcast strides.
 * op: a binary_code. */
int gpu_launch_binary(int device, int op, int dtype, int out_dtype, void* out, const void* a,
                      const int64_t* a_strides, const void* b, const int64_t* b_strides,
                      const int* shape, int ndim);
/* out (row-major) = op(in); op: a unary_code. */
int gpu_launch_unary(int device, int op, int dtype, void* out, const void* in,
                     const int64_t* in_strides, const int* shape, int ndim);
/* Supported codes, so that dispatch can decline the others before launching. */
bool gpu_binary_supported(int op, int dtype);
bool gpu_unary_supported(int op, int dtype);
bool gpu_copy_supported(int dst_dtype, int src_dtype);
/* Whether gpu_launch_gemm can read operands with these (R, C) strides in place. */
bool gpu_gemm_layout_ok(int64_t M, int64_t N, int64_t K, int64_t a_rs, int64_t a_cs, int64_t b_rs,
                        int64_t b_cs);

/* C (M, N, row-major) = alpha * A @ B + beta * C for `batch` matrices at the given batch strides
 * (elements; 0 broadcasts). A element (m, k) at a + m * a_rs + k * a_cs, likewise B. Needs one
 * of a_rs/a_cs and one of b_rs/b_cs to be 1. float32 (exact fp32), float16, bfloat16 (fp32
 * accumulation). */
int gpu_launch_gemm(int device, int dtype, int64_t M, int64_t N, int64_t K, int64_t batch,
                    const void* a, int64_t a_rs, int64_t a_cs, int64_t a_bs, const void* b,
                    int64_t b_rs, int64_t b_cs, int64_t b_bs, void* c, float alpha, float beta, bool b_settled);
/* The same product (cuBLAS always, no GEMV) into C's rows ldc >= N apart and batches c_bs apart:
 * e.g. each group's columns of a wider output (a grouped convolution). */
int gpu_launch_gemm_into(int device, int dtype, int64_t M, int64_t N, int64_t K, int64_t batch,
                         const void* a, int64_t a_rs, int64_t a_cs, int64_t a_bs, const void* b,
                         int64_t b_rs, int64_t b_cs, int64_t b_bs, void* c, int64_t ldc, int64_t c_bs,
                         float alpha, float beta);

/* The decode GEMV: y (N) = alpha * W x + beta * c, W (N, K) half rows at stride ldw (elements
 * contiguous), x (K) contiguous, c (N) at c_stride (0 broadcasts a scalar) or NULL; float16 or
 * bfloat16, fp32 accumulation and one rounding. gpu_gemv_layout_ok says whether x and W fit. */
bool gpu_gemv_layout_ok(int64_t K, int64_t x_stride, int64_t w_col_stride, int64_t w_row_stride);
int gpu_launch_gemv(int device, int dtype, int64_t N, int64_t K, const void* x, const void* w, int64_t ldw, void* y,
                    float alpha, float beta, const void* c, int64_t c_stride, bool settled);

/* The decode GEMVs' fused ends (mlxc/fast.h). Residual (mlxc_fast_linear_residual of one row):
 * y (N) = res + W x, the product rounded to the dtype first; sumsq[0] (float32) the sum of the
 * squares of y (blocks' parts added by the last block, rms_parts.cuh); scaled = y * norm_weight
 * rounded, when norm_weight is given. res and norm_weight (N) contiguous. Rms
 * (mlxc_fast_rms_norm_linear of one row): y = inv * (W x) (+ bias, one rounding), or the gated
 * form with both sums multiplied by inv before they are rounded, inv = 1 / sqrt(sum / K + eps)
 * from the `parts` partial sums of squares in sumsq (gpu_rms_parts_ok: 1 to 4096 of them).
 * Layouts: half weights as gpu_launch_gemv, quantized ones as gpu_launch_qgemv_affine's direct
 * kernel (gpu_qgemv_supported, x 16-byte aligned, scales of x's dtype). */
int gpu_launch_gemv_residual(int device, int dtype, int64_t N, int64_t K, const void* x, const void* w, int64_t ldw,
                             const void* res, const void* norm_weight, void* y, void* scaled, float* sumsq,
                             bool settled);
int gpu_launch_qgemv_residual(int device, int bits, int group_size, int dtype, int64_t N, int64_t K, const void* x,
                              const void* w, const void* scales, const void* biases, const void* res,
                              const void* norm_weight, void* y, void* scaled, float* sumsq, bool settled);
bool gpu_rms_parts_ok(int64_t parts);
int gpu_launch_gemv_rms(int device, int dtype, int64_t N, int64_t K, const void* x, const void* w, int64_t ldw,
                        const float* sumsq, int parts, float eps, const void* bias, int64_t bias_stride, void* y,
                        bool settled);
int gpu_launch_gated_gemv_rms(int device, int dtype, bool gelu, int64_t D, int64_t K, const void* x, const void* w,
                              int64_t ldw, const float* sumsq, int parts, float eps, void* y, bool settled);
int gpu_launch_qgemv_rms(int device, int bits, int group_size, int dtype, int64_t N, int64_t K, const void* x,
                         const void* w, const void* scales, const void* biases, const float* sumsq, int parts,
                         float eps, const void* bias, int64_t bias_stride, void* y, bool settled);
int gpu_launch_gated_qgemv_rms(int device, int bits, int group_size, int dtype, bool gelu, int64_t D, int64_t K,
                               const void* x, const void* w, const void* scales, const void* biases,
                               const float* sumsq, int parts, float eps, void* y, bool settled);

/* The gated decode GEMVs (mlxc_fast_gated_linear of one row): y (D) = act(W[n] x) * W[n + D] x
 * over the 2D stacked gate/up rows of W, each product rounded to the dtype first, act SiLU or
 * tanh-GELU (gelu): the plain GEMV of the 2D rows followed by glu, bit for bit, in one kernel. x
 * (K) float16/bfloat16 contiguous, y (D) of its dtype. Half W (2D, K) of x's dtype: rows at
 * stride ldw, laid out as gpu_gemv_layout_ok requires (gemm.cu). Affine-quantized W: as
 * gpu_launch_qgemv_affine takes it (gpu_qgemv_supported), scales and biases of x's dtype, x
 * 16-byte aligned (qgemv.cu). */
int gpu_launch_gated_gemv(int device, int dtype, bool gelu, int64_t D, int64_t K, const void* x, const void* w,
                          int64_t ldw, void* y, bool settled);
int gpu_launch_gated_qgemv(int device, int bits, int group_size, int dtype, bool gelu, void* y, const void* x,
                           const void* w, const void* scales, const void* biases, int64_t D, int64_t K, bool settled);

/* A decode step's decoder layers in one persistent kernel (decode_layers.cu; the primitive
 * decode_layers). Per layer: x normalised (input_norm), q/k/v by one stacked linear (+ bias),
 * RoPE of q and k at *position, k and v written into the caches' slot `position`, attention of
 * the H query heads over slots 0..position of their KV head, o_proj added to x (h), h
 * normalised (post_norm), act(gate) * up by the stacked gate/up linear, down added to h: the
 * next layer's x. Weights are either plain (dtype, row-major (N, K)) or affine-quantized (bits 4
 * or 8, packed uint32 rows, scales and biases (N, K / group) of dtype). Caches (KVH, capacity,
 * hd) row-major. Every array's rows start 16-byte aligned. The sizes are the node's params
 * (ops/decode_layers.h). */
typedef struct {
  const void* input_norm;
  const void* post_norm;
  const void* weight[4]; /* qkv, o, gate_up, down */
  const void* scales[4];
  const void* biases[4];
  const void* qkv_bias;  /* NULL: none */
  void* keys;
  void* values;
} gpu_decode_layer;
typedef struct {
  decode_layers_params p; /* sizes, quantization, activation, eps, scales, RoPE base */
  int dtype;              /* of x, the weights (plain) or scales, norms and caches */
  const void* freqs;      /* NULL: RoPE from p.rope_base */
  int freqs_dtype;
  int64_t freqs_stride;
  const void* position; /* int32 on the device */
  const void* x;        /* (D) the first layer's input */
  void* out;            /* (D) the last layer's output */
} gpu_decode_layers_args;
/* Whether the kernel takes these sizes on `device` (shared memory, alignment of row widths):
 * NULL, or why not (a static string). */
const char* gpu_decode_layers_refusal(int device, const gpu_decode_layers_args* a);
int gpu_launch_decode_layers(int device, const gpu_decode_layers_args* a, const gpu_decode_layer* layers);

/* Rows of the last axis: row r of x starts at element offset row_offset(r) computed from the
 * leading dims' shape/strides (lead_ndim of them), elements at x_stride. */
typedef struct {
  int lead_ndim;
  int lead_shape[GPU_MAX_NDIM];
  int64_t lead_strides[GPU_MAX_NDIM];
  int64_t inner_stride;
} gpu_rows;

/* glu (mlxc/fast.h): out (rows, D) contiguous = act(gate) * up, act SiLU or tanh-GELU; gate and
 * up rows anywhere; float32/float16/bfloat16. */
int gpu_launch_glu(int device, int dtype, bool gelu, void* out, const void* gate, gpu_rows gate_rows, const void* up,
                   gpu_rows up_rows, int64_t rows, int64_t D);

int gpu_launch_rms_norm(int device, int dtype, int out_dtype, void* out, const void* x, gpu_rows x_rows,
                        int64_t rows, int64_t D, const void* w, int w_dtype, int64_t w_stride,
                        float eps);
/* Whether the register kernel takes x and weights of these dtypes (half types, float32). */
bool gpu_rms_norm_fast_dtypes(int dtype, int w_dtype);
/* add_rms_norm: sum = x + res (rows of x's dtype, written contiguous), out = rms_norm(sum) * w;
 * supported for half/float32 x and w and D up to 8192 (gpu_add_rms_norm_supported). */
bool gpu_add_rms_norm_supported(int dtype, int w_dtype, int64_t D);
int gpu_launch_add_rms_norm(int device, int dtype, int out_dtype, void* sum, void* out, const void* x,
                            gpu_rows x_rows, const void* res, gpu_rows res_rows, int64_t rows, int64_t D,
                            const void* w, int w_dtype, int64_t w_stride, float eps);
/* x (B, ..., L, D) as rows; position of row r: (r % L) + start, start from offsets (per batch
 * item b = r / rows_per_batch when per_batch) or `offset`. freqs: dims/2 values or NULL. */
int gpu_launch_rope(int device, int dtype, int out_dtype, void* out, const void* x, gpu_rows x_rows,
                    int64_t rows, int64_t D, int64_t L, int64_t rows_per_batch, int dims,
                    bool traditional, float base, float scale, int offset, const void* offsets,
                    int offsets_dtype, int64_t offsets_stride, bool per_batch, const void* freqs,
                    int freqs_dtype, int64_t freqs_stride);

/* Inverse RoPE frequencies a launcher computes on the host and passes in the kernel's arguments
 * (rope_inv_freq_table): up to this many pairs (dims <= 128, every decode model's head). */
#define GPU_ROPE_TABLE 64

/* rope_kv (mlxc/fast.h): q (q_count rows of D) rotated into q_out (row-major); k (k_count rows
 * of D, row r = ((b * Hk + h) * L + l)) rotated into keys' row (r / L) * T + slot + r % L, v's rows
 * (Dv) likewise into values; keys/values row-major (B, Hk, T, D|Dv). slot from `position`
 * (int32 or int64, read on the device) as mlx_slice_update_dynamic resolves it. */
typedef struct {
  void *q_out, *keys, *values;
  const void *q, *k, *v;
  gpu_rows q_rows, k_rows, v_rows;
  int64_t q_count, k_count, v_count, D, Dv, L, T;
  int dims;
  bool traditional;
  float base, scale;
  const void* position;
  int position_dtype;
  const void* freqs;
  int freqs_dtype;
  int64_t freqs_stride;
  float inv_freq[GPU_ROPE_TABLE]; /* set by the launcher from base (no freqs, dims <= 2 * GPU_ROPE_TABLE) */
} gpu_rope_kv_args;
/* dtype: float32, float16 or bfloat16, that of all five arrays. */
int gpu_launch_rope_kv(int device, int dtype, const gpu_rope_kv_args* args);

typedef struct {
  int B, Hq, Hk, Lq, Lk, D, Dv;
  int64_t q_st[4], k_st[4], v_st[4]; /* (b, h, l, d) strides */
  float scale;
  bool causal;
  const void* mask; /* NULL, bool or float (mask_dtype) with broadcast strides mask_st */
  int mask_dtype;
  int64_t mask_st[4];
  const void* sinks; /* NULL or Hq values of sinks_dtype at sinks_stride */
  int sinks_dtype;
  int64_t sinks_stride;
} gpu_sdpa_args;
/* out (B, Hq, Lq, Dv) row-major; q, k, v share `dtype` (float32, float16 or bfloat16) and
 * D, Dv <= 256. */
int gpu_launch_sdpa(int device, int dtype, int out_dtype, void* out, const void* q, const void* k, const void* v,
                    const gpu_sdpa_args* args);
/* The decode case (attention_decode.cu): Lq == 1, float16/bfloat16, D == Dv in {64, 128, 256},
 * K/V rows contiguous and 16-byte aligned, at most 8 query heads per KV head. Returns -1 (nothing
 * done, no error) for other shapes, otherwise 0 or 1 as the launchers. */
int gpu_launch_sdpa_decode(int device, int dtype, int out_dtype, void* out, const void* q,
                           const void* k, const void* v, const gpu_sdpa_args* args);

/* rope_kv_sdpa in one kernel (attention_decode.cu): the decode attention of
 * gpu_launch_sdpa_decode over the updated caches keys and values (k_st, v_st of args), with q
 * rotated inside it and the new key row (k_new, rotated) and value row (v_new) written at the
 * cache slot from `position` (as rope_kv resolves it: mlx_slice_update_dynamic's rule). */
typedef struct {
  const void *k_new, *v_new; /* (B, Hk, 1, D) with strides kn_st, vn_st */
  int64_t kn_st[4], vn_st[4];
  int dims;
  bool traditional;
  float base, scale;
  const void* position; /* int32 or int64 (position_dtype), read on the device */
  int position_dtype;
  const void* freqs;
  int freqs_dtype;
  int64_t freqs_stride;
  bool settled; /* no write to position or freqs can still be running: the angles before the chain wait */
  bool cache_settled; /* the caches updated in place and no write to them still running: the first tile early */
  float inv_freq[GPU_ROPE_TABLE]; /* set by the launcher from base (no freqs) */
} gpu_decode_rope_args;
/* float16/bfloat16, Lq == 1, D == Dv in {64, 128}, at most 16 query heads per KV head, cache
 * rows contiguous and 16-byte aligned; returns -1 (nothing done, no error) otherwise, or where
 * MLXC_ROPE_ATTN=0 or MLXC_DECODE_ATTN_SCALAR=1 ask for the separate kernels. */
int gpu_launch_sdpa_decode_rope(int device, int dtype, int out_dtype, void* out, const void* q, void* keys,
                                void* values, const gpu_sdpa_args* args, const gpu_decode_rope_args* rope);

/* Many queries (prefill, attention_prefill.cu): float16/bfloat16 on tensor cores, D == Dv in
 * {64, 128}, Lq >= 16, rows contiguous along D and 16-byte aligned, no sinks. Returns -1 (nothing
 * done, no error) for other cases, otherwise 0 or 1 as the launchers. */
int gpu_launch_sdpa_prefill(int device, int dtype, int out_dtype, void* out, const void* q, const void* k,
                            const void* v, const gpu_sdpa_args* args);

/* Many queries (Lq >= 2) over keys in tiles, any float dtype, D and Dv <= 128, any strides,
 * masks, causal, sinks (attention_rows.cu): what the tensor-core kernel declines, e.g. float32
 * encoders. Returns -1 (nothing done, no error) for other cases, otherwise 0 or 1. */
int gpu_launch_sdpa_rows(int device, int dtype, int out_dtype, void* out, const void* q, const void* k,
                         const void* v, const gpu_sdpa_args* args);

/* layer_norm over the last axis (rows.cu): w and b optional (NULL), 1-D at their strides. */
int gpu_launch_layer_norm(int device, int dtype, int out_dtype, void* out, const void* x,
                          gpu_rows x_rows, int64_t rows, int64_t D, const void* w, int w_dtype,
                          int64_t w_stride, const void* b, int b_dtype, int64_t b_stride, float eps);
/* One value per row of the last axis (rows.cu): op 0 sum, 1 max (NaN propagates), 2 mean;
 * float inputs and outputs, accumulated in double. */
int gpu_launch_reduce_last(int device, int op, int dtype, int out_dtype, void* out, const void* x,
                           gpu_rows x_rows, int64_t rows, int64_t D);
/* out (row-major, elements of elem_size bytes: 1, 2, 4 or 8) = cond ? a : b with broadcast
 * strides over shape (rows.cu). */
int gpu_launch_select(int device, size_t elem_size, void* out, const bool* cond,
                      const int64_t* c_strides, const void* a, const int64_t* a_strides,
                      const void* b, const int64_t* b_strides, const int* shape, int ndim);
/* y (N) = W x for affine-quantized W (N, K) in MLX's packing, 4 or 8 bits, groups of 32, 64 or
 * 128; scales/biases (N, K / group) dense of s_dtype; w 16-byte aligned (qgemv.cu). */
bool gpu_qgemv_supported(int bits, int group_size, int64_t K);
int gpu_launch_qgemv_affine(int device, int bits, int group_size, void* y, int y_dtype,
                            const void* x, int x_dtype, int64_t x_stride, const void* w,
                            const void* scales, const void* biases, int s_dtype, int64_t N,
                            int64_t K, bool settled);

/* out (rows, cols) of out_dtype = scale * q + bias for affine-quantized w (rows, cols * bits / 8
 * bytes, bits 2..8, dense) with dense (rows, cols / group_size) scales and biases (dequant.cu).
 * With `emulate`, MLX's dequantize roundings: the product in s_dtype, the sum in sum_dtype. */
int gpu_launch_dequantize_affine(int device, void* out, int out_dtype, const void* w, const void* scales,
                                 int s_dtype, const void* biases, int b_dtype, int sum_dtype, int64_t rows,
                                 int64_t cols, int bits, int group_size, bool emulate);

/* Softmax over the contiguous-or-strided last axis of `rows` rows; out row-major. */
int gpu_launch_softmax(int device, int dtype, int out_dtype, void* out, const void* x, gpu_rows x_rows,
                       int64_t rows, int64_t D);
/* Index of the first maximum (first NaN wins) of each row, as uint32. */
int gpu_launch_argmax(int device, int dtype, uint32_t* out, const void* x, gpu_rows x_rows,
                      int64_t rows, int64_t D);
/* Few long rows (long_rows.cu): each row split across blocks. op: 0 sum, 1 max, 2 mean,
 * 3 logsumexp (out_dtype float), 4 argmax (out uint32); x a float dtype. */
bool gpu_long_rows(int64_t rows, int64_t D);
/* Whether the long-row kernel's grid holds `rows` rows of D (its limits on blocks). */
bool gpu_long_rows_fit(int64_t rows, int64_t D);
int gpu_launch_long_rows(int device, int op, int dtype, int out_dtype, void* out, const void* x,
                         gpu_rows x_rows, int64_t rows, int64_t D);
/* argmax_lse (mlxc_fast_argmax_logsumexp) over `rows` rows of D, float32 or half (argmax_lse.cu;
 * gpu_argmax_lse_fits: rows and D / 4,096 at most 65,535): index (uint32), the value there
 * (value_dtype) and the log-sum-exp (lse_dtype) in float arithmetic, one per row, from one read
 * of the row. */
bool gpu_argmax_lse_fits(int dtype, int64_t rows, int64_t D);
int gpu_launch_argmax_lse(int device, int dtype, void* index, void* value, int value_dtype, void* lse, int lse_dtype,
                          const void* x, gpu_rows x_rows, int64_t rows, int64_t D);
/* softmax of few long rows (gpu_long_rows) with the rows' statistics from split blocks: the one-block
 * kernel walked a 150k vocabulary row in ~500 us. */
int gpu_launch_softmax_long_rows(int device, int dtype, int out_dtype, void* out, const void* x,
                                 gpu_rows x_rows, int64_t rows, int64_t D);
/* out (n, inner...) = table[idx[i], inner...]: rows of a (V, inner) table selected by n indices
 * (idx_dtype, at idx strides over idx_shape); negative indices wrap; out-of-range rows become
 * zeros (dispatch checks host-resident indices first and reports them as the CPU does). */
int gpu_launch_take_rows(int device, int dtype, void* out, const void* table, int64_t V,
                         int64_t table_row_stride, const int* inner_shape,
                         const int64_t* inner_strides, int inner_ndim, const void* idx,
                         int idx_dtype, const int* idx_shape, const int64_t* idx_strides,
                         int idx_ndim);

/* ---- elementwise_more (elementwise_more.cu, creation.cu, pad.cu) ---- */

/* floor_divide, remainder, bitwise_and/or/xor, left/right_shift, nan_equal over every real
 * dtype the CPU takes (bool out for nan_equal), as gpu_launch_binary. */
bool gpu_binary_more_supported(int op, int dtype);
int gpu_launch_binary_more(int device, int op, int dtype, void* out, const void* a, const int64_t* a_strides,
                           const void* b, const int64_t* b_strides, const int* shape, int ndim);
/* nan_to_num's replacements (unary_params). */
typedef struct {
  double nan, posinf, neginf;
} gpu_nan_to_num;
/* logical_not, bitwise_invert, isnan, isinf, isfinite, isposinf, isneginf (bool out except
 * bitwise_invert) and nan_to_num (replace, else NULL), as gpu_launch_unary. */
bool gpu_unary_more_supported(int op, int dtype);
int gpu_launch_unary_more(int device, int op, int dtype, void* out, const void* in, const int64_t* in_strides,
                          const int* shape, int ndim, const gpu_nan_to_num* replace);

/* arange (start + i step) and linspace (start (1 - t) + stop t, t = i / (n - 1)) of n elements
 * of dtype (real, not bool), computed as the CPU computes them in long double with a
 * significand of ldbl_bits (64: x87; 53; or >= 106, treated as exact), then converted as
 * cpu_store_real. Integer dtypes of 64 bits need |values| < 2^53 (the caller checks). */
int gpu_launch_arange(int device, int dtype, void* out, int64_t n, double start, double step, int ldbl_bits);
int gpu_launch_linspace(int device, int dtype, void* out, int64_t n, double start, double stop, int ldbl_bits);
/* eye/tri/tril/triu: out (..., rows, cols) row-major of elem_bytes (1, 2, 4, 8); element (i, j)
 * kept when j - i == k (code TRIANGLE_EYE), <= k (LOWER), >= k (UPPER); kept elements are
 * `one` (its low elem_bytes bytes) or, with in, in's element at in_strides over out's shape;
 * the others zero. */
int gpu_launch_triangle(int device, int code, int k, int elem_bytes, void* out, const int* shape, int ndim,
                        uint64_t one, const void* in, const int64_t* in_strides);
/* hamming/hanning/bartlett/blackman (a window_code) of n float32 points, in double as the CPU. */
int gpu_launch_window(int device, int code, float* out, int64_t n);
/* pad: out (row-major, shape) from in (in_shape at in_strides) placed at `low`; elsewhere the
 * element at `value` (constant) or the nearest border element of in (edge). elem_bytes 1/2/4/8. */
int gpu_launch_pad(int device, int elem_bytes, void* out, const int* shape, int ndim, const void* in,
                   const int* in_shape, const int64_t* in_strides, const int* low, const void* value, bool edge);
/* ---- sort family (sort.cu, along_axis.cu, quantize.cu) ---- */

/* Sort, argsort, partition, argpartition of `lines` lines of n elements: line r of the input
 * starts at gpu_row_offset(in_lines, r) with elements in_lines.inner_stride apart, likewise the
 * output (out_lines). Items compare as the CPU's (cpu/sort.c): by value (floats as doubles, -0 ==
 * 0, NaN after every number; integers and bool by value, uint64 unsigned), then by index, so the
 * order is total and the results equal the CPU's. Sorts are bitonic on padded lines; partitions run
 * the CPU's quickselect (one thread per line), which moves items exactly as it does. indices: out
 * is uint32 indices, else values of dtype. dtype: bool, integers, float16/bfloat16/32/64. */
int gpu_launch_sort(int device, int dtype, bool indices, bool partition, int64_t kth, void* out, const void* in,
                    const gpu_rows* in_lines, const gpu_rows* out_lines, int64_t lines, int64_t n);

/* take_along_axis / put_along_axis over `shape` (ndim dims, the indices' broadcast shape): the
 * element at row-major position p has coordinates c; its index v = idx[c] (negative wraps, axis
 * size axis_n) selects element (c with c[axis] = v) of the indexed array at indexed_strides (0
 * where it broadcasts; the axis entry is the step along the axis); `other` (the output of take,
 * the values of put) is read or written at other_strides. take: out[c] = a[...] (out-of-range
 * indices give zeros). put: out (row-major, already holding a copy of a) gets values[c] at each
 * target; when several positions target one element the last in row-major order wins, as on the
 * CPU (out-of-range indices are skipped). elem_bytes: 1, 2, 4 or 8. */
typedef struct {
  int ndim, axis;
  int shape[GPU_MAX_NDIM];
  int64_t indexed_strides[GPU_MAX_NDIM], idx_strides[GPU_MAX_NDIM], other_strides[GPU_MAX_NDIM];
  int64_t axis_n;
  int idx_dtype;
} gpu_along;
int gpu_launch_take_along_axis(int device, int elem_bytes, void* out, const void* a, const void* idx,
                               const gpu_along* g);
/* out_size: elements of out. */
int gpu_launch_put_along_axis(int device, int elem_bytes, void* out, int64_t out_size, const void* values,
                              const void* idx, const gpu_along* g);

/* Affine quantization in MLX's layout, bit for bit as cpu_eval_quantize: w rows (rows of K
 * values of w_dtype, float32/float16/bfloat16, row r at gpu_row_offset(w_rows, r), elements
 * w_rows.inner_stride apart) into packed (rows, K * bits / 8 bytes, LSB-first bit stream),
 * scales and biases (rows, K / group_size) of w_dtype; bits 1..8, groups 32/64/128. */
int gpu_launch_quantize_affine(int device, int w_dtype, const void* w, const gpu_rows* w_rows, int64_t rows,
                               int64_t K, int bits, int group_size, void* packed, void* scales, void* biases);
/* ---- Convolution (conv.cu): MLX's conv_general, channels last ---- */
#define GPU_CONV_MAX_SPATIAL 3
/* An input (N, S..., C) read at x_strides, convolved over D spatial axes into outputs (N, Q...,
 * O): the input dilated by input_dilation, padded by pad_lo below, taps kernel_dilation apart,
 * windows stride apart, taps reversed when flip (ops/conv_params.h). */
typedef struct {
  int D;
  int64_t N, C, G;
  int64_t S[GPU_CONV_MAX_SPATIAL], K[GPU_CONV_MAX_SPATIAL], Q[GPU_CONV_MAX_SPATIAL];
  int64_t stride[GPU_CONV_MAX_SPATIAL], pad_lo[GPU_CONV_MAX_SPATIAL];
  int64_t kernel_dilation[GPU_CONV_MAX_SPATIAL], input_dilation[GPU_CONV_MAX_SPATIAL];
  bool flip;
  int64_t x_strides[GPU_CONV_MAX_SPATIAL + 2];
} gpu_conv_shape;
/* col (rows, G, taps, C / G) row-major, for the output rows [row0, row0 + rows) (row = (n, q...)
 * row-major): the input value each weight tap of the row reads, 0 where it reads padding or a
 * hole of the dilated input. Elements of elem_size bytes (2 or 4); every input element exists
 * (S > 0). */
int gpu_launch_im2col(int device, size_t elem_size, void* col, const void* x, const gpu_conv_shape* shape,
                      int64_t row0, int64_t rows);
/* random_bits (random.cu): bytes_per_key bytes per key at out + k * bytes_per_key from key k (two
 * uint32 at row k of key_rows, inner_stride apart), Threefry-2x32 laid out as the CPU kernel. */
int gpu_launch_random_bits(int device, void* out, const uint32_t* keys, gpu_rows key_rows, int64_t num_keys,
                           int64_t bytes_per_key);
/* nbytes zero bytes at p, ordered on the device's stream. */
int gpu_launch_zero(int device, void* p, size_t nbytes);
/* ---- reductions, softmax and scans over any axes (reduce.cu) ---- */
/* An array split into groups, as cpu_reduce_plan (backend/cpu/reduce_plan.h) splits it: the kept
 * dims index the groups (row-major: group g is element g of a reduction's output), the reduced
 * dims a group's elements (row-major among those dims). Strides per operand: 0 the input, 1 an
 * output of the input's shape (softmax, scans). */
typedef struct {
  int n_kept, n_reduced;
  int kept_shape[GPU_MAX_NDIM], reduced_shape[GPU_MAX_NDIM];
  int64_t kept_strides[2][GPU_MAX_NDIM], reduced_strides[2][GPU_MAX_NDIM];
  int64_t groups, group_size;
} gpu_group_plan;
/* complex_parts.cu: out (row-major, n elements of x's shape) <- part of complex64 x (element
 * strides): GPU_COMPLEX_CONJUGATE into complex64, GPU_COMPLEX_REAL / GPU_COMPLEX_IMAG into float32. */
enum { GPU_COMPLEX_CONJUGATE, GPU_COMPLEX_REAL, GPU_COMPLEX_IMAG };
int gpu_launch_complex_part(int device, int part, void* out, const void* x, const int64_t* strides, const int* shape,
                            int ndim);

/* fft.cu (cuFFT, double precision): the CPU kernel's steps. A work buffer of work_shape (each
 * transformed axis at its signal length) loaded from the `box` of `in` (float32 or complex64, at
 * in_strides; zeros elsewhere), a complex transform along each of `axes` in order (irfft: the last
 * one's upper half filled by Hermitian symmetry first), then out (row-major out_shape: complex64,
 * or float32 real parts for irfft) = the work's leading part times scale. Waits for the work. */
int gpu_launch_fft(int device, const void* in, bool complex_in, const int64_t* in_strides, const int* box,
                   const int* work_shape, int ndim, const int* axes, int n_axes, bool inverse, bool irfft, void* out,
                   const int* out_shape, double scale);

/* A batch of (rows, cols) float32/float64 matrices at any strides (linalg.cu): matrix b starts
 * at the row-major position b over the batch dims. */
typedef struct {
  int nbatch;
  int batch_shape[GPU_MAX_NDIM];
  int64_t batch_strides[GPU_MAX_NDIM];
  int rows, cols;
  int64_t rs, cs;
  int dtype;
  const void* data;
} gpu_matrices;
/* cuSOLVER in double, as the CPU's LAPACK kernels: `count` matrices into row-major outputs of
 * out_dtype (float32/float64). They wait for the batch and fail with the CPU's messages for a
 * non-positive-definite or singular matrix, and for NaN or infinity in the input. solve: x with
 * a x = b, or a's inverse when b is NULL (op names the caller in messages). lu_factor: LU, getrf's
 * swaps 0-based (min(rows, cols) a matrix) and the rows with A[i] = (LU)[rows[i]]. */
int gpu_linalg_cholesky(int device, const gpu_matrices* a, int64_t count, bool upper, void* out, int out_dtype);
int gpu_linalg_solve(int device, const gpu_matrices* a, const gpu_matrices* b, int64_t count, void* out,
                     int out_dtype, const char* op);
/* The triangular forms (cuBLAS trsm, reading a's upper or lower triangle): x with a x = b, or a's
 * inverse (the other triangle zero) when b is NULL; a zero on the diagonal fails as singular. */
int gpu_linalg_triangular(int device, const gpu_matrices* a, const gpu_matrices* b, int64_t count, bool upper,
                          void* out, int out_dtype, const char* op);
int gpu_linalg_lu_factor(int device, const gpu_matrices* a, int64_t count, void* lu, int lu_dtype, uint32_t* piv,
                         uint32_t* rows);
/* qr: Q (rows, k) and R (k, cols) for k = min(rows, cols) (geqrf, orgqr). eigh: the eigenvalues
 * ascending and, when vectors is not NULL, the eigenvectors as columns (syevd reading the upper
 * or lower triangle). */
int gpu_linalg_qr(int device, const gpu_matrices* a, int64_t count, void* q, void* r, int out_dtype);
int gpu_linalg_eigh(int device, const gpu_matrices* a, int64_t count, bool upper, void* values, void* vectors,
                    int out_dtype);
/* svd: S (min(rows, cols) a matrix, descending) and, when u is not NULL, U (rows, rows) and
 * Vᵀ (cols, cols). */
int gpu_linalg_svd(int device, const gpu_matrices* a, int64_t count, void* u, void* s, void* vt, int out_dtype);
/* eig: complex64 eigenvalues (n a matrix) and, when vectors is not NULL, complex64 right
 * eigenvectors as columns, as the CPU's geev kernel writes them. */
int gpu_linalg_eig(int device, const gpu_matrices* a, int64_t count, void* values, void* vectors);

/* out[g] (row-major, out_dtype) = reduction `code` (a reduce_code) of group g of x (any real
 * dtype); ddof for var and std. REDUCE_MEDIAN takes groups of 1 to GPU_MEDIAN_MAX values (sorted
 * in shared memory; callers decline larger ones to the CPU). */
#define GPU_MEDIAN_MAX 4096
int gpu_launch_reduce(int device, int code, int dtype, int out_dtype, int ddof, void* out, const void* x,
                      const gpu_group_plan* plan);
/* softmax of each group of x, written at the plan's output strides. */
int gpu_launch_softmax_groups(int device, int dtype, int out_dtype, void* out, const void* x,
                              const gpu_group_plan* plan);
/* Scan `code` (a scan_code) of each group of x (one reduced dim, or none for an axis of size 1),
 * written at the plan's output strides; int_identity starts exclusive integer max/min scans. */
int gpu_launch_scan(int device, int code, int dtype, int out_dtype, bool reverse, bool inclusive,
                    int64_t int_identity, void* out, const void* x, const gpu_group_plan* plan);

#ifdef __cplusplus
}
#endif

#endif
