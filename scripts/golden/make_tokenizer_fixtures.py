#!/usr/bin/env python3
"""Write the tokenizer golden fixtures under tests/golden/tokenizer/.

The oracle is Hugging Face `tokenizers` (PyPI). For each tokenizer the script generates
N strings with a fixed seed: ASCII, runs of spaces and newlines, digits, punctuation,
accented Latin, CJK, emoji, and special-token strings inside text. It encodes each with
and without special tokens and decodes the ids both ways. Each line of the zstd-compressed
output is one JSON object:

  {"text": ..., "ids": [...], "ids_special": [...], "decoded": ..., "decoded_skip": ...}

`ids_special`, `decoded` and `decoded_skip` are left out when they equal `ids`, `text`
and `decoded` respectively, which keeps the files small.

SmolLM2 ships no tokenizer.json inside its GGUF, so the script builds the equivalent HF
tokenizer from the GGUF vocabulary (tokens, merges, control tokens). Its pipeline is the
one SmolLM2-135M's tokenizer.json has: no normalizer, Digits with individual digits, then
ByteLevel with the GPT-2 regex and no prefix space, and BPE without an unknown token.
(A public export script, which checks that tokenizer.json field by field, gave these
settings.) The tokenizer is saved as smollm2-tokenizer.json.zst, so the C++ test can
load the same vocabulary without the GGUF reader.

It also renders the chat templates with jinja2 from the template text the models ship
(chat_templates.json).

Usage: scripts/golden/make_tokenizer_fixtures.py [--count 10000]
"""
import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("STEPDOWN_SHARED_DIR", ROOT.parent / "shared"))
MODEL_CACHE = Path(os.environ.get("STEPDOWN_MODEL_CACHE", Path.home() / ".cache/stepdown/models"))
OUT = ROOT / "tests/golden/tokenizer"
SEED = 20261204

ASCII_WORDS = ["the", "The", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "I'm", "you're",
               "can't", "HELLO", "World", "tokenizer", "a", "an", "x", "foo_bar", "camelCase", "it's",
               "we'll", "they've", "I'd", "O'Neil", "'s", "'T", "http", "www", "json", "C++", "don't"]
ACCENTED = ["café", "naïve", "résumé", "façade", "Ångström", "über", "Straße", "señor", "déjà", "vu",
            "coöperate", "Œuvre", "Ærø", "Łódź", "İstanbul", "ǅ", "ﬁne", "é", "ñ"]
CJK = ["你好", "世界", "中文测试", "日本語", "テキスト", "カタカナ", "ひらがな", "한국어", "텍스트", "東京", "北京",
       "漢字", "。", "，", "！", "「引用」"]
EMOJI = ["😀", "👍🏽", "🇺🇸", "❤️", "👨‍👩‍👧", "🎉", "🤖", "✨", "🔥", "💯", "😂😂", "🙂"]
PUNCT = list(".,;:!?-_()[]{}<>\"'`~@#$%^&*+=/\\|") + ["...", "--", "!!", "?!", "->", "=>", "::", "</", "/>"]
OTHER = ["Россия", "Українa", "Ελληνικά", "مرحبا", "שלום", "हिन्दी", "ไทย", "\u00a0", "\u200b", "\u3000",
         "\t", "\r\n", "\u2028", "½", "²", "Ⅻ", "١٢٣", "𝔘𝔫𝔦",
         # Words that Llama 3's vocabulary contains whole but its merges would split, so they
         # only come out as one token with ignore_merges.
         " việc", " hợp", " nhiều", "mektedir", " değiş", " характ", " ایران"]


def random_text(rng: random.Random, specials: list[str]) -> str:
    parts = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.random()
        if kind < 0.30:
            part = rng.choice(ASCII_WORDS)
        elif kind < 0.40:
            part = " " * rng.randint(1, 6)
        elif kind < 0.47:
            part = rng.choice(["\n", "\n\n", " \n", "\n ", "\n\n\n", "  \n  ", "\t\n"])
        elif kind < 0.55:
            part = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
        elif kind < 0.62:
            part = rng.choice(PUNCT)
        elif kind < 0.70:
            part = rng.choice(ACCENTED)
        elif kind < 0.77:
            part = rng.choice(CJK)
        elif kind < 0.83:
            part = rng.choice(EMOJI)
        elif kind < 0.87:
            part = rng.choice(OTHER)
        elif kind < 0.95:
            special = rng.choice(specials)
            # Near-misses too: a special token cut short or with a space inside.
            roll = rng.random()
            if roll < 0.15:
                special = special[:-1]
            elif roll < 0.25:
                special = special[:2] + " " + special[2:]
            part = special
        else:
            part = "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(1, 10)))
        parts.append(part)
        if rng.random() < 0.5:
            parts.append(" ")
    return "".join(parts)


