// cuBLASLt products with algorithms cached per bucket of shapes (lt_gemm.cu), for gemm.cu.
#ifndef MLXC_BACKEND_CUDA_LT_GEMM_CUH
#define MLXC_BACKEND_CUDA_LT_GEMM_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

// C = alpha op(A) op(B) + beta C in cuBLAS's column-major terms (op(A) m x k, op(B) k x n),
// `batch` products at the given strides, like cublasGemmStridedBatchedEx. Returns false, having
// done nothing, when cuBLASLt cannot take it (the caller then uses cublasGemmStridedBatchedEx);
// *failed tells a launch error (reported) from that.
bool lt_gemm(int device, cudaStream_t s, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k,
             const float* alpha, const void* a, int lda, long long stride_a, const void* b, int ldb, long long stride_b,
             const float* beta, void* c, int ldc, long long stride_c, int batch, cudaDataType_t type,
             cublasComputeType_t compute, bool* failed);

#endif
