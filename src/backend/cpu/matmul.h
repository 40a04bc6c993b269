/* Internals of the CPU matmul kernel (matmul.c) that tests reach. */
#ifndef MLXC_CPU_MATMUL_H
#define MLXC_CPU_MATMUL_H

#include <stdint.h>

/* The float16/bfloat16 product of many rows widens B to float32 a block of columns at a time,
 * at most this many floats (28 MB by default). Sets it when floats > 0 (tests: several blocks
 * on small shapes) and returns the previous value. Not thread-safe: for tests only. */
int64_t cpu_matmul_half_scratch(int64_t floats);

#endif
