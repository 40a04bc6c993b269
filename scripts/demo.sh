#!/usr/bin/env bash
# make demo: until the language-model work lands, shows the array framework at work.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
"$build/mlxc" info
echo
"$build/example_array_basics"
