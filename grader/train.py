"""The harness's own training loop: fast, deterministic, and the same for every submission.

Used where a rubric trains a student's model with the harness's loop (so an accuracy check grades
the model, not the student's loop). In the spirit of airbench: every hyper-parameter is in one
dict, the whole data set is moved to the device once, and the hot loop does no per-sample Python
work. A batch is a slice of one permutation tensor per epoch, used to index the resident images.

Mixed precision and channels-last memory are used where they pay off: bf16 autocast on CUDA (fp16
with loss scaling on GPUs without bf16); channels-last for convolutional models on 4-D inputs. On
the CPU ``auto`` is float32 (``grader.numerics.CPU_PRECISION``): bf16 is only fast on CPUs that
compute it natively, and a precision that follows the CPU would make a grade follow the machine.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F

from grader.errors import GraderError

HYPERPARAMETERS: dict[str, Any] = {
    "epochs": 3,
    "batch_size": 64,
    "lr": 0.05,               # peak learning rate, reached after the warm-up
    "warmup_fraction": 0.1,   # share of the steps spent ramping the rate up; it then decays linearly to 0
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "label_smoothing": 0.0,
    "seed": 0,
    "precision": "auto",      # auto | fp32 | bf16 | fp16
    "channels_last": "auto",  # auto | True | False
    "deterministic": True,    # on CUDA: deterministic cuDNN kernels (a little slower)
}


@dataclass
class Trained:
    """A trained model and how its training went."""

    model: nn.Module
    epoch_losses: list[float]
    seconds: float
    samples_per_second: float
    device: str
    precision: str
    channels_last: bool
    hyperparameters: dict[str, Any] = field(default_factory=dict)


def train(model: nn.Module | Callable[[], nn.Module], images: torch.Tensor, labels: torch.Tensor,
          hyperparameters: dict[str, Any] | None = None, device: str | torch.device | None = None) -> Trained:
    """Train ``model`` with SGD and cross-entropy; return it with the mean training loss of each epoch.

    Args:
        model: a module, or a function building one (built after seeding, so its initial weights
            are reproducible too).
        images: ``[N, C, H, W]`` or ``[N, H, W]``; uint8 images are scaled to [0, 1].
        labels: class indices ``[N]``.
        hyperparameters: overrides of ``HYPERPARAMETERS`` (unknown names are an error).
        device: where to train; default CUDA when available, else CPU.

    The same seed, data and device give the same losses and weights (on CUDA with
    ``deterministic``).
    """
    hyper = _merged(hyperparameters)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(hyper["seed"])
    order_generator = torch.Generator().manual_seed(hyper["seed"])
    model = (model if isinstance(model, nn.Module) else model()).to(device)
    channels_last = channels_last_for(hyper["channels_last"], model, images)
    precision = _precision(hyper["precision"], device)
    with _deterministic_kernels(device, hyper["deterministic"]):
        start = time.perf_counter()
        x, y = as_inputs(images, device, channels_last), labels.to(device, torch.long)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        losses = _fit(model, x, y, hyper, precision, order_generator)
        seconds = time.perf_counter() - start
    samples = len(y) * hyper["epochs"]
    return Trained(model=model, epoch_losses=losses, seconds=seconds, samples_per_second=samples / seconds,
                   device=str(device), precision=precision, channels_last=channels_last, hyperparameters=hyper)


def _fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, hyper: dict[str, Any], precision: str,
         order_generator: torch.Generator) -> list[float]:
    n, batch = len(y), hyper["batch_size"]
    steps_per_epoch = -(-n // batch)
    optimizer = torch.optim.SGD(model.parameters(), lr=hyper["lr"], momentum=hyper["momentum"],
                                nesterov=hyper["nesterov"] and hyper["momentum"] > 0,
                                weight_decay=hyper["weight_decay"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _warmup_then_decay(steps_per_epoch * hyper["epochs"], hyper["warmup_fraction"]))
    scaler = torch.amp.GradScaler(x.device.type, enabled=precision == "fp16")
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    model.train()
    losses = []
    for _ in range(hyper["epochs"]):
        order = torch.randperm(n, generator=order_generator).to(x.device)
        # summed on the device: reading a loss back every step would wait for the GPU each time
        total = torch.zeros((), device=x.device)
        for first in range(0, n, batch):
            index = order[first:first + batch]
            with _autocast(x.device, autocast_dtype):
                loss = F.cross_entropy(model(x[index]), y[index], label_smoothing=hyper["label_smoothing"])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            total += loss.detach().float() * len(index)
        losses.append(total.item() / n)
    return losses


def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 1024, channels_last: Any = "auto") -> torch.Tensor:
    """Class predictions (int64, on the CPU) of ``model`` for ``images``, in evaluation mode.

    Images are prepared as ``train`` prepares them (``channels_last`` as its hyper-parameter: a
    model that flattens with ``.view`` needs False), on the model's device; the model's mode is
    restored afterwards.
    """
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    channels_last = channels_last_for(channels_last, model, images)
    was_training = model.training
    model.eval()
    predictions = []
    try:
        with torch.inference_mode():
            for first in range(0, len(images), batch_size):
                x = as_inputs(images[first:first + batch_size], device, channels_last)
                predictions.append(model(x).argmax(dim=1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.long)


def _merged(overrides: dict[str, Any] | None) -> dict[str, Any]:
    unknown = sorted(set(overrides or {}) - set(HYPERPARAMETERS))
    if unknown:
        raise GraderError(f"unknown training hyper-parameter(s): {', '.join(unknown)}", where="grader.train",
                          hint=f"known: {', '.join(HYPERPARAMETERS)}")
    return HYPERPARAMETERS | (overrides or {})


def as_inputs(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Images as the loop feeds them to a model: float32 on ``device`` (uint8 is copied as bytes
    and scaled there, 4x less to move), a channel added to ``[N, H, W]``, channels-last if asked."""
    x = images.to(device)
    x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def channels_last_for(choice: Any, model: nn.Module, images: torch.Tensor) -> bool:
    """The ``channels_last`` hyper-parameter decided: ``auto`` is True for a model with a
    ``Conv2d`` trained on images."""
    if choice != "auto":
        return bool(choice)
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return has_conv and images.dim() in (3, 4)


def _precision(choice: str, device: torch.device) -> str:
    if choice not in ("auto", "fp32", "bf16", "fp16"):
        raise GraderError(f"unknown precision {choice!r}", where="grader.train", hint="auto, fp32, bf16 or fp16")
    if choice != "auto":
        return choice
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    from grader.numerics import CPU_PRECISION

    return CPU_PRECISION


def _warmup_then_decay(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    warmup = max(1, round(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


@contextlib.contextmanager
def _deterministic_kernels(device: torch.device, wanted: bool) -> Iterator[None]:
    """On CUDA, deterministic cuDNN kernels for the duration, then the caller's settings back."""
    if device.type != "cuda" or not wanted:
        yield
        return
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved
