"""How much CPU a run's processes used, and how long they waited for a CPU: read from /proc.

Measured when a run reaches its wall deadline, just before it is stopped, to tell a slow or
stuck submission from a busy machine (the rule is ``limits.machine_starved``). Two numbers:

* CPU time: user plus system time of every live process, including what each one's finished
  children used (``/proc/PID/stat``: utime, stime, cutime, cstime);
* time spent runnable but waiting for a CPU, summed over every thread of those processes
  (``/proc/PID/task/TID/schedstat``, second field). A sleeping process does not wait; a process
  that wants a CPU on a machine whose cores are busy does.

The namespace supervisor reads the sandbox's own ``/proc`` (its PID namespace); the ``process``
level reads the host's for the runner and its descendants.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Usage:
    """``waited_seconds`` is None where the kernel keeps no run-queue statistics (no schedstat)."""

    cpu_seconds: float
    waited_seconds: float | None


def measure(pids: Iterable[int], proc: str = "/proc") -> Usage:
    """The CPU used and the run-queue wait of the processes ``pids`` (those that ended meanwhile,
    and their threads, are left out)."""
    cpu_ticks = 0
    waited_ns: int | None = None
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()  # after the command name, which may hold spaces
        cpu_ticks += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
        for waited in _thread_waits(f"{proc}/{pid}/task"):
            waited_ns = (waited_ns or 0) + waited
    return Usage(cpu_seconds=cpu_ticks / _TICKS, waited_seconds=None if waited_ns is None else waited_ns / 1e9)


def _thread_waits(task_dir: str) -> list[int]:
    """Nanoseconds each thread spent runnable but not running."""
    found = []
    try:
        threads = os.listdir(task_dir)
    except OSError:
        return found
    for tid in threads:
        try:
            with open(f"{task_dir}/{tid}/schedstat") as f:
                found.append(int(f.read().split()[1]))
        except (OSError, IndexError, ValueError):
            continue
    return found
