#!/usr/bin/env python3
"""Makes the embedding-model parity fixtures (tests/fixtures/embed/<name>/) on the GPU machine:
tiny random-weight encoders wrapped as sentence-transformers models (Transformer, Pooling, Dense,
Normalize), saved with SentenceTransformer.save, plus reference embeddings computed by
sentence-transformers in float32 on the CPU for sentences short and long (beyond max_seq_length,
so truncation is exercised), encoded in mixed batches, with and without prompts.

  python3 scripts/gen_embed_fixtures.py OUT_DIR [CASE...]

The original three BERT cases use the WordPiece tokenizer in tests/fixtures/tokenizers/trained/bert
(vocabulary 3001). The other cases train a small tokenizer of the architecture's kind with the
`tokenizers` library (the real Gemma 3 / Qwen 3 vocabularies of 150k-262k entries would make the
embedding matrices megabytes even at hidden size 16), on the sentences below plus the repository's
docs (docs/*.md, README.md: the committed fixtures were made from main at 12af3e6, so a re-run
on later docs trains other vocabularies; the test strings of tests/fixtures/tokenizers are no
alternative: their alphabet is too large for a 500-piece Unigram), so committed fixtures stay small:
  WordPiece + BERT normaliser (bert pooling variants, distilbert), byte-level BPE (roberta,
  modernbert, qwen3), Unigram + Metaspace (xlm-roberta), BPE + Metaspace (gemma3).
Every case is independent: a failure is recorded in status.json and the others still run.
"""
import glob
import inspect
import json
import os
import sys
import traceback
import zlib

import sentence_transformers
import torch
import transformers
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer, models
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import BPE, Unigram, WordPiece
from transformers import PreTrainedTokenizerFast

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

# The original BERT cases: (pooling mode, normalize, max_seq_length).
BERT_CASES = {
    "bert-mean-normalized": ("mean", True, 24),
    "bert-cls": ("cls", False, 32),
    "bert-max": ("max", False, 32),
}

QWEN_QUERY = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
GEMMA_PROMPTS = {"query": "task: search result | query: ", "document": "title: none | text: ",
                 "Clustering": "task: clustering | query: "}


def corpus():
    lines = list(SENTENCES) * 3
    for path in sorted(glob.glob("docs/*.md")) + ["README.md"]:
        try:
            with open(path, encoding="utf-8") as f:
                lines += [l.strip() for l in f if l.strip()]
        except OSError:
            pass
    return lines


def randomize(model, scale=0.1):
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, scale)
            else:
                p.add_(torch.randn_like(p) * 0.05)


# ---- tokenizers -------------------------------------------------------------------------------

def wordpiece_tokenizer(vocab_size, lowercase=True):
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(corpus(), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                                limit_alphabet=120))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                   unk_token="[UNK]", mask_token="[MASK]")
    return tok, fast


