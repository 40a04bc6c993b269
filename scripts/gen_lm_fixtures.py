#!/usr/bin/env python3
"""Makes the tiny random-weight checkpoints and reference outputs of the language-model parity
tests (tests/fixtures/lm/<name>/), one per architecture, with transformers on the GPU machine.

For each: config.json + model.safetensors (float32, save_pretrained), and
reference.safetensors holding, for each prompt p, "prompt_<p>" (int32 ids), "logits_<p>"
(float32, all positions, computed in float32 on the CPU) and "generated_logits_<p>" (the logits
generate() saw at each of its 32 greedy steps: prefill, then one token at a time), plus
reference.json with the 32-token greedy continuation of each prompt and the library versions.

Every call runs on a fresh copy of the model: dynamic RoPE keeps state in the rotary module
(the longest length seen), which would otherwise carry from one prompt to the next.

  python3 scripts/gen_lm_fixtures.py OUT_DIR [NAME...]   (default: every architecture)
"""
import copy
import json
import os
import sys
import traceback
import zlib

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForCausalLM

VOCAB = 256
COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
              rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2, pad_token_id=0)

ARCHS = {
    "llama": ("llama", dict(rope_theta=10000.0, tie_word_embeddings=False)),
    "llama3_rope": ("llama", dict(rope_theta=500000.0, tie_word_embeddings=True,
                                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                "high_freq_factor": 4.0, "original_max_position_embeddings": 32})),
    "llama_yarn": ("llama", dict(rope_theta=10000.0, tie_word_embeddings=False, max_position_embeddings=256,
                                 rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32})),
    # Dynamic NTK: the third prompt (41 tokens) and the continuations of the others run past
    # max_position_embeddings, so the base is rescaled (per forward call, see make()).
    "llama_dynamic": ("llama", dict(rope_theta=10000.0, tie_word_embeddings=False, max_position_embeddings=16,
                                    rope_scaling={"rope_type": "dynamic", "factor": 2.0})),
    "mistral": ("mistral", dict(rope_theta=10000.0, sliding_window=16, head_dim=16)),
    "qwen2": ("qwen2", dict(rope_theta=1000000.0, tie_word_embeddings=True)),
    "qwen3": ("qwen3", dict(rope_theta=1000000.0, head_dim=16, tie_word_embeddings=True)),
    "qwen3_moe": ("qwen3_moe", dict(rope_theta=1000000.0, head_dim=16, num_experts=4, num_experts_per_tok=2,
                                    moe_intermediate_size=32, decoder_sparse_step=1, norm_topk_prob=True,
                                    mlp_only_layers=[])),
    "gemma2": ("gemma2", dict(head_dim=16, query_pre_attn_scalar=16, sliding_window=16,
                              final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                              hidden_activation="gelu_pytorch_tanh")),
    "gemma3_text": ("gemma3_text", dict(head_dim=16, query_pre_attn_scalar=16, sliding_window=16,
                                        rope_theta=1000000.0, rope_local_base_freq=10000.0,
                                        layer_types=["sliding_attention", "full_attention"],
                                        hidden_activation="gelu_pytorch_tanh")),
    "phi3": ("phi3", dict(rope_theta=10000.0)),
    "lfm2": ("lfm2", dict(layer_types=["conv", "full_attention"], conv_L_cache=3, block_ff_dim=96,
                          block_auto_adjust_ff_dim=False, norm_eps=1e-5)),
}

PROMPTS = [
    [1, 17, 42, 99, 7],
    [1, 200, 3, 3, 3, 150, 64, 65, 66, 12, 250],
    [1] + [(i * 37 + 11) % VOCAB for i in range(40)],  # longer than the sliding windows
]


def make(name, model_type, extra, out_dir):
    torch.manual_seed(zlib.crc32(name.encode()))
    kwargs = dict(COMMON)
    kwargs.update(extra)
    config = AutoConfig.for_model(model_type, **kwargs)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    # Random init is small; widen the weights so that logits differ visibly between tokens.
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.08)
            else:
                p.add_(torch.randn_like(p) * 0.05)
    dest = os.path.join(out_dir, name)
    model.save_pretrained(dest)
    tensors, continuations = {}, []
    with torch.no_grad():
        for i, prompt in enumerate(PROMPTS):
            ids = torch.tensor([prompt])
            logits = copy.deepcopy(model)(ids).logits[0].float()
            tensors[f"prompt_{i}"] = ids[0].to(torch.int32).contiguous()
            tensors[f"logits_{i}"] = logits.contiguous()
            gen = copy.deepcopy(model).generate(ids, max_new_tokens=32, min_new_tokens=32, do_sample=False,
                                                eos_token_id=None, pad_token_id=0, output_logits=True,
                                                return_dict_in_generate=True)
            continuations.append(gen.sequences[0, len(prompt):].tolist())
            tensors[f"generated_logits_{i}"] = torch.cat([l.float() for l in gen.logits], 0).contiguous()
    save_file(tensors, os.path.join(dest, "reference.safetensors"))
    with open(os.path.join(dest, "reference.json"), "w") as f:
        json.dump({"model_type": model_type, "greedy_continuations": continuations,
                   "transformers": transformers.__version__, "torch": torch.__version__}, f, indent=1)
    return continuations


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    status = {}
    wanted = sys.argv[2:] or list(ARCHS)
    for name, (model_type, extra) in ARCHS.items():
        if name not in wanted:
            continue
        try:
            make(name, model_type, extra, out_dir)
            status[name] = "ok"
        except Exception:
            status[name] = traceback.format_exc()
        print(name, status[name].splitlines()[-1] if status[name] != "ok" else "ok", flush=True)
    with open(os.path.join(out_dir, "status.json"), "w") as f:
        json.dump(status, f, indent=1)


if __name__ == "__main__":
    main()
