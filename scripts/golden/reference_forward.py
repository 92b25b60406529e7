#!/usr/bin/env python3
"""Write reference logits of SmolLM2-135M-Instruct for the C++ forward-pass test.

An independent float32 implementation of the Llama forward pass in numpy, run on the
weights of the GGUF file dequantized by gguf-py (gguf.quants.dequantize). It shares no
code with stepdown. For each token sequence it records, at every position, the logits of
the 16 highest ids and of every 61st id, and the full logits of the last position.

Output (tests/golden/smollm2/): reference_logits.json and seq<N>_last_logits.f32
(little-endian float32, vocab_size values).

With --tiny, it instead writes three tiny random-weight F32 GGUF models that exercise
what SmolLM2 does not (qwen2 QKV bias, qwen3 q/k RMSNorm with key_length != dim/heads,
llama with linear RoPE scaling, rope_freqs divisors and an untied output matrix) and the
full logits of one sequence for each, into tests/model/fixtures/.

Usage: scripts/golden/reference_forward.py [MODEL.gguf] [OUT_DIR]
       scripts/golden/reference_forward.py --tiny [OUT_DIR]
"""
import hashlib
import json
import os
import sys
from pathlib import Path

import gguf
import numpy as np
from gguf import GGUFReader, GGUFWriter
from gguf.quants import dequantize

# Sequences as vocabulary pieces, so the script needs no tokenizer. "Ġ" is a leading
# space and "Ċ" a newline in SmolLM2's byte-level BPE vocabulary.
SEQUENCES = [
    ["<|im_start|>", "user", "Ċ", "What", "Ġis", "Ġthe", "Ġcapital", "Ġof", "ĠFrance", "?", "<|im_end|>", "Ċ",
     "<|im_start|>", "ass", "istant", "Ċ"],
    ["Once", "Ġupon", "Ġa", "Ġtime", ",", "Ġthere", "Ġwas", "Ġa"],
    ["def", "Ġfib", "(", "n", "):", "Ċ"],
    ["The"],
]
SAMPLE_STRIDE = 61
TOP_N = 16


def field_value(reader, key):
    field = reader.fields[key]
    return field.contents()


