"""``dataset``: contracts of a data-set function, a data loader or a batching class.

Three forms, one per rubric entry; each lives in its own module (observe on the probe side,
requirement rows on the host side):

* ``items`` (``contracts_items``) — data sets indexed item by item: returned by a call
  (``datasets(transform=None)``), one target, or several targets (``[train_set, val_set,
  test_set]``). Length, item types, the class they derive from, the same item for the same index,
  and data sets that share no sample.
* ``loader`` (``contracts_loader``) — anything yielding ``(inputs, targets)`` batches, iterated
  twice: batch sizes, types, value ranges, one-hot targets, the last partial batch, whether the
  order changes between passes and whether samples keep their own labels when it does.
* ``batches`` (``contracts_batches``) — a class such as custom-ops' ``Dataset(samples, labels,
  batch_size)``; the probe builds it from harness-made samples that identify themselves and
  records the values each batch served, so the host checks ``len``, batch sizes, the last partial
  batch, determinism and ``shuffle()`` keeping samples with their labels exactly, on labels it
  draws from the rubric's seed itself (a ``HarnessSeed``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, HarnessSeed, Observation, ProbeContext, Verdict
from grader.checks.common import Args, call_target, type_name
from grader.checks.contracts_batches import BatchesExpect, BatchesObservation, batches_requirements, observe_batches
from grader.checks.contracts_items import ItemsExpect, ItemsObservation, items_requirements, observe_items
from grader.checks.contracts_loader import LoaderExpect, LoaderObservation, loader_requirements, observe_loader
from grader.errors import GraderError


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


@register("dataset")
class Dataset(CheckKind):
    Spec = DatasetSpec
    Observation = DatasetObservation

    @staticmethod
    def made_from_seed(spec: DatasetSpec) -> bool:
        return spec.batches is not None  # the given samples' labels (contracts_batches.given_classes)

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
            if expected is None:
                raise GraderError(f"no host seed for dataset check {spec.id!r}", where="grader.pipeline",
                                  hint="the plan's host truths (grader.profiles.plan(...).expected) must reach judge_all")
            rows = batches_requirements(spec.batches, obs.batches, expected.seed)
        else:
            return Verdict.failed("the probe observed another form than the rubric asks for")
        return Verdict.from_requirements(rows)
