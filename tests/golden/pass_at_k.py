#!/usr/bin/env python3
"""Writes tests/golden/pass_at_k.json: exact pass@k values from rational arithmetic.

The reference is 1 - C(n-c, k) / C(n, k) computed with math.comb and fractions.Fraction,
so no floating-point step sits between the definition and the stored value.
"""
import json
import math
import pathlib
from fractions import Fraction

CASES = [
    (1, 1, 1), (1, 0, 1), (2, 1, 1), (2, 1, 2), (5, 2, 1), (5, 2, 3), (5, 2, 4),
    (10, 3, 1), (10, 3, 5), (10, 0, 5), (10, 10, 10), (20, 1, 10), (20, 19, 1),
    (100, 37, 1), (100, 37, 10), (100, 37, 63), (100, 37, 64), (200, 1, 1), (200, 1, 100),
    (1000, 5, 100), (1000, 500, 1), (1000, 500, 10), (1000, 999, 1000), (5000, 3, 2500),
]


def exact(n, c, k):
    if n - c < k:
        return Fraction(1)
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def main():
    rows = [{"n": n, "c": c, "k": k, "pass_at_k": float(exact(n, c, k))} for n, c, k in CASES]
    out = pathlib.Path(__file__).resolve().parent / "pass_at_k.json"
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {len(rows)} cases to {out}")


if __name__ == "__main__":
    main()
