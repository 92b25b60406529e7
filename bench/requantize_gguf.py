#!/usr/bin/env python3
"""Writes a copy of a GGUF model with its quantized tensors re-encoded in another type,
using gguf-py's numpy quantizers (an implementation independent of stepdown's).

A second encoding of the same weights gives bench/compare_ppl.py a KL-divergence pair
with the same vocabulary while `stepdown quantize` is not available. The new tensors are
dequantize(source) re-quantized, so they carry both rounding errors.

    python3 bench/requantize_gguf.py SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smollm2.q8_0.gguf --type Q8_0
"""
import argparse
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf.quants import dequantize, quantize

FLOAT_TYPES = {GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--type", default="Q8_0", help="target type of the quantized tensors (gguf-py name)")
    args = parser.parse_args()
    target = GGMLQuantizationType[args.type]

    reader = GGUFReader(args.source)
    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(args.output, arch)
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub_type)

    for tensor in reader.tensors:
        # gguf-py shapes are innermost-last numpy shapes; n_elements keeps the true count.
        shape = tuple(int(d) for d in reversed(tensor.shape))
        if tensor.tensor_type in FLOAT_TYPES:
            data = np.asarray(tensor.data)
            writer.add_tensor(tensor.name, data, raw_shape=data.shape, raw_dtype=tensor.tensor_type)
            continue
        values = dequantize(tensor.data, tensor.tensor_type).reshape(shape).astype(np.float32)
        packed = quantize(values, target)
        writer.add_tensor(tensor.name, packed, raw_shape=packed.shape, raw_dtype=target)
        print(f"{tensor.name}: {tensor.tensor_type.name} -> {target.name} {shape}", file=sys.stderr)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
