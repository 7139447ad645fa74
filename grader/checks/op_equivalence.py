"""``op_equivalence``: a hand-written op against its torch counterpart, forward and backward.

Every configuration of a sweep (constructor arguments, input shape, dtype) runs twice:

* in the sandbox (``probe``), on the student's op: build it, copy the counterpart's parameters
  into it (``weight``, ``bias``: drawn from generators seeded by the spec), run a seeded input
  forward and a seeded upstream gradient backward, and return the output and the gradients;
* on the host (``judge``), on the torch counterpart, rebuilt from the same seeds in the trusted
  process.

So the expectation is torch itself, computed where student code never ran. Nothing the sandbox
says about torch is believed (a student's process may have patched ``torch.nn.Conv2d``), and no
reference is needed: the reference's own hand-written op would only be a second opinion. Values
are compared in float64, element by element, ``|got - expected| <= atol + rtol * |expected| +
ROUNDING * eps * scale``: the last term is the rounding any order of summing allows. ``eps`` is the
config dtype's, and ``scale`` is what torch's counterpart computes on the absolute values of the
input, the parameters and the upstream gradient, which for a convolution or a linear layer is the
sum of the magnitudes of the terms each element adds up. A correct op that sums in another order
(loops over the kernel, over the batch) differs from torch by a few ``eps`` of that sum, which a
fixed ``atol`` of 1e-5 does not always cover in float32: a weight gradient sums hundreds of terms
to a small number. A wrong term costs a whole term, far above it. The output's dtype itself is not
required to match. A failing configuration gets mismatch rows:
which tensor, how many elements, the largest differences, the worst element.

The probe also returns the op's source and the names of the torch functions and aten operators
that ran inside the student's forward and backward; the judge matches both against forbidden
lists (``forbidden.py`` explains how and why on the host). A hit fails the check and flags it
for human review, whatever the numbers say.

Two readings of the student's op that the handout allows, each named in the message:

* **A parameter under another name.** The counterpart's ``weight`` goes into the op's ``weight``;
  an op without one (``self.weights``, ``self.kernel``, ``self.W``) gets it in its one tensor
  attribute of exactly the counterpart's shape, not already taken by another parameter. None, or
  several, of that shape: a setup failure that says so (several: flagged for a person, who can
  see which is the kernel). ``parameter_name_deduction`` takes points off for the renaming where
  the handout fixes the names (custom-ops' skeleton: ``self.weight``, ``self.bias``).
* **An op written for batched input only** (``batch_dimension: if-needed``). A config whose input
  has fewer dimensions than the sweep's largest ([1, 100, 100] beside [4, 32, 26, 26]) and on
  which the op raises, or returns another shape than torch's (``x.unfold(2, k, s).unfold(3, k, s)``
  reads [C, H, W] as [B, C, H]), is run again with a leading batch dimension of 1, removed from the
  output before it is compared, for handouts that apply the op to batches.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from grader.checks import register
from grader import artifacts
from grader.checks.base import CheckKind, CheckSpec, Measured, Observation, ProbeContext, StudentRaised, Verdict
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.checks.toolkit.common import format_shape, is_plain_tensor, short_error, type_name
from grader.checks.toolkit.forbidden import (Hit, OpRecorder, SourcePiece, collect_sources, default_names, default_ops,
                                     flag, matches, scan, scan_submitted)
from grader.observations import Array

ArgValue = int | float | bool | list[int]


class OpConfig(BaseModel):
    """One point of the sweep."""

    model_config = ConfigDict(extra="forbid")
    args: dict[str, ArgValue] = Field(
        default_factory=dict, description="constructor arguments, named as the counterpart names them, "
                                          "in the order the student's constructor takes them")
    input: list[int] = Field(min_length=1, description="input shape")
    dtype: Literal["float32", "float64"] = "float32"


def _sweep(names: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[OpConfig]:
    """Rows of ``(*argument values, input shape, dtype)``."""
    return [OpConfig(args=dict(zip(names, row[:-2])), input=row[-2], dtype=row[-1]) for row in rows]


# Small enough (about 3,400 multiply-adds for Conv2d) that a conv written as scalar Python loops
# runs the sweep, forward and backward under the dispatch record, in a few seconds on one CPU core.
DEFAULT_SWEEPS: dict[str, list[OpConfig]] = {
    "Conv2d": _sweep(("in_channels", "out_channels", "kernel_size", "stride"), [
        (1, 1, 3, 1, [1, 1, 5, 5], "float32"),    # batch of 1, one channel
        (3, 2, 3, 1, [2, 3, 5, 5], "float32"),    # several channels in and out
        (2, 3, 2, 2, [2, 2, 7, 9], "float32"),    # stride 2 on an odd, non-square input
        (2, 2, 3, 3, [1, 2, 10, 8], "float64"),   # stride 3 with rows and columns left over
        (1, 2, 1, 1, [2, 1, 4, 6], "float32"),    # 1x1 kernel
        (2, 2, 5, 1, [1, 2, 7, 6], "float64"),    # kernel 5
        (2, 2, 3, 2, [3, 2, 7, 5], "float32"),    # batch of 3, stride 2
        (2, 3, 4, 1, [2, 2, 4, 4], "float64"),    # kernel as large as the input: 1x1 output
    ]),
    "MaxPool2d": _sweep(("kernel_size", "stride"), [
        (2, 2, [1, 1, 4, 4], "float32"),
        (2, 2, [2, 3, 7, 9], "float32"),          # odd sizes: the last row and column are dropped
        (3, 3, [2, 2, 9, 7], "float64"),
        (3, 1, [1, 2, 6, 5], "float32"),          # overlapping windows: gradients add up
        (2, 1, [2, 1, 5, 5], "float64"),
        (3, 2, [2, 2, 8, 11], "float32"),
    ]),
    "ReLU": _sweep((), [([1, 1, 4, 4], "float32"), ([2, 3, 5, 7], "float64"), ([3, 2, 1, 6], "float32")]),
}


class OpEquivalenceSpec(CheckSpec):
    kind: Literal["op_equivalence"]
    target: str = Field(description="the student's op: a class (or factory) that builds an nn.Module")
    counterpart: str = Field(pattern=r"^(torch\.)?nn(\.[A-Za-z_][A-Za-z0-9_]*)+$",
                             description="the torch module it re-implements, e.g. torch.nn.Conv2d")
    args_as: Literal["positional", "keywords"] = Field(
        "positional", description="how the student's constructor gets a config's args (the counterpart always "
                                  "gets keywords)")
    configs: list[OpConfig] | None = Field(None, description="the sweep; default: the counterpart's built-in sweep")
    extra_configs: list[OpConfig] = Field([], description="configurations added to the sweep")
    atol: float = Field(1e-5, ge=0, json_schema_extra=JUDGE_ONLY)
    rtol: float = Field(1e-5, ge=0, json_schema_extra=JUDGE_ONLY)
    backward: bool = Field(True, description="also compare gradients after a backward pass")
    gradients: list[str] | None = Field(
        None, description="`input` and parameter names (weight, bias); default: the input and every parameter")
    forbidden_names: list[str] | None = Field(
        None, description="names the op's source must not use (globs); default: the counterpart's and evasions",
        json_schema_extra=JUDGE_ONLY)
    forbidden_ops: list[str] | None = Field(
        None, description="`aten.<op>` / `torch.<function>` globs the op must not run; default: the counterpart's",
        json_schema_extra=JUDGE_ONLY)
    seed: int = Field(0, description="seeds the parameters, inputs and upstream gradients of every config")
    parameter_name_deduction: float = Field(
        0, ge=0, description="points taken off when the op keeps a counterpart's parameter under another attribute "
                             "name (found by its shape), where the handout names the attributes",
                             json_schema_extra=JUDGE_ONLY)
    batch_dimension: Literal["never", "if-needed"] = Field(
        "never", description="if-needed: an unbatched input (fewer dimensions than the sweep's largest) the op raises "
                             "on is given again with a batch dimension of 1, removed from the output afterwards")

    @field_validator("counterpart")
    @classmethod
    def _full_name(cls, value: str) -> str:
        return value if value.startswith("torch.") else f"torch.{value}"

    @model_validator(mode="after")
    def _has_a_sweep(self) -> "OpEquivalenceSpec":
        if self.configs is None and self.short_name not in DEFAULT_SWEEPS:
            raise ValueError(f"there is no default sweep for {self.counterpart}; list `configs`")
        if self.parameter_name_deduction > self.points:
            raise ValueError(f"parameter_name_deduction ({self.parameter_name_deduction:g}) is more than the check's "
                             f"points ({self.points:g})")
        return self

    @property
    def short_name(self) -> str:
        return self.counterpart.rsplit(".", 1)[-1]

    def sweep(self) -> list[OpConfig]:
        return [*(self.configs if self.configs is not None else DEFAULT_SWEEPS[self.short_name]), *self.extra_configs]

    def names(self) -> list[str]:
        return self.forbidden_names if self.forbidden_names is not None else default_names(self.counterpart)

    def ops(self) -> list[str]:
        return self.forbidden_ops if self.forbidden_ops is not None else default_ops(self.counterpart)


class CaseRun(BaseModel):
    """What the student's op did on one configuration."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    error: str | None = None
    problems: list[str] = []
    output_type: str = ""
    output: Array | None = None
    gradients: dict[str, Array] = {}
    renamed: dict[str, str] = {}  # the counterpart's parameter -> the op's attribute it was copied into
    ambiguous: str = ""  # why a person should decide which attribute holds a parameter
    batched: bool = False  # the input was given with a batch dimension of 1 (``batch_dimension``)
    # the op captured as a graph (``grader.artifacts``): inputs ``input``, the counterpart's
    # parameters by name, ``upstream``; outputs the op's output then each gradient of ``graph_grads``
    graph: artifacts.Graph | None = None
    graph_grads: list[str] = []
    graph_problem: str = ""  # why there is no graph
    graph_input: list[int] = []  # the input shape the graph was captured on, when smaller than the config's


