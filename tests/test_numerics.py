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


CPUINFO_SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16

processor\t: 1
model name\t: another core, not read
"""


def test_the_cpu_model_is_named_with_the_features_that_choose_kernels():
    assert numerics.cpu_model(CPUINFO_SAPPHIRE_RAPIDS) == (
        "Intel(R) Xeon(R) Platinum 8480+ (family 6 model 143; avx2, avx512f, avx512_vnni, avx512_bf16, amx_tile)")
    # an ARM /proc/cpuinfo names no model: the machine's architecture stands in, with its features
    assert numerics.cpu_model("processor\t: 0\nFeatures\t: fp asimd sve\n").endswith(" (asimd, sve)")
    assert numerics.describe("cpu")["cpu"] == numerics.cpu_model()


def test_a_calibration_from_another_cpu_model_still_applies():
    """Recorded, not compared: another CPU model's kernels round like a fresh seed, which the
    calibrated threshold is set to hold over (see grader.numerics)."""
    here = numerics.describe("cpu")
    assert numerics.differences(here | {"cpu": "Intel(R) Xeon(R) Platinum 8480+ (family 6 model 143)"}, here) == []
    assert numerics.differences({k: v for k, v in here.items() if k != "cpu"}, here) == []  # older calibrations
