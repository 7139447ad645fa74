"""Reports escape everything a student controls and show what an instructor needs."""

from __future__ import annotations

from grader.report.exporters import gradebook_csv
from grader.report.html import render_submission, render_summary
from grader.report.terminal import self_check_table
from grader.results import CheckResult, SubmissionResult


def result_with(**over) -> SubmissionResult:
    base = dict(student="mallory", source="mallory.ipynb", content_hash="ab" * 32, status="ok", message="ran",
                isolation="process", score=1, max_score=3, visible_score=1, visible_max=2, assignment="tiny",
                rubric_hash="cd" * 32, grader_version="0", checks=[
                    CheckResult(id="seen", kind="answer", visibility="visible", outcome="passed", points=1,
                                max_points=1, message="<script>alert('x')</script> is right"),
                    CheckResult(id="secret", kind="answer", visibility="hidden", outcome="failed", points=0,
                                max_points=1, message="hidden detail: expected 3136"),
                    CheckResult(id="other", kind="shape", visibility="visible", outcome="errored", points=0,
                                max_points=1, message="ValueError: boom", traceback="<img src=x onerror=alert(1)>")])
    base.update(over)
    return SubmissionResult(**base)


def test_student_text_is_escaped():
    page = render_submission(result_with(stdout="<iframe src=evil>", cells=[
        {"index": 0, "type": "code", "status": "error", "error": "NameError: <x>", "source": "</pre><script>", "output": ""}]))
    for raw in ("<script>alert", "<img src=x", "<iframe", "</pre><script>"):
        assert raw not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "Cell 1" in page and "NameError: &lt;x&gt;" in page


def test_synthetic_data_and_weak_isolation_are_stated():
    page = render_submission(result_with(data="synthetic"))
    assert "synthetic data" in page and "Isolation: <b>process</b> (weak)" in page


def test_a_data_folder_the_grader_replaced_is_named_on_the_page_and_in_the_self_check():
    served = result_with(data_served=["MNIST(root='~/.pytorch/MNIST_data/')", "FashionMNIST(root='<b>x</b>')"])
    page = render_submission(served)
    assert "read its own copy of the same data set instead" in page
    assert "<code>MNIST(root=&#39;~/.pytorch/MNIST_data/&#39;)</code>" in page and "<b>x</b>" not in page
    assert "data: your code loads the data set from a folder that does not hold it (MNIST(root='~/.pytorch/" \
           "MNIST_data/') and 1 more)" in self_check_table(served)
    assert "its own copy" not in render_submission(result_with())


def test_the_profile_is_stated_where_accuracy_was_trained():
    quick = result_with(data="synthetic", profile="quick")
    assert "<span>profile quick</span>" in render_submission(quick)
    assert "profile: quick (a data subset and fewer epochs" in self_check_table(quick)
    assert "profile" not in self_check_table(result_with())  # no accuracy check, no budget to state


def test_self_check_shows_only_visible_checks():
    table = self_check_table(result_with())
    assert "secret" not in table and "3136" not in table
    assert "seen" in table and "ERROR" in table
    assert "visible score: 1 / 2  (1 more check(s) are graded after submission)" in table


def test_gradebook_neutralises_formulas(tiny_rubric):
    text = gradebook_csv([result_with(student="=HYPERLINK(1)")], tiny_rubric)
    assert "'=HYPERLINK(1)" in text


def test_a_check_skipped_on_this_machine_is_shown_as_not_counted(tiny_rubric):
    skipped = CheckResult(id="answer", kind="answer", visibility="visible", outcome="skipped", points=0, max_points=1,
                          message="skipped: no weights here (not counted in the score)", counted=False)
    result = result_with(checks=[*result_with().checks, skipped])
    assert "– / 1" in render_submission(result)
    assert "answer" in self_check_table(result) and " -/1 " in self_check_table(result)
    assert "Skipped on this machine and <b>left out of the scores</b>: answer." in render_summary([result], ["m"], tiny_rubric)
    header, row = gradebook_csv([result], tiny_rubric).splitlines()[:2]
    assert dict(zip(header.split(","), row.split(",")))["answer"] == ""  # blank: not a zero
