// cuBLASLt products whose algorithm is chosen once per bucket of shapes. cublasGemmEx runs
// cuBLAS's heuristic at every new problem shape: 2.5-3.5 ms each on the H100 (measured: four
// GEMMs of a new M took 9-15 ms the first time, 0.1 ms after), so every prompt of a new length
// paid ~15-20 ms before its first token. Here n, the dimension that follows the prompt's length
// (the rows of the row-major product, gemm.cu), is rounded up to a power of two for the
// heuristic, and the algorithm found is reused for every n of the bucket once
// cublasLtMatmulAlgoCheck accepts it for the real shape (else the real shape gets its own query).
#include <cublasLt.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/launch.h"
#include "backend/cuda/lt_gemm.cuh"

namespace {

constexpr size_t LT_WORKSPACE = (size_t)32 << 20;
constexpr int LT_MAX_GPUS = 16, LT_CACHE = 256;

// A bucket's algorithm (exact false: n rounded up, strides 0), or one already checked for (or
// chosen for) an exact problem, whose later calls then skip the check. Compared with memcmp:
// made by lt_key_of, which clears the padding.
struct lt_key {
  int device, op_a, op_b, m, n, k, lda, ldb, ldc, batched, type, compute, exact;
  long long stride_a, stride_b, stride_c;
};

struct lt_entry {
  lt_key key;
  cublasLtMatmulAlgo_t algo;
};

pthread_mutex_t lt_lock = PTHREAD_MUTEX_INITIALIZER;
cublasLtHandle_t lt_handles[LT_MAX_GPUS];
void* lt_workspace[LT_MAX_GPUS];
bool lt_unusable[LT_MAX_GPUS];
lt_entry lt_cache[LT_CACHE];
int lt_entries;

int bucket(int n);

lt_key lt_key_of(int device, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k, int lda, int ldb,
                 int ldc, int batch, cudaDataType_t type, cublasComputeType_t compute, bool exact, long long stride_a,
                 long long stride_b, long long stride_c) {
  lt_key key;
  memset(&key, 0, sizeof key);  // field by field below: an aggregate copy may leave padding unset
  key.device = device, key.op_a = (int)op_a, key.op_b = (int)op_b, key.m = m, key.n = exact ? n : bucket(n);
  key.k = k, key.lda = lda, key.ldb = ldb, key.ldc = ldc, key.batched = batch > 1, key.type = (int)type;
  key.compute = (int)compute, key.exact = exact;
  if (exact) key.stride_a = stride_a, key.stride_b = stride_b, key.stride_c = stride_c;
  return key;
}

bool lt_find(const lt_key& key, cublasLtMatmulAlgo_t* algo) {
  for (int i = 0; i < lt_entries; i++)
    if (!memcmp(&lt_cache[i].key, &key, sizeof key)) {
      *algo = lt_cache[i].algo;
      return true;
    }
  return false;
}

void lt_keep(const lt_key& key, const cublasLtMatmulAlgo_t& algo) {
  if (lt_entries < LT_CACHE) lt_cache[lt_entries++] = {key, algo};
}

int bucket(int n) {
  int b = 16;
  while (b < n && b < (1 << 30)) b <<= 1;
  return b;
}

// The device's handle and workspace, made at its first product (outside a recording: cudaMalloc
// cannot be recorded, and a recording product then takes cublasGemmEx instead).
bool lt_ready(int device, cudaStream_t s) {
  if (lt_unusable[device]) return false;
  if (lt_handles[device]) return true;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &capture) != cudaSuccess || capture != cudaStreamCaptureStatusNone) return false;
  if (cudaMalloc(&lt_workspace[device], LT_WORKSPACE) != cudaSuccess) {
    cudaGetLastError();
    lt_unusable[device] = true;
    return false;
  }
  if (cublasLtCreate(&lt_handles[device]) != CUBLAS_STATUS_SUCCESS) {
    cudaFree(lt_workspace[device]);
    lt_unusable[device] = true;
    return false;
  }
  return true;
}

struct lt_problem {
  cublasLtMatmulDesc_t op = NULL;
  cublasLtMatrixLayout_t a = NULL, b = NULL, c = NULL;
  ~lt_problem() {
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

bool layout(cublasLtMatrixLayout_t* l, cudaDataType_t type, int rows, int cols, int ld, int batch, long long stride) {
  if (cublasLtMatrixLayoutCreate(l, type, rows, cols, ld) != CUBLAS_STATUS_SUCCESS) return false;
  if (batch == 1) return true;
  return cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch) ==
             CUBLAS_STATUS_SUCCESS &&
         cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride) ==
             CUBLAS_STATUS_SUCCESS;
}

