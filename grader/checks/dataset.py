"""``dataset``: contracts of a data-set function, a data loader or a batching class.

Three forms, one per rubric entry, each a section of this file with its expectation, its
observation, what the probe does next to the student's code and the requirement rows the host
judges:

* ``items`` — data sets indexed item by item: returned by a call (``datasets(transform=None)``),
  one target, or several targets (``[train_set, val_set, test_set]``). Length, item types, the
  class they derive from, the same item for the same index, and data sets that share no sample.
* ``loader`` — anything yielding ``(inputs, targets)`` batches, iterated twice: batch sizes,
  types, value ranges, one-hot targets, the last partial batch, whether the order changes
  between passes and whether samples keep their own labels when it does.
* ``batches`` — a class such as custom-ops' ``Dataset(samples, labels, batch_size)``; the probe
  builds it from harness-made samples that identify themselves and records the values each batch
  served, so the host checks ``len``, batch sizes, the last partial batch, determinism and
  ``shuffle()`` keeping samples with their labels exactly, on labels it draws from the rubric's
  seed itself (a ``HarnessSeed``).

The first section, samples and labels, is what the forms share. The second, the course's data,
is what the host reads itself to hold the ``items`` and ``loader`` forms' accounts to: where the
rubric names a data set, a loader's labels must be that data's, and untransformed items its own
images with their own labels.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, HarnessSeed, Observation, ProbeContext, Verdict
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.checks.toolkit.common import Args, call_target, format_shape, is_plain_tensor, type_name
from grader.checks.defined import same_class
from grader.observations import Array

if TYPE_CHECKING:
    from grader.data import DataRoot


# ================================================================ samples and labels
#
# What the ``dataset`` forms see of samples and labels, reduced to plain numbers.
#
# For the ``items`` and ``loader`` forms a sample becomes, on the probe side, a 63-bit hash of its
# values, so the host can compare two data sets, or two passes over a loader, without receiving
# any data. A batch of labels becomes the class each row encodes (-1 where a row encodes none)
# plus a ``LabelSummary`` of how the labels are written (class indices, or rows of 0/1 values that
# must sum to 1 to be one-hot); the ``batches`` form makes both on the host, from the values served.


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


# ================================================================ the course's data, as the host holds it
#
# The ``items`` and ``loader`` forms report what the student's objects served, in the student's
# process. Where the rubric names a data set, the host reads that data set's files itself (the
# data root the run was given) and holds the account to them:
#
# * a loader's first pass, when it ran to the end, served each class at most as often as one split
#   of the data holds it (a loader over part of a split, a ``random_split`` or a ``Subset``, serves
#   fewer; none serves more);
# * where the rubric asks for untransformed items (PIL images), each item read is one of the data
#   set's own images, with that image's label;
# * the items of a data set hashed for ``disjoint`` (every item, or ``hash_at_most`` evenly spaced
#   ones) serve no class more often than one split holds it, like a loader.
#
# A record made up instead of read from the data fails these rows; passing them takes reading the
# very files that the honest one-line data set or loader reads.


@dataclass(frozen=True)
class CourseData:
    """A host truth (``CheckKind.host_truth``, given to ``judge`` as ``expected``): the rubric's
    data set as the host read it. ``class_counts`` holds, per split, how many images of each
    class it has; ``image_labels`` maps the hash of each image, as an untransformed item holds it
    (``value_hash`` of a PIL image's array), to the labels it carries (empty unless the rubric
    asks for untransformed items)."""

    dataset: str
    class_counts: dict[str, tuple[int, ...]]
    image_labels: dict[int, tuple[int, ...]]

    @staticmethod
    def read(data: "DataRoot", with_images: bool) -> "CourseData | None":
        """The data under ``data``'s root, or None where the rubric names no data set."""
        if data.path is None or data.dataset == "none":
            return None
        return _course_data(data.dataset, str(data.path.resolve()), with_images)


@lru_cache(maxsize=8)
def _course_data(dataset: str, root: str, with_images: bool) -> CourseData:
    from grader.data import tensors

    counts: dict[str, tuple[int, ...]] = {}
    image_labels: dict[int, set[int]] = defaultdict(set)
    splits = {"train": True, "test": False}
    loaded = {name: tensors.load(dataset, Path(root), train=train) for name, train in splits.items()}
    classes = max(int(labels.max()) + 1 if len(labels) else 0 for _, labels in loaded.values())
    for name, (images, labels) in loaded.items():
        counts[name] = tuple(int(c) for c in np.bincount(labels.numpy(), minlength=classes))
        if with_images:
            for image, label in zip(_as_pil_arrays(images.numpy()), labels.tolist()):
                image_labels[value_hash(image)].add(int(label))
    return CourseData(dataset=dataset, class_counts=counts,
                      image_labels={h: tuple(sorted(found)) for h, found in image_labels.items()})


def _as_pil_arrays(images: np.ndarray) -> np.ndarray:
    """``[N, C, H, W]`` uint8 images as torchvision's data sets hand them out untransformed, read
    back with ``numpy.asarray``: ``[N, H, W]`` for one channel (mode ``L``), ``[N, H, W, C]`` else."""
    return images[:, 0] if images.shape[1] == 1 else np.ascontiguousarray(images.transpose(0, 2, 3, 1))


def within_a_split(classes: np.ndarray, course: CourseData) -> dict[str, Any]:
    """Whether ``classes`` (one per label served; -1 for a label that names no class) fit within
    one split of ``course``, class by class, as a row's ``ok`` and ``got``."""
    served, problem = _served_counts(classes, course)
    if served is None:
        return {"got": problem, "ok": False}
    holding = sorted((sum(held), split) for split, held in course.class_counts.items() if np.all(served <= held))
    exact = [split for _, split in holding if np.array_equal(served, course.class_counts[split])]
    if exact or holding:
        return {"got": f"yes: {classes.size:,} labels, " + (f"the {exact[0]} split's" if exact else
                                                            f"within the {holding[-1][1]} split"), "ok": True}
    split, held = max(course.class_counts.items(), key=lambda item: sum(item[1]))
    over = [c for c in range(len(served)) if served[c] > held[c]]
    return {"got": f"{len(over)} of {len(served)} classes served more often than any split holds them (class "
                   f"{over[0]}: {int(served[over[0]]):,} served, the {split} split holds {held[over[0]]:,})", "ok": False}


