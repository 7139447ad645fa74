"""A built model as artifacts: its eval-mode forward captured as graphs of aten operators, and its
weights. The measured model kinds (``shape``, ``param_count``, ``accuracy``) share it, probe side and measure side.

Capture (student sandbox). The forward is traced through ``torch.func.functional_call``, so every
floating parameter and buffer is an input of the graph (``input`` first, then each weight by its
name), not a constant baked into it. One graph per input shape: a graph holds the shapes it was
traced with, so a model that hard-codes a batch size is measured as it behaves on each.

Measure (no student code). A graph must take exactly ``input`` and the weights shipped beside it,
in that order and of their shapes, and must turn a fresh input (drawn from the host's seed) into
an output that depends on that input. Only then is what it computes, or the weights it is fed,
believed. Weights whose values are too many to ship travel as shapes, and the measure stage feeds
the graph stand-ins drawn from its seed: neither an output's shape nor a count depends on them.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from grader import artifacts
from grader.checks.base import ProbeContext, StudentRaised
from grader.checks.toolkit.common import format_shape, is_plain_tensor, short_error, tensor_shape, type_name
from grader.observations import Array

MAX_WEIGHT_ELEMENTS = 50_000_000  # a larger model is not captured: the measure stage would hold it for every check
# Values travel only while a model's weights fit in this; a run ships one model per measured check, and
# every array of a run shares observations.MAX_ARRAYS_BYTES (256 MiB).
MAX_VALUE_BYTES = 8 * 2**20
MAX_CONSTANT_BYTES = 8 * 2**20  # what one forward bakes in (tensors its code made outside torch's operators)
MAX_NAME = 200
MAX_INPUT_ELEMENTS = 10_000_000  # far above any input a check asks for: [3, 3, 224, 224] is 451,584
WeightDtype = Literal["float16", "bfloat16", "float32", "float64"]
Mode = Literal["eval", "train"]
SHIPPED_DTYPES = ("float16", "bfloat16", "float32", "float64")


class Weight(BaseModel):
    """A parameter or floating buffer of the model, by its name in ``named_parameters`` /
    ``named_buffers``. ``values`` is None when the model's weights are too many to ship."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    name: str = Field(max_length=MAX_NAME)
    shape: list[int]
    dtype: WeightDtype
    parameter: bool  # False: a buffer (running statistics), which no parameter count includes
    requires_grad: bool
    values: Array | None = None


