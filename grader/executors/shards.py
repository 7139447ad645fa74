"""A batch graded in shares on other machines: a Slurm array job (``slurm.py``) or Ray tasks
(``ray_cluster.py``).

The host splits what is left to grade into shares, writes one task file per share into a shard
folder (``OUT/shards/<run>-<n>/task.json``: the ``grade`` command line of that share) and hands the
tasks to the cluster. Each task grades its share where it lands, with the grader itself
(``task.py``: sandboxes and GPUs of its node), and writes every result as it finishes into the
shard folder. The host runs no student code: it polls the shard folders and the cluster, takes each
result into the batch's journal as it lands (only for the file, content, rubric and grader version
it asked for), and reports it. So the batch's journal stays the one account of the batch: the
reports are written from it as for a local batch, and running the same command again resumes.

A task that ends without having finished its whole share (it failed, was cancelled, its node was
lost) has the rest regraded once, in a new task; what is still missing after that stays pending
and the command says so. Ctrl-C cancels every task still queued or running. Shard folders an
earlier run left are read first, so results a task finished after its host went away are kept.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Protocol

from pydantic import ValidationError

from grader import pipeline, submission
from grader.executors import task as task_side
from grader.journal import JobKey, Journal
from grader.results import SubmissionResult

SHARDS_DIR = "shards"
POLL_SECONDS = 2.0
ATTEMPTS = 2  # a share's first task, and one more for what a dead task left
TaskState = Literal["queued", "running", "gone"]


class Task(Protocol):
    """One task on the cluster, as its backend last saw it."""

    name: str  # how the cluster names it, for messages: "Slurm job 41_3"
    state: TaskState  # "gone": no longer queued or running there, however it ended

    def cancel(self) -> None: ...


class Backend(Protocol):
    """A cluster the host can hand task files to."""

    def submit(self, task_files: list[Path]) -> list[Task]:
        """Queue one task per file (``python -m grader.executors.task FILE``)."""

    def refresh(self, tasks: list[Task]) -> None:
        """Update each task's ``state``."""

    def device_flags(self) -> list[str]:
        """What a share's ``grade`` command line needs to use the GPUs its task is given."""


@dataclass
class Share:
    keys: list[JobKey]
    folder: Path
    attempt: int
    task: Task | None = None
    running: bool = False
    taken: set[JobKey] = field(default_factory=set)

    def ended(self) -> bool:
        return (self.folder / task_side.ENDED).exists() or (self.task is not None and self.task.state == "gone")


@dataclass
class Outcome:
    """What ``grade_in_shares`` brings back: results by position (None: not graded) and, for the
    command's message, the tasks that died and the shares given up on."""

    results: list[SubmissionResult | None]
    died: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # file names still pending after every attempt
    shards: Path | None = None


def grade_in_shares(subs: list[submission.Submission], prep: pipeline.Prepared, backend: Backend, *,
                    grade_argv: Callable[[list[str], Path], list[str]], out: Path, per_task: int, journal: Journal,
                    events: pipeline.BatchEvents, force: bool = False, poll_seconds: float = POLL_SECONDS) -> Outcome:
    """Grade ``subs`` in tasks of ``per_task`` submissions on ``backend``; results in the order of
    ``subs``. ``grade_argv(files, shard)`` is a share's ``grade`` command line (without ``grader``)."""
    shards = out / SHARDS_DIR
    if force:
        shutil.rmtree(shards, ignore_errors=True)
    results, todo = pipeline.kept_and_todo(subs, prep, journal, force)
    journal.add((key, subs[positions[0]]) for key, positions in todo.items())
    if not force:  # what tasks of an earlier run finished after it ended
        for folder in sorted(p for p in shards.glob("*") if p.is_dir()):
            _take(Share(list(todo), folder, ATTEMPTS), todo, subs, results, journal, events=None)
        results, todo = pipeline.kept_and_todo(subs, prep, journal, force=False)
    events.reused([r for r in results if r is not None])
    outcome = Outcome(results, shards=shards)
    run = time.strftime("%Y%m%d-%H%M%S")
    keys = list(todo)
    shares = [Share(keys[i:i + per_task], shards / f"{run}-{i // per_task + 1:04d}", 1)
              for i in range(0, len(keys), per_task)]
    active = list(shares)
    try:
        _submit(active, backend, todo, subs, grade_argv)
        while active:
            time.sleep(poll_seconds)
            backend.refresh([s.task for s in active if s.task is not None])
            for share in list(active):
                _take(share, todo, subs, results, journal, events)
                if not share.running and share.task is not None and share.task.state == "running":
                    share.running = True
                    for key in share.keys:
                        journal.start(key)
                        for position in todo[key]:
                            events.started(subs[position])
                if not share.ended():
                    continue
                _take(share, todo, subs, results, journal, events)  # what landed as it ended
                active.remove(share)
                left = [k for k in share.keys if k not in share.taken]
                if not left:
                    continue
                outcome.died.append(f"{share.task.name if share.task else share.folder.name} ended with "
                                    f"{len(left)} of its {len(share.keys)} submission(s) not graded")
                journal.release_running(left)
                if share.attempt < ATTEMPTS:
                    again = Share(left, share.folder.with_name(f"{share.folder.name}-again"), share.attempt + 1)
                    _submit([again], backend, todo, subs, grade_argv)
                    active.append(again)
                else:
                    outcome.missing += [k.name for k in left]
    except BaseException:
        for share in active:
            if share.task is not None:
                share.task.cancel()
        for share in active:
            _take(share, todo, subs, results, journal, events=None)
        journal.release_running(todo)
        raise
    return outcome


def _submit(shares: list[Share], backend: Backend, todo: dict[JobKey, list[int]], subs: list[submission.Submission],
            grade_argv: Callable[[list[str], Path], list[str]]) -> None:
    files = []
    for share in shares:
        share.folder.mkdir(parents=True, exist_ok=True)
        argv = grade_argv([str(Path(subs[todo[k][0]].source).resolve()) for k in share.keys], share.folder)
        argv += backend.device_flags()
        task_side.write_atomically(share.folder / task_side.TASK_FILE, json.dumps({"grade": argv}))
        files.append(share.folder / task_side.TASK_FILE)
    for share, task in zip(shares, backend.submit(files)):
        share.task = task


def _take(share: Share, todo: dict[JobKey, list[int]], subs: list[submission.Submission],
          results: list[SubmissionResult | None], journal: Journal, events: pipeline.BatchEvents | None) -> None:
    """Every result of ``share`` that landed since the last look: into the journal, then reported."""
    for key in share.keys:
        if key in share.taken:
            continue
        path = task_side.result_file(share.folder, key.values())
        try:
            doc = json.loads(path.read_text())
            result = SubmissionResult.model_validate(doc["result"])
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError, ValidationError):
            continue  # not a result this grader wrote: the share's next attempt grades it
        if tuple(doc.get("key", ())) != key.values():
            continue
        share.taken.add(key)
        journal.finish(key, result)
        for position in todo[key]:
            results[position] = pipeline.as_submitted(result, subs[position])
            if events is not None:
                events.finished(results[position])  # type: ignore[arg-type]