class OpObservation(Observation):
    runs: list[CaseRun]
    forward_ops: list[str]
    backward_ops: list[str]
    sources: list[SourcePiece]
    source_problems: list[str]


class MeasuredRun(BaseModel):
    """One config's graph run by the measure stage on fresh inputs."""

    model_config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    output: Array | None = None
    gradients: dict[str, Array] = {}
    operators: list[str] = []  # the aten operators the graph holds, forward and backward
    problem: str = ""  # why the graph gave no output
    refused: bool = False  # the graph broke the format's rules: crafted, since a capture never does


class OpMeasurement(Observation):
    runs: list[MeasuredRun | None]  # by config; None: the probe captured no graph for it


# ---------------------------------------------------------------- shared by probe and judge


def describe(spec: OpEquivalenceSpec, config: OpConfig) -> str:
    """``Conv2d(in_channels=2, ..., stride=2) on [2, 2, 7, 9] float32``."""
    args = ", ".join(f"{k}={v}" for k, v in config.args.items())
    return f"{spec.short_name}({args}) on {format_shape(config.input)} {config.dtype}"


def _rng(spec: OpEquivalenceSpec, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, index, stream])


def build_counterpart(spec: OpEquivalenceSpec, index: int, config: OpConfig) -> Any:
    """The torch module with parameters drawn from the config's seed (uniform, scaled by fan-in)."""
    import torch

    module: Any = torch
    for part in spec.counterpart.split(".")[1:]:
        module = getattr(module, part)
    built = module(**config.args).to(getattr(torch, config.dtype))
    rng = _rng(spec, index, 0)
    with torch.no_grad():
        for _, param in built.named_parameters():
            fan_in = max(1, param.numel() // param.shape[0]) if param.ndim else 1
            values = rng.uniform(-1.0, 1.0, size=tuple(param.shape)) / math.sqrt(fan_in)
            param.copy_(torch.from_numpy(values))
    return built


def seeded_tensor(spec: OpEquivalenceSpec, index: int, stream: int, shape: list[int], dtype: Any) -> Any:
    """Standard normal values from the config's seed, in ``dtype``, no two of them equal (float32
    and float64): a tie for a window's maximum leaves the gradient's place to the implementation
    (torch routes it to the first maximum, a student's loop may pick the last), and float32
    rounding makes such a tie likely enough in a large input that one machine's seed meets it."""
    import torch

    values = torch.from_numpy(_rng(spec, index, stream).standard_normal(size=tuple(shape))).to(dtype)
    if dtype not in (torch.float32, torch.float64):
        return values
    return torch.from_numpy(without_ties(torch.Tensor.numpy(values)))


def without_ties(values: np.ndarray) -> np.ndarray:
    """``values`` (a copy) with every repeat of a value moved up, one step of its float type at a
    time, until all are unique: a handful of values move by a few ulps, the rest stay exactly."""
    flat = values.reshape(-1).copy()
    while flat.size > 1:
        order = np.argsort(flat, kind="stable")
        repeated = order[1:][flat[order[1:]] == flat[order[:-1]]]
        if repeated.size == 0:
            break
        flat[repeated] = np.nextafter(flat[repeated], np.array(np.inf, dtype=flat.dtype))
    return flat.reshape(values.shape)


def as_array(tensor: Any) -> np.ndarray:
    """A float64 copy, read through torch's own methods (never the object's)."""
    import torch

    detached = torch.Tensor.detach(tensor)
    return np.array(torch.Tensor.numpy(torch.Tensor.to(torch.Tensor.cpu(detached), torch.float64)), copy=True)


def counterpart_results(spec: OpEquivalenceSpec, index: int, config: OpConfig) -> dict[str, np.ndarray]:
    """The expectation: torch's output and gradients on the config, by name (``output``,
    ``input``, ``weight`` ...). Runs on the host."""
    import torch

    module = build_counterpart(spec, index, config)
    dtype = getattr(torch, config.dtype)
    x = seeded_tensor(spec, index, 1, config.input, dtype).requires_grad_(True)
    with torch.enable_grad():
        out = module(x)
        results = {"output": as_array(out)}
        if spec.backward:
            torch.autograd.backward(out, seeded_tensor(spec, index, 2, list(out.shape), dtype))
            results["input"] = as_array(x.grad)
            results.update((name, as_array(p.grad)) for name, p in module.named_parameters())
    return results


ROUNDING = 8  # eps of the summed magnitudes allowed: a sum rounds by about 0.5 eps of it in the tests' loops


def counterpart_scales(spec: OpEquivalenceSpec, index: int, config: OpConfig) -> dict[str, np.ndarray]:
    """What ``counterpart_results`` computes with every input, parameter and upstream gradient
    replaced by its absolute value, by the same names: for a sum of products, the sum of the
    magnitudes of its terms, which bounds how much rounding any order of summing can cost."""
    import torch

    module = build_counterpart(spec, index, config)
    with torch.no_grad():
        for _, param in module.named_parameters():
            param.abs_()
    dtype = getattr(torch, config.dtype)
    x = seeded_tensor(spec, index, 1, config.input, dtype).abs().requires_grad_(True)
    with torch.enable_grad():
        out = module(x)
        results = {"output": np.abs(as_array(out))}
        if spec.backward:
            torch.autograd.backward(out, seeded_tensor(spec, index, 2, list(out.shape), dtype).abs())
            results["input"] = np.abs(as_array(x.grad))
            results.update((name, np.abs(as_array(p.grad))) for name, p in module.named_parameters())
    return results


def gradient_names(spec: OpEquivalenceSpec, parameter_names: list[str]) -> list[str]:
    return spec.gradients if spec.gradients is not None else ["input", *parameter_names]


# ---------------------------------------------------------------- probe side


@dataclass
class Placed:
    """Where one of the counterpart's parameters went in the student's op."""

    tensor: Any = None
    attribute: str = ""
    problem: str | None = None
    ambiguous: bool = False


def _copy_into(target: Any, label: str, value: Any, counterpart: str, name: str) -> str | None:
    import torch

    if type(target) not in (torch.Tensor, torch.nn.Parameter):
        return f"{label} is a {type_name(target)}, not a tensor"
    if torch.Tensor.numel(target) != value.numel():
        return f"{label} has shape {format_shape(list(target.shape))}, {counterpart}'s {name} has {format_shape(list(value.shape))}"
    with torch.no_grad():
        torch.Tensor.copy_(target, value.detach().reshape(target.shape))
    target.grad = None
    return None


def _plain_tensors_to(module: Any, dtype: Any) -> None:
    """What ``Module.to(dtype)`` does for parameters, done for the op's plain floating-point tensor
    attributes too: the handout's skeleton sets ``self.weight = None``, and many students then keep
    a plain ``torch.randn(..., requires_grad=True)`` there. A float64 config must reach that
    kernel as it reaches an ``nn.Parameter``, or the op fails on a dtype the handout never uses."""
    import torch

    for part in torch.nn.Module.modules(module):
        for attribute, value in list(vars(part).items()):
            if type(value) is torch.Tensor and torch.is_floating_point(value) and value.dtype != dtype:
                converted = torch.Tensor.to(torch.Tensor.detach(value), dtype)
                setattr(part, attribute, converted.requires_grad_(value.requires_grad))


def _tensor_attributes(module: Any) -> list[tuple[str, Any]]:
    """The op's parameters, buffers and plain tensor attributes, each once: ``(name, tensor)``."""
    import torch

    found: dict[int, tuple[str, Any]] = {}
    pairs = [*torch.nn.Module.named_parameters(module), *torch.nn.Module.named_buffers(module)]
    pairs += [(k, v) for k, v in vars(module).items() if type(v) in (torch.Tensor, torch.nn.Parameter)]
    for attribute, tensor in pairs:
        if type(tensor) in (torch.Tensor, torch.nn.Parameter):
            found.setdefault(id(tensor), (attribute, tensor))
    return list(found.values())


def _place_parameters(module: Any, counterpart_module: Any, owner: str, counterpart: str,
                      ctx: ProbeContext) -> dict[str, Placed]:
    """Copy each of the counterpart's parameters into the op: into the attribute of the same name,
    else into the one tensor attribute of exactly its shape that no other parameter took."""
    import torch

    values = dict(counterpart_module.named_parameters())
    placed: dict[str, Placed] = {}
    with ctx.student_code(f"reading {owner}'s parameters"):
        by_name = {n: getattr(module, n, None) for n in values}
        candidates = _tensor_attributes(module) if isinstance(module, torch.nn.Module) else []
    for pname, value in values.items():
        if by_name[pname] is not None:
            with ctx.student_code(f"copying {counterpart}'s {pname} into {owner}.{pname}"):
                problem = _copy_into(by_name[pname], f"{owner}.{pname}", value, counterpart, pname)
            placed[pname] = Placed(tensor=by_name[pname], attribute=pname, problem=problem)
    taken = {id(p.tensor) for p in placed.values()}
    for pname, value in values.items():
        if pname in placed:
            continue
        shape = list(value.shape)
        fits = [(a, t) for a, t in candidates if id(t) not in taken and list(t.shape) == shape]
        if len(fits) == 1:
            attribute, tensor = fits[0]
            taken.add(id(tensor))
            with ctx.student_code(f"copying {counterpart}'s {pname} into {owner}.{attribute}"):
                problem = _copy_into(tensor, f"{owner}.{attribute}", value, counterpart, pname)
            placed[pname] = Placed(tensor=tensor, attribute=attribute, problem=problem)
        elif fits:
            names = ", ".join(f"`{a}`" for a, _ in fits)
            placed[pname] = Placed(ambiguous=True, problem=(
                f"{owner} has no `{pname}`, and {len(fits)} of its tensors have {counterpart}'s {pname} shape "
                f"{format_shape(shape)} ({names}): which one is the {pname} is for a person to decide"))
        else:
            placed[pname] = Placed(problem=f"{owner} has no `{pname}` to copy {counterpart}'s {pname} into "
                                           f"(and no tensor attribute of its shape {format_shape(shape)})")
    return placed


def _run_student(spec: OpEquivalenceSpec, index: int, config: OpConfig, op: Any, name: str,
                 ctx: ProbeContext, recorder: OpRecorder) -> tuple[CaseRun, Any]:
    """One config on the student's op. Building and forward errors propagate (``StudentRaised``);
    a backward error is recorded in the run. Returns the run and the module built."""
    import torch

    dtype = getattr(torch, config.dtype)
    counterpart = build_counterpart(spec, index, config)
    call = f"{name}({', '.join(f'{k}={v}' for k, v in config.args.items())})"
    with ctx.student_code(f"building {call}"):
        module = op(*config.args.values()) if spec.args_as == "positional" else op(**config.args)
        if isinstance(module, torch.nn.Module):
            torch.nn.Module.to(module, dtype)
            _plain_tensors_to(module, dtype)
    parameter_names = [n for n, _ in counterpart.named_parameters()]
    placed = _place_parameters(module, counterpart, name, spec.counterpart, ctx)
    problems = [p.problem for p in placed.values() if p.problem]
    renamed = {n: p.attribute for n, p in placed.items() if p.attribute and p.attribute != n and not p.problem}
    ambiguous = "; ".join(p.problem for p in placed.values() if p.ambiguous and p.problem)
    x = seeded_tensor(spec, index, 1, config.input, dtype).requires_grad_(True)
    out, batched = _forward(spec, index, config, module, x, call, ctx, recorder)
    common = {"problems": problems, "renamed": renamed, "ambiguous": ambiguous, "batched": batched}
    if not is_plain_tensor(out):
        return CaseRun(output_type=type_name(out), **common), module
    run = CaseRun(output_type=type_name(out), output=as_array(out), **common)
    usable = {n: p for n, p in placed.items() if p.tensor is not None and not p.problem}
    run.graph, run.graph_grads, run.graph_problem = _capture(spec, config, module, usable, batched, list(out.shape),
                                                             call, ctx)
    if run.graph is None and "grew past" in run.graph_problem:
        # an op written as loops over scalars traces to too many operations on the config's input;
        # its correctness is measured on the smallest input of the same config instead
        small = config.model_copy(update={"input": reduced_input(config)})
        small_out = counterpart_shape(spec, index, small)
        graph, grads, problem = _capture(spec, small, module, usable, batched, small_out, call, ctx)
        if graph is not None:
            run.graph, run.graph_grads, run.graph_input = graph, grads, small.input
        else:
            run.graph_problem += f"; on the smaller input {format_shape(small.input)} too: {problem}"
    if not spec.backward:
        return run, module
    if not out.requires_grad:
        run.error = "the output does not require grad: autograd cannot differentiate the op (detached?)"
        return run, module
    upstream = seeded_tensor(spec, index, 2, list(out.shape), out.dtype)
    try:
        with ctx.student_code(f"running backward through {call}"), recorder.watching("backward"):
            torch.autograd.backward(out, upstream)
    except StudentRaised as exc:
        run.error = short_error(exc)
        return run, module
    for gname in gradient_names(spec, parameter_names):
        with ctx.student_code(f"reading the gradient of {name}.{placed[gname].attribute or gname}"
                              if gname in placed else f"reading the gradient of {name}.{gname}"):
            if gname == "input":
                grad = x.grad
            elif gname in placed and placed[gname].tensor is not None:
                grad = getattr(placed[gname].tensor, "grad", None)
            else:
                grad = getattr(getattr(module, gname, None), "grad", None)
        if grad is not None and is_plain_tensor(grad):
            run.gradients[gname] = as_array(grad)
    return run, module


def _forward(spec: OpEquivalenceSpec, index: int, config: OpConfig, module: Any, x: Any, call: str,
             ctx: ProbeContext, recorder: OpRecorder) -> tuple[Any, bool]:
    """The op's output on ``x``, and whether it took a batch dimension to get it (``batch_dimension``):
    an unbatched input the op raises on, or gives an output of another shape than torch's, is given
    again as a batch of one, and the output's batch dimension removed. If the op raises on that
    too, the first error stands; where the first call returned, its output stands unless the
    batch of one gives torch's shape."""
    import torch

    may_batch = spec.batch_dimension == "if-needed" and len(config.input) < max(len(c.input) for c in spec.sweep())
    first_error: BaseException | None = None
    out: Any = None
    # The op gets a copy of the input, not the leaf tensor whose gradient is read: an op may work in
    # place (`x[x < 0] = 0`, as torch's ReLU(inplace=True) does), which autograd refuses on a leaf.
    given = torch.Tensor.clone(x)
    try:
        with ctx.student_code(f"running {call} on an input of shape {format_shape(config.input)}"), \
                torch.enable_grad(), recorder.watching("forward"):
            out = module(given)
    except StudentRaised:
        if not may_batch:
            raise
        first_error = sys.exc_info()[1]
    torch_shape = counterpart_shape(spec, index, config) if may_batch and first_error is None else None
    if not may_batch or (is_plain_tensor(out) and list(out.shape) == torch_shape):
        return out, False
    batched = [1, *config.input]
    given = torch.unsqueeze(torch.Tensor.clone(x), 0)  # a fresh copy: the first call may have written in place
    try:
        with ctx.student_code(f"running {call} on the input as a batch of one, {format_shape(batched)}"), \
                torch.enable_grad(), recorder.watching("forward"):
            again = module(given)
    except StudentRaised:
        if first_error is not None:
            raise first_error from None
        return out, False
    usable = is_plain_tensor(again) and again.ndim >= 1 and again.shape[0] == 1
    if first_error is not None:
        if not usable:
            raise first_error
        return torch.squeeze(again, 0), True
    if usable and list(again.shape[1:]) == torch_shape:
        return torch.squeeze(again, 0), True
    return out, False


def reduced_input(config: OpConfig) -> list[int]:
    """The smallest input of ``config``'s kind that still has windows to slide: a batch of one,
    and spatial sides of one window plus one stride (an unbatched input keeps its channels)."""
    kernel, stride = config.args.get("kernel_size", 2), config.args.get("stride")
    side = lambda k, s: (k if isinstance(k, int) else max(k)) + ((s if isinstance(s, int) else max(s)) if s else 1)
    window = side(kernel, stride)
    shape = list(config.input)
    spatial = [min(d, window) for d in shape[-2:]]
    lead = shape[:-2]
    if len(lead) >= 2:
        lead = [1, *lead[1:]]
    return [*lead, *spatial]


def counterpart_shape(spec: OpEquivalenceSpec, index: int, config: OpConfig) -> list[int]:
    """The output shape of torch's own op on ``config``'s input."""
    import torch

    with torch.no_grad():
        module = build_counterpart(spec, index, config)
        return list(module(seeded_tensor(spec, index, 1, config.input, getattr(torch, config.dtype))).shape)


def _capture(spec: OpEquivalenceSpec, config: OpConfig, module: Any, placed: dict[str, Placed], batched: bool,
             out_shape: list[int], call: str, ctx: ProbeContext) -> tuple[artifacts.Graph | None, list[str], str]:
    """The op as a graph of torch operators, forward and backward: a function of the input, the
    counterpart's parameters (put where ``placed`` found their attributes) and the upstream
    gradient. Returns the graph and the names of the gradients it returns, or why there is none."""
    import torch

    dtype = getattr(torch, config.dtype)
    names = list(placed)
    grads = gradient_names(spec, names) if spec.backward else []
    grads = [g for g in grads if g == "input" or g in placed]

    def joint(x: Any, *rest: Any) -> tuple[Any, ...]:
        *parameters, upstream = rest
        with _swapped(module, {placed[n].attribute: t for n, t in zip(names, parameters)}):
            given = torch.Tensor.clone(x)  # not the leaf: see _forward
            out = torch.squeeze(module(torch.unsqueeze(given, 0)), 0) if batched else module(given)
        if not grads:
            return (out,)
        wrt = [x if g == "input" else parameters[names.index(g)] for g in grads]
        return (out, *torch.autograd.grad(out, wrt, upstream, allow_unused=True))

    inputs = [torch.zeros(config.input, dtype=dtype).normal_().requires_grad_(True),
              *(torch.Tensor.detach(placed[n].tensor).clone().requires_grad_(True) for n in names),
              torch.zeros(out_shape, dtype=dtype).normal_()]
    try:
        with ctx.student_code(f"capturing {call} as a graph of torch operators"), torch.enable_grad():
            graph = ctx.capture(joint, inputs, ["input", *names, "upstream"])
    except artifacts.ArtifactError as exc:
        return None, [], f"the op could not be captured: {exc}"
    except StudentRaised as exc:
        return None, [], f"the op could not be captured: {short_error(exc)}"
    return graph, grads, ""


class _swapped:
    """Inside the block, each attribute path (``weight``, ``conv.weight``) of ``module`` holds the
    given tensor, whether it was a parameter, a buffer or a plain attribute; restored after."""

    def __init__(self, module: Any, tensors: dict[str, Any]):
        self.module, self.tensors, self.saved = module, tensors, []

    def __enter__(self) -> None:
        import torch

        for path, tensor in self.tensors.items():
            *parents, leaf = path.split(".")
            owner = self.module
            for part in parents:
                owner = getattr(owner, part)
            for store in ("_parameters", "_buffers"):
                table = getattr(owner, store, None) if isinstance(owner, torch.nn.Module) else None
                if table is not None and leaf in table:
                    self.saved.append((table, leaf, table[leaf]))
                    table[leaf] = tensor
                    break
            else:
                self.saved.append((vars(owner), leaf, vars(owner)[leaf]))
                vars(owner)[leaf] = tensor

    def __exit__(self, *exc: Any) -> None:
        for table, leaf, value in reversed(self.saved):
            table[leaf] = value


# ---------------------------------------------------------------- judge side


@dataclass
class Difference:
    """How two arrays of one shape differ, given a tolerance."""

    mismatched: int
    total: int
    max_abs: float
    max_rel: float
    worst: tuple[int, ...]
    got: float
    expected: float

    @classmethod
    def of(cls, got: np.ndarray, want: np.ndarray, atol: float, rtol: float,
           rounding: np.ndarray | float = 0.0) -> "Difference":
        """``rounding``: what summing in another order may cost each element, on top of the tolerance."""
        diff = np.abs(got - want)
        allowed = atol + rtol * np.abs(want) + rounding
        excess = np.where(np.isnan(diff), np.inf, diff - allowed)
        rel = np.where(np.abs(want) > 0, diff / np.where(want == 0, 1, np.abs(want)), np.where(diff > 0, np.inf, 0))
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), want.shape)) if want.size else ()
        return cls(int(np.sum(excess > 0)), int(want.size), float(np.max(diff, initial=0)),
                   float(np.max(rel, initial=0)), worst,
                   float(got[worst]) if want.size else 0.0, float(want[worst]) if want.size else 0.0)

    def describe(self) -> str:
        return (f"{self.mismatched} of {self.total} elements differ, max abs diff {self.max_abs:.3g} "
                f"at {list(self.worst)} (got {self.got:.6g}, expected {self.expected:.6g})")


