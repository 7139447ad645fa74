"""``shape``: build a target with arguments, feed inputs of a shape, expect an output shape.

Dimensions may be symbols (``B``): the probe tries each batch size in ``batch_sizes`` and the
judge substitutes it, so ``[B, 1, 28, 28] -> [B, 10]`` also catches a model that hard-codes 64.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, Observation, ProbeContext, Verdict
from grader.checks.capture import JUDGE_ONLY
from grader.checks.common import (Args, call_target, format_shape, input_dtype, is_plain_tensor, tensor_shape,
                                  type_name)

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


def concrete(dims: list[Dim], binding: dict[str, int]) -> list[int]:
    return [binding.get(d, -1) if isinstance(d, str) else d for d in dims]


@register("shape")
class Shape(CheckKind):
    Spec = ShapeSpec
    Observation = ShapeObservation

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
        forwards = []
        for binding in spec.bindings():
            shape = concrete(spec.input, binding)
            x = torch.randn(*shape, dtype=input_dtype(model, getattr(torch, spec.dtype)))
            with ctx.student_code(f"running the model on an input of shape {format_shape(shape)}"), torch.no_grad():
                out = model(x)
            plain = is_plain_tensor(out)
            forwards.append(Forward(input_shape=shape, output_type=type_name(out),
                                    output_shape=tensor_shape(out) if plain else None))
        return ShapeObservation(forwards=forwards)

    @staticmethod
    def judge(spec: ShapeSpec, obs: ShapeObservation, expected: ShapeObservation | None) -> Verdict:
        rows: list[dict[str, Any]] = []
        wrong = 0
        for i, (fwd, binding) in enumerate(zip(obs.forwards, spec.bindings())):
            if expected is not None:
                want = expected.forwards[i].output_shape or []
            else:
                want = concrete(spec.output, binding)  # type: ignore[arg-type]
            ok = fwd.output_type == "torch.Tensor" and fwd.output_shape == want
            wrong += not ok
            got = format_shape(fwd.output_shape) if fwd.output_shape is not None else fwd.output_type
            rows.append({"input": format_shape(fwd.input_shape), "expected": format_shape(want),
                         "got": got, "ok": ok})
        if len(obs.forwards) != len(spec.bindings()):
            return Verdict.failed("the probe returned a different number of forward passes than asked for")
        if wrong == 0:
            if spec.output == "reference":
                return Verdict.passed(f"output shape as the reference's ({rows[0]['got']} for {rows[0]['input']}) "
                                      f"for input {format_shape(spec.input)}", rows)
            return Verdict.passed(f"output shape {format_shape(spec.output)} for input {format_shape(spec.input)}", rows)
        first = next(r for r in rows if not r["ok"])
        if not first["got"].startswith("["):
            return Verdict.failed(f"the model returned a {first['got']}, expected a torch.Tensor", rows)
        return Verdict.failed(f"input {first['input']} gave output {first['got']}, expected {first['expected']} "
                              f"({wrong} of {len(rows)} inputs wrong)", rows)
