"""What failed while the student's code ran, said once, with where and what.

The runner records every failing cell and every module that raised at import (``Raised``: type,
message, file, line, a missing module). This module turns those records into the words the
run's status message and the ``notebook`` check use:

* ``cell 3, line 2: NameError: name 'x' is not defined``; ``helpers.py, line 4: RuntimeError: ...``;
* an import of something not installed is said once per package, with every place that
  imports it: "the notebook imports `foo` (cell 3, line 2), which is not installed in the
  grading environment", instead of one confusing failure per later cell.

Cells are "cell N" with N counted from 1, markdown cells included (``CellRun.number``).
"""

from __future__ import annotations

from typing import Any

from grader import environment

SHOWN_IN_FULL = 3  # failures described in full; the rest are listed by place


def location(number: int | None, file: str | None, line: int | None) -> str:
    """``cell 3, line 2`` for a cell (``number``), ``helpers.py, line 4`` for a file."""
    place = f"cell {number}" if number is not None else (file or "the code")
    return f"{place}, line {line}" if line is not None else place


def missing_package(module: str) -> tuple[str, str] | None:
    """Why ``module`` could not be imported, when the grading environment is the reason: the
    name to show and a clause (``("foo", "which is not installed in the grading environment")``,
    ``("sklearn.nothere", "which the installed `sklearn` does not have")``). None when the
    environment has it (the student's own missing file, say): the error's own words say more."""
    top = module.split(".")[0]
    if not environment.installed(top):
        return top, "which is not installed in the grading environment"
    if module != top:
        return module, f"which the installed `{top}` does not have"
    return None


def describe(where: str, raised: Any, error: str | None) -> str:
    """One failure: ``where: Type: message``, or the import of a missing package."""
    if raised is not None and raised.missing_module and (missing := missing_package(raised.missing_module)):
        return f"{where}: imports `{missing[0]}`, {missing[1]}"
    text = f"{raised.type}: {raised.message}" if raised is not None else (error or "failed")
    return f"{where}: {text}"


def summary(execution: Any) -> str | None:
    """The status message of a run whose code raised somewhere but otherwise ran: what failed
    and where, missing packages first; None when nothing failed."""
    if execution is None:
        return None
    failures = _failures(execution)
    if not failures:
        return None
    notebook = execution.form == "notebook"
    by_package: dict[tuple[str, str], list[str]] = {}
    others: list[tuple[str, str]] = []
    for place, where, raised, error in failures:
        missing = missing_package(raised.missing_module) if raised is not None and raised.missing_module else None
        if missing is not None:
            by_package.setdefault(missing, []).append(where)
        else:
            others.append((place, describe(where, raised, error)))
    subject = "the notebook" if notebook else "the code"
    parts = [f"{subject} imports `{name}` ({'; '.join(places)}), {clause}" for (name, clause), places in by_package.items()]
    parts += [text for _, text in others[:SHOWN_IN_FULL]]
    if len(others) > SHOWN_IN_FULL:
        rest = [place for place, _ in others[SHOWN_IN_FULL:]]
        parts.append(f"and {len(rest)} more ({', '.join(rest)})")
    tail = ("the cells after a failing one still ran and were graded" if notebook else
            "what each module defined before its error, and the other modules, were graded")
    return "; ".join(parts) + "; " + tail


def _failures(execution: Any) -> list[tuple[str, str, Any, str | None]]:
    """``(place, where, raised, error)`` of each failing cell (errors, not timeouts) or module:
    ``place`` is the cell or file, ``where`` adds the line."""
    found = []
    for cell in execution.cells:
        if cell.type == "code" and cell.status == "error":
            line = cell.raised.line if cell.raised else None
            found.append((f"cell {cell.number}", location(cell.number, None, line), cell.raised, cell.error))
    for module in execution.modules:
        if module.status == "error":
            raised = module.raised
            file = raised.file if raised is not None and raised.file else f"{module.name}.py"
            found.append((file, location(None, file, raised.line if raised else None), raised, module.error))
    return found
