/* Run-time choice between the x86 vector instruction sets our hand-written kernels are built
 * for. Kernels compile every variant (target attributes) and pick one per call, so the library
 * runs on any x86-64 (and elsewhere through the portable C loops). */
#ifndef MLXC_CPU_ISA_H
#define MLXC_CPU_ISA_H

#include <stdbool.h>

typedef enum {
  CPU_ISA_PORTABLE, /* plain C */
  CPU_ISA_AVX2,     /* AVX2 + FMA + F16C */
  CPU_ISA_AVX512,   /* AVX-512 F + BW */
} cpu_isa;

/* Whether this processor runs kernels of `isa`. */
static inline bool cpu_isa_supported(cpu_isa isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  switch (isa) {
    case CPU_ISA_PORTABLE: return true;
    case CPU_ISA_AVX2:
#if defined(__clang__) && __clang_major__ < 16
      /* Older clang cannot name "f16c" here; every processor with AVX2 and FMA has F16C. */
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
#endif
    case CPU_ISA_AVX512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  }
  return false;
#else
  return isa == CPU_ISA_PORTABLE;
#endif
}

/* The widest supported instruction set. */
static inline cpu_isa cpu_isa_best(void) {
  if (cpu_isa_supported(CPU_ISA_AVX512)) return CPU_ISA_AVX512;
  if (cpu_isa_supported(CPU_ISA_AVX2)) return CPU_ISA_AVX2;
  return CPU_ISA_PORTABLE;
}

/* Before each loop over the rows or vectors of a register tile (trip counts that are constants
 * once the tile function is inlined): unrolled completely in GCC's early pass. Left to the late
 * pass (loops of over 16 trips, or large bodies), GCC 12 kept the tile's accumulators an array
 * in memory, with a store per multiply-add. */
#define CPU_TILE_UNROLL _Pragma("GCC unroll 16")

#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_HAVE_X86_KERNELS 1
#define CPU_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define CPU_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx2,fma,f16c")))
#else
#define CPU_HAVE_X86_KERNELS 0
#endif

#endif
