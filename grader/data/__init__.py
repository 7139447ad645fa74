"""Data sets the student code loads: found in a local cache, or generated as synthetic stand-ins.

The cache uses torchvision's on-disk layout (``<root>/MNIST/raw/train-images-idx3-ubyte``...), so
student code calling ``torchvision.datasets.MNIST(root, download=True)`` finds the files and
never reaches for the network. Without real data the harness writes learnable synthetic data in
the same format and every result says ``data: synthetic``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.errors import GraderError
from grader.paths import cache_dir

MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
SYNTHETIC_MARKER = "SYNTHETIC"


@dataclass(frozen=True)
class DataRoot:
    path: Path | None
    origin: Literal["real", "synthetic", "none"]


def resolve(dataset: str, data_root: Path | None, allow_synthetic: bool = True) -> DataRoot:
    """Find ``dataset`` under ``data_root`` (or ``GRADER_DATA``); else make synthetic data."""
    if dataset == "none":
        return DataRoot(None, "none")
    root = data_root or (Path(os.environ["GRADER_DATA"]) if os.environ.get("GRADER_DATA") else None)
    if root is not None:
        missing = [f for f in MNIST_FILES if not (root / "MNIST" / "raw" / f).is_file()]
        if not missing:
            return DataRoot(root.resolve(), "synthetic" if (root / "MNIST" / SYNTHETIC_MARKER).exists() else "real")
        if not allow_synthetic:
            raise GraderError(f"MNIST is not in the data root: missing {', '.join(missing)}",
                              where=str(root / "MNIST" / "raw"),
                              hint="place the four uncompressed IDX files there (torchvision's layout), "
                                   "or drop --no-synthetic to grade on synthetic data")
    elif not allow_synthetic:
        raise GraderError("no data root given for MNIST", where="--data-root",
                          hint="pass --data-root DIR (holding MNIST/raw/...) or set GRADER_DATA")
    from grader.data import synthetic

    target = cache_dir() / "data-synthetic"
    synthetic.ensure_mnist(target)
    return DataRoot(target, "synthetic")
