"""Is a data set in a data root, complete and genuine? And what to tell people when it is not.

A set counts as present when every file torchvision reads is in its folder. Real files must match
their published checksums (a mismatch is an error naming the file, never a silent fallback to
synthetic data); a synthetic set is recognised by its marker and is not checksummed.

Archives beside the files are unpacked when the files are missing, as torchvision itself would do
on its next ``download=True``: the ``.gz`` IDX files of MNIST and Fashion-MNIST, and CIFAR-10's
``cifar-10-python.tar.gz``. Doing it here matters because the sandbox sees the data read-only.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader.data import integrity, synthetic
from grader.data.catalog import DatasetSpec
from grader.errors import GraderError


@dataclass
class Found:
    """What ``inspect`` saw: the origin of a complete set, or the files still missing."""

    origin: Literal["real", "synthetic"] | None
    missing: list[str] = field(default_factory=list)


def inspect(spec: DatasetSpec, root: Path) -> Found:
    folder = root / spec.folder
    if synthetic.read_marker(root, spec) is not None:
        return Found("synthetic", _missing(spec, folder))
    _unpack_archives(spec, root)
    missing = _missing(spec, folder)
    if missing:
        return Found(None, missing)
    for known in spec.required + spec.archives:
        if (folder / known.name).is_file():
            integrity.verify(folder / known.name, known, replace_hint(spec, root))
    return Found("real")


def _missing(spec: DatasetSpec, folder: Path) -> list[str]:
    return [known.name for known in spec.required if not (folder / known.name).is_file()]


def _unpack_archives(spec: DatasetSpec, root: Path) -> None:
    folder = root / spec.folder
    if spec.bundle is not None and _missing(spec, folder) and (root / spec.bundle.name).is_file():
        integrity.verify(root / spec.bundle.name, spec.bundle, replace_hint(spec, root))
        _writable_or_explain(root, root / spec.bundle.name)
        # The archive's checksum was just verified, so its members are the published ones; the
        # "data" filter (where this Python has it) is a second guard against paths outside root.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        with tarfile.open(root / spec.bundle.name, "r:gz") as tar:
            tar.extractall(root, **safe)
    for archive in spec.archives:
        unpacked = folder / archive.name.removesuffix(".gz")
        if (folder / archive.name).is_file() and not unpacked.is_file():
            integrity.verify(folder / archive.name, archive, replace_hint(spec, root))
            _writable_or_explain(folder, folder / archive.name)
            partial = unpacked.with_name(f".{unpacked.name}.{os.getpid()}.partial")  # never read half-written
            with gzip.open(folder / archive.name, "rb") as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
            partial.replace(unpacked)


def _writable_or_explain(folder: Path, archive: Path) -> None:
    if not os.access(folder, os.W_OK):
        raise GraderError(f"{archive.name} is here but not unpacked, and this folder is read-only", where=str(folder),
                          hint="unpack it there once (e.g. `gunzip -k` or `tar -xzf`), or give a writable --data-root")


def missing_error(spec: DatasetSpec, root: Path, missing: list[str], reason: str | None = None) -> GraderError:
    """The error for a set that is absent: which file, where it goes, and how to get it."""
    folder = root / spec.folder
    more = f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""
    what = f"{spec.title} is not in the data root: {missing[0]} is missing{more}"
    if reason:
        what += f"; downloading failed: {reason}"
    return GraderError(what, where=str(folder / missing[0]), hint=get_hint(spec, root, offer_download=not reason))


def get_hint(spec: DatasetSpec, root: Path, offer_download: bool = True) -> str:
    """Where ``spec``'s files go and how to obtain them, for people working offline."""
    folder, count = root / spec.folder, len(spec.required)
    if spec.is_idx:
        place = f"put the {count} files (or their .gz archives, which the grader unpacks) in {folder}"
    elif spec.bundle is not None:
        place = f"put the {count} files in {folder}, or {spec.bundle.name} in {root} (the grader unpacks it)"
    else:
        place = f"put the {count} files in {folder}"
    return f"{place}. {_how_to_get(spec, root, offer_download)}"


def replace_hint(spec: DatasetSpec, root: Path) -> str:
    return f"delete it and put a fresh copy there. {_how_to_get(spec, root, offer_download=True)}"


def _how_to_get(spec: DatasetSpec, root: Path, offer_download: bool) -> str:
    fetch_elsewhere = (f"`python -c \"import torchvision; torchvision.datasets.{spec.torchvision_class}"
                       f"('DIR', download=True)\"`")
    download = "; or let the grader download them (--download)" if offer_download else ""
    return (f"Get them from {' or '.join(spec.sources)}, or run {fetch_elsewhere} on a machine with network "
            f"and copy DIR/{spec.folder.split('/')[0]} into {root}{download}; "
            f"or point --data-root (or GRADER_DATA) at a root that has them")
