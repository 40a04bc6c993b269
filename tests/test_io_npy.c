/* .npy loading and saving (mlx_load, mlx_save and the stream forms): NumPy-written fixtures,
 * byte-exact headers, round trips of every dtype, strided inputs, atomic saves, error paths. */
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>

#include "mlxc/error.h"
#include "test_util.h"
#include "io_memstream.h"
#include "io_test_util.h"

static mlx_stream cpu;

static mlx_array load_fixture(const char* name) {
  mlx_array a = mlx_array_new();
  CHECK_MSG(mlx_load(&a, io_fixture(name), cpu) == 0, "%s: %s", name, mlxc_last_error());
  return a;
}

TEST(test_npy_loads_numpy_fixtures_c_order) {
  mlx_array a = load_fixture("f32_2x3.npy");
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_FLOAT32);
  CHECK(io_shape_equals(a, (int[]){2, 3}, 2));
  const float* f = mlx_array_data_float32(a);
  for (int i = 0; f && i < 6; i++) CHECK_NEAR(f[i], i * 0.5 - 1, 0);
  mlx_array_free(a);

  a = load_fixture("b1_5.npy");
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_BOOL);
  const unsigned char* b = io_bytes(a);
  for (int i = 0; b && i < 5; i++) CHECK_EQ_INT(b[i], i % 2 == 0);
  mlx_array_free(a);

  a = load_fixture("f2_4.npy"); /* -0.5, -0.25, 0, 0.25 as IEEE half bits */
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_FLOAT16);
  const uint16_t expected_half[4] = {0xB800, 0xB400, 0x0000, 0x3400};
  const uint16_t* h = (const uint16_t*)io_bytes(a);
  for (int i = 0; h && i < 4; i++) CHECK_EQ_INT(h[i], expected_half[i]);
  mlx_array_free(a);

  a = load_fixture("u16_scalar.npy");
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_UINT16);
  CHECK_EQ_INT(mlx_array_ndim(a), 0);
  CHECK_EQ_INT(*(const uint16_t*)io_bytes(a), 65000);
  mlx_array_free(a);

  a = load_fixture("f32_empty_0x3.npy");
  CHECK(io_shape_equals(a, (int[]){0, 3}, 2));
  CHECK_EQ_INT(mlx_array_size(a), 0);
  mlx_array_free(a);

  a = load_fixture("i8_5d.npy");
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_INT8);
  CHECK(io_shape_equals(a, (int[]){2, 2, 1, 2, 1}, 5));
  const int8_t* s8 = (const int8_t*)io_bytes(a);
  for (int i = 0; s8 && i < 8; i++) CHECK_EQ_INT(s8[i], i - 4);
  mlx_array_free(a);

  const char* versions[2] = {"u8_v2.npy", "u8_v3.npy"};
  for (int v = 0; v < 2; v++) {
    a = load_fixture(versions[v]);
    CHECK_EQ_INT(mlx_array_dtype(a), MLX_UINT8);
    const unsigned char* u = io_bytes(a);
    for (int i = 0; u && i < 4; i++) CHECK_EQ_INT(u[i], 250 + i);
    mlx_array_free(a);
  }
}

