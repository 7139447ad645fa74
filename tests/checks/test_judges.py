"""Check kinds: judges on hand-made observations, probes on tiny in-memory namespaces."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import torch

from grader import checks, submission
from grader.checks.answer import AnswerObservation, observe_value
from grader.checks.base import CheckSkipped, ProbeContext, StudentRaised, Unresolved, Verdict
from grader.checks.defined import DefinedObservation
from grader.checks.notebook import FailedCell, NotebookObservation, StandIns, submitted_form
from grader.checks.param_count import ParamCountObservation
from grader.checks.shape import Forward, ShapeObservation
from grader.judging import judge_all
from grader.observations import ProbeRecord
from grader.targets import TargetSpec


def spec(kind: str, **fields: Any):
    """A validated spec of ``kind`` with an id and points unless given."""
    return checks.get(kind).Spec.model_validate({"id": f"{kind}-check", "kind": kind, "points": 2, **fields})


def judge(kind: str, the_spec: Any, observation: Any, expected: Any = None) -> Verdict:
    return checks.get(kind).judge(the_spec, observation, expected)


def context(**objects: Any) -> ProbeContext:
    """A probe context over one notebook-like namespace; every object is a target by its own name."""
    targets = {name: TargetSpec(name=name) for name in objects}
    return ProbeContext(namespaces=[("notebook", {"__name__": __name__, **objects})], targets=targets)


def probe(kind: str, the_spec: Any, ctx: ProbeContext) -> Any:
    ctx.seed_everything()
    return checks.get(kind).probe(the_spec, ctx)


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


# ================================================================ defined


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


# ================================================================ shape


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


# ================================================================ param_count


def counts(total: int, trainable: int | None = None, module_type: str = "torch.nn.modules.container.Sequential"):
    return ParamCountObservation(module_type=module_type, total=total, trainable=total if trainable is None else trainable)


def test_param_count_equal_passes():
    v = judge("param_count", spec("param_count", target="fc", expected=89_610), counts(89_610))
    assert (v.fraction, v.message) == (1.0, "89,610 learnable parameters")


def test_param_count_more_fails_by_how_many():
    v = judge("param_count", spec("param_count", target="fc", expected=89_000), counts(89_610))
    assert (v.fraction, v.message) == (0.0, "89,610 learnable parameters, expected 89,000 (610 more)")


def test_param_count_fewer_against_the_reference():
    v = judge("param_count", spec("param_count", target="fc"), counts(100), counts(110))
    assert v.message == "100 learnable parameters, expected 110 (10 fewer)"


def test_param_count_trainable_only_off_uses_the_total():
    the_spec = spec("param_count", target="fc", expected=23, trainable_only=False)
    assert judge("param_count", the_spec, counts(23, trainable=8)).fraction == 1.0
    assert judge("param_count", spec("param_count", target="fc", expected=23), counts(23, trainable=8)).fraction == 0.0


def test_param_count_of_something_not_a_module_fails():
    v = judge("param_count", spec("param_count", target="fc", expected=1), counts(-1, module_type="NoneType"))
    assert v.message == "the target built a NoneType, not a torch.nn.Module"


def small_net():
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))  # 15 + 8


def test_param_count_probe_of_a_small_sequential():
    obs = probe("param_count", spec("param_count", target="small_net", expected=23), context(small_net=small_net))
    assert (obs.module_type, obs.total, obs.trainable) == ("torch.nn.modules.container.Sequential", 23, 23)


def test_param_count_probe_counts_frozen_parameters_apart():
    def frozen_net():
        net = small_net()
        net[0].requires_grad_(False)
        return net

    obs = probe("param_count", spec("param_count", target="frozen_net", expected=8), context(frozen_net=frozen_net))
    assert (obs.total, obs.trainable) == (23, 8)


def test_param_count_probe_of_a_non_module():
    obs = probe("param_count", spec("param_count", target="f", expected=8), context(f=lambda: [1, 2]))
    assert (obs.module_type, obs.total) == ("list", -1)


class LiesInParameters(torch.nn.Sequential):
    def parameters(self, recurse=True):
        return iter([torch.nn.Parameter(torch.zeros(89_610))])


class LiesInNamedParameters(torch.nn.Sequential):
    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        return iter([("fake", torch.nn.Parameter(torch.zeros(89_610)))])


@pytest.mark.parametrize("cls", [LiesInParameters, LiesInNamedParameters])
def test_param_count_probe_ignores_overridden_parameter_listing(cls):
    def build():
        return cls(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))

    obs = probe("param_count", spec("param_count", target="build", expected=89_610), context(build=build))
    assert obs.total == 23


# ================================================================ answer


def number(x: float, type_: str = "float") -> AnswerObservation:
    return AnswerObservation(type=type_, number=x)


def test_answer_exact_number_passes():
    v = judge("answer", spec("answer", target="x", expected=3136), number(3136.0, "int"))
    assert (v.fraction, v.message) == (1.0, "3136 is right")


def test_answer_wrong_number_says_by_how_much():
    v = judge("answer", spec("answer", target="x", expected=3136), number(3137.0, "int"))
    assert (v.fraction, v.message) == (0.0, "3137, expected 3136 (off by 1)")


@pytest.mark.parametrize("got, ok", [(1.099, True), (0.901, True), (1.101, False), (0.899, False)])
def test_answer_abs_tol_boundaries(got, ok):
    v = judge("answer", spec("answer", target="x", expected=1.0, abs_tol=0.1), number(got))
    assert (v.fraction == 1.0) is ok
    if not ok:
        assert v.message == f"{got:g}, expected 1 (off by {abs(got - 1.0):g})"


@pytest.mark.parametrize("got, ok", [(100.99, True), (99.01, True), (101.01, False), (98.99, False)])
def test_answer_rel_tol_boundaries(got, ok):
    v = judge("answer", spec("answer", target="x", expected=100, rel_tol=0.01), number(got))
    assert (v.fraction == 1.0) is ok, v.message


@pytest.mark.parametrize("got, ok", [(149.0, True), (51.0, True), (151.0, False), (49.0, False)])
def test_answer_rel_tol_is_relative_to_the_expected_value(got, ok):
    # 50 % of the expected 100 is 50: 151 and 49 are both 51 away and must both fail
    v = judge("answer", spec("answer", target="x", expected=100, rel_tol=0.5), number(got))
    assert (v.fraction == 1.0) is ok, v.message


def test_answer_text_where_a_number_is_expected():
    v = judge("answer", spec("answer", target="x", expected=3136), AnswerObservation(type="str", text="3136"))
    assert v.message == "the answer is a str, expected a number (3136)"


def test_answer_bool_expected_compares_as_number():
    assert judge("answer", spec("answer", target="x", expected=True), number(1.0, "bool")).fraction == 1.0
    assert judge("answer", spec("answer", target="x", expected=True), number(0.0, "bool")).fraction == 0.0


def test_answer_nan_fails():
    v = judge("answer", spec("answer", target="x", expected=1.0, abs_tol=1.0), number(math.nan))
    assert v.fraction == 0.0 and v.message.startswith("nan, expected 1")


def test_answer_against_the_reference():
    v = judge("answer", spec("answer", target="x", expected="reference"), number(3136.0), number(3136.0, "int"))
    assert v.fraction == 1.0


def test_answer_reference_without_value_is_a_rubric_error():
    v = judge("answer", spec("answer", target="x", expected="reference"), number(1.0), AnswerObservation(type="object"))
    assert v.message == "the expected answer has no comparable value (rubric error)"


def text(s: str) -> AnswerObservation:
    return AnswerObservation(type="str", text=s)


@pytest.mark.parametrize("match, expected, got, ok", [
    ("case-insensitive", "relu", "  ReLU \n", True),
    ("case-insensitive", "relu", "ReLU6", False),
    ("exact", "ReLU", " ReLU ", True),
    ("exact", "relu", "ReLU", False),
    ("contains", "relu", "I used ReLU activations", True),
    ("contains", "sigmoid", "I used ReLU activations", False),
    ("regex", r"^re?lu\b", "ReLU everywhere", True),
    ("regex", r"^tanh$", "ReLU", False),
])
def test_answer_text_matching(match, expected, got, ok):
    v = judge("answer", spec("answer", target="x", expected=expected, match=match), text(got))
    assert (v.fraction == 1.0) is ok
    shown = repr(got.strip())
    assert v.message == (f"{shown} is right" if ok else f"{shown} does not match the expected answer")


def test_answer_number_where_text_is_expected():
    v = judge("answer", spec("answer", target="x", expected="relu"), number(1.0, "int"))
    assert v.message.startswith("the answer is a int") and v.message.endswith("expected text")


def test_answer_long_text_is_shortened_in_the_message():
    v = judge("answer", spec("answer", target="x", expected="x", match="exact"), text("y" * 200))
    assert v.message == repr("y" * 77 + "...") + " does not match the expected answer"


def array(values: Any) -> AnswerObservation:
    return AnswerObservation(type="numpy.ndarray", array=np.asarray(values, dtype=np.float64))


def test_answer_array_passes():
    v = judge("answer", spec("answer", target="x", expected=[[1, 2], [3, 4]]), array([[1, 2], [3, 4]]))
    assert (v.fraction, v.message) == (1.0, "all 4 values are right")


def test_answer_array_names_the_first_difference():
    v = judge("answer", spec("answer", target="x", expected=[[1, 2], [3, 4]]), array([[1, 2], [3.5, 4.5]]))
    assert v.message == "2 of 4 values differ; first at [1, 0]: 3.5, expected 3"


def test_answer_array_within_tolerance():
    the_spec = spec("answer", target="x", expected=[1.0, 2.0], abs_tol=0.01)
    assert judge("answer", the_spec, array([1.009, 1.991])).fraction == 1.0
    assert judge("answer", the_spec, array([1.011, 2.0])).fraction == 0.0


def test_answer_array_of_the_wrong_shape():
    v = judge("answer", spec("answer", target="x", expected=[[1, 2], [3, 4]]), array([1, 2, 3, 4]))
    assert v.message == "the answer has shape [4], expected [2, 2]"


def test_answer_not_an_array_where_one_is_expected():
    v = judge("answer", spec("answer", target="x", expected=[1, 2]), text("1, 2"))
    assert v.message == "the answer is a str, expected an array of shape [2]"


def test_observe_value_reduces_tensors_and_refuses_subclasses():
    assert observe_value(torch.tensor(3.0)).number == 3.0
    assert observe_value(np.float32(2.5)).number == 2.5
    t = observe_value(torch.arange(4).reshape(2, 2))
    assert t.type == "torch.Tensor" and t.array.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    rigged = observe_value(torch.zeros(2).as_subclass(RiggedTensor))
    assert (rigged.number, rigged.text, rigged.array) == (None, None, None)
    assert observe_value(object()).type == "object"


def test_answer_probe_of_a_value_target():
    obs = probe("answer", spec("answer", target="flatten_size", expected=3136), context(flatten_size=3136))
    assert obs == AnswerObservation(type="int", number=3136.0)


# ================================================================ notebook


def notebook_obs(**overrides: Any) -> NotebookObservation:
    fields = dict(form="notebook", code_cells=10, markdown_cells=4, markdown_words=120, figures=2, failed_cells=[])
    return NotebookObservation(**(fields | overrides))


NOTEBOOK = dict(executes=True, min_markdown_cells=3, min_figures=2)


def test_notebook_all_requirements_met():
    v = judge("notebook", spec("notebook", **NOTEBOOK), notebook_obs())
    assert (v.fraction, v.message) == (1.0, "all 3 requirements met")
    assert [r["requirement"] for r in v.table] == ["runs without errors", "at least 3 markdown cells",
                                                   "at least 2 plots"]


def test_notebook_partial_failure_names_cells_and_counts():
    obs = notebook_obs(figures=1, failed_cells=[FailedCell(number=3, status="error", error="NameError: name 'x' is not defined", line=1)])
    v = judge("notebook", spec("notebook", partial_credit=True, **NOTEBOOK), obs)
    assert v.fraction == pytest.approx(1 / 3)
    assert v.message == "runs without errors: got cell 3, line 1: NameError: name 'x' is not defined; at least 2 plots: got 1"


def test_notebook_timed_out_cell_without_error_text():
    obs = notebook_obs(failed_cells=[FailedCell(number=4, status="timeout", error="")])
    v = judge("notebook", spec("notebook", executes=True), obs)
    assert (v.fraction, v.message) == (0.0, "runs without errors: got cell 4: timeout")


def test_notebook_words_requirement():
    v = judge("notebook", spec("notebook", executes=False, min_markdown_words=200), notebook_obs())
    assert v.message == "at least 200 words of explanation: got 120"


MODULE_FILES = [("task2.py", "import torch\n"), ("utils/mnist_reader.py", "def load_mnist(): ...\n")]
NOTEBOOK_CELLS = [("cell 2", "import torch\n"), ("cell 4", "fit(model, 4)\n")]


def notebook_result(obs: NotebookObservation, submitted: list[tuple[str, str]] | None):
    """The notebook check as the pipeline judges it: the judge, then the recheck with the host's copy."""
    the_spec = spec("notebook", **NOTEBOOK)
    record = ProbeRecord.model_validate({"check": the_spec.id, "status": "observed", "data": obs.model_dump()})
    (result,) = judge_all([the_spec], [record], {}, {}, "ok", "ran to completion", submitted)
    return result


