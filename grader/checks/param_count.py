"""``param_count``: the learnable parameters of a built model equal a number or the reference's."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, Observation, ProbeContext, Verdict
from grader.checks.capture import JUDGE_ONLY
from grader.checks.common import Args, call_target, type_name


class ParamCountSpec(CheckSpec):
    kind: Literal["param_count"]
    target: str = Field(description="a class or factory function that builds an nn.Module")
    args: Args = Field(default_factory=list, description="constructor arguments: a list (positional) or a mapping")
    expected: int | Literal["reference"] = Field("reference", description="a number, or the reference's count",
                                                 json_schema_extra=JUDGE_ONLY)
    trainable_only: bool = Field(True, description="count only parameters with requires_grad",
                                 json_schema_extra=JUDGE_ONLY)


class ParamCountObservation(Observation):
    module_type: str
    total: int
    trainable: int


def own_parameters(model: object) -> list:
    """Every distinct parameter, read from the modules' own storage (``_parameters`` and
    ``_modules``), so overriding ``parameters()`` or ``named_parameters()`` changes nothing."""
    seen: dict[int, object] = {}
    stack, visited = [model], set()
    while stack:
        module = stack.pop()
        if id(module) in visited:
            continue
        visited.add(id(module))
        for p in object.__getattribute__(module, "_parameters").values():
            if p is not None:
                seen.setdefault(id(p), p)
        stack.extend(m for m in object.__getattribute__(module, "_modules").values() if m is not None)
    return list(seen.values())


@register("param_count")
class ParamCount(CheckKind):
    Spec = ParamCountSpec
    Observation = ParamCountObservation

    @staticmethod
    def needs_reference(spec: ParamCountSpec) -> bool:
        return spec.expected == "reference"

    @staticmethod
    def probe(spec: ParamCountSpec, ctx: ProbeContext) -> ParamCountObservation:
        import torch

        model = call_target(ctx, spec.target, spec.args)
        if not isinstance(model, torch.nn.Module):
            return ParamCountObservation(module_type=type_name(model), total=-1, trainable=-1)
        params = own_parameters(model)
        total = sum(int(torch.Tensor.numel(p)) for p in params)
        trainable = sum(int(torch.Tensor.numel(p)) for p in params if p.requires_grad)
        return ParamCountObservation(module_type=type_name(model), total=total, trainable=trainable)

    @staticmethod
    def judge(spec: ParamCountSpec, obs: ParamCountObservation,
              expected: ParamCountObservation | None) -> Verdict:
        if obs.total < 0:
            return Verdict.failed(f"the target built a {obs.module_type}, not a torch.nn.Module")
        field = "trainable" if spec.trainable_only else "total"
        got = getattr(obs, field)
        want = getattr(expected, field) if expected is not None else spec.expected
        if got == want:
            return Verdict.passed(f"{got:,} learnable parameters")
        diff = got - want  # type: ignore[operator]
        return Verdict.failed(f"{got:,} learnable parameters, expected {want:,} "
                              f"({abs(diff):,} {'more' if diff > 0 else 'fewer'})")
