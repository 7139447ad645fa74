"""Fixtures of the sandbox tests that shape the machine a run sees."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Iterator

import pytest

BUSY_NEIGHBOURS = 5


@pytest.fixture
def crowded_core() -> Iterator[int]:
    """This test's thread, and every process it starts meanwhile, runs on one core shared with
    five busy processes. Each of them leads a session of its own, so the kernel's per-session
    scheduling groups (autogroup) cannot hand the run a larger share: it gets about a sixth of
    the core, as on a machine far busier than its cores. Yields the core's number.

    A namespace run is forked from this process's warm parent, which an earlier test may have
    started with every core: the parent is held to the core too (and one started meanwhile is
    given every core back), or whether a run is crowded would depend on the order of the tests."""
    from grader.sandbox import warm

    before = os.sched_getaffinity(0)
    core = max(before)
    neighbours = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True,
                                   stdin=subprocess.DEVNULL) for _ in range(BUSY_NEIGHBOURS)]
    try:
        for proc in neighbours:
            os.sched_setaffinity(proc.pid, {core})
        os.sched_setaffinity(0, {core})
        if (parent := warm.parent_pid()) is not None:
            os.sched_setaffinity(parent, {core})
        yield core
    finally:
        os.sched_setaffinity(0, before)
        if (parent := warm.parent_pid()) is not None:
            try:
                os.sched_setaffinity(parent, before)
            except ProcessLookupError:
                pass
        for proc in neighbours:
            proc.kill()
            proc.wait()
