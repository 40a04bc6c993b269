/* Copies between strided layouts, by element size (dtype-agnostic). */
#ifndef MLXC_CPU_COPY_H
#define MLXC_CPU_COPY_H

#include <stddef.h>
#include <stdint.h>

/* dst (row-major, dense) <- src (strided, in elements). */
void cpu_copy_strided(void* dst, const void* src, const int* shape, const int64_t* src_strides,
                      int ndim, size_t elem_size);

/* dst (strided) <- src (strided); both in elements of elem_size bytes. */
void cpu_copy_general(void* dst, const int64_t* dst_strides, const void* src,
                      const int64_t* src_strides, const int* shape, int ndim, size_t elem_size);

struct core_array;
/* a's data in row-major order: a's own memory when it is row-contiguous, else a dense copy in
 * *owned (the caller frees *owned, which stays untouched otherwise). NULL when out of memory
 * (error reported). */
const void* cpu_dense_data(const struct core_array* a, void** owned);

#endif
