"""The ``accuracy`` check: judges on hand-made measured predictions (just above and just below each
kind of threshold, the per-class table and confusion matrix, nothing measured), and probes run in
this process on a linear network and synthetic MNIST, trained by the harness's loop and by a
student's loop, their captured networks scored by the measure stage's code on the held-out images."""

from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from grader import checks, data, profiles, rubric
from grader.checks import accuracy
from grader.calibration import CheckStats
from grader import artifacts
from grader.checks.accuracy import (AccuracyMeasurement, AccuracyObservation, AccuracyTruth, NotCalibrated, PlannedData,
                                    score, subset)
from grader.checks.base import Measured, ProbeContext, StudentRaised
from grader.checks.toolkit.model_capture import CapturedModel
from grader.targets import TargetSpec

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "accuracy"
HARNESS = {"target": "make_net", "args": [784, 10], "trainer": "harness", "epochs": 2, "lr": 0.1}
STUDENT = {"target": "make_net", "args": [784, 10], "trainer": "student", "train_fn": "train_fn", "epochs": 2,
           "train_args": ["$network", "$epochs", 0.1], "data_globals": {"train_loader": "train", "test_loader": "test"}}


def spec(**fields: Any):
    entry = {"id": "acc", "kind": "accuracy", "points": 2, **(HARNESS | {"min_accuracy": 0.9}), **fields}
    return checks.get("accuracy").Spec.model_validate(entry)


CAPTURED = CapturedModel(input_shapes=[[256, 1, 28, 28]], graph_problems=[""],
                         graphs=[artifacts.Graph(inputs=["input"], nodes=[], outputs=[{"n": 0}])])


class Scored:
    """What a judging test hands the judge: the run's observation and the measure stage's predictions."""

    def __init__(self, rows: list[np.ndarray], device: str = "cpu"):
        self.rows = rows
        self.obs = AccuracyObservation(models=[CAPTURED] * len(self.rows), train_images=600, epochs=2, device=device,
                                       seconds=0.5)
        self.measured = Measured(0, data=AccuracyMeasurement(predictions=self.rows, problems=[""] * len(self.rows)))


def observation(predictions: list[int] | np.ndarray, device: str = "cpu") -> Scored:
    """One draw's predictions, or one row per draw."""
    rows = np.asarray(predictions, dtype=np.int64)
    return Scored(list(rows) if rows.ndim == 2 else [rows], device)


def truth(labels: list[int] | np.ndarray, classes: int = 3, **fields: Any) -> AccuracyTruth:
    labels = np.asarray(labels, dtype=np.int64)
    return AccuracyTruth(labels=labels, classes=classes, profile="quick", data="real",
                         images=np.zeros((len(labels), 1, 2, 2), dtype=np.uint8),
                         scored_on=f"{len(labels)} test images", **fields)


def judge(the_spec: Any, scored: Scored, the_truth: AccuracyTruth | None):
    return checks.get("accuracy").judge(the_spec, scored.obs, the_truth, scored.measured)


def predictions_with(correct: int, labels: np.ndarray, classes: int) -> np.ndarray:
    """The labels with all but the first ``correct`` moved to the next class."""
    wrong = (labels + 1) % classes
    return np.concatenate([labels[:correct], wrong[correct:]])


# ---------------------------------------------------------------- the spec


@pytest.mark.parametrize("fields, message", [
    ({"trainer": "student"}, "needs `train_fn`"),
    ({**STUDENT, "train_args": ["$epochs"]}, "needs `$network`"),
    ({**STUDENT, "data_globals": {}}, "a way in for the training data"),
    ({**STUDENT, "train_args": ["$network", "$data"]}, "unknown placeholder $data"),
    ({"train_fn": "train_fn"}, "are for trainer: student"),
    ({"hyperparameters": {"epochs": 3}}, "not in hyperparameters"),
    ({"min_accuracy": None}, "threshold: absolute needs `min_accuracy`"),
    ({"draws": 2}, "no middle draw"),
])
def test_spec_rejects_inconsistent_fields(fields, message):
    with pytest.raises(ValidationError, match=message.replace("$", r"\$")):
        spec(**fields)


def test_spec_names_both_targets_and_keeps_the_planned_data_out_of_dumps():
    the_spec = spec(**STUDENT, run=PlannedData(profile="quick", dataset="mnist", root="/data", subset_seed=0, train_seed=0))
    assert the_spec.target_refs() == ["make_net", "train_fn"]
    assert "run" not in the_spec.model_dump()


# ---------------------------------------------------------------- judging: absolute thresholds


