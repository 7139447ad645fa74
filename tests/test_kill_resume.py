"""Killing the grader in the middle of a batch loses no finished result, leaves no sandbox process
behind, and the same command then grades only what was unfinished, each exactly once more.
Ctrl-C stops cleanly, says how to resume and exits 130.

These run the real command on a small batch: some submissions sleep a couple of seconds, one
sleeps far past the wall limit so that it is surely running when the grader is killed.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import nobody
from tests.conftest import FIXTURES, GOOD_NET, PROJECT

pytestmark = pytest.mark.slow

TINY = str(FIXTURES / "tiny" / "rubric.yaml")
FULL = GOOD_NET + "\nanswer = 42\n"  # scores 5: the one whose kept result is checked in full
FAST = "answer = 42\n"  # the others skip torch (no network to build, nothing to measure): seconds less each
SLOW = FAST + "import time\ntime.sleep(2)\n"
HANG = FAST + "import time\ntime.sleep(600)\n"
SUBMISSIONS = {"a_fast": FULL, "b_slow": SLOW, "c_hang": HANG, "d_slow": SLOW, "e_slow": SLOW, "f_fast": FAST}
WALL_SECONDS = "25"  # ends c_hang in the second run; roomy for the others on a busy machine
GRACE_SECONDS = 5.0  # time for a sandbox to notice its grader is gone and take itself down
# `auto` is the strongest level this machine offers (namespace where it can); `process` is the
# fallback of unprivileged machines, tested too since nothing but the grader stops its runs;
# `rootless` is `auto` for the grader run as nobody (tests/nobody.py): the namespace sandbox in a
# user namespace, where it can be built.
ISOLATIONS = ["auto", "process", "rootless"]


@dataclass
class Batch:
    root: Path
    out: Path
    command: list[str]
    env: dict[str, str]
    as_nobody: bool = False

    @property
    def journal(self) -> Path:
        return self.out / "journal.sqlite"

    def grader(self, proc: subprocess.Popen) -> int:
        """The grader's own pid: the command's, or, as nobody, the one `su` started."""
        if not self.as_nobody:
            return proc.pid
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [pid for pid in process_tree(proc.pid) if "-m grader grade" in cmdline(pid)]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError("the grader never started under su")


def make_batch(root: Path, isolation: str, request: pytest.FixtureRequest) -> Batch:
    as_nobody = isolation == "rootless"
    if as_nobody:
        user = nobody.for_test(request)
        root = user.work
    batch = root / "batch"
    batch.mkdir()
    for name, code in SUBMISSIONS.items():
        (batch / f"{name}.py").write_text(code)
    tmp = root / "tmp"  # the runs' work folders, so that their command lines name this test's folder
    tmp.mkdir()
    out = root / "out"
    grade = ["-m", "grader", "grade", TINY, str(batch), "--out", str(out), "--workers", "2",
             "--wall-seconds", WALL_SECONDS, "--isolation", "auto" if as_nobody else isolation]
    if not as_nobody:
        return Batch(root, out, [sys.executable, *grade], {**os.environ, "TMPDIR": str(tmp)})
    user.give(root)
    return Batch(root, out, user.command(*grade, env={"TMPDIR": str(tmp)}), dict(os.environ), as_nobody=True)


def journal_rows(path: Path) -> dict[str, dict]:
    conn = sqlite3.connect(path, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return {r["student"]: dict(r) for r in conn.execute("SELECT * FROM jobs")}
    except sqlite3.OperationalError:  # the grader has not created the table yet
        return {}
    finally:
        conn.close()


def wait_for(batch: Batch, proc: subprocess.Popen, ready, timeout: float = 300) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = batch.root / "first-run.log"
            raise AssertionError(f"the grader ended early ({proc.returncode}): "
                                 + (log.read_text()[-2000:] if log.exists() else ""))
        rows = journal_rows(batch.journal) if batch.journal.exists() else {}
        if ready(rows):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"the batch never reached the state to interrupt it in: {rows}")


def mid_batch(rows: dict[str, dict]) -> bool:
    """At least one done, the hanging one running, and some not started."""
    states = {s: r["state"] for s, r in rows.items()}
    return ("done" in states.values() and states.get("c_hang") == "running"
            and list(states.values()).count("pending") >= 1)


# ---------------------------------------------------------------- processes


def process_start(pid: int) -> str | None:
    """The start time of a live (not zombie) process: with the pid, it names one process for good."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def process_tree(root: int) -> dict[int, str]:
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, stack = {}, [root]
    while stack:
        for child in children.get(stack.pop(), []):
            stack.append(child)
            if (start := process_start(child)) is not None:
                found[child] = start
    return found


