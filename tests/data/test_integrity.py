"""Real files must be the published ones; checksums are computed once per file version."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader import data
from grader.data import catalog, integrity
from grader.errors import GraderError


def test_truncated_file_is_rejected_naming_it(official_mnist):
    damaged = official_mnist / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    damaged.write_bytes(damaged.read_bytes()[:-100])
    with pytest.raises(GraderError) as err:
        data.resolve("mnist", official_mnist)
    assert err.value.where == str(damaged)
    assert "t10k-images-idx3-ubyte is corrupted" in err.value.what and "bytes, expected" in err.value.what
    assert err.value.hint.startswith("delete it and put a fresh copy there. Get them from")


def test_changed_bytes_of_the_right_size_are_rejected_by_checksum(official_mnist):
    damaged = official_mnist / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    content = bytearray(damaged.read_bytes())
    content[-1] ^= 0xFF
    damaged.write_bytes(bytes(content))
    with pytest.raises(GraderError, match=r"train-labels-idx1-ubyte is corrupted .*: MD5 [0-9a-f]{32}, expected"):
        data.resolve("mnist", official_mnist, allow_synthetic=True)  # corruption never falls back


def test_a_corrupted_archive_is_rejected_too(official_mnist):
    damaged = official_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    content = bytearray(damaged.read_bytes())
    content[len(content) // 2] ^= 0xFF
    damaged.write_bytes(bytes(content))
    with pytest.raises(GraderError, match="train-images-idx3-ubyte.gz is corrupted"):
        data.resolve("mnist", official_mnist)


def test_checksum_is_remembered_until_the_file_changes(official_mnist, monkeypatch):
    hashed = []
    real_hash = integrity.hash_file
    monkeypatch.setattr(integrity, "hash_file", lambda path: hashed.append(path.name) or real_hash(path))
    data.resolve("mnist", official_mnist)
    assert len(hashed) == 8  # four IDX files and their archives
    hashed.clear()
    data.resolve("mnist", official_mnist)
    assert hashed == []
    labels = official_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    os.utime(labels, ns=(labels.stat().st_atime_ns, labels.stat().st_mtime_ns + 1_000_000_000))
    data.resolve("mnist", official_mnist)
    assert hashed == ["t10k-labels-idx1-ubyte"]


def test_a_damaged_stamp_file_only_costs_a_rehash(official_mnist):
    data.resolve("mnist", official_mnist)
    integrity.stamp_file().write_text("{not json")
    assert data.resolve("mnist", official_mnist).origin == "real"


@pytest.mark.skipif(not os.environ.get("GRADER_DATA"), reason="no real data cache (GRADER_DATA) on this machine")
@pytest.mark.parametrize("name", sorted(catalog.CATALOG))
def test_the_real_cache_of_this_machine_verifies(name):
    root = Path(os.environ["GRADER_DATA"])
    spec = catalog.CATALOG[name]
    if not all((root / spec.folder / known.name).is_file() for known in spec.required):
        pytest.skip(f"no {spec.title} in {root}")
    assert data.resolve(name, root, allow_synthetic=False).origin == "real"
