"""``residual``: a block's skip connection is real, not just a shape that happens to fit.

A residual block computes ``act(x + F(x))``. With every parameter of the block set to zero the
branch ``F`` of linear or convolutional layers (biases and BatchNorm scales included) outputs
zeros, so a block with a skip path returns ``act(x)``, and one without returns ``act(0)``, a
constant.

A measured kind. The probe builds the block, captures its eval forward with every weight as an
input of the graph (``model_capture``), and for a person's eyes also runs it on a random input,
then with its parameters zeroed (read from the modules' own storage, as ``param_count`` does). The
measure stage runs the graph on a fresh input drawn from the host's seed, once with the shipped
weights and once with every parameter zeroed (buffers such as running statistics kept). What
the run reported can only fail the check (not a module, not a tensor, the wrong size); what
passes it is computed from the graph.

Judged on the host:

* ``skip``: the zeroed block's output equals ``g(input)`` for one of the allowed final
  activations ``g`` (identity, ReLU, ...), so the input reaches the output unchanged apart from
  that activation.
* ``branch``: with its own (non-zero) weights the block's output is not ``g(input)`` for the same
  ``g``: the layers contribute, so a block that only returns its input does not pass either.

A projection on the skip path (needed only when the sizes differ) is zeroed too and fails the
check: call the block with equal input and output sizes.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal

import numpy as np
from pydantic import Field, model_validator

from grader import artifacts
from grader.checks import register
from grader.checks.toolkit import model_capture
from grader.checks.base import CheckKind, CheckSpec, Measured, Observation, ProbeContext, Verdict
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.checks.toolkit.common import Args, call_target, format_shape, is_plain_tensor, type_name
from grader.checks.param_count import own_parameters
from grader.observations import Array

Dim = int | str
Activation = Literal["identity", "relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid"]


def _gelu(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


# torch's defaults (negative slope 0.01, alpha 1, exact GELU), in numpy: the host never runs torch
# on sandbox output.
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "gelu": _gelu,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
}


class ResidualSpec(CheckSpec):
    kind: Literal["residual"]
    target: str = Field(description="a class or factory function that builds the block")
    args: Args = Field(default_factory=list, description="constructor arguments; input and output sizes must be equal")
    input: list[Dim] = Field(description="the block's input shape; a symbol (B) is the batch size")
    batch: int = Field(4, ge=1, le=64, description="the batch size the probe uses")
    activations: list[Activation] = Field(list(ACTIVATIONS), min_length=1,
                                          description="final activations accepted after the addition",
                                          json_schema_extra=JUDGE_ONLY)
    atol: float = Field(1e-5, gt=0, description="absolute tolerance of the comparison", json_schema_extra=JUDGE_ONLY)

    @model_validator(mode="after")
    def _small_input(self) -> "ResidualSpec":
        for d in self.input:
            if isinstance(d, str) and not d.isidentifier():
                raise ValueError(f"input dimension {d!r} must be an integer or a symbol such as B")
            if isinstance(d, int) and d < 1:
                raise ValueError(f"input dimension {d} must be positive")
        if math.prod(self.shape()) > 100_000:
            raise ValueError(f"the input {format_shape(self.shape())} is too large; a few thousand numbers suffice")
        return self

    def shape(self) -> list[int]:
        return [self.batch if isinstance(d, str) else d for d in self.input]


class ResidualObservation(Observation):
    module_type: str
    is_module: bool
    parameters_zeroed: int
    input: Array | None = None
    output: Array | None = None
    output_type: str = ""
    zeroed_output: Array | None = None
    zeroed_output_type: str = ""
    captured: model_capture.CapturedModel | None = None  # the block's eval forward, for the measure stage


class ResidualMeasurement(Observation):
    """The captured forward run on a fresh input, with the block's weights and with its parameters
    zeroed; ``problem`` says why it could not be (then the arrays are None)."""

    input: Array | None = None
    output: Array | None = None
    zeroed_output: Array | None = None
    parameters_zeroed: int = 0
    problem: str = ""


def _numbers(out: Any) -> np.ndarray | None:
    import torch

    if not is_plain_tensor(out):
        return None
    return torch.Tensor.numpy(torch.Tensor.to(torch.Tensor.detach(out), "cpu", torch.float64))


@register("residual")
class Residual(CheckKind):
    Spec = ResidualSpec
    Observation = ResidualObservation
    Measurement = ResidualMeasurement

    @staticmethod
    def probe(spec: ResidualSpec, ctx: ProbeContext) -> ResidualObservation:
        import torch

        block = call_target(ctx, spec.target, spec.args)
        if not isinstance(block, torch.nn.Module):
            return ResidualObservation(module_type=type_name(block), is_module=False, parameters_zeroed=0)
        x = torch.randn(*spec.shape())
        running = f"running the block on an input of shape {format_shape(spec.shape())}"
        with ctx.student_code("switching the block to eval mode"):
            torch.nn.Module.train(block, False)  # BatchNorm and dropout as at test time
        with ctx.student_code(running), torch.no_grad():
            out = block(x.clone())
        captured = model_capture.capture(block, [spec.shape()], torch.float32, ctx, "the block")
        params = own_parameters(block)
        with torch.no_grad():
            for p in params:
                torch.Tensor.zero_(p)
        with ctx.student_code(running + " with every parameter zeroed"), torch.no_grad():
            zeroed = block(x.clone())
        return ResidualObservation(module_type=type_name(block), is_module=True, parameters_zeroed=len(params),
                                   input=x.double().numpy(), output=_numbers(out), output_type=type_name(out),
                                   zeroed_output=_numbers(zeroed), zeroed_output_type=type_name(zeroed),
                                   captured=captured)

    @staticmethod
    def measure(spec: ResidualSpec, obs: ResidualObservation, seed: int, given: Any = None) -> ResidualMeasurement:
        import torch

        captured = obs.captured
        if captured is None or captured.problem or len(captured.graphs) != 1 or captured.graphs[0] is None:
            return ResidualMeasurement(problem=captured.why_not(0) if captured else "the run shipped no capture")
        if any(w.values is None for w in captured.weights):
            return ResidualMeasurement(problem="the block's weights were too large to travel whole")
        try:
            weights = model_capture.weight_tensors(captured, seed)
            zeroed = [torch.zeros_like(w) if shipped.parameter else w for w, shipped in zip(weights, captured.weights)]
            x = model_capture.fresh_input(captured, spec.shape(), seed, 0)
            outputs = [model_capture.run_on(captured, 0, x, values) for values in (weights, zeroed)]
        except (model_capture.Refused, artifacts.ArtifactError) as exc:
            return ResidualMeasurement(problem=str(exc)[:500])
        live, off = (_numbers(out) for out in outputs)
        if live is None or off is None:
            return ResidualMeasurement(problem="the graph's output is not a tensor")
        return ResidualMeasurement(input=_numbers(x), output=live, zeroed_output=off,
                                   parameters_zeroed=sum(w.parameter for w in captured.weights))

    @staticmethod
    def judge(spec: ResidualSpec, obs: ResidualObservation, expected: None,
              measured: Measured | None = None) -> Verdict:
        """What the run reported can fail the check; only the measurement can pass it."""
        if not obs.is_module:
            return Verdict.failed(f"the target built a {obs.module_type}, not a torch.nn.Module")
        x = obs.input
        if x is None or list(x.shape) != spec.shape():
            return Verdict.failed("the probe recorded no input of the requested shape")
        for name, out, kind in (("output", obs.output, obs.output_type),
                                ("output with zeroed parameters", obs.zeroed_output, obs.zeroed_output_type)):
            if out is None:
                return Verdict.failed(f"the block's {name} is a {kind}, not a torch.Tensor")
            if out.shape != x.shape:
                return Verdict.failed(f"the block's {name} has shape {format_shape(list(out.shape))}, expected the "
                                      f"input's {format_shape(list(x.shape))} (a residual block keeps the size)")
        why = _why_unmeasured(measured)
        if why:
            return Verdict(0.0, f"not measured: {why}; the run reported a block of the right size",
                           review=f"the block's skip path could not be measured ({why}); a person may grade it")
        m = measured.data  # type: ignore[union-attr]
        x, zeroed, live = m.input, m.zeroed_output, m.output
        close = {name: bool(np.allclose(zeroed, ACTIVATIONS[name](x), rtol=0, atol=spec.atol))
                 for name in spec.activations}
        matched = next((name for name, ok in close.items() if ok), None)
        if matched is None:
            gaps = {name: float(np.abs(zeroed - ACTIVATIONS[name](x)).max()) for name in spec.activations}
            nearest = min(gaps, key=lambda name: gaps[name])
            constant = float(np.ptp(zeroed)) <= spec.atol
            got = (f"a constant {float(zeroed.flat[0]):.4g} for every input: nothing of the input reaches the output "
                   "(no skip connection?)") if constant else \
                f"not any activation of the input (nearest: {_named(nearest)}, off by up to {gaps[nearest]:.3g})"
            skip_row = {"requirement": "with every parameter zeroed, the output is act(input) (the skip path)",
                        "got": got, "ok": False}
            branch_row = {"requirement": "with its own weights, the block's layers change the output",
                          "got": "not judged: the skip path was not found", "ok": False}
        else:
            skip_row = {"requirement": "with every parameter zeroed, the output is act(input) (the skip path)",
                        "got": f"{_named(matched)} ({m.parameters_zeroed} parameter tensors zeroed)", "ok": True}
            gap = float(np.abs(live - ACTIVATIONS[matched](x)).max())
            branch_row = {"requirement": "with its own weights, the block's layers change the output",
                          "got": f"differs from {_named(matched)} by up to {gap:.3g}", "ok": gap > spec.atol}
            if gap <= spec.atol:
                branch_row["got"] = f"always {_named(matched)}: the layers do not contribute"
        passed = f"a real skip path: {_named(matched)} with the layers zeroed, and the layers add to it"
        return Verdict.from_requirements([skip_row, branch_row], passed=passed)


def _why_unmeasured(measured: Measured | None) -> str:
    """Why there is no measurement to judge the skip path on, or ""."""
    if measured is None:
        return "no measure stage ran"
    m = measured.data
    if m is None:
        return measured.problem or "the measure stage gave nothing"
    if m.problem:
        return m.problem
    if m.input is None or m.output is None or m.zeroed_output is None \
            or not m.input.shape == m.output.shape == m.zeroed_output.shape:
        return "the measured outputs do not keep the input's shape"
    return ""


def _named(activation: str | None) -> str:
    return "the input itself" if activation == "identity" else f"{activation}(input)"