// Descriptors of the product with n columns of op(B) and C.
bool describe(lt_problem* p, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k, int lda,
              long long stride_a, int ldb, long long stride_b, int ldc, long long stride_c, int batch,
              cudaDataType_t type, cublasComputeType_t compute) {
  if (cublasLtMatmulDescCreate(&p->op, compute, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS) return false;
  if (cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a) != CUBLAS_STATUS_SUCCESS ||
      cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b) != CUBLAS_STATUS_SUCCESS)
    return false;
  const bool ta = op_a != CUBLAS_OP_N, tb = op_b != CUBLAS_OP_N;
  return layout(&p->a, type, ta ? k : m, ta ? m : k, lda, batch, stride_a) &&
         layout(&p->b, type, tb ? n : k, tb ? k : n, ldb, batch, stride_b) &&
         layout(&p->c, type, m, n, ldc, batch, stride_c);
}

bool heuristic(cublasLtHandle_t h, const lt_problem& p, cublasLtMatmulAlgo_t* algo) {
  cublasLtMatmulPreference_t pref;
  if (cublasLtMatmulPreferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS) return false;
  size_t ws = LT_WORKSPACE;
  cublasLtMatmulHeuristicResult_t result;
  int found = 0;
  bool ok = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) ==
                CUBLAS_STATUS_SUCCESS &&
            cublasLtMatmulAlgoGetHeuristic(h, p.op, p.a, p.b, p.c, p.c, pref, 1, &result, &found) ==
                CUBLAS_STATUS_SUCCESS &&
            found > 0;
  cublasLtMatmulPreferenceDestroy(pref);
  if (ok) *algo = result.algo;
  return ok;
}

bool fits(cublasLtHandle_t h, const lt_problem& p, const cublasLtMatmulAlgo_t* algo) {
  cublasLtMatmulHeuristicResult_t result;
  return cublasLtMatmulAlgoCheck(h, p.op, p.a, p.b, p.c, p.c, algo, &result) == CUBLAS_STATUS_SUCCESS &&
         result.workspaceSize <= LT_WORKSPACE;
}

}  // namespace

bool lt_gemm(int device, cudaStream_t s, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k,
             const float* alpha, const void* a, int lda, long long stride_a, const void* b, int ldb, long long stride_b,
             const float* beta, void* c, int ldc, long long stride_c, int batch, cudaDataType_t type,
             cublasComputeType_t compute, bool* failed) {
  *failed = false;
  if (device < 0 || device >= LT_MAX_GPUS || m <= 0 || n <= 0 || k <= 0) return false;
  pthread_mutex_lock(&lt_lock);
  if (!lt_ready(device, s)) {
    pthread_mutex_unlock(&lt_lock);
    return false;
  }
  cublasLtHandle_t h = lt_handles[device];
  const lt_key exact = lt_key_of(device, op_a, op_b, m, n, k, lda, ldb, ldc, batch, type, compute, true, stride_a,
                                  stride_b, stride_c);
  const lt_key rounded_key = lt_key_of(device, op_a, op_b, m, n, k, lda, ldb, ldc, batch, type, compute, false, 0, 0, 0);
  cublasLtMatmulAlgo_t algo;
  lt_problem real;
  bool ok = describe(&real, op_a, op_b, m, n, k, lda, stride_a, ldb, stride_b, ldc, stride_c, batch, type, compute);
  if (ok && !lt_find(exact, &algo)) {
    bool have = lt_find(rounded_key, &algo);
    if (!have) {  // the bucket's algorithm, kept
      lt_problem rounded;
      have = describe(&rounded, op_a, op_b, m, rounded_key.n, k, lda, stride_a, ldb, stride_b, ldc, stride_c, batch,
                      type, compute) &&
             heuristic(h, rounded, &algo);
      if (have) lt_keep(rounded_key, algo);
    }
    if (!have || !fits(h, real, &algo)) ok = heuristic(h, real, &algo);  // this shape's own
    // Later calls of this shape skip the check; exact entries take at most half of the cache, so
    // that many prompt lengths cannot crowd out the buckets.
    if (ok && lt_entries < LT_CACHE / 2) lt_keep(exact, algo);
  }
  void* ws = lt_workspace[device];
  pthread_mutex_unlock(&lt_lock);
  if (!ok) return false;
  cublasStatus_t st = cublasLtMatmul(h, real.op, alpha, a, real.a, b, real.b, beta, c, real.c, c, real.c, &algo, ws,
                                     LT_WORKSPACE, s);
  if (st != CUBLAS_STATUS_SUCCESS) {
    *failed = true;
    util_error("cuBLASLt matmul failed: %s", cublasGetStatusString(st));
  }
  return true;
}
