#!/usr/bin/env python3
"""Convert a llama2.c checkpoint (legacy header) into a Hugging Face model directory.

The Hugging Face loader tests have no real HF checkpoint to read, so they build one from
stories260K.bin with this script: config.json, safetensors written by hand (numpy only)
and, with --shards, model.safetensors.index.json. The q and k projection rows are
permuted from llama2.c's interleaved RoPE pairs to HF's rotate-half (neox) layout: the
inverse of the permute in llama.cpp's convert_hf_to_gguf.py, which reshapes rows as
(heads, 2, head_dim/2) and swaps the last two axes.

--model-type qwen2 adds q/k/v biases and qwen3 adds q/k norms and head_dim. Biases are
arange(n) * 0.001 + layer and norms 1 + arange(head_dim) * 0.01 + layer, so tests can
recompute them.

Usage: io_hf_from_llama2c.py MODEL.bin OUT_DIR [--dtype f32|f16|bf16] [--shards N]
                             [--model-type llama|mistral|qwen2|qwen3] [--untied]
"""
import argparse
import json
import os
import struct

import numpy as np


def read_llama2c(path):
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    head_dim = dim // n_heads
    kv_dim = n_kv_heads * head_dim
    data = np.frombuffer(raw, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        out = data[pos : pos + n].reshape(shape)
        pos += n
        return out

    w = {"emb": take(vocab, dim), "rms_att": take(n_layers, dim), "wq": take(n_layers, dim, dim),
         "wk": take(n_layers, kv_dim, dim), "wv": take(n_layers, kv_dim, dim), "wo": take(n_layers, dim, dim),
         "rms_ffn": take(n_layers, dim), "w1": take(n_layers, hidden, dim), "w2": take(n_layers, dim, hidden),
         "w3": take(n_layers, hidden, dim), "rms_final": take(dim)}
    take(seq_len, head_dim)  # freq_cis_real and freq_cis_imag
    if not shared:
        w["wcls"] = take(vocab, dim)
    if pos != data.size:
        raise SystemExit(f"{path}: {data.size - pos} floats left over; not a legacy llama2.c file")
    params = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads,
                  vocab=vocab, seq_len=seq_len, shared=shared)
    return params, w


def to_neox(w, n_heads):
    """Interleaved RoPE rows (2i, 2i+1) per head to rotate-half rows (i, i + head_dim/2)."""
    rows, cols = w.shape
    return w.reshape(n_heads, rows // n_heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def bf16_bytes(a):
    """float32 -> bfloat16 bits with round to nearest even, as torch does."""
    bits = np.ascontiguousarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def encode(a, dtype):
    if dtype == "F32":
        return np.ascontiguousarray(a, dtype="<f4").tobytes()
    if dtype == "F16":
        return np.ascontiguousarray(a, dtype="<f4").astype("<f2").tobytes()
    return bf16_bytes(a)


def write_safetensors(path, tensors, dtype):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in tensors:
        blob = encode(a, dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def hf_tensors(p, w, model_type, untied):
    n_heads, n_kv = p["n_heads"], p["n_kv_heads"]
    head_dim = p["dim"] // n_heads
    out = [("model.embed_tokens.weight", w["emb"])]
    for l in range(p["n_layers"]):
        pre = f"model.layers.{l}."
        out += [
            (pre + "input_layernorm.weight", w["rms_att"][l]),
            (pre + "self_attn.q_proj.weight", to_neox(w["wq"][l], n_heads)),
            (pre + "self_attn.k_proj.weight", to_neox(w["wk"][l], n_kv)),
            (pre + "self_attn.v_proj.weight", w["wv"][l]),
            (pre + "self_attn.o_proj.weight", w["wo"][l]),
            (pre + "post_attention_layernorm.weight", w["rms_ffn"][l]),
            (pre + "mlp.gate_proj.weight", w["w1"][l]),
            (pre + "mlp.down_proj.weight", w["w2"][l]),
            (pre + "mlp.up_proj.weight", w["w3"][l]),
        ]
        if model_type == "qwen2":
            for proj, rows in (("q", p["dim"]), ("k", n_kv * head_dim), ("v", n_kv * head_dim)):
                out.append((pre + f"self_attn.{proj}_proj.bias", np.arange(rows, dtype=np.float32) * 0.001 + l))
        if model_type == "qwen3":
            for proj in ("q", "k"):
                out.append((pre + f"self_attn.{proj}_norm.weight",
                            1 + np.arange(head_dim, dtype=np.float32) * 0.01 + l))
    out.append(("model.norm.weight", w["rms_final"]))
    if untied:
        out.append(("lm_head.weight", w["wcls"] if "wcls" in w else w["emb"] * 0.5))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out_dir")
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16"])
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--model-type", default="llama", choices=["llama", "mistral", "qwen2", "qwen3"])
    ap.add_argument("--untied", action="store_true", help="write lm_head.weight = 0.5 * embeddings")
    args = ap.parse_args()

    p, w = read_llama2c(args.model)
    dtype = args.dtype.upper()
    untied = args.untied or not p["shared"]
    tensors = hf_tensors(p, w, args.model_type, untied)
    os.makedirs(args.out_dir, exist_ok=True)

    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": args.model_type, "hidden_size": p["dim"],
        "intermediate_size": p["hidden"], "num_hidden_layers": p["n_layers"],
        "num_attention_heads": p["n_heads"], "num_key_value_heads": p["n_kv_heads"], "vocab_size": p["vocab"],
        "max_position_embeddings": p["seq_len"], "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": not untied, "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype],
        "bos_token_id": 1, "eos_token_id": 2,
    }
    if args.model_type == "qwen3":
        config["head_dim"] = p["dim"] // p["n_heads"]
    with open(os.path.join(args.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    if args.shards <= 1:
        write_safetensors(os.path.join(args.out_dir, "model.safetensors"), tensors, dtype)
        return
    per_shard = (len(tensors) + args.shards - 1) // args.shards
    weight_map = {}
    for s in range(args.shards):
        name = f"model-{s + 1:05d}-of-{args.shards:05d}.safetensors"
        chunk = tensors[s * per_shard : (s + 1) * per_shard]
        write_safetensors(os.path.join(args.out_dir, name), chunk, dtype)
        weight_map.update({t: name for t, _ in chunk})
    with open(os.path.join(args.out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2)


if __name__ == "__main__":
    main()
