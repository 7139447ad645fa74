"""``dataset``: contracts of a data-set function or a data loader.

Two forms, one per rubric entry:

* ``items`` — call a function (e.g. ``datasets(transform=None)``) and look at the data sets it
  returns: how many, their length, the types of sampled items (``PIL.Image.Image``, ``int``).
* ``loader`` — iterate a loader (or anything yielding ``(inputs, targets)`` batches) twice and
  record batch sizes, types, value ranges and whether the order changes between passes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, Observation, ProbeContext, Verdict
from grader.checks.common import Args, call_target, is_plain_tensor, type_name


class ItemsExpect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    returns: int | None = Field(None, description="how many data sets the call returns (a tuple)")
    item_types: list[str] | None = Field(None, description="qualified type of each element of an item")
    min_length: int = Field(1, description="every returned data set has at least this many items")


class LoaderExpect(BaseModel):
    model_config = ConfigDict(extra="forbid")
    batch_size: int | None = Field(None, description="every batch but the last has this size")
    input_type: str | None = "torch.Tensor"
    target_type: str | None = "torch.Tensor"
    input_range: list[float] | None = Field(None, min_length=2, max_length=2, description="[min, max] of inputs")
    target_range: list[int] | None = Field(None, min_length=2, max_length=2,
                                           description="targets are integers in [min, max]")
    shuffled: bool | None = Field(None, description="true: order changes between passes; false: it never does")


class DatasetSpec(CheckSpec):
    kind: Literal["dataset"]
    target: str
    call: Args | None = Field(None, description="call the target with these arguments first")
    items: ItemsExpect | None = None
    loader: LoaderExpect | None = None
    max_batches: int = Field(5000, ge=1, description="stop iterating a loader after this many batches")

    @model_validator(mode="after")
    def _one_form(self) -> "DatasetSpec":
        if (self.items is None) == (self.loader is None):
            raise ValueError("give exactly one of `items` or `loader`")
        return self


class DatasetInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: str
    length: int | None
    item_types: list[list[str]]


class DatasetObservation(Observation):
    returned_type: str = ""
    datasets: list[DatasetInfo] = []
    batch_sizes: list[int] = []
    batch_structure: list[str] = []
    input_types: list[str] = []
    target_types: list[str] = []
    input_min: float | None = None
    input_max: float | None = None
    target_min: float | None = None
    target_max: float | None = None
    targets_integral: bool = True
    fingerprints: list[float] = []


@register("dataset")
class Dataset(CheckKind):
    Spec = DatasetSpec
    Observation = DatasetObservation

    @staticmethod
    def probe(spec: DatasetSpec, ctx: ProbeContext) -> DatasetObservation:
        obj = call_target(ctx, spec.target, spec.call) if spec.call is not None else ctx.resolve(spec.target)
        if spec.items is not None:
            return _observe_items(obj, ctx)
        return _observe_loader(obj, ctx, spec.max_batches)

    @staticmethod
    def judge(spec: DatasetSpec, obs: DatasetObservation, expected: None) -> Verdict:
        rows = _judge_items(spec.items, obs) if spec.items else _judge_loader(spec.loader, obs)  # type: ignore[arg-type]
        return Verdict.from_requirements(rows)


def _observe_items(obj: Any, ctx: ProbeContext) -> DatasetObservation:
    datasets = list(obj) if type(obj) in (tuple, list) else [obj]
    infos = []
    for ds in datasets:
        with ctx.student_code("taking the length of the data set"):
            length = len(ds)
        picks = sorted({0, length // 2, length - 1}) if length > 0 else []
        types = []
        for i in picks:
            with ctx.student_code(f"reading item {i} of the data set"):
                item = ds[i]
            parts = list(item) if type(item) in (tuple, list) else [item]
            types.append([type_name(p) for p in parts])
        infos.append(DatasetInfo(type=type_name(ds), length=length, item_types=types))
    return DatasetObservation(returned_type=type_name(obj), datasets=infos)


def _observe_loader(loader: Any, ctx: ProbeContext, max_batches: int) -> DatasetObservation:
    import torch

    obs = DatasetObservation(returned_type=type_name(loader))
    inputs_seen, targets_seen, structures = set(), set(), set()
    for pass_number in range(2):
        with ctx.student_code("iterating the data loader"):
            for index, batch in enumerate(loader):
                if index >= max_batches:
                    break
                if index == 0:
                    obs.fingerprints.append(_fingerprint(batch))
                if pass_number == 1:
                    break  # the second pass only tells whether the order changed
                structures.add(type_name(batch) + (f"[{len(batch)}]" if type(batch) in (tuple, list) else ""))
                if type(batch) not in (tuple, list) or len(batch) != 2:
                    continue
                x, y = batch
                inputs_seen.add(type_name(x))
                targets_seen.add(type_name(y))
                if not (is_plain_tensor(x) and is_plain_tensor(y)):
                    continue
                obs.batch_sizes.append(int(torch.Tensor.size(x, 0)))
                _update_range(obs, "input", x)
                _update_range(obs, "target", y)
                if torch.is_floating_point(y) and not bool(torch.all(y == torch.round(y))):
                    obs.targets_integral = False
    obs.batch_structure, obs.input_types, obs.target_types = sorted(structures), sorted(inputs_seen), sorted(targets_seen)
    return obs


def _update_range(obs: DatasetObservation, which: str, t: Any) -> None:
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


def _judge_items(want: ItemsExpect, obs: DatasetObservation) -> list[dict[str, Any]]:
    rows = [] if obs.datasets else [{"requirement": "returns at least one data set",
                                     "got": obs.returned_type, "ok": False}]
    if want.returns is not None:
        rows.append({"requirement": f"returns {want.returns} data sets", "got": f"{len(obs.datasets)} ({obs.returned_type})",
                     "ok": len(obs.datasets) == want.returns})
    for n, ds in enumerate(obs.datasets):
        rows.append({"requirement": f"data set {n + 1} has at least {want.min_length} items",
                     "got": str(ds.length), "ok": (ds.length or 0) >= want.min_length})
        if want.item_types is not None:
            wrong = [t for t in ds.item_types if t != want.item_types]
            got = f"({', '.join(wrong[0])})" if wrong else f"({', '.join(want.item_types)})"
            rows.append({"requirement": f"data set {n + 1} items are ({', '.join(want.item_types)})",
                         "got": got, "ok": not wrong and bool(ds.item_types)})
    return rows


def _judge_loader(want: LoaderExpect, obs: DatasetObservation) -> list[dict[str, Any]]:
    rows = []
    if obs.batch_structure != ["tuple[2]"] and obs.batch_structure != ["list[2]"]:
        return [{"requirement": "batches are (inputs, targets) pairs",
                 "got": ", ".join(obs.batch_structure) or "no batches", "ok": False}]
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
    if want.shuffled is not None:
        changed = len(obs.fingerprints) == 2 and obs.fingerprints[0] != obs.fingerprints[1]
        rows.append({"requirement": "shuffled every pass" if want.shuffled else "not shuffled",
                     "got": "order changes between passes" if changed else "same order on every pass",
                     "ok": changed == want.shuffled})
    return rows