def test_notebook_check_on_a_module_the_host_confirms_is_not_applicable():
    with pytest.raises(CheckSkipped, match="the submission is a module, which this assignment accepts"):
        checks.get("notebook").recheck(spec("notebook", **NOTEBOOK), notebook_obs(form="module"),
                                       Verdict.failed("judged"), None, MODULE_FILES)
    result = notebook_result(notebook_obs(form="module", markdown_cells=0, figures=0), MODULE_FILES)
    assert (result.outcome, result.points, result.counted) == ("skipped", 0.0, False)
    assert result.message == ("skipped: the submission is a module, which this assignment accepts: notebook structure "
                              "(markdown cells, figures shown) is asked of notebooks only, so this check does not "
                              "apply (not counted in the score)")


def test_notebook_check_on_a_module_without_the_hosts_copy_fails():
    v = judge("notebook", spec("notebook", **NOTEBOOK), notebook_obs(form="module"))
    assert (v.fraction, v.message) == (0.0, "the run reports a module, not a notebook; this check needs a notebook")
    assert notebook_result(notebook_obs(form="module"), []).outcome == "failed"  # no code read: form unknown


def test_notebook_reported_as_a_module_fails_for_review():
    result = notebook_result(notebook_obs(form="module"), NOTEBOOK_CELLS)
    assert (result.outcome, result.counted) == ("failed", True)
    assert result.message == "the run reports a module, but a notebook was submitted"
    assert result.review == "the execution record contradicts the submitted file (tampered record?)"


