"""Graph artifacts: what capture records (forward, backward, a custom backward, escapes kept as
constants), what the loader refuses, and a fuzz test that anything else becomes ``ArtifactError``."""

from __future__ import annotations

import json
import random
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grader import artifacts
from grader.artifacts import ArtifactError, Graph


def loop_conv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A student's convolution: one window at a time."""
    out = torch.zeros(x.shape[0], w.shape[0], x.shape[2] - w.shape[2] + 1, x.shape[3] - w.shape[3] + 1)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = x[:, None, :, i:i + w.shape[2], j:j + w.shape[3]]
            out[:, :, i, j] = (window * w[None]).sum((2, 3, 4))
    return out


def joint(op):
    def traced(x, w, upstream):
        out = op(x, w)
        return (out, *torch.autograd.grad(out, (x, w), upstream, allow_unused=True))
    return traced


def captured(op, shape=(2, 3, 6, 6), kernel=(4, 3, 3, 3)) -> Graph:
    x, w = torch.randn(shape, requires_grad=True), torch.randn(kernel, requires_grad=True)
    upstream = torch.randn(shape[0], kernel[0], shape[2] - kernel[2] + 1, shape[3] - kernel[3] + 1)
    graph = artifacts.capture(joint(op), [x, w, upstream], ["input", "weight", "upstream"])
    # what crosses the boundary is JSON plus arrays: the loader sees it as the host would
    return Graph.model_validate({**json.loads(json.dumps(graph.model_dump(exclude={"constants"}))),
                                 "constants": graph.constants})


def on_fresh_inputs(graph: Graph, shape=(2, 3, 6, 6), kernel=(4, 3, 3, 3)):
    gen = torch.Generator().manual_seed(99)
    x, w = torch.randn(shape, generator=gen), torch.randn(kernel, generator=gen)
    upstream = torch.randn(shape[0], kernel[0], shape[2] - kernel[2] + 1, shape[3] - kernel[3] + 1, generator=gen)
    artifacts.check(graph)
    got = artifacts.run(graph, [x, w, upstream])
    x.requires_grad_(True), w.requires_grad_(True)
    want = F.conv2d(x, w)
    return got, (want, *torch.autograd.grad(want, (x, w), upstream))


def test_a_hand_written_op_is_captured_forward_and_backward_and_matches_on_fresh_inputs():
    graph = captured(loop_conv)
    got, want = on_fresh_inputs(graph)
    for g, w in zip(got, want):
        assert torch.allclose(g, w, atol=1e-4)
    assert "aten.convolution" not in graph.operators() and "aten.mul" in graph.operators()


def test_torchs_convolution_is_in_the_graph_however_it_was_reached():
    conv = getattr(F, "con" + "v2d")  # an alias no source scan would name
    assert "aten.convolution" in captured(lambda x, w: conv(x, w)).operators()


def test_a_custom_backward_is_what_the_graph_computes():
    class WrongBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return F.conv2d(x, w)

        @staticmethod
        def backward(ctx, upstream):
            x, w = ctx.saved_tensors
            return torch.zeros_like(x), torch.zeros_like(w)  # the student's (wrong) gradients

    got, want = on_fresh_inputs(captured(WrongBackward.apply))
    assert torch.allclose(got[0], want[0], atol=1e-5)
    assert not got[1].any() and not got[2].any()


def test_values_computed_outside_torchs_operators_are_baked_in_and_wrong_on_fresh_inputs():
    def through_numpy(x, w):  # the capture's inputs give the right numbers; no others do
        return (x.sum() + w.sum()) * 0 + torch.from_numpy(F.conv2d(x.detach(), w.detach()).numpy())

    graph = captured(through_numpy)
    assert "constant" in [target for target, _, _ in graph.nodes]
    got, want = on_fresh_inputs(graph)
    assert not torch.allclose(got[0], want[0], atol=1e-3)


def test_switching_the_recording_off_leaves_a_constant_not_a_hidden_convolution():
    from torch.utils._python_dispatch import _disable_current_modes

    def hidden(x, w):
        with _disable_current_modes():
            out = F.conv2d(x, w)
        return out + x.sum() * 0

    graph = captured(hidden)
    assert "aten.convolution" not in graph.operators()
    got, want = on_fresh_inputs(graph)
    assert not torch.allclose(got[0], want[0], atol=1e-3)


def test_a_trace_past_the_node_cap_stops_with_a_message(monkeypatch):
    monkeypatch.setattr(artifacts, "MAX_NODES", 50)
    with pytest.raises(ArtifactError, match="grew past the 50 operations"):
        captured(loop_conv)


# ================================================================ the loader's rules


def graph_of(nodes, inputs=("x",), outputs=({"n": 1},), **extra) -> Graph:
    return Graph.model_validate({"inputs": list(inputs), "nodes": nodes, "outputs": list(outputs), **extra})


