"""``defined``: judges on hand-made observations, probes on tiny in-memory namespaces."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader.checks.base import Unresolved
from grader.checks.defined import DefinedObservation
from grader.targets import TargetSpec
from tests.checks.kinds import context, judge, probe, spec


def defined_obs(**overrides: Any) -> DefinedObservation:
    fields = dict(found_as="fc", how="name", is_class=False, is_callable=True, parameters=["D", "K", "O"], bases=[])
    return DefinedObservation(**(fields | overrides))


def test_defined_passes():
    v = judge("defined", spec("defined", target="fc"), defined_obs())
    assert (v.fraction, v.message) == (1.0, "fc is defined")


def test_defined_found_by_alias_names_what_was_found():
    v = judge("defined", spec("defined", target="fc"), defined_obs(found_as="fc_net", how="alias"))
    assert v.message == "fc_net is defined"


def test_defined_found_by_signature_says_so():
    v = judge("defined", spec("defined", target="fc"), defined_obs(found_as="build", how="signature"))
    assert v.message == "build (found by its signature) is defined"


def test_defined_parameters_compare_case_insensitively():
    v = judge("defined", spec("defined", target="fc", parameters=["d", "k", "o"]), defined_obs())
    assert v.fraction == 1.0


def test_defined_with_wrong_parameters_fails():
    v = judge("defined", spec("defined", target="fc", parameters=["D", "K", "O"]), defined_obs(parameters=["D", "K"]))
    assert (v.fraction, v.message) == (0.0, "fc takes (D, K); expected (D, K, O)")


def test_defined_not_callable_fails_parameters():
    v = judge("defined", spec("defined", target="fc", parameters=["D"]),
              defined_obs(is_callable=False, parameters=None))
    assert (v.fraction, v.message) == (0.0, "fc takes (); expected (D)")


def test_defined_not_a_subclass_fails():
    obs = defined_obs(found_as="Net", is_class=True, bases=[f"{__name__}.Net", "builtins.object"])
    v = judge("defined", spec("defined", target="net", subclass_of="torch.nn.Module"), obs)
    assert (v.fraction, v.message) == (0.0, "Net is not a subclass of torch.nn.Module")


def test_defined_probe_of_an_nn_module_subclass_passes_subclass_of_torch_nn_module():
    class Net(torch.nn.Module):
        def __init__(self, D, K, O):
            super().__init__()

    ctx = context(Net=Net)
    the_spec = spec("defined", target="Net", parameters=["D", "K", "O"], subclass_of="torch.nn.Module")
    obs = probe("defined", the_spec, ctx)
    assert obs.is_class and obs.parameters == ["D", "K", "O"]
    v = judge("defined", the_spec, obs)
    assert v.fraction == 1.0, v.message


def test_defined_probe_of_missing_target_is_unresolved():
    ctx = context(other=lambda D: None)
    ctx.targets["fc"] = TargetSpec(name="fc", kind="callable")
    with pytest.raises(Unresolved) as info:
        probe("defined", spec("defined", target="fc"), ctx)
    assert info.value.key == "fc"
    assert info.value.resolution.problem == "missing"
    assert info.value.resolution.candidates == ["other(D)"]
