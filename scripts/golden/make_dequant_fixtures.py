#!/usr/bin/env python3
"""Write golden fixtures for dequantize_row, computed by gguf-py (PyPI `gguf`).

For each weight format the script builds random but valid blocks (every f16 scale finite,
with zeros, negatives and subnormals among them), decodes them with gguf.quants.dequantize,
and writes two files under tests/golden/dequant/:
    <TYPE>.blocks    the raw block bytes
    <TYPE>.f32       the expected values, float32 little-endian
test_kernels requires bitwise equality with these.

With --real-models it instead takes the tensors of the fetched SmolLM2 (Q4_1, Q8_0) and
Gemma 3 (Q5_0, Q4_K, Q6_K, Q8_0) GGUF files, writes the same kind of fixtures for them into
a temporary folder and runs test_kernels on that folder (env STEPDOWN_DEQUANT_FIXTURES).

    scripts/golden/make_dequant_fixtures.py
    scripts/golden/make_dequant_fixtures.py --real-models --test-binary build/tests/test_kernels
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "tests" / "golden" / "dequant"
MODEL_DIR = Path(os.environ.get("STEPDOWN_MODEL_CACHE", Path.home() / ".cache" / "stepdown" / "models"))

# Byte offsets of the f16 fields inside one block of each format.
F16_FIELDS = {
    T.Q8_0: [0], T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
BLOCK_TYPES = list(F16_FIELDS)
FLOAT_TYPES = [T.F32, T.F16, T.BF16]


def random_f16(rng: np.random.Generator, count: int) -> np.ndarray:
    """Finite f16 scales: mostly normal magnitudes, some zeros, negatives and subnormals."""
    values = (rng.standard_normal(count) * 0.05).astype(np.float16)
    kind = rng.integers(0, 10, count)
    values[kind == 0] = np.float16(0.0)
    values[kind == 1] = -values[kind == 1]
    subnormal = rng.integers(1, 0x400, count).astype(np.uint16).view(np.float16)
    values[kind == 2] = subnormal[kind == 2]
    assert np.all(np.isfinite(values))
    return values


def random_blocks(rng: np.random.Generator, qtype: T, n_blocks: int) -> np.ndarray:
    elems, block_bytes = GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, (n_blocks, block_bytes), dtype=np.uint8)
    for offset in F16_FIELDS[qtype]:
        data[:, offset:offset + 2] = random_f16(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return data


def random_floats(rng: np.random.Generator, qtype: T, count: int) -> np.ndarray:
    if qtype == T.F32:
        return (rng.standard_normal(count) * rng.choice([1e-30, 1e-3, 1.0, 1e30], count)).astype(np.float32).view(np.uint8)
    bits = rng.integers(0, 1 << 16, count, dtype=np.uint32).astype(np.uint16)
    if qtype == T.F16:
        bits[(bits & 0x7C00) == 0x7C00] &= 0xBFFF  # keep every value finite
    else:
        bits[(bits & 0x7F80) == 0x7F80] &= 0xBFFF
    return bits.view(np.uint8)


def expected_values(raw: np.ndarray, qtype: T) -> np.ndarray:
    return dequantize(raw, qtype).astype(np.float32, copy=False).reshape(-1)


def write_fixture(folder: Path, stem: str, raw: np.ndarray, qtype: T) -> int:
    values = expected_values(raw, qtype)
    (folder / f"{stem}.blocks").write_bytes(np.ascontiguousarray(raw).tobytes())
    (folder / f"{stem}.f32").write_bytes(values.astype("<f4").tobytes())
    return values.size


def make_random_fixtures() -> None:
    rng = np.random.default_rng(20261204)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for qtype in BLOCK_TYPES:
        elems = GGML_QUANT_SIZES[qtype][0]
        n_blocks = 48 if elems == 32 else 12
        count = write_fixture(OUT_DIR, qtype.name, random_blocks(rng, qtype, n_blocks), qtype)
        print(f"{qtype.name}: {n_blocks} blocks, {count} values")
    for qtype in FLOAT_TYPES:
        count = write_fixture(OUT_DIR, qtype.name, random_floats(rng, qtype, 1024), qtype)
        print(f"{qtype.name}: {count} values")


# Elements checked per tensor at most, so the run stays a few minutes; the first rows of a
# tensor are taken whole.
MAX_ELEMS_PER_TENSOR = 1 << 20


def check_real_models(test_binary: Path) -> int:
    wanted = {T.Q4_1, T.Q8_0, T.Q5_0, T.Q4_K, T.Q6_K, T.Q5_K, T.Q5_1, T.Q4_0, T.F16, T.BF16}
    models = ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        summary: dict[str, list[int]] = {}
        for model in models:
            path = MODEL_DIR / model
            if not path.exists():
                print(f"missing {path}; run scripts/fetch-models", file=sys.stderr)
                return 2
            reader = GGUFReader(path)
            for tensor in reader.tensors:
                qtype = T(tensor.tensor_type)
                if qtype not in wanted:
                    continue
                raw = np.asarray(tensor.data).view(np.uint8)
                raw = raw.reshape(raw.shape[0] if raw.ndim > 1 else 1, -1)
                elems_per_row = int(tensor.shape[0])
                rows = max(1, min(raw.shape[0], MAX_ELEMS_PER_TENSOR // elems_per_row))
                stem = f"{qtype.name}__{model.split('.')[0]}__{tensor.name}"
                count = write_fixture(folder, stem, raw[:rows], qtype)
                entry = summary.setdefault(f"{model}: {qtype.name}", [0, 0])
                entry[0] += 1
                entry[1] += count
        for name, (tensors, values) in sorted(summary.items()):
            print(f"{name}: {tensors} tensors, {values} values")
        env = dict(os.environ, STEPDOWN_DEQUANT_FIXTURES=str(folder))
        result = subprocess.run([str(test_binary), "--gtest_filter=DequantizeGolden.*"], env=env)
        return result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real-models", action="store_true", help="check the fetched GGUF models instead")
    parser.add_argument("--test-binary", type=Path, default=ROOT / "build" / "tests" / "test_kernels")
    args = parser.parse_args()
    if args.real_models:
        return check_real_models(args.test_binary)
    make_random_fixtures()
    return 0


if __name__ == "__main__":
    sys.exit(main())
