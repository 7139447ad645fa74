"""The measure stage's runner (form ``measure``): its records come back at every isolation level,
and where it owns its process it ends without the interpreter's teardown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader import measuring, observations, sandbox
from grader.sandbox import namespace, runner
from grader.submission import Entry

LIMITS = {"wall_seconds": 120, "cell_seconds": 60, "memory_mb": 4096, "disk_mb": 64, "output_mb": 4,
          "processes": 64, "open_files": 256, "output_chars": 20_000, "threads": 1}
# No kind of this name exists: the runner reports the item as a probe-error and goes on, which is
# all these tests need from it (what a real kind measures is tests/test_measuring.py's business).
UNKNOWN = {"check": "ghost", "kind": "no_such_kind", "spec": {}, "seed": 7}


def measure_inputs(folder: Path) -> Path:
    """What ``measuring.measure`` writes for the sandbox: the plan and the observations it read."""
    folder.mkdir(parents=True)
    observations.write(folder, [{"check": "ghost", "status": "observed", "data": {}}], observations.ArrayWriter())
    (folder / measuring.JOB_NAME).write_text(json.dumps({"items": [UNKNOWN]}))
    return folder


def measure_job(tmp_path: Path, isolation: sandbox.Isolation) -> sandbox.Job:
    return sandbox.Job(entry=Entry(form="measure", root=measure_inputs(tmp_path / "in")), plan={}, limits=LIMITS,
                       out_dir=tmp_path / "out", isolation=isolation)


def the_ghosts_record(run: sandbox.RunResult) -> observations.ProbeRecord:
    assert [r.check for r in run.records] == ["ghost"], (run.status, run.message, run.stderr)
    record = run.records[0]
    assert record.status == "probe-error" and record.error is not None
    assert record.error.type == "KeyError" and record.error.during == "measuring check 'ghost'"
    return record


@pytest.mark.slow
def test_in_its_own_process_the_runner_writes_its_records_and_skips_the_teardown(tmp_path):
    """An exit handler registered at start-up (sitecustomize) would write a file during the
    interpreter's teardown: that it never does shows the runner ended at once, after its outputs."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "teardown-ran"
    (hooks / "sitecustomize.py").write_text(f"import atexit\natexit.register(lambda: open({str(marker)!r}, 'w').close())\n")
    job = measure_job(tmp_path, "process")
    job.out_dir.mkdir()
    job_path = tmp_path / "job.json"
    job_path.write_text(json.dumps(sandbox._runner_job(job, str(job.entry.root), str(job.out_dir), str(job_path))))
    root = Path(runner.__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "grader.sandbox.runner", str(job_path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), str(root)])}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    the_ghosts_record(sandbox.read_back(job.out_dir, sandbox.Ending(exit_code=0), LIMITS))


def test_called_in_the_graders_own_process_the_runner_returns(tmp_path):
    """The ``none`` level runs the runner in the grader's process: ending that process is not its call."""
    run = sandbox.run(measure_job(tmp_path, "none"))
    the_ghosts_record(run)


@pytest.mark.slow
def test_at_the_process_level_the_records_come_back(tmp_path):
    run = sandbox.run(measure_job(tmp_path, "process"))
    the_ghosts_record(run)
    assert run.status != "sandbox-error", run.message


@pytest.mark.slow
@pytest.mark.skipif(namespace.unavailable_reason() is not None, reason="needs the namespace sandbox")
def test_at_the_namespace_level_the_records_come_back(tmp_path):
    run = sandbox.run(measure_job(tmp_path, "namespace"))
    the_ghosts_record(run)
    assert run.status != "sandbox-error", run.message


def test_the_supervisor_starts_without_the_sandbox_packages_models(tmp_path):
    """PID 1 of every namespace run imports neither pydantic nor numpy (the package's ``__init__``):
    started as ``namespace.command`` starts it, with a spec that does not exist, it gets as far as
    reading it, having imported its own modules."""
    argv = namespace.command(tmp_path / "no-spec.json")[len(namespace.UNSHARE):]
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True, timeout=60,
                          env=namespace.supervisor_env(), cwd="/")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert {"grader.sandbox.supervisor", "grader.sandbox.mounts", "grader.sandbox.cpu_use"} <= imported, done.stderr
    assert not {"pydantic", "numpy", "grader.observations"} & imported
    assert "no-spec.json" in done.stderr and "FileNotFoundError" in done.stderr
