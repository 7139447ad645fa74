"""Two graders on one machine never disturb each other: while one batch's submission holds every
thread its uid may have, another ``grader`` process grades honest work exactly as it would alone.

Each namespace run leases a uid no other run on the machine holds (``uid_lease``); with uids
shared, the second grader's runs would hit the first one's ``RLIMIT_NPROC`` and fail to start.
The thread-hungry submission only ever runs inside the namespace sandbox: without it, this skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.sandbox import namespace, uid_lease
from tests.conftest import FIXTURES, GOOD_NET, write_notebook

why_not = namespace.unavailable_reason()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(why_not is not None, reason=f"needs the namespace sandbox: {why_not}")]

PROCESSES = 64  # the rubric's per-uid limit on processes and threads
HOGS_EVERY_THREAD = """
import threading, time
threading.stack_size(64 * 1024)
stop = threading.Event()
started = 0
try:
    while True:
        threading.Thread(target=stop.wait, daemon=True).start()
        started += 1
except RuntimeError:  # can't start new thread: every thread its uid may have is taken
    pass
print("holding", started, "threads", flush=True)
time.sleep(600)
answer = 42
"""
# What the tiny rubric gives these honest submissions when they are graded alone.
HONEST = {"good_module": ("ok", 5.0), "good_notebook": ("ok", 6.0)}


def _grader(rubric: Path, batch: Path, out: Path) -> list[str]:
    """A whole `grader grade` command of its own, two runs at a time, in the namespace sandbox."""
    return [sys.executable, "-m", "grader", "grade", str(rubric), str(batch), "--out", str(out), "--quiet",
            "--isolation", "namespace", "--workers", "2"]


def _thread_hog() -> tuple[int, int] | None:
    """(pid, threads) of a process running as a sandbox uid with most of its uid's threads, if any."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        except (OSError, ValueError):
            continue
        threads = int(status["Threads"])
        if int(status["Uid"].split()[0]) in uid_lease.uid_range() and threads >= PROCESSES - 16:
            return int(pid), threads
    return None


def _wait_for(what, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (found := what()) is not None:
            return found
        time.sleep(0.2)
    return None


@pytest.fixture
def rubric(tmp_path) -> Path:
    """The tiny rubric with a low per-uid process limit and a wall budget that outlasts the test."""
    folder = tmp_path / "tiny"
    shutil.copytree(FIXTURES / "tiny", folder)
    text = (folder / "rubric.yaml").read_text()
    limits = next(line for line in text.splitlines() if line.startswith("limits:"))
    (folder / "rubric.yaml").write_text(text.replace(
        limits, f"limits: {{wall_seconds: 300, cell_seconds: 60, processes: {PROCESSES}}}"))
    return folder / "rubric.yaml"


def test_a_thread_hungry_batch_does_not_disturb_another_graders_batch(tmp_path, rubric):
    hungry, honest = tmp_path / "hungry", tmp_path / "honest"
    hungry.mkdir()
    honest.mkdir()
    (hungry / "hogs_every_thread.py").write_text(HOGS_EVERY_THREAD)
    (honest / "good_module.py").write_text(f"{GOOD_NET}\nanswer = 42\n")
    write_notebook(honest / "good_notebook.ipynb", ["md:# My work", GOOD_NET, "answer = 42"])

    first = subprocess.Popen(_grader(rubric, hungry, tmp_path / "out-hungry"), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        hog = _wait_for(lambda: _thread_hog() or (False if first.poll() is not None else None), 120)
        assert hog, ("the thread-hungry submission never held its threads; its grader: "
                     + (first.stderr.read()[-2000:] if first.poll() is not None else "still running"))
        second = subprocess.run(_grader(rubric, honest, tmp_path / "out-honest"), capture_output=True, text=True,
                                timeout=600)
        assert second.returncode == 0, second.stderr[-2000:]
        still = _thread_hog()
        assert still is not None and still[0] == hog[0], "the hungry run let go of its threads before the end"
    finally:
        first.kill()  # the grader's death takes its sandbox down (the supervisor's lifeline)
        first.wait()
        first.stderr.close()
    rows = {r["student"]: r for r in json.loads((tmp_path / "out-honest" / "summary.json").read_text())}
    assert {s: (r["status"], r["score"]) for s, r in rows.items()} == HONEST, rows
    assert _wait_for(lambda: None if _thread_hog() else True, 30), "the killed grader's sandbox is still running"
