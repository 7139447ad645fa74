"""HTML pages rendered with Jinja; autoescape is on, so student text can never become markup."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from grader.results import SubmissionResult
from grader.rubric import LoadedRubric


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(loader=PackageLoader("grader.report", "templates"),
                      autoescape=select_autoescape(["html"], default_for_string=True, default=True))
    env.filters["pts"] = format_points
    return env


def format_points(value: float) -> str:
    """``17.666666`` -> ``17.67``, ``2.0`` -> ``2``: points as a person writes them."""
    return f"{round(value, 2):g}"


def render_submission(result: SubmissionResult, student_view: bool = False, withheld: str = "") -> str:
    """A submission's page: the staff's (every check, review notes, flags, a link to the batch)
    or, with ``student_view``, the student's, from ``result.for_students(...)``: standalone, with
    nothing that is only for staff; ``withheld`` says what it leaves out."""
    failing_cells = [c for c in result.cells if c.get("status") not in ("ok", "skipped") and c.get("type") == "code"]
    return _env().get_template("submission.html").render(r=result, failing_cells=failing_cells,
                                                         student_view=student_view, withheld=withheld)


def render_similar_pair(pair: Any, first: str, second: str, slices: tuple[Any, Any]) -> str:
    """Two submissions' code side by side, the regions they share marked. The code is escaped by
    copydetect's highlighter, which adds only the marks given here."""
    from copydetect.utils import highlight_overlap

    sides = [highlight_overlap(code, part, "<mark>", "</mark>", escape_html=True)[0] if len(part[0]) else escape(code)
             for code, part in ((first, slices[0]), (second, slices[1]))]
    return _env().get_template("similarity.html").render(pair=pair, sides=[Markup(side) for side in sides])


def render_summary(results: list[SubmissionResult], stems: list[str], rubric: LoadedRubric,
                   similar: Any = None) -> str:
    """The batch page: what needs a person, the statuses, the score histogram, the student table
    (sortable and filterable in the browser), each check over the graded submissions, and the
    pairs of submissions sharing their code (``similar``, a ``grader.similarity.Report``)."""
    from grader.report import triage

    bins = [0] * 10
    for r in results:
        bins[min(9, int(r.share * 10))] += 1
    seconds = sorted(r.seconds for r in results)
    attention = triage.needs_attention(results, stems, similar)
    marked = {student for row in attention for student, _ in row.students}
    return _env().get_template("summary.html").render(
        rows=list(zip(results, stems)), rubric=rubric.model,
        statuses=sorted(Counter(r.status for r in results).items()),
        checks=triage.check_summaries(results, rubric), graded=sum(triage.is_graded(r) for r in results),
        bins=bins, peak=max(bins) or 1, synthetic=any(r.data == "synthetic" for r in results),
        uncounted=sorted({c.id for r in results for c in r.checks if not c.counted}),
        profiles=sorted({r.profile for r in results if r.profile}), attention=attention, marked=marked,
        similar=similar,
        median_seconds=seconds[len(seconds) // 2] if seconds else 0.0, total_seconds=sum(seconds))
