"""`grader gradescope` as Gradescope runs it: the upload folder in, results.json out, with the
fields Gradescope reads; an upload that cannot be graded is explained to the student."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import FIXTURES, GOOD_NET, run_cli, write_notebook

TINY = str(FIXTURES / "tiny" / "rubric.yaml")


def run_autograder(tmp_path, upload) -> tuple[subprocess.CompletedProcess, dict | None]:
    results = tmp_path / "results" / "results.json"
    done = run_cli("gradescope", TINY, "--submission", str(upload), "--results", str(results), "--isolation", "process")
    return done, json.loads(results.read_text()) if results.exists() else None


def test_an_uploaded_notebook_is_graded_into_results_json(tmp_path):
    upload = tmp_path / "submission"
    upload.mkdir()
    write_notebook(upload / "hw.ipynb", ["md:# My answers", GOOD_NET, "answer = 42"])
    done, results = run_autograder(tmp_path, upload)
    assert done.returncode == 0, done.stderr
    assert results is not None and results["score"] == 6
    tests = {t["name"]: t for t in results["tests"]}
    assert tests["net-params"]["visibility"] == "after_published"  # hidden until grades are published
    assert all(t["status"] == "passed" for t in tests.values())


def test_an_upload_of_the_wrong_kind_gets_results_that_say_why(tmp_path):
    upload = tmp_path / "submission"
    upload.mkdir()
    (upload / "report.pdf").write_bytes(b"%PDF-1.4")
    done, results = run_autograder(tmp_path, upload)
    assert done.returncode == 0, done.stderr
    assert results is not None and results["score"] == 0
    assert "rejected" in results["output"] and "Traceback" not in done.stderr


def test_outside_gradescope_a_missing_upload_folder_is_a_clear_error(tmp_path):
    done, results = run_autograder(tmp_path, tmp_path / "absent")
    assert done.returncode != 0 and results is None
    assert "the submission folder does not exist" in done.stderr and "Traceback" not in done.stderr
