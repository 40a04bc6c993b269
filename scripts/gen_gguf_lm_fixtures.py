#!/usr/bin/env python3
"""Writes the GGUF language-model fixtures of tests/fixtures/gguf_lm/ from Hugging Face folders,
following llama.cpp's convert_hf_to_gguf.py conventions, with numpy only (independent of mlxc).

  /usr/bin/python3 scripts/gen_gguf_lm_fixtures.py OUT_DIR            # the committed fixtures
  /usr/bin/python3 scripts/gen_gguf_lm_fixtures.py OUT_DIR --kjv-full  # also kjv weights (large)

Conventions followed (llama.cpp):
- tensor names token_embd, output_norm, output, blk.N.{attn_norm, attn_q, attn_k, attn_v,
  attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}; "output" omitted when the embeddings are
  tied; dims written fastest-varying first (numpy shape reversed).
- "llama" q_proj/k_proj rows permuted per head, (i, i + d/2) -> (2i, 2i + 1), so that
  llama.cpp's adjacent-pair RoPE computes what transformers' half-split RoPE does (checked
  numerically below, before anything is written).
- llama3 RoPE scaling stored as the rope_freqs tensor of per-pair factors.
- 1-d tensors stay F32; 2-d ones are F32, F16, Q8_0, Q4_0 or Q4_1 (ggml's reference quantizers:
  Q8_0 d = max|x| / 127, q = round(x / d); Q4_0 d = (signed max-magnitude value) / -8,
  q = min(15, trunc(x / d + 8.5)); Q4_1 d = (max - min) / 15, m = min, q = trunc((x - m) / d + 0.5);
  element j in the low nibble of byte j, j + 16 in the high one).
- tokenizer.ggml.*: model "gpt2" with tokens, token_type (1 normal, 3 control), merges "a b",
  bos/eos/padding ids, add_bos_token, chat template.
"""
import json
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# GGUF value and tensor types
U8, I8, U16, I16, U32, I32, F32V, BOOL, STRING, ARRAY, U64, I64, F64V = range(13)
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q4_1, GGML_Q8_0 = 0, 1, 2, 3, 8
FILE_TYPE = {GGML_F32: 0, GGML_F16: 1, GGML_Q4_0: 2, GGML_Q4_1: 3, GGML_Q8_0: 7}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[a:b]
        if info["dtype"] == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        else:
            raise ValueError(f"{name}: dtype {info['dtype']}")
        out[name] = arr.reshape(info["shape"]).astype(np.float32)
    return out


def permute(w, n_head, n_head_kv):
    """llama.cpp's LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def check_permutation_matches_rope(head_dim, n_head):
    """Half-split RoPE of W x equals adjacent-pair RoPE of permute(W) x."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((n_head * head_dim, 8))
    x = rng.standard_normal(8)
    pos, half = 5.0, head_dim // 2
    inv = 10000.0 ** (-np.arange(half) * 2.0 / head_dim)
    c, s = np.cos(pos * inv), np.sin(pos * inv)
    q = (w @ x).reshape(n_head, head_dim)
    hf = np.concatenate([q[:, :half] * c - q[:, half:] * s, q[:, half:] * c + q[:, :half] * s], 1)
    p = (permute(w, n_head, n_head) @ x).reshape(n_head, half, 2)
    ggml = np.stack([p[..., 0] * c - p[..., 1] * s, p[..., 0] * s + p[..., 1] * c], -1).reshape(n_head, head_dim)
    # ggml's result is in the permuted (adjacent-pair) order: row 2i + j is transformers' j * d/2 + i
    assert np.allclose(ggml.reshape(n_head, half, 2).transpose(0, 2, 1).reshape(n_head, head_dim), hf)


