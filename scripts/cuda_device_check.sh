#!/bin/bash
# GPU checks in two steps, because the GPU machine has CUDA but not the library's other
# dependencies (jansson, OpenBLAS headers/pkg-config):
#   scripts/cuda_device_check.sh pack   # here: CUDA build, packs test_cuda_ops, bench_cuda and
#                                       # the shared libraries they need into .devcarry/cudabin
#                                       # (BINS="a b" packs only those: each binary carries every
#                                       # kernel, ~20 MB, and a device call carries 64 MiB at most)
#   bash scripts/cuda_device_check.sh run   # on the GPU machine (carry .devcarry/cudabin):
#                                       # tests, benchmark, compute-sanitizer memcheck; logs in $OUT
#                                       # (with lib/libmlxc_kernel_trace.so, a kernel tracer:
#                                       # scripts/kernel_trace.py says how to use it)
#   bash scripts/cuda_device_check.sh lm [SHAPE [ARGS...]]  # on the GPU machine: bench_lm_gpu
#                                       # (decode/prefill tok/s) and the PyTorch reference
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PACK=$ROOT/.devcarry/cudabin
case "${1:-}" in
pack)
  BUILD=${BUILD:-$ROOT/build-cuda}
  BINS=${BINS:-test_cuda_ops test_cuda_capture test_embed bench_cuda bench_lm_gpu bench_embed_gpu}
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMLXC_CUDA=ON > /dev/null &&
    cmake --build "$BUILD" -j"$(nproc)" --target $BINS || exit 1
  tmp=$(mktemp -d)
  mkdir -p "$tmp/bin" "$tmp/lib" "$PACK"
  for b in $BINS ${EXTRA:-}; do cp "$BUILD/$b" "$tmp/bin/"; done  # EXTRA: built by other means
  # The kernel tracer (bench/kernel_trace.c) and the CUPTI it needs, when built.
  if cmake --build "$BUILD" --target mlxc_kernel_trace > /dev/null 2>&1; then
    cp "$BUILD/libmlxc_kernel_trace.so" "$tmp/lib/"
    cp -L /usr/local/cuda/lib64/libcupti.so.* "$tmp/lib/"
  fi
  strip "$tmp"/bin/*
  for l in libutf8proc.so.2 libpcre2-8.so.0 libtmglib.so.3 libopenblas.so.0 libgfortran.so.5 libjansson.so.4 libquadmath.so.0 liblapacke.so.3 liblapack.so.3 libblas.so.3; do
    p=$(ldconfig -p | awk -v l="$l" '$1 == l {print $NF; exit}')
    [ -n "$p" ] && cp -L "$p" "$tmp/lib/"
  done
  tar -C "$tmp" -cf - bin lib | xz -9 -T1 > "$PACK/cb.tar.xz" && rm -rf "$tmp"
  ls -la "$PACK"
  ;;
run)
  OUT=${OUT:-$ROOT/cuda-check-logs}
  mkdir -p "$OUT" && tar -C "$PACK" -xJf "$PACK/cb.tar.xz" || exit 1
  export LD_LIBRARY_PATH=$PACK/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  export MLXC_SOURCE_DIR=$ROOT PATH=/usr/local/cuda/bin:$PATH
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo "== test_cuda_ops"
  timeout 120 "$PACK/bin/test_cuda_ops" > "$OUT/test_cuda_ops.log" 2>&1; echo "rc=$?" >> "$OUT/test_cuda_ops.log"
  tail -30 "$OUT/test_cuda_ops.log"
  # Again with the 4-bit tensor-core GEMV wherever it can run (by default only on many tiles of
  # short rows), so that its residual and RMS ends are checked on the tests' shapes too.
  echo "== test_cuda_ops, MLXC_QGEMV_MMA=1"
  MLXC_QGEMV_MMA=1 timeout 120 "$PACK/bin/test_cuda_ops" > "$OUT/test_cuda_ops_mma.log" 2>&1
  echo "rc=$?" >> "$OUT/test_cuda_ops_mma.log"
  tail -3 "$OUT/test_cuda_ops_mma.log"
  # And with one-warp quantized GEMV blocks wherever K allows them (by default only over 4,096
  # blocks of 4-bit rows), for the fused ends on the tests' shapes.
  echo "== test_cuda_ops, MLXC_QGEMV_W=1"
  MLXC_QGEMV_W=1 timeout 120 "$PACK/bin/test_cuda_ops" > "$OUT/test_cuda_ops_w1.log" 2>&1
  echo "rc=$?" >> "$OUT/test_cuda_ops_w1.log"
  tail -3 "$OUT/test_cuda_ops_w1.log"
  echo "== test_cuda_capture"
  timeout 60 "$PACK/bin/test_cuda_capture" > "$OUT/test_cuda_capture.log" 2>&1; echo "rc=$?" >> "$OUT/test_cuda_capture.log"
  tail -20 "$OUT/test_cuda_capture.log"
  echo "== bench_cuda"
  timeout 60 "$PACK/bin/bench_cuda" 2>&1 | tee "$OUT/bench_cuda.log"
  echo "== compute-sanitizer memcheck (MLXC_CUDA_TESTS_QUICK: model-sized tests skipped)"
  # API errors are not reported: the test provokes an out-of-memory on purpose.
  MLXC_CUDA_TESTS_QUICK=1 timeout 150 compute-sanitizer --tool memcheck --report-api-errors no \
    "$PACK/bin/test_cuda_ops" > "$OUT/memcheck.log" 2>&1; echo "rc=$?" >> "$OUT/memcheck.log"
  grep -E "ERROR SUMMARY|passed|rc=" "$OUT/memcheck.log"
  timeout 100 compute-sanitizer --tool memcheck --report-api-errors no "$PACK/bin/test_cuda_capture" > "$OUT/memcheck_capture.log" 2>&1
  echo "rc=$?" >> "$OUT/memcheck_capture.log"
  grep -E "ERROR SUMMARY|passed|rc=" "$OUT/memcheck_capture.log"
  ;;
lm)
  # Decode and prefill tok/s of a real-shaped model, then the same with PyTorch + transformers.
  OUT=${OUT:-$ROOT/cuda-check-logs}
  shape=${2:-qwen05}
  shift 2 2>/dev/null || shift $#
  mkdir -p "$OUT" && [ -x "$PACK/bin/bench_lm_gpu" ] || tar -C "$PACK" -xJf "$PACK/cb.tar.xz" || exit 1
  export LD_LIBRARY_PATH=$PACK/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  echo "== bench_lm_gpu --shape $shape $*"
  "$PACK/bin/bench_lm_gpu" --shape "$shape" "$@" 2>&1 | tee -a "$OUT/bench_lm_gpu_$shape.log"
  ;;
lm-torch)
  OUT=${OUT:-$ROOT/cuda-check-logs}
  shape=${2:-qwen05}
  shift 2 2>/dev/null || shift $#
  mkdir -p "$OUT"
  echo "== bench_lm_torch.py --shape $shape $*"
  PYTHONUNBUFFERED=1 python3 "$ROOT/scripts/bench_lm_torch.py" --shape "$shape" "$@" 2>&1 | grep -v Warning | tee -a "$OUT/bench_lm_torch_$shape.log"
  ;;
*) echo "usage: $0 pack|run|lm|lm-torch" >&2; exit 2 ;;
esac
