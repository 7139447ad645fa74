"""An honest submission in the same batch: it must grade normally whatever its neighbours do."""
from torch import nn


def make_net(n_in, n_out):
    return nn.Sequential(nn.Linear(n_in, 3), nn.ReLU(), nn.Linear(3, n_out))


answer = 42
