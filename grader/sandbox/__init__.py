"""The sandbox interface: run one submission's code and probes, isolated, and read back what it saw.

``run(job)`` is all the pipeline sees. Three isolation levels, recorded in every result:

* ``namespace`` — new PID, mount, network, IPC and UTS namespaces, a uid of its own (leased host-wide
  by ``uid_lease``), no capabilities,
  rlimits, a tmpfs as the only writable place, a trusted supervisor as PID 1
  (``supervisor.py``; what goes in is decided by ``namespace.py``);
* ``process`` — a child process in its own session with rlimits, a scrubbed environment and a wall
  deadline; every descendant is killed afterwards. Weak: the code runs as the grader's user;
* ``none`` — the runner in the grader's own process, for debugging a rubric only.

``statuses.py`` gives the run its one status.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field

from grader import observations
from grader.errors import GraderError
from grader.sandbox import cpu_use, data_paths
from grader.sandbox import limits as run_limits
from grader.sandbox.statuses import Ending, classify
from grader.submission import Entry

Isolation = Literal["namespace", "process", "none"]
LEVELS: tuple[Isolation, ...] = ("namespace", "process", "none")
GRACE_SECONDS = 3.0
SETUP_MARGIN_SECONDS = 60.0  # the supervisor's own deadline comes first; this is the host's backstop
EXECUTION_NAME = "execution.json"  # the runner's record of the code running (runner.py writes it)


class Raised(BaseModel):
    """What a cell or module raised, and where in the submission's own code."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: str  # the exception's class name: ModuleNotFoundError
    message: str
    file: str | None = None  # modules: the submission's file, relative to its folder (helpers.py); cells: None
    line: int | None = None  # 1-based, in ``file`` or in the cell; the innermost line of the submission's code
    missing_module: str | None = None  # a ModuleNotFoundError's module (foo.bar), as the error names it


class CellRun(BaseModel):
    """One notebook cell. ``index`` is its place in the notebook's list of cells, from 0 (as
    nbformat counts); ``number`` is ``index + 1``, what every message calls "cell N" (markdown
    cells counted, as a person counts the cells top to bottom)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    index: int
    type: str
    status: Literal["ok", "error", "timeout", "skipped", "died"]
    error: str | None = None
    raised: Raised | None = None
    words: int = 0
    figures: int = 0  # plots shown, counted as grader.sandbox.figures says
    source: str = ""
    output: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def number(self) -> int:
        return self.index + 1


class ModuleRun(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    status: Literal["ok", "error"]
    error: str | None
    output: str
    raised: Raised | None = None  # a module that raised at import: file, line, type, message


class Execution(BaseModel):
    """The runner's record of the student's code running (read back on the host; untrusted)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    form: Literal["notebook", "module"]
    cells: list[CellRun] = []
    modules: list[ModuleRun] = []
    removed_commands: list[str] = []
    cuda_on_cpu: list[str] = []  # lines asking for CUDA, run on the CPU instead (no GPU; see cpu_fallback)
    data_served: list[str] = Field([], max_length=data_paths.MAX_SHOWN)  # data-set calls whose root was replaced
    kernel_died: bool = False
    died_in_cell: int | str | None = None
    probe_failure: str | None = None
    kernel_signal: int | None = None
    output_limited: bool = False
    problem: str | None = None
    runner_error: str | None = None


@dataclass(frozen=True)
class Slot:
    """One of the batch's parallel places to run: ``index`` names it (unique in a batch), ``gpu``
    is the only device the sandbox sees (``None``: no GPU). The sandbox's uid is not the slot's:
    each namespace run leases one that no other run on the machine holds (``uid_lease``)."""

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
    isolation: Isolation = "process"
    read_only: list[Path] = field(default_factory=list)  # shown read-only inside (the data cache)


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


class _Process(Protocol):
    """What a run's first process is to the host: a ``subprocess.Popen``, or a ``warm.Launched``;
    either leads its own process group."""

    pid: int
    returncode: int | None

    def wait(self, timeout: float | None = None) -> int: ...


_running: set[_Process] = set()
_running_lock = threading.Lock()
_P = TypeVar("_P", bound=_Process)


