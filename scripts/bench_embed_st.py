"""sentence-transformers reference for bench/bench_embed_gpu.c: the same random-weight BERT folders
(written by bench_embed_gpu first) and the same 1024 sentences of 32 tokens, batch 32, mean pooling
and normalization, on the GPU, in the dtype of the folder's config (torch_dtype); best of 3 passes.
  python3 scripts/bench_embed_st.py DIR [NAME]"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer, models

path = sys.argv[1]
name = sys.argv[2] if len(sys.argv) > 2 else path
words = ["the", "of", "and", "to", "in", "that", "he", "for", "his", "unto"]
texts = [" ".join(words[(i + w * 7) % 10] for w in range(30)) + " " for i in range(1024)]
word = models.Transformer(path)
model = SentenceTransformer(modules=[word, models.Pooling(word.get_word_embedding_dimension(), "mean"),
                                     models.Normalize()], device="cuda")
dtype_name = json.load(open(f"{path}/config.json")).get("torch_dtype", "float32")
model.to(getattr(torch, dtype_name))
ids = model.tokenize(texts[:1])["input_ids"]
model.encode(texts[:32], batch_size=32)
best = 1e30
for _ in range(3):
    torch.cuda.synchronize()
    t = time.perf_counter()
    model.encode(texts, batch_size=32, convert_to_numpy=True)
    torch.cuda.synchronize()
    best = min(best, time.perf_counter() - t)
print(f"sentence-transformers GPU: {name} ({dtype_name}), {ids.shape[1]}-token sentences, batch 32: "
      f"{len(texts) / best:.1f} sentences/s", flush=True)
