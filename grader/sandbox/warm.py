"""A warm start for namespace runs: torch imported once, a fresh sandbox forked for every run.

Every run used to start an interpreter that imported torch (and, for a notebook, a kernel that
imported it again): about 2 s of CPU each, most of what a small run costs. Here a *parent*, started
once per grader process (``Parent.COMMAND``), imports torch, ipykernel and the runner's code, then
waits. It never runs a job itself: it reads no artifact and no student file. For each run the host
sends it the path of the supervisor's spec (``namespace.spec``); it forks a *launcher*, which does
what ``unshare`` does for a cold run:

1. a session of its own (the host ends a run by killing that process group, as it kills
   ``unshare``'s), stdout and stderr to the run's ``supervisor.log``;
2. new mount, PID, network, IPC and UTS namespaces, and without root a user namespace with the
   caller mapped to root (``--map-root-user``);
3. a fork that is PID 1 of the new PID namespace and dies with the launcher (``--kill-child``),
   which runs the very ``supervisor.run`` of a cold run.

The one difference is how the runner starts: in place of ``execve`` of a fresh interpreter, the
supervisor's forked child (inside the tree, rlimits lowered, bounding set dropped, the run's uid,
``no_new_privs``) clears its capabilities, takes the runner's environment and calls the runner in
the copy of the parent it already is (``become_runner``). So every run is still a fresh sandbox
used once (its own namespaces, tmpfs, leased uid, deadline and PID 1), and none can leave anything
to the next, which is forked from the untouched parent. A notebook's kernel is forked from that
runner in turn (``warm_kernel.py``).

The parent speaks one line per event on stdout: ``started PID`` or ``failed REASON`` answers each
request, ``ended PID CODE`` follows when a launcher exits. Each launcher's lifeline (the
supervisor's, as in a cold run) is a pipe whose other end the parent holds: when the grader dies,
the parent reads the end of its stdin and exits, and every run it launched ends with it. When no
parent can start (or one dies), runs start cold (``namespace.command``); a parent that dies before
it ever launched a run is not tried again in this process.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

REPLY_SECONDS = 120.0  # the first request waits for the parent's imports, on a machine that may be busy
POLL_SECONDS = 0.02
in_place = False  # set in a runner forked from the parent: its kernels may be forked from it too
# What the parent imports once, for every run: torch above all, and what measuring uses of it.
WARM_IMPORTS = ("torch", "torch.utils.data", "torch.utils._python_dispatch", "grader.artifacts", "grader.train",
                "grader.sandbox.measure", "grader.sandbox.runner", "grader.sandbox.supervisor",
                "grader.sandbox.notebook", "grader.sandbox.probe_side", "ipykernel.kernelapp", "nbclient")
PARENT_ENV = {  # what a cold runner's interpreter reads at start-up, fixed here for the forks alike
    "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",  # no thread pools to fork
}


# ---- the host's side ----------------------------------------------------------------------------


class Launched:
    """One warm run's launcher, standing where a cold run's ``unshare`` process stands in
    ``sandbox._supervised``: ``pid`` leads its own process group; ``wait`` and ``returncode`` as
    ``subprocess.Popen``'s (-1 when the parent died first)."""

    def __init__(self, parent: Parent, pid: int) -> None:
        self.parent, self.pid = parent, pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self.parent.wait_for(self.pid, timeout)
        return self.returncode