TEST(test_npy_loads_fortran_order_and_big_endian) {
  mlx_array a = load_fixture("i64_fortran_3x4.npy");
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_INT64);
  CHECK(io_shape_equals(a, (int[]){3, 4}, 2));
  const int64_t* v = (const int64_t*)io_bytes(a);
  for (int r = 0; v && r < 3; r++)
    for (int c = 0; c < 4; c++) CHECK_EQ_INT(v[r * 4 + c], 10 * r + c);
  mlx_array_free(a);

  a = load_fixture("f64_big_endian_5.npy");
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_FLOAT64);
  const double* d = (const double*)io_bytes(a);
  for (int i = 0; d && i < 5; i++) CHECK_NEAR(d[i], pow(1.5, i), 0);
  mlx_array_free(a);

  a = load_fixture("i16_big_endian_fortran_2x3x2.npy");
  CHECK_EQ_INT(mlx_array_dtype(a), MLX_INT16);
  CHECK(io_shape_equals(a, (int[]){2, 3, 2}, 3));
  const int16_t* s = (const int16_t*)io_bytes(a);
  for (int i = 0; s && i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 2; k++) CHECK_EQ_INT(s[(i * 3 + j) * 2 + k], 100 * i + 10 * j + k - 50);
  mlx_array_free(a);

  const char* complex_files[2] = {"c8_3.npy", "c8_big_endian_3.npy"};
  for (int f = 0; f < 2; f++) {
    a = load_fixture(complex_files[f]);
    CHECK_EQ_INT(mlx_array_dtype(a), MLX_COMPLEX64);
    const float* c = (const float*)io_bytes(a);
    for (int i = 0; c && i < 3; i++) {
      CHECK_NEAR(c[2 * i], i + 1, 0);
      CHECK_NEAR(c[2 * i + 1], -i / 4.0, 0);
    }
    mlx_array_free(a);
  }
}

static const mlx_dtype all_dtypes[14] = {
    MLX_BOOL,  MLX_UINT8,   MLX_UINT16,  MLX_UINT32,   MLX_UINT64,  MLX_INT8,     MLX_INT16,
    MLX_INT32, MLX_INT64,   MLX_FLOAT16, MLX_FLOAT32,  MLX_FLOAT64, MLX_BFLOAT16, MLX_COMPLEX64};

TEST(test_npy_round_trip_every_dtype_and_shape) {
  const int shapes[4][5] = {{0}, {0, 3}, {2, 3}, {2, 1, 3, 1, 2}};
  const int ndims[4] = {0, 2, 2, 5};
  unsigned char data[12 * 8];
  for (int t = 0; t < 14; t++)
    for (int s = 0; s < 4; s++) {
      size_t n = 1;
      for (int i = 0; i < ndims[s]; i++) n *= (size_t)shapes[s][i];
      io_fill_pattern(data, n, all_dtypes[t], (unsigned)(t * 4 + s));
      mlx_array a = mlx_array_new_data(data, shapes[s], ndims[s], all_dtypes[t]);
      mlx_array b = mlx_array_new();
      CHECK_MSG(mlx_save(io_path("rt.npy"), a) == 0, "%s", mlxc_last_error());
      CHECK_MSG(mlx_load(&b, io_path("rt.npy"), cpu) == 0, "%s", mlxc_last_error());
      CHECK_EQ_INT(mlx_array_dtype(b), all_dtypes[t]);
      CHECK(io_shape_equals(b, shapes[s], ndims[s]));
      size_t nbytes = n * mlx_dtype_size(all_dtypes[t]);
      CHECK_MSG(nbytes == 0 || (io_bytes(b) && !memcmp(io_bytes(b), data, nbytes)),
                "dtype %d shape #%d", t, s);
      mlx_array_free(a);
      mlx_array_free(b);
    }
}

TEST(test_npy_header_is_byte_exact) {
  static const char* descrs[14] = {"|b1", "|u1", "<u2", "<u4", "<u8", "|i1", "<i2",
                                   "<i4", "<i8", "<f2", "<f4", "<f8", "<V2", "<c8"};
  const int shapes[3][2] = {{0}, {5}, {2, 3}};
  const char* shape_text[3] = {"()", "(5,)", "(2, 3)"};
  unsigned char data[6 * 8] = {0};
  for (int t = 0; t < 14; t++)
    for (int s = 0; s < 3; s++) {
      mlx_array a = mlx_array_new_data(data, shapes[s], s, all_dtypes[t]);
      CHECK(mlx_save(io_path("hdr.npy"), a) == 0);
      size_t size;
      unsigned char* file = io_read_file(io_path("hdr.npy"), &size);
      char expected[128];
      snprintf(expected, sizeof expected, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
               descrs[t], shape_text[s]);
      size_t len = file && size >= 10 ? (size_t)(file[8] | file[9] << 8) : 0;
      CHECK(file && size >= 10 && !memcmp(file, "\x93NUMPY\x01\x00", 8));
      CHECK_EQ_INT((10 + len) % 64, 0);
      CHECK_EQ_INT(size, 10 + len + mlx_array_nbytes(a));
      if (file && len > strlen(expected) && 10 + len <= size) {
        CHECK(!memcmp(file + 10, expected, strlen(expected)));
        for (size_t i = 10 + strlen(expected); i < 10 + len - 1; i++) CHECK_EQ_INT(file[i], ' ');
        CHECK_EQ_INT(file[10 + len - 1], '\n');
      }
      free(file);
      mlx_array_free(a);
    }
}

