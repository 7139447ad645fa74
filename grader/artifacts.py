"""Artifacts: a student's computation captured as a graph of torch operators, to be measured
where no student code exists.

Capture (in the student's sandbox) runs a function of tensors once under a dispatch mode that
records every aten operator it dispatches, forward and backward (a custom ``autograd.Function``'s
own backward included), each as a node; tensors are told apart by identity. (torch's ``make_fx``
does the same with far more bookkeeping: about ten times slower on a loop-written convolution.)
What the student's code did outside torch's operators (numpy, Python arithmetic on ``.item()``, a
recorder switched off) is not in the graph: its results are baked in as constants, which only give
the right answer on the inputs the capture used. That is why a graph is measured on fresh inputs
that the student's process never saw.

Measure (in a sandbox that never imports student code) rebuilds the graph from plain data and
runs it: each node is an ``aten`` operator looked up by name in ``torch.ops.aten`` (or tuple
indexing), its arguments are earlier nodes, inputs, constants or plain values. Nothing is
unpickled or executed as Python; an operator outside ``aten``, or one that reaches outside the
tensors (``from_file``), is refused with the node that asked for it.

The graph travels inside a probe record (JSON plus ``observations.Array`` constants), so it
crosses the sandbox boundary with the same caps and validation as every other observation.
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from grader.observations import Array

MAX_NODES = 100_000  # a loop over the windows of a [1, 100, 100] max pool, forward and backward: about 55,000
# All the graphs one run captures, together: well inside the observations' JSON cap (about 60 bytes a
# node), so that graphs never make a run's whole output invalid; past it, a capture says so.
MAX_NODES_PER_RUN = 300_000
MAX_INPUTS = 2048  # a captured model's input, then each of its weights (a DenseNet-121 has 606)
MAX_STRING = 64
# aten operators that reach outside tensor arithmetic, refused even though they are in aten
REFUSED = {"from_file", "_nested_from_padded", "set_", "_set_from"}
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_OVERLOAD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TAGS = {"dtype", "device", "layout", "memory_format", "float"}


class ArtifactError(Exception):
    """A graph that cannot be captured, or one that breaks the format's rules when loaded."""


