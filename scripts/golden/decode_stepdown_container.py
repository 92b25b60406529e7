#!/usr/bin/env python3
"""Decode every tensor of a GGUF file in stepdown's container (I8 byte matrices described by
stepdown.tensor.<name>.format and .shape keys) with numpy, from the byte layouts documented
in src/stepdown/kernels/stepdown_formats.h, and print JSON: per tensor its format, logical
shape and the sha256 of the decoded float32 values in row-major order. Each value is
computed in float32 with one rounding per operation, in the documented order, so a correct
decoder matches stepdown's dequantize_row bit for bit.

Usage: scripts/golden/decode_stepdown_container.py FILE.gguf
"""
import hashlib
import json
import sys

import gguf
import numpy as np

GROUPS = {
    "int8-g128": (128, 8, False), "int4-g32": (32, 4, False), "int4-g64": (64, 4, False),
    "int4-g128": (128, 4, False), "int4-g32-asym": (32, 4, True), "int4-g64-asym": (64, 4, True),
    "int4-g128-asym": (128, 4, True), "int3-g64": (64, 3, False), "int3-g128": (128, 3, False),
    "int3-g64-asym": (64, 3, True), "int3-g128-asym": (128, 3, True),
}


def e4m3(codes):
    codes = codes.astype(np.int64)
    exponent = (codes >> 3) & 15
    mantissa = (codes & 7).astype(np.float64)
    magnitude = np.where(exponent == 0, mantissa * 2.0 ** -9, (1 + mantissa / 8) * 2.0 ** (exponent - 7))
    magnitude = np.where((codes & 0x7f) == 0x7f, np.nan, magnitude)
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.float32)


def decode_row(fmt, row, cols):
    if fmt == "int8-outlier":
        # f32 scale, f32 value[8], u16 column[8] (0xffff = unused), int8 q[cols]
        scale = row[:4].view(np.float32)[0]
        values = row[4:36].view(np.float32)
        columns = row[36:52].view(np.uint16)
        out = np.float32(scale) * row[52:52 + cols].view(np.int8).astype(np.float32)
        for value, column in zip(values, columns):
            if column != 0xFFFF:
                out[column] = value
        return out
    if fmt == "fp8-a8":
        # f32 activation scale (not part of the weights), then an fp8 row
        scale = row[4:8].view(np.float32)[0]
        return np.float32(scale) * e4m3(row[8:8 + cols])
    if fmt in ("int8", "int8-w8a8", "fp8"):
        scale = row[:4].view(np.float32)[0]
        codes = row[4:4 + cols]
        values = e4m3(codes) if fmt == "fp8" else codes.view(np.int8).astype(np.float32)
        return np.float32(scale) * values
    group, bits, has_min = GROUPS[fmt]
    header = 4 if has_min else 2
    block_bytes = header + group * bits // 8
    out = []
    for b in range(cols // group):
        block = row[b * block_bytes:(b + 1) * block_bytes]
        d = block[:2].view(np.float16).astype(np.float32)[0]
        m = block[2:4].view(np.float16).astype(np.float32)[0] if has_min else None
        payload = block[header:]
        if bits == 8:
            codes = payload.view(np.int8).astype(np.float32)
        elif bits == 4:
            codes = np.concatenate([payload & 15, payload >> 4]).astype(np.int64)
        else:
            e = np.arange(group)
            hi, lo = payload[:group // 8], payload[group // 8:]
            low = (lo[e % (group // 4)] >> (2 * (e // (group // 4)))) & 3
            high = (hi[e // 8] >> (e % 8)) & 1
            codes = (low | (high << 2)).astype(np.int64)
        if has_min:
            out.append(d * codes.astype(np.float32) + m)
        elif bits == 8:
            out.append(d * codes)
        else:
            offset = 8 if bits == 4 else 4
            out.append(d * (codes - offset).astype(np.float32))
    return np.concatenate(out).astype(np.float32)


def main():
    reader = gguf.GGUFReader(sys.argv[1])
    fields = reader.fields
    result = {}
    for tensor in reader.tensors:
        key = f"stepdown.tensor.{tensor.name}.format"
        if key not in fields:
            continue
        field = fields[key]
        fmt = bytes(field.parts[field.data[0]]).decode("utf-8")
        shape_field = fields[f"stepdown.tensor.{tensor.name}.shape"]
        shape = [int(shape_field.parts[i][0]) for i in shape_field.data]
        cols = shape[-1]
        data = np.asarray(tensor.data).view(np.uint8).reshape(-1)
        rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        row_bytes = data.size // rows
        decoded = np.concatenate([decode_row(fmt, data[r * row_bytes:(r + 1) * row_bytes], cols) for r in range(rows)])
        result[tensor.name] = {"format": fmt, "shape": shape,
                               "sha256": hashlib.sha256(decoded.astype("<f4").tobytes()).hexdigest()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