def naming(text: str) -> dict[int, str]:
    """Live processes whose command line contains ``text``."""
    found = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(entry) != os.getpid() and (start := process_start(int(entry))):
            found[int(entry)] = start
    return found


def still_alive(processes: dict[int, str]) -> dict[int, str]:
    return {pid: cmdline(pid) for pid, start in processes.items() if process_start(pid) == start}


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "?"


def leftovers_after(grace: float, tree: dict[int, str], marker: str) -> dict[int, str]:
    deadline = time.monotonic() + grace
    while True:
        left = still_alive(tree) | still_alive(naming(marker))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def end(processes: dict[int, str]) -> None:
    for pid in processes:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# ---------------------------------------------------------------- the killed run


@dataclass
class Killed:
    batch: Batch
    before: dict[str, dict]
    leftovers: dict[int, str]


@pytest.fixture(scope="module", params=ISOLATIONS)
def killed(request, tmp_path_factory) -> Killed:
    """Start the batch, SIGKILL the grader mid-batch, and see what it left."""
    batch = make_batch(tmp_path_factory.mktemp("kill-resume"), request.param, request)
    with open(batch.root / "first-run.log", "wb") as log:
        proc = subprocess.Popen(batch.command, cwd=PROJECT, env=batch.env, stdout=log, stderr=log)
        try:
            wait_for(batch, proc, mid_batch)
            grader = batch.grader(proc)
            tree = process_tree(grader)
            os.kill(grader, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    before = journal_rows(batch.journal)
    leftovers = leftovers_after(GRACE_SECONDS, tree, str(batch.root))
    end(leftovers)  # whatever the outcome, nothing of this test runs on
    return Killed(batch, before, leftovers)


def test_no_sandbox_process_outlives_a_killed_grader(killed):
    """The namespace supervisor, or at the process level the runner's lifeline, ends every run."""
    assert not killed.leftovers, f"left running: {killed.leftovers}"


# Resuming is the journal's work, the same at every isolation level; what each level must show is
# that a kill leaves nothing running (above), so the resume is checked once.
@pytest.mark.parametrize("killed", ["auto"], indirect=True)
def test_the_same_command_resumes_a_killed_batch(killed):
    batch, before = killed.batch, killed.before
    finished = {s for s, r in before.items() if r["state"] == "done"}
    unfinished = set(SUBMISSIONS) - finished
    assert finished and "c_hang" in unfinished and before["c_hang"]["state"] == "running"

    done = subprocess.run(batch.command, cwd=PROJECT, env=batch.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{len(finished)} kept from an earlier run" in done.stdout

    after = journal_rows(batch.journal)
    assert {s: r["state"] for s, r in after.items()} == dict.fromkeys(SUBMISSIONS, "done")
    for student in finished:  # kept as they were: not regraded, not rewritten
        assert after[student] == before[student]
    for student in unfinished:  # graded exactly once more
        assert after[student]["attempts"] == before.get(student, {"attempts": 0})["attempts"] + 1
    assert after["c_hang"]["status"] == "timeout-wall"

    summary = {row["student"]: row for row in json.loads((batch.out / "summary.json").read_text())}
    assert set(summary) == set(SUBMISSIONS)
    assert summary["a_fast"]["score"] == 5 and summary["c_hang"]["status"] == "timeout-wall"
    for student in finished:
        report = json.loads((batch.out / "submissions" / f"{student}.json").read_text())
        assert report["seconds"] == json.loads(before[student]["result"])["seconds"]


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_ctrl_c_ends_the_runs_and_says_how_to_resume(tmp_path, isolation, request):
    batch = make_batch(tmp_path, isolation, request)
    proc = subprocess.Popen(batch.command, cwd=PROJECT, env=batch.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(batch, proc, mid_batch)
        grader = batch.grader(proc)
        tree = process_tree(grader)
        os.kill(grader, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = leftovers_after(0.5, tree, str(batch.root))  # the grader waited for its runs to end
    end(left)
    assert left == {}
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert f"are kept in {batch.journal}; run the same command again to grade the rest" in err
    rows = journal_rows(batch.journal)
    assert "running" not in {r["state"] for r in rows.values()}  # what was cut short is pending again
    assert rows["c_hang"]["state"] == "pending" and rows["c_hang"]["result"] is None
