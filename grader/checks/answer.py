"""``answer``: a numeric, textual or array answer the student stores in a named variable."""

from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
from pydantic import Field

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, Observation, ProbeContext, Verdict
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.checks.toolkit.common import is_plain_tensor, type_name
from grader.observations import Array

Value = bool | int | float | str | list[Any]


class AnswerSpec(CheckSpec):
    kind: Literal["answer"]
    target: str = Field(description="the variable holding the answer (a `value` target)")
    expected: Value | Literal["reference"] = Field(description="the right answer, or the reference's variable",
                                                   json_schema_extra=JUDGE_ONLY)
    abs_tol: float = Field(0.0, ge=0, description="numbers: accepted absolute difference", json_schema_extra=JUDGE_ONLY)
    rel_tol: float = Field(0.0, ge=0, description="numbers: accepted relative difference", json_schema_extra=JUDGE_ONLY)
    match: Literal["exact", "case-insensitive", "contains", "regex"] = Field(
        "case-insensitive", description="text answers: how the student's text is compared",
        json_schema_extra=JUDGE_ONLY)


class AnswerObservation(Observation):
    type: str
    number: float | None = None
    text: str | None = None
    array: Array | None = None


def observe_value(value: Any) -> AnswerObservation:
    """Reduce a student value to plain data; tensors and lists become numpy arrays."""
    name = type_name(value)
    if type(value) is bool:
        return AnswerObservation(type=name, number=float(value))
    if type(value) in (int, float) or isinstance(value, np.number):
        return AnswerObservation(type=name, number=float(value))
    if type(value) is str:
        return AnswerObservation(type=name, text=value[:10_000])
    if is_plain_tensor(value):
        import torch

        arr = torch.Tensor.numpy(torch.Tensor.cpu(torch.Tensor.detach(value)))
        return _array_or_number(name, np.array(arr, copy=True))
    if type(value) in (list, tuple, np.ndarray):
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return AnswerObservation(type=name)
        return _array_or_number(name, arr)
    return AnswerObservation(type=name)


def _array_or_number(name: str, arr: np.ndarray) -> AnswerObservation:
    if arr.dtype.kind not in "biuf":
        return AnswerObservation(type=name)
    if arr.ndim == 0:
        return AnswerObservation(type=name, number=float(arr))
    return AnswerObservation(type=name, array=arr.astype(np.float64))


@register("answer")
class Answer(CheckKind):
    Spec = AnswerSpec
    Observation = AnswerObservation

    @staticmethod
    def needs_reference(spec: AnswerSpec) -> bool:
        return spec.expected == "reference"

    @staticmethod
    def probe(spec: AnswerSpec, ctx: ProbeContext) -> AnswerObservation:
        return observe_value(ctx.resolve(spec.target))

    @staticmethod
    def judge(spec: AnswerSpec, obs: AnswerObservation, expected: AnswerObservation | None) -> Verdict:
        want = expected if expected is not None else observe_value(spec.expected)
        if want.text is not None:
            return _judge_text(spec, obs, want.text)
        if want.array is not None:
            return _judge_array(spec, obs, want.array)
        if want.number is not None:
            return _judge_number(spec, obs, want.number)
        return Verdict.failed("the expected answer has no comparable value (rubric error)")


def _judge_number(spec: AnswerSpec, obs: AnswerObservation, want: float) -> Verdict:
    if obs.number is None:
        return Verdict.failed(f"the answer is a {obs.type}, expected a number ({want:g})")
    diff = abs(obs.number - want)
    # Relative to the expected value (as for arrays), not to the larger of the two.
    if diff <= max(spec.abs_tol, spec.rel_tol * abs(want)):
        return Verdict.passed(f"{obs.number:g} is right")
    return Verdict.failed(f"{obs.number:g}, expected {want:g} (off by {diff:g})")


def _judge_array(spec: AnswerSpec, obs: AnswerObservation, want: np.ndarray) -> Verdict:
    if obs.array is None:
        return Verdict.failed(f"the answer is a {obs.type}, expected an array of shape {list(want.shape)}")
    if obs.array.shape != want.shape:
        return Verdict.failed(f"the answer has shape {list(obs.array.shape)}, expected {list(want.shape)}")
    close = np.abs(obs.array - want) <= np.maximum(spec.abs_tol, spec.rel_tol * np.abs(want))
    if close.all():
        return Verdict.passed(f"all {want.size} values are right")
    bad = np.argwhere(~close)
    index = tuple(int(i) for i in bad[0])
    return Verdict.failed(f"{len(bad)} of {want.size} values differ; first at {list(index)}: "
                          f"{obs.array[index]:g}, expected {want[index]:g}")


def _judge_text(spec: AnswerSpec, obs: AnswerObservation, want: str) -> Verdict:
    if obs.text is None:
        return Verdict.failed(f"the answer is a {obs.type}, expected text")
    got = obs.text.strip()
    if spec.match == "exact":
        ok = got == want
    elif spec.match == "case-insensitive":
        ok = got.casefold() == want.strip().casefold()
    elif spec.match == "contains":
        ok = want.casefold() in got.casefold()
    else:
        ok = re.search(want, got, flags=re.IGNORECASE) is not None
    shown = got if len(got) <= 80 else got[:77] + "..."
    return Verdict.passed(f"{shown!r} is right") if ok else Verdict.failed(f"{shown!r} does not match the expected answer")
