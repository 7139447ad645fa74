"""Calibration: the pass rule, the file, a 2-seed calibration of the tiny accuracy rubric on the
quick profile, and grades that use it (or say how to make it)."""

from __future__ import annotations

import shutil

import pytest
import yaml

from grader import calibration, data, numerics, pipeline, profiles, rubric, submission
from grader.errors import GraderError
from tests.conftest import FIXTURES, run_cli

FIXTURE = FIXTURES / "accuracy"


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> rubric.LoadedRubric:
    """A copy of the accuracy rubric, calibrated with 2 seeds on the quick profile."""
    folder = tmp_path_factory.mktemp("accuracy") / "accuracy"
    shutil.copytree(FIXTURE, folder)
    loaded = rubric.load(folder / "rubric.yaml")
    calibration.calibrate(loaded, seeds=2, requested_profile="quick", device="cpu")  # sandboxes here get no GPU
    return loaded


def test_rule_is_the_lowest_seed_less_two_standard_errors_at_most_mean_less_floor():
    accuracies = [0.90, 0.92, 0.94, 0.96]  # mean 0.93, lowest 0.90; 2 SE on 100 images: 0.06
    rule = calibration.calibrated_threshold(accuracies, 100, 0.02)
    assert rule.needed == pytest.approx(0.84) and rule.why == "calibrated over 4 seeds: lowest 0.900 less 2 SE 0.060"
    stable = calibration.calibrated_threshold([0.999, 1.0, 1.0], 10_000, 0.05)
    assert stable.needed == pytest.approx(0.99967 - 0.05, abs=1e-5) and "less floor 0.050" in stable.why


def test_a_check_judged_on_draws_fails_only_when_the_first_and_most_of_all_fall_short():
    assert calibration.judged_rate(0.01, 1) == 0.01
    assert calibration.judged_rate(0.01, 3) == pytest.approx(0.01 * (1 - 0.99 ** 2))  # first, and one of two more
    assert calibration.judged_rate(0.1, 5) == pytest.approx(0.1 * (1 - 0.9 ** 4 - 4 * 0.1 * 0.9 ** 3))  # 2 of 4 more
    assert calibration.judged_rate(1.0, 3) == 1.0 and calibration.judged_rate(0.0, 3) == 0.0


def test_false_fail_estimate_follows_a_normal_fit_of_the_seeds():
    accuracies = [0.8, 0.9]  # mean 0.85, sample std 0.0707
    assert calibration.false_fail_estimate(accuracies, 0.85) == pytest.approx(0.5)
    assert calibration.false_fail_estimate(accuracies, 0.85 - 3 * 0.070711) == pytest.approx(0.00135, rel=1e-3)
    assert calibration.false_fail_estimate([0.9, 0.9], 0.8) == 0.0


def test_calibration_writes_a_readable_file_next_to_the_rubric(calibrated):
    path = calibrated.path.parent / "calibration" / "rubric.yaml"
    text = path.read_text()
    assert text.startswith("# Calibrated accuracy thresholds, written by `grader calibrate`")
    run = yaml.safe_load(text)["runs"][0]
    assert (run["profile"], run["device"], run["data"], run["seeds"]) == ("quick", "cpu", "synthetic", [0, 1])
    assert run["grader_version"] and run["date"][:2] == "20"
    stats = run["checks"]["harness-accuracy"]
    assert list(run["checks"]) == ["harness-accuracy"]  # the absolute check needs no calibration
    assert len(stats["accuracies"]) == 2 and stats["test_images"] == 200
    assert stats["mean"] == pytest.approx(sum(stats["accuracies"]) / 2, abs=1e-6) and stats["std"] >= 0
    assert stats["threshold"] <= min(stats["accuracies"]) and 0 <= stats["false_fail_estimate"] <= 1
    assert run["numerics"] == numerics.describe("cpu")  # the configuration it trained under


def test_seeds_give_the_same_accuracies_in_worker_processes(calibrated, tmp_path):
    """Two seeds trained side by side in two spawned workers, each on the pinned single math
    thread, reproduce the in-process calibration exactly."""
    copy = tmp_path / "accuracy"
    shutil.copytree(calibrated.path.parent, copy)
    shutil.rmtree(copy / "calibration")
    parallel = rubric.load(copy / "rubric.yaml")
    calibration.calibrate(parallel, seeds=2, requested_profile="quick", device="cpu", jobs=2)
    assert calibration.read(parallel).runs[0].checks == calibration.read(calibrated).runs[0].checks


