#!/usr/bin/env python3
"""Reference fixtures for the UnicodeScripts pre-tokenizer, sentence-pair encoding (with truncation
and padding) and Unicode case mapping, made with Hugging Face `tokenizers` and Python/Jinja2 on the
GPU machine (no network):

    python3 scripts/gen_tokenizer_extra_fixtures.py --inputs DIR --out "$OUT"

--inputs holds (plain or .xz) {llama3,qwen3,llama2}/tokenizer.json and script_reps.json (one
representative character per script, made from Debian's unicode-data Scripts.txt by
scripts/gen_unicode_tables.py --reps). Tokenizers built earlier are read from
tests/fixtures/tokenizers/trained/ (the committed files).

Writes to --out (split into tests/fixtures/tokenizers/ by hand, see docs/tokenizer.md):
  unicode_scripts.json   per code point, how tokenizers' UnicodeScripts classifies it (as runs of
                         [first, last, class], class = "Any" or the representative it does not
                         split from), and pre_tokenize_str of every test string
  unicode_scripts_tokenizer.json   a byte-level BPE whose pre-tokenizer is UnicodeScripts + ByteLevel
  unicode_scripts_refs.json        ids for every test string with that tokenizer
  pairs.json             pair encodings for several tokenizers: plain, truncated (every strategy),
                         batch-padded
  casing.json            Lowercase normalizer and Python str/Jinja2 case mappings, per code point
                         (differences only) and per test string
"""
import argparse
import json
import lzma
import os
import sys
import tempfile

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TRAINED_DIR = "tests/fixtures/tokenizers/trained"

CASE_STRINGS = [
    "", "HELLO World", "İstanbul", "ΟΔΟΣ", "ΣΑΣ ΣΑΣ.", "Σ", "aΣ", "aΣb", "aΣ.", "a.Σ", "aΣ'", "aΣ'b", "ΑΣ\u0301",
    "ὈΔΥΣΣΕΎΣ", "Straße", "ß", "ﬁ ﬂ ﬃ", "ŉ", "ǰ", "ΐ", "և", "ᾳ ᾼ ῳ", "Ǆ ǅ ǆ ǈ ǋ", "ǅungla", "hello world",
    "hELLO wORLD", "o'neil mc-donald", "foo-bar baz_qux", "(paren) [br] {c} <a>", "1st 2nd 3rd", "x1y z", "ÉCOLE école",
    "ǲ", "ꞵꞴ", "Ⓐⓐ", "ⅠⅡⅰ", "𐐀𐐨", "𞤀𞤢", "ᏸᏰ", "Ꭰꭰ", "ı I i İ", "K Å Ω", "ǈ ǋ ǲ", "tHe qUICK bROWN fOX",
    "ﬅ ﬆ", "ﬓ", "ᾈ ᾀ", "ῼ", "Ω ω", "ẞ", "\u0345", "Ab\u0307c", "I\u0307", "ΣΣ", "Σ Σ", "ς", "aς", "AΣ1", "AΣ\u00ad",
    " leading", "trailing ", "\ttab\tSeparated", "multiple   spaces", "UPPER_snake_CASE", "camelCaseWord",
    "Ünïcödé ÀÉÎÕÜ", "Привет МИР", "Ἀθῆναι", "ԱԲԳ աբգ", "Ⴀ ⴀ ა Ა", "ᲐᲑ", "日本語 ABC", "emoji 😀 Ok", "ǇǊ ǈǋ ǉǌ",
]

SCRIPT_STRINGS = [
    "どこで生れ。Yes", "Apples are りんご 林檎", " leading space", "  two", "trailing  ", "   ", " ", "a b", "a  b",
    "Hello, world!", "abc123def", "123", "...", "$100", "東京タワー", "カタカナーひらがな", "ー", "ーa", "aー",
    "Русский text", "Ελληνικά και English", "עברית and العربية", "हिन्दी भाषा", "한국어 텍스트", "ไทย ภาษา",
    "x\u0301y", "\u0301x", "α\u0301β", "😀😀 ok", "a😀b", "Ⅻ", "ℌ𝔢𝔩𝔩𝔬", "\u3000全角\u3000スペース", "A\u00a0B",
    "mixed漢字andLatin", "日本語の文章です。", "ئۇيغۇرچە", "ᠮᠣᠩᠭᠣᠯ", "ꦗꦮ", "𐌰𐌱", "𖿠x", "\U0001e900𞤢",
    "tab\there", "new\nline", "a\u200db", "ab\u0640cd", "١٢٣ abc", "Ⓐ Ⓑ", "\u3005々", "〆", "ｱｲｳ", "ｈｅｌｌｏ",
    "2024年1月", "Ω≈ç√", "㐀𠀀", "\U0002ebe0", "\U00031350x", "ꟊ", "\U0001f1e9\U0001f1ea", "ℍ", "ⅰⅱ",
]