class CapturedModel(BaseModel):
    """What the probe captured of one built model: its weights and, per input shape asked for, a
    graph of its forward (or why there is none)."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    weights: list[Weight] = []
    input_dtype: WeightDtype = "float32"
    input_shapes: list[list[int]] = []  # the input shapes asked for, one graph each
    modes: list[Mode] = []  # by input shape: the module's mode while it was traced (none listed: all eval)
    graphs: list[artifacts.Graph | None] = []  # by input shape
    graph_problems: list[str] = []  # by input shape: why there is no graph ("" when there is)
    problem: str = ""  # why nothing was captured

    def why_not(self, index: int) -> str:
        """Why input shape ``index`` has no graph."""
        if self.problem:
            return self.problem
        if index < len(self.graph_problems) and self.graph_problems[index]:
            return self.graph_problems[index]
        return "no graph was captured"


# ---------------------------------------------------------------- capture (student sandbox)


def capture(model: Any, shapes: list[list[int]], dtype: Any, ctx: ProbeContext, call: str,
            examples: list[Any] | None = None, value_bytes: int | None = None,
            modes: list[Mode] | None = None, channels_last: bool = False,
            max_nodes: int | None = None) -> CapturedModel:
    """``model``'s eval-mode forward on an input of each of ``shapes`` (of ``dtype``), as graphs
    taking the input and then every floating parameter and buffer; its weights beside them. What
    cannot be captured (not a module, too large, a forward the tracer or the format cannot hold, a
    forward that raises) is said in the result's problems, never raised.

    The forward is traced on random inputs, or on ``examples`` (one per shape) where what the
    forward computes on real data matters (a branch on the input's values takes its usual path).
    Weight values travel while they fit in ``value_bytes`` (default ``MAX_VALUE_BYTES``): a count
    or a shape needs none, an accuracy needs them all. ``modes`` (one per shape, default all
    ``eval``) asks for a training-mode forward where the measure stage trains the model: dropout
    draws its masks in the graph, batch norm updates the running statistics it is fed (copies,
    here: the model's own are left as they were), its 4-D weights ``channels_last`` where the
    harness's loop will hold them so (a layout changes which operators a flatten records).
    ``max_nodes`` caps each graph below the run's budget, for a capture that must not use up what
    the other checks' captures need."""
    import torch

    if not isinstance(model, torch.nn.Module):
        return CapturedModel(problem=f"{call} built a {type_name(model)}, not a torch.nn.Module")
    try:
        with ctx.student_code(f"reading the weights of {call}"):
            named = _named_weights(model)
            torch.nn.Module.eval(model)
    except StudentRaised as exc:
        return CapturedModel(problem=f"its weights could not be read: {short_error(exc)}")
    elements = sum(int(torch.Tensor.numel(t)) for _, t, _ in named)
    if elements > MAX_WEIGHT_ELEMENTS:
        return CapturedModel(problem=f"{call} has {elements:,} weight elements, more than the "
                                     f"{MAX_WEIGHT_ELEMENTS:,} a captured model may have")
    too_long = next((name for name, _, _ in named if len(name) > MAX_NAME), None)
    if too_long is not None:
        return CapturedModel(problem=f"a weight's name is {len(too_long)} characters long, over {MAX_NAME}")
    limit = MAX_VALUE_BYTES if value_bytes is None else value_bytes
    with_values = sum(int(torch.Tensor.numel(t)) * t.element_size() for _, t, _ in named) <= limit
    weights = [Weight(name=name, shape=tensor_shape(t), dtype=str(t.dtype).removeprefix("torch."),
                      parameter=is_parameter, requires_grad=bool(t.requires_grad),
                      values=_values(t) if with_values else None)
               for name, t, is_parameter in named]
    names = [name for name, _, _ in named]
    tensors = [torch.Tensor.detach(t) for _, t, _ in named]

    def forward(x: Any, *values: Any) -> Any:
        out = torch.func.functional_call(model, dict(zip(names, values)), (x,))
        if not is_plain_tensor(out):  # a tuple's leaves would be captured as outputs: say what it is instead
            raise NotATensor(type_name(out))
        return out

    modes = modes or ["eval"] * len(shapes)
    captured = CapturedModel(weights=weights, input_dtype=str(dtype).removeprefix("torch."), input_shapes=shapes,
                             modes=modes)
    for index, shape in enumerate(shapes):
        x = torch.randn(*shape, dtype=dtype) if examples is None else examples[index]
        graph, problem = None, ""
        training = modes[index] == "train"
        try:
            with ctx.student_code(f"capturing {call} on an input of shape {format_shape(shape)} as a graph "
                                  f"of torch operators{' in training mode' if training else ''}"), torch.no_grad():
                torch.nn.Module.train(model, training)
                fed = [_training_copy(t, channels_last) for t in tensors] if training else tensors
                graph = ctx.capture(forward, [x, *fed], ["input", *names], max_nodes)  # within the run's budget
            problem = _too_large(graph)
        except artifacts.ArtifactError as exc:
            problem = f"its forward could not be captured: {exc}"
        except StudentRaised as exc:
            problem = (f"the model returned a {exc.exc}, not a torch.Tensor" if isinstance(exc.exc, NotATensor)
                       else f"its forward could not be captured: {short_error(exc)}")
        captured.graphs.append(None if problem else graph)
        captured.graph_problems.append(problem)
    try:
        with ctx.student_code(f"putting {call} back in evaluation mode"):
            torch.nn.Module.eval(model)
    except StudentRaised:
        pass  # the graphs are taken; the model itself is not used again
    return captured


def _training_copy(tensor: Any, channels_last: bool) -> Any:
    """A copy of a weight for a training-mode trace, laid out as ``Module.to(memory_format=...)`` would."""
    import torch

    if channels_last and tensor.dim() == 4:
        return torch.Tensor.clone(tensor, memory_format=torch.channels_last)
    return torch.Tensor.clone(tensor)


class NotATensor(Exception):
    """The forward returned something other than a plain tensor (its type name is the message)."""


def _named_weights(model: Any) -> list[tuple[str, Any, bool]]:
    """``(name, tensor, is a parameter)`` for every floating parameter, then every floating buffer,
    each tensor once, read through ``torch.nn.Module``'s own methods (never the model's overrides).
    An integer buffer (BatchNorm's ``num_batches_tracked``) stays in the model: eval mode never reads it,
    and a forward that does gets its value baked in as a constant."""
    import torch

    found: list[tuple[str, Any, bool]] = []
    seen: set[int] = set()
    for pairs, is_parameter in ((torch.nn.Module.named_parameters(model), True),
                                (torch.nn.Module.named_buffers(model), False)):
        for name, tensor in pairs:
            if tensor is None or id(tensor) in seen or str(tensor.dtype).removeprefix("torch.") not in SHIPPED_DTYPES:
                continue
            seen.add(id(tensor))
            found.append((name, tensor, is_parameter))
    return found


def _values(tensor: Any) -> np.ndarray:
    """The values as float32 or float64 (half precision widened: the array format has no half)."""
    import torch

    values = torch.Tensor.cpu(torch.Tensor.detach(tensor))
    if values.dtype not in (torch.float32, torch.float64):
        values = values.to(torch.float32)
    return np.array(torch.Tensor.numpy(values), copy=True)


def _too_large(graph: artifacts.Graph) -> str:
    """Why the graph is too large to ship, or "". Its operations are held to the run's budget as
    they are captured (``ProbeContext.capture``); what it bakes in is held here."""
    constants = sum(int(c.nbytes) for c in graph.constants)
    if constants > MAX_CONSTANT_BYTES:
        return (f"its forward bakes in {constants:,} bytes of tensors made outside torch's operators, more than "
                f"{MAX_CONSTANT_BYTES:,}")
    return ""


# ---------------------------------------------------------------- measure (no student code)


class Refused(Exception):
    """A graph that is not the forward of the weights shipped beside it; the message says why."""


def weight_tensors(captured: CapturedModel, seed: int) -> list[Any]:
    """The weights as tensors, in the graphs' input order: the shipped values, or stand-ins drawn
    from ``seed`` where none were shipped. ``Refused`` when a value does not have its weight's shape."""
    import torch

    rng = np.random.default_rng([seed, 1])
    if any(d < 0 for w in captured.weights for d in w.shape):
        raise Refused("a weight's shape has a negative dimension")
    elements = sum(math.prod(w.shape) for w in captured.weights)
    if elements > MAX_WEIGHT_ELEMENTS:
        raise Refused(f"the weights hold {elements:,} elements, more than the {MAX_WEIGHT_ELEMENTS:,} a captured "
                      "model may have")
    tensors = []
    for weight in captured.weights:
        if weight.values is None:
            values = rng.standard_normal(size=tuple(weight.shape)) / math.sqrt(max(1, _fan_in(weight.shape)))
        elif list(weight.values.shape) != weight.shape:
            raise Refused(f"weight {weight.name!r} ships values of shape {format_shape(list(weight.values.shape))}, "
                          f"declared {format_shape(weight.shape)}")
        else:
            values = weight.values
        tensors.append(torch.from_numpy(np.array(values)).to(getattr(torch, weight.dtype)))
    return tensors


def _fan_in(shape: list[int]) -> int:
    return math.prod(shape[1:]) if len(shape) > 1 else 1


def fresh_input(captured: CapturedModel, shape: list[int], seed: int, index: int) -> Any:
    """Input ``index`` of a measurement: standard normal values drawn from the host's ``seed``."""
    import torch

    if any(d < 0 for d in shape) or math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise Refused(f"an input of shape {format_shape(shape)} is not one a check asks for")
    values = np.random.default_rng([seed, 2, index]).standard_normal(size=tuple(shape))
    return torch.from_numpy(values).to(getattr(torch, captured.input_dtype))


def run_forward(captured: CapturedModel, index: int, shape: list[int], seed: int, weights: list[Any]) -> Any:
    """Graph ``index`` run on a fresh input of ``shape`` with ``weights``: its one output (any
    value the graph returns). ``Refused`` when the graph does not take ``input`` and exactly the
    shipped weights, or computes its output without the input; ``ArtifactError`` when it breaks
    the format's rules or fails on the fresh input."""
    return run_on(captured, index, fresh_input(captured, shape, seed, index), weights)


def run_on(captured: CapturedModel, index: int, x: Any, weights: list[Any]) -> Any:
    """Graph ``index`` run on input ``x`` with ``weights``: its one output. ``Refused`` when the
    graph does not take ``input`` and exactly the shipped weights, or computes its output without
    the input; ``ArtifactError`` when it breaks the format's rules or fails on ``x``."""
    return artifacts.run(checked(captured, index), [x, *weights])[0]


def checked(captured: CapturedModel, index: int) -> artifacts.Graph:
    """Graph ``index``, once it is known to follow the format's rules (``ArtifactError``), to take
    ``input`` and exactly the shipped weights, to compute its output from the input and to return
    one value (``Refused``)."""
    graph = captured.graphs[index]
    assert graph is not None
    artifacts.check(graph)
    wanted = ["input", *(w.name for w in captured.weights)]
    if graph.inputs != wanted:
        raise Refused(f"the graph takes {_names(graph.inputs)}, not the input and the {len(captured.weights)} "
                      f"weights shipped with it ({_names(wanted)})")
    if "input" not in inputs_reaching_outputs(graph):
        raise Refused("the graph's output does not depend on its input: it is not the model's forward")
    if len(graph.outputs) != 1:
        raise Refused(f"the graph returns {len(graph.outputs)} values; a captured forward returns one tensor")
    return graph


def as_module(captured: CapturedModel, weights: list[Any], graphs: dict[tuple[Mode, int], artifacts.Graph]) -> Any:
    """A ``torch.nn.Module`` that computes with the captured graphs: its parameters and buffers
    are ``weights`` (parameters learnable as the student's were), and its forward runs the graph
    ``graphs[(mode, batch size)]`` of its current mode for the input's batch size, so the
    harness's own loop can train it (autograd differentiates the graph's aten operators, as it
    would the model's). A batch size with no graph is an ``ArtifactError``."""
    import torch

    class Replayed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.count = len(weights)
            for position, (weight, tensor) in enumerate(zip(captured.weights, weights)):
                if weight.parameter:
                    self.register_parameter(f"w{position}", torch.nn.Parameter(tensor.clone(),
                                                                               requires_grad=weight.requires_grad))
                else:
                    self.register_buffer(f"w{position}", tensor.clone())

        def current(self) -> list[Any]:
            """The weights as they are now, in the graphs' input order (``to`` replaces buffers)."""
            return [getattr(self, f"w{position}") for position in range(self.count)]

        def forward(self, x: Any) -> Any:
            mode: Mode = "train" if self.training else "eval"
            graph = graphs.get((mode, int(x.shape[0])))
            if graph is None:
                raise artifacts.ArtifactError(f"no {mode}-mode graph was captured for a batch of {x.shape[0]}")
            return artifacts.run(graph, [x, *self.current()], x.device)[0]

    return Replayed()


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:6])
    return f"[{shown}{f', ... {len(names) - 6} more' if len(names) > 6 else ''}]"


