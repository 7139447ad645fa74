"""A classifier the harness's budget cannot train (every weight starts at zero, so no hidden unit
ever gets a gradient), and the harness's own loop rebound from the student's code: the rebound
loop first gives the network fresh weights, then trains it for ten times the epochs asked for.
While the harness trained inside the student's process, this passed. The network `Net` is honest."""

import torch
from torch import nn

import grader.train as harness

_train = harness.train


def _longer(model, images, labels, hyperparameters=None, device=None):
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()
    settings = dict(hyperparameters or {})
    settings["epochs"] = 10 * settings.get("epochs", 1)
    return _train(model, images, labels, settings, device)


harness.train = _longer


class Net(nn.Module):
    def __init__(self, D, O):
        super().__init__()
        self.hidden, self.out = nn.Linear(D, 8), nn.Linear(8, O)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden, self.out = nn.Linear(28 * 28, 32), nn.Linear(32, 10)
        for layer in (self.hidden, self.out):
            nn.init.zeros_(layer.weight), nn.init.zeros_(layer.bias)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x.flatten(1))))
