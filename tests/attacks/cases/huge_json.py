"""Makes the observations enormous."""
import grader.observations as obs
from torch import nn

_write = obs.write


def _write_huge(out_dir, records, writer):
    for record in records:
        record["found_as"] = "x" * (obs.MAX_JSON_BYTES + 2**20)
        break
    return _write(out_dir, records, writer)


obs.write = _write_huge


def make_net(n_in, n_out):
    return nn.Sequential(nn.Linear(n_in, 3), nn.ReLU(), nn.Linear(3, n_out))


answer = 42
