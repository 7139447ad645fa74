"""``evaluation``: a function that scores a model over a data loader, against the host's own numbers.

The course's ``compute_loss_and_accuracy(dataloader, model, loss_criterion)`` must return the
loss averaged per *sample* over the whole loader and the share of correct predictions. The probe
calls the student's function on a small network and tiny data that ``build`` makes from the
check's seed, and reports only the two numbers it returned. The host builds the very same
network and data from the same seed and computes the truth itself (``truth``): nothing computed
inside the sandbox is taken as the answer.

The data is laid out to expose the usual mistakes: the last batch is short, and the network gets
all of its samples wrong with a large loss. A mean of batch means then weights those few samples
like a full batch and is visibly off; so is an accuracy averaged per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, Observation, ProbeContext, Verdict
from grader.checks.common import is_plain_tensor, type_name


class EvaluationSpec(CheckSpec):
    kind: Literal["evaluation"]
    target: str = Field(description="the function (dataloader, model, loss_criterion) -> (average_loss, accuracy)")
    input: list[int] = Field([3, 32, 32], min_length=1, description="the shape of one sample")
    classes: int = Field(10, ge=2, description="the network's outputs")
    samples: int = Field(50, ge=2, description="samples in the loader")
    batch_size: int = Field(16, ge=1, description="the loader's batch size; samples % batch_size is the short last batch")
    seed: int = Field(0, description="seeds the network and the data, on both sides")
    rel_tol: float = Field(1e-4, gt=0, description="accepted relative difference of the loss")

    @model_validator(mode="after")
    def _short_last_batch(self) -> "EvaluationSpec":
        # the check's point: with equal batches, the mean of batch means is the right answer too
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
    loss: float
    accuracy: float
    loss_of_batch_means: float
    accuracy_of_batch_means: float


def truth(spec: EvaluationSpec) -> Truth:
    """The right answers, computed on the host in float64, and the two usual wrong ones."""
    import torch
    from torch.nn import functional as F

    model, images, labels = build(spec)
    with torch.no_grad():
        logits = model.double()(images.double())
    losses = F.cross_entropy(logits, labels, reduction="none")
    correct = (logits.argmax(dim=1) == labels).double()
    batches = [slice(i, i + spec.batch_size) for i in range(0, spec.samples, spec.batch_size)]
    return Truth(loss=losses.mean().item(), accuracy=correct.mean().item(),
                 loss_of_batch_means=sum(losses[b].mean().item() for b in batches) / len(batches),
                 accuracy_of_batch_means=sum(correct[b].mean().item() for b in batches) / len(batches))


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
        loss_ok = abs(obs.loss - want.loss) <= spec.rel_tol * abs(want.loss)
        accuracy_ok = abs(obs.accuracy - want.accuracy) <= 1e-6
        rows = [
            {"requirement": f"average loss per sample over all {spec.samples} samples = {want.loss:.6f}",
             "got": f"{obs.loss:.6f}" + _why_loss(obs.loss, want, spec.rel_tol), "ok": loss_ok},
            {"requirement": f"accuracy = correct / total = {want.accuracy:.4f}",
             "got": f"{obs.accuracy:.4f}" + _why_accuracy(obs.accuracy, want), "ok": accuracy_ok},
        ]
        return Verdict.from_requirements(rows, passed=f"loss {obs.loss:.6f} and accuracy {obs.accuracy:.4f} are right")


def _why_loss(got: float, want: Truth, rel_tol: float) -> str:
    if abs(got - want.loss_of_batch_means) <= rel_tol * abs(want.loss_of_batch_means):
        return " (the mean of the batch means: weight each batch's loss by its size)"
    return ""


def _why_accuracy(got: float, want: Truth) -> str:
    if abs(got - 100 * want.accuracy) <= 1e-4:
        return " (a percentage: return a fraction in [0, 1])"
    if abs(got - want.accuracy_of_batch_means) <= 1e-6:
        return " (the mean of per-batch accuracies: count correct predictions over all samples)"
    return ""
