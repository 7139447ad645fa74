"""The harness's trainer: learns, is reproducible, and predicts in batches without side effects."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from grader import data, train
from grader.data import synthetic, tensors
from grader.errors import GraderError


@pytest.fixture(scope="module")
def mnist() -> dict[str, torch.Tensor]:
    root = synthetic.ensure("mnist", data.synthetic_root())
    (x, y), (test_x, test_y) = tensors.load("mnist", root, True), tensors.load("mnist", root, False)
    return {"x": x, "y": y, "test_x": test_x, "test_y": test_y}


def tiny_cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10))


def test_tiny_cnn_learns_synthetic_mnist_in_seconds(mnist):
    start = time.process_time()  # CPU time: the wall clock of a shared test machine says little
    trained = train.train(tiny_cnn, mnist["x"], mnist["y"], {"epochs": 3}, device="cpu")
    accuracy = (train.predict(trained.model, mnist["test_x"]) == mnist["test_y"]).float().mean().item()
    assert accuracy > 0.9, trained.epoch_losses
    assert len(trained.epoch_losses) == 3 and trained.epoch_losses[-1] < trained.epoch_losses[0]
    assert time.process_time() - start < 30  # about a second on idle cores
    assert trained.channels_last and trained.device == "cpu"


def test_same_seed_gives_identical_losses_and_weights(mnist):
    first = train.train(tiny_cnn, mnist["x"][:512], mnist["y"][:512], {"epochs": 2, "seed": 7}, device="cpu")
    second = train.train(tiny_cnn, mnist["x"][:512], mnist["y"][:512], {"epochs": 2, "seed": 7}, device="cpu")
    assert first.epoch_losses == second.epoch_losses
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


def test_another_seed_gives_another_run(mnist):
    first = train.train(tiny_cnn, mnist["x"][:256], mnist["y"][:256], {"epochs": 1, "seed": 1}, device="cpu")
    second = train.train(tiny_cnn, mnist["x"][:256], mnist["y"][:256], {"epochs": 1, "seed": 2}, device="cpu")
    assert first.epoch_losses != second.epoch_losses


def test_a_built_model_is_trained_in_place_of_a_builder(mnist):
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    trained = train.train(model, mnist["x"][:256], mnist["y"][:256], {"epochs": 1}, device="cpu")
    assert trained.model is model and not trained.channels_last


def test_predict_is_independent_of_batch_size_and_restores_the_mode(mnist):
    model = tiny_cnn().train()
    predictions = train.predict(model, mnist["test_x"], batch_size=1000)
    assert predictions.dtype == torch.int64 and predictions.shape == (300,)
    assert torch.equal(predictions, train.predict(model, mnist["test_x"], batch_size=7))
    assert model.training
    assert train.predict(model, mnist["test_x"][:0]).shape == (0,)


def test_uint8_and_scaled_float_images_train_alike(mnist):
    as_bytes = train.train(tiny_cnn, mnist["x"][:256], mnist["y"][:256], {"epochs": 1}, device="cpu")
    as_floats = train.train(tiny_cnn, mnist["x"][:256].float() / 255, mnist["y"][:256], {"epochs": 1}, device="cpu")
    assert as_bytes.epoch_losses == pytest.approx(as_floats.epoch_losses, rel=1e-5)


def test_unknown_hyperparameter_is_refused_with_the_known_ones():
    with pytest.raises(GraderError, match="unknown training hyper-parameter") as err:
        train.train(tiny_cnn, torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.long), {"epoch": 2})
    assert "epochs" in err.value.hint


def test_auto_precision_on_the_cpu_is_fp32_whatever_the_cpu_supports():
    """A precision that followed the CPU (bf16 where native) made grades follow the machine."""
    assert train._precision("auto", torch.device("cpu")) == "fp32"


def test_bf16_on_cpu_trains_when_asked(mnist):
    trained = train.train(tiny_cnn, mnist["x"][:128], mnist["y"][:128], {"epochs": 1, "precision": "bf16"},
                          device="cpu")
    assert trained.precision == "bf16" and torch.isfinite(torch.tensor(trained.epoch_losses)).all()


@pytest.mark.gpu  # skipped without CUDA, an error with GRADER_REQUIRE_GPU=1 (tests/conftest.py)
def test_cuda_training_is_reproducible_with_mixed_precision(mnist):
    first = train.train(tiny_cnn, mnist["x"], mnist["y"], {"epochs": 2}, device="cuda")
    second = train.train(tiny_cnn, mnist["x"], mnist["y"], {"epochs": 2}, device="cuda")
    assert first.precision in ("bf16", "fp16") and first.epoch_losses == second.epoch_losses
    accuracy = (train.predict(first.model, mnist["test_x"]) == mnist["test_y"]).float().mean().item()
    assert accuracy > 0.9
