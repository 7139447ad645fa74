"""``notebook``: structure of a notebook run: no failing cells, markdown explanations, figures.

Everything is observed from the fresh execution and the submitted cells' sources, never from
outputs stored in the submitted file (those are cleared before the run).

Figures are counted as plots (``grader.sandbox.figures``): each subplot of a matplotlib figure
that plots data counts one, so loss and accuracy side by side in one figure are two; a grid of
images counts one. Failing cells are named "cell N, line L", N counted from 1 with markdown
cells included, as in the run's status message and ``number`` in the JSON's cells.

A submission in the module form has no notebook structure to judge, and a rubric that accepts
modules (``submission.forms: [notebook, module]``) cannot hold the lack of it against the student:
for a module the check is *not applicable*, ``CheckSkipped``, left out of the score and of the
maximum. The rubric's acceptance need not be checked here: the pipeline rejects a submission in
a form the rubric does not list before anything runs, so a module only reaches this judge when
the rubric accepts modules.

The form the run reports is the student's process's word, and a skipped check is worth more to a
weak notebook than a failed one. So the skip needs the host's own copy of the submitted code
(``recheck``, ``submission.code_texts``): module files (``task2.py``) confirm a module; notebook
cells (``cell 3``) under a reported module fail the check for review. Without that copy the judge
alone fails a module, as it cannot tell a real one from a forged record.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.checks import register
from grader.checks.base import CheckKind, CheckSkipped, CheckSpec, Observation, ProbeContext, Verdict
from grader.checks.toolkit.capture import JUDGE_ONLY
from grader.sandbox import failures


class NotebookSpec(CheckSpec):
    kind: Literal["notebook"]
    executes: bool = Field(True, description="every code cell runs without an error or a timeout",
                           json_schema_extra=JUDGE_ONLY)
    min_markdown_cells: int = Field(0, ge=0, description="markdown cells explaining the steps",
                                    json_schema_extra=JUDGE_ONLY)
    min_markdown_words: int = Field(0, ge=0, description="words across all markdown cells",
                                    json_schema_extra=JUDGE_ONLY)
    min_figures: int = Field(0, ge=0, description="plots shown by the fresh run: each subplot that plots data "
                                                  "counts one; a figure of images (imshow) or any other image, one",
                                                  json_schema_extra=JUDGE_ONLY)


class FailedCell(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    number: int  # from 1, markdown cells counted
    status: str
    error: str
    line: int | None = None
    missing_module: str | None = None


class StandIns(Observation):
    """The host's knowledge for this check (``profiles.plan``): when the data served is a synthetic
    stand-in, each split's ``(real size, stand-in size)``."""

    stand_ins: list[tuple[int, int]]


class NotebookObservation(Observation):
    form: str
    code_cells: int
    markdown_cells: int
    markdown_words: int
    figures: int
    failed_cells: list[FailedCell]


