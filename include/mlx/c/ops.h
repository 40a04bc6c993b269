/* mlx-c ops: every op takes its inputs, writes a new lazy array into `res` (releasing what it
 * held) and runs on stream `s`. mlxc splits the declarations by family into mlx/c/ops/.
 *
 *   mlx_stream s = mlx_default_cpu_stream_new();
 *   mlx_array c = mlx_array_new();
 *   if (mlx_add(&c, a, b, s)) fprintf(stderr, "%s\n", mlxc_last_error());
 */
#ifndef MLX_C_OPS_H
#define MLX_C_OPS_H

#include "mlx/c/ops/arithmetic.h"
#include "mlx/c/ops/compare.h"
#include "mlx/c/ops/layout.h"
#include "mlx/c/ops/reduce.h"
#include "mlx/c/ops/scan.h"
#include "mlx/c/ops/sort.h"
#include "mlx/c/ops/logic.h"
#include "mlx/c/ops/math.h"
#include "mlx/c/ops/shape.h"
#include "mlx/c/ops/creation.h"
#include "mlx/c/ops/indexing.h"
#include "mlx/c/ops/linalg_basic.h"
#include "mlx/c/ops/quantized.h"
#include "mlx/c/ops/conv.h"

#endif
