"""The host side of the ``namespace`` level: what the sandbox shows, and the command that builds it.

The supervisor (``grader.sandbox.supervisor``) does the building inside new namespaces; this module
decides what goes in. Read-only: the system's libraries (``/usr``), the interpreter and its
packages, the grader package, the data cache. Written fresh: a minimal ``/etc``, the runner's job.
Copied: the submission (into the writable tmpfs, owned by the run's leased uid). Nothing else exists
in there: no rubric, no reference, no other submission, no results, no journal, no grader
environment variables.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import grader
from grader.sandbox import uid_lease

UID_BASE = uid_lease.UID_BASE  # the first sandbox uid; each run leases its own (``uid_lease``)
HOME = "/home/student"
WORKDIR = f"{HOME}/work"
JOB_PATH = "/sandbox/job.json"
OUT_DIR = "/sandbox/out"
SYSTEM_DIRS = ["/usr", "/etc/ld.so.cache", "/etc/alternatives"]
DEVICES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]
UNSHARE = ["unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount", "--net", "--ipc", "--uts",
           "--propagation", "private"]
# Without root: a user namespace first, the caller's uid mapped to root in it, which may then mount
# and build the sandbox as root does. The run itself cannot switch to a uid of its own (no other
# uid is mapped): it keeps root's uid in the namespace with every capability dropped, and the
# host sees it as the caller (docs/security.md, "rootless").
UNSHARE_ROOTLESS = ["unshare", "--user", "--map-root-user", *UNSHARE[1:]]


def rootless() -> bool:
    """Whether sandboxes are built in a user namespace (the grader is not root)."""
    return os.geteuid() != 0


def unshare_argv() -> list[str]:
    return UNSHARE_ROOTLESS if rootless() else UNSHARE


@functools.cache
def unavailable_reason() -> str | None:
    """Why the namespace level cannot run here, or None when it can (tried once per process)."""
    if sys.platform != "linux":
        return "namespaces are Linux-only"
    if shutil.which("unshare") is None:
        return "util-linux `unshare` is not installed"
    try:
        probe = subprocess.run([*unshare_argv(), "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`unshare` could not run: {exc}"
    if probe.returncode != 0:
        if rootless():
            return (f"this machine does not let uid {os.geteuid()} create user namespaces: "
                    f"{probe.stderr.strip()[:200]} (see sysctl user.max_user_namespaces, "
                    "kernel.unprivileged_userns_clone, or AppArmor's restrict_unprivileged_userns)")
        return f"`unshare` refused new namespaces: {probe.stderr.strip()[:200]} (a container without CAP_SYS_ADMIN?)"
    return None


def readonly_paths(extra: list[Path]) -> list[str]:
    """Host paths shown read-only at the same place inside; nested ones are dropped (their parent
    already shows them, and nothing can be created inside a read-only mount)."""
    candidates = [*SYSTEM_DIRS, sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.realpath(sys.executable),
                  sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], _package_dir(),
                  *map(str, extra)]
    for name in ("lib", "lib64", "bin", "sbin"):  # not merged into /usr on this system
        if os.path.isdir(f"/{name}") and not os.path.islink(f"/{name}"):
            candidates.append(f"/{name}")
    kept: list[str] = []
    for path in sorted({os.path.realpath(p) for p in candidates if os.path.exists(p)}, key=len):
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def _package_dir() -> str:
    return str(Path(grader.__file__).resolve().parent)


def torch_home() -> Path | None:
    """The host's torch home (``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch``,
    as torch computes it) when its hub cache holds a ``checkpoints`` folder, else None. That folder
    is shown read-only inside and ``TORCH_HOME`` points at the same place, so pretrained weights
    placed on the host load without a network (and nothing can be added to the cache)."""
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    home = Path(os.path.expanduser(os.environ.get("TORCH_HOME") or os.path.join(cache, "torch")))
    return home if (home / "hub" / "checkpoints").is_dir() else None


def devices(gpu: str | None) -> list[str]:
    """Device nodes shown inside: the harmless ones, plus NVIDIA's when the slot has a GPU."""
    nodes = [d for d in DEVICES if os.path.exists(d)]
    if gpu is not None:
        nodes += sorted(glob.glob("/dev/nvidia*"))
    return nodes


