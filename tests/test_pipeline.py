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
