#!/usr/bin/env python3
"""Reference fixtures for mlxc's tokenizer tests, made with Hugging Face `tokenizers`.

Run on the GPU machine (it has `tokenizers`, `sentencepiece`; no network):
    python3 scripts/gen_tokenizer_fixtures.py --inputs .devcarry/tok --out "$OUT"

--inputs holds (plain or .xz): {qwen3,llama3,llama2,gemma3}/tokenizer.json, gpt2/encoder.json,
gpt2/vocab.bpe, corpus.txt (training text for the small tokenizers built here) and optionally
bench.txt + bench_tokenizer (mlxc's benchmark, built statically) for the speed comparison.

Writes to --out:
  refs.json     for every tokenizer and every string of tests/fixtures/tokenizers/strings.json:
                ids with and without special tokens, and the decoding of the first with
                skip_special_tokens off and on
  trained.json  the tokenizer.json text of each tokenizer built here (WordPiece/BERT, Unigram
                trained by tokenizers and by sentencepiece, BPE and WordLevel variants)
  bench.json    tokenizers' single-threaded speed on bench.txt and load time of Qwen3's file
  log.txt       what happened
Split them into tests/fixtures/tokenizers/ with scripts/tokenizer_unpack_fixtures.py.
"""
import argparse
import hashlib
import json
import lzma
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LOG = []


def log(*args):
    line = " ".join(str(a) for a in args)
    print(line, flush=True)
    LOG.append(line)


def find_input(root, rel):
    """Path of root/rel, decompressing root/rel.xz into a temporary file when needed."""
    path = os.path.join(root, rel)
    if os.path.exists(path):
        return path
    if os.path.exists(path + ".xz"):
        out = os.path.join(tempfile.gettempdir(), "tokfix_" + rel.replace("/", "_"))
        with lzma.open(path + ".xz", "rb") as f, open(out, "wb") as g:
            g.write(f.read())
        return out
    return None


def references(tok, strings):
    ref = {"with": [], "without": [], "decode": [], "decode_skip": []}
    for s in strings:
        with_special = tok.encode(s, add_special_tokens=True).ids
        ref["with"].append(with_special)
        ref["without"].append(tok.encode(s, add_special_tokens=False).ids)
        ref["decode"].append(tok.decode(with_special, skip_special_tokens=False))
        ref["decode_skip"].append(tok.decode(with_special, skip_special_tokens=True))
    return ref


def corpus_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def build_bert(lines):
    from tokenizers import AddedToken
    from tokenizers.implementations import BertWordPieceTokenizer
    t = BertWordPieceTokenizer(lowercase=True)
    t.train_from_iterator(lines, vocab_size=3000, min_frequency=2,
                          special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False)
    t.add_tokens([AddedToken("[NEW]", single_word=True, lstrip=True, rstrip=True)])
    return t._tokenizer


def build_unigram(lines):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    t = Tokenizer(models.Unigram())
    t.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    t.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.UnigramTrainer(vocab_size=2000, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>",
                                      show_progress=False)
    t.train_from_iterator(lines, trainer)
    t.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B </s>",
        special_tokens=[("<s>", t.token_to_id("<s>")), ("</s>", t.token_to_id("</s>"))])
    t.add_tokens([AddedToken("hello world", normalized=True), AddedToken("[NEW]", single_word=True)])
    return t


def build_spm_unigram(lines):
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    d = tempfile.mkdtemp()
    lines = [line for line in lines if line.strip() and "\n" not in line and "\x00" not in line]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=os.path.join(d, "m"),
                                   vocab_size=1500, model_type="unigram", byte_fallback=True,
                                   normalization_rule_name="nmt_nfkc", character_coverage=0.9995,
                                   minloglevel=2)
    m = pb.ModelProto()
    with open(os.path.join(d, "m.model"), "rb") as f:
        m.ParseFromString(f.read())
    vocab = [(p.piece, p.score) for p in m.pieces]
    t = Tokenizer(models.Unigram(vocab, m.trainer_spec.unk_id, True))
    t.normalizer = normalizers.Sequence([normalizers.Precompiled(m.normalizer_spec.precompiled_charsmap),
                                         normalizers.Replace(Regex(" {2,}"), " ")])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    t.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                   decoders.Strip(content=" ", left=1, right=0)])
    t.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", t.token_to_id("</s>"))])
    return t


