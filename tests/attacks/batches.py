"""What the attack modules share: a uid range of their own, and one namespace batch graded through
the real command line, its results read back per case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def own_uids(offset: int) -> range:
    """16 sandbox uids away from the default range (61000 up), picked by pid among 100 ranges and
    shifted by ``offset`` so that the attack modules of one pytest run never share one, and a
    grader running next to the suite is neither leased these uids nor counted as a leftover."""
    start = 62000 + 16 * ((os.getpid() + offset) % 100)
    return range(start, start + 16)


def grade(rubric: Path, cases: Path, out: Path, uids: range, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess:
    """``grader grade RUBRIC CASES`` with two workers in the namespace sandbox, as these uids."""
    env = {**os.environ, **(env or {}), "GRADER_SANDBOX_UID_BASE": str(uids.start),
           "GRADER_SANDBOX_UID_COUNT": str(len(uids))}
    return subprocess.run([sys.executable, "-m", "grader", "grade", str(rubric), str(cases), "--out", str(out),
                           "--workers", "2", "--quiet", "--isolation", "namespace"],
                          capture_output=True, text=True, env=env, timeout=900)


def results(out: Path) -> dict[str, dict[str, Any]]:
    """Each case's result JSON, by case name."""
    return {f.stem: json.loads(f.read_text()) for f in (out / "submissions").glob("*.json")}


def checks_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in result["checks"]}


def graded(rubric: Path, cases: Path, out: Path, uids: range, env: dict[str, str] | None = None
           ) -> dict[str, dict[str, Any]]:
    """``grade`` the cases, which must finish, and read their results back by case name."""
    done = grade(rubric, cases, out, uids, env)
    assert done.returncode == 0, done.stderr[-3000:]
    return results(out)


def assert_scored(result: dict[str, Any], score: float) -> None:
    """The case ran to the end in the namespace sandbox and got exactly ``score``."""
    assert (result["status"], result["score"]) == ("ok", score), json.dumps(result["checks"], indent=1)[:3000]
    assert result["isolation"] == "namespace"