def the_whole_split(classes: np.ndarray, course: CourseData, split: str, largest_batch: int) -> dict[str, Any]:
    """Whether ``classes`` are the labels of ``course``'s ``split``, class by class: all of them, or
    all but fewer than ``largest_batch`` (a loader that drops its last partial batch), as a row's
    ``ok`` and ``got``."""
    served, problem = _served_counts(classes, course)
    if served is None:
        return {"got": problem, "ok": False}
    held = np.array(course.class_counts[split])
    if np.array_equal(served, held):
        return {"got": f"yes: all {classes.size:,} labels", "ok": True}
    if np.all(served <= held) and 0 < held.sum() - served.sum() < largest_batch:
        return {"got": f"yes: {classes.size:,} of {int(held.sum()):,} labels (a last partial batch dropped)", "ok": True}
    over = [c for c in range(len(held)) if served[c] > held[c]]
    if over:
        return {"got": f"{classes.size:,} labels; class {over[0]} served {int(served[over[0]]):,} times, the split "
                       f"holds {int(held[over[0]]):,}", "ok": False}
    return {"got": f"{classes.size:,} of the split's {int(held.sum()):,} labels", "ok": False}


def _served_counts(classes: np.ndarray, course: CourseData) -> tuple[np.ndarray | None, str]:
    """How often each class of ``course`` occurs in ``classes``; None, with why, where a label names
    no class or a class the data set does not have."""
    widest = max(len(counts) for counts in course.class_counts.values())
    if not classes.size:
        return None, "no labels served"
    if unnamed := int(np.sum(classes < 0)):
        return None, f"{unnamed:,} of {classes.size:,} labels name no class"
    if int(classes.max()) >= widest:
        return None, f"class {int(classes.max())} served; {course.dataset} has {widest} classes"
    return np.bincount(classes, minlength=widest), ""


# ================================================================ the ``items`` form
#
# Data sets indexed item by item.
#
# The data sets come from calling a function (``datasets(transform=None)`` returning train and
# test), from one target, or from several targets (``[train_set, val_set, test_set]``). For each,
# the probe takes ``len``, reads the first, middle and last item, and on request reads them again
# (determinism) and hashes the samples of many items (so the host can tell whether the data sets
# share samples: a train / validation / test split must not).


class ItemsExpect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    returns: int | None = Field(None, description="how many data sets the call returns (a tuple)",
                                json_schema_extra=JUDGE_ONLY)
    item_types: list[str] | None = Field(None, description="qualified type of each element of an item",
                                         json_schema_extra=JUDGE_ONLY)
    min_length: int = Field(1, description="every returned data set has at least this many items",
                            json_schema_extra=JUDGE_ONLY)
    subclass_of: str | None = Field(None, description="every data set is an instance of this class, "
                                                      "e.g. torch.utils.data.Dataset", json_schema_extra=JUDGE_ONLY)
    deterministic: bool = Field(False, description="reading an index twice gives the same item")
    disjoint: bool = Field(False, description="no sample occurs in two of the data sets (compared by hashes)")
    shared_allowed: int = Field(0, ge=0, description="with `disjoint`: shared samples still accepted, for "
                                                     "source data that holds duplicate images",
                                                     json_schema_extra=JUDGE_ONLY)
    hash_at_most: int = Field(20_000, ge=1, description="with `disjoint`: items hashed per data set "
                                                        "(evenly spaced when there are more)")
    may_coincide: list[tuple[int, int]] = Field(
        [], description="with `disjoint`: pairs of data sets (1-based) that may also be the very same samples, "
                        "where the handout allows it (e.g. [[2, 3]]: validation on the test set)",
                        json_schema_extra=JUDGE_ONLY)


