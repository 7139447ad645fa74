"""Disables seeding for everyone who runs after it."""
import random

import numpy as np
import torch
from torch import nn

torch.manual_seed = lambda seed: None
torch.random.manual_seed = lambda seed: None
np.random.seed = lambda seed=None: None
random.seed = lambda a=None, version=2: None


def make_net(n_in, n_out):
    return nn.Sequential(nn.Linear(n_in, 3), nn.ReLU(), nn.Linear(3, n_out))


answer = 42
