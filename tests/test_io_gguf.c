/* GGUF loading and saving: the Python-built reference files (every metadata type, plain tensor
 * types, every block type against Python's dequantization), blocks packed here from chosen quants
 * and scales, the affine conversion against a plain dequantization, round trips, byte-exact
 * output, mlx-c's accessor codes, every truncation and corrupt headers. */
#include <limits.h>
#include <stdint.h>

#include "core/half.h"
#include "mlx/c/io.h"
#include "mlxc/error.h"
#include "mlxc/gguf.h"
#include "test_util.h"
#include "io_test_util.h"

static mlx_stream cpu;

static const char* gguf_fixture(const char* name) {
  char sub[128];
  snprintf(sub, sizeof sub, "gguf/%s", name);
  return io_fixture(sub);
}

/* ---- a little GGUF writer for hand-built files ---- */

typedef struct {
  unsigned char* data;
  size_t size, cap;
} bytes;

static void put(bytes* b, const void* p, size_t n) {
  if (b->size + n > b->cap) {
    b->cap = (b->size + n) * 2 + 64;
    b->data = realloc(b->data, b->cap);
  }
  if (n) memcpy(b->data + b->size, p, n);
  b->size += n;
}
static void put_u32(bytes* b, uint32_t v) { put(b, &v, 4); } /* the test host is little-endian */
static void put_u64(bytes* b, uint64_t v) { put(b, &v, 8); }
static void put_str(bytes* b, const char* s) {
  put_u64(b, strlen(s));
  put(b, s, strlen(s));
}
static void pad_to(bytes* b, size_t alignment) {
  while (b->size % alignment) put(b, "", 1);
}
static void header(bytes* b, uint64_t n_tensors, uint64_t n_kv) {
  put(b, "GGUF", 4);
  put_u32(b, 3);
  put_u64(b, n_tensors);
  put_u64(b, n_kv);
}
static void kv_u32(bytes* b, const char* key, uint32_t v) {
  put_str(b, key);
  put_u32(b, 4);
  put_u32(b, v);
}
static void kv_str(bytes* b, const char* key, const char* v) {
  put_str(b, key);
  put_u32(b, 8);
  put_str(b, v);
}
/* A tensor info; `shape` is row-major (written reversed). */
static void tensor_info(bytes* b, const char* name, const int* shape, int ndim, uint32_t type,
                        uint64_t offset) {
  put_str(b, name);
  put_u32(b, (uint32_t)ndim);
  for (int i = ndim - 1; i >= 0; i--) put_u64(b, (uint64_t)shape[i]);
  put_u32(b, type);
  put_u64(b, offset);
}

/* A file with one tensor of `type` holding `data`, after a string key. */
static void one_tensor_file(bytes* b, const char* name, const int* shape, int ndim, uint32_t type,
                            const void* data, size_t n) {
  header(b, 1, 1);
  kv_str(b, "general.architecture", "test");
  tensor_info(b, name, shape, ndim, type, 0);
  pad_to(b, 32);
  put(b, data, n);
}

static int save_bytes(const char* name, const bytes* b) { return io_write_file(io_path(name), b->data, b->size); }

static mlx_array tensor(mlx_io_gguf g, const char* name) {
  mlx_array a = mlx_array_new();
  CHECK_MSG(mlx_io_gguf_get_array(&a, g, name) == 0, "missing tensor %s", name);
  return a;
}

static mlxc_gguf_load_params dequantized_f32(void) {
  mlxc_gguf_load_params p = mlxc_gguf_load_default_params();
  p.quantized = false;
  p.dtype = MLX_FLOAT32;
  return p;
}

/* ---- the Python-built fixtures ---- */

static void check_meta_scalar(mlx_io_gguf g, const char* key, mlx_dtype dtype, const void* value) {
  mlx_array a = mlx_array_new();
  CHECK_MSG(mlx_io_gguf_get_metadata_array(&a, g, key) == 0, "%s: %s", key, mlxc_last_error());
  CHECK_MSG(mlx_array_dtype(a) == dtype && mlx_array_ndim(a) == 0, "%s", key);
  const unsigned char* p = io_bytes(a);
  CHECK_MSG(p && !memcmp(p, value, mlx_dtype_size(dtype)), "%s value", key);
  mlx_array_free(a);
}