class DatasetInfo(BaseModel):
    """One data set as the probe saw it. ``read_samples`` and ``read_labels`` are the sample hash
    and the label (its class, ``label_classes``; -1 for none) of each item read at
    ``read_indices``; ``item_hashes`` and ``reread_hashes`` hash those whole items on a first and a
    second read; ``sample_hashes`` and ``sample_labels`` hash the samples of many items and give
    their labels (only when the rubric asks for disjoint data sets)."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    type: str
    length: int | None
    item_types: list[list[str]]
    classes: list[str] = []
    read_indices: list[int] = []
    read_samples: list[int] = []
    read_labels: list[int] = []
    item_hashes: list[int] = []
    reread_hashes: list[int] = []
    sample_hashes: Array | None = None
    sample_labels: Array | None = None


class ItemsObservation(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    returned_type: str
    datasets: list[DatasetInfo]


# -- probe side


def observe_items(obj: Any, ctx: ProbeContext, want: ItemsExpect, returned_type: str) -> ItemsObservation:
    datasets = list(obj) if type(obj) in (tuple, list) else [obj]
    return ItemsObservation(returned_type=returned_type,
                            datasets=[_observe_one(ds, n, ctx, want) for n, ds in enumerate(datasets, start=1)])


def _observe_one(ds: Any, number: int, ctx: ProbeContext, want: ItemsExpect) -> DatasetInfo:
    with ctx.student_code(f"taking the length of data set {number}"):
        length = len(ds)
    picks = sorted({0, length // 2, length - 1}) if length > 0 else []
    items = [_read(ds, i, number, ctx) for i in picks]
    info = DatasetInfo(type=type_name(ds), length=length, read_indices=picks,
                       item_types=[[type_name(p) for p in _parts(item)] for item in items],
                       classes=[f"{c.__module__}.{c.__qualname__}" for c in type(ds).__mro__],
                       read_samples=[value_hash(_parts(item)[0]) for item in items],
                       read_labels=[_label_of(item) for item in items])
    if want.deterministic:
        info.item_hashes = [item_hash(item) for item in items]
        info.reread_hashes = [item_hash(_read(ds, i, number, ctx)) for i in picks]
    if want.disjoint:
        spaced = np.linspace(0, length - 1, num=min(length, want.hash_at_most)) if length else np.zeros(0)
        indices = np.unique(spaced.astype(int))
        hashed = [_read(ds, int(i), number, ctx) for i in indices]
        info.sample_hashes = np.array([value_hash(_parts(item)[0]) for item in hashed], dtype=np.int64)
        info.sample_labels = np.array([_label_of(item) for item in hashed], dtype=np.int64)
    return info


def _read(ds: Any, index: int, number: int, ctx: ProbeContext) -> Any:
    with ctx.student_code(f"reading item {index} of data set {number}"):
        return ds[index]


def _parts(item: Any) -> list[Any]:
    return list(item) if type(item) in (tuple, list) else [item]


def _label_of(item: Any) -> int:
    """The class the second part of an item names (``label_classes``): a number that is a whole
    class index (a Python or numpy number, or a one-element tensor or array), or a one-hot row;
    -1 for anything else."""
    parts = _parts(item)
    if len(parts) < 2:
        return -1
    label = parts[1]
    array = np.array([label]) if type(label) in (int, float) or isinstance(label, np.number) else as_array(label)
    if array is None or array.size == 0 or not np.issubdtype(array.dtype, np.number):
        return -1
    rows = array.reshape(1) if array.size == 1 else array.reshape(1, -1)
    return label_classes(rows)[0]


# -- host side


def items_requirements(want: ItemsExpect, obs: ItemsObservation) -> list[dict[str, Any]]:
    rows = [] if obs.datasets else [{"requirement": "returns at least one data set",
                                     "got": obs.returned_type, "ok": False}]
    if want.returns is not None:
        rows.append({"requirement": f"returns {want.returns} data sets", "got": f"{len(obs.datasets)} ({obs.returned_type})",
                     "ok": len(obs.datasets) == want.returns})
    for n, ds in enumerate(obs.datasets, start=1):
        rows.append({"requirement": f"data set {n} has at least {want.min_length} items",
                     "got": str(ds.length), "ok": (ds.length or 0) >= want.min_length})
        if want.item_types is not None:
            wrong = [t for t in ds.item_types if t != want.item_types]
            got = f"({', '.join(wrong[0])})" if wrong else f"({', '.join(want.item_types)})"
            rows.append({"requirement": f"data set {n} items are ({', '.join(want.item_types)})",
                         "got": got, "ok": not wrong and bool(ds.item_types)})
        if want.subclass_of is not None:
            rows.append({"requirement": f"data set {n} is a {want.subclass_of}", "got": ds.type,
                         "ok": any(same_class(want.subclass_of, c) for c in ds.classes)})
        if want.deterministic:
            rows.append(_determinism_row(n, ds))
    if want.disjoint:
        rows.append(_disjoint_row(want, obs.datasets))
    return rows


def untransformed(want: ItemsExpect) -> bool:
    """Whether the rubric asks for items whose samples are images as the data set's files hold
    them (PIL images), which the host can recognise among its own."""
    return bool(want.item_types) and want.item_types[0].startswith("PIL.")  # type: ignore[index]


def _course_images_row(n: int, ds: DatasetInfo, course: CourseData) -> dict[str, Any]:
    """Each item read is one of the course data's images, with a label that image carries."""
    problems = []
    for index, sample, label in zip(ds.read_indices, ds.read_samples, ds.read_labels):
        labels = course.image_labels.get(sample)
        if labels is None:
            problems.append(f"item {index} is not an image of {course.dataset}")
        elif label not in labels:
            problems.append(f"item {index} has label {label}, its image is labelled {labels[0]} in {course.dataset}")
    read = len(ds.read_samples)
    if not read or not read == len(ds.read_indices) == len(ds.read_labels):
        problems.append(f"{read} samples and {len(ds.read_labels)} labels recorded for {len(ds.read_indices)} items read")
    return {"requirement": f"data set {n} holds {course.dataset}'s own images with their labels",
            "got": "; ".join(problems[:3]) or f"yes, {read} items read", "ok": not problems}


def _course_split_row(n: int, ds: DatasetInfo, course: CourseData) -> dict[str, Any]:
    """The items hashed for ``disjoint`` (all of the data set, or evenly spaced ones: a part of it
    either way) serve no class more often than one split of the course's data holds it."""
    requirement = f"data set {n} holds {course.dataset}'s labels (at most a split's count of each class)"
    labels, hashes = ds.sample_labels, ds.sample_hashes
    if labels is None or hashes is None or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) \
            or labels.shape != hashes.shape:
        return {"requirement": requirement, "ok": False, "got": "no label recorded for each sample hashed"}
    return {"requirement": requirement, **within_a_split(labels, course)}


def _determinism_row(n: int, ds: DatasetInfo) -> dict[str, Any]:
    changed = [i for i, a, b in zip(ds.read_indices, ds.item_hashes, ds.reread_hashes) if a != b]
    got = (f"item {changed[0]} differed on a second read" + (f" ({len(changed)} of {len(ds.read_indices)} items)"
                                                             if len(changed) > 1 else "")) if changed else "same items"
    return {"requirement": f"data set {n} gives the same item for the same index", "got": got,
            "ok": not changed and bool(ds.item_hashes) and len(ds.item_hashes) == len(ds.reread_hashes)}


def _disjoint_row(want: ItemsExpect, datasets: list[DatasetInfo]) -> dict[str, Any]:
    """No shared sample, except pairs the rubric lets coincide, which may also be the same set."""
    shared, same = {}, []
    for (i, a), (j, b) in combinations(enumerate(datasets, start=1), 2):
        count = np.intersect1d(_hashes(a), _hashes(b)).size
        if (i, j) in {tuple(sorted(p)) for p in want.may_coincide} and count and \
                count == _hashes(a).size == _hashes(b).size:
            same.append(f"data sets {i} and {j} are the same samples (the handout allows it)")
            continue
        shared[(i, j)] = count
    overlaps = [f"data sets {i} and {j} share {count:,} samples" for (i, j), count in shared.items() if count]
    hashed = ", ".join(f"{_hashes(d).size:,}" for d in datasets)
    allowance = f" (up to {want.shared_allowed} allowed)" if want.shared_allowed else ""
    found = "; ".join(overlaps + same) if overlaps or same else "no shared sample"
    return {"requirement": f"the {len(datasets)} data sets share no sample{allowance}",
            "got": f"{found} (samples hashed: {hashed})",
            "ok": sum(shared.values()) <= want.shared_allowed and len(datasets) > 1}


def _hashes(ds: DatasetInfo) -> np.ndarray:
    return ds.sample_hashes if ds.sample_hashes is not None else np.array([], dtype=np.int64)


# ================================================================ the ``loader`` form
#
# Anything that yields ``(inputs, targets)`` batches.
#
# The probe iterates the loader twice. The first pass records batch sizes, types and value ranges;
# the second pass tells whether the order changes between passes (the first batch's fingerprint)
# and, when the rubric asks for ``keeps_pairs``, hashes every sample and label of both passes, so
# the host can verify that shuffling moved samples together with their own labels and lost or
# repeated none.


