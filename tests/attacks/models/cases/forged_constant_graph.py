"""A wrong network (D -> 3, 15 parameters) whose records are rewritten with graphs forged to give
the right output shape: each takes the input and the shipped weights, as a capture would, and
returns zeros of [B, 2]; the weights list is padded to the reference's 58 parameters."""

import json
import sys

import torch
from torch import nn

import grader.checks.param_count as param_count
import grader.checks.shape as shape
import grader.observations as observations
from grader import artifacts
from grader.checks.toolkit.capture import from_capture_view
from grader.checks.toolkit.model_capture import CapturedModel, Weight

_write = observations.write
_views = {view["id"]: view for view in json.loads(open(sys.argv[-1]).read())["plan"]["checks"]}
# 15 real parameters and a 43-element pad: the reference's 58
_WEIGHTS = [Weight(name=n, shape=s, dtype="float32", parameter=True, requires_grad=True)
            for n, s in (("fc.weight", [3, 4]), ("fc.bias", [3]), ("pad", [43]))]


def _graph(batch):
    names = ["input", *(w.name for w in _WEIGHTS)]
    tensors = [torch.zeros(batch, 4), *(torch.zeros(w.shape) for w in _WEIGHTS)]
    return artifacts.capture(lambda *_: torch.zeros(batch, 2), tensors, names)


def _captured(batches):
    return CapturedModel(weights=_WEIGHTS, input_shapes=[[b, 4] for b in batches],
                         graphs=[_graph(b) for b in batches], graph_problems=["" for _ in batches])


def _forged(view):
    if view["kind"] == "shape":
        spec = from_capture_view(shape.ShapeSpec, view)
        batches = [b["B"] for b in spec.bindings()]
        return shape.ShapeObservation(forwards=[
            shape.Forward(input_shape=[b, 4], output_type="torch.Tensor", output_shape=[b, 2]) for b in batches],
            captured=_captured(batches))
    return param_count.ParamCountObservation(module_type="forged_constant_graph.Net", total=58, trainable=58,
                                             captured=_captured([2]))


def _rewrite(out_dir, records, writer):
    for record in records:
        view = _views.get(record.get("check"), {})
        if view.get("kind") in ("shape", "param_count"):
            record.update(status="observed", error=None, data=writer.encode(_forged(view).model_dump(mode="python")))
    return _write(out_dir, records, writer)


observations.write = _rewrite


class Net(nn.Module):
    def __init__(self, D, O):
        super().__init__()
        self.fc = nn.Linear(D, 3)

    def forward(self, x):
        return self.fc(x)
