"""The examples' manifest: a broken ``expected.yaml`` is named with its line, and differences are listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import validation
from grader.errors import GraderError
from grader.results import CheckResult, SubmissionResult
from tests.conftest import FIXTURES
from tests.test_cli import TINY, grader

GOOD = """
full_marks:
  why: "the reference"
  status: ok
  checks: {net-shape: 2, answer: 1}
"""


def write(folder: Path, text: str) -> Path:
    (folder / validation.MANIFEST).write_text(text)
    return folder


def test_a_good_manifest_loads(tmp_path):
    manifest = validation.load_manifest(write(tmp_path, GOOD))
    assert manifest["full_marks"]["checks"] == {"net-shape": 2.0, "answer": 1.0}


def test_invalid_yaml_names_the_line(tmp_path):
    with pytest.raises(GraderError) as raised:
        validation.load_manifest(write(tmp_path, GOOD + "broken:\n  checks: {net-shape: 2\n"))
    assert "not valid YAML" in raised.value.what and raised.value.where.startswith(f"{tmp_path / 'expected.yaml'}:")


@pytest.mark.parametrize("entry, named", [
    ("partial:\n  status: ok\n", "partial.checks: Field required"),
    ("partial:\n  status: ok\n  checks: {answer: lots}\n", "partial.checks.answer"),
    ("partial:\n  status: ok\n  points: 3\n  checks: {}\n", "partial.points: Extra inputs are not permitted"),
    ("- just a list\n", "Input should be a valid dictionary"),
])
def test_a_wrong_shape_names_the_entry(tmp_path, entry, named):
    text = entry if entry.startswith("-") else GOOD + entry
    with pytest.raises(GraderError) as raised:
        validation.load_manifest(write(tmp_path, text))
    assert named in raised.value.what, raised.value.what


def result(name: str, status: str, **points: float) -> SubmissionResult:
    checks = [CheckResult(id=i, kind="answer", title=i, visibility="visible", outcome="passed", points=p,
                          max_points=p, message="") for i, p in points.items()]
    # only what example_problems reads: the rest of a result does not matter here
    return SubmissionResult.model_construct(student=name, source=name, status=status, message="", checks=checks)


def test_each_difference_is_listed():
    manifest = {"a": {"status": "ok", "checks": {"x": 1.0}}, "missing": {"status": "ok", "checks": {}}}
    graded = {"a": result("a", "ok", x=0.5), "extra": result("extra", "ok")}
    problems = validation.example_problems(manifest, graded)
    assert problems == ["missing: listed in expected.yaml but not graded", "extra: graded but not listed in expected.yaml",
                        "a: x: 0.5 points, expected 1 (passed: )"]


def test_validate_with_a_broken_manifest_exits_2_before_grading(tmp_path):
    (tmp_path / "rubrics").mkdir()
    rubric = tmp_path / "rubrics" / "tiny.yaml"
    rubric.write_text(Path(TINY).read_text().replace("reference: reference", f"reference: {FIXTURES / 'tiny' / 'reference'}"))
    examples = tmp_path / "submissions" / "tiny"
    examples.mkdir(parents=True)
    write(examples, "full_marks: {status: ok, checks: [1, 2]}\n")
    done = grader("validate", str(rubric), "--examples")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "expected.yaml: the manifest does not have the expected shape: full_marks.checks" in done.stderr


def test_a_check_left_to_a_person_must_be_listed_under_review():
    undecided = result("a", "ok", x=0.0)
    undecided.checks[0].outcome = "needs-review"
    listed = {"a": {"status": "ok", "checks": {"x": 0.0}, "review": ["x"]}}
    assert validation.example_problems(listed, {"a": undecided}) == []
    unlisted = {"a": {"status": "ok", "checks": {"x": 0.0}}}
    assert validation.example_problems(unlisted, {"a": undecided}) == ["a: x: needs-review, expected a decision ()"]
    assert validation.example_problems(listed, {"a": result("a", "ok", x=0.0)}) == [
        "a: x: passed, expected needs-review ()"]
