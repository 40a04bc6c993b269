#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, over tests/fuzz/corpus/<name>/.
set -euo pipefail
build=${1:-build-fuzz}; seconds=${2:-20}
cd "$(dirname "$0")/.."
status=0
for f in "$build"/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus=tests/fuzz/corpus/${name#fuzz_}
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null || true
  echo "fuzz: $name for ${seconds}s"
  if ! "$f" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=0 "$work" >"$work.log" 2>&1; then
    tail -40 "$work.log"; status=1
  fi
  rm -rf "$work" "$work.log"
done
exit $status
