"""The self-check table a student sees in the terminal: visible checks only."""

from __future__ import annotations

import shutil
import textwrap

from grader.report.html import format_points
from grader.results import SubmissionResult

MARKS = {"passed": "PASS", "failed": "FAIL", "errored": "ERROR", "skipped": "SKIP", "needs-review": "REVIEW",
         "grader-error": "GRADER-ERROR"}


def self_check_table(result: SubmissionResult, graded_later: int | None = None) -> str:
    """A readable table of the visible checks, the visible score and the run's status.
    ``graded_later``: how many hidden checks there are, where the result cannot say (a student
    kit holds none of them); by default, the result's own."""
    student = result.for_students()
    width = max(70, min(shutil.get_terminal_size((100, 20)).columns, 120))
    id_w = max([len("check")] + [len(c.id) for c in student.checks])
    head = f"{'check':<{id_w}}  {'result':<12} {'points':>9}  feedback"
    lines = [f"{result.assignment}: {result.source}", f"status: {result.status} ({result.message})"]
    lines += [f"note: {note}" for note in result.notes]
    if result.data == "synthetic":
        lines.append("data: synthetic (the real data set was not found; accuracy is judged against the reference "
                     "on the same synthetic data)")
    if result.cuda_on_cpu:
        lines.append(f"cuda: your code asks for a GPU ({result.cuda_on_cpu[0]}); none here, so it ran on the CPU. "
                     "Use `device = \"cuda\" if torch.cuda.is_available() else \"cpu\"`")
    if result.data_served:
        lines.append(f"data: your code loads the data set from a folder that does not hold it ({result.data_served[0]}"
                     f"{f' and {len(result.data_served) - 1} more' if len(result.data_served) > 1 else ''}); "
                     "the grader's copy was read instead, without downloading")
    if result.profile:
        lines.append(f"profile: {result.profile}" + (" (a data subset and fewer epochs: a self-check, not the final "
                                                     "grade's budget)" if result.profile == "quick" else ""))
    lines += ["", head, "-" * min(width, len(head) + 40)]
    feedback_w = max(30, width - id_w - 27)
    indent = " " * (id_w + 26)
    for c in student.checks:
        wrapped = textwrap.wrap(c.message, feedback_w) or [""]
        points = f"{format_points(c.points) if c.counted else '-'}/{format_points(c.max_points)}"
        lines.append(f"{c.id:<{id_w}}  {MARKS[c.outcome]:<12} {points:>9}  {wrapped[0]}")
        lines += [indent + w for w in wrapped[1:4]]
    hidden = len(result.checks) - len(student.checks) if graded_later is None else graded_later
    lines += ["", f"visible score: {format_points(student.score)} / {format_points(student.max_score)}"
              + (f"  ({hidden} more check(s) are graded after submission)" if hidden else "")]
    return "\n".join(lines)
