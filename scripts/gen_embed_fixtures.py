#!/usr/bin/env python3
"""Makes the embedding-model parity fixtures (tests/fixtures/embed/<name>/) on the GPU machine:
tiny random-weight BERT encoders wrapped as sentence-transformers models (Transformer, Pooling,
optional Normalize), saved with SentenceTransformer.save, plus reference embeddings computed by
sentence-transformers in float32 on the CPU for sentences short and long (beyond
max_seq_length, so truncation is exercised), encoded in mixed batches.

  python3 scripts/gen_embed_fixtures.py OUT_DIR
Uses the WordPiece tokenizer tests/fixtures/tokenizers/trained/bert/tokenizer.json, with BERT's
[CLS] $A [SEP] post-processing added.
"""
import json
import os
import sys
import zlib

import sentence_transformers
import torch
import transformers
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer, models
from tokenizers import Tokenizer, processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

SENTENCES = [
    "In the beginning God created the heaven and the earth.",
    "Hello world",
    "a",
    "The quick brown fox jumps over the lazy dog again and again, and then once more for good measure, "
    "because long sentences must be truncated to the maximum sequence length of the model, which is small here.",
    "Numbers 12345 and symbols !?;: mixed in.",
    "UPPER and lower Case",
    "Tabs\tand  double  spaces",
    "Short one.",
    "Another sentence about the weather today, which is cloudy with a chance of rain later.",
    "",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9",
    "The end.",
]

CASES = {
    # name: (pooling mode, normalize, max_seq_length)
    "bert-mean-normalized": ("mean", True, 24),
    "bert-cls": ("cls", False, 32),
    "bert-max": ("max", False, 32),
}


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    tok = Tokenizer.from_file("tests/fixtures/tokenizers/trained/bert/tokenizer.json")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                   unk_token="[UNK]", mask_token="[MASK]")
    status = {}
    for name, (pooling, normalize, max_len) in CASES.items():
        torch.manual_seed(zlib.crc32(name.encode()))
        config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=128, max_position_embeddings=128, type_vocab_size=2,
                            hidden_act="gelu", layer_norm_eps=1e-12)
        bert = BertModel(config, add_pooling_layer=False).eval()
        with torch.no_grad():
            for _, p in bert.named_parameters():
                if p.dim() >= 2:
                    p.normal_(0.0, 0.1)
                else:
                    p.add_(torch.randn_like(p) * 0.05)
        hf_dir = os.path.join(out_dir, name + "-hf")
        bert.save_pretrained(hf_dir)
        fast.save_pretrained(hf_dir)
        transformer = models.Transformer(hf_dir, max_seq_length=max_len)
        modules = [transformer, models.Pooling(64, pooling_mode=pooling)]
        if normalize:
            modules.append(models.Normalize())
        st = SentenceTransformer(modules=modules, device="cpu")
        dest = os.path.join(out_dir, name)
        st.save(dest)
        with torch.no_grad():
            emb = st.encode(SENTENCES, batch_size=5, convert_to_tensor=True).float().cpu()
        save_file({"embeddings": emb.contiguous()}, os.path.join(dest, "reference.safetensors"))
        with open(os.path.join(dest, "reference.json"), "w") as f:
            json.dump({"sentences": SENTENCES, "pooling": pooling, "normalize": normalize, "max_seq_length": max_len,
                       "sentence_transformers": sentence_transformers.__version__,
                       "transformers": transformers.__version__, "torch": torch.__version__}, f, indent=1)
        status[name] = "ok"
        print(name, "ok", emb.shape, flush=True)
    with open(os.path.join(out_dir, "status.json"), "w") as f:
        json.dump(status, f)


if __name__ == "__main__":
    main()
