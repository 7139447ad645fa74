"""The child side of a run: ``python -m grader.sandbox.runner JOB.json``.

Runs inside the sandbox, as the student's code does. It executes the notebook (or imports the
modules), records what happened in ``execution.json``, then runs the probes, which write the
observations. It never judges anything. Exit codes: 0 done (whatever the student's code did),
70 the runner itself failed.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

RUNNER_FAILED = 70
PR_SET_CHILD_SUBREAPER = 36


def main(argv: list[str], own_process: bool = False) -> int:
    """Run the job at ``argv[0]``; ``own_process`` when this process exists for that alone (not the
    ``none`` level, which calls this in the grader's own process)."""
    job_path = Path(argv[0])
    job = json.loads(job_path.read_text())
    job["job_path"] = str(job_path)
    out_dir = Path(job["out_dir"])
    if job.get("isolation") == "process":  # at the namespace level the supervisor set them already
        from grader.sandbox import limits

        limits.apply(job["limits"], per_user_processes=False)
    _become_subreaper()
    if job.get("lifeline_fd") is not None:
        _watch_lifeline(int(job["lifeline_fd"]))
    execution: dict[str, Any] = {"form": job["entry"]["form"], "cells": [], "modules": [],
                                 "removed_commands": [], "kernel_died": False}

    def save(record: dict[str, Any]) -> None:
        tmp = out_dir / "execution.json.tmp"
        tmp.write_text(json.dumps(record))
        tmp.replace(out_dir / "execution.json")

    try:
        if job["entry"]["form"] == "measure":  # no student code: the measure stage (grader.measuring)
            from grader.sandbox import measure

            measure.run(job)
            if own_process:
                kill_descendants()  # as the finally below would, were it not skipped
                _end_at_once()
            return 0
        if job["entry"]["form"] == "notebook":
            from grader.sandbox import notebook

            notebook.execute(job, execution, save)
        else:
            run_modules(job, execution, save)
    except BaseException:  # noqa: BLE001 - report, never die silently
        execution["runner_error"] = traceback.format_exc()[-4000:]
        save(execution)
        return RUNNER_FAILED
    finally:
        kill_descendants()
    return 0


def run_modules(job: dict[str, Any], execution: dict[str, Any], save: Any) -> None:
    """Import each module of the submission. A module that raises keeps what it defined before the
    error (as a notebook keeps the cells before a failing one), and the others still run."""
    entry = job["entry"]
    root = entry["root"]
    sys.path.insert(0, root)
    os.chdir(root)
    namespaces = []
    _cuda_fallback(root, entry["modules"], execution)
    _serve_data(root)
    _notebook_exports_run(execution)
    for name in entry["modules"]:
        if name in sys.modules:  # an earlier module imported it: one copy, not a second run
            execution["modules"].append({"name": name, "status": "ok", "error": None, "output": ""})
            namespaces.append((name, vars(sys.modules[name])))
            continue
        found = importlib.util.spec_from_file_location(name, Path(root) / f"{name}.py")
        module = importlib.util.module_from_spec(found)  # type: ignore[arg-type]
        sys.modules[name] = module  # a failed import stays there: importing it again would rerun the failure
        try:
            found.loader.exec_module(module)  # type: ignore[union-attr]
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything, SystemExit too
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
            raised = raised_at_import(exc, Path(root), f"{name}.py")
            execution["modules"].append({"name": name, "status": "error", "error": f"{raised['type']}: "
                                         f"{raised['message']}"[:500], "output": "".join(tb)[-2000:], "raised": raised})
        else:
            execution["modules"].append({"name": name, "status": "ok", "error": None, "output": ""})
        namespaces.append((name, vars(module)))
    from grader.sandbox import data_paths

    execution["data_served"] = data_paths.served()
    save(execution)
    from grader.sandbox import probe_side

    try:
        probe_side.run(job, namespaces)
    except Exception:  # noqa: BLE001 - after student code ran in this process, it may be the cause
        execution["probe_failure"] = traceback.format_exc()[-2000:]
        save(execution)


def raised_at_import(exc: BaseException, root: Path, default_file: str) -> dict[str, Any]:
    """``exc`` as a ``sandbox.Raised``: the innermost line of the submission's own code it passed
    through (a module the student's code imported, or the module itself; a SyntaxError's own
    file and line), relative to ``root``. Library frames are skipped: the student's line that
    called into the library is the one to fix."""
    file, line = default_file, None
    for frame in traceback.extract_tb(exc.__traceback__):
        inside = _inside(frame.filename, root)
        if inside is not None:
            file, line = inside, frame.lineno
    if isinstance(exc, SyntaxError) and exc.filename and (inside := _inside(exc.filename, root)) is not None:
        file, line = inside, exc.lineno
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    return {"type": type(exc).__name__[:200], "message": _message(exc)[:500], "file": file, "line": line,
            "missing_module": missing[:200] if isinstance(missing, str) else None}


def _inside(filename: str, root: Path) -> str | None:
    """``filename`` relative to the submission's folder, or None if it lies elsewhere."""
    try:
        return Path(filename).resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return None


def _message(exc: BaseException) -> str:
    """``str(exc)``, which a student's exception may make raise."""
    try:
        return exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    except BaseException:  # noqa: BLE001
        return f"<a {type(exc).__name__} whose message cannot be shown>"


def _cuda_fallback(root: str, modules: list[str], execution: dict[str, Any]) -> None:
    """Modules that ask for CUDA run on the CPU where there is no GPU (see ``cpu_fallback``)."""
    from grader.sandbox import cpu_fallback

    texts = []
    for name in modules:
        try:
            texts.append((f"{name}.py", (Path(root) / f"{name}.py").read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    asked = cpu_fallback.mentions(texts)
    if asked and cpu_fallback.install():
        execution["cuda_on_cpu"] = asked


class _NoShell:
    """What ``get_ipython()`` gives a module exported from a notebook (``jupyter nbconvert --to
    script`` writes ``get_ipython().run_line_magic('matplotlib', 'inline')``): the magics and shell
    commands are not run, as in a graded notebook, and the run records each one."""

    def __init__(self, removed: list[str]):
        self.removed = removed

    def run_line_magic(self, name: str, line: str = "", *args: Any, **kwargs: Any) -> None:
        self.removed.append(f"%{name} {line}".strip())

    def run_cell_magic(self, name: str, line: str = "", cell: str = "", *args: Any, **kwargs: Any) -> None:
        self.removed.append(f"%%{name} {line}".strip())

    def system(self, command: str = "", *args: Any, **kwargs: Any) -> None:
        self.removed.append(f"!{command}")

    getoutput = system

    def magic(self, line: str = "", *args: Any, **kwargs: Any) -> None:
        self.removed.append(f"%{line}")


def _notebook_exports_run(execution: dict[str, Any]) -> None:
    """A module exported from a notebook calls ``get_ipython()``: give it a shell that runs nothing."""
    import builtins

    if not hasattr(builtins, "get_ipython"):
        shell = _NoShell(execution["removed_commands"])
        builtins.get_ipython = lambda: shell  # type: ignore[attr-defined]


def _serve_data(root: str) -> None:
    """Torchvision data sets find the grader's copy of the data wherever the code looks (``data_paths``),
    literal split sizes fit a synthetic stand-in (``data_sizes``), and provided modules answer to the
    names students import them by (``provided_aliases``)."""
    from grader.sandbox import data_paths, data_sizes, provided_aliases

    texts = []
    for path in Path(root).rglob("*.py"):
        try:
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    if data_paths.wanted_by(texts):
        data_paths.install()
    if data_sizes.wanted_by(texts):
        data_sizes.install()
    if os.environ.get(provided_aliases.ENV):
        provided_aliases.install()


def _end_at_once() -> None:
    """Exit 0 now, skipping the interpreter's teardown. The measure stage's runner ends so once its
    outputs are written and closed: tearing down an interpreter that imported torch frees its
    objects one by one (about half a second of CPU, a quarter of the stage) in a process that is
    over. Nothing is lost: it started nothing, and only stdout and stderr buffer, flushed here."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _watch_lifeline(fd: int) -> None:
    """When the grader dies (even by SIGKILL) its end of the pipe closes: end everything we started.

    The namespace level has a trusted supervisor for this; at the ``process`` level this thread in
    the runner is the best there is (student code in the same process could stop it)."""
    import threading

    os.set_inheritable(fd, False)

    def watch() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        kill_descendants()
        os._exit(RUNNER_FAILED)

    threading.Thread(target=watch, name="grader-lifeline", daemon=True).start()


def _become_subreaper() -> None:
    """Orphaned grandchildren (a daemonized process) are re-parented to us, so we can end them."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the supervisor's process-group kill still applies
        pass


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, read from /proc (children before their parents' siblings)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def kill_descendants(pid: int | None = None) -> None:
    """SIGKILL every descendant of ``pid`` (default: this process) and their process groups,
    except the caller's own group."""
    own_group = os.getpgid(0)
    for child in descendants(pid or os.getpid()):
        try:
            group = os.getpgid(child)
            if group != own_group:
                os.killpg(group, signal.SIGKILL)
            os.kill(child, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], own_process=True))
