"""A check whose target could not be found: what a careful human grader concludes.

Resolution (``grader.targets``) already tried every name, the signature, the arity and the
handout's contract. What is left is decided here, on the host, from the host's own copy of the
code and the run's record of what failed:

* **hidden by a failure** — the cell or module that would define the target raised before its
  ``def``/``class`` ran (a module that stopped at line 12, a cell that failed above its
  definition): ``errored``, naming that file or cell, line and error;
* **nothing of its kind** — the submission defines no class or function of the kind at all: the
  task was not attempted, ``failed``; unless a module does its work under ``if __name__ ==
  "__main__":`` (a script a TA would run, which grading only imports): ``needs-review``;
* **otherwise** (several candidates, or candidates no step could tell apart): ``needs-review``,
  0 points until a person decides, with the candidates. The instructor maps the target to the
  student's name for it (``grader.mappings``) and regrades that one submission.

A target that was found but cannot be built (``unbuildable``: its constructor takes neither the
check's arguments nor any the harness may pick, see ``checks.common.student_way``) is
``needs-review`` too, naming both signatures.
"""

from __future__ import annotations

import re
from typing import Any

from grader import observations
from grader.checks.base import CheckSpec
from grader.results import CheckResult
from grader.sandbox import failures
from grader.targets import TargetSpec

FAILED_CELL = ("error", "timeout", "died")


def judged(spec: CheckSpec, record: observations.ProbeRecord, execution: Any, submitted: list[tuple[str, str]],
           target: TargetSpec | None) -> CheckResult:
    """The result of ``spec`` whose record says its target is unresolved."""
    from grader.judging import result_for

    u = record.unresolved
    assert u is not None
    if u.problem == "unbuildable":  # found, but no way to build it that the handout and the code give
        message = f"{'; '.join(u.candidates)}. A person decides: 0 points until then"
        result = result_for(spec, "needs-review", 0.0, message, record=record)
        result.review = f"how is {u.target} built? {'; '.join(u.candidates)}"
        return result
    cause = hidden_by_failure(_names(target), execution, submitted)
    if cause:
        return result_for(spec, "errored", 0.0, f"no {u.looked_for}: {cause}", record=record)
    if u.problem == "missing" and not u.candidates:
        if (guarded := main_block(submitted)) is not None:
            result = result_for(spec, "needs-review", 0.0, f"no {u.looked_for} at module level; the work of {guarded} "
                                "runs under `if __name__ == \"__main__\":`, which grading (an import) does not run, "
                                "so it may be built there. A person decides: 0 points until then", record=record)
            result.review = f"is {u.target} built under the __main__ block of {guarded}?"
            return result
        return result_for(spec, "failed", 0.0, f"no {u.looked_for}: the submission defines nothing of that kind",
                          record=record)
    listed = ", ".join(u.candidates)
    what = (f"no match for {u.looked_for}; defined: {listed}" if u.problem == "missing"
            else f"several matches for {u.looked_for}: {listed}")
    message = f"{what}. A person decides: 0 points until the target is mapped to the student's name for it"
    if (ran := failures.summary(execution)) is not None:
        message += f" (the run: {ran})"
    result = result_for(spec, "needs-review", 0.0, message, record=record)
    result.review = f"which object is {u.target}? {'candidates' if u.problem == 'ambiguous' else 'defined'}: {listed}"
    return result


def main_block(submitted: list[tuple[str, str]]) -> str | None:
    """``script.py, line 150``: the first module (the host's copy) with an ``if __name__ ==
    "__main__":`` block, the place a script does its work when run, not when imported."""
    for label, text in submitted:
        if not label.endswith(".py"):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if MAIN_GUARD.match(line):
                return f"{label}, line {number}"
    return None


MAIN_GUARD = re.compile(r"""^if\s+__name__\s*==\s*['"]__main__['"]\s*:""")


def _names(target: TargetSpec | None) -> list[str]:
    """The bare names the target may be defined under (``task2.ExampleModel`` -> ``ExampleModel``)."""
    if target is None:
        return []
    return list(dict.fromkeys(n.rsplit(".", 1)[-1] for n in [target.name, *target.aliases] if n))


def hidden_by_failure(names: list[str], execution: Any, submitted: list[tuple[str, str]]) -> str | None:
    """Where a failure kept one of ``names`` from being defined, in words; None when no failing
    cell or module defines any of them (after the line that raised)."""
    if execution is None or not names:
        return None
    stopped = _failed_places(execution)
    for label, text in submitted:
        if label not in stopped:
            continue
        error_line, said = stopped[label]
        for name in names:
            definition = re.search(rf"^[ \t]*(?:def|class)[ \t]+{re.escape(name)}\b|^{re.escape(name)}[ \t]*=",
                                   text, re.MULTILINE)
            if definition is None:
                continue
            line = text.count("\n", 0, definition.start()) + 1
            if error_line is None or error_line <= line:
                return f"{label} defines `{name}` at line {line}, but it stopped before: {said}"
    return None


def _failed_places(execution: Any) -> dict[str, tuple[int | None, str]]:
    """Each failed cell (``cell N``) or module file, with the line that raised there (None when
    the error came from elsewhere) and the failure in words."""
    places: dict[str, tuple[int | None, str]] = {}
    for cell in execution.cells:
        if cell.type == "code" and cell.status in FAILED_CELL:
            line = cell.raised.line if cell.raised else None
            places[f"cell {cell.number}"] = (line, failures.describe(failures.location(cell.number, None, line),
                                                                     cell.raised, cell.error or cell.status))
    for module in execution.modules:
        if module.status != "error":
            continue
        own_file = module.name.replace(".", "/") + ".py"
        raised = module.raised
        line = raised.line if raised is not None and raised.file == own_file else None
        where = failures.location(None, raised.file if raised and raised.file else own_file,
                                  raised.line if raised else None)
        places[own_file] = (line, failures.describe(where, raised, module.error))
    return places
