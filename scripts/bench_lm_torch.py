"""PyTorch + transformers reference for bench/bench_lm_gpu.c: batch-1 greedy decode and prefill
of the same random-weight shapes (Qwen2.5-0.5B, Llama-3-8B) in bfloat16 on the same GPU.

  python3 scripts/bench_lm_torch.py [--shape qwen05|llama8b] [--contexts 128,4096] [--decode 64]
                                    [--modes eager,static]

eager:  the model called token by token with transformers' dynamic KV cache (argmax read back
        each step, as mlxc's generate does);
static: model.generate with cache_implementation="static", which compiles the decode step with
        torch.compile (CUDA graphs); decode tok/s = (N - 1) / (t(N tokens) - t(1 token)).
Prefill: one forward over the prompt (no cache), median of 5.
Prints a markdown table; 8-bit/4-bit are not compared (no int8/int4 kernels of the same layout).
"""
import argparse
import time

import torch
import transformers

SHAPES = {
    "qwen05": dict(cls="Qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                   num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, rope_theta=1e6,
                   tie_word_embeddings=True, max_position_embeddings=32768),
    "llama8b": dict(cls="Llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=8, vocab_size=128256, rope_theta=5e5,
                    tie_word_embeddings=False, max_position_embeddings=32768),
}


def build(shape):
    spec = dict(SHAPES[shape])
    cls = spec.pop("cls")
    config = getattr(transformers, cls + "Config")(**spec, rms_norm_eps=1e-6)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = getattr(transformers, cls + "ForCausalLM")(config)
    torch.set_default_dtype(torch.float32)
    return model.eval()


def prompt_ids(n, vocab):
    return (torch.arange(n, device="cuda") * 7919 % vocab).unsqueeze(0)


@torch.inference_mode()
def prefill_tps(model, n):
    ids = prompt_ids(n, model.config.vocab_size)
    times = []
    for _ in range(7):
        torch.cuda.synchronize()
        t = time.perf_counter()
        model(ids, use_cache=False, logits_to_keep=1)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return n / sorted(times[2:])[2]


@torch.inference_mode()
def eager_decode_tps(model, context, decode):
    ids = prompt_ids(context, model.config.vocab_size)
    cache = transformers.DynamicCache()
    out = model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    token = out.logits[:, -1].argmax(-1, keepdim=True)
    token.item()
    t = time.perf_counter()
    for _ in range(decode):
        out = model(token, past_key_values=cache, use_cache=True)
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        token.item()
    return decode / (time.perf_counter() - t)


@torch.inference_mode()
def static_decode_tps(model, context, decode):
    ids = prompt_ids(context, model.config.vocab_size)

    def run(n):
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                       cache_implementation="static", pad_token_id=0)
        torch.cuda.synchronize()
        return time.perf_counter() - t

    run(decode)  # compiles
    run(decode)
    one = min(run(1) for _ in range(2))
    full = min(run(decode) for _ in range(2))
    return (decode - 1) / (full - one)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="qwen05", choices=SHAPES)
    ap.add_argument("--contexts", default="128,4096")
    ap.add_argument("--prefill", default="512,4096")
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--modes", default="eager,static")
    a = ap.parse_args()
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.cuda.get_device_name()}",
          flush=True)
    model = build(a.shape)
    print("| model | what | tokens | tok/s |\n|---|---|---|---|", flush=True)
    for n in [int(x) for x in a.prefill.split(",") if x]:
        print(f"| {a.shape} | prefill (one forward) | {n} | {prefill_tps(model, n):.0f} |", flush=True)
    for mode in a.modes.split(","):
        for c in [int(x) for x in a.contexts.split(",") if x]:
            try:
                tps = eager_decode_tps(model, c, a.decode) if mode == "eager" else static_decode_tps(model, c, a.decode)
                print(f"| {a.shape} | decode, {mode} | context {c} | {tps:.1f} |", flush=True)
            except Exception as e:  # report and go on: the other rows are still useful
                print(f"| {a.shape} | decode, {mode} | context {c} | failed: {type(e).__name__}: {str(e)[:200]} |",
                      flush=True)


if __name__ == "__main__":
    main()
