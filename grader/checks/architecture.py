"""``architecture``: which modules a model calls, in what order, and the shapes they see.

The probe runs one forward pass with global forward hooks and records every module call below
the model: its class name, its enclosing call, and the shapes of its first input and its output.
Global hooks see modules kept in plain lists or created on the fly too, which ``named_modules``
would miss. The judge checks three optional things against that trace:

* ``sequence``: the module types in call order. Rule: walk the calls in order and keep those
  whose type matches one of the sequence's patterns and that are not nested inside another
  kept call; the kept types must equal the sequence (``exact``) or contain it in order
  (``in-order``). Types the sequence does not name (ReLU, Flatten, Sequential) are ignored, so
  ``[Conv2d, AvgPool2d, DenseBlock, Transition*, DenseBlock, Linear]`` does not count the
  convolutions inside a DenseBlock.
* ``contains``: at least N distinct modules of a type take part in the forward pass.
* ``expect``: the input and output shapes of a chosen call (``module`` type, ``index`` in call
  order, negative from the end, optionally ``inside`` an enclosing type). Dimensions are
  integers, ``*`` (anything), a symbol, or a small sum such as ``4+3*k``. Symbols in the model's
  ``input`` are the batch size; any other symbol is bound where it first stands alone, in list
  order (input before output), and must agree everywhere after: ``output: [B, k, 14, 14]`` on
  the first convolution inside a DenseBlock reads the student's own growth rate k.

Type patterns are class names with ``*`` globs and ``|`` alternatives (``Transition*|TransLayer``).

Observed, held to account by a measurement. The trace is the student's process's account of its
module calls, so the probe also captures the model's forward as a graph (``model_capture``, the
weights as shapes only), and the measure stage runs it on a fresh input and lists the shape of
every tensor it computes. A trace whose calls see or return a shape the forward never computes
was not made by that forward: it earns nothing and goes before a person. Class names cannot be
measured (a graph has operators, not modules), so a trace that tells the truth about shapes and
lies about names is the limit of this check.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader import artifacts
from grader.checks import register
from grader.checks.toolkit import model_capture
from grader.checks.base import CheckKind, CheckSpec, Measured, Observation, ProbeContext, Verdict
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.checks.toolkit.common import (Args, call_target, format_shape, input_dtype, is_plain_tensor, tensor_shape,
                                  type_name)

Dim = int | str
MAX_CALLS = 5000
# The forward's graph, for holding the trace to account: far above a layered network's (a DenseNet's
# is a few hundred), far below the run's budget, which an op_equivalence check's loops may need
MAX_NODES = 20_000
_TERM = re.compile(r"^(?:(\d+)\*)?([A-Za-z_]\w*)$|^(\d+)$")


def parse_dim(text: str) -> list[tuple[int, str | None]]:
    """``4+3*k`` -> ``[(4, None), (3, "k")]``: a sum of integers, symbols and integer multiples
    of symbols. Raises ``ValueError`` on anything else (no general expressions, no eval)."""
    tokens = re.split(r"([+-])", text.replace(" ", ""))
    terms, sign = [], 1
    for i, token in enumerate(tokens):
        if i % 2:
            sign = 1 if token == "+" else -1
            continue
        match = _TERM.match(token)
        if not match:
            raise ValueError(f"{text!r} is not a dimension: use integers, symbols and sums like 4+3*k")
        factor, symbol, number = match.groups()
        terms.append((sign * int(number), None) if number else (sign * int(factor or 1), symbol))
    return terms


def is_symbol(dim: Dim) -> bool:
    return isinstance(dim, str) and dim != "*" and re.fullmatch(r"[A-Za-z_]\w*", dim) is not None


def type_matches(class_name: str, pattern: str) -> bool:
    """``Transition*|TransLayer`` matches ``TransitionLayer``: globs, ``|`` between alternatives."""
    return any(fnmatch.fnmatchcase(class_name, p.strip()) for p in pattern.split("|"))


def ordinal(index: int) -> str:
    if index == -1:
        return "last"
    n = abs(index) if index < 0 else index + 1
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}" + (" to last" if index < 0 else "")


class CallExpectation(BaseModel):
    """Shapes one module call must see."""

    model_config = ConfigDict(extra="forbid")
    module: str = Field(description="class name pattern, e.g. DenseBlock, Transition*, Conv2d")
    index: int = Field(0, description="which matching call, in call order; -1 is the last")
    inside: str | None = Field(None, description="only calls nested in a module of this type")
    input: list[Dim] | None = Field(None, description="shape of the first input, e.g. [B, 4, 14, 14]")
    output: list[Dim] | None = Field(None, description="shape of the output, e.g. [B, 4+3*k, 14, 14]")

    def label(self) -> str:
        return f"the {ordinal(self.index)} {self.module}" + (f" inside {self.inside}" if self.inside else "")


class ArchitectureSpec(CheckSpec):
    kind: Literal["architecture"]
    target: str = Field(description="a class or factory function that builds the model")
    args: Args = Field(default_factory=list, description="constructor arguments: a list (positional) or a mapping")
    input: list[Dim] = Field(description="the model's input shape; its symbols are the batch size")
    batch: int = Field(2, ge=1, description="the batch size the probe uses")
    sequence: list[str] | None = Field(None, description="module types in call order (see the module docs)",
                                       json_schema_extra=JUDGE_ONLY)
    sequence_match: Literal["exact", "in-order"] = Field("exact", json_schema_extra=JUDGE_ONLY)
    contains: dict[str, int] = Field({}, description="type pattern -> least number of such modules called",
                                     json_schema_extra=JUDGE_ONLY)
    expect: list[CallExpectation] = Field([], json_schema_extra=JUDGE_ONLY)

    @model_validator(mode="after")
    def _symbols_are_bound_before_use(self) -> "ArchitectureSpec":
        bound = {d for d in self.input if is_symbol(d)}
        for d in self.input:
            if isinstance(d, str) and not is_symbol(d):
                raise ValueError(f"input dimension {d!r} must be an integer or a symbol such as B")
        for e in self.expect:
            for dims in (e.input, e.output):
                for d in dims or []:
                    if not isinstance(d, str) or d == "*":
                        continue
                    if is_symbol(d):
                        bound.add(d)
                        continue
                    unbound = [s for _, s in parse_dim(d) if s and s not in bound]
                    if unbound:
                        raise ValueError(f"{unbound[0]} in {d!r} ({e.label()}) is used before a dimension binds "
                                         f"it; write it alone first, e.g. output: [B, {unbound[0]}, ...]")
        return self

    def batch_bindings(self) -> dict[str, int]:
        return {d: self.batch for d in self.input if is_symbol(d)}


class Call(BaseModel):
    """One module call below the model."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: str
    path: str
    parent: int
    instance: int
    input: list[int] | None
    output: list[int] | None
    output_type: str