class LoaderExpect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_size: int | None = Field(None, description="every batch but the last has this size",
                                   json_schema_extra=JUDGE_ONLY)
    input_type: str | None = Field("torch.Tensor", json_schema_extra=JUDGE_ONLY)
    target_type: str | None = Field("torch.Tensor", json_schema_extra=JUDGE_ONLY)
    input_range: list[float] | None = Field(None, min_length=2, max_length=2, description="[min, max] of inputs",
                                            json_schema_extra=JUDGE_ONLY)
    target_range: list[int] | None = Field(None, min_length=2, max_length=2,
                                           description="targets are integers in [min, max]",
                                           json_schema_extra=JUDGE_ONLY)
    shuffled: bool | None = Field(None, description="true: order changes between passes; false: it never does",
                                  json_schema_extra=JUDGE_ONLY)
    keeps_pairs: bool = Field(False, description="a second pass serves the same samples, each with its own label: "
                                                 "shuffling is a permutation of (sample, label) pairs (costs a "
                                                 "second full pass)")
    one_hot: int | None = Field(None, ge=2, description="targets are one-hot rows of this many classes",
                                json_schema_extra=JUDGE_ONLY)
    drop_last: bool | None = Field(None, description="false: a pass serves all len(loader.dataset) samples, "
                                                     "the last partial batch included; true: only full batches")
    split: Literal["train", "test"] | None = Field(
        None, description="a pass serves this whole split of the rubric's data set (all of its labels, checked "
                          "against the host's own files; a dropped last partial batch excepted); without it, a "
                          "pass may serve part of a split (a random_split) but never more of a class than one holds",
        json_schema_extra=JUDGE_ONLY)

    @model_validator(mode="after")
    def _drop_last_needs_a_batch_size(self) -> "LoaderExpect":
        if self.drop_last and self.batch_size is None:
            raise ValueError("`drop_last: true` needs `batch_size` (how many samples a full batch holds)")
        return self


