"""The pinned numeric configuration: one math thread, fp32 and deterministic kernels while a graded
model trains, whatever the caller had set, and the caller's settings back afterwards."""

from __future__ import annotations

import torch
from torch import nn

from grader import numerics, train


def _trained_losses(outer_threads: int) -> list[float]:
    torch.set_num_threads(outer_threads)
    generator = torch.Generator().manual_seed(3)
    x, y = torch.rand(256, 1, 12, 12, generator=generator), torch.randint(0, 4, (256,), generator=generator)

    def model() -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 10 * 10, 4))

    with numerics.pinned():
        return train.train(model, x, y, {"epochs": 2, "batch_size": 32}, device="cpu").epoch_losses


def test_training_under_the_pinned_configuration_does_not_follow_the_callers_threads():
    before = torch.get_num_threads()
    try:
        assert _trained_losses(1) == _trained_losses(2)  # bit for bit, not approximately
    finally:
        torch.set_num_threads(before)


def test_pinned_sets_one_thread_and_deterministic_kernels_then_restores_the_callers():
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    with numerics.pinned():
        assert torch.get_num_threads() == numerics.THREADS == 1
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before


def test_differences_name_each_setting_that_changed_and_an_old_calibration():
    here = numerics.describe("cpu")
    assert numerics.differences(dict(here), here) == []
    assert numerics.differences(here | {"cpu_capability": "AVX2", "threads": 4}, here) == [
        "threads 4 there, 1 here", f"cpu_capability 'AVX2' there, {here['cpu_capability']!r} here"]
    assert numerics.differences({}, here) == ["it records no numeric configuration (made by an older grader)"]
