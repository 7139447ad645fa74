"""One share of a batch, graded where a cluster put it: ``python -m grader.executors.task SHARD/task.json``.

The host (``executors/shards.py``) writes the task file: the ``grade`` command line of the share
(the batch's rubric and options, this share's files, ``--out`` the shard folder). The task grades
them as ``grader grade`` would, in sandboxes on this node with this node's GPUs, and writes each
result as it finishes into ``SHARD/done/`` (one JSON file per submission, written whole and then
renamed into place, so the host never reads half of one), with the journal key it was graded
under: the host takes a result only for the file, content, rubric and grader version it asked for.
``SHARD/started`` and ``SHARD/ended`` (the exit code) tell the host where the task got to; a task
that never writes ``ended`` died.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from grader.results import SubmissionResult

TASK_FILE = "task.json"
DONE_DIR = "done"
STARTED, ENDED = "started", "ended"


def result_file(shard: Path, key_values: tuple[str, ...]) -> Path:
    """Where the result graded under this journal key lands in ``shard``."""
    return shard / DONE_DIR / (hashlib.sha256("\0".join(key_values).encode()).hexdigest()[:24] + ".json")


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


class _ResultFiles:
    """The task's batch listener: each finished result goes to ``done/`` at once."""

    def __init__(self, shard: Path, keys: dict[str, tuple[str, ...]]) -> None:
        self.shard, self.keys = shard, keys

    def reused(self, results: list[SubmissionResult]) -> None:
        pass

    def started(self, sub: Any) -> None:
        pass

    def finished(self, result: SubmissionResult) -> None:
        key = self.keys[result.source]
        write_atomically(result_file(self.shard, key),
                         json.dumps({"key": list(key), "result": result.model_dump(mode="json")}))


def main(argv: list[str]) -> int:
    from grader import cli, pipeline, submission
    from grader.executors.slots import parse_gpus, plan_slots
    from grader.journal import key_for

    task = Path(argv[0])
    shard = task.parent
    write_atomically(shard / STARTED, f"{os.uname().nodename} {os.getpid()}\n")
    code = 1
    try:
        args = cli.build_parser().parse_args(json.loads(task.read_text())["grade"])
        rubric = cli.load_rubric(args.rubric)
        subs = submission.discover(args.submissions, cli.own_modules(rubric))
        slots = plan_slots(args.workers, parse_gpus(args.gpus) if args.gpus else [], args.per_gpu)
        prep = pipeline.prepare(rubric, cli.settings_from(args, rubric))
        keys = {str(sub.source): key_for(sub, pipeline.graded_against(prep, sub)).values() for sub in subs}
        pipeline.grade_batch(subs, prep, _ResultFiles(shard, keys), slots=slots)
        code = 0
    finally:
        write_atomically(shard / ENDED, f"{code}\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
