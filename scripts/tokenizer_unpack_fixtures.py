#!/usr/bin/env python3
"""Splits the output of scripts/gen_tokenizer_fixtures.py (refs.json, trained.json, bench.json)
into tests/fixtures/tokenizers/: refs/<name>.json and trained/<name>/tokenizer.json.
    python3 scripts/tokenizer_unpack_fixtures.py DIR_WITH_OUTPUTS
"""
import json
import os
import sys

src = sys.argv[1]
dst = "tests/fixtures/tokenizers"
with open(os.path.join(src, "refs.json"), encoding="utf-8") as f:
    refs = json.load(f)
os.makedirs(os.path.join(dst, "refs"), exist_ok=True)
for name, ref in refs["tokenizers"].items():
    ref = dict(ref, tokenizers_version=refs["tokenizers_version"], strings_sha256=refs["strings_sha256"])
    with open(os.path.join(dst, "refs", name + ".json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, separators=(",", ":"))
with open(os.path.join(src, "trained.json"), encoding="utf-8") as f:
    trained = json.load(f)
for name, text in trained.items():
    os.makedirs(os.path.join(dst, "trained", name), exist_ok=True)
    with open(os.path.join(dst, "trained", name, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(text)
bench = os.path.join(src, "bench.json")
if os.path.exists(bench):
    with open(bench) as f, open(os.path.join(dst, "bench_device.json"), "w") as g:
        g.write(f.read())
print("refs:", sorted(refs["tokenizers"]), "trained:", sorted(trained))
