# safetensors_np.py - the safetensors format read and written with numpy only
# (Debian has no python3-safetensors); used by the PyTorch parity tests.
import json
import os
import struct

import numpy as np

DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BOOL": np.bool_,
}
NAMES = {np.dtype(v).str: k for k, v in DTYPES.items()}


def load(path):
    """Returns (tensors: {name: numpy array}, metadata: {str: str})."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for safetensors")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"{path}: header length {n} runs past the end")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = memoryview(blob)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        dt = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * dt.itemsize or end > len(data):
            raise ValueError(f"{path}: tensor {name}: bad data_offsets")
        arr = np.frombuffer(data[begin:end], dtype=dt, count=count).reshape(shape)
        tensors[name] = arr.astype(dt.newbyteorder("="), copy=True)
    return tensors, meta


def save(path, tensors, metadata=None):
    """tensors: {name: numpy array}; written in the given order."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    at = 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        raw = le.tobytes()
        header[name] = {"dtype": NAMES[np.dtype(arr.dtype).newbyteorder("<").str],
                        "shape": list(arr.shape), "data_offsets": [at, at + len(raw)]}
        chunks.append(raw)
        at += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def load_torch_state_dict(path):
    """The tensors of path as a PyTorch state_dict (float32 / int64 tensors)."""
    import torch
    tensors, meta = load(path)
    return {k: torch.from_numpy(v) for k, v in tensors.items()}, meta
