"""Data-layer fixtures: the session's synthetic sets, and "official" sets made for a test.

No real data set is needed: ``official_mnist`` copies the synthetic MNIST files into a fresh data
root without their marker and tells the catalog that their checksums are the published ones, so
the code paths for real data (verification, unpacking, copies for the course's reader) run on them.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from grader import data
from grader.data import catalog, synthetic
from grader.data.integrity import hash_file


@pytest.fixture(scope="session")
def synthetic_root() -> Path:
    """One data root holding all three synthetic sets (written once per test session)."""
    root = data.synthetic_root()
    for name in catalog.CATALOG:
        synthetic.ensure(name, root)
    return root


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A grader cache of this test alone (checksum stamps, copies), with no GRADER_DATA around."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRADER_CACHE", str(cache))
    monkeypatch.delenv("GRADER_DATA", raising=False)
    return cache


@pytest.fixture
def pretend_official(monkeypatch: pytest.MonkeyPatch):
    """A function making the catalog take the files in a folder (and a bundle) for the published ones."""
    def pretend(spec: catalog.DatasetSpec, folder: Path, bundle: Path | None = None) -> catalog.DatasetSpec:
        def known(file: catalog.KnownFile, path: Path) -> catalog.KnownFile:
            return dataclasses.replace(file, md5=hash_file(path), size=path.stat().st_size if file.size else None)

        changed = dataclasses.replace(
            spec,
            required=tuple(known(f, folder / f.name) for f in spec.required),
            archives=tuple(known(f, folder / f.name) for f in spec.archives),
            bundle=known(spec.bundle, bundle) if bundle is not None and spec.bundle else spec.bundle)
        monkeypatch.setitem(catalog.CATALOG, spec.name, changed)
        return changed

    return pretend


@pytest.fixture
def official_mnist(synthetic_root: Path, own_cache: Path, tmp_path: Path, pretend_official) -> Path:
    """A data root whose MNIST the catalog accepts as real (see the module docstring)."""
    root = tmp_path / "root"
    shutil.copytree(synthetic_root / "MNIST" / "raw", root / "MNIST" / "raw")
    pretend_official(catalog.MNIST, root / "MNIST" / "raw")
    return root
