"""The check-kind registry and the one shape every registered kind has (its stages, their arguments)."""

from __future__ import annotations

from typing import Any

import pytest

from grader import checks


def test_registry_has_every_kind():
    assert list(checks.REGISTRY) == ["defined", "shape", "param_count", "answer", "notebook", "dataset", "training",
                                     "architecture", "op_equivalence", "accuracy", "residual", "evaluation", "transfer"]


@pytest.mark.parametrize("name", list(checks.REGISTRY))
def test_every_kind_takes_the_hosts_recheck_arguments(name):
    """judging calls every kind's recheck the same way, with the rubric's own names last."""
    import inspect

    parameters = list(inspect.signature(checks.REGISTRY[name].recheck).parameters)
    assert parameters == ["spec", "obs", "verdict", "found_as", "submitted", "expected", "target_names"]


@pytest.mark.parametrize("name", list(checks.REGISTRY))
def test_a_kind_is_measured_all_the_way_or_not_at_all(name):
    """A measured kind has a Measurement, its own measure, and a judge that takes the Measured;
    any other kind has none of the three."""
    import inspect

    from grader.checks.base import CheckKind, Observation

    kind = checks.REGISTRY[name]
    parameters = list(inspect.signature(kind.judge).parameters)
    if kind.Measurement is None:
        assert len(parameters) == 3 and kind.measure is CheckKind.measure
    else:
        assert parameters[3:] == ["measured"] and kind.measure is not CheckKind.measure
        assert issubclass(kind.Measurement, Observation)
        # the measure runner calls every kind the same way: the spec, the observation, the seed, the host's inputs
        assert list(inspect.signature(kind.measure).parameters) == ["spec", "obs", "seed", "given"]


@pytest.mark.parametrize("name", list(checks.REGISTRY))
def test_every_kind_has_the_stages_in_their_one_shape(name):
    """The pipeline calls each stage of every kind the same way: capture (``probe``), expect, judge."""
    import inspect

    def required(stage: Any) -> list[str]:  # tests/checks/conftest.py wraps each probe with a defaulted argument
        return [n for n, p in inspect.signature(stage).parameters.items() if p.default is inspect.Parameter.empty]

    kind = checks.REGISTRY[name]
    assert required(kind.probe) == ["spec", "ctx"]
    assert required(kind.expect) == ["spec", "reference"]
    assert required(kind.judge)[:2] == ["spec", "obs"] and len(required(kind.judge)) == 3


def test_registering_a_kind_twice_is_a_bug():
    with pytest.raises(RuntimeError, match="registered twice"):
        checks.register("shape")(type("Again", (checks.base.CheckKind,), {}))
