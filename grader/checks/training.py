"""``training``: the contract of a student's training function, on a tiny budget.

The probe builds a small network itself (so a broken student model does not fail this check
too), calls the function with the rubric's arguments and records what comes back: the return
structure, the per-epoch values and whether the weights changed at all.

With ``data``, the harness also makes the data (``contracts_training_data``): a few dozen samples
passed as ``$train_data`` / ``$validation_data`` or put in place of the student's globals of the
names the rubric lists, while the function runs. A forward hook on the network then sees every
training step and validation pass, which makes the loop's behaviour checkable in seconds:

* ``best-model`` in ``returns``: the returned model, state dict or parameter list holds the
  parameters of the epoch with the lowest validation loss. The data makes the validation loss
  rise in the last epochs, so a live ``state_dict()`` reference (which ends up holding the final
  weights) fails.
* ``train_eval_modes``: training steps run in train mode, validation in eval mode.
* ``validation_without_grad``: validation runs with gradients off (``torch.no_grad()``).
* ``validation_loss_matches``: the returned validation losses are the cross-entropy the harness
  recomputes on the validation data for the parameters each pass evaluated, in one of the
  ``validation_loss_readings``. mlp-checkpoint's handout asks for the "loss averaged/accumulated
  over all minibatches", so by default four readings pass and the message names the one found:
  the mean per sample, the mean of the batch losses, and the two sums ("accumulated": of the
  batch losses, or of every sample's loss when the criterion sums). A rubric can list fewer. The
  readings are different numbers when the validation data ends in a smaller batch
  (``data.validation_samples`` not a multiple of ``data.batch_size``, as by default).
  ``validation_loss_is_sample_mean: true``, the older spelling, means ``validation_loss_matches``
  with the one reading ``sample-mean``.

The rubric maps the call with ``args`` / ``kwargs`` and says what each returned value means.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, Observation, ProbeContext, Verdict
from grader.checks.common import is_plain_tensor, type_name
from grader.checks.contracts_training_loop import (LOSS_READINGS, PLACEHOLDERS, LoopRecord, LossReading, call_session,
                                                   loop_requirements)

Role = Literal["per-epoch", "training-losses", "validation-losses", "best-model", "model", "any"]
PER_EPOCH = ("per-epoch", "training-losses", "validation-losses")


class NetworkFixture(BaseModel):
    """A network the harness builds for the call: ``linear-classifier`` is Flatten → Linear."""

    model_config = ConfigDict(extra="forbid")
    fixture: Literal["linear-classifier"] = "linear-classifier"
    input: list[int] = Field(description="shape of one input sample, e.g. [1, 28, 28]")
    classes: int


class HarnessData(BaseModel):
    """Tiny data the harness makes for the call instead of the student's own."""

    model_config = ConfigDict(extra="forbid")
    labels: Literal["index", "one-hot"] = Field("index", description="how targets are written")
    batch_size: int = Field(8, ge=1)
    train_samples: int = Field(64, ge=2)
    validation_samples: int = Field(20, ge=2, description="best not a multiple of batch_size: a smaller last "
                                                          "batch shows a loss averaged per batch")
    train_globals: list[str] = Field([], description="the student's globals (loaders, data sets) the training "
                                                     "data replaces while the function runs")
    validation_globals: list[str] = Field([], description="the globals the validation data replaces")


class TrainingSpec(CheckSpec):
    kind: Literal["training"]
    target: str
    network: NetworkFixture
    epochs: int = Field(1, ge=1, le=50, description="the tiny budget; `$epochs` in args stands for it")
    args: list[Any] = Field(description="positional arguments; `$network`, `$epochs`, `$train_data`, "
                                        "`$validation_data`, `$optimizer`, `$loss`, `$device` are replaced")
    kwargs: dict[str, Any] = Field({}, description="keyword arguments, with the same placeholders")
    returns: list[Role] = Field(
        description="the returned tuple, element by element: per-epoch numbers (training-losses and "
                    "validation-losses are per-epoch too), the best model, a model, anything")
    data: HarnessData | None = Field(None, description="harness-made tiny data instead of the student's")
    lr: float = Field(0.05, gt=0, description="learning rate of the `$optimizer` the harness passes (SGD)")
    train_eval_modes: bool = Field(False, description="training steps in train mode, validation in eval mode")
    validation_without_grad: bool = Field(False, description="validation forwards run with gradients off")
    validation_loss_matches: bool = Field(
        False, description="returned validation losses are the harness's recomputed validation loss, in one of "
                           "validation_loss_readings")
    validation_loss_readings: list[LossReading] = Field(
        default_factory=lambda: list(LOSS_READINGS), min_length=1,
        description="accepted readings of the validation loss: the mean per sample (sample-mean), the mean of the "
                    "batch losses (batch-mean), the sum of the batch losses (batch-sum), the sum over the samples "
                    "(sample-sum)")

    @model_validator(mode="before")
    @classmethod
    def _older_spelling(cls, entry: Any) -> Any:
        """``validation_loss_is_sample_mean: true`` (rubrics written before the readings) keeps its
        meaning: the losses must be the mean per sample."""
        if not isinstance(entry, dict) or "validation_loss_is_sample_mean" not in entry:
            return entry
        entry = dict(entry)
        if {"validation_loss_matches", "validation_loss_readings"} & entry.keys():
            raise ValueError("validation_loss_is_sample_mean is the older spelling of validation_loss_matches with "
                             "validation_loss_readings: [sample-mean]; give one or the other")
        if entry.pop("validation_loss_is_sample_mean"):
            entry |= {"validation_loss_matches": True, "validation_loss_readings": ["sample-mean"]}
        return entry

    @model_validator(mode="after")
    def _contracts_need_harness_data(self) -> "TrainingSpec":
        unknown = sorted({a for a in [*self.args, *self.kwargs.values()]
                          if isinstance(a, str) and a.startswith("$")} - PLACEHOLDERS)
        if unknown:
            raise ValueError(f"unknown placeholder {', '.join(unknown)}; known: {', '.join(sorted(PLACEHOLDERS))}")
        wants_loop = ("best-model" in self.returns or self.train_eval_modes or self.validation_without_grad
                      or self.validation_loss_matches or self.uses("$train_data", "$validation_data"))
        if wants_loop and self.data is None:
            raise ValueError("best-model, the mode and gradient contracts and $train_data / $validation_data "
                             "need `data` (the harness must recognise the validation pass)")
        if self.data is not None:
            for split in ("train", "validation"):
                if not self.uses(f"${split}_data") and not getattr(self.data, f"{split}_globals"):
                    raise ValueError(f"`data` needs a way in for the {split} data: ${split}_data in args or "
                                     f"kwargs, or data.{split}_globals")
        if "best-model" in self.returns and self.epochs < 2:
            raise ValueError("best-model needs at least 2 epochs (the best must differ from the last)")
        if self.validation_loss_matches and "validation-losses" not in self.returns:
            raise ValueError("validation_loss_matches needs a `validation-losses` element in `returns`")
        # compared with the default, not with the fields set: the plan sends the spec to the sandbox
        # dumped whole, default readings included
        default = type(self).model_fields["validation_loss_readings"].get_default(call_default_factory=True)
        if self.validation_loss_readings != default and not self.validation_loss_matches:
            raise ValueError("validation_loss_readings has no effect without validation_loss_matches: true")
        return self

    def uses(self, *placeholders: str) -> bool:
        """Whether ``args`` or ``kwargs`` pass any of these placeholders."""
        return any(a in placeholders for a in [*self.args, *self.kwargs.values()] if isinstance(a, str))