TEST(test_npy_saves_strided_inputs_in_row_major_order) {
  float values[6] = {0, 1, 2, 3, 4, 5};
  mlx_array a = mlx_array_new_data(values, (int[]){2, 3}, 2, MLX_FLOAT32);
  mlx_array t = mlx_array_new(), sl = mlx_array_new(), bc = mlx_array_new(), b = mlx_array_new();
  CHECK(mlx_transpose(&t, a, cpu) == 0);  /* (3, 2): 0 3 1 4 2 5 */
  CHECK(mlx_slice(&sl, a, (int[]){0, 0}, 2, (int[]){2, 3}, 2, (int[]){1, 2}, 2, cpu) == 0); /* 0 2 3 5 */
  mlx_array row = mlx_array_new_data(values, (int[]){1, 3}, 2, MLX_FLOAT32);
  CHECK(mlx_broadcast_to(&bc, row, (int[]){2, 3}, 2, cpu) == 0); /* 0 1 2 0 1 2 */
  const struct {
    mlx_array x;
    int shape[2];
    float expected[6];
  } cases[3] = {{t, {3, 2}, {0, 3, 1, 4, 2, 5}}, {sl, {2, 2}, {0, 2, 3, 5}}, {bc, {2, 3}, {0, 1, 2, 0, 1, 2}}};
  for (int c = 0; c < 3; c++) {
    CHECK(mlx_save(io_path("strided.npy"), cases[c].x) == 0);
    CHECK(mlx_load(&b, io_path("strided.npy"), cpu) == 0);
    CHECK(io_shape_equals(b, cases[c].shape, 2));
    const float* f = mlx_array_data_float32(b);
    for (int i = 0; f && i < cases[c].shape[0] * cases[c].shape[1]; i++)
      CHECK_NEAR(f[i], cases[c].expected[i], 0);
  }
  mlx_array_free(a);
  mlx_array_free(t);
  mlx_array_free(sl);
  mlx_array_free(row);
  mlx_array_free(bc);
  mlx_array_free(b);
}

TEST(test_npy_save_appends_suffix_and_load_does_not) {
  mlx_array a = mlx_array_new_int(7), b = mlx_array_new();
  CHECK(mlx_save(io_path("plain"), a) == 0);
  size_t size;
  unsigned char* file = io_read_file(io_path("plain.npy"), &size);
  CHECK(file != NULL);
  free(file);
  CHECK(io_read_file(io_path("plain"), &size) == NULL);
  mlxc_set_errors_quiet(1);
  CHECK(mlx_load(&b, io_path("plain"), cpu) != 0); /* as MLX: load opens the name as given */
  mlxc_set_errors_quiet(0);
  CHECK(mlx_load(&b, io_path("plain.npy"), cpu) == 0);
  CHECK_EQ_INT(*(const int32_t*)io_bytes(b), 7);
  mlx_array_free(a);
  mlx_array_free(b);
}

