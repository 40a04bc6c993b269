#!/usr/bin/env python3
"""Trains the small Llama-architecture model that ships with mlxc (models/kjv-llama-7m).

Corpus: the King James Version of the Bible (public domain), from Debian's bible-kjv-text,
prepared by scripts/prepare_kjv_corpus.sh (every 20th chapter held out).
Tokenizer: byte-level BPE, 4096 tokens, trained here with Hugging Face `tokenizers`, with the
ChatML special tokens and chat template. Model: LlamaConfig, 8 layers, hidden 256, 8 heads
(4 key/value heads), tied embeddings, about 7.3M parameters, saved in bfloat16.

Run on the GPU machine:
  python3 scripts/train_shipped_model.py CORPUS_DIR OUT_DIR [--steps N]
Writes OUT_DIR/kjv-llama-7m/ (a Hugging Face model folder) and OUT_DIR/train_log.json.
"""
import argparse
import json
import math
import os
import time

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def train_tokenizer(train_path, vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
    )
    tok.train([train_path], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def batches(ids, seq_len, batch, generator, device):
    n = ids.numel() - seq_len - 1
    while True:
        starts = torch.randint(0, n, (batch,), generator=generator)
        x = torch.stack([ids[s : s + seq_len] for s in starts]).to(device)
        y = torch.stack([ids[s + 1 : s + seq_len + 1] for s in starts]).to(device)
        yield x, y


@torch.no_grad()
def heldout_loss(model, ids, seq_len, device, dtype):
    model.eval()
    total, count = 0.0, 0
    for s in range(0, ids.numel() - seq_len - 1, seq_len):
        x = ids[s : s + seq_len].unsqueeze(0).to(device)
        y = ids[s + 1 : s + seq_len + 1].unsqueeze(0).to(device)
        with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
            logits = model(x).logits.float()
        total += torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=700)  # held-out loss rises past ~700 steps (overfitting)
    ap.add_argument("--vocab", type=int, default=4096)
    args = ap.parse_args()
    torch.manual_seed(0)
    device = "cuda"
    train_path = os.path.join(args.corpus, "kjv_train.txt")
    held_path = os.path.join(args.corpus, "kjv_heldout.txt")
    tokenizer = train_tokenizer(train_path, args.vocab)
    train_ids = torch.tensor(tokenizer(open(train_path).read())["input_ids"], dtype=torch.long)
    held_ids = torch.tensor(tokenizer(open(held_path).read())["input_ids"], dtype=torch.long)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        rope_theta=10000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config).to(device)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = 100
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))))
    seq_len, batch = 256, 64
    gen = torch.Generator().manual_seed(0)
    data = batches(train_ids, seq_len, batch, gen, device)
    log = {"params": params, "train_tokens": train_ids.numel(), "heldout_tokens": held_ids.numel(), "evals": []}
    start = time.time()
    for step in range(args.steps):
        x, y = next(data)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x).logits
        loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 500 == 0 or step == args.steps - 1:
            held = heldout_loss(model, held_ids, seq_len, device, torch.bfloat16)
            log["evals"].append({"step": step, "train_loss": loss.item(), "heldout_loss": held, "seconds": time.time() - start})
            print(json.dumps(log["evals"][-1]), flush=True)

    model = model.float()
    log["heldout_ppl_float32"] = math.exp(heldout_loss(model, held_ids, seq_len, device, torch.float32))
    model = model.to(torch.bfloat16)
    log["heldout_ppl_bfloat16_weights"] = math.exp(heldout_loss(model, held_ids, seq_len, device, torch.float32))
    dest = os.path.join(args.out, "kjv-llama-7m")
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=[config.eos_token_id, config.bos_token_id],
                     do_sample=True, temperature=0.8, top_p=0.95).save_pretrained(dest)
    sample_ids = tokenizer("And God said", return_tensors="pt")["input_ids"].to(device)
    out = model.generate(sample_ids, max_new_tokens=40, do_sample=False)
    log["greedy_sample"] = tokenizer.decode(out[0])
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
    print(json.dumps({k: v for k, v in log.items() if k != "evals"}, indent=1))


if __name__ == "__main__":
    main()
