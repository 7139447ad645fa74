"""Slot planning: CPU workers, GPU devices shared out in turn, device detection without torch,
and the command-line options that feed them."""

from __future__ import annotations

import os

import pytest

from grader.errors import GraderError
from grader.executors import slots
from grader.executors.slots import parse_gpus, plan_slots, visible_gpus
from grader.sandbox import Slot
from tests.conftest import FIXTURES
from tests.conftest import run_cli as grader


def test_cpu_slots_default_to_one_per_core():
    assert plan_slots(None, []) == [Slot(index=i) for i in range(os.cpu_count() or 1)]
    assert plan_slots(3, []) == [Slot(0), Slot(1), Slot(2)]


def test_gpu_slots_take_the_devices_in_turn():
    assert [(s.index, s.gpu) for s in plan_slots(None, ["0", "1"], per_gpu=2)] == [
        (0, "0"), (1, "1"), (2, "0"), (3, "1")]


def test_fewer_workers_than_gpu_places_still_spread_over_the_devices():
    assert [(s.index, s.gpu) for s in plan_slots(3, ["0", "1"], per_gpu=4)] == [(0, "0"), (1, "1"), (2, "0")]


def test_more_workers_than_gpu_places_are_capped():
    assert [s.gpu for s in plan_slots(16, ["3"], per_gpu=2)] == ["3", "3"]


@pytest.mark.parametrize("listed, expected", [
    ("0,1", ["0", "1"]), ("2", ["2"]), ("", []), ("-1", []), ("1,-1,2", ["1"]),
    ("GPU-8a3c1d2e-0000-1111-2222-333344445555", ["GPU-8a3c1d2e-0000-1111-2222-333344445555"]),
])
def test_visible_gpus_follow_cuda_visible_devices(monkeypatch, listed, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
    assert visible_gpus() == expected


def test_visible_gpus_ask_nvidia_smi_when_nothing_is_set(monkeypatch, tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\n[ \"$1\" = -L ] || exit 9\n"
                    "echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa)'\n"
                    "echo '  MIG 1g.10gb     Device  0: (UUID: MIG-bbbb)'\n"
                    "echo 'GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-cccc)'\n")
    fake.chmod(0o755)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert visible_gpus() == ["0", "1"]


def test_no_nvidia_smi_means_no_gpus(monkeypatch, tmp_path):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert visible_gpus() == []
    with pytest.raises(GraderError) as caught:
        parse_gpus("all")
    assert caught.value.where == "--gpus" and "no CUDA device is visible" in caught.value.what


def test_gpu_lists_are_checked(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert parse_gpus("0, 2") == ["0", "2"]
    with pytest.raises(GraderError, match="not a CUDA device: 'x'"):
        parse_gpus("0,x")
    with pytest.raises(GraderError, match="listed twice"):
        parse_gpus("1,1")


def test_a_device_that_is_not_there_is_an_error_not_a_cpu_run(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(GraderError) as caught:
        parse_gpus("1,3")
    assert caught.value.what == "no CUDA device 3 on this machine; the visible ones are 0, 1"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi: no GPU at all
    with pytest.raises(GraderError, match="--gpus 0, but no CUDA device is visible"):
        parse_gpus("0")


def test_bad_batch_options_are_usage_errors(tmp_path):
    (tmp_path / "a.py").write_text("answer = 42\n")
    tiny = str(FIXTURES / "tiny" / "rubric.yaml")
    done = grader("grade", tiny, str(tmp_path), "--out", str(tmp_path / "out"), "--workers", "0")
    assert done.returncode == 2 and "expected a whole number of at least 1, got '0'" in done.stderr
    done = grader("grade", tiny, str(tmp_path), "--out", str(tmp_path / "out"), "--per-gpu", "2")
    assert done.returncode == 2 and "--per-gpu needs --gpus" in done.stderr and "Traceback" not in done.stderr


def _fake_nvidia_smi(folder, monkeypatch, script: str) -> None:
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\n{script}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    slots._gpu_name.cache_clear()


def test_the_device_kind_of_a_slot_is_the_hosts_own_knowledge(tmp_path, monkeypatch):
    assert slots.device_kind(None) == "cpu"
    _fake_nvidia_smi(tmp_path, monkeypatch, 'test "$3 $4" = "-i 1" && echo "NVIDIA H200" || exit 6')
    assert slots.device_kind("1") == "cuda:NVIDIA H200"


def test_a_device_nvidia_smi_does_not_know_is_a_clear_error(tmp_path, monkeypatch):
    _fake_nvidia_smi(tmp_path, monkeypatch, 'echo "No devices were found" >&2; exit 6')
    with pytest.raises(GraderError) as caught:
        slots.device_kind("7")
    assert "nvidia-smi does not know CUDA device 7: No devices were found" in str(caught.value)
    slots._gpu_name.cache_clear()