TEST(test_npy_failed_save_keeps_the_old_file_and_no_temporary) {
  int32_t old_value = 42;
  mlx_array small = mlx_array_new_data(&old_value, NULL, 0, MLX_INT32);
  CHECK(mlx_save(io_path("keep.npy"), small) == 0);
  size_t before_size;
  unsigned char* before = io_read_file(io_path("keep.npy"), &before_size);
  /* A file size limit makes write() fail half way through a 1 MiB save. */
  static float big[1 << 18];
  mlx_array large = mlx_array_new_data(big, (int[]){1 << 18}, 1, MLX_FLOAT32);
  struct rlimit old_limit, limit;
  getrlimit(RLIMIT_FSIZE, &old_limit);
  limit = old_limit;
  limit.rlim_cur = 4096;
  void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  setrlimit(RLIMIT_FSIZE, &limit);
  mlxc_set_errors_quiet(1);
  CHECK(mlx_save(io_path("keep.npy"), large) != 0);
  CHECK(strstr(mlxc_last_error(), "keep.npy") != NULL);
  mlxc_set_errors_quiet(0);
  setrlimit(RLIMIT_FSIZE, &old_limit);
  signal(SIGXFSZ, old_handler);
  size_t after_size;
  unsigned char* after = io_read_file(io_path("keep.npy"), &after_size);
  CHECK(before && after && before_size == after_size && !memcmp(before, after, before_size));
  CHECK_EQ_INT(io_count_files(".tmp."), 0);
  free(before);
  free(after);
  mlx_array_free(small);
  mlx_array_free(large);
}

/* Expects mlx_load of `bytes` (through a file and through a reader) to fail mentioning `needle`. */
static void expect_load_error(const void* bytes, size_t size, const char* needle) {
  mlx_array a = mlx_array_new();
  CHECK(io_write_file(io_path("bad.npy"), bytes, size) == 0);
  mlxc_set_errors_quiet(1);
  int rc = mlx_load(&a, io_path("bad.npy"), cpu);
  CHECK_MSG(rc != 0 && strstr(mlxc_last_error(), needle) && strstr(mlxc_last_error(), "bad.npy"),
            "file: expected '%s', got '%s'", needle, mlxc_last_error());
  memstream m = memstream_over(bytes, size);
  mlx_io_reader r = mlx_io_reader_new(&m, memstream_vtable());
  rc = mlx_load_reader(&a, r, cpu);
  CHECK_MSG(rc != 0 && strstr(mlxc_last_error(), needle), "reader: expected '%s', got '%s'",
            needle, mlxc_last_error());
  mlx_io_reader_free(r);
  mlxc_set_errors_quiet(0);
  CHECK(a.ctx == NULL);
}

/* A version 1.0 file with the given header dict (padded) and `data_bytes` zero bytes of data. */
static size_t make_npy(unsigned char* out, const char* dict, size_t data_bytes) {
  size_t len = (10 + strlen(dict) + 1 + 63) / 64 * 64 - 10;
  memcpy(out, "\x93NUMPY\x01\x00", 8);
  out[8] = (unsigned char)len;
  out[9] = (unsigned char)(len >> 8);
  memset(out + 10, ' ', len);
  memcpy(out + 10, dict, strlen(dict));
  out[10 + len - 1] = '\n';
  memset(out + 10 + len, 0, data_bytes);
  return 10 + len + data_bytes;
}

TEST(test_npy_rejects_bad_files_with_clear_errors) {
  unsigned char buf[512];
  size_t n;
  mlx_array a = mlx_array_new();
  mlxc_set_errors_quiet(1);
  CHECK(mlx_load(&a, io_path("missing.npy"), cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "missing.npy") && strstr(mlxc_last_error(), "No such file"));
  CHECK(mlx_load(&a, io_scratch_dir, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "not a regular file") != NULL);
  mlxc_set_errors_quiet(0);

  expect_load_error("\x93NUMPX\x01\x00\x00\x00", 10, "bad magic");
  expect_load_error("\x93NUMPY\x04\x00\x00\x00", 10, "version 4.0");
  n = make_npy(buf, "{'descr': '<U5', 'fortran_order': False, 'shape': (2,), }", 40);
  expect_load_error(buf, n, "unsupported dtype '<U5'");
  n = make_npy(buf, "{'descr': '<c16', 'fortran_order': False, 'shape': (2,), }", 32);
  expect_load_error(buf, n, "complex128");
  n = make_npy(buf, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8);
  expect_load_error(buf, n, "structured");
  n = make_npy(buf, "{'descr': '<f4', 'shape': (2,), }", 8);
  expect_load_error(buf, n, "lacks 'fortran_order'");
  n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1, }", 8);
  expect_load_error(buf, n, "'extra'");
  n = make_npy(buf, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8);
  expect_load_error(buf, n, "True or False");
  n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8);
  expect_load_error(buf, n, "shape is not a tuple");
  n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8);
  expect_load_error(buf, n, "shape is not a tuple");
  n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (3000000000,), }", 8);
  expect_load_error(buf, n, "shape is not a tuple");
  n = make_npy(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (2147483647, 2147483647, 2147483647, 2147483647), }", 8);
  expect_load_error(buf, n, "too large");
  n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8);
  expect_load_error(buf, n, "truncated");
  n = make_npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", 8);
  expect_load_error(buf, n, "trailing");
  /* A header length beyond the file. */
  memcpy(buf, "\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12);
  expect_load_error(buf, 12, "exceeds the limit");
  memcpy(buf, "\x93NUMPY\x01\x00\xff\x7f{}", 12);
  expect_load_error(buf, 12, "truncated");
}

