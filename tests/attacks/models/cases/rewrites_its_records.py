"""A wrong network (D -> 3, 15 parameters) whose records are rewritten on their way out: the
shapes and the count the reference gives, and no capture of the model at all."""

import json
import sys

from torch import nn

import grader.checks.param_count as param_count
import grader.checks.shape as shape
import grader.observations as observations
from grader.checks.toolkit.capture import from_capture_view

_write = observations.write
_views = {view["id"]: view for view in json.loads(open(sys.argv[-1]).read())["plan"]["checks"]}


def _forged(view):
    if view["kind"] == "shape":
        spec = from_capture_view(shape.ShapeSpec, view)
        return shape.ShapeObservation(forwards=[
            shape.Forward(input_shape=shape.concrete(spec.input, b), output_type="torch.Tensor",
                          output_shape=[b["B"], 2]) for b in spec.bindings()])
    return param_count.ParamCountObservation(module_type="torch.nn.modules.container.Sequential", total=58,
                                             trainable=58)


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