def sandbox_env(job_env: dict[str, str], gpu: str | None, threads: int) -> dict[str, str]:
    """The runner's whole environment inside: nothing of the grader's own is passed through."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME, "USER": "student", "LOGNAME": "student", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
        "PYTHONPATH": str(Path(_package_dir()).parent),
        "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
        "JUPYTER_PLATFORM_DIRS": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MPLCONFIGDIR": f"{HOME}/.config/matplotlib", "OMP_NUM_THREADS": str(threads),
        "CUDA_VISIBLE_DEVICES": gpu if gpu is not None else "",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",  # the numbering nvidia-smi and --gpus use
    }
    if (home := torch_home()) is not None:
        env["TORCH_HOME"] = str(home)
    env.update(job_env)
    return env


def etc_files(uid: int) -> dict[str, str]:
    return {
        "/etc/passwd": f"root:x:0:0:root:/root:/bin/sh\nstudent:x:{uid}:{uid}:student:{HOME}:/bin/sh\n",
        "/etc/group": f"root:x:0:\nstudent:x:{uid}:\n",
        "/etc/hosts": "127.0.0.1 localhost sandbox\n::1 localhost\n",
    }


def spec(*, inner_job: dict[str, Any], work_src: Path, root: Path, out_host: Path, limits: dict[str, Any],
         uid: int, gpu: str | None, read_only: list[Path], env: dict[str, str], threads: int,
         lifeline_fd: int, output_caps: dict[str, int], font_cache: list[str]) -> dict[str, Any]:
    """The supervisor's instructions for one run (written by the host, read by the supervisor);
    ``uid`` is the one the run leased (``uid_lease``), held by no other run on the machine."""
    hub = [home / "hub" / "checkpoints"] if (home := torch_home()) is not None else []
    return {
        "root": str(root), "out_host": str(out_host), "work_src": str(work_src), "workdir": WORKDIR,
        "uid": uid, "disk_mb": int(limits["disk_mb"]), "shm_mb": max(64, int(limits["disk_mb"]) // 4),
        "out_mb": sum(output_caps.values()) // 2**20 + 16,
        "binds_ro": readonly_paths(read_only + hub + ([Path("/sys")] if gpu is not None else [])),
        "devices": devices(gpu),
        "files": {**etc_files(uid), JOB_PATH: json.dumps(inner_job)},
        "copy_in": [[f, f"{HOME}/.config/matplotlib/{Path(f).name}"] for f in font_cache],
        "argv": [sys.executable, "-m", "grader.sandbox.runner", JOB_PATH],
        "env": sandbox_env(env, gpu, threads), "limits": limits, "wall_seconds": float(limits["wall_seconds"]),
        "lifeline_fd": lifeline_fd, "output_caps": output_caps, "rootless": rootless(),
    }


# How PID 1 starts: ``grader.sandbox`` stands in as a bare package (its folder, no ``__init__``), then
# the supervisor is imported and run. It and the modules it uses need only the standard library;
# the package's ``__init__`` (the host's pydantic models, numpy) would cost a quarter of a second of
# CPU in every namespace run, the student's and the measure stage's alike.
SUPERVISOR_START = ("import sys, types; package = types.ModuleType('grader.sandbox'); "
                    "package.__path__ = [sys.argv[1]]; sys.modules['grader.sandbox'] = package; "
                    "from grader.sandbox import supervisor; sys.exit(supervisor.main(sys.argv[2:]))")


def command(spec_path: Path) -> list[str]:
    return [*unshare_argv(), sys.executable, "-c", SUPERVISOR_START, str(Path(_package_dir()) / "sandbox"), str(spec_path)]


def supervisor_env() -> dict[str, str]:
    """The supervisor runs as root (of the host, or of its user namespace) on the host side of the
    mounts: it gets a scrubbed environment too."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": str(Path(_package_dir()).parent)}
