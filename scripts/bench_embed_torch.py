#!/usr/bin/env python3
"""PyTorch reference for bench/bench_embed.c: the same MiniLM-L6-shaped BERT (random weights),
32-token sentences in batches of 32, mean pooling and normalization, on the CPU with the same
thread count. Uses Debian's python3-torch (no transformers needed: a minimal BERT is built here)."""
import os
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(int(os.environ.get("THREADS", os.cpu_count())))
D, H, FF, L, V = 384, 12, 1536, 6, 30522


class Layer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = torch.nn.Linear(D, 3 * D)
        self.o = torch.nn.Linear(D, D)
        self.ln1 = torch.nn.LayerNorm(D, eps=1e-12)
        self.up = torch.nn.Linear(D, FF)
        self.down = torch.nn.Linear(FF, D)
        self.ln2 = torch.nn.LayerNorm(D, eps=1e-12)

    def forward(self, x, mask):
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / (D // H) ** 0.5
        a = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v
        x = self.ln1(x + self.o(a.transpose(1, 2).reshape(B, T, D)))
        return self.ln2(x + self.down(F.gelu(self.up(x))))


class Bert(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.word = torch.nn.Embedding(V, D)
        self.pos = torch.nn.Embedding(512, D)
        self.ln = torch.nn.LayerNorm(D, eps=1e-12)
        self.layers = torch.nn.ModuleList(Layer() for _ in range(L))

    def forward(self, ids, mask):
        x = self.ln(self.word(ids) + self.pos(torch.arange(ids.shape[1])))
        m = mask[:, None, None, :].bool()
        for layer in self.layers:
            x = layer(x, m)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return F.normalize(pooled, dim=-1)


model = Bert().eval()
ids = torch.randint(0, 3000, (256, 32))
mask = torch.ones(256, 32)
with torch.inference_mode():
    model(ids[:32], mask[:32])
    best = 1e30
    for _ in range(3):
        t = time.perf_counter()
        for b in range(0, 256, 32):
            model(ids[b:b + 32], mask[b:b + 32])
        best = min(best, time.perf_counter() - t)
print(f"PyTorch {torch.__version__}: MiniLM-L6-shaped BERT, 32-token sentences, batch 32: {256 / best:.1f} sentences/s "
      f"({torch.get_num_threads()} threads)")
