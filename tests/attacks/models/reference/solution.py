"""The model attacks' reference: D -> 8 -> O with a ReLU between, 58 parameters for D=4, O=2; and a
linear classifier of MNIST images."""

from torch import nn


class Net(nn.Module):
    def __init__(self, D, O):
        super().__init__()
        self.hidden = nn.Linear(D, 8)
        self.out = nn.Linear(8, O)

    def forward(self, x):
        return self.out(self.hidden(x).relu())


class Classifier(nn.Module):
    """A linear classifier of MNIST images."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))
