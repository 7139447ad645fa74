"""The result of grading: per check and per submission, as written to JSON and reports."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

# passed / failed: judged; errored: the student's code raised; skipped: a prerequisite failed or the
# machine lacks something; needs-review: the grader cannot decide (an unresolved target) and asks a
# person, 0 points until then; grader-error: the harness itself failed.
Outcome = Literal["passed", "failed", "errored", "skipped", "needs-review", "grader-error"]


class CheckResult(BaseModel):
    id: str
    kind: str
    title: str | None = None
    visibility: Literal["visible", "hidden"]
    outcome: Outcome
    points: float
    max_points: float
    message: str
    table: list[dict[str, Any]] = []
    found_as: str | None = None
    traceback: str | None = None
    seconds: float = 0.0
    review: str | None = None  # why a person should look at it (a forbidden call...); hidden from students
    # False for a check skipped for a reason outside the student's work (no pretrained weights or no
    # calibration on the grading machine): its points are left out of the totals, as a skipped test
    # is not a failed one, and the pages say so.
    counted: bool = True


class SubmissionResult(BaseModel):
    student: str
    source: str
    content_hash: str
    status: str
    message: str
    isolation: str
    data: Literal["real", "synthetic", "none"] = "none"
    profile: str | None = None  # quick | full: the budget the accuracy checks trained with (grader.profiles)
    numerics: dict[str, Any] | None = None  # the numeric configuration they trained under (grader.numerics)
    mapping: dict[str, str] = {}  # an instructor's names for this student's targets (grader.mappings)
    notes: list[str] = []  # what the submission's layout made the grader decide (a missing module, a notebook left out)
    score: float
    max_score: float
    visible_score: float
    visible_max: float
    checks: list[CheckResult]
    form: str | None = None
    cells: list[dict[str, Any]] = []
    modules: list[dict[str, Any]] = []
    removed_commands: list[str] = []
    cuda_on_cpu: list[str] = []  # lines of the submission asking for CUDA that ran on the CPU (no GPU there)
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    assignment: str
    rubric_hash: str
    grader_version: str

    def summary_row(self) -> dict[str, Any]:
        """The entry of ``summary.json``."""
        return {"student": self.student, "status": self.status, "score": self.score, "max_score": self.max_score,
                "review": self.review_note(),
                "checks": [{"id": c.id, "outcome": c.outcome, "points": c.points, "max_points": c.max_points,
                            "counted": c.counted, "message": c.message, "review": c.review} for c in self.checks]}

    def review_note(self) -> str:
        """Why a person should look at this submission ("" when nothing asks for it)."""
        return "; ".join(f"{c.id}: {c.review}" for c in self.checks if c.review)

    def for_students(self) -> "SubmissionResult":
        """The same result with hidden checks removed and totals restricted to visible ones."""
        visible = [c for c in self.checks if c.visibility == "visible"]
        return self.model_copy(update={"checks": visible, "score": self.visible_score, "max_score": self.visible_max})
