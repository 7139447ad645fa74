"""Offline without the data: the error says which file, where it goes and how to get it."""

from __future__ import annotations

import shutil
import urllib.error

import pytest

from grader import data
from grader.data import catalog, fetch
from grader.errors import GraderError


@pytest.mark.parametrize("name, first_file, folder", [
    ("mnist", "train-images-idx3-ubyte", "MNIST/raw"),
    ("fashion-mnist", "train-images-idx3-ubyte", "FashionMNIST/raw"),
    ("cifar10", "data_batch_1", "cifar-10-batches-py"),
])
def test_missing_set_names_the_file_the_place_and_the_source(own_cache, tmp_path, name, first_file, folder):
    root = tmp_path / "empty"
    with pytest.raises(GraderError) as err:
        data.resolve(name, root, allow_synthetic=False)
    spec = catalog.CATALOG[name]
    assert err.value.where == str(root / folder / first_file)
    assert f"{first_file} is missing" in err.value.what
    assert str(root / folder) in err.value.hint
    assert spec.sources[0] in err.value.hint
    assert f"torchvision.datasets.{spec.torchvision_class}(" in err.value.hint and "--download" in err.value.hint


def test_partly_present_set_lists_only_what_is_missing(official_mnist):
    (official_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    (official_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(GraderError, match=r"(?m)t10k-labels-idx1-ubyte is missing$"):
        data.resolve("mnist", official_mnist, allow_synthetic=False)


def test_download_is_not_tried_unless_allowed(own_cache, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "_torchvision_download", lambda spec, root: pytest.fail("downloaded"))
    assert data.resolve("mnist", tmp_path / "empty").origin == "synthetic"


def test_failed_download_says_why_and_what_is_missing(own_cache, tmp_path, monkeypatch):
    def offline(spec, root):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(fetch, "_torchvision_download", offline)
    with pytest.raises(GraderError) as err:
        data.resolve("fashion-mnist", tmp_path / "empty", download=True)  # even with synthetic allowed
    assert "downloading failed" in err.value.what and "name resolution" in err.value.what
    assert err.value.where.endswith("FashionMNIST/raw/train-images-idx3-ubyte")


def test_successful_download_resolves_as_real(official_mnist, tmp_path, monkeypatch):
    def fake_mirror(spec, root):
        shutil.copytree(official_mnist / "MNIST", root / "MNIST")

    monkeypatch.setattr(fetch, "_torchvision_download", fake_mirror)
    root = tmp_path / "downloaded"
    assert data.resolve("mnist", root, allow_synthetic=False, download=True) == \
        data.DataRoot(root.resolve(), "real", "mnist")
