import collections
import pathlib
import time

import torch
import torch.nn as nn

import utils

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def evaluate(loader, net, criterion):
    """returns (mean loss per image, accuracy) on the whole loader"""
    net.eval()
    loss_sum = 0
    n_correct = 0
    n_images = 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            logits = net(images)
            # criterion gives the mean of the batch, so multiply back by the batch size
            loss_sum += criterion(logits, labels).item() * images.size(0)
            _, predicted = torch.max(logits, 1)
            n_correct += (predicted == labels).sum().item()
            n_images += images.size(0)
    net.train()
    return loss_sum / n_images, n_correct / n_images


class Trainer:

    def __init__(self, batch_size, learning_rate, early_stop_count, epochs, model, dataloaders, optimizer="sgd"):
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.early_stop_count = early_stop_count
        self.epochs = epochs
        self.loss_criterion = nn.CrossEntropyLoss()
        self.model = model.to(device)
        print(self.model)
        if optimizer == "adam":
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=learning_rate)
        else:
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=learning_rate)
        self.dataloader_train, self.dataloader_val, self.dataloader_test = dataloaders
        self.num_steps_per_val = len(self.dataloader_train) // 2
        self.global_step = 0
        self.start_time = time.time()
        self.train_history = dict(loss=collections.OrderedDict(), accuracy=collections.OrderedDict())
        self.validation_history = dict(loss=collections.OrderedDict(), accuracy=collections.OrderedDict())
        self.checkpoint_dir = pathlib.Path("checkpoints")

    def validation_step(self):
        val_loss, val_acc = evaluate(self.dataloader_val, self.model, self.loss_criterion)
        self.validation_history["loss"][self.global_step] = val_loss
        self.validation_history["accuracy"][self.global_step] = val_acc
        print(f"epoch {self.epoch} step {self.global_step} val loss {val_loss:.3f} val acc {val_acc:.3f} "
              f"({time.time() - self.start_time:.0f}s)")

    def should_early_stop(self):
        val_loss = self.validation_history["loss"]
        if len(val_loss) < self.early_stop_count:
            return False
        relevant = list(val_loss.values())[-self.early_stop_count:]
        return relevant[0] == min(relevant)

    def train_step(self, X_batch, Y_batch):
        X_batch, Y_batch = X_batch.to(device), Y_batch.to(device)
        predictions = self.model(X_batch)
        loss = self.loss_criterion(predictions, Y_batch)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss.detach().cpu().item()

    def train(self):
        for epoch in range(self.epochs):
            self.epoch = epoch
            for X_batch, Y_batch in self.dataloader_train:
                self.train_history["loss"][self.global_step] = self.train_step(X_batch, Y_batch)
                self.global_step += 1
                if self.global_step % self.num_steps_per_val == 0:
                    self.validation_step()
                    self.save_model()
                    if self.should_early_stop():
                        print("Early stopping.")
                        return

    def save_model(self):
        losses = self.validation_history["loss"]
        is_best = losses[self.global_step] == min(losses.values())
        utils.save_checkpoint(self.model.state_dict(), self.checkpoint_dir.joinpath(f"{self.global_step}.ckpt"), is_best)

    def load_best_model(self):
        state_dict = utils.load_best_checkpoint(self.checkpoint_dir)
        if state_dict is None:
            print("no best checkpoint in", self.checkpoint_dir)
            return
        self.model.load_state_dict(state_dict)
