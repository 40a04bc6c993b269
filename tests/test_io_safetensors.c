/* safetensors loading and saving: a hand-built reference file, byte-exact output, round trips of
 * every dtype, memory-mapped loading without copies, metadata, streams and error paths. */
#include <stdint.h>

#include "mlxc/error.h"
#include "test_util.h"
#include "io_memstream.h"
#include "io_test_util.h"

static mlx_stream cpu;

/* The tensor `name` of `m` (an empty handle when missing). */
static mlx_array get(mlx_map_string_to_array m, const char* name) {
  mlx_array a = mlx_array_new();
  CHECK_MSG(mlx_map_string_to_array_get(&a, m, name) == 0, "missing tensor %s", name);
  return a;
}

static const char* meta_get(mlx_map_string_to_string m, const char* key) {
  const char* v = NULL;
  return mlx_map_string_to_string_get(&v, m, key) == 0 ? v : NULL;
}

static void check_mixed_fixture(mlx_map_string_to_array t, mlx_map_string_to_string meta) {
  static const char* order[8] = {"weight", "bias", "mask", "half", "brain", "big", "nothing", "wide"};
  mlx_map_string_to_array_iterator it = mlx_map_string_to_array_iterator_new(t);
  const char* key;
  mlx_array v = mlx_array_new();
  int i = 0;
  while (!mlx_map_string_to_array_iterator_next(&key, &v, it)) {
    CHECK(i < 8 && !strcmp(key, order[i]));
    i++;
  }
  CHECK_EQ_INT(i, 8);
  mlx_array_free(v);
  mlx_map_string_to_array_iterator_free(it);

  mlx_array a = get(t, "weight");
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_FLOAT32);
  CHECK(io_shape_equals(a, (int[]){2, 2}, 2));
  const float* f = (const float*)io_bytes(a);
  for (int k = 0; f && k < 4; k++) CHECK_NEAR(f[k], k / 8.0 - 0.25, 0);
  mlx_array_free(a);
  a = get(t, "bias");
  const int32_t* s = (const int32_t*)io_bytes(a);
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_INT32);
  for (int k = 0; s && k < 3; k++) CHECK_EQ_INT(s[k], -1000000 * (k + 1));
  mlx_array_free(a);
  a = get(t, "mask");
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_BOOL);
  CHECK(io_bytes(a) && !memcmp(io_bytes(a), "\1\0\1", 3));
  mlx_array_free(a);
  a = get(t, "half"); /* 1.5, -2.0 as IEEE half bits */
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_FLOAT16);
  const uint16_t* h = (const uint16_t*)io_bytes(a);
  CHECK(h && h[0] == 0x3E00 && h[1] == 0xC000);
  mlx_array_free(a);
  a = get(t, "brain"); /* 3.0, -0.5 as bfloat16 bits */
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_BFLOAT16);
  h = (const uint16_t*)io_bytes(a);
  CHECK(h && h[0] == 0x4040 && h[1] == 0xBF00);
  mlx_array_free(a);
  a = get(t, "big");
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_UINT64);
  CHECK_EQ_INT(mlx_array_ndim(a), 0);
  CHECK(io_bytes(a) && *(const uint64_t*)io_bytes(a) == (1ull << 63) + 5);
  mlx_array_free(a);
  a = get(t, "nothing");
  CHECK(io_shape_equals(a, (int[]){0, 4}, 2));
  mlx_array_free(a);
  a = get(t, "wide");
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_FLOAT64);
  const double* d = (const double*)io_bytes(a);
  CHECK(d && d[0] == 0.1 && d[1] == 1e300);
  mlx_array_free(a);
  CHECK_STR(meta_get(meta, "format"), "pt");
  CHECK_STR(meta_get(meta, "note"), "hand-built");
}

