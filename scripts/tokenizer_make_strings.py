#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizers/strings.json: the texts every tokenizer fixture encodes.

Hand-written cases (scripts, emoji, code, whitespace, special tokens, long words, normalization
traps) plus deterministic random mixtures of them. Run from the repository root; the output is
committed, and scripts/gen_tokenizer_fixtures.py reads it.
"""
import json
import random

HAND = [
    "", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n\n", " \n ", "\t\t\t", " \t \n \t ",
    "Hello world", "Hello world!", "hello, world.", "HELLO WORLD", "Hello   world", " Hello", "Hello ",
    "   leading spaces", "trailing spaces   ", "tabs\tin\tthe\tmiddle", "line one\nline two\n\nline four",
    "windows\r\nline\r\nendings", "mixed \t\n whitespace \u00a0 nbsp \u3000 ideographic \u2003 em",
    "It's", "it's", "IT'S", "We're here, they've gone, I'm done, you'll see, he'd know, don't!",
    "'s 't 're 've 'm 'll 'd", "ʼs curly ’s quotes “double” ‘single’", "O'Neil's dog's bone",
    "1", "12", "123", "1234", "12345", "123456789", "3.14159", "1,000,000", "2024-01-31", "10:45pm",
    "+1 (555) 012-3456", "0x1F600", "1e-10", "٣٤٥ Arabic-Indic digits", "१२३ Devanagari digits",
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs!",
    "In the beginning God created the heaven and the earth.",
    "Français : où est la bibliothèque ? À bientôt, garçon, naïve, cœur.",
    "Deutsch: Größe, Straße, Übermäßig, ÄÖÜ äöü ß ẞ.",
    "Español: ¿Dónde está el niño? ¡Olé! mañana.",
    "Português: ação, coração, não, órgão.",
    "Italiano: perché, città, così.",
    "Polski: zażółć gęślą jaźń.",
    "Čeština: příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Türkçe: İstanbul ılık ışık IĞDIR iğne.",
    "Ελληνικά: Καλημέρα κόσμε, ΣΊΣΥΦΟΣ σοφός.",
    "Русский: Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Українська: Ґанок, їжак, єнот.",
    "العربية: مرحبا بالعالم، كيف حالك؟",
    "עברית: שלום עולם",
    "فارسی: سلام دنیا",
    "हिन्दी: नमस्ते दुनिया, क्षत्रिय",
    "বাংলা: হ্যালো বিশ্ব",
    "தமிழ்: வணக்கம் உலகம்",
    "తెలుగు: హలో ప్రపంచం",
    "ไทย: สวัสดีชาวโลก",
    "ລາວ: ສະບາຍດີ",
    "ខ្មែរ: សួស្តីពិភពលោក",
    "မြန်မာ: မင်္ဂလာပါ",
    "བོད་ཡིག: བཀྲ་ཤིས་བདེ་ལེགས།",
    "ქართული: გამარჯობა მსოფლიო",
    "Հայերեն: Բարեւ աշխարհ",
    "አማርኛ: ሰላም ዓለም",
    "中文：你好，世界！今天天气很好。",
    "繁體中文：臺灣的天氣很好。",
    "日本語：こんにちは世界。カタカナとひらがなと漢字ー。",
    "ｶﾀｶﾅ half-width katakana",
    "한국어: 안녕하세요 세계, ᄀᄁ jamo",
    "Tiếng Việt: Xin chào thế giới, người Việt.",
    "Монгол: Сайн байна уу ᠮᠣᠩᠭᠣᠯ",
    "ᏣᎳᎩ Cherokee ᐃᓄᒃᑎᑐᑦ Inuktitut",
    "Emoji: 😀😃😄😁", "👍🏽 thumbs up medium", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 rainbow flag", "🇫🇷🇯🇵🇺🇸 flags",
    "1️⃣ keycap", "❤️ heart with VS16", "🧑🏿‍🚀 astronaut", "👩‍❤️‍💋‍👨", "🤷‍♀️", "☺ ☺️",
    "e\u0301 combining acute", "é precomposed", "A\u030a Å", "ﬁ ligature ﬂ", "ＡＢＣ fullwidth １２３",
    "Ⅻ roman", "x² superscript", "① circled", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 fraktur", "𝐁𝐨𝐥𝐝", "ǅ titlecase Ǆ ǆ",
    "\u200b zero width space", "a\u200db zwj", "\ufeffBOM at start", "\u200eLTR mark", "soft\u00adhyphen",
    "nul\u0000byte", "\u0001\u0002 control", "del\u007f", "nel\u0085next line", "line\u2028separator",
    "paragraph\u2029separator", "\ue000 private use", "\U000e0001 tag", "\U0010fffd plane 16", "\ufffd replacement",
    "def hello(name):\n    return f\"Hello, {name}!\"\n",
    "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "SELECT * FROM users WHERE id = 1 AND name LIKE '%bob%';",
    "fn main() { let v: Vec<u8> = vec![1, 2, 3]; println!(\"{:?}\", v); }",
    "for i in $(seq 1 10); do echo \"$i\"; done | grep -v 3 >> /tmp/out.txt",
    "regex: ^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@\\w+\\.com$",
    "https://example.com/path?query=1&other=two#fragment",
    "user@example.org", "C:\\Windows\\System32\\drivers\\etc\\hosts",
    "    indented with four spaces", "\t\tindented with tabs", "        eight spaces then text",
    "a  b   c    d     e", "!!!", "???!!!...", "...", "—–-", "«guillemets» „quotes“", "$100 €200 £300 ¥400",
    "@mention #hashtag", "snake_case_identifier", "camelCaseIdentifier", "kebab-case-identifier",
    "UPPER_SNAKE", "__dunder__", "a.b.c.d", "x=1;y=2;z=x+y",
    "<|endoftext|>", "Hello<|endoftext|>world", "text <|endoftext|> text", "<|endoftext|><|endoftext|>",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>", "<think>\nreasoning\n</think>\n\nanswer",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>",
    "<s>[INST] What is 2+2? [/INST] 4</s>", "<s>", "</s>", "<unk>", " <s> spaced </s> ",
    "<bos><start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n", "<pad><eos>",
    "[CLS] bert [SEP] tokens [MASK] [PAD] [UNK]", "[NEW] token", "a[NEW]b", "x [NEW] y", "hello world again",
    "<|im_start|", "<|im_start|>>", "<<|im_end|>", "<s><s></s>",
    "a" * 300, "ab" * 200, "supercalifragilisticexpialidocious" * 10, "9" * 300, "中" * 200, "😀" * 100,
    "Z" * 50 + "z" * 50, "-" * 120, "=" * 80 + "\n" + "=" * 80, " " * 100, "\n" * 50, "\t" * 40,
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQgZW5jb2RlZCB0ZXh0IHdpdGggbG9uZyBydW5zAAAA==",
    "The year 1999 and 2000 and 20000 and 1234567890123.",
    "I'm sure it'll work; we've tested it, haven't we? You'd think so.",
    "Mr. Smith & Mrs. Jones — together (again) [for now] {maybe}.",
    "multiple\n\n\nblank\n\n\n\nlines", "end with newline\n", "\nstart with newline", " \n", "\n ",
    "unicode\u00a0nbsp\u00a0separated", "trailing nbsp\u00a0", "\u3000ideographic start",
]

POOL = [
    "the", "The", " of", "and", "to", "in", "is", "it's", "don't", "hello", "world", "tokenizer", "token",
    "数据", "日本", "한국", "Привет", "مرحبا", "שלום", "नमस्ते", "ไทย", "Ελλάδα", "ñ", "ü", "é", "ç",
    "😀", "👍🏽", "🇫🇷", "❤️", "👨‍👩‍👧", "123", "4567", "3.14", "0", "!", "?", ".", ",", ";", ":", "...",
    "(", ")", "[", "]", "{", "}", "<", ">", "\"", "'", "`", "~", "@", "#", "$", "%", "^", "&", "*", "_", "+", "=",
    "/", "\\", "|", "-", " ", "  ", "   ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u200b", "e\u0301",
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<bos>", "<eos>", "<start_of_turn>",
    "[CLS]", "[SEP]", "[MASK]", "<unk>", "[NEW]", "hello world",
    "def", "return", "if", "else", "for", "while", "int", "void", "printf", "std::vector<int>",
    "Mixed", "CASE", "camelCase", "snake_case", "URL", "https://a.b/c", "ﬁ", "Ⅻ", "²", "Σ", "ς", "İ", "ı",
]


def main():
    rng = random.Random(20261123)
    strings = list(HAND)
    while len(strings) < 420:
        n = rng.randint(1, 24)
        strings.append("".join(rng.choice(POOL) for _ in range(n)))
    with open("tests/fixtures/tokenizers/strings.json", "w", encoding="utf-8") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(s, ensure_ascii=False) for s in strings))
        f.write("\n]\n")
    print(len(strings), "strings")


if __name__ == "__main__":
    main()
