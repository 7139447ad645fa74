"""Slurm: the shares of a batch (``shards.py``) as one array job, submitted with submitit.

submitit writes the batch script and submits the array (``sbatch``), each element running
``python -m grader.executors.task SHARD/task.json`` with this very interpreter, so the cluster's
nodes must see this checkout or installation and the batch folder at the same paths (a shared
file system, as every Slurm cluster has). Its logs go to ``OUT/slurm/``. The tasks' states come
from one ``squeue`` call per poll for the whole array (submitit's own watcher reads ``sacct``,
which needs the accounting database many small clusters do not run). ``scancel`` ends them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.errors import GraderError
from grader.executors.shards import Task, TaskState

QUEUED = {"PENDING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED"}
RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}
SQUEUE_SECONDS = 60


@dataclass
class SlurmOptions:
    """What each task asks Slurm for (``grade --executor slurm`` flags, or a ``--cluster-config`` file)."""

    partition: str | None = None
    account: str | None = None
    time_minutes: int = 60
    gpus_per_task: int = 0
    cpus_per_task: int = 2
    parallelism: int = 64  # array elements running at once
    setup: list[str] = field(default_factory=list)  # shell lines before each task (`module load ...`)
    per_gpu: int = 1  # submissions sharing one of a task's GPUs at once


class SlurmTask:
    def __init__(self, job: Any) -> None:
        self.job = job
        self.job_id = str(job.job_id)
        self.name = f"Slurm job {self.job_id} (log {job.paths.stderr})"
        self.state: TaskState = "queued"

    def cancel(self) -> None:
        subprocess.run(["scancel", self.job_id], capture_output=True, timeout=SQUEUE_SECONDS)


class SlurmBackend:
    def __init__(self, options: SlurmOptions, logs: Path) -> None:
        try:
            import submitit
        except ImportError:
            raise GraderError("--executor slurm needs the submitit package", where="--executor slurm",
                              hint="pip install 'grader[slurm]' (or pip install submitit)") from None
        for command in ("sbatch", "squeue", "scancel"):
            if shutil.which(command) is None:
                raise GraderError(f"`{command}` is not on this machine's PATH", where="--executor slurm",
                                  hint="run the grader on the cluster's login node, where Slurm's commands are")
        self._submitit = submitit
        self.executor = submitit.SlurmExecutor(folder=logs / "%j", max_num_timeout=0)
        parameters: dict[str, Any] = {"job_name": "grader", "time": options.time_minutes,
                                      "cpus_per_task": options.cpus_per_task, "array_parallelism": options.parallelism,
                                      "setup": options.setup}
        if options.partition:
            parameters["partition"] = options.partition
        if options.account:
            parameters["account"] = options.account
        if options.gpus_per_task:
            parameters["gpus_per_node"] = options.gpus_per_task
        self.executor.update_parameters(**parameters)
        self.options = options

    def device_flags(self) -> list[str]:
        """A task grades on the GPUs Slurm gave it, ``per_gpu`` submissions at once on each."""
        return ["--gpus", "all", "--per-gpu", str(self.options.per_gpu)] if self.options.gpus_per_task else []

    def submit(self, task_files: list[Path]) -> list[Task]:
        if not task_files:
            return []
        command = self._submitit.helpers.CommandFunction
        try:
            with self.executor.batch():
                jobs = [self.executor.submit(command([sys.executable, "-m", "grader.executors.task", str(f)], verbose=False))
                        for f in task_files]
        except Exception as exc:  # noqa: BLE001 - sbatch's refusal, in its own words
            raise GraderError(f"Slurm did not take the job: {exc}", where="--executor slurm",
                              hint="check --partition, --account and --time against `sinfo` and your allocation") from None
        return [SlurmTask(job) for job in jobs]

    def refresh(self, tasks: list[Task]) -> None:
        arrays = sorted({t.job_id.split("_")[0] for t in tasks if isinstance(t, SlurmTask)})
        if not arrays:
            return
        try:
            done = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(arrays)], capture_output=True,
                                  text=True, timeout=SQUEUE_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            return  # the controller is busy: ask again at the next poll, never take a task for gone
        if done.returncode != 0 and "Invalid job id" not in done.stderr:
            return
        states = dict(line.split(None, 1) for line in done.stdout.splitlines() if " " in line)
        for task in tasks:
            assert isinstance(task, SlurmTask)
            state = states.get(task.job_id, "").strip()
            task.state = "queued" if state in QUEUED else "running" if state in RUNNING else "gone"
