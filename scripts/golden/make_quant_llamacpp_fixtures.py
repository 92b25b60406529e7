#!/usr/bin/env python3
"""Quantize SmolLM2 with stepdown at Q8_0 and Q4_0 and record llama.cpp's greedy decoding
of each output, for tests/quant/smollm2_llamacpp_test.cpp.

The source is SmolLM2-135M-Instruct.Q4_1.gguf; `stepdown quantize` dequantizes it to f32
and re-quantizes it. Each output is then run through scripts/golden/make_llamacpp_fixtures.py
(llama-cpp-python, five ChatML prompts, 64 greedy steps with the top-2 logit margin per
step), which also records the output file's sha256, so the C++ test can check that its
in-process quantization produced the very file llama.cpp ran.

Output: tests/golden/quant/smollm2_<scheme>/llamacpp_greedy.json

Usage: scripts/golden/make_quant_llamacpp_fixtures.py [STEPDOWN_CLI] [SOURCE.gguf]
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMES = ["q8_0", "q4_0"]


def main():
    cli = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build/tools/stepdown/stepdown")
    source = Path(sys.argv[2] if len(sys.argv) > 2 else
                  os.path.expanduser("~/.cache/stepdown/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    with tempfile.TemporaryDirectory() as tmp:
        for scheme in SCHEMES:
            out = Path(tmp) / f"SmolLM2-135M-Instruct.{scheme}.gguf"
            subprocess.run([str(cli), "quantize", str(source), "--scheme", scheme, "-o", str(out)], check=True)
            subprocess.run([sys.executable, str(ROOT / "scripts/golden/make_llamacpp_fixtures.py"), str(out),
                            str(ROOT / "tests/golden/quant" / f"smollm2_{scheme}")], check=True)


if __name__ == "__main__":
    main()