def test_accuracy_just_above_the_minimum_passes():
    labels = np.arange(100) % 3
    verdict = judge(spec(min_accuracy=0.9), observation(predictions_with(90, labels, 3)), truth(labels))
    assert verdict.fraction == 1.0
    assert verdict.message.startswith("accuracy 0.900 on 100 test images, needed 0.900 (the rubric's minimum")


def test_accuracy_just_below_the_minimum_fails():
    labels = np.arange(100) % 3
    verdict = judge(spec(min_accuracy=0.9), observation(predictions_with(89, labels, 3)), truth(labels))
    assert verdict.fraction == 0.0
    assert "accuracy 0.890 on 100 test images, needed 0.900" in verdict.message


def test_a_first_draw_that_reaches_the_threshold_decides_alone():
    labels = np.arange(100) % 3
    first_only = observation(predictions_with(95, labels, 3))
    first_only.obs = first_only.obs.model_copy(update={"models": [CAPTURED] * 3})  # the stage trained no more
    verdict = judge(spec(min_accuracy=0.9, draws=3), first_only, truth(labels))
    assert verdict.fraction == 1.0
    assert verdict.message.startswith("accuracy 0.950 in the first training (a first that fell short would be "
                                      "followed by 2 more) on 100 test images, needed 0.900"), verdict.message


def test_a_first_draw_that_falls_short_is_judged_on_the_median_of_all():
    labels = np.arange(100) % 3
    rows = np.stack([predictions_with(c, labels, 3) for c in (80, 95, 91)])
    verdict = judge(spec(min_accuracy=0.9, draws=3), observation(rows), truth(labels))
    assert verdict.fraction == 1.0
    assert verdict.message.startswith("median accuracy 0.910 of 3 trainings from different seeds (0.800, 0.950, "
                                      "0.910): the first fell short, so 2 more were trained on 100 test images, "
                                      "needed 0.900"), verdict.message
    one_more_short = np.stack([predictions_with(c, labels, 3) for c in (80, 95, 85)])
    assert judge(spec(min_accuracy=0.9, draws=3), observation(one_more_short), truth(labels)).fraction == 0.0


def test_a_student_loops_first_training_may_come_alone_and_decides_where_it_passes():
    """A student's loop trains the first of several alone (the host runs the others only where it
    falls short); where all were trained, a first that passes still decides, and says so."""
    labels = np.arange(100) % 3
    student = spec(min_accuracy=0.9, draws=3, **STUDENT)
    alone = judge(student, observation(predictions_with(95, labels, 3)), truth(labels))
    assert alone.fraction == 1.0 and alone.message.startswith("accuracy 0.950 in the first training (a first that "
                                                              "fell short would be followed by 2 more)")
    rows = np.stack([predictions_with(c, labels, 3) for c in (92, 80, 85)])
    every = judge(student, observation(rows), truth(labels))
    assert every.fraction == 1.0 and every.message.startswith(
        "accuracy 0.920 in the first training, which decides where it reaches the threshold (all 3: 0.920, 0.800, "
        "0.850) on 100 test images"), every.message
    short_alone = judge(student, observation(predictions_with(80, labels, 3)), truth(labels))
    assert short_alone.fraction == 0.0 and short_alone.review
    assert short_alone.message == ("not measured: the runs of the submission trained 1 of 3 draws, and the first "
                                   "fell short (0.800 < 0.900)")


def test_only_a_student_loops_first_training_that_fell_short_asks_for_the_others():
    labels = np.arange(100) % 3
    run = PlannedData(profile="quick", dataset="mnist", root="/data", subset_seed=0, train_seed=0, trained_draws=1)
    student = spec(min_accuracy=0.9, draws=3, **STUDENT).model_copy(update={"run": run})
    short, passing = observation(predictions_with(80, labels, 3)), observation(predictions_with(95, labels, 3))
    assert accuracy.first_fell_short(student, truth(labels), short.measured)
    assert not accuracy.first_fell_short(student, truth(labels), passing.measured)
    every = student.model_copy(update={"run": run.model_copy(update={"trained_draws": None})})
    assert not accuracy.first_fell_short(every, truth(labels), short.measured)  # the second run trained them all
    harness = spec(min_accuracy=0.9, draws=3).model_copy(update={"run": run})
    assert not accuracy.first_fell_short(harness, truth(labels), short.measured)  # the measure stage does it
    assert not accuracy.first_fell_short(student, None, short.measured)


