#!/usr/bin/env python3
"""Write reference logits of SmolLM2-135M-Instruct for the C++ forward-pass test.

An independent float32 implementation of the Llama forward pass in numpy, run on the
weights of the GGUF file dequantized by gguf-py (gguf.quants.dequantize). It shares no
code with stepdown. For each token sequence it records, at every position, the logits of
the 16 highest ids and of every 61st id, and the full logits of the last position.

Output (tests/golden/smollm2/): reference_logits.json and seq<N>_last_logits.f32
(little-endian float32, vocab_size values).

Usage: scripts/golden/reference_forward.py [MODEL.gguf] [OUT_DIR]
"""
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
from gguf import GGUFReader
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
    assert arch == "llama", f"{path}: general.architecture is {arch}; this reference implements llama only"
    cfg = {
        "dim": int(field_value(reader, "llama.embedding_length")),
        "n_layers": int(field_value(reader, "llama.block_count")),
        "n_heads": int(field_value(reader, "llama.attention.head_count")),
        "n_kv_heads": int(field_value(reader, "llama.attention.head_count_kv")),
        "eps": float(field_value(reader, "llama.attention.layer_norm_rms_epsilon")),
        "theta": float(field_value(reader, "llama.rope.freq_base")),
    }
    tokens = field_value(reader, "tokenizer.ggml.tokens")
    weights = {}
    for t in reader.tensors:
        # dequantize returns the array outermost first: a linear weight is (out, in).
        w = dequantize(t.data, t.tensor_type).astype(np.float32)
        weights[t.name] = w.reshape([int(d) for d in reversed(t.shape)]) if w.ndim > 1 else w.reshape(-1)
    return cfg, tokens, weights


def rms_norm(x, w, eps):
    return (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + np.float32(eps))) * w


def rope_interleaved(x, positions, theta):
    """Rotate pairs (2i, 2i+1) of each head; x is (T, heads, head_dim)."""
    head_dim = x.shape[-1]
    inv_freq = theta ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    angles = positions[:, None].astype(np.float64) * inv_freq[None, :]  # (T, head_dim/2)
    cos = np.cos(angles).astype(np.float32)[:, None, :]
    sin = np.sin(angles).astype(np.float32)[:, None, :]
    a = x[..., 0::2]
    b = x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def forward(cfg, w, ids):
    T = len(ids)
    H = cfg["dim"] // cfg["n_heads"]
    group = cfg["n_heads"] // cfg["n_kv_heads"]
    positions = np.arange(T)
    x = w["token_embd.weight"][ids]  # (T, D)
    mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), k=1)
    for i in range(cfg["n_layers"]):
        p = f"blk.{i}."
        h = rms_norm(x, w[p + "attn_norm.weight"], cfg["eps"])
        q = (h @ w[p + "attn_q.weight"].T).reshape(T, cfg["n_heads"], H)
        k = (h @ w[p + "attn_k.weight"].T).reshape(T, cfg["n_kv_heads"], H)
        v = (h @ w[p + "attn_v.weight"].T).reshape(T, cfg["n_kv_heads"], H)
        q = rope_interleaved(q, positions, cfg["theta"])
        k = rope_interleaved(k, positions, cfg["theta"])
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


def main():
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
