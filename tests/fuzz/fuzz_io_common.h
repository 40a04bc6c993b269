/* Shared by the IO fuzz targets: quiet errors, a scratch file that holds the current input (so
 * the memory-mapped file path is fuzzed too), and full reads of loaded arrays. */
#ifndef MLXC_FUZZ_IO_COMMON_H
#define MLXC_FUZZ_IO_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../io_memstream.h"
#include "core/array.h"
#include "mlx/c/mlx.h"
#include "mlxc/error.h"

static char fuzz_path[64];
static int fuzz_fd = -1;
static volatile unsigned fuzz_sink;

static inline void fuzz_remove_scratch(void) {
  if (fuzz_fd >= 0) unlink(fuzz_path);
}

static inline void fuzz_setup(const char* suffix) {
  mlxc_set_errors_quiet(1);
  snprintf(fuzz_path, sizeof fuzz_path, "/tmp/mlxc_fuzz_XXXXXX%s", suffix);
  fuzz_fd = mkstemps(fuzz_path, (int)strlen(suffix));
  if (fuzz_fd < 0) {
    perror("mkstemps");
    abort();
  }
  atexit(fuzz_remove_scratch);
}

/* Replaces the scratch file's contents with the input. */
static inline void fuzz_write_input(const uint8_t* data, size_t size) {
  if (ftruncate(fuzz_fd, 0) != 0 || (size && pwrite(fuzz_fd, data, size, 0) != (ssize_t)size)) {
    perror("scratch file");
    abort();
  }
}

/* Row-major bytes of an array; reading them all lets ASan check every loaded byte is valid. */
static inline const unsigned char* fuzz_bytes(mlx_array a, size_t* nbytes) {
  core_array* x = core_ctx(a);
  if (core_eval_contiguous(x)) abort();
  *nbytes = x->size * core_dtype_size(x->dtype);
  const unsigned char* p = core_array_ptr(x);
  unsigned sum = 0;
  for (size_t i = 0; i < *nbytes; i++) sum += p[i];
  fuzz_sink = sum; /* keeps the reads */
  return p;
}

/* Aborts (a finding) when two arrays differ in dtype, shape or bytes. */
static inline void fuzz_check_same(mlx_array a, mlx_array b) {
  if (mlx_array_dtype(a) != mlx_array_dtype(b) || mlx_array_ndim(a) != mlx_array_ndim(b)) abort();
  for (size_t i = 0; i < mlx_array_ndim(a); i++)
    if (mlx_array_shape(a)[i] != mlx_array_shape(b)[i]) abort();
  size_t na, nb;
  const unsigned char* pa = fuzz_bytes(a, &na);
  const unsigned char* pb = fuzz_bytes(b, &nb);
  if (na != nb || (na && memcmp(pa, pb, na))) abort();
}

#endif
