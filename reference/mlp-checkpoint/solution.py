"""Reference solution of `mlp-checkpoint`: a Fashion-MNIST MLP trained with validation checkpoints.

The steps, in the order the handout asks for them:

1. ``FashionMNISTDataset``: a ``torch.utils.data.Dataset`` subclass over image and label tensors.
2. ``make_splits``: three disjoint data sets. Validation is a seeded random fifth of the official
   training set; the official test set stays the test set.
3. ``MLP``: 784 -> 300 -> ReLU -> 100 -> ReLU -> 10.
4. ``train_model``: every epoch a training phase and a validation phase; a deep *copy* of the
   state dict of the epoch with the lowest validation loss is kept and returned.
5. ``evaluate``, ``class_accuracies``, ``rank_classes``: the best model on the test set.

Import-safe: nothing touches data at import time, so the grader can build ``MLP`` in its trusted
process to compute expectations (the parameter count). ``python solution.py`` runs it all.
"""

from __future__ import annotations

import copy
import math
import os

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Dataset

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
VALIDATION_FRACTION = 0.2
SPLIT_SEED = 0


# ---------------------------------------------------------------- 1. data set and split


class FashionMNISTDataset(Dataset):
    """Images and labels held as tensors; item ``i`` is ``(image, label)``.

    ``image`` is a float tensor of shape [1, 28, 28] with values in [0, 1]; ``label`` is a 0-d
    int64 tensor holding the class index.
    """

    def __init__(self, images, labels):
        """``images``: uint8 tensor [N, 28, 28]; ``labels``: int64 tensor [N]."""
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        image = self.images[idx].float().div(255).unsqueeze(0)  # add the channel dimension
        return image, self.labels[idx]


def make_splits(root="data", validation_fraction=VALIDATION_FRACTION, seed=SPLIT_SEED):
    """Train, validation and test sets that share no sample.

    The validation set is a random part of the official training set (never of the test set:
    choosing a model by its test loss would make the test result optimistic).
    """
    official_train = torchvision.datasets.FashionMNIST(root=root, train=True, download=True)
    official_test = torchvision.datasets.FashionMNIST(root=root, train=False, download=True)

    order = torch.randperm(len(official_train), generator=torch.Generator().manual_seed(seed))
    validation_size = int(len(order) * validation_fraction)
    val_rows, train_rows = order[:validation_size], order[validation_size:]

    train_set = FashionMNISTDataset(official_train.data[train_rows], official_train.targets[train_rows])
    val_set = FashionMNISTDataset(official_train.data[val_rows], official_train.targets[val_rows])
    test_set = FashionMNISTDataset(official_test.data, official_test.targets)
    return train_set, val_set, test_set


def make_loaders(train_set, val_set, test_set, batch_size=64):
    """Training batches are shuffled every epoch; validation and test keep their order."""
    return (DataLoader(train_set, batch_size=batch_size, shuffle=True),
            DataLoader(val_set, batch_size=256, shuffle=False),
            DataLoader(test_set, batch_size=256, shuffle=False))


def _splits_where_the_data_is():
    """The three data sets and their loaders when Fashion-MNIST is in ``data/``, as where a
    submission runs; none when it is not (the grader also imports the reference on its own
    machine, for expectations, where no data is linked)."""
    if not os.path.isdir("data"):
        return (None,) * 6
    splits = make_splits()
    return (*splits, *make_loaders(*splits))


train_set, val_set, test_set, train_loader, val_loader, test_loader = _splits_where_the_data_is()


# ---------------------------------------------------------------- 2. model


class MLP(nn.Module):
    """Flatten, then Linear(784, 300) ReLU, Linear(300, 100) ReLU, Linear(100, 10)."""

    def __init__(self, inputs=28 * 28, hidden1=300, hidden2=100, classes=10):
        super().__init__()
        self.l1 = nn.Linear(inputs, hidden1)
        self.l2 = nn.Linear(hidden1, hidden2)
        self.l3 = nn.Linear(hidden2, classes)

    def forward(self, x):
        x = torch.flatten(x, start_dim=1)  # [B, 1, 28, 28] -> [B, 784]; [B, 784] stays as it is
        x = torch.relu(self.l1(x))
        x = torch.relu(self.l2(x))
        return self.l3(x)  # logits: CrossEntropyLoss applies the softmax