def test_draws_the_judge_cannot_decide_on_are_not_measured_and_go_to_a_person():
    labels = np.arange(100) % 3
    one_captured = judge(spec(min_accuracy=0.9, draws=3), observation(predictions_with(95, labels, 3)), truth(labels))
    assert one_captured.fraction == 0.0 and one_captured.review
    assert one_captured.message.startswith("not measured: 1 network(s) were captured for 3 training(s)")
    stopped = observation(predictions_with(80, labels, 3))
    stopped.obs = stopped.obs.model_copy(update={"models": [CAPTURED] * 3})
    verdict = judge(spec(min_accuracy=0.9, draws=3), stopped, truth(labels))
    assert verdict.fraction == 0.0 and verdict.review
    assert verdict.message == ("not measured: the measure stage trained 1 of 3 draws, and the first fell short "
                               "(0.800 < 0.900)")


@pytest.mark.parametrize("accuracies, needed, judged_on", [
    ([0.95], 0.9, 0), ([0.85], 0.9, 0),            # one draw: that one
    ([0.95, 0.10, 0.10], 0.9, 0),                  # the first passes: the others are never looked at
    ([0.80, 0.95, 0.91], 0.9, 2),                  # else the median of all, in draw order
    ([0.80, 0.95, 0.85], 0.9, 2),
    ([0.85, 0.70, 0.95, 0.93, 0.60], 0.9, 0),      # five: the third highest (0.85, the first)
])
def test_judged_draw_is_the_first_where_it_passes_else_the_median(accuracies, needed, judged_on):
    from grader.checks.accuracy import judged_draw

    assert judged_draw(accuracies, needed) == judged_on

def test_minimum_per_profile_uses_the_active_profile():
    labels = np.arange(100) % 3
    lenient = spec(min_accuracy={"quick": 0.5, "full": 0.95})
    assert judge(lenient, observation(predictions_with(60, labels, 3)), truth(labels)).fraction == 1.0
    full = dataclasses.replace(truth(labels), profile="full")
    assert judge(lenient, observation(predictions_with(60, labels, 3)), full).fraction == 0.0


def test_per_class_table_and_confusion_matrix():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    predicted = np.array([0, 0, 1, 2, 1, 1, 2, 2, 0, 2])
    verdict = judge(spec(min_accuracy=0.5), observation(predicted), truth(labels))
    assert verdict.table == [
        {"class": 0, "images": 4, "accuracy": 0.5, "as 0": 2, "as 1": 1, "as 2": 1},
        {"class": 1, "images": 2, "accuracy": 1.0, "as 0": 0, "as 1": 2, "as 2": 0},
        {"class": 2, "images": 4, "accuracy": 0.75, "as 0": 1, "as 1": 0, "as 2": 3},
    ]
    assert "accuracy 0.700 on 10 test images" in verdict.message and "weakest class 0: 0.500" in verdict.message


def test_predictions_outside_the_classes_count_as_wrong():
    scored = score(np.array([0, 7, -1, 1]), np.array([0, 1, 1, 1]), classes=2)
    assert scored.accuracy == 0.5 and scored.out_of_range == 2
    assert scored.confusion.tolist() == [[1, 0], [0, 1]]
    verdict = judge(spec(min_accuracy=0.4), observation([0, 7, -1, 1]), truth([0, 1, 1, 1], classes=2))
    assert "2 prediction(s) outside 0..1" in verdict.message


@pytest.mark.parametrize("predictions, got", [
    (np.zeros(9, dtype=np.int64), "shape [9]"),
    (np.zeros((10, 1), dtype=np.int64), "shape [10, 1]"),
    (np.zeros(10, dtype=np.float32), "float32"),
])
def test_measured_predictions_of_the_wrong_length_or_type_fail(predictions, got):
    verdict = judge(spec(), Scored([predictions]), truth(np.zeros(10)))
    assert verdict.fraction == 0.0 and verdict.review
    assert "one class per scored image (10)" in verdict.message and got in verdict.message


@pytest.mark.parametrize("measured, why", [
    (None, "no measure stage ran"),
    (Measured(0, problem="the measure stage ended timeout: 60 s"), "the measure stage ended timeout"),
    (Measured(0, data=AccuracyMeasurement(predictions=[None], problems=["its weights were too large"])),
     "its weights were too large"),
])
def test_a_network_the_measure_stage_could_not_score_earns_nothing_and_asks_a_person(measured, why):
    """Nothing the student's process reported can stand in for a measurement: the check earns
    nothing, says why, and goes to the review queue."""
    scored = observation(np.arange(10) % 3)
    verdict = checks.get("accuracy").judge(spec(min_accuracy=0.1), scored.obs, truth(np.arange(10) % 3), measured)
    assert verdict.fraction == 0.0 and verdict.message.startswith(f"not measured: {why}")
    assert "a person may grade it by hand" in verdict.review


