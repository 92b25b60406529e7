#!/usr/bin/env python3
"""Print a GGUF file as JSON through gguf-py's GGUFReader, for tests that check files
stepdown writes against an independent reader: version, alignment, data offset, every
metadata key with its type names and value, and every tensor's name, type, shape
(innermost first, as stored), offset and the sha256 of its bytes.

Usage: scripts/golden/dump_gguf.py FILE.gguf
"""
import hashlib
import json
import sys

import gguf
from gguf import GGUFValueType as VT


def field_value(field):
    types = [t.name for t in field.types]
    if field.types[0] == VT.ARRAY:
        if len(field.types) == 1:
            return types, []  # gguf-py records no element type for an empty array
        if len(field.types) > 2 and field.types[1] == VT.ARRAY:
            return types, None  # nested arrays: types only
        if field.types[1] == VT.STRING:
            return types, [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return types, [field.parts[i].tolist()[0] for i in field.data]
    if field.types[0] == VT.STRING:
        return types, bytes(field.parts[field.data[0]]).decode("utf-8")
    return types, field.parts[field.data[0]].tolist()[0]


def main():
    reader = gguf.GGUFReader(sys.argv[1])
    metadata = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        types, value = field_value(field)
        metadata[name] = {"types": types, "value": value}
    tensors = [{
        "name": t.name,
        "type": t.tensor_type.name,
        "shape": [int(d) for d in t.shape],
        "offset": int(t.data_offset),
        "sha256": hashlib.sha256(t.data.tobytes()).hexdigest(),
    } for t in reader.tensors]
    print(json.dumps({"alignment": int(reader.alignment), "data_offset": int(reader.data_offset),
                      "metadata": metadata, "tensors": tensors}))


if __name__ == "__main__":
    main()