class Parent:
    """The host's handle on one warm parent: requests go in one at a time; a reader thread sorts
    the parent's lines into replies and ended launchers."""

    # Not `-m grader.sandbox.warm`: that would run this file as __main__, a second copy of the module
    # beside the one the runner's code imports (and reads ``in_place`` from).
    COMMAND = [sys.executable, "-c", "import sys; from grader.sandbox import warm; sys.exit(warm.main())"]

    def __init__(self) -> None:
        from grader import paths
        from grader.sandbox import namespace

        log = paths.cache_dir() / "warm-parent.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as errors:
            self.proc = subprocess.Popen(
                self.COMMAND, env={**namespace.supervisor_env(), **PARENT_ENV},
                cwd="/", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, start_new_session=True)
        self.launched_any = False
        self.dead = False
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._ended: dict[int, int] = {}
        self._changed = threading.Condition()
        self._requests = threading.Lock()
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True, name="warm-parent").start()

    def launch(self, spec_path: Path, log_path: Path) -> Launched | None:
        """Start one run from ``spec_path``; None when this parent cannot (the caller starts it cold)."""
        with self._requests:
            if self.dead:
                return None
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"spec": str(spec_path), "log": str(log_path)}).encode() + b"\n")
                self.proc.stdin.flush()
                reply = self._replies.get(timeout=REPLY_SECONDS)
            except (OSError, queue.Empty):
                self.close()
                return None
        if reply is None or not reply.startswith("started "):
            return None
        self.launched_any = True
        return Launched(self, int(reply.split()[1]))

    def wait_for(self, pid: int, timeout: float | None) -> int:
        with self._changed:
            if not self._changed.wait_for(lambda: pid in self._ended or self.dead, timeout):
                raise subprocess.TimeoutExpired(f"warm run {pid}", timeout or 0.0)
            return self._ended.pop(pid, -1)

    def close(self) -> None:
        """End the parent; the runs it launched end with it (their lifelines close)."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self._gone()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").strip()
            if line.startswith("ended "):
                _, pid, code = line.split()
                with self._changed:
                    self._ended[int(pid)] = int(code)
                    self._changed.notify_all()
            else:
                self._replies.put(line)
        self._gone()

    def _gone(self) -> None:
        with self._changed:
            self.dead = True
            self._changed.notify_all()
        self._replies.put(None)


_parent: Parent | None = None
_broken = False  # a parent died before launching anything: this machine cannot start warm
_lock = threading.Lock()


def launch(spec_path: Path, log_path: Path) -> Launched | None:
    """Start the run of ``spec_path`` from this process's warm parent (started on first use), its
    supervisor writing to ``log_path``; None when it must start cold."""
    global _parent, _broken
    with _lock:
        if _broken:
            return None
        if _parent is None or _parent.dead:
            try:
                _parent = Parent()
            except OSError:
                _broken = True
                return None
        parent = _parent
    run = parent.launch(spec_path, log_path)
    if run is None and parent.dead and not parent.launched_any:
        _broken = True
    return run


def parent_pid() -> int | None:
    """The process id of this process's warm parent while one runs, else None. Every namespace
    run is forked from it, so it is the parent, not the caller, whose CPU affinity a run inherits."""
    parent = _parent
    return parent.proc.pid if parent is not None and not parent.dead else None


@atexit.register
def _close() -> None:
    if _parent is not None and not _parent.dead:
        _parent.close()


# ---- the parent's side --------------------------------------------------------------------------


def main() -> int:
    """The parent: import what every run needs, then launch one run per request until stdin ends."""
    for name in WARM_IMPORTS:
        importlib.import_module(name)
    lifelines: dict[int, int] = {}  # launcher pid -> the write end of its run's lifeline
    pending = b""
    while True:
        for pid, code in _reaped():
            os.close(lifelines.pop(pid))
            _say(f"ended {pid} {code}")
        if not select.select([0], [], [], POLL_SECONDS)[0]:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            break  # the grader is gone: so are the runs, whose lifelines close as this process exits
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                pid, lifeline = _fork_launcher(json.loads(line), lifelines)
            except Exception as exc:  # noqa: BLE001 - the host starts this run cold
                _say(f"failed {type(exc).__name__}: {exc}")
                continue
            lifelines[pid] = lifeline
            _say(f"started {pid}")
    for pid in lifelines:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return 0


def _say(line: str) -> None:
    os.write(1, (line.replace("\n", " ") + "\n").encode())


def _reaped() -> list[tuple[int, int]]:
    ended = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, os.waitstatus_to_exitcode(status)))


def _fork_launcher(request: dict[str, Any], lifelines: dict[int, int]) -> tuple[int, int]:
    spec = json.loads(Path(request["spec"]).read_text())
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    lifeline_read, lifeline_write = os.pipe()
    uid, gid = os.getuid(), os.getgid()
    pid = os.fork()
    if pid == 0:
        code = 127
        try:
            code = _launcher(spec, log, lifeline_read, uid, gid)
        except BaseException:  # noqa: BLE001 - told in the run's log; the host reports a failed setup
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(log)
    os.close(lifeline_read)
    return pid, lifeline_write


LIFELINE_FD = 3  # where the launcher keeps its run's lifeline; the supervisor watches it there


def _launcher(spec: dict[str, Any], log: int, lifeline: int, uid: int, gid: int) -> int:
    """In the forked launcher: become what ``unshare`` would have started, and wait for PID 1."""
    from grader.sandbox import mounts, supervisor

    os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(lifeline, LIFELINE_FD)
    os.closerange(LIFELINE_FD + 1, 65536)  # the parent's pipes and the other runs' lifelines stay there
    os.setsid()
    flags = mounts.CLONE_NEWNS | mounts.CLONE_NEWPID | mounts.CLONE_NEWNET | mounts.CLONE_NEWIPC | mounts.CLONE_NEWUTS
    mounts.unshare(flags | (mounts.CLONE_NEWUSER if spec["rootless"] else 0))
    if spec["rootless"]:
        mounts.map_root_to(uid, gid)
    first = os.fork()
    if first == 0:  # PID 1 of the new PID namespace
        code = 127
        try:
            mounts.die_with_parent()
            code = supervisor.run({**spec, "lifeline_fd": LIFELINE_FD}, start=_run_in_place)
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(LIFELINE_FD)
    _, status = os.waitpid(first, 0)
    return os.waitstatus_to_exitcode(status)


def _run_in_place(spec: dict[str, Any]) -> None:
    """The supervisor's ``start`` for a warm run: the runner's main, in this forked interpreter
    (``spec["argv"]``, a cold run's command, ends with the runner's job)."""
    from grader.sandbox import runner

    global in_place
    become_runner(spec)
    in_place = True
    os._exit(runner.main([spec["argv"][-1]], own_process=True))


def become_runner(spec: dict[str, Any]) -> None:
    """What ``execve`` would have done for a cold runner that this forked process must do itself:
    no capability left (rootless, the namespace's root kept them), the runner's environment and
    command line, and torch's math threads as a cold start would have read them from
    ``OMP_NUM_THREADS`` (torch was imported here with one)."""
    from grader.sandbox import mounts

    mounts.clear_capabilities()
    os.environ.clear()
    os.environ.update(spec["env"])
    sys.argv = [spec["argv"][-2], spec["argv"][-1]]  # as `python -m grader.sandbox.runner JOB` has it
    import torch

    torch.set_num_threads(max(1, int(spec["env"].get("OMP_NUM_THREADS", "1"))))


if __name__ == "__main__":
    sys.exit(main())
