"""The folder holding a data set's files themselves, for course code that opens them directly.

torchvision takes the data root and finds ``MNIST/raw`` below it; a course's own reader takes the
folder of the files. The custom-ops course's ``mnist_reader.load_mnist(path, kind)`` opens
``{path}/{kind}-images-idx3-ubyte.gz`` and ``{path}/{kind}-labels-idx1-ubyte.gz``, so for MNIST and
Fashion-MNIST this folder must hold the four ``.gz`` files:

- torchvision's raw folder (``<root>/FashionMNIST/raw``) when they are there, which is the case
  after torchvision's own download and for the harness's synthetic sets;
- otherwise a folder in the grader's cache (``<cache>/data-files/FashionMNIST``) with ``.gz``
  copies of the verified files. Verified files are the published ones, so the copies never go stale.

For CIFAR-10 it is ``<root>/cifar-10-batches-py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from grader.data import idx_format
from grader.data.catalog import DatasetSpec
from grader.paths import cache_dir

STAMP = "COPIED-FROM"


def files_folder(spec: DatasetSpec, root: Path) -> Path:
    """Where ``spec``'s files lie under the (already verified) data root ``root``."""
    folder = root / spec.folder
    if not spec.is_idx or all((folder / archive.name).is_file() for archive in spec.archives):
        return folder
    return _compressed_copies(spec, folder)


def _compressed_copies(spec: DatasetSpec, source: Path) -> Path:
    target = cache_dir() / "data-files" / spec.folder.split("/")[0]
    origin = {known.name: known.md5 for known in spec.required}
    if _stamp(target) == origin and all((target / a.name).is_file() for a in spec.archives):
        return target
    staging = target.with_name(f".{target.name}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for known in spec.required:
            idx_format.write_gz(staging / f"{known.name}.gz", (source / known.name).read_bytes())
        (staging / STAMP).write_text(json.dumps(origin, indent=1) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except OSError:
        if _stamp(target) != origin:  # not merely a concurrent grader that finished first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _stamp(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
