"""Read the (Fashion-)MNIST files as they are distributed: gzip-compressed IDX files.

Handed out with the custom-ops assignment; written for this project with the course's interface::

    from utils import mnist_reader
    images, labels = mnist_reader.load_mnist("data/fashion", kind="train")   # or kind="t10k"

An IDX file starts with a big-endian header: two zero bytes, a type code (0x08: unsigned bytes),
the number of dimensions, then each dimension as a 4-byte integer. The data follows.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

UNSIGNED_BYTE = 0x08


def _read_idx(filename: str, dimensions: int) -> np.ndarray:
    """The array stored in one ``.gz`` IDX file, checked to have ``dimensions`` dimensions."""
    with gzip.open(filename, "rb") as handle:
        content = handle.read()
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] != UNSIGNED_BYTE:
        raise ValueError(f"{filename} is not an IDX file of unsigned bytes")
    if content[3] != dimensions:
        raise ValueError(f"{filename} has {content[3]} dimensions, expected {dimensions}")
    header_end = 4 + 4 * dimensions
    shape = tuple(int(size) for size in np.frombuffer(content, dtype=">u4", count=dimensions, offset=4))
    data = np.frombuffer(content, dtype=np.uint8, offset=header_end)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{filename} holds {data.size} values, its header announces {shape}")
    return data.reshape(shape)


def load_mnist(path, kind="train"):
    """Images and labels of one split.

    Args:
        path: the folder holding ``{kind}-images-idx3-ubyte.gz`` and ``{kind}-labels-idx1-ubyte.gz``.
        kind: ``"train"`` for the training split, ``"t10k"`` for the test split.

    Returns:
        ``(images, labels)``: ``uint8`` arrays of shape ``[N, 784]`` (one flattened 28x28 image a
        row) and ``[N]`` (class indices 0-9).
    """
    images = _read_idx(os.path.join(path, f"{kind}-images-idx3-ubyte.gz"), dimensions=3)
    labels = _read_idx(os.path.join(path, f"{kind}-labels-idx1-ubyte.gz"), dimensions=1)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels in {path} ({kind})")
    return images.reshape(len(images), -1), labels
