"""Ray: each share of a batch (``shards.py``; one submission by default) as one Ray task.

``--address`` joins a running cluster (``auto``, ``ray://head:10001``); without it a local one is
started for the batch. A task asks Ray for one CPU and, where the cluster has GPUs, for 1/K of one
(``--per-gpu K``): Ray packs K tasks on each GPU and tells each which one it has
(``CUDA_VISIBLE_DEVICES``), and the task grades on it (``--gpus all``). A task runs
``python -m grader.executors.task SHARD/task.json`` on its worker, so the workers must see this
installation and the batch folder at the same paths, as on one machine or a shared file system.
The grading process dies with its worker (a killed worker leaves nothing grading behind), and a
task is never retried by Ray: the host regrades what a dead task left, once (``shards.py``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from grader.errors import GraderError
from grader.executors.shards import Task, TaskState


def _run_task(task_file: str) -> int:
    """On a Ray worker: grade one share, in a child that dies with this worker."""
    from grader.sandbox import mounts

    return subprocess.run([sys.executable, "-m", "grader.executors.task", task_file],
                          preexec_fn=mounts.die_with_parent).returncode


class RayTask:
    def __init__(self, ref: Any, task_file: Path) -> None:
        self.ref = ref
        self.name = f"Ray task {ref.task_id().hex()[:16]} ({task_file.parent})"
        self.state: TaskState = "running"  # Ray does not say when a queued task starts: counted from the start

    def cancel(self) -> None:
        import ray

        ray.cancel(self.ref, force=True)


class RayBackend:
    def __init__(self, address: str | None, per_gpu: int) -> None:
        try:
            import ray
        except ImportError:
            raise GraderError("--executor ray needs the ray package", where="--executor ray",
                              hint="pip install 'grader[ray]' (or pip install ray)") from None
        self._ray = ray
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     ignore_reinit_error=True)
        except Exception as exc:  # noqa: BLE001 - Ray's own reason, said plainly
            raise GraderError(f"cannot reach the Ray cluster: {exc}", where=f"--address {address or '(local)'}",
                              hint="start it with `ray start --head` and pass its address, or leave out --address "
                                   "for a local one") from None
        self.use_gpus = ray.cluster_resources().get("GPU", 0) > 0
        options: dict[str, Any] = {"num_cpus": 1, "max_retries": 0}
        if self.use_gpus:
            options["num_gpus"] = 1 / per_gpu
        self.options = options
        self._remote = ray.remote(**options)(_run_task)

    def device_flags(self) -> list[str]:
        """A task grades on the GPU (the share of one) Ray gave it."""
        return ["--gpus", "all"] if self.use_gpus else []

    def submit(self, task_files: list[Path]) -> list[Task]:
        return [RayTask(self._remote.remote(str(f)), f) for f in task_files]

    def refresh(self, tasks: list[Task]) -> None:
        live = {t.ref: t for t in tasks if isinstance(t, RayTask) and t.state != "gone"}
        if not live:
            return
        ready, _ = self._ray.wait(list(live), num_returns=len(live), timeout=0)
        for ref in ready:
            live[ref].state = "gone"
