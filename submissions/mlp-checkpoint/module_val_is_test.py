"""Week 3 homework as a Python module: Fashion-MNIST MLP with checkpointing on the validation loss.

Run `python module_val_is_test.py` to train and print the test results.
For now the validation set is the test set (we get a real validation split next week).
"""

import copy

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Dataset

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


class FashionMNISTDataset(Dataset):
    """(image, label) pairs; images are float tensors [1, 28, 28] in [0, 1]."""

    def __init__(self, train, root="data"):
        raw = torchvision.datasets.FashionMNIST(root=root, train=train, download=True)
        self.images = raw.data
        self.labels = raw.targets

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        return self.images[idx].unsqueeze(0).float() / 255, self.labels[idx]


train_set = FashionMNISTDataset(train=True)
test_set = FashionMNISTDataset(train=False)
val_set = test_set

train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
val_loader = DataLoader(val_set, batch_size=256)
test_loader = DataLoader(test_set, batch_size=256)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                                 nn.Linear(100, 10))

    def forward(self, x):
        return self.net(x)


def validation_loss(model, loader, loss_fn):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            total += loss_fn(model(x), y).item() * len(y)
            count += len(y)
    return total / count


def train_model(model, train_loader, val_loader, loss_fn, optimizer, epochs):
    best_loss, best_state = float("inf"), None
    train_losses, val_losses = [], []
    for _ in range(epochs):
        model.train()
        total, count = 0.0, 0
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            count += len(y)
        train_losses.append(total / count)
        val_losses.append(validation_loss(model, val_loader, loss_fn))
        if val_losses[-1] < best_loss:
            best_loss, best_state = val_losses[-1], copy.deepcopy(model.state_dict())
    return best_state, train_losses, val_losses


def class_accuracies(model, loader):
    model.eval()
    correct, total = torch.zeros(10), torch.zeros(10)
    with torch.no_grad():
        for x, y in loader:
            predicted = model(x).argmax(dim=1)
            for c in range(10):
                total[c] += (y == c).sum()
                correct[c] += ((predicted == c) & (y == c)).sum()
    return (correct / total).tolist()


if __name__ == "__main__":
    torch.manual_seed(0)
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    best_state, train_losses, val_losses = train_model(model, train_loader, val_loader, nn.CrossEntropyLoss(),
                                                       optimizer, 10)
    model.load_state_dict(best_state)
    accuracies = class_accuracies(model, test_loader)
    print("mean class accuracy:", sum(accuracies) / 10)
    for c in sorted(range(10), key=lambda c: -accuracies[c]):
        print(f"{CLASSES[c]:12s} {accuracies[c]:.3f}")
