"""Reports: per submission an HTML page and a JSON file; per batch a summary page, a CSV
gradebook and ``summary.json``. Layout of the output folder::

    OUT/index.html            batch summary page
    OUT/summary.json          [{student, status, score, max_score, checks: [...]}, ...]
    OUT/gradebook.csv         one row per student, one column per check
    OUT/submissions/<student>.html, <student>.json
    OUT/feedback/<student>.html  what the student may see (``SubmissionResult.for_students``):
                                 visible checks, and hidden ones once the rubric releases them
"""

from __future__ import annotations

from pathlib import Path

from grader.report.exporters import gradebook_csv, result_json, summary_json
from grader.report.html import render_submission, render_summary
from grader import similarity
from grader.fsutil import atomic_write
from grader.results import SubmissionResult
from grader.rubric import LoadedRubric


def page_names(results: list[SubmissionResult]) -> list[str]:
    """A file stem per result: the student id, made unique when two submissions share it."""
    seen: dict[str, int] = {}
    for r in results:
        seen[r.student] = seen.get(r.student, 0) + 1
    return [r.student if seen[r.student] == 1 else f"{r.student}-{r.content_hash[:8]}" for r in results]


def write_submission(result: SubmissionResult, stem: str, out: Path) -> Path:
    page = out / "submissions" / f"{stem}.html"
    atomic_write(out / "submissions" / f"{stem}.json", result_json(result))
    atomic_write(page, render_submission(result))
    return page


def write_batch(results: list[SubmissionResult], rubric: LoadedRubric, out: Path) -> Path:
    """Write every report of a batch; returns the summary page."""
    stems = page_names(results)
    released = rubric.model.feedback.hidden_released()
    withheld = "" if released else _withheld(rubric)
    for result, stem in zip(results, stems):
        write_submission(result, stem, out)
        atomic_write(out / "feedback" / f"{stem}.html", render_submission(
            result.for_students(include_hidden=released), student_view=True, withheld=withheld))
    atomic_write(out / "summary.json", summary_json(results))
    atomic_write(out / "gradebook.csv", gradebook_csv(results, rubric))
    index = out / "index.html"
    atomic_write(index, render_summary(results, stems, rubric, similarity.Report.load(out)))
    return index


def _withheld(rubric: LoadedRubric) -> str:
    """What a student page before the release says about the hidden checks it leaves out."""
    hidden = [c for c in rubric.model.checks if c.visibility == "hidden"]
    if not hidden:
        return ""
    when = rubric.model.feedback.release_hidden_after
    return (f"This page shows the checks you could run yourself; {len(hidden)} hidden check(s) worth "
            f"{sum(c.points for c in hidden):g} point(s) are graded too and count in your grade"
            + (f". They appear here from {when.isoformat()}." if when else "."))