TEST(test_safetensors_loads_hand_built_reference_file) {
  mlx_map_string_to_array t = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  CHECK_MSG(mlx_load_safetensors(&t, &meta, io_fixture("mixed.safetensors"), cpu) == 0, "%s",
            mlxc_last_error());
  check_mixed_fixture(t, meta);

  /* The same file through a reader (copies instead of mapping). */
  size_t size;
  unsigned char* file = io_read_file(io_fixture("mixed.safetensors"), &size);
  memstream m = memstream_over(file, size);
  mlx_io_reader r = mlx_io_reader_new(&m, memstream_vtable());
  CHECK_MSG(mlx_load_safetensors_reader(&t, &meta, r, cpu) == 0, "%s", mlxc_last_error());
  check_mixed_fixture(t, meta);
  mlx_io_reader_free(r);
  free(file);
  mlx_map_string_to_array_free(t);
  mlx_map_string_to_string_free(meta);
}

TEST(test_safetensors_unaligned_data_is_copied) {
  mlx_map_string_to_array t = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  CHECK_MSG(mlx_load_safetensors(&t, &meta, io_fixture("unaligned.safetensors"), cpu) == 0, "%s",
            mlxc_last_error());
  mlx_array a = get(t, "a"), b = get(t, "b");
  CHECK(io_bytes(a) && !memcmp(io_bytes(a), "\7\11", 2));
  const float* f = (const float*)io_bytes(b);
  CHECK(f && ((uintptr_t)f % 4) == 0 && f[0] == 1 && f[1] == 2 && f[2] == 4);
  mlx_array_free(a);
  mlx_array_free(b);
  mlx_map_string_to_array_free(t);
  mlx_map_string_to_string_free(meta);
}

static const mlx_dtype all_dtypes[14] = {
    MLX_BOOL,  MLX_UINT8,   MLX_UINT16,  MLX_UINT32,   MLX_UINT64,  MLX_INT8,     MLX_INT16,
    MLX_INT32, MLX_INT64,   MLX_FLOAT16, MLX_FLOAT32,  MLX_FLOAT64, MLX_BFLOAT16, MLX_COMPLEX64};

TEST(test_safetensors_round_trip_every_dtype_shape_and_metadata) {
  const int shapes[4][5] = {{0}, {0, 3}, {2, 3}, {2, 1, 3, 1, 2}};
  const int ndims[4] = {0, 2, 2, 5};
  static unsigned char data[14][4][12 * 8];
  mlx_map_string_to_array in = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta_in = mlx_map_string_to_string_new();
  mlx_map_string_to_string_insert(meta_in, "format", "mlx");
  mlx_map_string_to_string_insert(meta_in, "unicode", "h\xc3\xa9llo \"quoted\"\n");
  char names[56][16];
  for (int t = 0; t < 14; t++)
    for (int s = 0; s < 4; s++) {
      size_t n = 1;
      for (int i = 0; i < ndims[s]; i++) n *= (size_t)shapes[s][i];
      io_fill_pattern(data[t][s], n, all_dtypes[t], (unsigned)(t * 4 + s));
      mlx_array a = mlx_array_new_data(data[t][s], shapes[s], ndims[s], all_dtypes[t]);
      /* names out of alphabetical order, to check that insertion order is kept */
      snprintf(names[t * 4 + s], sizeof names[0], "z%02d.%d", 13 - t, s);
      mlx_map_string_to_array_insert(in, names[t * 4 + s], a);
      mlx_array_free(a);
    }
  CHECK_MSG(mlx_save_safetensors(io_path("all.safetensors"), in, meta_in) == 0, "%s", mlxc_last_error());
  mlx_map_string_to_array out = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta_out = mlx_map_string_to_string_new();
  CHECK_MSG(mlx_load_safetensors(&out, &meta_out, io_path("all.safetensors"), cpu) == 0, "%s",
            mlxc_last_error());
  mlx_map_string_to_array_iterator it = mlx_map_string_to_array_iterator_new(out);
  const char* key;
  mlx_array v = mlx_array_new();
  int k = 0;
  while (!mlx_map_string_to_array_iterator_next(&key, &v, it)) {
    int t = k / 4, s = k % 4;
    CHECK_STR(key, names[k]);
    CHECK_EQ_INT(mlx_array_dtype(v), all_dtypes[t]);
    CHECK(io_shape_equals(v, shapes[s], ndims[s]));
    size_t nbytes = mlx_array_nbytes(v);
    CHECK_MSG(nbytes == 0 || (io_bytes(v) && !memcmp(io_bytes(v), data[t][s], nbytes)), "%s", key);
    k++;
  }
  CHECK_EQ_INT(k, 56);
  CHECK_STR(meta_get(meta_out, "format"), "mlx");
  CHECK_STR(meta_get(meta_out, "unicode"), "h\xc3\xa9llo \"quoted\"\n");
  mlx_array_free(v);
  mlx_map_string_to_array_iterator_free(it);
  mlx_map_string_to_array_free(in);
  mlx_map_string_to_array_free(out);
  mlx_map_string_to_string_free(meta_in);
  mlx_map_string_to_string_free(meta_out);
}

