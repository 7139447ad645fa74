"""Leaves a daemon behind (double fork, new session), then submits good work."""
import os
import time

from torch import nn

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "600"])
    os._exit(0)
time.sleep(0.2)


def make_net(n_in, n_out):
    return nn.Sequential(nn.Linear(n_in, 3), nn.ReLU(), nn.Linear(3, n_out))


answer = 42
