"""The batch journal: what a batch has graded, kept so that a killed grader resumes.

One SQLite file per output folder (``OUT/journal.sqlite``), in WAL mode with full sync, so a
row committed before a crash or a SIGKILL is on disk. One row per job, keyed by the submission's
file name, its content hash, the rubric's hash and the grader's exact version (its release and a
hash of its source, ``grader.source_hash.exact_version``, so a changed probe or judge regrades
even when nobody raised the release): change any of them and the submission is graded again.
The name is part of the key because the stored result is that student's (their id, their
output); two students who hand in the same bytes are graded apart.

A row moves ``pending`` → ``running`` → ``done`` (a final result, whatever the student's code did)
or ``failed`` (the grader's own infrastructure failed, status ``sandbox-error``). Only ``done``
rows are reused by a later run; ``running`` rows left by a killed grader and ``failed`` rows are
graded again. Every start counts as an attempt; within one run, a failed attempt is retried
after a pause that grows (``retry_delay``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from pydantic import ValidationError

from grader.errors import GraderError
from grader.sandbox.statuses import MACHINE_FAULT
from grader.results import SubmissionResult

if TYPE_CHECKING:
    from grader.submission import Submission

JOURNAL_NAME = "journal.sqlite"
# Infrastructure failures are retried within one run, after these pauses (so 1 + this many
# attempts): a machine busy enough to fail a run gets time to calm down. Failures of the
# student's code never are retried: they would fail the same way again.
RETRY_BACKOFF_SECONDS = (5.0, 20.0)
MAX_INFRA_RETRIES = len(RETRY_BACKOFF_SECONDS)
INFRASTRUCTURE_STATUSES = MACHINE_FAULT  # the grader's or the machine's failures (sandbox.statuses.STATUSES)

APPLICATION_ID = 0x47524A4E  # "GRJN" in the SQLite header: tells our journal from any other database
SCHEMA_VERSION = 1
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
_KEY = "name = ? AND content_hash = ? AND rubric_hash = ? AND grader_version = ?"
_SCHEMA = """
CREATE TABLE jobs (
    name           TEXT NOT NULL,
    content_hash   TEXT NOT NULL,
    rubric_hash    TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    student        TEXT NOT NULL,
    source         TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    status         TEXT,
    result         TEXT,
    created_at     TEXT NOT NULL,
    started_at     TEXT,
    finished_at    TEXT,
    PRIMARY KEY (name, content_hash, rubric_hash, grader_version)
)"""


@dataclass(frozen=True)
class JobKey:
    """What a stored result is valid for: this file, with these bytes, this rubric, this grader.

    ``grader_version`` is the exact version, ``0.1.0+src.<source hash>``: a person reading the
    journal sees which release graded a row and whether its source was the same as now."""

    name: str
    content_hash: str
    rubric_hash: str
    grader_version: str

    def values(self) -> tuple[str, str, str, str]:
        return self.name, self.content_hash, self.rubric_hash, self.grader_version


def key_for(sub: Submission, rubric_hash: str) -> JobKey:
    """The journal key of ``sub`` graded against the rubric with ``rubric_hash`` by this grader.

    The name is taken from the absolute path so that ``grader grade r .`` names the folder, and is
    the same wherever the batch folder is moved.
    """
    from grader.source_hash import exact_version

    return JobKey(Path(os.path.abspath(sub.source)).name, sub.content_hash, rubric_hash, exact_version())


def retry_delay(retry: int) -> float:
    """Seconds to wait before the ``retry``-th new attempt (1, 2...): longer each time."""
    return RETRY_BACKOFF_SECONDS[min(retry, len(RETRY_BACKOFF_SECONDS)) - 1]


def is_infrastructure_failure(result: SubmissionResult) -> bool:
    """True when the grader failed, not the student: worth another attempt, never a final grade."""
    return result.status in INFRASTRUCTURE_STATUSES


class Journal:
    """An open journal. Thread-safe: workers record starts and results while the batch runs.

    Use :meth:`open` for a batch's file (locked against a second grader on the same folder), or
    :meth:`in_memory` when nothing needs to survive the process.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path | None, lock_fd: int | None = None):
        self._conn, self.path, self._lock_fd = conn, path, lock_fd
        self._mutex = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> Journal:
        """Open (or create) the journal at ``path``; a file that is not one is an error that says so."""
        conn, lock_fd = None, None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock_fd = _lock(path)
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            _initialise(conn, path)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if lock_fd is not None:
                os.close(lock_fd)
            if isinstance(exc, (OSError, sqlite3.OperationalError)):
                raise GraderError(f"cannot write the batch journal here ({exc})", where=str(path),
                                  hint="pass an --out folder you can write to") from None
            raise
        return cls(conn, path, lock_fd)

    @classmethod
    def in_memory(cls) -> Journal:
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        _initialise(conn, Path(":memory:"))
        return cls(conn, None)

    def close(self) -> None:
        with self._mutex:
            self._conn.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pragma(self, name: str) -> Any:
        """An SQLite setting in effect, e.g. ``journal_mode`` (``wal``) or ``synchronous`` (2: full)."""
        return self._run(f"PRAGMA {name}").fetchone()[0]

    def finished(self, key: JobKey) -> SubmissionResult | None:
        """The stored result of a ``done`` row, or None when the job must be graded (again)."""
        row = self._run(f"SELECT result FROM jobs WHERE {_KEY} AND state = 'done'", key.values()).fetchone()
        if row is None:
            return None
        try:
            return SubmissionResult.model_validate_json(row[0])
        except ValidationError:  # written by a development build with another result format: regrade
            return None

    def results_of(self, rubric_text_hash: str, grader_version: str) -> tuple[dict[str, SubmissionResult], int]:
        """Every file's latest finished result graded against this rubric (with or without a
        mapping) by this grader, by file name; and how many files have results only from another
        rubric or grader version (left out: mixing them would mix two gradings)."""
        rows = self._run("SELECT name, rubric_hash, grader_version, result FROM jobs WHERE state = 'done' "
                         "ORDER BY finished_at").fetchall()
        current: dict[str, SubmissionResult] = {}
        other: set[str] = set()
        for name, rubric_hash, version, text in rows:
            if version != grader_version or rubric_hash.split("+", 1)[0] != rubric_text_hash:
                other.add(name)
                continue
            try:
                current[name] = SubmissionResult.model_validate_json(text)  # later rows replace earlier ones
            except ValidationError:
                other.add(name)
        return current, len(other - set(current))

    def take_finished(self, other: Journal) -> list[tuple[str, str]]:
        """Copy ``other``'s finished rows into this journal (``grader merge``): a row this journal
        also holds is replaced only by a later result. Returns ``(name, content_hash)`` of every
        row copied, for the caller to tell files graded in two places with different content."""
        columns = "name, content_hash, rubric_hash, grader_version, student, source, state, attempts, status, " \
                  "result, created_at, started_at, finished_at"
        rows = other._run(f"SELECT {columns} FROM jobs WHERE state = 'done'").fetchall()
        self._run(f"INSERT INTO jobs ({columns}) VALUES ({', '.join('?' * 13)}) "
                  "ON CONFLICT (name, content_hash, rubric_hash, grader_version) DO UPDATE SET "
                  "student = excluded.student, source = excluded.source, state = excluded.state, "
                  "attempts = excluded.attempts, status = excluded.status, result = excluded.result, "
                  "started_at = excluded.started_at, finished_at = excluded.finished_at "
                  "WHERE jobs.state != 'done' OR excluded.finished_at > jobs.finished_at", rows, many=True)
        return [(row[0], row[1]) for row in rows]

    def add(self, jobs: Iterable[tuple[JobKey, Submission]]) -> None:
        """Record jobs about to be graded as ``pending``; rows already there keep their history."""
        rows = [(*key.values(), sub.student, str(sub.source)) for key, sub in jobs]
        self._run("INSERT INTO jobs (name, content_hash, rubric_hash, grader_version, student, source, state, "
                  f"created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', {_NOW}) ON CONFLICT DO NOTHING", rows, many=True)

    def start(self, key: JobKey) -> None:
        """Mark the job ``running`` and count the attempt (committed before any code runs)."""
        self._update(f"state = 'running', attempts = attempts + 1, started_at = {_NOW}", (), key)

    def finish(self, key: JobKey, result: SubmissionResult) -> None:
        """Store the result at once: ``done``, or ``failed`` when the grader itself failed."""
        state = "failed" if is_infrastructure_failure(result) else "done"
        self._update(f"state = ?, status = ?, result = ?, finished_at = {_NOW}",
                     (state, result.status, result.model_dump_json()), key)

    def release(self, key: JobKey) -> None:
        """Put an interrupted job back to ``pending``: its run was cut short, not finished."""
        self._update("state = 'pending'", (), key)

    def release_running(self, keys: Iterable[JobKey]) -> None:
        """Put those of ``keys`` still ``running`` back to ``pending``: after a stop, a slot that did
        not return in time cannot do it itself."""
        self._run(f"UPDATE jobs SET state = 'pending' WHERE state = 'running' AND {_KEY}",
                  [tuple(key.values()) for key in keys], many=True)

    def _update(self, assignments: str, params: tuple, key: JobKey) -> None:
        if self._run(f"UPDATE jobs SET {assignments} WHERE {_KEY}", (*params, *key.values())).rowcount != 1:
            raise GraderError(f"the journal has no row for {key.name} any more", where=str(self.path),
                              hint="another program changed the journal; run the same command again")

    def _run(self, sql: str, params: Any = (), many: bool = False) -> sqlite3.Cursor:
        """One statement, committed on return (autocommit; with synchronous=FULL, on disk)."""
        with self._mutex:
            try:
                return (self._conn.executemany if many else self._conn.execute)(sql, params)
            except sqlite3.Error as exc:
                raise GraderError(f"the batch journal could not be written or read ({exc})", where=str(self.path),
                                  hint="free some disk space or fix the folder's permissions; results recorded "
                                       "so far are kept, so run the same command again") from None


