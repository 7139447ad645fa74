"""The sandbox interface: run one submission's code and probes in a child process.

``run(job)`` is all the pipeline sees. The isolation level in use is recorded in every result.
This module implements the ``process`` level (own session and process group, scrubbed
environment, wall deadline, every descendant killed afterwards); the namespace level plugs in
behind the same function.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from grader import observations
from grader.submission import Entry

Isolation = Literal["process"]
GRACE_SECONDS = 3.0


class CellRun(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    index: int
    type: str
    status: Literal["ok", "error", "timeout", "skipped", "died"]
    error: str | None = None
    words: int = 0
    figures: int = 0
    source: str = ""
    output: str = ""


class ModuleRun(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    status: Literal["ok", "error"]
    error: str | None
    output: str


class Execution(BaseModel):
    """The runner's record of the student's code running (read back on the host; untrusted)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    form: Literal["notebook", "module"]
    cells: list[CellRun] = []
    modules: list[ModuleRun] = []
    removed_commands: list[str] = []
    kernel_died: bool = False
    died_in_cell: int | str | None = None
    probe_failure: str | None = None
    problem: str | None = None
    runner_error: str | None = None


@dataclass(frozen=True)
class Slot:
    """One of the batch's parallel places to run: its index picks the sandbox uid, ``gpu`` the only
    device the sandbox sees (``None``: no GPU)."""

    index: int = 0
    gpu: str | None = None


@dataclass
class Job:
    """Everything the child needs: where the code is, what to probe, limits, and where to write."""

    entry: Entry
    plan: dict[str, Any]
    limits: dict[str, Any]
    out_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    slot: Slot = field(default_factory=Slot)


@dataclass
class RunResult:
    status: str
    message: str
    isolation: Isolation
    seconds: float
    records: list[observations.ProbeRecord] = field(default_factory=list)
    arrays: dict[str, Any] = field(default_factory=dict)
    execution: Execution | None = None
    stdout: str = ""
    stderr: str = ""


def run(job: Job) -> RunResult:
    """Run ``job`` in a child process and read back what it observed."""
    job.out_dir.mkdir(parents=True, exist_ok=True)
    job_path = job.out_dir / "job.json"
    job_path.write_text(json.dumps({
        "entry": {"form": job.entry.form, "root": str(job.entry.root),
                  "notebook": str(job.entry.notebook) if job.entry.notebook else None,
                  "modules": list(job.entry.modules)},
        "plan": job.plan, "limits": job.limits, "out_dir": str(job.out_dir)}))
    wall = float(job.limits["wall_seconds"])
    start = time.monotonic()
    with open(job.out_dir / "stdout.txt", "wb") as out, open(job.out_dir / "stderr.txt", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "grader.sandbox.runner", str(job_path)],
                                cwd=job.entry.root, env=child_env(job), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        timed_out = _wait(proc, wall)
    seconds = time.monotonic() - start
    limit = int(job.limits.get("output_chars", 20_000))
    result = RunResult(status="ok", message="", isolation="process", seconds=round(seconds, 2),
                       stdout=_tail(job.out_dir / "stdout.txt", limit), stderr=_tail(job.out_dir / "stderr.txt", limit))
    return classify(result, job, proc.returncode, timed_out, wall)


def _wait(proc: subprocess.Popen, wall: float) -> bool:
    """Wait for the child until the wall deadline; then end it and everything it started."""
    from grader.sandbox.runner import kill_descendants

    try:
        proc.wait(timeout=wall)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=GRACE_SECONDS)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    kill_descendants(proc.pid)  # kernels run in their own session; orphans were re-parented to the runner
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    return timed_out


def child_env(job: Job) -> dict[str, str]:
    """A scrubbed environment: nothing of the grader's own (tokens, paths) leaks to student code."""
    home = job.out_dir / "home"
    home.mkdir(exist_ok=True)
    bindir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "OMP_NUM_THREADS": os.environ.get("GRADER_THREADS", str(max(1, os.cpu_count() or 1))),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
    }
    # matplotlib's font cache takes seconds to build: keep one across runs instead of one per HOME.
    env["MPLCONFIGDIR"] = os.environ.get("MPLCONFIGDIR") or str(_shared_dir("matplotlib"))
    env.update(job.env)
    return env


def _shared_dir(name: str) -> Path:
    from grader.paths import cache_dir

    path = cache_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def classify(result: RunResult, job: Job, returncode: int, timed_out: bool, wall: float) -> RunResult:
    """Give the run one status and a message a student understands."""
    try:
        result.execution = Execution.model_validate_json((job.out_dir / "execution.json").read_bytes())
    except FileNotFoundError:
        pass
    except ValidationError as exc:
        return _set(result, "invalid-output", f"the run's execution record is malformed: {exc.errors()[0]['msg']}")
    try:
        doc, result.arrays = observations.load(job.out_dir)
        result.records = doc.records
    except FileNotFoundError:
        pass
    except observations.InvalidOutput as exc:
        return _set(result, "invalid-output", f"the probes' output broke the rules: {exc}")
    ex = result.execution
    if ex is not None and ex.problem:
        return _set(result, "rejected", ex.problem)
    if timed_out:
        return _set(result, "timeout-wall", f"the run took longer than the {wall:g}s limit and was stopped"
                    + (f"; {len(result.records)} check(s) had been observed" if result.records else ""))
    if ex is not None and ex.runner_error:
        return _set(result, "sandbox-error", "the grader's runner failed: " + ex.runner_error.strip().splitlines()[-1])
    if ex is not None and ex.kernel_died:
        where = f"cell {ex.died_in_cell + 1}" if isinstance(ex.died_in_cell, int) else "the checks"
        return _set(result, "kernel-died", f"the notebook's kernel died while running {where} "
                    "(it exited, crashed or ran out of memory)")
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        return _set(result, "crash", f"the run was killed by signal {name}")
    if not result.records:
        detail = (ex.probe_failure or "") if ex else result.stderr[-500:]
        return _set(result, "no-result", "the run ended without any observation" + (f": {detail.strip()[-300:]}" if detail else ""))
    if ex is not None and any(c.status == "timeout" for c in ex.cells):
        slow = [c.index + 1 for c in ex.cells if c.status == "timeout"]
        return _set(result, "cell-timeout", f"cell(s) {', '.join(map(str, slow))} ran longer than "
                    f"{job.limits['cell_seconds']:g}s and were interrupted; the rest was graded")
    return _set(result, "ok", "ran to completion")


def _set(result: RunResult, status: str, message: str) -> RunResult:
    result.status, result.message = status, message
    return result


def _tail(path: Path, limit: int) -> str:
    """At most ``limit`` characters of a possibly huge file: its start and its end."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if size <= limit:
                return f.read().decode("utf-8", "replace")
            head = f.read(limit // 2).decode("utf-8", "replace")
            f.seek(size - limit // 2)
            return head + f"\n[... {size - limit:,} bytes cut ...]\n" + f.read().decode("utf-8", "replace")
    except OSError:
        return ""
