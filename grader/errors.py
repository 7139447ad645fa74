"""Errors meant for people: what happened, where, and what to do next.

The CLI prints these without a traceback and maps them to exit codes; anything else that
escapes is a bug in the grader and is reported as one.
"""

from __future__ import annotations


class GraderError(Exception):
    """A problem the user can fix (bad rubric, missing file, wrong option).

    Args:
        what: one sentence saying what went wrong.
        where: the file, check or option concerned (optional).
        hint: what to do about it (optional).
    """

    exit_code = 2

    def __init__(self, what: str, where: str | None = None, hint: str | None = None):
        self.what, self.where, self.hint = what, where, hint
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class RubricError(GraderError):
    """A rubric that does not validate; carries one message per problem found."""

    def __init__(self, path: str, problems: list[str]):
        self.path, self.problems = path, problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid rubric ({count}):\n" + "\n".join(f"  - {p}" for p in problems), where=path,
                         hint="fix the fields named above; `grader schema` prints every field a check accepts")