def parameter_count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------- 3. training with checkpoints


def train_one_epoch(model, loader, loss_fn, optimizer):
    """One pass over the training data, one SGD step per batch; the mean loss per sample."""
    device = next(model.parameters()).device
    model.train()
    total_loss, count = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        count += len(labels)
    return total_loss / count


def validation_loss(model, loader, loss_fn):
    """The mean loss per validation sample, in eval mode and without gradients.

    ``loss_fn`` averages over its batch, so each batch's loss is weighted by the batch size: the
    last batch is usually smaller, and a plain mean of batch means would overweight it.
    """
    device = next(model.parameters()).device
    model.eval()
    total_loss, count = 0.0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            total_loss += loss_fn(model(images), labels).item() * len(labels)
            count += len(labels)
    return total_loss / count


def train_model(model, train_loader, val_loader, loss_fn, optimizer, epochs):
    """Train for ``epochs`` epochs; return ``(best_state, train_losses, val_losses)``.

    ``best_state`` is a copy of the state dict of the epoch with the lowest validation loss.
    It must be a copy: ``model.state_dict()`` returns references to the live parameters, which
    the following epochs keep changing.
    """
    best_loss, best_state = math.inf, None
    train_losses, val_losses = [], []
    for _ in range(epochs):
        train_losses.append(train_one_epoch(model, train_loader, loss_fn, optimizer))
        val_losses.append(validation_loss(model, val_loader, loss_fn))
        if val_losses[-1] < best_loss:
            best_loss = val_losses[-1]
            best_state = copy.deepcopy(model.state_dict())
    return best_state, train_losses, val_losses


# ---------------------------------------------------------------- 4. evaluation on the test set


def predict(model, loader):
    """Predicted and true classes of every sample of ``loader``."""
    device = next(model.parameters()).device
    model.eval()
    predicted, actual = [], []
    with torch.no_grad():
        for images, labels in loader:
            predicted.append(model(images.to(device)).argmax(dim=1).cpu())
            actual.append(labels)
    return torch.cat(predicted), torch.cat(actual)


def class_accuracies(predicted, actual, classes=10):
    """Accuracy of each class: the share of its samples predicted as that class."""
    return [float((predicted[actual == c] == c).float().mean()) if (actual == c).any() else math.nan
            for c in range(classes)]


def rank_classes(accuracies, names=CLASS_NAMES):
    """Class names from the best-predicted to the worst; the last one is the hardest."""
    return [names[c] for c in sorted(range(len(accuracies)), key=lambda c: accuracies[c], reverse=True)]


def main(epochs=10, lr=0.05, root="data"):
    import matplotlib.pyplot as plt

    torch.manual_seed(0)
    train_set, val_set, test_set = make_splits(root)
    train_loader, val_loader, test_loader = make_loaders(train_set, val_set, test_set)
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    best_state, train_losses, val_losses = train_model(model, train_loader, val_loader, nn.CrossEntropyLoss(),
                                                       optimizer, epochs)

    model.load_state_dict(best_state)
    predicted, actual = predict(model, test_loader)
    accuracies = class_accuracies(predicted, actual)
    ranking = rank_classes(accuracies)
    print(f"{parameter_count(model):,} parameters; best validation loss {min(val_losses):.4f}")
    print(f"test accuracy of the best model: {float((predicted == actual).float().mean()):.2%} "
          f"(mean of class accuracies {sum(accuracies) / len(accuracies):.2%})")
    for name in ranking:
        print(f"  {name:12s} {accuracies[CLASS_NAMES.index(name)]:.2%}")
    print(f"hardest class: {ranking[-1]}")

    epochs_axis = range(1, epochs + 1)
    plt.plot(epochs_axis, train_losses, label="training")
    plt.plot(epochs_axis, val_losses, label="validation")
    plt.xlabel("epoch")
    plt.ylabel("mean cross-entropy")
    plt.legend()
    plt.show()


if __name__ == "__main__":
    main()