TEST(test_gguf_loads_python_built_metadata_and_plain_tensors) {
  mlx_io_gguf g = mlx_io_gguf_new();
  CHECK_MSG(mlx_load_gguf(&g, gguf_fixture("mixed.gguf"), cpu) == 0, "%s", mlxc_last_error());
  mlx_string s = mlx_string_new();
  CHECK(mlx_io_gguf_get_metadata_string(&s, g, "general.architecture") == 0);
  CHECK_STR(mlx_string_data(s), "llama");
  CHECK(mlx_io_gguf_get_metadata_string(&s, g, "general.name") == 0);
  CHECK_STR(mlx_string_data(s), "mlxc fixture \xe2\x9c\x93");
  mlx_string_free(s);
  check_meta_scalar(g, "test.u8", MLX_UINT8, &(uint8_t){200});
  check_meta_scalar(g, "test.i8", MLX_INT8, &(int8_t){-100});
  check_meta_scalar(g, "test.u16", MLX_UINT16, &(uint16_t){60000});
  check_meta_scalar(g, "test.i16", MLX_INT16, &(int16_t){-30000});
  check_meta_scalar(g, "test.u32", MLX_UINT32, &(uint32_t){4000000000u});
  check_meta_scalar(g, "test.i32", MLX_INT32, &(int32_t){-2000000000});
  check_meta_scalar(g, "test.f32", MLX_FLOAT32, &(float){0.25f});
  check_meta_scalar(g, "test.bool", MLX_BOOL, &(uint8_t){1});
  check_meta_scalar(g, "test.u64", MLX_UINT64, &(uint64_t){(1ull << 63) + 5});
  check_meta_scalar(g, "test.i64", MLX_INT64, &(int64_t){-(1ll << 40)});
  check_meta_scalar(g, "test.f64", MLX_FLOAT64, &(double){0.1});
  mlx_array a = mlx_array_new();
  CHECK(mlx_io_gguf_get_metadata_array(&a, g, "test.ints") == 0);
  CHECK(io_shape_equals(a, (int[]){3}, 1) && mlx_array_dtype(a) == MLX_INT32);
  const int32_t* ints = (const int32_t*)io_bytes(a);
  CHECK(ints && ints[0] == 1 && ints[1] == -2 && ints[2] == 3);
  CHECK(mlx_io_gguf_get_metadata_array(&a, g, "test.floats") == 0);
  const float* floats = (const float*)io_bytes(a);
  CHECK(mlx_array_dtype(a) == MLX_FLOAT32 && floats && floats[0] == 0.5f && floats[1] == 1.5f);
  CHECK(mlx_io_gguf_get_metadata_array(&a, g, "test.empty") == 0);
  CHECK(io_shape_equals(a, (int[]){0}, 1) && mlx_array_dtype(a) == MLX_UINT8);
  mlx_vector_string tokens = mlx_vector_string_new();
  CHECK(mlx_io_gguf_get_metadata_vector_string(&tokens, g, "tokenizer.ggml.tokens") == 0);
  const char* expected_tokens[5] = {"<s>", "</s>", "hello", "w\xc3\xb6rld", ""};
  CHECK_EQ_INT(mlx_vector_string_size(tokens), 5);
  for (size_t i = 0; i < 5 && i < mlx_vector_string_size(tokens); i++) {
    char* t;
    CHECK(mlx_vector_string_get(&t, tokens, i) == 0);
    CHECK_STR(t, expected_tokens[i]);
  }
  mlx_vector_string_free(tokens);

  /* tensors, in file order */
  static const char* order[8] = {"weight", "half", "brain", "wide", "small", "short", "int", "long"};
  mlx_vector_string keys = mlx_vector_string_new();
  CHECK(mlx_io_gguf_get_keys(&keys, g) == 0);
  CHECK_EQ_INT(mlx_vector_string_size(keys), 8);
  for (size_t i = 0; i < 8 && i < mlx_vector_string_size(keys); i++) {
    char* k;
    mlx_vector_string_get(&k, keys, i);
    CHECK_STR(k, order[i]);
  }
  mlx_vector_string_free(keys);
  mlx_array_free(a);
  a = tensor(g, "weight");
  CHECK(io_shape_equals(a, (int[]){2, 3}, 2) && mlx_array_dtype(a) == MLX_FLOAT32);
  const float* w = (const float*)io_bytes(a);
  for (int i = 0; w && i < 6; i++) CHECK_NEAR(w[i], i * 0.5 - 1, 0);
  /* plain tensors view the mapped file: their buffer is not the allocator's */
  CHECK(core_ctx(a)->buffer && core_ctx(a)->buffer->release != NULL);
  mlx_array_free(a);
  a = tensor(g, "half");
  const uint16_t* h = (const uint16_t*)io_bytes(a);
  CHECK(mlx_array_dtype(a) == MLX_FLOAT16 && h && h[0] == 0x3E00 && h[1] == 0xC000 &&
        h[2] == 0x3800 && h[3] == 0x7BFF);
  mlx_array_free(a);
  a = tensor(g, "brain");
  h = (const uint16_t*)io_bytes(a);
  CHECK(mlx_array_dtype(a) == MLX_BFLOAT16 && h && h[0] == 0x4040 && h[1] == 0xBF00);
  mlx_array_free(a);
  a = tensor(g, "wide");
  const double* d = (const double*)io_bytes(a);
  CHECK(mlx_array_dtype(a) == MLX_FLOAT64 && d && d[0] == 0.1 && d[1] == 1e300);
  mlx_array_free(a);
  a = tensor(g, "small");
  const int8_t* i8 = (const int8_t*)io_bytes(a);
  CHECK(mlx_array_dtype(a) == MLX_INT8 && i8 && i8[0] == -128 && i8[1] == 0 && i8[2] == 127);
  mlx_array_free(a);
  a = tensor(g, "short");
  const int16_t* i16 = (const int16_t*)io_bytes(a);
  CHECK(io_shape_equals(a, (int[]){2, 2}, 2) && i16 && i16[0] == -1 && i16[2] == 300 &&
        i16[3] == -32768);
  mlx_array_free(a);
  a = tensor(g, "int");
  const int32_t* i32 = (const int32_t*)io_bytes(a);
  CHECK(io_shape_equals(a, (int[]){1, 2, 3}, 3) && mlx_array_dtype(a) == MLX_INT32);
  for (int i = 0; i32 && i < 6; i++) CHECK_EQ_INT(i32[i], i * 1000 - 2500);
  mlx_array_free(a);
  a = tensor(g, "long");
  const int64_t* i64 = (const int64_t*)io_bytes(a);
  CHECK(mlx_array_dtype(a) == MLX_INT64 && i64 && i64[0] == -(1ll << 40) && i64[1] == 1ll << 62);
  mlx_array_free(a);
  mlx_io_gguf_free(g);
}

static const char* quant_names[12] = {"q4_0.weight", "q4_1.weight", "q8_0.weight", "q5_0.weight",
                                      "q5_1.weight", "q2_k.weight", "q3_k.weight", "q4_k.weight",
                                      "q5_k.weight", "q6_k.weight", "cube.weight", "raw_q8"};

TEST(test_gguf_dequantizes_every_block_type_like_the_python_reference) {
  mlx_io_gguf q = mlx_io_gguf_new(), ref = mlx_io_gguf_new(), half = mlx_io_gguf_new();
  mlxc_gguf_load_params bf = dequantized_f32();
  bf.dtype = MLX_BFLOAT16;
  mlx_io_gguf brain = mlx_io_gguf_new();
  CHECK_MSG(mlxc_gguf_load(&q, gguf_fixture("quants.gguf"), dequantized_f32()) == 0, "%s",
            mlxc_last_error());
  CHECK(mlxc_gguf_load(&brain, gguf_fixture("quants.gguf"), bf) == 0);
  CHECK(mlx_load_gguf(&ref, gguf_fixture("quants_ref.gguf"), cpu) == 0);
  CHECK(mlx_load_gguf(&half, gguf_fixture("quants.gguf"), cpu) == 0); /* K-quants: float16 */
  for (int t = 0; t < 12; t++) {
    mlx_array a = tensor(q, quant_names[t]), r = tensor(ref, quant_names[t]);
    mlx_array b = tensor(brain, quant_names[t]);
    CHECK_MSG(mlx_array_dtype(a) == MLX_FLOAT32 && mlx_array_ndim(a) == mlx_array_ndim(r), "%s",
              quant_names[t]);
    CHECK(io_shape_equals(a, mlx_array_shape(r), (int)mlx_array_ndim(r)));
    const float *x = (const float*)io_bytes(a), *y = (const float*)io_bytes(r);
    const uint16_t* z = (const uint16_t*)io_bytes(b);
    size_t n = mlx_array_size(r), bad = 0;
    for (size_t i = 0; x && y && z && i < n; i++)
      bad += x[i] != y[i] || z[i] != half_f32_to_bf16(y[i]);
    CHECK_MSG(x && y && bad == 0, "%s: %zu of %zu values differ", quant_names[t], bad, n);
    if (t >= 3 && t <= 9) { /* not kept quantized by default: float16, rounded once */
      mlx_array h = tensor(half, quant_names[t]);
      const uint16_t* hv = (const uint16_t*)io_bytes(h);
      size_t bad16 = 0;
      for (size_t i = 0; hv && y && i < n; i++) bad16 += hv[i] != half_f32_to_f16(y[i]);
      CHECK_MSG(mlx_array_dtype(h) == MLX_FLOAT16 && hv && bad16 == 0, "%s float16", quant_names[t]);
      mlx_array_free(h);
    }
    mlx_array_free(a);
    mlx_array_free(r);
    mlx_array_free(b);
  }
  mlx_io_gguf_free(q);
  mlx_io_gguf_free(ref);
  mlx_io_gguf_free(half);
  mlx_io_gguf_free(brain);
}

