"""The trusted supervisor: PID 1 of a namespace sandbox (started by ``namespace.command`` with a SPEC).

``unshare`` starts it as root in new PID, mount, network, IPC and UTS namespaces (without root on
the host: as root of a new user namespace, ``namespace.UNSHARE_ROOTLESS``). It then

1. builds the sandbox's file system: a size-capped tmpfs as the new root, read-only views of the
   interpreter, the installed packages, the grader package and the data cache (each at its host
   path, so shebangs and paths keep working; the directories leading to them are created in the
   tmpfs, so an interpreter under a private home directory is reachable without loosening any
   permission on the host), a fresh /proc, a few device nodes, a copy of the submission;
2. forks the runner, which chroots into that tree, lowers its rlimits, drops every capability,
   sets ``no_new_privs`` and becomes the run's unprivileged uid before executing Python (rootless:
   keeps the namespace's root uid, left with no capability by the execve). A warm measure run
   (``warm.py``) is started by a forked launcher in place of ``unshare`` and its runner is not
   executed but called in the fork (``run``'s ``start``);
3. waits, enforcing the wall deadline, and reaps every orphan (a PID 1's duty); at the deadline
   it first measures the CPU time the sandbox's processes used and how long they waited for a
   CPU (``cpu_use``), so the host can tell a stuck submission from a busy machine;
4. kills everything left in the namespace, copies the runner's outputs out through file
   descriptors that never follow the student's symlinks, and writes ``supervisor.json``: the only
   account of the run the host trusts.

When the grader dies, even by SIGKILL, the lifeline pipe it holds closes; the supervisor sees the
end of file and exits, and the kernel kills every process of the PID namespace with it.

It starts without ``grader.sandbox``'s ``__init__`` (``namespace.SUPERVISOR_START``), so it imports
only the standard library and its siblings that do too (``cpu_use``, ``mounts``, ``limits``).
"""

from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import stat
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from grader.sandbox import cpu_use, mounts
from grader.sandbox import limits as run_limits

POLL_SECONDS = 0.05
TERM_GRACE_SECONDS = 2.0
LOG_KEEP_BYTES = 1 * 2**20  # of each of stdout and stderr: the first and the last half MB
SANDBOX_DIR = "/sandbox"  # inside: job.json (root's), out/ (the runner's), log/ (root's)


def main(argv: list[str]) -> int:
    return run(json.loads(Path(argv[0]).read_text()))


def exec_runner(spec: dict[str, Any]) -> None:
    """How a cold run's runner starts: a fresh interpreter, ``spec["argv"]``."""
    os.execve(spec["argv"][0], spec["argv"], spec["env"])


def run(spec: dict[str, Any], start: Callable[[dict[str, Any]], None] = exec_runner) -> int:
    """Build the sandbox, run the runner in it, report. ``start`` runs the runner once the forked
    child is inside and unprivileged; it never returns (``warm.py`` passes one that runs it in the
    interpreter it forked from)."""
    report: dict[str, Any] = {"exit_code": None, "signal": None, "timed_out": False, "lost_grader": False,
                              "setup_error": None, "too_big": None, "cpu_seconds": 0.0, "waited_seconds": None,
                              "max_rss_mb": 0.0, "uid": spec["uid"]}
    out = Path(spec["out_host"])
    try:
        root = build_root(spec)
    except _TooBig as exc:
        report["too_big"] = str(exc)
        return _finish(out, report)
    except Exception:  # noqa: BLE001 - any setup failure is the infrastructure's, reported as such
        report["setup_error"] = traceback.format_exc()[-3000:]
        return _finish(out, report)
    logs = _open_logs(root)
    failed_read, failed_write = os.pipe()  # close-on-exec: stays empty when the runner starts
    child = os.fork()
    if child == 0:
        os.close(failed_read)
        _become_student(spec, root, logs, failed_write, start)  # never returns
    for fd in (*logs, failed_write):
        os.close(fd)
    _supervise(child, spec, report, root / "proc")
    why = os.read(failed_read, 4000)
    if why:
        report["setup_error"] = "starting the runner failed: " + why.decode(errors="replace")
    _kill_everything()
    if not report["timed_out"]:  # every process of the sandbox was reaped by now, by us or its parent
        report["cpu_seconds"] = round(_reaped_cpu_seconds(), 2)
    _copy_outputs(root, out, spec["output_caps"])
    return _finish(out, report)


