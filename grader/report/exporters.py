"""Machine-readable exports: per-submission JSON, the batch summary JSON and a CSV gradebook."""

from __future__ import annotations

import csv
import io
import json

from grader.results import SubmissionResult
from grader.rubric import LoadedRubric


def result_json(result: SubmissionResult) -> str:
    return result.model_dump_json(indent=2)


def summary_json(results: list[SubmissionResult]) -> str:
    return json.dumps([r.summary_row() for r in results], indent=2)


def gradebook_csv(results: list[SubmissionResult], rubric: LoadedRubric | None = None) -> str:
    """One row per submission: identity, status, total, then the points of every check (the
    rubric's checks in its order; without the rubric, every check the results hold, in theirs)."""
    ids = [c.id for c in rubric.model.checks] if rubric is not None else \
        list(dict.fromkeys(c.id for r in results for c in r.checks))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["student", "status", "score", "max_score", "percent", *ids, "review", "content_hash"])
    for r in results:
        points = {c.id: c.points for c in r.checks if c.counted}  # blank: skipped here, not in the score
        percent = round(100 * r.share, 1)
        writer.writerow([spreadsheet_cell(r.student), r.status, r.score, r.max_score, percent,
                         *[points.get(i, "") for i in ids], spreadsheet_cell(r.review_note()), r.content_hash])
    return buf.getvalue()


def spreadsheet_cell(text: str) -> str:
    """Spreadsheets execute cells starting with = + - @: keep a student id from becoming a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
