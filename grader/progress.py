"""How far a batch is, on stderr.

Three ways to show it, picked from where stderr goes:

* ``bar``: a terminal. A live line drawn by Rich (``rich.progress``), redrawn twice a second
  even while nothing finishes: a bar, done / failed / running, elapsed time, an estimate of the
  time left, and the submissions running now, longest first. Failed submissions are printed
  above it as they come; the line is taken off the screen at the end, for the summary.
* ``lines``: a log file or a CI console, where redrawing makes a mess. One line per submission.
* ``quiet`` (``--quiet``): nothing while it runs; the caller prints :meth:`Progress.summary`.

A ``Progress`` is the batch's event listener (``reused``, ``started``, ``finished``), called from
one thread (the executor reports every event in the thread that runs the batch); Rich's refresh
thread only reads the counts.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Literal, TextIO

if TYPE_CHECKING:
    from grader.results import SubmissionResult
    from grader.submission import Submission

Mode = Literal["bar", "lines", "quiet"]
# A notebook with an interrupted cell was still graded, the rest of it in full: not a failure.
PASSING_STATUSES = frozenset({"ok", "cell-timeout"})
BAR_WIDTH = 24
REFRESH_PER_SECOND = 2.0  # the live line's redraws, events or not: elapsed time and ETA keep moving
MAX_NAMED = 3  # running submissions named on the live line; the rest are counted


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
        self.kept = self.graded = self.failed = 0
        self._running: dict[str, float] = {}  # student -> when their run started
        self._start = clock()
        self._live: Any = None
        if self.mode == "bar":
            self._live = _live_bar(self)

    # ------------------------------------------------------------------ events

    def reused(self, results: list[SubmissionResult]) -> None:
        """Results an earlier run finished, taken from the journal instead of graded again."""
        self.kept += len(results)
        self.failed += sum(is_failure(r) for r in results)
        if results and self.mode == "lines":
            self._print(f"{len(results)} submission(s) were graded by an earlier run; their results are kept")
        self._moved()

    def started(self, sub: Submission) -> None:
        self._running[sub.student] = self.clock()

    def finished(self, result: SubmissionResult) -> None:
        self._running.pop(result.student, None)
        self.graded += 1
        self.failed += is_failure(result)
        if self.mode == "lines" or (self.mode == "bar" and is_failure(result)):
            self._print(self._result_line(result))
        self._moved()

    def close(self) -> None:
        """Take the live line off the screen (the summary replaces it); safe to call twice."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    # ------------------------------------------------------------------ text

    @property
    def done(self) -> int:
        return self.kept + self.graded

    @property
    def running(self) -> int:
        return len(self._running)

    def status_line(self) -> str:
        """The live line's text: ``12/40 done, 2 failed, 3 running, 1m 20s elapsed, ETA 3m 10s:
        carol (2m 01s), dave (40s), erin (3s)``; the running ones longest first."""
        now = self.clock()
        elapsed = now - self._start
        text = (f"{self.done}/{self.total} done, {self.failed} failed, {self.running} running, "
                f"{format_duration(elapsed)} elapsed, ETA {self.eta(elapsed)}")
        longest = sorted(dict(self._running).items(), key=lambda item: item[1])  # a copy: Rich reads it from its thread
        named = [f"{student} ({format_duration(now - began)})" for student, began in longest[:MAX_NAMED]]
        if len(longest) > MAX_NAMED:
            named.append(f"+{len(longest) - MAX_NAMED} more")
        return text + (": " + ", ".join(named) if named else "")

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

    def _moved(self) -> None:
        if self._live is not None:
            self._live.update(self._live.task_ids[0], completed=self.done)

    def _print(self, line: str) -> None:
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        self.stream.write(line + "\n")
        self.stream.flush()


def _live_bar(progress: Progress) -> Any:
    """Rich's live display for ``progress``, started: a bar and the status line, cut to the width
    of the terminal (a wrapped line could not be redrawn in place). Its one task's ``completed``
    follows ``progress.done`` (``Progress._moved``)."""
    from rich.console import Console
    from rich.progress import BarColumn, ProgressColumn
    from rich.progress import Progress as RichProgress
    from rich.table import Column
    from rich.text import Text

    class StatusColumn(ProgressColumn):
        """Rendered at every refresh, so elapsed time, ETA and the running times keep moving."""

        def render(self, task: Any) -> Text:
            return Text(progress.status_line(), no_wrap=True, overflow="ellipsis")

    live = RichProgress(BarColumn(bar_width=BAR_WIDTH),
                        StatusColumn(table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
                        console=Console(file=progress.stream, force_terminal=True, highlight=False),
                        transient=True, refresh_per_second=REFRESH_PER_SECOND, redirect_stdout=False,
                        redirect_stderr=False, get_time=progress.clock, expand=True)
    live.add_task("grading", total=max(1, progress.total), completed=progress.done)
    live.start()
    return live