/* Element e of an affine-quantized row, by MLX's packing: `32 / bits` values per uint32 word,
 * element 0 in the lowest bits. */
static float affine_value(const uint32_t* words, const uint16_t* scales, const uint16_t* biases,
                          int bits, int e) {
  int per_word = 32 / bits;
  uint32_t q = (words[e / per_word] >> (bits * (e % per_word))) & ((1u << bits) - 1);
  return half_f16_to_f32(scales[e / 32]) * (float)q + half_f16_to_f32(biases[e / 32]);
}

TEST(test_gguf_affine_conversion_equals_the_dequantized_values) {
  mlx_io_gguf g = mlx_io_gguf_new(), ref = mlx_io_gguf_new();
  CHECK_MSG(mlx_load_gguf(&g, gguf_fixture("quants.gguf"), cpu) == 0, "%s", mlxc_last_error());
  CHECK(mlx_load_gguf(&ref, gguf_fixture("quants_ref.gguf"), cpu) == 0);
  /* quantized tensors become three, in place; the others keep their name */
  static const char* order[] = {
      "q4_0.weight", "q4_0.scales", "q4_0.biases", "q4_1.weight", "q4_1.scales", "q4_1.biases",
      "q8_0.weight", "q8_0.scales", "q8_0.biases", "q5_0.weight", "q5_1.weight", "q2_k.weight",
      "q3_k.weight", "q4_k.weight", "q5_k.weight", "q6_k.weight", "cube.weight", "cube.scales",
      "cube.biases", "raw_q8",      "raw_q8.scales", "raw_q8.biases"};
  mlx_vector_string keys = mlx_vector_string_new();
  CHECK(mlx_io_gguf_get_keys(&keys, g) == 0);
  CHECK_EQ_INT(mlx_vector_string_size(keys), 22);
  for (size_t i = 0; i < 22 && i < mlx_vector_string_size(keys); i++) {
    char* k;
    mlx_vector_string_get(&k, keys, i);
    CHECK_STR(k, order[i]);
  }
  mlx_vector_string_free(keys);
  const struct {
    const char* name;
    const char* base;
    int bits;
  } cases[4] = {{"q4_0.weight", "q4_0", 4}, {"q4_1.weight", "q4_1", 4}, {"q8_0.weight", "q8_0", 8},
                {"cube.weight", "cube", 4}};
  for (int c = 0; c < 4; c++) {
    char sname[64], bname[64];
    snprintf(sname, sizeof sname, "%s.scales", cases[c].base);
    snprintf(bname, sizeof bname, "%s.biases", cases[c].base);
    mlx_array w = tensor(g, cases[c].name), s = tensor(g, sname), b = tensor(g, bname);
    mlx_array r = tensor(ref, cases[c].name);
    int ndim = (int)mlx_array_ndim(r), cols = mlx_array_shape(r)[ndim - 1];
    int wshape[3], sshape[3];
    for (int i = 0; i < ndim; i++) wshape[i] = sshape[i] = mlx_array_shape(r)[i];
    wshape[ndim - 1] = cols * cases[c].bits / 32;
    sshape[ndim - 1] = cols / 32;
    CHECK(mlx_array_dtype(w) == MLX_UINT32 && io_shape_equals(w, wshape, ndim));
    CHECK(mlx_array_dtype(s) == MLX_FLOAT16 && io_shape_equals(s, sshape, ndim));
    CHECK(mlx_array_dtype(b) == MLX_FLOAT16 && io_shape_equals(b, sshape, ndim));
    const uint32_t* wv = (const uint32_t*)io_bytes(w);
    const uint16_t *sv = (const uint16_t*)io_bytes(s), *bv = (const uint16_t*)io_bytes(b);
    const float* rv = (const float*)io_bytes(r);
    size_t rows = mlx_array_size(r) / (size_t)cols, bad = 0;
    for (size_t row = 0; wv && sv && bv && rv && row < rows; row++)
      for (int e = 0; e < cols; e++)
        bad += affine_value(wv + row * (size_t)wshape[ndim - 1], sv + row * (size_t)sshape[ndim - 1],
                            bv + row * (size_t)sshape[ndim - 1], cases[c].bits, e) !=
               rv[row * (size_t)cols + (size_t)e];
    CHECK_MSG(bad == 0, "%s: %zu values differ", cases[c].name, bad);

    /* and mlx_dequantize of the triple agrees within float16 arithmetic (MLX computes
     * scale * q + bias in the scales' dtype): two roundings of terms up to |s| q_max and |b| */
    mlx_array deq = mlx_array_new();
    CHECK_MSG(mlx_dequantize(&deq, w, s, b, (mlx_optional_int){32, true},
                             (mlx_optional_int){cases[c].bits, true}, "affine",
                             (mlx_array){NULL}, (mlx_optional_dtype){MLX_FLOAT32, true}, cpu) == 0,
              "%s", mlxc_last_error());
    const float* dv = (const float*)io_bytes(deq);
    size_t off = 0, groups_per_row = (size_t)sshape[ndim - 1];
    for (size_t i = 0; dv && rv && sv && bv && i < mlx_array_size(r); i++) {
      size_t g = i / (size_t)cols * groups_per_row + (i % (size_t)cols) / 32;
      double q_max = (1 << cases[c].bits) - 1;
      double terms = fabs(half_f16_to_f32(sv[g])) * q_max + fabs(half_f16_to_f32(bv[g]));
      off += fabs(dv[i] - rv[i]) > (terms + fabs(rv[i])) / 1024;
    }
    CHECK_MSG(dv && off == 0, "%s: mlx_dequantize differs at %zu values", cases[c].name, off);
    mlx_array_free(deq);
    mlx_array_free(w);
    mlx_array_free(s);
    mlx_array_free(b);
    mlx_array_free(r);
  }
  mlx_io_gguf_free(g);
  mlx_io_gguf_free(ref);
}

/* ---- blocks packed here from chosen quants and scales (the layouts of ggml's quantizers) ---- */

static void put_f16(uint8_t* p, float v) {
  uint16_t h = half_f32_to_f16(v);
  p[0] = (uint8_t)h;
  p[1] = (uint8_t)(h >> 8);
}

/* Loads one tensor of `type` from `block` (dequantized to float32) into out[n]. */
static int load_block(uint32_t type, const uint8_t* block, size_t block_bytes, int n, float* out) {
  bytes b = {0};
  one_tensor_file(&b, "t", (int[]){n}, 1, type, block, block_bytes);
  save_bytes("block.gguf", &b);
  free(b.data);
  mlx_io_gguf g = mlx_io_gguf_new();
  int status = mlxc_gguf_load(&g, io_path("block.gguf"), dequantized_f32());
  if (!status) {
    mlx_array a = tensor(g, "t");
    const float* v = (const float*)io_bytes(a);
    if (v) memcpy(out, v, sizeof(float) * (size_t)n);
    mlx_array_free(a);
  }
  mlx_io_gguf_free(g);
  return status;
}

