"""Batch progress: a redrawn bar on a terminal, one line per submission elsewhere, nothing with
--quiet; the time left is estimated from this run's pace (a fake clock here)."""

from __future__ import annotations

import io
from types import SimpleNamespace

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


def test_the_bar_counts_and_estimates_the_time_left():
    clock = FakeClock()
    progress = Progress(10, stream=Terminal(), mode="bar", clock=clock)
    progress.reused([result("kept-1"), result("kept-2", status="timeout-wall")])
    assert progress.bar() == "[#####-------------------] 2/10 done, 1 failed, 0 running, 0s elapsed, ETA --"
    for name in ("a", "b", "c"):
        progress.started(sub(name))
    clock.now += 30
    progress.finished(result("a"))
    progress.finished(result("b", status="cell-timeout"))  # the rest was graded: not a failure
    # 2 graded in 30s, 6 left: 90s at this pace (kept results took no time and do not count)
    assert progress.bar() == "[##########--------------] 4/10 done, 1 failed, 1 running, 30s elapsed, ETA 1m 30s"


def test_the_bar_is_redrawn_in_place_and_failures_are_printed_above_it():
    stream = Terminal()
    progress = Progress(2, stream=stream, mode="bar", clock=FakeClock())
    progress.started(sub("alice"))
    progress.finished(result("alice", status="timeout-wall", score=0))
    progress.started(sub("bob"))
    progress.finished(result("bob"))
    progress.close()
    text = stream.getvalue()
    assert text.count("\r\x1b[K[") == 4  # one redraw per event
    assert "\r\x1b[K  alice                            timeout-wall           0/6  (2.0s)\n" in text
    assert "bob" not in text  # a passing submission only moves the bar
    assert text.endswith("\r\x1b[K")  # the bar is taken off the screen for the summary
    assert text.count("\n") == 1  # the bar itself never breaks a line


def test_the_bar_fits_the_terminal_so_that_it_redraws_in_place(monkeypatch):
    progress = Progress(3, stream=Terminal(), mode="bar", clock=FakeClock())
    progress.reused([result("kept")])
    assert progress.bar(80) == "[########----------------] 1/3 done, 0 failed, 0 running, 0s elapsed, ETA --"
    assert progress.bar(60) == "[##-----] 1/3 done, 0 failed, 0 running, 0s elapsed, ETA --"  # 59 characters
    assert progress.bar(50) == "1/3 done, 0 failed, 0 running, 0s elapsed, ETA --"
    assert progress.bar(40) == "1/3 done, 0 failed, 0 running, 0s elaps"
    stream = Terminal()
    progress = Progress(3, stream=stream, mode="bar", clock=FakeClock())
    monkeypatch.setattr(progress, "_columns", lambda: 40)
    progress.started(sub("a"))
    assert stream.getvalue() == "\r\x1b[K0/3 done, 0 failed, 1 running, 0s elaps"


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
