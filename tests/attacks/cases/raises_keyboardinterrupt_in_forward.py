"""The model's forward pass raises KeyboardInterrupt."""
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        raise KeyboardInterrupt


def make_net(n_in, n_out):
    return Net()


answer = 42