def find_input(root, rel):
    path = os.path.join(root, rel)
    if os.path.exists(path):
        return path
    if os.path.exists(path + ".xz"):
        out = os.path.join(tempfile.gettempdir(), "tokx_" + rel.replace("/", "_"))
        with lzma.open(path + ".xz", "rb") as f, open(out, "wb") as g:
            g.write(f.read())
        return out
    return None


def all_code_points():
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        yield cp


def runs(classes):
    """[(cp, cls)] -> [[first, last, cls]] merging consecutive code points of one class."""
    out = []
    for cp, cls in classes:
        if out and out[-1][2] == cls and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp, cls])
    return out


def unicode_scripts_table(reps):
    from tokenizers import pre_tokenizers
    pt = pre_tokenizers.UnicodeScripts()

    def pieces(s):
        return len(pt.pre_tokenize_str(s))

    classes = []
    prev = None
    for cp in all_code_points():
        c = chr(cp)
        if pieces("a" + c + "a") == 1 and pieces("0" + c + "0") == 1:
            cls = "Any"
        else:
            cls = None
            candidates = ([prev] if prev and prev != "Any" else []) + list(reps)
            for r in candidates:
                if pieces(chr(reps[r]) + c) == 1:
                    cls = r
                    break
            if cls is None:
                cls = "?"
        classes.append((cp, cls))
        prev = cls
    return runs(classes)


def casing(strings):
    import jinja2
    from tokenizers import normalizers
    lower = normalizers.Lowercase()
    env = jinja2.Environment()
    per_cp = {"rust_lowercase": [], "py_lower": [], "py_upper": [], "py_title": [], "py_capitalize": []}
    for cp in all_code_points():
        c = chr(cp)
        r = lower.normalize_str(c)
        if r != c:
            per_cp["rust_lowercase"].append([cp, r])
        for key, fn in (("py_lower", str.lower), ("py_upper", str.upper), ("py_title", str.title),
                        ("py_capitalize", str.capitalize)):
            r = fn(c)
            if r != c:
                per_cp[key].append([cp, r])
    filters = {name: env.from_string("{{ s|%s }}" % name) for name in ("lower", "upper", "title", "capitalize")}
    per_string = []
    for s in strings:
        per_string.append({
            "s": s, "rust_lowercase": lower.normalize_str(s),
            "py_lower": s.lower(), "py_upper": s.upper(), "py_title": s.title(), "py_capitalize": s.capitalize(),
            "py_swapcase": s.swapcase(),
            "jinja_lower": filters["lower"].render(s=s), "jinja_upper": filters["upper"].render(s=s),
            "jinja_title": filters["title"].render(s=s), "jinja_capitalize": filters["capitalize"].render(s=s)})
    return {"per_code_point": per_cp, "per_string": per_string, "python": sys.version.split()[0],
            "unidata_version": __import__("unicodedata").unidata_version, "jinja2": jinja2.__version__}


def build_unicode_scripts_tokenizer(lines):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.UnicodeScripts(),
                                               pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=["<s>", "</s>", "<pad>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    t.train_from_iterator(lines, trainer)
    t.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s>:0 $A:0 </s>:0 $B:1 </s>:1",
        special_tokens=[("<s>", t.token_to_id("<s>")), ("</s>", t.token_to_id("</s>"))])
    return t


def enc_dict(e):
    return {"ids": e.ids, "type_ids": e.type_ids, "attention_mask": e.attention_mask,
            "special_tokens_mask": e.special_tokens_mask}