class Element(BaseModel):
    """One returned value. ``values``: its first 50 numbers (all of a per-epoch list)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: str
    length: int | None
    numeric: bool
    finite: bool
    values: list[float]
    is_module: bool = False


class TrainingObservation(Observation):
    return_type: str
    elements: list[Element]
    weights_changed: bool
    seconds: float
    loop: LoopRecord | None = None


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
        values = [n for n in numbers[:50] if n is not None] if numeric else []
        return Element(type=type_name(value), length=len(value), numeric=numeric, finite=finite, values=values)
    import torch

    return Element(type=type_name(value), length=None, numeric=False, finite=False, values=[],
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
        name = ctx.found[spec.target].found_as
        start = time.monotonic()
        with call_session(spec, fn, network, build_fixture(spec.network), ctx.seed) as session:
            args = [session.argument(a) for a in spec.args]
            kwargs = {key: session.argument(value) for key, value in spec.kwargs.items()}
            with ctx.student_code(f"calling {name} with a small network for {spec.epochs} epoch(s)"):
                result = fn(*args, **kwargs)
        seconds = time.monotonic() - start
        changed = any(not torch.equal(b, p.detach().cpu()) for b, p in zip(before, network.parameters()))
        parts = _split(result, len(spec.returns))
        best = next((p for role, p in zip(spec.returns, parts) if role == "best-model"), None)
        return TrainingObservation(return_type=type_name(result), elements=[_describe(p) for p in parts],
                                   weights_changed=changed, seconds=round(seconds, 3),
                                   loop=session.record(best) if spec.data is not None else None)

    @staticmethod
    def judge(spec: TrainingSpec, obs: TrainingObservation, expected: None) -> Verdict:
        rows = [{"requirement": f"returns {len(spec.returns)} value(s)", "got": f"{len(obs.elements)} ({obs.return_type})",
                 "ok": len(obs.elements) == len(spec.returns)}]
        for n, (role, got) in enumerate(zip(spec.returns, obs.elements), start=1):
            if role in PER_EPOCH:
                rows.append(_per_epoch_row(n, role, got, spec.epochs))
            elif role == "model":
                rows.append({"requirement": f"value {n}: a model (torch.nn.Module)", "got": got.type, "ok": got.is_module})
            elif role == "best-model":
                problem = obs.loop.returned_parameters_problem if obs.loop else ""
                rows.append({"requirement": f"value {n}: the best model (a model, a state dict or a parameter list)",
                             "got": problem or got.type, "ok": obs.loop is not None and not problem})
        rows.append({"requirement": "updates the network's weights",
                     "got": "weights changed" if obs.weights_changed else "weights unchanged",
                     "ok": obs.weights_changed})
        if spec.data is not None:
            rows += loop_requirements(spec, obs.elements, obs.loop)
        if all(role == "per-epoch" for role in spec.returns):
            returned = f"{len(spec.returns)} per-epoch value lists"
        else:
            returned = ", ".join(spec.returns)
        passed = f"returns {returned} and trains ({obs.seconds:.1f}s for {spec.epochs} epoch(s))"
        if spec.validation_loss_matches:  # the last row: which reading of the validation loss was found
            passed += f"; its validation losses are {rows[-1]['got']}"
        return Verdict.from_requirements(rows, passed=passed)


def _per_epoch_row(n: int, role: str, got: Element, epochs: int) -> dict[str, Any]:
    detail = f"{got.type} of {got.length}" if got.length is not None else got.type
    if got.length is not None and not got.numeric:
        detail += ", not all numbers"
    elif got.length is not None and not got.finite:
        detail += ", contains nan/inf"
    named = "" if role == "per-epoch" else f" ({role.replace('-', ' ')})"
    return {"requirement": f"value {n}{named}: one number per epoch ({epochs})", "got": detail,
            "ok": got.length == epochs and got.numeric and got.finite}
