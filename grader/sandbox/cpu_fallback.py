"""Run code written for a GPU on a machine without one: CUDA placements become CPU placements.

Real notebooks hard-code ``device = "cuda"`` (the course machines had GPUs). On a grading or
student machine without CUDA that fails at the first ``.to(device)``, and every later check fails
with it. Inside the sandbox, and only when the submission's own text mentions CUDA, the runner
installs a torch function mode that rewrites device arguments naming CUDA to the CPU and turns
``Tensor.cuda()`` into a no-op move. The host says so on the student's page (``mentions``), so
the fallback is reported, never silent.

The mode sees torch functions and tensor methods (``Tensor.to``, ``Tensor.cuda``, factories with
``device=``), which is also how ``Module.to``/``Module.cuda`` move parameters. It does not
reach ``torch.load(map_location=...)`` or CUDA-only APIs (``torch.cuda.synchronize`` is made a
no-op, streams and events are not emulated).
"""

from __future__ import annotations

import re
from typing import Any

# Where a submission's text asks for CUDA: "cuda" as a device string, .cuda(), torch.device("cuda:0").
MENTIONS_CUDA = re.compile(r"""["']cuda(:\d+)?["']|\.cuda\(""")
MAX_MENTIONS = 5


def mentions(texts: list[tuple[str, str]]) -> list[str]:
    """``label: line`` for the first lines of ``(label, text)`` pairs that ask for CUDA."""
    found = []
    for label, text in texts:
        for line in text.splitlines():
            stripped = line.strip()
            if MENTIONS_CUDA.search(stripped) and not stripped.startswith("#"):
                found.append(f"{label}: {stripped[:120]}")
                if len(found) == MAX_MENTIONS:
                    return found
    return found


def _is_cuda(device: Any) -> bool:
    import torch

    if isinstance(device, torch.device):
        return device.type == "cuda"
    return isinstance(device, str) and device.split(":")[0].strip() == "cuda"


def _mode_class() -> type:
    import torch
    from torch.overrides import TorchFunctionMode

    cuda_methods = {torch.Tensor.cuda}

    class CudaOnCpu(TorchFunctionMode):
        """Rewrites CUDA device arguments to the CPU; counts how often it did."""

        redirected = 0

        def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            kwargs = dict(kwargs or {})
            if func in cuda_methods:
                CudaOnCpu.redirected += 1
                return args[0].cpu()
            changed = False
            if _is_cuda(kwargs.get("device")):
                kwargs["device"], changed = "cpu", True
            if func is torch.Tensor.to and any(_is_cuda(a) for a in args[1:]):
                args = tuple("cpu" if i and _is_cuda(a) else a for i, a in enumerate(args))
                changed = True
            CudaOnCpu.redirected += changed
            return func(*args, **kwargs)

    return CudaOnCpu


_installed: Any = None


def install() -> bool:
    """Enter the mode for the rest of the process when CUDA is not available; True if it did."""
    global _installed
    import torch

    if _installed is not None or torch.cuda.is_available():
        return _installed is not None
    _installed = _mode_class()()
    _installed.__enter__()
    torch.cuda.synchronize = lambda device=None: None  # nothing to wait for on the CPU
    return True


def redirecting() -> Any:
    """The mode as a context manager (tests; code that wants it for a block only)."""
    return _mode_class()()
