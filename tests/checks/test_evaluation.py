"""``evaluation``: compute_loss_and_accuracy against the host's own numbers on seeded data.

The probe runs in-process on hand-written versions of the course's function: one per accepted
reading of the handout (loss per sample or mean of batch means, accuracy as a fraction or a
percentage), the usual slips (per-batch accuracy, a sum never divided, a sum of batch means
over the number of samples), one that hard-codes its answer, one that returns a single number.
The judge recomputes the truth from the seed every time.
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


def batch_mean_loss(dataloader, model, loss_criterion):
    """The course staff's reading: the loss is the mean of the batch means, the accuracy counted."""
    loss, _ = batch_means(dataloader, model, loss_criterion)
    return loss, per_sample(dataloader, model, loss_criterion)[1]


def percent(dataloader, model, loss_criterion):
    loss, accuracy = per_sample(dataloader, model, loss_criterion)
    return loss, 100 * accuracy


def summed_batch_losses(dataloader, model, loss_criterion):
    total, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for x, y in dataloader:
            out = model(x)
            total += loss_criterion(out, y).item()
            correct += (out.argmax(1) == y).sum().item()
            seen += len(y)
    return total, correct / seen


def summed_batch_losses_over_samples(dataloader, model, loss_criterion):
    total, accuracy = summed_batch_losses(dataloader, model, loss_criterion)
    return total / len(dataloader.dataset), accuracy


def test_both_readings_of_the_average_loss_pass_and_the_message_names_the_one_taken():
    want = truth(spec())
    per_sample_verdict = KIND.judge(spec(), observe(per_sample), None)
    batch_mean_verdict = KIND.judge(spec(), observe(batch_mean_loss), None)
    assert per_sample_verdict.fraction == batch_mean_verdict.fraction == 1.0
    assert per_sample_verdict.message == (f"loss {want.loss:.6f} (the mean per sample) and accuracy "
                                          f"{want.accuracy:.4f} (a fraction) are right")
    assert batch_mean_verdict.table[0]["got"] == f"{want.loss_of_batch_means:.6f} (the mean of the batch means)"


def test_a_rubric_can_require_one_reading_of_the_loss():
    verdict = KIND.judge(spec(loss_averages=["sample-mean"]), observe(batch_mean_loss), None)
    assert verdict.fraction == 0.5
    assert verdict.table[0]["got"].endswith("(the mean of the batch means, which this check does not accept)")
    assert KIND.judge(spec(loss_averages=["batch-mean"]), observe(per_sample), None).fraction == 0.5


def test_a_per_batch_accuracy_fails_and_says_why():
    verdict = KIND.judge(spec(), observe(batch_means), None)
    assert verdict.fraction == 0.5
    assert verdict.table[0]["ok"] and not verdict.table[1]["ok"]
    assert "the mean of per-batch accuracies as a fraction" in verdict.message


def test_a_percentage_passes_and_says_so():
    verdict = KIND.judge(spec(), observe(percent), None)
    assert verdict.fraction == 1.0
    assert verdict.table[1]["got"] == f"{100 * truth(spec()).accuracy:.4f} (a percentage)"


def test_a_rubric_can_require_a_fraction():
    verdict = KIND.judge(spec(accuracy_scales=["fraction"]), observe(percent), None)
    assert verdict.fraction == 0.5
    assert "(a percentage, which this check does not accept)" in verdict.message


@pytest.mark.parametrize("fn, why", [
    (summed_batch_losses, "the sum of the 4 batch losses"),
    (summed_batch_losses_over_samples, "the sum of the batch means divided by the number of samples"),
])
def test_the_usual_slips_of_the_loss_fail_and_are_named(fn, why):
    verdict = KIND.judge(spec(), observe(fn), None)
    assert verdict.fraction == 0.5
    assert why in verdict.message


@pytest.mark.parametrize("relative, ok", [(0.9e-4, True), (1.1e-4, False)])
def test_loss_tolerance_boundary_for_each_reading(relative, ok):
    want = truth(spec())
    for right in (want.loss, want.loss_of_batch_means):
        obs = EvaluationObservation(returned="tuple(float, float)", loss=right * (1 + relative), accuracy=want.accuracy)
        assert KIND.judge(spec(), obs, None).table[0]["ok"] is ok


def test_hard_coded_numbers_fail_saying_how_far_off():
    verdict = KIND.judge(spec(), observe(lambda dataloader, model, loss_criterion: (0.768, 0.74)), None)
    assert verdict.fraction == 0.0
    assert "(off by 62.63% from the mean per sample)" in verdict.message
    assert "got 0.7400 (off by 0.2400 as a fraction)" in verdict.message


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


def test_the_spec_rejects_unknown_or_no_readings():
    with pytest.raises(ValueError, match="loss_averages"):
        spec(loss_averages=["sum"])
    with pytest.raises(ValueError, match="accuracy_scales"):
        spec(accuracy_scales=[])
