"""The expectation cache: keyed on what the probe gets and on the grader's own source."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from grader import references, source_hash


@pytest.fixture
def probed(monkeypatch, tmp_path) -> list[str]:
    """The ids of the checks the reference is probed for, with a cache of this test's own."""
    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    probe = references._probe_reference

    def counted(spec, ctx, rubric):
        calls.append(spec.id)
        return probe(spec, ctx, rubric)

    monkeypatch.setattr(references, "_probe_reference", counted)
    return calls


def plain(expectations: dict) -> dict:
    """Expectations as plain data (they hold numpy arrays, which ``==`` cannot compare whole)."""
    def convert(value):
        if isinstance(value, np.ndarray):
            return [value.dtype.str, value.tolist()]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        return value
    return {check: convert(obs.model_dump(mode="python")) for check, obs in expectations.items()}


def test_expectations_are_cached_until_the_source_changes(tiny_rubric, probed, monkeypatch):
    first = plain(references.expectations(tiny_rubric))
    assert sorted(probed) == ["answer", "net-params"]
    assert plain(references.expectations(tiny_rubric)) == first and len(probed) == 2  # from the cache
    monkeypatch.setattr(source_hash, "source_hash", lambda: "a-changed-probe")
    assert plain(references.expectations(tiny_rubric)) == first
    assert len(probed) == 4  # probed again by the changed grader


def test_a_new_title_or_points_reuses_the_expectation(tiny_rubric, probed):
    references.expectations(tiny_rubric)
    checks = [c.model_copy(update={"title": "renamed", "points": 9}) for c in tiny_rubric.model.checks]
    renamed = dataclasses.replace(tiny_rubric, model=tiny_rubric.model.model_copy(update={"checks": checks}))
    references.expectations(renamed)
    assert len(probed) == 2  # the probe gets neither, so the expectation is the same


def test_forget_makes_the_reference_probed_again(tiny_rubric, probed):
    references.expectations(tiny_rubric)
    assert references.forget(tiny_rubric) == 2
    references.expectations(tiny_rubric)
    assert len(probed) == 4
    assert references.forget(tiny_rubric) == 2 and references.forget(tiny_rubric) == 0


def test_the_expectation_is_the_kinds_expect_stage_of_the_reference_and_is_what_is_cached(tiny_rubric, probed,
                                                                                           monkeypatch):
    from grader import checks

    kind = checks.get("param_count")
    seen = []

    def halved(spec, reference):
        seen.append(spec.id)
        return reference.model_copy(update={"trainable": reference.trainable // 2})

    monkeypatch.setattr(kind, "expect", staticmethod(halved))
    first = references.expectations(tiny_rubric)
    again = references.expectations(tiny_rubric)  # from the cache: no probe, no expect stage
    assert seen == ["net-params"] and len(probed) == 2
    assert again["net-params"].trainable == first["net-params"].trainable
    monkeypatch.undo()
    references.forget(tiny_rubric)
    assert first["net-params"].trainable == references.expectations(tiny_rubric)["net-params"].trainable // 2
