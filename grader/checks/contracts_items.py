"""The ``items`` form of the ``dataset`` check: data sets indexed item by item.

The data sets come from calling a function (``datasets(transform=None)`` returning train and
test), from one target, or from several targets (``[train_set, val_set, test_set]``). For each,
the probe takes ``len``, reads the first, middle and last item, and on request reads them again
(determinism) and hashes the samples of many items (so the host can tell whether the data sets
share samples: a train / validation / test split must not).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from grader.checks.base import ProbeContext
from grader.checks.capture import JUDGE_ONLY
from grader.checks.common import type_name
from grader.checks.contracts_samples import item_hash, value_hash
from grader.checks.defined import same_class
from grader.observations import Array


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
    """One data set as the probe saw it. ``item_hashes`` and ``reread_hashes`` hash the items read
    at the same indices on a first and a second read; ``sample_hashes`` hash the samples of many
    items (only when the rubric asks for disjoint data sets)."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    type: str
    length: int | None
    item_types: list[list[str]]
    classes: list[str] = []
    read_indices: list[int] = []
    item_hashes: list[int] = []
    reread_hashes: list[int] = []
    sample_hashes: Array | None = None


class ItemsObservation(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    returned_type: str
    datasets: list[DatasetInfo]


# ---------------------------------------------------------------- probe side


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
                       classes=[f"{c.__module__}.{c.__qualname__}" for c in type(ds).__mro__])
    if want.deterministic:
        info.item_hashes = [item_hash(item) for item in items]
        info.reread_hashes = [item_hash(_read(ds, i, number, ctx)) for i in picks]
    if want.disjoint:
        spaced = np.linspace(0, length - 1, num=min(length, want.hash_at_most)) if length else np.zeros(0)
        indices = np.unique(spaced.astype(int))
        info.sample_hashes = np.array([value_hash(_parts(_read(ds, int(i), number, ctx))[0]) for i in indices],
                                      dtype=np.int64)
    return info


def _read(ds: Any, index: int, number: int, ctx: ProbeContext) -> Any:
    with ctx.student_code(f"reading item {index} of data set {number}"):
        return ds[index]


def _parts(item: Any) -> list[Any]:
    return list(item) if type(item) in (tuple, list) else [item]


# ---------------------------------------------------------------- host side


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
