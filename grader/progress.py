"""How far a batch is, on stderr.

Three ways to show it, picked from where stderr goes:

* ``bar``: a terminal. One line, redrawn in place with ``\\r``: done / failed / running, elapsed
  time and an estimate of the time left. Failed submissions are printed above it as they come.
* ``lines``: a log file or a CI console, where ``\\r`` makes a mess. One line per submission.
* ``quiet`` (``--quiet``): nothing while it runs; the caller prints :meth:`Progress.summary`.

A ``Progress`` is the batch's event listener (``reused``, ``started``, ``finished``), called from
one thread (the executor reports every event in the thread that runs the batch).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Callable, Literal, TextIO

if TYPE_CHECKING:
    from grader.results import SubmissionResult
    from grader.submission import Submission

Mode = Literal["bar", "lines", "quiet"]
# A notebook with an interrupted cell was still graded, the rest of it in full: not a failure.
PASSING_STATUSES = frozenset({"ok", "cell-timeout"})
BAR_WIDTH = 24
MIN_BAR_WIDTH = 5  # narrower says nothing the counts do not
_ERASE_LINE = "\r\x1b[K"


def is_failure(result: SubmissionResult) -> bool:
    return result.status not in PASSING_STATUSES


def format_duration(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``2h 07m``: as precise as a person waiting needs."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def choose_mode(stream: TextIO, quiet: bool) -> Mode:
    if quiet:
        return "quiet"
    try:
        return "bar" if stream.isatty() else "lines"
    except (AttributeError, ValueError):  # a closed or file-like stream without a terminal
        return "lines"


class Progress:
    """Counts a batch's submissions as they finish and shows it.

    Args:
        total: submissions in the batch, kept ones included.
        stream: where to write (default: stderr).
        mode: ``bar``, ``lines`` or ``quiet``; default from :func:`choose_mode`.
        clock: seconds, monotonic; replaced in tests.
    """

    def __init__(self, total: int, stream: TextIO | None = None, mode: Mode | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.stream, self.clock = total, stream or sys.stderr, clock
        self.mode: Mode = mode or choose_mode(self.stream, quiet=False)
        self.kept = self.graded = self.failed = self.running = 0
        self._start = clock()
        self._bar_shown = False

    # ------------------------------------------------------------------ events

    def reused(self, results: list[SubmissionResult]) -> None:
        """Results an earlier run finished, taken from the journal instead of graded again."""
        self.kept += len(results)
        self.failed += sum(is_failure(r) for r in results)
        if results and self.mode == "lines":
            self._print(f"{len(results)} submission(s) were graded by an earlier run; their results are kept")
        self._draw()

    def started(self, sub: Submission) -> None:
        self.running += 1
        self._draw()

    def finished(self, result: SubmissionResult) -> None:
        self.running = max(0, self.running - 1)
        self.graded += 1
        self.failed += is_failure(result)
        if self.mode == "lines" or (self.mode == "bar" and is_failure(result)):
            self._print(self._result_line(result))
        self._draw()

    def close(self) -> None:
        """Take the bar off the screen (the summary replaces it); safe to call twice."""
        if self._bar_shown:
            self.stream.write(_ERASE_LINE)
            self.stream.flush()
            self._bar_shown = False

    # ------------------------------------------------------------------ text

    @property
    def done(self) -> int:
        return self.kept + self.graded

    def bar(self, columns: int = 200) -> str:
        """The live line: ``[#####-----] 12/40 done, 2 failed, 4 running, 1m 20s elapsed, ETA 3m 10s``.

        It must fit in ``columns - 1`` characters: a line that wraps is no longer redrawn in place
        by ``\\r``. The bar gives way first, then the end of the text.
        """
        elapsed = self.clock() - self._start
        counts = (f"{self.done}/{self.total} done, {self.failed} failed, {self.running} running, "
                  f"{format_duration(elapsed)} elapsed, ETA {self.eta(elapsed)}")
        width = min(BAR_WIDTH, columns - 1 - len(counts) - 3)
        if width < MIN_BAR_WIDTH:
            return counts[: columns - 1]
        filled = width if not self.total else round(width * self.done / self.total)
        return f"[{'#' * filled}{'-' * (width - filled)}] {counts}"

    def eta(self, elapsed: float) -> str:
        """Time left at the pace of this run so far (kept results took no time, so they do not count)."""
        if not self.graded:
            return "--"
        return format_duration((self.total - self.done) * elapsed / self.graded)

    def summary(self) -> str:
        """One line for the end: ``40 submission(s): 38 ok, 2 failed, 5 kept from an earlier run (3m 12s)``."""
        kept = f", {self.kept} kept from an earlier run" if self.kept else ""
        return (f"{self.done} submission(s): {self.done - self.failed} ok, {self.failed} failed{kept} "
                f"({format_duration(self.clock() - self._start)})")

    @staticmethod
    def _result_line(result: SubmissionResult) -> str:
        # Points as the reports show them (17.67, 2); not imported from there, which needs jinja and the rubric.
        score = f"{round(result.score, 2):g}/{round(result.max_score, 2):g}"
        return f"  {result.student:<32} {result.status:<14} {score:>11}  ({result.seconds:.1f}s)"

    # ------------------------------------------------------------------ output

    def _print(self, line: str) -> None:
        self.stream.write((_ERASE_LINE if self._bar_shown else "") + line + "\n")
        self._bar_shown = False
        self.stream.flush()

    def _draw(self) -> None:
        if self.mode != "bar":
            return
        self.stream.write(_ERASE_LINE + self.bar(self._columns()))
        self.stream.flush()
        self._bar_shown = True

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            return 80
