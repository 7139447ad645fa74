"""The example submissions grade exactly as ``expected.yaml`` in their folder says.

The folder is graded once (about 20 s per notebook: each one trains on synthetic MNIST); every
example is then compared check by check, so one regression names the example and the check.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grader import pipeline, rubric, submission

ROOT = Path(__file__).resolve().parent.parent
RUBRIC = ROOT / "rubrics" / "fc-vs-cnn.yaml"
FOLDER = ROOT / "submissions" / "fc-vs-cnn"
MANIFEST = FOLDER / "expected.yaml"
TOLERANCE = 1e-3  # partial points are rounded to 4 decimals (2/3 of 2 points is 0.6667)


def _expected() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


EXPECTED = _expected()


@pytest.fixture(scope="module")
def graded() -> dict[str, object]:
    """Every submission of the folder, graded once, by file name."""
    loaded = rubric.load(RUBRIC)
    prep = pipeline.prepare(loaded, pipeline.Settings())
    results = pipeline.grade_batch(submission.discover([FOLDER]), prep)
    return {Path(r.source).name: r for r in results}


def test_every_example_is_listed():
    """A new example without an entry in expected.yaml (or an entry without a file) fails here."""
    present = {p.name for p in FOLDER.iterdir()
               if p.name != MANIFEST.name and not p.name.startswith(".") and p.name not in submission.IGNORED}
    unlisted = sorted(present - set(EXPECTED))
    missing = sorted(set(EXPECTED) - present)
    assert not unlisted, f"files in {FOLDER.name}/ not listed in expected.yaml: {', '.join(unlisted)}"
    assert not missing, f"expected.yaml lists files that do not exist: {', '.join(missing)}"


@pytest.mark.slow
def test_batch_grades_every_listed_example(graded):
    assert set(graded) == set(EXPECTED), (
        f"graded {sorted(graded)}, expected.yaml lists {sorted(EXPECTED)}")


@pytest.mark.slow
@pytest.mark.parametrize("example", sorted(EXPECTED))
def test_example(example, graded):
    want = EXPECTED[example]
    assert example in graded, f"{example}: not graded (discover() did not find it)"
    result = graded[example]
    assert result.status == want["status"], (
        f"{example}: status {result.status!r}, expected {want['status']!r} ({result.message})")

    got = {c.id: c for c in result.checks}
    assert set(got) == set(want["checks"]), (
        f"{example}: checks in the result {sorted(got)} differ from expected.yaml {sorted(want['checks'])}")
    wrong = [f"{example}: check {check_id}: expected {points:g} points, got {got[check_id].points:g} "
             f"({got[check_id].outcome}: {got[check_id].message})"
             for check_id, points in want["checks"].items()
             if abs(got[check_id].points - points) > TOLERANCE]
    assert not wrong, "\n".join(wrong)
