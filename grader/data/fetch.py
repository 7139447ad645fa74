"""Downloading a data set into a data root, only when the caller allows it.

The download itself is torchvision's, run here in the trusted grader (never in the sandbox):
it knows the mirrors, checks each archive's MD5 and leaves exactly torchvision's layout behind.
Whatever it fetched is then verified again by ``local_cache`` like any other file.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

from grader.data.catalog import DatasetSpec


class DownloadFailed(Exception):
    """The download did not happen (offline, mirror down, bad archive); the message says why."""


def download(spec: DatasetSpec, root: Path) -> None:
    """Fetch ``spec`` into ``root`` in torchvision's layout; raise ``DownloadFailed`` when it cannot."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        _torchvision_download(spec, root)
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        # torchvision reports unreachable mirrors and bad checksums as RuntimeError or URLError
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DownloadFailed(first_line) from exc


def _torchvision_download(spec: DatasetSpec, root: Path) -> None:
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, spec.torchvision_class)
    dataset_class(str(root), train=True, download=True)  # fetches both splits