def special_strings(tokenizer: Tokenizer) -> list[str]:
    added = [t.content for t in tokenizer.get_added_tokens_decoder().values()]
    # A few of many (Llama 3 has 256 reserved ones); always the common ones.
    common = [s for s in added if "reserved" not in s]
    return common[:24] + [s for s in added if "reserved" in s][:4]


def write_fixture(name: str, tokenizer: Tokenizer, count: int, header: dict | None = None) -> None:
    rng = random.Random(f"{SEED}-{name}")
    specials = special_strings(tokenizer)
    lines = [json.dumps(header, ensure_ascii=False)] if header else []
    # Hand-picked edge cases first, then the generated strings.
    texts = ["", " ", "  ", "\n", "hello", " hello", "hello world", "Hello, World!", "  leading", "trailing  ",
             "a\n\nb", "1234567890", "3.14159", "ⅣⅫ½", "x" * 300, " " * 40, "\n" * 12, "😀" * 5]
    texts += [specials[0], specials[0] + specials[0], "a" + specials[0] + "b", " " + specials[-1] + " "]
    # A few long texts: SentencePiece vocabularies without a pre-tokenizer merge them as
    # one word.
    texts += ["".join(random_text(rng, specials) for _ in range(150)) for _ in range(3)]
    while len(texts) < count:
        texts.append(random_text(rng, specials))
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        ids_special = tokenizer.encode(text, add_special_tokens=True).ids
        decoded = tokenizer.decode(ids_special, skip_special_tokens=False)
        decoded_skip = tokenizer.decode(ids_special, skip_special_tokens=True)
        record = {"text": text, "ids": ids}
        if ids_special != ids:
            record["ids_special"] = ids_special
        if decoded != text:
            record["decoded"] = decoded
        if decoded_skip != decoded:
            record["decoded_skip"] = decoded_skip
        lines.append(json.dumps(record, ensure_ascii=False))
    data = ("\n".join(lines) + "\n").encode()
    path = OUT / f"{name}.jsonl.zst"
    subprocess.run(["zstd", "-q", "-19", "-f", "-o", str(path)], input=data, check=True)
    print(f"{path}: {len(texts)} strings, {path.stat().st_size} bytes", file=sys.stderr)


QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")

# Edits to a tokenizer.json that exercise NFC/NFKC normalizers and the added-token flags
# (lstrip, rstrip, single_word, normalized). The fixture's first line stores the patch so
# the C++ test applies the same edits before comparing.
PATCHES = {
    "llama3-flags": ("llama3", {
        "replace": {"normalizer": {"type": "NFC"}},
        "added_tokens_update": {"<|eot_id|>": {"lstrip": True}, "<|start_header_id|>": {"rstrip": True},
                                "<|end_header_id|>": {"lstrip": True, "rstrip": True}},
        "added_tokens_append": [
            {"id": 128256, "content": "qqhello", "single_word": True, "lstrip": False, "rstrip": False,
             "normalized": False, "special": False},
            {"id": 128257, "content": "<mask>", "single_word": False, "lstrip": True, "rstrip": False,
             "normalized": False, "special": True},
            {"id": 128258, "content": "e\u0301x", "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": True, "special": False},
        ],
    }),
    "mistral-7b-flags": ("mistral-7b", {
        "replace": {"normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFKC"}, {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}},
        "added_tokens_update": {"</s>": {"lstrip": True, "rstrip": True}},
        "added_tokens_append": [
            {"id": 32000, "content": "<mask>", "single_word": False, "lstrip": True, "rstrip": False,
             "normalized": False, "special": True},
            {"id": 32001, "content": "qqword", "single_word": True, "lstrip": False, "rstrip": False,
             "normalized": False, "special": False},
            {"id": 32002, "content": "zzq", "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": True, "special": False},
        ],
    }),
    # The Metaspace pre-tokenizer and decoder that non-legacy Llama-family files use.
    "mistral-7b-metaspace": ("mistral-7b", {
        "replace": {
            "normalizer": None,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
            "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False},
        },
        "added_tokens_update": {}, "added_tokens_append": [],
    }),
    # Qwen 2's pre-tokenizer (Llama 3's regex with single digits) and BPE without
    # ignore_merges, over Llama 3's vocabulary: the oracle for the GGUF "qwen2" path.
    "llama3-qwen2-pre": ("llama3", {
        "replace": {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]}},
        "model_update": {"ignore_merges": False},
        "added_tokens_update": {}, "added_tokens_append": [],
    }),
    # ByteLevel with add_prefix_space, as GPT-2 and RoBERTa files have it.
    "llama3-prefix-space": ("llama3", {
        "replace": {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                      "use_regex": True}},
        "added_tokens_update": {}, "added_tokens_append": [],
    }),
}


