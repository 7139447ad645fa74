"""``architecture``: module order, module counts and traced shapes, with symbols such as 4+3*k.

Judges on crafted traces, and the probe in-process on a small DenseNet as the
`resmlp-densenet` handout describes it (concatenating dense blocks) and on a variant whose
blocks add instead, which must fail the channel-count questions.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from grader import checks
from grader.checks.architecture import ArchitectureObservation, Call, ordinal, outermost, parse_dim
from grader.checks.base import ProbeContext
from grader.checks.toolkit.capture import capture_view
from grader.targets import TargetSpec

KIND = checks.get("architecture")


def spec(**fields: Any):
    return KIND.Spec.model_validate({"id": "arch", "kind": "architecture", "points": 3, "target": "net",
                                     "input": ["B", 1, 28, 28], **fields})


def trace(*calls: tuple[str, int, list[int] | None, list[int] | None]) -> ArchitectureObservation:
    """Calls as ``(type, parent, input shape, output shape)``; each call is its own instance."""
    return ArchitectureObservation(model_type="Net", is_module=True, truncated=False, calls=[
        Call(type=t, path=str(i), parent=parent, instance=i, input=i_shape, output=o_shape, output_type="torch.Tensor")
        for i, (t, parent, i_shape, o_shape) in enumerate(calls)])


# ================================================================ expressions and spec


def test_parse_dim():
    assert parse_dim("4+3*k") == [(4, None), (3, "k")]
    assert parse_dim("k") == [(1, "k")]
    assert parse_dim("2*k - 1") == [(2, "k"), (-1, None)]
    for bad in ["4+", "k**2", "__import__('os')", "3*k*k", "k*3", ""]:
        with pytest.raises(ValueError):
            parse_dim(bad)


def test_ordinal():
    assert [ordinal(i) for i in (0, 1, 2, 3, 10, 11, 21, -1, -2)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "22nd", "last", "2nd to last"]


def test_a_symbol_must_be_bound_before_an_expression_uses_it():
    with pytest.raises(ValueError, match=r"k in '4\+3\*k' \(the 1st DenseBlock\) is used before a dimension binds it"):
        spec(expect=[{"module": "DenseBlock", "output": ["B", "4+3*k", 14, 14]}])


def test_a_malformed_dimension_is_a_rubric_error():
    with pytest.raises(ValueError, match="is not a dimension"):
        spec(expect=[{"module": "Linear", "input": ["B", "k**2"]}])


def test_registered_and_accepted_by_the_rubric():
    from grader.rubric import Rubric

    rubric = Rubric.model_validate({
        "assignment": "resmlp-densenet", "title": "t", "reference": "reference", "targets": {"net": {"name": "Net"}},
        "checks": [{"id": "arch", "kind": "architecture", "target": "net", "input": ["B", 1, 28, 28], "points": 1,
                    "contains": {"DenseBlock": 2}}]})
    assert rubric.checks[0].kind == "architecture"


# ================================================================ judge on crafted traces

DENSENET_TRACE = trace(
    ("Conv2d", -1, [2, 1, 28, 28], [2, 4, 28, 28]),      # 0
    ("AvgPool2d", -1, [2, 4, 28, 28], [2, 4, 14, 14]),   # 1
    ("DenseBlock", -1, [2, 4, 14, 14], [2, 13, 14, 14]),  # 2: k = 3
    ("Conv2d", 2, [2, 4, 14, 14], [2, 3, 14, 14]),       # 3
    ("Transition", -1, [2, 13, 14, 14], [2, 4, 7, 7]),   # 4
    ("Conv2d", 4, [2, 13, 14, 14], [2, 4, 14, 14]),      # 5
    ("AvgPool2d", 4, [2, 4, 14, 14], [2, 4, 7, 7]),      # 6
    ("DenseBlock", -1, [2, 4, 7, 7], [2, 13, 7, 7]),     # 7
    ("Conv2d", 7, [2, 4, 7, 7], [2, 3, 7, 7]),           # 8
    ("Linear", -1, [2, 13], [2, 10]),                     # 9
)

QUESTIONS = [
    {"module": "Conv2d", "inside": "DenseBlock", "output": ["B", "k", 14, 14]},
    {"module": "DenseBlock", "index": 0, "input": ["B", 4, 14, 14], "output": ["B", "4+3*k", 14, 14]},
    {"module": "DenseBlock", "index": 1, "input": ["B", 4, 7, 7]},
    {"module": "Linear", "index": -1, "input": ["B", "4+3*k"]},
]


def test_sequence_keeps_outermost_matches_and_ignores_unnamed_types():
    assert outermost(DENSENET_TRACE.calls, ["Conv2d", "AvgPool2d", "DenseBlock", "Transition*", "Linear"]) == \
        ["Conv2d", "AvgPool2d", "DenseBlock", "Transition", "DenseBlock", "Linear"]
    assert outermost(DENSENET_TRACE.calls, ["Conv2d"]) == ["Conv2d"] * 4


def test_sequence_exact_passes():
    the_spec = spec(sequence=["Conv2d", "AvgPool2d", "DenseBlock", "Transition*|TransLayer", "DenseBlock", "Linear"])
    v = KIND.judge(the_spec, DENSENET_TRACE, None)
    assert v.fraction == 1.0, v.message


def test_sequence_exact_fails_with_what_was_found():
    the_spec = spec(sequence=["Conv2d", "DenseBlock", "Linear"])
    v = KIND.judge(the_spec, DENSENET_TRACE, None)
    assert v.fraction == 0.0
    # Transition is not named, so it is transparent and the convolution inside it counts.
    assert v.message == ("modules in order (exact): Conv2d, DenseBlock, Linear: "
                         "got Conv2d, DenseBlock, Conv2d, DenseBlock, Linear")


def test_sequence_in_order_allows_more():
    v = KIND.judge(spec(sequence=["Conv2d", "DenseBlock", "Linear"], sequence_match="in-order"), DENSENET_TRACE, None)
    assert v.fraction == 1.0
    v = KIND.judge(spec(sequence=["Linear", "DenseBlock"], sequence_match="in-order"), DENSENET_TRACE, None)
    assert v.fraction == 0.0


def test_contains_counts_distinct_modules():
    obs = trace(("ResBlock", -1, [2, 8], [2, 8]), ("Linear", 0, [2, 8], [2, 8]), ("ResBlock", -1, [2, 8], [2, 8]))
    obs.calls[2].instance = 0  # the same block called twice
    v = KIND.judge(spec(contains={"ResBlock": 2}), obs, None)
    assert v.message == "contains at least 2 ResBlock: got 1"
    assert KIND.judge(spec(contains={"ResBlock": 1}), obs, None).fraction == 1.0


def test_densenet_questions_pass_with_the_students_own_growth_rate():
    v = KIND.judge(spec(expect=QUESTIONS), DENSENET_TRACE, None)
    assert v.fraction == 1.0, v.message
    assert [r["got"] for r in v.table] == ["[2, 3, 14, 14] with B=2, k=3", "[2, 4, 14, 14] with B=2",
                                           "[2, 13, 14, 14] with B=2, k=3", "[2, 4, 7, 7] with B=2",
                                           "[2, 13] with B=2, k=3"]
    assert v.table[1]["requirement"] == "the 1st DenseBlock: input [B, 4, 14, 14]"


def test_a_wrong_channel_count_says_what_was_expected_and_why():
    obs = DENSENET_TRACE.model_copy(deep=True)
    obs.calls[2].output = [2, 7, 14, 14]
    v = KIND.judge(spec(expect=QUESTIONS, partial_credit=True), obs, None)
    assert v.fraction == pytest.approx(4 / 5)
    assert v.message == "the 1st DenseBlock: output [B, 4+3*k, 14, 14]: got [2, 7, 14, 14], " \
                        "expected [2, 13, 14, 14] with B=2, k=3"


def test_a_missing_call_is_reported_and_leaves_its_symbol_unknown():
    obs = trace(("Conv2d", -1, [2, 1, 28, 28], [2, 4, 28, 28]), ("Linear", -1, [2, 13], [2, 10]))
    v = KIND.judge(spec(expect=QUESTIONS), obs, None)
    assert v.table[0]["got"] == "no such call (0 Conv2d called)"
    assert v.table[-1]["got"] == "[2, 13], expected [2, ?] with B=2, k=?"


def test_wildcard_and_wrong_rank():
    v = KIND.judge(spec(expect=[{"module": "Linear", "input": ["B", "*"]}]), DENSENET_TRACE, None)
    assert v.fraction == 1.0
    v = KIND.judge(spec(expect=[{"module": "Linear", "input": ["B", 13, 1]}]), DENSENET_TRACE, None)
    assert v.message == "the 1st Linear: input [B, 13, 1]: got [2, 13], expected [2, 13, 1] with B=2"


def test_a_non_tensor_output():
    obs = trace(("Linear", -1, [2, 13], None))
    obs.calls[0].output_type = "tuple"
    v = KIND.judge(spec(expect=[{"module": "Linear", "output": ["B", 10]}]), obs, None)
    assert v.message == "the 1st Linear: output [B, 10]: got a tuple, not a tensor"


def test_a_target_that_is_not_a_module():
    obs = ArchitectureObservation(model_type="NoneType", is_module=False, calls=[], truncated=False)
    v = KIND.judge(spec(contains={"Linear": 1}), obs, None)
    assert v.message == "the target built a NoneType, not a torch.nn.Module"


# ================================================================ probe on small DenseNets


class DenseBlock(nn.Module):
    """Each layer sees the concatenation of everything before it: channels grow by `growth`."""

    def __init__(self, in_channels: int, layers: int, growth: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(in_channels + i * growth), nn.ReLU(),
                          nn.Conv2d(in_channels + i * growth, growth, 3, padding=1)) for i in range(layers))

    def forward(self, x):
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


def summing_dense_block() -> type[nn.Module]:
    """The classic mistake, under the same class name: adds each layer's output instead of
    concatenating it, so the channel count never grows."""

    class DenseBlock(nn.Module):
        def __init__(self, in_channels: int, layers: int, growth: int):
            super().__init__()
            self.layers = nn.ModuleList(nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),
                                                      nn.Conv2d(in_channels, in_channels, 3, padding=1))
                                        for _ in range(layers))

        def forward(self, x):
            for layer in self.layers:
                x = x + layer(x)
            return x

    return DenseBlock


class Transition(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm, self.conv, self.pool = nn.BatchNorm2d(in_channels), nn.Conv2d(in_channels, out_channels, 1), \
            nn.AvgPool2d(2, 2)

    def forward(self, x):
        return self.pool(self.conv(self.norm(x)))


def dense_net(growth: int = 5, block: type[nn.Module] = DenseBlock) -> nn.Module:
    width = 4 + 3 * growth if block is DenseBlock else 4
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AvgPool2d(2, 2), block(4, 3, growth),
                         Transition(width, 4), block(4, 3, growth), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, 10))


def summing_dense_net(growth: int = 5) -> nn.Module:
    return dense_net(growth, summing_dense_block())


DENSENET = dict(
    target="net", input=["B", 1, 28, 28],
    sequence=["Conv2d", "AvgPool2d", "DenseBlock", "Transition*", "DenseBlock", "Linear"],
    contains={"DenseBlock": 2},
    expect=QUESTIONS + [{"module": "DenseBlock", "index": 1, "output": ["B", "4+3*k", 7, 7]}])


def probe(the_spec: Any, builder: Any) -> ArchitectureObservation:
    ctx = ProbeContext(namespaces=[("notebook", {"builder": builder})], targets={"net": TargetSpec(name="builder")})
    ctx.seed_everything()
    return KIND.probe(the_spec, ctx)


def test_probe_traces_a_densenet_and_its_questions_pass():
    the_spec = spec(**DENSENET)
    obs = probe(the_spec, dense_net)
    first_block = next(c for c in obs.calls if c.type == "DenseBlock")
    assert (first_block.input, first_block.output, first_block.path) == ([2, 4, 14, 14], [2, 19, 14, 14], "2")
    block_index = obs.calls.index(first_block)
    inner = [c for c in obs.calls if c.parent >= 0 and obs.calls[c.parent].parent == block_index]
    assert [c.type for c in inner] == ["BatchNorm2d", "ReLU", "Conv2d"] * 3  # inside the block's 3 Sequentials
    assert [c.path for c in inner][:3] == ["2.layers.0.0", "2.layers.0.1", "2.layers.0.2"]
    v = KIND.judge(the_spec, obs, None)
    assert v.fraction == 1.0, v.message
    assert v.message == f"all {len(v.table)} requirements met"


def test_a_summing_dense_block_fails_the_channel_counts():
    the_spec = spec(**DENSENET)
    v = KIND.judge(the_spec, probe(the_spec, summing_dense_net), None)
    failed = [r["requirement"] for r in v.table if not r["ok"]]
    assert failed == ["the 1st DenseBlock: output [B, 4+3*k, 14, 14]", "the last Linear: input [B, 4+3*k]",
                      "the 2nd DenseBlock: output [B, 4+3*k, 7, 7]"]
    assert v.message.startswith("the 1st DenseBlock: output [B, 4+3*k, 14, 14]: "
                                "got [2, 4, 14, 14], expected [2, 16, 14, 14] with B=2, k=4")


def test_probe_sees_modules_kept_in_a_plain_list():
    class Hidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = [nn.Linear(784, 10)]  # not registered: named_modules() does not see it

        def forward(self, x):
            return self.blocks[0](x.flatten(1))

    the_spec = spec(expect=[{"module": "Linear", "input": ["B", 784], "output": ["B", 10]}])
    obs = probe(the_spec, Hidden)
    assert [(c.type, c.path) for c in obs.calls] == [("Linear", "(not registered)")]
    assert KIND.judge(the_spec, obs, None).fraction == 1.0


def test_resmlp_contains_a_res_block_that_keeps_its_width():
    class ResBlock(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)

        def forward(self, x):
            return torch.relu(x + self.fc2(torch.relu(self.fc1(x))))

    def res_mlp():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), ResBlock(32), ResBlock(32), nn.Linear(32, 10))

    the_spec = spec(contains={"ResBlock": 1},
                    expect=[{"module": "ResBlock", "input": ["B", "d"], "output": ["B", "d"]}])
    v = KIND.judge(the_spec, probe(the_spec, res_mlp), None)
    assert v.fraction == 1.0, v.message
    assert [r["got"] for r in v.table] == ["2", "[2, 32] with B=2, d=32", "[2, 32] with B=2, d=32"]


def test_the_trace_crosses_the_boundary(tmp_path):
    from grader import observations
    from grader.sandbox import probe_side

    the_spec = spec(**DENSENET)
    ctx = ProbeContext(namespaces=[("notebook", {"builder": dense_net})], targets={"net": TargetSpec(name="builder")})
    writer = observations.ArrayWriter()
    record = probe_side.probe_one(capture_view(the_spec), ctx, writer)
    assert record["status"] == "observed", record.get("error")
    observations.write(tmp_path, [record], writer)
    doc, arrays = observations.load(tmp_path)
    obs = observations.validate_data(KIND.Observation, doc.records[0].data, arrays)
    assert KIND.judge(the_spec, obs, None).fraction == 1.0


def test_a_forged_trace_with_a_parent_cycle_is_invalid_output():
    from grader import observations

    data = trace(("A", -1, [1], [1]), ("B", 0, [1], [1])).model_dump()
    data["calls"][0]["parent"] = 1
    with pytest.raises(observations.InvalidOutput, match="call 0 names call 1 as its parent"):
        observations.validate_data(KIND.Observation, data, {})


# ================================================================ held to account by the measured forward


def measured_verdict(the_spec: Any, obs: ArchitectureObservation):
    """The verdict with the measure stage's code run here on the probe's capture."""
    from grader.checks.base import Measured

    return KIND.judge(the_spec, obs, None, Measured(11, data=KIND.measure(the_spec, obs, 11, {})))


def test_an_honest_trace_is_consistent_with_its_measured_forward():
    the_spec = spec(**DENSENET)
    obs = probe(the_spec, dense_net)
    measurement = KIND.measure(the_spec, obs, 11, {})
    assert measurement.problem == "" and measurement.shapes[0] == [2, 1, 28, 28]
    verdict = measured_verdict(the_spec, obs)
    assert verdict.fraction == 1.0 and verdict.review is None, verdict.message


def test_a_trace_rewritten_with_the_shapes_asked_for_is_caught_by_the_measured_forward():
    """A network whose second convolution is too narrow, its trace rewritten to show the right width."""
    the_spec = spec(**DENSENET)
    obs = probe(the_spec, dense_net)
    calls = [call.model_copy(update={"output": [2, 99, *call.output[2:]]}) if call.type == "Conv2d" and i == 0
             else call for i, call in enumerate(obs.calls)]
    forged = obs.model_copy(update={"calls": calls})
    verdict = measured_verdict(the_spec, forged)
    assert verdict.fraction == 0.0 and verdict.review, verdict.message
    assert "never occur in its measured forward (Conv2d output [2, 99, 28, 28])" in verdict.message


def test_a_capture_on_another_input_than_the_probes_is_refused():
    the_spec = spec(**DENSENET)
    obs = probe(the_spec, dense_net)
    other = probe(spec(**{**DENSENET, "batch": 3}), dense_net).captured  # a faithful capture, on a batch of 3
    verdict = measured_verdict(the_spec, obs.model_copy(update={"captured": other}))
    assert verdict.fraction == 0.0 and "captured on another input" in verdict.message and verdict.review


def test_without_a_capture_the_trace_stands_but_a_person_is_told():
    the_spec = spec(**DENSENET)
    obs = probe(the_spec, dense_net).model_copy(update={"captured": None})
    verdict = measured_verdict(the_spec, obs)
    assert verdict.fraction == 1.0
    assert verdict.review.startswith("the module calls the run reported could not be checked against the model's "
                                     "forward (the run shipped no capture of the model's forward)")
