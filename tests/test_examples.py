"""Every assignment's examples grade exactly as the ``expected.yaml`` in their folder says.

Each assignment's folder is graded once, two at a time (notebooks train on synthetic data, so a
folder takes a minute or two) on the quick profile; the comparison then names every example and
check that differs. This is what ``grader validate --all`` does, inside the test suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import pipeline, rubric, submission, validation
from grader.executors.slots import plan_slots

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = sorted(p.parent.name for p in (ROOT / "submissions").glob(f"*/{validation.MANIFEST}"))


def _load(assignment: str):
    return rubric.load(ROOT / "rubrics" / f"{assignment}.yaml")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_example_is_listed(assignment):
    """A new example without an entry in expected.yaml (or an entry without a file) fails here."""
    folder = ROOT / "submissions" / assignment
    manifest = validation.load_manifest(folder)
    present = {p.name for p in folder.iterdir()
               if p.name != validation.MANIFEST and not p.name.startswith(".") and p.name not in submission.IGNORED}
    assert not sorted(present - set(manifest)), f"files in {assignment}/ not listed in expected.yaml"
    assert not sorted(set(manifest) - present), f"expected.yaml in {assignment}/ lists files that do not exist"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_examples_grade_as_their_manifest_says(assignment, tmp_path):
    loaded = _load(assignment)
    folder = validation.examples_folder(loaded)
    # the manifests hold the grades on the synthetic data sets: an empty data root, whatever GRADER_DATA says
    prep = pipeline.prepare(loaded, pipeline.Settings(profile="quick", data_root=tmp_path / "no-real-data"))
    results = pipeline.grade_batch(submission.discover([folder]), prep, slots=plan_slots(2, [], 1))
    problems = validation.example_problems(validation.load_manifest(folder), {Path(r.source).name: r for r in results})
    assert not problems, "\n".join(problems)