def load(path):
    reader = GGUFReader(path)
    arch = field_value(reader, "general.architecture")
    assert arch in ("llama", "qwen2", "qwen3"), f"{path}: general.architecture {arch} is not implemented here"

    def get(key, default=None):
        return field_value(reader, f"{arch}.{key}") if f"{arch}.{key}" in reader.fields else default

    n_heads = int(get("attention.head_count"))
    dim = int(get("embedding_length"))
    cfg = {
        "arch": arch,
        "dim": dim,
        "n_layers": int(get("block_count")),
        "n_heads": n_heads,
        "n_kv_heads": int(get("attention.head_count_kv", n_heads)),
        "head_dim": int(get("attention.key_length", dim // n_heads)),
        "eps": float(get("attention.layer_norm_rms_epsilon")),
        "theta": float(get("rope.freq_base", 10000.0)),
        "rope_scale": float(get("rope.scaling.factor", 1.0)) if get("rope.scaling.type") == "linear" else 1.0,
        # GGUF llama files store q/k rows for interleaved pairs; qwen files for NeoX halves.
        "neox": arch != "llama",
    }
    tokens = field_value(reader, "tokenizer.ggml.tokens") if "tokenizer.ggml.tokens" in reader.fields else None
    weights = {}
    for t in reader.tensors:
        # dequantize returns the array outermost first: a linear weight is (out, in).
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        weights[t.name] = w.reshape([int(d) for d in reversed(t.shape)]) if w.ndim > 1 else w.reshape(-1)
    return cfg, tokens, weights


def rms_norm(x, w, eps):
    return (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + np.float32(eps))) * w


def rope(x, positions, cfg, freq_divisors):
    """Rotate pairs of each head of x (T, heads, head_dim): (2i, 2i+1), or (i, i + d/2) for NeoX."""
    head_dim = x.shape[-1]
    inv_freq = cfg["theta"] ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim) / cfg["rope_scale"]
    if freq_divisors is not None:
        inv_freq = inv_freq / freq_divisors.astype(np.float64)
    angles = positions[:, None].astype(np.float64) * inv_freq[None, :]  # (T, head_dim/2)
    cos = np.cos(angles).astype(np.float32)[:, None, :]
    sin = np.sin(angles).astype(np.float32)[:, None, :]
    if cfg["neox"]:
        a, b = x[..., : head_dim // 2], x[..., head_dim // 2 :]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
    a = x[..., 0::2]
    b = x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def forward(cfg, w, ids):
    T = len(ids)
    H = cfg["head_dim"]
    divisors = w.get("rope_freqs.weight")
    group = cfg["n_heads"] // cfg["n_kv_heads"]
    positions = np.arange(T)
    x = w["token_embd.weight"][ids]  # (T, D)
    mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), k=1)
    for i in range(cfg["n_layers"]):
        p = f"blk.{i}."
        h = rms_norm(x, w[p + "attn_norm.weight"], cfg["eps"])
        q = h @ w[p + "attn_q.weight"].T + w.get(p + "attn_q.bias", np.float32(0))
        k = h @ w[p + "attn_k.weight"].T + w.get(p + "attn_k.bias", np.float32(0))
        v = h @ w[p + "attn_v.weight"].T + w.get(p + "attn_v.bias", np.float32(0))
        q = q.reshape(T, cfg["n_heads"], H)
        k = k.reshape(T, cfg["n_kv_heads"], H)
        v = v.reshape(T, cfg["n_kv_heads"], H)
        if p + "attn_q_norm.weight" in w:
            q = rms_norm(q, w[p + "attn_q_norm.weight"], cfg["eps"])
            k = rms_norm(k, w[p + "attn_k_norm.weight"], cfg["eps"])
        q = rope(q, positions, cfg, divisors)
        k = rope(k, positions, cfg, divisors)
        k = np.repeat(k, group, axis=1)
        v = np.repeat(v, group, axis=1)
        scores = np.einsum("thd,shd->hts", q, k) / np.float32(np.sqrt(H)) + mask  # (heads, T, T)
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs = probs / probs.sum(axis=-1, keepdims=True)
        attn = np.einsum("hts,shd->thd", probs, v).reshape(T, cfg["n_heads"] * H)
        x = x + attn @ w[p + "attn_output.weight"].T
        h = rms_norm(x, w[p + "ffn_norm.weight"], cfg["eps"])
        gate = h @ w[p + "ffn_gate.weight"].T
        up = h @ w[p + "ffn_up.weight"].T
        act = gate / (np.float32(1) + np.exp(-gate)) * up
        x = x + act @ w[p + "ffn_down.weight"].T
    x = rms_norm(x, w["output_norm.weight"], cfg["eps"])
    out = w.get("output.weight", w["token_embd.weight"])
    return (x @ out.T).astype(np.float32)  # (T, V)


TINY_TOKENS = [1, 17, 42, 5, 63, 8, 30]


