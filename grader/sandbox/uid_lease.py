"""Host-wide leases of sandbox uids: no two namespace runs on one machine ever share a uid.

A namespace run executes the student's code as an unprivileged uid of its own. Some limits are
counted per uid across the whole machine (``RLIMIT_NPROC`` counts every process and thread of
the uid), so two runs sharing one, even from two separate ``grader`` processes (two batches, a
batch and a ``grader check``), would let one submission's threads starve the other.

Each run therefore leases a uid from a bounded range: it holds an exclusive ``flock`` on that
uid's lock file in one host-wide folder for as long as the run lasts. The kernel drops the lock
when the holder closes it or dies, even by SIGKILL, so a killed grader never leaves a uid taken.
A uid is also passed over while any process still runs as it (a sandbox of a killed grader that
is still being torn down) or when the host has a user with that uid.

Settings (environment): ``GRADER_UID_LEASE_DIR`` the lock folder (default ``/run/grader-uids``),
``GRADER_SANDBOX_UID_BASE`` and ``GRADER_SANDBOX_UID_COUNT`` the range (default 61000, 256 uids),
``GRADER_UID_LEASE_WAIT`` how long a run waits for a free uid (seconds, default 120).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import stat
import time
from pathlib import Path

from grader.errors import GraderError

UID_BASE = int(os.environ.get("GRADER_SANDBOX_UID_BASE", "61000"))
UID_COUNT = int(os.environ.get("GRADER_SANDBOX_UID_COUNT", "256"))
DEFAULT_DIR = "/run/grader-uids"
POLL_SECONDS = 0.25


class UidLease:
    """One uid held by this process until :meth:`release` (or the end of the ``with`` block)."""

    def __init__(self, uid: int, fd: int):
        self.uid = uid
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> UidLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lease_dir() -> Path:
    return Path(os.environ.get("GRADER_UID_LEASE_DIR") or DEFAULT_DIR)


def uid_range() -> range:
    return range(UID_BASE, UID_BASE + UID_COUNT)


def lease(wait_seconds: float | None = None) -> UidLease:
    """Lease the lowest free uid of the range, waiting up to ``wait_seconds`` for one to free up.

    Raises:
        GraderError: every uid stayed taken for the whole wait, or the lock folder is unusable.
    """
    if wait_seconds is None:
        wait_seconds = float(os.environ.get("GRADER_UID_LEASE_WAIT", "120"))
    folder = _checked_dir(lease_dir())
    deadline = time.monotonic() + wait_seconds
    while True:
        held = _try_each(folder)
        if held is not None:
            return held
        if time.monotonic() >= deadline:
            uids = uid_range()
            raise GraderError(
                f"every sandbox uid from {uids.start} to {uids.stop - 1} stayed in use by other runs for "
                f"{wait_seconds:g}s", where=str(folder),
                hint="wait for the other graders on this machine to finish, or widen the range with "
                     "GRADER_SANDBOX_UID_COUNT")
        time.sleep(POLL_SECONDS)


def _try_each(folder: Path) -> UidLease | None:
    """The first uid whose lock this process gets and that nothing runs as; None if none is free."""
    busy: set[int] | None = None
    for uid in uid_range():
        fd = os.open(folder / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if busy is None:
            busy = uids_with_processes()
        if uid in busy or _host_user(uid):
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for a person wondering who holds it
        return UidLease(uid, fd)
    return None


def uids_with_processes() -> set[int]:
    """The real uids of every process on the machine (read from /proc)."""
    found = set()
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                uid_line = next(line for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue  # it ended meanwhile
        found.add(int(uid_line.split()[1]))
    return found


def _host_user(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _checked_dir(folder: Path) -> Path:
    """The lock folder, created if missing; refused if another user could plant or hold locks in it."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(folder)
    except OSError as exc:
        raise GraderError(f"cannot create the folder of sandbox uid leases ({exc.strerror})", where=str(folder),
                          hint="run the grader as root, or point GRADER_UID_LEASE_DIR at a folder it owns") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise GraderError("the folder of sandbox uid leases is not a private folder of this user (a link, "
                          "another owner, or writable by others)", where=str(folder),
                          hint="remove it (the grader creates it again), or point GRADER_UID_LEASE_DIR elsewhere")
    return folder
