#!/usr/bin/env bash
# Writes about 1 MB of English (the KJV Bible, public domain, from Debian's bible-kjv) for
# bench/bench_tokenizer:  scripts/tokenizer_bench_text.sh OUT.txt
set -euo pipefail
out=${1:?usage: tokenizer_bench_text.sh OUT.txt}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$(dirname "$0")/prepare_kjv_corpus.sh" "$tmp" >/dev/null
head -c 1000000 "$tmp/kjv_train.txt" | sed '$d' > "$out"
wc -c "$out"