def bytelevel_bpe(vocab_size, specials):
    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def roberta_tokenizer(vocab_size):
    tok = bytelevel_bpe(vocab_size, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                      add_prefix_space=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                   sep_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")
    return tok, fast


def xlmr_tokenizer(vocab_size):
    tok = Tokenizer(Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(" {2,}", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.train_from_iterator(corpus(), trainers.UnigramTrainer(vocab_size=vocab_size, unk_token="<unk>",
                                                              special_tokens=["<s>", "<pad>", "</s>", "<unk>",
                                                                              "<mask>"]))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                   sep_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")
    return tok, fast


def modernbert_tokenizer(vocab_size):
    tok = bytelevel_bpe(vocab_size, ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"])
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                   unk_token="[UNK]", mask_token="[MASK]")
    return tok, fast


def gemma_tokenizer(vocab_size):
    # Gemma 3's layout: <pad>=0 <eos>=1 <bos>=2 <unk>=3; EmbeddingGemma adds <bos> ... <eos>.
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    tok = Tokenizer(BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                          limit_alphabet=120))
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", pair="<bos> $A <eos> $B <eos>", special_tokens=[("<bos>", 2), ("<eos>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")
    return tok, fast


def qwen_tokenizer(vocab_size):
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = bytelevel_bpe(vocab_size, specials)
    eot = tok.token_to_id("<|endoftext|>")
    # Qwen3-Embedding appends <|endoftext|> to every input and pads on the left.
    tok.post_processor = processors.TemplateProcessing(
        single="$A <|endoftext|>", pair="$A <|endoftext|> $B <|endoftext|>", special_tokens=[("<|endoftext|>", eot)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                   padding_side="left")
    return tok, fast


# ---- models -----------------------------------------------------------------------------------

def make_case(out_dir, name, model, fast, max_len, pooling, dim, dense=(), normalize=True, prompts=None,
              default_prompt=None, do_lower_case=False, include_prompt=True, encodes=None):
    hf_dir = os.path.join(out_dir, "_hf", name)
    model.save_pretrained(hf_dir)
    fast.save_pretrained(hf_dir)
    try:
        transformer = models.Transformer(hf_dir, max_seq_length=max_len, do_lower_case=do_lower_case)
    except TypeError:
        transformer = models.Transformer(hf_dir, max_seq_length=max_len)
    modules = [transformer, models.Pooling(dim, pooling_mode=pooling, include_prompt=include_prompt)]
    for (fin, fout, bias, act) in dense:
        d = models.Dense(in_features=fin, out_features=fout, bias=bias, activation_function=act)
        randomize(d, 0.2)
        modules.append(d)
    if normalize:
        modules.append(models.Normalize())
    kwargs = {}
    if prompts:
        kwargs["prompts"] = prompts
    if default_prompt:
        kwargs["default_prompt_name"] = default_prompt
    st = SentenceTransformer(modules=modules, device="cpu", **kwargs)
    dest = os.path.join(out_dir, name)
    st.save(dest)
    if os.path.exists(os.path.join(dest, "README.md")):
        os.remove(os.path.join(dest, "README.md"))  # the generated model card: not needed by the tests
    tensors = {}
    with torch.no_grad():
        tensors["embeddings"] = st.encode(SENTENCES, batch_size=5, convert_to_tensor=True).float().cpu()
        for key, kw in (encodes or {}).items():
            tensors[key] = st.encode(SENTENCES, batch_size=5, convert_to_tensor=True, **kw).float().cpu()
        # The token ids sentence-transformers feeds the model (for the first batch), to debug tokenizers.
        feats = st.tokenize(SENTENCES[:5])
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(dest, "reference.safetensors"))
    meta = {"sentences": SENTENCES, "pooling": pooling if isinstance(pooling, str) else list(pooling), "normalize": normalize, "max_seq_length": max_len,
            "encodes": {k: {a: b for a, b in kw.items()} for k, kw in (encodes or {}).items()},
            "first_batch_input_ids": feats["input_ids"].tolist(),
            "first_batch_attention_mask": feats["attention_mask"].tolist(),
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__, "torch": torch.__version__}
    with open(os.path.join(dest, "reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(name, "ok", {k: tuple(v.shape) for k, v in tensors.items()}, flush=True)


def case_bert_orig(out_dir, name):
    from transformers import BertConfig, BertModel
    pooling, normalize, max_len = BERT_CASES[name]
    tok = Tokenizer.from_file("tests/fixtures/tokenizers/trained/bert/tokenizer.json")
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                   unk_token="[UNK]", mask_token="[MASK]")
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=128, type_vocab_size=2,
                        hidden_act="gelu", layer_norm_eps=1e-12)
    bert = BertModel(config, add_pooling_layer=False).eval()
    randomize(bert)
    make_case(out_dir, name, bert, fast, max_len, pooling, 64, normalize=normalize)


# Pooling variants on a tiny BERT (own small WordPiece vocabulary, hidden 16): mode(s), normalize,
# do_lower_case (sentence-transformers 6 adds a Lowercase normalizer to tokenizer.json), include_prompt.
POOL_CASES = {
    "bert-pool-mean-cls": (("mean", "cls"), False, False, True),
    "bert-pool-cls-lower": ("cls", False, True, True),
    "bert-pool-max": ("max", True, False, True),
    "bert-pool-mean-sqrt-len": ("mean_sqrt_len_tokens", False, False, True),
    "bert-pool-weightedmean": ("weightedmean", True, False, True),
    "bert-pool-lasttoken": ("lasttoken", False, False, True),
    "bert-pool-mean-noprompt": ("mean", True, False, False),
}


def case_bert_pool(out_dir, name):
    from transformers import BertConfig, BertModel
    pooling, normalize, lower, include_prompt = POOL_CASES[name]
    # The tokenizer keeps case; lower-casing comes from sentence_bert_config's do_lower_case.
    tok, fast = wordpiece_tokenizer(400, lowercase=False)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, type_vocab_size=2,
                        hidden_act="gelu", layer_norm_eps=1e-12)
    bert = BertModel(config, add_pooling_layer=False).eval()
    randomize(bert)
    prompts = {"query": "query: ", "passage": "passage: "}
    make_case(out_dir, name, bert, fast, 20, pooling, 16, normalize=normalize, do_lower_case=lower,
              include_prompt=include_prompt, prompts=prompts,
              encodes={"embeddings_query": {"prompt_name": "query"}, "embeddings_prompt": {"prompt": "Represent: "}},
              dense=[(16, 12, True, torch.nn.Tanh())] if name == "bert-pool-max" else ())


def case_roberta(out_dir, name):
    from transformers import RobertaConfig, RobertaModel, XLMRobertaConfig, XLMRobertaModel
    xlm = name == "xlm-roberta"
    tok, fast = (xlmr_tokenizer if xlm else roberta_tokenizer)(500)
    cfg_cls, model_cls = (XLMRobertaConfig, XLMRobertaModel) if xlm else (RobertaConfig, RobertaModel)
    config = cfg_cls(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=40, type_vocab_size=1, pad_token_id=1,
                     bos_token_id=0, eos_token_id=2, hidden_act="gelu", layer_norm_eps=1e-5)
    model = model_cls(config, add_pooling_layer=False).eval()
    randomize(model)
    make_case(out_dir, name, model, fast, 24, "mean" if xlm else "cls", 32, normalize=xlm,
              prompts={"query": "query: "}, encodes={"embeddings_query": {"prompt_name": "query"}})


def case_distilbert(out_dir, name):
    from transformers import DistilBertConfig, DistilBertModel
    tok, fast = wordpiece_tokenizer(400, lowercase=True)
    fast.model_input_names = ["input_ids", "attention_mask"]
    config = DistilBertConfig(vocab_size=tok.get_vocab_size(), dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                              max_position_embeddings=64, activation="gelu", pad_token_id=0)
    model = DistilBertModel(config).eval()
    randomize(model)
    make_case(out_dir, name, model, fast, 24, "mean", 32, normalize=True)


def case_modernbert(out_dir, name):
    from transformers import ModernBertConfig, ModernBertModel
    tok, fast = modernbert_tokenizer(500)
    kw = dict(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=48, num_hidden_layers=4,
              num_attention_heads=4, global_attn_every_n_layers=3, local_attention=6, max_position_embeddings=64,
              pad_token_id=3, cls_token_id=1, sep_token_id=2, bos_token_id=1, eos_token_id=2,
              global_rope_theta=160000.0, local_rope_theta=10000.0, norm_eps=1e-5, hidden_activation="gelu")
    try:
        config = ModernBertConfig(reference_compile=False, **kw)
    except TypeError:
        config = ModernBertConfig(**kw)
    model = ModernBertModel(config).eval()
    randomize(model)
    make_case(out_dir, name, model, fast, 28, "mean", 32, normalize=True)


def case_gemma(out_dir, name):
    from transformers import Gemma3TextConfig, Gemma3TextModel
    tok, fast = gemma_tokenizer(500)
    config = Gemma3TextConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                              num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                              query_pre_attn_scalar=16, sliding_window=6, sliding_window_pattern=2,
                              max_position_embeddings=64, rms_norm_eps=1e-6, pad_token_id=0, eos_token_id=1,
                              bos_token_id=2, use_bidirectional_attention=True,
                              hidden_activation="gelu_pytorch_tanh")
    config.layer_types = ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]
    model = Gemma3TextModel(config).eval()
    randomize(model)
    make_case(out_dir, name, model, fast, 28, "mean", 32,
              dense=[(32, 96, False, torch.nn.Identity()), (96, 32, False, torch.nn.Identity())],
              normalize=True, prompts=GEMMA_PROMPTS, default_prompt="document",
              encodes={"embeddings_query": {"prompt_name": "query"}, "embeddings_dim16": {"truncate_dim": 16},
                       "embeddings_prompt": {"prompt": "task: fact checking | query: "}})


