"""What the batch page tells a person first: what needs their attention, how each check fared
among the submissions that were actually graded, and what its failures say most often."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from grader.report.html import format_points
from grader.results import SubmissionResult
from grader.rubric import LoadedRubric

# The order of the "needs attention" list: what costs a student points until a person acts first.
ATTENTION_ORDER = ["undecided", "grader error", "crash", "timeout", "rejected", "flagged", "source scan", "identical",
                   "similar"]
_TIMEOUTS = {"timeout-wall", "cell-timeout"}
_GRADER_FAULTS = {"sandbox-error"}
MOST_SAID = 3  # failure messages shown per check
MAX_SIMILAR_ROWS = 50  # similar pairs in the list, highest first; the rest are counted
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


@dataclass
class Attention:
    """One row of the "needs attention" list."""

    what: str  # one of ATTENTION_ORDER
    students: list[tuple[str, str]]  # (student id, page stem)
    why: str
    check: str = ""
    points: str = ""
    line: str = ""
    page: str = ""  # a page about the row beyond the students' own (a similar pair's side by side)


@dataclass
class CheckSummary:
    """A check over the graded submissions: its pass rate and its most frequent failure messages."""

    id: str
    title: str
    visibility: str
    points: float
    passed: int
    graded: int
    failures: list[tuple[int, str]] = field(default_factory=list)  # (how many, a message of that shape)

    @property
    def rate(self) -> float:
        return 100 * self.passed / self.graded if self.graded else 0.0


def is_graded(result: SubmissionResult) -> bool:
    """Whether the submission's checks say anything about the student's work: a rejected file or a
    run the machine failed did not run the student's code to the end of the grader's choosing."""
    return result.status != "rejected" and result.status not in _GRADER_FAULTS


def needs_attention(results: list[SubmissionResult], stems: list[str], similar: Any = None) -> list[Attention]:
    """Every submission a person should look at, with why: undecided targets, grader errors,
    crashes and timeouts, rejected files, checks flagged for review, source-scan flags, groups
    of identical submissions, and pairs sharing their code (``similar``, a similarity report)."""
    rows: list[Attention] = []
    for r, stem in zip(results, stems):
        who = [(r.student, stem)]
        if r.status in _GRADER_FAULTS:
            rows.append(Attention("grader error", who, f"{r.status}: {r.message}"))
        elif r.status in _TIMEOUTS:
            rows.append(Attention("timeout", who, f"{r.status}: {r.message}"))
        elif r.status == "rejected":
            rows.append(Attention("rejected", who, r.message))
        elif r.status != "ok":
            rows.append(Attention("crash", who, f"{r.status}: {r.message}"))
        for c in r.checks:
            if c.outcome == "needs-review":
                rows.append(Attention("undecided", who, c.review or c.message, c.id, format_points(c.max_points)))
            elif c.outcome == "grader-error" and r.status not in _GRADER_FAULTS:
                rows.append(Attention("grader error", who, c.message, c.id, format_points(c.max_points)))
            elif c.review:
                rows.append(Attention("flagged", who, c.review, c.id, format_points(c.max_points)))
        for f in r.flags:
            rows.append(Attention("source scan", who, f"{f.where}: {f.what}", line=f.line))
    by_content: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r, stem in zip(results, stems):
        if r.status != "rejected":
            by_content[r.content_hash].append((r.student, stem))
    for group in by_content.values():
        if len(group) > 1:
            rows.append(Attention("identical", group, f"{len(group)} submissions with the same content"))
    stem_of = dict(zip((r.student for r in results), stems))
    pairs = similar.pairs if similar is not None else []
    if len(pairs) > MAX_SIMILAR_ROWS:
        rows.append(Attention("similar", [], f"{len(pairs) - MAX_SIMILAR_ROWS} more pairs over the threshold, "
                                             "listed under Similar code and in similarity.json"))
    for pair in pairs[:MAX_SIMILAR_ROWS]:
        second = (pair.second, stem_of.get(pair.second, "")) if not pair.second_term else None
        rows.append(Attention("similar", [(pair.first, stem_of.get(pair.first, "")), *([second] if second else [])],
                              f"{pair.score:.0%} of the code in common"
                              + (f" with {pair.second} of {pair.second_term}" if pair.second_term else ""),
                              page=pair.page))
    return sorted(rows, key=lambda row: ATTENTION_ORDER.index(row.what))


def check_summaries(results: list[SubmissionResult], rubric: LoadedRubric) -> list[CheckSummary]:
    """Per check of the rubric: passed over graded submissions (where the check counted), and what
    its failures say most often, messages grouped by their shape (numbers aside)."""
    graded = [r for r in results if is_graded(r)]
    summaries = []
    for spec in rubric.model.checks:
        ran = [c for r in graded for c in r.checks if c.id == spec.id and c.counted]
        said: Counter[str] = Counter()
        example: dict[str, str] = {}
        for c in ran:
            if c.outcome in ("failed", "errored"):
                shape = _NUMBER.sub("#", c.message)
                said[shape] += 1
                example.setdefault(shape, c.message)
        summaries.append(CheckSummary(
            id=spec.id, title=spec.title or "", visibility=spec.visibility, points=spec.points,
            passed=sum(c.outcome == "passed" for c in ran), graded=len(ran),
            failures=[(n, example[shape]) for shape, n in said.most_common(MOST_SAID)]))
    return summaries
