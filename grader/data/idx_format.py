"""The IDX format of MNIST and Fashion-MNIST (uint8 only), plain or gzip-compressed.

A file is two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions, one
big-endian 32-bit size per dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from grader.errors import GraderError

UBYTE = 0x08


def encode(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write(path: Path, array: np.ndarray) -> None:
    """Write ``path`` and its ``.gz`` twin (torchvision's raw folder keeps both)."""
    data = encode(array)
    path.write_bytes(data)
    write_gz(path.with_name(path.name + ".gz"), data)


def write_gz(path: Path, data: bytes) -> None:
    # No file name and a zero time stamp in the gzip header: the same data gives the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(data)


def read(path: Path) -> np.ndarray:
    """The array stored in an IDX file (``.gz`` decompressed by its suffix)."""
    # a bytearray, so the array returned is writable (torch.from_numpy warns about read-only ones)
    data = bytearray(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes())
    zero, zero2, dtype, ndim = struct.unpack_from(">BBBB", data)
    if zero or zero2 or dtype != UBYTE or not 1 <= ndim <= 4:
        raise GraderError("not an unsigned-byte IDX file", where=str(path),
                          hint="expected the MNIST / Fashion-MNIST distribution files")
    shape = struct.unpack_from(f">{ndim}I", data, 4)
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise GraderError(f"IDX file holds {body.size} bytes of data, its header says {shape}", where=str(path),
                          hint="the file is truncated; replace it")
    return body.reshape(shape)
