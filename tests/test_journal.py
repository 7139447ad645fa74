"""The batch journal: finished work is kept, unfinished work is graded again, infrastructure
failures are retried a bounded number of times and student failures never. No sandbox runs here:
the grade function is a fake that records its calls."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

import grader
from grader import data, journal, pipeline, profiles, submission
from grader.errors import GraderError
from grader.journal import JOURNAL_NAME, MAX_INFRA_RETRIES, Journal, key_for
from grader.results import SubmissionResult


class FakeGrade:
    """Stands in for ``pipeline.grade_one``: the status of each student is set by the test."""

    def __init__(self, statuses: dict[str, list[str] | str] | None = None):
        self.statuses = statuses or {}
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, sub, prep, slot) -> SubmissionResult:
        with self._lock:
            self.calls.append(sub.student)
            planned = self.statuses.get(sub.student, "ok")
            status = planned.pop(0) if isinstance(planned, list) else planned
        return make_result(sub, prep, status)


def make_result(sub, prep, status: str = "ok", seconds: float = 1.5) -> SubmissionResult:
    return SubmissionResult(student=sub.student, source=str(sub.source), content_hash=sub.content_hash, status=status,
                            message=status, isolation="none", score=1.0, max_score=2.0, visible_score=1.0,
                            visible_max=1.0, checks=[], seconds=seconds, assignment="tiny",
                            rubric_hash=prep.rubric.text_hash, grader_version=grader.__version__)


@pytest.fixture(autouse=True)
def short_retry_pauses(monkeypatch):
    """Retries pause a few hundredths of a second here instead of the seconds a real batch waits."""
    monkeypatch.setattr(journal, "RETRY_BACKOFF_SECONDS", (0.05, 0.2))


@pytest.fixture
def prep(tiny_rubric):
    none = data.DataRoot(None, "none")
    return pipeline.Prepared(rubric=tiny_rubric, expected={}, data=none, settings=pipeline.Settings(),
                             planned=profiles.plan(tiny_rubric, none))


@pytest.fixture
def subs(tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("alice", "bob", "carol"):
        (batch / f"{name}.py").write_text(f"answer = {len(name)}  # {name}\n")
    return submission.discover([batch])


def run(subs, prep, path: Path, grade: FakeGrade, **kwargs) -> list[SubmissionResult]:
    with Journal.open(path) as journal:
        return pipeline.grade_batch(subs, prep, journal=journal, grade=grade, **kwargs)


def rows(path: Path) -> dict[str, dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return {r["student"]: dict(r) for r in conn.execute("SELECT * FROM jobs")}
    finally:
        conn.close()


def test_a_second_run_keeps_finished_results(tmp_path, subs, prep):
    path = tmp_path / JOURNAL_NAME
    first = run(subs, prep, path, FakeGrade())
    again = FakeGrade()
    second = run(subs, prep, path, again)
    assert again.calls == []
    assert second == first
    assert {r["state"] for r in rows(path).values()} == {"done"}
    assert {r["attempts"] for r in rows(path).values()} == {1}


def test_force_regrades_everything(tmp_path, subs, prep):
    path = tmp_path / JOURNAL_NAME
    run(subs, prep, path, FakeGrade())
    again = FakeGrade()
    run(subs, prep, path, again, force=True)
    assert sorted(again.calls) == ["alice", "bob", "carol"]
    assert {r["attempts"] for r in rows(path).values()} == {2}


def test_rows_left_running_by_a_killed_grader_are_graded_again(tmp_path, subs, prep):
    path = tmp_path / JOURNAL_NAME
    run(subs[:1], prep, path, FakeGrade())
    with Journal.open(path) as journal:  # what a grader SIGKILLed while grading bob leaves behind
        key = key_for(subs[1], prep.rubric.text_hash)
        journal.add([(key, subs[1])])
        journal.start(key)
    assert rows(path)["bob"]["state"] == "running"
    again = FakeGrade()
    results = run(subs, prep, path, again)
    assert sorted(again.calls) == ["bob", "carol"]
    assert [r.student for r in results] == ["alice", "bob", "carol"]
    assert {s: r["attempts"] for s, r in rows(path).items()} == {"alice": 1, "bob": 2, "carol": 1}


def test_each_result_is_in_the_journal_before_the_next_submission_starts(tmp_path, subs, prep):
    path = tmp_path / JOURNAL_NAME
    seen: list[dict[str, str]] = []

    def grade(sub, prep, slot):
        seen.append({s: r["state"] for s, r in rows(path).items()})  # read by another connection
        return make_result(sub, prep)

    run(subs, prep, path, grade, slots=None)
    assert seen[1]["alice"] == "done" and seen[1]["bob"] == "running"
    assert seen[2] == {"alice": "done", "bob": "done", "carol": "running"}


def test_sandbox_errors_are_retried_a_bounded_number_of_times(tmp_path, subs, prep):
    path = tmp_path / JOURNAL_NAME
    grade = FakeGrade({"alice": "sandbox-error", "bob": ["sandbox-error", "ok"]})
    results = run(subs, prep, path, grade)
    assert grade.calls.count("alice") == 1 + MAX_INFRA_RETRIES
    assert grade.calls.count("bob") == 2
    assert [r.status for r in results] == ["sandbox-error", "ok", "ok"]
    stored = rows(path)
    assert (stored["alice"]["state"], stored["alice"]["attempts"]) == ("failed", 1 + MAX_INFRA_RETRIES)
    assert (stored["bob"]["state"], stored["bob"]["attempts"]) == ("done", 2)
    # The grader failed, not the student: a later run tries again, with the same bound.
    again = FakeGrade({"alice": "sandbox-error"})
    run(subs, prep, path, again)
    assert again.calls == ["alice"] * (1 + MAX_INFRA_RETRIES)


def test_retries_pause_longer_each_time(tmp_path, subs, prep):
    starts: list[float] = []

    def grade(sub, prep, slot):
        starts.append(time.monotonic())
        return make_result(sub, prep, "sandbox-error")

    run(subs[:1], prep, tmp_path / JOURNAL_NAME, grade)
    pauses = [later - earlier for earlier, later in zip(starts, starts[1:])]
    assert len(pauses) == MAX_INFRA_RETRIES
    assert pauses[0] >= 0.05 and pauses[1] >= 0.2
    assert journal.retry_delay(1) < journal.retry_delay(2) == journal.retry_delay(9)  # bounded


def test_a_batch_stopped_during_a_retry_pause_leaves_the_job_pending(tmp_path, subs, prep, monkeypatch):
    """Ctrl-C while alice waits to be retried: no further attempt, and her row goes back to pending."""
    from grader import sandbox

    monkeypatch.setattr(journal, "RETRY_BACKOFF_SECONDS", (30.0, 30.0))
    monkeypatch.setattr(sandbox, "stop_all", lambda: None)
    grade = FakeGrade({"alice": "sandbox-error"})
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))  # Ctrl-C in the main thread
    timer.start()
    started = time.monotonic()
    path = tmp_path / JOURNAL_NAME
    try:
        with pytest.raises(KeyboardInterrupt):
            run(subs[:1], prep, path, grade)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10, "the pause did not end when the batch stopped"
    assert grade.calls == ["alice"]
    assert (rows(path)["alice"]["state"], rows(path)["alice"]["attempts"]) == ("pending", 1)


@pytest.mark.parametrize("status", ["timeout-wall", "crash", "kernel-died", "no-result", "rejected", "memory"])
def test_student_failures_are_never_retried(tmp_path, subs, prep, status):
    path = tmp_path / JOURNAL_NAME
    grade = FakeGrade({"alice": status})
    run(subs, prep, path, grade)
    assert grade.calls.count("alice") == 1
    assert rows(path)["alice"]["state"] == "done" and rows(path)["alice"]["status"] == status
    again = FakeGrade()
    run(subs, prep, path, again)
    assert again.calls == []


def test_a_changed_rubric_or_grader_version_means_regrading(tmp_path, subs, prep, monkeypatch):
    path = tmp_path / JOURNAL_NAME
    run(subs, prep, path, FakeGrade())
    changed = dataclasses.replace(prep, rubric=dataclasses.replace(prep.rubric, text_hash="another rubric"))
    grade = FakeGrade()
    run(subs, changed, path, grade)
    assert len(grade.calls) == 3
    monkeypatch.setattr(grader, "__version__", "99.0.0")
    grade = FakeGrade()
    run(subs, prep, path, grade)
    assert len(grade.calls) == 3


def test_a_changed_grader_source_means_regrading(tmp_path, subs, prep, monkeypatch):
    """A probe or judge changed without a new release: the stored results are not reused."""
    from grader import source_hash

    path = tmp_path / JOURNAL_NAME
    run(subs, prep, path, FakeGrade())
    grade = FakeGrade()
    run(subs, prep, path, grade)
    assert grade.calls == []
    before = source_hash.source_hash()
    monkeypatch.setattr(source_hash, "source_hash", lambda: "a-changed-judge")
    grade = FakeGrade()
    run(subs, prep, path, grade)
    assert len(grade.calls) == 3
    versions = {row[0] for row in sqlite3.connect(path).execute("SELECT grader_version FROM jobs")}
    assert versions == {f"{grader.__version__}+src.{h}" for h in (before, "a-changed-judge")}


def test_changed_content_means_regrading_and_a_moved_batch_does_not(tmp_path, subs, prep):
    path = tmp_path / JOURNAL_NAME
    run(subs, prep, path, FakeGrade())
    moved = tmp_path / "moved"
    (tmp_path / "batch").rename(moved)
    (moved / "bob.py").write_text("answer = 'changed'\n")
    grade = FakeGrade()
    results = run(submission.discover([moved]), prep, path, grade)
    assert grade.calls == ["bob"]
    assert results[0].source == str(moved / "alice.py")  # the kept result names the file where it is now


def test_an_identical_file_given_twice_is_graded_once(tmp_path, subs, prep):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "alice.py").write_bytes(subs[0].source.read_bytes())
    grade = FakeGrade()
    results = run(subs + submission.discover([copy]), prep, tmp_path / JOURNAL_NAME, grade)
    assert sorted(grade.calls) == ["alice", "bob", "carol"]
    assert [r.source for r in results][-1] == str(copy / "alice.py")


def test_an_interrupted_batch_keeps_finished_rows_and_resumes(tmp_path, subs, prep, monkeypatch):
    """Ctrl-C while bob runs: alice stays done, bob goes back to pending, carol never starts."""
    from grader import sandbox

    killed = threading.Event()
    monkeypatch.setattr(sandbox, "stop_all", killed.set)

    def grade(sub, prep, slot):
        if sub.student == "bob":
            os.kill(os.getpid(), signal.SIGINT)  # Python raises KeyboardInterrupt in the main thread
            assert killed.wait(10), "the executor did not end the children"
            return make_result(sub, prep, "crash")  # what a run whose child was killed looks like
        return make_result(sub, prep)

    path = tmp_path / JOURNAL_NAME
    with pytest.raises(KeyboardInterrupt):
        run(subs, prep, path, grade)
    stored = rows(path)
    assert {s: (r["state"], r["attempts"]) for s, r in stored.items()} == {
        "alice": ("done", 1), "bob": ("pending", 1), "carol": ("pending", 0)}
    assert stored["bob"]["result"] is None
    again = FakeGrade()
    run(subs, prep, path, again)
    assert again.calls == ["bob", "carol"]


def test_a_slot_that_does_not_return_in_time_has_its_row_put_back(tmp_path, subs, prep, monkeypatch):
    """Ctrl-C while bob's run will not come back within the wait: the batch itself puts his row
    back to pending, so the journal never shows a run that nothing is running any more."""
    from grader import sandbox
    from grader.executors import local

    monkeypatch.setattr(local, "JOIN_SECONDS", 0.3)
    monkeypatch.setattr(sandbox, "stop_all", lambda: 0)
    stuck = threading.Event()

    def grade(sub, prep, slot):
        os.kill(os.getpid(), signal.SIGINT)
        stuck.wait(30)  # a run slow to notice its child was ended
        return make_result(sub, prep, "crash")

    path = tmp_path / JOURNAL_NAME
    try:
        with pytest.raises(KeyboardInterrupt):
            run(subs[:1], prep, path, grade)
        assert (rows(path)["alice"]["state"], rows(path)["alice"]["attempts"]) == ("pending", 1)
    finally:
        stuck.set()


def test_the_journal_is_in_wal_mode_with_full_sync(tmp_path):
    path = tmp_path / "out" / JOURNAL_NAME
    with Journal.open(path) as journal:
        assert journal.pragma("journal_mode") == "wal"
        assert journal.pragma("synchronous") == 2  # FULL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # stored in the file
    conn.close()


def test_a_corrupt_journal_says_what_where_and_what_to_do(tmp_path):
    path = tmp_path / JOURNAL_NAME
    path.write_bytes(b"these are not the pages of a database" * 200)
    with pytest.raises(GraderError) as caught:
        Journal.open(path)
    assert caught.value.where == str(path)
    assert "the batch journal is unreadable (file is not a database)" in caught.value.what
    assert f"mv {path} {path}.bad" in caught.value.hint and "--out" in caught.value.hint


def test_a_foreign_database_is_not_taken_for_a_journal(tmp_path):
    path = tmp_path / JOURNAL_NAME
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE songs (title TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(GraderError) as caught:
        Journal.open(path)
    assert caught.value.what == "this file is an SQLite database, but not a grader journal"
    assert caught.value.where == str(path)
    conn = sqlite3.connect(path)
    assert [t for (t,) in conn.execute("SELECT name FROM sqlite_master")] == ["songs"]  # left as it was
    conn.close()


def test_a_journal_of_another_format_is_refused(tmp_path):
    path = tmp_path / JOURNAL_NAME
    Journal.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(GraderError, match="this journal has format 7; this grader reads format 1"):
        Journal.open(path)


def test_an_output_folder_that_cannot_be_written_is_a_clear_error(tmp_path):
    (tmp_path / "out").write_text("a file, not a folder")
    with pytest.raises(GraderError) as caught:
        Journal.open(tmp_path / "out" / JOURNAL_NAME)
    assert caught.value.what.startswith("cannot write the batch journal here")
    assert caught.value.hint == "pass an --out folder you can write to"


def test_two_graders_cannot_share_an_output_folder(tmp_path):
    path = tmp_path / JOURNAL_NAME
    with Journal.open(path):
        with pytest.raises(GraderError) as caught:
            Journal.open(path)
        assert caught.value.what == "another grader is writing into this output folder right now"
    Journal.open(path).close()  # the lock goes with the first grader
