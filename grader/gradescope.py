"""The grader as a Gradescope autograder.

Gradescope runs ``/autograder/run_autograder`` in a fresh container for each submission, with the
student's upload in ``/autograder/submission/`` and the autograder's own files in
``/autograder/source/``, and shows what ``/autograder/results/results.json`` says
(``grader.report.lms.gradescope_results``). ``docs/gradescope.md`` has the ``setup.sh`` and
``run_autograder`` to upload.

The upload is graded as one submission folder (one notebook, or the assignment's modules), in the
same sandbox and with the same rubric as a batch. A failure of the grader itself writes no results:
Gradescope then tells the student the autograder failed and to contact staff, which is the truth,
where a zero would not be.
"""

from __future__ import annotations

import json
from pathlib import Path

from grader import pipeline, submission
from grader.errors import GraderError
from grader.fsutil import atomic_write
from grader.journal import is_infrastructure_failure
from grader.report.lms import gradescope_results
from grader.results import SubmissionResult
from grader.rubric import LoadedRubric

SUBMISSION = Path("/autograder/submission")
RESULTS = Path("/autograder/results/results.json")


def grade_upload(rubric: LoadedRubric, settings: pipeline.Settings, upload: Path = SUBMISSION,
                 results: Path = RESULTS) -> SubmissionResult:
    """Grade the upload and write Gradescope's results file; returns the result."""
    if not upload.is_dir():
        raise GraderError("the submission folder does not exist", where=str(upload),
                          hint="run this inside Gradescope's autograder container, or pass --submission FOLDER")
    files = [p for p in upload.iterdir() if p.name not in submission.IGNORED and not p.name.startswith(".")]
    # One uploaded archive is the student's folder zipped; anything else is the folder itself.
    given = files[0] if len(files) == 1 and files[0].suffix == ".zip" else upload
    (result,) = pipeline.grade_batch([submission.single(given)], pipeline.prepare(rubric, settings))
    if is_infrastructure_failure(result):
        raise GraderError(f"the grader could not grade this upload ({result.status}: {result.message})",
                          where=str(upload), hint="course staff: run `grader check` on the upload to see why")
    atomic_write(results, json.dumps(gradescope_results(result), indent=2))
    return result