def _row(config: str, compared: str, detail: str, ok: bool, d: Difference | None = None) -> dict[str, Any]:
    return {"config": config, "compared": compared, "detail": detail,
            "max_abs_diff": f"{d.max_abs:.3g}" if d else "", "max_rel_diff": f"{d.max_rel:.3g}" if d else "",
            "worst": f"{list(d.worst)}: got {d.got:.6g}, expected {d.expected:.6g}" if d and not ok else "", "ok": ok}


@dataclass
class Comparison:
    """One config judged: its table rows, whether it matched, and its largest absolute difference."""

    rows: list[dict[str, Any]]
    ok: bool
    max_abs: float = math.nan


def _compare_run(spec: OpEquivalenceSpec, index: int, config: OpConfig, run: CaseRun) -> Comparison:
    """One ``ok`` row if the config matches, else one row per thing that differs."""
    label = describe(spec, config)
    rows = [_row(label, "setup", p, False) for p in run.problems]
    if run.output is None:
        what = run.error or f"the op returned a {run.output_type}, expected a torch.Tensor"
        return Comparison([_row(label, "output", what, False), *rows], ok=False)
    want = counterpart_results(spec, index, config)
    scales = counterpart_scales(spec, index, config)
    eps = float(np.finfo(getattr(np, config.dtype)).eps)
    names = gradient_names(spec, [n for n in want if n not in ("output", "input")]) if spec.backward else []
    differences: list[Difference] = []
    for name in ["output", *names]:
        compared = name if name == "output" else f"grad {name}"
        got, expected = (run.output if name == "output" else run.gradients.get(name)), want.get(name)
        if expected is None:
            rows.append(_row(label, compared, f"{spec.counterpart} has no parameter {name!r} (rubric error)", False))
        elif got is None:
            rows.append(_row(label, compared, run.error or f"no gradient reached {name} after backward", False))
        elif got.shape != expected.shape and (name == "output" or got.size != expected.size):
            rows.append(_row(label, compared, f"shape {format_shape(list(got.shape))}, "
                                              f"expected {format_shape(list(expected.shape))}", False))
        else:
            d = Difference.of(got.reshape(expected.shape), expected, spec.atol, spec.rtol,
                              ROUNDING * eps * scales[name] if name in scales else 0.0)
            differences.append(d)
            if d.mismatched:
                rows.append(_row(label, compared, d.describe(), False, d))
    if rows:
        return Comparison(rows, ok=False)
    largest = max(differences, key=lambda d: d.max_abs)
    compared = ", ".join(["output", *(f"grad {n}" for n in names)])
    detail = f"all {sum(d.total for d in differences)} values within tolerance"
    return Comparison([_row(label, compared, detail, True, largest)], ok=True, max_abs=largest.max_abs)


