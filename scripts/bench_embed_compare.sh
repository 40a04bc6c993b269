#!/usr/bin/env bash
# Embedding throughput, mlxc and PyTorch (Debian's python3-torch) one after the other on this CPU.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
"$build/bench_embed"
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-torch >/dev/null
fi
THREADS=$(nproc) /usr/bin/python3 scripts/bench_embed_torch.py
