"""Training and evaluation for the CNN assignment: the reference's ``trainer.py``.

``compute_loss_and_accuracy`` is the part students complete; ``Trainer`` is the course's training
class (mini-batch SGD, validation twice per epoch, early stopping on the validation loss, the
best model checkpointed), with the course's constructor and attributes.
"""

import collections
import pathlib
import time
import typing

import torch
from torch import nn

import utils


def compute_loss_and_accuracy(dataloader: torch.utils.data.DataLoader, model: nn.Module,
                              loss_criterion: nn.modules.loss._Loss) -> typing.Tuple[float, float]:
    """Average loss per sample and accuracy of ``model`` over every batch of ``dataloader``.

    The criterion returns the mean over its batch, so each batch's loss is weighted by its size:
    a mean of batch means would overweight a small last batch.
    """
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.no_grad():
        for X_batch, Y_batch in dataloader:
            X_batch, Y_batch = utils.to_cuda([X_batch, Y_batch])
            output = model(X_batch)
            batch = Y_batch.shape[0]
            total_loss += loss_criterion(output, Y_batch).item() * batch
            correct += (output.argmax(dim=1) == Y_batch).sum().item()
            seen += batch
    model.train(was_training)
    return total_loss / seen, correct / seen


class Trainer:
    """Trains ``model`` on ``dataloaders`` = (train, validation, test) with SGD and cross-entropy.

    ``train_history`` and ``validation_history`` map ``"loss"`` and ``"accuracy"`` to ordered
    dicts ``{global_step: value}`` (training accuracy is not tracked per step, only validation's).
    """

    def __init__(self, batch_size: int, learning_rate: float, early_stop_count: int, epochs: int,
                 model: nn.Module, dataloaders: typing.List[torch.utils.data.DataLoader]):
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stop_count = early_stop_count
        self.epochs = epochs
        self.loss_criterion = nn.CrossEntropyLoss()
        self.model = utils.to_cuda(model)
        self.optimizer = torch.optim.SGD(self.model.parameters(), self.learning_rate)
        self.dataloader_train, self.dataloader_val, self.dataloader_test = dataloaders
        # validate twice per epoch
        self.num_steps_per_val = max(1, len(self.dataloader_train) // 2)
        self.global_step = 0
        self.start_time = time.time()
        self.train_history = dict(loss=collections.OrderedDict(), accuracy=collections.OrderedDict())
        self.validation_history = dict(loss=collections.OrderedDict(), accuracy=collections.OrderedDict())
        self.checkpoint_dir = pathlib.Path("checkpoints")

    def validation_step(self):
        """Record the validation loss and accuracy at the current step; back to train mode after."""
        loss, accuracy = compute_loss_and_accuracy(self.dataloader_val, self.model, self.loss_criterion)
        self.validation_history["loss"][self.global_step] = loss
        self.validation_history["accuracy"][self.global_step] = accuracy
        used = time.time() - self.start_time
        print(f"Epoch: {self.epoch:>1}", f"Batches per seconds: {self.global_step / max(used, 1e-9):.2f}",
              f"Global step: {self.global_step:>6}", f"Validation Loss: {loss:.2f}",
              f"Validation Accuracy: {accuracy:.3f}", sep=", ")
        self.model.train()

    def should_early_stop(self) -> bool:
        """True when the first of the last ``early_stop_count`` validation losses is the lowest of them."""
        losses = list(self.validation_history["loss"].values())
        if len(losses) < self.early_stop_count:
            return False
        recent = losses[-self.early_stop_count:]
        if recent[0] == min(recent):
            print("Early stop criteria met")
            return True
        return False

    def train_step(self, X_batch: torch.Tensor, Y_batch: torch.Tensor) -> float:
        """One gradient step on a batch; returns its loss."""
        X_batch, Y_batch = utils.to_cuda([X_batch, Y_batch])
        loss = self.loss_criterion(self.model(X_batch), Y_batch)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.detach().cpu().item()

    def train(self):
        """Train for ``epochs`` epochs or until early stopping, validating twice per epoch."""

        def should_validate_model():
            return self.global_step % self.num_steps_per_val == 0

        for epoch in range(self.epochs):
            self.epoch = epoch
            for X_batch, Y_batch in self.dataloader_train:
                self.train_history["loss"][self.global_step] = self.train_step(X_batch, Y_batch)
                self.global_step += 1
                if should_validate_model():
                    self.validation_step()
                    self.save_model()
                    if self.should_early_stop():
                        print("Early stopping.")
                        return

    def save_model(self):
        """Checkpoint the model; it is also the best one when its validation loss is the lowest so far."""

        def is_best_model():
            losses = self.validation_history["loss"]
            return losses[self.global_step] == min(losses.values())

        state_dict = self.model.state_dict()
        filepath = self.checkpoint_dir.joinpath(f"{self.global_step}.ckpt")
        utils.save_checkpoint(state_dict, filepath, is_best_model())

    def load_best_model(self):
        """Replace the model's weights with the best checkpoint's (no change when there is none)."""
        state_dict = utils.load_best_checkpoint(self.checkpoint_dir)
        if state_dict is None:
            print(f"Could not load best checkpoint. Did not find under: {self.checkpoint_dir}")
            return
        self.model.load_state_dict(state_dict)
