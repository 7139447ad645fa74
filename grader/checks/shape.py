"""``shape``: build a target with arguments, feed inputs of a shape, expect an output shape.

Dimensions may be symbols (``B``): the probe tries each batch size in ``batch_sizes`` and the
judge substitutes it, so ``[B, 1, 28, 28] -> [B, 10]`` also catches a model that hard-codes 64.

A measured kind: the probe also captures the model's forward on each input shape as a graph
(``model_capture``), and the measure stage runs each graph on a fresh input of that shape. The
output shapes measured there are what earn points; the shapes the student's process reports are
believed only when they say the model failed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from grader import artifacts
from grader.checks import register
from grader.checks.toolkit import model_capture
from grader.checks.base import CheckKind, CheckSpec, Measured, Observation, ProbeContext, Verdict
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.checks.toolkit.common import (Args, call_target, describe_call, format_shape, input_dtype, is_plain_tensor,
                                  tensor_shape, type_name)
from grader.checks.toolkit.model_capture import CapturedModel

Dim = int | str


class ShapeSpec(CheckSpec):
    kind: Literal["shape"]
    target: str = Field(description="a class or factory function that builds an nn.Module")
    args: Args = Field(default_factory=list, description="constructor arguments: a list (positional) or a mapping")
    input: list[Dim] = Field(description="input shape; strings are symbols such as B")
    output: list[Dim] | Literal["reference"] = Field(description="expected output shape, or `reference`",
                                                     json_schema_extra=JUDGE_ONLY)
    batch_sizes: list[int] = Field([1, 3], description="values tried for every symbol in the input")
    dtype: Literal["float32", "float64"] = "float32"

    def bindings(self) -> list[dict[str, int]]:
        symbols = sorted({d for d in self.input if isinstance(d, str)})
        return [{s: b for s in symbols} for b in self.batch_sizes]


class Forward(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    input_shape: list[int]
    output_type: str
    output_shape: list[int] | None


class ShapeObservation(Observation):
    forwards: list[Forward]
    captured: CapturedModel | None = None  # the model's forward on each input shape, as graphs


class MeasuredForward(BaseModel):
    """One input shape's graph, run by the measure stage on a fresh input of that shape."""

    model_config = ConfigDict(extra="forbid", strict=True)
    output_type: str = ""
    output_shape: list[int] | None = None
    problem: str = ""  # why the graph gave no output


class ShapeMeasurement(Observation):
    forwards: list[MeasuredForward | None]  # by input shape; None: the probe captured no graph for it


def concrete(dims: list[Dim], binding: dict[str, int]) -> list[int]:
    return [binding.get(d, -1) if isinstance(d, str) else d for d in dims]