def _judge_runs(spec: OpEquivalenceSpec, configs: list[OpConfig], obs: OpObservation, measured: Measured | None
                ) -> tuple[list[Comparison], list[Hit], list[str]]:
    """Every config compared on what the measure stage computed; the forbidden operators its graph
    holds; and what a person should know.

    Points come from measurements only: a config without one (no graph, or a graph refused) earns
    nothing, and what the student's process reported for it is put in front of a person instead,
    since that report is exactly what a student who reads the grader's source can write. Without a
    measure stage at all (``measured`` None: the reference, ``--isolation none``) the reports are
    judged as they are."""
    comparisons, hits, doubts = [], [], []
    unmeasured: list[str] = []
    fresh = spec.model_copy(update={"seed": measured.seed}) if measured is not None else spec
    for index, (config, run, m) in enumerate(zip(configs, obs.runs, _measured_runs(measured, len(configs)))):
        observed = _compare_run(spec, index, config, run)
        label = describe(spec, config)
        if measured is None:
            comparisons.append(observed)
            continue
        if m is not None:
            hits += [Hit(op, label, "in the captured graph") for op in m.operators if matches(op, spec.ops())]
        if m is not None and m.output is not None and not m.refused:
            comparison = _compare_run(fresh, index, measured_config(config, run), run.model_copy(
                update={"output": m.output, "gradients": m.gradients, "error": None}))
            if run.graph_input:  # measured small: points only if the full config's report matched too
                comparison = _measured_small(comparison, observed, label, run.graph_input)
            comparisons.append(comparison)
            if observed.ok and not comparison.ok:
                doubts.append(f"{label} matched {spec.counterpart} only on the inputs the student's process saw, not "
                              "on fresh ones: the op computes outside torch's operators (numpy, a switched-off "
                              "tracer, values looked up), which the grader cannot measure")
            continue
        why = (m.problem if m is not None else measured.problem or run.graph_problem) or "no graph was captured"
        reported = "matched" if observed.ok else "did not match"
        comparisons.append(Comparison([_row(label, "measured", f"not measured: {why}; the run reported that it "
                                                               f"{reported} {spec.counterpart}", False)], ok=False))
        if observed.ok:
            unmeasured.append(f"{label} ({why})")
    if unmeasured:
        doubts.append(f"{len(unmeasured)} config(s) the run reported as matching could not be measured, so earned "
                      f"nothing; a person may award them: {'; '.join(unmeasured[:3])}"
                      + (f" and {len(unmeasured) - 3} more" if len(unmeasured) > 3 else ""))
    return comparisons, hits, doubts


