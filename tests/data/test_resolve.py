"""Where a data set is found: the chosen root, real or synthetic origin, and what is exposed where."""

from __future__ import annotations

import gzip
import shutil
import tarfile

import pytest

from grader import data
from grader.data import catalog, synthetic
from grader.errors import GraderError


def test_no_dataset_needs_no_root(own_cache):
    assert data.resolve("none", None) == data.DataRoot(None, "none")


def test_unknown_dataset_names_the_known_ones(own_cache):
    with pytest.raises(GraderError, match="unknown data set 'svhn'") as err:
        data.resolve("svhn", None)
    assert "fashion-mnist" in err.value.hint


@pytest.mark.parametrize("name", sorted(catalog.CATALOG))
def test_without_data_each_set_falls_back_to_synthetic_in_torchvision_layout(own_cache, name):
    resolved = data.resolve(name, None)
    spec = catalog.CATALOG[name]
    assert resolved.origin == "synthetic" and resolved.dataset == name
    assert resolved.path == (own_cache / "data-synthetic").resolve()
    assert all((resolved.path / spec.folder / known.name).is_file() for known in spec.required)
    assert synthetic.read_marker(resolved.path, spec)["dataset"] == name


def test_official_files_resolve_as_real_from_the_given_root(official_mnist):
    resolved = data.resolve("mnist", official_mnist, allow_synthetic=False)
    assert resolved == data.DataRoot(official_mnist.resolve(), "real", "mnist")
    assert resolved.mount_source("torchvision") == official_mnist.resolve()


def test_grader_data_names_the_root_when_no_option_does(official_mnist, monkeypatch, tmp_path):
    monkeypatch.setenv("GRADER_DATA", str(official_mnist))
    assert data.resolve("mnist", None).origin == "real"
    # an explicit root wins over the environment
    assert data.resolve("mnist", tmp_path / "elsewhere").origin == "synthetic"


def test_default_root_is_in_the_grader_cache(official_mnist, own_cache):
    shutil.copytree(official_mnist, own_cache / "data")
    assert data.resolve("mnist", None, allow_synthetic=False).path == (own_cache / "data").resolve()


def test_synthetic_set_placed_in_a_root_stays_synthetic(synthetic_root, own_cache):
    assert data.resolve("cifar10", synthetic_root).origin == "synthetic"
    with pytest.raises(GraderError, match="is synthetic"):
        data.resolve("cifar10", synthetic_root, allow_synthetic=False)


def test_gz_archives_alone_are_unpacked_beside_themselves(official_mnist):
    raw = official_mnist / "MNIST" / "raw"
    for plain in [p for p in raw.iterdir() if p.suffix != ".gz"]:
        plain.unlink()
    assert data.resolve("mnist", official_mnist, allow_synthetic=False).origin == "real"
    images = raw / "train-images-idx3-ubyte"
    assert images.read_bytes() == gzip.decompress((raw / "train-images-idx3-ubyte.gz").read_bytes())


def test_cifar_archive_alone_is_unpacked_into_the_root(synthetic_root, own_cache, tmp_path, pretend_official):
    staged = tmp_path / "staged" / "cifar-10-batches-py"
    shutil.copytree(synthetic_root / "cifar-10-batches-py", staged, ignore=shutil.ignore_patterns(synthetic.MARKER))
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(staged, arcname="cifar-10-batches-py")
    pretend_official(catalog.CIFAR10, staged, bundle=root / "cifar-10-python.tar.gz")
    assert data.resolve("cifar10", root, allow_synthetic=False).origin == "real"
    assert (root / "cifar-10-batches-py" / "test_batch").read_bytes() == (staged / "test_batch").read_bytes()


def test_files_layout_is_the_raw_folder_when_it_holds_the_gz_files(official_mnist):
    resolved = data.resolve("mnist", official_mnist)
    assert resolved.mount_source("files") == official_mnist.resolve() / "MNIST" / "raw"


def test_files_layout_gets_gz_copies_in_the_cache_when_the_root_has_only_plain_files(official_mnist, own_cache):
    raw = official_mnist / "MNIST" / "raw"
    for archive in raw.glob("*.gz"):
        archive.unlink()
    folder = data.resolve("mnist", official_mnist).mount_source("files")
    assert folder == own_cache / "data-files" / "MNIST"
    for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert gzip.decompress((folder / f"{name}.gz").read_bytes()) == (raw / name).read_bytes()
    before = (folder / "train-images-idx3-ubyte.gz").stat().st_mtime_ns
    assert data.resolve("mnist", official_mnist).mount_source("files") == folder
    assert (folder / "train-images-idx3-ubyte.gz").stat().st_mtime_ns == before  # made once, then reused


def test_cifar_files_layout_is_the_batches_folder(synthetic_root, own_cache):
    resolved = data.DataRoot(synthetic_root, "synthetic", "cifar10")
    assert resolved.mount_source("files") == synthetic_root / "cifar-10-batches-py"


def test_a_set_written_by_an_older_generator_is_replaced(own_cache):
    root = own_cache / "old"
    (root / "MNIST" / "raw").mkdir(parents=True)
    (root / "MNIST" / synthetic.MARKER).write_text("synthetic MNIST written by grader: 1200 train\n")
    synthetic.ensure("mnist", root)
    assert synthetic.read_marker(root, catalog.MNIST)["generator"] == synthetic.RECIPES["mnist"].version
    assert (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_archives_in_a_read_only_folder_are_explained(official_mnist, monkeypatch):
    from grader.data import local_cache

    (official_mnist / "MNIST" / "raw" / "t10k-images-idx3-ubyte").unlink()
    monkeypatch.setattr(local_cache.os, "access", lambda path, mode: False)
    with pytest.raises(GraderError, match="t10k-images-idx3-ubyte.gz is here but not unpacked") as err:
        data.resolve("mnist", official_mnist)
    assert "gunzip -k" in err.value.hint


def test_a_folder_that_is_not_synthetic_is_never_replaced(own_cache):
    root = own_cache / "mixed"
    (root / "MNIST" / "raw").mkdir(parents=True)
    (root / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"someone's own file")
    with pytest.raises(GraderError, match="left alone"):
        synthetic.ensure("mnist", root)
    assert (root / "MNIST" / "raw" / "train-images-idx3-ubyte").read_bytes() == b"someone's own file"
