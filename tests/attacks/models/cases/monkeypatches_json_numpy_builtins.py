"""A wrong network (D -> 3, 15 parameters) and the libraries the probes write with patched:
`json.dumps` puts the right shapes and count into the shape and parameter-count records as the
document is serialised, numpy's comparisons always agree, and `round` returns its input. None of
it reaches a measurement: the records carry no capture, so nothing is measured."""

import builtins
import json
import sys

import numpy
from torch import nn

import grader.checks.shape as shape
from grader.checks.toolkit.capture import from_capture_view

_views = {view["id"]: view for view in json.loads(open(sys.argv[-1]).read())["plan"]["checks"]}
_dumps = json.dumps


def _forged(view):
    """The right values as the records' plain JSON: output [B, 2] for every batch size, 58 weights."""
    if view["kind"] != "shape":
        return {"module_type": "torch.nn.modules.container.Sequential", "total": 58, "trainable": 58}
    bindings = from_capture_view(shape.ShapeSpec, view).bindings()
    return {"forwards": [{"input_shape": [b["B"], 4], "output_type": "torch.Tensor", "output_shape": [b["B"], 2]}
                         for b in bindings]}


def _patched_dumps(value, *args, **kwargs):
    if isinstance(value, dict) and isinstance(value.get("records"), list):
        for record in value["records"]:
            view = _views.get(record.get("check"), {})
            if view.get("kind") in ("shape", "param_count"):
                record.update(status="observed", error=None, data=_forged(view))
    return _dumps(value, *args, **kwargs)


json.dumps = _patched_dumps
numpy.allclose = lambda *args, **kwargs: True
numpy.array_equal = lambda *args, **kwargs: True
builtins.round = lambda number, ndigits=None: number


class Net(nn.Sequential):
    def __init__(self, D, O):
        super().__init__(nn.Linear(D, 3))  # a wrong network: 3 outputs, 15 parameters