def test_a_network_that_was_not_captured_says_why():
    scored = observation(np.arange(10) % 3)
    scored.obs.models = [CapturedModel(problem="the trained make_net(784, 10) built a str, not a torch.nn.Module")]
    verdict = judge(spec(min_accuracy=0.1), scored, truth(np.arange(10) % 3))
    assert verdict.fraction == 0.0 and "built a str, not a torch.nn.Module" in verdict.message


def test_judging_without_the_host_labels_is_a_grader_problem():
    with pytest.raises(Exception, match="no test labels on the host"):
        judge(spec(), observation([0]), None)


# ---------------------------------------------------------------- judging: calibrated thresholds


def stats(mean: float, std: float, n: int = 400, accuracies: list[float] | None = None) -> CheckStats:
    return CheckStats(mean=mean, std=std, accuracies=accuracies or [mean], test_images=n, fingerprint="f")


@pytest.mark.parametrize("accuracies, n, floor, needed, why", [
    # a spread-out reference: its lowest seed less 2 x sqrt(0.8 x 0.2 / 400) = 0.04
    ([0.80, 0.90, 0.95], 400, 0.02, 0.76, "lowest 0.800 less 2 SE 0.040"),
    # a stable reference on many images: the rubric's floor below the mean keeps a margin
    ([0.899, 0.900, 0.901], 10_000, 0.05, 0.85, "mean 0.900 less floor 0.050"),
])
def test_calibrated_rule_lowest_seed_less_two_errors_or_the_floor(accuracies, n, floor, needed, why):
    labels = np.arange(n) % 2
    mean = sum(accuracies) / len(accuracies)
    the_truth = truth(labels, classes=2, calibrations={"cpu": stats(mean, 0.0, n, accuracies)})
    the_spec = spec(threshold="calibrated", min_accuracy=None, floor=floor)
    just_above = int(np.ceil(needed * n + 1e-9))
    passed = judge(the_spec, observation(predictions_with(just_above, labels, 2)), the_truth)
    assert passed.fraction == 1.0
    assert f"needed {needed:.3f} (calibrated over 3 seeds: {why})" in passed.message
    failed = judge(the_spec, observation(predictions_with(just_above - 2, labels, 2)), the_truth)
    assert failed.fraction == 0.0


def test_calibration_is_chosen_by_the_device_the_run_was_given():
    labels = np.arange(100) % 2
    calibrations = {"cpu": stats(0.9, 0.01, 100), "cuda:H100": stats(0.99, 0.001, 100)}
    the_spec = spec(threshold="calibrated", min_accuracy=None)
    predictions = predictions_with(90, labels, 2)
    assert judge(the_spec, observation(predictions), truth(labels, 2, calibrations=calibrations)).fraction == 1.0
    on_gpu = truth(labels, 2, calibrations=calibrations, device="cuda:H100")
    assert judge(the_spec, observation(predictions, device="cuda:H100"), on_gpu).fraction == 0.0


def test_a_forged_device_in_the_record_neither_picks_a_calibration_nor_skips_the_check():
    labels = np.arange(100) % 2
    the_truth = truth(labels, 2, calibrations={"cpu": stats(0.9, 0.01, 100)})  # the run was given the CPU
    failing = predictions_with(50, labels, 2)
    verdict = judge(spec(threshold="calibrated", min_accuracy=None), observation(failing, device="cuda:A100"), the_truth)
    assert verdict.fraction == 0.0  # not NotCalibrated (skipped, not counted) for a device it never had
    assert "the model ended on cuda:A100, judged for cpu, the device this run was given" in verdict.message


def test_expectations_on_a_device_change_only_accuracy_truths():
    from grader import profiles

    expected = {"acc": truth([0, 1]), "other": object()}
    moved = profiles.on_device(expected, "cuda:H100")
    assert moved["acc"].device == "cuda:H100" and expected["acc"].device == "cpu"
    assert moved["other"] is expected["other"]


def test_missing_calibration_says_which_command_to_run():
    the_truth = truth([0, 1], classes=2, calibrate_hint="run `grader calibrate r.yaml --seeds 5 --profile quick`")
    with pytest.raises(NotCalibrated) as caught:
        judge(spec(threshold="calibrated", min_accuracy=None), observation([0, 1]), the_truth)
    assert "no calibration for profile quick on cpu (real data)" in str(caught.value)
    assert "run `grader calibrate r.yaml --seeds 5 --profile quick`" in str(caught.value)


