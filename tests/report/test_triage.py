"""The batch page's triage: one "needs attention" list in order of urgency, pass rates over the
graded submissions only, and what each check's failures say most often."""

from __future__ import annotations

from grader.report import triage
from grader.results import CheckResult, SourceFlag
from tests.report.test_html import result_with


def check(id: str, outcome: str, message: str, **over) -> CheckResult:
    return CheckResult(id=id, kind="answer", visibility="visible", outcome=outcome, points=1.0 * (outcome == "passed"),
                       max_points=1, message=message, **over)


def batch():
    return [
        result_with(student="ana", content_hash="a" * 64, score=3, checks=[check("answer", "passed", "42 is right")]),
        result_with(student="ben", content_hash="a" * 64, score=3, checks=[check("answer", "passed", "42 is right")]),
        result_with(student="cy", content_hash="c" * 64, score=2, checks=[check("answer", "failed", "41 is wrong; expected 42")]),
        result_with(student="dee", content_hash="d" * 64, checks=[check("answer", "failed", "7 is wrong; expected 42")]),
        result_with(student="eve", content_hash="e" * 64, score=0, status="rejected", message="unsupported file type .pdf",
                    checks=[check("answer", "skipped", "the submission was rejected")]),
        result_with(student="fay", content_hash="f" * 64, score=0, status="crash", message="the process was killed",
                    checks=[check("answer", "errored", "the run stopped before the check")]),
        result_with(student="gus", content_hash="0" * 64, checks=[check("answer", "needs-review", "two candidates: a, b")],
                    flags=[SourceFlag(rule="grader-import", where="cell 1, line 1", line="import grader",
                                      what="imports the grader")]),
    ]


def test_needs_attention_lists_every_kind_most_urgent_first():
    results = batch()
    rows = triage.needs_attention(results, [r.student for r in results])
    assert [(row.what, [s for s, _ in row.students]) for row in rows] == [
        ("undecided", ["gus"]), ("crash", ["fay"]), ("rejected", ["eve"]), ("source scan", ["gus"]),
        ("identical", ["ana", "ben"])]
    assert rows[0].check == "answer" and rows[0].why == "two candidates: a, b"
    assert rows[3].line == "import grader"


def test_pass_rates_leave_out_rejected_files_and_failures_are_grouped_by_their_shape(tiny_rubric):
    results = batch()
    answer = next(c for c in triage.check_summaries(results, tiny_rubric) if c.id == "answer")
    assert (answer.passed, answer.graded) == (2, 6)  # eve's rejected file is not a graded submission
    assert answer.failures[0] == (2, "41 is wrong; expected 42")  # "7 is wrong" has the same shape
    assert answer.failures[1] == (1, "the run stopped before the check")
    assert round(answer.rate) == 33
