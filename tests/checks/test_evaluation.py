"""``evaluation``: compute_loss_and_accuracy against the host's own numbers on seeded data.

The probe runs in-process on hand-written versions of the course's function: the right one, one
that averages batch means, one that returns a percentage, one that hard-codes its answer, one
that returns a single number. The judge recomputes the truth from the seed every time.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from grader import checks
from grader.checks.base import ProbeContext, StudentRaised
from grader.checks.evaluation import EvaluationObservation, build, truth
from grader.targets import TargetSpec

KIND = checks.get("evaluation")


def spec(**fields: Any):
    return KIND.Spec.model_validate({"id": "eval", "kind": "evaluation", "points": 2, "partial_credit": True,
                                     "target": "fn", **fields})


def observe(fn, **fields: Any) -> EvaluationObservation:
    ctx = ProbeContext(namespaces=[("trainer", {"fn": fn})], targets={"fn": TargetSpec(name="fn", kind="callable")})
    return KIND.probe(spec(**fields), ctx)


def per_sample(dataloader, model, loss_criterion):
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            out = model(x)
            total += loss_criterion(out, y).item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
    return total / seen, correct / seen


def batch_means(dataloader, model, loss_criterion):
    losses, accuracies = [], []
    with torch.no_grad():
        for x, y in dataloader:
            out = model(x)
            losses.append(loss_criterion(out, y).item())
            accuracies.append((out.argmax(1) == y).float().mean().item())
    return sum(losses) / len(losses), sum(accuracies) / len(accuracies)


def as_tensors(dataloader, model, loss_criterion):
    loss, accuracy = per_sample(dataloader, model, loss_criterion)
    return torch.tensor(loss), torch.tensor(accuracy)


def test_the_right_function_passes_with_tensors_or_floats():
    for fn in (per_sample, as_tensors):
        obs = observe(fn)
        verdict = KIND.judge(spec(), obs, None)
        assert verdict.fraction == 1.0, verdict.message


def test_the_last_batch_is_short_and_all_wrong():
    s = spec()
    model, images, labels = build(s)
    assert len(labels) == 50
    with torch.no_grad():
        predicted = model(images[48:]).argmax(1)
    assert (predicted != labels[48:]).all()
    want = truth(s)
    assert 0.2 < want.accuracy < 0.8
    # the usual mistake is far outside the tolerance
    assert abs(want.loss_of_batch_means - want.loss) > 100 * s.rel_tol * want.loss


def test_the_host_truth_is_the_same_on_every_build():
    assert truth(spec(seed=3)) == truth(spec(seed=3))
    assert truth(spec(seed=3)) != truth(spec(seed=4))


def test_a_mean_of_batch_means_fails_both_rows_and_says_why():
    verdict = KIND.judge(spec(), observe(batch_means), None)
    assert verdict.fraction == 0.0
    assert "mean of the batch means" in verdict.message
    assert "mean of per-batch accuracies" in verdict.message


def test_a_percentage_fails_the_accuracy_row_only():
    def percent(dataloader, model, loss_criterion):
        loss, accuracy = per_sample(dataloader, model, loss_criterion)
        return loss, 100 * accuracy

    verdict = KIND.judge(spec(), observe(percent), None)
    assert verdict.fraction == 0.5
    assert "a percentage" in verdict.message


def test_hard_coded_numbers_fail():
    verdict = KIND.judge(spec(), observe(lambda dataloader, model, loss_criterion: (0.768, 0.74)), None)
    assert verdict.fraction == 0.0


def test_not_a_pair_fails_with_what_came_back():
    verdict = KIND.judge(spec(), observe(lambda dataloader, model, loss_criterion: 0.5), None)
    assert verdict.fraction == 0.0 and "got float" in verdict.message


def test_a_tensor_subclass_is_not_a_number():
    class Rigged(torch.Tensor):
        pass

    def rigged(dataloader, model, loss_criterion):
        loss, accuracy = per_sample(dataloader, model, loss_criterion)
        return torch.tensor(loss).as_subclass(Rigged), accuracy

    assert KIND.judge(spec(), observe(rigged), None).fraction == 0.0


def test_student_exceptions_are_reported_as_raised():
    def broken(dataloader, model, loss_criterion):
        raise ValueError("oops")

    with pytest.raises(StudentRaised, match="ValueError while calling fn"):
        observe(broken)


def test_the_spec_wants_a_short_last_batch():
    with pytest.raises(ValueError, match="short last batch"):
        spec(samples=48, batch_size=16)
    with pytest.raises(ValueError, match="short last batch"):
        spec(samples=10, batch_size=16)
