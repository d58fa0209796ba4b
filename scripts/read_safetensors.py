#!/usr/bin/python3
"""Read a safetensors file with PyTorch alone (no safetensors package).

Usage: read_safetensors.py FILE [NAME ...]

Parses the format by hand (8-byte little-endian header length, JSON
header, raw little-endian tensor bytes), turns every tensor into a
torch.Tensor with torch.frombuffer, and prints one JSON object:

  {"metadata": {...}, "tensors": {name: {"dtype": ..., "shape": [...]}},
   "values": {name: [flat values]}}

with "values" holding the tensors named on the command line. lsfuse's
export tests run it with Debian's python3-torch (/usr/bin/python3) to show
that `lsfuse export --format safetensors` files load in PyTorch.
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64,
          "F16": torch.float16, "BF16": torch.bfloat16, "I32": torch.int32}


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    body = data[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        start, end = e["data_offsets"]
        dt = DTYPES[e["dtype"]]
        if end > start:
            t = torch.frombuffer(bytearray(body[start:end]), dtype=dt)
        else:
            t = torch.zeros(0, dtype=dt)
        tensors[name] = t.reshape(e["shape"])
    return meta, tensors


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    meta, tensors = load(argv[1])
    out = {"metadata": meta,
           "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)}
                       for k, v in sorted(tensors.items())},
           "values": {}}
    for name in argv[2:]:
        if name not in tensors:
            sys.stderr.write("no tensor %r in %s\n" % (name, argv[1]))
            return 1
        out["values"][name] = tensors[name].flatten().tolist()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