def _measured_small(measured: Comparison, observed: Comparison, label: str, shape: list[int]) -> Comparison:
    """A config measured on a smaller input: it passes when that measurement matched and the run's
    report on the full input matched too; its rows say both."""
    note = (f"measured on the smaller input {format_shape(shape)} (the full input traces to too many operations "
            f"to capture); the run reported that the full input {'matched' if observed.ok else 'did not match'}")
    if measured.ok and observed.ok:
        return Comparison([{**row, "detail": f"{row['detail']}; {note}"} for row in measured.rows], ok=True,
                          max_abs=max(measured.max_abs, observed.max_abs))
    rows = measured.rows if not measured.ok else observed.rows
    return Comparison([*rows, _row(label, "measured", note, False)], ok=False)


def forbidden_hits(spec: OpEquivalenceSpec, obs: OpObservation) -> tuple[list[Hit], list[str]]:
    """Forbidden things in the op's source and among the ops it ran; and reasons to review anyway."""
    hits, unreadable = scan(obs.sources, spec.names())
    for phase, names in (("forward", obs.forward_ops), ("backward", obs.backward_ops)):
        hits += [Hit(n, "", f"called during {phase}") for n in names if matches(n, spec.ops())]
    doubts = list(obs.source_problems) + [f"the source of {n} is not valid Python" for n in unreadable]
    if not obs.sources:
        doubts.append("no source of the op could be read, so it was not scanned")
    return hits, doubts