def build_bpe_misc(lines):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    t = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    t.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase(),
                                         normalizers.Strip(), normalizers.Replace("``", "\"")])
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                               pre_tokenizers.Punctuation(behavior="isolated"),
                                               pre_tokenizers.Digits(individual_digits=True)])
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["[UNK]", "<s>", "</s>"],
                                  continuing_subword_prefix="##", end_of_word_suffix="</w>", show_progress=False)
    t.train_from_iterator(lines, trainer)
    t.post_processor = processors.RobertaProcessing(("</s>", t.token_to_id("</s>")), ("<s>", t.token_to_id("<s>")))
    t.decoder = decoders.BPEDecoder(suffix="</w>")
    return t


def build_bytelevel_split(lines):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    t = Tokenizer(models.BPE())
    t.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.NFC()])
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("[0-9]+"), behavior="merged_with_previous"),
        pre_tokenizers.Split(Regex("\\s"), behavior="merged_with_next"),
        pre_tokenizers.Split(Regex("[A-Za-z]+"), behavior="contiguous", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2500, special_tokens=["<|end|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    t.train_from_iterator(lines, trainer)
    return t


def build_wordlevel(lines):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    t = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    t.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=False)])
    trainer = trainers.WordLevelTrainer(vocab_size=4000, special_tokens=["[UNK]", "[CLS]", "[SEP]"], show_progress=False)
    t.train_from_iterator(lines, trainer)
    t.post_processor = processors.BertProcessing(("[SEP]", t.token_to_id("[SEP]")), ("[CLS]", t.token_to_id("[CLS]")))
    return t


def build_wordpiece_ctc(lines):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    t = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    t.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False, handle_chinese_chars=True)
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex("[,;]"), behavior="removed"),
                                               pre_tokenizers.BertPreTokenizer()])
    trainer = trainers.WordPieceTrainer(vocab_size=2500, special_tokens=["[UNK]", "[PAD]", "[CLS]", "[SEP]"],
                                        show_progress=False)
    t.train_from_iterator(lines, trainer)
    t.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", t.token_to_id("[CLS]")), ("[SEP]", t.token_to_id("[SEP]"))])
    t.decoder = decoders.Sequence([decoders.CTC(pad_token="[PAD]", word_delimiter_token="|", cleanup=True)])
    return t


TRAINED = [("bert", build_bert), ("unigram", build_unigram), ("spm_unigram", build_spm_unigram),
           ("bpe_misc", build_bpe_misc), ("bytelevel_split", build_bytelevel_split),
           ("wordlevel", build_wordlevel), ("wordpiece_ctc", build_wordpiece_ctc)]


