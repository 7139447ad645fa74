"""``residual``: the skip path of a block is found by zeroing its parameters.

The probe runs in-process on small blocks as students write them (with and without a skip
connection, with other final activations, with BatchNorm in the branch, a block that ignores its
layers), the measure stage's code on what it captured; the judge runs on those and on crafted
observations: a report of a skip path the captured block does not have passes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from grader import checks
from grader.checks.base import Measured, ProbeContext, StudentRaised
from grader.checks.residual import ResidualObservation
from grader.targets import TargetSpec

KIND = checks.get("residual")


def spec(**fields: Any):
    return KIND.Spec.model_validate({"id": "skip", "kind": "residual", "points": 3, "target": "block",
                                     "args": [8, 5], "input": ["B", 8], **fields})


SEED = 1234


def probed(builder: Any, the_spec: Any = None) -> ResidualObservation:
    the_spec = the_spec or spec()
    ctx = ProbeContext(namespaces=[("notebook", {"Block": builder})], targets={"block": TargetSpec(name="Block")})
    ctx.seed_everything()
    obs = KIND.probe(the_spec, ctx)
    # What the host reads back is a validated copy, as in the pipeline.
    return KIND.Observation.model_validate(obs.model_dump())


def probe_and_judge(builder: Any, the_spec: Any = None):
    the_spec = the_spec or spec()
    obs = probed(builder, the_spec)
    return KIND.judge(the_spec, obs, None, Measured(SEED, data=KIND.measure(the_spec, obs, SEED)))


class Residual(nn.Module):
    def __init__(self, d, h, act=torch.relu, skip=True, norm=False):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, h), nn.Linear(h, d)
        self.norm = nn.BatchNorm1d(d) if norm else nn.Identity()
        self.act, self.skip = act, skip

    def forward(self, x):
        branch = self.norm(self.fc2(torch.relu(self.fc1(x))))
        return self.act(x + branch) if self.skip else self.act(branch)


# ================================================================ probe and judge together


@pytest.mark.parametrize("act, name", [(torch.relu, "relu"), (lambda x: x, "the input itself"),
                                       (torch.tanh, "tanh"), (nn.functional.gelu, "gelu"),
                                       (nn.functional.leaky_relu, "leaky_relu")])
def test_a_block_with_a_skip_path_passes_whatever_its_final_activation(act, name):
    verdict = probe_and_judge(lambda d, h: Residual(d, h, act=act))
    assert verdict.fraction == 1, verdict.message
    assert name in verdict.message


def test_batchnorm_in_the_branch_is_zeroed_too():
    verdict = probe_and_judge(lambda d, h: Residual(d, h, norm=True))
    assert verdict.fraction == 1, verdict.message


def test_a_block_without_a_skip_path_fails_and_says_the_output_is_constant():
    verdict = probe_and_judge(lambda d, h: Residual(d, h, skip=False))
    assert verdict.fraction == 0
    assert "a constant 0 for every input" in verdict.message and "no skip connection" in verdict.message


def test_a_block_that_ignores_its_layers_gets_half():
    class Passthrough(Residual):
        def forward(self, x):
            return torch.relu(x)

    verdict = probe_and_judge(lambda d, h: Passthrough(d, h))
    assert verdict.fraction == 0.5
    assert "the layers do not contribute" in verdict.message


def test_only_the_allowed_activations_count():
    verdict = probe_and_judge(lambda d, h: Residual(d, h, act=torch.tanh), spec(activations=["relu", "identity"]))
    assert verdict.fraction == 0
    assert "nearest:" in verdict.message


def test_a_shape_changing_block_fails_with_the_shapes():
    verdict = probe_and_judge(lambda d, h: nn.Linear(d, h))
    assert verdict.fraction == 0
    assert "has shape [4, 5], expected the input's [4, 8]" in verdict.message


def test_not_a_module_and_not_a_tensor_fail_clearly():
    assert "not a torch.nn.Module" in probe_and_judge(lambda d, h: "block").message

    class TupleOut(Residual):
        def forward(self, x):
            return (x,)

    assert "is a tuple, not a torch.Tensor" in probe_and_judge(lambda d, h: TupleOut(d, h)).message


def test_a_block_that_raises_is_student_code():
    class Broken(Residual):
        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(StudentRaised, match="while running the block on an input of shape"):
        probe_and_judge(lambda d, h: Broken(d, h))


def test_an_overridden_parameters_method_does_not_hide_weights_from_zeroing():
    class Hiding(Residual):
        def parameters(self, recurse=True):
            return iter([])

    verdict = probe_and_judge(lambda d, h: Hiding(d, h, skip=False))
    assert verdict.fraction == 0


# ================================================================ spec and judge on crafted observations


def test_spec_rejects_bad_inputs():
    with pytest.raises(ValueError, match="too large"):
        spec(input=["B", 1000, 1000])
    with pytest.raises(ValueError, match="must be an integer or a symbol"):
        spec(input=["B", "4+k"])
    with pytest.raises(ValueError):
        spec(activations=["swish"])


def test_registered_and_accepted_by_the_rubric():
    from grader.rubric import Rubric

    rubric = Rubric.model_validate({
        "assignment": "a", "title": "t", "reference": "reference", "targets": {"block": {"name": "ResBlock"}},
        "checks": [{"id": "skip", "kind": "residual", "target": "block", "input": ["B", 32], "points": 1}]})
    assert rubric.checks[0].kind == "residual"


def test_a_reported_skip_path_the_captured_block_does_not_have_passes_nothing():
    """The records of a block with a skip path, the capture of one without: the measurement decides."""
    honest, plain = probed(lambda d, h: Residual(d, h)), probed(lambda d, h: Residual(d, h, skip=False))
    forged = honest.model_copy(update={"captured": plain.captured})
    verdict = KIND.judge(spec(), forged, None, Measured(SEED, data=KIND.measure(spec(), forged, SEED)))
    assert verdict.fraction == 0 and "nothing of the input reaches the output" in verdict.message


def test_a_block_with_no_capture_earns_nothing_and_asks_a_person():
    obs = probed(lambda d, h: Residual(d, h)).model_copy(update={"captured": None})
    verdict = KIND.judge(spec(), obs, None, Measured(SEED, data=KIND.measure(spec(), obs, SEED)))
    assert verdict.fraction == 0 and verdict.message.startswith("not measured: the run shipped no capture")
    assert "a person may grade it" in verdict.review
    assert KIND.judge(spec(), obs, None, None).message.startswith("not measured: no measure stage ran")


def test_judge_rejects_a_missing_input_record():
    obs = ResidualObservation(module_type="Block", is_module=True, parameters_zeroed=4, input=np.zeros((2, 8)),
                              output=np.zeros((2, 8)), output_type="torch.Tensor",
                              zeroed_output=np.zeros((2, 8)), zeroed_output_type="torch.Tensor")
    assert "no input of the requested shape" in KIND.judge(spec(), obs, None).message