def measured_config(config: OpConfig, run: CaseRun) -> OpConfig:
    """The config as its graph was captured: on a smaller input when the full one was too big."""
    return config.model_copy(update={"input": run.graph_input}) if run.graph_input else config


def _measure_run(spec: OpEquivalenceSpec, index: int, config: OpConfig, run: CaseRun) -> MeasuredRun:
    """One config's graph on the inputs ``spec``'s seed draws, with torch's parameters in it."""
    import torch

    config = measured_config(config, run)

    graph = run.graph
    assert graph is not None
    try:
        artifacts.check(graph)
    except artifacts.ArtifactError as exc:
        return MeasuredRun(problem=f"the captured graph was refused: {exc}", refused=True)
    counterpart = build_counterpart(spec, index, config)
    parameters = dict(counterpart.named_parameters())
    names = graph.inputs[1:-1]
    if graph.inputs[:1] != ["input"] or graph.inputs[-1:] != ["upstream"] or not set(names) <= set(parameters) \
            or len(run.graph_grads) + 1 != len(graph.outputs):
        return MeasuredRun(problem=f"the captured graph takes {graph.inputs} and returns {len(graph.outputs)} "
                                   f"values for gradients {run.graph_grads}: not the op's forward and backward",
                           refused=True, operators=graph.operators())
    dtype = getattr(torch, config.dtype)
    x = seeded_tensor(spec, index, 1, config.input, dtype)
    with torch.no_grad():
        out_shape = list(counterpart(x).shape)
    upstream = seeded_tensor(spec, index, 2, out_shape, dtype)
    try:
        outputs = artifacts.run(graph, [x, *(parameters[n].detach() for n in names), upstream])
    except artifacts.ArtifactError as exc:
        return MeasuredRun(problem=str(exc), operators=graph.operators())
    out, grads = outputs[0], dict(zip(run.graph_grads, outputs[1:]))
    if not is_plain_tensor(out):
        return MeasuredRun(problem="the captured graph returns no tensor", operators=graph.operators())
    return MeasuredRun(output=as_array(out), operators=graph.operators(),
                       gradients={n: as_array(g) for n, g in grads.items() if is_plain_tensor(g)})


