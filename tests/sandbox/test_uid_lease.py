"""Host-wide uid leases: a uid one process holds is never given to another, and a holder killed
by SIGKILL frees its uid. Each test has its own lock folder and a uid range of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from grader.errors import GraderError
from grader.sandbox import uid_lease

BASE = 64000  # far from the range real runs lease from, so no sandbox of another test runs as these

HOLDER = """
import sys
from grader.sandbox import uid_lease
lease = uid_lease.lease(wait_seconds=0)
print(lease.uid, flush=True)
sys.stdin.read()  # hold it until told to stop (or killed)
"""


@pytest.fixture
def lease_range(tmp_path, monkeypatch):
    """A private lock folder and two uids, for this process and for the holders it starts."""
    folder = tmp_path / "uids"
    env = {"GRADER_UID_LEASE_DIR": str(folder), "GRADER_SANDBOX_UID_BASE": str(BASE), "GRADER_SANDBOX_UID_COUNT": "2"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(uid_lease, "UID_BASE", BASE)
    monkeypatch.setattr(uid_lease, "UID_COUNT", 2)
    return folder


@pytest.fixture
def holders():
    """Start processes that lease a uid and hold it; every one is ended after the test."""
    started: list[subprocess.Popen] = []

    def start() -> tuple[subprocess.Popen, int]:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        started.append(proc)
        line = proc.stdout.readline()
        assert line.strip().isdigit(), f"the holder could not lease a uid: {proc.stderr.read()}"
        return proc, int(line)

    yield start
    for proc in started:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()


def test_a_uid_another_process_holds_is_never_leased(lease_range, holders):
    _, held = holders()
    with uid_lease.lease(wait_seconds=0) as mine:
        assert held == BASE and mine.uid == BASE + 1


def test_threads_of_one_grader_get_different_uids(lease_range):
    with uid_lease.lease(wait_seconds=0) as first, uid_lease.lease(wait_seconds=0) as second:
        assert {first.uid, second.uid} == {BASE, BASE + 1}


def test_a_uid_is_free_again_once_released(lease_range):
    with uid_lease.lease(wait_seconds=0) as first:
        taken = first.uid
    with uid_lease.lease(wait_seconds=0) as again:
        assert again.uid == taken


def test_a_killed_holders_uid_is_free_again(lease_range, holders):
    holder, held = holders()
    _, other = holders()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with uid_lease.lease(wait_seconds=0) as mine:
        assert mine.uid == held != other


def test_when_every_uid_is_taken_it_waits_a_bounded_time_then_says_so(lease_range, holders):
    holders()
    holders()
    started = time.monotonic()
    with pytest.raises(GraderError) as caught:
        uid_lease.lease(wait_seconds=0.6)
    assert 0.6 <= time.monotonic() - started < 5
    error = caught.value
    assert f"from {BASE} to {BASE + 1}" in str(error) and "GRADER_SANDBOX_UID_COUNT" in str(error)


def test_a_uid_freed_while_waiting_is_leased(lease_range, holders):
    first, held = holders()
    holders()
    killer = threading.Timer(0.5, first.kill)  # frees it half a second from now
    killer.start()
    try:
        with uid_lease.lease(wait_seconds=10) as mine:
            assert mine.uid == held
    finally:
        killer.cancel()


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a process as another uid needs root")
def test_a_uid_some_process_still_runs_as_is_passed_over(lease_range):
    """A sandbox of a killed grader may still be dying when its lock is gone."""
    straggler = subprocess.Popen(["sleep", "60"], user=BASE, group=BASE)
    try:
        deadline = time.monotonic() + 10
        while BASE not in uid_lease.uids_with_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        with uid_lease.lease(wait_seconds=0) as mine:
            assert mine.uid == BASE + 1
    finally:
        straggler.kill()
        straggler.wait()


def test_the_uids_of_host_users_are_never_leased(lease_range, monkeypatch):
    monkeypatch.setattr(uid_lease, "UID_BASE", os.getuid())  # this process's own user, which exists
    monkeypatch.setattr(uid_lease, "UID_COUNT", 1)
    with pytest.raises(GraderError):
        uid_lease.lease(wait_seconds=0)


def test_a_lock_folder_others_can_write_to_is_refused(lease_range):
    lease_range.mkdir(mode=0o777)
    lease_range.chmod(0o777)
    with pytest.raises(GraderError) as caught:
        uid_lease.lease(wait_seconds=0)
    assert "GRADER_UID_LEASE_DIR" in str(caught.value) and str(lease_range) in str(caught.value)
