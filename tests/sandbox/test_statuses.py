"""One status per run: every status from a crafted ending, execution record and probe records."""

from __future__ import annotations

import signal

import pytest

from grader.observations import ProbeRecord, StudentError
from grader.sandbox import CellRun, Execution, ModuleRun
from grader.sandbox.statuses import STATUSES, Ending, classify

LIMITS = {"wall_seconds": 60, "cell_seconds": 20, "memory_mb": 1024, "disk_mb": 64, "output_mb": 2}
OBSERVED = [ProbeRecord(check="a", status="observed", data={})]


def notebook(**fields) -> Execution:
    return Execution(form="notebook", **fields)


def raised(message: str) -> list[ProbeRecord]:
    return [ProbeRecord(check="a", status="raised",
                        error=StudentError(type="RuntimeError", message=message, during="x", traceback=""))]


CASES = {
    "ok": (Ending(exit_code=0), notebook(), OBSERVED, "ran to completion"),
    "sandbox-error (setup)": (Ending(setup_error="Traceback...\nOSError: mount failed"), None, [], "mount failed"),
    "sandbox-error (runner)": (Ending(exit_code=70), notebook(runner_error="Traceback\nKeyError: 'x'"), [], "KeyError"),
    "rejected (too big)": (Ending(too_big="the submission does not fit in the sandbox's 64 MB"), None, [], "64 MB"),
    "rejected (unreadable)": (Ending(exit_code=0), notebook(problem="the notebook cannot be read: bad JSON"), [],
                              "bad JSON"),
    "timeout-wall": (Ending(timed_out=True), notebook(), OBSERVED, "60s limit"),
    "timeout-cpu": (Ending(signal=signal.SIGXCPU), None, [], "CPU time"),
    "output-limit (signal)": (Ending(signal=signal.SIGXFSZ), None, [], "larger than allowed"),
    "output-limit (flood)": (Ending(exit_code=0), notebook(output_limited=True), OBSERVED, "more than the 2 MB"),
    "output-limit (disk)": (Ending(exit_code=0), Execution(form="module", modules=[ModuleRun(
        name="m", status="error", error="OSError: [Errno 28] No space left on device", output="")]), OBSERVED, "64 MB"),
    "crash (segfault)": (Ending(signal=signal.SIGSEGV), None, [], "SIGSEGV"),
    "crash (kernel killed)": (Ending(exit_code=0), notebook(kernel_died=True, died_in_cell=2,
                                                            kernel_signal=signal.SIGKILL), [], "cell 3"),
    "kernel-died": (Ending(exit_code=0), notebook(kernel_died=True, died_in_cell=0), [], "cell 1"),
    "memory": (Ending(exit_code=0), notebook(cells=[CellRun(index=0, type="code", status="error",
                                                            error="MemoryError: ")]), OBSERVED, "1024 MB"),
    "gpu-oom": (Ending(exit_code=0), notebook(), raised("CUDA out of memory. Tried to allocate 2.00 GiB"), "GPU"),
    "gpu-fault": (Ending(exit_code=0), notebook(), raised("CUDA error: device-side assert triggered"), "fault"),
    "no-result": (Ending(exit_code=0), notebook(probe_failure="ImportError: no grader"), [], "no grader"),
    "cell-timeout": (Ending(exit_code=0), notebook(cells=[CellRun(index=4, type="code", status="timeout")]),
                     OBSERVED, "cell(s) 5"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_status_with_a_message_that_says_why(case):
    ending, execution, records, words = CASES[case]
    status, message = classify(ending, execution, records, LIMITS)
    assert status == case.split(" (")[0]
    assert words in message


def test_every_status_of_the_table_is_reached_and_nothing_else():
    reached = {classify(*CASES[case][:3], LIMITS)[0] for case in CASES}
    assert reached == set(STATUSES) - {"invalid-output"}  # read_back decides that one, before classify
    assert STATUSES["sandbox-error"].fault == "machine" and STATUSES["memory"].fault == "student"


def test_a_wall_timeout_wins_over_what_the_code_raised():
    execution = notebook(cells=[CellRun(index=0, type="code", status="error", error="MemoryError: ")])
    assert classify(Ending(timed_out=True), execution, OBSERVED, LIMITS)[0] == "timeout-wall"


def test_the_setup_failing_is_never_blamed_on_the_student():
    execution = notebook(kernel_died=True, died_in_cell=0)  # a record the student's code could have forged
    assert classify(Ending(setup_error="boom"), execution, [], LIMITS)[0] == "sandbox-error"


# A 60 s wall budget on one thread: the run stopped at its deadline, having used `cpu` seconds of
# CPU and waited `waited` seconds (summed over its threads) for one.
@pytest.mark.parametrize("cpu, waited, status", [
    (5.0, 50.0, "sandbox-error"),  # ready to run the whole time, but got a tenth of a core: a busy machine
    (20.0, 40.0, "sandbox-error"),  # a third of a core
    (1.0, 0.5, "timeout-wall"),  # slept or blocked: it never waited for a CPU
    (2.0, 20.0, "timeout-wall"),  # a slow start on a busy machine, then it slept: the machine took under half
    (45.0, 35.0, "timeout-wall"),  # it got more CPU than it waited for: slow code, not a busy machine
    (60.0, 7000.0, "timeout-wall"),  # a fork bomb: its own crowd of processes made it wait
    (5.0, None, "timeout-wall"),  # no run-queue statistics on this kernel: it cannot be told
])
def test_a_wall_timeout_is_the_machines_fault_only_when_the_run_was_starved(cpu, waited, status):
    ending = Ending(timed_out=True, cpu_seconds=cpu, waited_seconds=waited)
    found, message = classify(ending, notebook(), OBSERVED, LIMITS | {"threads": 1})
    assert found == status
    if status == "sandbox-error":
        assert "too busy" in message and f"{cpu:.1f}s of CPU" in message and f"waited {waited:.1f}s" in message


def test_a_starved_run_may_use_every_thread_it_is_allowed():
    """Four math threads starved for the whole minute want four minutes of CPU: within their allowance."""
    ending = Ending(timed_out=True, cpu_seconds=40.0, waited_seconds=200.0)
    assert classify(ending, notebook(), OBSERVED, LIMITS | {"threads": 4})[0] == "sandbox-error"
    assert classify(ending, notebook(), OBSERVED, LIMITS | {"threads": 1})[0] == "timeout-wall"
