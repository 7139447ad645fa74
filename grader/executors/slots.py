"""The batch's parallel slots: how many submissions run at once, and which GPU each one sees.

A slot's index is unique among the slots of a batch; ``gpu`` is the device name the sandbox
puts in ``CUDA_VISIBLE_DEVICES``. Sandbox uids do not come from slots: each namespace run leases
one host-wide (``grader.sandbox.uid_lease``), so two batches on one machine never share one.
"""

from __future__ import annotations

import os
import re
import subprocess
from functools import lru_cache

from grader.errors import GraderError
from grader.sandbox import Slot

_DEVICE = re.compile(r"^(\d+|GPU-[0-9A-Za-z-]+|MIG-[0-9A-Za-z/-]+)$")  # what CUDA_VISIBLE_DEVICES accepts


def visible_gpus() -> list[str]:
    """Every CUDA device this process may use, named as CUDA_VISIBLE_DEVICES names them.

    Found without importing torch (seconds, and a CUDA context the grader does not need): the
    grader's own ``CUDA_VISIBLE_DEVICES`` when set (its entries are the physical names, so a
    sandbox given ``2`` sees the machine's device 2), else the GPUs ``nvidia-smi -L`` lists.
    """
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        found = []
        for name in (part.strip() for part in listed.split(",")):
            if not _DEVICE.match(name):
                break  # CUDA ignores every device after the first invalid entry ("-1" hides them all)
            found.append(name)
        return found
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    return [m.group(1) for line in done.stdout.splitlines() if (m := re.match(r"GPU (\d+):", line))]


def device_kind(gpu: str | None) -> str:
    """The kind of device a slot gives its sandbox, as calibrations are kept: ``cpu``, or
    ``cuda:<device name>``. This is the host's own knowledge of the slot; which calibration judges
    an accuracy check is never taken from what the sandbox reports."""
    return "cpu" if gpu is None else f"cuda:{_gpu_name(gpu)}"


@lru_cache(maxsize=None)
def _gpu_name(gpu: str) -> str:
    """The product name of one device (``NVIDIA H200``), as torch's ``get_device_name`` gives it."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", gpu],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraderError(f"cannot name CUDA device {gpu}: {exc}", where="--gpus",
                          hint="check that nvidia-smi runs on this machine") from None
    name = done.stdout.strip().splitlines()[0].strip() if done.returncode == 0 and done.stdout.strip() else ""
    if not name:
        raise GraderError(f"nvidia-smi does not know CUDA device {gpu}: {(done.stderr or done.stdout).strip()[:200]}",
                          where="--gpus", hint="give a device that `nvidia-smi -L` lists")
    return name


def parse_gpus(text: str) -> list[str]:
    """``--gpus``: ``all`` (every visible device) or a list such as ``0,1``."""
    if text.strip() == "all":
        gpus = visible_gpus()
        if not gpus:
            raise GraderError("--gpus all, but no CUDA device is visible (CUDA_VISIBLE_DEVICES and nvidia-smi "
                              "list none)", where="--gpus", hint="leave out --gpus to grade on the CPU")
        return gpus
    gpus = [part.strip() for part in text.split(",")]
    bad = [g for g in gpus if not _DEVICE.match(g)]
    if bad:
        raise GraderError(f"not a CUDA device: {', '.join(repr(b) for b in bad)}", where="--gpus",
                          hint="give device numbers such as 0,1 (or GPU-/MIG- UUIDs), or `all`")
    if len(set(gpus)) != len(gpus):
        raise GraderError(f"a device is listed twice in {text!r}", where="--gpus",
                          hint="use --per-gpu K to run K submissions on one device")
    visible = visible_gpus()
    if not visible:
        raise GraderError(f"--gpus {text.strip()}, but no CUDA device is visible (CUDA_VISIBLE_DEVICES and "
                          "nvidia-smi list none)", where="--gpus", hint="leave out --gpus to grade on the CPU")
    # a number must be one this process may use; a UUID is left to CUDA (nvidia-smi -L lists numbers)
    missing = [g for g in gpus if g.isdigit() and visible[0].isdigit() and g not in visible]
    if missing:
        raise GraderError(f"no CUDA device {', '.join(missing)} on this machine; the visible ones are "
                          f"{', '.join(visible)}", where="--gpus", hint="name visible devices, or use --gpus all")
    return gpus


def plan_slots(workers: int | None, gpus: list[str], per_gpu: int = 1) -> list[Slot]:
    """The slots of a batch.

    Args:
        workers: submissions at once; None means one per CPU core, or with GPUs every GPU place.
        gpus: devices to share out (empty: CPU only).
        per_gpu: submissions that may share one device.

    Slots take the devices in turn (0, 1, 0, 1, ...), so fewer workers than places still spread
    over every device and no device gets more than ``per_gpu``.
    """
    if not gpus:
        return [Slot(index=i) for i in range(workers or os.cpu_count() or 1)]
    places = len(gpus) * per_gpu
    return [Slot(index=i, gpu=gpus[i % len(gpus)]) for i in range(min(workers or places, places))]
