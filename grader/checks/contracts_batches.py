"""The ``batches`` form of the ``dataset`` check: a batching class such as custom-ops'
``Dataset(samples, labels, batch_size)``, where ``ds[i]`` is the i-th batch, ``len(ds)`` the number
of batches and ``ds.shuffle()`` puts samples and labels, together, in a new random order.

The probe builds the class itself from harness-made data in which every sample says who it is:
sample ``i`` of ``N`` is an image filled with the value ``(i + 1) / (N + 1)``, and its label is a
random class. Reading the batches back, the probe decodes which samples each batch holds and
which class each label row encodes, so the host can verify exactly that every sample is served
once, each with its own label, before and after ``shuffle()``. Each batch is read twice (the same
index must give the same batch), and ``len`` is also taken of a second instance built with a
multiple of the batch size, so both off-by-one mistakes show.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.checks.base import ProbeContext
from grader.checks.common import format_shape, is_plain_tensor, tensor_shape, type_name
from grader.checks.contracts_samples import LabelSummary, as_array, item_hash, label_classes, one_hot_requirement

PLACEHOLDERS = ("$samples", "$labels", "$batch_size")


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


class BatchReading(BaseModel):
    """Every batch of one order, as decoded: per batch, which given sample each row is (-1: none of
    them), which class each label row encodes (-1: none), and the hashes of a first and second read."""

    model_config = ConfigDict(extra="forbid", strict=True)
    structures: list[str]
    row_shapes: list[list[int]]
    sample_ids: list[list[int]]
    label_classes: list[list[int]]
    digests: list[int]
    reread_digests: list[int]


class BatchesObservation(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    length: int
    length_when_divisible: int
    given_classes: list[int]
    labels: LabelSummary
    before_shuffle: BatchReading
    after_shuffle: BatchReading | None = None


# ---------------------------------------------------------------- probe side


def observe_batches(cls: Any, ctx: ProbeContext, want: BatchesExpect) -> BatchesObservation:
    classes = np.random.default_rng(ctx.seed).integers(0, want.classes, size=want.count)
    divisible_count = want.count - want.count % want.batch_size
    ds = _build(cls, ctx, want, classes)
    divisible = _build(cls, ctx, want, classes[:divisible_count])
    with ctx.student_code(f"taking len() of the data set of {want.count} samples"):
        length = len(ds)
    with ctx.student_code(f"taking len() of a data set of {divisible_count} samples"):
        length_when_divisible = len(divisible)
    labels = LabelSummary()
    before = _read_all(ds, ctx, want, length, labels, "")
    after = None
    if want.shuffle:
        with ctx.student_code("calling shuffle()"):
            ds.shuffle()
        after = _read_all(ds, ctx, want, length, labels, " after shuffle()")
    return BatchesObservation(length=length, length_when_divisible=length_when_divisible,
                              given_classes=[int(c) for c in classes], labels=labels,
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


def _read_all(ds: Any, ctx: ProbeContext, want: BatchesExpect, length: int, labels: LabelSummary,
              when: str) -> BatchReading:
    """Read batches 0 .. len-1 (at most one more than the right count), each twice. The first read
    is fully described before the second, in case the batch is a view the second read changes."""
    reading = BatchReading(structures=[], row_shapes=[], sample_ids=[], label_classes=[], digests=[], reread_digests=[])
    for index in range(min(length, math.ceil(want.count / want.batch_size) + 1)):
        during = f"reading batch {index} of {length}{when}"
        with ctx.student_code(during):
            batch = ds[index]
        _describe_batch(batch, reading, labels, want.count)
        with ctx.student_code(during + " a second time"):
            reading.reread_digests.append(item_hash(ds[index]))
    return reading


def _describe_batch(batch: Any, reading: BatchReading, labels: LabelSummary, count: int) -> None:
    reading.digests.append(item_hash(batch))
    parts = list(batch) if type(batch) in (tuple, list) else [batch]
    reading.structures.append(f"{type_name(batch)}({', '.join(type_name(p) for p in parts)})")
    x, y = (parts + [None, None])[:2]
    if len(parts) != 2 or not (is_plain_tensor(x) and is_plain_tensor(y)):
        reading.row_shapes.append([])
        reading.sample_ids.append([])
        reading.label_classes.append([])
        return
    reading.row_shapes.append(tensor_shape(x)[1:])
    reading.sample_ids.append(identify_samples(as_array(x), count))  # type: ignore[arg-type]
    label_array = as_array(y)
    labels.add(label_array)  # type: ignore[arg-type]
    reading.label_classes.append(label_classes(label_array))  # type: ignore[arg-type]


def identify_samples(rows: np.ndarray, count: int) -> list[int]:
    """Which harness-made sample each row is, from its fill value; -1 where a row is not one of
    them (values changed, or not all the same)."""
    if rows.ndim == 0 or len(rows) == 0:
        return []
    flat = rows.reshape(len(rows), -1).astype(np.float64)
    if flat.shape[1] == 0:
        return [-1] * len(rows)
    value = flat.mean(axis=1)
    ids = np.rint(value * (count + 1)).astype(np.int64) - 1
    uniform = (flat.max(axis=1) - flat.min(axis=1)) < 1e-6
    exact = np.abs(value - (ids + 1) / (count + 1)) < 1e-6
    return [int(i) if ok else -1 for i, ok in zip(ids, uniform & exact & (ids >= 0) & (ids < count))]


# ---------------------------------------------------------------- host side


def batches_requirements(want: BatchesExpect, obs: BatchesObservation) -> list[dict[str, Any]]:
    n, size = want.count, want.batch_size
    batches, divisible = math.ceil(n / size), n - n % size
    before = obs.before_shuffle
    rows = [
        {"requirement": f"len() counts batches: ceil({n} / {size}) = {batches}, and {divisible // size} "
                        f"for {divisible} samples", "got": f"{obs.length} and {obs.length_when_divisible}",
         "ok": (obs.length, obs.length_when_divisible) == (batches, divisible // size)},
        _structure_row(want, before),
        _sizes_row(want, before),
        _problems_row("every sample is served exactly once", _coverage_problems(before, n)),
        _problems_row("each sample comes with its own label", _label_problems(before, obs.given_classes)),
    ]
    if want.labels == "one-hot":
        rows.append({"requirement": one_hot_requirement(want.classes), "got": obs.labels.describe(),
                     "ok": obs.labels.is_one_hot(want.classes)})
    rows.append(_repeat_row("the same index gives the same batch", before))
    if want.shuffle and obs.after_shuffle is not None:
        after = obs.after_shuffle
        moved = _flat(after.sample_ids) != _flat(before.sample_ids)
        rows.append({"requirement": "shuffle() changes the order of the samples",
                     "got": "a new order" if moved else "the same order after shuffle()", "ok": moved})
        rows.append(_problems_row("after shuffle(): every sample served once, with its own label",
                                  _coverage_problems(after, n) + _label_problems(after, obs.given_classes)))
        rows.append(_repeat_row("after shuffle(): the same index gives the same batch", after))
    return rows


def _structure_row(want: BatchesExpect, reading: BatchReading) -> dict[str, Any]:
    pairs = {"tuple(torch.Tensor, torch.Tensor)", "list(torch.Tensor, torch.Tensor)"}
    shapes = sorted({format_shape(s) for s, st in zip(reading.row_shapes, reading.structures) if st in pairs})
    odd = sorted(set(reading.structures) - pairs)
    ok = bool(reading.structures) and not odd and shapes == [format_shape(want.sample_shape)]
    got = "; ".join(odd + [f"samples of shape {s}" for s in shapes]) or "no batches"
    return {"requirement": f"batches are (samples, labels) tensor pairs, samples of shape "
                           f"{format_shape(want.sample_shape)}", "got": got, "ok": ok}


def _sizes_row(want: BatchesExpect, reading: BatchReading) -> dict[str, Any]:
    sizes = [len(ids) for ids in reading.sample_ids]
    full, rest = divmod(want.count, want.batch_size)
    shown = ", ".join(str(s) for s in sizes[:12]) + (", ..." if len(sizes) > 12 else "")
    return {"requirement": f"batches of {want.batch_size}, the last holding the remaining {rest}",
            "got": f"sizes [{shown}]", "ok": sizes == [want.batch_size] * full + [rest]}


def _coverage_problems(reading: BatchReading, count: int) -> list[str]:
    ids = [i for i in _flat(reading.sample_ids) if i >= 0]
    served = np.bincount(np.array(ids, dtype=np.int64), minlength=count) if ids else np.zeros(count, dtype=np.int64)
    foreign = len(_flat(reading.sample_ids)) - len(ids)
    problems = []
    if (missing := int(np.sum(served == 0))):
        problems.append(f"{missing} of {count} samples never served")
    if (repeated := int(np.sum(served > 1))):
        problems.append(f"{repeated} served more than once")
    if foreign:
        problems.append(f"{foreign} rows are not samples given to the class (values changed?)")
    return problems


def _label_problems(reading: BatchReading, given: list[int]) -> list[str]:
    pairs = [(i, c) for i, c in zip(_flat(reading.sample_ids), _flat(reading.label_classes)) if i >= 0]
    wrong = sum(1 for i, c in pairs if c != given[i])
    return [f"{wrong} of {len(pairs)} samples came with a label other than their own"] if wrong else []


def _problems_row(requirement: str, problems: list[str]) -> dict[str, Any]:
    return {"requirement": requirement, "got": "; ".join(problems) or "yes", "ok": not problems}


def _repeat_row(requirement: str, reading: BatchReading) -> dict[str, Any]:
    changed = [b for b, (a, r) in enumerate(zip(reading.digests, reading.reread_digests)) if a != r]
    got = f"batch {changed[0]} differed on a second read ({len(changed)} of {len(reading.digests)} batches)" \
        if changed else "same batches"
    return {"requirement": requirement, "got": got, "ok": not changed and bool(reading.digests)}


def _flat(nested: list[list[int]]) -> list[int]:
    return [v for inner in nested for v in inner]
