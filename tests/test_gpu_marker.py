"""The ``gpu`` marker (tests/conftest.py): a test that needs CUDA is skipped where there is none,
and fails where the run promises a GPU (``GRADER_REQUIRE_GPU=1``, as on a GPU runner in CI)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import PROJECT

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the gpu tests run")
GPU_TEST = "tests/test_train.py::test_cuda_training_is_reproducible_with_mixed_precision"


def run_gpu_test(**env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "GRADER_REQUIRE_GPU"} | env
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:xdist",
                           GPU_TEST], cwd=PROJECT, capture_output=True, text=True, env=environment, timeout=300)


def test_without_a_gpu_the_gpu_tests_skip_saying_why():
    done = run_gpu_test()
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout and "needs a CUDA device" in done.stdout


def test_a_promised_gpu_that_is_missing_is_an_error():
    done = run_gpu_test(GRADER_REQUIRE_GPU="1")
    assert done.returncode == 1, done.stdout
    assert "GRADER_REQUIRE_GPU is set (this run promises a GPU), but torch sees no CUDA device" in done.stdout
