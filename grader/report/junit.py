"""JUnit XML from a batch's results, for CI systems that show test reports (GitHub, GitLab, Jenkins).

One ``<testsuite>`` per submission (named by the student id), one ``<testcase>`` per check
(``classname`` is ``<assignment>.<student>``), and a first testcase, ``run``, that fails when the
submission did not run to completion (rejected, timed out, crashed...). Outcomes map as
``OUTCOME_ELEMENTS`` says; a check left out of the score for want of something on the grading
machine (``counted: false``) is skipped whatever its outcome. Messages are the checks' own, with
the characters XML 1.0 cannot hold removed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from grader.results import Outcome, SubmissionResult

# The JUnit element each outcome becomes (None: a plain passing testcase). A check the grader could
# not decide, or failed on itself, is an error: a build must not pass on what nobody judged.
OUTCOME_ELEMENTS: dict[Outcome, str | None] = {
    "passed": None,
    "failed": "failure",
    "errored": "failure",  # the student's code raised: the submission's failure, not the harness's
    "skipped": "skipped",
    "needs-review": "error",
    "grader-error": "error",
}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def junit_xml(results: list[SubmissionResult]) -> str:
    """The results as one ``<testsuites>`` document (UTF-8 text with its XML declaration)."""
    root = ET.Element("testsuites", name="grader")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for result in sorted(results, key=lambda r: r.student):
        suite = _suite(result)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{sum(r.seconds for r in results):.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(result: SubmissionResult) -> ET.Element:
    suite = ET.Element("testsuite", name=_text(result.student), time=f"{result.seconds:.3f}")
    classname = _text(f"{result.assignment}.{result.student}")
    counts = dict.fromkeys(("failures", "errors", "skipped"), 0)
    run = ET.SubElement(suite, "testcase", name="run", classname=classname, time="0")
    if result.status != "ok":
        ET.SubElement(run, "failure", type=result.status, message=_text(result.message[:500])).text = _text(result.message)
        counts["failures"] += 1
    for check in result.checks:
        case = ET.SubElement(suite, "testcase", name=_text(check.id), classname=classname, time=f"{check.seconds:.3f}")
        element = "skipped" if not check.counted else OUTCOME_ELEMENTS[check.outcome]
        if element is None:
            continue
        detail = ET.SubElement(case, element, message=_text(check.message[:500]))
        if element != "skipped":
            detail.set("type", check.outcome)
            detail.text = _text("\n".join(filter(None, [check.message, check.traceback])))
        counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[element]] += 1
    suite.set("tests", str(len(result.checks) + 1))
    for key, value in counts.items():
        suite.set(key, str(value))
    return suite


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)
