"""``param_count``: the learnable parameters of a built model equal a number or the reference's.

A measured kind: the probe captures the model's forward on one input (the check's ``input``, else
the target's contract input) as a graph taking the input and every weight, and ships the weights
(``model_capture``). The measure stage counts the parameters among the weights shipped, but only
those of a graph that takes exactly them and turns a fresh input into an output; that count is
what earns points. A parameter the output never depends on is counted, as torch counts it, and
named for a person: a weights list padded to reach a number looks like that.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from grader import artifacts
from grader.checks import register
from grader.checks.toolkit import model_capture
from grader.checks.base import CheckKind, CheckSpec, Measured, Observation, ProbeContext, Verdict
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.checks.toolkit.common import Args, call_target, describe_call, input_dtype, is_plain_tensor, type_name
from grader.checks.toolkit.model_capture import CapturedModel

Dim = int | str
SYMBOL_SIZE = 2  # the batch size a symbol (B) of the input stands for


class ParamCountSpec(CheckSpec):
    kind: Literal["param_count"]
    target: str = Field(description="a class or factory function that builds an nn.Module")
    args: Args = Field(default_factory=list, description="constructor arguments: a list (positional) or a mapping")
    expected: int | Literal["reference"] = Field("reference", description="a number, or the reference's count",
                                                 json_schema_extra=JUDGE_ONLY)
    trainable_only: bool = Field(True, description="count only parameters with requires_grad",
                                 json_schema_extra=JUDGE_ONLY)
    input: list[Dim] | None = Field(None, description="an input shape the built model takes (symbols such as B "
                                                      "stand for 2), to capture its forward; default: the "
                                                      "target's contract input")


class ParamCountObservation(Observation):
    module_type: str
    total: int
    trainable: int
    captured: CapturedModel | None = None  # the forward on one input, as a graph, and the weights


class ParamCountMeasurement(Observation):
    """The parameters among the weights shipped with a graph that computes the model's output."""

    total: int = -1  # -1: not measured (``problem`` says why)
    trainable: int = -1
    unused: list[str] = []  # parameters the graph's output does not depend on
    problem: str = ""


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


def input_shape(spec: ParamCountSpec, ctx: ProbeContext) -> list[int] | None:
    """The shape the model's forward is captured on: the check's ``input``, else the target's contract's."""
    dims = spec.input
    if dims is None:
        contract = ctx.targets[spec.target].contract
        dims = contract.input if contract is not None else None
    return None if dims is None else [SYMBOL_SIZE if isinstance(d, str) else d for d in dims]


@register("param_count")
class ParamCount(CheckKind):
    Spec = ParamCountSpec
    Observation = ParamCountObservation
    Measurement = ParamCountMeasurement

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
        shape = input_shape(spec, ctx)
        if shape is None:
            captured = CapturedModel(problem="the rubric gives no input shape for it (the check's `input`, or the "
                                             "target's contract input)")
        else:
            call = describe_call(ctx.found_name(spec.target), spec.args)
            captured = model_capture.capture(model, [shape], input_dtype(model, torch.float32), ctx, call)
        return ParamCountObservation(module_type=type_name(model), total=total, trainable=trainable,
                                     captured=captured)

    @staticmethod
    def measure(spec: ParamCountSpec, obs: ParamCountObservation, seed: int, given: Any = None) -> ParamCountMeasurement:
        captured = obs.captured
        if captured is None or captured.problem or len(captured.graphs) != 1 or captured.graphs[0] is None \
                or len(captured.input_shapes) != 1:
            return ParamCountMeasurement(problem=_why_not(obs))
        graph = captured.graphs[0]
        try:
            weights = model_capture.weight_tensors(captured, seed)
            out = model_capture.run_forward(captured, 0, captured.input_shapes[0], seed, weights)
        except model_capture.Refused as exc:
            return ParamCountMeasurement(problem=f"the captured graph was refused: {exc}")
        except artifacts.ArtifactError as exc:
            return ParamCountMeasurement(problem=str(exc))
        if not is_plain_tensor(out):
            return ParamCountMeasurement(problem=f"the captured graph returns a {type_name(out)}, not a tensor")
        parameters = [w for w in captured.weights if w.parameter]
        reaching = model_capture.inputs_reaching_outputs(graph)
        return ParamCountMeasurement(total=sum(math.prod(w.shape) for w in parameters),
                                     trainable=sum(math.prod(w.shape) for w in parameters if w.requires_grad),
                                     unused=[w.name for w in parameters if w.name not in reaching])

    @staticmethod
    def judge(spec: ParamCountSpec, obs: ParamCountObservation, expected: ParamCountObservation | None,
              measured: Measured | None = None) -> Verdict:
        """The count measured from the shipped weights earns the points; a count the run reports
        without a usable graph earns nothing, and a person is told what it reported. A target that
        built no module fails, measured or not. Without a measure stage (``measured`` None: the
        reference, ``--isolation none``) the run's count is judged as it is."""
        if obs.total < 0:
            return Verdict.failed(f"the target built a {obs.module_type}, not a torch.nn.Module")
        field = "trainable" if spec.trainable_only else "total"
        want = getattr(expected, field) if expected is not None else spec.expected
        reported = getattr(obs, field)
        if measured is None:
            return _compared(reported, want)  # type: ignore[arg-type]
        m = measured.data if isinstance(measured.data, ParamCountMeasurement) else None
        if m is None or m.problem:
            why = (m.problem if m is not None else measured.problem or _why_not(obs)) or "no graph was captured"
            verdict = Verdict.failed(f"not measured: {why}; the run reported {reported:,} learnable parameters, "
                                     f"expected {want:,}")
            if reported == want:
                verdict.review = (f"the count the run reported as matching could not be measured, so earned "
                                  f"nothing; a person may award it: {why}")
            return verdict
        got = getattr(m, field)
        verdict = _compared(got, want)  # type: ignore[arg-type]
        doubts = []
        if got != reported:
            doubts.append(f"the run reported {reported:,} learnable parameters, but the weights shipped with its "
                          f"graph hold {got:,}")
        if m.unused:
            shown = ", ".join(m.unused[:5]) + (f" and {len(m.unused) - 5} more" if len(m.unused) > 5 else "")
            doubts.append(f"{len(m.unused)} parameter(s) never reach the model's output ({shown}): counted, as torch "
                          "counts them, but a weights list padded to reach a number looks like this")
        verdict.review = "; ".join(doubts) or None
        return verdict


def _compared(got: int, want: int) -> Verdict:
    if got == want:
        return Verdict.passed(f"{got:,} learnable parameters")
    diff = got - want
    return Verdict.failed(f"{got:,} learnable parameters, expected {want:,} "
                          f"({abs(diff):,} {'more' if diff > 0 else 'fewer'})")


def _why_not(obs: ParamCountObservation) -> str:
    return obs.captured.why_not(0) if obs.captured is not None else "the run shipped no capture of the model"