def quantize_q8_0(x):
    blocks = x.reshape(-1, 32).astype(np.float32)
    d = np.abs(blocks).max(axis=1, keepdims=True) / 127
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, 0, 1 / d)
    scaled = blocks * inv
    q = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int8)  # roundf: half away from 0
    out = np.empty((blocks.shape[0], 34), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def quantize_q4_0(x):
    blocks = x.reshape(-1, 32).astype(np.float32)
    imax = np.abs(blocks).argmax(axis=1)[:, None]
    d = np.take_along_axis(blocks, imax, axis=1) / -8
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, 0, 1 / d)
    q = np.trunc(blocks.astype(np.float64) * inv.astype(np.float64) + 8.5).clip(0, 15).astype(np.uint8)
    out = np.empty((blocks.shape[0], 18), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def quantize_q4_1(x):
    """ggml's quantize_row_q4_1_ref: d = (max - min) / 15, q = min(15, trunc((x - min) / d + 0.5))."""
    blocks = x.reshape(-1, 32).astype(np.float32)
    lo, hi = blocks.min(axis=1, keepdims=True), blocks.max(axis=1, keepdims=True)
    d = (hi - lo) / 15
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, 0, 1 / d)
    q = np.minimum(15, np.trunc((blocks - lo) * inv + 0.5)).astype(np.uint8)
    out = np.empty((blocks.shape[0], 20), np.uint8)
    out[:, :2] = d.astype(np.float16).view(np.uint8)
    out[:, 2:4] = lo.astype(np.float16).view(np.uint8)
    out[:, 4:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


class Writer:
    def __init__(self):
        self.kv = []
        self.tensors = []

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    def tensor(self, name, array, ggml_type):
        self.tensors.append((name, np.asarray(array, np.float32), ggml_type))

    @staticmethod
    def _string(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, value):
        fmt = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32V: "<f", BOOL: "<?",
               U64: "<Q", I64: "<q", F64V: "<d"}
        if vtype == STRING:
            return self._string(value)
        if vtype == ARRAY:
            etype, items = value
            body = b"".join(self._value(etype, v) for v in items)
            return struct.pack("<IQ", etype, len(items)) + body
        return struct.pack(fmt[vtype], value)

    def write(self, path, alignment=32):
        out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
        for key, vtype, value in self.kv:
            out += self._string(key) + struct.pack("<I", vtype) + self._value(vtype, value)
        blobs, offset = [], 0
        for name, array, ggml_type in self.tensors:
            if ggml_type == GGML_F32:
                data = array.astype("<f4").tobytes()
            elif ggml_type == GGML_F16:
                data = array.astype("<f2").tobytes()
            elif ggml_type == GGML_Q8_0:
                data = quantize_q8_0(array)
            elif ggml_type == GGML_Q4_1:
                data = quantize_q4_1(array)
            else:
                data = quantize_q4_0(array)
            dims = list(reversed(array.shape))
            out += self._string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", ggml_type, offset)
            blobs.append(data)
            offset += (len(data) + alignment - 1) // alignment * alignment
        out += b"\0" * (-len(out) % alignment)
        for data in blobs:
            out += data + b"\0" * (-len(data) % alignment)
        with open(path, "wb") as f:
            f.write(out)


def llama3_rope_factors(cfg, head_dim):
    """llama.cpp's LlamaModel.generate_extra_tensors for rope_type llama3."""
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling")
    base = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))
    factor, low, high = rope.get("factor", 8.0), rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old = rope.get("original_max_position_embeddings", 8192)
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    out = []
    for f in freqs:
        wavelen = 2 * np.pi / f
        if wavelen < old / high:
            out.append(1.0)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, np.float32)


def add_model(w, folder, wtype, with_weights=True):
    cfg = json.load(open(os.path.join(folder, "config.json")))
    arch = cfg["model_type"]  # llama (also Mistral), qwen2, qwen3: llama.cpp's architecture names
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    heads, kv_heads = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    head_dim = cfg.get("head_dim", cfg["hidden_size"] // heads)
    check_permutation_matches_rope(head_dim, heads)
    w.add("general.architecture", STRING, arch)
    w.add("general.name", STRING, os.path.basename(os.path.normpath(folder)))
    w.add("general.file_type", U32, FILE_TYPE[wtype])
    w.add(f"{arch}.block_count", U32, cfg["num_hidden_layers"])
    w.add(f"{arch}.context_length", U32, cfg.get("max_position_embeddings", 4096))
    w.add(f"{arch}.embedding_length", U32, cfg["hidden_size"])
    w.add(f"{arch}.feed_forward_length", U32, cfg["intermediate_size"])
    w.add(f"{arch}.attention.head_count", U32, heads)
    w.add(f"{arch}.attention.head_count_kv", U32, kv_heads)
    w.add(f"{arch}.rope.freq_base", F32V, float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0))))
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", F32V, float(cfg["rms_norm_eps"]))
    w.add(f"{arch}.vocab_size", U32, cfg["vocab_size"])
    w.add(f"{arch}.rope.dimension_count", U32, head_dim)
    if "head_dim" in cfg:
        w.add(f"{arch}.attention.key_length", U32, head_dim)
        w.add(f"{arch}.attention.value_length", U32, head_dim)
    if not with_weights:
        return cfg
    t = read_safetensors(os.path.join(folder, "model.safetensors"))
    two_d = lambda a: wtype if a.ndim == 2 else GGML_F32
    if rope.get("rope_type") == "llama3":
        w.tensor("rope_freqs.weight", llama3_rope_factors(cfg, head_dim), GGML_F32)
    w.tensor("token_embd.weight", t["model.embed_tokens.weight"], wtype)
    w.tensor("output_norm.weight", t["model.norm.weight"], GGML_F32)
    if "lm_head.weight" in t and not cfg.get("tie_word_embeddings", False):
        w.tensor("output.weight", t["lm_head.weight"], wtype)
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for i in range(cfg["num_hidden_layers"]):
        for hf, gg in names.items():
            for kind in ("weight", "bias"):
                name = f"model.layers.{i}.{hf}.{kind}"
                if name not in t:
                    continue
                a = t[name]
                # only "llama" is permuted: llama.cpp runs qwen2/qwen3 with the half-split RoPE
                if arch == "llama" and gg == "attn_q":
                    a = permute(a, heads, heads)
                elif arch == "llama" and gg == "attn_k":
                    a = permute(a, heads, kv_heads)
                w.tensor(f"blk.{i}.{gg}.{kind}", a, two_d(a))
    return cfg


