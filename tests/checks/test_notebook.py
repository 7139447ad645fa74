"""``notebook``: judges on hand-made observations, and the host's recheck of the submitted form."""

from __future__ import annotations

import json
from typing import Any

import pytest

from grader import checks, submission
from grader.checks.base import CheckSkipped, ProbeContext, Verdict
from grader.checks.notebook import FailedCell, NotebookObservation, StandIns, submitted_form
from grader.judging import judge_all
from grader.observations import ProbeRecord
from tests.checks.kinds import judge, probe, spec


def notebook_obs(**overrides: Any) -> NotebookObservation:
    fields = dict(form="notebook", code_cells=10, markdown_cells=4, markdown_words=120, figures=2, failed_cells=[])
    return NotebookObservation(**(fields | overrides))


NOTEBOOK = dict(executes=True, min_markdown_cells=3, min_figures=2)


def test_notebook_all_requirements_met():
    v = judge("notebook", spec("notebook", **NOTEBOOK), notebook_obs())
    assert (v.fraction, v.message) == (1.0, "all 3 requirements met")
    assert [r["requirement"] for r in v.table] == ["runs without errors", "at least 3 markdown cells",
                                                   "at least 2 plots"]


def test_notebook_partial_failure_names_cells_and_counts():
    obs = notebook_obs(figures=1, failed_cells=[FailedCell(number=3, status="error", error="NameError: name 'x' is not defined", line=1)])
    v = judge("notebook", spec("notebook", partial_credit=True, **NOTEBOOK), obs)
    assert v.fraction == pytest.approx(1 / 3)
    assert v.message == "runs without errors: got cell 3, line 1: NameError: name 'x' is not defined; at least 2 plots: got 1"


def test_notebook_timed_out_cell_without_error_text():
    obs = notebook_obs(failed_cells=[FailedCell(number=4, status="timeout", error="")])
    v = judge("notebook", spec("notebook", executes=True), obs)
    assert (v.fraction, v.message) == (0.0, "runs without errors: got cell 4: timeout")


def test_notebook_words_requirement():
    v = judge("notebook", spec("notebook", executes=False, min_markdown_words=200), notebook_obs())
    assert v.message == "at least 200 words of explanation: got 120"


MODULE_FILES = [("task2.py", "import torch\n"), ("utils/mnist_reader.py", "def load_mnist(): ...\n")]
NOTEBOOK_CELLS = [("cell 2", "import torch\n"), ("cell 4", "fit(model, 4)\n")]


def notebook_result(obs: NotebookObservation, submitted: list[tuple[str, str]] | None):
    """The notebook check as the pipeline judges it: the judge, then the recheck with the host's copy."""
    the_spec = spec("notebook", **NOTEBOOK)
    record = ProbeRecord.model_validate({"check": the_spec.id, "status": "observed", "data": obs.model_dump()})
    (result,) = judge_all([the_spec], [record], {}, {}, "ok", "ran to completion", submitted)
    return result


def test_notebook_check_on_a_module_the_host_confirms_is_not_applicable():
    with pytest.raises(CheckSkipped, match="the submission is a module, which this assignment accepts"):
        checks.get("notebook").recheck(spec("notebook", **NOTEBOOK), notebook_obs(form="module"),
                                       Verdict.failed("judged"), None, MODULE_FILES)
    result = notebook_result(notebook_obs(form="module", markdown_cells=0, figures=0), MODULE_FILES)
    assert (result.outcome, result.points, result.counted) == ("skipped", 0.0, False)
    assert result.message == ("skipped: the submission is a module, which this assignment accepts: notebook structure "
                              "(markdown cells, figures shown) is asked of notebooks only, so this check does not "
                              "apply (not counted in the score)")


def test_notebook_check_on_a_module_without_the_hosts_copy_fails():
    v = judge("notebook", spec("notebook", **NOTEBOOK), notebook_obs(form="module"))
    assert (v.fraction, v.message) == (0.0, "the run reports a module, not a notebook; this check needs a notebook")
    assert notebook_result(notebook_obs(form="module"), []).outcome == "failed"  # no code read: form unknown


