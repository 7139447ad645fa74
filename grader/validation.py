"""Proving a rubric: the reference itself scores full marks, and each example grades exactly as
``submissions/<id>/expected.yaml`` says.

``reference_problems`` grades the reference folder as a module-folder submission, on the same path
as every student: a check it does not pass is the rubric's or the reference's error (a wrong
literal expectation, a target the reference does not resolve, a reference that does not import),
found there once instead of on every student. The manifest gives every example's status and every
check's points; ``example_problems`` names each difference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from grader.errors import GraderError
from grader.results import SubmissionResult
from grader.rubric import LoadedRubric

MANIFEST = "expected.yaml"
POINTS_TOLERANCE = 1e-3  # partial points are rounded to 4 decimals (2/3 of 2 points is 0.6667)


def examples_folder(rubric: LoadedRubric) -> Path:
    """``submissions/<assignment>/`` next to the rubric's folder."""
    return rubric.path.parent.parent / "submissions" / rubric.model.assignment


class Expected(BaseModel):
    """One example's entry: the run's status and the points of every check (``why`` is for people);
    ``review`` lists the checks the grader must leave to a person (``needs-review``, 0 points until
    someone decides), where the work is beyond what it can decide."""

    model_config = ConfigDict(extra="forbid")
    why: str = ""
    status: str
    checks: dict[str, float]
    review: list[str] = []


def load_manifest(folder: Path) -> dict[str, Any]:
    """``expected.yaml`` as plain dicts, or ``GraderError`` naming the line or the entry that is wrong."""
    path = folder / MANIFEST
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise GraderError(f"not valid YAML: {getattr(exc, 'problem', exc)}",
                          where=f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path),
                          hint="fix the line named; every example is `name: {why, status, checks: {check-id: points}}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GraderError(f"cannot read the manifest: {exc}", where=str(path)) from None
    try:
        entries = TypeAdapter(dict[str, Expected]).validate_python(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise GraderError(f"the manifest does not have the expected shape: {problems}", where=str(path),
                          hint="every example is `name: {why, status, checks: {check-id: points}}`") from None
    return {name: entry.model_dump() for name, entry in entries.items()}


def reference_problems(result: SubmissionResult) -> list[str]:
    """Every counted check the reference, graded as a submission, does not pass; empty when it
    scores full marks. Checks skipped for want of something on this machine are not counted."""
    problems = [f"the reference's run ended {result.status}: {result.message}"] if result.status != "ok" else []
    problems += [f"{c.id}: {c.outcome}: {c.message}" for c in result.checks if c.counted and c.outcome != "passed"]
    return problems


def example_problems(manifest: dict[str, Any], graded: dict[str, SubmissionResult]) -> list[str]:
    """Every way the graded examples (by file name) differ from the manifest; empty when none."""
    problems = [f"{name}: listed in {MANIFEST} but not graded" for name in sorted(set(manifest) - set(graded))]
    problems += [f"{name}: graded but not listed in {MANIFEST}" for name in sorted(set(graded) - set(manifest))]
    for name in sorted(set(manifest) & set(graded)):
        want, result = manifest[name], graded[name]
        if result.status != want["status"]:
            problems.append(f"{name}: status {result.status!r}, expected {want['status']!r} ({result.message})")
        got = {c.id: c for c in result.checks}
        if set(got) != set(want["checks"]):
            problems.append(f"{name}: checks {sorted(got)} differ from the manifest's {sorted(want['checks'])}")
            continue
        for check_id, points in want["checks"].items():
            check = got[check_id]
            if abs(check.points - points) > POINTS_TOLERANCE:
                problems.append(f"{name}: {check_id}: {check.points:g} points, expected {points:g} "
                                f"({check.outcome}: {check.message})")
            if (check.outcome == "needs-review") != (check_id in want.get("review", [])):
                expected = "needs-review" if check_id in want.get("review", []) else "a decision"
                problems.append(f"{name}: {check_id}: {check.outcome}, expected {expected} ({check.message})")
    return problems