@register("shape")
class Shape(CheckKind):
    Spec = ShapeSpec
    Observation = ShapeObservation
    Measurement = ShapeMeasurement

    @staticmethod
    def needs_reference(spec: ShapeSpec) -> bool:
        return spec.output == "reference"

    @staticmethod
    def probe(spec: ShapeSpec, ctx: ProbeContext) -> ShapeObservation:
        import torch

        model = call_target(ctx, spec.target, spec.args)
        with ctx.student_code("switching the model to eval mode"):
            if isinstance(model, torch.nn.Module):
                model.eval()
        dtype = input_dtype(model, getattr(torch, spec.dtype))
        forwards = []
        shapes = [concrete(spec.input, binding) for binding in spec.bindings()]
        for shape in shapes:
            x = torch.randn(*shape, dtype=dtype)
            with ctx.student_code(f"running the model on an input of shape {format_shape(shape)}"), torch.no_grad():
                out = model(x)
            plain = is_plain_tensor(out)
            forwards.append(Forward(input_shape=shape, output_type=type_name(out),
                                    output_shape=tensor_shape(out) if plain else None))
        call = describe_call(ctx.found_name(spec.target), spec.args)
        return ShapeObservation(forwards=forwards, captured=model_capture.capture(model, shapes, dtype, ctx, call))

    @staticmethod
    def measure(spec: ShapeSpec, obs: ShapeObservation, seed: int, given: Any = None) -> ShapeMeasurement:
        captured = obs.captured
        shapes = [concrete(spec.input, binding) for binding in spec.bindings()]
        if captured is None or captured.problem or len(captured.graphs) != len(shapes):
            return ShapeMeasurement(forwards=[None] * len(shapes))
        try:
            weights = model_capture.weight_tensors(captured, seed)
        except model_capture.Refused as exc:
            return ShapeMeasurement(forwards=[None if graph is None else MeasuredForward(
                                                  problem=f"the captured weights were refused: {exc}")
                                              for graph in captured.graphs])
        return ShapeMeasurement(forwards=[None if graph is None else _measure_forward(captured, i, shape, seed, weights)
                                          for i, (graph, shape) in enumerate(zip(captured.graphs, shapes))])

    @staticmethod
    def judge(spec: ShapeSpec, obs: ShapeObservation, expected: ShapeObservation | None,
              measured: Measured | None = None) -> Verdict:
        """An input shape counts as right only on what the measure stage computed from its graph on
        a fresh input; one without a usable graph counts as wrong, and a person is told what the
        run reported. A model the run says failed fails: nobody forges a failure. Without a
        measure stage (``measured`` None: the reference, ``--isolation none``) the run's report is
        judged as it is."""
        bindings = spec.bindings()
        if len(obs.forwards) != len(bindings):
            return Verdict.failed("the probe returned a different number of forward passes than asked for")
        rows: list[dict[str, Any]] = []
        doubts, unmeasured = [], []
        runs = _measured_forwards(measured, len(bindings))
        for i, (fwd, binding, m) in enumerate(zip(obs.forwards, bindings, runs)):
            if expected is not None:
                want = expected.forwards[i].output_shape or []
            else:
                want = concrete(spec.output, binding)  # type: ignore[arg-type]
            got, ok = _outcome(fwd.output_type, fwd.output_shape, want)
            shown = format_shape(concrete(spec.input, binding))  # the host's, not the record's
            if measured is not None and ok:
                if m is not None and not m.problem:
                    got, ok = _outcome(m.output_type, m.output_shape, want)
                    if not ok:
                        doubts.append(f"input {shown} gave {format_shape(want)} where the student's process ran the "
                                      f"model, but {got} measured on a fresh input: the model computes outside "
                                      "torch's operators, which the grader cannot measure")
                else:
                    why = (m.problem if m is not None else measured.problem or _why_not(obs, i)) \
                        or "no graph was captured"
                    got, ok = f"not measured: {why}; the run reported {got}", False
                    unmeasured.append(f"{shown} ({why})")
            rows.append({"input": shown, "expected": format_shape(want), "got": got, "ok": ok})
        if unmeasured:
            doubts.append(f"{len(unmeasured)} input shape(s) the run reported as matching could not be measured, so "
                          f"earned nothing; a person may award them: {'; '.join(unmeasured[:3])}"
                          + (f" and {len(unmeasured) - 3} more" if len(unmeasured) > 3 else ""))
        return _verdict(spec, rows, "; ".join(doubts) or None)


def _outcome(output_type: str, output_shape: list[int] | None, want: list[int]) -> tuple[str, bool]:
    """What a forward gave, for the table, and whether it is what was wanted."""
    ok = output_type == "torch.Tensor" and output_shape == want
    return (format_shape(output_shape) if output_shape is not None else output_type), ok


def _verdict(spec: ShapeSpec, rows: list[dict[str, Any]], review: str | None) -> Verdict:
    wrong = sum(not r["ok"] for r in rows)
    if wrong == 0:
        if spec.output == "reference":
            verdict = Verdict.passed(f"output shape as the reference's ({rows[0]['got']} for {rows[0]['input']}) "
                                     f"for input {format_shape(spec.input)}", rows)
        else:
            verdict = Verdict.passed(f"output shape {format_shape(spec.output)} for input {format_shape(spec.input)}",
                                     rows)
    else:
        first = next(r for r in rows if not r["ok"])
        if first["got"].startswith("not measured"):
            message = f"input {first['input']}: {first['got']} ({wrong} of {len(rows)} inputs not earned)"
        elif not first["got"].startswith("["):
            message = f"the model returned a {first['got']}, expected a torch.Tensor"
        else:
            message = (f"input {first['input']} gave output {first['got']}, expected {first['expected']} "
                       f"({wrong} of {len(rows)} inputs wrong)")
        verdict = Verdict.failed(message, rows)
    verdict.review = review
    return verdict


def _why_not(obs: ShapeObservation, index: int) -> str:
    return obs.captured.why_not(index) if obs.captured is not None else "the run shipped no capture of the model"


def _measure_forward(captured: CapturedModel, index: int, shape: list[int], seed: int, weights: list[Any]
                     ) -> MeasuredForward:
    try:
        out = model_capture.run_forward(captured, index, shape, seed, weights)
    except (model_capture.Refused, artifacts.ArtifactError) as exc:
        return MeasuredForward(problem=f"the captured graph was refused: {exc}"
                               if isinstance(exc, model_capture.Refused) else str(exc))
    if not is_plain_tensor(out):
        return MeasuredForward(output_type=type_name(out))
    return MeasuredForward(output_type="torch.Tensor", output_shape=tensor_shape(out))


def _measured_forwards(measured: Measured | None, count: int) -> list[MeasuredForward | None]:
    data = measured.data if measured is not None else None
    if not isinstance(data, ShapeMeasurement) or len(data.forwards) != count:
        return [None] * count
    return list(data.forwards)