def patched_tokenizer(base: str, patch: dict) -> Tokenizer:
    root = json.loads((SHARED / f"tokenizers/{base}/tokenizer.json").read_text())
    root.update(patch["replace"])
    root["model"].update(patch.get("model_update", {}))
    for token in root["added_tokens"]:
        token.update(patch["added_tokens_update"].get(token["content"], {}))
    root["added_tokens"] += patch["added_tokens_append"]
    return Tokenizer.from_str(json.dumps(root))


class LlamaCppTokenizer:
    """llama.cpp's tokenizer for a GGUF vocabulary (llama-cpp-python), where no HF
    tokenizer.json exists (Gemma 3). Only ids are compared: llama.cpp's detokenizer is not
    Hugging Face's decode."""

    def __init__(self, path: Path):
        import llama_cpp

        self.model = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        self.specials = []
        from gguf import GGUFReader

        fields = GGUFReader(str(path)).fields
        tokens = fields["tokenizer.ggml.tokens"].contents()
        types = fields["tokenizer.ggml.token_type"].contents()
        self.specials = [t for t, kind in zip(tokens, types) if kind == 3 and "unused" not in t][:24]

    def encode_ids(self, text: str, add_special: bool) -> list[int]:
        return self.model.tokenize(text.encode(), add_bos=add_special, special=True)


def write_ids_fixture(name: str, tokenizer, count: int) -> None:
    rng = random.Random(f"{SEED}-{name}")
    lines = [json.dumps({"oracle": type(tokenizer).__name__, "ids_only": True})]
    texts = ["", " ", "hello", " hello", "Hello, World!", "a\n\nb", "1234567890", "😀" * 5, "x" * 300]
    while len(texts) < count:
        texts.append(random_text(rng, tokenizer.specials))
    for text in texts:
        ids = tokenizer.encode_ids(text, False)
        ids_special = tokenizer.encode_ids(text, True)
        record = {"text": text, "ids": ids}
        if ids_special != ids:
            record["ids_special"] = ids_special
        lines.append(json.dumps(record, ensure_ascii=False))
    path = OUT / f"{name}.jsonl.zst"
    subprocess.run(["zstd", "-q", "-19", "-f", "-o", str(path)], input=("\n".join(lines) + "\n").encode(), check=True)
    print(f"{path}: {len(texts)} strings, {path.stat().st_size} bytes", file=sys.stderr)


class Llama2cTokenizer:
    """llama2.c's encode() for a tokenizer.bin, transcribed from its published algorithm.

    It adds a dummy-prefix space and looks each character up, falling back to id byte + 3.
    Then it repeatedly merges the adjacent pair whose joined piece has the highest score,
    the first such pair on ties. It is written independently of the C++ BPE code."""

    def __init__(self, path: Path):
        import struct

        data = path.read_bytes()
        offset = 4
        self.pieces, self.scores = [], []
        while offset < len(data):
            score, length = struct.unpack_from("<fi", data, offset)
            offset += 8
            self.pieces.append(data[offset:offset + length])
            self.scores.append(score)
            offset += length
        self.lookup = {}
        for i, piece in enumerate(self.pieces):
            self.lookup.setdefault(piece, i)
        self.specials = ["<s>", "</s>", "<unk>"]

    def encode_ids(self, text: str, add_special: bool) -> list[int]:
        ids = [1] if add_special else []
        if not text:
            return ids
        tokens = [self.lookup[b" "]]
        for char in text:
            encoded = char.encode()
            if encoded in self.lookup:
                tokens.append(self.lookup[encoded])
            else:
                tokens.extend(byte + 3 for byte in encoded)
        while True:
            best_score, best_index, best_id = None, -1, -1
            for i in range(len(tokens) - 1):
                merged = self.lookup.get(self.pieces[tokens[i]] + self.pieces[tokens[i + 1]])
                if merged is not None and (best_score is None or self.scores[merged] > best_score):
                    best_score, best_index, best_id = self.scores[merged], i, merged
            if best_index < 0:
                break
            tokens[best_index:best_index + 2] = [best_id]
        return ids + tokens


