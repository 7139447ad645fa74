"""``param_count``: judges on hand-made observations, probes on tiny in-memory namespaces, and the
measured kind: the count that earns points is the measure stage's, from the weights shipped beside
a graph that takes exactly them and computes the model's output."""

from __future__ import annotations

import pydantic
import pytest
import torch
from torch import nn

from grader import checks
from grader.checks.base import Measured, ProbeContext
from grader.checks.param_count import ParamCountMeasurement, ParamCountObservation
from grader.targets import Contract, TargetSpec
from tests.checks.kinds import context, judge, probe, spec


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


# ================================================================ measured

SEED = 5
KIND = checks.get("param_count")


def frozen_net():
    net = small_net()
    net[0].requires_grad_(False)
    return net


def batchnorm_net():
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))  # 15 + 6; running statistics are buffers


class SpareNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = small_net()
        self.spare = nn.Linear(4, 1)  # 5 parameters the forward never reads

    def forward(self, x):
        return self.body(x)


def spare_net():
    return SpareNet()


def observed(builder, **fields):
    the_spec = spec("param_count", **{"target": builder.__name__, "input": ["B", 4], **fields})
    return the_spec, probe("param_count", the_spec, context(**{builder.__name__: builder}))


def measured(the_spec, obs) -> Measured:
    return Measured(SEED, data=KIND.measure(the_spec, obs, SEED))


def test_an_honest_count_is_measured_from_the_weights_and_passes_unflagged():
    the_spec, obs = observed(small_net, expected=23)
    found = measured(the_spec, obs)
    assert (found.data.total, found.data.trainable, found.data.unused, found.data.problem) == (23, 23, [], "")
    verdict = KIND.judge(the_spec, obs, None, found)
    assert (verdict.fraction, verdict.message, verdict.review) == (1.0, "23 learnable parameters", None)


def test_frozen_parameters_and_buffers_are_counted_as_torch_counts_them():
    the_spec, obs = observed(frozen_net, expected=8)
    assert (measured(the_spec, obs).data.total, measured(the_spec, obs).data.trainable) == (23, 8)
    the_spec, obs = observed(batchnorm_net, expected=21)
    assert {w.name for w in obs.captured.weights if not w.parameter} == {"1.running_mean", "1.running_var"}
    assert KIND.judge(the_spec, obs, None, measured(the_spec, obs)).fraction == 1.0


def test_the_input_shape_comes_from_the_targets_contract_when_the_check_gives_none():
    the_spec = spec("param_count", target="small_net", expected=23)
    ctx = ProbeContext(namespaces=[("notebook", {"small_net": small_net})],
                       targets={"small_net": TargetSpec(name="small_net", contract=Contract(input=[2, 4]))})
    ctx.seed_everything()
    obs = KIND.probe(the_spec, ctx)
    assert obs.captured.input_shapes == [[2, 4]]
    assert KIND.judge(the_spec, obs, None, measured(the_spec, obs)).fraction == 1.0


def test_without_any_input_shape_nothing_is_captured_and_the_rubric_is_named():
    the_spec = spec("param_count", target="small_net", expected=23)
    obs = probe("param_count", the_spec, context(small_net=small_net))
    verdict = KIND.judge(the_spec, obs, None, measured(the_spec, obs))
    assert verdict.fraction == 0.0
    assert verdict.message == ("not measured: the rubric gives no input shape for it (the check's `input`, or the "
                               "target's contract input); the run reported 23 learnable parameters, expected 23")
    assert verdict.review.startswith("the count the run reported as matching could not be measured")


def test_without_a_measure_stage_the_report_is_judged_as_it_is():
    the_spec, obs = observed(small_net, expected=23)
    assert KIND.judge(the_spec, obs.model_copy(update={"captured": None}), None).fraction == 1.0


def test_a_reported_count_without_a_graph_earns_nothing_and_asks_a_person():
    the_spec, obs = observed(small_net, expected=23)
    forged = obs.model_copy(update={"captured": None})
    verdict = KIND.judge(the_spec, forged, None, measured(the_spec, forged))
    assert verdict.fraction == 0.0
    assert verdict.review == ("the count the run reported as matching could not be measured, so earned nothing; a "
                              "person may award it: the run shipped no capture of the model")


def test_a_wrong_count_without_a_graph_fails_unflagged():
    the_spec, obs = observed(small_net, expected=99)
    forged = obs.model_copy(update={"captured": None})
    verdict = KIND.judge(the_spec, forged, None, measured(the_spec, forged))
    assert (verdict.fraction, verdict.review) == (0.0, None)


def test_a_rewritten_count_is_not_believed_the_weights_are():
    the_spec, obs = observed(small_net, expected=30)
    claims_right = obs.model_copy(update={"total": 30, "trainable": 30})
    verdict = KIND.judge(the_spec, claims_right, None, measured(the_spec, claims_right))
    assert verdict.fraction == 0.0
    assert verdict.message == "23 learnable parameters, expected 30 (7 fewer)"
    assert verdict.review == "the run reported 30 learnable parameters, but the weights shipped with its graph hold 23"


def test_a_weight_added_to_the_list_but_not_to_the_graph_is_refused():
    the_spec, obs = observed(small_net, expected=30)
    extra = obs.captured.weights[-1].model_copy(update={"name": "padding", "shape": [7], "values": None})
    padded = obs.model_copy(update={"captured": obs.captured.model_copy(
        update={"weights": [*obs.captured.weights, extra]})})
    found = measured(the_spec, padded)
    assert found.data.total == -1 and "not the input and the 5 weights shipped with it" in found.data.problem
    assert KIND.judge(the_spec, padded, None, found).fraction == 0.0


def test_parameters_the_output_never_reads_are_counted_and_named_for_a_person():
    the_spec, obs = observed(spare_net, expected=28)
    found = measured(the_spec, obs)
    assert (found.data.total, found.data.unused) == (28, ["spare.weight", "spare.bias"])
    verdict = KIND.judge(the_spec, obs, None, found)
    assert verdict.fraction == 1.0
    assert verdict.review.startswith("2 parameter(s) never reach the model's output (spare.weight, spare.bias)")


def test_something_not_a_module_fails_measured_or_not():
    the_spec = spec("param_count", target="make", expected=1, input=[2, 4])
    obs = probe("param_count", the_spec, context(make=lambda: None))
    verdict = KIND.judge(the_spec, obs, None, measured(the_spec, obs))
    assert (verdict.fraction, verdict.message) == (0.0, "the target built a NoneType, not a torch.nn.Module")


def test_the_measurement_model_is_closed_and_strict():
    with pytest.raises(pydantic.ValidationError):
        ParamCountMeasurement.model_validate({"total": "23"})
    with pytest.raises(pydantic.ValidationError):
        ParamCountMeasurement.model_validate({"total": 23, "counted_by": "me"})


def test_a_double_precision_model_is_captured_with_double_weights():
    def double_net():
        return small_net().double()

    the_spec, obs = observed(double_net, expected=23)
    assert obs.captured.input_dtype == "float64"
    assert KIND.judge(the_spec, obs, None, measured(the_spec, obs)).fraction == 1.0


def test_the_input_is_a_batch_of_two_where_the_check_names_a_symbol():
    the_spec, obs = observed(small_net, expected=23)
    assert obs.captured.input_shapes == [[2, 4]]
