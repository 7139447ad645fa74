"""The host's side of grading in shares (``executors/shards.py``), against a cluster played in
this process: its tasks "grade" by writing the result files a real task writes (``task.py``), or
die part-way, as told. A real cluster runs them in tests/executors/test_slurm.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader import submission
from grader.executors import shards, task
from grader.journal import Journal, key_for
from grader.results import SubmissionResult


class PlayedTask:
    def __init__(self, name: str, spec: Path) -> None:
        self.name, self.spec, self.state, self.cancelled = name, spec, "queued", False

    def cancel(self) -> None:
        self.cancelled, self.state = True, "gone"


class PlayedCluster:
    """Each task runs at the first poll after it was queued. ``dies``: how many results the n-th
    task (from 0) writes before its node is lost; ``version``: the grader version the tasks grade
    under (another one than the host's is a result the host did not ask for)."""

    def __init__(self, dies: dict[int, int] | None = None, version: str | None = None,
                 interrupt_at_poll: int | None = None, per_poll: int = 100) -> None:
        self.dies, self.version, self.interrupt_at_poll, self.per_poll = dies or {}, version, interrupt_at_poll, per_poll
        self.tasks: list[PlayedTask] = []
        self.polls = 0

    def submit(self, task_files: list[Path]) -> list[PlayedTask]:
        made = [PlayedTask(f"played task {len(self.tasks) + i}", f) for i, f in enumerate(task_files)]
        self.tasks += made
        return made

    def device_flags(self) -> list[str]:
        return []

    def refresh(self, tasks: list[PlayedTask]) -> None:
        self.polls += 1
        if self.interrupt_at_poll == self.polls:
            raise KeyboardInterrupt
        ran = 0
        for t in tasks:
            if t.state == "queued":
                t.state = "running"
            elif t.state == "running" and ran < self.per_poll:
                self._run(t)
                ran += 1

    def _run(self, played: PlayedTask) -> None:
        argv = json.loads(played.spec.read_text())["grade"]
        files = argv[2:argv.index("--out")]
        number = self.tasks.index(played)
        for done, file in enumerate(files):
            if done == self.dies.get(number, len(files)):
                played.state = "gone"  # the node is lost: no `ended`
                return
            sub = submission.discover([Path(file)])[0]
            key = key_for(sub, "rubric-hash")
            values = key.values() if self.version is None else (*key.values()[:3], self.version)
            task.write_atomically(task.result_file(played.spec.parent, values),
                                  json.dumps({"key": list(values), "result": result_for(file, key.content_hash)}))
        task.write_atomically(played.spec.parent / task.ENDED, "0\n")
        played.state = "gone"


def result_for(file: str, content_hash: str) -> dict:
    return SubmissionResult(student=Path(file).stem, source=file, content_hash=content_hash, status="ok", message="",
                            isolation="namespace", score=1.0, max_score=1.0, visible_score=1.0, visible_max=1.0,
                            checks=[], assignment="tiny", rubric_hash="rubric-hash", grader_version="0").model_dump(mode="json")


class Seen:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.reused: list[str] = []

    def reused_(self, results):  # the protocol's name is taken by the list
        self.reused += [r.student for r in results]

    def started_(self, sub):
        self.started.append(sub.student)

    def finished_(self, result):
        self.finished.append(result.student)


def events(seen: Seen) -> SimpleNamespace:
    return SimpleNamespace(reused=seen.reused_, started=seen.started_, finished=seen.finished_)


PREP = SimpleNamespace(rubric=SimpleNamespace(text_hash="rubric-hash"), settings=SimpleNamespace(mappings={}))


@pytest.fixture
def five_submissions(tmp_path) -> list[submission.Submission]:
    batch = tmp_path / "batch"
    batch.mkdir()
    for i in range(5):
        (batch / f"s{i}.py").write_text(f"answer = {i}\n")
    return submission.discover([batch])


def grade(subs, cluster, out: Path, journal: Journal, seen: Seen | None = None, per_task: int = 2):
    return shards.grade_in_shares(subs, PREP, cluster, grade_argv=lambda files, shard: ["grade", "r", *files, "--out",
                                  str(shard)], out=out, per_task=per_task, journal=journal,
                                  events=events(seen or Seen()), poll_seconds=0)


def states(journal: Journal) -> dict[str, str]:
    return dict(journal._run("SELECT name, state FROM jobs").fetchall())


def test_every_result_lands_in_the_journal_and_comes_back_in_order(tmp_path, five_submissions):
    seen = Seen()
    with Journal.open(tmp_path / "out" / "journal.sqlite") as journal:
        outcome = grade(five_submissions, PlayedCluster(), tmp_path / "out", journal, seen)
        assert [r.student for r in outcome.results] == [s.student for s in five_submissions]
        assert set(states(journal).values()) == {"done"}
    assert sorted(seen.started) == sorted(seen.finished) == sorted(s.student for s in five_submissions)
    assert not outcome.died and not outcome.missing


def test_a_task_that_dies_has_the_rest_of_its_share_graded_once_more(tmp_path, five_submissions):
    cluster = PlayedCluster(dies={0: 1})  # the first task's node is lost after one of its two results
    with Journal.open(tmp_path / "out" / "journal.sqlite") as journal:
        outcome = grade(five_submissions, cluster, tmp_path / "out", journal)
        assert all(r is not None for r in outcome.results)
        assert set(states(journal).values()) == {"done"}
        attempts = dict(journal._run("SELECT name, attempts FROM jobs").fetchall())
    assert len(cluster.tasks) == 4  # three shares, and one more for the second half of the first
    assert len(outcome.died) == 1 and "1 of its 2 submission(s) not graded" in outcome.died[0]
    assert attempts == {"s0.py": 1, "s1.py": 2, "s2.py": 1, "s3.py": 1, "s4.py": 1}


def test_a_share_whose_every_task_dies_is_left_pending_and_named(tmp_path, five_submissions):
    cluster = PlayedCluster(dies={0: 0, 3: 0})  # the first share's task, then its second try
    with Journal.open(tmp_path / "out" / "journal.sqlite") as journal:
        outcome = grade(five_submissions, cluster, tmp_path / "out", journal)
        assert outcome.missing == ["s0.py", "s1.py"]
        assert [r is None for r in outcome.results] == [True, True, False, False, False]
        assert states(journal) == {"s0.py": "pending", "s1.py": "pending", "s2.py": "done", "s3.py": "done",
                                   "s4.py": "done"}


def test_results_an_earlier_runs_tasks_finished_are_taken_without_a_new_task(tmp_path, five_submissions):
    out = tmp_path / "out"
    with Journal.open(out / "journal.sqlite") as journal:
        grade(five_submissions, PlayedCluster(), out, journal)
    (out / "journal.sqlite").unlink()  # as if the host died before it took any of them
    seen = Seen()
    cluster = PlayedCluster()
    with Journal.open(out / "journal.sqlite") as journal:
        outcome = grade(five_submissions, cluster, out, journal, seen)
        assert set(states(journal).values()) == {"done"}
    assert not cluster.tasks and sorted(seen.reused) == [s.student for s in five_submissions]
    assert all(r is not None for r in outcome.results)


def test_a_result_graded_under_another_grader_version_is_not_taken(tmp_path, five_submissions):
    with Journal.open(tmp_path / "out" / "journal.sqlite") as journal:
        outcome = grade(five_submissions, PlayedCluster(version="0.0.1+src.other"), tmp_path / "out", journal)
        assert set(states(journal).values()) == {"pending"}
    assert sorted(outcome.missing) == [s.source.name for s in five_submissions]


def test_ctrl_c_cancels_every_task_and_keeps_what_finished(tmp_path, five_submissions):
    cluster = PlayedCluster(interrupt_at_poll=3, per_poll=1)  # one task ran before Ctrl-C
    with Journal.open(tmp_path / "out" / "journal.sqlite") as journal:
        with pytest.raises(KeyboardInterrupt):
            grade(five_submissions, cluster, tmp_path / "out", journal, per_task=1)
        assert "running" not in states(journal).values()
        kept = [name for name, state in states(journal).items() if state == "done"]
    assert all(t.cancelled or t.state == "gone" for t in cluster.tasks)
    assert kept == ["s0.py"] and sum(t.cancelled for t in cluster.tasks) == 4
