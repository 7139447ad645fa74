"""HTML pages rendered with Jinja; autoescape is on, so student text can never become markup."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape

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


def render_summary(results: list[SubmissionResult], stems: list[str], rubric: LoadedRubric) -> str:
    """The batch page: what needs a person, the statuses, the score histogram, the student table
    (sortable and filterable in the browser) and each check over the graded submissions."""
    from grader.report import triage

    bins = [0] * 10
    for r in results:
        bins[min(9, int(r.share * 10))] += 1
    seconds = sorted(r.seconds for r in results)
    attention = triage.needs_attention(results, stems)
    marked = {student for row in attention for student, _ in row.students}
    return _env().get_template("summary.html").render(
        rows=list(zip(results, stems)), rubric=rubric.model, statuses=sorted(Counter(r.status for r in results).items()),
        checks=triage.check_summaries(results, rubric), graded=sum(triage.is_graded(r) for r in results),
        bins=bins, peak=max(bins) or 1, synthetic=any(r.data == "synthetic" for r in results),
        uncounted=sorted({c.id for r in results for c in r.checks if not c.counted}),
        profiles=sorted({r.profile for r in results if r.profile}), attention=attention, marked=marked,
        median_seconds=seconds[len(seconds) // 2] if seconds else 0.0, total_seconds=sum(seconds))