class LoaderObservation(BaseModel):
    """One loader as the probe saw it. ``served_classes`` holds the class of every label the first
    pass served (``label_classes``), in order. With ``keeps_pairs``, ``sample_hashes`` and
    ``label_hashes`` hold one array per pass: the hash of every sample and of its label, in the
    order served."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    returned_type: str
    batch_sizes: list[int] = []
    batch_structure: list[str] = []
    input_types: list[str] = []
    target_types: list[str] = []
    input_min: float | None = None
    input_max: float | None = None
    target_min: float | None = None
    target_max: float | None = None
    targets_integral: bool = True
    labels: LabelSummary = Field(default_factory=LabelSummary)
    fingerprints: list[float] = []
    dataset_length: int | None = None
    served_classes: Array | None = None
    sample_hashes: list[Array] = []
    label_hashes: list[Array] = []


# -- probe side


def observe_loader(loader: Any, ctx: ProbeContext, want: LoaderExpect, max_batches: int) -> LoaderObservation:
    import torch

    obs = LoaderObservation(returned_type=type_name(loader))
    inputs_seen, targets_seen, structures = set(), set(), set()
    served_samples: list[list[int]] = [[], []]
    served_labels: list[list[int]] = [[], []]
    served_classes: list[int] = []
    for pass_number in range(2):
        with ctx.student_code("iterating the data loader"):
            for index, batch in enumerate(loader):
                if index >= max_batches:
                    break
                if index == 0:
                    obs.fingerprints.append(_fingerprint(batch))
                if pass_number == 1 and not want.keeps_pairs:
                    break  # the first batch of the second pass tells whether the order changed
                is_pair = type(batch) in (tuple, list) and len(batch) == 2
                if want.keeps_pairs and is_pair and is_plain_tensor(batch[0]) and is_plain_tensor(batch[1]):
                    served_samples[pass_number] += row_hashes(as_array(batch[0]))  # type: ignore[arg-type]
                    served_labels[pass_number] += row_hashes(as_array(batch[1]))  # type: ignore[arg-type]
                if pass_number == 1:
                    continue
                structures.add(type_name(batch) + (f"[{len(batch)}]" if type(batch) in (tuple, list) else ""))
                if not is_pair:
                    continue
                x, y = batch
                inputs_seen.add(type_name(x))
                targets_seen.add(type_name(y))
                if not (is_plain_tensor(x) and is_plain_tensor(y)):
                    continue
                obs.batch_sizes.append(int(torch.Tensor.size(x, 0)))
                _update_range(obs, "input", x)
                _update_range(obs, "target", y)
                obs.labels.add(as_array(y))  # type: ignore[arg-type]
                served_classes += label_classes(as_array(y))  # type: ignore[arg-type]
                if torch.is_floating_point(y) and not bool(torch.all(y == torch.round(y))):
                    obs.targets_integral = False
    obs.batch_structure, obs.input_types, obs.target_types = sorted(structures), sorted(inputs_seen), sorted(targets_seen)
    obs.served_classes = np.array(served_classes, dtype=np.int64)
    if want.keeps_pairs:
        obs.sample_hashes = [np.array(hashes, dtype=np.int64) for hashes in served_samples]
        obs.label_hashes = [np.array(hashes, dtype=np.int64) for hashes in served_labels]
    if want.drop_last is not None:
        obs.dataset_length = _dataset_length(loader, ctx)
    return obs


def _dataset_length(loader: Any, ctx: ProbeContext) -> int | None:
    """``len(loader.dataset)``, or ``None`` for a loader without a sized ``dataset``."""
    with ctx.student_code("taking len(loader.dataset)"):
        dataset = getattr(loader, "dataset", None)
        return len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None


def _update_range(obs: LoaderObservation, which: str, t: Any) -> None:
    import torch

    if torch.Tensor.numel(t) == 0:
        return
    lo, hi = float(torch.min(t.detach().double())), float(torch.max(t.detach().double()))
    old_lo, old_hi = getattr(obs, f"{which}_min"), getattr(obs, f"{which}_max")
    setattr(obs, f"{which}_min", lo if old_lo is None else min(lo, old_lo))
    setattr(obs, f"{which}_max", hi if old_hi is None else max(hi, old_hi))


def _fingerprint(batch: Any) -> float:
    """A number that changes when the first batch holds other samples or another order."""
    import torch

    if type(batch) not in (tuple, list) or not batch or not is_plain_tensor(batch[-1]):
        return 0.0
    y = batch[-1].detach().double().flatten()
    weights = torch.arange(1, y.numel() + 1, dtype=torch.float64)
    x_part = float(batch[0].detach().double().flatten()[:4096].sum()) if is_plain_tensor(batch[0]) else 0.0
    return float((y * weights).sum()) + x_part


# -- host side


def loader_requirements(want: LoaderExpect, obs: LoaderObservation) -> list[dict[str, Any]]:
    if obs.batch_structure != ["tuple[2]"] and obs.batch_structure != ["list[2]"]:
        return [{"requirement": "batches are (inputs, targets) pairs",
                 "got": ", ".join(obs.batch_structure) or "no batches", "ok": False}]
    rows = []
    if want.batch_size is not None:
        sizes = obs.batch_sizes
        body_ok = all(s == want.batch_size for s in sizes[:-1])
        last_ok = bool(sizes) and 0 < sizes[-1] <= want.batch_size
        odd = sorted({s for s in sizes[:-1] if s != want.batch_size})
        rows.append({"requirement": f"batches of {want.batch_size} (the last may be smaller)",
                     "got": f"{len(sizes)} batches" + (f", sizes {odd[:5]} found" if odd else ""),
                     "ok": body_ok and last_ok})
    for which, expected_type in (("input", want.input_type), ("target", want.target_type)):
        seen = getattr(obs, f"{which}_types")
        if expected_type is not None:
            rows.append({"requirement": f"{which}s are {expected_type}", "got": ", ".join(seen),
                         "ok": seen == [expected_type]})
    if want.input_range is not None:
        lo, hi = want.input_range
        ok = obs.input_min is not None and obs.input_min >= lo and obs.input_max <= hi  # type: ignore[operator]
        rows.append({"requirement": f"inputs in [{lo:g}, {hi:g}]", "got": f"[{obs.input_min}, {obs.input_max}]", "ok": ok})
    if want.target_range is not None:
        lo, hi = want.target_range
        ok = (obs.target_min is not None and obs.targets_integral
              and obs.target_min >= lo and obs.target_max <= hi)  # type: ignore[operator]
        got = f"[{obs.target_min}, {obs.target_max}]" + ("" if obs.targets_integral else ", not integers")
        rows.append({"requirement": f"targets are integers in [{lo}, {hi}]", "got": got, "ok": ok})
    if want.one_hot is not None:
        rows.append({"requirement": one_hot_requirement(want.one_hot), "got": obs.labels.describe(),
                     "ok": obs.labels.is_one_hot(want.one_hot)})
    if want.shuffled is not None:
        changed = len(obs.fingerprints) == 2 and obs.fingerprints[0] != obs.fingerprints[1]
        rows.append({"requirement": "shuffled every pass" if want.shuffled else "not shuffled",
                     "got": "order changes between passes" if changed else "same order on every pass",
                     "ok": changed == want.shuffled})
    if want.keeps_pairs:
        rows.append(_pairs_row(obs, want.drop_last))
    if want.drop_last is not None:
        rows.append(_drop_last_row(want.drop_last, want.batch_size, obs))
    return rows


def _course_labels_row(obs: LoaderObservation, course: CourseData, split: str | None) -> dict[str, Any]:
    requirement = (f"a pass serves the labels of {course.dataset}'s whole {split} split" if split else
                   f"a pass serves {course.dataset}'s labels (at most a split's count of each class)")
    classes = obs.served_classes if obs.served_classes is not None else np.zeros(0, dtype=np.int64)
    if classes.ndim != 1 or not np.issubdtype(classes.dtype, np.integer):
        return {"requirement": requirement, "ok": False, "got": f"labels recorded as {classes.dtype} of shape "
                                                               f"{list(classes.shape)}, not one class index each"}
    if classes.size != sum(obs.batch_sizes):
        return {"requirement": requirement, "ok": False,
                "got": f"{classes.size:,} labels recorded for {sum(obs.batch_sizes):,} samples served"}
    if split:
        return {"requirement": requirement, **the_whole_split(classes, course, split, max(obs.batch_sizes, default=0))}
    return {"requirement": requirement, **within_a_split(classes, course)}


def _pairs_row(obs: LoaderObservation, drop_last: bool | None) -> dict[str, Any]:
    """Every sample of the second pass that the first pass served comes with the label it had
    there; without ``drop_last``, both passes also serve the same samples (a permutation)."""
    requirement = ("each sample keeps its own label on a second pass" if drop_last else
                   "a second pass serves the same samples, each with its own label")
    if len(obs.sample_hashes) != 2 or obs.sample_hashes[0].size == 0:
        return {"requirement": requirement, "got": "no (tensor, tensor) batches to compare", "ok": False}
    first, second = obs.sample_hashes
    labels_of = defaultdict(set)
    for sample, label in zip(first.tolist(), obs.label_hashes[0].tolist()):
        labels_of[sample].add(label)
    seen_again = [(s, label) for s, label in zip(second.tolist(), obs.label_hashes[1].tolist()) if s in labels_of]
    relabelled = sum(1 for s, label in seen_again if label not in labels_of[s])
    problems = [f"{relabelled:,} of {len(seen_again):,} samples came with another label than on the first pass"] \
        if relabelled else []
    if not drop_last and not (first.size == second.size and np.array_equal(np.sort(first), np.sort(second))):
        problems.append(f"{np.setdiff1d(second, first).size:,} of the second pass's {second.size:,} samples "
                        f"never occurred in the first ({first.size:,} served there)")
    return {"requirement": requirement, "got": "; ".join(problems) or f"yes, {second.size:,} samples",
            "ok": not problems and bool(seen_again)}


def _drop_last_row(drop_last: bool, batch_size: int | None, obs: LoaderObservation) -> dict[str, Any]:
    served = sum(obs.batch_sizes)
    n = obs.dataset_length
    if drop_last:
        expected = None if n is None or not batch_size else n - n % batch_size
        requirement = "a pass serves only full batches (the last partial batch dropped)"
    else:
        expected = n
        requirement = "a pass serves every sample of loader.dataset (the last partial batch kept)"
    if n is None:
        return {"requirement": requirement, "got": f"{served:,} samples; loader.dataset has no length", "ok": False}
    return {"requirement": requirement, "got": f"{served:,} of {n:,} samples", "ok": served == expected}


# ================================================================ the ``batches`` form
#
# A batching class such as custom-ops'
# ``Dataset(samples, labels, batch_size)``, where ``ds[i]`` is the i-th batch, ``len(ds)`` the number
# of batches and ``ds.shuffle()`` puts samples and labels, together, in a new random order.
#
# The probe builds the class itself from harness-made data in which every sample says who it is:
# sample ``i`` of ``N`` is an image filled with the value ``(i + 1) / (N + 1)``, and its label is a
# class drawn from the rubric's seed (``given_classes``). It reads every batch twice (the same index
# must give the same batch), before and after ``shuffle()``, and records what was served: each
# read's structure and, for a pair of tensors, their values. ``len`` is also taken of a second
# instance built with a multiple of the batch size, so both off-by-one mistakes show.
#
# Everything else happens on the host: it decodes which given sample each row is and which class
# each label row encodes, compares the two reads of each batch, and draws the given labels from
# the seed itself (a ``HarnessSeed``), so a record that claims a sample kept its label has to serve
# that sample's values with that label's row. The run's only unverified word is the two lengths
# and the structures' type names.


PLACEHOLDERS = ("$samples", "$labels", "$batch_size")
PAIRS = ("tuple(torch.Tensor, torch.Tensor)", "list(torch.Tensor, torch.Tensor)")
# A read's values are kept up to this many times the elements of every given sample together: a
# batch far larger than the whole data set is wrong anyway, and must not fill the run's output.
MAX_VALUES_FACTOR = 4


class BatchesExpect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    args: list[Any] = Field(list(PLACEHOLDERS), description="positional arguments the class is called with; "
                                 "`$samples`, `$labels` and `$batch_size` stand for the harness-made ones")
    sample_shape: list[int] = Field([1, 28, 28], description="shape of one sample")
    count: int = Field(50, ge=2, description="samples given; batch_size must not divide it (a last partial batch)")
    batch_size: int = Field(8, ge=1)
    classes: int = Field(10, ge=2)
    labels: Literal["one-hot", "index"] = Field("one-hot", description="how the labels are given, and expected back")
    shuffle: bool = Field(True, description="call shuffle() and check the new order as well")

    @model_validator(mode="after")
    def _last_batch_is_partial(self) -> "BatchesExpect":
        if self.count <= self.batch_size or self.count % self.batch_size == 0:
            raise ValueError(f"count ({self.count}) must be larger than batch_size ({self.batch_size}) and not a "
                             "multiple of it, so that the last partial batch is tested")
        return self


class BatchRead(BaseModel):
    """One read of one batch: its structure (``tuple(torch.Tensor, torch.Tensor)``) and, for a
    pair of tensors, the values served (``None`` where the values could not be kept)."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    structure: str
    samples: Array | None = None
    labels: Array | None = None


