"""Reference solution of `resmlp-densenet`: Fashion-MNIST with a residual MLP and a small DenseNet.

The parts, in the order the handout asks for them:

1. ``load_data``: torchvision's Fashion-MNIST under ``data/``, as tensors in [0, 1].
2. ``ResBlock(in_features, hidden_features)``: Linear(d, h) -> ReLU -> Linear(h, d), the input
   added back (the skip connection), then ReLU. Both layer sizes come from the constructor; the
   second layer must give back ``d`` features for the addition to work.
3. ``ResMLP``: flatten -> Linear(784, width) -> ReLU -> ResBlocks -> Linear(width, 10).
4. ``DenseBlock(in_channels, growth_rate, num_layers)``: layer ``l`` is BatchNorm -> ReLU ->
   3x3 conv (padding 1) applied to the concatenation of the block input and every earlier
   layer's output; the block returns all of them concatenated: in + layers x growth channels.
5. ``Transition(in_channels, out_channels)``: BatchNorm -> 1x1 conv -> 2x2 average pool, stride 2.
6. ``DenseNet(growth_rate)``: 3x3 conv to 4 channels -> average pool -> DenseBlock(3 layers) ->
   transition back to 4 channels -> DenseBlock(3 layers) -> global average pool -> Linear(->10).
7. ``train_model(model, train_loader, test_loader, epochs, lr)``: SGD + cross-entropy, the model in
   train mode for the updates and in eval mode (no gradients) for the test accuracy after every
   epoch; returns the per-epoch training losses and test accuracies.

With growth rate k, the first DenseBlock works at 14x14 with 4 input and 4 + 3k output channels,
the second at 7x7 (4 in, 4 + 3k out), and the final Linear layer gets 4 + 3k features.

Import-safe: nothing touches data at import time, so the grader can build the models in its
trusted process. ``python solution.py`` runs it all.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader

GROWTH_RATE = 12


# ---------------------------------------------------------------- 1. data


def load_data(root="data", batch_size=64):
    """Training (shuffled) and test loaders; images are [1, 28, 28] float tensors in [0, 1]."""
    to_tensor = torchvision.transforms.ToTensor()
    train_set = torchvision.datasets.FashionMNIST(root=root, train=True, download=True, transform=to_tensor)
    test_set = torchvision.datasets.FashionMNIST(root=root, train=False, download=True, transform=to_tensor)
    return (DataLoader(train_set, batch_size=batch_size, shuffle=True),
            DataLoader(test_set, batch_size=256, shuffle=False))


# ---------------------------------------------------------------- 2.-3. residual MLP


class ResBlock(nn.Module):
    """``x -> relu(x + fc2(relu(fc1(x))))`` with fc1: d -> h and fc2: h -> d."""

    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        branch = self.fc2(torch.relu(self.fc1(x)))
        return torch.relu(x + branch)  # the skip connection: the input is added back unchanged


class ResMLP(nn.Module):
    """``[B, 1, 28, 28] -> [B, 10]``: an input layer to ``width`` features, ``blocks`` ResBlocks, a classifier."""

    def __init__(self, width=256, hidden=128, blocks=2, classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, width), nn.ReLU(),
            *[ResBlock(width, hidden) for _ in range(blocks)],
            nn.Linear(width, classes),
        )

    def forward(self, x):
        return self.net(x)


# ---------------------------------------------------------------- 4.-6. DenseNet


class DenseBlock(nn.Module):
    """``num_layers`` layers of BatchNorm -> ReLU -> 3x3 conv, each fed all earlier feature maps."""

    def __init__(self, in_channels, growth_rate, num_layers):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.BatchNorm2d(in_channels + l * growth_rate),
                nn.ReLU(),
                nn.Conv2d(in_channels + l * growth_rate, growth_rate, kernel_size=3, padding=1),  # keeps H x W
            )
            for l in range(num_layers))
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class Transition(nn.Sequential):
    """BatchNorm -> 1x1 conv (fewer channels) -> 2x2 average pool with stride 2 (half the size)."""

    def __init__(self, in_channels, out_channels):
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=1),
            nn.AvgPool2d(kernel_size=2, stride=2),
        )


class DenseNet(nn.Module):
    """``[B, 1, 28, 28] -> [B, 10]`` through two dense blocks of three layers each."""

    def __init__(self, growth_rate=GROWTH_RATE, classes=10):
        super().__init__()
        block_out = 4 + 3 * growth_rate
        self.stem = nn.Sequential(nn.Conv2d(1, 4, kernel_size=3, padding=1), nn.AvgPool2d(2, stride=2))  # 28 -> 14
        self.block1 = DenseBlock(4, growth_rate, 3)             # 14 x 14, 4 -> 4 + 3k channels
        self.transition = Transition(block_out, 4)              # 14 -> 7, back to 4 channels
        self.block2 = DenseBlock(4, growth_rate, 3)             # 7 x 7, 4 -> 4 + 3k channels
        self.pool = nn.AdaptiveAvgPool2d(1)                     # global average pool
        self.fc = nn.Linear(block_out, classes)

    def forward(self, x):
        x = self.block2(self.transition(self.block1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), start_dim=1))


# ---------------------------------------------------------------- 7. training and evaluation


def accuracy(model, loader):
    """Share of correctly classified samples; eval mode (BatchNorm uses its running statistics)."""
    device = next(model.parameters()).device
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            predicted = model(images.to(device)).argmax(dim=1).cpu()
            correct += int((predicted == labels).sum())
            total += len(labels)
    return correct / total


def train_model(model, train_loader, test_loader, epochs, lr):
    """Train with SGD and cross-entropy; after every epoch measure the test accuracy.

    Returns ``(train_losses, test_accuracies)``, one number per epoch. The model must be switched
    back to train mode at the start of every epoch: ``accuracy`` leaves it in eval mode.
    """
    device = next(model.parameters()).device
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    train_losses, test_accuracies = [], []
    for _ in range(epochs):
        model.train()
        total_loss, count = 0.0, 0
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
            count += len(labels)
        train_losses.append(total_loss / count)
        test_accuracies.append(accuracy(model, test_loader))
    return train_losses, test_accuracies


def main(epochs=5, lr=0.05, root="data"):
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_loader, test_loader = load_data(root)
    for name, model in (("residual MLP", ResMLP()), ("DenseNet", DenseNet())):
        model.to(device)
        losses, accuracies = train_model(model, train_loader, test_loader, epochs, lr)
        print(f"{name}: final training loss {losses[-1]:.4f}, train accuracy {accuracy(model, train_loader):.2%}, "
              f"test accuracy {accuracies[-1]:.2%}")


if __name__ == "__main__":
    main()
