"""Data sets the student code loads: found in a local cache, or generated as synthetic stand-ins.

The cache uses torchvision's on-disk layout, so student code calling
``torchvision.datasets.MNIST(root, download=True)`` finds the files and never reaches for the
network::

    <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte     (+ .gz twins)
    <root>/FashionMNIST/raw/...                                         (same names)
    <root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}

The root is ``--data-root``, else ``GRADER_DATA``, else ``<grader cache>/data``. Real files are
checked against their published MD5 (remembered per file version, see ``integrity``). Without
the data the harness downloads it only when told to; otherwise it writes learnable synthetic data
in the same format (see ``synthetic``) and every result says ``data: synthetic``; or, when
synthetic data is not allowed, it fails saying which file is missing, where it goes and how to
get it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grader.data import catalog, fetch, local_cache, synthetic
from grader.data.files_folder import files_folder
from grader.errors import GraderError
from grader.paths import cache_dir

Layout = Literal["torchvision", "files"]


@dataclass(frozen=True)
class DataRoot:
    """A resolved data set: the root in torchvision's layout, and whether the data is real.

    ``path`` is what student code passes to torchvision as ``root`` (``None`` for ``dataset: none``).
    """

    path: Path | None
    origin: Literal["real", "synthetic", "none"]
    dataset: str = "none"

    def mount_source(self, layout: Layout = "torchvision") -> Path | None:
        """The folder to expose at the rubric's ``data.dirname``.

        ``torchvision``: the root itself (student code calls ``MNIST(dirname)``). ``files``: the
        folder of the data set's own files (``FashionMNIST/raw`` with the ``.gz`` IDX files that
        the custom-ops course's reader opens, or ``cifar-10-batches-py``).
        """
        if self.path is None or layout == "torchvision":
            return self.path
        return files_folder(catalog.get(self.dataset), self.path)


def default_root() -> Path:
    """The data root when neither ``--data-root`` nor ``GRADER_DATA`` names one."""
    return cache_dir() / "data"


def synthetic_root() -> Path:
    return cache_dir() / "data-synthetic"


def resolve(dataset: str, data_root: Path | None, allow_synthetic: bool = True, *,
            download: bool = False) -> DataRoot:
    """Find ``dataset`` in the data root, download it if allowed, else fall back to synthetic data.

    Raises ``GraderError`` for a corrupted real file (always), a failed download (when
    ``download``), or a missing set when ``allow_synthetic`` is false.
    """
    if dataset == "none":
        return DataRoot(None, "none")
    spec = catalog.get(dataset)
    root = _chosen_root(data_root)
    found = local_cache.inspect(spec, root)
    if found.origin == "synthetic":
        return _user_synthetic(spec, root, found, allow_synthetic)
    if found.origin == "real":
        return DataRoot(root.resolve(), "real", dataset)
    if download:
        try:
            fetch.download(spec, root)
        except fetch.DownloadFailed as exc:
            raise local_cache.missing_error(spec, root, found.missing, reason=str(exc)) from None
        found = local_cache.inspect(spec, root)
        if found.origin != "real":
            raise local_cache.missing_error(spec, root, found.missing, reason="files still missing afterwards")
        return DataRoot(root.resolve(), "real", dataset)
    if not allow_synthetic:
        raise local_cache.missing_error(spec, root, found.missing)
    target = synthetic.ensure(dataset, synthetic_root())
    return DataRoot(target.resolve(), "synthetic", dataset)


def _chosen_root(data_root: Path | None) -> Path:
    if data_root is not None:
        return Path(data_root).expanduser()
    if os.environ.get("GRADER_DATA"):
        return Path(os.environ["GRADER_DATA"]).expanduser()
    return default_root()


def _user_synthetic(spec: catalog.DatasetSpec, root: Path, found: local_cache.Found,
                    allow_synthetic: bool) -> DataRoot:
    """A synthetic set someone placed in the data root: accepted as synthetic, never as real."""
    marker = root / spec.synthetic_folder / synthetic.MARKER
    if found.missing:
        raise GraderError(f"the synthetic {spec.title} here is incomplete: {', '.join(found.missing)} missing",
                          where=str(root / spec.folder), hint=f"delete {marker.parent} and grade again")
    if not allow_synthetic:
        raise GraderError(f"the {spec.title} in the data root is synthetic (marked by {marker.name})",
                          where=str(marker), hint="put the real data set there, or drop --no-synthetic")
    return DataRoot(root.resolve(), "synthetic", spec.name)
