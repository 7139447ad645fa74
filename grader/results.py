"""The result of grading: per check and per submission, as written to JSON and reports."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

# Flagged lines named in a submission's review note (gradebook, summary.json); its page lists all.
MAX_FLAGS_NOTED = 5

Outcome = Literal["passed", "failed", "errored", "skipped", "needs-review", "grader-error"]

# Every check outcome, in one table (judging decides which one a check gets).
OUTCOMES: dict[Outcome, str] = {
    "passed": "judged, and every part of it held",
    "failed": "judged, and something differed (partial credit may still give points)",
    "errored": "the student's code raised, or its run ended before the check was observed",
    "skipped": "a prerequisite failed, or the machine lacks something (then not counted either way)",
    "needs-review": "the grader cannot decide (an unresolved target) and asks a person; 0 points until then",
    "grader-error": "the harness itself failed; never the student's fault",
}


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
    # How the check's numbers were obtained: "measured" from artifacts, in a sandbox that never ran
    # student code (grader.measuring), or "observed" inside the student's process, where its code
    # could have changed them (docs/security.md lists which kinds are which).
    basis: Literal["measured", "observed"] = "observed"


class SourceFlag(BaseModel):
    """A line of the submission that can reach into the grader or torch's dispatcher, found by the
    host's scan of the code as submitted (``grader.source_scan``). It changes no points: it asks a
    person to look."""

    rule: str  # a key of source_scan.RULES
    where: str  # "cell 3, line 4", "model.py, line 12" ("cell 3" for a cell that could not be parsed)
    what: str  # the rule's reason, and what on the line raised it
    line: str = ""  # the line as submitted, stripped

    def note(self) -> str:
        return f"{self.where}: {self.what}" + (f" ({self.line})" if self.line else "")


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
    # Lines of the code as submitted that reach into the grader or the dispatcher: for a person to
    # review, never points. Not shown to students (``for_students``): the list of what is looked
    # for would tell a student what to disguise, and a flag is a question for staff, not a verdict.
    # Results stored before the scan existed have none (the default), and load as they are.
    flags: list[SourceFlag] = []
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
    data_served: list[str] = []  # data-set calls whose root held no data, served the grader's copy (sandbox.data_paths)
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    assignment: str
    rubric_hash: str
    grader_version: str

    @property
    def share(self) -> float:
        """The score as a share of the points, in [0, 1]; 1 for a rubric with no points counted."""
        return self.score / self.max_score if self.max_score else 1.0

    def summary_row(self) -> dict[str, Any]:
        """The entry of ``summary.json``."""
        return {"student": self.student, "status": self.status, "score": self.score, "max_score": self.max_score,
                "review": self.review_note(),
                "checks": [{"id": c.id, "outcome": c.outcome, "points": c.points, "max_points": c.max_points,
                            "counted": c.counted, "message": c.message, "review": c.review} for c in self.checks]}

    def review_note(self) -> str:
        """Why a person should look at this submission ("" when nothing asks for it): flagged
        checks, then each flagged line of the code."""
        shown = [f"source scan: {f.note()}" for f in self.flags[:MAX_FLAGS_NOTED]]
        if len(self.flags) > MAX_FLAGS_NOTED:
            shown.append(f"and {len(self.flags) - MAX_FLAGS_NOTED} more flagged lines "
                         "(the submission's page lists them)")
        return "; ".join([*(f"{c.id}: {c.review}" for c in self.checks if c.review), *shown])

    def for_students(self, include_hidden: bool = False) -> "SubmissionResult":
        """What the student may see: no source-scan flags and no review notes (staff's questions,
        see ``flags``), and hidden checks removed with the totals restricted to the visible ones,
        unless ``include_hidden`` (the rubric releases them after the deadline)."""
        shown = [c.model_copy(update={"review": None}) for c in self.checks
                 if include_hidden or c.visibility == "visible"]
        totals = {} if include_hidden else {"score": self.visible_score, "max_score": self.visible_max}
        return self.model_copy(update={"checks": shown, "flags": [], **totals})