static void check_block(const char* what, const float* got, const double* want, int n) {
  int bad = 0;
  for (int i = 0; i < n; i++)
    if (fabs(got[i] - want[i]) > 1e-6 * (1 + fabs(want[i]))) {
      if (!bad) fprintf(stderr, "  %s: element %d is %.9g, want %.9g\n", what, i, got[i], want[i]);
      bad++;
    }
  CHECK_MSG(bad == 0, "%s: %d of %d elements differ", what, bad, n);
}

TEST(test_gguf_hand_packed_32_element_blocks) {
  uint8_t b[34] = {0};
  float got[32];
  double want[32];
  /* Q4_0: d = 0.5, element j < 16 = low nibble of qs[j] = j, element j + 16 = high = 15 - j */
  put_f16(b, 0.5f);
  for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(j | (15 - j) << 4);
  for (int j = 0; j < 16; j++) want[j] = 0.5 * (j - 8), want[j + 16] = 0.5 * (15 - j - 8);
  CHECK(load_block(2, b, 18, 32, got) == 0);
  check_block("Q4_0", got, want, 32);
  /* Q4_1: d = 0.25, m = -1, same nibbles: d * q + m */
  put_f16(b, 0.25f);
  put_f16(b + 2, -1.0f);
  for (int j = 0; j < 16; j++) b[4 + j] = (uint8_t)(j | (15 - j) << 4);
  for (int j = 0; j < 16; j++) want[j] = 0.25 * j - 1, want[j + 16] = 0.25 * (15 - j) - 1;
  CHECK(load_block(3, b, 20, 32, got) == 0);
  check_block("Q4_1", got, want, 32);
  /* Q8_0: d = 2, q_j = 8 j - 128 */
  put_f16(b, 2.0f);
  for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)(8 * j - 128), want[j] = 2.0 * (8 * j - 128);
  CHECK(load_block(8, b, 34, 32, got) == 0);
  check_block("Q8_0", got, want, 32);
  /* Q5_0: d = 1, fifth bits qh = 0xAAAAAAAA (odd elements), nibbles j: q_j = j + 16 [j odd] - 16 */
  memset(b, 0, sizeof b);
  put_f16(b, 1.0f);
  b[2] = b[3] = b[4] = b[5] = 0xAA;
  for (int j = 0; j < 16; j++) b[6 + j] = (uint8_t)(j | j << 4);
  for (int j = 0; j < 16; j++) want[j] = j + (j % 2 ? 16 : 0) - 16, want[j + 16] = want[j];
  CHECK(load_block(6, b, 22, 32, got) == 0);
  check_block("Q5_0", got, want, 32);
  /* Q5_1: d = 0.5, m = 3, fifth bits only on elements 16..31 */
  memset(b, 0, sizeof b);
  put_f16(b, 0.5f);
  put_f16(b + 2, 3.0f);
  b[6] = b[7] = 0xFF;
  for (int j = 0; j < 16; j++) b[8 + j] = (uint8_t)(j | (15 - j) << 4);
  for (int j = 0; j < 16; j++) want[j] = 0.5 * j + 3, want[j + 16] = 0.5 * (15 - j + 16) + 3;
  CHECK(load_block(7, b, 24, 32, got) == 0);
  check_block("Q5_1", got, want, 32);
}

/* 2-bit quant q of element e: byte 32 * (e / 128) + e % 32, bits 2 * ((e % 128) / 32). */
static void pack_2bit(uint8_t* qs, const int* q) {
  for (int e = 0; e < 256; e++) qs[32 * (e / 128) + e % 32] |= (uint8_t)(q[e] << (2 * ((e % 128) / 32)));
}

TEST(test_gguf_hand_packed_q2_k_and_q3_k) {
  uint8_t b[110];
  int q[256], sc[16], mn[16];
  float got[256];
  double want[256];
  /* Q2_K: scales[16] (scale | min << 4), qs[64], d = 0.5, dmin = 0.25 */
  memset(b, 0, sizeof b);
  for (int i = 0; i < 16; i++) sc[i] = (i * 5) % 16, mn[i] = 15 - i, b[i] = (uint8_t)(sc[i] | mn[i] << 4);
  for (int e = 0; e < 256; e++) q[e] = (e * 7 + e / 64) % 4;
  pack_2bit(b + 16, q);
  put_f16(b + 80, 0.5f);
  put_f16(b + 82, 0.25f);
  for (int e = 0; e < 256; e++) want[e] = 0.5 * sc[e / 16] * q[e] - 0.25 * mn[e / 16];
  CHECK(load_block(10, b, 84, 256, got) == 0);
  check_block("Q2_K", got, want, 256);

  /* Q3_K: hmask[32], qs[64], scales[12], d = 0.125; quants in [-4, 3] stored as q + 4 with the
   * third bit in hmask; sixteen 6-bit scales s stored as s + 32 */
  memset(b, 0, sizeof b);
  int low[256];
  for (int e = 0; e < 256; e++) {
    q[e] = (e * 3 + e / 32) % 8 - 4;
    low[e] = (q[e] + 4) & 3;
    if ((q[e] + 4) >> 2) b[e % 32] |= (uint8_t)(1 << (e / 32));
  }
  pack_2bit(b + 32, low);
  for (int i = 0; i < 16; i++) {
    sc[i] = i * 4 - 31; /* -31 .. 29 */
    int u = sc[i] + 32;
    if (i < 8)
      b[96 + i] |= (uint8_t)(u & 0xF);
    else
      b[96 + i - 8] |= (uint8_t)((u & 0xF) << 4);
    b[96 + 8 + i % 4] |= (uint8_t)((u >> 4) << (2 * (i / 4)));
  }
  put_f16(b + 108, 0.125f);
  for (int e = 0; e < 256; e++) want[e] = 0.125 * sc[e / 16] * q[e];
  CHECK(load_block(11, b, 110, 256, got) == 0);
  check_block("Q3_K", got, want, 256);
}

