/* Dtype tables and MLX's promotion lattice. */
#include "core/dtype.h"

static const size_t sizes[CORE_DTYPE_COUNT] = {
    [MLX_BOOL] = 1,    [MLX_UINT8] = 1,   [MLX_UINT16] = 2,  [MLX_UINT32] = 4,   [MLX_UINT64] = 8,
    [MLX_INT8] = 1,    [MLX_INT16] = 2,   [MLX_INT32] = 4,   [MLX_INT64] = 8,    [MLX_FLOAT16] = 2,
    [MLX_FLOAT32] = 4, [MLX_FLOAT64] = 8, [MLX_BFLOAT16] = 2, [MLX_COMPLEX64] = 8,
};

static const char* const names[CORE_DTYPE_COUNT] = {
    [MLX_BOOL] = "bool",       [MLX_UINT8] = "uint8",     [MLX_UINT16] = "uint16",
    [MLX_UINT32] = "uint32",   [MLX_UINT64] = "uint64",   [MLX_INT8] = "int8",
    [MLX_INT16] = "int16",     [MLX_INT32] = "int32",     [MLX_INT64] = "int64",
    [MLX_FLOAT16] = "float16", [MLX_FLOAT32] = "float32", [MLX_FLOAT64] = "float64",
    [MLX_BFLOAT16] = "bfloat16", [MLX_COMPLEX64] = "complex64",
};

bool core_dtype_valid(int dtype) { return dtype >= 0 && dtype < CORE_DTYPE_COUNT; }

size_t core_dtype_size(mlx_dtype dtype) { return core_dtype_valid(dtype) ? sizes[dtype] : 0; }

const char* core_dtype_name(mlx_dtype dtype) {
  return core_dtype_valid(dtype) ? names[dtype] : "invalid dtype";
}

bool core_dtype_is_float(mlx_dtype d) {
  return d == MLX_FLOAT16 || d == MLX_BFLOAT16 || d == MLX_FLOAT32 || d == MLX_FLOAT64;
}

bool core_dtype_is_inexact(mlx_dtype d) { return core_dtype_is_float(d) || d == MLX_COMPLEX64; }

bool core_dtype_is_signed_int(mlx_dtype d) {
  return d == MLX_INT8 || d == MLX_INT16 || d == MLX_INT32 || d == MLX_INT64;
}

bool core_dtype_is_unsigned_int(mlx_dtype d) {
  return d == MLX_UINT8 || d == MLX_UINT16 || d == MLX_UINT32 || d == MLX_UINT64;
}

bool core_dtype_is_integer(mlx_dtype d) {
  return core_dtype_is_signed_int(d) || core_dtype_is_unsigned_int(d);
}

/* MLX's promotion table (mlx/dtype.cpp), rows and columns in mlx_dtype order. */
#define b MLX_BOOL
#define u1 MLX_UINT8
#define u2 MLX_UINT16
#define u4 MLX_UINT32
#define u8 MLX_UINT64
#define i1 MLX_INT8
#define i2 MLX_INT16
#define i4 MLX_INT32
#define i8 MLX_INT64
#define f2 MLX_FLOAT16
#define f4 MLX_FLOAT32
#define f8 MLX_FLOAT64
#define bf MLX_BFLOAT16
#define c8 MLX_COMPLEX64
static const mlx_dtype promotion[CORE_DTYPE_COUNT][CORE_DTYPE_COUNT] = {
    /*        b   u1  u2  u4  u8  i1  i2  i4  i8  f2  f4  f8  bf  c8 */
    /* b  */ {b,  u1, u2, u4, u8, i1, i2, i4, i8, f2, f4, f8, bf, c8},
    /* u1 */ {u1, u1, u2, u4, u8, i2, i2, i4, i8, f2, f4, f8, bf, c8},
    /* u2 */ {u2, u2, u2, u4, u8, i4, i4, i4, i8, f2, f4, f8, bf, c8},
    /* u4 */ {u4, u4, u4, u4, u8, i8, i8, i8, i8, f2, f4, f8, bf, c8},
    /* u8 */ {u8, u8, u8, u8, u8, f4, f4, f4, f4, f2, f4, f8, bf, c8},
    /* i1 */ {i1, i2, i4, i8, f4, i1, i2, i4, i8, f2, f4, f8, bf, c8},
    /* i2 */ {i2, i2, i4, i8, f4, i2, i2, i4, i8, f2, f4, f8, bf, c8},
    /* i4 */ {i4, i4, i4, i8, f4, i4, i4, i4, i8, f2, f4, f8, bf, c8},
    /* i8 */ {i8, i8, i8, i8, f4, i8, i8, i8, i8, f2, f4, f8, bf, c8},
    /* f2 */ {f2, f2, f2, f2, f2, f2, f2, f2, f2, f2, f4, f8, f4, c8},
    /* f4 */ {f4, f4, f4, f4, f4, f4, f4, f4, f4, f4, f4, f8, f4, c8},
    /* f8 */ {f8, f8, f8, f8, f8, f8, f8, f8, f8, f8, f8, f8, f8, c8},
    /* bf */ {bf, bf, bf, bf, bf, bf, bf, bf, bf, f4, f4, f8, bf, c8},
    /* c8 */ {c8, c8, c8, c8, c8, c8, c8, c8, c8, c8, c8, c8, c8, c8},
};
#undef b
#undef u1
#undef u2
#undef u4
#undef u8
#undef i1
#undef i2
#undef i4
#undef i8
#undef f2
#undef f4
#undef f8
#undef bf
#undef c8

mlx_dtype core_promote(mlx_dtype a, mlx_dtype b) { return promotion[a][b]; }

mlx_dtype core_float_result(mlx_dtype d) { return core_dtype_is_inexact(d) ? d : MLX_FLOAT32; }