class ArchitectureObservation(Observation):
    model_type: str
    is_module: bool
    calls: list[Call]
    truncated: bool
    captured: model_capture.CapturedModel | None = None  # the same forward as a graph, weights as shapes

    @model_validator(mode="after")
    def _parents_come_first(self) -> "ArchitectureObservation":
        """A call's enclosing call started before it; anything else (a cycle) is a forged trace."""
        for index, call in enumerate(self.calls):
            if not -1 <= call.parent < index:
                raise ValueError(f"call {index} names call {call.parent} as its parent")
        return self


class ArchitectureMeasurement(Observation):
    """The shape of every tensor the captured forward computes on a fresh input of the probe's
    shape: the input's, then each operator's (None where an operator returns no tensor)."""

    shapes: list[list[int] | None] = []
    problem: str = ""


def _first_tensor_shape(args: tuple[Any, ...]) -> list[int] | None:
    return next((tensor_shape(a) for a in args if is_plain_tensor(a)), None)


# ---------------------------------------------------------------- judge helpers


def _ancestors(calls: list[Call], index: int) -> list[int]:
    found, parent = [], calls[index].parent
    while parent >= 0:
        found.append(parent)
        parent = calls[parent].parent
    return found


def outermost(calls: list[Call], patterns: list[str]) -> list[str]:
    """Types of the calls that match a pattern and are not inside another such call."""
    kept: set[int] = set()
    for i, call in enumerate(calls):
        if any(type_matches(call.type, p) for p in patterns) and not kept.intersection(_ancestors(calls, i)):
            kept.add(i)
    return [calls[i].type for i in sorted(kept)]


def _in_order(found: list[str], patterns: list[str]) -> bool:
    remaining = iter(found)
    return all(any(type_matches(t, p) for t in remaining) for p in patterns)


def _select(calls: list[Call], e: CallExpectation) -> tuple[Call | None, int]:
    """The chosen call and how many calls matched."""
    chosen = [i for i, c in enumerate(calls) if type_matches(c.type, e.module)
              and (e.inside is None or any(type_matches(calls[a].type, e.inside) for a in _ancestors(calls, i)))]
    if -len(chosen) <= e.index < len(chosen):
        return calls[chosen[e.index]], len(chosen)
    return None, len(chosen)