def _measured_runs(measured: Measured | None, count: int) -> list[MeasuredRun | None]:
    data = measured.data if measured is not None else None
    if not isinstance(data, OpMeasurement) or len(data.runs) != count:
        return [None] * count
    return list(data.runs)


@register("op_equivalence")
class OpEquivalence(CheckKind):
    Spec = OpEquivalenceSpec
    Observation = OpObservation
    Measurement = OpMeasurement

    @staticmethod
    def measure(spec: OpEquivalenceSpec, obs: OpObservation, seed: int, given: Any = None) -> OpMeasurement:
        fresh = spec.model_copy(update={"seed": seed})
        return OpMeasurement(runs=[_measure_run(fresh, i, c, run) if run.graph is not None else None
                                   for i, (c, run) in enumerate(zip(spec.sweep(), obs.runs))])

    @staticmethod
    def probe(spec: OpEquivalenceSpec, ctx: ProbeContext) -> OpObservation:
        op = ctx.resolve(spec.target)
        name = ctx.found_name(spec.target)
        recorder = OpRecorder()
        runs, built, failures = [], [], []
        for index, config in enumerate(spec.sweep()):
            try:
                run, module = _run_student(spec, index, config, op, name, ctx, recorder)
                runs.append(run)
                built.append(type(module))
            except StudentRaised as exc:
                runs.append(CaseRun(error=short_error(exc)))
                failures.append(exc)
        if failures and len(failures) == len(runs):
            raise failures[0]  # the op never ran: errored, with the traceback
        try:
            sources, problems = collect_sources(op, also=dict.fromkeys(built))
        except Exception as exc:  # noqa: BLE001 - student objects can misbehave under inspection
            sources, problems = [], [f"the source could not be collected ({type(exc).__name__})"]
        return OpObservation(runs=runs, forward_ops=recorder.names("forward"), backward_ops=recorder.names("backward"),
                             sources=sources, source_problems=problems)

    @staticmethod
    def judge(spec: OpEquivalenceSpec, obs: OpObservation, expected: None, measured: Measured | None = None
              ) -> Verdict:
        """Each config is judged on what the measure stage computed from its graph, on inputs the
        student's process never saw; a config without a usable graph on what the probe observed,
        flagged as only observed. Without a measure stage at all (``measured`` None: the reference,
        the ``none`` isolation level) every config is judged as observed, unflagged."""
        configs = spec.sweep()
        if len(obs.runs) != len(configs):
            return Verdict.failed(f"the probe returned {len(obs.runs)} runs for {len(configs)} configs")
        results, hits, doubts = _judge_runs(spec, configs, obs, measured)
        passed = sum(r.ok for r in results)
        table = [row for r in results for row in r.rows]
        found, more_doubts = forbidden_hits(spec, obs)
        hits, doubts = hits + found, doubts + more_doubts
        if hits:
            return _forbidden(hits, passed, len(configs))
        direction = "forward and backward" if spec.backward else "forward"
        if passed == len(configs):
            largest = max(r.max_abs for r in results)
            verdict = Verdict.passed(f"matches {spec.counterpart} in all {len(configs)} configs, {direction} "
                                     f"(max abs diff {largest:.3g})", table)
        else:
            first = next(r.rows[0] for r in results if not r.ok)
            verdict = Verdict(passed / len(configs),
                              f"{len(configs) - passed} of {len(configs)} configs differ from {spec.counterpart} "
                              f"(atol {spec.atol:g}, rtol {spec.rtol:g}, and the rounding of the sums); first: {first['config']}: "
                              f"{first['compared']}: {first['detail']}", table)
        verdict = _readings(spec, configs, obs.runs, verdict)
        doubts += list(dict.fromkeys(run.ambiguous for run in obs.runs if run.ambiguous))
        return flag(verdict, "; ".join(doubts)) if doubts else verdict
    @staticmethod
    def recheck(spec: OpEquivalenceSpec, obs: OpObservation, verdict: Verdict, found_as: str | None,
                submitted: list[tuple[str, str]], expected: Any | None = None,
                target_names: tuple[str, ...] = ()) -> Verdict:
        """Scan the op as the student submitted it, in the host's copy. The probe's sources come
        from the student's process, which could have rewritten them; this copy it never saw.
        Every definition under the rubric's own names is scanned too, so a record naming some
        harmless class as the one graded cannot steer the scan away from the op."""
        if verdict.review == FORBIDDEN:
            return verdict
        names = [found_as.rsplit(".", 1)[-1]] if found_as else []
        names += [piece.name for piece in obs.sources]
        names += [name.rsplit(".", 1)[-1] for name in target_names if "*" not in name]
        if not names:
            return verdict
        hits, doubts = scan_submitted(submitted, names, spec.names())
        if hits:
            configs = len(spec.sweep())
            return _forbidden(hits, round(verdict.fraction * configs), configs)
        if doubts:
            return flag(verdict, "; ".join(r for r in [verdict.review, *doubts] if r))
        return verdict


