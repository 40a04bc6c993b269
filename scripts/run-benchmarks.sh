#!/usr/bin/env bash
# make bench: runs every benchmark program built from bench/bench_*.c, one after another.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
for b in "$build"/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
  echo
done
