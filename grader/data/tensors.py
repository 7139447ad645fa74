"""A data set as two tensors, read straight from its files: the input of the harness's trainer.

No ``Dataset``, no per-sample transform: the whole split is one uint8 tensor ``[N, C, H, W]`` and
one int64 tensor of labels, ready to be moved to the device in one copy (see ``grader.train``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from grader.data import catalog, cifar_format, idx_format


def load(dataset: str, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 ``[N, C, H, W]`` and labels int64 ``[N]`` of ``dataset`` under the data root ``root``.

    ``root`` is a resolved data root (``grader.data.resolve(...).path``); its files are trusted.
    """
    spec = catalog.get(dataset)
    folder = root / spec.folder
    if spec.is_idx:
        split = "train" if train else "t10k"
        images = _read_idx(folder, f"{split}-images-idx3-ubyte")[:, None]
        labels = _read_idx(folder, f"{split}-labels-idx1-ubyte")
    else:
        images_hwc, labels = cifar_format.read(folder, train)
        images = images_hwc.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels.astype(np.int64))


def _read_idx(folder: Path, name: str) -> np.ndarray:
    plain = folder / name
    return idx_format.read(plain if plain.is_file() else folder / f"{name}.gz")
