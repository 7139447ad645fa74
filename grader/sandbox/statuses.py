"""One status per run, with a message a student understands.

Inputs, from most to least trusted: how the run ended (``Ending``: from the namespace supervisor
or the host's own wait), then the runner's execution record and the probes' observations (both
written where student code runs, so they can only ever lower the student's own status, never
raise a grade). The first rule that matches wins; the order below is the precedence.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import Any

from typing import Literal

from grader.sandbox import failures
from grader.sandbox.limits import machine_starved

Status = Literal["ok", "cell-timeout", "no-result", "invalid-output", "timeout-wall", "timeout-cpu", "output-limit",
                 "crash", "kernel-died", "memory", "gpu-oom", "gpu-fault", "rejected", "sandbox-error"]


@dataclass(frozen=True)
class StatusInfo:
    """What a status means for the checks it leaves unobserved and for the batch.

    ``fault`` is whose doing the status is: ``student`` (their code ran out of a limit, died, or
    broke the output rules: a check it never reached is ``errored``, counted), ``machine`` (the
    grader or the host failed: never a final grade, the batch retries it), or ``none`` (the run
    ended normally, or never started because the submission was refused)."""

    meaning: str
    fault: Literal["student", "machine", "none"]


# Every run status, in one table: `classify` below decides which one a run gets.
STATUSES: dict[Status, StatusInfo] = {
    "ok": StatusInfo("the code ran; each check says how it went", "none"),
    "cell-timeout": StatusInfo("a notebook cell ran past its limit and was interrupted; the rest was graded", "none"),
    "rejected": StatusInfo("the submission could not be run as given (archive, form, size, a shadowing file)", "none"),
    "no-result": StatusInfo("the run ended without observing anything", "student"),
    "invalid-output": StatusInfo("what the run wrote broke the boundary's rules", "student"),
    "timeout-wall": StatusInfo("the run took longer than its wall-clock limit", "student"),
    "timeout-cpu": StatusInfo("a process used up its CPU time", "student"),
    "output-limit": StatusInfo("the code printed or wrote more than allowed", "student"),
    "crash": StatusInfo("the runner died from a signal", "student"),
    "kernel-died": StatusInfo("the notebook's kernel exited", "student"),
    "memory": StatusInfo("the code ran out of memory", "student"),
    "gpu-oom": StatusInfo("the GPU ran out of memory", "student"),
    "gpu-fault": StatusInfo("the GPU reported a fault", "student"),
    "sandbox-error": StatusInfo("the grader or the machine failed, not the code: retried", "machine"),
}
STUDENT_FAULT = frozenset(s for s, info in STATUSES.items() if info.fault == "student")
MACHINE_FAULT = frozenset(s for s, info in STATUSES.items() if info.fault == "machine")

# Words in an error message that tell which resource ran out.
MEMORY_ERROR = re.compile(r"^MemoryError|failed to map segment|can't allocate memory|Cannot allocate memory|std::bad_alloc", re.M)
GPU_OOM = re.compile(r"OutOfMemoryError|CUDA out of memory|CUDA error: out of memory")
GPU_FAULT = re.compile(r"CUDA error|device-side assert|illegal memory access|CUBLAS_STATUS|cuDNN error")
OUTPUT_ERROR = re.compile(r"File too large|No space left on device|Disk quota exceeded")


@dataclass
class Ending:
    """How the runner's process ended, as its supervisor saw it."""

    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    setup_error: str | None = None
    too_big: str | None = None
    cpu_seconds: float = 0.0  # every process of the run, up to its end (or its wall deadline)
    waited_seconds: float | None = None  # runnable but waiting for a CPU, measured at the wall deadline


def signal_name(number: int) -> str:
    return signal.Signals(number).name if number in signal.valid_signals() else f"signal {number}"