def test_a_calibration_under_another_numeric_configuration_is_flagged_not_applied(calibrated, tmp_path):
    copy = tmp_path / "accuracy"
    shutil.copytree(calibrated.path.parent, copy)
    loaded = rubric.load(copy / "rubric.yaml")
    run = calibration.read(loaded).runs[0]
    calibration.write(loaded, run.model_copy(update={"numerics": run.numerics | {"threads": 2}}))
    truth = profiles.plan(loaded, data.resolve("mnist", None), "quick").expected["harness-accuracy"]
    assert truth.calibrations == {}
    assert "another numeric configuration (threads 2 there, 1 here)" in truth.stale["cpu"]


def test_calibrating_again_replaces_the_run_of_the_same_profile_device_and_data(calibrated):
    first = calibration.read(calibrated).runs[0]
    path = calibration.write(calibrated, first.model_copy(update={"date": "2030-01-01T00:00:00+00:00"}))
    runs = calibration.read(calibrated).runs
    assert len(runs) == 1 and runs[0].date.startswith("2030") and path.is_file()
    calibration.write(calibrated, first)


def test_one_check_can_be_calibrated_again_alone_keeping_the_others(calibrated, monkeypatch):
    first = calibration.read(calibrated).runs[0]
    kept = first.model_copy(update={"checks": {**first.checks, "other-accuracy": next(iter(first.checks.values()))}})
    calibration.write(calibrated, kept)
    try:
        check_id = next(iter(first.checks))
        calibration.calibrate(calibrated, seeds=2, requested_profile="quick", device="cpu", only={check_id})
        (run,) = calibration.read(calibrated).runs
        assert set(run.checks) == {check_id, "other-accuracy"}
        assert run.checks[check_id].accuracies == first.checks[check_id].accuracies  # same seeds, same numbers
        with pytest.raises(GraderError, match="other seeds"):
            calibration.calibrate(calibrated, seeds=3, requested_profile="quick", device="cpu", only={check_id})
        with pytest.raises(GraderError, match="no calibrated accuracy check 'nope'"):
            calibration.calibrate(calibrated, seeds=2, requested_profile="quick", device="cpu", only={"nope"})
    finally:
        calibration.write(calibrated, first)


@pytest.mark.slow  # a sandboxed run: seconds of CPU, but a child that imports torch
def test_grading_uses_the_calibration(calibrated):
    prep = pipeline.prepare(calibrated, pipeline.Settings(isolation="process", profile="quick"))
    result = pipeline.grade_one(submission.single(calibrated.path.parent / "submissions" / "never_trains.py"), prep)
    by_id = {c.id: c for c in result.checks}
    assert result.status == "ok", result.message
    assert (result.data, result.profile) == ("synthetic", "quick")
    harness, loop = by_id["harness-accuracy"], by_id["loop-accuracy"]
    # the harness's loop trains the submission's model: as good as the reference
    assert harness.outcome == "passed", harness.message
    assert "on 200 held-out synthetic images, needed" in harness.message
    assert "(calibrated over 2 seeds: " in harness.message and "trained with profile quick" in harness.message
    # its own loop never steps the optimizer: chance level
    assert loop.outcome == "failed" and "needed 0.500 (the rubric's minimum for profile quick)" in loop.message
    assert len(loop.table) == 10 and {"class", "images", "accuracy", "as 0", "as 9"} <= set(loop.table[0])


def test_a_changed_check_makes_the_calibration_stale(calibrated, tmp_path):
    copy = tmp_path / "accuracy"
    shutil.copytree(calibrated.path.parent, copy)
    (copy / "rubric.yaml").write_text((copy / "rubric.yaml").read_text().replace("lr: 0.1", "lr: 0.2"))
    changed = rubric.load(copy / "rubric.yaml")
    plan = profiles.plan(changed, data.resolve("mnist", None), "quick")
    truth = plan.expected["harness-accuracy"]
    assert truth.calibrations == {} and "out of date" in truth.stale["cpu"]
    assert plan.expected["loop-accuracy"].calibrations == {}
    done = run_cli("validate", str(copy / "rubric.yaml"), "--profile", "quick")
    assert "  STALE harness-accuracy: the calibration of profile quick on cpu" in done.stdout, done.stdout
    assert "STALE loop-accuracy" not in done.stdout  # its check did not change


