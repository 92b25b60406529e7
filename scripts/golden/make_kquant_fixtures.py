#!/usr/bin/env python3
"""Measure llama.cpp's own K-quant error on fixed data, for tests/quant/kquant_rmse_test.cpp.

llama-cpp-python (0.3.x) does not expose quantize_row_*, so this writes a tiny llama GGUF
at F32 whose 2-D weights are the test data, quantizes it with llama_cpp.llama_model_quantize
(pure = every tensor the same type) to Q4_K, Q5_K and Q6_K, dequantizes the result with
gguf-py and records the RMSE of every test tensor.

Output tests/golden/quant/kquant_data.bin (little-endian): u32 n_tensors; per tensor:
u32 name length, name, u32 rows, u32 cols, f32 values[rows * cols]; then u32 n_results;
per result: u32 name length, name, u32 ggml type id, f64 llama.cpp RMSE.
"""
import ctypes
import struct
import tempfile
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
import llama_cpp

OUT = Path(__file__).resolve().parents[2] / "tests/golden/quant/kquant_data.bin"
N_EMBD, N_FF, VOCAB = 256, 256, 256
FTYPES = {T.Q4_K: llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S, T.Q5_K: llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_S,
          T.Q6_K: llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K}


def test_tensors(rng):
    def outliers(shape):
        w = rng.standard_normal(shape) * 0.02
        idx = rng.choice(w.size, w.size // 200, replace=False)
        w.flat[idx] = rng.standard_normal(idx.size) * 0.5
        return w

    def mixed(shape):
        w = rng.standard_normal(shape)
        scales = 10.0 ** rng.uniform(-4, 0, (shape[0], shape[1] // 32))
        return w * np.repeat(scales, 32, axis=1)

    def positive(shape):
        return np.abs(rng.standard_normal(shape)) * 0.03 + 0.01

    return {
        "blk.0.attn_q.weight": rng.standard_normal((N_EMBD, N_EMBD)) * 0.02,
        "blk.0.attn_k.weight": rng.standard_t(2, (N_EMBD, N_EMBD)) * 0.02,
        "blk.0.attn_v.weight": outliers((N_EMBD, N_EMBD)),
        "blk.0.attn_output.weight": mixed((N_EMBD, N_EMBD)),
        "blk.0.ffn_gate.weight": positive((N_FF, N_EMBD)),
        "blk.0.ffn_up.weight": rng.uniform(-0.05, 0.05, (N_FF, N_EMBD)),
        "blk.0.ffn_down.weight": rng.laplace(0, 0.02, (N_EMBD, N_FF)),
    }


def write_f32_model(path, tensors, rng):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(128)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(1)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_rope_dimension_count(N_EMBD // 4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(0)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"t{i}" for i in range(VOCAB)])
    w.add_token_scores([0.0] * VOCAB)
    w.add_token_types([1] * VOCAB)
    w.add_tensor("token_embd.weight", (rng.standard_normal((VOCAB, N_EMBD)) * 0.02).astype(np.float32))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, np.float32))
    w.add_tensor("output.weight", (rng.standard_normal((VOCAB, N_EMBD)) * 0.02).astype(np.float32))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(N_EMBD, np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(N_EMBD, np.float32))
    for name, values in tensors.items():
        w.add_tensor(name, values)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    rng = np.random.default_rng(4321)
    tensors = {k: v.astype(np.float32) for k, v in test_tensors(rng).items()}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "f32.gguf"
        write_f32_model(src, tensors, rng)
        for qtype, ftype in FTYPES.items():
            dst = Path(tmp) / f"{qtype.name}.gguf"
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = ftype
            params.pure = True
            params.nthread = 2
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
            assert rc == 0, f"llama_model_quantize failed for {qtype.name}"
            reader = gguf.GGUFReader(str(dst))
            for t in reader.tensors:
                if t.name not in tensors:
                    continue
                assert t.tensor_type == qtype, f"{t.name} became {t.tensor_type.name}, not {qtype.name}"
                back = gguf.quants.dequantize(t.data, t.tensor_type).reshape(tensors[t.name].shape)
                rmse = float(np.sqrt(np.mean((back.astype(np.float64) - tensors[t.name]) ** 2)))
                results.append((t.name, int(qtype), rmse))
                print(f"{qtype.name:5s} {t.name:28s} llama.cpp RMSE {rmse:.6g}")
    with open(OUT, "wb") as f:
        f.write(struct.pack("<I", len(tensors)))
        for name, values in tensors.items():
            f.write(struct.pack("<I", len(name)) + name.encode())
            f.write(struct.pack("<II", *values.shape) + values.tobytes())
        f.write(struct.pack("<I", len(results)))
        for name, type_id, rmse in results:
            f.write(struct.pack("<I", len(name)) + name.encode() + struct.pack("<Id", type_id, rmse))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
