"""What the code sees inside the namespace sandbox, read from the inside by a submission.

One module submission reports its uid, capabilities, ``no_new_privs``, limits, network
interfaces, what it can write and what exists; the test reads the report from its stdout.
Skips, saying why, where the namespace level cannot run.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from grader import pipeline, submission
from grader.sandbox import mounts, namespace, uid_lease

why_not = namespace.unavailable_reason()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(why_not is not None, reason=f"needs the namespace sandbox: {why_not}")]

INSPECTOR = r'''
import json, os, resource, socket, sys
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)

def writable(path):
    try:
        with open(os.path.join(path, ".probe"), "w") as f:
            f.write("x")
        return True
    except OSError:
        return False

report = {
    "uid": os.getuid(), "euid": os.geteuid(), "cap_eff": status["CapEff"].strip(),
    "cap_bnd": status["CapBnd"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0], "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "writable": {p: writable(p) for p in ("/usr", sys.prefix, os.path.dirname(os.__file__), "/tmp", os.getcwd(), "/")},
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "top": sorted(os.listdir("/")),
    "executable": sys.executable,
    "inodes": {p: os.statvfs(p).f_files for p in ("/tmp", os.getcwd(), "/dev/shm")},
}
print("REPORT " + json.dumps(report))
answer = 42
'''


@pytest.fixture(scope="module")
def inside(tmp_path_factory, tiny_rubric):
    folder = tmp_path_factory.mktemp("inspector")
    (folder / "inspector.py").write_text(INSPECTOR)
    prep = pipeline.prepare(tiny_rubric, pipeline.Settings(isolation="namespace"))
    result = pipeline.grade_one(submission.single(folder / "inspector.py"), prep)
    line = next(line for line in result.stdout.splitlines() if line.startswith("REPORT "))
    return result, json.loads(line[len("REPORT "):])


def test_runs_as_an_unprivileged_uid_without_capabilities(inside):
    result, report = inside
    assert result.isolation == "namespace"
    assert report["uid"] == report["euid"] and report["uid"] in uid_lease.uid_range()  # leased for this run
    assert int(report["cap_eff"], 16) == 0 and int(report["cap_bnd"], 16) == 0
    assert report["no_new_privs"] == "1"
    assert report["nproc"] == 512  # the rubric's default `processes`


def test_only_loopback_and_only_its_own_processes(inside):
    _, report = inside
    assert report["interfaces"] == ["lo"]
    assert 1 in report["pids"] and len(report["pids"]) <= 6  # supervisor, runner, and whatever it started


def test_the_tmpfs_is_writable_and_nothing_else(inside):
    _, report = inside
    assert report["writable"]["/tmp"] and report["writable"]["/home/student/work"]
    for path, ok in report["writable"].items():
        if path not in ("/tmp", "/home/student/work"):
            assert not ok, f"{path} is writable inside the sandbox"
    assert "reference" not in report["top"] and "rubrics" not in report["top"]


def test_every_tmpfs_is_capped_in_files_as_well_as_bytes(inside):
    """Empty files cost no bytes but pin kernel memory: each writable place has an inode cap."""
    _, report = inside
    disk_mb = 1024  # the rubric's default `disk_mb`
    assert report["inodes"]["/tmp"] == report["inodes"][next(p for p in report["inodes"] if p.endswith("work"))]
    assert report["inodes"]["/tmp"] == mounts.inodes_for(disk_mb) == 16384
    assert report["inodes"]["/dev/shm"] == mounts.inodes_for(disk_mb // 4)


def test_an_interpreter_under_a_private_home_is_reachable(inside):
    """The interpreter's folder may be unreadable to other uids on the host (0700 home): the
    sandbox shows it through folders of its own, without changing any permission on the host."""
    _, report = inside
    private = [p for p in Path(sys.executable).resolve().parents if not p.stat().st_mode & stat.S_IXOTH]
    if not private:
        pytest.skip("the interpreter is under world-readable folders here; nothing private to prove")
    # It ran as another uid (the report exists) and the folder is still closed to other uids.
    assert report["executable"] == sys.executable and report["uid"] != 0


TRANSFER_RUBRIC = """
assignment: hub-weights
title: "ResNet18 weights from the torch hub cache"
reference: reference
targets:
  model: {aliases: [Model], kind: class}
checks:
  - {id: structure, kind: transfer, target: model, mode: structure, backbone: resnet18, weights: IMAGENET1K_V1,
     head: fc, classes: 10, trainable: [layer4, fc], input: [1, 3, 64, 64], points: 1}
  - {id: pretrained, kind: transfer, target: model, mode: pretrained, backbone: resnet18, weights: IMAGENET1K_V1,
     head: fc, points: 1}
"""

HUB_STUDENT = r'''
import os, torchvision
from torch import nn

class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = torchvision.models.resnet18(weights="IMAGENET1K_V1")
        self.model.fc = nn.Linear(512, 10)
        for name, param in self.model.named_parameters():
            param.requires_grad = name.startswith(("layer4", "fc"))

    def forward(self, x):
        return self.model(x)

checkpoints = os.path.join(os.environ["TORCH_HOME"], "hub", "checkpoints")
try:
    with open(os.path.join(checkpoints, "resnet18-f37072fd.pth"), "ab"):
        pass
    print("HUB writable")
except OSError:
    print("HUB read-only")
'''


def test_pretrained_weights_load_from_the_hub_cache_inside_the_sandbox(tmp_path, monkeypatch):
    """The hub cache named by TORCH_HOME is shown read-only inside the sandbox: the student's
    ResNet18 loads the weights file from it (no network there), and the check recognises them."""
    import torch
    import torchvision

    from grader import rubric

    home = tmp_path / "torch-home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(7)  # a stand-in: any weights saved under torchvision's file name
    torch.save(torchvision.models.resnet18().state_dict(), home / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    monkeypatch.setenv("TORCH_HOME", str(home))
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "model.py").write_text(HUB_STUDENT)
    (tmp_path / "rubric.yaml").write_text(TRANSFER_RUBRIC)
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "resnet_student.py").write_text(HUB_STUDENT)

    prep = pipeline.prepare(rubric.load(tmp_path / "rubric.yaml"), pipeline.Settings(isolation="namespace"))
    result = pipeline.grade_one(submission.single(tmp_path / "student" / "resnet_student.py"), prep)
    checks = {c.id: c for c in result.checks}
    assert result.isolation == "namespace" and result.status == "ok", result.message
    assert checks["structure"].outcome == "passed", checks["structure"].message
    assert checks["pretrained"].outcome == "passed", checks["pretrained"].message
    assert "HUB read-only" in result.stdout