def case_qwen3(out_dir, name):
    from transformers import Qwen3Config, Qwen3Model
    tok, fast = qwen_tokenizer(500)
    config = Qwen3Config(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
                         rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True,
                         pad_token_id=tok.token_to_id("<|endoftext|>"), eos_token_id=tok.token_to_id("<|endoftext|>"))
    model = Qwen3Model(config).eval()
    randomize(model)
    make_case(out_dir, name, model, fast, 24, "lasttoken", 32, normalize=True,
              prompts={"query": QWEN_QUERY, "document": ""},
              encodes={"embeddings_query": {"prompt_name": "query"},
                       "embeddings_prompt": {"prompt": "Instruct: Find similar sentences\nQuery:"},
                       "embeddings_dim8": {"truncate_dim": 8}})


CASES = {**{n: case_bert_orig for n in BERT_CASES}, **{n: case_bert_pool for n in POOL_CASES},
         "roberta": case_roberta, "xlm-roberta": case_roberta, "distilbert": case_distilbert,
         "modernbert": case_modernbert, "embeddinggemma": case_gemma, "qwen3-embedding": case_qwen3}


def dump_sources(out_dir):
    """The reference implementations the C side follows, for reading off the device."""
    import importlib
    parts = []
    for mod, names in (("sentence_transformers.models", ("Transformer", "Pooling", "Dense", "Normalize")),
                       ("sentence_transformers", ("SentenceTransformer",)),
                       ("transformers.models.modernbert.modeling_modernbert", None),
                       ("transformers.models.gemma3.modeling_gemma3", None),
                       ("transformers.models.gemma3.configuration_gemma3", None),
                       ("transformers.models.roberta.modeling_roberta", None),
                       ("transformers.models.distilbert.modeling_distilbert", None),
                       ("transformers.masking_utils", None)):
        try:
            m = importlib.import_module(mod)
            if names is None:
                parts.append("#### " + mod + "\n" + inspect.getsource(m))
            else:
                for n in names:
                    obj = getattr(m, n)
                    parts.append("#### %s.%s (%s)\n%s" % (mod, n, inspect.getsourcefile(obj), inspect.getsource(obj)))
        except Exception as e:  # noqa: BLE001 - best effort
            parts.append("#### %s: %r" % (mod, e))
    with open(os.path.join(out_dir, "sources.txt"), "w") as f:
        f.write("\n\n".join(parts))


def main():
    out_dir = sys.argv[1]
    wanted = sys.argv[2:] or list(CASES)
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(4)
    status = {}
    for name in wanted:
        torch.manual_seed(zlib.crc32(name.encode()))
        try:
            CASES[name](out_dir, name)
            status[name] = "ok"
        except Exception:  # noqa: BLE001 - keep going, report
            status[name] = traceback.format_exc()
            print(name, "FAILED\n" + status[name], flush=True)
    with open(os.path.join(out_dir, "status.json"), "w") as f:
        json.dump(status, f, indent=1)
    try:
        dump_sources(out_dir)
    except Exception:  # noqa: BLE001
        traceback.print_exc()


if __name__ == "__main__":
    main()