def smollm2_tokenizer() -> Tokenizer:
    """The HF tokenizer equivalent to SmolLM2's GGUF vocabulary."""
    from gguf import GGUFReader

    reader = GGUFReader(str(MODEL_CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    fields = reader.fields
    tokens = fields["tokenizer.ggml.tokens"].contents()
    token_types = fields["tokenizer.ggml.token_type"].contents()
    merges = [tuple(m.split(" ", 1)) for m in fields["tokenizer.ggml.merges"].contents()]
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tokenizer.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    control = [AddedToken(tokens[i], special=True, normalized=False, lstrip=False, rstrip=False, single_word=False)
               for i, kind in enumerate(token_types) if kind == 3]
    tokenizer.add_special_tokens(control)
    return tokenizer


MISTRAL_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}"
    "{% set loop_messages = messages[1:] %}{% else %}{% set loop_messages = messages %}{% endif %}"
    "{{ bos_token }}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{% if loop.first and system_message is defined %}"
    "{{ '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{% set first_user_prefix = messages[0]['content'] + '\\n\\n' %}{% set loop_messages = messages[1:] %}"
    "{% else %}{% set first_user_prefix = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') + "
    "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)


def render_chat_templates() -> None:
    """Expected chat prompts rendered with jinja2 from each model's own template text."""
    import jinja2
    from gguf import GGUFReader

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message):
        raise ValueError(message)

    env.globals["raise_exception"] = raise_exception
    conversations = {
        "user_only": [{"role": "user", "content": "Hello!"}],
        "system_user": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}],
        "multi_turn": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4."},
                       {"role": "user", "content": "  And 3+3?\n"}],
        "tool_role": [{"role": "user", "content": "Run it."}, {"role": "tool", "content": "ok"}],
        "system_multi_turn": [{"role": "system", "content": "You are terse."},
                              {"role": "user", "content": "Name a colour."},
                              {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Another."}],
    }
    templates = {}
    smollm = GGUFReader(str(MODEL_CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    templates["chatml"] = (smollm.fields["tokenizer.chat_template"].contents(), {})
    llama3_config = json.loads((SHARED / "tokenizers/llama3/tokenizer_config.json").read_text())
    templates["llama3"] = (llama3_config["chat_template"], {"bos_token": llama3_config["bos_token"]})
    # Neither the Mistral tokenizer_config.json used by the tests nor the Gemma 3 GGUF
    # carries a chat template, so these two are written here from the layouts Mistral and
    # Google publish. Mistral's is the v0.1 [INST] layout, with a system message put before
    # the first user message as its later templates do. Gemma's is Gemma 3's template for
    # text turns.
    templates["mistral"] = (MISTRAL_TEMPLATE, {"bos_token": "<s>", "eos_token": "</s>"})
    templates["gemma"] = (GEMMA_TEMPLATE, {"bos_token": "<bos>"})
    out = {}
    for name, (source, extra) in templates.items():
        template = env.from_string(source)
        rendered = {}
        for conversation_name, messages in conversations.items():
            for generation_prompt in (False, True):
                key = f"{conversation_name}/{'gen' if generation_prompt else 'nogen'}"
                try:
                    rendered[key] = template.render(messages=messages, add_generation_prompt=generation_prompt,
                                                    **extra)
                except ValueError as error:
                    rendered[key] = {"error": str(error)}
        out[name] = {"template": source, "rendered": rendered}
    (OUT / "chat_templates.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    write_fixture("llama3", Tokenizer.from_file(str(SHARED / "tokenizers/llama3/tokenizer.json")), args.count)
    write_fixture("mistral-7b", Tokenizer.from_file(str(SHARED / "tokenizers/mistral-7b/tokenizer.json")),
                  args.count)
    for name, (base, patch) in PATCHES.items():
        write_fixture(name, patched_tokenizer(base, patch), 2000, {"base": base, "patch": patch})
    smollm2 = smollm2_tokenizer()
    write_fixture("smollm2", smollm2, args.count)
    json_text = smollm2.to_str().encode()
    subprocess.run(["zstd", "-q", "-19", "-f", "-o", str(OUT / "smollm2-tokenizer.json.zst")], input=json_text,
                   check=True)
    write_ids_fixture("gemma3-llama-cpp", LlamaCppTokenizer(MODEL_CACHE / "gemma-3-270m-q4_k_m.gguf"), 3000)
    write_ids_fixture("stories260k-llama2c", Llama2cTokenizer(SHARED / "models/stories260K/tok512.bin"), 2000)
    write_ids_fixture("llama2-llama2c", Llama2cTokenizer(SHARED / "models/llama2-tokenizer/tokenizer.bin"), 2000)
    render_chat_templates()


if __name__ == "__main__":
    main()
