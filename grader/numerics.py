"""The one numeric configuration under which graded models train and are evaluated.

A calibrated threshold only means something if a submission is trained exactly as the reference
was when it was calibrated. Floating-point sums depend on how work is split across threads, on
the precision, on which kernels the CPU's instruction set selects and on nondeterministic GPU
kernels; left free, the same submission scored 0.918 with two math threads and 0.894 with one.
So everything that trains or evaluates for a grade does it here, under ``pinned()``:

* ``THREADS`` math threads (intra-op), whatever ``--workers`` or the machine's load: one thread
  gives the same sums everywhere and wastes nothing when every core already runs a submission;
* float32 on the CPU (the harness's trainer never picks bf16 there), and deterministic algorithms
  (cuDNN's deterministic kernels, no benchmark autotuning) on both devices.

``describe(device)`` is that configuration as data, with what still differs between machines
(torch's version, the CPU's instruction set, the GPU model). Calibrations store it and a result
records it; a calibration made under another configuration is flagged as such, never silently
applied (``grader.profiles.truth_for``).

One difference is recorded but not compared: the CPU model (``cpu``). Two CPUs with the same
instruction-set level can still pick different convolution kernels (oneDNN's AMX or VNNI paths),
whose sums round differently, so a training there follows another trajectory, as a fresh seed
would. Requiring the calibration's own CPU model would flag every shipped calibration on most
machines; instead a threshold is set to hold over fresh seeds (``bench/calibration_tail.py``
measures that), and the recorded model tells two machines' results apart when they differ.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

THREADS = 1
CPU_PRECISION = "fp32"
# Keys of ``describe`` that must agree between a calibration and the run it is applied to.
MUST_MATCH = ("threads", "cpu_precision", "deterministic", "torch", "cpu_capability", "device")


@contextmanager
def pinned() -> Iterator[None]:
    """Train and evaluate under the pinned configuration, then give back the caller's settings."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what deterministic cuBLAS needs
    cudnn = torch.backends.cudnn
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled(), cudnn.deterministic, cudnn.benchmark)
    torch.set_num_threads(THREADS)
    # warn_only: an op without a deterministic kernel warns instead of failing the student's model
    torch.use_deterministic_algorithms(True, warn_only=True)
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])
        cudnn.deterministic, cudnn.benchmark = saved[3], saved[4]


def device_name(gpu: str | None) -> str:
    """How ``describe`` names the device of a slot with ``gpu`` (None: the CPU)."""
    return "cpu" if gpu is None else f"cuda device {gpu}"


def describe(device: str = "cpu") -> dict[str, Any]:
    """The configuration a run on ``device`` (``cpu`` or ``cuda:<name>``) trains under, as plain data."""
    import torch

    return {"threads": THREADS, "cpu_precision": CPU_PRECISION, "deterministic": True,
            "torch": torch.__version__.split("+")[0], "cpu_capability": cpu_capability(), "cpu": cpu_model(),
            "device": device}


def cpu_capability() -> str:
    """The instruction set torch's CPU kernels were chosen for (e.g. ``AVX2``, ``AVX512``)."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # older builds
        return "unknown"


# CPU features that change which kernels oneDNN and torch choose (reported when present)
KERNEL_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "asimd", "sve")


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU as ``/proc/cpuinfo`` names it, with the family and model numbers and the features in
    ``KERNEL_FEATURES`` it has; the platform's name where there is no ``/proc/cpuinfo``."""
    import platform

    if cpuinfo is None:
        return _this_cpu()
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:  # the first processor's block is enough
                break
            continue
        fields.setdefault(key.strip().lower(), value.strip())
    name = fields.get("model name") or fields.get("cpu model") or platform.machine() or "unknown"
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    numbers = ""
    if "cpu family" in fields and "model" in fields:
        numbers = f"family {fields['cpu family']} model {fields['model']}"
    features = ", ".join(f for f in KERNEL_FEATURES if f in flags)
    details = "; ".join(part for part in (numbers, features) if part)
    return f"{name} ({details})" if details else name


@functools.cache
def _this_cpu() -> str:
    """``cpu_model`` of this machine, read once per process (every result records it)."""
    import platform

    try:
        return cpu_model(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return platform.processor() or platform.machine() or "unknown"


def differences(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """What differs between a calibration's configuration and the current one, in words;
    a calibration that recorded none (made before this module existed) differs in everything."""
    if not recorded:
        return ["it records no numeric configuration (made by an older grader)"]
    return [f"{key} {recorded.get(key)!r} there, {current.get(key)!r} here" for key in MUST_MATCH
            if recorded.get(key) != current.get(key)]
