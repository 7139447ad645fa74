"""An honest network, its layers in a Sequential: full marks, nothing flagged."""

from torch import nn


class Net(nn.Module):
    def __init__(self, D, O):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(D, 8), nn.ReLU(), nn.Linear(8, O))

    def forward(self, x):
        return self.layers(x)
