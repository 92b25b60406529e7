#!/usr/bin/env python3
"""Write tests/golden/quant/gptq_reference.bin.zst: GPTQ results of a plain float64 numpy
implementation, which tests/quant/gptq_reference_test.cpp compares stepdown's GPTQ with.

The reference updates every remaining column after each column (no lazy batches), so it
checks that stepdown's blocked version computes the same thing. Grid arithmetic is f32
as the formats define it: int4-g32 (d = f16(absmax / 7), codes in [-7, 7]) and int8 per
row (s = absmax / 127 in f32, codes in [-127, 127]), codes rounded half away from zero.

Problem (seed 20261204): W (64, 128) normal * 0.05 with a few outliers; X (512, 128) with
correlated channels of unequal scale and channel 5 always zero (a dead input);
H = 2 X^T X / 512; damp 0.01. Cases: each format with and without act-order (static
groups).

Layout (little-endian): u32 rows, u32 cols, f32 W[rows * cols], f64 H[cols * cols],
u32 n_cases; per case: u32 name length, name, u32 dtype id (stepdown DType), u32
act_order, f64 output_error (sum over rows of (w - q)^T H (w - q) / 2), f32 Q[rows * cols]
(the dequantized weights).

Usage: scripts/golden/gptq_reference.py (needs numpy and the zstd command).
"""
import struct
import subprocess
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[2] / "tests/golden/quant/gptq_reference.bin"
ROWS, COLS, TOKENS = 64, 128, 512
DAMP = 0.01
FLT_MIN = np.float32(1.1754944e-38)

# stepdown DType ids (src/stepdown/core/dtype.h).
INT8 = 1000
INT4_G32 = 1002


def round_half_away(q):
    """std::round on a float32 array, exactly."""
    a = np.abs(q)
    r = np.floor(a)
    r = np.where(a - r >= np.float32(0.5), r + np.float32(1), r)
    return np.copysign(r, q).astype(np.float32)


class Int4G32:
    group, lo, hi = 32, -7, 7

    def choose(self, x):
        absmax = np.max(np.abs(x.astype(np.float32)))
        d = np.float32(absmax / np.float32(7))
        if d < FLT_MIN:
            d = np.float32(0)
        return np.float32(np.float16(d))


class Int8Row:
    group, lo, hi = None, -127, 127

    def choose(self, x):
        absmax = np.max(np.abs(x.astype(np.float32)))
        return np.float32(absmax / np.float32(127)) if absmax >= FLT_MIN else np.float32(0)


def quantize_column(x, scales, fmt):
    """Values on the grid for one column x (rows) with per-row scales."""
    x = x.astype(np.float32)
    safe = np.where(scales == 0, np.float32(1), scales)
    q = np.clip(round_half_away((x / safe).astype(np.float32)), fmt.lo, fmt.hi)
    q = np.where(scales == 0, np.float32(0), q)
    return (scales * q).astype(np.float32)


def gptq(w, h, fmt, act_order):
    rows, cols = w.shape
    w = w.astype(np.float64).copy()
    h = h.copy()
    group = fmt.group or cols

    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0

    static = act_order or fmt.group is None
    scales = np.zeros((rows, cols // group), dtype=np.float32)
    if static:
        for r in range(rows):
            for g in range(cols // group):
                scales[r, g] = fmt.choose(w[r, g * group:(g + 1) * group])

    order = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(cols)
    w = w[:, order]
    h = h[np.ix_(order, order)]
    h[np.diag_indices(cols)] += DAMP * np.mean(np.diag(h))
    u = np.linalg.cholesky(np.linalg.inv(h)).T

    q = np.zeros((rows, cols), dtype=np.float32)
    for i in range(cols):
        column = order[i]
        g = column // group
        if not static and column % group == 0:
            for r in range(rows):
                scales[r, g] = fmt.choose(w[r, i:i + group])
        q[:, i] = quantize_column(w[:, i], scales[:, g], fmt)
        e = (w[:, i] - q[:, i].astype(np.float64)) / u[i, i]
        w[:, i + 1:] -= np.outer(e, u[i, i + 1:])

    out = np.zeros_like(q)
    out[:, order] = q
    return out


def main():
    rng = np.random.default_rng(20261204)
    w = (rng.standard_normal((ROWS, COLS)) * 0.05).astype(np.float32)
    w[3, 17] = 0.9
    w[40, 90] = -0.7
    mix = rng.standard_normal((COLS, COLS)) * 0.3 + np.eye(COLS)
    scales = np.exp(rng.standard_normal(COLS))
    x = (rng.standard_normal((TOKENS, COLS)) @ mix) * scales
    x[:, 5] = 0.0
    x = x.astype(np.float32).astype(np.float64)
    h = 2.0 * x.T @ x / TOKENS

    cases = []
    for name, fmt, dtype in [("int4-g32", Int4G32(), INT4_G32), ("int8", Int8Row(), INT8)]:
        for act_order in (0, 1):
            q = gptq(w, h, fmt, act_order)
            delta = w.astype(np.float64) - q.astype(np.float64)
            error = 0.5 * float(np.sum((delta @ h) * delta))
            cases.append((f"{name} act_order={act_order}", dtype, act_order, error, q))
            print(f"{name} act_order={act_order}: output error {error:.6g}")

    blob = bytearray(struct.pack("<II", ROWS, COLS))
    blob += w.astype("<f4").tobytes() + h.astype("<f8").tobytes()
    blob += struct.pack("<I", len(cases))
    for name, dtype, act_order, error, q in cases:
        encoded = name.encode()
        blob += struct.pack("<I", len(encoded)) + encoded
        blob += struct.pack("<IId", dtype, act_order, error)
        blob += q.astype("<f4").tobytes()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(bytes(blob))
    subprocess.run(["zstd", "-q", "-f", "-19", "--rm", str(OUT)], check=True)
    print(f"wrote {OUT}.zst")


if __name__ == "__main__":
    main()