def classify(ending: Ending, execution: Any, records: list[Any], limits: dict[str, Any]) -> tuple[Status, str]:
    """The run's status and message. ``execution`` is the runner's record (or None) and
    ``records`` the probe records; both were already validated against their schemas."""
    ex = execution
    if ending.setup_error:
        return "sandbox-error", "the sandbox could not be set up: " + _last_line(ending.setup_error)
    if ending.too_big:
        return "rejected", ending.too_big
    if ex is not None and ex.problem:
        return "rejected", ex.problem
    if ending.timed_out and machine_starved(ending.cpu_seconds, ending.waited_seconds, limits):
        return "sandbox-error", (f"the machine was too busy to run the code in time: in the "
                                 f"{float(limits['wall_seconds']):g}s allowed it got {ending.cpu_seconds:.1f}s of CPU "
                                 f"time and waited {ending.waited_seconds:.1f}s for a free core; not the code's fault")
    if ending.timed_out:
        return "timeout-wall", (f"the run took longer than the {float(limits['wall_seconds']):g}s limit and was "
                                "stopped" + (f"; {len(records)} check(s) had been observed" if records else ""))
    if ex is not None and ex.runner_error:
        return "sandbox-error", "the grader's runner failed: " + _last_line(ex.runner_error)
    if ex is not None and ex.output_limited:
        return "output-limit", (f"a cell printed more than the {limits['output_mb']} MB allowed and was stopped"
                                + ("; the kernel did not survive it" if ex.kernel_died else "; the rest was graded"))
    died = _death(ending, ex)
    if died is not None:
        return died
    errors = _errors(ex, records)
    for status, pattern, message in (
            ("memory", MEMORY_ERROR, f"the code ran out of memory (limit {limits['memory_mb']} MB per process)"),
            ("gpu-oom", GPU_OOM, "the GPU ran out of memory"),
            ("gpu-fault", GPU_FAULT, "the GPU reported a fault (a CUDA error or a device-side assert)"),
            ("output-limit", OUTPUT_ERROR, f"the code wrote more than the {limits['disk_mb']} MB allowed")):
        hit = next((e for e in errors if pattern.search(e)), None)
        if hit is not None:
            return status, f"{message}: {hit[:200]}"
    if not records:
        detail = (ex.probe_failure or "") if ex else ""
        return "no-result", "the run ended without any observation" + (f": {detail.strip()[-300:]}" if detail else "")
    if ex is not None and any(c.status == "timeout" for c in ex.cells):
        slow = [c.index + 1 for c in ex.cells if c.status == "timeout"]
        return "cell-timeout", (f"cell(s) {', '.join(map(str, slow))} ran longer than "
                                f"{float(limits['cell_seconds']):g}s and were interrupted; the rest was graded")
    # The code ran; if parts of it raised, the message says what and where, never "ran to completion".
    return "ok", failures.summary(ex) or "ran to completion"


def _death(ending: Ending, ex: Any) -> tuple[str, str] | None:
    """The runner killed by a signal, a kernel killed by one, or a kernel that just exited."""
    kernel_died = ex is not None and ex.kernel_died
    if ending.signal is not None:
        sig, who = ending.signal, "the run"
    elif kernel_died and ex.kernel_signal is not None:
        sig, who = ex.kernel_signal, f"the notebook's kernel ({_cell(ex)})"
    elif kernel_died:
        return "kernel-died", (f"the notebook's kernel stopped in {_cell(ex)}: the code ended it "
                               "(os._exit, exit() of the kernel...) before the checks could run")
    elif ending.exit_code not in (0, None):
        return "crash", f"the run exited with code {ending.exit_code} before it finished"
    else:
        return None
    name = signal_name(sig)
    if sig == signal.SIGXCPU:
        return "timeout-cpu", f"{who} used more CPU time than allowed and was stopped ({name})"
    if sig == signal.SIGXFSZ:
        return "output-limit", f"{who} wrote a file larger than allowed and was stopped ({name})"
    if sig == signal.SIGKILL:
        return "crash", f"{who} was killed ({name}): the submission killed it, or the machine ran out of memory"
    return "crash", f"{who} crashed ({name})"


def _cell(ex: Any) -> str:
    return f"cell {ex.died_in_cell + 1}" if isinstance(ex.died_in_cell, int) else "the checks"


def _errors(ex: Any, records: list[Any]) -> list[str]:
    """Every error text the run produced: failing cells, failing imports, checks that raised."""
    found = []
    if ex is not None:
        found += [c.error for c in ex.cells if c.error]
        found += [m.error for m in ex.modules if m.error]
    found += [f"{r.error.type}: {r.error.message}" for r in records if r.status == "raised" and r.error]
    return found


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1][:300] if lines else "(no detail)"
