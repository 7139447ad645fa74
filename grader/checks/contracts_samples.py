"""What the ``dataset`` forms see of samples and labels, reduced to plain numbers (probe side).

A sample becomes a 63-bit hash of its values, so the host can compare two data sets, or two
passes over a loader, without receiving any data. A batch of labels becomes the class
each row encodes (-1 where a row encodes none) plus a ``LabelSummary`` of how the labels are
written (class indices, or rows of 0/1 values that must sum to 1 to be one-hot).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from grader.checks.common import type_name


def as_array(value: Any) -> np.ndarray | None:
    """The values of a tensor, numpy array or PIL image; ``None`` for anything else."""
    import torch

    if isinstance(value, torch.Tensor):
        plain = torch.Tensor.cpu(torch.Tensor.detach(value))
        if plain.dtype == torch.bfloat16:  # numpy has no bfloat16
            plain = torch.Tensor.float(plain)
        return np.asarray(torch.Tensor.numpy(plain))
    if type(value) is np.ndarray:
        return value
    if type_name(value).startswith("PIL."):
        return np.asarray(value)
    return None


def value_hash(value: Any) -> int:
    """A 63-bit hash of a sample's values, dtype and shape; other objects hash their ``repr``.

    63 bits so that hashes fit numpy's ``int64`` and JSON integers alike."""
    array = as_array(value)
    if array is None:
        data = repr(value)[:10_000].encode()
    else:
        data = f"{array.dtype.str}{array.shape}".encode() + np.ascontiguousarray(array).tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


def item_hash(item: Any) -> int:
    """One hash of a whole item or batch: the hashes of its parts, in order."""
    parts = list(item) if type(item) in (tuple, list) else [item]
    return value_hash(np.array([value_hash(part) for part in parts], dtype=np.int64))


def row_hashes(rows: np.ndarray) -> list[int]:
    """One hash per row of a batch (a sample, or a label: a class index or a one-hot row)."""
    return [value_hash(row) for row in rows.reshape(len(rows), -1)] if rows.ndim else [value_hash(rows)]


def label_classes(labels: np.ndarray) -> list[int]:
    """The class each label row encodes: an integral 1-d label is its own class, a 2-d row of 0/1
    values summing to 1 names its hot column; anything else is -1."""
    if labels.ndim == 1:
        values = labels.astype(np.float64)
        return [int(v) if float(v).is_integer() and v >= 0 else -1 for v in values]
    if labels.ndim == 2:
        rows = labels.astype(np.float64)
        one_hot = np.all((rows == 0) | (rows == 1), axis=1) & (rows.sum(axis=1) == 1)
        return [int(np.argmax(row)) if hot else -1 for row, hot in zip(rows, one_hot)]
    return [-1] * len(labels)


class LabelSummary(BaseModel):
    """How the labels of every batch seen were written."""

    model_config = ConfigDict(extra="forbid", strict=True)
    dims: list[int] = []
    widths: list[int] = []
    zero_one: bool = True
    row_sum_min: float | None = None
    row_sum_max: float | None = None

    def add(self, labels: np.ndarray) -> None:
        """Fold one batch's labels into the summary."""
        self.dims = sorted(set(self.dims) | {labels.ndim})
        if labels.ndim != 2 or labels.size == 0:
            return
        rows = labels.astype(np.float64)
        self.widths = sorted(set(self.widths) | {labels.shape[1]})
        self.zero_one = self.zero_one and bool(np.all((rows == 0) | (rows == 1)))
        sums = rows.sum(axis=1)
        low, high = float(sums.min()), float(sums.max())
        self.row_sum_min = low if self.row_sum_min is None else min(low, self.row_sum_min)
        self.row_sum_max = high if self.row_sum_max is None else max(high, self.row_sum_max)

    def is_one_hot(self, classes: int) -> bool:
        return (self.dims == [2] and self.widths == [classes] and self.zero_one
                and self.row_sum_min == 1.0 and self.row_sum_max == 1.0)

    def describe(self) -> str:
        """``rows of width 10 summing to 1..2, not all 0/1`` or ``1-d class indices``."""
        if not self.dims:
            return "no labels"
        if self.dims != [2]:
            return " and ".join({1: "1-d class indices"}.get(d, f"{d}-d labels") for d in self.dims)
        sums = (f"{self.row_sum_min:g}" if self.row_sum_min == self.row_sum_max
                else f"{self.row_sum_min:g}..{self.row_sum_max:g}")
        widths = " or ".join(str(w) for w in self.widths)
        return f"rows of width {widths} summing to {sums}" + ("" if self.zero_one else ", not all 0/1")


def one_hot_requirement(classes: int) -> str:
    return f"labels are one-hot rows of width {classes} (0/1 values summing to 1)"
