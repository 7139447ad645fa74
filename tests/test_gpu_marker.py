"""The ``gpu`` marker (tests/conftest.py): a test that needs CUDA is skipped where there is none,
and fails where the run promises a GPU (``GRADER_REQUIRE_GPU=1``, as on a GPU runner in CI)."""

from __future__ import annotations

import pytest
import torch

from tests import conftest

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU the gpu tests run")


class MarkedItem:
    """What the hook reads of a test item: its markers."""

    def __init__(self, *markers: str):
        self.markers = markers

    def get_closest_marker(self, name: str):
        return pytest.mark.gpu.mark if name in self.markers else None


def test_without_a_gpu_the_gpu_tests_skip_saying_why(monkeypatch):
    monkeypatch.delenv(conftest.REQUIRE_GPU, raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs a CUDA device"):
        conftest.pytest_runtest_setup(MarkedItem("gpu"))
    conftest.pytest_runtest_setup(MarkedItem("slow"))  # other tests are left alone


def test_a_promised_gpu_that_is_missing_is_an_error(monkeypatch):
    monkeypatch.setenv(conftest.REQUIRE_GPU, "1")
    with pytest.raises(pytest.fail.Exception,
                       match=r"GRADER_REQUIRE_GPU is set \(this run promises a GPU\), but torch sees no CUDA device"):
        conftest.pytest_runtest_setup(MarkedItem("gpu"))


def test_the_cuda_training_test_carries_the_marker():
    from tests import test_train

    assert test_train.test_cuda_training_is_reproducible_with_mixed_precision.pytestmark[0].name == "gpu"
