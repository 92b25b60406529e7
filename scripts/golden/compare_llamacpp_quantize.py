#!/usr/bin/env python3
"""Compare stepdown's quantized tensors with llama.cpp's own quantizer on the same f32 file.

Quantizes F32.gguf (written by `stepdown quantize --scheme f32`) with
llama_cpp.llama_model_quantize (pure: every 2-D tensor the requested type, no importance
matrix) and prints, per tensor, whether the blocks equal those in STEPDOWN.gguf, or the RMSE
of both against the f32 values when they differ (K-quants use different searches).

Usage: compare_llamacpp_quantize.py F32.gguf STEPDOWN.gguf TYPE   (TYPE: q8_0, q4_0, q4_k, ...)
"""
import ctypes
import sys
import tempfile
from pathlib import Path

import numpy as np
import gguf
import llama_cpp

FTYPES = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
          "q4_1": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1, "q5_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_0,
          "q5_1": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_1, "q4_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S,
          "q5_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_S, "q6_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K}


def main():
    f32_path, ours_path, scheme = sys.argv[1], sys.argv[2], sys.argv[3]
    with tempfile.TemporaryDirectory() as tmp:
        theirs_path = str(Path(tmp) / "llama.gguf")
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = FTYPES[scheme]
        params.pure = True
        params.nthread = 2
        assert llama_cpp.llama_model_quantize(f32_path.encode(), theirs_path.encode(), ctypes.byref(params)) == 0
        source = {t.name: t for t in gguf.GGUFReader(f32_path).tensors}
        ours = {t.name: t for t in gguf.GGUFReader(ours_path).tensors}
        equal = differ = 0
        for t in gguf.GGUFReader(theirs_path).tensors:
            mine = ours[t.name]
            if mine.tensor_type != t.tensor_type:
                print(f"{t.name}: llama.cpp {t.tensor_type.name}, stepdown {mine.tensor_type.name}")
                continue
            if np.array_equal(np.asarray(mine.data).view(np.uint8), np.asarray(t.data).view(np.uint8)):
                equal += 1
                continue
            differ += 1
            x = np.asarray(source[t.name].data, dtype=np.float64).reshape(-1)
            rmse = [float(np.sqrt(np.mean((gguf.quants.dequantize(d.data, d.tensor_type).reshape(-1) - x) ** 2)))
                    for d in (mine, t)]
            print(f"{t.name} {t.tensor_type.name}: blocks differ; RMSE stepdown {rmse[0]:.4g}, llama.cpp {rmse[1]:.4g}"
                  f" (ratio {rmse[0] / rmse[1]:.3f})")
        print(f"{scheme}: {equal} tensors byte-identical to llama.cpp's quantizer, {differ} differ")


if __name__ == "__main__":
    main()
