"""JUnit XML (``grader.report.junit``): the elements and attributes the JUnit schema that CI systems
read requires (testsuites > testsuite[name, tests, failures, errors, skipped] > testcase[name,
classname] with failure / error / skipped children), every outcome mapped, student text made safe."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from grader.report.junit import OUTCOME_ELEMENTS, junit_xml
from grader.results import OUTCOMES, CheckResult, SubmissionResult


def check(check_id: str, outcome: str, counted: bool = True, message: str = "") -> CheckResult:
    return CheckResult(id=check_id, kind="answer", visibility="visible", outcome=outcome, points=0, max_points=1,
                       message=message or f"{outcome} here", counted=counted, seconds=0.5)


def result(student: str, checks: list[CheckResult], status: str = "ok", message: str = "ran") -> SubmissionResult:
    return SubmissionResult(student=student, source=f"{student}.ipynb", content_hash="ab" * 32, status=status,
                            message=message, isolation="namespace", score=1, max_score=len(checks) or 1,
                            visible_score=1, visible_max=1, assignment="tiny", rubric_hash="cd" * 32,
                            grader_version="0", checks=checks, seconds=2.0)


def test_every_outcome_has_a_junit_element():
    assert set(OUTCOME_ELEMENTS) == set(OUTCOMES)


def test_each_submission_is_a_suite_and_each_check_a_case_with_the_required_attributes():
    results = [result("bob", [check(o.replace("-", "_"), o) for o in OUTCOMES] + [check("machine", "skipped", False)]),
               result("alice", [check("a", "passed")], status="timeout-wall", message="ran past 60 s")]
    root = ET.fromstring(junit_xml(results))
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["alice", "bob"]
    for suite in suites.values():
        assert {"name", "tests", "failures", "errors", "skipped", "time"} <= set(suite.attrib)
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases) and all({"name", "classname"} <= set(c.attrib) for c in cases)
        for kind, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
            assert int(suite.get(attribute)) == sum(c.find(kind) is not None for c in cases)
    bob = {c.get("name"): c for c in suites["bob"].findall("testcase")}
    assert list(bob["passed"]) == [] and bob["failed"].find("failure").get("type") == "failed"
    assert bob["errored"].find("failure") is not None and bob["needs_review"].find("error") is not None
    assert bob["grader_error"].find("error") is not None and bob["skipped"].find("skipped") is not None
    assert bob["machine"].find("skipped") is not None  # not counted: skipped, not a failure
    assert bob["run"].find("failure") is None and bob["failed"].get("classname") == "tiny.bob"
    alice_run = suites["alice"].find("testcase[@name='run']/failure")
    assert alice_run.get("type") == "timeout-wall" and alice_run.get("message") == "ran past 60 s"
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites.values())


def test_student_text_cannot_break_the_document():
    text = "</failure><script>x</script> \x00\x1b[31m ]]> & \"quotes\""
    root = ET.fromstring(junit_xml([result("<mallory>", [check("x", "failed", message=text)])]))
    failure = root.find("testsuite/testcase[@name='x']/failure")
    assert failure.get("message") == "</failure><script>x</script> [31m ]]> & \"quotes\""
    assert root.find("testsuite").get("name") == "<mallory>"
