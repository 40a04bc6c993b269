#!/usr/bin/env bash
# One device-machine call: trains the shipped model and makes the LM parity fixtures.
# Expects the corpus in .devcarry/kjv (scripts/prepare_kjv_corpus.sh .devcarry/kjv).
set -uo pipefail
export PYTHONUNBUFFERED=1
work=$(mktemp -d)
python3 -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__, "cuda", torch.cuda.is_available())'
python3 scripts/gen_lm_fixtures.py "$work/lm" 2>&1 | tee "$OUT/lm_fixtures.log"
tar -C "$work" -cf "$OUT/lm_fixtures.tar" lm
python3 scripts/train_shipped_model.py .devcarry/kjv "$work/shipped" --steps "${STEPS:-700}" 2>&1 | tee "$OUT/train.log"
tar -C "$work/shipped" -cf "$OUT/shipped.tar" .
ls -la "$OUT"
