#!/usr/bin/env python3
"""Write the GGUF reader's golden fixtures with gguf-py (GGUFReader) as the reference.

For each fetched GGUF model the fixture records every metadata key with its type and
value. Long strings and arrays are stored as their length, first few values and a CRC-32
of the encoded values. Every tensor gets its name, ggml type id, shape (outermost first),
absolute file offset, byte size and the CRC-32 of its bytes. tests/io/gguf_golden_test.cpp
compares stepdown's reader against these files.

Usage: scripts/golden/io_gguf_fixture.py [MODEL_CACHE_DIR]
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
from gguf import GGUFReader, GGUFValueType

MODELS = {
    "SmolLM2-135M-Instruct.Q4_1.gguf": "gguf_smollm2_135m_q4_1.json",
    "gemma-3-270m-q4_k_m.gguf": "gguf_gemma3_270m_q4_k_m.json",
}
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "io", "golden")
LONG_STRING = 256  # longer strings are stored as length + CRC-32
PREFIX = 5  # array values stored verbatim

SCALAR_FORMATS = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h", GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<B", GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}


def type_name(t):
    return t.name.lower()


def scalar(field_part, t):
    value = field_part[0].item()
    if t == GGUFValueType.BOOL:
        return bool(value)
    if t in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64):
        return float(value)
    return int(value)


def encode(value, t):
    """Bytes a value takes in GGUF (strings with their uint64 length), for the CRC."""
    if t == GGUFValueType.STRING:
        data = value.encode("utf-8", errors="surrogateescape") if isinstance(value, str) else value
        return struct.pack("<Q", len(data)) + data
    return struct.pack(SCALAR_FORMATS[t], int(value) if t == GGUFValueType.BOOL else value)


def describe_field(field):
    t = field.types[0]
    entry = {"key": field.name, "type": type_name(t)}
    if t == GGUFValueType.STRING:
        data = bytes(field.parts[field.data[0]])
        if len(data) <= LONG_STRING:
            entry["value"] = data.decode("utf-8")
        else:
            entry["length"] = len(data)
            entry["crc32"] = zlib.crc32(struct.pack("<Q", len(data)) + data)
        return entry
    if t != GGUFValueType.ARRAY:
        entry["value"] = scalar(field.parts[field.data[0]], t)
        return entry
    if len(field.types) != 2:
        raise SystemExit(f"{field.name}: nested arrays are not covered by this fixture")
    element = field.types[1]
    entry["element_type"] = type_name(element)
    if element == GGUFValueType.STRING:
        values = [bytes(field.parts[i]) for i in field.data]
        entry["prefix"] = [v.decode("utf-8", errors="replace") for v in values[:PREFIX]]
    else:
        values = [scalar(field.parts[i], element) for i in field.data]
        entry["prefix"] = values[:PREFIX]
    entry["length"] = len(values)
    crc = 0
    for v in values:
        crc = zlib.crc32(encode(v, element), crc)
    entry["crc32"] = crc
    return entry


def describe(path):
    reader = GGUFReader(path, "r")
    alignment = reader.alignment
    metadata = [describe_field(f) for name, f in reader.fields.items() if not name.startswith("GGUF.")]
    tensors = []
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    for t in reader.tensors:
        data = raw[t.data_offset : t.data_offset + t.n_bytes]
        tensors.append({
            "name": t.name,
            "type": int(t.tensor_type),
            "shape": [int(d) for d in reversed(t.shape)],  # gguf-py lists ne innermost first
            "offset": int(t.data_offset),
            "nbytes": int(t.n_bytes),
            "crc32": zlib.crc32(data.tobytes()),
        })
    return {
        "file": os.path.basename(path),
        "version": int(reader.fields["GGUF.version"].parts[-1][0]),
        "alignment": int(alignment),
        "data_offset": int(reader.data_offset),
        "metadata": metadata,
        "tensors": tensors,
    }


def main():
    cache = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/stepdown/models")
    os.makedirs(OUT_DIR, exist_ok=True)
    for model, fixture in MODELS.items():
        path = os.path.join(cache, model)
        if not os.path.exists(path):
            print(f"skipped {model}: not in {cache} (run scripts/fetch-models)", file=sys.stderr)
            continue
        out = os.path.join(OUT_DIR, fixture)
        with open(out + ".tmp", "w") as f:
            json.dump(describe(path), f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(out + ".tmp", out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