def test_missing_calibration_falls_back_to_min_accuracy():
    the_truth = truth([0, 1, 1, 0], classes=2, stale={"cpu": "the calibration of profile quick on cpu is out of date"})
    verdict = judge(spec(threshold="calibrated", min_accuracy=0.75), observation([0, 1, 1, 1]), the_truth)
    assert verdict.fraction == 1.0
    assert "needed 0.750 (the rubric's minimum: the calibration of profile quick on cpu is out of date)" in verdict.message


# ---------------------------------------------------------------- subsets


def test_subsets_are_fixed_sorted_and_independent_per_stream():
    first = subset(1000, 100, seed=0, stream=0)
    assert np.array_equal(first, subset(1000, 100, seed=0, stream=0))
    assert np.all(np.diff(first) > 0) and len(first) == 100
    assert not np.array_equal(first, subset(1000, 100, seed=0, stream=1))
    assert not np.array_equal(first, subset(1000, 100, seed=1, stream=0))
    assert np.array_equal(subset(50, 100, 0, 0), np.arange(50)) and np.array_equal(subset(50, None, 0, 0), np.arange(50))


# ---------------------------------------------------------------- probes, in this process


@pytest.fixture(scope="module")
def fixture_rubric():
    return rubric.load(FIXTURE / "rubric.yaml")


@pytest.fixture(scope="module")
def synthetic_mnist():
    return data.resolve("mnist", None, allow_synthetic=True)


def planned(fixture_rubric, synthetic_mnist, **fields: Any):
    the_spec = spec(**{"min_accuracy": 0.6, **fields})
    return profiles.planned_spec(fixture_rubric, the_spec, "quick", synthetic_mnist)


TARGETS = {"make_net": TargetSpec(aliases=["make_net"]), "train_fn": TargetSpec(aliases=["train"]),
           "train_loader": TargetSpec(aliases=["train_loader", "trainloader"], kind="value")}


def run_probe(the_spec: Any, namespace: dict[str, Any], seed: int = 0) -> AccuracyObservation:
    ctx = ProbeContext(namespaces=[("module", namespace)], seed=seed, targets=TARGETS)
    ctx.seed_everything()
    return checks.get("accuracy").probe(the_spec, ctx)


def solution() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "solution"}
    exec(compile((FIXTURE / "reference" / "solution.py").read_text(), "solution.py", "exec"), namespace)
    return namespace


def measured_predictions(fixture_rubric, synthetic_mnist, the_spec, obs) -> np.ndarray:
    """What the measure stage computes from the probe's captured networks: one row per draw."""
    the_truth = profiles.truth_for(fixture_rubric, the_spec, "quick", synthetic_mnist)
    measurement = checks.get("accuracy").measure(the_spec, obs, 0, {"images": the_truth.images})
    assert measurement.problems == [""] * len(obs.models)
    return np.stack(measurement.predictions)


def judged(fixture_rubric, synthetic_mnist, the_spec, obs):
    """Measured and judged as the pipeline does it, with what the host hands the measure stage."""
    kind = checks.get("accuracy")
    the_truth = profiles.truth_for(fixture_rubric, the_spec, "quick", synthetic_mnist)
    measurement = kind.measure(the_spec, obs, 0, kind.host_inputs(the_spec, the_truth))
    return kind.judge(the_spec, obs, the_truth, Measured(0, data=measurement))


def test_profile_budget_lowers_the_checks_own(fixture_rubric, synthetic_mnist):
    the_spec = planned(fixture_rubric, synthetic_mnist, epochs=4, test_subset=100)
    assert (the_spec.train_subset, the_spec.test_subset, the_spec.epochs) == (600, 100, 2)
    assert the_spec.run.dataset == "mnist" and Path(the_spec.run.root).is_dir()


