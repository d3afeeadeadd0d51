"""The shard file format: plain safetensors, written and read without copies.

A shard is one safetensors file holding every hook's activations and the
per-token metadata columns of a run of contexts. It is written here rather than
with ``safetensors.torch.save_file`` for three reasons that matter to a capture:
the tensors stream to disk straight from their buffers (``save_file`` first
copies every tensor into a ``bytes`` object, doubling a shard's memory), the
SHA-256 recorded in the manifest is computed while writing (no second read),
and the bytes are a pure function of the tensors (sorted header, no
timestamps), so a resumed capture reproduces an uninterrupted one byte for byte.

Files stay readable by ``safetensors.safe_open``; :func:`open_shard` maps a
file with ``numpy.memmap`` so a reader touches only the pages it gathers.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

__all__ = ["DTYPE_CODES", "write_shard_file", "read_header", "open_shard", "sha256_file", "dtype_name"]

#: torch dtype -> safetensors dtype code.
DTYPE_CODES: dict[torch.dtype, str] = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}
# numpy has no bfloat16: its bytes are read as int16 and reinterpreted by torch.
_NUMPY_OF = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.int16, "I64": np.int64,
    "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}  # fmt: skip
_CHUNK = 8 << 20  # hash and write in 8 MiB pieces so no large temporary is made


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``."""
    return str(dtype).removeprefix("torch.")


def _raw_bytes(t: torch.Tensor) -> memoryview:
    """The bytes of a contiguous CPU tensor, without a copy."""
    flat = t.reshape(-1)  # [numel] (a view: t is contiguous)
    return memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")


def write_shard_file(f: BinaryIO, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> tuple[str, int]:
    """Write ``tensors`` as safetensors to the open binary file ``f``; return (sha256, bytes).

    Tensors are laid out by falling element size, then name, so every tensor
    starts aligned to its element size; the header is sorted JSON padded with
    spaces to a multiple of 8 bytes, as safetensors requires.
    """
    items = []
    for name, t in tensors.items():
        if t.dtype not in DTYPE_CODES:
            raise TypeError(f"tensor {name!r} has dtype {t.dtype}, which safetensors cannot store")
        items.append((name, t.detach().to("cpu").contiguous()))
    items.sort(key=lambda kv: (-kv[1].element_size(), kv[0]))
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for name, t in items:
        n = t.numel() * t.element_size()
        header[name] = {"dtype": DTYPE_CODES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    digest = hashlib.sha256()
    total = 0
    for piece in [struct.pack("<Q", len(head)), head]:
        f.write(piece)
        digest.update(piece)
        total += len(piece)
    for _, t in items:
        raw = _raw_bytes(t)
        for start in range(0, len(raw), _CHUNK):
            chunk = raw[start : start + _CHUNK]
            f.write(chunk)
            digest.update(chunk)
        total += len(raw)
    return digest.hexdigest(), total


def read_header(path: Path | str) -> tuple[dict[str, Any], int]:
    """Return (header without ``__metadata__`` and with it under ``"__metadata__"``, data start)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path} is shorter than a safetensors header")
        (n,) = struct.unpack("<Q", raw)
        if n > 100 << 20:
            raise ValueError(f"{path} announces a {n}-byte header; the file is not safetensors")
        head = f.read(n)
    if len(head) != n:
        raise ValueError(f"{path} is truncated inside its header")
    return json.loads(head), 8 + n


def open_shard(path: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Memory-map a shard; return (name -> tensor views, metadata).

    The tensors share the file's pages (a private, copy-on-write map that is
    never written): nothing is read until a value is used, and the map is
    released, its pages leaving the process's resident set, when the last view
    is dropped.
    """
    header, start = read_header(path)
    meta = header.pop("__metadata__", {})
    size = os.path.getsize(path)
    end = max((v["data_offsets"][1] for v in header.values()), default=0)
    if start + end != size:
        raise ValueError(f"{path} should be {start + end} bytes from its header but is {size}")
    if end == 0:
        return {k: torch.empty(v["shape"], dtype=_CODE_DTYPES[v["dtype"]]) for k, v in header.items()}, meta
    with open(path, "rb") as f:
        buf = np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY), dtype=np.uint8)
    out = {}
    for name, v in header.items():
        a, b = v["data_offsets"]
        arr = buf[start + a : start + b].view(_NUMPY_OF[v["dtype"]]).reshape(v["shape"])
        t = torch.from_numpy(arr)
        out[name] = t.view(torch.bfloat16) if v["dtype"] == "BF16" else t
    return out, meta


def sha256_file(path: Path | str) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