TEST(test_safetensors_file_is_byte_exact) {
  float b[2] = {1.0f, -2.0f};
  int32_t a = 0x01020304;
  mlx_map_string_to_array m = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_array ab = mlx_array_new_data(b, (int[]){2}, 1, MLX_FLOAT32);
  mlx_array aa = mlx_array_new_data(&a, (int[]){1, 1}, 2, MLX_INT32);
  mlx_map_string_to_array_insert(m, "b", ab);
  mlx_map_string_to_array_insert(m, "a", aa);
  mlx_map_string_to_string_insert(meta, "k", "v");
  CHECK(mlx_save_safetensors(io_path("exact"), m, meta) == 0); /* ".safetensors" appended */
  size_t size;
  unsigned char* file = io_read_file(io_path("exact.safetensors"), &size);
  const char* json = "{\"__metadata__\":{\"k\":\"v\"},"
                     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"a\":{\"dtype\":\"I32\",\"shape\":[1,1],\"data_offsets\":[8,12]}}";
  size_t len = (strlen(json) + 7) / 8 * 8;
  unsigned char expected[256] = {(unsigned char)len};
  memcpy(expected + 8, json, strlen(json));
  memset(expected + 8 + strlen(json), ' ', len - strlen(json));
  memcpy(expected + 8 + len, "\x00\x00\x80\x3f\x00\x00\x00\xc0\x04\x03\x02\x01", 12);
  CHECK_EQ_INT(size, 8 + len + 12);
  CHECK(file && size == 8 + len + 12 && !memcmp(file, expected, size));
  free(file);
  mlx_array_free(aa);
  mlx_array_free(ab);
  mlx_map_string_to_array_free(m);
  mlx_map_string_to_string_free(meta);
}

TEST(test_safetensors_saves_strided_inputs) {
  float values[6] = {0, 1, 2, 3, 4, 5};
  mlx_array a = mlx_array_new_data(values, (int[]){2, 3}, 2, MLX_FLOAT32), t = mlx_array_new();
  CHECK(mlx_transpose(&t, a, cpu) == 0);
  mlx_map_string_to_array m = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_map_string_to_array_insert(m, "t", t);
  mlx_map_string_to_array_insert(m, "a", a);
  CHECK(mlx_save_safetensors(io_path("strided.safetensors"), m, meta) == 0);
  CHECK(mlx_load_safetensors(&m, &meta, io_path("strided.safetensors"), cpu) == 0);
  mlx_array lt = get(m, "t"), la = get(m, "a");
  const float expected[6] = {0, 3, 1, 4, 2, 5};
  CHECK(io_shape_equals(lt, (int[]){3, 2}, 2));
  CHECK(io_bytes(lt) && !memcmp(io_bytes(lt), expected, sizeof expected));
  CHECK(io_bytes(la) && !memcmp(io_bytes(la), values, sizeof values));
  mlx_array_free(a);
  mlx_array_free(t);
  mlx_array_free(lt);
  mlx_array_free(la);
  mlx_map_string_to_array_free(m);
  mlx_map_string_to_string_free(meta);
}

/* Whether /proc/self/maps lists a mapping of `path` that contains `p` (or any when p is NULL). */
static int mapped_from(const void* p, const char* path) {
  FILE* f = fopen("/proc/self/maps", "r");
  char line[1024];
  int found = 0;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) != 2 || !strstr(line, path)) continue;
    if (!p || ((uintptr_t)p >= lo && (uintptr_t)p < hi)) found = 1;
  }
  if (f) fclose(f);
  return found;
}