def stop_all() -> int:
    """End every run in progress (a batch stopped by Ctrl-C): the namespace level's supervisors
    take their whole namespace down, the process level's runners their process groups. Returns
    how many runs were ended; each ``run`` still returns, with the status of a stopped run."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        _end(proc)
    return len(procs)


def _end(proc: _Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # each run leads its own session and process group
    except (ProcessLookupError, PermissionError):
        pass


def _started(proc: _P) -> _P:
    with _running_lock:
        _running.add(proc)
    return proc


def _finished(proc: _Process) -> None:
    with _running_lock:
        _running.discard(proc)


def choose_isolation(requested: str) -> Isolation:
    """The level to use: ``auto`` is the strongest this machine offers; an explicit level that is
    unavailable is an error that says why."""
    from grader.sandbox import namespace

    if requested == "auto":
        return "namespace" if namespace.unavailable_reason() is None else "process"
    if requested not in LEVELS:
        raise GraderError(f"unknown isolation level {requested!r}", where="--isolation",
                          hint="use auto, namespace, process or none")
    if requested == "namespace" and (why := namespace.unavailable_reason()):
        raise GraderError(f"the namespace sandbox is not available: {why}", where="--isolation namespace",
                          hint="run on Linux with util-linux installed, as root or where unprivileged user namespaces are "
                                "allowed, or pass --isolation process")
    return requested  # type: ignore[return-value]


def run(job: Job) -> RunResult:
    """Run ``job`` at its isolation level and read back what it observed."""
    job.out_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    ending = {"namespace": _run_namespace, "process": _run_process, "none": _run_here}[job.isolation](job)
    return read_back(job.out_dir, ending, job.limits, job.isolation, seconds=round(time.monotonic() - start, 2))


def read_back(out_dir: Path, ending: Ending, limits: dict[str, Any], isolation: Isolation = "process",
              seconds: float = 0.0) -> RunResult:
    """What a finished run left in ``out_dir``, judged into one status.

    Every file read here could have been written by the student's code (at the ``process``
    level, as links, FIFOs or devices too), so each is read with a cap and without following
    links, and anything malformed is an ``invalid-output`` status whose message names the file
    and what is wrong with it; nothing the files hold can raise out of here."""
    limit = int(limits.get("output_chars", 20_000))
    result = RunResult(status="ok", message="", isolation=isolation, seconds=seconds,
                       stdout=_tail(out_dir / "stdout.txt", limit), stderr=_tail(out_dir / "stderr.txt", limit))
    try:
        result.execution = read_execution(out_dir)
    except observations.InvalidOutput as exc:
        return _set(result, "invalid-output", f"the run's execution record is malformed: {exc}")
    try:
        doc, result.arrays = observations.load(out_dir)
        result.records = doc.records
    except FileNotFoundError:
        pass
    except observations.InvalidOutput as exc:
        return _set(result, "invalid-output", f"the probes' output broke the rules: {exc}")
    return _set(result, *classify(ending, result.execution, result.records, limits))


def read_execution(out_dir: Path) -> Execution | None:
    """The runner's ``execution.json``, or None when the run left none; ``InvalidOutput`` (with
    the field at fault) when it is not a small, well-formed record."""
    what = "the execution record"
    try:
        raw = observations.parse_json(observations.read_capped(out_dir / EXECUTION_NAME, observations.MAX_JSON_BYTES,
                                                               what), what)
    except FileNotFoundError:
        return None
    try:
        return Execution.model_validate(raw)
    except ValidationError as exc:
        raise observations.InvalidOutput(f"{EXECUTION_NAME}: {observations.first_error(exc)}") from None


def _runner_job(job: Job, root: str, out_dir: str, job_path: str) -> dict[str, Any]:
    """The runner's instructions, with paths as the runner will see them. The student's code can
    read them, so the plan goes trimmed to what the probes need (``probe_plan``)."""
    from grader.sandbox import probe_plan

    notebook = str(Path(root) / job.entry.notebook.relative_to(job.entry.root)) if job.entry.notebook else None
    return {"entry": {"form": job.entry.form, "root": root, "notebook": notebook, "modules": list(job.entry.modules)},
            "plan": probe_plan.for_probe(job.plan) if job.entry.form != "measure" else {}, "limits": job.limits, "out_dir": out_dir, "job_path": job_path,
            "isolation": job.isolation}


def _run_namespace(job: Job) -> Ending:
    """Hand the run to a supervisor in new namespaces, as a uid leased for this run alone; trust
    only its ``supervisor.json``."""
    from grader.sandbox import namespace, uid_lease

    if namespace.rootless():  # one uid is all a user namespace maps: the run keeps it, capabilities dropped
        return _supervised(job, 0)
    with uid_lease.lease() as lease:  # held until the supervisor, and with it the namespace, is gone
        return _supervised(job, lease.uid)


def _supervised(job: Job, uid: int) -> Ending:
    """The namespace run itself, its student code running as ``uid``."""
    from grader.sandbox import namespace, warm

    base = job.out_dir.parent
    root = base / "root"
    root.mkdir(exist_ok=True)
    # A warm run's lifeline is its warm parent's (grader.sandbox.warm); a cold one's is a pipe
    # whose write end this process holds, made only when the run starts cold.
    spec = namespace.spec(
        inner_job=_runner_job(job, namespace.WORKDIR, namespace.OUT_DIR, namespace.JOB_PATH), work_src=job.entry.root,
        root=root, out_host=job.out_dir, limits=job.limits, uid=uid, gpu=job.slot.gpu,
        read_only=job.read_only, env=job.env, threads=run_limits.threads(job.limits), lifeline_fd=-1,
        output_caps={"observations.json": observations.MAX_JSON_BYTES, "arrays.npz": observations.MAX_ARRAYS_BYTES,
                     EXECUTION_NAME: observations.MAX_JSON_BYTES},
        font_cache=_font_cache())
    spec_path = base / "supervisor-spec.json"
    spec_path.write_text(json.dumps(spec))
    lifeline_write = None
    try:
        with open(base / "supervisor.log", "wb") as log:
            launched = warm.launch(spec_path, base / "supervisor.log")
            if launched is None:
                lifeline_read, lifeline_write = os.pipe()
                spec_path.write_text(json.dumps({**spec, "lifeline_fd": lifeline_read}))
                launched = subprocess.Popen(
                    namespace.command(spec_path), env=namespace.supervisor_env(), cwd="/", stdin=subprocess.DEVNULL,
                    stdout=log, stderr=log, pass_fds=(lifeline_read,), start_new_session=True)
                os.close(lifeline_read)
            proc = _started(launched)
            try:
                proc.wait(timeout=float(job.limits["wall_seconds"]) + SETUP_MARGIN_SECONDS)
            except subprocess.TimeoutExpired:
                return Ending(setup_error="the sandbox supervisor did not end in time")
            finally:
                _end(proc)  # unshare's --kill-child takes the namespace down with it
                proc.wait()
                _finished(proc)
    finally:
        if lifeline_write is not None:
            os.close(lifeline_write)
    try:
        report = json.loads((job.out_dir / "supervisor.json").read_text())
    except (OSError, ValueError):
        detail = (base / "supervisor.log").read_text(errors="replace")[-1000:]
        return Ending(setup_error=f"the sandbox supervisor ended without a report (exit {proc.returncode}): {detail}")
    return Ending(exit_code=report["exit_code"], signal=report["signal"], timed_out=report["timed_out"],
                  setup_error=report["setup_error"], too_big=report["too_big"], cpu_seconds=report["cpu_seconds"],
                  waited_seconds=report["waited_seconds"])


def _run_process(job: Job) -> Ending:
    """A child process in its own session; the runner lowers its own rlimits before any student code."""
    job_path = job.out_dir / "job.json"
    lifeline_read, lifeline_write = os.pipe()
    inner = _runner_job(job, str(job.entry.root), str(job.out_dir), str(job_path)) | {"lifeline_fd": lifeline_read}
    job_path.write_text(json.dumps(inner))
    wall = float(job.limits["wall_seconds"])
    try:
        with open(job.out_dir / "stdout.txt", "wb") as out, open(job.out_dir / "stderr.txt", "wb") as err:
            proc = _started(subprocess.Popen(
                [sys.executable, "-m", "grader.sandbox.runner", str(job_path)], cwd=job.entry.root,
                env=child_env(job), stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                pass_fds=(lifeline_read,)))
            os.close(lifeline_read)
            try:
                usage = _wait(proc, wall)
            finally:
                _finished(proc)
    finally:
        os.close(lifeline_write)
    code, timed_out = proc.returncode, usage is not None
    return Ending(exit_code=code if code >= 0 else None, signal=-code if code < 0 and not timed_out else None,
                  timed_out=timed_out, cpu_seconds=round(usage.cpu_seconds, 2) if usage else 0.0,
                  waited_seconds=usage.waited_seconds if usage else None)


def _run_here(job: Job) -> Ending:
    """``none``: the runner in this very process (no limits, no deadline but the cells'): debugging only."""
    from grader.sandbox import runner

    job_path = job.out_dir / "job.json"
    job_path.write_text(json.dumps(_runner_job(job, str(job.entry.root), str(job.out_dir), str(job_path))))
    cwd = os.getcwd()
    try:
        return Ending(exit_code=runner.main([str(job_path)]))
    finally:
        os.chdir(cwd)


def _font_cache() -> list[str]:
    """matplotlib's font list, built once on the host and copied into each sandbox (seconds saved)."""
    shared = _shared_dir("matplotlib")
    found = sorted(str(p) for p in shared.glob("fontlist-*.json"))
    if not found:
        subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env={**child_env_base(),
                       "MPLCONFIGDIR": str(shared)}, capture_output=True, timeout=120)
        found = sorted(str(p) for p in shared.glob("fontlist-*.json"))
    return found


