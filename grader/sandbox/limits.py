"""Resource limits of one run, turned into rlimits for the student's processes.

The rubric's ``limits:`` (with command-line overrides) is the single source. ``apply`` runs in the
process that is about to become (or to run) student code: the namespace supervisor's child before
it drops privileges, or the runner itself at the ``process`` level. Limits can only be lowered
afterwards, so student code cannot lift them.

CPU time is the limit the student answers for (``RLIMIT_CPU``, per process: ``timeout-cpu``).
The wall deadline is a backstop against code that never ends; when a run reaches it while the
machine, not the code, held it back, ``machine_starved`` says so and the run is the grader's
failure (``sandbox-error``, retried), never a ``timeout-wall`` charged to the student.
"""

from __future__ import annotations

import os
import resource
from typing import Any

MB = 2**20
CPU_GRACE_SECONDS = 5  # between the soft limit (SIGXCPU, classified) and the hard one (SIGKILL)
STARVED_WAIT_SHARE = 0.5  # of the wall budget: the machine, not the code, took most of the run's time
STARVED_DEMAND_SHARE = 1.5  # of the CPU allowance (wall x threads), room for a few helper threads


def threads(limits: dict[str, Any]) -> int:
    """Threads a run may use for math (``OMP_NUM_THREADS``): ``GRADER_THREADS``, else the batch's
    share of the cores (``threads`` in the limits, set from ``--workers``), else every core."""
    return int(os.environ.get("GRADER_THREADS") or limits.get("threads") or max(1, os.cpu_count() or 1))


def cpu_seconds(limits: dict[str, Any]) -> int:
    """The CPU-time limit of any one process: the rubric's, else wall time on every allowed thread."""
    explicit = limits.get("cpu_seconds")
    return int(explicit if explicit else float(limits["wall_seconds"]) * threads(limits)) + 1


def rlimits(limits: dict[str, Any], per_user_processes: bool) -> dict[int, tuple[int, int]]:
    """The rlimits for ``limits``; ``per_user_processes`` only where the sandbox has its own uid
    (RLIMIT_NPROC counts every process of the user, the grader's own too at the ``process`` level)."""
    cpu = cpu_seconds(limits)
    table = {
        resource.RLIMIT_CPU: (cpu, cpu + CPU_GRACE_SECONDS),
        resource.RLIMIT_DATA: (int(limits["memory_mb"]) * MB,) * 2,
        resource.RLIMIT_FSIZE: (int(limits["disk_mb"]) * MB,) * 2,
        resource.RLIMIT_NOFILE: (int(limits["open_files"]),) * 2,
        resource.RLIMIT_CORE: (0, 0),
    }
    if per_user_processes:
        table[resource.RLIMIT_NPROC] = (int(limits["processes"]),) * 2
    return table


def apply(limits: dict[str, Any], per_user_processes: bool) -> None:
    """Lower this process's rlimits (inherited by everything it starts); never raise a limit."""
    for which, (soft, hard) in rlimits(limits, per_user_processes).items():
        current_soft, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
        resource.setrlimit(which, (min(soft, hard), hard))


def machine_starved(cpu_seconds: float, waited_seconds: float | None, limits: dict[str, Any]) -> bool:
    """Whether a run stopped at its wall deadline was held back by a busy machine, not by its code.

    ``cpu_seconds`` is what the run's processes used, ``waited_seconds`` how long their threads
    were ready to run but waited for a CPU, both up to the deadline. All three must hold:

    * it waited at least ``STARVED_WAIT_SHARE`` of the wall budget: the machine took most of the
      run's time (code that sleeps, blocks on input or deadlocks does not wait for a CPU, so it
      stays ``timeout-wall``, even when a busy machine slowed its start a little);
    * it waited longer than it ran: it got less than half of the CPU it was ready to use;
    * it asked for no more than its allowance (``cpu + waited`` within ``STARVED_DEMAND_SHARE``
      x ``wall_seconds`` x ``threads``): a fork bomb or a storm of busy threads waits a lot too,
      but because of its own crowd of runnable tasks, and stays its own fault.

    ``waited_seconds`` None (the kernel keeps no run-queue statistics) means it cannot be told: False.
    """
    if waited_seconds is None:
        return False
    wall = float(limits["wall_seconds"])
    return (waited_seconds >= STARVED_WAIT_SHARE * wall and waited_seconds > cpu_seconds
            and cpu_seconds + waited_seconds <= STARVED_DEMAND_SHARE * wall * threads(limits))
