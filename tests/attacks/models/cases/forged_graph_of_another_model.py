"""A wrong network (D -> 3) whose records are rewritten with a faithful capture of another
network, a right one its code builds on the side. The graphs are real computations that measure
right on fresh inputs: measuring cannot tell them from the submitted network's, so this case
scores full marks. What catches it is the host's scan of the submitted code, which flags the
reach into the grader's modules for a person (tests/attacks/test_model_attacks.py)."""

import json
import sys

import torch
from torch import nn

import grader.checks.param_count as param_count
import grader.checks.shape as shape
import grader.observations as observations
from grader.checks.toolkit import model_capture
from grader.checks.base import ProbeContext
from grader.checks.toolkit.capture import from_capture_view

_write = observations.write
_views = {view["id"]: view for view in json.loads(open(sys.argv[-1]).read())["plan"]["checks"]}


def _right_model():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def _forged(view):
    context = ProbeContext(namespaces=[], targets={})
    if view["kind"] == "shape":
        spec = from_capture_view(shape.ShapeSpec, view)
        shapes = [shape.concrete(spec.input, b) for b in spec.bindings()]
        return shape.ShapeObservation(forwards=[
            shape.Forward(input_shape=s, output_type="torch.Tensor", output_shape=[s[0], 2]) for s in shapes],
            captured=model_capture.capture(_right_model(), shapes, torch.float32, context, "Net(4, 2)"))
    return param_count.ParamCountObservation(
        module_type="torch.nn.modules.container.Sequential", total=58, trainable=58,
        captured=model_capture.capture(_right_model(), [[2, 4]], torch.float32, context, "Net(4, 2)"))


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
