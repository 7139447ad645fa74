"""grader.judging: records of every status become check results with the right outcome and points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader import checks
from grader.checks.answer import AnswerObservation
from grader.checks.base import CheckSkipped, Verdict
from grader.checks.param_count import ParamCountObservation
from grader.judging import STUDENT_RUN_FAILURES, judge_all
from grader.observations import ArrayWriter, ProbeRecord
from grader.sandbox import CellRun, Execution, ModuleRun, Raised
from grader.targets import TargetSpec


def spec(check_id: str, kind: str = "param_count", points: float = 2, **fields: Any):
    defaults = {"param_count": {"target": "net", "expected": 23}, "answer": {"target": "x", "expected": 3136},
                "notebook": {"executes": True, "min_figures": 2, "min_markdown_cells": 3}}[kind]
    return checks.get(kind).Spec.model_validate({"id": check_id, "kind": kind, "points": points,
                                                 **defaults, **fields})


def observed(check_id: str, data: dict[str, Any], **extra: Any) -> ProbeRecord:
    return ProbeRecord.model_validate({"check": check_id, "status": "observed", "data": data, **extra})


def counts(total: int) -> dict[str, Any]:
    return {"module_type": "torch.nn.modules.container.Sequential", "total": total, "trainable": total}


def run(specs, records, *, arrays=None, expected=None, status="ok", message="ran to completion"):
    results = judge_all(specs, records, arrays or {}, expected or {}, status, message)
    assert [r.id for r in results] == [s.id for s in specs]
    return results


# ---------------------------------------------------------------- observed


def test_observed_and_right_passes_with_full_points():
    (r,) = run([spec("params")], [observed("params", counts(23), found_as="make_net", seconds=0.5)])
    assert (r.outcome, r.points, r.max_points) == ("passed", 2.0, 2.0)
    assert r.message == "23 learnable parameters"
    assert (r.found_as, r.seconds, r.kind, r.visibility) == ("make_net", 0.5, "param_count", "visible")


def test_observed_and_wrong_fails_with_no_points():
    (r,) = run([spec("params", visibility="hidden")], [observed("params", counts(30))])
    assert (r.outcome, r.points, r.visibility) == ("failed", 0.0, "hidden")
    assert r.message == "30 learnable parameters, expected 23 (7 more)"


def test_partial_fraction_earns_partial_points_only_with_partial_credit():
    data = {"form": "notebook", "code_cells": 3, "markdown_cells": 1, "markdown_words": 10, "figures": 2,
            "failed_cells": []}
    with_partial, without = run([spec("nb", "notebook", points=3, partial_credit=True), spec("nb2", "notebook", points=3)],
                                [observed("nb", data), observed("nb2", data)])
    assert (with_partial.outcome, with_partial.points) == ("failed", 2.0)
    assert len(with_partial.table) == 3
    assert (without.outcome, without.points) == ("failed", 0.0)


def test_observation_with_arrays_is_decoded_for_the_judge():
    writer = ArrayWriter()
    data = writer.encode(AnswerObservation(type="torch.Tensor", array=np.array([1.0, 2.0])).model_dump(mode="python"))
    (r,) = run([spec("ans", "answer", expected=[1, 2])], [observed("ans", data)], arrays=writer.arrays)
    assert (r.outcome, r.message) == ("passed", "all 2 values are right")


def test_expected_from_the_reference_is_passed_to_the_judge():
    reference = ParamCountObservation(module_type="torch.nn.Sequential", total=110, trainable=110)
    (r,) = run([spec("params", expected="reference")], [observed("params", counts(100))],
               expected={"params": reference})
    assert r.message == "100 learnable parameters, expected 110 (10 fewer)"


def test_missing_reference_expectation_is_a_grader_error():
    (r,) = run([spec("params", expected="reference")], [observed("params", counts(100))])
    assert (r.outcome, r.points) == ("grader-error", 0.0)
    assert r.message == "no expectation from the reference for this check"


# ---------------------------------------------------------------- raised, unresolved, probe-error


def test_raised_is_errored_with_the_student_traceback():
    record = ProbeRecord.model_validate({
        "check": "params", "status": "raised", "error": {
            "type": "ZeroDivisionError", "message": "division by zero", "during": "calling make_net(4, 2)",
            "traceback": "Traceback (most recent call last):\n  ...\nZeroDivisionError: division by zero\n"}})
    (r,) = run([spec("params")], [record])
    assert (r.outcome, r.points) == ("errored", 0.0)
    assert r.message == "ZeroDivisionError: division by zero (while calling make_net(4, 2))"
    assert r.traceback.endswith("ZeroDivisionError: division by zero\n")


def unresolved(problem: str, candidates: list[str], looked_for: str = "make_net (or net)") -> ProbeRecord:
    return ProbeRecord.model_validate({"check": "params", "status": "unresolved", "unresolved": {
        "target": "net", "looked_for": looked_for, "problem": problem, "candidates": candidates}})


def test_an_unresolved_target_with_candidates_asks_a_person_and_lists_them():
    (r,) = run([spec("params")], [unresolved("missing", ["build(a, b)", "size: int"])])
    assert (r.outcome, r.points, r.max_points) == ("needs-review", 0.0, 2)
    assert r.message.startswith("no match for make_net (or net); defined: build(a, b), size: int. A person decides")
    assert r.review == "which object is net? defined: build(a, b), size: int"


def test_an_ambiguous_target_asks_a_person_naming_the_candidates():
    (r,) = run([spec("params")], [unresolved("ambiguous", ["task1.make_net", "task2.make_net"], "make_net")])
    assert r.outcome == "needs-review"
    assert r.message.startswith("several matches for make_net: task1.make_net, task2.make_net. A person decides")
    assert "candidates: task1.make_net, task2.make_net" in r.review


def test_a_submission_that_defines_nothing_of_the_kind_fails_without_review():
    (r,) = run([spec("params")], [unresolved("missing", [], "make_net")])
    assert (r.outcome, r.review) == ("failed", None)
    assert r.message == "no make_net: the submission defines nothing of that kind"


def test_nothing_at_module_level_of_a_script_with_a_main_block_asks_a_person():
    script = [("train.py", "import torch\n\ndef run():\n    loader = make_loader()\n\n\nif __name__ == '__main__':\n    run()\n")]
    (r,) = judge_all([spec("params")], [unresolved("missing", [], "make_net")], {}, {}, "ok", "ran", script)
    assert (r.outcome, r.points) == ("needs-review", 0.0)
    assert r.message.startswith("no make_net at module level; the work of train.py, line 7 runs under "
                                "`if __name__ == \"__main__\":`, which grading (an import) does not run")
    assert r.review == "is net built under the __main__ block of train.py, line 7?"


NET = TargetSpec(name="make_net", aliases=["task2.net"])


def test_a_module_that_raised_before_defining_the_target_is_named_with_file_line_and_error():
    execution = Execution(form="module", modules=[
        ModuleRun(name="task2", status="error", error="NameError: name 'np' is not defined", output="",
                  raised=Raised(type="NameError", message="name 'np' is not defined", file="task2.py", line=3))])
    code = [("task2.py", "import torch\n\nx = np.zeros(3)\n\ndef net():\n    return None\n")]
    (r,) = judge_all([spec("params")], [unresolved("missing", ["x: int"])], {}, {}, "ok", "", code,
                     execution=execution, targets={"net": NET})
    assert r.outcome == "errored"
    assert r.message == ("no make_net (or net): task2.py defines `net` at line 5, but it stopped before: "
                         "task2.py, line 3: NameError: name 'np' is not defined")


def test_a_failing_cell_that_held_the_definition_is_named():
    execution = Execution(form="notebook", cells=[
        CellRun(index=0, type="markdown", status="skipped"),
        CellRun(index=1, type="code", status="error", error="ValueError: bad",
                raised=Raised(type="ValueError", message="bad", line=1))])
    code = [("cell 2", "raise ValueError('bad')\ndef make_net(D, K, O):\n    pass\n")]
    (r,) = judge_all([spec("params")], [unresolved("missing", ["other()"])], {}, {}, "ok", "", code,
                     execution=execution, targets={"net": NET})
    assert r.outcome == "errored" and "cell 2 defines `make_net` at line 2, but it stopped before: cell 2, line 1" in r.message


def test_a_failure_after_the_definition_does_not_explain_a_missing_target():
    execution = Execution(form="module", modules=[
        ModuleRun(name="task2", status="error", error="RuntimeError: late", output="",
                  raised=Raised(type="RuntimeError", message="late", file="task2.py", line=9))])
    code = [("task2.py", "def net():\n    return None\n" + "\n" * 6 + "raise RuntimeError('late')\n")]
    (r,) = judge_all([spec("params")], [unresolved("missing", ["helper()"])], {}, {}, "ok", "", code,
                     execution=execution, targets={"net": NET})
    assert r.outcome == "needs-review"


def test_probe_error_is_a_grader_error():
    record = ProbeRecord.model_validate({
        "check": "params", "status": "probe-error", "error": {
            "type": "AttributeError", "message": "'NoneType' object has no attribute 'x'",
            "during": "probing check 'params'", "traceback": "Traceback ...probe bug"}})
    (r,) = run([spec("params")], [record])
    assert (r.outcome, r.points) == ("grader-error", 0.0)
    assert r.message == "the probe failed: AttributeError: 'NoneType' object has no attribute 'x'"
    assert r.traceback == "Traceback ...probe bug"


def test_probe_error_without_details_is_a_grader_error():
    (r,) = run([spec("params")], [ProbeRecord.model_validate({"check": "params", "status": "probe-error"})])
    assert (r.outcome, r.message) == ("grader-error", "the probe failed: probe-error")


# ---------------------------------------------------------------- missing records


@pytest.mark.parametrize("status", sorted(STUDENT_RUN_FAILURES))
def test_missing_record_after_a_failed_run_is_errored(status):
    message = "the run took longer than the 600s limit and was stopped"
    (r,) = run([spec("params")], [], status=status, message=message)
    assert (r.outcome, r.points) == ("errored", 0.0)
    assert r.message == f"not observed: {message}"


def test_missing_record_after_a_timeout_keeps_what_was_observed():
    first, second = run([spec("a"), spec("b")], [observed("a", counts(23))], status="timeout-wall",
                        message="the run took longer than the 600s limit and was stopped; 1 check(s) had been observed")
    assert (first.outcome, first.points) == ("passed", 2.0)
    assert second.outcome == "errored" and second.message.startswith("not observed: the run took longer")


def test_a_submission_the_run_refused_is_not_graded_and_is_no_grader_error():
    """A notebook that is not JSON is refused inside the sandbox, as the host refuses a bad archive:
    its checks are skipped with the reason, never blamed on the grader."""
    message = "the notebook cannot be read: Notebook does not appear to be JSON: ''"
    (r,) = run([spec("params")], [], status="rejected", message=message)
    assert (r.outcome, r.points, r.message) == ("skipped", 0.0, f"not graded: {message}")


def test_missing_record_after_an_ok_run_is_a_grader_error():
    (r,) = run([spec("params")], [], status="ok")
    assert (r.outcome, r.points) == ("grader-error", 0.0)
    assert r.message == "the probes reported nothing for this check (a grader bug)"


# ---------------------------------------------------------------- requires


def test_requires_an_unpassed_check_is_skipped():
    specs = [spec("defined-ish"), spec("params", requires=["defined-ish"]), spec("more", requires=["params"])]
    records = [observed("defined-ish", counts(30)), observed("params", counts(23)), observed("more", counts(23))]
    first, second, third = run(specs, records)
    assert first.outcome == "failed"
    assert (second.outcome, second.points, second.max_points) == ("skipped", 0.0, 2.0)
    assert second.message == "skipped: needs defined-ish to pass first"
    assert third.outcome == "skipped" and third.message == "skipped: needs params to pass first"


def test_requires_lists_every_unmet_prerequisite():
    specs = [spec("a"), spec("b"), spec("c", requires=["a", "b"])]
    records = [ProbeRecord.model_validate({"check": "a", "status": "probe-error"}), observed("b", counts(0)),
               observed("c", counts(23))]
    *_, c = run(specs, records)
    assert c.message == "skipped: needs a, b to pass first"


def skipped_here(monkeypatch):
    """param_count judges that raise CheckSkipped, as when the grading machine lacks a file."""
    def judge(spec, obs, expected, measured=None):  # param_count is a measured kind
        raise CheckSkipped("the weights file is not on this machine", where="/cache/w.pth", hint="put it there")

    monkeypatch.setattr(checks.get("param_count"), "judge", judge)


def test_a_check_skipped_on_this_machine_is_not_counted(monkeypatch):
    skipped_here(monkeypatch)
    (r,) = run([spec("weights")], [observed("weights", counts(23))])
    assert (r.outcome, r.points, r.max_points, r.counted) == ("skipped", 0.0, 2.0, False)
    assert r.message.startswith("skipped: /cache/w.pth: the weights file is not on this machine")
    assert r.message.endswith("(not counted in the score)")


def test_waiting_only_on_uncounted_checks_is_not_counted_either(monkeypatch):
    specs = [spec("weights"), spec("answer", "answer", points=1), spec("after", requires=["weights"]),
             spec("both", requires=["weights", "answer"])]
    records = [observed("weights", counts(23)), observed("answer", {"type": "int", "number": 3}),
               observed("after", counts(23)), observed("both", counts(23))]
    skipped_here(monkeypatch)
    weights, answer, after, both = run(specs, records)
    assert answer.outcome == "failed" and not weights.counted
    assert (after.outcome, after.counted) == ("skipped", False)
    assert (both.outcome, both.counted) == ("skipped", True)  # it also waits on a check the student failed


def test_requires_a_passed_check_is_judged():
    _, second = run([spec("a"), spec("b", requires=["a"])], [observed("a", counts(23)), observed("b", counts(22))])
    assert second.outcome == "failed"


# ---------------------------------------------------------------- judge bugs, tampered output


def test_judge_that_raises_becomes_grader_error(monkeypatch):
    def broken_judge(spec, obs, expected, measured=None):
        raise KeyError("oops")

    monkeypatch.setattr(checks.get("param_count"), "judge", staticmethod(broken_judge))
    (r,) = run([spec("params")], [observed("params", counts(23))])
    assert (r.outcome, r.points) == ("grader-error", 0.0)
    assert r.message == "the judge failed: KeyError: 'oops'"
    assert "broken_judge" in r.traceback


def test_verdict_fraction_is_clamped(monkeypatch):
    monkeypatch.setattr(checks.get("param_count"), "judge", staticmethod(lambda s, o, e, m=None: Verdict(1.5, "overjoyed")))
    (r,) = run([spec("params", partial_credit=True)], [observed("params", counts(23))])
    assert (r.outcome, r.points) == ("passed", 2.0)


def test_observation_with_an_extra_key_is_errored_as_invalid():
    (r,) = run([spec("params")], [observed("params", counts(23) | {"passed": True})])
    assert (r.outcome, r.points) == ("errored", 0.0)
    assert r.message == "invalid observation (tampered output?): passed: Extra inputs are not permitted"


def test_observation_of_the_wrong_type_is_errored_as_invalid():
    (r,) = run([spec("params")], [observed("params", counts(23) | {"total": "23"})])
    assert r.outcome == "errored" and r.message.startswith("invalid observation (tampered output?): total: ")


def test_observation_with_a_dangling_array_reference_is_errored_as_invalid():
    data = {"type": "list", "array": {"$array": "a9"}}
    (r,) = run([spec("ans", "answer", expected=[1, 2])], [observed("ans", data)])
    assert r.outcome == "errored"
    assert r.message == "invalid observation (tampered output?): a record refers to a missing array 'a9'"


def test_records_for_unknown_checks_are_ignored():
    (r,) = run([spec("params")], [observed("params", counts(23)), observed("injected", counts(1))])
    assert r.outcome == "passed"


def test_the_rubrics_own_names_cover_every_target_a_check_uses():
    from grader import rubric
    from grader.judging import own_names

    loaded = rubric.load(Path(__file__).parent.parent / "rubrics" / "mlp-checkpoint.yaml").model
    split = next(c for c in loaded.checks if c.kind == "dataset" and isinstance(c.target, list))
    names = own_names(split, loaded.targets)
    for ref in split.target:
        assert loaded.targets[ref].name is None or loaded.targets[ref].name in names
    assert own_names(split, None) == ()


def test_every_outcome_has_its_meaning_in_one_table():
    from typing import get_args

    from grader.results import OUTCOMES, Outcome

    assert list(OUTCOMES) == list(get_args(Outcome))