def add_byte_tokenizer(w):
    """A byte-level "gpt2" vocabulary of the 256 bytes (token i is byte i) and no merges, so the
    tiny fixtures (vocabulary 256) take text; ids 0, 1, 2 are the pad, bos and eos controls."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    char_of = dict(zip(bs, (chr(c) for c in cs)))
    w.add("tokenizer.ggml.model", STRING, "gpt2")
    w.add("tokenizer.ggml.pre", STRING, "default")
    w.add("tokenizer.ggml.tokens", ARRAY, (STRING, [char_of[b] for b in range(256)]))
    w.add("tokenizer.ggml.token_type", ARRAY, (I32, [3 if b < 3 else 1 for b in range(256)]))
    w.add("tokenizer.ggml.merges", ARRAY, (STRING, []))
    w.add("tokenizer.ggml.bos_token_id", U32, 1)
    w.add("tokenizer.ggml.eos_token_id", U32, 2)
    w.add("tokenizer.ggml.padding_token_id", U32, 0)
    w.add("tokenizer.ggml.add_bos_token", BOOL, True)


def add_hf_tokenizer(w, folder, pre):
    """llama.cpp's _set_vocab_gpt2 from a tokenizer.json (byte-level BPE)."""
    tj = json.load(open(os.path.join(folder, "tokenizer.json")))
    tc = json.load(open(os.path.join(folder, "tokenizer_config.json")))
    vocab = dict(tj["model"]["vocab"])
    special = {}
    for t in tj["added_tokens"]:
        vocab[t["content"]] = t["id"]
        special[t["id"]] = t["special"]
    tokens = [None] * (max(vocab.values()) + 1)
    for tok, i in vocab.items():
        tokens[i] = tok
    types = [(3 if special[i] else 4) if i in special else 1 for i in range(len(tokens))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    w.add("tokenizer.ggml.model", STRING, "gpt2")
    w.add("tokenizer.ggml.pre", STRING, pre)
    w.add("tokenizer.ggml.tokens", ARRAY, (STRING, tokens))
    w.add("tokenizer.ggml.token_type", ARRAY, (I32, types))
    w.add("tokenizer.ggml.merges", ARRAY, (STRING, merges))
    for key, name in (("bos", "bos_token"), ("eos", "eos_token"), ("padding", "pad_token")):
        if tc.get(name):
            w.add(f"tokenizer.ggml.{key}_token_id", U32, vocab[tc[name]])
    w.add("tokenizer.ggml.add_bos_token", BOOL, bool(tc.get("add_bos_token", False)))
    template = os.path.join(folder, "chat_template.jinja")
    if os.path.exists(template):
        w.add("tokenizer.chat_template", STRING, open(template).read())


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    lm = os.path.join(ROOT, "tests", "fixtures", "lm")
    for fixture in ("llama", "llama3_rope", "qwen2", "qwen3"):
        types = [(GGML_F32, "f32"), (GGML_F16, "f16"), (GGML_Q8_0, "q8_0"), (GGML_Q4_0, "q4_0"), (GGML_Q4_1, "q4_1")]
        for wtype, tag in types if fixture == "llama" else types[:1]:
            w = Writer()
            add_model(w, os.path.join(lm, fixture), wtype)
            add_byte_tokenizer(w)
            w.write(os.path.join(out, f"{fixture}-{tag}.gguf"))
    kjv = os.path.join(ROOT, "models", "kjv-llama-7m")
    # The shipped model's hyper-parameters and tokenizer without its weights (kept small).
    w = Writer()
    add_model(w, kjv, GGML_F32, with_weights=False)
    add_hf_tokenizer(w, kjv, "gpt-2")
    w.write(os.path.join(out, "kjv-tokenizer.gguf"))
    if "--kjv-full" in sys.argv:
        for wtype, tag in ((GGML_F32, "f32"), (GGML_Q8_0, "q8_0"), (GGML_Q4_0, "q4_0")):
            w = Writer()
            add_model(w, kjv, wtype)
            add_hf_tokenizer(w, kjv, "gpt-2")
            w.write(os.path.join(out, f"kjv-{tag}.gguf"))
    print("wrote", sorted(os.listdir(out)))


if __name__ == "__main__":
    main()