def _compare_dims(want: list[Dim], got: list[int], bindings: dict[str, int]) -> tuple[bool, list[Any]]:
    """Whether ``got`` fits ``want`` (binding lone symbols on first sight), and ``want`` made
    concrete for the message (``?`` where a symbol is unknown)."""
    concrete: list[Any] = []
    ok = len(want) == len(got)
    for w, g in zip(want, got + [None] * (len(want) - len(got))):
        if isinstance(w, int):
            value: Any = w
        elif w == "*":
            value = g if g is not None else "*"
        elif is_symbol(w) and w not in bindings and g is not None:
            bindings[w] = value = g
        else:
            terms = parse_dim(w)
            known = all(s is None or s in bindings for _, s in terms)
            value = sum(c * (bindings[s] if s else 1) for c, s in terms) if known else "?"
        concrete.append(value)
        ok = ok and value == g
    return ok, concrete


def _expectation_rows(e: CallExpectation, calls: list[Call], bindings: dict[str, int]) -> list[dict[str, Any]]:
    call, count = _select(calls, e)
    rows = []
    for side in ("input", "output"):
        want = getattr(e, side)
        if want is None:
            continue
        requirement = f"{e.label()}: {side} {format_shape(want)}"
        got = getattr(call, side) if call is not None else None
        if call is None:
            rows.append({"requirement": requirement, "got": f"no such call ({count} {e.module} called)", "ok": False})
        elif got is None:
            rows.append({"requirement": requirement, "got": f"a {call.output_type}, not a tensor", "ok": False})
        else:
            ok, concrete = _compare_dims(want, got, bindings)
            used = sorted({s for d in want if isinstance(d, str) and d != "*" for _, s in parse_dim(d) if s})
            values = ", ".join(f"{s}={bindings.get(s, '?')}" for s in used)
            shown = format_shape(got) + ("" if ok else f", expected {format_shape(concrete)}") + \
                (f" with {values}" if values else "")
            rows.append({"requirement": requirement, "got": shown, "ok": ok})
    return rows