def pair_refs(tok, pairs):
    out = {"plain": [], "plain_no_special": [], "truncated": [], "padded": [], "single_truncated": []}
    tok.no_truncation()
    tok.no_padding()
    for a, b in pairs:
        out["plain"].append(enc_dict(tok.encode(a, b, add_special_tokens=True)))
        out["plain_no_special"].append(enc_dict(tok.encode(a, b, add_special_tokens=False)))
    for strategy in ("longest_first", "only_first", "only_second"):
        for max_length in (5, 12, 30):
            for direction in ("right", "left"):
                tok.enable_truncation(max_length, stride=0, strategy=strategy, direction=direction)
                for i, (a, b) in enumerate(pairs[:40]):
                    rec = {"pair": i, "strategy": strategy, "max_length": max_length, "direction": direction}
                    try:
                        rec.update(enc_dict(tok.encode(a, b, add_special_tokens=True)))
                    except Exception as e:
                        rec["error"] = str(e)
                    out["truncated"].append(rec)
                    if strategy == "longest_first":
                        srec = {"string": i, "max_length": max_length, "direction": direction}
                        try:
                            srec.update(enc_dict(tok.encode(a, add_special_tokens=True)))
                        except Exception as e:
                            srec["error"] = str(e)
                        out["single_truncated"].append(srec)
    tok.no_truncation()
    pad_id = 0
    pad_settings = [
        {"direction": "right", "length": None, "pad_to_multiple_of": None, "pair": True},
        {"direction": "left", "length": None, "pad_to_multiple_of": None, "pair": True},
        {"direction": "right", "length": None, "pad_to_multiple_of": 8, "pair": True},
        {"direction": "right", "length": 40, "pad_to_multiple_of": None, "pair": False},
        {"direction": "right", "length": None, "pad_to_multiple_of": None, "pair": False, "max_length": 10},
    ]
    for setting in pad_settings:
        tok.enable_padding(direction=setting["direction"], pad_id=pad_id, pad_type_id=0, pad_token="[PADX]",
                           length=setting["length"], pad_to_multiple_of=setting["pad_to_multiple_of"])
        if setting.get("max_length"):
            tok.enable_truncation(setting["max_length"])
        batch = pairs[:12] if setting["pair"] else [a for a, _ in pairs[:12]]
        rec = dict(setting, pad_id=pad_id)
        try:
            rec["batch"] = [enc_dict(e) for e in tok.encode_batch(batch, add_special_tokens=True)]
        except Exception as e:
            rec["error"] = str(e)
        out["padded"].append(rec)
        tok.no_padding()
        tok.no_truncation()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--strings", default="tests/fixtures/tokenizers/strings.json")
    args = ap.parse_args()
    import tokenizers
    from tokenizers import Tokenizer, pre_tokenizers
    with open(args.strings, encoding="utf-8") as f:
        strings = json.load(f)
    meta = {"tokenizers": tokenizers.__version__, "python": sys.version.split()[0]}
    print("tokenizers", tokenizers.__version__, flush=True)

    # UnicodeScripts: per code point classes, and splits of every string.
    with open(find_input(args.inputs, "script_reps.json"), encoding="utf-8") as f:
        reps = json.load(f)
    table = unicode_scripts_table(reps)
    pt = pre_tokenizers.UnicodeScripts()
    test_strings = strings + SCRIPT_STRINGS
    splits = [[p for p, _ in pt.pre_tokenize_str(s)] for s in test_strings]
    with open(os.path.join(args.out, "unicode_scripts.json"), "w", encoding="utf-8") as f:
        json.dump(dict(meta, runs=table, strings=test_strings, splits=splits), f, ensure_ascii=False,
                  separators=(",", ":"))
    print("unicode_scripts: runs", len(table), flush=True)

    # A tokenizer using it, trained here; references come from the file as written.
    text = build_unicode_scripts_tokenizer(strings + SCRIPT_STRINGS + CASE_STRINGS).to_str()
    with open(os.path.join(args.out, "unicode_scripts_tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(text)
    tok = Tokenizer.from_str(text)
    ref = {"with": [], "without": [], "decode": [], "decode_skip": []}
    for s in strings:
        ids = tok.encode(s, add_special_tokens=True).ids
        ref["with"].append(ids)
        ref["without"].append(tok.encode(s, add_special_tokens=False).ids)
        ref["decode"].append(tok.decode(ids, skip_special_tokens=False))
        ref["decode_skip"].append(tok.decode(ids, skip_special_tokens=True))
    with open(os.path.join(args.out, "unicode_scripts_refs.json"), "w", encoding="utf-8") as f:
        json.dump(dict(ref, tokenizers_version=tokenizers.__version__), f, ensure_ascii=False, separators=(",", ":"))
    print("unicode_scripts tokenizer ok", flush=True)

    # Pairs: varied (first, second) combinations, empty ones and long ones included.
    picks = [s for s in strings if len(s) < 400]
    pairs = [("", ""), ("Hello world", ""), ("", "Second sentence here."),
             ("The quick brown fox jumps over the lazy dog.", "A short one."),
             ("short", "A much longer second sentence that has quite a few more words in it than the first.")]
    for i in range(0, min(len(picks), 190), 2):
        pairs.append((picks[i], picks[(i * 7 + 3) % len(picks)]))
    tokenizers_for_pairs = {}
    for name in ("bert", "unigram", "bpe_misc", "wordlevel", "wordpiece_ctc", "spm_unigram", "bytelevel_split"):
        tokenizers_for_pairs[name] = Tokenizer.from_file(os.path.join(TRAINED_DIR, name, "tokenizer.json"))
    for name in ("llama3", "qwen3", "llama2"):
        path = find_input(args.inputs, name + "/tokenizer.json")
        if path:
            tokenizers_for_pairs[name] = Tokenizer.from_file(path)
    tokenizers_for_pairs["unicode_scripts"] = Tokenizer.from_str(text)
    result = dict(meta, pairs=pairs, tokenizers={})
    for name, tok in tokenizers_for_pairs.items():
        try:
            result["tokenizers"][name] = pair_refs(tok, pairs)
            print("pairs", name, "ok", flush=True)
        except Exception as e:
            result["tokenizers"][name] = {"error": repr(e)}
            print("pairs", name, "FAILED", repr(e), flush=True)
    with open(os.path.join(args.out, "pairs.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, separators=(",", ":"))

    with open(os.path.join(args.out, "casing.json"), "w", encoding="utf-8") as f:
        json.dump(dict(meta, **casing(CASE_STRINGS + strings)), f, ensure_ascii=False, separators=(",", ":"))
    print("casing ok", flush=True)


if __name__ == "__main__":
    main()
