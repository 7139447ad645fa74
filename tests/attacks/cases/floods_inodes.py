"""Creates empty files until the file system refuses: no bytes, but each pins kernel memory.

The sandbox's tmpfs caps files as well as bytes, so the flood ends at the cap (``mounts.inodes_for``)
instead of at the host's memory; the run then goes on and its honest work is graded as usual."""
import os

from torch import nn

folder = os.path.join(os.environ.get("TMPDIR", "/tmp"), "flood")
os.makedirs(folder, exist_ok=True)
made = 0
try:
    while made < 10_000_000:
        open(os.path.join(folder, str(made)), "w").close()
        made += 1
except OSError as exc:
    print(f"FLOOD stopped after {made} files: {exc.strerror}")


def make_net(n_in, n_out):
    return nn.Sequential(nn.Linear(n_in, 3), nn.ReLU(), nn.Linear(3, n_out))


answer = 42