class _TooBig(Exception):
    """The submission does not fit the sandbox's disk: the student's problem, not the grader's."""


def build_root(spec: dict[str, Any]) -> Path:
    """Build the file tree the student's code will see, on a fresh tmpfs; return its host path."""
    root = Path(spec["root"])
    mounts.make_private("/")
    mounts.sethostname("sandbox")
    mounts.loopback_up()
    mounts.tmpfs(str(root), int(spec["disk_mb"]))
    for name in ("bin", "lib", "lib64", "sbin"):  # merged-/usr systems: keep the compatibility links
        host = Path("/") / name
        if host.is_symlink():
            (root / name).symlink_to(os.readlink(host))
    for path in spec["binds_ro"]:
        target = _inside(root, path)
        if Path(path).is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        mounts.bind_readonly(path, str(target))
    for path, content in spec["files"].items():
        target = _inside(root, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(0o644)
    _make_dev(root, spec)
    (root / "proc").mkdir(exist_ok=True)
    mounts.procfs(str(root / "proc"))
    uid, gid = spec["uid"], spec["uid"]
    for place, mode in (("tmp", 0o1777), ("sandbox", 0o755), ("sandbox/log", 0o700)):
        (root / place).mkdir(parents=True, exist_ok=True)
        (root / place).chmod(mode)
    home = _inside(root, spec["env"]["HOME"])
    try:
        shutil.copytree(spec["work_src"], _inside(root, spec["workdir"]), symlinks=True)
        for src, dst in spec["copy_in"]:
            if Path(src).is_file():
                _inside(root, dst).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, _inside(root, dst))
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            raise _TooBig(f"the submission does not fit in the sandbox's {spec['disk_mb']} MB") from None
        raise
    # The runner's outputs get a tmpfs of their own: code that fills the disk cannot starve them.
    (root / "sandbox" / "out").mkdir()
    mounts.tmpfs(str(root / "sandbox" / "out"), int(spec["out_mb"]))
    for place in (home, root / "sandbox" / "out"):
        place.mkdir(parents=True, exist_ok=True)
        _chown_tree(place, uid, gid)
    _chown_tree(_inside(root, spec["workdir"]), uid, gid)
    return root


def _inside(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _make_dev(root: Path, spec: dict[str, Any]) -> None:
    dev = root / "dev"
    dev.mkdir(exist_ok=True)
    for node in spec["devices"]:
        target = _inside(root, node)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
        mounts.bind_device(node, str(target))
    (dev / "shm").mkdir()
    mounts.tmpfs(str(dev / "shm"), int(spec["shm_mb"]), mode="1777")
    for name, to in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                     ("stderr", "/proc/self/fd/2")):
        (dev / name).symlink_to(to)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid, follow_symlinks=False)
    for parent, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(parent, name), uid, gid, follow_symlinks=False)


def _open_logs(root: Path) -> tuple[int, int]:
    """stdout and stderr files owned by root: the student writes through the descriptors only."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    return (os.open(root / "sandbox/log/stdout", flags, 0o600), os.open(root / "sandbox/log/stderr", flags, 0o600))


def _become_student(spec: dict[str, Any], root: Path, logs: tuple[int, int], failed: int,
                    start: Callable[[dict[str, Any]], None]) -> None:
    """In the forked child: enter the tree, lower limits, drop privileges, run the runner.
    Anything that goes wrong before ``execve`` is written to ``failed``: the grader's fault, not
    the student's, and the supervisor reports it as such."""
    try:
        os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
        os.dup2(logs[0], 1)
        os.dup2(logs[1], 2)
        if failed != 3:
            os.dup2(failed, 3, inheritable=False)
            failed = 3
        os.closerange(4, 65536)  # the lifeline and anything else the supervisor holds stays here
        os.chroot(root)
        os.chdir(spec["workdir"])
        # Per user: the run's own uid, or, rootless, the user namespace's root, counted per namespace.
        run_limits.apply(spec["limits"], per_user_processes=True)
        mounts.drop_capability_bounding_set()
        if not spec.get("rootless"):
            os.setgroups([])
            os.setresgid(spec["uid"], spec["uid"], spec["uid"])
            os.setresuid(spec["uid"], spec["uid"], spec["uid"])
        # Rootless, the uid stays 0 in the namespace: with the bounding set empty, the execve below
        # leaves it no capability at all (permitted = file capabilities & bounding set = none).
        mounts.set_no_new_privs()
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        start(spec)
    except BaseException:  # noqa: BLE001 - the child must never run on as root
        os.write(failed, traceback.format_exc()[-3000:].encode())
    finally:
        os._exit(127)


