"""Every assignment's examples grade exactly as the ``expected.yaml`` in their folder says.

Every example of every assignment is graded once, two at a time in one pool (notebooks train on
synthetic data, so an example takes seconds to a minute) on the quick profile; the comparison
then names every example and check that differs. This is what ``grader validate --all`` does,
inside the test suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import pipeline, rubric, submission, validation
from grader.results import SubmissionResult

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


# The order the examples are graded in: the assignments whose examples train longest first, so
# that the two slots finish together instead of one idling through a long last example.
LONGEST_FIRST = ["cifar10-cnn", "fc-vs-cnn", "resmlp-densenet", "custom-ops", "mlp-checkpoint"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, dict[str, SubmissionResult]]:
    """Every assignment's examples, graded in one pool of two slots (as `grade --workers 2`
    would, each with its share of the cores), by file name per assignment."""
    from grader.executors.local import LocalExecutor
    from grader.journal import MAX_INFRA_RETRIES, is_infrastructure_failure
    from grader.sandbox import Slot

    # the manifests hold the grades on the synthetic data sets: an empty data root, whatever GRADER_DATA says
    no_data = tmp_path_factory.mktemp("no-real-data")
    jobs: dict[tuple[str, int], tuple[submission.Submission, pipeline.Prepared]] = {}
    for assignment in sorted(ASSIGNMENTS, key=lambda a: LONGEST_FIRST.index(a) if a in LONGEST_FIRST else -1):
        loaded = _load(assignment)
        prep = pipeline.shared_cores(pipeline.prepare(loaded, pipeline.Settings(profile="quick", data_root=no_data)), 2)
        for position, sub in enumerate(submission.discover([validation.examples_folder(loaded)])):
            jobs[(assignment, position)] = (sub, prep)

    def grade(job: tuple[str, int], slot: Slot) -> SubmissionResult:
        sub, prep = jobs[job]
        for _ in range(1 + MAX_INFRA_RETRIES):  # as a batch does: the machine's failures are retried
            result = pipeline.grade_one(sub, prep, slot)
            if not is_infrastructure_failure(result):
                break
        return result

    order = list(jobs)
    results = LocalExecutor([Slot(index=0), Slot(index=1)]).run(order, grade)
    by_assignment: dict[str, dict[str, SubmissionResult]] = {a: {} for a in ASSIGNMENTS}
    for (assignment, _), result in zip(order, results):
        by_assignment[assignment][Path(result.source).name] = result
    return by_assignment


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_examples_grade_as_their_manifest_says(assignment, graded):
    folder = validation.examples_folder(_load(assignment))
    problems = validation.example_problems(validation.load_manifest(folder), graded[assignment])
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_a_notebook_loading_from_its_own_data_folder_is_told_the_graders_copy_was_read(graded):
    """A real style: MNIST('~/.pytorch/MNIST_data/', download=True). The run serves the grader's copy
    there, and the student's result says so; a notebook that reads the rubric's folder is told nothing."""
    fc_vs_cnn = graded["fc-vs-cnn"]
    assert fc_vs_cnn["home_path_download.ipynb"].data_served == ["MNIST(root='~/.pytorch/MNIST_data/')"]
    assert fc_vs_cnn["full_marks.ipynb"].data_served == [] and fc_vs_cnn["module_submission.py"].data_served == []
