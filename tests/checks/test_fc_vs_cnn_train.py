"""fc-vs-cnn's train-returns check as the rubric writes it, on the harness's data: the loaders are
replaced under the student's own names (found through the rubric's loader targets), a count taken
from the data set behind them agrees with the batches served, and the returned test losses and
accuracies are compared with the host's recomputation in every fair reading."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from grader import checks, rubric
from grader.checks.base import HarnessSeed, ProbeContext, Verdict

ROOT = Path(__file__).resolve().parents[2]
LOOPS = ROOT / "tests" / "fixtures" / "contracts" / "fc_vs_cnn_loops.py"


@cache
def _rubric():
    return rubric.load(ROOT / "rubrics" / "fc-vs-cnn.yaml")


def _module():
    found = importlib.util.spec_from_file_location("fc_vs_cnn_loops", LOOPS)
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _graded(function: str, module=None) -> tuple[ProbeContext, Verdict]:
    """The rubric's train-returns check on ``function``, found as the rubric finds the training
    function: under a mapping to the fixture's name, beside the notebook's loaders."""
    loaded = _rubric()
    spec = loaded.checks_by_id["train-returns"]
    namespace = vars(module or _module())
    ctx = ProbeContext(namespaces=[("notebook", namespace)], targets=dict(loaded.model.targets),
                       mapping={"train_fn": function}, seed=loaded.model.seed)
    ctx.seed_everything()
    kind = checks.get("training")
    return ctx, kind.judge(spec, kind.probe(spec, ctx), HarnessSeed(seed=ctx.seed))


def _rows(verdict: Verdict) -> dict[str, tuple[bool, str]]:
    return {row["requirement"].split(" (")[0]: (row["ok"], row["got"]) for row in verdict.table}


def test_a_loop_over_loaders_of_its_own_names_dividing_by_the_global_data_set_passes():
    module = _module()
    before = module.trainloader, module.testloader, module.testset
    ctx, verdict = _graded("train", module)
    assert verdict.fraction == 1.0, verdict.message
    assert verdict.message.endswith("its validation losses are the mean per sample, its accuracies as a fraction")
    assert (module.trainloader, module.testloader, module.testset) == before  # the student's objects are back
    assert ctx.found_name("test_loader") == "testloader"


def test_batch_means_and_percent_are_fair_readings():
    _, verdict = _graded("train_averaging_per_batch_in_percent")
    assert verdict.fraction == 1.0, verdict.message
    assert verdict.message.endswith("its validation losses are the mean of the batch losses, its accuracies as the "
                                    "mean of the batch accuracies, in percent")


def test_the_training_loss_returned_as_the_test_loss_is_named_and_costs_its_row():
    _, verdict = _graded("train_returning_the_training_loss")
    failed = [(requirement, got) for requirement, (ok, got) in _rows(verdict).items() if not ok]
    assert failed == [("validation losses are the validation cross-entropy as the mean per sample, the mean of the "
                       "batch losses, the sum of the batch losses or the sum over the samples",
                       "the training loss (the mean per sample over the epoch's training steps), not the "
                       "loss on the validation data")]
    assert 0 < verdict.fraction < 1


def test_hits_divided_by_the_batch_count_fail_the_accuracy_row():
    _, verdict = _graded("train_dividing_hits_by_the_batch_count")
    failed = {requirement: got for requirement, (ok, got) in _rows(verdict).items() if not ok}
    assert list(failed) == ["validation accuracies are the share of validation samples the network classifies right"]
    assert "recomputed" in failed["validation accuracies are the share of validation samples the network "
                                  "classifies right"]


def test_the_rubrics_call_gives_accuracies_that_move_between_epochs():
    """At the handout's 0.01 the tiny network's accuracy stays 0, and any count would match it."""
    spec = _rubric().checks_by_id["train-returns"]
    ctx = ProbeContext(namespaces=[("notebook", vars(_module()))], targets=dict(_rubric().model.targets),
                       mapping={"train_fn": "train"}, seed=_rubric().model.seed)
    ctx.seed_everything()
    observation = checks.get("training").probe(spec, ctx)
    accuracies = observation.elements[1].values
    assert len(set(accuracies)) == len(accuracies) == spec.epochs and 0 < max(accuracies) <= 1
