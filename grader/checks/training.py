"""``training``: the contract of a student's training function, on a tiny budget.

The probe builds a small network itself (so a broken student model does not fail this check
too), calls the function with the rubric's arguments and records what comes back: the return
structure, the per-epoch values and whether the weights changed at all.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, Observation, ProbeContext, Verdict
from grader.checks.common import is_plain_tensor, type_name


class NetworkFixture(BaseModel):
    """A network the harness builds for the call: ``linear-classifier`` is Flatten → Linear."""

    model_config = ConfigDict(extra="forbid")
    fixture: Literal["linear-classifier"] = "linear-classifier"
    input: list[int] = Field(description="shape of one input sample, e.g. [1, 28, 28]")
    classes: int


class TrainingSpec(CheckSpec):
    kind: Literal["training"]
    target: str
    network: NetworkFixture
    epochs: int = Field(1, ge=1, le=50, description="the tiny budget; `$epochs` in args stands for it")
    args: list[Any] = Field(description="positional arguments; `$network` and `$epochs` are replaced")
    returns: list[Literal["per-epoch", "model", "any"]] = Field(
        description="the returned tuple, element by element: a list with one number per epoch, a model, anything")


class Element(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: str
    length: int | None
    numeric: bool
    finite: bool
    head: list[float]
    is_module: bool = False


class TrainingObservation(Observation):
    return_type: str
    elements: list[Element]
    weights_changed: bool
    seconds: float


def build_fixture(spec: NetworkFixture) -> Any:
    import torch

    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(math.prod(spec.input), spec.classes))


def _as_number(value: Any) -> float | None:
    if type(value) in (int, float):
        return float(value)
    if is_plain_tensor(value) and value.numel() == 1:
        return float(value.detach().reshape(()))
    try:
        import numpy as np

        if isinstance(value, np.number):
            return float(value)
    except ImportError:  # pragma: no cover
        pass
    return None


def _describe(value: Any) -> Element:
    if type(value) in (list, tuple):
        numbers = [_as_number(v) for v in value]
        numeric = all(n is not None for n in numbers)
        finite = numeric and all(math.isfinite(n) for n in numbers)  # type: ignore[arg-type]
        head = [n for n in numbers[:20] if n is not None] if numeric else []
        return Element(type=type_name(value), length=len(value), numeric=numeric, finite=finite, head=head)
    import torch

    return Element(type=type_name(value), length=None, numeric=False, finite=False, head=[],
                   is_module=isinstance(value, torch.nn.Module))


def _split(result: Any, expected_parts: int) -> list[Any]:
    """The returned values: ``return a, b`` gives a tuple; a list of lists counts too, but a single
    list of numbers is one value even when its length happens to equal ``expected_parts``."""
    if expected_parts == 1:
        return [result]
    if type(result) is tuple:
        return list(result)
    if type(result) is list and not all(_as_number(v) is not None for v in result):
        return list(result)
    return [result]


@register("training")
class Training(CheckKind):
    Spec = TrainingSpec
    Observation = TrainingObservation

    @staticmethod
    def probe(spec: TrainingSpec, ctx: ProbeContext) -> TrainingObservation:
        import torch

        fn = ctx.resolve(spec.target)
        network = build_fixture(spec.network)
        before = [p.detach().clone() for p in network.parameters()]
        args = [network if a == "$network" else spec.epochs if a == "$epochs" else a for a in spec.args]
        name = ctx.found[spec.target].found_as
        start = time.monotonic()
        with ctx.student_code(f"calling {name} with a small network for {spec.epochs} epoch(s)"):
            result = fn(*args)
        seconds = time.monotonic() - start
        changed = any(not torch.equal(b, p.detach()) for b, p in zip(before, network.parameters()))
        parts = _split(result, len(spec.returns))
        return TrainingObservation(return_type=type_name(result), elements=[_describe(p) for p in parts],
                                   weights_changed=changed, seconds=round(seconds, 3))

    @staticmethod
    def judge(spec: TrainingSpec, obs: TrainingObservation, expected: None) -> Verdict:
        rows = [{"requirement": f"returns {len(spec.returns)} value(s)", "got": f"{len(obs.elements)} ({obs.return_type})",
                 "ok": len(obs.elements) == len(spec.returns)}]
        for n, (want, got) in enumerate(zip(spec.returns, obs.elements), start=1):
            if want == "per-epoch":
                ok = got.length == spec.epochs and got.numeric and got.finite
                detail = (f"{got.type} of {got.length}" if got.length is not None else got.type)
                if got.length is not None and not got.numeric:
                    detail += ", not all numbers"
                elif got.length is not None and not got.finite:
                    detail += ", contains nan/inf"
                rows.append({"requirement": f"value {n}: one number per epoch ({spec.epochs})", "got": detail, "ok": ok})
            elif want == "model":
                rows.append({"requirement": f"value {n}: a model (torch.nn.Module)", "got": got.type, "ok": got.is_module})
        rows.append({"requirement": "updates the network's weights",
                     "got": "weights changed" if obs.weights_changed else "weights unchanged",
                     "ok": obs.weights_changed})
        return Verdict.from_requirements(rows, passed=f"returns {len(spec.returns)} per-epoch value lists and "
                                                      f"trains ({obs.seconds:.1f}s for {spec.epochs} epoch(s))")