def test_a_module_reported_as_a_notebook_earns_no_notebook_points():
    result = notebook_result(notebook_obs(), MODULE_FILES)
    assert (result.outcome, result.counted) == ("skipped", False)


def test_a_notebook_keeps_its_verdict_after_the_recheck():
    result = notebook_result(notebook_obs(figures=1), NOTEBOOK_CELLS)
    assert (result.outcome, result.message) == ("failed", "at least 2 plots: got 1")


SIZED_CELLS = [("cell 2", "import numpy as np\n"), ("cell 4", "X, y = load_mnist('data')\nassert X.shape[0] == 60_000\n")]
FASHION_STAND_IN = StandIns(stand_ins=[(60000, 2000), (10000, 500)])


def sized_result(expected: StandIns | None):
    failed = [FailedCell(number=4, status="error", error="AssertionError", line=2)]
    the_spec = spec("notebook", **NOTEBOOK)
    record = ProbeRecord.model_validate({"check": the_spec.id, "status": "observed",
                                         "data": notebook_obs(failed_cells=failed).model_dump()})
    (result,) = judge_all([the_spec], [record], {}, {the_spec.id: expected} if expected else {}, "ok", "ran",
                          SIZED_CELLS)
    return result


def test_a_cell_needing_the_real_size_on_a_stand_in_goes_to_a_person_not_against_the_student():
    result = sized_result(FASHION_STAND_IN)
    assert (result.outcome, result.points) == ("passed", result.max_points)
    assert "cell 4, line 2: AssertionError: the line expects the real data set's size" in result.message
    assert "2,000 instead of 60,000" in result.message
    assert result.review == "cell(s) 4 need the real data set's size to run"


