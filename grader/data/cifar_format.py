"""The on-disk format of CIFAR-10's Python version (``cifar-10-batches-py``).

Five training batches ``data_batch_1`` .. ``data_batch_5``, one ``test_batch`` and ``batches.meta``,
each a Python 2 pickle (see ``py2_pickle``). A batch is a dict with ``data`` (uint8, one row of 3,072
values per image: the red plane, then green, then blue, each 32x32 in row order), ``labels`` (a list
of ints), ``batch_label`` and ``filenames``; the meta file holds ``label_names``,
``num_cases_per_batch`` and ``num_vis``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from grader.data import py2_pickle

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
LABEL_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SIDE = 32


def write(folder: Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]) -> None:
    """Write the seven files; images are uint8 ``[N, 32, 32, 3]`` (height, width, RGB)."""
    folder.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = train
    parts = np.array_split(np.arange(len(train_labels)), len(TRAIN_BATCHES))
    for number, (name, part) in enumerate(zip(TRAIN_BATCHES, parts), start=1):
        _write_batch(folder / name, f"training batch {number} of {len(TRAIN_BATCHES)}",
                     train_images[part], train_labels[part], first_index=int(part[0]) if len(part) else 0)
    test_images, test_labels = test
    _write_batch(folder / TEST_BATCH, "testing batch 1 of 1", test_images, test_labels, first_index=0)
    meta = {b"num_cases_per_batch": len(parts[0]), b"label_names": [n.encode() for n in LABEL_NAMES],
            b"num_vis": SIDE * SIDE * 3}
    (folder / META).write_bytes(py2_pickle.dumps(meta))


def _write_batch(path: Path, batch_label: str, images: np.ndarray, labels: np.ndarray, first_index: int) -> None:
    rows = np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1), dtype=np.uint8)
    names = [f"synthetic_{LABEL_NAMES[label]}_{first_index + i:06d}.png".encode() for i, label in enumerate(labels)]
    batch = {b"batch_label": batch_label.encode(), b"labels": [int(label) for label in labels],
             b"data": rows, b"filenames": names}
    path.write_bytes(py2_pickle.dumps(batch))


def read(folder: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``[N, 32, 32, 3]`` and labels int64 ``[N]`` of the training or the test set.

    Only for files the harness trusts (verified real batches, or its own synthetic ones):
    unpickling runs whatever the file says.
    """
    images, labels = [], []
    for name in TRAIN_BATCHES if train else (TEST_BATCH,):
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, SIDE, SIDE))
        labels.extend(batch["labels"])
    return np.concatenate(images).transpose(0, 2, 3, 1), np.asarray(labels, dtype=np.int64)


def read_label_names(folder: Path) -> list[str]:
    with open(folder / META, "rb") as f:
        return list(pickle.load(f, encoding="latin1")["label_names"])