@register("notebook")
class Notebook(CheckKind):
    Spec = NotebookSpec
    Observation = NotebookObservation

    @staticmethod
    def probe(spec: NotebookSpec, ctx: ProbeContext) -> NotebookObservation:
        cells = ctx.execution.get("cells", [])
        failed = [FailedCell(number=c["index"] + 1, status=c["status"], error=c.get("error") or "",
                             line=(c.get("raised") or {}).get("line"),
                             missing_module=(c.get("raised") or {}).get("missing_module"))
                  for c in cells if c["type"] == "code" and c["status"] in ("error", "timeout")]
        markdown = [c for c in cells if c["type"] == "markdown"]
        return NotebookObservation(
            form=ctx.execution.get("form", "module"),
            code_cells=sum(c["type"] == "code" for c in cells),
            markdown_cells=len(markdown),
            markdown_words=sum(c.get("words", 0) for c in markdown),
            figures=sum(c.get("figures", 0) for c in cells),
            failed_cells=failed)

    @staticmethod
    def judge(spec: NotebookSpec, obs: NotebookObservation, expected: None) -> Verdict:
        if obs.form != "notebook":  # not applicable once recheck confirms the form with the host's copy
            return Verdict.failed(f"the run reports a {obs.form}, not a notebook; this check needs a notebook")
        rows = []
        if spec.executes:
            shown = obs.failed_cells[:3]
            detail = "; ".join(_failure(c) for c in shown)
            if len(obs.failed_cells) > len(shown):
                detail += f"; and {len(obs.failed_cells) - len(shown)} more (cells "\
                          f"{', '.join(str(c.number) for c in obs.failed_cells[len(shown):])})"
            rows.append({"requirement": "runs without errors", "got": detail or "all cells ran",
                         "ok": not obs.failed_cells})
        if spec.min_markdown_cells:
            rows.append({"requirement": f"at least {spec.min_markdown_cells} markdown cells",
                         "got": str(obs.markdown_cells), "ok": obs.markdown_cells >= spec.min_markdown_cells})
        if spec.min_markdown_words:
            rows.append({"requirement": f"at least {spec.min_markdown_words} words of explanation",
                         "got": str(obs.markdown_words), "ok": obs.markdown_words >= spec.min_markdown_words})
        if spec.min_figures:
            rows.append({"requirement": f"at least {spec.min_figures} plots",
                         "got": str(obs.figures), "ok": obs.figures >= spec.min_figures})
        if not rows:
            return Verdict.passed("no structural requirement set")
        return Verdict.from_requirements(rows)

    @staticmethod
    def recheck(spec: NotebookSpec, obs: NotebookObservation, verdict: Verdict, found_as: str | None,
                submitted: list[tuple[str, str]], expected: StandIns | None = None,
                target_names: tuple[str, ...] = ()) -> Verdict:
        """Not applicable to a module, as the host's copy of the code shows it; a reported module
        whose code the host read as notebook cells fails for review. A cell that failed on a line
        needing the real data set's size, on a synthetic stand-in, is left to a person."""
        form = submitted_form(submitted)
        stand_ins = expected.stand_ins if isinstance(expected, StandIns) else []
        sized = [c for c in obs.failed_cells if _needs_real_size(c, submitted, stand_ins)]
        if form == "notebook" and sized and obs.form == "notebook":
            return _without_stand_in_failures(spec, obs, sized, stand_ins)
        if form == "module":
            raise CheckSkipped("the submission is a module, which this assignment accepts: notebook structure "
                               "(markdown cells, figures shown) is asked of notebooks only, so this check does not apply")
        if form == "notebook" and obs.form != "notebook":
            failed = Verdict.failed(f"the run reports a {obs.form}, but a notebook was submitted")
            failed.review = "the execution record contradicts the submitted file (tampered record?)"
            return failed
        return verdict


def _needs_real_size(cell: FailedCell, submitted: list[tuple[str, str]], stand_ins: list[tuple[int, int]]) -> bool:
    """Whether ``cell`` failed on a line (the host's copy) that writes a real split's size as a
    literal (``assert X.shape[0] == 60000``) while the harness served a smaller synthetic stand-in."""
    if not stand_ins or cell.line is None:
        return False
    text = dict(submitted).get(f"cell {cell.number}")
    lines = text.splitlines() if text else []
    if not 0 < cell.line <= len(lines):
        return False
    literals = {int(n.replace("_", "")) for n in re.findall(r"(?<![\w.])\d[\d_]*(?![\w.])", lines[cell.line - 1])}
    return any(real in literals and real != small for real, small in stand_ins)


def _without_stand_in_failures(spec: NotebookSpec, obs: NotebookObservation, sized: list[FailedCell],
                               stand_ins: list[tuple[int, int]]) -> Verdict:
    """The verdict with the cells that need the real data set's size left out, for a person to see:
    they would run on the real data, and the synthetic stand-in is the grader's choice, not the student's."""
    verdict = Notebook.judge(spec, obs.model_copy(update={"failed_cells": [c for c in obs.failed_cells
                                                                           if c not in sized]}), None)
    said = "; ".join(_failure(c) for c in sized)
    sizes = ", ".join(f"{small:,} instead of {real:,}" for real, small in stand_ins)
    verdict.message += (f" ({said}: the line expects the real data set's size, and this run served a synthetic "
                        f"stand-in ({sizes} images), so it is not held against you; a person checks it)")
    verdict.review = f"cell(s) {', '.join(str(c.number) for c in sized)} need the real data set's size to run"
    return verdict


NOTEBOOK_CELL = re.compile(r"cell \d+")  # submission.code_texts' label of a notebook code cell


def submitted_form(submitted: list[tuple[str, str]]) -> Literal["notebook", "module"] | None:
    """The form of the submission by the host's copy of its code (``submission.code_texts``): module
    files are labelled by their path (``task2.py``), notebook code cells ``cell N``. ``None`` when
    that copy holds no code (a notebook without code cells) or labels of both kinds."""
    if submitted and all(label.endswith(".py") for label, _ in submitted):
        return "module"
    if submitted and all(NOTEBOOK_CELL.fullmatch(label) for label, _ in submitted):
        return "notebook"
    return None


def _failure(cell: FailedCell) -> str:
    """``cell 3, line 2: NameError: ...``, or the import of a package the environment lacks."""
    where = failures.location(cell.number, None, cell.line)
    missing = failures.missing_package(cell.missing_module) if cell.missing_module else None
    if missing is not None:
        return f"{where}: imports `{missing[0]}`, {missing[1]}"
    return f"{where}: {cell.error or cell.status}"
