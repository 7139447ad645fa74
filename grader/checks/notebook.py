"""``notebook``: structure of a notebook run: no failing cells, markdown explanations, figures.

Everything is observed from the fresh execution and the submitted cells' sources, never from
outputs stored in the submitted file (those are cleared before the run).

Figures are counted as plots (``grader.sandbox.figures``): each subplot of a matplotlib figure
that plots data counts one, so loss and accuracy side by side in one figure are two; a grid of
images counts one. Failing cells are named "cell N, line L", N counted from 1 with markdown
cells included, as in the run's status message and ``number`` in the JSON's cells.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.checks import register
from grader.checks.base import CheckKind, CheckSpec, Observation, ProbeContext, Verdict
from grader.sandbox import failures


class NotebookSpec(CheckSpec):
    kind: Literal["notebook"]
    executes: bool = Field(True, description="every code cell runs without an error or a timeout")
    min_markdown_cells: int = Field(0, ge=0, description="markdown cells explaining the steps")
    min_markdown_words: int = Field(0, ge=0, description="words across all markdown cells")
    min_figures: int = Field(0, ge=0, description="plots shown by the fresh run: each subplot that plots data "
                                                  "counts one; a figure of images (imshow) or any other image, one")


class FailedCell(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    number: int  # from 1, markdown cells counted
    status: str
    error: str
    line: int | None = None
    missing_module: str | None = None


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
        if obs.form != "notebook":
            return Verdict.failed(f"the submission is a {obs.form}, not a notebook; this check needs a notebook")
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


def _failure(cell: FailedCell) -> str:
    """``cell 3, line 2: NameError: ...``, or the import of a package the environment lacks."""
    where = failures.location(cell.number, None, cell.line)
    missing = failures.missing_package(cell.missing_module) if cell.missing_module else None
    if missing is not None:
        return f"{where}: imports `{missing[0]}`, {missing[1]}"
    return f"{where}: {cell.error or cell.status}"
