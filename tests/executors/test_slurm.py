"""``grade --executor slurm`` on a real single-node Slurm cluster, started here for this module.

The fixture starts a private ``munged`` (its own socket) and Debian's ``slurmctld`` and ``slurmd``
on free ports, with four fake GPUs through ``gres`` (files standing in for devices). A batch is
graded in array tasks while one task is killed mid-way: its share is regraded once, the summary is
the one a local run writes, and running the command again grades nothing. Skips, saying why, where
Slurm, munge, submitit or root (to start the daemons) is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, run_cli
from tests.executors.cluster_batches import normalized_summary, started_task, write_batch

TINY = FIXTURES / "tiny" / "rubric.yaml"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root, to start slurmctld and slurmd"
    missing = [d for d in DAEMONS if shutil.which(d) is None and not Path("/usr/sbin", d).exists()]
    if missing:
        return f"needs Slurm and munge (apt-get install slurm-wlm munge): {', '.join(missing)} not found"
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "needs submitit (pip install 'grader[slurm]')"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(why := _unavailable()), reason=why or "")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _daemon(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


@pytest.fixture(scope="module")
def slurm_cluster():
    """SLURM_CONF of a running one-node cluster, torn down afterwards."""
    home = Path(tempfile.mkdtemp(prefix="grader-slurm-"))
    home.chmod(0o755)  # munged runs as the munge user
    node = socket.gethostname()
    for name in ("state", "spool", "log", "munge", "gpus"):
        (home / name).mkdir()
    shutil.chown(home / "munge", "munge", "munge")
    home.joinpath("munge").chmod(0o755)  # munged wants its socket's folder searchable by all
    for i in range(4):
        (home / "gpus" / f"gpu{i}").touch()
    munge_socket = home / "munge" / "socket"
    conf = home / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=grader-test", f"SlurmctldHost={node}", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", f"AuthInfo=socket={munge_socket}", f"StateSaveLocation={home}/state",
        f"SlurmdSpoolDir={home}/spool", f"SlurmctldPidFile={home}/slurmctld.pid", f"SlurmdPidFile={home}/slurmd.pid",
        f"SlurmctldLogFile={home}/log/slurmctld.log", f"SlurmdLogFile={home}/log/slurmd.log",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}", "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none", "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core", "MpiDefault=none", "ReturnToService=2", "GresTypes=gpu",
        f"NodeName={node} CPUs={os.cpu_count()} RealMemory=4000 Gres=gpu:4 State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))
    (home / "gres.conf").write_text(f"NodeName={node} Name=gpu File={home}/gpus/gpu[0-3]\n")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started = []
    try:
        subprocess.run(["runuser", "-u", "munge", "--", _daemon("munged"), f"--socket={munge_socket}",
                        f"--pid-file={home}/munge/pid", f"--log-file={home}/munge/log",
                        f"--seed-file={home}/munge/seed"], check=True, capture_output=True, timeout=30)
        started.append(home / "munge" / "pid")
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([_daemon(daemon), "-f", str(conf)], env=env, check=True, capture_output=True, timeout=30)
            started.append(home / f"{daemon}.pid")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.5)
        else:
            logs = (home / "log" / "slurmctld.log").read_text()[-2000:]
            pytest.fail(f"the test cluster's node did not come up (sinfo says {state!r}):\n{logs}")
        yield {"SLURM_CONF": str(conf)}
    finally:
        for pid_file in reversed(started):
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        time.sleep(1)
        shutil.rmtree(home, ignore_errors=True)


def kill_the_task_grading(out: Path, name: str, killed: list[int]) -> None:
    """SIGKILL the task grading ``name`` once it has started, as a lost node would end it."""
    if (pid := started_task(out, name)) is not None:
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)


def test_a_batch_on_slurm_survives_a_killed_task_and_matches_a_local_run(slurm_cluster, tmp_path, monkeypatch):
    for key, value in slurm_cluster.items():
        monkeypatch.setenv(key, value)
    batch = write_batch(tmp_path / "batch", 4)
    out = tmp_path / "on-slurm"
    killed: list[int] = []
    killer = threading.Thread(target=kill_the_task_grading, args=(out, "s1.py", killed), daemon=True)
    killer.start()
    done = run_cli("grade", str(TINY), str(batch), "--out", str(out), "--executor", "slurm", "--per-task", "2",
                   "--cpus-per-task", "1", "--time", "10", "--quiet")
    killer.join(timeout=5)
    assert done.returncode == 0, done.stdout + done.stderr
    assert killed, "no task was killed: the test did not test anything"
    assert "ended with" in done.stderr and "not graded" in done.stderr  # the dead task is named
    assert list((out / "shards").glob("*-again")), "the killed task's share was not given to a new task"

    local = run_cli("grade", str(TINY), str(batch), "--out", str(tmp_path / "local"), "--quiet")
    assert local.returncode == 0, local.stderr
    assert normalized_summary(out) == normalized_summary(tmp_path / "local")

    shards_before = sorted(p.name for p in (out / "shards").iterdir())
    again = run_cli("grade", str(TINY), str(batch), "--out", str(out), "--executor", "slurm", "--quiet")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (out / "shards").iterdir()) == shards_before, "a finished submission was regraded"


def test_slurm_is_asked_for_what_the_flags_say(slurm_cluster, tmp_path, monkeypatch):
    """The batch script carries the partition, time, cores and GPUs. The test node's GPUs are files,
    so its task finds no CUDA device: the submission is named as not graded, with the task's log,
    and the log says why. A partition Slurm does not have is refused at once, in Slurm's words."""
    for key, value in slurm_cluster.items():
        monkeypatch.setenv(key, value)
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "s0.py").write_text("answer = 42\n")
    out = tmp_path / "out"
    done = run_cli("grade", str(TINY), str(batch), "--out", str(out), "--executor", "slurm", "--partition", "debug",
                   "--time", "7", "--cpus-per-task", "1", "--gpus-per-task", "1", "--quiet")
    assert done.returncode == 1 and "1 submission(s) were not graded" in done.stderr, done.stdout + done.stderr
    script = next((out / "slurm").rglob("*_submission.sh")).read_text()
    for line in ("--partition=debug", "--time=7", "--cpus-per-task=1", "--gpus-per-node=1"):
        assert f"#SBATCH {line}" in script, script
    log = Path(done.stderr.split("(log ")[1].split(")")[0])
    assert "no CUDA device is visible" in log.read_text()

    refused = run_cli("grade", str(TINY), str(batch), "--out", str(tmp_path / "refused"), "--executor", "slurm",
                      "--partition", "no-such-partition", "--quiet")
    assert refused.returncode != 0 and "Slurm did not take the job" in refused.stderr, refused.stderr
    assert "invalid partition" in refused.stderr.lower() and "Traceback" not in refused.stderr


def test_ctrl_c_cancels_the_array_and_says_how_to_resume(slurm_cluster, tmp_path):
    """SIGINT to the host while its tasks run: every task is cancelled (nothing of the batch is left
    in the queue), the command exits 130 and says to run it again."""
    import sys

    from tests.conftest import PROJECT

    batch = tmp_path / "batch"
    batch.mkdir()
    for i in range(3):
        (batch / f"s{i}.py").write_text("import time\ntime.sleep(30)\nanswer = 42\n")
    out = tmp_path / "out"
    env = {**os.environ, **slurm_cluster}
    proc = subprocess.Popen([sys.executable, "-m", "grader", "grade", str(TINY), str(batch), "--out", str(out),
                             "--executor", "slurm", "--per-task", "1", "--cpus-per-task", "1", "--quiet"],
                            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list((out / "shards").glob("*/started")):
            time.sleep(0.2)
        assert list((out / "shards").glob("*/started")), "no task started"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "run the same command again" in err and "Traceback" not in err, err
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "-h", "-o", "%i %j"], env=env, capture_output=True, text=True).stdout
        if "grader" not in queued:
            break
        time.sleep(0.5)
    assert "grader" not in queued, queued
