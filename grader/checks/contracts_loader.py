"""The ``loader`` form of the ``dataset`` check: anything that yields ``(inputs, targets)`` batches.

The probe iterates the loader twice. The first pass records batch sizes, types and value ranges;
the second pass tells whether the order changes between passes (the first batch's fingerprint)
and, when the rubric asks for ``keeps_pairs``, hashes every sample and label of both passes, so
the host can verify that shuffling moved samples together with their own labels and lost or
repeated none.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.checks.base import ProbeContext
from grader.checks.capture import JUDGE_ONLY
from grader.checks.common import is_plain_tensor, type_name
from grader.checks.contracts_samples import LabelSummary, as_array, one_hot_requirement, row_hashes
from grader.observations import Array


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

    @model_validator(mode="after")
    def _drop_last_needs_a_batch_size(self) -> "LoaderExpect":
        if self.drop_last and self.batch_size is None:
            raise ValueError("`drop_last: true` needs `batch_size` (how many samples a full batch holds)")
        return self


class LoaderObservation(BaseModel):
    """One loader as the probe saw it. With ``keeps_pairs``, ``sample_hashes`` and ``label_hashes``
    hold one array per pass: the hash of every sample and of its label, in the order served."""

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
    sample_hashes: list[Array] = []
    label_hashes: list[Array] = []


# ---------------------------------------------------------------- probe side


def observe_loader(loader: Any, ctx: ProbeContext, want: LoaderExpect, max_batches: int) -> LoaderObservation:
    import torch

    obs = LoaderObservation(returned_type=type_name(loader))
    inputs_seen, targets_seen, structures = set(), set(), set()
    served_samples: list[list[int]] = [[], []]
    served_labels: list[list[int]] = [[], []]
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
                if torch.is_floating_point(y) and not bool(torch.all(y == torch.round(y))):
                    obs.targets_integral = False
    obs.batch_structure, obs.input_types, obs.target_types = sorted(structures), sorted(inputs_seen), sorted(targets_seen)
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


# ---------------------------------------------------------------- host side


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
