"""The job the sandbox receives (readable by the student's code) holds only what the probes need."""

from __future__ import annotations

import json
from typing import Any

import pytest

from grader import pipeline, rubric, sandbox, submission
from grader.checks.param_count import ParamCountSpec

NEVER_SENT = {"title", "points", "visibility", "requires", "partial_credit", "expected", "min_accuracy",
              "threshold", "floor", "atol", "rtol", "abs_tol", "rel_tol"}


def keys_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


def written_job(assignment: str, monkeypatch: pytest.MonkeyPatch) -> tuple[rubric.LoadedRubric, dict[str, Any], str]:
    """The job the runner would read for the reference graded against a bundled rubric, planned
    by the pipeline itself (quick profile), as parsed JSON and as the text the file holds."""
    loaded = rubric.load(rubric.find(assignment))
    prep = pipeline.prepare(loaded, pipeline.Settings(profile="quick", isolation="process"))
    jobs: list[sandbox.Job] = []

    def run(job: sandbox.Job) -> sandbox.RunResult:
        jobs.append(job)
        return sandbox.RunResult(status="no-result", message="not run", isolation="process", seconds=0.0)

    monkeypatch.setattr(sandbox, "run", run)
    pipeline.grade_one(submission.single(loaded.reference_dir), prep)
    assert len(jobs) == 1
    text = json.dumps(sandbox._runner_job(jobs[0], "/work", "/out", "/job.json"))
    return loaded, json.loads(text), text


@pytest.mark.parametrize("assignment", ["cifar10-cnn", "resmlp-densenet"])
def test_the_job_holds_no_title_points_threshold_or_answer(assignment, monkeypatch):
    loaded, job, text = written_job(assignment, monkeypatch)
    checks = loaded.model.checks
    hidden = [c for c in checks if c.visibility == "hidden"]
    assert hidden, f"{assignment} has no hidden check to hide"
    for check in hidden:
        assert check.title and check.title not in text, check.id
    assert not NEVER_SENT & keys_in(job["plan"]["checks"])
    assert set(job["plan"]) == {"seed", "targets", "mapping", "checks"}  # the profile stays on the host
    assert [c["id"] for c in job["plan"]["checks"]] == [c.id for c in checks]  # hidden checks are probed too
    for check in checks:
        if isinstance(check, ParamCountSpec) and check.expected != "reference":
            assert str(check.expected) not in text, check.id
    if assignment == "resmlp-densenet":  # an accuracy check keeps its planned data and budget
        accuracy = next(c for c in job["plan"]["checks"] if c["kind"] == "accuracy")
        assert {"run", "epochs", "train_subset", "test_subset"} <= set(accuracy)
