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


ACCURACY_ROW = "validation accuracies are the share of validation samples the network classifies right"
LOSS_ROW = "validation losses are the validation cross-entropy as the mean per sample, the mean of the batch " \
           "losses, the sum of the batch losses or the sum over the samples"


def test_hits_divided_by_the_batch_count_fail_the_accuracy_row_and_say_so():
    _, verdict = _graded("train_dividing_hits_by_the_batch_count")
    failed = {requirement: got for requirement, (ok, got) in _rows(verdict).items() if not ok}
    assert failed == {ACCURACY_ROW: "the hits divided by the number of batches (3), not of samples (20)"}
    assert verdict.review is None


def test_a_test_set_size_written_into_the_code_goes_to_a_person():
    """Right on MNIST, wrong on any other data: the harness cannot tell which the student meant."""
    _, verdict = _graded("train_dividing_by_the_written_test_set_size")
    failed = {requirement: got for requirement, (ok, got) in _rows(verdict).items() if not ok}
    assert failed == {
        LOSS_ROW: "the sum over the samples divided by 10000, not by the 20 samples the harness served "
                  "(a data-set size written into the code?)",
        ACCURACY_ROW: "the hits in percent divided by 10000, not by the 20 samples the harness served "
                      "(a data-set size written into the code?)"}
    assert verdict.review.startswith("the validation losses are the sum over the samples divided by a fixed 10000")


def test_a_loop_testing_on_a_loader_it_builds_itself_goes_to_a_person():
    _, verdict = _graded("train_testing_on_a_loader_of_its_own")
    assert _rows(verdict)["validates once per epoch on the given validation data"] == (
        False, "0 passes: the network ran on 3 batch(es) of data the harness did not serve")
    assert verdict.review.startswith("the network ran on 3 batch(es) the harness did not serve")


def test_a_loop_that_never_tests_fails_without_a_person():
    _, verdict = _graded("train_that_never_tests")
    assert verdict.review is None and verdict.fraction < 1
    assert _rows(verdict)["validates once per epoch on the given validation data"] == (
        False, "0 passes: no call of the network on the validation data (model.forward() called directly, or other "
               "data read?)")


def test_the_rubrics_call_gives_accuracies_that_move_between_epochs():
    """At the handout's 0.01 the tiny network's accuracy stays 0, and any count would match it."""
    spec = _rubric().checks_by_id["train-returns"]
    ctx = ProbeContext(namespaces=[("notebook", vars(_module()))], targets=dict(_rubric().model.targets),
                       mapping={"train_fn": "train"}, seed=_rubric().model.seed)
    ctx.seed_everything()
    observation = checks.get("training").probe(spec, ctx)
    accuracies = observation.elements[1].values
    assert len(set(accuracies)) == len(accuracies) == spec.epochs and 0 < max(accuracies) <= 1