class BatchReading(BaseModel):
    """Every batch of one order: ``first[i]`` and ``second[i]`` are the two reads of batch i."""

    model_config = ConfigDict(extra="forbid", strict=True)
    first: list[BatchRead]
    second: list[BatchRead]


class BatchesObservation(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    length: int
    length_when_divisible: int
    before_shuffle: BatchReading
    after_shuffle: BatchReading | None = None


def given_classes(want: BatchesExpect, seed: int) -> np.ndarray:
    """The class of every given sample, drawn from ``seed``: the probe draws them from the run's
    seed, the host again from the rubric's, which is the same one."""
    return np.random.default_rng(seed).integers(0, want.classes, size=want.count)


# -- probe side


def observe_batches(cls: Any, ctx: ProbeContext, want: BatchesExpect) -> BatchesObservation:
    classes = given_classes(want, ctx.seed)
    divisible_count = want.count - want.count % want.batch_size
    ds = _build(cls, ctx, want, classes)
    divisible = _build(cls, ctx, want, classes[:divisible_count])
    with ctx.student_code(f"taking len() of the data set of {want.count} samples"):
        length = len(ds)
    with ctx.student_code(f"taking len() of a data set of {divisible_count} samples"):
        length_when_divisible = len(divisible)
    before = _read_all(ds, ctx, want, length, "")
    after = None
    if want.shuffle:
        with ctx.student_code("calling shuffle()"):
            ds.shuffle()
        after = _read_all(ds, ctx, want, length, " after shuffle()")
    return BatchesObservation(length=length, length_when_divisible=length_when_divisible,
                              before_shuffle=before, after_shuffle=after)


def _build(cls: Any, ctx: ProbeContext, want: BatchesExpect, classes: np.ndarray) -> Any:
    """An instance made from fresh tensors: sample i filled with (i + 1) / (count + 1)."""
    import torch

    n = len(classes)
    fill = (torch.arange(n, dtype=torch.float64) + 1) / (want.count + 1)
    samples = fill.float().reshape(n, *[1] * len(want.sample_shape)).expand(n, *want.sample_shape).clone()
    index_labels = torch.as_tensor(classes, dtype=torch.int64)
    one_hot = want.labels == "one-hot"
    labels = torch.nn.functional.one_hot(index_labels, want.classes).float() if one_hot else index_labels
    given = {"$samples": samples, "$labels": labels, "$batch_size": want.batch_size}
    args = [given.get(a, a) if isinstance(a, str) else a for a in want.args]
    with ctx.student_code(f"building {getattr(cls, '__name__', 'the class')} from {n} samples, "
                          f"batch size {want.batch_size}"):
        return cls(*args)


def _read_all(ds: Any, ctx: ProbeContext, want: BatchesExpect, length: int, when: str) -> BatchReading:
    """Read batches 0 .. len-1 (at most one more than the right count), each twice. The first read
    is copied out before the second, in case the batch is a view the second read changes."""
    reading = BatchReading(first=[], second=[])
    limit = MAX_VALUES_FACTOR * want.count * math.prod(want.sample_shape)
    for index in range(min(length, math.ceil(want.count / want.batch_size) + 1)):
        during = f"reading batch {index} of {length}{when}"
        with ctx.student_code(during):
            batch = ds[index]
        reading.first.append(_served(batch, limit))
        with ctx.student_code(during + " a second time"):
            reading.second.append(_served(ds[index], limit))
    return reading


def _served(batch: Any, limit: int) -> BatchRead:
    parts = list(batch) if type(batch) in (tuple, list) else [batch]
    read = BatchRead(structure=f"{type_name(batch)}({', '.join(type_name(p) for p in parts)})")
    if len(parts) == 2 and is_plain_tensor(parts[0]) and is_plain_tensor(parts[1]):
        read.samples, read.labels = _values(parts[0], limit), _values(parts[1], limit)
    return read


def _values(tensor: Any, limit: int) -> np.ndarray | None:
    """A copy of the tensor's values as numbers the boundary carries, or ``None`` (too many, or
    not numbers: complex)."""
    array = as_array(tensor)
    if array is None or array.size > limit or array.dtype.kind not in "biuf":
        return None
    return np.array(array, dtype=np.uint8 if array.dtype.kind == "b" else array.dtype.newbyteorder("="))


# -- host side


class _Decoded:
    """One order's batches as the host reads them: per batch (first read), which given sample each
    row is (-1: none of them), which class each label row encodes (-1: none), and the row shape."""

    def __init__(self, reading: BatchReading, count: int, labels: LabelSummary) -> None:
        self.structures = [read.structure for read in reading.first]
        self.row_shapes: list[list[int]] = []
        self.sample_ids: list[list[int]] = []
        self.label_classes: list[list[int]] = []
        for read in reading.first:
            pair = read.structure in PAIRS and read.samples is not None and read.labels is not None
            samples, batch_labels = (read.samples, read.labels) if pair else (np.zeros(0), np.zeros(0))
            self.row_shapes.append(list(samples.shape[1:]) if pair else [])
            self.sample_ids.append(identify_samples(samples, count) if pair else [])
            self.label_classes.append(label_classes(batch_labels) if pair and batch_labels.ndim else [])
            if pair:
                labels.add(batch_labels)
        self.changed_on_reread = [b for b, (one, two) in enumerate(zip(reading.first, reading.second))
                                  if not _same_read(one, two)]


def _same_read(one: BatchRead, two: BatchRead) -> bool:
    return one.structure == two.structure and _same_values(one.samples, two.samples) \
        and _same_values(one.labels, two.labels)


def _same_values(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def identify_samples(rows: np.ndarray, count: int) -> list[int]:
    """Which harness-made sample each row is, from its fill value; -1 where a row is not one of
    them (values changed, or not all the same)."""
    if rows.ndim == 0 or len(rows) == 0:
        return []
    flat = rows.reshape(len(rows), -1).astype(np.float64)
    if flat.shape[1] == 0:
        return [-1] * len(rows)
    with np.errstate(invalid="ignore", over="ignore"):
        value = flat.mean(axis=1)
        ids = np.rint(np.nan_to_num(value, nan=-1.0, posinf=-1.0, neginf=-1.0) * (count + 1)).astype(np.int64) - 1
        uniform = (flat.max(axis=1) - flat.min(axis=1)) < 1e-6
        exact = np.abs(value - (ids + 1) / (count + 1)) < 1e-6
    return [int(i) if ok else -1 for i, ok in zip(ids, uniform & exact & (ids >= 0) & (ids < count))]


def batches_requirements(want: BatchesExpect, obs: BatchesObservation, seed: int) -> list[dict[str, Any]]:
    """The contract's rows, from the values the run served and the given labels drawn from ``seed``
    (the host's: the rubric's)."""
    n, size = want.count, want.batch_size
    given = [int(c) for c in given_classes(want, seed)]
    batches, divisible = math.ceil(n / size), n - n % size
    labels = LabelSummary()
    before = _Decoded(obs.before_shuffle, n, labels)
    after = _Decoded(obs.after_shuffle, n, labels) if want.shuffle and obs.after_shuffle is not None else None
    rows = [
        {"requirement": f"len() counts batches: ceil({n} / {size}) = {batches}, and {divisible // size} "
                        f"for {divisible} samples", "got": f"{obs.length} and {obs.length_when_divisible}",
         "ok": (obs.length, obs.length_when_divisible) == (batches, divisible // size)},
        _structure_row(want, before),
        _sizes_row(want, before),
        _problems_row("every sample is served exactly once", _coverage_problems(before, n)),
        _problems_row("each sample comes with its own label", _label_problems(before, given)),
    ]
    if want.labels == "one-hot":
        rows.append({"requirement": one_hot_requirement(want.classes), "got": labels.describe(),
                     "ok": labels.is_one_hot(want.classes)})
    rows.append(_repeat_row("the same index gives the same batch", before))
    if after is not None:
        moved = _flat(after.sample_ids) != _flat(before.sample_ids)
        rows.append({"requirement": "shuffle() changes the order of the samples",
                     "got": "a new order" if moved else "the same order after shuffle()", "ok": moved})
        rows.append(_problems_row("after shuffle(): every sample served once, with its own label",
                                  _coverage_problems(after, n) + _label_problems(after, given)))
        rows.append(_repeat_row("after shuffle(): the same index gives the same batch", after))
    return rows


def _structure_row(want: BatchesExpect, decoded: _Decoded) -> dict[str, Any]:
    shapes = sorted({format_shape(s) for s, st in zip(decoded.row_shapes, decoded.structures) if st in PAIRS})
    odd = sorted(set(decoded.structures) - set(PAIRS))
    ok = bool(decoded.structures) and not odd and shapes == [format_shape(want.sample_shape)]
    got = "; ".join(odd + [f"samples of shape {s}" for s in shapes]) or "no batches"
    return {"requirement": f"batches are (samples, labels) tensor pairs, samples of shape "
                           f"{format_shape(want.sample_shape)}", "got": got, "ok": ok}


def _sizes_row(want: BatchesExpect, decoded: _Decoded) -> dict[str, Any]:
    sizes = [len(ids) for ids in decoded.sample_ids]
    full, rest = divmod(want.count, want.batch_size)
    shown = ", ".join(str(s) for s in sizes[:12]) + (", ..." if len(sizes) > 12 else "")
    return {"requirement": f"batches of {want.batch_size}, the last holding the remaining {rest}",
            "got": f"sizes [{shown}]", "ok": sizes == [want.batch_size] * full + [rest]}


def _coverage_problems(decoded: _Decoded, count: int) -> list[str]:
    ids = [i for i in _flat(decoded.sample_ids) if i >= 0]
    served = np.bincount(np.array(ids, dtype=np.int64), minlength=count) if ids else np.zeros(count, dtype=np.int64)
    foreign = len(_flat(decoded.sample_ids)) - len(ids)
    problems = []
    if (missing := int(np.sum(served == 0))):
        problems.append(f"{missing} of {count} samples never served")
    if (repeated := int(np.sum(served > 1))):
        problems.append(f"{repeated} served more than once")
    if foreign:
        problems.append(f"{foreign} rows are not samples given to the class (values changed?)")
    return problems


def _label_problems(decoded: _Decoded, given: list[int]) -> list[str]:
    pairs = [(i, c) for ids, classes in zip(decoded.sample_ids, decoded.label_classes)
             for i, c in zip(ids, classes + [-1] * (len(ids) - len(classes))) if i >= 0]
    wrong = sum(1 for i, c in pairs if c != given[i])
    return [f"{wrong} of {len(pairs)} samples came with a label other than their own"] if wrong else []


def _problems_row(requirement: str, problems: list[str]) -> dict[str, Any]:
    return {"requirement": requirement, "got": "; ".join(problems) or "yes", "ok": not problems}


def _repeat_row(requirement: str, decoded: _Decoded) -> dict[str, Any]:
    changed = decoded.changed_on_reread
    got = f"batch {changed[0]} differed on a second read ({len(changed)} of {len(decoded.structures)} batches)" \
        if changed else "same batches"
    return {"requirement": requirement, "got": got, "ok": not changed and bool(decoded.structures)}


def _flat(nested: list[list[int]]) -> list[int]:
    return [v for inner in nested for v in inner]


# ================================================================ the check


class DatasetSpec(CheckSpec):
    kind: Literal["dataset"]
    target: str | list[str] = Field(description="the object to check; for `items`, a list of targets "
                                                "names several data sets (e.g. a train / val / test split)")
    call: Args | None = Field(None, description="call the target with these arguments first")
    items: ItemsExpect | None = None
    loader: LoaderExpect | None = None
    batches: BatchesExpect | None = Field(None, description="the target is a batching class the probe builds")
    max_batches: int = Field(5000, ge=1, description="stop iterating a loader after this many batches")

    @model_validator(mode="after")
    def _one_form(self) -> "DatasetSpec":
        if sum(form is not None for form in (self.items, self.loader, self.batches)) != 1:
            raise ValueError("give exactly one of `items`, `loader` or `batches`")
        if isinstance(self.target, list) and (self.items is None or self.call is not None):
            raise ValueError("a list of targets needs the `items` form and no `call`")
        if self.batches is not None and self.call is not None:
            raise ValueError("`batches` builds the class with `batches.args`; leave out `call`")
        return self

    def target_refs(self) -> list[str]:
        return list(self.target) if isinstance(self.target, list) else [self.target]


class DatasetObservation(Observation):
    """What the probe saw, under the name of the rubric's form."""

    items: ItemsObservation | None = None
    loader: LoaderObservation | None = None
    batches: BatchesObservation | None = None


def course_requirements(spec: DatasetSpec, obs: DatasetObservation, course: CourseData) -> list[dict[str, Any]]:
    """The rows that hold the run's account to the course's data (``CourseData``): untransformed
    items must be its images with their labels; the items hashed for ``disjoint`` (all of a data
    set, or evenly spaced ones) and a loader's first pass must serve no class more often than a
    split holds it, and with ``split:`` a pass that ran to its end (fewer batches than
    ``max_batches``) must serve that whole split."""
    if spec.items is not None and obs.items is not None:
        if course.image_labels and untransformed(spec.items):
            return [_course_images_row(n, ds, course) for n, ds in enumerate(obs.items.datasets, start=1)]
        if spec.items.disjoint:
            return [_course_split_row(n, ds, course) for n, ds in enumerate(obs.items.datasets, start=1)]
    if spec.loader is not None and obs.loader is not None:
        # a pass cut at max_batches served part of a split: held to "within a split" only
        whole = spec.loader.split if len(obs.loader.batch_sizes) < spec.max_batches else None
        return [_course_labels_row(obs.loader, course, whole)]
    return []


@register("dataset")
class Dataset(CheckKind):
    Spec = DatasetSpec
    Observation = DatasetObservation

    @staticmethod
    def made_from_seed(spec: DatasetSpec) -> bool:
        return spec.batches is not None  # the given samples' labels (given_classes)

    @staticmethod
    def host_truth(spec: DatasetSpec, data: "DataRoot") -> CourseData | None:
        if spec.batches is not None:
            return None  # the probe's own data, made from the seed
        return CourseData.read(data, with_images=spec.items is not None and untransformed(spec.items))

    @staticmethod
    def probe(spec: DatasetSpec, ctx: ProbeContext) -> DatasetObservation:
        if isinstance(spec.target, list):
            found = [ctx.resolve(key) for key in spec.target]
            described = f"{len(found)} targets"
            return DatasetObservation(items=observe_items(found, ctx, spec.items, described))  # type: ignore[arg-type]
        if spec.batches is not None:
            return DatasetObservation(batches=observe_batches(ctx.resolve(spec.target), ctx, spec.batches))
        obj = call_target(ctx, spec.target, spec.call) if spec.call is not None else ctx.resolve(spec.target)
        if spec.items is not None:
            return DatasetObservation(items=observe_items(obj, ctx, spec.items, type_name(obj)))
        return DatasetObservation(loader=observe_loader(obj, ctx, spec.loader, spec.max_batches))  # type: ignore[arg-type]

    @staticmethod
    def judge(spec: DatasetSpec, obs: DatasetObservation, expected: HarnessSeed | None) -> Verdict:
        rows: list[dict[str, Any]]
        if spec.items is not None and obs.items is not None:
            rows = items_requirements(spec.items, obs.items)
        elif spec.loader is not None and obs.loader is not None:
            rows = loader_requirements(spec.loader, obs.loader)
        elif spec.batches is not None and obs.batches is not None:
            rows = batches_requirements(spec.batches, obs.batches, HarnessSeed.of(spec, expected))
        else:
            return Verdict.failed("the probe observed another form than the rubric asks for")
        against_course = course_requirements(spec, obs, expected) if isinstance(expected, CourseData) else []
        verdict = Verdict.from_requirements(rows + against_course)
        if any(not row["ok"] for row in against_course):
            # an honest loader may serve more of a class than the files hold (augmented copies
            # added to the data): the row fails, and a person sees why
            verdict.review = (f"what the run served does not match the {expected.dataset} files the host holds: "
                              "a record made up rather than read from the data, or data the student added to "
                              "(augmented copies); a person may decide")
        return verdict