def test_a_missing_calibration_names_the_command_to_run(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "accuracy")
    loaded = rubric.load(tmp_path / "accuracy" / "rubric.yaml")
    truth = profiles.plan(loaded, data.resolve("mnist", None), "quick").expected["harness-accuracy"]
    assert truth.calibrations == {} and truth.stale == {}
    assert truth.calibrate_hint == f"run `grader calibrate {loaded.path} --seeds 30 --profile quick`"


def test_calibrate_refuses_a_single_seed_and_rubrics_without_calibrated_checks(calibrated):
    with pytest.raises(GraderError, match="1 seed"):
        calibration.calibrate(calibrated, seeds=1)
    tiny = rubric.load(FIXTURES / "tiny" / "rubric.yaml")
    with pytest.raises(GraderError, match="no accuracy check with `threshold: calibrated`"):
        calibration.calibrate(tiny, seeds=2)


def test_profiles_auto_is_quick_on_synthetic_and_full_on_real_data():
    assert profiles.choose("auto", "synthetic") == "quick" and profiles.choose("auto", "real") == "full"
    assert profiles.choose("full", "synthetic") == "full"
    with pytest.raises(GraderError, match="unknown profile"):
        profiles.choose("fast", "real")


def test_cli_validate_lists_the_calibration(calibrated):
    done = run_cli("validate", str(calibrated.path), "--profile", "quick")
    assert done.returncode == 0, done.stderr
    assert "calibrated: quick on cpu (synthetic data, 2 seeds" in done.stdout and "harness-accuracy 0." in done.stdout
    assert "STALE" not in done.stdout


def test_an_interrupt_while_the_reference_trains_stops_the_calibration(tmp_path, monkeypatch):
    """Ctrl-C (or SIGTERM, which the CLI turns into KeyboardInterrupt) reaches the grader in the
    middle of the reference's training: the run stops and writes nothing, rather than the guard
    around the reference's code reporting it as the reference failing and training on."""
    from grader import train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    folder = tmp_path / "accuracy"
    shutil.copytree(FIXTURE, folder)
    monkeypatch.setattr(train, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        calibration.calibrate(rubric.load(folder / "rubric.yaml"), seeds=2, requested_profile="quick", device="cpu")
    assert not (folder / "calibration").exists()


@pytest.mark.slow  # four sandboxed runs that train
def test_a_grade_is_the_same_at_any_thread_share_and_isolation_level(calibrated):
    """--workers sets each run's share of math threads, and the isolation level changes the
    process: neither may change an accuracy (the pinned numeric configuration). Each run trains
    afresh (``remeasure``): a measurement kept from the first would make the others agree by
    construction."""
    import dataclasses

    good = submission.single(calibrated.path.parent / "submissions" / "good.py")
    seen = set()
    for threads in (1, 2):
        for isolation in ("process", "auto"):
            prep = pipeline.prepare(calibrated, pipeline.Settings(isolation=isolation, profile="quick"))
            prep = dataclasses.replace(prep, settings=dataclasses.replace(
                prep.settings, limit_overrides={"threads": threads}, remeasure=True))
            result = pipeline.grade_one(good, prep)
            assert result.numerics == numerics.describe("cpu")
            seen.add(tuple((c.id, c.points, c.message) for c in result.checks))
    assert len(seen) == 1, seen


def test_a_threshold_near_chance_or_seeds_far_apart_are_said():
    from grader.calibration import CheckStats, doubts

    def stats(accuracies: list[float], threshold: float) -> CheckStats:
        return CheckStats(mean=sum(accuracies) / len(accuracies), std=0.0, accuracies=accuracies, test_images=500,
                          threshold=threshold, fingerprint="f")

    assert doubts(stats([0.80, 0.85, 0.90], 0.76), classes=10) == []
    near_chance, = doubts(stats([0.12, 0.14, 0.15], 0.09), classes=10)
    assert near_chance.startswith("the threshold 0.090 is at or near chance (0.100 for 10 classes)")
    spread, = doubts(stats([0.44, 0.60, 0.78], 0.40), classes=10)
    assert spread.startswith("the seeds disagree widely (accuracies from 0.440 to 0.780)")