@pytest.mark.parametrize("nodes, problem", [
    ([["prims.add.default", [{"n": 0}, {"n": 0}], {}]], "not an aten operator"),
    ([["builtins.eval", ["1"], {}]], "not an aten operator"),
    ([["aten.from_file.default", ["/etc/passwd"], {}]], "refused"),
    ([["aten.no_such_op.default", [{"n": 0}], {}]], "does not exist in this torch"),
    ([["aten.relu.default", [{"n": 1}], {}]], "not an earlier one"),
    ([["aten.relu.default", [{"n": -1}], {}]], "not an earlier one"),
    ([["aten.relu.default", [{"n": True}], {}]], "not an earlier one"),
    ([["aten.relu.default", [{"c": 0}], {}]], "refers to constant 0 of 0"),
    ([["aten.relu.default", [{"n": 0}], {"bad key": 1}]], "is not a name"),
    ([["aten.relu.default", [{"dtype": "Tensor"}], {}]], "is not a torch dtype"),
    ([["aten.relu.default", [{"float": "1e999"}], {}]], "float"),
    ([["aten.relu.default", [{"pickle": "x"}], {}]], "not a value of the format"),
    ([["aten.relu.default", ["x" * 100], {}]], "100 characters"),
    ([["aten.relu.default", [{"n": 0}]]], "triple"),
    ([["constant", [{"c": 0}, 1], {}]], "one constant reference"),
])
def test_a_graph_breaking_the_rules_is_refused_naming_the_node(nodes, problem):
    with pytest.raises(ArtifactError, match=problem):
        artifacts.check(graph_of(nodes))


def test_constants_and_their_dtypes_must_agree():
    with pytest.raises(ArtifactError, match="1 constants but 0 dtypes"):
        artifacts.check(graph_of([["constant", [{"c": 0}], {}]], constants=[np.zeros(2)]))


def test_unknown_keys_are_refused_by_the_model():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Graph.model_validate({"inputs": [], "nodes": [], "outputs": [], "score": 1})


def test_a_node_that_fails_when_run_names_itself():
    graph = graph_of([["aten.mm.default", [{"n": 0}, {"n": 0}], {}]])
    artifacts.check(graph)
    with pytest.raises(ArtifactError, match=r"node 0 \(aten.mm.default\) failed: RuntimeError"):
        artifacts.run(graph, [torch.zeros(2, 3)])


# ================================================================ fuzz


def _mutations(rng: random.Random, value):
    """A random change somewhere in a JSON value: a replaced, dropped or duplicated part."""
    choices = [0, -1, 10**9, 2.5, "aten.relu.default", None, True, [], {}, {"n": 10**6}, {"c": 3}, {"dtype": "int8"},
               {"device": "cuda"}, [{"n": 0}] * 3, "x" * 70]
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        op = rng.random()
        if op < 0.5:
            return value[:i] + [_mutations(rng, value[i])] + value[i + 1:]
        if op < 0.75:
            return value[:i] + value[i + 1:]
        return value[:i] + [value[i]] + value[i:]
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value))
        return {**value, key: _mutations(rng, value[key])}
    return rng.choice(choices)


def test_fuzzed_graphs_load_and_run_or_give_an_artifact_error(capsys):
    graph = captured(loop_conv, shape=(1, 2, 4, 4), kernel=(2, 2, 2, 2))
    plain = json.loads(json.dumps(graph.model_dump(exclude={"constants"})))
    rng = random.Random(12)
    x, w, upstream = torch.randn(1, 2, 4, 4), torch.randn(2, 2, 2, 2), torch.randn(1, 2, 3, 3)
    outcomes = {"ran": 0, "refused": 0}
    for _ in range(400):
        mutated = plain
        for _ in range(rng.randint(1, 3)):
            mutated = _mutations(rng, mutated)
        start = time.process_time()  # CPU time: a busy machine does not stretch it
        try:
            candidate = Graph.model_validate({**mutated, "constants": []} if isinstance(mutated, dict) else mutated)
            artifacts.check(candidate)
            artifacts.run(candidate, [x, w, upstream])
            outcomes["ran"] += 1
        except ArtifactError as exc:
            assert str(exc), "an ArtifactError says what is wrong"
            outcomes["refused"] += 1
        except Exception as exc:  # noqa: BLE001 - the model's own validation is the loader's first rule
            from pydantic import ValidationError

            assert isinstance(exc, ValidationError), f"{type(exc).__name__}: {exc}"
            outcomes["refused"] += 1
        assert time.process_time() - start < 5
    assert outcomes["ran"] and outcomes["refused"]


def test_a_runs_graphs_share_one_budget(monkeypatch):
    from grader.checks.base import ProbeContext

    monkeypatch.setattr(artifacts, "MAX_NODES_PER_RUN", 700)
    ctx = ProbeContext(namespaces=[], targets={})
    x, w = torch.randn(1, 1, 4, 4, requires_grad=True), torch.randn(1, 1, 2, 2, requires_grad=True)
    upstream = torch.randn(1, 1, 3, 3)
    first = ctx.capture(joint(loop_conv), [x, w, upstream], ["input", "weight", "upstream"])
    assert ctx.graph_nodes_left == 700 - len(first.nodes) > 0
    with pytest.raises(ArtifactError, match="grew past the|already hold the 700"):
        for _ in range(10):
            ctx.capture(joint(loop_conv), [x, w, upstream], ["input", "weight", "upstream"])
