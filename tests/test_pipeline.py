"""grade_one never raises: a harness failure costs one row, marked as the grader's fault."""

from __future__ import annotations

from grader import pipeline, submission


def test_a_harness_bug_becomes_a_sandbox_error_row(tmp_path, tiny_prepared, monkeypatch):
    mod = tmp_path / "innocent.py"
    mod.write_text("answer = 42\n")

    def broken_stage(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(submission, "stage", broken_stage)
    result = pipeline.grade_one(submission.single(mod), tiny_prepared)
    assert result.status == "sandbox-error"
    assert result.message == "the grader failed on this submission: OSError: disk on fire"
    assert {c.outcome for c in result.checks} == {"grader-error"}
    assert result.score == 0 and result.max_score == 6
    assert "disk on fire" in result.stderr


def test_rejected_submission_keeps_every_check_with_the_reason(tmp_path, tiny_prepared):
    bad = tmp_path / "two_notebooks"
    bad.mkdir()
    (bad / "a.ipynb").write_text("{}")
    (bad / "b.ipynb").write_text("{}")
    result = pipeline.grade_one(submission.single(bad), tiny_prepared)
    assert result.status == "rejected"
    assert result.message == "several notebooks (a.ipynb, b.ipynb); submit exactly one"
    assert [c.outcome for c in result.checks] == ["skipped"] * 5
    assert result.checks[0].message == "not graded: several notebooks (a.ipynb, b.ipynb); submit exactly one"


def test_runs_side_by_side_share_the_cores_for_their_math_threads(tiny_prepared, monkeypatch):
    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 8)
    assert pipeline.shared_cores(tiny_prepared, 2).settings.limit_overrides["threads"] == 4
    assert pipeline.shared_cores(tiny_prepared, 16).settings.limit_overrides["threads"] == 1
    assert "threads" not in tiny_prepared.settings.limit_overrides  # the shared preparation is left alone
    fixed = pipeline.shared_cores(tiny_prepared, 2)
    assert pipeline.shared_cores(fixed, 8) is fixed  # a caller's own choice stands


def test_a_student_loops_other_trainings_run_only_after_a_first_that_fell_short(tmp_path, monkeypatch):
    """``draws: 3`` where the student's loop trains: the submission's run trains the first alone;
    one that falls short is run again with all three, and judged on them."""
    import shutil

    import yaml

    from grader import rubric, sandbox
    from tests.conftest import FIXTURES

    folder = tmp_path / "accuracy"
    shutil.copytree(FIXTURES / "accuracy", folder)
    entry = yaml.safe_load((folder / "rubric.yaml").read_text())
    entry["checks"] = [c | {"draws": 3} for c in entry["checks"] if c["id"] == "loop-accuracy"]
    (folder / "rubric.yaml").write_text(yaml.safe_dump(entry))
    prep = pipeline.prepare(rubric.load(folder / "rubric.yaml"), pipeline.Settings(profile="quick", isolation="process"))
    runs: list[list[int | None]] = []
    real_run = sandbox.run

    def counted(job):
        if job.entry.form != "measure":
            runs.append([c["run"]["trained_draws"] for c in job.plan["checks"]])
        return real_run(job)

    monkeypatch.setattr(sandbox, "run", counted)
    good = pipeline.grade_one(submission.single(folder / "submissions" / "good.py"), prep)
    assert runs == [[1]], runs
    assert good.checks[0].points == 2 and "in the first training (a first that fell short" in good.checks[0].message
    runs.clear()
    broken = pipeline.grade_one(submission.single(folder / "submissions" / "never_trains.py"), prep)
    assert runs == [[1], [None]], runs
    check = broken.checks[0]
    assert check.points == 0 and not check.review, check.message
    assert check.message.startswith("median accuracy") and "of 3 trainings from different seeds" in check.message
