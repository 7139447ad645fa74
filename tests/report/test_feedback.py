"""The student pages in OUT/feedback/: visible checks only, no staff notes, until the rubric's
release time; from then on the hidden checks too. The staff pages are unchanged."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from grader import report, rubric
from grader.errors import RubricError
from grader.results import SourceFlag
from tests.report.test_html import result_with


def flagged():
    result = result_with(flags=[SourceFlag(rule="grader-import", where="cell 2, line 1", line="import grader",
                                           what="imports the grader")])
    checks = [c.model_copy(update={"review": "forbidden call, look"}) if c.id == "other" else c for c in result.checks]
    return result.model_copy(update={"checks": checks})


def releasing(tiny_rubric, when: datetime):
    model = tiny_rubric.model.model_copy(update={"feedback": rubric.FeedbackSpec(release_hidden_after=when)})
    return dataclasses.replace(tiny_rubric, model=model)


def test_before_the_release_a_student_page_has_no_hidden_check_and_no_staff_note(tmp_path, tiny_rubric):
    report.write_batch([flagged()], tiny_rubric, tmp_path)
    student = (tmp_path / "feedback" / "mallory.html").read_text()
    staff = (tmp_path / "submissions" / "mallory.html").read_text()
    for secret in ("secret", "3136", "forbidden call", "import grader", "Flagged for review", "all submissions"):
        assert secret not in student
        assert secret in staff
    assert "1 / 2" in student  # the visible checks' points
    assert "1 hidden check(s) worth 1 point(s) are graded too" in student


def test_after_the_release_the_student_page_shows_the_hidden_checks_still_without_staff_notes(tmp_path, tiny_rubric):
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    report.write_batch([flagged()], releasing(tiny_rubric, past), tmp_path)
    student = (tmp_path / "feedback" / "mallory.html").read_text()
    assert "secret" in student and "3136" in student and "1 / 3" in student
    assert "forbidden call" not in student and "import grader" not in student
    future = datetime.now(timezone.utc) + timedelta(days=3)
    report.write_batch([flagged()], releasing(tiny_rubric, future), tmp_path)
    student = (tmp_path / "feedback" / "mallory.html").read_text()
    assert "secret" not in student and f"They appear here from {future.isoformat()}" in student


def test_a_release_time_without_a_time_zone_is_refused(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("assignment: a\ntitle: t\nreference: .\nfeedback: {release_hidden_after: 2026-12-18T23:59:00}\n"
                    "targets: {x: {kind: value}}\nchecks: [{id: x, kind: answer, target: x, expected: 1}]\n")
    with pytest.raises(RubricError, match="time zone"):
        rubric.load(path)
