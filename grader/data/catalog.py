"""The data sets the harness knows: where torchvision keeps their files, and their official checksums.

A data root in torchvision's layout holds, for example::

    <root>/MNIST/raw/train-images-idx3-ubyte          (and the .gz it was unpacked from)
    <root>/FashionMNIST/raw/t10k-labels-idx1-ubyte
    <root>/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta

The MD5 values of the ``.gz`` files and of the CIFAR-10 batches are the ones torchvision's dataset
classes check; those of the uncompressed IDX files are the widely published checksums of the
original distributions. A file counts as real only if its checksum matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.errors import GraderError

IDX_IMAGE_BYTES = 28 * 28
IDX_SPLITS = {"train": 60_000, "t10k": 10_000}


@dataclass(frozen=True)
class KnownFile:
    """One file of a data set as published. ``size`` is known exactly only for some formats."""

    name: str
    md5: str
    size: int | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A data set in torchvision's layout.

    ``folder`` is relative to the data root and holds ``required`` (what torchvision reads) and,
    for IDX sets, ``archives`` (the ``.gz`` files they are unpacked from, which the course's own
    reader opens). ``synthetic_folder`` is where the marker of a synthetic stand-in lives.
    """

    name: str
    title: str
    torchvision_class: str
    folder: str
    synthetic_folder: str
    required: tuple[KnownFile, ...]
    archives: tuple[KnownFile, ...]
    sources: tuple[str, ...]
    bundle: KnownFile | None = None

    @property
    def is_idx(self) -> bool:
        return self.torchvision_class in ("MNIST", "FashionMNIST")


def _idx_files(md5: dict[str, str]) -> tuple[KnownFile, ...]:
    """The four uncompressed IDX files; their sizes follow from the header and the sample counts."""
    files = []
    for split, count in IDX_SPLITS.items():
        files.append(KnownFile(f"{split}-images-idx3-ubyte", md5[f"{split}-images"], 16 + count * IDX_IMAGE_BYTES))
        files.append(KnownFile(f"{split}-labels-idx1-ubyte", md5[f"{split}-labels"], 8 + count))
    return tuple(files)


def _gz_files(md5: dict[str, str]) -> tuple[KnownFile, ...]:
    return tuple(KnownFile(f"{split}-{part}-idx{3 if part == 'images' else 1}-ubyte.gz", md5[f"{split}-{part}"])
                 for split in IDX_SPLITS for part in ("images", "labels"))


MNIST = DatasetSpec(
    name="mnist", title="MNIST", torchvision_class="MNIST", folder="MNIST/raw", synthetic_folder="MNIST",
    required=_idx_files({"train-images": "6bbc9ace898e44ae57da46a324031adb",
                         "train-labels": "a25bea736e30d166cdddb491f175f624",
                         "t10k-images": "2646ac647ad5339dbf082846283269ea",
                         "t10k-labels": "27ae3e4e09519cfbb04c329615203637"}),
    archives=_gz_files({"train-images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                        "train-labels": "d53e105ee54ea40749a09fcbcd1e9432",
                        "t10k-images": "9fb629c4189551a2d022fa330f9573f3",
                        "t10k-labels": "ec29112dd5afa0611ce80d1b7f02629c"}),
    sources=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist", title="Fashion-MNIST", torchvision_class="FashionMNIST", folder="FashionMNIST/raw",
    synthetic_folder="FashionMNIST",
    required=_idx_files({"train-images": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                         "train-labels": "9018921c3c673c538a1fc5bad174d6f9",
                         "t10k-images": "8181f5470baa50b63fa0f6fddb340f0a",
                         "t10k-labels": "15d484375f8d13e6eb1aabb0c3f46965"}),
    archives=_gz_files({"train-images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                        "train-labels": "25c81989df183df01b3e8a0aad5dffbe",
                        "t10k-images": "bef4ecab320f06d8554ea6380940ec79",
                        "t10k-labels": "bb300cfdad3c16e7a12a480ee83cd310"}),
    sources=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
)

CIFAR10 = DatasetSpec(
    name="cifar10", title="CIFAR-10", torchvision_class="CIFAR10", folder="cifar-10-batches-py",
    synthetic_folder="cifar-10-batches-py",
    required=(KnownFile("data_batch_1", "c99cafc152244af753f735de768cd75f"),
              KnownFile("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
              KnownFile("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
              KnownFile("data_batch_4", "634d18415352ddfa80567beed471001a"),
              KnownFile("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
              KnownFile("test_batch", "40351d587109b95175f43aff81a1287e"),
              KnownFile("batches.meta", "5ff9c542aee3614f3951f8cda6e48888")),
    archives=(),
    sources=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    # torchvision downloads this archive into the data root and unpacks it there
    bundle=KnownFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
)

CATALOG: dict[str, DatasetSpec] = {spec.name: spec for spec in (MNIST, FASHION_MNIST, CIFAR10)}


def get(name: str) -> DatasetSpec:
    """The spec of data set ``name``, or a ``GraderError`` listing the known ones."""
    try:
        return CATALOG[name]
    except KeyError:
        raise GraderError(f"unknown data set {name!r}", where="rubric data.dataset",
                          hint=f"known data sets: none, {', '.join(CATALOG)}") from None