class Graph(BaseModel):
    """A traced function: ``inputs`` names its arguments; node ``i`` (counting inputs first) is
    ``nodes[i - len(inputs)] = [operator, args, kwargs]``; ``outputs`` are encoded values (a node
    reference ``{"n": i}`` or ``None``); ``constants`` are the tensors the trace baked in,
    referenced as ``{"c": j}``, with their torch dtypes in ``constant_dtypes``."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    inputs: list[str] = Field(max_length=MAX_INPUTS)
    nodes: list[list[Any]] = Field(max_length=MAX_NODES)  # each [operator, args, kwargs]
    outputs: list[Any]
    constants: list[Array] = []
    constant_dtypes: list[str] = []

    def operators(self) -> list[str]:
        """The distinct operators the graph runs, as ``aten.<op>`` (overload dropped), sorted."""
        return sorted({".".join(target.split(".")[:2]) for target, _, _ in self.nodes if target.startswith("aten.")})


# ---------------------------------------------------------------- capture (student sandbox)


def capture(fn: Any, inputs: list[Any], names: list[str], limit: int = MAX_NODES) -> Graph:
    """Run ``fn(*inputs)`` (tensors in; a tuple of tensors or ``None`` out) while recording every
    aten operator it dispatches, backward passes included, into a ``Graph``.

    A tensor that reaches an operator without having come from an input or an earlier recorded
    operator (made from numpy, or by code that switched the recording off) is kept as a constant.
    ``ArtifactError`` when the trace holds something the format cannot carry or grows past
    ``limit`` operations (at most ``MAX_NODES``; a run's probes share ``MAX_NODES_PER_RUN`` through
    ``ProbeContext.capture``); the student's own exceptions propagate as they are, for the caller's
    ``student_code`` block."""
    import torch

    if limit <= 0:
        raise ArtifactError(f"the run's graphs already hold the {MAX_NODES_PER_RUN:,} operations a run may capture")
    tracer = _Tracer(torch, min(MAX_NODES, limit))
    for tensor in inputs:
        tracer.known(tensor)
    with tracer.recording():
        result = fn(*inputs)
    leaves = result if isinstance(result, (tuple, list)) else (result,)
    outputs = [None if leaf is None else tracer.encode(leaf) for leaf in leaves]
    return Graph(inputs=names, nodes=tracer.nodes, outputs=outputs, constants=tracer.constants,
                 constant_dtypes=tracer.dtypes)


class _Tracer:
    """The recording: each dispatched operator becomes a node; tensors are told apart by identity
    (each one seen is kept alive for the trace, so an identity is never reused)."""

    def __init__(self, torch: Any, limit: int):
        self.torch, self.limit = torch, limit
        self.index: dict[int, int] = {}
        self.alive: list[Any] = []
        self.count = 0  # values so far: the inputs, then one per node
        self.nodes: list[list[Any]] = []
        self.constants: list[np.ndarray] = []
        self.dtypes: list[str] = []

    def known(self, tensor: Any) -> None:
        self.index[id(tensor)] = self.count
        self.alive.append(tensor)
        self.count += 1

    def add(self, target: str, args: list[Any], kwargs: dict[str, Any]) -> int:
        if len(self.nodes) >= self.limit:
            raise ArtifactError(f"the trace grew past the {self.limit:,} operations a graph may hold")
        self.nodes.append([target, args, kwargs])
        self.count += 1
        return self.count - 1

    def encode(self, value: Any) -> Any:
        torch = self.torch
        if isinstance(value, torch.Tensor):
            found = self.index.get(id(value))
            if found is None:  # not from an input or a recorded operator: its values, as they are now
                self.constants.append(_constant_array(value, torch))
                self.dtypes.append(str(value.dtype).removeprefix("torch."))
                found = self.add("constant", [{"c": len(self.constants) - 1}], {})
                self.index[id(value)] = found
                self.alive.append(value)
            return {"n": found}
        if isinstance(value, (list, tuple)):
            return [self.encode(v) for v in value]
        if value is None or isinstance(value, (bool, int, str)):
            if isinstance(value, str) and len(value) > MAX_STRING:
                raise ArtifactError(f"a string argument of {len(value)} characters")
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(value, torch.dtype):
            return {"dtype": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"device": value.type}
        if isinstance(value, torch.layout):
            return {"layout": str(value).removeprefix("torch.")}
        if isinstance(value, torch.memory_format):
            return {"memory_format": str(value).removeprefix("torch.")}
        raise ArtifactError(f"an argument of type {type(value).__name__} that the graph format cannot carry")

    def record(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
        if func.namespace != "aten":
            raise ArtifactError(f"operator {func.namespace}.{func._opname} is not an aten operator")
        node = self.add(f"aten.{func._opname}.{func._overloadname}", self.encode(list(args)),
                        {key: self.encode(value) for key, value in kwargs.items()})
        if isinstance(result, self.torch.Tensor):
            self.index[id(result)] = node
            self.alive.append(result)
        elif isinstance(result, (tuple, list)):
            for position, item in enumerate(result):
                if isinstance(item, self.torch.Tensor):
                    self.index[id(item)] = self.add("getitem", [{"n": node}, position], {})
                    self.alive.append(item)

    def recording(self) -> Any:
        from torch.utils._python_dispatch import TorchDispatchMode

        tracer = self

        class Recording(TorchDispatchMode):
            @classmethod
            def _should_skip_dynamo(cls) -> bool:  # no torch.compile here; skipping it costs importing dynamo
                return False

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
                kwargs = kwargs or {}
                result = func(*args, **kwargs)
                tracer.record(func, args, kwargs, result)
                return result

        return Recording()


def _constant_array(tensor: Any, torch: Any) -> np.ndarray:
    values = torch.Tensor.detach(tensor).cpu()
    if values.dtype == torch.bool:
        return values.to(torch.uint8).numpy().copy()
    if values.dtype in (torch.float16, torch.bfloat16):
        return values.to(torch.float32).numpy().copy()
    if values.is_complex():
        raise ArtifactError("a complex constant, which the graph format cannot carry")
    return values.numpy().copy()


# ---------------------------------------------------------------- measure (no student code)


def check(graph: Graph) -> None:
    """Every operator allowed and known to this torch, every reference to an earlier value, every
    plain value of a kind the format has. ``ArtifactError`` names the first node at fault."""
    import torch

    if len(graph.constant_dtypes) != len(graph.constants):
        raise ArtifactError(f"{len(graph.constants)} constants but {len(graph.constant_dtypes)} dtypes")
    for dtype in graph.constant_dtypes:
        _dtype(dtype, torch)
    known = len(graph.inputs)
    for position, node in enumerate(graph.nodes):
        if len(node) != 3 or not isinstance(node[0], str) or not isinstance(node[1], list) \
                or not isinstance(node[2], dict):
            raise ArtifactError(f"node {position}: not an [operator, arguments, keywords] triple")
        target, args, kwargs = node
        where = f"node {position} ({target[:80]})"
        if target == "constant":
            if len(args) != 1 or not isinstance(args[0], dict) or set(args[0]) != {"c"} or kwargs:
                raise ArtifactError(f"{where}: a constant node holds one constant reference")
        elif target != "getitem":
            resolve(target, torch)
        _check_value(args, known, len(graph.constants), where, torch)
        for key, item in kwargs.items():
            if not _NAME.match(key):
                raise ArtifactError(f"{where}: keyword {key[:40]!r} is not a name")
            _check_value(item, known, len(graph.constants), where, torch, 1)
        known += 1
    _check_value(graph.outputs, known, len(graph.constants), "the outputs", torch)


def _check_value(value: Any, known: int, constants: int, where: str, torch: Any, depth: int = 0) -> None:
    if depth > 8:
        raise ArtifactError(f"{where}: arguments nested too deep")
    if isinstance(value, list):
        for item in value:
            _check_value(item, known, constants, where, torch, depth + 1)
    elif isinstance(value, dict):
        if set(value) == {"n"}:
            ref = value["n"]
            if type(ref) is not int or not 0 <= ref < known:
                raise ArtifactError(f"{where}: refers to value {ref!r}, not an earlier one (0 to {known - 1})")
        elif set(value) == {"c"}:
            ref = value["c"]
            if type(ref) is not int or not 0 <= ref < constants:
                raise ArtifactError(f"{where}: refers to constant {ref!r} of {constants}")
        elif len(value) == 1 and next(iter(value)) in _TAGS:
            _decode_tag(value, torch, where)
        else:
            raise ArtifactError(f"{where}: an object {sorted(value)[:5]} that is not a value of the format")
    elif isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ArtifactError(f"{where}: a string argument of {len(value)} characters")
    elif value is not None and not isinstance(value, (bool, int, float)):
        raise ArtifactError(f"{where}: a {type(value).__name__}, not a value of the format")


def resolve(target: str, torch: Any) -> Any:
    """The ``OpOverload`` named ``aten.<op>.<overload>``; ``ArtifactError`` for anything else."""
    parts = target.split(".")
    if len(parts) != 3 or parts[0] != "aten" or not _NAME.match(parts[1]) or not _OVERLOAD.match(parts[2]):
        raise ArtifactError(f"operator {target[:80]!r} is not an aten operator")
    if parts[1] in REFUSED:
        raise ArtifactError(f"operator {target!r} reaches outside tensor arithmetic and is refused")
    try:
        return getattr(getattr(torch.ops.aten, parts[1]), parts[2])
    except (AttributeError, RuntimeError):
        raise ArtifactError(f"operator {target!r} does not exist in this torch") from None


def _dtype(name: str, torch: Any) -> Any:
    value = getattr(torch, name, None) if _NAME.match(name) else None
    if not isinstance(value, torch.dtype):
        raise ArtifactError(f"{name[:40]!r} is not a torch dtype")
    return value


def _decode_tag(value: dict[str, Any], torch: Any, where: str) -> Any:
    (tag, text), = value.items()
    if not isinstance(text, str) or len(text) > MAX_STRING:
        raise ArtifactError(f"{where}: a malformed {tag}")
    if tag == "dtype":
        return _dtype(text, torch)
    if tag == "device":
        if text not in ("cpu", "cuda", "meta"):
            raise ArtifactError(f"{where}: device {text!r}")
        return None  # placed on the measuring device by ``run``
    if tag == "float":
        if text not in ("inf", "-inf", "nan"):
            raise ArtifactError(f"{where}: float {text!r}")
        return float(text)
    found = getattr(torch, text, None) if _NAME.match(text) else None
    wanted = torch.layout if tag == "layout" else torch.memory_format
    if not isinstance(found, wanted):
        raise ArtifactError(f"{where}: {text!r} is not a torch {tag}")
    return found


def run(graph: Graph, inputs: list[Any], device: Any = None) -> list[Any]:
    """The graph's outputs on ``inputs`` (tensors, in ``graph.inputs`` order), computed operator by
    operator on ``device`` (default: the CPU). Call ``check`` first."""
    return run_keeping_values(graph, inputs, device)[0]


def run_keeping_values(graph: Graph, inputs: list[Any], device: Any = None) -> tuple[list[Any], list[Any]]:
    """``run``'s outputs, and every value the graph computed on the way: its inputs, then one per
    node, in the order they were computed."""
    import torch

    device = torch.device(device or "cpu")
    if len(inputs) != len(graph.inputs):
        raise ArtifactError(f"the graph takes {len(graph.inputs)} inputs, {len(inputs)} were given")
    constants = [torch.from_numpy(np.array(values)).to(device=device, dtype=_dtype(dtype, torch))
                 for values, dtype in zip(graph.constants, graph.constant_dtypes)]
    values: list[Any] = list(inputs)

    def decode(value: Any) -> Any:
        if isinstance(value, list):
            return [decode(v) for v in value]
        if isinstance(value, dict):
            if "n" in value and len(value) == 1:
                return values[value["n"]]
            if "c" in value and len(value) == 1:
                return constants[value["c"]]
            if len(value) == 1 and next(iter(value)) == "device":
                return device
            return _decode_tag(value, torch, "")
        return value

    for position, (target, args, kwargs) in enumerate(graph.nodes):
        if target == "constant":
            values.append(constants[args[0]["c"]])
            continue
        decoded = decode(args)
        try:
            if target == "getitem":
                values.append(operator.getitem(*decoded))
            else:
                values.append(resolve(target, torch)(*decoded, **{k: decode(v) for k, v in kwargs.items()}))
        except ArtifactError:
            raise
        except Exception as exc:  # noqa: BLE001 - a crafted or broken graph: say which node
            raise ArtifactError(f"node {position} ({target}) failed: {type(exc).__name__}: {str(exc)[:300]}") from None
    return [decode(output) for output in graph.outputs], values