TEST(test_safetensors_file_load_maps_without_copying) {
  enum { N = 1 << 20 }; /* two 4 MiB tensors */
  float* big = malloc(N * sizeof *big);
  for (int i = 0; i < N; i++) big[i] = (float)i;
  mlx_array x = mlx_array_new_data(big, (int[]){N}, 1, MLX_FLOAT32);
  mlx_array y = mlx_array_new_data(big, (int[]){N / 2, 2}, 2, MLX_FLOAT32);
  mlx_map_string_to_array m = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_map_string_to_array_insert(m, "x", x);
  mlx_map_string_to_array_insert(m, "y", y);
  CHECK(mlx_save_safetensors(io_path("big.safetensors"), m, meta) == 0);
  mlx_map_string_to_array_free(m);
  mlx_array_free(x);
  mlx_array_free(y);
  m = mlx_map_string_to_array_new();

  size_t before = 0, after = 0;
  mlx_get_active_memory(&before);
  CHECK(mlx_load_safetensors(&m, &meta, io_path("big.safetensors"), cpu) == 0);
  mlx_get_active_memory(&after);
  CHECK_MSG(after - before < 4096, "active memory grew by %zu bytes", after - before);
  x = get(m, "x");
  y = get(m, "y");
  mlx_map_string_to_array_free(m); /* the tensors keep the mapping alive */
  const float* px = mlx_array_data_float32(x);
  const float* py = mlx_array_data_float32(y);
  CHECK(mapped_from(px, io_path("big.safetensors")));
  CHECK(py == px + N); /* y's bytes follow x's in the same mapping */
  unlink(io_path("big.safetensors")); /* deleting the file does not invalidate them */
  CHECK(px && py && px[12345] == 12345.0f && py[N - 1] == (float)(N - 1));
  mlx_array_free(x);
  CHECK(mapped_from(NULL, "big.safetensors")); /* y still holds it */
  mlx_array_free(y);
  CHECK(!mapped_from(NULL, "big.safetensors"));
  mlx_map_string_to_string_free(meta);
  free(big);
}

/* Expects loading `bytes` (as a file and through a reader) to fail with `needle` in the message,
 * and the result maps to be left as they were. */
static void expect_load_error(const void* bytes, size_t size, const char* needle) {
  mlx_map_string_to_array t = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_array keep = mlx_array_new_int(1);
  mlx_map_string_to_array_insert(t, "keep", keep);
  CHECK(io_write_file(io_path("bad.safetensors"), bytes, size) == 0);
  mlxc_set_errors_quiet(1);
  int rc = mlx_load_safetensors(&t, &meta, io_path("bad.safetensors"), cpu);
  CHECK_MSG(rc != 0 && strstr(mlxc_last_error(), needle) && strstr(mlxc_last_error(), "bad.safetensors"),
            "file: expected '%s', got '%s'", needle, mlxc_last_error());
  memstream m = memstream_over(bytes, size);
  mlx_io_reader r = mlx_io_reader_new(&m, memstream_vtable());
  rc = mlx_load_safetensors_reader(&t, &meta, r, cpu);
  CHECK_MSG(rc != 0 && strstr(mlxc_last_error(), needle), "reader: expected '%s', got '%s'",
            needle, mlxc_last_error());
  mlx_io_reader_free(r);
  mlxc_set_errors_quiet(0);
  mlx_array got = mlx_array_new();
  CHECK(mlx_map_string_to_array_get(&got, t, "keep") == 0);
  mlx_array_free(got);
  mlx_array_free(keep);
  mlx_map_string_to_array_free(t);
  mlx_map_string_to_string_free(meta);
}

/* A file with the given JSON header and `data_bytes` zero bytes of data. */
static size_t make_file(unsigned char* out, const char* json, size_t data_bytes) {
  size_t len = strlen(json);
  for (int i = 0; i < 8; i++) out[i] = (unsigned char)(len >> (8 * i));
  memcpy(out + 8, json, len);
  memset(out + 8 + len, 0, data_bytes);
  return 8 + len + data_bytes;
}

