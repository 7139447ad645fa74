"""``grade --executor ray`` on a local Ray cluster started for this module.

A batch is graded one submission per Ray task while the worker of one task is killed mid-way: the
submission is regraded once, the summary is the one a local run writes, and a rerun grades
nothing. A cluster with (fake) GPUs gets each task's request as 1/K of one. Skips, saying why,
where Ray is not installed.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_cli
from tests.executors.cluster_batches import normalized_summary, started_task, write_batch

TINY = FIXTURES / "tiny" / "rubric.yaml"

try:
    import ray
except ImportError:
    ray = None

pytestmark = [pytest.mark.slow, pytest.mark.skipif(ray is None, reason="needs ray (pip install 'grader[ray]')")]


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of two CPUs and two fake GPUs, started once for the module."""
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def kill_the_worker_grading(out: Path, name: str, killed: list[int]) -> None:
    """SIGKILL the Ray worker (the task's parent) grading ``name`` once its task has started."""
    if (task := started_task(out, name)) is not None:
        worker = int(Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(worker, signal.SIGKILL)
        killed.append(worker)


def test_a_batch_on_ray_survives_a_killed_worker_and_matches_a_local_run(local_ray, tmp_path, monkeypatch):
    from grader.executors import ray_cluster

    monkeypatch.setattr(ray_cluster.RayBackend, "device_flags", lambda self: [])  # the GPUs are fake: grade on the CPU
    batch = write_batch(tmp_path / "batch", 3)
    out = tmp_path / "on-ray"
    killed: list[int] = []
    killer = threading.Thread(target=kill_the_worker_grading, args=(out, "s1.py", killed), daemon=True)
    killer.start()
    done = run_cli("grade", str(TINY), str(batch), "--out", str(out), "--executor", "ray", "--address", local_ray,
                   "--per-gpu", "2", "--quiet")
    killer.join(timeout=5)
    assert done.returncode == 0, done.stdout + done.stderr
    assert killed, "no worker was killed: the test did not test anything"
    assert "Ray task" in done.stderr and "not graded" in done.stderr
    assert len(list((out / "shards").glob("*-again"))) == 1

    local = run_cli("grade", str(TINY), str(batch), "--out", str(tmp_path / "local"), "--quiet")
    assert local.returncode == 0, local.stderr
    assert normalized_summary(out) == normalized_summary(tmp_path / "local")

    before = sorted(p.name for p in (out / "shards").iterdir())
    again = run_cli("grade", str(TINY), str(batch), "--out", str(out), "--executor", "ray", "--address", local_ray,
                    "--quiet")
    assert again.returncode == 0 and sorted(p.name for p in (out / "shards").iterdir()) == before


def test_each_task_asks_for_a_kth_of_a_gpu_where_the_cluster_has_gpus(local_ray):
    from grader.executors.ray_cluster import RayBackend

    backend = RayBackend(address=local_ray, per_gpu=4)
    assert backend.use_gpus and backend.options == {"num_cpus": 1, "max_retries": 0, "num_gpus": 0.25}
    assert backend.device_flags() == ["--gpus", "all"]