def _supervise(child: int, spec: dict[str, Any], report: dict[str, Any], proc_dir: Path) -> None:
    """Wait for the runner until the wall deadline, reaping orphans; at the deadline, measure what
    the sandbox's processes used (``proc_dir``: the sandbox's /proc), then stop everything."""
    deadline = time.monotonic() + float(spec["wall_seconds"])
    lifeline = spec["lifeline_fd"]
    while True:
        if _reap(child, report):
            return
        readable, _, _ = select.select([lifeline], [], [], POLL_SECONDS)
        if readable and not os.read(lifeline, 1):
            report["lost_grader"] = True  # the grader is gone: nobody will read a result
            os._exit(1)  # PID 1 exiting takes the whole namespace down
        if time.monotonic() > deadline:
            report["timed_out"] = True
            usage = _usage_now(proc_dir)
            report["cpu_seconds"] = round(usage.cpu_seconds, 2)
            report["waited_seconds"] = None if usage.waited_seconds is None else round(usage.waited_seconds, 2)
            _signal_all(signal.SIGTERM)
            end = time.monotonic() + TERM_GRACE_SECONDS
            while time.monotonic() < end and not _reap(child, report):
                time.sleep(POLL_SECONDS)
            return


def _reap(child: int, report: dict[str, Any]) -> bool:
    """Collect every exited process; True once the runner itself has exited."""
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return False
        if pid == child:
            report["exit_code"] = os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None
            report["signal"] = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            report["max_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
            return True


def _usage_now(proc_dir: Path) -> cpu_use.Usage:
    """What every process of the sandbox used so far: the live ones from its /proc (all but this
    PID 1), the reaped ones from this process's children's account."""
    live = cpu_use.measure([int(e) for e in os.listdir(proc_dir) if e.isdigit() and e != "1"], proc=str(proc_dir))
    return cpu_use.Usage(live.cpu_seconds + _reaped_cpu_seconds(), live.waited_seconds)


def _reaped_cpu_seconds() -> float:
    """CPU time of every process this PID 1 reaped, with what they had reaped in turn."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _signal_all(sig: int) -> None:
    """Signal every process of the namespace but PID 1 (that is what -1 means for PID 1)."""
    try:
        os.kill(-1, sig)
    except ProcessLookupError:
        pass


def _kill_everything() -> None:
    """Daemons the student left behind die here; then every zombie is collected."""
    _signal_all(signal.SIGKILL)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(POLL_SECONDS)
        except ChildProcessError:
            return


def _copy_outputs(root: Path, out: Path, caps: dict[str, int]) -> None:
    """Copy the runner's files out, never following a link the student may have planted, and
    never more than one byte over each cap (so the host's loader sees the file was too big)."""
    try:
        out_dir = os.open(root / "sandbox" / "out", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        out_dir = None
    if out_dir is not None:
        for name, cap in caps.items():
            _copy_capped(out_dir, name, out / name, cap + 1)
        os.close(out_dir)
    log_dir = os.open(root / "sandbox" / "log", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    for name in ("stdout", "stderr"):
        _copy_head_and_tail(log_dir, name, out / f"{name}.txt")
    os.close(log_dir)


def _copy_capped(dir_fd: int, name: str, dest: Path, limit: int) -> None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            with open(dest, "wb") as f:
                remaining = limit
                while remaining > 0 and (chunk := os.read(fd, min(remaining, 1 << 20))):
                    f.write(chunk)
                    remaining -= len(chunk)
    finally:
        os.close(fd)


def _copy_head_and_tail(dir_fd: int, name: str, dest: Path) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        size = os.fstat(fd).st_size
        with open(dest, "wb") as f:
            if size <= LOG_KEEP_BYTES:
                f.write(os.pread(fd, size, 0))
            else:
                half = LOG_KEEP_BYTES // 2
                f.write(os.pread(fd, half, 0))
                f.write(f"\n[... {size - 2 * half:,} bytes cut ...]\n".encode())
                f.write(os.pread(fd, half, size - half))
    finally:
        os.close(fd)


def _finish(out: Path, report: dict[str, Any]) -> int:
    tmp = out / "supervisor.json.tmp"
    tmp.write_text(json.dumps(report))
    tmp.replace(out / "supervisor.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