TEST(test_npy_every_truncation_of_a_valid_file_fails) {
  size_t size;
  unsigned char* file = io_read_file(io_fixture("f32_2x3.npy"), &size);
  CHECK(file != NULL && size == 152);
  for (size_t n = 0; file && n < size; n++) expect_load_error(file, n, "");
  free(file);
}

TEST(test_npy_through_reader_and_writer_vtables) {
  int16_t values[6] = {-3, -2, -1, 0, 1, 2};
  mlx_array a = mlx_array_new_data(values, (int[]){3, 2}, 2, MLX_INT16), b = mlx_array_new();
  memstream out = {0};
  mlx_io_writer w = mlx_io_writer_new(&out, memstream_vtable());
  CHECK(w.ctx != NULL);
  void* desc = NULL;
  CHECK(mlx_io_writer_descriptor(&desc, w) == 0 && desc == &out);
  mlx_string label = mlx_string_new();
  CHECK(mlx_io_writer_tostring(&label, w) == 0);
  CHECK_STR(mlx_string_data(label), "memory stream");
  CHECK(mlx_save_writer(w, a) == 0);
  CHECK(mlx_io_writer_free(w) == 0);
  CHECK_EQ_INT(out.frees, 1);

  /* The stream holds exactly what a file save writes. */
  CHECK(mlx_save(io_path("same.npy"), a) == 0);
  size_t size;
  unsigned char* file = io_read_file(io_path("same.npy"), &size);
  CHECK(file && size == out.size && !memcmp(file, out.data, size));
  free(file);

  memstream in = memstream_over(out.data, out.size);
  mlx_io_reader r = mlx_io_reader_new(&in, memstream_vtable());
  CHECK(mlx_io_reader_descriptor(&desc, r) == 0 && desc == &in);
  CHECK(mlx_io_reader_tostring(&label, r) == 0);
  CHECK_STR(mlx_string_data(label), "memory stream");
  CHECK(mlx_load_reader(&b, r, cpu) == 0);
  CHECK(io_shape_equals(b, (int[]){3, 2}, 2));
  CHECK(io_bytes(b) && !memcmp(io_bytes(b), values, sizeof values));
  mlx_io_reader_free(r);
  CHECK_EQ_INT(in.frees, 1);

  /* A writer that fails part way, and vtables missing what they need. */
  memstream failing = {.fail_after = 20};
  w = mlx_io_writer_new(&failing, memstream_vtable());
  mlxc_set_errors_quiet(1);
  CHECK(mlx_save_writer(w, a) != 0);
  CHECK(strstr(mlxc_last_error(), "writing to memory stream failed") != NULL);
  mlx_io_writer_free(w);
  free(failing.data);
  mlx_io_vtable no_good = memstream_vtable();
  no_good.good = NULL;
  r = mlx_io_reader_new(&in, no_good);
  CHECK(mlx_load_reader(&b, r, cpu) != 0);
  CHECK(strstr(mlxc_last_error(), "good()") != NULL);
  mlx_io_reader_free(r);
  CHECK(mlx_load_reader(&b, (mlx_io_reader){NULL}, cpu) != 0);
  CHECK(mlx_save_writer((mlx_io_writer){NULL}, a) != 0);
  CHECK(mlx_save(io_path("x.npy"), mlx_array_new()) != 0);
  CHECK(mlx_save(NULL, a) != 0);
  CHECK(mlx_load(NULL, io_path("same.npy"), cpu) != 0);
  mlxc_set_errors_quiet(0);
  free(out.data);
  mlx_string_free(label);
  mlx_array_free(a);
  mlx_array_free(b);
}

