"""model_capture: a built model's eval forward as graphs taking the input and every weight, the
weights beside them, and the measure side's rules for running them on fresh inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from grader import artifacts
from grader.checks.toolkit import model_capture
from grader.checks.base import ProbeContext
from grader.checks.toolkit.model_capture import CapturedModel, Refused

SEED = 1234


def ctx() -> ProbeContext:
    return ProbeContext(namespaces=[], targets={})


def captured_of(model, shapes, dtype=torch.float32) -> CapturedModel:
    return model_capture.capture(model, shapes, dtype, ctx(), "net()")


def measured(captured: CapturedModel, index: int = 0, shape=None):
    shape = shape or captured.input_shapes[index]
    return model_capture.run_forward(captured, index, shape, SEED,
                                     model_capture.weight_tensors(captured, SEED))


def expected_on_the_fresh_input(model, captured: CapturedModel, index: int = 0):
    x = model_capture.fresh_input(captured, captured.input_shapes[index], SEED, index)
    with torch.no_grad():
        return model(x)


def sequential():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def test_a_sequential_is_a_graph_of_its_input_and_weights_that_computes_its_output():
    model = sequential()
    captured = captured_of(model, [[5, 4]])
    assert captured.problem == "" and captured.graph_problems == [""]
    assert captured.graphs[0].inputs == ["input", "0.weight", "0.bias", "2.weight", "2.bias"]
    assert [(w.name, w.shape, w.parameter, w.requires_grad) for w in captured.weights][:2] == [
        ("0.weight", [3, 4], True, True), ("0.bias", [3], True, True)]
    assert np.array_equal(captured.weights[0].values, model[0].weight.detach().numpy())
    assert not captured.graphs[0].constants  # the weights are inputs, not baked in
    out = measured(captured)
    assert torch.allclose(out, expected_on_the_fresh_input(model, captured))


def test_batchnorm_running_statistics_are_buffers_and_its_counter_stays_behind():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    model.train()
    model(torch.randn(8, 4))  # running statistics that are not the defaults
    captured = captured_of(model, [[2, 4]])
    by_name = {w.name: w for w in captured.weights}
    assert set(by_name) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"}
    assert not by_name["1.running_mean"].parameter and not by_name["1.running_var"].requires_grad
    assert not model.training  # captured in eval mode
    assert torch.allclose(measured(captured), expected_on_the_fresh_input(model, captured))


def test_a_double_precision_model_is_captured_and_measured_in_double():
    model = sequential().double()
    captured = captured_of(model, [[3, 4]], torch.float64)
    assert captured.input_dtype == "float64" and {w.dtype for w in captured.weights} == {"float64"}
    out = measured(captured)
    assert out.dtype == torch.float64
    assert torch.equal(out, expected_on_the_fresh_input(model, captured))


class NumpyForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        doubled = torch.from_numpy(x.detach().numpy() * 2)  # outside torch's operators: baked in
        return self.fc(doubled)


def test_a_forward_through_numpy_is_right_only_on_the_input_it_was_captured_on():
    model = NumpyForward()
    captured = captured_of(model, [[3, 4]])
    assert captured.graphs[0].constants  # the doubled capture input
    with pytest.raises(Refused, match="does not depend on its input"):
        measured(captured)


class HardCodedBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x).mean(0, keepdim=True).expand(64, -1)


def test_a_model_that_hard_codes_the_batch_size_is_measured_as_it_behaves_on_each_shape():
    captured = captured_of(HardCodedBatch(), [[1, 4], [3, 4]])
    assert [list(measured(captured, i).shape) for i in range(2)] == [[64, 2], [64, 2]]


def test_each_input_shape_gets_its_own_graph():
    captured = captured_of(sequential(), [[1, 4], [3, 4]])
    assert captured.input_shapes == [[1, 4], [3, 4]] and len(captured.graphs) == 2
    assert [list(measured(captured, i).shape) for i in range(2)] == [[1, 2], [3, 2]]


# ---------------------------------------------------------------- what is not captured, and why


def test_something_not_a_module_is_not_captured():
    assert captured_of(lambda x: x, [[1, 4]]).problem == "net() built a function, not a torch.nn.Module"


def test_a_model_over_the_weight_cap_is_not_captured(monkeypatch):
    monkeypatch.setattr(model_capture, "MAX_WEIGHT_ELEMENTS", 20)
    captured = captured_of(sequential(), [[1, 4]])
    assert captured.problem == "net() has 23 weight elements, more than the 20 a captured model may have"
    assert captured.graphs == [] and captured.why_not(0) == captured.problem


def test_weights_too_many_to_ship_travel_as_shapes_and_are_measured_with_stand_ins(monkeypatch):
    monkeypatch.setattr(model_capture, "MAX_VALUE_BYTES", 16)
    captured = captured_of(sequential(), [[3, 4]])
    assert all(w.values is None for w in captured.weights) and captured.graphs[0] is not None
    assert list(measured(captured).shape) == [3, 2]


class Raises(nn.Module):
    def forward(self, x):
        raise ValueError("not yet")


class ReturnsATuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x), x


def test_a_forward_that_raises_or_returns_no_tensor_has_no_graph_and_says_why():
    raised = captured_of(Raises(), [[1, 4]])
    assert raised.graphs == [None]
    assert raised.why_not(0) == ("its forward could not be captured: ValueError: not yet (while capturing net() on "
                                 "an input of shape [1, 4] as a graph of torch operators)")
    assert captured_of(ReturnsATuple(), [[1, 4]]).why_not(0) == "the model returned a tuple, not a torch.Tensor"


def test_a_forward_past_the_runs_budget_of_operations_is_not_shipped():
    context = ctx()
    context.graph_nodes_left = 3
    captured = model_capture.capture(sequential(), [[1, 4]], torch.float32, context, "net()")
    assert captured.graphs == [None] and "operations a graph may hold" in captured.why_not(0)


def test_a_forward_baking_in_too_many_bytes_is_not_shipped(monkeypatch):
    monkeypatch.setattr(model_capture, "MAX_CONSTANT_BYTES", 8)
    captured = captured_of(NumpyForward(), [[3, 4]])
    assert captured.graphs == [None]
    assert captured.why_not(0) == ("its forward bakes in 48 bytes of tensors made outside torch's operators, more "
                                   "than 8")


# ---------------------------------------------------------------- the measure side's rules


def test_a_graph_that_does_not_take_the_weights_shipped_is_refused():
    captured = captured_of(sequential(), [[2, 4]])
    padded = captured.model_copy(update={"weights": [*captured.weights, captured.weights[0].model_copy(
        update={"name": "padding"})]})
    with pytest.raises(Refused, match=r"not the input and the 5 weights shipped with it"):
        measured(padded)


def test_values_of_another_shape_than_declared_are_refused():
    captured = captured_of(sequential(), [[2, 4]])
    first = captured.weights[0].model_copy(update={"shape": [4, 3]})
    with pytest.raises(Refused, match=r"weight '0.weight' ships values of shape \[3, 4\], declared \[4, 3\]"):
        model_capture.weight_tensors(captured.model_copy(update={"weights": [first, *captured.weights[1:]]}), SEED)


def test_a_forged_input_shape_is_refused_before_anything_is_drawn():
    captured = captured_of(sequential(), [[2, 4]])
    with pytest.raises(Refused, match="not one a check asks for"):
        model_capture.fresh_input(captured, [100_000, 100_000], SEED, 0)


def test_the_fresh_input_comes_from_the_hosts_seed():
    captured = captured_of(sequential(), [[2, 4]])
    one, again = (model_capture.fresh_input(captured, [2, 4], SEED, 0) for _ in range(2))
    assert torch.equal(one, again)
    assert not torch.equal(one, model_capture.fresh_input(captured, [2, 4], SEED + 1, 0))


def test_the_inputs_reaching_the_outputs_leave_out_a_weight_the_forward_never_reads():
    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)
            self.spare = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)

    graph = captured_of(Unused(), [[2, 4]]).graphs[0]
    artifacts.check(graph)
    assert model_capture.inputs_reaching_outputs(graph) == {"input", "fc.weight", "fc.bias"}


class FilledIn(nn.Module):
    """A convolution the way many students write it: a zero tensor filled in, window by window,
    through indexing (a view, then a copy into it), then a weight scaling the result in place."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 1, 3, 3))
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        n, _, h, w = x.shape
        out = torch.zeros(n, 2, h - 2, w - 2)
        for i in range(h - 2):
            for j in range(w - 2):
                out[:, :, i, j] = torch.einsum("nchw,ochw->no", x[:, :, i:i + 3, j:j + 3], self.weight)
        out.mul_(self.scale)
        return out


def test_an_output_filled_in_through_views_and_in_place_writes_depends_on_what_was_written():
    model = FilledIn()
    captured = captured_of(model, [[2, 1, 6, 6]])
    graph = captured.graphs[0]
    artifacts.check(graph)
    assert model_capture.inputs_reaching_outputs(graph) == {"input", "weight", "scale"}
    out = measured(captured)  # not refused: it is the model's forward, and it computes what the model does
    assert torch.allclose(out, expected_on_the_fresh_input(model, captured), atol=1e-5)


def test_an_output_that_only_a_constant_was_written_into_still_does_not_depend_on_the_input():
    class Overwritten(nn.Module):
        def forward(self, x):
            out = torch.empty(x.shape[0], 2)
            out[:, :] = 0.0
            return out

    graph = captured_of(Overwritten(), [[2, 4]]).graphs[0]
    artifacts.check(graph)
    assert model_capture.inputs_reaching_outputs(graph) == set()
