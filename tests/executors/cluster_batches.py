"""What the Slurm and Ray tests share: a small batch with one slow submission, the moment its task
has started (to kill it there), and a summary without its timings (to compare with a local run)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import GOOD_NET


def write_batch(folder: Path, count: int) -> Path:
    """``count`` submissions; s1 takes a few seconds, so its task can be killed while it grades."""
    folder.mkdir()
    for i in range(count):
        slow = "import time\ntime.sleep(8)\n" if i == 1 else ""
        (folder / f"s{i}.py").write_text(f"{slow}{GOOD_NET}\nanswer = {40 + i}\n")
    return folder


def started_task(out: Path, name: str, timeout: float = 240) -> int | None:
    """The pid of the task grading ``name``, two seconds after it started (None if it never did)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for shard in sorted((out / "shards").glob("*")):
            started = shard / "started"
            if started.exists() and name in (shard / "task.json").read_text():
                time.sleep(2)
                return int(started.read_text().split()[1])
        time.sleep(0.2)
    return None


def normalized_summary(out: Path) -> list[dict]:
    rows = json.loads((out / "summary.json").read_text())
    for row in rows:
        row.pop("seconds", None)
    return rows