def test_a_profile_never_changes_the_rate_a_student_loop_gets_and_says_what_it_cut(fixture_rubric, synthetic_mnist):
    """A rate tuned for a shorter run made a correct SGD with momentum diverge: a profile may cut
    epochs and images, never the learning rate, and the message names what it cut."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="lr"):
        profiles.Profile.model_validate({"epochs": 2, "lr": 0.3})
    own = spec(**{**STUDENT, "train_args": ["$network", "$epochs", "$lr"], "min_accuracy": 0.6})
    the_spec = profiles.planned_spec(fixture_rubric, own, "quick", synthetic_mnist)
    assert the_spec.lr == own.lr
    seen: list[float] = []
    namespace = solution() | {"seen": seen}
    exec("def train(network, epochs, lr):\n    seen.append(lr)\n    return len(train_loader)\n", namespace)
    run_probe(the_spec, namespace)
    assert seen == [own.lr]
    said = profiles.changes(own, the_spec)
    assert said.startswith("profile quick") and "the harness's loaders (batch size" in said


def test_flatten_gives_a_network_of_flat_inputs_one_row_per_image(fixture_rubric, synthetic_mnist):
    from torch import nn

    the_spec = planned(fixture_rubric, synthetic_mnist, flatten=True)
    flat_only = {"make_net": lambda n_in, n_out: nn.Linear(n_in, n_out)}  # fails on [N, 1, 28, 28]
    assert judged(fixture_rubric, synthetic_mnist, the_spec, run_probe(the_spec, flat_only)).fraction == 1.0


def test_harness_trainer_probe_captures_the_untrained_network_and_the_measure_stage_trains_it(fixture_rubric,
                                                                                              synthetic_mnist):
    the_spec = planned(fixture_rubric, synthetic_mnist)
    obs = run_probe(the_spec, solution())
    assert (obs.train_images, obs.epochs, obs.device) == (600, 2, "cpu")  # the student's process trains nothing
    captured = obs.models[0]
    # the eval-mode graph it is scored with, then one training-mode graph per batch size of the loop (600 = 9 * 64 + 24)
    assert captured.input_shapes == [[256, 1, 28, 28], [64, 1, 28, 28], [24, 1, 28, 28]]
    assert captured.modes == ["eval", "train", "train"]
    assert all(w.values is not None for w in captured.weights)  # the initial weights travel whole
    the_truth = profiles.truth_for(fixture_rubric, the_spec, "quick", synthetic_mnist)
    measurement = checks.get("accuracy").measure(the_spec, obs, 0, {"images": the_truth.images})
    assert measurement.problems == [""] and measurement.trained_on == "cpu" and measurement.seconds > 0
    before, after = (score(row, the_truth.labels, 10).accuracy for row in (measurement.initial[0],
                                                                          measurement.predictions[0]))
    assert before < 0.3 < 0.6 < after, (before, after)  # chance as built; trained by the measure stage
    assert the_truth.scored_on == "200 held-out synthetic images"
    verdict = judged(fixture_rubric, synthetic_mnist, the_spec, obs)
    assert verdict.fraction == 1.0 and "on 200 held-out synthetic images" in verdict.message
    assert verdict.review is None and "ended on" not in verdict.message


class SmallCnn:
    """Built in the test's namespace: convolution, batch norm, dropout, a linear head. Training mode
    matters to each (the running statistics, the masks), so replaying its graphs must match them."""

    source = (
        "import torch\n"
        "from torch import nn\n"
        "def make_net(n_in, n_out):\n"
        "    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),\n"
        "                         nn.Flatten(), nn.Dropout(0.25), nn.Linear(4 * 14 * 14, n_out))\n")

    @classmethod
    def namespace(cls) -> dict[str, Any]:
        namespace: dict[str, Any] = {"__name__": "student"}
        exec(compile(cls.source, "student.py", "exec"), namespace)
        return namespace


class SmallCnnInPlace(SmallCnn):
    """The same network written as many cifar10 students write theirs: its activations in place
    (``ReLU(inplace=True)``) and a skip connection added with ``+=``."""

    source = (
        "import torch\n"
        "from torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, n_out):\n"
        "        super().__init__()\n"
        "        self.conv, self.bn, self.act = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True)\n"
        "        self.skip = nn.Conv2d(1, 4, 1)\n"
        "        self.head = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25), nn.Linear(4 * 14 * 14, n_out))\n"
        "    def forward(self, x):\n"
        "        out = self.bn(self.conv(x))\n"
        "        out += self.skip(x)\n"
        "        return self.head(self.act(out))\n"
        "def make_net(n_in, n_out):\n"
        "    return Net(n_out)\n")


@pytest.mark.parametrize("network", [SmallCnn, SmallCnnInPlace])
def test_the_measure_stage_trains_exactly_as_the_harness_trains_the_network_itself(fixture_rubric, synthetic_mnist,
                                                                                   network):
    """Bit for bit: the same seed, data and loop on the network as built and on its replayed graphs
    give the same predictions (so calibrations made either way agree)."""
    import torch

    from grader import numerics, train as harness
    from grader.checks.accuracy import _images, _inputs, model_inputs

    the_spec = planned(fixture_rubric, synthetic_mnist, epochs=2, lr=0.05)
    namespace = network.namespace()
    built: list[Any] = []
    namespace["make_net"] = lambda *args, make=namespace["make_net"]: built.append(make(*args)) or built[-1]
    obs = run_probe(the_spec, namespace)
    assert obs.channels_last  # a Conv2d: the loop trains it channels-last, and its graphs were traced so
    the_truth = profiles.truth_for(fixture_rubric, the_spec, "quick", synthetic_mnist)
    measured = measured_predictions(fixture_rubric, synthetic_mnist, the_spec, obs)[0]
    x, y = _images(the_spec, train=True)
    settings = {"epochs": 2, "batch_size": 64, "lr": 0.05, "seed": the_spec.run.train_seed}
    with numerics.pinned():
        model = harness.train(built[0], _inputs(the_spec, x, as_float=False), y, settings, device="cpu").model
    with torch.no_grad():
        direct = model.eval()(model_inputs(the_spec, torch.from_numpy(the_truth.images))).argmax(1).numpy()
    assert np.array_equal(measured, direct)
    assert score(direct, the_truth.labels, 10).accuracy > 0.5


def test_a_network_that_arrives_trained_keeps_its_points_and_is_put_before_a_person(fixture_rubric, synthetic_mnist):
    """Weights trained by the student's own code before the harness saw them: the network does
    reach the accuracy, so it passes; that it did so untrained by the harness is a person's call."""
    import torch

    from grader.checks.accuracy import _images, _inputs

    the_spec = planned(fixture_rubric, synthetic_mnist)
    x, y = _images(the_spec, train=True)
    namespace = solution()
    make = namespace["make_net"]

    def trained_in_its_constructor(n_in, n_out):
        network = make(n_in, n_out)
        optimizer = torch.optim.SGD(network.parameters(), lr=0.5)
        for _ in range(30):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(network(_inputs(the_spec, x, as_float=True)), y).backward()
            optimizer.step()
        return network

    namespace["make_net"] = trained_in_its_constructor
    verdict = judged(fixture_rubric, synthetic_mnist, the_spec, run_probe(the_spec, namespace))
    assert verdict.fraction == 1.0
    assert verdict.review and verdict.review.startswith("before the harness trained it, the network as the student's "
                                                        "code built it already scored"), verdict.review