def test_the_same_failure_on_real_data_is_the_students():
    result = sized_result(None)
    assert result.outcome == "failed" and result.review is None
    assert "cell 4, line 2: AssertionError" in result.message


def test_the_form_by_the_hosts_copy_follows_submission_code_texts(tmp_path):
    notebook = {"cells": [{"cell_type": "markdown", "source": "# Steps"}, {"cell_type": "code", "source": "x = 1\n"}],
                "nbformat": 4, "nbformat_minor": 5, "metadata": {}}
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "hw.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "task2.py").write_text("A = 1\n")
    assert submitted_form(submission.code_texts(submission.find_entry(tmp_path / "nb", []))) == "notebook"
    assert submitted_form(submission.code_texts(submission.find_entry(tmp_path / "mod", []))) == "module"
    assert submitted_form([]) is None
    assert submitted_form([("cell 2", ""), ("task2.py", "")]) is None


def test_notebook_without_requirements_passes():
    v = judge("notebook", spec("notebook", executes=False), notebook_obs(failed_cells=[FailedCell(number=1, status="error", error="x")]))
    assert (v.fraction, v.message) == (1.0, "no structural requirement set")


def test_notebook_probe_reads_the_execution_record():
    ctx = ProbeContext(namespaces=[], targets={}, execution={"form": "notebook", "cells": [
        {"index": 0, "type": "markdown", "status": "ok", "words": 12},
        {"index": 1, "type": "code", "status": "ok", "figures": 1},
        {"index": 2, "type": "code", "status": "error", "error": "ValueError: boom",
         "raised": {"type": "ValueError", "message": "boom", "line": 4, "missing_module": None}},
        {"index": 3, "type": "code", "status": "timeout", "error": None},
        {"index": 4, "type": "markdown", "status": "ok", "words": 30},
    ]})
    obs = probe("notebook", spec("notebook"), ctx)
    assert (obs.form, obs.code_cells, obs.markdown_cells, obs.markdown_words, obs.figures) == ("notebook", 3, 2, 42, 1)
    assert obs.failed_cells == [FailedCell(number=3, status="error", error="ValueError: boom", line=4),
                                FailedCell(number=4, status="timeout", error="")]


# The dataset and training kinds are tested in test_dataset.py and test_training.py.