@register("architecture")
class Architecture(CheckKind):
    Spec = ArchitectureSpec
    Observation = ArchitectureObservation
    Measurement = ArchitectureMeasurement
    graded_on_measurement = False  # the verdict is the trace's; the measurement only holds it to account

    @staticmethod
    def probe(spec: ArchitectureSpec, ctx: ProbeContext) -> ArchitectureObservation:
        import torch
        from torch.nn.modules import module as torch_module

        model = call_target(ctx, spec.target, spec.args)
        if not isinstance(model, torch.nn.Module):
            return ArchitectureObservation(model_type=type_name(model), is_module=False, calls=[], truncated=False)
        paths = {id(m): name for name, m in torch.nn.Module.named_modules(model)}
        instances: dict[int, int] = {}
        calls: list[Call] = []
        stack: list[int] = []

        def before(module: Any, args: tuple[Any, ...]) -> None:
            if module is model or len(calls) >= MAX_CALLS:
                stack.append(-1)
                return
            stack.append(len(calls))
            calls.append(Call(type=type(module).__name__, path=paths.get(id(module), "(not registered)"),
                              parent=next((i for i in reversed(stack[:-1]) if i >= 0), -1),
                              instance=instances.setdefault(id(module), len(instances)),
                              input=_first_tensor_shape(args), output=None, output_type=""))

        def after(module: Any, args: tuple[Any, ...], output: Any) -> None:
            index = stack.pop() if stack else -1
            if index >= 0:
                calls[index].output = tensor_shape(output) if is_plain_tensor(output) else None
                calls[index].output_type = type_name(output)

        shape = [spec.batch if isinstance(d, str) else d for d in spec.input]
        handles = [torch_module.register_module_forward_pre_hook(before),
                   torch_module.register_module_forward_hook(after)]
        try:
            with ctx.student_code("switching the model to eval mode"):
                torch.nn.Module.train(model, False)
            with ctx.student_code(f"running the model on an input of shape {format_shape(shape)}"), torch.no_grad():
                model(torch.randn(*shape, dtype=input_dtype(model, torch.float32)))
        finally:
            for handle in handles:
                handle.remove()
        captured = model_capture.capture(model, [shape], input_dtype(model, torch.float32), ctx,
                                         f"the model built by {spec.target}", value_bytes=0, max_nodes=MAX_NODES)
        return ArchitectureObservation(model_type=type_name(model), is_module=True, calls=calls,
                                       truncated=len(calls) >= MAX_CALLS, captured=captured)

    @staticmethod
    def measure(spec: ArchitectureSpec, obs: ArchitectureObservation, seed: int,
                given: dict[str, Any]) -> ArchitectureMeasurement:
        import torch

        captured = obs.captured
        if captured is None:
            return ArchitectureMeasurement(problem="the run shipped no capture of the model's forward")
        if captured.problem or not captured.graphs or captured.graphs[0] is None:
            return ArchitectureMeasurement(problem=captured.why_not(0))
        try:
            graph = model_capture.checked(captured, 0)
            weights = model_capture.weight_tensors(captured, seed)  # stand-ins: no shape depends on the values
            x = model_capture.fresh_input(captured, captured.input_shapes[0], seed, 0)
            with torch.no_grad():
                _, values = artifacts.run_keeping_values(graph, [x, *weights])
        except (model_capture.Refused, artifacts.ArtifactError) as exc:
            return ArchitectureMeasurement(problem=str(exc)[:500])
        computed = [values[0], *values[len(graph.inputs):]]
        return ArchitectureMeasurement(shapes=[[int(d) for d in v.shape] if isinstance(v, torch.Tensor) else None
                                               for v in computed])

    @staticmethod
    def judge(spec: ArchitectureSpec, obs: ArchitectureObservation, expected: None,
              measured: Measured | None = None) -> Verdict:
        if not obs.is_module:
            return Verdict.failed(f"the target built a {obs.model_type}, not a torch.nn.Module")
        held = _held_to_account(spec, obs, measured)
        if held is not None:
            return held
        unchecked = _unchecked(measured)
        rows: list[dict[str, Any]] = []
        if spec.sequence is not None:
            found = outermost(obs.calls, spec.sequence)
            ok = _in_order(found, spec.sequence) if spec.sequence_match == "in-order" else \
                len(found) == len(spec.sequence) and all(type_matches(t, p) for t, p in zip(found, spec.sequence))
            rows.append({"requirement": f"modules in order ({spec.sequence_match}): {', '.join(spec.sequence)}",
                         "got": ", ".join(found) or "none", "ok": ok})
        for pattern, least in spec.contains.items():
            count = len({c.instance for c in obs.calls if type_matches(c.type, pattern)})
            rows.append({"requirement": f"contains at least {least} {pattern}", "got": str(count),
                         "ok": count >= least})
        bindings = spec.batch_bindings()
        for e in spec.expect:
            rows += _expectation_rows(e, obs.calls, bindings)
        if not rows:
            return Verdict.passed("no architecture requirement set")
        verdict = Verdict.from_requirements(rows)
        if unchecked and verdict.fraction > 0:
            verdict.review = (f"the module calls the run reported could not be checked against the model's forward "
                              f"({unchecked}); the points stand on the run's own account")
        return verdict


def _held_to_account(spec: ArchitectureSpec, obs: ArchitectureObservation, measured: Measured | None) -> Verdict | None:
    """A verdict of 0 when the trace reports shapes the measured forward never computes, else None
    (the trace stands). Where nothing could be measured the trace stands too, since a forward that
    cannot be captured is no proof of a forged trace, but ``_unchecked`` tells a person."""
    found = measured.data if measured is not None else None
    if found is None or found.problem:
        return None
    want = [spec.batch if isinstance(d, str) else d for d in spec.input]
    if obs.captured is None or obs.captured.input_shapes[:1] != [want]:
        return Verdict(0.0, "the run's forward was captured on another input than the probe's",
                       review="the capture of the model's forward does not match the probe's input: a forged record?")
    computed = {tuple(shape) for shape in found.shapes if shape is not None}
    strangers = [(i, side, shape) for i, call in enumerate(obs.calls) for side, shape in (("input", call.input),
                 ("output", call.output)) if shape is not None and tuple(shape) not in computed]
    if not strangers:
        return None
    shown = "; ".join(f"{obs.calls[i].type} {side} {format_shape(shape)}" for i, side, shape in strangers[:4])
    return Verdict(0.0, f"{len(strangers)} shape(s) in the run's account of its module calls never occur in its "
                        f"measured forward ({shown}): the trace was not made by this model",
                   review="the module calls the run reported do not match the model's captured forward: a forged "
                          "record, or a forward that changes from one call to the next")


def _unchecked(measured: Measured | None) -> str:
    """Why the trace could not be held to account by a measured forward, or "" when it was (or
    when no measure stage ran at all: the reference, a unit test)."""
    if measured is None:
        return ""
    if measured.data is None:
        return measured.problem or "the measure stage gave nothing"
    return measured.data.problem