def test_a_training_graph_that_is_missing_or_traced_on_another_batch_is_not_trained(fixture_rubric, synthetic_mnist):
    the_spec = planned(fixture_rubric, synthetic_mnist)
    obs = run_probe(the_spec, solution())
    the_truth = profiles.truth_for(fixture_rubric, the_spec, "quick", synthetic_mnist)
    short = obs.models[0].model_copy(update={"input_shapes": obs.models[0].input_shapes[:2],
                                             "modes": obs.models[0].modes[:2], "graphs": obs.models[0].graphs[:2],
                                             "graph_problems": obs.models[0].graph_problems[:2]})
    other = obs.models[0].model_copy(update={"input_shapes": [[256, 1, 28, 28], [32, 1, 28, 28], [24, 1, 28, 28]]})
    for captured in (short, other):
        changed = obs.model_copy(update={"models": [captured]})
        measurement = checks.get("accuracy").measure(the_spec, changed, 0, {"images": the_truth.images})
        assert measurement.predictions == [None] and "no training-mode graph for a batch of" in measurement.problems[0]
        verdict = checks.get("accuracy").judge(the_spec, changed, the_truth, Measured(0, data=measurement))
        assert verdict.fraction == 0 and verdict.review and "not measured" in verdict.message


def test_draws_train_from_different_seeds_and_the_first_is_the_single_draw(fixture_rubric, synthetic_mnist):
    one, several = planned(fixture_rubric, synthetic_mnist), planned(fixture_rubric, synthetic_mnist, draws=3)
    single = measured_predictions(fixture_rubric, synthetic_mnist, one, run_probe(one, solution()))[0]
    three = measured_predictions(fixture_rubric, synthetic_mnist, several, run_probe(several, solution()))
    assert three.shape == (3, 200) and np.array_equal(three[0], single)
    assert not np.array_equal(three[1], three[0]) and not np.array_equal(three[2], three[1])


