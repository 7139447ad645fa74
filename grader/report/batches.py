"""One page over several batches: ``OUT/index.html`` linking every ``OUT/<batch>/index.html``.

``make demo`` grades the examples of every assignment into one folder per assignment; an
instructor may keep a term's batches side by side the same way. The page is built from what each
batch folder already holds (its per-submission JSON files, written by the grader itself), so
it can be rebuilt at any time with ``grader index OUT``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from grader.fsutil import atomic_write
from grader.report.html import _env
from grader.results import SubmissionResult


@dataclass
class Batch:
    """What the index shows of one batch folder."""

    folder: str
    assignment: str
    submissions: int
    statuses: list[tuple[str, int]]
    mean_percent: float
    full_marks: int
    review: int
    data: list[str]
    profiles: list[str]
    isolation: list[str]
    seconds: float
    unreadable: list[str] = field(default_factory=list)


def find(root: Path) -> list[Batch]:
    """Every batch folder directly under ``root`` (one holding ``summary.json``), by name."""
    return [_read(folder) for folder in sorted(p for p in root.iterdir() if (p / "summary.json").is_file())]


def read_results(folder: Path) -> tuple[list[SubmissionResult], list[str]]:
    """The results a batch folder holds (``submissions/*.json``, written by the grader), and the
    names of the files among them that cannot be read as one."""
    results, unreadable = [], []
    for path in sorted((folder / "submissions").glob("*.json")):
        try:
            results.append(SubmissionResult.model_validate_json(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError):
            unreadable.append(path.name)
    return results, unreadable


def _read(folder: Path) -> Batch:
    results, unreadable = read_results(folder)
    shares = [r.share for r in results]
    return Batch(folder=folder.name, assignment=", ".join(sorted({r.assignment for r in results})) or "?",
                 submissions=len(results), statuses=sorted(Counter(r.status for r in results).items()),
                 mean_percent=100 * sum(shares) / len(shares) if shares else 0.0,
                 full_marks=sum(s >= 1.0 for s in shares), review=sum(bool(r.review_note()) for r in results),
                 data=sorted({r.data for r in results}), profiles=sorted({r.profile for r in results if r.profile}),
                 isolation=sorted({r.isolation for r in results}), seconds=sum(r.seconds for r in results),
                 unreadable=unreadable)


def write_index(root: Path) -> Path:
    """Write ``root/index.html`` over the batches under ``root``; returns its path."""
    batches = find(root)
    page = root / "index.html"
    atomic_write(page, _env().get_template("batches.html").render(
        batches=batches, synthetic=any("synthetic" in b.data for b in batches)))
    return page
