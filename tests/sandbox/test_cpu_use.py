"""Measuring what a run's processes used: CPU time, and time spent waiting for a CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from grader.sandbox import cpu_use

needs_schedstat = pytest.mark.skipif(cpu_use.measure([os.getpid()]).waited_seconds is None,
                                     reason="this kernel keeps no run-queue statistics (/proc/PID/schedstat)")

BURN_HALF_A_SECOND = "import time\ns = time.process_time()\nwhile time.process_time() - s < 0.5: pass\n"


def _started(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL)


def _ended(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


@needs_schedstat
def test_a_sleeping_process_uses_no_cpu_and_waits_for_none():
    proc = _started("import time; time.sleep(60)")
    try:
        time.sleep(1.5)
        usage = cpu_use.measure([proc.pid])
    finally:
        _ended(proc)
    assert usage.cpu_seconds < 0.5  # the interpreter's start only
    assert usage.waited_seconds is not None and usage.waited_seconds < 0.5


def test_cpu_time_includes_what_finished_children_used():
    """A child that burned half a second and was waited for still counts (a run's finished helpers)."""
    proc = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time\n"
                             f"subprocess.run([sys.executable, '-c', {BURN_HALF_A_SECOND!r}])\n"
                             "print('child done', flush=True)\ntime.sleep(60)\n"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "child done"
        usage = cpu_use.measure([proc.pid])
    finally:
        _ended(proc)
        proc.stdout.close()
    assert usage.cpu_seconds >= 0.5


@needs_schedstat
def test_a_process_on_a_crowded_core_waits_longer_than_it_runs(crowded_core):
    proc = _started("while True: pass")
    try:
        time.sleep(2.0)
        usage = cpu_use.measure([proc.pid])
    finally:
        _ended(proc)
    assert usage.waited_seconds is not None
    assert usage.waited_seconds > usage.cpu_seconds
    assert usage.waited_seconds > 1.0


def test_processes_that_ended_are_left_out():
    proc = _started("pass")
    proc.wait()
    assert cpu_use.measure([proc.pid]).cpu_seconds == 0.0