@pytest.mark.parametrize("needed, trained", [(0.6, 1), (0.999, 3)])
def test_the_measure_stage_trains_further_draws_only_after_a_first_that_falls_short(fixture_rubric, synthetic_mnist,
                                                                                     needed, trained):
    the_spec = planned(fixture_rubric, synthetic_mnist, draws=3, min_accuracy=needed)
    obs = run_probe(the_spec, solution())
    the_truth = profiles.truth_for(fixture_rubric, the_spec, "quick", synthetic_mnist)
    given = checks.get("accuracy").host_inputs(the_spec, the_truth)
    assert given["needed"] == needed and np.array_equal(given["labels"], the_truth.labels)
    measurement = checks.get("accuracy").measure(the_spec, obs, 0, given)
    assert len(measurement.predictions) == trained
    verdict = checks.get("accuracy").judge(the_spec, obs, the_truth, Measured(0, data=measurement))
    assert verdict.fraction == (1.0 if trained == 1 else 0.0) and not verdict.review, verdict.message
    assert ("in the first training" if trained == 1 else "median accuracy") in verdict.message


def test_the_same_seed_gives_the_same_predictions(fixture_rubric, synthetic_mnist):
    the_spec = planned(fixture_rubric, synthetic_mnist)
    first, second = (measured_predictions(fixture_rubric, synthetic_mnist, the_spec, run_probe(the_spec, solution()))
                     for _ in range(2))
    assert np.array_equal(first, second)


def test_student_loop_trains_on_the_harness_loaders_in_its_globals(fixture_rubric, synthetic_mnist):
    namespace = solution()
    the_spec = planned(fixture_rubric, synthetic_mnist, **STUDENT)
    obs = run_probe(the_spec, namespace)
    assert judged(fixture_rubric, synthetic_mnist, the_spec, obs).fraction == 1.0
    assert namespace["train_loader"] is None  # the student's globals are back


def test_a_loader_global_under_the_students_own_name_is_replaced_too(fixture_rubric, synthetic_mnist):
    """data_globals keys that name a rubric target follow its aliases: `trainloader` is the loader."""
    source = (FIXTURE / "reference" / "solution.py").read_text().replace("train_loader", "trainloader")
    namespace: dict[str, Any] = {"__name__": "student"}
    exec(compile(source, "student.py", "exec"), namespace)
    the_spec = planned(fixture_rubric, synthetic_mnist, **STUDENT)
    assert judged(fixture_rubric, synthetic_mnist, the_spec, run_probe(the_spec, namespace)).fraction == 1.0
    assert namespace["trainloader"] is None


def test_a_loop_that_reads_none_of_the_globals_is_told_how_to_fix_it(fixture_rubric, synthetic_mnist):
    def train(network, epochs, lr):
        raise AssertionError("must not be called: it would train on data of its own")

    the_spec = planned(fixture_rubric, synthetic_mnist, **STUDENT)
    with pytest.raises(StudentRaised) as caught:
        run_probe(the_spec, {"make_net": solution()["make_net"], "train": train})
    assert "reads none of the globals test_loader, train_loader" in str(caught.value.exc)
    assert caught.value.during == "handing the harness's data to the training function"


def test_student_loop_gets_loaders_as_arguments(fixture_rubric, synthetic_mnist):
    def fit(model, epochs, loader):
        import torch

        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(epochs):
            for x, t in loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x), t).backward()
                optimizer.step()

    the_spec = planned(fixture_rubric, synthetic_mnist, **{**STUDENT, "data_globals": {},
                                                           "train_args": ["$network", "$epochs", "$train_data"]})
    obs = run_probe(the_spec, {"make_net": solution()["make_net"], "train": fit})
    assert judged(fixture_rubric, synthetic_mnist, the_spec, obs).fraction == 1.0


def test_a_loop_that_never_steps_fails_with_the_confusion_matrix(fixture_rubric, synthetic_mnist):
    namespace = solution()
    exec("def train(network, epochs, lr):\n    return [len(train_loader)]\n", namespace)  # reads, never steps
    the_spec = planned(fixture_rubric, synthetic_mnist, **STUDENT)
    verdict = judged(fixture_rubric, synthetic_mnist, the_spec, run_probe(the_spec, namespace))
    assert verdict.fraction == 0.0 and "needed 0.600" in verdict.message
    assert len(verdict.table) == 10 and sum(row["images"] for row in verdict.table) == 200


def test_a_builder_returning_no_module_is_the_students_error(fixture_rubric, synthetic_mnist):
    the_spec = planned(fixture_rubric, synthetic_mnist)
    with pytest.raises(StudentRaised) as caught:
        run_probe(the_spec, {"make_net": lambda n_in, n_out: "a network"})
    assert "returned a str, not a torch.nn.Module" in str(caught.value.exc)


def test_the_probe_leaves_the_deterministic_settings_as_it_found_them(fixture_rubric, synthetic_mnist):
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    run_probe(planned(fixture_rubric, synthetic_mnist), solution())
    assert torch.are_deterministic_algorithms_enabled() == before
