"""``evaluation``: a function that scores a model over a data loader, against the host's own numbers.

The course's ``compute_loss_and_accuracy(dataloader, model, loss_criterion)`` must "compute the
average loss and the total accuracy" (cifar10-cnn handout, task 2a). The probe calls the
student's function on a small network and tiny data that ``build`` makes from the check's seed,
and reports only the two numbers it returned. The host builds the very same network and data
from the same seed and computes the truth itself (``truth``): nothing computed inside the sandbox
is taken as the answer.

Where the handout's sentence has two readings, both are accepted by default:

* *The average loss* is the mean over the samples (``sample-mean``) or the mean of the batch means
  (``batch-mean``, the course's own staff solution). ``loss_averages`` narrows the set.
* *The total accuracy* is correct / total. The handout does not fix the scale: its hint speaks of
  "68-72%" while the starter code plots fractions, so a percentage (the same count times 100) is
  accepted too (``accuracy_scales``). A mean of per-batch accuracies is not the total accuracy
  and fails.

The message names the reading that matched. The data is laid out so that every reading is a
different number: the last batch is short, and the network gets all of its samples wrong with a
large loss. A mean of batch means then weights those few samples like a full batch and differs
visibly from the mean per sample; so does an accuracy averaged per batch. The usual slips (a sum
never divided, a sum of batch means divided by the number of samples) are named when they fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, Observation, ProbeContext, Verdict
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.checks.toolkit.common import is_plain_tensor, type_name

LossAverage = Literal["sample-mean", "batch-mean"]
AccuracyScale = Literal["fraction", "percent"]
LOSS_AVERAGES: tuple[LossAverage, ...] = ("sample-mean", "batch-mean")
ACCURACY_SCALES: tuple[AccuracyScale, ...] = ("fraction", "percent")
SCALE_FACTOR: dict[str, int] = {"fraction": 1, "percent": 100}
ACCURACY_ATOL = 1e-6  # of a fraction; a count over at most a few hundred samples is exact far beyond this


class EvaluationSpec(CheckSpec):
    kind: Literal["evaluation"]
    target: str = Field(description="the function (dataloader, model, loss_criterion) -> (average_loss, accuracy)")
    input: list[int] = Field([3, 32, 32], min_length=1, description="the shape of one sample")
    classes: int = Field(10, ge=2, description="the network's outputs")
    samples: int = Field(50, ge=2, description="samples in the loader")
    batch_size: int = Field(16, ge=1, description="the loader's batch size; samples % batch_size is the short last batch")
    seed: int = Field(0, description="seeds the network and the data, on both sides")
    rel_tol: float = Field(1e-4, gt=0, description="accepted relative difference of the loss",
                           json_schema_extra=JUDGE_ONLY)
    loss_averages: list[LossAverage] = Field(
        default_factory=lambda: list(LOSS_AVERAGES), min_length=1,
        description="accepted readings of 'the average loss': the mean over the samples (sample-mean), the mean "
                    "of the batch means (batch-mean)", json_schema_extra=JUDGE_ONLY)
    accuracy_scales: list[AccuracyScale] = Field(
        default_factory=lambda: list(ACCURACY_SCALES), min_length=1,
        description="accepted scales of 'the total accuracy': correct / total (fraction), or times 100 (percent)",
        json_schema_extra=JUDGE_ONLY)

    @model_validator(mode="after")
    def _short_last_batch(self) -> "EvaluationSpec":
        # with equal batches the two readings of the average loss are one number, and the message
        # could not say which one the student took
        if self.samples <= self.batch_size or self.samples % self.batch_size == 0:
            raise ValueError(f"samples ({self.samples}) must leave a short last batch: more than one batch, "
                             f"and not a multiple of batch_size ({self.batch_size})")
        return self


class EvaluationObservation(Observation):
    returned: str = Field(description="what the function returned, e.g. tuple(float, float)")
    loss: float | None = None
    accuracy: float | None = None


def build(spec: EvaluationSpec) -> tuple[Any, Any, Any]:
    """The network (Flatten -> Linear), the images and the labels for ``spec``, the same on every
    machine: every number comes from one seeded generator, never from torch's global one.

    Labels: in the full batches about half are the network's own prediction (so accuracy is
    neither 0 nor 1); in the short last batch every label is the class the network finds least
    likely (wrong, with a large loss). The labels are chosen in float64 so that the host and the
    sandbox, whatever their thread counts, pick the same classes.
    """
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(spec.seed)
    features = 1
    for dim in spec.input:
        features *= dim
    model = nn.Sequential(nn.Flatten(), nn.Linear(features, spec.classes))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(spec.classes, features, generator=generator) / features ** 0.5)
        model[1].bias.copy_(torch.randn(spec.classes, generator=generator) * 0.1)
    images = torch.randn(spec.samples, *spec.input, generator=generator)
    logits = images.double().flatten(1) @ model[1].weight.double().T + model[1].bias.double()
    labels = torch.randint(0, spec.classes, (spec.samples,), generator=generator)
    own = torch.rand(spec.samples, generator=generator) < 0.5
    labels = torch.where(own, logits.argmax(dim=1), labels)
    last = spec.samples - spec.samples % spec.batch_size
    labels[last:] = logits[last:].argmin(dim=1)
    return model, images, labels


@dataclass(frozen=True)
class Truth:
    """The numbers the host computes for a check's data: every accepted reading, and the usual slips
    (named in messages when a student's number matches one, never accepted)."""

    loss: float  # the mean over the samples
    accuracy: float  # correct / total
    loss_of_batch_means: float
    accuracy_of_batch_means: float
    sum_of_batch_losses: float
    batches: int

    def loss_reading(self, reading: LossAverage) -> float:
        return self.loss if reading == "sample-mean" else self.loss_of_batch_means

    def accuracy_reading(self, scale: AccuracyScale) -> float:
        return SCALE_FACTOR[scale] * self.accuracy


def truth(spec: EvaluationSpec) -> Truth:
    """The right answers, computed on the host in float64, and the usual wrong ones."""
    import torch
    from torch.nn import functional as F

    model, images, labels = build(spec)
    with torch.no_grad():
        logits = model.double()(images.double())
    losses = F.cross_entropy(logits, labels, reduction="none")
    correct = (logits.argmax(dim=1) == labels).double()
    batches = [slice(i, i + spec.batch_size) for i in range(0, spec.samples, spec.batch_size)]
    batch_losses = [losses[b].mean().item() for b in batches]
    return Truth(loss=losses.mean().item(), accuracy=correct.mean().item(),
                 loss_of_batch_means=sum(batch_losses) / len(batches),
                 accuracy_of_batch_means=sum(correct[b].mean().item() for b in batches) / len(batches),
                 sum_of_batch_losses=sum(batch_losses), batches=len(batches))


def _number(value: Any) -> float | None:
    """A plain Python, numpy or 0-d torch number as a float; anything else None."""
    import numpy as np

    if type(value) in (int, float) or isinstance(value, np.number):
        return float(value)
    if is_plain_tensor(value):
        import torch

        if torch.Tensor.numel(value) == 1:
            return float(torch.Tensor.item(value))
    return None


@register("evaluation")
class Evaluation(CheckKind):
    Spec = EvaluationSpec
    Observation = EvaluationObservation

    @staticmethod
    def probe(spec: EvaluationSpec, ctx: ProbeContext) -> EvaluationObservation:
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        fn = ctx.resolve(spec.target)
        name = ctx.found_name(spec.target)
        model, images, labels = build(spec)
        if torch.cuda.is_available():
            model = model.cuda()  # where the course's Trainer keeps it: student code moves batches with to_cuda
        loader = DataLoader(TensorDataset(images, labels), batch_size=spec.batch_size, shuffle=False)
        with ctx.student_code(f"calling {name}(dataloader, model, loss_criterion) on {spec.samples} samples "
                              f"in batches of {spec.batch_size}"):
            returned = fn(loader, model, torch.nn.CrossEntropyLoss())
        if type(returned) not in (tuple, list) or len(returned) != 2:
            return EvaluationObservation(returned=type_name(returned))
        loss, accuracy = (_number(v) for v in returned)
        shown = f"{type_name(returned)}({', '.join(type_name(v) for v in returned)})"
        return EvaluationObservation(returned=shown, loss=loss, accuracy=accuracy)

    @staticmethod
    def judge(spec: EvaluationSpec, obs: EvaluationObservation, expected: Any) -> Verdict:
        if obs.loss is None or obs.accuracy is None:
            return Verdict.failed(f"expected a pair of numbers (average_loss, accuracy), got {obs.returned}")
        want = truth(spec)
        reading = _matching_loss_reading(obs.loss, spec, want)
        scale = _matching_accuracy_scale(obs.accuracy, spec, want)
        loss_got = f"{obs.loss:.6f}" + (f" ({LOSS_SAID[reading]})" if reading else _why_loss(obs.loss, spec, want))
        accuracy_got = f"{obs.accuracy:.4f}" + (f" ({SCALE_SAID[scale]})" if scale
                                                else _why_accuracy(obs.accuracy, spec, want))
        loss_readings = " or ".join(f"{want.loss_reading(r):.6f} ({LOSS_SAID[r]})" for r in spec.loss_averages)
        accuracy_scales = " or ".join(f"{want.accuracy_reading(s):.4f} ({SCALE_SAID[s]})" for s in spec.accuracy_scales)
        rows = [
            {"requirement": f"average loss over all {spec.samples} samples in {want.batches} batches: {loss_readings}",
             "got": loss_got, "ok": reading is not None},
            {"requirement": f"accuracy = correct / total: {accuracy_scales}", "got": accuracy_got,
             "ok": scale is not None},
        ]
        return Verdict.from_requirements(rows, passed=f"loss {loss_got} and accuracy {accuracy_got} are right")


LOSS_SAID: dict[str, str] = {"sample-mean": "the mean per sample", "batch-mean": "the mean of the batch means"}
SCALE_SAID: dict[str, str] = {"fraction": "a fraction", "percent": "a percentage"}


def _close(got: float, want: float, rel_tol: float) -> bool:
    return abs(got - want) <= rel_tol * abs(want)


def _matching_loss_reading(got: float, spec: EvaluationSpec, want: Truth) -> LossAverage | None:
    """The first accepted reading of "the average loss" that ``got`` is, else None."""
    return next((r for r in spec.loss_averages if _close(got, want.loss_reading(r), spec.rel_tol)), None)


def _matching_accuracy_scale(got: float, spec: EvaluationSpec, want: Truth) -> AccuracyScale | None:
    """The first accepted scale in which ``got`` is correct / total, else None."""
    return next((s for s in spec.accuracy_scales
                 if abs(got - want.accuracy_reading(s)) <= SCALE_FACTOR[s] * ACCURACY_ATOL), None)


def _why_loss(got: float, spec: EvaluationSpec, want: Truth) -> str:
    """What a wrong loss is: a reading this check does not accept, a usual slip, or how far off."""
    for reading in LOSS_AVERAGES:
        if reading not in spec.loss_averages and _close(got, want.loss_reading(reading), spec.rel_tol):
            return f" ({LOSS_SAID[reading]}, which this check does not accept)"
    if _close(got, want.sum_of_batch_losses, spec.rel_tol):
        return (f" (the sum of the {want.batches} batch losses: divide by the number of batches, or weight each by "
                "its size and divide by the number of samples)")
    if _close(got, want.sum_of_batch_losses / spec.samples, spec.rel_tol):
        return (" (the sum of the batch means divided by the number of samples: each batch's loss is already a "
                "mean, so multiply it by the batch size first)")
    closest = min(spec.loss_averages, key=lambda r: abs(got - want.loss_reading(r)))
    right = want.loss_reading(closest)
    return f" (off by {abs(got - right) / abs(right):.2%} from {LOSS_SAID[closest]})" if right else ""


def _why_accuracy(got: float, spec: EvaluationSpec, want: Truth) -> str:
    """What a wrong accuracy is: a scale this check does not accept, a per-batch mean, or how far off."""
    for scale in ACCURACY_SCALES:
        factor = SCALE_FACTOR[scale]
        if scale not in spec.accuracy_scales and abs(got - factor * want.accuracy) <= factor * ACCURACY_ATOL:
            return f" ({SCALE_SAID[scale]}, which this check does not accept)"
        if abs(got - factor * want.accuracy_of_batch_means) <= factor * ACCURACY_ATOL:
            return (f" (the mean of per-batch accuracies as {SCALE_SAID[scale]}: count correct predictions "
                    "over all samples)")
    closest = min(spec.accuracy_scales, key=lambda s: abs(got - want.accuracy_reading(s)))
    return f" (off by {abs(got - want.accuracy_reading(closest)):.4f} as {SCALE_SAID[closest]})"