TEST(test_safetensors_rejects_bad_files_with_clear_errors) {
  unsigned char buf[1024];
  size_t n;
  mlx_map_string_to_array t = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlxc_set_errors_quiet(1);
  CHECK(mlx_load_safetensors(&t, &meta, io_path("missing.safetensors"), cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "missing.safetensors") && strstr(mlxc_last_error(), "No such file"));
  CHECK(mlx_load_safetensors(NULL, &meta, io_path("missing.safetensors"), cpu) != 0);
  mlxc_set_errors_quiet(0);
  mlx_map_string_to_array_free(t);
  mlx_map_string_to_string_free(meta);

  n = make_file(buf, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8);
  expect_load_error(buf, n, "invalid JSON header");
  n = make_file(buf, "[1, 2]", 0);
  expect_load_error(buf, n, "not an object");
  n = make_file(buf, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16);
  expect_load_error(buf, n, "duplicate");
  n = make_file(buf, "{\"w\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
  expect_load_error(buf, n, "tensor 'w': unsupported dtype 'F8'");
  n = make_file(buf, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12);
  expect_load_error(buf, n, "tensor 'w': shape and dtype F32 need 8 bytes");
  n = make_file(buf, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4);
  expect_load_error(buf, n, "tensor 'w': data_offsets [0, 8] run past the end");
  n = make_file(buf, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8);
  expect_load_error(buf, n, "tensor 'w': data_offsets must be");
  n = make_file(buf, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}}", 8);
  expect_load_error(buf, n, "tensor 'w': data_offsets must be");
  n = make_file(buf, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8);
  expect_load_error(buf, n, "tensor 'w': data_offsets must be");
  n = make_file(buf, "{\"u\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
  expect_load_error(buf, n, "tensors 'u' [0, 8] and 'v' [4, 12] overlap");
  n = make_file(buf, "{\"w\":{\"dtype\":\"I64\",\"shape\":[2147483647,2147483647,2147483647],"
                     "\"data_offsets\":[0,8]}}", 8);
  expect_load_error(buf, n, "tensor 'w': shape is too large");
  n = make_file(buf, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8);
  expect_load_error(buf, n, "tensor 'w': shape entry 0");
  n = make_file(buf, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8);
  expect_load_error(buf, n, "tensor 'w': shape entry 0");
  n = make_file(buf, "{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8);
  expect_load_error(buf, n, "tensor 'w': needs");
  n = make_file(buf, "{\"w\":[1,2]}", 0);
  expect_load_error(buf, n, "tensor 'w': description is not an object");
  n = make_file(buf, "{\"__metadata__\":{\"k\":1}}", 0);
  expect_load_error(buf, n, "__metadata__ value of 'k' is not a string");
  n = make_file(buf, "{\"__metadata__\":[\"k\"]}", 0);
  expect_load_error(buf, n, "__metadata__ is not an object");
  /* Header lengths: zero, huge, beyond the file. */
  memset(buf, 0, 16);
  expect_load_error(buf, 16, "invalid header length 0");
  memcpy(buf, "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
  expect_load_error(buf, 10, "invalid header length 18446744073709551615");
  memcpy(buf, "\x00\xe1\xf5\x05\x00\x00\x00\x00{}", 10); /* exactly the 1e8 limit */
  expect_load_error(buf, 10, "invalid header length 100000000");
  memcpy(buf, "\x40\x00\x00\x00\x00\x00\x00\x00{}", 10);
  expect_load_error(buf, 10, "runs past the end of the file");
  /* Not a safetensors file at all (an .npy file). */
  size_t size;
  unsigned char* npy = io_read_file(io_fixture("f32_2x3.npy"), &size);
  CHECK(npy != NULL);
  if (npy) expect_load_error(npy, size, "invalid header length");
  free(npy);
}

TEST(test_safetensors_every_truncation_of_a_valid_file_fails) {
  size_t size;
  unsigned char* file = io_read_file(io_fixture("mixed.safetensors"), &size);
  CHECK(file != NULL);
  for (size_t n = 0; file && n < size; n++) expect_load_error(file, n, "");
  free(file);
}

TEST(test_safetensors_streams_and_save_errors) {
  float v[3] = {1, 2, 3};
  mlx_array a = mlx_array_new_data(v, (int[]){3}, 1, MLX_FLOAT32);
  mlx_map_string_to_array m = mlx_map_string_to_array_new();
  mlx_map_string_to_string meta = mlx_map_string_to_string_new();
  mlx_map_string_to_array_insert(m, "v", a);
  mlx_map_string_to_string_insert(meta, "who", "stream");

  memstream out = {0};
  mlx_io_writer w = mlx_io_writer_new(&out, memstream_vtable());
  CHECK(mlx_save_safetensors_writer(w, m, meta) == 0);
  mlx_io_writer_free(w);
  CHECK(mlx_save_safetensors(io_path("stream.safetensors"), m, meta) == 0);
  size_t size;
  unsigned char* file = io_read_file(io_path("stream.safetensors"), &size);
  CHECK(file && size == out.size && !memcmp(file, out.data, size));
  free(file);

  mlx_map_string_to_array t = mlx_map_string_to_array_new();
  mlx_map_string_to_string tm = mlx_map_string_to_string_new();
  memstream in = memstream_over(out.data, out.size);
  mlx_io_reader r = mlx_io_reader_new(&in, memstream_vtable());
  CHECK(mlx_load_safetensors_reader(&t, &tm, r, cpu) == 0);
  mlx_io_reader_free(r);
  mlx_array got = get(t, "v");
  CHECK(io_bytes(got) && !memcmp(io_bytes(got), v, sizeof v));
  CHECK_STR(meta_get(tm, "who"), "stream");
  mlx_array_free(got);

  mlxc_set_errors_quiet(1);
  memstream failing = {.fail_after = 30};
  w = mlx_io_writer_new(&failing, memstream_vtable());
  CHECK(mlx_save_safetensors_writer(w, m, meta) != 0);
  mlx_io_writer_free(w);
  free(failing.data);
  CHECK(mlx_save_safetensors(io_path("no/such/dir/x.safetensors"), m, meta) != 0);
  CHECK(strstr(mlxc_last_error(), "no/such/dir") != NULL);
  mlx_map_string_to_array_insert(m, "__metadata__", a);
  CHECK(mlx_save_safetensors(io_path("reserved.safetensors"), m, meta) != 0);
  CHECK(strstr(mlxc_last_error(), "reserved") != NULL);
  mlx_map_string_to_array_free(m);
  m = mlx_map_string_to_array_new();
  mlx_map_string_to_array_insert(m, "bad\xff", a);
  CHECK(mlx_save_safetensors(io_path("utf8.safetensors"), m, meta) != 0);
  CHECK(strstr(mlxc_last_error(), "UTF-8") != NULL);
  CHECK(mlx_save_safetensors(io_path("x"), (mlx_map_string_to_array){NULL}, meta) != 0);
  mlxc_set_errors_quiet(0);
  CHECK_EQ_INT(io_count_files(".tmp."), 0);
  CHECK_EQ_INT(io_count_files("utf8"), 0);

  free(out.data);
  mlx_array_free(a);
  mlx_map_string_to_array_free(m);
  mlx_map_string_to_array_free(t);
  mlx_map_string_to_string_free(meta);
  mlx_map_string_to_string_free(tm);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_safetensors_loads_hand_built_reference_file);
  RUN(test_safetensors_unaligned_data_is_copied);
  RUN(test_safetensors_round_trip_every_dtype_shape_and_metadata);
  RUN(test_safetensors_file_is_byte_exact);
  RUN(test_safetensors_saves_strided_inputs);
  RUN(test_safetensors_file_load_maps_without_copying);
  RUN(test_safetensors_rejects_bad_files_with_clear_errors);
  RUN(test_safetensors_every_truncation_of_a_valid_file_fails);
  RUN(test_safetensors_streams_and_save_errors);
  io_remove_scratch();
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