FORBIDDEN = "forbidden implementation"


def _readings(spec: OpEquivalenceSpec, configs: list[OpConfig], runs: list[CaseRun], verdict: Verdict) -> Verdict:
    """The verdict with what the harness did to compare the op named: a parameter copied into an
    attribute of another name (less ``parameter_name_deduction`` points), inputs given a batch
    dimension. Nothing is added when neither happened."""
    said: list[str] = []
    fraction = verdict.fraction
    renamed = {k: v for run in runs for k, v in run.renamed.items()}
    if renamed:
        kept = ", ".join(f"{k} in `{v}`" for k, v in renamed.items())
        said.append(f"{spec.short_name} keeps {spec.counterpart}'s {kept} (found by shape; compared there)")
        if spec.parameter_name_deduction and spec.points:
            fraction = max(0.0, fraction - spec.parameter_name_deduction / spec.points)
            said[-1] += (f"; {spec.parameter_name_deduction:g} of {spec.points:g} points taken off: the handout "
                         f"names the attributes {', '.join(renamed)}")
    batched = [format_shape(c.input) for c, run in zip(configs, runs) if run.batched]
    if batched:
        said.append(f"{'input' if len(batched) == 1 else 'inputs'} {', '.join(batched)} given as a batch of one "
                    f"(the op takes batched input only) and the batch dimension removed from the output")
    if not said:
        return verdict
    return dataclasses.replace(verdict, fraction=fraction, message=f"{verdict.message}; {'; '.join(said)}")


def _forbidden(hits: list[Hit], passed: int, configs: int) -> Verdict:
    """Failed and flagged: what was found, how and where (the first five), whatever the numbers."""
    shown = "; ".join(f"{h.found} {h.how}" + (f" ({h.where})" if h.where else "") for h in hits[:5])
    more = f" and {len(hits) - 5} more" if len(hits) > 5 else ""
    return flag(Verdict.failed(f"uses torch's own implementation: {shown}{more}; flagged for review "
                               f"(its numbers matched in {passed} of {configs} configs)",
                               [{"found": h.found, "how": h.how, "where": h.where} for h in hits]),
                FORBIDDEN)
