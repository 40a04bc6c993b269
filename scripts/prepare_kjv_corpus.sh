#!/usr/bin/env bash
# Writes the King James Version of the Bible (public domain; Debian package bible-kjv-text,
# decoded with the package's own `bible` program) as plain text, one verse per line, with
# chapter headings, split into a training part and a held-out part (every 20th chapter).
#   scripts/prepare_kjv_corpus.sh OUT_DIR   -> OUT_DIR/kjv_train.txt, OUT_DIR/kjv_heldout.txt
set -euo pipefail
out=${1:?usage: prepare_kjv_corpus.sh OUT_DIR}
mkdir -p "$out"
if ! command -v bible >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bible-kjv >/dev/null
fi
bible -l100000 Gen1:1-Rev22:21 | awk -v train="$out/kjv_train.txt" -v held="$out/kjv_heldout.txt" '
  /^$/ { next }
  /^[^ ]/ { chapter++; target = (chapter % 20 == 0) ? held : train; print "" > target; print $0 > target; next }
  { sub(/^ +[0-9]+ /, ""); print $0 > target }'
wc -c "$out"/kjv_*.txt
