"""Each synthetic set is learnable: a small network gets well above chance (10 %) in a few epochs."""

from __future__ import annotations

import pytest
from torch import nn

from grader import train
from grader.data import tensors


def small_mlp(channels: int, side: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, 64), nn.ReLU(), nn.Linear(64, 10))


@pytest.mark.parametrize("name, threshold", [("mnist", 0.6), ("fashion-mnist", 0.6), ("cifar10", 0.4)])
def test_small_network_learns_synthetic_set(synthetic_root, name, threshold):
    images, labels = tensors.load(name, synthetic_root, train=True)
    test_images, test_labels = tensors.load(name, synthetic_root, train=False)
    trained = train.train(lambda: small_mlp(images.shape[1], images.shape[2]), images, labels,
                          {"epochs": 3, "seed": 1}, device="cpu")
    accuracy = (train.predict(trained.model, test_images) == test_labels).float().mean().item()
    assert accuracy > threshold, f"{name}: {accuracy:.2f}"
