"""grader.checks.toolkit.common.call_target: building a target when the check's arguments do not fit it."""

from __future__ import annotations

import pytest
import torch

from grader.checks.base import ProbeContext, StudentRaised, Unresolved
from grader.checks.toolkit.common import SignatureMismatch, call_target
from grader.targets import TargetSpec

OWN = __name__


def context(spec: TargetSpec, **objects) -> ProbeContext:
    return ProbeContext(namespaces=[("notebook", {"__name__": OWN, **objects})], targets={"model": spec})


class NoArgumentNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class StoresItsArguments(torch.nn.Module):
    """FashionNet(batch_size, val_size, tr_size): the arguments are kept, the layers are fixed."""

    def __init__(self, batch_size, val_size, tr_size):
        super().__init__()
        self.sizes = (batch_size, val_size, tr_size)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class SizedByItsArguments(torch.nn.Module):
    def __init__(self, hidden, out):
        super().__init__()
        self.fc = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Linear(hidden, out))


class ThreeSizes(torch.nn.Module):
    """ResBlock(in_features, out1, out2): both layers' output sizes are parameters."""

    def __init__(self, in_features, out1, out2):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(in_features, out1), torch.nn.Linear(out1, out2)

    def forward(self, x):
        return torch.relu(self.fc2(torch.relu(self.fc1(x))) + x)


OPEN = TargetSpec(name="Model", kind="class", constructor="student")


def test_an_open_constructor_that_takes_no_arguments_is_built_with_none_and_the_message_says_so():
    ctx = context(OPEN, Model=NoArgumentNet)
    assert isinstance(call_target(ctx, "model", [3, 10]), NoArgumentNet)
    assert "built as Model() with its defaults" in ctx.found["model"].built


def test_a_constructor_the_handout_fixes_still_fails_with_both_signatures():
    ctx = context(TargetSpec(name="Model", kind="class"), Model=NoArgumentNet)
    with pytest.raises(StudentRaised) as raised:
        call_target(ctx, "model", [3, 10])
    assert isinstance(raised.value.exc, SignatureMismatch) and "Model(3, 10)" in str(raised.value.exc)


def test_an_open_constructor_without_defaults_is_built_as_the_students_own_network():
    built = SizedByItsArguments(7, 2)
    ctx = context(OPEN, Model=SizedByItsArguments, net=built)
    model = call_target(ctx, "model", [])
    assert model is not built and model.fc[0].out_features == 7
    assert "the student's `net`" in ctx.found["model"].built


def test_arguments_that_do_not_shape_the_network_get_stand_ins():
    ctx = context(OPEN, Model=StoresItsArguments)
    model = call_target(ctx, "model", [])
    assert isinstance(model, StoresItsArguments) and "do not change the network" in ctx.found["model"].built


def test_a_constructor_whose_arguments_shape_the_network_and_no_built_network_goes_to_a_person():
    ctx = context(OPEN, Model=SizedByItsArguments)
    with pytest.raises(Unresolved) as raised:
        call_target(ctx, "model", [])
    assert raised.value.resolution.problem == "unbuildable"
    assert "Model(hidden, out)" in raised.value.resolution.candidates[0]


def test_another_reading_of_the_handouts_constructor_takes_the_checks_arguments_by_position():
    spec = TargetSpec(name="ResBlock", kind="class",
                      readings=[{"take": [0, 1, 0], "reading": "(in, out1, out2), out2 = in so the skip fits"}])
    ctx = context(spec, ResBlock=ThreeSizes)
    block = call_target(ctx, "model", [32, 16])
    assert (block.fc1.in_features, block.fc1.out_features, block.fc2.out_features) == (32, 16, 32)
    assert ctx.found["model"].built.startswith("built as ResBlock(32, 16, 32)")


def test_a_double_precision_network_gets_double_inputs():
    import torch

    from grader.checks.toolkit.common import input_dtype

    double = torch.nn.Linear(3, 2).double()
    assert input_dtype(double, torch.float32) == torch.float64
    assert input_dtype(torch.nn.Linear(3, 2), torch.float32) == torch.float32
    assert input_dtype(torch.nn.ReLU(), torch.float32) == torch.float32  # no parameters: as asked
    assert input_dtype(double, torch.int64) == torch.int64  # integer inputs (token ids) are left alone
