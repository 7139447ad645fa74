"""Tries to reach the outside world: a name lookup and a direct connection."""
import socket

from torch import nn

for what, attempt in (("dns", lambda: socket.getaddrinfo("pypi.org", 443)),
                      ("tcp", lambda: socket.create_connection(("1.1.1.1", 53), timeout=3))):
    try:
        attempt()
        print(f"NETWORK {what}: REACHED")
    except OSError as exc:
        print(f"network {what}: blocked ({type(exc).__name__})")


def make_net(n_in, n_out):
    return nn.Sequential(nn.Linear(n_in, 3), nn.ReLU(), nn.Linear(3, n_out))


answer = 42
