"""Grade one submission, or a batch: the stages strung together, nothing more.

    rubric ─► submission ─► stage files ─► sandbox.run(probes) ─► judge ─► score ─► result
"""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from grader import __version__, data, references, sandbox, submission
from grader.checks.base import Observation
from grader.judging import has_invalid_observation, judge_all
from grader.results import CheckResult, SubmissionResult
from grader.rubric import LoadedRubric
from grader.scoring import totals


@dataclass
class Settings:
    """How to grade, beyond the rubric: where data is, and limits overridden on the command line."""

    data_root: Path | None = None
    allow_synthetic: bool = True
    limit_overrides: dict[str, float] = field(default_factory=dict)
    keep_work: bool = False
    isolation: str = "auto"


@dataclass
class Prepared:
    """What every submission of a batch shares, computed once."""

    rubric: LoadedRubric
    expected: dict[str, Observation]
    data: data.DataRoot
    settings: Settings


def prepare(rubric: LoadedRubric, settings: Settings) -> Prepared:
    return Prepared(rubric=rubric, expected=references.expectations(rubric),
                    data=data.resolve(rubric.model.data.dataset, settings.data_root, settings.allow_synthetic),
                    settings=settings)


def grade_one(sub: submission.Submission, prep: Prepared, slot: sandbox.Slot | None = None) -> SubmissionResult:
    """Grade one submission in ``slot``; every failure becomes a status on the result, never an exception."""
    start = time.monotonic()
    try:
        return _grade(sub, prep, start, slot or sandbox.Slot())
    except Exception as exc:  # noqa: BLE001 - a harness bug must cost one row, not the batch
        result = _unrun(sub, prep, "sandbox-error", f"the grader failed on this submission: "
                        f"{type(exc).__name__}: {exc}", start)
        for check in result.checks:
            check.outcome, check.message = "grader-error", f"not graded: {result.message}"
        result.stderr = traceback.format_exc()[-4000:]
        return result


def _grade(sub: submission.Submission, prep: Prepared, start: float, slot: sandbox.Slot) -> SubmissionResult:
    rubric = prep.rubric.model
    base = Path(tempfile.mkdtemp(prefix=f"grader-{sub.student[:40]}-"))
    try:
        if sub.problem:
            return _unrun(sub, prep, "rejected", sub.problem, start)
        try:
            entry = submission.stage(sub, base / "work", rubric.submission.modules)
        except submission.Rejected as exc:
            return _unrun(sub, prep, "rejected", str(exc), start)
        if entry.form not in rubric.submission.forms:
            return _unrun(sub, prep, "rejected", f"submitted as a {entry.form}; this assignment accepts "
                          f"{' or '.join(rubric.submission.forms)}", start)
        if prep.data.path is not None:
            link = entry.root / rubric.data.dirname
            if not link.exists():
                link.symlink_to(prep.data.path, target_is_directory=True)
        limits = rubric.limits.model_dump() | prep.settings.limit_overrides
        plan = {"seed": rubric.seed, "targets": {k: t.model_dump(mode="json") for k, t in rubric.targets.items()},
                "checks": [c.model_dump(mode="json") for c in rubric.checks]}
        run = sandbox.run(sandbox.Job(entry=entry, plan=plan, limits=limits, out_dir=base / "out",
                                      slot=slot))
        results = judge_all(rubric.checks, run.records, run.arrays, prep.expected, run.status, run.message)
        status = "invalid-output" if run.status == "ok" and has_invalid_observation(results) else run.status
        ex = run.execution
        return _assemble(sub, prep, results, status, run.message, start, isolation=run.isolation,
                         form=entry.form, cells=[c.model_dump() for c in ex.cells] if ex else [],
                         modules=[m.model_dump() for m in ex.modules] if ex else [],
                         removed_commands=ex.removed_commands if ex else [], stdout=run.stdout, stderr=run.stderr)
    finally:
        if not prep.settings.keep_work:
            shutil.rmtree(base, ignore_errors=True)


def grade_batch(subs: list[submission.Submission], prep: Prepared,
                on_result: Callable[[SubmissionResult], None] | None = None) -> list[SubmissionResult]:
    """Grade submissions one after another; one bad submission never stops the batch."""
    results = []
    for sub in subs:
        result = grade_one(sub, prep)
        results.append(result)
        if on_result:
            on_result(result)
    return results


def _unrun(sub: submission.Submission, prep: Prepared, status: str, message: str, start: float) -> SubmissionResult:
    results = [CheckResult(id=c.id, kind=c.kind, title=c.title, visibility=c.visibility, outcome="skipped",
                           points=0.0, max_points=c.points, message=f"not graded: {message}")
               for c in prep.rubric.model.checks]
    return _assemble(sub, prep, results, status, message, start, isolation="none")


def _assemble(sub: submission.Submission, prep: Prepared, results: list[CheckResult], status: str, message: str,
              start: float, **extra: object) -> SubmissionResult:
    t = totals(results)
    return SubmissionResult(
        student=sub.student, source=str(sub.source), content_hash=sub.content_hash, status=status, message=message,
        data=prep.data.origin, score=t.score, max_score=t.max_score, visible_score=t.visible_score,
        visible_max=t.visible_max, checks=results, seconds=round(time.monotonic() - start, 2),
        assignment=prep.rubric.model.assignment, rubric_hash=prep.rubric.text_hash,
        grader_version=__version__, **extra)  # type: ignore[arg-type]
