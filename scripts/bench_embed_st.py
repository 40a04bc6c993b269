"""sentence-transformers reference for bench/bench_embed_gpu.c: the same random-weight BERT folders
(written by bench_embed_gpu first) and the same 1024 sentences of 32 tokens, batch 32, mean pooling
and normalization, on the GPU, in the dtype of the folder's config (torch_dtype); best of 3 passes.
float32 products exact as PyTorch's default, or on TF32 tensor cores with --tf32 (mlxc's default,
as MLX's).
  python3 scripts/bench_embed_st.py DIR [NAME] [--tf32]"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer, models

tf32 = "--tf32" in sys.argv
args = [a for a in sys.argv[1:] if a != "--tf32"]
path = args[0]
name = args[1] if len(args) > 1 else path
torch.backends.cuda.matmul.allow_tf32 = tf32
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
print(f"sentence-transformers GPU: {name} ({dtype_name}{', TF32' if tf32 else ''}), {ids.shape[1]}-token sentences, batch 32: "
      f"{len(texts) / best:.1f} sentences/s", flush=True)