def _lock(path: Path) -> int:
    """Hold an exclusive lock on ``path.lock`` while the journal is open: two graders writing into
    one folder would grade the same submissions twice and take each other's ``running`` rows for
    leftovers of a killed run. The kernel drops the lock when the process dies, even by SIGKILL."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise GraderError("another grader is writing into this output folder right now", where=str(path.parent),
                          hint="wait for it to finish, or pass another --out") from None
    return fd


def _initialise(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new file, or check that an existing file is a journal we can read."""
    bad = (f"move it away (mv {path} {path}.bad) and run again to regrade the whole batch, "
           "or pass another --out")
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id == 0 and tables == 0:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(f"BEGIN; {_SCHEMA}; PRAGMA application_id = {APPLICATION_ID}; "
                               f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        elif app_id != APPLICATION_ID:
            raise GraderError("this file is an SQLite database, but not a grader journal", where=str(path),
                              hint=bad)
        elif version != SCHEMA_VERSION:
            raise GraderError(f"this journal has format {version}; this grader reads format {SCHEMA_VERSION}",
                              where=str(path), hint=bad)
        elif (check := conn.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
            raise sqlite3.DatabaseError(check)
        conn.execute("PRAGMA journal_mode = WAL")  # stored in the file; set again in case it was changed
        conn.execute("PRAGMA synchronous = FULL")  # per connection: a commit is on disk before it returns
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):  # cannot open or lock: not the file's fault
            raise
        raise GraderError(f"the batch journal is unreadable ({exc}); it records what this output folder "
                          "has already graded", where=str(path), hint=bad) from None
