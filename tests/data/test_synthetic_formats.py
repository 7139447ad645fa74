"""Synthetic sets are read by the same code as the real ones: torchvision's classes and course readers."""

from __future__ import annotations

import gzip
import pickle
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from grader.data import DataRoot, catalog, cifar_checksums, synthetic, tensors
from grader.data.integrity import hash_file

IDX_SETS = [("mnist", torchvision.datasets.MNIST, 1200, 300),
            ("fashion-mnist", torchvision.datasets.FashionMNIST, 2000, 500)]


@pytest.mark.parametrize("name, dataset_class, n_train, n_test", IDX_SETS)
@pytest.mark.parametrize("download", [False, True])
def test_torchvision_reads_synthetic_idx_sets(synthetic_root, name, dataset_class, n_train, n_test, download):
    train = dataset_class(str(synthetic_root), train=True, download=download)
    test = dataset_class(str(synthetic_root), train=False, download=download)
    assert (len(train), len(test)) == (n_train, n_test)
    image, label = train[0]
    assert isinstance(image, Image.Image) and image.size == (28, 28) and isinstance(label, int)
    assert set(train.targets.tolist()) == set(range(10)) == set(test.targets.tolist())


def test_torchvision_cifar10_refuses_synthetic_batches_by_checksum(synthetic_root):
    """Documents why the harness's provided loaders use ``cifar10_class`` (see cifar_checksums)."""
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        torchvision.datasets.CIFAR10(str(synthetic_root), train=False, download=False)


@pytest.mark.parametrize("train, size", [(True, 2000), (False, 500)])
@pytest.mark.parametrize("download", [False, True])
def test_cifar10_class_runs_torchvision_loading_on_synthetic_batches(synthetic_root, train, size, download):
    dataset_class = cifar_checksums.cifar10_class(synthetic_root)
    assert issubclass(dataset_class, torchvision.datasets.CIFAR10)
    dataset = dataset_class(str(synthetic_root), train=train, download=download)
    image, label = dataset[0]
    assert len(dataset) == size and dataset.data.shape == (size, 32, 32, 3)
    assert isinstance(image, Image.Image) and image.size == (32, 32) and 0 <= label < 10
    assert dataset.classes[:2] == ["airplane", "automobile"]


def test_cifar10_class_is_torchvision_own_for_real_data(tmp_path):
    assert cifar_checksums.cifar10_class(tmp_path) is torchvision.datasets.CIFAR10


def test_cifar_batches_read_with_bytes_keys_as_on_the_data_set_page(synthetic_root):
    folder = synthetic_root / "cifar-10-batches-py"
    with open(folder / "data_batch_3", "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    assert set(batch) == {b"data", b"labels", b"batch_label", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (400, 3072)
    assert batch[b"batch_label"] == b"training batch 3 of 5"
    assert len(batch[b"labels"]) == len(batch[b"filenames"]) == 400
    with open(folder / "batches.meta", "rb") as f:
        meta = pickle.load(f, encoding="bytes")
    assert meta[b"label_names"][9] == b"truck" and meta[b"num_vis"] == 3072


def read_idx_gz(path: Path) -> np.ndarray:
    """What a course's reader does: gunzip, skip the header, view as uint8."""
    with gzip.open(path, "rb") as f:
        content = f.read()
    dims = content[3]
    shape = struct.unpack(f">{dims}I", content[4:4 + 4 * dims])
    return np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


@pytest.mark.parametrize("kind, count", [("train", 2000), ("t10k", 500)])
def test_custom_ops_reader_format_in_the_files_folder(synthetic_root, kind, count):
    folder = DataRoot(synthetic_root, "synthetic", "fashion-mnist").mount_source("files")
    images = read_idx_gz(folder / f"{kind}-images-idx3-ubyte.gz").reshape(-1, 784)
    labels = read_idx_gz(folder / f"{kind}-labels-idx1-ubyte.gz")
    assert images.shape == (count, 784) and labels.shape == (count,)
    assert labels.max() == 9 and images.max() > 200


def test_synthetic_mnist_is_byte_identical_to_the_one_the_example_grades_were_made_on(synthetic_root):
    raw = synthetic_root / "MNIST" / "raw"
    assert {name: hash_file(raw / name) for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")} == {
        "train-images-idx3-ubyte": "adfa334615f5850fdc618789d8331238",
        "train-labels-idx1-ubyte": "d06651fed72b667b0e71dbeb80397d28",
        "t10k-images-idx3-ubyte": "9ace8ed12466ca6c1f2fbacc4e9eb669",
        "t10k-labels-idx1-ubyte": "8e998274dea5cf1a549b7fd6dd16a928",
    }


@pytest.mark.parametrize("name", sorted(catalog.CATALOG))
def test_generation_is_seeded_and_quick(tmp_path, name):
    start = time.process_time()  # CPU time: the wall clock of a shared test machine says little
    synthetic.ensure(name, tmp_path / "a")
    assert time.process_time() - start < 2.0
    synthetic.ensure(name, tmp_path / "b")
    spec = catalog.CATALOG[name]
    # the markers list every file's checksum: equal markers mean byte-identical sets
    assert synthetic.read_marker(tmp_path / "a", spec) == synthetic.read_marker(tmp_path / "b", spec)


@pytest.mark.parametrize("name, shape", [("mnist", (1, 28, 28)), ("fashion-mnist", (1, 28, 28)),
                                         ("cifar10", (3, 32, 32))])
def test_tensors_hold_what_torchvision_reads(synthetic_root, name, shape):
    images, labels = tensors.load(name, synthetic_root, train=False)
    assert images.dtype == torch.uint8 and images.shape[1:] == shape
    if name == "cifar10":
        reference = cifar_checksums.cifar10_class(synthetic_root)(str(synthetic_root), train=False)
        expected = reference.data.transpose(0, 3, 1, 2)
    else:
        reference_class = dict((n, c) for n, c, *_ in IDX_SETS)[name]
        reference = reference_class(str(synthetic_root), train=False)
        expected = reference.data.numpy()[:, None]
    assert np.array_equal(images.numpy(), expected)
    assert labels.tolist() == [int(t) for t in reference.targets]
