// The cuBLAS handle of a device (gemm.cu), shared by the GEMMs and linalg's triangular solves.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

// Device's handle, created once, set to stream s; NULL with the error reported when cuBLAS
// cannot create one.
cublasHandle_t gpu_cublas_handle(int device, cudaStream_t s);