def test_notebook_reported_as_a_module_fails_for_review():
    result = notebook_result(notebook_obs(form="module"), NOTEBOOK_CELLS)
    assert (result.outcome, result.counted) == ("failed", True)
    assert result.message == "the run reports a module, but a notebook was submitted"
    assert result.review == "the execution record contradicts the submitted file (tampered record?)"


def test_a_module_reported_as_a_notebook_earns_no_notebook_points():
    result = notebook_result(notebook_obs(), MODULE_FILES)
    assert (result.outcome, result.counted) == ("skipped", False)


def test_a_notebook_keeps_its_verdict_after_the_recheck():
    result = notebook_result(notebook_obs(figures=1), NOTEBOOK_CELLS)
    assert (result.outcome, result.message) == ("failed", "at least 2 plots: got 1")


SIZED_CELLS = [("cell 2", "import numpy as np\n"), ("cell 4", "X, y = load_mnist('data')\nassert X.shape[0] == 60_000\n")]
FASHION_STAND_IN = StandIns(stand_ins=[(60000, 2000), (10000, 500)])


def sized_result(expected: StandIns | None):
    failed = [FailedCell(number=4, status="error", error="AssertionError", line=2)]
    the_spec = spec("notebook", **NOTEBOOK)
    record = ProbeRecord.model_validate({"check": the_spec.id, "status": "observed",
                                         "data": notebook_obs(failed_cells=failed).model_dump()})
    (result,) = judge_all([the_spec], [record], {}, {the_spec.id: expected} if expected else {}, "ok", "ran",
                          SIZED_CELLS)
    return result


def test_a_cell_needing_the_real_size_on_a_stand_in_goes_to_a_person_not_against_the_student():
    result = sized_result(FASHION_STAND_IN)
    assert (result.outcome, result.points) == ("passed", result.max_points)
    assert "cell 4, line 2: AssertionError: the line expects the real data set's size" in result.message
    assert "2,000 instead of 60,000" in result.message
    assert result.review == "cell(s) 4 need the real data set's size to run"


def test_the_same_failure_on_real_data_is_the_students():
    result = sized_result(None)
    assert result.outcome == "failed" and result.review is None
    assert "cell 4, line 2: AssertionError" in result.message


def test_the_form_by_the_hosts_copy_follows_submission_code_texts(tmp_path):
    notebook = {"cells": [{"cell_type": "markdown", "source": "# Steps"}, {"cell_type": "code", "source": "x = 1\n"}],
                "nbformat": 4, "nbformat_minor": 5, "metadata": {}}
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "hw.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "task2.py").write_text("A = 1\n")
    assert submitted_form(submission.code_texts(submission.find_entry(tmp_path / "nb", []))) == "notebook"
    assert submitted_form(submission.code_texts(submission.find_entry(tmp_path / "mod", []))) == "module"
    assert submitted_form([]) is None
    assert submitted_form([("cell 2", ""), ("task2.py", "")]) is None


def test_notebook_without_requirements_passes():
    v = judge("notebook", spec("notebook", executes=False), notebook_obs(failed_cells=[FailedCell(number=1, status="error", error="x")]))
    assert (v.fraction, v.message) == (1.0, "no structural requirement set")


def test_notebook_probe_reads_the_execution_record():
    ctx = ProbeContext(namespaces=[], targets={}, execution={"form": "notebook", "cells": [
        {"index": 0, "type": "markdown", "status": "ok", "words": 12},
        {"index": 1, "type": "code", "status": "ok", "figures": 1},
        {"index": 2, "type": "code", "status": "error", "error": "ValueError: boom",
         "raised": {"type": "ValueError", "message": "boom", "line": 4, "missing_module": None}},
        {"index": 3, "type": "code", "status": "timeout", "error": None},
        {"index": 4, "type": "markdown", "status": "ok", "words": 30},
    ]})
    obs = probe("notebook", spec("notebook"), ctx)
    assert (obs.form, obs.code_cells, obs.markdown_cells, obs.markdown_words, obs.figures) == ("notebook", 3, 2, 42, 1)
    assert obs.failed_cells == [FailedCell(number=3, status="error", error="ValueError: boom", line=4),
                                FailedCell(number=4, status="timeout", error="")]