TEST(test_npy_reader_without_seek_or_offset_reads) {
  uint32_t values[3] = {7, 8, 9};
  mlx_array a = mlx_array_new_data(values, (int[]){3}, 1, MLX_UINT32), b = mlx_array_new();
  memstream out = {0};
  mlx_io_writer w = mlx_io_writer_new(&out, memstream_vtable());
  CHECK(mlx_save_writer(w, a) == 0);
  mlx_io_writer_free(w);
  /* No seek/tell: the size is unknown and reads go through read_at_offset alone. */
  mlx_io_vtable sizeless = memstream_vtable();
  sizeless.seek = NULL;
  sizeless.tell = NULL;
  /* No read_at_offset: reads are seek + read. */
  mlx_io_vtable sequential = memstream_vtable();
  sequential.read_at_offset = NULL;
  mlx_io_vtable variants[2] = {sizeless, sequential};
  for (int v = 0; v < 2; v++) {
    memstream in = memstream_over(out.data, out.size);
    mlx_io_reader r = mlx_io_reader_new(&in, variants[v]);
    CHECK_MSG(mlx_load_reader(&b, r, cpu) == 0, "variant %d: %s", v, mlxc_last_error());
    CHECK(io_bytes(b) && !memcmp(io_bytes(b), values, sizeof values));
    mlx_io_reader_free(r);
    /* truncated data is still caught, by good() after the short read */
    in = memstream_over(out.data, out.size - 1);
    r = mlx_io_reader_new(&in, variants[v]);
    mlxc_set_errors_quiet(1);
    CHECK(mlx_load_reader(&b, r, cpu) != 0);
    mlxc_set_errors_quiet(0);
    mlx_io_reader_free(r);
  }
  free(out.data);
  mlx_array_free(a);
  mlx_array_free(b);
}

TEST(test_npy_file_load_views_the_mapping) {
  float values[4] = {1, 2, 3, 4};
  mlx_array a = mlx_array_new_data(values, (int[]){4}, 1, MLX_FLOAT32), b = mlx_array_new();
  CHECK(mlx_save(io_path("mapped.npy"), a) == 0);
  size_t active_before = 0, active_after = 0;
  mlx_get_active_memory(&active_before);
  CHECK(mlx_load(&b, io_path("mapped.npy"), cpu) == 0);
  mlx_get_active_memory(&active_after);
  CHECK_EQ_INT(active_after, active_before); /* the data lives in the mapping */
  CHECK(io_bytes(b) && !memcmp(io_bytes(b), values, sizeof values));
  mlx_array_free(a);
  mlx_array_free(b);
}

int main(void) {
  cpu = mlx_default_cpu_stream_new();
  RUN(test_npy_loads_numpy_fixtures_c_order);
  RUN(test_npy_loads_fortran_order_and_big_endian);
  RUN(test_npy_round_trip_every_dtype_and_shape);
  RUN(test_npy_header_is_byte_exact);
  RUN(test_npy_saves_strided_inputs_in_row_major_order);
  RUN(test_npy_save_appends_suffix_and_load_does_not);
  RUN(test_npy_failed_save_keeps_the_old_file_and_no_temporary);
  RUN(test_npy_rejects_bad_files_with_clear_errors);
  RUN(test_npy_every_truncation_of_a_valid_file_fails);
  RUN(test_npy_through_reader_and_writer_vtables);
  RUN(test_npy_reader_without_seek_or_offset_reads);
  RUN(test_npy_file_load_views_the_mapping);
  io_remove_scratch();
  mlx_stream_free(cpu);
  return TEST_SUMMARY();
}
