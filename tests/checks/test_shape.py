"""``shape``: judges on hand-made observations, probes on tiny in-memory namespaces, and the
measured kind: the output shapes that earn points are those the measure stage computes from the
captured graphs on fresh inputs, never the ones the student's process reports."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grader import artifacts, checks
from grader.checks.base import Measured, StudentRaised
from grader.checks.shape import Forward, MeasuredForward, ShapeMeasurement, ShapeObservation
from tests.checks.kinds import context, judge, probe, spec


def forwards(*pairs: tuple[list[int], list[int] | None], output_type: str = "torch.Tensor") -> ShapeObservation:
    return ShapeObservation(forwards=[Forward(input_shape=i, output_type=output_type, output_shape=o)
                                      for i, o in pairs])


SHAPE = dict(target="net", input=["B", 4], output=["B", 2])


def test_shape_passes_for_every_batch_size():
    v = judge("shape", spec("shape", **SHAPE), forwards(([1, 4], [1, 2]), ([3, 4], [3, 2])))
    assert v.fraction == 1.0
    assert v.message == "output shape [B, 2] for input [B, 4]"
    assert v.table == [{"input": "[1, 4]", "expected": "[1, 2]", "got": "[1, 2]", "ok": True},
                       {"input": "[3, 4]", "expected": "[3, 2]", "got": "[3, 2]", "ok": True}]


def test_shape_hard_coded_batch_size_fails_with_what_differed():
    v = judge("shape", spec("shape", **SHAPE), forwards(([1, 4], [64, 2]), ([3, 4], [64, 2])))
    assert v.fraction == 0.0
    assert v.message == "input [1, 4] gave output [64, 2], expected [1, 2] (2 of 2 inputs wrong)"


def test_shape_one_wrong_batch_size_fails():
    v = judge("shape", spec("shape", **SHAPE), forwards(([1, 4], [1, 2]), ([3, 4], [1, 2])))
    assert v.fraction == 0.0
    assert v.message == "input [3, 4] gave output [1, 2], expected [3, 2] (1 of 2 inputs wrong)"


def test_shape_tensor_subclass_output_fails():
    obs = forwards(([1, 4], None), ([3, 4], None), output_type="student.RiggedTensor")
    v = judge("shape", spec("shape", **SHAPE), obs)
    assert (v.fraction, v.message) == (0.0, "the model returned a student.RiggedTensor, expected a torch.Tensor")


def test_shape_tuple_output_fails():
    v = judge("shape", spec("shape", **SHAPE), forwards(([1, 4], None), ([3, 4], None), output_type="tuple"))
    assert v.message == "the model returned a tuple, expected a torch.Tensor"


def test_shape_wrong_number_of_forwards_fails():
    v = judge("shape", spec("shape", **SHAPE), forwards(([1, 4], [1, 2])))
    assert (v.fraction, v.message) == (0.0, "the probe returned a different number of forward passes than asked for")


def test_shape_against_the_reference_passes_with_a_readable_message():
    the_spec = spec("shape", target="net", input=["B", 1, 28, 28], output="reference")
    reference = forwards(([1, 1, 28, 28], [1, 10]), ([3, 1, 28, 28], [3, 10]))
    v = judge("shape", the_spec, reference, reference)
    assert v.fraction == 1.0
    assert "[1, 10]" in v.message or "[B, 10]" in v.message
    assert "[[" not in v.message, v.message
    assert v.message.endswith("for input [B, 1, 28, 28]")


def test_shape_against_the_reference_fails():
    the_spec = spec("shape", target="net", input=["B", 1, 28, 28], output="reference")
    reference = forwards(([1, 1, 28, 28], [1, 10]), ([3, 1, 28, 28], [3, 10]))
    student = forwards(([1, 1, 28, 28], [1, 5]), ([3, 1, 28, 28], [3, 5]))
    v = judge("shape", the_spec, student, reference)
    assert v.message == "input [1, 1, 28, 28] gave output [1, 5], expected [1, 10] (2 of 2 inputs wrong)"


def test_shape_needs_reference_only_for_reference_output():
    kind = checks.get("shape")
    assert kind.needs_reference(spec("shape", target="n", input=[1], output="reference"))
    assert not kind.needs_reference(spec("shape", **SHAPE))


class RiggedTensor(torch.Tensor):
    def __eq__(self, other):  # noqa: D105 - a cheat: equal to everything
        return True


def make_linear(D, O):
    return torch.nn.Linear(D, O)


class HardCoded64(torch.nn.Module):
    def __init__(self, D, O):
        super().__init__()
        self.fc = torch.nn.Linear(D, O)

    def forward(self, x):
        return self.fc(x).mean(0, keepdim=True).expand(64, -1)


class Views64(torch.nn.Module):
    def __init__(self, D, O):
        super().__init__()
        self.fc = torch.nn.Linear(D, O)

    def forward(self, x):
        return self.fc(x.view(64, -1))


class ReturnsRigged(torch.nn.Module):
    def __init__(self, D, O):
        super().__init__()
        self.fc = torch.nn.Linear(D, O)

    def forward(self, x):
        return self.fc(x).as_subclass(RiggedTensor)


def test_shape_probe_of_a_good_model_passes():
    the_spec = spec("shape", target="make_linear", args=[4, 2], input=["B", 4], output=["B", 2])
    obs = probe("shape", the_spec, context(make_linear=make_linear))
    assert [f.output_shape for f in obs.forwards] == [[1, 2], [3, 2]]
    assert judge("shape", the_spec, obs).fraction == 1.0


def test_shape_probe_of_a_model_hard_coding_batch_64_fails_for_b_1_and_3():
    the_spec = spec("shape", target="HardCoded64", args={"D": 4, "O": 2}, input=["B", 4], output=["B", 2])
    obs = probe("shape", the_spec, context(HardCoded64=HardCoded64))
    assert [f.output_shape for f in obs.forwards] == [[64, 2], [64, 2]]
    v = judge("shape", the_spec, obs)
    assert v.message == "input [1, 4] gave output [64, 2], expected [1, 2] (2 of 2 inputs wrong)"


def test_shape_probe_of_a_model_viewing_to_batch_64_raises_student_error():
    the_spec = spec("shape", target="Views64", args=[4, 2], input=["B", 4], output=["B", 2])
    with pytest.raises(StudentRaised) as info:
        probe("shape", the_spec, context(Views64=Views64))
    assert isinstance(info.value.exc, RuntimeError)
    assert info.value.during == "running the model on an input of shape [1, 4]"
    assert "view" in info.value.traceback


def test_shape_probe_records_a_tensor_subclass_by_type_only():
    the_spec = spec("shape", target="ReturnsRigged", args=[4, 2], input=["B", 4], output=["B", 2])
    obs = probe("shape", the_spec, context(ReturnsRigged=ReturnsRigged))
    assert {f.output_type for f in obs.forwards} == {f"{__name__}.RiggedTensor"}
    assert all(f.output_shape is None for f in obs.forwards)
    v = judge("shape", the_spec, obs)
    assert v.message == f"the model returned a {__name__}.RiggedTensor, expected a torch.Tensor"


def test_probe_student_function_raising_becomes_student_raised():
    def make_net(D, O):
        raise ValueError("not implemented yet")

    the_spec = spec("shape", target="make_net", args=[4, 2], input=["B", 4], output=["B", 2])
    with pytest.raises(StudentRaised) as info:
        probe("shape", the_spec, context(make_net=make_net))
    assert str(info.value) == "ValueError while calling make_net(4, 2)"
    assert isinstance(info.value.exc, ValueError)


def test_probe_student_sys_exit_becomes_student_raised():
    def make_net(D, O):
        raise SystemExit(0)

    the_spec = spec("param_count", target="make_net", args={"D": 4, "O": 2}, expected=10)
    with pytest.raises(StudentRaised) as info:
        probe("param_count", the_spec, context(make_net=make_net))
    assert info.value.during == "calling make_net(D=4, O=2)"


# ================================================================ measured

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
