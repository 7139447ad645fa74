"""Pickles in the shape Python 2 wrote them: the format of the original CIFAR-10 batches.

The CIFAR-10 batches are Python 2 pickles whose strings are Python 2 ``str``. Python 3 decodes
those with the ``encoding`` the reader asks for, which is why both conventions in the wild work on
the real files: torchvision loads with ``encoding="latin1"`` and indexes ``entry["data"]``; the
data set's own web page loads with ``encoding="bytes"`` and indexes ``entry[b"data"]``. A pickle
written by Python 3 would satisfy only one of them (its ``bytes`` stay ``bytes``, its ``str`` stay
``str``), so synthetic batches are written here opcode by opcode with Python 2 strings.

Supported values: ``None``, ``bool``, 32-bit ``int``, ``bytes`` (written as Python 2 ``str``),
``list``, ``tuple``, ``dict`` and C-contiguous ``numpy.uint8`` arrays (written the way numpy 1.x
on Python 2 did, under the ``numpy.core.multiarray`` name that every numpy still loads).
"""

from __future__ import annotations

import io
import pickle
import struct
from typing import Any

import numpy as np

PROTOCOL = 2


def dumps(value: Any) -> bytes:
    out = io.BytesIO()
    out.write(pickle.PROTO + bytes([PROTOCOL]))
    _write(out, value)
    out.write(pickle.STOP)
    return out.getvalue()


def _write(out: io.BytesIO, value: Any) -> None:
    if value is None:
        out.write(pickle.NONE)
    elif isinstance(value, bool):
        out.write(pickle.NEWTRUE if value else pickle.NEWFALSE)
    elif isinstance(value, int):
        _write_int(out, value)
    elif isinstance(value, bytes):
        _write_py2_str(out, value)
    elif isinstance(value, list):
        out.write(pickle.EMPTY_LIST)
        if value:
            out.write(pickle.MARK)
            for item in value:
                _write(out, item)
            out.write(pickle.APPENDS)
    elif isinstance(value, tuple):
        out.write(pickle.MARK)
        for item in value:
            _write(out, item)
        out.write(pickle.TUPLE)
    elif isinstance(value, dict):
        out.write(pickle.EMPTY_DICT)
        if value:
            out.write(pickle.MARK)
            for key, item in value.items():
                _write(out, key)
                _write(out, item)
            out.write(pickle.SETITEMS)
    elif isinstance(value, np.ndarray):
        _write_uint8_array(out, value)
    else:
        raise TypeError(f"py2_pickle cannot write {type(value).__name__}")


def _write_int(out: io.BytesIO, value: int) -> None:
    if 0 <= value < 1 << 8:
        out.write(pickle.BININT1 + bytes([value]))
    elif 0 <= value < 1 << 16:
        out.write(pickle.BININT2 + struct.pack("<H", value))
    elif -(1 << 31) <= value < 1 << 31:
        out.write(pickle.BININT + struct.pack("<i", value))
    else:
        raise ValueError(f"py2_pickle writes 32-bit integers only, got {value}")


def _write_py2_str(out: io.BytesIO, value: bytes) -> None:
    if len(value) < 256:
        out.write(pickle.SHORT_BINSTRING + bytes([len(value)]) + value)
    else:
        out.write(pickle.BINSTRING + struct.pack("<I", len(value)) + value)


def _write_global(out: io.BytesIO, module: str, name: str) -> None:
    out.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))


def _write_uint8_array(out: io.BytesIO, array: np.ndarray) -> None:
    if array.dtype != np.uint8 or not array.flags.c_contiguous:
        raise TypeError("py2_pickle writes C-contiguous uint8 arrays only")
    # numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), 'b') makes an empty array ...
    _write_global(out, "numpy.core.multiarray", "_reconstruct")
    _write_global(out, "numpy", "ndarray")
    _write(out, (0,))
    _write(out, b"b")
    out.write(pickle.TUPLE3 + pickle.REDUCE)
    # ... whose __setstate__ then receives (version, shape, dtype, fortran order, raw bytes)
    out.write(pickle.MARK)
    _write(out, 1)
    _write(out, tuple(int(n) for n in array.shape))
    _write_uint8_dtype(out)
    _write(out, False)
    _write(out, array.tobytes())
    out.write(pickle.TUPLE + pickle.BUILD)


def _write_uint8_dtype(out: io.BytesIO) -> None:
    _write_global(out, "numpy", "dtype")
    _write(out, (b"u1", 0, 1))
    out.write(pickle.REDUCE)
    # dtype state: version 3, byte order '|' (not applicable), no sub-array, names or fields,
    # element size and alignment -1 (derived), no flags
    _write(out, (3, b"|", None, None, None, -1, -1, 0))
    out.write(pickle.BUILD)