def write_tiny_model(path, arch, rng):
    """A 2-block model with random F32 weights; returns nothing, writes `path`."""
    dim, n_heads, n_kv_heads, ffn, vocab = 32, 4, 2, 48, 64
    head_dim = 16 if arch == "qwen3" else dim // n_heads
    writer = GGUFWriter(str(path), arch)
    writer.add_block_count(2)
    writer.add_context_length(64)
    writer.add_embedding_length(dim)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(n_heads)
    writer.add_head_count_kv(n_kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(1000.0)
    writer.add_vocab_size(vocab)
    if arch == "llama":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(2.0)

    def normal(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm_weight(n):
        return (1.0 + rng.standard_normal(n) * 0.1).astype(np.float32)

    q_dim, kv_dim = n_heads * head_dim, n_kv_heads * head_dim
    writer.add_tensor("token_embd.weight", normal(vocab, dim, scale=1.0))
    writer.add_tensor("output_norm.weight", norm_weight(dim))
    if arch == "llama":
        writer.add_tensor("output.weight", normal(vocab, dim))
        writer.add_tensor("rope_freqs.weight", (1.0 + rng.random(head_dim // 2) * 3).astype(np.float32))
    for i in range(2):
        p = f"blk.{i}."
        writer.add_tensor(p + "attn_norm.weight", norm_weight(dim))
        writer.add_tensor(p + "attn_q.weight", normal(q_dim, dim))
        writer.add_tensor(p + "attn_k.weight", normal(kv_dim, dim))
        writer.add_tensor(p + "attn_v.weight", normal(kv_dim, dim))
        if arch == "qwen2":
            writer.add_tensor(p + "attn_q.bias", normal(q_dim))
            writer.add_tensor(p + "attn_k.bias", normal(kv_dim))
            writer.add_tensor(p + "attn_v.bias", normal(kv_dim))
        if arch == "qwen3":
            writer.add_tensor(p + "attn_q_norm.weight", norm_weight(head_dim))
            writer.add_tensor(p + "attn_k_norm.weight", norm_weight(head_dim))
        writer.add_tensor(p + "attn_output.weight", normal(dim, q_dim))
        writer.add_tensor(p + "ffn_norm.weight", norm_weight(dim))
        writer.add_tensor(p + "ffn_gate.weight", normal(ffn, dim))
        writer.add_tensor(p + "ffn_up.weight", normal(ffn, dim))
        writer.add_tensor(p + "ffn_down.weight", normal(dim, ffn))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_tiny_fixtures(out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261204)
    for arch in ("qwen2", "qwen3", "llama"):
        path = out_dir / f"tiny_{arch}.gguf"
        write_tiny_model(path, arch, rng)
        cfg, _, weights = load(str(path))
        logits = forward(cfg, weights, np.array(TINY_TOKENS))
        (out_dir / f"tiny_{arch}_logits.json").write_text(json.dumps(
            {"model": path.name, "tokens": TINY_TOKENS, "logits": logits.tolist()}) + "\n")
        print(f"{path.name}: argmax per position {logits.argmax(axis=1).tolist()}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--tiny":
        write_tiny_fixtures(Path(sys.argv[2] if len(sys.argv) > 2 else
                                 Path(__file__).resolve().parents[2] / "tests/model/fixtures"))
        return
    model = Path(sys.argv[1] if len(sys.argv) > 1 else
                 os.path.expanduser("~/.cache/stepdown/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    out_dir = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).resolve().parents[2] / "tests/golden/smollm2")
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg, vocab, weights = load(str(model))
    piece_to_id = {piece: i for i, piece in enumerate(vocab)}
    sha256 = hashlib.sha256(model.read_bytes()).hexdigest()

    result = {"model": model.name, "sha256": sha256, "sample_stride": SAMPLE_STRIDE, "sequences": []}
    for n, pieces in enumerate(SEQUENCES):
        ids = [piece_to_id[p] for p in pieces]
        logits = forward(cfg, weights, np.array(ids))
        positions = []
        for t in range(len(ids)):
            top = np.argsort(-logits[t], kind="stable")[:TOP_N]
            sampled = np.arange(0, logits.shape[1], SAMPLE_STRIDE)
            check_ids = sorted(set(top.tolist()) | set(sampled.tolist()))
            positions.append({"ids": check_ids, "logits": [float(logits[t, i]) for i in check_ids]})
        last_file = f"seq{n}_last_logits.f32"
        logits[-1].astype("<f4").tofile(out_dir / last_file)
        result["sequences"].append({"tokens": ids, "positions": positions, "last_logits_file": last_file})
        print(f"sequence {n}: {len(ids)} tokens, argmax of last position {int(np.argmax(logits[-1]))}")
    (out_dir / "reference_logits.json").write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
