"""The ``batches`` form of the ``dataset`` check: a batching class such as custom-ops'
``Dataset(samples, labels, batch_size)``, where ``ds[i]`` is the i-th batch, ``len(ds)`` the number
of batches and ``ds.shuffle()`` puts samples and labels, together, in a new random order.

The probe builds the class itself from harness-made data in which every sample says who it is:
sample ``i`` of ``N`` is an image filled with the value ``(i + 1) / (N + 1)``, and its label is a
class drawn from the rubric's seed (``given_classes``). It reads every batch twice (the same index
must give the same batch), before and after ``shuffle()``, and records what was served: each
read's structure and, for a pair of tensors, their values. ``len`` is also taken of a second
instance built with a multiple of the batch size, so both off-by-one mistakes show.

Everything else happens on the host: it decodes which given sample each row is and which class
each label row encodes, compares the two reads of each batch, and draws the given labels from
the seed itself (a ``HarnessSeed``), so a record that claims a sample kept its label has to serve
that sample's values with that label's row. The run's only unverified word is the two lengths
and the structures' type names.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.checks.base import ProbeContext
from grader.checks.common import format_shape, is_plain_tensor, type_name
from grader.checks.contracts_samples import LabelSummary, as_array, label_classes, one_hot_requirement
from grader.observations import Array

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


# ---------------------------------------------------------------- probe side


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


# ---------------------------------------------------------------- host side


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
    return one.structure == two.structure and all(
        (a is None) == (b is None) and (a is None or (a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")))
        for a, b in ((one.samples, two.samples), (one.labels, two.labels)))


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
