"""Batch progress: a live line on a terminal (Rich) that keeps ticking and names what runs, one
line per submission elsewhere, nothing with --quiet; the time left is estimated from this run's
pace (a fake clock here)."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

from grader import progress as progress_mod
from grader.progress import Progress, choose_mode, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def result(student: str, status: str = "ok", score: float = 5.0, seconds: float = 2.0) -> SimpleNamespace:
    return SimpleNamespace(student=student, status=status, score=score, max_score=6.0, seconds=seconds)


def sub(student: str) -> SimpleNamespace:
    return SimpleNamespace(student=student)


def test_the_mode_follows_the_stream_and_quiet():
    assert choose_mode(Terminal(), quiet=False) == "bar"
    assert choose_mode(io.StringIO(), quiet=False) == "lines"
    assert choose_mode(Terminal(), quiet=True) == "quiet"


def test_the_status_counts_estimates_the_time_left_and_names_what_runs():
    clock = FakeClock()
    progress = Progress(10, stream=io.StringIO(), mode="lines", clock=clock)
    progress.reused([result("kept-1"), result("kept-2", status="timeout-wall")])
    assert progress.status_line() == "2/10 done, 1 failed, 0 running, 0s elapsed, ETA --"
    for name in ("a", "b", "c", "d", "e"):
        progress.started(sub(name))
        clock.now += 5
    progress.finished(result("a"))
    progress.finished(result("b", status="cell-timeout"))  # the rest was graded: not a failure
    # 2 graded in 25s, 6 left: 75s at this pace (kept results took no time and do not count)
    assert progress.status_line() == ("4/10 done, 1 failed, 3 running, 25s elapsed, ETA 1m 15s: "
                                      "c (15s), d (10s), e (5s)")
    progress.started(sub("f"))
    assert progress.status_line().endswith("c (15s), d (10s), e (5s), +1 more")  # the longest running first


def test_on_a_terminal_the_line_keeps_ticking_failures_print_above_and_it_goes_at_the_end(monkeypatch):
    monkeypatch.setattr(progress_mod, "REFRESH_PER_SECOND", 20.0)
    monkeypatch.setenv("COLUMNS", "160")
    stream = Terminal()
    progress = Progress(2, stream=stream, mode="bar")
    progress.started(sub("alice"))
    time.sleep(0.5)  # no event meanwhile: the line is redrawn anyway
    ticking = stream.getvalue()
    assert ticking.count("0/2 done, 0 failed, 1 running") >= 3 and "alice (0s)" in ticking
    progress.finished(result("alice", status="timeout-wall", score=0))
    progress.started(sub("bob"))
    progress.finished(result("bob"))
    progress.close()
    progress.close()
    text = stream.getvalue()
    assert "alice                            timeout-wall           0/6  (2.0s)\n" in text
    assert "bob " not in text.split("timeout-wall")[1].replace("bob (0s)", "")  # a pass only moves the bar
    assert text.rstrip("\n").endswith(("\x1b[2K", "\x1b[?25h"))  # the line is taken off the screen


def test_the_live_line_is_cut_to_the_terminal_so_that_it_redraws_in_place(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    stream = Terminal()
    progress = Progress(3, stream=stream, mode="bar")
    progress.started(sub("a-student-with-a-very-long-name"))
    progress.close()
    # each redraw: back to the start of the line, erase it, draw the bar and the text, all in one line
    drawn = [line.split("\x1b[0m ", 1)[-1].split("\n")[0] for line in stream.getvalue().split("\r") if "done" in line]
    assert drawn and all(len(line.rstrip()) < 60 and line.rstrip().endswith("…") for line in drawn)


def test_not_a_terminal_gets_one_plain_line_per_submission():
    stream = io.StringIO()
    progress = Progress(3, stream=stream, clock=FakeClock())
    progress.reused([result("kept")])
    progress.started(sub("alice"))
    progress.finished(result("alice", score=17.666666, seconds=3.25))
    progress.close()
    assert stream.getvalue() == ("1 submission(s) were graded by an earlier run; their results are kept\n"
                                 "  alice                            ok                 17.67/6  (3.2s)\n")


def test_quiet_prints_nothing_and_the_summary_says_it_all():
    stream = Terminal()
    clock = FakeClock()
    progress = Progress(4, stream=stream, mode="quiet", clock=clock)
    progress.reused([result("kept")])
    progress.started(sub("a"))
    progress.started(sub("b"))
    clock.now += 75
    progress.finished(result("a"))
    progress.finished(result("b", status="crash"))
    progress.close()
    assert stream.getvalue() == ""
    assert progress.summary() == "3 submission(s): 2 ok, 1 failed, 1 kept from an earlier run (1m 15s)"


def test_durations_read_like_a_person_writes_them():
    assert [format_duration(s) for s in (0, 42.4, 60, 185, 3600, 7625)] == ["0s", "42s", "1m 00s", "3m 05s",
                                                                           "1h 00m", "2h 07m"]
