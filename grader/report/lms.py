"""Grades in the forms learning-management systems import.

- **Canvas**: the gradebook import CSV. Its first five columns identify the student (``Student``,
  ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``; Canvas matches rows on ``ID``, else the
  SIS ids), then one column per assignment, whose header Canvas matches against an existing
  assignment's name. The second row, ``Points Possible``, gives the column's maximum.
- **Moodle**: the gradebook's CSV import (Grades > Import > CSV file). Moodle lets the instructor
  map any column to a user field and another to the grade item, so the file carries every id the
  roster has (``Email address``, ``ID number``, ``Username``) beside ``Full name``, the grade and
  a ``Feedback`` column.
- **Gradescope**: one ``results.json`` per submission as its autograder specification reads it
  (``score``, ``tests`` with ``name``, ``score``, ``max_score``, ``status``, ``visibility`` and
  ``output``), the same document ``grader gradescope`` writes inside Gradescope.

The CSV exports need the course roster (``grader.roster``): a grade row is only useful with the
id the LMS matches it on. Students without a submission get an empty cell, which both LMSs read
as "leave this grade alone", never a zero the grader did not give; submissions that match no
student, or two that match one student, are left out and listed by the caller for a person.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from grader.report.exporters import spreadsheet_cell
from grader.report.html import format_points
from grader.results import CheckResult, SubmissionResult
from grader.roster import Matching, Roster

CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_IDENTITY = ["Full name", "Email address", "ID number", "Username"]
# Gradescope's visibility for a check: a hidden check is shown once the instructor publishes grades.
GRADESCOPE_VISIBILITY = {"visible": "visible", "hidden": "after_published"}


def scaled(result: SubmissionResult, out_of: float | None) -> float:
    """The score in the LMS's points: as graded, or rescaled to ``out_of``."""
    return result.score if out_of is None else out_of * result.share


def canvas_csv(results: list[SubmissionResult], roster: Roster, matching: Matching, column: str,
               out_of: float | None = None) -> str:
    """Canvas's gradebook import: one row per roster student, in roster order."""
    by_student = _results_by_student(results, matching)
    possible = out_of if out_of is not None else max((r.max_score for r in results), default=0.0)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*CANVAS_IDENTITY, column])
    writer.writerow(["Points Possible", "", "", "", "", format_points(possible)])
    for student in roster.students:
        result = by_student.get(student)
        grade = "" if result is None else format_points(scaled(result, out_of))
        writer.writerow([spreadsheet_cell(student.name), student.lms_id, student.sis_id, student.login,
                         spreadsheet_cell(student.section), grade])
    return buf.getvalue()


def moodle_csv(results: list[SubmissionResult], roster: Roster, matching: Matching, column: str,
               out_of: float | None = None) -> str:
    """Moodle's gradebook CSV import: one row per roster student, with a short feedback line."""
    by_student = _results_by_student(results, matching)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*MOODLE_IDENTITY, column, "Feedback"])
    for student in roster.students:
        result = by_student.get(student)
        grade = "" if result is None else format_points(scaled(result, out_of))
        writer.writerow([spreadsheet_cell(student.name), student.email, student.sis_id, student.login, grade,
                         "" if result is None else spreadsheet_cell(_feedback(result))])
    return buf.getvalue()


def gradescope_results(result: SubmissionResult) -> dict[str, Any]:
    """Gradescope's ``results.json`` for one submission: every check a test, hidden ones shown
    after grades are published; the score is the grader's (Gradescope's own sum would count a
    check left out of the score for want of something on the grading machine)."""
    tests = [_gradescope_test(number, check) for number, check in enumerate(result.checks, start=1)]
    document: dict[str, Any] = {"score": result.score, "execution_time": round(result.seconds, 1),
                                "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}
    if result.status != "ok":
        document["output"] = f"{result.status}: {result.message}"
    return document


def _gradescope_test(number: int, check: CheckResult) -> dict[str, Any]:
    test: dict[str, Any] = {"name": check.title or check.id, "number": str(number),
                            "score": check.points if check.counted else 0.0,
                            "max_score": check.max_points if check.counted else 0.0,
                            "status": "passed" if check.outcome == "passed" else "failed",
                            "visibility": GRADESCOPE_VISIBILITY[check.visibility],
                            "output": check.message, "tags": [check.kind]}
    if not check.counted:
        test["output"] = f"not counted: {check.message}"
    return test


def _results_by_student(results: list[SubmissionResult], matching: Matching) -> dict:
    return {matching.matched[r.student]: r for r in results if r.student in matching.matched}


def _feedback(result: SubmissionResult) -> str:
    """The total, then what each visible check that lost points says; hidden ones only counted,
    as the student's page shows them."""
    lost = [c for c in result.checks if c.counted and c.points < c.max_points]
    total = f"{format_points(result.score)}/{format_points(result.max_score)}"
    lines = [total if result.status == "ok" else f"{total} ({result.status}: {result.message})"]
    lines += [f"{c.title or c.id}: {c.message}" for c in lost if c.visibility == "visible"]
    if hidden := sum(c.visibility == "hidden" for c in lost):
        lines.append(f"{hidden} hidden check(s) lost points")
    return "\n".join(lines)
