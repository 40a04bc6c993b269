/* File helpers shared by the IO tests: a scratch directory, whole-file reads and writes, and the
 * row-major bytes of an array. */
#ifndef MLXC_TEST_IO_UTIL_H
#define MLXC_TEST_IO_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/array.h"
#include "mlx/c/mlx.h"

static char io_scratch_dir[256];

/* Creates the scratch directory once; paths below it are built with io_path. */
static const char* io_path(const char* name) {
  static char path[512];
  if (!io_scratch_dir[0]) {
    snprintf(io_scratch_dir, sizeof io_scratch_dir, "/tmp/mlxc_io_test_XXXXXX");
    if (!mkdtemp(io_scratch_dir)) {
      perror("mkdtemp");
      exit(1);
    }
  }
  snprintf(path, sizeof path, "%s/%s", io_scratch_dir, name);
  return path;
}

/* Removes the scratch directory and everything in it (one level deep). */
static void io_remove_scratch(void) {
  if (!io_scratch_dir[0]) return;
  DIR* d = opendir(io_scratch_dir);
  struct dirent* e;
  char path[600];
  while (d && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(path, sizeof path, "%s/%s", io_scratch_dir, e->d_name);
      unlink(path);
    }
  if (d) closedir(d);
  rmdir(io_scratch_dir);
}

/* Number of entries in the scratch directory whose name contains `part`. */
static int io_count_files(const char* part) {
  io_path("");
  DIR* d = opendir(io_scratch_dir);
  struct dirent* e;
  int n = 0;
  while (d && (e = readdir(d))) n += strstr(e->d_name, part) != NULL;
  if (d) closedir(d);
  return n;
}

/* The whole file (caller frees) and its size; NULL when it cannot be read. */
static unsigned char* io_read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* data = malloc(n > 0 ? (size_t)n : 1);
  if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
    free(data);
    data = NULL;
  }
  fclose(f);
  *size = (size_t)n;
  return data;
}

static int io_write_file(const char* path, const void* data, size_t size) {
  FILE* f = fopen(path, "wb");
  if (!f) return 1;
  int bad = size && fwrite(data, 1, size, f) != size;
  return fclose(f) || bad;
}

static const char* io_fixture(const char* name) {
  static char path[512];
  snprintf(path, sizeof path, "%s/tests/fixtures/io/%s", test_source_dir(), name);
  return path;
}

/* Row-major bytes of an array (evaluated and made contiguous); NULL for empty arrays. */
static const unsigned char* io_bytes(mlx_array a) {
  core_array* x = core_ctx(a);
  if (!x || core_eval_contiguous(x)) return NULL;
  return core_array_ptr(x);
}

/* Deterministic bytes for `n` elements of `dtype` (bools are 0 or 1). */
static void io_fill_pattern(unsigned char* p, size_t n, mlx_dtype dtype, unsigned seed) {
  size_t item = mlx_dtype_size(dtype);
  for (size_t i = 0; i < n * item; i++)
    p[i] = dtype == MLX_BOOL ? (unsigned char)((i * 7 + seed) % 3 == 0)
                             : (unsigned char)(i * 37 + seed * 11 + 5);
}

static int io_shape_equals(mlx_array a, const int* shape, int ndim) {
  if ((int)mlx_array_ndim(a) != ndim) return 0;
  for (int i = 0; i < ndim; i++)
    if (mlx_array_shape(a)[i] != shape[i]) return 0;
  return 1;
}

#endif
