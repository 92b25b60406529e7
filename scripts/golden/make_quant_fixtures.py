#!/usr/bin/env python3
"""Write tests/golden/quant/rtn_blocks.bin: f32 rows and the blocks gguf-py makes of them.

Oracle: gguf-py (PyPI `gguf`), gguf.quants.quantize(rows, GGMLQuantizationType.X) for F16,
BF16, Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1. tests/quant/rtn_golden_test.cpp requires stepdown's
quantizers to give the same bytes.

Rows (each 256 values, seed 1234): normal, heavy-tailed (Student t, 2 degrees of freedom),
all zeros, tiny subnormals, constant, normal with a few large outliers, exact ties
(values k/2 * scale that sit on rounding boundaries), and mixed magnitudes per block.

File layout (little-endian): u32 n_cases; per case: u32 name length, name bytes, u32 ggml
type id, u32 n values, f32 values[n], u32 n bytes, bytes.
"""
import struct
import warnings
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

OUT = Path(__file__).resolve().parents[2] / "tests/golden/quant/rtn_blocks.bin"
TYPES = [T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]
N = 256


def rows():
    rng = np.random.default_rng(1234)
    out = {
        "normal": rng.standard_normal(N) * 0.02,
        "heavy_tailed": rng.standard_t(2, N) * 0.05,
        "all_zero": np.zeros(N),
        "subnormal": rng.standard_normal(N) * 1e-40,
        "constant": np.full(N, 0.375),
        "negative_constant": np.full(N, -1.25),
    }
    outliers = rng.standard_normal(N) * 0.01
    outliers[[3, 77, 200]] = [4.0, -6.5, 9.0]
    out["outliers"] = outliers
    ties = (rng.integers(-16, 17, N) / 2.0) * 0.125
    out["ties"] = ties
    mixed = rng.standard_normal(N)
    mixed *= np.repeat(10.0 ** rng.integers(-6, 3, N // 32), 32)
    out["mixed_magnitudes"] = mixed
    out["tiny_normal"] = rng.standard_normal(N) * 1e-30
    return {k: v.astype(np.float32) for k, v in out.items()}


def main():
    cases = []
    with warnings.catch_warnings():
        # Subnormal rows overflow 1/d in gguf-py; the resulting bytes are the golden.
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, values in rows().items():
            for qtype in TYPES:
                blocks = quantize(values.reshape(1, -1), qtype)
                cases.append((f"{name}/{qtype.name}", int(qtype), values, np.ascontiguousarray(blocks).view(np.uint8).tobytes()))
    with open(OUT, "wb") as f:
        f.write(struct.pack("<I", len(cases)))
        for name, type_id, values, data in cases:
            f.write(struct.pack("<I", len(name)) + name.encode())
            f.write(struct.pack("<II", type_id, values.size) + values.tobytes())
            f.write(struct.pack("<I", len(data)) + data)
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