def _wait(proc: subprocess.Popen, wall: float) -> cpu_use.Usage | None:
    """Wait for the child until the wall deadline; then end it and everything it started.
    Returns None when it ended in time, else what its processes used up to the deadline."""
    from grader.sandbox.runner import descendants, kill_descendants

    usage = None
    try:
        proc.wait(timeout=wall)
    except subprocess.TimeoutExpired:
        usage = cpu_use.measure([proc.pid, *descendants(proc.pid)])
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=GRACE_SECONDS)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    finally:  # also on Ctrl-C: nothing of the submission outlives the wait
        kill_descendants(proc.pid)  # kernels run in their own session; orphans were re-parented to the runner
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return usage


def child_env_base() -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {"PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}


def child_env(job: Job) -> dict[str, str]:
    """A scrubbed environment: nothing of the grader's own (tokens, paths) leaks to student code."""
    home = job.out_dir / "home"
    home.mkdir(exist_ok=True)
    env = {
        **child_env_base(),
        "HOME": str(home),
        "JUPYTER_PLATFORM_DIRS": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "OMP_NUM_THREADS": str(run_limits.threads(job.limits)),
        "CUDA_VISIBLE_DEVICES": job.slot.gpu if job.slot.gpu is not None else "",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",  # the numbering nvidia-smi and --gpus use
    }
    from grader.sandbox.namespace import torch_home

    if (torch_dir := torch_home()) is not None:  # pretrained weights in the hub cache, as the namespace level shows them
        env["TORCH_HOME"] = str(torch_dir)
    # matplotlib's font cache takes seconds to build: keep one across runs instead of one per HOME.
    env["MPLCONFIGDIR"] = os.environ.get("MPLCONFIGDIR") or str(_shared_dir("matplotlib"))
    env.update(job.env)
    return env


def _shared_dir(name: str) -> Path:
    from grader.paths import cache_dir

    path = cache_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _set(result: RunResult, status: str, message: str) -> RunResult:
    result.status, result.message = status, message
    return result


def _tail(path: Path, limit: int) -> str:
    """At most ``limit`` characters of a possibly huge file: its start and its end. Only a regular
    file is read (at the ``process`` level the code could leave a FIFO or a link to ``/dev/zero``
    there); anything else reads as empty."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return ""
    with open(fd, "rb") as f:
        size = info.st_size
        if size <= limit:
            return f.read(limit).decode("utf-8", "replace")
        head = f.read(limit // 2).decode("utf-8", "replace")
        f.seek(size - limit // 2)
        return head + f"\n[... {size - limit:,} bytes cut ...]\n" + f.read(limit // 2).decode("utf-8", "replace")
