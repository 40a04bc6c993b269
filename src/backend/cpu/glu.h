/* glu's arithmetic on a row of floats (glu.c), shared by the glu kernel and the gated GEMV
 * (gated_gemv.c), so that both round as the composed ops round. */
#ifndef MLXC_CPU_GLU_H
#define MLXC_CPU_GLU_H

#include <stdint.h>

#include "mlx/c/array.h"
#include "ops/fast_params.h"

/* v[0..n) rounded to dtype in place (float32: unchanged). */
void cpu_round_row(float* v, int64_t n, mlx_dtype dtype);

/* g[i] = act(g[i]) * u[i] for i < n, g and u holding values of dtype: each step of act rounded to
 * dtype as the separate unary/binary kernels round it; the final product is left unrounded (the
 * caller's store to dtype rounds it). t: n floats of scratch. */
void cpu_glu_row(float* g, const float* u, float* t, int64_t n, glu_activation act, mlx_dtype dtype);

#endif