def bench(args, llama3_path, qwen3_path):
    from tokenizers import Tokenizer
    result = {"cpu": "", "threads": os.environ.get("RAYON_NUM_THREADS")}
    try:
        with open("/proc/cpuinfo") as f:
            result["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except Exception:
        pass
    text_path = find_input(args.inputs, "bench.txt")
    if not text_path:
        log("bench: no bench.txt")
        return result
    with open(text_path, encoding="utf-8") as f:
        text = f.read()
    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        Tokenizer.from_file(qwen3_path)
        loads.append(time.perf_counter() - t0)
    result["hf_qwen3_load_ms"] = sorted(loads)[2] * 1e3
    tok = Tokenizer.from_file(llama3_path)
    times = []
    ids = None
    for _ in range(3):
        t0 = time.perf_counter()
        ids = tok.encode(text, add_special_tokens=False).ids
        times.append(time.perf_counter() - t0)
    nbytes = len(text.encode("utf-8"))
    result["bytes"] = nbytes
    result["hf_llama3_encode_mb_s"] = nbytes / 1e6 / min(times)
    result["hf_llama3_ids"] = len(ids)
    h = 0xCBF29CE484222325
    for b in ",".join(map(str, ids)).encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    result["hf_llama3_ids_fnv64"] = "%016x" % h
    # The same text one line at a time (how documents usually arrive), single-threaded.
    lines = text.split("\n")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        count = sum(len(tok.encode(line, add_special_tokens=False).ids) for line in lines)
        times.append(time.perf_counter() - t0)
    result["hf_llama3_lines_encode_mb_s"] = nbytes / 1e6 / min(times)
    result["hf_llama3_lines_ids"] = count
    log("bench (tokenizers):", json.dumps(result))
    binary = find_input(args.inputs, "bench_tokenizer")
    if binary:
        os.chmod(binary, 0o755)
        out = subprocess.run([binary, "--llama3", llama3_path, "--qwen3", qwen3_path, "--text", text_path],
                             capture_output=True, text=True, timeout=300)
        log("bench (mlxc):", out.stdout.strip(), out.stderr.strip()[-2000:])
        result["mlxc_output"] = out.stdout
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--strings", default="tests/fixtures/tokenizers/strings.json")
    args = parser.parse_args()
    import tokenizers
    with open(args.strings, encoding="utf-8") as f:
        strings = json.load(f)
    with open(args.strings, "rb") as f:
        strings_sha = hashlib.sha256(f.read()).hexdigest()
    log("tokenizers", tokenizers.__version__, "python", sys.version.split()[0], "strings", len(strings))
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    refs = {"tokenizers_version": tokenizers.__version__, "strings_sha256": strings_sha, "tokenizers": {}}
    trained = {}
    paths = {}
    for name in ["qwen3", "llama3", "llama2", "gemma3"]:
        path = find_input(args.inputs, name + "/tokenizer.json")
        paths[name] = path
        try:
            t0 = time.perf_counter()
            tok = Tokenizer.from_file(path)
            refs["tokenizers"][name] = references(tok, strings)
            log(name, "ok", "%.1fs" % (time.perf_counter() - t0))
        except Exception as e:
            log(name, "FAILED", repr(e))
    try:
        bpe = models.BPE.from_file(find_input(args.inputs, "gpt2/encoder.json"), find_input(args.inputs, "gpt2/vocab.bpe"))
        tok = Tokenizer(bpe)
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens(["<|endoftext|>"])
        refs["tokenizers"]["gpt2"] = references(tok, strings)
        log("gpt2 ok")
    except Exception as e:
        log("gpt2 FAILED", repr(e))
    lines = corpus_lines(find_input(args.inputs, "corpus.txt")) + strings
    for name, build in TRAINED:
        try:
            t0 = time.perf_counter()
            text = build(lines).to_str()
            tok = Tokenizer.from_str(text)  # the references come from the file as committed
            trained[name] = text
            refs["tokenizers"][name] = references(tok, strings)
            log(name, "ok", "vocab", tok.get_vocab_size(), "%.1fs" % (time.perf_counter() - t0))
        except Exception as e:
            log(name, "FAILED", repr(e))
    with open(os.path.join(args.out, "refs.json"), "w", encoding="utf-8") as f:
        json.dump(refs, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(args.out, "trained.json"), "w", encoding="utf-8") as f:
        json.dump(trained, f, ensure_ascii=False)
    try:
        result = bench(args, paths["llama3"], paths["qwen3"])
        with open(os.path.join(args.out, "bench.json"), "w") as f:
            json.dump(result, f, indent=1)
    except Exception as e:
        log("bench FAILED", repr(e))
    with open(os.path.join(args.out, "log.txt"), "w") as f:
        f.write("\n".join(LOG) + "\n")


if __name__ == "__main__":
    main()
