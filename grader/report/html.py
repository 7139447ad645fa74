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


def review_queue(results: list[SubmissionResult], stems: list[str]) -> list[dict[str, str]]:
    """What waits for a person: undecided targets (``needs-review``) first, one row per check; then
    flags raised on checks that were judged (a forbidden call, ...); then, one row per line, what
    the host's source scan flagged (``SubmissionResult.flags``), which costs no points."""
    rows = []
    for r, stem in zip(results, stems):
        for c in r.checks:
            if c.outcome == "needs-review" or c.review:
                rows.append({"student": r.student, "stem": stem, "check": c.id, "undecided": c.outcome == "needs-review",
                             "why": c.review or c.message, "points": format_points(c.max_points), "line": ""})
        for f in r.flags:
            rows.append({"student": r.student, "stem": stem, "check": "source scan", "undecided": False,
                         "why": f"{f.where}: {f.what}", "points": "", "line": f.line})
    return sorted(rows, key=lambda row: not row["undecided"])


def render_summary(results: list[SubmissionResult], stems: list[str], rubric: LoadedRubric) -> str:
    statuses = Counter(r.status for r in results)
    per_check = []
    for spec in rubric.model.checks:
        outcomes = [c.outcome for r in results for c in r.checks if c.id == spec.id]
        passed = sum(o == "passed" for o in outcomes)
        per_check.append({"id": spec.id, "title": spec.title or "", "visibility": spec.visibility,
                          "points": spec.points, "passed": passed, "total": len(outcomes),
                          "rate": 100 * passed / len(outcomes) if outcomes else 0.0})
    bins = [0] * 10
    for r in results:
        bins[min(9, int(r.share * 10))] += 1
    seconds = sorted(r.seconds for r in results)
    return _env().get_template("summary.html").render(
        rows=list(zip(results, stems)), rubric=rubric.model, statuses=sorted(statuses.items()),
        per_check=per_check, bins=bins, peak=max(bins) or 1,
        synthetic=any(r.data == "synthetic" for r in results),
        uncounted=sorted({c.id for r in results for c in r.checks if not c.counted}),
        profiles=sorted({r.profile for r in results if r.profile}), queue=review_queue(results, stems),
        median_seconds=seconds[len(seconds) // 2] if seconds else 0.0, total_seconds=sum(seconds))
