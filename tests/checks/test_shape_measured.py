"""``shape`` as a measured kind: the output shapes that earn points are those the measure stage
computes from the captured graphs on fresh inputs, never the ones the student's process reports."""

from __future__ import annotations

import torch
from torch import nn

from grader import artifacts
from grader.checks.base import Measured
from grader.checks.shape import MeasuredForward, ShapeMeasurement
from tests.checks.test_judges import HardCoded64, context, probe, spec

SEED = 77
SPEC = {"target": "Net", "args": [4, 2], "input": ["B", 4], "output": ["B", 2]}


class Net(nn.Module):
    def __init__(self, D, O):
        super().__init__()
        self.fc = nn.Linear(D, O)

    def forward(self, x):
        return self.fc(x)


class ThroughNumpy(Net):
    def forward(self, x):
        return self.fc(torch.from_numpy(x.numpy()))  # right shape, but computed outside torch's operators


class ReturnsATuple(Net):
    def forward(self, x):
        return self.fc(x), x


def kind():
    from grader import checks

    return checks.get("shape")


def observed(cls, **fields):
    the_spec = spec("shape", **{**SPEC, "target": cls.__name__, **fields})
    return the_spec, probe("shape", the_spec, context(**{cls.__name__: cls}))


def measured(the_spec, obs) -> Measured:
    return Measured(SEED, data=kind().measure(the_spec, obs, SEED))


def test_an_honest_model_is_measured_on_every_batch_size_and_passes_unflagged():
    the_spec, obs = observed(Net)
    found = measured(the_spec, obs)
    assert [(f.output_type, f.output_shape) for f in found.data.forwards] == [("torch.Tensor", [1, 2]),
                                                                             ("torch.Tensor", [3, 2])]
    verdict = kind().judge(the_spec, obs, None, found)
    assert (verdict.fraction, verdict.review) == (1.0, None)
    assert verdict.message == "output shape [B, 2] for input [B, 4]"


def test_a_model_that_hard_codes_the_batch_size_fails_measured_as_observed_and_unflagged():
    the_spec, obs = observed(HardCoded64, args={"D": 4, "O": 2})
    found = measured(the_spec, obs)
    assert [f.output_shape for f in found.data.forwards] == [[64, 2], [64, 2]]
    verdict = kind().judge(the_spec, obs, None, found)
    assert verdict.fraction == 0.0 and verdict.review is None
    assert verdict.message == "input [1, 4] gave output [64, 2], expected [1, 2] (2 of 2 inputs wrong)"


def test_without_a_measure_stage_the_report_is_judged_as_it_is():
    the_spec, obs = observed(Net)
    forged = obs.model_copy(update={"captured": None})
    assert kind().judge(the_spec, forged, None).fraction == 1.0


def test_a_report_of_the_right_shapes_without_a_graph_earns_nothing_and_asks_a_person():
    the_spec, obs = observed(Net)
    forged = obs.model_copy(update={"captured": None})
    verdict = kind().judge(the_spec, forged, None, measured(the_spec, forged))
    assert verdict.fraction == 0.0
    assert verdict.table[0]["got"] == ("not measured: the run shipped no capture of the model; the run reported "
                                       "[1, 2]")
    assert verdict.message.startswith("input [1, 4]: not measured: the run shipped no capture of the model")
    assert verdict.review.startswith("2 input shape(s) the run reported as matching could not be measured, so earned "
                                     "nothing; a person may award them: [1, 4] (the run shipped no capture")


def test_a_measure_stage_that_failed_is_said_in_the_review():
    the_spec, obs = observed(Net)
    verdict = kind().judge(the_spec, obs, None, Measured(SEED, problem="the measure stage ended timeout-wall: 60 s"))
    assert verdict.fraction == 0.0 and "[1, 4] (the measure stage ended timeout-wall: 60 s)" in verdict.review


def test_a_forward_through_numpy_is_not_measured_its_graph_ignores_the_input():
    the_spec, obs = observed(ThroughNumpy)
    verdict = kind().judge(the_spec, obs, None, measured(the_spec, obs))
    assert verdict.fraction == 0.0
    assert "the graph's output does not depend on its input" in verdict.review


def test_a_model_the_run_says_failed_fails_without_a_flag():
    the_spec, obs = observed(ReturnsATuple)
    assert obs.captured.why_not(0) == "the model returned a tuple, not a torch.Tensor"
    verdict = kind().judge(the_spec, obs, None, measured(the_spec, obs))
    assert (verdict.fraction, verdict.review) == (0.0, None)
    assert verdict.message == "the model returned a tuple, expected a torch.Tensor"


def constant_graph(inputs: list[str], batch: int) -> artifacts.Graph:
    """A graph taking the model's input and weights that returns zeros of the right shape."""
    tensors = [torch.zeros(1) for _ in inputs]
    return artifacts.capture(lambda *_: torch.zeros(batch, 2), tensors, inputs)


def test_a_graph_swapped_for_one_giving_the_right_shape_from_nothing_is_refused():
    the_spec, obs = observed(HardCoded64, args={"D": 4, "O": 2})
    forged_forwards = [f.model_copy(update={"output_shape": [b, 2]}) for f, b in zip(obs.forwards, (1, 3))]
    graphs = [constant_graph(graph.inputs, batch) for graph, batch in zip(obs.captured.graphs, (1, 3))]
    forged = obs.model_copy(update={"forwards": forged_forwards,
                                    "captured": obs.captured.model_copy(update={"graphs": graphs})})
    verdict = kind().judge(the_spec, forged, None, measured(the_spec, forged))
    assert verdict.fraction == 0.0
    assert "the captured graph was refused: the graph's output does not depend on its input" in verdict.review


def test_a_graph_that_disagrees_with_the_report_is_believed_and_flagged():
    the_spec, obs = observed(HardCoded64, args={"D": 4, "O": 2})
    claims_right = obs.model_copy(update={"forwards": [f.model_copy(update={"output_shape": [b, 2]})
                                                       for f, b in zip(obs.forwards, (1, 3))]})
    verdict = kind().judge(the_spec, claims_right, None, measured(the_spec, claims_right))
    assert verdict.fraction == 0.0
    assert verdict.review.startswith("input [1, 4] gave [1, 2] where the student's process ran the model, but "
                                     "[64, 2] measured on a fresh input")


def test_the_measurement_model_is_closed_and_strict():
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError):
        ShapeMeasurement.model_validate({"forwards": [{"output_type": "torch.Tensor", "output_shape": ["1"]}]})
    with pytest.raises(pydantic.ValidationError):
        MeasuredForward.model_validate({"output_type": "torch.Tensor", "extra": 1})