/* The 12 bytes of eight 6-bit (scale, min) pairs of Q4_K/Q5_K. */
static void pack_k4_scales(uint8_t* p, const int* sc, const int* mn) {
  memset(p, 0, 12);
  for (int j = 0; j < 4; j++) {
    p[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
    p[j + 4] = (uint8_t)((mn[j] & 63) | (mn[j + 4] >> 4) << 6);
    p[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4);
  }
}

TEST(test_gguf_hand_packed_q4_k_q5_k_q6_k) {
  uint8_t b[210];
  int q[256], sc[16], mn[8];
  float got[256];
  double want[256];
  /* Q4_K: d = 0.5, dmin = 2; eight 32-element sub-blocks with 6-bit scales and mins; byte
   * 32 c + l holds elements 64 c + l (low nibble) and 64 c + 32 + l (high nibble) */
  memset(b, 0, sizeof b);
  for (int j = 0; j < 8; j++) sc[j] = 63 - 7 * j, mn[j] = 9 * j;
  put_f16(b, 0.5f);
  put_f16(b + 2, 2.0f);
  pack_k4_scales(b + 4, sc, mn);
  for (int e = 0; e < 256; e++) {
    q[e] = (e * 5 + e / 16) % 16;
    b[16 + 32 * (e / 64) + e % 32] |= (uint8_t)(q[e] << (4 * ((e % 64) / 32)));
  }
  for (int e = 0; e < 256; e++) want[e] = 0.5 * sc[e / 32] * q[e] - 2.0 * mn[e / 32];
  CHECK(load_block(12, b, 144, 256, got) == 0);
  check_block("Q4_K", got, want, 256);

  /* Q5_K: the same plus a fifth bit: bit e / 32 of qh[e % 32] */
  memset(b, 0, sizeof b);
  put_f16(b, 0.25f);
  put_f16(b + 2, 1.0f);
  pack_k4_scales(b + 4, sc, mn);
  for (int e = 0; e < 256; e++) {
    q[e] = (e * 11 + e / 8) % 32;
    b[48 + 32 * (e / 64) + e % 32] |= (uint8_t)((q[e] & 0xF) << (4 * ((e % 64) / 32)));
    b[16 + e % 32] |= (uint8_t)((q[e] >> 4) << (e / 32));
  }
  for (int e = 0; e < 256; e++) want[e] = 0.25 * sc[e / 32] * q[e] - 1.0 * mn[e / 32];
  CHECK(load_block(13, b, 176, 256, got) == 0);
  check_block("Q5_K", got, want, 256);

  /* Q6_K: ql[128], qh[64], int8 scales[16], d = 0.0625; quants in [-32, 31] stored as q + 32:
   * element 128 h + 32 s + l has its low nibble in ql[64 h + 32 (s % 2) + l] (high nibble when
   * s >= 2) and its top 2 bits in qh[32 h + l] at shift 2 s */
  memset(b, 0, sizeof b);
  for (int i = 0; i < 16; i++) sc[i] = i % 2 ? -3 * i : 8 * i - 60;
  for (int i = 0; i < 16; i++) b[192 + i] = (uint8_t)(int8_t)sc[i];
  put_f16(b + 208, 0.0625f);
  for (int e = 0; e < 256; e++) {
    q[e] = (e * 13 + e / 64) % 64 - 32;
    int u = q[e] + 32, h = e / 128, s = (e % 128) / 32, l = e % 32;
    b[64 * h + 32 * (s % 2) + l] |= (uint8_t)((u & 0xF) << (4 * (s / 2)));
    b[128 + 32 * h + l] |= (uint8_t)((u >> 4) << (2 * s));
  }
  for (int e = 0; e < 256; e++) want[e] = 0.0625 * sc[e / 16] * q[e];
  CHECK(load_block(14, b, 210, 256, got) == 0);
  check_block("Q6_K", got, want, 256);
}

/* ---- saving ---- */

TEST(test_gguf_round_trip_metadata_and_tensors) {
  mlx_io_gguf g = mlx_io_gguf_new();
  static const mlx_dtype meta_dtypes[11] = {MLX_UINT8, MLX_INT8,  MLX_UINT16,  MLX_INT16,
                                            MLX_UINT32, MLX_INT32, MLX_FLOAT32, MLX_BOOL,
                                            MLX_UINT64, MLX_INT64, MLX_FLOAT64};
  static unsigned char meta_data[11][2][3 * 8];
  char key[64];
  for (int t = 0; t < 11; t++)
    for (int nd = 0; nd < 2; nd++) {
      io_fill_pattern(meta_data[t][nd], 3, meta_dtypes[t], (unsigned)(t * 2 + nd));
      mlx_array a = mlx_array_new_data(meta_data[t][nd], (int[]){3}, nd, meta_dtypes[t]);
      snprintf(key, sizeof key, "m.%d.%d", t, nd);
      CHECK(mlx_io_gguf_set_metadata_array(g, key, a) == 0);
      mlx_array_free(a);
    }
  CHECK(mlx_io_gguf_set_metadata_string(g, "general.name", "h\xc3\xa9llo") == 0);
  const char* toks[3] = {"a", "", "\xe2\x96\x81the"};
  mlx_vector_string v = mlx_vector_string_new_data(toks, 3);
  CHECK(mlx_io_gguf_set_metadata_vector_string(g, "tokenizer.ggml.tokens", v) == 0);
  mlx_vector_string_free(v);
  mlx_array align = mlx_array_new_data(&(uint32_t){64}, NULL, 0, MLX_UINT32);
  CHECK(mlx_io_gguf_set_metadata_array(g, "general.alignment", align) == 0);
  mlx_array_free(align);

  static const mlx_dtype tensor_dtypes[8] = {MLX_FLOAT32, MLX_FLOAT16, MLX_BFLOAT16, MLX_FLOAT64,
                                             MLX_INT8,    MLX_INT16,   MLX_INT32,    MLX_INT64};
  const int shapes[4][5] = {{0}, {0, 4}, {3, 5}, {2, 1, 3, 1, 2}};
  const int ndims[4] = {0, 2, 2, 5};
  static unsigned char data[8][4][15 * 8];
  for (int t = 0; t < 8; t++)
    for (int s = 0; s < 4; s++) {
      size_t n = 1;
      for (int i = 0; i < ndims[s]; i++) n *= (size_t)shapes[s][i];
      io_fill_pattern(data[t][s], n, tensor_dtypes[t], (unsigned)(t * 4 + s));
      mlx_array a = mlx_array_new_data(data[t][s], shapes[s], ndims[s], tensor_dtypes[t]);
      snprintf(key, sizeof key, "z%d.%d", 7 - t, s);
      CHECK(mlx_io_gguf_set_array(g, key, a) == 0);
      mlx_array_free(a);
    }
  /* a transposed (strided) input is written in row-major order */
  float values[6] = {0, 1, 2, 3, 4, 5};
  mlx_array base = mlx_array_new_data(values, (int[]){2, 3}, 2, MLX_FLOAT32), tr = mlx_array_new();
  CHECK(mlx_transpose(&tr, base, cpu) == 0);
  CHECK(mlx_io_gguf_set_array(g, "transposed", tr) == 0);
  CHECK_MSG(mlx_save_gguf(io_path("round"), g) == 0, "%s", mlxc_last_error()); /* ".gguf" added */

  mlx_io_gguf back = mlx_io_gguf_new();
  CHECK_MSG(mlx_load_gguf(&back, io_path("round.gguf"), cpu) == 0, "%s", mlxc_last_error());
  for (int t = 0; t < 11; t++)
    for (int nd = 0; nd < 2; nd++) {
      mlx_array a = mlx_array_new();
      snprintf(key, sizeof key, "m.%d.%d", t, nd);
      CHECK_MSG(mlx_io_gguf_get_metadata_array(&a, back, key) == 0, "%s", key);
      CHECK_MSG(mlx_array_dtype(a) == meta_dtypes[t] && (int)mlx_array_ndim(a) == nd, "%s", key);
      CHECK_MSG(io_bytes(a) && !memcmp(io_bytes(a), meta_data[t][nd],
                                       mlx_array_nbytes(a)), "%s value", key);
      mlx_array_free(a);
    }
  mlx_string s = mlx_string_new();
  CHECK(mlx_io_gguf_get_metadata_string(&s, back, "general.name") == 0);
  CHECK_STR(mlx_string_data(s), "h\xc3\xa9llo");
  mlx_string_free(s);
  mlx_vector_string tv = mlx_vector_string_new();
  CHECK(mlx_io_gguf_get_metadata_vector_string(&tv, back, "tokenizer.ggml.tokens") == 0);
  CHECK_EQ_INT(mlx_vector_string_size(tv), 3);
  for (size_t i = 0; i < 3 && i < mlx_vector_string_size(tv); i++) {
    char* t;
    mlx_vector_string_get(&t, tv, i);
    CHECK_STR(t, toks[i]);
  }
  mlx_vector_string_free(tv);
  mlx_vector_string keys = mlx_vector_string_new();
  CHECK(mlx_io_gguf_get_keys(&keys, back) == 0);
  CHECK_EQ_INT(mlx_vector_string_size(keys), 33);
  for (int t = 0; t < 8; t++)
    for (int sh = 0; sh < 4; sh++) {
      char* k = NULL;
      mlx_vector_string_get(&k, keys, (size_t)(t * 4 + sh));
      snprintf(key, sizeof key, "z%d.%d", 7 - t, sh);
      CHECK_STR(k, key);
      mlx_array a = tensor(back, key);
      CHECK_MSG(mlx_array_dtype(a) == tensor_dtypes[t] && io_shape_equals(a, shapes[sh], ndims[sh]),
                "%s", key);
      size_t nbytes = mlx_array_nbytes(a);
      CHECK_MSG(nbytes == 0 || (io_bytes(a) && !memcmp(io_bytes(a), data[t][sh], nbytes)), "%s", key);
      mlx_array_free(a);
    }
  mlx_vector_string_free(keys);
  mlx_array t2 = tensor(back, "transposed");
  const float* f = (const float*)io_bytes(t2);
  CHECK(io_shape_equals(t2, (int[]){3, 2}, 2) && f && f[0] == 0 && f[1] == 3 && f[2] == 1 &&
        f[5] == 5);
  mlx_array_free(t2);

  /* general.alignment = 64: the data section and every tensor start on 64-byte boundaries, so
   * the file size is a multiple of 64 (each tensor is padded) */
  size_t size;
  unsigned char* file = io_read_file(io_path("round.gguf"), &size);
  CHECK(file && size % 64 == 0);
  free(file);
  CHECK_EQ_INT(io_count_files(".tmp."), 0);
  mlx_array_free(base);
  mlx_array_free(tr);
  mlx_io_gguf_free(back);
  mlx_io_gguf_free(g);
}

TEST(test_gguf_file_is_byte_exact) {
  mlx_io_gguf g = mlx_io_gguf_new();
  CHECK(mlx_io_gguf_set_metadata_string(g, "k", "vv") == 0);
  mlx_array scalar = mlx_array_new_data(&(int16_t){-2}, NULL, 0, MLX_INT16);
  CHECK(mlx_io_gguf_set_metadata_array(g, "n", scalar) == 0);
  float w[6] = {1, 2, 3, 4, 5, 6};
  mlx_array a = mlx_array_new_data(w, (int[]){2, 3}, 2, MLX_FLOAT32);
  CHECK(mlx_io_gguf_set_array(g, "w", a) == 0);
  CHECK(mlx_save_gguf(io_path("exact.gguf"), g) == 0);
  bytes e = {0};
  header(&e, 1, 2);
  kv_str(&e, "k", "vv");
  put_str(&e, "n");
  put_u32(&e, 3); /* INT16 */
  put(&e, "\xfe\xff", 2);
  tensor_info(&e, "w", (int[]){2, 3}, 2, 0, 0); /* dims written as 3, 2 */
  pad_to(&e, 32);
  put(&e, w, sizeof w);
  pad_to(&e, 32);
  size_t size;
  unsigned char* file = io_read_file(io_path("exact.gguf"), &size);
  CHECK_EQ_INT(size, e.size);
  CHECK(file && size == e.size && !memcmp(file, e.data, size));
  free(file);
  free(e.data);
  mlx_array_free(a);
  mlx_array_free(scalar);
  mlx_io_gguf_free(g);
}

TEST(test_gguf_accessors_follow_mlx_c) {
  mlx_io_gguf g = mlx_io_gguf_new();
  int prev = mlxc_set_errors_quiet(1);
  mlx_array a = mlx_array_new_data(&(float){1}, NULL, 0, MLX_FLOAT32);
  mlx_array b = mlx_array_new_data(&(float){2}, NULL, 0, MLX_FLOAT32);
  mlx_array out = mlx_array_new();
  CHECK_EQ_INT(mlx_io_gguf_get_array(&out, g, "x"), 2);
  CHECK(mlx_io_gguf_set_array(g, "x", a) == 0);
  CHECK(mlx_io_gguf_set_array(g, "x", b) == 0); /* replaces */
  CHECK(mlx_io_gguf_get_array(&out, g, "x") == 0);
  CHECK(io_bytes(out) && *(const float*)io_bytes(out) == 2);
  CHECK(mlx_io_gguf_set_metadata_string(g, "s", "one") == 0);
  CHECK(mlx_io_gguf_set_metadata_array(g, "n", a) == 0);
  bool flag = true;
  CHECK_EQ_INT(mlx_io_gguf_has_metadata_string(&flag, g, "missing"), 2);
  CHECK(!flag);
  CHECK(mlx_io_gguf_has_metadata_string(&flag, g, "s") == 0 && flag);
  CHECK(mlx_io_gguf_has_metadata_array(&flag, g, "s") == 0 && !flag);
  CHECK(mlx_io_gguf_has_metadata_vector_string(&flag, g, "n") == 0 && !flag);
  CHECK(mlx_io_gguf_has_metadata_array(&flag, g, "n") == 0 && flag);
  mlx_string s = mlx_string_new();
  CHECK_EQ_INT(mlx_io_gguf_get_metadata_string(&s, g, "n"), 3);
  CHECK(strstr(mlxc_last_error(), "'n'") != NULL);
  CHECK_EQ_INT(mlx_io_gguf_get_metadata_string(&s, g, "nope"), 2);
  CHECK(mlx_io_gguf_set_metadata_array(g, "s", b) == 0); /* a key can change kind */
  CHECK(mlx_io_gguf_get_metadata_array(&out, g, "s") == 0);
  CHECK(io_bytes(out) && *(const float*)io_bytes(out) == 2);
  mlx_vector_string vs = mlx_vector_string_new();
  CHECK_EQ_INT(mlx_io_gguf_get_metadata_vector_string(&vs, g, "s"), 3);
  CHECK(mlx_io_gguf_get_keys(&vs, g) == 0 && mlx_vector_string_size(vs) == 1);
  /* a failed load leaves the object as it was; a successful one replaces its contents */
  CHECK(mlx_load_gguf(&g, io_path("does-not-exist.gguf"), cpu) != 0);
  CHECK(mlx_io_gguf_get_array(&out, g, "x") == 0);
  CHECK(mlx_load_gguf(&g, gguf_fixture("mixed.gguf"), cpu) == 0);
  CHECK_EQ_INT(mlx_io_gguf_get_array(&out, g, "x"), 2);
  mlx_io_gguf empty = {NULL};
  CHECK(mlx_load_gguf(&empty, gguf_fixture("mixed.gguf"), cpu) == 0 && empty.ctx);
  mlx_io_gguf_free(empty);
  mlx_vector_string_free(vs);
  mlx_string_free(s);
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_array_free(out);
  mlx_io_gguf_free(g);
  mlxc_set_errors_quiet(prev);
}

TEST(test_gguf_save_errors_leave_no_file) {
  int prev = mlxc_set_errors_quiet(1);
  mlx_io_gguf g = mlx_io_gguf_new();
  mlx_io_gguf q = mlx_io_gguf_new();
  CHECK(mlx_load_gguf(&q, gguf_fixture("quants.gguf"), cpu) == 0);
  CHECK(io_write_file(io_path("keep.gguf"), "old", 3) == 0);
  /* uint32 packed weights have no GGUF tensor type */
  CHECK(mlx_save_gguf(io_path("keep.gguf"), q) != 0);
  CHECK(strstr(mlxc_last_error(), "q4_0.weight") && strstr(mlxc_last_error(), "uint32"));
  size_t size;
  unsigned char* kept = io_read_file(io_path("keep.gguf"), &size);
  CHECK(kept && size == 3 && !memcmp(kept, "old", 3));
  free(kept);
  mlx_array m2 = mlx_array_new_data((float[4]){0}, (int[]){2, 2}, 2, MLX_FLOAT32);
  CHECK(mlx_io_gguf_set_metadata_array(g, "two_d", m2) == 0);
  CHECK(mlx_save_gguf(io_path("unsaved.gguf"), g) != 0);
  CHECK(strstr(mlxc_last_error(), "two_d") != NULL);
  mlx_io_gguf_free(g);
  g = mlx_io_gguf_new();
  mlx_array h = mlx_array_new_data(&(uint16_t){0x3c00}, NULL, 0, MLX_FLOAT16);
  CHECK(mlx_io_gguf_set_metadata_array(g, "half", h) == 0);
  CHECK(mlx_save_gguf(io_path("unsaved.gguf"), g) != 0);
  mlx_io_gguf_free(g);
  g = mlx_io_gguf_new();
  mlx_array al = mlx_array_new_data(&(uint32_t){48}, NULL, 0, MLX_UINT32);
  CHECK(mlx_io_gguf_set_metadata_array(g, "general.alignment", al) == 0);
  CHECK(mlx_save_gguf(io_path("unsaved.gguf"), g) != 0);
  CHECK(strstr(mlxc_last_error(), "power of two") != NULL);
  CHECK(mlx_save_gguf(io_path("no-such-dir/x.gguf"), g) != 0);
  CHECK_EQ_INT(io_count_files("unsaved"), 0);
  CHECK_EQ_INT(io_count_files(".tmp."), 0);
  mlx_io_gguf_free(g);
  mlx_io_gguf_free(q);
  mlx_array_free(m2);
  mlx_array_free(h);
  mlx_array_free(al);
  mlxc_set_errors_quiet(prev);
}

/* ---- corrupt files ---- */

/* Loads `b` (written to a file) and checks it fails with a message containing every part. */
static void expect_failure(const char* what, const bytes* b, const char* part1, const char* part2) {
  save_bytes("bad.gguf", b);
  mlx_io_gguf g = mlx_io_gguf_new();
  int status = mlx_load_gguf(&g, io_path("bad.gguf"), cpu);
  CHECK_MSG(status != 0, "%s: loaded", what);
  const char* msg = mlxc_last_error();
  CHECK_MSG(strstr(msg, "bad.gguf") && (!part1 || strstr(msg, part1)) && (!part2 || strstr(msg, part2)),
            "%s: message '%s'", what, msg);
  mlx_io_gguf_free(g);
}

static const uint8_t q4_block[18] = {0x00, 0x38}; /* d = 0.5, quants 0 */

TEST(test_gguf_rejects_corrupt_headers_with_clear_errors) {
  int prev = mlxc_set_errors_quiet(1);
  bytes b = {0};
  float f4[4] = {0};
#define CASE(what, build, p1, p2) \
  do {                            \
    b.size = 0;                   \
    build;                        \
    expect_failure(what, &b, p1, p2); \
  } while (0)
  CASE("empty", (void)0, "truncated", NULL);
  CASE("magic", put(&b, "GGUX\3\0\0\0", 8), "not a GGUF", NULL);
  CASE("version 1", (put(&b, "GGUF", 4), put_u32(&b, 1), put_u64(&b, 0), put_u64(&b, 0)), "version 1", NULL);
  CASE("version 4", (put(&b, "GGUF", 4), put_u32(&b, 4), put_u64(&b, 0), put_u64(&b, 0)), "version 4", NULL);
  CASE("big-endian", (put(&b, "GGUF", 4), put_u32(&b, 3u << 24), put_u64(&b, 0), put_u64(&b, 0)), "big-endian", NULL);
  CASE("huge kv count", header(&b, 0, UINT64_MAX), "key/value pairs", NULL);
  CASE("huge tensor count", header(&b, 1ull << 60, 0), "tensors cannot fit", NULL);
  CASE("unknown value type", (header(&b, 0, 1), put_str(&b, "key"), put_u32(&b, 13), put_u32(&b, 0)), "unknown value type 13", "'key'");
  CASE("nested arrays", (header(&b, 0, 1), put_str(&b, "nest"), put_u32(&b, 9), put_u32(&b, 9), put_u64(&b, 0)), "nested", "'nest'");
  CASE("huge array", (header(&b, 0, 1), put_str(&b, "arr"), put_u32(&b, 9), put_u32(&b, 5), put_u64(&b, 1ull << 40)), "'arr'", NULL);
  CASE("array past the end", (header(&b, 0, 1), put_str(&b, "arr"), put_u32(&b, 9), put_u32(&b, 5), put_u64(&b, 1000)), "truncated", "'arr'");
  CASE("string array count", (header(&b, 0, 1), put_str(&b, "toks"), put_u32(&b, 9), put_u32(&b, 8), put_u64(&b, 1ull << 62)), "strings cannot fit", "'toks'");
  CASE("huge key length", (header(&b, 0, 1), put_u64(&b, UINT64_MAX), put_u64(&b, 0)), "truncated", "pair 0");
  CASE("NUL in key", (header(&b, 0, 1), put_u64(&b, 3), put(&b, "a\0b", 3), put_u32(&b, 4), put_u32(&b, 0)), "NUL", NULL);
  CASE("duplicate key", (header(&b, 0, 2), kv_u32(&b, "dup", 1), kv_u32(&b, "dup", 2)), "duplicate key 'dup'", NULL);
  CASE("alignment type", (header(&b, 0, 1), kv_str(&b, "general.alignment", "32")), "general.alignment", NULL);
  CASE("alignment 0", (header(&b, 0, 1), kv_u32(&b, "general.alignment", 0)), "power of two", NULL);
  CASE("alignment 48", (header(&b, 0, 1), kv_u32(&b, "general.alignment", 48)), "power of two", NULL);
  CASE("unknown ggml type", (header(&b, 1, 0), tensor_info(&b, "t", (int[]){4}, 1, 99, 0), pad_to(&b, 32), put(&b, f4, 16)), "'t'", "ggml type 99");
  CASE("33 dims", (header(&b, 1, 0), put_str(&b, "t"), put_u32(&b, 33), put(&b, f4, 16), put(&b, f4, 16)), "'t'", "33 dimensions");
  CASE("dim too large", (header(&b, 1, 0), put_str(&b, "big"), put_u32(&b, 1), put_u64(&b, 1ull << 31), put(&b, f4, 16)), "'big'", "dimension");
  CASE("count overflow", (header(&b, 1, 0), put_str(&b, "t"), put_u32(&b, 3), put_u64(&b, INT_MAX), put_u64(&b, INT_MAX), put_u64(&b, INT_MAX), put_u32(&b, 0), put_u64(&b, 0)), "'t'", "overflows");
  CASE("block multiple", (header(&b, 1, 0), tensor_info(&b, "q", (int[]){2, 16}, 2, 2, 0), pad_to(&b, 32), put(&b, q4_block, 18), put(&b, q4_block, 18)), "'q'", "block size 32");
  CASE("misaligned offset", (header(&b, 1, 0), tensor_info(&b, "t", (int[]){4}, 1, 0, 4), pad_to(&b, 32), put(&b, f4, 16), put(&b, f4, 16)), "'t'", "alignment 32");
  CASE("data past the end", (header(&b, 1, 0), tensor_info(&b, "t", (int[]){4}, 1, 0, 0), pad_to(&b, 32), put(&b, f4, 12)), "'t'", "past the end");
  CASE("offset overflow", (header(&b, 1, 0), tensor_info(&b, "t", (int[]){4}, 1, 0, UINT64_MAX - 31), pad_to(&b, 32), put(&b, f4, 16)), "'t'", "past the end");
  CASE("overlap", (header(&b, 2, 0), tensor_info(&b, "a", (int[]){16}, 1, 0, 0), tensor_info(&b, "b", (int[]){4}, 1, 0, 32), pad_to(&b, 32), put(&b, f4, 16), put(&b, f4, 16), put(&b, f4, 16), put(&b, f4, 16)), "overlap", "'b'");
  CASE("duplicate tensor", (header(&b, 2, 0), tensor_info(&b, "x", (int[]){4}, 1, 0, 0), tensor_info(&b, "x", (int[]){4}, 1, 0, 32), pad_to(&b, 32), put(&b, f4, 16), put(&b, f4, 16), put(&b, f4, 16), put(&b, f4, 16)), "two tensors are named 'x'", NULL);
  /* the affine triple of "x.weight" collides with a tensor named "x.scales" */
  CASE("affine name collision", (header(&b, 2, 0), tensor_info(&b, "x.weight", (int[]){32}, 1, 2, 0), tensor_info(&b, "x.scales", (int[]){4}, 1, 0, 32), pad_to(&b, 32), put(&b, q4_block, 18), put(&b, f4, 14), put(&b, f4, 16)), "two tensors are named 'x.scales'", NULL);
  /* Q8_0 with d = 1000: the bias -128 d overflows float16; dequantized loading still works */
  uint8_t q8[34] = {0};
  put_f16(q8, 1000.0f);
  CASE("bias overflow", one_tensor_file(&b, "big.weight", (int[]){32}, 1, 8, q8, 34), "'big.weight'", "float16 bias");
  mlx_io_gguf g = mlx_io_gguf_new();
  CHECK(mlxc_gguf_load(&g, io_path("bad.gguf"), dequantized_f32()) == 0);
  mlx_io_gguf_free(g);
#undef CASE
  free(b.data);
  mlxc_set_errors_quiet(prev);
}

TEST(test_gguf_every_truncation_of_a_valid_file_fails) {
  int prev = mlxc_set_errors_quiet(1);
  /* metadata of several kinds, a plain and a quantized tensor, no trailing padding */
  bytes b = {0};
  float w[4] = {1, 2, 3, 4};
  header(&b, 2, 3);
  kv_str(&b, "general.name", "cut");
  kv_u32(&b, "general.alignment", 16);
  put_str(&b, "toks");
  put_u32(&b, 9);
  put_u32(&b, 8);
  put_u64(&b, 2);
  put_str(&b, "ab");
  put_str(&b, "c");
  tensor_info(&b, "w", (int[]){4}, 1, 0, 0);
  tensor_info(&b, "q.weight", (int[]){32}, 1, 2, 16);
  pad_to(&b, 16);
  put(&b, w, 16);
  put(&b, q4_block, 18);
  save_bytes("whole.gguf", &b);
  mlx_io_gguf g = mlx_io_gguf_new();
  CHECK_MSG(mlx_load_gguf(&g, io_path("whole.gguf"), cpu) == 0, "%s", mlxc_last_error());
  int loaded = 0;
  for (size_t n = 0; n < b.size; n++) {
    CHECK(io_write_file(io_path("cut.gguf"), b.data, n) == 0);
    if (mlx_load_gguf(&g, io_path("cut.gguf"), cpu) == 0) loaded++;
  }
  CHECK_EQ_INT(loaded, 0);
  mlx_io_gguf_free(g);
  free(b.data);
  mlxc_set_errors_quiet(prev);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_gguf_loads_python_built_metadata_and_plain_tensors);
  RUN(test_gguf_dequantizes_every_block_type_like_the_python_reference);
  RUN(test_gguf_affine_conversion_equals_the_dequantized_values);
  RUN(test_gguf_hand_packed_32_element_blocks);
  RUN(test_gguf_hand_packed_q2_k_and_q3_k);
  RUN(test_gguf_hand_packed_q4_k_q5_k_q6_k);
  RUN(test_gguf_round_trip_metadata_and_tensors);
  RUN(test_gguf_file_is_byte_exact);
  RUN(test_gguf_accessors_follow_mlx_c);
  RUN(test_gguf_save_errors_leave_no_file);
  RUN(test_gguf_rejects_corrupt_headers_with_clear_errors);
  RUN(test_gguf_every_truncation_of_a_valid_file_fails);
  io_remove_scratch();
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
