#!/usr/bin/env bash
# make demo: generate text with the model that ships with mlxc (models/kjv-llama-7m, a 7M-parameter
# Llama trained on the King James Bible), greedily and then sampled through its chat template.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
model=models/kjv-llama-7m
run() {
  printf '$ mlxc'
  printf ' %q' "$@"
  printf '\n'
  "$build/mlxc" "$@"
  echo
}
run generate --model "$model" --prompt "And God said" --max-tokens 60
run generate --model "$model" --prompt "Blessed are they that" --max-tokens 60 --temp 0.8 --top-p 0.95 --seed 7
run generate --model "$model" --chat --prompt "Tell me of the prophets." --max-tokens 60 --temp 0.7 --seed 3
