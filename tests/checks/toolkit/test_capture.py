"""The capture view (grader.checks.toolkit.capture): what of a spec reaches the probe, for every kind."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from grader import checks, observations, rubric
from grader.checks import REGISTRY
from grader.checks.accuracy import AccuracySpec, PlannedData
from grader.checks.base import CheckKind, CheckSpec, Observation, ProbeContext
from grader.checks.toolkit.capture import JUDGE_ONLY, capture_view, from_capture_view, judge_only_fields
from grader.paths import rubric_dirs
from grader.sandbox import probe_side

BASE_JUDGE_ONLY = {"title", "points", "visibility", "requires", "partial_credit"}


def bundled_specs() -> list[CheckSpec]:
    paths = sorted({p for d in rubric_dirs() if d.is_dir() for p in d.glob("*.yaml") if p.name.count(".") == 1})
    return [spec for path in paths for spec in rubric.load(path).model.checks]


SPECS = bundled_specs()


def samples(kind: str) -> list[CheckSpec]:
    return [spec for spec in SPECS if spec.kind == kind]


def hidden_fields_left(model: BaseModel, view: Any, where: str) -> list[str]:
    """Judge-only fields of ``model`` (and of the models nested in it) that ``view`` still holds."""
    found = [f"{where}.{name}" for name in judge_only_fields(type(model)) if name in view]
    for name in type(model).model_fields:
        if name in judge_only_fields(type(model)) or name not in view:
            continue
        value, seen = getattr(model, name), view[name]
        pairs = [(value, seen)] if isinstance(value, BaseModel) else \
            list(zip(value, seen)) if isinstance(value, (list, tuple)) else \
            [(value[k], seen[k]) for k in value] if isinstance(value, dict) else []
        found += [hit for v, s in pairs if isinstance(v, BaseModel) for hit in hidden_fields_left(v, s, f"{where}.{name}")]
    return found


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_kind_sends_its_probe_no_judge_only_field_and_rebuilds_from_the_view(kind):
    found = samples(kind)
    assert found, f"no bundled rubric has a {kind} check to sample"
    for spec in found:
        view = capture_view(spec)
        assert view["id"] == spec.id and view["kind"] == kind
        assert hidden_fields_left(spec, view, spec.id) == []
        rebuilt = from_capture_view(REGISTRY[kind].Spec, view)
        assert type(rebuilt) is REGISTRY[kind].Spec
        assert capture_view(rebuilt) == view  # nothing the probe reads is lost on the way
        for name in judge_only_fields(type(spec)):
            with pytest.raises(AttributeError, match="judge-only"):
                getattr(rebuilt, name)


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_the_base_fields_are_judge_only_in_every_kind(kind):
    assert BASE_JUDGE_ONLY <= judge_only_fields(REGISTRY[kind].Spec)
    assert not {"id", "kind", "target"} & judge_only_fields(REGISTRY[kind].Spec)


def test_a_view_carrying_a_judge_only_field_is_refused():
    spec = samples("answer")[0]
    with pytest.raises(ValidationError):
        from_capture_view(type(spec), capture_view(spec) | {"expected": 42})


def test_nested_judge_only_fields_stay_on_the_host():
    loader_checks = [s for s in samples("dataset") if s.loader is not None]  # type: ignore[attr-defined]
    assert loader_checks
    spec = loader_checks[0]
    view = capture_view(spec)
    assert "batch_size" not in view["loader"] and "keeps_pairs" in view["loader"]
    rebuilt = from_capture_view(type(spec), view)
    assert rebuilt.loader.keeps_pairs == spec.loader.keeps_pairs  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        rebuilt.loader.batch_size  # type: ignore[attr-defined]


def test_the_planned_run_of_an_accuracy_check_reaches_the_probe():
    spec = samples("accuracy")[0]
    assert isinstance(spec, AccuracySpec)
    planned = spec.model_copy(update={"run": PlannedData(profile="quick", dataset="mnist", root="/data", subset_seed=1, train_seed=1)})
    view = capture_view(planned)
    assert view["run"]["root"] == "/data" and "min_accuracy" not in view and "threshold" not in view
    assert from_capture_view(AccuracySpec, view).run == planned.run


class PeekingSpec(CheckSpec):
    kind: Literal["peeking"]
    answer: int = Field(7, json_schema_extra=JUDGE_ONLY)


class PeekingObservation(Observation):
    seen: int


class Peeking(CheckKind):
    """A faulty kind whose probe reads the expected answer."""

    name = "peeking"
    Spec = PeekingSpec
    Observation = PeekingObservation

    @staticmethod
    def probe(spec: PeekingSpec, ctx: ProbeContext) -> PeekingObservation:
        return PeekingObservation(seen=spec.answer)


def test_a_probe_reading_a_judge_only_field_fails_loudly(monkeypatch):
    monkeypatch.setitem(checks.REGISTRY, "peeking", Peeking)
    spec = PeekingSpec(id="peek", kind="peeking", points=1)
    ctx = ProbeContext(namespaces=[], targets={})
    record = probe_side.probe_one(capture_view(spec), ctx, observations.ArrayWriter())
    assert record["status"] == "probe-error"
    assert "PeekingSpec.answer is judge-only" in record["error"]["message"]