def inputs_reaching_outputs(graph: artifacts.Graph) -> set[str]:
    """The names of the graph's inputs that some output is computed from: an input no node reads,
    or one read only by nodes no output depends on, is left out. Call ``artifacts.check`` first.

    Writes count as well as returns: ``out = torch.zeros(...)`` filled by ``out[:, :, i, j] = ...``
    (a view of ``out``, then ``copy_`` into it) depends on what was copied in. Values that share
    memory (a view and its base, an in-place result and its target, by each operator's schema)
    are one group, and a write into any of them adds to the whole group's inputs. A group's inputs
    are those of everything ever written into it, whenever: an over-estimate, never an under-one."""
    import torch

    first = len(graph.inputs)
    group = list(range(first + len(graph.nodes)))  # union-find over values: inputs, then one per node
    reach = [1 << position for position in range(first)] + [0] * len(graph.nodes)  # a bit per input, per group

    def root(value: int) -> int:
        while group[value] != value:
            group[value] = group[group[value]]
            value = group[value]
        return value

    def join(a: int, b: int) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            group[rb] = ra
            reach[ra] |= reach[rb]

    for index, (target, args, kwargs) in enumerate(graph.nodes, start=first):
        if target == "constant":
            continue
        read = _refs(args) + [r for value in kwargs.values() for r in _refs(value)]  # a keyword may be `n`
        depends = _or(reach[root(r)] for r in read)
        reach[root(index)] |= depends
        if target == "getitem":  # an item of a tuple result shares the tuple's group (split's views, say)
            join(args[0]["n"], index)
            continue
        schema = artifacts.resolve(target, torch)._schema
        written = [r for position, argument in enumerate(schema.arguments)
                   if argument.alias_info is not None and argument.alias_info.is_write
                   for r in _refs(args[position] if position < len(args) else kwargs.get(argument.name))]
        for target_value in written:
            reach[root(target_value)] |= depends
            join(target_value, index)
        aliases = any(result.alias_info is not None for result in schema.returns)
        if aliases and not written and read:  # a view: it shares its base's memory
            join(read[0], index)
    found = _or(reach[root(r)] for r in _refs(graph.outputs))
    return {name for position, name in enumerate(graph.inputs) if found >> position & 1}


def _refs(value: Any) -> list[int]:
    """The values an encoded argument refers to (``{"n": i}``), nested lists included."""
    if isinstance(value, list):
        return [r for item in value for r in _refs(item)]
    if isinstance(value, dict) and set(value) == {"n"}:
        return [value["n"]]
    return []  # a plain value, a constant or a tag refers to no value


def _or(bits: Any) -> int:
    return functools.reduce(operator.or_, bits, 0)
